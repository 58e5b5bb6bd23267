/* debug/debug_int.h — the debug core's private state, shared by the files
 * of debug/ only. Locking: d->lock guards the park (each vCPU's run
 * state), the event queue and the breakpoint tables. vCPU threads take it
 * in the hooks; the client thread takes it for every change. The client
 * changes breakpoints and vCPU state only with every vCPU parked. */
#ifndef VMDB_DEBUG_INT_H
#define VMDB_DEBUG_INT_H

#include <pthread.h>
#include <time.h>

#include "debug/debug.h"
#include "debug/dr_share.h"
#include "machine/vm.h"
#include "x86/insn.h"

struct emu_single;

#define DEBUG_MAX_SW_BP 512
#define DEBUG_NR_HW_BP 4
#define DEBUG_MAX_WATCH 64
/* engine-watched pages over every watchpoint (one engine range each) */
#define DEBUG_MAX_WATCH_PAGES 1024
/* Each vCPU queues at most one event before it parks; plus Ctrl-C and exit. */
#define DEBUG_QUEUE_SIZE (2 * VM_MAX_VCPUS + 8)

/* Where a vCPU is, as the park sees it. Changed only by debug_run_to()
 * (run_state.c) with d->lock held, along its table of legal moves:
 *
 *   PARKED --release--> RELEASED --its thread leaves before_run--> RUNNING
 *     ^  |                 |                                        |
 *     |  +--lend--> LENT   +--a stop before it left--> PARKED       stop
 *     |              |                                              v
 *     +--lend ends---+        PARKED <--its thread parks-------- STOPPING
 *                                ^                                  |
 *                                +--spin ends-- STEP_SPIN <-a user step ended
 *
 * STEP_SPIN may also be released or lent at once, and STOPPING released
 * again before its thread got back (it then simply runs on). */
enum debug_run {
	DEBUG_RUN_PARKED,    /* its thread waits in before_run (or has not got there yet) */
	DEBUG_RUN_RELEASED,  /* the client let it run; its thread has not left before_run yet */
	DEBUG_RUN_RUNNING,   /* its thread left before_run: it may be inside the engine */
	DEBUG_RUN_STOPPING,  /* asked to stop (kicked): not back in before_run yet */
	DEBUG_RUN_STEP_SPIN, /* a user step ended: parked, its thread polls for the next release */
	DEBUG_RUN_LENT,      /* parked; the client's thread runs it (lend.c) */
	DEBUG_RUN_NR,
};

/* Every wall-clock wait and spin of the park, with its reason. In struct
 * debug (not constants) so that unit tests can shorten them. */
struct debug_timing {
	/* How often the client re-kicks a vCPU that has not parked yet. Not
	 * the synchronisation (the park wakes the client through
	 * parked_cond); a kick that lands between exits stays pending in the
	 * engine, and the re-kick only covers an engine that would drop it. */
	long kick_retry_ns;
	/* A step-over that has not finished after this long (HLT with
	 * interrupts blocked, a vCPU waiting for SIPI) is abandoned: the vCPU
	 * is kicked. */
	long step_over_ns;
	/* How long a vCPU thread that just stepped polls for the next release
	 * before it blocks: waking a blocked thread costs more than the
	 * client's round trip under nested KVM. */
	long step_spin_ns;
	/* How often a parked vCPU thread looks at a step of its vCPU lent to
	 * the client's thread (lend.c): such a step ends in microseconds
	 * unless its instruction blocks (HLT, a wait for SIPI); one still
	 * running at two looks in a row is kicked. */
	long lend_watch_ns;
	/* How long the client polls for a step's event before it goes back
	 * to poll(): a step ends in microseconds, a trip through poll() and
	 * an eventfd costs more. */
	long client_step_poll_ns;
	/* How long a stop-all of a machine that is ending waits for its end
	 * to be queued (on_vm_stop), so that the client hears the end rather
	 * than a stop: a moment, bounded against a hook that never comes. */
	long end_wait_ns;
};

enum debug_step {
	DEBUG_STEP_NONE,
	DEBUG_STEP_USER,         /* report DEBUG_EV_STEP when it completes */
	DEBUG_STEP_INTERNAL,     /* stepping over one of our breakpoints */
};

/* Guest-virtual to guest-physical page translations the step engine
 * reuses between steps (the code page, the stack page, the IDT page).
 * Keyed by CR3; flushed whenever the system registers are re-read or an
 * instruction that may change paging was stepped. */
