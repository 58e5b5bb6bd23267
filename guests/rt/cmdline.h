/* guests/rt/cmdline.h — the boot command line as key=value words and bare
 * words ("exit=5 insn=int3 hello"). The runtime keeps its own copy, so the
 * loader's memory may be reused. On the multiboot path a leading kernel
 * path (a first word containing '/' or ending in ".elf", as QEMU passes
 * it) is dropped. */
#ifndef RT_CMDLINE_H
#define RT_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>

#define RT_CMDLINE_MAX 1024

void cmdline_set(const char *s, bool skip_kernel_path);

/* The whole command line as kept (after any kernel path). */
const char *cmdline(void);

/* Value of key=value, or NULL when absent. */
const char *cmdline_get(const char *key);

/* A bare word (no '=') is present. */
bool cmdline_has(const char *word);

/* key=value as a number: decimal or 0x hex, optional K/M/G suffix.
 * Returns def when absent or not a number. */
uint64_t cmdline_u64(const char *key, uint64_t def);

/* The number parser itself: false on any bad character. */
bool parse_u64(const char *s, uint64_t *out);

#endif
