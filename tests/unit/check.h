/* tests/unit/check.h — the assertion shared by the C unit tests: count
 * passes, print "FAIL file:line: why" for each failure, and end with the
 * runner's line "NAME: N passed, M failed" (check_summary). One program
 * per test file, so the counters may live here. */
#ifndef VMDB_TEST_CHECK_H
#define VMDB_TEST_CHECK_H

#include <inttypes.h>
#include <stdint.h>
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

/* Equal as 64-bit values; on failure both are printed in hex, named by
 * `what` (CHECK_EQ_MSG) or by the expression (CHECK_EQ). */
#define CHECK_EQ_MSG(got, want, what)                                          \
	check_eq(__FILE__, __LINE__, what, (uint64_t)(got), (uint64_t)(want))
#define CHECK_EQ(got, want) CHECK_EQ_MSG(got, want, #got)

static inline void check_eq(const char *file, int line, const char *what, uint64_t got,
			    uint64_t want)
{
	CHECK(got == want, "%s: got 0x%" PRIx64 ", expected 0x%" PRIx64 " (%s:%d)", what, got,
	      want, file, line);
}

/* Print the summary line; the exit status for main(). */
static inline int check_summary(const char *name)
{
	printf("%s: %u passed, %u failed\n", name, passed, failed);
	return failed ? 1 : 0;
}

#endif
