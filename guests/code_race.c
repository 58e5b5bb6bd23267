/* guests/code_race.c — code_race.elf: one CPU rewrites an instruction
 * while another executes it. The slot holds either POPCNT RAX, RBX or
 * MOVQ RAX, XMM0 (both 5 bytes, swapped by one 8-byte store, so every
 * fetch sees one whole instruction). Whichever runs, RAX must be its
 * result: POPCNT of RBX or XMM0's low quadword. On kvm here POPCNT runs on
 * emu's core (engine/kvm/kvm_fallback.c), which was judged on the bytes
 * KVM fetched and must not execute others fetched later (MOVQ run with
 * the state loaded for POPCNT would read an XMM0 of zero). Needs 2 CPUs;
 * `rounds=N` (default 3000). */
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define RACE_RBX  0x00ff00ff00ff00ffull      /* POPCNT: 32 */
#define RACE_XMM0 0x1234567890abcdefull
#define RACE_POPCNT 32

/* The slot: 8-byte aligned, in a writable and executable section. */
__asm__(
	"	.pushsection race_code, \"awx\", @progbits\n"
	"	.balign 8\n"
	"	.globl race_slot\n"
	"race_slot:\n"
	"	popcnt	%rbx, %rax\n"
	"	ret\n"
	"	int3\n"
	"	int3\n"
	"	.popsection\n");

extern uint8_t race_slot[];
static uint64_t slot_popcnt, slot_movq;
static volatile bool race_over;
static unsigned as_popcnt, as_movq, wrong;
static uint64_t wrong_value;

static uint64_t run_slot(void)
{
	uint64_t rax, xmm = RACE_XMM0;
	__asm__ volatile("movq %2, %%xmm0\n\t"
			 "call race_slot"
			 : "=a"(rax) : "b"(RACE_RBX), "m"(xmm) : "cc", "memory");   // xmm0: no compiler code uses it
	return rax;
}

static void race(void *arg)
{
	uint64_t rounds = *(const uint64_t *)arg;
	volatile uint64_t *slot = (volatile uint64_t *)race_slot;
	if (rt_cpu_id() == 1) {
		while (!race_over) {
			*slot = slot_movq;
			*slot = slot_popcnt;
		}
		return;
	}
	if (rt_cpu_id() != 0)
		return;
	for (uint64_t i = 0; i < rounds; i++) {
		uint64_t v = run_slot();
		if (v == RACE_POPCNT)
			as_popcnt++;
		else if (v == RACE_XMM0)
			as_movq++;
		else if (!wrong++)
			wrong_value = v;
	}
	race_over = true;
}

int main(void)
{
	uint64_t rounds = cmdline_u64("rounds", 3000);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	slot_popcnt = *(volatile uint64_t *)race_slot;
	/* 66 48 0f 7e c0 = movq %xmm0, %rax; then the same ret, int3, int3 */
	slot_movq = (slot_popcnt & ~0xffffffffffull) | 0xc07e0f4866ull;
	if (smp_start_aps(2, 1000) < 2) {
		report_skip("code rewritten under a running CPU", "needs 2 CPUs");
		return report_summary();
	}
	smp_run_on_all(race, &rounds);
	printf("race: %u POPCNT, %u MOVQ, %u other\n", as_popcnt, as_movq, wrong);
	expect_eq(wrong_value, 0, "every result is POPCNT's or MOVQ's (first other value)");
	expect_eq(wrong, 0, "results that are neither");
	return report_summary();
}
