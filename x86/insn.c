/* x86/insn.c — per-mnemonic attributes and instruction kinds for the step
 * engine (see insn.h). */
#include "x86/insn.h"
#include "x86/decode.h"

#include <errno.h>
#include <string.h>
#include <Zydis/Zydis.h>

/* MOV SS, r/m and POP SS: the first operand is SS. */
static bool writes_ss(const ZydisDecodedInstruction *insn, const ZydisDecodedOperand *ops)
{
	if (insn->mnemonic != ZYDIS_MNEMONIC_MOV && insn->mnemonic != ZYDIS_MNEMONIC_POP)
		return false;
	return insn->operand_count > 0 && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ops[0].reg.value == ZYDIS_REGISTER_SS;
}

/* --- the per-mnemonic table ---------------------------------------------------- */

#define M(name) ZYDIS_MNEMONIC_##name
#define ATTR(name, a) [M(name)] = { .attrs = (a) }
#define PLAIN(name) ATTR(name, X86_MN_PLAIN)
#define KIND(name, k) [M(name)] = { .kind = (k) }
#define COND8(pre, a, b, c, d, e, f, g, h, x) \
	ATTR(pre##a, x), ATTR(pre##b, x), ATTR(pre##c, x), ATTR(pre##d, x), \
	ATTR(pre##e, x), ATTR(pre##f, x), ATTR(pre##g, x), ATTR(pre##h, x)
#define CONDS(pre, x) COND8(pre, O, NO, B, NB, Z, NZ, BE, NBE, X86_MN_PLAIN | (x)), \
		      COND8(pre, S, NS, P, NP, L, NL, LE, NLE, X86_MN_PLAIN | (x))

/* Indexed by ZydisMnemonic: a dense constant array, so a look-up is one
 * load on the decode paths that ask. */
static const struct x86_mnemonic mnemonics[ZYDIS_MNEMONIC_MAX_VALUE + 1] = {
	/* data movement, arithmetic, bits, stack and near branches */
	PLAIN(MOV), PLAIN(MOVZX), PLAIN(MOVSX), PLAIN(MOVSXD), PLAIN(LEA), PLAIN(NOP),
	PLAIN(ENDBR64), PLAIN(ENDBR32), PLAIN(XCHG), PLAIN(XADD), PLAIN(CMPXCHG),
	PLAIN(CMPXCHG8B), PLAIN(CMPXCHG16B), PLAIN(BSWAP), PLAIN(CBW), PLAIN(CWDE), PLAIN(CDQE),
	PLAIN(CWD), PLAIN(CDQ), PLAIN(CQO), PLAIN(XLAT), PLAIN(ADD), PLAIN(ADC), PLAIN(SUB),
	PLAIN(SBB), PLAIN(CMP), PLAIN(AND), PLAIN(OR), PLAIN(XOR), PLAIN(TEST), PLAIN(INC),
	PLAIN(DEC), PLAIN(NEG), PLAIN(NOT), PLAIN(SHL), PLAIN(SHR), PLAIN(SAR), PLAIN(ROL),
	PLAIN(ROR), PLAIN(RCL), PLAIN(RCR), PLAIN(SHLD), PLAIN(SHRD), PLAIN(MUL), PLAIN(IMUL),
	PLAIN(DIV), PLAIN(IDIV), PLAIN(BT), PLAIN(BTS), PLAIN(BTR), PLAIN(BTC), PLAIN(BSF),
	PLAIN(BSR), PLAIN(TZCNT), PLAIN(LZCNT), PLAIN(POPCNT), PLAIN(CLC), PLAIN(STC),
	PLAIN(CMC), PLAIN(CLD), PLAIN(STD), PLAIN(LAHF), PLAIN(SAHF), PLAIN(POP), PLAIN(LEAVE),
	ATTR(PUSH, X86_MN_PLAIN | X86_MN_PUSHES), ATTR(ENTER, X86_MN_PLAIN | X86_MN_PUSHES),
	ATTR(JMP, X86_MN_PLAIN | X86_MN_JUMP),
	ATTR(CALL, X86_MN_PLAIN | X86_MN_JUMP | X86_MN_PUSHES),
	ATTR(RET, X86_MN_PLAIN | X86_MN_JUMP), PLAIN(JCXZ), PLAIN(JECXZ), PLAIN(JRCXZ), PLAIN(LOOP),
	PLAIN(LOOPE), PLAIN(LOOPNE),
	CONDS(J, X86_MN_JCC), CONDS(SET, X86_MN_SETCC),
	CONDS(CMOV, X86_MN_CMOVCC),

	/* what the step engine treats apart (x86_insn_kind) */
	[M(PUSHF)] = { .attrs = X86_MN_PUSHES, .kind = X86_INSN_PUSHF },
	[M(PUSHFD)] = { .attrs = X86_MN_PUSHES, .kind = X86_INSN_PUSHF },
	[M(PUSHFQ)] = { .attrs = X86_MN_PUSHES, .kind = X86_INSN_PUSHF },
	KIND(POPF, X86_INSN_POPF), KIND(POPFD, X86_INSN_POPF), KIND(POPFQ, X86_INSN_POPF),
	KIND(IRET, X86_INSN_IRET), KIND(IRETD, X86_INSN_IRET), KIND(IRETQ, X86_INSN_IRET),
	KIND(INT, X86_INSN_INT), KIND(INT3, X86_INSN_INT), KIND(INTO, X86_INSN_INT),
	KIND(INT1, X86_INSN_INT), KIND(HLT, X86_INSN_HLT), KIND(STI, X86_INSN_STI),
	KIND(CLI, X86_INSN_CLI),
	[M(SYSCALL)] = { .attrs = X86_MN_MSR, .kind = X86_INSN_SYSCALL },
	[M(SYSRET)] = { .attrs = X86_MN_MSR, .kind = X86_INSN_SYSRET },

	/* state that no operand names */
	ATTR(SWAPGS, X86_MN_MSR), ATTR(RDMSR, X86_MN_MSR), ATTR(WRMSR, X86_MN_MSR),
	ATTR(FXSAVE, X86_MN_FPU), ATTR(FXSAVE64, X86_MN_FPU), ATTR(FXRSTOR, X86_MN_FPU),
	ATTR(FXRSTOR64, X86_MN_FPU), ATTR(XSETBV, X86_MN_FPU), ATTR(XGETBV, X86_MN_FPU),
	ATTR(FWAIT, X86_MN_FPU), ATTR(FNINIT, X86_MN_FPU), ATTR(EMMS, X86_MN_FPU),
	ATTR(XSAVE, X86_MN_FPU | X86_MN_XSAVE), ATTR(XSAVE64, X86_MN_FPU | X86_MN_XSAVE),
	ATTR(XRSTOR, X86_MN_FPU | X86_MN_XSAVE), ATTR(XRSTOR64, X86_MN_FPU | X86_MN_XSAVE),
	ATTR(XSAVEOPT, X86_MN_FPU | X86_MN_XSAVE), ATTR(XSAVEOPT64, X86_MN_FPU | X86_MN_XSAVE),
	ATTR(XSAVEC, X86_MN_FPU | X86_MN_XSAVE), ATTR(XSAVEC64, X86_MN_FPU | X86_MN_XSAVE),
};

#undef M
#undef PLAIN
#undef KIND
#undef ATTR
#undef COND8
#undef CONDS

const struct x86_mnemonic *x86_mnemonic(unsigned mnemonic)
{
	static const struct x86_mnemonic none;
	return mnemonic < sizeof(mnemonics) / sizeof(mnemonics[0]) ? &mnemonics[mnemonic] : &none;
}

/* --- sorting one instruction ------------------------------------------------------ */

static enum x86_insn_kind kind_of(const ZydisDecodedInstruction *insn,
				  const ZydisDecodedOperand *ops)
{
	enum x86_insn_kind k = (enum x86_insn_kind)x86_mnemonic(insn->mnemonic)->kind;
	if (k != X86_INSN_OTHER)
		return k;
	if (writes_ss(insn, ops))
		return X86_INSN_MOV_SS;
	if ((insn->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE |
				 ZYDIS_ATTRIB_HAS_REPNE)) &&
	    insn->meta.category == ZYDIS_CATEGORY_STRINGOP)
		return X86_INSN_REP_STRING;
	if (insn->meta.branch_type != ZYDIS_BRANCH_TYPE_NONE ||
	    insn->meta.category == ZYDIS_CATEGORY_COND_BR ||
	    insn->meta.category == ZYDIS_CATEGORY_UNCOND_BR ||
	    insn->meta.category == ZYDIS_CATEGORY_CALL || insn->meta.category == ZYDIS_CATEGORY_RET)
		return X86_INSN_BRANCH;
	return X86_INSN_OTHER;
}

/* System instructions, control-register writes and far transfers: the
 * system registers a caller cached may be stale afterwards. */
static bool changes_system(const ZydisDecodedInstruction *insn, const ZydisDecodedOperand *ops)
{
	if (insn->meta.category == ZYDIS_CATEGORY_SYSTEM ||
	    insn->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
		return true;
	for (unsigned i = 0; i < insn->operand_count; i++) {
		if (ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER ||
		    !(ops[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			continue;
		ZydisRegisterClass c = ZydisRegisterGetClass(ops[i].reg.value);
		if (c == ZYDIS_REGCLASS_CONTROL || c == ZYDIS_REGCLASS_SEGMENT)
			return true;
	}
	return false;
}

/* First opcode bytes (one-byte map, after legacy prefixes and REX) of
 * instructions that are none of the kinds above, are no control transfer,
 * no string instruction, and load no segment register: ALU, MOV, PUSH/POP
 * of general registers, shifts, x87, IN/OUT, flag bits other than IF's
 * STI and CLI. For them the step engine needs the length alone, which Zydis
 * finds without decoding operands. Everything else (0F escape included)
 * takes the full decode. Being wrong here in the safe direction only
 * costs time: an entry is 1 only if every instruction it starts is OTHER. */
#define R4(a) a, a, a, a
#define R8(a) R4(a), R4(a)
static const uint8_t plain_first[256] = {
	/* 00 */ 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0,
	/* 10 */ 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0,
	/* 20 */ 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1,
	/* 30 */ 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 1,
	/* 40 */ R8(1), R8(1),          /* INC/DEC outside 64-bit mode (REX is skipped) */
	/* 50 */ R8(1), R8(1),          /* PUSH/POP reg */
	/* 60 */ 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0,
	/* 70 */ R8(0), R8(0),          /* Jcc */
	/* 80 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1,
	/* 90 */ 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1,
	/* a0 */ 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0,
	/* b0 */ R8(1), R8(1),          /* MOV reg, imm */
	/* c0 */ 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
	/* d0 */ R8(1), R8(1),          /* shifts, AAM/AAD, XLAT, x87 */
	/* e0 */ 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1,
	/* f0 */ 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0,
};
#undef R4
#undef R8

static bool is_legacy_prefix(uint8_t b)
{
	switch (b) {
	case 0x26: case 0x2e: case 0x36: case 0x3e: case 0x64: case 0x65:
	case 0x66: case 0x67: case 0xf0: case 0xf2: case 0xf3:
		return true;
	default:
		return false;
	}
}

/* The first opcode byte is one of plain_first's. */
static bool plain_insn(enum x86_mode mode, const uint8_t *bytes, size_t len)
{
	size_t i = 0;
	/* REX counts only right before the opcode, but may repeat and mix */
	while (i < len && i < 14 && (is_legacy_prefix(bytes[i]) ||
				     (mode == X86_MODE_LONG64 && (bytes[i] & 0xf0) == 0x40)))
		i++;
	if (i < len && bytes[i] == 0x63)
		return mode == X86_MODE_LONG64;    /* MOVSXD; ARPL elsewhere (system) */
	if (i >= len || !plain_first[bytes[i]])
		return false;
	/* C6 F8 / C7 F8 are XABORT / XBEGIN, not MOV r/m, imm */
	return !((bytes[i] & 0xfe) == 0xc6 && (i + 1 >= len || bytes[i + 1] == 0xf8));
}

int x86_insn_classify(enum x86_mode mode, const uint8_t *bytes, size_t len,
		      struct x86_insn_info *info)
{
	ZydisDecoder decoder;
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];

	memset(info, 0, sizeof(*info));
	if (!x86_zydis_decoder_init(&decoder, mode))
		return -EINVAL;
	if (plain_insn(mode, bytes, len)) {
		if (!ZYAN_SUCCESS(ZydisDecoderDecodeInstruction(&decoder, NULL, bytes, len, &insn)))
			return -EINVAL;
		info->kind = X86_INSN_OTHER;
		info->len = insn.length;
		info->opsize = (uint8_t)(insn.operand_width / 8);
		return 0;
	}
	info->full = true;
	if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes, len, &insn, ops)))
		return -EINVAL;
	info->kind = kind_of(&insn, ops);
	info->len = insn.length;
	info->opsize = (uint8_t)(insn.operand_width / 8);
	info->changes_system = changes_system(&insn, ops);
	return 0;
}

const char *x86_insn_kind_name(enum x86_insn_kind kind)
{
	static const char *const names[] = {
		[X86_INSN_OTHER] = "other", [X86_INSN_PUSHF] = "pushf", [X86_INSN_POPF] = "popf",
		[X86_INSN_IRET] = "iret", [X86_INSN_INT] = "int", [X86_INSN_SYSCALL] = "syscall",
		[X86_INSN_SYSRET] = "sysret", [X86_INSN_HLT] = "hlt", [X86_INSN_MOV_SS] = "mov ss",
		[X86_INSN_STI] = "sti", [X86_INSN_CLI] = "cli", [X86_INSN_REP_STRING] = "rep string",
		[X86_INSN_BRANCH] = "branch",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
