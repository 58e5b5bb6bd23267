/* machine/serial_out.c — the serial console's output queue (serial_out.h).
 *
 * The drain thread writes at most PIPE_BUF bytes once poll() says the
 * descriptor has room, so even a blocking pipe or terminal never holds it
 * inside write(): it stays free to see the stop request. At the stop it
 * keeps writing while the reader takes bytes, and gives up on a reader
 * that took nothing for SERIAL_OUT_STALL_MS. Nothing here is in machine
 * snapshots: the guest cannot see the queue (the UART's THR is empty at
 * once), and bytes written to the host stay written. */
#include "machine/serial_out.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SERIAL_OUT_SIZE     (1u << 20)    /* a whole Linux boot log, many times */
#define SERIAL_OUT_STALL_MS 2000

struct serial_out {
	pthread_mutex_t lock;
	pthread_cond_t more;        /* bytes queued, or the stop */
	pthread_cond_t written;     /* the drain thread wrote (or gave up on) bytes */
	uint8_t *buf;
	size_t head, len;
	uint64_t dropped, reported; /* bytes lost to a full buffer */
	bool stop;

	int fd;
	bool close_fd;
	int stop_pipe[2];           /* a byte in it: leave poll() */
	pthread_t thread;
};

void serial_out_put(struct serial_out *o, uint8_t byte)
{
	pthread_mutex_lock(&o->lock);
	if (o->len == SERIAL_OUT_SIZE) {
		o->dropped++;
	} else {
		o->buf[(o->head + o->len) % SERIAL_OUT_SIZE] = byte;
		if (o->len++ == 0)
			pthread_cond_signal(&o->more);
	}
	pthread_mutex_unlock(&o->lock);
}

static void report_loss_locked(struct serial_out *o)
{
	if (o->dropped == o->reported)
		return;
	uint64_t n = o->dropped - o->reported;
	o->reported = o->dropped;
	pthread_mutex_unlock(&o->lock);
	fprintf(stderr, "vmdb: serial output: %" PRIu64 " bytes dropped: the reader did not "
		"keep up (%u KiB buffered at most)\n", n, SERIAL_OUT_SIZE >> 10);
	pthread_mutex_lock(&o->lock);
}

/* Wait until fd takes bytes: 1 when it does, 0 when the stop came (or,
 * when stopping, the reader stalled), -1 on an error of fd. */
static int wait_writable(struct serial_out *o, bool stopping)
{
	struct pollfd pfd[2] = {
		{ .fd = o->fd, .events = POLLOUT },
		{ .fd = o->stop_pipe[0], .events = POLLIN },
	};
	for (;;) {
		int n = poll(pfd, stopping ? 1 : 2, stopping ? SERIAL_OUT_STALL_MS : -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (pfd[0].revents & (POLLERR | POLLNVAL)))
			return -1;
		if (pfd[0].revents & (POLLOUT | POLLHUP))
			return 1;
		return 0;
	}
}

/* Write one chunk from the buffer's head; false when draining must end. */
static bool drain_chunk(struct serial_out *o, bool *stopping)
{
	uint8_t chunk[PIPE_BUF];
	size_t n = o->len;
	if (n > SERIAL_OUT_SIZE - o->head)
		n = SERIAL_OUT_SIZE - o->head;
	if (n > sizeof(chunk))
		n = sizeof(chunk);
	memcpy(chunk, o->buf + o->head, n);
	bool was_stopping = *stopping;
	pthread_mutex_unlock(&o->lock);

	int w = wait_writable(o, was_stopping);
	ssize_t done = 0;
	if (w > 0) {
		done = write(o->fd, chunk, n);
		if (done < 0 && (errno == EINTR || errno == EAGAIN))
			done = 0;
	}
	pthread_mutex_lock(&o->lock);
	if (w == 0 && !was_stopping) {
		*stopping = true;       /* the stop came: finish with a deadline */
		return true;
	}
	if (w == 0) {
		o->dropped += o->len;   /* a reader that stalled at exit */
		o->len = 0;
		pthread_cond_broadcast(&o->written);
		return false;
	}
	if (w < 0 || done < 0) {
		o->len = 0;             /* a failing console must not stop the guest */
		pthread_cond_broadcast(&o->written);
		return !was_stopping;
	}
	o->head = (o->head + (size_t)done) % SERIAL_OUT_SIZE;
	o->len -= (size_t)done;
	pthread_cond_broadcast(&o->written);
	return true;
}

static void *drain_thread(void *opaque)
{
	struct serial_out *o = opaque;
	bool stopping = false;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		while (o->len == 0 && !o->stop) {
			report_loss_locked(o);
			pthread_cond_wait(&o->more, &o->lock);
		}
		if (o->len == 0 || !drain_chunk(o, &stopping))
			break;
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

int serial_out_start(struct serial_out **out, int fd, bool close_fd, struct err *e)
{
	struct serial_out *o = calloc(1, sizeof(*o));
	if (!o || !(o->buf = malloc(SERIAL_OUT_SIZE))) {
		free(o);
		return err_set(e, ENOMEM, "out of memory for the serial output buffer");
	}
	o->fd = fd;
	o->close_fd = close_fd;
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->more, NULL);
	pthread_cond_init(&o->written, NULL);
	int r = -1;
	if (pipe2(o->stop_pipe, O_CLOEXEC) < 0) {
		r = err_set(e, errno, "serial output: cannot create a pipe: %s", strerror(errno));
	} else if ((r = pthread_create(&o->thread, NULL, drain_thread, o)) != 0) {
		close(o->stop_pipe[0]);
		close(o->stop_pipe[1]);
		r = err_set(e, r, "serial output: cannot start a thread: %s", strerror(r));
	}
	if (r < 0) {
		pthread_cond_destroy(&o->written);
		pthread_cond_destroy(&o->more);
		pthread_mutex_destroy(&o->lock);
		free(o->buf);
		free(o);
		return r;
	}
	*out = o;
	return 0;
}

void serial_out_flush(struct serial_out *o)
{
	pthread_mutex_lock(&o->lock);
	while (o->len > 0) {
		size_t before = o->len;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += SERIAL_OUT_STALL_MS / 1000;
		int r = 0;
		while (o->len == before && r != ETIMEDOUT)
			r = pthread_cond_timedwait(&o->written, &o->lock, &until);
		if (o->len == before)
			break;              /* the reader stalled: do not wait for it */
	}
	pthread_mutex_unlock(&o->lock);
}

void serial_out_stop(struct serial_out *o)
{
	pthread_mutex_lock(&o->lock);
	o->stop = true;
	pthread_cond_signal(&o->more);
	pthread_mutex_unlock(&o->lock);
	if (write(o->stop_pipe[1], "", 1) < 0) {
		/* cannot happen on an empty pipe; the thread then ends with the reader */
	}
	pthread_join(o->thread, NULL);
	pthread_mutex_lock(&o->lock);
	report_loss_locked(o);
	pthread_mutex_unlock(&o->lock);
	close(o->stop_pipe[0]);
	close(o->stop_pipe[1]);
	if (o->close_fd)
		close(o->fd);
	pthread_cond_destroy(&o->written);
	pthread_cond_destroy(&o->more);
	pthread_mutex_destroy(&o->lock);
	free(o->buf);
	free(o);
}
