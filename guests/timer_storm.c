/* guests/timer_storm.c — timer_storm.elf: a timer that fires faster than
 * any host can keep up with, while every CPU sleeps for good. Command line:
 * timer=lapic (default) runs the APIC timer periodic, masked (masked=0:
 * not, its interrupt then waits for an IF that never comes), divide 1,
 * initial count count=N (default 1); timer=pit runs PIT channel 0 in mode 2
 * with count=N (its IRQ masked at the 8259s and the I/O APIC). Prints
 * "storm: sleeping" and then sits in `cli; hlt` for ever: only a debugger
 * or a signal ends it. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/serial.h"

#define PIT_CH0  0x40
#define PIT_CTRL 0x43
#define PIT_CH0_LOHI_MODE2 0x34

static void lapic_storm(uint32_t count, bool masked)
{
	apic_write(APIC_TDCR, APIC_TDCR_DIV1);
	apic_write(APIC_LVTT, (masked ? APIC_LVT_MASKED : 0) | APIC_LVTT_PERIODIC | 0xec);
	apic_write(APIC_TMICT, count);
}

static void pit_storm(uint16_t count)
{
	outb(PIT_CTRL, PIT_CH0_LOHI_MODE2);
	outb(PIT_CH0, (uint8_t)count);
	outb(PIT_CH0, (uint8_t)(count >> 8));
}

int main(void)
{
	const char *timer = cmdline_get("timer");
	uint64_t count = cmdline_u64("count", 1);
	bool masked = cmdline_u64("masked", 1) != 0;
	bool pit = timer && timer[0] == 'p';

	if (pit)
		pit_storm((uint16_t)count);
	else
		lapic_storm((uint32_t)count, masked);
	printf("storm: sleeping (%s, count %lu%s)\n", pit ? "pit" : "lapic",
	       (unsigned long)count, !pit && !masked ? ", unmasked" : "");
	for (;;)
		__asm__ volatile("cli\n"
				 ".globl storm_hlt\n"
				 "storm_hlt: hlt" ::: "memory");
}
