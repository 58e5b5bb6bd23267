/* engine/kvm/kvm_msr_catch.c — `monitor catch msr` on KVM. While MSR
 * catches are set, KVM's MSR filter (KVM_X86_SET_MSR_FILTER) denies
 * exactly the caught MSRs in the caught directions; with
 * KVM_CAP_X86_USER_SPACE_MSR's KVM_MSR_EXIT_REASON_FILTER (enabled when
 * the VM is created, as KVM wants it before any filter) a denied RDMSR or
 * WRMSR exits to vmdb instead of faulting. vmdb then does the access as
 * the CPU would, on KVM's own MSR state (KVM_GET_MSRS / KVM_SET_MSRS; a
 * value KVM refuses is a #GP), lets KVM finish the instruction (KVM_RUN
 * with immediate_exit completes it and returns before the next one) and
 * reports VM_EXIT_ACCESS: the guest sees no difference.
 *
 * The filter is VM-wide, set_debug is per vCPU: the first set_debug whose
 * rules differ from the installed filter replaces it with every vCPU out
 * of KVM_RUN (kvm_watch.c's map gate), so every vCPU runs under the new
 * filter from its next entry on. Without MSR catches there is no filter
 * at all, and MSR handling is KVM's as if vmdb had never asked.
 *
 * Limits, said in words by check_access where they bite: KVM's filter
 * holds 16 ranges of at most 12288 MSRs and never covers the x2APIC MSRs
 * (0x800-0x8ff). The access is made as the host's (host-initiated): the
 * few MSRs KVM lets userspace write but not the guest (read-only ones
 * such as the microcode revision) take a caught guest write without #GP.
 * Only RDMSR and WRMSR are filtered, as emu catches them (not RDTSCP's
 * or RDPID's implicit reads). */
#include "engine/kvm/kvm.h"

#include <string.h>
#include <sys/ioctl.h>

#include "machine/vm.h"

#define MSR_RANGE_MAX  (KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8u)   /* MSRs per filter range */
#define X2APIC_FIRST   0x800u
#define X2APIC_LAST    0x8ffu

void kvm_msr_catch_init(struct kvm_vm_state *kvm)
{
	if (!kvm->caps.msr_filter)
		return;
	struct kvm_enable_cap cap;
	memset(&cap, 0, sizeof(cap));
	cap.cap = KVM_CAP_X86_USER_SPACE_MSR;
	cap.args[0] = KVM_MSR_EXIT_REASON_FILTER;   /* unknown MSRs still #GP in KVM */
	kvm->msr.exits = kvm_ioctl(kvm->vm_fd, KVM_ENABLE_CAP, &cap) == 0;
}

void kvm_msr_catch_free(struct kvm_vm_state *kvm)
{
	pthread_mutex_destroy(&kvm->msr.lock);
}

/* ---- the filter ---- */

static int deny_rule(const struct engine_access_rule *r, struct kvm_msr_deny *out, struct err *e)
{
	if (r->first <= X2APIC_LAST && r->last >= X2APIC_FIRST)
		return err_set(e, ENOTSUP, "the kvm engine cannot catch MSRs 0x%x-0x%x: KVM's MSR "
			       "filter never covers the x2APIC MSRs (0x%x-0x%x)", r->first, r->last,
			       X2APIC_FIRST, X2APIC_LAST);
	uint32_t flags = (r->read ? KVM_MSR_FILTER_READ : 0) | (r->write ? KVM_MSR_FILTER_WRITE : 0);
	for (uint64_t base = r->first; base <= r->last; base += MSR_RANGE_MAX) {
		uint64_t n = (uint64_t)r->last - base + 1;
		if (out->nr == KVM_MSR_FILTER_MAX_RANGES)
			return err_set(e, ENOSPC, "the kvm engine cannot catch that many MSRs: KVM's "
				       "MSR filter holds %u ranges of at most %u MSRs",
				       KVM_MSR_FILTER_MAX_RANGES, MSR_RANGE_MAX);
		out->range[out->nr++] = (struct kvm_msr_deny_range){
			.base = (uint32_t)base,
			.nmsrs = (uint32_t)(n < MSR_RANGE_MAX ? n : MSR_RANGE_MAX),
			.flags = flags,
		};
	}
	return 0;
}

int kvm_msr_deny_build(const struct engine_access_filter *f, struct kvm_msr_deny *out,
		       struct err *e)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < f->nr && i < ENGINE_ACCESS_RULES; i++) {
		const struct engine_access_rule *r = &f->rule[i];
		if (r->kind != ENGINE_ACCESS_MSR || (!r->read && !r->write) || r->first > r->last)
			continue;
		int res = deny_rule(r, out, e);
		if (res < 0)
			return res;
	}
	return 0;
}

int kvm_op_check_access(struct vm *vm, const struct engine_access_filter *f, struct err *e)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	bool msr = false;
	for (unsigned i = 0; i < f->nr && i < ENGINE_ACCESS_RULES; i++) {
		if (f->rule[i].kind == ENGINE_ACCESS_CR)
			return err_set(e, ENOTSUP, "the kvm engine cannot catch CR accesses here: KVM "
				       "has no CR-write exit (the emu engine catches them)");
		msr |= f->rule[i].kind == ENGINE_ACCESS_MSR;
	}
	if (msr && !kvm->msr.exits)
		return err_set(e, ENOTSUP, "the kvm engine cannot catch MSR accesses here: host "
			       "KVM has no MSR filter (KVM_CAP_X86_MSR_FILTER with "
			       "KVM_CAP_X86_USER_SPACE_MSR, Linux 5.10 or later; the emu engine "
			       "catches them)");
	struct kvm_msr_deny d;
	return kvm_msr_deny_build(f, &d, e);
}

