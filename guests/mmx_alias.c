/* guests/mmx_alias.c — mmx_alias.elf: the MMX registers as the SDM
 * (vol. 1, 9.5) defines them, checked in ring 0 through the x87 state
 * images: MMi is the mantissa of physical register Ri, a write sets Ri's
 * sign and exponent bytes to all ones, any MMX instruction (a read into a
 * GPR too) sets TOP to 0 and every tag valid (FNSAVE's full tag word then
 * describes the contents, FXSAVE's abridged one is 0xff), EMMS sets TOP
 * to 0 and every tag empty, x87 loads read an MMX value as the 80-bit
 * number it makes; #NM with CR0.TS, #UD with CR0.EM, #MF at an MMX
 * instruction while an unmasked x87 exception is pending (CR0.NE).
 * (The compiler may not use the FPU here, -mgeneral-regs-only: every x87
 * and MMX instruction is written out.) */
#include <stdint.h>

#include "guests/rt/idt.h"
#include "guests/rt/report.h"
#include "guests/rt/string.h"
#include "x86/x86.h"

#define SW_TOP 0x3800u
#define TAG_VALID 0u
#define TAG_ZERO 1u
#define TAG_SPECIAL 2u
#define TAG_EMPTY 3u
#define VALUE 0x0102030405060708ull

/* FNSAVE's 64-bit-mode image: environment, then ST(0)..ST(7), 10 bytes each. */
struct fnsave_image {
	uint16_t fcw, r0, fsw, r1, ftw, r2;
	uint32_t fip, fop_cs, fdp, fds;
	uint8_t st[8][10];
} __attribute__((packed));

static uint8_t fx[512] __attribute__((aligned(16)));

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

static uint64_t mantissa(const uint8_t *reg)
{
	uint64_t m;
	memcpy(&m, reg, 8);
	return m;
}

static unsigned sign_exp(const uint8_t *reg)
{
	return reg[8] | reg[9] << 8;
}

/* Every register +0.0, the stack empty (FNINIT keeps the contents). */
static void zero_registers(void)
{
	__asm__ volatile("fninit\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\tfldz\n\t"
			 "fldz\n\tfninit");
}

/* Two x87 values (TOP 6), then MOVQ into MM2: TOP 0, full tags by contents. */
static void check_fnsave_after_movq(void)
{
	struct fnsave_image img;
	zero_registers();
	__asm__ volatile("fld1\n\tfld1\n\tmovq %1, %%mm2\n\tfnsave %0"
			 : "=m"(img) : "r"(VALUE) : "memory");
	expect_eq(img.fsw & SW_TOP, 0, "MOVQ to MM2: TOP 0");
	unsigned want = 0;
	for (unsigned p = 0; p < 8; p++)
		want |= (p == 2 ? TAG_SPECIAL : p >= 6 ? TAG_VALID : TAG_ZERO) << (2 * p);
	expect_eq(img.ftw, want, "MOVQ to MM2: every tag valid (full tags: zero, special, valid)");
	expect_eq(mantissa(img.st[2]), VALUE, "MM2 is the mantissa of R2 = ST(2)");
	expect_eq(sign_exp(img.st[2]), 0xffff, "MM2's write sets R2's sign and exponent to ones");
	expect_eq(mantissa(img.st[7]), 1ull << 63, "R7 keeps the x87 1.0");
	expect_eq(sign_exp(img.st[7]), 0x3fff, "and its exponent");
}

/* FXSAVE after an MMX add: abridged tags 0xff, TOP 0, the sum in MM3. */
static void check_fxsave_after_paddb(void)
{
	zero_registers();
	__asm__ volatile("fld1\n\tmovq %1, %%mm3\n\tpaddb %%mm3, %%mm3\n\tfxsave %0"
			 : "=m"(fx) : "r"(VALUE) : "memory");
	uint16_t fsw;
	memcpy(&fsw, fx + 2, 2);
	expect_eq(fsw & SW_TOP, 0, "PADDB: TOP 0 in FXSAVE's FSW");
	expect_eq(fx[4], 0xff, "PADDB: FXSAVE's abridged tags all valid");
	expect_eq(mantissa(fx + 32 + 16 * 3), 0x020406080a0c0e10ull, "PADDB MM3 in FXSAVE's ST(3)");
	expect_eq(sign_exp(fx + 32 + 16 * 3), 0xffff, "MM3's sign and exponent all ones");
}

