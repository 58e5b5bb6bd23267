/* guests/idle.c — idle.elf: one CPU idling in `sti; hlt`, as every idle
 * kernel does, for the debugger's steps of a halted vCPU. Command line:
 * hz=N runs the APIC timer at N Hz (default 20); hz=0 runs none, so the
 * HLT never ends. idle_wait() holds the HLT, idle_after_hlt is the
 * instruction after it, idle_ticks counts timer interrupts. Prints "idle:
 * waiting" before its first HLT and never exits. */
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define IDLE_FN __attribute__((noinline, noclone, used))

volatile uint64_t idle_ticks;

static void count_tick(struct rt_cpu *c)
{
	(void)c;
	idle_ticks++;
}

IDLE_FN void idle_wait(void)
{
	__asm__ volatile("sti\n"
			 "hlt\n"
			 ".globl idle_after_hlt\n"
			 "idle_after_hlt: nop\n" ::: "memory");
}

int main(void)
{
	uint64_t hz = cmdline_u64("hz", 20);

	this_cpu()->on_tick = count_tick;
	if (hz)
		smp_timer_start((unsigned)hz);
	printf("idle: waiting (timer at %lu Hz)\n", (unsigned long)hz);
	for (;;)
		idle_wait();
}
