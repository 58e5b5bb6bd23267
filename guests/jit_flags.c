/* guests/jit_flags.c — jit_flags.elf: interrupts that land at the head of
 * a CRC-like byte loop see the flags of the loop's last CMP, which emu's
 * translations write only on the ways out of the loop (a budget cut,
 * something due: the back edge's slow way) and keep for the load after
 * it, which may fault (engine/emu/emu_jit.c: a record left pending). A
 * one-shot APIC timer, re-armed with a count that varies, interrupts the
 * loop (on emu an instruction count: a budget cut); with a second CPU,
 * IPIs from it too (on emu they come whenever: something due at the back
 * edge). The handler checks the pushed RFLAGS at the loop's head against
 * CMP rdi, r8 of the pushed registers, and the loop's result is checked
 * against the same loop in C. Command line: passes=N over the buffer
 * (default 40000), ipis=N (default 3000). */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define FLAGS_VECTOR 0x43
#define IPI_VECTOR 0x44
#define ARITH 0x8d5u                   /* CF PF AF ZF SF OF */
#define BUF 64

extern const char jf_head[];
static uint8_t buf[BUF];
static uint32_t tab[256];
static volatile unsigned long hits, wrong, ticks, ipis_taken;
static volatile bool looping;
static volatile uint64_t bad_flags, bad_want;

/* The arithmetic flags of CMP a, b. */
static uint64_t cmp_flags(uint64_t a, uint64_t b)
{
	uint64_t r = a - b;
	return (a < b) * 0x1u | (uint64_t)!__builtin_parityll(r & 0xff) * 0x4u |
	       ((a ^ b ^ r) & 0x10u) | (r == 0) * 0x40u | (r >> 63) * 0x80u |
	       (((a ^ b) & (a ^ r)) >> 63) * 0x800u;
}

static void check_head(const struct rt_frame *f)
{
	if (f->rip != (uint64_t)(uintptr_t)jf_head)
		return;
	uint64_t want = cmp_flags(f->rdi, f->r8);
	hits++;
	if ((f->rflags & ARITH) != want) {
		wrong++;
		bad_flags = f->rflags & ARITH;
		bad_want = want;
	}
}

static void on_ipi(struct rt_frame *f)
{
	check_head(f);
	ipis_taken++;
	apic_eoi();
}

static void on_timer(struct rt_frame *f)
{
	check_head(f);
	ticks++;
	apic_timer_oneshot(FLAGS_VECTOR, 40 + (uint32_t)(ticks % 29));
	apic_eoi();
}

/* The loop: a byte, a shift whose flags only the load after it could see
 * (when it faults), an XOR with memory whose flags the CMP sets again, the
 * CMP the back edge keeps. Before its head: the same CMP, so an interrupt
 * there sees CMP rdi, r8 whichever way it came. */
static __attribute__((noinline)) uint32_t run_loop(uint64_t passes, uint32_t crc)
{
	__asm__ volatile("sti\n"
			 "2:\n\t"
			 "mov %[buf], %%rdi\n\t"
			 "lea %c[len](%%rdi), %%r8\n\t"
			 "cmp %%r8, %%rdi\n"
			 ".globl jf_head\njf_head:\n\t"
			 "movzbl (%%rdi), %%eax\n\t"
			 "add $1, %%rdi\n\t"
			 "xor %%eax, %%ecx\n\t"
			 "shr $1, %%ecx\n\t"
			 "movzbl %%cl, %%eax\n\t"
			 "xor (%[tab],%%rax,4), %%ecx\n\t"
			 "cmp %%r8, %%rdi\n\t"
			 "jne jf_head\n\t"
			 "jmp 3f\n"                /* the loop's block ends here */
			 "3:\n\t"
			 "dec %[n]\n\t"
			 "jnz 2b\n\t"
			 "cli"
			 : [n] "+r"(passes), "+c"(crc)
			 : [buf] "r"(buf), [tab] "r"(tab), [len] "i"(BUF)
			 : "rax", "rdi", "r8", "cc", "memory");
	return crc;
}

static uint32_t model(uint64_t passes, uint32_t crc)
{
	for (uint64_t p = 0; p < passes; p++)
		for (unsigned i = 0; i < BUF; i++) {
			crc = (crc ^ buf[i]) >> 1;
			crc ^= tab[crc & 0xff];
		}
	return crc;
}

/* CPU 0 loops; CPU 1 sends it IPIs meanwhile, spaced by a spin. */
static uint32_t ipi_crc;
static uint64_t ipi_passes, ipi_count;

static void ipi_work(void *arg)
{
	(void)arg;
	if (rt_cpu_id() == 0) {
		looping = true;
		ipi_crc = run_loop(ipi_passes, 0xffffffffu);
		looping = false;
		return;
	}
	if (rt_cpu_id() != 1)
		return;
	while (!looping)
		__asm__ volatile("pause");
	for (uint64_t i = 0; i < ipi_count && looping; i++) {
		apic_send_ipi(rt_cpus[0].apic_id, IPI_VECTOR);
		for (unsigned k = 0; k < 200 + (i % 37) * 10; k++)
			__asm__ volatile("pause");
	}
}

/* No interrupt at the loop's head saw other flags than its CMP's. */
static void expect_head_flags(const char *what)
{
	if (wrong)
		printf("last wrong: rflags %llx, want %llx\n", (unsigned long long)bad_flags,
		       (unsigned long long)bad_want);
	expect_eq(wrong, 0, what);
}

int main(void)
{
	uint64_t passes = cmdline_u64("passes", 40000);
	ipi_count = cmdline_u64("ipis", 3000);
	for (unsigned i = 0; i < BUF; i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (unsigned i = 0; i < 256; i++)
		tab[i] = i * 0x9e3779b9u ^ (i << 24);
	idt_set_handler(FLAGS_VECTOR, on_timer);
	apic_timer_oneshot(FLAGS_VECTOR, 40);
	uint32_t crc = run_loop(passes ? passes : 1, 0xffffffffu);
	apic_timer_stop();
	printf("%lu timer interrupts, %lu at the loop's head\n", (unsigned long)ticks,
	       (unsigned long)hits);
	expect_head_flags("the flags at the loop's head are its CMP's (timer)");
	expect(hits > 0, "interrupted at the loop's head");
	expect_eq(crc, model(passes ? passes : 1, 0xffffffffu), "the loop's result");
	if (smp_start_aps(2, 1000) < 2) {
		report_skip("IPIs while looping", "needs 2 CPUs");
		return report_summary();
	}
	idt_set_handler(IPI_VECTOR, on_ipi);
	hits = 0;
	ipi_passes = passes;
	smp_run_on_all(ipi_work, NULL);
	printf("%lu IPIs taken, %lu at the loop's head\n", (unsigned long)ipis_taken,
	       (unsigned long)hits);
	expect_head_flags("the flags at the loop's head are its CMP's (IPIs)");
	expect(ipis_taken > 0, "IPIs taken while looping");
	expect_eq(ipi_crc, model(ipi_passes, 0xffffffffu), "the loop's result (IPIs)");
	return report_summary();
}
