/* tests/unit/emu_platform_test.c — the emu engine's devices (LAPIC, IOAPIC,
 * PIC, PIT, guest time) without the CPU: a fake struct emu_vm with a few
 * emu_cpu records, fakes of the calls the platform makes into CORE
 * (emu_cpu_init / emu_cpu_sipi record what they were asked), and guest time
 * driven by setting cpu->retired. Prints "emu_platform: N passed, M failed". */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu.h"
#include "engine/emu/emu_platform.h"
#include "machine/vm.h"
#include "tests/unit/check.h"

#define NR_CPUS 4
#define APIC    EMU_APIC_DEFAULT_BASE
#define X2(reg) (0x800u + (reg) / 16)

/* register offsets and bits, as a guest names them */
enum { ID = 0x20, VER = 0x30, TPR = 0x80, PPR = 0xa0, EOI = 0xb0, LDR = 0xd0, DFR = 0xe0,
       SVR = 0xf0, ISR = 0x100, TMR = 0x180, IRR = 0x200, ESR = 0x280, ICR = 0x300,
       ICR2 = 0x310, LVTT = 0x320, LINT0 = 0x350, LVTE = 0x370, TMICT = 0x380,
       TMCCT = 0x390, TDCR = 0x3e0, SELF_IPI = 0x3f0 };
#define SVR_ON        0x1ffu
#define LVT_MASKED    (1u << 16)
#define LVTT_PERIODIC (1u << 17)
#define LVTT_TSCDL    (2u << 17)
#define ICR_FIXED     0u
#define ICR_NMI       (4u << 8)
#define ICR_INIT      (5u << 8)
#define ICR_SIPI      (6u << 8)
#define ICR_LOGICAL   (1u << 11)
#define ICR_ASSERT    (1u << 14)
#define ICR_LEVEL     (1u << 15)
#define ICR_SELF      (1u << 18)
#define ICR_ALLBUT    (3u << 18)
#define BASE_BSP      (1ull << 8)
#define BASE_EXTD     (1ull << 10)
#define BASE_EN       (1ull << 11)
#define MSR_APIC_BASE 0x1bu
#define MSR_TSC_DL    0x6e0u
#define IOAPIC        EMU_IOAPIC_BASE
#define RTE_LEVEL     (1u << 15)
#define RTE_MASKED    (1u << 16)
#define RTE_REMOTE_IRR (1u << 14)

/* --- the fake VM and CORE --- */

struct emu_vm {
	struct emu_platform *plat;
	struct emu_cpu *cpus[NR_CPUS];
	unsigned nr;
};

static struct emu_vm vmx;
static struct emu_cpu cpus[NR_CPUS];
static unsigned inits[NR_CPUS], sipis[NR_CPUS], wakes[NR_CPUS];
static int sipi_vec[NR_CPUS], raised = -1;

struct emu_platform *emu_vm_platform(struct emu_vm *evm) { return evm->plat; }
void emu_vm_set_platform(struct emu_vm *evm, struct emu_platform *p) { evm->plat = p; }
unsigned emu_vm_nr_cpus(struct emu_vm *evm) { return evm->nr; }
struct emu_cpu *emu_vm_cpu(struct emu_vm *evm, unsigned i) { return i < evm->nr ? evm->cpus[i] : NULL; }
void emu_vm_wake(struct emu_vm *evm, struct emu_cpu *cpu) { (void)evm; wakes[cpu->id]++; }
void emu_cpu_init(struct emu_cpu *cpu) { inits[cpu->id]++; cpu->wait_sipi = true; }
void emu_cpu_sipi(struct emu_cpu *cpu, uint8_t v)
{
	sipis[cpu->id]++;
	sipi_vec[cpu->id] = v;
	cpu->wait_sipi = false;
}
void emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error_code, uint32_t error_code)
{
	(void)cpu; (void)has_error_code; (void)error_code;
	raised = vector;
}

/* --- checks --- */

/* --- setup and accessors --- */

static void vm_setup(void)
{
	emu_platform_destroy(&vmx);
	for (unsigned i = 0; i < NR_CPUS; i++) {
		if (cpus[i].lapic)
			emu_lapic_destroy(&cpus[i]);
		memset(&cpus[i], 0, sizeof(cpus[i]));
		cpus[i].evm = &vmx;
		cpus[i].id = i;
		cpus[i].wait_sipi = i != 0;
		vmx.cpus[i] = &cpus[i];
		inits[i] = sipis[i] = wakes[i] = 0;
		sipi_vec[i] = -1;
	}
	vmx.nr = NR_CPUS;
	if (emu_platform_create(&vmx) != 0) {
		printf("emu_platform_create failed\n");
		exit(1);
	}
	for (unsigned i = 0; i < NR_CPUS; i++)
		if (emu_lapic_create(&cpus[i]) != 0)
			exit(1);
	raised = -1;
}

