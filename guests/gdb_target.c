/* guests/gdb_target.c — gdb_target.elf: code with labels the gdb tests
 * name. The command line picks one scenario (test=NAME):
 *   regs      every general register gets a known value, then spins at
 *             gdb_regs_ready (rax=0x1111.., rbx=0x2222.., ...)
 *   stepi     rax=0, then 1200 x "inc %rax" from gdb_steps (3 bytes each),
 *             then spins: stepi N from gdb_steps lands at gdb_steps + 3N
 *             with rax == N
 *   regwrite  spins at gdb_wait_reg until rbx != 0, prints it and exits
 *             with rbx & 0x7f
 *   memwrite  spins until gdb_flag != 0, prints it and exits with it & 0x7f
 *   smp       every CPU sets r12 = 0x100 + its APIC id and calls gdb_hit()
 *             forever (a breakpoint there is hit by many vCPUs at once)
 * Interrupts stay off (no timer) so nothing disturbs the stepping. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"

#define GDB_FN __attribute__((noinline, noclone, used))

volatile uint64_t gdb_flag;
volatile uint64_t gdb_hits[RT_MAX_CPUS];

static void __attribute__((noreturn)) test_regs(void)
{
	__asm__ volatile(
		"mov $0x1111111111111111, %rax\n"
		"mov $0x2222222222222222, %rbx\n"
		"mov $0x3333333333333333, %rcx\n"
		"mov $0x4444444444444444, %rdx\n"
		"mov $0x5555555555555555, %rsi\n"
		"mov $0x6666666666666666, %rdi\n"
		"mov $0x0808080808080808, %r8\n"
		"mov $0x0909090909090909, %r9\n"
		"mov $0x1010101010101010, %r10\n"
		"mov $0x1111111111111100, %r11\n"
		"mov $0x1212121212121212, %r12\n"
		"mov $0x1313131313131313, %r13\n"
		"mov $0x1414141414141414, %r14\n"
		"mov $0x1515151515151515, %r15\n"
		".globl gdb_regs_ready\n"
		"gdb_regs_ready: jmp gdb_regs_ready\n");
	__builtin_unreachable();
}

static void __attribute__((noreturn)) test_stepi(void)
{
	__asm__ volatile(
		"xor %eax, %eax\n"
		".globl gdb_steps\n"
		"gdb_steps:\n"
		".rept 1200\n"
		"inc %rax\n"
		".endr\n"
		".globl gdb_steps_end\n"
		"gdb_steps_end: jmp gdb_steps_end\n");
	__builtin_unreachable();
}

static int test_regwrite(void)
{
	uint64_t v;
	__asm__ volatile(
		"xor %%ebx, %%ebx\n"
		".globl gdb_wait_reg\n"
		"gdb_wait_reg: test %%rbx, %%rbx\n"
		"jz gdb_wait_reg\n" : "=b"(v));
	printf("rbx = 0x%lx\n", (unsigned long)v);
	return (int)(v & 0x7f);
}

GDB_FN void gdb_mem_poll(void)
{
	__asm__ volatile("pause");
}

static int test_memwrite(void)
{
	while (!gdb_flag)
		gdb_mem_poll();
	printf("gdb_flag = 0x%lx\n", (unsigned long)gdb_flag);
	return (int)(gdb_flag & 0x7f);
}

GDB_FN void gdb_hit(void)
{
	gdb_hits[rt_cpu_id()]++;
}

static void smp_spin(void *arg)
{
	(void)arg;
	uint64_t id = 0x100 + apic_id();
	__asm__ volatile(
		"mov %0, %%r12\n"
		".globl gdb_smp_loop\n"
		"gdb_smp_loop: call gdb_hit\n"
		"jmp gdb_smp_loop\n" :: "r"(id) : "r12", "memory");
	__builtin_unreachable();
}

static int test_smp(void)
{
	unsigned n = smp_ncpus();
	unsigned up = smp_start_aps(n, 100000);
	printf("gdb smp: %u of %u CPUs up\n", up, n);
	smp_run_on_all(smp_spin, NULL);
	return 1;
}

int main(void)
{
	const char *t = cmdline_get("test");

	printf("gdb_target: test=%s\n", t ? t : "(none)");
	if (!t)
		return 1;
	if (strcmp(t, "regs") == 0)
		test_regs();
	if (strcmp(t, "stepi") == 0)
		test_stepi();
	if (strcmp(t, "regwrite") == 0)
		return test_regwrite();
	if (strcmp(t, "memwrite") == 0)
		return test_memwrite();
	if (strcmp(t, "smp") == 0)
		return test_smp();
	printf("gdb_target: unknown test '%s'\n", t);
	return 1;
}
