/* engine/emu/emu_platform_priv.h — the state behind emu_platform.h, shared
 * by emu_platform.c, emu_lapic.c, emu_ioapic.c, emu_pic.c, emu_pit.c and
 * emu_time.c only. Everything here is under emu_platform.lock unless a
 * field says otherwise. Functions named *_locked expect the lock held. */
#ifndef VMDB_EMU_PLATFORM_PRIV_H
#define VMDB_EMU_PLATFORM_PRIV_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/emu/emu_platform.h"
#include "machine/vm.h"

/* --- local APIC --- */

/* Register offsets in the xAPIC page; x2APIC MSR = 0x800 + offset / 16. */
enum lapic_reg {
	LAPIC_ID = 0x020, LAPIC_VER = 0x030, LAPIC_TPR = 0x080, LAPIC_APR = 0x090,
	LAPIC_PPR = 0x0a0, LAPIC_EOI = 0x0b0, LAPIC_RRD = 0x0c0, LAPIC_LDR = 0x0d0,
	LAPIC_DFR = 0x0e0, LAPIC_SVR = 0x0f0, LAPIC_ISR = 0x100, LAPIC_TMR = 0x180,
	LAPIC_IRR = 0x200, LAPIC_ESR = 0x280, LAPIC_LVT_CMCI = 0x2f0, LAPIC_ICR = 0x300,
	LAPIC_ICR2 = 0x310, LAPIC_LVTT = 0x320, LAPIC_LVT_THERMAL = 0x330,
	LAPIC_LVT_PERF = 0x340, LAPIC_LVT_LINT0 = 0x350, LAPIC_LVT_LINT1 = 0x360,
	LAPIC_LVT_ERROR = 0x370, LAPIC_TMICT = 0x380, LAPIC_TMCCT = 0x390,
	LAPIC_TDCR = 0x3e0, LAPIC_SELF_IPI = 0x3f0,
};

#define LAPIC_MSR_FIRST      0x800u
#define LAPIC_MSR_LAST       0x8ffu
#define MSR_IA32_TSC_DEADLINE 0x6e0u

#define APIC_BASE_BSP        (1ull << 8)
#define APIC_BASE_EXTD       (1ull << 10)   /* x2APIC mode */
#define APIC_BASE_EN         (1ull << 11)   /* APIC globally enabled */
#define APIC_BASE_ADDR_MASK  0x000000fffffff000ull   /* MAXPHYADDR 40, as CPUID says */

/* Version 0x14 (integrated APIC), max LVT entry 5 (no CMCI), bit 24 clear:
 * EOI broadcast suppression not offered. */
#define LAPIC_VERSION        0x00050014u

#define LAPIC_SVR_ENABLE     (1u << 8)
#define LAPIC_SVR_MASK       0x3ffu
#define LAPIC_LVT_MASKED     (1u << 16)
#define LAPIC_LVT_LEVEL      (1u << 15)
#define LAPIC_LVT_VECTOR     0xffu
#define LAPIC_LVT_DM_SHIFT   8
#define LAPIC_LVT_DM_MASK    (7u << 8)
#define LAPIC_LVTT_MODE_SHIFT 17
#define LAPIC_LVTT_MODE_MASK (3u << 17)
#define LAPIC_DFR_FLAT       0xffffffffu
#define LAPIC_DFR_MODEL_MASK 0xf0000000u

/* LVT timer modes */
enum lapic_timer_mode { LAPIC_TIMER_ONESHOT = 0, LAPIC_TIMER_PERIODIC = 1,
			LAPIC_TIMER_TSC_DEADLINE = 2 };

/* ICR / LVT / IOAPIC delivery modes */
enum apic_dm { APIC_DM_FIXED = 0, APIC_DM_LOWEST = 1, APIC_DM_SMI = 2, APIC_DM_NMI = 4,
	       APIC_DM_INIT = 5, APIC_DM_SIPI = 6, APIC_DM_EXTINT = 7 };

