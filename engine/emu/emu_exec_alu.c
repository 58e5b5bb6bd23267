/* engine/emu/emu_exec_alu.c — general-purpose instructions: data
 * movement, arithmetic and logic with flags, shifts and rotates,
 * multiply/divide (#DE), bit operations, stack, near branches, conditions.
 * Every handler reads its operands first and writes its results last, so
 * a faulting access leaves the architectural state untouched. LOCK (and
 * XCHG with memory) needs nothing here: emu_exec.c runs such an
 * instruction's handler inside a host compare-and-swap (exec_locked),
 * atomic against the host threads that run other vCPUs under emu_single. */
#include "engine/emu/emu_core.h"

#include <Zydis/Zydis.h>

#include "engine/emu/emu_debug.h"

#define OP0 (in->op[0])
#define OP1 (in->op[1])

static unsigned sz0(const struct emu_insn *in)
{
	return in->op[0].size ? in->op[0].size : in->osize;
}

/* --- moves --------------------------------------------------------------------- */

static void h_mov(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_op_read(cpu, in, 1));
}

static void h_movzx(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_op_read(cpu, in, 1) & emu_mask(OP1.size));
}

static void h_movsx(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_sext(emu_op_read(cpu, in, 1), OP1.size));
}

static void h_lea(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_op_ea(cpu, in, &OP1));
}

static void h_nop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)cpu;
	(void)in;
}

static void h_xchg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t a = emu_op_read(cpu, in, 0), b = emu_op_read(cpu, in, 1);
	if (OP0.kind == EMU_OP_MEM) {
		emu_op_write(cpu, in, 0, b);
		emu_op_write(cpu, in, 1, a);
	} else {
		emu_op_write(cpu, in, 1, a);
		emu_op_write(cpu, in, 0, b);
	}
}

static void h_xadd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t a = emu_op_read(cpu, in, 0), b = emu_op_read(cpu, in, 1);
	uint64_t r = a + b;
	if (OP0.kind == EMU_OP_MEM) {           /* the access that can fault first */
		emu_op_write(cpu, in, 0, r);
		emu_op_write(cpu, in, 1, a);
	} else {                                /* SDM: SRC <- DEST, then DEST <- TEMP */
		emu_op_write(cpu, in, 1, a);
		emu_op_write(cpu, in, 0, r);
	}
	emu_flags(cpu, EMU_FL_ADD, a, b, r, s, 0);
}

static void h_cmpxchg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t dst = emu_op_read(cpu, in, 0), acc = cpu->gpr[EMU_RAX] & emu_mask(s);
	uint64_t r = acc - dst;
	if (acc == dst) {
		emu_op_write(cpu, in, 0, emu_op_read(cpu, in, 1));
	} else {
		/* the destination is written back unchanged (a locked RMW) */
		emu_op_write(cpu, in, 0, dst);
		emu_gpr_set(cpu, EMU_RAX, s, dst);
	}
	emu_flags(cpu, EMU_FL_SUB, acc, dst, r, s, 0);
}

/* CMPXCHG8B / CMPXCHG16B: EDX:EAX (RDX:RAX) against m64 (m128). */
static void h_cmpxchg_wide(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned half = in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG16B ? 8 : 4;
	uint64_t lin = emu_op_lin(cpu, in, &OP0);
	if (half == 8 && (lin & 15))
		emu_gp(cpu, 0);
	uint64_t lo = emu_read(cpu, lin, half), hi = emu_read(cpu, lin + half, half);
	uint64_t m = emu_mask(half);
	if (lo == (cpu->gpr[EMU_RAX] & m) && hi == (cpu->gpr[EMU_RDX] & m)) {
		uint8_t buf[16];
		uint64_t nlo = cpu->gpr[EMU_RBX] & m, nhi = cpu->gpr[EMU_RCX] & m;
		__builtin_memcpy(buf, &nlo, half);
		__builtin_memcpy(buf + half, &nhi, half);
		emu_write_bytes(cpu, lin, buf, 2 * half, false);
		cpu->rflags |= RFLAGS_ZF;
	} else {
		uint8_t buf[16];
		__builtin_memcpy(buf, &lo, half);
		__builtin_memcpy(buf + half, &hi, half);
		emu_write_bytes(cpu, lin, buf, 2 * half, false);
		emu_gpr_set(cpu, EMU_RAX, half, lo);
		emu_gpr_set(cpu, EMU_RDX, half, hi);
		cpu->rflags &= ~RFLAGS_ZF;
	}
}

static void h_bswap(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = emu_op_read(cpu, in, 0);
	if (OP0.size == 8)
		v = __builtin_bswap64(v);
	else if (OP0.size == 4)
		v = __builtin_bswap32((uint32_t)v);
	else
		v = 0;                      /* 16-bit BSWAP is undefined; zero as many CPUs do */
	emu_op_write(cpu, in, 0, v);
}

static void h_cbw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->osize;         /* destination size: 2 cbw, 4 cwde, 8 cdqe */
	emu_gpr_set(cpu, EMU_RAX, s, emu_sext(cpu->gpr[EMU_RAX], s / 2));
}

