/* engine/emu/emu_lapic.c — one local APIC per vCPU: xAPIC registers in the
 * MMIO page at IA32_APIC_BASE, x2APIC MSRs 0x800-0x8ff, IA32_APIC_BASE
 * mode rules, IRR/ISR/TMR with TPR/PPR priority and EOI, IPIs through the
 * ICR (fixed, lowest priority, NMI, INIT, SIPI; shorthands; physical and
 * logical destinations), the LVT timer (one-shot, periodic, TSC deadline)
 * on guest time, LINT0 ExtINT for the PIC and the error LVT.
 *
 * Deliberate simplifications: lowest-priority delivery picks the first
 * matching APIC by index (deterministic); the ICR is never busy (delivery
 * is immediate); no EOI-broadcast suppression, CMCI, thermal or perf
 * sources. Invariant: l->attention == "a vector is deliverable now",
 * refreshed by lapic_update_locked() after every change to IRR, ISR, TPR,
 * LINT0, the APIC base or the PIC output. */
#include "engine/emu/emu_platform_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu.h"

#define LAPIC_PAGE       0x1000ull
#define LAPIC_REG_SLOT   0x10u
#define X2APIC_LDR_CLUSTER_SHIFT 16
#define XAPIC_ID_SHIFT   24
#define XAPIC_BROADCAST  0xffu
#define X2APIC_BROADCAST 0xffffffffu
#define NR_VEC_WORDS     8
#define FIRST_LEGAL_VECTOR 16
#define PRIO_CLASS(v)    ((uint32_t)(v) & 0xf0u)
#define TDCR_MASK        0xbu
#define ICR2_DEST_MASK   0xff000000u
#define LDR_XAPIC_MASK   0xff000000u
#define DFR_RESERVED1    0x0fffffffu
#define SVR_POWER_ON     0xffu

/* Writable bits of each LVT entry (vector, delivery mode, polarity,
 * trigger, mask, timer mode); the delivery status bit is never set. */
static const uint32_t lvt_writable[LVT_N] = {
	[LVT_TIMER] = 0x700ffu, [LVT_THERMAL] = 0x107ffu, [LVT_PERF] = 0x107ffu,
	[LVT_LINT0] = 0x1a7ffu, [LVT_LINT1] = 0x1a7ffu, [LVT_ERROR] = 0x100ffu,
};

static const uint32_t lvt_reg[LVT_N] = {
	[LVT_TIMER] = LAPIC_LVTT, [LVT_THERMAL] = LAPIC_LVT_THERMAL, [LVT_PERF] = LAPIC_LVT_PERF,
	[LVT_LINT0] = LAPIC_LVT_LINT0, [LVT_LINT1] = LAPIC_LVT_LINT1,
	[LVT_ERROR] = LAPIC_LVT_ERROR,
};

/* --- small helpers --- */

static uint64_t lapic_base_msr(const struct emu_lapic *l)
{
	return l->cpu->sregs.apic_base;
}

static bool lapic_hw_enabled(const struct emu_lapic *l)
{
	return lapic_base_msr(l) & APIC_BASE_EN;
}

static bool lapic_x2(const struct emu_lapic *l)
{
	return (lapic_base_msr(l) & (APIC_BASE_EN | APIC_BASE_EXTD)) ==
	       (APIC_BASE_EN | APIC_BASE_EXTD);
}

static bool lapic_sw_enabled(const struct emu_lapic *l)
{
	return l->svr & LAPIC_SVR_ENABLE;
}

static int vec_highest(const uint32_t v[NR_VEC_WORDS])
{
	for (int i = NR_VEC_WORDS - 1; i >= 0; i--)
		if (v[i])
			return i * 32 + 31 - __builtin_clz(v[i]);
	return -1;
}

static void vec_set(uint32_t v[NR_VEC_WORDS], unsigned vec)
{
	v[vec / 32] |= 1u << (vec % 32);
}

static void vec_clear(uint32_t v[NR_VEC_WORDS], unsigned vec)
{
	v[vec / 32] &= ~(1u << (vec % 32));
}

static bool vec_test(const uint32_t v[NR_VEC_WORDS], unsigned vec)
{
	return v[vec / 32] >> (vec % 32) & 1;
}

