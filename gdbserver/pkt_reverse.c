/* gdbserver/pkt_reverse.c — reverse execution: bs (step the current vCPU
 * back one instruction) and bc (run back to the last breakpoint or
 * watchpoint hit), offered in qSupported as ReverseStep+ and
 * ReverseContinue+ where the engine records (debug/reverse.h). At the
 * start of the history the stop reply says replaylog:begin, which gdb
 * prints as "No more reverse-execution history". gdb builds
 * reverse-step, reverse-next and reverse-finish from these and
 * breakpoints. Forward moves inside the history are ordinary vCont
 * packets: the debug core replays them. Also the monitor's record
 * commands. */
#include "gdbserver/gdbserver_int.h"
#include "gdbserver/monitor.h"

#include <stdio.h>
#include <string.h>

#include "debug/reverse.h"

static int reverse_reply(struct gdb_server *s, bool step)
{
	struct debug_event ev;
	bool at_start = false;
	struct err e = { 0 };
	unsigned vcpu = s->cur_c >= 0 ? (unsigned)s->cur_c : s->cur_g;
	/* the history is the whole machine's: one thread cannot go back while
	 * the others run on */
	if (gdb_ns_on(s)) {
		err_set(&e, EINVAL, "reverse execution needs all-stop mode (set non-stop off)");
		return gdb_error_words(s, -EINVAL, &e);
	}
	int r = step ? debug_reverse_step(s->dbg, vcpu, &ev, &at_start, &e)
		     : debug_reverse_continue(s->dbg, vcpu, &ev, &at_start, &e);
	if (r < 0)
		return gdb_error_words(s, r, &e);
	gdb_format_stop(s, &ev);
	if (at_start)
		rsp_buf_printf(&s->reply, "replaylog:begin;");
	s->cur_g = ev.vcpu;
	s->last_stop = ev;
	s->have_last_stop = true;
	return 0;
}

/* b + s or c: the packet name is its first letter (server.c) */
static int pkt_b(struct gdb_server *s, struct rsp_cur *args)
{
	char what;
	if (rsp_take_char(args, &what) < 0 || !rsp_at_end(args) || (what != 's' && what != 'c'))
		return -EINVAL;
	return reverse_reply(s, what == 's');
}

/* record goto N: the stopped machine to instruction N of the history */
static int mon_record_goto(struct gdb_server *s, const char *arg)
{
	uint64_t target;
	struct err e = { 0 };
	if (mon_number(arg, UINT64_MAX, &target) < 0)
		return -EINVAL;
	if (gdb_ns_on(s)) {      /* as reverse_reply: the history is the whole machine's */
		mon_print(s, "monitor record goto: needs all-stop mode (set non-stop off)\n");
		return 0;
	}
	if (debug_reverse_goto(s->dbg, target, &e) < 0) {
		mon_print(s, "monitor record goto: %s\n", e.msg);
		return 0;
	}
	/* gdb keeps the registers it read before the command */
	mon_print(s, "now at instruction %llu; gdb shows the old registers until `maintenance "
		  "flush register-cache` (or the next stop)\n", (unsigned long long)target);
	return 0;
}

/* monitor record on [SIZE] | off | goto N */
int mon_record(struct gdb_server *s, const char *arg)
{
	char word[8], size[32], extra[2];
	if (!strncmp(arg, "goto ", 5))
		return mon_record_goto(s, arg + 5);
	uint64_t budget = 0;
	int n = sscanf(arg, "%7s %31s %1s", word, size, extra);
	bool on = n >= 1 && strcmp(word, "on") == 0;
	if (n < 1 || n > 2 || (!on && strcmp(word, "off")) || (n == 2 && !on))
		return -EINVAL;
	if (n == 2 && (mon_number(size, UINT64_MAX, &budget) < 0 || budget < (1ull << 20)))
		return -EINVAL;
	struct err e = { 0 };
	if (debug_record(s->dbg, on, budget, &e) < 0) {
		mon_print(s, "monitor record: %s\n", e.msg);
		return 0;
	}
	mon_print(s, on ? "recording (from the next instruction)\n"
			: "not recording; the history is forgotten\n");
	return 0;
}

int mon_info_record(struct gdb_server *s, const char *arg)
{
	char text[1024];
	if (*arg)
		return -EINVAL;
	debug_record_describe(s->dbg, text, sizeof(text));
	mon_print(s, "%s", text);
	return 0;
}

const struct gdb_packet gdb_pkt_reverse[] = {
	{ "b", pkt_b, true },
	{ NULL, NULL, false },
};
