/* engine/emu/emu_ioapic.c — the I/O APIC at 0xFEC00000 (82093AA-like,
 * version 0x11, 24 pins, ID 0 as the MADT says): IOREGSEL/IOWIN, the
 * redirection table, edge and level pins with remote IRR, and delivery to
 * the local APICs.
 *
 * Pins keep an "irr" like KVM's: an edge seen while the pin was masked is
 * delivered when it is unmasked; a level pin is redelivered at EOI while
 * its line is still high. Polarity is taken as already applied by the
 * caller (irq_line's level is "asserted"). */
#include "engine/emu/emu_platform_priv.h"

#include <string.h>

#define IOAPIC_REGSEL   0x00u
#define IOAPIC_WINDOW   0x10u
#define IOAPIC_REG_ID   0x00u
#define IOAPIC_REG_VER  0x01u
#define IOAPIC_REG_ARB  0x02u
#define IOAPIC_REG_REDIR 0x10u
#define IOAPIC_VERSION  (0x11u | (IOAPIC_PINS - 1) << 16)
#define IOAPIC_ID_SHIFT 24
#define IOAPIC_ID_MASK  (0xfu << IOAPIC_ID_SHIFT)

/* redirection entry bits */
#define RTE_VECTOR      0xffull
#define RTE_DM_SHIFT    8
#define RTE_LOGICAL     (1ull << 11)
#define RTE_PENDING     (1ull << 12)   /* delivery status, read-only */
#define RTE_REMOTE_IRR  (1ull << 14)   /* read-only */
#define RTE_LEVEL       (1ull << 15)
#define RTE_MASKED      (1ull << 16)
#define RTE_DEST_SHIFT  56
#define RTE_READONLY    (RTE_PENDING | RTE_REMOTE_IRR)
#define RTE_WRITABLE    (0xff000000000000ffull | ((0x1ffull << 8) & ~RTE_READONLY))

void ioapic_reset(struct emu_ioapic *io)
{
	memset(io, 0, sizeof(*io));
	for (unsigned i = 0; i < IOAPIC_PINS; i++)
		io->redir[i] = RTE_MASKED;
}

static void ioapic_service_locked(struct emu_platform *plat, unsigned pin)
{
	struct emu_ioapic *io = &plat->ioapic;
	uint64_t e = io->redir[pin];
	bool level = e & RTE_LEVEL;

	if (!(io->irr >> pin & 1) || (e & RTE_MASKED) || (level && (e & RTE_REMOTE_IRR)))
		return;
	uint32_t dest = (uint32_t)(e >> RTE_DEST_SHIFT);
	struct apic_msg m = {
		.dest = dest,
		.broadcast = dest == 0xff,
		.logical = e & RTE_LOGICAL,
		.vector = (uint8_t)(e & RTE_VECTOR),
		.dm = (enum apic_dm)(e >> RTE_DM_SHIFT & 7),
		.level_trig = level,
		.assert = true,
		.sh = APIC_SH_NONE,
		.src = NULL,
	};
	if (level)
		io->redir[pin] |= RTE_REMOTE_IRR;
	else
		io->irr &= ~(1u << pin);
	lapic_deliver_locked(plat, &m);
}

void ioapic_set_pin_locked(struct emu_platform *plat, unsigned pin, int level)
{
	struct emu_ioapic *io = &plat->ioapic;

	if (pin >= IOAPIC_PINS)
		return;
	uint32_t bit = 1u << pin;
	bool was = io->level & bit;
	if (level)
		io->level |= bit;
	else
		io->level &= ~bit;
	if (io->redir[pin] & RTE_LEVEL) {
		if (level)
			io->irr |= bit;
		else
			io->irr &= ~bit;
	} else if (level && !was) {
		io->irr |= bit;         /* rising edge */
	}
	ioapic_service_locked(plat, pin);
}

void ioapic_eoi_locked(struct emu_platform *plat, uint8_t vector)
{
	struct emu_ioapic *io = &plat->ioapic;

	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->redir[pin];
		if ((e & RTE_VECTOR) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
			continue;
		io->redir[pin] &= ~RTE_REMOTE_IRR;
		ioapic_service_locked(plat, pin);
	}
}

static uint32_t ioapic_read_reg(const struct emu_ioapic *io)
{
	uint32_t sel = io->regsel;

	switch (sel) {
	case IOAPIC_REG_ID:
	case IOAPIC_REG_ARB:
		return io->id << IOAPIC_ID_SHIFT;
	case IOAPIC_REG_VER:
		return IOAPIC_VERSION;
	}
	if (sel >= IOAPIC_REG_REDIR && sel < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS) {
		uint64_t e = io->redir[(sel - IOAPIC_REG_REDIR) / 2];
		return (uint32_t)(sel & 1 ? e >> 32 : e);
	}
	return 0;
}

static void ioapic_write_reg(struct emu_platform *plat, uint32_t v)
{
	struct emu_ioapic *io = &plat->ioapic;
	uint32_t sel = io->regsel;

	if (sel == IOAPIC_REG_ID) {
		io->id = (v & IOAPIC_ID_MASK) >> IOAPIC_ID_SHIFT;
		return;
	}
	if (sel < IOAPIC_REG_REDIR || sel >= IOAPIC_REG_REDIR + 2 * IOAPIC_PINS)
		return;                 /* version, arbitration: read-only */
	unsigned pin = (sel - IOAPIC_REG_REDIR) / 2;
	uint64_t e = io->redir[pin];
	if (sel & 1)
		e = (e & 0xffffffffull) | (uint64_t)v << 32;
	else
		e = (e & ~0xffffffffull) | v;
	io->redir[pin] = (e & RTE_WRITABLE) | (io->redir[pin] & RTE_READONLY);
	if (!(io->redir[pin] & RTE_LEVEL))
		io->redir[pin] &= ~RTE_REMOTE_IRR;
	else if (io->level >> pin & 1)
		io->irr |= 1u << pin;   /* a pin made level while high asks again */
	ioapic_service_locked(plat, pin);
}

/* Registers are 32 bits wide; narrower or misaligned accesses see the
 * bytes of the addressed register (reads) or are dropped (writes). */
void ioapic_mmio_locked(struct emu_platform *plat, uint64_t offset, uint8_t *data,
			unsigned len, bool write)
{
	struct emu_ioapic *io = &plat->ioapic;
	uint32_t reg = (uint32_t)offset & ~0xfu, byte = (uint32_t)offset & 0xf, v = 0;

	if (write) {
		if (byte || len < 4)
			return;
		memcpy(&v, data, 4);
		if (reg == IOAPIC_REGSEL)
			io->regsel = v & 0xff;
		else if (reg == IOAPIC_WINDOW)
			ioapic_write_reg(plat, v);
		return;
	}
	if (reg == IOAPIC_REGSEL)
		v = io->regsel;
	else if (reg == IOAPIC_WINDOW)
		v = ioapic_read_reg(io);
	memset(data, 0, len);
	for (unsigned i = 0; i < len && byte + i < 4; i++)
		data[i] = (uint8_t)(v >> (8 * (byte + i)));
}
