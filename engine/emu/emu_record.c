/* engine/emu/emu_record.c — record and replay (see emu_record.h): the log,
 * the snapshots taken while recording, and the replay that moves the
 * stopped machine through its history on the debugger's thread.
 *
 * Replay runs the vCPUs here, one instruction count at a time as the log
 * says (turns, idle jumps, inputs, the debugger's writes), with emu's own
 * run loop and the machine's buses for port I/O and MMIO, as the vCPU
 * threads would; the device output it causes is not shown again
 * (vm_rr.quiet: the user saw it when it was recorded). Live input that
 * arrives meanwhile waits in the queue until the machine is live again.
 * Slices end where the recording's did not (at the target, at events):
 * that changes nothing, because timers fire at the instruction their
 * deadline names whatever the slicing (emu_engine.c) and interrupts are
 * taken at the next boundary either way. */
#include "engine/emu/emu_record.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_platform.h"
#include "machine/snapshot.h"
#include "machine/vm.h"

#define RR_DEFAULT_BUDGET (256ull << 20)
#define RR_FIRST_PERIOD   2000000ull      /* instructions between snapshots */
#define RR_MAX_PERIOD     1000000000ull
#define RR_MIN_SNAPS      64              /* the period grows to keep this many in budget */
#define RR_INPUT_QUEUE    65536

enum rr_kind {
	RR_TURN,       /* a = the vCPU that holds the token from here */
	RR_IDLE,       /* a = guest ns the clock jumped to */
	RR_INPUT,      /* data = serial input bytes the UART took */
	RR_STATE,      /* vcpu, a = X86_STATE_* mask, data = struct x86_state */
	RR_EXCEPTION,  /* vcpu, a = deliver | vector | error code, b = rflags */
	RR_MEM,        /* a = gpa, data = the bytes */
	RR_NOIRQ,      /* vcpu's next instruction ran with interrupts held (a debugger step) */
	RR_MSR,        /* vcpu, a = MSR, b = the value the debugger wrote */
};

struct rr_event {
	uint64_t icount;
	uint64_t a, b;
	uint64_t off;          /* payload in rec->data */
	uint32_t len;
	uint16_t vcpu;
	uint8_t kind;
};

struct rr_snap {
	uint64_t icount;
	size_t pos;            /* first event after it */
	unsigned turn;
	uint64_t *retired;     /* per vCPU */
};

struct emu_rec {
	struct emu_vm *evm;
	pthread_mutex_t lock;          /* the log and the snapshot list */
	pthread_mutex_t hist_lock;     /* leaving the history (vCPU threads race to it) */
	bool want, on;
	bool in_history;               /* stopped before the end (every vCPU parked) */
	bool replaying;                /* the runner executes: nothing is logged */
	uint64_t budget, period, next_snap;
	struct snap_store *store;
	char failed[256];              /* why recording stopped by itself */

	struct rr_event *ev;
	size_t nr_ev, cap_ev;
	uint8_t *data;
	uint64_t data_len, data_cap;
	struct rr_snap *snaps;
	size_t nr_snaps, cap_snaps;

	/* inside the history: the next event to apply, the token's holder,
	 * where the history ends and who held the token there */
	size_t pos;
	unsigned turn;
	uint64_t end;
	struct emu_sched_image end_sched;
	struct emu_sched_cpu_image end_cpus[VM_MAX_VCPUS];

	pthread_mutex_t in_lock;       /* serial input not delivered yet */
	uint8_t in_q[RR_INPUT_QUEUE];
	size_t in_len;

	struct timespec real_base;     /* the guest's wall clock while recording */
	uint64_t guest_base;
};

static struct emu_vm *evm_of(struct vm *vm)
{
	return (struct emu_vm *)vm->engine_vm;
}

uint64_t emu_rr_icount(struct emu_vm *evm)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i])
			n += evm->cpus[i]->retired;
	return n;
}

int emu_rr_create(struct emu_vm *evm)
{
	struct emu_rec *rec = calloc(1, sizeof(*rec));
	if (!rec)
		return -ENOMEM;
	rec->evm = evm;
	pthread_mutex_init(&rec->lock, NULL);
	pthread_mutex_init(&rec->hist_lock, NULL);
	pthread_mutex_init(&rec->in_lock, NULL);
	rec->want = evm->vm->cfg.record;
	rec->budget = evm->vm->cfg.record_mem ? evm->vm->cfg.record_mem : RR_DEFAULT_BUDGET;
	evm->rec = rec;
	return 0;
}

