/* guests/step_tf.c — step_tf.elf: the guest single-steps itself with its
 * own RFLAGS.TF over known instruction sequences and logs every #DB it
 * takes (RIP, DR6.BS) and every other exception (RIP, RFLAGS in the
 * frame). The order and number are what the Intel SDM gives a real CPU:
 *   popf    POPF sets TF: the first trap comes after the instruction that
 *           follows the POPF; the POPF that clears TF still traps
 *   iret    IRETQ with TF in its frame: likewise, after the first
 *           instruction at the target
 *   sti     STI does not hold off a TF trap: one trap per instruction
 *   movss   MOV SS holds off the trap of its own instruction: one #DB
 *           after the instruction that follows it
 *   rep     REP MOVSB (4 bytes): one trap per iteration, RIP at the REP
 *           until the last iteration
 *   fault   ud2 under TF: #UD (frame with TF and RF), no trap for the
 *           faulting instruction, and the IRETQ back restores TF so traps
 *           resume after the first instruction at the resume point
 * On our KVM hosts the movss and rep answers differ from the SDM even with
 * nobody attached (see host_quirk below); `strict` on the command line
 * makes that a failure. The transcript names each RIP by the nearest label, so it is the same
 * in every build of this file's layout, and must be identical with nobody
 * attached and with gdb stepping through step_tf_run.
 *
 * gdb: `break step_tf_run` then `stepi N`. */
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define STEP_FN __attribute__((noinline, noclone, used))
#define MAX_EVENTS 64

enum ev_kind { EV_DB, EV_EXC };

struct ev {
	enum ev_kind kind;
	uint64_t vector, rip, info;       /* info: DR6 for #DB, frame RFLAGS otherwise */
};

static struct ev events[MAX_EVENTS];
static unsigned nevents;
volatile uint64_t step_tf_resume;

static void log_event(enum ev_kind k, const struct rt_frame *f, uint64_t info)
{
	if (nevents < MAX_EVENTS)
		events[nevents] = (struct ev){ k, f->vector, f->rip, info };
	nevents++;
}

static void db_handler(struct rt_frame *f)
{
	uint64_t dr6;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	log_event(EV_DB, f, dr6);
	__asm__ volatile("mov %0, %%dr6" :: "r"(DR6_INIT));
}

static void ud_handler(struct rt_frame *f)
{
	log_event(EV_EXC, f, f->rflags);
	f->rip = step_tf_resume;
}

/* Labels inside the sequences, named so the transcript can say where each
 * trap landed. TF_ON sets the guest's own TF; each sequence clears it with its last POPF. */
#define TF_ON  "pushfq\n orq $0x100, (%%rsp)\n popfq\n"
#define L(name) ".globl " #name "\n" #name ":\n"

#define SEQ_LABELS(X)                                                            \
	X(tf_popf_a) X(tf_popf_b) X(tf_popf_c) X(tf_popf_d) X(tf_popf_e)             \
	X(tf_popf_f) X(tf_popf_end)                                                  \
	X(tf_iret_a) X(tf_iret_b) X(tf_iret_c) X(tf_iret_d) X(tf_iret_e)             \
	X(tf_iret_end)                                                               \
	X(tf_sti_a) X(tf_sti_b) X(tf_sti_c) X(tf_sti_d) X(tf_sti_e) X(tf_sti_f)      \
	X(tf_sti_end)                                                                \
	X(tf_movss_a) X(tf_movss_b) X(tf_movss_c) X(tf_movss_d) X(tf_movss_e)        \
	X(tf_movss_f) X(tf_movss_end)                                                \
	X(tf_rep_a) X(tf_rep_b) X(tf_rep_c) X(tf_rep_d) X(tf_rep_e) X(tf_rep_end)    \
	X(tf_fault_a) X(tf_fault_b) X(tf_fault_c) X(tf_fault_d) X(tf_fault_e)        \
	X(tf_fault_f) X(tf_fault_end)
#define DECLARE(n) extern const char n[];
SEQ_LABELS(DECLARE)

static const struct {
	const char *name;
	const char *at;
} labels[] = {
#define ENTRY(n) { #n, n },
	SEQ_LABELS(ENTRY)
};

static void seq_popf(void)
{
	__asm__ volatile(TF_ON
			 L(tf_popf_a) "nop\n"
			 L(tf_popf_b) "nop\n"
			 L(tf_popf_c) "nop\n"
			 L(tf_popf_d) "pushfq\n"
			 L(tf_popf_e) "andq $-0x101, (%%rsp)\n"
			 L(tf_popf_f) "popfq\n"
			 L(tf_popf_end)
			 ::: "memory", "cc");
}

