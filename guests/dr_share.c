/* guests/dr_share.c — dr_share.elf: the guest's own debug registers while
 * a debugger may hold the same hardware (tests/test_dr_share.py). gdb puts
 * an hbreak on dr_share_mark before the guest arms anything, so on an
 * engine with one DR set per vCPU it sits in DR0; then the guest takes
 * DR0 and DR1 for instruction breakpoints on two functions of its own
 * (and DR2 for a 4-byte write breakpoint on `watched` with `data`), and
 * calls them in rounds with dr_share_mark between them; with `store` (or
 * `data`) each round writes round+1 to `watched`, where gdb may watch. Every #DB it takes is checked:
 * its RIP and a DR6 holding its own bit only. The values it reads back
 * (DR0-3, DR6, DR7, and DR4/DR5, aliases of DR6/DR7 without CR4.DE) go
 * to one "dr:" line the test compares with and without gdb. `gd` adds
 * DR7.GD: a MOV DR faults with DR6.BD and GD is cleared for the handler
 * (skipped with `kvm_host`). `smp` (with 2 CPUs): the AP takes DR2 for
 * its own breakpoint. `all4`: the guest takes all four DRs for its own
 * instruction breakpoints and calls dr_share_mark between their hits
 * (gdb's hbreak there has no slot left: an int3 must stand in for it).
 * `exits=N` starts with N port writes. */
#include "guests/dbg_common.h"
#include "guests/rt/smp.h"

#define ROUNDS 3

__asm__(".text\n"
	".globl dr_share_mark\ndr_share_mark: nop\nret\n"
	".globl dr_share_f0\ndr_share_f0: nop\nret\n"
	".globl dr_share_f1\ndr_share_f1: nop\nret\n"
	".globl dr_share_ap\ndr_share_ap: nop\nret\n"
	".globl dr_share_f2\ndr_share_f2: nop\nret\n"
	".globl dr_share_f3\ndr_share_f3: nop\nret\n"
	".globl dr_share_store\ndr_share_store: movl %esi, (%rdi)\n"
	".globl dr_share_store_end\ndr_share_store_end: ret\n"
	".globl dr_share_gd_read\ndr_share_gd_read: mov %dr0, %rax\nret\n");
void dr_share_mark(void);
void dr_share_f0(void);
void dr_share_f1(void);
void dr_share_ap(void);
void dr_share_f2(void);
void dr_share_f3(void);
void dr_share_store(volatile uint32_t *p, uint32_t v);
extern char dr_share_store_end[];
uint64_t dr_share_gd_read(void);

static volatile uint32_t watched;

static uint64_t get_dr4(void)
{
	uint64_t v;
	__asm__ volatile("mov %%dr4, %0" : "=r"(v));
	return v;
}

static uint64_t get_dr5(void)
{
	uint64_t v;
	__asm__ volatile("mov %%dr5, %0" : "=r"(v));
	return v;
}

static uint64_t arm(bool data)
{
	uint64_t dr7 = DR7_INIT | DR7_L(0) | DR7_G(1);
	set_dr0((uint64_t)dr_share_f0);
	set_dr1((uint64_t)dr_share_f1);
	if (data) {
		set_dr2((uint64_t)&watched);
		dr7 |= DR7_L(2) | DR7_RW(2, DR7_RW_WRITE) | DR7_LEN(2, DR7_LEN_4);
	}
	set_dr7(dr7);
	/* an exit: where the host does not trap MOV DR, vmdb learns the
	 * guest's registers at exits */
	outb(0x80, 0);
	return dr7;
}

static void rounds(bool data, bool store)
{
	struct db_entry want[DBG_LOG_MAX];
	unsigned n = 0;
	for (unsigned i = 0; i < ROUNDS; i++) {
		dr_share_f0();
		dr_share_mark();
		dr_share_f1();
		want[n++] = (struct db_entry){ .rip = (uint64_t)dr_share_f0, .dr6 = DR6_INIT | DR6_B(0) };
		want[n++] = (struct db_entry){ .rip = (uint64_t)dr_share_f1, .dr6 = DR6_INIT | DR6_B(1) };
		if (store)
			dr_share_store(&watched, i + 1);
		if (data) {
			want[n++] = (struct db_entry){ .rip = (uint64_t)dr_share_store_end,
						       .dr6 = DR6_INIT | DR6_B(2) };
		}
	}
	db_expect("own breakpoints", want, n);
}

static void general_detect(uint64_t dr7)
{
	db_count = 0;
	set_dr7(dr7 | DR7_GD);
	uint64_t dr0 = dr_share_gd_read();      /* faults once, runs after the #DB */
	struct db_entry want = { .rip = (uint64_t)dr_share_gd_read, .dr6 = DR6_INIT | DR6_BD };
	db_expect("DR7.GD", &want, 1);
	expect_eq(dr0, (uint64_t)dr_share_f0, "MOV DR0 after the GD #DB");
	expect_eq(get_dr7(), dr7, "GD cleared for the handler");
}

