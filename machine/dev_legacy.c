/* machine/dev_legacy.c — the two PC ports tiny kernels poke early and
 * expect to be harmless: the POST-code port 0x80 (writes ignored, also
 * used as an I/O delay) and the fast A20 gate at 0x92 (reads 0x02: A20
 * on). A guest may write 0x92; A20 stays enabled (guest RAM is flat) and
 * the fast-reset bit (bit 0) is ignored rather than resetting the
 * machine. Stateless: no lock, no teardown. */
#include "machine/device.h"
#include "machine/vm.h"

#include <string.h>

#define LEGACY_POST_PORT 0x80
#define LEGACY_A20_PORT  0x92
#define LEGACY_A20_ON    0x02

static int legacy_post_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			  bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write)
		memset(data, 0, len);
	return 0;
}

static int legacy_a20_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	(void)opaque;
	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		data[0] = LEGACY_A20_ON;
	}
	return 0;
}

static int legacy_init(struct vm *vm, struct err *e)
{
	int ret = bus_register(&vm->pio, LEGACY_POST_PORT, 1, legacy_post_io, NULL, "post", e);
	if (ret < 0)
		return ret;
	return bus_register(&vm->pio, LEGACY_A20_PORT, 1, legacy_a20_io, NULL, "a20", e);
}

MACHINE_DEVICE(legacy, legacy_init);