static void seq_iret(void)
{
	__asm__ volatile("mov %%ss, %%eax\n push %%rax\n"
			 "lea 8(%%rsp), %%rax\n push %%rax\n"
			 "pushfq\n orq $0x100, (%%rsp)\n"
			 "mov %%cs, %%eax\n push %%rax\n"
			 "lea tf_iret_a(%%rip), %%rax\n push %%rax\n"
			 "iretq\n"
			 L(tf_iret_a) "nop\n"
			 L(tf_iret_b) "nop\n"
			 L(tf_iret_c) "pushfq\n"
			 L(tf_iret_d) "andq $-0x101, (%%rsp)\n"
			 L(tf_iret_e) "popfq\n"
			 L(tf_iret_end)
			 ::: "rax", "memory", "cc");
}

static void seq_sti(void)
{
	__asm__ volatile("cli\n" TF_ON
			 L(tf_sti_a) "sti\n"
			 L(tf_sti_b) "nop\n"
			 L(tf_sti_c) "cli\n"
			 L(tf_sti_d) "pushfq\n"
			 L(tf_sti_e) "andq $-0x101, (%%rsp)\n"
			 L(tf_sti_f) "popfq\n"
			 L(tf_sti_end)
			 ::: "memory", "cc");
}

static void seq_movss(void)
{
	__asm__ volatile("mov %%ss, %%eax\n" TF_ON
			 L(tf_movss_a) "mov %%eax, %%ss\n"
			 L(tf_movss_b) "nop\n"
			 L(tf_movss_c) "nop\n"
			 L(tf_movss_d) "pushfq\n"
			 L(tf_movss_e) "andq $-0x101, (%%rsp)\n"
			 L(tf_movss_f) "popfq\n"
			 L(tf_movss_end)
			 ::: "rax", "memory", "cc");
}

static char rep_src[4] = "abcd", rep_dst[4];

static void seq_rep(void)
{
	__asm__ volatile("cld\n mov $4, %%ecx\n" TF_ON
			 L(tf_rep_a) "nop\n"
			 L(tf_rep_b) "rep movsb\n"
			 L(tf_rep_c) "pushfq\n"
			 L(tf_rep_d) "andq $-0x101, (%%rsp)\n"
			 L(tf_rep_e) "popfq\n"
			 L(tf_rep_end)
			 :: "S"(rep_src), "D"(rep_dst) : "rcx", "memory", "cc");
}

static void seq_fault(void)
{
	__asm__ volatile("lea tf_fault_c(%%rip), %%rax\n"
			 "mov %%rax, step_tf_resume(%%rip)\n" TF_ON
			 L(tf_fault_a) "nop\n"
			 L(tf_fault_b) "ud2\n"
			 L(tf_fault_c) "nop\n"
			 L(tf_fault_d) "pushfq\n"
			 L(tf_fault_e) "andq $-0x101, (%%rsp)\n"
			 L(tf_fault_f) "popfq\n"
			 L(tf_fault_end)
			 ::: "rax", "memory", "cc");
}

STEP_FN void step_tf_run(void)
{
	rt_handler old_db = idt_set_handler(X86_DB, db_handler);
	rt_handler old_ud = idt_set_handler(X86_UD, ud_handler);
	seq_popf();
	seq_iret();
	seq_sti();
	seq_movss();
	seq_rep();
	seq_fault();
	idt_set_handler(X86_UD, old_ud);
	idt_set_handler(X86_DB, old_db);
}

