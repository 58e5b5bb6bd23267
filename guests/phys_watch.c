/* guests/phys_watch.c — phys_watch.elf: one guest-physical page (pw_frame)
 * under several linear addresses, for gdb's physical watchpoints
 * (`monitor phys on`, tests/test_phys_watch.py).
 *
 * PML4 slot 1 (PW_VA) maps, in 4 KiB pages: PW_VA + 0x0000 (alias A) and
 * PW_VA + 0x1000 (alias B) to pw_frame, PW_VA + 0x2000 to pw_other, and
 * PW_VA + 0x3000 (alias C) to pw_frame again, so that a store ending past
 * PW_VA + 0x2fff goes on into pw_frame. The guest runs identity-mapped
 * (rt_pa), so pw_frame's own address is a fourth alias.
 *
 * pw_sequence() makes one access of pw_frame's first qword per labelled
 * instruction; pw_after_X is the address right after it:
 *   a      store 0x1111 through alias A
 *   b      store 0x2222 through alias B
 *   read   load through alias B (into pw_read)
 *   cross  an 8-byte store at PW_VA + 0x2ffc: 4 bytes into pw_other, 4
 *          into pw_frame through alias C (two physical pieces)
 *   rep    REP MOVSB of 5 bytes to PW_VA + 0x2ffc: 4 iterations into
 *          pw_other, the last one into pw_frame's byte 0
 *   ident  store 0x5555 through pw_frame's own address
 *   hot    pw_hot_store(), which stored 0x7000 + i through alias B a
 *          thousand times before pw_start (emu translates it into host
 *          code, its page slot on alias B's page), stores 0x7000 once more
 * Then every value is checked from inside; exit 0 when all is right. */
#include "guests/rt/io.h"
#include "guests/rt/paging.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define GDB_FN __attribute__((noinline, noclone, used))
#define PW_VA 0x8000000000ull            /* PML4 slot 1 */

uint64_t pw_frame[512] __attribute__((aligned(4096)));
uint8_t pw_other[4096] __attribute__((aligned(4096)));
static uint64_t pw_pdpt[512] __attribute__((aligned(4096)));
static uint64_t pw_pd[512] __attribute__((aligned(4096)));
static uint64_t pw_pt[512] __attribute__((aligned(4096)));
const uint8_t pw_src[5] = { 0xa1, 0xa2, 0xa3, 0xa4, 0x99 };
uint64_t pw_read;

GDB_FN void pw_start(void)
{
	__asm__ volatile("" ::: "memory");
}

#define AFTER(name) ".globl pw_after_" #name "\npw_after_" #name ":\n"

GDB_FN void pw_hot_store(uint64_t *p, uint64_t v)
{
	__asm__ volatile("movq %1, (%0)\n" AFTER(hot) :: "r"(p), "r"(v) : "memory");
}

static void pw_hot(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pw_hot_store((uint64_t *)(PW_VA + 0x1000), 0x7000 + i);
}

GDB_FN void pw_sequence(void)
{
	__asm__ volatile(
		"movq $0x1111, (%[a])\n" AFTER(a)
		"movq $0x2222, (%[b])\n" AFTER(b)
		"movq (%[b]), %%rax\n" AFTER(read)
		"movq %%rax, pw_read(%%rip)\n"
		"movabs $0x4433221188776655, %%rax\n"
		"movq %%rax, (%[c])\n" AFTER(cross)
		"lea pw_src(%%rip), %%rsi\n"
		"mov %[c], %%rdi\n"
		"mov $5, %%ecx\n"
		"rep movsb\n" AFTER(rep)
		"movq $0x5555, (%[id])\n" AFTER(ident)
		:: [a] "r"(PW_VA), [b] "r"(PW_VA + 0x1000), [c] "r"(PW_VA + 0x2ffc),
		   [id] "r"(pw_frame)
		: "rax", "rcx", "rsi", "rdi", "memory");
}

static void map_aliases(void)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & ~0xfffull);
	pw_pt[0] = rt_pa(pw_frame) | PTE_P | PTE_W;
	pw_pt[1] = rt_pa(pw_frame) | PTE_P | PTE_W;
	pw_pt[2] = rt_pa(pw_other) | PTE_P | PTE_W;
	pw_pt[3] = rt_pa(pw_frame) | PTE_P | PTE_W;
	pw_pd[0] = rt_pa(pw_pt) | PTE_P | PTE_W;
	pw_pdpt[0] = rt_pa(pw_pd) | PTE_P | PTE_W;
	pml4[(PW_VA >> 39) & 511] = rt_pa(pw_pdpt) | PTE_P | PTE_W;
	for (unsigned i = 0; i < 4; i++)
		rt_invlpg(PW_VA + i * 0x1000ull);
}

int main(void)
{
	map_aliases();
	pw_hot(1000);
	expect_eq(pw_frame[0], 0x7000 + 999, "the hot stores through alias B");
	pw_start();
	pw_sequence();
	pw_hot(1);
	expect_eq(pw_read, 0x2222, "read through alias B: alias A's and B's stores");
	expect_eq(pw_frame[0], 0x7000, "the frame's qword at the end");
	for (unsigned i = 0; i < 4; i++)
		expect_eq(pw_other[0xffc + i], pw_src[i], "REP MOVSB bytes in the other page");
	uint64_t *c = (uint64_t *)(PW_VA + 0x3000);
	expect_eq(*c, 0x7000, "alias C sees the frame");
	printf("phys_watch: frame 0x%lx\n", (unsigned long)rt_pa(pw_frame));
	return report_summary();
}
