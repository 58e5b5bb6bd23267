/* engine/emu/emu_exec_mmx.c — the MMX-register forms of every instruction
 * that has them: MOVD/MOVQ, MOVQ2DQ/MOVDQ2Q, MOVNTQ, MASKMOVQ, the packed
 * integer operations (MMX, the SSE/SSE2 additions and SSSE3's), PSHUFW,
 * PINSRW/PEXTRW/PMOVMSKB, PALIGNR, the conversions between MMX integers and
 * XMM singles/doubles (CVTPI2PS ... CVTTPD2PI), and EMMS.
 *
 * Where the state lives (SDM vol. 1, 9.5): MMi is the mantissa (low 8
 * bytes) of physical x87 register Ri, which is st[(i - TOP) & 7] in
 * cpu->fpu's ST-ordered view (emu_x87.h). Every MMX instruction first
 * raises #UD when CR0.EM is set, #NM when CR0.TS is set, #MF when an
 * unmasked x87 exception is pending (CR0.NE, as emu_exec_x87.c), then
 * sets TOP to 0 and every tag to valid; writing MMi also sets Ri's sign
 * and exponent bytes to all ones. EMMS also sets TOP to 0 but marks every
 * register empty (SDM vol. 1, table 9-2; measured). The
 * transition happens only once the instruction can no longer fault, so a
 * faulting instruction leaves the x87 state alone.
 *
 * How it dispatches: a mnemonic has one handler in the EMU_HANDLER_TABLEs,
 * and most MMX mnemonics are also SSE ones (PADDB mm / PADDB xmm). The
 * decoder asks emu_mmx_handler_for() instead whenever an operand is an MMX
 * register, so the SSE files never see MMX forms; the table registered
 * below holds the MMX-only mnemonics whose forms may name no MMX register
 * (EMMS; CVTPI2PS/CVTPI2PD from memory).
 *
 * The two-operand integer operations run as the host's own MMX
 * instruction on the guest's values (every x86-64 host has MMX and SSE2;
 * the SSSE3 forms raise #UD in the guest on a host without SSSE3), ending
 * with EMMS on the host and telling the compiler the x87 stack is
 * clobbered. The conversions run as the XMM conversion of the same values
 * under the guest's MXCSR, as emu_exec_sse_fp.c does. */
#include "engine/emu/emu_sse.h"

#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_x87.h"

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define OP2 (in->op[2])

typedef void (*mmx_fn)(uint8_t d[8], const uint8_t s[8]);
typedef uint32_t (*cvt_fn)(uint8_t d[16], const uint8_t s[16], uint32_t csr);

static bool is_mm(const struct emu_operand *o)
{
	return o->kind == EMU_OP_REG && o->rclass == EMU_RC_MMX;
}

/* The faults every MMX instruction checks first; with_xmm adds the SSE
 * rules (CR4.OSFXSR) for the instructions that also touch an XMM register. */
static void mmx_check(struct emu_cpu *cpu, bool with_xmm)
{
	if (with_xmm)
		emu_sse_check(cpu);
	if (cpu->sregs.cr0 & CR0_EM)
		emu_ud(cpu);
	if (cpu->sregs.cr0 & CR0_TS)
		emu_fault(cpu, X86_NM, false, 0);
	if ((cpu->fpu.fsw & X87_SW_ES) && (cpu->sregs.cr0 & CR0_NE))
		emu_fault(cpu, X86_MF, false, 0);
}

/* MMr: physical register r, wherever TOP puts it in st[]. */
static uint8_t *mmx_reg(struct emu_cpu *cpu, unsigned r)
{
	return cpu->fpu.st[(r - emu_x87_top(&cpu->fpu)) & 7];
}

/* From x87 to MMX: TOP = 0 (so st[i] is Ri), every tag valid. */
static void mmx_transition(struct emu_cpu *cpu)
{
	emu_x87_set_top(&cpu->fpu, 0);
	cpu->fpu.ftw = 0xff;
}

/* Transition, then MMr = v (its sign and exponent all ones). */
static void mmx_put(struct emu_cpu *cpu, unsigned r, const uint8_t v[8])
{
	mmx_transition(cpu);
	uint8_t *x = cpu->fpu.st[r & 7];
	memcpy(x, v, 8);
	x[8] = x[9] = 0xff;
}

/* Operand i into a zeroed 8-byte buffer: an MMX register, the low 8 bytes
 * of an XMM register, memory of its decoded size, a GPR, an imm8. */
