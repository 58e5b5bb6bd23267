/* engine/emu/emu_exec_sys.c — system instructions: interrupt flag, HLT,
 * port I/O, software interrupts, IRET, descriptor tables, control and
 * debug registers, segment registers, MSRs, CPUID, TSC, SYSCALL/SYSRET,
 * SWAPGS, XSETBV, TLB invalidation (INVLPG, INVPCID), CLAC/STAC, RDPID.
 * Privilege checks raise #GP(0) as the SDM says; with CR4.UMIP, SGDT,
 * SIDT, SLDT, STR and SMSW outside ring 0 too. */
#include "engine/emu/emu_core.h"

#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"

#define OP0 (in->op[0])
#define OP1 (in->op[1])

static void need_cpl0(struct emu_cpu *cpu)
{
	if (emu_core_of(cpu)->cpl != 0)
		emu_gp(cpu, 0);
}

static bool iopl_ok(struct emu_cpu *cpu)
{
	if (!(cpu->sregs.cr0 & CR0_PE))
		return true;
	return emu_core_of(cpu)->cpl <= ((cpu->rflags & RFLAGS_IOPL_MASK) >> 12);
}

/* UMIP: the descriptor-table and machine-status stores are ring 0 only. */
static void umip_check(struct emu_cpu *cpu)
{
	if ((cpu->sregs.cr4 & EMU_CR4_UMIP) && emu_core_of(cpu)->cpl != 0)
		emu_gp(cpu, 0);
}

/* A fault the platform raised with emu_raise() while we called it. */
static void platform_fault(struct emu_cpu *cpu)
{
	if (cpu->pending.exception) {
		cpu->pending.exception = false;
		emu_fault(cpu, cpu->pending.vector, cpu->pending.has_error_code,
			  cpu->pending.error_code);
	}
}

static void h_cli(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (!iopl_ok(cpu))
		emu_gp(cpu, 0);
	cpu->rflags &= ~RFLAGS_IF;
}

static void h_sti(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (!iopl_ok(cpu))
		emu_gp(cpu, 0);
	if (!(cpu->rflags & RFLAGS_IF))
		cpu->interrupt_shadow = EMU_SHADOW_STI;
	cpu->rflags |= RFLAGS_IF;
}

static void h_hlt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	need_cpl0(cpu);
	cpu->halted = true;
	struct emu_core *c = emu_core_of(cpu);
	if (emu_dbg_irq_blocked(cpu) && (cpu->rflags & RFLAGS_IF) && !c->hlt_step) {
		/* stepped with interrupts held off, it would never wake: run to
		 * the next instruction instead, unstepped (emu_core.h) */
		struct engine_debug run = cpu->debugger;
		c->hlt_saved = cpu->debugger;
		c->hlt_step = true;
		c->hlt_next = cpu->rip;
		c->hlt_rsp = cpu->gpr[EMU_RSP];
		run.single_step = false;
		run.block_irq = false;
		emu_dbg_set_debug(cpu, &run);
	}
}

static void h_in(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = OP0.size;
	uint16_t port = (uint16_t)(OP1.kind == EMU_OP_IMM ? (uint64_t)OP1.val & 0xff
							  : cpu->gpr[EMU_RDX] & 0xffff);
	if (!iopl_ok(cpu))
		emu_gp(cpu, 0);
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_io(cpu, port, size);
	emu_gpr_set(cpu, EMU_RAX, size, emu_pio_in(cpu, port, size));
}

static void h_out(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned size = OP1.size;
	uint16_t port = (uint16_t)(OP0.kind == EMU_OP_IMM ? (uint64_t)OP0.val & 0xff
							  : cpu->gpr[EMU_RDX] & 0xffff);
	if (!iopl_ok(cpu))
		emu_gp(cpu, 0);
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_io(cpu, port, size);
	emu_pio_out(cpu, port, size, cpu->gpr[EMU_RAX] & emu_mask(size));
}

/* INT3 (CC or CD 03): the debugger's breakpoint exit (RIP stays at the
 * INT3, as KVM reports it), or #BP for the guest with RIP after it. */
static void h_int3(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (emu_dbg_int3(cpu, emu_linear(cpu, EMU_CS, cpu->insn_start_rip)))
		emu_leave(cpu);
	emu_deliver(cpu, X86_BP, EMU_EV_SOFT, false, 0);
}

