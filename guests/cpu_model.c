/* guests/cpu_model.c — cpu_model.elf: the CPU model from the inside, as a
 * kernel like Linux relies on it. Every feature bit CPUID advertises that
 * this guest knows is exercised (its instruction runs, its MSR reads, its
 * control bit works); on vmdb's own CPU (hypervisor leaf "vmdbvmdbvmdb")
 * an advertised bit the guest does not know fails, since then nothing
 * would prove it implemented. Then the system features: SYSCALL/SYSRET
 * round trip with SWAPGS, SYSRET to a non-canonical RIP, global pages and
 * PCID against CR3 writes, INVLPG in a large page, INVPCID, NX, SMEP,
 * SMAP with STAC/CLAC/POPF, CR0.WP, UMIP, RDPID/RDTSCP, 1 GiB pages, the
 * MSRs Linux reads (unknown ones #GP), x2APIC and the TSC-deadline timer,
 * the TSC frequency of CPUID 0x15 against the PIT.
 *
 * `expect_cpus=N` checks the topology leaves against N vCPUs; `insns=0`
 * leaves out the instruction checks (for a host CPU model whose ring-0
 * instructions a host emulator may not run), `ring3=0` the SYSCALL/SYSRET,
 * UMIP and RDPID ones (a host emulator here gets SYSRET's selectors
 * wrong). Checks of
 * what a TLB may keep (architecturally optional) are made on emu only. */
#include "guests/rt/apic.h"
#include "guests/rt/cmdline.h"
#include "guests/rt/desc.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/paging.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"
#include "guests/rt/time.h"

#define BIT(n) (1u << (n))

/* CPUID bits this guest exercises (the rest must not be advertised on emu). */
#define KNOWN_1_EDX (BIT(0) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(8) | BIT(9) | \
		     BIT(12) | BIT(13) | BIT(15) | BIT(16) | BIT(17) | BIT(19) | BIT(23) |    \
		     BIT(24) | BIT(25) | BIT(26) | BIT(28))
#define KNOWN_1_ECX (BIT(0) | BIT(9) | BIT(13) | BIT(17) | BIT(19) | BIT(20) | BIT(21) |    \
		     BIT(22) | BIT(23) | BIT(24) | BIT(26) | BIT(27) | BIT(31))
/* bits 6 (FDP_EXCPTN_ONLY) and 13 (FCS/FDS deprecated) describe the x87
 * model and have nothing to run */
#define KNOWN_7_EBX (BIT(6) | BIT(7) | BIT(9) | BIT(10) | BIT(13) | BIT(20) | BIT(23))
#define KNOWN_7_ECX (BIT(2) | BIT(22))
#define KNOWN_7_EDX (BIT(14) | BIT(29))
#define KNOWN_E1_ECX (BIT(0) | BIT(5) | BIT(8))
#define KNOWN_E1_EDX (BIT(11) | BIT(20) | BIT(26) | BIT(27) | BIT(29))

#define SEL_KCODE   0x08
#define SEL_KDATA   0x10
#define SEL_STAR_USER 0x18          /* SYSRET: SS = +8, CS = +16 */
#define SEL_UDATA   0x20
#define SEL_UCODE   0x28
#define SEL_TSS     0x30
#define GDT_UDATA   0x00cff3000000ffffull
#define GDT_UCODE64 0x00affb000000ffffull

#define CR0_WP_BIT (1ull << 16)
#define CR4_TSD_  (1ull << 2)
#define CR4_UMIP  (1ull << 11)
#define CR4_PCIDE (1ull << 17)
#define CR4_SMEP_ (1ull << 20)
#define CR4_SMAP_ (1ull << 21)
#define CR3_NOFLUSH (1ull << 63)

#define MSR_SYSCALL_MASK_BITS (RFLAGS_IF | RFLAGS_TF | RFLAGS_DF | RFLAGS_AC)
#define MSR_TSC_AUX_  0xc0000103u
#define MSR_TSC_DEADLINE 0x6e0u
#define MSR_X2APIC_ID  0x802u
#define MSR_X2APIC_LVTT 0x832u
#define LVTT_TSC_DEADLINE (2u << 17)
#define DEADLINE_VECTOR 0xd0

/* Test linear addresses: PML4 slot 1, 4 KiB pages, a 2 MiB and a 1 GiB page. */
#define TVA       0x8000000000ull
#define TVA_PAGE(i) (TVA + (uint64_t)(i) * 4096)
#define TVA_2M    (TVA + PAGE_2M)
#define TVA_1G    (TVA + (1ull << 30))
#define LARGE_A   0x1000000ull      /* two physical 2 MiB regions for the INVLPG test */
#define LARGE_B   0x1200000ull
#define LARGE_OFF 0x9238ull

#define NO_FAULT 0xffu

/* --- page tables, GDT, TSS ------------------------------------------------ */

static uint64_t pml4[512] __attribute__((aligned(4096)));
static struct rt_low_map low_map __attribute__((aligned(4096)));
static uint64_t pdpt_t[512] __attribute__((aligned(4096)));
static uint64_t pd_t[512] __attribute__((aligned(4096)));
static uint64_t pt_t[512] __attribute__((aligned(4096)));
static uint8_t frame_a[4096] __attribute__((aligned(4096)));
static uint8_t frame_b[4096] __attribute__((aligned(4096)));
static uint8_t frame_code[4096] __attribute__((aligned(4096)));

/* Ring 3's pages: its data (GS points here too) and its stack; the code is
 * the .text.user_page section below. */
struct user_area {
	uint64_t gs_magic;          /* %gs:0 in ring 3 */
	uint32_t cs, ss;
	uint64_t gs_read;
	uint8_t sgdt[10];
};
/* whole pages: nothing of ring 0's may share them (SMAP would fault it) */
union user_page {
	struct user_area a;
	uint8_t bytes[4096];
};
union user_page user_page_data __attribute__((aligned(4096)));
#define user_data (user_page_data.a)
uint8_t user_stack[4096] __attribute__((aligned(4096)));

static uint64_t gdt[8] __attribute__((aligned(16)));
static struct rt_tss64 tss __attribute__((aligned(16)));
static uint8_t kstack[16384] __attribute__((aligned(16)));

/* --- ring 3 code and the SYSCALL entry ------------------------------------ */

uint64_t k_saved_rsp, sc_rcx, sc_r11, sc_rax, sc_rflags, sc_user_rsp;
uint32_t sc_cs, sc_ss;

void user_page_start(void);
void user_syscall_test(void);
void user_after_syscall(void);
void user_sgdt(void);
void user_rdpid(void);
void user_ret(void);
void cpu_syscall_entry(void);
void cpu_user_back(void);
void cpu_user_run(void (*entry)(void), uint64_t rsp);