/* `smp`: the AP takes DR2 (where gdb's hbreak went when the BSP took
 * DR0 and DR1) for a breakpoint of its own and keeps it; its hit must
 * reach it, and the hbreak must move on both vCPUs. */
static volatile unsigned ap_hits;
static volatile uint64_t ap_dr6;

static void ap_take_dr2(void *arg)
{
	(void)arg;
	if (rt_cpu_id() == 0)
		return;
	unsigned before = db_count;
	set_dr2((uint64_t)dr_share_ap);
	set_dr7(DR7_INIT | DR7_L(2));
	outb(0x80, 0);
	dr_share_ap();
	ap_hits = db_count - before;
	ap_dr6 = db_log[before < DBG_LOG_MAX ? before : 0].dr6;
}

static void smp_part(void)
{
	if (!expect(smp_start_aps(2, 10000) == 2, "the AP is up"))
		return;
	db_count = 0;
	smp_run_on_all(ap_take_dr2, NULL);
	expect_eq(ap_hits, 1, "the AP's own DR2 breakpoint hit it once");
	expect_eq(ap_dr6, DR6_INIT | DR6_B(2), "the AP's DR6: its B2 only");
	dr_share_mark();                /* gdb's hbreak, moved out of DR2 on every vCPU */
}

/* `all4`: every DR slot the guest's; dr_share_mark between its hits,
 * ALL4_ROUNDS times; with `store`, each round first writes 10 + round to
 * `watched` (the first write comes before any stop: a watchpoint of gdb's
 * pushed out of DR0-3 must watch it already). */
#define ALL4_ROUNDS 2

static void all_four(bool store)
{
	void (*const fn[4])(void) = { dr_share_f0, dr_share_f1, dr_share_f2, dr_share_f3 };
	struct db_entry want[DBG_LOG_MAX];
	unsigned n = 0;
	db_count = 0;
	set_dr0((uint64_t)fn[0]);
	set_dr1((uint64_t)fn[1]);
	set_dr2((uint64_t)fn[2]);
	set_dr3((uint64_t)fn[3]);
	set_dr7(DR7_INIT | DR7_L(0) | DR7_L(1) | DR7_G(2) | DR7_L(3));
	outb(0x80, 0);
	for (unsigned r = 0; r < ALL4_ROUNDS; r++) {
		if (store)
			dr_share_store(&watched, 10 + r);
		for (unsigned i = 0; i < 4; i++) {
			fn[i]();
			want[n++] = (struct db_entry){ .rip = (uint64_t)fn[i], .dr6 = DR6_INIT | DR6_B(i) };
			if (i == 1)
				dr_share_mark();      /* gdb's hbreak, no slot left for it */
		}
	}
	db_expect("all four DRs the guest's", want, n);
	set_dr7(DR7_INIT);
	outb(0x80, 0);
}

int main(void)
{
	bool data = cmdline_has("data");
	bool store = data || cmdline_has("store");

	/* exits=N: N port writes first, each an exit (bench/drshare times
	 * them with and without gdb's hardware breakpoints loaded) */
	for (uint64_t i = cmdline_u64("exits", 0); i > 0; i--)
		outb(0x80, 0);
	idt_set_handler(X86_DB, dbg_on_db);
	db_reset();
	db_set_rf = true;
	/* what DR6 reads after the handler's write of 0 (bit 16 is writable
	 * where the CPU has RTM) */
	uint64_t dr6_cleared = get_dr6();
	dr_share_mark();                /* gdb's hbreak goes in before the guest's */
	uint64_t dr7 = arm(data);
	rounds(data, store);

	uint64_t dr[8] = { get_dr0(), get_dr1(), get_dr2(), get_dr3(), get_dr4(), get_dr5(),
			   get_dr6(), get_dr7() };
	printf("dr: dr0=%lx dr1=%lx dr2=%lx dr3=%lx dr4=%lx dr5=%lx dr6=%lx dr7=%lx\n", dr[0],
	       dr[1], dr[2], dr[3], dr[4], dr[5], dr[6], dr[7]);
	expect_eq(dr[0], (uint64_t)dr_share_f0, "DR0 reads back");
	expect_eq(dr[1], (uint64_t)dr_share_f1, "DR1 reads back");
	expect_eq(dr[7], dr7, "DR7 reads back its own enables only");
	expect_eq(dr[6], dr6_cleared, "DR6 as the handler left it");
	expect_eq(dr[4], dr[6], "DR4 aliases DR6");
	expect_eq(dr[5], dr[7], "DR5 aliases DR7");
	if (cmdline_has("gd") && group_wanted("gd") &&
	    !on_kvm_host("gd", "this host's KVM does not trap MOV DR under DR7.GD"))
		general_detect(dr7);

	set_dr7(DR7_INIT);
	outb(0x80, 0);
	if (cmdline_has("all4"))
		all_four(store);
	if (cmdline_has("smp"))
		smp_part();
	db_count = 0;
	dr_share_f0();
	dr_share_mark();                /* gdb's hbreak after the guest let go */
	expect_eq(db_count, 0, "no #DB once disarmed");
	return report_summary();
}
