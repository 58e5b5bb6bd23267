/* tests/unit/rsp_test.c — unit tests of rsp/ (framing and argument helpers).
 *
 * Transcripts are plain strings: bytes fed in -> bytes written back and
 * events delivered ("P[payload]" per packet, "I" per interrupt). In
 * transcript strings "#XX" stands for '#' plus the correct checksum of the
 * bytes since the last '$', so the table stays readable; a few golden
 * packets spell their checksum out. Every transcript is fed three ways (one
 * chunk, byte by byte, random chunks) and must give the same result.
 *
 * Prints one line per case and ends with "rsp: N passed, M failed"; exits
 * non-zero on any failure. */
#include "rsp/rsp.h"
#include "rsp/rsp_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tally {
	int passed, failed;
};

/* What a connection did: bytes it wrote, and packets/interrupts it
 * delivered. */
struct rec {
	struct rsp_conn *conn;
	struct rsp_buf out;
	struct rsp_buf ev;
	bool send_fail;
};

static void rec_write(void *opaque, const void *buf, size_t len)
{
	struct rec *r = opaque;
	(void)rsp_buf_append(&r->out, buf, len);
}

/* Answers QStartNoAckMode the way the gdbserver will: OK, then no-ack. */
static void rec_packet(void *opaque, const char *data, size_t len)
{
	struct rec *r = opaque;
	if (data[len] != '\0')
		(void)rsp_buf_printf(&r->ev, "<not NUL-terminated>");
	(void)rsp_buf_append(&r->ev, "P[", 2);
	(void)rsp_buf_append(&r->ev, data, len);
	(void)rsp_buf_append(&r->ev, "]", 1);
	if (len == 15 && memcmp(data, "QStartNoAckMode", 15) == 0) {
		if (rsp_send(r->conn, "OK", 2))
			r->send_fail = true;
		rsp_set_noack(r->conn, true);
	}
}

static void rec_interrupt(void *opaque)
{
	struct rec *r = opaque;
	(void)rsp_buf_append(&r->ev, "I", 1);
}

static const struct rsp_ops rec_ops = {
	.write = rec_write,
	.packet = rec_packet,
	.interrupt = rec_interrupt,
};

static int rec_open(struct rec *r, struct rsp_conn *c, size_t max_packet, bool noack)
{
	memset(r, 0, sizeof(*r));
	rsp_buf_init(&r->out);
	rsp_buf_init(&r->ev);
	r->conn = c;
	int rc = rsp_init(c, &rec_ops, r, max_packet);
	if (rc == 0)
		rsp_set_noack(c, noack);
	return rc;
}

static void rec_close(struct rec *r)
{
	rsp_fini(r->conn);
	rsp_buf_free(&r->out);
	rsp_buf_free(&r->ev);
}

/* ---- reporting ------------------------------------------------------ */

/* Printable rendering of bytes for failure messages. */
static void show(struct rsp_buf *dst, const char *p, size_t n)
{
	rsp_buf_putc(dst, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '\\' && ch != '"')
			rsp_buf_putc(dst, (char)ch);
		else
			rsp_buf_printf(dst, "\\x%02x", ch);
	}
	rsp_buf_putc(dst, '"');
	if (n > 200)
		rsp_buf_printf(dst, " (%zu bytes)", n);
}

static bool same(const struct rsp_buf *got, const char *want, size_t want_len)
{
	return got->len == want_len && (want_len == 0 || memcmp(got->data, want, want_len) == 0);
}

static void report(struct tally *t, const char *name, const char *fmt_why)
{
	if (!fmt_why) {
		t->passed++;
		printf("ok   %s\n", name);
	} else {
		t->failed++;
		printf("FAIL %s: %s\n", name, fmt_why);
	}
}

/* Compare and report; `what` names the stream ("written", "delivered"). */
static bool expect_bytes(struct rsp_buf *why, const char *what, const struct rsp_buf *got,
			 const char *want, size_t want_len)
{
	if (same(got, want, want_len))
		return true;
	rsp_buf_printf(why, "%s ", what);
	show(why, got->data ? got->data : "", got->len);
	rsp_buf_printf(why, ", expected ");
	show(why, want, want_len);
	rsp_buf_printf(why, "; ");
	return false;
}

/* ---- helpers -------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: fixed seed, same sequence on every run */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static uint8_t sum_bytes(const char *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += (uint8_t)p[i];
	return s;
}

/* Expand "#XX" placeholders into the checksum of the bytes since the last
 * '$'. */
