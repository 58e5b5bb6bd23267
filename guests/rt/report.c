/* guests/rt/report.c — PASS/FAIL lines, counters, debug-exit port. */
#include "guests/rt/report.h"

#include <stdarg.h>

#include "guests/rt/io.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

static volatile uint32_t nr_checks, nr_failures;

static const char *base_name(const char *path)
{
	const char *b = path;

	for (const char *p = path; *p; p++)
		if (*p == '/')
			b = p + 1;
	return b;
}

static void count(bool ok)
{
	__atomic_add_fetch(&nr_checks, 1, __ATOMIC_RELAXED);
	if (!ok)
		__atomic_add_fetch(&nr_failures, 1, __ATOMIC_RELAXED);
}

bool report(bool ok, const char *name, const char *file, int line)
{
	count(ok);
	if (ok)
		printf("PASS: %s\n", name);
	else
		printf("FAIL: %s (%s:%d)\n", name, base_name(file), line);
	return ok;
}

/* Small values read best in decimal, addresses and masks in hex. */
static void fmt_u64(char *buf, uint64_t v)
{
	if (v < 0x10000)
		snprintf(buf, 24, "%lu", (unsigned long)v);
	else
		snprintf(buf, 24, "0x%lx", (unsigned long)v);
}

bool report_u64(uint64_t got, uint64_t expected, const char *name, const char *file, int line)
{
	char g[24], e[24];
	bool ok = got == expected;

	count(ok);
	if (ok) {
		printf("PASS: %s\n", name);
		return true;
	}
	fmt_u64(g, got);
	fmt_u64(e, expected);
	printf("FAIL: %s: got %s, expected %s (%s:%d)\n", name, g, e, base_name(file), line);
	return false;
}

bool report_str(const char *got, const char *expected, const char *name, const char *file, int line)
{
	bool ok = got && strcmp(got, expected) == 0;

	count(ok);
	if (ok)
		printf("PASS: %s\n", name);
	else
		printf("FAIL: %s: got \"%s\", expected \"%s\" (%s:%d)\n", name,
		       got ? got : "(null)", expected, base_name(file), line);
	return ok;
}

void report_skip(const char *name, const char *why)
{
	printf("SKIP: %s: %s\n", name, why);
}

unsigned report_failures(void)
{
	return nr_failures;
}

int report_summary(void)
{
	printf("SUMMARY: %u checks, %u failed\n", nr_checks, nr_failures);
	return nr_failures ? 1 : 0;
}

void rt_exit(uint32_t code)
{
	outl(RT_EXIT_PORT, code);
	/* no debug-exit device: stop here rather than run on */
	for (;;)
		__asm__ volatile("cli; hlt");
}

void rt_fail_now(const char *fmt, ...)
{
	char buf[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	count(false);
	printf("FAIL: %s\n", buf);
	rt_exit(1);
}
