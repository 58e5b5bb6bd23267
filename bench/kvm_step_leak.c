/* bench/kvm_step_leak.c — what leaks into a guest, on this host's
 * /dev/kvm, while the host single-steps it with KVM_SET_GUEST_DEBUG
 * (SINGLESTEP, optionally BLOCKIRQ) in ring 0. A measurement, not a test:
 * it prints one line per question, "question: answer (evidence)", and the
 * step engine (debug/step.c) must correct every "leaks" / "lost"
 * it finds. Exit 0 after measuring, 77 when there is no /dev/kvm, 1 when
 * the machinery itself fails.
 *
 * Each scenario is a blob of position-independent 64-bit code assembled
 * below (top-level asm, AT&T syntax) and copied to KVM_TINY_CODE of the
 * engine's tiny guest (engine/kvm/kvm_guest.c). Guest code appends 8-byte
 * records to a log at KVM_TINY_DATA through %r15 (LOG macro); the host
 * compares the log of a run with nobody stepping against a run stepped
 * instruction by instruction. Handlers are installed by patching the tiny
 * guest's IDT, whose limit is raised to 256 vectors for the APIC timer.
 *
 * Usage: kvm_step_leak [-v] [QUESTION...]   (-v prints every step exit;
 * QUESTION: pushf exc int3 syscall shadow hlt irq rep tf iret; default all) */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/kvm/kvm.h"

/* ---- guest code ---------------------------------------------------------- */

#define LEAK_LOG        KVM_TINY_DATA           /* 8-byte records, %r15 */
#define LEAK_LOG_MAX    256
#define LEAK_VEC_TIMER  0x40
#define LEAK_APIC_PD    0xb000ull               /* page directory for 3-4 GiB */
#define LEAK_APIC_BASE  0xfee00000ull
#define LEAK_IDT_LIMIT  (256 * 16 - 1)

