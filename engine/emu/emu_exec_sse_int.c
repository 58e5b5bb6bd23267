/* engine/emu/emu_exec_sse_int.c — SSE2 packed integer instructions on XMM
 * registers: add/subtract (wrapping and saturating), compare-greater,
 * multiplies, PMADDWD, PSADBW, averages, min/max, shifts (by XMM/m128
 * count and by immediate), byte shifts, unpacks, packs, shuffles,
 * PINSRW/PEXTRW, and the FP-typed unpacks and shuffles (no MXCSR effect).
 *
 * Why the host's own instruction runs most of them: these are bit
 * operations with no state besides their operands (no flags, no MXCSR),
 * and SSE2 is part of every x86-64 CPU, which is what vmdb runs on
 * (KVM engine, Zydis); the host instruction applied to the guest's operand
 * values is the definition of the result. Each host_* function loads the
 * guest values into xmm0/xmm1, runs the register form and stores xmm0.
 * The shapes that take an immediate (shuffles, byte shifts, inserts) are
 * written out in C, since an immediate cannot come from a variable. */
#include "engine/emu/emu_sse.h"

#include <string.h>
#include <Zydis/Zydis.h>

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define OP2 (in->op[2])


/* dst = dst OP src for an XMM destination. An immediate source (the shift
 * forms 66 0F 71-73 /n ib) is the same as an XMM count holding it. */
static void int_binop(struct emu_cpu *cpu, const struct emu_insn *in, emu_sse_host_fn fn)
{
	uint8_t d[16], s[16];
	if (!emu_sse_is_xmm(&OP0) || (OP1.kind == EMU_OP_REG && !emu_sse_is_xmm(&OP1))) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, true);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	fn(d, s);
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

#define HOST_BINOP(name, insn)                                                              \
	EMU_SSE_HOST_BINOP(name, insn)                                                       \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                    \
		int_binop(cpu, in, host_##name);                                             \
	}
/* the same for one of emu_sse.h's shared list */
#define SHARED_BINOP(name)                                                                  \
	EMU_SSE_HOST_SHARED(name)                                                            \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                    \
		int_binop(cpu, in, emu_sse_host_##name);                                     \
	}

SHARED_BINOP(paddb) SHARED_BINOP(paddw) SHARED_BINOP(paddd)
SHARED_BINOP(paddq) HOST_BINOP(paddsb, "paddsb") HOST_BINOP(paddsw, "paddsw")
HOST_BINOP(paddusb, "paddusb") HOST_BINOP(paddusw, "paddusw")
SHARED_BINOP(psubb) SHARED_BINOP(psubw) SHARED_BINOP(psubd)
SHARED_BINOP(psubq) HOST_BINOP(psubsb, "psubsb") HOST_BINOP(psubsw, "psubsw")
HOST_BINOP(psubusb, "psubusb") HOST_BINOP(psubusw, "psubusw")
HOST_BINOP(pcmpgtb, "pcmpgtb") HOST_BINOP(pcmpgtw, "pcmpgtw") HOST_BINOP(pcmpgtd, "pcmpgtd")
HOST_BINOP(pmullw, "pmullw") HOST_BINOP(pmulhw, "pmulhw") HOST_BINOP(pmulhuw, "pmulhuw")
HOST_BINOP(pmuludq, "pmuludq") HOST_BINOP(pmaddwd, "pmaddwd") HOST_BINOP(psadbw, "psadbw")
HOST_BINOP(pavgb, "pavgb") HOST_BINOP(pavgw, "pavgw")
HOST_BINOP(pminub, "pminub") HOST_BINOP(pmaxub, "pmaxub")
HOST_BINOP(pminsw, "pminsw") HOST_BINOP(pmaxsw, "pmaxsw")
SHARED_BINOP(psllw) SHARED_BINOP(pslld) SHARED_BINOP(psllq)
SHARED_BINOP(psrlw) SHARED_BINOP(psrld) SHARED_BINOP(psrlq)
SHARED_BINOP(psraw) SHARED_BINOP(psrad)
SHARED_BINOP(punpcklbw) SHARED_BINOP(punpcklwd)
SHARED_BINOP(punpckldq) SHARED_BINOP(punpcklqdq)
SHARED_BINOP(punpckhbw) SHARED_BINOP(punpckhwd)
SHARED_BINOP(punpckhdq) SHARED_BINOP(punpckhqdq)
HOST_BINOP(packsswb, "packsswb") HOST_BINOP(packssdw, "packssdw")
HOST_BINOP(packuswb, "packuswb")
HOST_BINOP(unpcklps, "unpcklps") HOST_BINOP(unpckhps, "unpckhps")
HOST_BINOP(unpcklpd, "unpcklpd") HOST_BINOP(unpckhpd, "unpckhpd")

