/* machine/load_multiboot.c — Multiboot v1 kernels (ELF32 images, or any
 * image with the a.out kludge, header flag bit 16), entered in 32-bit
 * protected mode with EAX = 0x2BADB002 and EBX = the multiboot info.
 *
 * Whatever the header asks for, the info offers the same fields, all
 * valid: MEM (mem_lower 639, mem_upper = KiB from 1 MiB to the first
 * hole), BOOTDEV (0xffffffff: no BIOS disk), CMDLINE, MODS, MMAP and
 * BOOT_LOADER_NAME ("vmdb"). The command line is the kernel's path, a
 * space and the --cmdline string (just the path when that is empty): the
 * convention of GRUB and QEMU -kernel, which multiboot kernels expect.
 * With --initrd, that file is module 0 ("initrd"), page-aligned after
 * the kernel image; otherwise mods_count is 0 and mods_addr still points
 * at valid memory. Header flag bit 2 (video mode) is tolerated and not
 * honoured; other required bits (3-15) are refused.
 *
 * Low-memory layout (clear of 0-0x7fff, where kernels put AP trampolines):
 *   0x8f00 GDT (0x08 code32, 0x10 data32, 0x20 busy TSS)
 *   0x9000 struct multiboot_info, 0x9100 memory map, 0x9200 module list,
 *   0x9280 module string, 0x92c0 boot loader name, 0x9400 command line
 *   (up to 0xffff); ESP = VMDB_BOOT_STACK_TOP (0x80000). */
#include "machine/loader.h"

#include <elf.h>
#include <string.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/vm.h"

#define MB_MAGIC          0x1badb002u
#define MB_BOOT_MAGIC     0x2badb002u
#define MB_SEARCH         8192
#define MB_HDR_LEN        12
#define MB_AOUT_HDR_LEN   32

#define MB_FLAG_PAGE_ALIGN 0x00000001u
#define MB_FLAG_MEMINFO    0x00000002u
#define MB_FLAG_VIDEO      0x00000004u
#define MB_FLAG_AOUT       0x00010000u
#define MB_FLAG_REQ_KNOWN  (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO | MB_FLAG_VIDEO)
#define MB_FLAG_REQ_MASK   0x0000ffffu

#define MBI_MEM            (1u << 0)
#define MBI_BOOTDEV        (1u << 1)
#define MBI_CMDLINE        (1u << 2)
#define MBI_MODS           (1u << 3)
#define MBI_MMAP           (1u << 6)
#define MBI_LOADER_NAME    (1u << 9)

/* struct multiboot_info field offsets */
#define MBI_FLAGS        0
#define MBI_MEM_LOWER    4
#define MBI_MEM_UPPER    8
#define MBI_BOOT_DEVICE  12
#define MBI_CMDLINE_ADDR 16
#define MBI_MODS_COUNT   20
#define MBI_MODS_ADDR    24
#define MBI_MMAP_LENGTH  44
#define MBI_MMAP_ADDR    48
#define MBI_LOADER_ADDR  64

#define MB_GDT       0x8f00ull
#define MB_INFO      0x9000ull
#define MB_MMAP      0x9100ull
#define MB_MODS      0x9200ull
#define MB_MOD_NAME  0x9280ull
#define MB_LOADER    0x92c0ull
#define MB_CMDLINE   0x9400ull
#define MB_AREA_END  0x10000ull
#define MB_MMAP_ENTRY_LEN 24     /* u32 size (20, not counting itself), u64, u64, u32 */

#define MB_MEM_LOWER_KIB 639
#define MB_NO_BOOT_DEVICE 0xffffffffu
#define MiB 0x100000ull
#define FOUR_GIB 0x100000000ull

#define SEL_CODE 0x08
#define SEL_DATA 0x10

/* What the image asks for, after validation. */
struct mb_image {
	size_t hdr_off;
	uint32_t flags;
	uint64_t end;        /* highest load address + 1 */
	uint32_t entry;
};

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static int mb_find_header(const uint8_t *image, size_t size, struct mb_image *mb,
			  struct err *e)
{
	size_t limit = size < MB_SEARCH ? size : MB_SEARCH;
	for (size_t off = 0; off + MB_HDR_LEN <= limit; off += 4) {
		const uint8_t *h = image + off;
		if (rd32(h) != MB_MAGIC || (uint32_t)(rd32(h) + rd32(h + 4) + rd32(h + 8)))
			continue;
		mb->hdr_off = off;
		mb->flags = rd32(h + 4);
		uint32_t unknown = mb->flags & MB_FLAG_REQ_MASK & ~MB_FLAG_REQ_KNOWN;
		if (unknown)
			return err_set(e, ENOEXEC, "multiboot header requires features vmdb lacks "
				       "(flags 0x%x)", unknown);
		return 0;
	}
	return err_set(e, ENOEXEC, "no multiboot header in the first %d bytes", MB_SEARCH);
}

