/* guests/snap_work.c — snap_work.elf, work for whole-machine snapshots
 * (tests/test_snapshot.py): every CPU takes its APIC timer at 2 kHz of
 * guest time and fills its own 256 KiB buffer round after round from a
 * seed that mixes in the ticks it took so far, then reads it back against
 * the sum it computed while filling (a page of RAM put back wrong fails
 * here). The BSP prints a line per round and keeps the round number in the
 * UART's scratch register, reading the previous one back first (a UART
 * put back wrong fails here). rounds=N (default 40), then the summary. */
#include "guests/rt/cmdline.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define SNAP_HZ         2000
#define SNAP_BUF        (256 * 1024 / 8)     /* 64-bit words per CPU */
#define SNAP_MAX_CPUS   8
#define UART_SCR        0x3ff
#define SNAP_AP_TIMEOUT_MS 10000

static uint64_t snap_buf[SNAP_MAX_CPUS][SNAP_BUF] __attribute__((aligned(4096)));
static volatile uint64_t snap_sums[SNAP_MAX_CPUS];
static volatile unsigned snap_bad[SNAP_MAX_CPUS];
static uint64_t snap_rounds;

/* One round: fill from the seed (an LCG), then check. */
static uint64_t snap_round(uint64_t *buf, uint64_t seed)
{
	uint64_t x = seed | 1, sum = 0;
	for (unsigned i = 0; i < SNAP_BUF; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		buf[i] = x;
		sum += x ^ i;
	}
	uint64_t again = 0;
	for (unsigned i = 0; i < SNAP_BUF; i++)
		again += buf[i] ^ i;
	return again == sum ? sum : 0;
}

static void snap_scratch(uint64_t round)
{
	if (round > 0 && inb(UART_SCR) != (uint8_t)(round - 1))
		snap_bad[0]++;
	outb(UART_SCR, (uint8_t)round);
}

static void snap_cpu(void *arg)
{
	struct rt_cpu *c = this_cpu();
	(void)arg;
	if (c->id >= SNAP_MAX_CPUS)
		return;
	smp_timer_start(SNAP_HZ);
	sti();
	uint64_t total = 0;
	for (uint64_t r = 0; r < snap_rounds; r++) {
		uint64_t s = snap_round(snap_buf[c->id], total + c->ticks * 0x9e3779b97f4a7c15ull + r);
		if (s == 0)
			snap_bad[c->id]++;
		total += s;
		if (c->id == 0) {
			snap_scratch(r);
			printf("round %lu ticks %lu sum %lx\n", (unsigned long)r,
			       (unsigned long)c->ticks, (unsigned long)total);
		}
	}
	snap_sums[c->id] = total;
}

int main(void)
{
	unsigned n = smp_ncpus();
	snap_rounds = cmdline_u64("rounds", 40);
	unsigned up = smp_start_aps(n, SNAP_AP_TIMEOUT_MS);
	expect_eq(up, n, "all CPUs up");
	smp_run_on_all(snap_cpu, NULL);
	for (unsigned i = 0; i < up && i < SNAP_MAX_CPUS; i++) {
		expect_eq(snap_bad[i], 0, "buffers read back as written, scratch kept");
		expect(snap_sums[i] != 0, "work done");
	}
	return report_summary();
}
