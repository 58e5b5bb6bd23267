/* machine/loader.c — reads the kernel file, tells its format by content
 * and hands it to the back end (machine/load_elf64.c, load_multiboot.c,
 * load_bzimage.c, load_pvh.c). Also the pieces the back ends share:
 * reading a whole file, placing the initrd, and vCPU 0's flat entry state
 * (GDT, boot identity map, registers). */
#include "machine/loader.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/bootinfo.h"
#include "machine/linux_boot.h"
#include "machine/vm.h"
#include "x86/desc.h"

#define ELF_MAGIC0       0x7f
#define ELF_CLASS64      2
#define ELF_DATA_LSB     1
#define ELF_EM_X86_64    62
#define ELF_EI_CLASS     4
#define ELF_EI_DATA      5
#define ELF_E_MACHINE    18   /* offset of e_machine (both classes) */

/* Kernel files are read whole: a bound far above any real kernel (a
 * vmlinux with full debug info is a few hundred MiB), so that a huge or
 * sparse file gets an error instead of being read. */
#define LOADER_KERNEL_MAX (4ull << 30)

#define MULTIBOOT_MAGIC  0x1badb002u
#define MULTIBOOT_SEARCH 8192
#define IDENTITY_GIB     4

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool loader_is_elf64(const uint8_t *image, size_t size)
{
	return size >= 20 && image[0] == ELF_MAGIC0 && !memcmp(image + 1, "ELF", 3) &&
	       image[ELF_EI_CLASS] == ELF_CLASS64 && image[ELF_EI_DATA] == ELF_DATA_LSB &&
	       (image[ELF_E_MACHINE] | image[ELF_E_MACHINE + 1] << 8) == ELF_EM_X86_64;
}

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* The boot sector signature and "HdrS": the protocol version is judged by
 * load_bzimage, so an old kernel gets "too old" rather than "unknown". */
static bool loader_is_bzimage(const uint8_t *image, size_t size)
{
	return size >= LB_VERSION + 2 && le16(image + LB_BOOT_FLAG) == LB_BOOT_FLAG_MAGIC &&
	       le32(image + LB_HEADER) == LB_HEADER_MAGIC;
}

static bool loader_has_multiboot_header(const uint8_t *image, size_t size)
{
	size_t limit = size < MULTIBOOT_SEARCH ? size : MULTIBOOT_SEARCH;
	for (size_t off = 0; off + 12 <= limit; off += 4) {
		const uint8_t *h = image + off;
		if (le32(h) == MULTIBOOT_MAGIC && (uint32_t)(le32(h) + le32(h + 4) + le32(h + 8)) == 0)
			return true;
	}
	return false;
}

enum kernel_format loader_detect(const uint8_t *image, size_t size)
{
	if (!image)
		return KERNEL_UNKNOWN;
	uint64_t pvh_entry;
	if (loader_is_elf64(image, size))
		return pvh_find_entry(image, size, &pvh_entry) ? KERNEL_PVH : KERNEL_ELF64;
	if (loader_is_bzimage(image, size))
		return KERNEL_BZIMAGE;
	if (loader_has_multiboot_header(image, size))
		return KERNEL_MULTIBOOT;
	return KERNEL_UNKNOWN;
}

int loader_read_file(const char *what, const char *path, uint64_t max, uint8_t **data,
		     size_t *size, struct err *e)
{
	*data = NULL;
	*size = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? err_set(e, ENOENT, "%s %s does not exist", what, path)
				       : err_set(e, errno, "cannot open %s %s: %s", what, path,
						 strerror(errno));
	struct stat st;
	int ret = 0;
	if (fstat(fd, &st) < 0) {
		ret = err_set(e, errno, "cannot read %s %s: %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(e, EINVAL, "%s %s is not a regular file", what, path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = err_set(e, EINVAL, "%s %s is empty", what, path);
		goto out;
	}
	if ((uint64_t)st.st_size > max || (uint64_t)st.st_size > SIZE_MAX) {
		*size = (uint64_t)st.st_size > SIZE_MAX ? SIZE_MAX : (size_t)st.st_size;
		ret = err_set(e, EFBIG, "%s %s (%lld bytes) is larger than the %llu bytes it may "
			      "have", what, path, (long long)st.st_size, (unsigned long long)max);
		goto out;
	}
	*data = malloc((size_t)st.st_size);
	if (!*data) {
		ret = err_set(e, ENOMEM, "%s %s (%lld bytes) does not fit in memory", what, path,
			      (long long)st.st_size);
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, *data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? err_set(e, errno, "cannot read %s %s: %s", what, path,
					      strerror(errno))
				    : err_set(e, EIO, "%s %s shrank while being read", what, path);
			free(*data);
			*data = NULL;
			goto out;
		}
		got += (size_t)n;
	}
	*size = got;
out:
	close(fd);
	return ret;
}

