/* engine/kvm/kvm_regs.c — vCPU register state: general, system, x87/SSE,
 * MSRs, debug registers and the multiprocessing run state, converted
 * between KVM's structures and x86/x86.h's. */
#include "engine/kvm/kvm.h"

#include <string.h>

#include "machine/vm.h"

static int kvm_vcpu_fd(struct vcpu *vcpu)
{
	return kvm_vcpu_of(vcpu)->fd;
}

/* The registers of the last exit from the run page, if still valid. The
 * flag is checked again after the copy: a run() that started meanwhile
 * (nobody should read a running vCPU) makes the copy worthless. */
static bool kvm_synced_regs(struct kvm_vcpu_state *v, struct kvm_regs *k)
{
	if (!__atomic_load_n(&v->regs_synced, __ATOMIC_ACQUIRE))
		return false;
	*k = v->run->s.regs.regs;
	return __atomic_load_n(&v->regs_synced, __ATOMIC_ACQUIRE);
}

int kvm_op_get_regs(struct vcpu *vcpu, struct x86_regs *regs)
{
	struct kvm_regs k;
	if (!kvm_synced_regs(kvm_vcpu_of(vcpu), &k)) {
		int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_REGS, &k);
		if (r < 0)
			return r;
	}
	*regs = (struct x86_regs){
		.rax = k.rax, .rbx = k.rbx, .rcx = k.rcx, .rdx = k.rdx,
		.rsi = k.rsi, .rdi = k.rdi, .rbp = k.rbp, .rsp = k.rsp,
		.r8 = k.r8, .r9 = k.r9, .r10 = k.r10, .r11 = k.r11,
		.r12 = k.r12, .r13 = k.r13, .r14 = k.r14, .r15 = k.r15,
		.rip = k.rip, .rflags = k.rflags,
	};
	return 0;
}

int kvm_op_set_regs(struct vcpu *vcpu, const struct x86_regs *regs)
{
	struct kvm_regs k = {
		.rax = regs->rax, .rbx = regs->rbx, .rcx = regs->rcx, .rdx = regs->rdx,
		.rsi = regs->rsi, .rdi = regs->rdi, .rbp = regs->rbp, .rsp = regs->rsp,
		.r8 = regs->r8, .r9 = regs->r9, .r10 = regs->r10, .r11 = regs->r11,
		.r12 = regs->r12, .r13 = regs->r13, .r14 = regs->r14, .r15 = regs->r15,
		.rip = regs->rip, .rflags = regs->rflags | RFLAGS_FIXED1,
	};
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	/* the run page copy is stale from now on; KVM only reads it back
	 * for fields named in kvm_dirty_regs, which stays 0 */
	__atomic_store_n(&v->regs_synced, false, __ATOMIC_RELEASE);
	return kvm_ioctl(v->fd, KVM_SET_REGS, &k);
}

static void kvm_seg_from(struct x86_segment *x, const struct kvm_segment *k)
{
	*x = (struct x86_segment){
		.base = k->base, .limit = k->limit, .selector = k->selector,
		.type = k->type, .present = k->present, .dpl = k->dpl, .db = k->db,
		.s = k->s, .l = k->l, .g = k->g, .avl = k->avl, .unusable = k->unusable,
	};
}

static void kvm_seg_to(struct kvm_segment *k, const struct x86_segment *x)
{
	*k = (struct kvm_segment){
		.base = x->base, .limit = x->limit, .selector = x->selector,
		.type = x->type, .present = x->present, .dpl = x->dpl, .db = x->db,
		.s = x->s, .l = x->l, .g = x->g, .avl = x->avl, .unusable = x->unusable,
	};
}

int kvm_op_get_sregs(struct vcpu *vcpu, struct x86_sregs *s)
{
	struct kvm_sregs k;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_SREGS, &k);
	if (r < 0)
		return r;
	kvm_sregs_from(s, &k);
	return 0;
}