static void h_cwd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->osize;
	uint64_t sign = (cpu->gpr[EMU_RAX] >> (s * 8 - 1)) & 1;
	emu_gpr_set(cpu, EMU_RDX, s, sign ? ~0ull : 0);
}

static void h_cmov(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = emu_op_read(cpu, in, 1);
	if (emu_cond(cpu, in->opcode & 0xf))
		emu_op_write(cpu, in, 0, v);
	else if (OP0.size == 4)
		emu_gpr_set(cpu, OP0.reg, 4, cpu->gpr[OP0.reg]);   /* zero-extends even when false */
}

static void h_setcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_cond(cpu, in->opcode & 0xf));
}

static void h_xlat(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t ea = (cpu->gpr[EMU_RBX] + (cpu->gpr[EMU_RAX] & 0xff)) & emu_mask(in->asize);
	emu_gpr_set(cpu, EMU_RAX, 1, emu_read(cpu, emu_linear(cpu, in->seg, ea), 1));
}

/* --- arithmetic ------------------------------------------------------------------ */

static void arith(struct emu_cpu *cpu, const struct emu_insn *in, unsigned mnemonic)
{
	unsigned s = sz0(in);
	uint64_t a = emu_op_read(cpu, in, 0), b = emu_op_read(cpu, in, 1) & emu_mask(s);
	unsigned cin = (cpu->rflags & RFLAGS_CF) ? 1 : 0;
	uint64_t r;
	enum emu_flag_op fo;
	switch (mnemonic) {
	case ZYDIS_MNEMONIC_ADD: r = a + b; fo = EMU_FL_ADD; cin = 0; break;
	case ZYDIS_MNEMONIC_ADC: r = a + b + cin; fo = EMU_FL_ADD; break;
	case ZYDIS_MNEMONIC_SUB: case ZYDIS_MNEMONIC_CMP: r = a - b; fo = EMU_FL_SUB; cin = 0; break;
	case ZYDIS_MNEMONIC_SBB: r = a - b - cin; fo = EMU_FL_SUB; break;
	case ZYDIS_MNEMONIC_AND: case ZYDIS_MNEMONIC_TEST: r = a & b; fo = EMU_FL_LOGIC; break;
	case ZYDIS_MNEMONIC_OR: r = a | b; fo = EMU_FL_LOGIC; break;
	default: r = a ^ b; fo = EMU_FL_LOGIC; break;
	}
	if (mnemonic != ZYDIS_MNEMONIC_CMP && mnemonic != ZYDIS_MNEMONIC_TEST)
		emu_op_write(cpu, in, 0, r);
	emu_flags(cpu, fo, a, b, r, s, cin);
}

static void h_add(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_ADD); }
static void h_adc(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_ADC); }
static void h_sub(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_SUB); }
static void h_sbb(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_SBB); }
static void h_cmp(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_CMP); }
static void h_and(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_AND); }
static void h_or(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_OR); }
static void h_xor(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_XOR); }
static void h_test(struct emu_cpu *cpu, const struct emu_insn *in) { arith(cpu, in, ZYDIS_MNEMONIC_TEST); }

static void h_incdec(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	bool inc = in->mnemonic == ZYDIS_MNEMONIC_INC;
	uint64_t a = emu_op_read(cpu, in, 0), r = inc ? a + 1 : a - 1;
	uint64_t cf = cpu->rflags & RFLAGS_CF;
	emu_op_write(cpu, in, 0, r);
	emu_flags(cpu, inc ? EMU_FL_ADD : EMU_FL_SUB, a, 1, r, s, 0);
	cpu->rflags = (cpu->rflags & ~RFLAGS_CF) | cf;
}

static void h_neg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t a = emu_op_read(cpu, in, 0), r = -a;
	emu_op_write(cpu, in, 0, r);
	emu_flags(cpu, EMU_FL_SUB, 0, a, r, s, 0);
}

static void h_not(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, ~emu_op_read(cpu, in, 0));
}

/* --- shifts and rotates ---------------------------------------------------------- */

static unsigned shift_count(struct emu_cpu *cpu, const struct emu_insn *in, unsigned s)
{
	uint64_t n = in->nops > 1 ? emu_op_read(cpu, in, 1) : 1;
	return (unsigned)(n & (s == 8 ? 63 : 31));
}

static void set_cf_of(struct emu_cpu *cpu, bool cf, bool of)
{
	cpu->rflags &= ~(RFLAGS_CF | RFLAGS_OF);
	if (cf)
		cpu->rflags |= RFLAGS_CF;
	if (of)
		cpu->rflags |= RFLAGS_OF;
}