/* EMMS: TOP 0, every tag empty; a GPR read of an MMX register transitions. */
static void check_emms_and_reads(void)
{
	struct fnsave_image img;
	uint32_t low;
	zero_registers();
	__asm__ volatile("fld1\n\tfld1\n\temms\n\tfnsave %0" : "=m"(img) :: "memory");
	expect_eq(img.fsw & SW_TOP, 0, "EMMS: TOP 0");
	expect_eq(img.ftw, 0xffff, "EMMS: every tag empty");
	zero_registers();
	__asm__ volatile("fld1\n\tmovd %%mm1, %1\n\tfnsave %0" : "=m"(img), "=r"(low) :: "memory");
	expect_eq(img.fsw & SW_TOP, 0, "MOVD MM1 to a GPR: TOP 0");
	expect_eq(img.ftw & 3u << 14, TAG_VALID << 14, "and R7 (1.0) valid");
	expect_eq(low, 0, "MM1 of a +0.0 register reads 0");
}

/* An x87 load of an MMX register: 0x8000000000000000 with sign and
 * exponent ones is -infinity. */
static void check_x87_reads_mmx(void)
{
	uint64_t d = 0;
	zero_registers();
	__asm__ volatile("movq %1, %%mm0\n\tfstpl %0\n\tfninit"
			 : "=m"(d) : "r"(1ull << 63) : "memory");
	expect_eq(d, 0xfff0000000000000ull, "ST(0) after MOVQ MM0, 2^63: -infinity");
}

static volatile unsigned nm_count, ud_count, mf_count;
static volatile uint16_t mf_sw;

static void on_nm(struct rt_frame *f)
{
	(void)f;
	nm_count++;
	cr0_set(cr0_get() & ~CR0_TS);
}

static void on_ud(struct rt_frame *f)
{
	(void)f;
	ud_count++;
	cr0_set(cr0_get() & ~CR0_EM);
}

static void on_mf(struct rt_frame *f)
{
	(void)f;
	mf_count++;
	__asm__ volatile("fnstsw %0\n\tfnclex" : "=m"(mf_sw));
}

/* #NM with CR0.TS, #UD with CR0.EM (each handler removes the cause and the
 * instruction runs again), #MF for a pending unmasked x87 exception; a
 * faulting MMX instruction leaves TOP and the tags alone. */
static void check_faults(void)
{
	uint64_t r = 0;
	uint16_t sw = 0;
	idt_set_handler(X86_NM, on_nm);
	idt_set_handler(X86_UD, on_ud);
	idt_set_handler(X86_MF, on_mf);
	cr0_set(cr0_get() | CR0_TS);
	__asm__ volatile("movq %1, %%mm0\n\tmovq %%mm0, %0\n\temms" : "=r"(r) : "r"(VALUE));
	expect_eq(nm_count, 1, "MMX with CR0.TS: #NM once");
	expect_eq(r, VALUE, "MOVQ ran after CLTS");
	cr0_set(cr0_get() | CR0_EM);
	__asm__ volatile("pxor %%mm1, %%mm1\n\tmovq %%mm1, %0\n\temms" : "=r"(r));
	expect_eq(ud_count, 1, "MMX with CR0.EM: #UD once");
	expect_eq(r, 0, "PXOR ran after EM was cleared");
	cr0_set(cr0_get() | CR0_NE);
	__asm__ volatile("fninit\n\tfldcw %1\n\tfld1\n\tfldz\n\tfdivrp\n\tfnstsw %0"
			 : "=m"(sw) : "m"((uint16_t){ 0x37f & ~0x4u }));
	expect_eq(sw & SW_TOP, 6u << 11, "1/0 unmasked: nothing popped, TOP 6");
	__asm__ volatile("pxor %%mm2, %%mm2\n\tfnstsw %0\n\temms" : "=m"(sw));
	expect_eq(mf_count, 1, "MMX with an unmasked exception pending: #MF");
	expect_eq(mf_sw & SW_TOP, 6u << 11, "the faulting PXOR left TOP alone");
	expect_eq(sw & SW_TOP, 0, "after FNCLEX the PXOR ran: TOP 0");
	__asm__ volatile("fninit");
	idt_set_handler(X86_NM, 0);
	idt_set_handler(X86_UD, 0);
	idt_set_handler(X86_MF, 0);
}

int main(void)
{
	check_fnsave_after_movq();
	check_fxsave_after_paddb();
	check_emms_and_reads();
	check_x87_reads_mmx();
	check_faults();
	return report_summary();
}
