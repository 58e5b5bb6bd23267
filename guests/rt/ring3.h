/* guests/rt/ring3.h — a flat ring 3 beside the runtime's ring 0, for
 * guests that run code at CPL 3 over the identity map: 0-4 GiB mapped
 * with 2 MiB user pages and nothing above (sequences that fault at 4 GiB
 * rely on it), the runtime's GDT with user data and 64-bit user code
 * added, and a TSS whose RSP0 is a kernel stack of its own for the way
 * back to ring 0. Ring 0 runs on those user pages too, so SMEP and SMAP
 * are turned off. */
#ifndef RT_RING3_H
#define RT_RING3_H

#define RT_SEL_UDATA 0x20
#define RT_SEL_UCODE 0x28
#define RT_SEL_TSS   0x30
#define RT_RPL3      3
/* The selectors as ring 3 loads them, for IRETQ frames in inline assembly. */
#define RT_USER_SS   "0x23"
#define RT_USER_CS   "0x2b"
_Static_assert((RT_SEL_UDATA | RT_RPL3) == 0x23 && (RT_SEL_UCODE | RT_RPL3) == 0x2b, "user selectors");

void rt_ring3_setup(void);

#endif