#define LAPIC_ICR_VECTOR     0xffu
#define LAPIC_ICR_DM_SHIFT   8
#define LAPIC_ICR_LOGICAL    (1u << 11)
#define LAPIC_ICR_BUSY       (1u << 12)
#define LAPIC_ICR_ASSERT     (1u << 14)
#define LAPIC_ICR_LEVEL      (1u << 15)
#define LAPIC_ICR_SH_SHIFT   18
#define LAPIC_ICR_LO_MASK    0x000cdfffu    /* writable bits of ICR low */

enum apic_shorthand { APIC_SH_NONE = 0, APIC_SH_SELF = 1, APIC_SH_ALL = 2,
		      APIC_SH_ALL_BUT_SELF = 3 };

/* ESR bits */
#define LAPIC_ESR_SEND_ILLEGAL (1u << 5)
#define LAPIC_ESR_RECV_ILLEGAL (1u << 6)
#define LAPIC_ESR_ILLEGAL_REG  (1u << 7)

enum lapic_lvt { LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR, LVT_N };

/* Work a LAPIC operation leaves for after the unlock (it calls CORE). */
#define LAPIC_ACT_INIT 1u
#define LAPIC_ACT_SIPI 2u

struct emu_lapic {
	struct emu_cpu *cpu;
	struct emu_platform *plat;
	uint32_t id;              /* APIC ID (x2APIC width; xAPIC uses the low 8 bits) */
	uint32_t tpr, ldr, dfr, svr, esr, esr_pending, icr_lo, icr_hi;
	uint32_t irr[8], isr[8], tmr[8];
	uint32_t lvt[LVT_N];
	uint32_t tdcr, tmict;
	uint64_t timer_start;     /* guest ns where the current count began */
	uint64_t timer_deadline;  /* next expiry in guest ns, EMU_NO_DEADLINE */
	uint64_t tsc_deadline;    /* IA32_TSC_DEADLINE as the guest wrote it */
	int extint_vector;        /* PIC vector offered by pending_vector, or -1 */
	unsigned actions;         /* LAPIC_ACT_*, done after the unlock */
	uint8_t sipi_vector;
	/* atomic, read without the lock: a vector is deliverable now */
	int attention;
};

/* A message to local APICs (ICR, IOAPIC redirection entry, LVT). */
struct apic_msg {
	uint32_t dest;
	bool broadcast;           /* physical all-ones destination */
	bool logical;
	uint8_t vector;
	enum apic_dm dm;
	bool level_trig;
	bool assert;
	enum apic_shorthand sh;
	struct emu_lapic *src;    /* NULL from the IOAPIC */
};

/* --- I/O APIC --- */

#define IOAPIC_PINS 24

struct emu_ioapic {
	uint32_t regsel;
	uint32_t id;
	uint64_t redir[IOAPIC_PINS];
	uint32_t irr;             /* pins asking for service (edge seen / level high) */
	uint32_t level;           /* current input levels */
};

/* --- 8259 PIC pair --- */

struct emu_pic_chip {
	uint8_t irr, isr, imr, elcr, elcr_mask;
	uint8_t lines;            /* current input levels */
	uint8_t vector_base;
	uint8_t init_step;        /* 0 ready, 1 ICW2 next, 2 ICW3 next, 3 ICW4 next */
	bool icw4_needed, single, auto_eoi, read_isr, poll;
};

struct emu_pic {
	struct emu_pic_chip chip[2];  /* master, slave */
	bool output;                  /* master INTR */
};

/* --- 8254 PIT --- */

struct emu_pit_channel {
	uint8_t mode, rw, bcd;
	uint8_t write_msb_next, read_msb_next;
	uint8_t lsb_written;
	uint32_t count;           /* reload value, 1..65536 */
	bool loaded;              /* a full count was written since the mode */
	bool gate;
	bool running;             /* counting (loaded, and gate allows) */
	bool triggered;           /* modes 1 and 5: a gate edge started the count */
	uint64_t base_ticks;      /* ticks counted before since_ns */
	uint64_t since_ns;
	bool latched, status_latched;
	uint16_t latch;
	uint8_t latch_msb_next;
	uint8_t status;
	uint64_t irq_tick;        /* channel 0: tick of the next IRQ0, UINT64_MAX */
};

