/* guests/rt/boot.h — the two boot paths into the one runtime.
 *
 * entry64.S (vmdb's ELF64 contract, machine/bootinfo.h) and entry_mb.S
 * (Multiboot v1, 32-bit protected mode) each record the machine state they
 * were entered with in rt_entry_state, switch to the runtime's own GDT and
 * stack in 64-bit mode and call rt_start(kind). rt_start brings up the
 * console, IDT, PIC mask, command line and CPU count, then calls the
 * guest's main(); main's return value is the exit code (see report.h).
 *
 * The layout of struct rt_entry_state is shared with the assembly stubs
 * through the RT_ES_* offsets below. */
#ifndef RT_BOOT_H
#define RT_BOOT_H

#define RT_BOOT_ELF64     1
#define RT_BOOT_MULTIBOOT 2

#define RT_ES_AX        0
#define RT_ES_BX        8
#define RT_ES_DI        16
#define RT_ES_SP        24
#define RT_ES_FLAGS     32
#define RT_ES_CR0       40
#define RT_ES_CR3       48
#define RT_ES_CR4       56
#define RT_ES_EFER      64
#define RT_ES_CS        72
#define RT_ES_DS        74
#define RT_ES_ES        76
#define RT_ES_SS        78
#define RT_ES_FS        80
#define RT_ES_GS        82
#define RT_ES_GDTR      86      /* SGDT image: limit at 86, base at 88 */
#define RT_ES_IDTR      102     /* SIDT image: limit at 102, base at 104 */
#define RT_ES_GDT_COPY  112
#define RT_ES_GDT_COPY_LEN 64
#define RT_ES_SIZE      176

#define RT_GDT_CODE64 0x08
#define RT_GDT_DATA   0x10
#define RT_GDT_CODE32 0x18

#define RT_BOOT_STACK_SIZE 16384

#define MULTIBOOT_HEADER_MAGIC     0x1BADB002
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002

#ifndef __ASSEMBLER__
#include <stdint.h>

#include "machine/bootinfo.h"

struct rt_entry_state {
	uint64_t ax, bx, di, sp, flags;
	uint64_t cr0, cr3, cr4, efer;
	uint16_t cs, ds, es, ss, fs, gs;
	uint16_t pad0, gdt_limit;
	uint64_t gdt_base;
	uint16_t pad1[3], idt_limit;
	uint64_t idt_base;
	uint8_t gdt_copy[RT_ES_GDT_COPY_LEN];   /* multiboot path: the loader's GDT */
};

/* Multiboot v1 information structure (the fields up to the boot loader name). */
#define MB_INFO_MEM      (1u << 0)
#define MB_INFO_BOOTDEV  (1u << 1)
#define MB_INFO_CMDLINE  (1u << 2)
#define MB_INFO_MODS     (1u << 3)
#define MB_INFO_MMAP     (1u << 6)
#define MB_INFO_LOADER   (1u << 9)

struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct mb_module {
	uint32_t mod_start, mod_end, string, reserved;
};

struct mb_mmap_entry {
	uint32_t size;          /* of the rest of the entry, not counting this field */
	uint64_t addr, len;
	uint32_t type;
} __attribute__((packed));

struct rt_boot {
	int kind;                               /* RT_BOOT_* */
	const struct vmdb_boot_info *info;      /* ELF64 path, else NULL */
	const struct mb_info *mbi;              /* multiboot path, else NULL */
	unsigned ncpus;                         /* announced by vmdb or fw_cfg */
};

extern struct rt_entry_state rt_entry_state;
extern struct rt_boot rt_boot;

/* Each guest provides this; its result goes to the debug-exit port. */
int main(void);

void rt_start(int kind) __attribute__((noreturn));
#endif

#endif
