/* machine/bus.h — the one trap API for port I/O and MMIO. A device
 * registers (bus, base, len, handler, opaque); the vCPU loop routes each
 * IO/MMIO exit through bus_access(). Registration happens before any vCPU
 * runs, so lookups take no lock; each device serialises its own state. */
#ifndef VMDB_BUS_H
#define VMDB_BUS_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"

/* offset is relative to the registered base. For reads the handler fills
 * data[0..len); for writes it consumes it. Return 0, or -errno (logged by
 * the caller, the guest carries on). */
typedef int (*bus_handler)(void *opaque, uint64_t offset, uint8_t *data,
			   uint32_t len, bool is_write);

struct bus_range {
	uint64_t base, len;
	bus_handler handler;
	void *opaque;
	const char *name;
};

#define BUS_MAX_RANGES 64

struct bus {
	const char *name;           /* "pio" or "mmio" */
	struct bus_range ranges[BUS_MAX_RANGES];
	unsigned nr_ranges;
};

/* Fails with -EEXIST on overlap, -ENOSPC when full. */
int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler handler,
		 void *opaque, const char *name, struct err *e) must_check;

/* Route one access. Returns -ENOENT when no device claims addr: reads
 * then see all-ones, writes are dropped (as on a PC). */
int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write);

#endif
