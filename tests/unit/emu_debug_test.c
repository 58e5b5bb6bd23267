/* tests/unit/emu_debug_test.c — engine/emu/emu_debug.c without the CPU: a
 * hand-built struct emu_cpu, a fake emu_raise() that records what was
 * raised, and the call points driven as the core would drive them. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu.h"
#include "engine/emu/emu_debug.h"
#include "machine/vm.h"
#include "tests/unit/check.h"

/* ---- the fake core ---- */

static struct {
	int vector;            /* -1: nothing raised */
	bool has_error_code;
	uint32_t error_code;
} raised;

void emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error_code, uint32_t error_code)
{
	(void)cpu;
	raised.vector = vector;
	raised.has_error_code = has_error_code;
	raised.error_code = error_code;
}

/* The fake page tables: linear 0x10000 and 0x20000 both map the frame
 * 0x5000, 0x11000 maps 0x9000, 0x30000 is not mapped; the rest is
 * identity. */
bool emu_data_gpa(struct emu_cpu *cpu, uint64_t lin, bool write, uint64_t *gpa)
{
	(void)cpu;
	(void)write;
	uint64_t page = lin & ~0xfffull, off = lin & 0xfff;
	if (page == 0x30000)
		return false;
	*gpa = (page == 0x10000 || page == 0x20000 ? 0x5000 : page == 0x11000 ? 0x9000 : page) +
	       off;
	return true;
}

static struct vm fake_vm;
static struct vcpu fake_vcpu;

/* Long mode, CPL 0, RIP 0x1000, nothing armed. */
static void cpu_init(struct emu_cpu *cpu, enum vm_cpu_model model)
{
	memset(cpu, 0, sizeof(*cpu));
	memset(&fake_vm, 0, sizeof(fake_vm));
	fake_vm.cfg.cpu = model;
	fake_vcpu.vm = &fake_vm;
	cpu->vcpu = &fake_vcpu;
	cpu->sregs.cr0 = CR0_PE | CR0_PG;
	cpu->sregs.cr4 = CR4_PAE;
	cpu->sregs.efer = EFER_LME | EFER_LMA;
	cpu->sregs.cs.l = 1;
	cpu->rip = cpu->insn_start_rip = 0x1000;
	cpu->rflags = RFLAGS_FIXED1;
	emu_dbg_reset(cpu);
	raised.vector = -1;
}

static void clear_events(struct emu_cpu *cpu)
{
	raised.vector = -1;
	memset(&cpu->pending, 0, sizeof(cpu->pending));
	memset(&cpu->exit, 0, sizeof(cpu->exit));
}

/* One instruction the way the core runs it: the accesses happen between
 * before_insn and end_insn; RIP moves by len. Returns end_insn's answer. */
struct access { uint64_t addr; unsigned len; bool write; };

static bool run_insn(struct emu_cpu *cpu, unsigned len, const struct access *acc, unsigned n)
{
	uint64_t before = cpu->rflags;

	cpu->insn_start_rip = cpu->rip;
	cpu->interrupt_shadow = 0;
	if (emu_dbg_armed(cpu) && emu_dbg_before_insn(cpu, cpu->rip))
		return true;
	for (unsigned i = 0; i < n; i++)
		if (emu_dbg_armed(cpu))
			emu_dbg_mem(cpu, acc[i].addr, acc[i].len, acc[i].write);
	cpu->rip += len;
	return emu_dbg_armed(cpu) && emu_dbg_end_insn(cpu, before);
}

static bool mov_dr(struct emu_cpu *cpu, unsigned dr, bool to_dr, uint64_t value)
{
	cpu->gpr[EMU_RAX] = value;
	return emu_dbg_mov_dr(cpu, dr, EMU_RAX, to_dr);
}

static uint64_t read_dr(struct emu_cpu *cpu, unsigned dr)
{
	cpu->gpr[EMU_RAX] = 0xdeadbeef;
	CHECK_EQ_MSG(emu_dbg_mov_dr(cpu, dr, EMU_RAX, false), false, "MOV from DR faulted");
	return cpu->gpr[EMU_RAX];
}

/* ---- register semantics ---- */

