/* guests/rt/smp.h — CPUs: per-CPU data (reached through GS), bringing up
 * the application processors, and running a function on every CPU.
 *
 * smp_start_aps() copies a real-mode trampoline (trampoline.S) to physical
 * address RT_TRAMPOLINE_BASE and sends INIT + STARTUP to all other CPUs at
 * once. Each AP goes 16 -> 32 -> 64 bit with the runtime's GDT and the
 * BSP's page tables, takes the next CPU number and its own stack, enables
 * its APIC in the BSP's mode, checks in and then sleeps (HLT) waiting for
 * work from smp_run_on_all(). */
#ifndef RT_SMP_H
#define RT_SMP_H

#include <stdbool.h>
#include <stdint.h>

#define RT_MAX_CPUS        256
#define RT_AP_STACK_SIZE   4096
#define RT_TRAMPOLINE_BASE 0x0      /* kvm-unit-tests uses 0 too: SIPI vector 0 */

struct rt_cpu {
	struct rt_cpu *self;            /* %gs:0, so this_cpu() is one load */
	uint32_t id;                    /* 0 = BSP, APs 1.. in check-in order */
	uint32_t apic_id;
	volatile uint64_t ticks;        /* timer interrupts taken */
	volatile uint64_t work_gen;     /* last smp_run_on_all generation run */
	bool timer_periodic;
	void (*on_tick)(struct rt_cpu *c);  /* called from the timer interrupt */
};

extern struct rt_cpu rt_cpus[RT_MAX_CPUS];

static inline struct rt_cpu *this_cpu(void)
{
	struct rt_cpu *c;

	__asm__ volatile("movq %%gs:0, %0" : "=r"(c));
	return c;
}

static inline unsigned rt_cpu_id(void)
{
	return this_cpu()->id;
}

/* Set up CPU 0's per-CPU data and the runtime's timer/IPI handlers. */
void smp_init_bsp(void);

/* CPUs the platform announces (boot info or fw_cfg), capped at RT_MAX_CPUS. */
unsigned smp_ncpus(void);

/* Start the APs and wait (bounded) until expected CPUs in all are up.
 * Returns the number of CPUs up, BSP included. */
unsigned smp_start_aps(unsigned expected, uint32_t timeout_ms);
unsigned smp_cpus_up(void);

/* Run fn(arg) on every CPU that is up (the BSP too, last to start) and
 * wait until all are done. fn may never return (demo). */
void smp_run_on_all(void (*fn)(void *arg), void *arg);

/* Start this CPU's APIC timer: periodic at hz, on RT_VEC_TIMER. */
void smp_timer_start(unsigned hz);

#endif
