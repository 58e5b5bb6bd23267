/* guests/gdb_target.c — gdb_target.elf: code with labels the gdb tests
 * name. The command line picks one scenario (test=NAME):
 *   regs      every general register gets a known value, then spins at
 *             gdb_regs_ready (rax=0x1111.., rbx=0x2222.., ...); also
 *             k_gs_base = 0xffff800012345678; x87/SSE state keeps its reset
 *             values (the host's ring-0 emulator has no SSE moves)
 *   stepi     rax=0, then 1200 x "inc %rax" from gdb_steps (3 bytes each),
 *             then spins: stepi N from gdb_steps lands at gdb_steps + 3N
 *             with rax == N
 *   regwrite  spins at gdb_wait_reg until rbx != 0, prints it and exits
 *             with rbx & 0x7f
 *   memwrite  spins until gdb_flag != 0, prints it and exits with it & 0x7f
 *   smp       every CPU sets r12 = 0x100 + its APIC id and calls gdb_hit()
 *             forever (a breakpoint there is hit by many vCPUs at once)
 *   catch     takes #UD at gdb_ud2, #PF at gdb_pf (cr2 = GDB_UNMAPPED), #DE at
 *             gdb_de (handlers skip the instruction), then loads a copy of
 *             its IDT whose #UD gate names gdb_ud_alt, calls
 *             gdb_idt_reloaded() and takes #UD again at gdb_ud2_again; exits
 *             0 when each handler ran once
 *   bigpage   maps virtual 4 GiB to physical 0 with one 1 GiB page (PDPT
 *             entry 4), writes gdb_big_marker through it, then spins in
 *             gdb_mem_poll until gdb_flag != 0 and exits with it
 *   watch     arms its own DR0 (write, 8 bytes) on gdb_own_var, then three
 *             times: writes i to gdb_watch_var (gdb_watch_after is right
 *             after the store), writes gdb_own_var (its #DB handler counts),
 *             reads gdb_read_var (gdb_read_after), writes gdb_odd.lead then
 *             gdb_odd.field = i * 0x101 (a 2-byte field at an odd address;
 *             gdb_odd_after), and i into gdb_wv[0..4]; disarms DR0, calls
 *             gdb_watch_done() and prints "watch: own #DB N ..."; exits 0
 *   kdtools   writes gdb_kd_marker = 0x1122334455667788 and calls
 *             gdb_kd_ready() (the monitor's views are checked there), then
 *             one access each at a labelled instruction: gdb_kd_out (OUT
 *             0x5a to port 0x80), gdb_kd_in (IN from CMOS port 0x71,
 *             register 0x0b), gdb_kd_wrmsr (STAR = 0x0013000800000000),
 *             gdb_kd_rdmsr (STAR), gdb_kd_movcr (CR4 written unchanged);
 *             prints "kdtools: in 0xN star 0xN" and exits 0
 *   cond      calls gdb_cond_f(i) for i = 1..n (cmdline n, default 1000),
 *             which adds i to gdb_cond_sum and sets gdb_cond_last = i: a
 *             hot path for conditional breakpoints; exits 0 when the sum
 *             is n(n+1)/2 (every call ran whole, breakpoint or not)
 * Interrupts stay off (no timer) so nothing disturbs the stepping. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"

#define GDB_FN __attribute__((noinline, noclone, used))

volatile uint64_t gdb_flag;
volatile uint64_t gdb_hits[RT_MAX_CPUS];
volatile uint64_t gdb_cond_sum, gdb_cond_last;     /* test=cond */