static void h_shift(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in), bits = s * 8;
	unsigned n = shift_count(cpu, in, s);
	uint64_t m = emu_mask(s), a = emu_op_read(cpu, in, 0) & m, r;
	if (n == 0) {
		emu_op_write(cpu, in, 0, a);   /* still an access (and a 32-bit zero-extension) */
		return;
	}
	bool cf, of;
	uint64_t sb = 1ull << (bits - 1);
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_SHL:
		r = n >= 64 ? 0 : (a << n) & m;
		cf = n <= bits ? (a >> (bits - n)) & 1 : 0;
		of = !!(r & sb) != cf;
		break;
	case ZYDIS_MNEMONIC_SHR:
		r = n >= 64 ? 0 : a >> n;
		cf = n <= bits ? (a >> (n - 1)) & 1 : 0;
		of = !!(a & sb);
		break;
	default: {   /* SAR */
		int64_t sa = (int64_t)emu_sext(a, s);
		r = (uint64_t)(sa >> (n >= bits ? bits - 1 : n)) & m;
		cf = n >= bits ? (sa < 0) : (sa >> (n - 1)) & 1;
		of = false;
		break;
	}
	}
	emu_op_write(cpu, in, 0, r);
	emu_flags(cpu, EMU_FL_LOGIC, r, 0, r, s, 0);
	set_cf_of(cpu, cf, of);
}

static void h_rotate(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in), bits = s * 8;
	unsigned raw = shift_count(cpu, in, s);
	uint64_t m = emu_mask(s), a = emu_op_read(cpu, in, 0) & m, r = a;
	bool cf = cpu->rflags & RFLAGS_CF, of;
	uint64_t sb = 1ull << (bits - 1);
	unsigned mn = in->mnemonic;
	if (mn == ZYDIS_MNEMONIC_ROL || mn == ZYDIS_MNEMONIC_ROR) {
		unsigned n = raw % bits;
		if (raw == 0) {
			emu_op_write(cpu, in, 0, a);
			return;
		}
		if (mn == ZYDIS_MNEMONIC_ROL) {
			r = n ? ((a << n) | (a >> (bits - n))) & m : a;
			cf = r & 1;
			of = !!(r & sb) != cf;
		} else {
			r = n ? ((a >> n) | (a << (bits - n))) & m : a;
			cf = !!(r & sb);
			of = !!(r & sb) != !!(r & (sb >> 1));
		}
	} else {
		unsigned n = raw % (bits + 1);
		if (raw == 0) {
			emu_op_write(cpu, in, 0, a);
			return;
		}
		for (unsigned i = 0; i < n; i++) {
			if (mn == ZYDIS_MNEMONIC_RCL) {
				bool out = r & sb;
				r = ((r << 1) | cf) & m;
				cf = out;
			} else {
				bool out = r & 1;
				r = (r >> 1) | (cf ? sb : 0);
				cf = out;
			}
		}
		if (mn == ZYDIS_MNEMONIC_RCL)
			of = !!(r & sb) != cf;
		else
			of = !!(r & sb) != !!(r & (sb >> 1));
	}
	emu_op_write(cpu, in, 0, r);
	set_cf_of(cpu, cf, of);
}

static void h_shld(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in), bits = s * 8;
	uint64_t m = emu_mask(s);
	uint64_t a = emu_op_read(cpu, in, 0) & m, b = emu_op_read(cpu, in, 1) & m;
	unsigned n = (unsigned)(emu_op_read(cpu, in, 2) & (s == 8 ? 63 : 31));
	if (n == 0) {
		emu_op_write(cpu, in, 0, a);
		return;
	}
	uint64_t r;
	bool cf;
	if (in->mnemonic == ZYDIS_MNEMONIC_SHLD) {
		/* n == bits (16-bit only) is defined: the result is the source */
		r = n > bits ? 0 : ((a << n) | (b >> (bits - n))) & m;
		cf = n <= bits ? (a >> (bits - n)) & 1 : 0;
	} else {
		r = n > bits ? 0 : ((a >> n) | (b << (bits - n))) & m;
		cf = (a >> (n - 1)) & 1;
	}
	emu_op_write(cpu, in, 0, r);
	emu_flags(cpu, EMU_FL_LOGIC, r, 0, r, s, 0);
	set_cf_of(cpu, cf, ((r ^ a) >> (bits - 1)) & 1);
}

/* --- multiply and divide ---------------------------------------------------------- */

static void h_mul(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t b = emu_op_read(cpu, in, 0) & emu_mask(s);
	uint64_t a = cpu->gpr[EMU_RAX] & emu_mask(s);
	unsigned __int128 p = (unsigned __int128)a * b;
	uint64_t lo = (uint64_t)p & emu_mask(s);
	uint64_t hi = s == 8 ? (uint64_t)(p >> 64) : (uint64_t)(p >> (s * 8)) & emu_mask(s);
	if (s == 1) {
		emu_gpr_set(cpu, EMU_RAX, 2, lo | (hi << 8));
	} else {
		emu_gpr_set(cpu, EMU_RAX, s, lo);
		emu_gpr_set(cpu, EMU_RDX, s, hi);
	}
	emu_flags(cpu, EMU_FL_LOGIC, lo, 0, lo, s, 0);
	set_cf_of(cpu, hi != 0, hi != 0);
}

