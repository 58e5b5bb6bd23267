/* guests/smp.c — smp.elf: start every CPU the platform announces; each
 * one (BSP too) writes its APIC id into a check-in array; the BSP waits,
 * bounded, and prints "cpus up: N". expect_cpus=N overrides the count. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define SMP_TIMEOUT_MS 100000       /* 64 vCPUs on 2 emulating host cores */
#define NO_ID 0xffffffffu

static volatile uint32_t checkin[RT_MAX_CPUS];

static void check_in(void *arg)
{
	(void)arg;
	checkin[rt_cpu_id()] = apic_id();
}

static unsigned distinct_ids(unsigned n)
{
	unsigned distinct = 0;

	for (unsigned i = 0; i < n; i++) {
		bool dup = checkin[i] == NO_ID;
		for (unsigned j = 0; j < i && !dup; j++)
			dup = checkin[j] == checkin[i];
		distinct += !dup;
	}
	return distinct;
}

int main(void)
{
	unsigned expected = (unsigned)cmdline_u64("expect_cpus", smp_ncpus());

	for (unsigned i = 0; i < RT_MAX_CPUS; i++)
		checkin[i] = NO_ID;
	printf("starting %u CPUs\n", expected);
	unsigned up = smp_start_aps(expected, SMP_TIMEOUT_MS);
	smp_run_on_all(check_in, NULL);
	unsigned n = distinct_ids(up);
	printf("cpus up: %u\n", n);
	expect_eq(up, expected, "CPUs that started");
	expect_eq(n, expected, "distinct APIC ids checked in");
	return report_summary();
}
