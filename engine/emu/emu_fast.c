/* engine/emu/emu_fast.c — the core's fast path: blocks of decoded
 * instructions run back to back, with lazy flags and handlers specialised
 * by operand form. This file is the block cache (building, code
 * generations, validation, links between blocks, running them);
 * emu_fast_ops.c has the handlers, emu_fast.h what the two share.
 *
 * A block is a straight run of "plain" instructions (data movement,
 * arithmetic, stack, near branches: what only touches GPRs, arithmetic
 * flags, memory and RIP) inside one page, ending after an unconditional
 * branch, before the first instruction that is not plain, or at 32
 * instructions. The cache is VM-wide, keyed by the physical address of the
 * first byte (64-bit mode only), and keeps a copy of the block's bytes.
 *
 * Seeing every writer of code: a block is compared with the guest's bytes
 * the first time it is entered in a "generation" (emu_vm.code_gen), and
 * entered without comparing again while the generation lasts. A new one
 * begins at every entry into the fast path from the run loop (so whatever
 * wrote guest memory while the fast path was not running — the debugger's
 * int3 bytes and Z0, devices on exits, other vCPUs, the exact path's own
 * stores — is seen), when a store by the fast path lands in a page that
 * holds blocks (a filter of code pages, by physical frame) and when a page
 * walk sets an accessed/dirty bit (emu_mem.c). A store into the running
 * block itself also ends the block after the storing instruction, so code
 * that modifies its own next instructions is seen, as on hardware. Stores
 * do not test the filter themselves: the TLB's write tags of filtered
 * frames carry EMU_TAG_CODE (emu_mem.c marks them when it fills an entry,
 * emu_tlb_mark_code when a frame joins the filter), so such a store misses
 * in the fast compare and is done the exact way (f_miss), which checks.
 *
 * Specialised handlers (emu_fast_ops.c) with a memory operand translate through the TLB
 * first and change nothing before; on anything but a plain RAM hit (a
 * miss, a device, two pages, a code frame) f_miss runs the instruction's
 * exact handler instead. A Jcc back to the start of its own block (a tight
 * loop) runs the block again inside the handler chain while the budget
 * has room for a whole pass and nothing is due (loop_again); a taken
 * direct branch, a call or the end of a block goes on into the block that
 * followed there last time (its link) on the same terms (chain), so the
 * block loop below runs only when a link is missing or stale or something
 * is due. Flags that a
 * later instruction of the block sets again before anything can look at
 * them are not computed at all (drop_dead_flags).
 *
 * emu_exec.c enters a block only where the exact per-instruction path
 * (step()) would do nothing but run the instructions: no replay pending,
 * no interrupt shadow, no HLT step, emu_dbg_armed() false (no DR7 enable,
 * TF, RF or debugger request), and after the interrupt check. Inside a
 * block nothing can change that, because every instruction that could
 * (POPF, STI, MOV to CR/DR/Sreg, INT, IRET, I/O, string ...) is not plain
 * and goes through step(). Device accesses made by plain instructions
 * (MMIO) end the block after the instruction (emu_mem.c after_platform),
 * the budget (quantum, timer deadline) is respected to the instruction,
 * kicks and interrupts from other threads are looked at between blocks
 * (and at every pass of a tight loop).
 *
 * What a block does not keep up to date per instruction: RIP,
 * insn_start_rip and the retired count. Each instruction knows its offset
 * and index in the block, so they are derived when the block is left, and
 * set before anything that may look at them runs: the exact handlers
 * (f_exact) and the slow paths of memory accesses (TLB miss, device
 * access, fault), see sync_at().
 *
 * Faults: handlers read all operands and do every access that can fault
 * before they change state (lazy flags are recorded last), so emu_fault's
 * unwinding leaves the state as before the instruction; emu_fault and
 * emu_leave make the flags exact first.
 *
 * Instructions with no specialised handler in emu_fast_ops.c run their
 * exact handler from emu_exec_*.c after the flags are made exact. */
#include "engine/emu/emu_fast.h"

#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "x86/insn.h"

int emu_blocks_create(struct emu_vm *evm)
{
	/* calloc: pages of the table cost memory only once used */
	evm->blocks = calloc(1, sizeof(struct emu_blocks));
	evm->code_gen = 1;
	evm->code_filter = evm->blocks ? evm->blocks->code : NULL;
	return evm->blocks ? 0 : -ENOMEM;
}

void emu_blocks_destroy(struct emu_vm *evm)
{
	evm->code_filter = NULL;
	free(evm->blocks);
	evm->blocks = NULL;
}

