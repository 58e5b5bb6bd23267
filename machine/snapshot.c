/* machine/snapshot.c — the snapshot store (snapshot.h).
 *
 * A snapshot holds the engine's bytes (engine_snap_ops), every device's
 * bytes (vm_on_snapshot, in registration order) and guest RAM as a list
 * of pages: the pages written between the snapshot before it and itself,
 * with their bytes at its moment (NULL: all zeros). The oldest snapshot's
 * list has every page that is not all zeros. So the bytes of page f at
 * snapshot k are those of the latest entry for f in snapshots oldest..k,
 * or zeros when there is none.
 *
 * Which pages were written comes from machine/'s dirty map (vm->ram_dirty,
 * kept by the engine and every other writer): the map holds the pages
 * written since RAM last equalled snapshot `ram_at`. Taking a snapshot
 * stores the marked pages and clears the map (engine_snap_ops.ram_clean
 * makes the engine mark again); restoring snapshot k writes back only the
 * pages marked, plus those listed by the snapshots between ram_at and k —
 * a cost that follows what changed, not the size of RAM.
 *
 * History is one deterministic execution: a snapshot taken after a
 * restore (replaying forward) may land between two kept ones, and the
 * lists stay right because every write the execution makes between two
 * snapshots is listed by a snapshot between them (a list may hold more
 * pages than were written: their bytes are still right). A live edit
 * breaks that: the caller forgets what follows (snap_forget_after).
 *
 * Dropping the oldest merges its pages into the next one, which becomes
 * the full list. A reset of the machine ends the history (RAM is zeroed
 * and the engine made anew): the store then starts over.
 *
 * Not thread-safe beyond its lock: snapshot.h's preconditions say no
 * vCPU runs during take and restore. */
#include "machine/snapshot.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "machine/vm.h"

#define SNAP_PAGE 4096u

struct snap_page {
	uint64_t frame;             /* host offset in vm->ram >> 12 */
	uint8_t *data;              /* SNAP_PAGE bytes (the last frame: fewer), NULL = zeros */
};

struct snap {
	uint64_t icount;
	void *state;                /* engine bytes, then device bytes */
	size_t state_size;
	struct snap_page *pages;
	size_t nr_pages, cap_pages;
	uint64_t bytes;             /* memory this snapshot holds */
};

struct snap_store {
	struct vm *vm;
	pthread_mutex_t lock;
	uint64_t budget;
	struct snap *snaps;         /* by icount, oldest first */
	size_t nr, cap;
	size_t ram_at;              /* RAM = snaps[ram_at] + the pages vm->ram_dirty marks */
	unsigned boot;              /* vm->nr_boots the history belongs to */
	uint64_t bytes;
	uint64_t *need, *done;      /* scratch maps of frames for restore and merge */
};

static size_t map_words(const struct vm *vm)
{
	return (vm->ram_frames + 63) / 64;
}

static bool map_test(const uint64_t *map, uint64_t f)
{
	return (map[f / 64] >> (f % 64)) & 1;
}

static void map_set(uint64_t *map, uint64_t f)
{
	map[f / 64] |= 1ull << (f % 64);
}

static size_t frame_len(const struct vm *vm, uint64_t f)
{
	uint64_t left = vm->ram_size - f * SNAP_PAGE;
	return left < SNAP_PAGE ? (size_t)left : SNAP_PAGE;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	uint64_t acc = 0;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		acc |= w;
		if (acc)
			return false;
	}
	for (; i < len; i++)
		acc |= p[i];
	return acc == 0;
}

static uint64_t page_cost(const struct snap_page *pg)
{
	return sizeof(*pg) + (pg->data ? SNAP_PAGE : 0);
}

/* The caller takes sn->bytes off the store's count when sn was in it. */
static void snap_free(struct snap *sn)
{
	for (size_t i = 0; i < sn->nr_pages; i++)
		free(sn->pages[i].data);
	free(sn->pages);
	free(sn->state);
	memset(sn, 0, sizeof(*sn));
}

