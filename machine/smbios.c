/* machine/smbios.c — the SMBIOS (DMI) tables a PC's firmware leaves at
 * VM_SMBIOS_BASE, where an OS looks for them (the 64 KiB below 1 MiB, on a
 * 16-byte boundary): a 2.8 entry point ("_SM_" with its "_DMI_" part) and
 * three structures: BIOS information (type 0: vendor vmdb, a release date,
 * "this is a virtual machine"), system information (type 1: manufacturer
 * and product vmdb) and the end of the table (type 127).
 *
 * Why a debugger's machine has them: Linux trusts PCI configuration
 * mechanism #1 without probing for a device only when the BIOS's year is
 * 2001 or later (arch/x86/pci/direct.c); with no DMI it finds nothing on
 * bus 0 and says "PCI: Fatal: No config space access function found" at
 * every boot. And /sys/class/dmi/id, dmidecode and `dmesg` ("DMI: vmdb
 * vmdb, BIOS ...") name the machine. Written again at every reset, like
 * the ACPI tables. */
#include <string.h>

#include "machine/device.h"
#include "machine/vm.h"

#define SMBIOS_EP_LEN        0x1f
#define SMBIOS_DMI_OFF       0x10    /* the intermediate ("_DMI_") part */
#define SMBIOS_TABLE_OFF     0x20    /* the structures, after the entry point */
#define SMBIOS_BIOS_DATE     "12/07/2026"    /* mm/dd/yyyy; Linux reads the year */

/* One structure: its formatted part, then its strings, each ending in NUL,
 * and one more NUL (two when it has no strings). Returns the bytes used. */
static size_t put_structure(uint8_t *p, const uint8_t *formatted, size_t len,
			    const char *const *strings, unsigned nr_strings)
{
	memcpy(p, formatted, len);
	size_t n = len;
	for (unsigned i = 0; i < nr_strings; i++) {
		size_t l = strlen(strings[i]) + 1;
		memcpy(p + n, strings[i], l);
		n += l;
	}
	p[n++] = 0;
	if (nr_strings == 0)
		p[n++] = 0;
	return n;
}

static size_t put_bios_info(uint8_t *p)
{
	uint8_t f[0x18] = {
		[0] = 0, [1] = sizeof(f), [2] = 0, [3] = 0,   /* type 0, handle 0 */
		[4] = 1, [5] = 2,                              /* vendor, version */
		[6] = 0x00, [7] = 0xe8,                        /* segment 0xe800 */
		[8] = 3,                                       /* release date */
		[0x0a] = 0x08,         /* characteristics: "not supported" (none listed) */
		[0x13] = 0x10,         /* extension byte 2, bit 4: a virtual machine */
		[0x16] = 0xff, [0x17] = 0xff,                  /* no embedded controller */
	};
	static const char *const s[] = { "vmdb", "vmdb", SMBIOS_BIOS_DATE };
	return put_structure(p, f, sizeof(f), s, 3);
}

static size_t put_system_info(uint8_t *p)
{
	uint8_t f[0x1b] = {
		[0] = 1, [1] = sizeof(f), [2] = 1, [3] = 0,   /* type 1, handle 1 */
		[4] = 1, [5] = 2,                              /* manufacturer, product */
		/* no version or serial number; UUID 0: not present */
		[0x18] = 6,                                    /* woken by the power switch */
	};
	static const char *const s[] = { "vmdb", "vmdb" };
	return put_structure(p, f, sizeof(f), s, 2);
}

static size_t put_end(uint8_t *p)
{
	const uint8_t f[4] = { 127, 4, 2, 0 };           /* type 127, handle 2 */
	return put_structure(p, f, sizeof(f), NULL, 0);
}

static uint8_t checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void smbios_write(struct vm *vm)
{
	uint8_t *base = vm_gpa_to_host(vm, VM_SMBIOS_BASE, VM_ACPI_END - VM_SMBIOS_BASE);
	if (!base)
		return;      /* --mem below 1 MiB: acpi.c refuses such a machine first */
	memset(base, 0, VM_ACPI_END - VM_SMBIOS_BASE);
	uint8_t *t = base + SMBIOS_TABLE_OFF;
	size_t sizes[3], len = 0;
	sizes[0] = put_bios_info(t);
	sizes[1] = put_system_info(t + sizes[0]);
	sizes[2] = put_end(t + sizes[0] + sizes[1]);
	size_t largest = 0;
	for (unsigned i = 0; i < 3; i++) {
		len += sizes[i];
		largest = sizes[i] > largest ? sizes[i] : largest;
	}

	uint8_t *ep = base;
	memcpy(ep, "_SM_", 4);
	ep[5] = SMBIOS_EP_LEN;
	ep[6] = 2;                                 /* SMBIOS 2.8 */
	ep[7] = 8;
	put16(ep + 8, (uint16_t)largest);
	memcpy(ep + SMBIOS_DMI_OFF, "_DMI_", 5);
	put16(ep + 0x16, (uint16_t)len);
	put32(ep + 0x18, (uint32_t)(VM_SMBIOS_BASE + SMBIOS_TABLE_OFF));
	put16(ep + 0x1c, 3);                       /* structures */
	ep[0x1e] = 0x28;                           /* BCD revision 2.8 */
	ep[0x15] = checksum(ep + SMBIOS_DMI_OFF, SMBIOS_EP_LEN - SMBIOS_DMI_OFF);
	ep[4] = checksum(ep, SMBIOS_EP_LEN);
}

static void smbios_reset(void *opaque)
{
	smbios_write(opaque);
}

static int smbios_init(struct vm *vm, struct err *e)
{
	smbios_write(vm);
	return vm_on_reset(vm, smbios_reset, vm, e);
}

MACHINE_DEVICE(smbios, smbios_init);
