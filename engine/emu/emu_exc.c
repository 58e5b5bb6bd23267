/* engine/emu/emu_exc.c — exceptions, interrupts and the segment machinery
 * they need: raising faults (emu_fault unwinds to the run loop), delivery
 * through the IVT (real mode), 32-bit IDT gates and 64-bit IDT gates
 * (IST, stack switch from the TSS, 16-byte aligned frames), the double
 * fault rules and the triple fault (VM_EXIT_SHUTDOWN), descriptor loads,
 * far transfers and IRET.
 *
 * Frames are written completely before any register changes, so a fault
 * while delivering leaves the state of the first event intact, and the
 * second event is combined with it (SDM vol. 3 table 6-5): contributory
 * or page fault during a contributory/page fault -> #DF, anything during
 * #DF -> shutdown. Task gates and hardware task switches are not
 * implemented (#GP). */
#include "engine/emu/emu_core.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu_debug.h"
#include "x86/desc.h"

void emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error_code, uint32_t error_code)
{
	if (cpu->pending.exception)
		return;                    /* the first one is delivered; it decides */
	cpu->pending.exception = true;
	cpu->pending.vector = vector;
	cpu->pending.has_error_code = has_error_code;
	cpu->pending.error_code = error_code;
}

_Noreturn void emu_fault(struct emu_cpu *cpu, uint8_t vector, bool has_error_code,
			 uint32_t error_code)
{
	struct emu_core *c = emu_core_of(cpu);
	emu_flags_sync(cpu);               /* a fault inside a block (emu_fast.c) */
	c->lk_on = false;                  /* a locked instruction's write never happened */
	cpu->pending.exception = true;
	cpu->pending.vector = vector;
	cpu->pending.has_error_code = has_error_code;
	cpu->pending.error_code = error_code;
	if (!c->delivering)
		cpu->rip = cpu->insn_start_rip;
	if (!c->in_loop)
		abort();                   /* a core bug: faults only happen inside the loop */
	longjmp(c->jmp, EMU_JMP_FAULT);
}

_Noreturn void emu_leave(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	emu_flags_sync(cpu);
	c->lk_on = false;
	if (!c->delivering)
		cpu->rip = cpu->insn_start_rip;
	if (!c->in_loop)
		abort();
	longjmp(c->jmp, EMU_JMP_EXIT);
}

/* --- descriptors ------------------------------------------------------------ */

uint64_t emu_read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *high)
{
	uint64_t base, limit;
	if (sel & SEL_TI_LDT) {
		if (cpu->sregs.ldt.unusable || !cpu->sregs.ldt.present)
			emu_gp(cpu, sel & ~3u);
		base = cpu->sregs.ldt.base;
		limit = cpu->sregs.ldt.limit;
	} else {
		base = cpu->sregs.gdt.base;
		limit = cpu->sregs.gdt.limit;
	}
	unsigned off = sel & ~7u;
	unsigned need = high ? 15 : 7;
	if (off + need > limit)
		emu_gp(cpu, sel & ~3u);
	uint64_t lin = base + off;
	if (!emu_long64(cpu))
		lin = (uint32_t)lin;
	if (high)
		*high = emu_read_sys(cpu, lin + 8, 8);
	return emu_read_sys(cpu, lin, 8);
}

static bool real_or_v86(struct emu_cpu *cpu)
{
	return !(cpu->sregs.cr0 & CR0_PE) || (cpu->rflags & RFLAGS_VM);
}

void emu_load_seg(struct emu_cpu *cpu, unsigned seg, uint16_t sel)
{
	struct emu_core *c = emu_core_of(cpu);
	struct x86_segment *s = emu_segreg(cpu, seg);
	if (real_or_v86(cpu)) {
		s->selector = sel;
		s->base = (uint64_t)sel << 4;
		if (seg == EMU_CS)
			emu_update_mode(cpu);
		return;
	}
	if ((sel & ~3u) == 0) {
		bool ok = seg != EMU_SS || (c->mode == X86_MODE_LONG64 && c->cpl < 3);
		if (!ok)
			emu_gp(cpu, 0);
		memset(s, 0, sizeof(*s));
		s->selector = sel;
		s->unusable = 1;
		if (seg == EMU_SS)
			s->dpl = c->cpl;
		return;
	}
	uint64_t d = emu_read_desc(cpu, sel, NULL);
	struct x86_segment n;
	x86_seg_decode(d, sel, &n);
	bool code = n.type & SEG_TYPE_EXECUTABLE;
	if (!n.s)
		emu_gp(cpu, sel & ~3u);
	if (seg == EMU_SS) {
		if (code || !(n.type & SEG_TYPE_WRITABLE) || n.dpl != c->cpl || (sel & 3) != c->cpl)
			emu_gp(cpu, sel & ~3u);
		if (!n.present)
			emu_fault(cpu, X86_SS, true, sel & ~3u);
	} else {
		if (code && !(n.type & SEG_TYPE_READABLE))
			emu_gp(cpu, sel & ~3u);
		if (!n.present)
			emu_fault(cpu, X86_NP, true, sel & ~3u);
	}
	*s = n;
}

