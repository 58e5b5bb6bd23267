/* tests/linux/dynhello.c — a dynamically linked program for the Linux test
 * init (built with the host's gcc; the initramfs carries the host's ld.so
 * and libc): it runs only if glibc's loader accepts the CPU (the x86-64
 * baseline: MMX, FXSR, SSE2 ...), and its string functions are the ones
 * glibc picks by CPUID. tests/linux/init compares the line it prints. */
#include <stdio.h>
#include <string.h>

int main(void)
{
	char buf[64];
	memset(buf, 'x', sizeof(buf));
	buf[sizeof(buf) - 1] = 0;
	printf("dynamic ok len=%zu\n", strlen(buf));
	return 0;
}
