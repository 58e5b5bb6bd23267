/* debug/watch.c — the client's watchpoints (Z2 write, Z3 read, Z4
 * access): any number, any length, each placed where it can live. Write
 * and access watchpoints go into the debugger's DR0-3 (break.c's slot
 * table) where the engine's data breakpoints fire and their pieces fit;
 * the others, and every read watchpoint (x86 has no read-only data
 * breakpoint), become the engine's watched ranges (engine_ops.set_watch):
 * emu checks every access by linear address, kvm traps the pages.
 *
 * Engine ranges are cut at page boundaries, one range per page, because a
 * kvm page trap needs the page's guest-physical address: each page is
 * translated through the page tables of the vCPU the client named when
 * the watchpoint went in, and again before every resume, so a range the
 * guest remapped follows its virtual address (between a remap and the
 * next stop, the old physical page is still the one watched). A page
 * that does not translate waits, unwatched, until it does.
 *
 * The engine hears of an insertion at once (so that what it cannot take
 * is refused to the client) unless it still has that watchpoint's ranges,
 * of a removal at the next resume: gdb takes every watchpoint out at each
 * stop and puts it back before resuming, which then costs the engine
 * nothing (on kvm each change rebuilds the memory map, after which KVM
 * faults every page in again).
 *
 * A physical watchpoint (inserted with `monitor phys on`) is on
 * guest-physical [addr, addr+len): its engine ranges carry that address
 * as their gpa, flagged phys, and are never translated; it never goes
 * into DR0-3, whose matches are linear. emu compares each access's
 * physical bytes with it, kvm traps its pages as any other. */
#include "debug/debug_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096ull

static enum dr7_rw slot_rw(enum debug_watch_kind kind)
{
	return kind == DEBUG_WATCH_WRITE ? DR7_RW_WRITE : DR7_RW_ACCESS;
}

static enum debug_event_kind event_kind(enum debug_watch_kind kind)
{
	return kind == DEBUG_WATCH_WRITE ? DEBUG_EV_WATCH :
	       kind == DEBUG_WATCH_READ ? DEBUG_EV_RWATCH : DEBUG_EV_AWATCH;
}

bool debug_engine_watches(const struct debug *d)
{
	const struct engine_debug_ops *ops = d->vm->engine->debug;
	return ops && ops->set_watch;
}

/* The engine matches linear addresses itself: no translation needed. */
static bool engine_linear(struct debug *d)
{
	const struct engine_caps *caps;
	return debug_caps(d, &caps, NULL) == 0 && caps->watch_linear;
}

bool debug_watch_supported(struct debug *d, enum debug_watch_kind kind)
{
	return debug_engine_watches(d) || (kind != DEBUG_WATCH_READ && debug_watch_slots_work(d));
}

static uint64_t pages_of(uint64_t addr, uint64_t len)
{
	return ((addr + len - 1) / PAGE) - (addr / PAGE) + 1;
}

static struct debug_watch *find_locked(struct debug *d, enum debug_watch_kind kind,
				       uint64_t addr, uint64_t len, bool phys)
{
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		struct debug_watch *w = &d->watch[i];
		if (w->home != DEBUG_WATCH_FREE && w->kind == kind && w->addr == addr &&
		    w->len == len && w->phys == phys)
			return w;
	}
	return NULL;
}

static unsigned engine_pages_locked(struct debug *d)
{
	unsigned n = 0;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++)
		if (d->watch[i].home == DEBUG_WATCH_ENGINE)
			n += d->watch[i].pages;
	return n;
}

/* One engine range per page of every ENGINE watchpoint that translates
 * (through its own vCPU's page tables, or via's when via >= 0: on a vCPU's
 * thread only that vCPU's state may be read); *out is malloc'ed (NULL
 * when there are none). Pages of DEBUG_MAX_WATCH
 * watchpoints: at most DEBUG_MAX_WATCH_PAGES, checked at insert. */
