/* debug/park.c — the one stop-all / resume mechanism, the event queue and
 * the vCPU-loop hooks. Every stop (breakpoint, step, Ctrl-C, attach) goes
 * through debug_request_stop_locked(): clear every vCPU's run permission
 * and kick the ones inside the engine; they come back through on_exit
 * (KICKED is consumed) into before_run, where they park. The client waits
 * until no vCPU is RUNNING before it reports anything. A vCPU stepped
 * alone is stepped on the client's own thread where the engine lends it
 * (step_borrowed): its thread stays parked, and a step costs no thread
 * wake-up. */
#include "debug/debug_int.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How often the client re-kicks a vCPU that has not parked yet. Not the
 * synchronisation (the park wakes the client through parked_cond); a kick
 * that lands between exits stays pending in the engine, and the re-kick
 * only covers an engine that would drop it. */
#define DEBUG_KICK_RETRY_NS  (20 * 1000 * 1000L)
/* A step-over that has not finished after this long (HLT with interrupts
 * blocked, a vCPU waiting for SIPI) is abandoned: the vCPU is kicked. */
#define DEBUG_STEP_OVER_NS   (500 * 1000 * 1000L)
/* How long a vCPU that just stepped polls before it blocks. */
#define DEBUG_STEP_SPIN_NS   (300 * 1000L)
/* How often a parked vCPU thread looks at a step of its vCPU that runs on
 * the client's thread (step_borrowed): such a step ends in microseconds
 * unless its instruction blocks (HLT, a wait for SIPI); one still running
 * at two looks in a row is kicked. */
#define DEBUG_BORROW_WATCH_NS (100 * 1000 * 1000L)

static void deadline_in(struct timespec *ts, long ns)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_nsec += ns;
	while (ts->tv_nsec >= 1000000000L) {
		ts->tv_nsec -= 1000000000L;
		ts->tv_sec++;
	}
}

static void notify(struct debug *d)
{
	if (d->notify)
		d->notify(d->notify_opaque);
}

/* A park's wake-up for the client: not needed while the client polls the
 * queue itself (it sees the event queued before this park). */
static void notify_park_locked(struct debug *d)
{
	if (!d->client_polling)
		notify(d);
}

unsigned debug_nr_vcpus(const struct debug *d)
{
	return d->nr_vcpus;
}

void *debug_notify_opaque(const struct debug *d)
{
	return d->notify_opaque;
}

/* ---- event queue ---- */

void debug_queue_locked(struct debug *d, const struct debug_event *ev)
{
	if (d->q_len == DEBUG_QUEUE_SIZE)
		return;   /* cannot happen: one event per vCPU before it parks */
	d->queue[(d->q_head + d->q_len) % DEBUG_QUEUE_SIZE] = *ev;
	d->q_len++;
}

/* An event the client can be told about now: one of a vCPU it resumed
 * (a vCPU it left stopped keeps its event for a later resume), or one that
 * concerns the whole machine. */
static bool event_eligible(struct debug *d, const struct debug_event *ev)
{
	switch (ev->kind) {
	case DEBUG_EV_INTERRUPT:
	case DEBUG_EV_EXITED:
	case DEBUG_EV_CRASHED:
		return true;
	default:
		return ev->vcpu < d->nr_vcpus && d->vcpus[ev->vcpu].resumed;
	}
}

static struct debug_event *queue_at(struct debug *d, unsigned i)
{
	return &d->queue[(d->q_head + i) % DEBUG_QUEUE_SIZE];
}

static void queue_remove_locked(struct debug *d, unsigned i)
{
	for (; i + 1 < d->q_len; i++)
		*queue_at(d, i) = *queue_at(d, i + 1);
	d->q_len--;
}

/* Index of the first eligible event, or -1. */
static int first_eligible_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->q_len; i++)
		if (event_eligible(d, queue_at(d, i)))
			return (int)i;
	return -1;
}

/* Only events the client can be told about now are popped (see
 * event_eligible): while gdb steps one thread over a breakpoint, another
 * vCPU's queued hit must wait for that vCPU to be resumed. */
bool debug_next_event(struct debug *d, struct debug_event *ev)
{
	pthread_mutex_lock(&d->lock);
	int i = first_eligible_locked(d);
	if (i >= 0) {
		*ev = *queue_at(d, (unsigned)i);
		queue_remove_locked(d, (unsigned)i);
	}
	pthread_mutex_unlock(&d->lock);
	return i >= 0;
}

