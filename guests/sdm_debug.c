/* guests/sdm_debug.c — sdm_debug.elf: the SDM's debug rules around MOV SS
 * and SYSCALL/SYSRET, checked from inside. Every #DB and every other event
 * the guest takes is logged (RIP named by the nearest label, CS, DR6) and
 * compared with what a real CPU gives (SDM vol. 3 6.8.3, 17.3.1):
 *   icebp0  ring 0, TF set: MOV SS holds its trap back, the ICEBP after it
 *           enters the #DB handler once with no BS; the IRETQ restores TF
 *   icebp3  the same in ring 3
 *   gd      ring 0, TF set, DR7.GD: the MOV DR6 after MOV SS faults with
 *           BD only (the held-back BS is dropped), then traps normally
 *   dataice a data breakpoint on MOV SS's operand, then ICEBP: one #DB
 *   dataint the same, then INT n: the held-back #DB arrives at the INT
 *           handler's first instruction (before it runs), then the handler
 *   execbp  an instruction breakpoint on the instruction after MOV SS
 *           never fires
 *   syscall ring 3, TF set, FMASK clears TF: no #DB inside the kernel;
 *           the SYSRET that restores TF from R11 traps at once, at the
 *           user instruction it returns to
 * The transcript must be identical with nobody attached and with gdb
 * stepping through sdm_run (tests/test_sdm_debug.py). `only=NAME` runs
 * one sequence.
 *
 * gdb: `break sdm_run` then `stepi N`. */
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/ring3.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "x86/desc.h"
#include "x86/x86.h"

#define STEP_FN __attribute__((noinline, noclone, used))
#define MAX_EVENTS 64
#define VEC_SOFT 0x40                       /* INT n target of dataint */

#define SYSCALL_FMASK (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_AC)

enum ev_kind { EV_DB, EV_INT };

struct ev {
	enum ev_kind kind;
	uint64_t rip, cs, dr6;
};

static struct ev events[MAX_EVENTS];
static unsigned nevents;

uint8_t sdm_user_stack[4096] __attribute__((aligned(16)));
uint64_t sdm_saved_rsp;
volatile uint16_t sdm_ss_word = RT_GDT_DATA;

static void log_event(enum ev_kind k, const struct rt_frame *f, uint64_t dr6)
{
	if (nevents < MAX_EVENTS)
		events[nevents] = (struct ev){ k, f->rip, f->cs, dr6 };
	nevents++;
}

static void db_handler(struct rt_frame *f)
{
	uint64_t dr6;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	log_event(EV_DB, f, dr6);
	__asm__ volatile("mov %0, %%dr6" :: "r"(DR6_INIT));
	f->rflags |= RFLAGS_RF;      /* an instruction breakpoint fires once */
}

static void soft_handler(struct rt_frame *f)
{
	log_event(EV_INT, f, 0);
}

/* Ring 3 leaves through UD2 at sdm_user_exit: back to sdm_user_back in
 * ring 0 on the stack sdm_user_call saved. */