static void test_reset_and_reserved_bits(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	CHECK_EQ_MSG(read_dr(&cpu, 6), DR6_INIT, "DR6 after reset");
	CHECK_EQ_MSG(read_dr(&cpu, 7), DR7_INIT, "DR7 after reset");
	CHECK_EQ_MSG(emu_dbg_armed(&cpu), false, "armed after reset");

	CHECK_EQ_MSG(mov_dr(&cpu, 6, true, 0xffffffff), false, "MOV DR6, all ones");
	/* bit 12 reads 0, everything else 1 */
	CHECK_EQ_MSG(read_dr(&cpu, 6), 0xffffefffull, "DR6 all ones written");
	CHECK_EQ_MSG(mov_dr(&cpu, 6, true, 0), false, "MOV DR6, 0");
	CHECK_EQ_MSG(read_dr(&cpu, 6), DR6_INIT, "DR6 zero written: fixed bits stay 1");

	CHECK_EQ_MSG(mov_dr(&cpu, 7, true, 0xffffffff & ~DR7_GD), false, "MOV DR7, all ones but GD");
	/* bits 11, 12, 14, 15 read 0; bit 10 reads 1 */
	CHECK_EQ_MSG(read_dr(&cpu, 7), 0xffff07ffull, "DR7 all ones written");
	CHECK_EQ_MSG(mov_dr(&cpu, 7, true, 0), false, "MOV DR7, 0");
	CHECK_EQ_MSG(read_dr(&cpu, 7), DR7_INIT, "DR7 zero written");

	/* 64-bit mode: a 1 in bits 63:32 of DR6/DR7 is #GP(0) */
	CHECK_EQ_MSG(mov_dr(&cpu, 7, true, 1ull << 32), true, "MOV DR7 high bits faults");
	CHECK_EQ_MSG(raised.vector, X86_GP, "DR7 high bits: #GP");
	CHECK_EQ_MSG(raised.has_error_code && raised.error_code == 0, true, "#GP(0)");
	raised.vector = -1;
	CHECK_EQ_MSG(mov_dr(&cpu, 6, true, 1ull << 40), true, "MOV DR6 high bits faults");
	CHECK_EQ_MSG(raised.vector, X86_GP, "DR6 high bits: #GP");
	/* DR0-3 take 64-bit addresses */
	CHECK_EQ_MSG(mov_dr(&cpu, 3, true, 0xffff800000001234ull), false, "MOV DR3, 64-bit");
	CHECK_EQ_MSG(read_dr(&cpu, 3), 0xffff800000001234ull, "DR3 64-bit");

	/* 32-bit mode: operands are 32 bits, the high half is never seen */
	cpu.sregs.efer = 0;
	cpu.sregs.cr0 = CR0_PE;
	cpu.sregs.cs.l = 0;
	cpu.sregs.cs.db = 1;
	CHECK_EQ_MSG(mov_dr(&cpu, 0, true, 0x1234567812345678ull), false, "MOV DR0 in 32-bit mode");
	CHECK_EQ_MSG(read_dr(&cpu, 0), 0x12345678, "DR0 in 32-bit mode");
	CHECK_EQ_MSG(mov_dr(&cpu, 7, true, 0xffffffff00000001ull), false, "MOV DR7 32-bit mode");
	CHECK_EQ_MSG(read_dr(&cpu, 7), DR7_INIT | DR7_L(0), "DR7 32-bit mode ignores the high half");
}

static void test_dr4_dr5_and_privilege(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	CHECK_EQ_MSG(mov_dr(&cpu, 5, true, DR7_L(1)), false, "MOV DR5 (alias) without CR4.DE");
	CHECK_EQ_MSG(cpu.dr.dr7, DR7_INIT | DR7_L(1), "DR5 writes DR7");
	CHECK_EQ_MSG(mov_dr(&cpu, 4, true, DR6_BS), false, "MOV DR4 (alias) without CR4.DE");
	CHECK_EQ_MSG(read_dr(&cpu, 6), DR6_INIT | DR6_BS, "DR4 writes DR6");
	CHECK_EQ_MSG(read_dr(&cpu, 4), DR6_INIT | DR6_BS, "DR4 reads DR6");
	CHECK_EQ_MSG(read_dr(&cpu, 5), DR7_INIT | DR7_L(1), "DR5 reads DR7");

	cpu.sregs.cr4 |= CR4_DE;
	for (unsigned dr = 4; dr <= 5; dr++) {
		raised.vector = -1;
		CHECK_EQ_MSG(mov_dr(&cpu, dr, false, 0), true, "MOV from DR4/5 with CR4.DE");
		CHECK_EQ_MSG(raised.vector, X86_UD, "DR4/5 with CR4.DE: #UD");
	}
	raised.vector = -1;
	CHECK_EQ_MSG(mov_dr(&cpu, 8, false, 0), true, "MOV from DR8");
	CHECK_EQ_MSG(raised.vector, X86_UD, "DR8: #UD");

	cpu.sregs.ss.dpl = 3;
	raised.vector = -1;
	CHECK_EQ_MSG(mov_dr(&cpu, 0, false, 0), true, "MOV DR at CPL 3");
	CHECK_EQ_MSG(raised.vector, X86_GP, "CPL 3: #GP");
}

