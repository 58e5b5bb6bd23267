/* engine/emu/emu_engine.c — the software engine's engine_ops: VM and vCPU
 * life cycle, register access, probe, and the scheduling of vCPUs.
 *
 * Scheduling (what makes the engine deterministic). machine/vm.c runs one
 * host thread per vCPU, each calling run(). Only the holder of the run
 * token (emu_vm.turn) executes guest instructions; the others wait inside
 * run(), each on a condition variable of its own (handing the token on
 * wakes its taker alone). The holder keeps the token for a quantum
 * of EMU_QUANTUM retired instructions, or until it halts (HLT, waiting for
 * SIPI), and then passes it to the next runnable vCPU in index order
 * (round robin; "runnable" = not waiting for SIPI, and not halted unless an
 * interrupt or NMI is deliverable). The holder also keeps the token while
 * its thread handles an exit (port I/O, MMIO) in machine/, so no other vCPU
 * runs in between. Guest time is the sum of retired instructions (1 ns
 * each, emu_time.c) and timers fire at instruction-count deadlines (a slice
 * ends exactly at the next deadline); when every vCPU is idle the clock
 * jumps to the next deadline, but never ahead of the host clock: an idle
 * guest waits (in host time) until the jump is due, so a guest that
 * mostly sleeps (demo.elf) sees its timers at their real rate, while a busy
 * one runs as fast as it can. Only the host moment of a jump depends on
 * the host clock, never what the guest executes. The one exception is a
 * storm of timers that wake nobody (a masked periodic timer of a few ns,
 * with every vCPU in `cli; hlt`): after one such jump, deadlines closer
 * than EMU_IDLE_TICK_NS are taken together, up to the host clock, so such
 * a guest costs a few hundred passes a second. Every pass looks at kicks
 * and the VM stopping. Interrupt delivery happens at instruction
 * boundaries of the receiving vCPU. Hence the same guest with the same
 * inputs executes the same instruction trace, whatever the host does.
 *
 * What is not deterministic: inputs from outside (serial input, the
 * debugger). A vCPU that returned VM_EXIT_KICKED (a debugger stop, the VM
 * stopping) is "parked" and skipped by the round robin until its thread
 * calls run() again, so a debugger can step one vCPU while the others stay
 * stopped; after such a stop the interleaving continues from there.
 * kick() sets a flag the executing vCPU checks before every instruction
 * (between blocks of at most 32 on the fast path, and at each pass of a
 * tight loop inside one, emu_fast.c) and wakes waiting threads, so run()
 * returns VM_EXIT_KICKED promptly.
 *
 * Lending (run_borrowed): nothing in a run depends on the thread it runs
 * on (the token, the kick flag and the parked state are per vCPU, the
 * core's jmp_buf is set afresh by every run), so a borrowed run is run()
 * itself on the debugger's thread: same token, same quantum, same trace,
 * and kick() ends it the same way. An exit the debugger's thread cannot
 * handle is handed by the debug core to the vCPU's own thread before its
 * next run(): the token stays where that exit left it, as it would had
 * the vCPU's own thread met the exit. */
#include "engine/emu/emu_core.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"
#include "engine/emu/emu_record.h"
#include "engine/emu/emu_single.h"

#define EMU_QUANTUM 50000ull

static struct emu_vm *evm_of(struct vm *vm)
{
	return (struct emu_vm *)vm->engine_vm;
}

static struct emu_cpu *cpu_of(struct vcpu *vcpu)
{
	return (struct emu_cpu *)vcpu->engine;
}

/* The scheduler's state. Per VM: the run token (turn: the vCPU that may
 * execute, EMU_TURN_NONE when every vCPU is idle) and the idle pacing.
 * All under lock. */
#define EMU_TURN_NONE EMU_RR_NOBODY

struct emu_sched {
	pthread_mutex_t lock;
	/* for the token holder's idle pacing and yield_grace (on
	 * CLOCK_MONOTONIC); a vCPU waiting for the token waits on its own
	 * token_cond, so handing the token on wakes its taker alone */
	pthread_cond_t cond;
	unsigned turn;
	uint64_t wake_seq;            /* emu_vm_wake() calls, to avoid lost wake-ups */
	uint64_t kick_seq;            /* kick() calls */
	uint64_t quantum;             /* instructions per turn */
	/* Idle pacing: guest time pace_guest_ns was reached at host time
	 * pace_host_ns (0: not yet). */
	uint64_t pace_guest_ns, pace_host_ns;
	/* The last idle jump woke no vCPU (a masked timer, or interrupts
	 * off): timers that follow closer than EMU_IDLE_TICK_NS are taken
	 * together. */
	bool idle_quiet;
};

/* Per vCPU; cpu->core points into one of these. in_run, parked and
 * yield_turn are under sched->lock. */
struct emu_engine_cpu {
	struct emu_core core;
	pthread_cond_t token_cond;    /* wait_token's, with sched->lock */
	bool in_run;
	bool parked;                  /* returned KICKED and not back yet */
	bool yield_turn;              /* stopped while holding the token: pass it on */
	uint64_t quantum_end;         /* cpu->retired at which this turn ends */
};

static struct emu_engine_cpu *ecpu_of(struct emu_cpu *cpu)
{
	return (struct emu_engine_cpu *)((char *)cpu->core - offsetof(struct emu_engine_cpu, core));
}

static int sched_create(struct emu_vm *evm)
{
	struct emu_sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&s->lock, NULL);
	s->turn = 0;    /* the bootstrap processor starts (quantum_end 0: its first
			 * slice is one instruction long) */
	s->quantum = EMU_QUANTUM;
	evm->sched = s;
	return 0;
}

static void sched_destroy(struct emu_vm *evm)
{
	struct emu_sched *s = evm->sched;
	if (!s)
		return;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s);
	evm->sched = NULL;
}

