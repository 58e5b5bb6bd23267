/* machine/dev_uart.c — a 16550A serial port at COM1 (0x3f8-0x3ff, IRQ 4).
 *
 * Transmission is instantaneous: a byte written to THR goes to the
 * configured sink (stdout, a file, or nowhere) through serial_out.c's
 * bounded queue, so LSR always shows THRE|TEMT, a polling guest never
 * waits, and a reader that stops reading never blocks a vCPU (bytes
 * beyond the queue are dropped and counted). Input exists
 * when the serial console is stdio and cli/ says stdin may be read
 * (vm_config.serial_stdin): a reader thread feeds the 16-byte RX FIFO,
 * and waits while it is full, so piped input is never dropped once the
 * guest's driver is up (as on the chip, a FIFO clear by the driver drops
 * what it holds: input sent before the guest is ready loses up to 16
 * bytes per clear; wait for a prompt before typing). When stdin is a
 * terminal (vm_config.serial_escape; cli/term.c puts it in raw mode),
 * Ctrl-A is an escape as in QEMU's -nographic: Ctrl-A x ends vmdb,
 * Ctrl-A Ctrl-A sends one Ctrl-A, Ctrl-A h lists the keys. Loopback mode
 * (MCR.LOOP) is modelled because OS drivers probe the chip with it.
 *
 * Interrupts follow the 16550 priority order (line status, RX data, THR
 * empty, modem status) and drive IRQ 4 (PIC and I/O APIC pin 4) as a
 * level through vm_irq_line. Like QEMU, MCR.OUT2 does not gate the line.
 *
 * Locking: vCPU threads and the reader thread all take uart->lock; output
 * is queued and vm_irq_line called under it, which keeps output bytes in
 * guest order. */
#include "machine/device.h"
#include "machine/serial_out.h"
#include "machine/vm.h"

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UART_BASE 0x3f8
#define UART_LEN  8
#define UART_IRQ  4

/* register offsets */
#define UART_RBR 0   /* read, DLAB=0 */
#define UART_THR 0   /* write, DLAB=0 */
#define UART_DLL 0   /* DLAB=1 */
#define UART_IER 1   /* DLAB=0 */
#define UART_DLM 1   /* DLAB=1 */
#define UART_IIR 2   /* read */
#define UART_FCR 2   /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_RDI  0x01  /* RX data available */
#define UART_IER_THRI 0x02  /* THR empty */
#define UART_IER_RLSI 0x04  /* receiver line status */
#define UART_IER_MSI  0x08  /* modem status */
#define UART_IER_MASK 0x0f

#define UART_IIR_NO_INT 0x01
#define UART_IIR_MSI    0x00
#define UART_IIR_THRI   0x02
#define UART_IIR_RDI    0x04
#define UART_IIR_RLSI   0x06
#define UART_IIR_FIFO   0xc0  /* FIFOs enabled (16550A) */

#define UART_FCR_ENABLE   0x01
#define UART_FCR_CLEAR_RX 0x02

#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR  0x01
#define UART_MCR_RTS  0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10
#define UART_MCR_MASK 0x1f

#define UART_LSR_DR   0x01
#define UART_LSR_OE   0x02
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40

#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI  0x40
#define UART_MSR_DCD 0x80

#define UART_RX_SIZE 16      /* a 16550A's receive FIFO */

#define UART_ESCAPE_KEY 0x01    /* Ctrl-A */

struct uart {
	struct vm *vm;
	pthread_mutex_t lock;
	struct serial_out *out;     /* NULL: output dropped */

	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	uint8_t lsr_errors;         /* OE, cleared by reading LSR */
	bool thri_pending;          /* THR-empty interrupt not yet acknowledged */
	int irq_level;

	uint8_t rx[UART_RX_SIZE];
	unsigned rx_head, rx_count;

