/* guests/boot_main.c — the 64-bit part of the Bochs benchmark image
 * (guests/boot_bench.S enters here in long mode, paging on, 0..1 GiB
 * identity-mapped with 2 MiB pages). Runs the benchmark boot_params names
 * with the loops of guests/bench_loops.S and the same set-up as
 * bench_compute.c / bench_memory.c, prints the same line on Bochs' port
 * 0xe9 console:
 *     bench compute|memory iters=N insns=M checksum=0xX
 * then asks Bochs to quit (its shutdown port 0x8900, "Shutdown"). No
 * runtime here: no serial, no IDT (a fault triple-faults, and Bochs says
 * so in its log). */
#define BENCH_GUEST
#include "guests/bench_loops.h"
#include "guests/rt/io.h"

#define PORT_E9          0xe9
#define PORT_BOCHS_SHUTDOWN 0x8900

enum { BOOT_BENCH_COMPUTE, BOOT_BENCH_MEMORY };

struct boot_params {
	char magic[8];           /* "VMDBBNCH": bench/emu finds the block by it */
	uint32_t which;          /* BOOT_BENCH_* */
	uint32_t pad;
	uint64_t iters;          /* iterations (compute) or rounds (memory) */
};
extern struct boot_params boot_params;

static struct bench_pt boot_pts[2];
static uint64_t boot_arr[BENCH_COMPUTE_ARR_LEN];

static void boot_puts(const char *s)
{
	while (*s)
		outb(PORT_E9, (uint8_t)*s++);
}

static void boot_put_u64(uint64_t v, unsigned base)
{
	char buf[24];
	unsigned n = 0;

	do {
		buf[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (n)
		outb(PORT_E9, (uint8_t)buf[--n]);
}

static void boot_report(const char *name, uint64_t iters, uint64_t insns, uint64_t sum)
{
	boot_puts("bench ");
	boot_puts(name);
	boot_puts(" iters=");
	boot_put_u64(iters, 10);
	boot_puts(" insns=");
	boot_put_u64(insns, 10);
	boot_puts(" checksum=0x");
	boot_put_u64(sum, 16);
	boot_puts("\n");
}

static void boot_compute(uint64_t iters)
{
	bench_compute_init(boot_arr);
	uint64_t sum = bench_compute_checksum(bench_compute_loop(iters, boot_arr), boot_arr);
	boot_report("compute", iters, BENCH_COMPUTE_FIXED + iters * BENCH_COMPUTE_PER_ITER, sum);
}

static void boot_memory(uint64_t rounds)
{
	uint64_t *src = (uint64_t *)(uintptr_t)BENCH_SRC;
	uint64_t *dst = (uint64_t *)(uintptr_t)BENCH_DST;

	if (!bench_split_2m(BENCH_DST, &boot_pts[0]) || !bench_split_2m(BENCH_CHASE, &boot_pts[1])) {
		boot_puts("FAIL: bench memory: page tables are not 2 MiB identity pages\n");
		return;
	}
	bench_src_init(src);
	const struct bench_node *head = bench_chase_init((struct bench_node *)(uintptr_t)BENCH_CHASE);
	uint64_t sum = bench_memory_loop(rounds, dst, src, head);

	if (!bench_copy_ok(dst, src)) {
		boot_puts("FAIL: bench memory: the copy differs from its source\n");
		return;
	}
	boot_report("memory", rounds, BENCH_MEMORY_FIXED + rounds * BENCH_MEMORY_PER_ROUND, sum);
}

void boot_main(void);
void boot_main(void)
{
	uint64_t iters = boot_params.iters ? boot_params.iters : 1;

	if (boot_params.which == BOOT_BENCH_MEMORY)
		boot_memory(iters);
	else
		boot_compute(iters);
	boot_puts("bench end\n");
	for (const char *s = "Shutdown"; *s; s++)
		outb(PORT_BOCHS_SHUTDOWN, (uint8_t)*s);
}