#define DEBUG_TLB_SIZE 4
struct debug_tlb {
	bool valid;
	uint64_t cr3, page, gpa_page;
};

/* Instructions the step engine sorted lately, by their bytes (what
 * x86_insn_classify answers depends on nothing else): a loop stepped
 * through is decoded once. Indexed by linear address. */
#define DEBUG_DECODED_SIZE 32
struct debug_decoded {
	bool valid;
	uint8_t mode;                  /* enum x86_mode */
	uint8_t nbytes;                /* how many of bytes[] were readable */
	uint8_t bytes[15];
	struct x86_insn_info insn;
	/* step_exact.c: whether the exact core does it, once asked */
	bool exact_known, exact_ok;
	unsigned exact_needs;          /* EMU_SINGLE_PART_* it reads */
};

/* The step engine's view of one vCPU (debug/step.c). While `tf_shadow`
 * is set the engine's RFLAGS.TF belongs to the debugger (vmdb keeps it
 * clear; an engine may set it while it steps) and guest_tf is the guest's
 * own TF: what gdb reads and writes, what images and frames must show.
 * An engine whose steps keep the guest's TF exactly needs only the IF
 * shadow (below), and then only when vmdb masks IF. */
struct debug_step_vcpu {
	bool shadow;                   /* the step engine runs (one shadow or both) */
	bool tf_shadow;                /* the engine's TF is the debugger's */
	bool guest_tf;
	/* Interrupts held off by masking IF (no engine block, or forced): the
	 * engine's IF is kept clear while stepping and guest_if is the
	 * guest's own, like guest_tf. if_live: the engine's IF may be set
	 * right now (after STI, whose one-instruction shadow keeps it, or for
	 * a HLT run): read and cleared again when the step ends. Only while
	 * `shadow` is set. */
	bool if_shadow;
	bool guest_if;
	bool if_live;
	uint64_t mem_gen;              /* d->mem_gen the tlb below was filled under */
	/* the instruction about to be stepped, taken while parked */
	bool armed;
	struct x86_insn_info insn;
	struct x86_regs regs;          /* before the step, guest view (TF = guest_tf) */
	struct x86_sregs sregs;
	bool sregs_valid;              /* sregs still current (no system instruction since) */
	uint64_t image;                /* POPF/IRET: the RFLAGS it loads; SYSRET: R11 */
	bool have_image;
	uint64_t image_at;             /* where the image is (POPF/IRET) */
	bool scrubbed;                 /* its TF is hidden from the engine until the step ends */
	/* HLT stepped as a run to the next instruction (a DR slot of this vCPU) */
	bool hlt_run;
	unsigned hlt_slot;
	uint64_t hlt_addr;
	/* the last step ended after an instruction that cannot halt, with
	 * the other vCPUs parked: it runs (no INIT or SIPI could reach it),
	 * so the next step need not ask the engine (an ioctl on KVM) */
	bool known_running;
	bool ran_on;                   /* known_running as this step began (step_exact.c) */
	struct debug_tlb tlb[DEBUG_TLB_SIZE];
	unsigned tlb_next;
	struct debug_decoded decoded[DEBUG_DECODED_SIZE];
};

/* What the step engine did so far, for `monitor info sstep`. */
/* Why a step that could have run on the exact core ran on the engine
 * (step_exact.c). */
enum debug_exact_why {
	DEBUG_EXACT_OFF,         /* monitor sstep core engine, or no exact core here */
	DEBUG_EXACT_MODE,        /* not a plain step: HLT, sstep irq on, shadow off, halted */
	DEBUG_EXACT_INSN,        /* an instruction the core does not do exactly */
	DEBUG_EXACT_EVENT,       /* the engine holds an event for the next instruction */
	DEBUG_EXACT_DEBUG,       /* a watchpoint, data or guest breakpoint, an access catch */
	DEBUG_EXACT_ACCESS,      /* port I/O or MMIO met (or the core stopped) */
	DEBUG_EXACT_WHYS,
};

struct debug_step_stats {
	unsigned long steps, own_db, images_fixed, frames_fixed, r11_fixed, hlt_runs,
		injected_fallback, iret_emulated, guard_stops, guard_arms, full_decodes;
	/* step_exact.c: steps done on the exact core, steps the engine ran
	 * instead (by reason), write-backs of the state they changed */
	unsigned long exact_steps, exact_flushes, engine_steps[DEBUG_EXACT_WHYS];
};