static void expand(struct rsp_buf *dst, const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '$')
			start = i + 1;
		if (s[i] == '#' && i + 2 < n && s[i + 1] == 'X' && s[i + 2] == 'X') {
			rsp_buf_printf(dst, "#%02x", sum_bytes(s + start, i - start));
			i += 2;
			continue;
		}
		rsp_buf_putc(dst, s[i]);
	}
}

/* ---- transcripts ---------------------------------------------------- */

struct transcript {
	const char *name;
	bool noack;
	size_t max_packet;      /* 0: 0x20000 */
	const char *in;
	const char *out;        /* bytes written back */
	const char *events;     /* packets and interrupts delivered */
};

static const struct transcript transcripts[] = {
	/* checksums */
	{ "golden g", false, 0, "$g#67", "+", "P[g]" },
	{ "golden qSupported", false, 0,
	  "$qSupported:multiprocess+;swbreak+;hwbreak+#65", "+",
	  "P[qSupported:multiprocess+;swbreak+;hwbreak+]" },
	{ "uppercase checksum", false, 0, "$m0,4#FD", "+", "P[m0,4]" },
	{ "empty packet", false, 0, "$#00", "+", "P[]" },
	{ "bad checksum", false, 0, "$g#68", "-", "" },
	{ "bad then retransmit", false, 0, "$g#66$g#67", "-+", "P[g]" },
	{ "non-hex checksum", false, 0, "$g#6z$g#67", "-+", "P[g]" },
	/* "00" sums to 0x60: a non-hex digit must not count as 0 */
	{ "non-hex checksum digit is not 0", false, 0, "$00#6z$00#z0$00#60", "--+", "P[00]" },
	{ "noack good", true, 0, "$g#67", "", "P[g]" },
	{ "noack bad dropped", true, 0, "$g#00$m0,1#XX", "", "P[m0,1]" },
	{ "two packets", false, 0, "$g#67$c#63", "++", "P[g]P[c]" },
	/* acknowledgments from the peer with nothing outstanding */
	{ "stray acks", false, 0, "+-+$g#67-", "+", "P[g]" },
	{ "noack stray acks", true, 0, "+-$g#67", "", "P[g]" },
	{ "QStartNoAckMode", false, 0,
	  "$QStartNoAckMode#b0+$g#67$c#63", "+$OK#9a",
	  "P[QStartNoAckMode]P[g]P[c]" },
	/* escapes in */
	{ "escapes in", false, 0, "$X0,4:}\x03}\x04}]}\n#XX", "+", "P[X0,4:#$}*]" },
	{ "raw 0x03 in packet is data", false, 0, "$a\x03" "b#XX", "+", "P[a\x03" "b]" },
	{ "escape then '#'", false, 0, "$a}#XX$g#67", "-+", "P[g]" },
	/* run-length in */
	{ "rle 0000", false, 0, "$0* #XX", "+", "P[0000]" },
	{ "rle 7 zeros", false, 0, "$0*\"0#XX", "+", "P[0000000]" },
	{ "rle max count", false, 0, "$a*~#XX", "+",
	  "P[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]" },
	{ "rle of escaped char", false, 0, "$}]* #XX", "+", "P[}}}}]" },
	{ "rle twice", false, 0, "$x* * #XX", "+", "P[xxxxxxx]" },
	{ "rle with nothing before", false, 0, "$* #XX$g#67", "-+", "P[g]" },
	{ "rle count too small", false, 0, "$0*\x1f#XX$g#67", "-+", "P[g]" },
	{ "rle count too big", false, 0, "$0*\x7f#XX$g#67", "-+", "P[g]" },
	{ "rle then '#'", false, 0, "$0*#XX$g#67", "-+", "P[g]" },
	/* interrupts */
	{ "interrupt", false, 0, "\x03", "", "I" },
	{ "interrupt between packets", false, 0, "$g#67\x03$c#63\x03\x03", "++", "P[g]IP[c]II" },
	{ "noack interrupt", true, 0, "\x03$g#67", "", "IP[g]" },
	/* oversized packets (max_packet 64) */
	{ "exactly max", false, 64,
	  "$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef#XX", "+",
	  "P[0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef]" },
	{ "one over max", false, 64,
	  "$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefg#XX$g#67", "-+",
	  "P[g]" },
	{ "oversized hides 0x03", false, 64,
	  "$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\x03\x03#XX$g#67",
	  "-+", "P[g]" },
	{ "oversized by rle", false, 64, "$a*~#XX$g#67", "-+", "P[g]" },
	{ "oversized noack", true, 64,
	  "$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefg#XX$g#67", "",
	  "P[g]" },
	{ "oversized without end", false, 64,
	  "$0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefgh$g#67", "+",
	  "P[g]" },
	/* '$' restarts, garbage, truncation */
	{ "dollar restarts packet", false, 0, "$abc$g#67", "+", "P[g]" },
	{ "dollar in checksum", false, 0, "$abc#6$g#67", "+", "P[g]" },
	{ "dollar after escape", false, 0, "$abc}$g#67", "+", "P[g]" },
	{ "dollar after star", false, 0, "$abc*$g#67", "+", "P[g]" },
	{ "many dollars", false, 0, "$$$$g#67", "+", "P[g]" },
	{ "garbage before", false, 0, "hello\r\n\xff#67 $g#67", "+", "P[g]" },
	{ "garbage after", false, 0, "$g#67zz#12", "+", "P[g]" },
	{ "truncated checksum at end", false, 0, "$g#67$c#6", "+", "P[g]" },
	{ "truncated packet at end", false, 0, "$g#67$cabc", "+", "P[g]" },
};