void kvm_sregs_from(struct x86_sregs *s, const struct kvm_sregs *kp)
{
	const struct kvm_sregs k = *kp;
	kvm_seg_from(&s->cs, &k.cs);
	kvm_seg_from(&s->ds, &k.ds);
	kvm_seg_from(&s->es, &k.es);
	kvm_seg_from(&s->fs, &k.fs);
	kvm_seg_from(&s->gs, &k.gs);
	kvm_seg_from(&s->ss, &k.ss);
	kvm_seg_from(&s->tr, &k.tr);
	kvm_seg_from(&s->ldt, &k.ldt);
	s->gdt = (struct x86_dtable){ .base = k.gdt.base, .limit = k.gdt.limit };
	s->idt = (struct x86_dtable){ .base = k.idt.base, .limit = k.idt.limit };
	s->cr0 = k.cr0;
	s->cr2 = k.cr2;
	s->cr3 = k.cr3;
	s->cr4 = k.cr4;
	s->cr8 = k.cr8;
	s->efer = k.efer;
	s->apic_base = k.apic_base;
}

/* Read first so the pending-interrupt bitmap KVM keeps in kvm_sregs is
 * written back unchanged. */
int kvm_op_set_sregs(struct vcpu *vcpu, const struct x86_sregs *s)
{
	struct kvm_sregs k;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_SREGS, &k);
	if (r < 0)
		return r;
	kvm_seg_to(&k.cs, &s->cs);
	kvm_seg_to(&k.ds, &s->ds);
	kvm_seg_to(&k.es, &s->es);
	kvm_seg_to(&k.fs, &s->fs);
	kvm_seg_to(&k.gs, &s->gs);
	kvm_seg_to(&k.ss, &s->ss);
	kvm_seg_to(&k.tr, &s->tr);
	kvm_seg_to(&k.ldt, &s->ldt);
	k.gdt = (struct kvm_dtable){ .base = s->gdt.base, .limit = s->gdt.limit };
	k.idt = (struct kvm_dtable){ .base = s->idt.base, .limit = s->idt.limit };
	k.cr0 = s->cr0;
	k.cr2 = s->cr2;
	k.cr3 = s->cr3;
	k.cr4 = s->cr4;
	k.cr8 = s->cr8;
	k.efer = s->efer;
	k.apic_base = s->apic_base;
	return kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_SET_SREGS, &k);
}

/* The FXSAVE image: the first 512 bytes of struct kvm_xsave; XSTATE_BV
 * follows it in the XSAVE header. */
struct fxsave_image {
	uint16_t fcw, fsw;
	uint8_t ftw, reserved1;
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr, mxcsr_mask;
	uint8_t st[8][16];
	uint8_t xmm[16][16];
	uint8_t reserved2[96];
};
_Static_assert(sizeof(struct fxsave_image) == 512, "FXSAVE image is 512 bytes");
#define XSAVE_XSTATE_BV_OFFSET 512
#define XSTATE_X87_SSE        0x3ull

static void kvm_fpu_from_fxsave(struct x86_fpu *fpu, const struct fxsave_image *fx)
{
	memcpy(fpu->st, fx->st, sizeof(fpu->st));
	fpu->fcw = fx->fcw;
	fpu->fsw = fx->fsw;
	fpu->ftw = fx->ftw;
	fpu->fop = fx->fop;
	fpu->fip = fx->fip;
	fpu->fdp = fx->fdp;
	fpu->mxcsr = fx->mxcsr;
	memcpy(fpu->xmm, fx->xmm, sizeof(fpu->xmm));
}

static void kvm_fpu_to_fxsave(struct fxsave_image *fx, const struct x86_fpu *fpu)
{
	memcpy(fx->st, fpu->st, sizeof(fx->st));
	fx->fcw = fpu->fcw;
	fx->fsw = fpu->fsw;
	fx->ftw = fpu->ftw;
	fx->fop = fpu->fop;
	fx->fip = fpu->fip;
	fx->fdp = fpu->fdp;
	fx->mxcsr = fpu->mxcsr;
	memcpy(fx->xmm, fpu->xmm, sizeof(fx->xmm));
}

/* Measured on this host: KVM_GET_FPU reports MXCSR as 0 and KVM_SET_FPU
 * does not load it. So with KVM_CAP_XSAVE the state goes through the
 * XSAVE image (KVM fills init values for components in init state);
 * KVM_GET/SET_FPU is the fallback. */
static int kvm_get_fpu_xsave(struct kvm_vcpu_state *v, struct x86_fpu *fpu)
{
	struct kvm_xsave xs;
	int r = kvm_ioctl(v->fd, KVM_GET_XSAVE, &xs);
	if (r < 0)
		return r;
	struct fxsave_image fx;
	memcpy(&fx, xs.region, sizeof(fx));
	kvm_fpu_from_fxsave(fpu, &fx);
	return 0;
}

