/* guests/dbg_regs.c — dbg_regs.elf: the debug registers from inside the
 * guest (Intel SDM vol. 3 ch. 17), each group a table of cases run by one
 * loop and compared with the exact RIP and DR6 of every #DB:
 *   regs   DR6/DR7 reserved bits, DR4/DR5 aliasing, #UD with CR4.DE
 *   exec   DR0-3 instruction breakpoints: faults, RF, L/G, disabled slots
 *   data   RW=01/11, LEN 1/2/4/8, masked addresses, straddling accesses,
 *          several registers at once, REP STOS per iteration
 *   io     RW=10 I/O breakpoints with CR4.DE
 *   gd     DR7.GD: MOV DR faults with DR6.BD, GD cleared in the handler
 * `only=GROUP` runs one group; `kvm_host` skips the groups this host's KVM
 * cannot do. DR6 expectations follow emu_debug.h's documented choices
 * (B0-B3 only for enabled registers, bit 12 reads 0, bit 16 reads 1). */
#include "guests/dbg_common.h"

/* ---- labelled instructions (the #DB RIPs the tables name) ---- */

#define ACCESS_STUB(name, insn) \
	".globl " #name "\n" #name ": " insn "\n" ".globl " #name "_end\n" #name "_end: ret\n"

__asm__(".text\n"
	ACCESS_STUB(acc_wb, "movb %sil, (%rdi)")
	ACCESS_STUB(acc_ww, "movw %si, (%rdi)")
	ACCESS_STUB(acc_wl, "movl %esi, (%rdi)")
	ACCESS_STUB(acc_wq, "movq %rsi, (%rdi)")
	ACCESS_STUB(acc_rb, "movb (%rdi), %al")
	ACCESS_STUB(acc_rw, "movw (%rdi), %ax")
	ACCESS_STUB(acc_rl, "movl (%rdi), %eax")
	ACCESS_STUB(acc_rq, "movq (%rdi), %rax")
	ACCESS_STUB(acc_rmw, "addl %esi, (%rdi)")
	ACCESS_STUB(io_out, "movl $0x80, %edx; movb %sil, %al; outb %al, %dx")
	ACCESS_STUB(io_inw, "movl $0x7f, %edx; inw %dx, %ax")
	".globl exec_run\nexec_run:\n"
	".globl exec_0\nexec_0: nop\n"
	".globl exec_1\nexec_1: nop\n"
	".globl exec_2\nexec_2: nop\n"
	".globl exec_3\nexec_3: nop\n"
	"ret\n"
	".globl rep_stos\nrep_stos: movq %rsi, %rcx; movb $0x5a, %al\n"
	".globl rep_stos_insn\nrep_stos_insn: rep stosb\n"
	".globl rep_stos_end\nrep_stos_end: ret\n");

typedef uint64_t (*access_fn)(volatile void *p, uint64_t v);
#define STUB(name) \
	uint64_t name(volatile void *p, uint64_t v); extern char name##_end[]
STUB(acc_wb); STUB(acc_ww); STUB(acc_wl); STUB(acc_wq);
STUB(acc_rb); STUB(acc_rw); STUB(acc_rl); STUB(acc_rq); STUB(acc_rmw);
STUB(io_out); STUB(io_inw);
void exec_run(void);
extern char exec_0[], exec_1[], exec_2[], exec_3[];
void rep_stos(volatile void *p, uint64_t count);
extern char rep_stos_insn[], rep_stos_end[];

static volatile uint8_t area[64] __attribute__((aligned(64)));

#define DR6_0 DR6_INIT          /* what DR6 reads with no condition bit */

/* ---- regs ---- */

static volatile unsigned ud_count;
static void on_ud(struct rt_frame *f)
{
	ud_count++;
	f->rip += 3;            /* mov %dr4/%dr5 <-> r64: 0f 21/23 modrm */
}

