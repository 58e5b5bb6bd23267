/* debug/reverse.c — reverse execution (see reverse.h).
 *
 * Positions: the engine counts instructions per vCPU and globally (their
 * sum). A breakpoint hit is a vCPU about to execute its next instruction
 * (seek to "vCPU k with n retired, about to run"); a watchpoint hit is
 * the moment after the accessing instruction retired (seek to the global
 * count). reverse-stepi of vCPU k with n retired goes to k about to run
 * with n - 1. reverse-continue replays the history backwards interval by
 * interval (snapshot to snapshot, newest first), remembers the last hit
 * of each, and goes to the first interval's last hit it finds.
 *
 * On the way the engine stops at every breakpoint and watchpoint exit;
 * this file steps over our int3s (the original byte back for one
 * instruction), as the park does when the machine runs live. The int3s
 * are taken out around every snapshot the engine captures or restores,
 * so snapshots hold the guest's bytes only. */
#include "debug/reverse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "debug/debug_int.h"

/* A forward continue inside the history listens to the client between
 * pieces of this many instructions. */
#define REV_PIECE 100000000ull

/* A hit met while replaying: where to go back to, and what to report. */
struct rev_hit {
	bool found;
	bool bpt;              /* before an instruction (else after one) */
	struct engine_rr_target at;
	struct debug_event ev;
};

static const struct engine_rr_ops *rr_of(const struct debug *d)
{
	return d->vm->engine->rr;
}

bool debug_reverse_supported(const struct debug *d)
{
	return rr_of(d) != NULL;
}

static int need_rr(const struct debug *d, struct err *e)
{
	if (!rr_of(d))
		return err_set(e, ENOTSUP, "reverse execution needs the emu engine (this machine "
			       "runs on %s)", d->vm->engine->name);
	return 0;
}

/* --- the int3s around snapshots ------------------------------------------------- */

static void bp_hook(void *opaque, bool lift)
{
	struct debug *d = opaque;
	if (lift) {
		pthread_mutex_lock(&d->lock);     /* held until the int3s are back */
		for (unsigned i = 0; i < d->nr_sw; i++) {
			d->rr_lifted[i] = !d->sw[i].lifted;
			if (d->rr_lifted[i])
				debug_sw_poke(d, &d->sw[i], false);
		}
		return;
	}
	for (unsigned i = 0; i < d->nr_sw; i++) {
		if (!d->rr_lifted[i])
			continue;
		/* another alias of the same byte went back first: share its original */
		bool shared = false;
		for (unsigned j = 0; j < i && !shared; j++)
			if (d->rr_lifted[j] && d->sw[j].gpa == d->sw[i].gpa) {
				d->sw[i].orig = d->sw[j].orig;
				d->sw[i].lifted = false;
				shared = true;
			}
		if (!shared)
			debug_sw_poke(d, &d->sw[i], true);
		d->rr_lifted[i] = false;
	}
	d->mem_gen++;
	pthread_mutex_unlock(&d->lock);
}

void debug_reverse_attach(struct debug *d)
{
	if (rr_of(d))
		rr_of(d)->set_bp_hook(d->vm, bp_hook, d);
}

void debug_reverse_mem_written(struct debug *d, uint64_t gpa, const void *buf, size_t len)
{
	if (rr_of(d))
		rr_of(d)->mem_written(d->vm, gpa, buf, len);
}

/* --- recording -------------------------------------------------------------------- */

int debug_record(struct debug *d, bool on, uint64_t budget, struct err *e)
{
	int r = need_rr(d, e);
	if (r < 0)
		return r;
	r = rr_of(d)->record(d->vm, on, budget, e);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_vcpu_forget(d, i);
	return r;
}

