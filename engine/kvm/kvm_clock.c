/* engine/kvm/kvm_clock.c — the guest's kvmclock told of the debugger's
 * pauses. A guest whose vCPU was held out of KVM_RUN finds, when it runs
 * again, that its clock jumped: Linux's soft-lockup and RCU-stall
 * watchdogs would blame the jump on itself. KVM_KVMCLOCK_CTRL makes KVM
 * set PVCLOCK_GUEST_STOPPED in the vCPU's pvclock page at its next entry,
 * and a guest that reads that flag forgives the gap (Linux's
 * kvm_check_and_clear_guest_paused, from its watchdogs). QEMU does the
 * same for every vCPU when a stopped VM resumes. */
#include "engine/kvm/kvm.h"

#include <errno.h>

int kvm_op_note_paused(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (!v->kvm->caps.kvmclock_ctrl)
		return 0;                /* nothing to tell the guest with */
	int r = kvm_ioctl(v->fd, KVM_KVMCLOCK_CTRL, NULL);
	/* EINVAL: the guest has not enabled kvmclock on this vCPU, so no
	 * watchdog of its reads that clock either */
	return r == -EINVAL ? 0 : r;
}
