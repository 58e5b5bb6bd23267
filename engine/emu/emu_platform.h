/* engine/emu/emu_platform.h — the software engine's own devices: one local
 * APIC per vCPU (emu_lapic.c), the I/O APIC (emu_ioapic.c), the 8259 pair
 * (emu_pic.c), the 8254 PIT with port 0x61 (emu_pit.c) and guest time
 * (emu_time.c). They play the part KVM's in-kernel irqchip plays for the
 * kvm engine, so machine/ never sees their ports or MMIO.
 *
 * Guest time (emu_time.c): 1 ns per retired instruction, summed over all
 * vCPUs (cpu->retired), plus the time skipped while every vCPU was halted
 * (emu_platform_advance with a time beyond the sum jumps the clock), plus
 * EMU_ISA_IO_NS for each access to the PIT, PIC or port 0x61: an ISA bus
 * cycle takes about a microsecond on a PC, and guests that poll the PIT
 * (guests/rt/time.c bounds its polls by count) rely on polls being slow. Since
 * one vCPU runs at a time, this is the time of a single host CPU sharing
 * itself among the vCPUs; it never reads the host clock, so it is
 * deterministic. Rates the guest sees:
 *   TSC              1 GHz: TSC = emu_guest_ns() + cpu->tsc_offset
 *   LAPIC timer      1 GHz bus clock (as KVM), divided by TDCR
 *   PIT              1.193182 MHz
 *
 * Locking: all platform state (every LAPIC too) is under one mutex inside
 * struct emu_platform, because irq_line may come from any thread (the UART
 * is driven by whichever thread handles its I/O). The functions here take
 * it themselves; none is called with it held when it calls back into CORE
 * (emu_cpu_init, emu_cpu_sipi, emu_vm_wake, emu_raise), so CORE may call
 * back into the platform from those. The reverse order is CORE's to keep:
 * do not call the platform while holding a lock that emu_vm_wake() takes
 * (emu_lapic_has_interrupt, emu_next_deadline_ns and emu_guest_ns take no
 * lock and are safe anywhere; emu_vm_platform/emu_vm_cpu/emu_vm_nr_cpus
 * are called under the platform lock, so they must not take locks either).
 * Fast path: emu_lapic_pending_vector() reads an atomic flag first and
 * takes no lock when nothing is pending for that vCPU.
 *
 * What CORE calls when (all on the vCPU thread that holds the run token):
 *   vm_create      emu_platform_create(evm)       after the emu_vm exists
 *   vm_destroy     emu_platform_destroy(evm)
 *   vcpu_create    emu_lapic_create(cpu)          after CORE's register
 *                  reset (cpu->id, cpu->evm set): it sets
 *                  cpu->sregs.apic_base to 0xFEE00000 | EN (| BSP for id 0).
 *                  cpu->sregs.apic_base is the LAPIC's mode and base: CORE's
 *                  emu_cpu_init() must leave it alone (INIT keeps it).
 *   NMI            an NMI IPI sets cpu->pending.nmi and calls emu_vm_wake
 *   vcpu_destroy   emu_lapic_destroy(cpu)
 *   IN/OUT         emu_platform_pio() first; false -> VM_EXIT_IO
 *   non-RAM access emu_platform_mmio() first; false -> VM_EXIT_MMIO
 *   RDMSR/WRMSR    emu_platform_msr() first; false -> CORE's own MSRs
 *   MOV CR8        emu_lapic_get_cr8() / emu_lapic_set_cr8()
 *   boundaries     emu_lapic_pending_vector() when RFLAGS.IF and no
 *                  shadow; on delivery emu_lapic_accept(); a halted vCPU
 *                  wakes when emu_lapic_has_interrupt() (IF=1) is true
 *   time           after instructions retire, when emu_guest_ns() >=
 *                  emu_next_deadline_ns(): emu_platform_advance(evm,
 *                  emu_guest_ns(evm)); when every vCPU is halted (or
 *                  waiting for SIPI): emu_platform_advance(evm,
 *                  emu_next_deadline_ns(evm)) unless that is
 *                  EMU_NO_DEADLINE (then wait for emu_vm_wake); in a
 *                  storm of timers that wake nobody, up to the host
 *                  clock at once (emu_engine.c)
 *   irq_line op    emu_platform_irq_line(vm, irq, level) has the
 *                  engine_vm_ops.irq_line signature: put it in the table
 *                  (vm->engine_vm must be the struct emu_vm *).
 */
#ifndef VMDB_EMU_PLATFORM_H
#define VMDB_EMU_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm;
struct emu_vm;
struct emu_cpu;
struct emu_platform;

#define EMU_NO_DEADLINE UINT64_MAX
#define EMU_TSC_HZ      1000000000ull
#define EMU_APIC_BUS_HZ 1000000000ull
#define EMU_PIT_HZ      1193182ull
#define EMU_ISA_IO_NS   1000ull

#define EMU_APIC_DEFAULT_BASE 0xfee00000ull
#define EMU_IOAPIC_BASE       0xfec00000ull

/* --- implemented by CORE (emu_engine.c / emu_cpu.c) --- */

/* INIT: the vCPU goes to the wait-for-SIPI state with reset registers
 * (the LAPIC has already reset itself). */
void emu_cpu_init(struct emu_cpu *cpu);
/* STARTUP: a vCPU waiting for SIPI starts in real mode at CS = vector << 8,
 * IP = 0. Only called when cpu->wait_sipi. */
