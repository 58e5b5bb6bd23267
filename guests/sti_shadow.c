/* guests/sti_shadow.c — sti_shadow.elf: an interrupt that is pending
 * when STI sets IF is taken after the instruction in STI's shadow, never
 * before it and never later (on emu, where STI and that instruction run
 * inside a block of the fast path, which must end there).
 *
 * Part one: with IF clear a self-IPI is made pending, then STI and one
 * instruction of each kind (an ALU one, a NOP, a store, a RET, a JMP),
 * with more instructions after it; the handler checks the interrupted
 * RIP is the one right after the shadowed instruction and that it ran
 * (rounds=N times each, so that the blocks also run translated).
 * Part two: a one-shot APIC timer, re-armed with a count that varies,
 * interrupts a loop that clears IF for a few instructions and sets it
 * again: no interrupt ever lands between CLI and the end of STI's shadow
 * (loops=N passes); pending=0 leaves part one out; all=1 also requires some to land right after the
 * shadow (emu, where timer deadlines are instruction counts and fall on
 * every instruction). */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define IPI_VECTOR 0x43
#define TIMER_VECTOR 0x44

extern const char ss_inc_after[], ss_nop_after[], ss_store_after[], ss_ret_after[],
	ss_jmp_after[], ss_loop_masked[], ss_loop_shadow[], ss_loop_after[];

static volatile uint64_t got_rip, got_rax, got_n;
static volatile uint64_t ss_cell;

static void on_ipi(struct rt_frame *f)
{
	got_rip = f->rip;
	got_rax = f->rax;
	got_n++;
	apic_eoi();
}

/* The sequence of `kind` with IF clear and the IPI pending; RAX counts
 * the instructions of the sequence that ran (the handler sees it). */
static void run_kind(unsigned kind)
{
	switch (kind) {
	case 0:
		__asm__ volatile("xor %%eax, %%eax\n\t"
				 "sti\n\t"
				 "inc %%rax\n"
				 ".globl ss_inc_after\nss_inc_after:\n\t"
				 "inc %%rax\n\t"
				 "inc %%rax\n\t"
				 "cli"
				 ::: "rax", "cc", "memory");
		break;
	case 1:
		__asm__ volatile("xor %%eax, %%eax\n\t"
				 "sti\n\t"
				 "nop\n"
				 ".globl ss_nop_after\nss_nop_after:\n\t"
				 "inc %%rax\n\t"
				 "inc %%rax\n\t"
				 "cli"
				 ::: "rax", "cc", "memory");
		break;
	case 2:
		__asm__ volatile("xor %%eax, %%eax\n\t"
				 "sti\n\t"
				 "movq %%rax, %0\n"
				 ".globl ss_store_after\nss_store_after:\n\t"
				 "inc %%rax\n\t"
				 "inc %%rax\n\t"
				 "cli"
				 : "=m"(ss_cell) :: "rax", "cc", "memory");
		break;
	case 3:
		__asm__ volatile("xor %%eax, %%eax\n\t"
				 "call ss_sti_ret\n"
				 ".globl ss_ret_after\nss_ret_after:\n\t"
				 "inc %%rax\n\t"
				 "inc %%rax\n\t"
				 "cli\n\t"
				 "jmp 1f\n"
				 "ss_sti_ret:\n\t"
				 "sti\n\t"
				 "ret\n"
				 "1:"
				 ::: "rax", "cc", "memory");
		break;
	default:
		__asm__ volatile("xor %%eax, %%eax\n\t"
				 "sti\n\t"
				 "jmp ss_jmp_after\n\t"
				 "inc %%rax\n\t"
				 "inc %%rax\n"
				 ".globl ss_jmp_after\nss_jmp_after:\n\t"
				 "inc %%rax\n\t"
				 "cli"
				 ::: "rax", "cc", "memory");
		break;
	}
}

/* Is vector v requested (the local APIC's IRR)? The IPI to itself may
 * take a moment to get there, which STI must not race. */
