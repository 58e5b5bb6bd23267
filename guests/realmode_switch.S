/* guests/realmode_switch.S — the multiboot entry of realmode.elf: drop to
 * real mode the architectural way (16-bit protected-mode code segment,
 * clear CR0.PE, far jump to a real-mode CS:IP), call rm_work at linear
 * 0x7c00 twice, once as 0000:7c00 and once as 07c0:0000, back to 32-bit
 * protected mode and on into the runtime's multiboot entry with the
 * loader's EAX/EBX. Real mode reaches only the first MiB: the switch code
 * and rm_work are copied to RM_BASE first. What rm_work saw lands in
 * rm_results[] for main() to check (realmode.c). */
#define RM_BASE    0x7000		/* rm_blob's copy; rm_work at +0xc00 */
	.globl rm_blob
#define RM(x)      ((x) - rm_blob + RM_BASE)
#define RM_OUT     0x500		/* rm_work's results, 2 slots of 16 bytes */
#define RM_OUT_LEN 0x20
#define SEL_CODE16 0x08
#define SEL_DATA16 0x10
#define SEL_CODE32 0x18
#define SEL_DATA32 0x20

	.section .text.boot, "ax"
	.code32
	.globl rm_mb_entry
rm_mb_entry:
	cli
	movl	%eax, rm_saved_eax
	movl	%ebx, rm_saved_ebx
	cld
	movl	$rm_blob, %esi
	movl	$RM_BASE, %edi
	movl	$(rm_blob_end - rm_blob), %ecx
	rep movsb
	.globl rm_copied
rm_copied:			/* a debugger's int3s in the copy hold from here */
	lgdtl	rm_gdtr
	ljmpl	$SEL_CODE16, $RM(rm_pm16)

rm_back32:
	movl	$SEL_DATA32, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$RM_OUT, %esi
	movl	$rm_results, %edi
	movl	$RM_OUT_LEN, %ecx
	rep movsb
	movl	rm_saved_eax, %eax
	movl	rm_saved_ebx, %ebx
	jmp	rt_mb_entry

/* Runs at RM_BASE: every address in it goes through RM(). */
	.code16
rm_blob:
rm_pm16:				/* 16-bit protected mode, 64 KiB segments */
	movw	$SEL_DATA16, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movl	%cr0, %eax
	andl	$~1, %eax
	movl	%eax, %cr0
	ljmp	$0, $RM(rm_real)
rm_real:				/* real mode, CS = 0 */
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$RM_BASE, %sp
	lidt	RM(rm_ivt)
	movl	%cr0, %eax
	movl	%eax, RM_OUT + 0xc
	movw	$RM_OUT, %di
	lcall	$0, $RM(rm_work)
	movw	$(RM_OUT + 0x10), %di
	.globl rm_far_call
rm_far_call:
	lcall	$(RM(rm_work) >> 4), $0
	movl	%cr0, %eax
	orl	$1, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $rm_back32

rm_ivt:	.word	0x3ff
	.long	0

/* rm_work: far-called with DS = 0, DI = its 8-byte result slot; the
 * same bytes run under either CS, so only relative jumps. Stores the sum
 * 1..10 (AX), CS, the IP of rm_ret, and AX + 0x100 read at rm_work + 0x10
 * (where the debugger may have changed AX). */
	.globl rm_work, rm_ret
	.org	rm_blob + 0xc00, 0
rm_work:
	movw	$10, %cx
	xorw	%ax, %ax
1:	addw	%cx, %ax
	loop	1b
	movw	%ax, (%di)
	movw	%cs, 2(%di)
	.org	rm_work + 0x10, 0x90
rm_mark:
	movw	%ax, %si
	addw	$0x100, %si
	movw	%si, 6(%di)
	call	rm_ret
rm_ret:	popw	4(%di)
	lret
rm_blob_end:

	.code32
	.section .data
	.balign 8
rm_gdt:
	.quad	0
	.quad	0x00009a000000ffff	/* 0x08 code, 16-bit, base 0, limit 64 KiB */
	.quad	0x000092000000ffff	/* 0x10 data, 16-bit, base 0, limit 64 KiB */
	.quad	0x00cf9a000000ffff	/* 0x18 code, 32-bit flat */
	.quad	0x00cf92000000ffff	/* 0x20 data, 32-bit flat */
rm_gdt_end:
rm_gdtr:
	.word	rm_gdt_end - rm_gdt - 1
	.long	rm_gdt
rm_saved_eax:	.long 0
rm_saved_ebx:	.long 0
	.globl rm_results
rm_results:	.fill RM_OUT_LEN, 1, 0
