/* machine/acpi.c — ACPI tables and the E820 memory map (see machine/acpi.h).
 *
 * Layout at VM_ACPI_BASE (each table 16-byte aligned, in this order):
 *   RSDP (ACPI 2.0 form, revision 2) -> RSDT (32-bit) and XSDT (64-bit),
 *   both listing FADT and MADT; FADT -> DSDT (empty AML).
 * The MADT lists one enabled local APIC per vCPU (APIC ID = vCPU id, as
 * KVM assigns them), the I/O APIC at 0xfec00000 with GSI base 0, and the
 * ISA override IRQ0 -> GSI 2 that a PC with an 8254 on the IOAPIC has.
 * The FADT is a plain ACPI 2.0 one with no fixed hardware (no PM1 blocks,
 * no FACS): enough for the RSDT to be well formed; vmdb has no ACPI
 * power management. */
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

/* FADT field offsets (ACPI 2.0, table 5-9) */
#define FADT_DSDT          40
#define FADT_SCI_INT       46
#define FADT_FLAGS         112
#define FADT_X_DSDT        140
#define FADT_FLAG_WBINVD      (1u << 0)
#define FADT_FLAG_PROC_C1     (1u << 2)
#define FADT_FLAG_PWR_BUTTON  (1u << 4)   /* power button is not fixed hardware */
#define FADT_FLAG_SLP_BUTTON  (1u << 5)

/* MADT */
#define MADT_FLAG_PCAT_COMPAT 1u
#define MADT_LAPIC            0
#define MADT_IOAPIC           1
#define MADT_ISO              2
#define MADT_LAPIC_LEN        8
#define MADT_IOAPIC_LEN       12
#define MADT_ISO_LEN          10
#define MADT_LAPIC_ENABLED    1u

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

static uint8_t *acpi_alloc(struct acpi_area *a, uint64_t len, uint64_t *gpa)
{
	uint64_t off = (a->used + 15) & ~15ull;
	if (off + len > a->size)
		return NULL;
	a->used = off + len;
	*gpa = a->gpa + off;
	return a->host + off;
}

static uint32_t acpi_madt_len(unsigned nr_cpus)
{
	return ACPI_HEADER_LEN + 8 + nr_cpus * MADT_LAPIC_LEN + MADT_IOAPIC_LEN + MADT_ISO_LEN;
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
	p[0] = MADT_ISO;
	p[1] = MADT_ISO_LEN;
	p[2] = 0;                                   /* bus: ISA */
	p[3] = 0;                                   /* source: IRQ0 */
	put32(p + 4, 2);                            /* GSI 2 */
	put16(p + 8, 0);                            /* flags: bus conforming */
	acpi_finish(t, len);
}

static void acpi_fill_fadt(uint8_t *t, uint64_t dsdt)
{
	acpi_header(t, "FACP", ACPI_FADT_LEN, ACPI_FADT_REV);
	put32(t + FADT_DSDT, (uint32_t)dsdt);
	put16(t + FADT_SCI_INT, ACPI_SCI_IRQ);
	put32(t + FADT_FLAGS, FADT_FLAG_WBINVD | FADT_FLAG_PROC_C1 | FADT_FLAG_PWR_BUTTON |
				      FADT_FLAG_SLP_BUTTON);
	put64(t + FADT_X_DSDT, dsdt);
	acpi_finish(t, ACPI_FADT_LEN);
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

static int acpi_init(struct vm *vm, struct err *e)
{
	struct acpi_area a = { .gpa = VM_ACPI_BASE, .size = VM_ACPI_END - VM_ACPI_BASE };

	if (vm->low_ram_size < 2 * MiB)
		return err_set(e, EINVAL, "--mem must be at least 2M (the PC layout needs 1 MiB "
				 "below the kernel)");
	a.host = vm_gpa_to_host(vm, a.gpa, a.size);
	if (!a.host)
		return err_set(e, EFAULT, "no RAM at 0x%llx for the ACPI tables",
			       (unsigned long long)a.gpa);
	memset(a.host, 0, a.size);

	uint64_t rsdp, rsdt, xsdt, fadt, dsdt, madt;
	uint32_t madt_len = acpi_madt_len(vm->nr_vcpus);
	uint8_t *r = acpi_alloc(&a, ACPI_RSDP_LEN, &rsdp);
	uint8_t *rt = acpi_alloc(&a, ACPI_HEADER_LEN + 2 * 4, &rsdt);
	uint8_t *xt = acpi_alloc(&a, ACPI_HEADER_LEN + 2 * 8, &xsdt);
	uint8_t *ft = acpi_alloc(&a, ACPI_FADT_LEN, &fadt);
	uint8_t *dt = acpi_alloc(&a, ACPI_HEADER_LEN, &dsdt);
	uint8_t *mt = acpi_alloc(&a, madt_len, &madt);
	if (!mt)
		return err_set(e, ENOSPC, "ACPI tables for %u vCPUs do not fit below 1 MiB",
			       vm->nr_vcpus);

	acpi_fill_madt(mt, vm->nr_vcpus);
	acpi_header(dt, "DSDT", ACPI_HEADER_LEN, 2);
	acpi_finish(dt, ACPI_HEADER_LEN);
	acpi_fill_fadt(ft, dsdt);

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
