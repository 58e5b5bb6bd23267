/* machine/dev_debug_exit.c — the isa-debug-exit port (QEMU's convention):
 * a 1, 2 or 4-byte write of v to port 0xf4 stops the machine with process
 * status (v << 1) | 1, so a guest can report pass/fail. Stateless: the
 * vm pointer is the only thing it needs, so no lock, no teardown and
 * nothing in snapshots. */
#include "machine/device.h"
#include "machine/vm.h"

#include <string.h>

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_LEN  4

static int debug_exit_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
			 bool is_write)
{
	struct vm *vm = opaque;

	if (!is_write) {
		memset(data, 0xff, len);
		return 0;
	}
	/* only a write at the port itself counts; 0xf5-0xf7 are the upper
	 * bytes of a wide write and mean nothing alone */
	if (offset != 0 || (len != 1 && len != 2 && len != 4))
		return 0;
	uint32_t v = 0;
	for (uint32_t i = 0; i < len; i++)
		v |= (uint32_t)data[i] << (8 * i);
	vm_request_exit(vm, (int)((v << 1) | 1), "%s", "");
	return 0;
}

static int debug_exit_init(struct vm *vm, struct err *e)
{
	return bus_register(&vm->pio, DEBUG_EXIT_PORT, DEBUG_EXIT_LEN, debug_exit_io, vm,
			    "debug-exit", e);
}

MACHINE_DEVICE(debug_exit, debug_exit_init);
