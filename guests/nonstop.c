/* guests/nonstop.c — nonstop.elf, for gdb's non-stop mode (two CPUs). The
 * AP takes its APIC timer (NS_HZ) and counts in ns_count, forever. The BSP
 * calls ns_ready(), where gdb stops it alone; while it is stopped gdb sets
 * ns_go and waits for ns_done: the AP sets it once it has taken NS_TICKS
 * timer ticks after it saw ns_go. Back from ns_ready, the BSP checks from
 * the inside that the AP answered, with those ticks, while the BSP sat in
 * ns_ready (an all-stop debugger stops the AP too: ns_done stays 0), then
 * spins in ns_idle until gdb sets ns_exit, and exits. */
#include "guests/rt/apic.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/time.h"

#define NS_HZ 200
#define NS_TICKS 4

#define NS_FN __attribute__((noinline, noclone, used))

volatile uint64_t ns_count, ns_go, ns_done, ns_exit, ns_ap_ticks, ns_go_ticks;

static void __attribute__((noreturn)) ap_count(void)
{
	smp_timer_start(NS_HZ);
	sti();
	for (;;) {
		ns_count++;
		ns_ap_ticks = this_cpu()->ticks;
		if (ns_go && !ns_go_ticks)
			ns_go_ticks = ns_ap_ticks + 1;     /* + 1: never 0 */
		if (ns_go_ticks && !ns_done && ns_ap_ticks + 1 >= ns_go_ticks + NS_TICKS)
			ns_done = 1;
	}
}

NS_FN void ns_ready(void)
{
	__asm__ volatile("" ::: "memory");
}

NS_FN void ns_idle(void)
{
	while (!ns_exit)
		__asm__ volatile("pause" ::: "memory");
}

static void __attribute__((noreturn)) bsp_check(void)
{
	/* the AP counts and takes its timer (bounded: a timer that never
	 * fires fails the checks below) */
	while (ns_ap_ticks < 2 && ns_count < (1u << 28))
		__asm__ volatile("pause" ::: "memory");
	printf("nonstop: AP counting, %lu ticks\n", (unsigned long)ns_ap_ticks);
	uint64_t ticks0 = ns_ap_ticks;
	ns_ready();
	bool done = ns_done;
	uint64_t went = ns_go_ticks, ticks1 = ns_ap_ticks;
	expect(done, "the AP answered while the BSP was stopped");
	expect(went > ticks0, "the AP saw ns_go after the BSP stopped");
	expect(ticks1 >= ticks0 + NS_TICKS, "the AP took its timer while the BSP was stopped");
	printf("nonstop: AP ticks %lu -> %lu while stopped\n", (unsigned long)ticks0,
	       (unsigned long)ticks1);
	ns_idle();
	rt_exit((uint32_t)report_summary());
}

/* Neither part returns: the BSP's ends the machine. */
static void split(void *arg)
{
	(void)arg;
	if (rt_cpu_id() == 0)
		bsp_check();
	ap_count();
}

int main(void)
{
	time_calibrate();
	unsigned up = smp_start_aps(2, 100000);
	if (!expect_eq(up, 2, "CPUs up"))
		return report_summary();
	smp_run_on_all(split, NULL);
	return report_summary();
}
