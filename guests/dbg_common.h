/* guests/dbg_common.h — what the dbg_*.c guests share: debug-register
 * access, a #DB handler that logs every exception (RIP, DR6, RFLAGS) and
 * the checks that compare the log with a case's expectation. Included by
 * exactly one .c per guest (static state). */
#ifndef GUESTS_DBG_COMMON_H
#define GUESTS_DBG_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define DBG_LOG_MAX 16

#define DEF_DR(n) \
	static inline uint64_t get_dr##n(void) { uint64_t v; __asm__ volatile("mov %%dr" #n ", %0" : "=r"(v)); return v; } \
	static inline void set_dr##n(uint64_t v) { __asm__ volatile("mov %0, %%dr" #n :: "r"(v) : "memory"); }
DEF_DR(0)
DEF_DR(1)
DEF_DR(2)
DEF_DR(3)
DEF_DR(6)
DEF_DR(7)
#undef DEF_DR

static inline void set_drn(unsigned n, uint64_t v)
{
	switch (n) {
	case 0: set_dr0(v); break;
	case 1: set_dr1(v); break;
	case 2: set_dr2(v); break;
	default: set_dr3(v); break;
	}
}

struct db_entry {
	uint64_t rip, dr6, rflags, rcx;
};

static volatile unsigned db_count;
static struct db_entry db_log[DBG_LOG_MAX];
/* handler policy: set RF in the frame (resume after an instruction
 * breakpoint), clear TF in the frame after this many #DBs */
static volatile bool db_set_rf;
static volatile unsigned db_tf_limit = DBG_LOG_MAX;

static void dbg_on_db(struct rt_frame *f)
{
	unsigned n = db_count;

	if (n < DBG_LOG_MAX)
		db_log[n] = (struct db_entry){ f->rip, get_dr6(), f->rflags, f->rcx };
	db_count = n + 1;
	set_dr6(0);                     /* DR6 is sticky: the handler clears it */
	if (db_set_rf)
		f->rflags |= RFLAGS_RF;
	if (n + 1 >= db_tf_limit)
		f->rflags &= ~RFLAGS_TF;    /* a runaway trace stops here */
}

static void db_reset(void)
{
	db_count = 0;
	db_set_rf = false;
	db_tf_limit = DBG_LOG_MAX;
	set_dr7(DR7_INIT);
	set_dr6(0);
}

/* Compare the log with `want` (n entries of RIP and DR6), in order. */
static void db_expect(const char *name, const struct db_entry *want, unsigned n)
{
	char what[96];

	snprintf(what, sizeof(what), "%s: number of #DB", name);
	expect_eq(db_count, n, what);
	for (unsigned i = 0; i < n && i < db_count && i < DBG_LOG_MAX; i++) {
		snprintf(what, sizeof(what), "%s: #DB %u RIP", name, i + 1);
		expect_eq(db_log[i].rip, want[i].rip, what);
		snprintf(what, sizeof(what), "%s: #DB %u DR6", name, i + 1);
		expect_eq(db_log[i].dr6, want[i].dr6, what);
	}
}

/* `kvm_host` on the command line: this host's nested KVM, which emulates
 * guest ring 0 itself. `why` (NULL = the group runs there) says what it
 * gets wrong, measured with these guests. */
static bool on_kvm_host(const char *group, const char *why)
{
	if (!why || !cmdline_has("kvm_host"))
		return false;
	report_skip(group, why);
	return true;
}

/* `only=NAME` runs one group. */
static bool group_wanted(const char *group)
{
	const char *only = cmdline_get("only");
	size_t n = 0;

	if (!only)
		return true;
	while (only[n] && only[n] != ' ')
		n++;
	for (size_t i = 0; i < n; i++)
		if (!group[i] || group[i] != only[i])
			return false;
	return group[n] == '\0';
}

/* A group of checks, run unless `only=` names another or this host's KVM
 * cannot pass it (kvm_skip says why; NULL: it can). */
struct dbg_group {
	const char *name;
	void (*run)(void);
	const char *kvm_skip;
};

/* The guest's main: every wanted group with #DB caught, then the verdict. */
static inline int run_groups(const struct dbg_group *groups, unsigned n)
{
	cli();
	idt_set_handler(X86_DB, dbg_on_db);
	for (unsigned i = 0; i < n; i++) {
		if (!group_wanted(groups[i].name) || on_kvm_host(groups[i].name, groups[i].kvm_skip))
			continue;
		printf("group %s\n", groups[i].name);
		groups[i].run();
	}
	db_reset();
	return report_summary();
}

#endif