static void __attribute__((noreturn)) test_regs(void)
{
	__asm__ volatile(
		"mov $0xc0000102, %%ecx\n"                /* MSR_KERNEL_GS_BASE */
		"mov $0x12345678, %%eax\n"
		"mov $0xffff8000, %%edx\n"
		"wrmsr\n" ::: "rax", "rcx", "rdx");
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

/* ---- catch: exceptions for `monitor catch` ---- */

#define GDB_UNMAPPED 0x7fff00000000ull

static volatile unsigned caught_ud, caught_pf, caught_de;
volatile uint32_t gdb_caught_alt;
static uint8_t idt_copy[4096] __attribute__((aligned(16)));

/* The handlers step over the faulting instruction (lengths fixed below). */
static void on_ud(struct rt_frame *f) { caught_ud++; f->rip += 2; }
static void on_pf(struct rt_frame *f) { caught_pf++; f->rip += 3; }
static void on_de(struct rt_frame *f) { caught_de++; f->rip += 3; }

/* The second IDT's #UD handler: no error code, skip the 2-byte ud2. */
__asm__(".text\n"
	".globl gdb_ud_alt\n"
	"gdb_ud_alt:\n"
	"addq $2, (%rsp)\n"
	"incl gdb_caught_alt(%rip)\n"
	"iretq\n");
extern char gdb_ud_alt[];

GDB_FN void gdb_idt_reloaded(void)
{
	__asm__ volatile("" ::: "memory");
}

struct __attribute__((packed)) gdb_idtr {
	uint16_t limit;
	uint64_t base;
};

/* A copy of the IDT with #UD pointing at gdb_ud_alt, loaded with LIDT. */
static void reload_idt(void)
{
	struct gdb_idtr r;
	__asm__ volatile("sidt %0" : "=m"(r));
	memcpy(idt_copy, (const void *)r.base, sizeof(idt_copy));
	uint8_t *g = idt_copy + 16 * X86_UD;
	uint64_t a = (uint64_t)gdb_ud_alt;
	g[0] = (uint8_t)a;
	g[1] = (uint8_t)(a >> 8);
	g[6] = (uint8_t)(a >> 16);
	g[7] = (uint8_t)(a >> 24);
	memcpy(g + 8, (const uint8_t *)&a + 4, 4);
	r.base = (uint64_t)idt_copy;
	__asm__ volatile("lidt %0" :: "m"(r) : "memory");
}

static int test_catch(void)
{
	idt_set_handler(X86_UD, on_ud);
	idt_set_handler(X86_PF, on_pf);
	idt_set_handler(X86_DE, on_de);
	__asm__ volatile(".globl gdb_ud2\n"
			 "gdb_ud2: ud2\n" ::: "memory");
	__asm__ volatile(".globl gdb_pf\n"
			 "gdb_pf: mov (%%rax), %%rax\n"       /* 3 bytes */
			 :: "a"(GDB_UNMAPPED) : "memory");
	__asm__ volatile("xor %%edx, %%edx\n"
			 "mov $1, %%eax\n"
			 "xor %%ecx, %%ecx\n"
			 ".globl gdb_de\n"
			 "gdb_de: div %%rcx\n"                /* 3 bytes */
			 ::: "rax", "rcx", "rdx", "memory");
	reload_idt();
	gdb_idt_reloaded();
	__asm__ volatile(".globl gdb_ud2_again\n"
			 "gdb_ud2_again: ud2\n" ::: "memory");
	idt_load();
	printf("catch: ud=%u pf=%u de=%u alt=%u\n", caught_ud, caught_pf, caught_de,
	       gdb_caught_alt);
	return caught_ud == 1 && caught_pf == 1 && caught_de == 1 && gdb_caught_alt == 1 ? 0 : 1;
}

/* ---- bigpage: a 1 GiB page for the debugger's page walk ---- */

#define GDB_BIG_VA   0x100000000ull      /* PML4 0, PDPT entry 4 */
#define PDPT_1G_PAGE 0x83ull              /* present, writable, PS */

volatile uint64_t gdb_big_marker;

static int test_bigpage(void)
{
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	volatile uint64_t *pml4 = (volatile uint64_t *)(cr3 & ~0xfffull);
	volatile uint64_t *pdpt = (volatile uint64_t *)(pml4[0] & 0x000ffffffffff000ull);
	pdpt[4] = 0 | PDPT_1G_PAGE;
	__asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");
	/* Without 1 GiB pages in CPUID the entry would fault for the guest
	 * (reserved PS bit); the debugger's page walk reads it all the same. */
	uint32_t a = 0x80000001u, b, c, d;
	__asm__ volatile("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	bool gb_pages = d & (1u << 26);
	volatile uint64_t *marker = gb_pages
		? (volatile uint64_t *)(GDB_BIG_VA + (uint64_t)&gdb_big_marker) : &gdb_big_marker;
	*marker = 0x1b16b16e0000cafeull;
	printf("bigpage: marker 0x%lx (written %s)\n", (unsigned long)gdb_big_marker,
	       gb_pages ? "through the 1 GiB page" : "directly: no 1 GiB pages in CPUID");
	return test_memwrite();
}

/* ---- watch: variables for gdb's watchpoints, and the guest's own DR0 ---- */

struct gdb_odd_s {
	uint8_t lead;
	uint16_t field;          /* offset 1: split into two 1-byte pieces */
	uint8_t tail[5];
} __attribute__((packed));

volatile uint64_t gdb_watch_var;
volatile uint64_t gdb_read_var = 7;
volatile uint64_t gdb_own_var;
volatile uint64_t gdb_wv[5];
volatile struct gdb_odd_s gdb_odd __attribute__((aligned(8)));
static volatile unsigned own_db_b0, own_db_other;

/* The guest's own #DB: only its DR0 may fire here (never the debugger's). */
static void on_own_db(struct rt_frame *f)
{
	uint64_t dr6;
	(void)f;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	if (dr6 & DR6_B(0))
		own_db_b0++;
	else
		own_db_other++;
	__asm__ volatile("mov %0, %%dr6" :: "r"(0ull));
}

GDB_FN void gdb_write_watch(uint64_t v)
{
	__asm__ volatile("mov %0, gdb_watch_var(%%rip)\n"
			 ".globl gdb_watch_after\n"
			 "gdb_watch_after:\n" :: "r"(v) : "memory");
}

GDB_FN uint64_t gdb_read_read(void)
{
	uint64_t v;
	__asm__ volatile("mov gdb_read_var(%%rip), %0\n"
			 ".globl gdb_read_after\n"
			 "gdb_read_after:\n" : "=r"(v) :: "memory");
	return v;
}

GDB_FN void gdb_odd_write(uint16_t v)
{
	__asm__ volatile("movw %0, gdb_odd+1(%%rip)\n"
			 ".globl gdb_odd_after\n"
			 "gdb_odd_after:\n" :: "r"(v) : "memory");
}

GDB_FN void gdb_watch_done(void)
{
	__asm__ volatile("" ::: "memory");
}

static void own_dr0(uint64_t addr, uint64_t dr7)
{
	__asm__ volatile("mov %0, %%dr0\n"
			 "mov %1, %%dr7" :: "r"(addr), "r"(dr7) : "memory");
}

static int test_watch(void)
{
	uint64_t sum = 0;

	idt_set_handler(X86_DB, on_own_db);
	own_dr0((uint64_t)&gdb_own_var,
		DR7_INIT | DR7_G(0) | DR7_RW(0, DR7_RW_WRITE) | DR7_LEN(0, DR7_LEN_8));
	for (uint64_t i = 1; i <= 3; i++) {
		gdb_write_watch(i);
		gdb_own_var = i;
		sum += gdb_read_read();
		gdb_odd.lead = (uint8_t)i;
		gdb_odd_write((uint16_t)(i * 0x101));
		for (unsigned k = 0; k < 5; k++)
			gdb_wv[k] = i;
	}
	own_dr0(0, DR7_INIT);
	gdb_watch_done();
	printf("watch: own #DB %u (other #DB %u), sum %lu, field 0x%x\n", own_db_b0,
	       own_db_other, (unsigned long)sum, (unsigned)gdb_odd.field);
	return 0;
}

volatile uint64_t gdb_kd_marker;

GDB_FN void gdb_kd_ready(void)
{
	__asm__ volatile("" ::: "memory");
}

/* The accesses the catch tests stop at, each at a global label. */
static int __attribute__((noinline, noclone)) test_kdtools(void)
{
	uint64_t in_value, star_lo, star_hi;

	gdb_kd_marker = 0x1122334455667788ull;
	gdb_kd_ready();
	__asm__ volatile(
		"mov $0x5a, %%al\n"
		".globl gdb_kd_out\ngdb_kd_out: outb %%al, $0x80\n"
		"mov $0x0b, %%al\n"
		"outb %%al, $0x70\n"
		"xor %%eax, %%eax\n"
		".globl gdb_kd_in\ngdb_kd_in: inb $0x71, %%al\n"
		"mov %%rax, %0\n"
		"mov $0xc0000081, %%ecx\n"
		"xor %%eax, %%eax\n"
		"mov $0x00130008, %%edx\n"
		".globl gdb_kd_wrmsr\ngdb_kd_wrmsr: wrmsr\n"
		"xor %%edx, %%edx\n"
		".globl gdb_kd_rdmsr\ngdb_kd_rdmsr: rdmsr\n"
		"mov %%rax, %1\n"
		"mov %%rdx, %2\n"
		"mov %%cr4, %%rax\n"
		".globl gdb_kd_movcr\ngdb_kd_movcr: mov %%rax, %%cr4\n"
		: "=m"(in_value), "=m"(star_lo), "=m"(star_hi) :: "rax", "rcx", "rdx", "memory");
	printf("kdtools: in 0x%lx star 0x%lx\n", (unsigned long)in_value,
	       (unsigned long)(star_hi << 32 | star_lo));
	return 0;
}

GDB_FN void gdb_cond_f(uint64_t i)
{
	gdb_cond_sum += i;
	gdb_cond_last = i;
}

static int test_cond(void)
{
	uint64_t n = cmdline_u64("n", 1000);
	for (uint64_t i = 1; i <= n; i++)
		gdb_cond_f(i);
	printf("cond: %lu calls, sum %lu\n", (unsigned long)n, (unsigned long)gdb_cond_sum);
	return gdb_cond_sum == n * (n + 1) / 2 ? 0 : 1;
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
	if (strcmp(t, "catch") == 0)
		return test_catch();
	if (strcmp(t, "bigpage") == 0)
		return test_bigpage();
	if (strcmp(t, "watch") == 0)
		return test_watch();
	if (strcmp(t, "kdtools") == 0)
		return test_kdtools();
	if (strcmp(t, "cond") == 0)
		return test_cond();
	printf("gdb_target: unknown test '%s'\n", t);
	return 1;
}