static void group_regs(void)
{
	static const struct { const char *name; unsigned dr; uint64_t write, read; } cases[] = {
		{ "DR6 0 reads fixed ones", 6, 0, DR6_INIT },
		{ "DR6 all ones: bit 12 reads 0", 6, 0xffffffff, 0xffffefff },
		{ "DR6 BS sticks as written", 6, DR6_BS, DR6_INIT | DR6_BS },
		{ "DR7 0 reads bit 10", 7, 0, DR7_INIT },
		{ "DR7 all ones but GD: bits 11,12,14,15 read 0", 7, 0xffffffff & ~DR7_GD,
		  0xffff07ff },
	};

	set_dr0(0x1000); set_dr1(0x1000); set_dr2(0x1000); set_dr3(0x1000);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].dr == 6)
			set_dr6(cases[i].write);
		else
			set_dr7(cases[i].write);
		uint64_t got = cases[i].dr == 6 ? get_dr6() : get_dr7();
		set_dr7(DR7_INIT);
		expect_eq(got, cases[i].read, cases[i].name);
	}

	/* DR4/DR5 alias DR6/DR7 while CR4.DE=0 */
	uint64_t v;
	set_dr6(DR6_BS);
	__asm__ volatile("mov %%dr4, %0" : "=r"(v));
	expect_eq(v, DR6_INIT | DR6_BS, "DR4 reads DR6 without CR4.DE");
	__asm__ volatile("mov %0, %%dr5" :: "r"((uint64_t)(DR7_INIT | DR7_GE)));
	expect_eq(get_dr7(), DR7_INIT | DR7_GE, "DR5 writes DR7 without CR4.DE");
	set_dr7(DR7_INIT);
	set_dr6(0);

	/* ... and are #UD with CR4.DE=1 */
	rt_handler old = idt_set_handler(X86_UD, on_ud);
	write_cr4(read_cr4() | CR4_DE);
	ud_count = 0;
	__asm__ volatile("mov %%dr4, %0" : "=r"(v));
	__asm__ volatile("mov %0, %%dr5" :: "r"((uint64_t)DR7_INIT));
	write_cr4(read_cr4() & ~CR4_DE);
	idt_set_handler(X86_UD, old);
	expect_eq(ud_count, 2, "DR4/DR5 with CR4.DE: #UD each");
}

/* ---- exec ---- */

struct exec_case {
	const char *name;
	uint64_t dr7;                  /* enables and RW/LEN for DR0-3 */
	char *addr[4];                 /* DR0-3 */
	unsigned n;
	char *rip[4];                  /* expected #DB RIPs, DR6 = B(slot[i]) */
	unsigned slot[4];
};

static void group_exec(void)
{
	const struct exec_case cases[] = {
		{ "DR0 L0", DR7_L(0), { exec_1 }, 1, { exec_1 }, { 0 } },
		{ "DR3 G3", DR7_G(3), { 0, 0, 0, exec_0 }, 1, { exec_0 }, { 3 } },
		{ "all four in order", DR7_L(0) | DR7_L(1) | DR7_G(2) | DR7_G(3),
		  { exec_3, exec_2, exec_1, exec_0 }, 4,
		  { exec_0, exec_1, exec_2, exec_3 }, { 3, 2, 1, 0 } },
		{ "disabled slot", DR7_L(1), { exec_1, exec_0 }, 1, { exec_0 }, { 1 } },
		{ "RW=01 never fires on execution",
		  DR7_L(0) | DR7_RW(0, DR7_RW_WRITE), { exec_0 }, 0, { 0 }, { 0 } },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct exec_case *c = &cases[i];
		struct db_entry want[4];

		db_reset();
		db_set_rf = true;          /* resume past each breakpoint */
		for (unsigned s = 0; s < 4; s++)
			set_drn(s, (uintptr_t)c->addr[s]);
		set_dr7(DR7_INIT | c->dr7);
		exec_run();
		set_dr7(DR7_INIT);
		for (unsigned k = 0; k < c->n; k++)
			want[k] = (struct db_entry){ .rip = (uintptr_t)c->rip[k],
						     .dr6 = DR6_0 | DR6_B(c->slot[k]) };
		db_expect(c->name, want, c->n);
		if (c->n)
			expect(db_log[0].rflags & RFLAGS_RF ? 0 : 1,
			       "instruction breakpoint frame has RF=0");
	}
}

