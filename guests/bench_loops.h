/* guests/bench_loops.h — the benchmark loops shared by the vmdb guests
 * (bench_compute.elf, bench_memory.elf, their multiboot variants) and the
 * Bochs disk image (boot_bench.S + boot_main.c), and the host reference
 * build/bench/emu_ref that computes the checksums the guests must print.
 *
 * The loops are in guests/bench_loops.S, written in assembly so that the
 * number of instructions each iteration retires is exact and cannot change
 * with the compiler:
 *
 *   bench_compute_loop(iters, arr):   BENCH_COMPUTE_FIXED + iters * BENCH_COMPUTE_PER_ITER
 *   bench_memory_loop(rounds, ...):   BENCH_MEMORY_FIXED + rounds * BENCH_MEMORY_PER_ROUND
 *
 * (both counts include the call and the return; iters, rounds >= 1).
 * Every branch inside an iteration has the same number of instructions on
 * both of its paths, so the count does not depend on the data.
 *
 * Memory layout of the memory benchmark (physical = virtual, guest RAM of
 * at least BENCH_MEM_MIN_RAM):
 *   BENCH_SRC    2 MiB source of the copy, one 2 MiB page
 *   BENCH_DST    2 MiB destination, mapped with 4 KiB pages
 *   BENCH_CHASE  2 MiB of 64-byte nodes, 4 KiB pages, one pseudo-random
 *                cycle through all of them (node i -> (i + STRIDE) mod N, in
 *                node order scrambled by a multiplier, see bench_chase_init)
 * bench_split_2m() turns the 2 MiB pages of DST and CHASE into 4 KiB ones
 * in whatever page tables CR3 points at (vmdb's, the multiboot stub's or
 * the Bochs boot code's: all map 0..1 GiB at least with 2 MiB pages). */
#ifndef GUESTS_BENCH_LOOPS_H
#define GUESTS_BENCH_LOOPS_H

/* compute: a xorshift64 state, a multiply-accumulate, one load and one
 * store to an 8-entry array, a data-dependent branch (2 instructions on
 * either side) and the loop branch. See bench_loops.S for the listing. */
#define BENCH_COMPUTE_PER_ITER  21
#define BENCH_COMPUTE_FIXED     5
#define BENCH_COMPUTE_ARR_LEN   8

/* memory: per round a copy of BENCH_COPY_BYTES in 32-byte chunks
 * (4 loads, 4 stores, 5 others = 13 instructions a chunk) and a chase
 * through BENCH_CHASE_NODES nodes (5 instructions a node), plus 7 around. */
#define BENCH_COPY_BYTES        (2u << 20)
#define BENCH_COPY_CHUNKS       (BENCH_COPY_BYTES / 32)
#define BENCH_COPY_PER_CHUNK    13
#define BENCH_CHASE_BYTES       (2u << 20)
#define BENCH_NODE_SIZE         64
#define BENCH_CHASE_NODES       (BENCH_CHASE_BYTES / BENCH_NODE_SIZE)
#define BENCH_CHASE_PER_NODE    5
#define BENCH_MEMORY_ROUND_EXTRA 7
#define BENCH_MEMORY_PER_ROUND  (BENCH_COPY_CHUNKS * BENCH_COPY_PER_CHUNK + \
				 BENCH_CHASE_NODES * BENCH_CHASE_PER_NODE + BENCH_MEMORY_ROUND_EXTRA)
#define BENCH_MEMORY_FIXED      14

#define BENCH_SRC               (16u << 20)
#define BENCH_DST               (18u << 20)
#define BENCH_CHASE             (20u << 20)
#define BENCH_MEM_END           (22u << 20)
#define BENCH_MEM_MIN_RAM       (32u << 20)

/* Defaults sized for ~1.3 s at 150 million instructions per second. */
#define BENCH_COMPUTE_DEFAULT_ITERS 10000000u
#define BENCH_MEMORY_DEFAULT_ROUNDS 200u

#ifndef __ASSEMBLER__
#include <stdint.h>

/* One chase node: the next node's address, then a value the chase adds. */
struct bench_node {
	uint64_t next;
	uint64_t value;
	uint64_t pad[6];
};
_Static_assert(sizeof(struct bench_node) == BENCH_NODE_SIZE, "bench_node size");

