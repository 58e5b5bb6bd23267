/* engine/emu/emu_flags.h — private to the execution core: the one
 * evaluator of the arithmetic flags and of conditions, shared by the
 * exact path (emu_exec*.c, which keeps cpu->rflags exact after every
 * instruction: emu_flags(), emu_cond()) and the fast path (emu_fast*.c,
 * which records how to compute them and computes them only when something
 * looks: emu_core.lf_*, emu_flags_sync()).
 *
 * A flags-setting operation is described by an enum emu_lf and its
 * operands a, b and result r at an operand size: emu_flags_eval() turns
 * that into the six arithmetic bits, emu_lf_cond() tests a condition on it
 * without computing the others. Both work on values, not branches on them
 * where that can be helped: they follow the guest's data, which the host
 * cannot predict. Always inlined: the fast path's handlers fold a
 * constant condition or operation into them (one handler per condition),
 * and a call would cost them their frameless tail calls. */
#ifndef VMDB_EMU_FLAGS_H
#define VMDB_EMU_FLAGS_H

#include "engine/emu/emu_core.h"

/* How the arithmetic flags follow from (a, b, r):
 *   ADD/SUB       a + b / a - b; ADC/SBB: the same with a carry in of 1
 *   INC/DEC       a + 1 / a - 1, CF kept (emu_core.lf_cf)
 *   LOGIC         CF = OF = AF = 0
 *   LOGIC_CO      as LOGIC but CF = b bit 0, OF = b bit 1 (shifts, IMUL)
 *   ROT           a rotate after another lazy operation: SF, ZF and PF
 *                 from r (the earlier result, kept), AF = b's AF bit, CF
 *                 and OF as LOGIC_CO, so a rotate never makes flags exact */
#define EMU_FLAGS_INLINE static inline __attribute__((always_inline))

enum emu_lf {
	EMU_LF_NONE,                   /* cpu->rflags is exact */
	EMU_LF_ADD, EMU_LF_SUB, EMU_LF_LOGIC, EMU_LF_INC, EMU_LF_DEC, EMU_LF_LOGIC_CO,
	EMU_LF_ROT, EMU_LF_ADC, EMU_LF_SBB,
};

/* The RFLAGS_ARITH bits of operation op (not NONE) at size bytes. */
EMU_FLAGS_INLINE uint64_t emu_flags_eval(unsigned op, uint64_t a, uint64_t b, uint64_t r,
					unsigned size, bool kept_cf)
{
	unsigned top = size * 8 - 1;
	uint64_t m = emu_mask(size);
	uint64_t cf, of, af;
	a &= m;
	b &= m;
	r &= m;
	switch (op) {
	case EMU_LF_ADD: case EMU_LF_ADC: case EMU_LF_INC:
		cf = op == EMU_LF_ADD ? r < a : op == EMU_LF_ADC ? r <= a : kept_cf;
		of = (((a ^ r) & (b ^ r)) >> top) & 1;
		af = (a ^ b ^ r) & RFLAGS_AF;
		break;
	case EMU_LF_SUB: case EMU_LF_SBB: case EMU_LF_DEC:
		cf = op == EMU_LF_SUB ? a < b : op == EMU_LF_SBB ? a <= b : kept_cf;
		of = (((a ^ b) & (a ^ r)) >> top) & 1;
		af = (a ^ b ^ r) & RFLAGS_AF;
		break;
	case EMU_LF_LOGIC_CO: case EMU_LF_ROT:
		cf = b & 1;
		of = (b >> 1) & 1;
		af = op == EMU_LF_ROT ? b & RFLAGS_AF : 0;
		break;
	default:                       /* LOGIC */
		cf = of = af = 0;
		break;
	}
	return cf * RFLAGS_CF | of * RFLAGS_OF | af | (uint64_t)(r == 0) * RFLAGS_ZF |
	       ((r >> top) & 1) * RFLAGS_SF |
	       (uint64_t)!__builtin_parity((unsigned)(r & 0xff)) * RFLAGS_PF;
}

