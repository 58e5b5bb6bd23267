/* engine/emu/emu_exec_sse.c — SSE state and data movement: the XMM moves
 * (MOVD/MOVQ, MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD, MOVSS/MOVSD,
 * MOVHPS/MOVLPS/MOVHPD/MOVLPD, MOVHLPS/MOVLHPS, the non-temporal stores,
 * LDDQU, MOVDDUP/MOVSHDUP/MOVSLDUP), MOVMSKPS/MOVMSKPD/PMOVMSKB, 128-bit
 * logic (PXOR/POR/PAND/PANDN and the PS/PD forms), PCMPEQB/W/D, MXCSR
 * access, FXSAVE/FXRSTOR and XSAVE/XSAVEOPT/XSAVEC/XRSTOR (standard and
 * compacted) for the x87 and SSE components
 * (XCR0 may only enable those two). The shared operand rules are
 * in emu_sse.h; packed integer work is in emu_exec_sse_int.c, floating
 * point in emu_exec_sse_fp.c; the x87 is emu_exec_x87.c's. */
#include "engine/emu/emu_sse.h"

#include <string.h>
#include <Zydis/Zydis.h>

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define CR4_OSXSAVE_BIT (1ull << 18)
#define MXCSR_MASK 0xffffu
#define XSAVE_HDR 512
#define XCOMP_COMPACTED (1ull << 63)     /* XCOMP_BV: the image is in the compacted format */
#define MXCSR_INIT 0x1f80u

void emu_sse_check(struct emu_cpu *cpu)
{
	if ((cpu->sregs.cr0 & CR0_EM) || !(cpu->sregs.cr4 & CR4_OSFXSR))
		emu_ud(cpu);
	if (cpu->sregs.cr0 & CR0_TS)
		emu_fault(cpu, X86_NM, false, 0);
}

bool emu_sse_is_xmm(const struct emu_operand *o)
{
	return o->kind == EMU_OP_REG && o->rclass == EMU_RC_XMM;
}

/* Which bits of the low and high halves of an XMM value size bytes
 * cover. Values move by words: a copy of variable length is one the
 * compiler makes a REP MOVS, slow for 4 to 16 bytes. */
static inline void low_masks(unsigned size, uint64_t *mlo, uint64_t *mhi)
{
	*mlo = size >= 8 ? ~0ull : emu_mask(size);
	*mhi = size >= 16 ? ~0ull : size <= 8 ? 0 : emu_mask(size - 8);
}

/* The low size bytes of lo:hi into out, the rest zero. */
static inline void put_low(uint8_t out[16], uint64_t lo, uint64_t hi, unsigned size)
{
	uint64_t mlo, mhi;
	low_masks(size, &mlo, &mhi);
	lo &= mlo;
	hi &= mhi;
	memcpy(out, &lo, 8);
	memcpy(out + 8, &hi, 8);
}

/* size bytes of operand i into a zeroed 16-byte buffer. */
static void sse_read(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint8_t out[16],
		     unsigned size, bool aligned)
{
	const struct emu_operand *o = &in->op[i];
	if (emu_sse_is_xmm(o)) {
		uint64_t lo, hi;
		memcpy(&lo, cpu->fpu.xmm[o->reg & 15], 8);
		memcpy(&hi, cpu->fpu.xmm[o->reg & 15] + 8, 8);
		put_low(out, lo, hi, size);
	} else if (o->kind == EMU_OP_MEM) {
		uint64_t lin = emu_op_lin(cpu, in, o);
		if (aligned && size == 16 && (lin & 15))
			emu_gp(cpu, 0);
		memset(out, 0, 16);
		emu_read_bytes(cpu, lin, out, size, false);
	} else if (o->kind == EMU_OP_REG && o->rclass == EMU_RC_GPR) {
		put_low(out, cpu->gpr[o->reg], 0, size);
	} else if (o->kind == EMU_OP_IMM) {
		put_low(out, (uint64_t)o->val, 0, size);
	} else {
		emu_unimplemented(cpu, in);
	}
}

void emu_sse_src(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint8_t out[16],
		 bool aligned)
{
	const struct emu_operand *o = &in->op[i];
	unsigned size = emu_sse_is_xmm(o) ? 16 : o->kind == EMU_OP_IMM ? 1 : o->size;
	if (size == 0 || size > 16)
		emu_unimplemented(cpu, in);
	sse_read(cpu, in, i, out, size, aligned);
}