static void test_general_detect(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.dr6 = DR6_INIT | DR6_B(1);
	CHECK_EQ_MSG(mov_dr(&cpu, 7, true, DR7_INIT | DR7_GD), false, "set GD");
	cpu.gpr[EMU_RBX] = 0x55;
	CHECK_EQ_MSG(emu_dbg_mov_dr(&cpu, 0, EMU_RBX, false), true, "MOV with GD faults");
	CHECK_EQ_MSG(raised.vector, X86_DB, "GD: #DB");
	CHECK_EQ_MSG(cpu.gpr[EMU_RBX], 0x55, "GD: the MOV did not happen");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BD, "GD: DR6.BD, B0-B3 replaced");
	CHECK_EQ_MSG(cpu.dr.dr7, DR7_INIT, "GD cleared for the handler");
	CHECK_EQ_MSG(read_dr(&cpu, 6), DR6_INIT | DR6_BD, "handler reads DR6 freely");

	/* #UD has priority over GD */
	cpu.dr.dr7 |= DR7_GD;
	cpu.sregs.cr4 |= CR4_DE;
	raised.vector = -1;
	CHECK_EQ_MSG(mov_dr(&cpu, 4, false, 0), true, "DR4 with DE and GD");
	CHECK_EQ_MSG(raised.vector, X86_UD, "DR4 with DE and GD: #UD first");

	/* intercepted: an exit, DR6/DR7 as delivery leaves them, no #DB */
	cpu_init(&cpu, VM_CPU_INTEL);
	struct engine_debug dbg = { .intercept_db = true };
	emu_dbg_set_debug(&cpu, &dbg);
	cpu.dr.dr7 |= DR7_GD;
	CHECK_EQ_MSG(mov_dr(&cpu, 1, true, 0x42), true, "GD intercepted");
	CHECK_EQ_MSG(raised.vector, -1, "GD intercepted: nothing raised");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_DB, "GD intercepted: VM_EXIT_DB");
	CHECK_EQ_MSG(cpu.exit.db.guest_dr6, DR6_BD, "GD intercepted: guest_dr6");
	CHECK_EQ_MSG(cpu.exit.db.dr6, 0, "GD intercepted: no debugger bits");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x1000, "GD intercepted: pc of the MOV");
	CHECK_EQ_MSG(cpu.dr.db[1], 0, "GD intercepted: DR1 unchanged");
	CHECK_EQ_MSG(cpu.dr.dr7 & DR7_GD, 0, "GD intercepted: GD cleared");
}

/* ---- breakpoints ---- */

static void test_instruction_breakpoint_and_rf(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.db[2] = 0x1000;
	cpu.dr.dr7 |= DR7_G(2);           /* RW=00 LEN=00 */
	emu_dbg_set_regs(&cpu, &cpu.dr);
	CHECK_EQ_MSG(emu_dbg_armed(&cpu), true, "armed with an enabled slot");
	CHECK_EQ_MSG(run_insn(&cpu, 3, NULL, 0), true, "instruction breakpoint stops");
	CHECK_EQ_MSG(raised.vector, X86_DB, "instruction breakpoint: #DB fault");
	CHECK_EQ_MSG(cpu.rip, 0x1000, "fault: instruction not executed");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_B(2), "DR6.B2");

	/* the handler IRETs with RF=1: the instruction runs once */
	clear_events(&cpu);
	cpu.rflags |= RFLAGS_RF;
	CHECK_EQ_MSG(run_insn(&cpu, 3, NULL, 0), false, "RF suppresses the breakpoint");
	CHECK_EQ_MSG(raised.vector, -1, "RF: nothing raised");
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_RF, 0, "RF cleared after the instruction");
	cpu.rip = 0x1000;
	CHECK_EQ_MSG(run_insn(&cpu, 3, NULL, 0), true, "breakpoint fires again without RF");

	/* an IRET that loads RF=1 keeps it for the next instruction */
	clear_events(&cpu);
	cpu.rip = 0x2000;
	uint64_t before = cpu.rflags;
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, cpu.rip), false, "IRET at 0x2000");
	cpu.rflags |= RFLAGS_RF;
	cpu.rip = 0x1000;
	emu_dbg_end_insn(&cpu, before);
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_RF, RFLAGS_RF, "IRET's RF survives its own end");

	/* disabled slot, or a different address: nothing */
	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.db[0] = 0x1000;
	cpu.dr.db[1] = 0x1001;
	cpu.dr.dr7 |= DR7_L(1);
	emu_dbg_set_regs(&cpu, &cpu.dr);
	CHECK_EQ_MSG(run_insn(&cpu, 3, NULL, 0), false, "disabled / other address");
}