void sdm_user_exit(void);
void sdm_user_back(void);
void sdm_user_call(void (*entry)(void));
__asm__(".text\n"
	".globl sdm_user_call, sdm_user_back, sdm_user_exit\n"
	"sdm_user_call:\n"
	"	push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	mov %rsp, sdm_saved_rsp(%rip)\n"
	"	pushq $" RT_USER_SS "\n"
	"	lea sdm_user_stack+4096(%rip), %rax\n push %rax\n"
	"	pushq $0x2\n"
	"	pushq $" RT_USER_CS "\n"
	"	push %rdi\n"
	"	iretq\n"
	"sdm_user_exit:\n"
	"	ud2\n"
	"sdm_user_back:\n"
	"	mov sdm_saved_rsp(%rip), %rsp\n"
	"	mov $0x10, %eax\n mov %eax, %ds\n mov %eax, %es\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"	ret\n");

static void ud_handler(struct rt_frame *f)
{
	if (f->rip != (uintptr_t)sdm_user_exit) {
		log_event(EV_INT, f, 6);
		rt_fail_now("sdm_debug: #UD at 0x%lx\n", (unsigned long)f->rip);
	}
	f->rip = (uintptr_t)sdm_user_back;
	f->cs = RT_GDT_CODE64;
	f->ss = RT_GDT_DATA;
	f->rsp = sdm_saved_rsp;
}

/* Labels inside the sequences, for the transcript and the checks. */
#define TF_ON  "pushfq\n orq $0x100, (%rsp)\n popfq\n"
#define TF_OFF "pushfq\n andq $-0x101, (%rsp)\n popfq\n"
#define L(name) ".globl " #name "\n" #name ":\n"

#define SEQ_LABELS(X)                                                          \
	X(ic0_a) X(ic0_b) X(ic0_c) X(ic0_d) X(ic0_e) X(ic0_f) X(ic0_end)           \
	X(ic3_a) X(ic3_b) X(ic3_c) X(ic3_d) X(ic3_e) X(ic3_f) X(ic3_end)           \
	X(gd_a) X(gd_b) X(gd_c) X(gd_d) X(gd_e) X(gd_f) X(gd_end)                  \
	X(di_a) X(di_b) X(di_end)                                                  \
	X(dn_a) X(dn_b) X(dn_end)                                                  \
	X(xb_a) X(xb_b) X(xb_end)                                                  \
	X(sc_a) X(sc_b) X(sc_c) X(sc_d) X(sc_e) X(sc_f) X(sc_end)                  \
	X(sk_a) X(sk_b) X(sk_end)
#define DECLARE(n) extern const char n[];
SEQ_LABELS(DECLARE)

static const struct {
	const char *name;
	const char *at;
} labels[] = {
#define ENTRY(n) { #n, n },
	SEQ_LABELS(ENTRY)
};

/* The sequences, as top-level assembly: each a function (ring 0 ones
 * return, ring 3 ones leave through sdm_user_exit). */
void seq_icebp0(void);
void seq_icebp3(void);
void seq_gd(void);
void seq_dataice(void);
void seq_dataint(void);
void seq_execbp(void);
void seq_syscall(void);
void sdm_syscall_entry(void);
__asm__(".text\n"
	"seq_icebp0:\n"
	"	mov %ss, %eax\n" TF_ON
	L(ic0_a) "mov %eax, %ss\n"
	L(ic0_b) ".byte 0xf1\n"
	L(ic0_c) "nop\n"
	L(ic0_d) "pushfq\n"
	L(ic0_e) "andq $-0x101, (%rsp)\n"
	L(ic0_f) "popfq\n"
	L(ic0_end) "ret\n"

	"seq_icebp3:\n"
	"	mov %ss, %eax\n" TF_ON
	L(ic3_a) "mov %eax, %ss\n"
	L(ic3_b) ".byte 0xf1\n"
	L(ic3_c) "nop\n"
	L(ic3_d) "pushfq\n"
	L(ic3_e) "andq $-0x101, (%rsp)\n"
	L(ic3_f) "popfq\n"
	L(ic3_end) "jmp sdm_user_exit\n"

	/* DR7.GD set by the caller; rcx = DR6's value */
	"seq_gd:\n"
	"	mov %ss, %eax\n" TF_ON
	L(gd_a) "mov %eax, %ss\n"
	L(gd_b) "mov %rcx, %dr6\n"
	L(gd_c) "nop\n"
	L(gd_d) "pushfq\n"
	L(gd_e) "andq $-0x101, (%rsp)\n"
	L(gd_f) "popfq\n"
	L(gd_end) "ret\n"

	/* DR0 on sdm_ss_word, set by the caller */
	"seq_dataice:\n"
	L(di_a) "mov sdm_ss_word(%rip), %ss\n"
	L(di_b) ".byte 0xf1\n"
	L(di_end) "ret\n"

	"seq_dataint:\n"
	L(dn_a) "mov sdm_ss_word(%rip), %ss\n"
	L(dn_b) "int $0x40\n"
	L(dn_end) "ret\n"

	/* DR0 executes at xb_b, set by the caller */
	"seq_execbp:\n"
	"	mov %ss, %eax\n"
	L(xb_a) "mov %eax, %ss\n"
	L(xb_b) "nop\n"
	L(xb_end) "ret\n"

	"seq_syscall:\n" TF_ON
	L(sc_a) "nop\n"
	L(sc_b) "syscall\n"
	L(sc_c) "nop\n"
	L(sc_d) "pushfq\n"
	L(sc_e) "andq $-0x101, (%rsp)\n"
	L(sc_f) "popfq\n"
	L(sc_end) "jmp sdm_user_exit\n"

	/* LSTAR: ring 0 on the user's stack, FMASK cleared TF */
	"sdm_syscall_entry:\n"
	L(sk_a) "nop\n"
	L(sk_b) "nop\n"
	L(sk_end) "sysretq\n");

/* Ring 3 (guests/rt/ring3.h) with SYSCALL/SYSRET. */
static void ring3_setup(void)
{
	rt_ring3_setup();

	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	/* SYSCALL: CS 0x08, SS 0x10; SYSRET: SS 0x20|3, CS 0x28|3 */
	wrmsr(MSR_STAR, (0x18ull << 48) | (0x08ull << 32));
	wrmsr(MSR_LSTAR, (uintptr_t)sdm_syscall_entry);
	wrmsr(MSR_FMASK, SYSCALL_FMASK);
}

static void set_dr(unsigned n, uint64_t v)
{
	switch (n) {
	case 0: __asm__ volatile("mov %0, %%dr0" :: "r"(v)); break;
	default: __asm__ volatile("mov %0, %%dr7" :: "r"(v)); break;
	}
}

static bool wanted(const char *name)
{
	const char *only = cmdline_get("only");
	return !only || strcmp(only, name) == 0;
}

static void run_gd(void)
{
	set_dr(7, DR7_FIXED1 | DR7_GD);
	__asm__ volatile("call seq_gd" :: "c"(DR6_INIT) : "rax", "memory", "cc");
	set_dr(7, DR7_FIXED1);
}

static void run_data(void (*seq)(void))
{
	set_dr(0, (uintptr_t)&sdm_ss_word);
	set_dr(7, DR7_FIXED1 | DR7_L(0) | DR7_RW(0, DR7_RW_ACCESS) | DR7_LEN(0, DR7_LEN_2));
	seq();
	set_dr(7, DR7_FIXED1);
}

static void run_execbp(void)
{
	set_dr(0, (uintptr_t)xb_b);
	set_dr(7, DR7_FIXED1 | DR7_L(0));
	seq_execbp();
	set_dr(7, DR7_FIXED1);
}

STEP_FN void sdm_run(void)
{
	rt_handler old_db = idt_set_handler(X86_DB, db_handler);
	rt_handler old_ud = idt_set_handler(X86_UD, ud_handler);
	rt_handler old_soft = idt_set_handler(VEC_SOFT, soft_handler);

	if (wanted("icebp0"))
		seq_icebp0();
	if (wanted("icebp3"))
		sdm_user_call(seq_icebp3);
	if (wanted("gd"))
		run_gd();
	if (wanted("dataice"))
		run_data(seq_dataice);
	if (wanted("dataint"))
		run_data(seq_dataint);
	if (wanted("execbp"))
		run_execbp();
	if (wanted("syscall"))
		sdm_user_call(seq_syscall);

	idt_set_handler(VEC_SOFT, old_soft);
	idt_set_handler(X86_UD, old_ud);
	idt_set_handler(X86_DB, old_db);
}

/* The address the IDT gives for a vector: where its handler begins. */
static uint64_t idt_entry_of(unsigned vector)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	const uint64_t *g = (const uint64_t *)(uintptr_t)(idtr.base + vector * 16u);
	return (g[0] & 0xffff) | ((g[0] >> 32) & 0xffff0000ull) | (g[1] << 32);
}

