/* gdbserver/pkt_break.c — Z/z: type 0 software (int3) and type 1 hardware
 * execution breakpoints, types 2 (write), 3 (read) and 4 (access)
 * watchpoints (debug/watch.c places them: the debugger's DR0-3, or the
 * engine's watched ranges: exact on emu, page traps on kvm). A kind the
 * engine cannot watch gets the empty reply ("unsupported"); gdb then
 * falls back as it does with any stub. QEnableErrorStrings (LLDB's
 * extension) adds the reason to the E reply of a Z/z that failed. With
 * `monitor phys on`, Z0 breakpoints and Z2-Z4 watchpoints are on
 * guest-physical addresses (z0/z2-z4 then remove physical ones); Z1
 * (DR0-3, which match linear addresses) is refused.
 * A Z0 may carry conditions (ConditionalBreakpoints+): gdb's agent
 * expressions, ";X len,HEX" each, which the debug core evaluates at the
 * hit so that a false one costs no stop (debug/cond.c), and commands
 * (BreakpointCommands+, ";cmds:PERSIST,X len,HEX..."), which it runs at
 * the hits whose condition holds, with no stop: their printf text comes
 * back here (gdb_console_flush) as O packets while the machine runs, or
 * on vmdb's stderr where no client can take it. Z1 conditions and
 * commands are not taken: such a breakpoint stops at every hit, and gdb
 * checks the condition and runs the commands itself. */
#include "gdbserver/gdbserver_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { Z_SW = 0, Z_HW = 1, Z_WRITE = 2, Z_READ = 3, Z_ACCESS = 4 };

/* One "X len,HEX" agent expression into code (AGENT_MAX_CODE bytes). */
static int parse_expr(struct rsp_cur *c, const char *what, uint8_t *code, uint16_t *code_len,
		      struct err *e)
{
	uint64_t len;
	if (!rsp_skip_char(c, 'X'))
		return err_set(e, EINVAL, "unexpected text where a breakpoint %s belongs", what);
	if (rsp_take_hex(c, ',', &len) < 0)
		return err_set(e, EINVAL, "a breakpoint %s without a length", what);
	if (len == 0 || len > AGENT_MAX_CODE)
		return err_set(e, EINVAL, "a breakpoint %s of %" PRIu64 " bytes (at most %d)", what,
			       len, AGENT_MAX_CODE);
	if (rsp_left(c) < 2 * len || rsp_hex_decode(c->p, 2 * len, code) < 0)
		return err_set(e, EINVAL, "a breakpoint %s shorter than its length, or not hex", what);
	c->p += 2 * len;
	*code_len = (uint16_t)len;
	return 0;
}

/* "cmds:PERSIST,X..X..": the commands run to the end of the packet (gdb
 * puts them last, with no separator between them; ';' is taken too). */
static int parse_cmds(struct rsp_cur *c, struct debug_cmd_list *cmds, struct err *e)
{
	uint64_t persist;
	if (rsp_take_hex(c, ',', &persist) < 0 || persist > 1)
		return err_set(e, EINVAL, "breakpoint commands without their persist flag (0 or 1)");
	cmds->persist = persist == 1;
	while (!rsp_at_end(c)) {
		if (rsp_skip_char(c, ';'))
			continue;
		if (cmds->n == DEBUG_MAX_CMDS)
			return err_set(e, E2BIG, "more than %d commands on one breakpoint",
				       DEBUG_MAX_CMDS);
		int r = parse_expr(c, "command", cmds->code[cmds->n], &cmds->len[cmds->n], e);
		if (r < 0)
			return r;
		cmds->n++;
	}
	if (cmds->n == 0)
		return err_set(e, EINVAL, "a breakpoint's cmds: with no command");
	return 0;
}

/* What follows ADDR,KIND: ";X..X.." conditions (gdb puts them after one
 * ';', gdbserver also takes one ';' each), then perhaps ";cmds:...". */
static int parse_options(struct rsp_cur *c, struct debug_cond_list *conds,
			 struct debug_cmd_list *cmds, struct err *e)
{
	conds->n = cmds->n = 0;
	cmds->persist = false;
	while (!rsp_at_end(c)) {
		if (rsp_skip_char(c, ';'))
			continue;
		if (rsp_skip_str(c, "cmds:"))
			return parse_cmds(c, cmds, e);
		if (conds->n == DEBUG_MAX_CONDS)
			return err_set(e, E2BIG, "more than %d conditions on one breakpoint",
				       DEBUG_MAX_CONDS);
		int r = parse_expr(c, "condition", conds->code[conds->n], &conds->len[conds->n], e);
		if (r < 0)
			return r;
		conds->n++;
	}
	return 0;
}

/* Z TYPE,ADDR,KIND[;cond...]; the cursor is left on the conditions. KIND
 * is the byte count for watchpoints. */
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
	args->p = semi;
	return 0;
}

