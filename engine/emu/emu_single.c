/* engine/emu/emu_single.c — one instruction on emu's execution core for a
 * vCPU another engine owns (see emu_single.h).
 *
 * The core runs in a VM of its own making: one struct emu_cpu, no
 * platform (no LAPIC, IOAPIC, PIC or PIT: with none, every port and every
 * non-RAM address leaves as an exit), no decode cache (a miss costs one
 * Zydis decode; these instructions are rare). Guest memory is the calling
 * VM's RAM through cpu->vcpu->vm, so nothing is copied.
 *
 * "Exactly one" is the core's own debugger stepping (MTF-like,
 * emu_debug.h): with single_step set, emu_exec_run stops after the
 * instruction retires, or before the first instruction of a handler when
 * the instruction raised an exception or delivered INT n, whichever comes
 * first; a budget of 2 bounds it either way. Interrupts stay blocked
 * (block_irq), and emu has none to give anyway. */
#include "engine/emu/emu_single.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_debug.h"
#include "x86/decode.h"
#include "x86/insn.h"
#include "machine/vm.h"

#define DR7_ENABLE_BITS (DR7_L(0) | DR7_G(0) | DR7_L(1) | DR7_G(1) | \
			 DR7_L(2) | DR7_G(2) | DR7_L(3) | DR7_G(3))
/* the instruction itself, then at most the check before the next one */
#define EMU_SINGLE_BUDGET 2
#define EMU_SINGLE_XCR0_KNOWN 0x3ull     /* x87 | SSE */

struct emu_single {
	struct emu_vm evm;
	struct emu_cpu cpu;
	struct emu_core core;
	uint64_t loaded_dr6, loaded_dr7;   /* as emu normalised them at load */
	bool tlb_filled;                   /* the TLB was built for a step already */
};

/* --- describing an instruction ------------------------------------------ */

static bool single_decode(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
			  ZydisDecodedInstruction *zi, ZydisDecodedOperand *zo)
{
	ZydisDecoder dec;
	if (len == 0 || !x86_zydis_decoder_init(&dec, x86_mode_of(sregs)))
		return false;
	return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&dec, insn, len, zi, zo));
}

/* x87/SSE state: what x86/insn.c's table says the mnemonic needs
 * (X86_MN_FPU: state management that names no register), and any such
 * register among the operands, hidden ones too (Zydis lists MXCSR, the
 * x87 control/status/tag words, XCR0). */