bool debug_has_event(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool have = first_eligible_locked(d) >= 0;
	pthread_mutex_unlock(&d->lock);
	return have;
}

static bool polling_end(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	d->client_polling = false;
	/* a park that skipped notify did so before this: its event is here */
	bool have = first_eligible_locked(d) >= 0;
	pthread_mutex_unlock(&d->lock);
	return have;
}

bool debug_wait_event_briefly(struct debug *d, long max_ns)
{
	struct timespec start, now;
	pthread_mutex_lock(&d->lock);
	d->client_polling = true;
	pthread_mutex_unlock(&d->lock);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (__atomic_load_n(&d->q_len, __ATOMIC_ACQUIRE) > 0 && debug_has_event(d))
				return polling_end(d);
			__builtin_ia32_pause();
		}
		sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec) > max_ns)
			return polling_end(d);
	}
}

/* An event still means something when resuming: its breakpoint is still
 * there (the client may have removed it; the vCPU then simply executes the
 * original instruction, its RIP already points there). Ctrl-C requests are
 * satisfied by the stop that just happened. */
static bool event_still_valid(struct debug *d, const struct debug_event *ev)
{
	switch (ev->kind) {
	case DEBUG_EV_SWBREAK: {
		const struct debug_sw_bp *bp = debug_sw_find_locked(d, ev->addr);
		return bp && bp->client;
	}
	case DEBUG_EV_HWBREAK: {
		int n = debug_hw_find_locked(d, ev->addr);
		return n >= 0 && d->hw[n].client;
	}
	case DEBUG_EV_WATCH:
	case DEBUG_EV_AWATCH:
		return debug_watch_exists_locked(d, ev->kind, ev->addr);
	case DEBUG_EV_CATCH: {
		/* still caught, and the breakpoint that saw it still there */
		const struct debug_sw_bp *bp = debug_sw_find_locked(d, ev->addr);
		int n = debug_hw_find_locked(d, ev->addr);
		uint32_t bit = 1u << ev->vector;
		return (bp && (bp->catch_vectors & bit)) || (n >= 0 && (d->hw[n].catch_vectors & bit));
	}
	case DEBUG_EV_INTERRUPT:
		return false;
	default:
		return true;
	}
}

/* Only events of resumed vCPUs are judged: gdb steps one thread over a
 * breakpoint with the breakpoint removed, and the hit another vCPU had on
 * it must survive that. */
static void drop_stale_events_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->q_len;) {
		struct debug_event *ev = queue_at(d, i);
		if (event_eligible(d, ev) && !event_still_valid(d, ev))
			queue_remove_locked(d, i);
		else
			i++;
	}
}

/* ---- stopping ---- */

bool debug_machine_gone(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool gone = d->gone || vm_stopping(d->vm);
	pthread_mutex_unlock(&d->lock);
	return gone;
}

static bool gone_locked(struct debug *d);

/* Never kick once the machine is stopping: vCPU threads are leaving and
 * may already be joined, and a signal to a joined thread is undefined. */
static void kick_running_locked(struct debug *d, unsigned self)
{
	if (gone_locked(d))
		return;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (i != self && d->vcpus[i].park == DEBUG_PARK_RUNNING)
			d->vm->engine->kick(&d->vm->vcpus[i]);
}

void debug_request_stop_locked(struct debug *d, unsigned self)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].run_allowed = false;
	kick_running_locked(d, self);
}

static bool all_parked_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (d->vcpus[i].park == DEBUG_PARK_RUNNING)
			return false;
	return true;
}

static bool gone_locked(struct debug *d)
{
	if (!d->gone && vm_stopping(d->vm))
		d->gone = true;
	return d->gone;
}

void debug_stop_all(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	debug_request_stop_locked(d, VM_MAX_VCPUS);
	while (!all_parked_locked(d) && !gone_locked(d)) {
		struct timespec ts;
		deadline_in(&ts, DEBUG_KICK_RETRY_NS);
		if (pthread_cond_timedwait(&d->parked_cond, &d->lock, &ts) != 0)
			kick_running_locked(d, VM_MAX_VCPUS);
	}
	pthread_mutex_unlock(&d->lock);
}

void debug_interrupt(struct debug *d, unsigned vcpu)
{
	struct debug_event ev = { .kind = DEBUG_EV_INTERRUPT, .vcpu = vcpu };
	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, &ev);
	debug_request_stop_locked(d, VM_MAX_VCPUS);
	pthread_mutex_unlock(&d->lock);
	notify(d);
}

