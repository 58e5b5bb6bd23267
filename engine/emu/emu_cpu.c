/* engine/emu/emu_cpu.c — the vCPU as a machine: power-on, INIT and
 * STARTUP states, control-register and EFER writes with their mode
 * changes, and the core's own MSRs (the CPUID model is emu_cpuid.c; the
 * LAPIC's MSRs, IA32_APIC_BASE, x2APIC 0x800-0x8ff and TSC_DEADLINE, are
 * emu_lapic.c's).
 *
 * MSRs (anything else is #GP, as on hardware; Linux probes many with
 * rdmsr_safe and copes):
 *   0x10 TSC (guest time + a per-vCPU offset), 0x17 PLATFORM_ID (0),
 *   0x3a FEATURE_CONTROL (locked, no VMX/SMX: writes #GP),
 *   0x8b BIOS_SIGN/UCODE_REV (revision 1 in the high half; writes ignored),
 *   0xce PLATFORM_INFO (non-turbo ratio 10 = 1 GHz at a 100 MHz bus; no
 *   CPUID faulting), 0xfe MTRRCAP (8 variable ranges, fixed ranges, WC),
 *   0x10a ARCH_CAPABILITIES (read-only, see emu_cpuid.c),
 *   0x174-0x176 SYSENTER_CS/ESP/EIP (stored; SYSENTER itself is not
 *   advertised), 0x179 MCG_CAP (0 banks), 0x17a MCG_STATUS,
 *   0x1a0 MISC_ENABLE (fast strings; BTS and PEBS unavailable),
 *   0x200-0x20f MTRR PHYSBASE/PHYSMASK, 0x250/0x258/0x259/0x268-0x26f fixed
 *   MTRRs, 0x277 PAT, 0x2ff MTRR_DEF_TYPE (stored and checked; emu has no
 *   memory types, so they change nothing else),
 *   0xc0000080 EFER (SCE, LME, NXE; LMA read-only), 0xc0000081-84
 *   STAR/LSTAR/CSTAR/FMASK, 0xc0000100-0xc0000103 FS_BASE/GS_BASE/
 *   KERNEL_GS_BASE/TSC_AUX.
 * Without firmware, the MTRRs start as a BIOS leaves them: enabled, default
 * type write-back, no ranges. */
#include "engine/emu/emu_core.h"

#include <string.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"
#include "engine/emu/emu_stats.h"

#define MSR_TSC            0x10u
#define MSR_PLATFORM_ID    0x17u
#define MSR_FEATURE_CONTROL 0x3au
#define MSR_BIOS_SIGN      0x8bu
#define MSR_PLATFORM_INFO  0xceu
#define MSR_MTRRCAP        0xfeu
#define MSR_ARCH_CAPABILITIES 0x10au
#define MSR_SYSENTER_CS    0x174u
#define MSR_SYSENTER_ESP   0x175u
#define MSR_SYSENTER_EIP   0x176u
#define MSR_MCG_CAP        0x179u
#define MSR_MCG_STATUS     0x17au
#define MSR_MISC_ENABLE    0x1a0u
#define MSR_PAT            0x277u
#define MSR_MTRR_DEF_TYPE  0x2ffu
#define MSR_TSC_AUX        0xc0000103u
#define PAT_DEFAULT        0x0007040600070406ull

#define FEATURE_CONTROL_LOCKED 1ull
#define UCODE_REVISION     (1ull << 32)
#define PLATFORM_INFO_1GHZ (10ull << 8)
#define MTRRCAP_VALUE      0x508ull      /* 8 variable, fixed ranges, WC */
#define MTRR_DEF_WB_ON     0x806ull      /* enabled, fixed off, default WB */
#define MISC_ENABLE_FAST_STRINGS 1ull
#define MISC_ENABLE_RESET  (MISC_ENABLE_FAST_STRINGS | (1ull << 11) | (1ull << 12))
/* Not affected: RDCL_NO, SSB_NO, MDS_NO, PSCHANGE_MC_NO, TAA_NO, SBDR_SSDP_NO,
 * FBSDP_NO, PSDP_NO, BHI_NO, PBRSB_NO, GDS_NO, RFDS_NO. */
#define ARCH_CAP_VALUE ((1ull << 0) | (1ull << 4) | (1ull << 5) | (1ull << 6) | (1ull << 8) | \
			(1ull << 13) | (1ull << 14) | (1ull << 15) | (1ull << 20) | \
			(1ull << 24) | (1ull << 26) | (1ull << 27))