static int build_ranges(struct debug *d, int via, struct engine_watch **out, unsigned *nr)
{
	pthread_mutex_lock(&d->lock);
	struct debug_watch snap[DEBUG_MAX_WATCH];
	memcpy(snap, d->watch, sizeof(snap));
	unsigned total = engine_pages_locked(d);
	pthread_mutex_unlock(&d->lock);

	*out = NULL;
	*nr = 0;
	if (total == 0)
		return 0;
	bool linear = engine_linear(d);
	struct engine_watch *r = calloc(total, sizeof(*r));
	if (!r)
		return -ENOMEM;
	unsigned n = 0;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		struct debug_watch *w = &snap[i];
		if (w->home != DEBUG_WATCH_ENGINE)
			continue;
		w->mapped = 0;
		for (uint64_t a = w->addr, end = w->addr + (w->len - 1); ; ) {
			uint64_t page_end = (a | (PAGE - 1));
			uint64_t last = page_end < end ? page_end : end;
			uint64_t gpa = w->phys ? a : 0;
			if (w->phys || linear ||
			    debug_translate(d, via >= 0 ? (unsigned)via : w->vcpu, a, &gpa) == 0) {
				r[n++] = (struct engine_watch){
					.linear = w->phys ? 0 : a, .gpa = gpa,
					.len = (uint32_t)(last - a + 1),
					.read = w->kind != DEBUG_WATCH_WRITE,
					.write = w->kind != DEBUG_WATCH_READ, .phys = w->phys,
					.id = i,
				};
				w->mapped++;
			}
			if (last == end)
				break;
			a = last + 1;
		}
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++)
		if (d->watch[i].home == DEBUG_WATCH_ENGINE)
			d->watch[i].mapped = snap[i].mapped;
	pthread_mutex_unlock(&d->lock);
	*out = r;
	*nr = n;
	return 0;
}

/* Every range of watchpoint id in r is one the engine has now. */
static bool engine_has_locked(struct debug *d, const struct engine_watch *r, unsigned n,
			      unsigned id)
{
	for (unsigned i = 0; i < n; i++) {
		if (r[i].id != id)
			continue;
		bool found = false;
		for (unsigned j = 0; !found && j < d->nr_watch_ranges; j++)
			found = memcmp(&r[i], &d->watch_ranges[j], sizeof(r[i])) == 0;
		if (!found)
			return false;
	}
	return true;
}

/* Hand the engine the ranges as they translate now, when they changed;
 * for an insertion (new_id >= 0), only when the engine lacks that
 * watchpoint's ranges (gdb putting back what it took out at the stop). */
static int sync_engine(struct debug *d, int new_id, int via, struct err *e)
{
	if (!debug_engine_watches(d))
		return 0;
	struct engine_watch *r;
	unsigned n;
	if (build_ranges(d, via, &r, &n) < 0)
		return err_set(e, ENOMEM, "out of memory for the watched ranges");
	pthread_mutex_lock(&d->lock);
	bool same = new_id >= 0 ? engine_has_locked(d, r, n, (unsigned)new_id) :
		    n == d->nr_watch_ranges &&
		    (n == 0 || memcmp(r, d->watch_ranges, n * sizeof(*r)) == 0);
	pthread_mutex_unlock(&d->lock);
	if (same) {
		free(r);
		return 0;
	}
	int rc = d->vm->engine->debug->set_watch(d->vm, r, n, e);
	pthread_mutex_lock(&d->lock);
	if (rc == 0) {
		free(d->watch_ranges);
		d->watch_ranges = r;
		d->nr_watch_ranges = n;
		d->watch_dirty = false;
	} else {
		free(r);
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

/* Where every watchpoint lives now: a copy cheap enough for every resume
 * (a stepi included); words only when someone asks. */
static void snapshot_locked(struct debug *d, struct debug_watch_snap *snap)
{
	memcpy(snap->watch, d->watch, sizeof(snap->watch));
	snap->any = false;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		const struct debug_watch *w = &d->watch[i];
		snap->any |= w->home != DEBUG_WATCH_FREE;
		snap->slots[i] = w->home != DEBUG_WATCH_SLOTS ? 0 :
			(uint8_t)debug_watch_slots_of_locked(d, slot_rw(w->kind), w->addr, w->len);
	}
}

/* Watchpoints the guest's use of DR0-3 pushed out go back in once their
 * pieces fit again. */
static void return_evicted_locked(struct debug *d)
{
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		struct debug_watch *w = &d->watch[i];
		if (w->home != DEBUG_WATCH_ENGINE || !w->evicted ||
		    debug_watch_slots_insert_locked(d, slot_rw(w->kind), w->addr, w->len) < 0)
			continue;
		w->home = DEBUG_WATCH_SLOTS;
		w->evicted = false;
		d->watch_dirty = true;
	}
}