/* What the park did so far, for `monitor info park`: stops that had to
 * wait for a vCPU to leave the engine, kicks repeated because a vCPU had
 * not parked within kick_retry_ns (0 while every kick takes), and device
 * exits of lent steps handled on the client's thread (lend.c). */
struct debug_park_stats {
	unsigned long stops, kick_retries, step_rekicks, lent_device_exits;
};

/* Fault guards (step.c): while one vCPU is stepped alone, an int3 sits on
 * the entry of every exception handler its 64-bit IDT names, so a step
 * whose instruction faults stops at the handler's first instruction. The
 * raw gates they were armed from tell when to re-arm. */
#define DEBUG_GUARD_VECTORS 32
struct debug_guard {
	bool armed;
	uint64_t idt_base;
	uint16_t idt_limit;
	unsigned raw_len;
	uint8_t raw[DEBUG_GUARD_VECTORS * 16];
	bool lifted;                   /* the guard at the stepped RIP is out for one step */
	uint64_t lifted_addr;
};

struct debug_vcpu {
	enum debug_run run;      /* atomic reads; changed by debug_run_to() only */
	enum debug_step step;
	bool step_done;          /* internal step finished */
	unsigned hw_lifted;      /* DR slots (bit n) left out during a step-over */
	/* a step-over's instruction hit a watchpoint: step_over reports this
	 * instead of (or as well as ending) the step */
	bool step_watch;
	struct debug_event step_watch_ev;
	bool resumed;            /* named by the last resume: its events come first */
	bool notify_on_park;     /* queued an event: wake the client once parked */
	bool user_step_ended;    /* atomic; its thread spins for the next step (STEP_SPIN) */
	/* lend.c: lend_seq is odd while the client's thread runs the vCPU
	 * (atomic); lend_seen is its value at the vCPU thread's last look */
	unsigned lend_seq, lend_seen;
	/* An exit a lent run met that only the vCPU's own thread handles
	 * (port I/O, MMIO, ...): before_run gives it to the vCPU loop, which
	 * handles it as if run() had returned it. */
	bool has_handed_back;
	struct vm_exit handed_back;
	/* handed_back is a fatal exit the client has been shown (DEBUG_EV_FATAL,
	 * fatal_text says what it was): the next time it comes, it ends the
	 * machine */
	bool fatal_shown;
	char fatal_text[512];
	char output_line[OUTPUT_WATCH_LINE];  /* what its DEBUG_EV_OUTPUT matched */
	/* vcpu.c: the engine's state as last read or written, the parts in
	 * cache_parts (X86_STATE_*); cleared when the vCPU leaves its park */
	struct x86_state cache;
	unsigned cache_parts;
	unsigned dirty_parts;          /* staged by exact steps, not yet in the engine */
	bool flush_failed;             /* writing them back failed, not yet reported */
	struct err flush_err;
	/* step_exact.c: the engine's answer to events_pending, valid until
	 * the cache is forgotten; the vCPU's exact core (NULL until needed) */
	bool events_known, events_pending, nmi_blocked;
	struct emu_single *exact_core;
	/* the last step was an exact one and nothing changed the state or
	 * paging since (nor guest memory: exact_mem_gen) */
	bool exact_chain;
	uint64_t exact_mem_gen;
	bool seen_waiting_sipi;        /* the engine's last answer (INIT/SIPI seen) */
	bool write_failed;             /* a write the engine refused, not yet reported */
	struct err write_err;
	struct engine_debug applied;   /* what the engine has now ... */
	bool applied_valid;            /* ... once set_debug succeeded */
	struct debug_step_vcpu st;     /* the step engine (step.c) */
	/* this vCPU's step runs while the others run (cond.c's skip of a
	 * false condition): no fault guards in guest memory for it */
	bool step_among_others;
	/* cond.c: a hit whose conditions were all false is being stepped
	 * over on this vCPU's thread (atomic reads); the breakpoint's key */
	bool cond_skip;
	uint64_t cond_key;
	bool cond_key_phys;
	bool cond_failed;              /* a condition could not be evaluated ... */
	uint64_t cond_err_addr;        /* ... at this breakpoint (its key) ... */
	struct err cond_err;           /* ... for this reason, not yet reported */
};

/* A breakpoint has several possible owners: the client (Z0), exception
 * catching (the vectors whose handler starts here), the step engine, and
 * a client's Z1 that has no DR slot for now. It exists while any owns it;
 * stops are reported for the client first. */