static uint64_t now_ns(struct emu_lapic *l)
{
	return emu_guest_ns(l->plat->evm);
}

static uint32_t x2apic_ldr(uint32_t id)
{
	return (id >> 4) << X2APIC_LDR_CLUSTER_SHIFT | 1u << (id & 0xf);
}

static uint32_t lapic_ppr(const struct emu_lapic *l)
{
	int isrv = vec_highest(l->isr);
	uint32_t isr_class = isrv < 0 ? 0 : PRIO_CLASS(isrv);

	return PRIO_CLASS(l->tpr) >= isr_class ? l->tpr & 0xff : isr_class;
}

/* The PIC's INTR reaches this CPU: BSP only, LINT0 in ExtINT and unmasked,
 * or the APIC globally off (then INTR goes straight to the core). */
static bool lapic_takes_pic(const struct emu_lapic *l)
{
	uint32_t lint0 = l->lvt[LVT_LINT0];

	if (l->cpu->id != 0 || !l->plat->pic.output)
		return false;
	if (!lapic_hw_enabled(l))
		return true;
	return !(lint0 & LAPIC_LVT_MASKED) &&
	       (lint0 & LAPIC_LVT_DM_MASK) >> LAPIC_LVT_DM_SHIFT == APIC_DM_EXTINT;
}

static int lapic_deliverable_irr(const struct emu_lapic *l)
{
	int v = vec_highest(l->irr);

	if (v < 0 || PRIO_CLASS(v) <= PRIO_CLASS(lapic_ppr(l)))
		return -1;
	return v;
}

void lapic_update_locked(struct emu_lapic *l)
{
	int now = lapic_deliverable_irr(l) >= 0 || lapic_takes_pic(l);
	int before = __atomic_exchange_n(&l->attention, now, __ATOMIC_ACQ_REL);

	if (now && !before) {
		__atomic_store_n(&l->cpu->due, true, __ATOMIC_SEQ_CST);
		plat_queue_wake(l->plat, l->cpu->id);
	}
}

static void lapic_accept_irq_locked(struct emu_lapic *l, unsigned vector, bool level);

static void lapic_error_locked(struct emu_lapic *l, uint32_t bits)
{
	uint32_t lvt = l->lvt[LVT_ERROR];

	l->esr_pending |= bits;
	if (!(lvt & LAPIC_LVT_MASKED) && (lvt & LAPIC_LVT_VECTOR) >= FIRST_LEGAL_VECTOR)
		lapic_accept_irq_locked(l, lvt & LAPIC_LVT_VECTOR, false);
}

static void lapic_accept_irq_locked(struct emu_lapic *l, unsigned vector, bool level)
{
	if (vector < FIRST_LEGAL_VECTOR) {
		lapic_error_locked(l, LAPIC_ESR_RECV_ILLEGAL);
		return;
	}
	vec_set(l->irr, vector);
	if (level)
		vec_set(l->tmr, vector);
	else
		vec_clear(l->tmr, vector);
	lapic_update_locked(l);
}

static void lapic_eoi_locked(struct emu_lapic *l)
{
	int v = vec_highest(l->isr);

	if (v < 0)
		return;
	vec_clear(l->isr, (unsigned)v);
	if (vec_test(l->tmr, (unsigned)v))
		ioapic_eoi_locked(l->plat, (uint8_t)v);
	lapic_update_locked(l);
}

/* --- timer --- */

static enum lapic_timer_mode timer_mode(const struct emu_lapic *l)
{
	uint32_t m = (l->lvt[LVT_TIMER] & LAPIC_LVTT_MODE_MASK) >> LAPIC_LVTT_MODE_SHIFT;

	return m == LAPIC_TIMER_PERIODIC ? LAPIC_TIMER_PERIODIC :
	       m == LAPIC_TIMER_TSC_DEADLINE ? LAPIC_TIMER_TSC_DEADLINE : LAPIC_TIMER_ONESHOT;
}

/* TDCR bits 0, 1, 3: 000 -> 2, 001 -> 4, ... 110 -> 128, 111 -> 1. */
static uint64_t timer_div(const struct emu_lapic *l)
{
	unsigned v = (l->tdcr & 3) | (l->tdcr & 8) >> 1;

	return v == 7 ? 1 : 2ull << v;
}

