/* guests/x87_calc.c — x87_calc.elf: computes with the x87 FPU in ring 0
 * and checks the results against values that follow from IEEE 754 and
 * the SDM: exact arithmetic, integer stores under each rounding mode and
 * FISTTP, precision control, compares into EFLAGS and C0-C3, FXAM
 * classes, FPREM, FSCALE, FXTRACT, BCD, the transcendental identities,
 * the stack overflow's masked response, #MF for an unmasked exception
 * (CR0.NE) at the next waiting instruction, #NM with CR0.TS or CR0.EM
 * (FWAIT: MP and TS), and the state surviving FNSTENV/FLDENV,
 * FNSAVE/FRSTOR, FXSAVE/FXRSTOR and XSAVEC/XSAVEOPT/XRSTOR.
 * (The compiler may not use the FPU here, -mgeneral-regs-only: every x87
 * instruction is written out.) */
#include <stdint.h>

#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "x86/x86.h"

#define SW_IE  0x0001u
#define SW_ZE  0x0004u
#define SW_PE  0x0020u
#define SW_SF  0x0040u
#define SW_ES  0x0080u
#define SW_C0  0x0100u
#define SW_C1  0x0200u
#define SW_C2  0x0400u
#define SW_C3  0x4000u
#define SW_CC  (SW_C0 | SW_C1 | SW_C2 | SW_C3)
#define CW_RC_SHIFT 10
#define CW_PC_SINGLE 0x0000u
#define CW_ZM  0x0004u

/* The 80-bit format: significand, sign and exponent. */
struct f80 {
	uint64_t sig;
	uint16_t se;
} __attribute__((packed));

static const double two_and_half = 2.5, minus_two_and_half = -2.5, minus_2_7 = -2.7;
static const double three = 3.0;

