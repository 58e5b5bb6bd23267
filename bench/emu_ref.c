/* bench/emu_ref.c — the checksums the bench guests must print, computed by
 * running the same loops (guests/bench_loops.S) natively on the host:
 *     emu_ref compute|memory N   ->   "checksum=0xX insns=M"
 * The memory checksum depends on the data and the chase order only, not on
 * addresses, so host buffers give the guest's value. bench/emu checks every
 * engine's output against it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guests/bench_loops.h"

static int ref_compute(uint64_t iters)
{
	uint64_t arr[BENCH_COMPUTE_ARR_LEN];

	bench_compute_init(arr);
	uint64_t sum = bench_compute_checksum(bench_compute_loop(iters, arr), arr);
	printf("checksum=0x%" PRIx64 " insns=%" PRIu64 "\n", sum,
	       (uint64_t)BENCH_COMPUTE_FIXED + iters * BENCH_COMPUTE_PER_ITER);
	return 0;
}

static int ref_memory(uint64_t rounds)
{
	uint64_t *src = aligned_alloc(4096, BENCH_COPY_BYTES);
	uint64_t *dst = aligned_alloc(4096, BENCH_COPY_BYTES);
	struct bench_node *nodes = aligned_alloc(4096, BENCH_CHASE_BYTES);

	if (!src || !dst || !nodes) {
		fprintf(stderr, "emu_ref: out of memory\n");
		return 1;
	}
	bench_src_init(src);
	uint64_t sum = bench_memory_loop(rounds, dst, src, bench_chase_init(nodes));
	int ok = bench_copy_ok(dst, src);

	free(src);
	free(dst);
	free(nodes);
	if (!ok) {
		fprintf(stderr, "emu_ref: the copy differs from its source\n");
		return 1;
	}
	printf("checksum=0x%" PRIx64 " insns=%" PRIu64 "\n", sum,
	       (uint64_t)BENCH_MEMORY_FIXED + rounds * BENCH_MEMORY_PER_ROUND);
	return 0;
}

int main(int argc, char **argv)
{
	char *end;

	if (argc != 3)
		goto usage;
	errno = 0;
	uint64_t n = strtoull(argv[2], &end, 0);
	if (errno || *end || n == 0)
		goto usage;
	if (!strcmp(argv[1], "compute"))
		return ref_compute(n);
	if (!strcmp(argv[1], "memory"))
		return ref_memory(n);
usage:
	fprintf(stderr, "usage: emu_ref compute|memory N (N >= 1)\n");
	return 2;
}