/* Guest ns per bus tick is 1 (EMU_APIC_BUS_HZ = 1 GHz). */
static uint64_t timer_period(const struct emu_lapic *l)
{
	return (uint64_t)l->tmict * timer_div(l);
}

/* Current count. Arithmetic on start is modulo 2^64 on purpose: a
 * divide change may move start "before zero" (see timer_set_div). */
static uint32_t timer_current(const struct emu_lapic *l, uint64_t now)
{
	if (timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE || !l->tmict)
		return 0;
	uint64_t ticks = (now - l->timer_start) / timer_div(l);
	if (timer_mode(l) == LAPIC_TIMER_PERIODIC)
		return l->tmict - (uint32_t)(ticks % l->tmict);
	return ticks >= l->tmict ? 0 : l->tmict - (uint32_t)ticks;
}

/* Recompute the deadline from start after a mode or divide change. */
static void timer_rearm(struct emu_lapic *l, uint64_t now)
{
	uint64_t p = timer_period(l), elapsed = now - l->timer_start;

	l->timer_deadline = EMU_NO_DEADLINE;
	if (!p || timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE)
		return;
	if (timer_mode(l) == LAPIC_TIMER_ONESHOT) {
		if (elapsed < p)
			l->timer_deadline = l->timer_start + p;
		return;
	}
	l->timer_start += elapsed / p * p;
	l->timer_deadline = l->timer_start + p;
}

static void timer_set_initial(struct emu_lapic *l, uint32_t v, uint64_t now)
{
	if (timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE)
		return;         /* TMICT is ignored in TSC-deadline mode */
	l->tmict = v;
	l->timer_start = now;
	timer_rearm(l, now);
}

/* Keep the current count, count on with the new divider. */
static void timer_set_div(struct emu_lapic *l, uint32_t v, uint64_t now)
{
	uint32_t cur = timer_current(l, now);

	l->tdcr = v & TDCR_MASK;
	if (!l->tmict || timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE)
		return;
	l->timer_start = now - (uint64_t)(l->tmict - cur) * timer_div(l);
	timer_rearm(l, now);
}

static void timer_set_lvt(struct emu_lapic *l, uint32_t v, uint64_t now)
{
	enum lapic_timer_mode old = timer_mode(l);
	bool unmasked = (l->lvt[LVT_TIMER] & ~v) & LAPIC_LVT_MASKED;

	l->lvt[LVT_TIMER] = v;
	if (old == timer_mode(l)) {
		/* what ended while masked stays unsignalled: on from now */
		if (unmasked && old != LAPIC_TIMER_TSC_DEADLINE)
			timer_rearm(l, now);
		return;
	}
	if (old == LAPIC_TIMER_TSC_DEADLINE || timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE) {
		/* switching to or from TSC deadline disarms the timer */
		l->tmict = 0;
		l->tsc_deadline = 0;
		l->timer_deadline = EMU_NO_DEADLINE;
		return;
	}
	timer_rearm(l, now);
}

static void timer_set_tsc_deadline(struct emu_lapic *l, uint64_t v)
{
	if (timer_mode(l) != LAPIC_TIMER_TSC_DEADLINE)
		return;         /* writes are ignored outside TSC-deadline mode */
	l->tsc_deadline = v;
	if (!v) {
		l->timer_deadline = EMU_NO_DEADLINE;
		return;
	}
	uint64_t now = now_ns(l), tsc = now + l->cpu->tsc_offset;
	if (v <= tsc) {
		l->timer_deadline = now;
		return;
	}
	/* a deadline past the end of guest time (the guest moved its TSC
	 * back) is armed but never reached, as on hardware for 584 years */
	uint64_t ahead = v - tsc;
	l->timer_deadline = ahead < EMU_NO_DEADLINE - now ? now + ahead : EMU_NO_DEADLINE - 1;
}

/* A masked one-shot or periodic timer signals nothing: it has no deadline
 * (its count is arithmetic on timer_start; unmasking rearms it), so a
 * masked timer of a few ns costs nothing. A TSC deadline keeps its one
 * firing, which clears IA32_TSC_DEADLINE even when masked. */