static int kvm_set_fpu_xsave(struct kvm_vcpu_state *v, const struct x86_fpu *fpu)
{
	struct kvm_xsave xs;
	int r = kvm_ioctl(v->fd, KVM_GET_XSAVE, &xs);
	if (r < 0)
		return r;
	struct fxsave_image fx;
	memcpy(&fx, xs.region, sizeof(fx));
	kvm_fpu_to_fxsave(&fx, fpu);
	memcpy(xs.region, &fx, sizeof(fx));
	/* a clear XSTATE_BV bit means "init state": our values would be ignored */
	uint8_t *img = (uint8_t *)xs.region;
	uint64_t bv;
	memcpy(&bv, img + XSAVE_XSTATE_BV_OFFSET, sizeof(bv));
	bv |= XSTATE_X87_SSE;
	memcpy(img + XSAVE_XSTATE_BV_OFFSET, &bv, sizeof(bv));
	return kvm_ioctl(v->fd, KVM_SET_XSAVE, &xs);
}

int kvm_op_get_fpu(struct vcpu *vcpu, struct x86_fpu *fpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (v->kvm->caps.xsave)
		return kvm_get_fpu_xsave(v, fpu);
	struct kvm_fpu k;
	int r = kvm_ioctl(v->fd, KVM_GET_FPU, &k);
	if (r < 0)
		return r;
	struct fxsave_image fx = {
		.fcw = k.fcw, .fsw = k.fsw, .ftw = k.ftwx, .fop = k.last_opcode,
		.fip = k.last_ip, .fdp = k.last_dp, .mxcsr = k.mxcsr,
	};
	memcpy(fx.st, k.fpr, sizeof(fx.st));
	memcpy(fx.xmm, k.xmm, sizeof(fx.xmm));
	kvm_fpu_from_fxsave(fpu, &fx);
	return 0;
}

int kvm_op_set_fpu(struct vcpu *vcpu, const struct x86_fpu *fpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (v->kvm->caps.xsave)
		return kvm_set_fpu_xsave(v, fpu);
	struct kvm_fpu k;
	memset(&k, 0, sizeof(k));
	memcpy(k.fpr, fpu->st, sizeof(k.fpr));
	k.fcw = fpu->fcw;
	k.fsw = fpu->fsw;
	k.ftwx = fpu->ftw;
	k.last_opcode = fpu->fop;
	k.last_ip = fpu->fip;
	k.last_dp = fpu->fdp;
	k.mxcsr = fpu->mxcsr;
	memcpy(k.xmm, fpu->xmm, sizeof(k.xmm));
	return kvm_ioctl(v->fd, KVM_SET_FPU, &k);
}

/* struct kvm_msrs with room for exactly one entry. */
struct kvm_one_msr {
	struct kvm_msrs head;
	struct kvm_msr_entry entry;
};

int kvm_op_get_msr(struct vcpu *vcpu, uint32_t index, uint64_t *value)
{
	struct kvm_one_msr m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = 1;
	m.entry.index = index;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_MSRS, &m);
	if (r < 0)
		return r;
	if (r != 1)
		return -ENOENT;     /* KVM does not know this MSR */
	*value = m.entry.data;
	return 0;
}

int kvm_op_set_msr(struct vcpu *vcpu, uint32_t index, uint64_t value)
{
	struct kvm_one_msr m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = 1;
	m.entry.index = index;
	m.entry.data = value;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_SET_MSRS, &m);
	if (r < 0)
		return r;
	if (r == 1)
		return 0;
	uint64_t old;       /* KVM took none: no such MSR, or not this value */
	return kvm_op_get_msr(vcpu, index, &old) == -ENOENT ? -ENOENT : -EINVAL;
}

static void kvm_pic_of(const struct kvm_pic_state *k, struct engine_pic *p)
{
	*p = (struct engine_pic){ .irr = k->irr, .isr = k->isr, .imr = k->imr,
				  .vector_base = k->irq_base, .elcr = k->elcr,
				  .initialised = k->init_state == 0, .auto_eoi = k->auto_eoi };
}

