/* rsp/rsp.c — GDB remote serial protocol framing (see rsp.h). */
#include "rsp/rsp.h"
#include "rsp/rsp_args.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define RSP_ESCAPE_CHAR   '}'
#define RSP_ESCAPE_XOR    0x20
#define RSP_RLE_CHAR      '*'
/* A run-length count character n means n - RSP_RLE_BIAS extra copies. */
#define RSP_RLE_BIAS      29
#define RSP_RLE_MIN_EXTRA 3            /* ' ': the first printable count */
#define RSP_RLE_MAX_EXTRA (126 - RSP_RLE_BIAS)

static const char rsp_hexdigits[] = "0123456789abcdef";

int rsp_init(struct rsp_conn *c, const struct rsp_ops *ops, void *opaque,
	     size_t max_packet)
{
	memset(c, 0, sizeof(*c));
	if (!ops || !ops->write || !ops->packet)
		return -EINVAL;
	if (max_packet < RSP_MIN_PACKET || max_packet > RSP_MAX_PACKET)
		return -EINVAL;
	c->in = malloc(max_packet + 1);
	if (!c->in)
		return -ENOMEM;
	c->ops = ops;
	c->opaque = opaque;
	c->max_packet = max_packet;
	c->state = RSP_ST_IDLE;
	return 0;
}

void rsp_fini(struct rsp_conn *c)
{
	free(c->in);
	free(c->out);
	free(c->fmt_buf);
	memset(c, 0, sizeof(*c));
}

void rsp_restart(struct rsp_conn *c)
{
	struct rsp_conn kept = *c;
	memset(c, 0, sizeof(*c));
	c->ops = kept.ops;
	c->opaque = kept.opaque;
	c->max_packet = kept.max_packet;
	c->state = RSP_ST_IDLE;
	c->in = kept.in;
	c->out = kept.out;
	c->out_cap = kept.out_cap;
	c->fmt_buf = kept.fmt_buf;
	c->fmt_cap = kept.fmt_cap;
}

size_t rsp_max_packet(const struct rsp_conn *c)
{
	return c->max_packet;
}

bool rsp_noack(const struct rsp_conn *c)
{
	return c->noack;
}

void rsp_set_noack(struct rsp_conn *c, bool noack)
{
	c->noack = noack;
	if (noack)
		c->unacked = false;
}

/* ---- receive side --------------------------------------------------- */

static void rsp_ack(struct rsp_conn *c, char ch)
{
	if (!c->noack)
		c->ops->write(c->opaque, &ch, 1);
}

static void rsp_start_packet(struct rsp_conn *c)
{
	c->state = RSP_ST_PACKET;
	c->in_len = 0;
	c->raw_len = 0;
	c->sum = 0;
	c->bad = false;
}

/* Store one decoded payload byte; past the limit the packet is only
 * marked bad so the rest of it is still read (and ignored) as payload. */
static void rsp_store(struct rsp_conn *c, char ch)
{
	if (c->in_len >= c->max_packet) {
		c->bad = true;
		return;
	}
	c->in[c->in_len++] = ch;
}

/* Expand a run: count character n repeats the previous decoded byte
 * n - 29 more times. Counts outside the printable range, or a '*' with
 * nothing before it, make the packet malformed. */
static void rsp_expand(struct rsp_conn *c, unsigned char n)
{
	if (n < RSP_RLE_MIN_EXTRA + RSP_RLE_BIAS || n > 126 || c->in_len == 0) {
		c->bad = true;
		return;
	}
	char prev = c->in[c->in_len - 1];
	for (int i = 0; i < n - RSP_RLE_BIAS && !c->bad; i++)
		rsp_store(c, prev);
}

static void rsp_deliver(struct rsp_conn *c, unsigned char got)
{
	c->state = RSP_ST_IDLE;
	if (c->bad || got != c->sum) {
		rsp_ack(c, '-');
		return;
	}
	rsp_ack(c, '+');
	c->in[c->in_len] = '\0';
	c->ops->packet(c->opaque, c->in, c->in_len);
}

static void rsp_peer_ack(struct rsp_conn *c, char ch)
{
	if (c->noack || !c->unacked)
		return;                 /* stray: nothing outstanding */
	if (ch == '+')
		c->unacked = false;
	else
		c->ops->write(c->opaque, c->out, c->out_len);
}

static void rsp_idle_byte(struct rsp_conn *c, unsigned char ch)
{
	switch (ch) {
	case '$':
		rsp_start_packet(c);
		break;
	case '+':
	case '-':
		rsp_peer_ack(c, (char)ch);
		break;
	case RSP_INTERRUPT:
		if (c->ops->interrupt)
			c->ops->interrupt(c->opaque);
		break;
	default:
		break;                  /* line noise between packets */
	}
}

