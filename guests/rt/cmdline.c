/* guests/rt/cmdline.c — words are split in place in a private copy: each
 * word is NUL-terminated inside words[], the original stays in line[]. */
#include "guests/rt/cmdline.h"

#include <stddef.h>

#include "guests/rt/string.h"

static char line[RT_CMDLINE_MAX];
static char words[RT_CMDLINE_MAX];
static size_t words_len;

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool looks_like_kernel_path(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == '=')
			return s[i] == '/';
	return n >= 4 && strncmp(s + n - 4, ".elf", 4) == 0;
}

void cmdline_set(const char *s, bool skip_kernel_path)
{
	size_t n = 0, first;

	if (!s)
		s = "";
	while (is_space(*s))
		s++;
	for (first = 0; s[first] && !is_space(s[first]); first++)
		;
	if (skip_kernel_path && looks_like_kernel_path(s, first)) {
		s += first;
		while (is_space(*s))
			s++;
	}
	while (s[n] && n < RT_CMDLINE_MAX - 1)
		n++;
	memcpy(line, s, n);
	line[n] = 0;
	for (size_t i = 0; i <= n; i++)
		words[i] = is_space(line[i]) ? 0 : line[i];
	words_len = n;
}

const char *cmdline(void)
{
	return line;
}

/* Calls fn on each word until it returns non-NULL. */
static const char *each_word(const char *(*fn)(const char *w, const char *arg), const char *arg)
{
	for (size_t i = 0; i < words_len; i++) {
		if (!words[i] || (i && words[i - 1]))
			continue;
		const char *r = fn(&words[i], arg);
		if (r)
			return r;
	}
	return NULL;
}

static const char *match_key(const char *w, const char *key)
{
	size_t k = strlen(key);

	return strncmp(w, key, k) == 0 && w[k] == '=' ? w + k + 1 : NULL;
}

static const char *match_word(const char *w, const char *word)
{
	return strcmp(w, word) == 0 ? w : NULL;
}

const char *cmdline_get(const char *key)
{
	return each_word(match_key, key);
}

bool cmdline_has(const char *word)
{
	return each_word(match_word, word) != NULL;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

static int suffix_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	default: return -1;
	}
}

bool parse_u64(const char *s, uint64_t *out)
{
	unsigned base = 10;
	uint64_t v = 0;
	int shift = 0;

	if (!s || !*s)
		return false;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return false;
	}
	for (; *s; s++) {
		int d = digit_value(*s);
		if (d >= (int)base) {
			shift = suffix_shift(*s);
			if (shift < 0 || s[1])
				return false;
			break;
		}
		v = v * base + (unsigned)d;
	}
	*out = v << shift;
	return true;
}

uint64_t cmdline_u64(const char *key, uint64_t def)
{
	uint64_t v;

	return parse_u64(cmdline_get(key), &v) ? v : def;
}