static void h_int(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if ((uint8_t)OP0.val == X86_BP) {
		h_int3(cpu, in);
		return;
	}
	emu_deliver(cpu, (uint8_t)OP0.val, EMU_EV_SOFT, false, 0);
}

static void h_into(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (cpu->rflags & RFLAGS_OF)
		emu_deliver(cpu, X86_OF, EMU_EV_SOFT, false, 0);
}

static void h_int1(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	/* emu_debug.c queues the #DB trap (RIP is already past the INT1) */
	emu_dbg_icebp(cpu);
	emu_core_of(cpu)->event_in_insn = true;
}

static void h_iret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_iret(cpu, in->osize);
}

static void h_ud(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	emu_ud(cpu);
}

static void h_fence(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)cpu;
	(void)in;
}

static void h_cache(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	need_cpl0(cpu);
}

/* --- descriptor tables ----------------------------------------------------------- */

static void h_lgdt_lidt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t lin = emu_op_lin(cpu, in, &OP0);
	uint16_t limit = (uint16_t)emu_read(cpu, lin, 2);
	uint64_t base;
	if (emu_long64(cpu))
		base = emu_read(cpu, lin + 2, 8);
	else
		base = emu_read(cpu, lin + 2, 4) & (in->osize == 2 ? 0xffffffull : 0xffffffffull);
	struct x86_dtable *t = in->mnemonic == ZYDIS_MNEMONIC_LGDT ? &cpu->sregs.gdt
								  : &cpu->sregs.idt;
	t->base = base;
	t->limit = limit;
}

static void h_sgdt_sidt(struct emu_cpu *cpu, const struct emu_insn *in)
{
	const struct x86_dtable *t = in->mnemonic == ZYDIS_MNEMONIC_SGDT ? &cpu->sregs.gdt
									  : &cpu->sregs.idt;
	umip_check(cpu);
	uint64_t lin = emu_op_lin(cpu, in, &OP0);
	uint8_t buf[10];
	unsigned n = emu_long64(cpu) ? 10 : 6;
	memcpy(buf, &t->limit, 2);
	memcpy(buf + 2, &t->base, 8);
	emu_write_bytes(cpu, lin, buf, n, false);
}

static void h_lldt_ltr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (!(cpu->sregs.cr0 & CR0_PE))
		emu_ud(cpu);
	need_cpl0(cpu);
	uint16_t sel = (uint16_t)emu_op_read(cpu, in, 0);
	bool ltr = in->mnemonic == ZYDIS_MNEMONIC_LTR;
	struct x86_segment *s = ltr ? &cpu->sregs.tr : &cpu->sregs.ldt;
	if ((sel & ~3u) == 0) {
		if (ltr)
			emu_gp(cpu, 0);
		memset(s, 0, sizeof(*s));
		s->unusable = 1;
		return;
	}
	if (sel & 4)
		emu_gp(cpu, sel & ~3u);
	uint64_t hi = 0;
	bool lm = cpu->sregs.efer & EFER_LMA;
	uint64_t d = emu_read_desc(cpu, sel, lm ? &hi : NULL);
	struct x86_segment n;
	x86_seg_decode(d, sel, &n);
	bool ok = !n.s && (ltr ? (n.type == 9 || n.type == 1) : n.type == 2);
	if (!ok)
		emu_gp(cpu, sel & ~3u);
	if (!n.present)
		emu_fault(cpu, X86_NP, true, sel & ~3u);
	if (lm)
		n.base |= hi << 32;
	if (ltr) {
		/* mark it busy in the GDT, as LTR does */
		uint64_t at = cpu->sregs.gdt.base + (sel & ~7u) + 5;
		emu_write_sys(cpu, at, 1, (uint8_t)((d >> 40) | 0x2));
		n.type |= 2;
	}
	*s = n;
}

static void h_sldt_str(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint16_t sel = in->mnemonic == ZYDIS_MNEMONIC_STR ? cpu->sregs.tr.selector
							  : cpu->sregs.ldt.selector;
	umip_check(cpu);
	emu_op_write(cpu, in, 0, sel);
}

/* --- VERR, VERW, LAR, LSL: descriptor checks that set ZF instead of faulting --- */

/* The descriptor a selector names, or false where these instructions give
 * ZF=0: a null selector, one beyond its table's limit, an unusable LDT. */
