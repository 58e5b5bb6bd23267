/* guests/bench_loops.S — the benchmark loops (see bench_loops.h): plain
 * SysV-ABI functions, so the vmdb guests, the Bochs image and the host
 * reference (bench/emu_ref.c) run the very same instructions. The numbers
 * on the right count the instructions one iteration retires; both paths of
 * every data-dependent branch are equally long. */
#include "guests/bench_loops.h"

	.text
	.code64

/* uint64_t bench_compute_loop(uint64_t iters, uint64_t *arr)
 * rax: xorshift64 state, rdx: accumulator, rdi: iterations left.
 * Fixed part: call, movabs, mov, xor, ret = BENCH_COMPUTE_FIXED (5). */
	.globl bench_compute_loop
	.type bench_compute_loop, @function
bench_compute_loop:
	movabsq	$0x9e3779b97f4a7c15, %rax
	movl	$1, %edx
1:	movq	%rax, %r8		/*  1  xorshift64: x ^= x << 13 */
	shlq	$13, %r8		/*  2 */
	xorq	%r8, %rax		/*  3 */
	movq	%rax, %r8		/*  4  x ^= x >> 7 */
	shrq	$7, %r8			/*  5 */
	xorq	%r8, %rax		/*  6 */
	movq	%rax, %r8		/*  7  x ^= x << 17 */
	shlq	$17, %r8		/*  8 */
	xorq	%r8, %rax		/*  9 */
	imulq	%rax, %rdx		/* 10  acc = acc * x + i */
	addq	%rdi, %rdx		/* 11 */
	movl	%edi, %ecx		/* 12  arr[i & 7] += acc, acc = arr[i & 7] */
	andl	$(BENCH_COMPUTE_ARR_LEN - 1), %ecx	/* 13 */
	addq	(%rsi,%rcx,8), %rdx	/* 14  load */
	movq	%rdx, (%rsi,%rcx,8)	/* 15  store */
	cmpb	$0x80, %dl		/* 16  a branch the data decides */
	jb	2f			/* 17 */
	addq	%rax, %rdx		/* 18  taken when dl >= 0x80 ... */
	jmp	3f			/* 19 */
2:	subq	%rax, %rdx		/* 18  ... or when dl < 0x80 */
	rolq	$5, %rdx		/* 19 */
3:	decq	%rdi			/* 20 */
	jnz	1b			/* 21 = BENCH_COMPUTE_PER_ITER */
	xorq	%rdx, %rax
	ret
	.size bench_compute_loop, . - bench_compute_loop

/* uint64_t bench_memory_loop(uint64_t rounds, void *dst, const void *src,
 *                            const struct bench_node *head)
 * Per round: copy BENCH_COPY_BYTES from src to dst in 32-byte chunks, then
 * follow the chase from head through BENCH_CHASE_NODES nodes.
 * Fixed part: call, 4 push, 3 mov, xor, 4 pop, ret = BENCH_MEMORY_FIXED (14). */
	.globl bench_memory_loop
	.type bench_memory_loop, @function
bench_memory_loop:
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	movq	%rsi, %r12		/* dst */
	movq	%rdx, %r13		/* src */
	movq	%rcx, %r14		/* chase head */
	xorl	%eax, %eax
1:	movq	%r13, %rsi		/* r1 */
	movq	%r12, %rbx		/* r2 */
	movl	$BENCH_COPY_CHUNKS, %ecx	/* r3 */
2:	movq	(%rsi), %r8		/*  1  four loads ... */
	movq	8(%rsi), %r9		/*  2 */
	movq	16(%rsi), %r10		/*  3 */
	movq	24(%rsi), %r11		/*  4 */
	movq	%r8, (%rbx)		/*  5  ... four stores */
	movq	%r9, 8(%rbx)		/*  6 */
	movq	%r10, 16(%rbx)		/*  7 */
	movq	%r11, 24(%rbx)		/*  8 */
	addq	%r8, %rax		/*  9  checksum */
	addq	$32, %rsi		/* 10 */
	addq	$32, %rbx		/* 11 */
	decq	%rcx			/* 12 */
	jnz	2b			/* 13 = BENCH_COPY_PER_CHUNK */
	movq	%r14, %rsi		/* r4 */
	movl	$BENCH_CHASE_NODES, %ecx	/* r5 */
3:	movq	(%rsi), %rsi		/*  1  next node */
	addq	8(%rsi), %rax		/*  2  its value */
	rolq	$1, %rax		/*  3  (so the order counts) */
	decq	%rcx			/*  4 */
	jnz	3b			/*  5 = BENCH_CHASE_PER_NODE */
	decq	%rdi			/* r6 */
	jnz	1b			/* r7 = BENCH_MEMORY_ROUND_EXTRA */
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	ret
	.size bench_memory_loop, . - bench_memory_loop

	.section .note.GNU-stack, "", @progbits
