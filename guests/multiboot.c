/* guests/multiboot.c — multiboot.elf: checks the Multiboot v1 entry, the
 * information structure, fw_cfg, then masks the PIC, switches to x2APIC
 * and starts the APs with INIT + SIPI to a trampoline at physical 0.
 *
 * Command line: "expect_cpus=N expect_mem=SIZE expect_initrd=0|1
 * [initrd_size=BYTES]". A leading kernel path (what QEMU passes) is
 * skipped; vmdb passes --cmdline as is. Every field kvm-unit-tests reads
 * is checked whatever the flags say (mods_count must be 0 without modules). */
#include "guests/rt/apic.h"
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/fwcfg.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"

#define MB_AP_TIMEOUT_MS 30000
#define INITRD_MAGIC "VMDB-INITRD"
#define MEM_SLACK (4ull << 20)      /* a VMM may keep a few MiB at the top */

/* GDT descriptor fields */
#define DESC_P  (1ull << 47)
#define DESC_S  (1ull << 44)
#define DESC_X  (1ull << 43)
#define DESC_W  (1ull << 41)        /* writable (data) / readable (code) */
#define DESC_DB (1ull << 54)
#define DESC_G  (1ull << 55)

static const struct rt_entry_state *es = &rt_entry_state;

static uint64_t desc_base(uint64_t d)
{
	return ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
}

static uint64_t desc_limit(uint64_t d)
{
	uint64_t l = (d & 0xffff) | (((d >> 48) & 0xf) << 16);

	return d & DESC_G ? l << 12 | 0xfff : l;
}

static void check_segment(const char *name, uint16_t sel, bool code)
{
	char what[64];
	uint64_t d;
	uint64_t want = DESC_P | DESC_S | DESC_DB | DESC_W | (code ? DESC_X : 0);

	if ((sel & ~7u) + 8 > RT_ES_GDT_COPY_LEN || (sel & ~7u) + 7 > es->gdt_limit || !(sel & ~7u)) {
		snprintf(what, sizeof(what), "%s flat", name);
		report_skip(what, "selector outside the copied GDT");
		return;
	}
	memcpy(&d, es->gdt_copy + (sel & ~7u), 8);
	snprintf(what, sizeof(what), "%s (0x%x) base 0, limit 4 GiB", name, sel);
	expect(desc_base(d) == 0 && desc_limit(d) == 0xffffffff, what);
	snprintf(what, sizeof(what), "%s (0x%x) 32-bit %s", name, sel, code ? "code" : "data");
	expect_eq(d & (DESC_P | DESC_S | DESC_DB | DESC_W | DESC_X), want, what);
}

static void check_entry(void)
{
	expect_eq((uint32_t)es->ax, MULTIBOOT_BOOTLOADER_MAGIC, "EAX = 0x2BADB002");
	expect_eq(es->cr0 & (CR0_PE | CR0_PG), CR0_PE, "CR0.PE = 1, CR0.PG = 0");
	expect_eq(es->flags & (RFLAGS_IF | RFLAGS_VM), 0, "EFLAGS.IF = 0, VM = 0");
	check_segment("CS", es->cs, true);
	check_segment("DS", es->ds, false);
	check_segment("ES", es->es, false);
	check_segment("SS", es->ss, false);
}

static void check_memory(const struct mb_info *mbi, uint64_t mem)
{
	expect(mbi->flags & MB_INFO_MEM, "flags: mem_lower/mem_upper");
	printf("mem_lower %u KiB, mem_upper %u KiB\n", mbi->mem_lower, mbi->mem_upper);
	expect(mbi->mem_lower >= 512 && mbi->mem_lower <= 640, "mem_lower 512..640 KiB");
	if (!mem)
		return;
	uint64_t upper = (uint64_t)mbi->mem_upper << 10;
	expect(upper + (1 << 20) <= mem && upper + (1 << 20) + MEM_SLACK >= mem,
	       "mem_upper + 1 MiB = expect_mem (within 4 MiB)");
}

