/* debug/debug.h — the engine-independent debug core. It owns every piece
 * of debug state of a machine: the park (stop-all / resume of the vCPU
 * threads), the one event queue, software and hardware breakpoints, and
 * single stepping. It knows nothing of packets: gdbserver/ turns client
 * requests into these calls and events into stop replies.
 *
 * Files: park.c (stop-all, resume, the event queue, the vCPU-loop hooks),
 * run_state.c (each vCPU's run state and its legal moves), lend.c (a step
 * on the client's thread), vcpu.c (the only door to a vCPU's registers:
 * get/put by part, one cache), state.c (gdb's view of them, caps),
 * step.c (the shadow trap flag around engine steps), step_shadow.c (what
 * an engine that hides or loses the guest's TF needs on top: image
 * scrubs, IRETQ, fault guards, the guest's own #DB delivered by the
 * engine), break.c, watch.c
 * (watchpoints: DR0-3 or the engine's watched ranges), catch.c
 * (exceptions and port/MSR/CR accesses), mem.c, dr_share.c (DR0-3 shared
 * with the guest where the engine has one set per vCPU); inspect.c (its
 * own header) writes the system state as text for the monitor. The
 * engine's capabilities are probed once, by debug_create(), so no step
 * waits for a probe.
 *
 * Threads: vCPU threads enter through the vm_debug_hooks that
 * debug_create() installs; one client thread (the gdbserver) calls
 * everything else, and only while the machine is stopped (after
 * debug_stop_all()), except debug_interrupt() and the event queue calls,
 * which are safe at any time, and (non-stop mode) memory access and the
 * register calls of a vCPU that is parked while others run.
 *
 * How one stepi flows: the server thread reads `vCont;s:1`
 * (gdbserver/server.c, pkt_run.c) and calls debug_resume() (park.c). With
 * every vCPU parked, step.c reads the instruction's registers through
 * vcpu.c, decodes it and sets the shadow trap flag, and park.c asks the
 * engine to single-step (its debug->set_debug). One vCPU stepped alone on
 * an engine that lends it: lend.c runs it on the server thread itself
 * (parked -> lent -> parked; the engine's lend->run), the debug exit goes
 * to on_db (park.c) and debug_step_end (step.c), the step event is
 * queued, and the server sends the stop reply from registers vcpu.c has
 * cached: one thread, no wake-up. On kvm that step is one system call,
 * KVM_RUN: the registers come back with the exit, the debug registers are
 * set again only when they change (park.c), and the page walks between
 * two steps (decoding, the client's memory reads, breakpoint look-ups)
 * use the step engine's own copy of the system registers (step.c).
 * Otherwise (an engine that does not lend, several
 * vCPUs, or an exit only the vCPU's thread handles, such as port I/O,
 * which lend.c hands back) the vCPU's own thread leaves before_run
 * (released -> running), runs the engine (machine/vm.c's loop), meets the
 * same on_db, stops and parks (stopping -> step-spin -> parked) and wakes
 * the server, which polls for the event a moment before it waits. */
#ifndef VMDB_DEBUG_H
#define VMDB_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "debug/agent.h"
#include "engine/engine.h"
#include "util/err.h"
#include "x86/x86.h"

struct vm;
struct debug;

enum debug_event_kind {
	DEBUG_EV_SWBREAK,     /* one of our int3 breakpoints; addr = its address */
	DEBUG_EV_HWBREAK,     /* one of our DR0-3 execution breakpoints */
	DEBUG_EV_WATCH,       /* a write watchpoint (Z2) hit; addr = its start as the
			       * client named it; the vCPU is past the instruction */
	DEBUG_EV_RWATCH,      /* a read watchpoint (Z3) hit; same */
	DEBUG_EV_AWATCH,      /* an access watchpoint (Z4) hit; same */
	DEBUG_EV_STEP,        /* a single step finished */
	DEBUG_EV_TRAP,        /* a debug exception we cannot explain: reported as SIGTRAP */
	DEBUG_EV_CATCH,       /* a caught exception reached its handler; vector, addr = handler */
	DEBUG_EV_ACCESS,      /* a caught port/MSR/CR access; addr = the accessing
			       * instruction, the vCPU is past it; access says what */
	DEBUG_EV_OUTPUT,      /* the guest's serial output matched the caught pattern with
			       * a byte this vCPU's port write sent; the vCPU is past it */
	DEBUG_EV_INTERRUPT,   /* the client asked for a stop (Ctrl-C) */
	DEBUG_EV_EXITED,      /* the guest stopped the machine; status = process status */
	DEBUG_EV_FATAL,       /* the vCPU cannot go on (triple fault, an instruction the
			       * engine cannot execute): it stopped where it was, for the
			       * client to look; signal = unix signal. Resuming it ends the
			       * machine (DEBUG_EV_CRASHED) */
	DEBUG_EV_CRASHED,     /* triple fault, emulation failure, ...; signal = unix signal */
};