static int page_add(struct snap *sn, uint64_t frame, uint8_t *data)
{
	if (sn->nr_pages == sn->cap_pages) {
		size_t cap = sn->cap_pages ? sn->cap_pages * 2 : 64;
		struct snap_page *p = realloc(sn->pages, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		sn->pages = p;
		sn->cap_pages = cap;
	}
	sn->pages[sn->nr_pages++] = (struct snap_page){ frame, data };
	sn->bytes += page_cost(&sn->pages[sn->nr_pages - 1]);
	return 0;
}

/* --- the machine's state besides RAM ---------------------------------------------- */

static size_t state_size(struct vm *vm)
{
	size_t n = vm->engine->snap->size(vm);
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++)
		n += vm->snapshot_hooks[i].size;
	return n;
}

static int state_save(struct vm *vm, struct snap *sn, struct err *e)
{
	sn->state_size = state_size(vm);
	sn->state = malloc(sn->state_size);
	if (!sn->state)
		return err_set(e, ENOMEM, "out of memory for a snapshot of %zu bytes",
			       sn->state_size);
	sn->bytes += sn->state_size;
	size_t engine = vm->engine->snap->size(vm);
	int r = vm->engine->snap->save(vm, sn->state, engine, e);
	if (r < 0)
		return r;
	uint8_t *p = (uint8_t *)sn->state + engine;
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++) {
		const struct vm_snapshot_hook *h = &vm->snapshot_hooks[i];
		h->save(h->opaque, p);
		p += h->size;
	}
	return 0;
}

static int state_restore(struct vm *vm, const struct snap *sn, struct err *e)
{
	if (sn->state_size != state_size(vm))
		return err_set(e, EINVAL, "the snapshot at %" PRIu64 " does not fit this machine",
			       sn->icount);
	size_t engine = vm->engine->snap->size(vm);
	int r = vm->engine->snap->restore(vm, sn->state, engine, e);
	if (r < 0)
		return r;
	const uint8_t *p = (const uint8_t *)sn->state + engine;
	for (unsigned i = 0; i < vm->nr_snapshot_hooks; i++) {
		const struct vm_snapshot_hook *h = &vm->snapshot_hooks[i];
		h->restore(h->opaque, p);
		p += h->size;
	}
	return 0;
}

/* --- RAM ------------------------------------------------------------------------- */

/* The pages the dirty map marks (every page: the first snapshot) into sn,
 * with their bytes now; the map is cleared and the engine marks again. */
static int ram_save(struct snap_store *s, struct snap *sn, bool every, struct err *e)
{
	struct vm *vm = s->vm;
	for (size_t w = 0; w < map_words(vm); w++) {
		uint64_t bits = every ? ~0ull : __atomic_load_n(&vm->ram_dirty[w], __ATOMIC_RELAXED);
		for (; bits; bits &= bits - 1) {
			uint64_t f = w * 64 + (uint64_t)__builtin_ctzll(bits);
			if (f >= vm->ram_frames)
				break;
			const uint8_t *src = vm->ram + f * SNAP_PAGE;
			size_t len = frame_len(vm, f);
			uint8_t *copy = NULL;
			if (all_zero(src, len)) {
				if (every)
					continue;       /* the full list leaves zeros out */
			} else if (!(copy = malloc(SNAP_PAGE))) {
				return err_set(e, ENOMEM, "out of memory for a snapshot's pages");
			} else {
				memcpy(copy, src, len);
			}
			if (page_add(sn, f, copy) < 0) {
				free(copy);
				return err_set(e, ENOMEM, "out of memory for a snapshot's pages");
			}
		}
	}
	memset(vm->ram_dirty, 0, map_words(vm) * sizeof(uint64_t));
	vm->engine->snap->ram_clean(vm);
	return 0;
}

/* Mark in s->need every page listed by snapshots (lo, hi]. */
static void need_listed(struct snap_store *s, size_t lo, size_t hi)
{
	for (size_t j = lo + 1; j <= hi; j++)
		for (size_t i = 0; i < s->snaps[j].nr_pages; i++)
			map_set(s->need, s->snaps[j].pages[i].frame);
}

