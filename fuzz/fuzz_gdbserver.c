/* fuzz/fuzz_gdbserver.c — the gdbserver as a client drives it: every
 * packet kind (framed with good checksums, arguments from the input, or
 * raw bytes), Ctrl-C, waits while the machine runs, and disconnects
 * followed by new connections, over the real debug core with real vCPU
 * threads running the scripted fake engine (tests/unit/fake_engine.h) on
 * a fake program the input sprinkles with INT3 and OUT bytes, followed by
 * HLT: a vCPU let run reaches a stop or sleeps, so the machine settles
 * rather than spinning. The server runs in-process
 * (gdb_server_open/adopt/serve) on one end of a socket pair; the harness
 * reads everything from the other end after each operation, as a client
 * that reads everything. Operations wait for the machine to settle unless
 * the input says they race it (one_op). Each input is a machine of its own,
 * ended by the guest exiting: the server and its debug core are the last
 * machine's made new (gdb_server_reset, debug_reset), the vCPU threads the
 * last machine's, idle between machines; nothing else carries over.
 *
 * Input: a setup byte (lending engine, --wait-gdb, one or two vCPUs), a
 * count and list of program bytes, then operations until the input ends. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "debug/debug_int.h"
#include "fuzz/fuzz_machine.h"
#include "gdbserver/gdbserver_int.h"
#include "tests/unit/fake_engine.h"

#define MAX_OPS 64
#define RAM_SIZE 0x1000          /* the program at 0x100, HLT around it */
#define SOCKET_BUF (1 << 20)     /* more than a serve pass writes */
#define VCPU_STACK (1 << 20)
#define SETTLE_MS 200            /* a machine not settled by then is left: stuck, */
#define SETTLE_STEPS 512         /* ... or spinning, once it ran this many instructions */
#define RANGE_PASSES 2           /* serve passes that take a range step's bursts of steps */

static struct vm vm;
static struct fake_cpu cpus[2];
static uint8_t ram[RAM_SIZE];
static int halt_fd;              /* an eventfd the vCPUs write as they halt */
/* The server and its debug core, kept from machine to machine: each
 * input's machine has them as new (gdb_server_reset), without paying for
 * their allocation (a 238 KB debug core, a 128 KB packet buffer) twice
 * an input. */
static struct gdb_server *server;

/* ---- the client's side of the socket ---- */

struct client {
	int fd;                 /* ours (non-blocking); the server has the other end */
	uint64_t digest;        /* of everything the server sent */
};

static void client_connect(struct gdb_server *s, struct client *c)
{
	int sv[2], size = SOCKET_BUF;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("fuzz: socketpair");
		abort();
	}
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	c->fd = sv[1];
	(void)fcntl(c->fd, F_SETFL, O_NONBLOCK);
	gdb_server_adopt(s, sv[0]);
}

/* Read what the server sent: it writes only from this thread, so a read
 * that leaves room in the buffer has read everything. */
static void client_drain(struct client *c)
{
	static char buf[65536];
	ssize_t n;
	while (c->fd >= 0 && (n = read(c->fd, buf, sizeof(buf))) > 0) {
		if (fuzz_digest_wanted())
			c->digest = fuzz_digest(c->digest, buf, (size_t)n);
		if ((size_t)n < sizeof(buf))
			break;
	}
}

static void client_hang_up(struct client *c)
{
	client_drain(c);
	close(c->fd);
	c->fd = -1;
}

static void client_send(struct client *c, const void *buf, size_t len)
{
	if (send(c->fd, buf, len, MSG_NOSIGNAL) < 0) {
		/* the server closed its end (kill, refusal): what follows is lost */
	}
}

/* A serve pass, the replies read; *ranged counts the passes that took a
 * burst of a range step's steps (a burst is a hand-off between threads per
 * step: a range that never ends is the costliest thing an input can do),
 * not those that found nothing to do. A step the debug core does without
 * the engine (nothing the fake's counts see) is a step all the same. */
static bool serve_once(struct gdb_server *s, struct client *c, unsigned *ranged)
{
	bool ranging = s->range_active;
	bool served = gdb_server_serve(s, 0);
	if (served)                 /* a pass that found nothing wrote nothing */
		client_drain(c);
	*ranged += ranging && served;
	return served;
}

/* Serve until nothing more arrives now (a pass that found nothing to do
 * wrote nothing), or a range step has had its bursts. */
static void serve_pending(struct gdb_server *s, struct client *c)
{
	unsigned ranged = 0;
	for (int i = 0; i < 16 && ranged < RANGE_PASSES && serve_once(s, c, &ranged); i++)
		;
}