#define EFER_WRITABLE (EFER_SCE | EFER_LME | EFER_NXE)
/* CR4 bits a guest may set: those of the features emu_cpuid.c advertises. */
#define CR4_VALID (CR4_DE | CR4_PSE | CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | \
		   EMU_CR4_TSD | EMU_CR4_PCE | EMU_CR4_UMIP | EMU_CR4_PCIDE | \
		   EMU_CR4_OSXSAVE | EMU_CR4_SMEP | EMU_CR4_SMAP)
#define CR4_FLUSH (CR4_PAE | CR4_PGE | CR4_PSE | CR4_LA57 | EMU_CR4_PCIDE | EMU_CR4_SMEP | \
		   EMU_CR4_SMAP)
#define CR3_PCID_MASK 0xfffull
#define CR3_NOFLUSH   (1ull << 63)

struct x86_segment *emu_segreg(struct emu_cpu *cpu, unsigned seg)
{
	switch (seg) {
	case EMU_ES: return &cpu->sregs.es;
	case EMU_CS: return &cpu->sregs.cs;
	case EMU_SS: return &cpu->sregs.ss;
	case EMU_FS: return &cpu->sregs.fs;
	case EMU_GS: return &cpu->sregs.gs;
	default: return &cpu->sregs.ds;
	}
}

void emu_update_mode(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (cpu->sregs.efer & EFER_LMA)
		;                          /* CS.L decides 64-bit vs compatibility */
	else
		cpu->sregs.cs.l = 0;
	c->mode = (uint8_t)x86_mode_of(&cpu->sregs);
	if (c->mode == X86_MODE_REAL)
		c->cpl = 0;
}

static struct x86_segment real_seg(uint16_t sel, uint8_t type)
{
	return (struct x86_segment){ .base = (uint64_t)sel << 4, .limit = 0xffff, .selector = sel,
				     .type = type, .present = 1, .s = 1 };
}

/* The register state of RESET and INIT (SDM vol. 3 table 10-1). */
static void cpu_reset_regs(struct emu_cpu *cpu)
{
	uint64_t apic_base = cpu->sregs.apic_base;
	memset(cpu->gpr, 0, sizeof(cpu->gpr));
	cpu->gpr[EMU_RDX] = EMU_CPUID_SIGNATURE;
	cpu->rip = 0xfff0;
	cpu->rflags = RFLAGS_FIXED1;
	memset(&cpu->sregs, 0, sizeof(cpu->sregs));
	cpu->sregs.cs = real_seg(0xf000, 0xb);
	cpu->sregs.cs.base = 0xffff0000ull;
	cpu->sregs.ds = cpu->sregs.es = cpu->sregs.ss = cpu->sregs.fs = cpu->sregs.gs =
		real_seg(0, 0x3);
	cpu->sregs.ldt = (struct x86_segment){ .limit = 0xffff, .type = 2, .present = 1 };
	cpu->sregs.tr = (struct x86_segment){ .limit = 0xffff, .type = 3, .present = 1 };
	cpu->sregs.gdt.limit = cpu->sregs.idt.limit = 0xffff;
	cpu->sregs.cr0 = CR0_ET | (1ull << 29) | (1ull << 30);   /* ET, NW, CD */
	cpu->sregs.apic_base = apic_base;
	memset(&cpu->fpu, 0, sizeof(cpu->fpu));
	cpu->fpu.fcw = 0x37f;
	cpu->fpu.mxcsr = 0x1f80;
	emu_core_of(cpu)->xcr0 = 1;
	emu_replay_reset(cpu);
	emu_core_restart(cpu);
}

void emu_core_restart_keep_tlb(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	cpu->halted = false;
	cpu->interrupt_shadow = 0;
	memset(&cpu->pending, 0, sizeof(cpu->pending));
	c->shutdown = c->delivering = c->nmi_blocked = false;
	c->rep_pending = false;
	c->rep_batch = 0;
	c->cpl = (cpu->sregs.cr0 & CR0_PE) ? cpu->sregs.cs.dpl : 0;
	emu_update_mode(cpu);
	emu_dbg_reset(cpu);
}

void emu_core_restart(struct emu_cpu *cpu)
{
	emu_core_restart_keep_tlb(cpu);
	emu_tlb_flush(cpu);
}