uint64_t lapic_timer_deadline_locked(struct emu_lapic *l)
{
	if ((l->lvt[LVT_TIMER] & LAPIC_LVT_MASKED) && timer_mode(l) != LAPIC_TIMER_TSC_DEADLINE)
		return EMU_NO_DEADLINE;
	return l->timer_deadline;
}

void lapic_timer_advance_locked(struct emu_lapic *l, uint64_t now)
{
	if (l->timer_deadline == EMU_NO_DEADLINE || l->timer_deadline > now)
		return;
	uint32_t lvt = l->lvt[LVT_TIMER];
	switch (timer_mode(l)) {
	case LAPIC_TIMER_TSC_DEADLINE:
		l->tsc_deadline = 0;
		l->timer_deadline = EMU_NO_DEADLINE;
		break;
	case LAPIC_TIMER_ONESHOT:
		l->timer_deadline = EMU_NO_DEADLINE;
		break;
	case LAPIC_TIMER_PERIODIC: {
		/* late by several periods: one interrupt, phase kept */
		uint64_t p = timer_period(l);
		l->timer_start = l->timer_deadline;
		l->timer_start += (now - l->timer_start) / p * p;
		l->timer_deadline = l->timer_start + p;
		break;
	}
	}
	if (!(lvt & LAPIC_LVT_MASKED))
		lapic_accept_irq_locked(l, lvt & LAPIC_LVT_VECTOR, false);
}

/* --- IPIs --- */

static bool lapic_match_logical(const struct emu_lapic *t, const struct apic_msg *m)
{
	if (lapic_x2(t)) {
		uint32_t ldr = x2apic_ldr(t->id);
		if (m->dest == X2APIC_BROADCAST)
			return true;
		return (m->dest >> 16) == (ldr >> 16) && (m->dest & ldr & 0xffff);
	}
	uint32_t dest = m->dest & 0xff, lid = t->ldr >> XAPIC_ID_SHIFT;
	if ((t->dfr & LAPIC_DFR_MODEL_MASK) == LAPIC_DFR_MODEL_MASK)
		return dest & lid;              /* flat */
	return (dest >> 4) == (lid >> 4) && (dest & lid & 0xf);   /* cluster */
}

static bool lapic_match(const struct emu_lapic *t, const struct apic_msg *m)
{
	if (!lapic_hw_enabled(t))
		return false;
	switch (m->sh) {
	case APIC_SH_SELF:
		return t == m->src;
	case APIC_SH_ALL:
		return true;
	case APIC_SH_ALL_BUT_SELF:
		return t != m->src;
	case APIC_SH_NONE:
		break;
	}
	if (m->logical)
		return lapic_match_logical(t, m);
	return m->broadcast || t->id == m->dest;
}

static void lapic_deliver_one(struct emu_lapic *t, const struct apic_msg *m)
{
	switch (m->dm) {
	case APIC_DM_FIXED:
	case APIC_DM_LOWEST:
		if (lapic_sw_enabled(t))
			lapic_accept_irq_locked(t, m->vector, m->level_trig);
		break;
	case APIC_DM_NMI:
		t->cpu->pending.nmi = true;
		__atomic_store_n(&t->cpu->due, true, __ATOMIC_SEQ_CST);
		plat_queue_wake(t->plat, t->cpu->id);
		break;
	case APIC_DM_INIT:
		if (m->level_trig && !m->assert)
			break;          /* INIT level de-assert: nothing on P6 and later */
		t->actions = LAPIC_ACT_INIT;
		plat_queue_action(t->plat, t->cpu->id);
		break;
	case APIC_DM_SIPI:
		t->actions |= LAPIC_ACT_SIPI;
		t->sipi_vector = m->vector;
		plat_queue_action(t->plat, t->cpu->id);
		break;
	case APIC_DM_SMI:
	case APIC_DM_EXTINT:
	default:
		break;          /* no SMM; ExtINT comes only through LINT0 */
	}
}

void lapic_deliver_locked(struct emu_platform *plat, const struct apic_msg *m)
{
	unsigned n = emu_vm_nr_cpus(plat->evm);

	for (unsigned i = 0; i < n; i++) {
		struct emu_cpu *cpu = emu_vm_cpu(plat->evm, i);
		if (!cpu || !cpu->lapic || !lapic_match(cpu->lapic, m))
			continue;
		lapic_deliver_one(cpu->lapic, m);
		if (m->dm == APIC_DM_LOWEST)
			break;          /* the first match, deterministically */
	}
}

