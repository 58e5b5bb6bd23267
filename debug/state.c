/* debug/state.c — a vCPU's architectural state as the debugger reads and
 * writes it (with the vCPU parked), the one-line description of a vCPU
 * for thread lists, the capability report and the engine's fallback
 * counts. */
#include "debug/debug_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* gdb's view of a vCPU: the engine's state (debug/vcpu.c, read once per
 * stop, as QEMU's cpu_synchronize_state does) with the step engine's
 * shadows applied. The x87/SSE registers and KERNEL_GS_BASE are optional:
 * an engine may refuse them. */
int debug_read_state(struct debug *d, unsigned vcpu, struct debug_cpu_state *out)
{
	struct x86_state st;
	int r = debug_vcpu_get(d, vcpu, X86_STATE_REGS | X86_STATE_SREGS, &st);
	if (r < 0)
		return r;
	memset(out, 0, sizeof(*out));
	out->regs = st.regs;
	out->sregs = st.sregs;
	out->have_fpu = debug_vcpu_get(d, vcpu, X86_STATE_FPU, &st) == 0;
	if (out->have_fpu)
		out->fpu = st.fpu;
	out->have_kgs = debug_vcpu_get(d, vcpu, X86_STATE_MSRS, &st) == 0;
	if (out->have_kgs)
		out->kernel_gs_base = st.kernel_gs_base;
	debug_step_view_regs(d, vcpu, &out->regs);
	return 0;
}

int debug_read_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs)
{
	int r = debug_vcpu_regs(d, vcpu, regs);
	if (r == 0)
		debug_step_view_regs(d, vcpu, regs);
	return r;
}

/* The parts the client changed; the x87/SSE and MSR parts keep what the
 * engine has for the fields gdb does not know (XCR0, the SYSCALL MSRs). */
int debug_write_state(struct debug *d, unsigned vcpu, const struct debug_cpu_state *in,
		      unsigned what, struct err *e)
{
	struct x86_state st;
	unsigned parts = 0;
	int r;

	if (vcpu >= d->nr_vcpus)
		return err_set(e, ESRCH, "no vCPU %u", vcpu);
	if ((what & DEBUG_STATE_FPU) && (r = debug_vcpu_get(d, vcpu, X86_STATE_FPU, &st)) < 0)
		return err_set(e, -r, "vCPU %u: the %s engine cannot read its x87/SSE registers",
			       vcpu, d->vm->engine->name);
	if ((what & DEBUG_STATE_KGS) && (r = debug_vcpu_get(d, vcpu, X86_STATE_MSRS, &st)) < 0)
		return err_set(e, -r, "vCPU %u: the %s engine cannot read its MSRs", vcpu,
			       d->vm->engine->name);
	if (what & DEBUG_STATE_REGS) {
		st.regs = in->regs;
		debug_step_write_regs(d, vcpu, &st.regs);
		parts |= X86_STATE_REGS;
	}
	if (what & DEBUG_STATE_SREGS) {
		d->vcpus[vcpu].st.sregs_valid = false;
		st.sregs = in->sregs;
		parts |= X86_STATE_SREGS;
	}
	if (what & DEBUG_STATE_FPU) {
		st.fpu = in->fpu;
		parts |= X86_STATE_FPU;
	}
	if (what & DEBUG_STATE_KGS) {
		st.kernel_gs_base = in->kernel_gs_base;
		parts |= X86_STATE_MSRS;
	}
	r = debug_vcpu_put(d, vcpu, parts, &st, "written by the debugger");
	if (r < 0)
		debug_vcpu_take_write_error(d, e);   /* the client hears it now, not later */
	return r;
}

void debug_describe_vcpu(struct debug *d, unsigned vcpu, char *out, size_t size)
{
	struct x86_sregs sregs;
	bool halted, sipi;
	const char *mode = "state unknown";

	if (vcpu >= d->nr_vcpus) {
		snprintf(out, size, "no such vCPU");
		return;
	}
	if (debug_vcpu_sregs(d, vcpu, &sregs) == 0)
		mode = x86_mode_name(x86_mode_of(&sregs));
	debug_vcpu_run_state(d, vcpu, &halted, &sipi);
	snprintf(out, size, "vCPU %u, %s%s", vcpu, sipi ? "waiting for SIPI" : mode,
		 sipi ? "" : halted ? ", halted" : "");
}

/* Once, when the debugger is created with its VM: on kvm the probe runs
 * guests of its own, which no stepi should wait for. */
