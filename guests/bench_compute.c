/* guests/bench_compute.c — bench_compute.elf: iters=N (default
 * BENCH_COMPUTE_DEFAULT_ITERS) runs of the integer loop of bench_loops.S,
 * then one line bench/emu reads and the tests check:
 *     bench compute iters=N insns=M checksum=0xX
 * insns is exact (bench_loops.h); the checksum is what build/bench/emu_ref
 * computes natively for the same N. Exits with 0. */
#include "guests/bench_loops.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/serial.h"

int main(void)
{
	static uint64_t arr[BENCH_COMPUTE_ARR_LEN];
	uint64_t iters = cmdline_u64("iters", BENCH_COMPUTE_DEFAULT_ITERS);

	if (iters == 0)
		iters = 1;
	bench_compute_init(arr);
	uint64_t sum = bench_compute_checksum(bench_compute_loop(iters, arr), arr);
	printf("bench compute iters=%lu insns=%lu checksum=0x%lx\n", (unsigned long)iters,
	       (unsigned long)(BENCH_COMPUTE_FIXED + iters * BENCH_COMPUTE_PER_ITER),
	       (unsigned long)sum);
	return 0;
}