struct debug_event {
	enum debug_event_kind kind;
	unsigned vcpu;
	uint64_t addr;
	int status;
	int signal;
	unsigned vector;      /* DEBUG_EV_CATCH: the exception vector (0-31) */
	struct debug_access {
		uint8_t kind;     /* enum engine_access_kind */
		bool is_write;
		uint8_t size;
		uint32_t index;   /* port, MSR or CR number */
		uint64_t value;
	} access;
};

/* Called (from any thread, with no debug lock held) whenever an event is
 * queued, so the client thread can wake up. */
typedef void (*debug_notify_fn)(void *opaque);

/* Create the core and install vm->debug_hooks and vm->debug. With
 * wait_gdb every vCPU is held before its first instruction until
 * debug_resume(). */
int debug_create(struct vm *vm, bool wait_gdb, debug_notify_fn notify, void *opaque,
		 struct err *e) must_check;
void debug_destroy(struct vm *vm);
/* The core's struct vm holds a new machine (its vCPU count and engine are
 * read anew; vm->debug and vm->debug_hooks are set again) and the last
 * one's vCPU threads have all left their loops: the core forgets every
 * breakpoint, watchpoint, catch, queued event, mode, statistic and vCPU
 * state (no int3 goes back: the memory is the new machine's) and is as
 * debug_create leaves it, its allocations and notify kept. Cheaper than
 * destroy and create for a harness that runs many short machines. On
 * failure (no memory) the core is gone, as after debug_destroy. */
int debug_reset(struct debug *d, bool wait_gdb, struct err *e) must_check;

/* Reset the machine as its reset button would (debug/reboot.c), called
 * stopped: it boots again from power-on (RAM cleared, the kernel loaded
 * again) and comes back stopped at its first instruction, breakpoints in
 * place; returns once it is there. Refused with --no-reboot. */
int debug_system_reset(struct debug *d, struct err *e);

/* --- stopping and resuming (debug/park.c) --- */

/* Stop every vCPU and wait until all are parked (or the machine is gone). */
void debug_stop_all(struct debug *d);
/* Ask for a stop from any thread (Ctrl-C): queues DEBUG_EV_INTERRUPT for
 * vcpu and kicks every vCPU. */
void debug_interrupt(struct debug *d, unsigned vcpu);
/* true once the machine has stopped for good (vCPU threads are leaving). */
bool debug_machine_gone(struct debug *d);
unsigned debug_nr_vcpus(const struct debug *d);
/* The opaque given to debug_create (the client that owns the core). */
void *debug_notify_opaque(const struct debug *d);

/* RUN_ON continues a vCPU the client never saw stop (non-stop mode's
 * short pauses): a breakpoint under its pc is one it has not hit yet, so
 * it is not stepped over. */
enum debug_action { DEBUG_ACT_STOP, DEBUG_ACT_CONTINUE, DEBUG_ACT_STEP, DEBUG_ACT_RUN_ON };

/* Resume the machine: actions[i] for vCPU i (debug_nr_vcpus entries).
 * Events still queued (and still meaningful) are reported first: then
 * nothing runs and the result is 1. Otherwise the chosen vCPUs run and
 * the result is 0; a vCPU resumed at one of our breakpoints first steps
 * over it with the others parked. A vCPU stepped alone may be stepped on
 * the calling thread itself (engine_lend_ops.run): when that step
 * ends there, its event is queued and the result is 1 as well. -errno on
 * failure. */
int debug_resume(struct debug *d, const enum debug_action *actions, struct err *e);

/* Non-stop mode: an event stops only the vCPU it happened on (all-stop,
 * the default: every vCPU). The client pauses the others with
 * debug_stop_all() around whatever needs the machine stopped. */
