/* debug/break.c — software (int3) breakpoints, and the debugger's DR0-3:
 * hardware execution breakpoints and the pieces of watchpoints watch.c
 * places there. A software breakpoint
 * remembers the guest-physical byte it replaced, so memory reads through
 * the debugger can show the original and every removal path (z0, detach,
 * kill) can restore it. DR0-3 are one table for the whole machine, shared
 * by the client's hardware breakpoints and watchpoint pieces, exception
 * catching and (for one step at a time) the step engine's HLT run;
 * debug_apply_engine() loads it into every vCPU on resume, through the
 * arbiter (dr_share.c) where the guest's DR0-3 are the same hardware. */
#include "debug/debug_int.h"

#include <inttypes.h>
#include <string.h>

#define X86_INT3 0xcc

/* The breakpoint the client (or catching, or the step engine) keyed by
 * this address in this address space. */
struct debug_sw_bp *debug_sw_find_as_locked(struct debug *d, uint64_t addr, bool phys)
{
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (d->sw[i].addr == addr && d->sw[i].phys == phys)
			return &d->sw[i];
	return NULL;
}

struct debug_sw_bp *debug_sw_find_locked(struct debug *d, uint64_t addr)
{
	return debug_sw_find_as_locked(d, addr, false);
}

bool debug_sw_client_at_locked(struct debug *d, uint64_t addr)
{
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (d->sw[i].addr == addr && d->sw[i].client)
			return true;
	return false;
}

void debug_sw_where(struct debug *d, unsigned vcpu, uint64_t pc, struct debug_sw_where *w)
{
	w->pc = pc;
	w->have_gpa = false;
	/* no breakpoint, or one keyed by pc itself (the common hit): no page walk */
	pthread_mutex_lock(&d->lock);
	bool settled = d->nr_sw == 0 || debug_sw_find_as_locked(d, pc, false) != NULL;
	pthread_mutex_unlock(&d->lock);
	if (!settled)
		w->have_gpa = debug_translate(d, vcpu, pc, &w->gpa) == 0;
}

/* The int3 a vCPU met at pc is ours when a breakpoint is keyed by that
 * linear address, or sits on the physical byte pc maps to: one set with
 * `monitor phys on`, or one set through another alias of the page (a
 * higher-half kernel runs at virtual != physical). */
struct debug_sw_bp *debug_sw_hit_locked(struct debug *d, const struct debug_sw_where *w)
{
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, w->pc, false);
	for (unsigned i = 0; !bp && w->have_gpa && i < d->nr_sw; i++)
		if (d->sw[i].gpa == w->gpa)
			bp = &d->sw[i];
	return bp;
}

/* Execution breakpoints only: a watchpoint piece at the same address is
 * not a breakpoint on the instruction there. */
int debug_hw_find_locked(struct debug *d, uint64_t addr)
{
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		if (d->hw[n].used && d->hw[n].rw == DR7_RW_EXEC && d->hw[n].addr == addr)
			return (int)n;
	return -1;
}

/* Put the int3 in (insert) or the original byte back. The gpa was checked
 * at insert time and RAM never moves, so this cannot fail. The guest may
 * have written the byte since (new code in the page, the page reused for
 * something else after a remap, a stepped store onto a fault guard):
 * what it wrote is the original from then on, and an int3 that is no
 * longer there is not put back over it. */
void debug_sw_poke(struct debug *d, struct debug_sw_bp *bp, bool insert)
{
	uint8_t *host = vm_gpa_to_host(d->vm, bp->gpa, 1);
	if (!host)
		return;
	vm_ram_dirty(d->vm, host, 1);
	if (insert) {
		if (bp->lifted)
			bp->orig = *host;     /* what the guest has there now */
		*host = X86_INT3;
	} else if (*host == X86_INT3) {
		*host = bp->orig;
	} else {
		bp->orig = *host;
	}
	bp->lifted = !insert;
}

/* A new entry owned by nobody yet; the caller sets the owner. */
int debug_sw_add_locked(struct debug *d, uint64_t addr, uint64_t gpa, struct debug_sw_bp **out,
			struct err *e)
{
	uint8_t *host = vm_gpa_to_host(d->vm, gpa, 1);
	if (!host)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " is not in guest RAM", addr);
	if (d->nr_sw == DEBUG_MAX_SW_BP)
		return err_set(e, ENOSPC, "too many software breakpoints (%u)", DEBUG_MAX_SW_BP);
	struct debug_sw_bp *bp = &d->sw[d->nr_sw++];
	*bp = (struct debug_sw_bp){ .addr = addr, .gpa = gpa, .orig = *host };
	/* two breakpoints on one byte (two aliases): keep the real original */
	for (unsigned i = 0; i + 1 < d->nr_sw; i++)
		if (d->sw[i].gpa == gpa)
			bp->orig = d->sw[i].orig;
	debug_sw_poke(d, bp, true);
	d->mem_gen++;     /* guest memory changed under the step engine's translations */
	*out = bp;
	return 0;
}