/* --- what the platform asks of the VM (emu_platform.h) ------------------------- */

struct emu_platform *emu_vm_platform(struct emu_vm *evm)
{
	return evm->plat;
}

void emu_vm_set_platform(struct emu_vm *evm, struct emu_platform *plat)
{
	evm->plat = plat;
}

unsigned emu_vm_nr_cpus(struct emu_vm *evm)
{
	return evm->nr_cpus;
}

struct emu_cpu *emu_vm_cpu(struct emu_vm *evm, unsigned index)
{
	return index < evm->nr_cpus ? evm->cpus[index] : NULL;
}

/* --- the run token -------------------------------------------------------------- */

/* Everybody looks again: the token may be free now, or its holder gone.
 * Under sched->lock. */
static void wake_all_locked(struct emu_vm *evm)
{
	pthread_cond_broadcast(&evm->sched->cond);
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i])
			pthread_cond_broadcast(&ecpu_of(evm->cpus[i])->token_cond);
}

void emu_vm_wake(struct emu_vm *evm, struct emu_cpu *cpu)
{
	(void)cpu;
	struct emu_sched *s = evm->sched;
	if (!s)
		return;         /* emu_single.c: nobody waits */
	pthread_mutex_lock(&s->lock);
	s->wake_seq++;
	/* a holder pacing the idle clock waits on cond; a free token waits
	 * for any vCPU to take it */
	if (s->turn == EMU_TURN_NONE)
		wake_all_locked(evm);
	else
		pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

static bool kick_pending(struct emu_core *c)
{
	return __atomic_load_n(&c->kick, __ATOMIC_ACQUIRE);
}

/* Stopped by the debugger (or the VM stopping): not coming back soon.
 * Caller holds sched->lock. */
static bool cpu_absent(struct emu_cpu *cpu)
{
	struct emu_engine_cpu *ec = ecpu_of(cpu);
	return ec->parked || (!ec->in_run && kick_pending(&ec->core));
}

static bool cpu_runnable(struct emu_cpu *cpu)
{
	if (cpu->wait_sipi || emu_core_of(cpu)->shutdown)
		return false;
	return !cpu->halted || emu_cpu_wakeable(cpu);
}

/* The next vCPU after `from` (itself last) that may run; -1 if none.
 * *absent_runnable: one was runnable but parked. Under sched->lock. */
static int sched_pick(struct emu_vm *evm, unsigned from, bool *absent_runnable)
{
	unsigned n = evm->nr_cpus;
	*absent_runnable = false;
	for (unsigned i = 1; i <= n; i++) {
		struct emu_cpu *cpu = evm->cpus[(from + i) % n];
		if (!cpu || !cpu_runnable(cpu))
			continue;
		if (cpu_absent(cpu)) {
			*absent_runnable = true;
			continue;
		}
		return (int)((from + i) % n);
	}
	return -1;
}

static uint64_t host_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A deadline ns from now on the condition variable's clock; ns is bounded
 * by the callers (at most EMU_PACE_MAX_WAIT_NS), so nothing overflows. */
static struct timespec deadline_in(uint64_t ns)
{
	uint64_t abs = host_now_ns() + ns;
	return (struct timespec){ .tv_sec = (time_t)(abs / 1000000000ull),
				  .tv_nsec = (long)(abs % 1000000000ull) };
}

/* A timer that wakes nobody while every vCPU sleeps costs one pass per
 * EMU_IDLE_TICK_NS at most, however short its period. */
#define EMU_IDLE_TICK_NS 4000000ull
/* A pass never sleeps longer than this: far deadlines (a TSC deadline near
 * 2^64) are approached in steps. */
#define EMU_PACE_MAX_WAIT_NS 1000000000ull
/* Lag behind the host clock kept when jumping: more is forgotten, so a
 * guest that was busy for a while does not then rush through its timers. */
#define EMU_PACE_MAX_LAG_NS 2000000ull

/* Guest time the host clock allows now: the guest time of the last idle
 * jump plus the host time passed since. */
static uint64_t pace_allowed(struct emu_sched *s, uint64_t guest_now, uint64_t host_now)
{
	if (s->pace_host_ns == 0) {
		s->pace_host_ns = host_now;     /* the first time every vCPU sleeps */
		s->pace_guest_ns = guest_now;
	}
	uint64_t allowed = s->pace_guest_ns + (host_now - s->pace_host_ns);
	return allowed < s->pace_guest_ns ? UINT64_MAX : allowed;
}

/* Sleep up to ns of host time. False when a wake-up, a kick or the VM
 * stopping came first (seen against the counts the caller read). */
static bool pace_wait(struct emu_vm *evm, uint64_t ns, uint64_t wake_seq, uint64_t kick_seq)
{
	struct emu_sched *s = evm->sched;
	struct timespec until = deadline_in(ns < EMU_PACE_MAX_WAIT_NS ? ns : EMU_PACE_MAX_WAIT_NS);
	pthread_mutex_lock(&s->lock);
	int r = 0;
	while (r == 0 && s->wake_seq == wake_seq && s->kick_seq == kick_seq &&
	       !vm_stopping(evm->vm))
		r = pthread_cond_timedwait(&s->cond, &s->lock, &until);
	pthread_mutex_unlock(&s->lock);
	return r != 0;
}

/* Every vCPU sleeps and a timer is set for guest time `deadline`: move the
 * clock on as far as the host clock allows, or sleep until it allows
 * something. A jump goes exactly to the deadline (where the vCPU it wakes
 * resumes: deterministic), except in a storm of timers that wake nobody,
 * which are taken together up to the host clock. False when woken, kicked
 * or stopped meanwhile. */
static bool idle_advance(struct emu_vm *evm, uint64_t deadline, uint64_t wake_seq,
			 uint64_t kick_seq)
{
	struct emu_sched *s = evm->sched;
	uint64_t guest = emu_guest_ns(evm), host = host_now_ns();
	uint64_t allowed = pace_allowed(s, guest, host);
	bool storm = s->idle_quiet && (deadline <= guest || deadline - guest < EMU_IDLE_TICK_NS);
	uint64_t due = storm ? guest + EMU_IDLE_TICK_NS : deadline;
	if (due > allowed)
		return pace_wait(evm, due - allowed, wake_seq, kick_seq);
	uint64_t to = storm ? allowed : deadline;
	if (to < guest)
		to = guest;
	if (allowed > to && allowed - to > EMU_PACE_MAX_LAG_NS) {
		s->pace_host_ns = host;         /* behind the host clock: forget the lag */
		s->pace_guest_ns = to;
	}
	emu_rr_idle_jump(evm, to);     /* when it happens follows the host clock */
	emu_platform_advance(evm, to);
	s->idle_quiet = true;   /* until a vCPU it woke is picked */
	return true;
}

/* true when something woke the machine since `seq`; otherwise the turn is
 * given up so no vCPU holds the token while all sleep. */
static bool release_turn_unless_woken(struct emu_vm *evm, uint64_t seq)
{
	struct emu_sched *s = evm->sched;
	pthread_mutex_lock(&s->lock);
	bool woken = s->wake_seq != seq;
	if (!woken) {
		s->turn = EMU_TURN_NONE;
		wake_all_locked(evm);
	}
	pthread_mutex_unlock(&s->lock);
	return woken;
}

/* Hand the token on; called by its holder `self` without sched->lock. When
 * every vCPU is idle, guest time moves on to the next timer deadline as
 * the host clock allows; with no deadline either the token is left free
 * until emu_vm_wake(). Returns early, still holding the token, when self
 * is kicked or the VM stops: the caller sees why. Returns the wake-up count
 * as it was when the token was left. */
static uint64_t sched_pass(struct emu_vm *evm, unsigned from, struct emu_cpu *self)
{
	struct emu_sched *s = evm->sched;
	for (;;) {
		bool absent;
		emu_rr_slice(evm);      /* recorded input may wake someone */
		pthread_mutex_lock(&s->lock);
		uint64_t seq = s->wake_seq, kicks = s->kick_seq;
		int next = sched_pick(evm, from, &absent);
		if (next >= 0) {
			struct emu_cpu *n = evm->cpus[next];
			ecpu_of(n)->quantum_end = n->retired + s->quantum;
			s->idle_quiet = false;
		}
		if (next >= 0 || absent) {
			s->turn = next >= 0 ? (unsigned)next : EMU_TURN_NONE;
			emu_rr_turn(evm, s->turn);
			if (next >= 0)       /* nobody else waits for a token that is taken */
				pthread_cond_broadcast(&ecpu_of(evm->cpus[next])->token_cond);
			else
				wake_all_locked(evm);
			pthread_mutex_unlock(&s->lock);
			return seq;
		}
		bool leave = kick_pending(emu_core_of(self)) || vm_stopping(evm->vm);
		pthread_mutex_unlock(&s->lock);
		if (leave)
			return seq;
		uint64_t deadline = emu_next_deadline_ns(evm);
		/* no timer to wait for, or woken/kicked while pacing: look again
		 * when woken, else free the token (any waiter picks again) */
		if (deadline == EMU_NO_DEADLINE || !idle_advance(evm, deadline, seq, kicks)) {
			if (!release_turn_unless_woken(evm, seq))
				return seq;
		}
	}
}

/* One turn: slices that end at the quantum or the next timer deadline. */
static enum emu_stop run_turn(struct emu_cpu *cpu)
{
	struct emu_vm *evm = cpu->evm;
	/* the turn's quantum survives exits: a vCPU that does port I/O all
	 * the time must not keep the token for ever */
	uint64_t quantum_end = ecpu_of(cpu)->quantum_end;
	for (;;) {
		emu_rr_slice(evm);
		if (emu_dbg_irq_blocked(cpu))
			emu_rr_noirq_step(cpu);
		uint64_t now = emu_guest_ns(evm);
		uint64_t deadline = emu_next_deadline_ns(evm);
		if (deadline <= now) {
			emu_platform_advance(evm, now);
			deadline = emu_next_deadline_ns(evm);
		}
		uint64_t budget = quantum_end > cpu->retired ? quantum_end - cpu->retired : 1;
		if (deadline != EMU_NO_DEADLINE && deadline > now && deadline - now < budget)
			budget = deadline - now;
		enum emu_stop stop = emu_exec_run(cpu, budget);
		if (stop != EMU_STOP_QUANTUM)
			return stop;
		if (cpu->retired >= quantum_end)
			return EMU_STOP_QUANTUM;
	}
}

static int run_kicked(struct emu_vm *evm, struct emu_cpu *cpu, struct vm_exit *exit)
{
	struct emu_sched *s = evm->sched;
	struct emu_engine_cpu *ec = ecpu_of(cpu);
	/* under sched->lock */
	__atomic_store_n(&ec->core.kick, false, __ATOMIC_RELEASE);
	ec->in_run = false;
	ec->parked = true;
	/* a debugger stop ends the turn: after it the others run first, as
	 * they would on hardware where every vCPU resumes at once */
	if (s->turn == cpu->id)
		ec->yield_turn = true;
	wake_all_locked(evm);           /* its token may be taken over */
	pthread_mutex_unlock(&s->lock);
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_KICKED;
	return 0;
}

#define EMU_YIELD_GRACE_NS 2000000ull

/* Before a vCPU that stopped for the debugger hands the token on: give the
 * others that the debugger is resuming with it (their threads are still on
 * their way back into run()) a moment, so the token goes to them and not
 * back to this one. Bounded: the debugger may be stepping this one alone. */
static void yield_grace(struct emu_vm *evm, struct emu_cpu *cpu)
{
	struct emu_sched *s = evm->sched;
	struct timespec until = deadline_in(EMU_YIELD_GRACE_NS);
	pthread_mutex_lock(&s->lock);
	for (;;) {
		bool absent;
		int next = sched_pick(evm, cpu->id, &absent);
		if ((next >= 0 && (unsigned)next != cpu->id) || !absent ||
		    kick_pending(emu_core_of(cpu)) || vm_stopping(evm->vm))
			break;
		if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != 0)
			break;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Wait until this vCPU holds the token (0) or is kicked (1). Takes over a
 * free token, or one whose holder is parked, to pass it on. Returns with
 * sched->lock held. */
static int wait_token(struct emu_vm *evm, struct emu_cpu *cpu)
{
	struct emu_sched *s = evm->sched;
	for (;;) {
		if (kick_pending(emu_core_of(cpu)) || vm_stopping(evm->vm))
			return 1;
		if (s->turn == cpu->id)
			return 0;
		bool free = s->turn == EMU_TURN_NONE ||
			    (s->turn < evm->nr_cpus && evm->cpus[s->turn] &&
			     cpu_absent(evm->cpus[s->turn]));
		if (free) {
			unsigned from = s->turn == EMU_TURN_NONE ? cpu->id : s->turn;
			s->turn = cpu->id;
			pthread_mutex_unlock(&s->lock);
			uint64_t seq = sched_pass(evm, from, cpu);
			pthread_mutex_lock(&s->lock);
			/* a wake-up between sched_pass and here must not be lost,
			 * nor a kick: sched_pass saw it only until it let go of
			 * the lock (pacing ends on it, then frees the token) */
			if (s->turn == cpu->id || (s->turn == EMU_TURN_NONE && s->wake_seq != seq) ||
			    kick_pending(emu_core_of(cpu)))
				continue;
		}
		pthread_cond_wait(&ecpu_of(cpu)->token_cond, &s->lock);
	}
}

/* run() on whichever thread runs the vCPU (its own, or a borrower). */
static int run_vcpu(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	struct emu_vm *evm = cpu->evm;
	struct emu_sched *s = evm->sched;
	struct emu_engine_cpu *ec = ecpu_of(cpu);

	bool yielded = false, back = true;
	emu_rr_leave_history(evm);     /* the debugger resumes inside the history */
	pthread_mutex_lock(&s->lock);
	ec->in_run = true;
	ec->parked = false;
	pthread_cond_broadcast(&s->cond);       /* for yield_grace() */
	for (;;) {
		if (wait_token(evm, cpu))
			return run_kicked(evm, cpu, exit);
		if (back) {
			/* back from the machine or the debugger, which may have
			 * written guest memory; no vCPU runs while we hold the token */
			emu_blocks_outside(evm);
			back = false;
		}
		pthread_mutex_unlock(&s->lock);
		if (ec->yield_turn && !yielded) {
			/* once per run(): while the others are still parked (the
			 * debugger steps this vCPU alone) the token comes straight
			 * back, and the yield stays due for the next run() */
			yielded = true;
			yield_grace(evm, cpu);
			sched_pass(evm, cpu->id, cpu);
			pthread_mutex_lock(&s->lock);
			if (s->turn != cpu->id)
				ec->yield_turn = false;
			continue;
		}

		enum emu_stop stop = cpu_runnable(cpu) ? run_turn(cpu) : EMU_STOP_HLT;
		if (stop == EMU_STOP_EXIT) {
			*exit = cpu->exit;
			/* a breakpoint or watchpoint stop ends the turn (not a step:
			 * stepping one vCPU must stay cheap) */
			bool step = exit->reason == VM_EXIT_DB && (exit->db.dr6 & DR6_BS);
			if ((exit->reason == VM_EXIT_DB && !step) || exit->reason == VM_EXIT_BPT)
				ec->yield_turn = true;
			pthread_mutex_lock(&s->lock);
			ec->in_run = false;     /* keeps the token: back after the machine */
			pthread_mutex_unlock(&s->lock);
			return 0;
		}
		if (stop != EMU_STOP_KICKED) {
			ec->yield_turn = false;
			unsigned from = cpu->id;
			if (stop == EMU_STOP_QUANTUM && evm->snap_check)
				from = emu_snap_check_point(cpu);    /* tests only */
			sched_pass(evm, from, cpu);
		}
		pthread_mutex_lock(&s->lock);
	}
}

/* --- what record and replay asks of the scheduler (emu_record.h) ----------------- */

unsigned emu_sched_turn(struct emu_vm *evm)
{
	struct emu_sched *s = evm->sched;
	pthread_mutex_lock(&s->lock);
	unsigned turn = s->turn;
	pthread_mutex_unlock(&s->lock);
	return turn;
}

void emu_sched_resume_at(struct emu_vm *evm, unsigned turn, bool fresh)
{
	struct emu_sched *s = evm->sched;
	pthread_mutex_lock(&s->lock);
	s->turn = turn < evm->nr_cpus && evm->cpus[turn] ? turn : EMU_TURN_NONE;
	if (fresh) {
		for (unsigned i = 0; i < evm->nr_cpus; i++)
			if (evm->cpus[i])
				ecpu_of(evm->cpus[i])->yield_turn = false;
		if (s->turn != EMU_TURN_NONE)
			ecpu_of(evm->cpus[turn])->quantum_end = evm->cpus[turn]->retired + s->quantum;
	}
	wake_all_locked(evm);
	pthread_mutex_unlock(&s->lock);
}

bool emu_sched_runnable(struct emu_cpu *cpu)
{
	return cpu_runnable(cpu);
}

static int emu_op_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	return run_vcpu(vcpu, exit);
}

/* The vCPU's own thread is parked outside run() (debug/park.c) and every
 * other vCPU is parked too: this thread runs it exactly as that thread
 * would. */
static int emu_op_run_borrowed(struct vcpu *vcpu, struct vm_exit *exit)
{
	return run_vcpu(vcpu, exit);
}

static void emu_op_kick(struct vcpu *vcpu)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (!cpu)
		return;
	struct emu_sched *s = cpu->evm->sched;
	__atomic_store_n(&emu_core_of(cpu)->kick, true, __ATOMIC_RELEASE);
	__atomic_store_n(&cpu->due, true, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&s->lock);
	s->kick_seq++;
	/* itself, a pacing holder, and the others: a holder kicked outside
	 * run() is absent from now on, and its token theirs to take over */
	wake_all_locked(cpu->evm);
	pthread_mutex_unlock(&s->lock);
}

