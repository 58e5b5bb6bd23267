/* guests/rt/paging.c — see paging.h. */
#include "guests/rt/paging.h"

static uint64_t pa(const void *p) { return (uint64_t)(uintptr_t)p; }

uint64_t rt_low_map_build(struct rt_low_map *m, bool (*user_page)(uint64_t addr))
{
	for (unsigned g = 0; g < 4; g++) {
		for (unsigned i = 0; i < 512; i++)
			m->pd[g][i] = ((uint64_t)g << 30) + i * PAGE_2M + (PTE_P | PTE_W | PTE_PS);
		m->pdpt[g] = pa(m->pd[g]) | PTE_P | PTE_W | PTE_U;
	}
	for (unsigned t = 0; t < 2; t++) {
		for (unsigned i = 0; i < 512; i++) {
			uint64_t a = t * PAGE_2M + i * 4096ull;
			m->pt_low[t][i] = a | PTE_P | PTE_W | (user_page(a) ? PTE_U : 0);
		}
		m->pd[0][t] = pa(m->pt_low[t]) | PTE_P | PTE_W | PTE_U;
	}
	return pa(m->pdpt) | PTE_P | PTE_W | PTE_U;
}