/* --- immediate forms, in C ------------------------------------------------ */

static uint8_t imm8(const struct emu_insn *in, unsigned i)
{
	return (uint8_t)in->op[i].val;
}

/* The XMM destination and source (op 1) of an instruction with an imm8. */
static bool imm_operands(struct emu_cpu *cpu, const struct emu_insn *in, uint8_t d[16],
			 uint8_t s[16])
{
	if (!emu_sse_is_xmm(&OP0) || (OP1.kind == EMU_OP_REG && !emu_sse_is_xmm(&OP1))) {
		emu_unimplemented(cpu, in);
		return false;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, true);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	return true;
}

/* PSLLDQ/PSRLDQ xmm, imm8: whole-register byte shifts (>15: zero). */
static void h_pbyteshift(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t d[16], r[16] = { 0 };
	if (!emu_sse_is_xmm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	unsigned n = imm8(in, 1);
	if (n < 16) {
		if (in->mnemonic == ZYDIS_MNEMONIC_PSLLDQ)
			memcpy(r + n, d, 16 - n);
		else
			memcpy(r, d + n, 16 - n);
	}
	memcpy(emu_sse_xmm(cpu, &OP0), r, 16);
}

/* PSHUFD (dwords), PSHUFLW/PSHUFHW (words of one half, the other copied). */
static void h_pshuf(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t d[16], s[16], r[16];
	if (!imm_operands(cpu, in, d, s))
		return;
	unsigned ctl = imm8(in, 2);
	memcpy(r, s, 16);
	if (in->mnemonic == ZYDIS_MNEMONIC_PSHUFD) {
		for (unsigned i = 0; i < 4; i++)
			memcpy(r + 4 * i, s + 4 * ((ctl >> (2 * i)) & 3), 4);
	} else {
		unsigned half = in->mnemonic == ZYDIS_MNEMONIC_PSHUFHW ? 8 : 0;
		for (unsigned i = 0; i < 4; i++)
			memcpy(r + half + 2 * i, s + half + 2 * ((ctl >> (2 * i)) & 3), 2);
	}
	memcpy(emu_sse_xmm(cpu, &OP0), r, 16);
}

/* SHUFPS: two singles of the destination, two of the source; SHUFPD one
 * double of each. */
static void h_shufp(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t d[16], s[16], r[16];
	if (!imm_operands(cpu, in, d, s))
		return;
	unsigned ctl = imm8(in, 2);
	if (in->mnemonic == ZYDIS_MNEMONIC_SHUFPS) {
		memcpy(r + 0, d + 4 * (ctl & 3), 4);
		memcpy(r + 4, d + 4 * ((ctl >> 2) & 3), 4);
		memcpy(r + 8, s + 4 * ((ctl >> 4) & 3), 4);
		memcpy(r + 12, s + 4 * ((ctl >> 6) & 3), 4);
	} else {
		memcpy(r + 0, d + 8 * (ctl & 1), 8);
		memcpy(r + 8, s + 8 * ((ctl >> 1) & 1), 8);
	}
	memcpy(emu_sse_xmm(cpu, &OP0), r, 16);
}

/* PINSRW xmm, r32/m16, imm8: the word at imm8 & 7. */
static void h_pinsrw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t v[16];
	if (!emu_sse_is_xmm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, v, false);
	memcpy(emu_sse_xmm(cpu, &OP0) + 2 * (imm8(in, 2) & 7), v, 2);
}

