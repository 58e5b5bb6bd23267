/* guests/watch_pages.c — watch_pages.elf: targets for gdb's watch, rwatch
 * and awatch of every size and shape (tests/test_watch_pages.py), and the
 * check from inside that vmdb's handling of watched pages (page traps on
 * kvm) gave every access its right value.
 *
 * All watched data is in `wp`, three page-aligned pages. wp_sequence()
 * makes one access per labelled instruction; wp_after_X is the address
 * right after the access to X:
 *   lead (no watch, same page) then b1 (1 byte), w2 (2), d4 (4), q8 (8,
 *   written by MOVSQ), s16.a then s16.b (a 16-byte struct), buf[0] and
 *   buf[4] (next to the 3 bytes buf[1..3], no stop) then a 2-byte store
 *   on buf[3..4], cross (8 bytes over the page boundary) written whole,
 *   then only its last byte (second page), r8 written (no stop for a read
 *   watchpoint) then read, a4 read then written, and REP STOSB of 4 bytes
 *   from wp+0x3c whose last iteration writes pad0[11] (wp+0x3f).
 * Then, with --smp 4, the APs write percpu[id] one after the other (AP k
 * waits for wp_turn == k, in memory outside wp), at wp_after_percpu.
 * Last, the remap: WP_REMAP_VA (a PML4 slot of its own) maps page A;
 * wp_remap_ready(), a store of 1 to WP_REMAP_VA (wp_after_va_a), the page
 * now maps B (PTE and INVLPG), wp_remapped(), a store of 2 to A through its
 * own address (nothing watches that), a store of 3 to WP_REMAP_VA
 * (wp_after_va_b): a watchpoint on WP_REMAP_VA follows it to B.
 * Everything written is read back and checked; exit 0 when all is right.
 * The byte at wp+0x38, which only a debugger writes, is printed at the end. */
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define GDB_FN __attribute__((noinline, noclone, used))

struct wp_pair {
	uint64_t a, b;
};

struct wp_area {
	uint8_t lead;                 /* 0x000 */
	uint8_t b1;                   /* 0x001 */
	uint16_t w2;                  /* 0x002 */
	uint32_t d4;                  /* 0x004 */
	uint64_t q8;                  /* 0x008 */
	struct wp_pair s16;           /* 0x010 */
	uint8_t buf[8];               /* 0x020: gdb watches buf[1..3] */
	uint64_t r8;                  /* 0x028 */
	uint32_t a4;                  /* 0x030 */
	uint8_t pad0[0xffc - 0x034];
	uint8_t cross[8];             /* 0xffc: 4 bytes on each page */
	uint8_t pad1[0x2000 - 0x1004];
	uint64_t percpu[4];           /* 0x2000 */
	uint8_t pad2[0x3000 - 0x2020];
} __attribute__((packed));

struct wp_area wp __attribute__((aligned(4096))) = { .a4 = 0x1234 };
_Static_assert(sizeof(struct wp_area) == 0x3000, "wp is three pages");
const uint64_t wp_src __attribute__((used)) = 0x8877665544332211ull;
static volatile unsigned wp_turn;
uint64_t wp_r8_read, wp_a4_read;

GDB_FN void wp_start(void)
{
	__asm__ volatile("" ::: "memory");
}

#define AFTER(name) ".globl wp_after_" #name "\nwp_after_" #name ":\n"

GDB_FN void wp_sequence(void)
{
	__asm__ volatile(
		"movb $0x11, wp+0x0(%%rip)\n"
		"movb $0x22, wp+0x1(%%rip)\n" AFTER(b1)
		"movw $0x3344, wp+0x2(%%rip)\n" AFTER(w2)
		"movl $0x55667788, wp+0x4(%%rip)\n" AFTER(d4)
		"lea wp_src(%%rip), %%rsi\n"
		"lea wp+0x8(%%rip), %%rdi\n"
		"movsq\n" AFTER(q8)
		"movq $1, wp+0x10(%%rip)\n" AFTER(s16a)
		"movq $2, wp+0x18(%%rip)\n" AFTER(s16b)
		"movb $0x09, wp+0x20(%%rip)\n"
		"movb $0x0c, wp+0x24(%%rip)\n"
		"movw $0x0b0a, wp+0x23(%%rip)\n" AFTER(buf)
		"movabs $0x0807060504030201, %%rax\n"
		"movq %%rax, wp+0xffc(%%rip)\n" AFTER(cross)
		"movb $0x80, wp+0x1003(%%rip)\n" AFTER(cross2)
		"movq $0x77, wp+0x28(%%rip)\n"
		"movq wp+0x28(%%rip), %%rax\n" AFTER(r8)
		"movq %%rax, wp_r8_read(%%rip)\n"
		"movl wp+0x30(%%rip), %%eax\n" AFTER(a4r)
		"movq %%rax, wp_a4_read(%%rip)\n"
		"movl $0x99, wp+0x30(%%rip)\n" AFTER(a4w)
		"lea wp+0x3c(%%rip), %%rdi\n"
		"mov $4, %%ecx\n"
		"mov $5, %%al\n"
		"rep stosb\n" AFTER(rep)
		::: "rax", "rcx", "rsi", "rdi", "memory");
}

