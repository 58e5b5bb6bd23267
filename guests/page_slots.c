/* guests/page_slots.c — page_slots.elf: tight loops whose accesses go
 * through an index (a table, an FS base, unaligned bytes) see the page
 * tables as the CPU does, however a translation keeps their pages (emu's
 * page slots, engine/emu/emu_jit.c): a page remapped, made read-only or
 * its dirty bit cleared between two runs of a loop (INVLPG, a CR3 write)
 * is seen at once, a loop that walks from one page into another reads
 * each page's own frame, a store after a load of a read-only page faults
 * (error code 3, CR2), and an access that goes on into a page not present
 * faults there. Each loop is a block of its own whose back edge goes to
 * its start. And the same between two loops of one routine, the page
 * table written and INVLPG or CR3 written in between and nothing else
 * (emu keeps the slots across translations and entries: only what
 * changes the TLB may empty them), and code stored into a page a loop
 * wrote before through the same register is seen. And a loop that read a
 * supervisor page at CPL 0 faults there when it runs again at CPL 3. */
#include "guests/rt/boot.h"
#include "guests/rt/idt.h"
#include "guests/rt/io.h"
#include "guests/rt/paging.h"
#include "guests/rt/report.h"
#include "guests/rt/ring3.h"

#define PTE_A (1ull << 5)
#define PTE_D (1ull << 6)
#define TVA 0x8000000000ull
#define TVA_PAGE(i) (TVA + (uint64_t)(i) * 4096)
#define FRAMES 9                             /* 8: code (ps_code_twice) */
#define QWORDS 512
#define MSR_FS_BASE 0xc0000100u

static uint64_t pml4[512] __attribute__((aligned(4096)));
static struct rt_low_map low_map __attribute__((aligned(4096)));
static uint64_t pdpt_t[512] __attribute__((aligned(4096)));
static uint64_t pd_t[512] __attribute__((aligned(4096)));
static uint64_t pt_t[512] __attribute__((aligned(4096)));
static uint64_t frames[FRAMES][QWORDS] __attribute__((aligned(4096)));

static volatile uint64_t fault_err, fault_cr2, faults;
uint64_t ps_user_stack[512] __attribute__((aligned(16)));
uint64_t ps_kernel_sum, ps_user_sum, ps_saved_rsp;

uint64_t ps_sum(uint64_t va, uint64_t n);
uint64_t ps_sum_bytes(uint64_t va, uint64_t n);
uint64_t ps_sum_fs(uint64_t n);
void ps_fill(uint64_t va, uint64_t n, uint64_t v);
void ps_bump(uint64_t va, uint64_t n);
uint64_t ps_sum_twice(uint64_t va, uint64_t n, uint64_t *pte, uint64_t val, uint64_t cr3,
		      uint64_t *first);
void ps_fill_twice(uint64_t va, uint64_t n, uint64_t *pte, uint64_t val, uint64_t cr3,
		   uint64_t v);
uint64_t ps_code_twice(uint64_t va, uint64_t n, uint64_t code1, uint64_t code2);
void ps_user_call(uint64_t va, uint64_t n);
void ps_user_exit(void);
void ps_user_back(void);

