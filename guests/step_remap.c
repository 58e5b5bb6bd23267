/* guests/step_remap.c — step_remap.elf: code whose page the debugger remaps
 * between two steps (the step engine caches virtual-to-physical
 * translations of the stepped code and must drop them when gdb writes
 * guest memory, page tables included).
 *
 * The guest maps one 4 KiB page at REMAP_VA (a PML4 slot of its own, so
 * the boot identity map is untouched) to page A, and keeps page B beside
 * it. Both hold the same four bytes but one:
 *   A: nop; push %rax; pop %rax; ret      rax comes back unchanged
 *   B: nop; pushfq;    pop %rax; ret      rax comes back as an RFLAGS image
 * It calls REMAP_VA with RFLAGS = KNOWN | IF and rax = SENTINEL and prints
 * what came back. Nobody attached: A runs, "remap: rax 0x5e5e...". IF is
 * set so that the image needs the step engine when it masks IF while
 * stepping (`monitor sstep irqblock mask-if`); no interrupt is armed.
 *
 * gdb: `break step_remap_call`, `stepi` twice (the call, then the NOP at
 * REMAP_VA: the step engine has translated the page through A), then
 * `set *step_remap_pte = step_remap_pte_b` (the page now maps B), `stepi`
 * over B's PUSHFQ, `continue`. The step engine must decode the PUSHFQ it
 * now finds through the new mapping and fix its image: the guest prints
 * KNOWN | IF, not the engine's KNOWN. (An engine whose TLB keeps the old
 * translation, as a CPU may without INVLPG, runs A: the sentinel.) */
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define PAGE 4096
#define REMAP_VA 0x8000000000ull            /* PML4 slot 1 */
#define PML4_INDEX(va) (((va) >> 39) & 511)
#define PT_P 0x1ull
#define PT_W 0x2ull
#define KNOWN (RFLAGS_FIXED1 | RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF | RFLAGS_SF)
#define SENTINEL 0x5e5e5e5e5e5e5e5eull

/* nop; push %rax / pushfq; pop %rax; ret */
static const uint8_t code_a[] = { 0x90, 0x50, 0x58, 0xc3 };
static const uint8_t code_b[] = { 0x90, 0x9c, 0x58, 0xc3 };

static uint64_t pdpt[512] __attribute__((aligned(PAGE)));
static uint64_t pd[512] __attribute__((aligned(PAGE)));
static uint64_t pt[512] __attribute__((aligned(PAGE)));
static uint8_t page_a[PAGE] __attribute__((aligned(PAGE)));
static uint8_t page_b[PAGE] __attribute__((aligned(PAGE)));

/* For gdb: where the PTE of REMAP_VA is, and the value that maps page B. */
volatile uint64_t *volatile step_remap_pte;
volatile uint64_t step_remap_pte_b;

static void map_page(void)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & ~(uint64_t)(PAGE - 1));
	for (unsigned i = 0; i < sizeof(code_a); i++) {
		page_a[i] = code_a[i];
		page_b[i] = code_b[i];
	}
	pt[0] = (uintptr_t)page_a | PT_P | PT_W;
	pd[0] = (uintptr_t)pt | PT_P | PT_W;
	pdpt[0] = (uintptr_t)pd | PT_P | PT_W;
	pml4[PML4_INDEX(REMAP_VA)] = (uintptr_t)pdpt | PT_P | PT_W;
	step_remap_pte = &pt[0];
	step_remap_pte_b = (uintptr_t)page_b | PT_P | PT_W;
	__asm__ volatile("mov %0, %%cr3" :: "r"(read_cr3()) : "memory");
}

static uint64_t call_remapped(void)
{
	uint64_t rax = SENTINEL;
	__asm__ volatile("push %[k]\n popfq\n"
			 ".globl step_remap_call\n"
			 "step_remap_call:\n"
			 "call *%[va]\n"
			 "cli\n"
			 : "+a"(rax) : [k] "i"(KNOWN | RFLAGS_IF), [va] "r"(REMAP_VA)
			 : "memory", "cc");
	return rax;
}

int main(void)
{
	map_page();
	uint64_t rax = call_remapped();
	printf("remap: rax 0x%lx\n", (unsigned long)rax);
	/* A (nobody remapped) gives the sentinel back, B the image */
	expect_eq(rax == SENTINEL || rax == (KNOWN | RFLAGS_IF), 1,
		  "rax is the sentinel or the pushfq image");
	return report_summary();
}
