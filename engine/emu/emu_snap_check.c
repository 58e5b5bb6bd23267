/* engine/emu/emu_snap_check.c — a self-check of whole-machine snapshots
 * for tests (tests/test_snapshot.py) and a measurement for bench/snapshot,
 * switched on by the environment:
 *
 *     VMDB_SNAP_CHECK=N:W     take a snapshot at the first quantum boundary
 *                             where the vCPUs retired N instructions in all,
 *                             run to the first one at N+W, note the machine
 *                             there, restore the snapshot, run to that same
 *                             boundary again and compare.
 *     VMDB_SNAP_BENCH=P:R     take a snapshot every P instructions; at the
 *                             first boundary after R, restore the snapshots
 *                             1, 10, 100 back and the oldest, timing each,
 *                             then the newest, and run on from there. At
 *                             the end, one line of figures on stderr:
 *                             "vmdb: snapshot bench: name=value ...".
 *
 * "The machine" is every vCPU's registers (all parts), run state, retired
 * count and interrupt controllers, guest time, the devices' snapshot bytes
 * and a hash of all guest RAM. The verdict goes to stderr in one line,
 * "vmdb: snapshot check: ... identical" or "... differs: WHAT". The guest
 * then runs on. Quantum boundaries are where emu's run token changes hands
 * (snapshot.h's precondition), and the same state reaches the same boundary
 * at the same count, so nothing here depends on the host. */
#include "engine/emu/emu_core.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "machine/snapshot.h"

enum check_phase { CHECK_TAKE, CHECK_FIRST, CHECK_SECOND, CHECK_DONE, CHECK_BENCH };

#define BENCH_MAX_SNAPS 100000
#define BENCH_BACK      4           /* restores timed: 1, 10, 100 back, the oldest */

struct bench {
	uint64_t period, restore_at, next;
	size_t nr;
	uint64_t *icount, *take_ns, *bytes;   /* per snapshot taken */
	unsigned *taker;
	bool restored;
	uint64_t back_ns[BENCH_BACK], back_instr[BENCH_BACK];
};

#define CHECK_PARTS (3 * VM_MAX_VCPUS + 3)

struct emu_snap_check {
	enum check_phase phase;
	uint64_t take_at, window;
	uint64_t taken, compare_at;     /* counts where it happened */
	unsigned taker;                 /* whose quantum ended at the snapshot */
	struct snap_store *store;
	uint64_t first[CHECK_PARTS];    /* hashes of the parts at compare_at */
	uint64_t restore_ns;
	struct bench bench;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

/* RAM a word at a time: fast enough for tens of MiB. */
static uint64_t ram_hash(const struct vm *vm)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *p = vm->ram;
	for (uint64_t i = 0; i + 8 <= vm->ram_size; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}

static const char *part_name(unsigned part, char *buf, size_t size)
{
	if (part < 3 * VM_MAX_VCPUS) {
		static const char *const what[] = { "registers", "run state and retired count",
						    "interrupt controllers" };
		snprintf(buf, size, "vCPU %u %s", part / 3, what[part % 3]);
	} else {
		static const char *const what[] = { "guest time", "devices", "guest RAM" };
		snprintf(buf, size, "%s", what[part - 3 * VM_MAX_VCPUS]);
	}
	return buf;
}

static void machine_hash(struct emu_vm *evm, uint64_t *out)
{
	struct vm *vm = evm->vm;
	const uint64_t seed = 0xcbf29ce484222325ull;
	memset(out, 0, CHECK_PARTS * sizeof(*out));
	for (unsigned i = 0; i < evm->nr_cpus; i++) {
		if (!evm->cpus[i])
			continue;
		struct vcpu *vcpu = evm->cpus[i]->vcpu;
		struct x86_state st;
		struct engine_irqchip chip;
		bool run[2];
		memset(&st, 0, sizeof(st));
		memset(&chip, 0, sizeof(chip));
		vm->engine->vcpu->get_state(vcpu, X86_STATE_ALL, &st);
		vm->engine->vcpu->get_run_state(vcpu, &run[0], &run[1]);
		vm->engine->vcpu->irqchip_get(vcpu, &chip);
		out[3 * i] = fnv(seed, &st, sizeof(st));
		out[3 * i + 1] = fnv(fnv(seed, run, sizeof(run)), &evm->cpus[i]->retired,
				     sizeof(evm->cpus[i]->retired));
		out[3 * i + 2] = fnv(seed, &chip, sizeof(chip));
	}
	uint64_t ns = emu_guest_ns(evm);
	out[3 * VM_MAX_VCPUS] = fnv(seed, &ns, sizeof(ns));
	uint64_t h = seed;
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++) {
		const struct vm_snapshot_hook *hk = &vm->snapshot_hooks[i];
		uint8_t *buf = calloc(1, hk->size);
		if (!buf)
			continue;
		hk->save(hk->opaque, buf);
		h = fnv(h, buf, hk->size);
		free(buf);
	}
	out[3 * VM_MAX_VCPUS + 1] = h;
	out[3 * VM_MAX_VCPUS + 2] = ram_hash(vm);
}

