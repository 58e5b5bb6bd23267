/* guests/tlb_fill.c — tlb_fill.elf: loads, stores, read-modify-writes,
 * pushes and pops that miss the TLB leave the page tables and raise page
 * faults as the CPU does (on emu, where plain instructions run in blocks
 * and a miss is filled by the walk for the instruction's own handler):
 * a load sets the accessed bit and not the dirty one, a store and a
 * read-modify-write set both, a load from a page that is not present and
 * a store into a read-only one (CR0.WP) fault with their error codes and
 * CR2, and run once the handler has mended the entry. Each access runs
 * right after an INVLPG of its page, between plain instructions. */
#include "guests/rt/idt.h"
#include "guests/rt/paging.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define TVA 0x8000000000ull
#define TVA_PAGE(i) (TVA + (uint64_t)(i) * 4096)
#define PAGES 7

static uint64_t pml4[512] __attribute__((aligned(4096)));
static struct rt_low_map low_map __attribute__((aligned(4096)));
static uint64_t pdpt_t[512] __attribute__((aligned(4096)));
static uint64_t pd_t[512] __attribute__((aligned(4096)));
static uint64_t pt_t[512] __attribute__((aligned(4096)));
static uint8_t frames[PAGES][4096] __attribute__((aligned(4096)));

static volatile uint64_t fault_err, fault_cr2, faults;

static bool no_user_page(uint64_t addr) { (void)addr; return false; }

/* The fault's error code and address; the entry it faulted on gets what
 * it lacked (present, writable), and the access runs again. */
static void on_pf(struct rt_frame *f)
{
	fault_err = f->error_code;
	fault_cr2 = rt_pf_mend(pt_t, TVA, PAGES, f->error_code);
	faults++;
}

/* Page i mapped to its frame with the bits given, A and D clear. */
static void map(unsigned i, uint64_t bits)
{
	pt_t[i] = rt_pa(frames[i]) | bits;
	rt_invlpg(TVA_PAGE(i));
}

/* The accesses: after INVLPG (which ends a block on emu), a plain run
 * with the access in its middle. */
static uint64_t load(uint64_t va)
{
	uint64_t v;
	__asm__ volatile("invlpg (%1)\n\t"
			 "nop\n\t"
			 "movq 8(%1), %0\n\t"
			 "addq $1, %0"
			 : "=&r"(v) : "r"(va) : "cc", "memory");
	return v - 1;
}

static void store(uint64_t va, uint64_t v)
{
	__asm__ volatile("invlpg (%0)\n\t"
			 "nop\n\t"
			 "movq %1, 8(%0)\n\t"
			 "nop"
			 :: "r"(va), "r"(v) : "memory");
}

static void add_to(uint64_t va, uint64_t v)
{
	__asm__ volatile("invlpg (%0)\n\t"
			 "nop\n\t"
			 "addq %1, 8(%0)\n\t"
			 "nop"
			 :: "r"(va), "r"(v) : "cc", "memory");
}

/* PUSH onto and POP from a stack at the top of page va. */
static uint64_t push_pop(uint64_t va, uint64_t v)
{
	uint64_t out;
	__asm__ volatile("invlpg -8(%1)\n\t"
			 "movq %%rsp, %%r8\n\t"
			 "movq %1, %%rsp\n\t"
			 "pushq %2\n\t"
			 "invlpg (%%rsp)\n\t"
			 "nop\n\t"
			 "popq %0\n\t"
			 "movq %%r8, %%rsp"
			 : "=&r"(out) : "r"(va + 4096), "r"(v) : "r8", "memory");
	return out;
}

static uint64_t bits(unsigned i)
{
	return pt_t[i] & (PTE_A | PTE_D);
}

static void check_faultless(const char *name)
{
	expect_eq(faults, 0, name);
	faults = 0;
}

int main(void)
{
	pml4[0] = rt_low_map_build(&low_map, no_user_page);
	pml4[1] = rt_pa(pdpt_t) | PTE_P | PTE_W;
	pdpt_t[0] = rt_pa(pd_t) | PTE_P | PTE_W;
	pd_t[0] = rt_pa(pt_t) | PTE_P | PTE_W;
	__asm__ volatile("mov %0, %%cr3" :: "r"(rt_pa(pml4)) : "memory");
	uint64_t cr0;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" :: "r"(cr0 | (1ull << 16)) : "memory");   /* WP */
	idt_set_handler(14, on_pf);
	for (unsigned i = 0; i < PAGES; i++)
		((volatile uint64_t *)frames[i])[1] = 0x1000 + i;

	map(0, PTE_P | PTE_W);
	expect_eq(load(TVA_PAGE(0)), 0x1000, "load");
	expect_eq(bits(0), PTE_A, "a load sets A, not D");
	check_faultless("load: no fault");

	map(1, PTE_P | PTE_W);
	store(TVA_PAGE(1), 0x2001);
	expect_eq(((volatile uint64_t *)frames[1])[1], 0x2001, "store");
	expect_eq(bits(1), PTE_A | PTE_D, "a store sets A and D");
	check_faultless("store: no fault");

	map(2, PTE_P | PTE_W);
	add_to(TVA_PAGE(2), 5);
	expect_eq(((volatile uint64_t *)frames[2])[1], 0x1007, "read-modify-write");
	expect_eq(bits(2), PTE_A | PTE_D, "a read-modify-write sets A and D");
	check_faultless("read-modify-write: no fault");

	map(3, 0);
	expect_eq(load(TVA_PAGE(3)), 0x1003, "load after the fault");
	expect_eq(faults, 1, "load from a page not present: one #PF");
	expect_eq(fault_err, 0, "its error code: read, not present");
	expect_eq(fault_cr2, TVA_PAGE(3) + 8, "its CR2");
	expect_eq(bits(3), PTE_A, "then A, not D");
	faults = 0;

	map(4, PTE_P);
	store(TVA_PAGE(4), 0x2004);
	expect_eq(((volatile uint64_t *)frames[4])[1], 0x2004, "store after the fault");
	expect_eq(faults, 1, "store into a read-only page: one #PF");
	expect_eq(fault_err, 3, "its error code: write, present");
	expect_eq(fault_cr2, TVA_PAGE(4) + 8, "its CR2");
	faults = 0;

	map(5, 0);
	store(TVA_PAGE(5), 0x2005);
	expect_eq(faults, 1, "store into a page not present: one #PF");
	expect_eq(fault_err, 2, "its error code: write, not present");
	expect_eq(bits(5), PTE_A | PTE_D, "then A and D");
	faults = 0;

	map(6, PTE_P | PTE_W);
	expect_eq(push_pop(TVA_PAGE(6), 0x3006), 0x3006, "push and pop");
	expect_eq(bits(6), PTE_A | PTE_D, "a push sets A and D");
	check_faultless("push and pop: no fault");

	return report_summary();
}