/* Put RAM back as snapshot k had it: the pages marked written since
 * ram_at, and those listed between ram_at and k, get their latest bytes
 * from snapshots k, k-1, ... (zeros when none lists them). Returns the
 * pages written. */
static uint64_t ram_restore(struct snap_store *s, size_t k)
{
	struct vm *vm = s->vm;
	size_t words = map_words(vm);
	uint64_t wanted = 0, written = 0;
	memset(s->done, 0, words * sizeof(uint64_t));
	for (size_t w = 0; w < words; w++)
		s->need[w] = __atomic_load_n(&vm->ram_dirty[w], __ATOMIC_RELAXED);
	need_listed(s, k < s->ram_at ? k : s->ram_at, k < s->ram_at ? s->ram_at : k);
	for (size_t w = 0; w < words; w++)
		wanted += (uint64_t)__builtin_popcountll(s->need[w]);
	for (size_t j = k + 1; j-- > 0 && written < wanted;) {
		const struct snap *sn = &s->snaps[j];
		for (size_t i = 0; i < sn->nr_pages; i++) {
			uint64_t f = sn->pages[i].frame;
			if (f >= vm->ram_frames || !map_test(s->need, f) || map_test(s->done, f))
				continue;
			map_set(s->done, f);
			written++;
			uint8_t *dst = vm->ram + f * SNAP_PAGE;
			if (sn->pages[i].data)
				memcpy(dst, sn->pages[i].data, frame_len(vm, f));
			else
				memset(dst, 0, frame_len(vm, f));
		}
	}
	for (size_t w = 0; w < words && written < wanted; w++) {
		for (uint64_t bits = s->need[w] & ~s->done[w]; bits; bits &= bits - 1) {
			uint64_t f = w * 64 + (uint64_t)__builtin_ctzll(bits);
			if (f >= vm->ram_frames)
				break;          /* the map's last word may run past RAM */
			memset(vm->ram + f * SNAP_PAGE, 0, frame_len(vm, f));   /* zeros since the oldest */
			written++;
		}
	}
	memset(s->need, 0, words * sizeof(uint64_t));
	memset(vm->ram_dirty, 0, words * sizeof(uint64_t));
	vm->engine->snap->ram_clean(vm);
	return written;
}

/* --- the history ------------------------------------------------------------------- */

static void snaps_remove(struct snap_store *s, size_t i)
{
	memmove(&s->snaps[i], &s->snaps[i + 1], (s->nr - i - 1) * sizeof(s->snaps[0]));
	s->nr--;
}

/* The oldest goes; the next one takes over the pages it does not list
 * itself and becomes the full list (zeros left out). When RAM was
 * measured from the oldest, it now differs from the new oldest by the
 * pages that one lists. */
static void drop_oldest(struct snap_store *s)
{
	struct snap *old = &s->snaps[0], *next = &s->snaps[1];
	struct vm *vm = s->vm;
	s->bytes -= old->bytes + next->bytes;
	for (size_t i = 0; i < next->nr_pages; i++) {
		map_set(s->need, next->pages[i].frame);
		if (s->ram_at == 0)
			vm_ram_dirty(vm, vm->ram + next->pages[i].frame * SNAP_PAGE, 1);
	}
	size_t kept = 0;
	for (size_t i = 0; i < next->nr_pages; i++) {
		if (next->pages[i].data)
			next->pages[kept++] = next->pages[i];
		else
			next->bytes -= page_cost(&next->pages[i]);
	}
	next->nr_pages = kept;
	for (size_t i = 0; i < old->nr_pages; i++) {
		struct snap_page *pg = &old->pages[i];
		if (map_test(s->need, pg->frame) || !pg->data || page_add(next, pg->frame, pg->data) == 0)
			continue;
		/* out of memory: the page's bytes at the new oldest are lost;
		 * restoring must not count on them, so RAM counts as written */
		free(pg->data);
		vm_ram_dirty(vm, vm->ram + pg->frame * SNAP_PAGE, 1);
	}
	for (size_t i = 0; i < old->nr_pages; i++)    /* moved or overridden */
		if (map_test(s->need, old->pages[i].frame))
			free(old->pages[i].data);
	for (size_t i = 0; i < next->nr_pages; i++)
		s->need[next->pages[i].frame / 64] = 0;
	old->nr_pages = 0;
	snap_free(old);
	s->bytes += next->bytes;
	snaps_remove(s, 0);
	if (s->ram_at > 0)
		s->ram_at--;
}

