/* engine/kvm/kvm.h — private to the KVM engine: the per-VM and per-vCPU
 * state behind vm->engine_vm and vcpu->engine, the cached
 * KVM_CHECK_EXTENSION answers, and the helpers the engine's files share.
 * Nothing outside engine/kvm/ includes this except the engine's own unit
 * tests and bench/kvm_step_leak.c.
 *
 * Addresses in exits: db.pc and bpt.pc are what KVM reports in
 * kvm_run.debug.arch.pc, a linear address (CS base + RIP; equal to RIP in
 * 64-bit mode). failure.pc follows the same rule. */
#ifndef VMDB_ENGINE_KVM_H
#define VMDB_ENGINE_KVM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "engine/engine.h"
#include "machine/vm.h"

extern const struct engine_ops kvm_engine_ops;

/* Guest memory the engine itself may read (instruction bytes after an
 * emulation failure). Filled by map_memory. */
struct kvm_mem_slot {
	uint64_t gpa, size;
	uint8_t *host;
	bool readonly;
};

#define KVM_ENGINE_MAX_SLOTS 32

/* KVM_CHECK_EXTENSION answers asked once per VM. */
struct kvm_host_caps {
	bool irqchip;
	bool pit2;
	bool readonly_mem;
	bool vcpu_events;
	bool debugregs;
	bool xsave;
	bool sync_regs;            /* KVM_CAP_SYNC_REGS covers the general registers */
	bool msr_filter;           /* KVM_CAP_X86_MSR_FILTER with KVM_CAP_X86_USER_SPACE_MSR */
	bool kvmclock_ctrl;        /* KVM_CAP_KVMCLOCK_CTRL: a paused vCPU's pvclock can say so */
	uint32_t guest_debug2;     /* KVM_GUESTDBG_* flags the host accepts; 0 = unknown */
	unsigned max_vcpus;
	unsigned nr_memslots;
};

/* kvm_watch.c: the watched ranges and how the memory map was split for
 * them (split[i]: map_memory's slot i is replaced by pieces). */
struct kvm_watch_state {
	struct engine_watch *ranges;
	unsigned nr;
	bool split[KVM_ENGINE_MAX_SLOTS];
	unsigned nr_pieces;          /* slot ids KVM_ENGINE_MAX_SLOTS.. in use */
	/* The map gate: run() is inside it from before KVM_RUN until its
	 * page-trap accesses are done; set_watch closes it, kicks the vCPUs
	 * inside and changes the memory map only once none is. */
	pthread_mutex_t gate_lock;
	pthread_cond_t gate_cond;
	unsigned inside;
	bool closed;
};

/* Whether the guest's CPUID leaf 1 follows the vCPU's table, in ring 0
 * or in ring 3, found by a throwaway VM whose table lacks AVX: FOLLOWS
 * (no AVX in the answer: the table's word, or a host without AVX),
 * HOST_AVX (the host CPU's own bits answered: AVX though KVM's own
 * supported table may not even list it, as here). */
enum kvm_cpuid_avx { KVM_CPUID_UNKNOWN, KVM_CPUID_FOLLOWS, KVM_CPUID_HOST_AVX };

/* kvm_msr_catch.c: the MSR filter that denies the caught MSRs, as ranges
 * of all-zero bitmaps over a default of allow (compared bytewise: no
 * padding). */
struct kvm_msr_deny {
	unsigned nr;
	struct kvm_msr_deny_range {
		uint32_t base, nmsrs;
		uint32_t flags;          /* KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE */
	} range[KVM_MSR_FILTER_MAX_RANGES];
};

struct kvm_msr_catch {
	bool exits;                  /* KVM_MSR_EXIT_REASON_FILTER enabled: denied accesses exit */
	pthread_mutex_t lock;        /* several vCPUs' set_debug at once */
	struct kvm_msr_deny installed;
};

