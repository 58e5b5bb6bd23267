/* x86/desc.h — the layouts x86 defines in memory: page sizes and
 * page-table entry bits, segment descriptor type bits, IDT gates (and
 * x86_gate_decode, the one reader of a gate's bytes), the 64-bit TSS's
 * stack pointers and the 64-bit interrupt frame. Constants are macros so
 * that hot paths (emu's page walk) stay inline. */
#ifndef VMDB_X86_DESC_H
#define VMDB_X86_DESC_H

#include <stdbool.h>
#include <stdint.h>

#include "x86/x86.h"

/* Pages */
#define X86_PAGE_SIZE    0x1000ull
#define X86_PAGE_MASK    (~(X86_PAGE_SIZE - 1))   /* the page's address bits */
#define X86_PAGE_SIZE_2M 0x200000ull              /* a PDE with PS (PAE, long mode) */

/* Page-table entry bits (any level; 32-bit entries use the low 32). */
#define PTE_P  (1ull << 0)        /* present */
#define PTE_W  (1ull << 1)        /* writable */
#define PTE_U  (1ull << 2)        /* user (ring 3) may access */
#define PTE_PWT (1ull << 3)       /* write-through */
#define PTE_PCD (1ull << 4)       /* cache disabled */
#define PTE_A  (1ull << 5)        /* accessed */
#define PTE_D  (1ull << 6)        /* dirty (leaf entries) */
#define PTE_PS (1ull << 7)        /* large page, in a PDPTE or PDE */
#define PTE_G  (1ull << 8)        /* global: kept across CR3 writes with CR4.PGE */
#define PTE_NX (1ull << 63)       /* no execute, with EFER.NXE */
#define PTE_ADDR_MASK   0x000ffffffffff000ull   /* 64-bit entry: physical bits 51:12 */
#define PTE32_ADDR_MASK 0xfffff000ull           /* 32-bit entry, or CR3 without PAE */

/* A selector's table indicator: set, it indexes the LDT, else the GDT. */
#define SEL_TI_LDT 0x4

/* Byte 5 of a descriptor (bits 47:40 of its low quadword): P, DPL, S, type. */
#define DESC_PRESENT   0x80
#define DESC_DPL(n)    ((n) << 5)
#define DESC_CODE_DATA 0x10       /* S: a code/data segment, else a system descriptor */
#define DESC_ACCESS_SHIFT 40      /* where byte 5 sits in the low quadword */

/* Type bits of a code/data segment (S = 1). Bit 3 says which of the two
 * it is; bits 1 and 2 mean different things for each. */
#define SEG_TYPE_ACCESSED    0x1
#define SEG_TYPE_WRITABLE    0x2   /* data */
#define SEG_TYPE_READABLE    0x2   /* code */
#define SEG_TYPE_EXPAND_DOWN 0x4   /* data */
#define SEG_TYPE_CONFORMING  0x4   /* code */
#define SEG_TYPE_EXECUTABLE  0x8   /* set: code, clear: data */
/* The flat segments vmdb's loaders set up. */
#define SEG_TYPE_CODE_XR_ACCESSED (SEG_TYPE_EXECUTABLE | SEG_TYPE_READABLE | SEG_TYPE_ACCESSED)
#define SEG_TYPE_DATA_RW_ACCESSED (SEG_TYPE_WRITABLE | SEG_TYPE_ACCESSED)

/* Types of a system descriptor (S = 0) in the GDT. In IA-32e mode the
 * 32-bit TSS types name the 64-bit TSS. */
#define SYS_TYPE_LDT       0x2
#define SYS_TYPE_TSS_AVAIL 0x9
#define SYS_TYPE_TSS_BUSY  0xb
/* The limit of a TSS without an I/O bitmap (104 bytes, 32- or 64-bit). */
#define TSS_MIN_LIMIT      0x67

/* Gate types (S = 0). In IA-32e mode the IDT holds 16-byte gates, the
 * 32-bit types name the 64-bit gates and the 16-bit and task types are
 * invalid there. */
enum x86_gate_type {
	X86_GATE_TASK   = 0x5,
	X86_GATE_INT16  = 0x6,
	X86_GATE_TRAP16 = 0x7,
	X86_GATE_CALL   = 0xc,
	X86_GATE_INT    = 0xe,     /* interrupt gate: clears IF on entry */
	X86_GATE_TRAP   = 0xf,     /* trap gate: leaves IF alone */
};

/* One IDT (or call) gate, decoded. */
struct x86_gate {
	uint64_t offset;       /* handler's offset: 16, 32 or 64 bits as the type says */
	uint16_t selector;     /* its code segment (a TSS for a task gate) */
	uint8_t type;          /* enum x86_gate_type, or any other value: not a gate */
	uint8_t dpl;
	uint8_t ist;           /* 64-bit gates: IST index 1-7, 0 for none */
	bool present;
};

/* Bytes per IDT entry in `mode`: 16 in IA-32e mode (64-bit or
 * compatibility), else 8. */
static inline unsigned x86_gate_size(enum x86_mode mode)
{
	return mode == X86_MODE_LONG64 || mode == X86_MODE_COMPAT ? 16 : 8;
}

/* Decode the x86_gate_size(mode) bytes at raw (as they are in memory).
 * Real mode has no gates (the IVT): it is read as protected mode would. */
struct x86_gate x86_gate_decode(const void *raw, enum x86_mode mode);

/* Is g an interrupt or trap gate that IDT delivery may use in `mode`
 * (present or not)? A task gate names a TSS, not a handler. */
bool x86_gate_is_handler(const struct x86_gate *g, enum x86_mode mode);

/* 64-bit TSS: the stack pointers for a ring change (RSP0-2) and the
 * interrupt stack table (IST1-7), as byte offsets. */
#define TSS64_RSP(ring) (0x04 + 8u * (ring))
#define TSS64_IST(n)    (0x24 + 8u * ((n) - 1u))
/* 32-bit TSS: ESP0-2 and SS0-2 for a ring change. */
#define TSS32_ESP(ring) (0x04 + 8u * (ring))
#define TSS32_SS(ring)  (0x08 + 8u * (ring))

/* What 64-bit event delivery pushes, lowest address first, on a 16-byte
 * aligned stack top (an error code, where there is one, goes below it). */
struct x86_int_frame64 {
	uint64_t rip, cs, rflags, rsp, ss;
};

/* The segment a code/data or system descriptor's low 8 bytes describe,
 * as loaded for selector sel (limit scaled by G; base bits 63:32 of a
 * 16-byte system descriptor are the caller's). */
void x86_seg_decode(uint64_t desc, uint16_t sel, struct x86_segment *s);

/* A segment's attributes where a descriptor's high dword keeps them:
 * type 11:8, S 12, DPL 14:13, P 15, AVL 20, L 21, D/B 22, G 23 (the
 * "flags" of QEMU's segment lines and of its dump's CPU note). */
uint32_t x86_seg_attr_bits(const struct x86_segment *s);

#endif