static bool single_needs_fpu(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	if (x86_mnemonic(zi->mnemonic)->attrs & X86_MN_FPU)
		return true;
	for (unsigned i = 0; i < zi->operand_count; i++) {
		if (zo[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegister r = zo[i].reg.value;
		switch (ZydisRegisterGetClass(r)) {
		case ZYDIS_REGCLASS_X87: case ZYDIS_REGCLASS_MMX: case ZYDIS_REGCLASS_XMM:
		case ZYDIS_REGCLASS_YMM: case ZYDIS_REGCLASS_ZMM:
			return true;
		default:
			break;
		}
		if (r == ZYDIS_REGISTER_MXCSR || r == ZYDIS_REGISTER_X87CONTROL ||
		    r == ZYDIS_REGISTER_X87STATUS || r == ZYDIS_REGISTER_X87TAG ||
		    r == ZYDIS_REGISTER_XCR0)
			return true;
	}
	return false;
}

bool emu_single_describe(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
			 char name[EMU_SINGLE_NAME_MAX], unsigned *needs)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	snprintf(name, EMU_SINGLE_NAME_MAX, "?");
	*needs = EMU_SINGLE_PART_ALL;
	if (!single_decode(sregs, insn, len, &zi, zo))
		return false;
	const char *m = ZydisMnemonicGetString(zi.mnemonic);
	size_t i = 0;
	for (; m && m[i] && i + 1 < EMU_SINGLE_NAME_MAX; i++)
		name[i] = (char)toupper((unsigned char)m[i]);
	name[i] = '\0';
	*needs = EMU_SINGLE_PART_REGS | EMU_SINGLE_PART_SREGS;
	if (single_needs_fpu(&zi, zo))
		*needs |= EMU_SINGLE_PART_FPU;
	if (x86_mnemonic(zi.mnemonic)->attrs & X86_MN_MSR)
		*needs |= EMU_SINGLE_PART_MSRS;
	return emu_handler_for(zi.mnemonic) != emu_unimplemented;
}

/* Categories whose instructions touch nothing but the state emu_single
 * moves (registers, flags, x87/SSE/MMX, segments through descriptors)
 * and memory: executed on emu's core, they end as they would on the CPU. */
static bool single_exact_category(ZydisInstructionCategory c)
{
	switch (c) {
	case ZYDIS_CATEGORY_BINARY: case ZYDIS_CATEGORY_LOGICAL: case ZYDIS_CATEGORY_DATAXFER:
	case ZYDIS_CATEGORY_SHIFT: case ZYDIS_CATEGORY_ROTATE: case ZYDIS_CATEGORY_BITBYTE:
	case ZYDIS_CATEGORY_SETCC: case ZYDIS_CATEGORY_CMOV: case ZYDIS_CATEGORY_COND_BR:
	case ZYDIS_CATEGORY_UNCOND_BR: case ZYDIS_CATEGORY_CALL: case ZYDIS_CATEGORY_RET:
	case ZYDIS_CATEGORY_PUSH: case ZYDIS_CATEGORY_POP: case ZYDIS_CATEGORY_STRINGOP:
	case ZYDIS_CATEGORY_FLAGOP: case ZYDIS_CATEGORY_NOP: case ZYDIS_CATEGORY_WIDENOP:
	case ZYDIS_CATEGORY_CONVERT: case ZYDIS_CATEGORY_DECIMAL: case ZYDIS_CATEGORY_MISC:
	case ZYDIS_CATEGORY_SEMAPHORE: case ZYDIS_CATEGORY_SSE: case ZYDIS_CATEGORY_MMX:
	case ZYDIS_CATEGORY_X87_ALU: case ZYDIS_CATEGORY_FCMOV: case ZYDIS_CATEGORY_LOGICAL_FP:
	case ZYDIS_CATEGORY_AES: case ZYDIS_CATEGORY_SHA: case ZYDIS_CATEGORY_PCLMULQDQ:
	case ZYDIS_CATEGORY_STTNI: case ZYDIS_CATEGORY_BMI1: case ZYDIS_CATEGORY_BMI2:
	case ZYDIS_CATEGORY_LZCNT: case ZYDIS_CATEGORY_ADOX_ADCX: case ZYDIS_CATEGORY_BLEND:
	case ZYDIS_CATEGORY_SEGOP:
		return true;
	default:
		return false;
	}
}

/* Inside those categories, what still reaches beyond the state and RAM
 * (CPUID answers from the host's table, MONITOR arms the host's
 * monitor) or leaves state emu_single does not move behind: the
 * interrupt shadow of STI, MOV SS and POP SS (KVM keeps it). IRET is
 * exact but for the NMI blocking it ends: the caller's to check. */
static bool single_exact_mnemonic(ZydisMnemonic m)
{
	switch (m) {
	case ZYDIS_MNEMONIC_CPUID: case ZYDIS_MNEMONIC_MONITOR: case ZYDIS_MNEMONIC_MWAIT:
	case ZYDIS_MNEMONIC_MONITORX: case ZYDIS_MNEMONIC_MWAITX: case ZYDIS_MNEMONIC_STI:
	case ZYDIS_MNEMONIC_HLT: case ZYDIS_MNEMONIC_ENCLS: case ZYDIS_MNEMONIC_ENCLU:
	case ZYDIS_MNEMONIC_RDPKRU: case ZYDIS_MNEMONIC_WRPKRU: case ZYDIS_MNEMONIC_XSETBV:
	case ZYDIS_MNEMONIC_RDTSC: case ZYDIS_MNEMONIC_RDTSCP: case ZYDIS_MNEMONIC_RDPMC:
		return false;
	default:
		return true;
	}
}

/* No operand is a control or debug register, and SS is not loaded. */
static bool single_exact_operands(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo)
{
	for (unsigned i = 0; i < zi->operand_count; i++) {
		if (zo[i].type != ZYDIS_OPERAND_TYPE_REGISTER)
			continue;
		ZydisRegisterClass c = ZydisRegisterGetClass(zo[i].reg.value);
		if (c == ZYDIS_REGCLASS_CONTROL || c == ZYDIS_REGCLASS_DEBUG)
			return false;
		if (zo[i].reg.value == ZYDIS_REGISTER_SS && (zo[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE))
			return false;
	}
	return true;
}

bool emu_single_exact(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
		      unsigned *needs)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	*needs = EMU_SINGLE_PART_ALL;
	if (!single_decode(sregs, insn, len, &zi, zo))
		return false;
	unsigned attrs = x86_mnemonic(zi.mnemonic)->attrs;
	if (!single_exact_category(zi.meta.category) || !single_exact_mnemonic(zi.mnemonic) ||
	    (zi.attributes & ZYDIS_ATTRIB_IS_PRIVILEGED) || (attrs & (X86_MN_MSR | X86_MN_XSAVE)) ||
	    !single_exact_operands(&zi, zo) || emu_handler_for(zi.mnemonic) == emu_unimplemented)
		return false;
	*needs = EMU_SINGLE_PART_REGS | EMU_SINGLE_PART_SREGS;
	if (single_needs_fpu(&zi, zo))
		*needs |= EMU_SINGLE_PART_FPU;
	return true;
}

bool emu_single_xcr0_ok(const uint8_t *insn, unsigned len, const struct x86_sregs *sregs,
			uint64_t xcr0)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	if (!single_decode(sregs, insn, len, &zi, zo))
		return true;
	/* emu's XSAVE image has the x87 and SSE components only */
	return !(x86_mnemonic(zi.mnemonic)->attrs & X86_MN_XSAVE) ||
	       !(xcr0 & ~EMU_SINGLE_XCR0_KNOWN);
}