/* --- building blocks ---------------------------------------------------------------- */

/* Plain (X86_MN_PLAIN in x86/insn.c's table: nothing but GPRs, the
 * arithmetic flags and DF, memory and RIP) with an exact handler, in the
 * operand forms that keep it plain (see the top of the file). */
static bool is_plain(const struct emu_insn *in)
{
	if (!(x86_mnemonic(in->mnemonic)->attrs & X86_MN_PLAIN) || in->fn == emu_unimplemented ||
	    in->fn == emu_mov_special || (in->flags & EMU_I_FAR))
		return false;
	for (unsigned i = 0; i < in->nops; i++) {
		const struct emu_operand *o = &in->op[i];
		if (o->kind == EMU_OP_PTR)
			return false;
		if (o->kind == EMU_OP_REG && o->rclass != EMU_RC_GPR && o->rclass != EMU_RC_GPR8H)
			return false;
	}
	return true;
}

/* Unconditional transfers (X86_MN_JUMP) end a block: their target is
 * known only at run time, or is elsewhere. */
static bool ends_block(const struct emu_insn *in)
{
	return x86_mnemonic(in->mnemonic)->attrs & X86_MN_JUMP;
}

static unsigned block_index(uint64_t gpa)
{
	return (unsigned)((gpa ^ (gpa >> BLOCK_BITS) ^ (gpa >> (2 * BLOCK_BITS))) &
			  (BLOCK_COUNT - 1));
}

/* Decode the block at gpa (host bytes p, avail bytes to the page end). */
static void block_build(struct emu_block *b, uint64_t gpa, unsigned mode, const uint8_t *p,
			unsigned avail)
{
	b->valid = false;
	b->n = 0;
	unsigned pos = 0;
	while (b->n < BLOCK_INSNS) {
		struct emu_fop *f = &b->op[b->n];
		struct emu_insn *in = &b->in[b->n];
		unsigned len = avail - pos < 15 ? avail - pos : 15;
		if (len == 0 || emu_decode_insn(mode, p + pos, len, in) < 0)
			break;
		if (pos + in->len > BLOCK_BYTES)
			break;
		if (!is_plain(in)) {
			if (b->n == 0)
				pos += in->len;    /* the copy covers it: rebuilt when it changes */
			break;
		}
		emu_fop_build(in, f, b->n, pos);
		pos += in->len;
		b->n++;
		if (ends_block(in))
			break;
	}
	if (pos == 0)
		return;                        /* not decodable here: step() says why */
	emu_fops_finish(b, pos);
	/* the copy is compared in 8-byte words: keep whole words that are
	 * still in the page (bytes after the block included) */
	unsigned words = (pos + 7) / 8;
	if (words * 8 > avail)
		words = 0;
	memset(b->bytes, 0, sizeof(b->bytes));
	memcpy(b->bytes, p, words ? words * 8 : pos);
	b->words = (uint8_t)words;
	b->nbytes = (uint16_t)pos;
	b->gpa = gpa;
	b->mode = (uint8_t)mode;
	b->valid = true;
}

/* Are the guest's bytes at p still those the block was built from? */
static inline bool same_bytes(const struct emu_block *b, const uint8_t *p)
{
	if (!b->words)
		return memcmp(p, b->bytes, b->nbytes) == 0;
	uint64_t diff = 0;
	for (unsigned i = 0; i < b->words; i++) {
		uint64_t x, y;
		memcpy(&x, p + i * 8, 8);
		memcpy(&y, b->bytes + i * 8, 8);
		diff |= x ^ y;
	}
	return diff == 0;
}

/* The first entry into b in this code generation: compare (or build);
 * NULL when the fast path cannot run the instruction at gpa. */
static __attribute__((noinline)) struct emu_block *block_check(struct emu_cpu *cpu,
							       struct emu_block *b,
							       uint64_t gpa, const uint8_t *p,
							       unsigned avail)
{
	struct emu_core *c = emu_core_of(cpu);
	if (!b->valid || b->gpa != gpa || b->mode != c->mode || !same_bytes(b, p)) {
		block_build(b, gpa, c->mode, p, avail);
		/* a new code frame: stores into it must see it (EMU_TAG_CODE) */
		unsigned i = emu_code_bit(gpa);
		uint64_t *word = &c->blocks->code[i / 64];
		if (b->valid && !(*word & (1ull << (i % 64)))) {
			*word |= 1ull << (i % 64);
			cpu->evm->code_marks++;
			emu_tlb_mark_code(cpu);
		}
	}
	if (!b->valid || b->n == 0)
		return NULL;
	b->gen = cpu->evm->code_gen;
	return b;
}