/* Feed `in` in chunks chosen by mode: 0 one chunk, 1 byte by byte,
 * 2 random chunk sizes. */
static void feed_mode(struct rsp_conn *c, const char *in, size_t n, int mode, uint64_t *rng)
{
	size_t i = 0;
	while (i < n) {
		size_t k = n - i;
		if (mode == 1)
			k = 1;
		else if (mode == 2)
			k = 1 + rng_next(rng) % (k < 7 ? k : 7);
		rsp_feed(c, in + i, k);
		i += k;
	}
}

static void run_transcript(struct tally *t, const struct transcript *tc, uint64_t *rng)
{
	static const char *const modes[] = { "one chunk", "byte by byte", "random chunks" };
	struct rsp_buf in, out, ev, why, name;
	rsp_buf_init(&in);
	rsp_buf_init(&out);
	rsp_buf_init(&ev);
	expand(&in, tc->in, strlen(tc->in));
	expand(&out, tc->out, strlen(tc->out));
	expand(&ev, tc->events, strlen(tc->events));

	for (int mode = 0; mode < 3; mode++) {
		struct rsp_conn c;
		struct rec r;
		rsp_buf_init(&why);
		rsp_buf_init(&name);
		rsp_buf_printf(&name, "transcript %s (%s)", tc->name, modes[mode]);
		if (rec_open(&r, &c, tc->max_packet ? tc->max_packet : 0x20000, tc->noack)) {
			report(t, name.data, "rsp_init failed");
		} else {
			feed_mode(&c, in.data, in.len, mode, rng);
			bool ok = expect_bytes(&why, "written", &r.out, out.data, out.len);
			ok &= expect_bytes(&why, "delivered", &r.ev, ev.data, ev.len);
			if (r.send_fail) {
				rsp_buf_printf(&why, "rsp_send failed");
				ok = false;
			}
			report(t, name.data, ok ? NULL : why.data);
			rec_close(&r);
		}
		rsp_buf_free(&why);
		rsp_buf_free(&name);
	}
	rsp_buf_free(&in);
	rsp_buf_free(&out);
	rsp_buf_free(&ev);
}

/* ---- sending -------------------------------------------------------- */

struct send_case {
	const char *name;
	const char *payload;
	const char *framed;     /* "#XX" expanded as in transcripts */
};

static const struct send_case send_cases[] = {
	{ "send OK golden", "OK", "$OK#9a" },
	{ "send empty", "", "$#00" },
	{ "send escapes", "a$b#c}d*e", "$a}\x04" "b}\x03" "c}]d}\ne#XX" },
	{ "send 3 same: no rle", "000", "$000#XX" },
	{ "send 4 same", "0000", "$0* #XX" },
	{ "send 5 same", "00000", "$0*!#XX" },
	{ "send 6 same", "000000", "$0*\"#XX" },
	{ "send 7 same: count '#' skipped", "0000000", "$0*\"0#XX" },
	{ "send 8 same: count '$' skipped", "00000000", "$0*\"00#XX" },
	{ "send 9 same", "000000000", "$0*%#XX" },
	{ "send 14 same: count '*' skipped", "00000000000000", "$0*)0#XX" },
	{ "send escaped run not rle'd", "$$$$", "$}\x04}\x04}\x04}\x04#XX" },
	{ "send run after escape", "}aaaa", "$}]a* #XX" },
};

static void run_send_case(struct tally *t, const struct send_case *sc)
{
	struct rsp_conn c;
	struct rec r;
	struct rsp_buf want, why;
	rsp_buf_init(&want);
	rsp_buf_init(&why);
	expand(&want, sc->framed, strlen(sc->framed));
	if (rec_open(&r, &c, 0x20000, false)) {
		report(t, sc->name, "rsp_init failed");
	} else {
		int rc = rsp_send(&c, sc->payload, strlen(sc->payload));
		bool ok = rc == 0 && expect_bytes(&why, "written", &r.out, want.data, want.len);
		report(t, sc->name, ok ? NULL : (rc ? "rsp_send failed" : why.data));
		rec_close(&r);
	}
	rsp_buf_free(&want);
	rsp_buf_free(&why);
}

