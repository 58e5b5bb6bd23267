/* cli/options.h — the command line: parse argv into a vm_config plus the
 * actions (--probe, --help, --version). Pure: no I/O besides the message. */
#ifndef VMDB_OPTIONS_H
#define VMDB_OPTIONS_H

#include <stdbool.h>

#include "machine/vm.h"
#include "util/err.h"

struct options {
	struct vm_config vm;
	bool probe, help, version;
	bool cpu_given;
	bool kernel_from_qemu;      /* -kernel FILE, QEMU's way */
	char gdb_addr[128];         /* -gdb tcp::PORT as vmdb spells it */
};

/* Returns 0, or -EINVAL with a one-line reason in e (a usage error).
 * argv's array is reordered (QEMU's options taken out of it). */
int options_parse(int argc, char **argv, struct options *opts, struct err *e);

/* The options the long ones and QEMU's spelling share: 0 or -EINVAL. */
int options_set_smp(struct options *o, const char *text, struct err *e);
int options_set_mem(struct options *o, const char *text, struct err *e);
int options_set_serial(struct options *o, const char *text, struct err *e);
int options_set_gdb(struct options *o, const char *addr, struct err *e);
/* Is word one of vmdb's long options whose value is the next word? */
bool options_takes_value(const char *word);

/* cli/qemu_args.c: QEMU's options (-kernel, -append, -initrd, -m, -smp,
 * -serial, -gdb, -accel, -enable-kvm, -machine, -no-reboot and the ones
 * that change nothing here) applied to o and taken out of argv, whose
 * count *argc becomes the rest's; what vmdb lacks (-drive, -netdev,
 * -device, -bios, ...) is refused. */
int options_take_qemu(int *argc, char **argv, struct options *o, struct err *e);

/* "256M", "1G", "4096K", "512" (MiB, as QEMU's -m) -> bytes. */
int options_parse_size(const char *text, uint64_t *bytes);

extern const char options_usage[];

/* --engine auto (the default): cli/main.c resolves it with engine_auto(). */
#define OPTIONS_ENGINE_AUTO "auto"

#endif