void debug_record_describe(struct debug *d, char *out, size_t size)
{
	struct engine_rr_info in;
	if (!rr_of(d)) {
		snprintf(out, size, "reverse execution needs the emu engine (this machine runs "
			 "on %s)\n", d->vm->engine->name);
		return;
	}
	rr_of(d)->info(d->vm, &in);
	if (!in.recording) {
		snprintf(out, size, "not recording (monitor record on, or vmdb --record)\n"
			 "instruction %" PRIu64 "\n", in.now);
		return;
	}
	snprintf(out, size,
		 "recording: history from instruction %" PRIu64 " to %" PRIu64 " (%" PRIu64
		 " instructions back)\n"
		 "now at instruction %" PRIu64 "%s\n"
		 "%zu snapshots, %" PRIu64 " KiB of %" PRIu64 " KiB, one every %" PRIu64
		 " instructions\n"
		 "%zu logged events, %" PRIu64 " KiB\n",
		 in.first, in.end, in.end - in.first, in.now,
		 in.in_history ? " (replaying the history)" : " (live)", in.snapshots,
		 in.snap_bytes >> 10, in.budget >> 10, in.period, in.events, in.log_bytes >> 10);
}

/* --- moving through the history ---------------------------------------------------- */

/* Every vCPU's debug state into the engine (the breakpoints and
 * watchpoints the client set since the last stop), no step pending. */
static void prepare(struct debug *d)
{
	debug_watch_sync(d);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		d->vcpus[i].step = DEBUG_STEP_NONE;
		debug_apply_engine(d, i);
	}
}

static void forget_cached(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_vcpu_forget(d, i);
	pthread_mutex_lock(&d->lock);
	d->mem_gen++;
	pthread_mutex_unlock(&d->lock);
}

static uint64_t global_now(struct debug *d)
{
	struct engine_rr_info in;
	rr_of(d)->info(d->vm, &in);
	return in.now;
}

static uint64_t vcpu_now(struct debug *d, unsigned vcpu)
{
	return rr_of(d)->vcpu_count(&d->vm->vcpus[vcpu]);
}

/* Our breakpoint under the int3 vCPU met at pc, or NULL (d->lock held). */
static struct debug_sw_bp *our_int3_locked(struct debug *d, const struct debug_sw_where *w)
{
	return debug_sw_hit_locked(d, w);
}

/* What a debug exit on the way was: a hit of the client's (filled in *hit
 * with where to come back to), or nothing to report. Going forward a
 * watchpoint stops after the access, as live; going back before it (gdb
 * reads the value the access changed from there). */
static void classify(struct debug *d, unsigned who, const struct vm_exit *x, bool back,
		     struct rev_hit *hit)
{
	struct debug_event ev = { .vcpu = who };
	memset(hit, 0, sizeof(*hit));
	if (x->reason == VM_EXIT_BPT) {
		struct debug_sw_where w;
		debug_sw_where(d, who, x->bpt.pc, &w);
		pthread_mutex_lock(&d->lock);
		struct debug_sw_bp *bp = our_int3_locked(d, &w);
		bool client = bp && bp->client;
		const struct debug_cond_list *conds = client ? debug_cond_of_locked(d, bp, who) : NULL;
		pthread_mutex_unlock(&d->lock);
		if (!client)
			return;
		/* the client's conditions, evaluated here as a live hit would be
		 * (an error stops, as live) */
		debug_vcpu_forget(d, who);
		if (conds && debug_cond_true(d, who, conds) == 0)
			return;
		ev.kind = DEBUG_EV_SWBREAK;
		ev.addr = x->bpt.pc;
		hit->at = (struct engine_rr_target){ .vcpu = (int)who,
						     .vcpu_count = vcpu_now(d, who) };
	} else {
		pthread_mutex_lock(&d->lock);
		bool watch = debug_watch_hit_locked(d, x, &ev);
		int hw = watch ? -1 : debug_hw_find_locked(d, x->db.pc);
		bool client = hw >= 0 && d->hw[hw].client && (x->db.dr6 & (1ull << hw));
		pthread_mutex_unlock(&d->lock);
		if (watch && back) {
			hit->at = (struct engine_rr_target){ .vcpu = (int)who,
							     .vcpu_count = vcpu_now(d, who) - 1 };
		} else if (watch) {
			hit->at = (struct engine_rr_target){ .vcpu = -1, .global = global_now(d) };
		} else if (client) {
			ev.kind = DEBUG_EV_HWBREAK;
			ev.addr = x->db.pc;
			hit->at = (struct engine_rr_target){ .vcpu = (int)who,
							     .vcpu_count = vcpu_now(d, who) };
		} else {
			return;
		}
	}
	ev.vcpu = who;
	hit->ev = ev;
	hit->found = true;
	hit->bpt = ev.kind == DEBUG_EV_SWBREAK || ev.kind == DEBUG_EV_HWBREAK;
}

