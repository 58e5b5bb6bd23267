/* guests/kvmclock.c — kvmclock.elf: KVM's paravirtual clock told of a
 * debugger's pause. The guest enables kvmclock (MSR_KVM_SYSTEM_TIME_NEW
 * with its pvclock page), checks that the page carries no
 * PVCLOCK_GUEST_STOPPED, calls kc_stop (where gdb holds it with a
 * breakpoint, `stopped=1`, or nothing stops it, `stopped=0`), and checks
 * that the flag is there after a stop and absent without one. Where the
 * CPU offers no kvmclock (emu, a hypervisor other than KVM) it says SKIP
 * and passes. */
#include "guests/rt/io.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

#define KVM_CPUID_SIGNATURE       0x40000000u
#define KVM_CPUID_FEATURES        0x40000001u
#define KVM_FEATURE_CLOCKSOURCE2  (1u << 3)
#define MSR_KVM_SYSTEM_TIME_NEW   0x4b564d01u
#define PVCLOCK_GUEST_STOPPED     (1u << 1)
#define KC_UPDATE_SPINS           (1u << 20)

/* As KVM writes it (the pvclock ABI): one per vCPU, inside one page. */
struct pvclock_vcpu_time_info {
	uint32_t version;
	uint32_t pad0;
	uint64_t tsc_timestamp;
	uint64_t system_time;
	uint32_t tsc_to_system_mul;
	int8_t tsc_shift;
	uint8_t flags;
	uint8_t pad[2];
} __attribute__((packed));

static volatile struct pvclock_vcpu_time_info kc_clock __attribute__((aligned(64)));

/* gdb's breakpoint; the guest runs through it where nothing stops it */
__attribute__((noinline, noclone, used)) void kc_stop(void)
{
	__asm__ volatile("" ::: "memory");
}

static bool kvmclock_offered(void)
{
	uint32_t r[4];
	cpuid(KVM_CPUID_SIGNATURE, 0, r);
	bool kvm = r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x0000004d;  /* "KVMKVMKVM" */
	if (!kvm || r[0] < KVM_CPUID_FEATURES)
		return false;
	cpuid(KVM_CPUID_FEATURES, 0, r);
	return r[0] & KVM_FEATURE_CLOCKSOURCE2;
}

/* KVM fills the page at the vCPU's next entry after the MSR write: wait
 * for a version, bounded. */
static bool clock_written(void)
{
	for (uint32_t i = 0; i < KC_UPDATE_SPINS; i++) {
		if (kc_clock.version != 0)
			return true;
		cpu_relax();
	}
	return false;
}

int main(void)
{
	if (!kvmclock_offered()) {
		report_skip("kvmclock", "CPUID leaf 0x40000001 offers no KVM_FEATURE_CLOCKSOURCE2");
		return report_summary();
	}
	bool stopped = cmdline_u64("stopped", 1) != 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)(uintptr_t)&kc_clock | 1);
	if (!expect(clock_written(), "KVM wrote the pvclock page"))
		return report_summary();
	printf("kvmclock: flags 0x%x before kc_stop\n", kc_clock.flags);
	expect(!(kc_clock.flags & PVCLOCK_GUEST_STOPPED), "no PVCLOCK_GUEST_STOPPED before a stop");
	kc_stop();
	uint8_t flags = kc_clock.flags;
	printf("kvmclock: flags 0x%x after kc_stop\n", flags);
	if (stopped)
		expect(flags & PVCLOCK_GUEST_STOPPED, "PVCLOCK_GUEST_STOPPED after gdb held the vCPU");
	else
		expect(!(flags & PVCLOCK_GUEST_STOPPED), "no PVCLOCK_GUEST_STOPPED without a stop");
	return report_summary();
}
