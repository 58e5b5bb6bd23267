/* guests/bench_memory.c — bench_memory.elf: iters=N rounds (default
 * BENCH_MEMORY_DEFAULT_ROUNDS) of bench_loops.S's memory loop: a 2 MiB copy
 * from a 2 MiB page to 4 KiB pages and a pointer chase over 2 MiB of 4 KiB
 * pages (layout in bench_loops.h; needs BENCH_MEM_MIN_RAM of guest RAM).
 * Prints
 *     bench memory iters=N insns=M checksum=0xX
 * (exact insns, checksum as build/bench/emu_ref computes it) and exits with
 * 0, or FAIL and 1 when the tables cannot be split or the copy is wrong. */
#define BENCH_GUEST
#include "guests/bench_loops.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

static struct bench_pt bench_pts[2];

int main(void)
{
	uint64_t rounds = cmdline_u64("iters", BENCH_MEMORY_DEFAULT_ROUNDS);
	uint64_t *src = (uint64_t *)(uintptr_t)BENCH_SRC;
	uint64_t *dst = (uint64_t *)(uintptr_t)BENCH_DST;

	if (rounds == 0)
		rounds = 1;
	if (!bench_split_2m(BENCH_DST, &bench_pts[0]) || !bench_split_2m(BENCH_CHASE, &bench_pts[1]))
		rt_fail_now("bench memory: page tables are not 2 MiB identity pages");
	bench_src_init(src);
	const struct bench_node *head = bench_chase_init((struct bench_node *)(uintptr_t)BENCH_CHASE);
	uint64_t sum = bench_memory_loop(rounds, dst, src, head);

	if (!bench_copy_ok(dst, src))
		rt_fail_now("bench memory: the copy differs from its source");
	printf("bench memory iters=%lu insns=%lu checksum=0x%lx\n", (unsigned long)rounds,
	       (unsigned long)(BENCH_MEMORY_FIXED + rounds * BENCH_MEMORY_PER_ROUND),
	       (unsigned long)sum);
	return 0;
}
