/* guests/rt/trampoline.S — where an AP starts after STARTUP: real mode,
 * CS = RT_TRAMPOLINE_BASE >> 4, IP = 0. This code is copied to
 * RT_TRAMPOLINE_BASE; everything position-dependent in it is relative to
 * that fixed base, and it leaves for the runtime's own code (linked high,
 * addressed absolutely) as soon as it is in 32-bit mode. */
#include "guests/rt/boot.h"

#define TRAMP(sym) ((sym) - rt_trampoline_start)
#define X86_CR0_PE 0x1
#define X86_CR0_PG 0x80000000
#define X86_CR4_PAE 0x20
#define X86_EFER_LME 0x100
#define RT_TRAMPOLINE_BASE 0x0     /* = smp.h */
#define RT_MAX_CPUS_ASM 256         /* = smp.h RT_MAX_CPUS */

	.section .rodata
	.code16
	.globl rt_trampoline_start, rt_trampoline_end
rt_trampoline_start:
	cli
	movw	%cs, %ax
	movw	%ax, %ds
	lgdtl	TRAMP(tramp_gdtr)
	movl	%cr0, %eax
	orl	$X86_CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	*TRAMP(tramp_far32)

	.balign 8
tramp_gdtr:			/* the runtime's own GDT, linked below 4 GiB */
	.word	4 * 8 - 1
	.long	rt_gdt
tramp_far32:
	.long	RT_TRAMPOLINE_BASE + TRAMP(tramp32)
	.word	RT_GDT_CODE32

	.code32
tramp32:
	movl	$RT_GDT_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%cr4, %eax
	orl	$X86_CR4_PAE, %eax
	movl	%eax, %cr4
	movl	rt_ap_cr3, %eax		/* the BSP's page tables */
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx	/* MSR_EFER */
	rdmsr
	orl	$X86_EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$X86_CR0_PG, %eax
	movl	%eax, %cr0
	ljmpl	$RT_GDT_CODE64, $rt_ap_start64
rt_trampoline_end:

	.section .text
	.code64
/* CPU number = 1 + order of arrival; stack = rt_ap_stacks[number - 1]. */
rt_ap_start64:
	movl	$1, %eax
	lock xaddl %eax, rt_ap_next
	incl	%eax
	cmpl	$RT_MAX_CPUS_ASM, %eax		/* no stack for it: park */
	jae	1f
	movl	%eax, %edi
	shlq	$12, %rax			/* RT_AP_STACK_SIZE == 4096 */
	leaq	rt_ap_stacks(%rax), %rsp
	call	rt_ap_main
1:	cli
	hlt
	jmp	1b