/* Check one step of an ack conversation: feed `in`, expect `out` written. */
static bool ack_step(struct rec *r, struct rsp_buf *why, const char *in, const char *out)
{
	rsp_buf_reset(&r->out);
	rsp_feed(r->conn, in, strlen(in));
	return expect_bytes(why, in, &r->out, out, strlen(out));
}

static void test_ack_retransmit(struct tally *t)
{
	struct rsp_conn c;
	struct rec r;
	struct rsp_buf why;
	rsp_buf_init(&why);
	if (rec_open(&r, &c, 0x20000, false)) {
		report(t, "retransmit on '-'", "rsp_init failed");
		return;
	}
	bool ok = rsp_sendf(&c, "T%02xthread:%x;", 5, 1) == 0;
	ok &= expect_bytes(&why, "sent", &r.out, "$T05thread:1;#d7", 16);
	ok &= ack_step(&r, &why, "-", "$T05thread:1;#d7");
	ok &= ack_step(&r, &why, "--", "$T05thread:1;#d7$T05thread:1;#d7");
	ok &= ack_step(&r, &why, "+", "");
	ok &= ack_step(&r, &why, "-", "");          /* acked: stray '-' ignored */
	ok &= rsp_send(&c, "OK", 2) == 0;
	ok &= rsp_send(&c, "E01", 3) == 0;          /* newer send replaces kept one */
	ok &= ack_step(&r, &why, "-", "$E01#a6");
	report(t, "retransmit on '-'", ok ? NULL : why.data);
	rec_close(&r);
	rsp_buf_free(&why);

	rsp_buf_init(&why);
	if (rec_open(&r, &c, 0x20000, true)) {
		report(t, "noack: no retransmit", "rsp_init failed");
		return;
	}
	ok = rsp_send(&c, "OK", 2) == 0;
	ok &= ack_step(&r, &why, "-", "");
	report(t, "noack: no retransmit", ok ? NULL : why.data);
	rec_close(&r);
	rsp_buf_free(&why);
}

static void test_sendf_long(struct tally *t)
{
	struct rsp_conn c;
	struct rec r;
	if (rec_open(&r, &c, 0x20000, true)) {
		report(t, "sendf long", "rsp_init failed");
		return;
	}
	/* longer than any first guess, and RLE'd on the way out */
	bool ok = rsp_sendf(&c, "%s%0500d", "m", 7) == 0;
	struct rec r2;
	struct rsp_conn c2;
	ok &= rec_open(&r2, &c2, 0x20000, true) == 0;
	rsp_feed(&c2, r.out.data, r.out.len);
	ok &= r2.ev.len == 504 && memcmp(r2.ev.data, "P[m000", 6) == 0 &&
	      r2.ev.data[502] == '7';
	ok &= r.out.len < 100;
	report(t, "sendf long", ok ? NULL : "round trip of a 501-byte printf payload failed");
	rec_close(&r2);
	rec_close(&r);
}

/* A random payload biased toward runs and the bytes that need escaping. */
static size_t random_payload(uint64_t *rng, uint8_t *buf, size_t max)
{
	static const uint8_t special[] = { '$', '#', '}', '*', 0x03, 0, '+', '-', ' ', '"', '0' };
	size_t len = rng_next(rng) % (max + 1);
	for (size_t i = 0; i < len;) {
		uint64_t v = rng_next(rng);
		uint8_t b = (v & 3) == 0 ? special[(v >> 8) % sizeof(special)] : (uint8_t)(v >> 16);
		size_t run = (v >> 32) % 4 == 0 ? 1 + (v >> 40) % 200 : 1;
		for (size_t k = 0; k < run && i < len; k++)
			buf[i++] = b;
	}
	return len;
}

/* Random payloads through send -> feed must come back unchanged, the frame
 * must hold no bare '$'/'#', and RLE must never grow the frame. */
