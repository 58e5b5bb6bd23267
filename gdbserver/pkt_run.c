/* gdbserver/pkt_run.c — everything that lets the machine go: vCont (c, C,
 * s, S, t, r per thread), legacy c/C/s/S, detach and kill. Signals in C/S
 * mean nothing to a virtual machine and are ignored. Range stepping (r)
 * steps here, one step after another, and answers only once the pc has
 * left the range (or anything else stopped the machine): one round trip
 * for a whole source line. */
#include "gdbserver/gdbserver_int.h"

#include <string.h>

int gdb_resume(struct gdb_server *s, const enum debug_action *actions)
{
	struct err e = { 0 };
	int r = debug_resume(s->dbg, actions, &e);
	if (r < 0)
		return gdb_error_words(s, r, &e);
	gdb_set_state(s, GDB_RUNNING);
	if (r == 1) {
		/* an event was already waiting (nothing ran), or the step ran on
		 * this thread and its event is queued */
		gdb_report_stop(s);
		return GDB_NO_REPLY;
	}
	/* a step ends in microseconds: answer it without a trip through poll */
	bool step = false;
	for (unsigned i = 0; i < debug_nr_vcpus(s->dbg); i++)
		step = step || actions[i] == DEBUG_ACT_STEP;
	if (step && debug_wait_step_event(s->dbg))
		gdb_report_stop(s);
	return GDB_NO_REPLY;
}

enum gdb_range_next gdb_range_step(struct gdb_server *s, const struct debug_event *ev)
{
	struct x86_regs regs;
	struct err e = { 0 };
	if (!s->range_active)
		return GDB_RANGE_REPORT;
	if (ev->kind != DEBUG_EV_STEP || ev->vcpu != s->range_vcpu ||
	    debug_read_regs(s->dbg, ev->vcpu, &regs) < 0 || regs.rip < s->range_start ||
	    regs.rip >= s->range_end || debug_client_breakpoint_at(s->dbg, regs.rip)) {
		s->range_active = false;
		return GDB_RANGE_REPORT;
	}
	int r = debug_resume(s->dbg, s->range_actions, &e);
	if (r < 0) {
		s->range_active = false;    /* the step that ended here is reported */
		return GDB_RANGE_REPORT;
	}
	if (r == 1 || debug_wait_step_event(s->dbg))
		return GDB_RANGE_AGAIN;
	return GDB_RANGE_WAIT;
}

static int pkt_vcont_query(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "vCont;c;C;s;S;t;r");
	return 0;
}

/* The START,END of an r action. */
static int take_range(struct gdb_server *s, struct rsp_cur *args)
{
	const char *p = args->p;
	while (p < args->end && *p != ':' && *p != ';')
		p++;
	struct rsp_cur rc = { args->p, p };
	if (rsp_take_hex(&rc, ',', &s->range_start) < 0 || rsp_take_hex(&rc, '\0', &s->range_end) < 0)
		return -EINVAL;
	args->p = p;
	return 0;
}

/* One "a[SIG][:TID]" action; *vcpu is -1 when it names no thread. */
static int take_action(struct gdb_server *s, struct rsp_cur *args, enum debug_action *act,
		       int *vcpu)
{
	char a;
	uint64_t sig;
	if (rsp_take_char(args, &a) < 0)
		return -EINVAL;
	switch (a) {
	case 'c': *act = DEBUG_ACT_CONTINUE; break;
	case 's': *act = DEBUG_ACT_STEP; break;
	case 't': *act = DEBUG_ACT_STOP; break;
	case 'C': *act = DEBUG_ACT_CONTINUE; break;
	case 'S': *act = DEBUG_ACT_STEP; break;
	case 'r': *act = DEBUG_ACT_STEP; break;
	default: return -EINVAL;
	}
	if (a == 'r' && take_range(s, args) < 0)
		return -EINVAL;
	if (a == 'C' || a == 'S') {
		const char *p = args->p;
		while (p < args->end && *p != ':' && *p != ';')
			p++;
		struct rsp_cur sc = { args->p, p };
		if (rsp_take_hex(&sc, '\0', &sig) < 0)
			return -EINVAL;
		args->p = p;
	}
	*vcpu = -1;
	if (rsp_skip_char(args, ':')) {
		const char *p = args->p;
		while (p < args->end && *p != ';')
			p++;
		struct rsp_cur tc = { args->p, p };
		int r = gdb_parse_thread(s, &tc, '\0', vcpu);
		if (r < 0)
			return r;
		args->p = p;
	}
	if (!rsp_at_end(args) && !rsp_skip_char(args, ';'))
		return -EINVAL;
	return 0;
}

