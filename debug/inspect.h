/* debug/inspect.h — a stopped vCPU's system state as text for people (the
 * monitor's gva2gpa, info mem/tlb, xp, info registers, info idt/gdt,
 * info lapic/ioapic/pic, in QEMU's layouts where QEMU has the command).
 * It owns every x86 decoding of those views; the caller only moves the
 * text. Each line goes to the caller's emit as soon as it is made (a page
 * table walk can make thousands). Called with the machine stopped. */
#ifndef VMDB_DEBUG_INSPECT_H
#define VMDB_DEBUG_INSPECT_H

#include <stdbool.h>
#include <stdint.h>

#include "debug/debug.h"
#include "util/err.h"

struct debug_text {
	void (*emit)(void *opaque, const char *line);   /* one line, '\n' included */
	void *opaque;
};

/* Each returns 0, or -errno with words in e (nothing useful was shown). */
int debug_inspect_gva2gpa(struct debug *d, unsigned vcpu, uint64_t gva,
			  const struct debug_text *out, struct err *e);
/* The vCPU's mappings as ranges of equal rights ("info mem"), or page
 * by page with every leaf's bits ("info tlb"). */
int debug_inspect_mem(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e);
int debug_inspect_tlb(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e);
/* QEMU's xp: spec is "/FMT ADDR" (FMT = [count][x|d|u|o|c][b|h|w|g], any
 * part left out) or "ADDR"; guest-physical memory. */
int debug_inspect_xp(struct debug *d, const char *spec, const struct debug_text *out,
		     struct err *e);
int debug_inspect_registers(struct debug *d, unsigned vcpu, const struct debug_text *out,
			    struct err *e);
int debug_inspect_idt(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e);
int debug_inspect_gdt(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e);

enum debug_irqchip_part { DEBUG_IRQCHIP_LAPIC, DEBUG_IRQCHIP_IOAPIC, DEBUG_IRQCHIP_PIC };
int debug_inspect_irqchip(struct debug *d, unsigned vcpu, enum debug_irqchip_part part,
			  const struct debug_text *out, struct err *e);

/* Where guest memory cannot be reached in an address space: guest-physical
 * (phys) or vcpu's linear addresses. Physical: everything that is not RAM.
 * Linear: the pages mapped onto anything that is not RAM (MMIO, nothing);
 * unmapped addresses are not holes (their mapping may come). fn gets each
 * hole [first, last] once, ascending, adjacent ones merged. */
typedef void (*debug_range_fn)(void *opaque, uint64_t first, uint64_t last);
int debug_memory_holes(struct debug *d, unsigned vcpu, bool phys, debug_range_fn fn,
		       void *opaque);

#endif
