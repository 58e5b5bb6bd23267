/* engine/emu/emu_exec.c — the core's run loop and what every instruction
 * handler shares: operands, the stack, flags and conditions.
 *
 * One instruction: interrupt/NMI check at the boundary (unless re-running
 * an instruction that left for the machine), the debug part's
 * before-instruction hook when it is armed, decode (cached), RIP = next,
 * the handler, retire (cpu->retired++), the after-instruction hook. A fault
 * anywhere longjmp()s back here with the exception in cpu->pending; it is
 * delivered at the top of the loop (#DF/shutdown rules in emu_exc.c).
 *
 * Where that boundary work has nothing to do (no replay, no shadow, no
 * HLT step, the debug part not armed, no interrupt to take) step() hands
 * over to emu_fast.c, which runs whole blocks of plain instructions with
 * lazy flags and looks again between blocks; the flags are made exact
 * before anything else here runs (emu_flags_sync). */
#include "engine/emu/emu_core.h"
#include "engine/emu/emu_flags.h"

#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"
#include "engine/emu/emu_stats.h"

/* --- operands --------------------------------------------------------------- */

uint64_t emu_op_ea(struct emu_cpu *cpu, const struct emu_insn *in, const struct emu_operand *o)
{
	uint64_t ea = (uint64_t)o->val;
	if (o->reg == EMU_RIPREL)
		ea += cpu->insn_start_rip + in->len;
	else if (o->reg != EMU_NOREG)
		ea += cpu->gpr[o->reg];
	if (o->index != EMU_NOREG)
		ea += cpu->gpr[o->index] * o->scale;
	return ea & emu_mask(in->asize);
}

uint64_t emu_op_lin(struct emu_cpu *cpu, const struct emu_insn *in, const struct emu_operand *o)
{
	return emu_linear(cpu, o->seg, emu_op_ea(cpu, in, o));
}

uint64_t emu_op_read(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i)
{
	const struct emu_operand *o = &in->op[i];
	switch (o->kind) {
	case EMU_OP_REG:
		switch (o->rclass) {
		case EMU_RC_GPR: return cpu->gpr[o->reg] & emu_mask(o->size);
		case EMU_RC_GPR8H: return (cpu->gpr[o->reg] >> 8) & 0xff;
		case EMU_RC_SEG: return emu_segreg(cpu, o->reg)->selector;
		default: return 0;
		}
	case EMU_OP_MEM:
		return emu_read(cpu, emu_op_lin(cpu, in, o), o->size > 8 ? 8 : o->size);
	case EMU_OP_IMM:
		return (uint64_t)o->val;
	default:
		return 0;
	}
}

void emu_op_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint64_t v)
{
	const struct emu_operand *o = &in->op[i];
	if (o->kind == EMU_OP_MEM) {
		emu_write(cpu, emu_op_lin(cpu, in, o), o->size > 8 ? 8 : o->size, v);
		return;
	}
	if (o->kind != EMU_OP_REG)
		return;
	if (o->rclass == EMU_RC_GPR)
		emu_gpr_set(cpu, o->reg, o->size, v);
	else if (o->rclass == EMU_RC_GPR8H)
		cpu->gpr[o->reg] = (cpu->gpr[o->reg] & ~0xff00ull) | ((v & 0xff) << 8);
}

/* --- stack ------------------------------------------------------------------- */

uint64_t emu_stack_mask(struct emu_cpu *cpu)
{
	if (emu_long64(cpu))
		return ~0ull;
	return cpu->sregs.ss.db ? 0xffffffffull : 0xffffull;
}

void emu_set_sp(struct emu_cpu *cpu, uint64_t sp)
{
	uint64_t m = emu_stack_mask(cpu);
	if (m == ~0ull || m == 0xffffffffull)
		cpu->gpr[EMU_RSP] = sp & m;
	else
		cpu->gpr[EMU_RSP] = (cpu->gpr[EMU_RSP] & ~m) | (sp & m);
}

