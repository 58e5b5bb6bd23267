/* guests/rt/boot.c — the common 64-bit start of both boot paths. */
#include "guests/rt/boot.h"

#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/fwcfg.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

_Static_assert(__builtin_offsetof(struct rt_entry_state, efer) == RT_ES_EFER, "RT_ES_EFER");
_Static_assert(__builtin_offsetof(struct rt_entry_state, cs) == RT_ES_CS, "RT_ES_CS");
_Static_assert(__builtin_offsetof(struct rt_entry_state, gs) == RT_ES_GS, "RT_ES_GS");
_Static_assert(__builtin_offsetof(struct rt_entry_state, gdt_limit) == RT_ES_GDTR, "RT_ES_GDTR");
_Static_assert(__builtin_offsetof(struct rt_entry_state, gdt_base) == RT_ES_GDTR + 2, "gdt_base");
_Static_assert(__builtin_offsetof(struct rt_entry_state, idt_limit) == RT_ES_IDTR, "RT_ES_IDTR");
_Static_assert(__builtin_offsetof(struct rt_entry_state, idt_base) == RT_ES_IDTR + 2, "idt_base");
_Static_assert(__builtin_offsetof(struct rt_entry_state, gdt_copy) == RT_ES_GDT_COPY, "gdt_copy");
_Static_assert(sizeof(struct rt_entry_state) == RT_ES_SIZE, "RT_ES_SIZE");

/* In .data, not .bss: the stubs write it before anything could zero .bss. */
struct rt_entry_state rt_entry_state __attribute__((section(".data")));
struct rt_boot rt_boot;

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

static void boot_elf64(void)
{
	const struct vmdb_boot_info *bi = (const void *)(uintptr_t)rt_entry_state.di;

	/* trust nothing the entry state did not prove: entry64.elf checks more */
	if ((uint32_t)rt_entry_state.ax != VMDB_BOOT_MAGIC || !bi || bi->magic != VMDB_BOOT_MAGIC) {
		cmdline_set("", false);
		rt_boot.ncpus = 1;
		return;
	}
	rt_boot.info = bi;
	cmdline_set(bi->cmdline ? (const char *)(uintptr_t)bi->cmdline : "", false);
	rt_boot.ncpus = bi->nr_cpus;
}

static void boot_multiboot(void)
{
	const struct mb_info *mbi = (const void *)(uintptr_t)(uint32_t)rt_entry_state.bx;

	rt_boot.ncpus = 1;
	if ((uint32_t)rt_entry_state.ax != MULTIBOOT_BOOTLOADER_MAGIC || !mbi) {
		cmdline_set("", false);
		return;
	}
	rt_boot.mbi = mbi;
	cmdline_set((mbi->flags & MB_INFO_CMDLINE) && mbi->cmdline ?
		    (const char *)(uintptr_t)mbi->cmdline : "", true);
	if (fwcfg_present())
		rt_boot.ncpus = (unsigned)fwcfg_read_u64(FW_CFG_NB_CPUS, 2);
}

void rt_start(int kind)
{
	rt_boot.kind = kind;
	smp_init_bsp();
	serial_init();
	idt_init();
	outb(PIC1_DATA, 0xff);      /* the 8259s stay masked: APIC only */
	outb(PIC2_DATA, 0xff);
	if (kind == RT_BOOT_ELF64)
		boot_elf64();
	else
		boot_multiboot();
	apic_init();
	rt_exit((uint32_t)main());
}
