/* gdbserver/pkt_break.c — Z/z: type 0 software (int3) and type 1 hardware
 * execution breakpoints, types 2 (write), 3 (read) and 4 (access)
 * watchpoints (debug/watch.c places them: the debugger's DR0-3, or the
 * engine's watched ranges: exact on emu, page traps on kvm). A kind the
 * engine cannot watch gets the empty reply ("unsupported"); gdb then
 * falls back as it does with any stub. QEnableErrorStrings (LLDB's
 * extension) adds the reason to the E reply of a Z/z that failed. With
 * `monitor phys on`, Z0 breakpoints are on guest-physical addresses;
 * Z1-Z4 cannot be and are refused. */
#include "gdbserver/gdbserver_int.h"

#include <inttypes.h>
#include <string.h>

enum { Z_SW = 0, Z_HW = 1, Z_WRITE = 2, Z_READ = 3, Z_ACCESS = 4 };

/* Z TYPE,ADDR,KIND[;cond...] — conditions and commands are ignored (we
 * did not advertise them). KIND is the byte count for watchpoints. */
static int parse_z(struct rsp_cur *args, uint64_t *type, uint64_t *addr, uint64_t *kind)
{
	if (rsp_take_hex(args, ',', type) < 0 || rsp_take_hex(args, ',', addr) < 0)
		return -EINVAL;
	const char *semi = args->p;
	while (semi < args->end && *semi != ';')
		semi++;
	struct rsp_cur k = { args->p, semi };
	if (rsp_take_hex(&k, '\0', kind) < 0)
		return -EINVAL;
	return 0;
}

static int z_watch(struct gdb_server *s, uint64_t type, uint64_t addr, uint64_t len, bool insert,
		   struct err *e)
{
	enum debug_watch_kind kind = type == Z_WRITE ? DEBUG_WATCH_WRITE :
				     type == Z_READ ? DEBUG_WATCH_READ : DEBUG_WATCH_ACCESS;
	if (!debug_watch_supported(s->dbg, kind))
		return 1;     /* see `monitor info caps` */
	return insert ? debug_watch_insert(s->dbg, s->cur_g, kind, addr, len, e)
		      : debug_watch_remove(s->dbg, kind, addr, len, e);
}

static int z_common(struct gdb_server *s, struct rsp_cur *args, bool insert)
{
	uint64_t type, addr, kind;
	struct err e = { 0 };
	int r;

	if (parse_z(args, &type, &addr, &kind) < 0)
		return -EINVAL;
	if (s->phys && insert && type >= Z_HW && type <= Z_ACCESS) {
		/* DR0-3 and watched ranges are linear addresses */
		err_set(&e, EINVAL, "hardware breakpoints and watchpoints are on linear addresses; "
			"with `monitor phys on` 0x%" PRIx64 " is physical: use a software "
			"breakpoint, or phys off",
			addr);
		return gdb_error_words(s, -EINVAL, &e);
	}
	switch (type) {
	case Z_SW:
		r = insert ? debug_sw_insert(s->dbg, s->cur_g, addr, s->phys, &e)
			   : debug_sw_remove(s->dbg, addr, s->phys, &e);
		break;
	case Z_HW:
		if (!debug_hw_supported(s->dbg))
			return 0;
		r = insert ? debug_hw_insert(s->dbg, addr, &e) : debug_hw_remove(s->dbg, addr, &e);
		break;
	case Z_WRITE:
	case Z_READ:
	case Z_ACCESS:
		r = z_watch(s, type, addr, kind, insert, &e);
		if (r == 1)
			return 0;
		break;
	default:
		return 0;     /* unknown types: empty reply */
	}
	if (r == -ENOENT)
		r = 0;        /* removing what is not there is not worth an error */
	if (r < 0)
		return gdb_error(s, r, &e);
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

static int pkt_enable_error_strings(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	s->error_strings = true;
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

const struct gdb_packet gdb_pkt_break[] = {
	{ "Z", pkt_bigz, true },
	{ "z", pkt_z, true },
	{ "QEnableErrorStrings", pkt_enable_error_strings, false },
	{ NULL, NULL, false },
};
