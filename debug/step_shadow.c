/* debug/step_shadow.c — the trap-flag shadow's corrections, for an
 * engine whose single steps hide, leak or lose the guest's own RFLAGS.TF
 * (engine_caps.step_keeps_guest_tf false: the host KVM here, and emu's
 * --cpu kvm-step, which steps the same way so that this file runs in
 * make test without /dev/kvm). step.c decides what a step means for the
 * guest (its rules are in step.c's header); this file does what such an
 * engine needs on top (step.c calls in while a shadow runs; with the IF
 * shadow alone it only takes out guards left from before):
 *
 *   POPF/IRET/SYSRET loading TF=1: the image loses TF for the step (the
 *           engine would take a TF it loads itself for its own, ending
 *           the next step one instruction late or dropping it) and gets
 *           it back right after; the guest never runs in between;
 *   IRETQ to the same privilege level: done by vmdb (the host KVM runs
 *           the first instruction at the target inside the same step);
 *   a faulting instruction: fault guards stop the step at the handler's
 *           first instruction (below);
 *   the guest's own #DB after a step that began with its TF set, and its
 *           #BP from an INT3 under a step: delivered now by the engine's
 *           exact core (engine_ops.deliver_exception: emu's, which kvm
 *           borrows), with the guest's TF and IF in the frame, so the step
 *           stops at the handler's first instruction; an engine without
 *           it injects the #DB and the step after runs that instruction. */
#include "debug/debug_int.h"

#include <string.h>

#include "debug/step_int.h"
#include "x86/desc.h"

/* ---- the guest's own traps, delivered by the engine now ---- */

/* Deliver trap-type exception `vector` at this boundary through the
 * engine (engine_ops.deliver_exception: emu's exact core, which kvm
 * borrows), so that the step stops at the handler's first instruction:
 * regs are the engine's state after the instruction (RIP = where the trap
 * returns) and become the handler's; the frame shows the guest's TF and
 * IF. The guest's IF after delivery is the engine's (an interrupt gate
 * clears it), kept apart again when the IF shadow runs. -ENOTSUP when the
 * engine cannot (the caller injects). */
static int deliver_trap(struct debug *d, struct vcpu *vcpu, struct debug_step_vcpu *st,
			struct x86_regs *regs, unsigned vector)
{
	struct x86_regs now;
	const struct engine_debug_ops *dbg = d->vm->engine->debug;
	if (!dbg || !dbg->deliver_exception)
		return -ENOTSUP;
	if (debug_vcpu_regs(d, vcpu->id, &now) == 0 && memcmp(&now, regs, sizeof(now)) &&
	    debug_vcpu_put_regs(d, vcpu->id, regs, "the state a trap is delivered from") < 0)
		return -ENOTSUP;
	uint64_t rflags = step_guest_flags(st, regs->rflags) & ~RFLAGS_RF;
	if (debug_vcpu_deliver(d, vcpu->id, (uint8_t)vector, rflags) < 0 ||
	    debug_vcpu_regs(d, vcpu->id, regs) < 0)
		return -ENOTSUP;
	if (st->if_shadow) {
		st->guest_if = regs->rflags & RFLAGS_IF;
		st->if_live = false;
	}
	if (step_engine_flags(st, regs->rflags) != regs->rflags) {
		regs->rflags = step_engine_flags(st, regs->rflags);
		debug_vcpu_put_regs(d, vcpu->id, regs, "the step's shadow TF and IF at a handler");
	}
	return 0;
}

static void set_dr6_bs(struct debug *d, struct vcpu *vcpu)
{
	struct x86_state st;
	if (debug_vcpu_get(d, vcpu->id, X86_STATE_DR, &st) == 0) {
		st.dr.dr6 |= DR6_BS;
		debug_vcpu_put(d, vcpu->id, X86_STATE_DR, &st, "DR6.BS of the guest's own trap");
	}
}

/* The guest's own single-step trap at this boundary. */
void step_tf_guest_db(struct debug *d, struct vcpu *vcpu, struct debug_step_vcpu *st,
		      struct x86_regs *regs, uint64_t *pc)
{
	set_dr6_bs(d, vcpu);
	if (deliver_trap(d, vcpu, st, regs, X86_DB) == 0) {
		*pc = regs->rip;
		st->guest_tf = false;
		st->sregs_valid = false;
	} else if (d->vm->engine->vcpu->inject_exception) {
		if (st->if_shadow && st->guest_if && !(regs->rflags & RFLAGS_IF)) {
			/* the engine's frame must show the guest's IF: it runs
			 * with it until the next step ends (as a CPU would) */
			regs->rflags |= RFLAGS_IF;
			st->if_live = true;
			debug_vcpu_put_regs(d, vcpu->id, regs, "the guest's IF for its own trap");
		}
		debug_vcpu_inject(d, vcpu->id, X86_DB, "the guest's own single-step trap");
		d->step_stats.injected_fallback++;
		st->guest_tf = false;
	}
	d->step_stats.own_db++;
}

