/* gdbserver/pkt_mem.c — m, M, x, X: guest memory through the current vCPU's
 * page tables (or guest-physical after `monitor phys on`). An unmapped
 * byte anywhere in the range is E14 (EFAULT), never a partial answer. */
#include "gdbserver/gdbserver_int.h"

#include <stdlib.h>

/* The largest read: two hex digits per byte fill one PacketSize payload. */
#define GDB_MAX_READ (GDB_PACKET_SIZE / 2)

static int take_addr_len(struct rsp_cur *args, char len_sep, uint64_t *addr, uint64_t *len)
{
	if (rsp_take_hex(args, ',', addr) < 0 || rsp_take_hex(args, len_sep, len) < 0)
		return -EINVAL;
	return 0;
}

static int pkt_m(struct gdb_server *s, struct rsp_cur *args)
{
	uint64_t addr, len;
	if (take_addr_len(args, '\0', &addr, &len) < 0 || !rsp_at_end(args))
		return -EINVAL;
	if (len > GDB_MAX_READ)
		len = GDB_MAX_READ;   /* a stub may answer with fewer bytes */
	/* guest memory is copied once, into the frame buffer, and encoded and
	 * framed there: the reply's only other pass is the write */
	uint8_t *buf = rsp_hex_space(&s->rsp, len);
	if (!buf)
		return -ENOMEM;
	if (debug_mem_read(s->dbg, s->cur_g, addr, buf, len, s->phys) < 0)
		return -EFAULT;
	rsp_send_hex_space(&s->rsp, len);
	return GDB_NO_REPLY;
}

static int write_mem(struct gdb_server *s, uint64_t addr, const uint8_t *buf, size_t len)
{
	int r = debug_mem_write(s->dbg, s->cur_g, addr, buf, len, s->phys);
	if (r < 0)
		return -EFAULT;
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

static int pkt_bigm(struct gdb_server *s, struct rsp_cur *args)
{
	uint64_t addr, len;
	if (take_addr_len(args, ':', &addr, &len) < 0 || rsp_left(args) / 2 != len ||
	    rsp_left(args) % 2)
		return -EINVAL;
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	int r = rsp_hex_decode(args->p, 2 * len, buf);
	if (r == 0)
		r = write_mem(s, addr, buf, len);
	else
		r = -EINVAL;
	free(buf);
	return r;
}

/* X addr,len:BINARY — already unescaped by rsp/. */
static int pkt_x(struct gdb_server *s, struct rsp_cur *args)
{
	uint64_t addr, len;
	if (take_addr_len(args, ':', &addr, &len) < 0 || rsp_left(args) != len)
		return -EINVAL;
	return write_mem(s, addr, (const uint8_t *)args->p, len);
}

/* x addr,len — binary read. GDB's form (the client said binary-upload+
 * in qSupported): 'b' then the bytes. LLDB's older form: the bytes alone,
 * and "OK" to its probe x0,0. rsp/ escapes the bytes. */
static int pkt_lower_x(struct gdb_server *s, struct rsp_cur *args)
{
	uint64_t addr, len;
	if (take_addr_len(args, '\0', &addr, &len) < 0 || !rsp_at_end(args))
		return -EINVAL;
	if (len == 0 && !s->client_binary_upload) {
		rsp_buf_printf(&s->reply, "OK");
		return 0;
	}
	if (len > GDB_MAX_READ)
		len = GDB_MAX_READ;   /* escapes may double it; fewer bytes are allowed */
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	int r = debug_mem_read(s->dbg, s->cur_g, addr, buf, len, s->phys) < 0 ? -EFAULT : 0;
	if (r == 0 && s->client_binary_upload)
		rsp_buf_putc(&s->reply, 'b');
	if (r == 0)
		rsp_buf_append(&s->reply, buf, len);
	free(buf);
	return r;
}

const struct gdb_packet gdb_pkt_mem[] = {
	{ "m", pkt_m, true, false, true },
	{ "x", pkt_lower_x, true, false, true },
	{ "M", pkt_bigm, true },
	{ "X", pkt_x, true },
	{ NULL, NULL, false },
};