static void rr_forget(struct emu_rec *rec)
{
	for (size_t i = 0; i < rec->nr_snaps; i++)
		free(rec->snaps[i].retired);
	rec->nr_snaps = rec->nr_ev = 0;
	rec->data_len = 0;
	rec->pos = 0;
	if (rec->store)
		snap_store_destroy(rec->store);
	rec->store = NULL;
}

void emu_rr_destroy(struct emu_vm *evm)
{
	struct emu_rec *rec = evm->rec;
	if (!rec)
		return;
	struct vm *vm = evm->vm;
	__atomic_store_n(&vm->rr.queue_input, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&vm->rr.realtime, NULL, __ATOMIC_RELEASE);
	rr_forget(rec);
	free(rec->snaps);
	free(rec->ev);
	free(rec->data);
	pthread_mutex_destroy(&rec->lock);
	pthread_mutex_destroy(&rec->hist_lock);
	pthread_mutex_destroy(&rec->in_lock);
	free(rec);
	evm->rec = NULL;
}

/* --- the log ---------------------------------------------------------------------- */

static struct rr_event *rr_add(struct emu_rec *rec, enum rr_kind kind, unsigned vcpu,
			       const void *data, uint32_t len)
{
	if (rec->nr_ev == rec->cap_ev) {
		size_t cap = rec->cap_ev ? 2 * rec->cap_ev : 1024;
		struct rr_event *ev = realloc(rec->ev, cap * sizeof(*ev));
		if (!ev)
			return NULL;
		rec->ev = ev;
		rec->cap_ev = cap;
	}
	if (rec->data_len + len > rec->data_cap) {
		uint64_t cap = rec->data_cap ? 2 * rec->data_cap : 65536;
		while (cap < rec->data_len + len)
			cap *= 2;
		uint8_t *d = realloc(rec->data, cap);
		if (!d)
			return NULL;
		rec->data = d;
		rec->data_cap = cap;
	}
	struct rr_event *ev = &rec->ev[rec->nr_ev++];
	*ev = (struct rr_event){ .icount = emu_rr_icount(rec->evm), .kind = (uint8_t)kind,
				 .vcpu = (uint16_t)vcpu, .off = rec->data_len, .len = len };
	if (len)
		memcpy(rec->data + rec->data_len, data, len);
	rec->data_len += len;
	return ev;
}

static bool rr_logging(struct emu_rec *rec)
{
	return rec && rec->on && !rec->replaying;
}

/* Recording cannot go on (out of memory, a snapshot failed): say why once
 * and forget the history; the machine runs on. */
static void rr_fail(struct emu_rec *rec, const char *why)
{
	snprintf(rec->failed, sizeof(rec->failed), "%s", why);
	fprintf(stderr, "vmdb: recording stopped: %s\n", why);
	rec->on = false;
	rr_forget(rec);
	__atomic_store_n(&rec->evm->vm->rr.queue_input, NULL, __ATOMIC_RELEASE);
	__atomic_store_n(&rec->evm->vm->rr.realtime, NULL, __ATOMIC_RELEASE);
}

static void rr_log(struct emu_rec *rec, enum rr_kind kind, unsigned vcpu, uint64_t a,
		   uint64_t b, const void *data, uint32_t len)
{
	pthread_mutex_lock(&rec->lock);
	struct rr_event *ev = rr_add(rec, kind, vcpu, data, len);
	if (ev) {
		ev->a = a;
		ev->b = b;
	} else {
		rr_fail(rec, "out of memory for the event log");
	}
	pthread_mutex_unlock(&rec->lock);
}

void emu_rr_turn(struct emu_vm *evm, unsigned turn)
{
	if (rr_logging(evm->rec))
		rr_log(evm->rec, RR_TURN, 0, turn, 0, NULL, 0);
}

void emu_rr_idle_jump(struct emu_vm *evm, uint64_t to_ns)
{
	if (rr_logging(evm->rec))
		rr_log(evm->rec, RR_IDLE, 0, to_ns, 0, NULL, 0);
}

void emu_rr_noirq_step(struct emu_cpu *cpu)
{
	struct emu_rec *rec = cpu->evm->rec;
	if (rr_logging(rec) && (emu_lapic_has_interrupt(cpu) || cpu->pending.nmi))
		rr_log(rec, RR_NOIRQ, cpu->id, 0, 0, NULL, 0);
}

