/* rsp/rsp.h — GDB remote serial protocol framing. Owns: packet framing
 * ($payload#cs), checksums, +/- acknowledgment and retransmission, no-ack
 * mode, binary escapes and run-length encoding in both directions, and the
 * 0x03 interrupt byte. Knows nothing of x86 or of packet meanings, does no
 * I/O (the caller owns the socket and feeds bytes in) and has no globals.
 *
 * Incoming: rsp_feed() takes bytes in any chunking. In ack mode a packet
 * with a good checksum is acknowledged with '+' *before* ops->packet() sees
 * it (so a reply sent from inside the callback follows the '+'); a bad
 * checksum gets '-' and the client retransmits. In no-ack mode nothing is
 * sent, and a packet with a bad checksum is dropped (delivering corrupt
 * data would be worse than the client's timeout).
 *
 * Limits: max_packet bounds the payload bytes between '$' and '#' as sent
 * (escaped) and the payload after unescaping/expansion; advertise it as
 * PacketSize. A longer packet is read to its end without being stored, then
 * discarded with '-' (ack mode) or silently, so binary data inside it is
 * never taken for an interrupt. A '$' anywhere inside a packet or its
 * checksum restarts the packet (the earlier one was truncated).
 *
 * Outgoing: rsp_send() escapes '$', '#', '}', '*', run-length encodes runs
 * where that saves bytes, and in ack mode keeps the framed packet until the
 * peer's '+' (a '-' retransmits it; a newer send replaces it).
 * GDB (checked with gdb 13) expands runs in every reply but removes '}'
 * escapes only in binary replies (qXfer, vFile, x): so a text reply must
 * not contain '$', '#', '}' or '*' (hex and the usual reply syntax never
 * do), while qXfer data may contain anything. Runs are never encoded over
 * escaped bytes, because GDB expands runs before it unescapes.
 *
 * Re-entrancy: the callbacks may call rsp_send / rsp_sendf / rsp_set_noack
 * but must not call rsp_feed or rsp_fini on the same connection. */
#ifndef VMDB_RSP_H
#define VMDB_RSP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define RSP_INTERRUPT 0x03
/* Smallest max_packet rsp_init accepts (tests use small ones; vmdb itself
 * advertises 0x20000). */
#define RSP_MIN_PACKET 64
#define RSP_MAX_PACKET (16u << 20)

struct rsp_ops {
	/* emit bytes to the peer (the caller owns the socket) */
	void (*write)(void *opaque, const void *buf, size_t len);
	/* one complete, checksum-verified, unescaped (and run-length expanded)
	 * packet payload; data is NUL-terminated for convenience but may
	 * contain NULs (binary X data). Valid only during the call. */
	void (*packet)(void *opaque, const char *data, size_t len);
	/* a 0x03 byte outside a packet; may be NULL (then ignored) */
	void (*interrupt)(void *opaque);
};

/* Parser states; see rsp_feed_byte in rsp.c for every transition. */
enum rsp_state {
	RSP_ST_IDLE,       /* between packets: '$', '+', '-', 0x03 matter */
	RSP_ST_PACKET,     /* after '$', reading payload */
	RSP_ST_ESCAPE,     /* after '}', next byte is XORed with 0x20 */
	RSP_ST_REPEAT,     /* after '*', next byte is a run-length count */
	RSP_ST_CSUM1,      /* after '#', first checksum digit */
	RSP_ST_CSUM2,      /* second checksum digit */
};

/* One connection. Defined here so callers can embed it; touch it only
 * through the functions below. */
struct rsp_conn {
	const struct rsp_ops *ops;
	void *opaque;
	size_t max_packet;
	bool noack;

	/* receive side */
	enum rsp_state state;
	char *in;              /* decoded payload, max_packet + 1 bytes */
	size_t in_len;
	size_t raw_len;        /* payload bytes as sent, for the size limit */
	uint8_t sum;           /* running checksum of the bytes as sent */
	uint8_t csum_hi;       /* first checksum digit's value */
	bool bad;              /* oversized or malformed: discard at '#' */

	/* send side: the framed packet awaiting '+' (ack mode), or scratch */
	char *out;
	size_t out_len, out_cap;
	bool unacked;          /* out holds a packet the peer has not acked */
	char *fmt_buf;         /* rsp_sendf scratch */
	size_t fmt_cap;
};

/* 0, -EINVAL (NULL write/packet op, max_packet out of range) or -ENOMEM. */
int rsp_init(struct rsp_conn *c, const struct rsp_ops *ops, void *opaque,
	     size_t max_packet) must_check;
void rsp_fini(struct rsp_conn *c);
/* A new peer on an initialised connection: as rsp_init left it (ack
 * mode, nothing received or unacknowledged), its buffers kept. */
void rsp_restart(struct rsp_conn *c);

/* Feed received bytes, any chunking; calls ops as packets complete. */
void rsp_feed(struct rsp_conn *c, const void *buf, size_t len);

/* Frame, escape, run-length encode and write one packet. 0 or -ENOMEM. */
int rsp_send(struct rsp_conn *c, const void *payload, size_t len);
/* A hex-encoded packet without intermediate copies (memory replies):
 * rsp_hex_space() gives room for n bytes inside the connection's own frame
 * buffer (NULL when out of memory); the caller fills it, then
 * rsp_send_hex_space() with the same n turns them, in place, into
 * "$" + 2n hex digits (run-length encoded) + "#cs" and writes that in one
 * call. Nothing else may be sent in between. */
uint8_t *rsp_hex_space(struct rsp_conn *c, size_t n);
void rsp_send_hex_space(struct rsp_conn *c, size_t n);
/* printf into a packet. 0, -ENOMEM or -EINVAL (bad format). */
int rsp_sendf(struct rsp_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Call after replying OK to QStartNoAckMode: from then on no '+'/'-' is
 * sent or expected, and the kept packet is dropped. */
void rsp_set_noack(struct rsp_conn *c, bool noack);
bool rsp_noack(const struct rsp_conn *c);

size_t rsp_max_packet(const struct rsp_conn *c);

#endif
