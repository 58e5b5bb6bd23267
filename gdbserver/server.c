/* gdbserver/server.c — listening, the one client, the server thread and
 * packet dispatch. The thread polls three descriptors: the listening
 * socket, the client and an eventfd that the debug core rings when an
 * event is queued (and gdbserver_stop rings to end the thread). */
#include "gdbserver/gdbserver_int.h"
#include "gdbserver/monitor.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GDB_DEFAULT_ADDR "tcp:127.0.0.1:1234"

static const struct gdb_packet *const gdb_tables[] = {
	gdb_pkt_query, gdb_pkt_regs, gdb_pkt_mem, gdb_pkt_break, gdb_pkt_run, gdb_pkt_monitor,
	gdb_pkt_nonstop, gdb_pkt_reverse,
};

/* ---- state ---- */

/* The one place the connection state changes. Leaving a client behind
 * (IDLE from anywhere) undoes everything it did to the machine. */
void gdb_set_state(struct gdb_server *s, enum gdb_state next)
{
	enum gdb_state prev = s->state;
	if (prev == next)
		return;
	s->state = next;
	switch (next) {
	case GDB_STOPPED:
		if (prev == GDB_IDLE) {
			debug_attach(s->dbg);
			s->cur_g = 0;
			s->cur_c = -1;
			s->mon_vcpu = -1;
			s->phys = false;
			s->error_strings = false;
			s->have_last_stop = false;
			s->range_active = false;
		}
		break;
	case GDB_IDLE:
		/* the next client announces its own features */
		s->client_swbreak = false;
		s->client_binary_upload = false;
		s->client_hwbreak = false;
		s->range_active = false;     /* its range step ends with it */
		gdb_ns_reset(s);
		if (prev != GDB_IDLE && !debug_machine_gone(s->dbg))
			debug_detach(s->dbg);
		break;
	case GDB_RUNNING:
	case GDB_CLOSING:
		break;
	}
}

/* ---- client I/O ---- */

/* A client that takes none of our bytes for this long has stopped reading
 * its socket: it is dropped as a disconnect, so the server can go on
 * serving Ctrl-C, the machine and the next client. */
#define GDB_SEND_STALL_MS 5000

static void client_write(void *opaque, const void *buf, size_t len)
{
	struct gdb_server *s = opaque;
	const char *p = buf;
	while (len > 0 && s->client_fd >= 0 && !s->client_lost) {
		ssize_t n = send(s->client_fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = s->client_fd, .events = POLLOUT };
			int r = poll(&pfd, 1, GDB_SEND_STALL_MS);
			if (r != 0)
				continue;       /* room, an error to meet in send, or EINTR */
			fprintf(stderr, "vmdb: the debugger read nothing for %d s: dropping it as "
				"disconnected\n", GDB_SEND_STALL_MS / 1000);
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* the client is gone; client_recv notices and detaches */
			shutdown(s->client_fd, SHUT_RDWR);
			s->client_lost = true;
			return;
		}
		p += n;
		len -= (size_t)n;
	}
}

void gdb_send_reply(struct gdb_server *s)
{
	if (s->reply.err < 0) {
		rsp_buf_reset(&s->reply);
		rsp_buf_printf(&s->reply, "E12");   /* ENOMEM */
	}
	rsp_send(&s->rsp, s->reply.data ? s->reply.data : "", s->reply.len);
}

/* "%NAME:payload#cs": no acknowledgment either way, so the rsp layer's
 * kept packet (an unacknowledged reply) stays as it is. Stop replies need
 * no escapes. */
void gdb_send_notification(struct gdb_server *s, const char *name, const char *payload,
			   size_t len)
{
	struct rsp_buf out;
	unsigned sum = 0;
	rsp_buf_init(&out);
	rsp_buf_printf(&out, "%%%s:", name);
	rsp_buf_append(&out, payload, len);
	for (size_t i = 1; i < out.len; i++)
		sum += (unsigned char)out.data[i];
	rsp_buf_printf(&out, "#%02x", sum & 0xff);
	if (out.err == 0)
		client_write(s, out.data, out.len);
	rsp_buf_free(&out);
}

/* ---- dispatch ---- */

/* The packet name: one letter, or for the q/Q/v families the whole word
 * (letters and digits, plus a '?' that ends it as in "vCont?"). Names are
 * matched whole, never by prefix. */
