/* guests/dbg_step.c — dbg_step.elf: single-step (TF) timing from inside the
 * guest (Intel SDM vol. 3 17.3.1.4 and 6.8.3). Each case is an instruction
 * sequence with a label on every instruction; it sets TF with POPF, runs,
 * and clears TF with POPF. The #DB handler logs every trap; the loop
 * compares the RIPs (and DR6 = BS each time, the handler clears DR6):
 *   tf     no trap after the POPF that sets TF, one after every later
 *          instruction, including the POPF that clears it
 *   movss  MOV SS holds the trap back one instruction (one #DB, not two)
 *   sti    STI does not
 *   rep    REP STOSB traps after every iteration, RIP at the REP until the
 *          last one (RCX counts down)
 *   int3   INT3 with TF: no trap for the INT3 itself, #BP sees TF=1 in its
 *          frame, the trap comes after the instruction IRET returns to
 *   icebp  INT1 raises #DB after itself and leaves DR6 alone
 * `only=GROUP` runs one; `kvm_host` skips what this host's KVM cannot run
 * (INT3 in long mode stops it with an emulation failure). */
#include "guests/dbg_common.h"

#define TF_ON  "pushfq; orq $0x100, (%rsp); popfq\n"
#define L(name) ".globl " #name "\n" #name ": "
#define TF_OFF(p) L(p##_off0) "pushfq\n" L(p##_off1) "andq $-257, (%rsp)\n" \
	L(p##_off2) "popfq\n" L(p##_off3) "ret\n"

__asm__(".text\n"
	L(seq_tf) TF_ON
	L(tf_1) "nop\n"
	L(tf_2) "movl $1, %eax\n"
	TF_OFF(tf)

	L(seq_movss) "movw %ss, %ax\n" TF_ON
	L(ss_1) "movw %ax, %ss\n"
	L(ss_2) "nop\n"
	TF_OFF(ss)

	L(seq_sti) TF_ON
	L(sti_1) "sti\n"
	L(sti_2) "cli\n"
	TF_OFF(sti)

	L(seq_rep) "movl $3, %ecx; movb $0x77, %al\n" TF_ON
	L(rep_1) "rep stosb\n"
	TF_OFF(rep)

	L(seq_int3) TF_ON
	L(i3_1) "int3\n"
	L(i3_2) "nop\n"
	TF_OFF(i3)

	L(seq_icebp) ".byte 0xf1\n"
	L(icebp_2) "ret\n");

void seq_tf(void), seq_movss(void), seq_sti(void), seq_rep(void *p), seq_int3(void),
	seq_icebp(void);
extern char tf_2[], tf_off0[], tf_off1[], tf_off2[], tf_off3[];
extern char ss_off0[], ss_off1[], ss_off2[], ss_off3[];
extern char sti_2[], sti_off0[], sti_off1[], sti_off2[], sti_off3[];
extern char rep_1[], rep_off0[], rep_off1[], rep_off2[], rep_off3[];
extern char i3_2[], i3_off0[], i3_off1[], i3_off2[], i3_off3[];
extern char icebp_2[];

static volatile uint8_t area[16];

static volatile unsigned bp_count;
static volatile uint64_t bp_rip, bp_rflags;

static void on_bp(struct rt_frame *f)
{
	bp_count++;
	bp_rip = f->rip;
	bp_rflags = f->rflags;
}

#define MAX_TRAPS 8

struct step_case {
	const char *name;
	void (*run)(void);
	unsigned n;
	char *rip[MAX_TRAPS];
};

static void run_rep(void)
{
	seq_rep((void *)area);
}

static void run_case(const struct step_case *c)
{
	struct db_entry want[MAX_TRAPS];

	db_reset();
	db_tf_limit = c->n + 2;            /* a runaway trace stops soon after */
	c->run();
	for (unsigned i = 0; i < c->n; i++)
		want[i] = (struct db_entry){ .rip = (uintptr_t)c->rip[i], .dr6 = DR6_INIT | DR6_BS };
	db_expect(c->name, want, c->n);
}

static void group_tf(void)
{
	static const struct step_case c = { "TF after POPF", seq_tf, 5,
		{ tf_2, tf_off0, tf_off1, tf_off2, tf_off3 } };
	run_case(&c);
	expect(db_log[1].rflags & RFLAGS_TF, "frame RFLAGS.TF=1 while tracing");
}

static void group_movss(void)
{
	static const struct step_case c = { "MOV SS shadow", seq_movss, 4,
		{ ss_off0, ss_off1, ss_off2, ss_off3 } };
	run_case(&c);
}

static void group_sti(void)
{
	static const struct step_case c = { "STI no delay", seq_sti, 5,
		{ sti_2, sti_off0, sti_off1, sti_off2, sti_off3 } };
	run_case(&c);
}

static void group_rep(void)
{
	static const struct step_case c = { "REP STOSB per iteration", run_rep, 6,
		{ rep_1, rep_1, rep_off0, rep_off1, rep_off2, rep_off3 } };
	run_case(&c);
	for (unsigned i = 0; i < 3 && i < db_count; i++)
		expect_eq(db_log[i].rcx, 2 - i, "REP STOSB: RCX at the trap");
	expect_eq(area[2], 0x77, "REP STOSB stored 3 bytes");
}

static void group_int3(void)
{
	static const struct step_case c = { "INT3 with TF", seq_int3, 4,
		{ i3_off0, i3_off1, i3_off2, i3_off3 } };
	rt_handler old = idt_set_handler(X86_BP, on_bp);

	bp_count = 0;
	run_case(&c);
	idt_set_handler(X86_BP, old);
	expect_eq(bp_count, 1, "INT3 with TF: one #BP");
	expect_eq(bp_rip, (uintptr_t)i3_2, "INT3 with TF: #BP RIP");
	expect(bp_rflags & RFLAGS_TF, "INT3 with TF: #BP frame has TF=1");
}

static void group_icebp(void)
{
	struct db_entry want = { .rip = (uintptr_t)icebp_2, .dr6 = DR6_INIT | DR6_B(1) };

	db_reset();
	set_dr6(DR6_B(1));
	seq_icebp();
	db_expect("ICEBP", &want, 1);
}

static const struct dbg_group groups[] = {
	{ "tf", group_tf, NULL },
	{ "movss", group_movss, "the host's ring-0 emulator traps right after MOV SS" },
	{ "sti", group_sti, NULL },
	{ "rep", group_rep, "the host's ring-0 emulator does not trap per REP iteration" },
	{ "int3", group_int3, "INT3 in long mode may stop this host's KVM (emulation failure)" },
	{ "icebp", group_icebp, "INT1 stops this host's KVM (emulation failure)" },
};

int main(void)
{
	return run_groups(groups, sizeof(groups) / sizeof(groups[0]));
}
