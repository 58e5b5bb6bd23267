/* engine/engine.h — the "vmm module" interface every execution engine
 * implements (engine/kvm and engine/emu). It owns the exit
 * vocabulary (what a vCPU run can stop for), the capability vocabulary
 * (what the debug core may ask of an engine), the ops in their groups
 * (vm, vcpu, debug, lend) and the registry of engines linked in.
 *
 * Engines know nothing of GDB and nothing of devices: port I/O and MMIO
 * come back as exits that machine/ routes to the bus. A capability an
 * engine lacks is reported as absent (false / NULL op), never faked. */
#ifndef VMDB_ENGINE_H
#define VMDB_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "x86/x86.h"

struct vm;
struct vcpu;

enum vm_exit_reason {
	VM_EXIT_NONE = 0,
	VM_EXIT_IO,               /* port I/O; complete IN by filling io.data */
	VM_EXIT_MMIO,             /* access to unbacked or read-only memory */
	VM_EXIT_HLT,              /* HLT that the engine does not wait out itself */
	VM_EXIT_SHUTDOWN,         /* triple fault or shutdown */
	VM_EXIT_RESET,            /* guest asked for a system reset */
	VM_EXIT_DB,               /* debug exception intercepted (step, hw bp) */
	VM_EXIT_BPT,              /* INT3 intercepted */
	VM_EXIT_MOV_DR,           /* guest MOV to/from DRn, already emulated */
	VM_EXIT_ACCESS,           /* an access engine_debug.access names retired */
	VM_EXIT_KICKED,           /* vcpu->kick() or a signal ended the run */
	VM_EXIT_EMULATION_FAILURE,/* the engine could not execute an instruction */
	VM_EXIT_ENTRY_FAILURE,    /* the engine refused the guest state */
	VM_EXIT_UNKNOWN,          /* anything else; raw code in .unknown */
};

/* Record and replay (reverse execution). The engine logs every input it
 * cannot reproduce (turns of the vCPUs, idle clock jumps, serial input,
 * the debugger's writes) with the global count of retired instructions
 * it arrived at, and takes snapshots of the whole machine; from them it
 * puts the stopped machine at any count of its history. Optional group:
 * NULL where the engine is not deterministic (kvm). */
struct engine_rr_info {
	bool recording;
	bool in_history;        /* stopped before the end of the history */
	uint64_t now, first, end;   /* global counts: here, oldest snapshot, end */
	size_t snapshots;
	uint64_t snap_bytes, budget, period;
	size_t events;
	uint64_t log_bytes;
};

/* Where seek stops: the global count `global`, or (vcpu >= 0) the moment
 * vCPU `vcpu` is about to execute with vcpu_count instructions retired. */
struct engine_rr_target {
	uint64_t global;
	int vcpu;
	uint64_t vcpu_count;
};

struct vm_exit;
struct engine_rr_ops {
	/* Start (budget: bytes of snapshots, 0 = the default) or stop and
	 * forget the history. Called with every vCPU out of run(). */
	int (*record)(struct vm *vm, bool on, uint64_t budget, struct err *e);
	void (*info)(struct vm *vm, struct engine_rr_info *info);
	/* Instructions this vCPU has retired. */
	uint64_t (*vcpu_count)(struct vcpu *vcpu);
	/* The stopped machine (every vCPU parked) moves to t through its
	 * history: from the newest snapshot at or before t when t is behind,
	 * replaying the log. Returns 0 with exit->reason VM_EXIT_NONE at t;
	 * 1 with exit filled and *vcpu set at a debug exit met on the way
	 * (VM_EXIT_DB, VM_EXIT_BPT: call seek again to go on); 2 when the end
	 * of the history came first (the machine is there). */
	int (*seek)(struct vm *vm, const struct engine_rr_target *t, struct vm_exit *exit,
		    unsigned *vcpu, struct err *e);
	/* The newest snapshot strictly before icount (UINT64_MAX: none). */
	uint64_t (*snap_before)(struct vm *vm, uint64_t icount);
	/* Called with lift = true before the engine restores or captures
	 * guest memory and with false after: the debugger takes its int3s
	 * out and puts them back. */
	void (*set_bp_hook)(struct vm *vm, void (*fn)(void *opaque, bool lift), void *opaque);
	/* The debugger wrote buf (the guest's view: no int3 of its own) to
	 * guest-physical [gpa, gpa+len): logged; inside the history, the
	 * history after here is dropped and the machine is live from here. */
	void (*mem_written)(struct vm *vm, uint64_t gpa, const void *buf, uint64_t len);
};

