/* engine/emu/emu_fast.c — the core's fast path: blocks of decoded
 * instructions run back to back, with lazy flags and handlers specialised
 * by operand form. This file is the block cache (building, code
 * versions, validation, links between blocks, running them);
 * emu_fast_ops.c has the handlers, emu_fast.h what the two share.
 *
 * A block is a straight run of "plain" instructions (data movement,
 * arithmetic, stack, near branches: what only touches GPRs, arithmetic
 * flags, memory and RIP; SSE on XMM registers, which adds only those and
 * MXCSR) inside one page (the last instruction may go on into the next:
 * f_cross compares its bytes there each time), ending after an
 * unconditional branch, before the first instruction that is not plain,
 * or at 32 instructions. The cache is VM-wide: a table of BLOCK_SLOTS entries keyed
 * by the physical address of the first byte (64-bit mode only), the
 * blocks in an arena, each with a copy of its bytes; a full arena is
 * emptied at once (block links live only in blocks, so none outlives it).
 *
 * Seeing every writer of code: a block is compared with the guest's bytes
 * when it was entered last before a write that may have touched them, and
 * entered without comparing otherwise (block_current). Two counters say
 * so. Per frame of guest RAM (emu_vm.code_ver): every store of the guest
 * into a frame that holds blocks — the fast path's, the exact path's,
 * locked ones, a page walk setting an accessed/dirty bit in a table that
 * shares a frame with code (emu_mem.c) — counts, and invalidates only that
 * frame's blocks. VM-wide (emu_vm.code_gen): a vCPU back in run() from the
 * machine or the debugger (emu_engine.c) starts a new generation, so
 * whatever wrote guest memory meanwhile — the debugger's int3 bytes and M
 * packets, devices — is seen. A store into the running block itself also
 * ends the block after the storing instruction, so code that modifies its
 * own next instructions is seen, as on hardware. Stores do not test the
 * code map themselves: the TLB's write tags of frames with blocks carry
 * EMU_TAG_CODE (emu_mem.c marks them when it fills an entry,
 * emu_tlb_mark_frame when a frame gains blocks), so such a store misses in
 * the fast compare and is done the exact way (f_miss), which counts it. A
 * frame that takes EMU_CODE_STALE_MAX such stores with none of its blocks
 * compared meanwhile (its code freed, the page reused for data) leaves
 * the code map until a block there is compared again (emu_mem.c).
 *
 * Specialised handlers (emu_fast_ops.c) with a memory operand translate
 * through the TLB first and change nothing before; on anything but a
 * plain RAM hit (a miss, a device, two pages, a code frame) f_miss runs
 * the instruction's exact handler instead (a TLB miss the walk can fill:
 * the handler again). A Jcc back to the start of its own block (a tight
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
 * (POPF, MOV to CR/DR/Sreg, INT, IRET, I/O ...) is not plain
 * and goes through step(); STI only with the instruction in its shadow,
 * after which its block ends (is_sti). Device accesses made by plain instructions
 * (MMIO) end the block after the instruction (emu_mem.c after_platform),
 * the budget (quantum, timer deadline) is respected to the instruction
 * (blocks, passes of a tight loop and chained blocks run only whole inside
 * it; where it ends inside a block, the block's first instructions run as
 * a block of their own: block_prefix), kicks and interrupts from other
 * threads are looked at between blocks (and at every pass of a tight
 * loop). A miss of the TLB's execute tag at RIP is filled by the walk the
 * exact path's fetch would do (its fault is the instruction's, as there)
 * and the block runs.
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
 * exact handler from emu_exec_*.c after the flags are made exact.
 *
 * The native tier (emu_jit.c): op[0].fn of a new block counts its entries
 * (f_count); at the jit_after-th the block is translated into host code
 * that does what its handlers do, and op[0].fn becomes the translation,
 * entered by every way into the block as the handler chain was. */
#include "engine/emu/emu_fast.h"

#include <stddef.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_jit.h"
#include "engine/emu/emu_stats.h"
#include "x86/insn.h"


