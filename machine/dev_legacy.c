/* machine/dev_legacy.c — the two PC ports tiny kernels poke early: the
 * POST-code port 0x80 (writes ignored, also used as an I/O delay) and
 * system control port A at 0x92 (reads 0x02: A20 on). A20 stays enabled
 * whatever is written (guest RAM is flat); writing bit 0 (fast reset) as 1
 * resets the machine. Stateless: no lock, no teardown, nothing in
 * snapshots. */
#include "machine/device.h"
#include "machine/vm.h"

#include <string.h>

#define LEGACY_POST_PORT 0x80
#define LEGACY_A20_PORT  0x92
#define LEGACY_A20_ON    0x02
#define LEGACY_FAST_RESET 0x01

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
	(void)offset;
	if (!is_write) {
		memset(data, 0, len);
		data[0] = LEGACY_A20_ON;
	} else if (data[0] & LEGACY_FAST_RESET) {
		vm_request_reset(opaque, "fast reset through port 0x92");
	}
	return 0;
}

static int legacy_init(struct vm *vm, struct err *e)
{
	int ret = bus_register(&vm->pio, LEGACY_POST_PORT, 1, legacy_post_io, NULL, "post", e);
	if (ret < 0)
		return ret;
	return bus_register(&vm->pio, LEGACY_A20_PORT, 1, legacy_a20_io, vm, "a20", e);
}

MACHINE_DEVICE(legacy, legacy_init);
