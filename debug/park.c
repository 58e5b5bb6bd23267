/* debug/park.c — the one stop-all / resume mechanism, the event queue and
 * the vCPU-loop hooks. Every stop (breakpoint, step, Ctrl-C, attach) goes
 * through debug_request_stop_locked(): every vCPU's run state goes to
 * stopping (or back to parked) and the ones inside the engine are kicked;
 * they come back through on_exit (KICKED is consumed) into before_run,
 * where they park. The client waits until every vCPU is out of the engine
 * before it reports anything. A vCPU stepped alone is stepped on the
 * client's own thread where the engine lends it (lend.c). The run states
 * and their legal moves are in run_state.c; every wait and spin is in
 * d->timing (struct debug_timing). */
#include "debug/debug_int.h"
#include "debug/reverse.h"

#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct debug_timing default_timing = {
	.kick_retry_ns = 20 * 1000 * 1000L,
	.step_over_ns = 500 * 1000 * 1000L,
	.step_spin_ns = 300 * 1000L,
	.lend_watch_ns = 100 * 1000 * 1000L,
	.client_step_poll_ns = 200 * 1000L,
	.end_wait_ns = 1000 * 1000 * 1000L,
};

/* VMDB_KICK_RETRY_MS: how long a stop waits for the vCPUs to park before
 * it kicks them again (1-60000). A test that must tell a lost kick from a
 * busy host's slow thread wake-up sets it long. */
static void timing_from_env(struct debug_timing *t)
{
	const char *v = getenv("VMDB_KICK_RETRY_MS");
	char *end;
	long ms = v ? strtol(v, &end, 10) : 0;
	if (v && *v && !*end && ms > 0 && ms <= 60000)
		t->kick_retry_ns = ms * 1000000L;
}

void debug_deadline_in(struct timespec *ts, long ns)
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

static struct debug_event *queue_at(struct debug *d, unsigned i)
{
	return &d->queue[(d->q_head + i) % DEBUG_QUEUE_SIZE];
}

static bool machine_wide(enum debug_event_kind kind)
{
	return kind == DEBUG_EV_INTERRUPT || kind == DEBUG_EV_EXITED || kind == DEBUG_EV_CRASHED;
}

/* The queue holds at most one machine-wide event of each kind (a burst of
 * Ctrl-C is one request, the machine ends once) and one event per vCPU
 * before it parks (DEBUG_QUEUE_SIZE counts both): it cannot fill. Should
 * it ever, that is a bug of the debug core, said loudly. */
void debug_queue_locked(struct debug *d, const struct debug_event *ev)
{
	if (machine_wide(ev->kind))
		for (unsigned i = 0; i < d->q_len; i++)
			if (queue_at(d, i)->kind == ev->kind)
				return;
	if (d->q_len == DEBUG_QUEUE_SIZE) {
		fprintf(stderr, "vmdb: internal error: the debug event queue is full (%u events); "
			"an event of kind %d for vCPU %u is lost\n", d->q_len, ev->kind, ev->vcpu);
		return;
	}
	*queue_at(d, d->q_len) = *ev;
	d->q_len++;
}

/* An event the client can be told about now: one of a vCPU it resumed
 * (a vCPU it left stopped keeps its event for a later resume), or one that
 * concerns the whole machine. */
static bool event_eligible(struct debug *d, const struct debug_event *ev)
{
	if (machine_wide(ev->kind))
		return true;
	return ev->vcpu < d->nr_vcpus && d->vcpus[ev->vcpu].resumed;
}

static void queue_remove_locked(struct debug *d, unsigned i)
{
	for (; i + 1 < d->q_len; i++)
		*queue_at(d, i) = *queue_at(d, i + 1);
	d->q_len--;
}

/* Index of the first eligible event, or -1. The machine's end comes
 * before anything else: a stop of a machine that is gone cannot be
 * resumed, and the client must hear how it ended. */
static int first_eligible_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->q_len; i++) {
		enum debug_event_kind kind = queue_at(d, i)->kind;
		if (kind == DEBUG_EV_EXITED || kind == DEBUG_EV_CRASHED)
			return (int)i;
	}
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

