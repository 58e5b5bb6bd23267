/* gdbserver/pkt_break.c — Z/z: type 0 software (int3) and type 1 hardware
 * execution breakpoints. Watchpoints (2-4) are not implemented yet: the
 * empty reply tells gdb so, and it falls back to software watchpoints. */
#include "gdbserver/gdbserver_int.h"

enum { Z_SW = 0, Z_HW = 1 };

/* Z TYPE,ADDR,KIND[;cond...] — conditions and commands are ignored (we
 * did not advertise them). */
static int parse_z(struct rsp_cur *args, uint64_t *type, uint64_t *addr)
{
	uint64_t kind;
	if (rsp_take_hex(args, ',', type) < 0 || rsp_take_hex(args, ',', addr) < 0)
		return -EINVAL;
	const char *semi = args->p;
	while (semi < args->end && *semi != ';')
		semi++;
	struct rsp_cur k = { args->p, semi };
	if (rsp_take_hex(&k, '\0', &kind) < 0)
		return -EINVAL;
	return 0;
}

static int z_common(struct gdb_server *s, struct rsp_cur *args, bool insert)
{
	uint64_t type, addr;
	struct err e = { 0 };
	int r;

	if (parse_z(args, &type, &addr) < 0)
		return -EINVAL;
	switch (type) {
	case Z_SW:
		r = insert ? debug_sw_insert(s->dbg, s->cur_g, addr, s->phys, &e)
			   : debug_sw_remove(s->dbg, addr, &e);
		break;
	case Z_HW:
		if (!debug_hw_supported(s->dbg))
			return 0;
		r = insert ? debug_hw_insert(s->dbg, addr, &e) : debug_hw_remove(s->dbg, addr, &e);
		break;
	default:
		return 0;     /* unsupported type: empty reply */
	}
	if (r == -ENOENT)
		r = 0;        /* removing what is not there is not worth an error */
	if (r < 0)
		return r;
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

static int pkt_bigz(struct gdb_server *s, struct rsp_cur *args)
{
	return z_common(s, args, true);
}

static int pkt_z(struct gdb_server *s, struct rsp_cur *args)
{
	return z_common(s, args, false);
}

const struct gdb_packet gdb_pkt_break[] = {
	{ "Z", pkt_bigz, true },
	{ "z", pkt_z, true },
	{ NULL, NULL, false },
};