void debug_watch_sync(struct debug *d)
{
	struct err e = { 0 };
	debug_dr_share_settle(d);     /* DR0-3 placed first: pieces may have left or may return */
	pthread_mutex_lock(&d->lock);
	d->watch_evicted_new = false;     /* handed to the engine below */
	return_evicted_locked(d);
	bool engine = d->watch_dirty || d->nr_watch_ranges > 0, any = false;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		engine |= d->watch[i].home == DEBUG_WATCH_ENGINE;
		any |= d->watch[i].home != DEBUG_WATCH_FREE;
	}
	pthread_mutex_unlock(&d->lock);
	if (engine && sync_engine(d, -1, -1, &e) < 0)
		fprintf(stderr, "vmdb: watchpoints: %s\n", e.msg);
	pthread_mutex_lock(&d->lock);
	if (any)
		snapshot_locked(d, &d->watch_last);
	else
		d->watch_last.any = false;
	pthread_mutex_unlock(&d->lock);
}

/* DR0-3 first where they work: no trap, no exit but the hit. */
static int place_locked(struct debug *d, struct debug_watch *w, struct err *e)
{
	if (!w->phys && w->kind != DEBUG_WATCH_READ && debug_watch_slots_work(d) &&
	    debug_watch_slots_insert_locked(d, slot_rw(w->kind), w->addr, w->len) == 0) {
		w->home = DEBUG_WATCH_SLOTS;
		return 0;
	}
	if (!debug_engine_watches(d))
		return err_set(e, ENOSPC, "a watchpoint on %" PRIu64 " bytes at 0x%" PRIx64
			       " does not fit in the free debug registers (x86 watches aligned "
			       "1, 2, 4 or 8 bytes per register)", w->len, w->addr);
	uint64_t pages = pages_of(w->addr, w->len);
	if (engine_pages_locked(d) + pages > DEBUG_MAX_WATCH_PAGES)
		return err_set(e, ENOSPC, "watchpoints span at most %u pages in all; %" PRIu64
			       " bytes at 0x%" PRIx64 " would need %" PRIu64 " more",
			       DEBUG_MAX_WATCH_PAGES, w->len, w->addr, pages);
	w->home = DEBUG_WATCH_ENGINE;
	w->pages = (unsigned)pages;
	d->watch_dirty = true;
	return 0;
}

/* Every page of guest-physical [addr, addr+len) is RAM (kvm traps RAM
 * pages only: a physical watchpoint elsewhere would never fire). */
static bool ram_range(struct debug *d, uint64_t addr, uint64_t len)
{
	for (uint64_t a = addr & ~(PAGE - 1); a <= addr + (len - 1); a += PAGE) {
		if (!vm_gpa_to_host(d->vm, a, PAGE))
			return false;
		if (a + PAGE < a)
			break;
	}
	return true;
}

int debug_watch_insert(struct debug *d, unsigned vcpu, enum debug_watch_kind kind,
		       uint64_t addr, uint64_t len, bool phys, struct err *e)
{
	if (phys && !debug_engine_watches(d))
		return err_set(e, ENOTSUP, "the %s engine cannot watch guest-physical memory",
			       d->vm->engine->name);
	if (!debug_watch_supported(d, kind))
		return err_set(e, ENOTSUP, "the %s engine cannot watch %s here",
			       d->vm->engine->name, kind == DEBUG_WATCH_READ ? "reads" : "memory");
	if (len == 0 || addr + (len - 1) < addr)
		return err_set(e, EINVAL, "%" PRIu64 " bytes at 0x%" PRIx64 " is not a range to watch",
			       len, addr);
	if (phys && !ram_range(d, addr, len))
		return err_set(e, EINVAL, "guest-physical 0x%" PRIx64 "-0x%" PRIx64 " is not all "
			       "guest RAM: nothing there to watch", addr, addr + (len - 1));
	pthread_mutex_lock(&d->lock);
	if (find_locked(d, kind, addr, len, phys)) {
		pthread_mutex_unlock(&d->lock);
		return 0;       /* inserting twice is harmless */
	}
	struct debug_watch *w = NULL;
	for (unsigned i = 0; !w && i < DEBUG_MAX_WATCH; i++)
		if (d->watch[i].home == DEBUG_WATCH_FREE)
			w = &d->watch[i];
	int r;
	if (!w) {
		r = err_set(e, ENOSPC, "all %u watchpoints are in use", DEBUG_MAX_WATCH);
	} else {
		*w = (struct debug_watch){ .kind = kind, .addr = addr, .len = len, .vcpu = vcpu,
					   .phys = phys };
		r = place_locked(d, w, e);
	}
	bool engine = r == 0 && w->home == DEBUG_WATCH_ENGINE;
	pthread_mutex_unlock(&d->lock);
	if (engine && (r = sync_engine(d, (int)(w - d->watch), -1, e)) < 0) {
		pthread_mutex_lock(&d->lock);
		w->home = DEBUG_WATCH_FREE;
		d->watch_dirty = true;
		pthread_mutex_unlock(&d->lock);
	}
	return r;
}

