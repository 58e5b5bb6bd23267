/* machine/acpi.c — ACPI tables and the E820 memory map (see machine/acpi.h).
 *
 * Layout at VM_ACPI_BASE (each table 16-byte aligned, the FACS 64-byte
 * aligned, in this order):
 *   RSDP (ACPI 2.0 form, revision 2) -> RSDT (32-bit) and XSDT (64-bit),
 *   both listing FADT and MADT; FADT -> FACS and DSDT.
 * The MADT lists one enabled local APIC per vCPU (APIC ID = vCPU id, as
 * KVM assigns them), the I/O APIC at 0xfec00000 with GSI base 0, and the
 * two ISA overrides a PC has: IRQ0 -> GSI 2 (the 8254 on the IOAPIC) and
 * the SCI on IRQ 9, level-triggered and active high.
 * The FADT (revision 3, ACPI 2.0) describes the fixed hardware of
 * machine/dev_acpi_pm.c (PM1a event and control blocks, a 32-bit PM
 * timer) and the reset register (port 0xcf9, value 6); both the 32-bit
 * and the extended (GAS) forms of each block say the same thing (the FACS
 * has only the 32-bit pointer: the spec wants one of the two zero). The
 * DSDT's only object is \_S5, the soft-off sleep type. */
#include "machine/acpi.h"

#include <string.h>

#include "machine/device.h"
#include "machine/vm.h"

#define ACPI_IOAPIC_ADDR  0xfec00000u
#define ACPI_LAPIC_ADDR   0xfee00000u
#define ACPI_IOAPIC_ID    0
#define ACPI_SCI_IRQ      9

#define ACPI_HEADER_LEN   36
#define ACPI_RSDP_LEN     36
#define ACPI_RSDP_V1_LEN  20
#define ACPI_FADT_LEN     244      /* ACPI 2.0 FADT, revision 3 */
#define ACPI_FADT_REV     3
#define ACPI_FACS_LEN     64
#define ACPI_FACS_ALIGN   64

/* FADT field offsets (ACPI 2.0, table 5-9) */
#define FADT_FIRMWARE_CTRL 36
#define FADT_DSDT          40
#define FADT_PM_PROFILE    45
#define FADT_SCI_INT       46
#define FADT_PM1A_EVT_BLK  56
#define FADT_PM1A_CNT_BLK  64
#define FADT_PM_TMR_BLK    76
#define FADT_PM1_EVT_LEN   88
#define FADT_PM1_CNT_LEN   89
#define FADT_PM_TMR_LEN    91
#define FADT_P_LVL2_LAT    96
#define FADT_P_LVL3_LAT    98
#define FADT_CENTURY       108
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS         112
#define FADT_RESET_REG     116
#define FADT_RESET_VALUE   128
#define FADT_X_DSDT        140
#define FADT_X_PM1A_EVT_BLK 148
#define FADT_X_PM1A_CNT_BLK 172
#define FADT_X_PM_TMR_BLK  208
#define FADT_FLAG_WBINVD      (1u << 0)
#define FADT_FLAG_PROC_C1     (1u << 2)
#define FADT_FLAG_PWR_BUTTON  (1u << 4)   /* power button is not fixed hardware */
#define FADT_FLAG_SLP_BUTTON  (1u << 5)
#define FADT_FLAG_TMR_VAL_EXT (1u << 8)   /* the PM timer counts 32 bits */
#define FADT_FLAG_RESET_REG_SUP (1u << 10)
#define FADT_BOOT_LEGACY_DEVICES 0x0001u  /* ISA devices (RTC, serial) */
#define FADT_BOOT_8042           0x0002u  /* an i8042 at 0x60/0x64 */
#define FADT_NO_C2_C3            1001     /* P_LVLx_LAT > 100/1000 us: not supported */
#define FADT_PM_PROFILE_DESKTOP  1
#define RTC_CENTURY_INDEX        0x32

/* Generic Address Structure (ACPI 2.0, 5.2.3.1) */
#define GAS_LEN            12
#define GAS_SPACE_IO       1
#define GAS_ACCESS_BYTE    1
#define GAS_ACCESS_WORD    2
#define GAS_ACCESS_DWORD   3

/* MADT */
#define MADT_FLAG_PCAT_COMPAT 1u
#define MADT_LAPIC            0
#define MADT_IOAPIC           1
#define MADT_ISO              2
#define MADT_LAPIC_LEN        8
#define MADT_IOAPIC_LEN       12
#define MADT_ISO_LEN          10
#define MADT_LAPIC_ENABLED    1u
#define MADT_NR_ISO           2
/* MPS INTI flags: polarity (bits 0-1) and trigger mode (bits 2-3) */
#define MADT_ISO_CONFORMING    0x0000u
#define MADT_ISO_ACTIVE_HIGH   0x0001u
#define MADT_ISO_LEVEL         0x000cu

