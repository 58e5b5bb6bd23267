/* guests/linux_guest.c — checks shared by linux_bzimage and linux_pvh. */
#include "guests/linux_guest.h"

#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

#define MiB (1ull << 20)
#define MEM_SLACK (4 * MiB)      /* the map leaves out the legacy holes below 1 MiB */
#define E820_RAM 1
#define E820_LAST_KNOWN 5

#define DESC_W  (1ull << 41)       /* writable (data) / readable (code) */
#define DESC_X  (1ull << 43)
#define DESC_S  (1ull << 44)
#define DESC_P  (1ull << 47)
#define DESC_L  (1ull << 53)
#define DESC_DB (1ull << 54)
#define DESC_G  (1ull << 55)

uint32_t linux_guest_fnv1a(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *b++) * 16777619u;
	return h;
}

static bool map_covers(const struct linux_guest_mem *map, unsigned n, uint64_t lo, uint64_t hi)
{
	for (unsigned i = 0; i < n; i++)
		if (map[i].type == E820_RAM && map[i].addr <= lo && map[i].addr + map[i].size >= hi)
			return true;
	return false;
}

uint64_t linux_guest_check_e820(const struct linux_guest_mem *map, unsigned n,
				uint64_t must_lo, uint64_t must_hi)
{
	uint64_t ram = 0, prev_end = 0, low_top = 0;
	bool sorted = true, types = true;

	for (unsigned i = 0; i < n; i++) {
		printf("e820: 0x%lx + 0x%lx type %u\n", (unsigned long)map[i].addr,
		       (unsigned long)map[i].size, map[i].type);
		sorted &= map[i].addr >= prev_end && map[i].size;
		types &= map[i].type >= 1 && map[i].type <= E820_LAST_KNOWN;
		prev_end = map[i].addr + map[i].size;
		if (map[i].type != E820_RAM)
			continue;
		ram += map[i].size;
		if (map[i].addr <= MiB && prev_end > MiB)
			low_top = prev_end;
	}
	expect(n >= 2 && n <= 128, "e820: 2..128 entries");
	expect(sorted, "e820: sorted, non-empty, no overlap");
	expect(types, "e820: types 1..5");
	expect(map_covers(map, n, 0, 0x1000), "e820: RAM at 0");
	expect(low_top, "e820: RAM from 1 MiB");
	expect(map_covers(map, n, must_lo, must_hi), "e820: RAM under the kernel image");
	uint64_t mem = cmdline_u64("expect_mem", 0);
	if (mem)
		expect(ram <= mem && ram + MEM_SLACK >= mem, "e820: RAM adds up to expect_mem");
	return low_top;
}

void linux_guest_check_rsdp(uint64_t rsdp)
{
	const uint8_t *p = (const void *)(uintptr_t)rsdp;
	uint8_t sum = 0;

	if (!expect(rsdp && rsdp < (1ull << 32), "RSDP address given"))
		return;
	expect(memcmp(p, "RSD PTR ", 8) == 0, "RSDP signature");
	for (unsigned i = 0; i < 20; i++)
		sum += p[i];
	expect_eq(sum, 0, "RSDP checksum");
}

void linux_guest_check_initrd(uint64_t addr, uint64_t size)
{
	uint64_t want = cmdline_u64("initrd_size", 0);

	expect_eq(size, want, "initrd size = the file's");
	if (!want || size != want)
		return;
	expect_eq(addr & 0xfff, 0, "initrd page-aligned");
	uint32_t fnv = linux_guest_fnv1a((const void *)(uintptr_t)addr, size);
	printf("initrd at 0x%lx, %lu bytes, fnv1a 0x%08x\n", (unsigned long)addr,
	       (unsigned long)size, fnv);
	expect_eq(fnv, cmdline_u64("initrd_fnv", 0), "initrd bytes = the file's (FNV-1a)");
}

void linux_guest_take_cmdline(const char *s, size_t max)
{
	size_t n = 0;

	if (!expect(s != NULL, "command line address given")) {
		cmdline_set("", false);
		return;
	}
	while (n <= max && s[n])
		n++;
	expect(n <= max, "command line NUL-terminated within its limit");
	printf("cmdline: [");
	for (size_t i = 0; i < n && n <= max; i++)     /* printf stops at 255 bytes */
		serial_putc(s[i]);
	printf("]\n");
	cmdline_set(n <= max ? s : "", false);
}

void linux_guest_check_desc(const uint8_t *gdt, unsigned gdt_len, uint16_t sel, int kind,
			    const char *name)
{
	uint64_t d = 0, want = DESC_P | DESC_S | DESC_W | DESC_G;
	uint64_t mask = want | DESC_X | DESC_L | DESC_DB;
	char what[80];

	if (kind == LINUX_DESC_CODE64)
		want |= DESC_X | DESC_L;
	else
		want |= DESC_DB | (kind == LINUX_DESC_CODE32 ? DESC_X : 0);
	snprintf(what, sizeof(what), "%s: GDT entry 0x%x is %s", name, sel,
		 kind == LINUX_DESC_CODE64 ? "64-bit code" :
		 kind == LINUX_DESC_CODE32 ? "flat 32-bit code" : "flat writable data");
	if (sel & 7 || sel + 8u > gdt_len || !sel) {
		expect(false, what);
		return;
	}
	memcpy(&d, gdt + sel, 8);
	uint64_t base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
	uint64_t limit = (d & 0xffff) | (((d >> 48) & 0xf) << 16);
	bool flat = kind == LINUX_DESC_CODE64 || (base == 0 && limit == 0xfffff);
	expect((d & mask) == want && flat, what);
}
