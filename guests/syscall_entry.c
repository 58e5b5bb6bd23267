/* guests/syscall_entry.c — syscall_entry.elf: a ring-3 task that makes
 * system calls into an entry built as Linux builds entry_SYSCALL_64: Linux's
 * GDT layout and STAR (kernel CS 0x10, user CS 0x33, SS 0x2b), FMASK
 * clearing TF, DF, IF, AC..., KERNEL_GS_BASE, an entry that starts with
 * SWAPGS, saves the user RSP through %gs, switches CR3 away from the user
 * copy of the page tables (PTI; with PCID bits where CPUID has PCID),
 * loads the kernel stack through %gs, pushes a pt_regs frame and returns
 * with SYSRETQ, or with IRETQ on the other path; the first entry to ring 3
 * is an IRETQ, as Linux starts init. Checked from inside: the state ring 0
 * sees at each call (CS, SS, RFLAGS, GS bases, CR3, RCX/R11/RSP in the
 * frame), what ring 3 gets back, a call made with TF set by the task (one
 * #DB, after the SYSRETQ, at the first user instruction), and one at
 * `sc_user_step` that a debugger may single-step.
 *
 * `pti=0` leaves out the CR3 switches; `clac=0` the #PF entry's CLAC (as
 * Linux without SMAP); `tf_trap=any` also takes the TF
 * call's #DB after the first user instruction instead of before it (a host
 * whose emulator runs SYSRETQ: the CPU traps one instruction late). Labels for debuggers: sc_user_step
 * (the SYSCALL a debugger steps over), sc_user_step_ret (after it),
 * sc_entry (LSTAR). */
#include "guests/rt/cmdline.h"
#include "guests/rt/desc.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/paging.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "guests/rt/string.h"

/* Linux's GDT layout; 0x08 stays the runtime's 64-bit code (its IDT uses it) */
#define SEL_RT_CODE   0x08
#define SEL_KCODE     0x10
#define SEL_KDATA     0x18
#define SEL_UCODE32   0x23
#define SEL_UDATA     0x2b
#define SEL_UCODE     0x33
#define SEL_TSS       0x40
#define GDT_CODE64    0x00af9b000000ffffull
#define GDT_DATA      0x00cf93000000ffffull
#define GDT_UCODE32   0x00cffb000000ffffull
#define GDT_UDATA     0x00cff3000000ffffull
#define GDT_UCODE64   0x00affb000000ffffull

#define SC_FMASK (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_TF | \
		  RFLAGS_IF | RFLAGS_DF | RFLAGS_OF | RFLAGS_IOPL_MASK | RFLAGS_NT | RFLAGS_RF | \
		  RFLAGS_AC | RFLAGS_ID)   /* Linux's SYSCALL mask */
/* what the entry's own instructions leave alone of it */
#define SC_FMASK_KEPT (RFLAGS_TF | RFLAGS_IF | RFLAGS_DF | RFLAGS_IOPL_MASK | RFLAGS_NT | \
		       RFLAGS_AC | RFLAGS_ID)

#define CR4_PCIDE (1ull << 17)
#define CPUID1_ECX_PCID (1u << 17)
#define CPUID7_EBX_SMAP (1u << 20)
#define KERN_PCID        1ull
#define CR3_NOFLUSH_BIT  63

#define NR_PLAIN  1      /* returns by SYSRETQ */
#define NR_IRET   2      /* returns by IRETQ */
#define NR_TF     3      /* made with TF set */
#define NR_STEP   4      /* a debugger may step over it */
#define NR_EXIT   60     /* back to the kernel's context for good */
#define NR_CALLS  4
#define SC_RET(nr) (0x5c000000ull + (nr))
#define PCPU_PATH_SYSRET 0
#define PCPU_PATH_IRET   1
#define PCPU_PATH_EXIT   2
#define NO_FAULT 0xffu

/* Kernel GS: the runtime's rt_cpu pointer first (this_cpu() keeps working),
 * then what the entry reaches through %gs, at the offsets it names. */