/* Guest time runs on cpu 0's retired instructions; timers fire as the core
 * would fire them. */
static void run_until(uint64_t t)
{
	uint64_t now = emu_guest_ns(&vmx);
	if (t > now)
		cpus[0].retired += t - now;
	emu_platform_advance(&vmx, emu_guest_ns(&vmx));
}

static uint32_t rd(unsigned c, uint32_t reg)
{
	uint32_t v = 0xdeadbeef;
	if (!emu_platform_mmio(&cpus[c], APIC + reg, (uint8_t *)&v, 4, false))
		return 0xdeadbeef;
	return v;
}

static void wr(unsigned c, uint32_t reg, uint32_t v)
{
	emu_platform_mmio(&cpus[c], APIC + reg, (uint8_t *)&v, 4, true);
}

/* RDMSR/WRMSR: the value, and whether #GP was raised. */
static int msr_wr(unsigned c, uint32_t msr, uint64_t v)
{
	raised = -1;
	if (!emu_platform_msr(&cpus[c], msr, &v, true))
		return -2;
	return raised;
}

static uint64_t msr_rd(unsigned c, uint32_t msr, int *gp)
{
	uint64_t v = 0;
	raised = -1;
	if (!emu_platform_msr(&cpus[c], msr, &v, false))
		*gp = -2;
	else
		*gp = raised;
	return v;
}

static void outb(uint16_t port, uint8_t v)
{
	emu_platform_pio(&cpus[0], port, &v, 1, true);
}

static uint8_t inb(uint16_t port)
{
	uint8_t v = 0;
	emu_platform_pio(&cpus[0], port, &v, 1, false);
	return v;
}

static void io_wr(uint32_t reg, uint32_t v)
{
	emu_platform_mmio(&cpus[0], IOAPIC, (uint8_t *)&reg, 4, true);
	emu_platform_mmio(&cpus[0], IOAPIC + 0x10, (uint8_t *)&v, 4, true);
}

static uint32_t io_rd(uint32_t reg)
{
	uint32_t v = 0;
	emu_platform_mmio(&cpus[0], IOAPIC, (uint8_t *)&reg, 4, true);
	emu_platform_mmio(&cpus[0], IOAPIC + 0x10, (uint8_t *)&v, 4, false);
	return v;
}

/* Take the pending interrupt as the CPU would; returns its vector or -1. */
static int take(unsigned c)
{
	int v = emu_lapic_pending_vector(&cpus[c]);
	if (v >= 0)
		emu_lapic_accept(&cpus[c], v);
	return v;
}

static void enable_apic(unsigned c)
{
	wr(c, SVR, SVR_ON);
}

/* --- LAPIC timer --- */

static void test_timer_oneshot_divide(void)
{
	static const struct { uint32_t tdcr; uint64_t div; } divs[] = {
		{ 0x0, 2 }, { 0x1, 4 }, { 0x2, 8 }, { 0x3, 16 },
		{ 0x8, 32 }, { 0x9, 64 }, { 0xa, 128 }, { 0xb, 1 },
	};

	for (size_t i = 0; i < sizeof(divs) / sizeof(divs[0]); i++) {
		vm_setup();
		enable_apic(0);
		run_until(1000);
		wr(0, TDCR, divs[i].tdcr);
		wr(0, LVTT, 0x40);
		wr(0, TMICT, 1000);
		CHECK_EQ(emu_next_deadline_ns(&vmx), 1000 + 1000 * divs[i].div);
		run_until(1000 + 500 * divs[i].div);
		CHECK_EQ(rd(0, TMCCT), 500);
		run_until(1000 + 1000 * divs[i].div - 1);
		CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);
		run_until(1000 + 1000 * divs[i].div);
		CHECK_EQ(take(0), 0x40);
		CHECK_EQ(rd(0, TMCCT), 0);
		CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
	}
	/* masked: counts, no interrupt */
	vm_setup();
	enable_apic(0);
	wr(0, TDCR, 0xb);
	wr(0, LVTT, LVT_MASKED | 0x40);
	wr(0, TMICT, 0xffffffffu);
	run_until(1000);
	CHECK_EQ(rd(0, TMCCT), 0xffffffffu - 1000);
	run_until(1ull << 33);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);
}

