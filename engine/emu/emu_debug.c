/* engine/emu/emu_debug.c — DR0-7, TF, RF, ICEBP/INT3 and the debugger's
 * intercepts for the software engine: the rules and the core's contract are
 * in emu_debug.h. Everything here runs on the vCPU's own thread, or with
 * the vCPU parked (set_debug, get/set_regs, reset). */
#include "engine/emu/emu.h"
#include "engine/emu/emu_core.h"
#include "engine/emu/emu_debug.h"

#include <string.h>

#include "machine/vm.h"
#include "x86/desc.h"

#define DR_SLOTS 4

/* DR6 bits software can write; everything else is fixed (emu_debug.h). */
#define DR6_B_ALL    (DR6_B(0) | DR6_B(1) | DR6_B(2) | DR6_B(3))
#define DR6_WRITABLE (DR6_B_ALL | DR6_BD | DR6_BS | DR6_BT)
/* bit 16 reads 1: the engine has no RTM */
#define DR6_READS1   (DR6_FIXED1 | DR6_RTM)

#define DR7_ENABLES  (DR7_L(0) | DR7_G(0) | DR7_L(1) | DR7_G(1) | \
		      DR7_L(2) | DR7_G(2) | DR7_L(3) | DR7_G(3))
#define DR7_SLOT_CTL(n) (DR7_RW(n, 3) | DR7_LEN(n, 3))
#define DR7_WRITABLE (DR7_ENABLES | DR7_LE | DR7_GE | DR7_GD | DR7_SLOT_CTL(0) | \
		      DR7_SLOT_CTL(1) | DR7_SLOT_CTL(2) | DR7_SLOT_CTL(3))

/* ---- small facts ---- */

static bool cpu_model_is(const struct emu_cpu *cpu, enum vm_cpu_model model)
{
	return cpu->vcpu && cpu->vcpu->vm && cpu->vcpu->vm->cfg.cpu == model;
}

/* --cpu kvm-step: stepping as the host KVM does, so that the debugger's
 * step shadow (debug/step_shadow.c) can be run without it. */
static bool cpu_kvm_step(const struct emu_cpu *cpu)
{
	return cpu_model_is(cpu, VM_CPU_KVM_STEP);
}

/* The debugger steps with RFLAGS.TF (amd, kvm-step), not an MTF-like exit. */
static bool cpu_steps_by_tf(const struct emu_cpu *cpu)
{
	return cpu_model_is(cpu, VM_CPU_AMD) || cpu_kvm_step(cpu);
}

static bool in_long64(const struct emu_cpu *cpu)
{
	return x86_mode_of(&cpu->sregs) == X86_MODE_LONG64;
}

/* CPL as KVM reads it: SS.DPL in protected mode, 3 in virtual-8086. */
static unsigned cpu_cpl(const struct emu_cpu *cpu)
{
	if (!(cpu->sregs.cr0 & CR0_PE))
		return 0;
	if (cpu->rflags & RFLAGS_VM)
		return 3;
	return cpu->sregs.ss.dpl & 3;
}

static uint64_t linear_of(const struct emu_cpu *cpu, uint64_t rip)
{
	uint64_t lin = cpu->sregs.cs.base + rip;

	return in_long64(cpu) ? lin : (uint32_t)lin;
}

static uint64_t linear_rip(const struct emu_cpu *cpu)
{
	return linear_of(cpu, cpu->rip);
}

static uint64_t dr6_normal(uint64_t v)
{
	return (v & DR6_WRITABLE) | DR6_READS1;
}

static uint64_t dr7_normal(uint64_t v)
{
	return (v & DR7_WRITABLE) | DR7_FIXED1;
}

/* Bytes covered by slot n: LEN 00=1, 01=2, 11=4, 10=8. */
static unsigned slot_len(uint64_t dr7, unsigned n)
{
	static const unsigned len[4] = {
		[DR7_LEN_1] = 1, [DR7_LEN_2] = 2, [DR7_LEN_8] = 8, [DR7_LEN_4] = 4,
	};
	return len[(dr7 >> DR7_LEN_SHIFT(n)) & 3];
}

static unsigned slot_rw(uint64_t dr7, unsigned n)
{
	return (dr7 >> DR7_RW_SHIFT(n)) & 3;
}

static bool slot_on(uint64_t dr7, unsigned n)
{
	return (dr7 & (DR7_L(n) | DR7_G(n))) != 0;
}