/* ---- engine debug state ---- */

/* What the engine must do for one vCPU now: step or not, our hardware
 * breakpoints (minus any lifted for a step-over). INT3 is always
 * intercepted: an INT3 that is not ours is handed back to the guest. */
int debug_apply_engine(struct debug *d, unsigned vcpu)
{
	const struct engine_ops *eng = d->vm->engine;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct engine_debug dbg;

	memset(&dbg, 0, sizeof(dbg));     /* compared bytewise below */
	dbg.intercept_bpt = true;

	if (!eng->set_debug)
		return dv->step != DEBUG_STEP_NONE ? -ENOTSUP : 0;
	pthread_mutex_lock(&d->lock);
	/* a HLT step runs freely to the next instruction (step.c) */
	bool hlt_run = dv->step != DEBUG_STEP_NONE && dv->st.hlt_run;
	dbg.single_step = dv->step != DEBUG_STEP_NONE && !hlt_run;
	dbg.block_irq = dbg.single_step && !d->sstep_irq && !d->step_mask_if;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++) {
		uint64_t addr = d->hw[n].addr;
		uint64_t rw_len = DR7_RW(n, DR7_RW_EXEC) | DR7_LEN(n, DR7_LEN_1);
		if (hlt_run && n == dv->st.hlt_slot)
			addr = dv->st.hlt_addr;
		else if (!d->hw[n].used || (dv->hw_lifted & (1u << n)))
			continue;
		else
			rw_len = debug_hw_dr7_bits(&d->hw[n], n);   /* execution or watchpoint piece */
		dbg.db[n] = addr;
		dbg.dr7 |= DR7_G(n) | rw_len;
	}
	pthread_mutex_unlock(&d->lock);
	if (dbg.dr7) {
		dbg.dr7 |= DR7_FIXED1 | DR7_GE;
		dbg.use_hw_bp = true;
	}
	/* one ioctl less per vCPU and resume when nothing changed */
	if (dv->applied_valid && memcmp(&dv->applied, &dbg, sizeof(dbg)) == 0)
		return 0;
	int r = eng->set_debug(&d->vm->vcpus[vcpu], &dbg);
	dv->applied = dbg;
	dv->applied_valid = r == 0;
	return r;
}

/* ---- resume ---- */

static int vcpu_pc(struct debug *d, unsigned vcpu, uint64_t *pc)
{
	struct x86_regs regs;
	int r = debug_read_regs(d, vcpu, &regs);
	if (r == 0)
		*pc = regs.rip;
	return r;
}

/* ---- stepping on the client's thread ---- */

static bool on_bpt(struct debug *d, struct vcpu *vcpu, uint64_t pc);
static bool on_db(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit);
static bool eligible_pending(struct debug *d);

/* The client's thread may run this vCPU's step itself (step_borrowed):
 * the engine lends vCPUs to other threads, the vCPU is single-stepped
 * (not a HLT run, which may last), and its own thread is out of the
 * engine. The caller keeps every other vCPU parked. */