void emu_sse_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i,
		   const uint8_t v[16], unsigned size, bool aligned, bool zero_rest)
{
	const struct emu_operand *o = &in->op[i];
	if (emu_sse_is_xmm(o)) {
		uint8_t *x = cpu->fpu.xmm[o->reg & 15];
		uint64_t lo, hi, keep_lo = 0, keep_hi = 0, mlo, mhi;
		memcpy(&lo, v, 8);
		memcpy(&hi, v + 8, 8);
		if (!zero_rest) {
			memcpy(&keep_lo, x, 8);
			memcpy(&keep_hi, x + 8, 8);
		}
		low_masks(size, &mlo, &mhi);
		lo = (lo & mlo) | (keep_lo & ~mlo);
		hi = (hi & mhi) | (keep_hi & ~mhi);
		memcpy(x, &lo, 8);
		memcpy(x + 8, &hi, 8);
	} else if (o->kind == EMU_OP_MEM) {
		uint64_t lin = emu_op_lin(cpu, in, o);
		if (aligned && size == 16 && (lin & 15))
			emu_gp(cpu, 0);
		emu_write_bytes(cpu, lin, v, size, false);
	} else if (o->kind == EMU_OP_REG && o->rclass == EMU_RC_GPR) {
		uint64_t x;
		memcpy(&x, v, 8);
		emu_gpr_set(cpu, o->reg, size > 8 ? 8 : size, x);
	} else {
		emu_unimplemented(cpu, in);
	}
}

/* Both operands must be XMM, memory or a GPR. */
static bool xmm_form(struct emu_cpu *cpu, const struct emu_insn *in)
{
	for (unsigned i = 0; i < 2 && i < in->nops; i++)
		if (in->op[i].kind == EMU_OP_REG && !emu_sse_is_xmm(&in->op[i]) &&
		    in->op[i].rclass != EMU_RC_GPR) {
			emu_unimplemented(cpu, in);
			return false;
		}
	return true;
}

/* 128-bit moves; the non-temporal stores are aligned moves (no cache to
 * bypass here), LDDQU an unaligned load. */
static void h_mov128(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool aligned = in->mnemonic != ZYDIS_MNEMONIC_MOVDQU && in->mnemonic != ZYDIS_MNEMONIC_MOVUPS &&
		       in->mnemonic != ZYDIS_MNEMONIC_MOVUPD && in->mnemonic != ZYDIS_MNEMONIC_LDDQU;
	uint8_t v[16];
	if (!xmm_form(cpu, in))
		return;
	emu_sse_check(cpu);
	sse_read(cpu, in, 1, v, 16, aligned);
	emu_sse_write(cpu, in, 0, v, 16, aligned, true);
}

/* MOVD/MOVQ: a load into an XMM register zeroes the rest of it. */
static void h_movdq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->mnemonic == ZYDIS_MNEMONIC_MOVD ? 4 : 8;
	uint8_t v[16];
	if (!emu_sse_is_xmm(&OP0) && !emu_sse_is_xmm(&OP1)) {
		emu_unimplemented(cpu, in);
		return;
	}
	if (!xmm_form(cpu, in))
		return;
	emu_sse_check(cpu);
	sse_read(cpu, in, 1, v, size, false);
	emu_sse_write(cpu, in, 0, v, size, false, true);
}

/* MOVSS/MOVSD: register to register merges the low element; a load
 * zeroes the rest; a store writes the low element. */
static void mov_scalar(struct emu_cpu *cpu, const struct emu_insn *in, unsigned size)
{
	uint8_t v[16];
	if (!xmm_form(cpu, in))
		return;
	emu_sse_check(cpu);
	sse_read(cpu, in, 1, v, size, false);
	emu_sse_write(cpu, in, 0, v, size, false, OP1.kind == EMU_OP_MEM);
}

static void h_movss(struct emu_cpu *cpu, const struct emu_insn *in)
{
	mov_scalar(cpu, in, 4);
}

void emu_sse_movsd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	mov_scalar(cpu, in, 8);
}

/* MOVLPS/MOVLPD/MOVHPS/MOVHPD: one 64-bit half from or to memory;
 * MOVHLPS/MOVLHPS: between the halves of two registers. */
