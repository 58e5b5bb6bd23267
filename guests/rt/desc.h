/* guests/rt/desc.h — the 64-bit TSS and its descriptor, as guests write
 * them into their own GDT. */
#ifndef RT_DESC_H
#define RT_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "x86/desc.h"

/* The 64-bit TSS without an I/O bitmap (iomap_base = its size). */
struct rt_tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1, ist[7], reserved2;
	uint16_t reserved3, iomap_base;
} __attribute__((packed));
_Static_assert(offsetof(struct rt_tss64, rsp) == TSS64_RSP(0), "TSS RSP0");
_Static_assert(offsetof(struct rt_tss64, ist) == TSS64_IST(1), "TSS IST1");
_Static_assert(sizeof(struct rt_tss64) == TSS_MIN_LIMIT + 1, "TSS size");

/* The 16-byte 64-bit TSS descriptor for the TSS at base, in slot[0..1]
 * (present, DPL 0, available). */
static inline void rt_tss_descriptor(uint64_t *slot, uint64_t base, uint32_t limit)
{
	slot[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) |
		  ((uint64_t)(DESC_PRESENT | SYS_TYPE_TSS_AVAIL) << DESC_ACCESS_SHIFT) |
		  ((uint64_t)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	slot[1] = base >> 32;
}

#endif