static bool lendable(struct debug *d, unsigned vcpu)
{
	const struct engine_ops *eng = d->vm->engine;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	if (!eng->run_borrowed || !eng->requeue_exit)
		return false;
	pthread_mutex_lock(&d->lock);
	bool ok = dv->park != DEBUG_PARK_RUNNING && dv->applied_valid &&
		  dv->applied.single_step && !gone_locked(d);
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/* One step of a parked vCPU on the calling (client's) thread: its own
 * thread stays parked, so the step costs no thread wake-up on either
 * side. The exits of a step that are the debugger's (the trap that ends
 * it, a breakpoint) are handled here, as the vCPU's thread would; any
 * other (port I/O, MMIO, ...) is requeued for the vCPU's thread, which the
 * caller then releases to handle it and finish the step. True when the
 * exit was handled here. */
static bool step_borrowed(struct debug *d, unsigned vcpu)
{
	const struct engine_ops *eng = d->vm->engine;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct vcpu *v = &d->vm->vcpus[vcpu];
	struct vm_exit exit;

	debug_vcpu_forget(d, vcpu);
	__atomic_add_fetch(&dv->borrow_seq, 1, __ATOMIC_SEQ_CST);    /* odd: lent */
	int r = eng->run_borrowed(v, &exit);
	__atomic_add_fetch(&dv->borrow_seq, 1, __ATOMIC_SEQ_CST);
	bool handled = false;
	if (r == 0 && exit.reason == VM_EXIT_DB)
		handled = on_db(d, v, &exit);
	else if (r == 0 && exit.reason == VM_EXIT_BPT)
		handled = on_bpt(d, v, exit.bpt.pc);
	/* a kick (nothing ran) or a host error: the vCPU's thread runs it
	 * again and meets the error itself */
	if (r == 0 && !handled && exit.reason != VM_EXIT_KICKED)
		eng->requeue_exit(v, &exit);
	pthread_mutex_lock(&d->lock);
	/* the vCPU's thread never left its park: nobody to wake, no spin */
	dv->notify_on_park = false;
	__atomic_store_n(&dv->just_stepped, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
	return handled;
}

/* Run one parked vCPU alone until it parks again. */
static void run_alone(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct timespec ts;
	bool kicked = false;

	if (lendable(d, vcpu) && step_borrowed(d, vcpu) &&
	    (dv->step_done || eligible_pending(d)))
		return;
	pthread_mutex_lock(&d->lock);
	dv->run_allowed = true;
	pthread_cond_broadcast(&d->park_cond);
	deadline_in(&ts, DEBUG_STEP_OVER_NS);
	while (dv->run_allowed && !gone_locked(d)) {
		struct timespec slice;
		deadline_in(&slice, DEBUG_KICK_RETRY_NS);
		pthread_cond_timedwait(&d->parked_cond, &d->lock, &slice);
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (!kicked && (now.tv_sec > ts.tv_sec ||
				(now.tv_sec == ts.tv_sec && now.tv_nsec >= ts.tv_nsec))) {
			dv->run_allowed = false;
			kicked = true;
		}
		if (kicked && dv->park == DEBUG_PARK_RUNNING && !gone_locked(d))
			d->vm->engine->kick(&d->vm->vcpus[vcpu]);
	}
	/* run_allowed is false: wait for the park itself */
	while (dv->park == DEBUG_PARK_RUNNING && !gone_locked(d)) {
		struct timespec slice;
		deadline_in(&slice, DEBUG_KICK_RETRY_NS);
		if (pthread_cond_timedwait(&d->parked_cond, &d->lock, &slice) != 0 &&
		    !gone_locked(d))
			d->vm->engine->kick(&d->vm->vcpus[vcpu]);
	}
	pthread_mutex_unlock(&d->lock);
}

/* The vCPU is parked at one of our breakpoints and must execute the
 * instruction under it: lift the breakpoint (int3 byte or DR slot) for it
 * alone, step once with every other vCPU parked, put it back. */
static int step_over(struct debug *d, unsigned vcpu, uint64_t pc, bool report)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];

	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *sw = debug_sw_find_locked(d, pc);
	dv->hw_lifted = 0;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		if (d->hw[n].used && d->hw[n].rw == DR7_RW_EXEC && d->hw[n].addr == pc)
			dv->hw_lifted |= 1u << n;
	dv->step = DEBUG_STEP_INTERNAL;
	dv->step_done = false;
	dv->step_watch = false;
	pthread_mutex_unlock(&d->lock);

	if (sw)
		debug_sw_poke(d, sw, false);
	int r = debug_step_begin(d, vcpu);
	bool done_here = r == 1;
	if (r == 0)
		r = debug_apply_engine(d, vcpu);
	if (r == 0)
		run_alone(d, vcpu);
	if (done_here)
		r = 0;

	pthread_mutex_lock(&d->lock);
	bool done = dv->step_done || done_here;
	dv->step = DEBUG_STEP_NONE;
	dv->hw_lifted = 0;
	if (done && dv->step_watch) {
		/* the stepped instruction hit a watchpoint: that is the stop
		 * (it ends a step the client asked for too) */
		debug_queue_locked(d, &dv->step_watch_ev);
		dv->step_watch = false;
	} else if (done && report) {
		struct debug_event ev = { .kind = DEBUG_EV_STEP, .vcpu = vcpu, .addr = pc };
		debug_queue_locked(d, &ev);
	}
	/* the step may have re-armed the fault guards: the table moved */
	sw = debug_sw_find_locked(d, pc);
	if (sw && sw->lifted)
		debug_sw_poke(d, sw, true);
	pthread_mutex_unlock(&d->lock);
	return r;
}

static bool eligible_pending(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool pending = first_eligible_locked(d) >= 0;
	pthread_mutex_unlock(&d->lock);
	return pending;
}

/* The step engine's fault guards are not counted: it lifts the one under
 * the instruction it steps itself (step.c). */
