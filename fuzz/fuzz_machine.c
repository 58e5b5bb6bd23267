/* fuzz/fuzz_machine.c — the real machine the fuzz targets drive. */
#include "fuzz/fuzz_machine.h"

#include <stdio.h>
#include <stdlib.h>

struct vm *fuzz_machine(unsigned nr_vcpus, unsigned mem_mib, const char *initrd_path)
{
	static struct vm vm;         /* one machine per fuzzing process */
	struct vm_config cfg = {
		.engine = "emu",
		.nr_vcpus = nr_vcpus,
		.mem_size = (uint64_t)mem_mib << 20,
		.serial = SERIAL_NONE,
		.kernel_path = "fuzz-input",
		.initrd_path = initrd_path,
		.cmdline = "console=ttyS0 fuzz",
	};
	struct err e = { 0 };
	if (vm_create_machine(&vm, &cfg, &e) < 0) {
		fprintf(stderr, "fuzz: cannot make the machine: %s\n", e.msg);
		abort();
	}
	return &vm;
}
