/* tests/unit/fake_engine.c — the scripted fake engine (fake_engine.h). */
#include "tests/unit/fake_engine.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "x86/x86.h"

struct fake_cpu *fake_cpu_of(struct vcpu *v)
{
	return v->engine;
}

/* 0xf4 unstepped: sleep until a kick (the futex on c->kicked). */
static void fake_halt(struct fake_cpu *c)
{
	__atomic_store_n(&c->halted, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &c->halted, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	if (c->halt_fd) {
		uint64_t one = 1;
		if (write(c->halt_fd, &one, sizeof(one)) < 0) {
			/* the counter is full: its reader has been told already */
		}
	}
	while (!__atomic_load_n(&c->kicked, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &c->kicked, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	__atomic_store_n(&c->halted, 0, __ATOMIC_SEQ_CST);
}

static int fake_run(struct vcpu *v, struct vm_exit *exit)
{
	struct fake_cpu *c = fake_cpu_of(v);
	uint8_t *ram = v->vm->ram;

	for (unsigned budget = 0; budget < 100000; budget++) {
		if (__atomic_exchange_n(&c->kicked, 0, __ATOMIC_SEQ_CST))
			break;
		uint64_t pc = c->regs.rip;
		if (pc >= v->vm->ram_size)
			pc = c->regs.rip = 0x100;   /* wrap the fake program around */
		if (ram[pc] == 0xf4 && !c->dbg.single_step) {
			fake_halt(c);
			continue;
		}
		const uint64_t *hdb = c->dbg.use_hw_bp ? c->dbg.db : c->dr.db;
		uint64_t hdr7 = c->dbg.use_hw_bp ? c->dbg.dr7 : c->shared ? c->dr.dr7 : 0;
		for (unsigned n = 0; n < 4 && !c->rf; n++) {
			if (!(hdr7 & (DR7_L(n) | DR7_G(n))) || hdb[n] != pc)
				continue;
			if (!c->dbg.use_hw_bp) {      /* the guest's own, natively */
				c->dr.dr6 = DR6_FIXED1 | DR6_B(n);
				c->guest_dbs++;
				c->rf = true;
				break;
			}
			exit->reason = VM_EXIT_DB;
			exit->db.dr6 = DR6_B(n);
			exit->db.pc = pc;
			return 0;
		}
		if (ram[pc] == 0xd7) {
			memcpy(c->dr.db, c->dr_next.db, sizeof(c->dr.db));
			c->dr.dr7 = c->dr_next.dr7;
		}
		if (ram[pc] == 0xcc) {
			exit->reason = VM_EXIT_BPT;
			exit->bpt.pc = pc;
			return 0;
		}
		/* 0xe6 exits for port I/O and completes on the next run */
		if (ram[pc] == 0xe6 && !c->out_pending) {
			c->out_pending = true;
			exit->reason = VM_EXIT_IO;
			exit->io.port = 0x80;
			exit->io.size = 1;
			exit->io.count = 1;
			exit->io.is_write = true;
			exit->io.data = c->out_data;
			return 0;
		}
		c->out_pending = false;
		c->rf = false;
		c->regs.rip = ram[pc] == 0xeb ? pc : pc + 1;     /* 0xeb: jump to itself */
		__atomic_add_fetch(&c->steps, 1, __ATOMIC_RELAXED);
		if (c->dbg.single_step) {
			exit->reason = VM_EXIT_DB;
			exit->db.dr6 = DR6_BS;
			exit->db.pc = c->regs.rip;
			return 0;
		}
		/* a spinning program lets the other threads in now and then (a
		 * yield is a context switch when the host is busy: not too often) */
		if ((budget & 1023) == 1023)
			sched_yield();
	}
	exit->reason = VM_EXIT_KICKED;
	return 0;
}

static void fake_kick(struct vcpu *v)
{
	struct fake_cpu *c = fake_cpu_of(v);
	__atomic_store_n(&c->kicked, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &c->kicked, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void count_parts(unsigned *calls, unsigned mask)
{
	for (unsigned n = 0; n < 5; n++)
		calls[n] += (mask >> n) & 1;
}

static int fake_get_state(struct vcpu *v, unsigned mask, struct x86_state *st)
{
	struct fake_cpu *c = fake_cpu_of(v);
	count_parts(c->gets, mask);
	if (mask & X86_STATE_REGS)
		st->regs = c->regs;
	if (mask & X86_STATE_SREGS)
		st->sregs = c->sregs;
	if (mask & X86_STATE_FPU)
		memset(&st->fpu, 0, sizeof(st->fpu));
	if (mask & X86_STATE_DR)
		st->dr = c->dr;
	if (mask & X86_STATE_MSRS)
		st->kernel_gs_base = st->fmask = 0;
	return 0;
}

static int fake_set_state(struct vcpu *v, unsigned mask, const struct x86_state *st)
{
	struct fake_cpu *c = fake_cpu_of(v);
	count_parts(c->sets, mask);
	if (c->fail_sets)
		return c->fail_sets;
	if (mask & X86_STATE_REGS)
		c->regs = st->regs;
	if (mask & X86_STATE_SREGS)
		c->sregs = st->sregs;
	if (mask & X86_STATE_DR)
		c->dr = st->dr;
	return 0;
}

/* Two MSRs: EFER (reserved bits refused) and FS_BASE, in the sregs. */
static int fake_msr_get(struct vcpu *v, uint32_t msr, uint64_t *value)
{
	struct fake_cpu *c = fake_cpu_of(v);
	if (msr == 0xc0000080)
		*value = c->sregs.efer;
	else if (msr == 0xc0000100)
		*value = c->sregs.fs.base;
	else
		return -ENOENT;
	return 0;
}

static int fake_msr_set(struct vcpu *v, uint32_t msr, uint64_t value)
{
	struct fake_cpu *c = fake_cpu_of(v);
	if (msr == 0xc0000080 && (value & ~0xd01ull))
		return -EINVAL;
	if (msr == 0xc0000080)
		c->sregs.efer = value;
	else if (msr == 0xc0000100)
		c->sregs.fs.base = value;
	else
		return -ENOENT;
	return 0;
}

static int fake_set_debug(struct vcpu *v, const struct engine_debug *dbg)
{
	fake_cpu_of(v)->dbg = *dbg;
	return 0;
}

static int fake_run_borrowed(struct vcpu *v, struct vm_exit *exit)
{
	fake_cpu_of(v)->lent_runs++;
	return fake_run(v, exit);
}

static const struct engine_vm_ops fake_vm_ops = { 0 };   /* no probe: no caps */

static const struct engine_vcpu_ops fake_vcpu_ops = {
	.run = fake_run,
	.kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
	.msr_get = fake_msr_get,
	.msr_set = fake_msr_set,
};

static const struct engine_debug_ops fake_debug_ops = { .set_debug = fake_set_debug };

const struct engine_ops fake_engine = {
	.name = "fake",
	.vm = &fake_vm_ops,
	.vcpu = &fake_vcpu_ops,
	.debug = &fake_debug_ops,
};

static int fake_inject(struct vcpu *v, uint8_t vector, bool has_error_code, uint32_t code)
{
	(void)has_error_code;
	(void)code;
	if (vector != X86_DB)
		return -EINVAL;
	fake_cpu_of(v)->guest_dbs++;
	fake_cpu_of(v)->rf = true;
	return 0;
}

static int fake_probe_shared(const struct emu_single_ops *assist, struct engine_caps *caps,
			     struct engine_report *report, struct err *e)
{
	(void)assist;
	(void)report;
	(void)e;
	memset(caps, 0, sizeof(*caps));
	caps->shared_dr = true;
	return 0;
}

/* one DR set per vCPU, as KVM: the guest's MOV DR is seen at exits */
static const struct engine_vm_ops fake_shared_vm_ops = { .probe = fake_probe_shared };

static const struct engine_vcpu_ops fake_shared_vcpu_ops = {
	.run = fake_run,
	.kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
	.inject_exception = fake_inject,
};

const struct engine_ops fake_shared_engine = {
	.name = "fake-shared",
	.vm = &fake_shared_vm_ops,
	.vcpu = &fake_shared_vcpu_ops,
	.debug = &fake_debug_ops,
};

/* the same engine, lending vCPUs to the debugger's thread */
static const struct engine_vcpu_ops fake_lending_vcpu_ops = {
	.run = fake_run,
	.kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
};

static const struct engine_lend_ops fake_lend_ops = { .run = fake_run_borrowed };

const struct engine_ops fake_lending_engine = {
	.name = "fake-lending",
	.vm = &fake_vm_ops,
	.vcpu = &fake_lending_vcpu_ops,
	.debug = &fake_debug_ops,
	.lend = &fake_lend_ops,
};

/* the same engine with watched ranges: set_watch keeps the last list */
struct engine_watch fake_watched[FAKE_MAX_WATCH];
unsigned fake_nr_watched, fake_set_watch_calls;

static int fake_set_watch(struct vm *vm, const struct engine_watch *w, unsigned n,
			  struct err *e)
{
	(void)vm;
	if (n > FAKE_MAX_WATCH)
		return err_set(e, ENOSPC, "fake: %u ranges", n);
	if (n)
		memcpy(fake_watched, w, n * sizeof(*w));
	fake_nr_watched = n;
	fake_set_watch_calls++;
	return 0;
}

static const struct engine_debug_ops fake_watch_debug_ops = {
	.set_debug = fake_set_debug,
	.set_watch = fake_set_watch,
};

const struct engine_ops fake_watch_engine = {
	.name = "fake-watch",
	.vm = &fake_vm_ops,
	.vcpu = &fake_lending_vcpu_ops,
	.debug = &fake_watch_debug_ops,
};

/* ---- the vCPU loop, as machine/vm.c runs it ---- */

void *fake_vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct vm *vm = v->vm;
	struct vm_exit exit;

	while (!vm_stopping(vm)) {
		memset(&exit, 0, sizeof(exit));
		bool handed = vm->debug_hooks->before_run(vm, v, &exit);
		if (vm_stopping(vm))
			break;
		if (!handed)
			vm->engine->vcpu->run(v, &exit);
		if (vm->debug_hooks->on_exit(vm, v, &exit))
			continue;
		if (exit.reason == VM_EXIT_BPT)
			fake_cpu_of(v)->regs.rip = exit.bpt.pc + 1;   /* the guest's own int3 */
		if (exit.reason == VM_EXIT_IO)
			fake_cpu_of(v)->outs_handled++;
	}
	return NULL;
}
