/* debug/state.c — a vCPU's architectural state as the debugger reads and
 * writes it (with the vCPU parked), the one-line description of a vCPU
 * for thread lists, and the capability report. */
#include "debug/debug_int.h"

#include <stdio.h>
#include <string.h>

static int read_from_engine(struct debug *d, unsigned vcpu, struct debug_cpu_state *st)
{
	const struct engine_ops *eng = d->vm->engine;
	struct vcpu *v = &d->vm->vcpus[vcpu];
	int r;

	memset(st, 0, sizeof(*st));
	if ((r = eng->get_regs(v, &st->regs)) < 0 || (r = eng->get_sregs(v, &st->sregs)) < 0)
		return r;
	st->have_fpu = eng->get_fpu && eng->get_fpu(v, &st->fpu) == 0;
	st->have_kgs = eng->get_msr &&
		       eng->get_msr(v, MSR_KERNEL_GS_BASE, &st->kernel_gs_base) == 0;
	debug_step_view_regs(d, vcpu, &st->regs);
	return 0;
}

/* Reading a vCPU's state costs several engine calls (each one expensive
 * under nested KVM); a parked vCPU's state only changes through us, so
 * it is read once per stop, as QEMU's cpu_synchronize_state does. */
int debug_read_state(struct debug *d, unsigned vcpu, struct debug_cpu_state *st)
{
	if (vcpu >= d->nr_vcpus)
		return -ESRCH;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	pthread_mutex_lock(&d->lock);
	bool valid = dv->cache_valid;
	if (valid)
		*st = dv->cache;
	pthread_mutex_unlock(&d->lock);
	if (valid)
		return 0;
	int r = read_from_engine(d, vcpu, st);
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	if (dv->park != DEBUG_PARK_RUNNING) {
		dv->cache = *st;
		dv->cache_valid = true;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int debug_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs)
{
	struct debug_cpu_state st;
	int r = debug_read_state(d, vcpu, &st);
	if (r == 0)
		*sregs = st.sregs;
	return r;
}

int debug_read_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs)
{
	if (vcpu >= d->nr_vcpus)
		return -ESRCH;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	pthread_mutex_lock(&d->lock);
	bool valid = dv->cache_valid || dv->regs_valid;
	if (valid)
		*regs = dv->cache.regs;
	pthread_mutex_unlock(&d->lock);
	if (valid)
		return 0;
	int r = d->vm->engine->get_regs(&d->vm->vcpus[vcpu], regs);
	if (r < 0)
		return r;
	debug_step_view_regs(d, vcpu, regs);
	pthread_mutex_lock(&d->lock);
	if (dv->park != DEBUG_PARK_RUNNING) {
		dv->cache.regs = *regs;
		dv->regs_valid = true;
	}
	pthread_mutex_unlock(&d->lock);
	return 0;
}

int debug_write_state(struct debug *d, unsigned vcpu, const struct debug_cpu_state *st,
		      unsigned what)
{
	const struct engine_ops *eng = d->vm->engine;
	struct vcpu *v;
	int r = 0;

	if (vcpu >= d->nr_vcpus)
		return -ESRCH;
	v = &d->vm->vcpus[vcpu];
	/* whatever happens below, the engine is the truth again */
	pthread_mutex_lock(&d->lock);
	d->vcpus[vcpu].cache_valid = d->vcpus[vcpu].regs_valid = false;
	pthread_mutex_unlock(&d->lock);
	if (what & DEBUG_STATE_REGS) {
		struct x86_regs regs = st->regs;
		debug_step_write_regs(d, vcpu, &regs);
		if ((r = eng->set_regs(v, &regs)) < 0)
			return r;
	}
	if (what & DEBUG_STATE_SREGS) {
		d->vcpus[vcpu].st.sregs_valid = false;
		if ((r = eng->set_sregs(v, &st->sregs)) < 0)
			return r;
	}
	if (what & DEBUG_STATE_FPU) {
		if (!eng->set_fpu)
			return -ENOTSUP;
		if ((r = eng->set_fpu(v, &st->fpu)) < 0)
			return r;
	}
	if (what & DEBUG_STATE_KGS) {
		if (!eng->set_msr)
			return -ENOTSUP;
		r = eng->set_msr(v, MSR_KERNEL_GS_BASE, st->kernel_gs_base);
	}
	return r;
}

