/* engine/emu/emu_cpuid.c — the CPU emu says it is: one CPUID model that
 * advertises exactly what the core implements, because the guest's kernel
 * (alternatives) and libc (ifuncs) choose instructions from these bits.
 *
 * Identity: "GenuineIntel", family 6, model 0xff, stepping 1 (a model
 * number no Intel part uses, so no model-specific quirk or driver of a
 * guest kernel matches it); brand "vmdb emu x86-64 CPU"; hypervisor leaf
 * 0x40000000 = "vmdbvmdbvmdb" with no paravirtual features (never KVM's
 * signature: a kernel would then expect kvmclock and PV MSRs).
 *
 * Leaves (every leaf not listed, and every bit not listed, reads 0):
 *   0        max basic leaf 0x16, vendor
 *   1   EAX  signature; EBX CLFLUSH line 64 bytes, logical CPUs per package
 *            (--smp rounded up to a power of 2), initial APIC ID = vCPU index
 *       ECX  SSE3, SSSE3, SSE4.1, SSE4.2, MOVBE, CX16 (CMPXCHG16B), PCID
 *            (CR4.PCIDE, CR3 bit 63), x2APIC (MSRs 0x800-0x8ff), POPCNT,
 *            TSC-deadline (LAPIC timer mode 2),
 *            XSAVE (XSAVE/XRSTOR/XGETBV/XSETBV, x87+SSE state), OSXSAVE (a
 *            copy of CR4.OSXSAVE), hypervisor
 *       EDX  FPU (x87 run on the host FPU), DE (CR4.DE, I/O breakpoints), PSE, TSC (+CR4.TSD), MSR,
 *            PAE, CX8, APIC (cleared while IA32_APIC_BASE.EN is 0), MTRR
 *            (MSRs only: no memory types), PGE (global pages), PAT (MSR
 *            only), PSE-36, CLFSH, MMX (the MMX registers alias the x87's,
 *            emu_exec_mmx.c), FXSR, SSE, SSE2, HTT (EBX[23:16] valid)
 *   2        one iteration, descriptor 0xff: "see leaf 4"
 *   4        caches, per vCPU: L1d 32 KiB 8-way, L1i 32 KiB 8-way, L2 1 MiB
 *            16-way, 64-byte lines; EAX[31:26] = vCPUs in the package - 1
 *   6   EAX  ARAT (the LAPIC timer runs in every C-state: emu has no others)
 *   7.0 EBX  FDP_EXCPTN_ONLY and FCS/FDS deprecated (emu's x87 model), SMEP,
 *            ERMS (REP MOVSB/STOSB), INVPCID, SMAP (+CLAC/STAC), CLFLUSHOPT
 *       ECX  UMIP, RDPID (TSC_AUX)
 *       EDX  SERIALIZE (Linux's sync_core uses it instead of an IRET to
 *            itself, which emu must step: ~100K of them per boot as the
 *            kernel patches its text), ARCH_CAPABILITIES (MSR 0x10a: not affected by Meltdown, MDS,
 *            TAA, SSB, MMIO stale data, GDS, RFDS, BHI, PBRSB: there is no
 *            speculation to leak through, so the guest enables no mitigation
 *            such as page-table isolation)
 *   0xb      x2APIC topology: one thread per core (SMT shift 0), one core per
 *            vCPU, package shift 8 (APIC ID = vCPU index, < 256)
 *   0xd.0    XCR0 may hold x87 and SSE; EBX/ECX 576 bytes (legacy area + header)
 *   0xd.1    XSAVEOPT, XSAVEC (EBX 576); no XGETBV1, no XSAVES
 *   0x15     TSC = 1 GHz crystal * 1/1: the TSC counts guest nanoseconds
 *            (EMU_TSC_HZ, emu_time.c), so a guest needs no calibration; the
 *            crystal is the LAPIC timer's bus clock (EMU_APIC_BUS_HZ)
 *   0x16     base and maximum 1000 MHz, bus 1000 MHz
 *   0x40000000 max leaf 0x40000001, "vmdbvmdbvmdb"; 0x40000001 no features
 *   0x80000000 max extended leaf 0x80000008
 *   0x80000001 ECX LAHF/SAHF in 64-bit mode, ABM (LZCNT), PREFETCHW;
 *            EDX SYSCALL/SYSRET, NX, 1 GiB pages, RDTSCP, LM
 *   0x80000002-4 brand string
 *   0x80000006 L2 1 MiB 16-way, 64-byte lines
 *   0x80000007 EDX invariant TSC (constant rate, counts in every state)
 *   0x80000008 40 physical and 48 linear address bits
 *
 * Not advertised, on purpose: LA57 (5-level paging), RDRAND/RDSEED,
 * FSGSBASE, SEP (SYSENTER), MCE/MCA, MONITOR/MWAIT, VME, PCLMUL/AES, AVX,
 * BMI, TSX, SPEC_CTRL/PRED_CMD, TSC_ADJUST, PMU (leaf 0xa). */