struct kpcpu {
	struct rt_cpu *self;     /* 0 */
	uint64_t user_rsp;       /* 8: the user RSP while the entry has no stack */
	uint64_t top_of_stack;   /* 16 */
	uint64_t pti;            /* 24: bit 0 CR3 switches, bit 1 with PCID */
	uint64_t path;           /* 32: PCPU_PATH_* */
	uint64_t kernel_rsp;     /* 40: run_user's own stack, for NR_EXIT */
};
struct kpcpu kpcpu __attribute__((aligned(64)));

/* pt_regs as the entry pushes it */
struct sc_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t nr, rip, cs, rflags, rsp, ss;
};

/* What ring 0 saw at each call */
struct sc_seen {
	uint64_t calls, nr, cs, ss, rflags, gs_base, kernel_gs_base, cr3, rip, user_rflags,
		user_rsp, frame_cs, frame_ss, rdi;
};
static struct sc_seen seen[NR_CALLS + 1];
static unsigned nr_seen;

/* Ring 3's page: GS points at its start; ring 3 writes what it sees after it. */
struct user_area {
	uint64_t gs_magic;       /* 0: %gs:0 in ring 3 */
	uint64_t cs, ss, gs_read; /* 8, 16, 24 */
	uint64_t ret[NR_CALLS + 1]; /* 32: RAX back from call n */
	uint64_t rflags_after[NR_CALLS + 1]; /* 72: RFLAGS right after call n */
	uint64_t rsp_after[NR_CALLS + 1]; /* 112 */
};
union user_page {
	struct user_area a;
	uint8_t bytes[4096];
};
union user_page sc_udata __attribute__((aligned(4096)));
uint8_t sc_ustack[4096] __attribute__((aligned(4096)));
static uint8_t kstack[8192] __attribute__((aligned(16)));
static uint8_t tss_stack[8192] __attribute__((aligned(16)));

uint64_t sc_handle(struct sc_regs *r);
void sc_entry(void);
void sc_user_main(void);
void sc_user_page(void);
void sc_user_after_plain(void);
void sc_user_after_iret(void);
void sc_user_after_tf(void);
void sc_user_after_tf_next(void);
void sc_user_step(void);
void sc_user_step_ret(void);
void sc_enter_user(uint64_t rip, uint64_t rsp);

#define UA_RET(n)  "sc_udata+32+8*" #n
#define UA_FLG(n)  "sc_udata+72+8*" #n
#define UA_RSP(n)  "sc_udata+112+8*" #n

/* The ring-3 task. */
__asm__(
	"	.section .text.user_page, \"ax\"\n"
	"	.balign 4096\n"
	"	.globl sc_user_page, sc_user_main, sc_user_after_plain, sc_user_after_iret\n"
	"	.globl sc_user_after_tf, sc_user_after_tf_next, sc_user_step, sc_user_step_ret\n"
	"sc_user_page:\n"
	"sc_user_main:\n"
	"	mov %cs, %eax\n	mov %rax, sc_udata+8(%rip)\n"
	"	mov %ss, %eax\n	mov %rax, sc_udata+16(%rip)\n"
	"	mov %gs:0, %rax\n	mov %rax, sc_udata+24(%rip)\n"
	/* 1: with AC, DF and CF set, back by SYSRETQ */
	"	pushfq\n	orq $0x40401, (%rsp)\n	popfq\n"
	"	mov $1, %eax\n	mov $0x1111, %edi\n"
	"	syscall\n"
	"sc_user_after_plain:\n"
	"	pushfq\n	popq " UA_FLG(1) "(%rip)\n"
	"	mov %rsp, " UA_RSP(1) "(%rip)\n"
	"	mov %rax, " UA_RET(1) "(%rip)\n"
	"	cld\n	pushfq\n	andq $~0x40001, (%rsp)\n	popfq\n"
	/* 2: back by IRETQ */
	"	mov $2, %eax\n	mov $0x2222, %edi\n"
	"	syscall\n"
	"sc_user_after_iret:\n"
	"	pushfq\n	popq " UA_FLG(2) "(%rip)\n"
	"	mov %rsp, " UA_RSP(2) "(%rip)\n"
	"	mov %rax, " UA_RET(2) "(%rip)\n"
	/* 3: TF set: FMASK clears it in ring 0, SYSRETQ brings it back */
	"	pushfq\n	orq $0x100, (%rsp)\n	mov $3, %eax\n	mov $0x3333, %edi\n	popfq\n"
	"	syscall\n"
	"sc_user_after_tf:\n"
	"	pushfq\n"
	"sc_user_after_tf_next:\n"
	"	popq " UA_FLG(3) "(%rip)\n"
	"	mov %rsp, " UA_RSP(3) "(%rip)\n"
	"	mov %rax, " UA_RET(3) "(%rip)\n"
	/* 4: a debugger may step over this one */
	"	mov $4, %eax\n	mov $0x4444, %edi\n"
	"sc_user_step:\n"
	"	syscall\n"
	"sc_user_step_ret:\n"
	"	pushfq\n	popq " UA_FLG(4) "(%rip)\n"
	"	mov %rsp, " UA_RSP(4) "(%rip)\n"
	"	mov %rax, " UA_RET(4) "(%rip)\n"
	"	mov $60, %eax\n"
	"	syscall\n"
	"	ud2\n"
	"	.balign 4096\n"
	"	.text\n");

