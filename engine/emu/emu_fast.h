/* engine/emu/emu_fast.h — private to the fast path: the blocks of
 * emu_fast.c (the block cache: building, code versions, validation,
 * links, running) and the specialised handlers they run, of
 * emu_fast_ops.c (one per operation and operand form, the choice among
 * them, dead-flag removal). See emu_fast.c for how the two work. */
#ifndef VMDB_EMU_FAST_H
#define VMDB_EMU_FAST_H

#include "engine/emu/emu_core.h"
#include "engine/emu/emu_platform.h"

#define BLOCK_INSNS 32
#define BLOCK_BYTES 256
/* The block cache: a table of BLOCK_SLOTS blocks by physical address, the
 * blocks themselves in an arena of BLOCK_ARENA bytes, each as long as its
 * instructions need, and what only the slow ways read (the handlers
 * first chosen, the copy of the bytes) in a second one, so that the blocks that run
 * share the host's caches with less. When either is full every block is
 * dropped at once. */
#define BLOCK_SLOT_BITS 18
#define BLOCK_SLOTS (1u << BLOCK_SLOT_BITS)
#define BLOCK_ARENA (64u << 20)
/* Blocks run one after the other through their links (chain) before the
 * block loop looks again. Handlers end in tail calls, except in the
 * sanitizer build, where each block chained is stack. */
#ifdef __SANITIZE_ADDRESS__
#define BLOCK_CHAIN_MAX 64
#else
#define BLOCK_CHAIN_MAX 1024
#endif

struct emu_fop;
/* A handler returns what the block does next (enum fstop). */
typedef unsigned (*fop_fn)(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f);

enum fstop {
	FS_NEXT = 1,                   /* leave; RIP = the next instruction */
	FS_JUMP,                       /* leave; the handler set RIP */
	FS_END,                        /* leave before f, nothing retired there (the end
					* marker; f_cross) */
	FS_CONT,                       /* go on in the translation (emu_jit.c: the
					* sentinel f_cont stands after a called handler) */
};

/* One instruction of a block: the specialised handler and the operand
 * fields it needs (the decoded form, for the exact handler, is in the
 * block's in[]). */
struct emu_fop {
	fop_fn fn;
	uint64_t imm;                  /* immediate; branches: target - block start */
	union {
		struct {
			int32_t disp;  /* RIP-relative: from the block start */
			uint8_t r0, r1;        /* register operands (dst, src) */
			uint8_t base, index;   /* memory operand: EMU_NOREG / EMU_RIPREL */
		};
		/* FOP_LINK: the block that ran next, last time (see emu_block_run) */
		struct emu_block *link;
	};
	uint8_t shift, seg;
	uint8_t idx;                   /* index in the block */
	uint8_t flags;                 /* FOP_* */
	uint16_t off, end;             /* of this instruction and the next, from the start */
};

#define FOP_MEMW 0x1                   /* the exact handler may write memory */
#define FOP_LINK 0x2                   /* a direct branch, RET or the end marker: has link */
#define FOP_WMEM 0x4                   /* a specialised store: at f_lin ... */
#define FOP_WSTK 0x8                   /* ... or below RSP (push, call) */
#define FOP_WSHIFT 4                   /* bits 4-6: log2 of the store's size */
#define FOP_STI 0x80                   /* STI (its shadow's instruction follows) */

/* A block, as block_build lays it out in the arena: the header and
 * op[n + 1]; in the cold arena the handlers emu_fop_build chose for its
 * instructions (before emu_fops_finish and the native tier changed some:
 * block_prefix starts from them) and the copy of its bytes, after the
 * decoded form of each instruction that has no specialised handler
 * (f_exact: op[k].imm points at it). Those of the others are not kept:
 * few are ever needed (f_miss), and at 96 bytes each they were most of
 * the arena's bytes (emu_fast_ops.c's insn_of decodes the copy again). */
