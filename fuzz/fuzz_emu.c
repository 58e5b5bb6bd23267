/* fuzz/fuzz_emu.c — emu's core on random instruction bytes over random
 * system state: real mode, 32-bit protected mode and long mode, ring 0 and
 * ring 3, with a GDT, IDT, TSS and page tables that start sane and are
 * then corrupted byte by byte as the input says, random registers, control
 * register bits and debug registers. The core runs as emu_engine.c runs
 * it (emu_exec_run with the platform's timers), port I/O and MMIO go to the
 * real machine's devices as machine/vm.c sends them, and the run ends
 * after 16 to 1024 instructions (the input says) or at a defined exit (shutdown,
 * emulation failure, a halt nothing will end, the machine stopping).
 * Anything else — a crash, a sanitizer report, a hang — is a finding.
 *
 * A debugger may be attached as debug/ attaches one (engine_debug: single
 * step, interrupts blocked, INT3 and #DB and MOV DR intercepts, its own
 * DR0-3): its exits resume the run, as a debugger stepping on would.
 *
 * An input costs what it runs: RAM comes back from an image of the sane
 * tables (fuzz_ram_restore), and an exception storm (a handler that faults
 * again and again, each delivery pushing a frame) ends soon, as on hardware
 * its stack runs into something: a page left unmapped below the long-mode
 * stacks (#PF, #DF, shutdown), the IDT just below the 32-bit ring-0 stack,
 * the handlers just below the real-mode stack.
 *
 * Input: mode byte, feature byte, budget byte, arithmetic-flags byte,
 * debugger byte, 16 GPRs, RFLAGS, DR0-3/DR7, a count of
 * corruptions (each: offset into the tables, XOR byte), 64 bytes of
 * interrupt-handler code, then the code at RIP (up to 4 KiB). */
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_platform.h"
#include "fuzz/fuzz_machine.h"
#include "x86/desc.h"

#define RAM_MIB 2

/* Guest-physical layout (all identity mapped) */
#define IVT        0x0000ull      /* real mode */
#define GDT        0x1000ull
#define IDT        0x2000ull
#define TSS        0x3000ull
#define HANDLERS   0x6000ull      /* 64 bytes, at every vector's entry */
#define PML4       0x10000ull     /* then PDPT, PD, PT */
#define PD32       0x14000ull     /* 32-bit paging: one page table */
#define PD32_PT    0x15000ull
#define TABLES_END 0x16000ull
#define CODE       0x20000ull
#define STACK32_0  0x3000ull       /* 32-bit ring 0: just above the IDT */
#define REAL_SS    (HANDLERS >> 4) /* real mode: just above the handlers */
#define REAL_SP    0x100ull
#define STACK0     0x30000ull      /* long mode: one page, unmapped below */
#define STACK3     0x38000ull      /* ring 3: one page, unmapped below */
#define STACK_GUARD(top) ((top) - 2 * X86_PAGE_SIZE)

/* Selectors */
enum { SEL_CODE64 = 0x08, SEL_DATA = 0x10, SEL_CODE32 = 0x18, SEL_UDATA = 0x28,
       SEL_UCODE64 = 0x30, SEL_UCODE32 = 0x38, SEL_TSS = 0x40 };

enum fuzz_mode { M_REAL, M_PROT0, M_PROT3, M_PAGED32, M_LONG0, M_LONG3, M_COMPAT3, M_NR };

static struct vm *vm;
static int ram_image[2];   /* RAM with the sane tables: [1] for long mode */

static void build_tables(uint8_t *ram, bool long_mode);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	vm = fuzz_machine(1, RAM_MIB, NULL);
	for (int long_mode = 0; long_mode < 2; long_mode++) {
		/* HLT wherever execution strays, so a run that left its code ends */
		memset(vm->ram, 0, TABLES_END);
		memset(vm->ram + TABLES_END, 0xf4, vm->ram_size - TABLES_END);
		build_tables(vm->ram, long_mode);
		ram_image[long_mode] = fuzz_ram_image(vm);
	}
	return 0;
}

static uint64_t seg_desc(uint32_t base, uint32_t limit, uint8_t access, uint8_t flags)
{
	return (limit & 0xffffull) | (uint64_t)(base & 0xffffff) << 16 | (uint64_t)access << 40 |
	       (uint64_t)((limit >> 16) & 0xf) << 48 | (uint64_t)(flags & 0xf) << 52 |
	       (uint64_t)(base >> 24) << 56;
}

