/* guests/step_pushf.c — step_pushf.elf: every place an RFLAGS image becomes
 * visible to the guest, recorded by the guest itself. A debugger
 * that single-steps this guest must leave the transcript unchanged: the
 * test runs it once with nobody attached and once under gdb `stepi`, and
 * compares the serial output line for line.
 *
 * Probes (each starts from a known RFLAGS image, KNOWN below, so the
 * result depends only on the code):
 *   - PUSHFQ and PUSHFW with TF clear, PUSHFQ with TF set by the guest
 *     (POPF), and how many of its own #DB traps that took;
 *   - the RFLAGS image in the frames of #UD (ud2), #DE (div 0), #PF (read
 *     at 4 GiB, unmapped), #GP (non-canonical read) and #BP (a guest INT3;
 *     vmdb reflects it to the guest as #BP);
 *   - the RFLAGS image in an APIC timer interrupt frame (a one-shot timer
 *     taken in a loop that changes no flag: PAUSE + LOOP);
 *   - the guest's own IF (vmdb's fallback for hosts without BLOCKIRQ
 *     clears IF while it steps and must show the guest's IF everywhere):
 *     PUSHFQ after POPF sets IF, after CLI, after STI, after POPF clears
 *     it, after an IRETQ whose frame sets it; the frames of #UD and #BP
 *     taken with IF set; R11 and the handler's RFLAGS after a SYSCALL
 *     with IF set. No interrupt source is armed there;
 *   - R11 after SYSCALL, and RFLAGS in the SYSCALL handler (FMASK masks
 *     TF, IF, DF, AC as Linux does). The handler is ring 0 and returns the
 *     way SYSRET would restore state (RFLAGS from R11, RIP from RCX) but
 *     with POPF + JMP: SYSRET in 64-bit mode always returns to ring 3 and
 *     this guest has no ring-3 world to return to.
 *
 * gdb: `break step_pushf_run` then `stepi N` walks through all probes in
 * order (a few hundred instructions, then the printing). */
#include "guests/rt/apic.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define STEP_FN __attribute__((noinline, noclone, used))

/* A known image: CF, PF, ZF, SF and the always-one bit, interrupts off. */
#define KNOWN (RFLAGS_FIXED1 | RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF | RFLAGS_SF)
#define SYSCALL_FMASK (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_AC)
#define TIMER_COUNT 20000u      /* one-shot, divide 1: ~20 us on KVM's 1 GHz APIC */
#define TIMER_SPINS 20000u      /* PAUSE; LOOP iterations that wait for it */

struct pushf_result {
	uint64_t pushfq_clear, pushfw_clear, pushfq_tf;
	uint64_t own_db;                  /* #DB traps taken while the guest's TF was set */
	uint64_t frame[5];                /* #UD #DE #PF #GP #BP */
	uint64_t vector[5];
	uint64_t timer_frame;
	uint64_t syscall_r11, syscall_flags;
};

static struct pushf_result res;

struct if_result {
	uint64_t popf_set, cli, sti, popf_clear, iret_set;
	uint64_t ud_frame, bp_frame;
	uint64_t syscall_r11, syscall_flags;
};

static struct if_result ifres;
static uint64_t *if_frame_slot;           /* where if_exc_handler records */
volatile uint64_t step_pushf_resume;      /* where an exception handler resumes */
volatile uint64_t step_pushf_timer_seen;
volatile uint64_t step_syscall_r11, step_syscall_flags;
static unsigned exc_slot;

static void db_handler(struct rt_frame *f)
{
	(void)f;
	res.own_db++;
	__asm__ volatile("mov %0, %%dr6" :: "r"(DR6_INIT));
}

static void exc_handler(struct rt_frame *f)
{
	if (exc_slot < 5) {
		res.frame[exc_slot] = f->rflags;
		res.vector[exc_slot] = f->vector;
	}
	exc_slot++;
	f->rip = step_pushf_resume;
}

static void if_exc_handler(struct rt_frame *f)
{
	if (if_frame_slot)
		*if_frame_slot = f->rflags;
	if_frame_slot = NULL;
	f->rip = step_pushf_resume;
}