/* Read cfg.initrd_path (NULL *data: none asked for) if it has at most
 * room bytes (-EFBIG, *size its size, when larger: not read); the VM has
 * no initrd until initrd_place() puts one in. */
static int initrd_read(struct vm *vm, uint64_t room, uint8_t **data, size_t *size,
		       struct err *e)
{
	vm->initrd_gpa = vm->initrd_size = 0;
	*data = NULL;
	*size = 0;
	if (!vm->cfg.initrd_path)
		return 0;
	return loader_read_file("initrd", vm->cfg.initrd_path, room, data, size, e);
}

static void initrd_place(struct vm *vm, uint8_t *data, size_t size, void *host, uint64_t gpa)
{
	memcpy(host, data, size);
	free(data);
	vm->initrd_gpa = gpa;
	vm->initrd_size = size;
}

int loader_load_initrd(struct vm *vm, uint64_t after, uint64_t limit, struct err *e)
{
	uint8_t *data;
	size_t size;
	uint64_t gpa = (after + X86_PAGE_SIZE - 1) & ~(X86_PAGE_SIZE - 1);
	uint64_t room = gpa >= after && limit > gpa ? limit - gpa : 0;
	int ret = initrd_read(vm, room, &data, &size, e);
	if ((ret < 0 && ret != -EFBIG) || (ret == 0 && !data))
		return ret;
	void *host = ret == 0 && gpa >= after && gpa + size > gpa && gpa + size <= limit
			     ? vm_gpa_to_host(vm, gpa, size) : NULL;
	if (!host) {
		ret = err_set(e, ENOSPC, "initrd %s (%zu bytes) does not fit in --mem %lluM "
			      "after the kernel (at 0x%llx)", vm->cfg.initrd_path, size,
			      (unsigned long long)(vm->ram_size >> 20), (unsigned long long)gpa);
		free(data);
		return ret;
	}
	initrd_place(vm, data, size, host, gpa);
	return 0;
}

int loader_load_initrd_high(struct vm *vm, uint64_t floor, uint64_t ceiling,
			    const char *ceiling_what, struct err *e)
{
	uint8_t *data;
	size_t size;
	floor = (floor + X86_PAGE_SIZE - 1) & ~(X86_PAGE_SIZE - 1);
	uint64_t room = ceiling > floor ? ceiling - floor : 0;
	int ret = initrd_read(vm, room, &data, &size, e);
	if ((ret < 0 && ret != -EFBIG) || (ret == 0 && !data))
		return ret;
	uint64_t gpa = (ceiling - size) & ~(X86_PAGE_SIZE - 1);
	void *host = ret == 0 && size <= room && gpa >= floor ? vm_gpa_to_host(vm, gpa, size)
							      : NULL;
	if (!host) {
		ret = err_set(e, ENOSPC, "initrd %s (%zu bytes) does not fit below %s (0x%llx) "
			      "with --mem %lluM: %llu bytes are free there above the kernel",
			      vm->cfg.initrd_path, size, ceiling_what,
			      (unsigned long long)ceiling, (unsigned long long)(vm->ram_size >> 20),
			      (unsigned long long)room);
		free(data);
		return ret;
	}
	initrd_place(vm, data, size, host, gpa);
	return 0;
}

/* --- vCPU 0's entry state ---------------------------------------------------- */

static void loader_build_identity_map(uint64_t *pml4)
{
	uint64_t *pdpt = pml4 + 512;
	uint64_t *pd = pdpt + 512;
	uint64_t pdpt_gpa = VMDB_BOOT_PML4 + X86_PAGE_SIZE;
	uint64_t pd_gpa = pdpt_gpa + X86_PAGE_SIZE;

	memset(pml4, 0, 2 * X86_PAGE_SIZE);
	pml4[0] = pdpt_gpa | PTE_P | PTE_W;
	for (unsigned g = 0; g < IDENTITY_GIB; g++)
		pdpt[g] = (pd_gpa + g * X86_PAGE_SIZE) | PTE_P | PTE_W;
	for (uint64_t i = 0; i < IDENTITY_GIB * 512ull; i++)
		pd[i] = i * X86_PAGE_SIZE_2M | PTE_P | PTE_W | PTE_PS;
}

static struct x86_segment loader_segment(uint16_t sel, uint64_t desc)
{
	bool code = desc == LOADER_DESC_CODE64 || desc == LOADER_DESC_CODE32;
	return (struct x86_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel,
		.type = code ? SEG_TYPE_CODE_XR_ACCESSED : SEG_TYPE_DATA_RW_ACCESSED, .present = 1, .s = 1,
		.l = desc == LOADER_DESC_CODE64, .db = desc != LOADER_DESC_CODE64, .g = 1,
	};
}