/* --- life cycle ------------------------------------------------------------ */

struct emu_single *emu_single_create(struct vcpu *vcpu, struct err *e)
{
	struct emu_single *s = calloc(1, sizeof(*s));
	if (!s) {
		err_set(e, ENOMEM, "out of memory for vCPU %u's emu fallback", vcpu->id);
		return NULL;
	}
	emu_vm_init(&s->evm, vcpu->vm, 1);
	s->evm.cpus[0] = &s->cpu;
	emu_core_init(&s->cpu, &s->core, &s->evm, vcpu);
	return s;
}

void emu_single_destroy(struct emu_single *s)
{
	if (!s)
		return;
	emu_vm_fini(&s->evm);
	free(s);
}

/* --- state in and out --------------------------------------------------------- */

static void load_regs(struct emu_cpu *cpu, const struct x86_regs *r)
{
	uint64_t *g = cpu->gpr;
	g[EMU_RAX] = r->rax; g[EMU_RBX] = r->rbx; g[EMU_RCX] = r->rcx; g[EMU_RDX] = r->rdx;
	g[EMU_RSI] = r->rsi; g[EMU_RDI] = r->rdi; g[EMU_RBP] = r->rbp; g[EMU_RSP] = r->rsp;
	g[EMU_R8] = r->r8; g[EMU_R9] = r->r9; g[EMU_R10] = r->r10; g[EMU_R11] = r->r11;
	g[EMU_R12] = r->r12; g[EMU_R13] = r->r13; g[EMU_R14] = r->r14; g[EMU_R15] = r->r15;
	cpu->rip = r->rip;
	cpu->rflags = r->rflags | RFLAGS_FIXED1;
}

