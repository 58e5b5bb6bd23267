/* gdbserver/mon_catch.c — `monitor catch`: exception vectors (at their
 * handlers), port, MSR and control-register accesses (after the
 * instruction) and a pattern in the serial output (after the write that
 * completes it), added up until `catch off`; alone it lists them. */
#include "gdbserver/monitor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void catch_list(struct gdb_server *s)
{
	uint32_t mask = debug_catch_mask(s->dbg);
	char pattern[256];
	if (debug_catch_output_pattern(s->dbg, pattern, sizeof(pattern)))
		mon_print(s, "serial output matching /%s/\n", pattern);
	if (debug_catch_access_count(s->dbg)) {
		char text[1024];
		debug_catch_access_describe(s->dbg, text, sizeof(text));
		mon_print(s, "%s", text);
	}
	if (!mask) {
		mon_print(s, "no exceptions caught\n");
		return;
	}
	for (unsigned v = 0; v < 32; v++) {
		char text[1024];
		if (!(mask & (1u << v)))
			continue;
		debug_catch_describe(s->dbg, v, text, sizeof(text));
		mon_print(s, "%s", text);
	}
}

/* "N" or "N-M" within max. */
static int range_of(const char *word, uint64_t max, uint32_t *first, uint32_t *last)
{
	char low[32];
	const char *dash = strchr(word, '-');
	uint64_t a, b;
	size_t n = dash ? (size_t)(dash - word) : strlen(word);
	if (n == 0 || n >= sizeof(low))
		return -EINVAL;
	memcpy(low, word, n);
	low[n] = '\0';
	if (mon_number(low, max, &a) < 0 || mon_number(dash ? dash + 1 : low, max, &b) < 0 || b < a)
		return -EINVAL;
	*first = (uint32_t)a;
	*last = (uint32_t)b;
	return 0;
}

/* catch io PORT[-PORT] [r|w], catch msr N[-N] [r|w], catch cr N: added
 * to what is caught already. */
static int catch_access(struct gdb_server *s, enum engine_access_kind kind, const char *arg)
{
	static const uint64_t max[ENGINE_ACCESS_KINDS] = { 0xffff, UINT32_MAX, 15 };
	char what[40], dir[4], extra[2];
	uint32_t first, last;
	struct err e = { 0 };
	int words = sscanf(arg, "%39s %3s %1s", what, dir, extra);
	if (words < 1 || words > 2 || range_of(what, max[kind], &first, &last) < 0)
		return -EINVAL;
	bool read = true, write = true;
	if (words == 2 && strcmp(dir, "r") == 0)
		write = false;
	else if (words == 2 && strcmp(dir, "w") == 0)
		read = false;
	else if (words == 2 && strcmp(dir, "rw") != 0)
		return -EINVAL;
	if (kind == ENGINE_ACCESS_CR) {
		if (!write)
			return -EINVAL;
		read = false;          /* control registers: writes only */
	}
	if (debug_catch_access_add(s->dbg, kind, first, last, read, write, &e) < 0) {
		mon_print(s, "monitor catch: %s\n", e.msg);
		return 0;
	}
	catch_list(s);
	return 0;
}

/* catch [off | VEC... | io ... | msr ... | cr ...]: added to what is
 * caught already. */
/* catch output REGEX (one pair of double quotes around it is dropped),
 * catch output off. */
static int catch_output(struct gdb_server *s, const char *arg)
{
	char pattern[256];
	struct err e = { 0 };
	size_t n = strlen(arg);
	if (n >= 2 && arg[0] == '"' && arg[n - 1] == '"')
		snprintf(pattern, sizeof(pattern), "%.*s", (int)(n - 2), arg + 1);
	else
		snprintf(pattern, sizeof(pattern), "%s", arg);
	if (strcmp(pattern, "off") == 0)
		debug_catch_output_clear(s->dbg);
	else if (debug_catch_output_set(s->dbg, pattern, &e) < 0) {
		mon_print(s, "monitor catch output: %s\n", e.msg);
		return 0;
	}
	catch_list(s);
	return 0;
}

int mon_catch(struct gdb_server *s, const char *arg)
{
	uint32_t mask = debug_catch_mask(s->dbg);
	char words[256];
	struct err e = { 0 };

	if (strncmp(arg, "output ", 7) == 0)
		return catch_output(s, arg + 7);
	if (strncmp(arg, "io ", 3) == 0)
		return catch_access(s, ENGINE_ACCESS_IO, arg + 3);
	if (strncmp(arg, "msr ", 4) == 0)
		return catch_access(s, ENGINE_ACCESS_MSR, arg + 4);
	if (strncmp(arg, "cr ", 3) == 0)
		return catch_access(s, ENGINE_ACCESS_CR, arg + 3);
	if (strcmp(arg, "off") == 0) {
		mask = 0;
		debug_catch_access_clear(s->dbg);
		debug_catch_output_clear(s->dbg);
	} else if (arg[0]) {
		snprintf(words, sizeof(words), "%s", arg);
		for (char *save, *w = strtok_r(words, " ,", &save); w; w = strtok_r(NULL, " ,", &save)) {
			int v = debug_vector_parse(w);
			if (v < 0) {
				mon_print(s, "monitor catch: '%s' is not an exception vector (0-31, or a "
					  "name such as pf, gp, ud, de)\n", w);
				return 0;
			}
			mask |= 1u << v;
		}
	}
	if (debug_catch_set(s->dbg, mask, &e) < 0) {
		mon_print(s, "monitor catch: %s\n", e.msg);
		return 0;
	}
	catch_list(s);
	return 0;
}