const char *vm_exit_reason_name(enum vm_exit_reason reason);

/* Filled by vcpu->run(). Pointers in it stay valid until the next run
 * of the same vCPU; data written to them for reads (IN, MMIO read) is
 * delivered to the guest when the vCPU runs again. */
struct vm_exit {
	enum vm_exit_reason reason;
	union {
		struct {
			uint16_t port;
			uint8_t size;        /* 1, 2 or 4 */
			bool is_write;
			uint32_t count;      /* > 1 for REP INS/OUTS */
			uint8_t *data;       /* size * count bytes */
		} io;
		struct {
			uint64_t gpa;
			uint8_t *data;
			uint32_t len;        /* 1..8 */
			bool is_write;
		} mmio;
		struct {
			uint64_t pc;
			uint64_t dr6;        /* DR6_B(n) / DR6_BS / DR6_BD as raised */
			uint64_t dr7;
			/* the guest's own #DB at this boundary, kept from the
			 * guest by engine_debug.intercept_db: the DR6 bits it
			 * raised (0 = none); reflect with inject_exception */
			uint64_t guest_dr6;
			/* a watched range (engine_ops.set_watch) this
			 * instruction touched: its id + 1; 0 = none */
			uint32_t watch;
		} db;
		struct {
			uint64_t pc;         /* address of the INT3 byte */
		} bpt;
		struct {
			uint8_t dr;          /* 0-7 */
			uint8_t gpr;         /* x86 register number, 0 = rax ... 15 = r15 */
			bool is_write;       /* guest wrote DRn */
		} mov_dr;
		struct {
			uint8_t kind;        /* enum engine_access_kind */
			bool is_write;
			uint8_t size;        /* port accesses: 1, 2 or 4 */
			uint32_t index;      /* port, MSR or CR number */
			uint64_t value;      /* what was read or written */
			uint64_t pc;         /* linear address of the accessing instruction;
					      * the vCPU stopped after it */
		} access;
		struct {
			uint64_t pc;
			uint8_t insn[16];    /* bytes at pc, as far as known */
			uint8_t insn_len;    /* 0 when unknown */
			uint32_t suberror;   /* engine-specific */
		} failure;
		struct {
			int16_t vector;      /* exception that began the escalation, -1 unknown */
		} shutdown;
		struct {
			uint64_t hw_reason;
		} entry_failure;
		struct {
			uint32_t code;
		} unknown;
	};
};

/* A vCPU's architectural state, moved by part (vcpu->get_state and
 * set_state): one call per part at most, as each costs an ioctl on KVM. */
enum x86_state_part {
	X86_STATE_REGS  = 1u << 0,   /* general registers, RIP, RFLAGS */
	X86_STATE_SREGS = 1u << 1,   /* segments, descriptor tables, CRs, EFER, APIC base */
	X86_STATE_FPU   = 1u << 2,   /* x87/SSE */
	X86_STATE_DR    = 1u << 3,   /* the guest's DR0-3, DR6, DR7 */
	X86_STATE_MSRS  = 1u << 4,   /* the SYSCALL MSRs and KERNEL_GS_BASE */
	X86_STATE_XCR0  = 1u << 5,   /* set before FPU: it decides what XRSTOR-like loads take */
	X86_STATE_ALL   = (1u << 6) - 1,
};

struct x86_state {
	struct x86_regs regs;
	struct x86_sregs sregs;
	struct x86_fpu fpu;
	uint64_t xcr0;
	struct x86_debugregs dr;
	uint64_t star, lstar, cstar, fmask, kernel_gs_base;
};

/* Accesses the debugger wants to stop after (`monitor catch io|msr|cr`):
 * an instruction that makes one retires and the run ends with
 * VM_EXIT_ACCESS. caps.catch_access says which kinds an engine sees. */
enum engine_access_kind { ENGINE_ACCESS_IO, ENGINE_ACCESS_MSR, ENGINE_ACCESS_CR,
			  ENGINE_ACCESS_KINDS };
#define ENGINE_ACCESS_RULES 16
struct engine_access_rule {
	uint8_t kind;          /* enum engine_access_kind */
	bool read, write;      /* CR rules: write only */
	uint32_t first, last;  /* ports, MSR numbers or CR numbers, inclusive */
};
struct engine_access_filter {
	unsigned nr;
	struct engine_access_rule rule[ENGINE_ACCESS_RULES];
};

