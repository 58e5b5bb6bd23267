/* engine/emu/emu_stats.h — with VMDB_EMU_STATS=1, how the instructions
 * ran, per mnemonic: which ones took the exact way inside a block
 * (f_exact: no specialised handler), which specialised ones fell back to
 * it (f_miss: a TLB miss, a device, a code frame...), and which were
 * stepped outside blocks (not plain, or not in 64-bit mode); the top of
 * each list is printed when the VM goes (emu_stats_report). */
#ifndef VMDB_EMU_STATS_H
#define VMDB_EMU_STATS_H

#include <stdint.h>

struct emu_vm;

enum emu_stat_way { EMU_STAT_EXACT, EMU_STAT_MISS, EMU_STAT_STEP, EMU_STAT_WAYS };

/* evm->insn_stats: the counts when VMDB_EMU_STATS=1, else left NULL
 * (also when there is no memory for them: the counts are optional). */
void emu_insn_stats_create(struct emu_vm *evm);
void emu_insn_stats_destroy(struct emu_vm *evm);
/* The top of each way's list on stderr. */
void emu_insn_stats_report(const struct emu_vm *evm);

/* One more instruction of mnemonic m run the way `way`. The emu engine
 * runs one vCPU at a time, and the counts are only a guide anyway. */
static inline void emu_insn_stat(uint64_t *stats, unsigned way, unsigned m)
{
	if (__builtin_expect(stats != 0, 0))
		stats[way * 2048 + (m & 2047)]++;
}

#endif