/* PEXTRW r32/r64, xmm, imm8: the word at imm8 & 7, zero-extended;
 * SSE4.1's PEXTRW m16, xmm, imm8 stores it. */
static void h_pextrw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!emu_sse_is_xmm(&OP1) || (OP0.kind != EMU_OP_REG && OP0.kind != EMU_OP_MEM)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	uint16_t w;
	memcpy(&w, emu_sse_xmm(cpu, &OP1) + 2 * (imm8(in, 2) & 7), 2);
	if (OP0.kind == EMU_OP_MEM)
		emu_write(cpu, emu_op_lin(cpu, in, &OP0), 2, w);
	else
		emu_gpr_set(cpu, OP0.reg, OP0.size < 4 ? 4 : OP0.size, w);
}

#define E(m, h) { ZYDIS_MNEMONIC_##m, h }

static const struct emu_handler_entry emu_exec_sse_int_table[] = {
	E(PADDB, h_paddb), E(PADDW, h_paddw), E(PADDD, h_paddd), E(PADDQ, h_paddq),
	E(PADDSB, h_paddsb), E(PADDSW, h_paddsw), E(PADDUSB, h_paddusb), E(PADDUSW, h_paddusw),
	E(PSUBB, h_psubb), E(PSUBW, h_psubw), E(PSUBD, h_psubd), E(PSUBQ, h_psubq),
	E(PSUBSB, h_psubsb), E(PSUBSW, h_psubsw), E(PSUBUSB, h_psubusb), E(PSUBUSW, h_psubusw),
	E(PCMPGTB, h_pcmpgtb), E(PCMPGTW, h_pcmpgtw), E(PCMPGTD, h_pcmpgtd),
	E(PMULLW, h_pmullw), E(PMULHW, h_pmulhw), E(PMULHUW, h_pmulhuw), E(PMULUDQ, h_pmuludq),
	E(PMADDWD, h_pmaddwd), E(PSADBW, h_psadbw), E(PAVGB, h_pavgb), E(PAVGW, h_pavgw),
	E(PMINUB, h_pminub), E(PMAXUB, h_pmaxub), E(PMINSW, h_pminsw), E(PMAXSW, h_pmaxsw),
	E(PSLLW, h_psllw), E(PSLLD, h_pslld), E(PSLLQ, h_psllq),
	E(PSRLW, h_psrlw), E(PSRLD, h_psrld), E(PSRLQ, h_psrlq),
	E(PSRAW, h_psraw), E(PSRAD, h_psrad),
	E(PSLLDQ, h_pbyteshift), E(PSRLDQ, h_pbyteshift),
	E(PUNPCKLBW, h_punpcklbw), E(PUNPCKLWD, h_punpcklwd), E(PUNPCKLDQ, h_punpckldq),
	E(PUNPCKLQDQ, h_punpcklqdq), E(PUNPCKHBW, h_punpckhbw), E(PUNPCKHWD, h_punpckhwd),
	E(PUNPCKHDQ, h_punpckhdq), E(PUNPCKHQDQ, h_punpckhqdq),
	E(PACKSSWB, h_packsswb), E(PACKSSDW, h_packssdw), E(PACKUSWB, h_packuswb),
	E(UNPCKLPS, h_unpcklps), E(UNPCKHPS, h_unpckhps),
	E(UNPCKLPD, h_unpcklpd), E(UNPCKHPD, h_unpckhpd),
	E(PSHUFD, h_pshuf), E(PSHUFLW, h_pshuf), E(PSHUFHW, h_pshuf),
	E(SHUFPS, h_shufp), E(SHUFPD, h_shufp),
	E(PINSRW, h_pinsrw), E(PEXTRW, h_pextrw),
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_sse_int_table);
