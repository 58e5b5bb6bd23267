/* bench/rsp_pump.c — the hot loops of bench/rsp, in C.
 * A Python client costs ~40 us per round trip on our nested-KVM hosts,
 * about what a fast stub costs, and tens of microseconds more to frame a
 * 128 KiB memory reply, so it cannot measure one. bench/rsp sets up the
 * connection (qSupported, no-ack, stopped at the kernel entry) and hands
 * this program the connected socket. Two modes:
 *
 *   rsp_pump FD PAYLOAD COUNT SECONDS ACK GOOD
 *
 * sends $PAYLOAD#cs up to COUNT times or for about SECONDS, each after the
 * previous reply. Every reply must start with a byte in GOOD ("!E" means
 * any byte but 'E'). Prints "ROUNDTRIPS SECONDS MEDIAN_SECONDS", the last
 * the median round trip (of the first RT_KEPT): on a loaded machine the
 * stub's own round trip, which the stalls when another task takes the
 * core (milliseconds, now and then) leave out.
 *
 *   rsp_pump --mem FD ADDR SPAN TOTAL CHUNK ACK OUTFILE
 *
 * reads TOTAL bytes with "mADDR+off,len" packets of at most CHUNK bytes,
 * cycling over [ADDR, ADDR+SPAN) (a chunk never crosses ADDR+SPAN), one
 * request at a time as gdb does, every reply's checksum verified. The raw
 * replies of the first and the last pass are kept and, after the clock
 * stops, run-length expanded, hex-decoded and written to OUTFILE (2 * SPAN
 * bytes, or SPAN when there is one pass) for bench/rsp to compare with what
 * it wrote. Prints "BYTES SECONDS WIRE_BYTES_RECEIVED".
 *
 * In ack mode (ACK = 1) the '+' for each reply rides with the next packet
 * and a last '+' is sent at the end. RSP_PUMP_POLL_US in the environment:
 * how long to look for each reply before sleeping on the socket (0, the
 * default: sleep at once). Exit 1 (with a reason on stderr) on a
 * bad or missing reply. Leaves the socket just after the last reply. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define PUMP_BUF (4u << 20)

struct pump {
	int fd;
	char *buf;
	size_t start, len;      /* unread bytes are buf[start, len) */
	uint64_t wire;          /* bytes received */
	bool ack;
	bool sent_any;          /* an ack is owed for the previous reply */
	double poll_s;          /* look for a reply this long before sleeping */
};

/* One reply, pointing into the pump's buffer (valid until the next read). */
struct reply {
	const char *payload;
	size_t len;
	unsigned csum;          /* the checksum the peer sent */
};

static double pump_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int pump_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Frame and send one packet, with the '+' owed for the last reply first. */
static int pump_send(struct pump *p, const char *payload, size_t len)
{
	char frame[600];
	unsigned sum = 0;
	size_t n = 0;

	if (len + 8 > sizeof(frame))
		return -1;
	if (p->ack && p->sent_any)
		frame[n++] = '+';
	frame[n++] = '$';
	for (size_t i = 0; i < len; i++)
		sum += (unsigned char)payload[i];
	memcpy(frame + n, payload, len);
	n += len;
	n += (size_t)snprintf(frame + n, sizeof(frame) - n, "#%02x", sum & 0xff);
	p->sent_any = true;
	return pump_write_all(p->fd, frame, n);
}

/* Up to `room` bytes from the peer. With poll_s, non-blocking looks (and
 * sched_yield between them, so a stub sharing our core still runs) for
 * that long before a blocking read: a client that sleeps on every reply
 * pays a wake-up per round trip, tens of microseconds under nested KVM,
 * and that is the client's cost, not the stub's. A yield that let others
 * run for long means a contended core: looking on only takes their time. */
static ssize_t pump_recv(struct pump *p, char *buf, size_t room)
{
	if (p->poll_s > 0) {
		double start = pump_now(), last = start, now;
		do {
			ssize_t n = recv(p->fd, buf, room, MSG_DONTWAIT);
			if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
				return n;
			sched_yield();
			now = pump_now();
			if (now - last > 30e-6)
				break;
			last = now;
		} while (now - start < p->poll_s);
	}
	return read(p->fd, buf, room);
}

/* Reads one reply (the search for '#' resumes where the last one ended,
 * so a long reply costs linear time); 0, or -1 (closed/error/too long). */