static void test_round_trip(struct tally *t, uint64_t *rng)
{
	enum { ROUNDS = 5000, MAXLEN = 3000 };
	static uint8_t payload[MAXLEN];
	struct rsp_conn tx, rx;
	struct rec rt, rr;
	char why[256] = "";
	int bad = 0;

	if (rec_open(&rt, &tx, 0x20000, true) || rec_open(&rr, &rx, 0x20000, true)) {
		report(t, "round trip", "rsp_init failed");
		return;
	}
	for (int round = 0; round < ROUNDS && !bad; round++) {
		size_t len = random_payload(rng, payload, MAXLEN);
		rsp_buf_reset(&rt.out);
		rsp_buf_reset(&rr.ev);
		if (rsp_send(&tx, payload, len)) {
			snprintf(why, sizeof(why), "round %d: rsp_send failed", round);
			bad++;
			break;
		}
		const char *f = rt.out.data;
		size_t flen = rt.out.len;
		if (flen > 2 * len + 4 || memchr(f + 1, '$', flen - 1) ||
		    memchr(f + 1, '#', flen - 4)) {
			snprintf(why, sizeof(why), "round %d: frame of %zu bytes malformed", round, len);
			bad++;
		}
		/* feed in two pieces split at a random point */
		size_t cut = rng_next(rng) % (flen + 1);
		rsp_feed(&rx, f, cut);
		rsp_feed(&rx, f + cut, flen - cut);
		if (rr.ev.len != len + 3 || memcmp(rr.ev.data + 2, payload, len) != 0) {
			snprintf(why, sizeof(why), "round %d: %zu-byte payload came back as %zu bytes",
				 round, len, rr.ev.len >= 3 ? rr.ev.len - 3 : 0);
			bad++;
		}
	}
	char name[64];
	snprintf(name, sizeof(name), "round trip of %d random payloads", ROUNDS);
	report(t, name, bad ? why : NULL);
	rec_close(&rt);
	rec_close(&rr);
}

/* The sending rules written out one byte at a time (escape '$', '#', '}',
 * '*'; a run of four or more plain bytes becomes "c*N" with N never '#',
 * '$', '*' or '}'): rsp_send copies plain stretches a block at a time and
 * must still produce exactly these bytes. */
static size_t ref_encode(const uint8_t *p, size_t len, char *o)
{
	size_t n = 0;
	uint8_t sum = 0;
	o[n++] = '$';
	for (size_t i = 0; i < len;) {
		uint8_t ch = p[i++];
		if (ch == '$' || ch == '#' || ch == '}' || ch == '*') {
			o[n++] = '}';
			o[n++] = (char)(ch ^ 0x20);
			sum += '}' + (ch ^ 0x20);
			continue;
		}
		o[n++] = (char)ch;
		sum += ch;
		size_t more = 0;
		while (more < 97 && i + more < len && p[i + more] == ch)
			more++;
		while (more >= 3 && (more + 29 == '#' || more + 29 == '$' || more + 29 == '*' ||
				     more + 29 == '}'))
			more--;
		if (more >= 3) {
			o[n++] = '*';
			o[n++] = (char)(more + 29);
			sum += '*' + more + 29;
			i += more;
		}
	}
	n += (size_t)sprintf(o + n, "#%02x", sum);
	return n;
}

/* A payload like an m reply: hex digits with, here and there, runs of
 * every length and bytes that need escaping, so that block boundaries
 * fall everywhere around them. */
static size_t hexish_payload(uint64_t *rng, uint8_t *buf, size_t max)
{
	static const char digits[] = "0123456789abcdef$#}*";
	size_t len = rng_next(rng) % (max + 1);
	for (size_t i = 0; i < len;) {
		uint64_t v = rng_next(rng);
		uint8_t b = (uint8_t)digits[(v & 0xff) % ((v >> 8) % 64 == 0 ? 20 : 16)];
		size_t run = (v >> 16) % 32 == 0 ? 1 + (v >> 24) % 120 : 1;
		for (size_t k = 0; k < run && i < len; k++)
			buf[i++] = b;
	}
	return len;
}

static void test_send_matches_reference(struct tally *t, uint64_t *rng)
{
	enum { ROUNDS = 3000, MAXLEN = 4000 };
	static uint8_t payload[MAXLEN];
	static char want[2 * MAXLEN + 8];
	struct rsp_conn c;
	struct rec r;
	char why[160] = "";

	if (rec_open(&r, &c, 0x20000, true)) {
		report(t, "send = reference encoder", "rsp_init failed");
		return;
	}
	for (int round = 0; round < ROUNDS && !why[0]; round++) {
		size_t len = round % 2 ? hexish_payload(rng, payload, MAXLEN)
				       : random_payload(rng, payload, MAXLEN);
		size_t wlen = ref_encode(payload, len, want);
		rsp_buf_reset(&r.out);
		if (rsp_send(&c, payload, len))
			snprintf(why, sizeof(why), "round %d: rsp_send failed", round);
		else if (r.out.len != wlen || memcmp(r.out.data, want, wlen) != 0)
			snprintf(why, sizeof(why), "round %d: %zu-byte payload framed as %zu bytes, "
				 "reference %zu", round, len, r.out.len, wlen);
	}
	report(t, "send = reference encoder (3000 payloads)", why[0] ? why : NULL);
	rec_close(&r);
}