int emu_blocks_create(struct emu_vm *evm)
{
	struct vm *vm = evm->vm;
	uint64_t frames = (vm->ram_size + X86_PAGE_SIZE - 1) / X86_PAGE_SIZE;
	/* calloc: the arena's pages cost memory only once used */
	evm->blocks = calloc(1, sizeof(struct emu_blocks));
	uint8_t *arena = calloc(1, BLOCK_ARENA), *cold = calloc(1, BLOCK_ARENA);
	evm->code_bits = calloc((frames + 63) / 64, sizeof(uint64_t));
	evm->code_ver = calloc(frames ? frames : 1, sizeof(uint32_t));
	evm->code_stale = calloc(frames ? frames : 1, 1);
	if (!evm->blocks || !arena || !cold || !evm->code_bits || !evm->code_ver ||
	    !evm->code_stale) {
		free(arena);
		free(cold);
		emu_blocks_destroy(evm);
		return -ENOMEM;
	}
	evm->blocks->arena = arena;
	evm->blocks->cold = cold;
	evm->blocks->jit = emu_jit_create(&evm->blocks->jit_after);
	evm->ram = vm->ram;
	evm->ram_frames = frames;
	evm->code_gen = 1;
	return 0;
}

void emu_blocks_destroy(struct emu_vm *evm)
{
	if (evm->blocks) {
		emu_jit_destroy(evm->blocks->jit);
		free(evm->blocks->arena);
		free(evm->blocks->cold);
	}
	free(evm->blocks);
	free(evm->code_bits);
	free(evm->code_ver);
	free(evm->code_stale);
	evm->blocks = NULL;
	evm->code_bits = NULL;
	evm->code_ver = NULL;
	evm->code_stale = NULL;
}

void emu_blocks_outside(struct emu_vm *evm)
{
	evm->code_gen++;
}

