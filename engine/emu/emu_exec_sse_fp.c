/* engine/emu/emu_exec_sse_fp.c — SSE/SSE2 floating point: ADD/SUB/MUL/DIV/
 * SQRT/MIN/MAX in the PS/PD/SS/SD forms, RCP/RSQRT, CMPccPS/PD/SS/SD,
 * COMISS/COMISD/UCOMISS/UCOMISD, the conversions between int32/int64 and
 * single/double (scalar and packed, rounding and truncating), and the
 * SSE3 horizontal/alternating adds.
 *
 * How it is exact: each instruction runs as the same instruction on the
 * host, on the guest's operand values, with the guest's MXCSR control
 * bits (rounding control, FTZ, DAZ) loaded into the host MXCSR, every
 * exception masked and every flag cleared; the host MXCSR is read back for
 * the flags this instruction raised and then restored (all inside one asm
 * statement, so no compiler-generated floating point of vmdb's own can run
 * under the guest's MXCSR). What that assumes: an x86-64 host (SSE and SSE2
 * are architectural there; the SSE3 forms need SSE3, which every x86-64 CPU
 * vmdb's KVM engine can run on has) whose MXCSR supports DAZ, and that the
 * result of an operation whose exceptions are all masked is defined by the
 * operand values and MXCSR alone - true of IEEE 754 arithmetic and of the
 * SDM's masked responses (QNaN indefinite, NaN propagation, MIN/MAX
 * returning the second operand); RCPPS/RSQRTPS are approximations whose
 * bits differ between vendors, so emu gives the host's (as silicon here).
 *
 * Unmasked exceptions (SDM vol. 1, 11.5.3): when the masked run raised a
 * flag whose mask bit is clear, the destination is left alone, #XM is
 * raised (#UD when CR4.OSXMMEXCPT is clear) and MXCSR gets the flags: only
 * the pre-computation ones (invalid, denormal, divide by zero) when one of
 * those is unmasked, else all the run raised. Known deviation: an unmasked
 * underflow whose tiny result is exact is not detected (the masked run
 * does not signal it), so the result is written as if masked. */
#include "engine/emu/emu_sse.h"

#include <string.h>
#include <Zydis/Zydis.h>

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define OP2 (in->op[2])

#define MXCSR_PRE (EMU_MXCSR_IE | EMU_MXCSR_DE | EMU_MXCSR_ZE)

typedef uint32_t (*fp_fn)(uint8_t d[16], const uint8_t s[16], uint32_t csr);

/* The host MXCSR to run with: the guest's control bits, all masked, no flags. */
uint32_t emu_sse_run_csr(const struct emu_cpu *cpu)
{
	return (cpu->fpu.mxcsr & 0xffffu & ~EMU_MXCSR_FLAGS) | EMU_MXCSR_MASKS;
}

/* Fold the flags an instruction raised into MXCSR; fault on unmasked ones. */
void emu_sse_fp_finish(struct emu_cpu *cpu, uint32_t raised)
{
	uint32_t masks = (cpu->fpu.mxcsr >> 7) & EMU_MXCSR_FLAGS;
	raised &= EMU_MXCSR_FLAGS;
	if (!(raised & ~masks)) {
		cpu->fpu.mxcsr |= raised;
		return;
	}
	cpu->fpu.mxcsr |= (raised & MXCSR_PRE & ~masks) ? (raised & MXCSR_PRE) : raised;
	if (cpu->sregs.cr4 & CR4_OSXMMEXCPT)
		emu_fault(cpu, X86_XM, false, 0);
	emu_ud(cpu);
}

/* Run insn (operands xmm1 = source, xmm0 = destination) on d and s. */
#define FP_ASM(insn)                                                                       \
	__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\tmovdqu %[d], %%xmm0\n\t"          \
			 "movdqu %[s], %%xmm1\n\t" insn "\n\tmovdqu %%xmm0, %[d]\n\t"          \
			 "stmxcsr %[out]\n\tldmxcsr %[sv]"                                     \
			 : [d] "+m"(*(uint8_t(*)[16])d), [sv] "=m"(saved), [out] "=m"(out)     \
			 : [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr)                   \
			 : "xmm0", "xmm1")

