/* debug/reboot.c — the machine booted again under the debugger (the guest
 * reset it): the client's session goes on as on real hardware with a
 * hardware debugger attached. RAM was cleared and the kernel loaded again,
 * so every software breakpoint's int3 goes back over the reloaded byte;
 * the vCPUs are new, so hardware breakpoints, watched ranges and the
 * step engine start again from what the client asked for, and what the
 * debug core knew about the old vCPUs (register cache, run and step
 * state, the guest's own DR0-3) is forgotten. */
#include "debug/debug_int.h"

#include <string.h>

#define X86_INT3 0xcc

/* The byte each breakpoint replaces is the reloaded one (two breakpoints
 * on one byte share the first one's). */
static void sw_reinsert_locked(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_sw; i++) {
		struct debug_sw_bp *bp = &d->sw[i];
		uint8_t *host = vm_gpa_to_host(d->vm, bp->gpa, 1);
		if (!host)
			continue;
		bp->orig = *host;
		for (unsigned j = 0; j < i; j++)
			if (d->sw[j].gpa == bp->gpa)
				bp->orig = d->sw[j].orig;
		bp->lifted = false;
		*host = X86_INT3;
	}
	d->mem_gen++;
}

/* A vCPU thread counts as parked until it reaches before_run: one the
 * client holds stays held; one it let run runs again from reset. */
static void vcpu_forget_locked(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	enum debug_run run = dv->run;
	if (run == DEBUG_RUN_RUNNING)
		run = DEBUG_RUN_RELEASED;
	else if (run == DEBUG_RUN_STEP_SPIN || run == DEBUG_RUN_LENT)
		run = DEBUG_RUN_STOPPING;
	__atomic_store_n(&dv->run, run, __ATOMIC_RELEASE);
	dv->step = DEBUG_STEP_NONE;
	dv->step_done = false;
	dv->hw_lifted = 0;
	dv->step_watch = false;
	__atomic_store_n(&dv->user_step_ended, false, __ATOMIC_RELEASE);
	dv->has_handed_back = false;
	dv->fatal_shown = false;
	dv->cache_parts = 0;
	dv->seen_waiting_sipi = false;
	dv->applied_valid = false;
	memset(&dv->st, 0, sizeof(dv->st));
	memset(&d->share.vcpu[vcpu], 0, sizeof(d->share.vcpu[vcpu]));
	memset(&d->catch_at[vcpu], 0, sizeof(d->catch_at[vcpu]));
}

/* The machine is stopping to boot again: parked vCPU threads see it
 * (debug_gone_locked) once woken, and leave like every other one. */
void debug_on_reset(struct vm *vm)
{
	struct debug *d = vm->debug;
	pthread_mutex_lock(&d->lock);
	debug_gone_locked(d);
	pthread_cond_broadcast(&d->park_cond);
	pthread_cond_broadcast(&d->parked_cond);
	pthread_mutex_unlock(&d->lock);
}

/* The client single-stepped the instruction that reset the machine: the
 * step ends before the first instruction of the new boot, every vCPU
 * held, as a step into any other instruction would. */
static void step_ends_at_power_on(struct debug *d, unsigned vcpu)
{
	struct x86_regs regs = { 0 };
	debug_vcpu_regs(d, vcpu, &regs);
	struct debug_event ev = { .kind = DEBUG_EV_STEP, .vcpu = vcpu, .addr = regs.rip };

	pthread_mutex_lock(&d->lock);
	debug_queue_locked(d, &ev);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (d->vcpus[i].run != DEBUG_RUN_PARKED)
			__atomic_store_n(&d->vcpus[i].run, DEBUG_RUN_STOPPING, __ATOMIC_RELEASE);
	d->vcpus[vcpu].notify_on_park = true;
	pthread_mutex_unlock(&d->lock);
}

void debug_on_reboot(struct vm *vm)
{
	struct debug *d = vm->debug;
	int stepped = -1;

	debug_step_guards_drop(d);
	pthread_mutex_lock(&d->lock);
	/* the machine stopped only to boot again: it is not gone */
	if (!d->end_queued)
		d->gone = false;
	sw_reinsert_locked(d);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		if (d->vcpus[i].step == DEBUG_STEP_USER)
			stepped = (int)i;
		vcpu_forget_locked(d, i);
	}
	memset(&d->guard, 0, sizeof(d->guard));
	d->catch_dirty = true;
	d->watch_dirty = true;
	pthread_mutex_unlock(&d->lock);
	debug_watch_sync(d);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		debug_apply_engine(d, i);
	if (stepped >= 0)
		step_ends_at_power_on(d, (unsigned)stepped);
	pthread_mutex_lock(&d->lock);
	d->reboots++;
	pthread_cond_broadcast(&d->parked_cond);
	pthread_mutex_unlock(&d->lock);
}

int debug_system_reset(struct debug *d, struct err *e)
{
	if (d->vm->cfg.no_reboot)
		return err_set(e, EPERM, "vmdb runs with --no-reboot: a reset would end it");
	pthread_mutex_lock(&d->lock);
	unsigned reboots = d->reboots;
	pthread_mutex_unlock(&d->lock);
	vm_request_reset(d->vm, "the debugger reset it");
	/* the vCPU threads leave, the machine boots again, they come back
	 * held (debug_on_reboot); a reboot that fails ends the machine */
	pthread_mutex_lock(&d->lock);
	while (d->reboots == reboots && !d->end_queued) {
		struct timespec ts;
		debug_deadline_in(&ts, 100 * 1000000L);
		pthread_cond_timedwait(&d->parked_cond, &d->lock, &ts);
	}
	bool rebooted = d->reboots != reboots;
	pthread_mutex_unlock(&d->lock);
	if (!rebooted)
		return err_set(e, EIO, "the machine ended instead of booting again");
	return 0;
}
