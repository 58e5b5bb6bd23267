#include "x86/x86.h"
#include <stddef.h>

static const char *const vector_names[X86_NR_VECTORS] = {
	[X86_DE] = "#DE", [X86_DB] = "#DB", [X86_NMI] = "NMI", [X86_BP] = "#BP",
	[X86_OF] = "#OF", [X86_BR] = "#BR", [X86_UD] = "#UD", [X86_NM] = "#NM",
	[X86_DF] = "#DF", [9] = "#09", [X86_TS] = "#TS", [X86_NP] = "#NP",
	[X86_SS] = "#SS", [X86_GP] = "#GP", [X86_PF] = "#PF", [15] = "#15",
	[X86_MF] = "#MF", [X86_AC] = "#AC", [X86_MC] = "#MC", [X86_XM] = "#XM",
	[20] = "#VE", [21] = "#CP", [22] = "#22", [23] = "#23", [24] = "#24", [25] = "#25",
	[26] = "#26", [27] = "#27", [28] = "#HV", [29] = "#VC", [30] = "#SX", [31] = "#31",
};

const char *x86_vector_name(unsigned vector)
{
	return vector < X86_NR_VECTORS ? vector_names[vector] : NULL;
}

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