/* ---- data ---- */

struct data_case {
	const char *name;
	unsigned rw, len;
	unsigned bp_off;           /* DR0 = area + bp_off */
	access_fn fn;
	char *end;                 /* the access stub's _end label */
	unsigned acc_off;
	bool hit;
};

#define W(s) acc_w##s, acc_w##s##_end
#define R(s) acc_r##s, acc_r##s##_end

static void group_data(void)
{
	const struct data_case cases[] = {
		{ "LEN1 byte write", DR7_RW_WRITE, DR7_LEN_1, 8, W(b), 8, true },
		{ "LEN1 byte read, RW=01", DR7_RW_WRITE, DR7_LEN_1, 8, R(b), 8, false },
		{ "LEN1 byte read, RW=11", DR7_RW_ACCESS, DR7_LEN_1, 8, R(b), 8, true },
		{ "LEN1 next byte", DR7_RW_ACCESS, DR7_LEN_1, 8, W(b), 9, false },
		{ "LEN1 qword write covers it", DR7_RW_WRITE, DR7_LEN_1, 13, W(q), 8, true },
		{ "LEN1 dword straddles it", DR7_RW_ACCESS, DR7_LEN_1, 10, R(l), 7, true },
		{ "LEN2 masked address", DR7_RW_WRITE, DR7_LEN_2, 9, W(b), 8, true },
		{ "LEN2 word after it", DR7_RW_WRITE, DR7_LEN_2, 9, W(w), 10, false },
		{ "LEN4 masked address", DR7_RW_ACCESS, DR7_LEN_4, 14, R(b), 12, true },
		{ "LEN4 dword straddles in", DR7_RW_ACCESS, DR7_LEN_4, 12, R(l), 10, true },
		{ "LEN4 dword just below", DR7_RW_ACCESS, DR7_LEN_4, 12, R(l), 8, false },
		{ "LEN8 last byte", DR7_RW_WRITE, DR7_LEN_8, 16, W(b), 23, true },
		{ "LEN8 next qword", DR7_RW_WRITE, DR7_LEN_8, 16, W(q), 24, false },
		{ "LEN8 masked address", DR7_RW_WRITE, DR7_LEN_8, 21, W(w), 16, true },
		{ "LEN8 read, RW=11", DR7_RW_ACCESS, DR7_LEN_8, 16, R(q), 16, true },
		{ "read-modify-write, RW=01", DR7_RW_WRITE, DR7_LEN_4, 32, acc_rmw, acc_rmw_end, 32,
		  true },
		{ "exec slot ignores data", DR7_RW_EXEC, DR7_LEN_1, 8, W(b), 8, false },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		struct db_entry want = { .rip = (uintptr_t)c->end, .dr6 = DR6_0 | DR6_B(0) };

		db_reset();
		set_dr0((uintptr_t)(area + c->bp_off));
		set_dr7(DR7_INIT | DR7_L(0) | DR7_RW(0, c->rw) | DR7_LEN(0, c->len));
		c->fn(area + c->acc_off, 0x11);
		set_dr7(DR7_INIT);
		db_expect(c->name, &want, c->hit ? 1 : 0);
	}

	/* several registers: DR0 and DR2 match, DR1 matches but is disabled,
	 * DR3 does not match; B1 left over in DR6 is replaced */
	db_reset();
	set_dr0((uintptr_t)(area + 40));
	set_dr1((uintptr_t)(area + 40));
	set_dr2((uintptr_t)(area + 32));
	set_dr3((uintptr_t)(area + 48));
	set_dr7(DR7_INIT | DR7_L(0) | DR7_RW(0, DR7_RW_WRITE) | DR7_LEN(0, DR7_LEN_4) |
		DR7_RW(1, DR7_RW_WRITE) |
		DR7_G(2) | DR7_RW(2, DR7_RW_ACCESS) | DR7_LEN(2, DR7_LEN_8) |
		DR7_G(3) | DR7_RW(3, DR7_RW_ACCESS));
	set_dr6(DR6_B(1) | DR6_BS);
	acc_wl(area + 38, 1);
	set_dr7(DR7_INIT);
	struct db_entry several = { .rip = (uintptr_t)acc_wl_end, .dr6 = DR6_0 | DR6_BS | DR6_B(0) | DR6_B(2) };
	db_expect("DR0+DR2 match, DR1 disabled, BS sticky", &several, 1);

	/* REP STOSB over a watched byte: the trap follows the iteration that
	 * wrote it, RIP still at the REP instruction, RCX = what remains */
	db_reset();
	set_dr1((uintptr_t)(area + 50));
	set_dr7(DR7_INIT | DR7_L(1) | DR7_RW(1, DR7_RW_WRITE));
	rep_stos(area + 48, 8);
	set_dr7(DR7_INIT);
	struct db_entry rep = { .rip = (uintptr_t)rep_stos_insn, .dr6 = DR6_0 | DR6_B(1) };
	db_expect("REP STOSB iteration 3 of 8", &rep, 1);
	expect_eq(db_log[0].rcx, 5, "REP STOSB: RCX at the trap");
	expect_eq(area[55], 0x5a, "REP STOSB finished after the trap");
}

