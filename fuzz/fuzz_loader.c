/* fuzz/fuzz_loader.c — the kernel loaders on any bytes: the format
 * detection and loader_load() as vmdb runs them, then each back end
 * (ELF64, multiboot with ELF32 or a.out-kludge images, bzImage, PVH) on
 * the same bytes, whatever the detection said, each on a real machine
 * (emu engine, 64 MiB, a 4 KiB initrd). A refusal is the expected answer
 * to most inputs; the finding is a crash, a sanitizer report or a hang.
 * Seeds: our own guests (fuzz/fuzz.mk). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/fuzz_machine.h"
#include "machine/loader.h"

static struct vm *vm;

/* The initrd the loaders place after the kernel: a small file of ours. */
static const char *make_initrd(void)
{
	static char path[] = "/tmp/vmdb-fuzz-initrd-XXXXXX";
	static uint8_t bytes[4096];
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, bytes, sizeof(bytes)) != (ssize_t)sizeof(bytes)) {
		perror("fuzz: initrd");
		abort();
	}
	close(fd);
	return path;
}

static void remove_initrd(void)
{
	unlink(vm->cfg.initrd_path);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vm = fuzz_machine(1, 64, make_initrd());
	atexit(remove_initrd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int (*const back_ends[])(struct vm *, const uint8_t *, size_t, struct err *) = {
		load_elf64, load_multiboot, load_bzimage, load_pvh,
	};
	/* a private copy: the loaders must not depend on bytes past size */
	uint8_t *image = malloc(size ? size : 1);
	memcpy(image, data, size);
	struct err e = { 0 };
	struct kernel_image k = { .path = "fuzz-input", .data = image, .size = size,
				  .format = loader_detect(image, size) };
	if (k.format != KERNEL_UNKNOWN && loader_load(vm, &k, &e) < 0 && !e.msg[0])
		abort();        /* a refusal always says why */
	for (size_t i = 0; i < sizeof(back_ends) / sizeof(back_ends[0]); i++) {
		memset(&e, 0, sizeof(e));
		if (back_ends[i](vm, image, size, &e) < 0 && !e.msg[0])
			abort();
	}
	free(image);
	return 0;
}
