/* tests/unit/fake_engine.c — the scripted fake engine (fake_engine.h). */
#include "tests/unit/fake_engine.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "x86/x86.h"

struct fake_cpu *fake_cpu_of(struct vcpu *v)
{
	return v->engine;
}

static int fake_run(struct vcpu *v, struct vm_exit *exit)
{
	struct fake_cpu *c = fake_cpu_of(v);
	uint8_t *ram = v->vm->ram;

	for (unsigned budget = 0; budget < 100000; budget++) {
		if (__atomic_exchange_n(&c->kicked, 0, __ATOMIC_SEQ_CST))
			break;
		uint64_t pc = c->regs.rip;
		if (pc >= FAKE_RAM_SIZE)
			pc = c->regs.rip = 0x100;   /* wrap the fake program around */
		for (unsigned n = 0; n < 4 && c->dbg.use_hw_bp; n++) {
			if ((c->dbg.dr7 & DR7_G(n)) && c->dbg.db[n] == pc) {
				exit->reason = VM_EXIT_DB;
				exit->db.dr6 = DR6_B(n);
				exit->db.pc = pc;
				return 0;
			}
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
			return 0;
		}
		c->out_pending = false;
		c->regs.rip = pc + 1;
		c->steps++;
		if (c->dbg.single_step) {
			exit->reason = VM_EXIT_DB;
			exit->db.dr6 = DR6_BS;
			exit->db.pc = c->regs.rip;
			return 0;
		}
		if ((budget & 63) == 63)
			sched_yield();
	}
	exit->reason = VM_EXIT_KICKED;
	return 0;
}

static void fake_kick(struct vcpu *v)
{
	__atomic_store_n(&fake_cpu_of(v)->kicked, 1, __ATOMIC_SEQ_CST);
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
		memset(&st->dr, 0, sizeof(st->dr));
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

const struct engine_ops fake_engine = {
	.name = "fake",
	.run = fake_run,
	.kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
	.set_debug = fake_set_debug,
	.msr_get = fake_msr_get,
	.msr_set = fake_msr_set,
};

/* the same engine, lending vCPUs to the debugger's thread */
const struct engine_ops fake_lending_engine = {
	.name = "fake-lending",
	.run_borrowed = fake_run_borrowed,
	.run = fake_run,
	.kick = fake_kick,
	.get_state = fake_get_state,
	.set_state = fake_set_state,
	.set_debug = fake_set_debug,
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
			vm->engine->run(v, &exit);
		if (vm->debug_hooks->on_exit(vm, v, &exit))
			continue;
		if (exit.reason == VM_EXIT_BPT)
			fake_cpu_of(v)->regs.rip = exit.bpt.pc + 1;   /* the guest's own int3 */
		if (exit.reason == VM_EXIT_IO)
			fake_cpu_of(v)->outs_handled++;
	}
	return NULL;
}