void emu_rr_log_state(struct emu_cpu *cpu, unsigned mask, const void *state, unsigned size)
{
	rr_log(cpu->evm->rec, RR_STATE, cpu->id, mask, 0, state, size);
}

void emu_rr_log_exception(struct emu_cpu *cpu, bool deliver, uint8_t vector,
			  bool has_error_code, uint32_t error_code, uint64_t rflags)
{
	uint64_t a = (uint64_t)deliver | (uint64_t)has_error_code << 1 | (uint64_t)vector << 8 |
		     (uint64_t)error_code << 32;
	rr_log(cpu->evm->rec, RR_EXCEPTION, cpu->id, a, rflags, NULL, 0);
}

void emu_rr_log_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t value)
{
	rr_log(cpu->evm->rec, RR_MSR, cpu->id, msr, value, NULL, 0);
}

/* --- inputs from outside ------------------------------------------------------------ */

static size_t rr_queue_input(struct vm *vm, const uint8_t *buf, size_t n)
{
	struct emu_vm *evm = evm_of(vm);
	struct emu_rec *rec = evm ? evm->rec : NULL;
	if (!rec)
		return n;
	pthread_mutex_lock(&rec->in_lock);
	size_t take = RR_INPUT_QUEUE - rec->in_len < n ? RR_INPUT_QUEUE - rec->in_len : n;
	memcpy(rec->in_q + rec->in_len, buf, take);
	rec->in_len += take;
	pthread_mutex_unlock(&rec->in_lock);
	emu_vm_wake(evm, NULL);
	return take;
}

/* The token holder hands queued input to the UART and logs what it took. */
static void rr_deliver_input(struct emu_rec *rec)
{
	struct vm *vm = rec->evm->vm;
	if (!__atomic_load_n(&rec->in_len, __ATOMIC_RELAXED) || !vm->rr.serial_push)
		return;
	pthread_mutex_lock(&rec->in_lock);
	size_t took = vm->rr.serial_push(vm->rr.serial_opaque, rec->in_q, rec->in_len);
	if (took) {
		rr_log(rec, RR_INPUT, 0, 0, 0, rec->in_q, (uint32_t)took);
		memmove(rec->in_q, rec->in_q + took, rec->in_len - took);
		rec->in_len -= took;
	}
	pthread_mutex_unlock(&rec->in_lock);
}

static void rr_realtime(struct vm *vm, struct timespec *ts)
{
	struct emu_vm *evm = evm_of(vm);
	struct emu_rec *rec = evm ? evm->rec : NULL;
	if (!rec) {
		clock_gettime(CLOCK_REALTIME, ts);
		return;
	}
	uint64_t ns = emu_guest_ns(evm) - rec->guest_base + (uint64_t)rec->real_base.tv_nsec;
	ts->tv_sec = rec->real_base.tv_sec + (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

/* --- snapshots -------------------------------------------------------------------- */

/* No vCPU is inside an instruction that waits for a device's answer. */
static bool rr_quiescent(struct emu_vm *evm)
{
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i] && emu_core_of(evm->cpus[i])->replay_n)
			return false;
	return true;
}

static void rr_bp(struct emu_rec *rec, bool lift)
{
	struct vm_rr *rr = &rec->evm->vm->rr;
	if (rr->bp_hook)
		rr->bp_hook(rr->bp_opaque, lift);
}

static uint64_t rr_log_bytes_locked(const struct emu_rec *rec)
{
	return rec->nr_ev * sizeof(struct rr_event) + rec->data_len;
}

/* Drop what the store dropped: snapshots older than its oldest, and the
 * log before the oldest kept snapshot once that is most of it, or at once
 * when the log alone is over the budget. */