static void check_mmap(const struct mb_info *mbi, uint64_t mem)
{
	uint32_t off = 0;
	uint64_t ram = 0;
	bool types = true, low = false, high = false;

	expect(mbi->flags & MB_INFO_MMAP, "flags: mmap");
	if (!expect(mbi->mmap_addr && mbi->mmap_length >= 24, "mmap present"))
		return;
	while (off + 24 <= mbi->mmap_length) {
		const struct mb_mmap_entry *e = (const void *)(uintptr_t)(mbi->mmap_addr + off);
		printf("mmap: 0x%lx + 0x%lx type %u\n", (unsigned long)e->addr, (unsigned long)e->len, e->type);
		types &= e->type >= 1 && e->type <= 5 && e->size >= 20;
		if (e->type == 1) {
			ram += e->len;
			low |= e->addr == 0;
			high |= e->addr <= 0x100000 && e->addr + e->len > 0x100000;
		}
		if (e->size < 20)
			break;
		off += e->size + 4;
	}
	expect(types, "mmap entry types 1..5, size >= 20");
	expect(low, "mmap: RAM at 0");
	expect(high, "mmap: RAM at 1 MiB");
	if (mem)
		expect(ram <= mem && ram + (1 << 20) + MEM_SLACK >= mem, "mmap RAM adds up to expect_mem");
}

static uint32_t fnv1a(const uint8_t *p, size_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void check_modules(const struct mb_info *mbi)
{
	uint64_t want = cmdline_u64("expect_initrd", 0);

	if (want)
		expect(mbi->flags & MB_INFO_MODS, "flags: mods");
	if (!expect_eq(mbi->mods_count, want, "mods_count") || !want)
		return;
	const struct mb_module *m = (const void *)(uintptr_t)mbi->mods_addr;
	uint32_t size = m->mod_end - m->mod_start;
	const uint8_t *data = (const void *)(uintptr_t)m->mod_start;
	if (!expect(m->mod_end > m->mod_start, "module end > start"))
		return;
	expect_eq(m->mod_start & 0xfff, 0, "module page-aligned (header flag 0)");
	expect(size >= sizeof(INITRD_MAGIC) - 1 && memcmp(data, INITRD_MAGIC, sizeof(INITRD_MAGIC) - 1) == 0,
	       "module starts with VMDB-INITRD");
	printf("initrd at 0x%x, %u bytes, fnv1a 0x%08x, string '%s'\n", m->mod_start, size,
	       fnv1a(data, size), m->string ? (const char *)(uintptr_t)m->string : "");
	if (cmdline_get("initrd_size"))
		expect_eq(size, cmdline_u64("initrd_size", 0), "module size = initrd_size");
}

static void check_info(uint64_t mem)
{
	const struct mb_info *mbi = rt_boot.mbi;

	if (!expect(mbi != NULL, "EBX points to the multiboot info"))
		return;
	printf("multiboot info at %p, flags 0x%x\n", (const void *)mbi, mbi->flags);
	check_memory(mbi, mem);
	expect((mbi->flags & MB_INFO_CMDLINE) && mbi->cmdline, "flags: cmdline, non-NULL");
	printf("cmdline: '%s'\n", mbi->cmdline ? (const char *)(uintptr_t)mbi->cmdline : "");
	check_modules(mbi);
	check_mmap(mbi, mem);
}

static void check_fwcfg(uint64_t cpus, uint64_t mem)
{
	if (!expect(fwcfg_present(), "fw_cfg signature QEMU"))
		return;
	if (cpus)
		expect_eq(fwcfg_read_u64(FW_CFG_NB_CPUS, 2), cpus, "fw_cfg nb_cpus = expect_cpus");
	if (mem)
		expect_eq(fwcfg_read_u64(FW_CFG_RAM_SIZE, 8), mem, "fw_cfg ram_size = expect_mem");
}

static void check_smp(uint64_t cpus)
{
	expect_eq(inb(0x21) & inb(0xa1), 0xff, "8259 PIC masked");
	if (!expect(apic_enable_x2apic(), "x2APIC available (CPUID.1:ECX.21)"))
		return;
	apic_init();
	expect((rdmsr(MSR_IA32_APIC_BASE) & (APIC_BASE_EN | APIC_BASE_EXTD | APIC_BASE_BSP)) ==
	       (APIC_BASE_EN | APIC_BASE_EXTD | APIC_BASE_BSP), "IA32_APIC_BASE: enabled, x2APIC, BSP");
	unsigned want = cpus ? (unsigned)cpus : smp_ncpus();
	unsigned up = smp_start_aps(want, MB_AP_TIMEOUT_MS);
	printf("cpus up: %u\n", up);
	expect_eq(up, want, "all CPUs checked in (INIT + SIPI to 0x0, x2APIC)");
}

int main(void)
{
	uint64_t cpus = cmdline_u64("expect_cpus", 0), mem = cmdline_u64("expect_mem", 0);

	if (!expect_eq(rt_boot.kind, RT_BOOT_MULTIBOOT, "entered through the multiboot path"))
		return report_summary();
	check_entry();
	check_info(mem);
	check_fwcfg(cpus, mem);
	check_smp(cpus);
	return report_summary();
}