void emu_cpu_reset(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	cpu_reset_regs(cpu);
	cpu->msr_star = cpu->msr_lstar = cpu->msr_cstar = cpu->msr_fmask = 0;
	cpu->msr_kernel_gs_base = cpu->msr_tsc_aux = 0;
	cpu->tsc_offset = 0;
	c->msr_pat = PAT_DEFAULT;
	c->msr_sysenter_cs = c->msr_sysenter_esp = c->msr_sysenter_eip = 0;
	c->msr_misc_enable = MISC_ENABLE_RESET;
	c->msr_mtrr_def = MTRR_DEF_WB_ON;
	memset(c->msr_mtrr_var, 0, sizeof(c->msr_mtrr_var));
	memset(c->msr_mtrr_fixed, 0, sizeof(c->msr_mtrr_fixed));
	cpu->wait_sipi = cpu->id != 0;
}

/* --- life cycle: shared by the engine (emu_engine.c) and emu_single.c ------ */

void emu_vm_init(struct emu_vm *evm, struct vm *vm, unsigned nr_cpus)
{
	evm->vm = vm;
	evm->nr_cpus = nr_cpus;
	pthread_mutex_init(&evm->warn_lock, NULL);
	emu_insn_stats_create(evm);
}

void emu_vm_fini(struct emu_vm *evm)
{
	pthread_mutex_destroy(&evm->warn_lock);
	emu_insn_stats_destroy(evm);
}

void emu_core_init(struct emu_cpu *cpu, struct emu_core *core, struct emu_vm *evm,
		   struct vcpu *vcpu)
{
	cpu->evm = evm;
	cpu->vcpu = vcpu;
	cpu->id = vcpu->id;
	cpu->core = core;
	emu_cpu_reset(cpu);
}

void emu_cpu_init(struct emu_cpu *cpu)
{
	cpu_reset_regs(cpu);
	cpu->wait_sipi = true;
}

void emu_cpu_sipi(struct emu_cpu *cpu, uint8_t vector)
{
	if (!cpu->wait_sipi)
		return;
	cpu->sregs.cs = real_seg((uint16_t)(vector << 8), 0xb);
	cpu->rip = 0;
	cpu->wait_sipi = false;
	cpu->halted = false;
	emu_update_mode(cpu);
	emu_vm_wake(cpu->evm, cpu);
}

/* --- control registers --------------------------------------------------- */

bool emu_efer_ok(const struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->sregs.efer;
	return !(v & ~(EFER_WRITABLE | EFER_LMA)) &&
	       !((cpu->sregs.cr0 & CR0_PG) && ((v ^ old) & EFER_LME));
}

void emu_write_efer(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->sregs.efer;
	if (!emu_efer_ok(cpu, v))
		emu_gp(cpu, 0);
	cpu->sregs.efer = (v & EFER_WRITABLE) | (old & EFER_LMA);
	emu_tlb_flush(cpu);
	emu_update_mode(cpu);
}

static void write_cr0(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->sregs.cr0;
	if (v >> 32)
		emu_gp(cpu, 0);
	v |= CR0_ET;
	if ((v & CR0_PG) && !(v & CR0_PE))
		emu_gp(cpu, 0);
	if ((v & (1ull << 29)) && !(v & (1ull << 30)))   /* NW without CD */
		emu_gp(cpu, 0);
	if ((v & CR0_PG) && !(old & CR0_PG) && (cpu->sregs.efer & EFER_LME)) {
		if (!(cpu->sregs.cr4 & CR4_PAE))
			emu_gp(cpu, 0);
		cpu->sregs.efer |= EFER_LMA;
	}
	if (!(v & CR0_PG) && (old & CR0_PG) && (cpu->sregs.efer & EFER_LMA)) {
		if (emu_long64(cpu))
			emu_gp(cpu, 0);
		cpu->sregs.efer &= ~EFER_LMA;
	}
	cpu->sregs.cr0 = v;
	if ((v ^ old) & (CR0_PG | CR0_PE | CR0_WP))
		emu_tlb_flush(cpu);
	emu_update_mode(cpu);
}

static void write_cr4(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->sregs.cr4;
	bool lma = cpu->sregs.efer & EFER_LMA;
	if (v & ~(CR4_VALID | (old & CR4_LA57)))
		emu_gp(cpu, 0);
	if (lma && !(v & CR4_PAE))
		emu_gp(cpu, 0);
	if (lma && ((v ^ old) & CR4_LA57))
		emu_gp(cpu, 0);
	/* PCIDE may only be set in long mode with PCID 0 in CR3 */
	if ((v & ~old & EMU_CR4_PCIDE) && (!lma || (cpu->sregs.cr3 & CR3_PCID_MASK)))
		emu_gp(cpu, 0);
	cpu->sregs.cr4 = v;
	if ((v ^ old) & CR4_FLUSH)
		emu_tlb_flush(cpu);
}