/* ---- TF loaded by the stepped instruction ---- */

/* POPF/IRET/SYSRET that load TF=1: the engine must not see it (a TF it
 * loads itself ends the next step one instruction late, or is dropped):
 * the image loses TF for the step, and gets it back right after. The
 * guest never runs between the two. */
static void scrub(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st, bool hide)
{
	uint64_t v = hide ? st->image & ~RFLAGS_TF : st->image;
	if (st->insn.kind == X86_INSN_SYSRET) {
		struct x86_regs regs;
		if (debug_vcpu_regs(d, vcpu, &regs) == 0) {
			regs.r11 = v;
			debug_vcpu_put_regs(d, vcpu, &regs, hide ? "SYSRET's image without TF"
								 : "SYSRET's image with TF again");
		}
	} else {
		step_write_virt(d, st, st->image_at, &v, st->insn.opsize);
	}
	st->scrubbed = hide;
}

void step_tf_unscrub(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	if (st->scrubbed)
		scrub(d, vcpu, st, false);
}

/* IRETQ to the same privilege level, done by vmdb: the host KVM here runs
 * the first instruction at the IRET's target inside the same step, so
 * gdb would never stop there. Returns 0 when done (regs updated). */
static int emulate_iretq(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	uint64_t f[5];
	struct x86_regs regs = st->regs;
	uint64_t sp = st->sregs.ss.base + st->regs.rsp;

	if (x86_mode_of(&st->sregs) != X86_MODE_LONG64 || st->insn.opsize != 8 ||
	    st->sregs.cs.dpl != 0 || step_read_virt(d, st, sp, f, sizeof(f)) < 0 ||
	    (f[1] & 0xffff) != st->sregs.cs.selector || (f[4] & 0xffff) != st->sregs.ss.selector)
		return -ENOTSUP;
	regs.rip = f[0];
	regs.rsp = f[3];
	if (st->if_shadow) {         /* IRETQ in ring 0 always loads IF */
		st->guest_if = f[2] & RFLAGS_IF;
		st->if_live = false;
	}
	regs.rflags = step_engine_flags(st, f[2] | RFLAGS_FIXED1);
	int r = debug_vcpu_put_regs(d, vcpu, &regs, "an IRETQ done by the debugger");
	if (r < 0)
		return r;
	bool tf_before = st->guest_tf;
	st->guest_tf = f[2] & RFLAGS_TF;
	d->step_stats.iret_emulated++;
	if (tf_before) {
		uint64_t pc = regs.rip;
		step_tf_guest_db(d, &d->vm->vcpus[vcpu], st, &regs, &pc);
	}
	return 0;
}

/* ---- fault guards ----
 * The host KVM here delivers an exception raised by a stepped instruction
 * and runs the handler's first instruction inside the same step (its
 * emulator steps on after delivering; emu's --cpu kvm-step does too), so the stop would come one
 * instruction into the handler. An int3 on every exception handler's entry
 * stops the step exactly there, before that instruction: the engine reports
 * the int3 (VM_EXIT_BPT) at the handler. They are armed only while the
 * stepped vCPU runs alone (another vCPU running freely would meet them)
 * and in a 64-bit IDT; re-armed when the IDT's gates change; taken out
 * when the vCPU continues. Otherwise:
 *   - other vCPUs run beside the stepped one (gdb `set scheduler-locking
 *     off`, the default, with a continue of the others): the faulting step
 *     stops one instruction into the handler; in long mode its frame is
 *     still found and fixed (find_frame), and the IF shadow takes the
 *     delivery for an interrupt gate;
 *   - 32-bit protected mode (a 32-bit IDT): no guards, and no frame fix
 *     either (find_frame knows 64-bit frames only), so a faulting step
 *     stops one instruction into the handler and its frame shows what the
 *     engine pushed (the guest's TF lost, the engine's IF with mask-if).
 *     Not done: 8-byte gates would be cheap to guard, but the frame fix
 *     needs 32-bit frame layouts (with and without a stack switch) first;
 *   - real mode: nothing (IVT), the step stops where the engine stops. */

static bool gate64_handler(const uint8_t *raw, uint64_t *handler)
{
	struct x86_gate g = x86_gate_decode(raw, X86_MODE_LONG64);
	if (!g.present || !x86_gate_is_handler(&g, X86_MODE_LONG64))
		return false;
	*handler = g.offset;
	return true;
}

static void guard_unlift_locked(struct debug *d)
{
	struct debug_guard *gd = &d->guard;
	if (!gd->lifted)
		return;
	struct debug_sw_bp *bp = debug_sw_find_locked(d, gd->lifted_addr);
	if (bp && bp->lifted)
		debug_sw_poke(d, bp, true);
	gd->lifted = false;
}