	bool reader_running;
	bool reader_stop;           /* under lock: leave the FIFO wait */
	bool escape_pending;        /* reader thread only: the last key was Ctrl-A */
	pthread_cond_t rx_room;     /* the guest took a byte from the RX FIFO */
	pthread_t reader;
	int stop_pipe[2];           /* write end closed = reader stops */
};

/* --- interrupts -------------------------------------------------------- */

static uint8_t uart_iir_locked(const struct uart *u)
{
	if ((u->ier & UART_IER_RLSI) && (u->lsr_errors & UART_LSR_OE))
		return UART_IIR_RLSI;
	if ((u->ier & UART_IER_RDI) && u->rx_count)
		return UART_IIR_RDI;
	if ((u->ier & UART_IER_THRI) && u->thri_pending)
		return UART_IIR_THRI;
	/* modem status never changes outside loopback: no MSI source */
	return UART_IIR_NO_INT;
}

static void uart_update_irq_locked(struct uart *u)
{
	int level = uart_iir_locked(u) != UART_IIR_NO_INT;
	if (level == u->irq_level)
		return;
	u->irq_level = level;
	vm_irq_line(u->vm, UART_IRQ, level);
}

/* --- data path --------------------------------------------------------- */

static void uart_rx_push_locked(struct uart *u, uint8_t byte)
{
	if (u->rx_count == UART_RX_SIZE) {
		u->lsr_errors |= UART_LSR_OE;
		return;
	}
	u->rx[(u->rx_head + u->rx_count) % UART_RX_SIZE] = byte;
	u->rx_count++;
}

static uint8_t uart_rx_pop_locked(struct uart *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t byte = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_SIZE;
	u->rx_count--;
	pthread_cond_signal(&u->rx_room);
	return byte;
}

static void uart_output_locked(struct uart *u, uint8_t byte)
{
	/* replayed history wrote this already */
	if (__atomic_load_n(&u->vm->rr.quiet, __ATOMIC_ACQUIRE))
		return;
	output_watch_byte(&u->vm->output_watch, byte);
	if (u->out)
		serial_out_put(u->out, byte);
}

static void uart_transmit_locked(struct uart *u, uint8_t byte)
{
	if (u->mcr & UART_MCR_LOOP)
		uart_rx_push_locked(u, byte);
	else
		uart_output_locked(u, byte);
	u->thri_pending = true;    /* the byte is gone at once: THR is empty again */
}

static uint8_t uart_msr_locked(const struct uart *u)
{
	if (!(u->mcr & UART_MCR_LOOP))
		return UART_MSR_DCD | UART_MSR_DSR | UART_MSR_CTS;
	uint8_t msr = 0;
	if (u->mcr & UART_MCR_RTS)
		msr |= UART_MSR_CTS;
	if (u->mcr & UART_MCR_DTR)
		msr |= UART_MSR_DSR;
	if (u->mcr & UART_MCR_OUT1)
		msr |= UART_MSR_RI;
	if (u->mcr & UART_MCR_OUT2)
		msr |= UART_MSR_DCD;
	return msr;
}

/* --- register file ----------------------------------------------------- */

static uint8_t uart_read_locked(struct uart *u, unsigned reg)
{
	bool dlab = u->lcr & UART_LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case UART_RBR:
		return dlab ? u->dll : uart_rx_pop_locked(u);
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR:
		v = uart_iir_locked(u);
		if (v == UART_IIR_THRI)
			u->thri_pending = false;   /* reading IIR acknowledges THRE */
		return v | ((u->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		v = UART_LSR_THRE | UART_LSR_TEMT | u->lsr_errors |
		    (u->rx_count ? UART_LSR_DR : 0);
		u->lsr_errors = 0;
		return v;
	case UART_MSR:
		return uart_msr_locked(u);
	default:
		return u->scr;
	}
}

static void uart_write_locked(struct uart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & UART_LCR_DLAB;

	switch (reg) {
	case UART_THR:
		if (dlab)
			u->dll = v;
		else
			uart_transmit_locked(u, v);
		break;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			break;
		}
		/* enabling THRI with an empty THR raises it at once */
		if ((v & UART_IER_THRI) && !(u->ier & UART_IER_THRI))
			u->thri_pending = true;
		u->ier = v & UART_IER_MASK;
		break;
	case UART_FCR:
		if (v & UART_FCR_CLEAR_RX) {
			u->rx_head = u->rx_count = 0;
			pthread_cond_signal(&u->rx_room);
		}
		u->fcr = v & UART_FCR_ENABLE;
		break;
	case UART_LCR:
		u->lcr = v;
		break;
	case UART_MCR:
		u->mcr = v & UART_MCR_MASK;
		break;
	case UART_LSR:
	case UART_MSR:
		break;          /* read-only */
	default:
		u->scr = v;
		break;
	}
}