static void timer_handler(struct rt_frame *f)
{
	res.timer_frame = f->rflags;
	step_pushf_timer_seen = 1;
	apic_eoi();
}

/* The SYSCALL entry: record, then restore RFLAGS from R11 and return to
 * RCX (what SYSRET would do, without leaving ring 0). */
__asm__(".text\n"
	".globl step_syscall_entry\n"
	"step_syscall_entry:\n"
	"	mov %r11, step_syscall_r11(%rip)\n"
	"	pushfq\n"
	"	popq step_syscall_flags(%rip)\n"
	"	push %r11\n"
	"	popfq\n"
	"	jmp *%rcx\n");
void step_syscall_entry(void);

static void probe_pushf(void)
{
	uint64_t q, w, t;
	__asm__ volatile(
		"push %[k]\n popfq\n"
		"pushfq\n pop %[q]\n"
		"push %[k]\n popfq\n"
		"pushfw\n popw %w[w]\n movzwl %w[w], %k[w]\n"
		"push %[k]\n orq %[tf], (%%rsp)\n popfq\n"
		"pushfq\n pop %[t]\n"
		"pushfq\n andq %[ntf], (%%rsp)\n popfq\n"
		: [q] "=&r"(q), [w] "=&r"(w), [t] "=&r"(t)
		: [k] "i"(KNOWN), [tf] "i"(RFLAGS_TF), [ntf] "i"(~RFLAGS_TF)
		: "memory", "cc");
	res.pushfq_clear = q;
	res.pushfw_clear = w;
	res.pushfq_tf = t;
}

/* One faulting instruction per block; the handler resumes at label 1. */
#define FAULT_PROBE(setup, insn, clobbers...)                                    \
	__asm__ volatile("lea 1f(%%rip), %%rax\n"                                \
			 "mov %%rax, step_pushf_resume(%%rip)\n"                 \
			 setup                                                    \
			 "push %[k]\n popfq\n"                                    \
			 insn "\n"                                                \
			 "1:\n"                                                   \
			 :: [k] "i"(KNOWN) : "rax", "memory", "cc", ##clobbers)

static void probe_exceptions(void)
{
	static const uint8_t vecs[] = { X86_UD, X86_DE, X86_PF, X86_GP, X86_BP };
	rt_handler old[5];
	for (int i = 0; i < 5; i++)
		old[i] = idt_set_handler(vecs[i], exc_handler);
	FAULT_PROBE("", "ud2");
	FAULT_PROBE("xor %%edx, %%edx\n mov $1, %%eax\n xor %%ecx, %%ecx\n", "div %%ecx",
		    "rcx", "rdx");
	FAULT_PROBE("mov $0x100000000, %%rax\n", "mov (%%rax), %%rax");
	FAULT_PROBE("mov $0x8000000000000000, %%rax\n", "mov (%%rax), %%rax");
	FAULT_PROBE("", "int3");
	for (int i = 0; i < 5; i++)
		idt_set_handler(vecs[i], old[i]);
}

/* Take the interrupt inside a loop that touches no flag (PAUSE, LOOP),
 * so the frame's RFLAGS is KNOWN | IF wherever it lands. The loop runs a
 * fixed TIMER_SPINS times (~100 us native, ~30 ms on an emulating host),
 * far longer than the timer's count. A spin, not HLT: a lost interrupt
 * must show as "none" in the transcript, not hang the guest. */
static void probe_timer(void)
{
	rt_handler old = idt_set_handler(RT_VEC_TIMER, timer_handler);
	uint64_t spins = TIMER_SPINS;
	step_pushf_timer_seen = 0;
	apic_timer_oneshot(RT_VEC_TIMER, TIMER_COUNT);
	__asm__ volatile("push %[k]\n popfq\n"
			 "1: pause\n"
			 "loop 1b\n"
			 "cli\n"
			 : "+c"(spins) : [k] "i"(KNOWN | RFLAGS_IF) : "memory", "cc");
	apic_timer_stop();
	idt_set_handler(RT_VEC_TIMER, old);
}

static void syscall_setup(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, 0x08ull << 32);           /* SYSCALL CS 0x08, SS 0x10 */
	wrmsr(MSR_LSTAR, (uintptr_t)step_syscall_entry);
	wrmsr(MSR_FMASK, SYSCALL_FMASK);
}

