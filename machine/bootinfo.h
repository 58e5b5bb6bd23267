/* machine/bootinfo.h — the contract between vmdb's ELF64 loader and a
 * freestanding 64-bit kernel (our guests include this header too).
 *
 * Entry state of the bootstrap vCPU (vCPU 0) for an ELF64 kernel:
 *   - 64-bit long mode, paging on: CR0 = PE|MP|ET|NE|WP|PG, CR4 = PAE|OSFXSR|
 *     OSXMMEXCPT, EFER = LME|LMA (SCE and NXE clear).
 *   - identity-mapped page tables covering guest-physical 0..4 GiB with 2 MiB
 *     pages (present, writable, supervisor), PML4 at VMDB_BOOT_PML4.
 *   - GDT at VMDB_BOOT_GDT: 0x08 = 64-bit code, 0x10 = data, 0x18 = 32-bit
 *     code; CS = 0x08, DS = ES = SS = FS = GS = 0x10; IDT limit 0 (no IDT).
 *   - RIP = e_entry, RFLAGS = 0x2 (interrupts disabled), RSP = VMDB_BOOT_STACK_TOP,
 *     RDI = physical address of struct vmdb_boot_info, RAX = VMDB_BOOT_MAGIC,
 *     every other general register 0.
 * The other vCPUs wait for INIT/SIPI; the guest starts them itself.
 * Loadable segments must lie in RAM at or above 1 MiB. */
#ifndef VMDB_BOOTINFO_H
#define VMDB_BOOTINFO_H

#include <stdint.h>

#define VMDB_BOOT_MAGIC      0x564d4442u   /* "VMDB" */
#define VMDB_BOOT_GDT        0x10000u
#define VMDB_BOOT_INFO       0x11000u      /* struct, then mmap, then cmdline */
#define VMDB_BOOT_PML4       0x14000u      /* PML4, PDPT, then 4 page directories */
#define VMDB_BOOT_AREA_END   0x1a000u
#define VMDB_BOOT_STACK_TOP  0x80000u
#define VMDB_KERNEL_MIN_ADDR 0x100000u

/* E820-style memory map entry types */
#define VMDB_MEM_RAM      1
#define VMDB_MEM_RESERVED 2
#define VMDB_MEM_ACPI     3

struct vmdb_mmap_entry {
	uint64_t base, len;
	uint32_t type, pad;
};

struct vmdb_boot_info {
	uint32_t magic;          /* VMDB_BOOT_MAGIC */
	uint32_t version;        /* 1 */
	uint64_t mem_size;       /* bytes of guest RAM in all */
	uint32_t nr_cpus;
	uint32_t mmap_entries;
	uint64_t mmap;           /* physical address of struct vmdb_mmap_entry[] */
	uint64_t cmdline;        /* physical address of a NUL-terminated string */
	uint32_t cmdline_len;    /* without the NUL */
	uint32_t pad;
	uint64_t initrd, initrd_size;   /* 0 when none */
	uint64_t rsdp;           /* physical address of the ACPI RSDP */
};

#endif