__asm__(
	"	.section .text.user_page, \"ax\"\n"
	"	.balign 4096\n"
	"	.globl user_page_start, user_syscall_test, user_after_syscall, user_sgdt\n"
	"	.globl user_rdpid, user_ret\n"
	"user_page_start:\n"
	"user_syscall_test:\n"
	"	mov %cs, %eax\n	mov %eax, user_page_data+8(%rip)\n"
	"	mov %ss, %eax\n	mov %eax, user_page_data+12(%rip)\n"
	"	mov %gs:0, %rax\n	mov %rax, user_page_data+16(%rip)\n"
	"	pushfq\n	orq $0x40001, (%rsp)\n	popfq\n"          /* AC and CF */
	"	mov $0x5ca11ed, %eax\n"
	"	syscall\n"
	"user_after_syscall:\n"
	"	ud2\n"
	"user_sgdt:\n"
	"	sgdt user_page_data+24(%rip)\n"
	"	xor %eax, %eax\n"
	"	syscall\n"
	"user_rdpid:\n"
	"	rdpid %rax\n"
	"	syscall\n"
	"user_ret:\n"
	"	ret\n"
	"	.balign 4096\n"
	"	.text\n"
	"	.globl cpu_user_run, cpu_syscall_entry, cpu_user_back\n"
	"cpu_user_run:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	mov %rsp, k_saved_rsp(%rip)\n"
	"	mov %rdi, %rcx\n"
	"	mov $2, %r11d\n"
	"	mov %rsi, %rsp\n"
	"	swapgs\n"
	"	sysretq\n"
	"cpu_syscall_entry:\n"
	"	swapgs\n"
	"	mov %rcx, sc_rcx(%rip)\n	mov %r11, sc_r11(%rip)\n	mov %rax, sc_rax(%rip)\n"
	"	mov %rsp, sc_user_rsp(%rip)\n"
	"	mov k_saved_rsp(%rip), %rsp\n"
	"	pushfq\n	popq sc_rflags(%rip)\n"
	"	mov %cs, %eax\n	mov %eax, sc_cs(%rip)\n"
	"	mov %ss, %eax\n	mov %eax, sc_ss(%rip)\n"
	"cpu_user_back:\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n");

/* --- faults: expected ones resume after the instruction -------------------- */

uint64_t fixup_to, fixup_rsp;
static volatile uint8_t fault_vec = NO_FAULT;
static volatile uint64_t fault_err, fault_cr2, fault_cs, fault_rip;
static bool in_user_run;

/* An instruction (or call) whose fault is expected: the handler resumes
 * at label 1 with RSP as it was. */
#define TRY_ASM(insn) \
	"movq $1f, fixup_to(%%rip)\n\tmovq %%rsp, fixup_rsp(%%rip)\n\t" insn \
	"\n1:\n\tmovq $0, fixup_to(%%rip)"

static void on_fault(struct rt_frame *f)
{
	bool from_user = f->cs & 3;
	if (from_user)
		__asm__ volatile("swapgs");
	fault_vec = (uint8_t)f->vector;
	fault_err = f->error_code;
	fault_cr2 = read_cr2();
	fault_cs = f->cs;
	fault_rip = f->rip;
	if (from_user && in_user_run) {
		f->rip = (uint64_t)(uintptr_t)cpu_user_back;
		f->cs = SEL_KCODE;
		f->ss = SEL_KDATA;
		f->rsp = k_saved_rsp;
		f->rflags = RFLAGS_FIXED1;
		return;
	}
	if (!fixup_to)
		rt_fail_now("unexpected exception %s (error 0x%lx) at RIP 0x%lx, CR2 0x%lx",
			    idt_vector_name(f->vector), f->error_code, f->rip, read_cr2());
	f->rip = fixup_to;
	f->rsp = fixup_rsp;
	fixup_to = 0;
}

static void clear_fault(void)
{
	fault_vec = NO_FAULT;
	fault_err = fault_cr2 = fault_cs = fault_rip = 0;
}