bool debug_wait_step_event(struct debug *d)
{
	long max_ns = d->timing.client_step_poll_ns;
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
		return debug_sw_client_at_locked(d, ev->addr);
	}
	case DEBUG_EV_HWBREAK: {
		int n = debug_hw_find_locked(d, ev->addr);
		return n >= 0 && d->hw[n].client;
	}
	case DEBUG_EV_WATCH:
	case DEBUG_EV_RWATCH:
	case DEBUG_EV_AWATCH:
		return debug_watch_exists_locked(d, ev->kind, ev->addr);
	case DEBUG_EV_CATCH: {
		/* still caught, and the breakpoint that saw it still there */
		const struct debug_sw_bp *bp = debug_sw_find_locked(d, ev->addr);
		int n = debug_hw_find_locked(d, ev->addr);
		uint32_t bit = 1u << ev->vector;
		return (bp && (bp->catch_vectors & bit)) || (n >= 0 && (d->hw[n].catch_vectors & bit));
	}
	case DEBUG_EV_OUTPUT:
		return __atomic_load_n(&d->vm->output_watch.on, __ATOMIC_ACQUIRE);
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

static bool past(const struct timespec *deadline);

bool debug_machine_gone(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool gone = d->gone || vm_stopping(d->vm);
	pthread_mutex_unlock(&d->lock);
	return gone;
}


/* Never kick once the machine is stopping: vCPU threads are leaving and
 * may already be joined, and a signal to a joined thread is undefined. */
static void kick_running_locked(struct debug *d, unsigned self)
{
	if (debug_gone_locked(d))
		return;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (i != self && !debug_run_parked(d->vcpus[i].run))
			d->vm->engine->vcpu->kick(&d->vm->vcpus[i]);
}

void debug_request_stop_locked(struct debug *d, unsigned self)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_run_stop_locked(d, i);
	kick_running_locked(d, self);
}

static bool all_parked_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (!debug_run_parked(d->vcpus[i].run))
			return false;
	return true;
}

bool debug_gone_locked(struct debug *d)
{
	if (!d->gone && vm_stopping(d->vm))
		d->gone = true;
	return d->gone;
}

/* Stopped: every vCPU parked, or the machine gone and its end queued. The
 * machine is stopping (vm_stopping) a moment before on_vm_stop queues its
 * end: a stop reported in that moment would hide the end from the client.
 * That moment is a few instructions long; end_wait_ns bounds it all the
 * same, so that no path of machine/ that ends without the hook can hang
 * the client. */
static bool stopped_locked(struct debug *d, const struct timespec *end_wait)
{
	if (debug_gone_locked(d))
		return d->end_queued || past(end_wait);
	return all_parked_locked(d);
}

void debug_stop_all(struct debug *d)
{
	struct timespec end_wait;
	pthread_mutex_lock(&d->lock);
	debug_request_stop_locked(d, VM_MAX_VCPUS);
	debug_deadline_in(&end_wait, d->timing.end_wait_ns);
	if (!stopped_locked(d, &end_wait))
		d->park_stats.stops++;
	while (!stopped_locked(d, &end_wait)) {
		struct timespec ts;
		debug_deadline_in(&ts, d->timing.kick_retry_ns);
		if (pthread_cond_timedwait(&d->parked_cond, &d->lock, &ts) != 0 &&
		    !stopped_locked(d, &end_wait)) {
			d->park_stats.kick_retries++;
			kick_running_locked(d, VM_MAX_VCPUS);
		}
	}
	pthread_mutex_unlock(&d->lock);
	debug_cond_skips_settle(d);
}

void debug_park_describe(struct debug *d, char *out, size_t size)
{
	pthread_mutex_lock(&d->lock);
	struct debug_park_stats st = d->park_stats;
	long retry_ms = d->timing.kick_retry_ns / 1000000L;
	pthread_mutex_unlock(&d->lock);
	snprintf(out, size,
		 "stops that waited for a vCPU: %lu\n"
		 "kicks repeated after %ld ms without a park: %lu\n"
		 "kicks repeated for a vCPU run alone: %lu\n"
		 "device exits of lent steps handled on the client's thread: %lu\n",
		 st.stops, retry_ms, st.kick_retries, st.step_rekicks, st.lent_device_exits);
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
	const struct engine_debug_ops *eng = d->vm->engine->debug;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct engine_debug dbg;

	memset(&dbg, 0, sizeof(dbg));     /* compared bytewise below */
	dbg.intercept_bpt = true;

	if (!eng)
		return dv->step != DEBUG_STEP_NONE ? -ENOTSUP : 0;
	pthread_mutex_lock(&d->lock);
	/* a HLT step runs freely to the next instruction (step.c) */
	bool hlt_run = dv->step != DEBUG_STEP_NONE && dv->st.hlt_run;
	dbg.single_step = dv->step != DEBUG_STEP_NONE && !hlt_run;
	dbg.block_irq = dbg.single_step && !d->sstep_irq && !d->step_mask_if;
	dbg.access = d->access;     /* built zeroed, padding too (catch.c) */
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
	if (dbg.dr7)
		dbg.dr7 |= DR7_FIXED1 | DR7_GE;
	debug_dr_share_load(d, vcpu, &dbg);     /* the union, where the guest shares DR0-3 */
	dbg.use_hw_bp = dbg.dr7 != 0;
	/* one ioctl less per vCPU and resume when nothing changed */
	if (dv->applied_valid && memcmp(&dv->applied, &dbg, sizeof(dbg)) == 0)
		return 0;
	int r = eng->set_debug(&d->vm->vcpus[vcpu], &dbg);
	dv->applied = dbg;
	dv->applied_valid = r == 0;
	return r;
}

