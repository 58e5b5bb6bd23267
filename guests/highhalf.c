/* guests/highhalf.c — highhalf.elf: code run at a virtual address that is
 * not its physical one, as a higher-half kernel runs. One 4 KiB page of
 * code (hh_code, physical = its link address) is also mapped at HH_VA
 * (PML4 slot 256, the canonical higher half) and called there three
 * times; it counts its calls in hh_calls (through an absolute address,
 * valid in both mappings). Exits 0 when the count is 3: a #BP the
 * debugger let through to the guest ends it with a failure. */
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define HH_VA 0xffff800000000000ull
#define HH_CALLS 3
#define PT_PRESENT_RW 0x3ull

volatile uint64_t hh_calls;

/* hh_code: one page of its own, so that one PTE maps it */
__asm__(".pushsection .text.hh, \"ax\"\n"
	".balign 4096\n"
	".globl hh_code\n"
	"hh_code:\n"
	"movabs $hh_calls, %rax\n"
	"lock incq (%rax)\n"
	"ret\n"
	".balign 4096\n"
	".popsection\n");
extern const char hh_code[];

static uint64_t hh_tables[3][512] __attribute__((aligned(4096)));

static void map_high(void)
{
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	volatile uint64_t *pml4 = (volatile uint64_t *)(cr3 & ~0xfffull);
	uint64_t *pdpt = hh_tables[0], *pd = hh_tables[1], *pt = hh_tables[2];
	pt[0] = (uint64_t)hh_code | PT_PRESENT_RW;
	pd[0] = (uint64_t)pt | PT_PRESENT_RW;
	pdpt[0] = (uint64_t)pd | PT_PRESENT_RW;
	pml4[(HH_VA >> 39) & 511] = (uint64_t)pdpt | PT_PRESENT_RW;
	__asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");
}

int main(void)
{
	map_high();
	printf("highhalf: hh_code at physical 0x%lx runs at 0x%llx\n", (unsigned long)hh_code,
	       HH_VA);
	for (int i = 0; i < HH_CALLS; i++)
		((void (*)(void))HH_VA)();
	printf("highhalf: %lu calls\n", (unsigned long)hh_calls);
	return hh_calls == HH_CALLS ? 0 : 1;
}
