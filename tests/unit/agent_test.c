/* tests/unit/agent_test.c — debug/agent.c on hand-assembled bytecode:
 * each bytecode gdb emits for a condition, and every way an expression
 * can go wrong ending in an error with words, never a crash or a hang.
 * Each expression sits in a heap block of exactly its length, so an
 * over-read shows under the ASan build. */
#include <stdlib.h>
#include <string.h>

#include "debug/agent.h"
#include "tests/unit/check.h"

/* A fake CPU: registers are 0x100 + their number, except 16 (rip);
 * memory is 64 bytes at 0x1000 holding their offset. */
static int fake_reg(void *ctx, unsigned regno, uint64_t *v)
{
	(void)ctx;
	if (regno > 100)
		return -EINVAL;
	*v = regno == 16 ? 0xffffffff81000000ull : 0x100 + regno;
	return 0;
}

static int fake_mem(void *ctx, uint64_t addr, void *buf, size_t len)
{
	(void)ctx;
	if (addr < 0x1000 || addr + len > 0x1040)
		return -EFAULT;
	for (size_t i = 0; i < len; i++)
		((uint8_t *)buf)[i] = (uint8_t)(addr - 0x1000 + i);
	return 0;
}

static const struct agent_ops ops = { fake_reg, fake_mem, NULL };

static int run(const uint8_t *code, size_t len, uint64_t *v, struct err *e)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (len)
		memcpy(copy, code, len);
	int r = agent_eval(copy, len, &ops, v, e);
	free(copy);
	return r;
}

