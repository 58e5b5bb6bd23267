/* engine/kvm/kvm_debug.c — what the debugger asks of a KVM vCPU: guest
 * debug mode (single step, INT3 and hardware breakpoint interception),
 * exception injection, and guest MOV DR reported as VM_EXIT_MOV_DR
 * (engine_debug.intercept_mov_dr) on hosts that trap it under DR7.GD. */
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
		/* where the host traps it, every guest MOV DR exits with BD */
		if (dbg->intercept_mov_dr)
			g.arch.debugreg[7] |= DR7_GD;
	}
	if (g.control)
		g.control |= KVM_GUESTDBG_ENABLE;
	kvm_syscall_mend_load(v, &g);
	int r = kvm_ioctl(v->fd, KVM_SET_GUEST_DEBUG, &g);
	/* the MSR catches' VM-wide filter (kvm_msr_catch.c); stepping and
	 * breakpoints stand even where it fails */
	int m = kvm_msr_catch_apply(vcpu, &dbg->access);
	return r < 0 ? r : m;
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

/* ---- guest MOV DR under our DR7.GD ---- */

/* MOV to (0F 23 /r) or from (0F 21 /r) DRn at the start of buf, after
 * legacy prefixes and, in 64-bit mode, one REX. Returns its length, 0
 * when buf holds no such instruction. */
unsigned kvm_mov_dr_decode(const uint8_t *buf, unsigned len, bool long64, struct kvm_mov_dr *m)
{
	static const uint8_t legacy[] = { 0x66, 0x67, 0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65 };
	unsigned i = 0;
	uint8_t rex = 0;
	while (i < len && memchr(legacy, buf[i], sizeof(legacy)))
		i++;
	if (long64 && i < len && (buf[i] & 0xf0) == 0x40)
		rex = buf[i++];
	if (i + 3 > len || buf[i] != 0x0f || (buf[i + 1] != 0x21 && buf[i + 1] != 0x23))
		return 0;
	uint8_t modrm = buf[i + 2];
	m->to_dr = buf[i + 1] == 0x23;
	m->dr = (uint8_t)(((modrm >> 3) & 7) | ((rex & 4) << 1));
	m->gpr = (uint8_t)((modrm & 7) | ((rex & 1) << 3));
	return i + 3;
}

/* x86 register number -> struct x86_regs field */
static uint64_t *gpr_of(struct x86_regs *r, unsigned n)
{
	uint64_t *const regs[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, &r->rsp, &r->rbp,
				     &r->rsi, &r->rdi, &r->r8, &r->r9, &r->r10, &r->r11,
				     &r->r12, &r->r13, &r->r14, &r->r15 };
	return regs[n & 15];
}

/* The MOV itself on the guest's own file (KVM keeps it apart from ours):
 * 0, or the exception it raises instead (#UD, #GP). */
static int mov_dr_do(struct vcpu *vcpu, const struct kvm_mov_dr *m, const struct x86_sregs *s,
		     struct x86_regs *regs)
{
	bool long64 = x86_mode_of(s) == X86_MODE_LONG64;
	struct x86_debugregs dr;
	if (m->dr > 7 || ((m->dr == 4 || m->dr == 5) && (s->cr4 & CR4_DE)))
		return X86_UD;
	if (kvm_op_get_debugregs(vcpu, &dr) < 0)
		return X86_UD;
	unsigned r = m->dr == 4 ? 6 : m->dr == 5 ? 7 : m->dr;
	uint64_t *reg = r == 6 ? &dr.dr6 : r == 7 ? &dr.dr7 : &dr.db[r];
	uint64_t *gpr = gpr_of(regs, m->gpr);
	if (!m->to_dr) {
		*gpr = long64 ? *reg : (uint32_t)*reg;
		return 0;
	}
	uint64_t v = long64 ? *gpr : (uint32_t)*gpr;
	if (r >= 6 && (v >> 32))
		return X86_GP;
	*reg = v;
	return kvm_op_set_debugregs(vcpu, &dr) < 0 ? X86_GP : 0;
}

/* A #DB with BD while we load DR7.GD for intercept_mov_dr: the guest's
 * own GD (its #DB, left as it is), or a MOV DR of a guest that never set
 * GD, done here on its file and reported as VM_EXIT_MOV_DR. False when
 * it is neither (the exit stays a #DB). */
bool kvm_mov_dr_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct x86_debugregs dr;
	struct kvm_sregs ks;
	struct x86_sregs s;
	struct x86_regs regs;
	struct kvm_mov_dr m;
	uint8_t buf[15];

	if (!(exit->db.dr6 & DR6_BD) || !v->debug.intercept_mov_dr ||
	    kvm_op_get_debugregs(vcpu, &dr) < 0 || (dr.dr7 & DR7_GD))
		return false;
	if (kvm_ioctl(v->fd, KVM_GET_SREGS, &ks) < 0 || kvm_op_get_regs(vcpu, &regs) < 0)
		return false;
	kvm_sregs_from(&s, &ks);
	unsigned got = kvm_fetch_insn(v, &ks, exit->db.pc, buf, sizeof(buf));
	unsigned len = kvm_mov_dr_decode(buf, got, x86_mode_of(&s) == X86_MODE_LONG64, &m);
	if (!len)
		return false;
	int fault = mov_dr_do(vcpu, &m, &s, &regs);
	memset(exit, 0, sizeof(*exit));
	if (fault) {
		kvm_op_inject_exception(vcpu, (uint8_t)fault, fault == X86_GP, 0);
		exit->reason = VM_EXIT_NONE;
		return true;
	}
	regs.rip += len;
	kvm_op_set_regs(vcpu, &regs);
	exit->reason = VM_EXIT_MOV_DR;
	exit->mov_dr.dr = m.dr;
	exit->mov_dr.gpr = m.gpr;
	exit->mov_dr.is_write = m.to_dr;
	return true;
}
