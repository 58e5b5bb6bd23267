/* guests/timer_flags.c — timer_flags.elf: interrupts that land between
 * two instructions of a straight run of arithmetic see the flags the
 * first one left, even where a later one sets them all again (on emu,
 * where a timer deadline ends the run inside a block of the fast path,
 * which drops flags no one looks at). A one-shot APIC timer, re-armed
 * with a count that varies, interrupts a loop; its handler checks the
 * pushed RFLAGS at each labelled point of the loop against what the
 * instruction before it computes. Command line: loops=N passes of the
 * loop (default 200000); all=1 also requires every point to have been
 * interrupted at (emu, where timer deadlines are instruction counts). */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define FLAGS_VECTOR 0x42
#define F_CF (1u << 0)
#define F_PF (1u << 2)
#define F_ZF (1u << 6)

/* the points of the loop below, the flags the instruction before each
 * leaves, and which of them to compare */
extern const char tf_a[], tf_b[], tf_c[], tf_d[], tf_e[];
static const struct {
	const char *at;
	const char *name;
	uint64_t mask, want;
} points[] = {
	{ tf_a, "after add 1+1", F_ZF | F_PF | F_CF, 0 },
	{ tf_b, "after a move after it", F_ZF | F_PF | F_CF, 0 },
	{ tf_c, "after sub x-x", F_ZF | F_PF | F_CF, F_ZF | F_PF },
	{ tf_d, "after add -1+1", F_ZF | F_CF, F_ZF | F_CF },
	{ tf_e, "after test of 2", F_ZF | F_PF | F_CF, 0 },
};
#define NPOINTS (sizeof(points) / sizeof(points[0]))

static volatile unsigned long hits[NPOINTS], wrong[NPOINTS], ticks;

static void on_timer(struct rt_frame *f)
{
	for (unsigned i = 0; i < NPOINTS; i++) {
		if (f->rip != (uint64_t)points[i].at)
			continue;
		hits[i]++;
		if ((f->rflags & points[i].mask) != points[i].want)
			wrong[i]++;
	}
	ticks++;
	apic_timer_oneshot(FLAGS_VECTOR, 40 + (uint32_t)(ticks % 29));
	apic_eoi();
}

/* Each flag setter but the compare and the test is followed, past moves
 * only, by another that sets every flag again. */
static void run_loop(uint64_t loops)
{
	register uint64_t n __asm__("r8") = loops;
	__asm__ volatile("sti\n"
			 "1:\n\t"
			 "cmp %%r9, %%r9\n\t"
			 "setz %%r10b\n\t"
			 "mov $1, %%eax\n\t"
			 "add $1, %%eax\n"
			 ".globl tf_a\ntf_a:\n\t"
			 "mov %%eax, %%edx\n"
			 ".globl tf_b\ntf_b:\n\t"
			 "sub %%edx, %%edx\n"
			 ".globl tf_c\ntf_c:\n\t"
			 "mov $-1, %%ecx\n\t"
			 "add $1, %%ecx\n"
			 ".globl tf_d\ntf_d:\n\t"
			 "mov %%ecx, %%esi\n\t"
			 "test %%eax, %%eax\n"
			 ".globl tf_e\ntf_e:\n\t"
			 "dec %%r8\n\t"
			 "jnz 1b\n\t"
			 "cli"
			 : "+r"(n)
			 :
			 : "rax", "rcx", "rdx", "rsi", "r9", "r10", "cc", "memory");
}

int main(void)
{
	bool all = cmdline_u64("all", 0) != 0;
	uint64_t loops = cmdline_u64("loops", 200000);
	idt_set_handler(FLAGS_VECTOR, on_timer);
	apic_timer_oneshot(FLAGS_VECTOR, 40);
	run_loop(loops ? loops : 1);
	apic_timer_stop();
	printf("%lu timer interrupts\n", (unsigned long)ticks);
	for (unsigned i = 0; i < NPOINTS; i++) {
		printf("%s: %lu interrupts\n", points[i].name, (unsigned long)hits[i]);
		expect_eq(wrong[i], 0, points[i].name);
		if (all)
			expect(hits[i] > 0, "interrupted there");
	}
	return report_summary();
}
