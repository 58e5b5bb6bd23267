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

/* Fill out[] (room for ACPI_MAX_MEMORY_MAP entries) with the guest's
 * memory map in address order; returns the number of entries. Types are
 * VMDB_MEM_RAM / VMDB_MEM_RESERVED. */
unsigned acpi_memory_map(const struct vm *vm, struct vmdb_mmap_entry *out);

/* Sum of bytes, for checking tables (a valid table sums to 0). */
uint8_t acpi_checksum(const void *data, uint64_t len);

#endif