#include "engine/emu/emu_core.h"

#include <string.h>

#include "engine/emu/emu_platform.h"

#define BIT(n) (1u << (n))

/* leaf 1 */
#define L1_ECX (BIT(0) /* SSE3 */ | BIT(9) /* SSSE3 */ | BIT(13) /* CX16 */ |               \
		BIT(17) /* PCID */ | BIT(19) /* SSE4.1 */ | BIT(20) /* SSE4.2 */ |             \
		BIT(21) /* x2APIC */ | BIT(22) /* MOVBE */ | BIT(23) /* POPCNT */ |            \
		BIT(24) /* TSC-deadline */ | BIT(26) /* XSAVE */ | BIT(31) /* hypervisor */)
#define L1_ECX_OSXSAVE BIT(27)
#define L1_EDX (BIT(0) /* FPU */ | BIT(2) /* DE */ | BIT(3) /* PSE */ | BIT(4) /* TSC */ |  \
		BIT(5) /* MSR */ | BIT(6) /* PAE */ | BIT(8) /* CX8 */ | BIT(12) /* MTRR */ | \
		BIT(13) /* PGE */ | BIT(15) /* CMOV */ | BIT(16) /* PAT */ |                   \
		BIT(17) /* PSE-36 */ | BIT(19) /* CLFSH */ | BIT(23) /* MMX */ | BIT(24) /* FXSR */ |               \
		BIT(25) /* SSE */ | BIT(26) /* SSE2 */ | BIT(28) /* HTT */)
#define L1_EDX_APIC BIT(9)

/* leaf 7 subleaf 0 */
#define L7_EBX (BIT(6) /* FDP_EXCPTN_ONLY */ | BIT(7) /* SMEP */ | BIT(9) /* ERMS */ |       \
		BIT(10) /* INVPCID */ | BIT(13) /* FCS/FDS deprecated */ | BIT(20) /* SMAP */ | \
		BIT(23) /* CLFLUSHOPT */)
#define L7_ECX (BIT(2) /* UMIP */ | BIT(22) /* RDPID */)
#define L7_EDX (BIT(14) /* SERIALIZE */ | BIT(29) /* ARCH_CAPABILITIES */)

#define L6_EAX BIT(2)                            /* ARAT */

#define E1_ECX (BIT(0) /* LAHF-LM */ | BIT(5) /* ABM: LZCNT */ | BIT(8) /* PREFETCHW */)
#define E1_EDX (BIT(11) /* SYSCALL */ | BIT(20) /* NX */ | BIT(26) /* 1 GiB pages */ |     \
		BIT(27) /* RDTSCP */ | BIT(29) /* LM */)
#define E7_EDX BIT(8)                            /* invariant TSC */

#define CPUID_MAX_LEAF  0x16u
#define CPUID_MAX_HV    0x40000001u
#define CPUID_MAX_EXT   0x80000008u

#define XSAVE_LEGACY_AND_HEADER 576u
#define CACHE_LINE 64u
#define MHZ        1000000u

/* Leaf 0x15 gives the TSC as the crystal (the LAPIC bus clock, which Linux
 * also takes as the LAPIC timer's rate) times a whole ratio. */
_Static_assert(EMU_TSC_HZ % EMU_APIC_BUS_HZ == 0, "TSC a whole multiple of the bus clock");
_Static_assert(EMU_APIC_BUS_HZ <= UINT32_MAX, "crystal Hz fits ECX");

/* A vendor string in EBX, EDX, ECX order. */
static void put_str12(uint32_t *b, uint32_t *c, uint32_t *d, const char *s)
{
	memcpy(b, s, 4);
	memcpy(d, s + 4, 4);
	memcpy(c, s + 8, 4);
}