void emu_stats_report(struct emu_vm *evm)
{
	const char *v = getenv("VMDB_EMU_STATS");
	struct timespec ts;
	if (!v || strcmp(v, "1") != 0 || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
		return;
	uint64_t retired = evm->retired_gone;
	for (unsigned i = 0; i < evm->nr_cpus; i++)
		if (evm->cpus[i])
			retired += evm->cpus[i]->retired;
	double cpu_s = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	uint64_t jit_blocks = 0, jit_insns = 0;
	if (evm->blocks && evm->blocks->jit)
		emu_jit_counts(evm->blocks->jit, &jit_blocks, &jit_insns);
	fprintf(stderr, "vmdb: emu: %llu instructions retired, %.2f s of CPU, %.1f MIPS, "
		"block cache emptied %llu times, %llu blocks translated, "
		"%llu instructions run in translations\n", (unsigned long long)retired,
		cpu_s, cpu_s > 0 ? (double)retired / cpu_s / 1e6 : 0.0,
		(unsigned long long)(evm->blocks ? evm->blocks->flushes : 0),
		(unsigned long long)jit_blocks, (unsigned long long)jit_insns);
	const struct emu_blocks *bs = evm->blocks;
	if (bs)
		fprintf(stderr, "vmdb: emu: %llu blocks built; instructions stepped where no block "
			"could run: %llu not in 64-bit mode, %llu execute TLB misses left to the fetch, "
			"%llu not plain; %llu execute TLB misses filled for a block, "
			"%llu blocks cut short where the budget ended\n",
			(unsigned long long)bs->builds, (unsigned long long)bs->steps[STEP_MODE],
			(unsigned long long)bs->steps[STEP_TLB], (unsigned long long)bs->steps[STEP_PLAIN],
			(unsigned long long)bs->tlb_fills, (unsigned long long)bs->prefixes);
	if (bs && evm->insn_stats)
		fprintf(stderr, "vmdb: emu: fast handlers' accesses left to the exact way: %llu "
			"TLB fills, %llu stores into code frames, %llu devices, %llu across pages, "
			"%llu watched, %llu other; %llu TLB fills done for them\n",
			(unsigned long long)bs->misses[MISS_FILL], (unsigned long long)bs->misses[MISS_CODE],
			(unsigned long long)bs->misses[MISS_DEVICE], (unsigned long long)bs->misses[MISS_CROSS],
			(unsigned long long)bs->misses[MISS_WATCH], (unsigned long long)bs->misses[MISS_OTHER],
			(unsigned long long)bs->data_fills);
	if (bs)
		emu_jit_report(bs->jit, stderr);
	emu_insn_stats_report(evm);
}

/* --- building blocks ---------------------------------------------------------------- */

/* MOV of a segment register's selector into a general register: reads
 * what only instructions that are not plain change (Linux's sync_core
 * reads SS and CS before its IRET to itself). */
static bool is_selector_read(const struct emu_insn *in)
{
	const struct emu_operand *d = &in->op[0], *s = &in->op[1];
	return in->mnemonic == ZYDIS_MNEMONIC_MOV && in->nops == 2 && d->kind == EMU_OP_REG &&
	       d->rclass == EMU_RC_GPR && s->kind == EMU_OP_REG && s->rclass == EMU_RC_SEG &&
	       s->reg <= EMU_GS;
}

/* Plain (X86_MN_PLAIN in x86/insn.c's table: nothing but GPRs, the
 * arithmetic flags and DF, memory and RIP), an SSE instruction on XMM
 * registers (emu_sse_insn) or one of emu_fast_also_plain, with an exact handler, in the operand forms
 * that keep it plain (see the top of the file); or a selector read (its
 * exact handler, f_exact). */
static bool is_plain(const struct emu_insn *in)
{
	if (is_selector_read(in))
		return true;
	bool sse = emu_sse_insn(in);
	if ((!sse && !(x86_mnemonic(in->mnemonic)->attrs & X86_MN_PLAIN) &&
	     !emu_fast_also_plain(in)) ||
	    in->fn == emu_unimplemented || in->fn == emu_mov_special || (in->flags & EMU_I_FAR))
		return false;
	for (unsigned i = 0; i < in->nops; i++) {
		const struct emu_operand *o = &in->op[i];
		if (o->kind == EMU_OP_PTR)
			return false;
		if (o->kind == EMU_OP_REG && o->rclass != EMU_RC_GPR && o->rclass != EMU_RC_GPR8H &&
		    !(sse && o->rclass == EMU_RC_XMM))
			return false;
	}
	return true;
}

/* STI runs in a block only with the instruction after it, the one in
 * its interrupt shadow, and the block ends after that one: the block
 * loop looks for interrupts there, where the CPU takes them, and nothing
 * can come between the two (no interrupt check inside a block, faults of
 * the second one are its own, a block cut short by the budget is never
 * cut between them: block_prefix). So the shadow needs no mark
 * (cpu->interrupt_shadow) in a block. */
static bool is_sti(const struct emu_insn *in)
{
	return in->mnemonic == ZYDIS_MNEMONIC_STI;
}

/* Unconditional transfers (X86_MN_JUMP) end a block: their target is
 * known only at run time, or is elsewhere. So does SERIALIZE: code another
 * vCPU patched before it is looked up again after it. */
static bool ends_block(const struct emu_insn *in)
{
	return (x86_mnemonic(in->mnemonic)->attrs & X86_MN_JUMP) ||
	       in->mnemonic == ZYDIS_MNEMONIC_SERIALIZE;
}

/* Room for len bytes in the arena and cold bytes in the cold one
 * (8-aligned, *cold_p); when either is full, or the native tier's arena
 * is, every block goes, links and translations included: they only live
 * in blocks. */
static void *arena_take(struct emu_blocks *bs, size_t len, size_t cold, uint8_t **cold_p)
{
	len = (len + 7) & ~(size_t)7;
	cold = (cold + 7) & ~(size_t)7;
	if (bs->used + len > BLOCK_ARENA || bs->cold_used + cold > BLOCK_ARENA ||
	    (bs->jit && emu_jit_full(bs->jit))) {
		if (bs->jit)
			emu_jit_reset(bs->jit);
		memset(bs->slot, 0, sizeof(bs->slot));
		bs->insn_op = NULL;
		bs->used = bs->cold_used = 0;
		bs->flushes++;
	}
	void *p = bs->arena + bs->used;
	bs->used += len;
	*cold_p = bs->cold + bs->cold_used;
	bs->cold_used += cold;
	return p;
}

/* The instruction at p (len bytes left in the page) goes on into the
 * next page, whose bytes are at next: decoded into *in with its bytes
 * there in the draft's tail, when it is plain. */
static bool block_decode_cross(struct emu_blocks *bs, unsigned mode, const uint8_t *p,
			       unsigned len, const uint8_t *next, struct emu_insn *in)
{
	uint8_t buf[15];
	memcpy(buf, p, len);
	memcpy(buf + len, next, sizeof(buf) - len);
	if (emu_decode_insn(mode, buf, sizeof(buf), in) < 0 || in->len <= len || !is_plain(in))
		return false;
	bs->tail_len = in->len - len;
	memcpy(bs->tail, next, bs->tail_len);
	return true;
}

/* Decode the instructions at gpa (host bytes p, avail bytes to the page
 * end, the next page's at next or NULL) into the draft: how many are
 * plain, and their bytes in *pos. */
static unsigned block_decode(struct emu_vm *evm, uint64_t gpa, unsigned mode,
			     const uint8_t *p, unsigned avail, const uint8_t *next, unsigned *pos)
{
	struct emu_blocks *bs = evm->blocks;
	unsigned n = 0;
	*pos = 0;
	bs->tail_len = 0;
	while (n < BLOCK_INSNS) {
		struct emu_insn *in = &bs->in[n];
		bool shadowed = n > 0 && is_sti(&bs->in[n - 1]);
		unsigned len = avail - *pos < 15 ? avail - *pos : 15;
		int r = len ? emu_decode_cached(evm, mode, gpa + *pos, p + *pos, len, in) : -EINVAL;
		if (r == 0 && shadowed && (is_sti(in) || !is_plain(in)))
			break;                     /* the STI is dropped below */
		if (r == -EAGAIN && n > 0 && !shadowed && next && len < 15 &&
		    block_decode_cross(bs, mode, p + *pos, len, next, in) &&
		    *pos + in->len <= BLOCK_BYTES) {
			emu_fop_build_cross(bs, in, &bs->op[n], n, *pos);
			*pos += in->len;
			n++;
			break;
		}
		if (r < 0) {
			/* the first one crosses into the next page or is not an
			 * instruction: an empty block over its bytes here, so
			 * that step() runs it without it being decoded again */
			if (n == 0)
				*pos = len;
			break;
		}
		if (*pos + in->len > BLOCK_BYTES)
			break;
		if (!is_plain(in) && !is_sti(in)) {
			if (n == 0)
				*pos += in->len;   /* the copy covers it: rebuilt when it changes */
			break;
		}
		emu_fop_build(bs, in, &bs->op[n], n, *pos);
		if (is_sti(in))
			bs->op[n].flags |= FOP_STI;
		*pos += in->len;
		n++;
		if (ends_block(in) || shadowed)
			break;
	}
	if (n > 0 && is_sti(&bs->in[n - 1])) {
		/* no instruction after it here: the block ends before it */
		n--;
		*pos = n ? bs->op[n].off : bs->in[0].len;
	}
	return n;
}

/* The first instruction of a block that is not translated yet: counts
 * the block's entries, and translates it at the jit_after-th. */
static unsigned f_count(struct emu_cpu *cpu, struct emu_core *c, const struct emu_fop *f)
{
	struct emu_block *b = (struct emu_block *)((char *)f - offsetof(struct emu_block, op));
	if (++b->hits >= c->blocks->jit_after && emu_jit_translate(c->blocks->jit, b))
		return b->op[0].fn(cpu, c, f);
	return b->fn0(cpu, c, f);
}

/* The block at gpa (host bytes p, avail bytes to the page end, the next
 * page's at next or NULL), new in the arena. */
static struct emu_block *block_build(struct emu_vm *evm, uint64_t gpa, unsigned mode,
				     const uint8_t *p, unsigned avail, const uint8_t *next)
{
	struct emu_blocks *bs = evm->blocks;
	unsigned pos, n = block_decode(evm, gpa, mode, p, avail, next, &pos);
	fop_fn built[BLOCK_INSNS];
	for (unsigned i = 0; i < n; i++)
		built[i] = bs->op[i].fn;
	emu_fops_finish(bs, bs->op, n, pos);
	unsigned here = pos < avail ? pos : avail;
	/* the copy is compared in 8-byte words: keep whole words that are
	 * still in the page (bytes after the block included) */
	unsigned words = (here + 7) / 8;
	if (words * 8 > avail)
		words = 0;
	unsigned copied = words ? words * 8 : here;
	unsigned exact = 0;
	for (unsigned i = 0; i < n; i++)
		exact += emu_fop_exact(built[i]);
	size_t ops = sizeof(struct emu_fop) * (n + 1), fns = sizeof(fop_fn) * n;
	size_t kept = sizeof(struct emu_insn) * exact;
	uint8_t *cold;
	struct emu_block *b = arena_take(bs, sizeof(*b) + ops, kept + fns + copied + bs->tail_len,
					 &cold);
	memcpy(b->op, bs->op, ops);
	struct emu_insn *in = (struct emu_insn *)(void *)cold;
	for (unsigned i = 0; i < n; i++) {
		if (emu_fop_exact(built[i])) {
			*in = bs->in[i];
			b->op[i].imm = (uintptr_t)in++;
		}
	}
	memcpy(cold + kept, built, fns);
	b->bytes = cold + kept + fns;
	memcpy((void *)b->bytes, p, copied);
	if (bs->tail_len) {
		uint8_t *tail = (uint8_t *)b->bytes + copied;
		memcpy(tail, bs->tail, bs->tail_len);
		b->tail = tail;
	}
	b->words = (uint8_t)words;
	b->nbytes = (uint16_t)here;
	b->n = b->built = (uint8_t)n;
	b->fn0 = b->op[0].fn;
	b->hits = 0;
	b->jit_link = NULL;
	if (bs->jit && n)
		b->op[0].fn = f_count;
	b->gpa = gpa;
	b->mode = (uint8_t)mode;
	return b;
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

/* A frame that now holds blocks: stores into it must see them (EMU_TAG_CODE). */
static void code_frame_add(struct emu_cpu *cpu, uint64_t frame)
{
	struct emu_vm *evm = cpu->evm;
	uint64_t *word = &evm->code_bits[frame / 64];
	if (*word & (1ull << (frame % 64)))
		return;
	*word |= 1ull << (frame % 64);
	evm->code_marks++;
	emu_tlb_mark_frame(cpu, evm->ram + frame * X86_PAGE_SIZE);
}

/* The first entry into slot *s for gpa since its bytes may have changed:
 * compare (or build). */
static __attribute__((noinline)) struct emu_block *block_check(struct emu_cpu *cpu,
							       struct emu_block **s, uint64_t lin,
							       uint64_t gpa, const uint8_t *p,
							       unsigned avail)
{
	struct emu_core *c = emu_core_of(cpu);
	struct emu_block *b = *s;
	if (!b || b->gpa != gpa || b->mode != c->mode || !same_bytes(b, p)) {
		c->blocks->builds++;
		uint64_t next = (lin & X86_PAGE_MASK) + X86_PAGE_SIZE;
		const struct emu_tlb_entry *t = tlb_of(c, next);
		b = block_build(cpu->evm, gpa, c->mode, p, avail,
				t->tag_x == next ? t->host : NULL);
		*s = b;
	}
	b->frame = emu_frame_of(cpu->evm, p);
	code_frame_add(cpu, b->frame);
	cpu->evm->code_stale[b->frame] = 0;
	b->stamp = cpu->evm->code_gen + cpu->evm->code_ver[b->frame];
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
	struct emu_block **s = &c->blocks->slot[block_index(gpa)];
	struct emu_block *b = *s;
	/* a block is only ever current in the mode it was built in (64-bit) */
	if (__builtin_expect(!b || b->gpa != gpa || !block_current(c, b), 0))
		b = block_check(cpu, s, lin, gpa, t->host + off, (unsigned)X86_PAGE_SIZE - off);
	if (b->n == 0)
		return NULL;
	c->blk = b;
	c->blk_rip = lin;
	return b;
}

/* Where the budget ends inside block b (k of its n instructions left,
 * 0 < k < n): its first k as a block of their own, in the cache's scratch
 * copy, to be run instead. Their handlers are those built for them, each
 * recording its flags (no dead flags dropped, no compare fused: the copy
 * runs once, and is made often), so that the flags are exact after the
 * k-th as at any block's end; the fields are b's, so that everything else
 * (links, the copy of its bytes, the way out) is as in b. The copy is
 * only ever run from here, and nothing links to it. */
static struct emu_block *block_prefix(struct emu_core *c, const struct emu_block *b,
				      unsigned k)
{
	struct emu_blocks *bs = c->blocks;
	struct emu_block *p = (struct emu_block *)(void *)bs->prefix;
	const fop_fn *built = block_built(b);
	if ((b->op[k - 1].flags & FOP_STI) && --k == 0)
		return NULL;               /* never between STI and its shadow: step() */
	*p = *b;
	memcpy(p->op, b->op, sizeof(struct emu_fop) * k);
	for (unsigned i = 0; i < k; i++)
		p->op[i].fn = built[i];
	p->n = (uint8_t)k;
	emu_fops_end(p->op, k, b->op[k].off);
	c->blk = p;
	bs->prefixes++;
	return p;
}

/* Run the block; false when something asks for the way back to the run
 * loop (a device access, a store into the block, the budget). */
static inline bool block_exec(struct emu_cpu *cpu, struct emu_core *c, const struct emu_block *b)
{
	c->blk_ret = cpu->retired;
	c->chain_left = BLOCK_CHAIN_MAX;
	unsigned how = b->op[0].fn(cpu, c, b->op);
	const struct emu_fop *f = c->blk_stop;
	if (how == FS_END) {
		/* f did not run (the end marker, f_cross): f - 1 was the last */
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

/* The block after the one that just left at f. A direct branch, a RET
 * or the end of the block goes where it went last time without the hash
 * when that block is still valid at the address link_gpa finds. */
static inline struct emu_block *block_next(struct emu_cpu *cpu, struct emu_core *c,
					   const struct emu_fop *f)
{
	uint64_t rip = cpu->rip;
	if (!(f->flags & FOP_LINK))
		return block_at(cpu, c);
	uint64_t gpa = link_gpa(c, rip);
	struct emu_block *b = f->link;
	if (__builtin_expect(!b || b->gpa != gpa || !block_current(c, b) || b->n == 0, 0)) {
		uint64_t flushes = c->blocks->flushes;
		b = block_at(cpu, c);
		/* the blocks are ours (see block_build), unless the arena was
		 * emptied meanwhile and f with it */
		if (flushes == c->blocks->flushes)
			((struct emu_fop *)f)->link = b;
		return b;
	}
	c->blk = b;
	c->blk_rip = rip;
	return b;
}

/* Blocks back to back from RIP. The flags stay lazy on return: the run
 * loop makes them exact before anything looks at them (emu_exec.c).
 * With c->dbg_armed the debug part only watches data (emu_dbg_data_only):
 * the TLB's EMU_TAG_WATCH marks follow its pages, the exact ways tell it
 * of their accesses, and an instruction with a hit is the last one. */
bool emu_block_run(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->mode != X86_MODE_LONG64) {
		cpu->evm->blocks->steps[STEP_MODE]++;
		return false;
	}
	if (c->dbg_armed && c->watch_gen != emu_dbg_watch_gen(cpu)) {
		emu_tlb_flush(cpu);            /* filled again with the marks of now */
		c->watch_gen = emu_dbg_watch_gen(cpu);
	}
	c->blocks = cpu->evm->blocks;
	c->code_gen = cpu->evm->code_gen;
	c->code_ver = cpu->evm->code_ver;
	c->irq_attn = emu_lapic_attention(cpu);
	/* seen again: a reason set from now on sets it too */
	__atomic_store_n(&cpu->due, false, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!may_go_on(cpu, c))
		__atomic_store_n(&cpu->due, true, __ATOMIC_RELAXED);
	struct emu_tlb_entry *ftlb = c->tlb[c->cpl == 3];   /* plain instructions keep the CPL */
	if (ftlb != c->ftlb) {
		c->ftlb = ftlb;
		emu_slots_empty(c, 0);         /* filled from the other CPL's entries */
	}
	struct emu_block *b = block_at(cpu, c);
	if (!b && !c->dbg_armed && tlb_of(c, cpu->rip)->tag_x != (cpu->rip & X86_PAGE_MASK)) {
		/* the walk the exact path's fetch would do (and its fault, of
		 * the instruction at RIP), then the block */
		cpu->insn_start_rip = cpu->rip;
		emu_tlb_fill_exec(cpu, cpu->rip);
		c->blocks->tlb_fills++;
		b = block_at(cpu, c);
	}
	if (!b) {
		struct emu_tlb_entry *t = tlb_of(c, cpu->rip);
		c->blocks->steps[t->tag_x != (cpu->rip & X86_PAGE_MASK) ? STEP_TLB : STEP_PLAIN]++;
		return false;
	}
	c->blk_break = false;
	c->event_in_insn = false;
	c->rep_pending = false;
	/* blocks run whole, but one where the budget ends, whose first
	 * instructions run as a block of their own */
	for (bool first = true;; first = false) {
		if (c->budget_end - cpu->retired < b->n) {
			b = block_prefix(c, b, (unsigned)(c->budget_end - cpu->retired));
			if (!b) {
				c->blocks->steps[STEP_PLAIN] += first;
				return !first;
			}
		}
		if (!block_exec(cpu, c, b) || !may_go_on(cpu, c))
			break;
		b = block_next(cpu, c, c->blk_stop);
		if (!b)
			break;
	}
	if (c->dbg_armed && emu_dbg_data_hit(cpu)) {
		emu_flags_sync(cpu);
		emu_dbg_end_insn(cpu, cpu->rflags);   /* the run loop sees what it did */
	}
	return true;
}
