/* engine/emu/emu_fast_ops.c — the fast path's handlers (see emu_fast.c
 * for blocks, emu_fast.h for what the two share): one per operation and
 * operand form, specialised by size and addressing, with lazy flags
 * (emu_flags.h); the choice of a handler for a decoded instruction; and
 * the forms that leave dead flags alone.
 *
 * A handler ends by running the next instruction of the block (NEXT, a
 * tail call) or by leaving it (stop()). One with a memory operand
 * translates through the TLB first and changes nothing before; on
 * anything but a plain RAM hit (a miss, a device, two pages, a code
 * frame) f_miss runs the instruction's exact handler instead, but for a
 * TLB miss of an instruction with one access, which the walk fills
 * before the handler runs again (emu_tlb_fill_data).
 * Instructions with no specialised handler run their exact handler from
 * emu_exec_*.c (f_exact) after the flags are made exact. */
#include "engine/emu/emu_fast.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_flags.h"
#include "engine/emu/emu_sse.h"
#include "engine/emu/emu_stats.h"
#include "x86/insn.h"

/* --- operands -------------------------------------------------------------------- */

static inline uint64_t gpr_get(const struct emu_cpu *cpu, unsigned r, unsigned s)
{
	return cpu->gpr[r] & msk(s);
}

static inline void gpr_put(struct emu_cpu *cpu, unsigned r, unsigned s, uint64_t v)
{
	if (s == 8)
		cpu->gpr[r] = v;
	else if (s == 4)
		cpu->gpr[r] = (uint32_t)v;         /* zero-extends */
	else
		cpu->gpr[r] = (cpu->gpr[r] & ~msk(s)) | (v & msk(s));
}

/* Linear address of the memory operand (64-bit mode, 64-bit addresses). */
static inline uint64_t f_lin(const struct emu_cpu *cpu, const struct emu_core *c,
			     const struct emu_fop *f)
{
	uint64_t ea = (uint64_t)(int64_t)f->disp;
	if (f->base < 16)
		ea += cpu->gpr[f->base];
	else if (f->base == EMU_RIPREL)
		ea += c->blk_rip;          /* disp counts from the block start */
	if (f->index < 16)
		ea += cpu->gpr[f->index] << f->shift;
	if (__builtin_expect(f->seg >= EMU_FS, 0))
		ea += f->seg == EMU_FS ? cpu->sregs.fs.base : cpu->sregs.gs.base;
	return ea;
}

/* The same for base + displacement (the _b forms of the handlers). */
static inline uint64_t lin_b(const struct emu_cpu *cpu, const struct emu_fop *f)
{
	return cpu->gpr[f->base] + (uint64_t)(int64_t)f->disp;
}

static inline uint64_t load(const uint8_t *p, unsigned s)
{
	uint64_t v = 0;
	memcpy(&v, p, s);                      /* little-endian host */
	return v;
}

static inline void store(uint8_t *p, unsigned s, uint64_t v)
{
	memcpy(p, &v, s);                      /* little-endian host */
}

/* A store into a page that holds blocks: they are compared again before
 * they next run; one into the running block ends it after this store. */
static __attribute__((noinline, cold)) void code_store(struct emu_core *c, uint64_t gpa,
							unsigned s)
{
	const struct emu_block *b = c->blk;
	if (gpa < b->gpa + b->nbytes && gpa + s > b->gpa)
		c->blk_break = true;
}

/* After a store the exact way: into a code frame (see code_store), or
 * not into one RAM page (a device, two pages: leave and look again). */
static void stored(struct emu_core *c, uint64_t lin, unsigned s)
{
	const struct emu_tlb_entry *t = tlb_of(c, lin);
	if ((t->tag_w & ~EMU_TAG_BITS) != ((lin + s - 1) & X86_PAGE_MASK)) {
		c->blk_break = true;
		return;
	}
	if (t->tag_w & EMU_TAG_CODE)       /* the exact store counted it (emu_mem.c) */
		code_store(c, t->gpa + (lin & (X86_PAGE_SIZE - 1)), s);
}

/* A handler ends by running the next instruction of the block (a tail
 * call, which the compiler makes a jump: each handler has its own indirect
 * branch, which the host predicts better than one shared by all) or by
 * leaving the block: stop() notes where and how. */
#define NEXT return f[1].fn(cpu, c, f + 1)

static inline unsigned stop(struct emu_core *c, const struct emu_fop *f, unsigned how)
{
	c->blk_stop = f;
	return how;
}

/* --- handlers ---------------------------------------------------------------------- */

static unsigned f_exact(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f);

static inline const struct emu_block *block_of(const struct emu_fop *f)
{
	const struct emu_fop *first = f - f->idx;
	return (const struct emu_block *)((const char *)first - offsetof(struct emu_block, op));
}

/* f's instruction: an f_exact's as block_build kept it (in imm), else
 * decoded again from its block's copy of its bytes (the decode cache has
 * it, mostly), in the cache's scratch until another op's. The bytes
 * decoded when the block was built: that cannot fail. */
static const struct emu_insn *insn_of(struct emu_cpu *cpu, const struct emu_fop *f)
{
	const struct emu_block *b = block_of(f);
	if (block_built(b)[f->idx] == f_exact)
		return (const struct emu_insn *)(uintptr_t)f->imm;
	struct emu_blocks *bs = cpu->evm->blocks;
	struct emu_insn *in = &bs->insn;
	if (bs->insn_op == f)
		return in;                 /* an op that takes the exact way often (BT, REP) */
	bs->insn_op = (const void *)b == (const void *)bs->prefix ? NULL : f;
	uint8_t buf[15];
	unsigned len = block_insn_bytes(b, f->idx, buf);
	if (emu_decode_cached(cpu->evm, b->mode, b->gpa + f->off, buf, len, in) < 0) {
		fprintf(stderr, "vmdb: emu: internal error: a block's instruction at %#llx "
			"no longer decodes\n", (unsigned long long)(b->gpa + f->off));
		abort();
	}
	return in;
}

/* The exact handler runs f's instruction (counted as `way`, emu_stats.h);
 * with FOP_MEMW the block ends after it (it may have stored into code). */
static inline unsigned exact_way(struct emu_cpu *cpu, struct emu_core *c,
				 const struct emu_fop *f, unsigned way)
{
	const struct emu_insn *in = insn_of(cpu, f);
	emu_insn_stat(cpu->evm->insn_stats, way, in->mnemonic);
	sync_at(cpu, c, f);
	emu_flags_sync(cpu);
	in->fn(cpu, in);
	if ((f->flags & FOP_MEMW) || (c->dbg_armed && emu_dbg_data_hit(cpu)))
		c->blk_break = true;
	if (c->blk_break || cpu->rip != c->blk_rip + f->end)
		return stop(c, f, FS_JUMP);
	NEXT;
}

/* Anything without a specialised form: the exact handler. */
static unsigned f_exact(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	return exact_way(cpu, c, f, EMU_STAT_EXACT);
}

/* An instruction that goes on into the next page (the last of its
 * block, never the first): its bytes there (emu_block.tail, as many as
 * it has there) are compared with those the TLB maps there now, each
 * time; when they differ the block is left before it (f->idx > 0: an
 * earlier one retired) and step() runs it; else its specialised handler
 * (f[1].imm: emu_fop_build_cross) does. */
static unsigned f_cross(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	uint64_t next = (c->blk_rip & X86_PAGE_MASK) + X86_PAGE_SIZE;
	const struct emu_tlb_entry *t = tlb_of(c, next);
	unsigned len = (unsigned)((c->blk_rip + f->end) & (X86_PAGE_SIZE - 1));
	if (t->tag_x != next || !t->host || memcmp(t->host, block_of(f)->tail, len) != 0)
		return stop(c, f, FS_END);
	return ((fop_fn)(uintptr_t)f[1].imm)(cpu, c, f);
}

/* A specialised handler whose memory access the TLB does not allow as it
 * is (a miss, a device, two pages, a store into a code frame): the exact
 * handler runs the instruction (the specialised ones change nothing before
 * their accesses), then its store is looked at as mwrite would. A watched
 * page (EMU_TAG_WATCH) comes here too: the exact accesses tell the debug
 * part, and a hit ends the block. */
/* The access f's handler could not do, for VMDB_EMU_STATS: at *lin,
 * *size bytes, a store when true. */
static bool miss_access(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
			uint64_t *lin, unsigned *size)
{
	const struct emu_insn *in = insn_of(cpu, f);
	if (f->flags & FOP_WMEM) {
		*lin = (f->flags & FOP_WSTK) ? cpu->gpr[EMU_RSP] - 8 : f_lin(cpu, c, f);
		*size = 1u << ((f->flags >> FOP_WSHIFT) & 7);
		return true;
	}
	*lin = cpu->gpr[EMU_RSP];              /* a pop, a RET */
	*size = 8;
	for (unsigned i = 0; i < in->nops; i++) {
		if (in->op[i].kind == EMU_OP_MEM) {
			*lin = f_lin(cpu, c, f);
			*size = in->op[i].size && in->op[i].size <= 8 ? in->op[i].size : 8;
		}
	}
	return false;
}

static uint64_t miss_tag(struct emu_core *c, uint64_t lin, bool w)
{
	const struct emu_tlb_entry *t = tlb_of(c, lin);
	return w ? t->tag_w : t->tag_r;
}

/* Why f's access missed (MISS_*), t0 its tag before the exact way ran it. */
static __attribute__((cold, noinline)) void miss_count(struct emu_core *c, uint64_t lin,
						       unsigned size, bool w, uint64_t t0)
{
	uint64_t page = lin & X86_PAGE_MASK, t1 = miss_tag(c, lin, w);
	unsigned why = MISS_OTHER;
	if ((lin & (X86_PAGE_SIZE - 1)) + size > X86_PAGE_SIZE)
		why = MISS_CROSS;
	else if (t1 != ~0ull && (t1 & EMU_TAG_WATCH))
		why = MISS_WATCH;
	else if (w && t1 != ~0ull && (t1 & EMU_TAG_CODE))
		why = MISS_CODE;
	else if (t1 == page && t0 != page)
		why = MISS_FILL;
	else if (!tlb_of(c, lin)->host)
		why = MISS_DEVICE;
	c->blocks->misses[why]++;
}

static unsigned ret_near(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f);
static unsigned pop_r(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f);

/* The handler f's instruction was built with (its flags recorded where
 * f's own form may leave them, which is the same: they were dead there);
 * a block cut short by the budget runs those (block_prefix). */
static fop_fn built_fn(const struct emu_core *c, const struct emu_fop *f)
{
	const struct emu_block *b = block_of(f);
	if ((const void *)b == (const void *)c->blocks->prefix)
		return f->fn;
	return block_built(b)[f->idx];
}

/* The data access of f's built handler when it makes only one, of at
 * most 8 bytes (no alignment rule) and in one page: at *lin, a store
 * when *write. */
static bool one_access(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
		       fop_fn fn, uint64_t *lin, bool *write)
{
	const struct emu_insn *in = insn_of(cpu, f);
	const struct emu_operand *m = NULL;
	unsigned mems = 0, size;
	if (f->flags & FOP_MEMW)
		return false;              /* not through the TLB compare (string, BT) */
	if (emu_sse_insn(in) && ((cpu->sregs.cr0 & (CR0_EM | CR0_TS)) ||
				 !(cpu->sregs.cr4 & CR4_OSFXSR)))
		return false;              /* #UD/#NM before any access (sse_ready) */
	for (unsigned i = 0; i < in->nops; i++) {
		if (in->op[i].kind == EMU_OP_MEM) {
			m = &in->op[i];
			mems++;
		}
	}
	if (fn == ret_near || fn == pop_r) {
		*lin = cpu->gpr[EMU_RSP];
		*write = false;
		size = 8;
	} else if ((f->flags & FOP_WSTK) && mems == 0) {
		size = 1u << ((f->flags >> FOP_WSHIFT) & 7);   /* PUSH, CALL */
		*lin = cpu->gpr[EMU_RSP] - size;
		*write = true;
	} else if (mems == 1 && !(f->flags & FOP_WSTK) && in->mnemonic != ZYDIS_MNEMONIC_POP &&
		   !(x86_mnemonic(in->mnemonic)->attrs & X86_MN_PUSHES)) {
		size = m->size;
		*lin = f_lin(cpu, c, f);
		*write = (f->flags & FOP_WMEM) || (emu_sse_insn(in) && m == &in->op[0]);
	} else {
		return false;
	}
	return size && size <= 8 && (*lin & (X86_PAGE_SIZE - 1)) <= X86_PAGE_SIZE - size;
}

static __attribute__((noinline)) unsigned f_miss(struct emu_cpu *cpu, struct emu_core *c,
						 const struct emu_fop *f)
{
	const struct emu_insn *in = insn_of(cpu, f);
	uint64_t wlin = 0;
	/* a TLB miss the walk fills: the specialised handler again */
	fop_fn fn = built_fn(c, f);
	bool w;
	if (!c->dbg_armed && one_access(cpu, c, f, fn, &wlin, &w) &&
	    emu_tlb_fill_data(cpu, wlin, w)) {
		c->blocks->data_fills++;
		return fn(cpu, c, f);
	}
	emu_insn_stat(cpu->evm->insn_stats, EMU_STAT_MISS, in->mnemonic);
	if (f->flags & FOP_WMEM)
		wlin = (f->flags & FOP_WSTK) ? cpu->gpr[EMU_RSP] - 8 : f_lin(cpu, c, f);
	uint64_t slin = 0, stag = 0;
	unsigned ssize = 0;
	bool sw = false;
	if (__builtin_expect(cpu->evm->insn_stats != NULL, 0)) {
		sw = miss_access(cpu, c, f, &slin, &ssize);
		stag = miss_tag(c, slin, sw);
	}
	sync_at(cpu, c, f);
	emu_flags_sync(cpu);
	in->fn(cpu, in);
	if (__builtin_expect(cpu->evm->insn_stats != NULL, 0))
		miss_count(c, slin, ssize, sw, stag);
	if (f->flags & FOP_WMEM)
		stored(c, wlin, 1u << ((f->flags >> FOP_WSHIFT) & 7));
	if (c->dbg_armed && emu_dbg_data_hit(cpu))
		c->blk_break = true;       /* emu_block_run ends the instruction */
	if (c->blk_break || cpu->rip != c->blk_rip + f->end)
		return stop(c, f, FS_JUMP);
	NEXT;
}

/* The host address of a RAM access (a write when w) of s bytes at lin
 * into p when the TLB allows it as it is, else the exact way (f_miss).
 * One compare: the tag of lin's slot can only be the page of lin + s - 1
 * when both are one page. A write tag with EMU_TAG_CODE never matches:
 * stores into frames that hold blocks take the slow way, which checks for
 * code. */