void debug_set_non_stop(struct debug *d, bool on);

/* Pop the oldest event the client may hear about now (one of a vCPU it
 * resumed last, or a machine-wide one); false when none. Events of vCPUs
 * it left stopped stay queued until they are resumed. */
bool debug_next_event(struct debug *d, struct debug_event *ev);
bool debug_has_event(struct debug *d);
/* After resuming a step: poll (no sleeping) a moment for its event.
 * Waking a blocked thread under nested KVM costs more than a step. */
bool debug_wait_step_event(struct debug *d);
/* The client's connection, or -1: a step-over that waits (a HLT waiting
 * for its interrupt) ends early once the client has something to say (a
 * Ctrl-C, a hang-up), which the client's thread cannot read meanwhile. */
void debug_watch_client(struct debug *d, int fd);

/* A client attached: stop the machine, forget stale events. */
void debug_attach(struct debug *d);
/* The client left (detach or disconnect): remove every breakpoint, drop
 * the queue, let every vCPU run. */
void debug_detach(struct debug *d);
/* What stopped a DEBUG_EV_FATAL's vCPU, as the machine would have said it
 * on ending, and that resuming it ends the machine. */
void debug_fatal_explain(struct debug *d, const struct debug_event *ev, char *out, size_t size);

/* --- breakpoints (debug/break.c) --- */

/* Software breakpoint at addr (guest-virtual through vcpu's page tables,
 * or guest-physical when phys). Inserting twice is harmless. -EFAULT when
 * the address is not mapped. */
int debug_sw_insert(struct debug *d, unsigned vcpu, uint64_t addr, bool phys, struct err *e);
/* The breakpoint the client set at addr in that address space (phys), or
 * in the other one. A hit is recognised by the physical byte its int3
 * sits on, whichever alias the vCPU ran it through. */
int debug_sw_remove(struct debug *d, uint64_t addr, bool phys, struct err *e);
/* Hardware execution breakpoint on every vCPU. -ENOSPC when the
 * debugger's four entries are all taken, -ENOTSUP when the engine has
 * none. Where the guest shares DR0-3 (dr_share.c) an entry the guest's
 * slots leave no room for waits until one frees (`monitor info dr`). */
int debug_hw_insert(struct debug *d, uint64_t addr, struct err *e);
int debug_hw_remove(struct debug *d, uint64_t addr, struct err *e);
bool debug_hw_supported(const struct debug *d);
/* Watchpoints (debug/watch.c; gdb's Z2 write, Z3 read, Z4 access) on
 * guest-linear [addr, addr+len), any number (DEBUG_MAX_WATCH), any
 * length. Each lives where it can: write and access ones in the
 * debugger's DR0-3 entries of every vCPU (its own registers, or slots
 * shared with the guest: dr_share.c) where the engine's data breakpoints
 * fire and the aligned 1/2/4/8-byte pieces x86 needs fit in free slots
 * (never displacing a hardware breakpoint; exception catching falls back
 * to int3); otherwise, and read ones always, on the engine's watched
 * ranges (engine_ops.set_watch): exact on emu, page traps on kvm, where
 * the range is translated through vcpu's page tables when set and again
 * at every resume (a page not mapped waits until it is). The hit is a
 * trap: the vCPU stops after the accessing instruction, one report per
 * instruction. -ENOTSUP when the engine can do neither (the kind or at
 * all), -EINVAL for an empty or wrapping range, -ENOSPC when full. Called
 * stopped. With phys, [addr, addr+len) is guest-physical: the engine's
 * watched ranges alone (matched by the physical bytes of every access,
 * whichever linear alias made it; never translated, never in DR0-3);
 * -ENOTSUP when the engine has no watched ranges. Physical and linear
 * watchpoints are apart: removal names which one. */
enum debug_watch_kind { DEBUG_WATCH_WRITE, DEBUG_WATCH_READ, DEBUG_WATCH_ACCESS };
bool debug_watch_supported(struct debug *d, enum debug_watch_kind kind);
int debug_watch_insert(struct debug *d, unsigned vcpu, enum debug_watch_kind kind,
		       uint64_t addr, uint64_t len, bool phys, struct err *e);
