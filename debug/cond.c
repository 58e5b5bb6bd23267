/* debug/cond.c — the client's breakpoint conditions and commands (gdb's
 * agent expressions, run by debug/agent.c), on the vCPU's own thread at
 * the hit: when every condition is false, or the commands ran (gdb's
 * agent-style dprintf: their printf text goes into d->console for the
 * client's thread), the hit is skipped there and then, with no stop and
 * no round trip to the client. The skip
 * lifts the int3 and single-steps the original instruction with the step
 * engine, as a step-over does, then puts the int3 back and lets the vCPU
 * run on. Unlike a step-over the other vCPUs keep running meanwhile: one
 * that passes the same byte during that one instruction misses the
 * breakpoint (it would have skipped it too, unless its condition was
 * true). A condition that cannot be evaluated stops the vCPU, and the
 * client hears why (debug_cond_take_error).
 *
 * A skip in flight is the vCPU's state: cond_skip with the breakpoint's
 * key, its step INTERNAL. It ends at the step's trap (debug_cond_skip_end)
 * or, when a stop kicked the vCPU before the step ended, once every vCPU
 * is parked (debug_cond_skips_settle): the int3 goes back either way and
 * the next resume steps over it as over any breakpoint. */
#include "debug/debug_int.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* gdb's amd64 numbering (gdbserver/pkt_regs.c has the whole table):
 * 0-15 the general registers in this order, 16 rip, 17 eflags, 18-23 the
 * selectors, 57-58 fs/gs base, 60-65 cr0 cr2 cr3 cr4 cr8 efer. */
_Static_assert(offsetof(struct x86_regs, rip) == 16 * 8 &&
	       offsetof(struct x86_regs, rflags) == 17 * 8, "x86_regs in gdb's order");

struct cond_ctx {
	struct debug *d;
	unsigned vcpu;
	enum debug_regnums regnums;
};

/* gdb's i386 register n as its amd64 number (-1: none here): the
 * general registers in i386 order, eip, eflags, the selectors. */
static int amd64_regno(unsigned n)
{
	static const uint8_t map[16] = { 0, 2, 3, 1, 7, 6, 4, 5, 16, 17, 18, 19, 20, 21, 22, 23 };
	return n < 16 ? map[n] : -1;
}

static int sreg_value(const struct x86_sregs *s, unsigned regno, uint64_t *v)
{
	const struct x86_segment *segs[] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs };
	const uint64_t cr[] = { s->cr0, s->cr2, s->cr3, s->cr4, s->cr8, s->efer };
	if (regno >= 18 && regno <= 23)
		*v = segs[regno - 18]->selector;
	else if (regno == 57 || regno == 58)
		*v = regno == 57 ? s->fs.base : s->gs.base;
	else if (regno >= 60 && regno <= 65)
		*v = cr[regno - 60];
	else
		return -ENOTSUP;
	return 0;
}

static int cond_reg64(struct cond_ctx *c, unsigned regno, uint64_t *v);

static int cond_reg(void *opaque, unsigned regno, uint64_t *v)
{
	struct cond_ctx *c = opaque;
	if (c->regnums == DEBUG_REGNUMS_AMD64)
		return cond_reg64(c, regno, v);
	int n = amd64_regno(regno);
	if (n < 0)
		return -ENOTSUP;
	int r = cond_reg64(c, (unsigned)n, v);
	*v &= 0xffffffffu;
	return r;
}

static int cond_reg64(struct cond_ctx *c, unsigned regno, uint64_t *v)
{
	if (regno < 18) {
		struct x86_regs regs;
		int r = debug_read_regs(c->d, c->vcpu, &regs);   /* the guest's view of TF */
		if (r < 0)
			return r;
		memcpy(v, (const uint8_t *)&regs + 8 * regno, sizeof(*v));
		return 0;
	}
	struct x86_sregs sregs;
	int r = debug_vcpu_sregs(c->d, c->vcpu, &sregs);
	return r < 0 ? r : sreg_value(&sregs, regno, v);
}

static int cond_mem(void *opaque, uint64_t addr, void *buf, size_t len)
{
	struct cond_ctx *c = opaque;
	return debug_mem_read(c->d, c->vcpu, addr, buf, len, false);
}

/* How long a vCPU with text waits for room in the console. */
#define CONSOLE_WAIT_NS (200 * 1000000L)

static long ns_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000000000L + (now.tv_nsec - start->tv_nsec);
}

static void console_append_locked(struct debug_console *c, const char *text, size_t len)
{
	size_t tail = (c->head + c->len) % DEBUG_CONSOLE_SIZE;
	size_t first = len < DEBUG_CONSOLE_SIZE - tail ? len : DEBUG_CONSOLE_SIZE - tail;
	memcpy(c->buf + tail, text, first);
	memcpy(c->buf, text + first, len - first);
	c->len += len;
}

/* A command's printf, on the vCPU's thread: the reader (the client's
 * thread) hears of it when the ring was empty; it empties it each time. */
