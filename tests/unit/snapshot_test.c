/* tests/unit/snapshot_test.c — machine/snapshot.c's store on a fake machine:
 * RAM of a few pages, an engine whose whole state is "the time", one
 * device with a counter. The machine executes a fixed program — at time t
 * it writes op[t] into a page — so going back and running forward again
 * repeats the same writes, as emu does; the test compares RAM and state
 * with the program's result at the restored time.
 *
 * Covers: the first snapshot and the incremental ones, restore before /
 * at / between snapshots, snapshots taken again while replaying, pages
 * that become all zeros, dropping the oldest within the budget (the merge
 * into the next one), forget_after, a reset ending the history, and the
 * error words.
 *
 * Prints one line per failed check; ends with "snapshot: N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "machine/snapshot.h"
#include "machine/vm.h"

#include "tests/unit/check.h"

#define PAGES   64
#define RAM     (PAGES * 4096ull)
#define STEPS   4000

/* --- the program ----------------------------------------------------------- */

struct op {
	unsigned page, offset;
	uint8_t value;
	bool clear;          /* the whole page back to zeros */
};

static struct op program[STEPS];

static void program_make(unsigned seed)
{
	srand(seed);
	for (unsigned t = 0; t < STEPS; t++) {
		/* a few hot pages, the rest touched now and then */
		unsigned page = rand() % 4 ? (unsigned)rand() % 8 : (unsigned)rand() % PAGES;
		program[t] = (struct op){ .page = page, .offset = (unsigned)rand() % 4096,
					  .value = (uint8_t)(rand() | 1), .clear = rand() % 50 == 0 };
	}
}

static void op_apply(uint8_t *ram, const struct op *o)
{
	if (o->clear)
		memset(ram + o->page * 4096ull, 0, 4096);
	else
		ram[o->page * 4096ull + o->offset] = o->value;
}

/* --- the fake machine -------------------------------------------------------- */

static uint64_t now;            /* the engine's state: the time */
static uint32_t device_count;   /* the device's state */
static unsigned ram_cleans;

static size_t fake_snap_size(struct vm *vm)
{
	(void)vm;
	return sizeof(now);
}

static int fake_snap_save(struct vm *vm, void *buf, size_t size, struct err *e)
{
	(void)vm;
	(void)e;
	memcpy(buf, &now, size);
	return 0;
}

static int fake_snap_restore(struct vm *vm, const void *buf, size_t size, struct err *e)
{
	(void)vm;
	(void)e;
	memcpy(&now, buf, size);
	return 0;
}

static void fake_ram_clean(struct vm *vm)
{
	(void)vm;
	ram_cleans++;
}

static const struct engine_snap_ops fake_snap = {
	.size = fake_snap_size, .save = fake_snap_save, .restore = fake_snap_restore,
	.ram_clean = fake_ram_clean,
};
static const struct engine_ops fake_engine = { .name = "fake", .snap = &fake_snap };
static const struct engine_ops no_snap_engine = { .name = "kvm" };

static void device_save(void *opaque, void *buf)
{
	(void)opaque;
	memcpy(buf, &device_count, sizeof(device_count));
}

static void device_restore(void *opaque, const void *buf)
{
	(void)opaque;
	memcpy(&device_count, buf, sizeof(device_count));
}

