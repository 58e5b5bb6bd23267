/* machine/snapshot.c — the snapshot store (see snapshot.h). */
#include "machine/snapshot.h"

#include <stdlib.h>

#include "machine/vm.h"

struct snap_store {
	struct vm *vm;
	uint64_t budget;
};

int snap_store_create(struct vm *vm, uint64_t budget_bytes, struct snap_store **out,
		      struct err *e)
{
	(void)vm;
	(void)budget_bytes;
	*out = NULL;
	return err_set(e, ENOSYS, "snapshots are not implemented yet");
}

void snap_store_destroy(struct snap_store *s)
{
	free(s);
}

int snap_take(struct snap_store *s, uint64_t icount, struct err *e)
{
	(void)s;
	(void)icount;
	return err_set(e, ENOSYS, "snapshots are not implemented yet");
}

int snap_restore(struct snap_store *s, uint64_t target, uint64_t *at, struct err *e)
{
	(void)s;
	(void)target;
	*at = UINT64_MAX;
	return err_set(e, ENOSYS, "snapshots are not implemented yet");
}

uint64_t snap_oldest(const struct snap_store *s) { (void)s; return UINT64_MAX; }
uint64_t snap_newest(const struct snap_store *s) { (void)s; return UINT64_MAX; }
size_t snap_count(const struct snap_store *s) { (void)s; return 0; }
uint64_t snap_bytes(const struct snap_store *s) { (void)s; return 0; }
void snap_forget_after(struct snap_store *s, uint64_t icount) { (void)s; (void)icount; }