struct debug_sw_bp {
	uint64_t addr;           /* as the client named it / the handler's linear address */
	bool phys;               /* addr is guest-physical (`monitor phys on`) */
	uint64_t gpa;            /* where the 0xCC byte is */
	uint8_t orig;
	bool lifted;             /* original byte temporarily back (step-over) */
	bool client;
	uint32_t catch_vectors;
	bool step_guard;         /* the step engine's: an exception handler's entry (step.c) */
	/* stands in for the client's hardware breakpoint at addr while the
	 * guest holds every DR slot (debug_hw_bp.stand_in) */
	bool hw_stand_in;
	struct debug_cond_list *conds;   /* the client's conditions (cond.c), or NULL */
	struct debug_cmd_list *cmds;     /* the client's commands (cond.c), or NULL */
};

static inline bool debug_sw_owned(const struct debug_sw_bp *bp)
{
	return bp->client || bp->catch_vectors || bp->step_guard || bp->hw_stand_in;
}

/* What stands in for an execution breakpoint (the client's, or exception
 * catching's) that has no DR slot. */
enum debug_stand_in {
	DEBUG_STAND_IN_NONE,      /* it has a slot (or is no such breakpoint) */
	DEBUG_STAND_IN_INT3,      /* an int3 at its address (debug_sw_bp.hw_stand_in for
				   * the client's, catch_vectors for catching's) */
	DEBUG_STAND_IN_UNMAPPED,  /* nothing: its address does not translate; it waits */
	DEBUG_STAND_IN_NOT_RAM,   /* nothing: ROM or MMIO, no int3 goes there; it waits */
};

/* A DR0-3 slot. rw EXEC (0): an execution breakpoint (the client's Z1
 * and/or exception catching). rw WRITE/ACCESS: one piece of a client
 * watchpoint (Z2/Z4), which x86 may have to split into several aligned
 * 1/2/4/8-byte pieces: addr/len are this piece, watch_addr/watch_len the
 * watchpoint as the client named it (shared by its pieces). */
struct debug_hw_bp {
	uint64_t addr;
	bool used;               /* client || catch_vectors */
	bool client;
	uint32_t catch_vectors;
	enum dr7_rw rw;
	uint8_t len;
	uint64_t watch_addr, watch_len;
	uint8_t stand_in;        /* enum debug_stand_in: rw EXEC, the client's or catching's */
	uint32_t stand_in_catch; /* the caught vectors its int3 carries for it */
};

/* Where a watchpoint lives now. */
enum debug_watch_home {
	DEBUG_WATCH_FREE,        /* entry unused */
	DEBUG_WATCH_SLOTS,       /* pieces in DR0-3 of every vCPU */
	DEBUG_WATCH_ENGINE,      /* the engine's watched ranges (set_watch) */
};

/* A client watchpoint (Z2/Z3/Z4). ENGINE ones are split into one engine
 * range per page at every sync; mapped counts the pages that translated. */
struct debug_watch {
	enum debug_watch_home home;
	enum debug_watch_kind kind;
	uint64_t addr, len;
	unsigned vcpu;           /* whose page tables translate it */
	unsigned pages, mapped;
	bool evicted;            /* left DR0-3 because the guest took a slot */
	bool phys;               /* addr is guest-physical: never translated, never in DR0-3 */
};

/* The watchpoints as placed at one moment: the table, and the DR0-3
 * slots (a mask) of each one living there. */
struct debug_watch_snap {
	bool any;
	struct debug_watch watch[DEBUG_MAX_WATCH];
	uint8_t slots[DEBUG_MAX_WATCH];
};

#define DEBUG_NR_VECTORS X86_NR_VECTORS

/* Why a caught vector has no breakpoint on one vCPU. */
enum debug_catch_status {
	DEBUG_CATCH_ARMED,
	DEBUG_CATCH_NO_STATE,      /* registers unreadable */
	DEBUG_CATCH_REAL_MODE,     /* no IDT gates to follow */
	DEBUG_CATCH_WAIT_SIPI,     /* not started: no IDT yet */
	DEBUG_CATCH_OUTSIDE_IDT,   /* vector beyond the IDT limit */
	DEBUG_CATCH_UNREADABLE,    /* gate or descriptor not mapped */
	DEBUG_CATCH_NOT_PRESENT,   /* gate P bit clear */
	DEBUG_CATCH_BAD_GATE,      /* task gate or an invalid type */
	DEBUG_CATCH_NO_BREAKPOINT, /* handler not mapped or no room */
};

