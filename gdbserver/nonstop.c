/* gdbserver/nonstop.c — non-stop mode (QNonStop:1): each vCPU stops and
 * runs on its own, stops reach the client as %Stop notifications that it
 * drains with vStopped, and vCont names the vCPUs it moves (c, s, t; a
 * range step is one step, which the protocol allows).
 *
 * The debug core works on a stopped machine (breakpoint tables, register
 * caches, step-overs with the others parked). Rather than make every call
 * of it safe against running vCPUs, a packet in non-stop mode pauses the
 * running vCPUs for the packet's length (debug_stop_all, then a resume
 * with RUN_ON for them): microseconds on emu, a kick per vCPU on kvm. A
 * vCPU the client stopped stays parked as long as the client likes, while
 * the others run, take their timers and IPIs; a vCPU resumed at one of our
 * breakpoints steps over it with the others parked for that one step, as
 * in all-stop mode (no displaced stepping: one instruction's pause is
 * shorter than any timer a kernel watches). */
#include "gdbserver/gdbserver_int.h"

#include <string.h>
#include <time.h>

/* How long a client that has the machine's end as a notification gets to
 * take it with vStopped before the connection closes under it. */
#define GDB_NS_EXIT_ACK_MS 2000

static bool is_end(const struct debug_event *ev)
{
	return ev->kind == DEBUG_EV_EXITED || ev->kind == DEBUG_EV_CRASHED;
}

bool gdb_ns_on(const struct gdb_server *s)
{
	return s->ns.on;
}

static void push(struct gdb_server *s, const struct debug_event *ev, bool quiet)
{
	struct gdb_nonstop *ns = &s->ns;
	if (ns->len == sizeof(ns->queue) / sizeof(ns->queue[0]))
		return;     /* one stop per vCPU and the machine's end: cannot fill */
	ns->queue[ns->len++] = (struct gdb_ns_stop){ *ev, quiet };
	if (!is_end(ev)) {
		ns->act[ev->vcpu] = DEBUG_ACT_STOP;
		ns->last[ev->vcpu] = ns->queue[ns->len - 1];
		ns->have_last[ev->vcpu] = true;
	}
}

/* Take every event the debug core holds for vCPUs the client let run. */
static void drain(struct gdb_server *s)
{
	struct debug_event ev;
	while (debug_next_event(s->dbg, &ev)) {
		if (ev.kind == DEBUG_EV_INTERRUPT)
			continue;     /* a stop request of all-stop mode: satisfied */
		if (!is_end(&ev) && ev.vcpu >= debug_nr_vcpus(s->dbg))
			continue;
		push(s, &ev, false);
	}
}

void gdb_ns_pause(struct gdb_server *s)
{
	s->ns.pauses++;
	debug_stop_all(s->dbg);
	drain(s);
}

/* Resume what runs; a resume that met an event first (a step done on this
 * thread, a step-over's watchpoint) ran nothing: take it and go again. */
int gdb_ns_release(struct gdb_server *s)
{
	unsigned n = debug_nr_vcpus(s->dbg);
	struct err e = { 0 };
	for (unsigned tries = 0; tries <= n + 1; tries++) {
		if (debug_machine_gone(s->dbg))
			return 0;
		bool any = false;
		for (unsigned i = 0; i < n; i++)
			any = any || s->ns.act[i] != DEBUG_ACT_STOP;
		if (!any)
			return 0;
		int r = debug_resume(s->dbg, s->ns.act, &e);
		if (r < 0)
			return gdb_error_words(s, r, &e);
		if (r == 0) {
			for (unsigned i = 0; i < n; i++)
				if (s->ns.act[i] == DEBUG_ACT_CONTINUE)
					s->ns.act[i] = DEBUG_ACT_RUN_ON;
			return 0;
		}
		drain(s);
	}
	return 0;
}

/* The queue's head as a stop reply, in s->reply. */
static void format_head(struct gdb_server *s)
{
	const struct gdb_ns_stop *st = &s->ns.queue[0];
	gdb_format_stop(s, &st->ev);
	if (st->quiet && s->reply.len >= 3 && s->reply.data[0] == 'T') {
		/* T00: a stop the client asked for carries no signal */
		s->reply.data[1] = '0';
		s->reply.data[2] = '0';
	}
}

void gdb_ns_flush(struct gdb_server *s)
{
	struct gdb_nonstop *ns = &s->ns;
	if (!ns->on || ns->in_flight || ns->len == 0 || s->client_fd < 0)
		return;
	format_head(s);
	gdb_send_notification(s, "Stop", s->reply.data, s->reply.len);
	ns->in_flight = true;
	rsp_buf_reset(&s->reply);
}

bool gdb_ns_end_unacked(const struct gdb_server *s)
{
	const struct gdb_nonstop *ns = &s->ns;
	return ns->on && ns->in_flight && ns->len > 0 && is_end(&ns->queue[0].ev) &&
	       s->client_fd >= 0;
}

/* gdb reads a notification, then asks for it with vStopped, and only the
 * answer makes it report the exit: closing before that leaves it with
 * "Remote connection closed" and no exit code. */
void gdb_ns_await_end_ack(struct gdb_server *s)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (gdb_ns_end_unacked(s)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long spent = (now.tv_sec - start.tv_sec) * 1000 +
			     (now.tv_nsec - start.tv_nsec) / 1000000;
		if (spent >= GDB_NS_EXIT_ACK_MS ||
		    !gdb_server_serve(s, (int)(GDB_NS_EXIT_ACK_MS - spent)))
			return;
	}
}

