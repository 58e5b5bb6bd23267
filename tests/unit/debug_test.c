/* tests/unit/debug_test.c — the debug core against the scripted fake
 * engine (tests/unit/fake_engine.h: one-byte instructions, 0xcc is INT3).
 * Real vCPU threads run the same loop as machine/vm.c, so the park,
 * stop-all and step-over paths are the real ones. Prints one line per
 * check and "debug: N passed, M failed". */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "debug/debug.h"
#include "debug/debug_int.h"     /* the door (debug/vcpu.c) and the run states */
#include "machine/vm.h"
#include "tests/unit/fake_engine.h"

#define NVCPUS 2
#define RAM_SIZE FAKE_RAM_SIZE

#include "tests/unit/check.h"

/* The machine/ functions the debug core uses, over the fake RAM. */
void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	if (gpa >= vm->ram_size || len > vm->ram_size - gpa)
		return NULL;
	return vm->ram + gpa;
}

/* No test resets the machine: stopping it is all a reset starts with. */
void vm_request_reset(struct vm *vm, const char *why)
{
	(void)why;
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
}

unsigned vm_ram_ranges(const struct vm *vm, struct vm_ram_range out[2])
{
	out[0] = (struct vm_ram_range){ 0, vm->ram_size };
	return 1;
}

int vm_read_phys(void *vm, uint64_t gpa, void *buf, size_t len)
{
	void *host = vm_gpa_to_host(vm, gpa, len);
	if (!host)
		return -EFAULT;
	memcpy(buf, host, len);
	return 0;
}

bool vm_describe_fatal(struct vcpu *vcpu, const struct vm_exit *exit, char *out, size_t size)
{
	snprintf(out, size, "vCPU %u: fatal exit %d", vcpu->id, (int)exit->reason);
	return true;
}

/* The fake machine's devices: port I/O counted on whichever thread. */
enum vm_device_exit vm_handle_device_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	if (exit->reason != VM_EXIT_IO && exit->reason != VM_EXIT_MMIO)
		return VM_DEVICE_EXIT_NOT;
	fake_cpu_of(vcpu)->outs_handled++;
	return vm_stopping(vcpu->vm) ? VM_DEVICE_EXIT_STOPPING : VM_DEVICE_EXIT_DONE;
}

static int notifications;   /* atomic */

static void on_notify(void *opaque)
{
	(void)opaque;
	__atomic_add_fetch(&notifications, 1, __ATOMIC_SEQ_CST);
}

struct rig {
	struct vm *vm;
	struct fake_cpu cpus[NVCPUS];
	bool threads;
};

static void rig_init_on(struct rig *r, bool wait_gdb, const struct engine_ops *engine)
{
	struct err e = { 0 };
	memset(r->cpus, 0, sizeof(r->cpus));
	r->vm = calloc(1, sizeof(*r->vm));
	r->vm->engine = engine;
	r->vm->ram = calloc(1, RAM_SIZE);
	r->vm->ram_size = RAM_SIZE;
	memset(r->vm->ram, 0x90, RAM_SIZE);
	r->vm->nr_vcpus = NVCPUS;
	pthread_mutex_init(&r->vm->lock, NULL);
	for (unsigned i = 0; i < NVCPUS; i++) {
		r->vm->vcpus[i].vm = r->vm;
		r->vm->vcpus[i].id = i;
		r->vm->vcpus[i].engine = &r->cpus[i];
		r->cpus[i].regs.rip = 0x100;
		r->cpus[i].shared = engine == &fake_shared_engine;
		r->cpus[i].dr = (struct x86_debugregs){ .dr6 = DR6_INIT, .dr7 = DR7_INIT };
	}
	r->threads = false;
	int rc = debug_create(r->vm, wait_gdb, on_notify, NULL, &e);
	CHECK(rc == 0, "debug_create: %s", e.msg);
}

static void rig_init(struct rig *r, bool wait_gdb)
{
	rig_init_on(r, wait_gdb, &fake_engine);
}

static void rig_start(struct rig *r)
{
	for (unsigned i = 0; i < NVCPUS; i++)
		pthread_create(&r->vm->vcpus[i].thread, NULL, fake_vcpu_thread, &r->vm->vcpus[i]);
	r->threads = true;
}

static void rig_fini(struct rig *r)
{
	__atomic_store_n(&r->vm->stopping, true, __ATOMIC_SEQ_CST);
	r->vm->debug_hooks->on_vm_stop(r->vm, 0, "");
	if (r->threads)
		for (unsigned i = 0; i < NVCPUS; i++)
			pthread_join(r->vm->vcpus[i].thread, NULL);
	debug_destroy(r->vm);
	pthread_mutex_destroy(&r->vm->lock);
	free(r->vm->ram);
	free(r->vm);
}

/* Wait (bounded) for an event to be queued. */
static bool wait_event(struct debug *d)
{
	for (int i = 0; i < 30000; i++) {
		if (debug_has_event(d))
			return true;
		usleep(1000);
	}
	return false;
}

static void resume_all(struct debug *d, enum debug_action act)
{
	enum debug_action actions[NVCPUS];
	struct err e = { 0 };
	for (unsigned i = 0; i < NVCPUS; i++)
		actions[i] = act;
	int rc = debug_resume(d, actions, &e);
	CHECK(rc >= 0, "debug_resume: %s", e.msg);
}

/* ---- the checks ---- */

static void test_breakpoint_bytes(void)
{
	struct rig r;
	struct err e = { 0 };
	uint8_t b[4];
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	ram[0x1000] = 0x55;
	CHECK(debug_sw_insert(d, 0, 0x1000, false, &e) == 0, "insert: %s", e.msg);
	CHECK(ram[0x1000] == 0xcc, "int3 written: %#x", ram[0x1000]);
	CHECK(debug_sw_insert(d, 0, 0x1000, false, &e) == 0, "insert twice");
	CHECK(debug_nr_sw_breakpoints(d) == 1, "one breakpoint, got %u", debug_nr_sw_breakpoints(d));
	CHECK(debug_mem_read(d, 0, 0xfff, b, 3, false) == 0 && b[1] == 0x55,
	      "read shows the original byte: %#x", b[1]);
	b[0] = 0x66;
	CHECK(debug_mem_write(d, 0, 0x1000, b, 1, false) == 0, "write over the breakpoint");
	CHECK(ram[0x1000] == 0xcc, "int3 stays after a write: %#x", ram[0x1000]);
	CHECK(debug_mem_read(d, 0, 0x1000, b, 1, true) == 0 && b[0] == 0x66,
	      "read shows the written byte: %#x", b[0]);
	CHECK(debug_sw_remove(d, 0x1000, false, &e) == 0, "remove");
	CHECK(ram[0x1000] == 0x66, "the written byte is restored: %#x", ram[0x1000]);
	CHECK(debug_sw_remove(d, 0x1000, false, &e) == -ENOENT, "remove twice: ENOENT");
	CHECK(debug_sw_insert(d, 0, RAM_SIZE + 5, false, &e) == -EFAULT, "outside RAM: EFAULT");
	CHECK(debug_mem_read(d, 0, RAM_SIZE - 2, b, 4, false) == -EFAULT,
	      "read running off RAM: EFAULT");
	CHECK(debug_mem_read(d, 0, UINT64_MAX - 1, b, 4, false) == -EFAULT, "wrapping read");

	ram[0x2000] = 0x11;
	ram[0x2001] = 0x22;
	debug_sw_insert(d, 0, 0x2000, false, &e);
	debug_sw_insert(d, 0, 0x2001, false, &e);
	CHECK(debug_hw_insert(d, 0x3000, &e) == 0, "hw insert");
	for (unsigned i = 1; i < 4; i++)
		debug_hw_insert(d, 0x3000 + i, &e);
	CHECK(debug_hw_insert(d, 0x4000, &e) == -ENOSPC, "fifth hw breakpoint: ENOSPC");
	debug_remove_all_breakpoints(d);
	CHECK(ram[0x2000] == 0x11 && ram[0x2001] == 0x22, "remove all restores bytes");
	CHECK(debug_nr_hw_breakpoints(d) == 0, "remove all clears DR slots");
	rig_fini(&r);
}

