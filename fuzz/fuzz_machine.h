/* fuzz/fuzz_machine.h — what the libFuzzer targets share: a real machine
 * (machine/vm.c, every device, the emu engine) made once per process, and
 * a little reader of the fuzzer's bytes. A harness failure (the machine
 * cannot be made) aborts: it is no finding. */
#ifndef VMDB_FUZZ_MACHINE_H
#define VMDB_FUZZ_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/vm.h"

/* The emu engine's machine with nr_vcpus and mem_mib of RAM, no kernel,
 * no serial output, initrd_path as given (may be NULL). */
struct vm *fuzz_machine(unsigned nr_vcpus, unsigned mem_mib, const char *initrd_path);
/* Back to power-on between inputs, as a guest reset does: every vCPU's
 * registers, emu's LAPIC/IOAPIC/PIC/PIT made anew, every device's reset;
 * RAM and emu's caches are kept (a new emu VM costs more than most inputs
 * do); the machine no longer stopping. */
void fuzz_machine_power_on(struct vm *vm);

/* The input, read front to back; reads past its end give zeros. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint64_t fuzz_take(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t b = 0;
		if (in->left) {
			b = *in->p++;
			in->left--;
		}
		v |= (uint64_t)b << (8 * i);
	}
	return v;
}

#endif