/* [a, a+alen) and slot n's aligned range overlap (no wrap at 2^64). */
static bool slot_overlaps(uint64_t db, unsigned slen, uint64_t a, unsigned alen)
{
	uint64_t base = db & ~(uint64_t)(slen - 1);

	return alen && a <= base + slen - 1 && base <= a + alen - 1;
}

/* DR6 B bits of the enabled slots that an access of kind rw matches. */
static uint64_t match_access(const uint64_t db[DR_SLOTS], uint64_t dr7, unsigned want_rw,
			     uint64_t a, unsigned alen, bool is_write)
{
	uint64_t bits = 0;

	for (unsigned n = 0; n < DR_SLOTS; n++) {
		unsigned rw = slot_rw(dr7, n);

		if (!slot_on(dr7, n))
			continue;
		if (want_rw == DR7_RW_IO ? rw != DR7_RW_IO :
		    !(rw == DR7_RW_ACCESS || (rw == DR7_RW_WRITE && is_write)))
			continue;
		if (slot_overlaps(db[n], slot_len(dr7, n), a, alen))
			bits |= DR6_B(n);
	}
	return bits;
}

static uint64_t match_exec(const uint64_t db[DR_SLOTS], uint64_t dr7, uint64_t lin)
{
	uint64_t bits = 0;

	for (unsigned n = 0; n < DR_SLOTS; n++)
		if (slot_on(dr7, n) && slot_rw(dr7, n) == DR7_RW_EXEC && db[n] == lin)
			bits |= DR6_B(n);
	return bits;
}

static bool debugger_steps(const struct emu_cpu *cpu)
{
	return cpu_steps_by_tf(cpu) ? cpu->dbg.tf_owned : cpu->debugger.single_step;
}

static bool debugger_hw(const struct emu_cpu *cpu)
{
	return cpu->debugger.use_hw_bp && (cpu->debugger.dr7 & DR7_ENABLES);
}

/* --cpu MODEL,shared-dr while the debugger loads registers: they are the
 * vCPU's one set (the union the debug core built from the guest's and its
 * own, as KVM has), and the guest's file is only what the guest reads. */
static bool shared_hw(const struct emu_cpu *cpu)
{
	return cpu->vcpu && cpu->vcpu->vm && cpu->vcpu->vm->cfg.shared_dr && debugger_hw(cpu);
}

/* No enabled slot of dr7 but data breakpoints (RW 01, 11). */
static bool data_slots_only(uint64_t dr7)
{
	for (unsigned n = 0; n < DR_SLOTS; n++)
		if (slot_on(dr7, n) && slot_rw(dr7, n) != DR7_RW_WRITE &&
		    slot_rw(dr7, n) != DR7_RW_ACCESS)
			return false;
	return true;
}

/* What the data breakpoints of both register files are (changes when the
 * pages they watch may have). */
static uint64_t watch_signature(const struct emu_cpu *cpu)
{
	uint64_t s = cpu->dr.dr7 * 31 + (debugger_hw(cpu) ? cpu->debugger.dr7 : 0);
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		s = s * 1000003 + cpu->dr.db[n];
		s = s * 1000003 + (debugger_hw(cpu) ? cpu->debugger.db[n] : 0);
	}
	return s;
}

/* Keep emu_dbg_armed() one load and a test on the hot path. */
static void recompute(struct emu_cpu *cpu)
{
	struct emu_dbg *d = &cpu->dbg;
	bool steps = cpu->debugger.single_step || d->tf_owned || d->delayed || d->mov_dr_exit ||
		     d->due || d->hw_skip || d->tf_from_result || cpu->debugger.access.nr;

	d->active = (cpu->dr.dr7 & DR7_ENABLES) || debugger_hw(cpu) || steps || d->nr_watch;
	d->data_only = d->active && !steps && !(cpu->dr.dr7 & DR7_GD) &&
		       data_slots_only(cpu->dr.dr7) &&
		       (!debugger_hw(cpu) || data_slots_only(cpu->debugger.dr7));
	uint64_t sig = watch_signature(cpu);
	if (sig != d->watch_sig) {
		d->watch_sig = sig;
		d->watch_gen++;
	}
}

/* ---- raising ---- */

static void queue_db_trap(struct emu_cpu *cpu)
{
	cpu->pending.exception = true;
	cpu->pending.vector = X86_DB;
	cpu->pending.has_error_code = false;
	cpu->pending.error_code = 0;
}