struct data_case {
	const char *name;
	unsigned rw, len;          /* DR7 encodings */
	uint64_t bp;
	struct access acc;
	bool match;
};

static const struct data_case data_cases[] = {
	{ "LEN1 write hit", DR7_RW_WRITE, DR7_LEN_1, 0x5000, { 0x5000, 1, true }, true },
	{ "LEN1 read of a write bp", DR7_RW_WRITE, DR7_LEN_1, 0x5000, { 0x5000, 1, false }, false },
	{ "LEN1 read of an access bp", DR7_RW_ACCESS, DR7_LEN_1, 0x5000, { 0x5000, 4, false }, true },
	{ "LEN1 next byte", DR7_RW_ACCESS, DR7_LEN_1, 0x5000, { 0x5001, 1, true }, false },
	{ "LEN1 dword straddles it", DR7_RW_ACCESS, DR7_LEN_1, 0x5003, { 0x5001, 4, true }, true },
	{ "LEN2 masked address", DR7_RW_WRITE, DR7_LEN_2, 0x5001, { 0x5000, 1, true }, true },
	{ "LEN2 after range", DR7_RW_WRITE, DR7_LEN_2, 0x5001, { 0x5002, 2, true }, false },
	{ "LEN4 masked address", DR7_RW_ACCESS, DR7_LEN_4, 0x5006, { 0x5004, 1, false }, true },
	{ "LEN4 straddle from below", DR7_RW_ACCESS, DR7_LEN_4, 0x5004, { 0x5002, 4, false }, true },
	{ "LEN4 just below", DR7_RW_ACCESS, DR7_LEN_4, 0x5004, { 0x5000, 4, false }, false },
	{ "LEN8 last byte", DR7_RW_WRITE, DR7_LEN_8, 0x5008, { 0x500f, 1, true }, true },
	{ "LEN8 next qword", DR7_RW_WRITE, DR7_LEN_8, 0x5008, { 0x5010, 8, true }, false },
	{ "LEN8 masked address", DR7_RW_WRITE, DR7_LEN_8, 0x500d, { 0x5008, 2, true }, true },
	{ "exec slot ignores data", DR7_RW_EXEC, DR7_LEN_1, 0x5000, { 0x5000, 1, true }, false },
	{ "io slot ignores data", DR7_RW_IO, DR7_LEN_1, 0x5000, { 0x5000, 1, true }, false },
};

static void test_data_breakpoints(void)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
		const struct data_case *c = &data_cases[i];
		struct emu_cpu cpu;

		cpu_init(&cpu, VM_CPU_INTEL);
		cpu.sregs.cr4 |= CR4_DE;
		cpu.dr.db[3] = c->bp;
		cpu.dr.dr7 |= DR7_L(3) | DR7_RW(3, c->rw) | DR7_LEN(3, c->len);
		emu_dbg_set_regs(&cpu, &cpu.dr);
		bool stop = run_insn(&cpu, 2, &c->acc, 1);
		CHECK_EQ_MSG(stop, c->match, c->name);
		CHECK_EQ_MSG(cpu.pending.exception && cpu.pending.vector == X86_DB, c->match, c->name);
		CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | (c->match ? DR6_B(3) : 0), c->name);
		CHECK_EQ_MSG(cpu.rip, 0x1002, c->name);      /* a trap: after the instruction */
	}
}

static void test_several_slots_and_sticky_dr6(void)
{
	struct emu_cpu cpu;
	struct access a = { 0x6004, 4, true };

	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.db[0] = 0x6004;
	cpu.dr.db[1] = 0x6004;            /* matches but disabled: not reported */
	cpu.dr.db[2] = 0x6000;
	cpu.dr.db[3] = 0x7000;
	cpu.dr.dr7 |= DR7_L(0) | DR7_RW(0, DR7_RW_WRITE) | DR7_LEN(0, DR7_LEN_4) |
		      DR7_RW(1, DR7_RW_WRITE) |
		      DR7_G(2) | DR7_RW(2, DR7_RW_ACCESS) | DR7_LEN(2, DR7_LEN_8) |
		      DR7_G(3) | DR7_RW(3, DR7_RW_ACCESS);
	cpu.dr.dr6 = DR6_INIT | DR6_BS | DR6_B(3);   /* left over from before */
	emu_dbg_set_regs(&cpu, &cpu.dr);
	CHECK_EQ_MSG(run_insn(&cpu, 2, &a, 1), true, "two slots match");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BS | DR6_B(0) | DR6_B(2),
		 "B0|B2 replace B3, BS sticky, disabled B1 not set");

	/* two accesses in one instruction (MOVS): both reported once */
	clear_events(&cpu);
	cpu.dr.dr6 = DR6_INIT;
	struct access two[2] = { { 0x7000, 1, false }, { 0x6004, 4, true } };
	CHECK_EQ_MSG(run_insn(&cpu, 2, two, 2), true, "two accesses");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_B(0) | DR6_B(2) | DR6_B(3), "both accesses reported");

	/* a faulting instruction's access is forgotten at the next boundary */
	clear_events(&cpu);
	cpu.dr.dr6 = DR6_INIT;
	emu_dbg_before_insn(&cpu, cpu.rip);
	emu_dbg_mem(&cpu, 0x7000, 1, true);
	/* (#PF: no end_insn) */
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), false, "faulted access not reported later");
}