#define E820_EBDA_BASE 0x9fc00ull
#define E820_EBDA_END  0xa0000ull
#define MiB            0x100000ull

/* --- little-endian stores into a table being built --------------------- */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

uint8_t acpi_checksum(const void *data, uint64_t len)
{
	const uint8_t *p = data;
	uint8_t sum = 0;
	for (uint64_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	return sum;
}

/* Standard header; the checksum is fixed up by acpi_finish(). */
static void acpi_header(uint8_t *t, const char sig[4], uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "VMDB  ", 6);        /* OEM ID */
	memcpy(t + 16, "VMDB", 4);          /* OEM table ID: VMDB + signature */
	memcpy(t + 20, sig, 4);
	put32(t + 24, 1);                   /* OEM revision */
	memcpy(t + 28, "VMDB", 4);          /* creator ID */
	put32(t + 32, 1);
}

static void acpi_finish(uint8_t *t, uint32_t len)
{
	t[9] = 0;
	t[9] = (uint8_t)-acpi_checksum(t, len);
}

/* --- the tables -------------------------------------------------------- */

/* A cursor over the ACPI window of guest RAM. */
struct acpi_area {
	uint8_t *host;
	uint64_t gpa, used, size;
};

static uint8_t *acpi_alloc_aligned(struct acpi_area *a, uint64_t len, uint64_t align,
				   uint64_t *gpa)
{
	uint64_t off = (a->used + align - 1) & ~(align - 1);
	if (off + len > a->size)
		return NULL;
	a->used = off + len;
	*gpa = a->gpa + off;
	return a->host + off;
}

static uint8_t *acpi_alloc(struct acpi_area *a, uint64_t len, uint64_t *gpa)
{
	return acpi_alloc_aligned(a, len, 16, gpa);
}

static uint32_t acpi_madt_len(unsigned nr_cpus)
{
	return ACPI_HEADER_LEN + 8 + nr_cpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN +
	       MADT_NR_ISO * MADT_ISO_LEN;
}

/* An interrupt source override: ISA IRQ `irq` arrives on GSI `gsi`. */
static uint8_t *madt_put_iso(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0;                                   /* bus: ISA */
	p[3] = irq;
	put32(p + 4, gsi);
	put16(p + 8, flags);
	return p + MADT_ISO_LEN;
}

static void acpi_fill_madt(uint8_t *t, unsigned nr_cpus)
{
	uint32_t len = acpi_madt_len(nr_cpus);
	acpi_header(t, "APIC", len, 1);
	put32(t + 36, ACPI_LAPIC_ADDR);
	put32(t + 40, MADT_FLAG_PCAT_COMPAT);   /* 8259s present (KVM's in-kernel PIC) */
	uint8_t *p = t + 44;
	for (unsigned i = 0; i < nr_cpus; i++, p += MADT_LAPIC_LEN) {
		p[0] = MADT_LAPIC;
		p[1] = MADT_LAPIC_LEN;
		p[2] = (uint8_t)i;                  /* ACPI processor UID */
		p[3] = (uint8_t)i;                  /* APIC ID */
		put32(p + 4, MADT_LAPIC_ENABLED);
	}
	p[0] = MADT_IOAPIC;
	p[1] = MADT_IOAPIC_LEN;
	p[2] = ACPI_IOAPIC_ID;
	put32(p + 4, ACPI_IOAPIC_ADDR);
	put32(p + 8, 0);                            /* GSI base */
	p += MADT_IOAPIC_LEN;
	p = madt_put_iso(p, 0, 2, MADT_ISO_CONFORMING);
	madt_put_iso(p, ACPI_SCI_IRQ, ACPI_SCI_IRQ, MADT_ISO_ACTIVE_HIGH | MADT_ISO_LEVEL);
	acpi_finish(t, len);
}

/* A Generic Address Structure for `width` bits of I/O port space. */
static void put_gas_io(uint8_t *g, uint16_t port, uint8_t width)
{
	g[0] = GAS_SPACE_IO;
	g[1] = width;
	g[2] = 0;                                   /* bit offset */
	g[3] = width == 8 ? GAS_ACCESS_BYTE : width == 16 ? GAS_ACCESS_WORD : GAS_ACCESS_DWORD;
	put64(g + 4, port);
}

