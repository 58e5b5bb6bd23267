/* debug/reverse.h — reverse execution in the debug core (reverse.c): step
 * a vCPU back one instruction, run back to the last breakpoint or
 * watchpoint hit on any vCPU, and run forward inside the history exactly
 * as it was recorded, on an engine that records and replays
 * (engine_rr_ops). Knows nothing of snapshots or packets: the engine puts
 * the stopped machine at an instruction count; this file decides which
 * count, from the breakpoints and watchpoints it meets on the way.
 *
 * Called by the client's thread with every vCPU parked, like the rest of
 * the debug core. */
#ifndef VMDB_DEBUG_REVERSE_H
#define VMDB_DEBUG_REVERSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "debug/debug.h"
#include "util/err.h"

/* The engine records and replays (emu). */
bool debug_reverse_supported(const struct debug *d);
/* monitor record on|off: start (budget: snapshot bytes, 0 = as configured)
 * or stop and forget the history. -ENOTSUP with words on kvm. */
int debug_record(struct debug *d, bool on, uint64_t budget, struct err *e) must_check;
/* monitor info record: a few lines. */
void debug_record_describe(struct debug *d, char *out, size_t size);

/* Reverse moves. On success *ev is the stop to report; *at_start is true
 * when the history begins there (gdb: "No more reverse-execution
 * history"), the machine then at its oldest point. */
int debug_reverse_step(struct debug *d, unsigned vcpu, struct debug_event *ev, bool *at_start,
		       struct err *e) must_check;
int debug_reverse_continue(struct debug *d, unsigned vcpu, struct debug_event *ev,
			   bool *at_start, struct err *e) must_check;

/* monitor record goto N: the machine to global instruction N of the
 * history (back or forward), every vCPU stopped there. */
int debug_reverse_goto(struct debug *d, uint64_t target, struct err *e) must_check;

/* debug_resume() inside the history: the move is replayed here and its
 * stop queued (1); 0 when the machine reached the end of the history and
 * runs live from there as usual; -errno on failure. */
int debug_reverse_resume(struct debug *d, const enum debug_action *actions, struct err *e);
/* The client wrote guest memory (the guest's view of the bytes). */
void debug_reverse_mem_written(struct debug *d, uint64_t gpa, const void *buf, size_t len);
/* The debug core exists: the engine may call back around its snapshots. */
void debug_reverse_attach(struct debug *d);

#endif