/* The entry, as Linux's entry_SYSCALL_64 (and its two ways back). */
__asm__(
	"	.text\n"
	"	.globl sc_entry, sc_enter_user\n"
	"sc_entry:\n"
	"	swapgs\n"
	"	mov %rsp, %gs:8\n"
	"	testb $1, %gs:24\n"
	"	jz 1f\n"
	"	mov %cr3, %rsp\n"
	"	and $~0x1800, %rsp\n"
	"	testb $2, %gs:24\n"
	"	jz 2f\n"
	"	bts $63, %rsp\n"
	"2:	mov %rsp, %cr3\n"
	"1:	mov %gs:16, %rsp\n"
	"	pushq $0x2b\n"
	"	pushq %gs:8\n"
	"	pushq %r11\n"
	"	pushq $0x33\n"
	"	pushq %rcx\n"
	"	pushq %rax\n"
	"	push %rax\n	push %rbx\n	push %rcx\n	push %rdx\n	push %rsi\n	push %rdi\n"
	"	push %rbp\n	push %r8\n	push %r9\n	push %r10\n	push %r11\n	push %r12\n"
	"	push %r13\n	push %r14\n	push %r15\n"
	"	mov %rsp, %rdi\n"
	"	call sc_handle\n"
	"	mov %rax, %gs:32\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %r11\n	pop %r10\n"
	"	pop %r9\n	pop %r8\n	pop %rbp\n	pop %rdi\n	pop %rsi\n	pop %rdx\n"
	"	pop %rcx\n	pop %rbx\n	pop %rax\n"
	"	add $8, %rsp\n"                     /* the call's number */
	"	cmpq $2, %gs:32\n"
	"	je sc_exit_to_kernel\n"
	"	cmpq $1, %gs:32\n"
	"	je sc_return_iret\n"
	/* SYSRETQ: RCX and R11 from the frame, user CR3, user RSP */
	"	mov (%rsp), %rcx\n"
	"	mov 16(%rsp), %r11\n"
	"	call sc_user_cr3\n"
	"	mov 24(%rsp), %rsp\n"
	"	swapgs\n"
	"	sysretq\n"
	"sc_return_iret:\n"
	"	call sc_user_cr3\n"
	"	swapgs\n"
	"	iretq\n"
	/* with the user's GS base still in KERNEL_GS_BASE */
	"sc_user_cr3:\n"
	"	testb $1, %gs:24\n"
	"	jz 1f\n"
	"	push %rdi\n"
	"	mov %cr3, %rdi\n"
	"	or $0x1000, %rdi\n"
	"	testb $2, %gs:24\n"
	"	jz 2f\n"
	"	or $0x800, %rdi\n"
	"	bts $63, %rdi\n"
	"2:	mov %rdi, %cr3\n"
	"	pop %rdi\n"
	"1:	ret\n"
	"sc_exit_to_kernel:\n"
	"	mov %gs:40, %rsp\n"
	"	.globl sc_user_abort\n"
	"sc_user_abort:\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n"
	/* sc_enter_user(rip, rsp): into ring 3 by IRETQ, as Linux starts init */
	"sc_enter_user:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	mov %rsp, kpcpu+40(%rip)\n"
	"	pushq $0x2b\n"
	"	pushq %rsi\n"
	"	pushq $0x202\n"
	"	pushq $0x33\n"
	"	pushq %rdi\n"
	"	call sc_user_cr3\n"
	"	swapgs\n"
	"	iretq\n");