static size_t packet_name_len(const char *data, size_t len)
{
	if (len == 0)
		return 0;
	if (data[0] != 'q' && data[0] != 'Q' && data[0] != 'v')
		return 1;
	size_t n = 1;
	while (n < len && ((data[n] >= 'a' && data[n] <= 'z') || (data[n] >= 'A' && data[n] <= 'Z') ||
			   (data[n] >= '0' && data[n] <= '9')))
		n++;
	if (n < len && data[n] == '?')
		n++;
	return n;
}

static const struct gdb_packet *find_packet(const char *name, size_t len)
{
	for (size_t t = 0; t < sizeof(gdb_tables) / sizeof(gdb_tables[0]); t++)
		for (const struct gdb_packet *p = gdb_tables[t]; p->name; p++)
			if (p->name[0] == name[0] && strlen(p->name) == len &&
			    memcmp(p->name, name, len) == 0)
				return p;
	return NULL;
}

/* errno -> "Enn", the one place: two decimal digits, as gdb stubs
 * traditionally send (EFAULT -> E14 for memory). */
static void error_reply(struct gdb_server *s, int r)
{
	int code = -r;
	if (code <= 0 || code > 99)
		code = EIO;
	rsp_buf_reset(&s->reply);
	rsp_buf_printf(&s->reply, "E%02d", code);
}

/* Non-stop mode: the packet wants the running vCPUs paused around it. */
static bool gdb_ns_needs_pause(const struct gdb_server *s, const struct gdb_packet *p)
{
	if (!gdb_ns_on(s) || p->own_pause)
		return false;
	return !p->held_ok || s->ns.act[s->cur_g] != DEBUG_ACT_STOP;
}

static void on_packet(void *opaque, const char *data, size_t len)
{
	struct gdb_server *s = opaque;
	size_t name_len = packet_name_len(data, len);
	const struct gdb_packet *p = find_packet(data, name_len);
	struct rsp_cur args = rsp_cur_make(data + name_len, len - name_len);
	int r;

	/* the first valid packet makes a connection a debugger: a port probe
	 * that connects and leaves neither stops nor releases the machine */
	if (s->state == GDB_IDLE)
		gdb_set_state(s, GDB_STOPPED);
	rsp_buf_reset(&s->reply);
	if (!p) {
		r = 0;                          /* unknown: empty reply */
	} else if (p->needs_stopped && s->state != GDB_STOPPED) {
		r = -EBUSY;
	} else if (gdb_ns_needs_pause(s, p)) {
		gdb_ns_pause(s);
		r = p->fn(s, &args);
		if (s->state != GDB_CLOSING && gdb_ns_on(s)) {
			struct rsp_buf keep = s->reply;    /* the handler's reply */
			rsp_buf_init(&s->reply);
			int rr = gdb_ns_release(s);
			if (rr != 0) {
				rsp_buf_free(&keep);
				r = rr;
			} else {
				rsp_buf_free(&s->reply);
				s->reply = keep;
			}
		}
	} else {
		r = p->fn(s, &args);
	}
	if (r != GDB_NO_REPLY) {
		if (r < 0)
			error_reply(s, r);
		gdb_send_reply(s);
	}
	gdb_ns_flush(s);
}

static void on_interrupt(void *opaque)
{
	struct gdb_server *s = opaque;
	if (gdb_ns_on(s)) {
		gdb_ns_interrupt(s);
		gdb_ns_flush(s);
	} else if (s->state == GDB_RUNNING) {
		debug_interrupt(s->dbg, s->cur_g);
	}
}

static const struct rsp_ops gdb_rsp_ops = {
	.write = client_write,
	.packet = on_packet,
	.interrupt = on_interrupt,
};

/* ---- threads ---- */

int gdb_error(struct gdb_server *s, int r, const struct err *e)
{
	if (!s->error_strings || !e || !e->msg[0])
		return r;
	rsp_buf_printf(&s->reply, "E%02d;", -r > 0 && -r <= 99 ? -r : EIO);
	rsp_buf_hex(&s->reply, e->msg, strlen(e->msg));
	return 0;
}

int gdb_error_words(struct gdb_server *s, int r, const struct err *e)
{
	if (s->error_strings || !e || !e->msg[0])
		return gdb_error(s, r, e);
	rsp_buf_printf(&s->reply, "E.%s", e->msg);
	return 0;
}

