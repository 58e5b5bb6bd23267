/* engine/emu/emu_pit.c — the 8254 PIT at 0x40-0x43 and port 0x61 (gate
 * and output of channel 2, speaker bit, refresh toggle). All six modes as
 * counts derived from guest time (1.193182 MHz, nothing ticks in the
 * background), lsb/msb/lsb-msb access, latch and read-back commands.
 * Channel 0 raises IRQ0 (PIC IRQ0, IOAPIC pin 2) as an edge when its OUT
 * rises: once in modes 0/4, every period in modes 2/3 (late periods are
 * coalesced into one edge). Channels 0 and 1 have their gate tied high;
 * channel 2's gate is port 0x61 bit 0.
 *
 * Simplifications: a new count in modes 2/3 restarts the period at once
 * (the chip waits for the end of the current one); BCD counting is
 * reported in the status but counted in binary. */
#include "engine/emu/emu_platform_priv.h"

#include <string.h>

#define PIT_PORT_CH0    0x40
#define PIT_PORT_CTRL   0x43
#define PORT_61         0x61
#define PORT_61_GATE2   0x01
#define PORT_61_WRITABLE 0x0f
#define PORT_61_REFRESH 0x10
#define PORT_61_OUT2    0x20
/* DRAM refresh toggles port 0x61 bit 4 every 15.085 us */
#define REFRESH_NS      15085

#define CTRL_SC_SHIFT   6
#define CTRL_READBACK   3
#define CTRL_RW_SHIFT   4
#define CTRL_MODE_SHIFT 1
#define CTRL_BCD        0x01
#define RB_NO_COUNT     0x20
#define RB_NO_STATUS    0x10
#define STATUS_OUT      0x80
#define STATUS_NULL     0x40

enum pit_rw { PIT_RW_LATCH = 0, PIT_RW_LSB = 1, PIT_RW_MSB = 2, PIT_RW_WORD = 3 };

#define NO_TICK UINT64_MAX
#define NS_PER_S 1000000000ull

void pit_reset(struct emu_pit *pit)
{
	memset(pit, 0, sizeof(*pit));
	for (int i = 0; i < 3; i++) {
		pit->ch[i].gate = i != 2;
		pit->ch[i].count = 0x10000;
		pit->ch[i].rw = PIT_RW_WORD;
		pit->ch[i].irq_tick = NO_TICK;
	}
}

bool pit_port(uint16_t port)
{
	return (port >= PIT_PORT_CH0 && port <= PIT_PORT_CTRL) || port == PORT_61;
}

static uint64_t ns_to_ticks(uint64_t ns)
{
	return (uint64_t)((unsigned __int128)ns * EMU_PIT_HZ / NS_PER_S);
}

static uint64_t ticks_to_ns_ceil(uint64_t ticks)
{
	return (uint64_t)(((unsigned __int128)ticks * NS_PER_S + EMU_PIT_HZ - 1) / EMU_PIT_HZ);
}

static uint64_t ch_ticks(const struct emu_pit_channel *ch, uint64_t now)
{
	return ch->base_ticks + (ch->running ? ns_to_ticks(now - ch->since_ns) : 0);
}

static void ch_start(struct emu_pit_channel *ch, uint64_t now)
{
	ch->base_ticks = 0;
	ch->since_ns = now;
	ch->running = true;
}

static uint16_t ch_count(const struct emu_pit_channel *ch, uint64_t now)
{
	uint64_t t = ch_ticks(ch, now), n = ch->count;

	if (!ch->loaded)
		return (uint16_t)n;
	switch (ch->mode) {
	case 2:
		return (uint16_t)(n - t % n);
	case 3:
		return (uint16_t)((n - (2 * t) % n) & ~1ull);
	case 1:
	case 5:
		if (!ch->triggered)
			return (uint16_t)n;
		return (uint16_t)(n - t);
	default:
		return (uint16_t)(n - t);       /* modes 0/4 wrap through 0xffff */
	}
}