static uint64_t pa(const void *p) { return (uint64_t)(uintptr_t)p; }

/* --- ring 0's side of a call ------------------------------------------------- */

static uint64_t read_segment_cs(void)
{
	uint64_t v = 0;
	__asm__ volatile("mov %%cs, %k0" : "+r"(v));
	return v;
}

static uint64_t read_segment_ss(void)
{
	uint64_t v = 0;
	__asm__ volatile("mov %%ss, %k0" : "+r"(v));
	return v;
}

uint64_t sc_handle(struct sc_regs *r)
{
	if (r->nr == NR_EXIT)
		return PCPU_PATH_EXIT;
	if (nr_seen <= NR_CALLS) {
		struct sc_seen *s = &seen[nr_seen++];
		s->calls = nr_seen;
		s->nr = r->nr;
		s->cs = read_segment_cs();
		s->ss = read_segment_ss();
		s->rflags = read_rflags();
		s->gs_base = rdmsr(MSR_GS_BASE);
		s->kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
		s->cr3 = read_cr3();
		s->rip = r->rip;
		s->user_rflags = r->rflags;
		s->user_rsp = r->rsp;
		s->frame_cs = r->cs;
		s->frame_ss = r->ss;
		s->rdi = r->rdi;
	}
	r->rax = SC_RET(r->nr);
	return r->nr == NR_IRET ? PCPU_PATH_IRET : PCPU_PATH_SYSRET;
}

/* --- faults: #DB from ring 3 is the TF check's; anything else fails ---------- */

static volatile unsigned db_hits, db_ring0_hits;
static volatile uint64_t db_rip, db_cs, db_dr6;

static void on_db(struct rt_frame *f)
{
	uint64_t dr6;
	__asm__ volatile("mov %%db6, %0" : "=r"(dr6));
	if (!(f->cs & 3)) {
		db_ring0_hits++;            /* TF must not reach ring 0 */
		f->rflags &= ~RFLAGS_TF;
		return;
	}
	db_hits++;
	db_rip = f->rip;
	db_cs = f->cs;
	db_dr6 = dr6;
	f->rflags &= ~RFLAGS_TF;
}

void sc_user_abort(void);
static volatile bool aborted;

/* An ordinary #PF in ring 0 (a load from an address not mapped), which
 * the handler steps over: the same entry as the SYSCALL's. */
void sc_kernel_pf(void);
void sc_kernel_pf_done(void);
__asm__(".text\n.globl sc_kernel_pf, sc_kernel_pf_done\n"
	"sc_kernel_pf:\n\tmov (%rdi), %rax\nsc_kernel_pf_done:\n\tret\n");
#define SC_UNMAPPED (1ull << 40)   /* PML4 entry 2: not present */
static volatile uint64_t kernel_pf_cr2;

/* A SYSCALL that left the task in ring 3 at LSTAR (this entry's page is
 * not ring 3's: the fetch faults) says so and ends the task; any other
 * fault ends the guest. */