/* The loops: the block at 1 runs again and again (its back edge). */
__asm__(".text\n"
	".globl ps_sum\n"
	"ps_sum:\n"                              /* sum of n qwords at va */
	"	xorl %eax, %eax\n"
	"	xorl %ecx, %ecx\n"
	"1:	addq (%rdi,%rcx,8), %rax\n"
	"	addq $1, %rcx\n"
	"	cmpq %rsi, %rcx\n"
	"	jne 1b\n"
	"	ret\n"
	".globl ps_sum_bytes\n"
	"ps_sum_bytes:\n"                        /* of the qwords at va, va + 1, ... */
	"	xorl %eax, %eax\n"
	"	xorl %ecx, %ecx\n"
	"1:	addq (%rdi,%rcx,1), %rax\n"
	"	addq $1, %rcx\n"
	"	cmpq %rsi, %rcx\n"
	"	jne 1b\n"
	"	ret\n"
	".globl ps_sum_fs\n"
	"ps_sum_fs:\n"                           /* of n qwords at FS's base */
	"	xorl %eax, %eax\n"
	"	xorl %ecx, %ecx\n"
	"1:	addq %fs:(,%rcx,8), %rax\n"
	"	addq $1, %rcx\n"
	"	cmpq %rdi, %rcx\n"
	"	jne 1b\n"
	"	ret\n"
	".globl ps_fill\n"
	"ps_fill:\n"                             /* n qwords at va = v */
	"	xorl %ecx, %ecx\n"
	"1:	movq %rdx, (%rdi,%rcx,8)\n"
	"	addq $1, %rcx\n"
	"	cmpq %rsi, %rcx\n"
	"	jne 1b\n"
	"	ret\n"
	".globl ps_bump\n"
	"ps_bump:\n"                             /* n qwords at va += 1, each read then written */
	"	xorl %ecx, %ecx\n"
	"1:	movq (%rdi,%rcx,8), %rax\n"
	"	addq $1, %rax\n"
	"	movq %rax, (%rdi,%rcx,8)\n"
	"	addq $1, %rcx\n"
	"	cmpq %rsi, %rcx\n"
	"	jne 1b\n"
	"	ret\n"
	/* *pte = val, then INVLPG va (cr3 0) or CR3 = cr3: only that
	 * between the two loops */
	".macro ps_pte_write\n"
	"	movq %rcx, (%rdx)\n"
	"	testq %r8, %r8\n"
	"	jz 8f\n"
	"	movq %r8, %cr3\n"
	"	jmp 9f\n"
	"8:	invlpg (%rdi)\n"
	"9:\n"
	".endm\n"
	".globl ps_sum_twice\n"
	"ps_sum_twice:\n"                       /* sum of n qwords at va, *first; pte write; again */
	"	xorl %eax, %eax\n"
	"	xorl %r10d, %r10d\n"
	"1:	addq (%rdi,%r10,8), %rax\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 1b\n"
	"	movq %rax, (%r9)\n"
	"	ps_pte_write\n"
	"	xorl %eax, %eax\n"
	"	xorl %r10d, %r10d\n"
	"2:	addq (%rdi,%r10,8), %rax\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 2b\n"
	"	ret\n"
	".globl ps_fill_twice\n"
	"ps_fill_twice:\n"                      /* n qwords at va = v; pte write; again */
	"	xorl %r10d, %r10d\n"
	"1:	movq %r9, (%rdi,%r10,8)\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 1b\n"
	"	ps_pte_write\n"
	"	xorl %r10d, %r10d\n"
	"2:	movq %r9, (%rdi,%r10,8)\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 2b\n"
	"	ret\n"
	".globl ps_code_twice\n"
	"ps_code_twice:\n"                      /* n qwords at va = code1, call va; code2, call:
						  * (first << 8) | second; no other store */
	"	xorl %r10d, %r10d\n"
	"1:	movq %rdx, (%rdi,%r10,8)\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 1b\n"
	"	pushq %rdi\n"
	"	pushq %rcx\n"
	"	callq *%rdi\n"
	"	popq %rcx\n"
	"	popq %rdi\n"
	"	movq %rax, %r8\n"
	"	xorl %r10d, %r10d\n"
	"2:	movq %rcx, (%rdi,%r10,8)\n"
	"	addq $1, %r10\n"
	"	cmpq %rsi, %r10\n"
	"	jne 2b\n"
	"	pushq %r8\n"
	"	callq *%rdi\n"
	"	popq %r8\n"
	"	shlq $8, %r8\n"
	"	orq %r8, %rax\n"
	"	ret\n"
	".globl ps_user_call, ps_user_exit, ps_user_back\n"
	"ps_user_call:\n"                       /* ps_kernel_sum = ps_sum(va, n) at CPL 0, then
						  * ps_user_sum = the same at CPL 3 */
	"	push %rbx\n push %rbp\n push %r12\n push %r13\n push %r14\n push %r15\n"
	"	push %rdi\n push %rsi\n"
	"	call ps_sum\n"
	"	mov %rax, ps_kernel_sum(%rip)\n"
	"	pop %rsi\n pop %rdi\n"
	"	mov %rsp, ps_saved_rsp(%rip)\n"
	"	pushq $" RT_USER_SS "\n"
	"	lea ps_user_stack+4096(%rip), %rax\n push %rax\n"
	"	pushq $0x2\n"
	"	pushq $" RT_USER_CS "\n"
	"	lea 1f(%rip), %rax\n push %rax\n"
	"	iretq\n"
	"1:	call ps_sum\n"
	"	mov %rax, ps_user_sum(%rip)\n"
	"ps_user_exit:\n"
	"	ud2\n"
	"ps_user_back:\n"
	"	mov ps_saved_rsp(%rip), %rsp\n"
	"	mov $0x10, %eax\n mov %eax, %ds\n mov %eax, %es\n"
	"	pop %r15\n pop %r14\n pop %r13\n pop %r12\n pop %rbp\n pop %rbx\n"
	"	ret\n");

