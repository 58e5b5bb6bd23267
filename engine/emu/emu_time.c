/* engine/emu/emu_time.c — guest time and the timers' schedule.
 *
 * Guest time is 1 ns per instruction retired by any vCPU (the sum of
 * cpu->retired) plus extra_ns: the time skipped when every vCPU was halted
 * and the core jumped to the next deadline, and EMU_ISA_IO_NS per access
 * to the PIT / PIC ports (emu_platform.c). Nothing here reads a host
 * clock: the same instruction trace gives the same times, so timer
 * interrupts land on the same instructions on every run. Both terms only
 * grow, so guest time is monotonic.
 *
 * The next deadline (earliest LAPIC timer or PIT channel 0 IRQ) is cached
 * in an atomic so the core can compare against it after every instruction
 * or quantum without the lock. */
#include "engine/emu/emu_platform_priv.h"

#include "engine/emu/emu.h"

uint64_t emu_guest_ns(struct emu_vm *evm)
{
	struct emu_platform *plat = emu_vm_platform(evm);
	unsigned n = emu_vm_nr_cpus(evm);
	uint64_t t = plat ? __atomic_load_n(&plat->extra_ns, __ATOMIC_ACQUIRE) : 0;

	for (unsigned i = 0; i < n; i++) {
		struct emu_cpu *cpu = emu_vm_cpu(evm, i);
		if (cpu)
			t += cpu->retired;
	}
	return t;
}

uint64_t emu_tsc(struct emu_cpu *cpu)
{
	return emu_guest_ns(cpu->evm) + cpu->tsc_offset;
}

uint64_t emu_next_deadline_ns(struct emu_vm *evm)
{
	struct emu_platform *plat = emu_vm_platform(evm);

	return plat ? __atomic_load_n(&plat->next_deadline, __ATOMIC_ACQUIRE) : EMU_NO_DEADLINE;
}

void plat_update_deadline_locked(struct emu_platform *plat)
{
	uint64_t next = pit_deadline_locked(plat);
	unsigned n = emu_vm_nr_cpus(plat->evm);

	for (unsigned i = 0; i < n; i++) {
		struct emu_cpu *cpu = emu_vm_cpu(plat->evm, i);
		if (cpu && cpu->lapic) {
			uint64_t d = lapic_timer_deadline_locked(cpu->lapic);
			if (d < next)
				next = d;
		}
	}
	__atomic_store_n(&plat->next_deadline, next, __ATOMIC_RELEASE);
}

void emu_platform_advance(struct emu_vm *evm, uint64_t now_ns)
{
	struct emu_platform *plat = emu_vm_platform(evm);

	if (!plat)
		return;
	plat_lock(plat);
	uint64_t t = emu_guest_ns(evm);
	if (now_ns > t)
		__atomic_add_fetch(&plat->extra_ns, now_ns - t, __ATOMIC_ACQ_REL);
	else
		now_ns = t;
	unsigned n = emu_vm_nr_cpus(evm);
	for (unsigned i = 0; i < n; i++) {
		struct emu_cpu *cpu = emu_vm_cpu(evm, i);
		if (cpu && cpu->lapic)
			lapic_timer_advance_locked(cpu->lapic, now_ns);
	}
	pit_advance_locked(plat, now_ns);
	plat_update_deadline_locked(plat);
	plat_unlock(plat);
}