/* Where each caught vector's handler is on one vCPU, as last armed. */
struct debug_catch_vcpu {
	uint64_t handler[DEBUG_NR_VECTORS];
	uint8_t status[DEBUG_NR_VECTORS];  /* enum debug_catch_status */
};

/* cond.c: breakpoint commands' text on its way from the vCPU threads to
 * the client's thread, a ring under d->lock. A vCPU that finds no room
 * waits a moment for the reader (not while asked to stop: the reader may
 * be waiting for it), then counts its text as lost. */
#define DEBUG_CONSOLE_SIZE (64 * 1024)
struct debug_console {
	char buf[DEBUG_CONSOLE_SIZE];
	size_t head, len;
	uint64_t lost;
};

struct debug {
	struct vm *vm;
	struct debug_timing timing;
	pthread_mutex_t lock;
	pthread_cond_t park_cond;    /* parked vCPUs wait here */
	pthread_cond_t parked_cond;  /* the client waits here for parks */

	struct debug_vcpu *vcpus;    /* nr_vcpus of them */
	unsigned nr_vcpus;
	unsigned vcpus_room;         /* vcpus[]'s length (debug_reset keeps it) */
	bool gone;                   /* the machine stopped for good */
	bool end_queued;             /* ... and its end (EXITED/CRASHED) is in the queue */
	int crash_signal;            /* nonzero once a vCPU met a fatal exit */
	unsigned reboots;            /* boots after the first one (reboot.c) */

	struct debug_event queue[DEBUG_QUEUE_SIZE];
	unsigned q_head, q_len;
	debug_notify_fn notify;
	void *notify_opaque;
	/* The client is polling the queue (debug_wait_step_event): a park
	 * need not ring notify. Changed and read under lock only, so the
	 * client's last look at the queue and a park's decision not to ring
	 * cannot both miss the event. */
	bool client_polling;
	/* The client's connection (debug_watch_client): a step-over that
	 * waits gives up once it is readable. Set on the client's thread,
	 * read atomically by parked vCPU threads watching a lent step. */
	int client_fd;

	struct debug_sw_bp sw[DEBUG_MAX_SW_BP];
	unsigned nr_sw;
	/* reverse.c: the int3s it took out around an engine snapshot (d->lock
	 * held from the lift to the return) */
	bool rr_lifted[DEBUG_MAX_SW_BP];
	struct debug_hw_bp hw[DEBUG_NR_HW_BP];
	/* watch.c: the client's watchpoints (index = engine range id), and
	 * the ranges the engine watches now */
	struct debug_watch watch[DEBUG_MAX_WATCH];
	struct engine_watch *watch_ranges;
	unsigned nr_watch_ranges;
	bool watch_dirty;            /* a change not yet handed to the engine */
	bool watch_evicted_new;      /* ... of which watchpoints left DR0-3 */
	/* where every watchpoint lived at the last resume, for
	 * debug_watch_describe: gdb takes its watchpoints out at every stop,
	 * so its user asks about these (formatted only when asked) */
	struct debug_watch_snap watch_last;

	uint32_t catch_mask;         /* vectors the client asked to catch */
	struct engine_access_filter access;   /* accesses the client asked to catch (d->lock) */
	bool catch_dirty;            /* a catch breakpoint was taken away: re-arm */
	struct debug_catch_vcpu catch_at[VM_MAX_VCPUS];

	bool sstep_irq;              /* steps may enter interrupt handlers */
	bool sstep_plain;            /* shadow TF off: plain engine stepping (bench) */
	bool step_exact_off;         /* monitor sstep core engine (step_exact.c) */
	enum debug_irqblock irqblock; /* monitor sstep irqblock */
	bool step_mask_if;           /* steps now mask IF instead of the engine's block */
	/* Bumped by every debugger write to guest memory (M/X, int3 in and
	 * out): translations the step engine cached may be stale. */
	uint64_t mem_gen;
	struct debug_step_stats step_stats;
	struct debug_park_stats park_stats;
	bool non_stop;               /* an event stops its own vCPU only */
	bool attached;               /* a client is attached (debug_attach) */
	struct debug_console console;
	bool step_alone;             /* the resume runs one stepped vCPU, the rest stay parked */
	struct debug_guard guard;

	struct dr_share share;       /* DR0-3 shared with the guest (dr_share.c) */

	int caps_err;                /* debug_caps_probe()'s result, with caps_e */
	struct engine_caps caps;
	struct err caps_e;
	bool report_done;            /* the findings in words, probed at the first ask */
	int report_err;
	struct engine_report report;
	struct err report_e;