static int uart_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct uart *u = opaque;

	/* a wide access touches consecutive registers, one byte each */
	pthread_mutex_lock(&u->lock);
	for (uint32_t i = 0; i < len && offset + i < UART_LEN; i++) {
		if (is_write)
			uart_write_locked(u, (unsigned)(offset + i), data[i]);
		else
			data[i] = uart_read_locked(u, (unsigned)(offset + i));
	}
	uart_update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}

/* --- input thread ------------------------------------------------------ */

static const char uart_escape_help[] =
	"\r\nvmdb: Ctrl-A x  end vmdb\r\n"
	"vmdb: Ctrl-A Ctrl-A  send Ctrl-A to the guest\r\n"
	"vmdb: Ctrl-A h  this help\r\n";

/* One key from the terminal: true when it goes to the guest. */
static bool uart_escape_filter(struct uart *u, uint8_t key)
{
	if (!u->escape_pending) {
		u->escape_pending = key == UART_ESCAPE_KEY;
		return !u->escape_pending;
	}
	u->escape_pending = false;
	switch (key) {
	case UART_ESCAPE_KEY:
		return true;
	case 'x':
		vm_request_exit(u->vm, 0, "Ctrl-A x: the user ended the session");
		return false;
	case 'h':
		if (write(STDERR_FILENO, uart_escape_help, sizeof(uart_escape_help) - 1) < 0)
			return false;   /* nowhere to say it */
		return false;
	default:
		return false;       /* unknown escapes are dropped, as QEMU does */
	}
}

/* Wait for room in the RX FIFO; false when the reader must stop. */
static bool uart_wait_room(struct uart *u)
{
	pthread_mutex_lock(&u->lock);
	while (u->rx_count == UART_RX_SIZE && !u->reader_stop)
		pthread_cond_wait(&u->rx_room, &u->lock);
	bool go = !u->reader_stop;
	pthread_mutex_unlock(&u->lock);
	return go;
}

/* Bytes into the RX FIFO as far as it has room (vm_rr.serial_push: the
 * engine delivers recorded input through it). */
static size_t uart_push(void *opaque, const uint8_t *buf, size_t n)
{
	struct uart *u = opaque;
	size_t i = 0;
	pthread_mutex_lock(&u->lock);
	for (; i < n && u->rx_count < UART_RX_SIZE; i++)
		uart_rx_push_locked(u, buf[i]);
	uart_update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
	return i;
}

/* While the engine records, input goes to it: it delivers the bytes
 * (uart_push) at an instruction count it logs. */
static size_t uart_feed_recorded(struct uart *u, const uint8_t *buf, size_t n,
				 size_t (*queue)(struct vm *, const uint8_t *, size_t))
{
	uint8_t keep[64];
	size_t i = 0, k = 0;
	for (; i < n && k < sizeof(keep); i++)
		if (!u->vm->cfg.serial_escape || uart_escape_filter(u, buf[i]))
			keep[k++] = buf[i];
	size_t taken = queue(u->vm, keep, k);
	if (taken < k) {
		/* the engine's queue is full: wait for the guest to read */
		pthread_mutex_lock(&u->lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 10000000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&u->rx_room, &u->lock, &until);
		pthread_mutex_unlock(&u->lock);
		/* what does not fit then is dropped (the queue holds 64 KiB) */
		queue(u->vm, keep + taken, k - taken);
	}
	return i;
}

