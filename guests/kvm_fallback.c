/* guests/kvm_fallback.c — kvm_fallback.elf: in ring 0, long mode, the
 * instructions this host's KVM cannot emulate there (INT n, INT3,
 * CMPXCHG16B, XSAVE/XRSTOR (with AVX state too), POPCNT, FWAIT, LDMXCSR, SSE moves), each with
 * its result checked from inside. On kvm they run on emu's core one at a
 * time (engine/kvm/kvm_fallback.c); on emu they run as everything else.
 *
 * `only=NAME` runs one check (int, int3, cmpxchg16b, xsave, xsave-avx, popcnt,
 * mmio, fwait, ldmxcsr). Before each it prints "about to run NAME". The debugger tests
 * name the global labels fb_int_insn (the INT 0x77), fb_popcnt_insn (the
 * POPCNT) and the function fb_all_done (called once all checks ran). */
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

#define FB_INT_VECTOR   0x77
#define FB_INT_MAGIC    0x5eed1234abcdull
#define FB_MMIO_HOLE    0xd0000000ul   /* below the LAPIC/IOAPIC, above RAM */
#define XCR0_X87        (1u << 0)
#define XCR0_SSE        (1u << 1)
#define XCR0_AVX        (1u << 2)
#define CPUID1_ECX_AVX  (1u << 28)
#define CPUID_D1_EAX_XSAVEC (1u << 1)
#define UNMAPPED        0x8000000000ull  /* 512 GiB: no page table maps it */
#define XSAVE_MXCSR_OFF 24
#define XSAVE_XMM1_OFF  (160 + 16)
#define XSAVE_BV_OFF    512
#define MXCSR_DEFAULT   0x1f80u
#define MXCSR_TEST      0x1fc0u       /* default | DAZ */

static volatile unsigned int_hits;
static volatile struct rt_frame int_frame;

static void on_int(struct rt_frame *f)
{
	int_hits++;
	int_frame = *f;
	f->rax = FB_INT_MAGIC;            /* IRETQ must bring this back */
}

/* INT n in ring 0: the handler sees the right frame, IRETQ returns. */
static void check_int(void)
{
	uint64_t rsp_before, after, rax = 0, rflags_before = read_rflags();

	idt_set_handler(FB_INT_VECTOR, on_int);
	__asm__ volatile("mov %%rsp, %0\n"
			 ".globl fb_int_insn\nfb_int_insn:\n\t"
			 "int $0x77\n"
			 "1:\tlea 1b(%%rip), %1"
			 : "=&r"(rsp_before), "=r"(after), "+a"(rax) :: "memory");
	expect_eq(int_hits, 1, "INT 0x77 reached its handler once");
	expect_eq(int_frame.vector, FB_INT_VECTOR, "INT 0x77: handler's vector");
	expect_eq(int_frame.rip, after, "INT 0x77: frame RIP is the next instruction");
	expect_eq(int_frame.rsp, rsp_before, "INT 0x77: frame RSP is the RSP before INT");
	expect_eq(int_frame.cs & 3, 0, "INT 0x77: frame CS is ring 0");
	expect_eq(int_frame.rflags & RFLAGS_IF, rflags_before & RFLAGS_IF,
		  "INT 0x77: frame RFLAGS.IF as before");
	expect_eq(rax, FB_INT_MAGIC, "INT 0x77: IRETQ returned the handler's RAX");
	idt_set_handler(FB_INT_VECTOR, NULL);
}

static volatile unsigned bp_hits;
static volatile uint64_t bp_rip;

static void on_bp(struct rt_frame *f)
{
	bp_hits++;
	bp_rip = f->rip;
}

static void check_int3(void)
{
	uint64_t after;

	idt_set_handler(X86_BP, on_bp);
	__asm__ volatile("int3\n1: lea 1b(%%rip), %0" : "=r"(after));
	expect_eq(bp_hits, 1, "INT3 reached the guest's #BP handler once");
	expect_eq(bp_rip, after, "INT3: #BP frame RIP is the next instruction");
	idt_set_handler(X86_BP, NULL);
}

