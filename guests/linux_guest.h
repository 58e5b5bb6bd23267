/* guests/linux_guest.h — what the two Linux-protocol test guests share
 * (linux_bzimage, linux_pvh): the constants their headers announce, and
 * checks of the boot data that both protocols carry (E820 map, RSDP,
 * initrd bytes, command line). Command line keys both understand:
 *   expect_mem=SIZE          RAM the map must add up to (within 4 MiB)
 *   initrd_size=N initrd_fnv=0xH   the initrd the test passed (FNV-1a 32)
 * A guest prints "cmdline: [<the string it was given>]" for the test. */
#ifndef GUESTS_LINUX_GUEST_H
#define GUESTS_LINUX_GUEST_H

#define LINUX_GUEST_INITRD_MAX   0x7fffffff   /* initrd_addr_max in the bzImage header */
#define LINUX_GUEST_CMDLINE_SIZE 255          /* cmdline_size in the bzImage header */
#define LINUX_GDT_COPY_LEN       64

#ifndef __ASSEMBLER__
#include <stddef.h>
#include <stdint.h>

/* One E820 entry as both protocols give it. */
struct linux_guest_mem {
	uint64_t addr, size;
	uint32_t type;
};

uint32_t linux_guest_fnv1a(const void *p, size_t n);

/* Sorted, non-overlapping, known types, RAM at 0 and from 1 MiB, RAM
 * covering [must_lo, must_hi), adds up to expect_mem. Returns the end of
 * the RAM range that holds 1 MiB (the top of low RAM). */
uint64_t linux_guest_check_e820(const struct linux_guest_mem *map, unsigned n,
				uint64_t must_lo, uint64_t must_hi);

/* "RSD PTR " with a valid checksum at rsdp. */
void linux_guest_check_rsdp(uint64_t rsdp);

/* Size and FNV-1a of the initrd against initrd_size / initrd_fnv. */
void linux_guest_check_initrd(uint64_t addr, uint64_t size);

/* Print the command line for the test, check it is NUL-terminated within
 * max bytes, and make it the runtime's command line. */
void linux_guest_take_cmdline(const char *s, size_t max);

/* Descriptor `sel` of a GDT copy: flat 4 GiB (or 64-bit code), present,
 * code (execute/read) or data (read/write). */
void linux_guest_check_desc(const uint8_t *gdt, unsigned gdt_len, uint16_t sel, int kind,
			    const char *name);
#define LINUX_DESC_CODE64 1
#define LINUX_DESC_CODE32 2
#define LINUX_DESC_DATA   3
#endif

#endif