/* Z0 with its conditions and commands (none: every hit stops). */
static int z_sw_insert(struct gdb_server *s, struct rsp_cur *opts, uint64_t addr, struct err *e)
{
	struct debug_cond_list *conds = malloc(sizeof(*conds));
	struct debug_cmd_list *cmds = malloc(sizeof(*cmds));
	int r = conds && cmds ? 0 : err_set(e, ENOMEM, "out of memory for a breakpoint's "
					    "conditions and commands");
	if (r == 0)
		r = parse_options(opts, conds, cmds, e);
	/* a client told of i386 registers numbers them as i386 does */
	if (r == 0)
		conds->regnums = cmds->regnums = gdb_view(s)->src ? DEBUG_REGNUMS_I386
								  : DEBUG_REGNUMS_AMD64;
	if (r == 0)
		r = debug_sw_insert(s->dbg, s->cur_g, addr, s->phys, e);
	if (r == 0)
		r = debug_sw_set_conds(s->dbg, addr, s->phys, conds, e);
	if (r == 0)
		r = debug_sw_set_cmds(s->dbg, addr, s->phys, cmds, e);
	free(conds);
	free(cmds);
	return r;
}

static int z_watch(struct gdb_server *s, uint64_t type, uint64_t addr, uint64_t len, bool insert,
		   struct err *e)
{
	enum debug_watch_kind kind = type == Z_WRITE ? DEBUG_WATCH_WRITE :
				     type == Z_READ ? DEBUG_WATCH_READ : DEBUG_WATCH_ACCESS;
	if (!debug_watch_supported(s->dbg, kind))
		return 1;     /* see `monitor info caps` */
	return insert ? debug_watch_insert(s->dbg, s->cur_g, kind, addr, len, s->phys, e)
		      : debug_watch_remove(s->dbg, kind, addr, len, s->phys, e);
}

static int z_common(struct gdb_server *s, struct rsp_cur *args, bool insert)
{
	uint64_t type, addr, kind;
	struct err e = { 0 };
	int r;

	if (parse_z(args, &type, &addr, &kind) < 0)
		return -EINVAL;
	if (s->phys && insert && type == Z_HW) {
		/* DR0-3 match linear addresses */
		err_set(&e, EINVAL, "hardware breakpoints are on linear addresses; "
			"with `monitor phys on` 0x%" PRIx64 " is physical: use a software "
			"breakpoint, or phys off",
			addr);
		return gdb_error_words(s, -EINVAL, &e);
	}
	switch (type) {
	case Z_SW:
		r = insert ? z_sw_insert(s, args, addr, &e) : debug_sw_remove(s->dbg, addr, s->phys, &e);
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

void gdb_explain_cond_error(struct gdb_server *s, const struct debug_event *ev)
{
	char text[600];
	int n = snprintf(text, sizeof(text), "vmdb: the breakpoint at 0x%" PRIx64
			 " stopped the vCPU: ", ev->addr);
	if (ev->kind != DEBUG_EV_SWBREAK ||
	    !debug_cond_take_error(s->dbg, ev->vcpu, ev->addr, text + n,
				   sizeof(text) - (size_t)n - 1))
		return;
	strcat(text, "\n");
	struct rsp_buf out;
	rsp_buf_init(&out);
	rsp_buf_putc(&out, 'O');
	rsp_buf_hex(&out, text, strlen(text));
	if (out.err == 0)
		rsp_send(&s->rsp, out.data, out.len);
	rsp_buf_free(&out);
}

/* Console text as one O packet: gdb prints it. */
static void send_console(struct gdb_server *s, const char *text, size_t len)
{
	struct rsp_buf out;
	rsp_buf_init(&out);
	rsp_buf_putc(&out, 'O');
	rsp_buf_hex(&out, text, len);
	if (out.err == 0)
		rsp_send(&s->rsp, out.data, out.len);
	rsp_buf_free(&out);
}

void gdb_console_flush(struct gdb_server *s, bool stop_reply_next)
{
	/* gdb takes O packets while it waits for a stop reply (all-stop
	 * only: in non-stop mode nothing but notifications may come unasked) */
	bool attached = s->client_fd >= 0 && s->state != GDB_IDLE && s->state != GDB_CLOSING &&
			!gdb_ns_on(s);
	bool to_client = attached && (s->state == GDB_RUNNING || stop_reply_next);
	if (attached && !to_client)
		return;      /* stopped: the text waits for the next stop reply */
	char text[2048];
	uint64_t lost;
	size_t n;
	while ((n = debug_console_take(s->dbg, text, sizeof(text), &lost)) > 0 || lost) {
		if (lost) {
			char note[128];
			int k = snprintf(note, sizeof(note), "vmdb: %" PRIu64 " bytes of breakpoint "
					 "command output lost: the debugger took them too slowly\n",
					 lost);
			if (to_client)
				send_console(s, note, (size_t)k);
			else
				fputs(note, stderr);
		}
		if (n > 0 && to_client)
			send_console(s, text, n);
		else if (n > 0)
			fwrite(text, 1, n, stderr);
	}
}

const struct gdb_packet gdb_pkt_break[] = {
	{ "Z", pkt_bigz, true },
	{ "z", pkt_z, true },
	{ "QEnableErrorStrings", pkt_enable_error_strings, false },
	{ NULL, NULL, false },
};
