/* guests/emufail.c — emufail.elf: runs one instruction, chosen with
 * insn=cmpxchg16b|xrstor|int3|popcnt, that this host's KVM cannot emulate
 * in ring 0. vmdb should report the failure (or, where the instruction
 * runs, the guest checks its result and says PASS). */
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

#define XCR0_X87 (1u << 0)
#define XCR0_SSE (1u << 1)
#define XSAVE_MXCSR_OFF 24
#define MXCSR_DEFAULT 0x1f80

static void run_cmpxchg16b(void)
{
	static volatile uint64_t mem[2] __attribute__((aligned(16))) = { 1, 2 };
	uint64_t lo = 1, hi = 2;

	__asm__ volatile("lock cmpxchg16b %0"
			 : "+m"(*mem), "+a"(lo), "+d"(hi)
			 : "b"(0x1111ull), "c"(0x2222ull) : "memory", "cc");
	expect_eq(mem[0], 0x1111, "cmpxchg16b stored the low half");
	expect_eq(mem[1], 0x2222, "cmpxchg16b stored the high half");
}

/* XRSTOR from an image whose header asks for the init state of x87/SSE:
 * the smallest valid XRSTOR there is. Needs CR4.OSXSAVE and XCR0. */
static void run_xrstor(void)
{
	static uint8_t area[1024] __attribute__((aligned(64)));
	uint32_t r[4];

	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_ECX_XSAVE))
		printf("note: CPUID says no XSAVE; CR4.OSXSAVE will #GP\n");
	write_cr4(read_cr4() | CR4_OSXSAVE);
	__asm__ volatile("xsetbv" :: "c"(0), "a"(XCR0_X87 | XCR0_SSE), "d"(0));
	memset(area, 0, sizeof(area));
	*(uint32_t *)(area + XSAVE_MXCSR_OFF) = MXCSR_DEFAULT;
	printf("about to run xrstor\n");
	__asm__ volatile("xrstor %0" :: "m"(area), "a"(XCR0_X87 | XCR0_SSE), "d"(0) : "memory");
	expect(1, "xrstor of the init state");
}

static volatile unsigned bp_hits;
static volatile uint64_t bp_rip;

static void on_bp(struct rt_frame *f)
{
	bp_hits++;
	bp_rip = f->rip;
}

static void run_int3(void)
{
	uint64_t after;

	idt_set_handler(X86_BP, on_bp);
	__asm__ volatile("int3\n1: lea 1b(%%rip), %0" : "=r"(after));
	expect_eq(bp_hits, 1, "int3 reached the guest's #BP handler once");
	expect_eq(bp_rip, after, "#BP frame RIP is the next instruction");
}

static void run_popcnt(void)
{
	uint64_t v = 0xf0f0f0f00000ffffull, n;

	__asm__ volatile("popcnt %1, %0" : "=r"(n) : "r"(v) : "cc");
	expect_eq(n, 32, "popcnt counts 32 bits");
}

static const struct {
	const char *name;
	void (*run)(void);
} insns[] = {
	{ "cmpxchg16b", run_cmpxchg16b },
	{ "xrstor", run_xrstor },
	{ "int3", run_int3 },
	{ "popcnt", run_popcnt },
};

int main(void)
{
	const char *want = cmdline_get("insn");

	for (size_t i = 0; want && i < sizeof(insns) / sizeof(insns[0]); i++) {
		if (strcmp(want, insns[i].name))
			continue;
		/* xrstor prints this itself, after its set-up instructions */
		if (insns[i].run != run_xrstor)
			printf("about to run %s\n", want);
		insns[i].run();
		return report_summary();
	}
	rt_fail_now("insn=%s: expected insn=cmpxchg16b|xrstor|int3|popcnt", want ? want : "");
}