/* What #DB delivery does to the debug registers: B0-B3 replaced by this
 * event's matches, BD/BS/BT sticky, GD cleared for the handler. */
static void db_effects(struct emu_cpu *cpu, uint64_t bits)
{
	cpu->dr.dr6 = dr6_normal((cpu->dr.dr6 & ~DR6_B_ALL) | bits);
	cpu->dr.dr7 &= ~DR7_GD;
	recompute(cpu);
}

static void fill_db_exit(struct vm_exit *x, const struct emu_cpu *cpu, uint64_t pc,
			 uint64_t dbg_bits, uint64_t guest_bits)
{
	memset(x, 0, sizeof(*x));
	x->reason = VM_EXIT_DB;
	x->db.pc = pc;
	x->db.dr6 = dbg_bits;
	x->db.dr7 = (dbg_bits & DR6_B_ALL) ? cpu->debugger.dr7 : cpu->dr.dr7;
	x->db.guest_dr6 = guest_bits;
	x->db.watch = cpu->dbg.watch_hit;
}

/* Remember where the run stopped, so the next boundary can tell that an
 * event was delivered before any instruction retired (MTF-like stepping:
 * a fault in the stepped instruction, a pending trap, an interrupt). */
static void mark_stop(struct emu_cpu *cpu, uint64_t pc)
{
	cpu->dbg.step_fresh = cpu->debugger.single_step && !cpu_steps_by_tf(cpu);
	cpu->dbg.step_rip = pc;
}

/* A fault-class guest #DB (instruction breakpoint, GD): delivered now, or
 * an exit when the debugger intercepts it. True either way. */
static bool guest_db_fault(struct emu_cpu *cpu, uint64_t pc, uint64_t bits)
{
	db_effects(cpu, bits);
	if (cpu->debugger.intercept_db) {
		fill_db_exit(&cpu->exit, cpu, pc, 0, bits);
		mark_stop(cpu, pc);
		return true;
	}
	emu_raise(cpu, X86_DB, false, 0);
	return true;
}

static void fill_mov_dr_exit(struct emu_cpu *cpu)
{
	struct emu_dbg *d = &cpu->dbg;

	memset(&cpu->exit, 0, sizeof(cpu->exit));
	cpu->exit.reason = VM_EXIT_MOV_DR;
	cpu->exit.mov_dr.dr = d->mov_dr;
	cpu->exit.mov_dr.gpr = d->mov_gpr;
	cpu->exit.mov_dr.is_write = d->mov_write;
	d->mov_dr_exit = false;
}

/* ---- the call points ---- */

bool emu_dbg_armed(const struct emu_cpu *cpu)
{
	return cpu->dbg.active || (cpu->rflags & (RFLAGS_TF | RFLAGS_RF));
}

bool emu_dbg_data_only(const struct emu_cpu *cpu)
{
	return cpu->dbg.data_only && !(cpu->rflags & (RFLAGS_TF | RFLAGS_RF));
}

/* EMU_DBG_WATCH_* of the enabled data slots of one register file on page. */
static unsigned slots_watch_page(const uint64_t db[DR_SLOTS], uint64_t dr7, uint64_t page)
{
	unsigned m = 0;

	for (unsigned n = 0; n < DR_SLOTS; n++) {
		unsigned rw = slot_rw(dr7, n);
		if (!slot_on(dr7, n) || (rw != DR7_RW_WRITE && rw != DR7_RW_ACCESS) ||
		    !slot_overlaps(db[n], slot_len(dr7, n), page, X86_PAGE_SIZE))
			continue;
		m |= EMU_DBG_WATCH_W | (rw == DR7_RW_ACCESS ? EMU_DBG_WATCH_R : 0);
	}
	return m;
}

unsigned emu_dbg_page_watch(const struct emu_cpu *cpu, uint64_t page, uint64_t gpa_page)
{
	const struct emu_dbg *d = &cpu->dbg;
	unsigned m = slots_watch_page(cpu->dr.db, cpu->dr.dr7, page);

	if (debugger_hw(cpu))
		m |= slots_watch_page(cpu->debugger.db, cpu->debugger.dr7, page);
	for (unsigned i = 0; i < d->nr_watch; i++) {
		const struct engine_watch *w = &d->watch[i];
		uint64_t at = w->phys ? gpa_page : page, start = w->phys ? w->gpa : w->linear;
		if (start < at + X86_PAGE_SIZE && at < start + w->len)
			m |= (w->read ? EMU_DBG_WATCH_R : 0) | (w->write ? EMU_DBG_WATCH_W : 0);
	}
	return m;
}