int debug_watch_remove(struct debug *d, enum debug_watch_kind kind, uint64_t addr,
		       uint64_t len, bool phys, struct err *e)
{
	pthread_mutex_lock(&d->lock);
	struct debug_watch *w = find_locked(d, kind, addr, len, phys);
	bool engine = w && w->home == DEBUG_WATCH_ENGINE;
	if (w && w->home == DEBUG_WATCH_SLOTS)
		debug_watch_slots_remove_locked(d, slot_rw(kind), addr, len);
	if (w) {
		w->home = DEBUG_WATCH_FREE;
		d->watch_dirty |= engine;
	}
	pthread_mutex_unlock(&d->lock);
	if (!w)
		return err_set(e, ENOENT, "no %s watchpoint on %" PRIu64 " bytes at 0x%" PRIx64,
			       phys ? "physical" : "linear", len, addr);
	return 0;
}

void debug_watch_clear(struct debug *d)
{
	struct err e = { 0 };
	pthread_mutex_lock(&d->lock);
	bool engine = d->nr_watch_ranges > 0;
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		struct debug_watch *w = &d->watch[i];
		if (w->home == DEBUG_WATCH_SLOTS)
			debug_watch_slots_remove_locked(d, slot_rw(w->kind), w->addr, w->len);
		w->home = DEBUG_WATCH_FREE;
	}
	d->watch_dirty = false;
	d->watch_last.any = false;
	pthread_mutex_unlock(&d->lock);
	if (engine && sync_engine(d, -1, -1, &e) < 0)
		fprintf(stderr, "vmdb: watchpoints: %s\n", e.msg);
	pthread_mutex_lock(&d->lock);
	free(d->watch_ranges);
	d->watch_ranges = NULL;
	d->nr_watch_ranges = 0;
	pthread_mutex_unlock(&d->lock);
}

void debug_watch_evicted_locked(struct debug *d, enum dr7_rw rw, uint64_t addr, uint64_t len)
{
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		struct debug_watch *w = &d->watch[i];
		if (w->home != DEBUG_WATCH_SLOTS || w->phys || slot_rw(w->kind) != rw ||
		    w->addr != addr || w->len != len)
			continue;
		debug_watch_slots_remove_locked(d, rw, addr, len);
		w->home = DEBUG_WATCH_ENGINE;
		w->pages = (unsigned)pages_of(addr, len);
		w->evicted = true;
		d->watch_dirty = true;
		d->watch_evicted_new = true;
	}
}

void debug_watch_evicted_now(struct debug *d, unsigned via)
{
	struct err e = { 0 };
	pthread_mutex_lock(&d->lock);
	bool pending = d->watch_evicted_new;
	pthread_mutex_unlock(&d->lock);
	/* now, with other vCPUs running: the engine changes its map safely
	 * under them (kvm_watch.c holds them out of KVM_RUN meanwhile) */
	if (!pending)
		return;
	pthread_mutex_lock(&d->lock);
	d->watch_evicted_new = false;
	pthread_mutex_unlock(&d->lock);
	if (sync_engine(d, -1, (int)via, &e) < 0)
		fprintf(stderr, "vmdb: watchpoints: %s\n", e.msg);
}

bool debug_watch_exists_locked(struct debug *d, enum debug_event_kind kind, uint64_t addr)
{
	for (unsigned i = 0; i < DEBUG_MAX_WATCH; i++) {
		const struct debug_watch *w = &d->watch[i];
		if (w->home != DEBUG_WATCH_FREE && event_kind(w->kind) == kind && w->addr == addr)
			return true;
	}
	return false;
}

bool debug_watch_hit_locked(struct debug *d, const struct vm_exit *exit, struct debug_event *ev)
{
	const struct debug_hw_bp *bp = debug_watch_slot_hit_locked(d, exit->db.dr6);
	if (bp) {
		ev->kind = bp->rw == DR7_RW_WRITE ? DEBUG_EV_WATCH : DEBUG_EV_AWATCH;
		ev->addr = bp->watch_addr;
		return true;
	}
	uint32_t id = exit->db.watch;
	if (id == 0 || id > DEBUG_MAX_WATCH || d->watch[id - 1].home != DEBUG_WATCH_ENGINE)
		return false;     /* removed since the engine saw the access */
	ev->kind = event_kind(d->watch[id - 1].kind);
	ev->addr = d->watch[id - 1].addr;
	return true;
}

