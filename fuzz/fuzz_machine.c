/* fuzz/fuzz_machine.c — the real machine the fuzz targets drive. */
#include "fuzz/fuzz_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		emu_lapic_destroy(cpu);
		emu_cpu_reset(cpu);
		emu_core_of(cpu)->shutdown = false;   /* a reset ends the shutdown state */
	}
	emu_platform_destroy(evm);
	int r = emu_platform_create(evm);
	for (unsigned i = 0; r >= 0 && i < vm->nr_vcpus; i++)
		r = emu_lapic_create(vm->vcpus[i].engine);
	if (r < 0) {
		fprintf(stderr, "fuzz: cannot power emu's devices on again: %s\n", strerror(-r));
		abort();
	}
	for (unsigned i = 0; i < vm->nr_resets; i++)
		vm->resets[i].fn(vm->resets[i].opaque);
	vm->stopping = vm->reset_pending = false;
	vm->exit_status = 0;
	vm->exit_message[0] = '\0';
}