uint32_t emu_dbg_watch_gen(const struct emu_cpu *cpu)
{
	return cpu->dbg.watch_gen;
}

bool emu_dbg_data_hit(const struct emu_cpu *cpu)
{
	const struct emu_dbg *d = &cpu->dbg;

	return d->hit || d->hit_hw || d->watch_hit;
}

/* Exits left over from the last boundary come first: they belong to the
 * instruction that already retired. */
static bool leftover_exit(struct emu_cpu *cpu, uint64_t lin)
{
	struct emu_dbg *d = &cpu->dbg;

	if (d->due) {
		cpu->exit = d->due_exit;
		d->due = false;
	} else if (d->mov_dr_exit) {
		fill_mov_dr_exit(cpu);
	} else {
		return false;
	}
	mark_stop(cpu, lin);
	recompute(cpu);
	return true;
}

static bool debugger_exec_bp(struct emu_cpu *cpu, uint64_t lin)
{
	struct emu_dbg *d = &cpu->dbg;

	if (d->hw_skip && d->hw_skip_rip != lin) {
		d->hw_skip = false;
		recompute(cpu);
	}
	if (!debugger_hw(cpu) || (d->hw_skip && d->hw_skip_rip == lin))
		return false;
	uint64_t bits = match_exec(cpu->debugger.db, cpu->debugger.dr7, lin);
	if (!bits)
		return false;
	fill_db_exit(&cpu->exit, cpu, lin, bits, 0);
	d->hw_skip = true;
	d->hw_skip_rip = lin;
	mark_stop(cpu, lin);
	recompute(cpu);
	return true;
}

bool emu_dbg_before_insn(struct emu_cpu *cpu, uint64_t lin)
{
	struct emu_dbg *d = &cpu->dbg;

	d->hit = 0;
	d->hit_hw = 0;
	d->watch_hit = 0;
	d->tf_from_result = false;
	d->access_hit = false;      /* an instruction abandoned for an I/O exit starts again */
	if (leftover_exit(cpu, lin))
		return true;
	if (d->tf_owned && !(cpu->rflags & RFLAGS_TF)) {
		/* an event delivery cleared TF: the handler's own TF is 0 */
		d->shadow_tf = false;
		cpu->rflags |= RFLAGS_TF;
	}
	d->guest_tf_start = d->tf_owned ? d->shadow_tf : (cpu->rflags & RFLAGS_TF) != 0;

	if (d->step_fresh && cpu->debugger.single_step) {
		if (lin != d->step_rip) {
			/* RIP moved with no instruction: an event was delivered */
			fill_db_exit(&cpu->exit, cpu, lin, DR6_BS, 0);
			mark_stop(cpu, lin);
			return true;
		}
	}
	if (shared_hw(cpu)) {
		/* one set: RF and the MOV SS shadow suppress all of it */
		if ((cpu->rflags & RFLAGS_RF) || (cpu->interrupt_shadow & EMU_SHADOW_MOVSS))
			return false;
		uint64_t bits = match_exec(cpu->debugger.db, cpu->debugger.dr7, lin);
		if (!bits)
			return false;
		fill_db_exit(&cpu->exit, cpu, lin, bits, 0);
		mark_stop(cpu, lin);
		return true;
	}
	if (debugger_exec_bp(cpu, lin))
		return true;
	/* RF, and the MOV SS shadow (SDM 17.3.1.1), suppress the guest's
	 * instruction breakpoints; the debugger's still report */
	if ((cpu->rflags & RFLAGS_RF) || (cpu->interrupt_shadow & EMU_SHADOW_MOVSS))
		return false;
	uint64_t bits = match_exec(cpu->dr.db, cpu->dr.dr7, lin);
	return bits ? guest_db_fault(cpu, lin, bits) : false;
}

/* The first watched range in that direction whose address (linear, or
 * physical for a phys one) [addr, addr+len) touches. */
static uint32_t watch_match(const struct emu_dbg *d, uint64_t addr, unsigned len,
			    bool is_write, bool phys)
{
	for (unsigned i = 0; i < d->nr_watch; i++) {
		const struct engine_watch *w = &d->watch[i];
		uint64_t start = phys ? w->gpa : w->linear;
		if (w->phys == phys && (is_write ? w->write : w->read) &&
		    addr < start + w->len && start < addr + len)
			return w->id + 1;
	}
	return 0;
}

