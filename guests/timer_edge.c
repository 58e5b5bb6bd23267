/* guests/timer_edge.c — timer_edge.elf: timers at the ends of their
 * arithmetic, checked from inside. A TSC deadline near 2^64, after the
 * guest set its TSC back to 0 (so deadline minus TSC plus the host's
 * notion of now passes 2^64), must not fire; one 2 ms ahead must. */
#include "guests/rt/apic.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/time.h"

#define MSR_TSC          0x10u
#define MSR_TSC_DEADLINE 0x6e0u
#define LVTT_TSC_DEADLINE (2u << 17)
#define EDGE_VECTOR      0x41

static volatile unsigned deadline_hits;

static void on_deadline(struct rt_frame *f)
{
	(void)f;
	deadline_hits++;
	apic_eoi();
}

/* Arm the TSC deadline at `at`, wait 10 ms with interrupts on; hits. */
static unsigned hits_after(uint64_t at)
{
	deadline_hits = 0;
	wrmsr(MSR_TSC_DEADLINE, at);
	__asm__ volatile("sti" ::: "memory");
	pit_wait_us(10000);
	__asm__ volatile("cli" ::: "memory");
	return deadline_hits;
}

int main(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & (1u << 24))) {
		report_skip("TSC deadline near 2^64", "no TSC-deadline timer");
		return report_summary();
	}
	time_calibrate();
	idt_set_handler(EDGE_VECTOR, on_deadline);
	apic_write(APIC_LVTT, EDGE_VECTOR | LVTT_TSC_DEADLINE);

	wrmsr(MSR_TSC, 0);
	expect_eq(hits_after(~0ull), 0, "TSC deadline 2^64-1 after TSC set to 0 never fires");
	expect_eq(hits_after(~0ull - 1000000), 0, "TSC deadline 2^64-1ms never fires");
	expect_eq(hits_after(rdtsc() + time_tsc_khz() * 2), 1, "TSC deadline 2 ms ahead fires");
	apic_write(APIC_LVTT, APIC_LVT_MASKED);
	return report_summary();
}
