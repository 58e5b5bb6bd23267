/* debug/dr_share.h — the debug-register arbiter: one set of DR0-3 per
 * vCPU shared by the guest and the debugger, on engines that have only
 * one (KVM; emu --shared-dr models it). It owns, per vCPU, the guest's own
 * DR0-3/DR6/DR7 (what the guest believes) and what each hardware slot held
 * when the union was last loaded; machine-wide, which hardware slot each
 * of the debugger's entries (debug_int.h's hw[] table: hardware
 * breakpoints, watchpoint pieces, catch and step-engine slots) sits in.
 *
 * The guest has priority: a slot that any vCPU's guest enables (L or G in
 * its DR7) is the guest's; a debugger entry there moves to a free slot, on
 * every vCPU, or waits for one and comes back when a slot frees. Each
 * vCPU's hardware holds the union. A debug exit's DR6 is routed by the
 * slots that raised it: the debugger's bits become its entries' bits, the
 * guest's are reflected to the guest with the DR6 it would see alone.
 *
 * The functions below are pure (no engine, no lock); the debug core's
 * glue (learning the guest's values, loading, reflecting) is in
 * dr_share.c too, declared in debug_int.h. */
#ifndef VMDB_DR_SHARE_H
#define VMDB_DR_SHARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/x86.h"

#define DR_SLOTS 4
#define DR_MAX_VCPUS 256

enum dr_holder { DR_HOLD_NONE, DR_HOLD_GUEST, DR_HOLD_DEBUGGER };

/* What one hardware slot of one vCPU holds. */
struct dr_slot {
	uint8_t holder;          /* enum dr_holder */
	uint8_t entry;           /* DR_HOLD_DEBUGGER: the debugger's entry ... */
	uint8_t what;            /* ... its kind (the glue's), for `monitor info dr` */
	uint64_t addr;           /* ... and address */
};

struct dr_share_vcpu {
	struct x86_debugregs guest;   /* the guest's own file */
	bool known;                   /* guest read at least once */
	struct dr_slot hw[DR_SLOTS];  /* as last loaded into the engine ... */
	uint64_t hw_dr7;              /* ... with this DR7 */
	unsigned gen;                 /* the placement generation loaded */
	/* the guest's instruction-breakpoint slots left out for one
	 * single-stepped instruction: it resumed there with RF set and the
	 * engine raised them anyway (a host that checks the debugger's
	 * registers without RF) */
	unsigned rf_lift;
};

struct dr_share {
	bool on;                 /* the engine shares one set: arbitrate */
	bool precise;            /* guest MOV DR exits (learned as it happens) */
	int8_t place[DR_SLOTS];  /* debugger entry -> hardware slot, -1: none */
	unsigned waiting;        /* entries (bit n) wanting a slot and having none */
	unsigned gen;            /* bumped whenever place[] changes */
	unsigned long moves, waits, reflected, learned_changes;
	struct dr_share_vcpu vcpu[DR_MAX_VCPUS];
};

void dr_share_init(struct dr_share *s);
/* Slots (bit n) one guest file enables. */
unsigned dr_share_enables(const struct x86_debugregs *guest);
/* Slots (bit n) the guest of any of the first nr vCPUs enables. */
unsigned dr_share_guest_slots(const struct dr_share *s, unsigned nr);
/* Place the entries in wanted (bit n = entry n): an entry keeps its slot
 * while no guest enables it, else moves to a free slot (its own number
 * first), else waits; entries not wanted give theirs up. Returns the
 * entries that newly lost their slot or could not get one (for the
 * watchpoints' fallback); gen is bumped when anything moved. */
unsigned dr_share_place(struct dr_share *s, unsigned nr, unsigned wanted);
/* One vCPU's hardware file from the debugger's file by entry (db[n], the
 * G(n)/RW/LEN bits of entry n in dr7) and that vCPU's guest file: db and
 * *dr7 (0 when nothing is enabled) and what each slot holds. */
void dr_share_union(const struct dr_share *s, unsigned vcpu, const uint64_t dbg_db[DR_SLOTS],
		    uint64_t dbg_dr7, uint64_t db[DR_SLOTS], uint64_t *dr7,
		    struct dr_slot hw[DR_SLOTS]);

/* A debug exit's DR6, split by owner. */
struct dr_route {
	uint64_t debugger;       /* B(entry) bits of the debugger's entries, DR6_BS of its step */
	uint64_t guest;          /* B bits of the guest's enabled slots, its BS/BD/BT */
};
/* debugger_steps: the debugger single-steps this vCPU (BS is its). */
struct dr_route dr_share_route(const struct dr_share_vcpu *v, uint64_t dr6,
			       bool debugger_steps);
/* The guest's DR6 after a #DB with these bits reached it: B0-B3 are this
 * event's, BD/BS/BT sticky, the fixed bits as hardware reads them. */
uint64_t dr_share_guest_dr6(uint64_t dr6, uint64_t hit);

/* "exec", "write", "io", "rw" with the length: "write 4". */
void dr_share_slot_kind(uint64_t dr7, unsigned n, char *out, size_t size);

#endif