static bool rdmsr_safe(uint32_t msr, uint64_t *v)
{
	uint32_t lo = 0, hi = 0;
	clear_fault();
	__asm__ volatile(TRY_ASM("rdmsr") : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	*v = (uint64_t)hi << 32 | lo;
	return fault_vec == NO_FAULT;
}

static bool wrmsr_safe(uint32_t msr, uint64_t v)
{
	clear_fault();
	__asm__ volatile(TRY_ASM("wrmsr") :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
			 : "memory");
	return fault_vec == NO_FAULT;
}

static bool write_cr4_safe(uint64_t v)
{
	clear_fault();
	__asm__ volatile(TRY_ASM("mov %0, %%cr4") :: "r"(v) : "memory");
	return fault_vec == NO_FAULT;
}

static void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" :: "r"(v) : "memory"); }
static void write_cr0(uint64_t v) { __asm__ volatile("mov %0, %%cr0" :: "r"(v) : "memory"); }
static uint64_t peek(uint64_t va) { return *(volatile uint64_t *)(uintptr_t)va; }

static uint64_t try_read(uint64_t va)
{
	uint64_t v = 0;
	clear_fault();
	__asm__ volatile(TRY_ASM("mov (%1), %0") : "+r"(v) : "r"(va) : "memory");
	return v;
}

static void try_write(uint64_t va, uint64_t v)
{
	clear_fault();
	__asm__ volatile(TRY_ASM("mov %1, (%0)") : "+r"(va) : "r"(v) : "memory");
}

static uint64_t try_call(uint64_t fn)
{
	uint64_t rax = 0;
	clear_fault();
	__asm__ volatile(TRY_ASM("call *%1") : "+a"(rax) : "r"(fn)
			 : "memory", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "cc");
	return rax;
}

/* --- setup ------------------------------------------------------------------- */


static bool user_page(uint64_t addr)
{
	uint64_t page = addr & ~0xfffull;
	return page == rt_pa(user_page_start) || page == rt_pa(&user_data) || page == rt_pa(user_stack);
}

static void build_tables(void)
{
	pml4[0] = rt_low_map_build(&low_map, user_page);
	pml4[1] = rt_pa(pdpt_t) | PTE_P | PTE_W;
	pdpt_t[0] = rt_pa(pd_t) | PTE_P | PTE_W;
	pd_t[0] = rt_pa(pt_t) | PTE_P | PTE_W;
	write_cr3(rt_pa(pml4));
}

static void build_gdt(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr;
	__asm__ volatile("sgdt %0" : "=m"(gdtr));
	memcpy(gdt, (const void *)(uintptr_t)gdtr.base, 4 * sizeof(uint64_t));
	gdt[SEL_UDATA / 8] = GDT_UDATA;
	gdt[SEL_UCODE / 8] = GDT_UCODE64;
	tss.rsp[0] = rt_pa(kstack + sizeof(kstack));
	tss.iomap_base = sizeof(tss);
	rt_tss_descriptor(&gdt[SEL_TSS / 8], rt_pa(&tss), sizeof(tss) - 1);
	gdtr.limit = sizeof(gdt) - 1;
	gdtr.base = rt_pa(gdt);
	__asm__ volatile("lgdt %0\n\tltr %w1" :: "m"(gdtr), "r"(SEL_TSS) : "memory");
}

static void setup(void)
{
	for (unsigned v = 0; v < 32; v++)
		if (v != X86_NMI)
			idt_set_handler((uint8_t)v, on_fault);
	if (rt_pa(user_stack) >= 2 * PAGE_2M || rt_pa(&user_page_data) >= 2 * PAGE_2M ||
	    rt_pa(user_page_start) >= 2 * PAGE_2M)
		rt_fail_now("ring 3's pages must lie in the first 4 MiB");
	build_tables();
	build_gdt();
	write_cr0((read_cr0() & ~(CR0_EM | CR0_TS)) | CR0_MP | CR0_WP_BIT);
	write_cr4(read_cr4() | CR4_OSFXSR | CR4_OSXMMEXCPT);
	memset(frame_a, 0xaa, sizeof(frame_a));
	memset(frame_b, 0xbb, sizeof(frame_b));
	static const uint8_t code[] = { 0xb8, 0x34, 0x12, 0, 0, 0xc3 };   /* mov $0x1234,%eax; ret */
	memcpy(frame_code, code, sizeof(code));
}

/* --- CPUID model ------------------------------------------------------------ */

struct model {
	uint32_t max, l1[4], l7[4], e1[4], max_ext;
	bool vmdb;
};

static struct model m;

static void read_model(void)
{
	uint32_t r[4];
	cpuid(0, 0, r);
	m.max = r[0];
	char vendor[13] = { 0 };
	memcpy(vendor, &r[1], 4);
	memcpy(vendor + 4, &r[3], 4);
	memcpy(vendor + 8, &r[2], 4);
	cpuid(1, 0, m.l1);
	if (m.max >= 7)
		cpuid(7, 0, m.l7);
	cpuid(0x80000000, 0, r);
	m.max_ext = r[0];
	if (m.max_ext >= 0x80000001)
		cpuid(0x80000001, 0, m.e1);
	char hv[13] = { 0 };
	if (m.l1[2] & BIT(31)) {
		cpuid(0x40000000, 0, r);
		memcpy(hv, &r[1], 12);
	}
	m.vmdb = strcmp(hv, "vmdbvmdbvmdb") == 0;
	printf("cpu: %s, signature 0x%x, hypervisor \"%s\", max leaf 0x%x/0x%x\n", vendor,
	       m.l1[0], hv, m.max, m.max_ext);
	printf("cpu: 1: ecx 0x%x edx 0x%x; 7: ebx 0x%x ecx 0x%x edx 0x%x; 80000001: ecx 0x%x "
	       "edx 0x%x\n", m.l1[2], m.l1[3], m.l7[1], m.l7[2], m.l7[3], m.e1[2], m.e1[3]);
	expect(m.e1[3] & BIT(29), "LM: long mode advertised (we run in it)");
}

static void check_only_known(const char *name, uint32_t advertised, uint32_t known)
{
	char what[64];
	snprintf(what, sizeof(what), "emu advertises only exercised bits: %s", name);
	expect_eq(advertised & ~known, 0, what);
}

static void check_model_emu(void)
{
	uint32_t r[4];
	unsigned ncpus = (unsigned)cmdline_u64("expect_cpus", smp_ncpus());
	check_only_known("leaf 1 edx", m.l1[3], KNOWN_1_EDX);
	check_only_known("leaf 1 ecx", m.l1[2], KNOWN_1_ECX);
	check_only_known("leaf 7 ebx", m.l7[1], KNOWN_7_EBX);
	check_only_known("leaf 7 ecx", m.l7[2], KNOWN_7_ECX);
	check_only_known("leaf 7 edx", m.l7[3], KNOWN_7_EDX);
	check_only_known("80000001 ecx", m.e1[2], KNOWN_E1_ECX);
	check_only_known("80000001 edx", m.e1[3], KNOWN_E1_EDX);
	expect(m.max >= 0x16 && m.max_ext >= 0x80000008, "leaves 0-0x16 and 0x80000000-8");
	expect_eq(m.l7[2] & BIT(16), 0, "LA57 not advertised");
	expect_eq(m.l1[2] & BIT(30), 0, "RDRAND not advertised");
	cpuid(0xb, 1, r);
	expect_eq(r[1] & 0xffff, ncpus, "leaf 0xb: vCPUs in the package = --smp");
	expect_eq(r[3], apic_id(), "leaf 0xb: x2APIC ID = APIC ID");
	expect_eq(m.l1[1] >> 24, apic_id(), "leaf 1: initial APIC ID");
	expect(((m.l1[1] >> 16) & 0xff) >= ncpus, "leaf 1: logical processors >= --smp");
	cpuid(4, 0, r);
	expect_eq(r[0] & 0x1f, 1, "leaf 4.0: a data cache");
	expect_eq((r[0] >> 26) + 1, ncpus, "leaf 4: cores per package = --smp");
	cpuid(0x15, 0, r);
	expect(r[0] && r[1] && r[2], "leaf 0x15: TSC ratio and crystal");
	uint64_t cpuid_khz = r[0] ? (uint64_t)r[2] / 1000 * r[1] / r[0] : 0;
	cpuid(0x16, 0, r);
	expect_eq(r[0], cpuid_khz / 1000, "leaf 0x16: base MHz = TSC MHz");
	uint64_t khz = time_tsc_khz();
	printf("cpu: TSC %lu kHz by CPUID 0x15, %lu kHz measured against the PIT\n",
	       cpuid_khz, khz);
	expect(khz > cpuid_khz * 98 / 100 && khz < cpuid_khz * 102 / 100,
	       "TSC frequency of leaf 0x15 matches the PIT within 2%");
	cpuid(0x80000007, 0, r);
	expect(r[3] & BIT(8), "invariant TSC");
	cpuid(0x80000008, 0, r);
	expect_eq((r[0] >> 8) & 0xff, 48, "48 linear address bits");
}

/* --- features, one by one --------------------------------------------------- */

static bool has(uint32_t reg, unsigned bit, const char *name)
{
	if (reg & BIT(bit))
		return true;
	report_skip(name, "not advertised");
	return false;
}

static void check_basic_insns(void)
{
	if (has(m.l1[3], 0, "FPU")) {
		static uint8_t img[512] __attribute__((aligned(16)));
		uint16_t cw = 0;
		__asm__ volatile("fninit\n\tfxsave64 %0" : "=m"(img));
		memcpy(&cw, img, 2);
		expect_eq(cw, 0x37f, "FPU: FNINIT control word (read by FXSAVE)");
	}
	if (has(m.l1[3], 4, "TSC")) {
		uint64_t a = rdtsc(), b = rdtsc();
		expect(b > a, "TSC: RDTSC counts");
	}
	if (has(m.l1[3], 8, "CX8")) {
		uint64_t mem = 5, rax = 5, rdx = 0;
		__asm__ volatile("lock cmpxchg8b %0" : "+m"(mem), "+a"(rax), "+d"(rdx)
			       : "b"(7), "c"(0) : "cc");
		expect_eq(mem, 7, "CX8: CMPXCHG8B stores");
	}
	if (has(m.l1[3], 15, "CMOV")) {
		uint64_t r = 1;
		__asm__ volatile("cmp %1, %1\n\tcmovz %2, %0" : "+r"(r) : "r"(0ull), "r"(9ull) : "cc");
		expect_eq(r, 9, "CMOV: CMOVZ moves");
	}
	if (has(m.l1[3], 19, "CLFSH")) {
		__asm__ volatile("clflush %0" :: "m"(frame_a[0]));
		expect_eq(((m.l1[1] >> 8) & 0xff) * 8, 64, "CLFSH: CLFLUSH line 64 bytes");
	}
	if (has(m.l7[1], 23, "CLFLUSHOPT")) {
		__asm__ volatile("clflushopt %0" :: "m"(frame_a[0]));
		expect(true, "CLFLUSHOPT runs");
	}
	if (has(m.l7[3], 14, "SERIALIZE")) {
		__asm__ volatile(".byte 0x0f, 0x01, 0xe8" ::: "memory");     /* serialize */
		expect(true, "SERIALIZE runs");
	}
}

static void check_more_insns(void)
{
	if (has(m.l1[2], 13, "CX16")) {
		static uint64_t mem[2] __attribute__((aligned(16))) = { 1, 2 };
		uint64_t rax = 1, rdx = 2;
		__asm__ volatile("lock cmpxchg16b %0" : "+m"(mem), "+a"(rax), "+d"(rdx)
			       : "b"(3ull), "c"(4ull) : "cc");
		expect(mem[0] == 3 && mem[1] == 4, "CX16: CMPXCHG16B stores");
	}
	if (has(m.l1[2], 23, "POPCNT")) {
		uint64_t r;
		__asm__ volatile("popcnt %1, %0" : "=r"(r) : "r"(0xf0f0ull) : "cc");
		expect_eq(r, 8, "POPCNT");
	}
	if (has(m.e1[2], 5, "ABM/LZCNT")) {
		uint64_t r, z;
		__asm__ volatile("lzcnt %1, %0" : "=r"(r) : "r"(1ull) : "cc");
		__asm__ volatile("lzcnt %1, %0" : "=r"(z) : "r"(0ull) : "cc");
		expect(r == 63 && z == 64, "LZCNT (not BSR)");
	}
	if (has(m.e1[2], 0, "LAHF-LM")) {
		uint64_t ah = 0;
		__asm__ volatile("stc\n\tlahf\n\tmov %%ah, %b0" : "+Q"(ah) :: "rax", "cc");
		expect(ah & 1, "LAHF in 64-bit mode");
	}
	if (has(m.e1[2], 8, "PREFETCHW")) {
		__asm__ volatile("prefetchw %0" :: "m"(frame_a[0]));
		expect(true, "PREFETCHW runs");
	}
	if (has(m.l7[1], 9, "ERMS")) {
		static char src[100] = "rep movsb copies this", dst[100];
		void *d = dst; const void *s = src; uint64_t n = sizeof(src);
		__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) :: "memory");
		expect_str(dst, src, "ERMS: REP MOVSB");
	}
}