static void cond_print(void *opaque, const char *text, size_t len)
{
	struct cond_ctx *ctx = opaque;
	struct debug *d = ctx->d;
	struct debug_console *c = &d->console;
	struct timespec start;
	bool ring = false;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&d->lock);
	while (DEBUG_CONSOLE_SIZE - c->len < len) {
		if (d->gone || debug_run_of(d, ctx->vcpu) == DEBUG_RUN_STOPPING ||
		    ns_since(&start) > CONSOLE_WAIT_NS)
			break;
		pthread_mutex_unlock(&d->lock);
		if (d->notify)
			d->notify(d->notify_opaque);
		struct timespec nap = { 0, 50 * 1000 };
		nanosleep(&nap, NULL);
		pthread_mutex_lock(&d->lock);
	}
	if (DEBUG_CONSOLE_SIZE - c->len < len) {
		c->lost += len;
	} else {
		ring = c->len == 0;
		console_append_locked(c, text, len);
	}
	pthread_mutex_unlock(&d->lock);
	if (ring && d->notify)
		d->notify(d->notify_opaque);
}

size_t debug_console_take(struct debug *d, char *out, size_t size, uint64_t *lost)
{
	struct debug_console *c = &d->console;
	pthread_mutex_lock(&d->lock);
	size_t n = c->len < size ? c->len : size;
	/* more than fits: end at a line's end, so that a client printing the
	 * packets as they come (gdb with its own log between them) never
	 * shows half a line */
	for (size_t k = n; n < c->len && k > 0; k--)
		if (c->buf[(c->head + k - 1) % DEBUG_CONSOLE_SIZE] == '\n') {
			n = k;
			break;
		}
	size_t first = n < DEBUG_CONSOLE_SIZE - c->head ? n : DEBUG_CONSOLE_SIZE - c->head;
	memcpy(out, c->buf + c->head, first);
	memcpy(out + first, c->buf, n - first);
	c->head = (c->head + n) % DEBUG_CONSOLE_SIZE;
	c->len -= n;
	*lost = c->lost;
	c->lost = 0;
	pthread_mutex_unlock(&d->lock);
	return n;
}

/* Every command in order; 0, or -errno with e at the first that fails. */
static int cmds_run(struct debug *d, unsigned vcpu, const struct debug_cmd_list *list,
		    struct err *e)
{
	struct cond_ctx ctx = { d, vcpu, list->regnums };
	const struct agent_ops ops = { cond_reg, cond_mem, &ctx, cond_print };
	for (unsigned i = 0; i < list->n; i++) {
		int r = agent_run(list->code[i], list->len[i], &ops, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* 1: a condition is true (stop), 0: all false (skip), -errno with e. */
static int conds_eval(struct debug *d, unsigned vcpu, const struct debug_cond_list *list,
		      struct err *e)
{
	struct cond_ctx ctx = { d, vcpu, list->regnums };
	const struct agent_ops ops = { cond_reg, cond_mem, &ctx, NULL };
	for (unsigned i = 0; i < list->n; i++) {
		uint64_t v;
		int r = agent_eval(list->code[i], list->len[i], &ops, &v, e);
		if (r < 0)
			return r;
		if (v)
			return 1;
	}
	return 0;
}

const struct debug_cond_list *debug_cond_of_locked(struct debug *d, const struct debug_sw_bp *bp,
						   unsigned vcpu)
{
	static const struct debug_cond_list none;
	bool plain_hit = bp->client && !bp->catch_vectors && !bp->step_guard &&
			 d->vcpus[vcpu].step == DEBUG_STEP_NONE;
	if (!plain_hit)
		return NULL;
	if (bp->conds && bp->conds->n)
		return bp->conds;
	return bp->cmds ? &none : NULL;
}

/* Put the int3 back and let the vCPU run freely again. */
static void skip_finish(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, dv->cond_key, dv->cond_key_phys);
	if (bp && bp->lifted)
		debug_sw_poke(d, bp, true);
	dv->cond_skip = false;
	dv->step = DEBUG_STEP_NONE;
	dv->step_among_others = false;
	pthread_mutex_unlock(&d->lock);
	debug_apply_engine(d, vcpu);
	debug_step_leave(d, vcpu);
}

/* Step the original instruction under the breakpoint, on this thread. */
static int skip_begin(struct debug *d, unsigned vcpu, uint64_t pc, const struct debug_sw_bp *hit)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct x86_regs regs;
	int r = debug_vcpu_regs(d, vcpu, &regs);
	if (r == 0 && regs.rip != pc) {
		regs.rip = pc;      /* back on the instruction the int3 replaced */
		r = debug_vcpu_put_regs(d, vcpu, &regs, "RIP back at a conditional breakpoint");
	}
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	dv->cond_skip = true;
	dv->cond_key = hit->addr;
	dv->cond_key_phys = hit->phys;
	dv->step = DEBUG_STEP_INTERNAL;
	dv->step_done = false;
	dv->step_watch = false;
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, hit->addr, hit->phys);
	if (bp)
		debug_sw_poke(d, bp, false);
	pthread_mutex_unlock(&d->lock);
	/* the others run on: its step must not arm fault guards they could meet */
	dv->step_among_others = true;
	r = debug_step_begin(d, vcpu);
	if (r == 0)
		r = debug_apply_engine(d, vcpu);
	if (r != 0)
		skip_finish(d, vcpu);     /* stepped already (1), or cannot step */
	return r < 0 ? r : 0;
}

