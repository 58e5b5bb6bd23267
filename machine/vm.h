/* machine/vm.h — struct vm: the whole machine and the only home of mutable
 * state (guest RAM, buses, devices, vCPUs, engine handles, exit status).
 * vm_create() builds it from a vm_config; vm_run() starts one host thread
 * per vCPU and waits until the guest exits or fails. */
#ifndef VMDB_VM_H
#define VMDB_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"
#include "machine/bus.h"
#include "machine/output_watch.h"
#include "util/err.h"

#define VM_MAX_VCPUS 256    /* array sizes */
/* vCPUs a machine may have: their APIC IDs are their indexes, and 0xFF is
 * the xAPIC broadcast ID, which no CPU can have. */
#define VM_MAX_GUEST_VCPUS 255

enum serial_kind { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

/* --cpu: the CPU model an engine presents (emu: debugger stepping by an
 * MTF-like exit on intel, by TF with PUSHF/POPF intercepts on amd, by TF
 * the way the host KVM steps on kvm-step: TF hidden from the debugger and
 * leaked into images, the guest's own TF lost, a faulting instruction's
 * handler entered and its first instruction run in the same step). */
enum vm_cpu_model { VM_CPU_INTEL = 0, VM_CPU_AMD, VM_CPU_KVM_STEP };

struct vm_config {
	const char *engine;         /* "kvm" */
	enum vm_cpu_model cpu;      /* --cpu, default intel */
	bool shared_dr;             /* --shared-dr: emu has one DR set per vCPU, as KVM */
	unsigned nr_vcpus;
	uint64_t mem_size;
	enum serial_kind serial;
	const char *serial_path;    /* SERIAL_FILE */
	const char *kernel_path;
	const char *initrd_path;    /* may be NULL */
	const char *cmdline;        /* never NULL */
	const char *gdb_addr;       /* NULL without --gdb */
	bool wait_gdb;
	int gdb_arch;               /* enum gdb_arch (gdbserver_int.h): --gdb-arch, 0 = auto */
	bool no_reboot;             /* --no-reboot: a guest reset ends vmdb (status 0) */
	bool serial_stdin;          /* with SERIAL_STDIO: stdin feeds the UART's input */
	bool serial_escape;         /* stdin is a terminal: Ctrl-A x ends vmdb */
	bool record;                /* --record: the engine records from the start */
	uint64_t record_mem;        /* --record-mem: snapshot budget in bytes (0: default) */
};

/* Record and replay (engine_rr_ops). While the engine records, inputs from
 * outside the guest go through it so that it can log them with the count
 * they arrive at, and the wall clock the guest sees is the engine's. */
struct vm;
struct timespec;
struct vm_rr {
	/* set by the engine while it records (NULL otherwise; any thread):
	 * take serial input bytes for delivery at a logged count (how many
	 * it took), and the wall clock for the guest */
	size_t (*queue_input)(struct vm *vm, const uint8_t *buf, size_t n);
	void (*realtime)(struct vm *vm, struct timespec *ts);
	/* set by the UART: put input into its FIFO now (bytes taken) */
	size_t (*serial_push)(void *opaque, const uint8_t *buf, size_t n);
	void *serial_opaque;
	/* the engine replays history: device output is not shown again */
	bool quiet;
	/* the debugger's: takes its int3s out of guest memory (lift) and puts
	 * them back, around the engine's snapshots (engine_rr_ops.set_bp_hook) */
	void (*bp_hook)(void *opaque, bool lift);
	void *bp_opaque;
};

struct vcpu {
	struct vm *vm;
	unsigned id;
	pthread_t thread;
	void *engine;               /* the engine's per-vCPU state */
	bool thread_done;           /* its thread left the loop (under vm->lock) */
};

/* Guest-physical layout: RAM from 0 up to VM_LOW_RAM_MAX, the rest from
 * 4 GiB; 0xA0000-0xFFFFF is RAM too but reported reserved (the ACPI
 * tables live at VM_ACPI_BASE, the SMBIOS ones at VM_SMBIOS_BASE, the
 * BIOS area a PC's firmware puts them in); LAPIC/IOAPIC sit in the 3-4 GiB
 * hole. */
#define VM_LOW_RAM_MAX  0xc0000000ull
#define VM_HIGH_RAM_BASE 0x100000000ull
#define VM_ACPI_BASE    0xe0000ull
#define VM_SMBIOS_BASE  0xf0000ull
#define VM_ACPI_END     0x100000ull     /* the end of both */

/* What the debug core plugs into the vCPU loop (all may be NULL). */
struct vm_debug_hooks {
	/* Each vCPU thread calls this before every engine run; it may block
	 * while the debugger holds the machine stopped (and before the first
	 * instruction with --wait-gdb). True when it filled *exit with an
	 * exit the vCPU met while the debugger ran it on another thread: the
	 * loop handles that one as if run() had returned it, without
	 * running. */
	bool (*before_run)(struct vm *vm, struct vcpu *vcpu, struct vm_exit *exit);
	/* Offered every exit first; true = consumed, the loop runs again. */
	bool (*on_exit)(struct vm *vm, struct vcpu *vcpu, struct vm_exit *exit);
	/* The machine is stopping with this status (guest exit, fatal error,
	 * kill): tell the client before the process ends. Called once, by
	 * whichever thread called vm_request_exit() (a vCPU or the server),
	 * without vm->lock held; vCPUs parked in before_run must return once
	 * vm_stopping() is true. */
	void (*on_vm_stop)(struct vm *vm, int status, const char *why);
	/* The guest asked for a reset: every vCPU thread must leave (parked
	 * ones too) so the machine can boot again. Any thread, no lock held. */
	void (*on_reset)(struct vm *vm);
	/* The guest reset the machine and it booted again (new vCPUs, RAM
	 * reloaded); called by vm_run before any new vCPU thread starts, so
	 * the debugger's breakpoints go back in and its session goes on. */
	void (*on_reboot)(struct vm *vm);
	/* The guest's serial output matched vm->output_watch's pattern with a
	 * byte this vCPU's port write just sent; line is the line so far.
	 * Called on the thread that handled the write, after it. */
	void (*on_output_match)(struct vm *vm, struct vcpu *vcpu, const char *line);
};

struct vm_teardown {
	void (*fn)(void *opaque);
	void *opaque;
};

#define VM_MAX_TEARDOWNS 32
#define VM_MAX_RESETS    32
#define VM_MAX_EXIT_HOOKS 8
#define VM_MAX_SNAPSHOT_HOOKS 32

/* A device's part of a whole-machine snapshot (vm_on_snapshot): a fixed
 * number of bytes of state, written by save and read back by restore. */
struct vm_snapshot_hook {
	const char *name;
	size_t size;
	void (*save)(void *opaque, void *buf);
	void (*restore)(void *opaque, const void *buf);
	void *opaque;
};

struct vm {
	struct vm_config cfg;
	const struct engine_ops *engine;
	/* the single-instruction core the engine is given (engine_assist()) */
	const struct emu_single_ops *engine_assist;
	void *engine_vm;

