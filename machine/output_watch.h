/* machine/output_watch.h — a pattern the guest's serial output is matched
 * against as it is sent (the debugger's `monitor catch output`). Owns the
 * pattern and the line being sent: each byte the UART transmits extends
 * the line, a newline starts the next one, and the first byte with which
 * the line so far matches (POSIX extended regex) leaves the match pending
 * for the vCPU whose port write sent it (vm.c takes it after the write and
 * tells the debug core). One match per line. */
#ifndef VMDB_OUTPUT_WATCH_H
#define VMDB_OUTPUT_WATCH_H

#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

#define OUTPUT_WATCH_LINE 256      /* longer lines are matched on their start */

struct output_watch {
	pthread_mutex_t lock;
	bool on;                       /* read without the lock: a hint */
	bool pending;                  /* a match not yet taken (atomic reads) */
	regex_t re;
	char pattern[128];
	char line[OUTPUT_WATCH_LINE];  /* the line being sent, NUL-terminated */
	size_t len;
	bool line_matched;
	char matched[OUTPUT_WATCH_LINE];   /* the line as it was at the match */
};

void output_watch_init(struct output_watch *w);
void output_watch_destroy(struct output_watch *w);
/* Watch for pattern instead of what was watched. -EINVAL with the regex
 * compiler's words for a pattern it refuses. */
int output_watch_set(struct output_watch *w, const char *pattern, struct err *e) must_check;
/* Watch for nothing. */
void output_watch_clear(struct output_watch *w);
/* The pattern watched for; false when none. */
bool output_watch_pattern(struct output_watch *w, char *out, size_t size);
/* One byte the UART sends (any thread). */
void output_watch_byte(struct output_watch *w, uint8_t byte);
/* The pending match, if any: the line as it matched, into out. */
bool output_watch_take(struct output_watch *w, char *out, size_t size);

#endif