int debug_cond_true(struct debug *d, unsigned vcpu, const struct debug_cond_list *conds)
{
	struct err e = { 0 };
	return conds_eval(d, vcpu, conds, &e);
}

bool debug_cond_hit(struct debug *d, unsigned vcpu, uint64_t pc, const struct debug_sw_bp *bp,
		    const struct debug_cond_list *conds)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct err e = { 0 };
	int r = conds->n ? conds_eval(d, vcpu, conds, &e) : 1;
	if (r < 0)
		err_wrap(&e, "its condition could not be evaluated");
	else if (r == 1 && bp->cmds && (r = cmds_run(d, vcpu, bp->cmds, &e)) < 0)
		err_wrap(&e, "its command could not be run");
	if (r == 0 && (r = skip_begin(d, vcpu, pc, bp)) < 0)
		err_wrap(&e, "it could not be stepped over (its condition was false, or its "
			 "commands ran)");
	if (r < 0) {     /* this hit's stop follows: the latest failure is the one to tell */
		pthread_mutex_lock(&d->lock);
		dv->cond_failed = true;
		dv->cond_err = e;
		dv->cond_err_addr = bp->addr;
		pthread_mutex_unlock(&d->lock);
	}
	return r == 0;
}

bool debug_cond_skip_end(struct debug *d, struct vcpu *vcpu, const struct debug_event *watch)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	if (!__atomic_load_n(&dv->cond_skip, __ATOMIC_ACQUIRE))
		return false;
	skip_finish(d, vcpu->id);
	if (watch) {     /* the skipped instruction hit a watchpoint: that stops */
		pthread_mutex_lock(&d->lock);
		debug_queue_locked(d, watch);
		dv->notify_on_park = true;
		debug_request_stop_locked(d, vcpu->id);
		pthread_mutex_unlock(&d->lock);
	}
	return true;
}

void debug_cond_skips_settle(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (__atomic_load_n(&d->vcpus[i].cond_skip, __ATOMIC_ACQUIRE))
			skip_finish(d, i);
}

bool debug_cond_take_error(struct debug *d, unsigned vcpu, uint64_t addr, char *out,
			   size_t size)
{
	if (vcpu >= d->nr_vcpus)
		return false;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	pthread_mutex_lock(&d->lock);
	bool failed = dv->cond_failed && dv->cond_err_addr == addr;
	if (failed)
		snprintf(out, size, "%s", dv->cond_err.msg);
	dv->cond_failed = false;
	pthread_mutex_unlock(&d->lock);
	return failed;
}

void debug_cond_free(struct debug_sw_bp *bp)
{
	free(bp->conds);
	bp->conds = NULL;
	free(bp->cmds);
	bp->cmds = NULL;
}

int debug_sw_set_conds(struct debug *d, uint64_t addr, bool phys,
		       const struct debug_cond_list *list, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, addr, phys);
	int r = 0;
	if (!bp || !bp->client)
		r = err_set(e, ENOENT, "no breakpoint at 0x%" PRIx64, addr);
	else if (list->n == 0)
		debug_cond_free(bp);
	else if (!bp->conds && !(bp->conds = malloc(sizeof(*bp->conds))))
		r = err_set(e, ENOMEM, "out of memory for a breakpoint condition");
	else
		memcpy(bp->conds, list, sizeof(*list));
	pthread_mutex_unlock(&d->lock);
	return r;
}

bool debug_cond_persists(const struct debug_sw_bp *bp)
{
	return bp->client && bp->cmds && bp->cmds->persist;
}

void debug_cond_drop_persistent(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = d->nr_sw; i-- > 0;) {
		struct debug_sw_bp *bp = &d->sw[i];
		if (!debug_cond_persists(bp))
			continue;
		bp->client = false;
		debug_cond_free(bp);
		if (!bp->catch_vectors && !bp->step_guard)
			debug_sw_drop_locked(d, bp);
	}
	pthread_mutex_unlock(&d->lock);
}

int debug_sw_set_cmds(struct debug *d, uint64_t addr, bool phys,
		      const struct debug_cmd_list *list, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, addr, phys);
	int r = 0;
	if (!bp || !bp->client) {
		r = err_set(e, ENOENT, "no breakpoint at 0x%" PRIx64, addr);
	} else if (list->n == 0) {
		free(bp->cmds);
		bp->cmds = NULL;
	} else if (!bp->cmds && !(bp->cmds = malloc(sizeof(*bp->cmds)))) {
		r = err_set(e, ENOMEM, "out of memory for a breakpoint's commands");
	} else {
		memcpy(bp->cmds, list, sizeof(*list));
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}
