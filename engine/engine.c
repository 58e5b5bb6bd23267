/* engine/engine.c — the table of engines linked into vmdb and the names
 * of the exit vocabulary. */
#include "engine/engine.h"

#include <string.h>

#include "engine/kvm/kvm.h"

/* Weak: unit tests link engine.o with only the KVM engine's objects; the
 * emu engine is then simply absent (a NULL entry). */
extern const struct engine_ops emu_engine_ops __attribute__((weak));

static const struct engine_ops *engine_at(size_t i)
{
	switch (i) {
	case 0: return &kvm_engine_ops;
	case 1: return &emu_engine_ops;
	default: return NULL;
	}
}

#define ENGINE_SLOTS 2

const struct engine_ops *engine_find(const char *name)
{
	for (size_t i = 0; i < ENGINE_SLOTS; i++) {
		const struct engine_ops *ops = engine_at(i);
		if (ops && strcmp(ops->name, name) == 0)
			return ops;
	}
	return NULL;
}

const char *engine_names(void)
{
	return &emu_engine_ops ? "kvm, emu" : "kvm";
}

const char *vm_exit_reason_name(enum vm_exit_reason reason)
{
	switch (reason) {
	case VM_EXIT_NONE: return "none";
	case VM_EXIT_IO: return "port I/O";
	case VM_EXIT_MMIO: return "MMIO";
	case VM_EXIT_HLT: return "HLT";
	case VM_EXIT_SHUTDOWN: return "shutdown";
	case VM_EXIT_RESET: return "reset";
	case VM_EXIT_DB: return "debug exception";
	case VM_EXIT_BPT: return "breakpoint (INT3)";
	case VM_EXIT_MOV_DR: return "MOV DR";
	case VM_EXIT_KICKED: return "kicked";
	case VM_EXIT_EMULATION_FAILURE: return "emulation failure";
	case VM_EXIT_ENTRY_FAILURE: return "entry failure";
	case VM_EXIT_UNKNOWN: return "unknown exit";
	}
	return "invalid exit reason";
}