static void rr_prune_locked(struct emu_rec *rec)
{
	uint64_t oldest = snap_oldest(rec->store);
	size_t k = 0;
	while (k + 1 < rec->nr_snaps && rec->snaps[k].icount < oldest)
		free(rec->snaps[k++].retired);
	if (k) {
		memmove(rec->snaps, rec->snaps + k, (rec->nr_snaps - k) * sizeof(*rec->snaps));
		rec->nr_snaps -= k;
	}
	size_t dead = rec->nr_snaps ? rec->snaps[0].pos : 0;
	bool over = rr_log_bytes_locked(rec) > rec->budget;
	if (dead == 0 || (!over && (dead < 4096 || dead < rec->nr_ev / 2)))
		return;
	uint64_t off = dead < rec->nr_ev ? rec->ev[dead].off : rec->data_len;
	memmove(rec->data, rec->data + off, rec->data_len - off);
	rec->data_len -= off;
	memmove(rec->ev, rec->ev + dead, (rec->nr_ev - dead) * sizeof(*rec->ev));
	rec->nr_ev -= dead;
	for (size_t i = 0; i < rec->nr_ev; i++)
		rec->ev[i].off -= off;
	for (size_t i = 0; i < rec->nr_snaps; i++)
		rec->snaps[i].pos -= dead;
}

/* Longer periods when snapshots are big: RR_MIN_SNAPS of them fit. */
static void rr_adapt_period(struct emu_rec *rec)
{
	size_t n = snap_count(rec->store);
	if (n < 8 || rec->period >= RR_MAX_PERIOD)
		return;
	if (snap_bytes(rec->store) / n * RR_MIN_SNAPS > rec->budget)
		rec->period *= 2;
}

static void rr_take(struct emu_rec *rec)
{
	struct emu_vm *evm = rec->evm;
	uint64_t now = emu_rr_icount(evm);
	uint64_t *retired = calloc(evm->nr_cpus, sizeof(*retired));
	if (!retired) {
		rr_fail(rec, "out of memory for a snapshot");
		return;
	}
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		retired[i] = evm->cpus[i] ? evm->cpus[i]->retired : 0;
	/* the log counts in the budget: the snapshots get what it leaves (none
	 * but the newest when the log alone is over, and the log is then cut
	 * at that newest one) */
	pthread_mutex_lock(&rec->lock);
	uint64_t log = rr_log_bytes_locked(rec);
	pthread_mutex_unlock(&rec->lock);
	snap_set_budget(rec->store, rec->budget > log ? rec->budget - log : 0);
	struct err e = { 0 };
	rr_bp(rec, true);
	int r = snap_take(rec->store, now, &e);
	rr_bp(rec, false);
	if (r < 0) {
		free(retired);
		rr_fail(rec, e.msg);
		return;
	}
	unsigned turn = emu_sched_turn(evm);     /* the scheduler's lock before ours */
	pthread_mutex_lock(&rec->lock);
	if (rec->nr_snaps == rec->cap_snaps) {
		size_t cap = rec->cap_snaps ? 2 * rec->cap_snaps : 64;
		struct rr_snap *s = realloc(rec->snaps, cap * sizeof(*s));
		if (!s) {
			pthread_mutex_unlock(&rec->lock);
			free(retired);
			rr_fail(rec, "out of memory for the snapshot list");
			return;
		}
		rec->snaps = s;
		rec->cap_snaps = cap;
	}
	rec->snaps[rec->nr_snaps++] = (struct rr_snap){ .icount = now, .pos = rec->nr_ev,
							.turn = turn,
							.retired = retired };
	rr_prune_locked(rec);
	pthread_mutex_unlock(&rec->lock);
	rr_adapt_period(rec);
	rec->next_snap = now + rec->period;
}

static void rr_start(struct emu_rec *rec)
{
	struct emu_vm *evm = rec->evm;
	struct vm *vm = evm->vm;
	struct err e = { 0 };
	rec->want = false;
	if (snap_store_create(vm, rec->budget, &rec->store, &e) < 0) {
		rr_fail(rec, e.msg);
		return;
	}
	rec->failed[0] = '\0';
	rec->period = RR_FIRST_PERIOD;
	clock_gettime(CLOCK_REALTIME, &rec->real_base);
	rec->guest_base = emu_guest_ns(evm);
	rec->on = true;
	__atomic_store_n(&vm->rr.realtime, rr_realtime, __ATOMIC_RELEASE);
	__atomic_store_n(&vm->rr.queue_input, rr_queue_input, __ATOMIC_RELEASE);
	rr_take(rec);
}

void emu_rr_slice(struct emu_vm *evm)
{
	struct emu_rec *rec = evm->rec;
	if (!rec || rec->replaying || (!rec->on && !rec->want))
		return;
	if (!rr_quiescent(evm))
		return;
	if (rec->want)
		rr_start(rec);
	else if (emu_rr_icount(evm) >= rec->next_snap)
		rr_take(rec);
	if (rec->on)
		rr_deliver_input(rec);
}

