#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int err_set(struct err *e, int code, const char *fmt, ...)
{
	if (code <= 0)
		code = EIO;
	if (e) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
		va_end(ap);
		e->code = code;
	}
	return -code;
}

int err_wrap(struct err *e, const char *fmt, ...)
{
	if (!e)
		return -EIO;
	char old[sizeof(e->msg)];
	memcpy(old, e->msg, sizeof(old));
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	size_t used = n < 0 ? 0 : (size_t)n;
	if (used + 2 < sizeof(e->msg)) {
		memcpy(e->msg + used, ": ", 2);
		used += 2;
		size_t room = sizeof(e->msg) - used - 1;
		size_t len = strnlen(old, room);
		memcpy(e->msg + used, old, len);
		e->msg[used + len] = '\0';
	}
	return -(e->code ? e->code : EIO);
}
