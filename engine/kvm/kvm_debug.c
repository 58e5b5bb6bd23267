/* engine/kvm/kvm_debug.c — what the debugger asks of a KVM vCPU: guest
 * debug mode (single step, INT3 and hardware breakpoint interception) and
 * exception injection. */
#include "engine/kvm/kvm.h"

#include <string.h>

#include "machine/vm.h"

/* BLOCKIRQ is set only when the host lists it in KVM_CAP_SET_GUEST_DEBUG2;
 * otherwise the request is dropped and probe reports BLOCKIRQ absent, so
 * the debug core knows interrupts may arrive during a step. */
int kvm_op_set_debug(struct vcpu *vcpu, const struct engine_debug *dbg)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_guest_debug g;
	memset(&g, 0, sizeof(g));
	v->debug = *dbg;
	if (dbg->single_step)
		g.control |= KVM_GUESTDBG_SINGLESTEP;
	if (dbg->single_step && dbg->block_irq && (v->kvm->caps.guest_debug2 & KVM_GUESTDBG_BLOCKIRQ))
		g.control |= KVM_GUESTDBG_BLOCKIRQ;
	if (dbg->intercept_bpt)
		g.control |= KVM_GUESTDBG_USE_SW_BP;
	if (dbg->use_hw_bp) {
		g.control |= KVM_GUESTDBG_USE_HW_BP;
		for (int i = 0; i < 4; i++)
			g.arch.debugreg[i] = dbg->db[i];
		g.arch.debugreg[7] = dbg->dr7;
	}
	if (g.control)
		g.control |= KVM_GUESTDBG_ENABLE;
	return kvm_ioctl(v->fd, KVM_SET_GUEST_DEBUG, &g);
}

/* Without KVM_CAP_EXCEPTION_PAYLOAD (vmdb does not enable it) KVM only
 * honours exception.injected: the exception is delivered on the next
 * entry, before any guest instruction runs. */
int kvm_op_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
			    uint32_t error_code)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (vector > 31 || vector == X86_NMI)
		return -EINVAL;
	/* #BP is a software exception to KVM: the frame's RIP depends on an
	 * instruction length KVM does not have here (the INT3 failed in its
	 * emulator). emu builds the frame exactly. */
	if (vector == X86_BP && !has_error_code && kvm_fallback_deliver(vcpu, vector) == 0)
		return 0;
	struct kvm_vcpu_events ev;
	int r = kvm_ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev);
	if (r < 0)
		return r;
	ev.exception.injected = 1;
	ev.exception.pending = 0;
	ev.exception.nr = vector;
	ev.exception.has_error_code = has_error_code;
	ev.exception.error_code = error_code;
	ev.flags &= KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
		    KVM_VCPUEVENT_VALID_NMI_PENDING;
	return kvm_ioctl(v->fd, KVM_SET_VCPU_EVENTS, &ev);
}