void gdb_ns_events(struct gdb_server *s)
{
	gdb_ns_pause(s);
	gdb_ns_release(s);
	gdb_ns_flush(s);
}

int gdb_ns_vcont(struct gdb_server *s, const enum debug_action *act, const bool *set)
{
	unsigned n = debug_nr_vcpus(s->dbg);
	gdb_ns_pause(s);
	for (unsigned i = 0; i < n; i++) {
		if (!set[i])
			continue;
		enum debug_action now = s->ns.act[i];
		if (act[i] == DEBUG_ACT_STOP && now != DEBUG_ACT_STOP) {
			struct debug_event ev = { .kind = DEBUG_EV_INTERRUPT, .vcpu = i };
			push(s, &ev, true);
		} else if (act[i] != DEBUG_ACT_STOP && now == DEBUG_ACT_STOP) {
			s->ns.act[i] = act[i];
		}
	}
	int r = gdb_ns_release(s);
	if (r != 0)
		return r;
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

void gdb_ns_interrupt(struct gdb_server *s)
{
	unsigned n = debug_nr_vcpus(s->dbg);
	gdb_ns_pause(s);
	/* the current vCPU when it runs, else the first that does */
	int pick = s->ns.act[s->cur_g] != DEBUG_ACT_STOP ? (int)s->cur_g : -1;
	for (unsigned i = 0; i < n && pick < 0; i++)
		if (s->ns.act[i] != DEBUG_ACT_STOP)
			pick = (int)i;
	if (pick >= 0) {
		struct debug_event ev = { .kind = DEBUG_EV_INTERRUPT, .vcpu = (unsigned)pick };
		push(s, &ev, false);
	}
	gdb_ns_release(s);
}

void gdb_ns_reset(struct gdb_server *s)
{
	memset(&s->ns, 0, sizeof(s->ns));
}

/* Every vCPU stopped, as the client knows it after a mode change. */
static void all_stopped(struct gdb_server *s)
{
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++)
		s->ns.act[i] = DEBUG_ACT_STOP;
}

/* QNonStop:1 / QNonStop:0 — either way every vCPU is stopped after it. */
static int pkt_qnonstop(struct gdb_server *s, struct rsp_cur *args)
{
	char c;
	if (!rsp_skip_char(args, ':') || rsp_take_char(args, &c) < 0 || (c != '0' && c != '1') ||
	    !rsp_at_end(args))
		return -EINVAL;
	if (s->ns.on)
		gdb_ns_pause(s);
	else
		debug_stop_all(s->dbg);
	gdb_ns_reset(s);
	all_stopped(s);
	s->range_active = false;     /* stopped: a range step under way ends here */
	s->ns.on = c == '1';
	debug_set_non_stop(s->dbg, s->ns.on);
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

/* vStopped — the client took the head of the queue; the next one, or OK. */
static int pkt_vstopped(struct gdb_server *s, struct rsp_cur *args)
{
	struct gdb_nonstop *ns = &s->ns;
	(void)args;
	if (!ns->on)
		return -EINVAL;
	if (ns->in_flight && ns->len > 0) {
		/* the machine's end taken: the connection closes after this reply */
		if (is_end(&ns->queue[0].ev))
			gdb_set_state(s, GDB_CLOSING);
		memmove(&ns->queue[0], &ns->queue[1], (ns->len - 1) * sizeof(ns->queue[0]));
		ns->len--;
	}
	if (ns->len == 0) {
		ns->in_flight = false;
		rsp_buf_printf(&s->reply, "OK");
		return 0;
	}
	format_head(s);
	ns->in_flight = true;
	return 0;
}

/* ? in non-stop mode — the current vCPU, stopped; every other one runs.
 * Listing every stopped vCPU (the first here, the rest through vStopped)
 * is what the protocol allows, but gdb 13 fails an internal assertion when
 * it meets more than one stopped thread at connection: so the others are
 * let go, as gdb then believes them to be. */
static int pkt_ns_why(struct gdb_server *s, struct rsp_cur *args)
{
	struct gdb_nonstop *ns = &s->ns;
	unsigned who = s->cur_g;
	(void)args;
	gdb_ns_pause(s);
	ns->len = 0;
	ns->in_flight = false;
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++)
		if (i != who && ns->act[i] == DEBUG_ACT_STOP)
			ns->act[i] = DEBUG_ACT_CONTINUE;
	if (ns->act[who] == DEBUG_ACT_STOP) {
		struct gdb_ns_stop st = { .ev = { .kind = DEBUG_EV_INTERRUPT, .vcpu = who },
					  .quiet = true };
		ns->queue[ns->len++] = ns->have_last[who] ? ns->last[who] : st;
	}
	int r = gdb_ns_release(s);
	if (r != 0)
		return r;
	if (ns->len == 0) {
		rsp_buf_printf(&s->reply, "OK");
		return 0;
	}
	/* the reply is the head, as a notification would carry it */
	ns->in_flight = true;
	format_head(s);
	return 0;
}

static int pkt_vctrlc(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	if (!s->ns.on)
		return -EINVAL;
	gdb_ns_interrupt(s);
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

int gdb_ns_why(struct gdb_server *s, struct rsp_cur *args)
{
	return pkt_ns_why(s, args);
}

const struct gdb_packet gdb_pkt_nonstop[] = {
	{ "QNonStop", pkt_qnonstop, false, true },
	{ "vStopped", pkt_vstopped, false, true },
	{ "vCtrlC", pkt_vctrlc, false, true },
	{ NULL, NULL, false, false },
};