/* --- leaving the history ----------------------------------------------------------- */

/* Live from here: the log after the position and the snapshots after it
 * are history that will not happen now. */
static void rr_cut_locked(struct emu_rec *rec)
{
	uint64_t now = emu_rr_icount(rec->evm);
	rec->nr_ev = rec->pos;
	rec->data_len = rec->nr_ev ? rec->ev[rec->nr_ev - 1].off + rec->ev[rec->nr_ev - 1].len : 0;
	size_t keep = rec->nr_snaps;
	while (keep > 0 && (rec->snaps[keep - 1].icount > now ||
			    rec->snaps[keep - 1].pos > rec->pos))
		free(rec->snaps[--keep].retired);
	rec->nr_snaps = keep;
	snap_forget_after(rec->store, keep ? rec->snaps[keep - 1].icount : 0);
	rec->next_snap = now;     /* the next slice takes one */
}

static void rr_leave(struct emu_rec *rec)
{
	struct emu_vm *evm = rec->evm;
	pthread_mutex_lock(&rec->hist_lock);
	if (!rec->in_history) {
		pthread_mutex_unlock(&rec->hist_lock);
		return;
	}
	bool at_end = emu_rr_icount(evm) == rec->end && rec->pos == rec->nr_ev;
	if (at_end) {
		emu_sched_restore(evm, &rec->end_sched, rec->end_cpus);
	} else {
		pthread_mutex_lock(&rec->lock);
		rr_cut_locked(rec);
		pthread_mutex_unlock(&rec->lock);
		emu_sched_resume_at(evm, rec->turn, true);
		rr_log(rec, RR_TURN, 0, rec->turn, 0, NULL, 0);
	}
	rec->in_history = false;
	pthread_mutex_unlock(&rec->hist_lock);
}

void emu_rr_leave_history(struct emu_vm *evm)
{
	struct emu_rec *rec = evm->rec;
	if (rec && __atomic_load_n(&rec->in_history, __ATOMIC_ACQUIRE))
		rr_leave(rec);
}

bool emu_rr_debugger_write(struct emu_vm *evm)
{
	struct emu_rec *rec = evm->rec;
	if (!rr_logging(rec))
		return false;
	rr_leave(rec);
	return true;
}

static void rr_mem_written(struct vm *vm, uint64_t gpa, const void *buf, uint64_t len)
{
	struct emu_vm *evm = evm_of(vm);
	if (!evm || !emu_rr_debugger_write(evm) || len > UINT32_MAX)
		return;
	rr_log(evm->rec, RR_MEM, 0, gpa, 0, buf, (uint32_t)len);
}

/* --- replay ------------------------------------------------------------------------- */

/* One logged event, as the recording met it. */
static int rr_apply(struct emu_rec *rec, const struct rr_event *ev, bool *noirq, struct err *e)
{
	struct emu_vm *evm = rec->evm;
	struct emu_cpu *cpu = ev->vcpu < evm->nr_cpus ? evm->cpus[ev->vcpu] : NULL;
	const uint8_t *data = rec->data + ev->off;
	switch ((enum rr_kind)ev->kind) {
	case RR_TURN:
		rec->turn = (unsigned)ev->a;
		return 0;
	case RR_IDLE:
		emu_platform_advance(evm, ev->a);
		return 0;
	case RR_INPUT:
		if (evm->vm->rr.serial_push &&
		    evm->vm->rr.serial_push(evm->vm->rr.serial_opaque, data, ev->len) != ev->len)
			return err_set(e, EIO, "replay: the UART took less input than recorded at "
				       "instruction %" PRIu64, ev->icount);
		return 0;
	case RR_MEM: {
		uint8_t *host = vm_gpa_to_host(evm->vm, ev->a, ev->len);
		if (!host)
			return err_set(e, EIO, "replay: a logged write outside RAM");
		rr_bp(rec, true);
		memcpy(host, data, ev->len);
		vm_ram_dirty(evm->vm, host, ev->len);
		rr_bp(rec, false);
		emu_blocks_outside(evm);
		return 0;
	}
	case RR_STATE:
		if (!cpu || ev->len != sizeof(struct x86_state))
			return err_set(e, EIO, "replay: a bad register write in the log");
		emu_state_apply(cpu, (unsigned)ev->a, (const struct x86_state *)(const void *)data);
		return 0;
	case RR_EXCEPTION:
		if (!cpu)
			return err_set(e, EIO, "replay: a bad exception in the log");
		emu_exception_apply(cpu, ev->a & 1, (uint8_t)(ev->a >> 8), (ev->a >> 1) & 1,
				    (uint32_t)(ev->a >> 32), ev->b);
		return 0;
	case RR_NOIRQ:
		if (cpu)
			noirq[cpu->id] = true;
		return 0;
	case RR_MSR:
		if (!cpu || emu_msr_apply(cpu, (uint32_t)ev->a, ev->b) < 0)
			return err_set(e, EIO, "replay: a logged MSR write failed");
		return 0;
	}
	return err_set(e, EIO, "replay: an unknown event in the log");
}