static bool any_phys(const struct emu_dbg *d, bool is_write)
{
	for (unsigned i = 0; i < d->nr_watch; i++)
		if (d->watch[i].phys && (is_write ? d->watch[i].write : d->watch[i].read))
			return true;
	return false;
}

/* The physical watched ranges the access's bytes touch: each page's piece
 * by its own translation (two pieces when it crosses a page). A piece
 * that does not translate is not accessed: the access faults there. */
static uint32_t watch_match_phys(struct emu_cpu *cpu, uint64_t linear, unsigned len,
				 bool is_write)
{
	if (!any_phys(&cpu->dbg, is_write))
		return 0;
	for (uint64_t a = linear; len; ) {
		unsigned off = (unsigned)(a & (X86_PAGE_SIZE - 1));
		unsigned n = len < X86_PAGE_SIZE - off ? len : (unsigned)(X86_PAGE_SIZE - off);
		uint64_t gpa;
		uint32_t hit = emu_data_gpa(cpu, a, is_write, &gpa) ?
			       watch_match(&cpu->dbg, gpa, n, is_write, true) : 0;
		if (hit)
			return hit;
		len -= n;
		a += n;
		if (!in_long64(cpu))
			a = (uint32_t)a;
	}
	return 0;
}

void emu_dbg_mem(struct emu_cpu *cpu, uint64_t linear, unsigned len, bool is_write)
{
	if (cpu->dbg.nr_watch && !cpu->dbg.watch_hit)
		cpu->dbg.watch_hit = watch_match(&cpu->dbg, linear, len, is_write, false);
	if (cpu->dbg.nr_watch && !cpu->dbg.watch_hit)
		cpu->dbg.watch_hit = watch_match_phys(cpu, linear, len, is_write);
	if (!shared_hw(cpu))
		cpu->dbg.hit |= match_access(cpu->dr.db, cpu->dr.dr7, DR7_RW_ACCESS, linear, len,
					     is_write);
	if (debugger_hw(cpu))
		cpu->dbg.hit_hw |= match_access(cpu->debugger.db, cpu->debugger.dr7, DR7_RW_ACCESS,
						linear, len, is_write);
}

void emu_dbg_io(struct emu_cpu *cpu, uint16_t port, unsigned len)
{
	if (!(cpu->sregs.cr4 & CR4_DE))
		return;
	if (!shared_hw(cpu))
		cpu->dbg.hit |= match_access(cpu->dr.db, cpu->dr.dr7, DR7_RW_IO, port, len, false);
	if (debugger_hw(cpu))
		cpu->dbg.hit_hw |= match_access(cpu->debugger.db, cpu->debugger.dr7, DR7_RW_IO,
						port, len, false);
}

static uint64_t read_dr(const struct emu_cpu *cpu, unsigned r)
{
	switch (r) {
	case 6:
		return cpu->dr.dr6;
	case 7:
		return cpu->dr.dr7;
	default:
		return cpu->dr.db[r];
	}
}

/* False: #GP(0) for a 1 in bits 63:32 of DR6/DR7. */
static bool write_dr(struct emu_cpu *cpu, unsigned r, uint64_t v)
{
	if (r >= 6 && (v >> 32))
		return false;
	if (r == 6)
		cpu->dr.dr6 = dr6_normal(v);
	else if (r == 7)
		cpu->dr.dr7 = dr7_normal(v);
	else
		cpu->dr.db[r] = v;
	return true;
}

bool emu_dbg_mov_dr(struct emu_cpu *cpu, unsigned dr, unsigned gpr, bool to_dr)
{
	bool de = (cpu->sregs.cr4 & CR4_DE) != 0;
	bool m64 = in_long64(cpu);

	if (dr > 7 || gpr > 15 || (de && (dr == 4 || dr == 5))) {
		emu_raise(cpu, X86_UD, false, 0);
		return true;
	}
	if (cpu_cpl(cpu) != 0) {
		emu_raise(cpu, X86_GP, true, 0);
		return true;
	}
	if (cpu->dr.dr7 & DR7_GD)
		return guest_db_fault(cpu, linear_of(cpu, cpu->insn_start_rip), DR6_BD);

	unsigned r = dr == 4 ? 6 : dr == 5 ? 7 : dr;     /* aliases without CR4.DE */
	if (to_dr) {
		uint64_t v = m64 ? cpu->gpr[gpr] : (uint32_t)cpu->gpr[gpr];
		if (!write_dr(cpu, r, v)) {
			emu_raise(cpu, X86_GP, true, 0);
			return true;
		}
	} else {
		uint64_t v = read_dr(cpu, r);
		cpu->gpr[gpr] = m64 ? v : (uint32_t)v;
	}
	if (cpu->debugger.intercept_mov_dr) {
		cpu->dbg.mov_dr_exit = true;
		cpu->dbg.mov_dr = (uint8_t)dr;
		cpu->dbg.mov_gpr = (uint8_t)gpr;
		cpu->dbg.mov_write = to_dr;
	}
	recompute(cpu);
	return false;
}

