/* guests/rt/isr.S — one entry stub per vector. Vectors whose exception
 * pushes an error code skip the dummy push so every frame has the same
 * shape (struct rt_frame in idt.h). */
	.section .text
	.code64

	.macro ISR vec
	.balign 16
isr_\vec:
	.if (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$\vec
	jmp	isr_common
	.endm

	.altmacro
	.set vec, 0
	.rept 256
	ISR %vec
	.set vec, vec + 1
	.endr

isr_common:
	cld
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	call	rt_isr_dispatch
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	addq	$16, %rsp
	iretq

	.macro ISR_ADDR vec
	.quad	isr_\vec
	.endm

	.section .rodata
	.balign 8
	.globl rt_isr_table
rt_isr_table:
	.set vec, 0
	.rept 256
	ISR_ADDR %vec
	.set vec, vec + 1
	.endr
