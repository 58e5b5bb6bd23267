/* engine/kvm/kvm_syscall_mend.c — a ring-3 SYSCALL the host left half done.
 *
 * On hosts like ours (a paravirtual KVM that runs guest ring 3 on the CPU
 * and emulates ring 0) a SYSCALL from ring 3 moves RIP to LSTAR, saves RCX
 * and R11 and masks RFLAGS, but leaves the vCPU at CPL 3 (CS and SS still
 * ring 3's). The entry's first fetch then faults as a user access, and the
 * host delivers that #PF through the guest's IDT, into ring 0, without an
 * exit to userspace on the way. Where the guest's #PF entry begins with an
 * instruction the host's emulator gives up on (Linux's ASM_CLAC where the
 * CPU has SMAP, after at most an ENDBR64), vmdb gets control there, before
 * the handler changed anything: the frame on the stack, CR2 and the
 * registers still tell what happened. Where it does not (CR4.SMAP clear),
 * an execution breakpoint of vmdb's own on the #PF entry gives the same
 * chance: the host checks breakpoints in the ring-0 code it emulates (not
 * in ring 3, so not at LSTAR itself). It takes a DR0-3 slot neither the
 * debugger nor the guest uses, is re-aimed as the guest's IDT changes, and
 * costs two exits per #PF: an ordinary one goes on by a single step with
 * the breakpoint out (the host's emulator ignores RF). Then that #PF is undone and the
 * SYSCALL completed as the CPU does it: CS and SS from STAR, RSP as ring 3
 * left it, RIP at LSTAR, RFLAGS as the host masked them.
 *
 * Recognised only when everything agrees: the failing instruction is the
 * #PF gate's first (or the one after its ENDBR64), the frame is ring 3's
 * fetch fault at LSTAR (CR2 = LSTAR), its RFLAGS are R11 masked by FMASK,
 * and the two bytes before RCX are SYSCALL's, in ring 3's code. A ring-3
 * jump to LSTAR does not pass that. CR2 keeps LSTAR: the fault never
 * happened for the guest, which has no reason to read it. */
#include "engine/kvm/kvm.h"

#include <string.h>
#include <time.h>

#include "x86/paging.h"

#define MEND_ENDBR64_LEN 4
#define MEND_GATE_SIZE   16
#define MEND_PF_ERR_USER 0x4u
#define MEND_RFLAGS_KEPT 0x3c7fd7ull      /* what SYSCALL saves in R11 and FMASK can clear */

/* The frame a #PF from ring 3 pushed, at RSP. */
struct mend_frame {
	uint64_t error_code, rip, cs, rflags, rsp, ss;
};

static int mend_read_phys(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return kvm_read_phys(opaque, gpa, buf, len);
}

/* len bytes at linear va through the vCPU's paging; false when one does not translate. */
static bool mend_read(struct kvm_vcpu_state *v, const struct x86_sregs *sregs, uint64_t va,
		      void *buf, size_t len)
{
	uint8_t *out = buf;
	while (len) {
		uint64_t gpa;
		size_t chunk = 4096 - (size_t)(va & 0xfff);
		if (chunk > len)
			chunk = len;
		if (x86_translate(sregs, mend_read_phys, v->kvm, va, &gpa) < 0 ||
		    kvm_read_phys(v->kvm, gpa, out, chunk) < 0)
			return false;
		va += chunk;
		out += chunk;
		len -= chunk;
	}
	return true;
}

/* Where the #PF gate of the guest's IDT points; 0 when it cannot be read. */
static uint64_t mend_pf_gate(struct kvm_vcpu_state *v, const struct x86_sregs *sregs)
{
	uint32_t g[4];
	if (sregs->idt.limit < X86_PF * MEND_GATE_SIZE + MEND_GATE_SIZE - 1 ||
	    !mend_read(v, sregs, sregs->idt.base + X86_PF * MEND_GATE_SIZE, g, sizeof(g)))
		return 0;
	return (g[0] & 0xffffu) | (g[1] & 0xffff0000u) | (uint64_t)g[2] << 32;
}

/* The failing instruction is the #PF entry's first, ENDBR64 aside. */
static bool mend_at_pf_entry(struct kvm_vcpu_state *v, const struct x86_sregs *sregs,
			     uint64_t rip)
{
	static const uint8_t endbr64[MEND_ENDBR64_LEN] = { 0xf3, 0x0f, 0x1e, 0xfa };
	uint8_t head[MEND_ENDBR64_LEN];
	uint64_t gate = mend_pf_gate(v, sregs);
	if (!gate)
		return false;
	if (rip == gate)
		return true;
	return rip == gate + MEND_ENDBR64_LEN && mend_read(v, sregs, gate, head, sizeof(head)) &&
	       memcmp(head, endbr64, sizeof(head)) == 0;
}