/* GDT then page tables, both in guest RAM the caller reserved. */
static int loader_write_tables(struct vm *vm, const struct loader_entry *entry, struct err *e)
{
	uint64_t gdt[LOADER_GDT_SEGMENTS + 2] = { 0 };
	memcpy(gdt, entry->gdt, sizeof(entry->gdt));
	gdt[0] = 0;
	gdt[LOADER_SEL_TSS / 8] =
		(uint64_t)(DESC_PRESENT | SYS_TYPE_TSS_BUSY) << DESC_ACCESS_SHIFT | TSS_MIN_LIMIT;
	void *host = vm_gpa_to_host(vm, entry->gdt_gpa, sizeof(gdt));
	if (!host)
		return err_set(e, ENOSPC, "no RAM for the boot GDT at 0x%llx",
			       (unsigned long long)entry->gdt_gpa);
	memcpy(host, gdt, sizeof(gdt));
	if (!entry->long_mode)
		return 0;
	uint64_t *pml4 = vm_gpa_to_host(vm, VMDB_BOOT_PML4, (2 + IDENTITY_GIB) * X86_PAGE_SIZE);
	if (!pml4)
		return err_set(e, ENOSPC, "no RAM for the boot page tables at 0x%x",
			       VMDB_BOOT_PML4);
	loader_build_identity_map(pml4);
	return 0;
}

int loader_enter(struct vm *vm, const struct loader_entry *entry, struct err *e)
{
	int ret = loader_write_tables(vm, entry, e);
	if (ret < 0)
		return ret;
	const struct engine_ops *ops = vm->engine;
	struct vcpu *bsp = &vm->vcpus[0];
	struct x86_sregs s;
	ret = engine_get_sregs(ops, bsp, &s);
	if (ret < 0)
		return err_set(e, -ret, "cannot read vCPU 0 system registers");
	s.cs = loader_segment(entry->code_sel, entry->gdt[entry->code_sel / 8]);
	s.ds = s.es = s.fs = s.gs = s.ss =
		loader_segment(entry->data_sel, entry->gdt[entry->data_sel / 8]);
	s.tr = (struct x86_segment){ .selector = LOADER_SEL_TSS, .limit = TSS_MIN_LIMIT,
				     .type = SYS_TYPE_TSS_BUSY, .present = 1 };
	s.ldt = (struct x86_segment){ .type = SYS_TYPE_LDT, .unusable = 1 };
	s.gdt = (struct x86_dtable){ .base = entry->gdt_gpa,
				     .limit = LOADER_SEL_TSS + (entry->long_mode ? 16 : 8) - 1 };
	s.idt = (struct x86_dtable){ .base = 0, .limit = 0 };
	if (entry->long_mode) {
		s.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
		s.cr3 = VMDB_BOOT_PML4;
		s.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
		s.efer = EFER_LME | EFER_LMA;
	} else {
		s.cr0 = CR0_PE | CR0_ET;
		s.cr3 = s.cr4 = s.efer = 0;
	}
	ret = engine_set_sregs(ops, bsp, &s);
	if (ret < 0)
		return err_set(e, -ret, "vCPU 0 refused the %s system registers",
			       entry->long_mode ? "long-mode" : "protected-mode");
	struct x86_regs r = entry->regs;
	r.rflags = RFLAGS_FIXED1;
	ret = engine_set_regs(ops, bsp, &r);
	if (ret < 0)
		return err_set(e, -ret, "vCPU 0 refused the entry registers");
	return 0;
}

int loader_open(const char *path, struct kernel_image *image, struct err *e)
{
	memset(image, 0, sizeof(*image));
	image->path = path;
	int ret = loader_read_file("kernel", path, LOADER_KERNEL_MAX, &image->data, &image->size,
				   e);
	if (ret == -EFBIG)
		return err_set(e, EFBIG, "kernel %s (%zu bytes) is larger than the %llu GiB "
			       "kernel files vmdb boots", path, image->size,
			       LOADER_KERNEL_MAX >> 30);
	if (ret < 0)
		return ret;
	image->format = loader_detect(image->data, image->size);
	if (image->format == KERNEL_UNKNOWN) {
		loader_close(image);
		return err_set(e, ENOEXEC, "kernel %s: not an ELF64, multiboot, Linux bzImage or "
			       "PVH kernel",
			       path);
	}
	return 0;
}

void loader_close(struct kernel_image *image)
{
	free(image->data);
	image->data = NULL;
}

int loader_load(struct vm *vm, const struct kernel_image *image, struct err *e)
{
	static int (*const back_end[])(struct vm *, const uint8_t *, size_t, struct err *) = {
		[KERNEL_ELF64] = load_elf64, [KERNEL_MULTIBOOT] = load_multiboot,
		[KERNEL_BZIMAGE] = load_bzimage, [KERNEL_PVH] = load_pvh,
	};
	if (image->format <= KERNEL_UNKNOWN || image->format > KERNEL_PVH)
		return err_set(e, ENOEXEC, "kernel %s: unknown format", image->path);
	int ret = back_end[image->format](vm, image->data, image->size, e);
	if (ret < 0)
		return err_wrap(e, "kernel %s", image->path);
	return 0;
}