/* The blobs. Every blob ends with "out %al, $0xe0; hlt" (KVM_TINY_PORT_DONE). */
__asm__(
	".pushsection .rodata.kvm_step_leak, \"a\"\n"
	".code64\n"
	".macro LOG reg\n"
	"	mov \\reg, (%r15)\n"
	"	add $8, %r15\n"
	".endm\n"
	".macro DONE\n"
	"	out %al, $0xe0\n"
	"	hlt\n"
	".endm\n"
	".macro APIC_ONESHOT count\n"
	"	mov $0xfee00000, %ebx\n"
	"	movl $0x1ff, 0xf0(%rbx)\n"        /* SVR: enabled, spurious vector 0xff */
	"	movl $0xb, 0x3e0(%rbx)\n"         /* divide by 1 */
	"	movl $0x40, 0x320(%rbx)\n"        /* LVT timer: one-shot, LEAK_VEC_TIMER */
	"	movl $\\count, 0x380(%rbx)\n"     /* initial count: arms it */
	".endm\n"

	/* PUSHFQ and PUSHFW images. */
	".globl leak_pushf_start, leak_pushf_end\n"
	"leak_pushf_start:\n"
	"	mov $0x8000, %r15d\n"
	"	pushfq\n"
	"	pop %rax\n"
	"	LOG %rax\n"
	"	pushfw\n"
	"	pop %ax\n"
	"	movzwl %ax, %eax\n"
	"	LOG %rax\n"
	"	DONE\n"
	"leak_pushf_end:\n"

	/* Exception frames: #UD, #DE, #PF. %r14 is where each handler resumes. */
	".globl leak_exc_start, leak_exc_end, leak_exc_noerr, leak_exc_err, leak_exc_ud2\n"
	"leak_exc_start:\n"
	"	mov $0x8000, %r15d\n"
	"	lea 1f(%rip), %r14\n"
	"leak_exc_ud2:\n"
	"	ud2\n"
	"1:	lea 2f(%rip), %r14\n"
	"	xor %edx, %edx\n"
	"	xor %eax, %eax\n"
	"	xor %ecx, %ecx\n"
	"	div %ecx\n"
	"2:	lea 3f(%rip), %r14\n"
	"	mov $0x80000000, %eax\n"          /* 2 GiB: not mapped by the tiny guest */
	"	mov (%rax), %rax\n"
	"3:	DONE\n"
	"leak_exc_noerr:\n"
	"	mov 16(%rsp), %rax\n"
	"	LOG %rax\n"
	"	mov %r14, (%rsp)\n"
	"	iretq\n"
	"leak_exc_err:\n"
	"	mov 24(%rsp), %rax\n"
	"	LOG %rax\n"
	"	add $8, %rsp\n"
	"	mov %r14, (%rsp)\n"
	"	iretq\n"
	"leak_exc_end:\n"

	/* INT3 placed by the guest itself (#BP handler = leak_bp_handler). */
	".globl leak_bp_start, leak_bp_end, leak_bp_handler\n"
	"leak_bp_start:\n"
	"	mov $0x8000, %r15d\n"
	"	int3\n"
	"	DONE\n"
	"leak_bp_handler:\n"
	"	mov 16(%rsp), %rax\n"
	"	LOG %rax\n"
	"	iretq\n"
	"leak_bp_end:\n"

	/* The guest's own TF, set by POPF, cleared by POPF; its #DB handler
	 * logs the trap RIP and DR6 and clears DR6. */
	".globl leak_tf_start, leak_tf_end, leak_tf_set, leak_tf_n1, leak_db_handler\n"
	"leak_tf_start:\n"
	"	mov $0x8000, %r15d\n"
	"	pushfq\n"
	"	orq $0x100, (%rsp)\n"
	"leak_tf_set:\n"
	"	popfq\n"
	"leak_tf_n1:\n"
	"	nop\n"
	"	nop\n"
	"	nop\n"
	"	pushfq\n"
	"	andq $-0x101, (%rsp)\n"
	"	popfq\n"
	"	nop\n"
	"	DONE\n"
	/* The same, TF set by IRETQ (same blob: entered at leak_iret_start). */
	".globl leak_iret_start, leak_iret_set\n"
	"leak_iret_start:\n"
	"	mov $0x8000, %r15d\n"
	"	mov %ss, %eax\n"
	"	push %rax\n"
	"	lea 8(%rsp), %rax\n"
	"	push %rax\n"
	"	pushfq\n"
	"	orq $0x100, (%rsp)\n"
	"	mov %cs, %eax\n"
	"	push %rax\n"
	"	lea 1f(%rip), %rax\n"
	"	push %rax\n"
	"leak_iret_set:\n"
	"	iretq\n"
	"1:	nop\n"
	"	nop\n"
	"	pushfq\n"
	"	andq $-0x101, (%rsp)\n"
	"	popfq\n"
	"	DONE\n"
	"leak_db_handler:\n"
	"	mov (%rsp), %rax\n"
	"	LOG %rax\n"
	"	mov %dr6, %rax\n"
	"	LOG %rax\n"
	"	mov $0xffff0ff0, %eax\n"
	"	mov %rax, %dr6\n"
	"	iretq\n"
	"leak_tf_end:\n"

	/* SYSCALL: the handler logs R11 and its own RFLAGS, returns by jmp. */
	".globl leak_sys_start, leak_sys_end, leak_sys_handler\n"
	"leak_sys_start:\n"
	"	mov $0x8000, %r15d\n"
	"	syscall\n"
	"	DONE\n"
	"leak_sys_handler:\n"
	"	LOG %r11\n"
	"	pushfq\n"
	"	pop %rax\n"
	"	LOG %rax\n"
	"	jmp *%rcx\n"
	"leak_sys_end:\n"

	/* STI and MOV SS shadows. */
	".globl leak_shadow_start, leak_shadow_end, leak_sti, leak_movss\n"
	"leak_shadow_start:\n"
	"	cli\n"
	"leak_sti:\n"
	"	sti\n"
	"	nop\n"
	"	nop\n"
	"	mov %ss, %eax\n"
	"leak_movss:\n"
	"	mov %eax, %ss\n"
	"	nop\n"
	"	nop\n"
	"	cli\n"
	"	DONE\n"
	"leak_shadow_end:\n"

	/* HLT with interrupts off and nothing to wake it. */
	".globl leak_hlt_start, leak_hlt_end, leak_hlt\n"
	"leak_hlt_start:\n"
	"	cli\n"
	"leak_hlt:\n"
	"	hlt\n"
	"	DONE\n"
	"leak_hlt_end:\n"

	/* HLT woken by a one-shot APIC timer 20 ms later. */
	".globl leak_hltirq_start, leak_hltirq_end, leak_hltirq, leak_timer_handler\n"
	"leak_hltirq_start:\n"
	"	mov $0x8000, %r15d\n"
	"	APIC_ONESHOT 20000000\n"
	"	sti\n"
	"leak_hltirq:\n"
	"	hlt\n"
	"	cli\n"
	"	DONE\n"
	"leak_timer_handler:\n"
	"	mov (%rsp), %rax\n"
	"	LOG %rax\n"
	"	mov 16(%rsp), %rax\n"
	"	LOG %rax\n"
	"	movl $0, 0xb0(%rbx)\n"            /* EOI */
	"	iretq\n"
	"leak_hltirq_end:\n"

	/* A busy loop that waits for one APIC timer interrupt (200 us). */
	".globl leak_irq_start, leak_irq_end, leak_irq_handler\n"
	"leak_irq_start:\n"
	"	mov $0x8000, %r15d\n"
	"	APIC_ONESHOT 200000\n"
	"	sti\n"
	"1:	cmp $0x8000, %r15\n"
	"	je 1b\n"
	"	cli\n"
	"	DONE\n"
	"leak_irq_handler:\n"
	"	mov (%rsp), %rax\n"
	"	LOG %rax\n"
	"	mov 16(%rsp), %rax\n"
	"	LOG %rax\n"
	"	movl $0, 0xb0(%rbx)\n"
	"	iretq\n"
	"leak_irq_end:\n"

	/* REP MOVSB of 5 bytes. */
	".globl leak_rep_start, leak_rep_end, leak_rep\n"
	"leak_rep_start:\n"
	"	mov $0x8100, %esi\n"
	"	mov $0x8200, %edi\n"
	"	mov $5, %ecx\n"
	"	cld\n"
	"leak_rep:\n"
	"	rep movsb\n"
	"	DONE\n"
	"leak_rep_end:\n"
	".popsection\n");