/* Never the one RAM is measured from (the one just taken): a later
 * snapshot cannot stand in for it, as the machine is before that one. */
static void trim_to_budget(struct snap_store *s)
{
	while (s->ram_at > 0 && s->bytes > s->budget)
		drop_oldest(s);
}

/* The history ends at a reset: RAM was zeroed, the engine made anew. */
static void forget_all(struct snap_store *s)
{
	for (size_t i = 0; i < s->nr; i++)
		snap_free(&s->snaps[i]);
	s->nr = 0;
	s->bytes = 0;
	s->ram_at = 0;
	s->boot = s->vm->nr_boots;
}

/* --- the interface ------------------------------------------------------------------ */

int snap_store_create(struct vm *vm, uint64_t budget_bytes, struct snap_store **out,
		      struct err *e)
{
	*out = NULL;
	if (!vm->engine->snap)
		return err_set(e, ENOTSUP, "reverse execution needs the emu engine (the %s engine "
			       "cannot take snapshots)", vm->engine->name);
	if (!vm->ram_dirty)
		return err_set(e, EINVAL, "the machine has no RAM to take snapshots of");
	struct snap_store *s = calloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ENOMEM, "out of memory for the snapshot store");
	s->vm = vm;
	s->budget = budget_bytes;
	s->boot = vm->nr_boots;
	s->need = calloc(map_words(vm), sizeof(uint64_t));
	s->done = calloc(map_words(vm), sizeof(uint64_t));
	if (!s->need || !s->done) {
		snap_store_destroy(s);
		return err_set(e, ENOMEM, "out of memory for the snapshot store");
	}
	pthread_mutex_init(&s->lock, NULL);
	*out = s;
	return 0;
}