/* The debug core woke the server for something it has not served yet. */
static bool wake_pending(const struct gdb_server *s)
{
	struct pollfd pfd = { .fd = s->wake_fd, .events = POLLIN };
	return poll(&pfd, 1, 0) > 0;
}

/* Every vCPU stopped for the debugger (not just released by a client:
 * one released as the client left may wait for the next), or asleep on
 * an HLT; nothing for the server to serve, and no range step between two
 * of its steps. */
static bool machine_settled(const struct gdb_server *s)
{
	struct debug *d = vm.debug;
	if (wake_pending(s) ||
	    (s->range_active && debug_run_of(d, s->range_vcpu) != DEBUG_RUN_RUNNING))
		return false;
	for (unsigned i = 0; i < vm.nr_vcpus; i++) {
		enum debug_run run = debug_run_of(d, i);
		bool halted = __atomic_load_n(&cpus[i].halted, __ATOMIC_SEQ_CST);
		if ((run == DEBUG_RUN_RELEASED && s->state != GDB_IDLE) || (!debug_run_parked(run) &&
		    !(run == DEBUG_RUN_RUNNING && halted)))
			return false;
	}
	return true;
}

/* Wait up to a millisecond for vCPU i to sleep on an HLT. */
static void wait_halted(unsigned i)
{
	struct timespec ms = { 0, 1000 * 1000 };
	if (!__atomic_load_n(&cpus[i].halted, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &cpus[i].halted, FUTEX_WAIT_PRIVATE, 0, &ms, NULL, 0);
}

static unsigned steps_taken(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < vm.nr_vcpus; i++)
		n += __atomic_load_n(&cpus[i].steps, __ATOMIC_RELAXED);
	return n;
}

static long ms_since(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 + (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Let the machine run until it settles, serving what it reports: woken
 * by the debug core's events (the server's wake_fd) and by vCPUs going to
 * sleep on an HLT (halt_fd). A machine still busy after SETTLE_STEPS
 * instructions (a jump to itself), RANGE_PASSES bursts of a range step that
 * never leaves its range, or SETTLE_MS is left as it is. */
static void let_run(struct gdb_server *s, struct client *c)
{
	unsigned start_steps = steps_taken(), ranged = 0;
	struct timespec start;
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!machine_settled(s) && steps_taken() - start_steps < SETTLE_STEPS &&
	       ranged < RANGE_PASSES && ms_since(&start) < SETTLE_MS) {
		struct pollfd pfd[2] = { { .fd = s->wake_fd, .events = POLLIN },
					 { .fd = halt_fd, .events = POLLIN } };
		uint64_t v;
		if (poll(pfd, 2, 1) > 0 && (pfd[1].revents & POLLIN) &&
		    read(halt_fd, &v, sizeof(v)) < 0) {
			/* another look found it read */
		}
		serve_once(s, c, &ranged);
	}
	serve_pending(s, c);
}

/* ---- packets ---- */

/* A packet per kind; %X is a field from the input (put_field). */
static const char *const templates[] = {
	"?", "g", "G%D", "p%R", "P%R=%V", "m%A,%L", "M%A,%L:%D", "X%A,%L:%B", "c", "c%A", "s",
	"s%A", "C05", "S05", "vCont?", "vCont;c", "vCont;s:%T", "vCont;s:%T;c", "vCont;c:%T",
	"vCont;t", "vCont;r0,%A:%T", "Z0,%A,1", "z0,%A,1", "Z1,%A,1", "z1,%A,1", "Z2,%A,%L",
	"z2,%A,%L", "Z3,%A,%L", "z3,%A,%L", "Z4,%A,%L", "z4,%A,%L", "Hg%T", "Hc%T", "T%T",
	"qSupported:swbreak+;hwbreak+", "qSupported", "qXfer:features:read:target.xml:%A,%L",
	"qXfer:features:read:x.xml:0,ff", "qfThreadInfo", "qsThreadInfo", "qC", "qAttached",
	"qThreadExtraInfo,%T", "QStartNoAckMode", "QEnableErrorStrings", "qRcmd,%M", "D",
	"D;%T", "k", "vKill;1",
	/* after the first 50, so that the older inputs keep their packets */
	"QNonStop:1", "QNonStop:0", "vStopped", "vCtrlC", "vCont;t:%T", "x%A,%L", "bs", "bc",
	"qXfer:threads:read::%A,%L", "qXfer:exec-file:read::0,ff", "qXfer:memory-map:read::0,%L",
	"Z0,%A,1;X%E", "Z0,%A,1;X%E;cmds:%T,X%E", "Z1,%A,1;X%E", "vMustReplyEmpty",
};