struct emu_block {
	uint64_t gpa;
	/* emu_vm.code_gen + code_ver[frame] when it was last compared: both
	 * only grow (code_ver modulo 2^32, as it was compared before), so the
	 * sum moves whenever either does, and one compare says both stayed */
	uint64_t stamp;
	uint64_t frame;                /* emu_frame_of its bytes */
	uint8_t mode;
	uint8_t n;                     /* instructions; 0 = the first is not plain */
	uint8_t words;                 /* bytes to compare as words (0: memcmp nbytes) */
	uint8_t built;                 /* n when built (block_prefix's copies run fewer) */
	uint16_t nbytes;               /* in its page (a last instruction may go on) */
	const uint8_t *bytes;          /* the copy compared with the guest's */
	const uint8_t *tail;           /* the last instruction's bytes in the next page */
	fop_fn fn0;                    /* op[0]'s handler (op[0].fn counts entries, then
					* is the translation: emu_jit.h) */
	uint32_t hits;                 /* entries counted before translation */
	const uint8_t *jit_link;       /* the translation's linked entries (emu_jit.c), or NULL */
	struct emu_fop op[];           /* + the end marker */
};

/* What drop_dead_flags (emu_fast_ops.c) found out about a handler, kept
 * so that it scans its tables once per handler, not once per instruction
 * built: FLAGS_SETS (nf: its form that leaves the flags alone),
 * FLAGS_NEUTRAL (a move: looks at no flag), FLAGS_LOOKS (anything else). */
enum { FLAGS_SETS, FLAGS_NEUTRAL, FLAGS_LOOKS };
struct fop_flags_memo {
	fop_fn fn;                     /* NULL: empty; a slot by a hash of fn */
	fop_fn nf;
	uint8_t kind;
};
/* The same for base_form: fn's form for base + displacement (b, or fn). */
struct fop_base_memo {
	fop_fn fn, b;
};
#define FOP_MEMO 512

/* Why emu_block_run left an instruction to the exact path (step()), for
 * VMDB_EMU_STATS. */
enum { STEP_MODE, STEP_TLB, STEP_PLAIN, STEP_WHY };
/* Why a specialised handler's access took the exact way (f_miss), for
 * VMDB_EMU_STATS: the TLB had no entry that allows it and the exact way
 * made one (FILL); a store into a frame with blocks (CODE); not RAM
 * (DEVICE); two pages (CROSS); a page the debugger watches (WATCH); the
 * TLB allows it neither before nor after (OTHER: a write tag withheld). */
enum { MISS_FILL, MISS_CODE, MISS_DEVICE, MISS_CROSS, MISS_WATCH, MISS_OTHER, MISS_WHY };

struct emu_blocks {
	struct emu_block *slot[BLOCK_SLOTS];
	uint64_t steps[STEP_WHY];      /* counted by reason */
	uint64_t misses[MISS_WHY];     /* f_miss by reason (VMDB_EMU_STATS only) */
	uint64_t data_fills;           /* data TLB misses filled for a specialised handler */
	uint64_t prefixes;             /* blocks cut short by the budget (block_prefix) */
	uint64_t tlb_fills;            /* execute TLB misses filled by emu_block_run */
	uint64_t builds;               /* blocks built */
	uint8_t *arena, *cold;
	size_t used, cold_used;
	uint64_t flushes;              /* times the arena was emptied */
	struct emu_jit *jit;           /* the native tier (emu_jit.h), NULL: off */
	uint32_t jit_after;            /* entries of a block before it is translated */
	/* block_build's draft, copied into the arena when complete: the
	 * instructions and the bytes in the next page of a last one that
	 * goes on there */
	struct emu_fop op[BLOCK_INSNS + 1];
	struct emu_insn in[BLOCK_INSNS];
	/* emu_fast_ops.c's insn_of: the last instruction it decoded, of op
	 * insn_op (NULL: none; never one of block_prefix's copies, whose
	 * place is reused) */
	struct emu_insn insn;
	const struct emu_fop *insn_op;
	uint8_t tail[15];
	unsigned tail_len;
	struct fop_flags_memo flags_memo[FOP_MEMO];
	struct fop_base_memo base_memo[FOP_MEMO];
	/* emu_fast.c's block_prefix: the first instructions of a block as a
	 * block of their own (a struct emu_block and its op[]) */
	_Alignas(16) uint8_t prefix[sizeof(struct emu_block) +
				    (BLOCK_INSNS + 1) * sizeof(struct emu_fop)];
};

/* What a block of frame compared now keeps as its stamp. */
static inline uint64_t code_stamp(const struct emu_core *c, uint64_t frame)
{
	return c->code_gen + c->code_ver[frame];
}

/* Has nothing written b's bytes since they were last compared? (a store
 * into its frame, or anything while the vCPUs were away: emu_core.h;
 * c's copies of the counters, see emu_block_run) */
static inline bool block_current(const struct emu_core *c, const struct emu_block *b)
{
	return b->stamp == code_stamp(c, b->frame);
}

