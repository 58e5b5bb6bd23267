/* gdbserver/pkt_query.c — what the client asks about the target:
 * qSupported, no-ack mode, target.xml, threads (= vCPUs, id = index + 1),
 * the current thread, attach state and the last stop. */
#include "gdbserver/gdbserver_int.h"

#include <stdio.h>
#include <string.h>

#include "debug/reverse.h"

/* Does the client's qSupported list (";"-separated, after ':') hold
 * the feature `name+`? */
static bool client_has(struct rsp_cur args, const char *name)
{
	size_t n = strlen(name);

	rsp_skip_char(&args, ':');
	while (!rsp_at_end(&args)) {
		const char *semi = memchr(args.p, ';', rsp_left(&args));
		size_t len = semi ? (size_t)(semi - args.p) : rsp_left(&args);
		if (len == n + 1 && memcmp(args.p, name, n) == 0 && args.p[n] == '+')
			return true;
		args.p += semi ? len + 1 : len;
	}
	return false;
}

static int pkt_qsupported(struct gdb_server *s, struct rsp_cur *args)
{
	/* stop replies name swbreak/hwbreak only to a client that said it
	 * understands them (the others take an unknown reason as an error) */
	s->client_swbreak = client_has(*args, "swbreak");
	s->client_hwbreak = client_has(*args, "hwbreak");
	s->client_binary_upload = client_has(*args, "binary-upload");
	s->view = NULL;      /* a new session: its target.xml read chooses again */
	rsp_buf_printf(&s->reply,
		       "PacketSize=%x;qXfer:features:read+;qXfer:threads:read+;"
		       "qXfer:exec-file:read+;qXfer:memory-map:read+;vContSupported+;swbreak+;hwbreak+;"
		       "ConditionalBreakpoints+;BreakpointCommands+;QStartNoAckMode+;QNonStop+;multiprocess-%s%s",
		       GDB_PACKET_SIZE,
		       s->client_binary_upload ? ";binary-upload+" : "",
		       debug_reverse_supported(s->dbg) ? ";ReverseStep+;ReverseContinue+" : "");
	return 0;
}

static int pkt_start_noack(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "OK");
	gdb_send_reply(s);           /* acknowledged in ack mode, then switch */
	rsp_set_noack(&s->rsp, true);
	return GDB_NO_REPLY;
}

static int pkt_qfthreadinfo(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_putc(&s->reply, 'm');
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++)
		rsp_buf_printf(&s->reply, "%s%x", i ? "," : "", i + 1);
	return 0;
}

static int pkt_qsthreadinfo(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_putc(&s->reply, 'l');
	return 0;
}

static int pkt_qc(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "QC%x", s->cur_g + 1);
	return 0;
}

static int pkt_qattached(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_putc(&s->reply, '1');   /* detach, not kill, when gdb quits */
	return 0;
}

static int pkt_qthreadextrainfo(struct gdb_server *s, struct rsp_cur *args)
{
	int vcpu;
	char text[128];

	if (!rsp_skip_char(args, ','))
		return -EINVAL;
	int r = gdb_parse_thread(s, args, '\0', &vcpu);
	if (r < 0)
		return r;
	if (!gdb_valid_vcpu(s, vcpu))
		return -ESRCH;
	debug_describe_vcpu(s->dbg, (unsigned)vcpu, text, sizeof(text));
	rsp_buf_hex(&s->reply, text, strlen(text));
	return 0;
}

/* H g TID / H c TID */
static int pkt_h(struct gdb_server *s, struct rsp_cur *args)
{
	char op;
	int vcpu;
	if (rsp_take_char(args, &op) < 0 || (op != 'g' && op != 'c'))
		return -EINVAL;
	int r = gdb_parse_thread(s, args, '\0', &vcpu);
	if (r < 0)
		return r;
	if (op == 'g') {
		/* "all threads" for registers means any one: keep the current */
		if (vcpu >= 0)
			s->cur_g = (unsigned)vcpu;
	} else {
		s->cur_c = vcpu;
	}
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

static int pkt_t(struct gdb_server *s, struct rsp_cur *args)
{
	int vcpu;
	int r = gdb_parse_thread(s, args, '\0', &vcpu);
	if (r < 0)
		return r;
	if (!gdb_valid_vcpu(s, vcpu))
		return -ESRCH;
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

/* ? — why the machine is stopped: the last stop's signal, or a plain
 * SIGTRAP (attach) for the current vCPU. */
static int pkt_why(struct gdb_server *s, struct rsp_cur *args)
{
	if (gdb_ns_on(s))
		return gdb_ns_why(s, args);
	if (s->have_last_stop)
		rsp_buf_printf(&s->reply, "T%02xthread:%x;core:%x;", gdb_stop_signal(&s->last_stop),
			       s->last_stop.vcpu + 1, s->last_stop.vcpu);
	else
		rsp_buf_printf(&s->reply, "T05thread:%x;core:%x;", s->cur_g + 1, s->cur_g);
	return 0;
}

const struct gdb_packet gdb_pkt_query[] = {
	{ "qSupported", pkt_qsupported, false },
	{ "QStartNoAckMode", pkt_start_noack, false },
	{ "qXfer", gdb_pkt_qxfer, false },
	{ "qfThreadInfo", pkt_qfthreadinfo, true, true },
	{ "qsThreadInfo", pkt_qsthreadinfo, true, true },
	{ "qC", pkt_qc, true, true },
	{ "qAttached", pkt_qattached, false },
	{ "qThreadExtraInfo", pkt_qthreadextrainfo, true },
	{ "H", pkt_h, true, true },
	{ "T", pkt_t, true, true },
	{ "?", pkt_why, true, true },
	{ NULL, NULL, false },
};