static bool at_breakpoint(struct debug *d, uint64_t pc)
{
	pthread_mutex_lock(&d->lock);
	const struct debug_sw_bp *sw = debug_sw_find_locked(d, pc);
	bool at = (sw && (sw->client || sw->catch_vectors)) || debug_hw_find_locked(d, pc) >= 0;
	pthread_mutex_unlock(&d->lock);
	return at;
}

static bool any_breakpoint(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool any = d->nr_sw > 0;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		any = any || d->hw[n].used;
	pthread_mutex_unlock(&d->lock);
	return any;
}

static int step_overs(struct debug *d, const enum debug_action *actions, struct err *e)
{
	if (!any_breakpoint(d))
		return 0;
	d->step_alone = true;     /* a step-over runs its vCPU alone */
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		uint64_t pc = 0;
		if (actions[i] == DEBUG_ACT_STOP || vcpu_pc(d, i, &pc) < 0 || !at_breakpoint(d, pc))
			continue;
		int r = step_over(d, i, pc, actions[i] == DEBUG_ACT_STEP);
		if (r < 0)
			return err_set(e, -r, "vCPU %u sits on a breakpoint and the %s engine cannot "
				       "single-step over it", i, d->vm->engine->name);
		if (eligible_pending(d) || debug_machine_gone(d))
			break;
	}
	return 0;
}

int debug_resume(struct debug *d, const enum debug_action *actions, struct err *e)
{
	/* a write the engine refused since the last stop (a step's fix-up):
	 * the guest may not be where the client thinks; it hears so first */
	int r = debug_vcpu_take_write_error(d, e);
	if (r < 0)
		return r;
	debug_catch_sync(d);     /* the guest may have moved its IDT while stopped or before */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].resumed = actions[i] != DEBUG_ACT_STOP;
	drop_stale_events_locked(d);
	pthread_mutex_unlock(&d->lock);
	if (eligible_pending(d))
		return 1;
	r = step_overs(d, actions, e);
	if (r < 0)
		return r;
	if (eligible_pending(d))
		return 1;
	unsigned running = 0, stepped = 0;
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		running += actions[i] != DEBUG_ACT_STOP;
		if (actions[i] == DEBUG_ACT_STEP)
			stepped = i;
	}
	d->step_alone = running == 1;

	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		d->vcpus[i].step = actions[i] == DEBUG_ACT_STEP ? DEBUG_STEP_USER : DEBUG_STEP_NONE;
		r = actions[i] == DEBUG_ACT_STEP ? debug_step_begin(d, i) : 0;
		if (r == 1) {
			/* vmdb did this step itself: report it, run nothing */
			struct x86_regs regs;
			d->vcpus[i].step = DEBUG_STEP_NONE;
			if (debug_read_regs(d, i, &regs) < 0)
				regs.rip = 0;
			struct debug_event ev = { .kind = DEBUG_EV_STEP, .vcpu = i, .addr = regs.rip };
			pthread_mutex_lock(&d->lock);
			debug_queue_locked(d, &ev);
			pthread_mutex_unlock(&d->lock);
			return 1;
		}
		if (r == 0)
			r = debug_apply_engine(d, i);
		if (r < 0 && actions[i] == DEBUG_ACT_STEP) {
			d->vcpus[i].step = DEBUG_STEP_NONE;
			return err_set(e, -r, "the %s engine cannot single-step vCPU %u",
				       d->vm->engine->name, i);
		}
		if (actions[i] == DEBUG_ACT_CONTINUE)
			debug_step_leave(d, i);
	}
	/* one vCPU stepped alone: on this thread when the engine lends it */
	if (running == 1 && actions[stepped] == DEBUG_ACT_STEP && lendable(d, stepped) &&
	    step_borrowed(d, stepped) && eligible_pending(d))
		return 1;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].run_allowed = actions[i] != DEBUG_ACT_STOP;
	pthread_cond_broadcast(&d->park_cond);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

void debug_attach(struct debug *d)
{
	debug_stop_all(d);
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].resumed = true;
	drop_stale_events_locked(d);
	pthread_mutex_unlock(&d->lock);
}

void debug_detach(struct debug *d)
{
	debug_stop_all(d);
	debug_remove_all_breakpoints(d);
	pthread_mutex_lock(&d->lock);
	d->q_len = 0;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].step = DEBUG_STEP_NONE;
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		debug_apply_engine(d, i);
		debug_step_leave(d, i);
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].run_allowed = true;
	pthread_cond_broadcast(&d->park_cond);
	pthread_mutex_unlock(&d->lock);
}