/* ---- resume ---- */

/* Released vCPUs' threads woken, d->lock let go first: a thread woken
 * while the client holds it only wakes to wait for it (a second hand-off
 * per release). Each checks its run state under the lock before it waits,
 * so none misses this. */
void debug_wake_released(struct debug *d)
{
	pthread_cond_broadcast(&d->park_cond);
}

/* The linear address of the next instruction (breakpoints are keyed by
 * linear address: CS's base counts in real mode) */
static int vcpu_pc(struct debug *d, unsigned vcpu, uint64_t *pc)
{
	struct x86_regs regs;
	struct x86_sregs sregs;
	int r = debug_read_regs(d, vcpu, &regs);
	if (r == 0)
		r = debug_vcpu_sregs(d, vcpu, &sregs);
	if (r == 0)
		*pc = sregs.cs.base + regs.rip;
	return r;
}

/* ---- stepping one vCPU alone ---- */

static bool eligible_pending(struct debug *d);

static bool past(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

void debug_watch_client(struct debug *d, int fd)
{
	__atomic_store_n(&d->client_fd, fd, __ATOMIC_RELAXED);
}

bool debug_client_spoke(struct debug *d)
{
	struct pollfd pfd = { .fd = __atomic_load_n(&d->client_fd, __ATOMIC_RELAXED),
			      .events = POLLIN };
	return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/* Run one parked vCPU alone until it parks again: on this thread where
 * the engine lends it, else on its own thread, stopped when it takes too
 * long or the client speaks meanwhile. */
static void run_alone(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct timespec deadline, patience;
	bool stopped = false;

	if (debug_lendable(d, vcpu) && debug_lend_step(d, vcpu) &&
	    (dv->step_done || eligible_pending(d)))
		return;
	pthread_mutex_lock(&d->lock);
	debug_run_release_locked(d, vcpu);
	debug_wake_released(d);     /* the lock is let go at once: the wait below */
	debug_deadline_in(&deadline, d->timing.step_over_ns);
	/* a moment to get past the instruction before the client may end it:
	 * a step-over ended before it stepped meets its breakpoint again */
	debug_deadline_in(&patience, d->timing.kick_retry_ns);
	for (;;) {
		enum debug_run run = dv->run;
		if (debug_gone_locked(d) || run == DEBUG_RUN_PARKED || run == DEBUG_RUN_STEP_SPIN)
			break;
		if (!stopped && (past(&deadline) || (past(&patience) && debug_client_spoke(d)))) {
			debug_run_stop_locked(d, vcpu);
			stopped = true;
		}
		/* released and not back: kick it again now and then */
		if (stopped && !debug_run_parked(dv->run)) {
			d->park_stats.step_rekicks++;
			d->vm->engine->vcpu->kick(&d->vm->vcpus[vcpu]);
		}
		struct timespec slice;
		debug_deadline_in(&slice, d->timing.kick_retry_ns);
		pthread_cond_timedwait(&d->parked_cond, &d->lock, &slice);
	}
	pthread_mutex_unlock(&d->lock);
}

/* The vCPU is parked at one of our breakpoints and must execute the
 * instruction under it: lift the breakpoint (int3 byte or DR slot) for it
 * alone, step once with every other vCPU parked, put it back. */
static int step_over(struct debug *d, unsigned vcpu, uint64_t pc, bool report)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct debug_sw_where where;

	debug_sw_where(d, vcpu, pc, &where);
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *sw = debug_sw_hit_locked(d, &where);
	/* its key: the table may move while the vCPU steps */
	uint64_t sw_addr = sw ? sw->addr : 0;
	bool sw_phys = sw && sw->phys;
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
	sw = sw ? debug_sw_find_as_locked(d, sw_addr, sw_phys) : NULL;
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
static bool at_breakpoint(struct debug *d, unsigned vcpu, uint64_t pc)
{
	struct debug_sw_where where;
	debug_sw_where(d, vcpu, pc, &where);
	pthread_mutex_lock(&d->lock);
	const struct debug_sw_bp *sw = debug_sw_hit_locked(d, &where);
	bool at = (sw && (sw->client || sw->catch_vectors)) || debug_hw_find_locked(d, pc) >= 0;
	pthread_mutex_unlock(&d->lock);
	return at;
}

/* Any breakpoint at_breakpoint() can find: the step engine's fault
 * guards alone are none, so stepping under them costs no page walk (and
 * on kvm no system-register read) per step. */
static bool any_breakpoint(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	bool any = false;
	for (unsigned i = 0; i < d->nr_sw && !any; i++)
		any = d->sw[i].client || d->sw[i].catch_vectors;
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
		if (actions[i] == DEBUG_ACT_STOP || actions[i] == DEBUG_ACT_RUN_ON ||
		    vcpu_pc(d, i, &pc) < 0 || !at_breakpoint(d, i, pc))
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
	debug_watch_sync(d);     /* ... or remapped a watched range */
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].resumed = actions[i] != DEBUG_ACT_STOP;
	drop_stale_events_locked(d);
	pthread_mutex_unlock(&d->lock);
	if (eligible_pending(d))
		return 1;
	r = debug_reverse_resume(d, actions, e);     /* inside the recorded history */
	if (r != 0)
		return r;
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
		if (actions[i] == DEBUG_ACT_CONTINUE || actions[i] == DEBUG_ACT_RUN_ON)
			debug_step_leave(d, i);
	}
	/* one vCPU stepped alone: on this thread when the engine lends it */
	if (running == 1 && actions[stepped] == DEBUG_ACT_STEP && debug_lendable(d, stepped) &&
	    debug_lend_step(d, stepped) && eligible_pending(d))
		return 1;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (actions[i] != DEBUG_ACT_STOP)
			debug_run_release_locked(d, i);
	pthread_mutex_unlock(&d->lock);
	debug_wake_released(d);
	return 0;
}

