/* guests/triple.c — triple.elf: an IDT with limit 0, then ud2. #UD cannot
 * be delivered (#GP), nor can that (#DF), so the CPU shuts down. */
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

struct __attribute__((packed)) idtr {
	uint16_t limit;
	uint64_t base;
};

int main(void)
{
	static const struct idtr empty = { 0, 0 };

	printf("about to triple fault: IDT limit 0, then ud2\n");
	__asm__ volatile("cli; lidt %0; ud2" :: "m"(empty));
	rt_fail_now("ud2 with an empty IDT did not shut the machine down");
}