void debug_caps_probe(struct debug *d)
{
	const struct engine_ops *eng = d->vm->engine;
	if (!eng->vm->probe)
		d->caps_err = err_set(&d->caps_e, ENOTSUP, "the %s engine cannot be probed",
				      eng->name);
	else
		d->caps_err = eng->vm->probe(d->vm->engine_assist, &d->caps, NULL, &d->caps_e);
	if (d->caps_err == 0 && eng->vm->vm_caps)
		eng->vm->vm_caps(d->vm, &d->caps);
}

int debug_caps_report(struct debug *d, const struct engine_report **report, struct err *e)
{
	const struct engine_ops *eng = d->vm->engine;
	struct engine_caps caps;
	if (!d->report_done) {
		d->report_done = true;
		if (!eng->vm->probe)
			d->report_err = err_set(&d->report_e, ENOTSUP,
						"the %s engine cannot be probed", eng->name);
		else
			d->report_err = eng->vm->probe(d->vm->engine_assist, &caps, &d->report,
						       &d->report_e);
	}
	if (d->report_err < 0) {
		if (e)
			*e = d->report_e;
		return d->report_err;
	}
	*report = &d->report;
	return 0;
}

/* snprintf at out + len that keeps counting past a full buffer. */
__attribute__((format(printf, 4, 5)))
static size_t append(char *out, size_t size, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(len < size ? out + len : NULL, len < size ? size - len : 0, fmt, ap);
	va_end(ap);
	return len + (n > 0 ? (size_t)n : 0);
}

size_t debug_fallback_describe(struct debug *d, char *out, size_t size)
{
	const struct engine_ops *eng = d->vm->engine, *core = engine_lender(d->vm->engine_assist);
	int (*stats)(struct vcpu *, struct engine_fallback_stats *) = eng->vcpu->fallback_stats;
	struct engine_fallback_stats sum = { 0 }, one;
	char text[512];
	if (size)
		out[0] = '\0';
	if (!stats)
		return 0;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (stats(&d->vm->vcpus[i], &one) == 0)
			engine_fallback_merge(&sum, &one);
	engine_fallback_format(&sum, text, sizeof(text));
	size_t len = append(out, size, 0, "%s \u2192 %s single-instruction fallback: %s\n",
			    eng->name, core ? core->name : "another engine", text);
	for (unsigned i = 0; d->nr_vcpus > 1 && i < d->nr_vcpus; i++) {
		if (stats(&d->vm->vcpus[i], &one) < 0 || one.total == 0)
			continue;
		engine_fallback_format(&one, text, sizeof(text));
		len = append(out, size, len, "  vCPU %u: %s\n", i, text);
	}
	return len;
}

int debug_caps(struct debug *d, const struct engine_caps **caps, struct err *e)
{
	if (d->caps_err < 0) {
		if (e)
			*e = d->caps_e;
		return d->caps_err;
	}
	*caps = &d->caps;
	return 0;
}

/* How gdb's watch/awatch/rwatch work on this engine. */
static const char *watchpoints(struct debug *d)
{
	const struct engine_caps *caps;
	bool linear = debug_caps(d, &caps, NULL) == 0 && caps->watch_linear;
	bool slots = debug_watch_slots_work(d);
	if (!debug_engine_watches(d))
		return slots ? "write and access: the debugger's DR0-3 (aligned 1/2/4/8-byte "
			       "pieces, one register each); read: not available"
			     : "not available on this engine";
	if (linear)
		return "write and access: the debugger's DR0-3 while their aligned 1/2/4/8-byte "
		       "pieces fit, then the engine's exact access check; read (rwatch): the "
		       "access check, reads only; any number and length; stops after the access "
		       "(monitor info watchpoints)";
	if (slots)
		return "write and access: the debugger's DR0-3 while their pieces fit, then page "
		       "traps; read: page traps (the page unmapped, reads only reported); stops "
		       "after the access (monitor info watchpoints)";
	return "page traps: the host's KVM never fires data breakpoints, so a write watchpoint "
	       "write-protects its guest-physical page(s) and a read or access one unmaps "
	       "them; vmdb completes each access, reports those that touch the range and "
	       "lets the others run on; stops after the access (monitor info watchpoints)";
}

