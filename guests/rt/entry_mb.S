/* guests/rt/entry_mb.S — Multiboot v1 entry. The loader enters rt_mb_entry
 * in 32-bit protected mode, paging off, EAX = 0x2BADB002, EBX = info.
 * Record that state (including a copy of the loader's GDT, which we are
 * about to stop using), identity-map 0-4 GiB with 2 MiB pages, enable long
 * mode and continue in rt_start(RT_BOOT_MULTIBOOT). The image is linked as
 * ELF64 and converted with objcopy -O elf32-i386 (kvm-unit-tests' way). */
#include "guests/rt/boot.h"

#define MB_FLAGS (1 << 0 | 1 << 1)	/* page-align modules, want memory info */
#define ES(off) (rt_entry_state + (off))
#define PTE_P_W 0x3
#define PDE_PS  0x80
#define X86_CR0_PG 0x80000000
#define X86_CR4_PAE 0x20
#define X86_EFER_LME 0x100

	.section .multiboot, "a"
	.balign 4
	.long	MULTIBOOT_HEADER_MAGIC
	.long	MB_FLAGS
	.long	-(MULTIBOOT_HEADER_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl rt_mb_entry
rt_mb_entry:
	cli
	movl	%eax, ES(RT_ES_AX)
	movl	%ebx, ES(RT_ES_BX)
	movl	%esp, ES(RT_ES_SP)
	movl	$rt_boot_stack_top, %esp
	pushfl
	popl	ES(RT_ES_FLAGS)
	movl	%cr0, %eax
	movl	%eax, ES(RT_ES_CR0)
	movl	%cr3, %eax
	movl	%eax, ES(RT_ES_CR3)
	movl	%cr4, %eax
	movl	%eax, ES(RT_ES_CR4)
	movw	%cs, ES(RT_ES_CS)
	movw	%ds, ES(RT_ES_DS)
	movw	%es, ES(RT_ES_ES)
	movw	%ss, ES(RT_ES_SS)
	movw	%fs, ES(RT_ES_FS)
	movw	%gs, ES(RT_ES_GS)
	sgdtl	ES(RT_ES_GDTR)
	sidtl	ES(RT_ES_IDTR)
	call	mb_copy_gdt
	call	mb_build_page_tables

	lgdtl	rt_gdtr
	ljmpl	$RT_GDT_CODE32, $1f
1:	movl	$RT_GDT_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs

	movl	%cr4, %eax
	orl	$X86_CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$mb_pml4, %eax
	movl	%eax, %cr3
	movl	$0xc0000080, %ecx		/* MSR_EFER */
	rdmsr
	orl	$X86_EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$X86_CR0_PG, %eax
	movl	%eax, %cr0
	ljmpl	$RT_GDT_CODE64, $mb_long_mode

/* Keep the loader's first GDT bytes: the checks that its segments are flat
 * run later, in C, after we switched GDTs. */
mb_copy_gdt:
	movzwl	ES(RT_ES_GDTR), %ecx
	incl	%ecx
	cmpl	$RT_ES_GDT_COPY_LEN, %ecx
	jbe	1f
	movl	$RT_ES_GDT_COPY_LEN, %ecx
1:	movl	ES(RT_ES_GDTR + 2), %esi
	movl	$ES(RT_ES_GDT_COPY), %edi
	cld
	rep movsb
	ret

/* PML4[0] -> PDPT, PDPT[0..3] -> PD0..PD3, 2048 2 MiB pages: 0-4 GiB. */
mb_build_page_tables:
	xorl	%eax, %eax			/* do not trust the loader to zero .bss */
	movl	$mb_pml4, %edi
	movl	$2 * 1024, %ecx
	rep stosl
	movl	$mb_pdpt + PTE_P_W, mb_pml4
	movl	$mb_pd, %eax
	orl	$PTE_P_W, %eax
	xorl	%ecx, %ecx
1:	movl	%eax, mb_pdpt(, %ecx, 8)
	addl	$4096, %eax
	incl	%ecx
	cmpl	$4, %ecx
	jb	1b
	xorl	%ecx, %ecx
	movl	$PTE_P_W | PDE_PS, %eax
2:	movl	%eax, mb_pd(, %ecx, 8)
	movl	$0, mb_pd + 4(, %ecx, 8)
	addl	$0x200000, %eax
	incl	%ecx
	cmpl	$2048, %ecx
	jb	2b
	ret

	.code64
mb_long_mode:
	movl	$RT_BOOT_MULTIBOOT, %edi
	call	rt_start
1:	cli
	hlt
	jmp	1b

	.section .bss
	.balign 4096
mb_pml4:	.skip 4096
mb_pdpt:	.skip 4096
mb_pd:		.skip 4 * 4096