static bool gpa_shared_locked(struct debug *d, const struct debug_sw_bp *bp)
{
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (&d->sw[i] != bp && d->sw[i].gpa == bp->gpa)
			return true;
	return false;
}

/* Remove an entry neither owner wants any more. */
void debug_sw_drop_locked(struct debug *d, struct debug_sw_bp *bp)
{
	if (!gpa_shared_locked(d, bp))
		debug_sw_poke(d, bp, false);
	d->mem_gen++;
	debug_cond_free(bp);
	*bp = d->sw[--d->nr_sw];
}

/* The guest remapped the page of a breakpoint's linear address since it
 * went in (gdb inserts its breakpoints again at every resume): its int3
 * leaves the old physical byte (if it is still there) for the new one. */
static int sw_move_locked(struct debug *d, struct debug_sw_bp *bp, uint64_t gpa, struct err *e)
{
	uint8_t *host = vm_gpa_to_host(d->vm, gpa, 1);
	if (!host)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " now maps to 0x%" PRIx64 ", which is "
			       "not guest RAM", bp->addr, gpa);
	if (!gpa_shared_locked(d, bp))
		debug_sw_poke(d, bp, false);
	bp->gpa = gpa;
	bp->orig = *host;
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (&d->sw[i] != bp && d->sw[i].gpa == gpa)
			bp->orig = d->sw[i].orig;
	bp->lifted = false;
	debug_sw_poke(d, bp, true);
	d->mem_gen++;
	return 0;
}

int debug_sw_insert(struct debug *d, unsigned vcpu, uint64_t addr, bool phys, struct err *e)
{
	uint64_t gpa = addr;
	int r = 0;

	if (!phys && (r = debug_translate(d, vcpu, addr, &gpa)) < 0)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " is not mapped", addr);
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, addr, phys);
	if (bp && bp->gpa != gpa)
		r = sw_move_locked(d, bp, gpa, e);
	else if (!bp && (r = debug_sw_add_locked(d, addr, gpa, &bp, e)) == 0)
		bp->phys = phys;
	if (r == 0)
		bp->client = true;
	pthread_mutex_unlock(&d->lock);
	return r;
}

/* The client's breakpoint at addr: in the address space it names now,
 * else in the other (the client switched `monitor phys` in between). */
static struct debug_sw_bp *client_bp_locked(struct debug *d, uint64_t addr, bool phys)
{
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, addr, phys);
	if (!bp || !bp->client)
		bp = debug_sw_find_as_locked(d, addr, !phys);
	return bp && bp->client ? bp : NULL;
}

int debug_sw_remove(struct debug *d, uint64_t addr, bool phys, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = client_bp_locked(d, addr, phys);
	if (!bp) {
		pthread_mutex_unlock(&d->lock);
		return err_set(e, ENOENT, "no breakpoint at 0x%" PRIx64, addr);
	}
	bp->client = false;
	debug_cond_free(bp);     /* the conditions were the client's */
	if (!debug_sw_owned(bp))
		debug_sw_drop_locked(d, bp);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

bool debug_hw_supported(const struct debug *d)
{
	return d->vm->engine->debug != NULL;
}

/* A slot for the client: a free one, else one that only exception
 * catching holds (catching falls back to int3 at the next resume). */
static int hw_slot_for_client_locked(struct debug *d)
{
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		if (!d->hw[n].used)
			return (int)n;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++) {
		if (!d->hw[n].client) {
			d->catch_dirty = true;
			return (int)n;
		}
	}
	return -1;
}

int debug_hw_insert(struct debug *d, uint64_t addr, struct err *e)
{
	if (!debug_hw_supported(d))
		return err_set(e, ENOTSUP, "the %s engine has no hardware breakpoints",
			       d->vm->engine->name);
	pthread_mutex_lock(&d->lock);
	int r = 0;
	int n = debug_hw_find_locked(d, addr);
	if (n < 0 && (n = hw_slot_for_client_locked(d)) >= 0)
		d->hw[n] = (struct debug_hw_bp){ .addr = addr, .used = true };
	if (n >= 0)
		d->hw[n].client = true;
	else
		r = err_set(e, ENOSPC, "all four hardware breakpoint registers are in use");
	pthread_mutex_unlock(&d->lock);
	return r;
}