static void lapic_send_ipi_locked(struct emu_lapic *l, uint32_t lo, uint32_t dest)
{
	struct apic_msg m = {
		.dest = dest,
		.broadcast = lapic_x2(l) ? dest == X2APIC_BROADCAST : dest == XAPIC_BROADCAST,
		.logical = lo & LAPIC_ICR_LOGICAL,
		.vector = lo & LAPIC_ICR_VECTOR,
		.dm = (enum apic_dm)(lo >> LAPIC_ICR_DM_SHIFT & 7),
		.level_trig = lo & LAPIC_ICR_LEVEL,
		.assert = lo & LAPIC_ICR_ASSERT,
		.sh = (enum apic_shorthand)(lo >> LAPIC_ICR_SH_SHIFT & 3),
		.src = l,
	};

	if ((m.dm == APIC_DM_FIXED || m.dm == APIC_DM_LOWEST) && m.vector < FIRST_LEGAL_VECTOR) {
		lapic_error_locked(l, LAPIC_ESR_SEND_ILLEGAL);
		return;
	}
	lapic_deliver_locked(l->plat, &m);
}

/* After the unlock: INIT resets the LAPIC and parks the CPU, SIPI starts
 * a parked CPU (a SIPI to a running CPU is dropped, as on hardware). */
void lapic_run_actions(struct emu_cpu *cpu)
{
	struct emu_lapic *l = cpu->lapic;
	struct emu_platform *plat = l->plat;

	plat_lock(plat);
	unsigned act = l->actions;
	uint8_t vector = l->sipi_vector;
	l->actions = 0;
	plat_unlock(plat);
	if (act & LAPIC_ACT_INIT) {
		emu_lapic_reset(cpu, false);
		emu_cpu_init(cpu);
	}
	if ((act & LAPIC_ACT_SIPI) && cpu->wait_sipi)
		emu_cpu_sipi(cpu, vector);
}

/* --- reset --- */

static void lapic_reset_locked(struct emu_lapic *l, bool power_on)
{
	struct emu_cpu *cpu = l->cpu;

	if (power_on) {
		l->id = cpu->id;
		cpu->sregs.apic_base = EMU_APIC_DEFAULT_BASE | APIC_BASE_EN |
				       (cpu->id == 0 ? APIC_BASE_BSP : 0);
		l->actions = 0;
	}
	l->tpr = 0;
	l->ldr = 0;
	l->dfr = LAPIC_DFR_FLAT;
	l->svr = SVR_POWER_ON;
	memset(l->irr, 0, sizeof(l->irr));
	memset(l->isr, 0, sizeof(l->isr));
	memset(l->tmr, 0, sizeof(l->tmr));
	l->esr = l->esr_pending = 0;
	l->icr_lo = l->icr_hi = 0;
	for (int i = 0; i < LVT_N; i++)
		l->lvt[i] = LAPIC_LVT_MASKED;
	/* as KVM: the BSP comes up in virtual-wire mode, PIC through LINT0 */
	if (cpu->id == 0)
		l->lvt[LVT_LINT0] = APIC_DM_EXTINT << LAPIC_LVT_DM_SHIFT;
	l->tdcr = 0;
	l->tmict = 0;
	l->timer_start = 0;
	l->timer_deadline = EMU_NO_DEADLINE;
	l->tsc_deadline = 0;
	l->extint_vector = -1;
	if (lapic_x2(l))
		l->id = cpu->id;
	lapic_update_locked(l);
	plat_update_deadline_locked(l->plat);
}

void emu_lapic_reset(struct emu_cpu *cpu, bool power_on)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l)
		return;
	plat_lock(l->plat);
	lapic_reset_locked(l, power_on);
	plat_unlock(l->plat);
}

int emu_lapic_create(struct emu_cpu *cpu)
{
	struct emu_lapic *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->cpu = cpu;
	l->plat = plat_of(cpu);
	cpu->lapic = l;
	emu_lapic_reset(cpu, true);
	return 0;
}

void emu_lapic_destroy(struct emu_cpu *cpu)
{
	free(cpu->lapic);
	cpu->lapic = NULL;
}