/* ---- hooks, called on vCPU threads ---- */

/* A vCPU that just finished a step is usually stepped again a client
 * round trip later; waking a blocked thread costs more than that round
 * trip under nested KVM, so that one vCPU polls its permission for a
 * moment before it blocks. */
static void spin_after_step(struct debug_vcpu *dv)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (__atomic_load_n(&dv->run_allowed, __ATOMIC_ACQUIRE))
				return;
			__builtin_ia32_pause();
		}
		sched_yield();     /* 2 host cores: let the client or the server run */
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ns = (now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec);
		if (ns > DEBUG_STEP_SPIN_NS)
			return;
	}
}

/* A step of this vCPU on the client's thread (step_borrowed) that has not
 * ended since the last look (its instruction blocks: HLT, a wait for
 * SIPI) is kicked out of the engine; the client's thread then hands the
 * step to this thread, where a Ctrl-C can stop it. With d->lock held. */
static void watch_borrow(struct debug *d, struct vcpu *vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	unsigned seq = __atomic_load_n(&dv->borrow_seq, __ATOMIC_SEQ_CST);
	if ((seq & 1) && seq == dv->borrow_seen && !gone_locked(d))
		d->vm->engine->kick(vcpu);
	dv->borrow_seen = seq;
}

static void hook_before_run(struct vm *vm, struct vcpu *vcpu)
{
	struct debug *d = vm->debug;
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];

	if (__atomic_exchange_n(&dv->just_stepped, false, __ATOMIC_ACQ_REL)) {
		pthread_mutex_lock(&d->lock);
		if (!dv->run_allowed && dv->notify_on_park) {
			/* report first, then wait for the next step */
			dv->park = DEBUG_PARK_PARKED;
			dv->notify_on_park = false;
			pthread_cond_broadcast(&d->parked_cond);
			notify_park_locked(d);
		}
		pthread_mutex_unlock(&d->lock);
		/* an engine that lends the vCPU takes the next step on the
		 * client's thread: spinning would only take a core from it */
		if (!vm->engine->run_borrowed)
			spin_after_step(dv);
	}
	pthread_mutex_lock(&d->lock);
	while (!dv->run_allowed && !gone_locked(d)) {
		if (dv->park != DEBUG_PARK_PARKED) {
			dv->park = DEBUG_PARK_PARKED;
			pthread_cond_broadcast(&d->parked_cond);
			if (dv->notify_on_park) {
				dv->notify_on_park = false;
				notify_park_locked(d);   /* an eventfd write: fine under the lock */
			}
		}
		/* woken by a resume, or by hook_on_vm_stop when the machine ends;
		 * where the engine lends the vCPU, also now and then to watch
		 * over a step on the client's thread */
		if (vm->engine->run_borrowed) {
			struct timespec ts;
			deadline_in(&ts, DEBUG_BORROW_WATCH_NS);
			if (pthread_cond_timedwait(&d->park_cond, &d->lock, &ts) != 0)
				watch_borrow(d, vcpu);
		} else {
			pthread_cond_wait(&d->park_cond, &d->lock);
		}
	}
	dv->park = DEBUG_PARK_RUNNING;
	debug_vcpu_forget(d, vcpu->id);
	pthread_mutex_unlock(&d->lock);
}

static void set_rip(struct debug *d, struct vcpu *vcpu, uint64_t rip)
{
	struct x86_regs regs;
	if (debug_vcpu_regs(d, vcpu->id, &regs) == 0 && regs.rip != rip) {
		regs.rip = rip;
		debug_vcpu_put_regs(d, vcpu->id, &regs, "RIP back at the breakpoint");
	}
}

/* Queue an event for this vCPU and stop the others; it parks next. */
static bool stop_with(struct debug *d, struct vcpu *vcpu, const struct debug_event *ev)
{
	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, ev);
	d->vcpus[vcpu->id].step = DEBUG_STEP_NONE;
	/* the client is woken when this vCPU has parked (before_run), not
	 * now: it would only wake up to wait for that park */
	d->vcpus[vcpu->id].notify_on_park = true;
	debug_request_stop_locked(d, vcpu->id);
	pthread_mutex_unlock(&d->lock);
	return true;
}

/* The event for a hit on a breakpoint with these owners: the client's
 * breakpoint first (gdb counts its hits), else the lowest caught vector
 * whose handler starts here. */
