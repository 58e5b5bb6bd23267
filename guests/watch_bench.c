/* guests/watch_bench.c — watch_bench.elf, for bench/watch: blocks of work
 * between stops at wb_block (a breakpoint the bench keeps), the kind of
 * block chosen by the bench through wb_mode (written with M):
 *   WB_EMPTY  nothing: the cost of the stop and the continue alone
 *   WB_HEAVY  wb_heavy_words 64-bit read-modify-writes over wb_buf (64 KiB,
 *             pages no watchpoint touches), twice
 *   WB_NEAR   wb_near_writes stores to wb_hot.near: same page as
 *             wb_hot.target, outside it (a page trap's cost per access)
 *   WB_HIT    one store to wb_hot.target (a watchpoint reported to gdb)
 *   WB_EXIT   leave: main returns the checksum's low bit (exit 0 or 1)
 *   WB_PORT   wb_near_writes writes to port 0x80: one plain exit each, the
 *             floor under a page trap's cost per access
 * wb_idle is a page of its own for idle watchpoints. Never ends alone. */
#include <stdint.h>

#include "guests/rt/io.h"
#include "guests/rt/serial.h"

#define GDB_FN __attribute__((noinline, noclone, used))

enum { WB_EMPTY, WB_HEAVY, WB_NEAR, WB_HIT, WB_EXIT, WB_PORT };

struct wb_page {
	uint64_t target;
	uint64_t pad[7];
	uint64_t near;
	uint8_t rest[4096 - 72];
};

volatile uint64_t wb_mode = WB_EMPTY;
volatile uint64_t wb_heavy_words = 8192;
volatile uint64_t wb_near_writes = 200;
struct wb_page wb_hot __attribute__((aligned(4096)));
struct wb_page wb_idle __attribute__((aligned(4096)));
uint64_t wb_buf[8192] __attribute__((aligned(4096)));
static uint64_t checksum;

GDB_FN void wb_block(void)
{
	__asm__ volatile("" ::: "memory");
}

static void heavy(uint64_t words)
{
	if (words > sizeof(wb_buf) / sizeof(wb_buf[0]))
		words = sizeof(wb_buf) / sizeof(wb_buf[0]);
	for (unsigned pass = 0; pass < 2; pass++)
		for (uint64_t i = 0; i < words; i++) {
			uint64_t v = ((volatile uint64_t *)wb_buf)[i];
			((volatile uint64_t *)wb_buf)[i] = v * 3 + i;
		}
	checksum += wb_buf[words / 2];
}

int main(void)
{
	printf("watch_bench: ready\n");
	for (;;) {
		wb_block();
		switch (wb_mode) {
		case WB_HEAVY:
			heavy(wb_heavy_words);
			break;
		case WB_NEAR:
			for (uint64_t i = wb_near_writes; i > 0; i--)
				((volatile struct wb_page *)&wb_hot)->near = i;
			break;
		case WB_PORT:
			for (uint64_t i = wb_near_writes; i > 0; i--)
				outb(0x80, (uint8_t)i);
			break;
		case WB_HIT:
			((volatile struct wb_page *)&wb_hot)->target++;
			break;
		case WB_EXIT:
			printf("watch_bench: checksum 0x%lx\n", (unsigned long)checksum);
			return (int)(checksum & 1);
		default:
			break;
		}
	}
}