/* Memory-like bytes: mostly random, with runs of one byte (zeroed pages,
 * 0xff fill) whose hex digits make runs of every length. */
static size_t memory_bytes(uint64_t *rng, uint8_t *buf, size_t max)
{
	size_t len = rng_next(rng) % (max + 1);
	for (size_t i = 0; i < len;) {
		uint64_t v = rng_next(rng);
		size_t run = (v >> 8) % 16 == 0 ? 1 + (v >> 16) % 300 : 1;
		uint8_t b = (v >> 8) % 16 == 0 ? (uint8_t)((v >> 40) % 3 * 0x7f) : (uint8_t)(v >> 32);
		for (size_t k = 0; k < run && i < len; k++)
			buf[i++] = b;
	}
	return len;
}

/* rsp_hex_space + rsp_send_hex_space (in-place hex and framing) must write
 * exactly what rsp_send writes for the same digits, at every length
 * around the 16-byte and 64-byte rounds, up to the largest m reply; in ack
 * mode the packet is kept for a retransmission. */
static void test_send_hex_space(struct tally *t, uint64_t *rng)
{
	enum { ROUNDS = 2000, MAXLEN = 0x10000 };
	static uint8_t bytes[MAXLEN];
	static char hex[2 * MAXLEN + 1];
	static char want[4 * MAXLEN + 8];
	struct rsp_conn c;
	struct rec r;
	char why[160] = "";

	if (rec_open(&r, &c, 0x20000, false)) {
		report(t, "hex in place = reference encoder", "rsp_init failed");
		return;
	}
	for (int round = 0; round < ROUNDS && !why[0]; round++) {
		size_t len;
		if (round < 200) {
			/* every short length, with a zero now and then */
			len = (size_t)round;
			for (size_t i = 0; i < len; i++)
				bytes[i] = (uint8_t)(i % 7 == 0 ? 0 : rng_next(rng));
		} else {
			len = memory_bytes(rng, bytes, round % 50 ? 3000 : MAXLEN);
		}
		for (size_t i = 0; i < len; i++) {
			hex[2 * i] = "0123456789abcdef"[bytes[i] >> 4];
			hex[2 * i + 1] = "0123456789abcdef"[bytes[i] & 15];
		}
		size_t wlen = ref_encode((const uint8_t *)hex, 2 * len, want);
		rsp_buf_reset(&r.out);
		uint8_t *space = rsp_hex_space(&c, len);
		if (!space) {
			snprintf(why, sizeof(why), "round %d: rsp_hex_space failed", round);
			break;
		}
		memcpy(space, bytes, len);
		rsp_send_hex_space(&c, len);
		if (r.out.len != wlen || memcmp(r.out.data, want, wlen) != 0)
			snprintf(why, sizeof(why), "round %d: %zu bytes framed as %zu bytes, "
				 "reference %zu", round, len, r.out.len, wlen);
		rsp_buf_reset(&r.out);
		rsp_feed(&c, "-", 1);
		if (!why[0] && (r.out.len != wlen || memcmp(r.out.data, want, wlen) != 0))
			snprintf(why, sizeof(why), "round %d: retransmission differs", round);
		rsp_feed(&c, "+", 1);
	}
	report(t, "hex in place = reference encoder (2000 replies)", why[0] ? why : NULL);
	rec_close(&r);
}

/* A packet with a NUL byte (binary X data) arrives whole. */
static void test_binary_nul(struct tally *t)
{
	struct rsp_conn c;
	struct rec r;
	static const char in[] = "$X0,3:a\0b#";
	char frame[32];
	memcpy(frame, in, sizeof(in) - 1);
	snprintf(frame + sizeof(in) - 1, 3, "%02x", sum_bytes(in + 1, sizeof(in) - 3));
	if (rec_open(&r, &c, 0x20000, false)) {
		report(t, "binary NUL", "rsp_init failed");
		return;
	}
	rsp_feed(&c, frame, sizeof(in) - 1 + 2);
	bool ok = same(&r.ev, "P[X0,3:a\0b]", 11) && same(&r.out, "+", 1);
	report(t, "binary NUL in payload", ok ? NULL : "payload with NUL not delivered whole");
	rec_close(&r);
}

