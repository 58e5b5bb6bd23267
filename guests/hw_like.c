/* guests/hw_like.c — hw_like.elf: what hardware does where there is
 * nothing to reach, checked from inside; the guest runs on.
 *   fxsave   FXSAVE (64 quadwords) into the hole below the LAPIC: writes
 *            go nowhere, the hole still reads all ones
 *   xsave    the same with XSAVE (x87 | SSE)
 *   sse      a 16-byte store and load there: the load reads all ones
 *   fxrstor  FXRSTOR from the hole: all-ones MXCSR has reserved bits, #GP
 *   fetch    a call into the hole: the fetch reads all ones (FF FF: no
 *            instruction), #UD at the hole's address
 *   ioapic   POPCNT of an I/O APIC register (see check_ioapic)
 * `only=NAME` runs one; "about to run NAME" before each. */
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

#define HOLE       0xd0000000ul    /* above RAM, below the LAPIC/IOAPIC */
#define ALL_ONES   0xffffffffffffffffull
#define IOAPIC_BASE 0xfec00000ul
#define XCR0_X87   (1u << 0)
#define XCR0_SSE   (1u << 1)
#define CPUID1_ECX_XSAVE (1u << 26)

static volatile uint64_t *const hole = (volatile uint64_t *)HOLE;
static volatile unsigned faults;
static volatile uint64_t fault_vector, fault_rip;

/* Records the fault and goes on after the faulting instruction: the
 * instructions below leave their length in RCX, or (a call into the hole)
 * return to the caller. */
static void on_fault(struct rt_frame *f)
{
	faults++;
	fault_vector = f->vector;
	fault_rip = f->rip;
	if (f->rip == HOLE) {
		f->rip = *(uint64_t *)f->rsp;
		f->rsp += 8;
	} else {
		f->rip += f->rcx;
	}
}

static void sse_on(void)
{
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

static void check_fxsave(void)
{
	__asm__ volatile("fxsave64 (%0)" :: "r"(HOLE) : "memory");
	expect_eq(hole[0], ALL_ONES, "FXSAVE into the hole: the hole reads all ones after");
	expect_eq(hole[63], ALL_ONES, "FXSAVE into the hole: its last quadword too");
}

static void check_xsave(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_ECX_XSAVE)) {
		report_skip("XSAVE into the hole", "no XSAVE");
		return;
	}
	write_cr4(read_cr4() | CR4_OSXSAVE);
	__asm__ volatile("xsetbv" :: "c"(0), "a"(XCR0_X87 | XCR0_SSE), "d"(0));
	__asm__ volatile("xsave64 (%0)" :: "r"(HOLE), "a"(XCR0_X87 | XCR0_SSE), "d"(0)
			 : "memory");
	expect_eq(hole[64], ALL_ONES, "XSAVE into the hole: the header reads all ones after");
}

static void check_sse(void)
{
	uint64_t lo = 0x1111, hi = 0x2222;
	__asm__ volatile("movq %0, %%xmm1\n\t"
			 "movdqu %%xmm1, (%2)\n\t"
			 "movdqu (%2), %%xmm2\n\t"
			 "movq %%xmm2, %0\n\t"
			 "pextrq $1, %%xmm2, %1"
			 : "+r"(lo), "=r"(hi) : "r"(HOLE) : "memory");
	expect_eq(lo, ALL_ONES, "16-byte load from the hole: low half all ones");
	expect_eq(hi, ALL_ONES, "16-byte load from the hole: high half all ones");
}

static void check_fxrstor(void)
{
	faults = 0;
	/* fxrstor64 (%rax) is 4 bytes: 48 0f ae 08 */
	__asm__ volatile("fxrstor64 (%0)" :: "a"(HOLE), "c"(4ul) : "memory");
	expect_eq(faults, 1, "FXRSTOR of an all-ones image: one fault");
	expect_eq(fault_vector, 13, "FXRSTOR of an all-ones image: #GP");
}

static void check_fetch(void)
{
	faults = 0;
	__asm__ volatile("call *%0" :: "r"(HOLE) : "memory", "rax", "rcx", "rdx", "rsi",
			 "rdi", "r8", "r9", "r10", "r11", "cc");
	expect_eq(faults, 1, "a call into the hole: one fault");
	expect_eq(fault_vector, 6, "a call into the hole: #UD");
	expect_eq(fault_rip, HOLE, "a call into the hole: at the hole");
}

/* POPCNT of the I/O APIC's index register: on kvm here POPCNT runs on
 * emu's core, which cannot reach KVM's in-kernel I/O APIC and reads all
 * ones as from nothing; on emu the I/O APIC answers. Either way the guest
 * runs on. */
static void check_ioapic(void)
{
	uint64_t n;
	__asm__ volatile("popcnt %1, %0" : "=r"(n) : "m"(*(volatile uint32_t *)IOAPIC_BASE)
			 : "cc");
	expect(n <= 64, "POPCNT of the I/O APIC's index register ran");
}

static const struct {
	const char *name;
	void (*run)(void);
} checks[] = {
	{ "fxsave", check_fxsave },
	{ "xsave", check_xsave },
	{ "sse", check_sse },
	{ "fxrstor", check_fxrstor },
	{ "fetch", check_fetch },
	{ "ioapic", check_ioapic },
};

int main(void)
{
	const char *only = cmdline_get("only");
	unsigned ran = 0;

	sse_on();
	idt_set_handler(6, on_fault);
	idt_set_handler(13, on_fault);
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (only && strcmp(only, checks[i].name))
			continue;
		printf("about to run %s\n", checks[i].name);
		checks[i].run();
		ran++;
	}
	if (ran == 0)
		rt_fail_now("only=%s: no such check", only);
	return report_summary();
}