bool gdb_valid_vcpu(const struct gdb_server *s, int vcpu)
{
	return vcpu >= 0 && (unsigned)vcpu < debug_nr_vcpus(s->dbg);
}

int gdb_parse_thread(struct gdb_server *s, struct rsp_cur *c, char sep, int *vcpu)
{
	uint64_t tid;
	if (rsp_skip_str(c, "-1")) {
		if (!rsp_at_end(c) && !rsp_skip_char(c, sep))
			return -EINVAL;
		*vcpu = -1;
		return 0;
	}
	if (rsp_take_hex(c, sep, &tid) < 0)
		return -EINVAL;
	if (tid == 0) {
		*vcpu = (int)s->cur_g;      /* "any thread" */
		return 0;
	}
	if (tid > debug_nr_vcpus(s->dbg))
		return -ESRCH;
	*vcpu = (int)(tid - 1);
	return 0;
}

/* ---- stop replies ---- */

/* The signal gdb expects for a caught exception, as a Unix kernel would
 * send it to a process. */
static int vector_signal(unsigned vector)
{
	switch (vector) {
	case X86_DE:
	case X86_MF:
	case X86_XM:
		return GDB_SIGFPE;
	case X86_UD:
		return GDB_SIGILL;
	case X86_DB:
	case X86_BP:
		return GDB_SIGTRAP;
	default:
		return GDB_SIGSEGV;
	}
}

int gdb_stop_signal(const struct debug_event *ev)
{
	switch (ev->kind) {
	case DEBUG_EV_INTERRUPT:
		return GDB_SIGINT;
	case DEBUG_EV_CATCH:
		return vector_signal(ev->vector);
	case DEBUG_EV_FATAL:
	case DEBUG_EV_CRASHED:
		return ev->signal;
	default:
		return GDB_SIGTRAP;
	}
}

/* "T" + the signal in two digits + "thread:N;": the head of most stop
 * replies, built without a format (one per step). */
static void stop_head_thread(struct gdb_server *s, int sig, unsigned tid)
{
	rsp_buf_putc(&s->reply, 'T');
	rsp_buf_hexnum(&s->reply, (unsigned)sig, 2);
	rsp_buf_str(&s->reply, "thread:");
	rsp_buf_hexnum(&s->reply, tid, 1);
	rsp_buf_putc(&s->reply, ';');
}

/* "T05thread:N;" and the like; *reason gets what follows the expedited
 * registers ("swbreak:;"). */
static void format_stop_head(struct gdb_server *s, const struct debug_event *ev, const char **reason)
{
	unsigned tid = ev->vcpu + 1;
	*reason = "";
	rsp_buf_reset(&s->reply);
	switch (ev->kind) {
	case DEBUG_EV_SWBREAK:
	case DEBUG_EV_HWBREAK:
		if (ev->kind == DEBUG_EV_SWBREAK ? s->client_swbreak : s->client_hwbreak)
			*reason = ev->kind == DEBUG_EV_SWBREAK ? "swbreak:;" : "hwbreak:;";
		stop_head_thread(s, GDB_SIGTRAP, tid);
		break;
	case DEBUG_EV_WATCH:
	case DEBUG_EV_RWATCH:
	case DEBUG_EV_AWATCH:
		/* the watchpoint's start as the client inserted it (not the
		 * piece of it that hit): gdb matches it against its own */
		rsp_buf_printf(&s->reply, "T05%s:%" PRIx64 ";thread:%x;",
			       ev->kind == DEBUG_EV_WATCH ? "watch" :
			       ev->kind == DEBUG_EV_RWATCH ? "rwatch" : "awatch", ev->addr, tid);
		break;
	case DEBUG_EV_STEP:
	case DEBUG_EV_TRAP:
	case DEBUG_EV_INTERRUPT:
	case DEBUG_EV_CATCH:
	case DEBUG_EV_ACCESS:
	case DEBUG_EV_OUTPUT:
	case DEBUG_EV_FATAL:
		stop_head_thread(s, gdb_stop_signal(ev), tid);
		break;
	case DEBUG_EV_EXITED:
		rsp_buf_printf(&s->reply, "W%02x", ev->status & 0xff);
		break;
	case DEBUG_EV_CRASHED:
		rsp_buf_printf(&s->reply, "X%02x", ev->signal & 0xff);
		break;
	}
	/* the vCPU is the core the stop happened on */
	if (ev->kind != DEBUG_EV_EXITED && ev->kind != DEBUG_EV_CRASHED) {
		rsp_buf_str(&s->reply, "core:");
		rsp_buf_hexnum(&s->reply, ev->vcpu, 1);
		rsp_buf_putc(&s->reply, ';');
	}
}