#define WP_REMAP_VA 0x8000000000ull        /* PML4 slot 1 */
#define PT_PW 0x3ull                        /* present, writable */

static uint64_t rm_pdpt[512] __attribute__((aligned(4096)));
static uint64_t rm_pd[512] __attribute__((aligned(4096)));
static uint64_t rm_pt[512] __attribute__((aligned(4096)));
static volatile uint64_t rm_a[512] __attribute__((aligned(4096)));
static volatile uint64_t rm_b[512] __attribute__((aligned(4096)));

GDB_FN void wp_remap_ready(void)
{
	__asm__ volatile("" ::: "memory");
}

GDB_FN void wp_remapped(void)
{
	__asm__ volatile("" ::: "memory");
}


static void remap_phase(void)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & ~0xfffull);
	rm_pt[0] = (uintptr_t)rm_a | PT_PW;
	rm_pd[0] = (uintptr_t)rm_pt | PT_PW;
	rm_pdpt[0] = (uintptr_t)rm_pd | PT_PW;
	pml4[(WP_REMAP_VA >> 39) & 511] = (uintptr_t)rm_pdpt | PT_PW;
	__asm__ volatile("mov %0, %%cr3" :: "r"(read_cr3()) : "memory");
	wp_remap_ready();
	__asm__ volatile("movq $1, (%0)\n" AFTER(va_a) :: "r"(WP_REMAP_VA) : "memory");
	rm_pt[0] = (uintptr_t)rm_b | PT_PW;
	__asm__ volatile("invlpg (%0)" :: "r"(WP_REMAP_VA) : "memory");
	wp_remapped();
	rm_a[0] = 2;
	__asm__ volatile("movq $3, (%0)\n" AFTER(va_b) :: "r"(WP_REMAP_VA) : "memory");
	expect_eq(rm_a[0], 2, "page A");
	expect_eq(rm_b[0], 3, "page B");
}

GDB_FN void wp_smp_phase(void)
{
	__asm__ volatile("" ::: "memory");
}

GDB_FN void percpu_write(void *arg)
{
	unsigned id = rt_cpu_id();
	(void)arg;
	if (id == 0 || id >= 4)
		return;
	while (wp_turn != id)
		__asm__ volatile("pause" ::: "memory");
	__asm__ volatile("movq %0, (%1)\n" AFTER(percpu)
			 :: "r"(0x100ull + id), "r"(&wp.percpu[id]) : "memory");
	wp_turn = id + 1;
}

static void check_sequence(void)
{
	static const uint8_t buf[8] = { 9, 0, 0, 0x0a, 0x0b, 0, 0, 0 };
	static const uint8_t cross[8] = { 1, 2, 3, 4, 5, 6, 7, 0x80 };
	expect_eq(wp.lead, 0x11, "lead");
	expect_eq(wp.b1, 0x22, "b1");
	expect_eq(wp.w2, 0x3344, "w2");
	expect_eq(wp.d4, 0x55667788, "d4");
	expect_eq(wp.q8, wp_src, "q8 (movsq)");
	expect_eq(wp.s16.a, 1, "s16.a");
	expect_eq(wp.s16.b, 2, "s16.b");
	for (unsigned i = 0; i < 8; i++)
		expect_eq(wp.buf[i], buf[i], "buf byte");
	for (unsigned i = 0; i < 8; i++)
		expect_eq(wp.cross[i], cross[i], "cross byte");
	expect_eq(wp.r8, 0x77, "r8");
	expect_eq(wp_r8_read, 0x77, "r8 as read");
	expect_eq(wp_a4_read, 0x1234, "a4 as read");
	expect_eq(wp.a4, 0x99, "a4");
	for (unsigned i = 8; i < 12; i++)
		expect_eq(wp.pad0[i], 5, "rep stosb byte");
}

int main(void)
{
	unsigned n = smp_ncpus();
	unsigned up = n > 1 ? smp_start_aps(n, 100000) : 1;
	wp_start();
	wp_sequence();
	check_sequence();
	wp_smp_phase();
	wp_turn = 1;
	smp_run_on_all(percpu_write, 0);
	for (unsigned id = 1; id < up && id < 4; id++)
		expect_eq(wp.percpu[id], 0x100 + id, "percpu");
	remap_phase();
	/* 0x5a when the debugger wrote it while the page was trapped */
	printf("watch_pages: %u CPUs, byte 0x38 0x%x\n", up, wp.pad0[0x38 - 0x34]);
	return report_summary();
}
