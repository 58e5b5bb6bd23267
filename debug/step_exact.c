/* debug/step_exact.c — a parked vCPU's single step done on an exact core
 * (another engine's one-instruction core: emu's, engine/emu/emu_single.h)
 * over the state the debug core holds, instead of by the engine: on a
 * nested KVM host a KVM_RUN step costs ~9 us of host CPU, the core a few.
 *
 * Only where the result is the one the engine's step would give: an
 * instruction the core calls exact (registers, flags, x87/SSE, segments
 * and RAM only; no port, MSR, CPUID, TSC, CR/DR, descriptor-table load,
 * interrupt shadow or event of its own; IRET while no NMI is blocked), a
 * plain step (not a HLT run, no
 * `sstep irq on`, the step shadows on), no event the engine holds for the
 * next instruction (engine_lend_ops.events_pending), nothing that watches
 * accesses (watchpoints, data breakpoints, a guest breakpoint at RIP,
 * access catches). Everything else, and an instruction that meets port
 * I/O or MMIO on the way (the core's state is then dropped), is stepped
 * by the engine as before.
 *
 * The core steps the engine's view of the state (the step shadows'
 * RFLAGS: the guest's TF and IF kept by step.c, as for the engine), so
 * step.c's corrections before and after are the same for both paths. The
 * parts the instruction changed go to vcpu.c's cache only (staged) and
 * are written to the engine once, before it next runs the vCPU; the
 * step's exit is made as the engine reports one (a #DB with DR6.BS at the
 * next instruction; at a handler entry holding one of our int3s, the
 * breakpoint exit the engine's step would have met there) and handled
 * by the same code. `monitor sstep core engine` turns it off, and so
 * does VMDB_STEP_CORE=engine in vmdb's environment from the start (to
 * run a test suite over the engine's step path). */
#include "debug/debug_int.h"

#include <stdlib.h>
#include <string.h>

#include "debug/step_int.h"
#include "engine/emu/emu_single.h"
#include "x86/paging.h"

#define EXACT_INSN_MAX 15

/* The engine's view of the core, where the engine lends its state for it. */
static const struct emu_single_ops *exact_core_ops(struct debug *d)
{
	const struct engine_ops *eng = d->vm->engine;
	const struct emu_single_ops *core = d->vm->engine_assist;
	if (!eng->lend || !eng->lend->events_pending || !core || !core->exact ||
	    engine_lender(core) == eng)
		return NULL;
	return core;
}

/* The step the engine would take is a plain one of one instruction. */
static bool plain_step(struct debug *d, unsigned vcpu, const struct debug_step_vcpu *st)
{
	if (!st->armed || st->hlt_run || !st->shadow || !st->tf_shadow || d->sstep_irq ||
	    !st->insn.len)
		return false;
	switch (st->insn.kind) {
	case X86_INSN_HLT: case X86_INSN_INT: case X86_INSN_STI:
	case X86_INSN_MOV_SS: case X86_INSN_SYSCALL: case X86_INSN_SYSRET:
	/* the host groups a REP's iterations into its steps (step.c): one
	 * iteration a step here would give the guest's own TF more traps */
	case X86_INSN_REP_STRING:
		return false;
	default:
		break;
	}
	if (st->ran_on)
		return true;
	bool halted, waiting_sipi;
	debug_vcpu_run_state(d, vcpu, &halted, &waiting_sipi);
	return !halted && !waiting_sipi;
}

/* Nothing that watches the instruction's accesses or its start: those
 * checks are the engine's (or its hardware's). */
static bool unwatched(struct debug *d, unsigned vcpu, uint64_t pc)
{
	const struct engine_debug *dbg = &d->vcpus[vcpu].applied;
	if (dbg->access.nr || dbg->intercept_mov_dr)
		return false;
	for (unsigned n = 0; dbg->use_hw_bp && n < DEBUG_NR_HW_BP; n++) {
		if (!(dbg->dr7 & (DR7_L(n) | DR7_G(n))))
			continue;
		if (((dbg->dr7 >> (16 + 4 * n)) & 3) != DR7_RW_EXEC || dbg->db[n] == pc)
			return false;
	}
	pthread_mutex_lock(&d->lock);
	bool watching = d->nr_watch_ranges > 0;
	pthread_mutex_unlock(&d->lock);
	return !watching;
}