static void test_timer_periodic(void)
{
	vm_setup();
	enable_apic(1);
	wr(1, TDCR, 0xb);
	wr(1, LVTT, LVTT_PERIODIC | 0x41);
	wr(1, TMICT, 500);
	for (int k = 1; k <= 3; k++) {
		run_until(500ull * k - 1);
		CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
		run_until(500ull * k);
		CHECK_EQ(take(1), 0x41);
		wr(1, EOI, 0);
		CHECK_EQ(emu_next_deadline_ns(&vmx), 500ull * (k + 1));
	}
	run_until(1500 + 200);
	CHECK_EQ(rd(1, TMCCT), 300);
	/* three periods late: one interrupt, phase kept */
	run_until(3800);
	CHECK_EQ(take(1), 0x41);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 4000);
	/* divide 4 mid-count: the current count is kept, then counts slower */
	wr(1, EOI, 0);
	run_until(3900);                    /* 400 into the period from 3500 */
	wr(1, TDCR, 0x1);
	CHECK_EQ(rd(1, TMCCT), 100);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 3900 + 100 * 4);
	run_until(3900 + 100 * 4);
	CHECK_EQ(take(1), 0x41);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 3900 + 100 * 4 + 500 * 4);
	/* TMICT 0 stops it */
	wr(1, TMICT, 0);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
}

/* Masked timers set no deadline, however short their period; unmasking
 * signals nothing that ended while masked and goes on in phase. */
static void test_timer_masked(void)
{
	vm_setup();
	enable_apic(1);
	wr(1, TDCR, 0xb);
	wr(1, LVTT, LVT_MASKED | LVTT_PERIODIC | 0x41);
	wr(1, TMICT, 1);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
	wr(1, TMICT, 500);
	run_until(1250);
	CHECK_EQ(rd(1, TMCCT), 250);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
	wr(1, LVTT, LVTT_PERIODIC | 0x41);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 1500);
	run_until(1500);
	CHECK_EQ(take(1), 0x41);
	wr(1, EOI, 0);
	/* a one-shot that ended while masked stays silent once unmasked */
	wr(1, LVTT, LVT_MASKED | 0x41);
	wr(1, TMICT, 100);
	run_until(2000);
	wr(1, LVTT, 0x41);
	CHECK_EQ(rd(1, TMCCT), 0);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
	run_until(3000);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
}

static void test_timer_tsc_deadline(void)
{
	int gp;

	vm_setup();
	enable_apic(2);
	cpus[2].tsc_offset = 1000000;
	run_until(5000);
	/* not in TSC-deadline mode: the MSR write is ignored */
	CHECK_EQ(msr_wr(2, MSR_TSC_DL, 1000000 + 6000), -1);
	CHECK_EQ(msr_rd(2, MSR_TSC_DL, &gp), 0);
	wr(2, LVTT, LVTT_TSCDL | 0x42);
	wr(2, TMICT, 100);                  /* ignored in this mode */
	CHECK_EQ(rd(2, TMICT), 0);
	CHECK_EQ(emu_tsc(&cpus[2]), 1005000);
	CHECK_EQ(msr_wr(2, MSR_TSC_DL, 1005000 + 3000), -1);
	CHECK_EQ(msr_rd(2, MSR_TSC_DL, &gp), 1008000);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 8000);
	run_until(7999);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[2]), -1);
	run_until(8000);
	CHECK_EQ(take(2), 0x42);
	CHECK_EQ(msr_rd(2, MSR_TSC_DL, &gp), 0);
	wr(2, EOI, 0);
	/* a deadline already past fires at the next check */
	msr_wr(2, MSR_TSC_DL, 5);
	run_until(8001);
	CHECK_EQ(take(2), 0x42);
	/* 0 disarms; leaving the mode disarms */
	wr(2, EOI, 0);
	msr_wr(2, MSR_TSC_DL, 1000000 + 20000);
	msr_wr(2, MSR_TSC_DL, 0);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
	msr_wr(2, MSR_TSC_DL, 1000000 + 20000);
	wr(2, LVTT, 0x42);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
}

/* --- IRR / ISR / TPR / EOI --- */