static void h_imul(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	if (in->nops == 1) {
		__int128 a = (int64_t)emu_sext(cpu->gpr[EMU_RAX], s);
		__int128 b = (int64_t)emu_sext(emu_op_read(cpu, in, 0), s);
		__int128 p = a * b;
		uint64_t lo = (uint64_t)p & emu_mask(s);
		uint64_t hi = s == 8 ? (uint64_t)((unsigned __int128)p >> 64)
				     : (uint64_t)(p >> (s * 8)) & emu_mask(s);
		bool ovf = p != (__int128)(int64_t)emu_sext(lo, s);
		if (s == 1) {
			emu_gpr_set(cpu, EMU_RAX, 2, lo | (hi << 8));
		} else {
			emu_gpr_set(cpu, EMU_RAX, s, lo);
			emu_gpr_set(cpu, EMU_RDX, s, hi);
		}
		emu_flags(cpu, EMU_FL_LOGIC, lo, 0, lo, s, 0);
		set_cf_of(cpu, ovf, ovf);
		return;
	}
	unsigned src = in->nops == 3 ? 1 : 0, imm = in->nops == 3 ? 2 : 1;
	__int128 a = (int64_t)emu_sext(emu_op_read(cpu, in, src), s);
	__int128 b = (int64_t)emu_sext(emu_op_read(cpu, in, imm), s);
	__int128 p = a * b;
	uint64_t lo = (uint64_t)p & emu_mask(s);
	bool ovf = p != (__int128)(int64_t)emu_sext(lo, s);
	emu_op_write(cpu, in, 0, lo);
	emu_flags(cpu, EMU_FL_LOGIC, lo, 0, lo, s, 0);
	set_cf_of(cpu, ovf, ovf);
}

static void h_div(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t d = emu_op_read(cpu, in, 0) & emu_mask(s);
	if (d == 0)
		emu_fault(cpu, X86_DE, false, 0);
	unsigned __int128 n;
	if (s == 1)
		n = cpu->gpr[EMU_RAX] & 0xffff;
	else
		n = ((unsigned __int128)(cpu->gpr[EMU_RDX] & emu_mask(s)) << (s * 8)) |
		    (cpu->gpr[EMU_RAX] & emu_mask(s));
	unsigned __int128 q = n / d, r = n % d;
	if (q > emu_mask(s))
		emu_fault(cpu, X86_DE, false, 0);
	if (s == 1) {
		emu_gpr_set(cpu, EMU_RAX, 2, (uint64_t)q | ((uint64_t)r << 8));
	} else {
		emu_gpr_set(cpu, EMU_RAX, s, (uint64_t)q);
		emu_gpr_set(cpu, EMU_RDX, s, (uint64_t)r);
	}
}

static void h_idiv(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	__int128 d = (int64_t)emu_sext(emu_op_read(cpu, in, 0), s);
	if (d == 0)
		emu_fault(cpu, X86_DE, false, 0);
	__int128 n;
	if (s == 1) {
		n = (int16_t)(cpu->gpr[EMU_RAX] & 0xffff);
	} else {
		unsigned __int128 u = ((unsigned __int128)(cpu->gpr[EMU_RDX] & emu_mask(s)) << (s * 8)) |
				      (cpu->gpr[EMU_RAX] & emu_mask(s));
		unsigned total = s * 16;
		if (total < 128 && (u >> (total - 1)) & 1)
			u |= ~(unsigned __int128)0 << total;   /* sign-extend the 2s-wide dividend */
		n = (__int128)u;
	}
	if (s == 8 && d == -1 && (unsigned __int128)n == (unsigned __int128)1 << 127)
		emu_fault(cpu, X86_DE, false, 0);
	__int128 q = n / d, r = n % d;
	__int128 lim = (__int128)1 << (s * 8 - 1);
	if (q >= lim || q < -lim)
		emu_fault(cpu, X86_DE, false, 0);
	if (s == 1) {
		emu_gpr_set(cpu, EMU_RAX, 2, ((uint64_t)q & 0xff) | (((uint64_t)r & 0xff) << 8));
	} else {
		emu_gpr_set(cpu, EMU_RAX, s, (uint64_t)q);
		emu_gpr_set(cpu, EMU_RDX, s, (uint64_t)r);
	}
}

/* --- bit operations ------------------------------------------------------------ */