void debug_set_non_stop(struct debug *d, bool on)
{
	pthread_mutex_lock(&d->lock);
	d->non_stop = on;
	pthread_mutex_unlock(&d->lock);
}

void debug_attach(struct debug *d)
{
	debug_stop_all(d);
	debug_cond_drop_persistent(d);
	debug_dr_share_setup(d);
	pthread_mutex_lock(&d->lock);
	d->attached = true;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].resumed = true;
	drop_stale_events_locked(d);
	pthread_mutex_unlock(&d->lock);
}

void debug_detach(struct debug *d)
{
	debug_stop_all(d);
	debug_remove_all_but_persistent(d);
	pthread_mutex_lock(&d->lock);
	d->attached = false;
	d->q_len = 0;
	d->non_stop = false;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].step = DEBUG_STEP_NONE;
	pthread_mutex_unlock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		debug_apply_engine(d, i);
		debug_step_leave(d, i);
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_run_release_locked(d, i);
	pthread_mutex_unlock(&d->lock);
	debug_wake_released(d);
}

/* ---- hooks, called on vCPU threads ---- */

/* A vCPU that just finished a step is usually stepped again a client
 * round trip later; waking a blocked thread costs more than that round
 * trip under nested KVM, so that one vCPU polls for its release for a
 * moment (STEP_SPIN) before it blocks. */
static void spin_after_step(struct debug *d, unsigned vcpu)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (int i = 0; i < 64; i++) {
			if (debug_run_of(d, vcpu) != DEBUG_RUN_STEP_SPIN)
				return;
			__builtin_ia32_pause();
		}
		sched_yield();     /* 2 host cores: let the client or the server run */
		clock_gettime(CLOCK_MONOTONIC, &now);
		long ns = (now.tv_sec - start.tv_sec) * 1000000000L + (now.tv_nsec - start.tv_nsec);
		if (ns > d->timing.step_spin_ns)
			return;
	}
}

