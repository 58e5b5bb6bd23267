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

int debug_sw_insert(struct debug *d, unsigned vcpu, uint64_t addr, bool phys, struct err *e)
{
	uint64_t gpa = addr;
	int r = 0;

	if (!phys && (r = debug_translate(d, vcpu, addr, &gpa)) < 0)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " is not mapped", addr);
	uint8_t *host = vm_gpa_to_host(d->vm, gpa, 1);
	if (!host)
		return err_set(e, EFAULT, "address 0x%" PRIx64 " is not in guest RAM", addr);

	pthread_mutex_lock(&d->lock);
	if (debug_sw_find_locked(d, addr)) {
		r = 0;
	} else if (d->nr_sw == DEBUG_MAX_SW_BP) {
		r = err_set(e, ENOSPC, "too many software breakpoints (%u)", DEBUG_MAX_SW_BP);
	} else {
		struct debug_sw_bp *bp = &d->sw[d->nr_sw++];
		bp->addr = addr;
		bp->gpa = gpa;
		/* two breakpoints on one byte (two aliases): keep the real original */
		bp->orig = *host;
		for (unsigned i = 0; i + 1 < d->nr_sw; i++)
			if (d->sw[i].gpa == gpa)
				bp->orig = d->sw[i].orig;
		debug_sw_poke(d, bp, true);
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

static bool gpa_shared_locked(struct debug *d, const struct debug_sw_bp *bp)
{
	for (unsigned i = 0; i < d->nr_sw; i++)
		if (&d->sw[i] != bp && d->sw[i].gpa == bp->gpa)
			return true;
	return false;
}

int debug_sw_remove(struct debug *d, uint64_t addr, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_sw_bp *bp = debug_sw_find_locked(d, addr);
	if (!bp) {
		pthread_mutex_unlock(&d->lock);
		return err_set(e, ENOENT, "no breakpoint at 0x%" PRIx64, addr);
	}
	if (!gpa_shared_locked(d, bp))
		debug_sw_poke(d, bp, false);
	*bp = d->sw[--d->nr_sw];
	pthread_mutex_unlock(&d->lock);
	return 0;
}

bool debug_hw_supported(const struct debug *d)
{
	return d->vm->engine->set_debug != NULL;
}

int debug_hw_insert(struct debug *d, uint64_t addr, struct err *e)
{
	if (!debug_hw_supported(d))
		return err_set(e, ENOTSUP, "the %s engine has no hardware breakpoints",
			       d->vm->engine->name);
	pthread_mutex_lock(&d->lock);
	int r = 0;
	if (debug_hw_find_locked(d, addr) < 0) {
		r = err_set(e, ENOSPC, "all four hardware breakpoint registers are in use");
		for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++) {
			if (!d->hw[n].used) {
				d->hw[n] = (struct debug_hw_bp){ .addr = addr, .used = true };
				r = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&d->lock);
	return r;
}

int debug_hw_remove(struct debug *d, uint64_t addr, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	int n = debug_hw_find_locked(d, addr);
	if (n >= 0)
		d->hw[n].used = false;
	pthread_mutex_unlock(&d->lock);
	if (n < 0)
		return err_set(e, ENOENT, "no hardware breakpoint at 0x%" PRIx64, addr);
	return 0;
}

void debug_remove_all_breakpoints(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	/* newest first, so aliases restore the oldest saved original last */
	while (d->nr_sw > 0) {
		struct debug_sw_bp *bp = &d->sw[--d->nr_sw];
		debug_sw_poke(d, bp, false);
	}
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		d->hw[n].used = false;
	pthread_mutex_unlock(&d->lock);
}

unsigned debug_nr_sw_breakpoints(const struct debug *d)
{
	return d->nr_sw;
}

unsigned debug_nr_hw_breakpoints(const struct debug *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
		n += d->hw[i].used;
	return n;
}