static struct x86_segment seg(uint16_t sel, uint8_t type, unsigned dpl, bool l, bool db)
{
	return (struct x86_segment){ .base = 0, .limit = 0xffffffff, .selector = sel,
				     .type = type, .present = 1, .dpl = (uint8_t)dpl, .s = 1,
				     .l = l, .db = db, .g = 1 };
}

static void put64(uint8_t *ram, uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, sizeof(v));
}

/* The tables every protected mode uses, sane before corruption. */
static void build_tables(uint8_t *ram, bool long_mode)
{
	uint64_t gdt[10] = {
		0,
		seg_desc(0, 0xfffff, 0x9b, 0xa),          /* SEL_CODE64 */
		seg_desc(0, 0xfffff, 0x93, 0xc),          /* SEL_DATA */
		seg_desc(0, 0xfffff, 0x9b, 0xc),          /* SEL_CODE32 */
		0,
		seg_desc(0, 0xfffff, 0xf3, 0xc),          /* SEL_UDATA */
		seg_desc(0, 0xfffff, 0xfb, 0xa),          /* SEL_UCODE64 */
		seg_desc(0, 0xfffff, 0xfb, 0xc),          /* SEL_UCODE32 */
		seg_desc(TSS, TSS_MIN_LIMIT, 0x80 | SYS_TYPE_TSS_BUSY, 0),   /* SEL_TSS */
		0,                                        /* its high half in long mode */
	};
	memcpy(ram + GDT, gdt, sizeof(gdt));
	for (unsigned v = 0; v < 256; v++) {
		uint64_t h = HANDLERS, lo;
		if (long_mode) {
			lo = (h & 0xffff) | (uint64_t)SEL_CODE64 << 16 |
			     (uint64_t)(0x80 | X86_GATE_INT) << 40 | (h >> 16) << 48;
			put64(ram, IDT + v * 16, lo);
			put64(ram, IDT + v * 16 + 8, h >> 32);
		} else {
			lo = (h & 0xffff) | (uint64_t)SEL_CODE32 << 16 |
			     (uint64_t)(0x80 | X86_GATE_INT) << 40 | (h >> 16) << 48;
			put64(ram, IDT + v * 8, lo);
		}
		/* real mode: every vector at HANDLERS */
		uint32_t ivt = (uint32_t)(HANDLERS >> 4) << 16;
		memcpy(ram + IVT + v * 4, &ivt, 4);
	}
	/* TSS: 32-bit ESP0/SS0, 64-bit RSP0 and IST1 */
	uint32_t esp0 = (uint32_t)STACK32_0, ss0 = SEL_DATA;
	memcpy(ram + TSS + 4, &esp0, 4);
	memcpy(ram + TSS + 8, &ss0, 4);
	if (long_mode) {
		put64(ram, TSS + 4, STACK0);
		put64(ram, TSS + 0x24, STACK0 - 0x800);
	}
	/* 4-level tables mapping 0-2 MiB (all RAM) with 4 KiB user pages; a 32-bit
	 * page directory with the same page table */
	put64(ram, PML4, (PML4 + 0x1000) | PTE_P | PTE_W | PTE_U);
	put64(ram, PML4 + 0x1000, (PML4 + 0x2000) | PTE_P | PTE_W | PTE_U);
	put64(ram, PML4 + 0x2000, (PML4 + 0x3000) | PTE_P | PTE_W | PTE_U);
	for (uint64_t i = 0; i < 512; i++)
		put64(ram, PML4 + 0x3000 + i * 8, (i << 12) | PTE_P | PTE_W | PTE_U);
	uint32_t pde = (uint32_t)PD32_PT | PTE_P | PTE_W | PTE_U;
	memcpy(ram + PD32, &pde, 4);
	for (uint32_t i = 0; i < 512; i++) {
		uint32_t pte = i << 12 | PTE_P | PTE_W | PTE_U;
		memcpy(ram + PD32_PT + i * 4, &pte, 4);
	}
	put64(ram, PML4 + 0x3000 + STACK_GUARD(STACK0) / X86_PAGE_SIZE * 8, 0);
	put64(ram, PML4 + 0x3000 + STACK_GUARD(STACK3) / X86_PAGE_SIZE * 8, 0);
	memset(ram + PD32_PT + STACK_GUARD(STACK3) / X86_PAGE_SIZE * 4, 0, 4);
}

