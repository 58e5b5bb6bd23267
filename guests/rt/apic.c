/* guests/rt/apic.c */
#include "guests/rt/apic.h"

#include "guests/rt/idt.h"
#include "guests/rt/io.h"

#define X2APIC_MSR(reg) (0x800u + ((reg) >> 4))
/* Bounded wait for an xAPIC ICR to drain (KVM delivers at once). */
#define ICR_BUSY_POLLS 100000

/* Written by the BSP before any AP starts, only read afterwards. */
static enum apic_mode mode = APIC_MODE_XAPIC;

enum apic_mode apic_mode(void)
{
	return mode;
}

uint32_t apic_read(uint32_t reg)
{
	if (mode == APIC_MODE_X2APIC)
		return (uint32_t)rdmsr(X2APIC_MSR(reg));
	return *(volatile uint32_t *)(uintptr_t)(APIC_DEFAULT_BASE + reg);
}

void apic_write(uint32_t reg, uint32_t v)
{
	if (mode == APIC_MODE_X2APIC)
		wrmsr(X2APIC_MSR(reg), v);
	else
		*(volatile uint32_t *)(uintptr_t)(APIC_DEFAULT_BASE + reg) = v;
}

static void enable_in_mode(void)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE) | APIC_BASE_EN;

	if (mode == APIC_MODE_X2APIC)
		base |= APIC_BASE_EXTD;
	wrmsr(MSR_IA32_APIC_BASE, base);
}

bool apic_enable_x2apic(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_ECX_X2APIC))
		return false;
	mode = APIC_MODE_X2APIC;
	enable_in_mode();
	return true;
}

void apic_init(void)
{
	enable_in_mode();
	apic_write(APIC_SVR, APIC_SVR_ENABLE | RT_VEC_SPURIOUS);
	apic_write(APIC_TPR, 0);
	apic_write(APIC_LVTT, APIC_LVT_MASKED | RT_VEC_TIMER);
}

uint32_t apic_id(void)
{
	uint32_t id = apic_read(APIC_ID);

	return mode == APIC_MODE_X2APIC ? id : id >> 24;
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

static void icr_write(uint32_t dest, uint32_t low)
{
	if (mode == APIC_MODE_X2APIC) {
		wrmsr(X2APIC_MSR(APIC_ICR), (uint64_t)dest << 32 | low);
		return;
	}
	apic_write(APIC_ICR2, dest << 24);
	apic_write(APIC_ICR, low);
	for (int i = 0; i < ICR_BUSY_POLLS && (apic_read(APIC_ICR) & APIC_ICR_BUSY); i++)
		cpu_relax();
}

void apic_send_ipi(uint32_t dest_apic_id, uint8_t vector)
{
	icr_write(dest_apic_id, APIC_ICR_FIXED | APIC_ICR_ASSERT | vector);
}

void apic_send_ipi_allbutself(uint8_t vector)
{
	icr_write(0, APIC_ICR_ALLBUTSELF | APIC_ICR_FIXED | APIC_ICR_ASSERT | vector);
}

void apic_start_aps(uint8_t page)
{
	icr_write(0, APIC_ICR_ALLBUTSELF | APIC_ICR_INIT | APIC_ICR_ASSERT);
	icr_write(0, APIC_ICR_ALLBUTSELF | APIC_ICR_STARTUP | page);
}

void apic_timer_periodic(uint8_t vector, uint32_t count)
{
	apic_write(APIC_TDCR, APIC_TDCR_DIV1);
	apic_write(APIC_LVTT, APIC_LVTT_PERIODIC | vector);
	apic_write(APIC_TMICT, count);
}

void apic_timer_oneshot(uint8_t vector, uint32_t count)
{
	apic_write(APIC_TDCR, APIC_TDCR_DIV1);
	apic_write(APIC_LVTT, vector);
	apic_write(APIC_TMICT, count);
}

void apic_timer_stop(void)
{
	apic_write(APIC_LVTT, APIC_LVT_MASKED | RT_VEC_TIMER);
	apic_write(APIC_TMICT, 0);
}
