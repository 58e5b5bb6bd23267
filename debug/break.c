/* debug/break.c — software (int3) and hardware (DR0-3 execution)
 * breakpoints. A software breakpoint remembers the guest-physical byte it
 * replaced, so memory reads through the debugger can show the original and
 * every removal path (z0, detach, kill) can restore it. Hardware
 * breakpoints are one table for the whole machine; debug_apply_engine()
 * loads it into every vCPU on resume. */
#include "debug/debug_int.h"

#include <inttypes.h>
#include <string.h>

#define X86_INT3 0xcc

struct debug_sw_bp *debug_sw_find_locked(struct debug *d, uint64_t addr)
{
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (d->sw[i].addr == addr)
			return &d->sw[i];
	return NULL;
}

int debug_hw_find_locked(struct debug *d, uint64_t addr)
{
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		if (d->hw[n].used && d->hw[n].addr == addr)
			return (int)n;
	return -1;
}

/* Put the int3 in (insert) or the original byte back. The gpa was checked
 * at insert time and RAM never moves, so this cannot fail. */
void debug_sw_poke(struct debug *d, struct debug_sw_bp *bp, bool insert)
{
	uint8_t *host = vm_gpa_to_host(d->vm, bp->gpa, 1);
	if (!host)
		return;
	*host = insert ? X86_INT3 : bp->orig;
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
	*bp = d->sw[--d->nr_sw];
}

int debug_sw_insert(struct debug *d, unsigned vcpu, uint64_t addr, bool phys, struct err *e)
{
	uint64_t gpa = addr;
	int r = 0;

	if (!phys && (r = debug_translate(d, vcpu, addr, &gpa)) < 0)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " is not mapped", addr);
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_locked(d, addr);
	if (!bp)
		r = debug_sw_add_locked(d, addr, gpa, &bp, e);
	if (r == 0)
		bp->client = true;
	pthread_mutex_unlock(&d->lock);
	return r;
}

int debug_sw_remove(struct debug *d, uint64_t addr, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_locked(d, addr);
	if (!bp || !bp->client) {
		pthread_mutex_unlock(&d->lock);
		return err_set(e, ENOENT, "no breakpoint at 0x%" PRIx64, addr);
	}
	bp->client = false;
	if (!bp->catch_vectors && !bp->step_guard)
		debug_sw_drop_locked(d, bp);
	pthread_mutex_unlock(&d->lock);
	return 0;
}

bool debug_hw_supported(const struct debug *d)
{
	return d->vm->engine->set_debug != NULL;
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
		d->hw[n].client = false;
		d->hw[n].used = d->hw[n].catch_vectors != 0;
	}
	pthread_mutex_unlock(&d->lock);
	if (n < 0)
		return err_set(e, ENOENT, "no hardware breakpoint at 0x%" PRIx64, addr);
	return 0;
}

/* Everything, the client's and exception catching's (detach, kill). */
void debug_remove_all_breakpoints(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	/* newest first, so aliases restore the oldest saved original last */
	while (d->nr_sw > 0) {
		struct debug_sw_bp *bp = &d->sw[--d->nr_sw];
		debug_sw_poke(d, bp, false);
	}
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		d->hw[n] = (struct debug_hw_bp){ 0 };
	d->catch_mask = 0;
	memset(d->catch_at, 0, sizeof(d->catch_at));
	d->guard.armed = d->guard.lifted = false;    /* the step engine's guards went too */
	d->mem_gen++;
	pthread_mutex_unlock(&d->lock);
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
		n += d->hw[i].client;
	return n;
}
