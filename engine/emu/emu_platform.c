/* engine/emu/emu_platform.c — the glue of the engine's own devices:
 * creation, the one lock and the work done after it (waking vCPUs, INIT
 * and SIPI), and the dispatch of port I/O, MMIO, MSRs and IRQ lines to the
 * LAPIC, IOAPIC, PIC and PIT. */
#include "engine/emu/emu_platform_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu.h"

#define IOAPIC_PAGE 0x1000ull
/* ISA IRQ0 reaches the IOAPIC on pin 2 (the MADT's interrupt override). */
#define ISA_IRQ_TIMER 0
#define IOAPIC_PIN_TIMER 2
#define ISA_IRQ_CASCADE 2
#define ISA_IRQS 16

struct emu_platform *plat_of(struct emu_cpu *cpu)
{
	return emu_vm_platform(cpu->evm);
}

int emu_platform_create(struct emu_vm *evm)
{
	struct emu_platform *plat = calloc(1, sizeof(*plat));

	if (!plat)
		return -ENOMEM;
	plat->evm = evm;
	if (pthread_mutex_init(&plat->lock, NULL) != 0) {
		free(plat);
		return -ENOMEM;
	}
	plat->next_deadline = EMU_NO_DEADLINE;
	ioapic_reset(&plat->ioapic);
	pic_reset(&plat->pic);
	pit_reset(&plat->pit);
	emu_vm_set_platform(evm, plat);
	return 0;
}

void emu_platform_destroy(struct emu_vm *evm)
{
	struct emu_platform *plat = emu_vm_platform(evm);

	if (!plat)
		return;
	emu_vm_set_platform(evm, NULL);
	pthread_mutex_destroy(&plat->lock);
	free(plat);
}

void plat_lock(struct emu_platform *plat)
{
	pthread_mutex_lock(&plat->lock);
}

void plat_queue_wake(struct emu_platform *plat, unsigned cpu_index)
{
	plat->wake[cpu_index / 64] |= 1ull << (cpu_index % 64);
}

void plat_queue_action(struct emu_platform *plat, unsigned cpu_index)
{
	plat->act[cpu_index / 64] |= 1ull << (cpu_index % 64);
}

/* The queues are taken under the lock and worked off outside it, so CORE
 * may call back into the platform from emu_vm_wake / emu_cpu_init. Work
 * queued by another thread meanwhile is done by whichever drains it. */
void plat_unlock(struct emu_platform *plat)
{
	uint64_t wake[VM_MAX_VCPUS / 64], act[VM_MAX_VCPUS / 64];

	memcpy(wake, plat->wake, sizeof(wake));
	memcpy(act, plat->act, sizeof(act));
	memset(plat->wake, 0, sizeof(plat->wake));
	memset(plat->act, 0, sizeof(plat->act));
	pthread_mutex_unlock(&plat->lock);

	for (unsigned word = 0; word < VM_MAX_VCPUS / 64; word++) {
		uint64_t any = wake[word] | act[word];
		while (any) {
			unsigned bit = (unsigned)__builtin_ctzll(any), i = word * 64 + bit;
			struct emu_cpu *cpu = emu_vm_cpu(plat->evm, i);
			any &= any - 1;
			if (!cpu)
				continue;
			if (act[word] >> bit & 1)
				lapic_run_actions(cpu);
			if (wake[word] >> bit & 1)
				emu_vm_wake(plat->evm, cpu);
		}
	}
}

bool emu_platform_pio(struct emu_cpu *cpu, uint16_t port, uint8_t *data, unsigned len,
		      bool write)
{
	struct emu_platform *plat = plat_of(cpu);
	bool pic = pic_port(port), pit = pit_port(port);

	/* no platform: the core runs for another engine (emu_single.c) */
	if ((!pic && !pit) || !plat)
		return false;
	/* These are byte-wide devices: a wider access touches only the
	 * addressed port, the rest reads as ones (as on an ISA bus). */
	if (!write)
		memset(data, 0xff, len);
	plat_lock(plat);
	if (pic)
		pic_io_locked(plat, port, data, write);
	else
		pit_io_locked(plat, port, data, write);
	plat_update_deadline_locked(plat);
	/* the access took an ISA bus cycle; sampled before it, so a poll
	 * sees the device as it was when the instruction started */
	__atomic_add_fetch(&plat->extra_ns, EMU_ISA_IO_NS, __ATOMIC_ACQ_REL);
	plat_unlock(plat);
	return true;
}

bool emu_platform_mmio(struct emu_cpu *cpu, uint64_t gpa, uint8_t *data, unsigned len,
		       bool write)
{
	if (gpa >= EMU_IOAPIC_BASE && gpa < EMU_IOAPIC_BASE + IOAPIC_PAGE && plat_of(cpu)) {
		struct emu_platform *plat = plat_of(cpu);
		plat_lock(plat);
		ioapic_mmio_locked(plat, gpa - EMU_IOAPIC_BASE, data, len, write);
		plat_unlock(plat);
		return true;
	}
	return lapic_mmio(cpu, gpa, data, len, write);
}

bool emu_platform_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write)
{
	return lapic_msr(cpu, msr, value, write);
}

int emu_platform_msr_debug(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write)
{
	return lapic_msr_access(cpu, msr, value, write);
}

