/* guests/rt/time.c */
#include "guests/rt/time.h"

#include "guests/rt/apic.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

#define PORT_61        0x61
#define PORT_61_GATE2  0x01
#define PORT_61_SPKR   0x02
#define PORT_61_OUT2   0x20
#define PIT_CH2        0x42
#define PIT_MODE       0x43
#define PIT_CH2_ONESHOT 0xb0        /* channel 2, lobyte/hibyte, mode 0, binary */
#define CAL_MS         10
#define CAL_COUNT      (PIT_HZ * CAL_MS / 1000)
/* An i8254 that never raises OUT2 must not hang us: each poll is an I/O
 * exit of several microseconds, so this is far beyond 55 ms. */
#define PIT_MAX_POLLS  2000000
#define GUESS_KHZ      1000000u     /* KVM's APIC bus clock: 1 GHz */
#define WAIT_SLICE_MS  10

static bool calibrated, pit_ok;
static uint64_t tsc_khz = GUESS_KHZ, apic_khz = GUESS_KHZ;

void pit_start(uint16_t count)
{
	outb(PORT_61, (inb(PORT_61) & ~PORT_61_SPKR) | PORT_61_GATE2);
	outb(PIT_MODE, PIT_CH2_ONESHOT);
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
}

bool pit_done(void)
{
	return inb(PORT_61) & PORT_61_OUT2;
}

static bool pit_poll(void)
{
	for (int i = 0; i < PIT_MAX_POLLS; i++)
		if (pit_done())
			return true;
	return false;
}

bool pit_wait_us(uint32_t us)
{
	while (us) {
		uint32_t chunk = us > 50000 ? 50000 : us;
		pit_start((uint16_t)((uint64_t)PIT_HZ * chunk / 1000000));
		if (!pit_poll())
			return false;
		us -= chunk;
	}
	return true;
}

bool time_calibrate(void)
{
	if (calibrated)
		return pit_ok;
	calibrated = true;
	apic_write(APIC_TDCR, APIC_TDCR_DIV1);
	apic_write(APIC_LVTT, APIC_LVT_MASKED | RT_VEC_TIMER);
	apic_write(APIC_TMICT, 0xffffffffu);
	pit_start(CAL_COUNT);
	uint64_t t0 = rdtsc();
	uint32_t a0 = apic_read(APIC_TMCCT);
	/* mode 0 drops OUT2 when the count is written: high now means no PIT */
	uint8_t p61 = inb(PORT_61);
	pit_ok = !(p61 & PORT_61_OUT2) && pit_poll();
	uint64_t t1 = rdtsc();
	uint32_t a1 = apic_read(APIC_TMCCT);
	apic_write(APIC_TMICT, 0);
	if (!pit_ok || t1 == t0 || a0 == a1) {
		printf("time: PIT channel 2 does not count (port 0x61 read 0x%x right after "
		       "a one-shot count write); guessing 1 GHz TSC and APIC timer\n", p61);
		pit_ok = false;
		return false;
	}
	tsc_khz = (t1 - t0) / CAL_MS;
	apic_khz = (uint64_t)(a0 - a1) / CAL_MS;
	return true;
}

uint64_t time_tsc_khz(void)
{
	time_calibrate();
	return tsc_khz;
}

uint64_t time_apic_khz(void)
{
	time_calibrate();
	return apic_khz;
}

uint64_t time_now_us(void)
{
	uint64_t per_us = time_tsc_khz() / 1000;

	return rdtsc() / (per_us ? per_us : 1);
}

bool wait_until(bool (*cond)(void *arg), void *arg, uint32_t timeout_ms)
{
	uint64_t deadline = time_now_us() + (uint64_t)timeout_ms * 1000;
	struct rt_cpu *c = this_cpu();
	bool armed = false, ok;

	for (;;) {
		cli();
		ok = cond(arg);
		if (ok || time_now_us() >= deadline)
			break;
		/* a periodic timer wakes us anyway; otherwise bound the sleep */
		if (!c->timer_periodic) {
			apic_timer_oneshot(RT_VEC_TIMER, (uint32_t)(apic_khz * WAIT_SLICE_MS));
			armed = true;
		}
		sti_hlt();
	}
	if (armed)
		apic_timer_stop();
	sti();
	return ok;
}
