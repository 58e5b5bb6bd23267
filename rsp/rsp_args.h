/* rsp/rsp_args.h — argument readers and reply builders for GDB remote packet
 * handlers. Owns: the parse cursor (struct rsp_cur), hex number/byte
 * decoding and encoding, and the growable reply buffer (struct rsp_buf).
 *
 * Conventions: every rsp_take_* returns 0 on success or -EINVAL (bad syntax)
 * / -E2BIG (does not fit) and then leaves the cursor where it was, so a
 * handler can try an alternative reading. Nothing here asserts on client
 * data. No I/O, no globals. */
#ifndef VMDB_RSP_ARGS_H
#define VMDB_RSP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* A read position inside a packet payload; the payload may contain NULs
 * (binary X data), so the end is explicit. */
struct rsp_cur {
	const char *p, *end;
};

static inline struct rsp_cur rsp_cur_make(const char *data, size_t len)
{
	return (struct rsp_cur){ .p = data, .end = data + len };
}

static inline bool rsp_at_end(const struct rsp_cur *c)
{
	return c->p >= c->end;
}

static inline size_t rsp_left(const struct rsp_cur *c)
{
	return c->p < c->end ? (size_t)(c->end - c->p) : 0;
}

/* A hex number running up to `sep` or to the end of the payload; consumes
 * sep when present. Fails on no digits, any non-hex character before sep,
 * or a value that does not fit in 64 bits (leading zeros are fine). */
int rsp_take_hex(struct rsp_cur *c, char sep, uint64_t *out) must_check;

/* The next character, whatever it is (fails only at the end). */
int rsp_take_char(struct rsp_cur *c, char *out) must_check;

/* Consume `want` if it is the next character; true if it was. For optional
 * separators ("vCont;c" vs "vCont;c:1"). */
bool rsp_skip_char(struct rsp_cur *c, char want);

/* Consume the literal string `lit` if the payload continues with it.
 * For argument keywords only ("features:", "target.xml:"); packet names are
 * matched whole by the dispatcher, never by prefix. */
bool rsp_skip_str(struct rsp_cur *c, const char *lit);

/* Copy the characters up to `sep` (or the end) into buf as a NUL-terminated
 * string; consumes sep. Fails with -E2BIG if they do not fit in size-1
 * bytes, -EINVAL if they contain a NUL. */
int rsp_take_str(struct rsp_cur *c, char sep, char *buf, size_t size) must_check;

/* Decode `len` hex characters into len/2 bytes at out. Fails (-EINVAL, out
 * possibly partly written) on an odd length or a non-hex character. */
int rsp_hex_decode(const char *hex, size_t len, uint8_t *out) must_check;

/* Encode n bytes as 2n lowercase hex characters plus a terminating NUL
 * (out needs 2n+1 bytes). */
void rsp_hex_encode(const uint8_t *bytes, size_t n, char *out);
/* The same without the NUL. out may also overlap bytes when it starts at
 * least n bytes before them (out + n <= bytes): encoding in place. */
void rsp_hex_expand(const uint8_t *bytes, size_t n, char *out);

/* Value of one hex digit, or -1. */
int rsp_hex_digit(int ch);

/* A growable reply. data is always NUL-terminated once anything was added
 * (it may also contain NULs). Errors are sticky: after a failed append,
 * err stays -ENOMEM and later appends do nothing, so a handler can build a
 * whole reply and check once. */
struct rsp_buf {
	char *data;
	size_t len, cap;
	int err;           /* 0 or -ENOMEM */
};

void rsp_buf_init(struct rsp_buf *b);
void rsp_buf_free(struct rsp_buf *b);
/* Empty the buffer (keeps its memory) and clear the sticky error. */
void rsp_buf_reset(struct rsp_buf *b);
int rsp_buf_append(struct rsp_buf *b, const void *data, size_t len);
int rsp_buf_putc(struct rsp_buf *b, char ch);
/* Arguments must not point into b->data (it may move). */
int rsp_buf_printf(struct rsp_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append n bytes as 2n lowercase hex characters. */
int rsp_buf_hex(struct rsp_buf *b, const void *bytes, size_t n);
/* Append v as a lowercase hex number of at least `width` digits (printf's
 * "%0*x" without the cost of a format: stop replies are built per step). */
int rsp_buf_hexnum(struct rsp_buf *b, uint64_t v, unsigned width);
/* Append a NUL-terminated string. */
int rsp_buf_str(struct rsp_buf *b, const char *str);

#endif