/* Nothing the engine holds for the next instruction; for an IRET, no
 * NMI blocking it would end. */
static bool events_clear(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	if (!dv->events_known) {
		bool pending = true, nmi_blocked = true;
		if (d->vm->engine->lend->events_pending(&d->vm->vcpus[vcpu], &pending,
							 &nmi_blocked) < 0)
			pending = nmi_blocked = true;
		dv->events_pending = pending;
		dv->nmi_blocked = nmi_blocked;
		dv->events_known = true;
	}
	return !dv->events_pending &&
	       !(dv->nmi_blocked && dv->st.insn.kind == X86_INSN_IRET);
}

/* The instruction's bytes as memory holds them now (a guard or step-over
 * int3 is out by now), and whether the core does it exactly: asked once
 * per decoded instruction (step.c's decode cache) whose bytes are these. */
static bool exact_insn(struct debug *d, const struct emu_single_ops *core,
		       struct debug_step_vcpu *st, uint64_t lin, uint8_t *bytes, unsigned *len,
		       unsigned *needs)
{
	unsigned n = st->insn.len;
	if (n > EXACT_INSN_MAX || step_read_virt(d, st, lin, bytes, n) < 0)
		return false;
	*len = n;
	struct debug_decoded *c = &st->decoded[lin % DEBUG_DECODED_SIZE];
	bool same = c->valid && c->mode == (uint8_t)x86_mode_of(&st->sregs) && c->nbytes >= n &&
		    memcmp(c->bytes, bytes, n) == 0;
	if (same && c->exact_known) {
		*needs = c->exact_needs;
		return c->exact_ok;
	}
	bool ok = core->exact(&st->sregs, bytes, n, needs);
	if (same) {
		c->exact_known = true;
		c->exact_ok = ok;
		c->exact_needs = *needs;
	}
	return ok;
}

static enum debug_exact_why exact_allowed(struct debug *d, unsigned vcpu, uint64_t pc)
{
	struct debug_step_vcpu *st = &d->vcpus[vcpu].st;
	if (d->step_exact_off || !exact_core_ops(d))
		return DEBUG_EXACT_OFF;
	if (!plain_step(d, vcpu, st) || !st->sregs_valid)
		return DEBUG_EXACT_MODE;
	if (!unwatched(d, vcpu, pc))
		return DEBUG_EXACT_DEBUG;
	if (!events_clear(d, vcpu))
		return DEBUG_EXACT_EVENT;
	return DEBUG_EXACT_WHYS;
}

static uint64_t linear_pc(const struct x86_sregs *s, uint64_t rip)
{
	enum x86_mode mode = x86_mode_of(s);
	if (mode == X86_MODE_LONG64)
		return rip;
	return (s->cs.base + rip) & 0xffffffffull;
}

/* The exit the engine's step would have ended with. */
static void exact_exit(struct debug *d, unsigned vcpu, const struct emu_single_state *es,
		       struct vm_exit *exit)
{
	uint64_t pc = linear_pc(&es->arch.sregs, es->arch.regs.rip);
	memset(exit, 0, sizeof(*exit));
	if (es->delivered) {
		/* the engine's step runs the handler's first instruction: one of
		 * our int3s there (a fault guard, a client breakpoint) exits */
		struct debug_sw_where where;
		debug_sw_where(d, vcpu, pc, &where);
		pthread_mutex_lock(&d->lock);
		bool ours = debug_sw_hit_locked(d, &where) != NULL;
		pthread_mutex_unlock(&d->lock);
		if (ours) {
			exit->reason = VM_EXIT_BPT;
			exit->bpt.pc = pc;
			return;
		}
	}
	exit->reason = VM_EXIT_DB;
	exit->db.pc = pc;
	exit->db.dr6 = DR6_INIT | DR6_BS;
	exit->db.dr7 = d->vcpus[vcpu].applied.dr7;
}

/* Run the step on the core: true with *exit filled when it was done
 * there (the changed state staged), false when the engine must. */