/* --- the scheduler's position in snapshots (emu_snap.c) --------------------------- */

void emu_sched_save(struct emu_vm *evm, struct emu_sched_image *img,
		    struct emu_sched_cpu_image *cpus)
{
	struct emu_sched *s = evm->sched;
	pthread_mutex_lock(&s->lock);
	*img = (struct emu_sched_image){ .turn = s->turn, .idle_quiet = s->idle_quiet };
	for (unsigned i = 0; i < evm->nr_cpus; i++) {
		struct emu_cpu *cpu = evm->cpus[i];
		cpus[i] = cpu ? (struct emu_sched_cpu_image){
			.quantum_end = ecpu_of(cpu)->quantum_end,
			.yield_turn = ecpu_of(cpu)->yield_turn } : (struct emu_sched_cpu_image){ 0 };
	}
	pthread_mutex_unlock(&s->lock);
}

/* The token stays where it is: its holder is restoring, and hands it on
 * from img->turn when done. The idle pacing starts afresh: it follows the
 * host clock, not the guest. */
void emu_sched_restore(struct emu_vm *evm, const struct emu_sched_image *img,
		       const struct emu_sched_cpu_image *cpus)
{
	struct emu_sched *s = evm->sched;
	pthread_mutex_lock(&s->lock);
	s->idle_quiet = img->idle_quiet;
	s->pace_host_ns = s->pace_guest_ns = 0;
	for (unsigned i = 0; i < evm->nr_cpus; i++) {
		struct emu_cpu *cpu = evm->cpus[i];
		if (cpu) {
			ecpu_of(cpu)->quantum_end = cpus[i].quantum_end;
			ecpu_of(cpu)->yield_turn = cpus[i].yield_turn;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

/* --- VM and vCPUs ------------------------------------------------------------------ */

static void emu_vm_free(struct emu_vm *evm)
{
	emu_rr_destroy(evm);
	emu_snap_check_destroy(evm);
	if (evm->plat)
		emu_platform_destroy(evm);
	emu_dcache_destroy(evm);
	emu_blocks_destroy(evm);
	sched_destroy(evm);
	emu_vm_fini(evm);
	free(evm->watch);
	free(evm);
}

/* VMDB_EMU_NO_BLOCKS=1 in the environment runs every instruction on the
 * exact path (no block cache, no fast path): for tests only, so that
 * tests/test_differential.py compares both paths with KVM (README). */
static bool blocks_wanted(void)
{
	const char *v = getenv("VMDB_EMU_NO_BLOCKS");
	return !v || strcmp(v, "1") != 0;
}

/* emu executes everything itself: it takes no assist. */
static int emu_op_vm_create(struct vm *vm, const struct emu_single_ops *assist, struct err *e)
{
	(void)assist;
	unsigned n = vm->nr_vcpus ? vm->nr_vcpus : vm->cfg.nr_vcpus;
	if (n == 0 || n > VM_MAX_GUEST_VCPUS)
		return err_set(e, EINVAL, "the emu engine runs 1 to %u vCPUs, not %u",
			       VM_MAX_GUEST_VCPUS, n);
	int r = emu_handler_tables_check(e);
	if (r < 0)
		return r;
	struct emu_vm *evm = calloc(1, sizeof(*evm));
	if (!evm)
		return err_set(e, ENOMEM, "out of memory for the emu engine");
	emu_vm_init(evm, vm, n);
	r = sched_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu scheduler");
	}
	r = emu_dcache_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu decode cache");
	}
	r = blocks_wanted() ? emu_blocks_create(evm) : 0;
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu block cache");
	}
	r = emu_platform_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "cannot create the emu engine's interrupt controllers and "
			       "timers: %s", strerror(-r));
	}
	r = emu_rr_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu engine's recorder");
	}
	vm->engine_vm = evm;
	emu_snap_check_create(evm);
	return 0;
}

