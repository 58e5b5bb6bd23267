#include "machine/output_watch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void output_watch_init(struct output_watch *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
}

static void forget_locked(struct output_watch *w)
{
	if (w->on)
		regfree(&w->re);
	__atomic_store_n(&w->on, false, __ATOMIC_RELEASE);
	__atomic_store_n(&w->pending, false, __ATOMIC_RELEASE);
	w->pattern[0] = '\0';
}

void output_watch_destroy(struct output_watch *w)
{
	output_watch_clear(w);
	pthread_mutex_destroy(&w->lock);
}

int output_watch_set(struct output_watch *w, const char *pattern, struct err *e)
{
	regex_t re;
	if (!pattern[0])
		return err_set(e, EINVAL, "an empty pattern");
	if (strlen(pattern) >= sizeof(w->pattern))
		return err_set(e, EINVAL, "the pattern is longer than %zu characters",
			       sizeof(w->pattern) - 1);
	int r = regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB);
	if (r != 0) {
		char why[128];
		regerror(r, &re, why, sizeof(why));
		return err_set(e, EINVAL, "'%s' is not a regular expression: %s", pattern, why);
	}
	pthread_mutex_lock(&w->lock);
	forget_locked(w);
	w->re = re;
	snprintf(w->pattern, sizeof(w->pattern), "%s", pattern);
	w->line_matched = false;     /* the line being sent may match from now on */
	__atomic_store_n(&w->on, true, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void output_watch_clear(struct output_watch *w)
{
	pthread_mutex_lock(&w->lock);
	forget_locked(w);
	pthread_mutex_unlock(&w->lock);
}

bool output_watch_pattern(struct output_watch *w, char *out, size_t size)
{
	pthread_mutex_lock(&w->lock);
	bool on = w->on;
	snprintf(out, size, "%s", w->pattern);
	pthread_mutex_unlock(&w->lock);
	return on;
}

/* The line is kept even while nothing is watched: a pattern set in the
 * middle of a line sees all of it. */
void output_watch_byte(struct output_watch *w, uint8_t byte)
{
	pthread_mutex_lock(&w->lock);
	if (byte == '\n') {
		w->len = 0;
		w->line_matched = false;
	} else if (byte != '\r' && w->len + 1 < sizeof(w->line)) {
		w->line[w->len++] = (char)byte;
	}
	w->line[w->len] = '\0';
	if (w->on && !w->line_matched && byte != '\n' && regexec(&w->re, w->line, 0, NULL, 0) == 0) {
		w->line_matched = true;
		memcpy(w->matched, w->line, w->len + 1);
		__atomic_store_n(&w->pending, true, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&w->lock);
}

bool output_watch_take(struct output_watch *w, char *out, size_t size)
{
	if (!__atomic_load_n(&w->pending, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&w->lock);
	bool pending = w->pending;
	if (pending)
		snprintf(out, size, "%s", w->matched);
	__atomic_store_n(&w->pending, false, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->lock);
	return pending;
}