static bool probe_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *desc)
{
	uint64_t base, limit;
	if (!(sel & ~3u))
		return false;
	if (sel & SEL_TI_LDT) {
		if (cpu->sregs.ldt.unusable || !cpu->sregs.ldt.present)
			return false;
		base = cpu->sregs.ldt.base;
		limit = cpu->sregs.ldt.limit;
	} else {
		base = cpu->sregs.gdt.base;
		limit = cpu->sregs.gdt.limit;
	}
	if ((sel & ~7u) + 7u > limit)
		return false;
	uint64_t lin = base + (sel & ~7u);
	*desc = emu_read_sys(cpu, emu_long64(cpu) ? lin : (uint32_t)lin, 8);
	return true;
}

/* Which descriptors LAR/LSL may report besides code and data segments. */
static bool system_type_visible(struct emu_cpu *cpu, unsigned type, bool lar)
{
	if (type == SYS_TYPE_LDT || type == SYS_TYPE_TSS_AVAIL || type == SYS_TYPE_TSS_BUSY)
		return true;
	if (emu_long64(cpu))
		return lar && type == 0xc;                  /* 64-bit call gate */
	return type == 1 || type == 3 || (lar && (type == 4 || type == 5 || type == 0xc));
}

/* The privilege rule they share: conforming code is visible at any CPL. */
static bool desc_visible(struct emu_cpu *cpu, uint16_t sel, uint64_t d)
{
	unsigned type = (d >> 40) & 0xf, dpl = (d >> 45) & 3;
	bool code = (d >> 44) & 1 && (type & SEG_TYPE_EXECUTABLE);
	if (code && (type & SEG_TYPE_CONFORMING))
		return true;
	unsigned cpl = emu_core_of(cpu)->cpl, rpl = sel & 3u;
	return dpl >= cpl && dpl >= rpl;
}

static void set_zf(struct emu_cpu *cpu, bool on)
{
	if (on)
		cpu->rflags |= RFLAGS_ZF;
	else
		cpu->rflags &= ~RFLAGS_ZF;
}

static void h_verr_verw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint16_t sel = (uint16_t)emu_op_read(cpu, in, 0);
	uint64_t d;
	bool ok = probe_desc(cpu, sel, &d) && ((d >> 44) & 1) && desc_visible(cpu, sel, d);
	if (ok) {
		unsigned type = (d >> 40) & 0xf;
		bool code = type & SEG_TYPE_EXECUTABLE;
		if (in->mnemonic == ZYDIS_MNEMONIC_VERW)
			ok = !code && (type & SEG_TYPE_WRITABLE);
		else
			ok = !code || (type & SEG_TYPE_READABLE);
	}
	set_zf(cpu, ok);
}

static void h_lar_lsl(struct emu_cpu *cpu, const struct emu_insn *in)
{
	bool lar = in->mnemonic == ZYDIS_MNEMONIC_LAR;
	uint16_t sel = (uint16_t)emu_op_read(cpu, in, 1);
	uint64_t d;
	bool ok = probe_desc(cpu, sel, &d);
	if (ok) {
		unsigned type = (d >> 40) & 0xf;
		ok = ((d >> 44) & 1 ? true : system_type_visible(cpu, type, lar)) &&
		     desc_visible(cpu, sel, d);
	}
	if (ok) {
		uint64_t v;
		if (lar) {
			v = (d >> 32) & 0x00f0ff00;
		} else {
			struct x86_segment s;
			x86_seg_decode(d, sel, &s);
			v = s.limit;
		}
		emu_op_write(cpu, in, 0, v);
	}
	set_zf(cpu, ok);
}

static void h_smsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	umip_check(cpu);
	emu_op_write(cpu, in, 0, cpu->sregs.cr0);
}

static void h_lmsw(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t v = emu_op_read(cpu, in, 0) & 0xf;
	uint64_t cr0 = (cpu->sregs.cr0 & ~0xeull) | v | (cpu->sregs.cr0 & CR0_PE);
	emu_write_cr(cpu, 0, cr0);
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_access(cpu, ENGINE_ACCESS_CR, 0, 8, true, cr0);
}

static void h_clts(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	need_cpl0(cpu);
	cpu->sregs.cr0 &= ~CR0_TS;
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_access(cpu, ENGINE_ACCESS_CR, 0, 8, true, cpu->sregs.cr0);
}