static void test_queue_order_and_guest_int3(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	const struct vm_debug_hooks *h = r.vm->debug_hooks;

	debug_sw_insert(d, 0, 0x1000, false, &e);
	struct vm_exit x = { .reason = VM_EXIT_BPT, .bpt.pc = 0x1000 };
	CHECK(h->on_exit(r.vm, &r.vm->vcpus[1], &x), "our int3 is consumed");
	CHECK(h->on_exit(r.vm, &r.vm->vcpus[0], &x), "our int3 is consumed (vCPU 0)");
	x.bpt.pc = 0x5000;
	CHECK(!h->on_exit(r.vm, &r.vm->vcpus[0], &x), "the guest's own int3 is not ours");
	CHECK(r.cpus[1].regs.rip == 0x1000, "PC set to the breakpoint: %#llx",
	      (unsigned long long)r.cpus[1].regs.rip);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.vcpu == 1,
	      "first event: vCPU 1's hit (kind %d vcpu %u)", ev.kind, ev.vcpu);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.vcpu == 0,
	      "second event: vCPU 0's hit");
	CHECK(!debug_next_event(d, &ev), "queue empty");
	rig_fini(&r);
}

static void test_step_and_continue_from_breakpoint(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;
	enum debug_action actions[NVCPUS] = { DEBUG_ACT_STEP, DEBUG_ACT_STOP };

	r.cpus[0].regs.rip = 0x1000;
	r.cpus[1].regs.rip = 0x8000;
	debug_sw_insert(d, 0, 0x1000, false, &e);
	debug_sw_insert(d, 0, 0x1010, false, &e);
	rig_start(&r);
	debug_stop_all(d);

	/* step from the breakpoint: the original instruction runs once */
	CHECK(debug_resume(d, actions, &e) >= 0, "step: %s", e.msg);
	CHECK(wait_event(d), "step reported");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_STEP && ev.vcpu == 0,
	      "a step event for vCPU 0 (kind %d)", ev.kind);
	CHECK(r.cpus[0].regs.rip == 0x1001, "one instruction: rip %#llx",
	      (unsigned long long)r.cpus[0].regs.rip);
	CHECK(ram[0x1000] == 0xcc, "breakpoint re-inserted after the step");
	CHECK(r.cpus[1].regs.rip == 0x8000, "the other vCPU stayed parked");
	CHECK(__atomic_load_n(&notifications, __ATOMIC_SEQ_CST) >= 1, "client notified");

	/* continue from a breakpoint: run on to the next one */
	r.cpus[0].regs.rip = 0x1000;
	actions[0] = DEBUG_ACT_CONTINUE;
	CHECK(debug_resume(d, actions, &e) >= 0, "continue: %s", e.msg);
	CHECK(wait_event(d), "next breakpoint reported");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.addr == 0x1010,
	      "hit the breakpoint at 0x1010 (kind %d addr %#llx)", ev.kind,
	      (unsigned long long)ev.addr);
	CHECK(ram[0x1000] == 0xcc, "first breakpoint still inserted");
	rig_fini(&r);
}

static void test_simultaneous_hits_none_lost(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;

	/* both vCPUs one instruction before the breakpoint: both may hit at
	 * once (a parked vCPU right on it would be stepped over it) */
	debug_sw_insert(d, 0, 0x1000, false, &e);
	r.cpus[0].regs.rip = 0x0fff;
	r.cpus[1].regs.rip = 0x0fff;
	rig_start(&r);
	debug_stop_all(d);
	resume_all(d, DEBUG_ACT_CONTINUE);
	CHECK(wait_event(d), "a hit reported");
	usleep(20000);
	debug_stop_all(d);
	bool seen[NVCPUS] = { false };
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK, "first hit");
	seen[ev.vcpu] = true;
	/* the other vCPU either hit too (queued: reported without running) or
	 * was kicked before it got there (it hits after the resume) */
	enum debug_action only_other[NVCPUS];
	for (unsigned i = 0; i < NVCPUS; i++)
		only_other[i] = seen[i] ? DEBUG_ACT_STOP : DEBUG_ACT_CONTINUE;
	int rc = debug_resume(d, only_other, &e);
	CHECK(rc >= 0, "resume the other: %s", e.msg);
	CHECK(wait_event(d), "second hit reported");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && !seen[ev.vcpu],
	      "second hit from the other vCPU");
	rig_fini(&r);
}

static void test_stale_event_dropped(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev = { 0 };
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	const struct vm_debug_hooks *h = r.vm->debug_hooks;
	enum debug_action only0[NVCPUS] = { DEBUG_ACT_CONTINUE, DEBUG_ACT_STOP };
	enum debug_action only1[NVCPUS] = { DEBUG_ACT_STOP, DEBUG_ACT_CONTINUE };

	debug_sw_insert(d, 0, 0x1000, false, &e);
	struct vm_exit x = { .reason = VM_EXIT_BPT, .bpt.pc = 0x1000 };
	h->on_exit(r.vm, &r.vm->vcpus[1], &x);
	r.cpus[1].regs.rip = 0x1000;
	r.cpus[0].regs.rip = 0x100;
	rig_start(&r);
	/* gdb steps vCPU 0 over the breakpoint with the breakpoint removed:
	 * vCPU 1's hit must neither be reported for vCPU 0 nor be dropped */
	debug_sw_remove(d, 0x1000, false, &e);
	CHECK(debug_resume(d, only0, &e) == 0, "resume vCPU 0 only runs it");
	debug_stop_all(d);
	CHECK(!debug_has_event(d), "no event of vCPU 1 while only vCPU 0 ran");
	debug_sw_insert(d, 0, 0x1000, false, &e);
	CHECK(debug_resume(d, only1, &e) == 1, "vCPU 1's queued hit reported without running");
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.vcpu == 1,
	      "it is vCPU 1's hit (kind %d vcpu %u)", ev.kind, ev.vcpu);

	/* a hit whose breakpoint is gone by the time its vCPU resumes is dropped */
	h->on_exit(r.vm, &r.vm->vcpus[1], &x);
	debug_sw_remove(d, 0x1000, false, &e);
	resume_all(d, DEBUG_ACT_CONTINUE);
	usleep(10000);
	debug_stop_all(d);
	bool any = false;
	while (debug_next_event(d, &ev))
		any = any || ev.kind == DEBUG_EV_SWBREAK;
	CHECK(!any, "an event for a removed breakpoint is dropped on resume");
	rig_fini(&r);
}

/* ---- exception catching ---- */

/* A 64-bit interrupt gate for vector v at idt, handler h. */
static void put_gate(uint8_t *idt, unsigned v, uint64_t h)
{
	uint8_t *g = idt + 16 * v;
	memset(g, 0, 16);
	g[0] = (uint8_t)h;
	g[1] = (uint8_t)(h >> 8);
	g[2] = 0x08;
	g[5] = 0x8e;
	g[6] = (uint8_t)(h >> 16);
	g[7] = (uint8_t)(h >> 24);
}

static void long_mode_idt(struct rig *r, uint64_t base)
{
	for (unsigned i = 0; i < NVCPUS; i++) {
		r->cpus[i].sregs.cr0 = CR0_PE;
		r->cpus[i].sregs.efer = EFER_LMA | EFER_LME;
		r->cpus[i].sregs.idt = (struct x86_dtable){ base, 16 * 32 - 1 };
	}
}

/* Run everyone to the next event; return it (after a stop-all). */
static struct debug_event run_to_event(struct debug *d)
{
	struct debug_event ev = { .kind = DEBUG_EV_EXITED };
	resume_all(d, DEBUG_ACT_CONTINUE);
	CHECK(wait_event(d), "an event");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev), "event popped");
	while (debug_has_event(d)) {      /* the other vCPU may have hit too */
		struct debug_event more;
		debug_next_event(d, &more);
	}
	return ev;
}

