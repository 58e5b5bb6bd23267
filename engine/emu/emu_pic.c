/* engine/emu/emu_pic.c — the 8259A pair: master at 0x20/0x21, slave at
 * 0xa0/0xa1 cascaded on master IRQ2, ELCR at 0x4d0/0x4d1. ICW1-4, IMR,
 * OCW2 EOI (non-specific / specific; rotation commands act as plain EOI),
 * OCW3 IRR/ISR read and poll, auto-EOI, edge and level (ELCR) inputs.
 * Fixed priority (IRQ0 highest), no special mask or special fully nested
 * mode. The master's INTR goes to the BSP's LINT0 (emu_lapic.c decides
 * whether the CPU sees it). */
#include "engine/emu/emu_platform_priv.h"

#include <string.h>

#include "engine/emu/emu.h"

#define PIC_MASTER_CMD  0x20
#define PIC_MASTER_DATA 0x21
#define PIC_SLAVE_CMD   0xa0
#define PIC_SLAVE_DATA  0xa1
#define PIC_ELCR_MASTER 0x4d0
#define PIC_ELCR_SLAVE  0x4d1
#define PIC_ELCR_MASTER_MASK 0xf8   /* IRQ0-2 are always edge */
#define PIC_ELCR_SLAVE_MASK  0xde   /* IRQ8 and IRQ13 are always edge */

#define ICW1_ICW4       0x01
#define ICW1_SINGLE     0x02
#define ICW1_INIT       0x10
#define ICW4_AEOI       0x02
#define OCW3_SELECT     0x08
#define OCW3_POLL       0x04
#define OCW3_READ_REG   0x02
#define OCW3_READ_ISR   0x01
#define OCW2_CMD_SHIFT  5
#define OCW2_LEVEL      0x07
#define POLL_INT        0x80
#define PIC_CASCADE_IRQ 2
#define PIC_SPURIOUS_IRQ 7

enum ocw2_cmd { OCW2_EOI = 1, OCW2_SEOI = 3, OCW2_ROT_EOI = 5, OCW2_ROT_SEOI = 7 };

void pic_reset(struct emu_pic *pic)
{
	memset(pic, 0, sizeof(*pic));
	pic->chip[0].elcr_mask = PIC_ELCR_MASTER_MASK;
	pic->chip[1].elcr_mask = PIC_ELCR_SLAVE_MASK;
}

bool pic_port(uint16_t port)
{
	return port == PIC_MASTER_CMD || port == PIC_MASTER_DATA || port == PIC_SLAVE_CMD ||
	       port == PIC_SLAVE_DATA || port == PIC_ELCR_MASTER || port == PIC_ELCR_SLAVE;
}

static void chip_set_line(struct emu_pic_chip *c, unsigned irq, int level)
{
	uint8_t mask = (uint8_t)(1u << irq);

	if (c->elcr & mask) {
		if (level)
			c->irr |= mask;
		else
			c->irr &= (uint8_t)~mask;
	} else if (level && !(c->lines & mask)) {
		c->irr |= mask;         /* rising edge */
	}
	if (level)
		c->lines |= mask;
	else
		c->lines &= (uint8_t)~mask;
}

/* Highest-priority request that is unmasked and above everything in
 * service, or -1. */
static int chip_get_irq(const struct emu_pic_chip *c)
{
	uint8_t req = c->irr & (uint8_t)~c->imr;

	if (!req)
		return -1;
	int irq = __builtin_ctz(req);
	if (c->isr && __builtin_ctz(c->isr) <= irq)
		return -1;
	return irq;
}

static void chip_ack(struct emu_pic_chip *c, int irq)
{
	uint8_t mask = (uint8_t)(1u << irq);

	if (!c->auto_eoi)
		c->isr |= mask;
	if (!(c->elcr & mask))
		c->irr &= (uint8_t)~mask;
}

/* Propagate slave -> master IRQ2 -> INTR -> the BSP's LAPIC. */
static void pic_update_locked(struct emu_platform *plat)
{
	struct emu_pic *pic = &plat->pic;

	chip_set_line(&pic->chip[0], PIC_CASCADE_IRQ, chip_get_irq(&pic->chip[1]) >= 0);
	pic->output = chip_get_irq(&pic->chip[0]) >= 0;
	struct emu_cpu *bsp = emu_vm_cpu(plat->evm, 0);
	if (bsp && bsp->lapic)
		lapic_update_locked(bsp->lapic);
}

