/* debug/run_state.c — each vCPU's run state (enum debug_run in
 * debug_int.h) and the one function that changes it, along a table of
 * the legal moves. The park (park.c) and lending (lend.c) say where a
 * vCPU goes; this file says whether it may, and forgets cached state
 * (vcpu.c) whenever a vCPU may enter the engine again: its own, and that
 * of every parked one, which its run may change (INIT, SIPI). */
#include "debug/debug_int.h"

#include <stdio.h>

#define TO(r) (1u << (r))

static const unsigned legal_moves[DEBUG_RUN_NR] = {
	[DEBUG_RUN_PARKED]    = TO(DEBUG_RUN_RELEASED) | TO(DEBUG_RUN_LENT),
	[DEBUG_RUN_RELEASED]  = TO(DEBUG_RUN_RUNNING) | TO(DEBUG_RUN_PARKED),
	[DEBUG_RUN_RUNNING]   = TO(DEBUG_RUN_STOPPING),
	[DEBUG_RUN_STOPPING]  = TO(DEBUG_RUN_PARKED) | TO(DEBUG_RUN_STEP_SPIN) |
				TO(DEBUG_RUN_RUNNING),
	[DEBUG_RUN_STEP_SPIN] = TO(DEBUG_RUN_PARKED) | TO(DEBUG_RUN_RELEASED) |
				TO(DEBUG_RUN_LENT),
	[DEBUG_RUN_LENT]      = TO(DEBUG_RUN_PARKED),
};

static const char *const run_names[DEBUG_RUN_NR] = {
	[DEBUG_RUN_PARKED] = "parked",
	[DEBUG_RUN_RELEASED] = "released",
	[DEBUG_RUN_RUNNING] = "running",
	[DEBUG_RUN_STOPPING] = "stopping",
	[DEBUG_RUN_STEP_SPIN] = "step-spin",
	[DEBUG_RUN_LENT] = "lent",
};

const char *debug_run_name(enum debug_run run)
{
	return (unsigned)run < DEBUG_RUN_NR ? run_names[run] : "invalid";
}

/* Staying where it is is always legal (a stop of a parked vCPU). */
bool debug_run_legal(enum debug_run from, enum debug_run to)
{
	if ((unsigned)from >= DEBUG_RUN_NR || (unsigned)to >= DEBUG_RUN_NR)
		return false;
	return from == to || (legal_moves[from] & TO(to));
}

bool debug_run_to(struct debug *d, unsigned vcpu, enum debug_run to)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	enum debug_run from = dv->run;
	bool legal = debug_run_legal(from, to);
#ifndef NDEBUG
	if (!legal)
		fprintf(stderr, "vmdb: debug core bug: vCPU %u moved from %s to %s, which the "
			"park's table does not allow\n", vcpu, debug_run_name(from),
			debug_run_name(to));
#endif
	/* the engine may change its state from here on */
	if (to == DEBUG_RUN_RUNNING || to == DEBUG_RUN_LENT)
		debug_vcpu_forget(d, vcpu);
	/* and, once it runs, the state of parked ones too: its INIT or SIPI
	 * (an ICR write) resets another vCPU, which an engine may do on the
	 * sender's thread. Done on the client's thread, the only reader of a
	 * parked vCPU's cache, as it lets this one go. */
	if (to == DEBUG_RUN_RELEASED || to == DEBUG_RUN_LENT)
		for (unsigned i = 0; i < d->nr_vcpus; i++) {
			debug_vcpu_forget(d, i);
			/* and the step engine's copy of their system registers
			 * (a parked one's: a stepping one's thread owns it) */
			enum debug_run other = d->vcpus[i].run;
			if (i != vcpu && (other == DEBUG_RUN_PARKED || other == DEBUG_RUN_STEP_SPIN))
				d->vcpus[i].st.sregs_valid = false;
		}
	__atomic_store_n(&dv->run, to, __ATOMIC_RELEASE);
	return legal;
}

bool debug_run_parked(enum debug_run run)
{
	return run != DEBUG_RUN_RUNNING && run != DEBUG_RUN_STOPPING;
}

void debug_run_stop_locked(struct debug *d, unsigned vcpu)
{
	switch (d->vcpus[vcpu].run) {
	case DEBUG_RUN_RELEASED:
		debug_run_to(d, vcpu, DEBUG_RUN_PARKED);
		break;
	case DEBUG_RUN_RUNNING:
		debug_run_to(d, vcpu, DEBUG_RUN_STOPPING);
		break;
	default:
		break;     /* parked, lent or stopping already */
	}
}

void debug_run_release_locked(struct debug *d, unsigned vcpu)
{
	switch (d->vcpus[vcpu].run) {
	case DEBUG_RUN_PARKED:
	case DEBUG_RUN_STEP_SPIN:
		debug_run_to(d, vcpu, DEBUG_RUN_RELEASED);
		break;
	case DEBUG_RUN_STOPPING:
		debug_run_to(d, vcpu, DEBUG_RUN_RUNNING);
		break;
	default:
		break;     /* released or running already; a lent vCPU is the client's */
	}
}
