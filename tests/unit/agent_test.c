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

/* Commands: printf's text, collected. */
static char printed[4 * AGENT_MAX_PRINT];
static size_t printed_len;

static void fake_print(void *ctx, const char *text, size_t len)
{
	(void)ctx;
	if (len > sizeof(printed) - 1 - printed_len)
		len = sizeof(printed) - 1 - printed_len;
	memcpy(printed + printed_len, text, len);
	printed_len += len;
	printed[printed_len] = '\0';
}

static const struct agent_ops print_ops = { fake_reg, fake_mem, NULL, fake_print };

/* printf with nargs values (pushed last first, as gdb does) and the
 * format fmt; *code is the bytecode, returns its length. */
static size_t printf_code(uint8_t *code, const char *fmt, const uint64_t *args, unsigned nargs)
{
	size_t n = 0, flen = strlen(fmt) + 1;
	for (unsigned i = nargs; i-- > 0;) {
		code[n++] = C64;
		for (int b = 7; b >= 0; b--)
			code[n++] = (uint8_t)(args[i] >> (8 * b));
	}
	code[n++] = C8, code[n++] = 0;     /* channel */
	code[n++] = C8, code[n++] = 0;     /* function */
	code[n++] = PRINTF, code[n++] = (uint8_t)nargs;
	code[n++] = (uint8_t)(flen >> 8), code[n++] = (uint8_t)flen;
	memcpy(code + n, fmt, flen);
	n += flen;
	code[n++] = END;
	return n;
}

static int print_run(const char *fmt, const uint64_t *args, unsigned nargs, struct err *e)
{
	uint8_t code[512];
	size_t n = printf_code(code, fmt, args, nargs);
	uint8_t *copy = malloc(n);
	memcpy(copy, code, n);
	printed_len = 0;
	printed[0] = '\0';
	int r = agent_run(copy, n, &print_ops, e);
	free(copy);
	return r;
}

#define PRINTS(want, fmt, ...)                                                 \
	do {                                                                   \
		const uint64_t a_[] = { 0, __VA_ARGS__ };                      \
		struct err e_ = { 0 };                                         \
		int r_ = print_run(fmt, a_ + 1, sizeof(a_) / 8 - 1, &e_);     \
		CHECK(r_ == 0, "%s: %s", fmt, e_.msg);                         \
		CHECK(strcmp(printed, want) == 0, "%s: got \"%s\"", fmt, printed); \
	} while (0)

#define PRINT_FAILS(code, words, fmt, ...)                                     \
	do {                                                                   \
		const uint64_t a_[] = { 0, __VA_ARGS__ };                      \
		struct err e_ = { 0 };                                         \
		int r_ = print_run(fmt, a_ + 1, sizeof(a_) / 8 - 1, &e_);     \
		CHECK(r_ == -(code), "%s: got %d (%s)", fmt, r_, e_.msg);      \
		CHECK(strstr(e_.msg, words) != NULL, "words: %s", e_.msg);     \
	} while (0)

static void test_printf(void)
{
	PRINTS("hit 7\n", "hit %d\\n", 7);
	PRINTS("a=-1 b=4294967295 c=ff d=0x00ff\n", "a=%d b=%u c=%x d=%#06x\\n",
	       (uint64_t)-1, (uint64_t)-1, 255, 255);
	PRINTS("-1 18446744073709551615 -128 65535", "%ld %lu %hhd %hu",
	       (uint64_t)-1, (uint64_t)-1, 0x80, (uint64_t)-1);
	PRINTS("[   42] [42   ] [00042] 100%", "[%5d] [%-5d] [%.5d] 100%%", 42, 42, 42);
	PRINTS("c=A p=0xffffffff81000000 o=17", "c=%c p=%p o=%o", 'A', 0xffffffff81000000ull, 15);
	PRINTS("tab\tq\"\001", "tab\\tq\\\"\\001");
	/* %s reads guest memory: the fake memory holds its offsets, byte 0 is a NUL */
	PRINTS("s=\x01\x02\x03", "s=%.3s", 0x1001);
	PRINTS("s=", "s=%s", 0x2000);      /* unreadable: empty */
	PRINTS("no values", "no values", 1, 2);    /* extra values are ignored */
	PRINT_FAILS(EINVAL, "more conversions", "%d %d", 1);
	PRINT_FAILS(ENOTSUP, "%f is not supported", "%f", 1);
	PRINT_FAILS(EINVAL, "unknown escape", "\\q");
	PRINT_FAILS(EINVAL, "ends inside", "%08", 1);
	/* a command needs no value on the stack at its end; a condition does */
	{
		struct err e = { 0 };
		const uint8_t end[] = { END };
		CHECK(agent_run(end, 1, &print_ops, &e) == 0, "%s", e.msg);
	}
	/* a format that runs off the code, or has no NUL */
	{
		struct err e = { 0 };
		const uint8_t bad[] = { C8, 0, C8, 0, PRINTF, 0, 0, 9, 'x', END };
		CHECK(agent_run(bad, sizeof(bad), &print_ops, &e) == -EINVAL &&
		      strstr(e.msg, "past the end"), "%s", e.msg);
		const uint8_t nonul[] = { C8, 0, C8, 0, PRINTF, 0, 0, 1, 'x', END };
		CHECK(agent_run(nonul, sizeof(nonul), &print_ops, &e) == -EINVAL &&
		      strstr(e.msg, "NUL"), "%s", e.msg);
		const uint8_t fn[] = { C8, 0, C8, 1, PRINTF, 0, 0, 1, 0, END };
		CHECK(agent_run(fn, sizeof(fn), &print_ops, &e) == -ENOTSUP &&
		      strstr(e.msg, "guest function"), "%s", e.msg);
		const uint8_t few[] = { C8, 0, C8, 0, PRINTF, 1, 0, 1, 0, END };
		CHECK(agent_run(few, sizeof(few), &print_ops, &e) == -EINVAL &&
		      strstr(e.msg, "underflow"), "%s", e.msg);
	}
	/* a long text is cut, never overflows */
	{
		char fmt[300];
		memset(fmt, 'x', sizeof(fmt) - 1);
		fmt[sizeof(fmt) - 1] = '\0';
		PRINTS(fmt, fmt);
		const uint64_t many[] = { 1, 2, 3, 4, 5 };
		struct err e = { 0 };
		CHECK(print_run("%0200d%0200d%0200d%0200d%0200d%0200d", many, 5, &e) == -EINVAL,
		      "%s", e.msg);
		CHECK(print_run("%0300d%0300d%0300d%0300d%0300d", many, 5, &e) == 0, "%s", e.msg);
		CHECK(printed_len == AGENT_MAX_PRINT - 1, "cut at %zu", printed_len);
	}
}

int main(void)
{
	test_printf();
	test_constants_and_arithmetic();
	test_logic_and_compare();
	test_registers_memory_and_jumps();
	test_stack_and_trace();
	test_errors();
	return check_summary("agent_test");
}
