/* machine/linux_cmdline.h — the command line a Linux kernel is given:
 * the user's --cmdline plus the parameters the engine says Linux needs on
 * this host (engine_vm_ops.linux_params: on a KVM host that answers the
 * guest's CPUID with its own CPU, "noxsave", so Linux keeps AVX out of
 * ring 0). A parameter --cmdline already names is not added: the user's
 * word wins. Used by the bzImage and PVH loaders. */
#ifndef VMDB_LINUX_CMDLINE_H
#define VMDB_LINUX_CMDLINE_H

#include <stddef.h>

struct vm;

/* Pure: user followed by each word of params whose name (up to '=') user
 * does not have, inserted before a " -- " (what follows it is init's), at
 * most max bytes. Returns the number of words added (the result in out,
 * NUL-terminated; out has room for max + 1 bytes), or -1 when they would
 * not fit (out holds user alone). user itself must fit. */
int linux_cmdline_compose(const char *user, const char *params, char *out, size_t max);

/* For the loaders: vm->cfg.cmdline and what the engine adds, into out
 * (room for max + 1 bytes; the caller checked that --cmdline fits in
 * max). Says on stderr, once per vmdb run, what it added and why, or
 * why it could not. */
void linux_cmdline_build(struct vm *vm, char *out, size_t max);

#endif
