/* engine/emu/emu_exec_sse4.c — SSSE3, SSE4.1 and SSE4.2 on XMM registers
 * (legacy encodings): PSHUFB, the horizontal adds/subtracts, PMADDUBSW,
 * PMULHRSW, PSIGN*, PABS*, PALIGNR; the SSE4.1 packed integer min/max/
 * multiplies/compares, PACKUSDW, PHMINPOSUW, PMOVSX/PMOVZX, the blends,
 * PTEST, PEXTRB/D/Q, PINSRB/D/Q, EXTRACTPS, INSERTPS, ROUNDPS/PD/SS/SD,
 * DPPS/DPPD, MPSADBW, MOVNTDQA; SSE4.2's PCMPGTQ and the four string
 * compares PCMPESTRI/PCMPESTRM/PCMPISTRI/PCMPISTRM; and SSE2's
 * MASKMOVDQU, the one SSE2 instruction the other files lacked.
 *
 * As in emu_exec_sse_int.c, the host's instruction on the guest's operand
 * values defines the result (the host needs SSE4.2: without it these
 * raise #UD in the guest). Instructions with an
 * immediate run out of a table of all 256 immediates (16 bytes each: the
 * instruction and a jmp to the end), so the imm8 needs no C rewrite. The
 * floating point ones (ROUND*, DPP*) run under the guest's MXCSR control
 * bits with exceptions masked; an unmasked flag leaves the destination
 * alone and raises #XM (#UD without CR4.OSXMMEXCPT), as emu_exec_sse_fp.c
 * does. The MMX-register forms (SSSE3 has them) are emu_exec_mmx.c's.
 * Memory operands of 16 bytes must be aligned except
 * for the string compares (SDM: they have no alignment rule). */
#include "engine/emu/emu_sse.h"

#include <string.h>
#include <Zydis/Zydis.h>

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define OP2 (in->op[2])

typedef uint32_t (*host_imm_fn)(uint8_t d[16], const uint8_t s[16], unsigned imm, uint32_t csr);

/* The host instructions need an SSE4.2 host (every x86-64-v2 CPU); on an
 * older one the guest gets #UD with the warning instead of vmdb a SIGILL. */
static bool xmm_dst_src(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!emu_sse_is_xmm(&OP0) || (OP1.kind == EMU_OP_REG && !emu_sse_is_xmm(&OP1)) ||
	    !__builtin_cpu_supports("sse4.2")) {
		emu_unimplemented(cpu, in);     /* an operand class it lacks; an old host */
		return false;
	}
	emu_sse_check(cpu);
	return true;
}

/* --- no immediate: dst = dst OP src ------------------------------------------------- */

