/* guests/rt/report.h — results and exit, the kvm-unit-tests way.
 * Each check prints one line on serial:
 *     PASS: <name>
 *     FAIL: <name>: got X, expected Y (file:line)
 *     SKIP: <name>: <why>
 * and rt_exit(v) writes v to the debug-exit port 0xf4 (vmdb and QEMU's
 * isa-debug-exit end with status (v << 1) | 1): 0 = pass (status 1),
 * 1 = fail (status 3). main()'s return value is passed to rt_exit. */
#ifndef RT_REPORT_H
#define RT_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#define RT_EXIT_PORT 0xf4

/* Report one check; returns ok. */
bool report(bool ok, const char *name, const char *file, int line);
bool report_u64(uint64_t got, uint64_t expected, const char *name, const char *file, int line);
bool report_str(const char *got, const char *expected, const char *name, const char *file, int line);
void report_skip(const char *name, const char *why);

#define expect(cond, name)             report(!!(cond), name, __FILE__, __LINE__)
#define expect_eq(got, expected, name) report_u64((uint64_t)(got), (uint64_t)(expected), name, __FILE__, __LINE__)
#define expect_str(got, expected, name) report_str(got, expected, name, __FILE__, __LINE__)

/* Print a summary; return the exit code: 0 all passed, 1 otherwise. */
int report_summary(void);
unsigned report_failures(void);

void rt_exit(uint32_t code) __attribute__((noreturn));

/* Print "FAIL: <message>" and exit with 1 at once (any CPU). */
void rt_fail_now(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