void emu_stack_put(struct emu_cpu *cpu, uint64_t *sp, unsigned size, uint64_t v, bool sys)
{
	uint64_t m = emu_stack_mask(cpu);
	*sp = (*sp - size) & m;
	uint64_t lin = emu_linear(cpu, EMU_SS, *sp);
	if (sys)
		emu_write_sys(cpu, lin, size, v);
	else
		emu_write(cpu, lin, size, v);
}

uint64_t emu_stack_get(struct emu_cpu *cpu, uint64_t *sp, unsigned size)
{
	uint64_t m = emu_stack_mask(cpu);
	uint64_t v = emu_read(cpu, emu_linear(cpu, EMU_SS, *sp & m), size);
	*sp = (*sp + size) & m;
	return v;
}

void emu_push(struct emu_cpu *cpu, unsigned size, uint64_t v)
{
	uint64_t sp = cpu->gpr[EMU_RSP];
	emu_stack_put(cpu, &sp, size, v, false);
	emu_set_sp(cpu, sp);
}

uint64_t emu_pop(struct emu_cpu *cpu, unsigned size)
{
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t v = emu_stack_get(cpu, &sp, size);
	emu_set_sp(cpu, sp);
	return v;
}

/* --- flags (the evaluator is emu_flags.h's, shared with the fast path) ------ */

static uint64_t sign_bit(unsigned size)
{
	return 1ull << (size * 8 - 1);
}

void emu_flags_szp(struct emu_cpu *cpu, uint64_t r, unsigned size)
{
	uint64_t f = cpu->rflags & ~(RFLAGS_ZF | RFLAGS_SF | RFLAGS_PF);
	r &= emu_mask(size);
	if (r == 0)
		f |= RFLAGS_ZF;
	if (r & sign_bit(size))
		f |= RFLAGS_SF;
	if (!__builtin_parity((unsigned)(r & 0xff)))
		f |= RFLAGS_PF;
	cpu->rflags = f;
}

void emu_flags(struct emu_cpu *cpu, enum emu_flag_op op, uint64_t a, uint64_t b, uint64_t r,
	       unsigned size, unsigned cin)
{
	unsigned lf = op == EMU_FL_ADD ? (cin ? EMU_LF_ADC : EMU_LF_ADD)
		    : op == EMU_FL_SUB ? (cin ? EMU_LF_SBB : EMU_LF_SUB) : EMU_LF_LOGIC;
	cpu->rflags = (cpu->rflags & ~RFLAGS_ARITH) | emu_flags_eval(lf, a, b, r, size, false);
}

void emu_flags_sync_slow(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->lf_op != EMU_LF_NONE)
		cpu->rflags = (cpu->rflags & ~RFLAGS_ARITH) |
			      emu_flags_eval(c->lf_op, c->lf_a, c->lf_b, c->lf_r, c->lf_size,
					     c->lf_cf);
	c->lf_op = EMU_LF_NONE;
}

bool emu_cond(const struct emu_cpu *cpu, unsigned cc)
{
	return emu_rflags_cond(cpu->rflags, cc);
}

void emu_branch(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t target)
{
	if (emu_long64(cpu))
		cpu->rip = in->osize == 2 ? target & 0xffff : target;
	else
		cpu->rip = target & emu_mask(in->osize >= 4 ? 4 : 2);
}

void emu_set_rflags(struct emu_cpu *cpu, uint64_t value, uint64_t may_change)
{
	cpu->rflags = (cpu->rflags & ~may_change) | (value & may_change) | RFLAGS_FIXED1;
	emu_tlb_ac_changed(cpu);                /* SMAP entries AC allowed (emu_mem.c) */
}

/* --- the loop ------------------------------------------------------------------ */

bool emu_cpu_wakeable(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (cpu->wait_sipi)
		return false;
	if (cpu->pending.exception)
		return true;
	if (emu_irq_blocked(cpu))
		return false;
	if (cpu->pending.nmi && !c->nmi_blocked)
		return true;
	return (cpu->rflags & RFLAGS_IF) && emu_lapic_has_interrupt(cpu) &&
	       emu_lapic_pending_vector(cpu) >= 0;
}