/* One CMPXCHG16B: returns ZF, leaves rdx:rax as the CPU does. */
static bool cmpxchg16b(volatile uint64_t *mem, uint64_t *lo, uint64_t *hi, uint64_t new_lo,
		       uint64_t new_hi)
{
	bool zf;
	__asm__ volatile("lock cmpxchg16b %0\n\tsete %1"
			 : "+m"(*mem), "=q"(zf), "+a"(*lo), "+d"(*hi)
			 : "b"(new_lo), "c"(new_hi) : "memory", "cc");
	return zf;
}

static void check_cmpxchg16b(void)
{
	static volatile uint64_t mem[2] __attribute__((aligned(16))) = { 1, 2 };
	uint64_t lo = 1, hi = 2;

	expect(cmpxchg16b(mem, &lo, &hi, 0x1111, 0x2222), "CMPXCHG16B equal: ZF=1");
	expect_eq(mem[0], 0x1111, "CMPXCHG16B equal: stored the low half");
	expect_eq(mem[1], 0x2222, "CMPXCHG16B equal: stored the high half");
	lo = 7;
	hi = 8;
	expect(!cmpxchg16b(mem, &lo, &hi, 0x3333, 0x4444), "CMPXCHG16B different: ZF=0");
	expect_eq(lo, 0x1111, "CMPXCHG16B different: RAX = memory's low half");
	expect_eq(hi, 0x2222, "CMPXCHG16B different: RDX = memory's high half");
	expect_eq(mem[0], 0x1111, "CMPXCHG16B different: memory unchanged");
}

static void sse_on(void)
{
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

static uint32_t stmxcsr(void)
{
	uint32_t v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void ldmxcsr(uint32_t v)
{
	__asm__ volatile("ldmxcsr %0" :: "m"(v));
}

static void set_xmm1(uint64_t v)
{
	__asm__ volatile("movq %0, %%xmm1" :: "r"(v));
}

static uint64_t get_xmm1(void)
{
	uint64_t v;
	__asm__ volatile("movq %%xmm1, %0" : "=r"(v));
	return v;
}

/* XSAVE stores XMM1 and MXCSR; XRSTOR brings them back after both changed. */
static void check_xsave(void)
{
	static uint8_t area[1024] __attribute__((aligned(64)));
	const uint32_t mask = XCR0_X87 | XCR0_SSE;
	uint32_t r[4];
	uint64_t bv;

	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_ECX_XSAVE)) {
		report_skip("XSAVE/XRSTOR", "CPUID says no XSAVE");
		return;
	}
	sse_on();
	write_cr4(read_cr4() | CR4_OSXSAVE);
	__asm__ volatile("xsetbv" :: "c"(0), "a"(mask), "d"(0));
	memset(area, 0, sizeof(area));
	ldmxcsr(MXCSR_TEST);
	set_xmm1(0x1122334455667788ull);
	__asm__ volatile("xsave %0" : "=m"(area) : "a"(mask), "d"(0) : "memory");
	expect_eq(*(uint32_t *)(area + XSAVE_MXCSR_OFF), MXCSR_TEST, "XSAVE stored MXCSR");
	expect_eq(*(uint64_t *)(area + XSAVE_XMM1_OFF), 0x1122334455667788ull,
		  "XSAVE stored XMM1");
	memcpy(&bv, area + XSAVE_BV_OFF, sizeof(bv));
	expect_eq(bv & mask, mask, "XSAVE set XSTATE_BV for x87 and SSE");
	ldmxcsr(MXCSR_DEFAULT);
	set_xmm1(0);
	__asm__ volatile("xrstor %0" :: "m"(area), "a"(mask), "d"(0) : "memory");
	expect_eq(stmxcsr(), MXCSR_TEST, "XRSTOR restored MXCSR");
	expect_eq(get_xmm1(), 0x1122334455667788ull, "XRSTOR restored XMM1");
	ldmxcsr(MXCSR_DEFAULT);
}

static volatile unsigned gp_hits;

