/* machine/acpi.h — the firmware's description of the machine: the ACPI
 * tables (RSDP, RSDT, XSDT, FADT, DSDT, MADT) written into guest RAM at
 * VM_ACPI_BASE, and the E820 system address map (ACPI spec chapter 15)
 * that every boot path reports (ELF64 boot info, multiboot mmap, fw_cfg).
 *
 * The tables are written by a MACHINE_DEVICE ("acpi") during
 * machine_devices_init, so vm->rsdp_gpa is set before loader_load runs. */
#ifndef VMDB_ACPI_H
#define VMDB_ACPI_H

#include <stdint.h>

#include "machine/bootinfo.h"

struct vm;

#define ACPI_MAX_MEMORY_MAP 8

/* The fixed hardware the FADT describes (machine/dev_acpi_pm.c), at the
 * ports QEMU's PIIX4 uses: PM1a event block (PM1_STS, PM1_EN), PM1a
 * control block (PM1_CNT) and the 32-bit PM timer. */
#define ACPI_PM1A_EVT_PORT 0x600
#define ACPI_PM1_EVT_LEN   4
#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_PM1_CNT_LEN   2
#define ACPI_PM_TMR_PORT   0x608
#define ACPI_PM_TMR_LEN    4
#define ACPI_PM_TMR_HZ     3579545ull
/* PM1_CNT: SCI_EN (reads 1: no SMI_CMD, the machine is always in ACPI
 * mode), SLP_TYP (bits 10-12) and SLP_EN (bit 13, write-only) */
#define ACPI_PM1_CNT_SCI_EN   0x0001u
#define ACPI_PM1_CNT_SLP_TYP_SHIFT 10
#define ACPI_PM1_CNT_SLP_TYP_MASK  0x1c00u
#define ACPI_PM1_CNT_SLP_EN   0x2000u
/* The SLP_TYP value of \_S5 in the DSDT: writing it with SLP_EN powers off. */
#define ACPI_SLP_TYP_S5       5
/* The FADT reset register: the PC's reset control register (machine/dev_reset.c). */
#define ACPI_RESET_PORT    0xcf9
#define ACPI_RESET_VALUE   0x06

/* Fill out[] (room for ACPI_MAX_MEMORY_MAP entries) with the guest's
 * memory map in address order; returns the number of entries. Types are
 * VMDB_MEM_RAM / VMDB_MEM_RESERVED. */
unsigned acpi_memory_map(const struct vm *vm, struct vmdb_mmap_entry *out);

/* Sum of bytes, for checking tables (a valid table sums to 0). */
uint8_t acpi_checksum(const void *data, uint64_t len);

#endif