/* The vCPU is out of the engine now: tell the client, once. */
static void parked_locked(struct debug *d, struct debug_vcpu *dv)
{
	pthread_cond_broadcast(&d->parked_cond);
	if (dv->notify_on_park) {
		dv->notify_on_park = false;
		notify_park_locked(d);   /* an eventfd write: fine under the lock */
	}
}

/* A user step just ended on this thread: report the park at once, then
 * poll for the next step for a moment, unless the engine lends the vCPU
 * (the next step then runs on the client's thread: spinning would only
 * take a core from it). */
static void after_user_step(struct debug *d, struct vcpu *vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	pthread_mutex_lock(&d->lock);
	bool spin = dv->run == DEBUG_RUN_STOPPING && dv->notify_on_park;
	if (spin) {
		debug_run_to(d, vcpu->id, DEBUG_RUN_STEP_SPIN);
		parked_locked(d, dv);
	}
	pthread_mutex_unlock(&d->lock);
	if (spin && !d->vm->engine->lend)
		spin_after_step(d, vcpu->id);
}

/* A vCPU the debugger held runs free again: the guest's clock hears of
 * the pause (a step is too short to matter, and costs no call). */
static void note_paused(struct debug *d, struct vcpu *vcpu)
{
	int (*note)(struct vcpu *) = d->vm->engine->vcpu->note_paused;
	int r = note ? note(vcpu) : 0;
	if (r < 0)
		fprintf(stderr, "vmdb: vCPU %u: the %s engine could not tell the guest's clock "
			"the vCPU was paused (%s): the guest may report soft lockups\n",
			vcpu->id, d->vm->engine->name, strerror(-r));
}

/* Park until the client releases the vCPU (or the machine is gone); then
 * it may run. True when *exit holds an exit a lent step met for it:
 * the loop handles that instead of running the engine. */
static bool hook_before_run(struct vm *vm, struct vcpu *vcpu, struct vm_exit *exit)
{
	struct debug *d = vm->debug;
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];

	if (__atomic_exchange_n(&dv->user_step_ended, false, __ATOMIC_ACQ_REL))
		after_user_step(d, vcpu);
	pthread_mutex_lock(&d->lock);
	bool held = false;
	for (;;) {
		enum debug_run run = dv->run;
		if (run == DEBUG_RUN_RUNNING || run == DEBUG_RUN_RELEASED || debug_gone_locked(d))
			break;
		held = true;
		if (run == DEBUG_RUN_STOPPING || run == DEBUG_RUN_STEP_SPIN) {
			debug_run_to(d, vcpu->id, DEBUG_RUN_PARKED);
			parked_locked(d, dv);
		}
		/* woken by a release, or by hook_on_vm_stop when the machine
		 * ends; where the engine lends the vCPU, also now and then to
		 * watch over a step on the client's thread */
		if (vm->engine->lend) {
			struct timespec ts;
			debug_deadline_in(&ts, d->timing.lend_watch_ns);
			if (pthread_cond_timedwait(&d->park_cond, &d->lock, &ts) != 0)
				debug_lend_watch_locked(d, vcpu);
		} else {
			pthread_cond_wait(&d->park_cond, &d->lock);
		}
	}
	bool handed = false, runs_free = false;
	if (dv->run == DEBUG_RUN_RELEASED) {
		debug_run_to(d, vcpu->id, DEBUG_RUN_RUNNING);
		handed = dv->has_handed_back;
		if (handed)
			*exit = dv->handed_back;
		dv->has_handed_back = false;
		runs_free = held && dv->step == DEBUG_STEP_NONE;
	}
	pthread_mutex_unlock(&d->lock);
	if (runs_free)
		note_paused(d, vcpu);
	debug_dr_share_refresh(d, vcpu->id);
	return handed;
}

/* RIP back to the instruction at linear address pc (an offset in CS) */
static void set_rip(struct debug *d, struct vcpu *vcpu, uint64_t pc)
{
	struct x86_regs regs;
	struct x86_sregs sregs;
	if (debug_vcpu_sregs(d, vcpu->id, &sregs) < 0)
		return;
	uint64_t rip = pc - sregs.cs.base;
	if (debug_vcpu_regs(d, vcpu->id, &regs) == 0 && regs.rip != rip) {
		regs.rip = rip;
		debug_vcpu_put_regs(d, vcpu->id, &regs, "RIP back at the breakpoint");
	}
}

/* Queue an event for this vCPU and stop the others (only itself in
 * non-stop mode); it parks next. */