static void test_priority_eoi(void)
{
	vm_setup();
	enable_apic(0);
	wr(0, ICR, ICR_SELF | 0x31);
	wr(0, ICR, ICR_SELF | 0x52);
	wr(0, ICR, ICR_SELF | 0x65);
	CHECK_EQ(rd(0, IRR + 0x10), 1u << (0x31 - 32));
	CHECK_EQ(rd(0, IRR + 0x20), 1u << (0x52 - 64));
	CHECK_EQ(rd(0, IRR + 0x30), 1u << (0x65 - 96));
	CHECK_EQ(take(0), 0x65);
	CHECK_EQ(rd(0, ISR + 0x30), 1u << (0x65 - 96));
	CHECK_EQ(rd(0, PPR), 0x60);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);   /* 0x52 below PPR */
	/* a higher class preempts */
	wr(0, ICR, ICR_SELF | 0x70);
	CHECK_EQ(take(0), 0x70);
	wr(0, EOI, 0);                              /* ends 0x70 */
	CHECK_EQ(rd(0, ISR + 0x30), 1u << (0x65 - 96));
	wr(0, EOI, 0);                              /* ends 0x65 */
	CHECK_EQ(rd(0, ISR + 0x30), 0);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), 0x52);
	wr(0, TPR, 0x50);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);
	CHECK_EQ(emu_lapic_has_interrupt(&cpus[0]), false);
	CHECK_EQ(emu_lapic_get_cr8(&cpus[0]), 5);
	emu_lapic_set_cr8(&cpus[0], 4);
	CHECK_EQ(rd(0, TPR), 0x40);
	CHECK_EQ(emu_lapic_has_interrupt(&cpus[0]), true);
	CHECK_EQ(take(0), 0x52);
	wr(0, EOI, 0);
	CHECK_EQ(take(0), -1);
	emu_lapic_set_cr8(&cpus[0], 0);
	CHECK_EQ(take(0), 0x31);
	wr(0, EOI, 0);
	/* illegal vector: no delivery, ESR says so after the write to ESR */
	wr(0, ICR, ICR_SELF | 0x05);
	CHECK_EQ(take(0), -1);
	wr(0, ESR, 0);
	CHECK_EQ(rd(0, ESR), 0x20);
	/* software-disabled APIC takes no fixed interrupts */
	wr(0, SVR, 0xff);
	wr(0, ICR, ICR_SELF | 0x40);
	CHECK_EQ(take(0), -1);
	CHECK_EQ(rd(0, LVTT) & LVT_MASKED, LVT_MASKED);
	wr(0, LVTT, 0x40);                          /* cannot unmask while disabled */
	CHECK_EQ(rd(0, LVTT) & LVT_MASKED, LVT_MASKED);
	CHECK_EQ(rd(0, VER) & 0xff, 0x14);
}

/* --- IPIs: INIT, SIPI, fixed, NMI, destinations --- */

static void test_ipi(void)
{
	vm_setup();
	for (unsigned i = 0; i < NR_CPUS; i++)
		enable_apic(i);
	/* INIT to all but self, then the de-assert that Linux sends */
	wr(0, ICR, ICR_ALLBUT | ICR_INIT | ICR_ASSERT);
	wr(0, ICR, ICR_ALLBUT | ICR_INIT | ICR_LEVEL);
	CHECK_EQ(inits[0], 0);
	for (unsigned i = 1; i < NR_CPUS; i++)
		CHECK_EQ(inits[i], 1);
	CHECK_EQ(rd(1, SVR), 0xff);                 /* INIT reset the LAPIC */
	CHECK_EQ(rd(1, ID), 1u << 24);              /* but kept the ID */
	wr(0, ICR, ICR_ALLBUT | ICR_SIPI | ICR_ASSERT | 0x08);
	wr(0, ICR, ICR_ALLBUT | ICR_SIPI | ICR_ASSERT | 0x09);     /* ignored: running */
	for (unsigned i = 1; i < NR_CPUS; i++) {
		CHECK_EQ(sipis[i], 1);
		CHECK_EQ(sipi_vec[i], 0x08);
	}
	CHECK_EQ(sipis[0], 0);
	for (unsigned i = 1; i < NR_CPUS; i++)
		enable_apic(i);                 /* as the APs' code would */
	/* physical INIT + SIPI to cpu 2 only */
	wr(0, ICR2, 2u << 24);
	wr(0, ICR, ICR_INIT | ICR_ASSERT);
	wr(0, ICR, ICR_SIPI | ICR_ASSERT | 0x10);
	CHECK_EQ(inits[1], 1);
	CHECK_EQ(inits[2], 2);
	CHECK_EQ(sipi_vec[2], 0x10);
	CHECK_EQ(rd(0, ICR) & (1u << 12), 0);       /* never busy */
	/* fixed, physical: wakes the target */
	enable_apic(2);
	unsigned w = wakes[2];
	wr(0, ICR2, 2u << 24);
	wr(0, ICR, ICR_FIXED | ICR_ASSERT | 0x44);
	CHECK_EQ(wakes[2], w + 1);
	CHECK_EQ(take(2), 0x44);
	CHECK_EQ(take(1), -1);
	wr(2, EOI, 0);
	/* broadcast 0xff */
	wr(0, ICR2, 0xffu << 24);
	wr(0, ICR, ICR_FIXED | ICR_ASSERT | 0x45);
	for (unsigned i = 0; i < NR_CPUS; i++) {
		CHECK_EQ(take(i), 0x45);
		wr(i, EOI, 0);
	}
	/* logical flat: LDR bits */
	wr(1, LDR, 0x02u << 24);
	wr(3, LDR, 0x08u << 24);
	wr(0, ICR2, 0x0au << 24);
	wr(0, ICR, ICR_FIXED | ICR_LOGICAL | ICR_ASSERT | 0x46);
	CHECK_EQ(take(1), 0x46);
	CHECK_EQ(take(3), 0x46);
	CHECK_EQ(take(2), -1);
	CHECK_EQ(rd(0, DFR), 0xffffffffu);
	/* NMI */
	wr(0, ICR2, 3u << 24);
	wr(0, ICR, ICR_NMI | ICR_ASSERT);
	CHECK_EQ(cpus[3].pending.nmi, true);
	CHECK_EQ(cpus[1].pending.nmi, false);
}

