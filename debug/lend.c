/* debug/lend.c — a parked vCPU stepped alone on the client's thread
 * (engine_lend_ops.run): its own thread stays parked, so a step costs
 * no thread wake-up on either side. The exits of the step that are the
 * debugger's (the trap that ends it, a breakpoint) are handled here, as
 * the vCPU's thread would, and so are port I/O and MMIO, which the
 * machine's devices take from any thread (vm_handle_device_exit); the
 * step then runs on here to its trap. Any other exit (a halt, a triple
 * fault, ...) is kept in the debug core (handed_back) and given to the
 * vCPU's thread, which the caller then releases to handle it and finish
 * the step.
 *
 * Where it is exact, the step is done without the engine at all
 * (step_exact.c) and its exit handled here the same way.
 *
 * A lent step that blocks (HLT, a wait for SIPI) would hold the client's
 * thread: the vCPU's parked thread looks at it now and then
 * (debug_lend_watch_locked) and kicks it, at once when the client has
 * something to say; the client then releases the vCPU's thread to finish
 * the step, where a Ctrl-C can stop it. */
#include "debug/debug_int.h"

#include <string.h>

/* The engine lends vCPUs, this one is single-stepped (not a HLT run,
 * which may last) and its thread is out of the engine. The caller keeps
 * every other vCPU parked. */
bool debug_lendable(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	if (!d->vm->engine->lend)
		return false;
	pthread_mutex_lock(&d->lock);
	enum debug_run run = dv->run;
	bool ok = (run == DEBUG_RUN_PARKED || run == DEBUG_RUN_STEP_SPIN) && dv->applied_valid &&
		  dv->applied.single_step && !dv->has_handed_back && !debug_gone_locked(d);
	pthread_mutex_unlock(&d->lock);
	return ok;
}

/* One lent run of the engine; lend_seq is odd meanwhile. */
static int lend_run(struct debug *d, unsigned vcpu, struct vm_exit *exit)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	__atomic_add_fetch(&dv->lend_seq, 1, __ATOMIC_SEQ_CST);
	memset(exit, 0, sizeof(*exit));
	int r = d->vm->engine->lend->run(&d->vm->vcpus[vcpu], exit);
	__atomic_add_fetch(&dv->lend_seq, 1, __ATOMIC_SEQ_CST);
	return r;
}

/* A stepped instruction exits to a device once (KVM completes it at the
 * next run); the bound only keeps an engine that exits again and again
 * from holding the client's thread: the rest goes to the vCPU's thread. */
#define LEND_DEVICE_EXITS 4

/* Run the lent vCPU, handling its device exits here as its own thread
 * would (the debugger's look at every exit first, as hook_on_exit). The
 * exit that ends it is left in *exit. False when a device exit stopped or
 * reset the machine: nothing is left to run or hand back. */
static bool lend_run_through_devices(struct debug *d, unsigned vcpu, struct vm_exit *exit,
				     int *r)
{
	struct vcpu *v = &d->vm->vcpus[vcpu];
	*r = lend_run(d, vcpu, exit);
	for (unsigned n = 0; *r == 0 && n < LEND_DEVICE_EXITS; n++) {
		if (exit->reason != VM_EXIT_IO && exit->reason != VM_EXIT_MMIO)
			break;
		debug_dr_share_on_exit(d, v, exit);
		if (vm_handle_device_exit(v, exit) == VM_DEVICE_EXIT_STOPPING)
			return false;
		pthread_mutex_lock(&d->lock);
		d->park_stats.lent_device_exits++;
		pthread_mutex_unlock(&d->lock);
		*r = lend_run(d, vcpu, exit);
	}
	return true;
}

bool debug_lend_step(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct vcpu *v = &d->vm->vcpus[vcpu];
	struct vm_exit exit;
	int r = 0;

	/* on the exact core the engine does not run: the vCPU stays parked
	 * and what vmdb holds of its state stays valid */
	bool exact = debug_step_exact(d, vcpu, &exit);
	if (!exact) {
		debug_vcpu_flush(d, vcpu);
		pthread_mutex_lock(&d->lock);
		debug_run_to(d, vcpu, DEBUG_RUN_LENT);
		pthread_mutex_unlock(&d->lock);
	}
	bool runs_on = exact || lend_run_through_devices(d, vcpu, &exit, &r);
	bool handled = false;
	if (runs_on && r == 0 && exit.reason == VM_EXIT_DB)
		handled = debug_on_db(d, v, &exit);
	else if (runs_on && r == 0 && exit.reason == VM_EXIT_BPT)
		handled = debug_on_bpt(d, v, exit.bpt.pc);
	pthread_mutex_lock(&d->lock);
	/* a kick (nothing ran) or a host error: the vCPU's thread runs it
	 * again and meets the error itself */
	if (runs_on && r == 0 && !handled && exit.reason != VM_EXIT_KICKED) {
		dv->handed_back = exit;
		dv->has_handed_back = true;
	}
	debug_run_to(d, vcpu, DEBUG_RUN_PARKED);
	/* the vCPU's thread never left its park: nobody to wake, no spin */
	dv->notify_on_park = false;
	__atomic_store_n(&dv->user_step_ended, false, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&d->lock);
	return handled;
}

void debug_lend_watch_locked(struct debug *d, struct vcpu *vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	unsigned seq = __atomic_load_n(&dv->lend_seq, __ATOMIC_SEQ_CST);
	/* a Ctrl-C or a hang-up waits for the client's thread: kick at once */
	if ((seq & 1) && (seq == dv->lend_seen || debug_client_spoke(d)) && !debug_gone_locked(d))
		d->vm->engine->vcpu->kick(vcpu);
	dv->lend_seen = seq;
}
