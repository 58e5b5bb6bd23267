/* engine/emu/emu_stats.c — per-mnemonic counts of the ways instructions
 * ran (see emu_stats.h). */
#include "engine/emu/emu_stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_core.h"

#define STAT_MNEMONICS 2048
#define STAT_TOP 25

_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE < STAT_MNEMONICS, "mnemonics fit the table");

void emu_insn_stats_create(struct emu_vm *evm)
{
	const char *v = getenv("VMDB_EMU_STATS");
	if (v && strcmp(v, "1") == 0)
		evm->insn_stats = calloc(EMU_STAT_WAYS * STAT_MNEMONICS, sizeof(uint64_t));
}

void emu_insn_stats_destroy(struct emu_vm *evm)
{
	free(evm->insn_stats);
	evm->insn_stats = NULL;
}

static void report_way(const uint64_t *n, const char *what)
{
	uint64_t total = 0;
	unsigned order[STAT_MNEMONICS], k = 0;
	for (unsigned m = 0; m < STAT_MNEMONICS; m++) {
		total += n[m];
		if (n[m])
			order[k++] = m;
	}
	/* the STAT_TOP largest first (a partial selection sort) */
	for (unsigned i = 0; i < k && i < STAT_TOP; i++) {
		unsigned best = i;
		for (unsigned j = i + 1; j < k; j++)
			if (n[order[j]] > n[order[best]])
				best = j;
		unsigned t = order[i];
		order[i] = order[best];
		order[best] = t;
	}
	fprintf(stderr, "vmdb: emu: %llu instructions %s:", (unsigned long long)total, what);
	for (unsigned i = 0; i < k && i < STAT_TOP; i++)
		fprintf(stderr, " %s %llu", ZydisMnemonicGetString((ZydisMnemonic)order[i]),
			(unsigned long long)n[order[i]]);
	fputc('\n', stderr);
}

void emu_insn_stats_report(const struct emu_vm *evm)
{
	static const char *const what[EMU_STAT_WAYS] = {
		[EMU_STAT_EXACT] = "run by their exact handler in blocks (no fast handler)",
		[EMU_STAT_MISS] = "of fast handlers that took the exact way (f_miss)",
		[EMU_STAT_STEP] = "stepped outside blocks",
	};
	if (!evm->insn_stats)
		return;
	for (unsigned w = 0; w < EMU_STAT_WAYS; w++)
		report_way(evm->insn_stats + w * STAT_MNEMONICS, what[w]);
}