/* "tf_popf_b" or "tf_popf_b+3" or the raw address. */
static void name_of(uint64_t rip, char *buf, size_t len)
{
	const char *best = NULL;
	uint64_t best_at = 0;
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

static void print_events(void)
{
	char where[48];
	for (unsigned i = 0; i < nevents && i < MAX_EVENTS; i++) {
		const struct ev *e = &events[i];
		name_of(e->rip, where, sizeof(where));
		if (e->kind == EV_DB)
			printf("event %u: #DB at %s, DR6.BS=%u\n", i, where, (e->info & DR6_BS) ? 1 : 0);
		else
			printf("event %u: vector %lu at %s, frame TF=%u RF=%u\n", i,
			       (unsigned long)e->vector, where, (e->info & RFLAGS_TF) ? 1 : 0,
			       (e->info & RFLAGS_RF) ? 1 : 0);
	}
	printf("events: %u\n", nevents);
}

/* The SDM's answer per sequence: (kind, rip) in order. */
struct want {
	enum ev_kind kind;
	const char *at;
};

static const struct want want_popf[] = {
	{ EV_DB, tf_popf_b }, { EV_DB, tf_popf_c }, { EV_DB, tf_popf_d },
	{ EV_DB, tf_popf_e }, { EV_DB, tf_popf_f }, { EV_DB, tf_popf_end },
};
static const struct want want_iret[] = {
	{ EV_DB, tf_iret_b }, { EV_DB, tf_iret_c }, { EV_DB, tf_iret_d },
	{ EV_DB, tf_iret_e }, { EV_DB, tf_iret_end },
};
static const struct want want_sti[] = {
	{ EV_DB, tf_sti_b }, { EV_DB, tf_sti_c }, { EV_DB, tf_sti_d },
	{ EV_DB, tf_sti_e }, { EV_DB, tf_sti_f }, { EV_DB, tf_sti_end },
};
/* no trap after MOV SS itself: one after the instruction that follows */
static const struct want want_movss[] = {
	{ EV_DB, tf_movss_c }, { EV_DB, tf_movss_d }, { EV_DB, tf_movss_e },
	{ EV_DB, tf_movss_f }, { EV_DB, tf_movss_end },
};
/* after the nop, then one per iteration */
static const struct want want_rep[] = {
	{ EV_DB, tf_rep_b }, { EV_DB, tf_rep_b }, { EV_DB, tf_rep_b }, { EV_DB, tf_rep_b },
	{ EV_DB, tf_rep_c }, { EV_DB, tf_rep_d }, { EV_DB, tf_rep_e }, { EV_DB, tf_rep_end },
};
static const struct want want_fault[] = {
	{ EV_DB, tf_fault_b }, { EV_EXC, tf_fault_b }, { EV_DB, tf_fault_d },
	{ EV_DB, tf_fault_e }, { EV_DB, tf_fault_f }, { EV_DB, tf_fault_end },
};

/* host_quirk: our KVM hosts emulate guest ring-0 code, and that emulator
 * does not hold off the MOV SS trap and groups REP iterations into fewer
 * traps. With nobody attached that is the CPU this guest runs on, not a
 * debugger leak, so a mismatch there is a SKIP naming the deviation
 * unless the command line says `strict` (the emu engine, bare metal). */
static const struct seq {
	const char *name;
	const char *lo, *hi;
	const struct want *want;
	unsigned n;
	bool host_quirk;
} seqs[] = {
#define SEQ(name, quirk) { #name, tf_##name##_a, tf_##name##_end, want_##name, \
			   sizeof(want_##name) / sizeof(want_##name[0]), quirk }
	SEQ(popf, false), SEQ(iret, false), SEQ(sti, false), SEQ(movss, true),
	SEQ(rep, true), SEQ(fault, false),
};

static bool event_matches(const struct ev *e, const struct want *w)
{
	if (e->kind != w->kind || e->rip != (uintptr_t)w->at)
		return false;
	if (e->kind == EV_DB)
		return e->info & DR6_BS;
	return (e->info & (RFLAGS_TF | RFLAGS_RF)) == (RFLAGS_TF | RFLAGS_RF);
}

/* The events of one sequence are those whose RIP lies in [lo, hi]. */
static void check_seq(const struct seq *q, bool strict)
{
	unsigned got = 0, bad = 0;
	for (unsigned i = 0; i < nevents && i < MAX_EVENTS; i++) {
		const struct ev *e = &events[i];
		if (e->rip < (uintptr_t)q->lo || e->rip > (uintptr_t)q->hi)
			continue;
		if (got >= q->n || !event_matches(e, &q->want[got]))
			bad++;
		got++;
	}
	char what[96];
	snprintf(what, sizeof(what), "%s: %u events in the SDM's order", q->name, q->n);
	if ((got != q->n || bad) && q->host_quirk && !strict) {
		char why[96];
		snprintf(why, sizeof(why), "this CPU gives %u events (%u differ); the SDM gives %u",
			 got, bad, q->n);
		report_skip(what, why);
		return;
	}
	if (got != q->n)
		expect_eq(got, q->n, what);
	else
		expect_eq(bad, 0, what);
}

static void check_events(bool strict)
{
	for (size_t i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++)
		check_seq(&seqs[i], strict);
	expect_eq(*(volatile uint32_t *)rep_dst, *(volatile uint32_t *)rep_src, "rep movsb copied");
}

int main(void)
{
	printf("step_tf: the guest's own single-step traps\n");
	step_tf_run();
	print_events();
	check_events(cmdline_has("strict"));
	return report_summary();
}