/* #GP from "xrstor (%rdi)" (3 bytes): counted and skipped. */
static void on_gp_skip_xrstor(struct rt_frame *f)
{
	gp_hits++;
	f->rip += 3;
}

static volatile unsigned pf_hits;
static volatile uint64_t pf_cr2, pf_error;

/* #PF from "xsave (%rdi)" (3 bytes): recorded and skipped. */
static void on_pf_skip_xsave(struct rt_frame *f)
{
	pf_hits++;
	pf_cr2 = read_cr2();
	pf_error = f->error_code;
	f->rip += 3;
}

static void xrstor_rdi(const uint8_t *area, uint32_t mask)
{
	__asm__ volatile("xrstor (%%rdi)" :: "D"(area), "a"(mask), "d"(0) : "memory");
}

static void xsave_rdi(uint8_t *area, uint32_t mask)
{
	__asm__ volatile("xsave (%%rdi)" :: "D"(area), "a"(mask), "d"(0) : "memory");
}

/* With AVX in XCR0 (more than emu's own XSAVE image holds): XRSTOR loads
 * the upper half of YMM1 from memory, XSAVE and XSAVEC store it back, an
 * XRSTOR with the AVX bit clear in XSTATE_BV puts it in its initial state
 * (zero), a header naming a component XCR0 lacks is #GP, a save area
 * nothing maps is #PF with CR2 and the error code. Only where
 * CPUID offers AVX (the host's CPU under kvm; emu has none). */
static void check_xsave_avx(void)
{
	static uint8_t img[4096] __attribute__((aligned(64)));
	static uint8_t out[4096] __attribute__((aligned(64)));
	const uint32_t mask = XCR0_X87 | XCR0_SSE | XCR0_AVX;
	const uint64_t hi = 0xa1b2c3d4e5f60718ull;
	uint32_t r[4], avx_off, xsavec;
	uint64_t bv, xcomp;

	cpuid(1, 0, r);
	if (!(r[2] & CPUID1_ECX_XSAVE) || !(r[2] & CPUID1_ECX_AVX)) {
		report_skip("XSAVE with AVX state", "CPUID says no AVX");
		return;
	}
	cpuid(0xd, 2, r);
	avx_off = r[1];
	cpuid(0xd, 1, r);
	xsavec = r[0] & CPUID_D1_EAX_XSAVEC;
	sse_on();
	write_cr4(read_cr4() | CR4_OSXSAVE);
	__asm__ volatile("xsetbv" :: "c"(0), "a"(mask), "d"(0));

	memset(img, 0, sizeof(img));
	*(uint16_t *)img = 0x037f;                       /* FCW */
	*(uint32_t *)(img + XSAVE_MXCSR_OFF) = MXCSR_DEFAULT;
	*(uint64_t *)(img + XSAVE_XMM1_OFF) = 0x1122334455667788ull;
	*(uint64_t *)(img + avx_off + 16) = hi;          /* YMM1 bits 128-191 */
	*(uint64_t *)(img + XSAVE_BV_OFF) = mask;
	xrstor_rdi(img, mask);
	memset(out, 0, sizeof(out));
	xsave_rdi(out, mask);
	expect_eq(*(uint64_t *)(out + avx_off + 16), hi, "XRSTOR+XSAVE: YMM1's upper half");
	expect_eq(*(uint64_t *)(out + XSAVE_XMM1_OFF), 0x1122334455667788ull,
		  "XRSTOR+XSAVE with AVX: XMM1");
	memcpy(&bv, out + XSAVE_BV_OFF, sizeof(bv));
	expect_eq(bv & XCR0_AVX, XCR0_AVX, "XSAVE: XSTATE_BV says AVX in use");
	if (xsavec) {
		memset(out, 0, sizeof(out));
		__asm__ volatile("xsavec (%%rdi)" :: "D"(out), "a"(mask), "d"(0) : "memory");
		memcpy(&xcomp, out + XSAVE_BV_OFF + 8, sizeof(xcomp));
		expect_eq(xcomp, (1ull << 63) | mask, "XSAVEC: XCOMP_BV is compacted | RFBM");
		expect_eq(*(uint64_t *)(out + 576 + 16), hi, "XSAVEC: YMM1's upper half at 576");
	}
	*(uint64_t *)(img + XSAVE_BV_OFF) = XCR0_X87 | XCR0_SSE;
	xrstor_rdi(img, mask);
	memset(out, 0xee, sizeof(out));
	*(uint64_t *)(out + XSAVE_BV_OFF) = 0;
	xsave_rdi(out, mask);
	memcpy(&bv, out + XSAVE_BV_OFF, sizeof(bv));
	expect_eq(bv & XCR0_AVX, 0, "XRSTOR of AVX in init state: XSTATE_BV clear");
	gp_hits = 0;
	idt_set_handler(13, on_gp_skip_xrstor);
	*(uint64_t *)(img + XSAVE_BV_OFF) = mask | (1ull << 9);
	xrstor_rdi(img, mask);
	idt_set_handler(13, NULL);
	expect_eq(gp_hits, 1, "XRSTOR of a component XCR0 lacks: #GP");
	idt_set_handler(14, on_pf_skip_xsave);
	xsave_rdi((uint8_t *)UNMAPPED, mask);           /* beyond the identity map */
	idt_set_handler(14, NULL);
	expect_eq(pf_hits, 1, "XSAVE to an unmapped page: #PF");
	expect_eq(pf_cr2, UNMAPPED, "XSAVE's #PF: CR2 is the save area");
	expect_eq(pf_error, 2, "XSAVE's #PF: error code says a supervisor write, not present");
	__asm__ volatile("xsetbv" :: "c"(0), "a"(XCR0_X87 | XCR0_SSE), "d"(0));
}

