/* guests/rt/entry64.S — vmdb's ELF64 entry (machine/bootinfo.h): 64-bit
 * mode, RAX = VMDB_BOOT_MAGIC, RDI = boot info, RSP = VMDB_BOOT_STACK_TOP.
 * Record what we were given before touching anything, then move to the
 * runtime's own GDT and stack and call rt_start(RT_BOOT_ELF64). */
#include "guests/rt/boot.h"

#define ES(off) (rt_entry_state + (off))

	.section .text.boot, "ax"
	.code64
	.globl _start
_start:
	movq	%rax, ES(RT_ES_AX)
	movq	%rbx, ES(RT_ES_BX)
	movq	%rdi, ES(RT_ES_DI)
	movq	%rsp, ES(RT_ES_SP)
	pushfq
	popq	ES(RT_ES_FLAGS)
	movq	%cr0, %rax
	movq	%rax, ES(RT_ES_CR0)
	movq	%cr3, %rax
	movq	%rax, ES(RT_ES_CR3)
	movq	%cr4, %rax
	movq	%rax, ES(RT_ES_CR4)
	movl	$0xc0000080, %ecx		/* MSR_EFER */
	rdmsr
	movl	%eax, ES(RT_ES_EFER)
	movl	%edx, ES(RT_ES_EFER + 4)
	movw	%cs, ES(RT_ES_CS)
	movw	%ds, ES(RT_ES_DS)
	movw	%es, ES(RT_ES_ES)
	movw	%ss, ES(RT_ES_SS)
	movw	%fs, ES(RT_ES_FS)
	movw	%gs, ES(RT_ES_GS)
	sgdt	ES(RT_ES_GDTR)
	sidt	ES(RT_ES_IDTR)

	movq	$rt_boot_stack_top, %rsp
	lgdt	rt_gdtr
	call	rt_reload_segments
	movl	$RT_BOOT_ELF64, %edi
	call	rt_start
1:	cli
	hlt
	jmp	1b