static int pump_read_reply(struct pump *p, struct reply *r)
{
	size_t scanned = p->start;

	for (;;) {
		char *base = p->buf + p->start;
		char *dollar = memchr(base, '$', p->len - p->start);
		char *hash = NULL;

		if (dollar) {
			size_t from = scanned > (size_t)(dollar - p->buf) ? scanned
									 : (size_t)(dollar - p->buf);
			hash = memchr(p->buf + from, '#', p->len - from);
		}
		if (hash && (size_t)(hash - p->buf) + 3 <= p->len) {
			int hi = hexval((unsigned char)hash[1]), lo = hexval((unsigned char)hash[2]);

			r->payload = dollar + 1;
			r->len = (size_t)(hash - dollar - 1);
			r->csum = hi < 0 || lo < 0 ? 0x100u : (unsigned)(hi << 4 | lo);
			p->start = (size_t)(hash - p->buf) + 3;
			return 0;
		}
		scanned = p->len;
		if (p->start == p->len) {
			p->start = p->len = scanned = 0;
		} else if (p->len == PUMP_BUF) {
			if (p->start == 0)
				return -1;      /* one reply larger than the buffer */
			memmove(p->buf, p->buf + p->start, p->len - p->start);
			p->len -= p->start;
			scanned -= p->start;
			p->start = 0;
		}
		ssize_t n = pump_recv(p, p->buf + p->len, PUMP_BUF - p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p->len += (size_t)n;
		p->wire += (uint64_t)n;
	}
}

static bool pump_good(const char *good, int c)
{
	if (good[0] == '!')
		return strchr(good + 1, c) == NULL;
	return strchr(good, c) != NULL;
}

/* The checksum of a reply. A byte at a time this was ~80 us per 128 KiB
 * reply here, more than a fast stub takes to produce it: with SSE2 (any
 * x86-64) 16 bytes a round. */
static unsigned pump_sum(const char *s, size_t n)
{
	unsigned sum = 0;
	size_t i = 0;

#ifdef __SSE2__
	const __m128i zero = _mm_setzero_si128();
	__m128i acc = zero;

	for (; i + 16 <= n; i += 16)
		acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128((const __m128i *)(s + i)),
						      zero));
	sum = (unsigned)(_mm_cvtsi128_si64(acc) + _mm_cvtsi128_si64(_mm_unpackhi_epi64(acc, acc)));
#endif
	for (; i < n; i++)
		sum += (unsigned char)s[i];
	return sum & 0xff;
}

static int pump_finish(struct pump *p)
{
	if (p->ack && p->sent_any && pump_write_all(p->fd, "+", 1) < 0)
		return -1;
	if (p->start != p->len)
		fprintf(stderr, "rsp_pump: %zu unexpected bytes after the last reply\n",
			p->len - p->start);
	return 0;
}

#define RT_KEPT (1L << 20)

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int pump_roundtrips(struct pump *p, int argc, char **argv)
{
	long count, n = 0;
	double seconds, t0, dt, last, median = 0;
	double *rt;
	const char *payload = argv[2];
	struct reply r = { 0 };

	if (argc != 7) {
		fprintf(stderr, "usage: %s FD PAYLOAD COUNT SECONDS ACK GOOD\n", argv[0]);
		return 2;
	}
	count = atol(argv[3]);
	seconds = strtod(argv[4], NULL);
	p->ack = atoi(argv[5]) != 0;
	rt = malloc(RT_KEPT * sizeof(*rt));
	if (!rt)
		return 2;
	t0 = last = pump_now();
	while (n < count) {
		if (pump_send(p, payload, strlen(payload)) < 0) {
			fprintf(stderr, "rsp_pump: write: %s\n", strerror(errno));
			return 1;
		}
		r.len = 0;
		if (pump_read_reply(p, &r) < 0 || r.len == 0 ||
		    !pump_good(argv[6], (unsigned char)r.payload[0])) {
			fprintf(stderr, "rsp_pump: round trip %ld of %s: %s\n", n, payload,
				r.len == 0 ? "no reply (connection closed?)" : "unexpected reply");
			return 1;
		}
		double now = pump_now();
		if (n < RT_KEPT)
			rt[n] = now - last;
		last = now;
		n++;
		if (now - t0 > seconds)
			break;
	}
	dt = pump_now() - t0;
	if (pump_finish(p) < 0)
		return 1;
	long kept = n < RT_KEPT ? n : RT_KEPT;
	if (kept) {
		qsort(rt, (size_t)kept, sizeof(*rt), cmp_double);
		median = rt[kept / 2];
	}
	free(rt);
	printf("%ld %.9f %.9f\n", n, dt, median);
	return 0;
}

/* Run-length expand and hex-decode one kept reply into out; returns the
 * bytes written or -1. */