/* A caught exception stops at its handler, a caught access after its
 * instruction, a fatal exit where it happened; say what it was and from
 * where on the client's console (an O packet, allowed before a stop
 * reply), since the stop reply itself can only carry a signal. */
static void explain_stop(struct gdb_server *s, const struct debug_event *ev)
{
	char text[640];
	struct rsp_buf out;
	int n = snprintf(text, sizeof(text), "vmdb: ");
	if (ev->kind == DEBUG_EV_ACCESS)
		debug_catch_access_explain(ev, text + n, sizeof(text) - (size_t)n);
	else if (ev->kind == DEBUG_EV_FATAL)
		debug_fatal_explain(s->dbg, ev, text + n, sizeof(text) - (size_t)n);
	else if (ev->kind == DEBUG_EV_OUTPUT)
		debug_catch_output_explain(s->dbg, ev, text + n, sizeof(text) - (size_t)n);
	else
		debug_catch_explain(s->dbg, ev, text + n, sizeof(text) - (size_t)n);
	rsp_buf_init(&out);
	rsp_buf_putc(&out, 'O');
	rsp_buf_hex(&out, text, strlen(text));
	if (out.err == 0)
		rsp_send(&s->rsp, out.data, out.len);
	rsp_buf_free(&out);
}

void gdb_format_stop(struct gdb_server *s, const struct debug_event *ev)
{
	const char *reason;
	/* an O packet belongs before a stop reply, not beside a notification */
	if (!gdb_ns_on(s)) {
		gdb_console_flush(s, true);
		if (ev->kind == DEBUG_EV_CATCH || ev->kind == DEBUG_EV_ACCESS ||
		    ev->kind == DEBUG_EV_OUTPUT || ev->kind == DEBUG_EV_FATAL)
			explain_stop(s, ev);
		if (ev->kind == DEBUG_EV_SWBREAK)     /* the one kind with conditions */
			gdb_explain_cond_error(s, ev);
	}
	format_stop_head(s, ev, &reason);
	if (ev->kind != DEBUG_EV_EXITED && ev->kind != DEBUG_EV_CRASHED)
		gdb_expedite_registers(s, ev->vcpu);
	rsp_buf_str(&s->reply, reason);
}

static void wake(void *opaque);

/* Range steps taken in one go before the server looks at its client again:
 * a range the vCPU never leaves (a loop on one source line) still hears
 * Ctrl-C. */
#define GDB_RANGE_BURST 256

void gdb_report_stop(struct gdb_server *s)
{
	struct debug_event ev;
	enum gdb_range_next next;
	unsigned steps = 0;

	do {
		debug_stop_all(s->dbg);
		if (!debug_next_event(s->dbg, &ev))
			return;
		next = gdb_range_step(s, &ev);
		if (next == GDB_RANGE_WAIT)
			return;        /* stepping on; the next step's event comes later */
		if (next == GDB_RANGE_AGAIN && ++steps >= s->range_burst) {
			wake(s);       /* the next step's event is handled after the client */
			return;
		}
	} while (next == GDB_RANGE_AGAIN);
	gdb_format_stop(s, &ev);
	gdb_send_reply(s);
	if (ev.kind == DEBUG_EV_EXITED || ev.kind == DEBUG_EV_CRASHED) {
		gdb_set_state(s, GDB_CLOSING);
		return;
	}
	s->cur_g = ev.vcpu;
	s->last_stop = ev;
	s->have_last_stop = true;
	gdb_set_state(s, GDB_STOPPED);
}

/* ---- polling for the client's next packet ----
 *
 * A client in a request/reply exchange (steps, registers, gdb's memory
 * reads of a dump) sends its next packet soon after our reply; sleeping in
 * poll and being woken costs tens of microseconds under nested KVM (an IPI
 * to an idle vCPU through the host), so the server looks again for a
 * moment first. Only while stopped: a running machine can take its time.
 * The moment adapts as KVM's halt-polling does: a packet that came soon
 * after the server fell asleep widens it (to twice that gap, at most
 * max_ns); a long sleep (a human at the prompt) narrows it again. An idle
 * client therefore costs one window of polling, then nothing. */