	struct vm_debug_hooks hooks;
};

/* run_state.c: the one transition function (d->lock held). An illegal
 * move is a bug of the debug core: logged, and made anyway (false). */
bool debug_run_to(struct debug *d, unsigned vcpu, enum debug_run to);
bool debug_run_legal(enum debug_run from, enum debug_run to);
const char *debug_run_name(enum debug_run run);
static inline enum debug_run debug_run_of(struct debug *d, unsigned vcpu)
{
	return __atomic_load_n(&d->vcpus[vcpu].run, __ATOMIC_ACQUIRE);
}
/* Out of the engine, whatever its thread does next: stop-all is done
 * when every vCPU is. */
bool debug_run_parked(enum debug_run run);
/* The client's stop (PARKED once its thread is back) and release; the
 * released vCPUs' threads are woken by debug_wake_released (park.c), once
 * d->lock is let go. */
void debug_run_stop_locked(struct debug *d, unsigned vcpu);
void debug_run_release_locked(struct debug *d, unsigned vcpu);
void debug_wake_released(struct debug *d);

/* reboot.c: vm_debug_hooks.on_reset and on_reboot */
void debug_on_reset(struct vm *vm);
void debug_on_reboot(struct vm *vm);

/* A step of this vCPU runs with every other vCPU parked: the fault
 * guards the step engine may arm are met by it alone (step_shadow.c). */
static inline bool debug_step_runs_alone(const struct debug *d, unsigned vcpu)
{
	return d->step_alone && !d->vcpus[vcpu].step_among_others;
}

/* park.c */
void debug_queue_locked(struct debug *d, const struct debug_event *ev);
void debug_request_stop_locked(struct debug *d, unsigned self);
int debug_apply_engine(struct debug *d, unsigned vcpu);
/* state.c: the engine's capabilities into d->caps (or d->caps_err), once */
void debug_caps_probe(struct debug *d);
bool debug_gone_locked(struct debug *d);
void debug_deadline_in(struct timespec *ts, long ns);
bool debug_on_bpt(struct debug *d, struct vcpu *vcpu, uint64_t pc);
bool debug_on_db(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit);
/* The client's connection has bytes or a hang-up waiting (any thread). */
bool debug_client_spoke(struct debug *d);

/* step_exact.c: the step begun for this parked vCPU done on the exact
 * core; true with the exit the engine's step would have given, false
 * when the engine must step it */
bool debug_step_exact(struct debug *d, unsigned vcpu, struct vm_exit *exit);
void debug_step_exact_drop(struct debug *d, unsigned vcpu);
/* VMDB_STEP_CORE=engine: the engine steps from the start */
bool debug_step_exact_off_by_env(void);

/* lend.c: one step of a parked vCPU on the client's thread */
bool debug_lendable(struct debug *d, unsigned vcpu);
/* true when the step's exit was handled there (else its thread gets it) */
bool debug_lend_step(struct debug *d, unsigned vcpu);
/* on the vCPU's parked thread (d->lock held): kick a lent step that blocks */
void debug_lend_watch_locked(struct debug *d, struct vcpu *vcpu);

/* break.c */
/* the breakpoint keyed by this linear address (not a `phys` one) */
struct debug_sw_bp *debug_sw_find_locked(struct debug *d, uint64_t addr);
struct debug_sw_bp *debug_sw_find_as_locked(struct debug *d, uint64_t addr, bool phys);
/* a client's breakpoint keyed by addr, in either address space */
bool debug_sw_client_at_locked(struct debug *d, uint64_t addr);
/* Where a vCPU's pc is, physically: taken without d->lock (it reads the
 * vCPU's page tables), then looked up with it. */
struct debug_sw_where {
	uint64_t pc, gpa;
	bool have_gpa;
};
void debug_sw_where(struct debug *d, unsigned vcpu, uint64_t pc, struct debug_sw_where *w);
/* our breakpoint under an int3 a vCPU met (or sits on) at w->pc */
struct debug_sw_bp *debug_sw_hit_locked(struct debug *d, const struct debug_sw_where *w);
int debug_hw_find_locked(struct debug *d, uint64_t addr);
/* The execution breakpoint in entry n (the client's, catching's) has no
 * DR slot: an int3 at gpa (its address as translated now; mapped false:
 * it does not translate) stands in for it, or it waits where no int3 can
 * go. */