/* Queue what stdin gave; returns how many of the bytes were taken (the
 * rest waits for room). */
static size_t uart_feed(struct uart *u, const uint8_t *buf, size_t n)
{
	size_t (*queue)(struct vm *, const uint8_t *, size_t) =
		__atomic_load_n(&u->vm->rr.queue_input, __ATOMIC_ACQUIRE);
	if (queue)
		return uart_feed_recorded(u, buf, n, queue);
	size_t i = 0;
	pthread_mutex_lock(&u->lock);
	for (; i < n && u->rx_count < UART_RX_SIZE; i++)
		if (!u->vm->cfg.serial_escape || uart_escape_filter(u, buf[i]))
			uart_rx_push_locked(u, buf[i]);
	uart_update_irq_locked(u);
	pthread_mutex_unlock(&u->lock);
	return i;
}

static void *uart_reader(void *opaque)
{
	struct uart *u = opaque;
	struct pollfd fds[2] = {
		{ .fd = STDIN_FILENO, .events = POLLIN },
		{ .fd = u->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		if (!(fds[0].revents & (POLLIN | POLLHUP)))
			return NULL;      /* error: no more input */
		uint8_t buf[64];
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return NULL;      /* end of input */
		for (size_t done = 0; done < (size_t)n;) {
			if (!uart_wait_room(u))
				return NULL;
			done += uart_feed(u, buf + done, (size_t)n - done);
		}
	}
}

static int uart_start_reader(struct uart *u, struct err *e)
{
	if (pipe2(u->stop_pipe, O_CLOEXEC) < 0)
		return err_set(e, errno, "serial input: cannot create a pipe: %s", strerror(errno));
	int ret = pthread_create(&u->reader, NULL, uart_reader, u);
	if (ret) {
		close(u->stop_pipe[0]);
		close(u->stop_pipe[1]);
		return err_set(e, ret, "serial input: cannot start a thread: %s", strerror(ret));
	}
	u->reader_running = true;
	return 0;
}

/* --- life cycle -------------------------------------------------------- */

static void uart_destroy(void *opaque)
{
	struct uart *u = opaque;

	if (u->reader_running) {
		pthread_mutex_lock(&u->lock);
		u->reader_stop = true;
		pthread_cond_broadcast(&u->rx_room);
		pthread_mutex_unlock(&u->lock);
		close(u->stop_pipe[1]);
		pthread_join(u->reader, NULL);
		close(u->stop_pipe[0]);
	}
	if (u->out)
		serial_out_stop(u->out);
	pthread_cond_destroy(&u->rx_room);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

/* Power-on register state; input already queued stays queued (it was
 * typed for the guest, which will read it once its driver is up). */
static void uart_reset(void *opaque)
{
	struct uart *u = opaque;
	pthread_mutex_lock(&u->lock);
	u->ier = u->lcr = u->scr = u->dll = u->dlm = u->fcr = 0;
	u->mcr = UART_MCR_OUT2;
	u->lsr_errors = 0;
	u->thri_pending = false;
	/* the new interrupt controllers start low; input that arrived since
	 * they exist may have raised the line: lower it */
	u->irq_level = 0;
	vm_irq_line(u->vm, UART_IRQ, 0);
	pthread_mutex_unlock(&u->lock);
}

/* Snapshots: the registers, the interrupt line as driven and the receive
 * FIFO. Input the reader thread queues after a restore lands behind what
 * the FIFO held then; output already written to the host stays written
 * (serial_out.c has nothing the guest can see). */
struct uart_image {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, lsr_errors;
	bool thri_pending;
	int irq_level;
	uint8_t rx[UART_RX_SIZE];
	unsigned rx_head, rx_count;
};

static void uart_save(void *opaque, void *buf)
{
	struct uart *u = opaque;
	struct uart_image img;
	memset(&img, 0, sizeof(img));
	pthread_mutex_lock(&u->lock);
	img.ier = u->ier; img.lcr = u->lcr; img.mcr = u->mcr; img.scr = u->scr;
	img.dll = u->dll; img.dlm = u->dlm; img.fcr = u->fcr; img.lsr_errors = u->lsr_errors;
	img.thri_pending = u->thri_pending;
	img.irq_level = u->irq_level;
	memcpy(img.rx, u->rx, sizeof(img.rx));
	img.rx_head = u->rx_head;
	img.rx_count = u->rx_count;
	pthread_mutex_unlock(&u->lock);
	memcpy(buf, &img, sizeof(img));
}

/* The interrupt controllers are restored with the line as it was, so the
 * line is not driven again here. */
static void uart_restore(void *opaque, const void *buf)
{
	struct uart *u = opaque;
	struct uart_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&u->lock);
	u->ier = img.ier; u->lcr = img.lcr; u->mcr = img.mcr; u->scr = img.scr;
	u->dll = img.dll; u->dlm = img.dlm; u->fcr = img.fcr; u->lsr_errors = img.lsr_errors;
	u->thri_pending = img.thri_pending;
	u->irq_level = img.irq_level;
	memcpy(u->rx, img.rx, sizeof(u->rx));
	u->rx_head = img.rx_head % UART_RX_SIZE;
	u->rx_count = img.rx_count <= UART_RX_SIZE ? img.rx_count : UART_RX_SIZE;
	pthread_cond_signal(&u->rx_room);
	pthread_mutex_unlock(&u->lock);
}

/* The guest's last lines are written out before its end is reported
 * (a debugger's W reply, vmdb's exit line). */
static void uart_flush_at_exit(void *opaque)
{
	struct uart *u = opaque;
	if (u->out)
		serial_out_flush(u->out);
}

static int uart_open_output(struct uart *u, const struct vm_config *cfg, struct err *e)
{
	int fd = STDOUT_FILENO;
	switch (cfg->serial) {
	case SERIAL_STDIO:
		break;
	case SERIAL_FILE:
		if (!cfg->serial_path)
			return err_set(e, EINVAL, "serial output to a file needs a path");
		fd = open(cfg->serial_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			return err_set(e, errno, "cannot open serial output file %s: %s",
				       cfg->serial_path, strerror(errno));
		break;
	case SERIAL_NONE:
		return 0;
	}
	int r = serial_out_start(&u->out, fd, fd != STDOUT_FILENO, e);
	if (r < 0 && fd != STDOUT_FILENO)
		close(fd);
	return r;
}

static int uart_init(struct vm *vm, struct err *e)
{
	struct uart *u = calloc(1, sizeof(*u));
	if (!u)
		return err_set(e, ENOMEM, "out of memory");
	u->vm = vm;
	u->mcr = UART_MCR_OUT2;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->rx_room, NULL);

	int ret = uart_open_output(u, &vm->cfg, e);
	if (ret < 0)
		goto fail;
	ret = vm_on_destroy(vm, uart_destroy, u, e);
	if (ret < 0)
		goto fail;
	/* from here on vm_destroy frees u */
	ret = vm_on_exit(vm, uart_flush_at_exit, u, e);
	if (ret == 0)
		ret = vm_on_reset(vm, uart_reset, u, e);
	if (ret == 0)
		ret = vm_on_snapshot(vm, "uart", sizeof(struct uart_image), uart_save,
				     uart_restore, u, e);
	if (ret < 0)
		return ret;
	ret = bus_register(&vm->pio, UART_BASE, UART_LEN, uart_io, u, "uart", e);
	if (ret < 0)
		return ret;
	vm->rr.serial_opaque = u;
	vm->rr.serial_push = uart_push;
	if (vm->cfg.serial == SERIAL_STDIO && vm->cfg.serial_stdin)
		return uart_start_reader(u, e);
	return 0;
fail:
	uart_destroy(u);
	return ret;
}

MACHINE_DEVICE(uart, uart_init);