void emu_load_cs(struct emu_cpu *cpu, uint16_t sel, unsigned new_cpl)
{
	struct emu_core *c = emu_core_of(cpu);
	if (real_or_v86(cpu)) {
		cpu->sregs.cs.selector = sel;
		cpu->sregs.cs.base = (uint64_t)sel << 4;
		emu_update_mode(cpu);
		return;
	}
	if ((sel & ~3u) == 0)
		emu_gp(cpu, 0);
	uint64_t d = emu_read_desc(cpu, sel, NULL);
	struct x86_segment n;
	x86_seg_decode(d, (uint16_t)((sel & ~3u) | new_cpl), &n);
	if (!n.s || !(n.type & SEG_TYPE_EXECUTABLE))
		emu_gp(cpu, sel & ~3u);
	if (!n.present)
		emu_fault(cpu, X86_NP, true, sel & ~3u);
	if (!(cpu->sregs.efer & EFER_LMA))
		n.l = 0;
	cpu->sregs.cs = n;
	if (c->cpl != new_cpl) {
		c->cpl = (uint8_t)new_cpl;
	}
	emu_update_mode(cpu);
}

/* --- event delivery ---------------------------------------------------------- */

static bool contributory(uint8_t v)
{
	return v == X86_DE || v == X86_TS || v == X86_NP || v == X86_SS || v == X86_GP;
}

/* Faults push RFLAGS with RF set so IRET does not re-trigger an
 * instruction breakpoint at the restarted instruction; #DB decides itself
 * (emu_debug.c), traps and interrupts push RFLAGS as they are. */
static bool fault_class(uint8_t v)
{
	switch (v) {
	case X86_DE: case X86_BR: case X86_UD: case X86_NM: case X86_TS: case X86_NP:
	case X86_SS: case X86_GP: case X86_PF: case X86_MF: case X86_AC: case X86_XM:
		return true;
	default:
		return false;
	}
}

static uint32_t idt_error(uint8_t vector, enum emu_event kind)
{
	return (uint32_t)vector * 8 + 2 + (kind == EMU_EV_EXT || kind == EMU_EV_NMI ? 1 : 0);
}

static void deliver_real(struct emu_cpu *cpu, uint8_t vector, uint64_t flags)
{
	uint64_t at = (uint32_t)cpu->sregs.idt.base + vector * 4u;
	if (vector * 4u + 3 > cpu->sregs.idt.limit)
		emu_gp(cpu, idt_error(vector, EMU_EV_EXC));
	uint16_t ip = (uint16_t)emu_read_sys(cpu, at, 2);
	uint16_t cs = (uint16_t)emu_read_sys(cpu, at + 2, 2);
	uint64_t sp = cpu->gpr[EMU_RSP];
	emu_stack_put(cpu, &sp, 2, flags, true);
	emu_stack_put(cpu, &sp, 2, cpu->sregs.cs.selector, true);
	emu_stack_put(cpu, &sp, 2, cpu->rip, true);
	emu_set_sp(cpu, sp);
	cpu->rflags &= ~(RFLAGS_IF | RFLAGS_TF | RFLAGS_AC | RFLAGS_RF);
	emu_load_cs(cpu, cs, 0);
	cpu->rip = ip;
}

static void check_gate(struct emu_cpu *cpu, const struct x86_gate *g, uint8_t vector,
		       enum emu_event kind)
{
	struct emu_core *c = emu_core_of(cpu);
	if (kind == EMU_EV_SOFT && g->dpl < c->cpl)
		emu_gp(cpu, idt_error(vector, EMU_EV_EXC));
	if (!g->present)
		emu_fault(cpu, X86_NP, true, idt_error(vector, kind));
}

