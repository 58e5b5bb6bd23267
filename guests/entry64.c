/* guests/entry64.c — entry64.elf: checks the ELF64 entry state against
 * machine/bootinfo.h from the inside. The command line says what to
 * expect: "expect_cpus=2 expect_mem=128M hello". */
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "x86/desc.h"

#define PDE_2M_ADDR 0x000fffffffe00000ull

static const struct rt_entry_state *es = &rt_entry_state;

static void check_registers(void)
{
	expect_eq(es->ax, VMDB_BOOT_MAGIC, "RAX = VMDB_BOOT_MAGIC");
	expect_eq(es->bx, 0, "RBX = 0");
	expect_eq(es->cr0, CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG, "CR0 = PE|MP|ET|NE|WP|PG");
	expect_eq(es->cr4, CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT, "CR4 = PAE|OSFXSR|OSXMMEXCPT");
	expect_eq(es->efer, EFER_LME | EFER_LMA, "EFER = LME|LMA");
	expect_eq(es->cr3, VMDB_BOOT_PML4, "CR3 = VMDB_BOOT_PML4");
	expect_eq(es->flags, RFLAGS_FIXED1, "RFLAGS = 0x2 (IF clear)");
	expect_eq(es->sp, VMDB_BOOT_STACK_TOP, "RSP = VMDB_BOOT_STACK_TOP");
	expect_eq(es->cs, 0x08, "CS = 0x08");
	expect_eq(es->ds, 0x10, "DS = 0x10");
	expect_eq(es->es, 0x10, "ES = 0x10");
	expect_eq(es->ss, 0x10, "SS = 0x10");
	expect_eq(es->fs, 0x10, "FS = 0x10");
	expect_eq(es->gs, 0x10, "GS = 0x10");
	expect_eq(es->gdt_base, VMDB_BOOT_GDT, "GDT base = VMDB_BOOT_GDT");
	expect_eq(es->idt_limit, 0, "IDT limit 0");
}

/* Descriptor bits: present, S (code/data), executable, L, D/B. */
#define DESC_P  (1ull << 47)
#define DESC_S  (1ull << 44)
#define DESC_X  (1ull << 43)
#define DESC_L  (1ull << 53)
#define DESC_DB (1ull << 54)

static void check_gdt(void)
{
	const uint64_t *gdt = (const uint64_t *)(uintptr_t)es->gdt_base;
	const uint64_t mask = DESC_P | DESC_S | DESC_X | DESC_L | DESC_DB;

	if (!expect(es->gdt_limit >= 0x1f, "GDT limit covers 0x18"))
		return;
	expect_eq(gdt[1] & mask, DESC_P | DESC_S | DESC_X | DESC_L, "GDT 0x08: 64-bit code");
	expect_eq(gdt[2] & (DESC_P | DESC_S | DESC_X), DESC_P | DESC_S, "GDT 0x10: data");
	expect_eq(gdt[3] & mask, DESC_P | DESC_S | DESC_X | DESC_DB, "GDT 0x18: 32-bit code");
}

/* Walk the entry page tables by hand for va; return the physical address
 * of the 2 MiB page, or ~0 if a level is missing or not a large page. */
static uint64_t walk(uint64_t va)
{
	const uint64_t *pml4 = (const uint64_t *)(uintptr_t)(es->cr3 & PTE_ADDR_MASK);
	uint64_t e = pml4[(va >> 39) & 511];

	if (!(e & PTE_P))
		return ~0ull;
	e = ((const uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK))[(va >> 30) & 511];
	if (!(e & PTE_P) || (e & PTE_PS))
		return ~0ull;
	e = ((const uint64_t *)(uintptr_t)(e & PTE_ADDR_MASK))[(va >> 21) & 511];
	if ((e & (PTE_P | PTE_W | PTE_PS)) != (PTE_P | PTE_W | PTE_PS))
		return ~0ull;
	return (e & PDE_2M_ADDR) | (va & 0x1fffff);
}

