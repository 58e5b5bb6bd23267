/* machine/load_pvh.c — an ELF64 vmlinux with the PVH note (owner "Xen",
 * type XEN_ELFNOTE_PHYS32_ENTRY): its PT_LOAD segments go to p_paddr as
 * for any ELF64 kernel, and vCPU 0 starts at the note's 32-bit entry in
 * protected mode, paging off, flat CS 0x08 / DS 0x10, EBX = the physical
 * address of a version 1 struct hvm_start_info (machine/linux_boot.h) with
 * the E820 memory map, the command line, the initrd as module 0 and the
 * ACPI RSDP.
 *
 * Boot area (the ELF64 boot area, machine/bootinfo.h): GDT at 0x10000,
 * start_info at 0x11000, memory map at 0x11040, module list at 0x11200,
 * command line from 0x12000 (up to 8 KiB). */
#include "machine/loader.h"

#include <elf.h>
#include <string.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/linux_boot.h"
#include "machine/linux_cmdline.h"
#include "machine/vm.h"
#include "x86/desc.h"

#define PVH_START_INFO  VMDB_BOOT_INFO
#define PVH_MEMMAP      (PVH_START_INFO + 0x40)
#define PVH_MODLIST     (PVH_START_INFO + 0x200)
#define PVH_CMDLINE     (PVH_START_INFO + 0x1000)
#define PVH_CMDLINE_END VMDB_BOOT_PML4
#define PVH_SEL_CODE    0x08
#define PVH_SEL_DATA    0x10
#define FOUR_GIB        0x100000000ull
/* Where Linux's PVH entry assumes an initrd may lie (its default
 * initrd_addr_max); kept below it so no kernel has to move it. */
#define PVH_INITRD_MAX  0x80000000ull

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t note_align(uint32_t n)
{
	return (n + 3) & ~3u;
}

/* Walk the notes in [off, off+len) of the file for the PVH entry. */
static bool pvh_note_entry(const uint8_t *image, size_t size, uint64_t off, uint64_t len,
			   uint64_t *entry)
{
	if (off > size || len > size - off)
		return false;
	const uint8_t *p = image + off, *end = p + len;
	while ((size_t)(end - p) >= 12) {
		uint32_t namesz = rd32(p), descsz = rd32(p + 4), type = rd32(p + 8);
		uint64_t name_room = note_align(namesz), desc_room = note_align(descsz);
		if (namesz > UINT32_MAX - 3 || descsz > UINT32_MAX - 3 ||
		    name_room + desc_room > (uint64_t)(end - p) - 12)
			return false;
		const uint8_t *name = p + 12, *desc = name + name_room;
		if (type == PVH_NOTE_PHYS32_ENTRY && namesz == sizeof(PVH_NOTE_OWNER) &&
		    !memcmp(name, PVH_NOTE_OWNER, sizeof(PVH_NOTE_OWNER)) &&
		    (descsz == 4 || descsz == 8)) {
			uint64_t v = 0;
			memcpy(&v, desc, descsz);
			*entry = v;
			return true;
		}
		p = desc + desc_room;
	}
	return false;
}

bool pvh_find_entry(const uint8_t *image, size_t size, uint64_t *entry)
{
	Elf64_Ehdr eh;
	if (!image || size < sizeof(eh))
		return false;
	memcpy(&eh, image, sizeof(eh));
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > size - eh.e_phoff)
		return false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, image + eh.e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_NOTE && pvh_note_entry(image, size, ph.p_offset, ph.p_filesz,
							   entry))
			return true;
	}
	return false;
}

/* start_info, memory map, module 0 and the command line, in the zeroed
 * boot area. */
static int pvh_build_start_info(struct vm *vm, uint8_t *area, struct err *e)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t cmd_len = strlen(cmdline), room = PVH_CMDLINE_END - PVH_CMDLINE - 1;
	if (cmd_len > room)
		return err_set(e, E2BIG, "--cmdline is %zu bytes; at most %zu fit", cmd_len, room);
	linux_cmdline_build(vm, (char *)area + (PVH_CMDLINE - VMDB_BOOT_GDT), room);

	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	unsigned n = acpi_memory_map(vm, map);
	for (unsigned i = 0; i < n; i++) {
		struct hvm_memmap_table_entry m = { .addr = map[i].base, .size = map[i].len,
						    .type = map[i].type };
		memcpy(area + (PVH_MEMMAP - VMDB_BOOT_GDT) + i * sizeof(m), &m, sizeof(m));
	}

	struct hvm_start_info si = {
		.magic = PVH_START_MAGIC, .version = PVH_START_VERSION,
		.nr_modules = vm->initrd_size ? 1 : 0,
		.modlist_paddr = vm->initrd_size ? PVH_MODLIST : 0,
		.cmdline_paddr = PVH_CMDLINE, .rsdp_paddr = vm->rsdp_gpa,
		.memmap_paddr = PVH_MEMMAP, .memmap_entries = n,
	};
	struct hvm_modlist_entry mod = { .paddr = vm->initrd_gpa, .size = vm->initrd_size };
	memcpy(area + (PVH_START_INFO - VMDB_BOOT_GDT), &si, sizeof(si));
	if (vm->initrd_size)
		memcpy(area + (PVH_MODLIST - VMDB_BOOT_GDT), &mod, sizeof(mod));
	return 0;
}

int load_pvh(struct vm *vm, const uint8_t *image, size_t size, struct err *e)
{
	uint64_t entry_gpa = 0;
	if (!pvh_find_entry(image, size, &entry_gpa))
		return err_set(e, ENOEXEC, "no PVH entry note");
	if (entry_gpa >= FOUR_GIB || !vm_gpa_to_host(vm, entry_gpa, 1))
		return err_set(e, ENOEXEC, "PVH entry 0x%llx is not in RAM below 4 GiB",
			       (unsigned long long)entry_gpa);
	uint8_t *area = vm_gpa_to_host(vm, VMDB_BOOT_GDT, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	if (!area || !vm_gpa_to_host(vm, VMDB_BOOT_STACK_TOP - X86_PAGE_SIZE, X86_PAGE_SIZE))
		return err_set(e, ENOSPC, "no RAM for the boot area at 0x%x", VMDB_BOOT_GDT);

	uint64_t end;
	int ret = elf64_load_image(vm, image, size, &end, e);
	if (ret < 0)
		return ret;
	uint64_t ceiling = vm->low_ram_size < PVH_INITRD_MAX ? vm->low_ram_size : PVH_INITRD_MAX;
	ret = loader_load_initrd_high(vm, end, ceiling, "the 2 GiB PVH initrd limit", e);
	if (ret < 0)
		return ret;

	memset(area, 0, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	ret = pvh_build_start_info(vm, area, e);
	if (ret < 0)
		return ret;
	struct loader_entry entry = {
		.gdt_gpa = VMDB_BOOT_GDT,
		.gdt = { 0, LOADER_DESC_CODE32, LOADER_DESC_DATA },
		.code_sel = PVH_SEL_CODE, .data_sel = PVH_SEL_DATA,
		.regs = { .rip = entry_gpa, .rsp = VMDB_BOOT_STACK_TOP, .rbx = PVH_START_INFO },
	};
	return loader_enter(vm, &entry, e);
}