/* MOV to CR3: with CR4.PCIDE, bits 11:0 are the PCID and bit 63 asks to
 * keep its TLB entries (see emu_mem.c for what is kept). */
static void write_cr3(struct emu_cpu *cpu, uint64_t v)
{
	bool pcide = cpu->sregs.cr4 & EMU_CR4_PCIDE;
	bool keep = pcide && (v & CR3_NOFLUSH);
	uint64_t old = cpu->sregs.cr3;
	if (pcide)
		v &= ~CR3_NOFLUSH;
	if ((cpu->sregs.efer & EFER_LMA) && (v >> EMU_PHYS_ADDR_BITS))
		emu_gp(cpu, 0);
	cpu->sregs.cr3 = v;
	if (!keep || ((v ^ old) & CR3_PCID_MASK))
		emu_tlb_flush_nonglobal(cpu);
}

void emu_write_cr(struct emu_cpu *cpu, unsigned cr, uint64_t v)
{
	switch (cr) {
	case 0:
		write_cr0(cpu, v);
		break;
	case 2:
		cpu->sregs.cr2 = v;
		break;
	case 3:
		write_cr3(cpu, v);
		break;
	case 4:
		write_cr4(cpu, v);
		break;
	case 8:
		if (v & ~0xfull)
			emu_gp(cpu, 0);
		emu_lapic_set_cr8(cpu, v);
		cpu->sregs.cr8 = v;
		emu_core_of(cpu)->budget_end = cpu->retired + 1;   /* may unmask an interrupt */
		break;
	default:
		emu_ud(cpu);
	}
}

/* --- MSRs ----------------------------------------------------------------- */

/* Index into msr_mtrr_fixed / msr_mtrr_var, or -1. */
static int mtrr_fixed_index(uint32_t m)
{
	if (m == 0x250)
		return 0;
	if (m == 0x258 || m == 0x259)
		return 1 + (int)(m - 0x258);
	if (m >= 0x268 && m <= 0x26f)
		return 3 + (int)(m - 0x268);
	return -1;
}

static bool memtype_ok(uint64_t t)
{
	return t == 0 || t == 1 || t == 4 || t == 5 || t == 6;
}

/* Every byte a memory type (PAT also allows 7, UC-). */
static bool memtypes_ok(uint64_t v, bool pat)
{
	for (unsigned i = 0; i < 8; i++, v >>= 8)
		if (!memtype_ok(v & 0xff) && !(pat && (v & 0xff) == 7))
			return false;
	return true;
}

static bool mtrr_var_ok(uint32_t msr, uint64_t v)
{
	uint64_t above = ~0ull << EMU_PHYS_ADDR_BITS;
	if (msr & 1)                               /* PHYSMASK: bit 11 valid */
		return !(v & (above | 0x7ffull));
	return !(v & (above | 0xf00ull)) && memtype_ok(v & 0xff);
}

static bool mtrr_get(struct emu_core *c, uint32_t msr, uint64_t *v)
{
	int f = mtrr_fixed_index(msr);
	if (f >= 0)
		*v = c->msr_mtrr_fixed[f];
	else if (msr >= 0x200 && msr <= 0x20f)
		*v = c->msr_mtrr_var[msr - 0x200];
	else
		return false;
	return true;
}

static bool mtrr_set(struct emu_core *c, uint32_t msr, uint64_t v)
{
	int f = mtrr_fixed_index(msr);
	if (f >= 0 && memtypes_ok(v, false))
		c->msr_mtrr_fixed[f] = v;
	else if (msr >= 0x200 && msr <= 0x20f && mtrr_var_ok(msr, v))
		c->msr_mtrr_var[msr - 0x200] = v;
	else
		return false;
	return true;
}

