/* debug/agent_printf.c — the text of an agent expression's `printf`
 * (see agent.h): gdb sends the format as it was typed between the quotes
 * of `dprintf LOCATION,"FORMAT",ARGS`, C escapes and all, and the values
 * as 64-bit numbers; %s names a string in guest memory. The conversions
 * are C's integer ones (d i u o x X c p s, with flags, width, precision
 * and length modifiers); floating point has no values in an agent
 * expression and is refused. The text is cut at the buffer's end. */
#include "debug/agent.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Longest %s read from guest memory. */
#define AGENT_MAX_STRING 256

struct fmt_out {
	char *buf;
	size_t size, len;
};

static void put(struct fmt_out *o, const char *s, size_t n)
{
	size_t room = o->size - 1 - o->len;
	if (n > room)
		n = room;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

/* One escape after a backslash at *p; *p moves past it. */
static int escape(const char **p, const char *end, char *c, struct err *e)
{
	static const char from[] = "abefnrtv\\\"'?", to[] = "\a\b\033\f\n\r\t\v\\\"'?";
	if (*p == end)
		return err_set(e, EINVAL, "printf: a backslash ends the format");
	const char *hit = strchr(from, **p);
	if (hit && **p) {
		*c = to[hit - from];
		(*p)++;
		return 0;
	}
	unsigned v = 0, n = 0;
	while (n < 3 && *p < end && **p >= '0' && **p <= '7') {
		v = v * 8 + (unsigned)(**p - '0');
		(*p)++;
		n++;
	}
	if (n == 0)
		return err_set(e, EINVAL, "printf: unknown escape \\%c in the format", **p);
	*c = (char)v;
	return 0;
}

/* The string at addr, read from guest memory up to its NUL, max bytes, or
 * the first byte that cannot be read. */
static void guest_string(const struct agent_ops *ops, uint64_t addr, size_t max, char *s)
{
	size_t n = 0;
	while (n < max) {
		size_t chunk = 64 - ((addr + n) & 63);     /* never across a page */
		if (chunk > max - n)
			chunk = max - n;
		if (ops->mem(ops->ctx, addr + n, s + n, chunk) < 0)
			break;
		void *nul = memchr(s + n, '\0', chunk);
		if (nul) {
			n = (size_t)((char *)nul - s);
			break;
		}
		n += chunk;
	}
	s[n] = '\0';
}

/* The value as C would have passed it for this length modifier. */
static uint64_t narrow(uint64_t v, const char *len, bool is_signed)
{
	unsigned bits = !strcmp(len, "hh") ? 8 : !strcmp(len, "h") ? 16 : !len[0] ? 32 : 64;
	if (bits == 64)
		return v;
	uint64_t mask = (1ull << bits) - 1, sign = 1ull << (bits - 1);
	v &= mask;
	return is_signed ? (v ^ sign) - sign : v;
}

/* One conversion: spec is "%[flags][width][.prec]", len its length
 * modifier, conv its letter. */
static int convert(struct fmt_out *o, const char *spec, const char *len, char conv,
		   uint64_t v, const struct agent_ops *ops, struct err *e)
{
	char full[48], text[AGENT_MAX_STRING + 64];
	int n;
	switch (conv) {
	case 'd': case 'i':
		snprintf(full, sizeof(full), "%sll%c", spec, conv);
		n = snprintf(text, sizeof(text), full, (long long)narrow(v, len, true));
		break;
	case 'u': case 'o': case 'x': case 'X':
		snprintf(full, sizeof(full), "%sll%c", spec, conv);
		n = snprintf(text, sizeof(text), full, (unsigned long long)narrow(v, len, false));
		break;
	case 'c':
		snprintf(full, sizeof(full), "%sc", spec);
		n = snprintf(text, sizeof(text), full, (int)(unsigned char)v);
		break;
	case 'p':
		n = snprintf(text, sizeof(text), "0x%" PRIx64, v);
		break;
	case 's': {
		char s[AGENT_MAX_STRING + 1];
		guest_string(ops, v, AGENT_MAX_STRING, s);
		snprintf(full, sizeof(full), "%ss", spec);
		n = snprintf(text, sizeof(text), full, s);
		break;
	}
	default:
		return err_set(e, ENOTSUP, "printf: %%%c is not supported (integers, %%c, %%p "
			       "and %%s only)", conv);
	}
	if (n > 0)
		put(o, text, (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1);
	return 0;
}

/* "%[flags][width][.prec][len]conv" at *p (past the '%'). */
static int directive(const char **p, const char *end, char *spec, size_t spec_size,
		     char *len, char *conv, struct err *e)
{
	const char *start = *p;
	while (*p < end && strchr("-+ #0", **p) && **p)
		(*p)++;
	while (*p < end && **p >= '0' && **p <= '9')
		(*p)++;
	if (*p < end && **p == '.')
		for ((*p)++; *p < end && **p >= '0' && **p <= '9'; (*p)++)
			;
	size_t n = (size_t)(*p - start);
	if (n + 2 > spec_size)
		return err_set(e, EINVAL, "printf: a conversion's width is too long");
	spec[0] = '%';
	memcpy(spec + 1, start, n);
	spec[n + 1] = '\0';
	size_t l = 0;
	while (*p < end && l < 2 && strchr("hlLqjzt", **p) && **p)
		len[l++] = *(*p)++;
	len[l] = '\0';
	if (*p == end)
		return err_set(e, EINVAL, "printf: the format ends inside a conversion");
	*conv = *(*p)++;
	return 0;
}

int agent_format(const char *fmt, size_t fmt_len, const uint64_t *args, unsigned nargs,
		 const struct agent_ops *ops, char *out, size_t size, struct err *e)
{
	struct fmt_out o = { out, size, 0 };
	const char *p = fmt, *end = fmt + fmt_len;
	unsigned next = 0;
	out[0] = '\0';
	while (p < end) {
		char c = *p++, spec[24], len[3], conv = 0;
		int r;
		if (c == '\\') {
			if ((r = escape(&p, end, &c, e)) < 0)
				return r;
		} else if (c == '%' && p < end && *p == '%') {
			p++;
		} else if (c == '%') {
			if ((r = directive(&p, end, spec, sizeof(spec), len, &conv, e)) < 0)
				return r;
			if (next == nargs)
				return err_set(e, EINVAL, "printf: more conversions than the %u "
					       "values given", nargs);
			if ((r = convert(&o, spec, len, conv, args[next++], ops, e)) < 0)
				return r;
			continue;
		}
		put(&o, &c, 1);
	}
	return (int)o.len;
}