static bool ch_out(const struct emu_pit_channel *ch, uint64_t now)
{
	uint64_t t = ch_ticks(ch, now), n = ch->count;

	if (!ch->loaded)
		return ch->mode != 0;
	switch (ch->mode) {
	case 0:
		return t >= n;
	case 1:
		return !ch->triggered || t >= n;
	case 2:
		return !ch->gate || t % n != n - 1;
	case 3:
		return !ch->gate || t % n < (n + 1) / 2;
	case 4:
		return t != n;
	default:
		return !ch->triggered || t != n;
	}
}

/* The tick of the first IRQ after the count was (re)started. */
static void ch_arm_irq(struct emu_pit_channel *ch, unsigned index)
{
	bool fires = ch->mode == 0 || ch->mode == 2 || ch->mode == 3 || ch->mode == 4;

	ch->irq_tick = (index == 0 && ch->running && fires) ? ch->count : NO_TICK;
}

static void ch_write_ctrl(struct emu_pit_channel *ch, uint8_t v)
{
	ch->rw = (v >> CTRL_RW_SHIFT) & 3;
	ch->mode = (v >> CTRL_MODE_SHIFT) & 7;
	if (ch->mode > 5)
		ch->mode -= 4;          /* 6 and 7 are aliases of 2 and 3 */
	ch->bcd = v & CTRL_BCD;
	ch->loaded = ch->running = ch->triggered = false;
	ch->write_msb_next = ch->read_msb_next = 0;
	ch->latched = ch->status_latched = false;
	ch->irq_tick = NO_TICK;
}

static void ch_latch(struct emu_pit_channel *ch, uint64_t now)
{
	if (ch->latched)
		return;
	ch->latched = true;
	ch->latch = ch_count(ch, now);
	ch->latch_msb_next = 0;
}

static void ch_latch_status(struct emu_pit_channel *ch, uint64_t now)
{
	if (ch->status_latched)
		return;
	ch->status_latched = true;
	ch->status = (uint8_t)((ch_out(ch, now) ? STATUS_OUT : 0) | (ch->loaded ? 0 : STATUS_NULL) |
			       ch->rw << CTRL_RW_SHIFT | ch->mode << CTRL_MODE_SHIFT | ch->bcd);
}

static void pit_write_ctrl(struct emu_pit *pit, uint8_t v, uint64_t now)
{
	unsigned sc = v >> CTRL_SC_SHIFT;

	if (sc == CTRL_READBACK) {
		for (unsigned i = 0; i < 3; i++) {
			if (!(v & (2u << i)))
				continue;
			if (!(v & RB_NO_COUNT))
				ch_latch(&pit->ch[i], now);
			if (!(v & RB_NO_STATUS))
				ch_latch_status(&pit->ch[i], now);
		}
		return;
	}
	if (((v >> CTRL_RW_SHIFT) & 3) == PIT_RW_LATCH)
		ch_latch(&pit->ch[sc], now);
	else
		ch_write_ctrl(&pit->ch[sc], v);
}

static void ch_write_count(struct emu_pit_channel *ch, unsigned index, uint8_t v, uint64_t now)
{
	uint32_t count;

	switch (ch->rw) {
	case PIT_RW_LSB:
		count = v;
		break;
	case PIT_RW_MSB:
		count = (uint32_t)v << 8;
		break;
	default:
		if (!ch->write_msb_next) {
			ch->lsb_written = v;
			ch->write_msb_next = 1;
			return;
		}
		ch->write_msb_next = 0;
		count = ch->lsb_written | (uint32_t)v << 8;
		break;
	}
	ch->count = count ? count : 0x10000;
	ch->loaded = true;
	ch->triggered = false;
	ch->base_ticks = 0;
	ch->since_ns = now;
	/* modes 1 and 5 wait for a gate edge; the others count while gated on */
	ch->running = ch->mode != 1 && ch->mode != 5 && ch->gate;
	ch_arm_irq(ch, index);
}