static void check_sse(void)
{
	if (has(m.l1[3], 25, "SSE")) {
		uint32_t r;
		__asm__ volatile("movd %1, %%xmm0\n\tmovd %2, %%xmm1\n\taddss %%xmm1, %%xmm0\n\t"
				 "movd %%xmm0, %0" : "=r"(r) : "r"(0x3f800000u), "r"(0x40000000u));
		expect_eq(r, 0x40400000u, "SSE: ADDSS 1+2");
	}
	if (has(m.l1[3], 26, "SSE2")) {
		uint64_t r;
		__asm__ volatile("movq %1, %%xmm0\n\tmovq %2, %%xmm1\n\taddsd %%xmm1, %%xmm0\n\t"
				 "movq %%xmm0, %0" : "=r"(r) : "r"(0x3ff0000000000000ull),
				 "r"(0x4000000000000000ull));
		expect_eq(r, 0x4008000000000000ull, "SSE2: ADDSD 1+2");
	}
	if (has(m.l1[3], 24, "FXSR")) {
		static uint8_t img[512] __attribute__((aligned(16)));
		uint32_t csr = 0x1fa0, back = 0;
		__asm__ volatile("ldmxcsr %1\n\tfxsave64 %0" : "=m"(img) : "m"(csr));
		memcpy(&back, img + 24, 4);
		__asm__ volatile("fxrstor64 %0" :: "m"(img));
		expect_eq(back, 0x1fa0, "FXSR: FXSAVE stores MXCSR");
		csr = 0x1f80;
		__asm__ volatile("ldmxcsr %0" :: "m"(csr));
	}
}

/* The bits switched on once the x87/SSE work lands (emu_cpuid.c). */
static void check_sse_later(void)
{
	if (has(m.l1[3], 23, "MMX")) {
		uint64_t r;
		__asm__ volatile("movq %1, %%mm0\n\tpaddb %%mm0, %%mm0\n\tmovq %%mm0, %0\n\temms"
				 : "=r"(r) : "r"(0x0102030405060708ull));
		expect_eq(r, 0x020406080a0c0e10ull, "MMX: PADDB");
	}
	if (has(m.l1[2], 0, "SSE3")) {
		uint32_t r;
		__asm__ volatile("movd %1, %%xmm0\n\tpshufd $0, %%xmm0, %%xmm0\n\t"
				 "haddps %%xmm0, %%xmm0\n\tmovd %%xmm0, %0"
				 : "=r"(r) : "r"(0x3f800000u));
		expect_eq(r, 0x40000000u, "SSE3: HADDPS");
		uint64_t one = 0x3ff0000000000000ull;           /* 1.0 */
		int64_t i = 0;
		__asm__ volatile("fldl %1\n\tfisttpll %0" : "=m"(i) : "m"(one));
		expect_eq(i, 1, "SSE3: FISTTP");
	}
	if (has(m.l1[2], 22, "MOVBE")) {
		uint64_t mem = 0x0102030405060708ull, r = 0;
		__asm__ volatile("movbe %1, %0" : "=r"(r) : "m"(mem));
		expect_eq(r, 0x0807060504030201ull, "MOVBE: load swaps bytes");
	}
	if (has(m.l1[2], 9, "SSSE3")) {
		uint64_t r;
		__asm__ volatile("movq %1, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpshufb %%xmm1, %%xmm0\n\t"
				 "movq %%xmm0, %0" : "=r"(r) : "r"(0x0807060504030201ull));
		expect_eq(r, 0x0101010101010101ull, "SSSE3: PSHUFB broadcast");
		__asm__ volatile("movq %1, %%xmm0\n\tmovq %2, %%xmm1\n\tpalignr $3, %%xmm1, %%xmm0\n\t"
				 "movq %%xmm0, %0" : "=r"(r) : "r"(0x1817161514131211ull),
				 "r"(0x0807060504030201ull));
		expect_eq(r, 0x0000000807060504ull, "SSSE3: PALIGNR (glibc's memcpy)");
	}
	if (has(m.l1[2], 19, "SSE4.1")) {
		uint64_t r;
		__asm__ volatile("movq %1, %%xmm0\n\tpextrb $3, %%xmm0, %k0"
				 : "=r"(r) : "r"(0x0807060504030201ull));
		expect_eq(r, 4, "SSE4.1: PEXTRB");
		__asm__ volatile("movq %1, %%xmm0\n\tmovq %2, %%xmm1\n\tptest %%xmm1, %%xmm0\n\t"
				 "setz %b0\n\tmovzbl %b0, %k0" : "=r"(r) : "r"(0xf0ull), "r"(0x0full)
				 : "cc");
		expect_eq(r, 1, "SSE4.1: PTEST of disjoint masks sets ZF");
	}
	if (has(m.l1[2], 20, "SSE4.2")) {
		uint32_t c = 0;
		__asm__ volatile("crc32b %1, %0" : "+r"(c) : "r"((uint8_t)'a'));
		expect_eq(c, 0x93ad1061u, "SSE4.2: CRC32 (Castagnoli) of 'a' from 0");
		static const char hay[16] __attribute__((aligned(16))) = "hello, world";
		static const char needle[16] __attribute__((aligned(16))) = "w";
		uint64_t idx;
		__asm__ volatile("movdqa %1, %%xmm0\n\tpcmpistri $0x0c, %2, %%xmm0\n\t"
				 "movl %%ecx, %k0" : "=r"(idx) : "m"(needle), "m"(hay) : "rcx", "cc");
		expect_eq(idx, 7, "SSE4.2: PCMPISTRI finds a substring (glibc's strstr)");
	}
}