static void test_catch(void)
{
	struct rig r;
	struct err e = { 0 };
	char text[512];
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	long_mode_idt(&r, 0x6000);
	put_gate(ram + 0x6000, X86_PF, 0x2000);
	put_gate(ram + 0x6000, X86_UD, 0x2400);
	ram[0x2000] = 0x55;
	CHECK(debug_vector_parse("pf") == X86_PF && debug_vector_parse("#UD") == X86_UD &&
	      debug_vector_parse("0xd") == X86_GP && debug_vector_parse("32") < 0 &&
	      debug_vector_parse("xx") < 0, "vector names");
	rig_start(&r);
	debug_stop_all(d);

	/* a free DR slot first: guest memory untouched */
	CHECK(debug_catch_set(d, 1u << X86_PF, &e) == 0, "catch pf");
	CHECK(ram[0x2000] == 0x55, "no int3 while a DR slot is free");
	debug_catch_describe(d, X86_PF, text, sizeof(text));
	CHECK(strstr(text, "handler 0x2000, debug register DR0, 2 of 2 vCPUs"), "listing: %s", text);
	struct debug_event ev = run_to_event(d);
	CHECK(ev.kind == DEBUG_EV_CATCH && ev.vector == X86_PF && ev.addr == 0x2000,
	      "caught #PF at its handler via DR0 (kind %d vector %u addr %#llx)", ev.kind,
	      ev.vector, (unsigned long long)ev.addr);

	/* DR0-3 taken by the client: int3, hidden from reads */
	for (unsigned i = 0; i < 4; i++)
		debug_hw_insert(d, RAM_SIZE + 0x100 * i, &e);   /* never executed */
	ev = run_to_event(d);     /* re-armed at this resume (the slot went to the client) */
	CHECK(ram[0x2000] == 0xcc, "int3 at the handler once the DR slots are gone");
	CHECK(ev.kind == DEBUG_EV_CATCH && ev.vector == X86_PF, "caught via int3 (kind %d)",
	      ev.kind);
	uint8_t b;
	CHECK(debug_mem_read(d, 0, 0x2000, &b, 1, false) == 0 && b == 0x55, "int3 hidden: %#x", b);

	/* the client's breakpoint on the same byte wins, and leaves catch's int3 behind */
	CHECK(debug_sw_insert(d, 0, 0x2000, false, &e) == 0, "client bp on the handler");
	ev = run_to_event(d);
	CHECK(ev.kind == DEBUG_EV_SWBREAK, "the client's breakpoint reported (kind %d)", ev.kind);
	CHECK(debug_sw_remove(d, 0x2000, false, &e) == 0 && ram[0x2000] == 0xcc,
	      "catch keeps its int3");

	/* the guest loads another IDT: followed at the next resume */
	memcpy(ram + 0x7000, ram + 0x6000, 16 * 32);
	put_gate(ram + 0x7000, X86_PF, 0x3000);
	for (unsigned i = 0; i < NVCPUS; i++)
		r.cpus[i].sregs.idt.base = 0x7000;
	ev = run_to_event(d);
	CHECK(ram[0x2000] == 0x55 && ram[0x3000] == 0xcc, "old int3 gone, new one in: %#x %#x",
	      ram[0x2000], ram[0x3000]);
	CHECK(ev.kind == DEBUG_EV_CATCH && ev.addr == 0x3000, "caught at the new handler %#llx",
	      (unsigned long long)ev.addr);

	/* gates that cannot be followed say why */
	ram[0x7000 + 16 * X86_UD + 5] = 0x0e;          /* P clear */
	CHECK(debug_catch_set(d, (1u << X86_PF) | (1u << X86_UD), &e) == 0, "catch pf ud");
	debug_catch_describe(d, X86_UD, text, sizeof(text));
	CHECK(strstr(text, "gate not present"), "not-present gate: %s", text);
	CHECK(debug_catch_set(d, 0, &e) == 0 && ram[0x3000] == 0 + 0x90, "catch off restores");
	debug_remove_all_breakpoints(d);
	rig_fini(&r);
}

/* 5-level paging and 1 GiB pages through debug_mem_read. */
static void test_paging_5level_1g(void)
{
	struct rig r;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;
	uint64_t *pml5 = (uint64_t *)(ram + 0x10000), *pml4 = (uint64_t *)(ram + 0x11000);
	uint64_t *pdpt = (uint64_t *)(ram + 0x12000);
	const uint64_t va = (1ull << 48) | (2ull << 30) | 0x1234;   /* PML5 1, PML4 0, PDPT 2 */

	pml5[1] = 0x11000 | 3;
	pml4[0] = 0x12000 | 3;
	pdpt[2] = 0x0 | 0x83;             /* 1 GiB page onto physical 0 */
	for (unsigned i = 0; i < NVCPUS; i++) {
		struct x86_sregs *s = &r.cpus[i].sregs;
		s->cr0 = CR0_PE | CR0_PG;
		s->cr4 = CR4_PAE | CR4_LA57;
		s->efer = EFER_LMA | EFER_LME;
		s->cr3 = 0x10000;
	}
	memcpy(ram + 0x1234, "5lvl", 4);
	char buf[4];
	CHECK(debug_mem_read(d, 0, va, buf, 4, false) == 0 && memcmp(buf, "5lvl", 4) == 0,
	      "read through PML5 -> 1 GiB page");
	CHECK(debug_mem_read(d, 0, va + (1ull << 30), buf, 4, false) == -EFAULT,
	      "the next 1 GiB is not mapped");
	CHECK(debug_mem_write(d, 0, va + 0x10, "ok", 2, false) == 0 && memcmp(ram + 0x1244, "ok", 2) == 0,
	      "write through it");
	rig_fini(&r);
}

/* debug/vcpu.c: one engine get per part and park, writes go through, a
 * refused write reaches the client once with words. */
static void test_state_cache(void)
{
	struct rig r;
	struct err e = { 0 };
	struct x86_regs regs;
	struct debug_cpu_state st;
	rig_init(&r, true);
	rig_start(&r);
	struct debug *d = r.vm->debug;
	struct fake_cpu *c = &r.cpus[0];
	debug_stop_all(d);

	CHECK(debug_read_regs(d, 0, &regs) == 0 && debug_read_regs(d, 0, &regs) == 0 &&
	      debug_read_state(d, 0, &st) == 0 && debug_read_state(d, 0, &st) == 0,
	      "reads while parked");
	CHECK(c->gets[0] == 1 && c->gets[1] == 1 && c->gets[2] == 1 && c->gets[4] == 1,
	      "one get per part and park: regs %u sregs %u fpu %u msrs %u", c->gets[0],
	      c->gets[1], c->gets[2], c->gets[4]);
	st.regs.rip = 0x200;
	CHECK(debug_write_state(d, 0, &st, DEBUG_STATE_REGS, &e) == 0, "write: %s", e.msg);
	CHECK(c->regs.rip == 0x200 && c->sets[0] == 1, "written through: rip %#llx, %u sets",
	      (unsigned long long)c->regs.rip, c->sets[0]);
	CHECK(debug_read_regs(d, 0, &regs) == 0 && regs.rip == 0x200 && c->gets[0] == 1,
	      "the write is the cache: rip %#llx, %u gets", (unsigned long long)regs.rip,
	      c->gets[0]);

	unsigned steps = c->steps;
	resume_all(d, DEBUG_ACT_CONTINUE);
	for (int i = 0; i < 5000 && __atomic_load_n(&c->steps, __ATOMIC_SEQ_CST) == steps; i++)
		usleep(1000);
	debug_stop_all(d);
	CHECK(debug_read_regs(d, 0, &regs) == 0 && c->gets[0] == 2 && regs.rip == c->regs.rip,
	      "read afresh after the vCPU ran: %u gets, rip %#llx", c->gets[0],
	      (unsigned long long)regs.rip);

	c->fail_sets = -EIO;
	e.msg[0] = '\0';
	CHECK(debug_write_state(d, 0, &st, DEBUG_STATE_REGS, &e) == -EIO && e.msg[0],
	      "a refused write says so: %s", e.msg);
	CHECK(debug_vcpu_take_write_error(d, &e) == 0, "... once, to the writer");
	CHECK(debug_vcpu_put_regs(d, 0, &st.regs, "a test fix-up") == -EIO, "fix-up refused");
	enum debug_action stop[NVCPUS] = { DEBUG_ACT_STOP, DEBUG_ACT_STOP };
	stop[0] = DEBUG_ACT_CONTINUE;
	e.msg[0] = '\0';
	CHECK(debug_resume(d, stop, &e) == -EIO && strstr(e.msg, "a test fix-up"),
	      "the next resume reports it: %s", e.msg);
	c->fail_sets = 0;
	CHECK(debug_read_regs(d, 0, &regs) == 0 && c->gets[0] == 3,
	      "a refused write drops the cache: %u gets", c->gets[0]);
	rig_fini(&r);
}

/* MSRs by number: through the engine, a write drops what is cached, and
 * what the CPU lacks or refuses comes back in words. */