/* Condition cc (the low nibble of Jcc/SETcc/CMOVcc) of exact flags. */
EMU_FLAGS_INLINE bool emu_rflags_cond(uint64_t fl, unsigned cc)
{
	bool sf_ne_of = !!(fl & RFLAGS_SF) != !!(fl & RFLAGS_OF), v;
	switch (cc >> 1) {
	case 0: v = fl & RFLAGS_OF; break;
	case 1: v = fl & RFLAGS_CF; break;
	case 2: v = fl & RFLAGS_ZF; break;
	case 3: v = fl & (RFLAGS_CF | RFLAGS_ZF); break;
	case 4: v = fl & RFLAGS_SF; break;
	case 5: v = fl & RFLAGS_PF; break;
	case 6: v = sf_ne_of; break;
	default: v = sf_ne_of || (fl & RFLAGS_ZF); break;
	}
	return (cc & 1) ? !v : v;
}

/* CF now: of the recorded operation as emu_flags_eval computes it, or
 * the exact flag (NONE). One switch with NONE among its cases: the host
 * dispatches it with one jump. */
EMU_FLAGS_INLINE bool emu_cf_now(const struct emu_cpu *cpu, const struct emu_core *c)
{
	uint64_t m = emu_mask(c->lf_size);
	switch (c->lf_op) {
	case EMU_LF_ADD: return (c->lf_r & m) < (c->lf_a & m);
	case EMU_LF_SUB: return (c->lf_a & m) < (c->lf_b & m);
	case EMU_LF_ADC: return (c->lf_r & m) <= (c->lf_a & m);
	case EMU_LF_SBB: return (c->lf_a & m) <= (c->lf_b & m);
	case EMU_LF_LOGIC: return false;
	case EMU_LF_LOGIC_CO: case EMU_LF_ROT: return c->lf_b & 1;
	case EMU_LF_INC: case EMU_LF_DEC: return c->lf_cf;
	default: return cpu->rflags & RFLAGS_CF;
	}
}

/* OF of the recorded operation (lf_op not NONE). */
EMU_FLAGS_INLINE bool emu_lf_of(const struct emu_core *c)
{
	uint64_t sb = 1ull << (c->lf_size * 8 - 1);
	uint64_t a = c->lf_a, b = c->lf_b, r = c->lf_r;
	switch (c->lf_op) {
	case EMU_LF_ADD: case EMU_LF_ADC: case EMU_LF_INC: return (a ^ r) & (b ^ r) & sb;
	case EMU_LF_SUB: case EMU_LF_SBB: case EMU_LF_DEC: return (a ^ b) & (a ^ r) & sb;
	case EMU_LF_LOGIC_CO: case EMU_LF_ROT: return b & 2;
	default: return false;
	}
}

/* Condition cc now: from exact flags, or from the recorded operation
 * without making the flags exact (lf_r is masked to lf_size). */
EMU_FLAGS_INLINE bool emu_cond_now(const struct emu_cpu *cpu, const struct emu_core *c,
				    unsigned cc)
{
	if (c->lf_op == EMU_LF_NONE)
		return emu_rflags_cond(cpu->rflags, cc);
	unsigned top = c->lf_size * 8 - 1;
	uint64_t r = c->lf_r;
	bool v;
	switch (cc >> 1) {
	case 0: v = emu_lf_of(c); break;
	case 1: v = emu_cf_now(cpu, c); break;
	case 2: v = r == 0; break;
	case 3: v = r == 0 || emu_cf_now(cpu, c); break;
	case 4: v = (r >> top) & 1; break;
	case 5: v = !__builtin_parity((unsigned)(r & 0xff)); break;
	case 6: v = ((r >> top) & 1) != emu_lf_of(c); break;
	default: v = r == 0 || ((r >> top) & 1) != emu_lf_of(c); break;
	}
	return (cc & 1) ? !v : v;
}

/* Record operation op for the flags instead of computing them. */
EMU_FLAGS_INLINE void emu_lf_record(struct emu_core *c, uint8_t op, uint64_t a, uint64_t b,
				   uint64_t r, unsigned size)
{
	c->lf_op = op;
	c->lf_size = (uint8_t)size;
	c->lf_a = a;
	c->lf_b = b;
	c->lf_r = r & emu_mask(size);
}

#endif
