/* tests/unit/check.h — the assertion shared by the C unit tests: count
 * passes, print "FAIL file:line: why" for each failure, and end with the
 * runner's line "NAME: N passed, M failed" (check_summary). One program
 * per test file, so the counters may live here. */
#ifndef VMDB_TEST_CHECK_H
#define VMDB_TEST_CHECK_H

#include <stdio.h>

static unsigned passed, failed;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (cond) {                                                    \
			passed++;                                              \
		} else {                                                       \
			failed++;                                              \
			printf("FAIL %s:%d: ", __FILE__, __LINE__);            \
			printf(__VA_ARGS__);                                   \
			printf("\n");                                          \
		}                                                              \
	} while (0)

/* Print the summary line; the exit status for main(). */
static inline int check_summary(const char *name)
{
	printf("%s: %u passed, %u failed\n", name, passed, failed);
	return failed ? 1 : 0;
}

#endif
