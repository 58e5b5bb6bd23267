/* debug/coredump.h — the stopped machine as an ELF core file, in the
 * layout of QEMU's dump-guest-memory, so that the tools kernel developers
 * already use read it: crash(8) and `gdb vmlinux vmcore`. It owns the
 * file's layout: one PT_LOAD per piece of guest RAM, per vCPU an
 * NT_PRSTATUS and an NT_PRFPREG (gdb's threads and registers) and QEMU's
 * "QEMU" note (segments, descriptor tables, control registers: what crash
 * needs to find the kernel). Called with the machine stopped. */
#ifndef VMDB_DEBUG_COREDUMP_H
#define VMDB_DEBUG_COREDUMP_H

#include <stdbool.h>
#include <stdint.h>

#include "debug/debug.h"
#include "util/err.h"

struct debug_dump_request {
	const char *path;       /* created, or emptied if it exists; mode 0600 */
	/* Segments by vcpu's virtual mappings (p_vaddr is where the vCPU
	 * sees them: gdb reads the core by address; the data of a page mapped
	 * many times is in the file once), as QEMU's -p; else by guest-physical
	 * RAM with p_vaddr = p_paddr, as QEMU's default and as -p with paging
	 * off. The file holds guest RAM once either way. */
	bool paging;
	unsigned vcpu;
	/* Only guest-physical [begin, begin + length) (QEMU's BEGIN LENGTH). */
	bool have_range;
	uint64_t begin, length;
	/* Called about once a second while RAM is written (a client that
	 * hears nothing gives up), with the bytes so far and in all. */
	void (*progress)(void *opaque, uint64_t done, uint64_t total);
	void *opaque;
};

struct debug_dump_result {
	uint64_t ram_bytes;     /* guest RAM written */
	unsigned segments;
	unsigned vcpus;
	bool physical;          /* paging was asked for, but the vCPU has it off */
};

/* 0, or -errno with words in e; a file that could not be finished is
 * removed. */
int debug_dump_core(struct debug *d, const struct debug_dump_request *rq,
		    struct debug_dump_result *res, struct err *e);

#endif
