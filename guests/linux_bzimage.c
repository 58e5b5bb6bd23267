/* guests/linux_bzimage.c — linux_bzimage.bin: a bzImage (header in
 * linux_bzimage_hdr.S) that checks from the inside what a boot-protocol
 * loader gave its 64-bit entry: RSI = boot_params with the header copied
 * and the loader's fields set, long mode on the loader's page tables,
 * __BOOT_CS 0x10 / __BOOT_DS 0x18 flat, interrupts off, the E820 map,
 * the command line, the initrd (as high as initrd_addr_max and RAM allow)
 * and the RSDP. Keys: see guests/linux_guest.h. */
#include "guests/linux_guest.h"
#include "guests/rt/boot.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"
#include "machine/linux_boot.h"

extern uint64_t linux_entry_rsi;
extern uint8_t linux_entry_gdtr[16], linux_entry_gdt[LINUX_GDT_COPY_LEN];
extern char linux_entry64[], linux_image_end[];
extern char RT_LOAD_ADDR[];

static const struct rt_entry_state *es = &rt_entry_state;

static uint16_t bp16(const uint8_t *bp, unsigned off)
{
	uint16_t v;
	memcpy(&v, bp + off, sizeof(v));
	return v;
}

static uint32_t bp32(const uint8_t *bp, unsigned off)
{
	uint32_t v;
	memcpy(&v, bp + off, sizeof(v));
	return v;
}

static uint64_t bp64(const uint8_t *bp, unsigned off)
{
	uint64_t v;
	memcpy(&v, bp + off, sizeof(v));
	return v;
}

static void check_entry_state(void)
{
	uint16_t gdt_len = (uint16_t)(linux_entry_gdtr[0] | linux_entry_gdtr[1] << 8) + 1;

	expect_eq((uintptr_t)linux_entry64, (uintptr_t)RT_LOAD_ADDR + LB_ENTRY64_OFFSET,
		  "entered at load address + 0x200");
	expect_eq(es->cr0 & (CR0_PE | CR0_PG), CR0_PE | CR0_PG, "CR0: protected mode, paging on");
	expect(es->cr4 & CR4_PAE, "CR4.PAE");
	expect(es->efer & EFER_LMA, "EFER.LMA: long mode");
	expect_eq(es->flags & RFLAGS_IF, 0, "interrupts off");
	expect_eq(es->cs, LB_BOOT_CS, "CS = __BOOT_CS (0x10)");
	expect_eq(es->ds, LB_BOOT_DS, "DS = __BOOT_DS (0x18)");
	expect_eq(es->es, LB_BOOT_DS, "ES = __BOOT_DS");
	expect_eq(es->ss, LB_BOOT_DS, "SS = __BOOT_DS");
	linux_guest_check_desc(linux_entry_gdt, gdt_len, LB_BOOT_CS, LINUX_DESC_CODE64, "CS");
	linux_guest_check_desc(linux_entry_gdt, gdt_len, LB_BOOT_DS, LINUX_DESC_DATA, "DS");
}

static void check_header(const uint8_t *bp)
{
	expect_eq(bp16(bp, LB_BOOT_FLAG), LB_BOOT_FLAG_MAGIC, "boot_params: boot_flag copied");
	expect_eq(bp32(bp, LB_HEADER), LB_HEADER_MAGIC, "boot_params: HdrS copied");
	expect_eq(bp16(bp, LB_VERSION), 0x020f, "boot_params: version copied");
	expect_eq(bp[LB_TYPE_OF_LOADER], LB_TYPE_UNDEFINED, "type_of_loader = 0xff");
	expect_eq(bp[LB_LOADFLAGS] & (LB_LOADED_HIGH | LB_CAN_USE_HEAP),
		  LB_LOADED_HIGH | LB_CAN_USE_HEAP, "loadflags: LOADED_HIGH | CAN_USE_HEAP");
	expect(bp16(bp, LB_HEAP_END_PTR) != 0, "heap_end_ptr set");
	expect_eq(bp32(bp, LB_CODE32_START), (uintptr_t)RT_LOAD_ADDR,
		  "code32_start = load address = pref_address");
	expect_eq(bp32(bp, LB_INIT_SIZE), (uintptr_t)linux_image_end - (uintptr_t)RT_LOAD_ADDR,
		  "init_size copied");
}

static void check_e820_and_initrd(const uint8_t *bp)
{
	struct linux_guest_mem map[LB_E820_MAX];
	unsigned n = bp[LB_E820_ENTRIES];

	for (unsigned i = 0; i < n && i < LB_E820_MAX; i++) {
		const uint8_t *ent = bp + LB_E820_TABLE + i * LB_E820_ENTRY_SIZE;
		map[i] = (struct linux_guest_mem){ bp64(ent, 0), bp64(ent, 8), bp32(ent, 16) };
	}
	uint64_t low_top = linux_guest_check_e820(map, n < LB_E820_MAX ? n : LB_E820_MAX,
						  (uintptr_t)RT_LOAD_ADDR,
						  (uintptr_t)linux_image_end);
	uint64_t addr = bp32(bp, LB_RAMDISK_IMAGE) | (uint64_t)bp32(bp, LB_EXT_RAMDISK_IMAGE) << 32;
	uint64_t size = bp32(bp, LB_RAMDISK_SIZE) | (uint64_t)bp32(bp, LB_EXT_RAMDISK_SIZE) << 32;
	linux_guest_check_initrd(addr, size);
	if (!size)
		return;
	uint64_t max = (uint64_t)bp32(bp, LB_INITRD_ADDR_MAX) + 1;
	uint64_t ceiling = low_top < max ? low_top : max;
	expect(addr + size <= ceiling, "initrd below initrd_addr_max and in RAM");
	expect(addr + size + 0x1000 > ceiling, "initrd as high as it fits");
	expect(addr >= (uintptr_t)linux_image_end, "initrd above the kernel's init_size");
}

int main(void)
{
	const uint8_t *bp = (const void *)(uintptr_t)linux_entry_rsi;

	printf("boot_params at 0x%lx\n", (unsigned long)linux_entry_rsi);
	check_entry_state();
	if (!expect(bp != NULL, "RSI = boot_params"))
		return report_summary();
	linux_guest_take_cmdline((const char *)(uintptr_t)bp32(bp, LB_CMD_LINE_PTR),
				 bp32(bp, LB_CMDLINE_SIZE));
	check_header(bp);
	check_e820_and_initrd(bp);
	linux_guest_check_rsdp(bp64(bp, LB_ACPI_RSDP_ADDR));
	return report_summary();
}