int debug_watch_remove(struct debug *d, enum debug_watch_kind kind, uint64_t addr,
		       uint64_t len, bool phys, struct err *e);
/* `monitor info watchpoints`: one line per watchpoint and where it lives. */
void debug_watch_describe(struct debug *d, char *out, size_t size);
void debug_remove_all_breakpoints(struct debug *d);
/* The same, except software breakpoints whose commands the client asked
 * to persist (gdb's dprintf with disconnected-dprintf, cond.c): they go
 * on printing, to vmdb's stderr, until the next debugger attaches. */
void debug_remove_all_but_persistent(struct debug *d);
/* Has the client a software or hardware breakpoint at this linear
 * address? (A range step stops there, as a hit would.) */
bool debug_client_breakpoint_at(struct debug *d, uint64_t addr);
unsigned debug_nr_sw_breakpoints(const struct debug *d);
unsigned debug_nr_hw_breakpoints(const struct debug *d);

/* --- breakpoint conditions (debug/cond.c) ---
 * gdb's agent expressions (debug/agent.h) on the client's software
 * breakpoint: a hit stops only when one of them is true; when all are
 * false the vCPU steps over the breakpoint on its own thread and runs on,
 * and nobody hears of it. n == 0: no conditions, every hit stops.
 * Replaced whole at every Z0 (gdb sends them each time). Called stopped. */
#define DEBUG_MAX_CONDS 8
/* The register numbers the client's expressions use: gdb's amd64 ones,
 * or its i386 ones (eax ecx edx ebx esp ebp esi edi eip eflags cs...gs,
 * the low 32 bits of the 64-bit registers). */
enum debug_regnums { DEBUG_REGNUMS_AMD64, DEBUG_REGNUMS_I386 };
struct debug_cond_list {
	enum debug_regnums regnums;
	unsigned n;
	uint16_t len[DEBUG_MAX_CONDS];
	uint8_t code[DEBUG_MAX_CONDS][AGENT_MAX_CODE];
};
int debug_sw_set_conds(struct debug *d, uint64_t addr, bool phys,
		       const struct debug_cond_list *list, struct err *e) must_check;
/* Commands (BreakpointCommands+: gdb's dprintf with `set dprintf-style
 * agent`): agent expressions run at every hit whose condition holds (or
 * that has none), on the vCPU's own thread; a breakpoint with commands
 * never stops, the vCPU steps over it and runs on. Their printf text
 * goes to the console below. persist: gdb asks for them to outlive its
 * connection. n == 0: none. Replaced whole at every Z0. Called stopped. */
#define DEBUG_MAX_CMDS 8
struct debug_cmd_list {
	enum debug_regnums regnums;
	unsigned n;
	bool persist;
	uint16_t len[DEBUG_MAX_CMDS];
	uint8_t code[DEBUG_MAX_CMDS][AGENT_MAX_CODE];
};
int debug_sw_set_cmds(struct debug *d, uint64_t addr, bool phys,
		      const struct debug_cmd_list *list, struct err *e) must_check;
/* The commands' text, oldest first: up to size bytes into out (the
 * count, ending at a line's end when more is waiting and one fits), and in
 * *lost the bytes that found no room since the last take
 * (the reader was too slow for too long). Any thread. */
size_t debug_console_take(struct debug *d, char *out, size_t size, uint64_t *lost);
/* vcpu's stop at the breakpoint at addr came from a condition that could
 * not be evaluated: why, once; false when there is nothing to say. */
bool debug_cond_take_error(struct debug *d, unsigned vcpu, uint64_t addr, char *out,
			   size_t size);

/* --- exception catching (debug/catch.c) ---
 * Stop when the guest takes one of the exceptions in vector_mask (bit n =
 * vector n, 0-31). Works on every engine: each vCPU's IDT gate for the
 * vector (64-bit or 32-bit protected-mode IDT) names the handler, and a
 * breakpoint goes on its first instruction (a free DR0-3 slot, else int3).
 * The IDT is re-read at every resume, so an IDT the guest reloads is
 * followed (while running freely, the change is seen at the next stop).
 * The stop is a DEBUG_EV_CATCH at the handler: the exception has been
 * delivered, its frame is on the handler's stack. Called stopped. */