/* --- register access (both modes) --- */

static void lapic_set_lvt(struct emu_lapic *l, enum lapic_lvt i, uint32_t v, uint64_t now)
{
	v &= lvt_writable[i];
	if (!lapic_sw_enabled(l))
		v |= LAPIC_LVT_MASKED;  /* software-disabled: LVTs stay masked */
	if (i == LVT_TIMER)
		timer_set_lvt(l, v, now);
	else
		l->lvt[i] = v;
	lapic_update_locked(l);
}

static void lapic_set_svr(struct emu_lapic *l, uint32_t v)
{
	l->svr = v & LAPIC_SVR_MASK;
	if (!lapic_sw_enabled(l))
		for (int i = 0; i < LVT_N; i++)
			l->lvt[i] |= LAPIC_LVT_MASKED;
	lapic_update_locked(l);
}

static int lvt_index(uint32_t reg)
{
	for (int i = 0; i < LVT_N; i++)
		if (lvt_reg[i] == reg)
			return i;
	return -1;
}

/* Read register `reg` (16-byte aligned offset). false = no such register
 * in this mode (x2APIC: #GP; xAPIC: reads as 0). ICR is the low half. */
static bool lapic_read_locked(struct emu_lapic *l, uint32_t reg, uint32_t *v)
{
	bool x2 = lapic_x2(l);
	int lvt = lvt_index(reg);

	*v = 0;
	if (lvt >= 0) {
		*v = l->lvt[lvt];
		return true;
	}
	if (reg >= LAPIC_ISR && reg < LAPIC_ESR) {
		unsigned word = (reg & 0x70) / LAPIC_REG_SLOT;
		*v = reg < LAPIC_TMR ? l->isr[word] : reg < LAPIC_IRR ? l->tmr[word] : l->irr[word];
		return true;
	}
	switch (reg) {
	case LAPIC_ID:    *v = x2 ? l->id : l->id << XAPIC_ID_SHIFT; return true;
	case LAPIC_VER:   *v = LAPIC_VERSION; return true;
	case LAPIC_TPR:   *v = l->tpr; return true;
	case LAPIC_PPR:   *v = lapic_ppr(l); return true;
	case LAPIC_LDR:   *v = x2 ? x2apic_ldr(l->id) : l->ldr; return true;
	case LAPIC_SVR:   *v = l->svr; return true;
	case LAPIC_ESR:   *v = l->esr; return true;
	case LAPIC_ICR:   *v = l->icr_lo; return true;
	case LAPIC_TMICT: *v = l->tmict; return true;
	case LAPIC_TMCCT: *v = timer_current(l, now_ns(l)); return true;
	case LAPIC_TDCR:  *v = l->tdcr; return true;
	case LAPIC_DFR:   *v = l->dfr; return !x2;
	case LAPIC_ICR2:  *v = l->icr_hi; return !x2;
	case LAPIC_APR:
	case LAPIC_RRD:
	case LAPIC_EOI:
	default:
		return !x2;
	}
}

void lapic_image_locked(struct emu_lapic *l, uint32_t regs[64])
{
	for (uint32_t i = 0; i < 64; i++)
		lapic_read_locked(l, i << 4, &regs[i]);
	regs[LAPIC_ICR2 >> 4] = l->icr_hi;      /* x2APIC has no ICR2: show the destination */
}

/* Write register `reg`. false = not writable in this mode (x2APIC: #GP;
 * xAPIC: ignored). The ICR write here is xAPIC's (destination in ICR2). */
