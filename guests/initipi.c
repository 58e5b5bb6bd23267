/* guests/initipi.c — initipi.elf: the BSP sends INIT to the first AP while
 * the AP sleeps in the runtime's idle loop, so a debugger stepping the BSP
 * sees another vCPU's state change under its feet. The ICR write that
 * sends it is the one instruction at initipi_icr (xAPIC MMIO). Needs
 * --smp 2; exits 0 once the INIT is sent. */
#include "guests/rt/apic.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"

static void __attribute__((noinline, noclone, used)) initipi_send(uint32_t dest)
{
	volatile uint32_t *icr = (volatile uint32_t *)(uintptr_t)(APIC_DEFAULT_BASE + APIC_ICR);
	apic_write(APIC_ICR2, dest << 24);
	__asm__ volatile(".globl initipi_icr\n"
			 "initipi_icr: movl %1, %0\n"
			 : "=m"(*icr) : "r"(APIC_ICR_INIT | APIC_ICR_ASSERT) : "memory");
}

int main(void)
{
	if (!expect(smp_start_aps(2, 10000) == 2, "the AP is up") ||
	    !expect(apic_mode() == APIC_MODE_XAPIC, "xAPIC mode"))
		return report_summary();
	initipi_send(rt_cpus[1].apic_id);
	printf("initipi: INIT sent to APIC id %u\n", rt_cpus[1].apic_id);
	return report_summary();
}