bool emu_irq_blocked(struct emu_cpu *cpu)
{
	return !emu_core_of(cpu)->hlt_step && emu_dbg_irq_blocked(cpu);
}

/* The end of a stepped HLT: back after it, the step exit is due. */
static bool hlt_step_done(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (!c->hlt_step || cpu->halted || cpu->rip != c->hlt_next ||
	    cpu->gpr[EMU_RSP] != c->hlt_rsp)
		return false;
	c->hlt_step = false;
	emu_dbg_set_debug(cpu, &c->hlt_saved);
	memset(&cpu->exit, 0, sizeof(cpu->exit));
	cpu->exit.reason = VM_EXIT_DB;
	cpu->exit.db.pc = emu_linear(cpu, EMU_CS, cpu->rip);
	cpu->exit.db.dr6 = DR6_BS;
	cpu->exit.db.dr7 = cpu->dr.dr7;
	return true;
}

/* An NMI or interrupt at this boundary: delivered, true. */
static bool take_interrupt(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (emu_irq_blocked(cpu))
		return false;
	if (cpu->pending.nmi && !c->nmi_blocked && !(cpu->interrupt_shadow & EMU_SHADOW_MOVSS)) {
		cpu->pending.nmi = false;
		emu_flags_sync(cpu);
		emu_deliver(cpu, X86_NMI, EMU_EV_NMI, false, 0);
		return true;
	}
	if (!(cpu->rflags & RFLAGS_IF) || cpu->interrupt_shadow || !emu_lapic_has_interrupt(cpu))
		return false;
	int v = emu_lapic_pending_vector(cpu);
	if (v < 0)
		return false;
	emu_lapic_accept(cpu, v);
	emu_flags_sync(cpu);
	emu_deliver(cpu, (uint8_t)v, EMU_EV_EXT, false, 0);
	return true;
}

static uint64_t next_rip(struct emu_cpu *cpu, unsigned len)
{
	uint64_t n = cpu->rip + len;
	switch (emu_core_of(cpu)->mode) {
	case X86_MODE_LONG64: return n;
	case X86_MODE_PROT32: case X86_MODE_COMPAT: return (uint32_t)n;
	default: return cpu->sregs.cs.db ? (uint32_t)n : (uint16_t)n;
	}
}

/* --- locked read-modify-writes ------------------------------------------------- */

/* emu_single.c runs this core for one instruction of a KVM vCPU while the
 * other vCPUs run on the host's CPUs, so a LOCK-prefixed instruction (and
 * XCHG with memory) must be atomic against them: when its memory operand
 * is naturally aligned RAM, the operand is read atomically, the handler
 * computes the result as usual with the write held back (emu_mem.c), and
 * a compare-and-swap commits it; when another writer got in between, the
 * registers and flags are put back and the instruction runs again. An
 * operand that is not aligned RAM (split or device) is accessed as any
 * other, not atomically against other host threads. Within the emu engine
 * one vCPU executes at a time, so the fast path (emu_fast.c) needs none
 * of this. */
static bool is_locked_rmw(const struct emu_insn *in)
{
	if (in->flags & EMU_I_LOCK)
		return true;
	return in->mnemonic == ZYDIS_MNEMONIC_XCHG &&
	       (in->op[0].kind == EMU_OP_MEM || in->op[1].kind == EMU_OP_MEM);
}