static void test_io_breakpoints(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.db[1] = 0x80;
	cpu.dr.dr7 |= DR7_L(1) | DR7_RW(1, DR7_RW_IO) | DR7_LEN(1, DR7_LEN_2);
	emu_dbg_set_regs(&cpu, &cpu.dr);
	uint64_t before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	emu_dbg_io(&cpu, 0x80, 1);
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), false, "RW=10 without CR4.DE never matches");

	cpu.sregs.cr4 |= CR4_DE;
	static const struct { uint16_t port; unsigned len; bool match; } io[] = {
		{ 0x80, 1, true }, { 0x81, 1, true }, { 0x82, 1, false },
		{ 0x7f, 2, true }, { 0x7e, 2, false }, { 0x7c, 4, false }, { 0x80, 4, true },
	};
	for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++) {
		clear_events(&cpu);
		cpu.dr.dr6 = DR6_INIT;
		before = cpu.rflags;
		emu_dbg_before_insn(&cpu, cpu.rip);
		emu_dbg_io(&cpu, io[i].port, io[i].len);
		CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), io[i].match, "I/O breakpoint port range");
		CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | (io[i].match ? DR6_B(1) : 0), "I/O breakpoint DR6");
	}
}

/* ---- single step ---- */

static void test_tf_timing(void)
{
	struct emu_cpu cpu;

	cpu_init(&cpu, VM_CPU_INTEL);
	/* POPF that sets TF: no trap after it ... */
	uint64_t before = cpu.rflags;
	cpu.rflags |= RFLAGS_TF;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), false, "no trap after the POPF that set TF");
	/* ... but after the next one */
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "trap after the next instruction");
	CHECK_EQ_MSG(cpu.pending.vector, X86_DB, "TF: #DB pending");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BS, "TF: DR6.BS");

	/* POPF that clears TF still traps (it began with TF=1) */
	clear_events(&cpu);
	before = cpu.rflags;
	cpu.rflags &= ~RFLAGS_TF;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "POPF clearing TF traps");

	/* MOV SS: the trap waits for the next instruction */
	clear_events(&cpu);
	cpu.dr.dr6 = DR6_INIT;
	cpu.rflags |= RFLAGS_TF;
	before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	cpu.interrupt_shadow = EMU_SHADOW_MOVSS;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), false, "no trap after MOV SS");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT, "MOV SS: DR6 untouched yet");
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "trap after the instruction after MOV SS");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BS, "MOV SS delayed BS");

	/* a data breakpoint in the MOV SS (mov ss, [mem]) is delayed too */
	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.db[0] = 0x8000;
	cpu.dr.dr7 |= DR7_L(0) | DR7_RW(0, DR7_RW_ACCESS) | DR7_LEN(0, DR7_LEN_2);
	emu_dbg_set_regs(&cpu, &cpu.dr);
	before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	emu_dbg_mem(&cpu, 0x8000, 2, false);
	cpu.interrupt_shadow = EMU_SHADOW_MOVSS;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), false, "data bp in MOV SS held");
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "data bp after the next instruction");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_B(0), "delayed B0");

	/* STI does not delay #DB */
	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.rflags |= RFLAGS_TF;
	before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	cpu.interrupt_shadow = EMU_SHADOW_STI;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "STI does not delay the trap");

	/* ICEBP: #DB, DR6 unchanged, GD cleared */
	cpu_init(&cpu, VM_CPU_INTEL);
	cpu.dr.dr6 = DR6_INIT | DR6_B(1);
	cpu.dr.dr7 |= DR7_GD;
	CHECK_EQ_MSG(emu_dbg_icebp(&cpu), true, "ICEBP");
	CHECK_EQ_MSG(cpu.pending.exception && cpu.pending.vector == X86_DB, true, "ICEBP queues #DB");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_B(1), "ICEBP leaves DR6");
	CHECK_EQ_MSG(cpu.dr.dr7, DR7_INIT, "ICEBP clears GD");
}