/* PUSHFQ images of the guest's own IF after each way of changing it; the
 * IRETQ returns to the next instruction with KNOWN | IF in its frame. */
static void probe_if_images(void)
{
	uint64_t a, b, c, d, e;
	__asm__ volatile(
		"push %[ki]\n popfq\n pushfq\n pop %[a]\n"
		"cli\n pushfq\n pop %[b]\n"
		"sti\n nop\n pushfq\n pop %[c]\n"
		"push %[k]\n popfq\n pushfq\n pop %[d]\n"
		"mov %%ss, %k[e]\n push %[e]\n lea 8(%%rsp), %[e]\n push %[e]\n"
		"push %[ki]\n mov %%cs, %k[e]\n push %[e]\n lea 1f(%%rip), %[e]\n push %[e]\n"
		"iretq\n"
		"1: pushfq\n pop %[e]\n cli\n"
		: [a] "=&r"(a), [b] "=&r"(b), [c] "=&r"(c), [d] "=&r"(d), [e] "=&r"(e)
		: [k] "i"(KNOWN), [ki] "i"(KNOWN | RFLAGS_IF)
		: "memory", "cc");
	ifres.popf_set = a;
	ifres.cli = b;
	ifres.sti = c;
	ifres.popf_clear = d;
	ifres.iret_set = e;
}

/* A fault and a trap taken with IF set, and a SYSCALL with IF set. */
static void probe_if_frames(void)
{
	rt_handler old_ud = idt_set_handler(X86_UD, if_exc_handler);
	rt_handler old_bp = idt_set_handler(X86_BP, if_exc_handler);
	if_frame_slot = &ifres.ud_frame;
	__asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, step_pushf_resume(%%rip)\n"
			 "push %[ki]\n popfq\n ud2\n 1: cli\n"
			 :: [ki] "i"(KNOWN | RFLAGS_IF) : "rax", "memory", "cc");
	if_frame_slot = &ifres.bp_frame;
	__asm__ volatile("lea 1f(%%rip), %%rax\n mov %%rax, step_pushf_resume(%%rip)\n"
			 "push %[ki]\n popfq\n int3\n 1: cli\n"
			 :: [ki] "i"(KNOWN | RFLAGS_IF) : "rax", "memory", "cc");
	idt_set_handler(X86_UD, old_ud);
	idt_set_handler(X86_BP, old_bp);
	syscall_setup();
	__asm__ volatile("push %[ki]\n popfq\n syscall\n cli\n"
			 :: [ki] "i"(KNOWN | RFLAGS_IF) : "rcx", "r11", "memory", "cc");
	ifres.syscall_r11 = step_syscall_r11;
	ifres.syscall_flags = step_syscall_flags;
}

static void probe_syscall(void)
{
	syscall_setup();
	__asm__ volatile("push %[k]\n popfq\n syscall\n"
			 :: [k] "i"(KNOWN) : "rcx", "r11", "memory", "cc");
	res.syscall_r11 = step_syscall_r11;
	res.syscall_flags = step_syscall_flags;
}

STEP_FN void step_pushf_run(void)
{
	rt_handler old_db = idt_set_handler(X86_DB, db_handler);
	probe_pushf();
	probe_exceptions();
	probe_if_images();
	probe_if_frames();
	probe_timer();
	probe_syscall();
	idt_set_handler(X86_DB, old_db);
}