/* Features an input may turn on (its second byte). */
enum { F_SMEP = 1, F_SMAP = 2, F_AC = 4, F_TF = 8, F_IF = 0x10, F_UMIP = 0x20, F_PGE = 0x40,
       F_DR = 0x80 };

static void mode_sregs(enum fuzz_mode m, uint8_t feat, struct x86_sregs *s)
{
	unsigned ring = m == M_PROT3 || m == M_LONG3 || m == M_COMPAT3 ||
			(m == M_PAGED32 && (feat & F_TF)) ? 3 : 0;
	bool long_mode = m == M_LONG0 || m == M_LONG3 || m == M_COMPAT3;
	uint16_t rpl = (uint16_t)ring;

	s->gdt = (struct x86_dtable){ GDT, 10 * 8 - 1 };
	s->ldt = (struct x86_segment){ .type = SYS_TYPE_LDT, .unusable = 1 };
	s->tr = (struct x86_segment){ .base = TSS, .limit = TSS_MIN_LIMIT, .selector = SEL_TSS,
				      .type = SYS_TYPE_TSS_BUSY, .present = 1 };
	s->cr2 = s->cr8 = 0;
	if (m == M_REAL) {
		struct x86_segment r = { .limit = 0xffff, .type = 3, .present = 1, .s = 1 };
		s->ds = s->es = s->fs = s->gs = s->ss = r;
		s->cs = r;
		s->cs.type = 0xb;
		s->cs.selector = (uint16_t)(CODE >> 4);
		s->cs.base = CODE;
		s->ss.selector = (uint16_t)REAL_SS;
		s->ss.base = REAL_SS << 4;
		s->idt = (struct x86_dtable){ IVT, 0x3ff };
		s->cr0 = CR0_ET;
		s->cr3 = s->cr4 = s->efer = 0;
		return;
	}
	s->idt = (struct x86_dtable){ IDT, long_mode ? 256 * 16 - 1 : 256 * 8 - 1 };
	s->cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_MP;
	s->cr4 = CR4_OSFXSR | CR4_OSXMMEXCPT;
	s->efer = 0;
	s->cr3 = 0;
	if (long_mode) {
		s->cr0 |= CR0_PG | CR0_WP;
		s->cr4 |= CR4_PAE;
		s->cr3 = PML4;
		s->efer = EFER_LME | EFER_LMA | EFER_SCE | EFER_NXE;
	} else if (m == M_PAGED32) {
		s->cr0 |= CR0_PG | CR0_WP;
		s->cr3 = PD32;
	}
	if (s->cr0 & CR0_PG)
		s->cr4 |= (feat & F_SMEP ? 1ull << 20 : 0) | (feat & F_SMAP ? 1ull << 21 : 0) |
			  (feat & F_PGE ? CR4_PGE | CR4_PSE : 0);
	s->cr4 |= feat & F_UMIP ? 1ull << 11 : 0;
	uint16_t code = m == M_LONG0 ? SEL_CODE64 : m == M_LONG3 ? SEL_UCODE64
			: ring ? SEL_UCODE32 : SEL_CODE32;
	uint16_t data = ring ? SEL_UDATA : SEL_DATA;
	s->cs = seg(code | rpl, 0xb, ring, code == SEL_CODE64 || code == SEL_UCODE64,
		    code == SEL_CODE32 || code == SEL_UCODE32);
	s->ds = s->es = s->fs = s->gs = s->ss = seg(data | rpl, 3, ring, false, true);
}

/* Port I/O and MMIO go to the machine as machine/vm.c sends them; false
 * for the exits that end a run. */