/* Instruction k of b's bytes (the last may go on in b->tail) into buf:
 * how many. */
static inline unsigned block_insn_bytes(const struct emu_block *b, unsigned k, uint8_t *buf)
{
	unsigned off = b->op[k].off, len = b->op[k].end - off;
	len = len < 15 ? len : 15;
	for (unsigned i = 0; i < len; i++)
		buf[i] = off + i < b->nbytes ? b->bytes[off + i] : b->tail[off + i - b->nbytes];
	return len;
}

static inline unsigned block_index(uint64_t gpa)
{
	return (unsigned)((gpa ^ (gpa >> BLOCK_SLOT_BITS) ^ (gpa >> (2 * BLOCK_SLOT_BITS))) &
			  (BLOCK_SLOTS - 1));
}

static inline uint64_t msk(unsigned s)
{
	return s >= 8 ? ~0ull : (1ull << (s * 8)) - 1;
}

/* --- state the block does not keep per instruction ------------------------------ */

/* RIP, insn_start_rip and the retired count as the exact path has them
 * while f's instruction executes (see the top of the file). */
static inline void sync_at(struct emu_cpu *cpu, const struct emu_core *c, const struct emu_fop *f)
{
	cpu->insn_start_rip = c->blk_rip + f->off;
	cpu->rip = c->blk_rip + f->end;
	cpu->retired = c->blk_ret + f->idx;
}

/* Between blocks: what the run loop would look at before the next
 * instruction and plain instructions cannot change themselves (other
 * threads: kicks, interrupts and NMIs sent to this vCPU). */
static inline bool may_go_on(const struct emu_cpu *cpu, const struct emu_core *c)
{
	if (__atomic_load_n(&c->kick, __ATOMIC_RELAXED) || cpu->pending.nmi)
		return false;
	return !((cpu->rflags & RFLAGS_IF) && __atomic_load_n(c->irq_attn, __ATOMIC_ACQUIRE));
}

static inline struct emu_tlb_entry *tlb_of(struct emu_core *c, uint64_t lin)
{
	return &c->ftlb[(lin >> 12) & (EMU_TLB_SIZE - 1)];
}

/* The physical address of rip, where a link from the running block goes:
 * in the block's own page without a look-up, else through the TLB's
 * execute tag (the translation the block loop would use: plain
 * instructions neither flush the TLB nor change CPL or mode); ~0 when the
 * TLB has none. */
static inline uint64_t link_gpa(struct emu_core *c, uint64_t rip)
{
	uint64_t off = rip & (X86_PAGE_SIZE - 1);
	if (!((rip ^ c->blk_rip) & X86_PAGE_MASK))
		return (c->blk->gpa & X86_PAGE_MASK) | off;
	const struct emu_tlb_entry *t = tlb_of(c, rip);
	return t->tag_x == (rip & X86_PAGE_MASK) ? t->gpa + off : ~0ull;
}

/* The current block with instructions at gpa (~0: none, link_gpa) when
 * the table has one already (no compare, no build: a block that is
 * running stays where it is in the arena), else NULL. */
static inline const struct emu_block *block_find(const struct emu_core *c, uint64_t gpa)
{
	if (gpa == ~0ull)
		return NULL;
	const struct emu_block *b = c->blocks->slot[block_index(gpa)];
	return b && b->gpa == gpa && b->n && block_current(c, b) ? b : NULL;
}

/* The handlers emu_fop_build chose for b's instructions (see struct
 * emu_block). */
static inline const fop_fn *block_built(const struct emu_block *b)
{
	return (const fop_fn *)(const void *)b->bytes - b->built;
}

/* --- emu_fast_ops.c --- */

/* What the translator (emu_jit.c) needs to know of a handler. */
enum fop_kind {
	FK_CALL,                       /* runs the instruction, then NEXT (or leaves) */
	FK_EXIT,                       /* always leaves the block (JMP, CALL, RET, f_cross) */
	FK_JCC,                        /* Jcc on condition cc: NEXT, or leaves when taken */
	FK_FUSED,                      /* CMP/TEST (plain) fused with the Jcc after it */
};

/* What a handler of kind FK_CALL computes, where emu_jit.c has a
 * template for it (T_NONE: none). */
