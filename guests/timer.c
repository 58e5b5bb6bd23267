/* guests/timer.c — timer.elf: the APIC timer, periodic at TIMER_HZ after
 * calibrating it against the PIT, measured against the PIT over about
 * 0.2 s. Passes within +-50% of the expected tick count. */
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
	uint64_t t0 = c->ticks, us0 = time_now_us();
	bool pit = pit_wait_us(MEASURE_MS * 1000);
	uint64_t ticks = c->ticks - t0, us = time_now_us() - us0;
	cli();
	apic_timer_stop();
	printf("ticks %lu in %u ms (TSC says %lu us)\n", (unsigned long)ticks, MEASURE_MS,
	       (unsigned long)us);
	expect(pit, "PIT measured the interval");
	uint64_t want = TIMER_HZ * MEASURE_MS / 1000;
	expect(ticks >= want / 2 && ticks <= want * 3 / 2, "tick count within 50% of 20");
	return report_summary();
}
