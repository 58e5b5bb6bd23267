/* x86/x86.h — architecture facts shared by every layer below gdbserver/:
 * register-state structures exchanged with engines, and named bits of
 * RFLAGS, CR0/CR4, EFER, DR6 and DR7. No code lives here. */
#ifndef VMDB_X86_H
#define VMDB_X86_H

#include <stdint.h>

/* RFLAGS */
#define RFLAGS_CF        (1ull << 0)
#define RFLAGS_FIXED1    (1ull << 1)   /* always reads as 1 */
#define RFLAGS_PF        (1ull << 2)
#define RFLAGS_AF        (1ull << 4)
#define RFLAGS_ZF        (1ull << 6)
#define RFLAGS_SF        (1ull << 7)
#define RFLAGS_TF        (1ull << 8)
#define RFLAGS_IF        (1ull << 9)
#define RFLAGS_DF        (1ull << 10)
#define RFLAGS_OF        (1ull << 11)
#define RFLAGS_IOPL_MASK (3ull << 12)
#define RFLAGS_NT        (1ull << 14)
#define RFLAGS_RF        (1ull << 16)
#define RFLAGS_VM        (1ull << 17)
#define RFLAGS_AC        (1ull << 18)
#define RFLAGS_ID        (1ull << 21)

/* CR0 / CR4 / EFER */
#define CR0_PE (1ull << 0)
#define CR0_MP (1ull << 1)
#define CR0_EM (1ull << 2)
#define CR0_TS (1ull << 3)
#define CR0_ET (1ull << 4)
#define CR0_NE (1ull << 5)
#define CR0_WP (1ull << 16)
#define CR0_AM (1ull << 18)
#define CR0_PG (1ull << 31)

#define CR4_VME        (1ull << 0)
#define CR4_TSD        (1ull << 2)
#define CR4_PSE        (1ull << 4)
#define CR4_DE         (1ull << 3)
#define CR4_PAE        (1ull << 5)
#define CR4_PGE        (1ull << 7)
#define CR4_OSFXSR     (1ull << 9)
#define CR4_OSXMMEXCPT (1ull << 10)
#define CR4_LA57       (1ull << 12)
#define CR4_SMEP       (1ull << 20)
#define CR4_SMAP       (1ull << 21)

#define EFER_SCE (1ull << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define EFER_NXE (1ull << 11)

/* MSRs */
#define MSR_IA32_APIC_BASE   0x0000001bu
#define MSR_EFER             0xc0000080u
#define MSR_STAR             0xc0000081u
#define MSR_LSTAR            0xc0000082u
#define MSR_CSTAR            0xc0000083u
#define MSR_FMASK            0xc0000084u
#define MSR_FS_BASE          0xc0000100u
#define MSR_GS_BASE          0xc0000101u
#define MSR_KERNEL_GS_BASE   0xc0000102u

/* DR6: which condition raised #DB. Sticky: software clears it. */
#define DR6_B(n)        (1ull << (n))       /* breakpoint n matched */
#define DR6_BD          (1ull << 13)        /* general detect (MOV DR with DR7.GD) */
#define DR6_BS          (1ull << 14)        /* single step (TF) */
#define DR6_BT          (1ull << 15)        /* task switch */
#define DR6_RTM         (1ull << 16)        /* active-low RTM bit */
#define DR6_FIXED1      0xfffe0ff0ull       /* reserved bits that read as 1 */
#define DR6_INIT        0xffff0ff0ull

/* DR7: enables and conditions for DR0-DR3. */
#define DR7_L(n)        (1ull << ((n) * 2))
#define DR7_G(n)        (1ull << ((n) * 2 + 1))
#define DR7_LE          (1ull << 8)
#define DR7_GE          (1ull << 9)
#define DR7_FIXED1      (1ull << 10)
#define DR7_GD          (1ull << 13)
#define DR7_RW_SHIFT(n) (16 + (n) * 4)
#define DR7_LEN_SHIFT(n) (18 + (n) * 4)
#define DR7_RW(n, rw)   ((uint64_t)(rw) << DR7_RW_SHIFT(n))
#define DR7_LEN(n, len) ((uint64_t)(len) << DR7_LEN_SHIFT(n))
#define DR7_INIT        0x400ull

enum dr7_rw { DR7_RW_EXEC = 0, DR7_RW_WRITE = 1, DR7_RW_IO = 2, DR7_RW_ACCESS = 3 };
/* LEN encodings: 00=1 byte, 01=2, 11=4, 10=8 (long mode) */
enum dr7_len { DR7_LEN_1 = 0, DR7_LEN_2 = 1, DR7_LEN_8 = 2, DR7_LEN_4 = 3 };

/* Exception vectors */
enum x86_vector {
	X86_DE = 0, X86_DB = 1, X86_NMI = 2, X86_BP = 3, X86_OF = 4, X86_BR = 5,
	X86_UD = 6, X86_NM = 7, X86_DF = 8, X86_TS = 10, X86_NP = 11, X86_SS = 12,
	X86_GP = 13, X86_PF = 14, X86_MF = 16, X86_AC = 17, X86_MC = 18, X86_XM = 19,
};

/* General-purpose state. Order follows gdb's amd64 numbering for the
 * first 16 so the gdbserver can index it, but nobody may rely on layout
 * except through the named fields. */
struct x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl, unusable;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

/* System state: segments, descriptor tables, control registers. */
struct x86_sregs {
	struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

/* x87/SSE state (the FXSAVE image, unpacked). */
struct x86_fpu {
	uint8_t st[8][16];      /* 80-bit values in the low 10 bytes */
	uint16_t fcw, fsw;
	uint8_t ftw;            /* abridged tag word, as FXSAVE stores it */
	uint16_t fop;
	uint64_t fip, fdp;
	uint32_t mxcsr;
	uint8_t xmm[16][16];
};

/* Debug registers as the engine holds them for the guest. */
struct x86_debugregs {
	uint64_t db[4];
	uint64_t dr6, dr7;
};

/* CPU operating mode, derived from CR0/EFER/CS. */
enum x86_mode { X86_MODE_REAL, X86_MODE_PROT16, X86_MODE_PROT32, X86_MODE_LONG64, X86_MODE_COMPAT };

static inline enum x86_mode x86_mode_of(const struct x86_sregs *s)
{
	if (!(s->cr0 & CR0_PE))
		return X86_MODE_REAL;
	if (s->efer & EFER_LMA)
		return s->cs.l ? X86_MODE_LONG64 : X86_MODE_COMPAT;
	return s->cs.db ? X86_MODE_PROT32 : X86_MODE_PROT16;
}

const char *x86_mode_name(enum x86_mode mode);

#define X86_NR_VECTORS 32     /* exception vectors (0-31) */
/* "#PF" for 14, "#14" for a vector without a mnemonic; NULL above 31. */
const char *x86_vector_name(unsigned vector);

#endif