void plat_set_irq_locked(struct emu_platform *plat, unsigned irq, int level)
{
	if (irq < ISA_IRQS)
		pic_set_irq_locked(plat, irq, level);
	if (irq == ISA_IRQ_TIMER)
		ioapic_set_pin_locked(plat, IOAPIC_PIN_TIMER, level);
	else if (irq != ISA_IRQ_CASCADE && irq < IOAPIC_PINS)
		ioapic_set_pin_locked(plat, irq, level);
}

void emu_platform_set_irq(struct emu_vm *evm, unsigned irq, int level)
{
	struct emu_platform *plat = emu_vm_platform(evm);

	if (!plat)
		return;
	plat_lock(plat);
	plat_set_irq_locked(plat, irq, level);
	plat_unlock(plat);
}

int emu_platform_irq_line(struct vm *vm, unsigned irq, int level)
{
	if (!vm->engine_vm)
		return -ENODEV;
	if (irq >= IOAPIC_PINS)
		return -EINVAL;
	emu_platform_set_irq(vm->engine_vm, irq, level);
	return 0;
}

uint64_t emu_platform_guest_ns(struct vm *vm)
{
	return vm->engine_vm ? emu_guest_ns(vm->engine_vm) : 0;
}

void emu_platform_irqchip(struct emu_cpu *cpu, struct engine_irqchip *chip)
{
	struct emu_platform *plat = plat_of(cpu);

	memset(chip, 0, sizeof(*chip));
	if (!plat)
		return;
	plat_lock(plat);
	if (cpu->lapic) {
		lapic_image_locked(cpu->lapic, chip->lapic);
		chip->have_lapic = true;
	}
	chip->have_ioapic = true;
	chip->ioapic_id = plat->ioapic.id << 24;
	for (unsigned i = 0; i < IOAPIC_PINS && i < ENGINE_IOAPIC_PINS; i++)
		chip->ioapic_redir[i] = plat->ioapic.redir[i];
	chip->have_pic = true;
	for (unsigned i = 0; i < 2; i++) {
		const struct emu_pic_chip *c = &plat->pic.chip[i];
		chip->pic[i] = (struct engine_pic){ .irr = c->irr, .isr = c->isr, .imr = c->imr,
						    .vector_base = c->vector_base, .elcr = c->elcr,
						    .initialised = c->init_step == 0,
						    .auto_eoi = c->auto_eoi };
	}
	plat_unlock(plat);
}

/* --- snapshots (emu_snap.c) --- */

/* The platform as bytes: guest time beyond retired instructions, the
 * IOAPIC, the PIC pair, the PIT, then one LAPIC per vCPU slot. The
 * pending wake and action bits are drained by every unlock, so they are
 * always empty here. */
struct plat_image {
	uint64_t extra_ns;
	struct emu_ioapic ioapic;
	struct emu_pic pic;
	struct emu_pit pit;
};

size_t emu_platform_snap_size(struct emu_vm *evm)
{
	return sizeof(struct plat_image) + emu_vm_nr_cpus(evm) * sizeof(struct emu_lapic);
}

void emu_platform_save(struct emu_vm *evm, void *buf)
{
	struct emu_platform *plat = emu_vm_platform(evm);
	struct plat_image img;
	struct emu_lapic *lapics = (struct emu_lapic *)((uint8_t *)buf + sizeof(img));

	memset(buf, 0, emu_platform_snap_size(evm));
	memset(&img, 0, sizeof(img));       /* the same state, the same bytes */
	plat_lock(plat);
	img.extra_ns = __atomic_load_n(&plat->extra_ns, __ATOMIC_ACQUIRE);
	img.ioapic = plat->ioapic;
	img.pic = plat->pic;
	img.pit = plat->pit;
	for (unsigned i = 0; i < emu_vm_nr_cpus(evm); i++) {
		struct emu_cpu *cpu = emu_vm_cpu(evm, i);
		if (cpu && cpu->lapic)
			memcpy(&lapics[i], cpu->lapic, sizeof(lapics[i]));
	}
	plat_unlock(plat);
	memcpy(buf, &img, sizeof(img));
}

/* A LAPIC back as saved; its links to the vCPU and the platform and the
 * lock-free attention flag are the live ones. */
static void lapic_restore_locked(struct emu_lapic *l, const struct emu_lapic *saved)
{
	struct emu_cpu *cpu = l->cpu;
	struct emu_platform *plat = l->plat;
	int attention = __atomic_load_n(&l->attention, __ATOMIC_ACQUIRE);

	memcpy(l, saved, sizeof(*l));
	l->cpu = cpu;
	l->plat = plat;
	l->attention = attention;
	lapic_update_locked(l);
}

void emu_platform_restore(struct emu_vm *evm, const void *buf)
{
	struct emu_platform *plat = emu_vm_platform(evm);
	struct plat_image img;
	const uint8_t *lapics = (const uint8_t *)buf + sizeof(img);

	memcpy(&img, buf, sizeof(img));
	plat_lock(plat);
	__atomic_store_n(&plat->extra_ns, img.extra_ns, __ATOMIC_RELEASE);
	plat->ioapic = img.ioapic;
	plat->pic = img.pic;
	plat->pit = img.pit;
	for (unsigned i = 0; i < emu_vm_nr_cpus(evm); i++) {
		struct emu_cpu *cpu = emu_vm_cpu(evm, i);
		struct emu_lapic saved;
		memcpy(&saved, lapics + i * sizeof(saved), sizeof(saved));
		if (cpu && cpu->lapic)
			lapic_restore_locked(cpu->lapic, &saved);
	}
	plat_update_deadline_locked(plat);
	plat_unlock(plat);
}
