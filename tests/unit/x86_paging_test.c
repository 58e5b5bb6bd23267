/* tests/unit/x86_paging_test.c — x86/paging.c's x86_paging_enum: every
 * leaf of hand-built page tables (4-level with 4 KiB, 2 MiB and 1 GiB
 * pages, 32-bit with a PSE-36 4 MiB page, PAE), in ascending order, with
 * the rights accumulated over the levels, each leaf agreeing with
 * x86_translate; paging off; a callback that ends the walk; tables that
 * map themselves without end. */
#include <errno.h>
#include <string.h>

#include "tests/unit/check.h"
#include "x86/desc.h"
#include "x86/paging.h"

#define MEM_SIZE 0x10000u
static uint8_t mem[MEM_SIZE];

static int read_phys(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	(void)opaque;
	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -EFAULT;
	memcpy(buf, mem + gpa, len);
	return 0;
}

static void put64(uint64_t at, uint64_t v) { memcpy(mem + at, &v, 8); }
static void put32(uint64_t at, uint32_t v) { memcpy(mem + at, &v, 4); }

#define MAX_LEAVES 16
struct leaves {
	unsigned n, stop_after;
	struct x86_mapping m[MAX_LEAVES];
};

static int collect(void *opaque, const struct x86_mapping *m)
{
	struct leaves *l = opaque;
	if (l->n < MAX_LEAVES)
		l->m[l->n] = *m;
	l->n++;
	return l->stop_after && l->n == l->stop_after ? 42 : 0;
}

/* Every leaf translates back through x86_translate, first and last byte. */
static void check_translate(const struct x86_sregs *s, const struct leaves *l)
{
	for (unsigned i = 0; i < l->n && i < MAX_LEAVES; i++) {
		uint64_t gpa = 0;
		CHECK(x86_translate(s, read_phys, NULL, l->m[i].va, &gpa) == 0, "leaf %u maps", i);
		CHECK_EQ_MSG(gpa, l->m[i].pa, "translate(first byte)");
		CHECK(x86_translate(s, read_phys, NULL, l->m[i].va + l->m[i].size - 1, &gpa) == 0,
		      "leaf %u's last byte maps", i);
		CHECK_EQ_MSG(gpa, l->m[i].pa + l->m[i].size - 1, "translate(last byte)");
	}
}

static void test_4level(void)
{
	memset(mem, 0, sizeof(mem));
	const uint64_t P = PTE_P, W = PTE_W, U = PTE_U;
	put64(0x1000 + 0 * 8, 0x2000 | P | W | U);           /* PML4[0] -> PDPT */
	put64(0x1000 + 511 * 8, 0x5000 | P | W);             /* PML4[511] -> PDPT, kernel */
	put64(0x2000 + 0 * 8, 0x3000 | P | W | U);           /* PDPT[0] -> PD */
	put64(0x3000 + 0 * 8, 0x40000000ull | P | W | PTE_PS | PTE_A | PTE_D);   /* 2 MiB */
	put64(0x3000 + 1 * 8, 0x4000 | P | U);               /* PD[1] -> PT, read-only */
	put64(0x4000 + 0 * 8, 0x7000 | P | W | U | PTE_G);   /* 4 KiB: W cleared by the PD */
	put64(0x4000 + 2 * 8, 0x8000 | P | U | PTE_NX);      /* PT[1] absent; NX page */
	put64(0x5000 + 510 * 8, 0x80000000ull | P | W | PTE_PS);   /* 1 GiB at -2 GiB */
	struct x86_sregs s = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PAE, .cr3 = 0x1000,
			       .efer = EFER_LME | EFER_LMA | EFER_NXE };
	struct leaves l = { 0 };
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &l), 0);
	CHECK_EQ(l.n, 4);
	CHECK_EQ(l.m[0].va, 0);
	CHECK_EQ(l.m[0].pa, 0x40000000);
	CHECK_EQ(l.m[0].size, X86_PAGE_SIZE_2M);
	CHECK(l.m[0].write && !l.m[0].user && l.m[0].accessed && l.m[0].dirty, "2 MiB rights");
	CHECK_EQ(l.m[1].va, 0x200000);
	CHECK_EQ(l.m[1].pa, 0x7000);
	CHECK_EQ(l.m[1].size, X86_PAGE_SIZE);
	CHECK(!l.m[1].write && l.m[1].user && l.m[1].global && !l.m[1].nx, "4 KiB rights");
	CHECK_EQ(l.m[2].va, 0x202000);
	CHECK(l.m[2].nx && !l.m[2].write, "NX page");
	CHECK_EQ(l.m[3].va, 0xffffffff80000000ull);           /* canonical */
	CHECK_EQ(l.m[3].pa, 0x80000000);
	CHECK_EQ(l.m[3].size, 0x40000000);
	CHECK(l.m[3].write && !l.m[3].user, "1 GiB rights");
	check_translate(&s, &l);

	struct leaves first2 = { .stop_after = 2 };
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &first2), 42);
	CHECK_EQ(first2.n, 2);
	s.cr0 = CR0_PE;
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &first2), -ENOENT);
}

