/* debug/vcpu.c — the debug core's only door to a vCPU's state: every read
 * and write of registers goes through here to the engine's get_state /
 * set_state, by part (X86_STATE_*), and so do an exception injected for
 * the guest and the halted / waiting-for-SIPI query.
 *
 * One cache per vCPU holds the engine's view (RFLAGS as the engine has it;
 * the step engine's shadows are applied on top by state.c). A vCPU's state
 * changes only in the engine's run, so a part read or written while the
 * vCPU is out of the engine stays valid until it enters the engine again:
 * the run-state transition that lets it into the engine (run_state.c)
 * calls debug_vcpu_forget(), the one place the cache is invalidated (for
 * every vCPU: another's run may send a parked one INIT or SIPI). Only
 * a parked or lent vCPU's state is cached: while it runs or stops (its own
 * thread inside an exit, or a client asking about a vCPU it did not
 * stop) every read goes to the engine.
 *
 * Writes go through to the engine at once, but for the parts a step on
 * the exact core changed (step_exact.c: the engine did not run it): those
 * are staged in the cache (dirty_parts) and written back once, before the
 * engine runs the vCPU or is asked about it (debug_vcpu_flush; forgetting
 * flushes first), so gdb and the step see one copy. A write (or injection) the
 * engine refuses is kept (the first one since the client last heard) and
 * reported to the client at its next resume (debug_vcpu_take_write_error):
 * a failed fix-up of the step engine happens on a vCPU thread where nobody
 * can answer. The engine may have taken part of a refused write, so the
 * cache forgets the vCPU then too.
 *
 * MSRs by number (debug_msr_read/write) go straight to the engine; a
 * write makes the cache forget the vCPU, as EFER, the segment bases, the
 * APIC base and the SYSCALL MSRs all live in cached parts. */
#include "debug/debug_int.h"

#include <stdio.h>
#include <string.h>

/* Out of the engine until the client (or its lend) lets it run again. */
static bool cacheable(struct debug *d, unsigned vcpu)
{
	enum debug_run run = debug_run_of(d, vcpu);
	return run == DEBUG_RUN_PARKED || run == DEBUG_RUN_STEP_SPIN || run == DEBUG_RUN_LENT;
}

static void copy_parts(struct x86_state *to, const struct x86_state *from, unsigned parts)
{
	if (parts & X86_STATE_REGS)
		to->regs = from->regs;
	if (parts & X86_STATE_SREGS)
		to->sregs = from->sregs;
	if (parts & X86_STATE_FPU)
		to->fpu = from->fpu;
	if (parts & X86_STATE_XCR0)
		to->xcr0 = from->xcr0;
	if (parts & X86_STATE_DR)
		to->dr = from->dr;
	if (parts & X86_STATE_MSRS) {
		to->star = from->star;
		to->lstar = from->lstar;
		to->cstar = from->cstar;
		to->fmask = from->fmask;
		to->kernel_gs_base = from->kernel_gs_base;
	}
}

int debug_vcpu_get(struct debug *d, unsigned vcpu, unsigned parts, struct x86_state *st)
{
	if (vcpu >= d->nr_vcpus)
		return -ESRCH;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	bool cache = cacheable(d, vcpu);
	unsigned missing = cache ? parts & ~dv->cache_parts : parts;
	if (missing) {
		int r = d->vm->engine->vcpu->get_state(&d->vm->vcpus[vcpu], missing, st);
		if (r < 0)
			return r;
		if (cache) {
			copy_parts(&dv->cache, st, missing);
			dv->cache_parts |= missing;
		}
	}
	if (cache)
		copy_parts(st, &dv->cache, parts & ~missing);
	return 0;
}

static const char *part_names(unsigned parts)
{
	if (parts & X86_STATE_SREGS)
		return "its system registers";
	if (parts & X86_STATE_REGS)
		return "its registers";
	if (parts & X86_STATE_FPU)
		return "its x87/SSE registers";
	if (parts & X86_STATE_DR)
		return "its debug registers";
	if (parts & X86_STATE_XCR0)
		return "its XCR0";
	return "its MSRs";
}

/* The first refusal since the client last heard: what the engine
 * refused and what it was for. */
