/* machine/snapshot.h — the snapshot history of one vm: whole-machine
 * captures (every vCPU, the engine's platform and scheduler, every device,
 * guest RAM stored incrementally by dirty page) tagged with the engine's
 * global retired-instruction count, kept within a byte budget by dropping
 * the oldest. Only engines with snapshot ops (emu) can be captured.
 *
 * The history is one deterministic execution: after a restore, running
 * forward and taking snapshots again (at new counts or at kept ones) is
 * fine; after anything that changes the future (the debugger writing
 * registers or memory, input that differs), snap_forget_after. A reset of
 * the machine ends the history. RAM is captured as it is, the debugger's
 * int3 bytes included: a caller with breakpoints inserted lifts them
 * around take and restore. On emu, restoring leaves the run token with
 * the thread that holds it (engine_snap_ops, emu_sched_restore). One
 * caller at a time for take, restore and forget_after; the queries may
 * come from any thread. */
#ifndef VMDB_SNAPSHOT_H
#define VMDB_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct vm;
struct snap_store;   /* the snapshot history of one vm, within a byte budget */

int  snap_store_create(struct vm *vm, uint64_t budget_bytes, struct snap_store **out,
		       struct err *e) must_check;
void snap_store_destroy(struct snap_store *s);

/* Capture the whole machine now, tagged with `icount` (the engine's global
 * count of retired instructions). Caller guarantees every vCPU is at an
 * instruction boundary and no device access is in flight (emu: the
 * run-token holder between quanta, or every vCPU parked by the debugger).
 * Drops the oldest snapshots to stay within the budget (never the newest). */
int  snap_take(struct snap_store *s, uint64_t icount, struct err *e) must_check;

/* Put the machine back to the newest snapshot whose icount <= target (same
 * preconditions); *at = its icount. Fails (clear error) when the history
 * does not reach back that far. */
int  snap_restore(struct snap_store *s, uint64_t target, uint64_t *at,
		  struct err *e) must_check;

uint64_t snap_oldest(const struct snap_store *s);   /* icount of the oldest kept, or UINT64_MAX */
uint64_t snap_newest(const struct snap_store *s);   /* icount of the newest kept, or UINT64_MAX */
size_t   snap_count(const struct snap_store *s);
uint64_t snap_bytes(const struct snap_store *s);    /* memory in use */
/* A new byte budget, kept from the next take on (a caller whose other
 * history memory grows gives the snapshots less). */
void     snap_set_budget(struct snap_store *s, uint64_t budget_bytes);
/* Drop snapshots > icount (history rewritten after a live edit). */
void     snap_forget_after(struct snap_store *s, uint64_t icount);

#endif