static uint64_t retired_all(struct emu_vm *evm)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i])
			n += evm->cpus[i]->retired;
	return n;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void check_fail(struct emu_snap_check *c, const char *what, const struct err *e)
{
	fprintf(stderr, "vmdb: snapshot check: %s: %s\n", what, e->msg);
	c->phase = CHECK_DONE;
}

static unsigned check_take(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	struct err e = { 0 };
	if (snap_store_create(cpu->evm->vm, UINT64_MAX, &c->store, &e) < 0 ||
	    snap_take(c->store, now, &e) < 0) {
		check_fail(c, "taking", &e);
		return cpu->id;
	}
	c->taken = now;
	c->taker = cpu->id;
	c->phase = CHECK_FIRST;
	return cpu->id;
}

static unsigned check_restore(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	struct err e = { 0 };
	uint64_t at;
	c->compare_at = now;
	machine_hash(cpu->evm, c->first);
	uint64_t t0 = mono_ns();
	if (snap_restore(c->store, c->taken, &at, &e) < 0) {
		check_fail(c, "restoring", &e);
		return cpu->id;
	}
	c->restore_ns = mono_ns() - t0;
	c->phase = CHECK_SECOND;
	return c->taker;     /* the run goes on from the snapshot's quantum end */
}

static void check_compare(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	uint64_t second[CHECK_PARTS];
	char name[64];
	c->phase = CHECK_DONE;
	if (now != c->compare_at) {
		fprintf(stderr, "vmdb: snapshot check: differs: the second run reached %" PRIu64
			" instead of %" PRIu64 "\n", now, c->compare_at);
		return;
	}
	machine_hash(cpu->evm, second);
	for (unsigned i = 0; i < CHECK_PARTS; i++) {
		if (second[i] != c->first[i]) {
			fprintf(stderr, "vmdb: snapshot check: differs: %s at %" PRIu64 "\n",
				part_name(i, name, sizeof(name)), now);
			return;
		}
	}
	fprintf(stderr, "vmdb: snapshot check: took at %" PRIu64 ", ran to %" PRIu64 ", restored "
		"in %.2f ms, ran to %" PRIu64 " again: identical (%" PRIu64 " bytes of snapshot)\n",
		c->taken, c->compare_at, c->restore_ns / 1e6, now, snap_bytes(c->store));
}

/* --- VMDB_SNAP_BENCH ---------------------------------------------------------- */

static void bench_take(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	struct bench *b = &c->bench;
	struct err e = { 0 };
	uint64_t before = snap_bytes(c->store), t0 = mono_ns();
	if (snap_take(c->store, now, &e) < 0) {
		check_fail(c, "taking", &e);
		return;
	}
	if (b->nr < BENCH_MAX_SNAPS) {
		b->icount[b->nr] = now;
		b->take_ns[b->nr] = mono_ns() - t0;
		b->bytes[b->nr] = snap_bytes(c->store) - before;
		b->taker[b->nr] = cpu->id;
		b->nr++;
	}
	b->next = now + b->period;
}

/* Restores timed from here (RAM at its newest): 1, 10, 100 snapshots
 * back and the oldest; each starts from where the one before left RAM, as
 * a debugger going back and back would. Then the newest, to run on. */