void debug_hw_stand_in_locked(struct debug *d, unsigned n, uint64_t gpa, bool mapped);
/* ... vectors caught there since go to that int3 as well ... */
void debug_hw_stand_in_catch_locked(struct debug *d, unsigned n);
/* ... and no longer needs one (it has a slot again, or is gone). */
void debug_hw_stand_in_drop_locked(struct debug *d, unsigned n);
/* DR7 RW and LEN bits of slot n for this slot's kind */
uint64_t debug_hw_dr7_bits(const struct debug_hw_bp *bp, unsigned n);
/* watchpoint pieces in DR0-3 (watch.c places them) */
bool debug_watch_slots_work(struct debug *d);
int debug_watch_slots_insert_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				    uint64_t len);
void debug_watch_slots_remove_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				     uint64_t len);
const struct debug_hw_bp *debug_watch_slot_hit_locked(struct debug *d, uint64_t dr6);
unsigned debug_watch_slots_of_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				     uint64_t len);
void debug_sw_poke(struct debug *d, struct debug_sw_bp *bp, bool insert);

/* park.c: an engine's VM_EXIT_ACCESS: stop there */
bool debug_on_access(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit);
/* watch.c */
/* the engine takes watched ranges (engine_debug_ops.set_watch) */
bool debug_engine_watches(const struct debug *d);
/* the client's watchpoint of this kind (DEBUG_EV_WATCH/RWATCH/AWATCH) at addr */
bool debug_watch_exists_locked(struct debug *d, enum debug_event_kind kind, uint64_t addr);
/* A debug exit names a watchpoint (a DR6 slot bit or db.watch): fill ev's
 * kind and addr (the watchpoint's start); false if none. */
bool debug_watch_hit_locked(struct debug *d, const struct vm_exit *exit,
			    struct debug_event *ev);
/* Before the vCPUs run (every resume): translate the engine-watched
 * ranges again (the guest may have remapped them) and hand the engine
 * what changed. d->lock NOT held. */
void debug_watch_sync(struct debug *d);
/* Every watchpoint goes (detach, kill); d->lock NOT held. */
void debug_watch_clear(struct debug *d);
/* A watchpoint's pieces lost their DR slot (to the guest's own use of
 * the registers): it moves to the engine's watched ranges, never
 * silently lost (debug_watch_evicted_now), and back into DR0-3 at a
 * later resume once its pieces fit there again. d->lock held. */
void debug_watch_evicted_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				uint64_t len);
/* On the thread of vCPU via, at the exit where its guest took the slots
 * (d->lock NOT held): the watchpoints that left DR0-3 reach the engine
 * before this vCPU runs on, whatever the others are doing (set_watch is
 * safe with vCPUs running: kvm holds them out of KVM_RUN meanwhile). */
void debug_watch_evicted_now(struct debug *d, unsigned via);

/* catch.c: follow the IDTs before the vCPUs run (every resume) */
void debug_catch_sync(struct debug *d);
void debug_catch_clear(struct debug *d);
/* break.c helpers shared with catch.c (d->lock held) */
int debug_sw_add_locked(struct debug *d, uint64_t addr, uint64_t gpa, struct debug_sw_bp **out,
			struct err *e);
void debug_sw_drop_locked(struct debug *d, struct debug_sw_bp *bp);

/* step.c: the shadow trap flag around every engine single step.
 * begin: 0 = step with the engine, 1 = vmdb did the step itself (IRETQ),
 * -errno on failure. */
int debug_step_begin(struct debug *d, unsigned vcpu);
/* on the vCPU thread at the step's exit: fix what the guest sees; *pc
 * becomes where the step really ended (e.g. the guest's #DB handler).
 * at_handler: the step stopped at an int3 on a handler's entry (a fault
 * guard or a breakpoint there): an exception was delivered. */
void debug_step_end(struct debug *d, struct vcpu *vcpu, uint64_t *pc, bool at_handler);
/* the vCPU runs freely now: give the guest its own TF back */
void debug_step_leave(struct debug *d, unsigned vcpu);
/* the step's own copy of the system registers while it is current
 * (between two steps of a parked vCPU): enough for a page walk */
bool debug_step_paging_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs);
/* a guest INT3 met while stepping: deliver its #BP exactly; true = done */
bool debug_step_guest_int3(struct debug *d, struct vcpu *vcpu, uint64_t pc, uint64_t *handler);
/* take every fault guard out of guest memory (d->lock NOT held) */
void debug_step_guards_drop(struct debug *d);
/* gdb's view of RFLAGS.TF: the guest's own */
void debug_step_view_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs);
/* gdb wrote the registers: take its TF as the guest's, keep the engine's clear */
void debug_step_write_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs);

