/* machine/linux_cmdline.c — the user's command line plus the engine's
 * parameters for Linux (see linux_cmdline.h). */
#include "machine/linux_cmdline.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "machine/vm.h"

#define INIT_ARGS_MARK " -- "

static size_t word_len(const char *s)
{
	return strcspn(s, " ");
}

static size_t name_len(const char *word, size_t len)
{
	const char *eq = memchr(word, '=', len);
	return eq ? (size_t)(eq - word) : len;
}

/* Whether the kernel's part of line has a parameter named like word. */
static bool has_param(const char *line, size_t line_len, const char *word, size_t len)
{
	size_t name = name_len(word, len);
	for (size_t i = 0; i < line_len;) {
		size_t n = word_len(line + i);
		if (n > line_len - i)
			n = line_len - i;
		if (n && name_len(line + i, n) == name && memcmp(line + i, word, name) == 0)
			return true;
		i += n + 1;
	}
	return false;
}

int linux_cmdline_compose(const char *user, const char *params, char *out, size_t max)
{
	const char *mark = strstr(user, INIT_ARGS_MARK);
	size_t kernel_len = mark ? (size_t)(mark - user) : strlen(user);
	size_t len = kernel_len;
	int added = 0;
	memcpy(out, user, kernel_len);
	for (const char *p = params; *p;) {
		size_t n = word_len(p);
		if (n && !has_param(user, kernel_len, p, n)) {
			bool space = len > 0;
			if (len + space + n > max)
				goto no_room;
			if (space)
				out[len++] = ' ';
			memcpy(out + len, p, n);
			len += n;
			added++;
		}
		p += n;
		p += *p == ' ';
	}
	size_t rest = strlen(user) - kernel_len;
	if (len + rest > max)
		goto no_room;
	memcpy(out + len, user + kernel_len, rest + 1);
	return added;
no_room:
	snprintf(out, max + 1, "%s", user);
	return -1;
}

void linux_cmdline_build(struct vm *vm, char *out, size_t max)
{
	const char *user = vm->cfg.cmdline ? vm->cfg.cmdline : "";
	const char *why = NULL;
	const char *params = vm->engine->vm->linux_params ? vm->engine->vm->linux_params(vm, &why)
							   : NULL;
	int added = linux_cmdline_compose(user, params ? params : "", out, max);
	if (vm->nr_boots > 1 || !params)
		return;
	if (added > 0)
		fprintf(stderr, "vmdb: kernel command line: added \"%s\" (%s)\n", params,
			why ? why : "this engine needs it");
	else if (added < 0)
		fprintf(stderr, "vmdb: kernel command line: no room to add \"%s\" (%s)\n", params,
			why ? why : "this engine needs it");
}
