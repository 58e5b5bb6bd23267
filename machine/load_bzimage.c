/* machine/load_bzimage.c — a Linux bzImage through the x86 boot protocol
 * (2.10 or later, with a 64-bit entry point: xloadflags XLF_KERNEL_64).
 *
 * The protected-mode kernel (the file after the (setup_sects + 1) * 512
 * bytes of real-mode setup) goes to pref_address, aligned up to
 * kernel_alignment, when the kernel is relocatable and init_size bytes fit
 * there; else to the lowest aligned address above 1 MiB that fits. A
 * kernel that is not relocatable goes to pref_address or nowhere. The
 * initrd goes as high as initrd_addr_max and RAM allow, above the kernel.
 * boot_params gets the file's setup header, the loader's fields, the E820
 * map and (protocol 2.14+) the RSDP; vCPU 0 starts at load address + 0x200
 * in long mode, RSI = boot_params, with __BOOT_CS 0x10 / __BOOT_DS 0x18
 * (see loader_enter for the rest).
 *
 * Boot area (the ELF64 boot area, machine/bootinfo.h): GDT at 0x10000,
 * boot_params at 0x11000, command line at 0x12000 (up to 8 KiB), page
 * tables from 0x14000. */
#include "machine/loader.h"

#include <string.h>

#include "machine/acpi.h"
#include "machine/bootinfo.h"
#include "machine/linux_boot.h"
#include "machine/linux_cmdline.h"
#include "machine/vm.h"
#include "x86/desc.h"

#define BZ_BOOT_PARAMS   VMDB_BOOT_INFO
#define BZ_CMDLINE       (VMDB_BOOT_INFO + 0x1000)
#define BZ_CMDLINE_END   VMDB_BOOT_PML4
#define BZ_LOW_LIMIT     0x100000ull     /* boot structures, ACPI, legacy holes below */
#define BZ_HEAP_END      0xfe00          /* heap_end_ptr: the usual end of setup's heap */
#define FOUR_GIB         0x100000000ull

/* The setup header fields the loader acts on, after validation. */
struct bz_kernel {
	uint16_t version;
	size_t header_end;        /* file offset just past the setup header */
	uint64_t payload_off, payload_size;
	uint64_t mem_size;        /* init_size, at least the payload */
	bool relocatable;
	uint32_t alignment, cmdline_size, initrd_addr_max;
	uint64_t pref_address;
};

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t rd64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static int bz_check_protocol(const uint8_t *image, size_t size, struct bz_kernel *bz,
			     struct err *e)
{
	if (size < LB_VERSION + 2)
		return err_set(e, ENOEXEC, "bzImage truncated: %zu bytes, no setup header", size);
	bz->version = rd16(image + LB_VERSION);
	if (bz->version < LB_VERSION_MIN)
		return err_set(e, ENOEXEC, "Linux boot protocol %u.%02u is too old: vmdb needs "
			       "2.10 or later with a 64-bit entry point", bz->version >> 8,
			       bz->version & 0xff);
	bz->header_end = LB_HEADER + image[LB_JUMP + 1];
	if (bz->header_end < LB_HEADER_MIN_END || bz->header_end > size)
		return err_set(e, ENOEXEC, "bzImage truncated: its setup header ends at 0x%zx, "
			       "the file is %zu bytes", bz->header_end, size);
	if (!(rd16(image + LB_XLOADFLAGS) & LB_XLF_KERNEL_64))
		return err_set(e, ENOEXEC, "Linux boot protocol %u.%02u kernel without a 64-bit "
			       "entry point (xloadflags XLF_KERNEL_64 clear): too old for vmdb",
			       bz->version >> 8, bz->version & 0xff);
	return 0;
}