static void check_xsave(void)
{
	if (!has(m.l1[2], 26, "XSAVE"))
		return;
	uint64_t cr4 = read_cr4();
	write_cr4(cr4 | CR4_OSXSAVE);
	uint32_t r[4];
	cpuid(1, 0, r);
	expect(r[2] & BIT(27), "OSXSAVE follows CR4.OSXSAVE (set)");
	__asm__ volatile("xsetbv" :: "c"(0), "a"(3), "d"(0));
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	expect_eq(lo, 3, "XSAVE: XGETBV reads XCR0");
	static uint8_t area[1024] __attribute__((aligned(64)));
	memset(area, 0, sizeof(area));
	uint64_t v = 0x1122334455667788ull, back = 0;
	__asm__ volatile("movq %1, %%xmm2\n\txsave64 %0" : "+m"(area) : "r"(v), "a"(3), "d"(0));
	__asm__ volatile("pxor %%xmm2, %%xmm2\n\txrstor64 %1\n\tmovq %%xmm2, %0"
			 : "=r"(back) : "m"(area), "a"(3), "d"(0));
	expect_eq(back, v, "XSAVE/XRSTOR round trip of XMM2");
	write_cr4(cr4 & ~CR4_OSXSAVE);
	cpuid(1, 0, r);
	expect(!(r[2] & BIT(27)), "OSXSAVE follows CR4.OSXSAVE (clear)");
	expect(!write_cr4_safe(read_cr4() | (1ull << 12)), "CR4.LA57 in long mode: #GP");
}

/* --- MSRs ------------------------------------------------------------------------ */

static void check_msrs(void)
{
	static const struct { uint32_t msr; const char *name; } linux_reads[] = {
		{ 0xc0000080, "EFER" }, { 0xc0000081, "STAR" }, { 0xc0000082, "LSTAR" },
		{ 0xc0000083, "CSTAR" }, { 0xc0000084, "SFMASK" }, { 0xc0000100, "FS_BASE" },
		{ 0xc0000101, "GS_BASE" }, { 0xc0000102, "KERNEL_GS_BASE" },
		{ 0x1b, "APIC_BASE" }, { 0x277, "PAT" },
		{ 0xfe, "MTRRCAP" }, { 0x2ff, "MTRR_DEF_TYPE" }, { 0x200, "MTRR_PHYSBASE0" },
		{ 0x201, "MTRR_PHYSMASK0" }, { 0x250, "MTRR_FIX64K" }, { 0x1a0, "MISC_ENABLE" },
		{ 0x10, "TSC" }, { 0x174, "SYSENTER_CS" }, { 0x175, "SYSENTER_ESP" },
		{ 0x176, "SYSENTER_EIP" }, { 0x179, "MCG_CAP" }, { 0x17a, "MCG_STATUS" },
		{ 0x8b, "UCODE_REV" },
	};
	uint64_t v;
	char what[64];
	for (unsigned i = 0; i < sizeof(linux_reads) / sizeof(linux_reads[0]); i++) {
		snprintf(what, sizeof(what), "RDMSR %s", linux_reads[i].name);
		expect(rdmsr_safe(linux_reads[i].msr, &v), what);
	}
	if ((m.e1[3] & BIT(27)) || (m.l7[2] & BIT(22)))
		expect(rdmsr_safe(MSR_TSC_AUX_, &v), "RDMSR TSC_AUX (RDTSCP or RDPID)");
	if (m.vmdb) {
		/* as hardware does; KVM lets some of these through */
		expect(!rdmsr_safe(0x48, &v), "SPEC_CTRL not advertised: #GP");
		expect(!wrmsr_safe(0xc0000082, 0x0000800000000000ull), "LSTAR non-canonical: #GP");
		expect(!wrmsr_safe(0x277, 0x0007040600070402ull), "PAT with a reserved type: #GP");
		expect(!wrmsr_safe(MSR_TSC_AUX_, 1ull << 32), "TSC_AUX high half: #GP");
		expect(rdmsr_safe(0x3a, &v) && v == 1, "FEATURE_CONTROL: locked, no VMX");
		expect(!wrmsr_safe(0x3a, 5), "FEATURE_CONTROL: locked, writes #GP");
		expect(rdmsr_safe(0xce, &v) && ((v >> 8) & 0xff) == 10, "PLATFORM_INFO: ratio 10");
		expect(rdmsr_safe(0x179, &v) && (v & 0xff) == 0, "MCG_CAP: 0 banks");
		expect(rdmsr_safe(0x2ff, &v) && v == 0x806, "MTRR_DEF_TYPE: enabled, WB");
	}
	if (has(m.l7[3], 29, "ARCH_CAPABILITIES"))
		expect(rdmsr_safe(0x10a, &v) && (v & 1), "ARCH_CAPABILITIES: RDCL_NO");
	expect(!rdmsr_safe(0x12345678, &v) && fault_vec == X86_GP, "unknown MSR: #GP");
}