static bool no_user_page(uint64_t addr) { (void)addr; return false; }
static bool user_page(uint64_t addr) { (void)addr; return true; }

/* The fault's error code and address; the page it faulted on gets what
 * it lacked (present, writable), and the access runs again. */
static void on_pf(struct rt_frame *f)
{
	fault_err = f->error_code;
	fault_cr2 = rt_pf_mend(pt_t, TVA, 512, f->error_code);
	faults++;
}

/* Page i to frame fr with the bits given (A and D clear), by INVLPG. */
static void map(unsigned i, unsigned fr, uint64_t bits)
{
	pt_t[i] = rt_pa(frames[fr]) | bits;
	rt_invlpg(TVA_PAGE(i));
}

/* The same by a CR3 write (every page not global dropped). */
static void map_cr3(unsigned i, unsigned fr, uint64_t bits)
{
	pt_t[i] = rt_pa(frames[fr]) | bits;
	__asm__ volatile("mov %0, %%cr3" :: "r"(rt_pa(pml4)) : "memory");
}

/* Frame fr's qwords: fr << 32 | their index; the sum of the first n. */
static uint64_t frame_sum(unsigned fr, uint64_t n)
{
	return n * ((uint64_t)fr << 32) + n * (n - 1) / 2;
}

static void frames_fill(void)
{
	for (unsigned fr = 0; fr < FRAMES; fr++)
		for (unsigned j = 0; j < QWORDS; j++)
			frames[fr][j] = (uint64_t)fr << 32 | j;
}

static void expect_faults(uint64_t n, uint64_t err, uint64_t cr2, const char *name)
{
	expect_eq(faults, n, name);
	if (n) {
		expect_eq(fault_err, err, name);
		expect_eq(fault_cr2, cr2, name);
	}
	faults = 0;
}

/* A table remapped between two runs of the loop that reads it, and a
 * loop that goes on from one page into the next (another frame). */
static void remapped(void)
{
	map(0, 1, PTE_P | PTE_W);
	expect_eq(ps_sum(TVA_PAGE(0), QWORDS), frame_sum(1, QWORDS), "table in frame 1");
	map(0, 2, PTE_P | PTE_W);
	expect_eq(ps_sum(TVA_PAGE(0), QWORDS), frame_sum(2, QWORDS), "remapped by INVLPG: frame 2");
	map_cr3(0, 3, PTE_P | PTE_W);
	expect_eq(ps_sum(TVA_PAGE(0), QWORDS), frame_sum(3, QWORDS), "remapped by CR3: frame 3");
	map(1, 4, PTE_P | PTE_W);
	expect_eq(ps_sum(TVA_PAGE(0), 2 * QWORDS), frame_sum(3, QWORDS) + frame_sum(4, QWORDS),
		  "one loop through two pages, two frames");
	wrmsr(MSR_FS_BASE, TVA_PAGE(0));
	expect_eq(ps_sum_fs(QWORDS), frame_sum(3, QWORDS), "FS-based table");
	wrmsr(MSR_FS_BASE, TVA_PAGE(1));
	expect_eq(ps_sum_fs(QWORDS), frame_sum(4, QWORDS), "FS moved: the other page");
	map(1, 5, PTE_P | PTE_W);
	expect_eq(ps_sum_fs(QWORDS), frame_sum(5, QWORDS), "FS's page remapped");
	wrmsr(MSR_FS_BASE, 0);
	expect_faults(0, 0, 0, "no fault");
}