static void binop(struct emu_cpu *cpu, const struct emu_insn *in, emu_sse_host_fn fn)
{
	uint8_t d[16], s[16];
	if (!xmm_dst_src(cpu, in))
		return;
	emu_sse_src(cpu, in, 1, s, true);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	fn(d, s);
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

#define HOST_BINOP(name)                                                                    \
	EMU_SSE_HOST_BINOP(name, #name)                                                      \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                    \
		binop(cpu, in, host_##name);                                                 \
	}

EMU_SSE_HOST_SHARED(pshufb)
static void h_pshufb(struct emu_cpu *cpu, const struct emu_insn *in)
{
	binop(cpu, in, emu_sse_host_pshufb);
}

HOST_BINOP(phaddw) HOST_BINOP(phaddd) HOST_BINOP(phaddsw)
HOST_BINOP(phsubw) HOST_BINOP(phsubd) HOST_BINOP(phsubsw) HOST_BINOP(pmaddubsw)
HOST_BINOP(pmulhrsw) HOST_BINOP(psignb) HOST_BINOP(psignw) HOST_BINOP(psignd)
HOST_BINOP(pabsb) HOST_BINOP(pabsw) HOST_BINOP(pabsd)
HOST_BINOP(pmulld) HOST_BINOP(pmuldq) HOST_BINOP(pminsb) HOST_BINOP(pminsd)
HOST_BINOP(pminuw) HOST_BINOP(pminud) HOST_BINOP(pmaxsb) HOST_BINOP(pmaxsd)
HOST_BINOP(pmaxuw) HOST_BINOP(pmaxud) HOST_BINOP(pcmpeqq) HOST_BINOP(pcmpgtq)
HOST_BINOP(packusdw) HOST_BINOP(phminposuw)
HOST_BINOP(pmovsxbw) HOST_BINOP(pmovsxbd) HOST_BINOP(pmovsxbq) HOST_BINOP(pmovsxwd)
HOST_BINOP(pmovsxwq) HOST_BINOP(pmovsxdq) HOST_BINOP(pmovzxbw) HOST_BINOP(pmovzxbd)
HOST_BINOP(pmovzxbq) HOST_BINOP(pmovzxwd) HOST_BINOP(pmovzxwq) HOST_BINOP(pmovzxdq)

/* PBLENDVB/BLENDVPS/BLENDVPD: the mask is XMM0 (implicit). */
#define HOST_BLENDV(name)                                                                   \
	static void host_##name(uint8_t d[16], const uint8_t s[16], const uint8_t m[16])     \
	{                                                                                    \
		__asm__("movdqu %0, %%xmm1\n\tmovdqu %1, %%xmm2\n\tmovdqu %2, %%xmm0\n\t"    \
			#name " %%xmm0, %%xmm2, %%xmm1\n\tmovdqu %%xmm1, %0"                     \
			: "+m"(*(uint8_t(*)[16])d)                                               \
			: "m"(*(const uint8_t(*)[16])s), "m"(*(const uint8_t(*)[16])m)           \
			: "xmm0", "xmm1", "xmm2");                                               \
	}                                                                                    \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)                 \
	{                                                                                    \
		uint8_t d[16], s[16];                                                        \
		if (!xmm_dst_src(cpu, in))                                                   \
			return;                                                              \
		emu_sse_src(cpu, in, 1, s, true);                                            \
		memcpy(d, emu_sse_xmm(cpu, &OP0), 16);                                       \
		host_##name(d, s, cpu->fpu.xmm[0]);                                          \
		memcpy(emu_sse_xmm(cpu, &OP0), d, 16);                                       \
	}

HOST_BLENDV(pblendvb) HOST_BLENDV(blendvps) HOST_BLENDV(blendvpd)

/* --- an imm8: a table of the 256 instructions ------------------------------------------ */

/* Entry imm of the table at 3: is `insn $imm, %xmm1, %xmm0`; all run
 * between loading the host MXCSR and restoring it. */
#define IMM_TABLE(insn)                                                                      \
	"leaq 3f(%%rip), %%r8\n\t"                                                           \
	"shlq $4, %%rcx\n\t"                                                                 \
	"addq %%rcx, %%r8\n\t"                                                               \
	"jmp *%%r8\n\t"                                                                      \
	".balign 16\n"                                                                       \
	"3:\n\t"                                                                             \
	".set sse4_ix, 0\n\t"                                                                \
	".rept 256\n\t"                                                                      \
	insn " $sse4_ix, %%xmm1, %%xmm0\n\t"                                                 \
	".byte 0xe9\n\t"                                                                     \
	".long 9f - . - 4\n\t"                                                               \
	".balign 16\n\t"                                                                     \
	".set sse4_ix, sse4_ix + 1\n\t"                                                      \
	".endr\n"                                                                            \
	"9:\n\t"

#define HOST_IMM(name)                                                                      \
	__attribute__((noinline)) static uint32_t host_##name(uint8_t d[16], const uint8_t s[16], \
							      unsigned imm, uint32_t csr)    \
	{                                                                                    \
		uint32_t saved, out;                                                         \
		uint64_t ix = imm & 0xff;                                                    \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[csr]\n\t"                       \
				 "movdqu %[d], %%xmm0\n\tmovdqu %[s], %%xmm1\n\t"            \
				 IMM_TABLE(#name)                                            \
				 "movdqu %%xmm0, %[d]\n\tstmxcsr %[out]\n\tldmxcsr %[sv]"    \
				 : [d] "+m"(*(uint8_t(*)[16])d), [sv] "=m"(saved),           \
				   [out] "=m"(out), "+c"(ix)                                 \
				 : [s] "m"(*(const uint8_t(*)[16])s), [csr] "m"(csr)         \
				 : "xmm0", "xmm1", "r8", "cc");                              \
		return out;                                                                  \
	}

HOST_IMM(palignr) HOST_IMM(pblendw) HOST_IMM(blendps) HOST_IMM(blendpd) HOST_IMM(mpsadbw)
HOST_IMM(roundps) HOST_IMM(roundpd) HOST_IMM(roundss) HOST_IMM(roundsd) HOST_IMM(dpps)
HOST_IMM(dppd) HOST_IMM(insertps)

/* dst = f(dst, src, imm8) for an XMM destination; fp: MXCSR flags count. */
static void imm_op(struct emu_cpu *cpu, const struct emu_insn *in, host_imm_fn fn, bool fp)
{
	uint8_t d[16], s[16];
	if (!xmm_dst_src(cpu, in))
		return;
	emu_sse_src(cpu, in, 1, s, true);
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	uint32_t csr = fn(d, s, (unsigned)OP2.val & 0xff, emu_sse_run_csr(cpu));
	if (fp)
		emu_sse_fp_finish(cpu, csr);
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

#define IMM_OP(name, fp)                                                         \
	static void h_##name(struct emu_cpu *cpu, const struct emu_insn *in)     \
	{                                                                        \
		imm_op(cpu, in, host_##name, fp);                                \
	}

IMM_OP(palignr, false) IMM_OP(pblendw, false) IMM_OP(blendps, false) IMM_OP(blendpd, false)
IMM_OP(mpsadbw, false) IMM_OP(roundps, true) IMM_OP(roundpd, true) IMM_OP(roundss, true)
IMM_OP(roundsd, true) IMM_OP(dpps, true) IMM_OP(dppd, true)

/* INSERTPS from memory: the loaded single is the source element whatever
 * imm8[7:6] says, so it goes to element 0 of the source and the bits to 0. */
static void h_insertps(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t d[16], s[16];
	unsigned imm = (unsigned)OP2.val & 0xff;
	if (!xmm_dst_src(cpu, in))
		return;
	emu_sse_src(cpu, in, 1, s, true);
	if (OP1.kind == EMU_OP_MEM)
		imm &= 0x3f;
	memcpy(d, emu_sse_xmm(cpu, &OP0), 16);
	host_insertps(d, s, imm, emu_sse_run_csr(cpu));
	memcpy(emu_sse_xmm(cpu, &OP0), d, 16);
}

/* --- string compares (SSE4.2) ----------------------------------------------------------- */

struct str_run {
	uint8_t a[16], b[16], mask[16];
	uint32_t la, lb, index;
	uint8_t cf, zf, sf, of;
};

#define HOST_STR(name)                                                                      \
	__attribute__((noinline)) static void host_##name(struct str_run *r, unsigned imm)  \
	{                                                                                    \
		uint64_t ix = imm & 0xff;                                                    \
		__asm__ volatile("movdqu %[a], %%xmm0\n\tmovdqu %[b], %%xmm1\n\t"            \
				 "movl %[la], %%eax\n\tmovl %[lb], %%edx\n\t"                \
				 IMM_TABLE(#name)                                            \
				 "setc %[cf]\n\tsetz %[zf]\n\tsets %[sf]\n\tseto %[of]\n\t"  \
				 "movl %%ecx, %[index]\n\tmovdqu %%xmm0, %[mask]"            \
				 : [cf] "=m"(r->cf), [zf] "=m"(r->zf), [sf] "=m"(r->sf),     \
				   [of] "=m"(r->of), [index] "=m"(r->index),                 \
				   [mask] "=m"(r->mask), "+c"(ix)                            \
				 : [a] "m"(r->a), [b] "m"(r->b), [la] "m"(r->la),            \
				   [lb] "m"(r->lb)                                           \
				 : "rax", "rdx", "r8", "xmm0", "xmm1", "cc");                \
	}

HOST_STR(pcmpestri) HOST_STR(pcmpestrm) HOST_STR(pcmpistri) HOST_STR(pcmpistrm)

/* An explicit length (EAX/EDX, RAX/RDX with REX.W): its absolute value,
 * saturated at 16 (the element count is never more). */
static uint32_t str_len(struct emu_cpu *cpu, const struct emu_insn *in, unsigned reg)
{
	int64_t v = in->osize == 8 ? (int64_t)cpu->gpr[reg] : (int64_t)(int32_t)cpu->gpr[reg];
	uint64_t a = v < 0 ? -(uint64_t)v : (uint64_t)v;
	return a > 16 ? 16 : (uint32_t)a;
}

static void h_pcmpstr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct str_run r;
	unsigned m = in->mnemonic, imm = (unsigned)OP2.val & 0xff;
	if (!xmm_dst_src(cpu, in))
		return;
	memset(&r, 0, sizeof(r));
	emu_sse_src(cpu, in, 1, r.b, false);
	memcpy(r.a, emu_sse_xmm(cpu, &OP0), 16);
	r.la = str_len(cpu, in, EMU_RAX);
	r.lb = str_len(cpu, in, EMU_RDX);
	if (m == ZYDIS_MNEMONIC_PCMPESTRI)
		host_pcmpestri(&r, imm);
	else if (m == ZYDIS_MNEMONIC_PCMPESTRM)
		host_pcmpestrm(&r, imm);
	else if (m == ZYDIS_MNEMONIC_PCMPISTRI)
		host_pcmpistri(&r, imm);
	else
		host_pcmpistrm(&r, imm);
	if (m == ZYDIS_MNEMONIC_PCMPESTRI || m == ZYDIS_MNEMONIC_PCMPISTRI)
		emu_gpr_set(cpu, EMU_RCX, 4, r.index);
	else
		memcpy(cpu->fpu.xmm[0], r.mask, 16);
	uint64_t fl = cpu->rflags & ~RFLAGS_ARITH;
	fl |= (r.cf ? RFLAGS_CF : 0) | (r.zf ? RFLAGS_ZF : 0) | (r.sf ? RFLAGS_SF : 0) |
	      (r.of ? RFLAGS_OF : 0);
	cpu->rflags = fl;
}

/* --- in C: PTEST, extracts and inserts, MOVNTDQA ------------------------------------------ */

/* PTEST: ZF = (dst AND src) == 0, CF = (NOT dst AND src) == 0; AF OF PF SF 0. */
static void h_ptest(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t s[16];
	if (!xmm_dst_src(cpu, in))
		return;
	emu_sse_src(cpu, in, 1, s, true);
	const uint8_t *d = emu_sse_xmm(cpu, &OP0);
	bool z = true, c = true;
	for (unsigned i = 0; i < 16; i++) {
		z = z && !(d[i] & s[i]);
		c = c && !(~d[i] & s[i]);
	}
	cpu->rflags = (cpu->rflags & ~RFLAGS_ARITH) | (z ? RFLAGS_ZF : 0) | (c ? RFLAGS_CF : 0);
}

/* PEXTRB/PEXTRD/PEXTRQ/EXTRACTPS r/m, xmm, imm8: a register destination
 * gets the element zero-extended (to 32 bits, 64 with REX.W). */
static void h_extract(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned m = in->mnemonic;
	unsigned w = m == ZYDIS_MNEMONIC_PEXTRB ? 1 : m == ZYDIS_MNEMONIC_PEXTRQ ? 8 : 4;
	if (!emu_sse_is_xmm(&OP1)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	unsigned n = 16 / w, i = (unsigned)OP2.val & (n - 1);
	uint64_t v = 0;
	memcpy(&v, emu_sse_xmm(cpu, &OP1) + i * w, w);
	if (OP0.kind == EMU_OP_MEM)
		emu_write(cpu, emu_op_lin(cpu, in, &OP0), w, v);
	else if (OP0.kind == EMU_OP_REG && OP0.rclass == EMU_RC_GPR)
		emu_gpr_set(cpu, OP0.reg, OP0.size < 4 ? 4 : OP0.size, v);
	else
		emu_unimplemented(cpu, in);
}

/* PINSRB/PINSRD/PINSRQ xmm, r/m, imm8. */
static void h_insert(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned m = in->mnemonic;
	unsigned w = m == ZYDIS_MNEMONIC_PINSRB ? 1 : m == ZYDIS_MNEMONIC_PINSRQ ? 8 : 4;
	if (!emu_sse_is_xmm(&OP0)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	uint64_t v;
	if (OP1.kind == EMU_OP_MEM)
		v = emu_read(cpu, emu_op_lin(cpu, in, &OP1), w);
	else if (OP1.kind == EMU_OP_REG && OP1.rclass == EMU_RC_GPR)
		v = cpu->gpr[OP1.reg];
	else {
		emu_unimplemented(cpu, in);
		return;
	}
	unsigned n = 16 / w, i = (unsigned)OP2.val & (n - 1);
	memcpy(emu_sse_xmm(cpu, &OP0) + i * w, &v, w);
}

/* MOVNTDQA: an aligned 16-byte load (no write-combining memory here). */
static void h_movntdqa(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t v[16];
	if (!emu_sse_is_xmm(&OP0) || OP1.kind != EMU_OP_MEM) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	emu_sse_src(cpu, in, 1, v, true);
	memcpy(emu_sse_xmm(cpu, &OP0), v, 16);
}

/* MASKMOVDQU xmm1, xmm2 (SSE2): the bytes of xmm1 whose byte in xmm2 has
 * its top bit set go to DS:rDI (segment override allowed). The whole
 * 16 bytes are checked before any is written. */
static void h_maskmovdqu(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!emu_sse_is_xmm(&OP0) || !emu_sse_is_xmm(&OP1)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_sse_check(cpu);
	const uint8_t *v = emu_sse_xmm(cpu, &OP0), *m = emu_sse_xmm(cpu, &OP1);
	unsigned any = 0;
	for (unsigned i = 0; i < 16; i++)
		any |= m[i] & 0x80;
	if (!any)
		return;
	uint64_t lin = emu_linear(cpu, in->seg, cpu->gpr[EMU_RDI] & emu_mask(in->asize));
	emu_probe_write(cpu, lin, 16);
	for (unsigned i = 0; i < 16; i++)
		if (m[i] & 0x80)
			emu_write(cpu, lin + i, 1, v[i]);
}

#define E(m, h) { ZYDIS_MNEMONIC_##m, h }
#define B(m, name) E(m, h_##name)

static const struct emu_handler_entry emu_exec_sse4_table[] = {
	B(PSHUFB, pshufb), B(PHADDW, phaddw), B(PHADDD, phaddd), B(PHADDSW, phaddsw),
	B(PHSUBW, phsubw), B(PHSUBD, phsubd), B(PHSUBSW, phsubsw), B(PMADDUBSW, pmaddubsw),
	B(PMULHRSW, pmulhrsw), B(PSIGNB, psignb), B(PSIGNW, psignw), B(PSIGND, psignd),
	B(PABSB, pabsb), B(PABSW, pabsw), B(PABSD, pabsd), B(PALIGNR, palignr),
	B(PMULLD, pmulld), B(PMULDQ, pmuldq), B(PMINSB, pminsb), B(PMINSD, pminsd),
	B(PMINUW, pminuw), B(PMINUD, pminud), B(PMAXSB, pmaxsb), B(PMAXSD, pmaxsd),
	B(PMAXUW, pmaxuw), B(PMAXUD, pmaxud), B(PCMPEQQ, pcmpeqq), B(PCMPGTQ, pcmpgtq),
	B(PACKUSDW, packusdw), B(PHMINPOSUW, phminposuw),
	B(PMOVSXBW, pmovsxbw), B(PMOVSXBD, pmovsxbd), B(PMOVSXBQ, pmovsxbq),
	B(PMOVSXWD, pmovsxwd), B(PMOVSXWQ, pmovsxwq), B(PMOVSXDQ, pmovsxdq),
	B(PMOVZXBW, pmovzxbw), B(PMOVZXBD, pmovzxbd), B(PMOVZXBQ, pmovzxbq),
	B(PMOVZXWD, pmovzxwd), B(PMOVZXWQ, pmovzxwq), B(PMOVZXDQ, pmovzxdq),
	B(PBLENDVB, pblendvb), B(BLENDVPS, blendvps), B(BLENDVPD, blendvpd),
	B(PBLENDW, pblendw), B(BLENDPS, blendps), B(BLENDPD, blendpd), B(MPSADBW, mpsadbw),
	B(ROUNDPS, roundps), B(ROUNDPD, roundpd), B(ROUNDSS, roundss), B(ROUNDSD, roundsd),
	B(DPPS, dpps), B(DPPD, dppd), B(INSERTPS, insertps),
	E(PCMPESTRI, h_pcmpstr), E(PCMPESTRM, h_pcmpstr), E(PCMPISTRI, h_pcmpstr),
	E(PCMPISTRM, h_pcmpstr),
	E(PTEST, h_ptest), E(PEXTRB, h_extract), E(PEXTRD, h_extract), E(PEXTRQ, h_extract),
	E(EXTRACTPS, h_extract), E(PINSRB, h_insert), E(PINSRD, h_insert), E(PINSRQ, h_insert),
	E(MOVNTDQA, h_movntdqa), E(MASKMOVDQU, h_maskmovdqu),
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_sse4_table);