/* Check [addr, addr+len) is loadable RAM below 4 GiB; *host maps it. */
static int mb_target(struct vm *vm, uint64_t addr, uint64_t len, uint8_t **host,
		     struct err *e)
{
	if (addr < MiB)
		return err_set(e, ENOEXEC, "image at 0x%llx lies below 1 MiB",
			       (unsigned long long)addr);
	*host = addr + len >= addr && addr + len <= FOUR_GIB
			? vm_gpa_to_host(vm, addr, len ? len : 1) : NULL;
	if (!*host)
		return err_set(e, ENOSPC, "kernel does not fit in --mem %lluM: segment at 0x%llx "
			       "needs 0x%llx bytes", (unsigned long long)(vm->ram_size >> 20),
			       (unsigned long long)addr, (unsigned long long)len);
	return 0;
}

/* a.out kludge: the header gives the addresses; the file is loaded from
 * the offset that puts the header at header_addr. */
static int mb_load_aout(struct vm *vm, const uint8_t *image, size_t size, struct mb_image *mb,
			struct err *e)
{
	if (mb->hdr_off + MB_AOUT_HDR_LEN > size)
		return err_set(e, ENOEXEC, "multiboot a.out header truncated");
	const uint8_t *h = image + mb->hdr_off;
	uint32_t header_addr = rd32(h + 12), load_addr = rd32(h + 16);
	uint32_t load_end = rd32(h + 20), bss_end = rd32(h + 24);
	mb->entry = rd32(h + 28);

	if (header_addr < load_addr || header_addr - load_addr > mb->hdr_off)
		return err_set(e, ENOEXEC, "multiboot header_addr 0x%x / load_addr 0x%x do not "
			       "match the header's place in the file", header_addr, load_addr);
	uint64_t file_off = mb->hdr_off - (header_addr - load_addr);
	if (load_end && load_end < load_addr)
		return err_set(e, ENOEXEC, "multiboot load_end_addr 0x%x is below load_addr 0x%x",
			       load_end, load_addr);
	uint64_t load_len = load_end ? (uint64_t)load_end - load_addr : size - file_off;
	if (load_len > size - file_off)
		return err_set(e, ENOEXEC, "multiboot image (0x%llx bytes from offset 0x%llx) lies "
			       "past the end of the %zu-byte file", (unsigned long long)load_len,
			       (unsigned long long)file_off, size);
	uint64_t end = (uint64_t)load_addr + load_len;
	if (bss_end && bss_end < end)
		return err_set(e, ENOEXEC, "multiboot bss_end_addr 0x%x is below the loaded image "
			       "end 0x%llx", bss_end, (unsigned long long)end);
	if (bss_end)
		end = bss_end;

	uint8_t *host;
	int ret = mb_target(vm, load_addr, end - load_addr, &host, e);
	if (ret < 0)
		return ret;
	memcpy(host, image + file_off, load_len);
	memset(host + load_len, 0, end - load_addr - load_len);
	mb->end = end;
	return 0;
}

static int mb_load_elf32(struct vm *vm, const uint8_t *image, size_t size, struct mb_image *mb,
			 struct err *e)
{
	Elf32_Ehdr eh;
	if (size < sizeof(eh) || memcmp(image, ELFMAG, SELFMAG))
		return err_set(e, ENOEXEC, "multiboot kernel is not ELF32 and does not use the "
			       "a.out kludge (header flag 16)");
	memcpy(&eh, image, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS32 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh.e_machine != EM_386)
		return err_set(e, ENOEXEC, "multiboot ELF kernel is not 32-bit little-endian i386");
	if (eh.e_phnum == 0 || eh.e_phentsize != sizeof(Elf32_Phdr))
		return err_set(e, ENOEXEC, "ELF program header size %u (expected %zu) or count %u "
			       "is wrong", eh.e_phentsize, sizeof(Elf32_Phdr), eh.e_phnum);
	if (eh.e_phoff > size || (uint64_t)eh.e_phnum * sizeof(Elf32_Phdr) > size - eh.e_phoff)
		return err_set(e, ENOEXEC, "ELF program headers (offset 0x%x, %u entries) lie past "
			       "the end of the %zu-byte file", eh.e_phoff, eh.e_phnum, size);