#define GDB_POLL_MIN_NS (100 * 1000L)
#define GDB_POLL_MAX_NS (1000 * 1000L)

static long ns_since(const struct timespec *t0)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000000000L + (now.tv_nsec - t0->tv_nsec);
}

static void poll_set_max(struct gdb_poll *p, long max_ns)
{
	p->max_ns = max_ns;
	p->window_ns = max_ns < GDB_POLL_MIN_NS ? max_ns : GDB_POLL_MIN_NS;
	p->waiting = false;
}

/* The client spoke gap_ns after our reply, having let the look end. */
static void poll_adapt(struct gdb_poll *p, long gap_ns)
{
	long floor = p->max_ns < GDB_POLL_MIN_NS ? p->max_ns : GDB_POLL_MIN_NS;
	if (gap_ns <= p->max_ns / 2)
		p->window_ns = 2 * gap_ns;
	else if (gap_ns > p->max_ns)
		p->window_ns /= 2;
	if (p->window_ns < floor)
		p->window_ns = floor;
	if (p->window_ns > p->max_ns)
		p->window_ns = p->max_ns;
}

/* ---- connections ---- */

static void client_close(struct gdb_server *s)
{
	if (s->client_fd < 0)
		return;
	debug_watch_client(s->dbg, -1);
	close(s->client_fd);
	s->client_fd = -1;
	if (s->rsp_live)
		rsp_restart(&s->rsp);     /* its buffers wait for the next client */
	s->rsp_live = false;
	gdb_set_state(s, GDB_IDLE);
}

static void refuse(int fd)
{
	static const char msg[] = "E.vmdb: another debugger is already attached";
	char frame[sizeof(msg) + 8];
	unsigned sum = 0;
	for (size_t i = 0; i + 1 < sizeof(msg); i++)
		sum += (unsigned char)msg[i];
	int n = snprintf(frame, sizeof(frame), "$%s#%02x", msg, sum & 0xff);
	if (n > 0 && send(fd, frame, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nothing more to tell a client we are turning away */
	}
	close(fd);
}

static void client_accept(struct gdb_server *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		gdb_server_adopt(s, fd);
}

void gdb_server_adopt(struct gdb_server *s, int fd)
{
	/* a connection that never sent a packet is no debugger (a probe that
	 * holds the port open): it yields to the newcomer */
	if (s->client_fd >= 0 && s->state == GDB_IDLE)
		client_close(s);
	if (s->client_fd >= 0 || debug_machine_gone(s->dbg)) {
		refuse(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));   /* fails on unix: fine */
	if (!s->rsp.in && rsp_init(&s->rsp, &gdb_rsp_ops, s, GDB_PACKET_SIZE) < 0) {
		close(fd);
		return;
	}
	s->rsp_live = true;
	s->client_lost = false;
	poll_set_max(&s->poll, s->poll.max_ns);    /* a new client's pace is learnt anew */
	s->client_fd = fd;
	debug_watch_client(s->dbg, fd);      /* attached at its first valid packet (on_packet) */
}

/* Feed what the client sent: the bytes fed, 0 when nothing was waiting
 * (MSG_DONTWAIT) or the call was interrupted, -1 when the connection ended. */
static ssize_t client_recv(struct gdb_server *s, int flags)
{
	char buf[16384];
	ssize_t n = recv(s->client_fd, buf, sizeof(buf), flags);
	if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n <= 0) {
		client_close(s);    /* disconnect without detach = detach */
		return -1;
	}
	rsp_feed(&s->rsp, buf, (size_t)n);
	if (s->state == GDB_CLOSING || s->client_lost) {
		client_close(s);
		return -1;
	}
	return n;
}

/* A non-blocking recv is the look: one system call, not FIONREAD + recv.
 * Between looks the server yields (2 host cores: the client or a vCPU may
 * share ours); a yield that let another task run for a while means the
 * core is contended, where the look only takes time from others and a
 * wake-up is cheap (no idle CPU to rouse), so it stops, as KVM's
 * halt-polling stops when other tasks are runnable. */
