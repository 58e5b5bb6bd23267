/* util/err.h — the one error convention: a function that can fail returns 0
 * or a negative errno, and fills a struct err with words a user understands.
 * Only main() turns an error into an exit status. */
#ifndef VMDB_ERR_H
#define VMDB_ERR_H

#include <errno.h>

struct err {
	int code;          /* positive errno, 0 = no error */
	char msg[512];
};

/* Record an error and return -code, so callers can write
 *     return err_set(e, ENOENT, "cannot open %s", path);
 * e may be NULL. */
int err_set(struct err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("loading kernel: ..."). */
int err_wrap(struct err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define must_check __attribute__((warn_unused_result))

#endif