/* Everything says: the host's own SYSCALL, not a ring-3 fault at LSTAR. */
static bool mend_is_syscall(struct kvm_vcpu_state *v, const struct x86_state *st,
			    const struct mend_frame *f)
{
	static const uint8_t syscall_insn[2] = { 0x0f, 0x05 };
	uint8_t before[2];
	uint64_t masked = (st->regs.r11 & MEND_RFLAGS_KEPT & ~st->fmask) | RFLAGS_FIXED1;
	return f->rip == st->lstar && st->sregs.cr2 == st->lstar && st->lstar &&
	       (f->rflags & ~RFLAGS_RF) == masked && st->regs.rcx >= 2 &&
	       mend_read(v, &st->sregs, st->regs.rcx - 2, before, sizeof(before)) &&
	       memcmp(before, syscall_insn, sizeof(before)) == 0;
}

static struct x86_segment mend_flat(uint16_t sel, uint8_t type, bool code)
{
	return (struct x86_segment){ .base = 0, .limit = 0xffffffff, .selector = sel,
				     .type = type, .present = 1, .s = 1, .l = code, .db = !code,
				     .g = 1, .dpl = 0 };
}

bool kvm_syscall_mend(struct vcpu *vcpu, const struct x86_sregs *sregs, uint64_t pc)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct mend_frame f;
	struct x86_state st;
	/* cheap tests first: they run at every emulation failure in ring 0 */
	if (sregs->cs.dpl != 0 || !(sregs->efer & EFER_LMA) || !(sregs->efer & EFER_SCE) ||
	    !mend_at_pf_entry(v, sregs, pc))
		return false;
	memset(&st, 0, sizeof(st));
	st.sregs = *sregs;
	if (kvm_op_get_state(vcpu, X86_STATE_REGS | X86_STATE_MSRS, &st) < 0 ||
	    !mend_read(v, sregs, st.regs.rsp, &f, sizeof(f)) || (f.cs & 3) != 3 ||
	    !(f.error_code & MEND_PF_ERR_USER) || !mend_is_syscall(v, &st, &f))
		return false;
	uint16_t sel = (uint16_t)((st.star >> 32) & 0xfffc);
	st.sregs.cs = mend_flat(sel, 0xb, true);
	st.sregs.ss = mend_flat((uint16_t)(sel + 8), 0x3, false);
	st.regs.rsp = f.rsp;
	st.regs.rip = st.lstar;
	st.regs.rflags = f.rflags & ~RFLAGS_RF;
	return kvm_op_set_state(vcpu, X86_STATE_SREGS | X86_STATE_REGS, &st) == 0;
}

/* --- where no CLAC exits: a breakpoint of vmdb's own at the #PF entry ---------- */

/* The #PF gate is looked at once a millisecond at most; each look that
 * finds nothing changed doubles the wait, up to 16 ms: a look costs up to
 * three ioctls (system registers, the guest's DR7, LSTAR until it is
 * set), which an exit-heavy guest would otherwise pay every millisecond. */
#define MEND_CHECK_NS     1000000ull
#define MEND_CHECK_MAX_NS 16000000ull
#define MEND_CR4_SMAP   (1ull << 21)
#define MEND_DR7_SLOT(n) (DR7_L(n) | DR7_G(n) | (0xfull << DR7_RW_SHIFT(n)))
#define KVM_MEND_DR7_ENABLES 0xffull     /* L0-3, G0-3 */

static uint64_t mend_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The #PF entry of a 64-bit kernel with SYSCALL on whose entry has no CLAC
 * to exit at (CR4.SMAP clear); 0 when no breakpoint is wanted. A kernel
 * turns SYSCALL on long before its first task makes one: exits come in
 * between. */
static uint64_t mend_bp_wanted(struct kvm_vcpu_state *v, const struct x86_sregs *sregs)
{
	if (!(sregs->efer & EFER_LMA) || !(sregs->efer & EFER_SCE) ||
	    (sregs->cr4 & MEND_CR4_SMAP))
		return 0;
	return mend_pf_gate(v, sregs);
}

/* A DR0-3 slot the debugger leaves free, the highest first (its placement
 * starts at DR0); -1 when none. While the debugger loads none, KVM runs
 * the guest's own file, which a breakpoint of ours would replace whole:
 * then none while the guest enables any (read at every look, so a guest
 * that starts using them loses them for 16 ms at most). */
static int mend_free_slot(struct vcpu *vcpu, const struct kvm_vcpu_state *v)
{
	uint64_t taken = v->debug.dr7;
	if (!v->debug.use_hw_bp) {
		struct x86_debugregs dr;
		if (kvm_op_get_debugregs(vcpu, &dr) < 0 || (dr.dr7 & KVM_MEND_DR7_ENABLES))
			return -1;
		taken = 0;
	}
	for (int n = 3; n >= 0; n--)
		if (!(taken & (DR7_L(n) | DR7_G(n))))
			return n;
	return -1;
}

/* Nothing changed at this look: the next one comes later. */
static void mend_back_off(struct kvm_mend_bp *bp)
{
	uint64_t next = bp->interval_ns ? bp->interval_ns * 2 : MEND_CHECK_NS * 2;
	bp->interval_ns = next < MEND_CHECK_MAX_NS ? next : MEND_CHECK_MAX_NS;
}