	uint8_t *ram;               /* host mapping of all guest RAM */
	uint64_t ram_size;
	uint64_t low_ram_size;      /* RAM below VM_LOW_RAM_MAX */

	struct bus pio, mmio;
	struct vcpu vcpus[VM_MAX_VCPUS];
	unsigned nr_vcpus;

	struct vm_teardown teardowns[VM_MAX_TEARDOWNS];
	unsigned nr_teardowns;
	struct vm_teardown resets[VM_MAX_RESETS];   /* device power-on states */
	unsigned nr_resets;
	struct vm_teardown exit_hooks[VM_MAX_EXIT_HOOKS];  /* see vm_on_exit */
	unsigned nr_exit_hooks;
	struct vm_snapshot_hook snapshot_hooks[VM_MAX_SNAPSHOT_HOOKS];
	unsigned nr_snapshot_hooks;

	/* Guest RAM written since the snapshot store last looked (vm_ram_dirty):
	 * one bit per 4 KiB frame of vm->ram, by host offset (RAM above 4 GiB
	 * follows the low part). All set at power-on: everything counts as
	 * written until the first snapshot has seen it. */
	uint64_t *ram_dirty;
	uint64_t ram_frames;
	/* held for reading around engine calls made outside vCPU threads
	 * (vm_irq_line), for writing while a reset replaces the engine */
	pthread_rwlock_t engine_lock;