/* The block at RIP, or NULL when the fast path cannot run it. */
static inline struct emu_block *block_at(struct emu_cpu *cpu, struct emu_core *c)
{
	uint64_t lin = cpu->rip;
	struct emu_tlb_entry *t = tlb_of(c, lin);
	if (__builtin_expect(t->tag_x != (lin & X86_PAGE_MASK), 0))
		return NULL;                   /* step() fills the TLB (or faults) */
	unsigned off = (unsigned)(lin & (X86_PAGE_SIZE - 1));
	uint64_t gpa = t->gpa + off;
	struct emu_block *b = &c->blocks->b[block_index(gpa)];
	/* a block's generation is only ever set while it is valid, in 64-bit mode */
	if (__builtin_expect(b->gen != cpu->evm->code_gen || b->gpa != gpa, 0)) {
		b = block_check(cpu, b, gpa, t->host + off, (unsigned)X86_PAGE_SIZE - off);
		if (!b)
			return NULL;
	}
	c->blk_gpa = gpa;
	c->blk_end = gpa + b->nbytes;
	c->blk_rip = lin;
	c->blk_n = b->n;
	return b;
}

/* Run the block; false when something asks for the way back to the run
 * loop (a device access, a store into the block, the budget). */
static inline bool block_exec(struct emu_cpu *cpu, struct emu_core *c, const struct emu_block *b)
{
	c->blk_ret = cpu->retired;
	unsigned how = b->op[0].fn(cpu, c, b->op);
	const struct emu_fop *f = c->blk_stop;
	if (how == FS_END) {
		/* f is the end marker, f - 1 the last instruction */
		cpu->rip = c->blk_rip + f->off;
		cpu->insn_start_rip = c->blk_rip + f[-1].off;
		cpu->retired = c->blk_ret + f->idx;
	} else {
		if (how == FS_NEXT)
			cpu->rip = c->blk_rip + f->end;
		cpu->insn_start_rip = c->blk_rip + f->off;
		cpu->retired = c->blk_ret + f->idx + 1;
	}
	return !c->blk_break && cpu->retired < c->budget_end;
}

/* The block after the one that just left at f. A direct branch (or the
 * end of the block) to the same page goes where it went last time without
 * the TLB and the hash when that block is still valid: the page's
 * translation is the one the left block was entered with (plain
 * instructions neither flush the TLB nor change CPL or mode). */
static inline struct emu_block *block_next(struct emu_cpu *cpu, struct emu_core *c,
					   const struct emu_fop *f)
{
	uint64_t rip = cpu->rip;
	if (!(f->flags & FOP_LINK) || ((rip ^ c->blk_rip) & X86_PAGE_MASK))
		return block_at(cpu, c);
	uint64_t gpa = (c->blk_gpa & X86_PAGE_MASK) | (rip & (X86_PAGE_SIZE - 1));
	struct emu_block *b = f->link;
	if (__builtin_expect(!b || b->gen != cpu->evm->code_gen || b->gpa != gpa, 0)) {
		b = block_at(cpu, c);
		((struct emu_fop *)f)->link = b;       /* the blocks are ours: see block_build */
		return b;
	}
	c->blk_gpa = gpa;
	c->blk_end = gpa + b->nbytes;
	c->blk_rip = rip;
	c->blk_n = b->n;
	return b;
}

/* Blocks back to back from RIP. The flags stay lazy on return: the run
 * loop makes them exact before anything looks at them (emu_exec.c). */
bool emu_block_run(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->mode != X86_MODE_LONG64)
		return false;
	c->blocks = cpu->evm->blocks;
	c->ftlb = c->tlb[c->cpl == 3];         /* plain instructions keep the CPL */
	if (__builtin_expect(c->code_marks != cpu->evm->code_marks, 0))
		emu_tlb_mark_code(cpu);            /* another vCPU found new code frames */
	cpu->evm->code_gen++;                  /* whatever happened outside: compare again */
	struct emu_block *b = block_at(cpu, c);
	/* a block runs whole: near the end of the budget the exact path
	 * steps the rest */
	if (!b || c->budget_end - cpu->retired < b->n)
		return false;
	c->blk_break = false;
	c->event_in_insn = false;
	c->rep_pending = false;
	c->dbg_armed = false;
	while (block_exec(cpu, c, b) && may_go_on(cpu, c)) {
		b = block_next(cpu, c, c->blk_stop);
		if (!b || c->budget_end - cpu->retired < b->n)
			break;
	}
	return true;
}