/* "sc_b", "sc_b+3", "int 0x40 entry" or the raw address. */
static void name_of(uint64_t rip, char *buf, size_t len)
{
	const char *best = NULL;
	uint64_t best_at = 0;
	if (rip == idt_entry_of(VEC_SOFT)) {
		snprintf(buf, len, "the INT 0x40 handler's first instruction");
		return;
	}
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		uint64_t at = (uintptr_t)labels[i].at;
		if (at <= rip && (!best || at >= best_at) && rip - at < 16) {
			best = labels[i].name;
			best_at = at;
		}
	}
	if (!best)
		snprintf(buf, len, "0x%lx", (unsigned long)rip);
	else if (rip == best_at)
		snprintf(buf, len, "%s", best);
	else
		snprintf(buf, len, "%s+%lu", best, (unsigned long)(rip - best_at));
}

STEP_FN static void print_events(void)
{
	char where[64];
	for (unsigned i = 0; i < nevents && i < MAX_EVENTS; i++) {
		const struct ev *e = &events[i];
		name_of(e->rip, where, sizeof(where));
		if (e->kind == EV_DB)
			printf("event %u: #DB at %s, CPL %lu, DR6.B0=%u BD=%u BS=%u\n", i, where,
			       (unsigned long)(e->cs & 3), (e->dr6 & DR6_B(0)) ? 1 : 0,
			       (e->dr6 & DR6_BD) ? 1 : 0, (e->dr6 & DR6_BS) ? 1 : 0);
		else
			printf("event %u: INT 0x40 returns to %s\n", i, where);
	}
	printf("events: %u\n", nevents);
}

