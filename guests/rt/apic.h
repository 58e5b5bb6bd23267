/* guests/rt/apic.h — the local APIC in either mode: xAPIC (MMIO at
 * 0xFEE00000) or x2APIC (MSRs 0x800+). The mode is chosen once on the BSP
 * and every AP follows it in apic_init(). Timer, EOI and IPIs. */
#ifndef RT_APIC_H
#define RT_APIC_H

#include <stdbool.h>
#include <stdint.h>

#define APIC_DEFAULT_BASE 0xfee00000u
#define APIC_BASE_BSP     (1ull << 8)
#define APIC_BASE_EXTD    (1ull << 10)      /* x2APIC mode */
#define APIC_BASE_EN      (1ull << 11)

/* Register offsets (xAPIC MMIO; x2APIC MSR = 0x800 + offset / 16) */
#define APIC_ID      0x020
#define APIC_VERSION 0x030
#define APIC_TPR     0x080
#define APIC_EOI     0x0b0
#define APIC_SVR     0x0f0
#define APIC_ICR     0x300
#define APIC_ICR2    0x310
#define APIC_LVTT    0x320
#define APIC_TMICT   0x380
#define APIC_TMCCT   0x390
#define APIC_TDCR    0x3e0

#define APIC_SVR_ENABLE     (1u << 8)
#define APIC_LVT_MASKED     (1u << 16)
#define APIC_LVTT_PERIODIC  (1u << 17)
#define APIC_TDCR_DIV1      0xb
#define APIC_ICR_FIXED      (0u << 8)
#define APIC_ICR_INIT       (5u << 8)
#define APIC_ICR_STARTUP    (6u << 8)
#define APIC_ICR_BUSY       (1u << 12)
#define APIC_ICR_ASSERT     (1u << 14)
#define APIC_ICR_ALLBUTSELF (3u << 18)

enum apic_mode { APIC_MODE_XAPIC, APIC_MODE_X2APIC };

/* Switch the BSP (and so every later AP) to x2APIC; false if the CPU lacks it. */
bool apic_enable_x2apic(void);
enum apic_mode apic_mode(void);

/* Enable this CPU's APIC in the chosen mode: SVR on, TPR 0, timer masked. */
void apic_init(void);

uint32_t apic_read(uint32_t reg);
void apic_write(uint32_t reg, uint32_t v);
uint32_t apic_id(void);
void apic_eoi(void);

void apic_send_ipi(uint32_t dest_apic_id, uint8_t vector);
void apic_send_ipi_allbutself(uint8_t vector);
/* INIT then one STARTUP to every other CPU; they start in real mode at
 * physical address page << 12. */
void apic_start_aps(uint8_t page);

/* The timer counts at the bus clock with divide 1 (apic_timer_khz() in
 * time.h is its calibrated rate). */
void apic_timer_periodic(uint8_t vector, uint32_t count);
void apic_timer_oneshot(uint8_t vector, uint32_t count);
void apic_timer_stop(void);

#endif
