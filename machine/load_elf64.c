/* machine/load_elf64.c — loads an x86-64 ELF executable and enters it in
 * long mode as machine/bootinfo.h describes.
 *
 * Every header field is checked against the file size before it is used
 * (a lying header is an error that names the field, never an out-of-bounds
 * read). PT_LOAD segments go to p_paddr (p_vaddr when p_paddr is 0), must
 * lie in RAM at or above VMDB_KERNEL_MIN_ADDR, and their bss is zeroed.
 * The boot area (GDT, boot info + memory map + command line, page tables)
 * is rebuilt from scratch between VMDB_BOOT_GDT and VMDB_BOOT_AREA_END. */
#include "machine/loader.h"

#include <elf.h>
#include <string.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/vm.h"
#include "x86/desc.h"

#define GDT_CODE64 0x08
#define GDT_DATA   0x10
#define FOUR_GIB   0x100000000ull

/* --- header validation ------------------------------------------------- */

static int elf64_check_ehdr(const Elf64_Ehdr *eh, size_t size, struct err *e)
{
	if (size < sizeof(*eh))
		return err_set(e, ENOEXEC, "ELF header truncated (file is %zu bytes, header %zu)",
			       size, sizeof(*eh));
	if (eh->e_ident[EI_VERSION] != EV_CURRENT || eh->e_version != EV_CURRENT)
		return err_set(e, ENOEXEC, "unknown ELF version %u", eh->e_version);
	if (eh->e_type != ET_EXEC)
		return err_set(e, ENOEXEC, "ELF type %u is not an executable (ET_EXEC)",
			       eh->e_type);
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return err_set(e, ENOEXEC, "ELF file has no program headers");
	if (eh->e_phentsize != sizeof(Elf64_Phdr))
		return err_set(e, ENOEXEC, "ELF program header size %u (expected %zu)",
			       eh->e_phentsize, sizeof(Elf64_Phdr));
	uint64_t table = (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr);
	if (eh->e_phoff > size || table > size - eh->e_phoff)
		return err_set(e, ENOEXEC, "ELF program headers (offset 0x%llx, %u entries) lie "
			       "past the end of the %zu-byte file",
			       (unsigned long long)eh->e_phoff, eh->e_phnum, size);
	return 0;
}

static uint64_t elf64_load_addr(const Elf64_Phdr *ph)
{
	return ph->p_paddr ? ph->p_paddr : ph->p_vaddr;
}

static int elf64_check_phdr(struct vm *vm, const Elf64_Phdr *ph, unsigned i, size_t size,
			    struct err *e)
{
	uint64_t addr = elf64_load_addr(ph);
	if (ph->p_offset > size || ph->p_filesz > size - ph->p_offset)
		return err_set(e, ENOEXEC, "segment %u (file offset 0x%llx, 0x%llx bytes) lies "
			       "past the end of the %zu-byte file", i,
			       (unsigned long long)ph->p_offset,
			       (unsigned long long)ph->p_filesz, size);
	if (ph->p_filesz > ph->p_memsz)
		return err_set(e, ENOEXEC, "segment %u has more file bytes (0x%llx) than memory "
			       "bytes (0x%llx)", i, (unsigned long long)ph->p_filesz,
			       (unsigned long long)ph->p_memsz);
	if (addr < VMDB_KERNEL_MIN_ADDR)
		return err_set(e, ENOEXEC, "segment %u at 0x%llx lies below 0x%x, where the "
			       "machine keeps its boot structures", i,
			       (unsigned long long)addr, VMDB_KERNEL_MIN_ADDR);
	if (addr + ph->p_memsz < addr || !vm_gpa_to_host(vm, addr, ph->p_memsz ? ph->p_memsz : 1))
		return err_set(e, ENOSPC, "kernel does not fit in --mem %lluM: segment at 0x%llx "
			       "needs 0x%llx bytes", (unsigned long long)(vm->ram_size >> 20),
			       (unsigned long long)addr, (unsigned long long)ph->p_memsz);
	return 0;
}

static Elf64_Phdr elf64_phdr(const uint8_t *image, const Elf64_Ehdr *eh, unsigned i)
{
	Elf64_Phdr ph;
	memcpy(&ph, image + eh->e_phoff + (uint64_t)i * sizeof(ph), sizeof(ph));
	return ph;
}

/* Check every PT_LOAD before anything is copied. */
static int elf64_check_segments(struct vm *vm, const uint8_t *image, size_t size,
				const Elf64_Ehdr *eh, struct err *e)
{
	bool any = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = elf64_phdr(image, eh, i);
		if (ph.p_type != PT_LOAD)
			continue;
		int ret = elf64_check_phdr(vm, &ph, i, size, e);
		if (ret < 0)
			return ret;
		any |= ph.p_memsz != 0;
	}
	if (!any)
		return err_set(e, ENOEXEC, "ELF file has no loadable segment");
	return 0;
}

/* The entry point must be reachable through the identity map, i.e. inside
 * a segment's load (physical) address range. */