/* Stores that must see the dirty bit and write protection as they are
 * now, not as a run before left them. */
static void written(void)
{
	map(2, 6, PTE_P | PTE_W);
	ps_fill(TVA_PAGE(2), QWORDS, 7);
	expect_eq(frames[6][QWORDS - 1], 7, "stores");
	expect_eq(pt_t[2] & (PTE_A | PTE_D), PTE_A | PTE_D, "stores set A and D");
	pt_t[2] &= ~(PTE_A | PTE_D);
	rt_invlpg(TVA_PAGE(2));
	ps_fill(TVA_PAGE(2) - 8, QWORDS + 1, 8);           /* page 2 from the loop's first pass on */
	expect_eq(pt_t[2] & (PTE_A | PTE_D), PTE_A | PTE_D, "D cleared: set again by the next run");
	pt_t[2] &= ~PTE_W;
	rt_invlpg(TVA_PAGE(2));
	ps_fill(TVA_PAGE(2), QWORDS, 9);
	expect_faults(1, 3, TVA_PAGE(2), "made read-only: the next run's first store faults");
	expect_eq(frames[6][QWORDS - 1], 9, "then stores");
	map(3, 7, PTE_P);
	expect_eq(ps_sum(TVA_PAGE(3), QWORDS), frame_sum(7, QWORDS), "a read-only page read");
	ps_bump(TVA_PAGE(3) - 8, QWORDS + 1);              /* the first in page 2: the loop's first pass */
	expect_faults(1, 3, TVA_PAGE(3), "a store after a load of a read-only page faults");
	expect_eq(frames[6][QWORDS - 1], 10, "the load and store before, in page 2");
	expect_eq(frames[7][0], ((uint64_t)7 << 32) + 1, "then the load and store");
	expect_eq(frames[7][QWORDS - 1], ((uint64_t)7 << 32 | (QWORDS - 1)) + 1, "the last");
}

/* Between two loops of one routine, nothing but the page table entry
 * written and INVLPG or a CR3 write: the second loop sees the entry. */
static void twice(void)
{
	uint64_t first, second;
	map(0, 1, PTE_P | PTE_W);
	second = ps_sum_twice(TVA_PAGE(0), QWORDS, &pt_t[0], rt_pa(frames[2]) | PTE_P | PTE_W, 0,
			      &first);
	expect_eq(first, frame_sum(1, QWORDS), "twice: frame 1");
	expect_eq(second, frame_sum(2, QWORDS), "twice: remapped by INVLPG, frame 2");
	second = ps_sum_twice(TVA_PAGE(0), QWORDS, &pt_t[0], rt_pa(frames[3]) | PTE_P | PTE_W,
			      rt_pa(pml4), &first);
	expect_eq(first, frame_sum(2, QWORDS), "twice: frame 2");
	expect_eq(second, frame_sum(3, QWORDS), "twice: remapped by CR3, frame 3");
	map(2, 6, PTE_P | PTE_W);
	ps_fill_twice(TVA_PAGE(2), QWORDS, &pt_t[2], rt_pa(frames[6]) | PTE_P | PTE_W, 0, 11);
	expect_eq(pt_t[2] & (PTE_A | PTE_D), PTE_A | PTE_D, "twice: D cleared, INVLPG: set again");
	ps_fill_twice(TVA_PAGE(2), QWORDS, &pt_t[2], rt_pa(frames[6]) | PTE_P, rt_pa(pml4), 12);
	expect_faults(1, 3, TVA_PAGE(2), "twice: read-only, CR3: the second loop's store faults");
	expect_eq(frames[6][QWORDS - 1], 12, "twice: then stores");
	/* mov $1, %eax; ret; nop; nop — then mov $2 */
	map(6, 8, PTE_P | PTE_W);
	expect_eq(ps_code_twice(TVA_PAGE(6), QWORDS, 0x9090c300000001b8ull,
				0x9090c300000002b8ull), 0x102,
		  "code stored where a loop stored before it ran is run");
}