static void h_invlpg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	emu_tlb_flush_page(cpu, emu_op_lin(cpu, in, &OP0));
}

/* INVPCID type, [descriptor]: the TLB holds only the current PCID's
 * entries and global ones (emu_mem.c), so another PCID has nothing to drop. */
static void h_invpcid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	uint64_t type = emu_op_read(cpu, in, 0);
	uint64_t lin = emu_op_lin(cpu, in, &OP1);
	uint64_t pcid = emu_read(cpu, lin, 8), addr = emu_read(cpu, lin + 8, 8);
	bool pcide = cpu->sregs.cr4 & EMU_CR4_PCIDE;
	bool current = (cpu->sregs.cr3 & 0xfff) == pcid;
	if (type > 3 || (pcid >> 12))
		emu_gp(cpu, 0);
	if (type <= 1 && !pcide && pcid != 0)
		emu_gp(cpu, 0);
	switch (type) {
	case 0:
		if ((uint64_t)((int64_t)(addr << 16) >> 16) != addr)
			emu_gp(cpu, 0);
		if (current)
			emu_tlb_flush_page(cpu, addr);
		break;
	case 1:
		if (current)
			emu_tlb_flush_nonglobal(cpu);
		break;
	case 2: emu_tlb_flush(cpu); break;
	default: emu_tlb_flush_nonglobal(cpu); break;
	}
}

/* CLAC/STAC: RFLAGS.AC, which lets ring 0 reach user pages under SMAP. */
static void h_clac_stac(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (emu_core_of(cpu)->cpl != 0)
		emu_ud(cpu);
	if (in->mnemonic == ZYDIS_MNEMONIC_STAC) {
		cpu->rflags |= RFLAGS_AC;
	} else {
		cpu->rflags &= ~RFLAGS_AC;
		emu_tlb_ac_changed(cpu);
	}
}

/* --- MOV to/from CRn, DRn and segment registers ------------------------------------- */

static void mov_cr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	bool to_cr = OP0.rclass == EMU_RC_CR;
	unsigned cr = to_cr ? OP0.reg : OP1.reg;
	unsigned gpr = to_cr ? OP1.reg : OP0.reg;
	unsigned size = emu_long64(cpu) ? 8 : 4;
	if (to_cr) {
		uint64_t v = cpu->gpr[gpr] & emu_mask(size);
		emu_write_cr(cpu, cr, v);
		if (emu_core_of(cpu)->dbg_armed)
			emu_dbg_access(cpu, ENGINE_ACCESS_CR, cr, size, true, v);
		return;
	}
	uint64_t v;
	switch (cr) {
	case 0: v = cpu->sregs.cr0; break;
	case 2: v = cpu->sregs.cr2; break;
	case 3: v = cpu->sregs.cr3; break;
	case 4: v = cpu->sregs.cr4; break;
	case 8: v = emu_lapic_get_cr8(cpu); break;
	default: emu_ud(cpu);
	}
	emu_gpr_set(cpu, gpr, size, v);
}

static void mov_dr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	need_cpl0(cpu);
	bool to_dr = OP0.rclass == EMU_RC_DR;
	unsigned dr = to_dr ? OP0.reg : OP1.reg;
	unsigned gpr = to_dr ? OP1.reg : OP0.reg;
	if (dr > 7)
		emu_ud(cpu);
	if (emu_dbg_mov_dr(cpu, dr, gpr, to_dr)) {
		/* #UD or #DB (GD): a fault, the MOV did not happen */
		platform_fault(cpu);
	}
	if (!emu_long64(cpu) && !to_dr)
		cpu->gpr[gpr] = (uint32_t)cpu->gpr[gpr];
}

static void mov_sreg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (OP0.kind == EMU_OP_REG && OP0.rclass == EMU_RC_SEG) {
		if (OP0.reg == EMU_CS || OP0.reg > EMU_GS)
			emu_ud(cpu);
		uint16_t sel = (uint16_t)emu_op_read(cpu, in, 1);
		emu_load_seg(cpu, OP0.reg, sel);
		if (OP0.reg == EMU_SS)
			cpu->interrupt_shadow = EMU_SHADOW_MOVSS;
		return;
	}
	uint16_t sel = emu_segreg(cpu, OP1.reg)->selector;
	if (OP0.kind == EMU_OP_MEM)
		emu_write(cpu, emu_op_lin(cpu, in, &OP0), 2, sel);
	else
		emu_gpr_set(cpu, OP0.reg, OP0.size == 2 ? 2 : OP0.size, sel);
}