/* Over the int3 vCPU `who` sits on: the original byte for one instruction. */
static int step_over_int3(struct debug *d, unsigned who, uint64_t pc, struct vm_exit *x,
			  unsigned *x_who, struct err *e)
{
	struct debug_sw_where w;
	debug_sw_where(d, who, pc, &w);
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = our_int3_locked(d, &w);
	uint64_t gpa = bp ? bp->gpa : 0;
	if (bp) {
		for (unsigned i = 0; i < d->nr_sw; i++)
			if (d->sw[i].gpa == gpa && !d->sw[i].lifted)
				debug_sw_poke(d, &d->sw[i], false);
	}
	pthread_mutex_unlock(&d->lock);
	if (!bp)
		return err_set(e, EIO, "replay met an int3 at 0x%" PRIx64 " that is not a "
			       "breakpoint of the debugger", pc);
	struct engine_rr_target one = { .vcpu = -1, .global = global_now(d) + 1 };
	int r = rr_of(d)->seek(d->vm, &one, x, x_who, e);
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (d->sw[i].gpa == gpa && d->sw[i].lifted)
			debug_sw_poke(d, &d->sw[i], true);
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* What to do with each hit met on the way to a target. */
enum hit_policy {
	HITS_IGNORE,     /* go on */
	HITS_LAST,       /* remember the last one before `before` */
	HITS_FIRST,      /* stop at the first one (not at the start position) */
};

/* Seek to t through the breakpoints on the way. 0 at t (or at the first
 * hit with HITS_FIRST, hit->found), 2 at the end of the history. With
 * HITS_FIRST, `before` is where an int3 is not a hit: the client resumed
 * a vCPU sitting on it (it steps over it, as live). */
static int travel(struct debug *d, const struct engine_rr_target *t, enum hit_policy policy,
		  uint64_t before, struct rev_hit *hit, struct err *e)
{
	struct vm_exit x;
	unsigned who = 0;
	int r = rr_of(d)->seek(d->vm, t, &x, &who, e);
	while (r == 1) {
		struct rev_hit h;
		classify(d, who, &x, policy == HITS_LAST, &h);
		bool resumed_on = x.reason == VM_EXIT_BPT && global_now(d) == before;
		if (h.found && policy == HITS_FIRST && !resumed_on) {
			*hit = h;
			return 0;
		}
		/* a breakpoint's hit is where it stops (the one at `before` is
		 * where the search began), a watchpoint's just after the access
		 * (at `before`: the access right before it counts) */
		if (h.found && policy == HITS_LAST &&
		    (h.bpt ? global_now(d) < before : global_now(d) <= before))
			*hit = h;
		if (x.reason == VM_EXIT_BPT) {
			r = step_over_int3(d, who, x.bpt.pc, &x, &who, e);
			if (r == 0)
				r = rr_of(d)->seek(d->vm, t, &x, &who, e);
		} else {
			r = rr_of(d)->seek(d->vm, t, &x, &who, e);
		}
	}
	return r;
}

static void stop_event(struct debug_event *ev, unsigned vcpu)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = DEBUG_EV_STEP;
	ev->vcpu = vcpu;
}