/* ---- io ---- */

static void group_io(void)
{
	static const struct { const char *name; unsigned len; uint16_t port; bool out; bool hit; }
	cases[] = {
		{ "OUT to port 0x80, LEN1", DR7_LEN_1, 0x80, true, true },
		{ "OUT to port 0x80, LEN2 at 0x81", DR7_LEN_2, 0x81, true, true },
		{ "OUT to port 0x80, watched 0x81", DR7_LEN_1, 0x81, true, false },
		{ "IN word from 0x7f straddles 0x80", DR7_LEN_1, 0x80, false, true },
		{ "IN word from 0x7f, watched 0x81", DR7_LEN_1, 0x81, false, false },
	};

	write_cr4(read_cr4() | CR4_DE);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *end = cases[i].out ? io_out_end : io_inw_end;
		struct db_entry want = { .rip = (uintptr_t)end, .dr6 = DR6_0 | DR6_B(2) };

		db_reset();
		set_dr2(cases[i].port);
		set_dr7(DR7_INIT | DR7_G(2) | DR7_RW(2, DR7_RW_IO) | DR7_LEN(2, cases[i].len));
		if (cases[i].out)
			io_out(0, 0);
		else
			io_inw(0, 0);
		set_dr7(DR7_INIT);
		db_expect(cases[i].name, &want, cases[i].hit ? 1 : 0);
	}
	write_cr4(read_cr4() & ~CR4_DE);
}

/* ---- gd ---- */

__asm__(".text\n.globl gd_read\ngd_read:\n"
	".globl gd_mov\ngd_mov: mov %dr0, %rax\n"
	"ret\n");
uint64_t gd_read(void);
extern char gd_mov[];

static void group_gd(void)
{
	db_reset();
	set_dr0(0x1234);
	set_dr6(DR6_B(0));
	set_dr7(DR7_INIT | DR7_GD);
	uint64_t v = gd_read();         /* faults once; the handler's own MOVs run */
	struct db_entry want = { .rip = (uintptr_t)gd_mov, .dr6 = DR6_0 | DR6_BD };
	db_expect("MOV DR0 with DR7.GD", &want, 1);
	expect_eq(v, 0x1234, "the MOV ran after the handler");
	expect_eq(get_dr7(), DR7_INIT, "GD cleared by the #DB");
}

static const struct dbg_group groups[] = {
	{ "regs", group_regs, "the host CPU model has RTM: DR6 bit 16 and DR7 bit 11 "
			      "are writable there, fixed on emu" },
	{ "exec", group_exec, NULL },
	{ "data", group_data, "this host's KVM never fires data breakpoints" },
	{ "io", group_io, "this host's KVM never fires I/O breakpoints" },
	{ "gd", group_gd, NULL },
};

int main(void)
{
	return run_groups(groups, sizeof(groups) / sizeof(groups[0]));
}