static void emu_op_vm_destroy(struct vm *vm)
{
	struct emu_vm *evm = evm_of(vm);
	if (!evm)
		return;
	emu_stats_report(evm);
	emu_vm_free(evm);
	vm->engine_vm = NULL;
}

/* Guest RAM is machine/'s (vm_gpa_to_host); the engine only checks that
 * what it is given is that RAM. Read-only slots are not offered. */
static int emu_op_map_memory(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
			     bool readonly, struct err *e)
{
	if (readonly)
		return err_set(e, ENOTSUP, "the emu engine has no read-only memory slots");
	if (vm_gpa_to_host(vm, gpa, size) != host)
		return err_set(e, EINVAL, "the emu engine maps only the machine's RAM "
			       "(0x%llx, 0x%llx bytes)", (unsigned long long)gpa,
			       (unsigned long long)size);
	return 0;
}

static int emu_op_vcpu_create(struct vm *vm, struct vcpu *vcpu, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	if (vcpu->id >= evm->nr_cpus)
		return err_set(e, EINVAL, "vCPU %u is beyond the %u the emu engine was made for",
			       vcpu->id, evm->nr_cpus);
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	struct emu_engine_cpu *c = calloc(1, sizeof(*c));
	if (!cpu || !c) {
		free(cpu);
		free(c);
		return err_set(e, ENOMEM, "out of memory for vCPU %u", vcpu->id);
	}
	emu_core_init(cpu, &c->core, evm, vcpu);
	pthread_cond_init(&c->token_cond, NULL);
	int r = emu_lapic_create(cpu);
	if (r < 0) {
		pthread_cond_destroy(&c->token_cond);
		free(c);
		free(cpu);
		return err_set(e, -r, "cannot create the local APIC of vCPU %u", vcpu->id);
	}
	vcpu->engine = cpu;
	pthread_mutex_lock(&evm->sched->lock);
	evm->cpus[vcpu->id] = cpu;
	pthread_mutex_unlock(&evm->sched->lock);
	return 0;
}