static void check_msr_features(void)
{
	uint64_t v;
	uint32_t pmu[4];
	cpuid(0xa, 0, pmu);
	if ((pmu[0] & 0xff) == 0 && m.max >= 0xa) {
		uint32_t lo = 0, hi = 0;
		clear_fault();
		__asm__ volatile(TRY_ASM("rdpmc") : "+a"(lo), "+d"(hi) : "c"(0) : "memory");
		expect_eq(fault_vec, X86_GP, "no PMU (leaf 0xa): RDPMC #GP");
	}
	if (has(m.l1[3], 12, "MTRR")) {
		expect(rdmsr_safe(0xfe, &v) && (v & 0xff) >= 1, "MTRR: variable ranges");
		uint64_t b = 0x80000006ull, msk = 0xff80000800ull, rb = 0, rm = 0;
		expect(wrmsr_safe(0x200, b) && wrmsr_safe(0x201, msk), "MTRR: write a range");
		rdmsr_safe(0x200, &rb);
		rdmsr_safe(0x201, &rm);
		expect(rb == b && rm == msk, "MTRR: the range reads back");
		wrmsr(0x201, 0);
		wrmsr(0x200, 0);
	}
	if (has(m.l1[3], 16, "PAT")) {
		uint64_t pat = rdmsr(0x277), alt = 0x0007010600070106ull;
		wrmsr(0x277, alt);
		expect_eq(rdmsr(0x277), alt, "PAT: write and read back");
		wrmsr(0x277, pat);
	}
	if (has(m.l1[3], 5, "MSR"))
		expect(rdmsr_safe(0x10, &v) && v, "MSR: RDMSR TSC");
	if (has(m.l1[3], 9, "APIC"))
		expect(rdmsr(0x1b) & (1ull << 11), "APIC: APIC_BASE enabled");
}

/* --- control-register features ------------------------------------------------ */

static void check_cr4_bits(void)
{
	uint64_t cr4 = read_cr4();
	if (has(m.l1[3], 2, "DE")) {
		expect(write_cr4_safe(cr4 | CR4_DE) && (read_cr4() & CR4_DE), "DE: CR4.DE sets");
		write_cr4(cr4);
	}
	if (has(m.l1[3], 3, "PSE")) {
		expect(write_cr4_safe(cr4 | CR4_PSE), "PSE: CR4.PSE sets");
		write_cr4(cr4);
	}
	if (has(m.l1[3], 6, "PAE"))
		expect(cr4 & CR4_PAE, "PAE: CR4.PAE in long mode");
	if (has(m.l1[3], 17, "PSE-36"))
		report_skip("PSE-36", "32-bit paging only: nothing to run in long mode");
	if (has(m.l1[3], 28, "HTT"))
		expect(((m.l1[1] >> 16) & 0xff) >= 1, "HTT: logical processor count valid");
	if (has(m.l1[2], 31, "hypervisor")) {
		uint32_t r[4];
		cpuid(0x40000000, 0, r);
		expect(r[0] >= 0x40000000, "hypervisor leaf present");
	}
}

/* Global pages and CR3 writes; PGE toggling; INVLPG in a 2 MiB page. */
static void check_global_and_invlpg(void)
{
	uint64_t cr3 = read_cr3(), cr4 = read_cr4();
	pt_t[0] = rt_pa(frame_a) | PTE_P | PTE_W;
	rt_invlpg(TVA_PAGE(0));
	expect_eq(peek(TVA_PAGE(0)), 0xaaaaaaaaaaaaaaaaull, "test page maps frame A");
	pt_t[0] = rt_pa(frame_b) | PTE_P | PTE_W;
	write_cr3(cr3);
	expect_eq(peek(TVA_PAGE(0)), 0xbbbbbbbbbbbbbbbbull, "CR3 write drops a non-global page");
	if (has(m.l1[3], 13, "PGE")) {
		write_cr4(cr4 | CR4_PGE);
		pt_t[1] = rt_pa(frame_a) | PTE_P | PTE_W | PTE_G;
		rt_invlpg(TVA_PAGE(1));
		expect_eq(peek(TVA_PAGE(1)), 0xaaaaaaaaaaaaaaaaull, "global page maps frame A");
		pt_t[1] = rt_pa(frame_b) | PTE_P | PTE_W | PTE_G;
		write_cr3(cr3);
		uint64_t kept = peek(TVA_PAGE(1));
		if (m.vmdb)
			expect_eq(kept, 0xaaaaaaaaaaaaaaaaull, "PGE: a CR3 write keeps a global page");
		rt_invlpg(TVA_PAGE(1));
		expect_eq(peek(TVA_PAGE(1)), 0xbbbbbbbbbbbbbbbbull, "PGE: INVLPG drops a global page");
		pt_t[1] = rt_pa(frame_a) | PTE_P | PTE_W | PTE_G;
		write_cr4(cr4 & ~CR4_PGE);
		write_cr4(cr4 | CR4_PGE);
		expect_eq(peek(TVA_PAGE(1)), 0xaaaaaaaaaaaaaaaaull,
			  "PGE: toggling CR4.PGE drops global pages");
	}
	/* INVLPG of another 4 KiB of a 2 MiB page drops the whole page */
	*(volatile uint64_t *)(uintptr_t)(LARGE_A + LARGE_OFF) = 0xa11a;
	*(volatile uint64_t *)(uintptr_t)(LARGE_B + LARGE_OFF) = 0xb11b;
	pd_t[1] = LARGE_A | PTE_P | PTE_W | PTE_PS;
	rt_invlpg(TVA_2M + LARGE_OFF);
	expect_eq(peek(TVA_2M + LARGE_OFF), 0xa11a, "2 MiB page maps region A");
	pd_t[1] = LARGE_B | PTE_P | PTE_W | PTE_PS;
	rt_invlpg(TVA_2M + 0x100000);
	expect_eq(peek(TVA_2M + LARGE_OFF), 0xb11b, "INVLPG anywhere in a 2 MiB page drops it");
	if (has(m.e1[3], 26, "1 GiB pages")) {
		pdpt_t[1] = 0 | PTE_P | PTE_W | PTE_PS;
		rt_invlpg(TVA_1G + LARGE_A + LARGE_OFF);
		expect_eq(peek(TVA_1G + LARGE_A + LARGE_OFF), 0xa11a, "1 GiB page maps physical 0");
	}
	write_cr4(cr4);
}

static uint8_t try_invpcid(uint64_t type, uint64_t pcid, uint64_t addr)
{
	struct { uint64_t pcid, addr; } desc = { pcid, addr };
	clear_fault();
	__asm__ volatile(TRY_ASM("invpcid %1, %0") : "+r"(type) : "m"(desc) : "memory");
	return fault_vec;
}

