/* x86/paging.h — guest page-table walks: linear (virtual) to physical
 * address translation for every x86 paging mode (none, 32-bit, PAE,
 * 4-level and 5-level), with large pages. Reads guest memory only through
 * the caller's callback, so engines and the gdbserver can share it. */
#ifndef VMDB_PAGING_H
#define VMDB_PAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/x86.h"

/* Copy guest-physical [gpa, gpa+len) into buf; 0 or -errno (e.g. -EFAULT
 * when it is not RAM). */
typedef int (*x86_read_phys_fn)(void *opaque, uint64_t gpa, void *buf, size_t len);

/* Translate the linear address gva under the paging mode that sregs
 * (CR0.PG, CR4.PAE/LA57/PSE, EFER.LMA, CR3) select. Ignores access rights:
 * a debugger may read what the guest could not. Returns 0 and *gpa, or
 * -EFAULT when a table entry on the way is not present (or a table is not
 * readable), -EINVAL for a non-canonical address in long mode. */
int x86_translate(const struct x86_sregs *sregs, x86_read_phys_fn read_phys, void *opaque,
		  uint64_t gva, uint64_t *gpa);

/* One leaf of the page tables: linear [va, va+size) maps physical
 * [pa, pa+size), with the rights every level on the way grants (write and
 * user only if all grant them; nx if any level sets it) and the leaf's
 * global / accessed / dirty / cache-control bits. va is canonical in long mode. */
struct x86_mapping {
	uint64_t va, pa, size;
	bool write, user, nx, global, accessed, dirty, pcd, pwt;
};

/* Called per leaf in ascending va order; non-zero ends the walk and is
 * returned by x86_paging_enum. */
typedef int (*x86_mapping_fn)(void *opaque, const struct x86_mapping *m);

/* Every present mapping under the paging mode sregs select; -ENOENT when
 * paging is off. Tables outside readable memory are skipped. -E2BIG after
 * 16M table entries (tables that map themselves over and over): the
 * leaves before it were given. */
int x86_paging_enum(const struct x86_sregs *sregs, x86_read_phys_fn read_phys,
		    void *read_opaque, x86_mapping_fn fn, void *opaque);

#endif