/* vCont;ACTION[:TID];... — the leftmost action naming a thread wins. */
static int pkt_vcont(struct gdb_server *s, struct rsp_cur *args)
{
	unsigned n = debug_nr_vcpus(s->dbg);
	enum debug_action actions[VM_MAX_VCPUS];
	bool set[VM_MAX_VCPUS] = { false };
	bool any_runs = false;

	if (!rsp_skip_char(args, ';'))
		return -EINVAL;
	s->range_active = false;
	while (!rsp_at_end(args)) {
		enum debug_action act;
		int vcpu;
		bool range = args->p < args->end && *args->p == 'r';
		int r = take_action(s, args, &act, &vcpu);
		if (r < 0)
			return r;
		if (range && !s->range_active) {
			/* one range per resume, for the thread it names (gdb sends
			 * one); without a thread: the current one */
			s->range_active = s->range_start < s->range_end;
			s->range_vcpu = vcpu >= 0 ? (unsigned)vcpu : s->cur_g;
		}
		for (unsigned i = 0; i < n; i++) {
			if (set[i] || (vcpu >= 0 && (unsigned)vcpu != i))
				continue;
			actions[i] = act;
			set[i] = true;
		}
	}
	if (gdb_ns_on(s)) {
		s->range_active = false;     /* non-stop: a range step is one step */
		return gdb_ns_vcont(s, actions, set);
	}
	for (unsigned i = 0; i < n; i++) {
		if (!set[i])
			actions[i] = DEBUG_ACT_STOP;
		any_runs = any_runs || actions[i] != DEBUG_ACT_STOP;
	}
	if (!any_runs) {
		rsp_buf_printf(&s->reply, "OK");   /* only "t": everything is stopped already */
		return 0;
	}
	memcpy(s->range_actions, actions, n * sizeof(actions[0]));
	return gdb_resume(s, actions);
}

/* Legacy c/s [ADDR] and C/S SIG[;ADDR]: resume at ADDR when given. */
static int legacy_resume(struct gdb_server *s, struct rsp_cur *args, bool step, bool has_sig)
{
	enum debug_action actions[VM_MAX_VCPUS];
	unsigned n = debug_nr_vcpus(s->dbg);
	unsigned who = s->cur_c >= 0 ? (unsigned)s->cur_c : s->cur_g;
	uint64_t v;

	if (gdb_ns_on(s))
		return -EINVAL;      /* non-stop mode moves threads with vCont only */
	if (has_sig && rsp_take_hex(args, ';', &v) < 0)
		return -EINVAL;
	if (!rsp_at_end(args)) {
		struct debug_cpu_state st;
		if (rsp_take_hex(args, '\0', &v) < 0)
			return -EINVAL;
		if (debug_read_state(s->dbg, who, &st) < 0)
			return -EIO;
		st.regs.rip = v;
		struct err e = { 0 };
		if (debug_write_state(s->dbg, who, &st, DEBUG_STATE_REGS, &e) < 0)
			return gdb_error_words(s, -EIO, &e);
	}
	for (unsigned i = 0; i < n; i++)
		actions[i] = step ? (i == who ? DEBUG_ACT_STEP : DEBUG_ACT_STOP) : DEBUG_ACT_CONTINUE;
	return gdb_resume(s, actions);
}

static int pkt_c(struct gdb_server *s, struct rsp_cur *args)
{
	return legacy_resume(s, args, false, false);
}

static int pkt_bigc(struct gdb_server *s, struct rsp_cur *args)
{
	return legacy_resume(s, args, false, true);
}

static int pkt_s(struct gdb_server *s, struct rsp_cur *args)
{
	return legacy_resume(s, args, true, false);
}

static int pkt_bigs(struct gdb_server *s, struct rsp_cur *args)
{
	return legacy_resume(s, args, true, true);
}

/* D — the reply goes out first; closing the connection detaches (server.c
 * removes every breakpoint and lets the machine run). */
static int pkt_d(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "OK");
	gdb_send_reply(s);
	gdb_set_state(s, GDB_CLOSING);
	return GDB_NO_REPLY;
}

static int do_kill(struct gdb_server *s)
{
	gdb_set_state(s, GDB_CLOSING);
	/* the debug core changes breakpoints on a stopped machine only: k and
	 * vKill are taken while the machine runs in all-stop mode, when a vCPU
	 * may be evaluating a breakpoint's condition */
	debug_stop_all(s->dbg);
	debug_remove_all_breakpoints(s->dbg);
	vm_request_exit(s->vm, 0, "killed by the debugger");
	return GDB_NO_REPLY;
}

/* k: gdb expects no reply; lldb waits for one, and an exit reply after
 * which the connection closes is harmless to gdb. */
static int pkt_k(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "X09");
	gdb_send_reply(s);
	return do_kill(s);
}

static int pkt_vkill(struct gdb_server *s, struct rsp_cur *args)
{
	(void)args;
	rsp_buf_printf(&s->reply, "OK");
	gdb_send_reply(s);
	return do_kill(s);
}

const struct gdb_packet gdb_pkt_run[] = {
	{ "vCont?", pkt_vcont_query, false },
	{ "vCont", pkt_vcont, true, true },
	{ "c", pkt_c, true },
	{ "C", pkt_bigc, true },
	{ "s", pkt_s, true },
	{ "S", pkt_bigs, true },
	{ "D", pkt_d, false },
	{ "k", pkt_k, false },
	{ "vKill", pkt_vkill, false },
	{ NULL, NULL, false },
};
