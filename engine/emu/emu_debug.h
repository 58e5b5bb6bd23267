/* engine/emu/emu_debug.h — the debug architecture of the software engine
 * (Intel SDM vol. 3 ch. 17), implemented in emu_debug.c and called by the
 * execution core at fixed points. The core never touches DR0-7 itself.
 *
 * Call points (all on the vCPU's own thread):
 *   emu_dbg_before_insn  before each instruction (after interrupt delivery):
 *                        instruction breakpoints (faults; RF suppresses one)
 *   emu_dbg_mem          for each guest memory access, linear address
 *   emu_dbg_io           for each IN/OUT/INS/OUTS port access
 *   emu_dbg_mov_dr       MOV to/from DRn (with GD, DR4/5 aliasing, #UD)
 *   emu_dbg_end_insn     after an instruction retired: data/IO breakpoint
 *                        traps, TF single-step trap (BS) with POPF/IRET and
 *                        MOV SS/STI timing, RF clearing, debugger stepping
 *   emu_dbg_icebp        INT1 / ICEBP
 * Each returns true when the core must stop the instruction / the run:
 * an exception was raised (emu_raise) or an exit was filled (cpu->exit).
 *
 * The fast path: emu_dbg_armed() is false when no DR7 enable, no TF, no
 * debugger request is active, so the core can skip every call. While
 * the debug part only watches data (emu_dbg_data_only: data breakpoints
 * and watched ranges, nothing per instruction), the core may run
 * instructions without before_insn and end_insn as long as every access
 * to a watched page (emu_dbg_page_watch) calls emu_dbg_mem, and calls
 * emu_dbg_end_insn after an instruction that made one hit
 * (emu_dbg_data_hit); emu_dbg_watch_gen changes whenever the pages
 * watched may have.
 *
 * ---- What the core must do (contract with emu_debug.c) ----
 * 1. Per instruction:
 *        armed = emu_dbg_armed(cpu);
 *        if (armed && emu_dbg_before_insn(cpu, cs.base + rip)) stop;
 *        rflags_before = cpu->rflags; execute (emu_dbg_mem for every data
 *        access, not for instruction fetches; emu_dbg_io for every port);
 *        if ((armed || emu_dbg_armed(cpu)) && emu_dbg_end_insn(cpu,
 *            rflags_before)) stop at this boundary;
 *    "stop" after end_insn: the instruction has retired; if cpu->exit is
 *    filled return it (EMU_STOP_EXIT), else go on (a #DB may be pending).
 *    Checking armed() again after the instruction matters only for a MOV
 *    DR that arms a VM_EXIT_MOV_DR exit; before_insn also catches it late.
 * 2. Traps are queued, not raised: end_insn and icebp put #DB into
 *    cpu->pending (vector X86_DB, no error code) with RIP already past the
 *    instruction; the core delivers it at the next boundary before any
 *    interrupt. Faults (instruction breakpoint in before_insn, GD/#UD/#GP
 *    in mov_dr) use emu_raise() with nothing of the instruction executed:
 *    when emu_dbg_mov_dr returns true the core abandons the MOV and puts
 *    RIP back at insn_start_rip (emu_fault-style). When a boundary has
 *    both a filled cpu->exit and a pending #DB, return the exit first and
 *    deliver the #DB on the next run (the exit's pc names the boundary).
 * 3. Do not call emu_dbg_end_insn after an instruction that delivered an
 *    event itself (INT n, INT3, INTO, INT1, or raised any exception): the
 *    new context discards its single-step and data traps (SDM 17.3.1.4;
 *    the frame carries TF, so the trap comes after the IRET's successor).
 * 4. REP string instructions: call emu_dbg_end_insn after every iteration
 *    (RIP still at the instruction while iterations remain); when it
 *    returns true, stop the instruction there. An event delivered between
 *    iterations pushes RFLAGS with RF=1 (SDM 17.3.1.1) so an
 *    instruction breakpoint on the REP does not fire again; a resumed REP
 *    (after a VM exit) calls before_insn again, and emu_dbg sets RF itself
 *    when it exits mid-REP.
 * 5. cpu->interrupt_shadow (EMU_SHADOW_* in emu.h): EMU_SHADOW_MOVSS for
 *    MOV SS / POP SS, EMU_SHADOW_STI for STI, set by that instruction and
 *    cleared just before the next one executes. end_insn sees the
 *    MOV SS bit only for the instruction that created it and then holds
 *    #DB traps back for one instruction; STI never delays #DB.
 * 6. INT3 (0xCC and CD 03): call emu_dbg_int3 first; true = VM_EXIT_BPT is
 *    filled, RIP stays at the INT3, nothing executed (machine/ re-delivers
 *    #BP with RIP+1 when the INT3 is not the debugger's).
 * 7. INT1/ICEBP (0xF1): advance RIP past it, then call emu_dbg_icebp (it
 *    queues #DB, DR6 unchanged). Not intercepted by intercept_db.
 * 8. Interrupts: do not deliver external interrupts or NMI while
 *    emu_dbg_irq_blocked(cpu) (the debugger steps with block_irq).
 * 9. --cpu amd stepping owns RFLAGS.TF (vm->cfg.cpu == VM_CPU_AMD): store
 *    emu_dbg_rflags_image(cpu) instead of cpu->rflags for PUSHF, exception
 *    and interrupt frames, SYSCALL's R11 and get_regs; call
 *    emu_dbg_rflags_loaded(cpu) after POPF/IRET/SYSRET/set_regs wrote
 *    cpu->rflags. Both are identity / no-ops when nobody steps that way.
 *    Interrupt/exception delivery clears TF and RF in cpu->rflags as the
 *    SDM says; emu_dbg re-arms its own TF at the next instruction.
 *    --cpu kvm-step steps by TF too, the way the host KVM does: its TF is
 *    in every image (emu_dbg_rflags_image), hidden only from get_regs
 *    (emu_dbg_rflags_view), and the guest's own TF is lost; an exception
 *    raised in a step clears TF, so the step ends one instruction into
 *    the handler, as the host KVM's emulator does, while INT n stops at
 *    the handler (the host hands it to emu's core).
 * 10. Event delivery pushes RF=1 for fault-class exceptions other than the
 *    instruction-breakpoint #DB (SDM 17.3.1.1), RF=0 otherwise (except 4).
 * 11. MOV SS shadow: an instruction that delivered an event calls
 *    emu_dbg_event_in_insn (INT n/INT3/INTO: the traps the MOV SS held
 *    back come at the handler's first instruction; INT1 dropped them
 *    already); a fault calls emu_dbg_fault (they are dropped). The
 *    guest's instruction breakpoints do not fire in the shadow.
 * 12. SYSCALL and SYSRET call emu_dbg_tf_from_result last: their
 *    single-step trap follows the RFLAGS they produce (FMASK, R11), so
 *    SYSCALL with TF masked traps nowhere and SYSRET loading TF=1 traps
 *    at once, before the first user instruction.
 *
 * ---- Rules emu_debug.c picked where the SDM leaves a choice ----
 * - DR6 B0-B3 report only registers enabled (L or G) in DR7; a #DB
 *   replaces B0-B3 with its own matches (as KVM does), BD/BS/BT are
 *   sticky until software clears them. Bit 12 reads 0; bits 4-11, 16
 *   (no RTM, no bus-lock detect) and 17-31 read 1; 63:32 are 0 and a MOV
 *   that sets them in 64-bit mode is #GP(0). DR7 bit 10 reads 1, 11, 12,
 *   14, 15 and 63:32 read 0 (63:32 set by MOV: #GP(0)).
 * - Instruction breakpoints compare the linear address of the first byte
 *   (prefixes included); LEN is ignored for RW=00. Data/I-O breakpoints:
 *   the address is masked to LEN and any access overlapping the range
 *   matches. LEN=10 means 8 bytes in every mode. RW=10 needs CR4.DE (else
 *   the register never matches).
 * - MOV DR checks: #UD (DR8-15, or DR4/5 with CR4.DE) before #GP (CPL>0)
 *   before GD's #DB; GD is cleared whenever a #DB reaches the guest.
 * - The debugger's registers (engine_debug.use_hw_bp, db[], dr7) are a
 *   second, invisible register file: its matches exit (VM_EXIT_DB, its B
 *   bits in db.dr6), never touch the guest's DR6, and ignore the guest's
 *   RF; after an execution-breakpoint exit the next instruction at that
 *   address runs once without re-reporting it.
 * - Debugger stepping (--cpu intel, MTF-like): VM_EXIT_DB with DR6_BS after
 *   each instruction (each REP iteration), and before the first
 *   instruction of a handler when an event was delivered at the boundary
 *   (seen as RIP moving without an instruction). --cpu amd: TF owned by
 *   the engine as above; exits after each instruction that began with it.
 * - --cpu MODEL,shared-dr (vm->cfg.shared_dr) models KVM's one set per
 *   vCPU: while the debugger loads registers they are the hardware (the
 *   union debug/dr_share.c builds of the guest's and its own), the guest's
 *   file is only what MOV DR reads and writes and matches nothing, RF and
 *   the MOV SS shadow suppress every instruction breakpoint of the set,
 *   and every match exits (VM_EXIT_DB, db.dr6 by hardware slot); with
 *   nothing loaded the guest's file is the hardware, as without the option.
 * - The guest's own #DB with engine_debug.intercept_db: DR6/DR7 updated as
 *   delivery would, not delivered; VM_EXIT_DB with db.guest_dr6 = its bits
 *   (db.dr6 = the debugger's bits, 0 if none). Reflect it with
 *   inject_exception(X86_DB).
 * - The debugger's watched ranges (engine_ops.set_watch) match linear
 *   addresses by the access's direction, so a read-only watch is exact;
 *   their hit exits like a debugger data breakpoint (db.watch = id + 1).
 *   A phys range matches the access's physical bytes instead: emu_dbg_mem
 *   translates each page's piece of the access (emu_data_gpa, no fault)
 *   and the TLB marks every linear page mapping a watched frame.
 * - Not modelled: task switches (BT), data breakpoints hit by the stack
 *   pushes of event delivery, RTM and bus-lock #DB. */