static void print_result(void)
{
	static const char *const names[] = { "#UD", "#DE", "#PF", "#GP", "#BP" };
	printf("pushfq, TF clear: 0x%lx\n", (unsigned long)res.pushfq_clear);
	printf("pushfw, TF clear: 0x%lx\n", (unsigned long)res.pushfw_clear);
	printf("pushfq, TF set by the guest: 0x%lx\n", (unsigned long)res.pushfq_tf);
	printf("own #DB traps while TF was set: %lu\n", (unsigned long)res.own_db);
	for (int i = 0; i < 5; i++)
		printf("%s frame: vector %lu rflags 0x%lx\n", names[i], (unsigned long)res.vector[i],
		       (unsigned long)res.frame[i]);
	printf("exceptions taken: %u\n", exc_slot);
	if (step_pushf_timer_seen)
		printf("timer interrupt frame: rflags 0x%lx\n", (unsigned long)res.timer_frame);
	else
		printf("timer interrupt frame: none, the interrupt never came\n");
	printf("syscall: r11 0x%lx, rflags in handler 0x%lx\n", (unsigned long)res.syscall_r11,
	       (unsigned long)res.syscall_flags);
	printf("own IF: pushfq after popf sets it 0x%lx, after cli 0x%lx, after sti 0x%lx, "
	       "after popf clears it 0x%lx, after iretq sets it 0x%lx\n",
	       (unsigned long)ifres.popf_set, (unsigned long)ifres.cli, (unsigned long)ifres.sti,
	       (unsigned long)ifres.popf_clear, (unsigned long)ifres.iret_set);
	printf("own IF: #UD frame 0x%lx, #BP frame 0x%lx, syscall r11 0x%lx, rflags in "
	       "handler 0x%lx\n", (unsigned long)ifres.ud_frame, (unsigned long)ifres.bp_frame,
	       (unsigned long)ifres.syscall_r11, (unsigned long)ifres.syscall_flags);
}

/* What a CPU shows for the guest's own IF, nobody debugging. */
static void expect_if(void)
{
	static const struct {
		const uint64_t *got;
		uint64_t want;
		const char *what;
	} checks[] = {
		{ &ifres.popf_set, KNOWN | RFLAGS_IF, "pushfq after popf sets IF" },
		{ &ifres.cli, KNOWN, "pushfq after cli" },
		{ &ifres.sti, KNOWN | RFLAGS_IF, "pushfq after sti" },
		{ &ifres.popf_clear, KNOWN, "pushfq after popf clears IF" },
		{ &ifres.iret_set, KNOWN | RFLAGS_IF, "pushfq after iretq sets IF" },
		{ &ifres.ud_frame, KNOWN | RFLAGS_IF | RFLAGS_RF, "#UD frame with IF" },
		{ &ifres.bp_frame, KNOWN | RFLAGS_IF, "#BP frame with IF" },
		{ &ifres.syscall_r11, KNOWN | RFLAGS_IF, "syscall r11 with IF" },
		{ &ifres.syscall_flags, KNOWN & ~SYSCALL_FMASK, "syscall handler rflags with IF" },
	};
	for (unsigned i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
		expect_eq(*checks[i].got, checks[i].want, checks[i].what);
}

int main(void)
{
	printf("step_pushf: RFLAGS images the guest sees\n");
	step_pushf_run();
	print_result();
	/* What the Intel SDM gives a real CPU with nobody debugging. */
	expect_eq(res.pushfq_clear, KNOWN, "pushfq image is the flags popped");
	expect_eq(res.pushfw_clear, KNOWN, "pushfw image is the flags popped");
	expect_eq(res.pushfq_tf, KNOWN | RFLAGS_TF, "pushfq shows the guest's own TF");
	/* TF set by POPF traps after pushfq, pop, pushfq, andq, popf */
	expect_eq(res.own_db, 5, "own #DB traps for 5 instructions under own TF");
	expect_eq(exc_slot, 5, "five exceptions taken");
	for (int i = 0; i < 4; i++)        /* faults push RF=1 */
		expect_eq(res.frame[i], KNOWN | RFLAGS_RF, "fault frame rflags = known | RF");
	expect_eq(res.frame[4], KNOWN, "#BP (trap) frame rflags = known");
	expect_eq(res.timer_frame, KNOWN | RFLAGS_IF, "timer frame rflags = known | IF");
	expect_eq(res.syscall_r11, KNOWN, "syscall r11 = rflags before syscall");
	expect_eq(res.syscall_flags, KNOWN & ~SYSCALL_FMASK, "handler rflags = masked by FMASK");
	expect_if();
	return report_summary();
}
