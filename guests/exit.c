/* guests/exit.c — exit.elf: "exit=N" on the command line -> prints
 * "exit with N" and writes N to the debug-exit port (status (N << 1) | 1). */
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"

int main(void)
{
	uint64_t n = cmdline_u64("exit", 0);

	printf("exit with %lu\n", (unsigned long)n);
	rt_exit((uint32_t)n);
}