void emu_mov_special(struct emu_cpu *cpu, const struct emu_insn *in)
{
	uint8_t rc = OP0.kind == EMU_OP_REG && OP0.rclass >= EMU_RC_SEG ? OP0.rclass : OP1.rclass;
	switch (rc) {
	case EMU_RC_CR: mov_cr(cpu, in); break;
	case EMU_RC_DR: mov_dr(cpu, in); break;
	case EMU_RC_SEG: mov_sreg(cpu, in); break;
	default: emu_unimplemented(cpu, in);
	}
}

/* --- MSRs, CPUID, TSC ----------------------------------------------------------------- */

static void h_rdmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	need_cpl0(cpu);
	uint32_t msr = (uint32_t)cpu->gpr[EMU_RCX];
	uint64_t v = 0;
	if (emu_platform_msr(cpu, msr, &v, false))
		platform_fault(cpu);
	else if (!emu_msr_get(cpu, msr, &v))
		emu_gp(cpu, 0);
	emu_gpr_set(cpu, EMU_RAX, 4, v);
	emu_gpr_set(cpu, EMU_RDX, 4, v >> 32);
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_access(cpu, ENGINE_ACCESS_MSR, msr, 8, false, v);
}

static void h_wrmsr(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	need_cpl0(cpu);
	uint32_t msr = (uint32_t)cpu->gpr[EMU_RCX];
	uint64_t v = (cpu->gpr[EMU_RAX] & 0xffffffffull) | (cpu->gpr[EMU_RDX] << 32);
	if (emu_platform_msr(cpu, msr, &v, true)) {
		platform_fault(cpu);
		emu_core_of(cpu)->budget_end = cpu->retired + 1;   /* timers may have moved */
	} else if (!emu_msr_set(cpu, msr, v)) {
		emu_gp(cpu, 0);
	}
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_access(cpu, ENGINE_ACCESS_MSR, msr, 8, true, v);
}

static void h_cpuid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	uint32_t r[4];
	emu_cpuid(cpu, (uint32_t)cpu->gpr[EMU_RAX], (uint32_t)cpu->gpr[EMU_RCX], r);
	emu_gpr_set(cpu, EMU_RAX, 4, r[0]);
	emu_gpr_set(cpu, EMU_RBX, 4, r[1]);
	emu_gpr_set(cpu, EMU_RCX, 4, r[2]);
	emu_gpr_set(cpu, EMU_RDX, 4, r[3]);
}

static void h_rdtsc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if ((cpu->sregs.cr4 & (1ull << 2)) && emu_core_of(cpu)->cpl != 0)   /* CR4.TSD */
		emu_gp(cpu, 0);
	uint64_t t = emu_tsc(cpu);
	emu_gpr_set(cpu, EMU_RAX, 4, t);
	emu_gpr_set(cpu, EMU_RDX, 4, t >> 32);
	if (in->mnemonic == ZYDIS_MNEMONIC_RDTSCP)
		emu_gpr_set(cpu, EMU_RCX, 4, cpu->msr_tsc_aux);
}

/* RDPMC: there are no performance counters (CPUID leaf 0xa is 0), so
 * every counter index is invalid: #GP, as on hardware. */
static void h_rdpmc(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	emu_gp(cpu, 0);
}

/* RDPID: IA32_TSC_AUX into a 64-bit register, at any CPL. */
static void h_rdpid(struct emu_cpu *cpu, const struct emu_insn *in)
{
	emu_gpr_set(cpu, OP0.reg, emu_long64(cpu) ? 8 : 4, cpu->msr_tsc_aux);
}

static void h_xsetbv(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (!(cpu->sregs.cr4 & (1ull << 18)))
		emu_ud(cpu);
	need_cpl0(cpu);
	uint64_t v = (cpu->gpr[EMU_RAX] & 0xffffffffull) | (cpu->gpr[EMU_RDX] << 32);
	if ((uint32_t)cpu->gpr[EMU_RCX] != 0 || !(v & 1) || (v & ~(uint64_t)EMU_XCR0_SUPPORTED))
		emu_gp(cpu, 0);
	emu_core_of(cpu)->xcr0 = v;
}