static int bz_parse(const uint8_t *image, size_t size, struct bz_kernel *bz, struct err *e)
{
	int ret = bz_check_protocol(image, size, bz, e);
	if (ret < 0)
		return ret;
	unsigned sects = image[LB_SETUP_SECTS] ? image[LB_SETUP_SECTS] : LB_DEFAULT_SETUP_SECTS;
	bz->payload_off = (sects + 1ull) * LB_SECTOR;
	bz->payload_size = rd32(image + LB_SYSSIZE) * 16ull;
	if (!bz->payload_size || bz->payload_off > size ||
	    bz->payload_size > size - bz->payload_off)
		return err_set(e, ENOEXEC, "bzImage truncated: the setup header announces %llu "
			       "bytes of setup and %llu of kernel, the file is %zu bytes",
			       (unsigned long long)bz->payload_off,
			       (unsigned long long)bz->payload_size, size);
	uint32_t init_size = rd32(image + LB_INIT_SIZE);
	bz->mem_size = init_size > bz->payload_size ? init_size : bz->payload_size;
	bz->relocatable = image[LB_RELOCATABLE] != 0;
	bz->alignment = rd32(image + LB_KERNEL_ALIGNMENT);
	bz->cmdline_size = rd32(image + LB_CMDLINE_SIZE);
	bz->initrd_addr_max = rd32(image + LB_INITRD_ADDR_MAX);
	bz->pref_address = rd64(image + LB_PREF_ADDRESS);
	if (bz->relocatable && (!bz->alignment || (bz->alignment & (bz->alignment - 1))))
		return err_set(e, ENOEXEC, "bzImage kernel_alignment 0x%x is not a power of two",
			       bz->alignment);
	return 0;
}

static bool bz_fits(struct vm *vm, const struct bz_kernel *bz, uint64_t addr)
{
	return addr >= BZ_LOW_LIMIT && addr + bz->mem_size > addr &&
	       addr + bz->mem_size <= vm->low_ram_size && vm_gpa_to_host(vm, addr, bz->mem_size);
}

static int bz_choose_address(struct vm *vm, const struct bz_kernel *bz, uint64_t *addr,
			     struct err *e)
{
	if (!bz->relocatable) {
		*addr = bz->pref_address ? bz->pref_address : BZ_LOW_LIMIT;
		if (*addr < BZ_LOW_LIMIT)
			return err_set(e, ENOEXEC, "kernel is not relocatable and wants 0x%llx, "
				       "below 1 MiB where vmdb keeps its boot structures",
				       (unsigned long long)*addr);
		if (!bz_fits(vm, bz, *addr))
			return err_set(e, ENOSPC, "kernel is not relocatable and wants 0x%llx-0x%llx,"
				       " outside the RAM of --mem %lluM",
				       (unsigned long long)*addr,
				       (unsigned long long)(*addr + bz->mem_size),
				       (unsigned long long)(vm->ram_size >> 20));
		return 0;
	}
	uint64_t mask = bz->alignment - 1ull;
	uint64_t pref = bz->pref_address > BZ_LOW_LIMIT ? bz->pref_address : BZ_LOW_LIMIT;
	*addr = (pref + mask) & ~mask;
	if (bz_fits(vm, bz, *addr))
		return 0;
	*addr = (BZ_LOW_LIMIT + mask) & ~mask;
	if (bz_fits(vm, bz, *addr))
		return 0;
	return err_set(e, ENOSPC, "kernel does not fit in --mem %lluM: it needs 0x%llx bytes "
		       "(init_size) at a 0x%x-aligned address above 1 MiB",
		       (unsigned long long)(vm->ram_size >> 20),
		       (unsigned long long)bz->mem_size, bz->alignment);
}

/* The longest command line this kernel takes here, without the NUL. */
static size_t bz_cmdline_max(const struct bz_kernel *bz)
{
	size_t room = BZ_CMDLINE_END - BZ_CMDLINE - 1;
	return bz->cmdline_size < room ? bz->cmdline_size : room;
}

static int bz_check_cmdline(struct vm *vm, const struct bz_kernel *bz, struct err *e)
{
	const char *cmdline = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	size_t len = strlen(cmdline);
	if (len > bz->cmdline_size)
		return err_set(e, E2BIG, "--cmdline is %zu bytes; this kernel takes at most %u "
			       "(cmdline_size)", len, bz->cmdline_size);
	if (len > bz_cmdline_max(bz))
		return err_set(e, E2BIG, "--cmdline is %zu bytes; at most %zu fit", len,
			       bz_cmdline_max(bz));
	return 0;
}

static void wr8(uint8_t *p, uint8_t v) { *p = v; }
static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof(v)); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof(v)); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof(v)); }

static void bz_put_e820(struct vm *vm, uint8_t *zp)
{
	struct vmdb_mmap_entry map[ACPI_MAX_MEMORY_MAP];
	unsigned n = acpi_memory_map(vm, map);
	for (unsigned i = 0; i < n && i < LB_E820_MAX; i++) {
		uint8_t *ent = zp + LB_E820_TABLE + i * LB_E820_ENTRY_SIZE;
		wr64(ent, map[i].base);
		wr64(ent + 8, map[i].len);
		wr32(ent + 16, map[i].type);
	}
	wr8(zp + LB_E820_ENTRIES, (uint8_t)n);
}