static bool stop_with(struct debug *d, struct vcpu *vcpu, const struct debug_event *ev)
{
	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, ev);
	d->vcpus[vcpu->id].step = DEBUG_STEP_NONE;
	/* the client is woken when this vCPU has parked (before_run), not
	 * now: it would only wake up to wait for that park */
	d->vcpus[vcpu->id].notify_on_park = true;
	if (d->non_stop) {
		debug_run_stop_locked(d, vcpu->id);
		/* and kicked, so an engine that runs one vCPU at a time (emu's
		 * run token) sees it away and lets the others run meanwhile */
		if (!debug_gone_locked(d))
			d->vm->engine->vcpu->kick(vcpu);
	} else
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
		debug_run_stop_locked(d, vcpu->id);
	}
	pthread_mutex_unlock(&d->lock);
	if (step == DEBUG_STEP_INTERNAL)
		return true;
	struct debug_event ev = { .kind = DEBUG_EV_STEP, .vcpu = vcpu->id, .addr = at };
	__atomic_store_n(&dv->user_step_ended, true, __ATOMIC_RELEASE);
	return stop_with(d, vcpu, &ev);
}

bool debug_on_bpt(struct debug *d, struct vcpu *vcpu, uint64_t pc)
{
	struct debug_event ev = { .vcpu = vcpu->id, .addr = pc };
	struct debug_sw_where where;
	debug_sw_where(d, vcpu->id, pc, &where);
	pthread_mutex_lock(&d->lock);
	const struct debug_sw_bp *bp = debug_sw_hit_locked(d, &where);
	bool guard_only = bp && !bp->client && !bp->catch_vectors && !bp->hw_stand_in;
	if (bp && !guard_only) {
		/* an int3 standing in for a Z1 without a DR slot is that Z1 */
		hit_event(&ev, bp->client || bp->hw_stand_in, bp->catch_vectors,
			  bp->client ? DEBUG_EV_SWBREAK : DEBUG_EV_HWBREAK);
		ev.addr = bp->addr;     /* its key: physical for a `phys` one */
	}
	enum debug_step step_kind = d->vcpus[vcpu->id].step;
	bool stepping = step_kind == DEBUG_STEP_USER;
	const struct debug_cond_list *conds = bp ? debug_cond_of_locked(d, bp, vcpu->id) : NULL;
	pthread_mutex_unlock(&d->lock);
	if (conds && debug_cond_hit(d, vcpu->id, pc, bp, conds))
		return true;     /* every condition false: skipped on this thread */
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
		__atomic_store_n(&d->vcpus[vcpu->id].user_step_ended, true, __ATOMIC_RELEASE);
		return stop_with(d, vcpu, &step);
	}
	if (!bp)
		return false;   /* the guest's own INT3: machine/ delivers its #BP */
	/* the client sees the breakpoint address as PC (swbreak semantics) */
	set_rip(d, vcpu, pc);
	return stop_with(d, vcpu, &ev);
}

bool debug_on_access(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit)
{
	struct debug_event ev = { .kind = DEBUG_EV_ACCESS, .vcpu = vcpu->id,
				  .addr = exit->access.pc };
	ev.access = (struct debug_access){ exit->access.kind, exit->access.is_write,
					   exit->access.size, exit->access.index,
					   exit->access.value };
	pthread_mutex_lock(&d->lock);
	bool caught = d->access.nr > 0;
	pthread_mutex_unlock(&d->lock);
	if (!caught)
		return true;        /* a catch removed since the engine was told: run on */
	return stop_with(d, vcpu, &ev);
}

