/* x86/insn.c — instruction kinds for the step engine (see insn.h). */
#include "x86/insn.h"

#include <errno.h>
#include <string.h>
#include <Zydis/Zydis.h>

static void zydis_mode(enum x86_mode mode, ZydisMachineMode *mm, ZydisStackWidth *sw)
{
	switch (mode) {
	case X86_MODE_LONG64:
		*mm = ZYDIS_MACHINE_MODE_LONG_64;
		*sw = ZYDIS_STACK_WIDTH_64;
		break;
	case X86_MODE_COMPAT:
		*mm = ZYDIS_MACHINE_MODE_LONG_COMPAT_32;
		*sw = ZYDIS_STACK_WIDTH_32;
		break;
	case X86_MODE_PROT32:
		*mm = ZYDIS_MACHINE_MODE_LEGACY_32;
		*sw = ZYDIS_STACK_WIDTH_32;
		break;
	default:
		*mm = mode == X86_MODE_PROT16 ? ZYDIS_MACHINE_MODE_LEGACY_16
					      : ZYDIS_MACHINE_MODE_REAL_16;
		*sw = ZYDIS_STACK_WIDTH_16;
		break;
	}
}

/* MOV SS, r/m and POP SS: the first operand is SS. */
static bool writes_ss(const ZydisDecodedInstruction *insn, const ZydisDecodedOperand *ops)
{
	if (insn->mnemonic != ZYDIS_MNEMONIC_MOV && insn->mnemonic != ZYDIS_MNEMONIC_POP)
		return false;
	return insn->operand_count > 0 && ops[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ops[0].reg.value == ZYDIS_REGISTER_SS;
}

static enum x86_insn_kind kind_of(const ZydisDecodedInstruction *insn,
				  const ZydisDecodedOperand *ops)
{
	switch (insn->mnemonic) {
	case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFD: case ZYDIS_MNEMONIC_PUSHFQ:
		return X86_INSN_PUSHF;
	case ZYDIS_MNEMONIC_POPF: case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ:
		return X86_INSN_POPF;
	case ZYDIS_MNEMONIC_IRET: case ZYDIS_MNEMONIC_IRETD: case ZYDIS_MNEMONIC_IRETQ:
		return X86_INSN_IRET;
	case ZYDIS_MNEMONIC_INT: case ZYDIS_MNEMONIC_INT3: case ZYDIS_MNEMONIC_INTO:
	case ZYDIS_MNEMONIC_INT1:
		return X86_INSN_INT;
	case ZYDIS_MNEMONIC_SYSCALL:
		return X86_INSN_SYSCALL;
	case ZYDIS_MNEMONIC_SYSRET:
		return X86_INSN_SYSRET;
	case ZYDIS_MNEMONIC_HLT:
		return X86_INSN_HLT;
	case ZYDIS_MNEMONIC_STI:
		return X86_INSN_STI;
	default:
		break;
	}
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

int x86_insn_classify(enum x86_mode mode, const uint8_t *bytes, size_t len,
		      struct x86_insn_info *info)
{
	ZydisMachineMode mm;
	ZydisStackWidth sw;
	ZydisDecoder decoder;
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];

	memset(info, 0, sizeof(*info));
	zydis_mode(mode, &mm, &sw);
	if (!ZYAN_SUCCESS(ZydisDecoderInit(&decoder, mm, sw)) ||
	    !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes, len, &insn, ops)))
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
		[X86_INSN_STI] = "sti", [X86_INSN_REP_STRING] = "rep string",
		[X86_INSN_BRANCH] = "branch",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}