static void check_pcid(void)
{
	if (!has(m.l1[2], 17, "PCID"))
		return;
	uint64_t cr3 = read_cr3() & ~0xfffull, cr4 = read_cr4();
	write_cr3(cr3 | 1);
	expect(!write_cr4_safe(cr4 | CR4_PCIDE), "PCID: CR4.PCIDE with CR3 PCID != 0: #GP");
	write_cr3(cr3);
	expect(write_cr4_safe(cr4 | CR4_PCIDE), "PCID: CR4.PCIDE sets");
	pt_t[0] = rt_pa(frame_a) | PTE_P | PTE_W;
	write_cr3(cr3 | 1);
	expect_eq(read_cr3(), cr3 | 1, "PCID: CR3 holds PCID 1");
	expect_eq(peek(TVA_PAGE(0)), 0xaaaaaaaaaaaaaaaaull, "PCID 1 maps frame A");
	pt_t[0] = rt_pa(frame_b) | PTE_P | PTE_W;
	write_cr3(cr3 | 1 | CR3_NOFLUSH);
	expect_eq(read_cr3(), cr3 | 1, "PCID: bit 63 is not kept in CR3");
	uint64_t kept = peek(TVA_PAGE(0));
	if (m.vmdb)
		expect_eq(kept, 0xaaaaaaaaaaaaaaaaull, "PCID: CR3 bit 63 keeps the PCID's entries");
	write_cr3(cr3 | 1);
	expect_eq(peek(TVA_PAGE(0)), 0xbbbbbbbbbbbbbbbbull, "PCID: CR3 without bit 63 drops them");
	if (has(m.l7[1], 10, "INVPCID")) {
		pt_t[0] = rt_pa(frame_a) | PTE_P | PTE_W;
		expect_eq(try_invpcid(0, 1, TVA_PAGE(0)), NO_FAULT, "INVPCID type 0 runs");
		expect_eq(peek(TVA_PAGE(0)), 0xaaaaaaaaaaaaaaaaull, "INVPCID 0 drops the address");
		pt_t[0] = rt_pa(frame_b) | PTE_P | PTE_W;
		try_invpcid(1, 1, 0);
		expect_eq(peek(TVA_PAGE(0)), 0xbbbbbbbbbbbbbbbbull, "INVPCID 1 drops the PCID");
		pt_t[0] = rt_pa(frame_a) | PTE_P | PTE_W;
		try_invpcid(3, 0, 0);
		expect_eq(peek(TVA_PAGE(0)), 0xaaaaaaaaaaaaaaaaull, "INVPCID 3 drops non-global");
		pt_t[1] = rt_pa(frame_b) | PTE_P | PTE_W | PTE_G;
		try_invpcid(2, 0, 0);
		expect_eq(peek(TVA_PAGE(1)), 0xbbbbbbbbbbbbbbbbull, "INVPCID 2 drops global pages");
		expect_eq(try_invpcid(4, 0, 0), X86_GP, "INVPCID type 4: #GP");
		expect_eq(try_invpcid(0, 1, 0x0000800000000000ull), X86_GP,
			  "INVPCID non-canonical address: #GP");
	}
	write_cr3(cr3);
	write_cr4(cr4);
}

static void check_nx_wp(void)
{
	if (has(m.e1[3], 20, "NX")) {
		wrmsr(0xc0000080, rdmsr(0xc0000080) | EFER_NXE);
		pt_t[2] = rt_pa(frame_code) | PTE_P | PTE_NX;
		rt_invlpg(TVA_PAGE(2));
		try_call(TVA_PAGE(2));
		expect(fault_vec == X86_PF && fault_err == 0x11 && fault_cr2 == TVA_PAGE(2),
		       "NX: fetch from an NX page: #PF P|I");
		pt_t[2] = rt_pa(frame_code) | PTE_P;
		rt_invlpg(TVA_PAGE(2));
		expect(try_call(TVA_PAGE(2)) == 0x1234 && fault_vec == NO_FAULT,
		       "NX: the same page without NX runs");
	}
	pt_t[3] = rt_pa(frame_a) | PTE_P;
	rt_invlpg(TVA_PAGE(3));
	try_write(TVA_PAGE(3), 1);
	expect(fault_vec == X86_PF && fault_err == 0x3, "WP: ring-0 write to a read-only page: #PF");
	write_cr0(read_cr0() & ~CR0_WP_BIT);
	try_write(TVA_PAGE(3), 0xaaaaaaaaaaaaaaaaull);
	expect_eq(fault_vec, NO_FAULT, "WP off: ring 0 writes a read-only page");
	write_cr0(read_cr0() | CR0_WP_BIT);
}

static void check_smep_smap(void)
{
	uint64_t cr4 = read_cr4(), ud = rt_pa(&user_data);
	if (has(m.l7[1], 7, "SMEP")) {
		expect(try_call(rt_pa(user_ret)) == 0 && fault_vec == NO_FAULT,
		       "SMEP off: ring 0 runs a user page");
		write_cr4(cr4 | CR4_SMEP_);
		try_call(rt_pa(user_ret));
		expect(fault_vec == X86_PF && fault_err == 0x11 && fault_cr2 == rt_pa(user_ret),
		       "SMEP: ring-0 fetch from a user page: #PF P|I");
		write_cr4(cr4);
	}
	if (has(m.l7[1], 20, "SMAP")) {
		user_data.gs_magic = 0x5a;
		write_cr4(cr4 | CR4_SMAP_);
		try_read(ud);
		expect(fault_vec == X86_PF && fault_err == 0x1 && fault_cr2 == ud,
		       "SMAP: ring-0 read of a user page: #PF P");
		__asm__ volatile("stac" ::: "memory");
		expect(try_read(ud) == 0x5a && fault_vec == NO_FAULT, "SMAP: allowed after STAC");
		try_write(ud, 0x5b);
		expect_eq(fault_vec, NO_FAULT, "SMAP: write allowed after STAC");
		__asm__ volatile("clac" ::: "memory");
		try_read(ud);
		expect_eq(fault_vec, X86_PF, "SMAP: #PF again after CLAC");
		__asm__ volatile("stac" ::: "memory");
		try_read(ud);
		__asm__ volatile("pushfq\n\tandq %0, (%%rsp)\n\tpopfq" :: "r"(~RFLAGS_AC) : "cc");
		try_read(ud);
		expect_eq(fault_vec, X86_PF, "SMAP: #PF again after POPF clears AC");
		write_cr4(cr4);
		expect_eq(user_data.gs_magic, 0x5b, "SMAP off: ring 0 reads the user page");
	}
}

/* --- ring 3 ----------------------------------------------------------------------- */

static void run_user(void (*entry)(void))
{
	clear_fault();
	sc_rcx = sc_r11 = sc_rax = sc_rflags = 0;
	in_user_run = true;
	cpu_user_run(entry, rt_pa(user_stack + sizeof(user_stack)));
	in_user_run = false;
}