static void h_movhalf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned m = in->mnemonic;
	bool high = m == ZYDIS_MNEMONIC_MOVHPS || m == ZYDIS_MNEMONIC_MOVHPD;
	uint8_t v[16];
	if (!xmm_form(cpu, in))
		return;
	emu_sse_check(cpu);
	if (m == ZYDIS_MNEMONIC_MOVHLPS || m == ZYDIS_MNEMONIC_MOVLHPS) {
		uint8_t *d = emu_sse_xmm(cpu, &OP0);
		const uint8_t *s = emu_sse_xmm(cpu, &OP1);
		if (m == ZYDIS_MNEMONIC_MOVHLPS)
			memmove(d, s + 8, 8);
		else
			memmove(d + 8, s, 8);
		return;
	}
	if (emu_sse_is_xmm(&OP0)) {
		sse_read(cpu, in, 1, v, 8, false);
		memcpy(emu_sse_xmm(cpu, &OP0) + (high ? 8 : 0), v, 8);
	} else {
		memcpy(v, emu_sse_xmm(cpu, &OP1) + (high ? 8 : 0), 8);
		emu_sse_write(cpu, in, 0, v, 8, false, false);
	}
}

/* MOVDDUP (low double twice), MOVSLDUP/MOVSHDUP (even/odd singles twice). */
static void h_movdup(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t s[16], d[16];
	if (!xmm_form(cpu, in))
		return;
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, true);
	if (in->mnemonic == ZYDIS_MNEMONIC_MOVDDUP) {
		memcpy(d, s, 8);
		memcpy(d + 8, s, 8);
	} else {
		unsigned odd = in->mnemonic == ZYDIS_MNEMONIC_MOVSHDUP ? 4 : 0;
		for (unsigned i = 0; i < 16; i += 8) {
			memcpy(d + i, s + i + odd, 4);
			memcpy(d + i + 4, s + i + odd, 4);
		}
	}
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

/* MOVNTI: a GPR store; needs no SSE state. */
static void h_movnti(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_op_write(cpu, in, 0, emu_op_read(cpu, in, 1));
}

EMU_SSE_HOST_SHARED(pxor) EMU_SSE_HOST_SHARED(por) EMU_SSE_HOST_SHARED(pand)
EMU_SSE_HOST_SHARED(pandn) EMU_SSE_HOST_SHARED(pcmpeqb) EMU_SSE_HOST_SHARED(pcmpeqw)
EMU_SSE_HOST_SHARED(pcmpeqd)

/* xmm = xmm OP xmm/m128 (aligned), OP: the host's own instruction */
static void host_binop(struct emu_cpu *cpu, const struct emu_insn *in, emu_sse_host_fn fn)
{
	uint8_t a[16], b[16];
	if (!emu_sse_is_xmm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	memcpy(a, cpu->fpu.xmm[OP0.reg & 15], 16);
	sse_read(cpu, in, 1, b, 16, true);
	fn(a, b);
	memcpy(cpu->fpu.xmm[OP0.reg & 15], a, 16);
}

static void h_logic128(struct emu_cpu *cpu, const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PXOR: case ZYDIS_MNEMONIC_XORPS: case ZYDIS_MNEMONIC_XORPD:
		host_binop(cpu, in, emu_sse_host_pxor);
		break;
	case ZYDIS_MNEMONIC_POR: case ZYDIS_MNEMONIC_ORPS: case ZYDIS_MNEMONIC_ORPD:
		host_binop(cpu, in, emu_sse_host_por);
		break;
	case ZYDIS_MNEMONIC_PAND: case ZYDIS_MNEMONIC_ANDPS: case ZYDIS_MNEMONIC_ANDPD:
		host_binop(cpu, in, emu_sse_host_pand);
		break;
	default:   /* PANDN, ANDNPS, ANDNPD */
		host_binop(cpu, in, emu_sse_host_pandn);
		break;
	}
}

static void h_pcmpeq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	host_binop(cpu, in, in->mnemonic == ZYDIS_MNEMONIC_PCMPEQB ? emu_sse_host_pcmpeqb :
			    in->mnemonic == ZYDIS_MNEMONIC_PCMPEQW ? emu_sse_host_pcmpeqw :
			    emu_sse_host_pcmpeqd);
}

/* PMOVMSKB/MOVMSKPS/MOVMSKPD: the top bit of each byte/single/double. */
static void h_movmsk(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned w = in->mnemonic == ZYDIS_MNEMONIC_PMOVMSKB ? 1 :
		     in->mnemonic == ZYDIS_MNEMONIC_MOVMSKPS ? 4 : 8;
	if (!emu_sse_is_xmm(&OP1)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	uint64_t m = 0;
	const uint8_t *x = emu_sse_xmm(cpu, &OP1);
	for (unsigned i = 0; i < 16 / w; i++)
		m |= (uint64_t)(x[i * w + w - 1] >> 7) << i;
	emu_gpr_set(cpu, OP0.reg, OP0.size < 4 ? 4 : OP0.size, m);
}

static void h_ldmxcsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_sse_check(cpu);
	uint32_t v = (uint32_t)emu_op_read(cpu, in, 0);
	if (v & ~MXCSR_MASK)
		emu_gp(cpu, 0);
	cpu->fpu.mxcsr = v;
}