static void mmx_src(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint8_t out[8])
{
	const struct emu_operand *o = &in->op[i];
	memset(out, 0, 8);
	if (is_mm(o)) {
		memcpy(out, mmx_reg(cpu, o->reg), 8);
	} else if (emu_sse_is_xmm(o)) {
		memcpy(out, emu_sse_xmm(cpu, o), 8);
	} else if (o->kind == EMU_OP_MEM && o->size >= 1 && o->size <= 8) {
		emu_read_bytes(cpu, emu_op_lin(cpu, in, o), out, o->size, false);
	} else if (o->kind == EMU_OP_REG && o->rclass == EMU_RC_GPR) {
		uint64_t v = cpu->gpr[o->reg];
		memcpy(out, &v, o->size > 8 ? 8 : o->size);
	} else if (o->kind == EMU_OP_IMM) {
		out[0] = (uint8_t)o->val;
	} else {
		emu_unimplemented(cpu, in);
	}
}

/* dst = dst OP src for an MMX destination (the shift-by-imm8 forms are the
 * same as a shift by a register holding the count). */
static void mmx_binop(struct emu_cpu *cpu, const struct emu_insn *in, mmx_fn fn)
{
	uint8_t d[8], s[8];
	if (!is_mm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, s);
	memcpy(d, mmx_reg(cpu, OP0.reg), 8);
	fn(d, s);
	mmx_put(cpu, OP0.reg, d);
}

#define X87_CLOBBERS "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

#define HOST_MMX_FN(name)                                                                   \
	static void host_##name(uint8_t d[8], const uint8_t s[8])                           \
	{                                                                                   \
		__asm__ volatile("movq %0, %%mm0\n\tmovq %1, %%mm1\n\t" #name " %%mm1, %%mm0\n\t" \
				 "movq %%mm0, %0\n\temms"                                   \
				 : "+m"(*(uint8_t(*)[8])d)                                  \
				 : "m"(*(const uint8_t(*)[8])s)                             \
				 : "mm0", "mm1", X87_CLOBBERS);                             \
	}

#define HOST_MMX(name)                                                                      \
	HOST_MMX_FN(name)                                                                   \
	static void m_##name(struct emu_cpu *cpu, const struct emu_insn *in)                \
	{                                                                                   \
		mmx_binop(cpu, in, host_##name);                                            \
	}

/* The SSSE3 ones: #UD in the guest rather than SIGILL on an older host. */
#define HOST_MMX_SSSE3(name)                                                                \
	HOST_MMX_FN(name)                                                                   \
	static void m_##name(struct emu_cpu *cpu, const struct emu_insn *in)                \
	{                                                                                   \
		if (!__builtin_cpu_supports("ssse3")) {                                     \
			emu_unimplemented(cpu, in);                                         \
			return;                                                             \
		}                                                                           \
		mmx_binop(cpu, in, host_##name);                                            \
	}

HOST_MMX(paddb) HOST_MMX(paddw) HOST_MMX(paddd) HOST_MMX(paddq)
HOST_MMX(paddsb) HOST_MMX(paddsw) HOST_MMX(paddusb) HOST_MMX(paddusw)
HOST_MMX(psubb) HOST_MMX(psubw) HOST_MMX(psubd) HOST_MMX(psubq)
HOST_MMX(psubsb) HOST_MMX(psubsw) HOST_MMX(psubusb) HOST_MMX(psubusw)
HOST_MMX(pcmpeqb) HOST_MMX(pcmpeqw) HOST_MMX(pcmpeqd)
HOST_MMX(pcmpgtb) HOST_MMX(pcmpgtw) HOST_MMX(pcmpgtd)
HOST_MMX(pmullw) HOST_MMX(pmulhw) HOST_MMX(pmulhuw) HOST_MMX(pmuludq)
HOST_MMX(pmaddwd) HOST_MMX(psadbw) HOST_MMX(pavgb) HOST_MMX(pavgw)
HOST_MMX(pminub) HOST_MMX(pmaxub) HOST_MMX(pminsw) HOST_MMX(pmaxsw)
HOST_MMX(psllw) HOST_MMX(pslld) HOST_MMX(psllq) HOST_MMX(psrlw) HOST_MMX(psrld)
HOST_MMX(psrlq) HOST_MMX(psraw) HOST_MMX(psrad)
HOST_MMX(punpcklbw) HOST_MMX(punpcklwd) HOST_MMX(punpckldq)
HOST_MMX(punpckhbw) HOST_MMX(punpckhwd) HOST_MMX(punpckhdq)
HOST_MMX(packsswb) HOST_MMX(packssdw) HOST_MMX(packuswb)
HOST_MMX(pand) HOST_MMX(pandn) HOST_MMX(por) HOST_MMX(pxor)
HOST_MMX_SSSE3(pshufb) HOST_MMX_SSSE3(phaddw) HOST_MMX_SSSE3(phaddd)
HOST_MMX_SSSE3(phaddsw) HOST_MMX_SSSE3(phsubw) HOST_MMX_SSSE3(phsubd)
HOST_MMX_SSSE3(phsubsw) HOST_MMX_SSSE3(pmaddubsw) HOST_MMX_SSSE3(pmulhrsw)
HOST_MMX_SSSE3(psignb) HOST_MMX_SSSE3(psignw) HOST_MMX_SSSE3(psignd)
HOST_MMX_SSSE3(pabsb) HOST_MMX_SSSE3(pabsw) HOST_MMX_SSSE3(pabsd)

/* --- moves ---------------------------------------------------------------------------- */

/* MOVD/MOVQ between an MMX register and a GPR, memory or another MMX
 * register: a load zero-extends into the MMX register, a 4-byte GPR
 * write zero-extends into the GPR. */
static void m_movdq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = in->mnemonic == ZYDIS_MNEMONIC_MOVD ? 4 : 8;
	uint8_t v[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, v);
	memset(v + size, 0, 8 - size);
	if (is_mm(&OP0)) {
		mmx_put(cpu, OP0.reg, v);
		return;
	}
	if (OP0.kind == EMU_OP_MEM) {
		emu_write_bytes(cpu, emu_op_lin(cpu, in, &OP0), v, size, false);
	} else if (OP0.kind == EMU_OP_REG && OP0.rclass == EMU_RC_GPR) {
		uint64_t x;
		memcpy(&x, v, 8);
		emu_gpr_set(cpu, OP0.reg, size, x);
	} else {
		emu_unimplemented(cpu, in);
	}
	mmx_transition(cpu);
}

/* MOVQ2DQ xmm, mm (the rest of xmm zeroed); MOVDQ2Q mm, xmm (its low half). */
static void m_movq2dq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t v[8];
	mmx_check(cpu, true);
	mmx_src(cpu, in, 1, v);
	if (is_mm(&OP0)) {
		mmx_put(cpu, OP0.reg, v);
		return;
	}
	mmx_transition(cpu);
	memset(emu_sse_xmm(cpu, &OP0), 0, 16);
	memcpy(emu_sse_xmm(cpu, &OP0), v, 8);
}