	mb->entry = eh.e_entry;
	mb->end = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;
		memcpy(&ph, image + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		if (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)
			return err_set(e, ENOEXEC, "segment %u (file offset 0x%x, 0x%x bytes) lies "
				       "past the end of the %zu-byte file", i, ph.p_offset,
				       ph.p_filesz, size);
		if (ph.p_filesz > ph.p_memsz)
			return err_set(e, ENOEXEC, "segment %u has more file bytes (0x%x) than "
				       "memory bytes (0x%x)", i, ph.p_filesz, ph.p_memsz);
		uint8_t *host;
		int ret = mb_target(vm, ph.p_paddr, ph.p_memsz, &host, e);
		if (ret < 0)
			return ret;
		memcpy(host, image + ph.p_offset, ph.p_filesz);
		memset(host + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
		if ((uint64_t)ph.p_paddr + ph.p_memsz > mb->end)
			mb->end = (uint64_t)ph.p_paddr + ph.p_memsz;
	}
	if (!mb->end)
		return err_set(e, ENOEXEC, "ELF file has no loadable segment");
	return 0;
}

/* --- the information structure ------------------------------------------ */

/* "<kernel path> <cmdline>" at MB_CMDLINE (the area is zeroed: NUL-terminated). */
static int mb_put_cmdline(struct vm *vm, uint8_t *low, struct err *e)
{
	const char *path = vm->cfg.kernel_path ? vm->cfg.kernel_path : "kernel";
	const char *args = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t path_len = strlen(path), args_len = strlen(args);
	size_t len = path_len + (args_len ? 1 + args_len : 0);
	if (len >= MB_AREA_END - MB_CMDLINE)
		return err_set(e, E2BIG, "kernel path and --cmdline are %zu bytes; at most %llu fit",
			       len, (unsigned long long)(MB_AREA_END - MB_CMDLINE - 1));
	char *dst = (char *)low + MB_CMDLINE;
	memcpy(dst, path, path_len);
	if (args_len) {
		dst[path_len] = ' ';
		memcpy(dst + path_len + 1, args, args_len);
	}
	return 0;
}

static int mb_build_info(struct vm *vm, uint8_t *low, struct err *e)
{
	uint8_t *info = low + MB_INFO;

	memset(low + MB_GDT, 0, MB_AREA_END - MB_GDT);
	int ret = mb_put_cmdline(vm, low, e);
	if (ret < 0)
		return ret;
	uint64_t low_kib_above_1m = vm->low_ram_size > MiB ? (vm->low_ram_size - MiB) >> 10 : 0;
	wr32(info + MBI_FLAGS, MBI_MEM | MBI_BOOTDEV | MBI_CMDLINE | MBI_MODS | MBI_MMAP |
				       MBI_LOADER_NAME);
	wr32(info + MBI_MEM_LOWER, MB_MEM_LOWER_KIB);
	wr32(info + MBI_MEM_UPPER, (uint32_t)low_kib_above_1m);
	wr32(info + MBI_BOOT_DEVICE, MB_NO_BOOT_DEVICE);
	wr32(info + MBI_CMDLINE_ADDR, MB_CMDLINE);

	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	unsigned n = acpi_memory_map(vm, map);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *m = low + MB_MMAP + i * MB_MMAP_ENTRY_LEN;
		wr32(m, MB_MMAP_ENTRY_LEN - 4);
		memcpy(m + 4, &map[i].base, 8);
		memcpy(m + 12, &map[i].len, 8);
		wr32(m + 20, map[i].type);
	}
	wr32(info + MBI_MMAP_LENGTH, n * MB_MMAP_ENTRY_LEN);
	wr32(info + MBI_MMAP_ADDR, MB_MMAP);

	wr32(info + MBI_MODS_ADDR, MB_MODS);
	if (vm->initrd_size) {
		wr32(info + MBI_MODS_COUNT, 1);
		wr32(low + MB_MODS, (uint32_t)vm->initrd_gpa);
		wr32(low + MB_MODS + 4, (uint32_t)(vm->initrd_gpa + vm->initrd_size));
		wr32(low + MB_MODS + 8, MB_MOD_NAME);
		memcpy(low + MB_MOD_NAME, "initrd", sizeof("initrd"));
	}
	memcpy(low + MB_LOADER, "vmdb", sizeof("vmdb"));
	wr32(info + MBI_LOADER_ADDR, MB_LOADER);
	return 0;
}

int load_multiboot(struct vm *vm, const uint8_t *image, size_t size, struct err *e)
{
	struct mb_image mb = { 0 };
	int ret = mb_find_header(image, size, &mb, e);
	if (ret < 0)
		return ret;
	uint8_t *low = vm_gpa_to_host(vm, 0, MB_AREA_END);
	if (!low || !vm_gpa_to_host(vm, VMDB_BOOT_STACK_TOP - 0x1000, 0x1000))
		return err_set(e, ENOSPC, "no RAM for the multiboot information below 64 KiB");

	ret = (mb.flags & MB_FLAG_AOUT) ? mb_load_aout(vm, image, size, &mb, e)
					 : mb_load_elf32(vm, image, size, &mb, e);
	if (ret < 0)
		return ret;
	ret = loader_load_initrd(vm, mb.end, vm->low_ram_size < FOUR_GIB ? vm->low_ram_size
									 : FOUR_GIB, e);
	if (ret < 0)
		return ret;
	ret = mb_build_info(vm, low, e);
	if (ret < 0)
		return ret;
	struct loader_entry entry = {
		.gdt_gpa = MB_GDT,
		.gdt = { 0, LOADER_DESC_CODE32, LOADER_DESC_DATA },
		.code_sel = SEL_CODE, .data_sel = SEL_DATA,
		.regs = { .rip = mb.entry, .rsp = VMDB_BOOT_STACK_TOP, .rax = MB_BOOT_MAGIC,
			  .rbx = MB_INFO },
	};
	return loader_enter(vm, &entry, e);
}