int debug_catch_set(struct debug *d, uint32_t vector_mask, struct err *e) must_check;
uint32_t debug_catch_mask(const struct debug *d);
/* Vector of "pf", "#PF", "14" or "0xe"; -1 when it names none. */
int debug_vector_parse(const char *word);
/* One line per distinct handler of vector: where it is armed and how, or
 * why it is not ("gate not present", ...). */
void debug_catch_describe(struct debug *d, unsigned vector, char *out, size_t size);
/* What the caught exception looked like, from the frame on the handler's
 * stack: "vCPU 0 took #PF (error code 0x2, cr2 0x...) at rip 0x...". */
void debug_catch_explain(struct debug *d, const struct debug_event *ev, char *out, size_t size);

/* --- output catching (debug/catch.c) ---
 * Stop a vCPU right after its port write sends the byte with which the
 * guest's serial output line so far matches pattern (POSIX extended
 * regex; once per line; not while it steps), until cleared or the
 * client detaches. */
int debug_catch_output_set(struct debug *d, const char *pattern, struct err *e) must_check;
void debug_catch_output_clear(struct debug *d);
/* The pattern caught; false when none. */
bool debug_catch_output_pattern(struct debug *d, char *out, size_t size);
/* "vCPU 0's serial output matched /PATTERN/: LINE" for a DEBUG_EV_OUTPUT. */
void debug_catch_output_explain(struct debug *d, const struct debug_event *ev, char *out,
				size_t size);

/* --- access catching (debug/catch.c) ---
 * Stop after an instruction that reads or writes one of these ports or
 * MSRs, or writes one of these control registers, on every vCPU: the
 * engine checks its accesses against the rules (engine_debug.access) and
 * the stop is a DEBUG_EV_ACCESS. Rules add up to ENGINE_ACCESS_RULES.
 * -ENOTSUP (with words) where the engine cannot see that kind here,
 * -ENOSPC when full. Called stopped. */
int debug_catch_access_add(struct debug *d, enum engine_access_kind kind, uint32_t first,
			   uint32_t last, bool read, bool write, struct err *e) must_check;
void debug_catch_access_clear(struct debug *d);
unsigned debug_catch_access_count(const struct debug *d);
/* "port 0x80-0x8f writes" and so on, one line per rule. */
void debug_catch_access_describe(struct debug *d, char *out, size_t size);
/* "vCPU 0 wrote 0x5a to port 0x80 at 0x1234; stopped after it". */
void debug_catch_access_explain(const struct debug_event *ev, char *out, size_t size);
/* Which kinds the engine can catch here, in words (for `monitor info caps`). */
void debug_catch_access_caps(struct debug *d, char *out, size_t size);

/* --- memory (debug/mem.c): guest-virtual through vcpu's page tables, or
 * guest-physical. Reads show the original bytes under our breakpoints;
 * writes there update the saved byte. -EFAULT on any unmapped byte. --- */
int debug_mem_read(struct debug *d, unsigned vcpu, uint64_t addr, void *buf, size_t len,
		   bool phys);
int debug_mem_write(struct debug *d, unsigned vcpu, uint64_t addr, const void *buf,
		    size_t len, bool phys);

/* --- debug registers shared with the guest (debug/dr_share.c) --- */
/* `monitor info dr`: per vCPU, the guest's DR file and what each hardware
 * slot holds. Returns the text's whole length (snprintf's rule). */
size_t debug_dr_describe(struct debug *d, char *out, size_t size);

/* --- vCPU state (debug/state.c) --- */
struct debug_cpu_state {
	struct x86_regs regs;
	struct x86_sregs sregs;
	struct x86_fpu fpu;
	uint64_t kernel_gs_base;
	bool have_fpu, have_kgs;   /* the engine could read them */
};

enum {
	DEBUG_STATE_REGS = 1 << 0,
	DEBUG_STATE_SREGS = 1 << 1,
	DEBUG_STATE_FPU = 1 << 2,
	DEBUG_STATE_KGS = 1 << 3,
};

int debug_read_state(struct debug *d, unsigned vcpu, struct debug_cpu_state *st);
/* Just the general registers (one engine call, for stop replies). */
int debug_read_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs);
/* Write back the parts named in `what` (DEBUG_STATE_*); what the engine
 * refused, in words in e. */
int debug_write_state(struct debug *d, unsigned vcpu, const struct debug_cpu_state *st,
		      unsigned what, struct err *e);