static void test_msr_door(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_cpu_state st;
	uint64_t v = 0;
	rig_init(&r, true);
	rig_start(&r);
	struct debug *d = r.vm->debug;
	struct fake_cpu *c = &r.cpus[1];
	debug_stop_all(d);

	CHECK(debug_read_state(d, 1, &st) == 0 && st.sregs.fs.base == 0, "fs base 0 first");
	CHECK(debug_msr_write(d, 1, 0xc0000100, 0x7000, &e) == 0 && c->sregs.fs.base == 0x7000,
	      "write reaches the engine: %s", e.msg);
	CHECK(debug_read_state(d, 1, &st) == 0 && st.sregs.fs.base == 0x7000 && c->gets[1] == 2,
	      "the cache forgot the vCPU: fs base %#llx, %u sregs gets",
	      (unsigned long long)st.sregs.fs.base, c->gets[1]);
	CHECK(debug_msr_read(d, 1, 0xc0000100, &v, &e) == 0 && v == 0x7000, "read back %#llx",
	      (unsigned long long)v);
	CHECK(debug_msr_read(d, 1, 0x12345, &v, &e) == -ENOENT &&
	      strstr(e.msg, "vCPU 1 has no MSR 0x12345"), "missing MSR: %s", e.msg);
	CHECK(debug_msr_write(d, 1, 0xc0000080, 0x2, &e) == -EINVAL &&
	      strstr(e.msg, "refuses 0x2 in MSR 0xc0000080"), "refused value: %s", e.msg);
	CHECK(debug_msr_read(d, NVCPUS, 0xc0000080, &v, &e) == -ESRCH, "no such vCPU: %s", e.msg);
	rig_fini(&r);
}

/* run_state.c: the table of legal moves. */
static void test_run_state_table(void)
{
	static const struct { enum debug_run from, to; bool legal; } moves[] = {
		{ DEBUG_RUN_PARKED, DEBUG_RUN_RELEASED, true },
		{ DEBUG_RUN_PARKED, DEBUG_RUN_LENT, true },
		{ DEBUG_RUN_RELEASED, DEBUG_RUN_RUNNING, true },
		{ DEBUG_RUN_RELEASED, DEBUG_RUN_PARKED, true },
		{ DEBUG_RUN_RUNNING, DEBUG_RUN_STOPPING, true },
		{ DEBUG_RUN_STOPPING, DEBUG_RUN_PARKED, true },
		{ DEBUG_RUN_STOPPING, DEBUG_RUN_STEP_SPIN, true },
		{ DEBUG_RUN_STOPPING, DEBUG_RUN_RUNNING, true },
		{ DEBUG_RUN_STEP_SPIN, DEBUG_RUN_RELEASED, true },
		{ DEBUG_RUN_STEP_SPIN, DEBUG_RUN_PARKED, true },
		{ DEBUG_RUN_LENT, DEBUG_RUN_PARKED, true },
		{ DEBUG_RUN_PARKED, DEBUG_RUN_PARKED, true },
		{ DEBUG_RUN_PARKED, DEBUG_RUN_RUNNING, false },   /* never without a release */
		{ DEBUG_RUN_RUNNING, DEBUG_RUN_PARKED, false },   /* a stop comes first */
		{ DEBUG_RUN_RUNNING, DEBUG_RUN_LENT, false },     /* only a parked vCPU is lent */
		{ DEBUG_RUN_LENT, DEBUG_RUN_RUNNING, false },
		{ DEBUG_RUN_LENT, DEBUG_RUN_RELEASED, false },
		{ DEBUG_RUN_STOPPING, DEBUG_RUN_LENT, false },
		{ DEBUG_RUN_NR, DEBUG_RUN_PARKED, false },
	};
	for (size_t i = 0; i < sizeof(moves) / sizeof(moves[0]); i++)
		CHECK(debug_run_legal(moves[i].from, moves[i].to) == moves[i].legal,
		      "%s -> %s is %s", debug_run_name(moves[i].from), debug_run_name(moves[i].to),
		      moves[i].legal ? "legal" : "illegal");

	struct rig r;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	rig_start(&r);
	debug_stop_all(d);
	CHECK(debug_run_of(d, 0) == DEBUG_RUN_PARKED && debug_run_of(d, 1) == DEBUG_RUN_PARKED,
	      "stopped: both parked (%s, %s)", debug_run_name(debug_run_of(d, 0)),
	      debug_run_name(debug_run_of(d, 1)));
	resume_all(d, DEBUG_ACT_CONTINUE);
	for (int i = 0; i < 5000 && debug_run_of(d, 0) != DEBUG_RUN_RUNNING; i++)
		usleep(1000);
	CHECK(debug_run_of(d, 0) == DEBUG_RUN_RUNNING, "released, then running: %s",
	      debug_run_name(debug_run_of(d, 0)));
	debug_stop_all(d);
	CHECK(debug_run_of(d, 0) == DEBUG_RUN_PARKED, "stopped again: %s",
	      debug_run_name(debug_run_of(d, 0)));
	rig_fini(&r);
}

/* lend.c: a step lent to the client's thread that meets port I/O has the
 * machine handle it there, once, and runs on to the step's end; the
 * vCPU's own thread stays parked. */
static void test_lent_step_handles_port_io(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init_on(&r, true, &fake_lending_engine);
	struct debug *d = r.vm->debug;
	debug_apply_engine(d, 0);
	enum debug_action actions[NVCPUS] = { DEBUG_ACT_STEP, DEBUG_ACT_STOP };
	r.vm->ram[0x3000] = 0xe6;
	r.cpus[0].regs.rip = 0x3000;
	r.cpus[1].regs.rip = 0x8000;
	rig_start(&r);
	debug_stop_all(d);

	/* a plain instruction: stepped on this thread, its own stays parked */
	r.cpus[0].regs.rip = 0x2fff;
	CHECK(debug_resume(d, actions, &e) == 1, "lent step done here: %s", e.msg);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_STEP && ev.addr == 0x3000,
	      "its step event (kind %d addr %#llx)", ev.kind, (unsigned long long)ev.addr);
	CHECK(r.cpus[0].lent_runs == 1 && debug_run_of(d, 0) == DEBUG_RUN_PARKED,
	      "one lent run, parked again (%u, %s)", r.cpus[0].lent_runs,
	      debug_run_name(debug_run_of(d, 0)));

	/* the OUT: handled here, then the step completes here */
	CHECK(debug_resume(d, actions, &e) == 1, "OUT stepped here: %s", e.msg);
	CHECK(r.cpus[0].lent_runs == 3 && debug_run_of(d, 0) == DEBUG_RUN_PARKED,
	      "two lent runs for the OUT, parked (%u, %s)", r.cpus[0].lent_runs,
	      debug_run_name(debug_run_of(d, 0)));
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_STEP && ev.addr == 0x3001,
	      "the step ends after the OUT (kind %d addr %#llx)", ev.kind,
	      (unsigned long long)ev.addr);
	CHECK(r.cpus[0].outs_handled == 1, "the machine handled the OUT once: %u",
	      r.cpus[0].outs_handled);
	CHECK(r.cpus[0].regs.rip == 0x3001 && r.cpus[1].regs.rip == 0x8000,
	      "one instruction, the other vCPU parked: rip %#llx",
	      (unsigned long long)r.cpus[0].regs.rip);
	rig_fini(&r);
}

/* A burst of Ctrl-C is one request: the queue keeps room for the events
 * that matter (a breakpoint hit right after it). */
static void test_interrupt_burst_coalesced(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;

	debug_sw_insert(d, 0, 0x2000, false, &e);
	r.cpus[0].regs.rip = 0x1000;
	r.cpus[1].regs.rip = 0x8000;
	rig_start(&r);
	debug_stop_all(d);
	resume_all(d, DEBUG_ACT_CONTINUE);
	for (int i = 0; i < 2000; i++)
		debug_interrupt(d, 0);
	debug_stop_all(d);
	pthread_mutex_lock(&d->lock);
	unsigned queued = d->q_len, interrupts = 0;
	for (unsigned i = 0; i < d->q_len; i++)
		interrupts += d->queue[(d->q_head + i) % DEBUG_QUEUE_SIZE].kind == DEBUG_EV_INTERRUPT;
	pthread_mutex_unlock(&d->lock);
	CHECK(interrupts == 1, "2000 Ctrl-C queue one request: %u (of %u events)", interrupts,
	      queued);
	bool got = false;
	while (debug_next_event(d, &ev))
		got = got || ev.kind == DEBUG_EV_INTERRUPT;
	CHECK(got, "the interrupt is reported");
	/* the breakpoint ahead of vCPU 0 is still reported */
	enum debug_action actions[NVCPUS] = { DEBUG_ACT_CONTINUE, DEBUG_ACT_STOP };
	CHECK(debug_resume(d, actions, &e) >= 0, "resume: %s", e.msg);
	CHECK(wait_event(d), "the hit is queued");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.addr == 0x2000,
	      "the hit after the burst is reported (kind %d)", ev.kind);
	rig_fini(&r);
}

