/* guests/smc.c — smc.elf: self-modifying code, as the fast path of emu
 * (engine/emu/emu_fast.c) must see it: stores into code it has decoded
 * already, made by plain instructions that stay on the fast path. Each
 * loop below is plain code only (MOV, ADD, CALL, RET, Jcc ...), so on emu
 * it runs as blocks; the instruction it patches is
 *   another block in the same page, entered by a CALL (its link),
 *   the very next instruction of the running block,
 *   the first instruction of the running block (a loop's back edge),
 *   another block, patched by XCHG (an exact handler) and by REP MOVSB
 *   (the exact path),
 *   an instruction across a page boundary: first in a block (which
 *   leaves it to the exact path: its decoded form cached by its bytes in
 *   both pages) and last in a block (whose bytes in the next page are
 *   compared each time it runs),
 *   the next instruction of a block whose loop stored into its page
 *   many times before,
 *   another block in another page, entered by a CALL (a link there),
 *   code in a page that was then taken for data (many stores, no code
 *   run there: emu stops counting such stores) and patched.
 * Every result must be what the bytes in memory say. PASS/FAIL lines,
 * exit 0 when all pass. */
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

/* The code lives in its own section: the loader maps it writable and executable
 * (no NX in the boot page tables), and the patches need not touch .text. */
__asm__(
	"	.pushsection smc_code, \"awx\", @progbits\n"
	"	.code64\n"
	/* uint64_t smc_other(uint64_t n): sum of i for i < n, each i written
	 * into smc_ret_imm's immediate and read back by calling it */
	"smc_ret_imm:\n"
	"	movl	$0, %eax\n"
	"	ret\n"
	"	.globl smc_other\n"
	"smc_other:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"1:	movl	%ecx, smc_ret_imm+1(%rip)\n"
	"	call	smc_ret_imm\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	1b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint32_t smc_next(uint32_t v): writes v into the next instruction */
	"	.globl smc_next\n"
	"smc_next:\n"
	"	movl	%edi, 2f+1(%rip)\n"
	"2:	movl	$0x11111111, %eax\n"
	"	ret\n"
	/* uint64_t smc_head(uint64_t n): the loop patches its own first
	 * instruction, so iteration i adds i - 1 (0 the first time) */
	"	.globl smc_head\n"
	"smc_head:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"	movl	$0, smc_head_imm+1(%rip)\n"
	"smc_head_imm:\n"
	"	movl	$0, %eax\n"
	"	addq	%rax, %r8\n"
	"	movl	%ecx, smc_head_imm+1(%rip)\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	smc_head_imm\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint64_t smc_xchg(uint64_t n): as smc_other, the patch by XCHG */
	"smc_xchg_imm:\n"
	"	movl	$0, %eax\n"
	"	ret\n"
	"	.globl smc_xchg\n"
	"smc_xchg:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"3:	movl	%ecx, %edx\n"
	"	xchgl	%edx, smc_xchg_imm+1(%rip)\n"
	"	call	smc_xchg_imm\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	3b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint32_t smc_movs(const uint32_t *v): REP MOVSB of *v into an
	 * immediate, then the patched instruction */
	"	.globl smc_movs\n"
	"smc_movs:\n"
	"	call	4f\n"               /* decoded once with the old immediate */
	"	movq	%rdi, %rsi\n"
	"	leaq	4f+1(%rip), %rdi\n"
	"	movl	$4, %ecx\n"
	"	rep movsb\n"
	"4:	movl	$0x22222222, %eax\n"
	"	ret\n"
	/* uint64_t smc_cross(uint64_t n): as smc_other, the patched
	 * instruction across a page boundary (its immediate in the second page) */
	"	.balign	4096\n"
	"	.skip	4096 - 1\n"
	"smc_cross_imm:\n"
	"	movl	$0, %eax\n"
	"	ret\n"
	"	.globl smc_cross\n"
	"smc_cross:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"5:	movl	%ecx, smc_cross_imm+1(%rip)\n"
	"	call	smc_cross_imm\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	5b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint64_t smc_tail(uint64_t n): the same with the patched
	 * instruction last in a block that begins earlier in its page */
	"	.balign	4096\n"
	"	.skip	4096 - 3\n"
	"smc_tail_fn:\n"
	"	xorl	%edx, %edx\n"
	"smc_tail_imm:\n"
	"	movl	$0, %eax\n"
	"	ret\n"
	"	.globl smc_tail\n"
	"smc_tail:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"6:	movl	%ecx, smc_tail_imm+1(%rip)\n"
	"	call	smc_tail_fn\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	6b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint32_t smc_busy(uint32_t v): a loop that stores into data in its
	 * own page many times, then writes v into its next instruction */
	"	.balign	4096\n"
	"	.globl smc_busy\n"
	"smc_busy:\n"
	"	movl	$200, %ecx\n"
	"7:	movl	%ecx, smc_busy_data(%rip)\n"
	"	decl	%ecx\n"
	"	jnz	7b\n"
	"	movl	%edi, 8f+1(%rip)\n"
	"8:	movl	$0x11111111, %eax\n"
	"	ret\n"
	"	.balign	64\n"
	"smc_busy_data:\n"
	"	.long	0\n"
	/* uint64_t smc_far(uint64_t n): as smc_other, the CALL target in a
	 * page of its own (a link to another page); uint64_t
	 * smc_restamp(uint64_t n): n calls of smc_far_one there, after the
	 * 1000th a store into that page's data (its blocks compare again, the
	 * same bytes: from then on the links go in again) */
	"	.balign	4096\n"
	"smc_far_imm:\n"
	"	movl	$0, %eax\n"
	"	ret\n"
	"smc_far_one:\n"
	"	movl	$1, %eax\n"
	"	ret\n"
	"	.balign	64\n"
	"smc_far_data:\n"
	"	.long	0\n"
	"	.balign	4096\n"
	"	.globl smc_far, smc_restamp\n"
	"smc_far:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"9:	movl	%ecx, smc_far_imm+1(%rip)\n"
	"	call	smc_far_imm\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	9b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	"smc_restamp:\n"
	"	xorl	%ecx, %ecx\n"
	"	xorl	%r8d, %r8d\n"
	"10:	cmpl	$1000, %ecx\n"
	"	jne	11f\n"
	"	movl	%ecx, smc_far_data(%rip)\n"
	"11:	call	smc_far_one\n"
	"	addq	%rax, %r8\n"
	"	incl	%ecx\n"
	"	cmpl	%edi, %ecx\n"
	"	jb	10b\n"
	"	movq	%r8, %rax\n"
	"	ret\n"
	/* uint32_t smc_reuse(void), in a page of its own whose rest main()
	 * takes for data */
	"	.balign	4096\n"
	"	.globl smc_reuse, smc_reuse_imm, smc_reuse_data\n"
	"smc_reuse:\n"
	"smc_reuse_imm:\n"
	"	movl	$0x55555555, %eax\n"
	"	ret\n"
	"	.balign	64\n"
	"smc_reuse_data:\n"
	"	.skip	1024\n"
	"	.popsection\n");

