/* tests/unit/rsp_fuzz.c — libFuzzer target for rsp/ (`make fuzz-rsp`).
 *
 * Checks, for any input: the parser never delivers more than max_packet
 * bytes, always NUL-terminates, and is never wedged (after the input, a
 * '$' and a good packet are always delivered); any input used as a payload
 * survives rsp_send -> rsp_feed unchanged; the argument readers never read
 * outside the cursor. Violations abort. */
#include "rsp/rsp.h"
#include "rsp/rsp_args.h"

#include <stdlib.h>
#include <string.h>

enum { FUZZ_MAX = 256 };

struct fuzz_sink {
	struct rsp_conn *conn;
	size_t max;
	struct rsp_buf last;    /* last packet delivered */
	struct rsp_buf wire;    /* bytes written */
	size_t packets;
};

static void fz_write(void *opaque, const void *buf, size_t len)
{
	struct fuzz_sink *s = opaque;
	(void)rsp_buf_append(&s->wire, buf, len);
}

static void fz_packet(void *opaque, const char *data, size_t len)
{
	struct fuzz_sink *s = opaque;
	if (len > s->max || data[len] != '\0')
		abort();
	rsp_buf_reset(&s->last);
	(void)rsp_buf_append(&s->last, data, len);
	s->packets++;
	if (len && data[0] == 'Q')      /* exercise send from inside a callback */
		(void)rsp_send(s->conn, "OK", 2);
}

static void fz_interrupt(void *opaque)
{
	(void)opaque;
}

static const struct rsp_ops fz_ops = { fz_write, fz_packet, fz_interrupt };

static void fz_open(struct fuzz_sink *s, struct rsp_conn *c, size_t max, bool noack)
{
	memset(s, 0, sizeof(*s));
	s->conn = c;
	s->max = max;
	rsp_buf_init(&s->last);
	rsp_buf_init(&s->wire);
	if (rsp_init(c, &fz_ops, s, max))
		abort();
	rsp_set_noack(c, noack);
}

static void fz_close(struct fuzz_sink *s)
{
	rsp_fini(s->conn);
	rsp_buf_free(&s->last);
	rsp_buf_free(&s->wire);
}

static void fuzz_parser(const uint8_t *data, size_t size)
{
	struct rsp_conn c;
	struct fuzz_sink s;
	size_t chunk = size ? 1 + data[0] % 16 : 1;

	fz_open(&s, &c, FUZZ_MAX, size && (data[0] & 0x80));
	for (size_t i = 0; i < size; i += chunk)
		rsp_feed(&c, data + i, size - i < chunk ? size - i : chunk);
	size_t before = s.packets;
	rsp_feed(&c, "$g#67", 5);
	if (s.packets != before + 1 || s.last.len != 1 || s.last.data[0] != 'g')
		abort();
	fz_close(&s);
}

static void fuzz_round_trip(const uint8_t *data, size_t size)
{
	struct rsp_conn tx, rx;
	struct fuzz_sink st, sr;
	fz_open(&st, &tx, FUZZ_MAX, true);
	fz_open(&sr, &rx, 1 << 16, true);
	if (rsp_send(&tx, data, size))
		abort();
	rsp_feed(&rx, st.wire.data, st.wire.len);
	if (sr.packets != 1 || sr.last.len != size || (size && memcmp(sr.last.data, data, size)))
		abort();
	fz_close(&st);
	fz_close(&sr);
}

static void fuzz_args(const uint8_t *data, size_t size)
{
	struct rsp_cur cur = rsp_cur_make((const char *)data, size);
	uint8_t bytes[64];
	char str[16];
	uint64_t v;
	while (!rsp_at_end(&cur)) {
		const char *was = cur.p;
		char ch;
		if (rsp_take_hex(&cur, ',', &v) && rsp_take_str(&cur, ':', str, sizeof(str)) &&
		    rsp_take_char(&cur, &ch))
			abort();        /* take_char must succeed before the end */
		if (cur.p <= was || cur.p > cur.end)
			abort();
	}
	size_t n = size > 2 * sizeof(bytes) ? 2 * sizeof(bytes) : size;
	(void)rsp_hex_decode((const char *)data, n, bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_parser(data, size);
	if (size <= 4096)
		fuzz_round_trip(data, size);
	fuzz_args(data, size);
	return 0;
}
