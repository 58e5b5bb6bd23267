/* machine/loader.h — puts a kernel into guest RAM and gives vCPU 0 its
 * entry state. Two formats: ELF64 (entered directly in long mode, see
 * machine/bootinfo.h) and Multiboot v1 (ELF32 or a.out-kludge images,
 * entered in 32-bit protected mode with EAX = 0x2BADB002, EBX = info).
 * Every check is against the file's own claims: a truncated or lying
 * image is an error with the reason, never a crash. */
#ifndef VMDB_LOADER_H
#define VMDB_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct vm;

enum kernel_format { KERNEL_UNKNOWN, KERNEL_ELF64, KERNEL_MULTIBOOT };

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

/* Per-format back ends (machine/load_elf64.c, machine/load_multiboot.c). */
int load_elf64(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;
int load_multiboot(struct vm *vm, const uint8_t *image, size_t size, struct err *e) must_check;

/* Shared by the back ends. Read a whole regular, non-empty file ("what"
 * names it in errors); *data is malloc'ed. */
int loader_read_file(const char *what, const char *path, uint8_t **data, size_t *size,
		     struct err *e) must_check;
/* When cfg.initrd_path is set: load it at the first page boundary at or
 * above `after`, ending at or below `limit`, and record vm->initrd_gpa /
 * initrd_size (both 0 without an initrd). */
int loader_load_initrd(struct vm *vm, uint64_t after, uint64_t limit, struct err *e) must_check;

#endif