#ifndef VMDB_EMU_DEBUG_H
#define VMDB_EMU_DEBUG_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

struct emu_cpu;
struct engine_debug;
struct x86_debugregs;

/* Per-vCPU state of emu_debug.c, embedded in struct emu_cpu as cpu->dbg.
 * Nobody else reads or writes it. */
struct emu_dbg {
	bool active;            /* something beyond TF/RF keeps emu_dbg_armed() true */
	uint64_t hit;           /* guest DR6 B bits matched by data/IO in this instruction */
	uint64_t hit_hw;        /* B bits of the debugger's registers, same */
	uint64_t delayed;       /* guest #DB trap bits held back by a MOV SS shadow */
	bool mov_dr_exit;       /* VM_EXIT_MOV_DR due at the end of this instruction */
	uint8_t mov_dr, mov_gpr;
	bool mov_write;
	bool due;               /* due_exit is returned at the next boundary */
	struct vm_exit due_exit;
	bool step_fresh;        /* no instruction since the last step exit */
	uint64_t step_rip;      /* linear RIP at that exit */
	bool hw_skip;           /* debugger exec breakpoint at hw_skip_rip reported */
	uint64_t hw_skip_rip;
	bool tf_owned;          /* --cpu amd stepping: RFLAGS.TF is the engine's */
	bool shadow_tf;         /* the guest's own TF while tf_owned */
	bool guest_tf_start;    /* the guest's TF when the instruction began */
	bool tf_from_result;    /* SYSCALL/SYSRET: the TF it produced decides BS */
	bool access_hit;        /* this instruction made an access debugger.access names */
	struct vm_exit access_exit;
	/* the debugger's watched ranges (engine_ops.set_watch), owned by
	 * the VM; watch_hit: id + 1 of the first one this instruction touched */
	const struct engine_watch *watch;
	unsigned nr_watch;
	uint32_t watch_hit;
	bool data_only;         /* active only for data breakpoints and watched ranges */
	uint64_t watch_sig;     /* of the data breakpoints, to see them change */
	uint32_t watch_gen;     /* emu_dbg_watch_gen */
};