/* ---- the debugger's intercepts ---- */

static void test_debugger_step_intel(void)
{
	struct emu_cpu cpu;
	struct engine_debug dbg = { .single_step = true, .block_irq = true };

	cpu_init(&cpu, VM_CPU_INTEL);
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(emu_dbg_irq_blocked(&cpu), true, "block_irq while stepping");
	CHECK_EQ_MSG(run_insn(&cpu, 2, NULL, 0), true, "step exits");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_DB, "step: VM_EXIT_DB");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_BS, "step: BS");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x1002, "step: pc after the instruction");
	CHECK_EQ_MSG(cpu.pending.exception, false, "step: nothing for the guest");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT, "step: guest DR6 untouched");
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_TF, 0, "step: guest TF untouched");

	/* the stepped instruction faults: stop at the handler's first insn */
	clear_events(&cpu);
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, cpu.rip), false, "faulting instruction starts");
	cpu.rip = 0x9000;                  /* #PF delivered, no end_insn */
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, cpu.rip), true, "stop before the handler runs");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x9000, "stop at the handler");
	clear_events(&cpu);
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, cpu.rip), false, "then the handler runs");

	/* the guest's own TF still reaches the guest, with the step exit */
	clear_events(&cpu);
	cpu.rflags |= RFLAGS_TF;
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "guest TF while stepping");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_BS, "debugger BS");
	CHECK_EQ_MSG(cpu.pending.exception && cpu.pending.vector == X86_DB, true, "guest #DB queued");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BS, "guest DR6.BS");

	/* REP: a stop between iterations sets RF so nothing re-fires */
	cpu_init(&cpu, VM_CPU_INTEL);
	emu_dbg_set_debug(&cpu, &dbg);
	uint64_t before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "REP iteration step");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x1000, "REP: still at the instruction");
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_RF, RFLAGS_RF, "REP: RF set for the resume");

	dbg.single_step = false;
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(emu_dbg_irq_blocked(&cpu), false, "no block_irq without a step");
}

static void test_debugger_hw(void)
{
	struct emu_cpu cpu;
	struct engine_debug dbg = {
		.use_hw_bp = true,
		.db = { 0x1000, 0, 0xa000 },
		.dr7 = DR7_FIXED1 | DR7_G(0) | DR7_G(2) | DR7_RW(2, DR7_RW_WRITE) |
		       DR7_LEN(2, DR7_LEN_4),
	};

	cpu_init(&cpu, VM_CPU_INTEL);
	/* the guest has a breakpoint on the same instruction, in its own DR1 */
	cpu.dr.db[1] = 0x1000;
	cpu.dr.dr7 |= DR7_L(1);
	emu_dbg_set_regs(&cpu, &cpu.dr);
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(run_insn(&cpu, 2, NULL, 0), true, "debugger exec bp");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_DB, "debugger exec bp: exit");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_B(0), "debugger exec bp: its B0");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x1000, "debugger exec bp: pc");
	CHECK_EQ_MSG(raised.vector, -1, "guest bp waits");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT, "guest DR6 untouched by the debugger's hit");
	/* resume: the guest's own breakpoint comes next, then the insn runs */
	clear_events(&cpu);
	CHECK_EQ_MSG(run_insn(&cpu, 2, NULL, 0), true, "guest bp after the debugger's");
	CHECK_EQ_MSG(raised.vector, X86_DB, "guest #DB");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_B(1), "guest DR6.B1");
	clear_events(&cpu);
	cpu.rflags |= RFLAGS_RF;
	CHECK_EQ_MSG(run_insn(&cpu, 2, NULL, 0), false, "runs once");
	cpu.rip = 0x1000;
	CHECK_EQ_MSG(run_insn(&cpu, 2, NULL, 0), true, "debugger bp again next time");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_B(0), "again B0");

	/* debugger watchpoint: exit after the instruction, guest unaware */
	cpu_init(&cpu, VM_CPU_INTEL);
	emu_dbg_set_debug(&cpu, &dbg);
	cpu.rip = 0x2000;
	struct access w = { 0xa002, 2, true };
	CHECK_EQ_MSG(run_insn(&cpu, 3, &w, 1), true, "debugger watchpoint");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_B(2), "watchpoint B2");
	CHECK_EQ_MSG(cpu.exit.db.pc, 0x2003, "watchpoint: after the instruction");
	CHECK_EQ_MSG(cpu.pending.exception, false, "watchpoint: guest not told");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT, "watchpoint: guest DR6 untouched");
}