static bool cas_n(uint8_t *p, uint64_t old, uint64_t new, unsigned size)
{
	switch (size) {
	case 1: {
		uint8_t o = (uint8_t)old;
		return __atomic_compare_exchange_n(p, &o, (uint8_t)new, false, __ATOMIC_SEQ_CST,
						   __ATOMIC_SEQ_CST);
	}
	case 2: {
		uint16_t o = (uint16_t)old;
		return __atomic_compare_exchange_n((uint16_t *)p, &o, (uint16_t)new, false,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	case 4: {
		uint32_t o = (uint32_t)old;
		return __atomic_compare_exchange_n((uint32_t *)p, &o, (uint32_t)new, false,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
	default:
		return __atomic_compare_exchange_n((uint64_t *)p, &old, new, false,
						   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	}
}

bool emu_cas16(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi)
{
	bool ok;
	__asm__ volatile("lock cmpxchg16b %1"
			 : "=@ccz"(ok), "+m"(*(volatile unsigned __int128 *)p), "+a"(*lo),
			   "+d"(*hi)
			 : "b"(nlo), "c"(nhi)
			 : "memory");
	return ok;
}

/* CMPXCHG8B / CMPXCHG16B on aligned RAM: one host compare-and-swap (the
 * same accesses for the debug part as h_cmpxchg_wide). false: not aligned
 * RAM, the handler does it. */
static bool cmpxchg_wide_locked(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned half = in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B ? 8 : 4;
	uint64_t lin = emu_op_lin(cpu, in, &in->op[0]);
	if (half == 8 && (lin & 15))
		emu_gp(cpu, 0);
	uint8_t *p = emu_lock_ptr(cpu, lin, 2 * half);
	if (!p)
		return false;
	if (emu_core_of(cpu)->dbg_armed) {
		emu_dbg_mem(cpu, lin, half, false);
		emu_dbg_mem(cpu, lin + half, half, false);
		emu_dbg_mem(cpu, lin, 2 * half, true);
	}
	uint64_t m = emu_mask(half);
	uint64_t lo = cpu->gpr[EMU_RAX] & m, hi = cpu->gpr[EMU_RDX] & m;
	uint64_t nlo = cpu->gpr[EMU_RBX] & m, nhi = cpu->gpr[EMU_RCX] & m;
	bool ok;
	if (half == 8) {
		ok = emu_cas16(p, &lo, &hi, nlo, nhi);
	} else {
		uint64_t v = lo | hi << 32;
		ok = __atomic_compare_exchange_n((uint64_t *)p, &v, nlo | nhi << 32, false,
						 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
		lo = v & m;
		hi = v >> 32;
	}
	if (ok) {
		cpu->rflags |= RFLAGS_ZF;
	} else {
		emu_gpr_set(cpu, EMU_RAX, half, lo);
		emu_gpr_set(cpu, EMU_RDX, half, hi);
		cpu->rflags &= ~RFLAGS_ZF;
	}
	return true;
}

static void exec_locked(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_core *c = emu_core_of(cpu);
	if (in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG8B || in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B) {
		if (!cmpxchg_wide_locked(cpu, in))
			in->fn(cpu, in);
		return;
	}
	uint64_t gpr[16], rflags = cpu->rflags;
	memcpy(gpr, cpu->gpr, sizeof(gpr));
	for (;;) {
		c->lk_on = true;
		c->lk_p = NULL;
		c->lk_written = false;
		in->fn(cpu, in);
		c->lk_on = false;
		if (!c->lk_p || !c->lk_written ||
		    cas_n(c->lk_p, c->lk_old, c->lk_new, c->lk_size))
			return;
		memcpy(cpu->gpr, gpr, sizeof(gpr));  /* another writer came first: again */
		cpu->rflags = rflags;
	}
}

static void step(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->replay_n == 0) {
		if (hlt_step_done(cpu))
			return;
		/* never inside a REP's batch: its iterations one per step (the
		 * debug part armed) are one step otherwise */
		if (!c->rep_batch && take_interrupt(cpu))
			return;
		c->dbg_armed = emu_dbg_armed(cpu);
		if ((!c->dbg_armed || emu_dbg_data_only(cpu)) && !cpu->interrupt_shadow &&
		    !c->hlt_step && cpu->evm->blocks && emu_block_run(cpu))
			return;                /* nothing to check per instruction: a block */
		if (c->dbg_armed) {
			uint64_t lin = emu_linear(cpu, EMU_CS, cpu->rip);
			if (emu_dbg_before_insn(cpu, lin))
				return;
		}
	}
	emu_flags_sync(cpu);               /* lazy after a block (emu_fast.c) */
	cpu->insn_start_rip = cpu->rip;
	c->replay_pos = 0;
	struct emu_insn scratch;
	const struct emu_insn *in = emu_decode_at(cpu, &scratch);
	uint64_t rflags_before = cpu->rflags;
	cpu->interrupt_shadow = 0;
	c->event_in_insn = false;
	c->rep_pending = false;
	cpu->rip = next_rip(cpu, in->len);
	emu_insn_stat(cpu->evm->insn_stats, EMU_STAT_STEP, in->mnemonic);
	if (__builtin_expect(is_locked_rmw(in), 0))
		exec_locked(cpu, in);
	else
		in->fn(cpu, in);
	c->replay_n = 0;
	cpu->retired++;
	/* an instruction that delivered an event (INT n, INT3, INT1) leaves
	 * its traps to the new context (emu_debug.h, contract 3) */
	if (!(c->dbg_armed || emu_dbg_armed(cpu)))
		return;
	if (c->event_in_insn)
		emu_dbg_event_in_insn(cpu);
	else
		emu_dbg_end_insn(cpu, rflags_before);
}

static enum emu_stop loop_done(struct emu_cpu *cpu, enum emu_stop s)
{
	struct emu_core *c = emu_core_of(cpu);
	emu_flags_sync(cpu);
	c->in_loop = false;
	return s;
}

enum emu_stop emu_exec_run(struct emu_cpu *cpu, uint64_t budget)
{
	struct emu_core *c = emu_core_of(cpu);
	cpu->exit.reason = VM_EXIT_NONE;
	if (c->shutdown) {
		cpu->exit.reason = VM_EXIT_SHUTDOWN;
		return EMU_STOP_EXIT;
	}
	c->budget_end = cpu->retired + budget;
	/* another vCPU gave frames blocks: this TLB's stores into them must
	 * count (EMU_TAG_CODE) */
	if (__builtin_expect(c->code_marks != cpu->evm->code_marks, 0))
		emu_tlb_mark_code(cpu);
	c->in_loop = true;
	switch (setjmp(c->jmp)) {
	case EMU_JMP_EXIT:
		c->rep_batch = 0;     /* the instruction runs again: a new batch, as a step's */
		return loop_done(cpu, EMU_STOP_EXIT);
	case EMU_JMP_FAULT:
		c->rep_batch = 0;
		if (c->dbg_armed || emu_dbg_armed(cpu))
			emu_dbg_fault(cpu);
		/* a fault uses the budget as a retired instruction does: a
		 * handler that faults again and again (which real mode lets
		 * go on for ever) still gives up the run token */
		if (c->budget_end > cpu->retired)
			c->budget_end--;
		break;
	default:
		break;
	}
	for (;;) {
		/* an exit and a #DB at one boundary: the exit first (emu_debug.h) */
		if (cpu->exit.reason != VM_EXIT_NONE)
			return loop_done(cpu, EMU_STOP_EXIT);
		if (cpu->pending.exception) {
			emu_flags_sync(cpu);
			if (!emu_deliver_pending(cpu))
				return loop_done(cpu, EMU_STOP_EXIT);
			continue;
		}
		if (__atomic_load_n(&c->kick, __ATOMIC_RELAXED))
			return loop_done(cpu, EMU_STOP_KICKED);
		if (cpu->wait_sipi)
			return loop_done(cpu, EMU_STOP_HLT);
		if (cpu->halted) {
			if (!take_interrupt(cpu))
				return loop_done(cpu, EMU_STOP_HLT);
			continue;
		}
		if (cpu->retired >= c->budget_end)
			return loop_done(cpu, EMU_STOP_QUANTUM);
		step(cpu);
	}
}
