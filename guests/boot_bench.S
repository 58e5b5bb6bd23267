/* guests/boot_bench.S — the Bochs benchmark disk image's boot code. Bochs
 * cannot load ELF or multiboot kernels, so build/guests/boot_bench.img is a
 * raw disk: the BIOS loads this boot sector at 0x7c00; it reads the rest of
 * the image (LBA 1.., int 13h AH=42h) right behind itself, enables A20,
 * goes to 32-bit protected mode, builds identity page tables for 0..1 GiB
 * with 2 MiB pages (as vmdb's ELF64 loader does), enables long mode and
 * calls boot_main() (guests/boot_main.c) on its own stack, which runs the
 * very loops of guests/bench_loops.S.
 *
 * The parameter block boot_params (struct boot_params in boot_main.c)
 * starts with the magic "VMDBBNCH"; bench/emu finds it in a copy of the
 * image and writes the benchmark and count there. */

/* segment descriptor: base 0, limit 0xfffff pages */
#define SEG_ACC_RW    0x02
#define SEG_ACC_CODE  0x08
#define SEG_ACC_S     0x10
#define SEG_ACC_P     0x80
#define SEG_FLAG_L    0x2
#define SEG_FLAG_DB   0x4
#define SEG_FLAG_G    0x8
#define SEG_LIMIT_LO  0xffff
#define SEG_LIMIT_HI  0xf
#define SEG_DESC(acc, flags) \
	.quad SEG_LIMIT_LO | ((acc) << 40) | (SEG_LIMIT_HI << 48) | ((flags) << 52)

#define SEL_CODE64 0x08
#define SEL_DATA   0x10
#define SEL_CODE32 0x18

#define X86_CR0_PE   (1 << 0)
#define X86_CR0_PG   (1 << 31)
#define X86_CR4_PAE  (1 << 5)
#define X86_MSR_EFER 0xc0000080
#define X86_EFER_LME (1 << 8)

#define PTE_P   (1 << 0)
#define PTE_RW  (1 << 1)
#define PTE_PS  (1 << 7)
#define PAGE_2M (1 << 21)

/* Page tables and stack live in conventional memory above the image. */
#define BOOT_PML4  0x20000
#define BOOT_PDPT  0x21000
#define BOOT_PD    0x22000
#define BOOT_STACK 0x90000

#define BIOS_DISK_INT       0x13
#define BIOS_DISK_READ_EXT  0x42
#define PORT_SYSCTL_A       0x92     /* bit 1: fast A20 gate, bit 0: reset */
#define PORT_E9             0xe9     /* Bochs' port_e9_hack console */

	.section .boot16, "ax"
	.code16
	.globl boot_start
boot_start:
	cli
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$0x7c00, %sp
	ljmp	$0, $1f				/* CS:IP = 0:7cxx whatever the BIOS used */
1:	movw	$boot_dap, %si			/* DL = boot drive, from the BIOS */
	movb	$BIOS_DISK_READ_EXT, %ah
	int	$BIOS_DISK_INT
	jc	boot_fail
	inb	$PORT_SYSCTL_A, %al
	orb	$2, %al
	andb	$0xfe, %al
	outb	%al, $PORT_SYSCTL_A
	lgdtl	boot_gdtr
	movl	%cr0, %eax
	orl	$X86_CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $boot32

boot_fail:
	movb	$'E', %al
	outb	%al, $PORT_E9
2:	hlt
	jmp	2b

	.balign 8
boot_gdt:
	.quad 0
	SEG_DESC(SEG_ACC_P | SEG_ACC_S | SEG_ACC_CODE | SEG_ACC_RW, SEG_FLAG_G | SEG_FLAG_L)
	SEG_DESC(SEG_ACC_P | SEG_ACC_S | SEG_ACC_RW, SEG_FLAG_G | SEG_FLAG_DB)
	SEG_DESC(SEG_ACC_P | SEG_ACC_S | SEG_ACC_CODE | SEG_ACC_RW, SEG_FLAG_G | SEG_FLAG_DB)
boot_gdt_end:
boot_gdtr:
	.word	boot_gdt_end - boot_gdt - 1
	.long	boot_gdt

/* int 13h AH=42h disk address packet: the sectors after this one, to 0x7e00 */
	.balign 4
boot_dap:
	.byte	0x10, 0
	.word	boot_rest_sectors
	.word	0x7e00, 0
	.quad	1

	.org	0x180
	.globl boot_params
boot_params:
	.ascii	"VMDBBNCH"
	.long	0				/* which: 0 compute, 1 memory */
	.long	0
	.quad	1				/* iterations / rounds */

	.org	0x1fe
	.byte	0x55, 0xaa

	.section .text.boot32, "ax"
	.code32
boot32:
	movw	$SEL_DATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movl	$BOOT_STACK, %esp
	movl	$BOOT_PML4, %edi		/* zero PML4, PDPT, PD */
	movl	$(3 * 4096 / 4), %ecx
	xorl	%eax, %eax
	rep stosl
	movl	$(BOOT_PDPT | PTE_P | PTE_RW), BOOT_PML4
	movl	$(BOOT_PD | PTE_P | PTE_RW), BOOT_PDPT
	movl	$BOOT_PD, %edi			/* 512 x 2 MiB: 0..1 GiB */
	movl	$(PTE_P | PTE_RW | PTE_PS), %eax
	movl	$512, %ecx
3:	movl	%eax, (%edi)
	addl	$PAGE_2M, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	3b
	movl	%cr4, %eax
	orl	$X86_CR4_PAE, %eax
	movl	%eax, %cr4
	movl	$BOOT_PML4, %eax
	movl	%eax, %cr3
	movl	$X86_MSR_EFER, %ecx
	rdmsr
	orl	$X86_EFER_LME, %eax
	wrmsr
	movl	%cr0, %eax
	orl	$X86_CR0_PG, %eax
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $boot64

	.code64
boot64:
	movw	$SEL_DATA, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	%ax, %fs
	movw	%ax, %gs
	movq	$BOOT_STACK, %rsp
	movq	$__bss_start, %rdi
	movq	$__bss_end, %rcx
	subq	%rdi, %rcx
	xorl	%eax, %eax
	rep stosb
	call	boot_main
4:	cli
	hlt
	jmp	4b

	.section .note.GNU-stack, "", @progbits
