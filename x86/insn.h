/* x86/insn.h — facts about instructions by mnemonic, and what kind of
 * instruction is at a guest RIP as far as the step engine (debug/step.c)
 * cares: the ones that read, write or show RFLAGS.TF or change how a
 * single step ends. Zydis decodes; this only sorts.
 *
 * x86_mnemonic() is the one table of per-mnemonic attributes: the step
 * kinds below, and what emu reads (its fast path: X86_MN_PLAIN; its
 * one-instruction core for another engine, emu_single: which state an
 * instruction needs). emu's handlers say only how to execute a mnemonic
 * (engine/emu/emu_core.h, emu_handler_entry); everything else about it
 * is here, where every layer can read it. */
#ifndef VMDB_INSN_H
#define VMDB_INSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/x86.h"

enum x86_insn_kind {
	X86_INSN_OTHER,
	X86_INSN_PUSHF,      /* PUSHF/PUSHFD/PUSHFQ: an RFLAGS image on the stack */
	X86_INSN_POPF,       /* loads RFLAGS (TF included) from the stack */
	X86_INSN_IRET,       /* IRET/IRETD/IRETQ: loads RFLAGS from its frame */
	X86_INSN_INT,        /* INT n, INT3, INTO, INT1: delivers through the IDT */
	X86_INSN_SYSCALL,    /* R11 = RFLAGS, RFLAGS &= ~FMASK */
	X86_INSN_SYSRET,     /* RFLAGS = R11 */
	X86_INSN_HLT,
	X86_INSN_MOV_SS,     /* MOV SS / POP SS: interrupt and trap shadow */
	X86_INSN_STI,
	X86_INSN_CLI,        /* clears IF (the step engine's IF shadow follows it) */
	X86_INSN_REP_STRING, /* REP/REPE/REPNE-prefixed string instruction */
	X86_INSN_BRANCH,     /* any other control transfer (jmp, call, ret, jcc, loop) */
};

/* Attributes of a mnemonic (x86_mnemonic()->attrs). */
enum x86_mnemonic_attr {
	/* Touches nothing but general registers, the arithmetic flags and DF,
	 * memory and RIP (a near transfer) for every operand form whose
	 * operands are general registers, memory or immediates: no system
	 * state, no TF/IF, no I/O, no x87/SSE state. */
	X86_MN_PLAIN = 1u << 0,
	/* Needs the x87/SSE state even when no x87, MMX, XMM or MXCSR
	 * register is among its operands (state management, XCR0). */
	X86_MN_FPU = 1u << 1,
	/* Saves or restores the state components XCR0 selects. */
	X86_MN_XSAVE = 1u << 2,
	/* Reads or writes model-specific registers (STAR, LSTAR, FMASK,
	 * KERNEL_GS_BASE ... included). */
	X86_MN_MSR = 1u << 3,
	/* Tests condition code cc, the low nibble of its last opcode byte:
	 * Jcc, SETcc, CMOVcc respectively. */
	X86_MN_JCC = 1u << 4,
	X86_MN_SETCC = 1u << 5,
	X86_MN_CMOVCC = 1u << 6,
	/* Always transfers control (JMP, CALL, RET). */
	X86_MN_JUMP = 1u << 7,
	/* Writes below the stack pointer without a memory operand (PUSH,
	 * PUSHF, CALL, ENTER). */
	X86_MN_PUSHES = 1u << 8,
};

struct x86_mnemonic {
	uint16_t attrs;      /* enum x86_mnemonic_attr */
	uint8_t kind;        /* enum x86_insn_kind when the mnemonic alone says it, else OTHER */
};

/* The attributes of a Zydis mnemonic (ZydisMnemonic); all zero (OTHER)
 * for one the table does not know. */
const struct x86_mnemonic *x86_mnemonic(unsigned mnemonic);

struct x86_insn_info {
	enum x86_insn_kind kind;
	uint8_t len;         /* bytes */
	uint8_t opsize;      /* operand size in bytes (PUSHF/POPF/IRET image size) */
	bool changes_system; /* may change paging, segments or descriptor tables */
	bool full;           /* needed the full decode (not a plain ALU/MOV/... opcode) */
};

/* Sort the instruction at bytes[0..len). Returns 0, or -EINVAL when it
 * does not decode (info->kind = OTHER, len 0). */
int x86_insn_classify(enum x86_mode mode, const uint8_t *bytes, size_t len,
		      struct x86_insn_info *info);

const char *x86_insn_kind_name(enum x86_insn_kind kind);

#endif