#define LEAK_SYMS(X)                                                                     \
	X(pushf_start) X(pushf_end) X(exc_start) X(exc_end) X(exc_noerr) X(exc_err) X(exc_ud2)          \
	X(bp_start) X(bp_end) X(bp_handler) X(tf_start) X(tf_end) X(tf_set) X(tf_n1)          \
	X(db_handler) X(iret_start) X(iret_set) X(sys_start) X(sys_end)           \
	X(sys_handler) X(shadow_start) X(shadow_end) X(sti) X(movss) X(hlt_start) X(hlt_end)  \
	X(hlt) X(hltirq_start) X(hltirq_end) X(hltirq) X(timer_handler) X(irq_start)          \
	X(irq_end) X(irq_handler) X(rep_start) X(rep_end) X(rep)
#define LEAK_DECLARE(s) extern const uint8_t leak_##s[];
LEAK_SYMS(LEAK_DECLARE)

/* ---- host side ----------------------------------------------------------- */

struct leak {
	struct kvm_tiny_guest g;
	const uint8_t *blob;       /* host address of the loaded blob */
	bool verbose;
	int fatal;                 /* the machinery failed: exit 1 */
};

/* One run, stepped or not. */
#define LEAK_MAX_TRACE 4096
struct leak_run {
	bool step, block_irq;
	unsigned max_steps;        /* stop stepping after this many (0: no limit) */
	unsigned timeout_ms;
	/* results */
	enum vm_exit_reason end;   /* VM_EXIT_IO when the guest reached DONE */
	uint16_t end_port;
	unsigned steps;
	uint64_t pc[LEAK_MAX_TRACE];
	uint64_t rflags[LEAK_MAX_TRACE];   /* KVM_GET_REGS after each step exit */
	uint64_t rcx[LEAK_MAX_TRACE];
	uint64_t dr6[LEAK_MAX_TRACE];
	uint64_t log[LEAK_LOG_MAX];
	unsigned nlog;
	uint64_t fail_vector;      /* KVM_TINY_PORT_VECTOR: the stub's ebx */
};

/* Guest address of a blob symbol. */
static uint64_t leak_addr(const struct leak *l, const uint8_t *sym)
{
	return KVM_TINY_CODE + (uint64_t)(sym - l->blob);
}

static void leak_write64(struct leak *l, uint64_t gpa, uint64_t v)
{
	memcpy(l->g.ram + gpa, &v, sizeof(v));
}

