/* debug/agent.c — GDB agent expression bytecode (see agent.h). Operands
 * in the code are big-endian; jump targets are offsets from the start of
 * the expression. Values are 64-bit; floating point and trace state
 * variables, which gdb does not use in an x86 breakpoint condition, are
 * refused with words. Trace bytecodes are no-ops: there is no trace
 * buffer, and a condition only wants the value. `printf` (a breakpoint
 * command's) hands its text to the caller (agent_printf.c formats it). */
#include "debug/agent.h"

#include <inttypes.h>
#include <stdbool.h>

enum agent_op {
	OP_FLOAT = 0x01, OP_ADD, OP_SUB, OP_MUL, OP_DIV_SIGNED, OP_DIV_UNSIGNED,
	OP_REM_SIGNED, OP_REM_UNSIGNED, OP_LSH, OP_RSH_SIGNED, OP_RSH_UNSIGNED,
	OP_TRACE, OP_TRACE_QUICK, OP_LOG_NOT, OP_BIT_AND, OP_BIT_OR, OP_BIT_XOR,
	OP_BIT_NOT, OP_EQUAL, OP_LESS_SIGNED, OP_LESS_UNSIGNED, OP_EXT,
	OP_REF8, OP_REF16, OP_REF32, OP_REF64, OP_REF_FLOAT, OP_REF_DOUBLE,
	OP_REF_LONG_DOUBLE, OP_L_TO_D, OP_D_TO_L, OP_IF_GOTO, OP_GOTO,
	OP_CONST8, OP_CONST16, OP_CONST32, OP_CONST64, OP_REG, OP_END, OP_DUP,
	OP_POP, OP_ZERO_EXT, OP_SWAP, OP_GETV, OP_SETV, OP_TRACEV, OP_TRACENZ,
	OP_TRACE16, OP_PICK = 0x32, OP_ROT, OP_PRINTF,
};

struct agent_vm {
	const uint8_t *code;
	size_t len, pc;
	uint64_t stack[AGENT_STACK];
	unsigned sp;            /* values on the stack */
	const struct agent_ops *ops;
	struct err *e;
};

static int fail(struct agent_vm *vm, int code, const char *what)
{
	return err_set(vm->e, code, "agent expression: %s at offset %zu", what, vm->pc);
}

/* An n-byte big-endian operand at pc, which moves past it. */
static int operand(struct agent_vm *vm, unsigned n, uint64_t *v)
{
	if (n > vm->len - vm->pc)
		return fail(vm, EINVAL, "operand runs past the end of the code");
	*v = 0;
	for (unsigned i = 0; i < n; i++)
		*v = *v << 8 | vm->code[vm->pc++];
	return 0;
}

static int push(struct agent_vm *vm, uint64_t v)
{
	if (vm->sp == AGENT_STACK)
		return fail(vm, EOVERFLOW, "stack overflow");
	vm->stack[vm->sp++] = v;
	return 0;
}

/* Make sure n values are there to take. */
static int need(struct agent_vm *vm, unsigned n)
{
	return vm->sp < n ? fail(vm, EINVAL, "stack underflow") : 0;
}

static uint64_t sign_extend(uint64_t v, uint64_t bits)
{
	if (bits == 0 || bits >= 64)
		return v;
	uint64_t sign = 1ull << (bits - 1);
	v &= (sign << 1) - 1;
	return (v ^ sign) - sign;
}

static uint64_t zero_extend(uint64_t v, uint64_t bits)
{
	return bits == 0 || bits >= 64 ? v : v & ((1ull << bits) - 1);
}

static int divide(struct agent_vm *vm, enum agent_op op, uint64_t a, uint64_t b, uint64_t *r)
{
	if (b == 0)
		return fail(vm, EDOM, "division by zero");
	int64_t sa = (int64_t)a, sb = (int64_t)b;
	bool overflow = sa == INT64_MIN && sb == -1;    /* wraps, as the CPU's would not */
	switch (op) {
	case OP_DIV_SIGNED:   *r = overflow ? a : (uint64_t)(sa / sb); break;
	case OP_REM_SIGNED:   *r = overflow ? 0 : (uint64_t)(sa % sb); break;
	case OP_DIV_UNSIGNED: *r = a / b; break;
	default:              *r = a % b; break;
	}
	return 0;
}