static void *end_machine_later(void *arg)
{
	struct vm *vm = arg;
	usleep(30000);
	vm->debug_hooks->on_vm_stop(vm, 3, "the guest ended");
	return NULL;
}

/* The machine ends (one vCPU's exit) while another vCPU's breakpoint stop
 * is being reported: the client hears the end, not the stop of a machine
 * that can no longer run. vm_request_exit marks the machine stopping a
 * moment before the end is queued; the thread below makes that moment
 * long. */
static void test_end_reported_over_stop(void)
{
	struct rig r;
	struct debug_event ev = { .kind = DEBUG_EV_SWBREAK, .vcpu = 0, .addr = 0x2000 };
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	rig_start(&r);
	debug_stop_all(d);
	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, &ev);
	pthread_mutex_unlock(&d->lock);
	__atomic_store_n(&r.vm->stopping, true, __ATOMIC_SEQ_CST);
	pthread_t t;
	pthread_create(&t, NULL, end_machine_later, r.vm);
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_EXITED && ev.status == 3,
	      "the end comes first (kind %d)", ev.kind);
	pthread_join(t, NULL);
	rig_fini(&r);
}

/* A breakpoint's byte the guest rewrote (new code in the page, the page
 * reused after a remap) is the guest's: removing the breakpoint, or
 * reading memory, must not bring back the byte saved at insert. */
static void test_rewritten_byte_kept(void)
{
	struct rig r;
	struct err e = { 0 };
	uint8_t b;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	ram[0x3000] = 0x55;
	CHECK(debug_sw_insert(d, 0, 0x3000, false, &e) == 0 && ram[0x3000] == 0xcc, "inserted");
	ram[0x3000] = 0x66;      /* the guest's store */
	CHECK(debug_mem_read(d, 0, 0x3000, &b, 1, false) == 0 && b == 0x66,
	      "a read shows the guest's byte: %#x", b);
	CHECK(debug_sw_remove(d, 0x3000, false, &e) == 0 && ram[0x3000] == 0x66,
	      "removal leaves the guest's byte: %#x", ram[0x3000]);
	/* the same through detach's removal of everything */
	ram[0x3001] = 0x55;
	debug_sw_insert(d, 0, 0x3001, true, &e);
	ram[0x3001] = 0x77;
	debug_remove_all_breakpoints(d);
	CHECK(ram[0x3001] == 0x77, "remove all leaves the guest's byte: %#x", ram[0x3001]);
	/* a physical breakpoint and a linear one at one number are two */
	ram[0x3002] = 0x55;
	debug_sw_insert(d, 0, 0x3002, true, &e);
	CHECK(debug_nr_sw_breakpoints(d) == 1 && debug_sw_insert(d, 0, 0x3002, false, &e) == 0 &&
	      debug_nr_sw_breakpoints(d) == 2, "keyed by address space");
	debug_sw_remove(d, 0x3002, true, &e);
	debug_sw_remove(d, 0x3002, false, &e);
	CHECK(ram[0x3002] == 0x55 && debug_nr_sw_breakpoints(d) == 0, "both gone: %#x",
	      ram[0x3002]);
	rig_fini(&r);
}

/* gdb inserts its breakpoints again at every resume: one whose linear
 * address the guest remapped meanwhile moves to the new physical byte,
 * and the old one gets its byte back. */
static void test_breakpoint_follows_remap(void)
{
	struct rig r;
	struct err e = { 0 };
	uint8_t b;
	rig_init(&r, true);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;
	uint64_t *pml4 = (uint64_t *)(ram + 0x10000), *pdpt = (uint64_t *)(ram + 0x11000);
	uint64_t *pd = (uint64_t *)(ram + 0x12000), *pt = (uint64_t *)(ram + 0x13000);
	const uint64_t va = (2ull << 20) | 0x4000;      /* PD entry 1 */

	pml4[0] = 0x11000 | 3;
	pdpt[0] = 0x12000 | 3;
	pd[1] = 0x0 | 0x83;                   /* a 2 MiB page onto physical 0 */
	pt[4] = 0x5000 | 3;
	for (unsigned i = 0; i < NVCPUS; i++) {
		struct x86_sregs *sr = &r.cpus[i].sregs;
		sr->cr0 = CR0_PE | CR0_PG;
		sr->cr4 = CR4_PAE;
		sr->efer = EFER_LMA | EFER_LME;
		sr->cr3 = 0x10000;
	}
	ram[0x4000] = 0x11;
	ram[0x5000] = 0x22;
	CHECK(debug_sw_insert(d, 0, va, false, &e) == 0 && ram[0x4000] == 0xcc, "in at 0x4000");
	pd[1] = 0x13000 | 3;                  /* the guest remaps: 4 KiB pages, va -> 0x5000 */
	CHECK(debug_sw_insert(d, 0, va, false, &e) == 0, "inserted again: %s", e.msg);
	CHECK(ram[0x4000] == 0x11 && ram[0x5000] == 0xcc, "moved: %#x %#x", ram[0x4000],
	      ram[0x5000]);
	CHECK(debug_mem_read(d, 0, va, &b, 1, false) == 0 && b == 0x22, "reads the new byte");
	CHECK(debug_sw_remove(d, va, false, &e) == 0 && ram[0x5000] == 0x22, "out: %#x",
	      ram[0x5000]);
	rig_fini(&r);
}


/* ---- debug registers shared with the guest (dr_share.c) ---- */

static void test_dr_share_placement(void)
{
	struct dr_share *s = calloc(1, sizeof(*s));
	uint64_t db[4], dr7;
	struct dr_slot hw[4];
	dr_share_init(s);
	s->vcpu[0].known = s->vcpu[1].known = true;

	unsigned lost = dr_share_place(s, 2, 0x1);
	CHECK(lost == 0 && s->place[0] == 0, "nothing competes: entry 0 in DR0 (%d)", s->place[0]);
	unsigned gen = s->gen;
	/* vCPU 1's guest enables DR0: the entry moves, on every vCPU */
	s->vcpu[1].guest.dr7 = DR7_INIT | DR7_L(0);
	s->vcpu[1].guest.db[0] = 0x5000;
	lost = dr_share_place(s, 2, 0x1);
	CHECK(lost == 0 && s->place[0] == 1 && s->gen != gen && s->moves == 1,
	      "guest took DR0: entry 0 moved to DR1 (%d, moves %lu)", s->place[0], s->moves);

	const uint64_t dbg_db[4] = { 0x1000 };
	uint64_t dbg_dr7 = DR7_G(0) | DR7_FIXED1 | DR7_GE;
	dr_share_union(s, 1, dbg_db, dbg_dr7, db, &dr7, hw);
	CHECK(db[0] == 0x5000 && db[1] == 0x1000 && (dr7 & DR7_L(0)) && (dr7 & DR7_G(1)) &&
	      !(dr7 & DR7_G(0)), "vCPU 1's union: guest DR0, debugger DR1 (dr7 %#llx)",
	      (unsigned long long)dr7);
	CHECK(hw[0].holder == DR_HOLD_GUEST && hw[1].holder == DR_HOLD_DEBUGGER &&
	      hw[1].entry == 0 && hw[2].holder == DR_HOLD_NONE, "vCPU 1's slot owners");
	memcpy(s->vcpu[1].hw, hw, sizeof(hw));
	struct dr_route rt = dr_share_route(&s->vcpu[1], DR6_B(0) | DR6_B(1), false);
	CHECK(rt.debugger == DR6_B(0) && rt.guest == DR6_B(0),
	      "both hit at once: B1 is the debugger's entry 0, B0 the guest's (%#llx %#llx)",
	      (unsigned long long)rt.debugger, (unsigned long long)rt.guest);
	rt = dr_share_route(&s->vcpu[1], DR6_BS, true);
	CHECK(rt.debugger == DR6_BS && rt.guest == 0, "BS while the debugger steps is its");
	rt = dr_share_route(&s->vcpu[1], DR6_BS | DR6_BD, false);
	CHECK(rt.debugger == 0 && rt.guest == (DR6_BS | DR6_BD), "otherwise the guest's");
	dr_share_union(s, 0, dbg_db, dbg_dr7, db, &dr7, hw);
	CHECK(db[1] == 0x1000 && !(dr7 & (DR7_L(0) | DR7_G(0))),
	      "vCPU 0: the entry in DR1 too, DR0 unused");

	/* every slot taken by a guest: the entry waits, then comes back */
	s->vcpu[0].guest.dr7 = DR7_INIT | DR7_L(1) | DR7_G(2) | DR7_L(3);
	lost = dr_share_place(s, 2, 0x1);
	CHECK(lost == 0x1 && s->place[0] == -1 && s->waiting == 0x1, "no slot: entry 0 waits");
	s->vcpu[0].guest.dr7 = DR7_INIT | DR7_L(1) | DR7_L(3);
	lost = dr_share_place(s, 2, 0x1);
	CHECK(lost == 0 && s->place[0] == 2 && s->waiting == 0, "DR2 freed: entry 0 back (%d)",
	      s->place[0]);

	CHECK(dr_share_guest_dr6(DR6_INIT | DR6_BS | DR6_B(2), DR6_B(0)) ==
	      (DR6_INIT | DR6_BS | DR6_B(0)), "guest DR6: this event's B bits, BS sticky");
	free(s);
}