/* The first rule that covers this access, or NULL. */
static inline const struct engine_access_rule *
engine_access_match(const struct engine_access_filter *f, enum engine_access_kind kind,
		    uint32_t index, bool is_write)
{
	for (unsigned i = 0; i < f->nr && i < ENGINE_ACCESS_RULES; i++) {
		const struct engine_access_rule *r = &f->rule[i];
		if (r->kind == kind && index >= r->first && index <= r->last &&
		    (is_write ? r->write : r->read))
			return r;
	}
	return NULL;
}

/* What the debugger asks of one vCPU until it asks again. */
struct engine_debug {
	bool single_step;      /* exit with VM_EXIT_DB (DR6_BS) after one instruction */
	bool block_irq;        /* hold off interrupts while single stepping */
	bool intercept_bpt;    /* INT3 exits with VM_EXIT_BPT instead of reaching the guest */
	bool use_hw_bp;        /* load db[]/dr7 below into the hardware */
	uint64_t db[4];
	uint64_t dr7;
	/* intercepts as bhyve names them (VM_CAP_DB_EXIT, VM_CAP_DR_MOV_EXIT): */
	bool intercept_db;     /* the guest's own #DB exits (db.guest_dr6) instead of being delivered */
	bool intercept_mov_dr; /* guest MOV DR exits VM_EXIT_MOV_DR after it was emulated */
	struct engine_access_filter access;
};

/* A guest range whose accesses the engine reports (engine_ops.set_watch).
 * It lies within one 4 KiB page: the debug core splits longer ones. */
struct engine_watch {
	uint64_t linear;     /* its first byte's linear address (0 when phys) */
	uint64_t gpa;        /* where that byte is now, through the page tables */
	uint32_t len;        /* 1..4096, not crossing a page */
	bool read, write;    /* the accesses it reports */
	bool phys;           /* a guest-physical range: gpa is the watch itself, every
			      * access whose physical bytes overlap it matches, whatever
			      * its linear address (caps.watch_linear engines too) */
	uint32_t id;         /* given back as vm_exit.db.watch = id + 1 */
};

/* What this engine really does on this host where the debug core's
 * choices depend on it, found out by asking and by trying (a tiny guest
 * for the things no capability flag tells). The debug core probes them
 * once, when it is created with the VM; everything else an engine found
 * is for the user (struct engine_report). */
struct engine_caps {
	bool step_block_irq;   /* single_step can hold off interrupts itself */
	bool hw_data_bp;       /* DR0-3 data breakpoints fire */
	bool gd_trap;          /* DR7.GD makes guest MOV DR exit */
	bool shared_dr;        /* one DR0-3 set per vCPU: the debugger's hardware
				* breakpoints displace the guest's (debug/dr_share.c) */
	bool watch_linear;     /* set_watch matches every access by linear address (exact);
				* otherwise it traps the pages at engine_watch.gpa */
	bool step_keeps_guest_tf; /* single_step leaves the guest's own RFLAGS.TF, its
				   * images and its traps exact: no shadow needed */
	unsigned catch_access;   /* bit n: engine_debug.access sees enum engine_access_kind n */
	bool ring0_native;       /* the host runs guest kernel (ring-0) code natively */
	double ring0_rate;       /* guest ring-0 instructions per second measured here;
				  * 0: not measured (no hardware under the engine, or it failed) */
};

/* One probe finding for the user: "name: yes/no (how)". */
struct engine_feature {
	const char *name;
	bool present;
	char how[160];
};

#define ENGINE_MAX_FEATURES 16

/* The findings in the words and order `vmdb --probe` and `monitor info
 * caps` print them; more than engine_caps says (ring 3, the host's speed). */
struct engine_report {
	struct engine_feature features[ENGINE_MAX_FEATURES];
	unsigned nr;
};

/* Instructions an engine could not execute itself and handed, one at a
 * time, to another engine's core (kvm -> emu): per vCPU, by mnemonic. */
#define ENGINE_FALLBACK_KINDS 16
#define ENGINE_FALLBACK_NAME  24

struct engine_fallback_stats {
	uint64_t total;
	unsigned nr;                 /* entries used in insn[] */
	struct {
		char name[ENGINE_FALLBACK_NAME];   /* "CMPXCHG16B"; "other" when insn[] is full */
		uint64_t count;
	} insn[ENGINE_FALLBACK_KINDS];
};