static bool canonical48(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

/* MSRs that only read (writes #GP). */
static bool msr_get_const(uint32_t msr, uint64_t *v)
{
	switch (msr) {
	case MSR_PLATFORM_ID: *v = 0; return true;
	case MSR_FEATURE_CONTROL: *v = FEATURE_CONTROL_LOCKED; return true;
	case MSR_PLATFORM_INFO: *v = PLATFORM_INFO_1GHZ; return true;
	case MSR_MTRRCAP: *v = MTRRCAP_VALUE; return true;
	case MSR_ARCH_CAPABILITIES: *v = ARCH_CAP_VALUE; return true;
	case MSR_MCG_CAP: *v = 0; return true;
	default: return false;
	}
}

bool emu_msr_get(struct emu_cpu *cpu, uint32_t msr, uint64_t *v)
{
	struct emu_core *c = emu_core_of(cpu);
	switch (msr) {
	case MSR_EFER: *v = cpu->sregs.efer; return true;
	case MSR_STAR: *v = cpu->msr_star; return true;
	case MSR_LSTAR: *v = cpu->msr_lstar; return true;
	case MSR_CSTAR: *v = cpu->msr_cstar; return true;
	case MSR_FMASK: *v = cpu->msr_fmask; return true;
	case MSR_FS_BASE: *v = cpu->sregs.fs.base; return true;
	case MSR_GS_BASE: *v = cpu->sregs.gs.base; return true;
	case MSR_KERNEL_GS_BASE: *v = cpu->msr_kernel_gs_base; return true;
	case MSR_TSC_AUX: *v = cpu->msr_tsc_aux; return true;
	case MSR_TSC: *v = emu_tsc(cpu); return true;
	case MSR_PAT: *v = c->msr_pat; return true;
	case MSR_SYSENTER_CS: *v = c->msr_sysenter_cs; return true;
	case MSR_SYSENTER_ESP: *v = c->msr_sysenter_esp; return true;
	case MSR_SYSENTER_EIP: *v = c->msr_sysenter_eip; return true;
	case MSR_MISC_ENABLE: *v = c->msr_misc_enable; return true;
	case MSR_MTRR_DEF_TYPE: *v = c->msr_mtrr_def; return true;
	case MSR_BIOS_SIGN: *v = UCODE_REVISION; return true;
	case MSR_MCG_STATUS: *v = 0; return true;
	default:
		return msr_get_const(msr, v) || mtrr_get(c, msr, v);
	}
}

static bool set_base_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t v)
{
	if (!canonical48(v))
		return false;
	switch (msr) {
	case MSR_LSTAR: cpu->msr_lstar = v; break;
	case MSR_CSTAR: cpu->msr_cstar = v; break;
	case MSR_FS_BASE: cpu->sregs.fs.base = v; break;
	case MSR_GS_BASE: cpu->sregs.gs.base = v; break;
	case MSR_KERNEL_GS_BASE: cpu->msr_kernel_gs_base = v; break;
	case MSR_SYSENTER_ESP: emu_core_of(cpu)->msr_sysenter_esp = v; break;
	default: emu_core_of(cpu)->msr_sysenter_eip = v; break;
	}
	return true;
}

bool emu_msr_set(struct emu_cpu *cpu, uint32_t msr, uint64_t v)
{
	struct emu_core *c = emu_core_of(cpu);
	switch (msr) {
	case MSR_EFER: emu_write_efer(cpu, v); return true;
	case MSR_STAR: cpu->msr_star = v; return true;
	case MSR_LSTAR: case MSR_CSTAR: case MSR_FS_BASE: case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE: case MSR_SYSENTER_ESP: case MSR_SYSENTER_EIP:
		return set_base_msr(cpu, msr, v);
	case MSR_FMASK: cpu->msr_fmask = (uint32_t)v; return true;
	case MSR_TSC_AUX:
		if (v >> 32)
			return false;
		cpu->msr_tsc_aux = (uint32_t)v;
		return true;
	case MSR_TSC: cpu->tsc_offset = v - (emu_tsc(cpu) - cpu->tsc_offset); return true;
	case MSR_PAT:
		if (!memtypes_ok(v, true))
			return false;
		c->msr_pat = v;
		return true;
	case MSR_SYSENTER_CS: c->msr_sysenter_cs = v & 0xffff; return true;
	case MSR_MISC_ENABLE:
		c->msr_misc_enable = (c->msr_misc_enable & ~MISC_ENABLE_FAST_STRINGS) |
				     (v & MISC_ENABLE_FAST_STRINGS);
		return true;
	case MSR_MTRR_DEF_TYPE:
		if ((v & ~0xcffull) || !memtype_ok(v & 0xff))
			return false;
		c->msr_mtrr_def = v;
		return true;
	case MSR_BIOS_SIGN: return true;      /* "load microcode": nothing to load */
	case MSR_MCG_STATUS: return v == 0;
	default:
		return mtrr_set(c, msr, v);
	}
}