static uint8_t ch_read(struct emu_pit_channel *ch, uint64_t now)
{
	if (ch->status_latched) {
		ch->status_latched = false;
		return ch->status;
	}
	uint16_t v = ch->latched ? ch->latch : ch_count(ch, now);
	bool msb;
	switch (ch->rw) {
	case PIT_RW_LSB:
		msb = false;
		ch->latched = false;
		break;
	case PIT_RW_MSB:
		msb = true;
		ch->latched = false;
		break;
	default:
		if (ch->latched) {
			msb = ch->latch_msb_next;
			ch->latch_msb_next ^= 1;
			if (msb)
				ch->latched = false;
		} else {
			msb = ch->read_msb_next;
			ch->read_msb_next ^= 1;
		}
		break;
	}
	return msb ? (uint8_t)(v >> 8) : (uint8_t)v;
}

/* Channel 2's gate from port 0x61. */
static void ch_set_gate(struct emu_pit_channel *ch, bool gate, uint64_t now)
{
	if (gate == ch->gate)
		return;
	if (!gate) {
		/* modes 1/5 ignore a low gate; the others stop counting */
		if (ch->running && ch->mode != 1 && ch->mode != 5) {
			ch->base_ticks = ch_ticks(ch, now);
			ch->running = false;
		}
		ch->gate = false;
		return;
	}
	ch->gate = true;
	if (!ch->loaded)
		return;
	if (ch->mode == 0 || ch->mode == 4) {
		ch->since_ns = now;     /* resume where it stopped */
		ch->running = true;
		return;
	}
	ch_start(ch, now);          /* modes 1, 2, 3, 5: a rising gate reloads */
	ch->triggered = true;
}

void pit_io_locked(struct emu_platform *plat, uint16_t port, uint8_t *data, bool write)
{
	struct emu_pit *pit = &plat->pit;
	uint64_t now = emu_guest_ns(plat->evm);

	if (port == PORT_61) {
		if (write) {
			pit->port61 = data[0] & PORT_61_WRITABLE;
			ch_set_gate(&pit->ch[2], data[0] & PORT_61_GATE2, now);
		} else {
			data[0] = (uint8_t)(pit->port61 |
					    ((now / REFRESH_NS) & 1 ? PORT_61_REFRESH : 0) |
					    (ch_out(&pit->ch[2], now) ? PORT_61_OUT2 : 0));
		}
		return;
	}
	if (port == PIT_PORT_CTRL) {
		if (write)
			pit_write_ctrl(pit, data[0], now);
		else
			data[0] = 0xff;     /* the control word is write-only */
		return;
	}
	unsigned i = port - PIT_PORT_CH0;
	if (write)
		ch_write_count(&pit->ch[i], i, data[0], now);
	else
		data[0] = ch_read(&pit->ch[i], now);
}

uint64_t pit_deadline_locked(struct emu_platform *plat)
{
	const struct emu_pit_channel *ch = &plat->pit.ch[0];

	if (!ch->running || ch->irq_tick == NO_TICK)
		return EMU_NO_DEADLINE;
	return ch->since_ns + ticks_to_ns_ceil(ch->irq_tick - ch->base_ticks);
}

void pit_advance_locked(struct emu_platform *plat, uint64_t now)
{
	struct emu_pit_channel *ch = &plat->pit.ch[0];

	if (pit_deadline_locked(plat) > now)
		return;
	plat_set_irq_locked(plat, 0, 1);
	plat_set_irq_locked(plat, 0, 0);
	if (ch->mode == 2 || ch->mode == 3) {
		uint64_t t = ch_ticks(ch, now);
		ch->irq_tick += (t - ch->irq_tick) / ch->count * ch->count + ch->count;
	} else {
		ch->irq_tick = NO_TICK;
	}
}