/* MOVNTQ m64, mm: a store (no cache to bypass here). */
static void m_movntq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t v[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, v);
	emu_write_bytes(cpu, emu_op_lin(cpu, in, &OP0), v, 8, false);
	mmx_transition(cpu);
}

/* MASKMOVQ mm1, mm2: the bytes of mm1 whose byte in mm2 has its top bit
 * set go to DS:rDI (segment override allowed), all 8 checked first. */
static void m_maskmovq(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t v[8], m[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 0, v);
	mmx_src(cpu, in, 1, m);
	unsigned any = 0;
	for (unsigned i = 0; i < 8; i++)
		any |= m[i] & 0x80;
	if (any) {
		uint64_t lin = emu_linear(cpu, in->seg, cpu->gpr[EMU_RDI] & emu_mask(in->asize));
		emu_probe_write(cpu, lin, 8);
		for (unsigned i = 0; i < 8; i++)
			if (m[i] & 0x80)
				emu_write(cpu, lin + i, 1, v[i]);
	}
	mmx_transition(cpu);
}

/* --- shuffles, inserts, extracts ------------------------------------------------------ */

static unsigned imm8(const struct emu_insn *in, unsigned i)
{
	return (unsigned)in->op[i].val & 0xff;
}

/* PSHUFW mm, mm/m64, imm8: word i of the result is word (imm8 >> 2i) & 3. */
static void m_pshufw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t s[8], r[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, s);
	for (unsigned i = 0; i < 4; i++)
		memcpy(r + 2 * i, s + 2 * ((imm8(in, 2) >> (2 * i)) & 3), 2);
	mmx_put(cpu, OP0.reg, r);
}

/* PALIGNR mm, mm/m64, imm8: bytes imm8.. of dst:src (zeros past the end). */
static void m_palignr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t cat[24] = { 0 }, r[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, cat);
	memcpy(cat + 8, mmx_reg(cpu, OP0.reg), 8);
	unsigned n = imm8(in, 2);
	memset(r, 0, 8);
	if (n < 16)
		memcpy(r, cat + n, 8);
	mmx_put(cpu, OP0.reg, r);
}