static void test_intercepts(void)
{
	struct emu_cpu cpu;
	struct engine_debug dbg = { .intercept_mov_dr = true, .intercept_bpt = true,
				    .intercept_db = true };

	cpu_init(&cpu, VM_CPU_INTEL);
	emu_dbg_set_debug(&cpu, &dbg);
	/* MOV DR7, RCX: emulated, then an exit at the end of the instruction */
	uint64_t before = cpu.rflags;
	cpu.gpr[EMU_RCX] = DR7_INIT | DR7_L(0);
	CHECK_EQ_MSG(emu_dbg_armed(&cpu), false, "intercepts alone do not arm");
	CHECK_EQ_MSG(emu_dbg_mov_dr(&cpu, 7, EMU_RCX, true), false, "MOV DR7 intercepted: done");
	CHECK_EQ_MSG(cpu.dr.dr7, DR7_INIT | DR7_L(0), "MOV DR7 emulated");
	cpu.rip += 3;
	CHECK_EQ_MSG(emu_dbg_armed(&cpu), true, "armed after the MOV");
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "MOV DR exit");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_MOV_DR, "VM_EXIT_MOV_DR");
	CHECK_EQ_MSG(cpu.exit.mov_dr.dr, 7, "mov_dr.dr");
	CHECK_EQ_MSG(cpu.exit.mov_dr.gpr, 1, "mov_dr.gpr is rcx");
	CHECK_EQ_MSG(cpu.exit.mov_dr.is_write, true, "mov_dr.is_write");

	/* MOV from DR6 while the guest single-steps: MOV_DR first, then the
	 * intercepted #DB at the next boundary */
	clear_events(&cpu);
	cpu.rflags |= RFLAGS_TF;
	before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	CHECK_EQ_MSG(emu_dbg_mov_dr(&cpu, 6, EMU_RDX, false), false, "MOV from DR6");
	CHECK_EQ_MSG(cpu.gpr[EMU_RDX], DR6_INIT, "read DR6");
	cpu.rip += 3;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "exit");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_MOV_DR, "MOV_DR before DB");
	CHECK_EQ_MSG(cpu.exit.mov_dr.is_write, false, "read");
	clear_events(&cpu);
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, cpu.rip), true, "due exit");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_DB, "then VM_EXIT_DB");
	CHECK_EQ_MSG(cpu.exit.db.guest_dr6, DR6_BS, "guest's BS intercepted");
	CHECK_EQ_MSG(cpu.pending.exception, false, "not delivered");
	CHECK_EQ_MSG(cpu.dr.dr6, DR6_INIT | DR6_BS, "guest DR6 as delivery leaves it");

	/* INT3 */
	clear_events(&cpu);
	CHECK_EQ_MSG(emu_dbg_int3(&cpu, 0x1234), true, "INT3 intercepted");
	CHECK_EQ_MSG(cpu.exit.reason, VM_EXIT_BPT, "VM_EXIT_BPT");
	CHECK_EQ_MSG(cpu.exit.bpt.pc, 0x1234, "bpt.pc");
	dbg.intercept_bpt = false;
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(emu_dbg_int3(&cpu, 0x1234), false, "INT3 for the guest");
}