static bool next_kind(struct debug *d, enum debug_event_kind kind, uint64_t addr)
{
	struct debug_event ev = { 0 };
	CHECK(wait_event(d), "an event (kind %d) reported", kind);
	debug_stop_all(d);
	bool got = debug_next_event(d, &ev) && ev.kind == kind && ev.addr == addr;
	CHECK(got, "event kind %d at %#llx (got kind %d at %#llx)", kind,
	      (unsigned long long)addr, ev.kind, (unsigned long long)ev.addr);
	return got;
}

/* KVM-like: the guest takes the slot the debugger's hbreak sits in (seen
 * at its next exit); the hbreak moves and still stops, the guest's own
 * breakpoint reaches the guest with its own DR6. */
static void test_dr_share_guest_takes_slot(void)
{
	struct rig r;
	struct err e = { 0 };
	rig_init_on(&r, true, &fake_shared_engine);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	r.cpus[1].regs.rip = 0x50;
	ram[0x50] = 0xeb;
	ram[0x180] = 0xd7;      /* the guest: DR0 = 0x300, L0 */
	ram[0x181] = 0xe6;      /* an exit, where the arbiter learns it */
	r.cpus[0].dr_next = (struct x86_debugregs){ .db = { 0x300 }, .dr6 = DR6_INIT,
						    .dr7 = DR7_INIT | DR7_L(0) };
	rig_start(&r);
	debug_attach(d);
	CHECK(d->share.on && !d->share.precise, "the engine shares its DRs, learned lazily");
	CHECK(debug_hw_insert(d, 0x200, &e) == 0, "hbreak: %s", e.msg);
	resume_all(d, DEBUG_ACT_CONTINUE);
	next_kind(d, DEBUG_EV_HWBREAK, 0x200);
	CHECK(d->share.place[0] == 1 && r.cpus[0].dbg.db[0] == 0x300 &&
	      r.cpus[0].dbg.db[1] == 0x200, "hbreak moved to DR1, the guest's DR0 loaded (%d)",
	      d->share.place[0]);
	CHECK(r.cpus[0].guest_dbs == 0, "no #DB for the guest yet");

	/* on to the guest's breakpoint, round the fake RAM, to the hbreak again */
	resume_all(d, DEBUG_ACT_CONTINUE);
	next_kind(d, DEBUG_EV_HWBREAK, 0x200);
	CHECK(r.cpus[0].guest_dbs == 1 && (r.cpus[0].dr.dr6 & 0xf) == DR6_B(0) &&
	      r.cpus[0].dr.dr7 == (DR7_INIT | DR7_L(0)),
	      "the guest's hit reflected once with DR6.B0 (%u, dr6 %#llx)", r.cpus[0].guest_dbs,
	      (unsigned long long)r.cpus[0].dr.dr6);
	CHECK(r.cpus[1].guest_dbs == 0, "vCPU 1's guest saw nothing");

	/* the hbreak gone: nothing of the debugger's loaded, the guest's own
	 * file is the hardware again */
	CHECK(debug_hw_remove(d, 0x200, &e) == 0, "remove: %s", e.msg);
	resume_all(d, DEBUG_ACT_CONTINUE);
	debug_stop_all(d);
	CHECK(!r.cpus[0].dbg.use_hw_bp && !r.cpus[1].dbg.use_hw_bp, "nothing loaded by the debugger");
	rig_fini(&r);
}

/* The guest takes all four slots while the debugger holds an hbreak: an
 * int3 stands in for it at once (hidden from the debugger's reads), the
 * hit is the hbreak's, and removing the hbreak takes the int3 out. */
static void test_dr_share_hbreak_stand_in(void)
{
	struct rig r;
	struct err e = { 0 };
	rig_init_on(&r, true, &fake_shared_engine);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	r.cpus[1].regs.rip = 0x50;
	ram[0x50] = 0xeb;
	ram[0x180] = 0xd7;      /* the guest: DR0-3 = 0x300-0x303, all enabled */
	ram[0x181] = 0xe6;      /* an exit, where the arbiter learns it */
	ram[0x200] = 0x90;
	r.cpus[0].dr_next = (struct x86_debugregs){
		.db = { 0x300, 0x301, 0x302, 0x303 }, .dr6 = DR6_INIT,
		.dr7 = DR7_INIT | DR7_L(0) | DR7_L(1) | DR7_L(2) | DR7_L(3) };
	rig_start(&r);
	debug_attach(d);
	CHECK(debug_hw_insert(d, 0x200, &e) == 0, "hbreak: %s", e.msg);
	resume_all(d, DEBUG_ACT_CONTINUE);
	next_kind(d, DEBUG_EV_HWBREAK, 0x200);
	CHECK(d->share.place[0] < 0 && ram[0x200] == 0xcc, "no slot left: an int3 stands in (%d)",
	      d->share.place[0]);
	uint8_t byte = 0;
	CHECK(debug_mem_read(d, 0, 0x200, &byte, 1, false) == 0 && byte == 0x90,
	      "the debugger reads the original byte (%#x)", byte);
	char text[4096];
	debug_dr_describe(d, text, sizeof(text));
	CHECK(strstr(text, "gdb hbreak, 0x200; an int3 stands in") != NULL, "info dr: %s", text);
	CHECK(debug_hw_remove(d, 0x200, &e) == 0 && ram[0x200] == 0x90, "removed with its int3");
	debug_stop_all(d);
	rig_fini(&r);
}

/* The same for exception catching's DR entry on a handler: its int3
 * reports the catch (vector and all), and goes when catching stops. */
static void test_dr_share_catch_stand_in(void)
{
	struct rig r;
	rig_init_on(&r, true, &fake_shared_engine);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	r.cpus[1].regs.rip = 0x50;
	ram[0x50] = 0xeb;
	ram[0x180] = 0xd7;      /* the guest: DR0-3 = 0x300-0x303, all enabled */
	ram[0x181] = 0xe6;
	r.cpus[0].dr_next = (struct x86_debugregs){
		.db = { 0x300, 0x301, 0x302, 0x303 }, .dr6 = DR6_INIT,
		.dr7 = DR7_INIT | DR7_L(0) | DR7_L(1) | DR7_L(2) | DR7_L(3) };
	rig_start(&r);
	debug_attach(d);
	pthread_mutex_lock(&d->lock);     /* a #UD handler at 0x200, caught in DR0 */
	d->hw[0] = (struct debug_hw_bp){ .addr = 0x200, .used = true,
					 .catch_vectors = 1u << X86_UD };
	pthread_mutex_unlock(&d->lock);
	resume_all(d, DEBUG_ACT_CONTINUE);
	struct debug_event ev = { 0 };
	CHECK(wait_event(d), "the catch reported");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_CATCH && ev.addr == 0x200 &&
	      ev.vector == X86_UD, "caught #UD at its handler (kind %d at %#llx, vector %u)",
	      ev.kind, (unsigned long long)ev.addr, ev.vector);
	CHECK(d->share.place[0] < 0 && ram[0x200] == 0xcc, "no slot left: an int3 stands in");
	char text[4096];
	debug_dr_describe(d, text, sizeof(text));
	CHECK(strstr(text, "exception catching, 0x200; an int3 stands in") != NULL, "info dr: %s",
	      text);
	debug_catch_clear(d);
	debug_dr_share_settle(d);
	CHECK(ram[0x200] == 0x90 && d->hw[0].stand_in == DEBUG_STAND_IN_NONE,
	      "catching over: the int3 is gone (%#x)", ram[0x200]);
	rig_fini(&r);
}