void emu_cpu_sipi(struct emu_cpu *cpu, uint8_t vector);
/* Where emu_platform_create() keeps its state, and the vCPUs. */
struct emu_platform *emu_vm_platform(struct emu_vm *evm);
void emu_vm_set_platform(struct emu_vm *evm, struct emu_platform *plat);
unsigned emu_vm_nr_cpus(struct emu_vm *evm);
/* The vCPU with that index (== cpu->id == APIC ID), NULL if not created. */
struct emu_cpu *emu_vm_cpu(struct emu_vm *evm, unsigned index);
/* Something arrived for `cpu` (interrupt, NMI) from any thread: a halted
 * vCPU must look again; a scheduler sleeping because all are halted must
 * wake. */
void emu_vm_wake(struct emu_vm *evm, struct emu_cpu *cpu);

/* --- the platform --- */

/* 0 or -errno. Calls emu_vm_set_platform(). */
int emu_platform_create(struct emu_vm *evm);
void emu_platform_destroy(struct emu_vm *evm);

/* Per vCPU: 0 or -errno (fills cpu->lapic). */
int emu_lapic_create(struct emu_cpu *cpu);
void emu_lapic_destroy(struct emu_cpu *cpu);

/* true = one of our devices handled it (data filled for reads). */
bool emu_platform_pio(struct emu_cpu *cpu, uint16_t port, uint8_t *data, unsigned len,
		      bool write);
bool emu_platform_mmio(struct emu_cpu *cpu, uint64_t gpa, uint8_t *data, unsigned len,
		       bool write);
/* IA32_APIC_BASE (0x1b), IA32_TSC_DEADLINE (0x6e0), x2APIC 0x800-0x8ff.
 * true = ours. An invalid access (x2APIC MSR in xAPIC mode, reserved bits,
 * illegal mode transition, write to a read-only register) has called
 * emu_raise(cpu, #GP, 0) before returning true. */
bool emu_platform_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write);
/* The same for the debugger, which raises nothing in the guest: 0,
 * -ENOENT (not one of ours), -EINVAL (an access the guest would #GP on). */
int emu_platform_msr_debug(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write);
/* The debugger's view of cpu's LAPIC and of the IOAPIC and PIC pair. */
struct engine_irqchip;
void emu_platform_irqchip(struct emu_cpu *cpu, struct engine_irqchip *chip);

/* engine_vm_ops.irq_line: ISA IRQ / GSI `irq` to the IOAPIC (IRQ0 -> pin 2,
 * as the MADT says) and to the PIC. */
int emu_platform_irq_line(struct vm *vm, unsigned irq, int level);
/* The same, from inside the engine (tests use it too). */
void emu_platform_set_irq(struct emu_vm *evm, unsigned irq, int level);

/* --- interrupt acceptance (emu.h declares the first two too) --- */

/* Highest-priority vector the vCPU may take now (above TPR/PPR, or the
 * PIC's vector via LINT0 ExtINT), -1 if none. IF is the caller's business. */
int emu_lapic_pending_vector(struct emu_cpu *cpu);
/* The CPU took `vector` (from emu_lapic_pending_vector): IRR -> ISR, or
 * the PIC's INTA. */
void emu_lapic_accept(struct emu_cpu *cpu, int vector);
/* Cheap (no lock): something may be pending; a halted vCPU with IF=1
 * should run when this is true. */
bool emu_lapic_has_interrupt(struct emu_cpu *cpu);
/* CR8 <-> TPR[7:4]. */
uint64_t emu_lapic_get_cr8(struct emu_cpu *cpu);
void emu_lapic_set_cr8(struct emu_cpu *cpu, uint64_t cr8);
/* Reset the LAPIC (power-on: also ID and base; INIT: keeps them). The
 * LAPIC calls it itself for INIT IPIs; CORE calls it for a system reset. */
void emu_lapic_reset(struct emu_cpu *cpu, bool power_on);

/* --- snapshots (emu_snap.c) --- */

/* The platform's whole state (every LAPIC, the IOAPIC, PIC, PIT and the
 * clock's extra time) as emu_platform_snap_size() bytes, and back; the
 * vCPUs' retired counts, the other part of guest time, are CORE's. */
size_t emu_platform_snap_size(struct emu_vm *evm);
void emu_platform_save(struct emu_vm *evm, void *buf);
void emu_platform_restore(struct emu_vm *evm, const void *buf);

/* --- guest time (emu_time.c) --- */

/* engine_vm_ops.guest_ns: emu_guest_ns() of the machine's emu_vm. */
uint64_t emu_platform_guest_ns(struct vm *vm);

/* Guest time in ns (1 per retired instruction + skipped idle time). */
uint64_t emu_guest_ns(struct emu_vm *evm);
/* TSC of this vCPU: emu_guest_ns() + cpu->tsc_offset. */
uint64_t emu_tsc(struct emu_cpu *cpu);
/* Earliest pending timer (LAPIC timers, PIT channel 0) or EMU_NO_DEADLINE.
 * Lock-free read of a cached value. */
uint64_t emu_next_deadline_ns(struct emu_vm *evm);
/* Fire every timer due at or before now_ns; if now_ns is beyond
 * emu_guest_ns(), the clock jumps to now_ns (all vCPUs idle). */
void emu_platform_advance(struct emu_vm *evm, uint64_t now_ns);

#endif
