/* machine/dev_i8042.c — an 8042 keyboard controller at 0x60 (data) and
 * 0x64 (status/command) with nothing plugged in.
 *
 * The controller answers its own commands: self-test (0xAA -> 0x55), the
 * controller configuration byte (0x20/0x60) and the rest of its RAM,
 * port enables (0xA7/0xA8/0xAD/0xAE), interface tests (keyboard 0xAB ->
 * 0x00, mouse 0xA9 -> 0x02: no device on the clock line), the output port
 * (0xD0/0xD1) and the write-to-output-buffer commands (0xD2/0xD3). There
 * is no mouse port: 0xD3's echo comes back on the keyboard side, which
 * tells an OS at once that loopback through the AUX port does not work.
 * Bytes sent to the keyboard or the mouse (0xD4) get no answer, as when
 * nothing is connected: the OS times out, sleeping rather than spinning.
 *
 * Reset: pulsing output line 0 (command 0xFE, or 0xD1 with bit 0 clear)
 * resets the machine (vm_request_reset). A byte in the output buffer
 * raises IRQ 1 (IRQ 12 for the AUX side) when the configuration byte
 * enables it; reading it lowers the line. */
#include "machine/device.h"
#include "machine/vm.h"

#include <stdlib.h>
#include <string.h>

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT  0x64

#define STS_OBF      0x01
#define STS_SYS      0x04
#define STS_CMD      0x08   /* the last write went to the command port */
#define STS_UNLOCKED 0x10
#define STS_AUXDATA  0x20

#define CCB_KBDINT   0x01
#define CCB_AUXINT   0x02
#define CCB_SYS      0x04
#define CCB_KBDDIS   0x10
#define CCB_AUXDIS   0x20
#define CCB_XLATE    0x40
#define CCB_POWER_ON (CCB_KBDINT | CCB_SYS | CCB_XLATE)

#define OUTPORT_RESET_HIGH 0x01   /* bit 0 low = CPU reset */
#define OUTPORT_A20        0x02

#define CMD_READ_RAM     0x20     /* 0x20-0x3f: RAM byte 0-31 */
#define CMD_WRITE_RAM    0x60     /* 0x60-0x7f */
#define CMD_AUX_DISABLE  0xa7
#define CMD_AUX_ENABLE   0xa8
#define CMD_AUX_TEST     0xa9
#define CMD_SELF_TEST    0xaa
#define CMD_KBD_TEST     0xab
#define CMD_KBD_DISABLE  0xad
#define CMD_KBD_ENABLE   0xae
#define CMD_READ_INPUT   0xc0
#define CMD_READ_OUTPUT  0xd0
#define CMD_WRITE_OUTPUT 0xd1
#define CMD_WRITE_KBD_OB 0xd2
#define CMD_WRITE_AUX_OB 0xd3
#define CMD_WRITE_AUX    0xd4
#define CMD_PULSE_RESET  0xfe

#define SELF_TEST_OK     0x55
#define PORT_TEST_OK     0x00
#define PORT_TEST_NO_CLK 0x02     /* clock line stuck low: nothing there */

#define KBD_IRQ 1
#define AUX_IRQ 12
#define RAM_SIZE 32

struct i8042 {
	struct vm *vm;
	pthread_mutex_t lock;
	uint8_t ram[RAM_SIZE];        /* ram[0] is the configuration byte */
	uint8_t status;
	uint8_t out;                  /* output buffer, valid with STS_OBF */
	uint8_t pending_cmd;          /* a command waiting for its data byte, or 0 */
	int kbd_irq, aux_irq;         /* line levels driven */
};

static void i8042_update_irq_locked(struct i8042 *k)
{
	bool full = k->status & STS_OBF, aux = k->status & STS_AUXDATA;
	int kbd = full && !aux && (k->ram[0] & CCB_KBDINT);
	int mouse = full && aux && (k->ram[0] & CCB_AUXINT);
	if (kbd != k->kbd_irq)
		vm_irq_line(k->vm, KBD_IRQ, k->kbd_irq = kbd);
	if (mouse != k->aux_irq)
		vm_irq_line(k->vm, AUX_IRQ, k->aux_irq = mouse);
}

static void i8042_reply_locked(struct i8042 *k, uint8_t v, bool aux)
{
	k->out = v;
	k->status = (uint8_t)((k->status & ~STS_AUXDATA) | STS_OBF | (aux ? STS_AUXDATA : 0));
}

/* A command byte; returns true when it asks for a machine reset. */
static bool i8042_command_locked(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0;
	if (cmd >= CMD_READ_RAM && cmd < CMD_READ_RAM + RAM_SIZE) {
		i8042_reply_locked(k, k->ram[cmd - CMD_READ_RAM], false);
		return false;
	}
	if ((cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + RAM_SIZE) || cmd == CMD_WRITE_OUTPUT ||
	    cmd == CMD_WRITE_KBD_OB || cmd == CMD_WRITE_AUX_OB || cmd == CMD_WRITE_AUX) {
		k->pending_cmd = cmd;
		return false;
	}
	switch (cmd) {
	case CMD_AUX_DISABLE:  k->ram[0] |= CCB_AUXDIS; break;
	case CMD_AUX_ENABLE:   k->ram[0] &= (uint8_t)~CCB_AUXDIS; break;
	case CMD_KBD_DISABLE:  k->ram[0] |= CCB_KBDDIS; break;
	case CMD_KBD_ENABLE:   k->ram[0] &= (uint8_t)~CCB_KBDDIS; break;
	case CMD_AUX_TEST:     i8042_reply_locked(k, PORT_TEST_NO_CLK, false); break;
	case CMD_KBD_TEST:     i8042_reply_locked(k, PORT_TEST_OK, false); break;
	case CMD_SELF_TEST:
		k->status |= STS_SYS;
		i8042_reply_locked(k, SELF_TEST_OK, false);
		break;
	case CMD_READ_INPUT:   i8042_reply_locked(k, 0, false); break;
	case CMD_READ_OUTPUT:
		i8042_reply_locked(k, OUTPORT_RESET_HIGH | OUTPORT_A20, false);
		break;
	case CMD_PULSE_RESET:  return true;
	default:               break;    /* other pulses, vendor commands */
	}
	return false;
}