static const char *const monitor[] = {
	"help", "info vcpus", "info caps", "info sstep", "sstep irq on", "sstep irq off",
	"sstep irqblock mask-if", "sstep irqblock engine", "sstep irqblock auto",
	"sstep shadow off", "sstep shadow on", "phys on", "phys off", "catch pf", "catch off",
	"catch 3", "catch de ud gp", "msr 0xc0000080", "msr 0xc0000100 write 0x1234",
	"msr read 0x10", "",
	/* after the first 21, as the packets; what is added changes what the
	 * regression inputs' commands are (an index modulo the count) */
	"info park", "info dr", "info watchpoints", "gva2gpa 0x100", "xp 0x100", "xp 0xfff 8",
	"info mem", "info tlb", "info registers", "info idt", "info gdt", "info lapic",
	"info ioapic", "info pic", "record on", "record off", "info record",
};

static void put_hex(struct rsp_buf *b, uint64_t v)
{
	rsp_buf_printf(b, "%llx", (unsigned long long)v);
}

static uint64_t pick_addr(struct fuzz_in *in)
{
	uint8_t how = (uint8_t)fuzz_take(in, 1);
	if (how < 0xc0)
		return 0xf0 + how % 0x40;               /* around the fake program */
	if (how < 0xf0)
		return fuzz_take(in, 3);                /* anywhere in RAM, or just past */
	return fuzz_take(in, 8);                        /* anywhere: wraps, unmapped */
}

static void put_field(struct rsp_buf *b, char what, struct fuzz_in *in)
{
	static const char *const tids[] = { "-1", "0", "1", "2", "3", "ff" };
	uint8_t n = (uint8_t)fuzz_take(in, 1);
	switch (what) {
	case 'A': put_hex(b, pick_addr(in)); break;
	case 'L': put_hex(b, n < 0xf0 ? n % 17 : fuzz_take(in, 3)); break;
	case 'T': rsp_buf_printf(b, "%s", tids[n % 6]); break;
	case 'R': put_hex(b, n % 80); break;
	case 'V': put_hex(b, fuzz_take(in, 8)); break;
	case 'D':
		for (unsigned i = 0; i < n % 64u; i++)
			rsp_buf_printf(b, "%02x", (unsigned)fuzz_take(in, 1));
		break;
	case 'B':
		for (unsigned i = 0; i < n % 32u; i++) {
			uint8_t c = (uint8_t)fuzz_take(in, 1);
			if (c == '#' || c == '$' || c == '}' || c == '*') {
				rsp_buf_putc(b, '}');
				c ^= 0x20;
			}
			rsp_buf_putc(b, (char)c);
		}
		break;
	case 'E':                                       /* an agent expression */
		rsp_buf_printf(b, "%x,", n % 16 + 1);
		for (unsigned i = 0; i < n % 16 + 1u; i++)
			rsp_buf_printf(b, "%02x", (unsigned)fuzz_take(in, 1));
		break;
	case 'M': {
		const char *cmd = monitor[n % (sizeof(monitor) / sizeof(monitor[0]))];
		rsp_buf_hex(b, cmd, strlen(cmd));
		if (!cmd[0])        /* raw words */
			for (unsigned i = 0; i < n % 16u; i++) {
				char c = (char)fuzz_take(in, 1);
				rsp_buf_hex(b, &c, 1);
			}
		break;
	}
	default: rsp_buf_putc(b, what); break;
	}
}

/* A template packet, framed with its checksum. */
static void send_packet(struct client *c, struct fuzz_in *in)
{
	const char *t = templates[fuzz_take(in, 1) % (sizeof(templates) / sizeof(templates[0]))];
	struct rsp_buf body, frame;
	rsp_buf_init(&body);
	rsp_buf_init(&frame);
	for (; *t; t++)
		if (*t == '%' && t[1])
			put_field(&body, *++t, in);
		else
			rsp_buf_putc(&body, *t);
	unsigned sum = 0;
	for (size_t i = 0; i < body.len; i++)
		sum += (uint8_t)body.data[i];
	rsp_buf_putc(&frame, '$');
	rsp_buf_append(&frame, body.data, body.len);
	rsp_buf_printf(&frame, "#%02x", sum & 0xff);
	if (frame.err == 0)
		client_send(c, frame.data, frame.len);
	rsp_buf_free(&body);
	rsp_buf_free(&frame);
}

/* ---- the machine ---- */

