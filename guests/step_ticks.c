/* guests/step_ticks.c — step_ticks.elf: APIC timer interrupts across a
 * fixed amount of guest work, counted so that the count depends only on
 * the instructions executed, never on how long they took ("none
 * lost").
 *
 * Why not a periodic timer over a timed window: while a debugger holds a
 * vCPU, time goes on; periodic expirations during the stop coalesce into
 * one pending interrupt (the IRR has one bit per vector) on real hardware
 * as on KVM, so any count tied to wall time differs between a stepped and
 * an unstepped run for reasons that are not a debugger bug. What a
 * debugger must never do is lose (or duplicate) an interrupt that became
 * pending. So the guest makes interrupts pending at fixed points of its
 * work: each of ROUNDS rounds does a fixed piece of arithmetic, arms a
 * one-shot timer (TICK_COUNT bus clocks), and waits with interrupts
 * enabled for one instruction at a time (wait_tick) until its handler has
 * run. Each round takes exactly one tick,
 * so with nothing lost or duplicated the count is ROUNDS with or without
 * a debugger. A tick that does not come within WAIT_LIMIT windows is
 * reported lost and ends the work; a duplicated one shows in the count.
 *
 * The checksum of the work is printed too: stepping must not change what
 * the guest computes.
 *
 * gdb: `break step_ticks_work` then `stepi 10000` and `continue`. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define STEP_FN __attribute__((noinline, noclone, used))
#define ROUNDS 400
#define TICK_COUNT 2000u            /* one-shot, divide 1: ~2 us at 1 GHz */
#define WAIT_LIMIT 100000u          /* sti; nop; cli windows after expiry before a tick counts as lost */

volatile uint64_t step_ticks;
static volatile uint64_t ticks_while_if0;

static void tick_handler(struct rt_frame *f)
{
	if (!(f->rflags & RFLAGS_IF))
		ticks_while_if0++;          /* cannot happen: an interrupt needs IF=1 */
	step_ticks++;
	apic_eoi();
}

/* A fixed piece of arithmetic: an xorshift step per iteration. */
static uint64_t work_round(uint64_t x, unsigned round)
{
	for (unsigned i = 0; i < 8 + (round & 7); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static unsigned lost_round = ROUNDS;   /* first round whose tick never came */

/* Wait for round r's tick. Interrupts are off except in `sti; hlt` (while
 * the timer still counts: its expiry wakes the HLT) or `sti; nop` (once
 * it reads 0, the interrupt is pending and is taken after the NOP). Only
 * the second kind is counted and bounded: a tick lost after it became
 * pending ends the run with a report instead of a guest halted forever. */
static bool wait_tick(unsigned r, bool hlt_only)
{
	unsigned spins = 0;
	while (step_ticks == r) {
		if (hlt_only || apic_read(APIC_TMCCT) != 0)
			__asm__ volatile("sti\n hlt\n cli\n" ::: "memory");
		else if (++spins < WAIT_LIMIT)
			__asm__ volatile("sti\n nop\n cli\n" ::: "memory");
		else
			return false;
	}
	return true;
}

/* Returns the checksum of the work. hlt_only (command line `hlt`): wait
 * with `sti; hlt; cli` alone, as a kernel's idle loop does; a lost tick
 * then leaves the guest halted for good. */
STEP_FN uint64_t step_ticks_work(bool hlt_only)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (unsigned r = 0; r < ROUNDS; r++) {
		x = work_round(x, r);
		apic_timer_oneshot(RT_VEC_TIMER, TICK_COUNT);
		if (!wait_tick(r, hlt_only)) {
			lost_round = r;
			break;
		}
	}
	return x;
}

int main(void)
{
	printf("step_ticks: %u rounds, one one-shot APIC timer tick each\n", ROUNDS);
	rt_handler old = idt_set_handler(RT_VEC_TIMER, tick_handler);
	cli();
	uint64_t sum = step_ticks_work(cmdline_has("hlt"));
	apic_timer_stop();
	idt_set_handler(RT_VEC_TIMER, old);
	printf("ticks: %lu\n", (unsigned long)step_ticks);
	if (lost_round < ROUNDS)
		printf("tick of round %u never came\n", lost_round);
	printf("work checksum: 0x%lx\n", (unsigned long)sum);
	expect_eq(step_ticks, ROUNDS, "one tick per round, none lost or doubled");
	expect_eq(ticks_while_if0, 0, "no tick taken with IF=0");
	return report_summary();
}
