/* guests/many_maps.c — many_maps.elf: more separate mappings than an ELF
 * header can count (65535), for a core dump by virtual mappings (monitor
 * dump-guest-memory -p, tests/test_coredump.py). MM_PAGES pages of linear
 * addresses from MM_VA (PML4 slot 288) map two physical frames in turn,
 * a frame apart, so that no two neighbours are contiguous (as the frames
 * would be, one way); each frame starts with its own marker. The guest reads the marker through the last page, then stops at
 * mm_ready (the test's breakpoint) and exits 0. */
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define MM_VA        0xffff900000000000ull
#define MM_PAGES     70000u
#define MM_PTS       ((MM_PAGES + 511) / 512)
#define PT_PRESENT_RW 0x3ull

static uint64_t mm_pdpt[512] __attribute__((aligned(4096)));
static uint64_t mm_pd[512] __attribute__((aligned(4096)));
static uint64_t mm_pt[MM_PTS][512] __attribute__((aligned(4096)));
/* frames 0 and 2 are mapped; 1 keeps them apart */
volatile uint64_t mm_frames[3][512] __attribute__((aligned(4096)));

__attribute__((noinline, used)) void mm_ready(uint64_t seen)
{
	__asm__ volatile("" :: "r"(seen) : "memory");
}

int main(void)
{
	uint64_t cr3;
	mm_frames[0][0] = 0x1111111111111111ull;
	mm_frames[2][0] = 0x2222222222222222ull;
	for (unsigned i = 0; i < MM_PAGES; i++)
		mm_pt[i / 512][i % 512] = (uint64_t)mm_frames[2 * (i % 2)] | PT_PRESENT_RW;
	for (unsigned t = 0; t < MM_PTS; t++)
		mm_pd[t] = (uint64_t)mm_pt[t] | PT_PRESENT_RW;
	mm_pdpt[0] = (uint64_t)mm_pd | PT_PRESENT_RW;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	((volatile uint64_t *)(cr3 & ~0xfffull))[(MM_VA >> 39) & 511] =
		(uint64_t)mm_pdpt | PT_PRESENT_RW;
	__asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");
	uint64_t seen = *(volatile uint64_t *)(MM_VA + (uint64_t)(MM_PAGES - 1) * 4096);
	printf("many_maps: %u pages mapped, the last one reads 0x%lx\n", MM_PAGES,
	       (unsigned long)seen);
	mm_ready(seen);
	return seen == mm_frames[2 * ((MM_PAGES - 1) % 2)][0] ? 0 : 1;
}