/* The real PacketSize: 0x20000 accepted, one more rejected, then recovery. */
static void test_big_packets(struct tally *t)
{
	enum { MAX = 0x20000 };
	struct rsp_conn c;
	struct rec r;
	char *frame = malloc(MAX + 16);
	if (!frame || rec_open(&r, &c, MAX, false)) {
		report(t, "0x20000-byte packets", "setup failed");
		free(frame);
		return;
	}
	bool ok = true;
	for (size_t len = MAX; len <= MAX + 1; len++) {
		frame[0] = '$';
		memset(frame + 1, 'M', len);
		/* break runs so nothing is RLE: plain bytes only */
		for (size_t i = 1; i <= len; i += 2)
			frame[i] = 'N';
		snprintf(frame + 1 + len, 4, "#%02x", sum_bytes(frame + 1, len));
		rsp_buf_reset(&r.out);
		rsp_buf_reset(&r.ev);
		rsp_feed(&c, frame, len + 4);
		rsp_feed(&c, "$g#67", 5);
		if (len == MAX)
			ok &= same(&r.out, "++", 2) && r.ev.len == MAX + 3 + 4;
		else
			ok &= same(&r.out, "-+", 2) && same(&r.ev, "P[g]", 4);
	}
	report(t, "0x20000-byte packet accepted, 0x20001 rejected", ok ? NULL : "wrong result");
	rec_close(&r);
	free(frame);
}

static void test_init(struct tally *t)
{
	struct rsp_conn c;
	static const struct rsp_ops no_write = { .packet = rec_packet };
	bool ok = rsp_init(&c, &no_write, NULL, 0x20000) == -EINVAL;
	ok &= rsp_init(&c, &rec_ops, NULL, RSP_MIN_PACKET - 1) == -EINVAL;
	ok &= rsp_init(&c, &rec_ops, NULL, 0x20000) == 0;
	ok &= rsp_max_packet(&c) == 0x20000 && !rsp_noack(&c);
	rsp_fini(&c);
	rsp_fini(&c);           /* idempotent */
	report(t, "rsp_init argument checks", ok ? NULL : "wrong result");
}

/* ---- argument helpers ----------------------------------------------- */

struct hex_case {
	const char *in;
	char sep;
	int rc;
	uint64_t value;
	size_t consumed;
};

static const struct hex_case hex_cases[] = {
	{ "1f,rest", ',', 0, 0x1f, 3 },
	{ "DEADbeef", ',', 0, 0xdeadbeef, 8 },
	{ "ffffffffffffffff", ':', 0, UINT64_MAX, 16 },
	{ "00000000000000000001", ':', 0, 1, 20 },
	{ "10000000000000000", ':', -EINVAL, 0, 0 },
	{ "", ',', -EINVAL, 0, 0 },
	{ ",5", ',', -EINVAL, 0, 0 },
	{ "g", ',', -EINVAL, 0, 0 },
	{ "12g,", ',', -EINVAL, 0, 0 },
	{ "12:3", ',', -EINVAL, 0, 0 },
	{ "-1", ',', -EINVAL, 0, 0 },
	{ "0x10", ',', -EINVAL, 0, 0 },
};

static void test_take_hex(struct tally *t)
{
	for (size_t i = 0; i < sizeof(hex_cases) / sizeof(hex_cases[0]); i++) {
		const struct hex_case *hc = &hex_cases[i];
		struct rsp_cur cur = rsp_cur_make(hc->in, strlen(hc->in));
		uint64_t v = 0x5a5a;
		int rc = rsp_take_hex(&cur, hc->sep, &v);
		size_t used = (size_t)(cur.p - hc->in);
		char name[96], why[160];
		snprintf(name, sizeof(name), "rsp_take_hex \"%s\" sep '%c'", hc->in, hc->sep);
		bool ok = rc == hc->rc && used == hc->consumed && (rc || v == hc->value);
		snprintf(why, sizeof(why), "got rc %d value %#llx consumed %zu, expected rc %d value %#llx consumed %zu",
			 rc, (unsigned long long)v, used, hc->rc, (unsigned long long)hc->value, hc->consumed);
		report(t, name, ok ? NULL : why);
	}
}

