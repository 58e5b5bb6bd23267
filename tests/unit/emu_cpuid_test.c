/* tests/unit/emu_cpuid_test.c — emu's CPUID model (engine/emu/emu_cpuid.c)
 * alone, with a fake VM of a chosen vCPU count: the identity, the bits that
 * follow state (APIC, OSXSAVE), the topology leaves against the count, the
 * TSC leaves against the LAPIC bus clock, and what must never be claimed.
 * Prints "emu_cpuid: N passed, M failed". */
#include <string.h>

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_platform.h"
#include "tests/unit/check.h"

#define NCPUS 3

unsigned emu_vm_nr_cpus(struct emu_vm *evm)
{
	(void)evm;
	return NCPUS;
}

static void regs(struct emu_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	memset(r, 0xee, 4 * sizeof(r[0]));
	emu_cpuid(cpu, leaf, sub, r);
}

static void check_identity(struct emu_cpu *cpu)
{
	uint32_t r[4];
	char s[13] = { 0 };
	regs(cpu, 0, 0, r);
	memcpy(s, &r[1], 4);
	memcpy(s + 4, &r[3], 4);
	memcpy(s + 8, &r[2], 4);
	CHECK(strcmp(s, "GenuineIntel") == 0, "vendor %s", s);
	CHECK(r[0] >= 0x16, "max basic leaf 0x%x", r[0]);
	regs(cpu, 0x40000000, 0, r);
	memcpy(s, &r[1], 12);
	CHECK(strcmp(s, "vmdbvmdbvmdb") == 0, "hypervisor %s", s);
	CHECK(strcmp(s, "KVMKVMKVM") != 0, "never KVM's signature");
	regs(cpu, 1, 0, r);
	CHECK_EQ(r[0], EMU_CPUID_SIGNATURE);
	CHECK_EQ(r[1] >> 24, 2);                        /* APIC ID = vCPU index */
	CHECK_EQ(r[2] & (1u << 30), 0);                 /* no RDRAND */
	CHECK_EQ(r[3] & (1u << 11), 0);                 /* no SEP */
	regs(cpu, 7, 0, r);
	CHECK_EQ(r[1] & 1, 0);                          /* no FSGSBASE */
	CHECK_EQ(r[1] & (1u << 18), 0);                 /* no RDSEED */
	CHECK_EQ(r[2] & (1u << 16), 0);                 /* no LA57 */
	CHECK_EQ(r[3] & (1u << 26), 0);                 /* no SPEC_CTRL */
	regs(cpu, 0x17, 0, r);
	CHECK(!r[0] && !r[1] && !r[2] && !r[3], "leaf 0x17 reads 0");
	regs(cpu, 0x80000009, 0, r);
	CHECK(!r[0] && !r[1] && !r[2] && !r[3], "leaf 0x80000009 reads 0");
}

static void check_state_bits(struct emu_cpu *cpu)
{
	uint32_t r[4];
	cpu->sregs.apic_base = 0;
	cpu->sregs.cr4 = 0;
	regs(cpu, 1, 0, r);
	CHECK_EQ(r[3] & (1u << 9), 0);
	CHECK_EQ(r[2] & (1u << 27), 0);
	cpu->sregs.apic_base = 0xfee00000u | (1u << 11);
	cpu->sregs.cr4 = EMU_CR4_OSXSAVE;
	regs(cpu, 1, 0, r);
	CHECK_EQ(r[3] & (1u << 9), 1u << 9);
	CHECK_EQ(r[2] & (1u << 27), 1u << 27);
}

static void check_topology_and_tsc(struct emu_cpu *cpu)
{
	uint32_t r[4];
	regs(cpu, 0xb, 0, r);
	CHECK_EQ(r[1], 1);                              /* one thread per core */
	CHECK_EQ((r[2] >> 8) & 0xff, 1);
	regs(cpu, 0xb, 1, r);
	CHECK_EQ(r[1], NCPUS);
	CHECK_EQ((r[2] >> 8) & 0xff, 2);
	CHECK_EQ(r[3], 2);
	regs(cpu, 0xb, 2, r);
	CHECK_EQ((r[2] >> 8) & 0xff, 0);                /* no third level */
	regs(cpu, 4, 0, r);
	CHECK_EQ((r[0] >> 26) + 1, NCPUS);
	regs(cpu, 4, 3, r);
	CHECK_EQ(r[0] & 0x1f, 0);                       /* no fourth cache */
	regs(cpu, 0x15, 0, r);
	CHECK(r[0] && (uint64_t)r[2] * r[1] / r[0] == EMU_TSC_HZ, "crystal * ratio = TSC rate");
	CHECK_EQ(r[2], EMU_APIC_BUS_HZ);                /* crystal = LAPIC timer clock */
	regs(cpu, 0x16, 0, r);
	CHECK_EQ(r[0], EMU_TSC_HZ / 1000000);
	regs(cpu, 0xd, 0, r);
	CHECK_EQ(r[0], EMU_XCR0_SUPPORTED);
	CHECK_EQ(r[1], 576);
}

int main(void)
{
	struct emu_cpu cpu;
	memset(&cpu, 0, sizeof(cpu));
	cpu.id = 2;
	check_identity(&cpu);
	check_state_bits(&cpu);
	check_topology_and_tsc(&cpu);
	return check_summary("emu_cpuid");
}