static void emu_op_vcpu_destroy(struct vcpu *vcpu)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (!cpu)
		return;
	struct emu_vm *evm = cpu->evm;
	pthread_mutex_lock(&evm->sched->lock);
	evm->cpus[cpu->id] = NULL;
	evm->retired_gone += cpu->retired;
	pthread_mutex_unlock(&evm->sched->lock);
	emu_lapic_destroy(cpu);
	pthread_cond_destroy(&ecpu_of(cpu)->token_cond);
	free(ecpu_of(cpu));
	free(cpu);
	vcpu->engine = NULL;
}

/* --- registers -------------------------------------------------------------------- */

static void emu_op_get_regs(struct vcpu *vcpu, struct x86_regs *r)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	const uint64_t *g = cpu->gpr;
	*r = (struct x86_regs){
		.rax = g[EMU_RAX], .rbx = g[EMU_RBX], .rcx = g[EMU_RCX], .rdx = g[EMU_RDX],
		.rsi = g[EMU_RSI], .rdi = g[EMU_RDI], .rbp = g[EMU_RBP], .rsp = g[EMU_RSP],
		.r8 = g[EMU_R8], .r9 = g[EMU_R9], .r10 = g[EMU_R10], .r11 = g[EMU_R11],
		.r12 = g[EMU_R12], .r13 = g[EMU_R13], .r14 = g[EMU_R14], .r15 = g[EMU_R15],
		.rip = cpu->rip, .rflags = emu_dbg_rflags_view(cpu),
	};
}