struct kvm_vm_state {
	int sys_fd;                /* /dev/kvm */
	int vm_fd;
	size_t run_size;           /* KVM_GET_VCPU_MMAP_SIZE */
	int kick_signal;           /* real-time signal that knocks a vCPU out of KVM_RUN */
	struct kvm_host_caps caps;
	/* emu's core for the instructions the host cannot emulate (given
	 * at creation, kvm_fallback.c); NULL: those stay failures */
	const struct emu_single_ops *assist;
	struct kvm_cpuid2 *cpuid;  /* KVM_GET_SUPPORTED_CPUID, patched per vCPU */
	bool hypercalls;           /* paravirt features that use VMCALL stay advertised */
	enum kvm_cpuid_avx ring0_cpuid;  /* probed at the first linux_params */
	struct kvm_mem_slot slots[KVM_ENGINE_MAX_SLOTS];
	unsigned nr_slots;
	struct kvm_watch_state watch;
	struct kvm_msr_catch msr;
};

struct kvm_mend_bp {
	uint64_t addr;             /* 0: none armed */
	unsigned slot;             /* the DR0-3 it takes */
	uint64_t checked_ns;       /* when the #PF gate was last looked at */
	uint64_t interval_ns;      /* until the next look: longer while nothing changes */
	bool lstar_seen;           /* the kernel had a SYSCALL entry at some look */
	bool stepping_over;        /* a single step past it, the breakpoint out */
};

struct kvm_vcpu_state {
	struct kvm_vm_state *kvm;
	int fd;
	struct kvm_run *run;       /* shared with the kernel; immediate_exit lives here */
	size_t run_size;
	int kick_signal;
	/* The thread that calls run(), recorded by run() itself so kick()
	 * never signals a thread that has not run yet. */
	pthread_t thread;
	atomic_bool thread_known;
	bool signal_unblocked;     /* only touched by the vCPU thread */
	/* run->s.regs.regs holds the registers of the last exit (KVM stores
	 * them there with every exit when kvm_valid_regs asks for them, see
	 * KVM_CAP_SYNC_REGS): get_regs reads them without an ioctl. Cleared
	 * by run() before KVM_RUN and by set_regs; written by the vCPU
	 * thread, read by whoever reads registers while the vCPU is out of
	 * run(). */
	bool regs_synced;
	/* Set while another thread is inside run_borrowed(): kick() signals
	 * that thread as well. */
	atomic_bool borrowed;
	pthread_t borrower;
	/* What the debugger asked last (kvm_op_set_debug): run() needs it to
	 * finish an instruction emu executed as KVM would have. */
	struct engine_debug debug;
	/* A port access the debugger's filter names (debug.access) exited to
	 * userspace: the next run() completes it without running further
	 * (immediate_exit) and returns this VM_EXIT_ACCESS instead. */
	bool access_pending;
	struct vm_exit access_exit;
	const uint8_t *access_in_data;   /* IN: where machine/ put the value */
	/* A debugger's single step exited for port I/O or MMIO: the next run()
	 * completes the access alone and ends the step there (kvm_vcpu.c). */
	bool step_io_pending;
	/* The emu fallback (kvm_fallback.c); NULL without an assist. */
	struct kvm_fallback *fb;
	bool in_gate;              /* inside the map gate (kvm_watch.c) */
	/* KVM_GET_SREGS of the last emulation failure, for the fallback
	 * (valid until the next KVM_RUN; vCPU thread only) */
	struct kvm_sregs fail_sregs;
	bool fail_sregs_valid;
	/* kvm_syscall_mend.c's own execution breakpoint at the guest's #PF
	 * entry, where no CLAC exits (vCPU thread only) */
	struct kvm_mend_bp mend_bp;
};

static inline struct kvm_vm_state *kvm_vm_of(struct vm *vm)
{
	return (struct kvm_vm_state *)vm->engine_vm;
}

static inline struct kvm_vcpu_state *kvm_vcpu_of(struct vcpu *vcpu)
{
	return (struct kvm_vcpu_state *)vcpu->engine;
}

