/* rsp/rsp_args.c — argument readers and reply builders (see rsp_args.h). */
#include "rsp/rsp_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

int rsp_hex_digit(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* End of the field that starts at c->p: the first `sep`, or the end. */
static const char *rsp_field_end(const struct rsp_cur *c, char sep)
{
	const char *q = c->p;
	while (q < c->end && *q != sep)
		q++;
	return q;
}

/* Step past a field ending at q, and past sep if it is there. */
static void rsp_field_done(struct rsp_cur *c, const char *q)
{
	c->p = q < c->end ? q + 1 : q;
}

int rsp_take_hex(struct rsp_cur *c, char sep, uint64_t *out)
{
	const char *q = rsp_field_end(c, sep);
	uint64_t v = 0;

	if (q == c->p)
		return -EINVAL;
	for (const char *s = c->p; s < q; s++) {
		int d = rsp_hex_digit((unsigned char)*s);
		if (d < 0)
			return -EINVAL;
		if (v >> 60)
			return -EINVAL;       /* a fifth nibble would not fit */
		v = v << 4 | (uint64_t)d;
	}
	rsp_field_done(c, q);
	*out = v;
	return 0;
}

int rsp_take_char(struct rsp_cur *c, char *out)
{
	if (rsp_at_end(c))
		return -EINVAL;
	*out = *c->p++;
	return 0;
}

bool rsp_skip_char(struct rsp_cur *c, char want)
{
	if (rsp_at_end(c) || *c->p != want)
		return false;
	c->p++;
	return true;
}

bool rsp_skip_str(struct rsp_cur *c, const char *lit)
{
	size_t n = strlen(lit);
	if (rsp_left(c) < n || memcmp(c->p, lit, n) != 0)
		return false;
	c->p += n;
	return true;
}

int rsp_take_str(struct rsp_cur *c, char sep, char *buf, size_t size)
{
	const char *q = rsp_field_end(c, sep);
	size_t n = (size_t)(q - c->p);

	if (size == 0 || n > size - 1)
		return -E2BIG;
	if (memchr(c->p, '\0', n))
		return -EINVAL;
	memcpy(buf, c->p, n);
	buf[n] = '\0';
	rsp_field_done(c, q);
	return 0;
}

int rsp_hex_decode(const char *hex, size_t len, uint8_t *out)
{
	if (len % 2)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 2) {
		int hi = rsp_hex_digit((unsigned char)hex[i]);
		int lo = rsp_hex_digit((unsigned char)hex[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* "000102...ff": the two hex digits of every byte, for one load per byte. */
static const char rsp_hex_pairs[513] =
	"000102030405060708090a0b0c0d0e0f"
	"101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f"
	"303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f"
	"505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f"
	"707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f"
	"909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
	"b0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"
	"d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeef"
	"f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

#ifdef __SSE2__
/* Sixteen nibbles (0-15) as lowercase hex digits. */
static __m128i rsp_hex_digits16(__m128i nibbles)
{
	__m128i digits = _mm_add_epi8(nibbles, _mm_set1_epi8('0'));
	__m128i letters = _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)),
					_mm_set1_epi8('a' - '0' - 10));
	return _mm_add_epi8(digits, letters);
}
#endif

/* Sixteen bytes per round where SSE2 exists (every x86-64): a 64 KiB
 * memory reply is encoded in a few microseconds instead of tens. Each
 * round loads its bytes before it stores their digits, which is what
 * makes the in-place use (out + n <= bytes) safe. */
void rsp_hex_expand(const uint8_t *bytes, size_t n, char *out)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i low = _mm_set1_epi8(0x0f);
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(bytes + i));
		__m128i hi = rsp_hex_digits16(_mm_and_si128(_mm_srli_epi16(v, 4), low));
		__m128i lo = rsp_hex_digits16(_mm_and_si128(v, low));
		_mm_storeu_si128((__m128i *)(out + 2 * i), _mm_unpacklo_epi8(hi, lo));
		_mm_storeu_si128((__m128i *)(out + 2 * i + 16), _mm_unpackhi_epi8(hi, lo));
	}
#endif
	for (; i < n; i++) {
		uint8_t b = bytes[i];
		memcpy(out + 2 * i, rsp_hex_pairs + 2 * b, 2);
	}
}

void rsp_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
	rsp_hex_expand(bytes, n, out);
	out[2 * n] = '\0';
}

/* ---- reply buffer --------------------------------------------------- */

void rsp_buf_init(struct rsp_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void rsp_buf_free(struct rsp_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

void rsp_buf_reset(struct rsp_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Make room for `more` bytes plus the terminating NUL. */
static int rsp_buf_grow(struct rsp_buf *b, size_t more)
{
	if (b->err)
		return b->err;
	if (more > SIZE_MAX / 2 - b->len - 1)
		return b->err = -ENOMEM;
	size_t need = b->len + more + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return b->err = -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int rsp_buf_append(struct rsp_buf *b, const void *data, size_t len)
{
	int rc = rsp_buf_grow(b, len);
	if (rc)
		return rc;
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int rsp_buf_putc(struct rsp_buf *b, char ch)
{
	return rsp_buf_append(b, &ch, 1);
}

int rsp_buf_printf(struct rsp_buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[128];

	if (b->err)
		return b->err;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return rsp_buf_append(b, small, (size_t)n);
	int rc = rsp_buf_grow(b, (size_t)n);
	if (rc)
		return rc;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int rsp_buf_hexnum(struct rsp_buf *b, uint64_t v, unsigned width)
{
	char digits[16];
	unsigned n = 0;
	do {
		digits[sizeof(digits) - ++n] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n < width && n < sizeof(digits))
		digits[sizeof(digits) - ++n] = '0';
	return rsp_buf_append(b, digits + sizeof(digits) - n, n);
}

int rsp_buf_str(struct rsp_buf *b, const char *str)
{
	return rsp_buf_append(b, str, strlen(str));
}

int rsp_buf_hex(struct rsp_buf *b, const void *bytes, size_t n)
{
	if (n > SIZE_MAX / 4)
		return b->err = -ENOMEM;
	int rc = rsp_buf_grow(b, 2 * n);
	if (rc)
		return rc;
	rsp_hex_encode(bytes, n, b->data + b->len);
	b->len += 2 * n;
	return 0;
}