static void h_stmxcsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_sse_check(cpu);
	emu_op_write(cpu, in, 0, cpu->fpu.mxcsr);
}

/* --- FXSAVE / XSAVE images ------------------------------------------------------------- */

/* The 64-bit forms (REX.W) store 64-bit FIP/FDP; the others 32-bit ones
 * and FCS/FDS, which read as 0 (CPUs that deprecate them, see emu_x87.h). */
static void image_put_x87(const struct x86_fpu *f, uint8_t *img, bool wide)
{
	memcpy(img + 0, &f->fcw, 2);
	memcpy(img + 2, &f->fsw, 2);
	img[4] = f->ftw;
	img[5] = 0;
	memcpy(img + 6, &f->fop, 2);
	if (wide) {
		memcpy(img + 8, &f->fip, 8);
		memcpy(img + 16, &f->fdp, 8);
	} else {
		uint32_t ip = (uint32_t)f->fip, dp = (uint32_t)f->fdp;
		memset(img + 8, 0, 16);
		memcpy(img + 8, &ip, 4);
		memcpy(img + 16, &dp, 4);
	}
	for (unsigned i = 0; i < 8; i++)
		memcpy(img + 32 + 16 * i, f->st[i], 16);
}

static void image_put_sse(const struct x86_fpu *f, uint8_t *img)
{
	uint32_t mask = MXCSR_MASK;
	memcpy(img + 24, &f->mxcsr, 4);
	memcpy(img + 28, &mask, 4);
	for (unsigned i = 0; i < 16; i++)
		memcpy(img + 160 + 16 * i, f->xmm[i], 16);
}

static void image_get_x87(struct x86_fpu *f, const uint8_t *img, bool wide)
{
	memcpy(&f->fcw, img + 0, 2);
	memcpy(&f->fsw, img + 2, 2);
	f->ftw = img[4];
	memcpy(&f->fop, img + 6, 2);
	f->fop &= 0x7ff;
	f->fip = f->fdp = 0;
	memcpy(&f->fip, img + 8, wide ? 8 : 4);
	memcpy(&f->fdp, img + 16, wide ? 8 : 4);
	for (unsigned i = 0; i < 8; i++)
		memcpy(f->st[i], img + 32 + 16 * i, 16);
}

static void image_get_xmm(struct x86_fpu *f, const uint8_t *img)
{
	for (unsigned i = 0; i < 16; i++)
		memcpy(f->xmm[i], img + 160 + 16 * i, 16);
}

static void init_x87(struct x86_fpu *f)
{
	f->fcw = 0x37f;
	f->fsw = 0;
	f->ftw = 0;
	f->fop = 0;
	f->fip = f->fdp = 0;
	memset(f->st, 0, sizeof(f->st));
}

static uint64_t fx_addr(struct emu_cpu *cpu, const struct emu_insn *in, unsigned align)
{
	uint64_t lin = emu_op_lin(cpu, in, &OP0);
	if (lin & (align - 1))
		emu_gp(cpu, 0);
	return lin;
}

static void h_fxsave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->sregs.cr0 & (CR0_EM | CR0_TS))
		emu_fault(cpu, X86_NM, false, 0);
	uint64_t lin = fx_addr(cpu, in, 16);
	uint8_t img[512];
	emu_read_bytes(cpu, lin, img, sizeof(img), false);   /* reserved areas keep their bytes */
	image_put_x87(&cpu->fpu, img, in->mnemonic == ZYDIS_MNEMONIC_FXSAVE64);
	image_put_sse(&cpu->fpu, img);
	emu_write_bytes(cpu, lin, img, sizeof(img), false);
}

