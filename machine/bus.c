/* machine/bus.c — the port-I/O / MMIO trap bus (see machine/bus.h).
 * Ranges are kept sorted by base so a lookup is a binary search. All
 * registration happens before any vCPU runs; after that the table is
 * read-only, which is why bus_access() takes no lock. */
#include "machine/bus.h"

#include <string.h>

static const char *bus_name(const struct bus *bus)
{
	return bus->name ? bus->name : "bus";
}

static bool bus_overlaps(const struct bus_range *r, uint64_t base, uint64_t len)
{
	/* both ranges are non-empty and do not wrap (checked at registration) */
	return base <= r->base + (r->len - 1) && r->base <= base + (len - 1);
}

int bus_register(struct bus *bus, uint64_t base, uint64_t len, bus_handler handler,
		 void *opaque, const char *name, struct err *e)
{
	if (!name)
		name = "device";
	if (len == 0 || !handler || base + (len - 1) < base)
		return err_set(e, EINVAL, "%s: %s: invalid range 0x%llx+0x%llx", bus_name(bus),
			       name, (unsigned long long)base, (unsigned long long)len);
	if (bus->nr_ranges >= BUS_MAX_RANGES)
		return err_set(e, ENOSPC, "%s: no room for %s (at most %d ranges)", bus_name(bus),
			       name, BUS_MAX_RANGES);

	unsigned pos = 0;
	for (unsigned i = 0; i < bus->nr_ranges; i++) {
		const struct bus_range *r = &bus->ranges[i];
		if (bus_overlaps(r, base, len))
			return err_set(e, EEXIST,
				       "%s: %s at 0x%llx-0x%llx overlaps %s at 0x%llx-0x%llx",
				       bus_name(bus), name, (unsigned long long)base,
				       (unsigned long long)(base + len - 1), r->name,
				       (unsigned long long)r->base,
				       (unsigned long long)(r->base + r->len - 1));
		if (r->base < base)
			pos = i + 1;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos],
		(bus->nr_ranges - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){
		.base = base, .len = len, .handler = handler, .opaque = opaque, .name = name,
	};
	bus->nr_ranges++;
	return 0;
}

/* The range containing addr, or NULL. */
static const struct bus_range *bus_find(const struct bus *bus, uint64_t addr)
{
	unsigned lo = 0, hi = bus->nr_ranges;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];
		if (addr < r->base)
			hi = mid;
		else if (addr - r->base >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

int bus_access(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len, bool is_write)
{
	const struct bus_range *r = bus_find(bus, addr);
	/* An access that starts in a range but runs past its end is nobody's:
	 * a handler only ever sees offsets inside what it registered. */
	if (!r || len == 0 || len > r->len || addr - r->base > r->len - len) {
		if (!is_write)
			memset(data, 0xff, len);
		return -ENOENT;
	}
	return r->handler(r->opaque, addr - r->base, data, len, is_write);
}