static void guards_drop_locked(struct debug *d)
{
	guard_unlift_locked(d);
	for (unsigned i = d->nr_sw; i-- > 0;) {
		struct debug_sw_bp *bp = &d->sw[i];
		if (!bp->step_guard)
			continue;
		bp->step_guard = false;
		if (!debug_sw_owned(bp))
			debug_sw_drop_locked(d, bp);
	}
	d->guard.armed = false;
}

void debug_step_guards_drop(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	guards_drop_locked(d);
	pthread_mutex_unlock(&d->lock);
}

static void guard_place_locked(struct debug *d, struct debug_step_vcpu *st, uint64_t handler)
{
	struct debug_sw_bp *bp = debug_sw_find_locked(d, handler);
	uint64_t gpa;
	if (!bp && (step_translate(d, st, handler, &gpa) < 0 ||
		    debug_sw_add_locked(d, handler, gpa, &bp, NULL) < 0))
		return;    /* handler not mapped: that vector stops one late */
	bp->step_guard = true;
}

/* Arm (or keep) the guards for the IDT in sregs; false when there are none. */
static bool guards_sync(struct debug *d, struct debug_step_vcpu *st)
{
	struct debug_guard *gd = &d->guard;
	uint8_t raw[sizeof(gd->raw)];
	unsigned len = st->sregs.idt.limit + 1u < sizeof(raw) ? st->sregs.idt.limit + 1u : sizeof(raw);

	len -= len % 16;
	if (x86_mode_of(&st->sregs) != X86_MODE_LONG64 && x86_mode_of(&st->sregs) != X86_MODE_COMPAT)
		len = 0;
	if (len == 0 || step_read_virt(d, st, st->sregs.idt.base, raw, len) < 0) {
		if (gd->armed)
			debug_step_guards_drop(d);
		return false;
	}
	if (gd->armed && gd->idt_base == st->sregs.idt.base && gd->raw_len == len &&
	    memcmp(gd->raw, raw, len) == 0)
		return true;
	pthread_mutex_lock(&d->lock);
	guards_drop_locked(d);
	for (unsigned off = 0; off < len; off += 16) {
		uint64_t handler;
		if (off / 16 != X86_NMI && gate64_handler(raw + off, &handler))
			guard_place_locked(d, st, handler);
	}
	gd->armed = true;
	gd->idt_base = st->sregs.idt.base;
	gd->raw_len = len;
	memcpy(gd->raw, raw, len);
	pthread_mutex_unlock(&d->lock);
	d->step_stats.guard_arms++;
	return true;
}

/* The guard on the instruction about to be stepped is out for this step
 * (step_over() does the same for the client's breakpoints). */
static void guards_for_step(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	uint64_t pc = st->sregs.cs.base + st->regs.rip;
	pthread_mutex_lock(&d->lock);
	guard_unlift_locked(d);
	pthread_mutex_unlock(&d->lock);
	/* an engine that keeps the guest's TF exactly stops at the handler
	 * itself: no guards for the IF shadow alone */
	if (!debug_step_runs_alone(d, vcpu) || !st->tf_shadow) {
		if (d->guard.armed)
			debug_step_guards_drop(d);
		return;
	}
	if (!guards_sync(d, st))
		return;
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_locked(d, pc);
	if (bp && bp->step_guard && !bp->lifted) {
		debug_sw_poke(d, bp, false);
		d->guard.lifted = true;
		d->guard.lifted_addr = pc;
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- before a step ---- */

int step_tf_before(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st, bool halted)
{
	if (halted && d->guard.armed)
		debug_step_guards_drop(d);
	else if (!halted)
		guards_for_step(d, vcpu, st);
	if (!st->tf_shadow)
		return 0;
	if (st->insn.kind == X86_INSN_IRET && emulate_iretq(d, vcpu, st) == 0)
		return 1;
	if (st->have_image && (st->image & RFLAGS_TF))
		scrub(d, vcpu, st, true);
	return 0;
}

/* ---- the guest's INT3 under a step ---- */

/* The guest's own INT3 while the debugger steps it: deliver #BP (a trap:
 * the frame names the next instruction) with the guest's TF in the frame,
 * and end the step at the handler. */
bool debug_step_guest_int3(struct debug *d, struct vcpu *vcpu, uint64_t pc, uint64_t *handler)
{
	struct debug_step_vcpu *st = &d->vcpus[vcpu->id].st;
	struct x86_regs regs;

	if (!st->shadow || !st->armed || st->regs.rip != pc ||
	    debug_vcpu_regs(d, vcpu->id, &regs) < 0)
		return false;
	regs.rip = pc + 1;
	if (deliver_trap(d, vcpu, st, &regs, X86_BP) < 0)
		return false;
	st->armed = false;
	st->guest_tf = false;
	st->sregs_valid = false;
	*handler = regs.rip;
	return true;
}