static void hit_event(struct debug_event *ev, bool client, uint32_t catch_vectors,
		      enum debug_event_kind client_kind)
{
	ev->kind = client ? client_kind : DEBUG_EV_CATCH;
	if (!client)
		ev->vector = (unsigned)__builtin_ctz(catch_vectors);
}

/* A step that stopped at an int3 on a handler's entry: an exception was
 * delivered (step.c's fault guards, or a breakpoint of the client or of
 * exception catching there). Fix the frame, then either end the step
 * there (guard only) or let the breakpoint's own event report it. */
static bool step_at_handler(struct debug *d, struct vcpu *vcpu, uint64_t pc, bool guard_only)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	uint64_t at = pc;
	set_rip(d, vcpu, pc);
	debug_step_end(d, vcpu, &at, true);
	if (!guard_only)
		return false;
	pthread_mutex_lock(&d->lock);
	enum debug_step step = dv->step;
	d->step_stats.guard_stops++;
	if (step == DEBUG_STEP_INTERNAL) {
		dv->step_done = true;
		dv->run_allowed = false;
	}
	pthread_mutex_unlock(&d->lock);
	if (step == DEBUG_STEP_INTERNAL)
		return true;
	struct debug_event ev = { .kind = DEBUG_EV_STEP, .vcpu = vcpu->id, .addr = at };
	__atomic_store_n(&dv->just_stepped, true, __ATOMIC_RELEASE);
	return stop_with(d, vcpu, &ev);
}

static bool on_bpt(struct debug *d, struct vcpu *vcpu, uint64_t pc)
{
	struct debug_event ev = { .vcpu = vcpu->id, .addr = pc };
	pthread_mutex_lock(&d->lock);
	const struct debug_sw_bp *bp = debug_sw_find_locked(d, pc);
	bool guard_only = bp && !bp->client && !bp->catch_vectors;
	if (bp && !guard_only)
		hit_event(&ev, bp->client, bp->catch_vectors, DEBUG_EV_SWBREAK);
	enum debug_step step_kind = d->vcpus[vcpu->id].step;
	bool stepping = step_kind == DEBUG_STEP_USER;
	pthread_mutex_unlock(&d->lock);
	if (bp && step_kind != DEBUG_STEP_NONE && step_at_handler(d, vcpu, pc, guard_only))
		return true;
	if (guard_only) {
		/* a vCPU running freely met a guard (cannot happen while they
		 * are armed only for a vCPU running alone): take them out and
		 * let it run the original instruction */
		debug_step_guards_drop(d);
		set_rip(d, vcpu, pc);
		return true;
	}
	uint64_t handler;
	if (!bp && stepping && debug_step_guest_int3(d, vcpu, pc, &handler)) {
		/* the guest got its #BP; the step ends at its handler */
		struct debug_event step = { .kind = DEBUG_EV_STEP, .vcpu = vcpu->id, .addr = handler };
		__atomic_store_n(&d->vcpus[vcpu->id].just_stepped, true, __ATOMIC_RELEASE);
		return stop_with(d, vcpu, &step);
	}
	if (!bp)
		return false;   /* the guest's own INT3: machine/ delivers its #BP */
	/* the client sees the breakpoint address as PC (swbreak semantics) */
	set_rip(d, vcpu, pc);
	return stop_with(d, vcpu, &ev);
}

static bool on_db(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	struct debug_event ev = { .vcpu = vcpu->id, .addr = exit->db.pc };

	pthread_mutex_lock(&d->lock);
	enum debug_step step = dv->step;
	int hw = -1;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP && hw < 0; n++)
		if ((exit->db.dr6 & DR6_B(n)) && d->hw[n].used && d->hw[n].rw == DR7_RW_EXEC)
			hw = (int)n;
	/* a watchpoint is a trap: the instruction is done, and it is reported
	 * even when that instruction was a step (as hardware sets DR6.BS and
	 * Bn together, and gdb checks its watchpoints on such a stop) */
	struct debug_event wev = ev;
	bool watch = debug_watch_hit_locked(d, exit->db.dr6, &wev);
	struct debug_hw_bp hw_bp = hw >= 0 ? d->hw[hw] : (struct debug_hw_bp){ 0 };
	/* a step ends with a trace trap, or for a HLT run at its own DR slot */
	bool step_end = (exit->db.dr6 & DR6_BS) ||
			(step != DEBUG_STEP_NONE && dv->st.hlt_run &&
			 (exit->db.dr6 & DR6_B(dv->st.hlt_slot)));
	pthread_mutex_unlock(&d->lock);
	if (step != DEBUG_STEP_NONE && step_end)
		debug_step_end(d, vcpu, &ev.addr, false);
	if (step == DEBUG_STEP_INTERNAL && step_end) {
		pthread_mutex_lock(&d->lock);
		dv->step_watch = watch;        /* step_over reports it */
		dv->step_watch_ev = wev;
		dv->step_done = true;
		dv->run_allowed = false;
		pthread_mutex_unlock(&d->lock);
		return true;
	}

	if (step == DEBUG_STEP_USER && step_end) {
		ev.kind = DEBUG_EV_STEP;
		if (watch)
			ev = wev;
		__atomic_store_n(&dv->just_stepped, true, __ATOMIC_RELEASE);
	} else if (watch) {
		ev = wev;
	} else if (hw >= 0) {
		hit_event(&ev, hw_bp.client, hw_bp.catch_vectors, DEBUG_EV_HWBREAK);
		ev.addr = hw_bp.addr;
	} else if (exit->db.dr6 & DR6_BS) {
		return true;    /* a step trap left over from a step already reported */
	} else {
		ev.kind = DEBUG_EV_TRAP;
	}
	return stop_with(d, vcpu, &ev);
}

