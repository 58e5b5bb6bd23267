#include "x86/decode.h"

#include <stdio.h>
#include <Zydis/Zydis.h>

bool x86_zydis_decoder_init(ZydisDecoder *dec, enum x86_mode mode)
{
	ZydisMachineMode mm;
	ZydisStackWidth sw;
	switch (mode) {
	case X86_MODE_LONG64:
		mm = ZYDIS_MACHINE_MODE_LONG_64;
		sw = ZYDIS_STACK_WIDTH_64;
		break;
	case X86_MODE_COMPAT:
		mm = ZYDIS_MACHINE_MODE_LONG_COMPAT_32;
		sw = ZYDIS_STACK_WIDTH_32;
		break;
	case X86_MODE_PROT32:
		mm = ZYDIS_MACHINE_MODE_LEGACY_32;
		sw = ZYDIS_STACK_WIDTH_32;
		break;
	case X86_MODE_PROT16:
		mm = ZYDIS_MACHINE_MODE_LEGACY_16;
		sw = ZYDIS_STACK_WIDTH_16;
		break;
	case X86_MODE_REAL:
	default:
		mm = ZYDIS_MACHINE_MODE_REAL_16;
		sw = ZYDIS_STACK_WIDTH_16;
		break;
	}
	return ZYAN_SUCCESS(ZydisDecoderInit(dec, mm, sw));
}

unsigned x86_format_insn(enum x86_mode mode, uint64_t pc, const uint8_t *bytes, size_t len,
			 char *out, size_t out_size)
{
	ZydisDecoder decoder;
	ZydisDecodedInstruction insn;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZydisFormatter fmt;

	if (!x86_zydis_decoder_init(&decoder, mode) ||
	    !ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, bytes, len, &insn, ops)) ||
	    !ZYAN_SUCCESS(ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL)) ||
	    !ZYAN_SUCCESS(ZydisFormatterFormatInstruction(&fmt, &insn, ops,
							   insn.operand_count_visible, out,
							   out_size, pc, ZYAN_NULL))) {
		snprintf(out, out_size, "(bad)");
		return 0;
	}
	return insn.length;
}
