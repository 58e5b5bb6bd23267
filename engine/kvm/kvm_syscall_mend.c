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
 * registers still tell what happened. Then that #PF is undone and the
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