static void h_bt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in), bits = s * 8;
	uint64_t off = emu_op_read(cpu, in, 1);
	uint64_t v;
	unsigned bit;
	uint64_t lin = 0;
	bool mem = OP0.kind == EMU_OP_MEM;
	if (mem && OP1.kind == EMU_OP_REG) {
		/* register bit offsets address memory beyond the operand */
		int64_t soff = (int64_t)emu_sext(off, s);
		bit = (unsigned)(off & (bits - 1));     /* floor modulo: bits is a power of 2 */
		int64_t word = (soff - (int64_t)bit) / (int64_t)bits;   /* exact, even at INT64_MIN */
		lin = emu_op_lin(cpu, in, &OP0) + (uint64_t)(word * (int64_t)s);
		v = emu_read(cpu, lin, s);
	} else {
		bit = (unsigned)(off & (bits - 1));
		v = emu_op_read(cpu, in, 0);
		if (mem)
			lin = emu_op_lin(cpu, in, &OP0);
	}
	bool cf = (v >> bit) & 1;
	uint64_t nv = v;
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_BTS: nv = v | (1ull << bit); break;
	case ZYDIS_MNEMONIC_BTR: nv = v & ~(1ull << bit); break;
	case ZYDIS_MNEMONIC_BTC: nv = v ^ (1ull << bit); break;
	default: break;
	}
	if (in->mnemonic != ZYDIS_MNEMONIC_BT) {
		if (mem)
			emu_write(cpu, lin, s, nv);
		else
			emu_op_write(cpu, in, 0, nv);
	}
	cpu->rflags = (cpu->rflags & ~RFLAGS_CF) | (cf ? RFLAGS_CF : 0);
}

static void h_bsf_bsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in);
	uint64_t v = emu_op_read(cpu, in, 1) & emu_mask(s);
	if (v == 0) {
		cpu->rflags |= RFLAGS_ZF;
		return;                     /* destination unchanged (as AMD documents, Intel does) */
	}
	uint64_t r = in->mnemonic == ZYDIS_MNEMONIC_BSF ? (uint64_t)__builtin_ctzll(v)
							: (uint64_t)(63 - __builtin_clzll(v));
	emu_op_write(cpu, in, 0, r);
	cpu->rflags &= ~RFLAGS_ZF;
}

static void h_tzcnt_lzcnt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = sz0(in), bits = s * 8;
	uint64_t v = emu_op_read(cpu, in, 1) & emu_mask(s);
	uint64_t r;
	if (in->mnemonic == ZYDIS_MNEMONIC_TZCNT)
		r = v ? (uint64_t)__builtin_ctzll(v) : bits;
	else
		r = v ? (uint64_t)(__builtin_clzll(v) - (64 - bits)) : bits;
	emu_op_write(cpu, in, 0, r);
	cpu->rflags &= ~(RFLAGS_CF | RFLAGS_ZF);
	if (v == 0)
		cpu->rflags |= RFLAGS_CF;
	if (r == 0)
		cpu->rflags |= RFLAGS_ZF;
}

static void h_popcnt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t v = emu_op_read(cpu, in, 1) & emu_mask(sz0(in));
	emu_op_write(cpu, in, 0, (uint64_t)__builtin_popcountll(v));
	cpu->rflags &= ~RFLAGS_ARITH;
	if (v == 0)
		cpu->rflags |= RFLAGS_ZF;
}

/* --- flags instructions ------------------------------------------------------ */

static void h_flagop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_CLC: cpu->rflags &= ~RFLAGS_CF; break;
	case ZYDIS_MNEMONIC_STC: cpu->rflags |= RFLAGS_CF; break;
	case ZYDIS_MNEMONIC_CMC: cpu->rflags ^= RFLAGS_CF; break;
	case ZYDIS_MNEMONIC_CLD: cpu->rflags &= ~RFLAGS_DF; break;
	case ZYDIS_MNEMONIC_STD: cpu->rflags |= RFLAGS_DF; break;
	default: break;
	}
}

static void h_lahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	cpu->gpr[EMU_RAX] = (cpu->gpr[EMU_RAX] & ~0xff00ull) | ((cpu->rflags & 0xd7) << 8) | 0x200;
}

static void h_sahf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	uint64_t ah = (cpu->gpr[EMU_RAX] >> 8) & 0xd5;
	cpu->rflags = (cpu->rflags & ~0xd5ull) | ah | RFLAGS_FIXED1;
}

/* --- stack ------------------------------------------------------------------- */

static unsigned stack_osize(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)cpu;
	return in->osize;
}

static void h_push(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = stack_osize(cpu, in);
	uint64_t v = emu_op_read(cpu, in, 0);
	if (OP0.kind == EMU_OP_IMM)
		v = emu_sext(v, OP0.size ? OP0.size : s) & emu_mask(s);
	emu_push(cpu, s, v);
}

static void h_pop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = stack_osize(cpu, in);
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t v = emu_stack_get(cpu, &sp, s);
	if (OP0.kind == EMU_OP_REG && OP0.rclass == EMU_RC_SEG) {
		emu_load_seg(cpu, OP0.reg, (uint16_t)v);
		emu_set_sp(cpu, sp);
		if (OP0.reg == EMU_SS)
			cpu->interrupt_shadow = EMU_SHADOW_MOVSS;
		return;
	}
	if (OP0.kind == EMU_OP_MEM) {
		/* POP [rsp+x] computes the address with the incremented RSP */
		uint64_t old = cpu->gpr[EMU_RSP];
		cpu->gpr[EMU_RSP] = sp;
		uint64_t lin = emu_op_lin(cpu, in, &OP0);
		cpu->gpr[EMU_RSP] = old;
		emu_write(cpu, lin, s, v);
		emu_set_sp(cpu, sp);
		return;
	}
	emu_set_sp(cpu, sp);
	emu_op_write(cpu, in, 0, v);
}

