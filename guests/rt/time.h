/* guests/rt/time.h — time, measured against the in-kernel i8254 PIT:
 * channel 2 (gate and output on port 0x61) counts at 1.193182 MHz. The
 * TSC and the APIC timer are calibrated against it once (time_calibrate,
 * about 10 ms); waits then HLT, woken by interrupts and a one-shot APIC
 * timer, so idle CPUs cost the host nothing. */
#ifndef RT_TIME_H
#define RT_TIME_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_HZ 1193182u

/* Idempotent; true if the PIT answered (else rates are guessed: 1 GHz). */
bool time_calibrate(void);
uint64_t time_tsc_khz(void);
uint64_t time_apic_khz(void);       /* APIC timer counts per ms, divide 1 */
uint64_t time_now_us(void);         /* TSC based, since an arbitrary origin */

/* PIT channel 2 one-shot: start a countdown (<= 65535), poll for its end. */
void pit_start(uint16_t count);
bool pit_done(void);
/* Busy-wait on the PIT (chained one-shots); false if the PIT never ends. */
bool pit_wait_us(uint32_t us);

/* HLT until cond(arg) holds or timeout_ms passed; true if it held. Safe on
 * any CPU; interrupts are enabled on return. */
bool wait_until(bool (*cond)(void *arg), void *arg, uint32_t timeout_ms);

#endif