/* An engine's execution core lent to another engine, one instruction at a
 * time (emu's, engine/emu/emu_single.h): kvm runs what the host's
 * instruction emulator rejects on it. */
struct emu_single_ops;

/* The interrupt controllers as the debugger shows them (`monitor info
 * lapic|ioapic|pic`): register images, decoded by debug/inspect.c. */
#define ENGINE_IOAPIC_PINS 24
struct engine_irqchip {
	bool have_lapic;
	uint32_t lapic[64];          /* xAPIC register at offset off: lapic[off >> 4] */
	bool have_ioapic;
	uint32_t ioapic_id;          /* as IOAPICID reads (ID in bits 27:24) */
	uint64_t ioapic_redir[ENGINE_IOAPIC_PINS];
	bool have_pic;
	struct engine_pic {
		uint8_t irr, isr, imr, vector_base, elcr;
		bool initialised, auto_eoi;
	} pic[2];                    /* master, slave */
};

/* The ops come in groups. vm and vcpu are always there; debug and lend
 * are NULL when the engine cannot do that at all. Inside a group, an op
 * said to be optional may be NULL: the caller does without it. An op
 * that returns int returns 0 or -errno (util/err.h's convention). */

struct engine_vm_ops {
	/* Create the VM-wide engine state (vm->engine_vm). assist: the core
	 * to hand single instructions this engine cannot execute to (NULL:
	 * none; engine_assist() names the one linked in). */
	int (*create)(struct vm *vm, const struct emu_single_ops *assist, struct err *e);
	void (*destroy)(struct vm *vm);
	/* Back guest-physical [gpa, gpa+size) with host memory. */
	int (*map_memory)(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
			  bool readonly, struct err *e);
	/* Assert (level 1) or deassert an interrupt line of the I/O APIC / PIC.
	 * Optional. */
	int (*irq_line)(struct vm *vm, unsigned irq, int level);
	/* Guest time in ns, for the machine's own clocks (the ACPI PM timer):
	 * the clock the engine's PIT and TSC follow. Optional: the host's
	 * CLOCK_MONOTONIC (what KVM's in-kernel timers use). Any thread. */
	uint64_t (*guest_ns)(struct vm *vm);
	/* Fill caps; with report, also every finding in words (that may take
	 * longer: more probe guests). Needs no vm; assist as for create.
	 * Optional: the engine cannot be probed. */
	int (*probe)(const struct emu_single_ops *assist, struct engine_caps *caps,
		     struct engine_report *report, struct err *e);
	/* Optional: what this VM's configuration changes in the probed caps
	 * (emu's --cpu kvm-step steps the way the host KVM does). */
	void (*vm_caps)(struct vm *vm, struct engine_caps *caps);
	/* Optional: kernel parameters Linux needs to run on this engine and
	 * host ("noxsave"), with the reason in words in *why; NULL: none.
	 * The Linux loaders add them to the command line. The first call
	 * may run a probe guest. */
	const char *(*linux_params)(struct vm *vm, const char **why);
};

struct engine_vcpu_ops {
	/* Per vCPU (vcpu->engine). vcpu->id 0 is the bootstrap processor;
	 * the others wait for INIT/SIPI. */
	int (*create)(struct vm *vm, struct vcpu *vcpu, struct err *e);
	void (*destroy)(struct vcpu *vcpu);
	/* Run until an exit. Returns 0 (exit filled) or -errno on a host error. */
	int (*run)(struct vcpu *vcpu, struct vm_exit *exit);
	/* Make run() (and lend->run()) return VM_EXIT_KICKED soon. Any
	 * thread, async-safe. */
	void (*kick)(struct vcpu *vcpu);
	/* A vCPU's architectural state by part (mask of X86_STATE_*): get
	 * fills the named parts of *st and leaves the others alone; set
	 * writes the named parts (system registers first: they decide how
	 * the rest is read). Called with the vCPU out of run(). */
	int (*get_state)(struct vcpu *vcpu, unsigned mask, struct x86_state *st);
	int (*set_state)(struct vcpu *vcpu, unsigned mask, const struct x86_state *st);
	/* true when the vCPU waits for INIT/SIPI or sits in HLT. Optional. */
	int (*get_run_state)(struct vcpu *vcpu, bool *halted, bool *waiting_sipi);
	/* Any one MSR of the vCPU, for the debugger (`monitor msr`): 0, or
	 * -ENOENT when the CPU has no such MSR (RDMSR would #GP), -EINVAL when
	 * it refuses the value (WRMSR would #GP); the guest sees no fault.
	 * Optional. */
	int (*msr_get)(struct vcpu *vcpu, uint32_t msr, uint64_t *value);
	int (*msr_set)(struct vcpu *vcpu, uint32_t msr, uint64_t value);
	/* The vCPU's local APIC and the machine's IOAPIC and PIC pair as
	 * they are now (have_* false for a model the engine lacks). Optional. */
	int (*irqchip_get)(struct vcpu *vcpu, struct engine_irqchip *chip);
	/* Deliver exception `vector` to the guest on its next run. Optional. */
	int (*inject_exception)(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
				uint32_t error_code);
	/* The instructions this vCPU handed to another engine's core so far.
	 * Optional: the engine never does. Any thread; counts may be moving. */
	int (*fallback_stats)(struct vcpu *vcpu, struct engine_fallback_stats *stats);
	/* The vCPU was held out of run() and is about to run again: tell the
	 * guest's paravirtual clock it was paused, so the guest's watchdogs
	 * (soft lockup, RCU stall) forgive the time it did not run. 0 also
	 * where the guest has not enabled that clock. Called with the vCPU
	 * out of run(). Optional: the engine offers no such clock. */
	int (*note_paused)(struct vcpu *vcpu);
};