static bool machine_exit(struct vm_exit *exit)
{
	if (exit->reason == VM_EXIT_DB || exit->reason == VM_EXIT_MOV_DR)
		return true;            /* the debugger looked and resumes */
	if (exit->reason == VM_EXIT_IO) {
		uint8_t *data = exit->io.data;
		for (uint32_t i = 0; i < exit->io.count; i++, data += exit->io.size)
			if (bus_access(&vm->pio, exit->io.port, data, exit->io.size,
				       exit->io.is_write) < 0 && !exit->io.is_write)
				memset(data, 0xff, exit->io.size);
		return true;
	}
	if (exit->reason == VM_EXIT_MMIO) {
		if (bus_access(&vm->mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len,
			       exit->mmio.is_write) < 0 && !exit->mmio.is_write)
			memset(exit->mmio.data, 0xff, exit->mmio.len);
		return true;
	}
	return false;
}

/* emu_engine.c's turn for one vCPU: slices up to the next timer deadline;
 * a halt waits for the next timer in guest time. */
static void run(struct emu_cpu *cpu, unsigned instructions)
{
	struct emu_vm *evm = cpu->evm;
	uint64_t end = cpu->retired + instructions;
	for (unsigned slices = 0; slices < 4096 && !vm_stopping(vm); slices++) {
		if (cpu->retired >= end)
			return;
		uint64_t now = emu_guest_ns(evm), deadline = emu_next_deadline_ns(evm);
		if (deadline <= now) {
			emu_platform_advance(evm, now);
			deadline = emu_next_deadline_ns(evm);
		}
		uint64_t budget = end - cpu->retired;
		if (deadline != EMU_NO_DEADLINE && deadline > now && deadline - now < budget)
			budget = deadline - now;
		uint64_t retired = cpu->retired;
		enum emu_stop stop = emu_exec_run(cpu, budget);
		if (stop == EMU_STOP_EXIT && !machine_exit(&cpu->exit))
			return;
		if (stop == EMU_STOP_QUANTUM && cpu->retired == retired)
			return;             /* faults only: a storm that goes on for ever */
		if (stop == EMU_STOP_HLT) {
			if (deadline == EMU_NO_DEADLINE)
				return;
			emu_platform_advance(evm, deadline > now ? deadline : now);
		}
		if (stop == EMU_STOP_EXIT)
			emu_blocks_outside(evm);    /* devices may have written RAM */
	}
}

/* The state the input asks for; returns the instruction budget. */
static unsigned load_state(struct fuzz_in *in)
{
	const struct engine_ops *ops = vm->engine;
	struct vcpu *vcpu = &vm->vcpus[0];
	struct x86_state st;
	ops->vcpu->get_state(vcpu, X86_STATE_ALL, &st);

	uint8_t mode_byte = (uint8_t)fuzz_take(in, 1);
	enum fuzz_mode m = (enum fuzz_mode)(mode_byte % M_NR);
	uint8_t feat = (uint8_t)fuzz_take(in, 1);
	unsigned budget = 16u << (fuzz_take(in, 1) % 7);
	uint8_t arith = (uint8_t)fuzz_take(in, 1), debugger = (uint8_t)fuzz_take(in, 1);
	mode_sregs(m, feat, &st.sregs);
	uint64_t *gpr = &st.regs.rax;
	for (unsigned i = 0; i < 16; i++)
		gpr[i] = fuzz_take(in, 8);
	bool ring3 = st.sregs.cs.dpl == 3, long_mode = st.sregs.efer & EFER_LMA;
	if (!(mode_byte & 0x80))
		st.regs.rsp = m == M_REAL ? REAL_SP : ring3 ? STACK3 : long_mode ? STACK0 : STACK32_0;
	st.regs.rip = m == M_REAL ? 0 : CODE;
	st.regs.rflags = RFLAGS_FIXED1 | (arith & 0xd5) | (arith & 0x08 ? 0x800 : 0) |
			 (feat & F_AC ? RFLAGS_AC : 0) | (feat & F_TF ? RFLAGS_TF : 0) |
			 (feat & F_IF ? RFLAGS_IF : 0);
	for (unsigned i = 0; i < 4; i++)
		st.dr.db[i] = fuzz_take(in, 8);
	uint64_t dr7 = fuzz_take(in, 8);
	st.dr.dr7 = feat & F_DR ? (dr7 & 0xffff23ffull) | 0x400 : 0x400;
	st.dr.dr6 = 0xffff0ff0;
	st.star = (uint64_t)SEL_CODE64 << 32 | (uint64_t)(SEL_UDATA - 8) << 48;
	st.lstar = st.cstar = HANDLERS;
	st.fmask = RFLAGS_TF | RFLAGS_IF | RFLAGS_AC | 0x400;
	ops->vcpu->set_state(vcpu, X86_STATE_REGS | X86_STATE_SREGS | X86_STATE_DR | X86_STATE_MSRS,
		       &st);
	struct engine_debug dbg = {
		.single_step = debugger & 1, .block_irq = debugger & 2,
		.intercept_bpt = debugger & 4, .use_hw_bp = debugger & 8,
		.intercept_db = debugger & 16, .intercept_mov_dr = debugger & 32,
		.db = { st.dr.db[3], st.dr.db[2], st.dr.db[1], st.dr.db[0] },
		.dr7 = debugger & 64 ? dr7 >> 32 : 0xff,
	};
	ops->debug->set_debug(vcpu, &dbg);
	return budget;
}