static bool exact_run(struct debug *d, unsigned vcpu, const struct emu_single_ops *core,
		      struct vm_exit *exit)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct debug_step_vcpu *st = &dv->st;
	uint8_t bytes[EXACT_INSN_MAX];
	unsigned len, needs;
	uint64_t lin = st->sregs.cs.base + st->regs.rip;
	if (!exact_insn(d, core, st, lin, bytes, &len, &needs)) {
		d->step_stats.engine_steps[DEBUG_EXACT_INSN]++;
		return false;
	}
	if (!dv->exact_core) {
		struct err e = { 0 };
		dv->exact_core = core->create(&d->vm->vcpus[vcpu], &e);
		if (!dv->exact_core) {
			d->step_stats.engine_steps[DEBUG_EXACT_OFF]++;
			return false;
		}
	}
	struct emu_single_state es;
	memset(&es, 0, sizeof(es));
	es.loaded = EMU_SINGLE_PART_REGS | EMU_SINGLE_PART_SREGS | needs;
	if (debug_vcpu_get(d, vcpu, es.loaded, &es.arch) < 0 ||
	    ((needs & EMU_SINGLE_PART_FPU) &&
	     !core->xcr0_ok(bytes, len, &es.arch.sregs, es.arch.xcr0))) {
		d->step_stats.engine_steps[DEBUG_EXACT_INSN]++;
		return false;
	}
	/* the engine's RFLAGS as its step would begin: the shadows' bits
	 * (the engine may show its own TF after a step of its own) */
	es.arch.regs.rflags = step_engine_flags(st, step_guest_flags(st, es.arch.regs.rflags));
	es.continues = dv->exact_chain && dv->exact_mem_gen == d->mem_gen;
	dv->exact_chain = false;
	struct vm_exit access;
	unsigned changed = 0;
	if (core->step(dv->exact_core, &es, bytes, len, false, &access, &changed) !=
	    EMU_SINGLE_DONE) {
		d->step_stats.engine_steps[DEBUG_EXACT_ACCESS]++;
		return false;
	}
	debug_vcpu_stage(d, vcpu, changed | EMU_SINGLE_PART_REGS, &es.arch);
	dv->exact_chain = true;
	dv->exact_mem_gen = d->mem_gen;
	if (changed & EMU_SINGLE_PART_SREGS)
		st->sregs_valid = false;
	d->step_stats.exact_steps++;
	exact_exit(d, vcpu, &es, exit);
	return true;
}

bool debug_step_exact(struct debug *d, unsigned vcpu, struct vm_exit *exit)
{
	struct debug_step_vcpu *st = &d->vcpus[vcpu].st;
	uint64_t pc = st->sregs.cs.base + st->regs.rip;
	enum debug_exact_why why = exact_allowed(d, vcpu, pc);
	if (why != DEBUG_EXACT_WHYS) {
		d->step_stats.engine_steps[why]++;
		return false;
	}
	return exact_run(d, vcpu, exact_core_ops(d), exit);
}

void debug_step_exact_drop(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	const struct emu_single_ops *core = d->vm->engine_assist;
	if (dv->exact_core && core)
		core->destroy(dv->exact_core);
	dv->exact_core = NULL;
}

bool debug_step_exact_off_by_env(void)
{
	const char *v = getenv("VMDB_STEP_CORE");
	return v && strcmp(v, "engine") == 0;
}

int debug_sstep_set_core(struct debug *d, bool exact, struct err *e)
{
	if (exact && !exact_core_ops(d))
		return err_set(e, ENOTSUP, "the %s engine has no exact core to step on here "
			       "(its own steps are the exact ones)", d->vm->engine->name);
	d->step_exact_off = !exact;
	return 0;
}

const char *debug_sstep_core(struct debug *d)
{
	if (!exact_core_ops(d))
		return "the engine's own (it has no other core to lend)";
	if (d->step_exact_off)
		return "the engine's (monitor sstep core engine)";
	return "exact: emu's one-instruction core over the state vmdb holds, where it does "
	       "the instruction exactly (monitor sstep core exact); the engine's otherwise";
}