static const char *kind_name(enum debug_watch_kind kind)
{
	return kind == DEBUG_WATCH_WRITE ? "write" : kind == DEBUG_WATCH_READ ? "read" : "access";
}

/* A page trap that unmaps: a read/access watchpoint's, or a write
 * watchpoint's page that one of those shares (the engine traps the page
 * once, for every access). */
static bool page_unmapped_locked(struct debug *d, const struct debug_watch_snap *snap,
				 unsigned id)
{
	if (snap->watch[id].kind != DEBUG_WATCH_WRITE)
		return true;
	for (unsigned i = 0; i < d->nr_watch_ranges; i++) {
		const struct engine_watch *mine = &d->watch_ranges[i];
		if (mine->id != id)
			continue;
		for (unsigned j = 0; j < d->nr_watch_ranges; j++) {
			const struct engine_watch *o = &d->watch_ranges[j];
			if (o->read && (o->gpa >> 12) == (mine->gpa >> 12))
				return true;
		}
	}
	return false;
}

static int describe_home(struct debug *d, const struct debug_watch_snap *snap, unsigned id,
			 char *out, size_t size)
{
	const struct debug_watch *w = &snap->watch[id];
	if (w->home == DEBUG_WATCH_SLOTS) {
		char regs[16] = "";
		size_t n = 0;
		for (unsigned i = 0; i < DEBUG_NR_HW_BP; i++)
			if (snap->slots[id] & (1u << i))
				n += (size_t)snprintf(regs + n, sizeof(regs) - n, "%sDR%u", n ? "," : "",
						      i);
		return snprintf(out, size, "%s on all vCPUs", regs);
	}
	const char *how = engine_linear(d) ? (w->phys ?
		"engine access check (exact, by physical address)" :
		"engine access check (exact, by linear address)") :
		page_unmapped_locked(d, snap, id) ? "page trap (page unmapped)" :
		"page trap (page write-protected)";
	if (w->mapped == w->pages)
		return snprintf(out, size, "%s%s", how, w->evicted ? ", moved out of DR0-3" : "");
	if (w->mapped == 0)
		return snprintf(out, size, "waiting: not mapped (re-checked at every resume)");
	return snprintf(out, size, "%s, %u of %u pages waiting: not mapped", how,
			w->pages - w->mapped, w->pages);
}

/* One line per watchpoint of snap. */
static void describe_locked(struct debug *d, const struct debug_watch_snap *snap, char *out,
			    size_t size)
{
	size_t n = 0;
	out[0] = '\0';
	for (unsigned i = 0; i < DEBUG_MAX_WATCH && n < size; i++) {
		const struct debug_watch *w = &snap->watch[i];
		if (w->home == DEBUG_WATCH_FREE)
			continue;
		n += (size_t)snprintf(out + n, size - n, "%-6s %" PRIu64 " byte%s at %s 0x%" PRIx64
				      ": ", kind_name(w->kind), w->len, w->len == 1 ? "" : "s",
				      w->phys ? "physical" : "linear", w->addr);
		if (n < size)
			n += (size_t)describe_home(d, snap, i, out + n, size - n);
		if (n < size)
			n += (size_t)snprintf(out + n, size - n, "\n");
	}
}

void debug_watch_describe(struct debug *d, char *out, size_t size)
{
	static const char last_run[] = "none inserted now (gdb inserts its own only while the "
				       "guest runs); while it last ran:\n";
	struct debug_watch_snap *now = malloc(sizeof(*now));
	if (!now) {
		snprintf(out, size, "out of memory\n");
		return;
	}
	pthread_mutex_lock(&d->lock);
	snapshot_locked(d, now);
	if (now->any) {
		describe_locked(d, now, out, size);
	} else if (d->watch_last.any && size > sizeof(last_run)) {
		memcpy(out, last_run, sizeof(last_run));
		describe_locked(d, &d->watch_last, out + sizeof(last_run) - 1,
				size - sizeof(last_run) + 1);
	} else {
		snprintf(out, size, "no watchpoints\n");
	}
	pthread_mutex_unlock(&d->lock);
	free(now);
}