bool emu_dbg_armed(const struct emu_cpu *cpu);
/* Armed only to watch data (see the fast path above). */
bool emu_dbg_data_only(const struct emu_cpu *cpu);
/* Which accesses to the linear page at `page` (page-aligned), which maps
 * the guest-physical page gpa_page, a data breakpoint or watched range
 * (by linear or, phys ones, by physical address) may match:
 * EMU_DBG_WATCH_R | _W. */
#define EMU_DBG_WATCH_R 1u
#define EMU_DBG_WATCH_W 2u
unsigned emu_dbg_page_watch(const struct emu_cpu *cpu, uint64_t page, uint64_t gpa_page);
/* Changes whenever the result of emu_dbg_page_watch may have. */
uint32_t emu_dbg_watch_gen(const struct emu_cpu *cpu);
/* An access of this instruction matched (emu_dbg_end_insn is due). */
bool emu_dbg_data_hit(const struct emu_cpu *cpu);
bool emu_dbg_before_insn(struct emu_cpu *cpu, uint64_t linear_rip);
void emu_dbg_mem(struct emu_cpu *cpu, uint64_t linear, unsigned len, bool is_write);
void emu_dbg_io(struct emu_cpu *cpu, uint16_t port, unsigned len);
/* Returns true when it raised #UD or #DB (the MOV did not happen). */
bool emu_dbg_mov_dr(struct emu_cpu *cpu, unsigned dr, unsigned gpr, bool to_dr);
/* rflags_before: RFLAGS at the start of the instruction (TF timing). */
bool emu_dbg_end_insn(struct emu_cpu *cpu, uint64_t rflags_before);
bool emu_dbg_icebp(struct emu_cpu *cpu);
/* A port access, RDMSR/WRMSR or a CR write (MOV, LMSW, CLTS) completed (value as read or
 * written): when the debugger's access filter names it, end_insn exits
 * VM_EXIT_ACCESS after the instruction. Call only when armed. */