	/* where boot structures went, for the devices that report them */
	uint64_t rsdp_gpa;
	uint64_t initrd_gpa, initrd_size;

	/* the debugger's pattern for the serial output (monitor catch output) */
	struct output_watch output_watch;

	/* The debug core, when a debugger is configured. machine/ only calls
	 * these hooks; it knows nothing of what is behind them. */
	const struct vm_debug_hooks *debug_hooks;
	void *debug;
	struct vm_rr rr;

	/* exit: the first vCPU to stop the machine records why */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	bool reset_pending;         /* stopping only to boot again (vm_request_reset) */
	unsigned nr_boots;          /* 1 after power-on, +1 per reset */
	unsigned nr_threads;        /* vCPU threads started so far */
	int exit_status;            /* process exit status */
	char exit_message[512];     /* printed by main when not empty */
};

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e) must_check;
/* The same machine without a kernel (cfg->kernel_path unused): RAM zero,
 * vCPUs at power-on. For harnesses that load or run what they like. */
int vm_create_machine(struct vm *vm, const struct vm_config *cfg, struct err *e) must_check;
void vm_destroy(struct vm *vm);
/* Run all vCPUs until the machine stops; returns the exit status. */
int vm_run(struct vm *vm);

/* What stops a vCPU for good (a triple fault, an instruction the engine
 * cannot execute, a guest state it refuses), in words that say where:
 * "vCPU 0: triple fault: #UD (vector 6) could not be delivered, ...".
 * False for any other exit. */
bool vm_describe_fatal(struct vcpu *vcpu, const struct vm_exit *exit, char *out, size_t size);

/* Stop the whole machine (any thread): record status and message once,
 * kick every vCPU. The first call wins. */
void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The guest asked for a system reset (reset register, port 0xcf9, the
 * i8042 pulse, port 0x92): every vCPU stops, and vm_run boots the machine
 * again from power-on (new engine state, RAM cleared, device resets, the
 * kernel loaded again; a debugger stays attached, see on_reboot). With
 * --no-reboot the machine stops with status 0 instead. Any thread. */
void vm_request_reset(struct vm *vm, const char *why);

/* Register fn(opaque) to put a device back in its power-on state when the
 * machine resets: called in registration order, after RAM is cleared and
 * the engine is new, before the kernel is loaded again. */
int vm_on_reset(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e) must_check;

/* A port-I/O or MMIO exit of a vCPU run on another thread than its own
 * (a debugger's lent step), handled by the machine's devices as its own
 * thread would: they lock for themselves and end or reset the machine
 * through vm_request_exit()/vm_request_reset(), whatever the thread. The
 * engine lock is held for reading meanwhile, so that a reset the access
 * asks for cannot replace the engine (and the exit's data) under it. */
enum vm_device_exit {
	VM_DEVICE_EXIT_NOT,        /* not a device exit: nothing done */
	VM_DEVICE_EXIT_DONE,       /* handled; the vCPU may run on */
	VM_DEVICE_EXIT_STOPPING,   /* handled, and the machine stops or resets: run nothing */
};
enum vm_device_exit vm_handle_device_exit(struct vcpu *vcpu, struct vm_exit *exit);

/* Set an interrupt line (ISA IRQ / GSI) from a device; safe from any
 * thread, also while a reset replaces the engine (then it is dropped). */
void vm_irq_line(struct vm *vm, unsigned irq, int level);