static void h_fxrstor(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (cpu->sregs.cr0 & (CR0_EM | CR0_TS))
		emu_fault(cpu, X86_NM, false, 0);
	uint64_t lin = fx_addr(cpu, in, 16);
	uint8_t img[512];
	emu_read_bytes(cpu, lin, img, sizeof(img), false);
	uint32_t mxcsr;
	memcpy(&mxcsr, img + 24, 4);
	if (mxcsr & ~MXCSR_MASK)
		emu_gp(cpu, 0);
	image_get_x87(&cpu->fpu, img, in->mnemonic == ZYDIS_MNEMONIC_FXRSTOR64);
	image_get_xmm(&cpu->fpu, img);
	cpu->fpu.mxcsr = mxcsr;
}

static uint64_t xsave_rfbm(struct emu_cpu *cpu)
{
	if (!(cpu->sregs.cr4 & CR4_OSXSAVE_BIT))
		emu_ud(cpu);
	if (cpu->sregs.cr0 & CR0_TS)
		emu_fault(cpu, X86_NM, false, 0);
	uint64_t edx_eax = (cpu->gpr[EMU_RDX] << 32) | (cpu->gpr[EMU_RAX] & 0xffffffffull);
	return edx_eax & emu_core_of(cpu)->xcr0;
}

static bool is_mnemonic(const struct emu_insn *in, unsigned a, unsigned b)
{
	return in->mnemonic == a || in->mnemonic == b;
}

/* XSAVE, XSAVEOPT (saving every requested component is one of its allowed
 * behaviours) and XSAVEC (compacted: XCOMP_BV = bit 63 | RFBM; x87 and SSE
 * sit where the standard format has them). XINUSE is taken as all ones:
 * XSTATE_BV gets every requested bit. */
static void h_xsave(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t rfbm = xsave_rfbm(cpu);
	uint64_t lin = fx_addr(cpu, in, 64);
	bool compact = is_mnemonic(in, ZYDIS_MNEMONIC_XSAVEC, ZYDIS_MNEMONIC_XSAVEC64);
	bool wide = is_mnemonic(in, ZYDIS_MNEMONIC_XSAVE64, ZYDIS_MNEMONIC_XSAVEOPT64) ||
		    in->mnemonic == ZYDIS_MNEMONIC_XSAVEC64;
	uint8_t img[576];
	emu_read_bytes(cpu, lin, img, sizeof(img), false);
	if (rfbm & 1)
		image_put_x87(&cpu->fpu, img, wide);
	if (rfbm & 2)
		image_put_sse(&cpu->fpu, img);
	uint64_t bv;
	memcpy(&bv, img + XSAVE_HDR, 8);
	bv = compact ? rfbm : (bv & ~rfbm) | rfbm;
	memcpy(img + XSAVE_HDR, &bv, 8);
	if (compact) {
		uint64_t comp = XCOMP_COMPACTED | rfbm;
		memcpy(img + XSAVE_HDR + 8, &comp, 8);
	}
	emu_write_bytes(cpu, lin, img, sizeof(img), false);
}

static void h_xrstor(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint64_t rfbm = xsave_rfbm(cpu);
	uint64_t lin = fx_addr(cpu, in, 64);
	uint8_t img[576];
	emu_read_bytes(cpu, lin, img, sizeof(img), false);
	uint64_t bv, comp, xcr0 = emu_core_of(cpu)->xcr0;
	memcpy(&bv, img + XSAVE_HDR, 8);
	memcpy(&comp, img + XSAVE_HDR + 8, 8);
	bool compact = comp & XCOMP_COMPACTED;
	if (compact ? (comp & ~XCOMP_COMPACTED & ~xcr0) || (bv & ~comp) : comp || (bv & ~xcr0))
		emu_gp(cpu, 0);
	for (unsigned i = 16; i < 64; i++)
		if (img[XSAVE_HDR + i])
			emu_gp(cpu, 0);
	uint32_t mxcsr;
	memcpy(&mxcsr, img + 24, 4);
	if (compact && !(bv & 2))
		mxcsr = MXCSR_INIT;             /* the compacted form's SSE init state */
	if ((rfbm & 2) && (mxcsr & ~MXCSR_MASK))
		emu_gp(cpu, 0);
	if (rfbm & 1) {
		if (bv & 1)
			image_get_x87(&cpu->fpu, img, in->mnemonic == ZYDIS_MNEMONIC_XRSTOR64);
		else
			init_x87(&cpu->fpu);
	}
	if (rfbm & 2) {
		cpu->fpu.mxcsr = mxcsr;
		if (bv & 2)
			image_get_xmm(&cpu->fpu, img);
		else
			memset(cpu->fpu.xmm, 0, sizeof(cpu->fpu.xmm));
	}
}

