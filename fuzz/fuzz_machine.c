/* fuzz/fuzz_machine.c — the real machine the fuzz targets drive. */
#include "fuzz/fuzz_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_platform.h"

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

void fuzz_machine_power_on(struct vm *vm)
{
	struct emu_vm *evm = vm->engine_vm;

	for (unsigned i = 0; i < vm->nr_vcpus; i++) {
		struct emu_cpu *cpu = vm->vcpus[i].engine;
		struct emu_core *c = emu_core_of(cpu);
		emu_lapic_destroy(cpu);
		emu_cpu_reset(cpu);
		c->shutdown = false;   /* a reset ends the shutdown state */
		/* guest time restarts too (the TSC, the timers' phase), and what a
		 * debugger's step over HLT left */
		cpu->retired = 0;
		c->hlt_step = false;
		c->pin_len = 0;
		c->kick = false;
	}
	emu_platform_destroy(evm);
	int r = emu_platform_create(evm);
	for (unsigned i = 0; r >= 0 && i < vm->nr_vcpus; i++)
		r = emu_lapic_create(vm->vcpus[i].engine);
	if (r < 0) {
		fprintf(stderr, "fuzz: cannot power emu's devices on again: %s\n", strerror(-r));
		abort();
	}
	/* the devices' hooks; a hook on the whole machine (the ACPI tables)
	 * only rewrites RAM, which the harnesses set up themselves */
	for (unsigned i = 0; i < vm->nr_resets; i++)
		if (vm->resets[i].opaque != vm)
			vm->resets[i].fn(vm->resets[i].opaque);
	vm->stopping = vm->reset_pending = false;
	vm->exit_status = 0;
	vm->exit_message[0] = '\0';
}

int fuzz_ram_image(const struct vm *vm)
{
	int fd = memfd_create("vmdb-fuzz-ram", MFD_CLOEXEC);
	if (fd < 0 || pwrite(fd, vm->ram, vm->ram_size, 0) != (ssize_t)vm->ram_size) {
		perror("fuzz: cannot keep an image of guest RAM");
		abort();
	}
	return fd;
}

void fuzz_ram_restore(struct vm *vm, int image)
{
	if (mmap(vm->ram, vm->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED,
		 image, 0) == MAP_FAILED) {
		perror("fuzz: cannot map the image of guest RAM");
		abort();
	}
}

bool fuzz_digest_wanted(void)
{
	static int wanted = -1;
	if (wanted < 0) {
		const char *v = getenv("VMDB_FUZZ_DIGEST");
		wanted = v && strcmp(v, "1") == 0;
	}
	return wanted;
}

uint64_t fuzz_digest(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;
	if (!h)
		h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return h;
}

void fuzz_digest_report(const uint8_t *data, size_t size, uint64_t state)
{
	fprintf(stderr, "digest %016llx %016llx\n",
		(unsigned long long)fuzz_digest(0, data, size), (unsigned long long)state);
}