/* --- x2APIC and IA32_APIC_BASE --- */

static void test_x2apic(void)
{
	int gp;

	vm_setup();
	CHECK_EQ(msr_rd(0, MSR_APIC_BASE, &gp), APIC | BASE_EN | BASE_BSP);
	CHECK_EQ(msr_rd(1, MSR_APIC_BASE, &gp), APIC | BASE_EN);
	/* x2APIC MSRs need x2APIC mode */
	msr_rd(1, X2(ID), &gp);
	CHECK_EQ(gp, 13);
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN | BASE_EXTD), -1);
	CHECK_EQ(msr_rd(1, X2(ID), &gp), 1);
	CHECK_EQ(gp, -1);
	CHECK_EQ(msr_rd(1, X2(LDR), &gp), 2);       /* cluster 0, bit 1 */
	CHECK_EQ(rd(1, ID), 0xdeadbeef);            /* MMIO no longer claimed */
	CHECK_EQ(msr_wr(1, X2(ID), 5), 13);         /* read-only */
	CHECK_EQ(msr_wr(1, X2(LDR), 5), 13);
	msr_rd(1, X2(EOI), &gp);                    /* write-only */
	CHECK_EQ(gp, 13);
	CHECK_EQ(msr_wr(1, X2(EOI), 1), 13);        /* must write 0 */
	CHECK_EQ(msr_wr(1, X2(EOI), 0), -1);
	msr_rd(1, X2(DFR), &gp);                    /* no DFR / ICR2 in x2APIC */
	CHECK_EQ(gp, 13);
	CHECK_EQ(msr_wr(1, X2(ICR2), 0), 13);
	CHECK_EQ(msr_wr(1, X2(TPR), 1ull << 32), 13);
	CHECK_EQ(msr_wr(1, X2(SVR), SVR_ON), -1);
	CHECK_EQ(msr_rd(1, X2(SVR), &gp), SVR_ON);
	/* 64-bit ICR: to cpu 2 (xAPIC mode, enabled) */
	enable_apic(2);
	CHECK_EQ(msr_wr(1, X2(ICR), 2ull << 32 | ICR_ASSERT | 0x47), -1);
	CHECK_EQ(msr_rd(1, X2(ICR), &gp), 2ull << 32 | ICR_ASSERT | 0x47);
	CHECK_EQ(take(2), 0x47);
	/* self IPI */
	CHECK_EQ(msr_wr(1, X2(SELF_IPI), 0x48), -1);
	CHECK_EQ(take(1), 0x48);
	msr_wr(1, X2(EOI), 0);
	/* x2APIC timer through MSRs */
	msr_wr(1, X2(TDCR), 0xb);
	msr_wr(1, X2(LVTT), 0x49);
	uint64_t t0 = emu_guest_ns(&vmx);
	msr_wr(1, X2(TMICT), 100);
	run_until(t0 + 100);
	CHECK_EQ(take(1), 0x49);
	CHECK_EQ(msr_wr(1, X2(TMCCT), 1), 13);
	/* mode rules (SDM 10.12.5) */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN), 13);            /* x2 -> xAPIC */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EXTD), 13);          /* EXTD without EN */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN | BASE_EXTD | (1 << 9)), 13);
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC), -1);                       /* x2 -> off */
	CHECK_EQ(msr_rd(1, MSR_APIC_BASE, &gp), APIC);
	CHECK_EQ(rd(1, ID), 0xdeadbeef);                                    /* off: no MMIO */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN | BASE_EXTD), 13); /* off -> x2 */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN), -1);             /* off -> xAPIC */
	CHECK_EQ(rd(1, SVR), 0xff);                 /* state was reset by the disable */
	CHECK_EQ(msr_wr(1, MSR_APIC_BASE, APIC | BASE_EN | BASE_EXTD), -1); /* xAPIC -> x2 */
	/* BSP bit is the hardware's */
	CHECK_EQ(msr_wr(0, MSR_APIC_BASE, APIC | BASE_EN), -1);
	CHECK_EQ(msr_rd(0, MSR_APIC_BASE, &gp), APIC | BASE_EN | BASE_BSP);
	/* x2APIC state survives INIT */
	msr_wr(1, X2(ICR), ICR_SELF | ICR_INIT | ICR_ASSERT);
	CHECK_EQ(inits[1], 1);
	CHECK_EQ(msr_rd(1, MSR_APIC_BASE, &gp), APIC | BASE_EN | BASE_EXTD);
	/* relocating the xAPIC page */
	CHECK_EQ(msr_wr(2, MSR_APIC_BASE, 0xfed00000ull | BASE_EN), -1);
	uint32_t v = 0;
	CHECK_EQ(emu_platform_mmio(&cpus[2], 0xfed00000ull + ID, (uint8_t *)&v, 4, false), true);
	CHECK_EQ(v, 2u << 24);
	CHECK_EQ(rd(2, ID), 0xdeadbeef);
	/* not ours */
	CHECK_EQ(msr_wr(0, 0xc0000080u, 0), -2);
}