struct engine_debug_ops {
	/* What the debugger asks of the vCPU from its next run on. */
	int (*set_debug)(struct vcpu *vcpu, const struct engine_debug *dbg);
	/* Report every access to these ranges (the list replaces the last
	 * one; n = 0 ends watching) as VM_EXIT_DB with db.watch, after the
	 * accessing instruction (or REP iteration). By linear address where
	 * caps.watch_linear, else by trapping the guest-physical pages (the
	 * other accesses to them run on). The debugger's own accesses to
	 * guest memory are not reported. Called with every vCPU out of run().
	 * Optional. */
	int (*set_watch)(struct vm *vm, const struct engine_watch *w, unsigned n,
			 struct err *e);
	/* Whether set_debug can honour this access filter (engine_debug.access)
	 * on every vCPU: 0, or -errno with the reason in words (a kind this
	 * host cannot catch, a range the engine cannot watch); the finer word
	 * behind caps.catch_access. Optional: every rule of a kind in
	 * caps.catch_access is honoured. */
	int (*check_access)(struct vm *vm, const struct engine_access_filter *f, struct err *e);
	/* Deliver exception `vector` through the guest's IDT now, as the CPU
	 * does at an instruction boundary, with RFLAGS = rflags (the guest's
	 * own TF and IF, which the engine's may hide while the debugger
	 * steps): on return the vCPU is at the first instruction of the
	 * handler, not executed. The step shadow delivers the guest's own
	 * traps with it. Optional. */
	int (*deliver_exception)(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
				 uint32_t error_code, uint64_t rflags);
};

/* Lending: run() on another thread while the vCPU's own thread is held
 * outside run(). The debugger single-steps a parked vCPU on its own
 * thread, two thread wake-ups less per step; vcpu->kick() reaches that
 * thread too. An exit that thread cannot handle is handed by the debug
 * core to the vCPU's own thread, which handles it before it calls run()
 * again. */
struct engine_lend_ops {
	int (*run)(struct vcpu *vcpu, struct vm_exit *exit);
	/* Optional: whether the engine holds an event for the vCPU's next
	 * instruction (a pending or injected exception, NMI or interrupt, an
	 * interrupt shadow), and whether NMIs are blocked (until an IRET).
	 * Where it answers, the debug core may step a parked vCPU on another
	 * engine's core (engine_vm_ops.create's assist) over the state it
	 * read, when no such event is held: the engine's next run gets the
	 * state written back first. */
	int (*events_pending)(struct vcpu *vcpu, bool *pending, bool *nmi_blocked);
};

/* Whole-machine snapshots (machine/snapshot.c): the engine's whole-VM
 * state — every vCPU's architectural and execution state, its interrupt
 * controllers, timers and clock, and who runs next — as bytes. Called
 * with every vCPU at an instruction boundary and out of the core (the run
 * token's holder between quanta, or every vCPU parked). Guest RAM is not
 * in it: the store keeps RAM itself, from machine/'s dirty map. */