static void h_leave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->osize;
	uint64_t sp = cpu->gpr[EMU_RBP] & emu_stack_mask(cpu);
	uint64_t v = emu_stack_get(cpu, &sp, s);
	emu_set_sp(cpu, sp);
	emu_gpr_set(cpu, EMU_RBP, s, v);
}

static void h_enter(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned s = in->osize;
	uint64_t size = (uint64_t)OP0.val & 0xffff;
	unsigned level = (unsigned)OP1.val & 31;
	uint64_t sp = cpu->gpr[EMU_RSP];
	emu_stack_put(cpu, &sp, s, cpu->gpr[EMU_RBP], false);
	uint64_t frame = sp;
	uint64_t bp = cpu->gpr[EMU_RBP];
	for (unsigned i = 1; i < level; i++) {
		bp = (bp - s) & emu_stack_mask(cpu);
		uint64_t v = emu_read(cpu, emu_linear(cpu, EMU_SS, bp), s);
		emu_stack_put(cpu, &sp, s, v, false);
	}
	if (level > 0)
		emu_stack_put(cpu, &sp, s, frame, false);
	sp = (sp - size) & emu_stack_mask(cpu);
	emu_gpr_set(cpu, EMU_RBP, s, frame);
	emu_set_sp(cpu, sp);
}

static void h_pushf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	/* VM and RF read as 0 in the image */
	emu_push(cpu, in->osize,
		 emu_dbg_rflags_image(cpu) & ~(RFLAGS_VM | RFLAGS_RF) & emu_mask(in->osize));
}

static void h_popf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_core *c = emu_core_of(cpu);
	unsigned s = in->osize;
	uint64_t v = emu_pop(cpu, s);
	uint64_t m = RFLAGS_ARITH | RFLAGS_TF | RFLAGS_DF | RFLAGS_NT;
	unsigned iopl = (cpu->rflags & RFLAGS_IOPL_MASK) >> 12;
	if (s >= 4)
		m |= RFLAGS_AC | RFLAGS_ID;
	if (c->cpl <= iopl)
		m |= RFLAGS_IF;
	if (c->cpl == 0)
		m |= RFLAGS_IOPL_MASK;
	emu_set_rflags(cpu, v, m);
	emu_dbg_rflags_loaded(cpu);
}

/* --- branches ------------------------------------------------------------------ */

static void h_jmp(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->flags & EMU_I_FAR) {
		if (OP0.kind == EMU_OP_PTR) {
			emu_far_jump(cpu, OP0.ptr_sel, (uint64_t)OP0.val, false, in->osize);
		} else {
			uint64_t lin = emu_op_lin(cpu, in, &OP0);
			uint64_t off = emu_read(cpu, lin, in->osize);
			uint16_t sel = (uint16_t)emu_read(cpu, lin + in->osize, 2);
			emu_far_jump(cpu, sel, off, false, in->osize);
		}
		return;
	}
	if (OP0.kind == EMU_OP_IMM)
		emu_branch(cpu, in, cpu->rip + (uint64_t)OP0.val);
	else
		emu_branch(cpu, in, emu_op_read(cpu, in, 0));
}

static void h_jcc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (emu_cond(cpu, in->opcode & 0xf))
		emu_branch(cpu, in, cpu->rip + (uint64_t)OP0.val);
}

static void h_jcxz(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if ((cpu->gpr[EMU_RCX] & emu_mask(in->asize)) == 0)
		emu_branch(cpu, in, cpu->rip + (uint64_t)OP0.val);
}

static void h_loop(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t cx = (cpu->gpr[EMU_RCX] - 1) & emu_mask(in->asize);
	bool take = cx != 0;
	if (in->mnemonic == ZYDIS_MNEMONIC_LOOPE)
		take = take && (cpu->rflags & RFLAGS_ZF);
	else if (in->mnemonic == ZYDIS_MNEMONIC_LOOPNE)
		take = take && !(cpu->rflags & RFLAGS_ZF);
	emu_gpr_set(cpu, EMU_RCX, in->asize, cx);
	if (take)
		emu_branch(cpu, in, cpu->rip + (uint64_t)OP0.val);
}

static void h_call(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->flags & EMU_I_FAR) {
		uint16_t sel;
		uint64_t off;
		if (OP0.kind == EMU_OP_PTR) {
			sel = OP0.ptr_sel;
			off = (uint64_t)OP0.val;
		} else {
			uint64_t lin = emu_op_lin(cpu, in, &OP0);
			off = emu_read(cpu, lin, in->osize);
			sel = (uint16_t)emu_read(cpu, lin + in->osize, 2);
		}
		emu_far_jump(cpu, sel, off, true, in->osize);
		return;
	}
	uint64_t target = OP0.kind == EMU_OP_IMM ? cpu->rip + (uint64_t)OP0.val
						 : emu_op_read(cpu, in, 0);
	emu_push(cpu, in->osize, cpu->rip);
	emu_branch(cpu, in, target);
}