static bool has_range(uint64_t linear, uint64_t gpa, uint32_t len, bool read, bool write,
		      uint32_t id)
{
	for (unsigned i = 0; i < fake_nr_watched; i++) {
		const struct engine_watch *w = &fake_watched[i];
		if (w->linear == linear && w->gpa == gpa && w->len == len && w->read == read &&
		    w->write == write && w->id == id)
			return true;
	}
	return false;
}

/* Watchpoints an engine without data breakpoints takes as watched ranges:
 * cut at pages, translated, again at resume after a remap; hits named by
 * db.watch map back to the watchpoint; removal and the limit. */
static void test_watch_ranges(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init_on(&r, true, &fake_watch_engine);
	struct debug *d = r.vm->debug;
	fake_nr_watched = fake_set_watch_calls = 0;

	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0,
	      "straddle: %s", e.msg);
	CHECK(fake_nr_watched == 2 && has_range(0x1ffc, 0x1ffc, 4, false, true, 0) &&
	      has_range(0x2000, 0x2000, 4, false, true, 0), "two pages: %u", fake_nr_watched);
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_READ, 0x3001, 3, false, &e) == 0,
	      "read: %s", e.msg);
	CHECK(fake_nr_watched == 3 && has_range(0x3001, 0x3001, 3, true, false, 1), "read range");
	unsigned calls = fake_set_watch_calls;
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_READ, 0x3001, 3, false, &e) == 0 &&
	      fake_set_watch_calls == calls, "inserting twice changes nothing");
	debug_watch_sync(d);
	CHECK(fake_set_watch_calls == calls, "a resume with nothing moved calls no engine");

	struct vm_exit x = { .reason = VM_EXIT_DB };
	x.db.watch = 2;
	pthread_mutex_lock(&d->lock);
	bool hit = debug_watch_hit_locked(d, &x, &ev);
	x.db.watch = 9;
	bool stale = debug_watch_hit_locked(d, &x, &ev);
	pthread_mutex_unlock(&d->lock);
	CHECK(hit && ev.kind == DEBUG_EV_RWATCH && ev.addr == 0x3001, "hit by id");
	CHECK(!stale, "an id nobody owns is no hit");
	/* gdb at a stop: every watchpoint out, then back in the same order */
	calls = fake_set_watch_calls;
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0 &&
	      debug_watch_remove(d, DEBUG_WATCH_READ, 0x3001, 3, false, &e) == 0, "both out");
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0 &&
	      debug_watch_insert(d, 0, DEBUG_WATCH_READ, 0x3001, 3, false, &e) == 0, "both in");
	debug_watch_sync(d);
	CHECK(fake_set_watch_calls == calls && fake_nr_watched == 3, "the engine was left alone: %u calls",
	      fake_set_watch_calls - calls);

	/* the guest turns paging on with 0x3000 mapped at 0x7000: at the
	 * next resume the ranges follow */
	uint8_t *ram = r.vm->ram;
	uint64_t *pml4 = (uint64_t *)(ram + 0x10000), *pdpt = (uint64_t *)(ram + 0x11000);
	uint64_t *pd = (uint64_t *)(ram + 0x12000), *pt = (uint64_t *)(ram + 0x13000);
	pml4[0] = 0x11000 | 3;
	pdpt[0] = 0x12000 | 3;
	pd[0] = 0x13000 | 3;
	pt[1] = 0x1000 | 3;
	pt[2] = 0x2000 | 3;
	pt[3] = 0x7000 | 3;
	for (unsigned i = 0; i < NVCPUS; i++) {
		struct x86_sregs *sr = &r.cpus[i].sregs;
		sr->cr0 = CR0_PE | CR0_PG;
		sr->cr4 = CR4_PAE;
		sr->efer = EFER_LMA | EFER_LME;
		sr->cr3 = 0x10000;
	}
	debug_vcpu_forget(d, 0);
	debug_watch_sync(d);
	CHECK(has_range(0x3001, 0x7001, 3, true, false, 1), "remapped range follows");
	pt[2] = 0;                           /* the second page goes away: it waits */
	debug_vcpu_forget(d, 0);
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 2 && !has_range(0x2000, 0x2000, 4, false, true, 0), "unmapped waits");
	char text[1024];
	debug_watch_describe(d, text, sizeof(text));
	CHECK(strstr(text, "1 of 2 pages waiting: not mapped") != NULL, "described: %s", text);

	calls = fake_set_watch_calls;
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0 &&
	      fake_set_watch_calls == calls, "removal waits for the resume");
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0 &&
	      fake_set_watch_calls == calls, "out and in again (as gdb at a stop): no engine call");
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == 0, "out again");
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 1, "removed at the resume: %u", fake_nr_watched);
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x1ffc, 8, false, &e) == -ENOENT, "twice");
	for (unsigned i = 0; i < DEBUG_MAX_WATCH - 1; i++)
		CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_ACCESS, 0x4000 + i, 1, false, &e) == 0,
		      "watchpoint %u: %s", i, e.msg);
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x5000, 1, false, &e) == -ENOSPC, "full");
	debug_remove_all_breakpoints(d);
	CHECK(fake_nr_watched == 0, "all gone: %u", fake_nr_watched);
	rig_fini(&r);
}

/* Physical watchpoints: engine ranges flagged phys with gpa = the address,
 * never in DR0-3 (even where they work), never translated (paging on
 * with nothing mapped there changes nothing), apart from a linear one on
 * the same address; RAM only. */
static void test_watch_phys(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init_on(&r, true, &fake_watch_engine);
	struct debug *d = r.vm->debug;
	fake_nr_watched = 0;
	d->caps_err = 0;                   /* as if probed: data breakpoints fire */
	d->caps.hw_data_bp = true;
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x2ffc, 8, true, &e) == 0,
	      "phys in: %s", e.msg);
	CHECK(!d->hw[0].used && fake_nr_watched == 2, "not in DR0: %u ranges", fake_nr_watched);
	for (unsigned i = 0; i < fake_nr_watched; i++) {
		const struct engine_watch *w = &fake_watched[i];
		CHECK(w->phys && w->linear == 0 && w->gpa == (i ? 0x3000 : 0x2ffc) &&
		      w->len == 4 && w->write && !w->read, "piece %u: gpa %#llx", i,
		      (unsigned long long)w->gpa);
	}
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x2ffc, 8, false, &e) == 0 &&
	      d->hw[0].used, "a linear one on the same address: DR0");
	for (unsigned i = 0; i < NVCPUS; i++) {      /* paging on, nothing mapped */
		r.cpus[i].sregs.cr0 = CR0_PE | CR0_PG;
		r.cpus[i].sregs.cr4 = CR4_PAE;
		r.cpus[i].sregs.efer = EFER_LMA | EFER_LME;
		r.cpus[i].sregs.cr3 = 0x10000;
	}
	debug_vcpu_forget(d, 0);
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 2 && fake_watched[0].gpa == 0x2ffc, "not translated");
	struct vm_exit x = { .reason = VM_EXIT_DB };
	x.db.watch = fake_watched[0].id + 1;
	pthread_mutex_lock(&d->lock);
	bool hit = debug_watch_hit_locked(d, &x, &ev);
	pthread_mutex_unlock(&d->lock);
	CHECK(hit && ev.kind == DEBUG_EV_WATCH && ev.addr == 0x2ffc, "hit: the physical address");
	char text[1024];
	debug_watch_describe(d, text, sizeof(text));
	CHECK(strstr(text, "write  8 bytes at physical 0x2ffc: ") &&
	      strstr(text, "write  8 bytes at linear 0x2ffc: DR0"), "described: %s", text);
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_READ, RAM_SIZE - 4, 8, true, &e) == -EINVAL &&
	      strstr(e.msg, "not all guest RAM"), "past RAM: %s", e.msg);
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x2ffc, 8, false, &e) == 0 &&
	      !d->hw[0].used, "linear one out");
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x2ffc, 8, false, &e) == -ENOENT,
	      "no linear one left");
	CHECK(debug_watch_remove(d, DEBUG_WATCH_WRITE, 0x2ffc, 8, true, &e) == 0, "phys out");
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 0, "all gone: %u", fake_nr_watched);
	rig_fini(&r);
}

/* A watchpoint in DR0-3 that loses its slot (the guest took it) moves to
 * the engine's watched ranges, and back once the slot is free again. */
