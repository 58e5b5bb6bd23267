/* x86/insn.h — what kind of instruction is at a guest RIP, as far as the
 * step engine (debug/step.c) cares: the ones that read, write or show
 * RFLAGS.TF or change how a single step ends. Zydis decodes; this only
 * sorts. */
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