bool debug_on_db(struct debug *d, struct vcpu *vcpu, const struct vm_exit *hw_exit)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	struct debug_event ev = { .vcpu = vcpu->id, .addr = hw_exit->db.pc };
	/* the guest's part goes to the guest; DR6 by the debugger's entries */
	struct vm_exit routed = *hw_exit;
	const struct vm_exit *exit = &routed;
	if (debug_dr_share_route_db(d, vcpu, &routed))
		return true;

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
	bool watch = debug_watch_hit_locked(d, exit, &wev);
	struct debug_hw_bp hw_bp = hw >= 0 ? d->hw[hw] : (struct debug_hw_bp){ 0 };
	/* a step ends with a trace trap, or for a HLT run at its own DR slot */
	bool step_end = (exit->db.dr6 & DR6_BS) ||
			(step != DEBUG_STEP_NONE && dv->st.hlt_run &&
			 (exit->db.dr6 & DR6_B(dv->st.hlt_slot)));
	pthread_mutex_unlock(&d->lock);
	if (step != DEBUG_STEP_NONE && step_end)
		debug_step_end(d, vcpu, &ev.addr, false);
	if (step == DEBUG_STEP_INTERNAL && step_end &&
	    debug_cond_skip_end(d, vcpu, watch ? &wev : NULL))
		return true;     /* a hit whose conditions were false is behind it */
	if (step == DEBUG_STEP_INTERNAL && step_end) {
		pthread_mutex_lock(&d->lock);
		dv->step_watch = watch;        /* step_over reports it */
		dv->step_watch_ev = wev;
		dv->step_done = true;
		debug_run_stop_locked(d, vcpu->id);
		pthread_mutex_unlock(&d->lock);
		return true;
	}

	if (step == DEBUG_STEP_USER && step_end) {
		ev.kind = DEBUG_EV_STEP;
		if (watch)
			ev = wev;
		__atomic_store_n(&dv->user_step_ended, true, __ATOMIC_RELEASE);
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

/* A vCPU that cannot go on stops where it is while a client is attached,
 * its state as the fault left it, instead of ending the machine at once:
 * the exit is kept and handed back at its next resume, which then ends
 * the machine as it would have ended without a debugger. */
static bool stop_at_fatal(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit,
			  int signal)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	char why[sizeof(dv->fatal_text)];
	pthread_mutex_lock(&d->lock);
	/* one the client was shown comes back at the resume: it ends the machine */
	bool stop = d->attached && !dv->fatal_shown && !debug_gone_locked(d);
	dv->fatal_shown = false;
	pthread_mutex_unlock(&d->lock);
	if (!stop)
		return false;
	/* said now, on the vCPU's own thread, as the machine would say it */
	vm_describe_fatal(vcpu, exit, why, sizeof(why));
	pthread_mutex_lock(&d->lock);
	dv->fatal_shown = true;
	memcpy(dv->fatal_text, why, sizeof(why));
	dv->handed_back = *exit;
	dv->has_handed_back = true;
	pthread_mutex_unlock(&d->lock);
	struct debug_event ev = { .kind = DEBUG_EV_FATAL, .vcpu = vcpu->id, .signal = signal };
	return stop_with(d, vcpu, &ev);
}

void debug_fatal_explain(struct debug *d, const struct debug_event *ev, char *out, size_t size)
{
	struct debug_vcpu *dv = &d->vcpus[ev->vcpu];
	pthread_mutex_lock(&d->lock);
	if (dv->fatal_shown)
		snprintf(out, size, "%s; resuming it ends the machine\n", dv->fatal_text);
	else
		snprintf(out, size, "vCPU %u cannot go on; resuming it ends the machine\n",
			 ev->vcpu);
	pthread_mutex_unlock(&d->lock);
}

/* The serial output matched the client's pattern with this vCPU's port
 * write: it stops right after it, unless it steps (the step ends there
 * anyway, a stop of its own would come after it). */
static void hook_on_output_match(struct vm *vm, struct vcpu *vcpu, const char *line)
{
	struct debug *d = vm->debug;
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	pthread_mutex_lock(&d->lock);
	bool stop = d->attached && dv->step == DEBUG_STEP_NONE && !debug_gone_locked(d);
	if (stop)
		snprintf(dv->output_line, sizeof(dv->output_line), "%s", line);
	pthread_mutex_unlock(&d->lock);
	if (stop) {
		struct debug_event ev = { .kind = DEBUG_EV_OUTPUT, .vcpu = vcpu->id };
		stop_with(d, vcpu, &ev);
	}
}

