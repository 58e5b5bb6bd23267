/* guests/rt/gdt.S — the runtime's GDT (shared by the BSP and the AP
 * trampoline: 0x08 64-bit code, 0x10 flat data, 0x18 32-bit code), its
 * GDTR image, the boot stack, and rt_reload_segments for 64-bit callers. */
#include "guests/rt/boot.h"

	.section .data
	.balign 16
	.globl rt_gdt
rt_gdt:
	.quad	0
	.quad	0x00af9b000000ffff	/* 0x08: code, L=1, DPL 0, present */
	.quad	0x00cf93000000ffff	/* 0x10: data, 4 GiB flat, writable */
	.quad	0x00cf9b000000ffff	/* 0x18: code, D=1 (32-bit), 4 GiB flat */
rt_gdt_end:

	/* 8-byte base so LGDT works in 64-bit mode; 32-bit LGDT reads 6 bytes. */
	.balign 8
	.globl rt_gdtr
rt_gdtr:
	.word	rt_gdt_end - rt_gdt - 1
	.quad	rt_gdt

	.section .bss
	.balign 4096
	.globl rt_boot_stack, rt_boot_stack_top
rt_boot_stack:
	.skip	RT_BOOT_STACK_SIZE
rt_boot_stack_top:

	.section .text
	.code64
	/* Load the data selectors and reload CS with a far return. */
	.globl rt_reload_segments
rt_reload_segments:
	movl	$RT_GDT_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	popq	%rax
	pushq	$RT_GDT_CODE64
	pushq	%rax
	lretq