/* boot_params: the file's setup header, then what the loader fills in. */
static void bz_build_boot_params(struct vm *vm, const uint8_t *image,
				 const struct bz_kernel *bz, uint64_t addr, uint8_t *zp)
{
	memcpy(zp + LB_SETUP_SECTS, image + LB_SETUP_SECTS, bz->header_end - LB_SETUP_SECTS);
	wr16(zp + LB_VID_MODE, LB_VID_NORMAL);
	wr8(zp + LB_TYPE_OF_LOADER, LB_TYPE_UNDEFINED);
	wr8(zp + LB_LOADFLAGS, zp[LB_LOADFLAGS] | LB_LOADED_HIGH | LB_CAN_USE_HEAP);
	wr16(zp + LB_HEAP_END_PTR, BZ_HEAP_END);
	wr32(zp + LB_CODE32_START, (uint32_t)addr);
	wr32(zp + LB_CMD_LINE_PTR, BZ_CMDLINE);
	wr32(zp + LB_RAMDISK_IMAGE, (uint32_t)vm->initrd_gpa);
	wr32(zp + LB_RAMDISK_SIZE, (uint32_t)vm->initrd_size);
	wr32(zp + LB_EXT_RAMDISK_IMAGE, (uint32_t)(vm->initrd_gpa >> 32));
	wr32(zp + LB_EXT_RAMDISK_SIZE, (uint32_t)(vm->initrd_size >> 32));
	if (bz->version >= LB_VERSION_RSDP)
		wr64(zp + LB_ACPI_RSDP_ADDR, vm->rsdp_gpa);
	bz_put_e820(vm, zp);
}

int load_bzimage(struct vm *vm, const uint8_t *image, size_t size, struct err *e)
{
	struct bz_kernel bz = { 0 };
	int ret = bz_parse(image, size, &bz, e);
	if (ret < 0)
		return ret;
	uint64_t addr;
	ret = bz_choose_address(vm, &bz, &addr, e);
	if (ret < 0)
		return ret;
	uint8_t *area = vm_gpa_to_host(vm, VMDB_BOOT_GDT, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	if (!area || !vm_gpa_to_host(vm, VMDB_BOOT_STACK_TOP - X86_PAGE_SIZE, X86_PAGE_SIZE))
		return err_set(e, ENOSPC, "no RAM for the boot area at 0x%x", VMDB_BOOT_GDT);
	ret = bz_check_cmdline(vm, &bz, e);
	if (ret < 0)
		return ret;

	uint8_t *kernel = vm_gpa_to_host(vm, addr, bz.mem_size);
	memcpy(kernel, image + bz.payload_off, bz.payload_size);
	memset(kernel + bz.payload_size, 0, bz.mem_size - bz.payload_size);
	uint64_t ceiling = (uint64_t)bz.initrd_addr_max + 1;
	if (ceiling > vm->low_ram_size)
		ceiling = vm->low_ram_size;
	ret = loader_load_initrd_high(vm, addr + bz.mem_size, ceiling,
				      "the kernel's initrd_addr_max", e);
	if (ret < 0)
		return ret;

	memset(area, 0, VMDB_BOOT_AREA_END - VMDB_BOOT_GDT);
	linux_cmdline_build(vm, (char *)area + (BZ_CMDLINE - VMDB_BOOT_GDT), bz_cmdline_max(&bz));
	bz_build_boot_params(vm, image, &bz, addr, area + (BZ_BOOT_PARAMS - VMDB_BOOT_GDT));
	struct loader_entry entry = {
		.long_mode = true, .gdt_gpa = VMDB_BOOT_GDT,
		.gdt = { [LB_BOOT_CS / 8] = LOADER_DESC_CODE64, [LB_BOOT_DS / 8] = LOADER_DESC_DATA },
		.code_sel = LB_BOOT_CS, .data_sel = LB_BOOT_DS,
		.regs = { .rip = addr + LB_ENTRY64_OFFSET, .rsi = BZ_BOOT_PARAMS,
			  .rsp = VMDB_BOOT_STACK_TOP },
	};
	return loader_enter(vm, &entry, e);
}
