/* guests/demo.c — demo.elf, what `make run` boots: every vCPU runs its
 * APIC timer at DEMO_HZ and says so on serial now and then; demo_counter
 * keeps growing. Never exits, unless the command line says exit_after=N
 * (ticks of vCPU 0; bench/boot uses it). Named, non-inlined functions give gdb
 * something to break on: demo_tick(cpu), demo_work(n), demo_idle(). */
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define DEMO_HZ          10
#define DEMO_PRINT_EVERY 20         /* ticks: one line per CPU every 2 s */
#define DEMO_AP_TIMEOUT_MS 10000

#define DEMO_FN __attribute__((noinline, noclone, used))

volatile uint64_t demo_counter;

DEMO_FN uint64_t demo_work(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		__atomic_add_fetch(&demo_counter, 1, __ATOMIC_RELAXED);
	return demo_counter;
}

DEMO_FN void demo_tick(unsigned cpu)
{
	uint64_t t = rt_cpus[cpu].ticks;

	if (t % DEMO_PRINT_EVERY == 0)
		printf("cpu%u tick %lu counter %lu\n", cpu, (unsigned long)t,
		       (unsigned long)demo_counter);
}

/* Sleeps until the next interrupt (the timer, at the latest). */
DEMO_FN void demo_idle(void)
{
	sti_hlt();
}

static void demo_cpu(void *arg)
{
	struct rt_cpu *c = this_cpu();
	uint64_t seen = 0;

	(void)arg;
	uint64_t exit_after = cmdline_u64("exit_after", 0);
	smp_timer_start(DEMO_HZ);
	printf("cpu%u (APIC id %u): timer at %u Hz\n", c->id, c->apic_id, DEMO_HZ);
	for (;;) {
		demo_idle();
		if (c->ticks == seen)
			continue;
		seen = c->ticks;
		demo_tick(c->id);
		demo_work(c->id + 1);
		if (c->id == 0 && exit_after && seen >= exit_after)
			rt_exit(0);
	}
}

int main(void)
{
	unsigned n = smp_ncpus();

	printf("vmdb demo guest: %u CPUs announced\n", n);
	unsigned up = smp_start_aps(n, DEMO_AP_TIMEOUT_MS);
	printf("cpus up: %u\n", up);
	smp_run_on_all(demo_cpu, NULL);
	return 0;
}
