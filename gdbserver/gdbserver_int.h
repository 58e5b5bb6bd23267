/* gdbserver/gdbserver_int.h — the server's private state and the contract
 * between the dispatcher (server.c) and the packet-family files pkt_*.c.
 * Everything here runs on the server thread only. */
#ifndef VMDB_GDBSERVER_INT_H
#define VMDB_GDBSERVER_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>

#include "debug/debug.h"
#include "gdbserver/gdbserver.h"
#include "machine/vm.h"
#include "rsp/rsp.h"
#include "rsp/rsp_args.h"

#define GDB_PACKET_SIZE 0x20000u

/* How long the server looks for the client's next packet before sleeping
 * (server.c): adapted, as KVM's halt-polling is, to how quickly this
 * client's packets have been coming, up to max_ns (0 = never look). */
struct gdb_poll {
	long max_ns;
	long window_ns;
	bool waiting;                /* it looked until `since`, then slept */
	bool fixed;                  /* off for good: the client is our own thread */
	struct timespec since;
};

/* The connection's state; every change goes through gdb_set_state(). */
enum gdb_state {
	GDB_IDLE,        /* no client (or one that sent no valid packet yet); the
			  * machine runs freely (or waits for one) */
	GDB_STOPPED,     /* client attached, machine stopped, client sends requests */
	GDB_RUNNING,     /* client attached, machine running, a stop reply is owed */
	GDB_CLOSING,     /* detach / kill / guest gone: close after this packet */
};

/* Non-stop mode (nonstop.c): what the client knows of each vCPU, and the
 * stops it has yet to hear of. */
struct gdb_ns_stop {
	struct debug_event ev;
	bool quiet;                  /* stopped by vCont;t: "T00" */
};

struct gdb_nonstop {
	bool on;
	/* per vCPU, what the next release does: STOP = the client knows it
	 * stopped; CONTINUE = resumed by the client, not let go yet (a
	 * breakpoint under it is stepped over); STEP = a step whose stop is
	 * owed; RUN_ON = running */
	enum debug_action act[VM_MAX_VCPUS];
	struct gdb_ns_stop last[VM_MAX_VCPUS];     /* why each stopped one stopped */
	bool have_last[VM_MAX_VCPUS];
	/* stops not yet acknowledged: the head went out as %Stop (or as the
	 * reply to ? or vStopped) while in_flight */
	struct gdb_ns_stop queue[VM_MAX_VCPUS + 1];
	unsigned len;
	bool in_flight;
	unsigned pauses;             /* short stops of the running vCPUs so far */
};

struct gdb_server {
	struct vm *vm;
	struct debug *dbg;
	int listen_fd, client_fd, wake_fd;
	char where[sizeof(((struct sockaddr_un *)0)->sun_path) + 16];
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t unix_dev;              /* the socket file we created, unlinked at exit if */
	ino_t unix_ino;              /* the path still names it */
	pthread_t thread;
	bool quit;                   /* set by gdbserver_stop (atomic) */
	bool wait_gdb;

	enum gdb_state state;
	struct rsp_conn rsp;
	bool rsp_live;
	bool client_lost;            /* it stopped reading or its socket failed: close it */
	struct rsp_buf reply;
	unsigned cur_g;              /* vCPU for registers and memory (Hg) */
	int mon_vcpu;                /* `monitor cpu N`: the monitor's vCPU; -1: cur_g */
	int cur_c;                   /* vCPU for legacy s/c (Hc); -1 = all */
	bool phys;                   /* `monitor phys on`: m/M/X/Z0 are guest-physical */
	bool error_strings;          /* QEnableErrorStrings: "Enn;HEXTEXT" where we have words */
	bool client_swbreak;         /* qSupported: the client understands swbreak/hwbreak */
	bool client_hwbreak;
	bool client_binary_upload;   /* qSupported binary-upload+: `x` replies start with 'b' */
	bool have_last_stop;
	struct debug_event last_stop;
	/* vCont;r: step range_vcpu while its pc stays in [range_start, range_end) */
	bool range_active;
	unsigned range_vcpu;
	uint64_t range_start, range_end;
	enum debug_action range_actions[VM_MAX_VCPUS];
	struct gdb_nonstop ns;
	const struct gdb_reg_view *view;  /* NULL until target.xml is read (pkt_query.c resets) */
	struct gdb_poll poll;
	/* How many range steps the server takes before it looks at the client
	 * again: set by server_new; an in-process client (fuzz/fuzz_gdbserver.c)
	 * turns it down. */
	unsigned range_burst;
};