/* PINSRW mm, r32/m16, imm8: the word at imm8 & 3. */
static void m_pinsrw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t d[8], s[8];
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, s);
	memcpy(d, mmx_reg(cpu, OP0.reg), 8);
	memcpy(d + 2 * (imm8(in, 2) & 3), s, 2);
	mmx_put(cpu, OP0.reg, d);
}

/* PEXTRW r32/r64, mm, imm8: the word at imm8 & 3, zero-extended. */
static void m_pextrw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t s[8];
	uint16_t w;
	if (OP0.kind != EMU_OP_REG || OP0.rclass != EMU_RC_GPR) {
		emu_unimplemented(cpu, in);
		return;
	}
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, s);
	memcpy(&w, s + 2 * (imm8(in, 2) & 3), 2);
	mmx_transition(cpu);
	emu_gpr_set(cpu, OP0.reg, OP0.size < 4 ? 4 : OP0.size, w);
}

/* PMOVMSKB r32/r64, mm: the top bit of each byte. */
static void m_pmovmskb(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t s[8];
	uint64_t m = 0;
	mmx_check(cpu, false);
	mmx_src(cpu, in, 1, s);
	for (unsigned i = 0; i < 8; i++)
		m |= (uint64_t)(s[i] >> 7) << i;
	mmx_transition(cpu);
	emu_gpr_set(cpu, OP0.reg, OP0.size < 4 ? 4 : OP0.size, m);
}

/* --- conversions between MMX integers and XMM floating point ----------------------------- */