int debug_hw_remove(struct debug *d, uint64_t addr, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	int n = debug_hw_find_locked(d, addr);
	if (n >= 0 && !d->hw[n].client)
		n = -1;
	if (n >= 0) {
		debug_hw_stand_in_drop_locked(d, (unsigned)n);
		d->hw[n].client = false;
		d->hw[n].used = d->hw[n].catch_vectors != 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (n < 0)
		return err_set(e, ENOENT, "no hardware breakpoint at 0x%" PRIx64, addr);
	return 0;
}

void debug_hw_stand_in_locked(struct debug *d, unsigned n, uint64_t gpa, bool mapped)
{
	struct debug_hw_bp *hw = &d->hw[n];
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, hw->addr, false);
	struct err e = { 0 };
	if (!mapped)
		hw->stand_in = DEBUG_STAND_IN_UNMAPPED;
	else if (!bp && debug_sw_add_locked(d, hw->addr, gpa, &bp, &e) < 0)
		hw->stand_in = DEBUG_STAND_IN_NOT_RAM;     /* or no room: it waits either way */
	else
		hw->stand_in = DEBUG_STAND_IN_INT3;
	hw->stand_in_catch = 0;
	if (hw->stand_in != DEBUG_STAND_IN_INT3)
		return;
	bp->hw_stand_in = bp->hw_stand_in || hw->client;
	debug_hw_stand_in_catch_locked(d, n);
}

/* The int3 standing in for entry n catches what the entry catches now. */
void debug_hw_stand_in_catch_locked(struct debug *d, unsigned n)
{
	struct debug_hw_bp *hw = &d->hw[n];
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, hw->addr, false);
	if (hw->stand_in != DEBUG_STAND_IN_INT3 || !bp)
		return;
	uint32_t add = hw->catch_vectors & ~bp->catch_vectors;
	bp->catch_vectors |= add;
	hw->stand_in_catch |= add;
}

/* An entry no longer in use was cleared by its owners (catch.c clears the
 * int3s' caught vectors itself): only its state goes. */
void debug_hw_stand_in_drop_locked(struct debug *d, unsigned n)
{
	struct debug_hw_bp *hw = &d->hw[n];
	struct debug_sw_bp *bp = debug_sw_find_as_locked(d, hw->addr, false);
	if (hw->stand_in == DEBUG_STAND_IN_INT3 && hw->used && bp) {
		bp->hw_stand_in = false;
		bp->catch_vectors &= ~hw->stand_in_catch;
		if (!debug_sw_owned(bp))
			debug_sw_drop_locked(d, bp);
	}
	hw->stand_in = DEBUG_STAND_IN_NONE;
	hw->stand_in_catch = 0;
}

/* Everything, the client's and exception catching's (detach, kill). */
static void remove_all(struct debug *d, bool keep_persistent)
{
	debug_watch_clear(d);
	pthread_mutex_lock(&d->lock);
	/* newest first, so aliases restore the oldest saved original last */
	while (d->nr_sw > 0 && !keep_persistent) {
		struct debug_sw_bp *bp = &d->sw[--d->nr_sw];
		debug_sw_poke(d, bp, false);
		debug_cond_free(bp);
	}
	/* a drop moves the last entry (visited already) into slot i */
	for (unsigned i = d->nr_sw; i-- > 0 && keep_persistent;) {
		struct debug_sw_bp *bp = &d->sw[i];
		bp->catch_vectors = 0;
		bp->step_guard = false;
		bp->hw_stand_in = false;     /* the client's DR0-3 entries go below */
		if (!debug_cond_persists(bp))
			debug_sw_drop_locked(d, bp);
	}
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		d->hw[n] = (struct debug_hw_bp){ 0 };
	d->catch_mask = 0;
	memset(d->catch_at, 0, sizeof(d->catch_at));
	memset(&d->access, 0, sizeof(d->access));   /* access catches go with the client too */
	output_watch_clear(&d->vm->output_watch);    /* and output catching */
	d->guard.armed = d->guard.lifted = false;    /* the step engine's guards went too */
	d->mem_gen++;
	pthread_mutex_unlock(&d->lock);
}

void debug_remove_all_breakpoints(struct debug *d)
{
	remove_all(d, false);
}

void debug_remove_all_but_persistent(struct debug *d)
{
	remove_all(d, true);
}