static void emu_op_set_regs(struct vcpu *vcpu, const struct x86_regs *r)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	uint64_t *g = cpu->gpr;
	g[EMU_RAX] = r->rax; g[EMU_RBX] = r->rbx; g[EMU_RCX] = r->rcx; g[EMU_RDX] = r->rdx;
	g[EMU_RSI] = r->rsi; g[EMU_RDI] = r->rdi; g[EMU_RBP] = r->rbp; g[EMU_RSP] = r->rsp;
	g[EMU_R8] = r->r8; g[EMU_R9] = r->r9; g[EMU_R10] = r->r10; g[EMU_R11] = r->r11;
	g[EMU_R12] = r->r12; g[EMU_R13] = r->r13; g[EMU_R14] = r->r14; g[EMU_R15] = r->r15;
	if (r->rip != cpu->rip) {
		emu_replay_reset(cpu);     /* the debugger moved it: nothing to complete */
		/* the last stop moves with it: the next step must not take the
		 * move for an event delivered before any instruction */
		cpu->dbg.step_rip += r->rip - cpu->rip;
	}
	cpu->rip = r->rip;
	cpu->rflags = (r->rflags & ~(RFLAGS_VM)) | RFLAGS_FIXED1;
	emu_dbg_rflags_loaded(cpu);
}

static void emu_op_get_sregs(struct vcpu *vcpu, struct x86_sregs *s)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	*s = cpu->sregs;
	s->cr8 = emu_lapic_get_cr8(cpu);
}

static void emu_op_set_sregs(struct vcpu *vcpu, const struct x86_sregs *s)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	struct emu_core *c = emu_core_of(cpu);
	uint64_t cr8 = emu_lapic_get_cr8(cpu);
	cpu->sregs = *s;
	if (s->cr8 != cr8)
		emu_lapic_set_cr8(cpu, s->cr8 & 0xf);
	c->cpl = (s->cr0 & CR0_PE) ? s->cs.dpl : 0;
	emu_tlb_flush(cpu);
	emu_update_mode(cpu);
	emu_replay_reset(cpu);
}

static void emu_get_msrs(struct emu_cpu *cpu, struct x86_state *st)
{
	st->star = cpu->msr_star;
	st->lstar = cpu->msr_lstar;
	st->cstar = cpu->msr_cstar;
	st->fmask = cpu->msr_fmask;
	st->kernel_gs_base = cpu->msr_kernel_gs_base;
}

static void emu_set_msrs(struct emu_cpu *cpu, const struct x86_state *st)
{
	cpu->msr_star = st->star;
	cpu->msr_lstar = st->lstar;
	cpu->msr_cstar = st->cstar;
	cpu->msr_fmask = st->fmask;
	cpu->msr_kernel_gs_base = st->kernel_gs_base;
}

static int emu_op_get_state(struct vcpu *vcpu, unsigned mask, struct x86_state *st)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (mask & X86_STATE_REGS)
		emu_op_get_regs(vcpu, &st->regs);
	if (mask & X86_STATE_SREGS)
		emu_op_get_sregs(vcpu, &st->sregs);
	if (mask & X86_STATE_FPU)
		st->fpu = cpu->fpu;
	if (mask & X86_STATE_XCR0)
		st->xcr0 = emu_core_of(cpu)->xcr0;
	if (mask & X86_STATE_DR)
		emu_dbg_get_regs(cpu, &st->dr);
	if (mask & X86_STATE_MSRS)
		emu_get_msrs(cpu, st);
	return 0;
}