/* kvm_vm.c */
int kvm_op_vm_create(struct vm *vm, const struct emu_single_ops *assist, struct err *e);
void kvm_op_vm_destroy(struct vm *vm);
int kvm_op_map_memory(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
		      bool readonly, struct err *e);
int kvm_op_irq_line(struct vm *vm, unsigned irq, int level);
/* The KVM_CHECK_EXTENSION answers of /dev/kvm itself, without a VM. */
int kvm_query_host_caps(struct kvm_host_caps *caps, struct err *e);
/* Copy guest-physical [gpa, gpa+len) out of a mapped slot: 0 or -EFAULT. */
int kvm_read_phys(struct kvm_vm_state *kvm, uint64_t gpa, void *buf, size_t len);
/* The same into guest RAM; -EFAULT outside it or in a read-only slot. */
int kvm_write_phys(struct kvm_vm_state *kvm, uint64_t gpa, const void *buf, size_t len);

/* kvm_vcpu.c */
int kvm_op_vcpu_create(struct vm *vm, struct vcpu *vcpu, struct err *e);
void kvm_op_vcpu_destroy(struct vcpu *vcpu);
int kvm_op_run(struct vcpu *vcpu, struct vm_exit *exit);
int kvm_op_run_borrowed(struct vcpu *vcpu, struct vm_exit *exit);
/* One KVM_RUN, its exit translated (a kick or EINTR: VM_EXIT_KICKED). */
int kvm_run_once(struct kvm_vcpu_state *v, struct vm_exit *exit);
/* struct kvm_run's exit (after a KVM_RUN that returned 0) into *exit. */
void kvm_exit_translate(struct kvm_vcpu_state *v, struct vm_exit *exit);
void kvm_op_kick(struct vcpu *vcpu);
/* Read up to max instruction bytes at the linear address pc through the
 * guest's page tables, a page at a time; returns how many were readable.
 * Used when KVM does not hand over the bytes of a failed instruction. */
unsigned kvm_fetch_insn(struct kvm_vcpu_state *v, const struct kvm_sregs *sregs, uint64_t pc,
			uint8_t *buf, unsigned max);

/* kvm_regs.c */
int kvm_op_get_regs(struct vcpu *vcpu, struct x86_regs *regs);
int kvm_op_set_regs(struct vcpu *vcpu, const struct x86_regs *regs);
int kvm_op_get_sregs(struct vcpu *vcpu, struct x86_sregs *sregs);
/* The conversion get_sregs does, for a struct kvm_sregs already read. */
void kvm_sregs_from(struct x86_sregs *sregs, const struct kvm_sregs *k);
int kvm_op_set_sregs(struct vcpu *vcpu, const struct x86_sregs *sregs);
int kvm_op_get_fpu(struct vcpu *vcpu, struct x86_fpu *fpu);
int kvm_op_set_fpu(struct vcpu *vcpu, const struct x86_fpu *fpu);
int kvm_op_get_msr(struct vcpu *vcpu, uint32_t index, uint64_t *value);
int kvm_op_set_msr(struct vcpu *vcpu, uint32_t index, uint64_t value);
int kvm_op_irqchip_get(struct vcpu *vcpu, struct engine_irqchip *chip);
int kvm_op_get_debugregs(struct vcpu *vcpu, struct x86_debugregs *dr);
int kvm_op_set_debugregs(struct vcpu *vcpu, const struct x86_debugregs *dr);
int kvm_op_get_run_state(struct vcpu *vcpu, bool *halted, bool *waiting_sipi);
int kvm_op_events_pending(struct vcpu *vcpu, bool *pending, bool *nmi_blocked);
/* vcpu->get_state / set_state, built on the ones above */
int kvm_op_get_state(struct vcpu *vcpu, unsigned mask, struct x86_state *st);
int kvm_op_set_state(struct vcpu *vcpu, unsigned mask, const struct x86_state *st);