static uint64_t digest_seg(uint64_t h, const struct x86_segment *g)
{
	h = fuzz_digest(h, &g->base, sizeof(g->base));
	h = fuzz_digest(h, &g->limit, sizeof(g->limit));
	h = fuzz_digest(h, &g->selector, sizeof(g->selector));
	return fuzz_digest(h, &g->type, 9);     /* type .. unusable */
}

/* What the run left: registers, time, the exit, every byte of RAM (field by
 * field: the structures' padding is no state). */
static uint64_t end_digest(struct emu_cpu *cpu)
{
	struct x86_state st;
	vm->engine->vcpu->get_state(&vm->vcpus[0], X86_STATE_ALL, &st);
	uint64_t h = fuzz_digest(0, &st.regs, sizeof(st.regs));
	const struct x86_segment *segs[] = { &st.sregs.cs, &st.sregs.ds, &st.sregs.es,
		&st.sregs.fs, &st.sregs.gs, &st.sregs.ss, &st.sregs.tr, &st.sregs.ldt };
	for (unsigned i = 0; i < 8; i++)
		h = digest_seg(h, segs[i]);
	const struct x86_dtable *tables[] = { &st.sregs.gdt, &st.sregs.idt };
	for (unsigned i = 0; i < 2; i++) {
		h = fuzz_digest(h, &tables[i]->base, sizeof(tables[i]->base));
		h = fuzz_digest(h, &tables[i]->limit, sizeof(tables[i]->limit));
	}
	h = fuzz_digest(h, &st.sregs.cr0, 7 * sizeof(uint64_t));     /* cr0 .. apic_base */
	h = fuzz_digest(h, st.fpu.st, sizeof(st.fpu.st));
	h = fuzz_digest(h, st.fpu.xmm, sizeof(st.fpu.xmm));
	h = fuzz_digest(h, &st.fpu.mxcsr, sizeof(st.fpu.mxcsr));
	h = fuzz_digest(h, &cpu->retired, sizeof(cpu->retired));
	h = fuzz_digest(h, &cpu->exit.reason, sizeof(cpu->exit.reason));
	h = fuzz_digest(h, &vm->stopping, sizeof(vm->stopping));
	return fuzz_digest(h, vm->ram, vm->ram_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct emu_cpu *cpu = vm->vcpus[0].engine;
	uint8_t *ram = vm->ram;

	fuzz_machine_power_on(vm);
	bool long_mode = size && (data[0] % M_NR) >= M_LONG0;
	fuzz_ram_restore(vm, ram_image[long_mode]);
	unsigned budget = load_state(&in);
	/* corrupt the tables: each (offset, xor) */
	unsigned n = (unsigned)fuzz_take(&in, 1) % 33;
	for (unsigned i = 0; i < n; i++) {
		uint64_t off = fuzz_take(&in, 3) % (TABLES_END - GDT);
		ram[GDT + off] ^= (uint8_t)fuzz_take(&in, 1);
	}
	for (unsigned i = 0; i < 64; i++)
		ram[HANDLERS + i] = (uint8_t)fuzz_take(&in, 1);
	size_t code = in.left < 4096 ? in.left : 4096;
	memcpy(ram + CODE, in.p, code);
	emu_blocks_outside(cpu->evm);
	run(cpu, budget);
	if (fuzz_digest_wanted())
		fuzz_digest_report(data, size, end_digest(cpu));
	return 0;
}