#define EVAL(want, ...)                                                        \
	do {                                                                   \
		const uint8_t c_[] = { __VA_ARGS__ };                          \
		uint64_t v_ = 0xdead;                                          \
		struct err e_ = { 0 };                                         \
		int r_ = run(c_, sizeof(c_), &v_, &e_);                        \
		CHECK(r_ == 0, "%s", e_.msg);                                  \
		CHECK_EQ_MSG(v_, want, #__VA_ARGS__);                          \
	} while (0)

#define FAILS(code, words, ...)                                                \
	do {                                                                   \
		const uint8_t c_[] = { __VA_ARGS__ };                          \
		uint64_t v_;                                                   \
		struct err e_ = { 0 };                                         \
		int r_ = run(c_, sizeof(c_), &v_, &e_);                        \
		CHECK(r_ == -(code), "%s: got %d (%s)", #__VA_ARGS__, r_, e_.msg); \
		CHECK(strstr(e_.msg, words) != NULL, "words: %s", e_.msg);     \
	} while (0)

enum { ADD = 0x02, SUB, MUL, DIVS, DIVU, REMS, REMU, LSH, RSHS, RSHU, TRACE, TRACEQ,
       LNOT, AND, OR, XOR, NOT, EQ, LTS, LTU, EXT, REF8, REF16, REF32, REF64,
       IFGOTO = 0x20, GOTO, C8, C16, C32, C64, REG, END, DUP, POP, ZEXT, SWAP,
       GETV, SETV, TRACEV, TRACENZ, TRACE16, PICK = 0x32, ROT, PRINTF };

static void test_constants_and_arithmetic(void)
{
	EVAL(0x7f, C8, 0x7f, END);
	EVAL(0x1234, C16, 0x12, 0x34, END);
	EVAL(0x12345678, C32, 0x12, 0x34, 0x56, 0x78, END);
	EVAL(0x0102030405060708, C64, 1, 2, 3, 4, 5, 6, 7, 8, END);
	EVAL(7, C8, 3, C8, 4, ADD, END);
	EVAL((uint64_t)-1, C8, 3, C8, 4, SUB, END);
	EVAL(12, C8, 3, C8, 4, MUL, END);
	EVAL((uint64_t)-3, C8, 7, EXT, 8, C8, 0xfe, EXT, 8, DIVS, END);      /* 7 / -2 */
	EVAL(1, C8, 7, C8, 0xfe, EXT, 8, REMS, END);
	EVAL(0x7f, C8, 0xfe, C8, 2, DIVU, END);
	EVAL(2, C8, 0xfe, C8, 3, REMU, END);
	EVAL(0x80, C8, 1, C8, 7, LSH, END);
	EVAL((uint64_t)-2, C8, 0xfc, EXT, 8, C8, 1, RSHS, END);
	EVAL(0x7e, C8, 0xfc, C8, 1, RSHU, END);
	EVAL(0, C8, 1, C8, 64, LSH, END);                 /* no undefined shifts */
	EVAL((uint64_t)-1, C8, 0x80, EXT, 8, C8, 200, RSHS, END);
	/* INT64_MIN / -1 wraps instead of trapping the host */
	EVAL(0x8000000000000000, C64, 0x80, 0, 0, 0, 0, 0, 0, 0, C8, 0xff, EXT, 8, DIVS, END);
}

static void test_logic_and_compare(void)
{
	EVAL(0, C8, 5, LNOT, END);
	EVAL(1, C8, 0, LNOT, END);
	EVAL(0x0c, C8, 0x0e, C8, 0x1c, AND, END);
	EVAL(0x1e, C8, 0x0e, C8, 0x1c, OR, END);
	EVAL(0x12, C8, 0x0e, C8, 0x1c, XOR, END);
	EVAL(~(uint64_t)0x0f, C8, 0x0f, NOT, END);
	EVAL(1, C16, 0x01, 0xf4, C16, 0x01, 0xf4, EQ, END);
	EVAL(0, C8, 1, C8, 2, EQ, END);
	EVAL(1, C8, 0xff, EXT, 8, C8, 1, LTS, END);       /* -1 < 1 */
	EVAL(0, C8, 0xff, EXT, 8, C8, 1, LTU, END);
	EVAL(0xff, C8, 0xff, EXT, 8, ZEXT, 8, END);
	EVAL((uint64_t)-1, C8, 0xff, EXT, 8, END);
}

static void test_registers_memory_and_jumps(void)
{
	EVAL(0x100, REG, 0, 0, END);
	EVAL(0xffffffff81000000, REG, 0, 16, END);
	EVAL(0x03, C16, 0x10, 0x03, REF8, END);
	EVAL(0x0302, C16, 0x10, 0x02, REF16, END);
	EVAL(0x07060504, C16, 0x10, 0x04, REF32, END);
	EVAL(0x0f0e0d0c0b0a0908, C16, 0x10, 0x08, REF64, END);
	/* if 1 goto 7 (push 2) else push 1; end */
	EVAL(2, C8, 1, IFGOTO, 0, 8, C8, 1, END, C8, 2, END);
	EVAL(1, C8, 0, IFGOTO, 0, 8, C8, 1, END, C8, 2, END);
	EVAL(9, GOTO, 0, 5, C8, 1, C8, 9, END);
	/* gdb's `a || b` shape: dup, if_goto, pop */
	EVAL(3, C8, 0, DUP, IFGOTO, 0, 8, POP, C8, 3, END);
}

static void test_stack_and_trace(void)
{
	EVAL(1, C8, 1, C8, 2, SWAP, END);
	EVAL(1, C8, 1, C8, 2, C8, 3, PICK, 2, END);
	EVAL(3, C8, 1, C8, 2, C8, 3, PICK, 0, END);
	/* a b c => c a b: the top is b */
	EVAL(2, C8, 1, C8, 2, C8, 3, ROT, END);
	EVAL(3, C8, 1, C8, 2, C8, 3, ROT, POP, POP, END);
	EVAL(5, C8, 5, C16, 0x10, 0, C8, 4, TRACE, END);
	EVAL(0x1000, C16, 0x10, 0, TRACEQ, 4, END);
	EVAL(0x1000, C16, 0x10, 0, TRACE16, 0, 4, TRACEV, 0, 1, END);
	EVAL(5, C8, 5, C16, 0x10, 0, C8, 4, TRACENZ, END);
}

static void test_errors(void)
{
	FAILS(EDOM, "division by zero", C8, 1, C8, 0, DIVS, END);
	FAILS(EDOM, "division by zero", C8, 1, C8, 0, REMU, END);
	FAILS(EINVAL, "unknown bytecode 0xff", C8, 1, 0xff, END);
	FAILS(EINVAL, "unknown bytecode 0x00", 0x00);
	FAILS(ENOTSUP, "floating point", C8, 1, 0x1e, END);
	FAILS(ENOTSUP, "trace state", GETV, 0, 1, END);
	FAILS(ENOTSUP, "printf", PRINTF, 0, 0, 1, 0, END);
	FAILS(EINVAL, "underflow", ADD, END);
	FAILS(EINVAL, "underflow", END);
	FAILS(EINVAL, "underflow", C8, 1, PICK, 1, END);
	FAILS(EINVAL, "past the end", C32, 1, 2);
	FAILS(EINVAL, "past the end", REG, 0);
	FAILS(EINVAL, "no `end`", C8, 1);
	FAILS(EINVAL, "unknown bytecode 0x00", C8, 1, 0);
	FAILS(EINVAL, "jump outside", GOTO, 0x10, 0);
	FAILS(ELOOP, "a loop", GOTO, 0, 0);
	FAILS(EFAULT, "cannot read 4 bytes at 0x2000", C16, 0x20, 0, REF32, END);
	FAILS(EINVAL, "cannot read register 200", REG, 0, 200, END);
	{
		uint8_t code[3 * AGENT_STACK + 3];
		for (unsigned i = 0; i <= AGENT_STACK; i++)
			code[2 * i] = C8, code[2 * i + 1] = 1;
		code[2 * AGENT_STACK + 2] = END;
		uint64_t v;
		struct err e = { 0 };
		CHECK(run(code, 2 * AGENT_STACK + 3, &v, &e) == -EOVERFLOW, "%s", e.msg);
		CHECK(strstr(e.msg, "stack overflow") != NULL, "%s", e.msg);
	}
	{
		uint64_t v;
		struct err e = { 0 };
		CHECK(run(NULL, 0, &v, &e) == -EINVAL, "empty: %s", e.msg);
	}
}

int main(void)
{
	test_constants_and_arithmetic();
	test_logic_and_compare();
	test_registers_memory_and_jumps();
	test_stack_and_trace();
	test_errors();
	return check_summary("agent_test");
}