/* a b => a OP b */
static int binary(struct agent_vm *vm, enum agent_op op)
{
	int r = need(vm, 2);
	if (r < 0)
		return r;
	uint64_t b = vm->stack[--vm->sp], a = vm->stack[vm->sp - 1], v = 0;
	switch (op) {
	case OP_ADD:            v = a + b; break;
	case OP_SUB:            v = a - b; break;
	case OP_MUL:            v = a * b; break;
	case OP_LSH:            v = b >= 64 ? 0 : a << b; break;
	case OP_RSH_UNSIGNED:   v = b >= 64 ? 0 : a >> b; break;
	case OP_RSH_SIGNED:     v = (uint64_t)((int64_t)a >> (b >= 64 ? 63 : b)); break;
	case OP_BIT_AND:        v = a & b; break;
	case OP_BIT_OR:         v = a | b; break;
	case OP_BIT_XOR:        v = a ^ b; break;
	case OP_EQUAL:          v = a == b; break;
	case OP_LESS_SIGNED:    v = (int64_t)a < (int64_t)b; break;
	case OP_LESS_UNSIGNED:  v = a < b; break;
	default:
		if ((r = divide(vm, op, a, b, &v)) < 0)
			return r;
	}
	vm->stack[vm->sp - 1] = v;
	return 0;
}

/* addr => the n bytes there, zero-extended (gdb adds `ext` for signed) */
static int ref(struct agent_vm *vm, unsigned n)
{
	int r = need(vm, 1);
	if (r < 0)
		return r;
	uint64_t addr = vm->stack[vm->sp - 1];
	uint8_t buf[8] = { 0 };
	if ((r = vm->ops->mem(vm->ops->ctx, addr, buf, n)) < 0)
		return err_set(vm->e, -r, "agent expression: cannot read %u bytes at 0x%" PRIx64,
			       n, addr);
	uint64_t v = 0;
	for (unsigned i = n; i-- > 0;)
		v = v << 8 | buf[i];     /* x86 memory is little-endian */
	vm->stack[vm->sp - 1] = v;
	return 0;
}

static int reg(struct agent_vm *vm)
{
	uint64_t regno, v;
	int r = operand(vm, 2, &regno);
	if (r < 0)
		return r;
	if ((r = vm->ops->reg(vm->ops->ctx, (unsigned)regno, &v)) < 0)
		return err_set(vm->e, -r, "agent expression: cannot read register %" PRIu64, regno);
	return push(vm, v);
}

static int jump(struct agent_vm *vm, bool taken)
{
	uint64_t to;
	int r = operand(vm, 2, &to);
	if (r < 0 || !taken)
		return r;
	if (to >= vm->len)
		return fail(vm, EINVAL, "jump outside the code");
	vm->pc = to;
	return 0;
}

/* dup, pop, swap, pick n, rot */
static int shuffle(struct agent_vm *vm, enum agent_op op)
{
	uint64_t n = 0;
	int r = op == OP_PICK ? operand(vm, 1, &n) : 0;
	if (r < 0)
		return r;
	unsigned depth = op == OP_DUP || op == OP_POP ? 1 : op == OP_SWAP ? 2 :
			 op == OP_ROT ? 3 : (unsigned)n + 1;
	if ((r = need(vm, depth)) < 0)
		return r;
	uint64_t *top = &vm->stack[vm->sp - 1];
	switch (op) {
	case OP_DUP:  return push(vm, *top);
	case OP_POP:  vm->sp--; return 0;
	case OP_PICK: return push(vm, top[-(ptrdiff_t)n]);
	case OP_SWAP: { uint64_t t = top[0]; top[0] = top[-1]; top[-1] = t; return 0; }
	default: {    /* a b c => c a b */
		uint64_t c = top[0];
		top[0] = top[-1];
		top[-1] = top[-2];
		top[-2] = c;
		return 0;
	}
	}
}

/* The trace family records data for tracepoints: no buffer here, so
 * only their stack effects and operands remain. */
static int trace(struct agent_vm *vm, enum agent_op op)
{
	uint64_t n;
	switch (op) {
	case OP_TRACE:
	case OP_TRACENZ:      /* addr size => */
		if (need(vm, 2) < 0)
			return -EINVAL;
		vm->sp -= 2;
		return 0;
	case OP_TRACE_QUICK:  /* addr => addr */
		return operand(vm, 1, &n);
	default:              /* trace16 (addr => addr), tracev: no stack effect */
		return operand(vm, 2, &n);
	}
}

static int unsupported(struct agent_vm *vm, uint8_t op)
{
	if (op == OP_FLOAT || (op >= OP_REF_FLOAT && op <= OP_D_TO_L))
		return fail(vm, ENOTSUP, "floating point is not supported");
	if (op == OP_GETV || op == OP_SETV)
		return fail(vm, ENOTSUP, "trace state variables are not supported");
	vm->pc--;
	return err_set(vm->e, EINVAL, "agent expression: unknown bytecode 0x%02x at offset %zu",
		       op, vm->pc);
}

/* printf NARGS LEN16 FORMAT\0: values and then gdb's function and
 * channel (0, 0: print as you like) on the stack, the first value on top
 * of the rest. */