static void on_fault(struct rt_frame *f)
{
	if (!(f->cs & 3) && f->vector == X86_PF && f->rip == pa(sc_kernel_pf)) {
		kernel_pf_cr2 = read_cr2();
		f->rip = pa(sc_kernel_pf_done);
		return;
	}
	if (f->cs & 3)
		__asm__ volatile("swapgs");
	if ((f->cs & 3) && f->rip == pa(sc_entry)) {
		report(false, "SYSCALL from ring 3 reached LSTAR still in ring 3", __FILE__, __LINE__);
		printf("SYSCALL left CPL 3: %s (error 0x%lx) at LSTAR 0x%lx with CS 0x%lx SS 0x%lx "
		       "RFLAGS 0x%lx RCX 0x%lx R11 0x%lx\n", idt_vector_name(f->vector),
		       f->error_code, f->rip, f->cs, f->ss, f->rflags, f->rcx, f->r11);
		aborted = true;
		f->rip = pa(sc_user_abort);
		f->cs = SEL_RT_CODE;
		f->ss = SEL_KDATA;
		f->rsp = kpcpu.kernel_rsp;
		f->rflags = RFLAGS_FIXED1;
		return;
	}
	rt_fail_now("%s (error 0x%lx) at RIP 0x%lx CS 0x%lx SS 0x%lx RFLAGS 0x%lx RSP 0x%lx "
		    "RCX 0x%lx R11 0x%lx CR2 0x%lx CR3 0x%lx", idt_vector_name(f->vector),
		    f->error_code, f->rip, f->cs, f->ss, f->rflags, f->rsp, f->rcx, f->r11,
		    read_cr2(), read_cr3());
}

/* --- setup -------------------------------------------------------------------- */

/* #PF enters as Linux's exception entries do, ENDBR64 then CLAC (where
 * CPUID has SMAP), before the runtime's stub. */
uint64_t sc_pf_next;
void sc_pf_entry(void);
__asm__(".text\n.globl sc_pf_entry\nsc_pf_entry:\n\tendbr64\n\tclac\n"
	"\tjmp *sc_pf_next(%rip)\n");

static void install_pf_entry(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr;
	__asm__ volatile("sidt %0" : "=m"(idtr));
	volatile uint32_t *gate = (volatile uint32_t *)(uintptr_t)(idtr.base + X86_PF * 16);
	sc_pf_next = (gate[0] & 0xffff) | (gate[1] & 0xffff0000u) | (uint64_t)gate[2] << 32;
	uint64_t to = pa(sc_pf_entry);
	gate[0] = (gate[0] & 0xffff0000u) | (uint32_t)(to & 0xffff);
	gate[1] = (gate[1] & 0xffffu) | (uint32_t)(to & 0xffff0000u);
	gate[2] = (uint32_t)(to >> 32);
}

/* the kernel's PML4 and, on the next page, the user copy (PTI) */
static uint64_t pml4[2][512] __attribute__((aligned(8192)));
static struct rt_low_map low_map __attribute__((aligned(4096)));
static uint64_t gdt[10] __attribute__((aligned(16)));
static struct rt_tss64 tss __attribute__((aligned(16)));

static bool user_page(uint64_t addr)
{
	uint64_t page = addr & ~0xfffull;
	return page == pa(sc_user_page) || page == pa(&sc_udata) || page == pa(sc_ustack);
}

static void build_tables(void)
{
	pml4[0][0] = pml4[1][0] = rt_low_map_build(&low_map, user_page);
}

static void build_gdt(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr;
	gdt[SEL_RT_CODE / 8] = GDT_CODE64;
	gdt[SEL_KCODE / 8] = GDT_CODE64;
	gdt[SEL_KDATA / 8] = GDT_DATA;
	gdt[SEL_UCODE32 / 8] = GDT_UCODE32;
	gdt[SEL_UDATA / 8] = GDT_UDATA;
	gdt[SEL_UCODE / 8] = GDT_UCODE64;
	tss.rsp[0] = pa(tss_stack + sizeof(tss_stack));
	tss.iomap_base = sizeof(tss);
	rt_tss_descriptor(&gdt[SEL_TSS / 8], pa(&tss), sizeof(tss) - 1);
	gdtr.limit = sizeof(gdt) - 1;
	gdtr.base = pa(gdt);
	__asm__ volatile("lgdt %0\n\t"
			 "mov %1, %%ss\n\tmov %3, %%ds\n\tmov %3, %%es\n\t"
			 "mov %3, %%fs\n\tmov %3, %%gs\n\t"
			 "ltr %w2"
			 :: "m"(gdtr), "r"((uint32_t)SEL_KDATA), "r"(SEL_TSS), "r"(0u) : "memory");
}

