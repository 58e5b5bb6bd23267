/* engine/emu/emu_jit.h — private to the fast path: the native tier. A
 * block that has run often (emu_fast.c counts its entries) is translated
 * once into host x86-64 code that does what its handler chain does, with
 * the same results, retired counts and ways out (see emu_jit.c); the
 * translation then stands in op[0].fn, so every way into the block (the
 * block loop, links, tight loops) enters it. Translations live in an
 * executable arena that is emptied with the block arena, so none
 * outlives its block. Only on x86-64 hosts; VMDB_EMU_JIT=0 turns it off. */
#ifndef VMDB_EMU_JIT_H
#define VMDB_EMU_JIT_H

#include <stdio.h>

#include "engine/emu/emu_fast.h"

struct emu_jit;

/* The native tier for a block cache, or NULL when it is off (not an
 * x86-64 host, VMDB_EMU_JIT=0, or no executable memory); *after: the
 * entries of a block before it is translated (VMDB_EMU_JIT=n, for tests:
 * 1 translates every block at once; default 100). */
struct emu_jit *emu_jit_create(uint32_t *after);
void emu_jit_destroy(struct emu_jit *j);
/* Every translation goes (with the block arena). */
void emu_jit_reset(struct emu_jit *j);
/* Is the arena too full to take more translations? (The block cache
 * empties both at its next build.) */
bool emu_jit_full(const struct emu_jit *j);
/* Translate block b (n > 0, op[0].fn still its handler b->fn0, not
 * running anywhere but at its start): on success b->op[0].fn becomes the
 * translation; false when the arena is full. */
bool emu_jit_translate(struct emu_jit *j, struct emu_block *b);
/* Blocks translated, and instructions run in translations (those of a
 * translation left early, by a fault, a device or a store into code, not
 * counted). */
void emu_jit_counts(const struct emu_jit *j, uint64_t *blocks, uint64_t *insns);
/* With VMDB_EMU_STATS=1, the ways out of translations by kind, one line
 * on out (nothing when j is NULL). */
void emu_jit_report(const struct emu_jit *j, FILE *out);

#endif