#define HOST_CVT(name)                                                                      \
	static uint32_t host_##name(uint8_t d[16], const uint8_t s[16], uint32_t csr)       \
	{                                                                                   \
		uint32_t saved, out;                                                        \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\tmovdqu %[s], %%xmm1\n\t" \
				 #name " %%xmm1, %%xmm0\n\tmovdqu %%xmm0, %[d]\n\t"         \
				 "stmxcsr %[out]\n\tldmxcsr %[sv]"                          \
				 : [d] "=m"(*(uint8_t(*)[16])d), [sv] "=m"(saved),          \
				   [out] "=m"(out)                                          \
				 : [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr)        \
				 : "xmm0", "xmm1");                                         \
		return out;                                                                 \
	}

HOST_CVT(cvtdq2ps) HOST_CVT(cvtdq2pd) HOST_CVT(cvtps2dq) HOST_CVT(cvttps2dq)
HOST_CVT(cvtpd2dq) HOST_CVT(cvttpd2dq)

/* CVTPI2PS xmm, mm/m64 (two int32 to the low two singles, the rest of xmm
 * kept) and CVTPI2PD xmm, mm/m64 (to two doubles): the packed conversion
 * of the two integers with zeros above them, which convert exactly. The
 * memory forms leave the x87 state alone (only an MMX register source
 * makes the transition: measured on the CPU, as the SDM describes). */
static void m_cvtpi2p(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool ps = in->mnemonic == ZYDIS_MNEMONIC_CVTPI2PS;
	uint8_t s[16] = { 0 }, r[16];
	if (!emu_sse_is_xmm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	if (is_mm(&OP1))
		mmx_check(cpu, true);
	else
		emu_sse_check(cpu);
	mmx_src(cpu, in, 1, s);
	emu_sse_fp_finish(cpu, (ps ? host_cvtdq2ps : host_cvtdq2pd)(r, s, emu_sse_run_csr(cpu)));
	if (is_mm(&OP1))
		mmx_transition(cpu);
	memcpy(emu_sse_xmm(cpu, &OP0), r, ps ? 8 : 16);
}

/* CVT(T)PS2PI mm, xmm/m64 (the low two singles) and CVT(T)PD2PI mm,
 * xmm/m128 (two doubles; memory aligned): the packed conversion, whose
 * zero upper lanes raise nothing. */
static void m_cvtp2pi(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned m = in->mnemonic;
	bool pd = m == ZYDIS_MNEMONIC_CVTPD2PI || m == ZYDIS_MNEMONIC_CVTTPD2PI;
	cvt_fn fn = m == ZYDIS_MNEMONIC_CVTPS2PI  ? host_cvtps2dq :
		    m == ZYDIS_MNEMONIC_CVTTPS2PI ? host_cvttps2dq :
		    m == ZYDIS_MNEMONIC_CVTPD2PI  ? host_cvtpd2dq : host_cvttpd2dq;
	uint8_t s[16] = { 0 }, r[16];
	mmx_check(cpu, true);
	if (pd)
		emu_sse_src(cpu, in, 1, s, true);
	else
		mmx_src(cpu, in, 1, s);
	emu_sse_fp_finish(cpu, fn(r, s, emu_sse_run_csr(cpu)));
	mmx_put(cpu, OP0.reg, r);
}

static void m_emms(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	mmx_check(cpu, false);
	emu_x87_set_top(&cpu->fpu, 0);
	cpu->fpu.ftw = 0;
}

#define E(m, h) { ZYDIS_MNEMONIC_##m, h }
#define M(m, name) E(m, m_##name)

static const struct emu_handler_entry mmx_forms[] = {
	M(PADDB, paddb), M(PADDW, paddw), M(PADDD, paddd), M(PADDQ, paddq),
	M(PADDSB, paddsb), M(PADDSW, paddsw), M(PADDUSB, paddusb), M(PADDUSW, paddusw),
	M(PSUBB, psubb), M(PSUBW, psubw), M(PSUBD, psubd), M(PSUBQ, psubq),
	M(PSUBSB, psubsb), M(PSUBSW, psubsw), M(PSUBUSB, psubusb), M(PSUBUSW, psubusw),
	M(PCMPEQB, pcmpeqb), M(PCMPEQW, pcmpeqw), M(PCMPEQD, pcmpeqd),
	M(PCMPGTB, pcmpgtb), M(PCMPGTW, pcmpgtw), M(PCMPGTD, pcmpgtd),
	M(PMULLW, pmullw), M(PMULHW, pmulhw), M(PMULHUW, pmulhuw), M(PMULUDQ, pmuludq),
	M(PMADDWD, pmaddwd), M(PSADBW, psadbw), M(PAVGB, pavgb), M(PAVGW, pavgw),
	M(PMINUB, pminub), M(PMAXUB, pmaxub), M(PMINSW, pminsw), M(PMAXSW, pmaxsw),
	M(PSLLW, psllw), M(PSLLD, pslld), M(PSLLQ, psllq), M(PSRLW, psrlw), M(PSRLD, psrld),
	M(PSRLQ, psrlq), M(PSRAW, psraw), M(PSRAD, psrad),
	M(PUNPCKLBW, punpcklbw), M(PUNPCKLWD, punpcklwd), M(PUNPCKLDQ, punpckldq),
	M(PUNPCKHBW, punpckhbw), M(PUNPCKHWD, punpckhwd), M(PUNPCKHDQ, punpckhdq),
	M(PACKSSWB, packsswb), M(PACKSSDW, packssdw), M(PACKUSWB, packuswb),
	M(PAND, pand), M(PANDN, pandn), M(POR, por), M(PXOR, pxor),
	M(PSHUFB, pshufb), M(PHADDW, phaddw), M(PHADDD, phaddd), M(PHADDSW, phaddsw),
	M(PHSUBW, phsubw), M(PHSUBD, phsubd), M(PHSUBSW, phsubsw), M(PMADDUBSW, pmaddubsw),
	M(PMULHRSW, pmulhrsw), M(PSIGNB, psignb), M(PSIGNW, psignw), M(PSIGND, psignd),
	M(PABSB, pabsb), M(PABSW, pabsw), M(PABSD, pabsd), M(PALIGNR, palignr),
	M(MOVD, movdq), M(MOVQ, movdq), M(MOVQ2DQ, movq2dq), M(MOVDQ2Q, movq2dq),
	M(MOVNTQ, movntq), M(MASKMOVQ, maskmovq), M(PSHUFW, pshufw),
	M(PINSRW, pinsrw), M(PEXTRW, pextrw), M(PMOVMSKB, pmovmskb),
	M(CVTPI2PS, cvtpi2p), M(CVTPI2PD, cvtpi2p), M(CVTPS2PI, cvtp2pi),
	M(CVTTPS2PI, cvtp2pi), M(CVTPD2PI, cvtp2pi), M(CVTTPD2PI, cvtp2pi),
	M(EMMS, emms),
	{ 0, NULL },
};

emu_handler emu_mmx_handler_for(unsigned mnemonic)
{
	for (const struct emu_handler_entry *e = mmx_forms; e->fn; e++)
		if (e->mnemonic == mnemonic)
			return e->fn;
	return emu_unimplemented;
}

/* The MMX-only mnemonics with a form that names no MMX register. */
static const struct emu_handler_entry emu_exec_mmx_table[] = {
	M(EMMS, emms), M(CVTPI2PS, cvtpi2p), M(CVTPI2PD, cvtpi2p),
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_mmx_table);
