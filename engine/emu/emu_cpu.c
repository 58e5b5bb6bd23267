/* engine/emu/emu_cpu.c — the vCPU as a machine: power-on, INIT and
 * STARTUP states, control-register and EFER writes with their mode
 * changes, the core's own MSRs and the CPUID model.
 *
 * CPUID model (what the guest is told, all of it implemented):
 *   vendor "GenuineIntel", family 6 model 0x55 stepping 4 signature; leaf 1
 *   EDX FPU DE PSE TSC MSR PAE CX8 APIC SEP MTRR PGE CMOV PAT PSE36 CLFSH
 *   FXSR SSE SSE2, ECX CX16 x2APIC POPCNT TSC-deadline XSAVE (x87+SSE state
 *   only) OSXSAVE(=CR4) hypervisor; leaf 0xB the x2APIC topology (one
 *   thread per core, one core per vCPU); leaf 0xD XSAVE sizes for x87+SSE;
 *   0x80000001 LAHF, SYSCALL, NX, 1 GiB pages, RDTSCP, LM; 0x80000008 40
 *   physical and 48 linear address bits. Everything else reads as zero. */
#include "engine/emu/emu_core.h"

#include <string.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"

#define CPUID_SIGNATURE 0x00050654u
#define CPUID_MAX_LEAF  0xdu
#define CPUID_MAX_EXT   0x80000008u

#define MSR_TSC            0x10u
#define MSR_PLATFORM_ID    0x17u
#define MSR_BIOS_SIGN      0x8bu
#define MSR_MTRRCAP        0xfeu
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

#define EFER_WRITABLE (EFER_SCE | EFER_LME | EFER_NXE)
#define CR4_OSXSAVE_BIT (1ull << 18)
#define CR4_KNOWN (CR4_VME | CR4_DE | CR4_PSE | CR4_PAE | (1ull << 6) /* MCE */ | CR4_PGE | \
		   (1ull << 8) /* PCE */ | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_LA57 | \
		   (1ull << 16) /* FSGSBASE */ | CR4_OSXSAVE_BIT)

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
	cpu->gpr[EMU_RDX] = CPUID_SIGNATURE;
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
	cpu->halted = false;
	cpu->interrupt_shadow = 0;
	memset(&cpu->pending, 0, sizeof(cpu->pending));

	struct emu_core *c = emu_core_of(cpu);
	c->cpl = 0;
	c->nmi_blocked = false;
	c->delivering = false;
	c->xcr0 = 1;
	emu_replay_reset(cpu);
	emu_tlb_flush(cpu);
	emu_update_mode(cpu);
	emu_dbg_reset(cpu);
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
	c->msr_misc_enable = 1;       /* fast strings */
	c->msr_mtrr_def = 0;
	cpu->wait_sipi = cpu->id != 0;
}

/* --- life cycle: shared by the engine (emu_engine.c) and emu_single.c ------ */

void emu_vm_init(struct emu_vm *evm, struct vm *vm, unsigned nr_cpus)
{
	evm->vm = vm;
	evm->nr_cpus = nr_cpus;
	evm->turn = 0;                 /* the bootstrap processor starts (quantum_end 0: */
					/* its first slice is one instruction long) */
	pthread_mutex_init(&evm->lock, NULL);
	pthread_cond_init(&evm->cond, NULL);
	pthread_mutex_init(&evm->warn_lock, NULL);
}

void emu_vm_fini(struct emu_vm *evm)
{
	pthread_cond_destroy(&evm->cond);
	pthread_mutex_destroy(&evm->lock);
	pthread_mutex_destroy(&evm->warn_lock);
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

void emu_write_efer(struct emu_cpu *cpu, uint64_t v)
{
	uint64_t old = cpu->sregs.efer;
	if (v & ~(EFER_WRITABLE | EFER_LMA))
		emu_gp(cpu, 0);
	if ((cpu->sregs.cr0 & CR0_PG) && ((v ^ old) & EFER_LME))
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
	if (v & ~CR4_KNOWN)
		emu_gp(cpu, 0);
	if ((cpu->sregs.efer & EFER_LMA) && !(v & CR4_PAE))
		emu_gp(cpu, 0);
	if ((cpu->sregs.efer & EFER_LMA) && ((v ^ old) & CR4_LA57))
		emu_gp(cpu, 0);
	cpu->sregs.cr4 = v;
	if ((v ^ old) & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_LA57))
		emu_tlb_flush(cpu);
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
		cpu->sregs.cr3 = v;
		emu_tlb_flush(cpu);
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

static bool mtrr_msr(uint32_t m)
{
	return (m >= 0x200 && m <= 0x21f) || m == 0x250 || m == 0x258 || m == 0x259 ||
	       (m >= 0x268 && m <= 0x26f);
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
	case MSR_MTRRCAP: *v = 0x508; return true;   /* 8 variable, fixed, WC */
	case MSR_PLATFORM_ID: case MSR_BIOS_SIGN: case MSR_MCG_CAP: case MSR_MCG_STATUS:
		*v = 0;
		return true;
	default:
		if (mtrr_msr(msr)) {
			*v = 0;
			return true;
		}
		return false;
	}
}