static bool guest_tf_now(const struct emu_cpu *cpu)
{
	return cpu->dbg.tf_owned ? cpu->dbg.shadow_tf : (cpu->rflags & RFLAGS_TF) != 0;
}

/* The guest's TF that decides this instruction's single-step trap: the
 * one it began with, or for SYSCALL/SYSRET the one it produced. */
static bool guest_step_tf(const struct emu_cpu *cpu, uint64_t rflags_before)
{
	const struct emu_dbg *d = &cpu->dbg;

	if (d->tf_from_result)
		return guest_tf_now(cpu);
	return d->tf_owned ? d->guest_tf_start : (rflags_before & RFLAGS_TF) != 0;
}

/* The guest's trap bits at this boundary, after the MOV SS shadow. */
static uint64_t guest_trap_bits(struct emu_cpu *cpu, uint64_t rflags_before)
{
	struct emu_dbg *d = &cpu->dbg;
	bool tf = guest_step_tf(cpu, rflags_before);
	uint64_t g = d->hit | (tf ? DR6_BS : 0);

	d->tf_from_result = false;

	if (cpu->interrupt_shadow & EMU_SHADOW_MOVSS) {
		d->delayed |= g;         /* SDM 6.8.3: #DB waits one instruction */
		return 0;
	}
	g |= d->delayed;
	d->delayed = 0;
	return g;
}

/* An exit in the middle of a REP instruction resumes it: neither the
 * guest's nor the debugger's instruction breakpoint fires again. */
static void exit_mid_insn(struct emu_cpu *cpu, uint64_t lin)
{
	if (cpu->rip != cpu->insn_start_rip)
		return;
	cpu->rflags |= RFLAGS_RF;
	cpu->dbg.hw_skip = true;
	cpu->dbg.hw_skip_rip = lin;
}

bool emu_dbg_end_insn(struct emu_cpu *cpu, uint64_t rflags_before)
{
	struct emu_dbg *d = &cpu->dbg;
	uint64_t lin = linear_rip(cpu);

	if (rflags_before & RFLAGS_RF)
		cpu->rflags &= ~RFLAGS_RF;   /* an IRET that loads RF=1 keeps it */
	d->hw_skip = false;
	d->step_fresh = false;       /* an instruction retired since the last stop */

	uint64_t g = guest_trap_bits(cpu, rflags_before);
	/* kvm-step: the engine's TF trap waits out a MOV SS shadow, as the
	 * hardware's does (SDM 6.8.3): one step covers both instructions */
	bool held = cpu_kvm_step(cpu) && (cpu->interrupt_shadow & EMU_SHADOW_MOVSS);
	uint64_t dbg = d->hit_hw | (debugger_steps(cpu) && !held ? DR6_BS : 0);
	bool intercepted = g && cpu->debugger.intercept_db;
	/* the debugger's own stop here (a step, a watchpoint) stops at the
	 * same boundary: the access is not reported twice */
	bool access = d->access_hit && !dbg;
	d->hit = 0;
	d->hit_hw = 0;
	d->access_hit = false;
	if (g) {
		db_effects(cpu, g);
		if (!intercepted)
			queue_db_trap(cpu);
	}
	if (access && !intercepted && !d->mov_dr_exit && !d->watch_hit) {
		cpu->exit = d->access_exit;
		mark_stop(cpu, lin);
		recompute(cpu);
		return true;
	}
	if (!dbg && !intercepted && !d->mov_dr_exit && !d->watch_hit) {
		recompute(cpu);
		return g != 0;
	}

	struct vm_exit x;
	bool db_exit = dbg || intercepted || d->watch_hit;
	if (db_exit)
		fill_db_exit(&x, cpu, lin, dbg, intercepted ? g : 0);
	d->watch_hit = 0;
	if (d->mov_dr_exit) {
		fill_mov_dr_exit(cpu);
		d->due = db_exit;
		d->due_exit = x;
	} else {
		cpu->exit = x;
	}
	exit_mid_insn(cpu, lin);
	mark_stop(cpu, lin);
	recompute(cpu);
	return true;
}