static unsigned pow2_at_least(unsigned n)
{
	unsigned p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

/* Leaf 4: one deterministic cache parameter set per subleaf. */
static void cpuid_cache(unsigned ncpus, uint32_t sub, uint32_t r[4])
{
	static const struct { uint8_t type, level, ways; uint32_t kib; } caches[] = {
		{ 1, 1, 8, 32 },                /* L1 data */
		{ 2, 1, 8, 32 },                /* L1 instruction */
		{ 3, 2, 16, 1024 },             /* L2 unified */
	};
	if (sub >= sizeof(caches) / sizeof(caches[0]))
		return;                         /* type 0: no more caches */
	unsigned cores = ncpus > 64 ? 64 : ncpus;
	uint32_t sets = caches[sub].kib * 1024u / (caches[sub].ways * CACHE_LINE);
	r[0] = caches[sub].type | (uint32_t)caches[sub].level << 5 | BIT(8) /* self-init */ |
	       (uint32_t)(cores - 1) << 26;
	r[1] = (uint32_t)(caches[sub].ways - 1) << 22 | (CACHE_LINE - 1);
	r[2] = sets - 1;
}

static void cpuid_leaf1(struct emu_cpu *cpu, unsigned ncpus, uint32_t r[4])
{
	unsigned logical = pow2_at_least(ncpus);
	r[0] = EMU_CPUID_SIGNATURE;
	r[1] = cpu->id << 24 | (logical > 255 ? 255 : logical) << 16 | (CACHE_LINE / 8) << 8;
	r[2] = L1_ECX;
	if (cpu->sregs.cr4 & EMU_CR4_OSXSAVE)
		r[2] |= L1_ECX_OSXSAVE;
	r[3] = L1_EDX;
	if (cpu->sregs.apic_base & (1ull << 11))            /* IA32_APIC_BASE.EN */
		r[3] |= L1_EDX_APIC;
}

static void cpuid_topology(struct emu_cpu *cpu, unsigned ncpus, uint32_t sub, uint32_t r[4])
{
	r[3] = cpu->id;                          /* x2APIC ID */
	if (sub == 0) {                          /* SMT: one thread per core */
		r[0] = 0;
		r[1] = 1;
		r[2] = 1u << 8 | sub;
	} else if (sub == 1) {                   /* core: every vCPU in one package */
		r[0] = 8;
		r[1] = ncpus;
		r[2] = 2u << 8 | sub;
	} else {
		r[2] = sub & 0xff;               /* invalid level */
	}
}

static void cpuid_ext(uint32_t leaf, uint32_t r[4])
{
	static const char brand[48] = "vmdb emu x86-64 CPU";
	switch (leaf) {
	case 0x80000000: r[0] = CPUID_MAX_EXT; break;
	case 0x80000001: r[2] = E1_ECX; r[3] = E1_EDX; break;
	case 0x80000002: case 0x80000003: case 0x80000004:
		memcpy(r, brand + (leaf - 0x80000002) * 16, 16);
		break;
	case 0x80000006: r[2] = 1024u << 16 | 6u << 12 /* 16-way */ | CACHE_LINE; break;
	case 0x80000007: r[3] = E7_EDX; break;
	case 0x80000008: r[0] = 48u << 8 | EMU_PHYS_ADDR_BITS; break;
	default: break;
	}
}

void emu_cpuid(struct emu_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	unsigned ncpus = emu_vm_nr_cpus(cpu->evm);
	r[0] = r[1] = r[2] = r[3] = 0;
	if (leaf >= 0x80000000u) {
		cpuid_ext(leaf, r);
		return;
	}
	switch (leaf) {
	case 0: r[0] = CPUID_MAX_LEAF; put_str12(&r[1], &r[2], &r[3], "GenuineIntel"); break;
	case 1: cpuid_leaf1(cpu, ncpus, r); break;
	case 2: r[0] = 0xff01; break;
	case 4: cpuid_cache(ncpus, sub, r); break;
	case 6: r[0] = L6_EAX; break;
	case 7:
		if (sub == 0) {
			r[1] = L7_EBX;
			r[2] = L7_ECX;
			r[3] = L7_EDX;
		}
		break;
	case 0xb: cpuid_topology(cpu, ncpus, sub, r); break;
	case 0xd:
		if (sub == 0) {
			r[0] = EMU_XCR0_SUPPORTED;
			r[1] = r[2] = XSAVE_LEGACY_AND_HEADER;
		} else if (sub == 1) {
			r[0] = BIT(0) /* XSAVEOPT */ | BIT(1) /* XSAVEC */;
			r[1] = XSAVE_LEGACY_AND_HEADER;
		}
		break;
	case 0x15:                               /* TSC/crystal = EBX/EAX, crystal Hz */
		r[0] = 1;
		r[1] = (uint32_t)(EMU_TSC_HZ / EMU_APIC_BUS_HZ);
		r[2] = (uint32_t)EMU_APIC_BUS_HZ;
		break;
	case 0x16:                               /* base, maximum, bus MHz */
		r[0] = r[1] = (uint32_t)(EMU_TSC_HZ / MHZ);
		r[2] = (uint32_t)(EMU_APIC_BUS_HZ / MHZ);
		break;
	case 0x40000000:                         /* EBX, ECX, EDX in that order */
		r[0] = CPUID_MAX_HV;
		memcpy(&r[1], "vmdbvmdbvmdb", 12);
		break;
	default: break;
	}
}
