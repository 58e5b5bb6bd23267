/* engine/engine.c — the engines linked into vmdb (the ENGINE_REGISTER
 * section), --engine auto's choice between them, the fallback counts'
 * arithmetic and the names of the exit vocabulary. */
#include "engine/engine.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Bounds of the ENGINE_REGISTER() section; weak: a binary that links no
 * engine (a unit test of something else) still links. */
extern const struct engine_ops *const __start_vmdb_engines[] __attribute__((weak));
extern const struct engine_ops *const __stop_vmdb_engines[] __attribute__((weak));

#define FOR_EACH_ENGINE(p)                                            \
	for (const struct engine_ops *const *p = __start_vmdb_engines; \
	     p && p < __stop_vmdb_engines; p++)

const struct engine_ops *engine_find(const char *name)
{
	FOR_EACH_ENGINE(p)
		if (strcmp((*p)->name, name) == 0)
			return *p;
	return NULL;
}

void engine_names(char *out, size_t size)
{
	size_t n = 0;
	if (size)
		out[0] = '\0';
	FOR_EACH_ENGINE(p)
		if (n < size)
			n += (size_t)snprintf(out + n, size - n, "%s%s", n ? ", " : "", (*p)->name);
}

const struct emu_single_ops *engine_assist(void)
{
	FOR_EACH_ENGINE(p)
		if ((*p)->assist)
			return (*p)->assist;
	return NULL;
}

const struct engine_ops *engine_lender(const struct emu_single_ops *assist)
{
	FOR_EACH_ENGINE(p)
		if (assist && (*p)->assist == assist)
			return *p;
	return NULL;
}

void engine_fallback_merge(struct engine_fallback_stats *sum,
			   const struct engine_fallback_stats *one)
{
	sum->total += one->total;
	for (unsigned i = 0; i < one->nr && i < ENGINE_FALLBACK_KINDS; i++) {
		unsigned j = 0;
		while (j < sum->nr && strcmp(sum->insn[j].name, one->insn[i].name) != 0)
			j++;
		if (j == ENGINE_FALLBACK_KINDS) {
			j = ENGINE_FALLBACK_KINDS - 1;
			snprintf(sum->insn[j].name, sizeof(sum->insn[j].name), "other");
		} else if (j == sum->nr) {
			memcpy(sum->insn[j].name, one->insn[i].name, sizeof(sum->insn[j].name));
			sum->nr++;
		}
		sum->insn[j].count += one->insn[i].count;
	}
}

void engine_fallback_format(const struct engine_fallback_stats *stats, char *out, size_t size)
{
	bool shown[ENGINE_FALLBACK_KINDS] = { false };
	size_t n = (size_t)snprintf(out, size, "%llu", (unsigned long long)stats->total);
	for (unsigned k = 0; k < stats->nr && k < ENGINE_FALLBACK_KINDS && n < size; k++) {
		int best = -1;              /* selection by count: the list is short */
		for (unsigned i = 0; i < stats->nr && i < ENGINE_FALLBACK_KINDS; i++)
			if (!shown[i] && (best < 0 || stats->insn[i].count > stats->insn[best].count))
				best = (int)i;
		shown[best] = true;
		n += (size_t)snprintf(out + n, size - n, "%s%s %llu", k ? ", " : " (",
				      stats->insn[best].name,
				      (unsigned long long)stats->insn[best].count);
	}
	if (stats->nr && n < size)
		snprintf(out + n, size - n, ")");
}

const struct engine_ops *engine_auto(char *why, size_t size)
{
	const struct engine_ops *kvm = engine_find("kvm"), *emu = engine_find("emu");
	if (!emu || !kvm) {
		const struct engine_ops *only = emu ? emu : kvm;
		snprintf(why, size, "engine %s: the only engine in this build", only->name);
		return only;
	}
	if (access("/dev/kvm", R_OK | W_OK) != 0) {
		snprintf(why, size, "engine emu: no usable /dev/kvm (%s); --engine kvm to insist",
			 strerror(errno));
		return emu;
	}
	struct engine_caps caps;
	struct err e = { 0 };
	if (!kvm->vm->probe || kvm->vm->probe(engine_assist(), &caps, NULL, &e) < 0) {
		snprintf(why, size, "engine emu: KVM could not run a probe guest (%s)",
			 kvm->vm->probe ? e.msg : "it cannot be probed");
		return emu;
	}
	double rate = caps.ring0_rate;
	if (caps.ring0_native) {
		snprintf(why, size, "engine kvm: this host runs guest ring-0 code natively "
			 "(measured %.0fM instructions/s); --engine emu to override", rate / 1e6);
		return kvm;
	}
	if (rate <= 0) {
		snprintf(why, size, "engine emu: KVM could not time a ring-0 probe guest; "
			 "--engine kvm to insist");
		return emu;
	}
	snprintf(why, size, "engine emu: this host emulates guest ring-0 code (measured %.1fM "
		 "instructions/s), emu runs it faster; --engine kvm to override", rate / 1e6);
	return emu;
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
	case VM_EXIT_ACCESS: return "caught access";
	case VM_EXIT_KICKED: return "kicked";
	case VM_EXIT_EMULATION_FAILURE: return "emulation failure";
	case VM_EXIT_ENTRY_FAILURE: return "entry failure";
	case VM_EXIT_UNKNOWN: return "unknown exit";
	}
	return "invalid exit reason";
}