/* Any MSR of a vCPU by number (`monitor msr`), as the engine has it; the
 * guest sees no fault when there is no such MSR or the CPU refuses the
 * value: -errno and words in e instead. */
int debug_msr_read(struct debug *d, unsigned vcpu, uint32_t msr, uint64_t *value,
		   struct err *e);
int debug_msr_write(struct debug *d, unsigned vcpu, uint32_t msr, uint64_t value,
		    struct err *e);
/* The guest's own debug registers and XCR0 (the target description's
 * system registers), as the engine holds them; a write goes through at
 * once, a value the engine refuses is -errno with words in e. */
enum debug_sysreg { DEBUG_SYSREG_DR0, DEBUG_SYSREG_DR1, DEBUG_SYSREG_DR2, DEBUG_SYSREG_DR3,
		    DEBUG_SYSREG_DR6, DEBUG_SYSREG_DR7, DEBUG_SYSREG_XCR0 };
int debug_sysreg_read(struct debug *d, unsigned vcpu, enum debug_sysreg reg, uint64_t *value,
		      struct err *e);
int debug_sysreg_write(struct debug *d, unsigned vcpu, enum debug_sysreg reg, uint64_t value,
		       struct err *e);
/* "long mode, halted" and friends, for thread lists. */
void debug_describe_vcpu(struct debug *d, unsigned vcpu, char *out, size_t size);

/* --- single stepping (debug/step.c) --- */
/* on: steps may enter interrupt handlers; off (default): interrupts are
 * held off while stepping and delivered when the guest continues. */
int debug_sstep_set_irq(struct debug *d, bool on);
bool debug_sstep_irq(const struct debug *d);
/* off: plain engine stepping without the shadow trap flag (benchmarks). */
void debug_sstep_set_shadow(struct debug *d, bool on);
/* How interrupts are held off while stepping (sstep irq off): auto = the
 * engine's own block (KVM_GUESTDBG_BLOCKIRQ) where it has one, else vmdb
 * masks RFLAGS.IF during each step and keeps the guest's IF as a shadow;
 * the other two force one mechanism. -ENOTSUP (with words in e) when the
 * engine has no block of its own. */
enum debug_irqblock { DEBUG_IRQBLOCK_AUTO, DEBUG_IRQBLOCK_ENGINE, DEBUG_IRQBLOCK_MASK_IF };
int debug_sstep_set_irqblock(struct debug *d, enum debug_irqblock how, struct err *e);
const char *debug_sstep_irq_mechanism(struct debug *d);
/* `monitor info sstep`: the modes and what the step engine did so far. */
void debug_sstep_describe(struct debug *d, char *out, size_t size);
/* Which core single-steps a parked vCPU: exact (another engine's core
 * over the state vmdb holds, where it does the instruction exactly: the
 * default where the engine lends its state for it) or the engine's own;
 * in words for `monitor info sstep` and `info caps`. */
int debug_sstep_set_core(struct debug *d, bool exact, struct err *e);
const char *debug_sstep_core(struct debug *d);
/* One line: how many steps took which path, and why the engine's. */
void debug_sstep_core_counts(struct debug *d, char *out, size_t size);
/* `monitor info park`: the stops so far and how many kicks were repeated. */
void debug_park_describe(struct debug *d, char *out, size_t size);

/* The engine's capabilities (probed once, when debug_create ran), the
 * engine's findings in words (probed once, at the first ask: on kvm that
 * runs more probe guests) and the mechanism each debug feature uses now;
 * the last two are printed by `monitor info caps`. debug_mechanisms
 * returns the text's whole length (snprintf's rule: size it with NULL, 0). */
int debug_caps(struct debug *d, const struct engine_caps **caps, struct err *e);
int debug_caps_report(struct debug *d, const struct engine_report **report, struct err *e);
size_t debug_mechanisms(struct debug *d, char *out, size_t size);
/* The instructions the engine handed to another engine's core so far:
 * "kvm → emu single-instruction fallback: 12 (INT 7, ...)" and each vCPU's
 * share where there are several; nothing where the engine never does.
 * Any time (counts may be moving). Returns the whole length, as above. */
size_t debug_fallback_describe(struct debug *d, char *out, size_t size);

#endif
