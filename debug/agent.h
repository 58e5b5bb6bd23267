/* debug/agent.h — an interpreter for GDB's agent expressions (the
 * bytecode of the GDB manual's "Agent Expressions" appendix), the form
 * in which gdb hands a stub breakpoint conditions to evaluate itself.
 * It knows nothing of packets or of x86: registers (by gdb's register
 * number) and memory come through the callbacks. Every failure (a bad
 * opcode, an operand or jump outside the code, stack overflow or
 * underflow, division by zero, a runaway loop, an unreadable register
 * or byte) ends the evaluation with -errno and words; nothing the
 * bytecode says can crash or hang it. */
#ifndef VMDB_AGENT_H
#define VMDB_AGENT_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Bytecodes gdb sends are at most this long (its `;X len,` is hex). */
#define AGENT_MAX_CODE 1024
/* Values on the stack at once. */
#define AGENT_STACK 128
/* Bytecodes executed before an evaluation is given up as a loop. */
#define AGENT_MAX_STEPS 100000

/* Longest text one `printf` bytecode produces (the rest is cut). */
#define AGENT_MAX_PRINT 1024

struct agent_ops {
	/* register regno (gdb's numbering) of the stopped CPU; -errno */
	int (*reg)(void *ctx, unsigned regno, uint64_t *value);
	/* len bytes at addr as the CPU sees them; -errno */
	int (*mem)(void *ctx, uint64_t addr, void *buf, size_t len);
	void *ctx;
	/* the text of a `printf` bytecode (gdb's dprintf with `set
	 * dprintf-style agent`); NULL: `printf` is refused, as in a condition */
	void (*print)(void *ctx, const char *text, size_t len);
};

/* Run code[0..len) to its `end`: *value is the top of the stack then. */
int agent_eval(const uint8_t *code, size_t len, const struct agent_ops *ops, uint64_t *value,
	       struct err *e) must_check;
/* Run a breakpoint command (gdb's `cmds:`) to its `end`, for its
 * effects (printf): the stack may be empty there. */
int agent_run(const uint8_t *code, size_t len, const struct agent_ops *ops,
	      struct err *e) must_check;
/* printf's text (agent_printf.c): the format as gdb sends it (C escapes
 * not yet applied; fmt_len without the NUL), args[0] the first value.
 * The length of out's text (cut at size - 1), or -errno with e. */
int agent_format(const char *fmt, size_t fmt_len, const uint64_t *args, unsigned nargs,
		 const struct agent_ops *ops, char *out, size_t size, struct err *e) must_check;

#endif