void pic_set_irq_locked(struct emu_platform *plat, unsigned irq, int level)
{
	if (irq >= 16)
		return;
	chip_set_line(&plat->pic.chip[irq / 8], irq % 8, level);
	pic_update_locked(plat);
}

int pic_peek_locked(struct emu_platform *plat)
{
	struct emu_pic *pic = &plat->pic;
	int irq = chip_get_irq(&pic->chip[0]);

	if (irq < 0)
		return -1;
	if (irq != PIC_CASCADE_IRQ)
		return pic->chip[0].vector_base + irq;
	int irq2 = chip_get_irq(&pic->chip[1]);
	return pic->chip[1].vector_base + (irq2 < 0 ? PIC_SPURIOUS_IRQ : irq2);
}

int pic_intack_locked(struct emu_platform *plat)
{
	struct emu_pic *pic = &plat->pic;
	int irq = chip_get_irq(&pic->chip[0]), vector;

	if (irq < 0) {
		vector = pic->chip[0].vector_base + PIC_SPURIOUS_IRQ;
	} else if (irq != PIC_CASCADE_IRQ) {
		chip_ack(&pic->chip[0], irq);
		vector = pic->chip[0].vector_base + irq;
	} else {
		chip_ack(&pic->chip[0], irq);
		int irq2 = chip_get_irq(&pic->chip[1]);
		if (irq2 >= 0)
			chip_ack(&pic->chip[1], irq2);
		vector = pic->chip[1].vector_base + (irq2 < 0 ? PIC_SPURIOUS_IRQ : irq2);
	}
	pic_update_locked(plat);
	return vector;
}

static void chip_write_cmd(struct emu_pic_chip *c, uint8_t v)
{
	if (v & ICW1_INIT) {
		c->init_step = 1;
		c->icw4_needed = v & ICW1_ICW4;
		c->single = v & ICW1_SINGLE;
		c->imr = c->isr = 0;
		c->irr &= c->elcr;
		c->auto_eoi = c->read_isr = c->poll = false;
		return;
	}
	if (v & OCW3_SELECT) {
		if (v & OCW3_POLL)
			c->poll = true;
		if (v & OCW3_READ_REG)
			c->read_isr = v & OCW3_READ_ISR;
		return;
	}
	switch (v >> OCW2_CMD_SHIFT) {
	case OCW2_EOI:
	case OCW2_ROT_EOI:
		if (c->isr)
			c->isr &= (uint8_t)(c->isr - 1);        /* clear the highest priority */
		break;
	case OCW2_SEOI:
	case OCW2_ROT_SEOI:
		c->isr &= (uint8_t)~(1u << (v & OCW2_LEVEL));
		break;
	default:
		break;          /* priority rotation commands: fixed priority kept */
	}
}

static void chip_write_data(struct emu_pic_chip *c, uint8_t v)
{
	switch (c->init_step) {
	case 1:
		c->vector_base = v & 0xf8;
		c->init_step = c->single ? (c->icw4_needed ? 3 : 0) : 2;
		break;
	case 2:
		c->init_step = c->icw4_needed ? 3 : 0;
		break;
	case 3:
		c->auto_eoi = v & ICW4_AEOI;
		c->init_step = 0;
		break;
	default:
		c->imr = v;
		break;
	}
}

static uint8_t chip_read_cmd(struct emu_pic_chip *c)
{
	if (c->poll) {
		int irq = chip_get_irq(c);
		c->poll = false;
		if (irq < 0)
			return 0;
		chip_ack(c, irq);
		return (uint8_t)(POLL_INT | irq);
	}
	return c->read_isr ? c->isr : c->irr;
}

void pic_io_locked(struct emu_platform *plat, uint16_t port, uint8_t *data, bool write)
{
	struct emu_pic_chip *c = &plat->pic.chip[(port == PIC_SLAVE_CMD || port == PIC_SLAVE_DATA ||
						  port == PIC_ELCR_SLAVE) ? 1 : 0];

	switch (port) {
	case PIC_MASTER_CMD:
	case PIC_SLAVE_CMD:
		if (write)
			chip_write_cmd(c, data[0]);
		else
			data[0] = chip_read_cmd(c);
		break;
	case PIC_MASTER_DATA:
	case PIC_SLAVE_DATA:
		if (write)
			chip_write_data(c, data[0]);
		else
			data[0] = c->imr;
		break;
	case PIC_ELCR_MASTER:
	case PIC_ELCR_SLAVE:
		if (write)
			c->elcr = data[0] & c->elcr_mask;
		else
			data[0] = c->elcr;
		break;
	}
	pic_update_locked(plat);
}