void emu_state_apply(struct emu_cpu *cpu, unsigned mask, const struct x86_state *st)
{
	struct vcpu *vcpu = cpu->vcpu;
	if (mask & X86_STATE_SREGS)
		emu_op_set_sregs(vcpu, &st->sregs);
	if (mask & X86_STATE_REGS)
		emu_op_set_regs(vcpu, &st->regs);
	if (mask & X86_STATE_XCR0)
		emu_core_of(cpu)->xcr0 = st->xcr0;
	if (mask & X86_STATE_FPU)
		cpu->fpu = st->fpu;
	if (mask & X86_STATE_DR)
		emu_dbg_set_regs(cpu, &st->dr);
	if (mask & X86_STATE_MSRS)
		emu_set_msrs(cpu, st);
}

/* While recording, a write of the debugger that changes something is
 * logged, for replay to make it again at the same instruction. */
static int emu_op_set_state(struct vcpu *vcpu, unsigned mask, const struct x86_state *st)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	struct x86_state *now = malloc(sizeof(*now));
	bool same = false;
	if (now) {
		memcpy(now, st, sizeof(*now));
		emu_op_get_state(vcpu, mask, now);
		same = memcmp(now, st, sizeof(*now)) == 0;
		free(now);
	}
	if (!same && emu_rr_debugger_write(cpu->evm)) {
		emu_state_apply(cpu, mask, st);
		emu_rr_log_state(cpu, mask, st, sizeof(*st));
		return 0;
	}
	emu_state_apply(cpu, mask, st);
	return 0;
}

/* The platform's MSRs (the LAPIC's) first, as RDMSR/WRMSR take them. */
static int emu_op_msr_get(struct vcpu *vcpu, uint32_t msr, uint64_t *value)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	int r = emu_platform_msr_debug(cpu, msr, value, false);
	if (r != -ENOENT)
		return r == -EINVAL ? -ENOENT : r;   /* x2APIC registers in xAPIC mode */
	return emu_msr_get(cpu, msr, value) ? 0 : -ENOENT;
}

int emu_msr_apply(struct emu_cpu *cpu, uint32_t msr, uint64_t value)
{
	uint64_t old;
	int r = emu_platform_msr_debug(cpu, msr, &value, true);
	if (r != -ENOENT)
		return r;
	if (!emu_msr_get(cpu, msr, &old))
		return -ENOENT;
	if (msr == MSR_EFER && !emu_efer_ok(cpu, value))
		return -EINVAL;      /* emu_write_efer would fault, outside the core's loop */
	return emu_msr_set(cpu, msr, value) ? 0 : -EINVAL;
}

static int emu_op_msr_set(struct vcpu *vcpu, uint32_t msr, uint64_t value)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	int r = emu_msr_apply(cpu, msr, value);
	if (r == 0 && emu_rr_debugger_write(cpu->evm))
		emu_rr_log_msr(cpu, msr, value);
	return r;
}

static int emu_op_irqchip_get(struct vcpu *vcpu, struct engine_irqchip *chip)
{
	emu_platform_irqchip(cpu_of(vcpu), chip);
	return 0;
}

static int emu_op_get_run_state(struct vcpu *vcpu, bool *halted, bool *waiting_sipi)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	*halted = cpu->halted;
	*waiting_sipi = cpu->wait_sipi;
	return 0;
}

static int emu_op_set_debug(struct vcpu *vcpu, const struct engine_debug *dbg)
{
	emu_core_of(cpu_of(vcpu))->hlt_step = false;     /* the debugger's new wish wins */
	return emu_dbg_set_debug(cpu_of(vcpu), dbg);
}

/* emu sees every access: the ranges are matched by linear address in
 * emu_debug.c, exactly, whatever their number. */
static int emu_op_set_watch(struct vm *vm, const struct engine_watch *w, unsigned n,
			    struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	struct engine_watch *copy = NULL;
	if (n && !(copy = malloc(n * sizeof(*copy))))
		return err_set(e, ENOMEM, "out of memory for %u watched ranges", n);
	if (n)
		memcpy(copy, w, n * sizeof(*copy));
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i])
			emu_dbg_set_watch(evm->cpus[i], copy, n);
	free(evm->watch);
	evm->watch = copy;
	evm->nr_watch = n;
	return 0;
}

static int emu_op_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
				   uint32_t error_code)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (vector >= 32)
		return -EINVAL;
	if (emu_rr_debugger_write(cpu->evm))
		emu_rr_log_exception(cpu, false, vector, has_error_code, error_code, 0);
	cpu->pending.exception = false;
	emu_raise(cpu, vector, has_error_code, error_code);
	emu_replay_reset(cpu);
	return 0;
}

static int emu_op_deliver_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
				    uint32_t error_code, uint64_t rflags)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (vector >= 32)
		return -EINVAL;
	if (emu_rr_debugger_write(cpu->evm))
		emu_rr_log_exception(cpu, true, vector, has_error_code, error_code, rflags);
	emu_dbg_rflags_for_event(cpu, (rflags & ~RFLAGS_VM) | RFLAGS_FIXED1);
	cpu->pending.exception = false;
	emu_raise(cpu, vector, has_error_code, error_code);
	emu_replay_reset(cpu);
	/* a budget of nothing: the delivery, and no instruction after it */
	emu_exec_run(cpu, 0);
	/* this is where the vCPU stopped now (a step must not take the
	 * delivery for an event before its first instruction) */
	struct engine_debug same = cpu->debugger;
	emu_dbg_set_debug(cpu, &same);
	return 0;
}

/* --- probe ----------------------------------------------------------------------- */

/* --cpu kvm-step: the guest's TF is lost under the engine's, as on the
 * host KVM; the debugger keeps it as a shadow. */