/* A packet handler: args starts right after the packet name. Fill
 * s->reply and return 0 to send it, GDB_NO_REPLY when the reply comes later
 * (a stop reply after resuming) or was sent already, or -errno for an
 * "Enn" reply. */
#define GDB_NO_REPLY 1
typedef int (*gdb_handler)(struct gdb_server *s, struct rsp_cur *args);

struct gdb_packet {
	const char *name;
	gdb_handler fn;
	bool needs_stopped;      /* refused while the machine runs */
	bool own_pause;          /* non-stop: the handler stops what it needs itself
				  * (every other packet runs with the machine paused) */
	bool held_ok;            /* non-stop: reads memory or the current vCPU's
				  * registers only: no pause while that vCPU is stopped */
};

/* Each pkt_*.c exports its table, ended by a {NULL} entry. */
extern const struct gdb_packet gdb_pkt_query[], gdb_pkt_regs[], gdb_pkt_mem[],
	gdb_pkt_break[], gdb_pkt_run[], gdb_pkt_monitor[];

/* pkt_break.c: a stop at a breakpoint whose condition failed says why
 * (an O packet, before the stop reply) */
void gdb_explain_cond_error(struct gdb_server *s, const struct debug_event *ev);

/* pkt_break.c: the text of breakpoint commands (dprintf), as O packets
 * while the machine runs in all-stop mode or before a stop reply
 * (stop_reply_next), else on vmdb's stderr (no client, non-stop mode);
 * held while the client has the machine stopped. */
void gdb_console_flush(struct gdb_server *s, bool stop_reply_next);

/* server.c */
void gdb_set_state(struct gdb_server *s, enum gdb_state next);
void gdb_send_reply(struct gdb_server *s);
/* Report the next queued event as a stop reply (machine stopped first). */
void gdb_report_stop(struct gdb_server *s);
/* Parse a thread id ("-1", "0" or hex vCPU+1) into a vCPU index or -1 (all). */
int gdb_parse_thread(struct gdb_server *s, struct rsp_cur *c, char sep, int *vcpu);
/* An error reply for a handler to return: "Enn" (nn from -r), or
 * "Enn;HEX(words)" for a client that asked for error strings. */
int gdb_error(struct gdb_server *s, int r, const struct err *e);
/* The same for a failure the user must read (the machine is not what the
 * client thinks: a refused register write, a resume that could not
 * start): a client that asked for no error strings gets "E.words", the
 * protocol's standard textual error, which gdb prints. */
int gdb_error_words(struct gdb_server *s, int r, const struct err *e);
/* Check a vCPU index named by the client. */
bool gdb_valid_vcpu(const struct gdb_server *s, int vcpu);

/* Signal numbers in stop replies (gdb's numbering, the Linux ones for these). */
enum { GDB_SIGINT = 2, GDB_SIGILL = 4, GDB_SIGTRAP = 5, GDB_SIGFPE = 8, GDB_SIGSEGV = 11 };
/* The signal a stop reply carries for this event. */
int gdb_stop_signal(const struct debug_event *ev);

/* pkt_regs.c: register numbering shared with target.xml */
struct gdb_reg {
	const char *name;
	unsigned bits;
	const char *type;
	unsigned feature;        /* index into gdb_features[] */
};
extern const struct gdb_reg gdb_regs[];
extern const unsigned gdb_nr_regs;
extern const unsigned gdb_nr_g_regs;     /* the leading ones the g packet carries */
extern const char *const gdb_features[];
extern const unsigned gdb_nr_features;

/* What the client was told the registers are (its target.xml): gdb's
 * amd64 set, or for a vCPU in protected or real mode when gdb connected,
 * gdb's i386 set (eax..., 32-bit g/G/p/P mapped onto the 64-bit state).
 * regs[i] is the client's register i; src[i] the gdb_regs[] entry whose
 * value it shows (its low bits). Chosen once per connection (gdb reads
 * target.xml once), at the first read of target.xml. */
struct gdb_reg_view {
	const char *arch;            /* target.xml's <architecture> */
	const struct gdb_reg *regs;
	const uint8_t *src;          /* for the first nr_src; the rest follow R_TR on;
				      * NULL: the identity */
	unsigned nr_src, nr, nr_g;
};
enum gdb_arch { GDB_ARCH_AUTO, GDB_ARCH_X86_64, GDB_ARCH_I386, GDB_ARCH_I8086 };
extern const struct gdb_reg_view gdb_view_amd64, gdb_view_i386, gdb_view_i8086;
/* The view this connection uses (amd64 until target.xml chose one). */
const struct gdb_reg_view *gdb_view(const struct gdb_server *s);
/* The frame and stack pointers and the PC, in the view's numbering and
 * sizes, for a stop reply: they save gdb a g after most stops. */