static unsigned bench_restore(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	struct bench *b = &c->bench;
	static const size_t back[BENCH_BACK - 1] = { 1, 10, 100 };
	struct err e = { 0 };
	uint64_t at;
	b->restored = true;
	for (unsigned i = 0; i < BENCH_BACK && b->nr > 0; i++) {
		size_t k = i < BENCH_BACK - 1 ? (back[i] < b->nr ? b->nr - 1 - back[i] : SIZE_MAX) : 0;
		if (k == SIZE_MAX)
			continue;
		uint64_t t0 = mono_ns();
		if (snap_restore(c->store, b->icount[k], &at, &e) < 0) {
			check_fail(c, "restoring", &e);
			return cpu->id;
		}
		b->back_ns[i] = mono_ns() - t0;
		b->back_instr[i] = now - at;
	}
	if (b->nr == 0 || snap_restore(c->store, b->icount[b->nr - 1], &at, &e) < 0)
		return cpu->id;
	c->phase = CHECK_BENCH;
	return b->taker[b->nr - 1];
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void bench_report(struct emu_snap_check *c)
{
	struct bench *b = &c->bench;
	if (b->nr == 0)
		return;
	uint64_t sum = 0, max = 0, take_max = 0;
	for (size_t i = 1; i < b->nr; i++) {
		sum += b->bytes[i];
		max = b->bytes[i] > max ? b->bytes[i] : max;
	}
	uint64_t *ns = malloc(b->nr * sizeof(*ns));
	if (!ns)
		return;
	memcpy(ns, b->take_ns, b->nr * sizeof(*ns));
	qsort(ns, b->nr, sizeof(*ns), cmp_u64);
	take_max = ns[b->nr - 1];
	fprintf(stderr, "vmdb: snapshot bench: period=%" PRIu64 " snapshots=%zu first_bytes=%"
		PRIu64 " mean_bytes=%" PRIu64 " max_bytes=%" PRIu64 " kept_bytes=%" PRIu64
		" take_median_us=%.1f take_max_us=%.1f", b->period, b->nr, b->bytes[0],
		b->nr > 1 ? sum / (b->nr - 1) : 0, max, snap_bytes(c->store),
		ns[b->nr / 2] / 1e3, take_max / 1e3);
	static const char *const name[BENCH_BACK] = { "back1", "back10", "back100", "oldest" };
	for (unsigned i = 0; i < BENCH_BACK; i++)
		if (b->back_instr[i])
			fprintf(stderr, " restore_%s_ms=%.2f restore_%s_instr=%" PRIu64, name[i],
				b->back_ns[i] / 1e6, name[i], b->back_instr[i]);
	fprintf(stderr, "\n");
	free(ns);
}

static unsigned bench_point(struct emu_snap_check *c, struct emu_cpu *cpu, uint64_t now)
{
	struct bench *b = &c->bench;
	if (!b->restored && now >= b->restore_at)
		return bench_restore(c, cpu, now);
	if (now >= b->next)
		bench_take(c, cpu, now);
	return cpu->id;
}

unsigned emu_snap_check_point(struct emu_cpu *cpu)
{
	struct emu_snap_check *c = cpu->evm->snap_check;
	uint64_t now = retired_all(cpu->evm);
	switch (c->phase) {
	case CHECK_BENCH:
		return bench_point(c, cpu, now);
	case CHECK_TAKE:
		return now >= c->take_at ? check_take(c, cpu, now) : cpu->id;
	case CHECK_FIRST:
		return now >= c->taken + c->window ? check_restore(c, cpu, now) : cpu->id;
	case CHECK_SECOND:
		if (now >= c->compare_at)
			check_compare(c, cpu, now);
		return cpu->id;
	case CHECK_DONE:
		break;
	}
	return cpu->id;
}

static struct emu_snap_check *bench_create(struct emu_vm *evm, uint64_t period,
					    uint64_t restore_at)
{
	struct emu_snap_check *c = calloc(1, sizeof(*c));
	struct err e = { 0 };
	if (!c)
		return NULL;
	struct bench *b = &c->bench;
	b->icount = calloc(BENCH_MAX_SNAPS, sizeof(*b->icount));
	b->take_ns = calloc(BENCH_MAX_SNAPS, sizeof(*b->take_ns));
	b->bytes = calloc(BENCH_MAX_SNAPS, sizeof(*b->bytes));
	b->taker = calloc(BENCH_MAX_SNAPS, sizeof(*b->taker));
	if (!b->icount || !b->take_ns || !b->bytes || !b->taker ||
	    snap_store_create(evm->vm, UINT64_MAX, &c->store, &e) < 0) {
		fprintf(stderr, "vmdb: snapshot bench: %s\n", e.msg[0] ? e.msg : "out of memory");
		free(b->icount);
		free(b->take_ns);
		free(b->bytes);
		free(b->taker);
		free(c);
		return NULL;
	}
	b->period = period;
	b->restore_at = restore_at;
	c->phase = CHECK_BENCH;
	return c;
}

void emu_snap_check_create(struct emu_vm *evm)
{
	const char *v = getenv("VMDB_SNAP_CHECK");
	unsigned long long n, w;
	if (v && sscanf(v, "%llu:%llu", &n, &w) == 2 && w > 0) {
		struct emu_snap_check *c = calloc(1, sizeof(*c));
		if (!c)
			return;
		c->take_at = n;
		c->window = w;
		evm->snap_check = c;
		return;
	}
	v = getenv("VMDB_SNAP_BENCH");
	if (v && sscanf(v, "%llu:%llu", &n, &w) == 2 && n > 0)
		evm->snap_check = bench_create(evm, n, w);
}

void emu_snap_check_destroy(struct emu_vm *evm)
{
	struct emu_snap_check *c = evm->snap_check;
	if (!c)
		return;
	if (c->phase == CHECK_BENCH)
		bench_report(c);
	else if (c->phase != CHECK_DONE)
		fprintf(stderr, "vmdb: snapshot check: not finished (the guest ended first)\n");
	snap_store_destroy(c->store);
	free(c->bench.icount);
	free(c->bench.take_ns);
	free(c->bench.bytes);
	free(c->bench.taker);
	free(c);
	evm->snap_check = NULL;
}
