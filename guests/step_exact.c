/* guests/step_exact.c — step_exact.elf: one instruction sequence run in
 * ring 0 and in ring 3, first with nobody stepping (the reference), then
 * again from exact_stepped, where gdb single-steps it
 * (tests/test_step_exact.py). The guest compares the two runs itself:
 * every result of the second must equal the first's.
 *
 * The sequence mixes what a debugger steps on emu's exact core on kvm
 * (memory, stack, call/ret, SSE, a #DE fault taken by the guest's own
 * handler) with what it must leave to KVM_RUN (CPUID, a port write), so
 * the state moves from the core to KVM and back in the middle.
 *
 * gdb: `break exact_stepped` then `stepi N` (a few hundred instructions
 * cover both rings). */
#include "guests/rt/boot.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/ring3.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "x86/desc.h"
#include "x86/x86.h"

#define STEP_FN __attribute__((noinline, noclone, used))

#define DIV_LEN 3                          /* div %rcx: 48 f7 f1 */
#define RESULT_WORDS 16

/* What one run of the sequence leaves; in[] is its input. */
struct exact_result {
	uint64_t in[4];
	uint64_t out[RESULT_WORDS];
	uint64_t faults;
} __attribute__((aligned(16)));

struct exact_run {
	struct exact_result ring0, ring3;
};

uint8_t exact_user_stack[4096] __attribute__((aligned(16)));
uint64_t exact_saved_rsp;
struct exact_result *exact_arg;
static struct exact_result *fault_into;

/* The sequence: rdi = struct exact_result. Memory, stack, call/ret,
 * SSE, CPUID, a port write (ring 0), a #DE its handler skips. */
void exact_seq(void);
__asm__(".text\n"
	".globl exact_seq\n"
	"exact_seq:\n"
	"	mov 0(%rdi), %rax\n"
	"	mov 8(%rdi), %rbx\n"
	"	lea 32(%rdi), %rsi\n"
	"	mov %rax, 0(%rsi)\n"
	"	add %rbx, 0(%rsi)\n"
	"	xor %rax, %rbx\n"
	"	mov %rbx, 8(%rsi)\n"
	"	incq 8(%rsi)\n"
	"	push %rax\n"
	"	push %rbx\n"
	"	pop %rcx\n"
	"	pop %rdx\n"
	"	call 1f\n"
	"	jmp 2f\n"
	"1:	rol $13, %rcx\n"
	"	imul %rdx, %rcx\n"
	"	ret\n"
	"2:	mov %rcx, 16(%rsi)\n"
	"	cpuid\n"                              /* leaf: the low bits of eax, any */
	"	movdqa 0(%rdi), %xmm0\n"
	"	movdqa 16(%rdi), %xmm1\n"
	"	paddq %xmm1, %xmm0\n"
	"	pshufd $0x1b, %xmm0, %xmm2\n"
	"	pxor %xmm2, %xmm1\n"
	"	movdqu %xmm1, 24(%rsi)\n"
	"	mov %cs, %eax\n"                      /* the port write in ring 0 only */
	"	test $3, %al\n"
	"	jnz 3f\n"
	"	mov $0x5a, %al\n"
	"	outb %al, $0x80\n"
	"3:	xor %ecx, %ecx\n"
	"	mov 0(%rdi), %rax\n"
	"	xor %edx, %edx\n"
	"	div %rcx\n"                           /* #DE: the handler skips it */
	"	mov %rax, 40(%rsi)\n"
	"	cmp %rbx, %rcx\n"                   /* the arithmetic flags, through PUSHFQ */
	"	pushfq\n"
	"	pop %rax\n"
	"	and $0xcd5, %rax\n"
	"	mov %rax, 48(%rsi)\n"
	"	movq %xmm0, 56(%rsi)\n"
	"	ret\n");

/* Ring 3: into exact_user_entry by IRETQ,
 * back through UD2 at exact_user_exit to exact_user_back in ring 0. */
