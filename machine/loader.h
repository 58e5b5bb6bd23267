/* machine/loader.h — puts a kernel into guest RAM and gives vCPU 0 its
 * entry state. Four formats, told apart by content: ELF64 (entered
 * directly in long mode, see machine/bootinfo.h), Multiboot v1 (ELF32 or
 * a.out-kludge images, entered in 32-bit protected mode with EAX =
 * 0x2BADB002, EBX = info), a Linux bzImage (x86 boot protocol 2.10+,
 * 64-bit entry with RSI = boot_params) and an ELF64 vmlinux with the PVH
 * note (32-bit entry, EBX = hvm_start_info; the note wins over the plain
 * ELF64 entry). Every check is against the file's own claims: a truncated
 * or lying image is an error with the reason, never a crash. */
#ifndef VMDB_LOADER_H
#define VMDB_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/err.h"

struct vm;

enum kernel_format { KERNEL_UNKNOWN, KERNEL_ELF64, KERNEL_MULTIBOOT, KERNEL_BZIMAGE, KERNEL_PVH };

/* Which format the image is, without loading it. */
enum kernel_format loader_detect(const uint8_t *image, size_t size);

/* A kernel file read into memory and recognised. */
struct kernel_image {
	const char *path;
	uint8_t *data;
	size_t size;
	enum kernel_format format;
};

/* Read and recognise the kernel before any VM exists, so a bad file is
 * reported as such whatever the host has. Free with loader_close(). */
int loader_open(const char *path, struct kernel_image *image, struct err *e) must_check;
void loader_close(struct kernel_image *image);

/* Load the image (and cfg.initrd_path), set vCPU 0's entry state. Must run
 * after vm_create() has made RAM, vCPUs and devices. */
int loader_load(struct vm *vm, const struct kernel_image *image, struct err *e) must_check;

/* Per-format back ends (machine/load_elf64.c, load_multiboot.c,
 * load_bzimage.c, load_pvh.c). */
int load_elf64(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;
int load_multiboot(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;
int load_bzimage(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;
int load_pvh(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;

/* The ELF64 checks and copy the PVH back end shares with load_elf64: the
 * header, every PT_LOAD (in RAM at or above 1 MiB, at p_paddr), then the
 * copy with bss zeroed; *end = highest loaded address + 1. */
int elf64_load_image(struct vm *vm, const uint8_t *image, size_t size, uint64_t *end,
		     struct err *e) must_check;
/* The 32-bit entry of an ELF64 file's PVH note, if it has one (any input:
 * every offset is checked). */
bool pvh_find_entry(const uint8_t *image, size_t size, uint64_t *entry);

/* Shared by the back ends. Read a whole regular, non-empty file ("what"
 * names it in errors) of at most max bytes; *data is malloc'ed. A larger
 * file is not read: -EFBIG with *size its size. */
int loader_read_file(const char *what, const char *path, uint64_t max, uint8_t **data,
		     size_t *size, struct err *e) must_check;
/* When cfg.initrd_path is set: load it at the first page boundary at or
 * above `after`, ending at or below `limit`, and record vm->initrd_gpa /
 * initrd_size (both 0 without an initrd). */
int loader_load_initrd(struct vm *vm, uint64_t after, uint64_t limit, struct err *e) must_check;
/* The same, placed as high as it fits: page-aligned, ending at or below
 * `ceiling`, starting at or above `floor`. "ceiling_what" names the limit
 * in the error when it does not fit. */
int loader_load_initrd_high(struct vm *vm, uint64_t floor, uint64_t ceiling,
			    const char *ceiling_what, struct err *e) must_check;

/* How a back end hands vCPU 0 over: a flat GDT it lays out (selectors
 * 0x00-0x18; a busy TSS follows at LOADER_SEL_TSS so TR is valid), then
 * either 64-bit mode on identity-mapped page tables covering 0-4 GiB with
 * 2 MiB pages (PML4 at VMDB_BOOT_PML4; CR4 = PAE|OSFXSR|OSXMMEXCPT, EFER =
 * LME|LMA) or 32-bit protected mode with paging off. Interrupts off. */
#define LOADER_DESC_CODE64  0x00af9a000000ffffull
#define LOADER_DESC_CODE32  0x00cf9a000000ffffull
#define LOADER_DESC_DATA    0x00cf92000000ffffull
#define LOADER_GDT_SEGMENTS 4
#define LOADER_SEL_TSS      0x20

struct loader_entry {
	bool long_mode;
	uint64_t gdt_gpa;                      /* room for 6 descriptors */
	uint64_t gdt[LOADER_GDT_SEGMENTS];     /* index = selector / 8 */
	uint16_t code_sel, data_sel;           /* CS; DS = ES = FS = GS = SS */
	struct x86_regs regs;                  /* RFLAGS is set to 0x2 */
};

int loader_enter(struct vm *vm, const struct loader_entry *entry, struct err *e) must_check;

#endif
