/* x86/seg_load.h — what a MOV to a segment register puts in the hidden
 * part of the register (base, limit, attributes), for a debugger that
 * writes a selector: selector << 4 in real and virtual-8086 mode, the
 * GDT/LDT descriptor otherwise, refused with words where the CPU would
 * fault. The descriptor is read through the caller (guest memory). */
#ifndef VMDB_X86_SEG_LOAD_H
#define VMDB_X86_SEG_LOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "util/err.h"
#include "x86/x86.h"

enum x86_seg_reg { X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_ES, X86_SEG_FS, X86_SEG_GS };

/* Read the 8-byte descriptor at a linear address; 0 or -errno. */
typedef int (*x86_desc_reader)(void *ctx, uint64_t linear, uint64_t *desc);

/* Load sel into segment register reg of a CPU in the state (sregs,
 * rflags): *seg (the register's current contents) becomes what the CPU
 * would hold. Privilege checks (RPL/DPL against CPL) are not made: the
 * debugger may load what the guest could not. On error *seg is unchanged
 * and e says why. A null selector in DS/ES/FS/GS (and SS in 64-bit mode)
 * makes the register unusable; FS and GS keep their base. */
int x86_seg_load(const struct x86_sregs *sregs, uint64_t rflags, enum x86_seg_reg reg,
		 uint16_t sel, x86_desc_reader read, void *ctx, struct x86_segment *seg,
		 struct err *e) must_check;

/* The same for LDTR (ldtr) or TR: a GDT selector naming an LDT or a TSS
 * descriptor (16 bytes in IA-32e mode); a null LDTR selector makes it
 * unusable. The TSS is not marked busy (LTR would). */
int x86_sys_seg_load(const struct x86_sregs *sregs, bool ldtr, uint16_t sel,
		     x86_desc_reader read, void *ctx, struct x86_segment *seg,
		     struct err *e) must_check;

#endif