static void test_cursor(struct tally *t)
{
	static const char pkt[] = "Z0,401000,1;X:features:target.xml:0,ffb";
	struct rsp_cur cur = rsp_cur_make(pkt, strlen(pkt));
	uint64_t type, addr, kind, off, len;
	char ch, annex[16], small[4];
	bool ok = rsp_take_char(&cur, &ch) == 0 && ch == 'Z';
	ok &= rsp_take_hex(&cur, ',', &type) == 0 && type == 0;
	ok &= rsp_take_hex(&cur, ',', &addr) == 0 && addr == 0x401000;
	ok &= rsp_take_hex(&cur, ';', &kind) == 0 && kind == 1;
	ok &= !rsp_skip_char(&cur, 'Y') && rsp_skip_char(&cur, 'X') && rsp_skip_char(&cur, ':');
	ok &= !rsp_skip_str(&cur, "feature:") && rsp_skip_str(&cur, "features:");
	struct rsp_cur save = cur;
	ok &= rsp_take_str(&cur, ':', small, sizeof(small)) == -E2BIG && cur.p == save.p;
	ok &= rsp_take_str(&cur, ':', annex, sizeof(annex)) == 0 && strcmp(annex, "target.xml") == 0;
	ok &= rsp_take_hex(&cur, ',', &off) == 0 && off == 0;
	ok &= rsp_take_hex(&cur, ',', &len) == 0 && len == 0xffb;
	ok &= rsp_at_end(&cur) && rsp_left(&cur) == 0 && rsp_take_char(&cur, &ch) == -EINVAL;
	ok &= rsp_take_hex(&cur, ',', &len) == -EINVAL;
	ok &= !rsp_skip_str(&cur, "x");

	static const char nul[] = "a\0b:";
	cur = rsp_cur_make(nul, 4);
	ok &= rsp_take_str(&cur, ':', annex, sizeof(annex)) == -EINVAL;
	report(t, "cursor: take_char/skip/take_str on a Z and qXfer packet", ok ? NULL : "wrong result");
}

static void test_hex_codec(struct tally *t)
{
	uint8_t out[8] = { 0 };
	char enc[17];
	bool ok = rsp_hex_decode("00ff7Aa5", 8, out) == 0 &&
		  out[0] == 0 && out[1] == 0xff && out[2] == 0x7a && out[3] == 0xa5;
	report(t, "hex decode", ok ? NULL : "wrong bytes");
	report(t, "hex decode odd length", rsp_hex_decode("abc", 3, out) == -EINVAL ? NULL : "accepted");
	report(t, "hex decode non-hex", rsp_hex_decode("0g", 2, out) == -EINVAL ? NULL : "accepted");
	report(t, "hex decode empty", rsp_hex_decode("", 0, out) == 0 ? NULL : "rejected");
	rsp_hex_encode((const uint8_t *)"\x00\xff\x7a\xa5", 4, enc);
	report(t, "hex encode", strcmp(enc, "00ff7aa5") == 0 ? NULL : enc);
	ok = rsp_hex_digit('F') == 15 && rsp_hex_digit('g') == -1 && rsp_hex_digit(0) == -1;
	report(t, "hex digit", ok ? NULL : "wrong value");
}

static void test_buf(struct tally *t)
{
	struct rsp_buf b;
	rsp_buf_init(&b);
	bool ok = rsp_buf_printf(&b, "l<target%s>", "") == 0;
	ok &= rsp_buf_hex(&b, "\x01\xab", 2) == 0;
	ok &= rsp_buf_putc(&b, ';') == 0;
	ok &= strcmp(b.data, "l<target>01ab;") == 0 && b.len == 14;
	/* longer than the printf fast path */
	ok &= rsp_buf_printf(&b, "%0300d", 42) == 0;
	ok &= b.len == 314 && b.data[313] == '2' && b.data[314] == '\0';
	ok &= rsp_buf_append(&b, "\0x", 2) == 0 && b.len == 316 && b.data[315] == 'x';
	rsp_buf_reset(&b);
	ok &= b.len == 0 && b.data[0] == '\0' && b.err == 0;
	/* sticky error: once failed, nothing more is added */
	b.err = -ENOMEM;
	ok &= rsp_buf_printf(&b, "x") == -ENOMEM && rsp_buf_hex(&b, "a", 1) == -ENOMEM && b.len == 0;
	rsp_buf_free(&b);
	ok &= b.data == NULL;
	report(t, "reply buffer printf/hex/append/reset/sticky error", ok ? NULL : "wrong result");
}

int main(void)
{
	struct tally t = { 0 };
	uint64_t rng = 0x9e3779b97f4a7c15ull;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(transcripts) / sizeof(transcripts[0]); i++)
		run_transcript(&t, &transcripts[i], &rng);
	for (size_t i = 0; i < sizeof(send_cases) / sizeof(send_cases[0]); i++)
		run_send_case(&t, &send_cases[i]);
	test_ack_retransmit(&t);
	test_sendf_long(&t);
	test_round_trip(&t, &rng);
	test_send_matches_reference(&t, &rng);
	test_send_hex_space(&t, &rng);
	test_binary_nul(&t);
	test_big_packets(&t);
	test_init(&t);
	test_take_hex(&t);
	test_cursor(&t);
	test_hex_codec(&t);
	test_buf(&t);
	printf("rsp: %d passed, %d failed\n", t.passed, t.failed);
	return t.failed ? 1 : 0;
}