/* The way back from CPL 3 (ps_user_call's UD2). */
static void on_ud(struct rt_frame *f)
{
	if (f->rip != (uintptr_t)ps_user_exit)
		rt_fail_now("page_slots: #UD at 0x%lx\n", (unsigned long)f->rip);
	f->rip = (uintptr_t)ps_user_back;
	f->cs = RT_GDT_CODE64;
	f->ss = RT_GDT_DATA;
	f->rsp = ps_saved_rsp;
}

/* A supervisor page a loop read at CPL 0, the same loop at CPL 3 (the
 * low 4 MiB user pages, SMEP and SMAP off: guests/rt/ring3.h): #PF
 * with error code 5 (U, P) at its start, then (U given) its sum. */
static void user(void)
{
	rt_ring3_setup();
	idt_set_handler(6, on_ud);
	pml4[0] = rt_low_map_build(&low_map, user_page);
	pml4[1] |= PTE_U;
	pdpt_t[0] |= PTE_U;
	pd_t[0] |= PTE_U;
	frames_fill();
	pt_t[7] = rt_pa(frames[4]) | PTE_P | PTE_W;
	__asm__ volatile("mov %0, %%cr3" :: "r"(rt_pa(pml4)) : "memory");
	for (unsigned round = 0; round < 3; round++) {
		ps_user_call(TVA_PAGE(7), QWORDS);
		expect_eq(ps_kernel_sum, frame_sum(4, QWORDS), "CPL 0 reads");
		expect_faults(1, 5, TVA_PAGE(7), "the same loop at CPL 3 faults");
		expect_eq(ps_user_sum, frame_sum(4, QWORDS), "then reads the page");
		pt_t[7] &= ~PTE_U;
		rt_invlpg(TVA_PAGE(7));
	}
}

/* Unaligned qwords stepping up to and over a page's end, the next page
 * not present: the first that goes on into it faults there. */
static void straddled(void)
{
	frames_fill();
	map(4, 0, PTE_P | PTE_W);
	map(5, 1, 0);
	uint64_t from = TVA_PAGE(5) - 64, n = 64;
	uint64_t sum = ps_sum_bytes(from, n);
	expect_faults(1, 0, TVA_PAGE(5), "a qword on into a page not present");
	uint64_t want = 0;
	const uint8_t *b0 = (const uint8_t *)frames[0], *b1 = (const uint8_t *)frames[1];
	for (uint64_t k = 0; k < n; k++) {
		uint64_t v = 0;
		for (unsigned j = 0; j < 8; j++) {
			uint64_t at = 4096 - 64 + k + j;
			v |= (uint64_t)(at < 4096 ? b0[at] : b1[at - 4096]) << (8 * j);
		}
		want += v;
	}
	expect_eq(sum, want, "their values");
}

int main(void)
{
	pml4[0] = rt_low_map_build(&low_map, no_user_page);
	pml4[1] = rt_pa(pdpt_t) | PTE_P | PTE_W;
	pdpt_t[0] = rt_pa(pd_t) | PTE_P | PTE_W;
	pd_t[0] = rt_pa(pt_t) | PTE_P | PTE_W;
	__asm__ volatile("mov %0, %%cr3" :: "r"(rt_pa(pml4)) : "memory");
	uint64_t cr0;
	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	__asm__ volatile("mov %0, %%cr0" :: "r"(cr0 | (1ull << 16)) : "memory");   /* WP */
	idt_set_handler(14, on_pf);
	frames_fill();
	for (unsigned round = 0; round < 3; round++) {   /* again, the loops translated */
		twice();
		remapped();
		written();
		straddled();
		for (unsigned i = 0; i < 6; i++)
			pt_t[i] = 0;
		__asm__ volatile("mov %0, %%cr3" :: "r"(rt_pa(pml4)) : "memory");
		frames_fill();
	}
	user();
	return report_summary();
}