static long decode_reply(const char *s, size_t n, uint8_t *out, size_t room)
{
	static char hex[1u << 20];
	size_t h = 0, o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '*' && i > 0 && i + 1 < n) {
			int extra = (unsigned char)s[++i] - 29;
			for (int k = 0; k < extra && h < sizeof(hex); k++, h++)
				hex[h] = hex[h - 1];
		} else if (h < sizeof(hex)) {
			hex[h++] = s[i];
		}
	}
	if (h % 2 || h / 2 > room || h >= sizeof(hex))
		return -1;
	for (; o < h / 2; o++) {
		int hi = hexval((unsigned char)hex[2 * o]), lo = hexval((unsigned char)hex[2 * o + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[o] = (uint8_t)(hi << 4 | lo);
	}
	return (long)o;
}

/* The kept replies of the first and last pass: payloads back to back. */
struct keep {
	char *data;
	size_t len, cap;
	size_t *ends;           /* end offset of each reply */
	size_t nr, nr_cap;
};

static int keep_add(struct keep *k, const char *s, size_t n)
{
	if (k->len + n > k->cap) {
		size_t cap = k->cap ? k->cap : (1u << 22);
		while (cap < k->len + n)
			cap *= 2;
		char *d = realloc(k->data, cap);
		if (!d)
			return -1;
		k->data = d;
		k->cap = cap;
	}
	if (k->nr == k->nr_cap) {
		size_t cap = k->nr_cap ? 2 * k->nr_cap : 1024;
		size_t *e = realloc(k->ends, cap * sizeof(*e));
		if (!e)
			return -1;
		k->ends = e;
		k->nr_cap = cap;
	}
	memcpy(k->data + k->len, s, n);
	k->len += n;
	k->ends[k->nr++] = k->len;
	return 0;
}

static int keep_write(const struct keep *k, const char *path, size_t bytes)
{
	uint8_t *out = malloc(bytes ? bytes : 1);
	size_t o = 0, from = 0;
	FILE *f;

	if (!out)
		return -1;
	for (size_t i = 0; i < k->nr; i++) {
		long n = decode_reply(k->data + from, k->ends[i] - from, out + o, bytes - o);
		if (n < 0) {
			free(out);
			return -1;
		}
		o += (size_t)n;
		from = k->ends[i];
	}
	f = fopen(path, "wb");
	if (!f || fwrite(out, 1, o, f) != o || fclose(f) != 0) {
		free(out);
		return -1;
	}
	free(out);
	return 0;
}

static int pump_mem(struct pump *p, int argc, char **argv)
{
	struct keep keep = { 0 };
	uint64_t addr, span, total, chunk, done = 0;
	double t0, dt;
	struct reply r;
	char pkt[64];

	if (argc != 9) {
		fprintf(stderr, "usage: %s --mem FD ADDR SPAN TOTAL CHUNK ACK OUTFILE\n", argv[0]);
		return 2;
	}
	p->fd = atoi(argv[2]);
	addr = strtoull(argv[3], NULL, 0);
	span = strtoull(argv[4], NULL, 0);
	total = strtoull(argv[5], NULL, 0);
	chunk = strtoull(argv[6], NULL, 0);
	p->ack = atoi(argv[7]) != 0;
	if (!span || !chunk)
		return 2;
	uint64_t passes = (total + span - 1) / span;

	t0 = pump_now();
	while (done < total) {
		uint64_t off = done % span, n = chunk;
		if (n > total - done)
			n = total - done;
		if (n > span - off)
			n = span - off;
		int len = snprintf(pkt, sizeof(pkt), "m%" PRIx64 ",%" PRIx64, addr + off, n);
		if (pump_send(p, pkt, (size_t)len) < 0 || pump_read_reply(p, &r) < 0) {
			fprintf(stderr, "rsp_pump: %s: no reply (connection closed?)\n", pkt);
			return 1;
		}
		if (pump_sum(r.payload, r.len) != r.csum || (r.len && r.payload[0] == 'E')) {
			fprintf(stderr, "rsp_pump: %s: %s: %.40s\n", pkt,
				pump_sum(r.payload, r.len) != r.csum ? "bad checksum" : "error reply",
				r.payload);
			return 1;
		}
		uint64_t pass = done / span;
		if ((pass == 0 || pass == passes - 1) && keep_add(&keep, r.payload, r.len) < 0)
			return 2;
		done += n;
	}
	dt = pump_now() - t0;
	if (pump_finish(p) < 0)
		return 1;
	if (keep_write(&keep, argv[8], passes > 1 ? 2 * span : span) < 0) {
		fprintf(stderr, "rsp_pump: cannot decode the replies into %s\n", argv[8]);
		return 1;
	}
	printf("%" PRIu64 " %.9f %" PRIu64 "\n", total, dt, p->wire);
	free(keep.data);
	free(keep.ends);
	return 0;
}

int main(int argc, char **argv)
{
	struct pump p = { 0 };
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FD PAYLOAD COUNT SECONDS ACK GOOD\n"
			"       %s --mem FD ADDR SPAN TOTAL CHUNK ACK OUTFILE\n", argv[0], argv[0]);
		return 2;
	}
	/* RSP_PUMP_POLL_US: how long to poll for a reply before sleeping */
	const char *poll_us = getenv("RSP_PUMP_POLL_US");
	p.poll_s = poll_us ? strtod(poll_us, NULL) * 1e-6 : 0;
	p.buf = malloc(PUMP_BUF);
	if (!p.buf)
		return 2;
	if (strcmp(argv[1], "--mem") == 0) {
		rc = pump_mem(&p, argc, argv);
	} else {
		p.fd = atoi(argv[1]);
		rc = pump_roundtrips(&p, argc, argv);
	}
	free(p.buf);
	return rc;
}