uint64_t smc_other(uint64_t n);
uint32_t smc_next(uint32_t v);
uint64_t smc_head(uint64_t n);
uint64_t smc_xchg(uint64_t n);
uint32_t smc_movs(const uint32_t *v);
uint64_t smc_cross(uint64_t n);
uint64_t smc_tail(uint64_t n);
uint32_t smc_busy(uint32_t v);
uint64_t smc_far(uint64_t n);
uint64_t smc_restamp(uint64_t n);
uint32_t smc_reuse(void);
extern char smc_reuse_imm[];
extern volatile uint32_t smc_reuse_data[256];

int main(void)
{
	const uint64_t n = 100000;
	const uint64_t sum = n * (n - 1) / 2;

	expect_eq(smc_other(n), sum, "patched CALL target in the same page");
	expect_eq(smc_next(0x12345678), 0x12345678, "patched next instruction");
	expect_eq(smc_next(0x9abcdef0), 0x9abcdef0, "patched next instruction again");
	expect_eq(smc_head(n), (n - 1) * (n - 2) / 2, "patched loop head");
	expect_eq(smc_xchg(n), sum, "patched by XCHG");
	uint32_t v = 0x33333333;
	expect_eq(smc_movs(&v), 0x33333333, "patched by REP MOVSB");
	v = 0x44444444;
	expect_eq(smc_movs(&v), 0x44444444, "patched by REP MOVSB again");
	expect_eq(smc_cross(n), sum, "patched instruction across a page boundary");
	expect_eq(smc_tail(n), sum, "patched instruction across a page boundary, last in a block");
	expect_eq(smc_busy(0x5678), 0x5678, "patched next instruction after stores into its page");
	expect_eq(smc_busy(0x9abc), 0x9abc, "the same again");
	expect_eq(smc_far(n), sum, "patched CALL target in another page");
	/* restamp=N: as many calls (tests/test_emu_jit.py counts their links) */
	uint64_t calls = cmdline_u64("restamp", 2000);
	expect_eq(smc_restamp(calls), calls, "CALL target in another page after a store there");
	/* code that ran, its page then taken for data (many stores, none run
	 * there), then code again: the patched bytes run (no output between:
	 * emu compares every block again after an exit) */
	uint32_t before = smc_reuse();
	for (unsigned i = 0; i < 4000; i++)
		smc_reuse_data[i % 256] = i;
	*(volatile uint32_t *)(smc_reuse_imm + 1) = 0x66666666;
	uint32_t after = smc_reuse();
	expect_eq(before, 0x55555555, "code in a page");
	expect_eq(after, 0x66666666, "code again in a page taken for data");
	return report_summary();
}
