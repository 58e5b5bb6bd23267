/* guests/rr.c — rr.elf, for reverse execution (tests/test_reverse.py).
 * Every CPU takes its APIC timer (RR_HZ) and runs rounds for ever; each
 * round reads the PIT and the CMOS clock (port I/O), takes any serial
 * input bytes (summed into rr_input_sum, "rr: input N" on the console),
 * and computes through small functions (rr_middle -> rr_leaf: for
 * reverse-step, -next and -finish with symbols). The BSP calls rr_mark()
 * once per round (gdb's breakpoint) and writes rr_victim legitimately
 * until round `corrupt=N` (cmdline, default 40), where rr_corrupt() writes
 * it once more through a stray pointer into rr_table; the next round sees
 * the damage and calls rr_detected() (gdb's breakpoint), once. rr_once
 * is written at round `once=N` alone (bench/reverse). */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/time.h"

#define RR_HZ 10000
#define RR_FN __attribute__((noinline, noclone, used))

#define COM1_DATA 0x3f8
#define COM1_LSR  0x3fd
#define LSR_DR    0x01

volatile uint64_t rr_round, rr_input_sum, rr_input_bytes, rr_sum[RT_MAX_CPUS];
volatile uint64_t rr_table[4];
volatile uint64_t rr_victim = 0x600d;
volatile uint64_t rr_stride;           /* where the stray pointer lands */
volatile uint64_t rr_once;             /* written at round `once=N` only (bench/reverse) */
static uint64_t corrupt_round, once_round;

RR_FN uint64_t rr_leaf(uint64_t x)
{
	uint64_t y = x * 3 + 1;
	y ^= y >> 7;
	return y;
}

RR_FN uint64_t rr_middle(uint64_t x)
{
	uint64_t a = rr_leaf(x);
	uint64_t b = rr_leaf(a + 1);
	return a + b;
}

RR_FN void rr_mark(uint64_t round)
{
	__asm__ volatile("" :: "r"(round) : "memory");
}

RR_FN void rr_detected(uint64_t value)
{
	__asm__ volatile("" :: "r"(value) : "memory");
}

/* The bug: an index computed from rr_stride walks off rr_table. */
RR_FN void rr_corrupt(uint64_t value)
{
	volatile uint64_t *p = &rr_table[0] + rr_stride;
	*p = value;
}

static void take_input(void)
{
	while (inb(COM1_LSR) & LSR_DR) {
		uint8_t b = inb(COM1_DATA);
		rr_input_sum = rr_input_sum * 31 + b;
		rr_input_bytes++;
		printf("rr: input %lu\n", (unsigned long)rr_input_bytes);
	}
}

static uint64_t port_io(void)
{
	outb(0x43, 0x80);                        /* latch PIT channel 2 */
	uint64_t v = inb(0x42);
	v |= (uint64_t)inb(0x42) << 8;
	outb(0x70, 0x00);                        /* CMOS seconds */
	v += inb(0x71);
	return v;
}

static void bsp_round(uint64_t round)
{
	take_input();
	rr_mark(round);
	if (round < corrupt_round)
		rr_victim = 0x600d + round;
	else if (round == corrupt_round)
		rr_corrupt(0xbad);
	else if (rr_victim == 0xbad && round == corrupt_round + 1)
		rr_detected(rr_victim);
	if (round == once_round)
		rr_once = round;
	rr_round = round;
	if (round % 100 == 0)
		printf("rr: round %lu\n", (unsigned long)round);
}

static void __attribute__((noreturn)) rounds(void *arg)
{
	(void)arg;
	unsigned id = rt_cpu_id();
	smp_timer_start(RR_HZ);
	sti();
	for (uint64_t round = 1;; round++) {
		uint64_t s = rr_sum[id];
		for (unsigned i = 0; i < 2000; i++)
			s += rr_middle(s + i);
		s += port_io();
		rr_sum[id] = s + this_cpu()->ticks;
		if (id == 0)
			bsp_round(round);
	}
}

int main(void)
{
	corrupt_round = cmdline_u64("corrupt", 40);
	once_round = cmdline_u64("once", 0);
	rr_stride = (uint64_t)(&rr_victim - &rr_table[0]);
	time_calibrate();
	unsigned want = smp_ncpus();
	unsigned up = smp_start_aps(want, 100000);
	if (!expect_eq(up, want, "CPUs up"))
		return report_summary();
	printf("rr: %u cpus running\n", up);
	smp_run_on_all(rounds, NULL);
	return report_summary();
}