#define GDB_POLL_CONTENDED_NS (30 * 1000L)

static void client_linger(struct gdb_server *s)
{
	struct gdb_poll *p = &s->poll;
	struct timespec start;
	long looked = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (s->client_fd >= 0 && s->state == GDB_STOPPED) {
		ssize_t n = client_recv(s, MSG_DONTWAIT);
		if (n < 0)
			return;
		if (n > 0) {
			clock_gettime(CLOCK_MONOTONIC, &start);
			looked = 0;
			continue;
		}
		long now = ns_since(&start);
		if (now - looked > GDB_POLL_CONTENDED_NS)
			return;
		if (now >= p->window_ns) {
			p->waiting = p->max_ns > 0;
			p->since = start;
			return;
		}
		looked = now;
		sched_yield();
	}
}

static void client_read(struct gdb_server *s)
{
	if (s->poll.waiting && s->state == GDB_STOPPED)
		poll_adapt(&s->poll, ns_since(&s->poll.since));
	s->poll.waiting = false;
	if (client_recv(s, 0) >= 0)
		client_linger(s);
}

int gdb_mon_poll(struct gdb_server *s, const char *arg)
{
	uint64_t us;
	if (s->poll.fixed)
		arg = "";       /* shown, never changed */
	if (strcmp(arg, "off") == 0)
		poll_set_max(&s->poll, 0);
	else if (strcmp(arg, "on") == 0)
		poll_set_max(&s->poll, GDB_POLL_MAX_NS);
	else if (mon_number(arg, 1000000, &us) == 0)
		poll_set_max(&s->poll, (long)us * 1000);
	else if (arg[0])
		return -EINVAL;
	if (s->poll.max_ns == 0)
		mon_print(s, "the server sleeps as soon as it has answered\n");
	else
		mon_print(s, "the server looks for the next packet for up to %ld us after "
			  "answering (now %ld us)\n", s->poll.max_ns / 1000, s->poll.window_ns / 1000);
	return 0;
}

/* The debug core queued something. */
static void handle_events(struct gdb_server *s)
{
	gdb_console_flush(s, false);
	if (gdb_ns_on(s) && s->client_fd >= 0) {
		if (debug_has_event(s->dbg))
			gdb_ns_events(s);
		if (s->state == GDB_CLOSING)
			client_close(s);
	} else if (s->state == GDB_RUNNING && debug_has_event(s->dbg)) {
		gdb_report_stop(s);
		if (s->state == GDB_CLOSING)
			client_close(s);
	} else if (s->state == GDB_IDLE && debug_has_event(s->dbg) &&
		   !debug_machine_gone(s->dbg)) {
		/* nobody to report to (a stop raced with the last detach) */
		debug_detach(s->dbg);
	}
}

static void wake(void *opaque)
{
	struct gdb_server *s = opaque;
	uint64_t one = 1;
	if (write(s->wake_fd, &one, sizeof(one)) < 0) {
		/* the counter is already nonzero: the thread wakes anyway */
	}
}