/* Whose DR0-3 the debugger's slots are, and how the guest's use is seen. */
static const char *dr_sharing(struct debug *d)
{
	debug_dr_share_setup(d);
	if (!d->share.on)
		return "the debugger's own set per vCPU; the guest's DR0-3 stay all its own";
	if (d->share.precise)
		return "one set per vCPU shared with the guest (guest first, monitor info dr); "
		       "the guest's MOV DR exits, so its use is learned as it happens";
	return "one set per vCPU shared with the guest (guest first, monitor info dr); the "
	       "host does not trap guest MOV DR under DR7.GD, so its use is learned at every "
	       "exit and stop (one KVM_GET_DEBUGREGS per exit while the debugger holds slots): "
	       "a guest write to DR0-3/DR7 takes effect in the hardware only at that vCPU's "
	       "next exit, and the guest's DR7.GD is not honoured while the debugger holds "
	       "slots";
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
 * table in `monitor info caps`). Returns the whole text's length, as
 * snprintf does: the caller sizes its buffer with (NULL, 0) first. */
size_t debug_mechanisms(struct debug *d, char *out, size_t size)
{
	bool step = d->vm->engine->debug != NULL;
	/* every vector named: up to 32 names of at most 4 characters */
	char catching[32 + DEBUG_NR_VECTORS * 5] = "; nothing caught now";
	char counts[320];
	debug_sstep_core_counts(d, counts, sizeof(counts));
	debug_dr_share_setup(d);     /* whose DR0-3 they are, before the words */

	if (d->catch_mask) {
		size_t n = (size_t)snprintf(catching, sizeof(catching), "; catching now:");
		for (unsigned v = 0; v < DEBUG_NR_VECTORS; v++)
			if (d->catch_mask & (1u << v))
				n += (size_t)snprintf(catching + n, sizeof(catching) - n, " %s",
						      x86_vector_name(v));
	}
	int n = snprintf(out, size,
		 "software breakpoints: int3 written into guest memory; the engine reports "
		 "it as a breakpoint exit (also when the host fails to emulate INT3); "
		 "the guest's own int3 gets its #BP\n"
		 "single-step: %s\n"
		 "step core: %s\n%s"
		 "hardware breakpoints: %s\n"
		 "watchpoints: %s\n"
		 "debug registers: %s\n"
		 "exception catch (monitor catch): a breakpoint on the first instruction of the "
		 "handler each vCPU's IDT gate names (%s), IDTs re-read at every resume; "
		 "the stop comes at the handler, after the exception was delivered%s\n"
		 "stop-all: engine kick + park of every vCPU before each stop reply\n",
		 step ? stepping(d) : "not available on this engine", debug_sstep_core(d), counts,
		 step ? (d->share.on ? "DR0-DR3 execution breakpoints loaded into every vCPU by "
				       "the engine; while the guest holds every slot, an int3 in "
				       "guest memory stands in (monitor info dr)"
				     : "DR0-DR3 execution breakpoints loaded into every vCPU by the "
				       "engine")
		      : "not available on this engine",
		 watchpoints(d), dr_sharing(d),
		 step ? "a free DR0-DR3 slot, else int3" : "int3",
		 catching);
	return n < 0 ? 0 : (size_t)n;
}

static uint64_t *sysreg_slot(struct x86_state *st, enum debug_sysreg reg)
{
	switch (reg) {
	case DEBUG_SYSREG_DR6: return &st->dr.dr6;
	case DEBUG_SYSREG_DR7: return &st->dr.dr7;
	case DEBUG_SYSREG_XCR0: return &st->xcr0;
	default: return &st->dr.db[reg - DEBUG_SYSREG_DR0];
	}
}

static unsigned sysreg_part(enum debug_sysreg reg)
{
	return reg == DEBUG_SYSREG_XCR0 ? X86_STATE_XCR0 : X86_STATE_DR;
}

int debug_sysreg_read(struct debug *d, unsigned vcpu, enum debug_sysreg reg, uint64_t *value,
		      struct err *e)
{
	struct x86_state st;
	int r = debug_vcpu_get(d, vcpu, sysreg_part(reg), &st);
	if (r < 0)
		return err_set(e, -r, "vCPU %u: the %s engine cannot read its %s", vcpu,
			       d->vm->engine->name, reg == DEBUG_SYSREG_XCR0 ? "XCR0" :
			       "debug registers");
	*value = *sysreg_slot(&st, reg);
	return 0;
}

int debug_sysreg_write(struct debug *d, unsigned vcpu, enum debug_sysreg reg, uint64_t value,
		       struct err *e)
{
	struct x86_state st;
	unsigned part = sysreg_part(reg);
	int r = debug_vcpu_get(d, vcpu, part, &st);
	if (r < 0)
		return debug_sysreg_read(d, vcpu, reg, &value, e);   /* its words */
	*sysreg_slot(&st, reg) = value;
	r = debug_vcpu_put(d, vcpu, part, &st, "written by the debugger");
	if (r < 0)
		debug_vcpu_take_write_error(d, e);
	return r;
}