static int elf64_check_entry(const uint8_t *image, const Elf64_Ehdr *eh, struct err *e)
{
	bool entry_ok = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = elf64_phdr(image, eh, i);
		uint64_t addr = elf64_load_addr(&ph);
		if (ph.p_type == PT_LOAD && eh->e_entry >= addr && eh->e_entry - addr < ph.p_memsz)
			entry_ok = true;
	}
	if (!entry_ok)
		return err_set(e, ENOEXEC, "entry point 0x%llx is not inside any loaded segment "
			       "(vmdb enters the kernel at its physical address)",
			       (unsigned long long)eh->e_entry);
	if (eh->e_entry >= FOUR_GIB)
		return err_set(e, ENOEXEC, "entry point 0x%llx is above 4 GiB, outside the boot "
			       "identity map", (unsigned long long)eh->e_entry);
	return 0;
}

/* Copy every (already checked) PT_LOAD; returns the highest address + 1. */
static uint64_t elf64_load_segments(struct vm *vm, const uint8_t *image, const Elf64_Ehdr *eh)
{
	uint64_t end = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph = elf64_phdr(image, eh, i);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		uint64_t addr = elf64_load_addr(&ph);
		uint8_t *host = vm_gpa_to_host(vm, addr, ph.p_memsz);
		memcpy(host, image + ph.p_offset, ph.p_filesz);
		memset(host + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if (addr + ph.p_memsz > end)
			end = addr + ph.p_memsz;
	}
	return end;
}

/* --- boot area ----------------------------------------------------------- */

static int elf64_build_boot_info(struct vm *vm, uint8_t *area, struct err *e)
{
	struct vmdb_boot_info info = {
		.magic = VMDB_BOOT_MAGIC, .version = 1, .mem_size = vm->ram_size,
		.nr_cpus = vm->nr_vcpus, .initrd = vm->initrd_gpa,
		.initrd_size = vm->initrd_size, .rsdp = vm->rsdp_gpa,
	};
	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	uint64_t map_gpa = VMDB_BOOT_INFO + sizeof(info);
	info.mmap_entries = acpi_memory_map(vm, map);
	info.mmap = map_gpa;

	uint64_t cmd_gpa = map_gpa + info.mmap_entries * sizeof(map[0]);
	size_t cmd_len = strlen(vm->cfg.cmdline ? vm->cfg.cmdline : "");
	size_t room = VMDB_BOOT_PML4 - cmd_gpa - 1;
	if (cmd_len > room)
		return err_set(e, E2BIG, "--cmdline is %zu bytes; at most %zu fit", cmd_len, room);
	info.cmdline = cmd_gpa;
	info.cmdline_len = (uint32_t)cmd_len;

	memcpy(area + (VMDB_BOOT_INFO - VMDB_BOOT_GDT), &info, sizeof(info));
	memcpy(area + (map_gpa - VMDB_BOOT_GDT), map, info.mmap_entries * sizeof(map[0]));
	if (cmd_len)
		memcpy(area + (cmd_gpa - VMDB_BOOT_GDT), vm->cfg.cmdline, cmd_len);
	return 0;   /* the NUL is there: the area was zeroed */
}

static int elf64_check_image(struct vm *vm, const uint8_t *image, size_t size,
			     Elf64_Ehdr *eh, struct err *e)
{
	if (size < sizeof(*eh))
		return err_set(e, ENOEXEC, "ELF header truncated (file is %zu bytes, header %zu)",
			       size, sizeof(*eh));
	memcpy(eh, image, sizeof(*eh));
	int ret = elf64_check_ehdr(eh, size, e);
	if (ret < 0)
		return ret;
	return elf64_check_segments(vm, image, size, eh, e);
}

int elf64_load_image(struct vm *vm, const uint8_t *image, size_t size, uint64_t *end,
		     struct err *e)
{
	Elf64_Ehdr eh;
	int ret = elf64_check_image(vm, image, size, &eh, e);
	if (ret < 0)
		return ret;
	*end = elf64_load_segments(vm, image, &eh);
	return 0;
}

int load_elf64(struct vm *vm, const uint8_t *image, size_t size, struct err *e)
{
	Elf64_Ehdr eh;
	int ret = elf64_check_image(vm, image, size, &eh, e);
	if (ret < 0)
		return ret;
	ret = elf64_check_entry(image, &eh, e);
	if (ret < 0)
		return ret;

	uint8_t *area = vm_gpa_to_host(vm, VMDB_BOOT_GDT, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	if (!area || !vm_gpa_to_host(vm, VMDB_BOOT_STACK_TOP - X86_PAGE_SIZE, X86_PAGE_SIZE))
		return err_set(e, ENOSPC, "no RAM for the boot area at 0x%x", VMDB_BOOT_GDT);

	uint64_t end;
	ret = elf64_load_image(vm, image, size, &end, e);
	if (ret < 0)
		return ret;
	ret = loader_load_initrd(vm, end, vm->low_ram_size, e);
	if (ret < 0)
		return ret;

	memset(area, 0, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	ret = elf64_build_boot_info(vm, area, e);
	if (ret < 0)
		return ret;
	struct loader_entry entry = {
		.long_mode = true, .gdt_gpa = VMDB_BOOT_GDT,
		.gdt = { 0, LOADER_DESC_CODE64, LOADER_DESC_DATA, LOADER_DESC_CODE32 },
		.code_sel = GDT_CODE64, .data_sel = GDT_DATA,
		.regs = { .rip = eh.e_entry, .rsp = VMDB_BOOT_STACK_TOP, .rdi = VMDB_BOOT_INFO,
			  .rax = VMDB_BOOT_MAGIC },
	};
	return loader_enter(vm, &entry, e);
}
