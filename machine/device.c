/* machine/device.c — runs every MACHINE_DEVICE() init (see machine/device.h).
 * The linker collects the descriptor pointers of the "vmdb_devices" section
 * into one array bounded by __start_/__stop_vmdb_devices; each entry is an
 * 8-byte aligned pointer, so the array has no holes (GCC's ASan does not
 * pad globals placed in an explicit section). */
#include "machine/device.h"

#include <stddef.h>

/* weak: a binary that links no device still links */
extern const struct machine_device *const __start_vmdb_devices[] __attribute__((weak));
extern const struct machine_device *const __stop_vmdb_devices[] __attribute__((weak));

int machine_devices_init(struct vm *vm, struct err *e)
{
	const struct machine_device *const *p = __start_vmdb_devices;
	if (!p)
		return 0;
	for (; p < __stop_vmdb_devices; p++) {
		const struct machine_device *dev = *p;
		if (!dev || !dev->init)
			continue;
		int ret = dev->init(vm, e);
		if (ret < 0)
			return err_wrap(e, "device %s", dev->name);
	}
	return 0;
}