/* The vCPU threads outlive the inputs: each input's machine has them run
 * fake_vcpu_thread (the vCPU loop) on its vCPUs until it ends, as fresh
 * threads would (nothing thread-local carries over), without paying for
 * a thread's creation and end (under ASan, its stack's shadow) twice an
 * input. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t go[2];   /* thread i's: its vCPU has a machine to run */
	pthread_cond_t done;    /* the last busy thread left its vCPU loop */
	unsigned round;         /* machines started: a new one sets the threads going */
	unsigned nr;            /* its vCPUs: threads 0 to nr-1 run (only they wake) */
	unsigned busy;          /* threads in the present machine's vCPU loop */
} pool = { PTHREAD_MUTEX_INITIALIZER, { PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER },
	   PTHREAD_COND_INITIALIZER, 0, 0, 0 };

static void *pool_thread(void *arg)
{
	unsigned i = (unsigned)(uintptr_t)arg, seen = 0;
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		while (pool.round == seen || i >= pool.nr)
			pthread_cond_wait(&pool.go[i], &pool.lock);
		seen = pool.round;
		pthread_mutex_unlock(&pool.lock);
		fake_vcpu_thread(&vm.vcpus[i]);
		pthread_mutex_lock(&pool.lock);
		if (--pool.busy == 0) {
			/* woken with the lock free: it would only wait for it */
			pthread_mutex_unlock(&pool.lock);
			pthread_cond_signal(&pool.done);
			pthread_mutex_lock(&pool.lock);
		}
	}
	return NULL;
}

static void pool_start(void)
{
	halt_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (halt_fd <= 0) {
		perror("fuzz: eventfd");
		abort();
	}
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, VCPU_STACK);
	for (uintptr_t i = 0; i < 2; i++) {
		pthread_t t;
		if (pthread_create(&t, &attr, pool_thread, (void *)i) != 0) {
			fprintf(stderr, "fuzz: cannot start a vCPU thread\n");
			abort();
		}
		pthread_detach(t);
	}
	pthread_attr_destroy(&attr);
}

/* The machine's vCPUs run (the threads' loops start). */
static void pool_run(unsigned nr)
{
	pthread_mutex_lock(&pool.lock);
	pool.nr = pool.busy = nr;
	pool.round++;
	pthread_mutex_unlock(&pool.lock);
	/* after the unlock: a thread woken with it held would only wait for it */
	for (unsigned i = 0; i < nr; i++)
		pthread_cond_signal(&pool.go[i]);
}

/* Every vCPU loop has returned (the machine stopped). */
static void pool_wait(void)
{
	pthread_mutex_lock(&pool.lock);
	while (pool.busy)
		pthread_cond_wait(&pool.done, &pool.lock);
	pthread_mutex_unlock(&pool.lock);
}

static struct gdb_server *machine_start(struct fuzz_in *in)
{
	uint8_t setup = (uint8_t)fuzz_take(in, 1);
	unsigned nr = setup & 4 ? 2 : 1;
	memset(&vm, 0, sizeof(vm));
	memset(cpus, 0, sizeof(cpus));
	memset(ram, 0xf4, RAM_SIZE);
	memset(ram + 0x100, 0x90, 0x80);
	unsigned bytes = (unsigned)fuzz_take(in, 1) % 9;
	for (unsigned i = 0; i < bytes; i++) {
		uint8_t at = (uint8_t)fuzz_take(in, 1);
		ram[0x100 + at / 2] = at & 1 ? 0xe6 : 0xcc;
	}
	vm.engine = setup & 1 ? &fake_lending_engine : &fake_engine;
	vm.ram = ram;
	vm.ram_size = vm.low_ram_size = RAM_SIZE;
	vm.nr_vcpus = nr;
	pthread_mutex_init(&vm.lock, NULL);
	pthread_cond_init(&vm.cond, NULL);
	output_watch_init(&vm.output_watch);
	for (unsigned i = 0; i < nr; i++) {
		vm.vcpus[i] = (struct vcpu){ .vm = &vm, .id = i, .engine = &cpus[i] };
		cpus[i].regs.rip = 0x100;
		cpus[i].halt_fd = halt_fd;
	}
	struct gdb_server *s = server;
	struct err e = { 0 };
	if ((s ? gdb_server_reset(s, setup & 2, &e) : gdb_server_open(&vm, setup & 2, &s, &e)) < 0) {
		fprintf(stderr, "fuzz: %s\n", e.msg);
		abort();
	}
	server = s;
	/* the client is in this thread and only writes while the server
	 * waits (gdb_server_open turns the look for its next packet off): a
	 * range step that never leaves its range comes back to it sooner */
	s->range_burst = 8;
	/* a step-over of a vCPU that cannot finish (a HLT: the fake machine has
	 * no interrupts to end it) gives up sooner: waiting is no finding, and
	 * inputs must stay quick */
	struct debug *d = vm.debug;
	d->timing.step_over_ns = d->timing.kick_retry_ns = 2 * 1000 * 1000L;
	d->timing.end_wait_ns = 20 * 1000 * 1000L;
	d->timing.step_spin_ns = d->timing.client_step_poll_ns = 0;   /* no spinning */
	vm.nr_threads = nr;
	pool_run(nr);
	/* without --wait-gdb the program runs to its HLT before any client
	 * speaks (no client is attached until one sends a packet) */
	for (unsigned i = 0; i < nr && !(setup & 2); i++)
		for (int ms = 0; ms < SETTLE_MS && !__atomic_load_n(&cpus[i].halted, __ATOMIC_SEQ_CST); ms++)
			wait_halted(i);
	return s;
}