/* A payload byte as sent: counts toward the checksum and the size limit. */
static bool rsp_raw_byte(struct rsp_conn *c, unsigned char ch)
{
	c->sum += ch;
	if (++c->raw_len > c->max_packet)
		c->bad = true;
	return !c->bad;
}

static void rsp_packet_byte(struct rsp_conn *c, unsigned char ch)
{
	if (ch == '#') {
		c->state = RSP_ST_CSUM1;
		return;
	}
	if (!rsp_raw_byte(c, ch))
		return;
	if (ch == RSP_ESCAPE_CHAR)
		c->state = RSP_ST_ESCAPE;
	else if (ch == RSP_RLE_CHAR)
		c->state = RSP_ST_REPEAT;
	else
		rsp_store(c, (char)ch);
}

/* The byte after '}' or '*'. A '#' there ends the packet early (the
 * sender broke the rules; the packet is rejected), so a well-formed packet
 * behind it is still found. */
static void rsp_modifier_byte(struct rsp_conn *c, unsigned char ch)
{
	enum rsp_state was = c->state;
	if (ch == '#') {
		c->bad = true;
		c->state = RSP_ST_CSUM1;
		return;
	}
	c->state = RSP_ST_PACKET;
	if (!rsp_raw_byte(c, ch))
		return;
	if (was == RSP_ST_ESCAPE)
		rsp_store(c, (char)(ch ^ RSP_ESCAPE_XOR));
	else
		rsp_expand(c, ch);
}

static void rsp_csum_byte(struct rsp_conn *c, unsigned char ch)
{
	int v = rsp_hex_digit(ch);
	if (v < 0)
		c->bad = true;          /* still consume two characters */
	if (c->state == RSP_ST_CSUM1) {
		c->csum_hi = (uint8_t)(v < 0 ? 0 : v);
		c->state = RSP_ST_CSUM2;
		return;
	}
	rsp_deliver(c, (unsigned char)(c->csum_hi << 4 | (v < 0 ? 0 : v)));
}

/* The whole state machine: every transition starts here. */
static void rsp_feed_byte(struct rsp_conn *c, unsigned char ch)
{
	if (ch == '$' && c->state != RSP_ST_IDLE) {
		/* '$' is never valid inside a packet: the previous one was cut
		 * off, and this is the start of the next. */
		rsp_start_packet(c);
		return;
	}
	switch (c->state) {
	case RSP_ST_IDLE:
		rsp_idle_byte(c, ch);
		break;
	case RSP_ST_PACKET:
		rsp_packet_byte(c, ch);
		break;
	case RSP_ST_ESCAPE:
	case RSP_ST_REPEAT:
		rsp_modifier_byte(c, ch);
		break;
	case RSP_ST_CSUM1:
	case RSP_ST_CSUM2:
		rsp_csum_byte(c, ch);
		break;
	}
}

void rsp_feed(struct rsp_conn *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i < len; i++)
		rsp_feed_byte(c, p[i]);
}

/* ---- send side ------------------------------------------------------ */

static bool rsp_needs_escape(unsigned char ch)
{
	return ch == '$' || ch == '#' || ch == RSP_ESCAPE_CHAR || ch == RSP_RLE_CHAR;
}

/* Extra copies a single '*' run may encode, at most `want`: counts whose
 * character would be '#' or '$' (6, 7 extra) are forbidden by the manual,
 * and we also avoid '*' and '}' so no reader can mistake the count for a
 * modifier. Returns 0 when a run would not save bytes. */
static int rsp_rle_extra(size_t want)
{
	int n = want > RSP_RLE_MAX_EXTRA ? RSP_RLE_MAX_EXTRA : (int)want;
	for (; n >= RSP_RLE_MIN_EXTRA; n--) {
		char cnt = (char)(n + RSP_RLE_BIAS);
		if (cnt != '#' && cnt != '$' && cnt != '*' && cnt != '}')
			return n;
	}
	return 0;
}

static int rsp_out_reserve(struct rsp_conn *c, size_t need)
{
	if (need <= c->out_cap)
		return 0;
	size_t cap = c->out_cap ? c->out_cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(c->out, cap);
	if (!p)
		return -ENOMEM;
	c->out = p;
	c->out_cap = cap;
	return 0;
}

/* ---- the encoder's fast path ---- */

/* Bytes copied as a whole when rsp_plain_block() clears them. */
#define RSP_BLOCK 64
_Static_assert(RSP_RLE_MIN_EXTRA == 3, "rsp_plain_block looks for runs of exactly four");

