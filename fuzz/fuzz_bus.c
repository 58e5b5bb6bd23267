/* fuzz/fuzz_bus.c — port I/O, MMIO, MSR, IRQ-line and time sequences
 * against every device of a real machine: the machine's buses (UART,
 * CMOS, i8042, PCI, fw_cfg with its DMA into guest RAM, ACPI PM, debug
 * exit, legacy ports) as machine/vm.c's exit handlers reach them, and the
 * emu engine's own LAPIC, IOAPIC, PIC and PIT as emu's core reaches them.
 * Each input starts from power-on (fuzz_machine_power_on). Any sequence
 * must end without a crash, a sanitizer report or a hang. */
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu.h"
#include "engine/emu/emu_platform.h"
#include "fuzz/fuzz_machine.h"

#define NR_VCPUS 2
#define MAX_OPS  256

static struct vm *vm;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vm = fuzz_machine(NR_VCPUS, 16, NULL);
	return 0;
}

/* An address on a bus: mostly inside (or just past) a registered range,
 * sometimes anywhere. */
static uint64_t pick_addr(struct fuzz_in *in, const struct bus *bus, uint64_t any_mask)
{
	uint8_t how = (uint8_t)fuzz_take(in, 1);
	if (bus->nr_ranges == 0 || how >= 0xf0)
		return fuzz_take(in, 8) & any_mask;
	const struct bus_range *r = &bus->ranges[how % bus->nr_ranges];
	uint64_t off = fuzz_take(in, 2);
	return r->base + off % (r->len + 8);
}

/* Port I/O as vcpu_handle_io does it: size 1, 2 or 4, count times. */
static void machine_pio(struct fuzz_in *in, bool write)
{
	static const uint8_t sizes[] = { 1, 2, 4 };
	uint8_t data[4 * 4];
	uint16_t port = (uint16_t)pick_addr(in, &vm->pio, 0xffff);
	uint8_t form = (uint8_t)fuzz_take(in, 1);
	unsigned size = sizes[form % 3], count = 1 + (form >> 6);
	uint64_t v = fuzz_take(in, 8);
	for (unsigned i = 0; i < size * count; i++)
		data[i] = (uint8_t)(v >> (8 * (i % 8)));
	for (unsigned i = 0; i < count; i++)
		if (bus_access(&vm->pio, port, data + i * size, size, write) < 0 && !write)
			memset(data + i * size, 0xff, size);
}

/* MMIO as vcpu_handle_mmio does it: 1 to 8 bytes. */
static void machine_mmio(struct fuzz_in *in, bool write)
{
	uint8_t data[8];
	uint64_t gpa = pick_addr(in, &vm->mmio, ~0ull);
	unsigned len = 1 + (unsigned)fuzz_take(in, 1) % 8;
	uint64_t v = fuzz_take(in, 8);
	memcpy(data, &v, sizeof(data));
	bus_access(&vm->mmio, gpa, data, len, write);
}

static struct emu_cpu *pick_cpu(struct fuzz_in *in)
{
	return vm->vcpus[fuzz_take(in, 1) % NR_VCPUS].engine;
}

/* The PIC's, PIT's and port 0x61's ports, and their neighbours. */
static void platform_pio(struct fuzz_in *in, bool write)
{
	static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43,
					  0x61, 0x4d0, 0x4d1 };
	uint8_t data[4];
	struct emu_cpu *cpu = pick_cpu(in);
	uint8_t which = (uint8_t)fuzz_take(in, 1);
	uint16_t port = (uint16_t)(ports[which % 11] + (which >> 7));
	unsigned len = 1u << (fuzz_take(in, 1) % 3);
	uint32_t v = (uint32_t)fuzz_take(in, 4);
	memcpy(data, &v, sizeof(data));
	emu_platform_pio(cpu, port, data, len, write);
}

/* LAPIC (at its base, wherever IA32_APIC_BASE put it) and IOAPIC pages. */
static void platform_mmio(struct fuzz_in *in, bool write)
{
	uint8_t data[8];
	struct emu_cpu *cpu = pick_cpu(in);
	uint8_t which = (uint8_t)fuzz_take(in, 1);
	uint64_t off = fuzz_take(in, 2) & 0xfff;
	uint64_t base = which & 1 ? EMU_IOAPIC_BASE : cpu->sregs.apic_base & ~0xfffull;
	if (which & 2)
		off &= ~0xfull;         /* registers sit on 16-byte boundaries */
	unsigned len = 1 + (unsigned)fuzz_take(in, 1) % 8;
	uint64_t v = fuzz_take(in, 8);
	memcpy(data, &v, sizeof(data));
	emu_platform_mmio(cpu, base + off, data, len, write);
}

/* IA32_APIC_BASE, TSC_DEADLINE and the x2APIC range, guest and debugger
 * doors. */
static void platform_msr(struct fuzz_in *in)
{
	struct emu_cpu *cpu = pick_cpu(in);
	uint8_t which = (uint8_t)fuzz_take(in, 1);
	uint32_t msr = which < 32 ? 0x1b : which < 64 ? 0x6e0 : 0x800 + (uint32_t)fuzz_take(in, 1);
	uint64_t v = fuzz_take(in, 8);
	bool write = which & 1;
	if (which & 2)
		(void)emu_platform_msr_debug(cpu, msr, &v, write);
	else
		emu_platform_msr(cpu, msr, &v, write);
	cpu->pending.exception = false;       /* a #GP the guest would take */
}

/* Guest time moves on: a little, up to the next deadline, or a leap. */
static void advance_time(struct fuzz_in *in)
{
	struct emu_vm *evm = vm->engine_vm;
	uint8_t how = (uint8_t)fuzz_take(in, 1);
	uint64_t now = emu_guest_ns(evm), next = emu_next_deadline_ns(evm);
	uint64_t to = now + fuzz_take(in, how & 0x80 ? 5 : 2);
	if ((how & 3) == 0 && next != EMU_NO_DEADLINE && next > now)
		to = next;
	emu_platform_advance(evm, to);
}

/* The CPU takes what the LAPIC offers (IRR -> ISR, or the PIC's INTA). */
static void take_interrupt(struct fuzz_in *in)
{
	struct emu_cpu *cpu = pick_cpu(in);
	if (emu_lapic_has_interrupt(cpu)) {
		int vector = emu_lapic_pending_vector(cpu);
		if (vector >= 0)
			emu_lapic_accept(cpu, vector);
	}
	emu_lapic_set_cr8(cpu, fuzz_take(in, 1) & 0xf);
	(void)emu_lapic_get_cr8(cpu);
}

static void one_op(struct fuzz_in *in)
{
	uint8_t op = (uint8_t)fuzz_take(in, 1);
	bool write = op & 0x80;
	switch (op % 8) {
	case 0: machine_pio(in, write); break;
	case 1: machine_mmio(in, write); break;
	case 2: platform_pio(in, write); break;
	case 3: platform_mmio(in, write); break;
	case 4: platform_msr(in); break;
	case 5: advance_time(in); break;
	case 6: take_interrupt(in); break;
	case 7: vm_irq_line(vm, (unsigned)fuzz_take(in, 1) % 32, write); break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	fuzz_machine_power_on(vm);
	for (unsigned n = 0; n < MAX_OPS && in.left; n++)
		one_op(&in);
	return 0;
}
