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
 * registers and guest time, emu's LAPIC/IOAPIC/PIC/PIT made anew, every
 * device's reset; RAM (fuzz_ram_restore brings it back), the ACPI tables in
 * it and emu's caches are kept (a new emu VM costs more than most inputs
 * do); the machine no longer stopping. */
void fuzz_machine_power_on(struct vm *vm);

/* Guest RAM back to a saved image in one mmap() over vm->ram: the image is
 * a memfd mapped private, so the kernel's copy-on-write tracks the pages an
 * input wrote and dropping the mapping forgets them; pages the input never
 * touched cost nothing. fuzz_ram_image takes RAM's present content as an
 * image (a harness failure aborts). */
int fuzz_ram_image(const struct vm *vm);
void fuzz_ram_restore(struct vm *vm, int image);

/* VMDB_FUZZ_DIGEST=1: fuzz_digest_report prints "digest <input> <state>"
 * (64-bit FNV-1a of the input and of what the harness says it left) to
 * stderr, so runs of one corpus in different orders can be compared: an
 * input must do the same thing whatever ran before it. */
bool fuzz_digest_wanted(void);
uint64_t fuzz_digest(uint64_t h, const void *p, size_t len);
void fuzz_digest_report(const uint8_t *data, size_t size, uint64_t state);

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
