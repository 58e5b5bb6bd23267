/* tests/unit/x86_seg_load_test.c — x86/seg_load.c: the hidden part of a
 * segment register after a debugger writes its selector, in real,
 * virtual-8086, protected and 64-bit mode, and every refusal. The GDT and
 * LDT are arrays read through a fake guest memory. */
#include <string.h>

#include "tests/unit/check.h"
#include "x86/desc.h"
#include "x86/seg_load.h"

#define GDT_BASE 0x1000
#define LDT_BASE 0x2000
#define FLAG_L  0x2
#define FLAG_DB 0x4
#define FLAG_G  0x8

/* A descriptor from its fields (SDM vol. 3 figure 3-8). */
static uint64_t desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | ((uint64_t)access << 40) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) | ((uint64_t)flags << 52) |
	       ((uint64_t)(base >> 24) << 56);
}

static uint64_t gdt[8], ldt[1];

static void tables(void)
{
	gdt[0] = 0;
	gdt[1] = desc(0, 0xfffff, 0x9b, FLAG_L | FLAG_G);                /* 0x08 code64 */
	gdt[2] = desc(0x12345000, 0xfffff, 0x93, FLAG_DB | FLAG_G);      /* 0x10 data */
	gdt[3] = desc(0x1000, 0xffff, 0x9b, FLAG_DB);                    /* 0x18 code32 */
	gdt[4] = desc(0x5000, 0x67, 0x89, 0);                            /* 0x20 TSS */
	gdt[5] = desc(0, 0xfffff, 0x13, FLAG_G);                         /* 0x28 not present */
	gdt[6] = desc(0, 0xfffff, 0x99, FLAG_G);                         /* 0x30 execute-only */
	gdt[7] = desc(0, 0xfffff, 0x91, FLAG_G);                         /* 0x38 read-only data */
	ldt[0] = desc(0x7000, 0xfff, 0xf3, 0);                           /* 0x04|3 data DPL 3 */
}

/* Guest memory: the two tables, nothing else. */
static int fake_read(void *ctx, uint64_t linear, uint64_t *out)
{
	(void)ctx;
	if (linear >= GDT_BASE && linear + 8 <= GDT_BASE + sizeof(gdt) && !(linear & 7)) {
		*out = gdt[(linear - GDT_BASE) / 8];
		return 0;
	}
	if (linear == LDT_BASE) {
		*out = ldt[0];
		return 0;
	}
	return -EFAULT;
}

static struct x86_sregs prot32(void)
{
	struct x86_sregs s = { 0 };
	s.cr0 = CR0_PE;
	s.cs = (struct x86_segment){ .selector = 0x18, .db = 1, .s = 1, .type = 0xb, .present = 1 };
	s.gdt = (struct x86_dtable){ GDT_BASE, sizeof(gdt) - 1 };
	s.ldt.unusable = 1;
	return s;
}

static struct x86_sregs long64(void)
{
	struct x86_sregs s = prot32();
	s.efer = EFER_LME | EFER_LMA;
	s.cs.l = 1;
	s.cs.db = 0;
	return s;
}

static int load(const struct x86_sregs *s, uint64_t rflags, enum x86_seg_reg reg, uint16_t sel,
		struct x86_segment *seg, struct err *e)
{
	memset(e, 0, sizeof(*e));
	return x86_seg_load(s, rflags, reg, sel, fake_read, NULL, seg, e);
}

static void test_real_mode(void)
{
	struct x86_sregs s = { 0 };
	struct err e;
	/* unreal mode: a 4 GiB limit left by protected mode survives the load */
	struct x86_segment ds = { .selector = 0, .limit = 0xffffffff, .type = 3, .s = 1,
				  .present = 1 };
	CHECK_EQ(load(&s, 0x2, X86_SEG_DS, 0x1000, &ds, &e), 0);
	CHECK_EQ(ds.base, 0x10000);
	CHECK_EQ(ds.selector, 0x1000);
	CHECK_EQ(ds.limit, 0xffffffff);
	struct x86_segment cs = { .selector = 0xf000, .base = 0xffff0000, .limit = 0xffff,
				  .type = 0xb, .s = 1, .present = 1 };
	CHECK_EQ(load(&s, 0x2, X86_SEG_CS, 0x07c0, &cs, &e), 0);
	CHECK_EQ(cs.base, 0x7c00);
	CHECK_EQ(cs.type, 0xb);
}