void kvm_syscall_mend_watch(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_mend_bp *bp = &v->mend_bp;
	uint64_t now = mend_now_ns();
	if (now - bp->checked_ns < (bp->interval_ns ? bp->interval_ns : MEND_CHECK_NS))
		return;
	bp->checked_ns = now;
	struct x86_sregs sregs;
	if (v->fail_sregs_valid)
		kvm_sregs_from(&sregs, &v->fail_sregs);
	else if (kvm_op_get_sregs(vcpu, &sregs) < 0)
		return;
	if (sregs.cs.dpl != 0) {
		mend_back_off(bp);            /* ring 3 cannot change the IDT: wait */
		return;
	}
	uint64_t want = mend_bp_wanted(v, &sregs);
	/* not before the kernel has an entry for SYSCALL: its early boot
	 * takes #PFs by the hundred, each an exit with the breakpoint */
	if (want && !bp->lstar_seen) {
		struct x86_state st;
		bp->lstar_seen = kvm_op_get_state(vcpu, X86_STATE_MSRS, &st) == 0 && st.lstar;
		if (!bp->lstar_seen)
			want = 0;
	}
	int slot = want ? mend_free_slot(vcpu, v) : -1;
	if (slot < 0)
		want = 0;
	if (want == bp->addr && (!want || (unsigned)slot == bp->slot)) {
		mend_back_off(bp);
		return;
	}
	bp->interval_ns = MEND_CHECK_NS;
	bp->addr = want;
	bp->slot = slot < 0 ? 0 : (unsigned)slot;
	kvm_op_set_debug(vcpu, &v->debug);
}

void kvm_syscall_mend_load(const struct kvm_vcpu_state *v, struct kvm_guest_debug *g)
{
	const struct kvm_mend_bp *bp = &v->mend_bp;
	if (bp->stepping_over) {
		/* one instruction with the breakpoint out: the host's emulator
		 * does not honour RF (measured: the breakpoint fires again) */
		g->control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
		return;
	}
	if (!bp->addr)
		return;
	__u64 *dr7 = &g->arch.debugreg[7];
	if (!(g->control & KVM_GUESTDBG_USE_HW_BP))
		memset(g->arch.debugreg, 0, sizeof(g->arch.debugreg));
	else if (*dr7 & (DR7_L(bp->slot) | DR7_G(bp->slot)))
		return;                       /* the debugger took it since: its own comes first */
	g->control |= KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	g->arch.debugreg[bp->slot] = bp->addr;
	*dr7 = (*dr7 & ~MEND_DR7_SLOT(bp->slot)) | DR7_L(bp->slot);
}

/* A #DB of the guest's own that KVM brought here only because our
 * breakpoint put the vCPU in guest-debug mode: back to the guest. */
static void mend_reflect_db(struct vcpu *vcpu, uint64_t dr6)
{
	struct x86_debugregs dr;
	if (kvm_op_get_debugregs(vcpu, &dr) == 0) {
		dr.dr6 = dr6;
		kvm_op_set_debugregs(vcpu, &dr);
	}
	kvm_op_inject_exception(vcpu, X86_DB, false, 0);
}

/* The exit after the step over the #PF entry's first instruction: the
 * breakpoint goes back; true when the exit was that step's own trap. */
static bool mend_stepped_over(struct vcpu *vcpu, struct kvm_vcpu_state *v,
			      const struct vm_exit *exit)
{
	v->mend_bp.stepping_over = false;
	kvm_op_set_debug(vcpu, &v->debug);
	return exit->reason == VM_EXIT_DB && (exit->db.dr6 & DR6_BS) && !v->debug.single_step;
}

bool kvm_syscall_mend_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_mend_bp *bp = &v->mend_bp;
	if (bp->stepping_over && mend_stepped_over(vcpu, v, exit))
		return true;
	if (exit->reason != VM_EXIT_DB || !bp->addr)
		return false;
	bool ours = (exit->db.dr6 & DR6_B(bp->slot)) && exit->db.pc == bp->addr &&
		    !(v->debug.use_hw_bp && (v->debug.dr7 & (DR7_L(bp->slot) | DR7_G(bp->slot))));
	if (ours)
		exit->db.dr6 &= ~DR6_B(bp->slot);
	bool debugger = v->debug.single_step || v->debug.use_hw_bp;
	if (exit->db.dr6 & (DR6_B(0) | DR6_B(1) | DR6_B(2) | DR6_B(3) | DR6_BS)) {
		if (debugger)
			return false;             /* the debugger's, with ours taken out */
		mend_reflect_db(vcpu, exit->db.dr6);
		return true;
	}
	if (!ours)
		return false;
	struct x86_sregs sregs;
	if (kvm_op_get_sregs(vcpu, &sregs) == 0 &&
	    kvm_fallback_syscall_mended(vcpu, &sregs, exit->db.pc, exit))
		return !v->debug.single_step;
	/* an ordinary #PF: one step past the breakpoint, then it is back */
	bp->stepping_over = true;
	return kvm_op_set_debug(vcpu, &v->debug) == 0;
}