/* True when the slow path of rsp_encode would copy p[0, RSP_BLOCK) as it
 * is: no run of RSP_RLE_MIN_EXTRA + 1 equal bytes starts in it and (when
 * `escapes` asks) no byte needs an escape; *sum is then the block's sum.
 * Reads RSP_RLE_MIN_EXTRA bytes past the block; the caller guarantees
 * they exist. Hex replies of m and g, the large ones, almost always pass,
 * and then cost a copy and a sum. With SSE2 (every x86-64) 16 bytes a
 * round: a run of four starts at k when bits k, k+1 and k+2 of "p[k] ==
 * p[k+1]" are set, found for the whole block at once. */
#ifdef __SSE2__
static bool rsp_plain_block(const unsigned char *p, bool escapes, uint8_t *sum)
{
	const __m128i zero = _mm_setzero_si128();
	__m128i esc = zero, acc = zero;
	uint64_t same = 0;                 /* bit k: p[k] == p[k + 1] */
#pragma GCC unroll 4
	for (unsigned k = 0; k < RSP_BLOCK; k += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(p + k));
		__m128i next = _mm_loadu_si128((const __m128i *)(p + k + 1));
		same |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, next)) << k;
		if (escapes)
			esc = _mm_or_si128(esc, _mm_or_si128(
				_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('$')),
					     _mm_cmpeq_epi8(v, _mm_set1_epi8('#'))),
				_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(RSP_ESCAPE_CHAR)),
					     _mm_cmpeq_epi8(v, _mm_set1_epi8(RSP_RLE_CHAR)))));
		acc = _mm_add_epi64(acc, _mm_sad_epu8(v, zero));    /* two 64-bit byte sums */
	}
	/* "p[k] == p[k+1]" for k = 64, 65, past the block */
	uint64_t past = (uint64_t)(p[RSP_BLOCK] == p[RSP_BLOCK + 1]) |
			(uint64_t)(p[RSP_BLOCK + 1] == p[RSP_BLOCK + 2]) << 1;
	uint64_t runs = same & (same >> 1 | past << 63) & (same >> 2 | past << 62);
	if (runs || _mm_movemask_epi8(esc))
		return false;
	*sum = (uint8_t)(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
	return true;
}
#else
static bool rsp_plain_block(const unsigned char *p, bool escapes, uint8_t *sum)
{
	unsigned char bad = 0;
	uint8_t s = 0;
	for (size_t k = 0; k < RSP_BLOCK; k++) {
		unsigned char ch = p[k];
		bad |= (unsigned char)((escapes && rsp_needs_escape(ch)) |
				       ((ch == p[k + 1]) & (ch == p[k + 2]) & (ch == p[k + 3])));
		s += ch;
	}
	*sum = s;
	return bad == 0;
}
#endif

/* How many of p[0, most) equal ch before the first that does not. Long
 * runs are what a reply of untouched (zero) guest memory is made of. */
static size_t rsp_same_bytes(const unsigned char *p, size_t most, unsigned char ch)
{
	size_t k = 0;
#ifdef __SSE2__
	const __m128i want = _mm_set1_epi8((char)ch);
	for (; k + 16 <= most; k += 16) {
		unsigned eq = (unsigned)_mm_movemask_epi8(
			_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + k)), want));
		if (eq != 0xffff)
			return k + (size_t)__builtin_ctz(~eq);
	}
#endif
	while (k < most && p[k] == ch)
		k++;
	return k;
}

/* Where the byte-by-byte encoder has work to do (an escape, or a run of
 * RSP_RLE_MIN_EXTRA + 1 equal bytes starting there) in a block that
 * rsp_plain_block() refused: the plain bytes before it are still copied
 * as they are. */
static size_t rsp_plain_prefix(const unsigned char *p)
{
	size_t k = 0;
	while (k < RSP_BLOCK && !rsp_needs_escape(p[k]) &&
	       !(p[k] == p[k + 1] && p[k] == p[k + 2] && p[k] == p[k + 3]))
		k++;
	return k;
}

/* Move n plain bytes to the frame. In place (rsp_send_hex_space) the
 * frame trails the payload by what runs saved so far: nothing to move
 * until the first run, an overlapping move after it. */
static void rsp_move_plain(char *o, const unsigned char *p, size_t n)
{
	if ((const unsigned char *)o != p)
		memmove(o, p, n);
}