bool debug_client_breakpoint_at(struct debug *d, uint64_t addr)
{
	pthread_mutex_lock(&d->lock);
	int n = debug_hw_find_locked(d, addr);
	bool at = debug_sw_client_at_locked(d, addr) || (n >= 0 && d->hw[n].client);
	pthread_mutex_unlock(&d->lock);
	return at;
}

unsigned debug_nr_sw_breakpoints(const struct debug *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < d->nr_sw; i++)
		n += d->sw[i].client;
	return n;
}

unsigned debug_nr_hw_breakpoints(const struct debug *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
		n += d->hw[i].client && d->hw[i].rw == DR7_RW_EXEC;
	return n;
}

/* ---- watchpoints ---- */

uint64_t debug_hw_dr7_bits(const struct debug_hw_bp *bp, unsigned n)
{
	if (bp->rw == DR7_RW_EXEC)
		return DR7_RW(n, DR7_RW_EXEC) | DR7_LEN(n, DR7_LEN_1);   /* LEN must be 00 */
	enum dr7_len len = bp->len == 8 ? DR7_LEN_8 : bp->len == 4 ? DR7_LEN_4 :
			   bp->len == 2 ? DR7_LEN_2 : DR7_LEN_1;
	return DR7_RW(n, bp->rw) | DR7_LEN(n, len);
}

bool debug_watch_slots_work(struct debug *d)
{
	const struct engine_caps *caps;
	return debug_hw_supported(d) && debug_caps(d, &caps, NULL) == 0 && caps->hw_data_bp;
}

/* x86 watches 1, 2, 4 or 8 bytes aligned to their size: the largest such
 * piece that starts at a and does not run past the range. */
static unsigned piece_len(uint64_t a, uint64_t left)
{
	for (unsigned len = 8; len > 1; len /= 2)
		if ((a & (len - 1)) == 0 && left >= len)
			return len;
	return 1;
}

/* Pieces [addr, addr+len) needs; counting stops past max (len may be huge). */
static unsigned count_pieces(uint64_t addr, uint64_t len, unsigned max)
{
	unsigned n = 0;
	while (len > 0 && n <= max) {
		unsigned p = piece_len(addr, len);
		addr += p;
		len -= p;
		n++;
	}
	return n;
}

static bool is_piece_of(const struct debug_hw_bp *bp, enum dr7_rw rw, uint64_t addr,
			uint64_t len)
{
	return bp->used && bp->client && bp->rw == rw && bp->watch_addr == addr &&
	       bp->watch_len == len;
}

/* Slots the client may take: free ones and those only catching holds. */
static unsigned client_slots_locked(struct debug *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
		n += !d->hw[i].client;
	return n;
}

/* The pieces of [addr, addr+len) in free slots (or slots only catching
 * holds), all or none: -ENOSPC when they do not fit, in the table or, on
 * DR0-3 shared with the guest, in the slots it leaves. */
int debug_watch_slots_insert_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				    uint64_t len)
{
	unsigned need = count_pieces(addr, len, DEBUG_NR_HW_BP);
	if (need > client_slots_locked(d) || need > debug_dr_share_room_locked(d))
		return -ENOSPC;
	for (uint64_t a = addr, left = len; left > 0;) {
		unsigned p = piece_len(a, left);
		int n = hw_slot_for_client_locked(d);    /* cannot fail: counted above */
		if (n < 0)
			break;
		d->hw[n] = (struct debug_hw_bp){ .addr = a, .used = true, .client = true, .rw = rw,
						 .len = (uint8_t)p, .watch_addr = addr,
						 .watch_len = len };
		a += p;
		left -= p;
	}
	return 0;
}

void debug_watch_slots_remove_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				     uint64_t len)
{
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
		if (is_piece_of(&d->hw[i], rw, addr, len))
			d->hw[i] = (struct debug_hw_bp){ 0 };
}

/* The lowest slot a debug exit's DR6 names that holds a watchpoint piece. */
const struct debug_hw_bp *debug_watch_slot_hit_locked(struct debug *d, uint64_t dr6)
{
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++) {
		const struct debug_hw_bp *bp = &d->hw[i];
		if ((dr6 & DR6_B(i)) && bp->used && bp->client && bp->rw != DR7_RW_EXEC)
			return bp;
	}
	return NULL;
}

/* The slots a watchpoint's pieces sit in, as a DR mask (bit n = DRn). */
unsigned debug_watch_slots_of_locked(struct debug *d, enum dr7_rw rw, uint64_t addr,
				     uint64_t len)
{
	unsigned mask = 0;
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
		if (is_piece_of(&d->hw[i], rw, addr, len))
			mask |= 1u << i;
	return mask;
}