/* Returns the checksum; arr (BENCH_COMPUTE_ARR_LEN entries) is updated
 * and part of the result the callers print (bench_compute_checksum). */
uint64_t bench_compute_loop(uint64_t iters, uint64_t *arr);

/* Copies src to dst (BENCH_COPY_BYTES) and walks the chase from head,
 * rounds times; returns the checksum. */
uint64_t bench_memory_loop(uint64_t rounds, void *dst, const void *src,
			   const struct bench_node *head);

/* The array's starting contents, and the checksum folded with it. */
static inline void bench_compute_init(uint64_t *arr)
{
	for (unsigned i = 0; i < BENCH_COMPUTE_ARR_LEN; i++)
		arr[i] = 0x0123456789abcdefull * (i + 1);
}

static inline uint64_t bench_compute_checksum(uint64_t loop_result, const uint64_t *arr)
{
	uint64_t sum = loop_result;

	for (unsigned i = 0; i < BENCH_COMPUTE_ARR_LEN; i++)
		sum = (sum ^ arr[i]) * 0x100000001b3ull;
	return sum;
}

/* The copy source's contents: a 64-bit LCG, one value a qword. */
static inline void bench_src_init(uint64_t *src)
{
	uint64_t x = 0x2545f4914f6cdd1dull;

	for (uint64_t i = 0; i < BENCH_COPY_BYTES / 8; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		src[i] = x;
	}
}

/* Link every node into one cycle: the k-th node visited is node
 * (k * BENCH_CHASE_MUL) mod N (MUL odd, so all N are visited), so
 * consecutive visits jump across pages. value = k, so the checksum also
 * proves the order. Addresses are of the caller's mapping (host or guest). */
#define BENCH_CHASE_MUL 40503u
static inline struct bench_node *bench_chase_init(struct bench_node *nodes)
{
	for (uint64_t k = 0; k < BENCH_CHASE_NODES; k++) {
		uint64_t cur = (k * BENCH_CHASE_MUL) % BENCH_CHASE_NODES;
		uint64_t nxt = ((k + 1) * BENCH_CHASE_MUL) % BENCH_CHASE_NODES;

		nodes[cur].next = (uint64_t)(uintptr_t)&nodes[nxt];
		nodes[cur].value = k;
	}
	return &nodes[0];
}

/* After the loop: dst must equal src (a sample of qwords in every page). */
static inline int bench_copy_ok(const uint64_t *dst, const uint64_t *src)
{
	for (uint64_t i = 0; i < BENCH_COPY_BYTES / 8; i += 4096 / 8 - 1)
		if (dst[i] != src[i])
			return 0;
	return 1;
}

#ifdef BENCH_GUEST
/* Page-table bits (guest side only: the host reference does not page). */
#include "x86/desc.h"

/* 4 KiB page tables for the split regions (DST and CHASE: 2 tables). */
struct bench_pt { uint64_t e[512]; } __attribute__((aligned(4096)));

static inline uint64_t bench_read_cr3(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

/* Replace the 2 MiB mapping of the region at phys (identity, below 1 GiB)
 * with a 4 KiB page table pt, same addresses and attributes, then flush.
 * Returns 0 when the tables are not what we expect (then nothing changed). */
static inline int bench_split_2m(uint64_t phys, struct bench_pt *pt)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(bench_read_cr3() & PTE_ADDR_MASK);
	uint64_t e = pml4[(phys >> 39) & 511];

	if (!(e & PTE_P))
		return 0;
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK);
	e = pdpt[(phys >> 30) & 511];
	if (!(e & PTE_P) || (e & PTE_PS))
		return 0;
	uint64_t *pd = (uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK);
	uint64_t *pde = &pd[(phys >> 21) & 511];

	if (!(*pde & PTE_P) || !(*pde & PTE_PS))
		return 0;
	for (unsigned i = 0; i < 512; i++)
		pt->e[i] = (phys + i * X86_PAGE_SIZE) | PTE_P | PTE_W;
	*pde = (uint64_t)(uintptr_t)pt | PTE_P | PTE_W;
	__asm__ volatile("mov %0, %%cr3" :: "r"(bench_read_cr3()) : "memory");
	return 1;
}
#endif /* BENCH_GUEST */
#endif /* __ASSEMBLER__ */
#endif