static uint64_t cr0_get(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static void cr0_set(uint64_t v)
{
	__asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory");
}

static uint16_t fnstsw(void)
{
	uint16_t sw;
	__asm__ volatile("fnstsw %0" : "=m"(sw));
	return sw;
}

static void fldcw(uint16_t cw)
{
	__asm__ volatile("fldcw %0" :: "m"(cw));
}

/* Pythagoras with small integers is exact: sqrt(3*3 + 4*4) = 5, no PE. */
static void check_exact(void)
{
	int32_t a = 3, b = 4, r = 0;
	__asm__ volatile("fninit\n\tfildl %1\n\tfmul %%st(0), %%st\n\tfildl %2\n\t"
			 "fmul %%st(0), %%st\n\tfaddp\n\tfsqrt\n\tfistpl %0"
			 : "=m"(r) : "m"(a), "m"(b));
	expect_eq(r, 5, "sqrt(3^2 + 4^2) = 5");
	expect_eq(fnstsw() & SW_PE, 0, "exact: no precision exception");
	uint64_t s = 0;
	__asm__ volatile("fninit\n\tfld1\n\tfld1\n\tfaddp\n\tfsqrt\n\tfmul %%st(0), %%st\n\t"
			 "fistpll %0" : "=m"(s));
	expect_eq(s, 2, "sqrt(2)^2 rounds to 2");
	expect(fnstsw() & SW_PE, "sqrt(2) is inexact: PE");
}

/* 2.5 and -2.5 under each rounding mode; FISTTP truncates whatever RC says. */
static void check_rounding(void)
{
	static const int16_t want_pos[4] = { 2, 2, 3, 2 };     /* nearest, down, up, chop */
	static const int16_t want_neg[4] = { -2, -3, -2, -2 };
	for (unsigned rc = 0; rc < 4; rc++) {
		int16_t p = 0, n = 0, t = 0;
		__asm__ volatile("fninit\n\tfldcw %3\n\tfldl %4\n\tfistps %0\n\tfldl %5\n\t"
				 "fistps %1\n\tfldl %6\n\tfisttps %2"
				 : "=m"(p), "=m"(n), "=m"(t)
				 : "m"((uint16_t){ (uint16_t)(0x37f | rc << CW_RC_SHIFT) }),
				   "m"(two_and_half), "m"(minus_two_and_half), "m"(minus_2_7));
		expect_eq((int64_t)p, want_pos[rc], "fistp 2.5 under RC");
		expect_eq((int64_t)n, want_neg[rc], "fistp -2.5 under RC");
		expect_eq((int64_t)t, -2, "fisttp -2.7 truncates");
	}
}

/* 1/3 under single precision keeps 24 significand bits. */
static void check_precision(void)
{
	struct f80 single, ext;
	__asm__ volatile("fninit\n\tfldcw %2\n\tfld1\n\tfldl %3\n\tfdivrp\n\tfstpt %0\n\t"
			 "fninit\n\tfld1\n\tfldl %3\n\tfdivrp\n\tfstpt %1"
			 : "=m"(single), "=m"(ext)
			 : "m"((uint16_t){ 0x37f & ~0x300u }), "m"(three));
	expect_eq(single.sig & ((1ull << 40) - 1), 0, "1/3 in single precision: 24 bits");
	expect_eq(single.sig >> 40, 0xaaaaab, "1/3 in single precision rounds up");
	expect_eq(ext.sig, 0xaaaaaaaaaaaaaaabull, "1/3 in extended precision");
	expect_eq(ext.se, 0x3ffd, "1/3's exponent");
}

static uint64_t fcomi_flags(const char *what, int which)
{
	uint64_t fl;
	(void)what;
	if (which == 0)
		__asm__ volatile("fninit\n\tfld1\n\tfld1\n\tfadd %%st(0), %%st\n\tfxch\n\t"
				 "fcomip %%st(1), %%st\n\tpushfq\n\tpopq %0\n\tfstp %%st(0)"
				 : "=r"(fl) :: "cc");
	else
		__asm__ volatile("fninit\n\tfldz\n\tfldz\n\tfdivrp\n\tfld1\n\t"
				 "fucomip %%st(1), %%st\n\tpushfq\n\tpopq %0\n\tfstp %%st(0)"
				 : "=r"(fl) :: "cc");
	return fl;
}

static void check_compares(void)
{
	uint64_t arith = RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF;
	expect_eq(fcomi_flags("1 < 2", 0) & arith, RFLAGS_CF, "fcomip 1 < 2: CF");
	expect_eq(fcomi_flags("1 ? NaN", 1) & arith, arith, "fucomip with a NaN: unordered");
	uint16_t sw;
	__asm__ volatile("fninit\n\tfldpi\n\tfld1\n\tfcompp\n\tfnstsw %0" : "=m"(sw));
	expect_eq(sw & (SW_C0 | SW_C2 | SW_C3), SW_C0, "fcompp 1 < pi: C0");
	expect_eq(sw & 0x3800, 0, "fcompp popped twice: TOP 0");
	/* FXAM classes: C3 C2 C0 = 100 zero, 011 infinity, 001 NaN, 101 empty */
	static const struct { const char *name; uint16_t cc; } classes[] = {
		{ "fxam zero", SW_C3 }, { "fxam infinity", SW_C2 | SW_C0 },
		{ "fxam NaN", SW_C0 }, { "fxam empty", SW_C3 | SW_C0 },
	};
	uint16_t got[4];
	__asm__ volatile("fninit\n\tfldz\n\tfxam\n\tfnstsw %0\n\t"
			 "fld1\n\tfldz\n\tfdivrp\n\tfxam\n\tfnstsw %1\n\t"
			 "fldz\n\tfldz\n\tfdivrp\n\tfxam\n\tfnstsw %2\n\t"
			 "fninit\n\tfxam\n\tfnstsw %3"
			 : "=m"(got[0]), "=m"(got[1]), "=m"(got[2]), "=m"(got[3]));
	for (unsigned i = 0; i < 4; i++)
		expect_eq(got[i] & (SW_C0 | SW_C2 | SW_C3), classes[i].cc, classes[i].name);
}

/* FPREM: 17 mod 5 = 2 (C2 clear: done); FSCALE: 3 * 2^4 = 48;
 * FXTRACT of 48: exponent 5, significand 1.5; FBSTP of 1234. */
static void check_partial(void)
{
	int32_t x = 17, y = 5, rem = 0, scaled = 0, e = 0, sig2 = 0;
	uint16_t sw;
	uint8_t bcd[10];
	__asm__ volatile("fninit\n\tfildl %5\n\tfildl %4\n\tfprem\n\tfnstsw %1\n\tfistpl %0\n\t"
			 "fstp %%st(0)"
			 : "=m"(rem), "=m"(sw) : "m"(x), "m"(y), "m"(x), "m"(y));
	expect_eq(rem, 2, "fprem 17 mod 5");
	expect_eq(sw & SW_C2, 0, "fprem complete: C2 clear");
	int32_t four = 4, three_i = 3;
	__asm__ volatile("fninit\n\tfildl %3\n\tfildl %4\n\tfscale\n\tfistl %0\n\t"
			 "fxtract\n\tfld1\n\tfadd %%st(0), %%st\n\tfmulp\n\tfistpl %2\n\tfistpl %1\n\t"
			 "fstp %%st(0)"
			 : "=m"(scaled), "=m"(e), "=m"(sig2) : "m"(four), "m"(three_i));
	expect_eq(scaled, 48, "fscale 3 * 2^4");
	expect_eq(e, 5, "fxtract 48: exponent");
	expect_eq(sig2, 3, "fxtract 48: significand 1.5 (doubled)");
	int32_t n = 1234;
	__asm__ volatile("fninit\n\tfildl %1\n\tfbstp %0" : "=m"(bcd) : "m"(n));
	expect_eq(bcd[0], 0x34, "fbstp 1234: low digits");
	expect_eq(bcd[1], 0x12, "fbstp 1234: high digits");
	expect_eq(bcd[9], 0, "fbstp 1234: positive");
}

/* sin(pi) is tiny; 4 * atan(1/1) is pi within 2^-60; log2(8) = 3. */
static void check_transcendental(void)
{
	struct f80 s;
	__asm__ volatile("fninit\n\tfldpi\n\tfsin\n\tfabs\n\tfstpt %0" : "=m"(s));
	expect((s.se & 0x7fff) < 0x3fff - 60, "sin(pi) < 2^-60");
	struct f80 d;
	__asm__ volatile("fninit\n\tfld1\n\tfld1\n\tfpatan\n\tfld1\n\tfadd %%st(0), %%st\n\t"
			 "fadd %%st(0), %%st\n\tfmulp\n\tfldpi\n\tfsubrp\n\tfabs\n\tfstpt %0"
			 : "=m"(d));
	expect((d.se & 0x7fff) < 0x3fff - 60 || (d.se == 0 && d.sig == 0), "4 * atan(1/1) = pi");
	int32_t r = 0, eight = 8;
	/* log2(8) = 3 exactly */
	__asm__ volatile("fninit\n\tfld1\n\tfildl %1\n\tfyl2x\n\tfistpl %0"
			 : "=m"(r) : "m"(eight));
	expect_eq(r, 3, "fyl2x: log2(8)");
}

/* Nine pushes into eight registers: IE, SF, C1 = 1 and the QNaN indefinite. */
static void check_overflow(void)
{
	struct f80 top;
	uint16_t sw;
	__asm__ volatile("fninit\n\t"
			 "fld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\tfld1\n\t"
			 "fnstsw %1\n\tfstpt %0\n\tfninit" : "=m"(top), "=m"(sw));
	expect_eq(sw & (SW_IE | SW_SF | SW_C1), SW_IE | SW_SF | SW_C1, "stack overflow: IE SF C1");
	expect_eq(top.sig, 0xc000000000000000ull, "overflow pushes the indefinite");
	expect_eq(top.se, 0xffff, "the indefinite's sign and exponent");
}

static volatile unsigned mf_count, nm_count;

static void on_mf(struct rt_frame *f)
{
	(void)f;
	mf_count++;
	__asm__ volatile("fnclex");
}

/* #NM: count it and take away its cause (CR0.TS and CR0.EM). */
static void on_nm(struct rt_frame *f)
{
	(void)f;
	nm_count++;
	cr0_set(cr0_get() & ~(CR0_TS | CR0_EM));
}

/* 1/0 with ZE unmasked: the quotient register is left alone, ZE and ES
 * are set, and #MF comes at the next waiting instruction (FWAIT). */
static void check_exceptions(void)
{
	cr0_set(cr0_get() | CR0_NE);
	idt_set_handler(X86_MF, on_mf);
	idt_set_handler(X86_NM, on_nm);
	uint16_t sw;
	int32_t divisor = -1, dividend = -1;
	__asm__ volatile("fninit\n\tfldcw %1\n\tfld1\n\tfldz\n\tfdivrp\n\tfnstsw %0\n\t"
			 : "=m"(sw) : "m"((uint16_t){ 0x37f & ~CW_ZM }));
	expect_eq(sw & (SW_ZE | SW_ES), SW_ZE | SW_ES, "unmasked 1/0: ZE and ES pending");
	expect_eq(mf_count, 0, "no #MF before a waiting instruction");
	__asm__ volatile("fwait");
	expect_eq(mf_count, 1, "#MF at FWAIT");
	__asm__ volatile("fistpl %0\n\tfistpl %1" : "=m"(divisor), "=m"(dividend));
	expect_eq(divisor, 0, "the divisor still in ST(0): not popped");
	expect_eq(dividend, 1, "the dividend left alone in ST(1)");
	fldcw(0x37f);
	__asm__ volatile("fninit");

	/* CR0.TS: the first x87 instruction raises #NM; the handler clears TS */
	int32_t v = 0;
	cr0_set(cr0_get() | CR0_TS);
	__asm__ volatile("fld1\n\tfistpl %0" : "=m"(v));
	expect_eq(nm_count, 1, "#NM with CR0.TS, once");
	expect_eq(v, 1, "the instruction ran after CLTS");

	/* CR0.EM: #NM too; FWAIT only minds MP together with TS */
	cr0_set(cr0_get() | CR0_EM);
	__asm__ volatile("fldz\n\tfistpl %0" : "=m"(v));
	expect_eq(nm_count, 2, "#NM with CR0.EM");
	expect_eq(v, 0, "the instruction ran after EM was cleared");
	cr0_set((cr0_get() & ~CR0_MP) | CR0_TS);
	__asm__ volatile("fwait");
	expect_eq(nm_count, 2, "FWAIT with TS but not MP: no #NM");
	cr0_set(cr0_get() | CR0_MP | CR0_TS);
	__asm__ volatile("fwait");
	expect_eq(nm_count, 3, "FWAIT with MP and TS: #NM");
	idt_set_handler(X86_MF, 0);
	idt_set_handler(X86_NM, 0);
}

/* The state survives FNSTENV/FLDENV, FNSAVE/FRSTOR and FXSAVE/FXRSTOR. */
static void check_state_images(void)
{
	static uint8_t fx[512] __attribute__((aligned(16)));
	uint8_t env[28], save[108];
	int32_t a = 0, b = 0, c = 0;
	uint16_t cw = 0, sw_before, sw_after;
	__asm__ volatile("fninit\n\tfldpi\n\tfld1\n\tfnstsw %0\n\tfnsave %1\n\tfnstcw %2"
			 : "=m"(sw_before), "=m"(save), "=m"(cw));
	expect_eq(cw, 0x37f, "FNSAVE reinitialises: FCW 0x37f");
	__asm__ volatile("frstor %1\n\tfnstsw %0" : "=m"(sw_after) : "m"(save));
	expect_eq(sw_after, sw_before, "FRSTOR brings FSW back");
	__asm__ volatile("fxsave %0\n\tfninit\n\tfxrstor %0\n\tfistpl %1\n\tfldpi\n\t"
			 "fnstenv %2\n\tfninit\n\tfldenv %2\n\tfistpl %3\n\tfistpl %4"
			 : "+m"(fx), "=m"(a), "=m"(env), "=m"(b), "=m"(c));
	expect_eq(a, 1, "FXRSTOR brings ST(0) back");
	expect_eq(b, 3, "FLDENV brings TOP and the tags back (pi)");
	expect_eq(c, 3, "and the value below it");
	expect_eq(fx[4], 0xc0, "FXSAVE's abridged tags: registers 6 and 7");
}

/* XSAVEC writes the compacted header and XRSTOR takes it back; XSAVEOPT
 * and XRSTOR of the standard format too (x87 and SSE in XCR0). */
static void check_xsave(void)
{
	static uint8_t area[1024] __attribute__((aligned(64)));
	uint64_t bv, comp;
	int32_t a = 0, b = 0;
	write_cr4(read_cr4() | CR4_OSXSAVE);
	__asm__ volatile("xsetbv" :: "c"(0), "a"(3), "d"(0));
	memset(area, 0, sizeof(area));
	__asm__ volatile("fninit\n\tfldpi\n\txsavec64 %0\n\tfninit\n\txrstor64 %0\n\tfistpl %1"
			 : "+m"(area), "=m"(a) : "a"(3), "d"(0));
	memcpy(&bv, area + 512, 8);
	memcpy(&comp, area + 520, 8);
	expect_eq(comp, 0x8000000000000003ull, "xsavec: XCOMP_BV compacted, x87 and SSE");
	expect_eq(bv & 1, 1, "xsavec: XSTATE_BV has the x87 state");
	expect_eq(a, 3, "xrstor of the compacted image brings ST(0) back");
	memset(area, 0, sizeof(area));
	__asm__ volatile("fninit\n\tfld1\n\txsaveopt64 %0\n\tfninit\n\txrstor64 %0\n\tfistpl %1"
			 : "+m"(area), "=m"(b) : "a"(3), "d"(0));
	memcpy(&comp, area + 520, 8);
	expect_eq(comp, 0, "xsaveopt: the standard format");
	expect_eq(b, 1, "xrstor of the XSAVEOPT image brings ST(0) back");
}

int main(void)
{
	check_exact();
	check_rounding();
	check_precision();
	check_compares();
	check_partial();
	check_transcendental();
	check_overflow();
	check_exceptions();
	check_state_images();
	check_xsave();
	return report_summary();
}