enum fop_tmpl { T_NONE, T_MOV, T_ALU, T_MOVZX, T_MOVSX, T_LEA, T_PUSH, T_POP, T_NOP,
		T_SHIFT,                     /* by an immediate; alu: 0 SHL, 1 SHR, 2 SAR */
		T_IMUL,                      /* IMUL r, r (FORM_RR) / r, r, imm (FORM_RI) */
		T_CMOV, T_SETCC,             /* register forms; the condition is f->imm */
		T_ADC, T_SBB,                /* on registers (FORM_RR, FORM_RI) */
		T_INC, T_DEC, T_NEG, T_NOT,  /* on a register */
		T_SHIFT_CL,                  /* a register by CL; alu as T_SHIFT */
		T_ROT,                       /* by an immediate; alu: 0 ROL, 1 ROR */
		T_JMP, T_CALL, T_RET,        /* FK_EXIT */
		T_CROSS };                   /* f_cross (FK_EXIT): its handler in f[1].imm */
/* ALU operations (T_ALU), in this order */
enum { A_ADD, A_SUB, A_CMP, A_AND, A_OR, A_XOR, A_TEST };
/* operand forms */
enum { FORM_RR, FORM_RI, FORM_RM, FORM_MR, FORM_MI };

struct fop_info {
	uint8_t kind;                  /* enum fop_kind */
	uint8_t cc;                    /* FK_JCC, FK_FUSED: the condition */
	bool loop;                     /* FK_JCC: back to the start of its block */
	fop_fn plain;                  /* FK_FUSED: the CMP/TEST's own handler */
	uint8_t tmpl;                  /* enum fop_tmpl */
	uint8_t alu;                   /* T_ALU: A_* */
	uint8_t form;                  /* FORM_* (T_MOVZX/T_MOVSX: RR or RM) */
	uint8_t size, ssize;           /* operand size (destination); T_MOVZX/SX: source */
	bool flags;                    /* the handler records the flags (not an _nf form) */
};

struct fop_info emu_fop_info(fop_fn fn);
/* Is fn f_exact, the exact handler of an instruction without a specialised
 * one? (block_build keeps its decoded form: imm points at it.) */
bool emu_fop_exact(fop_fn fn);
/* The handler of a direct JMP (a taken Jcc's way: its fop has the same fields). */
fop_fn emu_fop_jmp(void);
/* What a RET (f) does after its pop of rip: on to there (chain). */
unsigned emu_fop_chain(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
		       uint64_t rip);
/* The sentinel after a handler the translation calls: back to it. */
unsigned emu_fop_cont(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f);

/* An SSE instruction with an XMM register among its operands and nothing
 * in x86/insn.c's table (no state management): besides what plain ones
 * touch it reads and writes only the XMM registers and MXCSR, which
 * nothing between instructions looks at, and memory only through its
 * operands, the first when it stores (MASKMOVDQU, whose store is
 * implicit, is not one of them). */
bool emu_sse_insn(const struct emu_insn *in);

/* An instruction x86/insn.c does not call plain that blocks run all the
 * same: the string instructions but INS/OUTS (their exact handler, which
 * commits each iteration and, REP, leaves RIP at the instruction while
 * iterations are left: the block ends after them, as after every
 * instruction that may store the exact way), PUSHFQ (exact flags pushed),
 * CLI (it only keeps interrupts out, which a block does anyway), RDTSC and
 * RDTSCP (time is the retired count, exact in an exact handler: sync_at)
 * and the hints that do nothing (PAUSE, PREFETCHh, the fences). */
bool emu_fast_also_plain(const struct emu_insn *in);

/* The handler of the plain instruction in (index idx in its block, pos
 * bytes from its start) into f. */
void emu_fop_build(struct emu_blocks *bs, const struct emu_insn *in, struct emu_fop *f,
		   unsigned idx, unsigned pos);
/* The same for a plain instruction that goes on into the next page (the
 * last of its block, never the first): f_cross, which compares its bytes
 * there (emu_block.tail) and then runs its specialised handler, kept in
 * the end marker's imm (f[1], which emu_fops_finish leaves). */
void emu_fop_build_cross(struct emu_blocks *bs, const struct emu_insn *in, struct emu_fop *f,
			 unsigned idx, unsigned pos);
/* The end of the n instructions in op[] (pos bytes): the end marker,
 * and the flags no one sees dropped. */
void emu_fops_finish(struct emu_blocks *bs, struct emu_fop *op, unsigned n, unsigned pos);
/* Only the end marker after the n instructions of op[] (pos bytes): their
 * handlers as they are, each with its flags when built so. */
void emu_fops_end(struct emu_fop *op, unsigned n, unsigned pos);

#endif