static bool hook_on_exit(struct vm *vm, struct vcpu *vcpu, struct vm_exit *exit)
{
	struct debug *d = vm->debug;

	if (debug_dr_share_on_exit(d, vcpu, exit))
		return true;
	switch (exit->reason) {
	case VM_EXIT_BPT:
		return debug_on_bpt(d, vcpu, exit->bpt.pc);
	case VM_EXIT_DB:
		return debug_on_db(d, vcpu, exit);
	case VM_EXIT_ACCESS:
		return debug_on_access(d, vcpu, exit);
	case VM_EXIT_KICKED:
		/* ours (a stop) or a leftover: either way before_run decides */
		return !vm_stopping(vm);
	case VM_EXIT_SHUTDOWN:
	case VM_EXIT_ENTRY_FAILURE:
	case VM_EXIT_EMULATION_FAILURE: {
		/* SIGILL for the instruction, SIGSEGV for the rest */
		int sig = exit->reason == VM_EXIT_EMULATION_FAILURE ? 4 : 11;
		if (stop_at_fatal(d, vcpu, exit, sig))
			return true;
		__atomic_store_n(&d->crash_signal, sig, __ATOMIC_RELAXED);
		return false;
	}
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
	d->end_queued = true;
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

/* A zeroed core made ready for vm, as a new machine's: every vCPU held
 * (wait_gdb) or let run, the engine's capabilities probed, the hooks in. */
static void debug_init(struct debug *d, struct vm *vm, bool wait_gdb)
{
	d->vm = vm;
	d->nr_vcpus = vm->nr_vcpus;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->park_cond, NULL);
	pthread_cond_init(&d->parked_cond, NULL);
	d->timing = default_timing;
	timing_from_env(&d->timing);
	d->client_fd = -1;
	d->step_exact_off = debug_step_exact_off_by_env();
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		/* a thread not at before_run yet counts as parked */
		d->vcpus[i].run = wait_gdb ? DEBUG_RUN_PARKED : DEBUG_RUN_RELEASED;
		d->vcpus[i].resumed = true;
	}
	d->hooks.before_run = hook_before_run;
	d->hooks.on_exit = hook_on_exit;
	d->hooks.on_vm_stop = hook_on_vm_stop;
	d->hooks.on_reset = debug_on_reset;
	d->hooks.on_reboot = debug_on_reboot;
	d->hooks.on_output_match = hook_on_output_match;
	debug_caps_probe(d);
	vm->debug = d;
	vm->debug_hooks = &d->hooks;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_apply_engine(d, i);
	debug_reverse_attach(d);
}

/* What the core allocated while it ran, and its locks; not d, d->vcpus. */
static void debug_fini(struct debug *d)
{
	free(d->watch_ranges);
	for (unsigned i = 0; i < d->nr_sw; i++)
		debug_cond_free(&d->sw[i]);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_step_exact_drop(d, i);
	pthread_cond_destroy(&d->park_cond);
	pthread_cond_destroy(&d->parked_cond);
	pthread_mutex_destroy(&d->lock);
}

static struct debug_vcpu *vcpus_new(unsigned nr)
{
	/* the machine's vCPUs only: VM_MAX_VCPUS of them are a megabyte */
	return calloc(nr ? nr : 1, sizeof(struct debug_vcpu));
}

int debug_create(struct vm *vm, bool wait_gdb, debug_notify_fn notify_fn, void *opaque,
		 struct err *e)
{
	struct debug *d = calloc(1, sizeof(*d));
	struct debug_vcpu *vcpus = vcpus_new(vm->nr_vcpus);
	if (!d || !vcpus) {
		free(d);
		free(vcpus);
		return err_set(e, ENOMEM, "out of memory for the debug core");
	}
	d->vcpus = vcpus;
	d->vcpus_room = vm->nr_vcpus ? vm->nr_vcpus : 1;
	d->notify = notify_fn;
	d->notify_opaque = opaque;
	debug_init(d, vm, wait_gdb);
	return 0;
}

int debug_reset(struct debug *d, bool wait_gdb, struct err *e)
{
	struct vm *vm = d->vm;
	struct debug_vcpu *vcpus = d->vcpus;
	unsigned room = d->vcpus_room;
	debug_notify_fn notify_fn = d->notify;
	void *opaque = d->notify_opaque;

	debug_fini(d);
	if (vm->nr_vcpus > room) {
		free(vcpus);
		room = vm->nr_vcpus;
		vcpus = vcpus_new(room);
	} else {
		memset(vcpus, 0, room * sizeof(*vcpus));
	}
	memset(d, 0, sizeof(*d));
	d->vcpus = vcpus;
	d->vcpus_room = room;
	d->notify = notify_fn;
	d->notify_opaque = opaque;
	if (!vcpus) {
		/* a core that cannot debug this machine is none: gone from vm */
		vm->debug = NULL;
		vm->debug_hooks = NULL;
		free(d);
		return err_set(e, ENOMEM, "out of memory for the debug core");
	}
	debug_init(d, vm, wait_gdb);
	return 0;
}

void debug_destroy(struct vm *vm)
{
	struct debug *d = vm->debug;
	if (!d)
		return;
	vm->debug_hooks = NULL;
	vm->debug = NULL;
	debug_fini(d);
	free(d->vcpus);
	free(d);
}