struct engine_snap_ops {
	/* Bytes save() writes for this VM (fixed while the VM lives). */
	size_t (*size)(struct vm *vm);
	int (*save)(struct vm *vm, void *buf, size_t size, struct err *e);
	/* Put back what save() wrote; guest RAM is already back (caches of
	 * its bytes are dropped here: TLBs, decoded blocks). The debugger's
	 * current requests (set_debug, set_watch) stay as they are. */
	int (*restore)(struct vm *vm, const void *buf, size_t size, struct err *e);
	/* The store cleared vm->ram_dirty: take back every cached write
	 * permission, so the next write to each page marks it again. */
	void (*ram_clean)(struct vm *vm);
};

struct engine_ops {
	const char *name;
	const struct engine_vm_ops *vm;
	const struct engine_vcpu_ops *vcpu;
	const struct engine_debug_ops *debug;   /* NULL: no debugging beyond state access */
	const struct engine_lend_ops *lend;     /* NULL: only the vCPU's own thread runs it */
	const struct engine_rr_ops *rr;         /* NULL: no record and replay */
	const struct engine_snap_ops *snap;     /* NULL: no snapshots (reverse execution) */
	/* The core this engine lends to others (emu's), or NULL. */
	const struct emu_single_ops *assist;
};

/* Each engine registers itself with one line at file scope,
 * ENGINE_REGISTER(its_ops): a pointer in a linker section, read in link
 * order by engine_find(). No central list: a binary has the engines it
 * links. */
#define ENGINE_REGISTER(ops)                                                     \
	static const struct engine_ops *const engine_registered_##ops            \
		__attribute__((used, section("vmdb_engines"), aligned(8))) = &(ops)

/* One part of a vCPU's state, for the few callers outside debug/ that
 * need just that part (loaders, messages about a stopped vCPU). */
static inline int engine_get_regs(const struct engine_ops *ops, struct vcpu *vcpu,
				  struct x86_regs *regs)
{
	struct x86_state st;
	st.regs = (struct x86_regs){ 0 };
	int r = ops->vcpu->get_state(vcpu, X86_STATE_REGS, &st);
	*regs = st.regs;
	return r;
}

static inline int engine_set_regs(const struct engine_ops *ops, struct vcpu *vcpu,
				  const struct x86_regs *regs)
{
	struct x86_state st;
	st.regs = *regs;
	return ops->vcpu->set_state(vcpu, X86_STATE_REGS, &st);
}

static inline int engine_get_sregs(const struct engine_ops *ops, struct vcpu *vcpu,
				   struct x86_sregs *sregs)
{
	struct x86_state st;
	st.sregs = (struct x86_sregs){ 0 };
	int r = ops->vcpu->get_state(vcpu, X86_STATE_SREGS, &st);
	*sregs = st.sregs;
	return r;
}

static inline int engine_set_sregs(const struct engine_ops *ops, struct vcpu *vcpu,
				   const struct x86_sregs *sregs)
{
	struct x86_state st;
	st.sregs = *sregs;
	return ops->vcpu->set_state(vcpu, X86_STATE_SREGS, &st);
}

/* The engines linked into this binary, by name ("kvm", ...). */
const struct engine_ops *engine_find(const char *name);
/* Their names, for messages: "kvm, emu" (link order). */
void engine_names(char *out, size_t size);
/* The single-instruction core an engine linked into this binary lends
 * (emu's), or NULL. */
const struct emu_single_ops *engine_assist(void);

/* The engine whose single-instruction core `assist` is (emu, for emu's
 * core), or NULL: for words such as "kvm -> emu". */
const struct engine_ops *engine_lender(const struct emu_single_ops *assist);

/* Add one vCPU's fallback counts to sum (same names add up; beyond
 * ENGINE_FALLBACK_KINDS names, "other"). */
void engine_fallback_merge(struct engine_fallback_stats *sum,
			   const struct engine_fallback_stats *one);
/* "12 (INT 7, XRSTOR 3, CMPXCHG16B 2)", most frequent first; "0" if none. */
void engine_fallback_format(const struct engine_fallback_stats *stats, char *out, size_t size);

/* --engine auto: kvm where the host runs guest kernel (ring-0) code
 * natively, emu where it does not (it is then faster than the host's
 * instruction emulator) or where there is no /dev/kvm. Asks kvm's probe
 * for its caps (engine_caps.ring0_native: two tiny probe guests, one of
 * them timing a ring-0 loop, ~50 ms here). why gets one sentence for the
 * user. */
const struct engine_ops *engine_auto(char *why, size_t size);

#endif