/* CR3 for the kernel's tables; with PCID, CR4.PCIDE on first. */
static uint64_t setup_cr3(bool pcid)
{
	uint64_t cr3 = pa(pml4[0]);
	if (pcid) {
		__asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");   /* PCID 0 */
		write_cr4(read_cr4() | CR4_PCIDE);
		cr3 |= KERN_PCID;
	}
	__asm__ volatile("mov %0, %%cr3" :: "r"(cr3) : "memory");
	return cr3;
}

static void setup(bool pti, bool pcid)
{
	for (unsigned v = 0; v < 32; v++)
		if (v != X86_NMI)
			idt_set_handler((uint8_t)v, on_fault);
	idt_set_handler(X86_DB, on_db);
	uint32_t r[4];
	cpuid(7, 0, r);
	bool clac = (r[1] & CPUID7_EBX_SMAP) && cmdline_u64("clac", 1);
	if (clac)
		install_pf_entry();
	printf("syscall_entry: #PF entry %s\n", clac ? "ENDBR64, CLAC" : "plain");
	if (pa(sc_ustack) >= 2 * PAGE_2M || pa(&sc_udata) >= 2 * PAGE_2M ||
	    pa(sc_user_page) >= 2 * PAGE_2M)
		rt_fail_now("ring 3's pages must lie in the first 4 MiB");
	kpcpu.self = this_cpu();    /* before the null GS selector below */
	build_tables();
	build_gdt();
	setup_cr3(pcid);
	kpcpu.top_of_stack = pa(kstack + sizeof(kstack));
	kpcpu.pti = (pti ? 1 : 0) | (pcid ? 2 : 0);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	wrmsr(MSR_STAR, (uint64_t)(SEL_UCODE32 & ~3) << 48 | (uint64_t)SEL_KCODE << 32);
	wrmsr(MSR_LSTAR, pa(sc_entry));
	wrmsr(MSR_FMASK, SC_FMASK);
	wrmsr(MSR_GS_BASE, pa(&kpcpu));
	wrmsr(MSR_KERNEL_GS_BASE, pa(&sc_udata));
	sc_udata.a.gs_magic = 0x6a6a6a6a;
	/* as a kernel does, some time (exits) between SYSCALL on and the first one */
	printf("syscall_entry: SYSCALL enabled, LSTAR 0x%lx\n", pa(sc_entry));
}

/* --- checks ------------------------------------------------------------------- */

static void check_call(unsigned i, uint64_t nr, void (*after)(void), uint64_t user_flags,
		       uint64_t kernel_cr3)
{
	char name[96];
	const struct sc_seen *s = &seen[i];
	const struct user_area *u = &sc_udata.a;
	uint64_t rsp_in_user = pa(sc_ustack + sizeof(sc_ustack));
#define CHECK(cond, what) do { snprintf(name, sizeof(name), "call %lu: %s", nr, what); \
		expect(cond, name); } while (0)