static void deliver_long(struct emu_cpu *cpu, uint8_t vector, enum emu_event kind,
			 bool has_err, uint32_t err, uint64_t flags)
{
	struct emu_core *c = emu_core_of(cpu);
	if (vector * 16u + 15 > cpu->sregs.idt.limit)
		emu_gp(cpu, idt_error(vector, kind));
	uint64_t at = cpu->sregs.idt.base + vector * 16u;
	uint64_t raw[2] = { emu_read_sys(cpu, at, 8), emu_read_sys(cpu, at + 8, 8) };
	struct x86_gate g = x86_gate_decode(raw, X86_MODE_LONG64);
	if (!x86_gate_is_handler(&g, X86_MODE_LONG64))
		emu_gp(cpu, idt_error(vector, kind));
	check_gate(cpu, &g, vector, kind);

	struct x86_segment ncs;
	x86_seg_decode(emu_read_desc(cpu, g.selector, NULL), g.selector, &ncs);
	if (!ncs.s || !(ncs.type & SEG_TYPE_EXECUTABLE) || !ncs.l || ncs.db)
		emu_gp(cpu, g.selector & ~3u);
	if (!ncs.present)
		emu_fault(cpu, X86_NP, true, g.selector & ~3u);
	unsigned new_cpl = ncs.dpl < c->cpl ? ncs.dpl : c->cpl;

	uint64_t sp = cpu->gpr[EMU_RSP];
	if (g.ist)
		sp = emu_read_sys(cpu, cpu->sregs.tr.base + TSS64_IST(g.ist), 8);
	else if (new_cpl < c->cpl)
		sp = emu_read_sys(cpu, cpu->sregs.tr.base + TSS64_RSP(new_cpl), 8);
	sp &= ~0xfull;
	uint64_t old_ss = cpu->sregs.ss.selector, old_rsp = cpu->gpr[EMU_RSP];
	uint64_t old_cs = cpu->sregs.cs.selector;
	uint64_t f = sp - sizeof(struct x86_int_frame64);
	unsigned old_cpl = c->cpl;
	/* frame writes are supervisor accesses when going to ring 0-2 */
	emu_write_sys(cpu, f + offsetof(struct x86_int_frame64, ss), 8, old_ss);
	emu_write_sys(cpu, f + offsetof(struct x86_int_frame64, rsp), 8, old_rsp);
	emu_write_sys(cpu, f + offsetof(struct x86_int_frame64, rflags), 8, flags);
	emu_write_sys(cpu, f + offsetof(struct x86_int_frame64, cs), 8, old_cs);
	emu_write_sys(cpu, f + offsetof(struct x86_int_frame64, rip), 8, cpu->rip);
	if (has_err) {
		emu_write_sys(cpu, f - 8, 8, err);
		f -= 8;
	}
	ncs.selector = (uint16_t)((g.selector & ~3u) | new_cpl);
	cpu->sregs.cs = ncs;
	c->cpl = (uint8_t)new_cpl;
	if (new_cpl != old_cpl) {
		memset(&cpu->sregs.ss, 0, sizeof(cpu->sregs.ss));
		cpu->sregs.ss.selector = (uint16_t)new_cpl;
		cpu->sregs.ss.unusable = 1;
		cpu->sregs.ss.dpl = (uint8_t)new_cpl;
	}
	cpu->gpr[EMU_RSP] = f;
	cpu->rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
	if (g.type == X86_GATE_INT)
		cpu->rflags &= ~RFLAGS_IF;
	cpu->rip = g.offset;
	emu_update_mode(cpu);
}