/* kvm_debug.c */
int kvm_op_set_debug(struct vcpu *vcpu, const struct engine_debug *dbg);
struct kvm_mov_dr {
	uint8_t dr, gpr;         /* DR number (8-15 with REX.R), x86 register number */
	bool to_dr;              /* MOV DRn, reg */
};
unsigned kvm_mov_dr_decode(const uint8_t *buf, unsigned len, bool long64, struct kvm_mov_dr *m);
/* A debug exit with DR6.BD under intercept_mov_dr: the MOV DR it stopped
 * is done on the guest's own file and *exit becomes VM_EXIT_MOV_DR (or
 * NONE when the MOV faulted, its exception injected); false: it stays
 * the #DB it is (the guest's own DR7.GD). */
bool kvm_mov_dr_exit(struct vcpu *vcpu, struct vm_exit *exit);
int kvm_op_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
			    uint32_t error_code);

/* kvm_probe.c */
int kvm_op_probe(const struct emu_single_ops *assist, struct engine_caps *caps,
		 struct engine_report *report, struct err *e);

/* kvm_fallback.c — instructions the host's emulator gives up on
 * (KVM_EXIT_INTERNAL_ERROR, emulation failure) run one at a time on emu's
 * execution core (engine/emu/emu_single.h), so guests that use them run on
 * KVM here too. Without an assist (the engine's unit tests) every call is
 * a no-op and failures stay failures. */
struct kvm_fallback;
/* Without the VM's assist nothing is created and v->fb stays NULL. */
int kvm_fallback_create(struct vcpu *vcpu, struct kvm_vcpu_state *v, struct err *e);
void kvm_fallback_destroy(struct kvm_vcpu_state *v);
/* Called by run() before KVM_RUN (exit cleared): true when KVM_RUN may go
 * on (no instruction was left half done, or emu has now finished it);
 * false: *exit is for the caller. */
bool kvm_fallback_ready_to_run(struct vcpu *vcpu, struct vm_exit *exit);
/* Called by run() after an exit: true when emu handled it (the failed
 * instruction is done, KVM_RUN goes on); false: *exit is for the caller. */
bool kvm_fallback_handled(struct vcpu *vcpu, struct vm_exit *exit);
/* #BP for the guest through emu (exact frame whatever the vendor):
 * 0, or -errno when emu could not (the caller injects through KVM). */
int kvm_fallback_deliver(struct vcpu *vcpu, uint8_t vector);
/* engine_ops.deliver_exception, by emu's core: -ENOTSUP without it. */
int kvm_op_deliver_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
			     uint32_t error_code, uint64_t rflags);
int kvm_op_fallback_stats(struct vcpu *vcpu, struct engine_fallback_stats *stats);

/* kvm_clock.c — engine_vcpu_ops.note_paused: KVM_KVMCLOCK_CTRL where the
 * host has it; 0 where the guest has not enabled kvmclock. */
int kvm_op_note_paused(struct vcpu *vcpu);

/* kvm_syscall_mend.c — a ring-3 SYSCALL the host left at CPL 3, met at the
 * guest's #PF entry (see there): true when that #PF was undone and the
 * SYSCALL completed (the vCPU at LSTAR in ring 0); false, nothing changed,
 * for any other emulation failure at linear pc. */
bool kvm_syscall_mend(struct vcpu *vcpu, const struct x86_sregs *sregs, uint64_t pc);
/* Where the guest's #PF entry gives no exit (no SMAP: no CLAC), an
 * execution breakpoint of vmdb's own there: _watch, after any exit, (re)arms
 * it as the guest's IDT says (looking once a millisecond at most, less often
 * while nothing changes); _load adds it to
 * the KVM_SET_GUEST_DEBUG request when a DR0-3 slot is free; _exit takes
 * its debug exits (true: handled, KVM_RUN goes on; false: *exit, without
 * the breakpoint's DR6 bit, is for the caller). */