void exact_user_call(void);
void exact_user_back(void);
void exact_user_exit(void);
__asm__(".text\n"
	".globl exact_user_call, exact_user_back, exact_user_exit\n"
	"exact_user_call:\n"
	"	push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	mov %rsp, exact_saved_rsp(%rip)\n"
	"	pushq $" RT_USER_SS "\n"
	"	lea exact_user_stack+4096(%rip), %rax\n push %rax\n"
	"	pushq $0x2\n"
	"	pushq $" RT_USER_CS "\n"
	"	lea exact_user_entry(%rip), %rax\n push %rax\n"
	"	iretq\n"
	"exact_user_entry:\n"
	"	mov exact_arg(%rip), %rdi\n"
	"	call exact_seq\n"
	"exact_user_exit:\n"
	"	ud2\n"
	"exact_user_back:\n"
	"	mov exact_saved_rsp(%rip), %rsp\n"
	"	mov $0x10, %eax\n mov %eax, %ds\n mov %eax, %es\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"	ret\n");

static void ud_handler(struct rt_frame *f)
{
	if (f->rip != (uintptr_t)exact_user_exit)
		rt_fail_now("step_exact: #UD at 0x%lx\n", (unsigned long)f->rip);
	f->rip = (uintptr_t)exact_user_back;
	f->cs = RT_GDT_CODE64;
	f->ss = RT_GDT_DATA;
	f->rsp = exact_saved_rsp;
}

static void de_handler(struct rt_frame *f)
{
	fault_into->faults++;
	f->rip += DIV_LEN;
}

/* Ring 3 (guests/rt/ring3.h) with SSE. */
static void ring3_setup(void)
{
	rt_ring3_setup();
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
}

static void seed(struct exact_result *r)
{
	memset(r, 0, sizeof(*r));
	r->in[0] = 0x0123456789abcdefull;
	r->in[1] = 0x0f1e2d3c4b5a6978ull;
	r->in[2] = 0x1111222233334444ull;
	r->in[3] = 0x5555666677778888ull;
}

static void run_ring0(struct exact_result *r)
{
	fault_into = r;
	__asm__ volatile("call exact_seq"
			 :: "D"(r)
			 : "rax", "rbx", "rcx", "rdx", "rsi", "memory", "cc");
}

static void run_ring3(struct exact_result *r)
{
	fault_into = r;
	exact_arg = r;
	__asm__ volatile("call exact_user_call"
			 ::: "rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
			 "memory", "cc");
}

static void run_both(struct exact_run *run)
{
	run_ring0(&run->ring0);
	run_ring3(&run->ring3);
}

/* gdb breaks here and steps. */
STEP_FN void exact_stepped(struct exact_run *run)
{
	run_both(run);
}

static void seed_both(struct exact_run *run)
{
	seed(&run->ring0);
	seed(&run->ring3);
}

static void compare(const char *ring, const struct exact_result *want,
		    const struct exact_result *got)
{
	char what[64];
	for (unsigned i = 0; i < RESULT_WORDS; i++) {
		snprintf(what, sizeof(what), "%s out[%u] as unstepped", ring, i);
		expect_eq(got->out[i], want->out[i], what);
	}
	snprintf(what, sizeof(what), "%s took its #DE once", ring);
	expect_eq(got->faults, 1, what);
	printf("%s: %lx %lx %lx %lx %lx\n", ring, (unsigned long)got->out[0],
	       (unsigned long)got->out[1], (unsigned long)got->out[2], (unsigned long)got->out[3],
	       (unsigned long)got->out[5]);
}

int main(void)
{
	static struct exact_run reference, stepped;
	printf("step_exact: ring 0 and ring 3 sequences, unstepped then stepped\n");
	ring3_setup();
	idt_set_handler(X86_UD, ud_handler);
	idt_set_handler(X86_DE, de_handler);
	seed_both(&reference);
	seed_both(&stepped);
	run_both(&reference);
	exact_stepped(&stepped);
	compare("ring0", &reference.ring0, &stepped.ring0);
	compare("ring3", &reference.ring3, &stepped.ring3);
	return report_summary();
}