/* The oldest point of the history: go there and say so. */
static int to_history_start(struct debug *d, unsigned vcpu, struct debug_event *ev,
			    bool *at_start, struct err *e)
{
	struct engine_rr_info in;
	rr_of(d)->info(d->vm, &in);
	struct engine_rr_target t = { .vcpu = -1, .global = in.first };
	struct rev_hit none;
	int r = travel(d, &t, HITS_IGNORE, 0, &none, e);
	forget_cached(d);
	if (r < 0)
		return r;
	stop_event(ev, vcpu);
	*at_start = true;
	return 0;
}

/* The client spoke (Ctrl-C) during a long search: stop where it got to. */
static int interrupted(struct debug *d, unsigned vcpu, struct debug_event *ev)
{
	forget_cached(d);
	memset(ev, 0, sizeof(*ev));
	ev->kind = DEBUG_EV_INTERRUPT;
	ev->vcpu = vcpu;
	return 0;
}

int debug_reverse_step(struct debug *d, unsigned vcpu, struct debug_event *ev, bool *at_start,
		       struct err *e)
{
	int r = need_rr(d, e);
	if (r < 0)
		return r;
	*at_start = false;
	prepare(d);
	uint64_t n = vcpu_now(d, vcpu);
	struct engine_rr_target t = { .vcpu = (int)vcpu, .vcpu_count = n ? n - 1 : 0 };
	struct rev_hit none;
	r = n ? travel(d, &t, HITS_IGNORE, 0, &none, e) : -ENOENT;
	if (r == -ENOENT)
		return to_history_start(d, vcpu, ev, at_start, e);
	forget_cached(d);
	if (r < 0)
		return r;
	stop_event(ev, vcpu);
	return 0;
}

int debug_reverse_goto(struct debug *d, uint64_t target, struct err *e)
{
	int r = need_rr(d, e);
	if (r < 0)
		return r;
	struct engine_rr_info in;
	rr_of(d)->info(d->vm, &in);
	if (!in.recording)
		return err_set(e, ENOENT, "not recording (monitor record on, or vmdb --record)");
	if (target < in.first || target > in.end)
		return err_set(e, ERANGE, "instruction %" PRIu64 " is outside the history (%" PRIu64
			       " to %" PRIu64 ")", target, in.first, in.end);
	prepare(d);
	struct engine_rr_target t = { .vcpu = -1, .global = target };
	struct rev_hit none;
	r = travel(d, &t, HITS_IGNORE, 0, &none, e);
	forget_cached(d);
	return r < 0 ? r : 0;
}

/* One stretch of history [lo, hi) for the last hit before `before`,
 * replayed with every breakpoint and watchpoint on: emu checks the
 * watched ranges as it accesses memory, at about the cost of a plain
 * replay, for reads as for writes. */
static int scan_interval(struct debug *d, uint64_t lo, uint64_t hi, uint64_t before,
			 struct rev_hit *last, struct err *e)
{
	struct engine_rr_target from = { .vcpu = -1, .global = lo };
	struct engine_rr_target to = { .vcpu = -1, .global = hi };
	int r = travel(d, &from, HITS_IGNORE, 0, last, e);
	return r < 0 ? r : travel(d, &to, HITS_LAST, before, last, e);
}

int debug_reverse_continue(struct debug *d, unsigned vcpu, struct debug_event *ev,
			   bool *at_start, struct err *e)
{
	int r = need_rr(d, e);
	if (r < 0)
		return r;
	*at_start = false;
	prepare(d);
	uint64_t now = global_now(d);
	uint64_t hi = now;
	for (uint64_t lo = rr_of(d)->snap_before(d->vm, hi); lo != UINT64_MAX;
	     hi = lo, lo = rr_of(d)->snap_before(d->vm, lo)) {
		struct rev_hit last = { .found = false };
		if (hi != now && debug_client_spoke(d))
			return interrupted(d, vcpu, ev);
		r = scan_interval(d, lo, hi, now, &last, e);
		if (r < 0) {
			forget_cached(d);
			return r;
		}
		if (!last.found)
			continue;
		struct rev_hit none;
		r = travel(d, &last.at, HITS_IGNORE, 0, &none, e);
		forget_cached(d);
		if (r < 0)
			return r;
		*ev = last.ev;
		return 0;
	}
	return to_history_start(d, vcpu, ev, at_start, e);
}

