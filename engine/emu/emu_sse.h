/* engine/emu/emu_sse.h — private to the SSE part of the execution core
 * (emu_exec_sse.c: state, moves, FXSAVE/XSAVE; emu_exec_sse_int.c: packed
 * integer, shuffles, unpacks, inserts/extracts; emu_exec_sse_fp.c:
 * floating point under MXCSR). The operand helpers below implement the
 * rules every legacy-encoded SSE instruction shares:
 *   - #UD when CR0.EM is set or CR4.OSFXSR is clear, then #NM when CR0.TS
 *     is set (emu_sse_check);
 *   - a 16-byte memory operand must be 16-byte aligned (#GP(0)) unless the
 *     instruction is one of the explicitly unaligned ones (MOVUPS/MOVUPD/
 *     MOVDQU/LDDQU); smaller memory operands have no alignment rule;
 *   - MMX-register forms are emu_exec_mmx.c's (the decoder sends them
 *     there). */
#ifndef VMDB_EMU_SSE_H
#define VMDB_EMU_SSE_H

#include "engine/emu/emu_core.h"

#define EMU_MXCSR_FLAGS 0x3fu            /* IE DE ZE OE UE PE */
#define EMU_MXCSR_MASKS (0x3fu << 7)     /* IM DM ZM OM UM PM */
#define EMU_MXCSR_IE 0x01u
#define EMU_MXCSR_DE 0x02u
#define EMU_MXCSR_ZE 0x04u

void emu_sse_check(struct emu_cpu *cpu);
/* The host MXCSR a floating point instruction runs under (the guest's
 * control bits, all masked, no flags), and the folding of the flags it
 * raised into the guest's MXCSR (#XM/#UD for unmasked ones). */
uint32_t emu_sse_run_csr(const struct emu_cpu *cpu);
void emu_sse_fp_finish(struct emu_cpu *cpu, uint32_t raised);
bool emu_sse_is_xmm(const struct emu_operand *o);

static inline uint8_t *emu_sse_xmm(struct emu_cpu *cpu, const struct emu_operand *o)
{
	return cpu->fpu.xmm[o->reg & 15];
}

/* Operand i into a zeroed 16-byte buffer: an XMM register whole, a memory
 * operand of its decoded size (aligned when 16 bytes and `aligned`), a GPR
 * (its operand size), an immediate (its low 8 bytes). */
void emu_sse_src(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint8_t out[16],
		 bool aligned);
/* Store size bytes of v to operand i (XMM: the rest kept unless zero_rest;
 * GPR: a 4-byte write zero-extends). */
void emu_sse_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i,
		   const uint8_t v[16], unsigned size, bool aligned, bool zero_rest);

/* host_NAME(d, s): d = d INSN s on the host's XMM registers, for integer
 * instructions whose result depends on nothing but their two operands. */
typedef void (*emu_sse_host_fn)(uint8_t d[16], const uint8_t s[16]);
#define EMU_SSE_HOST_BINOP(name, insn) static EMU_SSE_HOST_BODY(host_##name, insn)
/* The ones the fast path (emu_fast_ops.c) runs too, defined once by the
 * file of their exact handlers as emu_sse_host_NAME (EMU_SSE_HOST_SHARED). */
#define EMU_SSE_HOST_SHARED_LIST(X)                                                         \
	X(pxor) X(por) X(pand) X(pandn) X(pcmpeqb) X(pcmpeqw) X(pcmpeqd)                     \
	X(paddb) X(paddw) X(paddd) X(paddq) X(psubb) X(psubw) X(psubd) X(psubq)              \
	X(punpcklbw) X(punpcklwd) X(punpckldq) X(punpcklqdq)                                 \
	X(punpckhbw) X(punpckhwd) X(punpckhdq) X(punpckhqdq)                                 \
	X(psllw) X(pslld) X(psllq) X(psrlw) X(psrld) X(psrlq) X(psraw) X(psrad)              \
	X(pshufb)
#define EMU_SSE_HOST_DECLARE(name) void emu_sse_host_##name(uint8_t d[16], const uint8_t s[16]);
EMU_SSE_HOST_SHARED_LIST(EMU_SSE_HOST_DECLARE)
#define EMU_SSE_HOST_SHARED(name) EMU_SSE_HOST_BODY(emu_sse_host_##name, #name)
#define EMU_SSE_HOST_BODY(fname, insn)                                                      \
	void fname(uint8_t d[16], const uint8_t s[16])                                       \
	{                                                                                    \
		__asm__("movdqu %0, %%xmm0\n\tmovdqu %1, %%xmm1\n\t" insn " %%xmm1, %%xmm0\n\t" \
			"movdqu %%xmm0, %0"                                                      \
			: "+m"(*(uint8_t(*)[16])d)                                               \
			: "m"(*(const uint8_t(*)[16])s)                                          \
			: "xmm0", "xmm1");                                                       \
	}

/* emu_sse_movsd/emu_sse_cmpsd (emu_core.h) are the SSE2 forms of the
 * string mnemonics. */

#endif
