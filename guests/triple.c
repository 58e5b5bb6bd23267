/* guests/triple.c — triple.elf: an IDT with limit 0, then a faulting
 * instruction (fault=ud: ud2, the default; fault=pf: a load from an unmapped
 * address; fault=de: a division by zero). The exception cannot be delivered
 * (#GP), nor can that (#DF), so the CPU shuts down. */
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/string.h"

struct __attribute__((packed)) idtr {
	uint16_t limit;
	uint64_t base;
};

int main(void)
{
	static const struct idtr empty = { 0, 0 };

	const char *fault = cmdline_get("fault");

	if (fault && !strcmp(fault, "pf")) {
		printf("about to triple fault: IDT limit 0, then a load from 0x100000000000\n");
		__asm__ volatile("cli; lidt %0; mov (%1), %%rax" :: "m"(empty),
				 "r"(0x100000000000ull) : "rax");
	} else if (fault && !strcmp(fault, "de")) {
		printf("about to triple fault: IDT limit 0, then a division by zero\n");
		__asm__ volatile("cli; lidt %0; xor %%edx, %%edx; xor %%ecx, %%ecx; div %%ecx"
				 :: "m"(empty) : "rax", "rcx", "rdx");
	} else {
		printf("about to triple fault: IDT limit 0, then ud2\n");
		__asm__ volatile("cli; lidt %0; ud2" :: "m"(empty));
	}
	rt_fail_now("ud2 with an empty IDT did not shut the machine down");
}
