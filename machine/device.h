/* machine/device.h — how a device joins the machine without a central
 * list: each device file ends with MACHINE_DEVICE(name, init), which
 * places a pointer to a constant descriptor in a linker section.
 * vm_create() calls every init in link order after guest RAM and the
 * engine exist and before any vCPU runs. An init allocates its state,
 * registers its ranges on vm->pio / vm->mmio and records a teardown with
 * vm_on_destroy(). */
#ifndef VMDB_DEVICE_H
#define VMDB_DEVICE_H

#include "util/err.h"

struct vm;

struct machine_device {
	const char *name;
	int (*init)(struct vm *vm, struct err *e);
};

#define MACHINE_DEVICE(dev_name, init_fn)                                        \
	static const struct machine_device machine_device_##dev_name = {        \
		.name = #dev_name, .init = (init_fn) };                          \
	static const struct machine_device *const machine_device_ptr_##dev_name \
		__attribute__((used, section("vmdb_devices"), aligned(8))) =     \
		&machine_device_##dev_name

/* Run every registered device init. */
int machine_devices_init(struct vm *vm, struct err *e);

#endif