static void deliver_prot(struct emu_cpu *cpu, uint8_t vector, enum emu_event kind,
			 bool has_err, uint32_t err, uint64_t flags)
{
	struct emu_core *c = emu_core_of(cpu);
	if (vector * 8u + 7 > cpu->sregs.idt.limit)
		emu_gp(cpu, idt_error(vector, kind));
	uint64_t at = (uint32_t)(cpu->sregs.idt.base + vector * 8u);
	uint64_t raw = emu_read_sys(cpu, at, 8);
	struct x86_gate g = x86_gate_decode(&raw, X86_MODE_PROT32);
	if (!x86_gate_is_handler(&g, X86_MODE_PROT32))
		emu_gp(cpu, idt_error(vector, kind));
	check_gate(cpu, &g, vector, kind);
	unsigned size = (g.type & 8) ? 4 : 2;

	struct x86_segment ncs;
	x86_seg_decode(emu_read_desc(cpu, g.selector, NULL), g.selector, &ncs);
	if (!ncs.s || !(ncs.type & SEG_TYPE_EXECUTABLE))
		emu_gp(cpu, g.selector & ~3u);
	if (!ncs.present)
		emu_fault(cpu, X86_NP, true, g.selector & ~3u);
	unsigned new_cpl = ncs.dpl < c->cpl ? ncs.dpl : c->cpl;

	uint64_t sp = cpu->gpr[EMU_RSP];
	struct x86_segment nss = cpu->sregs.ss;
	bool switch_stack = new_cpl < c->cpl;
	if (switch_stack) {
		uint64_t tss = cpu->sregs.tr.base;
		sp = emu_read_sys(cpu, tss + TSS32_ESP(new_cpl), 4);
		uint16_t ss_sel = (uint16_t)emu_read_sys(cpu, tss + TSS32_SS(new_cpl), 2);
		x86_seg_decode(emu_read_desc(cpu, ss_sel, NULL), ss_sel, &nss);
	}
	uint64_t mask = nss.db ? 0xffffffffull : 0xffffull;
	uint64_t f = sp;
	unsigned nw = 3 + (switch_stack ? 2 : 0) + (has_err ? 1 : 0);
	uint64_t words[6], *w = words;
	if (switch_stack) {
		*w++ = cpu->sregs.ss.selector;
		*w++ = cpu->gpr[EMU_RSP];
	}
	*w++ = flags;
	*w++ = cpu->sregs.cs.selector;
	*w++ = cpu->rip;
	if (has_err)
		*w++ = err;
	for (unsigned i = 0; i < nw; i++) {
		f -= size;
		emu_write_sys(cpu, (uint32_t)(nss.base + (f & mask)), size, words[i]);
	}
	if (switch_stack)
		cpu->sregs.ss = nss;
	ncs.selector = (uint16_t)((g.selector & ~3u) | new_cpl);
	cpu->sregs.cs = ncs;
	c->cpl = (uint8_t)new_cpl;
	cpu->gpr[EMU_RSP] = (cpu->gpr[EMU_RSP] & ~mask) | (f & mask);
	cpu->rflags &= ~(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM);
	if (!(g.type & 1))
		cpu->rflags &= ~RFLAGS_IF;
	cpu->rip = g.offset;
	emu_update_mode(cpu);
}

void emu_deliver(struct emu_cpu *cpu, uint8_t vector, enum emu_event kind, bool has_error_code,
		 uint32_t error_code)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t flags = emu_dbg_rflags_image(cpu);
	if ((kind == EMU_EV_EXC && fault_class(vector)) || c->rep_pending)
		flags |= RFLAGS_RF;
	c->delivering = true;
	c->deliver_vector = vector;
	c->deliver_kind = (uint8_t)kind;
	if (!(cpu->sregs.cr0 & CR0_PE))
		deliver_real(cpu, vector, flags);
	else if (cpu->sregs.efer & EFER_LMA)
		deliver_long(cpu, vector, kind, has_error_code, error_code, flags);
	else
		deliver_prot(cpu, vector, kind, has_error_code, error_code, flags);
	c->delivering = false;
	c->event_in_insn = true;
	c->rep_pending = false;
	c->rep_batch = 0;
	if (kind == EMU_EV_NMI)
		c->nmi_blocked = true;
	cpu->halted = false;
	emu_replay_reset(cpu);
}

bool emu_deliver_pending(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	uint8_t v = cpu->pending.vector;
	bool has = cpu->pending.has_error_code;
	uint32_t err = cpu->pending.error_code;
	cpu->pending.exception = false;
	if (c->delivering) {
		uint8_t first = c->deliver_vector;
		bool first_exc = c->deliver_kind == EMU_EV_EXC;
		c->delivering = false;
		if (first_exc && first == X86_DF) {
			memset(&cpu->exit, 0, sizeof(cpu->exit));
			cpu->exit.reason = VM_EXIT_SHUTDOWN;
			cpu->exit.shutdown.vector = c->df_first;
			c->shutdown = true;
			return false;
		}
		if (first_exc && ((contributory(first) && contributory(v)) ||
				  (first == X86_PF && (v == X86_PF || contributory(v))))) {
			v = X86_DF;
			has = true;
			err = 0;
		}
	} else {
		c->df_first = v;       /* a fresh exception: it begins any escalation */
	}
	if (!(cpu->sregs.cr0 & CR0_PE) && v == X86_DF)
		has = false;
	emu_deliver(cpu, v, EMU_EV_EXC, has, err);
	return true;
}

/* --- far transfers and IRET -------------------------------------------------- */