/* A data byte: the parameter of a pending command, else for the keyboard.
 * Returns true when it asks for a machine reset. */
static bool i8042_data_locked(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending_cmd;
	k->pending_cmd = 0;
	if (cmd >= CMD_WRITE_RAM && cmd < CMD_WRITE_RAM + RAM_SIZE) {
		k->ram[cmd - CMD_WRITE_RAM] = v;
		if (cmd == CMD_WRITE_RAM)
			k->status = (uint8_t)((k->status & ~STS_SYS) | (v & CCB_SYS));
		return false;
	}
	switch (cmd) {
	case CMD_WRITE_OUTPUT:
		return !(v & OUTPORT_RESET_HIGH);
	case CMD_WRITE_KBD_OB:
	case CMD_WRITE_AUX_OB:
		/* no AUX port: its loopback answers on the keyboard side */
		i8042_reply_locked(k, v, false);
		return false;
	default:
		return false;   /* to the keyboard or mouse: nobody answers */
	}
}

static int i8042_io(void *opaque, uint64_t port, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	pthread_mutex_lock(&k->lock);
	if (!is_write) {
		memset(data, 0, len);
		if (port == I8042_CMD_PORT) {
			data[0] = k->status;
		} else {
			data[0] = k->out;
			k->status &= (uint8_t)~(STS_OBF | STS_AUXDATA);
		}
	} else if (port == I8042_CMD_PORT) {
		k->status |= STS_CMD;
		reset = i8042_command_locked(k, data[0]);
	} else {
		k->status &= (uint8_t)~STS_CMD;
		reset = i8042_data_locked(k, data[0]);
	}
	i8042_update_irq_locked(k);
	pthread_mutex_unlock(&k->lock);
	if (reset)
		vm_request_reset(k->vm, "reset pulse from the i8042 keyboard controller");
	return 0;
}

static int i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	(void)offset;
	return i8042_io(opaque, I8042_DATA_PORT, data, len, is_write);
}

static int i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			bool is_write)
{
	(void)offset;
	return i8042_io(opaque, I8042_CMD_PORT, data, len, is_write);
}

static void i8042_reset(void *opaque)
{
	struct i8042 *k = opaque;
	pthread_mutex_lock(&k->lock);
	memset(k->ram, 0, sizeof(k->ram));
	k->ram[0] = CCB_POWER_ON;
	k->status = STS_SYS | STS_UNLOCKED;   /* as left by the firmware's POST */
	k->out = 0;
	k->pending_cmd = 0;
	k->kbd_irq = k->aux_irq = 0;          /* the new interrupt controllers start low */
	pthread_mutex_unlock(&k->lock);
}

/* Snapshots: the controller RAM, status, output buffer, a command waiting
 * for its byte and the interrupt lines as driven. */
struct i8042_image {
	uint8_t ram[RAM_SIZE];
	uint8_t status, out, pending_cmd;
	int kbd_irq, aux_irq;
};

static void i8042_save(void *opaque, void *buf)
{
	struct i8042 *k = opaque;
	struct i8042_image img;
	memset(&img, 0, sizeof(img));
	pthread_mutex_lock(&k->lock);
	memcpy(img.ram, k->ram, sizeof(img.ram));
	img.status = k->status;
	img.out = k->out;
	img.pending_cmd = k->pending_cmd;
	img.kbd_irq = k->kbd_irq;
	img.aux_irq = k->aux_irq;
	pthread_mutex_unlock(&k->lock);
	memcpy(buf, &img, sizeof(img));
}

/* The interrupt controllers come back with the lines as they were. */
static void i8042_restore(void *opaque, const void *buf)
{
	struct i8042 *k = opaque;
	struct i8042_image img;
	memcpy(&img, buf, sizeof(img));
	pthread_mutex_lock(&k->lock);
	memcpy(k->ram, img.ram, sizeof(k->ram));
	k->status = img.status;
	k->out = img.out;
	k->pending_cmd = img.pending_cmd;
	k->kbd_irq = img.kbd_irq;
	k->aux_irq = img.aux_irq;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_destroy(void *opaque)
{
	struct i8042 *k = opaque;
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int i8042_init(struct vm *vm, struct err *e)
{
	struct i8042 *k = calloc(1, sizeof(*k));
	if (!k)
		return err_set(e, ENOMEM, "out of memory");
	k->vm = vm;
	pthread_mutex_init(&k->lock, NULL);
	i8042_reset(k);
	int r = vm_on_destroy(vm, i8042_destroy, k, e);
	if (r < 0) {
		i8042_destroy(k);
		return r;
	}
	if ((r = vm_on_reset(vm, i8042_reset, k, e)) < 0 ||
	    (r = vm_on_snapshot(vm, "i8042", sizeof(struct i8042_image), i8042_save,
				i8042_restore, k, e)) < 0 ||
	    (r = bus_register(&vm->pio, I8042_DATA_PORT, 1, i8042_data_io, k, "i8042-data",
			      e)) < 0)
		return r;
	return bus_register(&vm->pio, I8042_CMD_PORT, 1, i8042_cmd_io, k, "i8042-cmd", e);
}

MACHINE_DEVICE(i8042, i8042_init);