static struct vm *fake_vm(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	vm->ram = mmap(NULL, RAM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm->ram_size = vm->low_ram_size = RAM;
	vm->ram_frames = PAGES;
	vm->ram_dirty = calloc(1, sizeof(uint64_t));
	vm->ram_dirty[0] = ~0ull;
	vm->engine = &fake_engine;
	vm->nr_boots = 1;
	vm->snapshot_hooks[vm->nr_snapshot_hooks++] = (struct vm_snapshot_hook){
		"counter", sizeof(device_count), device_save, device_restore, NULL };
	now = 0;
	device_count = 0;
	return vm;
}

static void fake_vm_free(struct vm *vm)
{
	munmap(vm->ram, RAM);
	free(vm->ram_dirty);
	free(vm);
}

/* Execute the program from `now` to t, marking what it writes. */
static void run_to(struct vm *vm, uint64_t t)
{
	for (; now < t; now++) {
		const struct op *o = &program[now];
		vm_ram_dirty(vm, vm->ram + o->page * 4096ull, 1);
		op_apply(vm->ram, o);
		device_count = (uint32_t)now * 7;
	}
}

/* RAM and state as the program leaves them at time t. */
static bool machine_is_at(struct vm *vm, uint64_t t)
{
	static uint8_t want[RAM];
	memset(want, 0, sizeof(want));
	for (uint64_t i = 0; i < t; i++)
		op_apply(want, &program[i]);
	uint32_t count = t ? (uint32_t)(t - 1) * 7 : 0;
	return now == t && device_count == count && memcmp(vm->ram, want, RAM) == 0;
}

/* --- tests ------------------------------------------------------------------- */

static void test_basic(void)
{
	struct vm *vm = fake_vm();
	struct snap_store *s;
	struct err e = { 0 };
	uint64_t at;
	CHECK(snap_store_create(vm, 64 << 20, &s, &e) == 0, "create: %s", e.msg);
	CHECK_EQ(snap_count(s), 0);
	CHECK_EQ(snap_oldest(s), UINT64_MAX);
	CHECK(snap_restore(s, 10, &at, &e) == -ENOENT && strstr(e.msg, "empty"),
	      "restore without history: %s", e.msg);

	run_to(vm, 100);
	CHECK(snap_take(s, 100, &e) == 0, "take 100: %s", e.msg);
	uint64_t first = snap_bytes(s);
	run_to(vm, 200);
	CHECK(snap_take(s, 200, &e) == 0, "take 200: %s", e.msg);
	CHECK(snap_bytes(s) - first < first, "the second snapshot is incremental (%" PRIu64
	      " then %" PRIu64 " bytes)", first, snap_bytes(s) - first);
	run_to(vm, 300);
	CHECK(snap_take(s, 300, &e) == 0, "take 300: %s", e.msg);
	run_to(vm, 350);
	CHECK_EQ(snap_count(s), 3);
	CHECK_EQ(snap_oldest(s), 100);
	CHECK_EQ(snap_newest(s), 300);

	CHECK(snap_restore(s, 250, &at, &e) == 0 && at == 200, "restore 250: at %" PRIu64 " %s",
	      at, e.msg);
	CHECK(machine_is_at(vm, 200), "machine at 200");
	CHECK(snap_restore(s, 100, &at, &e) == 0 && at == 100, "restore 100");
	CHECK(machine_is_at(vm, 100), "machine at 100");
	CHECK(snap_restore(s, 1000, &at, &e) == 0 && at == 300, "restore to the newest");
	CHECK(machine_is_at(vm, 300), "machine at 300");
	CHECK(snap_restore(s, 99, &at, &e) == -ERANGE && strstr(e.msg, "100"),
	      "before the history: %s", e.msg);

	/* replaying forward from 100, with snapshots taken again on the way */
	CHECK(snap_restore(s, 100, &at, &e) == 0, "restore 100 again");
	run_to(vm, 150);
	CHECK(snap_take(s, 150, &e) == 0, "take 150 while replaying: %s", e.msg);
	run_to(vm, 200);
	CHECK(snap_take(s, 200, &e) == 0 && snap_count(s) == 4, "200 again: kept once");
	run_to(vm, 320);
	CHECK(snap_restore(s, 160, &at, &e) == 0 && at == 150 && machine_is_at(vm, 150),
	      "restore the one taken while replaying");
	CHECK(snap_restore(s, 310, &at, &e) == 0 && at == 300 && machine_is_at(vm, 300),
	      "and one after it");
	run_to(vm, 200);
	CHECK(snap_take(s, 100, &e) == -EINVAL, "a snapshot before the machine's state: %s",
	      e.msg);

	snap_forget_after(s, 160);
	CHECK(snap_count(s) == 2 && snap_newest(s) == 150, "forget after 160: %zu, newest %"
	      PRIu64, snap_count(s), snap_newest(s));
	CHECK(snap_restore(s, 1000, &at, &e) == 0 && at == 150 && machine_is_at(vm, 150),
	      "restore after forgetting");
	snap_forget_after(s, 0);
	CHECK(snap_count(s) == 0 && snap_bytes(s) == 0, "forget everything");
	run_to(vm, 500);
	CHECK(snap_take(s, 500, &e) == 0, "a new history: %s", e.msg);
	run_to(vm, 600);
	CHECK(snap_restore(s, 550, &at, &e) == 0 && machine_is_at(vm, 500), "from a new full one");
	CHECK(ram_cleans > 0, "the engine was told to mark writes again");

	vm->nr_boots++;     /* a reset */
	CHECK(snap_restore(s, 550, &at, &e) == -ENOENT && strstr(e.msg, "reset"),
	      "a reset ends the history: %s", e.msg);
	snap_store_destroy(s);
	fake_vm_free(vm);
}

/* Many snapshots in a small budget: the oldest go (merged into the next),
 * the rest still restore exactly, including the new oldest. */
static void test_budget(void)
{
	struct vm *vm = fake_vm();
	struct snap_store *s;
	struct err e = { 0 };
	uint64_t at;
	const uint64_t budget = 40 * 4096;
	CHECK(snap_store_create(vm, budget, &s, &e) == 0, "create: %s", e.msg);
	for (uint64_t t = 0; t <= 3000; t += 100) {
		run_to(vm, t);
		CHECK(snap_take(s, t, &e) == 0, "take %" PRIu64 ": %s", t, e.msg);
		CHECK(snap_bytes(s) <= budget || snap_count(s) == 1, "%" PRIu64 " bytes in a budget "
		      "of %" PRIu64, snap_bytes(s), budget);
	}
	CHECK(snap_oldest(s) > 0 && snap_newest(s) == 3000, "oldest %" PRIu64 " newest %" PRIu64,
	      snap_oldest(s), snap_newest(s));
	run_to(vm, 3050);
	uint64_t oldest = snap_oldest(s);
	CHECK(snap_restore(s, oldest, &at, &e) == 0 && at == oldest && machine_is_at(vm, oldest),
	      "the new oldest after merges: %s", e.msg);
	CHECK(snap_restore(s, oldest - 1, &at, &e) == -ERANGE, "before the oldest");
	for (uint64_t t = 3000; t >= oldest && t <= 3000; t -= 100) {
		CHECK(snap_restore(s, t + 50, &at, &e) == 0 && at == t && machine_is_at(vm, t),
		      "restore %" PRIu64 ": %s", t, e.msg);
	}
	snap_store_destroy(s);
	fake_vm_free(vm);
}

/* Random walks: run forward, take, go back, forget, within a budget. */
static void test_random(unsigned seed)
{
	struct vm *vm = fake_vm();
	struct snap_store *s;
	struct err e = { 0 };
	uint64_t at;
	srand(seed * 7919u);
	CHECK(snap_store_create(vm, 24 * 4096, &s, &e) == 0, "create: %s", e.msg);
	for (unsigned round = 0; round < 300; round++) {
		unsigned what = (unsigned)rand() % 10;
		if (what < 5 && now < STEPS - 100) {
			run_to(vm, now + 1 + (unsigned)rand() % 60);
			CHECK(snap_take(s, now, &e) == 0, "take %" PRIu64 ": %s", now, e.msg);
		} else if (what < 9 && snap_count(s) > 0) {
			uint64_t lo = snap_oldest(s), hi = now;
			uint64_t target = lo + (uint64_t)rand() % (hi - lo + 1);
			int r = snap_restore(s, target, &at, &e);
			CHECK(r == 0 && at <= target && machine_is_at(vm, at),
			      "seed %u round %u: restore %" PRIu64 " -> %" PRIu64 ": %s", seed,
			      round, target, at, e.msg);
		} else if (snap_count(s) > 0) {
			snap_forget_after(s, now);
		}
	}
	snap_store_destroy(s);
	fake_vm_free(vm);
}

static void test_no_snapshots(void)
{
	struct vm *vm = fake_vm();
	struct snap_store *s = NULL;
	struct err e = { 0 };
	vm->engine = &no_snap_engine;
	CHECK(snap_store_create(vm, 1 << 20, &s, &e) == -ENOTSUP && !s &&
	      strstr(e.msg, "reverse execution needs the emu engine"), "kvm: %s", e.msg);
	fake_vm_free(vm);
}

int main(void)
{
	program_make(1);
	test_basic();
	test_budget();
	for (unsigned seed = 1; seed <= 20; seed++) {
		program_make(seed);
		test_random(seed);
	}
	test_no_snapshots();
	return check_summary("snapshot");
}