static void h_ret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned pop = in->nops > 0 && OP0.kind == EMU_OP_IMM ? (unsigned)(OP0.val & 0xffff) : 0;
	if (in->flags & EMU_I_FAR) {
		emu_far_return(cpu, in->osize, pop);
		return;
	}
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t target = emu_stack_get(cpu, &sp, in->osize);
	emu_set_sp(cpu, sp + pop);
	emu_branch(cpu, in, target);
}

static const struct emu_handler_entry emu_exec_alu_table[] = {
	{ ZYDIS_MNEMONIC_MOV, h_mov },
	{ ZYDIS_MNEMONIC_MOVZX, h_movzx },
	{ ZYDIS_MNEMONIC_MOVSX, h_movsx },
	{ ZYDIS_MNEMONIC_MOVSXD, h_movsx },
	{ ZYDIS_MNEMONIC_LEA, h_lea },
	{ ZYDIS_MNEMONIC_NOP, h_nop },
	{ ZYDIS_MNEMONIC_ENDBR64, h_nop },
	{ ZYDIS_MNEMONIC_ENDBR32, h_nop },
	{ ZYDIS_MNEMONIC_XCHG, h_xchg },
	{ ZYDIS_MNEMONIC_XADD, h_xadd },
	{ ZYDIS_MNEMONIC_CMPXCHG, h_cmpxchg },
	{ ZYDIS_MNEMONIC_CMPXCHG8B, h_cmpxchg_wide },
	{ ZYDIS_MNEMONIC_CMPXCHG16B, h_cmpxchg_wide },
	{ ZYDIS_MNEMONIC_BSWAP, h_bswap },
	{ ZYDIS_MNEMONIC_CBW, h_cbw },
	{ ZYDIS_MNEMONIC_CWDE, h_cbw },
	{ ZYDIS_MNEMONIC_CDQE, h_cbw },
	{ ZYDIS_MNEMONIC_CWD, h_cwd },
	{ ZYDIS_MNEMONIC_CDQ, h_cwd },
	{ ZYDIS_MNEMONIC_CQO, h_cwd },
	{ ZYDIS_MNEMONIC_XLAT, h_xlat },
	{ ZYDIS_MNEMONIC_ADD, h_add },
	{ ZYDIS_MNEMONIC_ADC, h_adc },
	{ ZYDIS_MNEMONIC_SUB, h_sub },
	{ ZYDIS_MNEMONIC_SBB, h_sbb },
	{ ZYDIS_MNEMONIC_CMP, h_cmp },
	{ ZYDIS_MNEMONIC_AND, h_and },
	{ ZYDIS_MNEMONIC_OR, h_or },
	{ ZYDIS_MNEMONIC_XOR, h_xor },
	{ ZYDIS_MNEMONIC_TEST, h_test },
	{ ZYDIS_MNEMONIC_INC, h_incdec },
	{ ZYDIS_MNEMONIC_DEC, h_incdec },
	{ ZYDIS_MNEMONIC_NEG, h_neg },
	{ ZYDIS_MNEMONIC_NOT, h_not },
	{ ZYDIS_MNEMONIC_SHL, h_shift },
	{ ZYDIS_MNEMONIC_SHR, h_shift },
	{ ZYDIS_MNEMONIC_SAR, h_shift },
	{ ZYDIS_MNEMONIC_ROL, h_rotate },
	{ ZYDIS_MNEMONIC_ROR, h_rotate },
	{ ZYDIS_MNEMONIC_RCL, h_rotate },
	{ ZYDIS_MNEMONIC_RCR, h_rotate },
	{ ZYDIS_MNEMONIC_SHLD, h_shld },
	{ ZYDIS_MNEMONIC_SHRD, h_shld },
	{ ZYDIS_MNEMONIC_MUL, h_mul },
	{ ZYDIS_MNEMONIC_IMUL, h_imul },
	{ ZYDIS_MNEMONIC_DIV, h_div },
	{ ZYDIS_MNEMONIC_IDIV, h_idiv },
	{ ZYDIS_MNEMONIC_BT, h_bt },
	{ ZYDIS_MNEMONIC_BTS, h_bt },
	{ ZYDIS_MNEMONIC_BTR, h_bt },
	{ ZYDIS_MNEMONIC_BTC, h_bt },
	{ ZYDIS_MNEMONIC_BSF, h_bsf_bsr },
	{ ZYDIS_MNEMONIC_BSR, h_bsf_bsr },
	{ ZYDIS_MNEMONIC_TZCNT, h_tzcnt_lzcnt },
	{ ZYDIS_MNEMONIC_LZCNT, h_tzcnt_lzcnt },
	{ ZYDIS_MNEMONIC_POPCNT, h_popcnt },
	{ ZYDIS_MNEMONIC_CLC, h_flagop },
	{ ZYDIS_MNEMONIC_STC, h_flagop },
	{ ZYDIS_MNEMONIC_CMC, h_flagop },
	{ ZYDIS_MNEMONIC_CLD, h_flagop },
	{ ZYDIS_MNEMONIC_STD, h_flagop },
	{ ZYDIS_MNEMONIC_LAHF, h_lahf },
	{ ZYDIS_MNEMONIC_SAHF, h_sahf },
	{ ZYDIS_MNEMONIC_PUSH, h_push },
	{ ZYDIS_MNEMONIC_POP, h_pop },
	{ ZYDIS_MNEMONIC_LEAVE, h_leave },
	{ ZYDIS_MNEMONIC_ENTER, h_enter },
	{ ZYDIS_MNEMONIC_PUSHF, h_pushf },
	{ ZYDIS_MNEMONIC_PUSHFD, h_pushf },
	{ ZYDIS_MNEMONIC_PUSHFQ, h_pushf },
	{ ZYDIS_MNEMONIC_POPF, h_popf },
	{ ZYDIS_MNEMONIC_POPFD, h_popf },
	{ ZYDIS_MNEMONIC_POPFQ, h_popf },
	{ ZYDIS_MNEMONIC_JMP, h_jmp },
	{ ZYDIS_MNEMONIC_JO, h_jcc }, { ZYDIS_MNEMONIC_JNO, h_jcc },
	{ ZYDIS_MNEMONIC_JB, h_jcc }, { ZYDIS_MNEMONIC_JNB, h_jcc },
	{ ZYDIS_MNEMONIC_JZ, h_jcc }, { ZYDIS_MNEMONIC_JNZ, h_jcc },
	{ ZYDIS_MNEMONIC_JBE, h_jcc }, { ZYDIS_MNEMONIC_JNBE, h_jcc },
	{ ZYDIS_MNEMONIC_JS, h_jcc }, { ZYDIS_MNEMONIC_JNS, h_jcc },
	{ ZYDIS_MNEMONIC_JP, h_jcc }, { ZYDIS_MNEMONIC_JNP, h_jcc },
	{ ZYDIS_MNEMONIC_JL, h_jcc }, { ZYDIS_MNEMONIC_JNL, h_jcc },
	{ ZYDIS_MNEMONIC_JLE, h_jcc }, { ZYDIS_MNEMONIC_JNLE, h_jcc },
	{ ZYDIS_MNEMONIC_JCXZ, h_jcxz }, { ZYDIS_MNEMONIC_JECXZ, h_jcxz },
	{ ZYDIS_MNEMONIC_JRCXZ, h_jcxz },
	{ ZYDIS_MNEMONIC_LOOP, h_loop }, { ZYDIS_MNEMONIC_LOOPE, h_loop },
	{ ZYDIS_MNEMONIC_LOOPNE, h_loop },
	{ ZYDIS_MNEMONIC_SETO, h_setcc }, { ZYDIS_MNEMONIC_SETNO, h_setcc },
	{ ZYDIS_MNEMONIC_SETB, h_setcc }, { ZYDIS_MNEMONIC_SETNB, h_setcc },
	{ ZYDIS_MNEMONIC_SETZ, h_setcc }, { ZYDIS_MNEMONIC_SETNZ, h_setcc },
	{ ZYDIS_MNEMONIC_SETBE, h_setcc }, { ZYDIS_MNEMONIC_SETNBE, h_setcc },
	{ ZYDIS_MNEMONIC_SETS, h_setcc }, { ZYDIS_MNEMONIC_SETNS, h_setcc },
	{ ZYDIS_MNEMONIC_SETP, h_setcc }, { ZYDIS_MNEMONIC_SETNP, h_setcc },
	{ ZYDIS_MNEMONIC_SETL, h_setcc }, { ZYDIS_MNEMONIC_SETNL, h_setcc },
	{ ZYDIS_MNEMONIC_SETLE, h_setcc }, { ZYDIS_MNEMONIC_SETNLE, h_setcc },
	{ ZYDIS_MNEMONIC_CMOVO, h_cmov }, { ZYDIS_MNEMONIC_CMOVNO, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVB, h_cmov }, { ZYDIS_MNEMONIC_CMOVNB, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVZ, h_cmov }, { ZYDIS_MNEMONIC_CMOVNZ, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVBE, h_cmov }, { ZYDIS_MNEMONIC_CMOVNBE, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVS, h_cmov }, { ZYDIS_MNEMONIC_CMOVNS, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVP, h_cmov }, { ZYDIS_MNEMONIC_CMOVNP, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVL, h_cmov }, { ZYDIS_MNEMONIC_CMOVNL, h_cmov },
	{ ZYDIS_MNEMONIC_CMOVLE, h_cmov }, { ZYDIS_MNEMONIC_CMOVNLE, h_cmov },
	{ ZYDIS_MNEMONIC_CALL, h_call },
	{ ZYDIS_MNEMONIC_RET, h_ret },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_alu_table);
