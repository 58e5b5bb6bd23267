/* engine/emu/emu.h — the software x86-64 engine's private interface: the
 * CPU state, and the contracts between its parts.
 *
 *   emu_cpu.c, emu_exec*.c, emu_mem.c, emu_exc.c,     the execution core
 *   emu_decode.c, emu_flags.h (emu_core.h)             (decode cache on
 *                 Zydis, instruction handlers, flags and conditions, paging
 *                 + TLB, exceptions and interrupt delivery, real/protected/
 *                 long mode)
 *   emu_fast.c, emu_fast_ops.c (emu_fast.h)            its fast path:
 *                 blocks of plain instructions with specialised handlers
 *   emu_engine.c                                       the engine_ops and
 *                 the scheduling of vCPUs
 *   emu_cpuid.c                                        the CPUID model:
 *                 what the guest is told the CPU implements
 *   emu_single.c                                       the core for one
 *                 instruction of another engine's vCPU (emu_single.h)
 *   emu_lapic.c, emu_ioapic.c, emu_pic.c, emu_pit.c    interrupt
 *                 controllers and timers (the engine's, as KVM's are
 *                 in-kernel; emu_platform.h)
 *   emu_debug.c                                        the debug
 *                 architecture of Intel SDM vol. 3 ch. 17 and the
 *                 debugger's intercepts (see emu_debug.h)
 *   emu_snap.c, emu_snap_check.c                       the engine's part
 *                 of whole-machine snapshots (engine_snap_ops), and their
 *                 self-check and bench hooks (VMDB_SNAP_CHECK/_BENCH)
 *
 * Determinism: the engine runs one vCPU at a time in fixed round-robin
 * quanta, and guest time is derived from retired instructions, so the same
 * guest with the same inputs executes the same instruction trace. */
#ifndef VMDB_EMU_H
#define VMDB_EMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/emu/emu_debug.h"
#include "engine/engine.h"
#include "x86/x86.h"

struct vm;
struct vcpu;
struct emu_vm;
struct emu_core;
struct emu_lapic;

/* The engine's ops table (emu_engine.c), found by engine_find("emu"). */
extern const struct engine_ops emu_engine_ops;

/* Cached descriptor of a segment register (what the hidden part holds). */
struct emu_seg {
	struct x86_segment s;
};

enum emu_gpr { EMU_RAX, EMU_RCX, EMU_RDX, EMU_RBX, EMU_RSP, EMU_RBP, EMU_RSI, EMU_RDI,
	       EMU_R8, EMU_R9, EMU_R10, EMU_R11, EMU_R12, EMU_R13, EMU_R14, EMU_R15 };

/* Events waiting for delivery at the next instruction boundary. */
struct emu_pending {
	bool exception;           /* an exception to deliver first */
	uint8_t vector;
	bool has_error_code;
	uint32_t error_code;
	bool nmi;
};

/* Why the core stopped executing and returned to emu_engine.c. */
enum emu_stop {
	EMU_STOP_NONE = 0,
	EMU_STOP_EXIT,            /* cpu->exit is filled: hand it to the machine */
	EMU_STOP_HLT,             /* halted, waiting for an interrupt */
	EMU_STOP_QUANTUM,         /* used up its slice */
	EMU_STOP_KICKED,          /* the engine's kick op asked it to leave (CORE) */
};

/* cpu->interrupt_shadow (CORE): set by the instruction that creates the
 * shadow, visible in emu_dbg_end_insn() of that instruction, cleared by the
 * core just before the next instruction executes (interrupts are checked
 * before that). */
#define EMU_SHADOW_STI   0x1
#define EMU_SHADOW_MOVSS 0x2

struct emu_cpu {
	struct emu_vm *evm;
	struct vcpu *vcpu;
	unsigned id;

	/* architectural state, in x86 encoding order */
	uint64_t gpr[16];
	uint64_t rip, rflags;
	struct x86_sregs sregs;   /* segments (hidden parts too), tables, CRs, EFER, APIC base */
	struct x86_fpu fpu;
	struct x86_debugregs dr;  /* the guest's own DR0-3, DR6, DR7 (emu_debug.c owns it) */
	uint64_t msr_star, msr_lstar, msr_cstar, msr_fmask, msr_kernel_gs_base, msr_tsc_aux;
	uint64_t tsc_offset;

	/* execution state */
	bool halted;
	bool wait_sipi;           /* an AP before its SIPI (INIT state) */
	uint8_t interrupt_shadow; /* STI / MOV SS: no interrupts (or #DB for MOV SS) after */
	struct emu_pending pending;
	/* atomic: something may be due between blocks (a kick, an NMI, an
	 * interrupt): set by whoever sets the reason, seen again where the
	 * fast path's blocks start running (emu_block_run). Translations look
	 * at it alone and leave the decision to may_go_on when it is set. */
	bool due;
	uint64_t insn_start_rip;  /* RIP of the instruction being executed (for faults) */
	uint64_t retired;         /* instructions retired by this vCPU */

	/* exits: run() returns a copy of this to the machine */
	struct vm_exit exit;
	uint8_t io_buf[4096];     /* IO/MMIO data for the exit; replayed on restart */

	/* the debugger's requests (engine_debug_ops.set_debug) */
	struct engine_debug debugger;
	struct emu_dbg dbg;       /* emu_debug.c's own state (emu_debug.h) */

	struct emu_lapic *lapic;  /* emu_lapic.c's */
	struct emu_core *core;    /* the core's own per-vCPU state (emu_core.h: TLB, ...) */
};

/* --- execution core (emu_exec*.c) --- */

/* Raise an exception in the guest: the core unwinds the current instruction
 * (state as before it, except for traps) and delivers it through the IDT
 * with the right frame, or escalates to #DF / triple fault. */
void emu_raise(struct emu_cpu *cpu, uint8_t vector, bool has_error_code, uint32_t error_code);

/* --- interrupt controllers (emu_lapic.c, emu_ioapic.c, emu_pic.c) --- */

/* Highest-priority interrupt vector the CPU may take now (IF and the
 * shadow are the caller's business), or -1. */
int emu_lapic_pending_vector(struct emu_cpu *cpu);
/* The CPU took `vector`: move it from IRR to ISR. */
void emu_lapic_accept(struct emu_cpu *cpu, int vector);
/* Guest time in ns: derived from retired instructions, deterministic. */
uint64_t emu_guest_ns(struct emu_vm *evm);

#endif