static void emu_op_vm_caps(struct vm *vm, struct engine_caps *caps)
{
	if (vm->cfg.cpu == VM_CPU_KVM_STEP)
		caps->step_keeps_guest_tf = false;
}

static void probe_feature(struct engine_report *report, const char *name, bool present,
			  const char *how)
{
	if (!report || report->nr >= ENGINE_MAX_FEATURES)
		return;
	struct engine_feature *f = &report->features[report->nr++];
	f->name = name;
	f->present = present;
	snprintf(f->how, sizeof(f->how), "%s", how);
}

/* The engine implements these itself, so the answers are what the code
 * does (the debug architecture is tested from inside guests by
 * tests/test_emu_debug.py). Names follow engine/kvm/kvm_probe.c. */
void emu_exception_apply(struct emu_cpu *cpu, bool deliver, uint8_t vector, bool has_error_code,
			 uint32_t error_code, uint64_t rflags)
{
	if (deliver)
		emu_op_deliver_exception(cpu->vcpu, vector, has_error_code, error_code, rflags);
	else
		emu_op_inject_exception(cpu->vcpu, vector, has_error_code, error_code);
}

static int emu_op_probe(const struct emu_single_ops *assist, struct engine_caps *caps,
			struct engine_report *report, struct err *e)
{
	(void)assist;
	(void)e;
	memset(caps, 0, sizeof(*caps));
	caps->step_block_irq = caps->hw_data_bp = caps->gd_trap = true;
	/* MTF-like stepping never touches RFLAGS.TF; --cpu amd stepping owns
	 * TF but emu_debug.c fixes every image itself */
	caps->step_keeps_guest_tf = true;
	caps->watch_linear = true;
	if (report)
		memset(report, 0, sizeof(*report));
	probe_feature(report, "single-step exits", true,
		      "MTF-like: an exit after every instruction and REP iteration, guest TF "
		      "untouched (--cpu amd: TF, images fixed up; kvm-step: TF as KVM)");
	probe_feature(report, "BLOCKIRQ", true, "no interrupt or NMI delivered while stepping");
	probe_feature(report, "hardware execution breakpoints", true,
		      "DR0-3 matched before every instruction (fault, RF honoured)");
	probe_feature(report, "hardware data breakpoints", true,
		      "every guest data access checked against DR0-3 (trap after the "
		      "instruction)");
	probe_feature(report, "DR7.GD trapping of guest MOV DR", true,
		      "#DB with DR6.BD before the MOV executes");
	probe_feature(report, "read-only memory slots", false, "not implemented in the emu engine");
	probe_feature(report, "in-kernel irqchip", true,
		      "the engine's own LAPIC, I/O APIC, PIC and PIT (emu_platform)");
	char how[64];
	snprintf(how, sizeof(how), "%u (VM_MAX_GUEST_VCPUS)", VM_MAX_GUEST_VCPUS);
	probe_feature(report, "max vCPUs", true, how);
	probe_feature(report, "single-step exits in ring 3", true, "same as ring 0");
	probe_feature(report, "hardware execution breakpoints in ring 3", true, "same as ring 0");
	probe_feature(report, "INT3 interception in ring 3", true,
		      "guest INT3 exits as a breakpoint when intercepted, any ring");
	probe_feature(report, "MOV DR exits", true,
		      "guest MOV DR is emulated, then exits with register, direction, GPR");
	probe_feature(report, "guest #DB exits", true,
		      "the guest's own #DB exits with its DR6 bits instead of being delivered");
	caps->catch_access = 1u << ENGINE_ACCESS_IO | 1u << ENGINE_ACCESS_MSR |
			     1u << ENGINE_ACCESS_CR;
	probe_feature(report, "access catching (io, msr, cr)", true,
		      "every IN/OUT/INS/OUTS, RDMSR/WRMSR and CR write (MOV, LMSW, CLTS) is checked "
		      "against the debugger's filter; the stop comes after the instruction");
	probe_feature(report, "deterministic execution", true,
		      "one vCPU at a time, round robin every 50000 instructions; "
		      "guest time = retired instructions");
	return 0;
}

static const struct engine_vm_ops emu_vm_ops = {
	.create = emu_op_vm_create,
	.destroy = emu_op_vm_destroy,
	.map_memory = emu_op_map_memory,
	.irq_line = emu_platform_irq_line,
	.guest_ns = emu_platform_guest_ns,
	.probe = emu_op_probe,
	.vm_caps = emu_op_vm_caps,
};

static const struct engine_vcpu_ops emu_vcpu_ops = {
	.create = emu_op_vcpu_create,
	.destroy = emu_op_vcpu_destroy,
	.run = emu_op_run,
	.kick = emu_op_kick,
	.get_state = emu_op_get_state,
	.set_state = emu_op_set_state,
	.get_run_state = emu_op_get_run_state,
	.msr_get = emu_op_msr_get,
	.irqchip_get = emu_op_irqchip_get,
	.msr_set = emu_op_msr_set,
	.inject_exception = emu_op_inject_exception,
};

static const struct engine_debug_ops emu_debug_ops = {
	.set_debug = emu_op_set_debug,
	.set_watch = emu_op_set_watch,
	.deliver_exception = emu_op_deliver_exception,
};

static const struct engine_lend_ops emu_lend_ops = {
	.run = emu_op_run_borrowed,
};

/* The core emu_single.c lends to engines that cannot execute everything. */
const struct engine_ops emu_engine_ops = {
	.name = "emu",
	.vm = &emu_vm_ops,
	.vcpu = &emu_vcpu_ops,
	.debug = &emu_debug_ops,
	.lend = &emu_lend_ops,
	.rr = &emu_rr_ops,
	.snap = &emu_snap_ops,
	.assist = &emu_single_ops,
};

ENGINE_REGISTER(emu_engine_ops);