bool gdb_server_serve(struct gdb_server *s, int timeout_ms)
{
	struct pollfd pfd[3] = {
		{ .fd = s->wake_fd, .events = POLLIN },
		{ .fd = s->listen_fd, .events = POLLIN },    /* none (-1): ignored */
		{ .fd = s->client_fd, .events = POLLIN },
	};
	if (poll(pfd, s->client_fd >= 0 ? 3 : 2, timeout_ms) <= 0)
		return false;
	if (pfd[0].revents & POLLIN) {
		uint64_t v;
		if (read(s->wake_fd, &v, sizeof(v)) < 0) {
			/* spurious wake-up: nothing to do */
		}
		handle_events(s);
	}
	if (pfd[1].revents & POLLIN)
		client_accept(s);
	if (s->client_fd >= 0 && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
		client_read(s);
	return true;
}

/* The machine is gone: a client waiting for a stop learns how it ended. */
void gdb_server_end(struct gdb_server *s)
{
	handle_events(s);
	gdb_ns_await_end_ack(s);
	client_close(s);
}

static void *server_thread(void *arg)
{
	struct gdb_server *s = arg;

	while (!__atomic_load_n(&s->quit, __ATOMIC_ACQUIRE))
		gdb_server_serve(s, -1);
	gdb_server_end(s);
	return NULL;
}

/* ---- listening ---- */

/* Judged on the address bound, not its spelling: "127.x" may be a host
 * name that resolves anywhere, "0x7f000001" is loopback. */
static bool loopback_addr(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static int listen_tcp(struct gdb_server *s, const char *spec, struct err *e)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1])
		return err_set(e, EINVAL, "--gdb tcp:%s: expected tcp:HOST:PORT", spec);
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535)
		return err_set(e, EINVAL, "--gdb tcp:%s: '%s' is not a port number", spec, colon + 1);
	char *h = host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		h[strlen(h) - 1] = '\0';
		h++;
	}

	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV }, *res;
	int gr = getaddrinfo(h, colon + 1, &hints, &res);
	if (gr != 0)
		return err_set(e, EINVAL, "--gdb tcp:%s: cannot resolve '%s': %s", spec, h,
			       gai_strerror(gr));
	int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, r = 0;
	if (fd < 0) {
		r = err_set(e, errno, "cannot create a socket: %s", strerror(errno));
	} else {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) < 0)
			r = err_set(e, errno, "cannot listen on tcp:%s: %s", spec,
				    errno == EADDRINUSE ? "the port is already in use"
							: strerror(errno));
		else if (listen(fd, 2) < 0)
			r = err_set(e, errno, "cannot listen on tcp:%s: %s", spec, strerror(errno));
	}
	bool loopback = loopback_addr(res->ai_addr);
	freeaddrinfo(res);
	if (r < 0) {
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (!loopback)
		fprintf(stderr, "vmdb: warning: the gdb server on tcp:%s is reachable from other "
			"machines; anyone who connects controls the guest\n", spec);
	s->listen_fd = fd;
	snprintf(s->where, sizeof(s->where), "tcp:%s", spec);
	return 0;
}

/* Someone accepts connections on the socket at this path. */
static bool unix_socket_live(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	bool live = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
	close(fd);
	return live;
}

/* Bound with mode 0600 whatever the umask (the umask is the one way to
 * create a socket file without a window of wider access: nothing else in
 * vmdb creates files meanwhile). */
static int bind_private(int fd, const struct sockaddr_un *sa)
{
	mode_t old = umask(0177);
	int r = bind(fd, (const struct sockaddr *)sa, sizeof(*sa));
	int err = errno;
	umask(old);
	errno = err;
	return r;
}

static int listen_unix(struct gdb_server *s, const char *path, struct err *e)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return err_set(e, EINVAL, "--gdb unix:%s: the path is empty or too long", path);
	strcpy(sa.sun_path, path);
	/* a stale socket from an earlier run is replaced; a live one or any
	 * other file is not */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(e, EEXIST, "--gdb unix:%s: a file that is not a socket is "
				       "in the way", path);
		if (unix_socket_live(&sa))
			return err_set(e, EADDRINUSE, "--gdb unix:%s: another program is listening "
				       "on this socket", path);
		unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return err_set(e, errno, "cannot create a socket: %s", strerror(errno));
	if (bind_private(fd, &sa) < 0 || stat(path, &st) < 0 || listen(fd, 2) < 0) {
		int err = errno;
		close(fd);
		return err_set(e, err, "cannot listen on unix:%s: %s", path, strerror(err));
	}
	s->listen_fd = fd;
	s->unix_dev = st.st_dev;
	s->unix_ino = st.st_ino;
	snprintf(s->unix_path, sizeof(s->unix_path), "%s", path);
	snprintf(s->where, sizeof(s->where), "unix:%s", path);
	return 0;
}

static int server_listen(struct gdb_server *s, const char *addr, struct err *e)
{
	if (!addr || !addr[0])
		addr = GDB_DEFAULT_ADDR;
	if (strncmp(addr, "tcp:", 4) == 0)
		return listen_tcp(s, addr + 4, e);
	if (strncmp(addr, "unix:", 5) == 0)
		return listen_unix(s, addr + 5, e);
	return err_set(e, EINVAL, "--gdb %s: expected tcp:HOST:PORT or unix:PATH", addr);
}