void kvm_syscall_mend_watch(struct vcpu *vcpu);
void kvm_syscall_mend_load(const struct kvm_vcpu_state *v, struct kvm_guest_debug *g);
bool kvm_syscall_mend_exit(struct vcpu *vcpu, struct vm_exit *exit);
/* kvm_fallback.c: the mend at linear pc, counted as SYSCALL: true when
 * done; a debugger's step then ends at LSTAR (*exit says so). */
bool kvm_fallback_syscall_mended(struct vcpu *vcpu, const struct x86_sregs *sregs, uint64_t pc,
				 struct vm_exit *exit);

/* kvm_watch.c — engine_ops.set_watch as page traps (see there). */
int kvm_op_set_watch(struct vm *vm, const struct engine_watch *w, unsigned n, struct err *e);
void kvm_watch_init(struct kvm_vm_state *kvm);
void kvm_watch_free(struct kvm_vm_state *kvm);
/* Around each run(): wait while set_watch changes the memory map. */
void kvm_watch_gate_enter(struct kvm_vcpu_state *v);
void kvm_watch_gate_leave(struct kvm_vcpu_state *v);
/* Close the gate with no vCPU left inside run() (those inside are kicked
 * out), for a VM-wide change; open it again. Never from inside run(). */
void kvm_watch_gate_close(struct vm *vm);
void kvm_watch_gate_open(struct kvm_vm_state *kvm);
/* An MMIO exit (still in v->run): -1 not on a trapped page; else the
 * access is completed against RAM and the result is the id + 1 of a
 * watched range it touched, 0 for none (run on). */
int kvm_watch_mmio(struct kvm_vcpu_state *v);
/* After a hit: finish the instruction, fill *exit (VM_EXIT_DB, db.watch). */
int kvm_watch_report(struct kvm_vcpu_state *v, struct vm_exit *exit, uint32_t hit);

/* kvm_msr_catch.c — `monitor catch msr` through KVM's MSR filter (see
 * there). */
/* At VM creation, once vm_fd exists: denied MSR accesses exit to vmdb
 * where the host has the filter (msr.exits). */
void kvm_msr_catch_init(struct kvm_vm_state *kvm);
void kvm_msr_catch_free(struct kvm_vm_state *kvm);
/* The filter ranges that deny exactly f's MSR rules, per direction: 0, or
 * -errno with why in words (the x2APIC MSRs, more than the filter holds). */
int kvm_msr_deny_build(const struct engine_access_filter *f, struct kvm_msr_deny *out,
		       struct err *e);
/* engine_debug_ops.check_access. */
int kvm_op_check_access(struct vm *vm, const struct engine_access_filter *f, struct err *e);
/* From set_debug: the VM's filter becomes f's, with every vCPU out of
 * KVM_RUN, when it differs. Never from inside run(). */
int kvm_msr_catch_apply(struct vcpu *vcpu, const struct engine_access_filter *f);
/* KVM_EXIT_X86_RDMSR/WRMSR (still in v->run): the access is done, the
 * instruction finished, and *exit is VM_EXIT_ACCESS (VM_EXIT_DB where a
 * step ended there; VM_EXIT_NONE where the access raised #GP). */
void kvm_msr_exit(struct kvm_vcpu_state *v, struct vm_exit *exit);

/* kvm_cpuid.c — the vCPU's CPUID table (KVM's supported one, patched):
 * KVM_SET_CPUID2 for vCPU `id`. */
int kvm_vcpu_set_cpuid(struct kvm_vm_state *kvm, struct kvm_vcpu_state *v, unsigned id,
		       struct err *e);
/* Whether the guest's CPUID leaf 1 follows the vCPU's table, in ring 0
 * or in ring 3 (enum kvm_cpuid_avx), found by a throwaway VM. */
int kvm_cpuid_probe_avx(const struct emu_single_ops *assist, bool user, enum kvm_cpuid_avx *out,
			struct err *e);
/* engine_vm_ops.linux_params: "noxsave" where ring 0 sees the host's AVX. */
const char *kvm_op_linux_params(struct vm *vm, const char **why);
/* Whether a ring-0 VMCALL returns on this host (a throwaway VM with the
 * given assist, at most 200 ms). */