static void acpi_fill_fadt(uint8_t *t, uint64_t facs, uint64_t dsdt)
{
	acpi_header(t, "FACP", ACPI_FADT_LEN, ACPI_FADT_REV);
	put32(t + FADT_FIRMWARE_CTRL, (uint32_t)facs);
	put32(t + FADT_DSDT, (uint32_t)dsdt);
	t[FADT_PM_PROFILE] = FADT_PM_PROFILE_DESKTOP;
	put16(t + FADT_SCI_INT, ACPI_SCI_IRQ);
	/* no SMI_CMD: the machine is in ACPI mode from power-on (SCI_EN reads 1) */
	put32(t + FADT_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT);
	put32(t + FADT_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT);
	put32(t + FADT_PM_TMR_BLK, ACPI_PM_TMR_PORT);
	t[FADT_PM1_EVT_LEN] = ACPI_PM1_EVT_LEN;
	t[FADT_PM1_CNT_LEN] = ACPI_PM1_CNT_LEN;
	t[FADT_PM_TMR_LEN] = ACPI_PM_TMR_LEN;
	put16(t + FADT_P_LVL2_LAT, FADT_NO_C2_C3);
	put16(t + FADT_P_LVL3_LAT, FADT_NO_C2_C3);
	t[FADT_CENTURY] = RTC_CENTURY_INDEX;
	put16(t + FADT_IAPC_BOOT_ARCH, FADT_BOOT_LEGACY_DEVICES | FADT_BOOT_8042);
	put32(t + FADT_FLAGS, FADT_FLAG_WBINVD | FADT_FLAG_PROC_C1 | FADT_FLAG_PWR_BUTTON |
				      FADT_FLAG_SLP_BUTTON | FADT_FLAG_TMR_VAL_EXT |
				      FADT_FLAG_RESET_REG_SUP);
	put_gas_io(t + FADT_RESET_REG, ACPI_RESET_PORT, 8);
	t[FADT_RESET_VALUE] = ACPI_RESET_VALUE;
	/* X_FIRMWARE_CTRL stays 0: with both set, ACPICA installs the FACS
	 * twice, and the spec wants one of them zero */
	put64(t + FADT_X_DSDT, dsdt);
	put_gas_io(t + FADT_X_PM1A_EVT_BLK, ACPI_PM1A_EVT_PORT, 8 * ACPI_PM1_EVT_LEN);
	put_gas_io(t + FADT_X_PM1A_CNT_BLK, ACPI_PM1A_CNT_PORT, 8 * ACPI_PM1_CNT_LEN);
	put_gas_io(t + FADT_X_PM_TMR_BLK, ACPI_PM_TMR_PORT, 8 * ACPI_PM_TMR_LEN);
	acpi_finish(t, ACPI_FADT_LEN);
}

/* The FACS: no checksum, no global lock, no waking vector (vmdb has no
 * S1-S4), but ACPICA looks for one on a machine that is not
 * hardware-reduced. */
static void acpi_fill_facs(uint8_t *t)
{
	memcpy(t, "FACS", 4);
	put32(t + 4, ACPI_FACS_LEN);
	t[32] = 1;                                  /* version (ACPI 2.0 layout) */
}

/* The DSDT's AML, hand-encoded (ACPI 2.0, chapter 17):
 *   Name (_S5, Package () { 5, 5, 0, 0 })
 * 08              NameOp
 * 5f 53 35 5f     NameSeg "_S5_" (four characters, '_'-padded)
 * 12              PackageOp
 * 08              PkgLength: 8 bytes from here to the end of the package
 *                 (one-byte encoding: bits 7-6 = 0, length in bits 5-0)
 * 04              NumElements
 * 0a 05, 0a 05    BytePrefix 5: SLP_TYPa and SLP_TYPb = ACPI_SLP_TYP_S5
 * 00, 00          ZeroOp: two reserved elements
 * The OS writes SLP_TYPa | SLP_EN to PM1a_CNT to enter S5 (soft off). */
static const uint8_t dsdt_aml[] = {
	0x08, '_', 'S', '5', '_',
	0x12, 0x08, 0x04,
	0x0a, ACPI_SLP_TYP_S5, 0x0a, ACPI_SLP_TYP_S5,
	0x00, 0x00,
};

static void acpi_fill_dsdt(uint8_t *t)
{
	uint32_t len = ACPI_HEADER_LEN + sizeof(dsdt_aml);
	acpi_header(t, "DSDT", len, 2);
	memcpy(t + ACPI_HEADER_LEN, dsdt_aml, sizeof(dsdt_aml));
	acpi_finish(t, len);
}

static void acpi_fill_rsdp(uint8_t *r, uint64_t rsdt, uint64_t xsdt)
{
	memcpy(r, "RSD PTR ", 8);
	memcpy(r + 9, "VMDB  ", 6);
	r[15] = 2;                                  /* ACPI 2.0+ */
	put32(r + 16, (uint32_t)rsdt);
	put32(r + 20, ACPI_RSDP_LEN);
	put64(r + 24, xsdt);
	r[8] = (uint8_t)-acpi_checksum(r, ACPI_RSDP_V1_LEN);
	r[32] = (uint8_t)-acpi_checksum(r, ACPI_RSDP_LEN);
}