static void h_xgetbv(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (!(cpu->sregs.cr4 & (1ull << 18)))
		emu_ud(cpu);
	if ((uint32_t)cpu->gpr[EMU_RCX] != 0)
		emu_gp(cpu, 0);
	uint64_t v = emu_core_of(cpu)->xcr0;
	emu_gpr_set(cpu, EMU_RAX, 4, v);
	emu_gpr_set(cpu, EMU_RDX, 4, v >> 32);
}

/* --- SYSCALL / SYSRET / SWAPGS ---------------------------------------------------------- */

static struct x86_segment flat_seg(uint16_t sel, uint8_t type, bool code64, unsigned dpl)
{
	return (struct x86_segment){ .base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
				     .present = 1, .s = 1, .l = code64, .db = !code64, .g = 1,
				     .dpl = (uint8_t)dpl };
}

/* SYSCALL and SYSRET as Intel CPUs do them: 64-bit mode only (#UD
 * elsewhere, CSTAR is never used), CS and SS from STAR with fixed flat
 * attributes, RFLAGS masked by FMASK into ring 0 and restored from R11
 * (bits 0x3c7fd7) out of it; the RFLAGS each produces decides its
 * single-step trap (emu_debug.h). */
static void h_syscall(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	struct emu_core *c = emu_core_of(cpu);
	if (!(cpu->sregs.efer & EFER_SCE) || !emu_long64(cpu))
		emu_ud(cpu);
	uint16_t sel = (uint16_t)((cpu->msr_star >> 32) & 0xfffc);
	uint64_t flags = emu_dbg_rflags_image(cpu);
	cpu->gpr[EMU_RCX] = cpu->rip;
	cpu->gpr[EMU_R11] = flags & ~RFLAGS_RF;
	cpu->rflags = (flags & ~(cpu->msr_fmask | RFLAGS_RF)) | RFLAGS_FIXED1;
	cpu->sregs.cs = flat_seg(sel, 0xb, true, 0);
	cpu->sregs.ss = flat_seg((uint16_t)(sel + 8), 0x3, false, 0);
	c->cpl = 0;
	cpu->rip = cpu->msr_lstar;
	emu_update_mode(cpu);
	emu_dbg_rflags_loaded(cpu);        /* the stepping debugger's TF follows FMASK */
	emu_tlb_ac_changed(cpu);
	emu_dbg_tf_from_result(cpu);
}

static void h_sysret(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_core *c = emu_core_of(cpu);
	if (!(cpu->sregs.efer & EFER_SCE) || !emu_long64(cpu))
		emu_ud(cpu);
	need_cpl0(cpu);
	uint16_t base = (uint16_t)(cpu->msr_star >> 48);
	bool to64 = in->osize == 8;
	if (to64 && !((int64_t)(cpu->gpr[EMU_RCX] << 16) >> 16 == (int64_t)cpu->gpr[EMU_RCX]))
		emu_gp(cpu, 0);
	cpu->rflags = (cpu->gpr[EMU_R11] & 0x3c7fd7ull) | RFLAGS_FIXED1;
	if (to64) {
		cpu->sregs.cs = flat_seg((uint16_t)((base + 16) | 3), 0xb, true, 3);
		cpu->rip = cpu->gpr[EMU_RCX];
	} else {
		cpu->sregs.cs = flat_seg((uint16_t)(base | 3), 0xb, false, 3);
		cpu->rip = (uint32_t)cpu->gpr[EMU_RCX];
	}
	cpu->sregs.ss = flat_seg((uint16_t)((base + 8) | 3), 0x3, false, 3);
	c->cpl = 3;
	emu_update_mode(cpu);
	emu_dbg_rflags_loaded(cpu);
	emu_tlb_ac_changed(cpu);
	emu_dbg_tf_from_result(cpu);
}

static void h_swapgs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if (!emu_long64(cpu))
		emu_ud(cpu);
	need_cpl0(cpu);
	uint64_t t = cpu->sregs.gs.base;
	cpu->sregs.gs.base = cpu->msr_kernel_gs_base;
	cpu->msr_kernel_gs_base = t;
}