static void store_regs(const struct emu_cpu *cpu, struct x86_regs *r)
{
	const uint64_t *g = cpu->gpr;
	*r = (struct x86_regs){
		.rax = g[EMU_RAX], .rbx = g[EMU_RBX], .rcx = g[EMU_RCX], .rdx = g[EMU_RDX],
		.rsi = g[EMU_RSI], .rdi = g[EMU_RDI], .rbp = g[EMU_RBP], .rsp = g[EMU_RSP],
		.r8 = g[EMU_R8], .r9 = g[EMU_R9], .r10 = g[EMU_R10], .r11 = g[EMU_R11],
		.r12 = g[EMU_R12], .r13 = g[EMU_R13], .r14 = g[EMU_R14], .r15 = g[EMU_R15],
		.rip = cpu->rip, .rflags = cpu->rflags,
	};
}

/* Everything the core caches is rebuilt from st: the other engine may have
 * run any number of instructions (and changed page tables) since. The
 * replay log survives only for a resumed instruction. */
static void single_load(struct emu_single *s, const struct emu_single_state *st, bool resume,
			bool step)
{
	struct emu_cpu *cpu = &s->cpu;
	struct emu_core *c = &s->core;
	bool keep_tlb = st->continues && s->tlb_filled &&
			cpu->sregs.cr0 == st->arch.sregs.cr0 && cpu->sregs.cr3 == st->arch.sregs.cr3 &&
			cpu->sregs.cr4 == st->arch.sregs.cr4 && cpu->sregs.efer == st->arch.sregs.efer;
	load_regs(cpu, &st->arch.regs);
	cpu->sregs = st->arch.sregs;
	cpu->fpu = st->arch.fpu;
	cpu->msr_star = st->arch.star;
	cpu->msr_lstar = st->arch.lstar;
	cpu->msr_cstar = st->arch.cstar;
	cpu->msr_fmask = st->arch.fmask;
	cpu->msr_kernel_gs_base = st->arch.kernel_gs_base;
	c->xcr0 = st->arch.xcr0;
	cpu->wait_sipi = false;
	memset(&cpu->exit, 0, sizeof(cpu->exit));
	c->hlt_step = false;
	__atomic_store_n(&c->kick, false, __ATOMIC_RELAXED);
	if (!resume)
		emu_replay_reset(cpu);
	if (keep_tlb)
		emu_core_restart_keep_tlb(cpu);
	else
		emu_core_restart(cpu);
	s->tlb_filled = true;

	struct x86_debugregs dr = st->arch.dr;
	dr.dr7 &= ~DR7_ENABLE_BITS;             /* the other engine's hardware checks them */
	emu_dbg_set_regs(cpu, &dr);
	s->loaded_dr6 = cpu->dr.dr6;
	s->loaded_dr7 = cpu->dr.dr7;
	struct engine_debug dbg = { .single_step = step, .block_irq = step };
	emu_dbg_set_debug(cpu, &dbg);
}

static unsigned single_store(struct emu_single *s, struct emu_single_state *st)
{
	const struct emu_cpu *cpu = &s->cpu;
	unsigned changed = 0;
	struct x86_regs regs;
	store_regs(cpu, &regs);
	regs.rflags = emu_dbg_rflags_image(cpu);
	if (memcmp(&regs, &st->arch.regs, sizeof(regs))) {
		st->arch.regs = regs;
		changed |= EMU_SINGLE_PART_REGS;
	}
	if (memcmp(&cpu->sregs, &st->arch.sregs, sizeof(st->arch.sregs))) {
		st->arch.sregs = cpu->sregs;
		changed |= EMU_SINGLE_PART_SREGS;
	}
	if (memcmp(&cpu->fpu, &st->arch.fpu, sizeof(st->arch.fpu))) {
		st->arch.fpu = cpu->fpu;
		changed |= X86_STATE_FPU;
	}
	if (s->core.xcr0 != st->arch.xcr0) {
		st->arch.xcr0 = s->core.xcr0;
		changed |= X86_STATE_XCR0;
	}
	/* only what a #DB delivered here does: DR6 bits, DR7.GD cleared */
	if (cpu->dr.dr6 != s->loaded_dr6 || ((cpu->dr.dr7 ^ s->loaded_dr7) & DR7_GD)) {
		st->arch.dr.dr6 = cpu->dr.dr6;
		st->arch.dr.dr7 &= ~(~cpu->dr.dr7 & DR7_GD);
		changed |= EMU_SINGLE_PART_DR;
	}
	const uint64_t msrs[5] = { cpu->msr_star, cpu->msr_lstar, cpu->msr_cstar, cpu->msr_fmask,
				   cpu->msr_kernel_gs_base };
	const uint64_t old[5] = { st->arch.star, st->arch.lstar, st->arch.cstar, st->arch.fmask, st->arch.kernel_gs_base };
	if (memcmp(msrs, old, sizeof(msrs))) {
		st->arch.star = msrs[0];
		st->arch.lstar = msrs[1];
		st->arch.cstar = msrs[2];
		st->arch.fmask = msrs[3];
		st->arch.kernel_gs_base = msrs[4];
		changed |= EMU_SINGLE_PART_MSRS;
	}
	/* a part the caller did not load was never the guest's: drop it */
	return changed & st->loaded;
}