int kvm_op_irqchip_get(struct vcpu *vcpu, struct engine_irqchip *chip)
{
	struct kvm_lapic_state lapic;
	struct kvm_irqchip ic;
	int vm_fd = kvm_vm_of(vcpu->vm)->vm_fd;

	memset(chip, 0, sizeof(*chip));
	if (kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_LAPIC, &lapic) == 0) {
		for (unsigned i = 0; i < 64; i++)     /* one register per 16 bytes */
			memcpy(&chip->lapic[i], lapic.regs + 16 * i, sizeof(chip->lapic[i]));
		chip->have_lapic = true;
	}
	memset(&ic, 0, sizeof(ic));
	ic.chip_id = KVM_IRQCHIP_IOAPIC;
	if (kvm_ioctl(vm_fd, KVM_GET_IRQCHIP, &ic) == 0) {
		chip->have_ioapic = true;
		chip->ioapic_id = ic.chip.ioapic.id << 24;
		for (unsigned i = 0; i < KVM_IOAPIC_NUM_PINS && i < ENGINE_IOAPIC_PINS; i++)
			chip->ioapic_redir[i] = ic.chip.ioapic.redirtbl[i].bits;
	}
	for (unsigned i = 0; i < 2; i++) {
		memset(&ic, 0, sizeof(ic));
		ic.chip_id = i == 0 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
		if (kvm_ioctl(vm_fd, KVM_GET_IRQCHIP, &ic) < 0)
			return 0;
		kvm_pic_of(&ic.chip.pic, &chip->pic[i]);
		chip->have_pic = true;
	}
	return 0;
}

int kvm_op_get_debugregs(struct vcpu *vcpu, struct x86_debugregs *dr)
{
	struct kvm_debugregs k;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_DEBUGREGS, &k);
	if (r < 0)
		return r;
	memcpy(dr->db, k.db, sizeof(dr->db));
	dr->dr6 = k.dr6;
	dr->dr7 = k.dr7;
	return 0;
}

int kvm_op_set_debugregs(struct vcpu *vcpu, const struct x86_debugregs *dr)
{
	struct kvm_debugregs k;
	memset(&k, 0, sizeof(k));
	memcpy(k.db, dr->db, sizeof(k.db));
	k.dr6 = dr->dr6;
	k.dr7 = dr->dr7;
	return kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_SET_DEBUGREGS, &k);
}

int kvm_op_get_run_state(struct vcpu *vcpu, bool *halted, bool *waiting_sipi)
{
	struct kvm_mp_state mp;
	int r = kvm_ioctl(kvm_vcpu_fd(vcpu), KVM_GET_MP_STATE, &mp);
	if (r < 0)
		return r;
	*halted = mp.mp_state == KVM_MP_STATE_HALTED;
	*waiting_sipi = mp.mp_state == KVM_MP_STATE_INIT_RECEIVED ||
			mp.mp_state == KVM_MP_STATE_UNINITIALIZED;
	return 0;
}

/* Events KVM holds for the vCPU's next entry that a step elsewhere would
 * lose or misplace: an exception, NMI or interrupt pending or injected,
 * and the one-instruction interrupt shadow of STI / MOV SS; and the NMI
 * blocking an IRET would end. */
int kvm_op_events_pending(struct vcpu *vcpu, bool *pending, bool *nmi_blocked)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_vcpu_events ev;
	*pending = *nmi_blocked = true;
	if (!v->kvm->caps.vcpu_events)
		return -ENOTSUP;
	int r = kvm_ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev);
	if (r < 0)
		return r;
	*pending = ev.exception.injected || ev.exception.pending || ev.interrupt.injected ||
		   ev.nmi.injected || ev.nmi.pending || ev.interrupt.shadow ||
		   ((ev.flags & KVM_VCPUEVENT_VALID_SMM) && ev.smi.pending);
	*nmi_blocked = ev.nmi.masked;
	return 0;
}

/* --- the state ops: by part ---------------------------------------------------------- */

static const uint32_t kvm_state_msr_index[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, MSR_KERNEL_GS_BASE,
};
#define KVM_STATE_NR_MSRS (sizeof(kvm_state_msr_index) / sizeof(kvm_state_msr_index[0]))
#define KVM_XCR0_DEFAULT 0x3ull      /* x87 | SSE: a host without KVM_CAP_XSAVE */

struct kvm_state_msrs {
	struct kvm_msrs head;
	struct kvm_msr_entry entry[KVM_STATE_NR_MSRS];
};