#define ACCESS(p, lin, s, w) ACCESS_OR(p, lin, s, w, f_miss(cpu, c, f))
/* The same with another way than f_miss when the TLB does not allow it. */
#define ACCESS_OR(p, lin, s, w, miss)                                                         \
	uint64_t p##_lin = (lin);                                                             \
	const struct emu_tlb_entry *p##_t = tlb_of(c, p##_lin);                               \
	if (__builtin_expect(((w) ? p##_t->tag_w : p##_t->tag_r) !=                           \
			     ((p##_lin + (s) - 1) & X86_PAGE_MASK), 0))                       \
		return miss;                                                                  \
	uint8_t *p = p##_t->host + (p##_lin & (X86_PAGE_SIZE - 1))
#define RD(p, lin, s) ACCESS(p, lin, s, 0)
#define WR(p, lin, s) ACCESS(p, lin, s, 1)

/* Run block b (at linear rip; ret instructions retired before it)
 * next, as one more of the chain. */
static inline unsigned enter(struct emu_cpu *cpu, struct emu_core *c, const struct emu_block *b,
			     uint64_t rip, uint64_t ret)
{
	c->chain_left--;
	c->blk_ret = ret;
	c->blk = b;
	c->blk_rip = rip;
	return b->op[0].fn(cpu, c, b->op);
}

/* chain() when its link does not fit or something may be due: the block
 * at rip from the table when it has one (a RET back to another caller,
 * a link not made yet), the link set to it; else leave as `how`. */
static __attribute__((noinline)) unsigned chain_slow(struct emu_cpu *cpu, struct emu_core *c,
						     const struct emu_fop *f, uint64_t rip,
						     uint64_t ret, unsigned how)
{
	uint64_t gpa = link_gpa(c, rip);
	const struct emu_block *b = f->link;
	if (c->chain_left == 0 || !may_go_on(cpu, c))
		goto leave;
	if (!b || b->gpa != gpa || !block_current(c, b)) {
		b = block_find(c, gpa);
		if (!b)
			goto leave;
		((struct emu_fop *)f)->link = (struct emu_block *)b;
	}
	if (c->budget_end - ret < b->n)
		goto leave;
	return enter(cpu, c, b, rip, ret);
leave:
	if (how == FS_JUMP)
		cpu->rip = rip;
	return stop(c, f, how);
}

/* Leaving the block at f for rip (ret instructions retired by then) to
 * the block that ran there last time (f->link, set by emu_fast.c's
 * block_next and by chain_slow; only ever a block with instructions):
 * run it at once, without going back to the block loop, when that loop
 * would do nothing but find it: the link is still valid (block_current,
 * at the address link_gpa finds), the budget has room for it whole,
 * nothing is due (may_go_on) and the chain is not too long
 * (c->chain_left: where handlers are not tail calls, as in the sanitizer
 * build, each block chained is stack). Else chain_slow decides. Inline,
 * without calls but tail calls: the handlers that chain need no frame. */
static inline __attribute__((always_inline)) unsigned chain(struct emu_cpu *cpu,
							   struct emu_core *c,
							   const struct emu_fop *f, uint64_t rip,
							   uint64_t ret, unsigned how)
{
	const struct emu_block *b = f->link;
	uint64_t gpa = link_gpa(c, rip);
	if (__builtin_expect(!b || b->gpa != gpa || !block_current(c, b) ||
			     c->budget_end - ret < b->n || c->chain_left == 0 ||
			     !may_go_on(cpu, c), 0))
		return chain_slow(cpu, c, f, rip, ret, how);
	return enter(cpu, c, b, rip, ret);
}

/* The end of the block (not an instruction): on to the next one. */
static unsigned f_end(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	return chain(cpu, c, f, c->blk_rip + f->off, c->blk_ret + f->idx, FS_END);
}


#define A_WRITES(op) ((op) != A_CMP && (op) != A_TEST)

static inline __attribute__((always_inline)) void alu(struct emu_core *c, unsigned op,
						      uint64_t a, uint64_t b, uint64_t *r,
						      unsigned s, bool set_flags)
{
	uint8_t lf;
	switch (op) {
	case A_ADD: *r = a + b; lf = EMU_LF_ADD; break;
	case A_SUB: case A_CMP: *r = a - b; lf = EMU_LF_SUB; break;
	case A_AND: case A_TEST: *r = a & b; lf = EMU_LF_LOGIC; break;
	case A_OR: *r = a | b; lf = EMU_LF_LOGIC; break;
	default: *r = a ^ b; lf = EMU_LF_LOGIC; break;
	}
	if (set_flags)
		emu_lf_record(c, lf, a, b, *r, s);
}

#define FOP(NAME) static unsigned NAME(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)

#define DEF_ALU_R(NAME, OP, S)                                                                \
FOP(NAME##_rr##S)                                                                             \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = gpr_get(cpu, f->r1, S), r;                   \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_ri##S)                                                                             \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = f->imm & msk(S), r;                          \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_rr##S##_nf)                                                                        \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = gpr_get(cpu, f->r1, S), r;                   \
	alu(c, OP, a, b, &r, S, false);                                                       \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_ri##S##_nf)                                                                        \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = f->imm & msk(S), r;                          \
	alu(c, OP, a, b, &r, S, false);                                                       \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
	NEXT;                                                                                 \
}

#define DEF_ALU_M(NAME, OP, S, SUF, LIN)                                                      \
FOP(NAME##_rm##S##SUF)                                                                        \
{                                                                                             \
	RD(p, LIN, S);                                                                        \
	uint64_t b = load(p, S);                                                              \
	uint64_t a = gpr_get(cpu, f->r0, S), r;                                               \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_mr##S##SUF)                                                                        \
{                                                                                             \
	ACCESS(p, LIN, S, A_WRITES(OP));                                                      \
	uint64_t a = load(p, S), b = gpr_get(cpu, f->r1, S), r;                               \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		store(p, S, r);                                                               \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_mi##S##SUF)                                                                        \
{                                                                                             \
	ACCESS(p, LIN, S, A_WRITES(OP));                                                      \
	uint64_t a = load(p, S), b = f->imm & msk(S), r;                                      \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		store(p, S, r);                                                               \
	NEXT;                                                                                 \
}

#define DEF_ALU(NAME, OP, S) DEF_ALU_R(NAME, OP, S) DEF_ALU_M(NAME, OP, S, , f_lin(cpu, c, f)) \
			     DEF_ALU_M(NAME, OP, S, _b, lin_b(cpu, f))

#define DEF_ALU2(NAME, OP) DEF_ALU(NAME, OP, 8) DEF_ALU(NAME, OP, 4) DEF_ALU(NAME, OP, 2)     \
			   DEF_ALU(NAME, OP, 1)
DEF_ALU2(add, A_ADD)
DEF_ALU2(sub, A_SUB)
DEF_ALU2(cmp, A_CMP)
DEF_ALU2(and, A_AND)
DEF_ALU2(or, A_OR)
DEF_ALU2(xor, A_XOR)
DEF_ALU2(test, A_TEST)

/* OP AH/CH/DH/BH, imm (f->r0: RAX..RBX, the register's bits 8-15) */
#define DEF_ALU_H(NAME, OP)                                                                   \
FOP(NAME##_hi)                                                                                \
{                                                                                             \
	uint64_t a = (cpu->gpr[f->r0] >> 8) & 0xff, b = f->imm & 0xff, r;                     \
	alu(c, OP, a, b, &r, 1, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		cpu->gpr[f->r0] = (cpu->gpr[f->r0] & ~0xff00ull) | (r & 0xff) << 8;           \
	NEXT;                                                                                 \
}
DEF_ALU_H(add, A_ADD)
DEF_ALU_H(sub, A_SUB)
DEF_ALU_H(cmp, A_CMP)
DEF_ALU_H(and, A_AND)
DEF_ALU_H(or, A_OR)
DEF_ALU_H(xor, A_XOR)
DEF_ALU_H(test, A_TEST)

/* MOVZX r32/r64, AH/CH/DH/BH */
FOP(movzx_h)
{
	(void)c;
	cpu->gpr[f->r0] = (cpu->gpr[f->r1] >> 8) & 0xff;
	NEXT;
}

/* [form][size 8 / 4 / 2 / 1] per ALU mnemonic */
struct alu_forms {
	uint16_t mnemonic;
	fop_fn fn[5][4];               /* rr, ri, rm, mr, mi */
};

#define FORM(NAME, F) { NAME##_##F##8, NAME##_##F##4, NAME##_##F##2, NAME##_##F##1 }
#define FORMS(NAME) { FORM(NAME, rr), FORM(NAME, ri), FORM(NAME, rm), FORM(NAME, mr),         \
		      FORM(NAME, mi) }

static const unsigned form_size[4] = { 8, 4, 2, 1 };

static const struct alu_forms alu_table[] = {
	{ ZYDIS_MNEMONIC_ADD, FORMS(add) }, { ZYDIS_MNEMONIC_SUB, FORMS(sub) },
	{ ZYDIS_MNEMONIC_CMP, FORMS(cmp) }, { ZYDIS_MNEMONIC_AND, FORMS(and) },
	{ ZYDIS_MNEMONIC_OR, FORMS(or) }, { ZYDIS_MNEMONIC_XOR, FORMS(xor) },
	{ ZYDIS_MNEMONIC_TEST, FORMS(test) },
};

#define DEF_INCDEC(S)                                                                         \
FOP(inc_r##S)                                                                                 \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a + 1;                                       \
	bool cf = emu_cf_now(cpu, c);                                                         \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_lf_record(c, EMU_LF_INC, a, 1, r, S);                                             \
	c->lf_cf = cf;                                                                        \
	NEXT;                                                                                 \
}                                                                                             \
FOP(dec_r##S)                                                                                 \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a - 1;                                       \
	bool cf = emu_cf_now(cpu, c);                                                         \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_lf_record(c, EMU_LF_DEC, a, 1, r, S);                                             \
	c->lf_cf = cf;                                                                        \
	NEXT;                                                                                 \
}
DEF_INCDEC(8)
DEF_INCDEC(4)

#define DEF_INCDEC_M(S)                                                                       \
FOP(inc_m##S)                                                                                 \
{                                                                                             \
	WR(p, f_lin(cpu, c, f), S);                                                           \
	uint64_t a = load(p, S), r = a + 1;                                                   \
	bool cf = emu_cf_now(cpu, c);                                                         \
	store(p, S, r);                                                                       \
	emu_lf_record(c, EMU_LF_INC, a, 1, r, S);                                             \
	c->lf_cf = cf;                                                                        \
	NEXT;                                                                                 \
}                                                                                             \
FOP(dec_m##S)                                                                                 \
{                                                                                             \
	WR(p, f_lin(cpu, c, f), S);                                                           \
	uint64_t a = load(p, S), r = a - 1;                                                   \
	bool cf = emu_cf_now(cpu, c);                                                         \
	store(p, S, r);                                                                       \
	emu_lf_record(c, EMU_LF_DEC, a, 1, r, S);                                             \
	c->lf_cf = cf;                                                                        \
	NEXT;                                                                                 \
}
DEF_INCDEC_M(8)
DEF_INCDEC_M(4)
DEF_INCDEC_M(2)
DEF_INCDEC_M(1)

/* DIV r/m64, r/m32: RDX:RAX / d into RAX, RDX:RAX % d into RDX, the
 * flags as they were (h_div); false for #DE (d = 0, a quotient too wide),
 * which the exact way raises. */
static inline bool divide(struct emu_cpu *cpu, uint64_t d, unsigned s)
{
	uint64_t hi = gpr_get(cpu, EMU_RDX, s), lo = gpr_get(cpu, EMU_RAX, s), q, r;
	d &= msk(s);
	if (d == 0 || hi >= d)
		return false;
	if (s == 8) {
		__asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(hi), "rm"(d));
	} else {
		uint64_t n = hi << 32 | lo;
		q = n / d;
		r = n % d;
	}
	gpr_put(cpu, EMU_RAX, s, q);
	gpr_put(cpu, EMU_RDX, s, r);
	return true;
}

#define DEF_DIV(S)                                                                            \
FOP(div_r##S)                                                                                 \
{                                                                                             \
	if (!divide(cpu, cpu->gpr[f->r0], S))                                                 \
		return f_miss(cpu, c, f);                                                     \
	NEXT;                                                                                 \
}                                                                                             \
FOP(div_m##S)                                                                                 \
{                                                                                             \
	RD(p, f_lin(cpu, c, f), S);                                                           \
	if (!divide(cpu, load(p, S), S))                                                      \
		return f_miss(cpu, c, f);                                                     \
	NEXT;                                                                                 \
}
DEF_DIV(8)
DEF_DIV(4)

/* An operation on an r/m operand in two forms: op(cpu, c, f, v, S) with v
 * the register f->R (_r) or S bytes at f's memory operand (_m). */
#define DEF_RM_FORMS(NAME, OP, R, S)                                                          \
FOP(NAME##_r##S)                                                                              \
{                                                                                             \
	OP(cpu, c, f, cpu->gpr[f->R], S);                                                     \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_m##S)                                                                              \
{                                                                                             \
	RD(p, f_lin(cpu, c, f), S);                                                           \
	OP(cpu, c, f, load(p, S), S);                                                         \
	NEXT;                                                                                 \
}

/* MUL r/m64, r/m32: RDX:RAX = RAX * v; CF = OF = the high half is not 0,
 * SF/ZF/PF of the low half, AF 0 (as h_mul leaves them) */
static inline void multiply(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
			    uint64_t v, unsigned s)
{
	(void)f;
	unsigned __int128 p = (unsigned __int128)gpr_get(cpu, EMU_RAX, s) * (v & msk(s));
	uint64_t lo = (uint64_t)p & msk(s), hi = s == 8 ? (uint64_t)(p >> 64) : (uint64_t)p >> 32;
	gpr_put(cpu, EMU_RAX, s, lo);
	gpr_put(cpu, EMU_RDX, s, hi);
	emu_lf_record(c, EMU_LF_LOGIC_CO, lo, hi ? 3 : 0, lo, s);
}
DEF_RM_FORMS(mul, multiply, r0, 8)
DEF_RM_FORMS(mul, multiply, r0, 4)

/* BSF/BSR r, r/m (f->imm: BSR): ZF = the source is 0, which leaves the
 * destination alone; the other flags as they were (h_bsf_bsr) */
static inline void bitscan(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
			   uint64_t v, unsigned s)
{
	(void)c;
	v &= msk(s);
	emu_flags_sync(cpu);
	if (!v) {
		cpu->rflags |= RFLAGS_ZF;
		return;
	}
	gpr_put(cpu, f->r0, s, f->imm ? (uint64_t)(63 - __builtin_clzll(v)) :
				(uint64_t)__builtin_ctzll(v));
	cpu->rflags &= ~RFLAGS_ZF;
}
DEF_RM_FORMS(bitscan, bitscan, r1, 8)
DEF_RM_FORMS(bitscan, bitscan, r1, 4)

/* TZCNT/LZCNT r, r/m (f->imm: LZCNT): the count, the operand's width for
 * 0; CF = the source is 0, ZF = the count is, the other flags as they
 * were (h_tzcnt_lzcnt) */
static inline void zcount(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
			  uint64_t v, unsigned s)
{
	(void)c;
	unsigned bits = s * 8;
	v &= msk(s);
	uint64_t r = !v ? bits : f->imm ? (uint64_t)(__builtin_clzll(v) - (64 - bits))
			       : (uint64_t)__builtin_ctzll(v);
	emu_flags_sync(cpu);
	gpr_put(cpu, f->r0, s, r);
	cpu->rflags &= ~(RFLAGS_CF | RFLAGS_ZF);
	if (!v)
		cpu->rflags |= RFLAGS_CF;
	if (!r)
		cpu->rflags |= RFLAGS_ZF;
}
DEF_RM_FORMS(zcount, zcount, r1, 8)
DEF_RM_FORMS(zcount, zcount, r1, 4)

/* BT/BTS/BTR/BTC r/m, imm (the bit: f->imm, already below the width):
 * CF = the bit, the other flags as they were (h_bt) */
static inline void set_cf(struct emu_cpu *cpu, bool cf)
{
	emu_flags_sync(cpu);
	cpu->rflags = (cpu->rflags & ~RFLAGS_CF) | (cf ? RFLAGS_CF : 0);
}

enum { BT_TEST, BT_SET, BT_RESET, BT_COMPLEMENT };

static inline uint64_t bt_apply(unsigned op, uint64_t v, uint64_t bit)
{
	switch (op) {
	case BT_SET: return v | bit;
	case BT_RESET: return v & ~bit;
	case BT_COMPLEMENT: return v ^ bit;
	default: return v;
	}
}

#define DEF_BT(NAME, OP, S)                                                                   \
FOP(NAME##_ri##S)                                                                             \
{                                                                                             \
	uint64_t v = gpr_get(cpu, f->r0, S), bit = 1ull << f->imm;                            \
	if ((OP) != BT_TEST)                                                                  \
		gpr_put(cpu, f->r0, S, bt_apply(OP, v, bit));                                 \
	set_cf(cpu, v & bit);                                                                 \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_mi##S)                                                                             \
{                                                                                             \
	ACCESS(p, f_lin(cpu, c, f), S, (OP) != BT_TEST);                                      \
	uint64_t v = load(p, S), bit = 1ull << f->imm;                                        \
	if ((OP) != BT_TEST)                                                                  \
		store(p, S, bt_apply(OP, v, bit));                                            \
	set_cf(cpu, v & bit);                                                                 \
	NEXT;                                                                                 \
}
/* ... r/m, r (the bit offset: register r1). With memory the offset,
 * signed, reaches beyond the operand (to the operand-sized word that holds
 * the bit, as h_bt); a store there is not at f_lin, so when the TLB does
 * not allow the access the exact way runs it and, storing (FOP_MEMW), ends
 * the block. */
#define DEF_BT_R(NAME, OP, S)                                                                 \
FOP(NAME##_rr##S)                                                                             \
{                                                                                             \
	uint64_t v = gpr_get(cpu, f->r0, S), bit = 1ull << (cpu->gpr[f->r1] & (S * 8 - 1));   \
	if ((OP) != BT_TEST)                                                                  \
		gpr_put(cpu, f->r0, S, bt_apply(OP, v, bit));                                 \
	set_cf(cpu, v & bit);                                                                 \
	NEXT;                                                                                 \
}                                                                                             \
FOP(NAME##_mr##S)                                                                             \
{                                                                                             \
	uint64_t off = cpu->gpr[f->r1] & msk(S);                                              \
	unsigned b = (unsigned)(off & (S * 8 - 1));                                           \
	int64_t word = ((int64_t)emu_sext(off, S) - (int64_t)b) / (S * 8);                    \
	ACCESS_OR(p, f_lin(cpu, c, f) + (uint64_t)(word * S), S, (OP) != BT_TEST,             \
		  exact_way(cpu, c, f, EMU_STAT_MISS));                                       \
	uint64_t v = load(p, S), bit = 1ull << b;                                             \
	if ((OP) != BT_TEST)                                                                  \
		store(p, S, bt_apply(OP, v, bit));                                            \
	set_cf(cpu, v & bit);                                                                 \
	NEXT;                                                                                 \
}
#define DEF_BT3(NAME, OP) DEF_BT(NAME, OP, 8) DEF_BT(NAME, OP, 4) DEF_BT(NAME, OP, 2)         \
			  DEF_BT_R(NAME, OP, 8) DEF_BT_R(NAME, OP, 4) DEF_BT_R(NAME, OP, 2)
DEF_BT3(bt, BT_TEST)
DEF_BT3(bts, BT_SET)
DEF_BT3(btr, BT_RESET)
DEF_BT3(btc, BT_COMPLEMENT)

#define DEF_MOV_R(S)                                                                          \
FOP(mov_rr##S)                                                                                \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, gpr_get(cpu, f->r1, S));                                       \
	NEXT;                                                                                 \
}                                                                                             \
FOP(mov_ri##S)                                                                                \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, f->imm);                                                       \
	NEXT;                                                                                 \
}

#define DEF_MOV_M(S, SUF, LIN)                                                                \
FOP(mov_rm##S##SUF)                                                                           \
{                                                                                             \
	RD(p, LIN, S);                                                                        \
	gpr_put(cpu, f->r0, S, load(p, S));                                                   \
	NEXT;                                                                                 \
}                                                                                             \
FOP(mov_mr##S##SUF)                                                                           \
{                                                                                             \
	WR(p, LIN, S);                                                                        \
	store(p, S, cpu->gpr[f->r1]);                                                         \
	NEXT;                                                                                 \
}                                                                                             \
FOP(mov_mi##S##SUF)                                                                           \
{                                                                                             \
	WR(p, LIN, S);                                                                        \
	store(p, S, f->imm);                                                                  \
	NEXT;                                                                                 \
}

#define DEF_MOV(S) DEF_MOV_R(S) DEF_MOV_M(S, , f_lin(cpu, c, f)) DEF_MOV_M(S, _b, lin_b(cpu, f))
DEF_MOV(8)
DEF_MOV(4)
DEF_MOV(2)
DEF_MOV(1)

#define DEF_LEA(S)                                                                            \
FOP(lea_r##S)                                                                                 \
{                                                                                             \
	gpr_put(cpu, f->r0, S, f_lin(cpu, c, f));                                             \
	NEXT;                                                                                 \
}
DEF_LEA(8)
DEF_LEA(4)

/* CMOVcc reads its source whatever the condition (a fault is a fault);
 * a 32-bit destination is zero-extended even when nothing moves. */
#define DEF_CMOV(S)                                                                           \
FOP(cmov_rr##S)                                                                               \
{                                                                                             \
	uint64_t v = gpr_get(cpu, f->r1, S);                                                  \
	gpr_put(cpu, f->r0, S, emu_cond_now(cpu, c, (unsigned)f->imm) ? v : cpu->gpr[f->r0]); \
	NEXT;                                                                                 \
}                                                                                             \
DEF_CMOV_M(S, , f_lin(cpu, c, f))                                                             \
DEF_CMOV_M(S, _b, lin_b(cpu, f))
#define DEF_CMOV_M(S, SUF, LIN)                                                               \
FOP(cmov_rm##S##SUF)                                                                          \
{                                                                                             \
	RD(p, LIN, S);                                                                        \
	uint64_t v = load(p, S);                                                              \
	gpr_put(cpu, f->r0, S, emu_cond_now(cpu, c, (unsigned)f->imm) ? v : cpu->gpr[f->r0]); \
	NEXT;                                                                                 \
}
DEF_CMOV(8)
DEF_CMOV(4)

/* SETcc r8 (not AH-DH). */
FOP(setcc_r)
{
	cpu->gpr[f->r0] = (cpu->gpr[f->r0] & ~0xffull) | emu_cond_now(cpu, c, (unsigned)f->imm);
	NEXT;
}

/* MOVZX / MOVSX / MOVSXD r64/r32 (size D), r/m of SS bytes. */
#define DEF_EXT(D, SS)                                                                        \
FOP(movzx_rr##D##_##SS)                                                                       \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, D, cpu->gpr[f->r1] & msk(SS));                                    \
	NEXT;                                                                                 \
}                                                                                             \
DEF_EXT_M(D, SS, , f_lin(cpu, c, f))                                                          \
DEF_EXT_M(D, SS, _b, lin_b(cpu, f))                                                           \
FOP(movsx_rr##D##_##SS)                                                                       \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, D, emu_sext(cpu->gpr[f->r1] & msk(SS), SS));                      \
	NEXT;                                                                                 \
}

#define DEF_EXT_M(D, SS, SUF, LIN)                                                            \
FOP(movzx_rm##D##_##SS##SUF)                                                                  \
{                                                                                             \
	RD(p, LIN, SS);                                                                       \
	gpr_put(cpu, f->r0, D, load(p, SS));                                                  \
	NEXT;                                                                                 \
}                                                                                             \
FOP(movsx_rm##D##_##SS##SUF)                                                                  \
{                                                                                             \
	RD(p, LIN, SS);                                                                       \
	gpr_put(cpu, f->r0, D, emu_sext(load(p, SS), SS));                                    \
	NEXT;                                                                                 \
}
DEF_EXT(8, 1) DEF_EXT(8, 2) DEF_EXT(8, 4)
DEF_EXT(4, 1) DEF_EXT(4, 2) DEF_EXT(4, 4)

/* [zx/sx][rr/rm][dst 8/4][src 1/2/4] */
static const fop_fn ext_fn[2][2][2][3] = {
	{ { { movzx_rr8_1, movzx_rr8_2, movzx_rr8_4 }, { movzx_rr4_1, movzx_rr4_2, movzx_rr4_4 } },
	  { { movzx_rm8_1, movzx_rm8_2, movzx_rm8_4 }, { movzx_rm4_1, movzx_rm4_2, movzx_rm4_4 } } },
	{ { { movsx_rr8_1, movsx_rr8_2, movsx_rr8_4 }, { movsx_rr4_1, movsx_rr4_2, movsx_rr4_4 } },
	  { { movsx_rm8_1, movsx_rm8_2, movsx_rm8_4 }, { movsx_rm4_1, movsx_rm4_2, movsx_rm4_4 } } },
};

/* A rotate's CF (co bit 0) and OF (bit 1); SF, ZF, PF and AF stay as
 * they were: exact flags are updated in place, lazy ones become EMU_LF_ROT
 * (the earlier op's result kept for SF/ZF/PF, its AF computed now). */
static inline void rotated(struct emu_cpu *cpu, struct emu_core *c, unsigned co)
{
	if (c->lf_op == EMU_LF_NONE) {
		cpu->rflags = (cpu->rflags & ~(RFLAGS_CF | RFLAGS_OF)) |
			      (co & 1) * RFLAGS_CF | ((co >> 1) & 1) * RFLAGS_OF;
		return;
	}
	uint64_t af = 0;
	if (c->lf_op == EMU_LF_ROT)
		af = c->lf_b & RFLAGS_AF;
	else if (c->lf_op != EMU_LF_LOGIC && c->lf_op != EMU_LF_LOGIC_CO)
		af = (c->lf_a ^ c->lf_b ^ c->lf_r) & RFLAGS_AF;
	c->lf_b = af | co;
	c->lf_op = EMU_LF_ROT;
}

/* Shifts and rotates of a register by an immediate count n != 0 (f->imm,
 * already masked; shifts of 16 and 8 bits: below their width), as
 * h_shift / h_rotate compute them. */
#define DEF_SHIFT(S)                                                                          \
FOP(shl_ri##S)                                                                                \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = (a << n) & msk(S);                           \
	unsigned cf = (a >> (bits - n)) & 1, of = ((r >> (bits - 1)) & 1) != cf;              \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_lf_record(c, EMU_LF_LOGIC_CO, r, cf | of << 1, r, S);                             \
	NEXT;                                                                                 \
}                                                                                             \
FOP(shr_ri##S)                                                                                \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a >> n;                                      \
	unsigned cf = (a >> (n - 1)) & 1, of = (a >> (bits - 1)) & 1;                         \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_lf_record(c, EMU_LF_LOGIC_CO, r, cf | of << 1, r, S);                             \
	NEXT;                                                                                 \
}                                                                                             \
FOP(sar_ri##S)                                                                                \
{                                                                                             \
	unsigned n = (unsigned)f->imm;                                                        \
	int64_t sa = (int64_t)emu_sext(gpr_get(cpu, f->r0, S), S);                            \
	uint64_t r = (uint64_t)(sa >> n) & msk(S);                                            \
	unsigned cf = (sa >> (n - 1)) & 1;                                                    \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_lf_record(c, EMU_LF_LOGIC_CO, r, cf, r, S);                                       \
	NEXT;                                                                                 \
}                                                                                             \
FOP(shl_ri##S##_nf)                                                                           \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, (gpr_get(cpu, f->r0, S) << f->imm) & msk(S));                  \
	NEXT;                                                                                 \
}                                                                                             \
FOP(shr_ri##S##_nf)                                                                           \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, gpr_get(cpu, f->r0, S) >> f->imm);                             \
	NEXT;                                                                                 \
}                                                                                             \
FOP(sar_ri##S##_nf)                                                                           \
{                                                                                             \
	(void)c;                                                                              \
	int64_t sa = (int64_t)emu_sext(gpr_get(cpu, f->r0, S), S);                            \
	gpr_put(cpu, f->r0, S, (uint64_t)(sa >> f->imm) & msk(S));                            \
	NEXT;                                                                                 \
}
#define DEF_ROT(S)                                                                            \
FOP(rol_ri##S)                                                                                \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = ((a << n) | (a >> (bits - n))) & msk(S);     \
	unsigned cf = r & 1, of = ((r >> (bits - 1)) & 1) ^ cf;                               \
	gpr_put(cpu, f->r0, S, r);                                                            \
	rotated(cpu, c, cf | of << 1);                                                        \
	NEXT;                                                                                 \
}                                                                                             \
FOP(ror_ri##S)                                                                                \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = ((a >> n) | (a << (bits - n))) & msk(S);     \
	unsigned cf = (r >> (bits - 1)) & 1, of = cf ^ ((r >> (bits - 2)) & 1);               \
	gpr_put(cpu, f->r0, S, r);                                                            \
	rotated(cpu, c, cf | of << 1);                                                        \
	NEXT;                                                                                 \
}
DEF_SHIFT(8)
DEF_SHIFT(4)
DEF_SHIFT(2)
DEF_SHIFT(1)
DEF_ROT(8)
DEF_ROT(4)

/* SHL/SHR/SAR of a register by CL, as h_shift computes them: a count
 * that is 0 once masked changes no flag (a 32-bit register is still
 * zero-extended). */
#define DEF_SHIFT_CL(S)                                                                       FOP(shl_rc##S)                                                                                {                                                                                             	unsigned n = (unsigned)cpu->gpr[EMU_RCX] & (S * 8 - 1), bits = S * 8;                 	uint64_t a = gpr_get(cpu, f->r0, S), r = (a << n) & msk(S);                           	gpr_put(cpu, f->r0, S, r);                                                            	if (n) {                                                                              		unsigned cf = (a >> (bits - n)) & 1, of = ((r >> (bits - 1)) & 1) != cf;      		emu_lf_record(c, EMU_LF_LOGIC_CO, r, cf | of << 1, r, S);                     	}                                                                                     	NEXT;                                                                                 }                                                                                             FOP(shr_rc##S)                                                                                {                                                                                             	unsigned n = (unsigned)cpu->gpr[EMU_RCX] & (S * 8 - 1), bits = S * 8;                 	uint64_t a = gpr_get(cpu, f->r0, S), r = a >> n;                                      	gpr_put(cpu, f->r0, S, r);                                                            	if (n) {                                                                              		unsigned cf = (a >> (n - 1)) & 1, of = (a >> (bits - 1)) & 1;                		emu_lf_record(c, EMU_LF_LOGIC_CO, r, cf | of << 1, r, S);                     	}                                                                                     	NEXT;                                                                                 }                                                                                             FOP(sar_rc##S)                                                                                {                                                                                             	unsigned n = (unsigned)cpu->gpr[EMU_RCX] & (S * 8 - 1);                               	int64_t sa = (int64_t)emu_sext(gpr_get(cpu, f->r0, S), S);                            	uint64_t r = (uint64_t)(sa >> n) & msk(S);                                            	gpr_put(cpu, f->r0, S, r);                                                            	if (n)                                                                                		emu_lf_record(c, EMU_LF_LOGIC_CO, r, (sa >> (n - 1)) & 1, r, S);              	NEXT;                                                                                 }
DEF_SHIFT_CL(8)
DEF_SHIFT_CL(4)

/* NOT and NEG of a register (NEG: flags as 0 - r). */
#define DEF_NOTNEG(S)                                                                         FOP(not_r##S)                                                                                 {                                                                                             	(void)c;                                                                              	gpr_put(cpu, f->r0, S, ~cpu->gpr[f->r0]);                                             	NEXT;                                                                                 }                                                                                             FOP(neg_r##S)                                                                                 {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), r = (0 - a) & msk(S);                            	gpr_put(cpu, f->r0, S, r);                                                            	emu_lf_record(c, EMU_LF_SUB, 0, a, r, S);                                             	NEXT;                                                                                 }
DEF_NOTNEG(8)
DEF_NOTNEG(4)

/* ADC and SBB with a register or an immediate: the carry in from the
 * flags as they are now, recorded as ADC/SBB when it is 1. */
#define DEF_ADCSBB(S)                                                                         FOP(adc_rr##S)                                                                                {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), b = gpr_get(cpu, f->r1, S);                      	unsigned cin = emu_cf_now(cpu, c);                                                    	uint64_t r = a + b + cin;                                                             	gpr_put(cpu, f->r0, S, r);                                                            	emu_lf_record(c, cin ? EMU_LF_ADC : EMU_LF_ADD, a, b, r, S);                          	NEXT;                                                                                 }                                                                                             FOP(adc_ri##S)                                                                                {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), b = f->imm & msk(S);                             	unsigned cin = emu_cf_now(cpu, c);                                                    	uint64_t r = a + b + cin;                                                             	gpr_put(cpu, f->r0, S, r);                                                            	emu_lf_record(c, cin ? EMU_LF_ADC : EMU_LF_ADD, a, b, r, S);                          	NEXT;                                                                                 }                                                                                             FOP(sbb_rr##S)                                                                                {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), b = gpr_get(cpu, f->r1, S);                      	unsigned cin = emu_cf_now(cpu, c);                                                    	uint64_t r = a - b - cin;                                                             	gpr_put(cpu, f->r0, S, r);                                                            	emu_lf_record(c, cin ? EMU_LF_SBB : EMU_LF_SUB, a, b, r, S);                          	NEXT;                                                                                 }                                                                                             FOP(sbb_ri##S)                                                                                {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), b = f->imm & msk(S);                             	unsigned cin = emu_cf_now(cpu, c);                                                    	uint64_t r = a - b - cin;                                                             	gpr_put(cpu, f->r0, S, r);                                                            	emu_lf_record(c, cin ? EMU_LF_SBB : EMU_LF_SUB, a, b, r, S);                          	NEXT;                                                                                 }
DEF_ADCSBB(8)
DEF_ADCSBB(4)

/* NOP in every form (a memory operand is not accessed), ENDBR64. */
FOP(nop)
{
	(void)c;
	NEXT;
}

/* IMUL r, r/m (f->imm = 0) and IMUL r, r/m, imm: the low half, CF = OF =
 * the signed product does not fit. */
static inline void imul_common(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
			       uint64_t a, uint64_t b, unsigned s)
{
	uint64_t r;
	bool ovf;
	if (s == 8) {
		int64_t p;
		ovf = __builtin_mul_overflow((int64_t)a, (int64_t)b, &p);
		r = (uint64_t)p;
	} else {
		int64_t p = (int64_t)(int32_t)a * (int64_t)(int32_t)b;
		ovf = p != (int64_t)(int32_t)p;
		r = (uint32_t)p;
	}
	gpr_put(cpu, f->r0, s, r);
	emu_lf_record(c, EMU_LF_LOGIC_CO, r, ovf ? 3 : 0, r, s);
}

#define DEF_IMUL(S)                                                                           \
FOP(imul_rr##S##_nf)                                                                          \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, cpu->gpr[f->r0] * cpu->gpr[f->r1]);                            \
	NEXT;                                                                                 \
}                                                                                             \
FOP(imul_rri##S##_nf)                                                                         \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, cpu->gpr[f->r1] * f->imm);                                     \
	NEXT;                                                                                 \
}                                                                                             \
FOP(imul_rr##S)                                                                               \
{                                                                                             \
	imul_common(cpu, c, f, cpu->gpr[f->r0], cpu->gpr[f->r1], S);                          \
	NEXT;                                                                                 \
}                                                                                             \
FOP(imul_rri##S)                                                                              \
{                                                                                             \
	imul_common(cpu, c, f, cpu->gpr[f->r1], f->imm, S);                                   \
	NEXT;                                                                                 \
}                                                                                             \
DEF_IMUL_M(S, , f_lin(cpu, c, f))                                                             \
DEF_IMUL_M(S, _b, lin_b(cpu, f))
#define DEF_IMUL_M(S, SUF, LIN)                                                               \
FOP(imul_rm##S##SUF)                                                                          \
{                                                                                             \
	RD(p, LIN, S);                                                                        \
	imul_common(cpu, c, f, cpu->gpr[f->r0], load(p, S), S);                               \
	NEXT;                                                                                 \
}
DEF_IMUL(8)
DEF_IMUL(4)

FOP(push_r)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	store(p, 8, cpu->gpr[f->r0]);
	cpu->gpr[EMU_RSP] = sp;
	NEXT;
}

FOP(push_i)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	store(p, 8, f->imm);
	cpu->gpr[EMU_RSP] = sp;
	NEXT;
}

FOP(pop_r)
{
	uint64_t sp = cpu->gpr[EMU_RSP];
	RD(p, sp, 8);
	uint64_t v = load(p, 8);
	cpu->gpr[EMU_RSP] = sp + 8;
	cpu->gpr[f->r0] = v;
	NEXT;
}

/* PUSHFQ: the flags as h_pushf pushes them (exact: it looks at them all;
 * VM and RF read as 0). */
FOP(pushf)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	emu_flags_sync(cpu);
	store(p, 8, emu_dbg_rflags_image(cpu) & ~(RFLAGS_VM | RFLAGS_RF));
	cpu->gpr[EMU_RSP] = sp;
	NEXT;
}

/* --- atomics, conversions, strings --------------------------------------------- */

/* CMPXCHG / XADD / XCHG m, r (f->r1): one host atomic operation on the
 * naturally aligned operand, so that they stay atomic against the host
 * threads of other vCPUs, as the exact way makes them (emu_exec.c
 * exec_locked), LOCK or not (XCHG with memory always is); a misaligned one
 * takes the exact way. The accumulator (CMPXCHG) or the register (XADD,
 * XCHG) as the SDM says, the flags of CMP RAX, m (CMPXCHG) or of the
 * addition (XADD). */
#define ALIGNED_WR(p, S)                                                                      \
	uint64_t p##_a = f_lin(cpu, c, f);                                                    \
	if (__builtin_expect((S) > 1 && (p##_a & ((S) - 1)), 0))                              \
		return f_miss(cpu, c, f);                                                     \
	WR(p, p##_a, S)

#define DEF_ATOMIC(S, T)                                                                      \
FOP(cmpxchg_m##S)                                                                             \
{                                                                                             \
	ALIGNED_WR(p, S);                                                                     \
	T acc = (T)cpu->gpr[EMU_RAX], old = acc;                                              \
	if (!__atomic_compare_exchange_n((T *)p, &old, (T)cpu->gpr[f->r1], false,             \
					 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))                 \
		gpr_put(cpu, EMU_RAX, S, old);                                                \
	emu_lf_record(c, EMU_LF_SUB, acc, old, (uint64_t)acc - old, S);                       \
	NEXT;                                                                                 \
}                                                                                             \
FOP(xadd_m##S)                                                                                \
{                                                                                             \
	ALIGNED_WR(p, S);                                                                     \
	T b = (T)cpu->gpr[f->r1];                                                             \
	T a = __atomic_fetch_add((T *)p, b, __ATOMIC_SEQ_CST);                                \
	gpr_put(cpu, f->r1, S, a);                                                            \
	emu_lf_record(c, EMU_LF_ADD, a, b, (uint64_t)a + b, S);                               \
	NEXT;                                                                                 \
}                                                                                             \
FOP(xchg_m##S)                                                                                \
{                                                                                             \
	ALIGNED_WR(p, S);                                                                     \
	gpr_put(cpu, f->r1, S, __atomic_exchange_n((T *)p, (T)cpu->gpr[f->r1], __ATOMIC_SEQ_CST)); \
	NEXT;                                                                                 \
}
DEF_ATOMIC(8, uint64_t)
DEF_ATOMIC(4, uint32_t)
DEF_ATOMIC(2, uint16_t)
DEF_ATOMIC(1, uint8_t)

/* CMPXCHG8B / CMPXCHG16B m: EDX:EAX / RDX:RAX against the operand, ECX:EBX
 * / RCX:RBX stored when equal, else loaded (the operand naturally aligned:
 * one host compare-and-swap, as exec_locked; else the exact way, with its
 * #GP for a misaligned CMPXCHG16B); only ZF changes */
static inline void cas_done(struct emu_cpu *cpu, bool ok, uint64_t lo, uint64_t hi, unsigned half)
{
	emu_flags_sync(cpu);
	if (ok) {
		cpu->rflags |= RFLAGS_ZF;
		return;
	}
	gpr_put(cpu, EMU_RAX, half, lo);
	gpr_put(cpu, EMU_RDX, half, hi);
	cpu->rflags &= ~RFLAGS_ZF;
}

FOP(cmpxchg8b_m)
{
	ALIGNED_WR(p, 8);
	uint64_t old = (uint32_t)cpu->gpr[EMU_RAX] | cpu->gpr[EMU_RDX] << 32;
	uint64_t new = (uint32_t)cpu->gpr[EMU_RBX] | cpu->gpr[EMU_RCX] << 32;
	bool ok = __atomic_compare_exchange_n((uint64_t *)p, &old, new, false, __ATOMIC_SEQ_CST,
					      __ATOMIC_SEQ_CST);
	cas_done(cpu, ok, (uint32_t)old, old >> 32, 4);
	NEXT;
}

FOP(cmpxchg16b_m)
{
	ALIGNED_WR(p, 16);
	uint64_t lo = cpu->gpr[EMU_RAX], hi = cpu->gpr[EMU_RDX];
	bool ok = emu_cas16(p, &lo, &hi, cpu->gpr[EMU_RBX], cpu->gpr[EMU_RCX]);
	cas_done(cpu, ok, lo, hi, 8);
	NEXT;
}

/* XCHG r, r; BSWAP r */
#define DEF_SWAP(S)                                                                           \
FOP(xchg_rr##S)                                                                               \
{                                                                                             \
	(void)c;                                                                              \
	uint64_t a = cpu->gpr[f->r0], b = cpu->gpr[f->r1];                                    \
	gpr_put(cpu, f->r0, S, b);                                                            \
	gpr_put(cpu, f->r1, S, a);                                                            \
	NEXT;                                                                                 \
}
DEF_SWAP(8)
DEF_SWAP(4)

FOP(bswap_r8)
{
	(void)c;
	cpu->gpr[f->r0] = __builtin_bswap64(cpu->gpr[f->r0]);
	NEXT;
}

FOP(bswap_r4)
{
	(void)c;
	cpu->gpr[f->r0] = __builtin_bswap32((uint32_t)cpu->gpr[f->r0]);
	NEXT;
}

/* CBW/CWDE/CDQE: the lower half of the accumulator sign-extended into all
 * of it; CWD/CDQ/CQO: its sign into RDX (f->imm: the operand size) */
FOP(cbw_a)
{
	(void)c;
	unsigned s = (unsigned)f->imm;
	gpr_put(cpu, EMU_RAX, s, emu_sext(cpu->gpr[EMU_RAX] & msk(s / 2), s / 2));
	NEXT;
}

FOP(cwd_a)
{
	(void)c;
	unsigned s = (unsigned)f->imm;
	gpr_put(cpu, EMU_RDX, s, (cpu->gpr[EMU_RAX] >> (s * 8 - 1)) & 1 ? ~0ull : 0);
	NEXT;
}

/* SETcc m8 */
FOP(setcc_m)
{
	WR(p, f_lin(cpu, c, f), 1);
	store(p, 1, emu_cond_now(cpu, c, (unsigned)f->imm));
	NEXT;
}

/* LEAVE (64-bit): RSP = RBP, then POP RBP */
FOP(leave)
{
	uint64_t bp = cpu->gpr[EMU_RBP];
	RD(p, bp, 8);
	uint64_t v = load(p, 8);
	cpu->gpr[EMU_RSP] = bp + 8;
	cpu->gpr[EMU_RBP] = v;
	NEXT;
}

/* MOV r, Sreg: the selector, zero-extended into a 32- or 64-bit register
 * (f->imm: the size), as mov_sreg */
FOP(mov_r_sreg)
{
	(void)c;
	gpr_put(cpu, f->r0, (unsigned)f->imm, emu_segreg(cpu, f->r1)->selector);
	NEXT;
}

/* CLI where IOPL allows it (else the exact way's #GP, or VIF) */
FOP(cli)
{
	if (__builtin_expect(c->cpl > ((cpu->rflags & RFLAGS_IOPL_MASK) >> 12), 0))
		return f_miss(cpu, c, f);
	cpu->rflags &= ~RFLAGS_IF;
	NEXT;
}

/* STI where IOPL allows it (else the exact way's #GP). Its interrupt
 * shadow is the block's: the instruction after it runs next, and the
 * block ends there (emu_fast.c's is_sti). */
FOP(sti)
{
	if (__builtin_expect(c->cpl > ((cpu->rflags & RFLAGS_IOPL_MASK) >> 12), 0))
		return exact_way(cpu, c, f, EMU_STAT_MISS);
	cpu->rflags |= RFLAGS_IF;
	/* an interrupt already waiting is deliverable now: the links after
	 * the shadow look at due alone */
	if (!may_go_on(cpu, c))
		__atomic_store_n(&cpu->due, true, __ATOMIC_RELAXED);
	NEXT;
}

/* RDTSC, RDTSCP (f->imm): time is the retired count (sync_at); CR4.TSD
 * outside ring 0 is the exact way's #GP */
FOP(rdtsc)
{
	if (__builtin_expect((cpu->sregs.cr4 & CR4_TSD) && c->cpl != 0, 0))
		return f_miss(cpu, c, f);
	sync_at(cpu, c, f);
	uint64_t t = emu_tsc(cpu);
	cpu->gpr[EMU_RAX] = (uint32_t)t;
	cpu->gpr[EMU_RDX] = t >> 32;
	if (f->imm)
		cpu->gpr[EMU_RCX] = (uint32_t)cpu->msr_tsc_aux;
	NEXT;
}

/* REP MOVS / REP STOS, forward, 64-bit addresses: a page at a time as
 * emu_exec_str.c does them (emu_rep_bulk), up to what is left of the
 * batch, without leaving the block when they are all done; what is left
 * (an iteration that is not RAM in one page, more than the batch, a
 * watched page) the exact handler does within the same batch
 * (emu_core.rep_batch), which ends the block (FOP_MEMW). A store into code
 * counts as it does after any exact store (stored). */
FOP(rep_str)
{
	const struct emu_insn *in = insn_of(cpu, f);
	unsigned size = in->osize ? in->osize : 1, done = 0;
	unsigned left = EMU_REP_BATCH - c->rep_batch;
	if (__builtin_expect(c->dbg_armed, 0))
		return exact_way(cpu, c, f, EMU_STAT_MISS);
	sync_at(cpu, c, f);                /* emu_rep_bulk may fault */
	while (cpu->gpr[EMU_RCX] && done < left) {
		uint64_t dst = cpu->gpr[EMU_RDI];
		unsigned n = emu_rep_bulk(cpu, in, left - done);
		if (!n)
			break;
		stored(c, dst, n * size);
		done += n;
	}
	if (cpu->gpr[EMU_RCX]) {
		c->rep_batch += done;      /* the exact handler goes on with this batch */
		return exact_way(cpu, c, f, EMU_STAT_MISS);
	}
	c->rep_batch = 0;
	if (c->blk_break)
		return stop(c, f, FS_JUMP);
	NEXT;
}

/* --- SSE on XMM registers -------------------------------------------------------- */

/* The integer and logic instructions the guests use most, and the moves,
 * as the exact handlers (emu_exec_sse*.c) do them: the operation is the
 * host's own instruction on the operand values (emu_sse.h), a 16-byte memory
 * operand must be aligned. Anything else than a plain case takes the exact
 * way (f_miss), which raises what is due: #UD/#NM when the SSE state is
 * off (CR0.EM, CR0.TS, CR4.OSFXSR), #GP for a misaligned operand. */

static inline bool sse_ready(const struct emu_cpu *cpu)
{
	return !(cpu->sregs.cr0 & (CR0_EM | CR0_TS)) && (cpu->sregs.cr4 & CR4_OSFXSR);
}

static inline uint8_t *xmm(struct emu_cpu *cpu, unsigned r)
{
	return cpu->fpu.xmm[r];
}

/* The SSE state must be on, else the exact way (#UD, #NM) ... */
#define SSE_ON()                                                                              \
	if (__builtin_expect(!sse_ready(cpu), 0))                                             \
		return f_miss(cpu, c, f)
/* ... and, for a memory operand of s bytes (p: its host address; a write
 * when w), aligned to 16 when `aligned` (else the exact way's #GP). */
#define SSE_MEM(p, s, aligned, w)                                                             \
	uint64_t p##_at = f_lin(cpu, c, f);                                                   \
	if (__builtin_expect(!sse_ready(cpu) || ((aligned) && (p##_at & 15)), 0))             \
		return f_miss(cpu, c, f);                                                     \
	ACCESS(p, p##_at, s, w)

/* xmm r0 = r0 OP xmm r1 (OP: the emu_sse_host_fn in f->imm) */
FOP(sse_rr)
{
	SSE_ON();
	((emu_sse_host_fn)(uintptr_t)f->imm)(xmm(cpu, f->r0), xmm(cpu, f->r1));
	NEXT;
}

/* xmm r0 = r0 OP m128 */
FOP(sse_rm)
{
	SSE_MEM(p, 16, true, 0);
	((emu_sse_host_fn)(uintptr_t)f->imm)(xmm(cpu, f->r0), p);
	NEXT;
}

/* xmm r0 = r0 shifted by the count r1 (an immediate: as an XMM count) */
FOP(sse_ri)
{
	SSE_ON();
	uint8_t count[16] = { f->r1 };
	((emu_sse_host_fn)(uintptr_t)f->imm)(xmm(cpu, f->r0), count);
	NEXT;
}

/* PSHUFD xmm r0, s, imm (f->imm) */
static inline void pshufd(uint8_t *d, const uint8_t *s, unsigned ctl)
{
	uint8_t r[16];
	for (unsigned i = 0; i < 4; i++)
		memcpy(r + 4 * i, s + 4 * ((ctl >> (2 * i)) & 3), 4);
	memcpy(d, r, 16);
}

FOP(pshufd_rr)
{
	SSE_ON();
	pshufd(xmm(cpu, f->r0), xmm(cpu, f->r1), (unsigned)f->imm);
	NEXT;
}

FOP(pshufd_rm)
{
	SSE_MEM(p, 16, true, 0);
	pshufd(xmm(cpu, f->r0), p, (unsigned)f->imm);
	NEXT;
}

/* MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD: xmm r0 = xmm r1 */
FOP(movx_rr)
{
	SSE_ON();
	memcpy(xmm(cpu, f->r0), xmm(cpu, f->r1), 16);
	NEXT;
}

/* ... xmm r0 = m128 and m128 = xmm r1: aligned (the A forms) or not (the U
 * forms) */
#define DEF_MOVX_MEM(SUF, ALIGNED)                                                            \
FOP(movx_load##SUF)                                                                           \
{                                                                                             \
	SSE_MEM(p, 16, ALIGNED, 0);                                                           \
	memcpy(xmm(cpu, f->r0), p, 16);                                                       \
	NEXT;                                                                                 \
}                                                                                             \
FOP(movx_store##SUF)                                                                          \
{                                                                                             \
	SSE_MEM(p, 16, ALIGNED, 1);                                                           \
	memcpy(p, xmm(cpu, f->r1), 16);                                                       \
	NEXT;                                                                                 \
}
DEF_MOVX_MEM(_a, true)
DEF_MOVX_MEM(_u, false)

/* MOVD/MOVQ/MOVSD xmm r0 = m32/m64 zero-extended; m32/m64 = the low bytes
 * of xmm r1 */
#define DEF_MOVX_LOW(S)                                                                       \
FOP(movx_loadz##S)                                                                            \
{                                                                                             \
	SSE_MEM(p, S, false, 0);                                                              \
	uint64_t lo = load(p, S), hi = 0;                                                     \
	memcpy(xmm(cpu, f->r0), &lo, 8);                                                      \
	memcpy(xmm(cpu, f->r0) + 8, &hi, 8);                                                  \
	NEXT;                                                                                 \
}                                                                                             \
FOP(movx_store##S)                                                                            \
{                                                                                             \
	SSE_MEM(p, S, false, 1);                                                              \
	uint64_t v;                                                                           \
	memcpy(&v, xmm(cpu, f->r1), 8);                                                       \
	store(p, S, v);                                                                       \
	NEXT;                                                                                 \
}
DEF_MOVX_LOW(4)
DEF_MOVX_LOW(8)

/* MOVD/MOVQ xmm r0 = GPR r1 zero-extended (f->imm: 4 or 8 bytes) */
FOP(movx_from_gpr)
{
	SSE_ON();
	uint64_t lo = cpu->gpr[f->r1] & msk((unsigned)f->imm), hi = 0;
	memcpy(xmm(cpu, f->r0), &lo, 8);
	memcpy(xmm(cpu, f->r0) + 8, &hi, 8);
	NEXT;
}

/* MOVD/MOVQ GPR r0 = the low 4 or 8 (f->imm) bytes of xmm r1; PMOVMSKB
 * GPR r0 = the top bit of each byte of xmm r1 */
FOP(movx_to_gpr)
{
	SSE_ON();
	uint64_t v;
	memcpy(&v, xmm(cpu, f->r1), 8);
	cpu->gpr[f->r0] = v & msk((unsigned)f->imm);
	NEXT;
}

FOP(pmovmskb_r)
{
	SSE_ON();
	const uint8_t *x = xmm(cpu, f->r1);
	uint64_t m = 0;
	for (unsigned i = 0; i < 16; i++)
		m |= (uint64_t)(x[i] >> 7) << i;
	cpu->gpr[f->r0] = m;
	NEXT;
}

/* Leaving the block at f for rip, the target of an indirect JMP or CALL:
 * on at once into the block the table has there, on chain()'s terms (no
 * link: f's operand fields are where a link would be). */
static inline unsigned chain_find(struct emu_cpu *cpu, struct emu_core *c,
				  const struct emu_fop *f, uint64_t rip, uint64_t ret)
{
	uint64_t gpa = link_gpa(c, rip);
	const struct emu_block *b = NULL;
	if (c->chain_left == 0 || !may_go_on(cpu, c) || !(b = block_find(c, gpa)) ||
	    c->budget_end - ret < b->n) {
		cpu->rip = rip;
		return stop(c, f, FS_JUMP);
	}
	return enter(cpu, c, b, rip, ret);
}

/* JMP r64 / m64, CALL r64 / m64 */
FOP(jmp_r)
{
	return chain_find(cpu, c, f, cpu->gpr[f->r0], c->blk_ret + f->idx + 1);
}

FOP(jmp_m)
{
	RD(p, f_lin(cpu, c, f), 8);
	return chain_find(cpu, c, f, load(p, 8), c->blk_ret + f->idx + 1);
}

FOP(call_r)
{
	uint64_t to = cpu->gpr[f->r0], sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	store(p, 8, c->blk_rip + f->end);
	cpu->gpr[EMU_RSP] = sp;
	return chain_find(cpu, c, f, to, c->blk_ret + f->idx + 1);
}

FOP(call_m)
{
	RD(t, f_lin(cpu, c, f), 8);
	uint64_t to = load(t, 8), sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	store(p, 8, c->blk_rip + f->end);
	cpu->gpr[EMU_RSP] = sp;
	return chain_find(cpu, c, f, to, c->blk_ret + f->idx + 1);
}

/* Branches: f->imm is the target's offset from the block start. */
FOP(jmp_rel)
{
	return chain(cpu, c, f, c->blk_rip + f->imm, c->blk_ret + f->idx + 1, FS_JUMP);
}

/* One handler per condition, so the condition folds into it. */
/* A Jcc back to the start of its own block (a tight loop) runs the block
 * again without leaving it while the budget has room for all of it and
 * the run loop would have nothing to do between (may_go_on): the same
 * instructions retire in the same order as by leaving and entering. */
static __attribute__((noinline)) unsigned loop_slow(struct emu_cpu *cpu, struct emu_core *c,
						    const struct emu_fop *f)
{
	uint64_t ret = c->blk_ret + f->idx + 1;
	if (c->budget_end - ret < c->blk->n || !may_go_on(cpu, c)) {
		cpu->rip = c->blk_rip;
		return stop(c, f, FS_JUMP);
	}
	c->blk_ret = ret;
	return f[-f->idx].fn(cpu, c, f - f->idx);
}

/* The taken back edge: again at once when nothing can be due (no call
 * here, so the handler needs no stack frame), else loop_slow decides. */
static inline unsigned loop_again(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	uint64_t ret = c->blk_ret + f->idx + 1;
	if (__builtin_expect(c->budget_end - ret < c->blk->n || !may_go_on(cpu, c), 0))
		return loop_slow(cpu, c, f);
	c->blk_ret = ret;
	return f[-f->idx].fn(cpu, c, f - f->idx);
}

#define DEF_JCC(CC)                                                                           \
FOP(jcc_##CC)                                                                                 \
{                                                                                             \
	if (!emu_cond_now(cpu, c, CC))                                                        \
		NEXT;                                                                         \
	return chain(cpu, c, f, c->blk_rip + f->imm, c->blk_ret + f->idx + 1, FS_JUMP);       \
}                                                                                             \
FOP(jloop_##CC)                                                                               \
{                                                                                             \
	if (!emu_cond_now(cpu, c, CC))                                                        \
		NEXT;                                                                         \
	return loop_again(cpu, c, f);                                                         \
}
DEF_JCC(0) DEF_JCC(1) DEF_JCC(2) DEF_JCC(3) DEF_JCC(4) DEF_JCC(5) DEF_JCC(6) DEF_JCC(7)
DEF_JCC(8) DEF_JCC(9) DEF_JCC(10) DEF_JCC(11) DEF_JCC(12) DEF_JCC(13) DEF_JCC(14) DEF_JCC(15)

static const fop_fn jcc_fn[16] = {
	jcc_0, jcc_1, jcc_2, jcc_3, jcc_4, jcc_5, jcc_6, jcc_7,
	jcc_8, jcc_9, jcc_10, jcc_11, jcc_12, jcc_13, jcc_14, jcc_15,
};

static const fop_fn jloop_fn[16] = {
	jloop_0, jloop_1, jloop_2, jloop_3, jloop_4, jloop_5, jloop_6, jloop_7,
	jloop_8, jloop_9, jloop_10, jloop_11, jloop_12, jloop_13, jloop_14, jloop_15,
};

/* CMP or TEST of registers (or a register and an immediate) and the Jcc
 * right after it, in one handler (fuse_branches): the condition straight
 * from the operands, the flags recorded as the CMP/TEST would, then the
 * Jcc's way (f + 1: its target, link and retired count) or on past it. */
static inline __attribute__((always_inline)) bool fused_cond(unsigned op, uint64_t a,
							     uint64_t b, uint64_t r,
							     unsigned s, unsigned cc)
{
	unsigned top = s * 8 - 1;
	bool v, sf = (r >> top) & 1, pf = !__builtin_parity((unsigned)(r & 0xff));
	bool zf = (r & msk(s)) == 0;
	if (op == A_CMP) {
		switch (cc >> 1) {
		case 0: v = (((a ^ b) & (a ^ r)) >> top) & 1; break;
		case 1: v = a < b; break;
		case 2: v = a == b; break;
		case 3: v = a <= b; break;
		case 4: v = sf; break;
		case 5: v = pf; break;
		case 6: v = (int64_t)emu_sext(a, s) < (int64_t)emu_sext(b, s); break;
		default: v = (int64_t)emu_sext(a, s) <= (int64_t)emu_sext(b, s); break;
		}
	} else {                           /* TEST: CF = OF = 0 */
		switch (cc >> 1) {
		case 0: case 1: v = false; break;
		case 2: case 3: v = zf; break;
		case 4: case 6: v = sf; break;
		case 5: v = pf; break;
		default: v = zf || sf; break;
		}
	}
	return (cc & 1) ? !v : v;
}

#define FUSED_BODY(OP, S, CC, B, TAKEN)                                                       {                                                                                             	uint64_t a = gpr_get(cpu, f->r0, S), b = (B), r;                                      	alu(c, OP, a, b, &r, S, true);                                                        	if (!fused_cond(OP, a, b, r, S, CC))                                                  		return f[2].fn(cpu, c, f + 2);                                                	TAKEN;                                                                                }
#define JCC_TAKEN chain(cpu, c, f + 1, c->blk_rip + f[1].imm, c->blk_ret + f[1].idx + 1, FS_JUMP)
#define DEF_FUSED_CC(NAME, OP, S, CC)                                                         FOP(NAME##_rr##S##_j##CC) FUSED_BODY(OP, S, CC, gpr_get(cpu, f->r1, S), return JCC_TAKEN)     FOP(NAME##_ri##S##_j##CC) FUSED_BODY(OP, S, CC, f->imm & msk(S), return JCC_TAKEN)            FOP(NAME##_rr##S##_l##CC) FUSED_BODY(OP, S, CC, gpr_get(cpu, f->r1, S),                      				      return loop_again(cpu, c, f + 1))                       FOP(NAME##_ri##S##_l##CC) FUSED_BODY(OP, S, CC, f->imm & msk(S), return loop_again(cpu, c, f + 1))
#define DEF_FUSED_S(NAME, OP, S)                                                              	DEF_FUSED_CC(NAME, OP, S, 0) DEF_FUSED_CC(NAME, OP, S, 1) DEF_FUSED_CC(NAME, OP, S, 2) 	DEF_FUSED_CC(NAME, OP, S, 3) DEF_FUSED_CC(NAME, OP, S, 4) DEF_FUSED_CC(NAME, OP, S, 5) 	DEF_FUSED_CC(NAME, OP, S, 6) DEF_FUSED_CC(NAME, OP, S, 7) DEF_FUSED_CC(NAME, OP, S, 8) 	DEF_FUSED_CC(NAME, OP, S, 9) DEF_FUSED_CC(NAME, OP, S, 10)                             	DEF_FUSED_CC(NAME, OP, S, 11) DEF_FUSED_CC(NAME, OP, S, 12)                            	DEF_FUSED_CC(NAME, OP, S, 13) DEF_FUSED_CC(NAME, OP, S, 14)                            	DEF_FUSED_CC(NAME, OP, S, 15)
DEF_FUSED_S(cmp, A_CMP, 8) DEF_FUSED_S(cmp, A_CMP, 4) DEF_FUSED_S(cmp, A_CMP, 1)
DEF_FUSED_S(test, A_TEST, 8) DEF_FUSED_S(test, A_TEST, 4) DEF_FUSED_S(test, A_TEST, 1)

#define FUSED_CC(NAME, F, S, J)                                                               	{ NAME##_##F##S##_##J##0, NAME##_##F##S##_##J##1, NAME##_##F##S##_##J##2,             	  NAME##_##F##S##_##J##3, NAME##_##F##S##_##J##4, NAME##_##F##S##_##J##5,             	  NAME##_##F##S##_##J##6, NAME##_##F##S##_##J##7, NAME##_##F##S##_##J##8,             	  NAME##_##F##S##_##J##9, NAME##_##F##S##_##J##10, NAME##_##F##S##_##J##11,           	  NAME##_##F##S##_##J##12, NAME##_##F##S##_##J##13, NAME##_##F##S##_##J##14,          	  NAME##_##F##S##_##J##15 }
#define FUSED_FORM(NAME, F, S)                                                                	{ NAME##_##F##S, { FUSED_CC(NAME, F, S, j), FUSED_CC(NAME, F, S, l) } }
/* The compare handlers that fuse, and their fused forms [Jcc / back to
 * the block start][condition]. */
static const struct { fop_fn cmp; fop_fn fused[2][16]; } fused_forms[] = {
	FUSED_FORM(cmp, rr, 8), FUSED_FORM(cmp, ri, 8), FUSED_FORM(cmp, rr, 4),
	FUSED_FORM(cmp, ri, 4), FUSED_FORM(cmp, rr, 1), FUSED_FORM(cmp, ri, 1),
	FUSED_FORM(test, rr, 8), FUSED_FORM(test, ri, 8), FUSED_FORM(test, rr, 4),
	FUSED_FORM(test, ri, 4), FUSED_FORM(test, rr, 1), FUSED_FORM(test, ri, 1),
};

FOP(call_rel)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	WR(p, sp, 8);
	store(p, 8, c->blk_rip + f->end);
	cpu->gpr[EMU_RSP] = sp;
	return chain(cpu, c, f, c->blk_rip + f->imm, c->blk_ret + f->idx + 1, FS_JUMP);
}

FOP(ret_near)
{
	uint64_t sp = cpu->gpr[EMU_RSP];
	RD(p, sp, 8);
	uint64_t v = load(p, 8);
	cpu->gpr[EMU_RSP] = sp + 8;
	return chain(cpu, c, f, v, c->blk_ret + f->idx + 1, FS_JUMP);
}

/* Handlers with a memory operand and their forms for base + displacement
 * addressing (no index, no FS/GS base, not RIP-relative). */
#define P(NAME) { NAME, NAME##_b }
static const struct { fop_fn any, b; } base_forms[] = {
	P(add_rm8), P(add_rm4), P(add_rm2), P(add_rm1), P(add_mr8), P(add_mr4), P(add_mr2),
	P(add_mr1), P(add_mi8), P(add_mi4), P(add_mi2), P(add_mi1), P(sub_rm8), P(sub_rm4),
	P(sub_rm2), P(sub_rm1), P(sub_mr8), P(sub_mr4), P(sub_mr2), P(sub_mr1), P(sub_mi8),
	P(sub_mi4), P(sub_mi2), P(sub_mi1), P(cmp_rm8), P(cmp_rm4), P(cmp_rm2), P(cmp_rm1),
	P(cmp_mr8), P(cmp_mr4), P(cmp_mr2), P(cmp_mr1), P(cmp_mi8), P(cmp_mi4), P(cmp_mi2),
	P(cmp_mi1), P(and_rm8), P(and_rm4), P(and_rm2), P(and_rm1), P(and_mr8), P(and_mr4),
	P(and_mr2), P(and_mr1), P(and_mi8), P(and_mi4), P(and_mi2), P(and_mi1), P(or_rm8),
	P(or_rm4), P(or_rm2), P(or_rm1), P(or_mr8), P(or_mr4), P(or_mr2), P(or_mr1), P(or_mi8),
	P(or_mi4), P(or_mi2), P(or_mi1), P(xor_rm8), P(xor_rm4), P(xor_rm2), P(xor_rm1),
	P(xor_mr8), P(xor_mr4), P(xor_mr2), P(xor_mr1), P(xor_mi8), P(xor_mi4), P(xor_mi2),
	P(xor_mi1), P(test_rm8), P(test_rm4), P(test_rm2), P(test_rm1), P(test_mr8),
	P(test_mr4), P(test_mr2), P(test_mr1), P(test_mi8), P(test_mi4), P(test_mi2),
	P(test_mi1), P(mov_rm8), P(mov_rm4), P(mov_rm2), P(mov_rm1), P(mov_mr8), P(mov_mr4),
	P(mov_mr2), P(mov_mr1), P(mov_mi8), P(mov_mi4), P(mov_mi2), P(mov_mi1), P(movzx_rm8_1),
	P(movzx_rm8_2), P(movzx_rm8_4), P(movzx_rm4_1), P(movzx_rm4_2), P(movzx_rm4_4),
	P(movsx_rm8_1), P(movsx_rm8_2), P(movsx_rm8_4), P(movsx_rm4_1), P(movsx_rm4_2),
	P(movsx_rm4_4), P(cmov_rm8), P(cmov_rm4), P(imul_rm8), P(imul_rm4),
};
#undef P

static fop_fn base_form(struct emu_blocks *bs, fop_fn fn, const struct emu_fop *f)
{
	if (f->base >= 16 || f->index != EMU_NOREG || f->seg >= EMU_FS)
		return fn;
	struct fop_base_memo *m = &bs->base_memo[((uintptr_t)fn >> 4) % FOP_MEMO];
	if (m->fn == fn)
		return m->b;
	m->fn = fn;
	m->b = fn;
	for (unsigned i = 0; i < sizeof(base_forms) / sizeof(base_forms[0]); i++)
		if (base_forms[i].any == fn)
			m->b = base_forms[i].b;
	return m->b;
}

/* Flags nobody sees. A handler that sets all six arithmetic flags from
 * registers alone (flag_forms) has a form that leaves them alone, used
 * where a later one of the same kind sets them all again before anything
 * could look: an instruction that reads flags, one that may take the exact
 * way (a memory access: a fault or a device must see exact flags; f_exact)
 * or leave the block, and the block's end all count as looking. Only moves
 * (neutral) look at nothing. */
#define P(NAME) { NAME, NAME##_nf }
static const struct { fop_fn any, nf; } flag_forms[] = {
	P(add_rr8), P(add_rr4), P(add_rr2), P(add_rr1), P(add_ri8), P(add_ri4), P(add_ri2),
	P(add_ri1), P(sub_rr8), P(sub_rr4), P(sub_rr2), P(sub_rr1), P(sub_ri8), P(sub_ri4),
	P(sub_ri2), P(sub_ri1), P(cmp_rr8), P(cmp_rr4), P(cmp_rr2), P(cmp_rr1), P(cmp_ri8),
	P(cmp_ri4), P(cmp_ri2), P(cmp_ri1), P(and_rr8), P(and_rr4), P(and_rr2), P(and_rr1),
	P(and_ri8), P(and_ri4), P(and_ri2), P(and_ri1), P(or_rr8), P(or_rr4), P(or_rr2),
	P(or_rr1), P(or_ri8), P(or_ri4), P(or_ri2), P(or_ri1), P(xor_rr8), P(xor_rr4),
	P(xor_rr2), P(xor_rr1), P(xor_ri8), P(xor_ri4), P(xor_ri2), P(xor_ri1), P(test_rr8),
	P(test_rr4), P(test_rr2), P(test_rr1), P(test_ri8), P(test_ri4), P(test_ri2),
	P(test_ri1), P(shl_ri8), P(shl_ri4), P(shl_ri2), P(shl_ri1), P(shr_ri8), P(shr_ri4),
	P(shr_ri2), P(shr_ri1), P(sar_ri8), P(sar_ri4), P(sar_ri2), P(sar_ri1),
	P(imul_rr8), P(imul_rr4), P(imul_rri8), P(imul_rri4),
};
#undef P

static const fop_fn neutral_fns[] = {
	nop, not_r8, not_r4, mov_rr8, mov_rr4, mov_rr2, mov_rr1, mov_ri8, mov_ri4, mov_ri2, mov_ri1, lea_r8, lea_r4,
	movzx_rr8_1, movzx_rr8_2, movzx_rr8_4, movzx_rr4_1, movzx_rr4_2, movzx_rr4_4,
	movsx_rr8_1, movsx_rr8_2, movsx_rr8_4, movsx_rr4_1, movsx_rr4_2, movsx_rr4_4,
	xchg_rr8, xchg_rr4, bswap_r8, bswap_r4, cbw_a, cwd_a, mov_r_sreg,
};

/* fn's entry of flag_forms / neutral_fns, through bs's memo. */
static const struct fop_flags_memo *flags_kind(struct emu_blocks *bs, fop_fn fn)
{
	struct fop_flags_memo *m = &bs->flags_memo[((uintptr_t)fn >> 4) % FOP_MEMO];
	if (m->fn == fn)
		return m;
	m->fn = fn;
	m->nf = NULL;
	m->kind = FLAGS_LOOKS;
	for (unsigned k = 0; k < sizeof(flag_forms) / sizeof(flag_forms[0]); k++) {
		if (flag_forms[k].any == fn) {
			m->kind = FLAGS_SETS;
			m->nf = flag_forms[k].nf;
			return m;
		}
	}
	for (unsigned k = 0; k < sizeof(neutral_fns) / sizeof(neutral_fns[0]); k++)
		if (neutral_fns[k] == fn)
			m->kind = FLAGS_NEUTRAL;
	return m;
}

static void drop_dead_flags(struct emu_blocks *bs, struct emu_fop *op, unsigned nops)
{
	bool live = true;                  /* after the block: the run loop looks */
	for (int i = (int)nops - 1; i >= 0; i--) {
		struct emu_fop *f = &op[i];
		const struct fop_flags_memo *m = flags_kind(bs, f->fn);
		if (m->kind == FLAGS_SETS) {
			if (!live)
				f->fn = m->nf;
			live = false;
		} else if (m->kind == FLAGS_LOOKS) {
			live = true;
		}
	}
}

/* Jcc (not JrCXZ or LOOP): a handler per condition (jcc_fn). Conditional
 * branches do not end a block: when taken, RIP is not where the next
 * instruction of the block begins and the block is left there. */
static bool is_jcc(const struct emu_insn *in)
{
	return (x86_mnemonic(in->mnemonic)->attrs & X86_MN_JCC) && in->nops == 1 &&
	       in->op[0].kind == EMU_OP_IMM;
}

bool emu_sse_insn(const struct emu_insn *in)
{
	const struct x86_mnemonic *m = x86_mnemonic(in->mnemonic);
	if (m->attrs || m->kind != X86_INSN_OTHER || in->mnemonic == ZYDIS_MNEMONIC_MASKMOVDQU)
		return false;
	for (unsigned i = 0; i < in->nops; i++)
		if (in->op[i].kind == EMU_OP_REG && in->op[i].rclass == EMU_RC_XMM)
			return true;
	return false;
}

/* MOVS, STOS, LODS, CMPS, SCAS (not the SSE2 MOVSD/CMPSD), REP or not. */
static bool is_string(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_MOVSD: case ZYDIS_MNEMONIC_CMPSD:
		return in->opmap == ZYDIS_OPCODE_MAP_DEFAULT;
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSQ:
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_STOSQ: case ZYDIS_MNEMONIC_LODSB: case ZYDIS_MNEMONIC_LODSW:
	case ZYDIS_MNEMONIC_LODSD: case ZYDIS_MNEMONIC_LODSQ: case ZYDIS_MNEMONIC_CMPSB:
	case ZYDIS_MNEMONIC_CMPSW: case ZYDIS_MNEMONIC_CMPSQ: case ZYDIS_MNEMONIC_SCASB:
	case ZYDIS_MNEMONIC_SCASW: case ZYDIS_MNEMONIC_SCASD: case ZYDIS_MNEMONIC_SCASQ:
		return true;
	default:
		return false;
	}
}

/* Hints that do nothing here (PAUSE, the prefetches, the fences,
 * SERIALIZE: emu runs in order, and a block ends after it, so what follows
 * is fetched anew). */
static bool is_hint(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PAUSE: case ZYDIS_MNEMONIC_LFENCE: case ZYDIS_MNEMONIC_MFENCE:
	case ZYDIS_MNEMONIC_SERIALIZE:
	case ZYDIS_MNEMONIC_SFENCE: case ZYDIS_MNEMONIC_PREFETCH: case ZYDIS_MNEMONIC_PREFETCHNTA:
	case ZYDIS_MNEMONIC_PREFETCHT0: case ZYDIS_MNEMONIC_PREFETCHT1:
	case ZYDIS_MNEMONIC_PREFETCHT2: case ZYDIS_MNEMONIC_PREFETCHW:
		return true;
	default:
		return false;
	}
}

bool emu_fast_also_plain(const struct emu_insn *in)
{
	if (is_string(in) || is_hint(in))
		return true;
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PUSHFQ: case ZYDIS_MNEMONIC_CLI: case ZYDIS_MNEMONIC_RDTSC:
	case ZYDIS_MNEMONIC_RDTSCP:
		return true;
	default:
		return false;
	}
}

static bool writes_memory(const struct emu_insn *in)
{
	if ((x86_mnemonic(in->mnemonic)->attrs & X86_MN_PUSHES) || is_string(in) ||
	    in->mnemonic == ZYDIS_MNEMONIC_PUSHFQ)
		return true;
	if (emu_sse_insn(in))
		return in->nops && in->op[0].kind == EMU_OP_MEM;
	for (unsigned i = 0; i < in->nops; i++)
		if (in->op[i].kind == EMU_OP_MEM)
			return true;
	return false;
}

static bool gpr_op(const struct emu_operand *o, unsigned s)
{
	return o->kind == EMU_OP_REG && o->rclass == EMU_RC_GPR && o->size == s;
}

/* The displacement as f_lin adds it: RIP-relative ones count from the
 * block start (f->end is set); false when it does not fit (moffs). */
static bool set_disp(struct emu_fop *f, const struct emu_operand *o)
{
	int64_t d = o->val + (o->reg == EMU_RIPREL ? f->end : 0);
	if (d != (int32_t)d)
		return false;
	f->disp = (int32_t)d;
	return true;
}

static bool mem_op(const struct emu_insn *in, const struct emu_operand *o, struct emu_fop *f,
		   unsigned s)
{
	if (o->kind != EMU_OP_MEM || o->size != s || in->asize != 8)
		return false;
	if (o->seg != EMU_DS && o->seg != EMU_SS && o->seg != EMU_ES && o->seg != EMU_CS &&
	    o->seg != EMU_FS && o->seg != EMU_GS)
		return false;
	f->base = o->reg;
	f->index = o->index;
	f->shift = (uint8_t)__builtin_ctz(o->scale ? o->scale : 1);
	f->seg = o->seg;
	return set_disp(f, o);
}

/* The form of a two-operand instruction of size s: 0 rr, 1 ri, 2 rm,
 * 3 mr, 4 mi, -1 none of them. Fills f's operand fields. */
static int form_of(const struct emu_insn *in, struct emu_fop *f, unsigned s)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (in->nops != 2)
		return -1;
	if (gpr_op(a, s)) {
		f->r0 = a->reg;
		if (gpr_op(b, s)) {
			f->r1 = b->reg;
			return 0;
		}
		if (b->kind == EMU_OP_IMM) {
			f->imm = (uint64_t)b->val;
			return 1;
		}
		return mem_op(in, b, f, s) ? 2 : -1;
	}
	if (!mem_op(in, a, f, s))
		return -1;
	if (gpr_op(b, s)) {
		f->r1 = b->reg;
		return 3;
	}
	if (b->kind == EMU_OP_IMM) {
		f->imm = (uint64_t)b->val;
		return 4;
	}
	return -1;
}

/* f stores s bytes (f_miss looks at the store): at f_lin, or below RSP. */
static void wmem(struct emu_fop *f, unsigned s, bool stack)
{
	f->flags |= (uint8_t)(FOP_WMEM | (stack ? FOP_WSTK : 0) |
			      (__builtin_ctz(s) << FOP_WSHIFT));
}

static fop_fn pick_alu(const struct emu_insn *in, struct emu_fop *f)
{
	static const fop_fn hi_fn[] = { add_hi, sub_hi, cmp_hi, and_hi, or_hi, xor_hi, test_hi };
	for (unsigned i = 0; i < sizeof(alu_table) / sizeof(alu_table[0]); i++) {
		if (alu_table[i].mnemonic != in->mnemonic)
			continue;
		if (in->nops == 2 && in->op[0].kind == EMU_OP_REG &&
		    in->op[0].rclass == EMU_RC_GPR8H && in->op[1].kind == EMU_OP_IMM) {
			f->r0 = in->op[0].reg;
			f->imm = (uint64_t)in->op[1].val;
			return hi_fn[i];               /* alu_table is in enum A_* order */
		}
		for (unsigned k = 0; k < 4; k++) {
			int form = form_of(in, f, form_size[k]);
			if (form >= 3 && in->mnemonic != ZYDIS_MNEMONIC_CMP &&
			    in->mnemonic != ZYDIS_MNEMONIC_TEST)
				wmem(f, form_size[k], false);
			if (form >= 0)
				return alu_table[i].fn[form][k];
		}
	}
	return NULL;
}

/* [size 8 / 4 / 2 / 1][form] */
static const fop_fn mov_fn[4][5] = {
	{ mov_rr8, mov_ri8, mov_rm8, mov_mr8, mov_mi8 },
	{ mov_rr4, mov_ri4, mov_rm4, mov_mr4, mov_mi4 },
	{ mov_rr2, mov_ri2, mov_rm2, mov_mr2, mov_mi2 },
	{ mov_rr1, mov_ri1, mov_rm1, mov_mr1, mov_mi1 },
};

static fop_fn pick_mov(const struct emu_insn *in, struct emu_fop *f)
{
	for (unsigned k = 0; k < 4; k++) {
		int form = form_of(in, f, form_size[k]);
		if (form >= 3)
			wmem(f, form_size[k], false);
		if (form >= 0)
			return mov_fn[k][form];
	}
	return NULL;
}

static fop_fn pick_cmov(const struct emu_insn *in, struct emu_fop *f)
{
	for (unsigned k = 0; k < 2; k++) {
		int form = form_of(in, f, k == 0 ? 8 : 4);
		f->imm = in->opcode & 0xf;
		if (form == 0)
			return k == 0 ? cmov_rr8 : cmov_rr4;
		if (form == 2)
			return k == 0 ? cmov_rm8 : cmov_rm4;
	}
	return NULL;
}

/* MOVZX/MOVSX/MOVSXD r64/r32, r/m8/16/32 (not AH-DH). */
static fop_fn pick_ext(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (in->nops != 2 || !(gpr_op(a, 8) || gpr_op(a, 4)))
		return NULL;
	unsigned si = b->size == 1 ? 0 : b->size == 2 ? 1 : b->size == 4 ? 2 : 3;
	if (si == 3)
		return NULL;
	unsigned zx = in->mnemonic == ZYDIS_MNEMONIC_MOVZX ? 0 : 1;
	if (zx == 0 && b->kind == EMU_OP_REG && b->rclass == EMU_RC_GPR8H) {
		f->r0 = a->reg;
		f->r1 = b->reg;
		return movzx_h;
	}
	unsigned di = a->size == 8 ? 0 : 1;
	f->r0 = a->reg;
	if (b->kind == EMU_OP_REG && b->rclass == EMU_RC_GPR) {
		f->r1 = b->reg;
		return ext_fn[zx][0][di][si];
	}
	if (mem_op(in, b, f, b->size))
		return ext_fn[zx][1][di][si];
	return NULL;
}

/* SHL/SHR/SAR/ROL/ROR r, imm (or 1) with a count that is not 0 once
 * masked (SHL/SHR/SAR of 16 and 8 bits also: below their width);
 * SHL/SHR/SAR r, CL. */
/* [SHL / SHR / SAR][size 8 / 4 / 2 / 1], by an immediate */
static const fop_fn shift_fn[3][4] = {
	{ shl_ri8, shl_ri4, shl_ri2, shl_ri1 },
	{ shr_ri8, shr_ri4, shr_ri2, shr_ri1 },
	{ sar_ri8, sar_ri4, sar_ri2, sar_ri1 },
};

static fop_fn pick_shift(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (in->nops < 1 || in->nops > 2 || a->kind != EMU_OP_REG || a->rclass != EMU_RC_GPR)
		return NULL;
	unsigned s = a->size, k = s == 8 ? 0 : s == 4 ? 1 : s == 2 ? 2 : 3;
	unsigned op = in->mnemonic == ZYDIS_MNEMONIC_SHL ? 0 : in->mnemonic == ZYDIS_MNEMONIC_SHR ? 1
		    : in->mnemonic == ZYDIS_MNEMONIC_SAR ? 2 : 3;
	f->r0 = a->reg;
	if (in->nops == 2 && gpr_op(b, 1) && b->reg == EMU_RCX) {
		static const fop_fn cl_fn[3][2] = {
			{ shl_rc8, shl_rc4 }, { shr_rc8, shr_rc4 }, { sar_rc8, sar_rc4 },
		};
		return op < 3 && k < 2 ? cl_fn[op][k] : NULL;
	}
	if (in->nops == 2 && b->kind != EMU_OP_IMM)
		return NULL;
	uint64_t count = in->nops == 2 ? (uint64_t)b->val : 1;
	unsigned n = (unsigned)(count & (s == 8 ? 63 : 31));
	if (n == 0 || n >= s * 8)
		return NULL;
	f->imm = n;
	if (op < 3)
		return shift_fn[op][k];
	if (k >= 2)
		return NULL;
	if (in->mnemonic == ZYDIS_MNEMONIC_ROL)
		return k == 0 ? rol_ri8 : rol_ri4;
	return in->mnemonic == ZYDIS_MNEMONIC_ROR ? (k == 0 ? ror_ri8 : ror_ri4) : NULL;
}

/* IMUL r64/r32, r/m [, imm]. */
static fop_fn pick_imul(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (!(gpr_op(a, 8) || gpr_op(a, 4)))
		return NULL;
	bool s8 = a->size == 8;
	f->r0 = a->reg;
	if (in->nops == 3 && gpr_op(b, a->size) && in->op[2].kind == EMU_OP_IMM) {
		f->r1 = b->reg;
		f->imm = emu_sext((uint64_t)in->op[2].val, in->op[2].size ? in->op[2].size : 8);
		return s8 ? imul_rri8 : imul_rri4;
	}
	if (in->nops != 2)
		return NULL;
	if (gpr_op(b, a->size)) {
		f->r1 = b->reg;
		return s8 ? imul_rr8 : imul_rr4;
	}
	if (mem_op(in, b, f, a->size))
		return s8 ? imul_rm8 : imul_rm4;
	return NULL;
}

static const struct { uint16_t mnemonic; emu_sse_host_fn fn; } sse_binops[] = {
	{ ZYDIS_MNEMONIC_PXOR, emu_sse_host_pxor }, { ZYDIS_MNEMONIC_XORPS, emu_sse_host_pxor },
	{ ZYDIS_MNEMONIC_XORPD, emu_sse_host_pxor }, { ZYDIS_MNEMONIC_POR, emu_sse_host_por },
	{ ZYDIS_MNEMONIC_ORPS, emu_sse_host_por }, { ZYDIS_MNEMONIC_ORPD, emu_sse_host_por },
	{ ZYDIS_MNEMONIC_PAND, emu_sse_host_pand }, { ZYDIS_MNEMONIC_ANDPS, emu_sse_host_pand },
	{ ZYDIS_MNEMONIC_ANDPD, emu_sse_host_pand }, { ZYDIS_MNEMONIC_PANDN, emu_sse_host_pandn },
	{ ZYDIS_MNEMONIC_ANDNPS, emu_sse_host_pandn }, { ZYDIS_MNEMONIC_ANDNPD, emu_sse_host_pandn },
	{ ZYDIS_MNEMONIC_PCMPEQB, emu_sse_host_pcmpeqb }, { ZYDIS_MNEMONIC_PCMPEQW, emu_sse_host_pcmpeqw },
	{ ZYDIS_MNEMONIC_PCMPEQD, emu_sse_host_pcmpeqd },
	{ ZYDIS_MNEMONIC_PADDB, emu_sse_host_paddb }, { ZYDIS_MNEMONIC_PADDW, emu_sse_host_paddw },
	{ ZYDIS_MNEMONIC_PADDD, emu_sse_host_paddd }, { ZYDIS_MNEMONIC_PADDQ, emu_sse_host_paddq },
	{ ZYDIS_MNEMONIC_PSUBB, emu_sse_host_psubb }, { ZYDIS_MNEMONIC_PSUBW, emu_sse_host_psubw },
	{ ZYDIS_MNEMONIC_PSUBD, emu_sse_host_psubd }, { ZYDIS_MNEMONIC_PSUBQ, emu_sse_host_psubq },
	{ ZYDIS_MNEMONIC_PUNPCKLBW, emu_sse_host_punpcklbw }, { ZYDIS_MNEMONIC_PUNPCKLWD, emu_sse_host_punpcklwd },
	{ ZYDIS_MNEMONIC_PUNPCKLDQ, emu_sse_host_punpckldq }, { ZYDIS_MNEMONIC_PUNPCKLQDQ, emu_sse_host_punpcklqdq },
	{ ZYDIS_MNEMONIC_PUNPCKHBW, emu_sse_host_punpckhbw }, { ZYDIS_MNEMONIC_PUNPCKHWD, emu_sse_host_punpckhwd },
	{ ZYDIS_MNEMONIC_PUNPCKHDQ, emu_sse_host_punpckhdq }, { ZYDIS_MNEMONIC_PUNPCKHQDQ, emu_sse_host_punpckhqdq },
	{ ZYDIS_MNEMONIC_PSLLW, emu_sse_host_psllw }, { ZYDIS_MNEMONIC_PSLLD, emu_sse_host_pslld },
	{ ZYDIS_MNEMONIC_PSLLQ, emu_sse_host_psllq }, { ZYDIS_MNEMONIC_PSRLW, emu_sse_host_psrlw },
	{ ZYDIS_MNEMONIC_PSRLD, emu_sse_host_psrld }, { ZYDIS_MNEMONIC_PSRLQ, emu_sse_host_psrlq },
	{ ZYDIS_MNEMONIC_PSRAW, emu_sse_host_psraw }, { ZYDIS_MNEMONIC_PSRAD, emu_sse_host_psrad },
};

static bool xmm_op(const struct emu_operand *o)
{
	return o->kind == EMU_OP_REG && o->rclass == EMU_RC_XMM;
}

static bool is_sse_shift(unsigned m)
{
	return m == ZYDIS_MNEMONIC_PSLLW || m == ZYDIS_MNEMONIC_PSLLD || m == ZYDIS_MNEMONIC_PSLLQ ||
	       m == ZYDIS_MNEMONIC_PSRLW || m == ZYDIS_MNEMONIC_PSRLD || m == ZYDIS_MNEMONIC_PSRLQ ||
	       m == ZYDIS_MNEMONIC_PSRAW || m == ZYDIS_MNEMONIC_PSRAD;
}

/* The 128-bit operation of an SSE instruction xmm, xmm/m128 (or a shift
 * by an immediate), or NULL. */
static emu_sse_host_fn sse_binop(const struct emu_insn *in)
{
	/* the exact handler needs an SSE4.2 host (emu_exec_sse4.c) */
	if (in->mnemonic == ZYDIS_MNEMONIC_PSHUFB)
		return __builtin_cpu_supports("sse4.2") ? emu_sse_host_pshufb : NULL;
	for (unsigned i = 0; i < sizeof(sse_binops) / sizeof(sse_binops[0]); i++)
		if (sse_binops[i].mnemonic == in->mnemonic)
			return sse_binops[i].fn;
	return NULL;
}

static bool is_move128(unsigned m, bool *aligned)
{
	*aligned = m == ZYDIS_MNEMONIC_MOVDQA || m == ZYDIS_MNEMONIC_MOVAPS ||
		   m == ZYDIS_MNEMONIC_MOVAPD;
	return *aligned || m == ZYDIS_MNEMONIC_MOVDQU || m == ZYDIS_MNEMONIC_MOVUPS ||
	       m == ZYDIS_MNEMONIC_MOVUPD;
}

/* MOVD/MOVQ (4, 8 bytes) and MOVSD between XMM and memory or a GPR. */
static fop_fn pick_sse_move(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	unsigned m = in->mnemonic;
	unsigned s = m == ZYDIS_MNEMONIC_MOVD ? 4 : 8;
	bool movsd = m == ZYDIS_MNEMONIC_MOVSD;
	if (!movsd && m != ZYDIS_MNEMONIC_MOVD && m != ZYDIS_MNEMONIC_MOVQ)
		return NULL;
	if (xmm_op(a) && mem_op(in, b, f, s)) {
		f->r0 = a->reg & 15;
		return s == 4 ? movx_loadz4 : movx_loadz8;
	}
	if (xmm_op(b) && mem_op(in, a, f, s)) {
		f->r1 = b->reg & 15;
		wmem(f, s, false);
		return s == 4 ? movx_store4 : movx_store8;
	}
	if (movsd)
		return NULL;
	f->imm = s;
	if (xmm_op(a) && gpr_op(b, s)) {
		f->r0 = a->reg & 15;
		f->r1 = b->reg;
		return movx_from_gpr;
	}
	if (gpr_op(a, s) && xmm_op(b)) {
		f->r0 = a->reg;
		f->r1 = b->reg & 15;
		return movx_to_gpr;
	}
	return NULL;
}

/* The SSE instructions (emu_sse_insn) with a handler here. */
static fop_fn pick_sse(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	bool aligned;
	if (in->nops < 2)
		return NULL;
	if (in->nops == 2 && xmm_op(a)) {
		emu_sse_host_fn fn = sse_binop(in);
		f->r0 = a->reg & 15;
		if (fn) {
			f->imm = (uint64_t)(uintptr_t)fn;
			if (xmm_op(b)) {
				f->r1 = b->reg & 15;
				return sse_rr;
			}
			if (b->kind == EMU_OP_IMM && is_sse_shift(in->mnemonic)) {
				f->r1 = (uint8_t)b->val;
				return sse_ri;
			}
			return mem_op(in, b, f, 16) ? sse_rm : NULL;
		}
		if (is_move128(in->mnemonic, &aligned)) {
			if (xmm_op(b)) {
				f->r1 = b->reg & 15;
				return movx_rr;
			}
			if (mem_op(in, b, f, 16))
				return aligned ? movx_load_a : movx_load_u;
			return NULL;
		}
	}
	if (in->nops == 2 && xmm_op(b) && is_move128(in->mnemonic, &aligned) &&
	    mem_op(in, a, f, 16)) {
		f->r1 = b->reg & 15;
		wmem(f, 16, false);
		return aligned ? movx_store_a : movx_store_u;
	}
	if (in->mnemonic == ZYDIS_MNEMONIC_PSHUFD && in->nops == 3 && xmm_op(a) &&
	    in->op[2].kind == EMU_OP_IMM) {
		f->r0 = a->reg & 15;
		f->imm = (uint8_t)in->op[2].val;
		if (xmm_op(b)) {
			f->r1 = b->reg & 15;
			return pshufd_rr;
		}
		return mem_op(in, b, f, 16) ? pshufd_rm : NULL;
	}
	if (in->mnemonic == ZYDIS_MNEMONIC_PMOVMSKB && in->nops == 2 && xmm_op(b) &&
	    (gpr_op(a, 4) || gpr_op(a, 8))) {
		f->r0 = a->reg;
		f->r1 = b->reg & 15;
		return pmovmskb_r;
	}
	return in->nops == 2 ? pick_sse_move(in, f) : NULL;
}

/* INC/DEC m */
static fop_fn pick_incdec_m(const struct emu_insn *in, struct emu_fop *f)
{
	static const fop_fn fns[2][4] = { { inc_m8, inc_m4, inc_m2, inc_m1 },
					  { dec_m8, dec_m4, dec_m2, dec_m1 } };
	for (unsigned k = 0; k < 4; k++) {
		if (mem_op(in, &in->op[0], f, form_size[k])) {
			wmem(f, form_size[k], false);
			return fns[in->mnemonic == ZYDIS_MNEMONIC_DEC][k];
		}
	}
	return NULL;
}

/* BT/BTS/BTR/BTC r/m, imm (by a register: the exact way, whose offset
 * reaches beyond a memory operand) */
static fop_fn pick_bt(const struct emu_insn *in, struct emu_fop *f)
{
	static const fop_fn fns[4][2][3] = {
		{ { bt_ri8, bt_ri4, bt_ri2 }, { bt_mi8, bt_mi4, bt_mi2 } },
		{ { bts_ri8, bts_ri4, bts_ri2 }, { bts_mi8, bts_mi4, bts_mi2 } },
		{ { btr_ri8, btr_ri4, btr_ri2 }, { btr_mi8, btr_mi4, btr_mi2 } },
		{ { btc_ri8, btc_ri4, btc_ri2 }, { btc_mi8, btc_mi4, btc_mi2 } },
	};
	unsigned m = in->mnemonic;
	unsigned op = m == ZYDIS_MNEMONIC_BTS ? BT_SET : m == ZYDIS_MNEMONIC_BTR ? BT_RESET :
		      m == ZYDIS_MNEMONIC_BTC ? BT_COMPLEMENT : BT_TEST;
	static const fop_fn by_reg[4][2][3] = {
		{ { bt_rr8, bt_rr4, bt_rr2 }, { bt_mr8, bt_mr4, bt_mr2 } },
		{ { bts_rr8, bts_rr4, bts_rr2 }, { bts_mr8, bts_mr4, bts_mr2 } },
		{ { btr_rr8, btr_rr4, btr_rr2 }, { btr_mr8, btr_mr4, btr_mr2 } },
		{ { btc_rr8, btc_rr4, btc_rr2 }, { btc_mr8, btc_mr4, btc_mr2 } },
	};
	if (in->nops != 2)
		return NULL;
	if (in->op[1].kind != EMU_OP_IMM) {
		for (unsigned k = 0; k < 3; k++) {
			unsigned s = form_size[k];
			if (!gpr_op(&in->op[1], s))
				continue;
			f->r1 = in->op[1].reg;
			if (gpr_op(&in->op[0], s)) {
				f->r0 = in->op[0].reg;
				return by_reg[op][0][k];
			}
			if (!mem_op(in, &in->op[0], f, s))
				return NULL;
			if (op != BT_TEST)
				f->flags |= FOP_MEMW;      /* see DEF_BT_R */
			return by_reg[op][1][k];
		}
		return NULL;
	}
	for (unsigned k = 0; k < 3; k++) {
		unsigned s = form_size[k];
		f->imm = (uint64_t)in->op[1].val & (s * 8 - 1);
		if (gpr_op(&in->op[0], s)) {
			f->r0 = in->op[0].reg;
			return fns[op][0][k];
		}
		if (mem_op(in, &in->op[0], f, s)) {
			if (op != BT_TEST)
				wmem(f, s, false);
			return fns[op][1][k];
		}
	}
	return NULL;
}

/* CMPXCHG/XADD m, r; XCHG m, r / r, m / r, r (not AH-DH) */
static fop_fn pick_atomic(const struct emu_insn *in, struct emu_fop *f)
{
	static const fop_fn fns[3][4] = {
		{ cmpxchg_m8, cmpxchg_m4, cmpxchg_m2, cmpxchg_m1 },
		{ xadd_m8, xadd_m4, xadd_m2, xadd_m1 },
		{ xchg_m8, xchg_m4, xchg_m2, xchg_m1 },
	};
	unsigned op = in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG ? 0 :
		      in->mnemonic == ZYDIS_MNEMONIC_XADD ? 1 : 2;
	for (unsigned k = 0; k < 4; k++) {
		int form = form_of(in, f, form_size[k]);
		if (op == 2 && form == 0 && k < 2 && !(in->flags & EMU_I_LOCK))
			return k == 0 ? xchg_rr8 : xchg_rr4;
		if (op == 2 && form == 2) {
			f->r1 = f->r0;             /* XCHG r, m: the same as m, r */
			form = 3;
		}
		if (form == 3) {
			wmem(f, form_size[k], false);
			return fns[op][k];
		}
	}
	return NULL;
}

/* REP MOVS/STOS with 64-bit addresses (the others: the exact way) */
static fop_fn pick_rep(const struct emu_insn *in, struct emu_fop *f)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_MOVSQ: case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW:
	case ZYDIS_MNEMONIC_STOSD: case ZYDIS_MNEMONIC_STOSQ:
		if (!(in->flags & EMU_I_REP) || in->asize != 8)
			return NULL;
		f->flags |= FOP_MEMW;              /* its exact way may store into code */
		return rep_str;
	default:
		return NULL;
	}
}

/* JMP/CALL r64 or m64 */
static fop_fn pick_indirect(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0];
	bool call = in->mnemonic == ZYDIS_MNEMONIC_CALL;
	if (gpr_op(a, 8)) {
		f->r0 = a->reg;
		if (call)
			wmem(f, 8, true);
		return call ? call_r : jmp_r;
	}
	if (!mem_op(in, a, f, 8))
		return NULL;
	if (call)
		wmem(f, 8, true);
	return call ? call_m : jmp_m;
}

/* The handler of op r, r/m (64 or 32 bits) among fns[k][form]: k 0 for
 * 8 bytes, 1 for 4; form 0 register, 1 memory. NULL: another form. */
static fop_fn pick_r_rm(const struct emu_insn *in, struct emu_fop *f, const fop_fn fns[2][2])
{
	for (unsigned k = 0; k < 2; k++) {
		int form = form_of(in, f, form_size[k]);
		if (form == 0)
			return fns[k][0];
		if (form == 2)
			return fns[k][1];
	}
	return NULL;
}

/* The specialised handler, or NULL (then f_exact). */
static fop_fn pick(const struct emu_insn *in, struct emu_fop *f)
{
	const struct emu_operand *a = &in->op[0];
	unsigned attrs = x86_mnemonic(in->mnemonic)->attrs;
	if (attrs & X86_MN_CMOVCC)
		return pick_cmov(in, f);
	if (attrs & X86_MN_SETCC) {
		f->imm = in->opcode & 0xf;
		if (in->nops == 1 && mem_op(in, a, f, 1)) {
			wmem(f, 1, false);
			return setcc_m;
		}
		if (in->nops != 1 || !gpr_op(a, 1))
			return NULL;
		f->r0 = a->reg;
		return setcc_r;
	}
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_MOVZX: case ZYDIS_MNEMONIC_MOVSX: case ZYDIS_MNEMONIC_MOVSXD:
		return pick_ext(in, f);
	case ZYDIS_MNEMONIC_SHL: case ZYDIS_MNEMONIC_SHR: case ZYDIS_MNEMONIC_SAR:
	case ZYDIS_MNEMONIC_ROL: case ZYDIS_MNEMONIC_ROR:
		return pick_shift(in, f);
	case ZYDIS_MNEMONIC_IMUL:
		return pick_imul(in, f);
	case ZYDIS_MNEMONIC_MOV:
		if (in->nops == 2 && a->kind == EMU_OP_REG && a->rclass == EMU_RC_GPR &&
		    in->op[1].kind == EMU_OP_REG && in->op[1].rclass == EMU_RC_SEG &&
		    in->op[1].reg <= EMU_GS) {
			f->r0 = a->reg;
			f->r1 = in->op[1].reg;
			f->imm = a->size;
			return mov_r_sreg;
		}
		return pick_mov(in, f);
	case ZYDIS_MNEMONIC_LEA:
		if (in->nops == 2 && (gpr_op(a, 8) || gpr_op(a, 4)) && in->asize == 8 &&
		    in->op[1].kind == EMU_OP_MEM) {
			f->r0 = a->reg;
			f->base = in->op[1].reg;
			f->index = in->op[1].index;
			f->shift = (uint8_t)__builtin_ctz(in->op[1].scale ? in->op[1].scale : 1);
			f->seg = EMU_DS;           /* LEA: no segment */
			if (!set_disp(f, &in->op[1]))
				return NULL;
			return a->size == 8 ? lea_r8 : lea_r4;
		}
		return NULL;
	case ZYDIS_MNEMONIC_NOP: case ZYDIS_MNEMONIC_ENDBR64:
		return nop;
	case ZYDIS_MNEMONIC_PUSHFQ:
		if (in->osize != 8)
			return NULL;
		wmem(f, 8, true);
		return pushf;
	case ZYDIS_MNEMONIC_NOT: case ZYDIS_MNEMONIC_NEG:
		if (in->nops == 1 && (gpr_op(a, 8) || gpr_op(a, 4))) {
			f->r0 = a->reg;
			bool not = in->mnemonic == ZYDIS_MNEMONIC_NOT;
			return a->size == 8 ? (not ? not_r8 : neg_r8) : (not ? not_r4 : neg_r4);
		}
		return NULL;
	case ZYDIS_MNEMONIC_ADC: case ZYDIS_MNEMONIC_SBB: {
		bool adc = in->mnemonic == ZYDIS_MNEMONIC_ADC;
		for (unsigned k = 0; k < 2; k++) {
			int form = form_of(in, f, k == 0 ? 8 : 4);
			if (form == 0)
				return k == 0 ? (adc ? adc_rr8 : sbb_rr8) : (adc ? adc_rr4 : sbb_rr4);
			if (form == 1)
				return k == 0 ? (adc ? adc_ri8 : sbb_ri8) : (adc ? adc_ri4 : sbb_ri4);
		}
		return NULL;
	}
	case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC:
		if (in->nops == 1 && (gpr_op(a, 8) || gpr_op(a, 4))) {
			f->r0 = a->reg;
			bool inc = in->mnemonic == ZYDIS_MNEMONIC_INC;
			return a->size == 8 ? (inc ? inc_r8 : dec_r8) : (inc ? inc_r4 : dec_r4);
		}
		return in->nops == 1 ? pick_incdec_m(in, f) : NULL;
	case ZYDIS_MNEMONIC_BT: case ZYDIS_MNEMONIC_BTS: case ZYDIS_MNEMONIC_BTR:
	case ZYDIS_MNEMONIC_BTC:
		return pick_bt(in, f);
	case ZYDIS_MNEMONIC_DIV:
		for (unsigned k = 0; k < 2 && in->nops == 1; k++) {
			unsigned s = form_size[k];
			if (gpr_op(a, s)) {
				f->r0 = a->reg;
				return s == 8 ? div_r8 : div_r4;
			}
			if (mem_op(in, a, f, s))
				return s == 8 ? div_m8 : div_m4;
		}
		return NULL;
	case ZYDIS_MNEMONIC_PUSH:
		if (in->osize != 8 || in->nops != 1)
			return NULL;
		if (gpr_op(a, 8)) {
			f->r0 = a->reg;
			wmem(f, 8, true);
			return push_r;
		}
		if (a->kind == EMU_OP_IMM) {
			f->imm = emu_sext((uint64_t)a->val, a->size ? a->size : 8);
			wmem(f, 8, true);
			return push_i;
		}
		return NULL;
	case ZYDIS_MNEMONIC_POP:
		if (in->osize == 8 && in->nops == 1 && gpr_op(a, 8)) {
			f->r0 = a->reg;
			return pop_r;
		}
		return NULL;
	case ZYDIS_MNEMONIC_JMP: case ZYDIS_MNEMONIC_CALL:
		if (in->osize != 8 || in->nops != 1)
			return NULL;
		if (a->kind != EMU_OP_IMM)
			return pick_indirect(in, f);
		f->imm = f->end + (uint64_t)a->val;
		if (in->mnemonic == ZYDIS_MNEMONIC_CALL)
			wmem(f, 8, true);
		return in->mnemonic == ZYDIS_MNEMONIC_JMP ? jmp_rel : call_rel;
	case ZYDIS_MNEMONIC_RET:
		return in->osize == 8 && in->nops == 0 ? ret_near : NULL;
	case ZYDIS_MNEMONIC_CMPXCHG: case ZYDIS_MNEMONIC_XADD: case ZYDIS_MNEMONIC_XCHG:
		return pick_atomic(in, f);
	case ZYDIS_MNEMONIC_BSWAP:
		if (in->nops == 1 && (gpr_op(a, 8) || gpr_op(a, 4))) {
			f->r0 = a->reg;
			return a->size == 8 ? bswap_r8 : bswap_r4;
		}
		return NULL;
	case ZYDIS_MNEMONIC_CBW: case ZYDIS_MNEMONIC_CWDE: case ZYDIS_MNEMONIC_CDQE:
	case ZYDIS_MNEMONIC_CWD: case ZYDIS_MNEMONIC_CDQ: case ZYDIS_MNEMONIC_CQO:
		f->imm = in->osize;
		return in->mnemonic == ZYDIS_MNEMONIC_CBW || in->mnemonic == ZYDIS_MNEMONIC_CWDE ||
		       in->mnemonic == ZYDIS_MNEMONIC_CDQE ? cbw_a : cwd_a;
	case ZYDIS_MNEMONIC_CLI:
		return cli;
	case ZYDIS_MNEMONIC_STI:
		return sti;
	case ZYDIS_MNEMONIC_CMPXCHG8B: case ZYDIS_MNEMONIC_CMPXCHG16B: {
		unsigned s = in->mnemonic == ZYDIS_MNEMONIC_CMPXCHG8B ? 8 : 16;
		if (in->nops != 1 || !mem_op(in, a, f, s))
			return NULL;
		wmem(f, s, false);
		return s == 8 ? cmpxchg8b_m : cmpxchg16b_m;
	}
	case ZYDIS_MNEMONIC_MUL:
		for (unsigned k = 0; k < 2 && in->nops == 1; k++) {
			unsigned s = form_size[k];
			if (gpr_op(a, s)) {
				f->r0 = a->reg;
				return s == 8 ? mul_r8 : mul_r4;
			}
			if (mem_op(in, a, f, s))
				return s == 8 ? mul_m8 : mul_m4;
		}
		return NULL;
	case ZYDIS_MNEMONIC_BSF: case ZYDIS_MNEMONIC_BSR: {
		static const fop_fn bitscan[2][2] = { { bitscan_r8, bitscan_m8 },
						      { bitscan_r4, bitscan_m4 } };
		f->imm = in->mnemonic == ZYDIS_MNEMONIC_BSR;
		return pick_r_rm(in, f, bitscan);
	}
	case ZYDIS_MNEMONIC_TZCNT: case ZYDIS_MNEMONIC_LZCNT: {
		static const fop_fn zcount[2][2] = { { zcount_r8, zcount_m8 },
						     { zcount_r4, zcount_m4 } };
		f->imm = in->mnemonic == ZYDIS_MNEMONIC_LZCNT;
		return pick_r_rm(in, f, zcount);
	}
	case ZYDIS_MNEMONIC_RDTSC: case ZYDIS_MNEMONIC_RDTSCP:
		f->imm = in->mnemonic == ZYDIS_MNEMONIC_RDTSCP;
		return rdtsc;
	case ZYDIS_MNEMONIC_LEAVE:
		return in->osize == 8 && in->asize == 8 ? leave : NULL;
	default:
		if (is_string(in))
			return pick_rep(in, f);
		if (emu_sse_insn(in))
			return pick_sse(in, f);
		if (is_hint(in))
			return nop;
		if (is_jcc(in)) {
			if (in->osize != 8)
				return NULL;
			f->imm = f->end + (uint64_t)a->val;
			return jcc_fn[in->opcode & 0xf];
		}
		return pick_alu(in, f);
	}
}

static bool is_jcc_fn(fop_fn fn)
{
	for (unsigned i = 0; i < 16; i++)
		if (fn == jcc_fn[i])
			return true;
	return false;
}

/* The handler of the plain instruction in at offset pos, index idx of
 * its block: a specialised one (with its operand fields), else f_exact. */
void emu_fop_build(struct emu_blocks *bs, const struct emu_insn *in, struct emu_fop *f,
		   unsigned idx, unsigned pos)
{
	memset(f, 0, sizeof(*f));
	f->idx = (uint8_t)idx;
	f->off = (uint16_t)pos;
	f->end = (uint16_t)(pos + in->len);
	f->fn = pick(in, f);
	if (!f->fn)
		f->fn = f_exact;
	if (f->fn == f_exact)
		f->flags = writes_memory(in) ? FOP_MEMW : 0;
	else if (f->fn == jmp_rel || f->fn == call_rel || f->fn == ret_near || is_jcc_fn(f->fn))
		f->flags |= FOP_LINK;
	if (is_jcc_fn(f->fn) && f->imm == 0)
		f->fn = jloop_fn[in->opcode & 0xf];        /* to its own start */
	f->fn = base_form(bs, f->fn, f);
}

void emu_fop_build_cross(struct emu_blocks *bs, const struct emu_insn *in, struct emu_fop *f,
			 unsigned idx, unsigned pos)
{
	emu_fop_build(bs, in, f, idx, pos);
	f[1].imm = (uint64_t)(uintptr_t)f->fn;
	f->fn = f_cross;
}

/* A CMP/TEST of registers followed by a Jcc: the fused handler in the
 * CMP/TEST's place (the Jcc's op stays, for its fields; nothing enters a
 * block there). */
static void fuse_branches(struct emu_fop *op, unsigned nops)
{
	for (unsigned i = 0; i + 1 < nops; i++) {
		unsigned k, n = sizeof(fused_forms) / sizeof(fused_forms[0]);
		for (k = 0; k < n && fused_forms[k].cmp != op[i].fn; k++)
			;
		if (k == n)
			continue;
		for (unsigned cc = 0; cc < 16; cc++) {
			if (op[i + 1].fn == jcc_fn[cc])
				op[i].fn = fused_forms[k].fused[0][cc];
			else if (op[i + 1].fn == jloop_fn[cc])
				op[i].fn = fused_forms[k].fused[1][cc];
		}
	}
}

void emu_fops_end(struct emu_fop *op, unsigned n, unsigned pos)
{
	struct emu_fop *e = &op[n];
	uint64_t cross = n && op[n - 1].fn == f_cross ? e->imm : 0;
	memset(e, 0, sizeof(*e));
	e->imm = cross;
	e->fn = f_end;
	e->flags = FOP_LINK;
	e->idx = (uint8_t)n;
	e->off = e->end = (uint16_t)pos;
}

/* After the last instruction: flags nobody sees dropped, compares fused
 * with their branches, the end marker at pos. */
void emu_fops_finish(struct emu_blocks *bs, struct emu_fop *op, unsigned n, unsigned pos)
{
	drop_dead_flags(bs, op, n);
	fuse_branches(op, n);
	emu_fops_end(op, n, pos);
}

unsigned emu_fop_cont(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	(void)cpu;
	(void)c;
	(void)f;
	return FS_CONT;
}

/* ADC/SBB, INC/DEC, NEG/NOT, shifts by CL and rotates on registers
 * (fi->size already 8; a shift's or rotate's form field is its alu). */
static void describe_rmw(fop_fn fn, struct fop_info *fi)
{
	static const struct { fop_fn fn8, fn4; uint8_t tmpl, form; } rmw[] = {
		{ adc_rr8, adc_rr4, T_ADC, FORM_RR }, { adc_ri8, adc_ri4, T_ADC, FORM_RI },
		{ sbb_rr8, sbb_rr4, T_SBB, FORM_RR }, { sbb_ri8, sbb_ri4, T_SBB, FORM_RI },
		{ inc_r8, inc_r4, T_INC, FORM_RR }, { dec_r8, dec_r4, T_DEC, FORM_RR },
		{ neg_r8, neg_r4, T_NEG, FORM_RR }, { not_r8, not_r4, T_NOT, FORM_RR },
		{ shl_rc8, shl_rc4, T_SHIFT_CL, 0 }, { shr_rc8, shr_rc4, T_SHIFT_CL, 1 },
		{ sar_rc8, sar_rc4, T_SHIFT_CL, 2 }, { rol_ri8, rol_ri4, T_ROT, 0 },
		{ ror_ri8, ror_ri4, T_ROT, 1 },
	};
	for (unsigned k = 0; k < sizeof(rmw) / sizeof(rmw[0]); k++) {
		if (fn == rmw[k].fn8 || fn == rmw[k].fn4) {
			fi->tmpl = rmw[k].tmpl;
			bool shift = rmw[k].tmpl == T_SHIFT_CL || rmw[k].tmpl == T_ROT;
			fi->form = shift ? FORM_RR : rmw[k].form;
			fi->alu = shift ? rmw[k].form : 0;
			fi->size = fn == rmw[k].fn8 ? 8 : 4;
			return;
		}
	}
}

/* What fn does, for a template (fi->tmpl), when it is one of the
 * operand forms emu_jit.c has templates for. */
static void describe(fop_fn fn, struct fop_info *fi)
{
	fi->flags = true;
	for (unsigned k = 0; k < sizeof(base_forms) / sizeof(base_forms[0]); k++)
		if (fn == base_forms[k].b)
			fn = base_forms[k].any;
	for (unsigned k = 0; k < sizeof(flag_forms) / sizeof(flag_forms[0]); k++) {
		if (fn == flag_forms[k].nf) {
			fn = flag_forms[k].any;
			fi->flags = false;
		}
	}
	for (unsigned form = 0; form < 5; form++) {
		for (unsigned k = 0; k < 4; k++) {
			fi->size = (uint8_t)form_size[k];
			fi->form = (uint8_t)form;
			if (fn == mov_fn[k][form]) {
				fi->tmpl = T_MOV;
				return;
			}
			for (unsigned i = 0; i < sizeof(alu_table) / sizeof(alu_table[0]); i++) {
				if (fn == alu_table[i].fn[form][k]) {
					fi->tmpl = T_ALU;
					fi->alu = (uint8_t)i;      /* alu_table is in enum A_* order */
					return;
				}
			}
		}
	}
	for (unsigned sx = 0; sx < 2; sx++)
		for (unsigned rm = 0; rm < 2; rm++)
			for (unsigned d = 0; d < 2; d++)
				for (unsigned ss = 0; ss < 3; ss++)
					if (fn == ext_fn[sx][rm][d][ss]) {
						fi->tmpl = sx ? T_MOVSX : T_MOVZX;
						fi->form = rm ? 2 : 0;
						fi->size = d ? 4 : 8;
						fi->ssize = (uint8_t)(1u << ss);
						return;
					}
	for (unsigned op = 0; op < 3; op++)
		for (unsigned k = 0; k < 4; k++)
			if (fn == shift_fn[op][k]) {
				fi->tmpl = T_SHIFT;
				fi->alu = (uint8_t)op;
				fi->size = (uint8_t)form_size[k];
				return;
			}
	fi->size = 8;
	if (fn == imul_rr8 || fn == imul_rr4 || fn == imul_rri8 || fn == imul_rri4) {
		fi->tmpl = T_IMUL;
		fi->size = fn == imul_rr8 || fn == imul_rri8 ? 8 : 4;
		fi->form = fn == imul_rr8 || fn == imul_rr4 ? FORM_RR : FORM_RI;
	} else if (fn == cmov_rr8 || fn == cmov_rr4) {
		fi->tmpl = T_CMOV;
		fi->size = fn == cmov_rr8 ? 8 : 4;
	} else if (fn == setcc_r) {
		fi->tmpl = T_SETCC;
		fi->size = 1;
	} else if (fn == lea_r8 || fn == lea_r4) {
		fi->tmpl = T_LEA;
		fi->size = fn == lea_r8 ? 8 : 4;
	} else if (fn == push_r) {
		fi->tmpl = T_PUSH;
	} else if (fn == pop_r) {
		fi->tmpl = T_POP;
	} else if (fn == nop) {
		fi->tmpl = T_NOP;
	}
	describe_rmw(fn, fi);
}

fop_fn emu_fop_jmp(void)
{
	return jmp_rel;
}

unsigned emu_fop_chain(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f,
		       uint64_t rip)
{
	return chain(cpu, c, f, rip, c->blk_ret + f->idx + 1, FS_JUMP);
}

bool emu_fop_exact(fop_fn fn)
{
	return fn == f_exact;
}

struct fop_info emu_fop_info(fop_fn fn)
{
	struct fop_info fi = { .kind = FK_CALL };
	if (fn == jmp_rel || fn == call_rel || fn == ret_near || fn == f_cross || fn == jmp_r ||
	    fn == jmp_m || fn == call_r || fn == call_m) {
		fi.kind = FK_EXIT;
		fi.tmpl = fn == jmp_rel ? T_JMP : fn == call_rel ? T_CALL : fn == ret_near ? T_RET
			: fn == f_cross ? T_CROSS : T_NONE;   /* through a register or memory: its handler */
		return fi;
	}
	for (unsigned cc = 0; cc < 16; cc++) {
		if (fn == jcc_fn[cc] || fn == jloop_fn[cc]) {
			fi.kind = FK_JCC;
			fi.cc = (uint8_t)cc;
			fi.loop = fn == jloop_fn[cc];
			return fi;
		}
	}
	for (unsigned k = 0; k < sizeof(fused_forms) / sizeof(fused_forms[0]); k++) {
		for (unsigned cc = 0; cc < 16; cc++) {
			if (fn == fused_forms[k].fused[0][cc] || fn == fused_forms[k].fused[1][cc]) {
				fi.kind = FK_FUSED;
				fi.cc = (uint8_t)cc;
				fi.plain = fused_forms[k].cmp;
				return fi;
			}
		}
	}
	describe(fn, &fi);
	return fi;
}