struct emu_pit {
	struct emu_pit_channel ch[3];
	uint8_t port61;           /* bits 0-3 as written */
};

/* --- the whole platform --- */

struct emu_platform {
	struct emu_vm *evm;
	pthread_mutex_t lock;
	/* atomic: guest time not spent retiring instructions (idle jumps,
	 * ISA bus cycles) */
	uint64_t extra_ns;
	uint64_t next_deadline;   /* atomic: cached emu_next_deadline_ns() */
	struct emu_ioapic ioapic;
	struct emu_pic pic;
	struct emu_pit pit;
	/* vCPUs to wake / with LAPIC actions pending, drained by plat_unlock */
	uint64_t wake[VM_MAX_VCPUS / 64];
	uint64_t act[VM_MAX_VCPUS / 64];
};

void plat_lock(struct emu_platform *plat);
/* Unlock, then wake vCPUs and run INIT/SIPI work queued under the lock. */
void plat_unlock(struct emu_platform *plat);
void plat_queue_wake(struct emu_platform *plat, unsigned cpu_index);
void plat_queue_action(struct emu_platform *plat, unsigned cpu_index);
/* Recompute the cached next deadline. */
void plat_update_deadline_locked(struct emu_platform *plat);
/* An ISA IRQ line to the PIC and the IOAPIC (IRQ0 -> pin 2). */
void plat_set_irq_locked(struct emu_platform *plat, unsigned irq, int level);
/* The platform of a vCPU's VM. */
struct emu_platform *plat_of(struct emu_cpu *cpu);

/* emu_lapic.c */
void lapic_deliver_locked(struct emu_platform *plat, const struct apic_msg *m);
uint64_t lapic_timer_deadline_locked(struct emu_lapic *l);
void lapic_timer_advance_locked(struct emu_lapic *l, uint64_t now);
void lapic_update_locked(struct emu_lapic *l);
void lapic_run_actions(struct emu_cpu *cpu);
bool lapic_mmio(struct emu_cpu *cpu, uint64_t gpa, uint8_t *data, unsigned len, bool write);
bool lapic_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write);
/* The same without the #GP: 0, -ENOENT (not the LAPIC's), -EINVAL (invalid). */
int lapic_msr_access(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write);
/* Every xAPIC register as it reads (regs[offset >> 4]), for the debugger. */
void lapic_image_locked(struct emu_lapic *l, uint32_t regs[64]);

/* emu_ioapic.c */
void ioapic_reset(struct emu_ioapic *io);
void ioapic_set_pin_locked(struct emu_platform *plat, unsigned pin, int level);
void ioapic_eoi_locked(struct emu_platform *plat, uint8_t vector);
void ioapic_mmio_locked(struct emu_platform *plat, uint64_t offset, uint8_t *data,
			unsigned len, bool write);

/* emu_pic.c */
void pic_reset(struct emu_pic *pic);
void pic_set_irq_locked(struct emu_platform *plat, unsigned irq, int level);
/* The vector INTA would return now, or -1 when INTR is low. No side effect. */
int pic_peek_locked(struct emu_platform *plat);
/* INTA: the vector of the highest request, moved to in-service. */
int pic_intack_locked(struct emu_platform *plat);
void pic_io_locked(struct emu_platform *plat, uint16_t port, uint8_t *data, bool write);
bool pic_port(uint16_t port);

/* emu_pit.c */
void pit_reset(struct emu_pit *pit);
void pit_io_locked(struct emu_platform *plat, uint16_t port, uint8_t *data, bool write);
bool pit_port(uint16_t port);
uint64_t pit_deadline_locked(struct emu_platform *plat);
void pit_advance_locked(struct emu_platform *plat, uint64_t now);

#endif