void emu_dbg_access(struct emu_cpu *cpu, enum engine_access_kind kind, uint32_t index,
		    unsigned size, bool is_write, uint64_t value)
{
	struct emu_dbg *d = &cpu->dbg;
	if (d->access_hit || !engine_access_match(&cpu->debugger.access, kind, index, is_write))
		return;
	d->access_hit = true;
	memset(&d->access_exit, 0, sizeof(d->access_exit));
	d->access_exit.reason = VM_EXIT_ACCESS;
	d->access_exit.access.kind = (uint8_t)kind;
	d->access_exit.access.is_write = is_write;
	d->access_exit.access.size = (uint8_t)size;
	d->access_exit.access.index = index;
	d->access_exit.access.value = value;
	d->access_exit.access.pc = linear_of(cpu, cpu->insn_start_rip);
	recompute(cpu);
}

bool emu_dbg_icebp(struct emu_cpu *cpu)
{
	/* INT1 raises #DB without a DR6 condition; the handler still gets
	 * GD cleared, as for every #DB. Traps a MOV SS held back for it are
	 * dropped: hardware enters the handler once, with no BS or B bits. */
	cpu->dbg.hit = 0;
	cpu->dbg.hit_hw = 0;
	cpu->dbg.watch_hit = 0;
	cpu->dbg.delayed = 0;
	cpu->dr.dr7 &= ~DR7_GD;
	queue_db_trap(cpu);
	recompute(cpu);
	return true;
}

void emu_dbg_event_in_insn(struct emu_cpu *cpu)
{
	struct emu_dbg *d = &cpu->dbg;
	uint64_t g = d->delayed;

	d->delayed = 0;
	d->hit = 0;
	d->hit_hw = 0;
	d->watch_hit = 0;
	if (!g && cpu_kvm_step(cpu) && d->tf_owned && !cpu->pending.exception) {
		/* kvm-step: the host KVM hands INT n to emu's core, which
		 * stops the step at the handler's first instruction (INT1
		 * only queued its #DB: that one is taken like a fault's) */
		uint64_t lin = linear_rip(cpu);
		fill_db_exit(&cpu->exit, cpu, lin, DR6_BS, 0);
		mark_stop(cpu, lin);
		recompute(cpu);
		return;
	}
	if (!g) {
		recompute(cpu);
		return;
	}
	/* INT n/INT3/INTO after MOV SS: the held-back #DB comes at the
	 * handler's first instruction, before it runs (as on hardware) */
	db_effects(cpu, g);
	if (cpu->debugger.intercept_db) {
		uint64_t lin = linear_rip(cpu);
		fill_db_exit(&cpu->exit, cpu, lin, 0, g);
		mark_stop(cpu, lin);
		return;
	}
	queue_db_trap(cpu);
}

void emu_dbg_fault(struct emu_cpu *cpu)
{
	/* a fault discards the traps a MOV SS held back (SDM 6.8.3), and
	 * the faulting instruction's accesses report nothing */
	cpu->dbg.delayed = 0;
	cpu->dbg.hit = 0;
	cpu->dbg.hit_hw = 0;
	cpu->dbg.watch_hit = 0;
	cpu->dbg.tf_from_result = false;
	recompute(cpu);
}

void emu_dbg_tf_from_result(struct emu_cpu *cpu)
{
	cpu->dbg.tf_from_result = true;
	recompute(cpu);
}

bool emu_dbg_int3(struct emu_cpu *cpu, uint64_t lin)
{
	if (!cpu->debugger.intercept_bpt)
		return false;
	memset(&cpu->exit, 0, sizeof(cpu->exit));
	cpu->exit.reason = VM_EXIT_BPT;
	cpu->exit.bpt.pc = lin;
	mark_stop(cpu, lin);
	return true;
}

bool emu_dbg_irq_blocked(const struct emu_cpu *cpu)
{
	return cpu->debugger.single_step && cpu->debugger.block_irq;
}