/* --- forward inside the history ---------------------------------------------------- */

static bool in_history(struct debug *d)
{
	struct engine_rr_info in;
	if (!rr_of(d))
		return false;
	rr_of(d)->info(d->vm, &in);
	return in.in_history;
}

static void queue(struct debug *d, const struct debug_event *ev)
{
	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, ev);
	pthread_mutex_unlock(&d->lock);
}

/* The recording stopped at a breakpoint hit: the replay reaches that
 * moment before the vCPU meets its int3 (positions are before the
 * instruction), so the hit is reported here, not stepped over live. */
static bool hit_at_end(struct debug *d, struct rev_hit *hit)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		struct x86_regs regs;
		if (debug_vcpu_regs(d, i, &regs) < 0 || !debug_client_breakpoint_at(d, regs.rip))
			continue;
		pthread_mutex_lock(&d->lock);
		bool sw = debug_sw_client_at_locked(d, regs.rip);
		pthread_mutex_unlock(&d->lock);
		hit->ev = (struct debug_event){ .kind = sw ? DEBUG_EV_SWBREAK : DEBUG_EV_HWBREAK,
						.vcpu = i, .addr = regs.rip };
		hit->found = true;
		return true;
	}
	return false;
}

int debug_reverse_resume(struct debug *d, const enum debug_action *actions, struct err *e)
{
	if (!in_history(d))
		return 0;
	int stepped = -1;
	bool runs = false;
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		if (actions[i] == DEBUG_ACT_STEP && stepped < 0)
			stepped = (int)i;
		runs = runs || actions[i] != DEBUG_ACT_STOP;
	}
	if (!runs)
		return 0;
	prepare(d);
	struct engine_rr_info in;
	rr_of(d)->info(d->vm, &in);
	struct rev_hit hit = { .found = false };
	struct engine_rr_target t = { .vcpu = -1, .global = in.end };
	if (stepped >= 0)
		t = (struct engine_rr_target){ .vcpu = stepped,
					       .vcpu_count = vcpu_now(d, (unsigned)stepped) + 1 };
	int r;
	bool spoke = false;
	uint64_t start = global_now(d);
	if (stepped >= 0) {
		r = travel(d, &t, HITS_FIRST, start, &hit, e);
	} else {
		/* in pieces, so that a Ctrl-C is heard on the way */
		do {
			uint64_t at = global_now(d);
			struct engine_rr_target piece = { .vcpu = -1, .global = in.end - at >
							  REV_PIECE ? at + REV_PIECE : in.end };
			r = travel(d, &piece, HITS_FIRST, start, &hit, e);
			spoke = r == 0 && !hit.found && piece.global < in.end && debug_client_spoke(d);
		} while (r == 0 && !hit.found && !spoke && global_now(d) < in.end);
	}
	forget_cached(d);
	if (r < 0)
		return r;
	if (r == 2)
		return 0;     /* the end of the history: live from here */
	if (spoke) {
		struct debug_event ev;
		interrupted(d, 0, &ev);
		queue(d, &ev);
		return 1;
	}
	if (stepped < 0 && !hit.found && !hit_at_end(d, &hit))
		return 0;     /* at the end exactly: live from here */
	struct debug_event ev;
	if (hit.found)
		ev = hit.ev;
	else
		stop_event(&ev, (unsigned)stepped);
	queue(d, &ev);
	return 1;
}
