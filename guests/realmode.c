/* guests/realmode.c — real mode from the inside. realmode_switch.S ran
 * rm_work (linear 0x7c00) in real mode before the runtime started, once
 * with CS = 0 and once with CS = 0x7c0; check what it recorded.
 * `rm_ax=N`: the AX a debugger wrote at rm_work + 0x10 on the CS = 0 call
 * (default: rm_work's own sum, 55). */
#include <stdint.h>

#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

extern volatile uint16_t rm_results[16];
extern const char rm_work[], rm_ret[];   /* the image's copy: for offsets */

static void check_call(const volatile uint16_t *r, uint16_t cs, uint16_t ip, uint64_t ax,
		       const char *what)
{
	char name[64];
	snprintf(name, sizeof(name), "%s: sum 1..10", what);
	expect_eq(r[0], 55, name);
	snprintf(name, sizeof(name), "%s: cs", what);
	expect_eq(r[1], cs, name);
	snprintf(name, sizeof(name), "%s: ip of a call's return", what);
	expect_eq(r[2], ip, name);
	snprintf(name, sizeof(name), "%s: ax at rm_work+0x10, + 0x100", what);
	expect_eq(r[3], (uint16_t)(ax + 0x100), name);
}

int main(void)
{
	uint32_t cr0 = rm_results[6] | (uint32_t)rm_results[7] << 16;
	expect_eq(cr0 & 1, 0, "real mode: CR0.PE clear");
	uint16_t ret = (uint16_t)(rm_ret - rm_work);
	check_call(&rm_results[0], 0, 0x7c00 + ret, cmdline_u64("rm_ax", 55), "0000:7c00");
	check_call(&rm_results[8], 0x7c0, ret, 55, "07c0:0000");
	return report_summary();
}