static void check_syscall(void)
{
	uint64_t gs = rdmsr(MSR_GS_BASE), ud = rt_pa(&user_data);
	wrmsr(0xc0000080, rdmsr(0xc0000080) | EFER_SCE);
	wrmsr(0xc0000081, (uint64_t)SEL_STAR_USER << 48 | (uint64_t)SEL_KCODE << 32);
	wrmsr(0xc0000082, rt_pa(cpu_syscall_entry));
	wrmsr(0xc0000084, MSR_SYSCALL_MASK_BITS);
	wrmsr(MSR_KERNEL_GS_BASE, ud);
	user_data.gs_magic = 0x6a6a;
	run_user(user_syscall_test);
	expect_eq(fault_vec, NO_FAULT, "SYSRET to ring 3 and SYSCALL back without a fault");
	expect_eq(user_data.cs, SEL_UCODE | 3, "SYSRET: ring-3 CS from STAR[63:48] + 16");
	expect_eq(user_data.ss, SEL_UDATA | 3, "SYSRET: ring-3 SS from STAR[63:48] + 8");
	expect_eq(user_data.gs_read, 0x6a6a, "SWAPGS: ring 3 sees its GS base");
	expect_eq(sc_rax, 0x5ca11ed, "SYSCALL: RAX arrives");
	expect_eq(sc_rcx, rt_pa(user_after_syscall), "SYSCALL: RCX = the next instruction");
	expect_eq(sc_r11 & (RFLAGS_AC | RFLAGS_CF), RFLAGS_AC | RFLAGS_CF,
		  "SYSCALL: R11 = ring 3's RFLAGS");
	expect_eq(sc_rflags & RFLAGS_AC, 0, "SYSCALL: FMASK clears AC");
	expect_eq(sc_cs, SEL_KCODE, "SYSCALL: CS from STAR[47:32]");
	expect_eq(sc_ss, SEL_KDATA, "SYSCALL: SS from STAR[47:32] + 8");
	expect_eq(rdmsr(MSR_KERNEL_GS_BASE), ud, "SWAPGS: KERNEL_GS_BASE holds ring 3's again");
	expect_eq(rdmsr(MSR_GS_BASE), gs, "SWAPGS: GS_BASE is the kernel's again");

	uint64_t rcx = 0x0000800000000000ull;
	clear_fault();
	__asm__ volatile(TRY_ASM("mov $2, %%r11d\n\tsysretq") : "+c"(rcx) :: "r11", "memory");
	expect(fault_vec == X86_GP && fault_cs == SEL_KCODE,
	       "SYSRET to a non-canonical RIP: #GP in ring 0");
	wrmsr(MSR_GS_BASE, gs);
}

/* UMIP, RDTSCP and RDPID, the last two also from ring 3 (after check_syscall). */
static void check_ring3_misc(void)
{
	uint64_t cr4 = read_cr4();
	if (has(m.l7[2], 2, "UMIP")) {
		run_user(user_sgdt);
		expect(fault_vec == NO_FAULT && sc_rax == 0, "UMIP off: SGDT in ring 3 runs");
		write_cr4(cr4 | CR4_UMIP);
		run_user(user_sgdt);
		expect(fault_vec == X86_GP && (fault_cs & 3) == 3, "UMIP: SGDT in ring 3: #GP");
		uint16_t msw;
		__asm__ volatile("smsw %0" : "=r"(msw));
		expect(msw & 1, "UMIP: SMSW in ring 0 runs");
		write_cr4(cr4);
	}
	wrmsr(MSR_TSC_AUX_, 0x42);
	if (has(m.e1[3], 27, "RDTSCP")) {
		uint32_t lo, hi, aux;
		__asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
		expect_eq(aux, 0x42, "RDTSCP: ECX = TSC_AUX");
	}
	if (has(m.l7[2], 22, "RDPID")) {
		uint64_t id;
		__asm__ volatile("rdpid %0" : "=r"(id));
		expect_eq(id, 0x42, "RDPID in ring 0 = TSC_AUX");
		run_user(user_rdpid);
		expect(fault_vec == NO_FAULT && sc_rax == 0x42, "RDPID in ring 3 = TSC_AUX");
	}
}

/* --- x2APIC and the TSC-deadline timer ------------------------------------------ */

static volatile uint64_t deadline_hit_tsc;

static void on_deadline(struct rt_frame *f)
{
	(void)f;
	deadline_hit_tsc = rdtsc();
	apic_eoi();
}



static void check_x2apic_deadline(void)
{
	if (!has(m.l1[2], 21, "x2APIC"))
		return;
	expect(apic_enable_x2apic(), "x2APIC: enable");
	uint32_t r[4];
	cpuid(0xb, 0, r);
	expect_eq(rdmsr(MSR_X2APIC_ID), r[3], "x2APIC: ID MSR = CPUID 0xb EDX");
	if (!has(m.l1[2], 24, "TSC-deadline"))
		return;
	idt_set_handler(DEADLINE_VECTOR, on_deadline);
	wrmsr(MSR_X2APIC_LVTT, DEADLINE_VECTOR | LVTT_TSC_DEADLINE);
	uint64_t deadline = rdtsc() + time_tsc_khz() * 2;        /* 2 ms */
	wrmsr(MSR_TSC_DEADLINE, deadline);
	expect_eq(rdmsr(MSR_TSC_DEADLINE), deadline, "TSC deadline reads back armed");
	sti();
	pit_wait_us(10000);                 /* the deadline is at 2 ms */
	cli();
	bool fired = deadline_hit_tsc != 0;
	expect(fired, "TSC-deadline timer fires");
	expect(deadline_hit_tsc >= deadline, "TSC-deadline timer fires at or after the deadline");
	expect_eq(rdmsr(MSR_TSC_DEADLINE), 0, "TSC deadline reads 0 once fired");
	wrmsr(MSR_X2APIC_LVTT, APIC_LVT_MASKED);
}

/* VERR/VERW/LAR/LSL (Linux's MDS mitigation runs VERW on every return to
 * user space): ZF says whether the selector passes, never a fault. */
static bool zf_of_verr(uint16_t sel, bool write)
{
	bool zf;
	if (write)
		__asm__ volatile("verw %w1" : "=@ccz"(zf) : "r"(sel));
	else
		__asm__ volatile("verr %w1" : "=@ccz"(zf) : "r"(sel));
	return zf;
}

static void check_segment_probes(void)
{
	expect(zf_of_verr(SEL_UDATA, true), "VERW: writable data segment passes");
	expect(zf_of_verr(SEL_UCODE, false), "VERR: readable code segment passes");
	expect(!zf_of_verr(SEL_UCODE, true), "VERW: code segment fails");
	expect(!zf_of_verr(0, false), "VERR: null selector fails");
	expect(!zf_of_verr(0xfff8, false), "VERR: selector beyond the GDT fails");
	uint64_t limit = 0, attr = 0;
	bool zf;
	__asm__ volatile("lsl %w2, %0" : "=r"(limit), "=@ccz"(zf) : "r"(SEL_TSS));
	expect(zf && limit == sizeof(tss) - 1, "LSL: TSS limit");
	__asm__ volatile("lar %w2, %0" : "=r"(attr), "=@ccz"(zf) : "r"(SEL_UCODE));
	expect_eq(zf ? attr : ~0ull, (GDT_UCODE64 >> 32) & 0x00f0ff00, "LAR: user code attributes");
}

int main(void)
{
	setup();
	time_calibrate();
	read_model();
	if (m.vmdb)
		check_model_emu();
	if (cmdline_u64("insns", 1)) {
		check_basic_insns();
		check_more_insns();
		check_sse();
		check_sse_later();
		check_xsave();
		check_segment_probes();
	}
	check_msrs();
	check_msr_features();
	check_cr4_bits();
	check_global_and_invlpg();
	check_pcid();
	check_nx_wp();
	check_smep_smap();
	if (cmdline_u64("ring3", 1) && (m.e1[3] & BIT(11))) {
		check_syscall();
		check_ring3_misc();
	}
	check_x2apic_deadline();
	return report_summary();
}