static bool hook_on_exit(struct vm *vm, struct vcpu *vcpu, struct vm_exit *exit)
{
	struct debug *d = vm->debug;

	switch (exit->reason) {
	case VM_EXIT_BPT:
		return on_bpt(d, vcpu, exit->bpt.pc);
	case VM_EXIT_DB:
		return on_db(d, vcpu, exit);
	case VM_EXIT_KICKED:
		/* ours (a stop) or a leftover: either way before_run decides */
		return !vm_stopping(vm);
	case VM_EXIT_SHUTDOWN:
	case VM_EXIT_ENTRY_FAILURE:
		__atomic_store_n(&d->crash_signal, 11, __ATOMIC_RELAXED);   /* SIGSEGV */
		return false;
	case VM_EXIT_EMULATION_FAILURE:
	case VM_EXIT_UNKNOWN:
		__atomic_store_n(&d->crash_signal, 4, __ATOMIC_RELAXED);    /* SIGILL */
		return false;
	default:
		return false;
	}
}

static void hook_on_vm_stop(struct vm *vm, int status, const char *why)
{
	struct debug *d = vm->debug;
	int sig = __atomic_load_n(&d->crash_signal, __ATOMIC_RELAXED);
	struct debug_event ev = {
		.kind = sig ? DEBUG_EV_CRASHED : DEBUG_EV_EXITED,
		.status = status,
		.signal = sig,
	};
	(void)why;
	pthread_mutex_lock(&d->lock);
	d->gone = true;
	debug_queue_locked(d, &ev);
	/* Wake the parked vCPUs: they see `gone` and leave. Safe to do now:
	 * vm_request_exit() kicked the threads before calling this hook, with
	 * vm->lock held so none of them could finish meanwhile, and every
	 * later kick of ours checks `gone` first. A parked thread checks
	 * `gone` under d->lock before it waits, so it cannot miss this. */
	pthread_cond_broadcast(&d->park_cond);
	pthread_cond_broadcast(&d->parked_cond);
	pthread_mutex_unlock(&d->lock);
	notify(d);
}

int debug_create(struct vm *vm, bool wait_gdb, debug_notify_fn notify_fn, void *opaque,
		 struct err *e)
{
	struct debug *d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(e, ENOMEM, "out of memory for the debug core");
	d->vm = vm;
	d->nr_vcpus = vm->nr_vcpus;
	d->notify = notify_fn;
	d->notify_opaque = opaque;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->park_cond, NULL);
	pthread_cond_init(&d->parked_cond, NULL);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		d->vcpus[i].run_allowed = !wait_gdb;
		d->vcpus[i].resumed = true;
	}
	d->hooks.before_run = hook_before_run;
	d->hooks.on_exit = hook_on_exit;
	d->hooks.on_vm_stop = hook_on_vm_stop;
	vm->debug = d;
	vm->debug_hooks = &d->hooks;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_apply_engine(d, i);
	return 0;
}

void debug_destroy(struct vm *vm)
{
	struct debug *d = vm->debug;
	if (!d)
		return;
	vm->debug_hooks = NULL;
	vm->debug = NULL;
	pthread_cond_destroy(&d->park_cond);
	pthread_cond_destroy(&d->parked_cond);
	pthread_mutex_destroy(&d->lock);
	free(d);
}