#define CHECK_EQ(got, want, what) do { snprintf(name, sizeof(name), "call %lu: %s", nr, what); \
		expect_eq(got, want, name); } while (0)
	CHECK_EQ(s->nr, nr, "ring 0 sees the call's number in RAX");
	CHECK_EQ(s->rdi, nr * 0x1111, "ring 0 sees RDI");
	CHECK_EQ(s->cs, SEL_KCODE, "CS in ring 0 = STAR[47:32]");
	CHECK_EQ(s->ss, SEL_KDATA, "SS in ring 0 = STAR[47:32] + 8");
	CHECK_EQ(s->rflags & SC_FMASK_KEPT, 0, "FMASK cleared TF, IF, DF, AC, NT, IOPL in ring 0");
	CHECK_EQ(s->gs_base, pa(&kpcpu), "SWAPGS: GS base = the kernel's");
	CHECK_EQ(s->kernel_gs_base, pa(&sc_udata), "SWAPGS: KERNEL_GS_BASE = ring 3's");
	CHECK_EQ(s->cr3, kernel_cr3, "CR3 in ring 0 = the kernel's tables");
	CHECK_EQ(s->rip, pa(after), "RCX = the instruction after SYSCALL");
	CHECK_EQ(s->user_rflags & (RFLAGS_AC | RFLAGS_DF | RFLAGS_CF | RFLAGS_TF | RFLAGS_IF),
		 user_flags, "R11 = ring 3's RFLAGS");
	CHECK_EQ(s->user_rsp, rsp_in_user, "%gs:8 kept ring 3's RSP");
	CHECK_EQ(u->ret[nr], SC_RET(nr), "ring 3 got RAX back");
	CHECK_EQ(u->rsp_after[nr], rsp_in_user, "ring 3 got its RSP back");
	CHECK_EQ(u->rflags_after[nr] & (RFLAGS_AC | RFLAGS_DF | RFLAGS_CF | RFLAGS_IF),
		 user_flags & ~RFLAGS_TF, "ring 3 got its RFLAGS back");
#undef CHECK
#undef CHECK_EQ
}

int main(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	bool pti = cmdline_u64("pti", 1) != 0, pcid = pti && (r[2] & CPUID1_ECX_PCID);
	const char *tf_trap = cmdline_get("tf_trap");
	bool tf_late_ok = tf_trap && strcmp(tf_trap, "any") == 0;
	printf("syscall_entry: pti %d pcid %d\n", pti, pcid);
	setup(pti, pcid);
	uint64_t kernel_cr3 = read_cr3();

	__asm__ volatile("call sc_kernel_pf" :: "D"(SC_UNMAPPED) : "rax", "memory");
	expect_eq(kernel_pf_cr2, SC_UNMAPPED, "an ordinary #PF in ring 0 is the guest's, once");
	sc_enter_user(pa(sc_user_main), pa(sc_ustack + sizeof(sc_ustack)));
	if (aborted) {
		__asm__ volatile("mov %0, %%cr3" :: "r"(kernel_cr3) : "memory");
		return report_summary();
	}

	expect_eq(read_cr3(), kernel_cr3, "back in the kernel's context with its CR3");
	expect_eq(sc_udata.a.cs, SEL_UCODE, "ring 3 runs with CS 0x33");
	expect_eq(sc_udata.a.ss, SEL_UDATA, "ring 3 runs with SS 0x2b");
	expect_eq(sc_udata.a.gs_read, 0x6a6a6a6a, "ring 3 reads its own GS");
	expect_eq(nr_seen, NR_CALLS, "every call reached ring 0 once");
	check_call(0, NR_PLAIN, sc_user_after_plain, RFLAGS_AC | RFLAGS_DF | RFLAGS_CF | RFLAGS_IF,
		   kernel_cr3);
	check_call(1, NR_IRET, sc_user_after_iret, RFLAGS_IF, kernel_cr3);
	check_call(2, NR_TF, sc_user_after_tf, RFLAGS_IF | RFLAGS_TF, kernel_cr3);
	check_call(3, NR_STEP, sc_user_step_ret, RFLAGS_IF, kernel_cr3);
	expect_eq(db_ring0_hits, 0, "TF: no #DB in ring 0 (FMASK clears TF)");
	expect_eq(db_hits, 1, "TF: one #DB in ring 3");
	if (tf_late_ok && db_rip == pa(sc_user_after_tf_next))
		printf("TF: the #DB came after the first user instruction (tf_trap=any)\n");
	else
		expect_eq(db_rip, pa(sc_user_after_tf), "TF: the #DB comes after SYSRETQ, before "
			  "the next user instruction");
	expect_eq(db_cs, SEL_UCODE, "TF: the #DB comes from ring 3");
	expect(db_dr6 & (1u << 14), "TF: DR6.BS");
	return report_summary();
}