/* Guest time in ns as the engine's timers see it (engine_vm_ops.guest_ns, or
 * the host's CLOCK_MONOTONIC). */
uint64_t vm_guest_ns(struct vm *vm);

/* The wall clock as the guest may see it: the host's, or the engine's
 * while it records (deterministic). */
void vm_realtime(struct vm *vm, struct timespec *ts);

/* True once the machine is stopping; vCPU loops and parks poll it. */
static inline bool vm_stopping(struct vm *vm)
{
	return __atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE);
}

/* Register fn(opaque) to run when the machine ends, before the debugger
 * hears of it: a device finishes what the guest did before its end (the
 * serial console writes out the guest's last lines). */
int vm_on_exit(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e) must_check;

/* Register fn(opaque) to run at vm_destroy, in reverse order. */
int vm_on_destroy(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e) must_check;

/* Register a device's part of a snapshot (machine/snapshot.c): save(opaque,
 * buf) fills size bytes, restore(opaque, buf) puts them back. Both are
 * called with every vCPU at an instruction boundary and no device access
 * in flight; they take the device's own lock. The engine's state (vCPUs,
 * interrupt controllers, timers) is the engine's (engine_snap_ops). */
int vm_on_snapshot(struct vm *vm, const char *name, size_t size,
		   void (*save)(void *opaque, void *buf),
		   void (*restore)(void *opaque, const void *buf), void *opaque,
		   struct err *e) must_check;

/* Host pointer for guest-physical [gpa, gpa+len), or NULL when any part of
 * it is not RAM. Never trust gpa/len from the guest without this. A caller
 * that writes through it says so with vm_ram_dirty (snapshots store only
 * the pages written since the last one). */
void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len);

/* Guest RAM as guest-physical ranges [first, end), ascending: low RAM and,
 * when there is any, RAM above 4 GiB. Returns how many (1 or 2). */
struct vm_ram_range {
	uint64_t first, end;
};
unsigned vm_ram_ranges(const struct vm *vm, struct vm_ram_range out[2]);

/* Guest RAM at host address host (inside vm->ram), len bytes, is written
 * (or about to be): any thread, cheap. Engines that cache write access
 * mark a page when they grant it (engine_snap_ops.ram_clean takes the
 * grants back when the store starts a new interval). */
static inline void vm_ram_dirty(struct vm *vm, const void *host, uint64_t len)
{
	if (!vm->ram_dirty || len == 0)
		return;
	uint64_t first = (uint64_t)((const uint8_t *)host - vm->ram) >> 12;
	uint64_t last = ((uint64_t)((const uint8_t *)host - vm->ram) + len - 1) >> 12;
	for (uint64_t f = first; f <= last && f < vm->ram_frames; f++) {
		uint64_t bit = 1ull << (f % 64);
		/* most writes land on pages marked already: no locked access */
		if (!(__atomic_load_n(&vm->ram_dirty[f / 64], __ATOMIC_RELAXED) & bit))
			__atomic_fetch_or(&vm->ram_dirty[f / 64], bit, __ATOMIC_RELAXED);
	}
}

/* Was the frame (host offset >> 12) written since the store last looked? */
static inline bool vm_ram_frame_dirty(const struct vm *vm, uint64_t frame)
{
	return !vm->ram_dirty || frame >= vm->ram_frames ||
	       ((__atomic_load_n(&vm->ram_dirty[frame / 64], __ATOMIC_RELAXED) >> (frame % 64)) & 1);
}

/* Copy guest-physical [gpa, gpa+len) to buf: 0, or -EFAULT when any of it
 * is not RAM. Has the shape of x86_read_phys_fn (opaque = the vm). */
int vm_read_phys(void *vm, uint64_t gpa, void *buf, size_t len);

/* Copy guest-virtual [gva, gva+len) as the vCPU with these sregs sees it
 * (page by page through its page tables): 0 or -EFAULT. */
int vm_read_virt(struct vm *vm, const struct x86_sregs *sregs, uint64_t gva, void *buf,
		 size_t len);

#endif