void gdb_expedite_registers(struct gdb_server *s, unsigned vcpu);

/* server.c: the stop reply for ev (format, expedited registers, reason)
 * into s->reply, and a notification ("%NAME:payload") to the client. */
void gdb_format_stop(struct gdb_server *s, const struct debug_event *ev);
void gdb_send_notification(struct gdb_server *s, const char *name, const char *payload,
			   size_t len);

/* nonstop.c */
extern const struct gdb_packet gdb_pkt_nonstop[];
/* pkt_reverse.c: bs, bc */
extern const struct gdb_packet gdb_pkt_reverse[];
bool gdb_ns_on(const struct gdb_server *s);
/* Stop every running vCPU for a moment (the debug core's calls want the
 * machine stopped), take the stops that happened meanwhile, then let the
 * running ones go on, and tell the client about new stops. */
void gdb_ns_pause(struct gdb_server *s);
int gdb_ns_release(struct gdb_server *s);
void gdb_ns_flush(struct gdb_server *s);
/* Events queued by the debug core (the server's eventfd rang). */
void gdb_ns_events(struct gdb_server *s);
/* vCont in non-stop mode: act[i] for the vCPUs set[i] names. */
int gdb_ns_vcont(struct gdb_server *s, const enum debug_action *act, const bool *set);
/* ? in non-stop mode (pkt_query.c answers it otherwise). */
int gdb_ns_why(struct gdb_server *s, struct rsp_cur *args);
/* Ctrl-C or vCtrlC: stop one running vCPU, reported with SIGINT. */
void gdb_ns_interrupt(struct gdb_server *s);
/* The machine's end went out as a notification the client has not taken
 * with vStopped yet: the connection stays open until it does. */
bool gdb_ns_end_unacked(const struct gdb_server *s);
/* Serve the client until it has taken the machine's end, or a short
 * deadline passed (the machine is gone: nothing else to serve). */
void gdb_ns_await_end_ack(struct gdb_server *s);
/* The client left: forget non-stop mode. */
void gdb_ns_reset(struct gdb_server *s);

/* pkt_xfer.c: qXfer:features|threads|exec-file|memory-map:read */
int gdb_pkt_qxfer(struct gdb_server *s, struct rsp_cur *args);

/* target_xml.c: the description, choosing s->view at the connection's
 * first read (--gdb-arch, or auto: the mode of vCPU 0 then). */
int gdb_target_xml(struct gdb_server *s, struct rsp_buf *out);

/* In-process driving, for harnesses (fuzz/fuzz_gdbserver.c): a server
 * over vm's debug core with no listening socket and no thread of its own.
 * The harness hands it a connected client (gdb_server_adopt takes the fd,
 * or closes it as a refused second client) and runs the server loop's
 * passes itself: gdb_server_serve waits up to timeout_ms (-1: for ever)
 * and handles what arrived (false: nothing did), without looking for more
 * (no `monitor poll`: the client is the harness's own thread).
 * gdb_server_close ends as gdbserver_stop does, once the vCPU threads are
 * gone. */
int gdb_server_open(struct vm *vm, bool wait_gdb, struct gdb_server **out,
		    struct err *e) must_check;
void gdb_server_adopt(struct gdb_server *s, int fd);
bool gdb_server_serve(struct gdb_server *s, int timeout_ms);
void gdb_server_close(struct gdb_server *s);
/* The machine ended (its vCPU threads gone): the client hears how, and is
 * let go, as at the end of gdbserver_stop's thread. */
void gdb_server_end(struct gdb_server *s);
/* The next machine on the same struct vm (set up anew by the harness;
 * the last one ended with gdb_server_end): the server and its debug core
 * (debug_reset) are as gdb_server_open leaves them, their buffers kept.
 * On failure the server has no debug core: close it. */
int gdb_server_reset(struct gdb_server *s, bool wait_gdb, struct err *e) must_check;

/* pkt_run.c */
int gdb_resume(struct gdb_server *s, const enum debug_action *actions);
/* A stop event while range stepping (vCont;r): report it, or it was a
 * step still inside the range and the vCPU steps again (its event is
 * queued already: AGAIN; it comes later: WAIT). */
enum gdb_range_next { GDB_RANGE_REPORT, GDB_RANGE_AGAIN, GDB_RANGE_WAIT };
enum gdb_range_next gdb_range_step(struct gdb_server *s, const struct debug_event *ev);

#endif
