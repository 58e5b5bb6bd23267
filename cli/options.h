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
};

/* Returns 0, or -EINVAL with a one-line reason in e (a usage error). */
int options_parse(int argc, char **argv, struct options *opts, struct err *e);

/* "256M", "1G", "4096K", "512" (MiB, as QEMU's -m) -> bytes. */
int options_parse_size(const char *text, uint64_t *bytes);

extern const char options_usage[];

/* --engine auto (the default): cli/main.c resolves it with engine_auto(). */
#define OPTIONS_ENGINE_AUTO "auto"

#endif