static const struct emu_handler_entry emu_exec_sys_table[] = {
	{ ZYDIS_MNEMONIC_CLI, h_cli },
	{ ZYDIS_MNEMONIC_STI, h_sti },
	{ ZYDIS_MNEMONIC_HLT, h_hlt },
	{ ZYDIS_MNEMONIC_PAUSE, h_fence },
	{ ZYDIS_MNEMONIC_SERIALIZE, h_fence },
	{ ZYDIS_MNEMONIC_IN, h_in },
	{ ZYDIS_MNEMONIC_OUT, h_out },
	{ ZYDIS_MNEMONIC_INT, h_int },
	{ ZYDIS_MNEMONIC_INT3, h_int3 },
	{ ZYDIS_MNEMONIC_INTO, h_into },
	{ ZYDIS_MNEMONIC_INT1, h_int1 },
	{ ZYDIS_MNEMONIC_IRET, h_iret },
	{ ZYDIS_MNEMONIC_IRETD, h_iret },
	{ ZYDIS_MNEMONIC_IRETQ, h_iret },
	{ ZYDIS_MNEMONIC_UD0, h_ud },
	{ ZYDIS_MNEMONIC_UD1, h_ud },
	{ ZYDIS_MNEMONIC_UD2, h_ud },
	{ ZYDIS_MNEMONIC_LFENCE, h_fence },
	{ ZYDIS_MNEMONIC_MFENCE, h_fence },
	{ ZYDIS_MNEMONIC_SFENCE, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCH, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCHNTA, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCHT0, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCHT1, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCHT2, h_fence },
	{ ZYDIS_MNEMONIC_PREFETCHW, h_fence },
	{ ZYDIS_MNEMONIC_CLFLUSH, h_fence },
	{ ZYDIS_MNEMONIC_CLFLUSHOPT, h_fence },
	{ ZYDIS_MNEMONIC_INVD, h_cache },
	{ ZYDIS_MNEMONIC_WBINVD, h_cache },
	{ ZYDIS_MNEMONIC_LGDT, h_lgdt_lidt },
	{ ZYDIS_MNEMONIC_LIDT, h_lgdt_lidt },
	{ ZYDIS_MNEMONIC_SGDT, h_sgdt_sidt },
	{ ZYDIS_MNEMONIC_SIDT, h_sgdt_sidt },
	{ ZYDIS_MNEMONIC_LLDT, h_lldt_ltr },
	{ ZYDIS_MNEMONIC_LTR, h_lldt_ltr },
	{ ZYDIS_MNEMONIC_SLDT, h_sldt_str },
	{ ZYDIS_MNEMONIC_STR, h_sldt_str },
	{ ZYDIS_MNEMONIC_SMSW, h_smsw },
	{ ZYDIS_MNEMONIC_VERR, h_verr_verw },
	{ ZYDIS_MNEMONIC_VERW, h_verr_verw },
	{ ZYDIS_MNEMONIC_LAR, h_lar_lsl },
	{ ZYDIS_MNEMONIC_LSL, h_lar_lsl },
	{ ZYDIS_MNEMONIC_LMSW, h_lmsw },
	{ ZYDIS_MNEMONIC_CLTS, h_clts },
	{ ZYDIS_MNEMONIC_INVLPG, h_invlpg },
	{ ZYDIS_MNEMONIC_INVPCID, h_invpcid },
	{ ZYDIS_MNEMONIC_CLAC, h_clac_stac },
	{ ZYDIS_MNEMONIC_STAC, h_clac_stac },
	{ ZYDIS_MNEMONIC_RDPID, h_rdpid },
	{ ZYDIS_MNEMONIC_RDPMC, h_rdpmc },
	{ ZYDIS_MNEMONIC_RDMSR, h_rdmsr },
	{ ZYDIS_MNEMONIC_WRMSR, h_wrmsr },
	{ ZYDIS_MNEMONIC_CPUID, h_cpuid },
	{ ZYDIS_MNEMONIC_RDTSC, h_rdtsc },
	{ ZYDIS_MNEMONIC_RDTSCP, h_rdtsc },
	{ ZYDIS_MNEMONIC_XSETBV, h_xsetbv },
	{ ZYDIS_MNEMONIC_XGETBV, h_xgetbv },
	{ ZYDIS_MNEMONIC_SYSCALL, h_syscall },
	{ ZYDIS_MNEMONIC_SYSRET, h_sysret },
	{ ZYDIS_MNEMONIC_SWAPGS, h_swapgs },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_sys_table);