static void check_paging(void)
{
	static const uint64_t probes[] = {
		0, VMDB_BOOT_INFO, 0x100000, 0x3fe00000, 0x7fffffff, 0xc0000000, 0xfee00000, 0xffffffff,
	};
	char name[64];

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		snprintf(name, sizeof(name), "page tables map 0x%lx to itself", (unsigned long)probes[i]);
		expect_eq(walk(probes[i]), probes[i], name);
	}
	/* and reading through them sees the boot info where RDI said */
	expect_eq(*(volatile uint32_t *)(uintptr_t)VMDB_BOOT_INFO, VMDB_BOOT_MAGIC,
		  "boot info magic read at VMDB_BOOT_INFO");
}

static void check_mmap(const struct vmdb_boot_info *bi)
{
	const struct vmdb_mmap_entry *m = (const void *)(uintptr_t)bi->mmap;
	uint64_t ram = 0, end = 0;
	bool sorted = true, types = true, low = false, high = false;

	if (!expect(bi->mmap && bi->mmap_entries > 0 && bi->mmap_entries < 128, "mmap present"))
		return;
	for (uint32_t i = 0; i < bi->mmap_entries; i++) {
		printf("mmap %u: 0x%lx + 0x%lx type %u\n", i, (unsigned long)m[i].base,
		       (unsigned long)m[i].len, m[i].type);
		sorted &= m[i].base >= end;
		end = m[i].base + m[i].len;
		types &= m[i].type >= VMDB_MEM_RAM && m[i].type <= VMDB_MEM_ACPI;
		if (m[i].type != VMDB_MEM_RAM)
			continue;
		ram += m[i].len;
		low |= m[i].base == 0;
		high |= m[i].base <= VMDB_KERNEL_MIN_ADDR && end > VMDB_KERNEL_MIN_ADDR;
	}
	expect(sorted, "mmap entries sorted, no overlap");
	expect(types, "mmap types are RAM/reserved/ACPI");
	expect(low, "mmap: RAM at 0");
	expect(high, "mmap: RAM at 1 MiB");
	expect(ram <= bi->mem_size && ram + 0x100000 >= bi->mem_size,
	       "mmap RAM adds up to mem_size (less the legacy hole)");
}

static void check_boot_info(void)
{
	const struct vmdb_boot_info *bi = (const void *)(uintptr_t)es->di;
	uint64_t cpus = cmdline_u64("expect_cpus", 0), mem = cmdline_u64("expect_mem", 0);

	expect_eq(es->di, VMDB_BOOT_INFO, "RDI = VMDB_BOOT_INFO");
	if (!expect_eq(bi->magic, VMDB_BOOT_MAGIC, "boot info magic"))
		return;
	expect_eq(bi->version, 1, "boot info version");
	const char *cl = (const char *)(uintptr_t)bi->cmdline;
	if (expect(cl != NULL, "boot info cmdline")) {
		printf("cmdline: '%s'\n", cl);
		expect_eq(strlen(cl), bi->cmdline_len, "cmdline_len = strlen(cmdline)");
	}
	if (cpus)
		expect_eq(bi->nr_cpus, cpus, "nr_cpus = expect_cpus");
	if (mem)
		expect_eq(bi->mem_size, mem, "mem_size = expect_mem");
	check_mmap(bi);
	expect_eq(bi->initrd | bi->initrd_size, 0, "no initrd");
	if (bi->rsdp)
		expect(memcmp((const void *)(uintptr_t)bi->rsdp, "RSD PTR ", 8) == 0, "RSDP signature");
	else
		report_skip("RSDP signature", "boot info has no rsdp");
}

int main(void)
{
	if (!expect_eq(rt_boot.kind, RT_BOOT_ELF64, "entered through the ELF64 path"))
		return report_summary();
	check_registers();
	check_gdt();
	check_paging();
	check_boot_info();
	printf("hello from entry64\n");
	return report_summary();
}