/* Write every table into guest RAM; vm->rsdp_gpa says where they start. */
static int acpi_write_tables(struct vm *vm, struct err *e)
{
	struct acpi_area a = { .gpa = VM_ACPI_BASE, .size = VM_SMBIOS_BASE - VM_ACPI_BASE };

	if (vm->low_ram_size < 2 * MiB)
		return err_set(e, EINVAL, "--mem must be at least 2M (the PC layout needs 1 MiB "
				 "below the kernel)");
	a.host = vm_gpa_to_host(vm, a.gpa, a.size);
	if (!a.host)
		return err_set(e, EFAULT, "no RAM at 0x%llx for the ACPI tables",
			       (unsigned long long)a.gpa);
	memset(a.host, 0, a.size);

	uint64_t rsdp, rsdt, xsdt, fadt, facs, dsdt, madt;
	uint32_t madt_len = acpi_madt_len(vm->nr_vcpus);
	uint8_t *r = acpi_alloc(&a, ACPI_RSDP_LEN, &rsdp);
	uint8_t *rt = acpi_alloc(&a, ACPI_HEADER_LEN + 2 * 4, &rsdt);
	uint8_t *xt = acpi_alloc(&a, ACPI_HEADER_LEN + 2 * 8, &xsdt);
	uint8_t *ft = acpi_alloc(&a, ACPI_FADT_LEN, &fadt);
	uint8_t *fc = acpi_alloc_aligned(&a, ACPI_FACS_LEN, ACPI_FACS_ALIGN, &facs);
	uint8_t *dt = acpi_alloc(&a, ACPI_HEADER_LEN + sizeof(dsdt_aml), &dsdt);
	uint8_t *mt = acpi_alloc(&a, madt_len, &madt);
	if (!mt)
		return err_set(e, ENOSPC, "ACPI tables for %u vCPUs do not fit below 1 MiB",
			       vm->nr_vcpus);

	acpi_fill_madt(mt, vm->nr_vcpus);
	acpi_fill_facs(fc);
	acpi_fill_dsdt(dt);
	acpi_fill_fadt(ft, facs, dsdt);

	acpi_header(rt, "RSDT", ACPI_HEADER_LEN + 2 * 4, 1);
	put32(rt + ACPI_HEADER_LEN, (uint32_t)fadt);
	put32(rt + ACPI_HEADER_LEN + 4, (uint32_t)madt);
	acpi_finish(rt, ACPI_HEADER_LEN + 2 * 4);

	acpi_header(xt, "XSDT", ACPI_HEADER_LEN + 2 * 8, 1);
	put64(xt + ACPI_HEADER_LEN, fadt);
	put64(xt + ACPI_HEADER_LEN + 8, madt);
	acpi_finish(xt, ACPI_HEADER_LEN + 2 * 8);

	acpi_fill_rsdp(r, rsdt, xsdt);
	vm->rsdp_gpa = rsdp;
	return 0;
}

/* A reset cleared RAM: the firmware writes its tables again. They fitted
 * at power-on and nothing about the machine changed since. */
static void acpi_reset(void *opaque)
{
	struct err e = { 0 };
	(void)acpi_write_tables(opaque, &e);
}

static int acpi_init(struct vm *vm, struct err *e)
{
	int r = acpi_write_tables(vm, e);
	if (r < 0)
		return r;
	return vm_on_reset(vm, acpi_reset, vm, e);
}

MACHINE_DEVICE(acpi, acpi_init);

/* --- E820 ---------------------------------------------------------------- */

static unsigned e820_add(struct vmdb_mmap_entry *out, unsigned n, uint64_t base, uint64_t end,
			 uint32_t type)
{
	if (end <= base || n >= ACPI_MAX_MEMORY_MAP)
		return n;
	out[n] = (struct vmdb_mmap_entry){ .base = base, .len = end - base, .type = type };
	return n + 1;
}

unsigned acpi_memory_map(const struct vm *vm, struct vmdb_mmap_entry *out)
{
	uint64_t low = vm->low_ram_size;
	unsigned n = 0;

	/* conventional memory, the EBDA slot, then the BIOS area where the
	 * ACPI tables live; 0xa0000-0xdffff (VGA, option ROMs) is a hole */
	n = e820_add(out, n, 0, low < E820_EBDA_BASE ? low : E820_EBDA_BASE, VMDB_MEM_RAM);
	n = e820_add(out, n, E820_EBDA_BASE, E820_EBDA_END, VMDB_MEM_RESERVED);
	n = e820_add(out, n, VM_ACPI_BASE, VM_ACPI_END, VMDB_MEM_RESERVED);
	n = e820_add(out, n, MiB, low, VMDB_MEM_RAM);
	if (vm->ram_size > low)
		n = e820_add(out, n, VM_HIGH_RAM_BASE, VM_HIGH_RAM_BASE + (vm->ram_size - low),
			     VMDB_MEM_RAM);
	return n;
}
