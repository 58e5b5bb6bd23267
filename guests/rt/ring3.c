/* guests/rt/ring3.c — the flat ring 3 of ring3.h. */
#include "guests/rt/ring3.h"

#include <stdint.h>

#include "guests/rt/desc.h"
#include "guests/rt/paging.h"
#include "guests/rt/string.h"
#include "x86/x86.h"

#define RING3_GIB        4
#define GDT_UDATA        0x00cff3000000ffffull   /* data, DPL 3, 4 GiB flat, writable */
#define GDT_UCODE64      0x00affb000000ffffull   /* code, DPL 3, L=1 */
#define RT_GDT_RUNTIME   4                       /* the runtime's own entries, kept */

static uint64_t ring3_gdt[8] __attribute__((aligned(16)));
static struct rt_tss64 ring3_tss __attribute__((aligned(16)));
static uint8_t ring3_kstack[16384] __attribute__((aligned(16)));
static uint64_t ring3_pml4[512] __attribute__((aligned(4096)));
static uint64_t ring3_pdpt[512] __attribute__((aligned(4096)));
static uint64_t ring3_pd[RING3_GIB][512] __attribute__((aligned(4096)));

static void ring3_paging(void)
{
	for (unsigned g = 0; g < RING3_GIB; g++) {
		for (unsigned i = 0; i < 512; i++)
			ring3_pd[g][i] = ((uint64_t)g << 30) + i * PAGE_2M +
					 (PTE_P | PTE_W | PTE_U | PTE_PS);
		ring3_pdpt[g] = (uint64_t)(uintptr_t)ring3_pd[g] | PTE_P | PTE_W | PTE_U;
	}
	ring3_pml4[0] = (uint64_t)(uintptr_t)ring3_pdpt | PTE_P | PTE_W | PTE_U;
	uint64_t cr4;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	cr4 &= ~(CR4_SMEP | CR4_SMAP);
	__asm__ volatile("mov %0, %%cr4" :: "r"(cr4) : "memory");
	__asm__ volatile("mov %0, %%cr3" :: "r"((uint64_t)(uintptr_t)ring3_pml4) : "memory");
}

static void ring3_gdt_tss(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	memcpy(ring3_gdt, (const void *)(uintptr_t)gdtr.base, RT_GDT_RUNTIME * sizeof(uint64_t));
	ring3_gdt[RT_SEL_UDATA / 8] = GDT_UDATA;
	ring3_gdt[RT_SEL_UCODE / 8] = GDT_UCODE64;
	ring3_tss.rsp[0] = (uint64_t)(uintptr_t)(ring3_kstack + sizeof(ring3_kstack));
	ring3_tss.iomap_base = sizeof(ring3_tss);
	rt_tss_descriptor(&ring3_gdt[RT_SEL_TSS / 8], (uint64_t)(uintptr_t)&ring3_tss,
			  sizeof(ring3_tss) - 1);
	gdtr.limit = sizeof(ring3_gdt) - 1;
	gdtr.base = (uint64_t)(uintptr_t)ring3_gdt;
	__asm__ volatile("lgdt %0\n\tltr %w1" :: "m"(gdtr), "r"(RT_SEL_TSS) : "memory");
}

void rt_ring3_setup(void)
{
	ring3_paging();
	ring3_gdt_tss();
}