/* The SYSCALL MSRs and KERNEL_GS_BASE in one KVM_GET_MSRS / KVM_SET_MSRS. */
static int kvm_state_msrs(struct kvm_vcpu_state *v, struct x86_state *st, bool set)
{
	uint64_t *field[KVM_STATE_NR_MSRS] = { &st->star, &st->lstar, &st->cstar, &st->fmask,
					       &st->kernel_gs_base };
	struct kvm_state_msrs m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = KVM_STATE_NR_MSRS;
	for (unsigned i = 0; i < KVM_STATE_NR_MSRS; i++) {
		m.entry[i].index = kvm_state_msr_index[i];
		m.entry[i].data = set ? *field[i] : 0;
	}
	int r = kvm_ioctl(v->fd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &m);
	if (r < 0)
		return r;
	if (r != (int)KVM_STATE_NR_MSRS)
		return -EINVAL;
	for (unsigned i = 0; !set && i < KVM_STATE_NR_MSRS; i++)
		*field[i] = m.entry[i].data;
	return 0;
}

static uint64_t kvm_state_xcr0(struct kvm_vcpu_state *v)
{
	struct kvm_xcrs x;
	memset(&x, 0, sizeof(x));
	if (v->kvm->caps.xsave && kvm_ioctl(v->fd, KVM_GET_XCRS, &x) == 0)
		for (unsigned i = 0; i < x.nr_xcrs && i < KVM_MAX_XCRS; i++)
			if (x.xcrs[i].xcr == 0)
				return x.xcrs[i].value;
	return KVM_XCR0_DEFAULT;
}

static int kvm_state_set_xcr0(struct kvm_vcpu_state *v, uint64_t xcr0)
{
	struct kvm_xcrs x;
	if (!v->kvm->caps.xsave)
		return xcr0 == KVM_XCR0_DEFAULT ? 0 : -ENOTSUP;
	memset(&x, 0, sizeof(x));
	x.nr_xcrs = 1;
	x.xcrs[0].xcr = 0;
	x.xcrs[0].value = xcr0;
	return kvm_ioctl(v->fd, KVM_SET_XCRS, &x);
}

int kvm_op_get_state(struct vcpu *vcpu, unsigned mask, struct x86_state *st)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	int r = 0;
	if ((mask & X86_STATE_SREGS) && (r = kvm_op_get_sregs(vcpu, &st->sregs)) < 0)
		return r;
	if ((mask & X86_STATE_REGS) && (r = kvm_op_get_regs(vcpu, &st->regs)) < 0)
		return r;
	if ((mask & X86_STATE_FPU) && (r = kvm_op_get_fpu(vcpu, &st->fpu)) < 0)
		return r;
	if (mask & X86_STATE_XCR0)
		st->xcr0 = kvm_state_xcr0(v);
	if ((mask & X86_STATE_DR) && (r = kvm_op_get_debugregs(vcpu, &st->dr)) < 0)
		return r;
	if (mask & X86_STATE_MSRS)
		r = kvm_state_msrs(v, st, false);
	return r;
}

int kvm_op_set_state(struct vcpu *vcpu, unsigned mask, const struct x86_state *st)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	int r = 0;
	if ((mask & X86_STATE_SREGS) && (r = kvm_op_set_sregs(vcpu, &st->sregs)) < 0)
		return r;
	if ((mask & X86_STATE_REGS) && (r = kvm_op_set_regs(vcpu, &st->regs)) < 0)
		return r;
	/* KVM ties its single-step trap flag to the RIP it was armed at: a
	 * RIP written while stepping (a step done elsewhere, gdb's $pc) gets
	 * the trap re-armed here, or the next KVM_RUN would run freely */
	if ((mask & X86_STATE_REGS) && v->debug.single_step &&
	    (r = kvm_op_set_debug(vcpu, &v->debug)) < 0)
		return r;
	if ((mask & X86_STATE_XCR0) && (r = kvm_state_set_xcr0(v, st->xcr0)) < 0)
		return r;
	if ((mask & X86_STATE_FPU) && (r = kvm_op_set_fpu(vcpu, &st->fpu)) < 0)
		return r;
	if ((mask & X86_STATE_DR) && (r = kvm_op_set_debugregs(vcpu, &st->dr)) < 0)
		return r;
	if (mask & X86_STATE_MSRS) {
		struct x86_state copy = *st;
		r = kvm_state_msrs(v, &copy, true);
	}
	return r;
}