/* What a CPU gives: per event, its kind, where, and its DR6 bits among
 * B0, BD and BS (exact). at == NULL: the INT 0x40 handler's entry. */
struct want {
	enum ev_kind kind;
	const char *at;
	uint64_t dr6;
};

#define DB(at, bits) { EV_DB, at, bits }
static const struct want want_icebp0[] = {
	DB(ic0_c, 0), DB(ic0_d, DR6_BS), DB(ic0_e, DR6_BS), DB(ic0_f, DR6_BS), DB(ic0_end, DR6_BS),
};
static const struct want want_icebp3[] = {
	DB(ic3_c, 0), DB(ic3_d, DR6_BS), DB(ic3_e, DR6_BS), DB(ic3_f, DR6_BS), DB(ic3_end, DR6_BS),
};
static const struct want want_gd[] = {
	DB(gd_b, DR6_BD), DB(gd_c, DR6_BS), DB(gd_d, DR6_BS), DB(gd_e, DR6_BS), DB(gd_f, DR6_BS),
	DB(gd_end, DR6_BS),
};
static const struct want want_dataice[] = { DB(di_end, 0) };
static const struct want want_dataint[] = { DB(NULL, DR6_B(0)), { EV_INT, dn_end, 0 } };
static const struct want want_syscall[] = {
	DB(sc_b, DR6_BS), DB(sc_c, DR6_BS), DB(sc_d, DR6_BS), DB(sc_e, DR6_BS), DB(sc_f, DR6_BS),
	DB(sc_end, DR6_BS),
};

/* Events belong to the sequence whose labels their RIP lies between (the
 * INT 0x40 handler's entry to dataint); the kernel's SYSCALL entry has
 * none of its own: any event there fails syscall. */
static const struct seq {
	const char *name;
	const char *lo, *hi;
	const struct want *want;
	unsigned n;
} seqs[] = {
#define SEQ(name, lo, hi) { #name, lo, hi, want_##name, sizeof(want_##name) / sizeof(want_##name[0]) }
	SEQ(icebp0, ic0_a, ic0_end), SEQ(icebp3, ic3_a, ic3_end), SEQ(gd, gd_a, gd_end),
	SEQ(dataice, di_a, di_end), SEQ(dataint, dn_a, dn_end),
	{ "execbp", xb_a, xb_end, NULL, 0 },
	{ "syscall", sc_a, sk_end, want_syscall, sizeof(want_syscall) / sizeof(want_syscall[0]) },
};

static bool in_seq(const struct seq *q, uint64_t rip)
{
	if (q->want == want_dataint && rip == idt_entry_of(VEC_SOFT))
		return true;
	return rip >= (uintptr_t)q->lo && rip <= (uintptr_t)q->hi;
}

static bool event_matches(const struct ev *e, const struct want *w)
{
	uint64_t at = w->at ? (uintptr_t)w->at : idt_entry_of(VEC_SOFT);
	if (e->kind != w->kind || e->rip != at)
		return false;
	return e->kind != EV_DB || (e->dr6 & (DR6_B(0) | DR6_BD | DR6_BS)) == w->dr6;
}

static void check_seq(const struct seq *q)
{
	unsigned got = 0, bad = 0;
	for (unsigned i = 0; i < nevents && i < MAX_EVENTS; i++) {
		const struct ev *e = &events[i];
		if (!in_seq(q, e->rip))
			continue;
		if (got >= q->n || !event_matches(e, &q->want[got]))
			bad++;
		got++;
	}
	char what[96];
	snprintf(what, sizeof(what), "%s: %u events as a CPU gives them", q->name, q->n);
	if (got != q->n)
		expect_eq(got, q->n, what);
	else
		expect_eq(bad, 0, what);
}

int main(void)
{
	printf("sdm_debug: MOV SS and SYSCALL/SYSRET debug rules\n");
	ring3_setup();
	sdm_run();
	print_events();
	expect_eq(nevents < MAX_EVENTS, 1, "event log did not overflow");
	unsigned claimed = 0;
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		if (wanted(seqs[i].name))
			check_seq(&seqs[i]);
		for (unsigned j = 0; j < nevents && j < MAX_EVENTS; j++)
			claimed += in_seq(&seqs[i], events[j].rip);
	}
	expect_eq(claimed, nevents, "every event belongs to a sequence");
	return report_summary();
}
