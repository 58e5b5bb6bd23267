/* machine/loader.c — reads the kernel file, tells ELF64 from multiboot and
 * hands it to the back end (machine/load_elf64.c, load_multiboot.c). Also
 * the pieces both back ends share: reading a whole file and placing the
 * initrd. */
#include "machine/loader.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine/vm.h"
#include "x86/desc.h"

#define ELF_MAGIC0       0x7f
#define ELF_CLASS64      2
#define ELF_DATA_LSB     1
#define ELF_EM_X86_64    62
#define ELF_EI_CLASS     4
#define ELF_EI_DATA      5
#define ELF_E_MACHINE    18   /* offset of e_machine (both classes) */

#define MULTIBOOT_MAGIC  0x1badb002u
#define MULTIBOOT_SEARCH 8192

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
	if (loader_is_elf64(image, size))
		return KERNEL_ELF64;
	if (loader_has_multiboot_header(image, size))
		return KERNEL_MULTIBOOT;
	return KERNEL_UNKNOWN;
}

int loader_read_file(const char *what, const char *path, uint8_t **data, size_t *size,
		     struct err *e)
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

int loader_load_initrd(struct vm *vm, uint64_t after, uint64_t limit, struct err *e)
{
	vm->initrd_gpa = vm->initrd_size = 0;
	if (!vm->cfg.initrd_path)
		return 0;

	uint8_t *data;
	size_t size;
	int ret = loader_read_file("initrd", vm->cfg.initrd_path, &data, &size, e);
	if (ret < 0)
		return ret;
	uint64_t gpa = (after + X86_PAGE_SIZE - 1) & ~(X86_PAGE_SIZE - 1);
	void *host = gpa >= after && gpa + size > gpa && gpa + size <= limit
			     ? vm_gpa_to_host(vm, gpa, size) : NULL;
	if (!host) {
		ret = err_set(e, ENOSPC, "initrd %s (%zu bytes) does not fit in --mem %lluM "
			      "after the kernel (at 0x%llx)", vm->cfg.initrd_path, size,
			      (unsigned long long)(vm->ram_size >> 20), (unsigned long long)gpa);
		free(data);
		return ret;
	}
	memcpy(host, data, size);
	free(data);
	vm->initrd_gpa = gpa;
	vm->initrd_size = size;
	return 0;
}

int loader_open(const char *path, struct kernel_image *image, struct err *e)
{
	memset(image, 0, sizeof(*image));
	image->path = path;
	int ret = loader_read_file("kernel", path, &image->data, &image->size, e);
	if (ret < 0)
		return ret;
	image->format = loader_detect(image->data, image->size);
	if (image->format == KERNEL_UNKNOWN) {
		loader_close(image);
		return err_set(e, ENOEXEC, "kernel %s: neither an ELF64 kernel nor a multiboot kernel",
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
	int ret = image->format == KERNEL_ELF64
			  ? load_elf64(vm, image->data, image->size, e)
			  : load_multiboot(vm, image->data, image->size, e);
	if (ret < 0)
		return err_wrap(e, "kernel %s", image->path);
	return 0;
}