static void test_v86_mode(void)
{
	struct x86_sregs s = prot32();
	struct err e;
	struct x86_segment seg = { 0 };
	CHECK_EQ(load(&s, RFLAGS_VM | 0x2, X86_SEG_ES, 0xb800, &seg, &e), 0);
	CHECK_EQ(seg.base, 0xb8000);
	CHECK_EQ(seg.limit, 0xffff);
	CHECK_EQ(seg.dpl, 3);
	CHECK_EQ(seg.type, SEG_TYPE_DATA_RW_ACCESSED);
	CHECK(seg.present && seg.s && !seg.unusable && !seg.db, "v86 data segment attributes");
	CHECK_EQ(load(&s, RFLAGS_VM | 0x2, X86_SEG_CS, 0x1234, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x12340);
	CHECK_EQ(seg.type, SEG_TYPE_CODE_XR_ACCESSED);
}

static void test_protected_mode(void)
{
	struct x86_sregs s = prot32();
	struct err e;
	struct x86_segment seg = { 0 };
	CHECK_EQ(load(&s, 0x2, X86_SEG_DS, 0x10, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x12345000);
	CHECK_EQ(seg.limit, 0xffffffff);
	CHECK_EQ(seg.type, 0x3);
	CHECK(seg.db && seg.g && seg.present && !seg.unusable, "flat data attributes");
	CHECK_EQ(load(&s, 0x2, X86_SEG_SS, 0x13, &seg, &e), 0);
	CHECK_EQ(seg.selector, 0x13);
	CHECK_EQ(load(&s, 0x2, X86_SEG_CS, 0x18, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x1000);
	CHECK_EQ(seg.limit, 0xffff);
	/* a readable code segment may be loaded into a data register */
	CHECK_EQ(load(&s, 0x2, X86_SEG_FS, 0x18, &seg, &e), 0);
	CHECK_EQ(load(&s, 0x2, X86_SEG_ES, 0x38, &seg, &e), 0);
}

static void test_ldt(void)
{
	struct x86_sregs s = prot32();
	struct err e;
	struct x86_segment seg = { 0 };
	CHECK(load(&s, 0x2, X86_SEG_DS, 0x07, &seg, &e) < 0 && strstr(e.msg, "no LDT"),
	      "LDT selector without an LDT: %s", e.msg);
	s.ldt = (struct x86_segment){ .base = LDT_BASE, .limit = 7, .present = 1, .type = 2 };
	CHECK_EQ(load(&s, 0x2, X86_SEG_DS, 0x07, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x7000);
	CHECK_EQ(seg.limit, 0xfff);
	CHECK_EQ(seg.dpl, 3);
	CHECK(load(&s, 0x2, X86_SEG_DS, 0x0f, &seg, &e) < 0 && strstr(e.msg, "LDT limit"),
	      "beyond the LDT: %s", e.msg);
}

static void test_null_selectors(void)
{
	struct x86_sregs p = prot32(), l = long64();
	struct err e;
	struct x86_segment seg = { .base = 0xffff888000000000ull, .selector = 0x10, .present = 1 };
	CHECK(load(&p, 0x2, X86_SEG_CS, 0, &seg, &e) < 0 && strstr(e.msg, "cs cannot hold"),
	      "null cs: %s", e.msg);
	CHECK(load(&p, 0x2, X86_SEG_SS, 3, &seg, &e) < 0 && strstr(e.msg, "outside 64-bit"),
	      "null ss in protected mode: %s", e.msg);
	CHECK_EQ(seg.selector, 0x10);                    /* untouched on refusal */
	CHECK_EQ(load(&l, 0x2, X86_SEG_SS, 0, &seg, &e), 0);
	CHECK(seg.unusable, "null ss in 64-bit mode is unusable");
	seg.base = 0xffff888000000000ull;
	CHECK_EQ(load(&l, 0x2, X86_SEG_GS, 0, &seg, &e), 0);
	CHECK(seg.unusable, "null gs is unusable");
	CHECK_EQ(seg.base, 0xffff888000000000ull);       /* the MSR-set base stays */
	CHECK_EQ(load(&p, 0x2, X86_SEG_DS, 0, &seg, &e), 0);
	CHECK_EQ(seg.base, 0);
}

static void test_refusals(void)
{
	struct x86_sregs s = prot32();
	struct err e;
	struct x86_segment seg = { .selector = 0x10, .base = 0x42 };
	static const struct {
		enum x86_seg_reg reg;
		uint16_t sel;
		const char *why;
	} bad[] = {
		{ X86_SEG_DS, 0x40, "beyond the GDT limit" },
		{ X86_SEG_DS, 0x20, "system descriptor" },
		{ X86_SEG_CS, 0x10, "cs needs code" },
		{ X86_SEG_SS, 0x08, "ss needs one" },
		{ X86_SEG_SS, 0x38, "ss needs one" },
		{ X86_SEG_DS, 0x30, "execute-only" },
		{ X86_SEG_DS, 0x28, "not present" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = load(&s, 0x2, bad[i].reg, bad[i].sel, &seg, &e);
		CHECK(r < 0 && strstr(e.msg, bad[i].why), "selector 0x%x: %d \"%s\"", bad[i].sel,
		      r, e.msg);
		CHECK_EQ(seg.base, 0x42);
	}
	s.gdt.base = 0x9000;                              /* unreadable */
	CHECK(load(&s, 0x2, X86_SEG_DS, 0x10, &seg, &e) == -EFAULT &&
	      strstr(e.msg, "cannot read"), "unreadable GDT: %s", e.msg);
}

static void test_long_mode_fs(void)
{
	struct x86_sregs s = long64();
	struct err e;
	struct x86_segment fs = { .base = 0x7fff12340000ull };
	/* MOV FS in 64-bit mode loads the descriptor's 32-bit base */
	CHECK_EQ(load(&s, 0x2, X86_SEG_FS, 0x10, &fs, &e), 0);
	CHECK_EQ(fs.base, 0x12345000);
	CHECK_EQ(load(&s, 0x2, X86_SEG_CS, 0x08, &fs, &e), 0);
	CHECK(fs.l && !fs.db, "64-bit code segment");
}

/* TR and LDTR (x86_sys_seg_load): a TSS or LDT descriptor of the GDT,
 * 16 bytes wide in IA-32e mode. */
static void test_system_segments(void)
{
	struct x86_sregs s = prot32();
	struct x86_segment seg = { 0 };
	struct err e = { 0 };
	CHECK_EQ(x86_sys_seg_load(&s, false, 0x20, fake_read, NULL, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x5000);
	CHECK_EQ(seg.limit, 0x67);
	CHECK_EQ(seg.type, SYS_TYPE_TSS_AVAIL);
	CHECK(x86_sys_seg_load(&s, true, 0x20, fake_read, NULL, &seg, &e) < 0 &&
	      strstr(e.msg, "no LDT descriptor"), "TSS for LDTR: %s", e.msg);
	CHECK(x86_sys_seg_load(&s, false, 0x10, fake_read, NULL, &seg, &e) < 0 &&
	      strstr(e.msg, "no TSS descriptor"), "data segment for TR: %s", e.msg);
	CHECK(x86_sys_seg_load(&s, false, 0, fake_read, NULL, &seg, &e) < 0, "null TR");
	CHECK(x86_sys_seg_load(&s, false, 0x24, fake_read, NULL, &seg, &e) < 0 &&
	      strstr(e.msg, "LDT, not the GDT"), "TR from the LDT: %s", e.msg);
	CHECK_EQ(x86_sys_seg_load(&s, true, 0, fake_read, NULL, &seg, &e), 0);
	CHECK(seg.unusable, "null LDTR is unusable");
	s = long64();
	CHECK_EQ(x86_sys_seg_load(&s, false, 0x20, fake_read, NULL, &seg, &e), 0);
	CHECK_EQ(seg.base, 0x0000ffff00005000ull);       /* bits 63:32 from the next 8 bytes */
	s.gdt.limit = 0x27;                                /* the upper half beyond the limit */
	CHECK(x86_sys_seg_load(&s, false, 0x20, fake_read, NULL, &seg, &e) < 0 &&
	      strstr(e.msg, "beyond the GDT limit"), "16-byte TSS past the limit: %s", e.msg);
}

int main(void)
{
	tables();
	test_system_segments();
	test_real_mode();
	test_v86_mode();
	test_protected_mode();
	test_ldt();
	test_null_selectors();
	test_refusals();
	test_long_mode_fs();
	return check_summary("x86_seg_load_test");
}