/* Every bitmap all zeros: each range denies all its MSRs. No ranges: no
 * filter. */
static int set_filter(struct kvm_vm_state *kvm, const struct kvm_msr_deny *d)
{
	uint8_t deny_all[KVM_MSR_FILTER_MAX_BITMAP_SIZE];
	struct kvm_msr_filter filter;
	memset(deny_all, 0, sizeof(deny_all));
	memset(&filter, 0, sizeof(filter));
	filter.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	for (unsigned i = 0; i < d->nr; i++)
		filter.ranges[i] = (struct kvm_msr_filter_range){
			.flags = d->range[i].flags, .nmsrs = d->range[i].nmsrs,
			.base = d->range[i].base, .bitmap = deny_all,
		};
	return kvm_ioctl(kvm->vm_fd, KVM_X86_SET_MSR_FILTER, &filter);
}

int kvm_msr_catch_apply(struct vcpu *vcpu, const struct engine_access_filter *f)
{
	struct kvm_vm_state *kvm = kvm_vcpu_of(vcpu)->kvm;
	struct kvm_msr_deny want;
	if (!kvm->msr.exits)
		return 0;                /* check_access refused every MSR rule */
	if (kvm_msr_deny_build(f, &want, NULL) < 0)
		return -EINVAL;          /* check_access said why */
	pthread_mutex_lock(&kvm->msr.lock);
	int r = 0;
	if (memcmp(&want, &kvm->msr.installed, sizeof(want)) != 0) {
		kvm_watch_gate_close(vcpu->vm);
		r = set_filter(kvm, &want);
		kvm_watch_gate_open(kvm);
		if (r == 0)
			kvm->msr.installed = want;
	}
	pthread_mutex_unlock(&kvm->msr.lock);
	return r;
}

/* ---- a caught access ---- */

struct one_msr {
	struct kvm_msrs head;
	struct kvm_msr_entry entry;
};

/* The access on KVM's MSR state: false where the CPU would raise #GP
 * (KVM does not know the MSR, or refuses the value). */
static bool msr_access(struct kvm_vcpu_state *v, bool write, uint32_t index, uint64_t *value)
{
	struct one_msr m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = 1;
	m.entry.index = index;
	m.entry.data = *value;
	if (kvm_ioctl(v->fd, write ? KVM_SET_MSRS : KVM_GET_MSRS, &m) != 1)
		return false;
	*value = m.entry.data;
	return true;
}

/* The linear address of the vCPU's RIP (what KVM reports as pc). */
static int linear_rip(struct kvm_vcpu_state *v, uint64_t *pc)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int r = kvm_ioctl(v->fd, KVM_GET_REGS, &regs);
	if (r == 0)
		r = kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs);
	if (r < 0)
		return r;
	bool long64 = (sregs.efer & EFER_LMA) && sregs.cs.l;
	*pc = long64 ? regs.rip : (sregs.cs.base + regs.rip) & 0xffffffffull;
	return 0;
}

/* KVM finishes the instruction at the start of KVM_RUN, before it looks
 * at immediate_exit: RDMSR's result into RAX:RDX and RIP past it, or the
 * #GP injected. 0 when it returned there; 1 when that KVM_RUN ended in an
 * exit of its own (the step trap of a debugger's single step), in v->run. */
static int finish_insn(struct kvm_vcpu_state *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int r = ioctl(v->fd, KVM_RUN, 0);
	int err = errno;
	/* a kick that came meanwhile is answered by the stop this reports */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->regs_synced, false, __ATOMIC_RELEASE);
	if (r == 0)
		return 1;
	return err == EINTR || err == EAGAIN ? 0 : -err;
}

static void msr_exit_unknown(struct vm_exit *exit, uint32_t code)
{
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_UNKNOWN;
	exit->unknown.code = code;
}

void kvm_msr_exit(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	struct kvm_run *run = v->run;
	uint32_t code = run->exit_reason, index = run->msr.index;
	bool write = code == KVM_EXIT_X86_WRMSR;
	uint64_t value = write ? run->msr.data : 0, pc, after;
	if (!(run->msr.reason & KVM_MSR_EXIT_REASON_FILTER) || linear_rip(v, &pc) < 0) {
		msr_exit_unknown(exit, code);
		return;
	}
	bool done = msr_access(v, write, index, &value);
	run->msr.error = done ? 0 : 1;
	if (done && !write)
		run->msr.data = value;
	int r = finish_insn(v);
	memset(exit, 0, sizeof(*exit));
	if (r == 1) {
		kvm_exit_translate(v, exit);     /* the step ended there: it wins, as on emu */
		return;
	}
	if (r < 0 || (done && v->debug.single_step && linear_rip(v, &after) < 0)) {
		msr_exit_unknown(exit, code);
		return;
	}
	if (!done) {
		exit->reason = VM_EXIT_NONE;     /* the #GP is the guest's: not reported, as on emu */
	} else if (v->debug.single_step) {
		exit->reason = VM_EXIT_DB;       /* a host that raised no step trap there */
		exit->db.dr6 = DR6_INIT | DR6_BS;
		exit->db.pc = after;
	} else {
		exit->reason = VM_EXIT_ACCESS;
		exit->access.kind = ENGINE_ACCESS_MSR;
		exit->access.is_write = write;
		exit->access.size = 8;
		exit->access.index = index;
		exit->access.value = value;
		exit->access.pc = pc;
	}
}