static bool lapic_write_locked(struct emu_lapic *l, uint32_t reg, uint32_t v)
{
	bool x2 = lapic_x2(l);
	uint64_t now = now_ns(l);
	int lvt = lvt_index(reg);

	if (lvt >= 0) {
		lapic_set_lvt(l, (enum lapic_lvt)lvt, v, now);
		return true;
	}
	switch (reg) {
	case LAPIC_ID:
		if (x2)
			return false;
		l->id = v >> XAPIC_ID_SHIFT;
		return true;
	case LAPIC_TPR:
		l->tpr = v & 0xff;
		lapic_update_locked(l);
		return true;
	case LAPIC_EOI:
		if (x2 && v)
			return false;
		lapic_eoi_locked(l);
		return true;
	case LAPIC_LDR:
		if (x2)
			return false;
		l->ldr = v & LDR_XAPIC_MASK;
		return true;
	case LAPIC_DFR:
		if (x2)
			return false;
		l->dfr = v | DFR_RESERVED1;
		return true;
	case LAPIC_SVR:
		lapic_set_svr(l, v);
		return true;
	case LAPIC_ESR:
		if (x2 && v)
			return false;
		l->esr = l->esr_pending;
		l->esr_pending = 0;
		return true;
	case LAPIC_ICR:
		l->icr_lo = v & LAPIC_ICR_LO_MASK;
		lapic_send_ipi_locked(l, l->icr_lo, l->icr_hi >> XAPIC_ID_SHIFT);
		return true;
	case LAPIC_ICR2:
		if (x2)
			return false;
		l->icr_hi = v & ICR2_DEST_MASK;
		return true;
	case LAPIC_TMICT:
		timer_set_initial(l, v, now);
		return true;
	case LAPIC_TDCR:
		timer_set_div(l, v, now);
		return true;
	case LAPIC_SELF_IPI:
		if (!x2)
			return true;    /* no such register in xAPIC mode: ignored */
		lapic_accept_irq_locked(l, v & LAPIC_LVT_VECTOR, false);
		return true;
	default:
		return !x2;             /* read-only or reserved */
	}
}

bool lapic_mmio(struct emu_cpu *cpu, uint64_t gpa, uint8_t *data, unsigned len, bool write)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l || !lapic_hw_enabled(l) || lapic_x2(l))
		return false;
	uint64_t base = lapic_base_msr(l) & APIC_BASE_ADDR_MASK;
	if (gpa < base || gpa >= base + LAPIC_PAGE)
		return false;
	uint32_t off = (uint32_t)(gpa - base), reg = off & ~(LAPIC_REG_SLOT - 1), byte = off & 0xf;

	plat_lock(l->plat);
	if (write) {
		/* only aligned 32-bit stores reach a register (as KVM) */
		if (byte == 0 && len >= 4) {
			uint32_t v;
			memcpy(&v, data, 4);
			lapic_write_locked(l, reg, v);
		}
	} else {
		uint32_t v = 0;
		memset(data, 0, len);
		lapic_read_locked(l, reg, &v);
		for (unsigned i = 0; i < len && byte + i < 4; i++)
			data[i] = (uint8_t)(v >> (8 * (byte + i)));
	}
	plat_update_deadline_locked(l->plat);
	plat_unlock(l->plat);
	return true;
}

/* IA32_APIC_BASE: EN/EXTD transitions of SDM vol. 3 10.12.5; false = #GP. */
static bool lapic_set_base_locked(struct emu_lapic *l, uint64_t v)
{
	const uint64_t mode = APIC_BASE_EN | APIC_BASE_EXTD;
	uint64_t old = lapic_base_msr(l);

	if (v & ~(APIC_BASE_ADDR_MASK | APIC_BASE_BSP | mode))
		return false;
	if ((v & mode) == APIC_BASE_EXTD)
		return false;           /* x2APIC without enable: invalid */
	if ((old & mode) == mode && (v & mode) == APIC_BASE_EN)
		return false;           /* x2APIC -> xAPIC directly */
	if (!(old & mode) && (v & mode) == mode)
		return false;           /* disabled -> x2APIC directly */
	l->cpu->sregs.apic_base = (v & ~APIC_BASE_BSP) | (old & APIC_BASE_BSP);
	if (!(v & APIC_BASE_EN) && (old & APIC_BASE_EN))
		lapic_reset_locked(l, false);   /* disabled: back to reset state */
	if (lapic_x2(l))
		l->id = l->cpu->id;     /* x2APIC ID is the initial APIC ID */
	lapic_update_locked(l);
	return true;
}