static void test_debugger_step_amd(void)
{
	struct emu_cpu cpu;
	struct engine_debug dbg = { .single_step = true };

	cpu_init(&cpu, VM_CPU_AMD);
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_TF, RFLAGS_TF, "amd: TF taken");
	CHECK_EQ_MSG(emu_dbg_rflags_image(&cpu) & RFLAGS_TF, 0, "amd: PUSHF image hides it");
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "amd: step exit");
	CHECK_EQ_MSG(cpu.exit.db.dr6, DR6_BS, "amd: BS");
	CHECK_EQ_MSG(cpu.pending.exception, false, "amd: guest gets nothing");

	/* POPF sets the guest's TF: its trap comes after the next insn */
	clear_events(&cpu);
	uint64_t before = cpu.rflags;
	emu_dbg_before_insn(&cpu, cpu.rip);
	cpu.rflags |= RFLAGS_TF;
	emu_dbg_rflags_loaded(&cpu);
	cpu.rip++;
	CHECK_EQ_MSG(emu_dbg_end_insn(&cpu, before), true, "amd: POPF step");
	CHECK_EQ_MSG(cpu.pending.exception, false, "amd: no guest trap after the POPF");
	CHECK_EQ_MSG(emu_dbg_rflags_image(&cpu) & RFLAGS_TF, RFLAGS_TF, "amd: guest TF now 1");
	clear_events(&cpu);
	CHECK_EQ_MSG(run_insn(&cpu, 1, NULL, 0), true, "amd: next step");
	CHECK_EQ_MSG(cpu.pending.exception && cpu.pending.vector == X86_DB, true,
		 "amd: guest trap after the next instruction");

	/* an event delivery clears TF: taken again, the handler's TF is 0 */
	clear_events(&cpu);
	cpu.rflags &= ~RFLAGS_TF;
	CHECK_EQ_MSG(emu_dbg_before_insn(&cpu, 0x9000), false, "amd: handler starts");
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_TF, RFLAGS_TF, "amd: TF taken again");
	CHECK_EQ_MSG(emu_dbg_rflags_image(&cpu) & RFLAGS_TF, 0, "amd: handler's own TF 0");

	/* stop stepping: the guest's TF comes back */
	emu_dbg_rflags_loaded(&cpu);        /* (as if IRET restored TF=1) */
	dbg.single_step = false;
	emu_dbg_set_debug(&cpu, &dbg);
	CHECK_EQ_MSG(cpu.rflags & RFLAGS_TF, RFLAGS_TF, "amd: guest TF=1 restored");
	CHECK_EQ_MSG(emu_dbg_rflags_image(&cpu), cpu.rflags, "amd: image is RFLAGS again");
}

/* Physical watched ranges match the access's physical bytes through
 * any alias, per page piece, and mark every page mapping the frame. */
static void test_phys_watch(void)
{
	struct emu_cpu cpu;
	cpu_init(&cpu, VM_CPU_INTEL);
	struct engine_watch w[2] = {
		{ .gpa = 0x5ff8, .len = 8, .write = true, .phys = true, .id = 3 },
		{ .linear = 0x5ff8, .len = 8, .read = true, .write = true, .id = 4 },
	};
	emu_dbg_set_watch(&cpu, w, 1);
	const struct { struct access a; uint32_t hit; const char *what; } cases[] = {
		{ { 0x10ff8, 8, true }, 4, "write through alias A" },
		{ { 0x20ffc, 2, true }, 4, "write through alias B" },
		{ { 0x20ff8, 8, false }, 0, "a read: write watch only" },
		{ { 0x5ff8, 8, true }, 4, "identity: the frame itself" },
		{ { 0x10ff0, 8, true }, 0, "next to it" },
		{ { 0x0fffc, 8, true }, 0, "crossing into 0x10000: first bytes, not the range" },
		{ { 0x20ffc, 8, true }, 4, "crossing out of alias B: its first piece" },
		{ { 0x2fffc, 8, true }, 0, "crossing into a page that does not translate" },
		{ { 0x4ffc, 8, true }, 0, "identity 0x4ffc..0x5003: not the range" },
	};
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		clear_events(&cpu);
		bool stop = run_insn(&cpu, 3, &cases[i].a, 1);
		CHECK_EQ_MSG(stop && cpu.exit.reason == VM_EXIT_DB ? cpu.exit.db.watch : 0,
			     cases[i].hit, cases[i].what);
	}
	CHECK_EQ_MSG(emu_dbg_page_watch(&cpu, 0x10000, 0x5000), EMU_DBG_WATCH_W,
		     "page mapping the frame marked");
	CHECK_EQ_MSG(emu_dbg_page_watch(&cpu, 0x5000, 0x9000), 0,
		     "linear page 0x5000 mapping another frame not marked");
	/* a linear watch at the same number is apart: it matches 0x5ff8 linear only */
	emu_dbg_set_watch(&cpu, &w[1], 1);
	clear_events(&cpu);
	struct access alias = { 0x10ff8, 8, true };
	CHECK_EQ_MSG(run_insn(&cpu, 3, &alias, 1), false, "linear watch: the alias is not it");
	CHECK_EQ_MSG(emu_dbg_page_watch(&cpu, 0x10000, 0x5000), 0, "linear watch: no mark by frame");
	emu_dbg_set_watch(&cpu, NULL, 0);
}

int main(void)
{
	test_reset_and_reserved_bits();
	test_dr4_dr5_and_privilege();
	test_general_detect();
	test_instruction_breakpoint_and_rf();
	test_data_breakpoints();
	test_several_slots_and_sticky_dr6();
	test_io_breakpoints();
	test_tf_timing();
	test_debugger_step_intel();
	test_debugger_hw();
	test_intercepts();
	test_debugger_step_amd();
	test_phys_watch();
	return check_summary("emu_debug_test");
}