static void leak_set_gate(struct leak *l, unsigned vec, uint64_t at)
{
	uint64_t lo = (at & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((at >> 16 & 0xffff) << 48);
	leak_write64(l, KVM_TINY_IDT + vec * 16, lo);
	leak_write64(l, KVM_TINY_IDT + vec * 16 + 8, at >> 32);
}

/* Map 0xfe000000-0xffffffff (2 MiB page, uncached) so the guest reaches
 * the in-kernel xAPIC at 0xfee00000. */
static void leak_map_apic(struct leak *l)
{
	uint64_t pdpt = KVM_TINY_PML4 + 0x1000;
	leak_write64(l, pdpt + 3 * 8, LEAK_APIC_PD | 0x7);
	memset(l->g.ram + LEAK_APIC_PD, 0, 0x1000);
	uint64_t idx = (LEAK_APIC_BASE >> 21) & 511;
	leak_write64(l, LEAK_APIC_PD + idx * 8, (LEAK_APIC_BASE & ~0x1fffffull) | 0x83 | 0x10);
}

static int leak_load(struct leak *l, const uint8_t *start, const uint8_t *end)
{
	struct err e = { 0 };
	l->blob = start;
	if (kvm_tiny_load(&l->g, start, (size_t)(end - start), &e) < 0) {
		printf("loading guest code: %s\n", e.msg);
		return -1;
	}
	memset(l->g.ram + KVM_TINY_DATA, 0, 0x1000);
	/* a stepped HLT leaves the vCPU halted: every scenario starts runnable */
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };
	if (kvm_ioctl(kvm_vcpu_of(l->g.vcpu)->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -1;
	struct x86_sregs s;
	if (kvm_op_get_sregs(l->g.vcpu, &s) < 0)
		return -1;
	s.idt.limit = LEAK_IDT_LIMIT;
	s.efer |= EFER_SCE;
	if (kvm_op_set_sregs(l->g.vcpu, &s) < 0)
		return -1;
	return 0;
}

static void leak_read_log(struct leak *l, struct leak_run *r)
{
	struct x86_regs regs;
	r->nlog = 0;
	if (kvm_op_get_regs(l->g.vcpu, &regs) < 0)
		return;
	if (regs.r15 < LEAK_LOG || regs.r15 > LEAK_LOG + LEAK_LOG_MAX * 8)
		return;
	r->nlog = (unsigned)((regs.r15 - LEAK_LOG) / 8);
	memcpy(r->log, l->g.ram + LEAK_LOG, r->nlog * 8);
}

static int leak_set_debug(struct leak *l, bool step, bool block_irq)
{
	struct engine_debug d = { .single_step = step, .block_irq = block_irq };
	return kvm_op_set_debug(l->g.vcpu, &d);
}

/* Run until DONE, an unexpected exit, a timeout or max_steps. */
static void leak_run(struct leak *l, struct leak_run *r)
{
	r->steps = 0;
	r->end = VM_EXIT_NONE;
	if (leak_set_debug(l, r->step, r->block_irq) < 0) {
		printf("KVM_SET_GUEST_DEBUG failed\n");
		l->fatal = 1;
		return;
	}
	for (;;) {
		struct vm_exit x;
		if (kvm_tiny_run(&l->g, &x, r->timeout_ms ? r->timeout_ms : 2000) < 0) {
			printf("KVM_RUN failed\n");
			l->fatal = 1;
			return;
		}
		if (x.reason == VM_EXIT_DB && r->step) {
			struct x86_regs regs;
			kvm_op_get_regs(l->g.vcpu, &regs);
			if (r->steps < LEAK_MAX_TRACE) {
				r->pc[r->steps] = x.db.pc;
				r->rflags[r->steps] = regs.rflags;
				r->rcx[r->steps] = regs.rcx;
				r->dr6[r->steps] = x.db.dr6;
			}
			if (l->verbose)
				printf("  step %u pc %#" PRIx64 " rflags %#" PRIx64 " dr6 %#" PRIx64 "\n",
				       r->steps, x.db.pc, regs.rflags, x.db.dr6);
			r->steps++;
			if (r->max_steps && r->steps >= r->max_steps)
				break;
			continue;
		}
		r->end = x.reason;
		if (x.reason == VM_EXIT_IO) {
			r->end_port = x.io.port;
			if (x.io.port == KVM_TINY_PORT_VECTOR) {
				struct x86_regs regs;
				kvm_op_get_regs(l->g.vcpu, &regs);
				r->fail_vector = regs.rbx;
			}
		}
		break;
	}
	leak_read_log(l, r);
	leak_set_debug(l, false, false);
}

static bool leak_done(const struct leak_run *r)
{
	return r->end == VM_EXIT_IO && r->end_port == KVM_TINY_PORT_DONE;
}

static const char *leak_end_name(const struct leak_run *r)
{
	static const char *const names[] = { "none", "io", "mmio", "hlt", "shutdown", "reset",
		"db", "bpt", "mov_dr", "kicked (timeout)", "emulation failure", "entry failure",
		"unknown" };
	if (r->end == VM_EXIT_IO && r->end_port == KVM_TINY_PORT_VECTOR)
		return "unexpected guest exception";
	if (leak_done(r))
		return "done";
	return (unsigned)r->end < sizeof(names) / sizeof(names[0]) ? names[r->end] : "?";
}

static const char *tf_of(uint64_t rflags)
{
	return (rflags & RFLAGS_TF) ? "TF=1" : "TF=0";
}

/* Index of the first step exit at guest address pc, or -1. */
static int leak_find_pc(const struct leak_run *r, uint64_t pc)
{
	for (unsigned i = 0; i < r->steps && i < LEAK_MAX_TRACE; i++)
		if (r->pc[i] == pc)
			return (int)i;
	return -1;
}

/* Index of the first step exit in [lo, hi), or -1. */
static int leak_find_range(const struct leak_run *r, uint64_t lo, uint64_t hi)
{
	for (unsigned i = 0; i < r->steps && i < LEAK_MAX_TRACE; i++)
		if (r->pc[i] >= lo && r->pc[i] < hi)
			return (int)i;
	return -1;
}

static struct leak_run run_a, run_b;    /* large: not on the stack */

/* ---- the questions ------------------------------------------------------- */

static void q_pushf(struct leak *l)
{
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	*s = (struct leak_run){ .step = true, .block_irq = true };
	if (leak_load(l, leak_pushf_start, leak_pushf_end) < 0) { l->fatal = 1; return; }
	leak_run(l, n);
	leak_load(l, leak_pushf_start, leak_pushf_end);
	leak_run(l, s);
	if (!leak_done(n) || !leak_done(s) || n->nlog < 2 || s->nlog < 2) {
		printf("pushf: not measured (runs ended: %s / %s)\n", leak_end_name(n), leak_end_name(s));
		return;
	}
	printf("PUSHFQ image under host single-step: %s (pushed %#" PRIx64 ", unstepped %#" PRIx64 ")\n",
	       (s->log[0] & RFLAGS_TF) ? "leaks TF=1" : "clean, TF=0", s->log[0], n->log[0]);
	printf("PUSHFW image under host single-step: %s (pushed %#" PRIx64 ", unstepped %#" PRIx64 ")\n",
	       (s->log[1] & RFLAGS_TF) ? "leaks TF=1" : "clean, TF=0", s->log[1], n->log[1]);
	unsigned tf = 0;
	for (unsigned i = 0; i < s->steps && i < LEAK_MAX_TRACE; i++)
		tf += !!(s->rflags[i] & RFLAGS_TF);
	printf("KVM_GET_REGS RFLAGS.TF at step exits: %s (%u of %u step exits show TF=1; first %#" PRIx64 ")\n",
	       tf ? "shows the debugger's TF" : "hidden, TF=0", tf, s->steps, s->rflags[0]);
	printf("DR6 in step exits: %s (first exit dr6 %#" PRIx64 ")\n",
	       (s->dr6[0] & DR6_BS) ? "BS set" : "BS not set", s->dr6[0]);
}

static void q_exceptions(struct leak *l)
{
	static const char *const names[] = { "#UD (ud2)", "#DE (div 0)", "#PF (unmapped read)" };
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	*s = (struct leak_run){ .step = true, .block_irq = true };
	for (int pass = 0; pass < 2; pass++) {
		struct leak_run *r = pass ? s : n;
		if (leak_load(l, leak_exc_start, leak_exc_end) < 0) { l->fatal = 1; return; }
		leak_set_gate(l, X86_UD, leak_addr(l, leak_exc_noerr));
		leak_set_gate(l, X86_DE, leak_addr(l, leak_exc_noerr));
		leak_set_gate(l, X86_PF, leak_addr(l, leak_exc_err));
		leak_run(l, r);
	}
	if (!leak_done(n) || !leak_done(s) || n->nlog < 3 || s->nlog < 3) {
		printf("exception frames: not measured (runs ended: %s / %s, vector %" PRIu64 ")\n",
		       leak_end_name(n), leak_end_name(s), s->fail_vector);
		return;
	}
	for (int i = 0; i < 3; i++)
		printf("RFLAGS in %s frame under host single-step: %s (frame %#" PRIx64 ", unstepped %#" PRIx64 ")\n",
		       names[i], (s->log[i] & RFLAGS_TF) ? "leaks TF=1" : "clean, TF=0", s->log[i], n->log[i]);
	/* Where does the step over the faulting ud2 end? The instruction
	 * before it ends at the ud2; the next exit is the answer. */
	uint64_t h = leak_addr(l, leak_exc_noerr), ud2 = leak_addr(l, leak_exc_ud2);
	int i = leak_find_pc(s, ud2);
	uint64_t next = (i >= 0 && (unsigned)i + 1 < s->steps) ? s->pc[i + 1] : 0;
	printf("step over a faulting instruction (ud2): %s (step exit at %#" PRIx64 ", #UD handler at %#" PRIx64 ")\n",
	       next == h ? "stops at the handler's first instruction" :
	       next > h && next < h + 0x12 ? "overshoots: the handler's first instruction runs inside the step" :
	       "handler runs unseen", next, h);
}

static void q_int3(struct leak *l)
{
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	*s = (struct leak_run){ .step = true, .block_irq = true };
	for (int pass = 0; pass < 2; pass++) {
		struct leak_run *r = pass ? s : n;
		if (leak_load(l, leak_bp_start, leak_bp_end) < 0) { l->fatal = 1; return; }
		leak_set_gate(l, X86_BP, leak_addr(l, leak_bp_handler));
		leak_run(l, r);
	}
	printf("guest INT3 (no debugger, no USE_SW_BP): %s", leak_end_name(n));
	if (leak_done(n) && n->nlog)
		printf(" (#BP frame RFLAGS %#" PRIx64 ")", n->log[0]);
	printf("\n");
	printf("guest INT3 under host single-step: %s", leak_end_name(s));
	if (leak_done(s) && s->nlog)
		printf(", #BP frame %s (frame %#" PRIx64 ")", tf_of(s->log[0]), s->log[0]);
	printf(" (%u step exits)\n", s->steps);
}

/* Load the TF blob, entered at the POPF or the IRETQ sequence, with the
 * guest's #DB handler installed. */
static int leak_load_tf(struct leak *l, bool iret)
{
	if (leak_load(l, leak_tf_start, leak_tf_end) < 0)
		return -1;
	leak_set_gate(l, X86_DB, leak_addr(l, leak_db_handler));
	struct x86_regs regs;
	if (kvm_op_get_regs(l->g.vcpu, &regs) < 0)
		return -1;
	regs.rip = leak_addr(l, iret ? leak_iret_start : leak_tf_start);
	return kvm_op_set_regs(l->g.vcpu, &regs) < 0 ? -1 : 0;
}

/* The guest sets its own TF with POPF (or IRETQ). */
static void q_guest_tf(struct leak *l, bool iret)
{
	const char *how = iret ? "IRETQ" : "POPF";
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	*s = (struct leak_run){ .step = true, .block_irq = true };
	for (int pass = 0; pass < 2; pass++) {
		if (leak_load_tf(l, iret) < 0) { l->fatal = 1; return; }
		leak_run(l, pass ? s : n);
	}
	if (!leak_done(n)) {
		printf("guest TF by %s: not measured (unstepped run ended: %s)\n", how, leak_end_name(n));
		return;
	}
	printf("guest's own TF by %s, nobody stepping: %u #DB traps reach the guest (first at %#" PRIx64 ", DR6 %#" PRIx64 ")\n",
	       how, n->nlog / 2, n->nlog ? n->log[0] : 0, n->nlog > 1 ? n->log[1] : 0);
	int h = leak_find_pc(s, leak_addr(l, leak_db_handler));
	printf("guest's own TF by %s while host single-steps: %s (guest saw %u #DB of %u; %u step exits; step exit at its #DB handler: %s; run ended %s)\n",
	       how, s->nlog == n->nlog ? "kept, traps reach the guest" :
	       s->nlog ? "partly lost" : "lost: no #DB reaches the guest, each trap is reported to userspace as a plain step",
	       s->nlog / 2, n->nlog / 2, s->steps, h >= 0 ? "yes" : "no", leak_end_name(s));
	uint64_t set_at = leak_addr(l, iret ? leak_iret_set : leak_tf_set);
	int i = leak_find_pc(s, set_at);
	if (i >= 0 && (unsigned)i + 1 < s->steps)
		printf("KVM_GET_REGS TF after the guest's %s set it: %s (rflags %#" PRIx64 " at the step exit after it)\n",
		       how, tf_of(s->rflags[i + 1]), s->rflags[i + 1]);

	/* Step just past the instruction that sets TF, then continue without
	 * the debugger: does the guest still get its traps? */
	struct leak_run *c = &run_b;
	*c = (struct leak_run){ .step = true, .block_irq = true };
	c->max_steps = (unsigned)(i >= 0 ? i + 2 : 8);
	if (leak_load_tf(l, iret) < 0) { l->fatal = 1; return; }
	leak_run(l, c);
	unsigned stepped = c->steps;
	*c = (struct leak_run){ 0 };
	leak_run(l, c);
	printf("guest's own TF by %s after stepping past it, then continue: %s (guest saw %u #DB after %u steps; unstepped %u)\n",
	       how, c->nlog == 0 ? "lost (KVM cleared it)" :
	       c->nlog / 2 + 1 >= n->nlog / 2 ? "kept" : "partly kept",
	       c->nlog / 2, stepped, n->nlog / 2);
}

static void q_syscall(struct leak *l)
{
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	*s = (struct leak_run){ .step = true, .block_irq = true };
	uint64_t fmask = RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_AC;
	for (int pass = 0; pass < 2; pass++) {
		struct leak_run *r = pass ? s : n;
		if (leak_load(l, leak_sys_start, leak_sys_end) < 0) { l->fatal = 1; return; }
		kvm_op_set_msr(l->g.vcpu, MSR_STAR, 0x08ull << 32);
		kvm_op_set_msr(l->g.vcpu, MSR_LSTAR, leak_addr(l, leak_sys_handler));
		kvm_op_set_msr(l->g.vcpu, MSR_FMASK, fmask);
		leak_run(l, r);
	}
	if (!leak_done(n) || !leak_done(s) || s->nlog < 2 || n->nlog < 2) {
		printf("R11 after SYSCALL: not measured (runs ended: %s / %s)\n",
		       leak_end_name(n), leak_end_name(s));
		return;
	}
	printf("R11 after SYSCALL under host single-step: %s (r11 %#" PRIx64 ", unstepped %#" PRIx64 ")\n",
	       (s->log[0] & RFLAGS_TF) ? "leaks TF=1" : "clean, TF=0", s->log[0], n->log[0]);
	int h = leak_find_pc(s, leak_addr(l, leak_sys_handler));
	printf("stepping SYSCALL with FMASK.TF=1: %s (handler RFLAGS %#" PRIx64 ", unstepped %#" PRIx64 "; %u step exits)\n",
	       h >= 0 ? "the next step exit is the handler's first instruction" : "handler runs unseen",
	       s->log[1], n->log[1], s->steps);
}

static void q_shadows(struct leak *l)
{
	struct leak_run *s = &run_b;
	*s = (struct leak_run){ .step = true, .block_irq = true };
	if (leak_load(l, leak_shadow_start, leak_shadow_end) < 0) { l->fatal = 1; return; }
	leak_run(l, s);
	uint64_t sti = leak_addr(l, leak_sti), movss = leak_addr(l, leak_movss);
	/* sti(1) nop(1) nop(1) mov ss,eax(2) | mov eax,ss(2) nop nop */
	uint64_t after_sti = sti + 1, after_movss = movss + 2;
	bool sti_stop = leak_find_pc(s, after_sti) >= 0;
	bool movss_stop = leak_find_pc(s, after_movss) >= 0;
	printf("step over STI (interrupt shadow): %s (exit at STI+1 %#" PRIx64 ": %s)\n",
	       sti_stop ? "stops after STI, one instruction per step" :
	       "STI and the next instruction in one step", after_sti, sti_stop ? "yes" : "no");
	printf("step over MOV SS (interrupt shadow): %s (exit at MOV SS+2 %#" PRIx64 ": %s; %u step exits, run %s)\n",
	       movss_stop ? "stops after MOV SS, one instruction per step" :
	       "MOV SS and the next instruction in one step (as hardware TF)",
	       after_movss, movss_stop ? "yes" : "no", s->steps, leak_end_name(s));
}

static void q_hlt(struct leak *l)
{
	struct leak_run *s = &run_b;
	/* step cli, step hlt, look at the vCPU, then step on */
	*s = (struct leak_run){ .step = true, .block_irq = true, .max_steps = 2, .timeout_ms = 500 };
	if (leak_load(l, leak_hlt_start, leak_hlt_end) < 0) { l->fatal = 1; return; }
	leak_run(l, s);
	bool halted = false, sipi = false;
	kvm_op_get_run_state(l->g.vcpu, &halted, &sipi);
	bool completed = s->steps == 2 && s->pc[1] == leak_addr(l, leak_hlt) + 1;
	unsigned first_steps = s->steps;
	*s = (struct leak_run){ .step = true, .block_irq = true, .timeout_ms = 500 };
	leak_run(l, s);
	printf("step over HLT, IF=0, nothing to wake it: %s (step exit after HLT: %s; mp_state then: %s; the next step: %s)\n",
	       completed ? "the step exits at once with RIP past HLT" :
	       "no step exit: the vCPU sleeps until woken (or kicked)",
	       completed ? "yes" : "no", halted ? "HALTED" : "runnable",
	       s->steps ? "runs the next instruction (HLT did not wait)" :
	       leak_done(s) ? "done" : leak_end_name(s));
	(void)first_steps;

	for (int block = 1; block >= 0; block--) {
		*s = (struct leak_run){ .step = true, .block_irq = block, .timeout_ms = 2000 };
		if (leak_load(l, leak_hltirq_start, leak_hltirq_end) < 0) { l->fatal = 1; return; }
		leak_map_apic(l);
		leak_set_gate(l, LEAK_VEC_TIMER, leak_addr(l, leak_timer_handler));
		leak_run(l, s);
		int hi = leak_find_pc(s, leak_addr(l, leak_hlt) + 0);
		int in_handler = leak_find_pc(s, leak_addr(l, leak_timer_handler));
		(void)hi;
		int after = leak_find_pc(s, leak_addr(l, leak_hltirq) + 1);
		printf("step over HLT, IF=1, APIC timer 20 ms later, %s: %s (step exit in handler: %s, after HLT: %s; guest log %u; run ended %s; %u step exits)\n",
		       block ? "BLOCKIRQ" : "no BLOCKIRQ",
		       in_handler >= 0 ? "the step completes inside the timer handler" :
		       after >= 0 ? "the step completes after HLT" : "the step never completes",
		       in_handler >= 0 ? "yes" : "no", after >= 0 ? "yes" : "no", s->nlog,
		       leak_end_name(s), s->steps);
	}
}

static void q_irq(struct leak *l)
{
	struct leak_run *n = &run_a, *s = &run_b;
	*n = (struct leak_run){ 0 };
	if (leak_load(l, leak_irq_start, leak_irq_end) < 0) { l->fatal = 1; return; }
	leak_map_apic(l);
	leak_set_gate(l, LEAK_VEC_TIMER, leak_addr(l, leak_irq_handler));
	leak_run(l, n);
	printf("APIC timer interrupt, nobody stepping: %s (frame RFLAGS %#" PRIx64 ")\n",
	       leak_done(n) ? "delivered" : leak_end_name(n), n->nlog > 1 ? n->log[1] : 0);

	*s = (struct leak_run){ .step = true, .block_irq = false, .max_steps = 3000 };
	leak_load(l, leak_irq_start, leak_irq_end);
	leak_map_apic(l);
	leak_set_gate(l, LEAK_VEC_TIMER, leak_addr(l, leak_irq_handler));
	leak_run(l, s);
	uint64_t h = leak_addr(l, leak_irq_handler);
	int i = leak_find_range(s, h, leak_addr(l, leak_irq_end));
	printf("timer interrupt while stepping without BLOCKIRQ: %s (first step exit in the handler: handler+%" PRId64 "; frame RFLAGS %#" PRIx64 ", %s; %u step exits, run %s)\n",
	       i < 0 ? (s->nlog ? "handler runs inside one step, unseen" : "not delivered") :
	       s->pc[i] == h ? "a step lands on the handler's first instruction" :
	       "a step lands in the handler, after its first instruction",
	       i >= 0 ? (int64_t)(s->pc[i] - h) : -1, s->nlog > 1 ? s->log[1] : 0,
	       s->nlog > 1 ? tf_of(s->log[1]) : "no frame", s->steps, leak_end_name(s));

	*s = (struct leak_run){ .step = true, .block_irq = true, .max_steps = 3000 };
	leak_load(l, leak_irq_start, leak_irq_end);
	leak_map_apic(l);
	leak_set_gate(l, LEAK_VEC_TIMER, leak_addr(l, leak_irq_handler));
	leak_run(l, s);
	unsigned during = s->nlog;
	unsigned steps = s->steps;
	*s = (struct leak_run){ 0 };
	leak_run(l, s);   /* continue without the debugger */
	printf("timer interrupt while stepping with BLOCKIRQ: %s (handler ran during %u steps: %s; after continue: %s, frame %s)\n",
	       during == 0 && s->nlog ? "held off, delivered on continue (not lost)" :
	       during ? "not held off" : "lost",
	       steps, during ? "yes" : "no", s->nlog ? "yes" : "no",
	       s->nlog > 1 ? tf_of(s->log[1]) : "none");
}

static void q_rep(struct leak *l)
{
	struct leak_run *s = &run_b;
	*s = (struct leak_run){ .step = true, .block_irq = true };
	if (leak_load(l, leak_rep_start, leak_rep_end) < 0) { l->fatal = 1; return; }
	leak_run(l, s);
	uint64_t rep = leak_addr(l, leak_rep);
	unsigned at_rep = 0;
	char rcx[128] = "";
	size_t off = 0;
	for (unsigned i = 0; i < s->steps && i < LEAK_MAX_TRACE; i++) {
		if (s->pc[i] != rep)
			continue;
		at_rep++;
		off += (size_t)snprintf(rcx + off, sizeof(rcx) - off, "%s%" PRIu64,
					off ? "," : "", s->rcx[i]);
		if (off >= sizeof(rcx))
			break;
	}
	printf("REP MOVSB (rcx=5) under host single-step: %s (%u step exits at the REP with rcx %s, then after it; run %s)\n",
	       at_rep == 5 ? "one iteration per step" : at_rep == 1 ? "whole instruction in one step" :
	       "iterations grouped", at_rep, rcx[0] ? rcx : "-", leak_end_name(s));
}

static void q_guest_tf_popf(struct leak *l) { q_guest_tf(l, false); }
static void q_guest_tf_iret(struct leak *l) { q_guest_tf(l, true); }

static const struct {
	const char *name;
	void (*fn)(struct leak *l);
} leak_questions[] = {
	{ "pushf", q_pushf }, { "exc", q_exceptions }, { "int3", q_int3 },
	{ "syscall", q_syscall }, { "shadow", q_shadows }, { "hlt", q_hlt }, { "irq", q_irq },
	{ "rep", q_rep }, { "tf", q_guest_tf_popf }, { "iret", q_guest_tf_iret },
};

static bool leak_wanted(int argc, char **argv, const char *name)
{
	bool any = false;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		any = true;
		if (strcmp(argv[i], name) == 0)
			return true;
	}
	return !any;
}

int main(int argc, char **argv)
{
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("skipped: no /dev/kvm\n");
		return 77;
	}
	static struct leak l;
	for (int i = 1; i < argc; i++)
		l.verbose |= strcmp(argv[i], "-v") == 0;
	/* a fresh VM per question: a stepped HLT or a one-shot timer left
	 * armed must not change the next answer */
	for (size_t i = 0; i < sizeof(leak_questions) / sizeof(leak_questions[0]) && !l.fatal; i++) {
		if (!leak_wanted(argc, argv, leak_questions[i].name))
			continue;
		struct err e = { 0 };
		if (kvm_tiny_create(&l.g, NULL, &e) < 0) {
			printf("cannot create the tiny guest: %s\n", e.msg);
			return 1;
		}
		leak_questions[i].fn(&l);
		fflush(stdout);
		kvm_tiny_destroy(&l.g);
	}
	return l.fatal;
}