void emu_dbg_access(struct emu_cpu *cpu, enum engine_access_kind kind, uint32_t index,
		    unsigned size, bool is_write, uint64_t value);

/* Added for the core (see the contract above). */
bool emu_dbg_int3(struct emu_cpu *cpu, uint64_t linear_rip);
bool emu_dbg_irq_blocked(const struct emu_cpu *cpu);
uint64_t emu_dbg_rflags_image(const struct emu_cpu *cpu);
uint64_t emu_dbg_rflags_view(const struct emu_cpu *cpu);   /* for the debugger's get_regs */
/* RFLAGS for an event delivered before the next instruction, its image
 * exactly rflags (engine_ops.deliver_exception). */
void emu_dbg_rflags_for_event(struct emu_cpu *cpu, uint64_t rflags);
void emu_dbg_rflags_loaded(struct emu_cpu *cpu);
void emu_dbg_event_in_insn(struct emu_cpu *cpu);
void emu_dbg_fault(struct emu_cpu *cpu);
void emu_dbg_tf_from_result(struct emu_cpu *cpu);

/* engine_ops plumbing */
int emu_dbg_set_debug(struct emu_cpu *cpu, const struct engine_debug *dbg);
void emu_dbg_get_regs(const struct emu_cpu *cpu, struct x86_debugregs *dr);
void emu_dbg_set_regs(struct emu_cpu *cpu, const struct x86_debugregs *dr);
void emu_dbg_reset(struct emu_cpu *cpu);   /* power-on / INIT values */
/* The debugger's watched ranges from now on (the VM keeps the array). */
void emu_dbg_set_watch(struct emu_cpu *cpu, const struct engine_watch *w, unsigned n);

#endif