/* The guest exits (the debug-exit port's path): the client hears W, in
 * non-stop mode as a notification it acknowledges with vStopped, as gdb
 * does (the server waits for that before it closes). */
static void machine_end(struct gdb_server *s, struct client *c)
{
	vm_request_exit(&vm, 0, "the fuzz input ended");
	pool_wait();
	serve_pending(s, c);
	if (gdb_ns_end_unacked(s)) {
		client_send(c, "$vStopped#55", 12);
		serve_pending(s, c);
	}
	gdb_server_end(s);
	/* what the machine left allocated (breakpoint conditions, watched
	 * ranges) goes with it: an input that ends with more allocations
	 * than it began with is run again for a leak check */
	struct err e = { 0 };
	if (gdb_server_reset(s, false, &e) < 0) {
		fprintf(stderr, "fuzz: %s\n", e.msg);
		abort();
	}
	output_watch_destroy(&vm.output_watch);     /* as vm_destroy: a caught pattern */
	pthread_cond_destroy(&vm.cond);
	pthread_mutex_destroy(&vm.lock);
}

/* ---- one input ---- */

/* An operation starts once the machine has settled, so that what it meets
 * does not depend on how the host scheduled the threads (libFuzzer's
 * minimisation and reproduction need the same input to do the same thing),
 * unless the input asks it to race a running vCPU (op >= 0xc0). */
static void one_op(struct gdb_server *s, struct client *c, struct fuzz_in *in)
{
	uint8_t op = (uint8_t)fuzz_take(in, 1);
	if (op < 0xc0)
		let_run(s, c);
	switch (op % 10) {
	default:
		send_packet(c, in);
		serve_pending(s, c);
		break;
	case 6: {                                   /* raw bytes */
		uint8_t raw[64];
		unsigned n = (unsigned)fuzz_take(in, 1) % sizeof(raw);
		for (unsigned i = 0; i < n; i++)
			raw[i] = (uint8_t)fuzz_take(in, 1);
		client_send(c, raw, n);
		serve_pending(s, c);
		break;
	}
	case 7:                                     /* Ctrl-C */
		client_send(c, "\x03", 1);
		serve_pending(s, c);
		break;
	case 8:                                     /* let the machine run */
		let_run(s, c);
		break;
	case 9:                                     /* hang up, then a new client */
		client_hang_up(c);
		serve_pending(s, c);
		client_connect(s, c);
		break;
	}
}

static void one_input(const uint8_t *data, size_t size, bool report);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	pool_start();
	/* A machine of two vCPUs and a client's "?" before the first input:
	 * what the server keeps from machine to machine (itself, the debug
	 * core, the packet and reply buffers) is allocated here, so that the
	 * first input does not end with more allocations than it began with
	 * (libFuzzer would run it again for a leak check). */
	static const uint8_t warm_up[] = { 4, 0, 0, 0 };
	one_input(warm_up, sizeof(warm_up), false);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_input(data, size, true);
	return 0;
}

static void one_input(const uint8_t *data, size_t size, bool report)
{
	struct fuzz_in in = { data, size };
	struct gdb_server *s = machine_start(&in);
	struct client c = { .digest = 0 };
	client_connect(s, &c);
	/* a kill ends the machine as it ends vmdb: nothing after it is served */
	for (unsigned n = 0; n < MAX_OPS && in.left && !vm_stopping(&vm); n++)
		one_op(s, &c, &in);
	machine_end(s, &c);
	client_hang_up(&c);
	if (report && fuzz_digest_wanted())
		fuzz_digest_report(data, size, c.digest);
}