/* Encode payload into c->out as "$...#cs". Worst case every byte is
 * escaped: 2 * len + 4. Runs are only encoded for bytes that need no
 * escape, so '*' always follows a plain character. Stretches that need
 * neither escapes nor runs (nearly all of a hex reply) are found a block
 * at a time and copied whole; the output is the same byte for byte.
 * The payload may also be c->out + 1 itself when none of it needs an
 * escape (`escapes` false: hex digits): every write then lands at or
 * before the byte being read. */
static void rsp_encode(struct rsp_conn *c, const unsigned char *p, size_t len, bool escapes)
{
	char *o = c->out;
	size_t n = 0;
	uint8_t sum = 0;

	o[n++] = '$';
	for (size_t i = 0; i < len;) {
		if (i + RSP_BLOCK + RSP_RLE_MIN_EXTRA <= len) {
			uint8_t block_sum;
			size_t k = RSP_BLOCK;
			if (!rsp_plain_block(p + i, escapes, &block_sum)) {
				k = rsp_plain_prefix(p + i);
				block_sum = 0;
				for (size_t j = 0; j < k; j++)
					block_sum += p[i + j];
			}
			if (k) {
				rsp_move_plain(o + n, p + i, k);
				sum += block_sum;
				n += k;
				i += k;
				continue;
			}
		}
		unsigned char ch = p[i];
		if (rsp_needs_escape(ch)) {
			o[n++] = RSP_ESCAPE_CHAR;
			o[n++] = (char)(ch ^ RSP_ESCAPE_XOR);
			sum += RSP_ESCAPE_CHAR + (ch ^ RSP_ESCAPE_XOR);
			i++;
			continue;
		}
		o[n++] = (char)ch;
		sum += ch;
		/* the common case: no run worth encoding starts here */
		if (i + RSP_RLE_MIN_EXTRA >= len || p[i + 1] != ch || p[i + 2] != ch ||
		    p[i + 3] != ch) {
			i++;
			continue;
		}
		/* scan no further than one run can encode: linear overall */
		size_t most = len - i - 1 < RSP_RLE_MAX_EXTRA ? len - i - 1 : RSP_RLE_MAX_EXTRA;
		size_t same = rsp_same_bytes(p + i + 1, most, ch);
		i++;
		int extra = rsp_rle_extra(same);
		if (extra) {
			o[n++] = RSP_RLE_CHAR;
			o[n++] = (char)(extra + RSP_RLE_BIAS);
			sum += RSP_RLE_CHAR + extra + RSP_RLE_BIAS;
			i += (size_t)extra;
		}
	}
	o[n++] = '#';
	o[n++] = rsp_hexdigits[sum >> 4];
	o[n++] = rsp_hexdigits[sum & 0xf];
	c->out_len = n;
}

int rsp_send(struct rsp_conn *c, const void *payload, size_t len)
{
	if (len > (SIZE_MAX - 4) / 2)
		return -ENOMEM;
	int rc = rsp_out_reserve(c, 2 * len + 4);
	if (rc)
		return rc;
	rsp_encode(c, payload, len, true);
	c->unacked = !c->noack;
	c->ops->write(c->opaque, c->out, c->out_len);
	return 0;
}

uint8_t *rsp_hex_space(struct rsp_conn *c, size_t n)
{
	if (n > (SIZE_MAX - 4) / 2 || rsp_out_reserve(c, 2 * n + 4) < 0)
		return NULL;
	c->unacked = false;     /* out no longer holds the last packet */
	/* the frame is "$" + 2n digits + "#cs": the bytes sit in its second
	 * half, where encoding them front to back never overtakes them */
	return (uint8_t *)c->out + n + 4;
}

void rsp_send_hex_space(struct rsp_conn *c, size_t n)
{
	const unsigned char *digits = (const unsigned char *)c->out + 1;
	rsp_hex_expand((const uint8_t *)c->out + n + 4, n, c->out + 1);
	rsp_encode(c, digits, 2 * n, false);     /* hex needs no escapes: in place */
	c->unacked = !c->noack;
	c->ops->write(c->opaque, c->out, c->out_len);
}

int rsp_sendf(struct rsp_conn *c, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(c->fmt_buf, c->fmt_cap, fmt, ap);
	va_end(ap);
	if (n < 0) {
		va_end(ap2);
		return -EINVAL;
	}
	if ((size_t)n >= c->fmt_cap) {
		char *p = realloc(c->fmt_buf, (size_t)n + 1);
		if (!p) {
			va_end(ap2);
			return -ENOMEM;
		}
		c->fmt_buf = p;
		c->fmt_cap = (size_t)n + 1;
		vsnprintf(c->fmt_buf, c->fmt_cap, fmt, ap2);
	}
	va_end(ap2);
	return rsp_send(c, c->fmt_buf, (size_t)n);
}