static void record_refusal(struct debug *d, unsigned vcpu, int r, const char *what,
			   const char *why)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	pthread_mutex_lock(&d->lock);
	if (!dv->write_failed) {
		dv->write_failed = true;
		err_set(&dv->write_err, -r, "vCPU %u: the %s engine refused %s (%s): %s", vcpu,
			d->vm->engine->name, what, why, strerror(-r));
	}
	pthread_mutex_unlock(&d->lock);
}

int debug_vcpu_put(struct debug *d, unsigned vcpu, unsigned parts, const struct x86_state *st,
		   const char *why)
{
	if (vcpu >= d->nr_vcpus)
		return -ESRCH;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	if (parts & X86_STATE_SREGS) {
		dv->st.sregs_valid = false;     /* the step engine's copy of them */
		dv->exact_chain = false;        /* and the exact core's TLB */
	}
	dv->dirty_parts &= ~parts;
	int r = d->vm->engine->vcpu->set_state(&d->vm->vcpus[vcpu], parts, st);
	if (r < 0) {
		debug_vcpu_forget(d, vcpu);
		record_refusal(d, vcpu, r, part_names(parts), why);
		return r;
	}
	if (cacheable(d, vcpu)) {
		copy_parts(&dv->cache, st, parts);
		dv->cache_parts |= parts;
	}
	return 0;
}

void debug_vcpu_stage(struct debug *d, unsigned vcpu, unsigned parts, const struct x86_state *st)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	copy_parts(&dv->cache, st, parts);
	dv->cache_parts |= parts;
	dv->dirty_parts |= parts;
}

int debug_vcpu_flush(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	unsigned parts = dv->dirty_parts;
	if (!parts)
		return 0;
	dv->dirty_parts = 0;
	d->step_stats.exact_flushes++;
	int r = d->vm->engine->vcpu->set_state(&d->vm->vcpus[vcpu], parts, &dv->cache);
	if (r < 0 && !dv->flush_failed) {
		/* kept apart from write_err: this may run under d->lock, always
		 * on the client's thread, which reports it */
		dv->cache_parts = 0;
		dv->flush_failed = true;
		err_set(&dv->flush_err, -r, "vCPU %u: the %s engine refused %s (the state of steps "
			"done by vmdb): %s", vcpu, d->vm->engine->name, part_names(parts),
			strerror(-r));
	} else if (r < 0) {
		dv->cache_parts = 0;
	}
	return r;
}

void debug_vcpu_forget(struct debug *d, unsigned vcpu)
{
	debug_vcpu_flush(d, vcpu);
	d->vcpus[vcpu].cache_parts = 0;
	d->vcpus[vcpu].events_known = false;
	d->vcpus[vcpu].exact_chain = false;
}

int debug_vcpu_take_write_error(struct debug *d, struct err *e)
{
	int r = 0;
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->nr_vcpus && r == 0; i++) {
		struct debug_vcpu *dv = &d->vcpus[i];
		if (dv->flush_failed) {
			dv->flush_failed = false;
			r = -dv->flush_err.code;
			if (e)
				*e = dv->flush_err;
			continue;
		}
		if (!dv->write_failed)
			continue;
		dv->write_failed = false;
		r = -dv->write_err.code;
		if (e)
			*e = dv->write_err;
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* An event for the guest's next run. The engine gets the state staged
 * first and may deliver the event at once (kvm's #BP goes through emu's
 * core), so the cache is forgotten after. A refusal is recorded like a
 * refused write. */
int debug_vcpu_inject(struct debug *d, unsigned vcpu, uint8_t vector, const char *why)
{
	const struct engine_vcpu_ops *eng = d->vm->engine->vcpu;
	debug_vcpu_flush(d, vcpu);
	int r = eng->inject_exception ? eng->inject_exception(&d->vm->vcpus[vcpu], vector, false, 0)
				      : -ENOTSUP;
	debug_vcpu_forget(d, vcpu);
	if (r < 0)
		record_refusal(d, vcpu, r, "an exception for the guest", why);
	return r;
}

/* An exception delivered now by the engine, with RFLAGS = rflags: the
 * vCPU is then at its handler, every cached part stale. A refusal is not
 * recorded: the caller has injection to fall back on. */
int debug_vcpu_deliver(struct debug *d, unsigned vcpu, uint8_t vector, uint64_t rflags)
{
	const struct engine_debug_ops *dbg = d->vm->engine->debug;
	if (!dbg || !dbg->deliver_exception)
		return -ENOTSUP;
	debug_vcpu_flush(d, vcpu);
	int r = dbg->deliver_exception(&d->vm->vcpus[vcpu], vector, false, 0, rflags);
	debug_vcpu_forget(d, vcpu);
	return r;
}

/* Halted, waiting for SIPI: both false when the engine cannot tell. The
 * query itself may take an INIT or SIPI another vCPU sent (KVM accepts
 * them there): when the answer changed, so may have the registers. */
void debug_vcpu_run_state(struct debug *d, unsigned vcpu, bool *halted, bool *waiting_sipi)
{
	const struct engine_vcpu_ops *eng = d->vm->engine->vcpu;
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	*halted = *waiting_sipi = false;
	if (eng->get_run_state)
		eng->get_run_state(&d->vm->vcpus[vcpu], halted, waiting_sipi);
	if (*waiting_sipi != dv->seen_waiting_sipi) {
		dv->dirty_parts = 0;       /* the INIT or SIPI wins over steps staged before */
		debug_vcpu_forget(d, vcpu);
	}
	dv->seen_waiting_sipi = *waiting_sipi;
}

int debug_vcpu_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs)
{
	struct x86_state st;
	int r = debug_vcpu_get(d, vcpu, X86_STATE_REGS, &st);
	if (r == 0)
		*regs = st.regs;
	return r;
}