/* --- IOAPIC --- */

static void test_ioapic(void)
{
	vm_setup();
	outb(0x21, 0xff);                           /* guests mask the 8259s */
	outb(0xa1, 0xff);
	for (unsigned i = 0; i < NR_CPUS; i++)
		enable_apic(i);
	CHECK_EQ(io_rd(1), 0x170011);
	CHECK_EQ(io_rd(0x10 + 2 * 4) & RTE_MASKED, RTE_MASKED);
	/* pin 4, edge, masked: the edge is remembered until unmasked */
	io_wr(0x10 + 2 * 4 + 1, 1u << 24);
	io_wr(0x10 + 2 * 4, RTE_MASKED | 0x34);
	emu_platform_set_irq(&vmx, 4, 1);
	CHECK_EQ(take(1), -1);
	io_wr(0x10 + 2 * 4, 0x34);
	CHECK_EQ(take(1), 0x34);
	wr(1, EOI, 0);
	emu_platform_set_irq(&vmx, 4, 1);           /* no new edge */
	CHECK_EQ(take(1), -1);
	emu_platform_set_irq(&vmx, 4, 0);
	emu_platform_set_irq(&vmx, 4, 1);
	CHECK_EQ(take(1), 0x34);
	wr(1, EOI, 0);
	emu_platform_set_irq(&vmx, 4, 0);
	/* engine op form */
	struct vm vm;
	memset(&vm, 0, sizeof(vm));
	vm.engine_vm = &vmx;
	CHECK_EQ(emu_platform_irq_line(&vm, 4, 1), 0);
	CHECK_EQ(take(1), 0x34);
	wr(1, EOI, 0);
	emu_platform_irq_line(&vm, 4, 0);
	/* pin 5, level, to cpu 0: remote IRR holds until EOI */
	io_wr(0x10 + 2 * 5 + 1, 0);
	io_wr(0x10 + 2 * 5, RTE_LEVEL | 0x35);
	emu_platform_set_irq(&vmx, 5, 1);
	CHECK_EQ(io_rd(0x10 + 2 * 5) & RTE_REMOTE_IRR, RTE_REMOTE_IRR);
	CHECK_EQ(rd(0, TMR + 0x10), 1u << (0x35 - 32));
	CHECK_EQ(take(0), 0x35);
	wr(0, EOI, 0);                              /* line still high: again */
	CHECK_EQ(take(0), 0x35);
	emu_platform_set_irq(&vmx, 5, 0);
	wr(0, EOI, 0);
	CHECK_EQ(io_rd(0x10 + 2 * 5) & RTE_REMOTE_IRR, 0);
	CHECK_EQ(take(0), -1);
	/* IRQ0 arrives on pin 2 */
	io_wr(0x10 + 2 * 2 + 1, 3u << 24);
	io_wr(0x10 + 2 * 2, 0x30);
	emu_platform_set_irq(&vmx, 0, 1);
	emu_platform_set_irq(&vmx, 0, 0);
	CHECK_EQ(take(3), 0x30);
	/* logical destination */
	wr(2, LDR, 0x04u << 24);
	io_wr(0x10 + 2 * 6 + 1, 0x04u << 24);
	io_wr(0x10 + 2 * 6, (1u << 11) | 0x36);
	emu_platform_set_irq(&vmx, 6, 1);
	CHECK_EQ(take(2), 0x36);
	CHECK_EQ(take(0), -1);
}

/* --- PIT channel 2 as guests/rt/time.c uses it, and channel 0 --- */

#define PIT_NS(ticks) (((ticks) * 1000000000ull + EMU_PIT_HZ - 1) / EMU_PIT_HZ)