/* vcpu.c: the only door to a vCPU's state (see there). get fills the
 * parts named in `parts` from the cache or the engine; put writes them
 * through (why: what the write is for, in the report when it fails). */
int debug_vcpu_get(struct debug *d, unsigned vcpu, unsigned parts, struct x86_state *st);
int debug_vcpu_put(struct debug *d, unsigned vcpu, unsigned parts, const struct x86_state *st,
		   const char *why);
int debug_vcpu_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs);
int debug_vcpu_put_regs(struct debug *d, unsigned vcpu, const struct x86_regs *regs,
			const char *why);
int debug_vcpu_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs);
int debug_vcpu_inject(struct debug *d, unsigned vcpu, uint8_t vector, const char *why);
int debug_vcpu_deliver(struct debug *d, unsigned vcpu, uint8_t vector, uint64_t rflags);
void debug_vcpu_run_state(struct debug *d, unsigned vcpu, bool *halted, bool *waiting_sipi);
/* the vCPU enters the engine: what is staged is written back, and
 * nothing cached of it holds any more */
void debug_vcpu_forget(struct debug *d, unsigned vcpu);
/* A step done without the engine changed these parts: into the cache
 * only, marked for the engine (parked vCPUs only). */
void debug_vcpu_stage(struct debug *d, unsigned vcpu, unsigned parts, const struct x86_state *st);
/* Write the staged parts to the engine now; the cache stays. */
int debug_vcpu_flush(struct debug *d, unsigned vcpu);
/* The oldest refused write not yet reported: its words into e, -errno;
 * 0 when there is none. */
int debug_vcpu_take_write_error(struct debug *d, struct err *e);

/* dr_share.c: the debug-register arbiter's glue (see dr_share.h) */
void debug_dr_share_setup(struct debug *d);
bool debug_dr_share_learn(struct debug *d, unsigned vcpu);
void debug_dr_share_load(struct debug *d, unsigned vcpu, struct engine_debug *dbg);
bool debug_dr_share_route_db(struct debug *d, struct vcpu *vcpu, struct vm_exit *exit);
bool debug_dr_share_on_exit(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit);
void debug_dr_share_refresh(struct debug *d, unsigned vcpu);
void debug_dr_share_settle(struct debug *d);
/* DR slots that neither a guest nor a placed entry of ours holds now */
unsigned debug_dr_share_room_locked(struct debug *d);

/* cond.c: the client's breakpoint conditions */
/* reverse.c: the client's conditions on vcpu now: 1 one is true, 0 all
 * false, -errno when they cannot be evaluated */
int debug_cond_true(struct debug *d, unsigned vcpu, const struct debug_cond_list *conds);
/* The conditions to check before this hit stops (d->lock held): NULL
 * when there are none and no commands, or the hit stops anyway (a catch,
 * a step); an empty list when there are commands only. */
const struct debug_cond_list *debug_cond_of_locked(struct debug *d, const struct debug_sw_bp *bp,
						   unsigned vcpu);
/* On the vCPU's thread, d->lock NOT held, bp is the hit (stable: the
 * client changes breakpoints only with every vCPU parked): true when
 * the hit is being skipped (every condition false, or the commands ran);
 * false = stop (a condition held and there are no commands, or a
 * condition or command failed: its words wait for the client). */
bool debug_cond_hit(struct debug *d, unsigned vcpu, uint64_t pc, const struct debug_sw_bp *bp,
		    const struct debug_cond_list *conds);
/* At an internal step's trap: true when it ended a skip (watch: a
 * watchpoint the skipped instruction hit, which stops the vCPU). */
bool debug_cond_skip_end(struct debug *d, struct vcpu *vcpu, const struct debug_event *watch);
/* Every vCPU parked: end skips a stop interrupted (the int3 goes back). */
void debug_cond_skips_settle(struct debug *d);
void debug_cond_free(struct debug_sw_bp *bp);
/* The client's breakpoint whose commands outlive its connection. */
bool debug_cond_persists(const struct debug_sw_bp *bp);
/* A debugger attaches (stopped): the last one's persistent breakpoints go. */
void debug_cond_drop_persistent(struct debug *d);

/* mem.c */
int debug_translate(struct debug *d, unsigned vcpu, uint64_t gva, uint64_t *gpa);

#endif