static bool rr_reached(struct emu_rec *rec, const struct engine_rr_target *t)
{
	struct emu_vm *evm = rec->evm;
	if (t->vcpu < 0)
		return emu_rr_icount(evm) >= t->global;
	struct emu_cpu *k = evm->cpus[t->vcpu];
	return rec->turn == (unsigned)t->vcpu && k->retired == t->vcpu_count &&
	       emu_sched_runnable(k);
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* How far the holder may run before something must be looked at again. */
static uint64_t rr_budget(struct emu_rec *rec, const struct engine_rr_target *t, uint64_t cur)
{
	struct emu_vm *evm = rec->evm;
	uint64_t budget = rec->end > cur ? rec->end - cur : 0;
	if (rec->pos < rec->nr_ev)
		budget = min64(budget, rec->ev[rec->pos].icount - cur);
	if (t->vcpu < 0)
		budget = min64(budget, t->global - cur);
	else if (rec->turn == (unsigned)t->vcpu) {
		struct emu_cpu *k = evm->cpus[t->vcpu];
		if (t->vcpu_count > k->retired)
			budget = min64(budget, t->vcpu_count - k->retired);
	}
	return budget;
}

/* The machine's part of an exit, as the vCPU loop does it. */
static int rr_exit(struct emu_rec *rec, struct emu_cpu *cpu, struct err *e)
{
	struct vm *vm = rec->evm->vm;
	struct vm_exit *x = &cpu->exit;
	switch (x->reason) {
	case VM_EXIT_IO: {
		uint8_t *data = x->io.data;
		for (uint32_t i = 0; i < x->io.count; i++, data += x->io.size)
			if (bus_access(&vm->pio, x->io.port, data, x->io.size, x->io.is_write) < 0 &&
			    !x->io.is_write)
				memset(data, 0xff, x->io.size);
		return 0;
	}
	case VM_EXIT_MMIO:
		if (bus_access(&vm->mmio, x->mmio.gpa, x->mmio.data, x->mmio.len,
			       x->mmio.is_write) < 0 && !x->mmio.is_write)
			memset(x->mmio.data, 0xff, x->mmio.len);
		return 0;
	case VM_EXIT_MOV_DR:
	case VM_EXIT_ACCESS:
	case VM_EXIT_NONE:
	case VM_EXIT_KICKED:
		return 0;
	default:
		return err_set(e, EIO, "replay: vCPU %u met %s at instruction %" PRIu64
			       ", which the recording did not", cpu->id,
			       vm_exit_reason_name(x->reason), emu_rr_icount(rec->evm));
	}
}

/* One slice of the holder, ending at the budget or the next timer. */
static enum emu_stop rr_slice(struct emu_cpu *cpu, uint64_t budget, bool noirq)
{
	struct emu_vm *evm = cpu->evm;
	uint64_t now = emu_guest_ns(evm);
	uint64_t deadline = emu_next_deadline_ns(evm);
	if (deadline <= now) {
		emu_platform_advance(evm, now);
		deadline = emu_next_deadline_ns(evm);
	}
	if (deadline != EMU_NO_DEADLINE && deadline > now && deadline - now < budget)
		budget = deadline - now;
	if (!noirq)
		return emu_exec_run(cpu, budget);
	/* the recording stepped it with interrupts held: one such step */
	struct engine_debug held = cpu->debugger;
	struct engine_debug step = held;
	step.single_step = step.block_irq = true;
	emu_dbg_set_debug(cpu, &step);
	enum emu_stop stop = emu_exec_run(cpu, 1);
	if (stop == EMU_STOP_EXIT && cpu->exit.reason == VM_EXIT_DB &&
	    cpu->exit.db.dr6 == DR6_BS && !cpu->exit.db.watch && !cpu->exit.db.guest_dr6) {
		cpu->exit.reason = VM_EXIT_NONE;
		stop = EMU_STOP_QUANTUM;
	}
	emu_dbg_set_debug(cpu, &held);
	return stop;
}

/* Run forward to t. 0 at t, 1 at a debug exit, 2 at the end. */
static int rr_run(struct emu_rec *rec, const struct engine_rr_target *t, struct vm_exit *exit,
		  unsigned *who, struct err *e)
{
	struct emu_vm *evm = rec->evm;
	bool noirq[VM_MAX_VCPUS] = { false };
	for (;;) {
		uint64_t cur = emu_rr_icount(evm);
		while (rec->pos < rec->nr_ev && rec->ev[rec->pos].icount <= cur) {
			int r = rr_apply(rec, &rec->ev[rec->pos], noirq, e);
			if (r < 0)
				return r;
			rec->pos++;
		}
		if (rr_reached(rec, t))
			return 0;
		if (cur >= rec->end && rec->pos >= rec->nr_ev)
			return 2;
		struct emu_cpu *cpu = rec->turn < evm->nr_cpus ? evm->cpus[rec->turn] : NULL;
		uint64_t budget = rr_budget(rec, t, cur);
		if (!cpu || budget == 0)
			return err_set(e, EIO, "replay: stuck at instruction %" PRIu64
				       " (the log expects an event the machine did not meet)", cur);
		uint64_t before = cpu->retired;
		enum emu_stop stop = emu_sched_runnable(cpu) ? rr_slice(cpu, budget, noirq[cpu->id])
							     : EMU_STOP_HLT;
		if (cpu->retired != before)
			noirq[cpu->id] = false;
		if (stop == EMU_STOP_KICKED)
			__atomic_store_n(&emu_core_of(cpu)->kick, false, __ATOMIC_RELEASE);
		if (stop == EMU_STOP_HLT && emu_rr_icount(evm) == cur &&
		    !(rec->pos < rec->nr_ev && rec->ev[rec->pos].icount == cur))
			return err_set(e, EIO, "replay: vCPU %u halts at instruction %" PRIu64
				       " where the recording ran on", cpu->id, cur);
		if (stop != EMU_STOP_EXIT)
			continue;
		if (cpu->exit.reason == VM_EXIT_DB || cpu->exit.reason == VM_EXIT_BPT) {
			*exit = cpu->exit;
			*who = cpu->id;
			return 1;
		}
		int r = rr_exit(rec, cpu, e);
		if (r < 0)
			return r;
	}
}

/* Put the machine at the newest snapshot from which t lies ahead. */
static int rr_restore(struct emu_rec *rec, const struct engine_rr_target *t, struct err *e)
{
	const struct rr_snap *s = NULL;
	pthread_mutex_lock(&rec->lock);
	for (size_t i = rec->nr_snaps; i-- > 0 && !s;) {
		const struct rr_snap *c = &rec->snaps[i];
		if (t->vcpu < 0 ? c->icount <= t->global : c->retired[t->vcpu] <= t->vcpu_count)
			s = c;
	}
	pthread_mutex_unlock(&rec->lock);
	if (!s)
		return err_set(e, ENOENT, "the history does not reach back that far");
	uint64_t at = 0;
	rr_bp(rec, true);
	int r = snap_restore(rec->store, s->icount, &at, e);
	rr_bp(rec, false);
	if (r < 0)
		return r;
	if (at != s->icount)
		return err_set(e, EIO, "the snapshot store restored instruction %" PRIu64
			       " for %" PRIu64, at, s->icount);
	rec->pos = s->pos;
	rec->turn = s->turn;
	emu_blocks_outside(rec->evm);
	return 0;
}

static bool rr_behind(struct emu_rec *rec, const struct engine_rr_target *t)
{
	if (t->vcpu < 0)
		return t->global < emu_rr_icount(rec->evm);
	return rec->evm->cpus[t->vcpu]->retired > t->vcpu_count;
}

static int rr_seek(struct vm *vm, const struct engine_rr_target *t, struct vm_exit *exit,
		   unsigned *who, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	struct emu_rec *rec = evm->rec;
	memset(exit, 0, sizeof(*exit));
	if (!rec || !rec->on || !rec->nr_snaps)
		return err_set(e, ENOENT, "nothing is recorded (vmdb --record, or monitor "
			       "record on)");
	if (t->vcpu >= (int)evm->nr_cpus || (t->vcpu >= 0 && !evm->cpus[t->vcpu]))
		return err_set(e, EINVAL, "no vCPU %d", t->vcpu);
	if (!rec->in_history) {
		rec->in_history = true;
		rec->end = emu_rr_icount(evm);
		rec->pos = rec->nr_ev;
		rec->turn = emu_sched_turn(evm);
		emu_sched_save(evm, &rec->end_sched, rec->end_cpus);
	}
	rec->replaying = true;
	__atomic_store_n(&vm->rr.quiet, true, __ATOMIC_RELEASE);
	int r = 0;
	if (rr_behind(rec, t))
		r = rr_restore(rec, t, e);
	if (r == 0) {
		emu_blocks_outside(evm);
		r = rr_run(rec, t, exit, who, e);
	}
	__atomic_store_n(&vm->rr.quiet, false, __ATOMIC_RELEASE);
	rec->replaying = false;
	return r;
}

/* --- the ops ----------------------------------------------------------------------- */

static int rr_record(struct vm *vm, bool on, uint64_t budget, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	struct emu_rec *rec = evm->rec;
	if (!rec)
		return err_set(e, ENOMEM, "no record state");
	if (on) {
		if (budget)
			rec->budget = budget;
		if (!rec->on)
			rec->want = true;
		return 0;
	}
	rr_leave(rec);
	rec->want = false;
	if (rec->on) {
		rec->on = false;
		__atomic_store_n(&vm->rr.queue_input, NULL, __ATOMIC_RELEASE);
		__atomic_store_n(&vm->rr.realtime, NULL, __ATOMIC_RELEASE);
		pthread_mutex_lock(&rec->lock);
		rr_forget(rec);
		pthread_mutex_unlock(&rec->lock);
	}
	return 0;
}

static void rr_info(struct vm *vm, struct engine_rr_info *info)
{
	struct emu_vm *evm = evm_of(vm);
	struct emu_rec *rec = evm->rec;
	memset(info, 0, sizeof(*info));
	info->now = emu_rr_icount(evm);
	if (!rec)
		return;
	info->recording = rec->on || rec->want;
	info->budget = rec->budget;
	info->period = rec->period;
	if (!rec->on)
		return;
	pthread_mutex_lock(&rec->lock);
	info->in_history = rec->in_history;
	info->end = rec->in_history ? rec->end : info->now;
	info->first = rec->nr_snaps ? rec->snaps[0].icount : info->now;
	info->snapshots = snap_count(rec->store);
	info->snap_bytes = snap_bytes(rec->store);
	info->events = rec->nr_ev;
	info->log_bytes = rr_log_bytes_locked(rec);
	pthread_mutex_unlock(&rec->lock);
}

static uint64_t rr_vcpu_count(struct vcpu *vcpu)
{
	struct emu_cpu *cpu = vcpu->engine;
	return cpu ? cpu->retired : 0;
}

static uint64_t rr_snap_before(struct vm *vm, uint64_t icount)
{
	struct emu_rec *rec = evm_of(vm)->rec;
	uint64_t at = UINT64_MAX;
	if (!rec)
		return at;
	pthread_mutex_lock(&rec->lock);
	for (size_t i = rec->nr_snaps; i-- > 0;)
		if (rec->snaps[i].icount < icount) {
			at = rec->snaps[i].icount;
			break;
		}
	pthread_mutex_unlock(&rec->lock);
	return at;
}

/* In struct vm: the debugger stays when a reset gives the machine a new
 * engine (and a new recording). */
static void rr_set_bp_hook(struct vm *vm, void (*fn)(void *opaque, bool lift), void *opaque)
{
	vm->rr.bp_hook = fn;
	vm->rr.bp_opaque = opaque;
}

const struct engine_rr_ops emu_rr_ops = {
	.record = rr_record,
	.info = rr_info,
	.vcpu_count = rr_vcpu_count,
	.seek = rr_seek,
	.snap_before = rr_snap_before,
	.set_bp_hook = rr_set_bp_hook,
	.mem_written = rr_mem_written,
};