int debug_vcpu_put_regs(struct debug *d, unsigned vcpu, const struct x86_regs *regs,
			const char *why)
{
	struct x86_state st;
	st.regs = *regs;
	return debug_vcpu_put(d, vcpu, X86_STATE_REGS, &st, why);
}

int debug_vcpu_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs)
{
	struct x86_state st;
	int r = debug_vcpu_get(d, vcpu, X86_STATE_SREGS, &st);
	if (r == 0)
		*sregs = st.sregs;
	return r;
}

static int msr_op_error(struct debug *d, unsigned vcpu, int r, uint32_t msr, bool write,
			uint64_t value, struct err *e)
{
	const char *engine = d->vm->engine->name;
	switch (r) {
	case -ENOTSUP:
		return err_set(e, ENOTSUP, "the %s engine cannot reach MSRs by number", engine);
	case -ENOENT:
		return err_set(e, ENOENT, "vCPU %u has no MSR 0x%x (%s would raise #GP)", vcpu,
			       msr, write ? "WRMSR" : "RDMSR");
	case -EINVAL:
		if (write)
			return err_set(e, EINVAL, "vCPU %u refuses 0x%llx in MSR 0x%x (WRMSR would "
				       "raise #GP)", vcpu, (unsigned long long)value, msr);
		break;
	}
	return err_set(e, -r, "vCPU %u: the %s engine could not %s MSR 0x%x: %s", vcpu, engine,
		       write ? "write" : "read", msr, strerror(-r));
}

int debug_msr_read(struct debug *d, unsigned vcpu, uint32_t msr, uint64_t *value,
		   struct err *e)
{
	const struct engine_vcpu_ops *eng = d->vm->engine->vcpu;
	if (vcpu >= d->nr_vcpus)
		return err_set(e, ESRCH, "there is no vCPU %u", vcpu);
	debug_vcpu_flush(d, vcpu);
	int r = eng->msr_get ? eng->msr_get(&d->vm->vcpus[vcpu], msr, value) : -ENOTSUP;
	return r < 0 ? msr_op_error(d, vcpu, r, msr, false, 0, e) : 0;
}

int debug_msr_write(struct debug *d, unsigned vcpu, uint32_t msr, uint64_t value,
		    struct err *e)
{
	const struct engine_vcpu_ops *eng = d->vm->engine->vcpu;
	if (vcpu >= d->nr_vcpus)
		return err_set(e, ESRCH, "there is no vCPU %u", vcpu);
	debug_vcpu_flush(d, vcpu);
	int r = eng->msr_set ? eng->msr_set(&d->vm->vcpus[vcpu], msr, value) : -ENOTSUP;
	debug_vcpu_forget(d, vcpu);
	d->vcpus[vcpu].st.sregs_valid = false;    /* EFER, segment bases: the step's copy too */
	return r < 0 ? msr_op_error(d, vcpu, r, msr, true, value, e) : 0;
}
