/* debug/lend.c — a parked vCPU stepped alone on the client's thread
 * (engine_lend_ops.run): its own thread stays parked, so a step costs
 * no thread wake-up on either side. The exits of the step that are the
 * debugger's (the trap that ends it, a breakpoint) are handled here, as
 * the vCPU's thread would; any other (port I/O, MMIO, ...) is kept in the
 * debug core (handed_back) and given to the vCPU's thread, which the
 * caller then releases to handle it and finish the step.
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

bool debug_lend_step(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct vcpu *v = &d->vm->vcpus[vcpu];
	struct vm_exit exit;

	pthread_mutex_lock(&d->lock);
	debug_run_to(d, vcpu, DEBUG_RUN_LENT);
	pthread_mutex_unlock(&d->lock);
	__atomic_add_fetch(&dv->lend_seq, 1, __ATOMIC_SEQ_CST);    /* odd: lent */
	memset(&exit, 0, sizeof(exit));
	int r = d->vm->engine->lend->run(v, &exit);
	__atomic_add_fetch(&dv->lend_seq, 1, __ATOMIC_SEQ_CST);
	bool handled = false;
	if (r == 0 && exit.reason == VM_EXIT_DB)
		handled = debug_on_db(d, v, &exit);
	else if (r == 0 && exit.reason == VM_EXIT_BPT)
		handled = debug_on_bpt(d, v, exit.bpt.pc);
	pthread_mutex_lock(&d->lock);
	/* a kick (nothing ran) or a host error: the vCPU's thread runs it
	 * again and meets the error itself */
	if (r == 0 && !handled && exit.reason != VM_EXIT_KICKED) {
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