static const struct emu_handler_entry emu_exec_sse_table[] = {
	{ ZYDIS_MNEMONIC_MOVDQA, h_mov128 }, { ZYDIS_MNEMONIC_MOVDQU, h_mov128 },
	{ ZYDIS_MNEMONIC_MOVAPS, h_mov128 }, { ZYDIS_MNEMONIC_MOVUPS, h_mov128 },
	{ ZYDIS_MNEMONIC_MOVAPD, h_mov128 }, { ZYDIS_MNEMONIC_MOVUPD, h_mov128 },
	{ ZYDIS_MNEMONIC_MOVD, h_movdq }, { ZYDIS_MNEMONIC_MOVQ, h_movdq },
	{ ZYDIS_MNEMONIC_PXOR, h_logic128 }, { ZYDIS_MNEMONIC_XORPS, h_logic128 },
	{ ZYDIS_MNEMONIC_XORPD, h_logic128 }, { ZYDIS_MNEMONIC_POR, h_logic128 },
	{ ZYDIS_MNEMONIC_ORPS, h_logic128 }, { ZYDIS_MNEMONIC_ORPD, h_logic128 },
	{ ZYDIS_MNEMONIC_PAND, h_logic128 }, { ZYDIS_MNEMONIC_ANDPS, h_logic128 },
	{ ZYDIS_MNEMONIC_ANDPD, h_logic128 }, { ZYDIS_MNEMONIC_PANDN, h_logic128 },
	{ ZYDIS_MNEMONIC_ANDNPS, h_logic128 }, { ZYDIS_MNEMONIC_ANDNPD, h_logic128 },
	{ ZYDIS_MNEMONIC_PCMPEQB, h_pcmpeq }, { ZYDIS_MNEMONIC_PCMPEQW, h_pcmpeq },
	{ ZYDIS_MNEMONIC_PCMPEQD, h_pcmpeq },
	{ ZYDIS_MNEMONIC_PMOVMSKB, h_movmsk }, { ZYDIS_MNEMONIC_MOVMSKPS, h_movmsk },
	{ ZYDIS_MNEMONIC_MOVMSKPD, h_movmsk },
	{ ZYDIS_MNEMONIC_MOVNTDQ, h_mov128 }, { ZYDIS_MNEMONIC_MOVNTPS, h_mov128 },
	{ ZYDIS_MNEMONIC_MOVNTPD, h_mov128 }, { ZYDIS_MNEMONIC_LDDQU, h_mov128 },
	{ ZYDIS_MNEMONIC_MOVNTI, h_movnti },
	{ ZYDIS_MNEMONIC_MOVSS, h_movss },
	{ ZYDIS_MNEMONIC_MOVHPS, h_movhalf }, { ZYDIS_MNEMONIC_MOVLPS, h_movhalf },
	{ ZYDIS_MNEMONIC_MOVHPD, h_movhalf }, { ZYDIS_MNEMONIC_MOVLPD, h_movhalf },
	{ ZYDIS_MNEMONIC_MOVHLPS, h_movhalf }, { ZYDIS_MNEMONIC_MOVLHPS, h_movhalf },
	{ ZYDIS_MNEMONIC_MOVDDUP, h_movdup }, { ZYDIS_MNEMONIC_MOVSLDUP, h_movdup },
	{ ZYDIS_MNEMONIC_MOVSHDUP, h_movdup },
	{ ZYDIS_MNEMONIC_LDMXCSR, h_ldmxcsr },
	{ ZYDIS_MNEMONIC_STMXCSR, h_stmxcsr },
	{ ZYDIS_MNEMONIC_FXSAVE, h_fxsave }, { ZYDIS_MNEMONIC_FXSAVE64, h_fxsave },
	{ ZYDIS_MNEMONIC_FXRSTOR, h_fxrstor }, { ZYDIS_MNEMONIC_FXRSTOR64, h_fxrstor },
	{ ZYDIS_MNEMONIC_XSAVE, h_xsave }, { ZYDIS_MNEMONIC_XSAVE64, h_xsave },
	{ ZYDIS_MNEMONIC_XSAVEOPT, h_xsave }, { ZYDIS_MNEMONIC_XSAVEOPT64, h_xsave },
	{ ZYDIS_MNEMONIC_XSAVEC, h_xsave }, { ZYDIS_MNEMONIC_XSAVEC64, h_xsave },
	{ ZYDIS_MNEMONIC_XRSTOR, h_xrstor }, { ZYDIS_MNEMONIC_XRSTOR64, h_xrstor },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_sse_table);