static bool lapic_x2apic_msr_locked(struct emu_lapic *l, uint32_t msr, uint64_t *value,
				    bool write)
{
	uint32_t reg = (msr - LAPIC_MSR_FIRST) * LAPIC_REG_SLOT;

	if (!lapic_x2(l))
		return false;
	if (reg == LAPIC_ICR) {
		if (write) {
			l->icr_lo = (uint32_t)*value & LAPIC_ICR_LO_MASK;
			l->icr_hi = (uint32_t)(*value >> 32);
			lapic_send_ipi_locked(l, l->icr_lo, l->icr_hi);
		} else {
			*value = (uint64_t)l->icr_hi << 32 | l->icr_lo;
		}
		return true;
	}
	if (write) {
		if (*value >> 32)
			return false;
		return lapic_write_locked(l, reg, (uint32_t)*value);
	}
	if (reg == LAPIC_SELF_IPI || reg == LAPIC_EOI)
		return false;           /* write-only in x2APIC mode */
	uint32_t v;
	bool ok = lapic_read_locked(l, reg, &v);
	*value = v;
	return ok;
}

static bool lapic_msr_locked(struct emu_lapic *l, uint32_t msr, uint64_t *value, bool write)
{
	if (msr == MSR_IA32_APIC_BASE) {
		if (write)
			return lapic_set_base_locked(l, *value);
		*value = lapic_base_msr(l);
		return true;
	}
	if (msr == MSR_IA32_TSC_DEADLINE) {
		if (write)
			timer_set_tsc_deadline(l, *value);
		else
			*value = timer_mode(l) == LAPIC_TIMER_TSC_DEADLINE ? l->tsc_deadline : 0;
		return true;
	}
	return lapic_x2apic_msr_locked(l, msr, value, write);
}

int lapic_msr_access(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l || !(msr == MSR_IA32_APIC_BASE || msr == MSR_IA32_TSC_DEADLINE ||
		    (msr >= LAPIC_MSR_FIRST && msr <= LAPIC_MSR_LAST)))
		return -ENOENT;
	plat_lock(l->plat);
	bool ok = lapic_msr_locked(l, msr, value, write);
	plat_update_deadline_locked(l->plat);
	plat_unlock(l->plat);
	return ok ? 0 : -EINVAL;
}

bool lapic_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t *value, bool write)
{
	int r = lapic_msr_access(cpu, msr, value, write);
	if (r == -EINVAL)
		emu_raise(cpu, X86_GP, true, 0);
	return r != -ENOENT;
}

/* --- what the core asks at instruction boundaries --- */

bool emu_lapic_has_interrupt(struct emu_cpu *cpu)
{
	struct emu_lapic *l = cpu->lapic;

	return l && __atomic_load_n(&l->attention, __ATOMIC_ACQUIRE);
}

const int *emu_lapic_attention(struct emu_cpu *cpu)
{
	static const int none;

	return cpu->lapic ? &cpu->lapic->attention : &none;
}

int emu_lapic_pending_vector(struct emu_cpu *cpu)
{
	struct emu_lapic *l = cpu->lapic;

	if (!emu_lapic_has_interrupt(cpu))
		return -1;
	plat_lock(l->plat);
	int v = lapic_deliverable_irr(l);
	l->extint_vector = -1;
	if (v < 0 && lapic_takes_pic(l)) {
		v = pic_peek_locked(l->plat);
		l->extint_vector = v;
	}
	plat_unlock(l->plat);
	return v;
}

void emu_lapic_accept(struct emu_cpu *cpu, int vector)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l || vector < 0 || vector > 255)
		return;
	plat_lock(l->plat);
	if (vector == l->extint_vector) {
		pic_intack_locked(l->plat);     /* updates the BSP's attention */
		l->extint_vector = -1;
	} else if (vec_test(l->irr, (unsigned)vector)) {
		vec_clear(l->irr, (unsigned)vector);
		vec_set(l->isr, (unsigned)vector);
		lapic_update_locked(l);
	}
	plat_unlock(l->plat);
}

uint64_t emu_lapic_get_cr8(struct emu_cpu *cpu)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l)
		return 0;
	plat_lock(l->plat);
	uint64_t cr8 = l->tpr >> 4;
	plat_unlock(l->plat);
	return cr8;
}

void emu_lapic_set_cr8(struct emu_cpu *cpu, uint64_t cr8)
{
	struct emu_lapic *l = cpu->lapic;

	if (!l)
		return;
	plat_lock(l->plat);
	l->tpr = (uint32_t)(cr8 & 0xf) << 4;
	lapic_update_locked(l);
	plat_unlock(l->plat);
}