static void test_watch_evicted(void)
{
	struct rig r;
	struct err e = { 0 };
	rig_init_on(&r, true, &fake_watch_engine);
	struct debug *d = r.vm->debug;
	fake_nr_watched = 0;
	d->caps_err = 0;                   /* as if probed: data breakpoints fire */
	d->caps.hw_data_bp = true;
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x2000, 8, false, &e) == 0,
	      "in: %s", e.msg);
	CHECK(d->hw[0].used && d->hw[0].rw == DR7_RW_WRITE && fake_nr_watched == 0, "in DR0");
	pthread_mutex_lock(&d->lock);
	debug_watch_evicted_locked(d, DR7_RW_WRITE, 0x2000, 8);
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)   /* the guest holds every slot */
		d->hw[n] = (struct debug_hw_bp){ .used = true, .client = true, .addr = 0x10 + n };
	pthread_mutex_unlock(&d->lock);
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 1 && has_range(0x2000, 0x2000, 8, false, true, 0), "a page trap now");
	pthread_mutex_lock(&d->lock);
	memset(d->hw, 0, sizeof(d->hw));
	pthread_mutex_unlock(&d->lock);
	debug_watch_sync(d);
	CHECK(fake_nr_watched == 0 && d->hw[0].used && d->hw[0].addr == 0x2000, "back in DR0");
	rig_fini(&r);
}

/* Two vCPUs: a watchpoint the guest pushes out of DR0-3 at one vCPU's
 * exit reaches the engine's watched ranges at that exit, not at the next
 * resume (the engine changes its map with the other vCPUs held out). */
static void test_watch_evicted_now_with_vcpus_running(void)
{
	struct rig r;
	struct err e = { 0 };
	rig_init_on(&r, true, &fake_watch_engine);
	struct debug *d = r.vm->debug;
	fake_nr_watched = 0;
	d->caps_err = 0;
	d->caps.hw_data_bp = true;
	CHECK(d->nr_vcpus > 1, "several vCPUs");
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x2000, 8, false, &e) == 0,
	      "in: %s", e.msg);
	unsigned calls = fake_set_watch_calls;
	pthread_mutex_lock(&d->lock);
	debug_watch_evicted_locked(d, DR7_RW_WRITE, 0x2000, 8);
	pthread_mutex_unlock(&d->lock);
	debug_watch_evicted_now(d, 1);
	CHECK(fake_set_watch_calls == calls + 1 && fake_nr_watched == 1 &&
	      has_range(0x2000, 0x2000, 8, false, true, 0),
	      "a page trap at the exit (%u engine calls)", fake_set_watch_calls - calls);
	debug_watch_evicted_now(d, 1);
	CHECK(fake_set_watch_calls == calls + 1, "handed over once");
	rig_fini(&r);
}

/* A machine ends with breakpoints, a watchpoint, non-stop mode and an
 * event queued; debug_reset makes the core new for the next machine on the
 * same struct vm, which it then debugs as a fresh core would. */
static void test_reset_is_new(void)
{
	struct rig r;
	struct err e = { 0 };
	struct debug_event ev;
	rig_init_on(&r, true, &fake_watch_engine);
	struct debug *d = r.vm->debug;
	uint8_t *ram = r.vm->ram;

	debug_sw_insert(d, 0, 0x1000, false, &e);
	CHECK(debug_hw_insert(d, 0x1004, &e) == 0, "hw insert: %s", e.msg);
	CHECK(debug_watch_insert(d, 0, DEBUG_WATCH_WRITE, 0x2000, 4, false, &e) == 0,
	      "watch: %s", e.msg);
	debug_set_non_stop(d, true);
	rig_start(&r);
	debug_interrupt(d, 0);
	debug_stop_all(d);
	__atomic_store_n(&r.vm->stopping, true, __ATOMIC_SEQ_CST);
	r.vm->debug_hooks->on_vm_stop(r.vm, 0, "");
	for (unsigned i = 0; i < NVCPUS; i++)
		pthread_join(r.vm->vcpus[i].thread, NULL);

	/* the next machine: new RAM, the vCPUs at power-on */
	__atomic_store_n(&r.vm->stopping, false, __ATOMIC_SEQ_CST);
	memset(ram, 0x90, RAM_SIZE);
	for (unsigned i = 0; i < NVCPUS; i++) {
		r.cpus[i] = (struct fake_cpu){ .regs.rip = 0x100 };
		r.cpus[i].dr = (struct x86_debugregs){ .dr6 = DR6_INIT, .dr7 = DR7_INIT };
	}
	CHECK(debug_reset(d, true, &e) == 0, "reset: %s", e.msg);
	CHECK(r.vm->debug == d && r.vm->debug_hooks, "the same core, its hooks in");
	unsigned watches = 0;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++)
		watches += d->watch[i].home != DEBUG_WATCH_FREE;
	CHECK(debug_nr_sw_breakpoints(d) == 0 && debug_nr_hw_breakpoints(d) == 0 && watches == 0,
	      "no breakpoints or watchpoints: %u %u %u", debug_nr_sw_breakpoints(d),
	      debug_nr_hw_breakpoints(d), watches);
	CHECK(!debug_has_event(d) && !debug_machine_gone(d), "no event, the machine not gone");
	CHECK(!d->non_stop && d->catch_mask == 0, "all-stop, nothing caught");
	CHECK(r.cpus[0].dbg.dr7 == 0 && r.cpus[1].dbg.dr7 == 0, "the engine's DR7 cleared");
	for (unsigned i = 0; i < NVCPUS; i++)
		CHECK(debug_run_of(d, i) == DEBUG_RUN_PARKED, "vCPU %u held (wait_gdb)", i);

	/* and it debugs the new machine */
	ram[0x108] = 0xcc;       /* the guest's own int3 */
	debug_sw_insert(d, 0, 0x104, false, &e);
	rig_start(&r);
	debug_stop_all(d);
	resume_all(d, DEBUG_ACT_CONTINUE);
	CHECK(wait_event(d), "a hit after the reset");
	debug_stop_all(d);
	CHECK(debug_next_event(d, &ev) && ev.kind == DEBUG_EV_SWBREAK && ev.addr == 0x104,
	      "the new breakpoint hit (kind %d addr %#llx)", ev.kind, (unsigned long long)ev.addr);
	/* both vCPUs run to it: the other may have hit it too before the
	 * stop, nothing else (the old machine's queued Ctrl-C) may come */
	unsigned first = ev.vcpu;
	struct debug_event more;
	bool other = debug_next_event(d, &more);
	CHECK(!other || (more.kind == DEBUG_EV_SWBREAK && more.addr == 0x104 && more.vcpu != first),
	      "and nothing else but the other vCPU's hit (kind %d addr %#llx)", other ? (int)more.kind : -1,
	      other ? (unsigned long long)more.addr : 0ull);
	CHECK(!debug_next_event(d, &more), "and then nothing");
	rig_fini(&r);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_breakpoint_bytes();
	printf("breakpoint bytes: done\n");
	test_queue_order_and_guest_int3();
	printf("event queue order, guest int3: done\n");
	test_step_and_continue_from_breakpoint();
	printf("step / continue from a breakpoint: done\n");
	test_simultaneous_hits_none_lost();
	printf("simultaneous hits: done\n");
	test_stale_event_dropped();
	printf("stale events: done\n");
	test_catch();
	printf("exception catching: done\n");
	test_paging_5level_1g();
	printf("5-level paging, 1 GiB pages: done\n");
	test_state_cache();
	printf("state cache: done\n");
	test_msr_door();
	printf("MSRs by number: done\n");
	test_run_state_table();
	printf("run states: done\n");
	test_lent_step_handles_port_io();
	printf("lent step, port I/O on the client's thread: done\n");
	test_rewritten_byte_kept();
	test_breakpoint_follows_remap();
	printf("rewritten breakpoint bytes: done\n");
	test_interrupt_burst_coalesced();
	printf("Ctrl-C burst: done\n");
	test_end_reported_over_stop();
	printf("machine end over a stop: done\n");
	test_dr_share_placement();
	test_dr_share_guest_takes_slot();
	test_dr_share_hbreak_stand_in();
	test_dr_share_catch_stand_in();
	printf("debug registers shared with the guest: done\n");
	test_watch_ranges();
	test_watch_phys();
	test_watch_evicted();
	test_watch_evicted_now_with_vcpus_running();
	printf("watched ranges: done\n");
	test_reset_is_new();
	printf("reset for a new machine: done\n");
	return check_summary("debug");
}
