/* guests/rt/paging.h — the identity map of the low 4 GiB that guests with
 * a ring-3 part build for themselves: 2 MiB pages, except the first 4 MiB
 * in 4 KiB pages so that single pages can be given to user mode. */
#ifndef RT_PAGING_H
#define RT_PAGING_H

#include <stdbool.h>
#include <stdint.h>

#define PTE_P   (1ull << 0)
#define PTE_W   (1ull << 1)
#define PTE_U   (1ull << 2)
#define PTE_PS  (1ull << 7)
#define PTE_G   (1ull << 8)
#define PTE_NX  (1ull << 63)
#define PAGE_2M (1ull << 21)

/* The caller's tables (4 KiB aligned) for the identity map of 0-4 GiB. */
struct rt_low_map {
	uint64_t pdpt[512];
	uint64_t pd[4][512];
	uint64_t pt_low[2][512];      /* 0-4 MiB */
};

/* Fills m; a 4 KiB page of the first 4 MiB is user-accessible where
 * user_page(its address) says so. Returns the PML4 entry that maps it. */
uint64_t rt_low_map_build(struct rt_low_map *m, bool (*user_page)(uint64_t addr));

/* The guests run identity-mapped: a pointer is its physical address. */
static inline uint64_t rt_pa(const void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static inline void rt_invlpg(uint64_t va)
{
	__asm__ volatile("invlpg (%0)" :: "r"(va) : "memory");
}

/* For a #PF handler of a test that maps [base, base + n pages) through
 * the page table pt: the entry the fault was on gets what it lacked
 * (present, writable, and user for a user access: error code bit 2), so
 * that the access runs again. Returns CR2. */
static inline uint64_t rt_pf_mend(uint64_t *pt, uint64_t base, unsigned n, uint64_t error_code)
{
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	uint64_t i = (cr2 - base) >> 12;
	if (cr2 >= base && i < n)
		pt[i] |= PTE_P | PTE_W | (error_code & 4 ? PTE_U : 0);
	rt_invlpg(cr2);
	return cr2;
}

#endif
