/* guests/rt/desc.h — descriptors guests write into their own GDT. */
#ifndef RT_DESC_H
#define RT_DESC_H

#include <stdint.h>

#define GDT_TSS_AVAIL 0x89ull          /* present, DPL 0, 64-bit TSS (available) */

/* The 16-byte 64-bit TSS descriptor for the TSS at base, in slot[0..1]. */
static inline void rt_tss_descriptor(uint64_t *slot, uint64_t base, uint32_t limit)
{
	slot[0] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (GDT_TSS_AVAIL << 40) |
		  ((uint64_t)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
	slot[1] = base >> 32;
}

#endif
