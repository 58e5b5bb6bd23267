/* guests/smp_rendezvous.c — smp_rendezvous.elf: two CPUs meet as Linux
 * makes them meet. Each round the BSP wakes the AP with an IPI (as a
 * stopper thread is woken) and both run stop_machine()'s multi_cpu_stop:
 * every CPU acks each state, spinning with PAUSE, interrupts off from the
 * second state on, the BSP's work done while both are held; then the BSP
 * calls a function on the AP and waits for it, as
 * smp_call_function_single(wait) does. Both CPUs take an APIC timer at
 * 250 Hz meanwhile. Every interrupt entry begins as Linux's do, ENDBR64
 * then CLAC where CPUID has SMAP: on kvm here each is an exit to vmdb's
 * fallback, taken while the other vCPU spins in ring 0. Checked from
 * inside: every wait ends within a bound (else the states each CPU saw),
 * the work ran once per round, every call reached the AP. Needs 2 CPUs;
 * `rounds=N` (default 100). */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/time.h"

#define VEC_CALL        0xf8        /* call-function IPI */
#define TIMER_HZ        250         /* Linux's usual tick */
#define WAIT_US         20000000ull /* 20 s: more than any emulated spin needs */
#define CPUID7_EBX_SMAP (1u << 20)

enum ms_state { MS_NONE, MS_PREPARE, MS_DISABLE_IRQ, MS_RUN, MS_EXIT };

static volatile unsigned ms_state, ms_ack;
static volatile unsigned round_posted, round_seen_by_ap, work_runs;
static volatile unsigned call_pending, calls_done;
static volatile bool stalled;
static volatile unsigned stall_state[2];

/* --- interrupt entries as Linux's: ENDBR64, CLAC, then the runtime's stub -------- */

uint64_t rdv_timer_next, rdv_call_next;
void rdv_timer_entry(void);
void rdv_call_entry(void);
__asm__(".text\n"
	".globl rdv_timer_entry\nrdv_timer_entry:\n\tendbr64\n\tclac\n\tjmp *rdv_timer_next(%rip)\n"
	".globl rdv_call_entry\nrdv_call_entry:\n\tendbr64\n\tclac\n\tjmp *rdv_call_next(%rip)\n");

/* Point the gate of vector at entry; *next gets its old target. */
static void gate_through(uint8_t vector, void (*entry)(void), uint64_t *next)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	volatile uint32_t *gate = (volatile uint32_t *)(uintptr_t)(idtr.base + vector * 16u);
	*next = (gate[0] & 0xffff) | (gate[1] & 0xffff0000u) | (uint64_t)gate[2] << 32;
	uint64_t to = (uint64_t)(uintptr_t)entry;
	gate[0] = (gate[0] & 0xffff0000u) | (uint32_t)(to & 0xffff);
	gate[1] = (gate[1] & 0xffffu) | (uint32_t)(to & 0xffff0000u);
	gate[2] = (uint32_t)(to >> 32);
}

static void on_call(struct rt_frame *f)
{
	(void)f;
	if (call_pending) {
		calls_done++;
		__atomic_store_n(&call_pending, 0, __ATOMIC_RELEASE);
	}
	apic_eoi();
}

/* --- stop_machine's rendezvous ------------------------------------------------ */

static void ack_state(void)
{
	if (__atomic_sub_fetch(&ms_ack, 1, __ATOMIC_SEQ_CST) == 0) {
		ms_ack = 2;
		__atomic_store_n(&ms_state, ms_state + 1, __ATOMIC_SEQ_CST);
	}
}

/* false when the other CPU never came: stalled says where each was */
static bool multi_cpu_stop(unsigned cpu)
{
	unsigned cur = MS_NONE;
	uint64_t deadline = time_now_us() + WAIT_US;
	do {
		__asm__ volatile("pause");
		unsigned now = __atomic_load_n(&ms_state, __ATOMIC_ACQUIRE);
		if (now != cur) {
			cur = now;
			if (cur == MS_DISABLE_IRQ)
				__asm__ volatile("cli");
			else if (cur == MS_RUN && cpu == 0)
				work_runs++;
			ack_state();
		} else if (stalled || time_now_us() > deadline) {
			stall_state[cpu] = cur;
			stalled = true;
			break;
		}
	} while (cur != MS_EXIT);
	__asm__ volatile("sti");
	return !stalled;
}

static bool wait_cleared(volatile unsigned *flag)
{
	uint64_t deadline = time_now_us() + WAIT_US;
	while (__atomic_load_n(flag, __ATOMIC_ACQUIRE))
		if (time_now_us() > deadline)
			return false;
		else
			__asm__ volatile("pause");
	return true;
}

static void rendezvous(void *arg)
{
	unsigned rounds = *(const unsigned *)arg, cpu = rt_cpu_id();
	if (cpu > 1)
		return;
	smp_timer_start(TIMER_HZ);
	for (unsigned r = 1; r <= rounds && !stalled; r++) {
		if (cpu == 1) {
			/* the stopper thread: asleep until woken for the next round */
			while (round_posted < r && !stalled)
				__asm__ volatile("sti; hlt");
			round_seen_by_ap = r;
			multi_cpu_stop(1);
			continue;
		}
		ms_ack = 2;
		__atomic_store_n(&ms_state, MS_PREPARE, __ATOMIC_SEQ_CST);
		__atomic_store_n(&round_posted, r, __ATOMIC_RELEASE);
		apic_send_ipi(rt_cpus[1].apic_id, VEC_CALL);
		if (!multi_cpu_stop(0))
			break;
		__atomic_store_n(&call_pending, 1, __ATOMIC_RELEASE);
		apic_send_ipi(rt_cpus[1].apic_id, VEC_CALL);
		if (!wait_cleared(&call_pending)) {
			stalled = true;
			stall_state[0] = stall_state[1] = ~0u;
		}
	}
	apic_timer_stop();
}

int main(void)
{
	unsigned rounds = (unsigned)cmdline_u64("rounds", 100);
	uint32_t r[4];
	cpuid(7, 0, r);
	bool clac = r[1] & CPUID7_EBX_SMAP;
	idt_set_handler(VEC_CALL, on_call);
	if (clac) {
		gate_through(RT_VEC_TIMER, rdv_timer_entry, &rdv_timer_next);
		gate_through(VEC_CALL, rdv_call_entry, &rdv_call_next);
	}
	printf("smp_rendezvous: %u rounds, interrupt entries %s\n", rounds,
	       clac ? "ENDBR64, CLAC" : "plain");
	if (!time_calibrate())
		rt_fail_now("no time base");
	if (smp_start_aps(2, 1000) < 2) {
		report_skip("stop_machine rendezvous", "needs 2 CPUs");
		return report_summary();
	}
	smp_run_on_all(rendezvous, &rounds);
	if (stalled)
		printf("stalled: cpu0 in state %u, cpu1 in state %u; round %u posted, %u reached "
		       "the AP, work ran %u times, %u calls done\n", stall_state[0], stall_state[1],
		       round_posted, round_seen_by_ap, work_runs, calls_done);
	expect(!stalled, "every rendezvous and call ended in time");
	expect_eq(work_runs, rounds, "the work ran once per round, both CPUs held");
	expect_eq(calls_done, rounds, "every call reached the AP and was waited for");
	expect(rt_cpus[0].ticks > 0 && rt_cpus[1].ticks > 0, "both CPUs took timer interrupts");
	printf("ticks: cpu0 %lu, cpu1 %lu\n", rt_cpus[0].ticks, rt_cpus[1].ticks);
	return report_summary();
}
