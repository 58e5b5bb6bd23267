/* guests/rt/smp.c */
#include "guests/rt/smp.h"

#include "guests/rt/apic.h"
#include "guests/rt/boot.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/string.h"
#include "guests/rt/time.h"

_Static_assert(RT_AP_STACK_SIZE == 4096, "trampoline.S shifts by 12");
_Static_assert(RT_MAX_CPUS == 256, "trampoline.S RT_MAX_CPUS_ASM");

#define RUN_TIMEOUT_MS 10000

struct rt_cpu rt_cpus[RT_MAX_CPUS];
uint8_t rt_ap_stacks[(RT_MAX_CPUS - 1) * RT_AP_STACK_SIZE] __attribute__((aligned(4096)));
volatile uint32_t rt_ap_next;       /* APs that took a number (trampoline.S) */
uint32_t rt_ap_cr3;                 /* page tables the APs switch to */

extern const uint8_t rt_trampoline_start[], rt_trampoline_end[];

static volatile uint32_t cpus_up = 1;
static uint32_t bsp_apic_id;

static struct {
	void (*fn)(void *arg);
	void *arg;
	volatile uint64_t gen;
	volatile uint32_t done;
} work;

static void set_gs_base(struct rt_cpu *c)
{
	c->self = c;
	wrmsr(MSR_GS_BASE, (uintptr_t)c);
}

static void timer_handler(struct rt_frame *f)
{
	struct rt_cpu *c = this_cpu();

	(void)f;
	c->ticks++;
	if (c->on_tick)
		c->on_tick(c);
	apic_eoi();
}

/* Its only job is to end a HLT; the woken CPU looks at the shared state. */
static void ipi_handler(struct rt_frame *f)
{
	(void)f;
	apic_eoi();
}

void smp_init_bsp(void)
{
	set_gs_base(&rt_cpus[0]);
	idt_set_handler(RT_VEC_TIMER, timer_handler);
	idt_set_handler(RT_VEC_IPI, ipi_handler);
}

unsigned smp_ncpus(void)
{
	unsigned n = rt_boot.ncpus;

	if (n < 1)
		n = 1;
	return n > RT_MAX_CPUS ? RT_MAX_CPUS : n;
}

unsigned smp_cpus_up(void)
{
	return cpus_up;
}

static void ap_idle(struct rt_cpu *c)
{
	for (;;) {
		cli();
		uint64_t gen = work.gen;
		if (gen != c->work_gen) {
			c->work_gen = gen;
			sti();
			work.fn(work.arg);
			__atomic_add_fetch(&work.done, 1, __ATOMIC_RELEASE);
			apic_send_ipi(bsp_apic_id, RT_VEC_IPI);
			continue;
		}
		sti_hlt();
	}
}

void rt_ap_main(uint32_t cpu);
void rt_ap_main(uint32_t cpu)
{
	struct rt_cpu *c = &rt_cpus[cpu];

	set_gs_base(c);
	c->id = cpu;
	idt_load();
	apic_init();
	c->apic_id = apic_id();
	c->work_gen = work.gen;
	__atomic_add_fetch(&cpus_up, 1, __ATOMIC_RELEASE);
	apic_send_ipi(bsp_apic_id, RT_VEC_IPI);
	ap_idle(c);
}

struct count_goal {
	volatile uint32_t *counter;
	uint32_t goal;
};

static bool count_reached(void *arg)
{
	struct count_goal *g = arg;

	return __atomic_load_n(g->counter, __ATOMIC_ACQUIRE) >= g->goal;
}

/* The trampoline's page is page 0 or low memory: hide the constant from
 * the compiler, which may treat a store through address 0 as a trap. */
static void copy_trampoline(void)
{
	uint8_t *dst = (uint8_t *)(uintptr_t)RT_TRAMPOLINE_BASE;

	__asm__("" : "+r"(dst));
	memcpy(dst, rt_trampoline_start, (size_t)(rt_trampoline_end - rt_trampoline_start));
}

unsigned smp_start_aps(unsigned expected, uint32_t timeout_ms)
{
	struct count_goal g = { &cpus_up, expected };

	rt_cpus[0].apic_id = bsp_apic_id = apic_id();
	time_calibrate();           /* before any AP could race to do it */
	rt_ap_cr3 = (uint32_t)read_cr3();
	copy_trampoline();
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	apic_start_aps(RT_TRAMPOLINE_BASE >> 12);
	if (expected > 1)
		wait_until(count_reached, &g, timeout_ms);
	return cpus_up;
}

void smp_run_on_all(void (*fn)(void *arg), void *arg)
{
	struct count_goal g = { &work.done, cpus_up - 1 };

	work.fn = fn;
	work.arg = arg;
	work.done = 0;
	__atomic_add_fetch(&work.gen, 1, __ATOMIC_RELEASE);
	this_cpu()->work_gen = work.gen;
	if (cpus_up > 1)
		apic_send_ipi_allbutself(RT_VEC_IPI);
	fn(arg);
	if (!wait_until(count_reached, &g, RUN_TIMEOUT_MS))
		rt_fail_now("smp_run_on_all: %u of %u CPUs finished in %u ms",
			    work.done + 1, cpus_up, RUN_TIMEOUT_MS);
}

void smp_timer_start(unsigned hz)
{
	struct rt_cpu *c = this_cpu();

	c->timer_periodic = true;
	apic_timer_periodic(RT_VEC_TIMER, (uint32_t)(time_apic_khz() * 1000 / hz));
}