static void server_free(struct gdb_server *s)
{
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	/* only our own socket: another vmdb may have taken the path since */
	struct stat st;
	if (s->unix_path[0] && lstat(s->unix_path, &st) == 0 && st.st_dev == s->unix_dev &&
	    st.st_ino == s->unix_ino)
		unlink(s->unix_path);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	if (s->rsp.in)
		rsp_fini(&s->rsp);
	rsp_buf_free(&s->reply);
	free(s);
}

/* A zeroed server's state before its first client. */
static void server_init(struct gdb_server *s, struct vm *vm, bool wait_gdb)
{
	s->vm = vm;
	s->listen_fd = s->client_fd = s->wake_fd = -1;
	s->wait_gdb = wait_gdb;
	s->cur_c = -1;
	s->mon_vcpu = -1;
	poll_set_max(&s->poll, GDB_POLL_MAX_NS);
	s->range_burst = GDB_RANGE_BURST;
	rsp_buf_init(&s->reply);
}

static int server_new(struct vm *vm, bool wait_gdb, struct gdb_server **out, struct err *e)
{
	struct gdb_server *s = calloc(1, sizeof(*s));
	*out = s;
	if (!s)
		return err_set(e, ENOMEM, "out of memory for the gdb server");
	server_init(s, vm, wait_gdb);
	s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->wake_fd < 0) {
		int r = err_set(e, errno, "cannot create an eventfd: %s", strerror(errno));
		server_free(s);
		*out = NULL;
		return r;
	}
	return 0;
}

/* An in-process server's client is its harness's own thread. */
static void server_in_process(struct gdb_server *s)
{
	/* it cannot speak while the server looks, and a look it outlasts
	 * would only widen */
	poll_set_max(&s->poll, 0);
	s->poll.fixed = true;
}

int gdb_server_open(struct vm *vm, bool wait_gdb, struct gdb_server **out, struct err *e)
{
	int r = server_new(vm, wait_gdb, out, e);
	if (r < 0)
		return r;
	if ((r = debug_create(vm, wait_gdb, wake, *out, e)) < 0) {
		server_free(*out);
		*out = NULL;
		return r;
	}
	(*out)->dbg = vm->debug;
	server_in_process(*out);
	return 0;
}

int gdb_server_reset(struct gdb_server *s, bool wait_gdb, struct err *e)
{
	struct gdb_server kept = *s;
	uint64_t rang;
	if (s->client_fd >= 0)
		close(s->client_fd);       /* not a detach: the machine it debugged is gone */
	if (read(s->wake_fd, &rang, sizeof(rang)) < 0) {
		/* nothing rang since the last look */
	}
	memset(s, 0, sizeof(*s));
	server_init(s, kept.vm, wait_gdb);
	server_in_process(s);
	s->wake_fd = kept.wake_fd;
	s->rsp = kept.rsp;
	if (s->rsp.in)
		rsp_restart(&s->rsp);
	s->reply = kept.reply;
	rsp_buf_reset(&s->reply);
	s->dbg = kept.dbg;
	int r = debug_reset(s->dbg, wait_gdb, e);
	s->dbg = s->vm->debug;
	return r;
}

void gdb_server_close(struct gdb_server *s)
{
	gdb_server_end(s);
	debug_destroy(s->vm);
	server_free(s);
}

int gdbserver_start(struct vm *vm, const char *addr, bool wait_gdb, struct err *e)
{
	struct gdb_server *s;
	int r = server_new(vm, wait_gdb, &s, e);
	if (r < 0)
		return r;
	if ((r = server_listen(s, addr, e)) < 0) {
		server_free(s);
		return r;
	}
	if ((r = debug_create(vm, wait_gdb, wake, s, e)) < 0) {
		server_free(s);
		return r;
	}
	s->dbg = vm->debug;
	r = pthread_create(&s->thread, NULL, server_thread, s);
	if (r != 0) {
		debug_destroy(vm);
		server_free(s);
		return err_set(e, r, "cannot start the gdb server thread: %s", strerror(r));
	}
	fprintf(stderr, "vmdb: gdb server listening on %s\n", s->where);
	return 0;
}

void gdbserver_stop(struct vm *vm)
{
	struct debug *d = vm->debug;
	if (!d)
		return;
	struct gdb_server *s = debug_notify_opaque(d);
	__atomic_store_n(&s->quit, true, __ATOMIC_RELEASE);
	wake(s);
	pthread_join(s->thread, NULL);
	debug_destroy(vm);
	server_free(s);
}
