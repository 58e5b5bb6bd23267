/* guests/timer.c — timer.elf: the APIC timer, periodic at TIMER_HZ after
 * calibrating it against the PIT, measured against the PIT over about
 * 0.2 s, three times. Passes when the most ticks of a round are within
 * +-50% of the expected count. */
#include "guests/rt/apic.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/time.h"

#define TIMER_HZ 100
#define MEASURE_MS 200

int main(void)
{
	struct rt_cpu *c = this_cpu();

	if (!expect(time_calibrate(), "PIT channel 2 counts (calibration)"))
		return report_summary();
	printf("APIC timer %lu kHz, TSC %lu kHz\n", (unsigned long)time_apic_khz(),
	       (unsigned long)time_tsc_khz());
	smp_timer_start(TIMER_HZ);
	sti();
	/* the most ticks of three rounds: a vCPU the host preempts can only
	 * lose ticks (coalesced), never gain them */
	uint64_t ticks = 0;
	bool pit = true;
	for (int round = 0; round < 3; round++) {
		uint64_t t0 = c->ticks, us0 = time_now_us();
		pit &= pit_wait_us(MEASURE_MS * 1000);
		uint64_t n = c->ticks - t0, us = time_now_us() - us0;
		printf("ticks %lu in %u ms (TSC says %lu us)\n", (unsigned long)n, MEASURE_MS,
		       (unsigned long)us);
		ticks = n > ticks ? n : ticks;
	}
	cli();
	apic_timer_stop();
	expect(pit, "PIT measured the interval");
	uint64_t want = TIMER_HZ * MEASURE_MS / 1000;
	expect(ticks >= want / 2 && ticks <= want * 3 / 2, "tick count within 50% of 20");
	return report_summary();
}