bool kvm_hypercall_returns(const struct emu_single_ops *assist);

/* kvm_xstate.c — XSAVE/XSAVEOPT/XSAVEC/XSAVES/XRSTOR/XRSTORS done on
 * KVM's XSAVE image when XCR0 has components emu's image lacks. st holds
 * the registers, system registers and XCR0; DONE advances st->regs.rip
 * (the caller writes the registers back); GP: the instruction raises
 * #GP(0); PF: it raises #PF with *pf_code, the address in st->sregs.cr2;
 * REFUSED: it cannot be done here (supervisor components, a page table
 * outside RAM): the emulation failure stands. */
enum kvm_xstate_result {
	KVM_XSTATE_NOT_MINE, KVM_XSTATE_DONE, KVM_XSTATE_GP, KVM_XSTATE_PF, KVM_XSTATE_REFUSED,
};
/* One of those instructions, in 64-bit mode. */
bool kvm_xstate_match(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len);
enum kvm_xstate_result kvm_xstate_execute(struct vcpu *vcpu, struct x86_state *st,
					  const uint8_t *insn, unsigned len, uint32_t *pf_code);

/* kvm_guest.c — a throwaway one-vCPU VM running hand-assembled 64-bit
 * ring-0 code, for probe() and the engine's unit test. The vCPU starts in
 * long mode (identity-mapped first GiB, 2 MiB pages) with an IDT whose
 * stub for vector v does: ebx = v, rax = [rsp], rcx = [rsp+8],
 * OUT KVM_TINY_PORT_VECTOR, then HLT forever. */
#define KVM_TINY_RAM_SIZE   0x400000ull    /* 4 MiB at gpa 0 */
#define KVM_TINY_PML4       0x2000ull
#define KVM_TINY_GDT        0x5000ull
#define KVM_TINY_IDT        0x6000ull
#define KVM_TINY_STUBS      0x7000ull      /* 32 bytes per vector */
#define KVM_TINY_DATA       0x8000ull
#define KVM_TINY_CODE       0x10000ull
#define KVM_TINY_USER_STACK_TOP 0x70000ull
#define KVM_TINY_STACK_TOP  0x80000ull
#define KVM_TINY_PORT_DONE   0xe0          /* the guest finished its script */
#define KVM_TINY_PORT_VECTOR 0xe1          /* an exception reached the guest */

struct kvm_tiny_guest {
	struct vm *vm;            /* heap: struct vm is large */
	uint8_t *ram;
	struct vcpu *vcpu;
	bool user;                /* for callers: run scripts in ring 3 */
};

/* assist: as for kvm_op_vm_create (NULL: no emu fallback in the guest) */
int kvm_tiny_create(struct kvm_tiny_guest *g, const struct emu_single_ops *assist,
		    struct err *e);
void kvm_tiny_destroy(struct kvm_tiny_guest *g);
/* Copy code to KVM_TINY_CODE and reset the vCPU to run it from the top
 * with debug state cleared. */
int kvm_tiny_load(struct kvm_tiny_guest *g, const uint8_t *code, size_t len, struct err *e);
/* The same in ring 3 (CPL 3, user stack); exceptions go to the ring-0
 * stubs through the TSS. Ring 3 runs natively on hosts like ours. */
int kvm_tiny_load_user(struct kvm_tiny_guest *g, const uint8_t *code, size_t len,
		       struct err *e);
/* run() bounded by a watchdog that kicks the vCPU after timeout_ms:
 * a guest that hangs comes back as VM_EXIT_KICKED. */
int kvm_tiny_run(struct kvm_tiny_guest *g, struct vm_exit *exit, unsigned timeout_ms);

/* ioctl that retries on EINTR from unrelated signals: 0/result or -errno. */
int kvm_ioctl(int fd, unsigned long request, void *arg);

#endif