void debug_describe_vcpu(struct debug *d, unsigned vcpu, char *out, size_t size)
{
	const struct engine_ops *eng = d->vm->engine;
	struct x86_sregs sregs;
	bool halted = false, sipi = false;
	const char *mode = "state unknown";

	if (vcpu >= d->nr_vcpus) {
		snprintf(out, size, "no such vCPU");
		return;
	}
	if (debug_sregs(d, vcpu, &sregs) == 0)
		mode = x86_mode_name(x86_mode_of(&sregs));
	if (eng->get_run_state)
		eng->get_run_state(&d->vm->vcpus[vcpu], &halted, &sipi);
	snprintf(out, size, "vCPU %u, %s%s", vcpu, sipi ? "waiting for SIPI" : mode,
		 sipi ? "" : halted ? ", halted" : "");
}

int debug_caps(struct debug *d, const struct engine_caps **caps, struct err *e)
{
	const struct engine_ops *eng = d->vm->engine;

	if (!d->caps_done) {
		d->caps_done = true;
		if (!eng->probe)
			d->caps_err = err_set(&d->caps_e, ENOTSUP, "the %s engine cannot be probed",
					      eng->name);
		else
			d->caps_err = eng->probe(&d->caps, &d->caps_e);
	}
	if (d->caps_err < 0) {
		if (e)
			*e = d->caps_e;
		return d->caps_err;
	}
	*caps = &d->caps;
	return 0;
}

/* How gdb's watch/awatch/rwatch work on this engine (short: the whole
 * mechanisms text goes into one monitor reply buffer). */
static const char *watchpoints(struct debug *d)
{
	if (debug_watch_supported(d))
		return "hardware: the debugger's DR0-3 (not the guest's), write and access, split "
		       "into aligned 1/2/4/8-byte pieces, one register each; gdb's rwatch uses "
		       "access; stops after the access";
	return "software: the host's KVM never fires data breakpoints, so Z2/Z4 get the empty "
	       "reply; `set can-use-hw-watchpoints 0` makes gdb single-step (fast in vmdb)";
}

/* How a stepi is made, and how the guest's own trap flag is kept. */
static const char *stepping(struct debug *d)
{
	const struct engine_caps *caps;
	if (debug_caps(d, &caps, NULL) == 0 && caps->step_keeps_guest_tf)
		return "the engine steps the chosen vCPU alone and leaves the guest's TF to the "
		       "guest (monitor info sstep)";
	return "the engine's trap flag steps the chosen vCPU alone; vmdb keeps the guest's own "
	       "TF apart (shadow trap flag, monitor info sstep)";
}

/* Which mechanism each debug feature uses now (the lines follow the probe
 * table in `monitor info caps`). */
void debug_mechanisms(struct debug *d, char *out, size_t size)
{
	const struct engine_ops *eng = d->vm->engine;
	bool step = eng->set_debug != NULL;
	char catching[160] = "; nothing caught now";

	if (d->catch_mask) {
		size_t n = (size_t)snprintf(catching, sizeof(catching), "; catching now:");
		for (unsigned v = 0; v < DEBUG_NR_VECTORS && n < sizeof(catching); v++)
			if (d->catch_mask & (1u << v))
				n += (size_t)snprintf(catching + n, sizeof(catching) - n, " %s",
						      debug_vector_name(v));
	}
	snprintf(out, size,
		 "software breakpoints: int3 written into guest memory; the engine reports "
		 "it as a breakpoint exit (also when the host fails to emulate INT3); "
		 "the guest's own int3 gets its #BP\n"
		 "single-step: %s\n"
		 "hardware breakpoints: %s\n"
		 "watchpoints: %s\n"
		 "exception catch (monitor catch): a breakpoint on the first instruction of the "
		 "handler each vCPU's IDT gate names (%s), IDTs re-read at every resume; "
		 "the stop comes at the handler, after the exception was delivered%s\n"
		 "stop-all: engine kick + park of every vCPU before each stop reply\n",
		 step ? stepping(d) : "not available on this engine",
		 step ? "DR0-DR3 execution breakpoints loaded into every vCPU by the engine"
		      : "not available on this engine",
		 watchpoints(d),
		 step ? "a free DR0-DR3 slot, else int3" : "int3",
		 catching);
}