static void check_popcnt(void)
{
	uint64_t v = 0xf0f0f0f00000ffffull, n;

	__asm__ volatile(".globl fb_popcnt_insn\nfb_popcnt_insn:\n\tpopcnt %1, %0"
			 : "=r"(n) : "r"(v) : "cc");
	expect_eq(n, 32, "POPCNT counts 32 bits");
}

/* POPCNT of an MMIO operand: the read leaves for the machine (no device
 * there reads as all ones) in the middle of the instruction, which is then
 * completed. */
static void check_mmio(void)
{
	uint64_t n;

	__asm__ volatile("popcnt %1, %0" : "=r"(n) : "m"(*(volatile uint64_t *)FB_MMIO_HOLE)
			 : "cc");
	expect_eq(n, 64, "POPCNT of an unbacked MMIO quadword (all ones) counts 64");
}

static void check_fwait(void)
{
	__asm__ volatile("fninit\n\tfwait" ::: "memory");
	expect(1, "FNINIT; FWAIT ran");
}

static void check_ldmxcsr(void)
{
	sse_on();
	ldmxcsr(MXCSR_TEST);
	expect_eq(stmxcsr(), MXCSR_TEST, "LDMXCSR loaded MXCSR (read back by STMXCSR)");
	ldmxcsr(MXCSR_DEFAULT);
	expect_eq(stmxcsr(), MXCSR_DEFAULT, "LDMXCSR restored the default MXCSR");
}

/* For debugger tests: a place to stop once everything ran. */
__attribute__((noinline)) void fb_all_done(void)
{
	__asm__ volatile("" ::: "memory");
}

static const struct {
	const char *name;
	void (*run)(void);
} checks[] = {
	{ "int", check_int },
	{ "int3", check_int3 },
	{ "cmpxchg16b", check_cmpxchg16b },
	{ "xsave", check_xsave },
	{ "xsave-avx", check_xsave_avx },
	{ "popcnt", check_popcnt },
	{ "mmio", check_mmio },
	{ "fwait", check_fwait },
	{ "ldmxcsr", check_ldmxcsr },
};

int main(void)
{
	const char *only = cmdline_get("only");
	unsigned ran = 0;

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		if (only && strcmp(only, checks[i].name))
			continue;
		printf("about to run %s\n", checks[i].name);
		checks[i].run();
		ran++;
	}
	if (ran == 0)
		rt_fail_now("only=%s: no such check", only);
	fb_all_done();
	return report_summary();
}