static void test_pit(void)
{
	vm_setup();
	run_until(12345);
	/* pit_start(11932): gate on, speaker off, mode 0 lobyte/hibyte. Each
	 * port access costs EMU_ISA_IO_NS after it samples the device. */
	uint64_t t0 = emu_guest_ns(&vmx);
	outb(0x61, (uint8_t)((inb(0x61) & ~2) | 1));
	CHECK_EQ(emu_guest_ns(&vmx), t0 + 2 * EMU_ISA_IO_NS);
	outb(0x43, 0xb0);
	CHECK_EQ(inb(0x61) & 0x20, 0);              /* mode 0: OUT low at once */
	outb(0x42, 11932 & 0xff);
	t0 = emu_guest_ns(&vmx);                    /* counting starts here */
	outb(0x42, 11932 >> 8);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	run_until(t0 + PIT_NS(11932) - 1);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	run_until(t0 + PIT_NS(11932));
	CHECK_EQ(inb(0x61) & 0x21, 0x21);
	/* latch and read the count (wrapped past 0 in mode 0) */
	run_until(t0 + PIT_NS(11932 + 100));
	outb(0x43, 0x80);
	uint16_t c = inb(0x42);
	c |= (uint16_t)(inb(0x42) << 8);
	CHECK_EQ(c, (uint16_t)(0 - 100));
	/* gate low pauses the count */
	outb(0x43, 0xb0);
	outb(0x42, 0x10);
	t0 = emu_guest_ns(&vmx);
	outb(0x42, 0x00);                           /* 16 ticks */
	run_until(t0 + PIT_NS(8));
	outb(0x61, 0);
	run_until(t0 + PIT_NS(100));
	CHECK_EQ(inb(0x61) & 0x20, 0);
	t0 = emu_guest_ns(&vmx);
	outb(0x61, 1);
	run_until(t0 + PIT_NS(8) - 1);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	run_until(t0 + PIT_NS(8));
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	/* read-back status of channel 2: OUT high, mode 0, lo/hi */
	outb(0x43, 0xe8);
	CHECK_EQ(inb(0x42), 0x80 | 0x30);
	/* the refresh bit toggles */
	t0 = emu_guest_ns(&vmx);
	uint8_t r0 = inb(0x61) & 0x10;
	run_until(t0 + 15085);
	CHECK_EQ(inb(0x61) & 0x10, r0 ^ 0x10);

	/* channel 0, mode 2, through IOAPIC pin 2 to cpu 0 */
	enable_apic(0);
	io_wr(0x10 + 2 * 2 + 1, 0);
	io_wr(0x10 + 2 * 2, 0x30);
	outb(0x43, 0x34);
	outb(0x40, 1193 & 0xff);
	t0 = emu_guest_ns(&vmx);
	outb(0x40, 1193 >> 8);                      /* ~1 kHz */
	CHECK_EQ(emu_next_deadline_ns(&vmx), t0 + PIT_NS(1193));
	int ticks = 0;
	for (int ms = 1; ms <= 10; ms++) {
		run_until(t0 + PIT_NS(1193ull * ms));
		if (take(0) == 0x30) {
			ticks++;
			wr(0, EOI, 0);
		}
	}
	CHECK_EQ(ticks, 10);
	/* count reads down from 1193 */
	run_until(t0 + PIT_NS(1193ull * 10 + 93));
	outb(0x43, 0x00);
	c = inb(0x40);
	c |= (uint16_t)(inb(0x40) << 8);
	CHECK_EQ(c, 1100);
}

/* guests/rt/time.c polls port 0x61 at most 2,000,000 times for a 10 ms
 * (and up to 50 ms) count: polls must cost guest time like ISA cycles. */
static void test_pit_poll_budget(void)
{
	const unsigned cal = 11931, max_polls = 2000000;
	unsigned polls = 0;

	vm_setup();
	outb(0x61, 1);
	outb(0x43, 0xb0);
	outb(0x42, cal & 0xff);
	uint64_t t0 = emu_guest_ns(&vmx);
	outb(0x42, cal >> 8);
	while (!(inb(0x61) & 0x20) && polls < max_polls) {
		cpus[0].retired += 6;               /* the loop around the IN */
		polls++;
	}
	CHECK_EQ(polls > 9000 && polls < 10000, true);
	uint64_t ms10 = emu_guest_ns(&vmx) - t0;
	CHECK_EQ(ms10 >= 10000000 && ms10 < 10010000, true);
}

/* --- PIC --- */

static void pic_init(void)
{
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
}

static void test_pic(void)
{
	vm_setup();
	pic_init();
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	CHECK_EQ(inb(0x21), 0xff);
	emu_platform_set_irq(&vmx, 1, 1);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);   /* masked */
	outb(0x21, 0xfd);
	CHECK_EQ(emu_lapic_has_interrupt(&cpus[0]), true);  /* LINT0 ExtINT at reset */
	CHECK_EQ(emu_lapic_has_interrupt(&cpus[1]), false); /* BSP only */
	CHECK_EQ(take(0), 0x21);
	outb(0x20, 0x0b);
	CHECK_EQ(inb(0x20), 0x02);                  /* ISR */
	CHECK_EQ(take(0), -1);                      /* in service, edge consumed */
	outb(0x20, 0x20);                           /* EOI */
	CHECK_EQ(inb(0x20), 0x00);
	/* slave IRQ 9 through the cascade */
	outb(0x21, 0xf9);
	outb(0xa1, 0xfd);
	emu_platform_set_irq(&vmx, 9, 1);
	CHECK_EQ(take(0), 0x29);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK_EQ(take(0), -1);
	/* LINT0 masked: the PIC does not reach the CPU */
	wr(0, SVR, SVR_ON);
	wr(0, LINT0, LVT_MASKED | (7u << 8));
	emu_platform_set_irq(&vmx, 1, 0);
	emu_platform_set_irq(&vmx, 1, 1);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[0]), -1);
	wr(0, LINT0, 7u << 8);
	CHECK_EQ(take(0), 0x21);
	/* PIT IRQ0 through the PIC when the IOAPIC pin is masked */
	outb(0x20, 0x20);
	outb(0x21, 0xfe);
	outb(0x43, 0x30);
	outb(0x40, 100);
	outb(0x40, 0);
	run_until(emu_guest_ns(&vmx) + PIT_NS(100));
	CHECK_EQ(take(0), 0x20);
}