#define HOST_FP(name, insn)                                                               \
	static uint32_t host_##name(uint8_t d[16], const uint8_t s[16], uint32_t csr)      \
	{                                                                                  \
		uint32_t saved, out;                                                       \
		FP_ASM(insn " %%xmm1, %%xmm0");                                            \
		return out;                                                                \
	}

/* dst = dst OP src (or OP src alone) for an XMM destination. */
static void fp_binop(struct emu_cpu *cpu, const struct emu_insn *in, fp_fn fn)
{
	uint8_t d[16], s[16];
	if (!emu_sse_is_xmm(&OP0) || (OP1.kind == EMU_OP_REG && !emu_sse_is_xmm(&OP1))) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, true);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	emu_sse_fp_finish(cpu, fn(d, s, emu_sse_run_csr(cpu)));
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

#define FP_OP(name, insn)                                                     \
	HOST_FP(name, insn)                                                   \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)  \
	{                                                                     \
		fp_binop(cpu, in, host_##name);                               \
	}

#define FP_OP4(op) FP_OP(op##ps, #op "ps") FP_OP(op##pd, #op "pd") \
	FP_OP(op##ss, #op "ss") FP_OP(op##sd, #op "sd")

FP_OP4(add) FP_OP4(sub) FP_OP4(mul) FP_OP4(div) FP_OP4(sqrt) FP_OP4(min) FP_OP4(max)
FP_OP(rcpps, "rcpps") FP_OP(rcpss, "rcpss") FP_OP(rsqrtps, "rsqrtps") FP_OP(rsqrtss, "rsqrtss")
FP_OP(addsubps, "addsubps") FP_OP(addsubpd, "addsubpd") FP_OP(haddps, "haddps")
FP_OP(haddpd, "haddpd") FP_OP(hsubps, "hsubps") FP_OP(hsubpd, "hsubpd")
FP_OP(cvtps2pd, "cvtps2pd") FP_OP(cvtpd2ps, "cvtpd2ps") FP_OP(cvtss2sd, "cvtss2sd")
FP_OP(cvtsd2ss, "cvtsd2ss") FP_OP(cvtdq2ps, "cvtdq2ps") FP_OP(cvtps2dq, "cvtps2dq")
FP_OP(cvttps2dq, "cvttps2dq") FP_OP(cvtdq2pd, "cvtdq2pd") FP_OP(cvtpd2dq, "cvtpd2dq")
FP_OP(cvttpd2dq, "cvttpd2dq")

/* CMPccPS/PD/SS/SD: the predicate is imm8[2:0] (legacy encoding). */
#define CMP_OP(op)                                                                       \
	HOST_FP(op##0, #op " $0,") HOST_FP(op##1, #op " $1,") HOST_FP(op##2, #op " $2,")  \
	HOST_FP(op##3, #op " $3,") HOST_FP(op##4, #op " $4,") HOST_FP(op##5, #op " $5,")  \
	HOST_FP(op##6, #op " $6,") HOST_FP(op##7, #op " $7,")                             \
	static const fp_fn op##_fns[8] = { host_##op##0, host_##op##1, host_##op##2,      \
					   host_##op##3, host_##op##4, host_##op##5,      \
					   host_##op##6, host_##op##7 };                  \
	static void h_##op(struct emu_cpu *cpu, const struct emu_insn *in)                \
	{                                                                                \
		fp_binop(cpu, in, op##_fns[(uint8_t)OP2.val & 7]);                       \
	}

CMP_OP(cmpps) CMP_OP(cmppd) CMP_OP(cmpss) CMP_OP(cmpsd)

/* F2 0F C2: CMPSD xmm (emu_exec_str.c passes it here). */
void emu_sse_cmpsd(struct emu_cpu *cpu, const struct emu_insn *in)
{
	h_cmpsd(cpu, in);
}

/* --- COMISS/UCOMISS/COMISD/UCOMISD: ZF PF CF from the compare, OF SF AF 0 --- */

typedef uint32_t (*comi_fn)(const uint8_t d[16], const uint8_t s[16], uint32_t csr,
			    uint8_t f[3]);

#define HOST_COMI(name)                                                                  \
	static uint32_t host_##name(const uint8_t d[16], const uint8_t s[16], uint32_t csr, \
				    uint8_t f[3])                                         \
	{                                                                                 \
		uint32_t saved, out;                                                      \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\tmovdqu %[d], %%xmm0\n\t" \
				 "movdqu %[s], %%xmm1\n\t" #name " %%xmm1, %%xmm0\n\t"     \
				 "setz %[zf]\n\tsetp %[pf]\n\tsetc %[cf]\n\t"              \
				 "stmxcsr %[out]\n\tldmxcsr %[sv]"                         \
				 : [sv] "=m"(saved), [out] "=m"(out), [zf] "=m"(f[0]),     \
				   [pf] "=m"(f[1]), [cf] "=m"(f[2])                        \
				 : [d] "m"(*(const uint8_t(*)[16])d),                      \
				   [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr)       \
				 : "xmm0", "xmm1", "cc");                                  \
		return out;                                                               \
	}                                                                                 \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)              \
	{                                                                                 \
		comi(cpu, in, host_##name);                                               \
	}

static void comi(struct emu_cpu *cpu, const struct emu_insn *in, comi_fn fn)
{
	uint8_t d[16], s[16], f[3];
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, false);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	emu_sse_fp_finish(cpu, fn(d, s, emu_sse_run_csr(cpu), f));
	uint64_t fl = cpu->rflags & ~RFLAGS_ARITH;
	if (f[0])
		fl |= RFLAGS_ZF;
	if (f[1])
		fl |= RFLAGS_PF;
	if (f[2])
		fl |= RFLAGS_CF;
	cpu->rflags = fl;
}

HOST_COMI(comiss) HOST_COMI(ucomiss) HOST_COMI(comisd) HOST_COMI(ucomisd)

/* --- conversions between a GPR (or memory integer) and a scalar -------------- */

/* CVT(T)SS2SI / CVT(T)SD2SI r32/r64, xmm/m: by the destination's size. */
#define HOST_TO_INT(name, insn)                                                          \
	static uint32_t host_##name(const uint8_t s[16], uint32_t csr, uint64_t *r, bool q) \
	{                                                                                 \
		uint32_t saved, out;                                                      \
		uint64_t v = 0;                                                           \
		if (q)                                                                    \
			__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\t"            \
					 "movdqu %[s], %%xmm1\n\t" insn " %%xmm1, %q[v]\n\t" \
					 "stmxcsr %[out]\n\tldmxcsr %[sv]"                \
					 : [sv] "=m"(saved), [out] "=m"(out), [v] "=r"(v) \
					 : [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr) \
					 : "xmm1");                                       \
		else                                                                      \
			__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\t"            \
					 "movdqu %[s], %%xmm1\n\t" insn " %%xmm1, %k[v]\n\t" \
					 "stmxcsr %[out]\n\tldmxcsr %[sv]"                \
					 : [sv] "=m"(saved), [out] "=m"(out), [v] "+r"(v) \
					 : [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr) \
					 : "xmm1");                                       \
		*r = q ? v : (uint32_t)v;                                                 \
		return out;                                                               \
	}                                                                                 \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)              \
	{                                                                                 \
		to_int(cpu, in, host_##name);                                             \
	}

typedef uint32_t (*to_int_fn)(const uint8_t s[16], uint32_t csr, uint64_t *r, bool q);

static void to_int(struct emu_cpu *cpu, const struct emu_insn *in, to_int_fn fn)
{
	uint8_t s[16];
	uint64_t r;
	if (OP0.kind != EMU_OP_REG || OP0.rclass != EMU_RC_GPR ||
	    (OP1.kind == EMU_OP_REG && !emu_sse_is_xmm(&OP1))) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, s, false);
	bool q = OP0.size == 8;
	emu_sse_fp_finish(cpu, fn(s, emu_sse_run_csr(cpu), &r, q));
	emu_gpr_set(cpu, OP0.reg, q ? 8 : 4, r);
}

HOST_TO_INT(cvtss2si, "cvtss2si") HOST_TO_INT(cvttss2si, "cvttss2si")
HOST_TO_INT(cvtsd2si, "cvtsd2si") HOST_TO_INT(cvttsd2si, "cvttsd2si")

/* CVTSI2SS / CVTSI2SD xmm, r/m32 or r/m64 (rounded per MXCSR.RC). */
#define HOST_FROM_INT(name, insn)                                                        \
	static uint32_t host_##name(uint8_t d[16], uint64_t v, bool q, uint32_t csr)      \
	{                                                                                 \
		uint32_t saved, out;                                                      \
		if (q)                                                                    \
			__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\t"            \
					 "movdqu %[d], %%xmm0\n\t" insn "q %q[v], %%xmm0\n\t" \
					 "movdqu %%xmm0, %[d]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]" \
					 : [d] "+m"(*(uint8_t(*)[16])d), [sv] "=m"(saved), \
					   [out] "=m"(out)                                \
					 : [v] "r"(v), [csr] "m"(csr)                     \
					 : "xmm0");                                       \
		else                                                                      \
			__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\t"            \
					 "movdqu %[d], %%xmm0\n\t" insn "l %k[v], %%xmm0\n\t" \
					 "movdqu %%xmm0, %[d]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]" \
					 : [d] "+m"(*(uint8_t(*)[16])d), [sv] "=m"(saved), \
					   [out] "=m"(out)                                \
					 : [v] "r"(v), [csr] "m"(csr)                     \
					 : "xmm0");                                       \
		return out;                                                               \
	}                                                                                 \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)              \
	{                                                                                 \
		from_int(cpu, in, host_##name);                                           \
	}

typedef uint32_t (*from_int_fn)(uint8_t d[16], uint64_t v, bool q, uint32_t csr);

static void from_int(struct emu_cpu *cpu, const struct emu_insn *in, from_int_fn fn)
{
	uint8_t d[16];
	if (!emu_sse_is_xmm(&OP0) || (OP1.kind == EMU_OP_REG && OP1.rclass != EMU_RC_GPR)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	bool q = OP1.size == 8;
	uint64_t v = emu_op_read(cpu, in, 1);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	emu_sse_fp_finish(cpu, fn(d, v, q, emu_sse_run_csr(cpu)));
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

HOST_FROM_INT(cvtsi2ss, "cvtsi2ss") HOST_FROM_INT(cvtsi2sd, "cvtsi2sd")

#define E(m, h) { ZYDIS_MNEMONIC_##m, h }
#define E4(OP, op) E(OP##PS, h_##op##ps), E(OP##PD, h_##op##pd), E(OP##SS, h_##op##ss), \
	E(OP##SD, h_##op##sd)

static const struct emu_handler_entry emu_exec_sse_fp_table[] = {
	E4(ADD, add), E4(SUB, sub), E4(MUL, mul), E4(DIV, div), E4(SQRT, sqrt), E4(MIN, min),
	E4(MAX, max),
	E(RCPPS, h_rcpps), E(RCPSS, h_rcpss), E(RSQRTPS, h_rsqrtps), E(RSQRTSS, h_rsqrtss),
	E(ADDSUBPS, h_addsubps), E(ADDSUBPD, h_addsubpd), E(HADDPS, h_haddps),
	E(HADDPD, h_haddpd), E(HSUBPS, h_hsubps), E(HSUBPD, h_hsubpd),
	E(CVTPS2PD, h_cvtps2pd), E(CVTPD2PS, h_cvtpd2ps), E(CVTSS2SD, h_cvtss2sd),
	E(CVTSD2SS, h_cvtsd2ss), E(CVTDQ2PS, h_cvtdq2ps), E(CVTPS2DQ, h_cvtps2dq),
	E(CVTTPS2DQ, h_cvttps2dq), E(CVTDQ2PD, h_cvtdq2pd), E(CVTPD2DQ, h_cvtpd2dq),
	E(CVTTPD2DQ, h_cvttpd2dq),
	E(CMPPS, h_cmpps), E(CMPPD, h_cmppd), E(CMPSS, h_cmpss),
	E(COMISS, h_comiss), E(UCOMISS, h_ucomiss), E(COMISD, h_comisd), E(UCOMISD, h_ucomisd),
	E(CVTSS2SI, h_cvtss2si), E(CVTTSS2SI, h_cvttss2si), E(CVTSD2SI, h_cvtsd2si),
	E(CVTTSD2SI, h_cvttsd2si), E(CVTSI2SS, h_cvtsi2ss), E(CVTSI2SD, h_cvtsi2sd),
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_sse_fp_table);