static void test_32bit_pse(void)
{
	memset(mem, 0, sizeof(mem));
	put32(0x1000 + 0 * 4, 0x2000 | PTE_P | PTE_W);       /* PDE[0] -> PT */
	put32(0x2000 + 3 * 4, 0x9000 | PTE_P | PTE_U);       /* 4 KiB at 0x3000 */
	/* PDE[1]: 4 MiB page at physical 0x3_0040_0000 (PSE-36 bits 20:13) */
	put32(0x1000 + 1 * 4, 0x00400000u | (0x3u << 13) | PTE_P | PTE_W | PTE_PS);
	struct x86_sregs s = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PSE, .cr3 = 0x1000 };
	struct leaves l = { 0 };
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &l), 0);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(l.m[0].va, 0x3000);
	CHECK_EQ(l.m[0].pa, 0x9000);
	CHECK(!l.m[0].write && !l.m[0].user, "32-bit rights are the AND of both levels");
	CHECK_EQ(l.m[1].va, 0x400000);
	CHECK_EQ(l.m[1].pa, 0x300400000ull);
	CHECK_EQ(l.m[1].size, 0x400000);
	check_translate(&s, &l);
}

static void test_pae(void)
{
	memset(mem, 0, sizeof(mem));
	put64(0x1020 + 3 * 8, 0x2000 | PTE_P);                /* PDPTE[3] -> PD */
	put64(0x2000 + 511 * 8, 0x00600000 | PTE_P | PTE_W | PTE_PS);
	struct x86_sregs s = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PAE, .cr3 = 0x1020 };
	struct leaves l = { 0 };
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &l), 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(l.m[0].va, 0xffe00000);
	CHECK_EQ(l.m[0].pa, 0x600000);
	CHECK_EQ(l.m[0].size, X86_PAGE_SIZE_2M);
	check_translate(&s, &l);
}

/* Every PML4 entry names the PML4 itself: 512^4 leaves, legal for the
 * CPU; the enumeration gives up (-E2BIG) instead of running for hours. */
static void test_self_mapping(void)
{
	memset(mem, 0, sizeof(mem));
	for (unsigned i = 0; i < 512; i++)
		put64(0x1000 + i * 8, 0x1000 | PTE_P | PTE_W);
	struct x86_sregs s = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PAE, .cr3 = 0x1000,
			       .efer = EFER_LME | EFER_LMA };
	struct leaves l = { 0 };
	CHECK_EQ(x86_paging_enum(&s, read_phys, NULL, collect, &l), -E2BIG);
	CHECK(l.n > 0 && l.n < (1u << 24), "leaves before the budget ran out: %u", l.n);
	CHECK_EQ(l.m[1].va, 0x1000);
	CHECK_EQ(l.m[1].pa, 0x1000);
}

int main(void)
{
	test_self_mapping();
	test_4level();
	test_32bit_pse();
	test_pae();
	return check_summary("x86_paging_test");
}
