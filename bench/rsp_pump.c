/* bench/rsp_pump.c — the hot loop of bench/rsp's round-trip rates, in C.
 * A Python client costs ~40 us per round trip on our nested-KVM hosts,
 * about what a fast stub costs, so it cannot measure one. bench/rsp sets
 * up the connection (qSupported, no-ack, stopped at the kernel entry) and
 * hands this program the connected socket:
 *
 *   rsp_pump FD PAYLOAD COUNT SECONDS ACK GOOD
 *
 * sends $PAYLOAD#cs up to COUNT times or for about SECONDS, each after the
 * previous reply; in ack mode (ACK = 1) the '+' for each reply rides with
 * the next packet and a last '+' is sent at the end. Every reply must start
 * with a byte in GOOD ("!E" means any byte but 'E'). Prints
 * "ROUNDTRIPS SECONDS" on stdout; exit 1 (with a reason on stderr) on a bad
 * or missing reply. Leaves the socket just after the last reply. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PUMP_BUF (1u << 20)

struct pump {
	int fd;
	char *buf;
	size_t len;             /* bytes in buf */
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

/* Reads one reply; returns its first payload byte, or -1 (closed/error/too long). */
static int pump_read_reply(struct pump *p)
{
	for (;;) {
		char *dollar = memchr(p->buf, '$', p->len);
		char *hash = dollar ? memchr(dollar, '#', p->len - (size_t)(dollar - p->buf)) : NULL;

		if (hash && (size_t)(hash - p->buf) + 3 <= p->len) {
			int first = (unsigned char)dollar[1];
			size_t used = (size_t)(hash - p->buf) + 3;

			memmove(p->buf, p->buf + used, p->len - used);
			p->len -= used;
			return first;
		}
		if (p->len == PUMP_BUF)
			return -1;
		ssize_t r = read(p->fd, p->buf + p->len, PUMP_BUF - p->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p->len += (size_t)r;
	}
}

static bool pump_good(const char *good, int c)
{
	if (good[0] == '!')
		return strchr(good + 1, c) == NULL;
	return strchr(good, c) != NULL;
}

int main(int argc, char **argv)
{
	struct pump p = { 0 };
	char frame[512];
	unsigned sum = 0;
	long count, n = 0;
	double seconds, t0, dt;
	bool ack;

	if (argc != 7) {
		fprintf(stderr, "usage: %s FD PAYLOAD COUNT SECONDS ACK GOOD\n", argv[0]);
		return 2;
	}
	p.fd = atoi(argv[1]);
	count = atol(argv[3]);
	seconds = strtod(argv[4], NULL);
	ack = atoi(argv[5]) != 0;
	for (const char *c = argv[2]; *c; c++)
		sum += (unsigned char)*c;
	/* frame[0] is the '+' acknowledging the previous reply (ack mode only) */
	if (snprintf(frame, sizeof(frame), "+$%s#%02x", argv[2], sum & 0xff) >= (int)sizeof(frame)) {
		fprintf(stderr, "rsp_pump: payload too long\n");
		return 2;
	}
	p.buf = malloc(PUMP_BUF);
	if (!p.buf)
		return 2;

	t0 = pump_now();
	while (n < count) {
		const char *out = ack && n ? frame : frame + 1;

		if (pump_write_all(p.fd, out, strlen(out)) < 0) {
			fprintf(stderr, "rsp_pump: write: %s\n", strerror(errno));
			return 1;
		}
		int first = pump_read_reply(&p);
		if (first < 0 || !pump_good(argv[6], first)) {
			fprintf(stderr, "rsp_pump: round trip %ld of %s: %s\n", n, argv[2],
				first < 0 ? "no reply (connection closed?)" : "unexpected reply");
			return 1;
		}
		n++;
		if ((n & 63) == 0 && pump_now() - t0 > seconds)
			break;
	}
	dt = pump_now() - t0;
	if (ack && pump_write_all(p.fd, "+", 1) < 0)
		return 1;
	if (p.len)
		fprintf(stderr, "rsp_pump: %zu unexpected bytes after the last reply\n", p.len);
	printf("%ld %.9f\n", n, dt);
	free(p.buf);
	return 0;
}
