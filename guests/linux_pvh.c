/* guests/linux_pvh.c — linux_pvh.elf: an ELF64 with the PVH note (its
 * 32-bit entry is the runtime's rt_mb_entry, which records the machine
 * state, a copy of the loader's GDT and EBX before it enters long mode).
 * Checks from the inside: 32-bit protected mode with paging off, flat
 * CS/DS, interrupts off, EBX = hvm_start_info version 1 with the memory
 * map, the command line, the initrd as module 0 and the RSDP. Keys: see
 * guests/linux_guest.h. */
#include "guests/linux_guest.h"
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "machine/linux_boot.h"

/* owner "Xen", type XEN_ELFNOTE_PHYS32_ENTRY, a 32-bit entry address */
__asm__(".pushsection .note.Xen, \"a\", @note\n"
	".balign 4\n"
	".long 4, 4, 18\n"
	".asciz \"Xen\"\n"
	".long rt_mb_entry\n"
	".popsection\n");

extern char rt_mb_entry[], linux_image_end[], RT_LOAD_ADDR[];

static const struct rt_entry_state *es = &rt_entry_state;

static void check_entry_state(void)
{
	unsigned gdt_len = es->gdt_limit + 1u;

	if (gdt_len > RT_ES_GDT_COPY_LEN)
		gdt_len = RT_ES_GDT_COPY_LEN;
	expect_eq(es->cr0 & (CR0_PE | CR0_PG), CR0_PE, "CR0: protected mode, paging off");
	expect_eq(es->flags & RFLAGS_IF, 0, "interrupts off");
	linux_guest_check_desc(es->gdt_copy, gdt_len, es->cs, LINUX_DESC_CODE32, "CS");
	linux_guest_check_desc(es->gdt_copy, gdt_len, es->ds, LINUX_DESC_DATA, "DS");
	linux_guest_check_desc(es->gdt_copy, gdt_len, es->es, LINUX_DESC_DATA, "ES");
	linux_guest_check_desc(es->gdt_copy, gdt_len, es->ss, LINUX_DESC_DATA, "SS");
}

static void check_memmap(const struct hvm_start_info *si)
{
	struct linux_guest_mem map[128];
	const struct hvm_memmap_table_entry *m = (const void *)(uintptr_t)si->memmap_paddr;
	unsigned n = si->memmap_entries < 128 ? si->memmap_entries : 128;

	if (!expect(si->memmap_paddr != 0, "memmap_paddr given"))
		return;
	for (unsigned i = 0; i < n; i++)
		map[i] = (struct linux_guest_mem){ m[i].addr, m[i].size, m[i].type };
	linux_guest_check_e820(map, n, (uintptr_t)RT_LOAD_ADDR, (uintptr_t)linux_image_end);
}

static void check_modules(const struct hvm_start_info *si)
{
	bool want = cmdline_u64("initrd_size", 0) != 0;

	if (!expect_eq(si->nr_modules, want, "nr_modules = 1 with an initrd, else 0") || !want)
		return;
	const struct hvm_modlist_entry *mod = (const void *)(uintptr_t)si->modlist_paddr;
	if (!expect(mod != NULL, "modlist_paddr given"))
		return;
	linux_guest_check_initrd(mod->paddr, mod->size);
	expect(mod->paddr >= (uintptr_t)linux_image_end, "module 0 above the kernel");
}

int main(void)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)(uint32_t)es->bx;

	printf("start_info at 0x%lx\n", (unsigned long)es->bx);
	check_entry_state();
	if (!expect(si != NULL, "EBX = start_info") ||
	    !expect_eq(si->magic, PVH_START_MAGIC, "start_info magic"))
		return report_summary();
	expect_eq(si->version, PVH_START_VERSION, "start_info version 1");
	linux_guest_take_cmdline((const char *)(uintptr_t)si->cmdline_paddr, 8191);
	check_memmap(si);
	check_modules(si);
	linux_guest_check_rsdp(si->rsdp_paddr);
	return report_summary();
}