/* --- guest time --- */

static void test_time(void)
{
	vm_setup();
	cpus[0].retired = 100;
	cpus[2].retired = 50;
	CHECK_EQ(emu_guest_ns(&vmx), 150);
	CHECK_EQ(emu_next_deadline_ns(&vmx), EMU_NO_DEADLINE);
	enable_apic(3);
	wr(3, TDCR, 0xb);
	wr(3, LVTT, 0x50);
	wr(3, TMICT, 10000);
	CHECK_EQ(emu_next_deadline_ns(&vmx), 10150);
	/* all idle: the core jumps to the deadline */
	emu_platform_advance(&vmx, emu_next_deadline_ns(&vmx));
	CHECK_EQ(emu_guest_ns(&vmx), 10150);
	CHECK_EQ(take(3), 0x50);
	/* advancing to the past does not move the clock back */
	emu_platform_advance(&vmx, 5);
	CHECK_EQ(emu_guest_ns(&vmx), 10150);
	cpus[1].retired = 7;
	CHECK_EQ(emu_guest_ns(&vmx), 10157);
	CHECK_EQ(emu_tsc(&cpus[1]), 10157);
}

/* --- snapshots --- */

/* Saved with a LAPIC timer, the PIT and an IOAPIC entry running, changed,
 * restored (the retired count is CORE's: put back by hand): everything
 * reads as before, saving again gives the same bytes, and the timer fires
 * where it would have. */
static void test_snapshot(void)
{
	vm_setup();
	enable_apic(1);
	wr(1, LVTT, LVTT_PERIODIC | 0x41);
	wr(1, TMICT, 500);
	outb(0x43, 0x34);                   /* PIT channel 0, mode 2 */
	outb(0x40, 0x00);
	outb(0x40, 0x10);
	io_wr(0x10 + 2 * 3, 0x45);
	run_until(emu_guest_ns(&vmx) + 700);
	CHECK_EQ(take(1), 0x41);
	size_t size = emu_platform_snap_size(&vmx);
	uint8_t *buf = malloc(size), *again = malloc(size);
	emu_platform_save(&vmx, buf);
	uint64_t retired = cpus[0].retired, now = emu_guest_ns(&vmx);
	uint64_t deadline = emu_next_deadline_ns(&vmx);
	uint32_t count = rd(1, TMCCT), isr = rd(1, ISR + 0x20);

	wr(1, EOI, 0);
	run_until(now + 5000);
	wr(1, TMICT, 0);
	io_wr(0x10 + 2 * 3, RTE_MASKED);
	outb(0x43, 0x30);

	cpus[0].retired = retired;
	emu_platform_restore(&vmx, buf);
	emu_platform_save(&vmx, again);
	CHECK(memcmp(buf, again, size) == 0, "saved again after a restore");
	CHECK_EQ(emu_guest_ns(&vmx), now);
	CHECK_EQ(emu_next_deadline_ns(&vmx), deadline);
	CHECK_EQ(rd(1, TMCCT), count);
	CHECK_EQ(rd(1, ISR + 0x20), isr);
	CHECK_EQ(io_rd(0x10 + 2 * 3), 0x45);
	wr(1, EOI, 0);
	uint64_t fire = now + count * 2;    /* TDCR: divide by 2 */
	run_until(fire - 1);
	CHECK_EQ(emu_lapic_pending_vector(&cpus[1]), -1);
	run_until(fire);
	CHECK_EQ(take(1), 0x41);
	free(buf);
	free(again);
}

int main(void)
{
	test_timer_oneshot_divide();
	test_timer_periodic();
	test_timer_masked();
	test_timer_tsc_deadline();
	test_priority_eoi();
	test_ipi();
	test_x2apic();
	test_ioapic();
	test_pit();
	test_pit_poll_budget();
	test_pic();
	test_time();
	test_snapshot();
	emu_platform_destroy(&vmx);
	for (unsigned i = 0; i < NR_CPUS; i++)
		emu_lapic_destroy(&cpus[i]);
	return check_summary("emu_platform");
}