static bool canonical48(uint64_t v)
{
	return (uint64_t)((int64_t)(v << 16) >> 16) == v;
}

bool emu_msr_set(struct emu_cpu *cpu, uint32_t msr, uint64_t v)
{
	struct emu_core *c = emu_core_of(cpu);
	switch (msr) {
	case MSR_EFER: emu_write_efer(cpu, v); return true;
	case MSR_STAR: cpu->msr_star = v; return true;
	case MSR_LSTAR: case MSR_CSTAR: case MSR_FS_BASE: case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE:
		if (!canonical48(v))
			return false;
		if (msr == MSR_LSTAR) cpu->msr_lstar = v;
		else if (msr == MSR_CSTAR) cpu->msr_cstar = v;
		else if (msr == MSR_FS_BASE) cpu->sregs.fs.base = v;
		else if (msr == MSR_GS_BASE) cpu->sregs.gs.base = v;
		else cpu->msr_kernel_gs_base = v;
		return true;
	case MSR_FMASK: cpu->msr_fmask = (uint32_t)v; return true;
	case MSR_TSC_AUX: cpu->msr_tsc_aux = (uint32_t)v; return true;
	case MSR_TSC: cpu->tsc_offset = v - (emu_tsc(cpu) - cpu->tsc_offset); return true;
	case MSR_PAT: c->msr_pat = v; return true;
	case MSR_SYSENTER_CS: c->msr_sysenter_cs = v; return true;
	case MSR_SYSENTER_ESP: c->msr_sysenter_esp = v; return true;
	case MSR_SYSENTER_EIP: c->msr_sysenter_eip = v; return true;
	case MSR_MISC_ENABLE: c->msr_misc_enable = v; return true;
	case MSR_MTRR_DEF_TYPE: c->msr_mtrr_def = v; return true;
	case MSR_BIOS_SIGN: case MSR_MCG_STATUS: return true;
	default:
		return mtrr_msr(msr);
	}
}

/* --- CPUID ---------------------------------------------------------------- */

static void cpuid_str(uint32_t out[3], const char *s)
{
	memcpy(out, s, 12);
}

void emu_cpuid(struct emu_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	r[0] = r[1] = r[2] = r[3] = 0;
	switch (leaf) {
	case 0: {
		uint32_t v[3];
		cpuid_str(v, "GenuineIntel");
		r[0] = CPUID_MAX_LEAF;
		r[1] = v[0]; r[3] = v[1]; r[2] = v[2];
		break;
	}
	case 1:
		r[0] = CPUID_SIGNATURE;
		r[1] = (cpu->id << 24) | (1u << 16) | (8u << 8);
		r[2] = (1u << 13) | (1u << 21) | (1u << 23) | (1u << 24) | (1u << 26) | (1u << 31);
		if (cpu->sregs.cr4 & CR4_OSXSAVE_BIT)
			r[2] |= 1u << 27;
		r[3] = (1u << 0) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) | (1u << 6) |
		       (1u << 8) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 15) | (1u << 16) |
		       (1u << 17) | (1u << 19) | (1u << 24) | (1u << 25) | (1u << 26);
		if (cpu->sregs.apic_base & (1ull << 11))
			r[3] |= 1u << 9;
		break;
	case 0xb:
		r[3] = cpu->id;
		if (sub == 0) {
			r[0] = 0; r[1] = 1; r[2] = 0x100;
		} else if (sub == 1) {
			r[0] = 8; r[1] = emu_vm_nr_cpus(cpu->evm); r[2] = 0x201;
		} else {
			r[2] = sub & 0xff;
		}
		break;
	case 0xd:
		if (sub == 0) {
			r[0] = 3;                  /* x87, SSE */
			r[1] = r[2] = 576;
		}
		break;
	case 0x80000000:
		r[0] = CPUID_MAX_EXT;
		break;
	case 0x80000001:
		r[2] = 1u << 0;
		r[3] = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29);
		break;
	case 0x80000002: case 0x80000003: case 0x80000004: {
		static const char brand[48] = "vmdb emu x86-64 CPU";
		memcpy(r, brand + (leaf - 0x80000002) * 16, 16);
		break;
	}
	case 0x80000008:
		r[0] = 0x3028;
		break;
	default:
		break;
	}
}