void emu_far_jump(struct emu_cpu *cpu, uint16_t sel, uint64_t off, bool call, unsigned osize)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t sp = cpu->gpr[EMU_RSP];
	if (!real_or_v86(cpu)) {
		uint64_t d = emu_read_desc(cpu, sel, NULL);
		struct x86_segment n;
		x86_seg_decode(d, sel, &n);
		if (!n.s || !(n.type & SEG_TYPE_EXECUTABLE))
			emu_gp(cpu, sel & ~3u);    /* call gates, task gates: not implemented */
	}
	if (call) {
		emu_stack_put(cpu, &sp, osize, cpu->sregs.cs.selector, false);
		emu_stack_put(cpu, &sp, osize, cpu->rip, false);
	}
	emu_load_cs(cpu, sel, c->cpl);
	if (call)
		emu_set_sp(cpu, sp);
	cpu->rip = osize == 8 ? off : off & emu_mask(osize);
}

void emu_far_return(struct emu_cpu *cpu, unsigned osize, unsigned pop)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t rip = emu_stack_get(cpu, &sp, osize);
	uint16_t cs = (uint16_t)emu_stack_get(cpu, &sp, osize);
	sp += pop;
	if (real_or_v86(cpu)) {
		emu_load_cs(cpu, cs, 0);
		emu_set_sp(cpu, sp);
		cpu->rip = rip & emu_mask(osize);
		return;
	}
	unsigned rpl = cs & 3;
	if (rpl < c->cpl)
		emu_gp(cpu, cs & ~3u);
	if (rpl > c->cpl) {
		uint64_t nsp = emu_stack_get(cpu, &sp, osize);
		uint16_t ss = (uint16_t)emu_stack_get(cpu, &sp, osize);
		emu_load_cs(cpu, cs, rpl);
		emu_load_seg(cpu, EMU_SS, ss);
		cpu->gpr[EMU_RSP] = nsp + pop;
	} else {
		emu_load_cs(cpu, cs, rpl);
		emu_set_sp(cpu, sp);
	}
	cpu->rip = osize == 8 ? rip : rip & emu_mask(osize);
}

/* Bits IRET may change at this CPL/IOPL (VM stays clear: no virtual-8086). */
static uint64_t iret_mask(struct emu_cpu *cpu, unsigned osize)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t m = RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF |
		     RFLAGS_DF | RFLAGS_OF | RFLAGS_NT;
	unsigned iopl = (cpu->rflags & RFLAGS_IOPL_MASK) >> 12;
	if (c->cpl <= iopl || !(cpu->sregs.cr0 & CR0_PE))
		m |= RFLAGS_IF;
	if (c->cpl == 0 || !(cpu->sregs.cr0 & CR0_PE))
		m |= RFLAGS_IOPL_MASK;
	if (osize >= 4)
		m |= RFLAGS_RF | RFLAGS_AC | RFLAGS_ID | (1ull << 19) | (1ull << 20);
	return m;
}

void emu_iret(struct emu_cpu *cpu, unsigned osize)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t rip = emu_stack_get(cpu, &sp, osize);
	uint16_t cs = (uint16_t)emu_stack_get(cpu, &sp, osize);
	uint64_t flags = emu_stack_get(cpu, &sp, osize);
	uint64_t mask = iret_mask(cpu, osize);

	if (real_or_v86(cpu)) {
		emu_load_cs(cpu, cs, 0);
		emu_set_sp(cpu, sp);
		emu_set_rflags(cpu, flags, mask);
		emu_dbg_rflags_loaded(cpu);
		cpu->rip = rip & emu_mask(osize);
		c->nmi_blocked = false;
		return;
	}
	if (cpu->rflags & RFLAGS_NT && !(cpu->sregs.efer & EFER_LMA))
		emu_gp(cpu, 0);               /* task return: no hardware task switching */
	unsigned rpl = cs & 3;
	if (rpl < c->cpl)
		emu_gp(cpu, cs & ~3u);
	bool pop_stack = c->mode == X86_MODE_LONG64 || rpl > c->cpl;
	uint64_t nsp = 0;
	uint16_t ss = 0;
	if (pop_stack) {
		nsp = emu_stack_get(cpu, &sp, osize);
		ss = (uint16_t)emu_stack_get(cpu, &sp, osize);
	}
	emu_load_cs(cpu, cs, rpl);
	emu_set_rflags(cpu, flags, mask);
	emu_dbg_rflags_loaded(cpu);
	if (pop_stack) {
		emu_load_seg(cpu, EMU_SS, ss);
		cpu->gpr[EMU_RSP] = osize == 8 ? nsp : nsp & emu_mask(osize);
		if (osize == 4 && cpu->sregs.ss.db)
			cpu->gpr[EMU_RSP] = (uint32_t)nsp;
	} else {
		emu_set_sp(cpu, sp);
	}
	cpu->rip = c->mode == X86_MODE_LONG64 ? rip : rip & emu_mask(osize < 4 ? 2 : 4);
	c->nmi_blocked = false;
}
