/* tests/unit/kvm_msr_test.c — the KVM engine's MSR catches without
 * /dev/kvm: which filter ranges deny which MSRs in which direction
 * (kvm_msr_deny_build), and what check_access refuses, in words, on a
 * host with or without KVM's MSR filter. */
#include <stdlib.h>
#include <string.h>

#include "engine/kvm/kvm.h"
#include "tests/unit/check.h"

static struct engine_access_filter filter_of(const struct engine_access_rule *rules, unsigned n)
{
	struct engine_access_filter f;
	memset(&f, 0, sizeof(f));
	for (unsigned i = 0; i < n; i++)
		f.rule[f.nr++] = rules[i];
	return f;
}

static void check_range(const struct kvm_msr_deny *d, unsigned i, uint32_t base, uint32_t n,
			uint32_t flags)
{
	CHECK(i < d->nr, "range %u missing (%u ranges)", i, d->nr);
	if (i >= d->nr)
		return;
	CHECK_EQ_MSG(d->range[i].base, base, "base");
	CHECK_EQ_MSG(d->range[i].nmsrs, n, "nmsrs");
	CHECK_EQ_MSG(d->range[i].flags, flags, "flags");
}

#define R KVM_MSR_FILTER_READ
#define W KVM_MSR_FILTER_WRITE

/* Only MSR rules make ranges, one per rule and direction set. */
static void test_directions(void)
{
	const struct engine_access_rule rules[] = {
		{ .kind = ENGINE_ACCESS_IO, .read = true, .write = true, .first = 0x70, .last = 0x71 },
		{ .kind = ENGINE_ACCESS_MSR, .read = true, .first = 0xc0000081, .last = 0xc0000081 },
		{ .kind = ENGINE_ACCESS_MSR, .write = true, .first = 0x10, .last = 0x11 },
		{ .kind = ENGINE_ACCESS_MSR, .read = true, .write = true, .first = 0x1b, .last = 0x1b },
	};
	struct engine_access_filter f = filter_of(rules, 4);
	struct kvm_msr_deny d;
	struct err e = { 0 };
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), 0);
	CHECK_EQ(d.nr, 3);
	check_range(&d, 0, 0xc0000081, 1, R);
	check_range(&d, 1, 0x10, 2, W);
	check_range(&d, 2, 0x1b, 1, R | W);

	f = filter_of(rules, 1);             /* no MSR catch: no filter at all */
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), 0);
	CHECK_EQ(d.nr, 0);
}

/* A rule wider than one bitmap takes several ranges; the filter has 16. */
static void test_wide(void)
{
	const uint32_t span = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;
	struct engine_access_rule rule = { .kind = ENGINE_ACCESS_MSR, .write = true,
					   .first = 0xc0000000, .last = 0xc0000000 + span };
	struct engine_access_filter f = filter_of(&rule, 1);
	struct kvm_msr_deny d;
	struct err e = { 0 };
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), 0);
	CHECK_EQ(d.nr, 2);
	check_range(&d, 0, 0xc0000000, span, W);
	check_range(&d, 1, 0xc0000000 + span, 1, W);

	rule = (struct engine_access_rule){ .kind = ENGINE_ACCESS_MSR, .read = true,
					    .first = 0x40000000,
					    .last = 0x40000000 + 16 * span - 1 };
	f = filter_of(&rule, 1);
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), 0);
	CHECK_EQ(d.nr, 16);
	check_range(&d, 15, 0x40000000 + 15 * span, span, R);
	rule.last++;
	f = filter_of(&rule, 1);
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), -ENOSPC);
	CHECK(strstr(e.msg, "holds 16 ranges of at most 12288 MSRs"), "%s", e.msg);

	rule = (struct engine_access_rule){ .kind = ENGINE_ACCESS_MSR, .read = true,
					    .first = 0, .last = UINT32_MAX };
	f = filter_of(&rule, 1);
	CHECK(kvm_msr_deny_build(&f, &d, &e) < 0, "the whole MSR space fits no filter");
}

/* KVM never filters the x2APIC MSRs: a catch touching them is refused. */
static void test_x2apic(void)
{
	struct engine_access_rule rule = { .kind = ENGINE_ACCESS_MSR, .read = true,
					   .first = 0x8ff, .last = 0x900 };
	struct engine_access_filter f = filter_of(&rule, 1);
	struct kvm_msr_deny d;
	struct err e = { 0 };
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), -ENOTSUP);
	CHECK(strstr(e.msg, "cannot catch MSRs 0x8ff-0x900: KVM's MSR filter never covers the "
			    "x2APIC MSRs (0x800-0x8ff)"), "%s", e.msg);
	rule.first = rule.last = 0x7ff;
	f = filter_of(&rule, 1);
	CHECK_EQ(kvm_msr_deny_build(&f, &d, &e), 0);
}

/* check_access: CR never, MSR only where the VM's KVM exits for it. */
static void test_check_access(void)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct kvm_vm_state *kvm = calloc(1, sizeof(*kvm));
	if (!vm || !kvm) {
		CHECK(false, "out of memory");
		free(vm);
		free(kvm);
		return;
	}
	vm->engine_vm = kvm;
	struct engine_access_rule rules[] = {
		{ .kind = ENGINE_ACCESS_IO, .write = true, .first = 0x80, .last = 0x80 },
		{ .kind = ENGINE_ACCESS_MSR, .read = true, .first = 0xc0000081, .last = 0xc0000081 },
		{ .kind = ENGINE_ACCESS_CR, .write = true, .first = 4, .last = 4 },
	};
	struct err e = { 0 };
	struct engine_access_filter f = filter_of(rules, 1);
	CHECK_EQ(kvm_op_check_access(vm, &f, &e), 0);
	f = filter_of(rules, 2);
	CHECK_EQ(kvm_op_check_access(vm, &f, &e), -ENOTSUP);
	CHECK(strstr(e.msg, "cannot catch MSR accesses here: host KVM has no MSR filter"), "%s",
	      e.msg);
	kvm->msr.exits = true;
	CHECK_EQ(kvm_op_check_access(vm, &f, &e), 0);
	f = filter_of(rules, 3);
	CHECK_EQ(kvm_op_check_access(vm, &f, &e), -ENOTSUP);
	CHECK(strstr(e.msg, "cannot catch CR accesses here: KVM has no CR-write exit"), "%s", e.msg);
	free(kvm);
	free(vm);
}

int main(void)
{
	test_directions();
	test_wide();
	test_x2apic();
	test_check_access();
	return check_summary("kvm_msr_test");
}
