#include "x86/x86.h"

const char *x86_mode_name(enum x86_mode mode)
{
	switch (mode) {
	case X86_MODE_REAL: return "real mode";
	case X86_MODE_PROT16: return "16-bit protected mode";
	case X86_MODE_PROT32: return "32-bit protected mode";
	case X86_MODE_LONG64: return "long mode";
	case X86_MODE_COMPAT: return "compatibility mode";
	}
	return "unknown mode";
}