static bool requested(uint8_t v)
{
	return (apic_read(0x200 + 0x10 * (v / 32)) >> (v % 32)) & 1;
}

static void pending_at_sti(uint64_t rounds)
{
	static const struct {
		const char *name;
		const char *after;
		uint64_t rax;          /* RAX when the interrupt comes */
	} kinds[] = {
		{ "sti; inc", ss_inc_after, 1 },
		{ "sti; nop", ss_nop_after, 0 },
		{ "sti; store", ss_store_after, 0 },
		{ "sti; ret", ss_ret_after, 0 },
		{ "sti; jmp", ss_jmp_after, 0 },
	};
	idt_set_handler(IPI_VECTOR, on_ipi);
	for (unsigned k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint64_t wrong_rip = 0, wrong_rax = 0, missed = 0, last_rip = 0;
		for (uint64_t i = 0; i < rounds; i++) {
			__asm__ volatile("cli" ::: "memory");
			uint64_t n = got_n;
			apic_send_ipi(apic_id(), IPI_VECTOR);
			for (unsigned w = 0; w < 1000000 && !requested(IPI_VECTOR); w++)
				__asm__ volatile("pause");
			run_kind(k);
			if (got_n != n + 1) {
				missed++;
				continue;
			}
			if (got_rip != (uint64_t)kinds[k].after) {
				wrong_rip++;
				last_rip = got_rip;
			}
			if (got_rax != kinds[k].rax)
				wrong_rax++;
		}
		__asm__ volatile("sti" ::: "memory");
		if (wrong_rip)
			printf("%s: interrupted at %lx, expected %lx\n", kinds[k].name,
			       (unsigned long)last_rip, (unsigned long)kinds[k].after);
		expect_eq(missed, 0, kinds[k].name);
		expect_eq(wrong_rip, 0, kinds[k].name);
		expect_eq(wrong_rax, 0, kinds[k].name);
	}
}

static volatile uint64_t ticks, masked_hits, after_hits;

static void on_timer(struct rt_frame *f)
{
	if (f->rip >= (uint64_t)ss_loop_masked && f->rip <= (uint64_t)ss_loop_shadow)
		masked_hits++;
	if (f->rip == (uint64_t)ss_loop_after)
		after_hits++;
	ticks++;
	apic_timer_oneshot(TIMER_VECTOR, 30 + (uint32_t)(ticks % 23));
	apic_eoi();
}

static void timer_loop(uint64_t loops)
{
	register uint64_t n __asm__("r8") = loops;
	idt_set_handler(TIMER_VECTOR, on_timer);
	apic_timer_oneshot(TIMER_VECTOR, 30);
	__asm__ volatile("sti\n"
			 "1:\n\t"
			 "cli\n"
			 ".globl ss_loop_masked\nss_loop_masked:\n\t"
			 "add $1, %%rax\n\t"
			 "add $1, %%rcx\n\t"
			 "add $1, %%rdx\n\t"
			 "sti\n"
			 ".globl ss_loop_shadow\nss_loop_shadow:\n\t"
			 "add $1, %%rax\n"
			 ".globl ss_loop_after\nss_loop_after:\n\t"
			 "add $1, %%rcx\n\t"
			 "dec %%r8\n\t"
			 "jnz 1b"
			 : "+r"(n)
			 :
			 : "rax", "rcx", "rdx", "cc", "memory");
	apic_timer_stop();
	__asm__ volatile("sti" ::: "memory");
}

int main(void)
{
	if (cmdline_u64("pending", 1))
		pending_at_sti(cmdline_u64("rounds", 300));
	timer_loop(cmdline_u64("loops", 100000));
	printf("%lu timer interrupts, %lu right after the shadow\n", (unsigned long)ticks,
	       (unsigned long)after_hits);
	expect_eq(masked_hits, 0, "no timer interrupt between CLI and the end of the shadow");
	if (cmdline_u64("all", 0))
		expect(after_hits > 0, "timer interrupts right after the shadow");
	return report_summary();
}