/* --- running ------------------------------------------------------------------- */

/* After the run: an exit of the core's own stepping means "boundary
 * reached"; a machine access or a fatal stop goes back to the caller. */
static enum emu_single_result single_outcome(struct emu_single *s, enum emu_stop stop,
					     struct vm_exit *exit)
{
	struct emu_cpu *cpu = &s->cpu;
	if (stop != EMU_STOP_EXIT || cpu->exit.reason == VM_EXIT_DB)
		return EMU_SINGLE_DONE;
	*exit = cpu->exit;
	if (exit->reason == VM_EXIT_IO || exit->reason == VM_EXIT_MMIO)
		return EMU_SINGLE_ACCESS;
	return EMU_SINGLE_STOP;
}

/* A trap the instruction queued (the guest's TF) is delivered before the
 * other engine runs again; delivering it may escalate to a triple fault. */
static enum emu_single_result single_finish(struct emu_single *s, struct emu_single_state *st,
					    struct vm_exit *exit, unsigned *changed)
{
	struct emu_cpu *cpu = &s->cpu;
	if (cpu->pending.exception) {
		enum emu_stop stop = emu_exec_run(cpu, 0);
		if (stop == EMU_STOP_EXIT && cpu->exit.reason != VM_EXIT_DB) {
			*exit = cpu->exit;
			return EMU_SINGLE_STOP;
		}
	}
	*changed = single_store(s, st);
	return EMU_SINGLE_DONE;
}

enum emu_single_result emu_single_step(struct emu_single *s, struct emu_single_state *st,
				       const uint8_t *insn, unsigned len, bool resume,
				       struct vm_exit *exit, unsigned *changed)
{
	*changed = 0;
	single_load(s, st, resume, true);
	emu_pin_insn(&s->cpu, insn, len);
	s->core.event_in_insn = false;
	enum emu_single_result r = single_outcome(s, emu_exec_run(&s->cpu, EMU_SINGLE_BUDGET),
						  exit);
	st->delivered = s->core.event_in_insn;
	if (r != EMU_SINGLE_DONE)
		return r;
	return single_finish(s, st, exit, changed);
}

enum emu_single_result emu_single_deliver(struct emu_single *s, struct emu_single_state *st,
					  uint8_t vector, bool has_error_code,
					  uint32_t error_code, struct vm_exit *exit,
					  unsigned *changed)
{
	*changed = 0;
	single_load(s, st, false, false);
	emu_pin_insn(&s->cpu, NULL, 0);
	emu_raise(&s->cpu, vector, has_error_code, error_code);
	return single_finish(s, st, exit, changed);
}

const struct emu_single_ops emu_single_ops = {
	.describe = emu_single_describe,
	.xcr0_ok = emu_single_xcr0_ok,
	.exact = emu_single_exact,
	.create = emu_single_create,
	.destroy = emu_single_destroy,
	.step = emu_single_step,
	.deliver = emu_single_deliver,
};