static int print(struct agent_vm *vm)
{
	uint64_t nargs, slen, args[AGENT_STACK];
	int r;
	if (!vm->ops->print)
		return fail(vm, ENOTSUP, "printf is not supported in a condition");
	if ((r = operand(vm, 1, &nargs)) < 0 || (r = operand(vm, 2, &slen)) < 0)
		return r;
	if (slen == 0 || slen > vm->len - vm->pc)
		return fail(vm, EINVAL, "printf's format runs past the end of the code");
	const char *fmt = (const char *)vm->code + vm->pc;
	vm->pc += slen;
	if (fmt[slen - 1] != '\0')
		return fail(vm, EINVAL, "printf's format is not NUL-terminated");
	if ((r = need(vm, 2 + (unsigned)nargs)) < 0)
		return r;
	uint64_t function = vm->stack[--vm->sp];
	vm->sp--;     /* the channel: a function's first argument */
	if (function != 0)
		return fail(vm, ENOTSUP, "printf through a guest function is not supported");
	for (unsigned i = 0; i < nargs; i++)
		args[i] = vm->stack[--vm->sp];
	char text[AGENT_MAX_PRINT];
	int n = agent_format(fmt, slen - 1, args, (unsigned)nargs, vm->ops, text, sizeof(text),
			     vm->e);
	if (n < 0)
		return n;
	vm->ops->print(vm->ops->ctx, text, (size_t)n);
	return 0;
}

static int constant(struct agent_vm *vm, unsigned n)
{
	uint64_t v;
	int r = operand(vm, n, &v);
	return r < 0 ? r : push(vm, v);
}

/* One bytecode; 1 when it was `end`. */
static int step(struct agent_vm *vm)
{
	uint8_t op = vm->code[vm->pc++];
	uint64_t n;
	int r;

	if ((op >= OP_ADD && op <= OP_RSH_UNSIGNED) || (op >= OP_BIT_AND && op <= OP_BIT_XOR) ||
	    (op >= OP_EQUAL && op <= OP_LESS_UNSIGNED))
		return binary(vm, op);
	switch (op) {
	case OP_LOG_NOT:
	case OP_BIT_NOT:
		if ((r = need(vm, 1)) < 0)
			return r;
		vm->stack[vm->sp - 1] = op == OP_LOG_NOT ? !vm->stack[vm->sp - 1]
							 : ~vm->stack[vm->sp - 1];
		return 0;
	case OP_EXT:
	case OP_ZERO_EXT:
		if ((r = operand(vm, 1, &n)) < 0 || (r = need(vm, 1)) < 0)
			return r;
		vm->stack[vm->sp - 1] = op == OP_EXT ? sign_extend(vm->stack[vm->sp - 1], n)
						     : zero_extend(vm->stack[vm->sp - 1], n);
		return 0;
	case OP_REF8:  return ref(vm, 1);
	case OP_REF16: return ref(vm, 2);
	case OP_REF32: return ref(vm, 4);
	case OP_REF64: return ref(vm, 8);
	case OP_IF_GOTO:
		if ((r = need(vm, 1)) < 0)
			return r;
		return jump(vm, vm->stack[--vm->sp] != 0);
	case OP_GOTO:    return jump(vm, true);
	case OP_CONST8:  return constant(vm, 1);
	case OP_CONST16: return constant(vm, 2);
	case OP_CONST32: return constant(vm, 4);
	case OP_CONST64: return constant(vm, 8);
	case OP_REG:     return reg(vm);
	case OP_END:     return 1;
	case OP_PRINTF:  return print(vm);
	case OP_DUP: case OP_POP: case OP_SWAP: case OP_PICK: case OP_ROT:
		return shuffle(vm, op);
	case OP_TRACE: case OP_TRACE_QUICK: case OP_TRACE16: case OP_TRACEV: case OP_TRACENZ:
		return trace(vm, op);
	default:
		return unsupported(vm, op);
	}
}

/* Run to `end`; with want, *value is the top of the stack there. */
static int run(struct agent_vm *vm, bool want, uint64_t *value)
{
	for (unsigned steps = 0; steps < AGENT_MAX_STEPS; steps++) {
		if (vm->pc >= vm->len)
			return fail(vm, EINVAL, "no `end` before the end of the code");
		int r = step(vm);
		if (r < 0)
			return r;
		if (r == 1 && !want)
			return 0;
		if (r == 1) {
			if ((r = need(vm, 1)) < 0)
				return r;
			*value = vm->stack[vm->sp - 1];
			return 0;
		}
	}
	return err_set(vm->e, ELOOP, "agent expression: still running after %d bytecodes (a loop?)",
		       AGENT_MAX_STEPS);
}

int agent_eval(const uint8_t *code, size_t len, const struct agent_ops *ops, uint64_t *value,
	       struct err *e)
{
	struct agent_vm vm = { .code = code, .len = len, .ops = ops, .e = e };
	return run(&vm, true, value);
}

int agent_run(const uint8_t *code, size_t len, const struct agent_ops *ops, struct err *e)
{
	struct agent_vm vm = { .code = code, .len = len, .ops = ops, .e = e };
	uint64_t unused;
	return run(&vm, false, &unused);
}
