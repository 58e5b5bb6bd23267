/* machine/linux_boot.h — the layouts Linux's two direct boot paths read:
 * the x86 boot protocol's setup header and boot_params ("zero page"), as
 * byte offsets (the structures are packed and versioned, the loaders read
 * and write them field by field), and the PVH hvm_start_info version 1.
 * Shared by the loaders (machine/load_bzimage.c, load_pvh.c) and the test
 * guests that check what they were given (guests/linux_*.c). */
#ifndef VMDB_LINUX_BOOT_H
#define VMDB_LINUX_BOOT_H

#include <stdint.h>

/* --- setup header (file offsets = boot_params offsets) ------------------- */
#define LB_SETUP_SECTS      0x1f1   /* u8; 0 means 4 */
#define LB_SYSSIZE          0x1f4   /* u32, 16-byte paragraphs of protected-mode code */
#define LB_VID_MODE         0x1fa   /* u16 */
#define LB_BOOT_FLAG        0x1fe   /* u16, 0xaa55 */
#define LB_JUMP             0x200   /* u16; its second byte + 0x202 = header end */
#define LB_HEADER           0x202   /* u32, "HdrS" */
#define LB_VERSION          0x206   /* u16, major << 8 | minor */
#define LB_TYPE_OF_LOADER   0x210   /* u8 */
#define LB_LOADFLAGS        0x211   /* u8 */
#define LB_CODE32_START     0x214   /* u32 */
#define LB_RAMDISK_IMAGE    0x218   /* u32 */
#define LB_RAMDISK_SIZE     0x21c   /* u32 */
#define LB_HEAP_END_PTR     0x224   /* u16 */
#define LB_CMD_LINE_PTR     0x228   /* u32 */
#define LB_INITRD_ADDR_MAX  0x22c   /* u32, highest byte the initrd may occupy */
#define LB_KERNEL_ALIGNMENT 0x230   /* u32 */
#define LB_RELOCATABLE      0x234   /* u8 */
#define LB_XLOADFLAGS       0x236   /* u16 */
#define LB_CMDLINE_SIZE     0x238   /* u32, without the NUL */
#define LB_PREF_ADDRESS     0x258   /* u64 */
#define LB_INIT_SIZE        0x260   /* u32 */
#define LB_HEADER_MIN_END   0x264   /* a 2.10 header reaches at least here */

#define LB_BOOT_FLAG_MAGIC  0xaa55
#define LB_HEADER_MAGIC     0x53726448u   /* "HdrS" */
#define LB_VERSION_MIN      0x020a
#define LB_VERSION_RSDP     0x020e        /* acpi_rsdp_addr exists from 2.14 */
#define LB_SECTOR           512
#define LB_DEFAULT_SETUP_SECTS 4
#define LB_ENTRY64_OFFSET   0x200         /* 64-bit entry = load address + 0x200 */

#define LB_LOADED_HIGH      0x01          /* loadflags */
#define LB_CAN_USE_HEAP     0x80
#define LB_XLF_KERNEL_64    0x0001        /* xloadflags */
#define LB_TYPE_UNDEFINED   0xff          /* type_of_loader: no assigned id */
#define LB_VID_NORMAL       0xffff

/* --- boot_params beyond the header ---------------------------------------- */
#define LB_ZERO_PAGE_SIZE   0x1000
#define LB_ACPI_RSDP_ADDR   0x070   /* u64 */
#define LB_EXT_RAMDISK_IMAGE 0x0c0  /* u32 each: the high halves */
#define LB_EXT_RAMDISK_SIZE 0x0c4
#define LB_EXT_CMD_LINE_PTR 0x0c8
#define LB_E820_ENTRIES     0x1e8   /* u8 */
#define LB_E820_TABLE       0x2d0   /* 128 entries of u64 addr, u64 size, u32 type */
#define LB_E820_ENTRY_SIZE  20
#define LB_E820_MAX         128

/* Linux's 64-bit entry wants these selectors (flat code / data). */
#define LB_BOOT_CS 0x10
#define LB_BOOT_DS 0x18

/* --- PVH ------------------------------------------------------------------- */
#define PVH_NOTE_OWNER       "Xen"
#define PVH_NOTE_PHYS32_ENTRY 18          /* XEN_ELFNOTE_PHYS32_ENTRY */
#define PVH_START_MAGIC      0x336ec578u
#define PVH_START_VERSION    1

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;     /* struct hvm_modlist_entry[nr_modules] */
	uint64_t cmdline_paddr;     /* NUL-terminated */
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;      /* version 1: struct hvm_memmap_table_entry[] */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;    /* E820 types */
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info v1 is 56 bytes");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");
_Static_assert(sizeof(struct hvm_memmap_table_entry) == 24, "memmap entry is 24 bytes");

#endif