void snap_store_destroy(struct snap_store *s)
{
	if (!s)
		return;
	forget_all(s);
	free(s->snaps);
	free(s->need);
	free(s->done);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Where a snapshot at icount goes: after every one at or before it. */
static size_t insert_pos(const struct snap_store *s, uint64_t icount)
{
	size_t i = s->nr;
	while (i > 0 && s->snaps[i - 1].icount > icount)
		i--;
	return i;
}

/* RAM is measured from snapshot `to` from now on: the pages listed
 * between it and the old reference count as written too. */
static void ram_measure_from(struct snap_store *s, size_t to)
{
	size_t lo = to < s->ram_at ? to : s->ram_at, hi = to < s->ram_at ? s->ram_at : to;
	for (size_t j = lo + 1; j <= hi; j++)
		for (size_t i = 0; i < s->snaps[j].nr_pages; i++)
			vm_ram_dirty(s->vm, s->vm->ram + s->snaps[j].pages[i].frame * SNAP_PAGE, 1);
	s->ram_at = to;
}

static int take_locked(struct snap_store *s, uint64_t icount, struct err *e)
{
	if (s->boot != s->vm->nr_boots)
		forget_all(s);
	if (s->nr > 0 && s->snaps[s->ram_at].icount > icount)
		return err_set(e, EINVAL, "a snapshot at instruction %" PRIu64 " cannot follow "
			       "the machine's state at %" PRIu64, icount, s->snaps[s->ram_at].icount);
	size_t at = insert_pos(s, icount);
	if (at > 0 && s->snaps[at - 1].icount == icount) {
		/* the same moment of the same execution: kept already */
		ram_measure_from(s, at - 1);
		return 0;
	}
	if (s->nr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		struct snap *p = realloc(s->snaps, cap * sizeof(*p));
		if (!p)
			return err_set(e, ENOMEM, "out of memory for the snapshot history");
		s->snaps = p;
		s->cap = cap;
	}
	struct snap sn = { .icount = icount };
	int r = state_save(s->vm, &sn, e);
	if (r == 0)
		r = ram_save(s, &sn, s->nr == 0, e);
	if (r < 0) {
		snap_free(&sn);
		return err_wrap(e, "taking a snapshot at instruction %" PRIu64, icount);
	}
	memmove(&s->snaps[at + 1], &s->snaps[at], (s->nr - at) * sizeof(s->snaps[0]));
	s->snaps[at] = sn;
	s->nr++;
	s->bytes += sn.bytes;
	s->ram_at = at;
	trim_to_budget(s);
	return 0;
}

void snap_set_budget(struct snap_store *s, uint64_t budget_bytes)
{
	pthread_mutex_lock(&s->lock);
	s->budget = budget_bytes;
	pthread_mutex_unlock(&s->lock);
}

int snap_take(struct snap_store *s, uint64_t icount, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int r = take_locked(s, icount, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

static int restore_locked(struct snap_store *s, uint64_t target, uint64_t *at, struct err *e)
{
	*at = UINT64_MAX;
	if (s->boot != s->vm->nr_boots)
		forget_all(s);
	if (s->nr == 0)
		return err_set(e, ENOENT, "no snapshot to go back to (the history is empty%s)",
			       s->vm->nr_boots > 1 ? "; a reset of the machine ends it" : "");
	if (s->snaps[0].icount > target)
		return err_set(e, ERANGE, "the history reaches back to instruction %" PRIu64
			       " only, not %" PRIu64, s->snaps[0].icount, target);
	size_t k = insert_pos(s, target) - 1;
	ram_restore(s, k);
	s->ram_at = k;
	int r = state_restore(s->vm, &s->snaps[k], e);
	if (r < 0)
		return err_wrap(e, "restoring the snapshot at %" PRIu64, s->snaps[k].icount);
	*at = s->snaps[k].icount;
	return 0;
}

int snap_restore(struct snap_store *s, uint64_t target, uint64_t *at, struct err *e)
{
	pthread_mutex_lock(&s->lock);
	int r = restore_locked(s, target, at, e);
	pthread_mutex_unlock(&s->lock);
	return r;
}

uint64_t snap_oldest(const struct snap_store *s)
{
	pthread_mutex_lock((pthread_mutex_t *)&s->lock);
	uint64_t v = s->nr ? s->snaps[0].icount : UINT64_MAX;
	pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
	return v;
}

uint64_t snap_newest(const struct snap_store *s)
{
	pthread_mutex_lock((pthread_mutex_t *)&s->lock);
	uint64_t v = s->nr ? s->snaps[s->nr - 1].icount : UINT64_MAX;
	pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
	return v;
}

size_t snap_count(const struct snap_store *s)
{
	pthread_mutex_lock((pthread_mutex_t *)&s->lock);
	size_t v = s->nr;
	pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
	return v;
}

uint64_t snap_bytes(const struct snap_store *s)
{
	pthread_mutex_lock((pthread_mutex_t *)&s->lock);
	uint64_t v = s->bytes;
	pthread_mutex_unlock((pthread_mutex_t *)&s->lock);
	return v;
}

/* RAM measured from a snapshot that goes is measured from the newest kept
 * one: it differs from that one by the pages the dropped ones list. */
void snap_forget_after(struct snap_store *s, uint64_t icount)
{
	pthread_mutex_lock(&s->lock);
	size_t keep = insert_pos(s, icount);
	if (keep > 0 && s->ram_at >= keep)
		ram_measure_from(s, keep - 1);
	for (size_t j = keep; j < s->nr; j++) {
		s->bytes -= s->snaps[j].bytes;
		snap_free(&s->snaps[j]);
	}
	if (s->nr > keep)
		s->nr = keep;
	pthread_mutex_unlock(&s->lock);
}