uint64_t emu_dbg_rflags_image(const struct emu_cpu *cpu)
{
	/* kvm-step: the engine's TF leaks into every image, as hardware's does */
	if (!cpu->dbg.tf_owned || cpu_kvm_step(cpu))
		return cpu->rflags;
	return (cpu->rflags & ~RFLAGS_TF) | (cpu->dbg.shadow_tf ? RFLAGS_TF : 0);
}

uint64_t emu_dbg_rflags_view(const struct emu_cpu *cpu)
{
	/* kvm-step: hidden from the debugger, which sees no TF at all */
	if (cpu->dbg.tf_owned && cpu_kvm_step(cpu))
		return cpu->rflags & ~RFLAGS_TF;
	return emu_dbg_rflags_image(cpu);
}

void emu_dbg_rflags_for_event(struct emu_cpu *cpu, uint64_t rflags)
{
	cpu->rflags = rflags;
	if (cpu->dbg.tf_owned && !cpu_kvm_step(cpu)) {
		cpu->dbg.shadow_tf = (rflags & RFLAGS_TF) != 0;
		cpu->rflags |= RFLAGS_TF;
	}
	/* kvm-step: the image is cpu->rflags as set; the engine's TF comes
	 * back at the handler's first instruction (emu_dbg_before_insn) */
}

void emu_dbg_rflags_loaded(struct emu_cpu *cpu)
{
	if (!cpu->dbg.tf_owned)
		return;
	/* kvm-step: a TF the guest loads is lost under the engine's */
	cpu->dbg.shadow_tf = !cpu_kvm_step(cpu) && (cpu->rflags & RFLAGS_TF);
	cpu->rflags |= RFLAGS_TF;
}

/* ---- engine_ops plumbing ---- */

/* --cpu amd: take TF when stepping starts, give the guest's back after.
 * --cpu kvm-step: the guest's TF is lost both ways (KVM reads RFLAGS with
 * its own TF masked, and writes that back when stepping stops). */
static void step_tf(struct emu_cpu *cpu, bool step)
{
	struct emu_dbg *d = &cpu->dbg;

	if (step && !d->tf_owned) {
		d->shadow_tf = !cpu_kvm_step(cpu) && (cpu->rflags & RFLAGS_TF);
		d->tf_owned = true;
		cpu->rflags |= RFLAGS_TF;
	} else if (!step && d->tf_owned) {
		cpu->rflags = (cpu->rflags & ~RFLAGS_TF) | (d->shadow_tf ? RFLAGS_TF : 0);
		d->tf_owned = false;
	}
}

int emu_dbg_set_debug(struct emu_cpu *cpu, const struct engine_debug *dbg)
{
	cpu->debugger = *dbg;
	if (cpu_steps_by_tf(cpu))
		step_tf(cpu, dbg->single_step);
	mark_stop(cpu, linear_rip(cpu));
	recompute(cpu);
	return 0;
}

void emu_dbg_get_regs(const struct emu_cpu *cpu, struct x86_debugregs *dr)
{
	*dr = cpu->dr;
}

void emu_dbg_set_regs(struct emu_cpu *cpu, const struct x86_debugregs *dr)
{
	memcpy(cpu->dr.db, dr->db, sizeof(cpu->dr.db));
	cpu->dr.dr6 = dr6_normal(dr->dr6);
	cpu->dr.dr7 = dr7_normal(dr->dr7);
	recompute(cpu);
}

void emu_dbg_reset(struct emu_cpu *cpu)
{
	bool owned = cpu->dbg.tf_owned;
	const struct engine_watch *watch = cpu->dbg.watch;
	unsigned nr_watch = cpu->dbg.nr_watch;
	uint32_t gen = cpu->dbg.watch_gen;

	memset(&cpu->dr, 0, sizeof(cpu->dr));
	cpu->dr.dr6 = DR6_INIT;
	cpu->dr.dr7 = DR7_INIT;
	memset(&cpu->dbg, 0, sizeof(cpu->dbg));
	cpu->dbg.tf_owned = owned;     /* re-takes TF at the next instruction */
	cpu->dbg.watch = watch;        /* the debugger's, not the CPU's */
	cpu->dbg.nr_watch = nr_watch;
	cpu->dbg.watch_gen = gen + 1;
	recompute(cpu);
}

void emu_dbg_set_watch(struct emu_cpu *cpu, const struct engine_watch *w, unsigned n)
{
	cpu->dbg.watch = w;
	cpu->dbg.nr_watch = n;
	cpu->dbg.watch_hit = 0;
	cpu->dbg.watch_gen++;
	recompute(cpu);
}
