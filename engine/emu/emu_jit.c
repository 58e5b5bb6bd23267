/* engine/emu/emu_jit.c — the native tier of the fast path (emu_jit.h):
 * a hot block's handler chain as host x86-64 code.
 *
 * A translation is a function with the handlers' signature, entered as
 * op[0].fn with f = op: it keeps cpu, c and op in callee-saved registers
 * (rbx, r12, r13) and does each instruction of the block in order. An
 * instruction without a template calls its handler with its own fop; the
 * handler ends in NEXT, and every op[k].fn after the first is then the
 * sentinel emu_fop_cont, so the call comes back with FS_CONT; anything
 * else (the handler left the block: a fault's exact way, a store into
 * code, a device) is returned as is, exactly where the handler chain would
 * have left. The block's way out (its last instruction, a taken Jcc)
 * makes chain()'s decisions (emu_fast_ops.c) itself: a tight loop goes
 * back to its start, a branch goes straight into the translation of the
 * block it links to (chain_to: through that translation's linked entries,
 * which check what chain() checks), and anything else is a tail jump into
 * the original handler, which decides as in the interpreter; so the host
 * stack stays flat however many blocks run back to back. A CMP/TEST fused with its Jcc runs
 * as the CMP/TEST and then the Jcc: the same flags, retired counts and
 * ways. Everything the handler chain keeps (RIP, the retired count, the
 * lazy flags) is thus kept the same way.
 *
 * Flags: templates record them lazily as the handlers do, and the host's
 * own flags, after a host operation that sets the same ones, serve the
 * conditions (Jcc, CMOVcc, SETcc) and carries (ADC, SBB, INC/DEC's kept
 * CF) that follow. Where they are not the guest's any more (a call, a
 * TLB look-up), the operation is done again on its record when the
 * translation knows which it was, else the flags stub at the start of the
 * arena sets them from the record (struct flag_state, need_flags). A
 * rotate whose flags a later op of the block sets again before anything
 * can look is done without them, and so is the record of an ALU op with
 * a memory operand. The record of an ALU op or a shift on a cached
 * register is left pending (struct pend) and written only where
 * something may look: a call, a way out, a slow way (a later access's
 * TLB miss, whose fault must see it). A last instruction that goes on into
 * the next page compares its bytes there inline, as f_cross does.
 *
 * Memory: one memfd mapped twice, written through one view and run
 * through the other (never writable and executable at once). */
#include "engine/emu/emu_jit.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/emu/emu_flags.h"
#include "x86/decode.h"

#include <Zydis/Zydis.h>

#if defined(__x86_64__)

#include <sys/mman.h>
#include <unistd.h>

#define JIT_ARENA (64u << 20)
/* translations' own code below, their slow ways (calls, the block loop's
 * way out) above: the code that runs shares the host's caches with less */
#define JIT_HOT (32u << 20)              /* a boot's hot parts take 8 MiB, their slow ways more */
/* room a translation may need per instruction, checked before each */
#define JIT_INSN_MAX 256

/* The ways out of translations, counted with VMDB_EMU_STATS=1 (the code
 * that counts is emitted only then). */
enum jit_exit {
	JX_LOOP,                       /* a tight loop's back edge, taken at once */
	JX_LOOP_SLOW,                  /* ... through its handler (budget, something due) */
	JX_NEAR,                       /* a direct branch or the block's end, linked, in its page */
	JX_FAR,                        /* ... linked, in another page */
	JX_LINK_SLOW,                  /* ... through its handler (no link, not current, due) */
	JX_RET,                        /* RET, linked */
	JX_RET_SLOW,                   /* RET through its handler */
	JX_HANDLER,                    /* a handler's way out (indirect branch, TLB miss, tail) */
	JX_KINDS
};
static const char *const jit_exit_name[JX_KINDS] = {
	"loop", "loop slow", "linked near", "linked far", "link slow", "ret linked",
	"ret slow", "handler"
};

#define INFO_MEMO 512

struct emu_jit {
	uint8_t *rw;                   /* the arena, writable view */
	const uint8_t *rx;             /* the same pages, executable view */
	size_t used;                   /* 0: empty, not even the flags stub (host_flags) */
	size_t cold_used;              /* from JIT_HOT */
	uint64_t blocks, insns;        /* translated; instructions of blocks entered */
	bool stats;                    /* VMDB_EMU_STATS=1: insns and exits are counted */
	uint64_t exits[JX_KINDS];
	uint64_t pended, dead;         /* flag records left pending, dead (memory ALU ops) */
	uint64_t peeled;               /* loop heads peeled (emit_peel) */
	uint64_t slot_hits, slot_misses; /* accesses through a page slot */
	/* emu_fop_info's answers by handler (info_of): it compares fn with
	 * every table of handlers, and a translation asks about each op
	 * several times */
	struct { fop_fn fn; struct fop_info fi; } info[INFO_MEMO];
	FILE *perf_map;                /* VMDB_EMU_PERFMAP=1: /tmp/perf-PID.map, for perf */
	FILE *dump;                    /* VMDB_EMU_JITDUMP=file: each translation described */
};

/* The profiling aids, off unless asked for: perf cannot name samples in
 * the arena without a map, and a translation is judged by its guest
 * instructions next to its host bytes. */
static void open_aids(struct emu_jit *j)
{
	const char *v = getenv("VMDB_EMU_STATS");
	j->stats = v && strcmp(v, "1") == 0;
	v = getenv("VMDB_EMU_PERFMAP");
	if (v && strcmp(v, "1") == 0) {
		char path[64];
		snprintf(path, sizeof(path), "/tmp/perf-%d.map", (int)getpid());
		j->perf_map = fopen(path, "w");
		if (!j->perf_map)
			fprintf(stderr, "vmdb: VMDB_EMU_PERFMAP: cannot write %s\n", path);
	}
	v = getenv("VMDB_EMU_JITDUMP");
	if (v && *v) {
		j->dump = fopen(v, "w");
		if (!j->dump)
			fprintf(stderr, "vmdb: VMDB_EMU_JITDUMP: cannot write %s\n", v);
	}
}

struct emu_jit *emu_jit_create(uint32_t *after)
{
	const char *v = getenv("VMDB_EMU_JIT");
	*after = 100;
	if (v && *v) {
		char *end;
		unsigned long n = strtoul(v, &end, 10);
		if (*end || n > UINT32_MAX) {
			fprintf(stderr, "vmdb: VMDB_EMU_JIT=%s is not a number of entries (0: off)\n", v);
			return NULL;
		}
		if (n == 0)
			return NULL;
		*after = (uint32_t)n;
	}
	struct emu_jit *j = calloc(1, sizeof(*j));
	int fd = memfd_create("vmdb-emu-jit", MFD_CLOEXEC);
	if (!j || fd < 0 || ftruncate(fd, JIT_ARENA) != 0) {
		if (fd >= 0)
			close(fd);
		free(j);
		return NULL;
	}
	void *rw = mmap(NULL, JIT_ARENA, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	void *rx = mmap(NULL, JIT_ARENA, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
	close(fd);
	if (rw == MAP_FAILED || rx == MAP_FAILED) {
		if (rw != MAP_FAILED)
			munmap(rw, JIT_ARENA);
		if (rx != MAP_FAILED)
			munmap((void *)rx, JIT_ARENA);
		free(j);
		return NULL;
	}
	j->rw = rw;
	j->rx = rx;
	j->cold_used = JIT_HOT;
	open_aids(j);
	return j;
}

void emu_jit_destroy(struct emu_jit *j)
{
	if (!j)
		return;
	munmap(j->rw, JIT_ARENA);
	munmap((void *)j->rx, JIT_ARENA);
	if (j->perf_map)
		fclose(j->perf_map);
	if (j->dump)
		fclose(j->dump);
	free(j);
}

void emu_jit_reset(struct emu_jit *j)
{
	j->used = 0;
	j->cold_used = JIT_HOT;
}

bool emu_jit_full(const struct emu_jit *j)
{
	return j->used + BLOCK_INSNS * JIT_INSN_MAX > JIT_HOT ||
	       j->cold_used + BLOCK_INSNS * JIT_INSN_MAX > JIT_ARENA;
}

void emu_jit_counts(const struct emu_jit *j, uint64_t *blocks, uint64_t *insns)
{
	*blocks = j->blocks;
	*insns = j->insns;
}

void emu_jit_report(const struct emu_jit *j, FILE *out)
{
	if (!j || !j->stats)
		return;
	fprintf(out, "vmdb: emu: ways out of translations:");
	for (unsigned k = 0; k < JX_KINDS; k++)
		fprintf(out, "%s %s %llu", k ? "," : "", jit_exit_name[k],
			(unsigned long long)j->exits[k]);
	fprintf(out, "\nvmdb: emu: flag records translated: %llu left pending, %llu dead with a "
		"memory operand, %llu loop heads peeled\n", (unsigned long long)j->pended,
		(unsigned long long)j->dead, (unsigned long long)j->peeled);
	fprintf(out, "vmdb: emu: page slots: %llu hits, %llu misses\n",
		(unsigned long long)j->slot_hits, (unsigned long long)j->slot_misses);
}

/* emu_fop_info(fn), through j's memo. */
static struct fop_info info_of(struct emu_jit *j, fop_fn fn)
{
	uintptr_t h = (uintptr_t)fn;
	unsigned i = (unsigned)((h >> 4) ^ (h >> 13)) & (INFO_MEMO - 1);
	if (j->info[i].fn != fn) {
		j->info[i].fi = emu_fop_info(fn);
		j->info[i].fn = fn;
	}
	return j->info[i].fi;
}

/* --- the emitter ---------------------------------------------------------------------- */

enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
#define R_CPU RBX
#define R_C R12
#define R_OP R13

struct emit {
	uint8_t *p;                    /* writable view */
	ptrdiff_t to_rx;               /* executable address - writable address */
};

static void b1(struct emit *e, unsigned v)
{
	*e->p++ = (uint8_t)v;
}

static void b4(struct emit *e, uint32_t v)
{
	memcpy(e->p, &v, 4);
	e->p += 4;
}

static void b8(struct emit *e, uint64_t v)
{
	memcpy(e->p, &v, 8);
	e->p += 8;
}

static uintptr_t rx_of(const struct emit *e, const uint8_t *p)
{
	return (uintptr_t)(p + e->to_rx);
}

static void rex(struct emit *e, bool w, unsigned reg, unsigned rm, bool force)
{
	unsigned r = 0x40 | (w ? 8 : 0) | ((reg >> 3) & 1) << 2 | ((rm >> 3) & 1);
	if (r != 0x40 || force)
		b1(e, r);
}

/* ModRM (+ SIB, displacement) for [base + disp], reg in the reg field. */
static void modrm_mem(struct emit *e, unsigned reg, unsigned base, int32_t disp)
{
	unsigned mod = disp == 0 && (base & 7) != RBP ? 0 : disp == (int8_t)disp ? 1 : 2;
	b1(e, mod << 6 | (reg & 7) << 3 | (base & 7));
	if ((base & 7) == RSP)
		b1(e, 0x24);
	if (mod == 1)
		b1(e, (uint8_t)disp);
	else if (mod == 2)
		b4(e, (uint32_t)disp);
}

/* op reg, [base + disp] (or the reverse: the opcode decides) */
static void op_mem(struct emit *e, bool w, unsigned opc, unsigned reg, unsigned base, int32_t disp)
{
	rex(e, w, reg, base, false);
	if (opc > 0xff)
		b1(e, opc >> 8);
	b1(e, opc & 0xff);
	modrm_mem(e, reg, base, disp);
}

/* op rm, reg (register to register) */
static void op_rr(struct emit *e, bool w, unsigned opc, unsigned reg, unsigned rm)
{
	rex(e, w, reg, rm, false);
	if (opc > 0xff)
		b1(e, opc >> 8);
	b1(e, opc & 0xff);
	b1(e, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

static void mov_rr(struct emit *e, unsigned dst, unsigned src)
{
	op_rr(e, true, 0x89, src, dst);
}

static void mov_imm64(struct emit *e, unsigned dst, uint64_t v)
{
	rex(e, true, 0, dst, false);
	b1(e, 0xb8 | (dst & 7));
	b8(e, v);
}

static void push(struct emit *e, unsigned r)
{
	rex(e, false, 0, r, false);
	b1(e, 0x50 | (r & 7));
}

static void pop(struct emit *e, unsigned r)
{
	rex(e, false, 0, r, false);
	b1(e, 0x58 | (r & 7));
}

/* A rel32 jump or Jcc (cc < 16; 16: JMP) to a known address. */
static void jump_to(struct emit *e, unsigned cc, const uint8_t *target)
{
	if (cc < 16) {
		b1(e, 0x0f);
		b1(e, 0x80 | cc);
	} else {
		b1(e, 0xe9);
	}
	b4(e, (uint32_t)(int32_t)(target - (e->p + 4)));
}

/* A rel32 jump or Jcc forward: its displacement is patched by land(). */
static uint8_t *jump_fwd(struct emit *e, unsigned cc)
{
	jump_to(e, cc, e->p + 4 + (cc < 16 ? 2 : 1));
	return e->p - 4;
}

static void land(struct emit *e, uint8_t *rel)
{
	uint32_t d = (uint32_t)(int32_t)(e->p - (rel + 4));
	memcpy(rel, &d, 4);
}

/* Jumps to one place (a slow way): forward ones, landed together, or
 * to a known place (to). */
struct pending {
	uint8_t *at[16];
	unsigned n;
	const uint8_t *to;
};

static void to_slow(struct emit *e, struct pending *sl, unsigned cc)
{
	if (sl->to)
		jump_to(e, cc, sl->to);
	else
		sl->at[sl->n++] = jump_fwd(e, cc);
}

static void land_all(struct emit *e, struct pending *sl)
{
	for (unsigned i = 0; i < sl->n; i++)
		land(e, sl->at[i]);
}

/* --- the pieces of a translation ------------------------------------------------------- */

/* What a translation knows, at a point of it, of the guest's arithmetic
 * flags: whether the host's are the same (for conditions: all but AF),
 * and whether c->lf_a, lf_b and lf_r hold the record of an operation lf
 * (EMU_LF_ADD, SUB or LOGIC; 0: not known) at size whose flags are the
 * guest's (a template recorded it, and nothing since wrote the flags or
 * the record). */
struct flag_state {
	bool host;
	uint8_t lf, size;
};

/* A record not written yet: the latest flags-setting op's, of lf at size
 * (0: none), made only where something may look (emit_pending: a call,
 * a way out, a slow way) from what stays of its operands: guest register
 * r (PEND_RESULT: the ALU op's result, its a derived; PEND_CMP: CMP's or
 * TEST's a, r done again) and b (16: the immediate imm), or (PEND_SHIFT:
 * SHL/SHR/SAR, alu 0-2, by imm) the shift's input, kept in the host
 * frame's spare slot [rsp + SPARE]. uses: the guest registers it reads, which
 * nothing may write while it is pending (settle first). */
enum { PEND_RESULT, PEND_CMP, PEND_SHIFT };
struct pend {
	uint8_t lf, size, kind, r, b, alu;
	int32_t imm;
	uint16_t uses;
};

/* Guest registers kept in host registers across a translation: a fixed
 * choice per translation (choose_cached), loaded after the entry and
 * after every handler call, written back before every way out and every
 * handler call (handlers read and write cpu->gpr). dirty: those the
 * code emitted so far has changed since they were last written back. */
#define CACHE_MAX 5
static const uint8_t cache_hosts[CACHE_MAX] = { RBP, R14, R15, R10, R11 };

struct reg_cache {
	uint8_t host[16];              /* guest register -> host register; 0: in memory */
	uint16_t dirty;
	/* dirty where the body starts: in a loop every cached one, so that
	 * its back edge comes back with them in their host registers (see
	 * loop_to_start); a way out writes the unchanged ones back too */
	uint16_t at_start;
};

/* The page of a memory access kept for the accesses after it through
 * the same base register (a TLB look-up reused, as [rsi + 8] after
 * [rsi]): RDI holds the host address of guest register base + off (base
 * MEMO_RIP: RIP-relative, the block's RIP), size bytes there the TLB
 * allowed for the access (a write when write). Nothing a translation
 * does between two instructions changes the TLB but a handler call,
 * after which the memo is looked up again (memo_restore). */
#define MEMO_RIP 16
struct page_memo {
	bool valid, write;
	uint8_t base;
	uint8_t size;
	int32_t off;
};

/* Page slots: pages the TLB allowed, kept in the vCPU's core
 * (emu_core.pslot, SLOT(i): the linear page, its host address, and
 * SLOT_BOUND, the bound the offset of an 8-byte access stays under; 0
 * when empty), looked up after the address is computed: indexed
 * accesses, FS/GS ones and those through registers that change hit them,
 * across a loop's back edge, the links between translations and the
 * entries from C too. Nothing changes the TLB but C code, and the C code
 * that changes what an entry allows empties them (emu_slots_empty):
 * translations never do. Reads and writes have slots of their own
 * (EMU_SLOT_WAYS each): a write slot is filled through the TLB's write tag alone, so a read-only
 * page, a frame with blocks or a clear D bit never serve a write. Each
 * access goes through the slot its translation chose for its base
 * register (plan_slots: the same one in every translation when it can). */
#define MEMO_SLOTS (2 * EMU_SLOT_WAYS)
#define SLOT(i) (CORE(pslot) + (int32_t)sizeof(struct emu_page_slot) * (int32_t)(i))
#define SLOT_BOUND (X86_PAGE_SIZE + 1 - 8)
/* the frame under the saved registers: at [rsp + SPARE] a pending shift's
 * input (struct pend); 8 more than 16s keeps calls aligned */
#define SPARE 0
#define FRAME 8
_Static_assert(FRAME % 16 == 8, "the frame keeps calls aligned");

struct slot_plan {
	uint16_t key[MEMO_SLOTS];      /* slot_key + 1; 0: not used */
};

struct xlat {
	struct emit e;
	struct flag_state fl;
	struct pend pd;
	struct reg_cache rc;
	struct page_memo pm;
	struct slot_plan sp;
	uint8_t *host_flags;           /* the flags stub (writable view): emit_host_flags */
	const struct emu_block *b;
	const fop_fn *fn;              /* the handlers as the block had them */
	uint8_t *leave;                /* pops the saved registers and returns eax */
	const uint8_t *inner;          /* its first instruction's code: the cached registers' loads */
	const uint8_t *body;           /* after the cached registers' loads */
	uint8_t *peel;                 /* a back edge's jump to the peeled head (peel_ops) */
	struct pend peel_pd;           /* the record pending there */
	const uint8_t *link;           /* its linked entries (link_far) */
	uint8_t *other;                /* the other part's cursor: cold while hot is
					* emitted, and the reverse (to_cold) */
	struct emu_jit *j;
	const uint8_t *arena;          /* emu_jit.rx: where translations are */
};

static void writeback(struct xlat *x);
static void reload(struct xlat *x);
static void emit_pending(struct xlat *x);
static void settle(struct xlat *x);
static void frame_lea(struct emit *e, int32_t d);

/* Emit into the cold part (a slow way), then back into the hot one where
 * it was (to_hot returns there: where the slow way may come back to). */
static void to_cold(struct xlat *x)
{
	uint8_t *p = x->e.p;
	x->e.p = x->other;
	x->other = p;
}

static uint8_t *to_hot(struct xlat *x)
{
	to_cold(x);
	return x->e.p;
}

/* The registers the prologue saved back (all but rbx, r12 and r13 are
 * the cached guest registers' hosts). */
static void pop_saved(struct emit *e)
{
	frame_lea(e, FRAME);
	pop(e, R15);
	pop(e, R14);
	pop(e, RBP);
	pop(e, R_OP);
	pop(e, R_C);
	pop(e, R_CPU);
}

/* The handler's arguments for op k: cpu, c, &op[k]. */
static void args(struct xlat *x, unsigned k)
{
	struct emit *e = &x->e;
	mov_rr(e, RDI, R_CPU);
	mov_rr(e, RSI, R_C);
	op_mem(e, true, 0x8d, RDX, R_OP, (int32_t)(k * sizeof(struct emu_fop)));   /* lea */
}

/* Call op k's handler fn; unless it comes back with FS_CONT, leave with
 * what it returned. */
static void call_op(struct xlat *x, unsigned k, fop_fn fn)
{
	struct emit *e = &x->e;
	emit_pending(x);
	writeback(x);
	x->rc.dirty = 0;
	x->pm.valid = false;
	args(x, k);
	mov_imm64(e, RAX, (uint64_t)(uintptr_t)fn);
	b1(e, 0xff);
	b1(e, 0xd0);                               /* call rax */
	b1(e, 0x83);
	b1(e, 0xf8);
	b1(e, FS_CONT);                            /* cmp eax, FS_CONT */
	jump_to(e, 5, x->leave);                   /* jne leave */
	reload(x);
}

/* add qword [v], d through register r, when the statistics are on */
static void tally_at(struct xlat *x, uint64_t *v, unsigned d, unsigned r)
{
	if (!x->j->stats)
		return;
	mov_imm64(&x->e, r, (uint64_t)(uintptr_t)v);
	op_mem(&x->e, true, 0x81, 0, r, 0);
	b4(&x->e, d);
}

/* The instructions run in translations (emu_jit_counts) += d. Emitted
 * on the ways out, which know how many of the block's ran. */
static void count(struct xlat *x, unsigned d)
{
	tally_at(x, &x->j->insns, d, RAX);
}

/* One more way out of kind k (enum jit_exit), counted through r. */
static void tally(struct xlat *x, unsigned k, unsigned r)
{
	tally_at(x, &x->j->exits[k], 1, r);
}

/* Go on in op k's handler at fn as the handler chain would: a tail jump. */
static void tail_at(struct xlat *x, unsigned k, uintptr_t fn)
{
	struct emit *e = &x->e;
	emit_pending(x);
	writeback(x);
	args(x, k);
	pop_saved(e);
	mov_imm64(e, RAX, fn);
	b1(e, 0xff);
	b1(e, 0xe0);                               /* jmp rax */
}

static void tail_op(struct xlat *x, unsigned k, fop_fn fn)
{
	tail_at(x, k, (uintptr_t)fn);
}

/* --- templates ------------------------------------------------------------------------ */

#define GPR(r) ((int32_t)(offsetof(struct emu_cpu, gpr) + 8 * (r)))
#define CORE(field) ((int32_t)offsetof(struct emu_core, field))

_Static_assert(offsetof(struct emu_core, lf_size) == offsetof(struct emu_core, lf_op) + 1,
	       "lf_op and lf_size are stored as one word");
_Static_assert(sizeof(struct emu_tlb_entry) == 40, "the TLB look-up scales by 5 * 8");
_Static_assert(offsetof(struct emu_blocks, slot) == 0, "the block table is looked up at c->blocks");

/* A load of s bytes at [base + disp] into host, zero-extended to 64 bits. */
static void load(struct emit *e, unsigned host, unsigned base, int32_t disp, unsigned s)
{
	static const unsigned opc[9] = { [1] = 0x0fb6, [2] = 0x0fb7, [4] = 0x8b, [8] = 0x8b };
	op_mem(e, s == 8, opc[s], host, base, disp);
}

/* A store of host's low s bytes at [base + disp] (host: RAX, RCX or RDX
 * when s is 1). */
static void store(struct emit *e, unsigned host, unsigned base, int32_t disp, unsigned s)
{
	if (s == 2)
		b1(e, 0x66);
	op_mem(e, s == 8, s == 1 ? 0x88 : 0x89, host, base, disp);
}

/* gpr[r] as a write of s bytes does it (gpr_put: 4 zero-extends, 2 and 1
 * keep the rest), in memory. */
static void put_gpr_mem(struct emit *e, unsigned r, unsigned s, unsigned host)
{
	if (s == 4) {
		op_rr(e, false, 0x89, host, host);         /* mov host32, host32 */
		s = 8;
	}
	store(e, host, R_CPU, GPR(r), s);
}

/* The host register that holds guest register r (0: none). */
static unsigned cached(const struct xlat *x, unsigned r)
{
	return r < 16 ? x->rc.host[r] : 0;
}

/* op rm, reg at size s (the opcode as given), REX present for bytes
 * (spl-dil, not ah-bh). */
static void op_rr_sized(struct emit *e, unsigned s, unsigned opc, unsigned reg, unsigned rm)
{
	if (s == 2)
		b1(e, 0x66);
	rex(e, s == 8, reg, rm, s == 1);
	if (opc > 0xff)
		b1(e, opc >> 8);
	b1(e, opc & 0xff);
	b1(e, 0xc0 | (reg & 7) << 3 | (rm & 7));
}

/* host = the low s bytes of guest register r, zero-extended. */
static void get_gpr(struct xlat *x, unsigned host, unsigned r, unsigned s)
{
	unsigned h = cached(x, r);
	if (!h)
		load(&x->e, host, R_CPU, GPR(r), s);
	else if (s >= 4)
		op_rr(&x->e, s == 8, 0x8b, host, h);       /* mov host, h */
	else if (s == 2)
		op_rr(&x->e, false, 0x0fb7, host, h);      /* movzx host32, h16 */
	else
		op_rr_sized(&x->e, 1, 0x0fb6, host, h);    /* movzx host32, h8 */
}

/* Guest register r is written by the code emitted next: dirty when
 * cached, and no base of a memo any more. */
static void changed(struct xlat *x, unsigned r)
{
	if (cached(x, r))
		x->rc.dirty |= (uint16_t)(1u << r);
	if (x->pm.base == r)
		x->pm.valid = false;
}

static void put_gpr(struct xlat *x, unsigned r, unsigned s, unsigned host)
{
	unsigned h = cached(x, r);
	changed(x, r);
	if (!h) {
		put_gpr_mem(&x->e, r, s, host);
		return;
	}
	op_rr_sized(&x->e, s, s == 1 ? 0x88 : 0x89, host, h);   /* mov h, host (4: zero-extends) */
}

/* The cached registers the code changed, stored (on a way out or before
 * a call: the emitted state is not changed, the caller says what is
 * dirty after). */
static void writeback(struct xlat *x)
{
	for (unsigned r = 0; r < 16; r++)
		if (x->rc.dirty & (1u << r))
			store(&x->e, x->rc.host[r], R_CPU, GPR(r), 8);
}

/* Every cached register loaded from memory (after the entry, after a
 * handler call). */
static void reload(struct xlat *x)
{
	for (unsigned r = 0; r < 16; r++)
		if (x->rc.host[r])
			load(&x->e, x->rc.host[r], R_CPU, GPR(r), 8);
	x->rc.dirty = 0;
}

/* guest RSP += d (a byte), in its register or memory. */
static void add_rsp(struct xlat *x, int d)
{
	unsigned h = cached(x, EMU_RSP);
	if (x->pm.base == EMU_RSP)         /* the memo's address stays: its offset moves */
		x->pm.off -= d;
	if (h) {
		op_rr(&x->e, true, 0x83, 0, h);
		x->rc.dirty |= 1u << EMU_RSP;
	} else {
		op_mem(&x->e, true, 0x83, 0, R_CPU, GPR(EMU_RSP));
	}
	b1(&x->e, (unsigned)(d & 0xff));                   /* add rsp, d */
}

static void mov_imm(struct emit *e, unsigned dst, uint64_t v)
{
	if (v == (uint32_t)v) {
		rex(e, false, 0, dst, false);
		b1(e, 0xb8 | (dst & 7));
		b4(e, (uint32_t)v);
	} else if ((int64_t)v == (int32_t)v) {
		rex(e, true, 0, dst, false);
		b1(e, 0xc7);
		b1(e, 0xc0 | (dst & 7));
		b4(e, (uint32_t)v);
	} else {
		mov_imm64(e, dst, v);
	}
}

/* lea rax, [base + index * 2^shift + disp] (host registers; index not RSP) */
static void lea_sib(struct emit *e, unsigned base, unsigned index, unsigned shift, int32_t disp)
{
	unsigned mod = disp == 0 && (base & 7) != RBP ? 0 : disp == (int8_t)disp ? 1 : 2;
	b1(e, 0x48 | ((index >> 3) & 1) << 1 | ((base >> 3) & 1));
	b1(e, 0x8d);
	b1(e, mod << 6 | RAX << 3 | 4);
	b1(e, shift << 6 | (index & 7) << 3 | (base & 7));
	if (mod == 1)
		b1(e, (uint8_t)disp);
	else if (mod == 2)
		b4(e, (uint32_t)disp);
}

/* The linear address of op f's memory operand (f_lin) into RAX
 * (clobbers RCX; the host's flags only with_seg, for FS and GS): one LEA
 * when its registers are cached. */
static void lin(struct xlat *x, const struct emu_fop *f, bool with_seg)
{
	struct emit *e = &x->e;
	bool have = true;
	unsigned hb = cached(x, f->base), hi = cached(x, f->index);
	if (hb && f->index >= 16) {
		op_mem(e, true, 0x8d, RAX, hb, f->disp);          /* lea rax, [hb + disp] */
		goto seg;
	}
	if (hb && hi) {
		lea_sib(e, hb, hi, f->shift, f->disp);
		goto seg;
	}
	if (f->base < 16)
		get_gpr(x, RAX, f->base, 8);
	else if (f->base == EMU_RIPREL)
		load(e, RAX, R_C, CORE(blk_rip), 8);
	else
		have = false;
	if (f->index < 16) {
		unsigned to = have ? RCX : RAX;
		get_gpr(x, to, f->index, 8);
		if (have) {
			b1(e, 0x48);
			b1(e, 0x8d);
			b1(e, 0x04);
			b1(e, (unsigned)f->shift << 6 | RCX << 3 | RAX);   /* lea rax, [rax + rcx*s] */
		} else if (f->shift) {
			b1(e, 0x48);
			b1(e, 0x8d);
			b1(e, 0x04);
			b1(e, (unsigned)f->shift << 6 | RAX << 3 | RBP);
			b4(e, 0);                                 /* lea rax, [rax*s] */
		}
		have = true;
	}
	if (!have) {
		mov_imm(e, RAX, (uint64_t)(int64_t)f->disp);
	} else if (f->disp) {
		op_mem(e, true, 0x8d, RAX, RAX, f->disp);        /* lea rax, [rax + disp] */
	}
seg:
	if (with_seg && (f->seg == EMU_FS || f->seg == EMU_GS)) {
		int32_t off = f->seg == EMU_FS ? (int32_t)offsetof(struct emu_cpu, sregs.fs.base)
					       : (int32_t)offsetof(struct emu_cpu, sregs.gs.base);
		op_mem(e, true, 0x03, RAX, R_CPU, off);          /* add rax, [seg base] */
	}
}

/* dst = tlb_of(c, src) (dst one of the first eight; clobbers RDX). */
static void tlb_slot_of(struct emit *e, unsigned dst, unsigned src)
{
	mov_rr(e, dst, src);
	b1(e, 0x48);
	b1(e, 0xc1);
	b1(e, 0xe8 | dst);
	b1(e, 12);                                         /* shr dst, 12 */
	b1(e, 0x81);
	b1(e, 0xe0 | dst);
	b4(e, EMU_TLB_SIZE - 1);                           /* and dst32 */
	b1(e, 0x48);
	b1(e, 0x8d);
	b1(e, dst << 3 | 4);
	b1(e, 0x80 | dst << 3 | dst);                      /* lea dst, [dst + dst*4] */
	load(e, RDX, R_C, CORE(ftlb), 8);
	b1(e, 0x48);
	b1(e, 0x8d);
	b1(e, dst << 3 | 4);
	b1(e, 0xc0 | dst << 3 | RDX);                      /* lea dst, [rdx + dst*8] */
}

/* The TLB look-up of s bytes at RAX as the handlers' ACCESS does it: the
 * host address in RSI, or a jump (returned, for land()) when the entry
 * does not allow the access as it is. */
static uint8_t *tlb(struct emit *e, unsigned s, bool write)
{
	tlb_slot_of(e, RCX, RAX);
	op_mem(e, true, 0x8d, RDX, RAX, (int32_t)s - 1);   /* lea rdx, [rax + s - 1] */
	b1(e, 0x48);
	b1(e, 0x81);
	b1(e, 0xe2);
	b4(e, (uint32_t)X86_PAGE_MASK);                    /* and rdx, page mask */
	op_mem(e, true, 0x3b, RDX, RCX, write ? (int32_t)offsetof(struct emu_tlb_entry, tag_w)
						: (int32_t)offsetof(struct emu_tlb_entry, tag_r));
	uint8_t *miss = jump_fwd(e, 5);                    /* jne miss */
	load(e, RSI, RCX, (int32_t)offsetof(struct emu_tlb_entry, host), 8);
	b1(e, 0x25);
	b4(e, X86_PAGE_SIZE - 1);                          /* and eax, 0xfff */
	op_rr(e, true, 0x01, RAX, RSI);                    /* add rsi, rax */
	return miss;
}

/* RDX = RAX op RCX at size s, the host's flags those of the guest's op
 * (CMP as SUB, TEST as AND: their result is recorded too). */
static void alu_op(struct emit *e, unsigned op, unsigned s)
{
	static const unsigned opc[] = {
		[A_ADD] = 0x01, [A_SUB] = 0x29, [A_CMP] = 0x29, [A_AND] = 0x21,
		[A_OR] = 0x09, [A_XOR] = 0x31, [A_TEST] = 0x21,
	};
	mov_rr(e, RDX, RAX);
	if (s == 2)
		b1(e, 0x66);
	op_rr(e, s == 8, s == 1 ? opc[op] - 1 : opc[op], RCX, RDX);
}

/* emu_lf_record(c, lf, a, b, r, s) with a, b and r (masked) in registers;
 * a logic op's flags are its result's alone (emu_flags.h: nothing reads
 * its lf_a and lf_b), so only that is stored. b_imm: b is the immediate
 * imm (sign-extended from 32 bits), not register b. */
static void record_b(struct emit *e, unsigned lf, unsigned s, unsigned a, unsigned b, unsigned r,
		     bool b_imm, int32_t imm)
{
	b1(e, 0x66);
	op_mem(e, false, 0xc7, 0, R_C, CORE(lf_op));
	b1(e, lf);
	b1(e, s);                                          /* mov word lf_op/lf_size */
	if (lf != EMU_LF_LOGIC) {
		store(e, a, R_C, CORE(lf_a), 8);
		if (b_imm) {
			op_mem(e, true, 0xc7, 0, R_C, CORE(lf_b));
			b4(e, (uint32_t)imm);              /* mov qword lf_b, imm */
		} else {
			store(e, b, R_C, CORE(lf_b), 8);
		}
	}
	store(e, r, R_C, CORE(lf_r), 8);
}

static void record_as(struct emit *e, unsigned lf, unsigned s, unsigned a, unsigned b, unsigned r)
{
	record_b(e, lf, s, a, b, r, false, 0);
}

/* That of the ALU op just done: a in RAX, b in RCX, r in RDX. */
static unsigned lf_of_alu(unsigned op);
static void record(struct emit *e, unsigned op, unsigned s)
{
	record_as(e, lf_of_alu(op), s, RAX, RCX, RDX);
}

/* An operation at size s on register rm: the operand-size prefix and
 * REX.W as s wants, and the opcode's 8-bit form (opc - 1) for 1. */
static void op_sized(struct emit *e, unsigned s, unsigned opc, unsigned reg, unsigned rm)
{
	if (s == 2)
		b1(e, 0x66);
	op_rr(e, s == 8, s == 1 ? opc - 1 : opc, reg, rm);
}

/* --- memory accesses -------------------------------------------------------------- */

/* A template's memory access: size bytes at lin(f), or (keyed) at guest
 * register base (MEMO_RIP: the block's RIP) + disp, which a page memo
 * may serve. */
struct access {
	const struct emu_fop *f;       /* NULL: keyed only (the stack) */
	bool keyed, write;
	uint8_t base;
	unsigned size;
	int32_t disp;
};

static struct access access_of(const struct emu_fop *f, const struct fop_info *fi)
{
	struct access a = { .f = f, .disp = f->disp };
	a.size = fi->tmpl == T_MOVZX || fi->tmpl == T_MOVSX ? fi->ssize : fi->size;
	a.write = fi->tmpl == T_PUSH ||
		  (fi->form >= FORM_MR && (fi->tmpl == T_MOV || (fi->alu != A_CMP && fi->alu != A_TEST)));
	if (fi->tmpl == T_PUSH || fi->tmpl == T_POP) {
		a = (struct access){ .keyed = true, .write = a.write, .base = EMU_RSP, .size = 8,
				     .disp = fi->tmpl == T_PUSH ? -8 : 0 };
	} else if (f->index >= 16 && f->seg != EMU_FS && f->seg != EMU_GS &&
		   (f->base < 16 || f->base == EMU_RIPREL)) {
		a.keyed = true;
		a.base = f->base < 16 ? f->base : MEMO_RIP;
	}
	return a;
}

/* RAX = the address of access a (clobbers RCX; the host's flags). */
static void address(struct xlat *x, const struct access *a)
{
	if (!a->keyed) {
		lin(x, a->f, true);
		return;
	}
	unsigned h = cached(x, a->base);
	if (h) {
		op_mem(&x->e, true, 0x8d, RAX, h, a->disp);       /* lea rax, [h + disp] */
		return;
	}
	if (a->base == MEMO_RIP)
		load(&x->e, RAX, R_C, CORE(blk_rip), 8);
	else
		get_gpr(x, RAX, a->base, 8);
	if (a->disp)
		op_mem(&x->e, true, 0x8d, RAX, RAX, a->disp);     /* lea rax, [rax + disp] */
}

/* The slot's key of access a: its base register (MEMO_RIP: RIP-relative;
 * else its index's, or none), FS or GS apart, reads and writes apart (a
 * copy's source and destination, a read-only table). */
static unsigned slot_key(const struct access *a)
{
	const struct emu_fop *f = a->f;
	unsigned k = a->keyed ? a->base : f->base < 16 ? f->base : f->base == EMU_RIPREL ? MEMO_RIP
		   : f->index < 16 ? 17u + f->index : 33;
	if (!a->keyed)
		k |= f->seg == EMU_FS ? 64u : f->seg == EMU_GS ? 128u : 0;
	return k | (a->write ? 256u : 0);
}

/* The slot access a goes through (-1: none, the TLB look-up alone). */
static int slot_of(const struct xlat *x, const struct access *a)
{
	unsigned key = slot_key(a) + 1;
	for (unsigned i = 0; i < MEMO_SLOTS; i++)
		if (x->sp.key[i] == key)
			return (int)i;
	return -1;
}

/* lea rsp, [rsp + d]: the frame made or dropped (the flags kept). */
static void frame_lea(struct emit *e, int32_t d)
{
	op_mem(e, true, 0x8d, RSP, RSP, d);
	if (d != (int8_t)d)                        /* INNER counts the short form */
		abort();
}

/* The host address of access a (at RAX) into RSI through slot i: its
 * page's when RAX - page is under the bound, else (out of line) the TLB
 * look-up, which fills the slot when it allows the slot's kind (a jump
 * into miss when it does not allow the access). Clobbers RAX, RCX, RDX. */
static void slot_access(struct xlat *x, const struct access *a, unsigned i,
			struct pending *miss)
{
	struct emit *e = &x->e;
	mov_rr(e, RSI, RAX);
	op_mem(e, true, 0x2b, RSI, R_C, SLOT(i));          /* sub rsi, [page] */
	op_mem(e, true, 0x3b, RSI, R_C, SLOT(i) + 16);     /* cmp rsi, [bound] */
	uint8_t *out = jump_fwd(e, 3);                     /* jae: not in the slot */
	op_mem(e, true, 0x03, RSI, R_C, SLOT(i) + 8);      /* add rsi, [host] */
	tally_at(x, &x->j->slot_hits, 1, RDX);
	to_cold(x);
	land(e, out);
	tally_at(x, &x->j->slot_misses, 1, RDX);
	miss->at[miss->n++] = tlb(e, a->size, a->write);
	store(e, RDX, R_C, SLOT(i), 8);                    /* the page (tlb: RDX) */
	load(e, RDX, RCX, (int32_t)offsetof(struct emu_tlb_entry, host), 8);
	store(e, RDX, R_C, SLOT(i) + 8, 8);
	op_mem(e, true, 0xc7, 0, R_C, SLOT(i) + 16);
	b4(e, SLOT_BOUND);                                 /* mov qword [bound], imm */
	jump_to(e, 16, x->other);
	to_hot(x);
}

/* Does the memo serve access a? (Its page, the same kind, within reach.) */
static bool memo_serves(const struct xlat *x, const struct access *a)
{
	const struct page_memo *m = &x->pm;
	int64_t delta = (int64_t)a->disp - m->off;
	return a->keyed && m->valid && m->base == a->base && m->write == a->write &&
	       delta > -(int64_t)X86_PAGE_SIZE && delta < (int64_t)X86_PAGE_SIZE;
}

/* The host address of access a into RSI, or a jump into miss when the
 * TLB does not allow it as it is (clobbers RAX, RCX, RDX; the host's
 * flags). Through the memo when it serves (its page's offset + the
 * distance still in the page; else the look-up, out of line), else the
 * TLB look-up, which a keyed access leaves as the memo. */
static void emit_access(struct xlat *x, const struct access *a, struct pending *miss)
{
	struct emit *e = &x->e;
	struct page_memo *m = &x->pm;
	if (!memo_serves(x, a)) {
		address(x, a);
		int i = slot_of(x, a);
		if (i >= 0)
			slot_access(x, a, (unsigned)i, miss);
		else
			miss->at[miss->n++] = tlb(e, a->size, a->write);
		if (a->keyed) {
			mov_rr(e, RDI, RSI);
			*m = (struct page_memo){ .valid = true, .write = a->write, .base = a->base,
						 .size = (uint8_t)a->size, .off = a->disp };
		}
		return;
	}
	int32_t delta = a->disp - m->off;
	if (delta == 0 && a->size <= m->size) {
		mov_rr(e, RSI, RDI);
		return;
	}
	struct pending far = { .n = 0 };
	op_rr(e, false, 0x8b, RDX, RDI);                   /* mov edx, edi */
	b1(e, 0x81);
	b1(e, 0xe2);
	b4(e, X86_PAGE_SIZE - 1);                          /* and edx, 0xfff */
	op_mem(e, false, 0x8d, RDX, RDX, delta);           /* lea edx, [rdx + delta] */
	b1(e, 0x81);
	b1(e, 0xfa);
	b4(e, X86_PAGE_SIZE - a->size);                    /* cmp edx, page - size */
	to_slow(e, &far, 7);                               /* ja: not all in the page */
	op_mem(e, true, 0x8d, RSI, RDI, delta);            /* lea rsi, [rdi + delta] */
	to_cold(x);
	land_all(e, &far);
	address(x, a);
	miss->at[miss->n++] = tlb(e, a->size, a->write);
	jump_to(e, 16, x->other);                          /* back, the memo as it was */
	to_hot(x);
}

/* After op k's handler ran it (its access's slow way), the memo pm
 * looked up again; when the TLB does not allow it any more, the block
 * is left after op k (at once: FS_NEXT, as a device access leaves). */
static void memo_restore(struct xlat *x, unsigned k, const struct page_memo *pm)
{
	struct emit *e = &x->e;
	struct access a = { .keyed = true, .write = pm->write, .base = pm->base, .size = pm->size,
			    .disp = pm->off };
	address(x, &a);
	uint8_t *gone = tlb(e, a.size, a.write);
	mov_rr(e, RDI, RSI);
	uint8_t *done = jump_fwd(e, 16);
	land(e, gone);
	writeback(x);
	count(x, k + 1);
	op_mem(e, true, 0x8d, RAX, R_OP, (int32_t)(k * sizeof(struct emu_fop)));   /* lea */
	store(e, RAX, R_C, CORE(blk_stop), 8);
	mov_imm(e, RAX, FS_NEXT);
	jump_to(e, 16, x->leave);
	land(e, done);
}

static bool has_template(const struct fop_info *fi);
static bool is_mem(const struct fop_info *fi);

/* The slots of translation x: each key of its accesses (the most used
 * first; ties: the first seen) in its way of the reads' or the writes'
 * slots, else the next free one: a base register keeps its slot from one
 * translation to the next as long as they do not need more. */
static void plan_slots(struct xlat *x)
{
	struct { unsigned key, uses; } seen[BLOCK_INSNS];
	unsigned n = 0;
	for (unsigned k = 0; k < x->b->n; k++) {
		const struct emu_fop *f = &x->b->op[k];
		struct fop_info fi = info_of(x->j, x->fn[k]);
		if (fi.tmpl == T_CROSS)
			fi = info_of(x->j, (fop_fn)(uintptr_t)x->b->op[k + 1].imm);
		struct access a;
		if (fi.tmpl == T_CALL || fi.tmpl == T_RET)
			a = (struct access){ .keyed = true, .write = fi.tmpl == T_CALL, .base = EMU_RSP,
					     .size = 8 };
		else if (fi.kind != FK_FUSED && has_template(&fi) && is_mem(&fi))
			a = access_of(f, &fi);
		else
			continue;
		unsigned key = slot_key(&a), j = 0;
		while (j < n && seen[j].key != key)
			j++;
		if (j == n)
			seen[n++] = (typeof(seen[0])){ .key = key };
		seen[j].uses++;
	}
	for (;;) {
		unsigned best = n;
		for (unsigned j = 0; j < n; j++)
			if (seen[j].uses && (best == n || seen[j].uses > seen[best].uses))
				best = j;
		if (best == n)
			return;
		unsigned key = seen[best].key, set = key & 256 ? EMU_SLOT_WAYS : 0;
		unsigned way = (key ^ key >> 2 ^ key >> 6) % EMU_SLOT_WAYS;
		for (unsigned t = 0; t < EMU_SLOT_WAYS; t++, way = (way + 1) % EMU_SLOT_WAYS)
			if (!x->sp.key[set + way]) {
				x->sp.key[set + way] = (uint16_t)(key + 1);
				break;
			}
		seen[best].uses = 0;
	}
}

/* --- the guest's flags as the host's --------------------------------------------------- */

/* The arithmetic flags of the lazy record (or the exact ones), for the
 * flags stub's cases without a host operation of their own. */
static uint64_t lazy_flags(const struct emu_cpu *cpu, const struct emu_core *c)
{
	if (c->lf_op == EMU_LF_NONE)
		return cpu->rflags & RFLAGS_ARITH;
	return emu_flags_eval(c->lf_op, c->lf_a, c->lf_b, c->lf_r, c->lf_size, c->lf_cf);
}

/* The host's flags = the arithmetic flags of operation lf at size s
 * recorded in c (lf_a, lf_b, lf_r): the operation done again on them,
 * with a carry in for ADC/SBB and the kept CF for INC/DEC (clobbers RAX
 * and RCX). False when the host has none that sets the same flags. */
static bool redo_op(struct emit *e, unsigned lf, unsigned s)
{
	static const unsigned opc[] = {
		[EMU_LF_ADD] = 0x03, [EMU_LF_SUB] = 0x3b, [EMU_LF_ADC] = 0x13, [EMU_LF_SBB] = 0x1b,
	};
	bool w = s == 8;
	switch (lf) {
	case EMU_LF_ADC: case EMU_LF_SBB:
		b1(e, 0xf9);                               /* stc */
		/* fall through */
	case EMU_LF_ADD: case EMU_LF_SUB:
		load(e, RAX, R_C, CORE(lf_a), 8);
		if (s == 2)
			b1(e, 0x66);
		op_mem(e, w, s == 1 ? opc[lf] - 1 : opc[lf], RAX, R_C, CORE(lf_b));   /* op rax, b */
		return true;
	case EMU_LF_LOGIC:
		load(e, RAX, R_C, CORE(lf_r), 8);
		op_sized(e, s, 0x85, RAX, RAX);            /* test rax, rax */
		return true;
	case EMU_LF_INC: case EMU_LF_DEC:
		load(e, RCX, R_C, CORE(lf_cf), 1);
		b1(e, 0xd1);
		b1(e, 0xe9);                               /* shr ecx, 1: CF = lf_cf */
		load(e, RAX, R_C, CORE(lf_a), 8);
		op_sized(e, s, 0xff, lf == EMU_LF_DEC, RAX);   /* inc/dec rax: CF kept */
		return true;
	default:
		return false;
	}
}

#define STUB_CASES 160                 /* lf_op * 16 + lf_size */

/* The flags stub, at the start of the arena: called from a translation,
 * it sets the host's flags to the guest's from c's lazy record or
 * cpu->rflags (clobbers what a call may), dispatching on lf_op and
 * lf_size to the operation done again (redo_op), else lazy_flags through
 * POPF (of the arithmetic bits only). */
static size_t emit_host_flags(struct emu_jit *j)
{
	struct emit e0 = { .p = j->rw, .to_rx = j->rx - j->rw }, *e = &e0;
	load(e, RAX, R_C, CORE(lf_op), 1);
	load(e, RCX, R_C, CORE(lf_size), 1);
	b1(e, 0xc1);
	b1(e, 0xe0);
	b1(e, 4);                                          /* shl eax, 4 */
	op_rr(e, false, 0x09, RCX, RAX);                   /* or eax, ecx */
	b1(e, 0x3d);
	b4(e, STUB_CASES);                                 /* cmp eax, cases */
	uint8_t *other = jump_fwd(e, 3);                   /* jae */
	b1(e, 0x48);
	b1(e, 0x8d);
	b1(e, 0x15);
	uint8_t *table_rel = e->p;
	b4(e, 0);                                          /* lea rdx, [rip + table] */
	b1(e, 0xff);
	b1(e, 0x24);
	b1(e, 0xc2);                                       /* jmp [rdx + rax*8] */
	uintptr_t at[STUB_CASES];
	land(e, other);
	uintptr_t generic = rx_of(e, e->p);
	push(e, R10);                                      /* cached guest registers */
	push(e, R11);
	push(e, RDI);                                      /* the page memo; aligned */
	mov_rr(e, RDI, R_CPU);
	mov_rr(e, RSI, R_C);
	mov_imm64(e, RAX, (uint64_t)(uintptr_t)lazy_flags);
	b1(e, 0xff);
	b1(e, 0xd0);                                       /* call rax */
	pop(e, RDI);
	pop(e, R11);
	pop(e, R10);
	uint8_t *popf = e->p;
	push(e, RAX);
	b1(e, 0x9d);                                       /* popfq */
	b1(e, 0xc3);
	for (unsigned i = 0; i < STUB_CASES; i++)
		at[i] = generic;
	for (unsigned i = 0; i < 16; i++)
		at[i] = rx_of(e, e->p);                    /* EMU_LF_NONE: rflags */
	load(e, RAX, R_CPU, (int32_t)offsetof(struct emu_cpu, rflags), 8);
	b1(e, 0x25);
	b4(e, RFLAGS_ARITH);                               /* and eax, arith */
	jump_to(e, 16, popf);
	for (unsigned lf = 1; lf < STUB_CASES / 16; lf++) {
		for (unsigned s = 1; s <= 8; s *= 2) {
			uint8_t *p = e->p;
			if (!redo_op(e, lf, s))
				break;
			b1(e, 0xc3);
			at[lf * 16 + s] = rx_of(e, p);
		}
	}
	while ((uintptr_t)e->p & 7)
		b1(e, 0xcc);
	uint32_t d = (uint32_t)(e->p - (table_rel + 4));
	memcpy(table_rel, &d, 4);
	for (unsigned i = 0; i < STUB_CASES; i++)
		b8(e, at[i]);
	return (size_t)(e->p - j->rw + 15) & ~(size_t)15;
}

static void call_host_flags(struct xlat *x)
{
	b1(&x->e, 0xe8);
	b4(&x->e, (uint32_t)(int32_t)(x->host_flags - (x->e.p + 4)));   /* call rel32 */
}

/* Before a condition or a carry is read: the host's flags made the
 * guest's, from the record when the translation knows it, else by the
 * flags stub (clobbers what a call may). */
static void need_flags(struct xlat *x)
{
	if (x->fl.host)
		return;
	settle(x);
	if (x->fl.host)
		return;
	if (!x->fl.lf || !redo_op(&x->e, x->fl.lf, x->fl.size))
		call_host_flags(x);
	x->fl.host = true;
}

static uint64_t cf_now(const struct emu_cpu *cpu, const struct emu_core *c)
{
	return emu_cf_now(cpu, c);
}

/* R8 = the guest's CF (0 or 1), for a carry in: from the host's flags
 * when they are the guest's or the record can be redone (then they are
 * the guest's afterwards), else emu_cf_now's (clobbers what a call may;
 * the host's flags not the guest's). */
static void need_cf(struct xlat *x)
{
	struct emit *e = &x->e;
	if (!x->fl.host)
		settle(x);
	if (x->fl.host || (x->fl.lf && redo_op(e, x->fl.lf, x->fl.size))) {
		x->fl.host = true;
		op_rr(e, false, 0x0f92, 0, R8);            /* setc r8b */
	} else {
		push(e, R10);                              /* cached registers a call clobbers */
		push(e, R11);
		push(e, RDI);                              /* the page memo */
		b1(e, 0x48);
		b1(e, 0x83);
		b1(e, 0xec);
		b1(e, 8);                                  /* sub rsp, 8: aligned */
		mov_rr(e, RDI, R_CPU);
		mov_rr(e, RSI, R_C);
		mov_imm64(e, RAX, (uint64_t)(uintptr_t)cf_now);
		b1(e, 0xff);
		b1(e, 0xd0);                               /* call rax */
		b1(e, 0x48);
		b1(e, 0x83);
		b1(e, 0xc4);
		b1(e, 8);                                  /* add rsp, 8 */
		pop(e, RDI);
		pop(e, R11);
		pop(e, R10);
		op_rr(e, false, 0x0fb6, R8, RAX);          /* movzx r8d, al */
	}
	op_rr(e, false, 0x0fb6, R8, R8);                   /* movzx r8d, r8b */
}

/* After an operation that records lf at size s, done on the host with
 * the same flags. */
static void flags_done(struct xlat *x, unsigned lf, unsigned s)
{
	x->fl = (struct flag_state){ .host = true, .lf = (uint8_t)lf, .size = (uint8_t)s };
}

static void flags_unknown(struct xlat *x)
{
	x->fl = (struct flag_state){ .host = false, .lf = 0 };
}

/* After a shift (fi->alu: 0 SHL, 1 SHR, 2 SAR) of a in register a to r in
 * register r (not RSI or R8) by a count it did not mask to 0, the host's
 * CF still its own: the record as shl_ri & co. make it (OF: SHL msb(r) !=
 * CF, SHR msb(a)). */
static void shift_record(struct emit *e, const struct fop_info *fi, unsigned a, unsigned r)
{
	unsigned s = fi->size, top = s * 8 - 1;
	op_rr(e, false, 0x0f92, 0, R8);                    /* setc r8b */
	op_rr(e, false, 0x0fb6, R8, R8);                   /* movzx r8d, r8b */
	if (fi->alu < 2) {
		mov_rr(e, RSI, fi->alu == 0 ? r : a);
		b1(e, 0x48);
		b1(e, 0xc1);
		b1(e, 0xee);
		b1(e, top);                                /* shr rsi, top */
		if (fi->alu == 0) {
			b1(e, 0x83);
			b1(e, 0xe6);
			b1(e, 1);                          /* and esi, 1 */
			op_rr(e, false, 0x31, R8, RSI);    /* xor esi, r8d */
		}
		op_rr(e, false, 0x01, RSI, RSI);           /* add esi, esi */
		op_rr(e, false, 0x09, RSI, R8);            /* or r8d, esi */
	}
	record_as(e, EMU_LF_LOGIC_CO, s, r, R8, r);
}

/* The pending record (struct pend) written, from what it kept (clobbers
 * RAX, RCX, RDX, RSI, R8 and the host's flags: CMP's and TEST's done
 * again). The translation's state is left as it is: a slow way or a way
 * out writes it for itself, the hot part goes on with it pending. */
static void emit_pending(struct xlat *x)
{
	static const unsigned ext[3] = { 4, 5, 7 };
	struct emit *e = &x->e;
	const struct pend *p = &x->pd;
	unsigned s = p->size;
	if (!p->lf)
		return;
	if (p->kind == PEND_SHIFT) {
		struct fop_info fi = { .size = (uint8_t)s, .alu = p->alu };
		load(e, RAX, RSP, SPARE, s);                   /* the input */
		mov_rr(e, RDX, RAX);
		op_sized(e, s, 0xc1, ext[p->alu], RDX);
		b1(e, (unsigned)p->imm);                   /* the shift again */
		shift_record(e, &fi, RAX, RDX);
		return;
	}
	if (p->kind == PEND_CMP || p->lf != EMU_LF_LOGIC) {
		if (p->b < 16)
			get_gpr(x, RCX, p->b, 8);
		else
			mov_imm(e, RCX, (uint64_t)(int64_t)p->imm);
	}
	if (p->kind == PEND_CMP) {
		get_gpr(x, RAX, p->r, 8);
		alu_op(e, p->lf == EMU_LF_SUB ? A_SUB : A_AND, s);   /* r again, its flags */
	} else {
		get_gpr(x, RDX, p->r, s);                  /* r, zero-extended */
		if (p->lf != EMU_LF_LOGIC) {
			mov_rr(e, RAX, RDX);
			op_rr(e, true, p->lf == EMU_LF_ADD ? 0x29 : 0x01, RCX, RAX);   /* a = r -/+ b */
		}
	}
	record_as(e, p->lf, s, RAX, RCX, RDX);
}

/* The pending record written here, in the hot part: none pending after.
 * The host's flags stay the guest's if they were, but after an ADD's or
 * SUB's a (done again by the inverse op): then the record is redone. */
static void settle(struct xlat *x)
{
	const struct pend *p = &x->pd;
	if (!p->lf)
		return;
	emit_pending(x);
	if (p->kind == PEND_CMP)
		x->fl = (struct flag_state){ .host = true, .lf = p->lf, .size = p->size };
	else if (p->kind == PEND_SHIFT || p->lf != EMU_LF_LOGIC)
		x->fl = (struct flag_state){ .host = false, .lf = p->lf, .size = p->size };
	x->pd.lf = 0;
}

/* Before op f's code (fi): a pending record whose operands it may write
 * (its destination, RSP) written first, unless it sets all flags again
 * from registers alone (then nothing can look at the record before). */
static bool is_mem(const struct fop_info *fi);
static void settle_for(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	uint16_t w = (uint16_t)(1u << EMU_RSP);
	switch (fi->tmpl) {
	case T_ALU:
		if (!is_mem(fi) || fi->alu == A_CMP || fi->alu == A_TEST)
			return;
		break;
	case T_SHIFT: case T_NEG: case T_INC: case T_DEC: case T_ADC: case T_SBB: case T_IMUL:
	case T_NOP:
		return;
	default:
		break;
	}
	if (f->r0 < 16)
		w |= (uint16_t)(1u << f->r0);
	if (x->pd.lf && (x->pd.uses & w))
		settle(x);
}

/* SHL/SHR/SAR r, n (n within the width) as shl_ri & co. do it: on r's
 * host register when it has one (4 and 8 bytes). */
static void shift_reg(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	static const unsigned ext[3] = { 4, 5, 7 };
	struct emit *e = &x->e;
	unsigned s = fi->size, h = cached(x, f->r0), r = RDX;
	x->pd.lf = 0;                                      /* all flags set again */
	if (h && s >= 4) {
		if (fi->flags) {                           /* the input kept: the record pending */
			store(e, h, RSP, SPARE, 8);
			x->j->pended++;
			x->pd = (struct pend){ .lf = EMU_LF_LOGIC_CO, .size = (uint8_t)s,
					       .kind = PEND_SHIFT, .alu = fi->alu,
					       .imm = (int32_t)f->imm };
		}
		r = h;
		changed(x, f->r0);
	} else {
		get_gpr(x, RAX, f->r0, s);
		mov_rr(e, RDX, RAX);
	}
	op_sized(e, s, 0xc1, ext[fi->alu], r);             /* 4: zero-extends */
	b1(e, (unsigned)f->imm);
	if (r == RDX) {
		put_gpr(x, f->r0, s, RDX);
		if (fi->flags)
			shift_record(e, fi, RAX, r);
	}
	flags_unknown(x);
}

/* SHL/SHR/SAR r, CL as shl_rc & co. do it: a count masked to 0 changes
 * neither the flags nor their record. */
static void shift_cl(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	static const unsigned ext[3] = { 4, 5, 7 };
	struct emit *e = &x->e;
	unsigned s = fi->size;
	settle(x);                                         /* a count of 0 keeps them */
	get_gpr(x, RAX, f->r0, s);
	get_gpr(x, RCX, EMU_RCX, 1);
	b1(e, 0x83);
	b1(e, 0xe1);
	b1(e, s * 8 - 1);                                  /* and ecx, width - 1 */
	mov_rr(e, RDX, RAX);
	uint8_t *zero = jump_fwd(e, 4);                    /* jz */
	op_sized(e, s, 0xd3, ext[fi->alu], RDX);           /* shift rdx, cl */
	put_gpr(x, f->r0, s, RDX);
	shift_record(e, fi, RAX, RDX);
	uint8_t *done = jump_fwd(e, 16);
	land(e, zero);
	put_gpr(x, f->r0, s, RDX);
	land(e, done);
	flags_unknown(x);
}

/* CMOVcc r, r and SETcc r8 (the condition in f->imm), on the host's
 * flags made the guest's (neither changes them). */
static void cond_move(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned cc = (unsigned)f->imm & 15;
	need_flags(x);
	if (fi->tmpl == T_SETCC) {
		if (cached(x, f->r0)) {
			op_rr_sized(e, 1, 0x0f90 | cc, 0, cached(x, f->r0));   /* setcc r0 */
			changed(x, f->r0);
		} else {
			changed(x, f->r0);
			op_mem(e, false, 0x0f90 | cc, 0, R_CPU, GPR(f->r0));   /* setcc [r0] */
		}
		return;
	}
	get_gpr(x, RDX, f->r1, fi->size);
	get_gpr(x, RAX, f->r0, 8);
	op_rr(e, true, 0x0f40 | cc, RAX, RDX);             /* cmovcc rax, rdx */
	put_gpr(x, f->r0, fi->size, RAX);
}

/* ADC/SBB r, r/imm as adc_rr & co. do them: the carry in from the
 * guest's CF (on the host's), recorded as ADC/SBB when it is 1, else as
 * ADD/SUB; the host's flags are the guest's afterwards. */
static void adc_sbb(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned s = fi->size, plain = fi->tmpl == T_ADC ? EMU_LF_ADD : EMU_LF_SUB;
	_Static_assert(EMU_LF_ADC - EMU_LF_ADD == 7 && EMU_LF_SBB - EMU_LF_SUB == 7,
		       "the carry's op is the plain one + 7");
	need_cf(x);
	x->pd.lf = 0;                                      /* all flags set again */
	b1(e, 0x46);
	b1(e, 0x8d);
	b1(e, 0x0c);
	b1(e, 0xc5);
	b4(e, plain);                                      /* lea r9d, [r8*8 + plain] */
	op_rr(e, false, 0x29, R8, R9);                     /* sub r9d, r8d: plain + 7 cin */
	get_gpr(x, RAX, f->r0, s);
	if (fi->form == FORM_RR)
		get_gpr(x, RCX, f->r1, s);
	else
		mov_imm(e, RCX, f->imm & msk(s));
	op_rr(e, false, 0x0fba, 4, R8);
	b1(e, 0);                                          /* bt r8d, 0: CF = cin */
	mov_rr(e, RDX, RAX);
	op_sized(e, s, fi->tmpl == T_ADC ? 0x11 : 0x19, RCX, RDX);   /* adc/sbb rdx, rcx */
	put_gpr(x, f->r0, s, RDX);
	store(e, R9, R_C, CORE(lf_op), 1);
	op_mem(e, false, 0xc6, 0, R_C, CORE(lf_size));
	b1(e, s);                                          /* mov byte lf_size, s */
	store(e, RAX, R_C, CORE(lf_a), 8);
	store(e, RCX, R_C, CORE(lf_b), 8);
	store(e, RDX, R_C, CORE(lf_r), 8);
	flags_done(x, 0, s);
}

/* INC/DEC/NEG/NOT r as inc_r & co. do them (INC and DEC keep CF: the
 * guest's, kept in lf_cf as the handlers keep it), on r's host register
 * when it has one (4 and 8 bytes). */
static void unary(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned s = fi->size, h = cached(x, f->r0), r = RDX;
	if (fi->tmpl == T_NOT) {
		if (h && s >= 4) {
			op_rr(e, s == 8, 0xf7, 2, h);      /* not h (4: zero-extends) */
			changed(x, f->r0);
			return;
		}
		get_gpr(x, RAX, f->r0, 8);
		op_rr(e, true, 0xf7, 2, RAX);              /* not rax */
		put_gpr(x, f->r0, s, RAX);
		return;
	}
	if (fi->tmpl != T_NEG) {
		need_cf(x);
		store(e, R8, R_C, CORE(lf_cf), 1);
	}
	x->pd.lf = 0;                                      /* all flags set again */
	if (h && s >= 4) {
		op_rr(e, s == 8, 0x8b, RAX, h);            /* a: mov rax, h */
		r = h;
		changed(x, f->r0);
	} else {
		get_gpr(x, RAX, f->r0, s);
		mov_rr(e, RDX, RAX);
	}
	unsigned ext = fi->tmpl == T_INC ? 0 : fi->tmpl == T_DEC ? 1 : 3;
	op_sized(e, s, fi->tmpl == T_NEG ? 0xf7 : 0xff, ext, r);
	if (r == RDX)
		put_gpr(x, f->r0, s, RDX);
	if (fi->tmpl == T_NEG) {
		mov_imm(e, RCX, 0);
		record_as(e, EMU_LF_SUB, s, RCX, RAX, r);      /* 0 - a */
		flags_done(x, EMU_LF_SUB, s);
		return;
	}
	unsigned lf = fi->tmpl == T_INC ? EMU_LF_INC : EMU_LF_DEC;
	record_b(e, lf, s, RAX, 0, r, true, 1);
	/* CF kept: the host's is the guest's only if it was before */
	x->fl = (struct flag_state){ .host = x->fl.host, .lf = (uint8_t)lf, .size = (uint8_t)s };
}

static unsigned lf_of_alu(unsigned op)
{
	return op == A_ADD ? EMU_LF_ADD : op == A_SUB || op == A_CMP ? EMU_LF_SUB : EMU_LF_LOGIC;
}

/* op rm, imm at size s (4 or 8; the immediate sign-extended from 32
 * bits), group 1's /ext. */
static void op_imm(struct emit *e, unsigned s, unsigned ext, unsigned rm, int32_t imm)
{
	if (imm == (int8_t)imm) {
		op_rr(e, s == 8, 0x83, ext, rm);
		b1(e, (unsigned)imm & 0xff);
	} else {
		op_rr(e, s == 8, 0x81, ext, rm);
		b4(e, (uint32_t)imm);
	}
}

/* ALU op f of register form at size 4 or 8 on its destination's host
 * register, when it has one, with an immediate as it is (CMP and TEST
 * write nothing, or nothing at all when their flags are dead): false
 * when not. Its record is left pending (struct pend) where what stays
 * makes it: the result, CMP's and TEST's a, and b (ADD's and SUB's of a
 * register other than the destination); else it is written here, b as
 * it is (not masked to the size: the flags' evaluation masks it). */
static bool alu_direct(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	static const unsigned opc[] = {
		[A_ADD] = 0x01, [A_SUB] = 0x29, [A_CMP] = 0x39, [A_AND] = 0x21,
		[A_OR] = 0x09, [A_XOR] = 0x31, [A_TEST] = 0x85,
	};
	static const unsigned ext[] = {
		[A_ADD] = 0, [A_SUB] = 5, [A_CMP] = 7, [A_AND] = 4, [A_OR] = 1, [A_XOR] = 6,
	};
	struct emit *e = &x->e;
	unsigned s = fi->size, h = cached(x, f->r0), src = RCX, lf = lf_of_alu(fi->alu);
	bool cmp = fi->alu == A_CMP || fi->alu == A_TEST, ri = fi->form != FORM_RR;
	bool later = ri || f->r1 != f->r0 || cmp || lf == EMU_LF_LOGIC;
	uint64_t v = f->imm & msk(s);
	if (!h || s < 4 || (ri && s == 8 && (int64_t)v != (int32_t)v))
		return false;
	x->pd.lf = 0;                                      /* all flags set again */
	if (cmp && !fi->flags) {                           /* nothing to write */
		flags_unknown(x);
		return true;
	}
	if (!ri && cached(x, f->r1))
		src = cached(x, f->r1);
	else if (!ri)
		get_gpr(x, RCX, f->r1, s);
	if (fi->flags && !later)
		op_rr(e, s == 8, 0x8b, RAX, h);            /* a: mov rax, h */
	if (ri && fi->alu == A_TEST) {
		op_rr(e, s == 8, 0xf7, 0, h);
		b4(e, (uint32_t)v);                        /* test h, imm */
	} else if (ri) {
		op_imm(e, s, ext[fi->alu], h, (int32_t)v);
	} else {
		op_rr(e, s == 8, opc[fi->alu], src, h);    /* op h, src (4: zero-extends) */
	}
	if (!cmp)
		changed(x, f->r0);
	if (!fi->flags) {
		flags_unknown(x);
		return true;
	}
	if (later) {
		unsigned b = ri ? 16 : f->r1;
		x->j->pended++;
		x->pd = (struct pend){ .lf = (uint8_t)lf, .size = (uint8_t)s,
				       .kind = cmp ? PEND_CMP : PEND_RESULT, .r = f->r0,
				       .b = (uint8_t)b, .imm = (int32_t)v,
				       .uses = (uint16_t)(1u << f->r0 | (b < 16 ? 1u << b : 0)) };
	} else {
		record_as(e, lf, s, RAX, RAX, h);          /* op h, h: b is a */
	}
	flags_done(x, lf, s);
	return true;
}

/* After the code emitted for guest register r += d (64 bits), the memo
 * before it (was) through r, its address now at off - d from r. */
static void base_moved(struct xlat *x, const struct page_memo *was, unsigned r, int64_t d)
{
	int64_t off = (int64_t)was->off - d;
	if (was->valid && was->base == r && off == (int32_t)off) {
		x->pm = *was;
		x->pm.off = (int32_t)off;
	}
}

/* ALU op k of register form (RR, RI). */
static void alu_reg(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned s = fi->size;
	struct page_memo was = x->pm;
	bool moves = s == 8 && fi->form == FORM_RI && (fi->alu == A_ADD || fi->alu == A_SUB);
	int64_t d = (int64_t)(fi->alu == A_ADD ? f->imm : 0 - f->imm);   /* an imm32's */
	if (alu_direct(x, f, fi)) {
		if (moves)
			base_moved(x, &was, f->r0, d);
		return;
	}
	x->pd.lf = 0;                                      /* all flags set again */
	get_gpr(x, RAX, f->r0, s);
	if (fi->form == FORM_RR)
		get_gpr(x, RCX, f->r1, s);
	else
		mov_imm(e, RCX, f->imm & msk(s));
	alu_op(e, fi->alu, s);
	if (fi->alu != A_CMP && fi->alu != A_TEST)
		put_gpr(x, f->r0, s, RDX);
	if (moves)
		base_moved(x, &was, f->r0, d);
	if (fi->flags) {
		record(e, fi->alu, s);
		flags_done(x, lf_of_alu(fi->alu), s);
	} else {
		flags_unknown(x);
	}
}

/* A template with a memory operand: the access through the TLB, then
 * the instruction on the host address in RSI (an ALU op's record only
 * when rec: else a later op sets the flags again before anything looks). */
static void mem_body(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi, bool rec)
{
	struct emit *e = &x->e;
	unsigned s = fi->size;
	switch (fi->tmpl) {
	case T_MOV:
		if (fi->form == FORM_RM && s >= 4 && cached(x, f->r0)) {
			load(e, cached(x, f->r0), RSI, 0, s);      /* 4: zero-extends */
			changed(x, f->r0);
		} else if (fi->form == FORM_RM) {
			load(e, RDX, RSI, 0, s);
			put_gpr(x, f->r0, s, RDX);
		} else {
			if (fi->form == FORM_MR)
				get_gpr(x, RDX, f->r1, 8);
			else
				mov_imm(e, RDX, f->imm);
			store(e, RDX, RSI, 0, s);
		}
		return;
	case T_MOVZX:
		if (cached(x, f->r0)) {
			load(e, cached(x, f->r0), RSI, 0, fi->ssize);   /* zero-extends to 64 */
			changed(x, f->r0);
			return;
		}
		load(e, RDX, RSI, 0, fi->ssize);
		put_gpr(x, f->r0, s, RDX);
		return;
	case T_MOVSX:
		if (fi->ssize == 4)
			op_mem(e, true, 0x63, RDX, RSI, 0);
		else
			op_mem(e, true, fi->ssize == 1 ? 0x0fbe : 0x0fbf, RDX, RSI, 0);
		put_gpr(x, f->r0, s, RDX);
		return;
	case T_PUSH:
		get_gpr(x, RDX, f->r0, 8);
		store(e, RDX, RSI, 0, 8);
		add_rsp(x, -8);
		return;
	case T_POP:
		load(e, RDX, RSI, 0, 8);
		add_rsp(x, 8);
		put_gpr(x, f->r0, 8, RDX);
		return;
	default:                                           /* T_ALU */
		break;
	}
	bool writes = fi->alu != A_CMP && fi->alu != A_TEST;
	unsigned h = cached(x, f->r0);
	if (fi->form == FORM_RM && writes && h && s >= 4) {
		static const unsigned opc[] = {
			[A_ADD] = 0x01, [A_SUB] = 0x29, [A_AND] = 0x21, [A_OR] = 0x09, [A_XOR] = 0x31,
		};
		load(e, RCX, RSI, 0, s);
		if (fi->flags && rec)
			op_rr(e, s == 8, 0x8b, RAX, h);    /* a: mov rax, h */
		op_rr(e, s == 8, opc[fi->alu], RCX, h);    /* op h, rcx (4: zero-extends) */
		changed(x, f->r0);
		if (fi->flags && rec)
			record_as(e, lf_of_alu(fi->alu), s, RAX, RCX, h);
		return;
	}
	if (fi->form == FORM_RM) {
		load(e, RCX, RSI, 0, s);
		get_gpr(x, RAX, f->r0, s);
	} else {
		load(e, RAX, RSI, 0, s);
		if (fi->form == FORM_MR)
			get_gpr(x, RCX, f->r1, s);
		else
			mov_imm(e, RCX, f->imm & msk(s));
	}
	alu_op(e, fi->alu, s);
	if (writes && fi->form == FORM_RM)
		put_gpr(x, f->r0, s, RDX);
	else if (writes)
		store(e, RDX, RSI, 0, s);
	if (fi->flags && rec)
		record(e, fi->alu, s);
}

/* ROL/ROR r, n whose flags nobody sees (flags_dead_after): the result
 * only. */
static void rotate(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	get_gpr(x, RAX, f->r0, fi->size);
	op_sized(e, fi->size, 0xc1, fi->alu, RAX);         /* rol/ror rax, n */
	b1(e, (unsigned)f->imm);
	put_gpr(x, f->r0, fi->size, RAX);
	flags_unknown(x);
}

/* Are the flags op k leaves set again before anything can look at them?
 * (An op of the block after it sets all six from registers alone, with
 * only moves between: as drop_dead_flags in emu_fast_ops.c sees it.) */
static bool flags_dead_after(const struct xlat *x, unsigned k)
{
	for (unsigned i = k + 1; i < x->b->n; i++) {
		struct fop_info fi = info_of(x->j, x->fn[i]);
		bool reg = fi.form == FORM_RR || fi.form == FORM_RI;
		if (fi.kind == FK_FUSED)
			return true;
		if (fi.kind != FK_CALL)
			return false;
		switch (fi.tmpl) {
		case T_ALU: case T_IMUL:
			if (reg)
				return true;
			return false;
		case T_SHIFT:
			return true;
		case T_MOV: case T_MOVZX: case T_MOVSX:
			if (!reg)
				return false;
			break;
		case T_LEA: case T_NOT: case T_NOP:
			break;
		default:
			return false;
		}
	}
	return false;
}

/* IMUL r, r and IMUL r, r, imm as imul_rr & co. do them, on the cached
 * host registers when there are: CF = OF = the signed product does not
 * fit (recorded as b = 3), SF, ZF and PF the result's. */
static void imul_reg(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned s = fi->size, h = cached(x, f->r0), src = cached(x, f->r1), r = h ? h : RAX;
	x->pd.lf = 0;                                      /* all flags set again */
	if (!src) {
		get_gpr(x, RCX, f->r1, 8);
		src = RCX;
	}
	if (fi->form == FORM_RR) {
		if (!h)
			get_gpr(x, RAX, f->r0, 8);
		op_rr(e, s == 8, 0x0faf, r, src);          /* imul r, src (4: zero-extends) */
	} else {
		op_rr(e, s == 8, 0x69, r, src);
		b4(e, (uint32_t)f->imm);                   /* imul r, src, imm */
	}
	if (h)
		changed(x, f->r0);
	else
		put_gpr(x, f->r0, s, RAX);
	if (fi->flags) {
		op_rr(e, false, 0x0f92, 0, R8);            /* setc r8b */
		op_rr(e, false, 0x0fb6, R8, R8);           /* movzx r8d, r8b */
		b1(e, 0x47);
		b1(e, 0x8d);
		b1(e, 0x04);
		b1(e, 0x40);                               /* lea r8d, [r8 + r8*2] */
		record_as(e, EMU_LF_LOGIC_CO, s, r, R8, r);
	}
	flags_unknown(x);
}

/* Has op (described by fi) a template? */
static bool has_template(const struct fop_info *fi)
{
	switch (fi->tmpl) {
	case T_MOV: case T_ALU: case T_MOVZX: case T_MOVSX: case T_LEA: case T_PUSH:
	case T_POP: case T_NOP: case T_SHIFT: case T_CMOV: case T_SETCC: case T_ADC:
	case T_SBB: case T_INC: case T_DEC: case T_NEG: case T_NOT: case T_SHIFT_CL:
	case T_ROT:                                        /* where flags_dead_after */
		return true;
	case T_IMUL:
		return true;
	default:
		return false;
	}
}

static bool is_mem(const struct fop_info *fi)
{
	switch (fi->tmpl) {
	case T_PUSH: case T_POP:
		return true;
	case T_MOV: case T_ALU: case T_MOVZX: case T_MOVSX:
		return fi->form >= FORM_RM;
	default:
		return false;
	}
}

/* LEA r, [base + index * 2^shift + disp] (size 4 or 8, not RIP-relative)
 * as one host LEA on the cached registers there are (the others loaded
 * into RAX and RCX), into r's host register when it has one. */
static void lea_direct(struct xlat *x, const struct emu_fop *f, unsigned s)
{
	struct emit *e = &x->e;
	unsigned dst = cached(x, f->r0) ? cached(x, f->r0) : RAX, b = 16, i = 16;
	if (f->base < 16 && !(b = cached(x, f->base))) {
		get_gpr(x, RAX, f->base, 8);
		b = RAX;
	}
	if (f->index < 16 && !(i = cached(x, f->index))) {
		get_gpr(x, RCX, f->index, 8);
		i = RCX;
	}
	if (i == 16 && b == 16) {
		mov_imm(e, dst, (uint64_t)(int64_t)f->disp);
		if (s == 4)
			op_rr(e, false, 0x89, dst, dst);   /* mov dst32, dst32 */
	} else if (i == 16) {
		op_mem(e, s == 8, 0x8d, dst, b, f->disp);  /* lea dst, [b + disp] */
	} else {
		/* SIB: no base is base 101 with mod 00 (a disp32 follows); base
		 * 101 with a base (rbp, r13) wants a displacement */
		unsigned mod = b == 16 ? 0 : f->disp == 0 && (b & 7) != RBP ? 0 :
			       f->disp == (int8_t)f->disp ? 1 : 2;
		unsigned r = 0x40 | (s == 8) << 3 | ((dst >> 3) & 1) << 2 | ((i >> 3) & 1) << 1 |
			     (b == 16 ? 0 : (b >> 3) & 1);
		if (r != 0x40)
			b1(e, r);                          /* REX */
		b1(e, 0x8d);
		b1(e, mod << 6 | (dst & 7) << 3 | 4);
		b1(e, (unsigned)f->shift << 6 | (i & 7) << 3 | (b == 16 ? RBP : b & 7));
		if (mod == 1)
			b1(e, (unsigned)f->disp & 0xff);
		else if (mod == 2 || b == 16)
			b4(e, (uint32_t)f->disp);
	}
	if (dst == RAX)
		put_gpr(x, f->r0, s, RAX);
	else
		changed(x, f->r0);
}

/* Op f of a register form from its template. */
static void reg_template(struct xlat *x, const struct emu_fop *f, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	unsigned s = fi->size;
	switch (fi->tmpl) {
	case T_ALU:
		alu_reg(x, f, fi);
		return;
	case T_MOV: case T_MOVZX: {
		unsigned from = fi->tmpl == T_MOVZX ? fi->ssize : s;
		/* a cached destination of 4 or 8 bytes takes the value as it is */
		unsigned to = s >= 4 && cached(x, f->r0) ? cached(x, f->r0) : RDX;
		if (fi->form == FORM_RR || fi->tmpl == T_MOVZX)
			get_gpr(x, to, f->r1, from);
		else
			mov_imm(e, to, s == 8 ? f->imm : f->imm & msk(s));
		if (to == RDX)
			put_gpr(x, f->r0, s, RDX);
		else
			changed(x, f->r0);
		return;
	}
	case T_MOVSX:
		if (cached(x, f->r1))
			op_rr(e, true, fi->ssize == 4 ? 0x63 : fi->ssize == 1 ? 0x0fbe : 0x0fbf, RDX,
			      cached(x, f->r1));           /* movsx rdx, r1 (REX.W: spl-dil) */
		else if (fi->ssize == 4)
			op_mem(e, true, 0x63, RDX, R_CPU, GPR(f->r1));
		else
			op_mem(e, true, fi->ssize == 1 ? 0x0fbe : 0x0fbf, RDX, R_CPU, GPR(f->r1));
		put_gpr(x, f->r0, s, RDX);
		return;
	case T_LEA: {
		struct page_memo was = x->pm;
		if (s >= 4 && f->base != EMU_RIPREL) {
			lea_direct(x, f, s);
		} else {
			lin(x, f, false);
			put_gpr(x, f->r0, s, RAX);
		}
		if (s == 8 && f->base == f->r0 && f->index >= 16)
			base_moved(x, &was, f->r0, f->disp);
		return;
	}
	case T_SHIFT:
		shift_reg(x, f, fi);
		return;
	case T_SHIFT_CL:
		shift_cl(x, f, fi);
		return;
	case T_ROT:
		rotate(x, f, fi);
		return;
	case T_CMOV: case T_SETCC:
		cond_move(x, f, fi);
		return;
	case T_ADC: case T_SBB:
		adc_sbb(x, f, fi);
		return;
	case T_INC: case T_DEC: case T_NEG: case T_NOT:
		unary(x, f, fi);
		return;
	case T_IMUL:
		imul_reg(x, f, fi);
		return;
	default:                                           /* T_NOP */
		return;
	}
}

/* Op k from its template; its handler where the TLB does not allow the
 * access as it is (a call, or a tail jump when it is the last). */
static void template_op(struct xlat *x, unsigned k, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	const struct emu_fop *f = &x->b->op[k];
	if (!is_mem(fi)) {
		reg_template(x, f, fi);
		return;
	}
	bool alu = fi->tmpl == T_ALU;
	struct pending miss = { .n = 0 };
	struct access a = access_of(f, fi);
	emit_access(x, &a, &miss);
	bool rec = !alu || !fi->flags || !flags_dead_after(x, k);
	x->j->dead += !rec;
	mem_body(x, f, fi, rec);
	/* on the miss the cached registers hold what they held before the
	 * instruction, which writing back as dirty leaves as it is */
	uint16_t dirty = x->rc.dirty;
	struct page_memo pm = x->pm;
	to_cold(x);
	land_all(e, &miss);
	if (k + 1 == x->b->n) {
		count(x, k + 1);
		tail_op(x, k, x->fn[k]);
	} else {
		call_op(x, k, x->fn[k]);
		if (pm.valid)
			memo_restore(x, k, &pm);
		if (alu && fi->flags)              /* the exact handler's flags as the host's */
			call_host_flags(x);
		jump_to(e, 16, x->other);          /* back to the hot part */
	}
	to_hot(x);
	x->rc.dirty = dirty;
	x->pm = pm;
	/* the ALU op's flags are the host's on both ways, and its record
	 * the one written (or dead); anything else wrote no flags, but the
	 * look-up changed the host's */
	if (alu)
		x->pd.lf = 0;
	if (alu && fi->flags)
		x->fl = (struct flag_state){ .host = true, .lf = 0 };
	else if (alu)
		flags_unknown(x);
	else
		x->fl.host = false;
}

/* --- ways out ------------------------------------------------------------------------ */

/* Links. Each translation has two linked entries before its first
 * instruction, where another translation's way out jumps in with the
 * guest's RIP in R9, the instructions retired by then in RCX and, in RAX,
 * where to go when it may not go in (that way out's slow way):
 * link_far finds that R9 is its block's address through the TLB's
 * execute tag, as link_gpa does, and falls into link_near, which checks
 * what chain() checks (the block is current, the budget has room for it
 * whole, nothing is due) and sets the running block's fields as enter()
 * does. A way out to an address in its own block's page goes to
 * link_near: that address is in the same frame whatever the page tables
 * say. chain_left bounds only the stack of chains through handlers; a
 * link between translations is a jump, and does not count. */

#define BLK(field) ((int32_t)offsetof(struct emu_block, field))
/* the entry's pushes and moves (prologue) */
#define INNER 24
/* link_near - link_far (see link_far) */
#define LINK_FAR 78

/* Op k, the last, goes on into the next page (f_cross): its bytes there
 * compared with the block's copy (emu_block.tail) as f_cross does it,
 * with the bytes as immediates; when they differ, f_cross itself (which
 * leaves before it). Then the instruction is its handler's (f[1].imm). */
static fop_fn cross_check(struct xlat *x, unsigned k)
{
	struct emit *e = &x->e;
	const struct emu_block *b = x->b;
	unsigned len = (unsigned)((b->gpa + b->op[k].end) & (X86_PAGE_SIZE - 1));
	struct pending sl = { .n = 0 };
	load(e, RAX, R_C, CORE(blk_rip), 8);
	b1(e, 0x48);
	b1(e, 0x25);
	b4(e, (uint32_t)X86_PAGE_MASK);                    /* and rax, page mask */
	b1(e, 0x48);
	b1(e, 0x05);
	b4(e, X86_PAGE_SIZE);                              /* add rax, page */
	tlb_slot_of(e, RCX, RAX);
	op_mem(e, true, 0x3b, RAX, RCX, (int32_t)offsetof(struct emu_tlb_entry, tag_x));
	to_slow(e, &sl, 5);
	load(e, RSI, RCX, (int32_t)offsetof(struct emu_tlb_entry, host), 8);
	op_rr(e, true, 0x85, RSI, RSI);
	to_slow(e, &sl, 4);
	for (unsigned at = 0; at < len;) {
		unsigned n = len - at >= 8 ? 8 : len - at >= 4 ? 4 : len - at >= 2 ? 2 : 1;
		uint64_t v = 0;
		memcpy(&v, b->tail + at, n);
		if (n == 8) {
			mov_imm64(e, RDX, v);
			op_mem(e, true, 0x39, RDX, RSI, (int32_t)at);   /* cmp [rsi + at], rdx */
		} else {
			if (n == 2)
				b1(e, 0x66);
			op_mem(e, false, n == 1 ? 0x80 : 0x81, 7, RSI, (int32_t)at);
			if (n == 1)
				b1(e, (unsigned)v);
			else if (n == 2)
				b1(e, (unsigned)v), b1(e, (unsigned)(v >> 8));
			else
				b4(e, (uint32_t)v);                /* cmp [rsi + at], imm */
		}
		to_slow(e, &sl, 5);
		at += n;
	}
	to_cold(x);
	land_all(e, &sl);
	count(x, k);
	tally(x, JX_HANDLER, RAX);
	tail_op(x, k, x->fn[k]);
	to_hot(x);
	return (fop_fn)(uintptr_t)b->op[k + 1].imm;
}

/* To the slow way when something may be due (emu_cpu.due), where
 * may_go_on() decides. */
static void may_go_on_or(struct emit *e, struct pending *sl)
{
	op_mem(e, false, 0x80, 7, R_CPU, (int32_t)offsetof(struct emu_cpu, due));
	b1(e, 0);                                          /* cmp byte due, 0 */
	to_slow(e, sl, 5);
}

/* RCX = c->blk_ret + dret: the instructions retired on leaving. */
static void retired_then(struct emit *e, unsigned dret)
{
	load(e, RCX, R_C, CORE(blk_ret), 8);
	b1(e, 0x48);
	b1(e, 0x81);
	b1(e, 0xc1);
	b4(e, dret);                                       /* add rcx, dret */
}

/* To the slow way unless the budget has room for n more instructions
 * after the RCX retired (scratch: a register it may use). */
static void budget_or(struct emit *e, struct pending *sl, unsigned n, unsigned scratch)
{
	op_mem(e, true, 0x8d, scratch, RCX, (int32_t)n);  /* lea scratch, [rcx + n] */
	op_mem(e, true, 0x3b, scratch, R_C, CORE(budget_end));
	to_slow(e, sl, 7);                                 /* ja */
}

/* To the slow way unless block RAX is current (block_current). */
static void current_or(struct emit *e, struct pending *sl)
{
	load(e, RCX, RAX, BLK(frame), 8);
	load(e, RDX, R_C, CORE(code_ver), 8);
	b1(e, 0x8b);
	b1(e, 0x14);
	b1(e, 0x8a);                                       /* mov edx, [rdx + rcx*4] */
	op_mem(e, true, 0x03, RDX, R_C, CORE(code_gen));   /* add rdx: code_stamp */
	op_mem(e, true, 0x3b, RDX, RAX, BLK(stamp));
	to_slow(e, sl, 5);
}

/* R8 = link_gpa(c, R9): the physical address of the guest's RIP in R9,
 * in the running block's page without a look-up, else through the TLB's
 * execute tag; to the slow way when it has none. same: R9 is known to
 * be in the block's page (1), known not to be (0), or not known (-1). */
static void link_gpa_of(struct emit *e, struct pending *sl, int same)
{
	uint8_t *other = NULL, *done = NULL;
	if (same < 0) {
		mov_rr(e, RDX, R9);
		op_mem(e, true, 0x33, RDX, R_C, CORE(blk_rip));     /* xor rdx, blk_rip */
		b1(e, 0x48);
		b1(e, 0xc1);
		b1(e, 0xea);
		b1(e, 12);                                         /* shr rdx, 12 */
		other = jump_fwd(e, 5);                            /* jnz */
	}
	if (same != 0) {
		load(e, R8, R_C, CORE(blk), 8);
		load(e, R8, R8, BLK(gpa), 8);
		op_rr(e, true, 0x31, R9, R8);                      /* xor r8, r9 */
		b1(e, 0x49);
		b1(e, 0x81);
		b1(e, 0xe0);
		b4(e, (uint32_t)X86_PAGE_MASK);                    /* and r8, page mask */
		op_rr(e, true, 0x31, R9, R8);                      /* xor r8, r9: page | offset */
		if (same < 0)
			done = jump_fwd(e, 16);
	}
	if (other)
		land(e, other);
	if (same <= 0) {
		tlb_slot_of(e, RCX, R9);
		mov_rr(e, RDX, R9);
		b1(e, 0x48);
		b1(e, 0x81);
		b1(e, 0xe2);
		b4(e, (uint32_t)X86_PAGE_MASK);                    /* and rdx, page mask */
		op_mem(e, true, 0x3b, RDX, RCX, (int32_t)offsetof(struct emu_tlb_entry, tag_x));
		to_slow(e, sl, 5);
		mov_rr(e, R8, R9);
		b1(e, 0x41);
		b1(e, 0x81);
		b1(e, 0xe0);
		b4(e, X86_PAGE_SIZE - 1);                          /* and r8d, 0xfff */
		op_mem(e, true, 0x03, R8, RCX, (int32_t)offsetof(struct emu_tlb_entry, gpa));
	}
	if (done)
		land(e, done);
}

/* RAX = the block chain() would enter at R8 (link_gpa): kf's link when it
 * fits, else the table's (as chain_slow finds it; then the link), else
 * to the slow way. */
static void linked_block(struct xlat *x, unsigned kf, struct pending *sl)
{
	struct emit *e = &x->e;
	int32_t link = (int32_t)(kf * sizeof(struct emu_fop) + offsetof(struct emu_fop, link));
	struct pending find = { .n = 0 };
	load(e, RAX, R_OP, link, 8);
	op_rr(e, true, 0x85, RAX, RAX);
	to_slow(e, &find, 4);                              /* no link */
	op_mem(e, true, 0x39, R8, RAX, BLK(gpa));
	to_slow(e, &find, 5);
	current_or(e, &find);
	uint8_t *linked = jump_fwd(e, 16);
	land_all(e, &find);
	mov_rr(e, RCX, R8);
	b1(e, 0x48);
	b1(e, 0xc1);
	b1(e, 0xe9);
	b1(e, BLOCK_SLOT_BITS);                            /* shr rcx, BLOCK_SLOT_BITS */
	mov_rr(e, RDX, R8);
	b1(e, 0x48);
	b1(e, 0xc1);
	b1(e, 0xea);
	b1(e, 2 * BLOCK_SLOT_BITS);                        /* shr rdx, 2 * BLOCK_SLOT_BITS */
	op_rr(e, true, 0x31, RDX, RCX);                    /* xor rcx, rdx */
	op_rr(e, true, 0x31, R8, RCX);                     /* xor rcx, r8 */
	b1(e, 0x81);
	b1(e, 0xe1);
	b4(e, BLOCK_SLOTS - 1);                            /* and ecx: block_index */
	load(e, RDX, R_C, CORE(blocks), 8);
	b1(e, 0x48);
	b1(e, 0x8b);
	b1(e, 0x04);
	b1(e, 0xca);                                       /* mov rax, [rdx + rcx*8] */
	op_rr(e, true, 0x85, RAX, RAX);
	to_slow(e, sl, 4);
	op_mem(e, true, 0x39, R8, RAX, BLK(gpa));
	to_slow(e, sl, 5);
	op_mem(e, false, 0x80, 7, RAX, BLK(n));
	b1(e, 0);                                          /* cmp byte n, 0 */
	to_slow(e, sl, 4);
	current_or(e, sl);
	store(e, RAX, R_OP, link, 8);
	land(e, linked);
}

/* lea reg, [rip + rel32]: the rel32's place, for land(). */
static uint8_t *lea_fwd(struct emit *e, unsigned reg)
{
	rex(e, true, reg, 0, false);
	b1(e, 0x8d);
	b1(e, (reg & 7) << 3 | 5);
	b4(e, 0);
	return e->p - 4;
}

/* The linked entries of translation x->b (see Links above), as its
 * prologue lays them: link_far, then link_near LINK_FAR bytes on, which
 * falls into the first instruction. fail: a "jmp rax". */
static void link_far(struct xlat *x, const uint8_t *fail)
{
	struct emit *e = &x->e;
	struct pending sl = { .to = fail };
	uint64_t off = x->b->gpa & (X86_PAGE_SIZE - 1);
	tlb_slot_of(e, RSI, R9);
	/* R9 at the block's offset in a page the TLB executes (a tag is a
	 * page's address or ~0, never R9 - off when that is not one) ... */
	b1(e, 0x49);
	b1(e, 0x8d);
	b1(e, 0x91);
	b4(e, (uint32_t)-(int32_t)off);                    /* lea rdx, [r9 - off] (disp32) */
	b1(e, 0xf7);
	b1(e, 0xc2);
	b4(e, X86_PAGE_SIZE - 1);                          /* test edx, 0xfff */
	to_slow(e, &sl, 5);
	op_mem(e, true, 0x3b, RDX, RSI, (int32_t)offsetof(struct emu_tlb_entry, tag_x));
	to_slow(e, &sl, 5);
	/* ... that is the block's frame */
	mov_imm64(e, RDI, x->b->gpa - off);
	op_mem(e, true, 0x3b, RDI, RSI, (int32_t)offsetof(struct emu_tlb_entry, gpa));
	to_slow(e, &sl, 5);
}

static void link_near(struct xlat *x, const uint8_t *fail)
{
	struct emit *e = &x->e;
	const struct emu_block *b = x->b;
	struct pending sl = { .to = fail };
	mov_imm64(e, RDX, (uint64_t)(uintptr_t)b);
	load(e, RSI, R_C, CORE(code_ver), 8);
	if (b->frame * 4 <= INT32_MAX) {
		load(e, RSI, RSI, (int32_t)(b->frame * 4), 4);
	} else {
		mov_imm64(e, RDI, b->frame * 4);
		op_rr(e, true, 0x01, RDI, RSI);            /* add rsi, rdi */
		load(e, RSI, RSI, 0, 4);
	}
	op_mem(e, true, 0x03, RSI, R_C, CORE(code_gen));   /* add rsi: code_stamp */
	op_mem(e, true, 0x3b, RSI, RDX, BLK(stamp));
	to_slow(e, &sl, 5);                                /* block_current */
	budget_or(e, &sl, b->n, RSI);
	may_go_on_or(e, &sl);
	store(e, RCX, R_C, CORE(blk_ret), 8);
	store(e, R9, R_C, CORE(blk_rip), 8);
	store(e, RDX, R_C, CORE(blk), 8);
	op_mem(e, true, 0x8d, R_OP, RDX, BLK(op));         /* lea r13, b->op */
}

/* The way out of the block at fop kf to the guest's RIP in R9 (the block
 * start + t, or wherever when t is NOWHERE: R9 is set, a RET), as
 * chain() does it (dret instructions retired by then): into the linked
 * entry of the translation there, else the handler fn on kf (with R9 as
 * its fourth argument: emu_fop_chain).
 *
 * A branch to a known address goes by a jump that first goes to its
 * slow way, which finds the block as chain_slow does (kf's link, else
 * the table) and, when it is translated, makes the jump go to its
 * linked entry from then on (the near one when the target is in the
 * block's own page, where its address needs no look-up). A RET tries
 * the translation of the block it went to last time (kf's link), whose
 * far entry finds whether R9 is still its address. Either way, when the
 * entry finds that it cannot go in (not there, not current, the budget,
 * something due) the slow way decides. */
#define NOWHERE INT64_MIN
static void chain_to(struct xlat *x, unsigned kf, int64_t t, unsigned dret, uintptr_t fn)
{
	struct emit *e = &x->e;
	struct pending sl = { .n = 0 }, out = { .n = 0 };
	int32_t link = (int32_t)(kf * sizeof(struct emu_fop) + offsetof(struct emu_fop, link));
	int same = -1;
	uint8_t *site = NULL;
	struct pend pd = x->pd;                    /* written once, for all its ways */
	emit_pending(x);
	x->pd.lf = 0;
	writeback(x);
	count(x, dret);
	if (t != NOWHERE) {
		int64_t poff = (int64_t)(x->b->gpa & (X86_PAGE_SIZE - 1)) + t;
		same = poff >= 0 && poff < (int64_t)X86_PAGE_SIZE;
		load(e, R9, R_C, CORE(blk_rip), 8);
		if (t != (int32_t)t) {
			mov_imm64(e, RAX, (uint64_t)t);
			op_rr(e, true, 0x01, RAX, R9);             /* add r9, rax */
		} else {
			b1(e, 0x49);
			b1(e, 0x81);
			b1(e, 0xc1);
			b4(e, (uint32_t)(int32_t)t);               /* add r9, t */
		}
	}
	retired_then(e, dret);
	if (t != NOWHERE) {
		tally(x, same ? JX_NEAR : JX_FAR, RAX);
		sl.at[sl.n++] = lea_fwd(e, RAX);           /* lea rax, slow */
		site = jump_fwd(e, 16);                    /* patched: a linked entry */
		sl.at[sl.n++] = site;                      /* until then: slow */
	} else {
		load(e, RDX, R_OP, link, 8);
		op_rr(e, true, 0x85, RDX, RDX);
		to_slow(e, &sl, 4);
		load(e, RDX, RDX, BLK(jit_link), 8);
		op_rr(e, true, 0x85, RDX, RDX);
		to_slow(e, &sl, 4);
		tally(x, JX_RET, RAX);
		sl.at[sl.n++] = lea_fwd(e, RAX);           /* lea rax, slow */
		b1(e, 0xff);
		b1(e, 0xe2);                               /* jmp rdx */
	}
	to_cold(x);
	land_all(e, &sl);
	link_gpa_of(e, &out, same);
	linked_block(x, kf, &out);
	load(e, RDX, RAX, BLK(jit_link), 8);
	op_rr(e, true, 0x85, RDX, RDX);
	to_slow(e, &out, 4);                               /* not translated */
	if (site) {
		mov_rr(e, RSI, RDX);
		if (same) {
			b1(e, 0x48);
			b1(e, 0x83);
			b1(e, 0xc6);
			b1(e, LINK_FAR);                   /* add rsi, LINK_FAR */
		}
		mov_imm64(e, RDI, (uint64_t)rx_of(e, site + 4));
		op_rr(e, true, 0x29, RDI, RSI);            /* sub rsi, rdi */
		mov_imm64(e, RDI, (uint64_t)(uintptr_t)site);
		store(e, RSI, RDI, 0, 4);                  /* the jump's rel32 */
	}
	b1(e, 0x48);
	b1(e, 0x83);
	b1(e, 0xc2);
	b1(e, LINK_FAR);                                   /* add rdx, LINK_FAR: near */
	retired_then(e, dret);
	out.at[out.n++] = lea_fwd(e, RAX);                 /* lea rax, out */
	b1(e, 0xff);
	b1(e, 0xe2);                                       /* jmp rdx */
	land_all(e, &out);
	tally(x, t == NOWHERE ? JX_RET_SLOW : JX_LINK_SLOW, RAX);
	mov_rr(e, RCX, R9);
	tail_at(x, kf, fn);
	to_hot(x);
	x->pd = pd;
}

/* How many of the block's first ops a loop's back edge may run as a copy
 * of its own, with a record still pending, before it joins the code the
 * entry runs: moves, loads, stores, LEA (which a pending record outlives,
 * or is written for), up to the first that sets all flags again from
 * registers alone whatever they were (then the two ways are in the same
 * state); 0: none (a back edge writes the record). */
static unsigned peel_ops(const struct xlat *x)
{
	for (unsigned k = 0; k < x->b->n && k <= 3; k++) {
		struct fop_info fi = info_of(x->j, x->fn[k]);
		if (fi.kind == FK_FUSED)
			fi = info_of(x->j, fi.plain);
		else if (fi.kind != FK_CALL)
			return 0;
		switch (fi.tmpl) {
		case T_ALU:
			if (!is_mem(&fi))
				return k;
			return 0;
		case T_SHIFT: case T_NEG: case T_IMUL:
			return k;
		case T_MOV: case T_MOVZX: case T_MOVSX: case T_LEA: case T_PUSH: case T_POP:
		case T_NOP:
			break;
		default:
			return 0;
		}
	}
	return 0;
}

/* The peeled head (peel_ops) a back edge jumps to: the block's first ops
 * again, from the state the body starts in but for the pending record,
 * then into the body's code at the first that sets all flags (at). */
static void emit_peel(struct xlat *x, const uint8_t *const *at)
{
	unsigned j = peel_ops(x);
	x->j->peeled++;
	land(&x->e, x->peel);
	flags_unknown(x);
	x->pd = x->peel_pd;
	x->rc.dirty = x->rc.at_start;
	x->pm = (struct page_memo){ .valid = false };
	for (unsigned k = 0; k < j; k++) {
		struct fop_info fi = info_of(x->j, x->fn[k]);
		settle_for(x, &x->b->op[k], &fi);
		template_op(x, k, &fi);
	}
	jump_to(&x->e, 16, at[j]);
}

/* The taken back edge of Jcc op k to the block's own start, as
 * loop_again does it: at once when the budget has room for another pass
 * and nothing is due, else its handler (loop_slow). */
static void loop_to_start(struct xlat *x, unsigned k)
{
	struct emit *e = &x->e;
	struct pending sl = { .n = 0 };
	struct pend pd = x->pd;                    /* the start wants it written ... */
	bool peel = pd.lf && !x->peel && peel_ops(x);  /* ... unless its copy, peeled, does */
	if (!peel) {
		emit_pending(x);
		x->pd.lf = 0;
	}
	count(x, k + 1);
	retired_then(e, k + 1);
	budget_or(e, &sl, x->b->n, RDX);
	may_go_on_or(e, &sl);
	store(e, RCX, R_C, CORE(blk_ret), 8);
	tally(x, JX_LOOP, RDX);                    /* no writeback: rc.at_start */
	if (peel) {
		x->peel = jump_fwd(e, 16);
		x->peel_pd = pd;
	} else {
		jump_to(e, 16, x->body);
	}
	to_cold(x);
	land_all(e, &sl);
	tally(x, JX_LOOP_SLOW, RAX);
	tail_op(x, k, x->fn[k]);
	to_hot(x);
	x->pd = pd;
}

/* JMP, CALL or RET (op k, the last): CALL and RET do their stack access
 * here (their handler when the TLB does not allow it as it is), then
 * chain_to their target. */
static void exit_op(struct xlat *x, unsigned k, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	const struct emu_fop *f = &x->b->op[k];
	if (fi->tmpl == T_JMP) {
		chain_to(x, k, (int64_t)f->imm, k + 1, (uintptr_t)x->fn[k]);
		return;
	}
	struct pending miss = { .n = 0 };
	struct access a = { .keyed = true, .write = fi->tmpl == T_CALL, .base = EMU_RSP, .size = 8,
			    .disp = fi->tmpl == T_CALL ? -8 : 0 };
	emit_access(x, &a, &miss);
	if (fi->tmpl == T_CALL) {
		load(e, RDX, R_C, CORE(blk_rip), 8);
		b1(e, 0x48);
		b1(e, 0x81);
		b1(e, 0xc2);
		b4(e, f->end);                             /* add rdx, end */
		store(e, RDX, RSI, 0, 8);
		add_rsp(x, -8);
		chain_to(x, k, (int64_t)f->imm, k + 1, (uintptr_t)emu_fop_jmp());
	} else {
		load(e, R9, RSI, 0, 8);
		add_rsp(x, 8);
		chain_to(x, k, NOWHERE, k + 1, (uintptr_t)emu_fop_chain);
	}
	to_cold(x);
	land_all(e, &miss);
	count(x, k + 1);
	tally(x, JX_HANDLER, RAX);
	tail_op(x, k, x->fn[k]);
	to_hot(x);
}

/* Jcc op k on condition cc, on the host's flags made the guest's; when
 * taken, its handler's way (a JMP's, or the
 * loop's), else on (the block's end when it is the last). */
static void jcc_op(struct xlat *x, unsigned k, const struct fop_info *fi)
{
	struct emit *e = &x->e;
	need_flags(x);
	uint8_t *not_taken = jump_fwd(e, fi->cc ^ 1);
	if (fi->loop)
		loop_to_start(x, k);
	else
		chain_to(x, k, (int64_t)x->b->op[k].imm, k + 1, (uintptr_t)emu_fop_jmp());
	land(e, not_taken);
}

/* The guest registers the templates of op k use, counted into uses. */
static void count_uses(const struct xlat *x, unsigned k, const struct fop_info *fi, unsigned *uses)
{
	const struct emu_fop *f = &x->b->op[k];
	unsigned r[4] = { 16, 16, 16, 16 };
	switch (fi->tmpl) {
	case T_CALL: case T_RET:
		r[0] = EMU_RSP;
		break;
	case T_PUSH: case T_POP:
		r[0] = EMU_RSP;
		r[1] = f->r0;
		break;
	case T_SHIFT_CL:
		r[1] = EMU_RCX;
		/* fall through */
	case T_SHIFT: case T_ROT: case T_INC: case T_DEC: case T_NEG: case T_NOT: case T_SETCC:
		r[0] = f->r0;
		break;
	case T_LEA:
		r[0] = f->r0;
		r[2] = f->base;
		r[3] = f->index;
		break;
	case T_MOV: case T_ALU: case T_MOVZX: case T_MOVSX: case T_IMUL: case T_CMOV:
	case T_ADC: case T_SBB:
		if (is_mem(fi)) {
			r[0] = fi->form == FORM_MR ? f->r1 : fi->form == FORM_RM ? f->r0 : 16;
			r[2] = f->base;
			r[3] = f->index;
		} else {
			r[0] = f->r0;
			if (fi->form == FORM_RR || fi->tmpl == T_MOVZX || fi->tmpl == T_MOVSX ||
			    fi->tmpl == T_IMUL || fi->tmpl == T_CMOV)
				r[1] = f->r1;
		}
		break;
	default:
		break;
	}
	for (unsigned i = 0; i < 4; i++)
		if (r[i] < 16)
			uses[r[i]]++;
}

/* The guest registers block b's templates use more than once, the most
 * used first, into the host registers of the cache (all dirty at the
 * start when it loops: rc.at_start). */
static void choose_cached(struct xlat *x)
{
	unsigned uses[16] = { 0 };
	bool loops = false;
	for (unsigned k = 0; k < x->b->n; k++) {
		struct fop_info fi = info_of(x->j, x->fn[k]);
		loops |= fi.kind == FK_JCC && fi.loop;
		if (fi.tmpl == T_CROSS)
			fi = info_of(x->j, (fop_fn)(uintptr_t)x->b->op[k + 1].imm);
		if (fi.kind == FK_FUSED)
			fi = info_of(x->j, fi.plain);
		if (has_template(&fi) || fi.tmpl == T_CALL || fi.tmpl == T_RET)
			count_uses(x, k, &fi, uses);
	}
	for (unsigned i = 0; i < CACHE_MAX; i++) {
		unsigned best = 16;
		for (unsigned r = 0; r < 16; r++)
			if (!x->rc.host[r] && uses[r] >= 2 && (best == 16 || uses[r] > uses[best]))
				best = r;
		if (best == 16)
			break;
		x->rc.host[best] = cache_hosts[i];
		if (loops)
			x->rc.at_start |= (uint16_t)(1u << best);
	}
}

/* The saved registers back, and eax returned; then the entry, which
 * saves them and goes to the first instruction; then the linked entries
 * (link_far, link_near), which fall into it. */
static const uint8_t *prologue(struct xlat *x)
{
	struct emit *e = &x->e;
	x->leave = e->p;
	pop_saved(e);
	b1(e, 0xc3);                               /* ret */
	const uint8_t *entry = e->p;
	push(e, R_CPU);
	push(e, R_C);
	push(e, R_OP);
	push(e, RBP);
	push(e, R14);
	push(e, R15);
	frame_lea(e, -FRAME);
	mov_rr(e, R_CPU, RDI);
	mov_rr(e, R_C, RSI);
	mov_rr(e, R_OP, RDX);
	if (e->p - entry != INNER)
		abort();
	uint8_t *first = jump_fwd(e, 16);
	const uint8_t *fail = e->p;
	b1(e, 0xff);
	b1(e, 0xe0);                               /* jmp rax */
	x->link = e->p;
	link_far(x, fail);
	if (e->p - x->link != LINK_FAR)
		abort();
	link_near(x, fail);
	land(e, first);
	x->inner = e->p;
	reload(x);
	x->rc.dirty = x->rc.at_start;
	x->body = e->p;
	return entry;
}

/* --- profiling aids ------------------------------------------------------------------ */

/* Where each instruction's host code starts, and which call their handler. */
struct notes {
	const uint8_t *at[BLOCK_INSNS];
	bool called[BLOCK_INSNS];
};

/* The arena (re)starts: a line for the flags stub, which says when (the
 * monotonic clock's ns, as perf record -k CLOCK_MONOTONIC stamps samples:
 * the translations listed after it replace those before). */
static void note_arena_start(struct emu_jit *j)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	fprintf(j->perf_map, "%lx %zx vmdb-jit-flags-stub@%lld.%09ld\n", (unsigned long)j->rx, j->used,
		(long long)ts.tv_sec, ts.tv_nsec);
}

/* Translation b (host code [entry, end) of the writable view) into the
 * perf map and the dump, when they are on. */
static void note_translation(struct emu_jit *j, const struct emu_block *b, const uint8_t *entry,
			     const uint8_t *end, const uint8_t *cold_end, const struct notes *nt,
			     const struct reg_cache *rc)
{
	uintptr_t rx = (uintptr_t)j->rx + (uintptr_t)(entry - j->rw);
	if (j->perf_map) {
		fprintf(j->perf_map, "%lx %lx vmdb-jit-%llx-n%u\n", (unsigned long)rx,
			(unsigned long)(end - entry), (unsigned long long)b->gpa, b->n);
		fprintf(j->perf_map, "%lx %lx vmdb-jit-%llx-n%u-cold\n",
			(unsigned long)j->rx + j->cold_used, (unsigned long)(cold_end - j->rw) - j->cold_used,
			(unsigned long long)b->gpa, b->n);
	}
	if (!j->dump)
		return;
	fprintf(j->dump, "translation gpa=%llx n=%u host=%lx size=%lx cached=",
		(unsigned long long)b->gpa, b->n, (unsigned long)rx, (unsigned long)(end - entry));
	for (unsigned r = 0; r < 16; r++)
		if (rc->host[r])
			fprintf(j->dump, "g%u:h%u,", r, rc->host[r]);
	fprintf(j->dump, "\n");
	for (unsigned k = 0; k < b->n; k++) {
		uint8_t buf[15];
		char text[96];
		unsigned len = block_insn_bytes(b, k, buf);
		x86_format_insn((enum x86_mode)b->mode, b->gpa + b->op[k].off, buf, len, text,
				sizeof(text));
		fprintf(j->dump, "  +%-5lx %s %s\n", nt->at[k] ? (unsigned long)(nt->at[k] - entry) : 0ul,
			nt->called[k] ? "call" : "    ", text);
	}
	fprintf(j->dump, "  bytes ");
	for (const uint8_t *p = entry; p < end; p++)
		fprintf(j->dump, "%02x", *p);
	fprintf(j->dump, "\n");
}

bool emu_jit_translate(struct emu_jit *j, struct emu_block *b)
{
	if (emu_jit_full(j))
		return false;
	if (j->used == 0) {
		j->used = emit_host_flags(j);
		if (j->perf_map)
			note_arena_start(j);
	}
	unsigned n = b->n;
	fop_fn fn[BLOCK_INSNS];
	for (unsigned k = 0; k < n; k++)
		fn[k] = k ? b->op[k].fn : b->fn0;
	struct xlat x = { .e = { .p = j->rw + j->used, .to_rx = j->rx - j->rw }, .b = b, .fn = fn,
			  .j = j, .arena = j->rx, .host_flags = j->rw, .other = j->rw + j->cold_used };
	choose_cached(&x);
	plan_slots(&x);
	const uint8_t *entry = prologue(&x);
	unsigned k;
	struct notes notes = { .at = { 0 } };
	for (k = 0; k < n; k++) {
		notes.at[k] = x.e.p;
		struct fop_info fi = info_of(j, fn[k]);
		if (fi.tmpl == T_CROSS) {
			fn[k] = cross_check(&x, k);
			fi = info_of(j, fn[k]);
			x.fl.host = false;         /* the compares' */
		}
		if (fi.kind == FK_FUSED) {
			struct fop_info cmp = info_of(j, fi.plain);
			if (cmp.tmpl == T_ALU) {
				alu_reg(&x, &b->op[k], &cmp);
			} else {
				call_op(&x, k, fi.plain);
				flags_unknown(&x);
				x.pd.lf = 0;
				notes.called[k] = true;
			}
			fi = info_of(j, fn[++k]);
			notes.at[k] = x.e.p;
		}
		if (fi.tmpl == T_JMP || fi.tmpl == T_CALL || fi.tmpl == T_RET) {
			settle_for(&x, &b->op[k], &fi);
			exit_op(&x, k, &fi);
			break;
		}
		bool tmpl = has_template(&fi) && (fi.tmpl != T_ROT || flags_dead_after(&x, k));
		if (fi.kind == FK_EXIT || (k == n - 1 && fi.kind == FK_CALL && !tmpl)) {
			notes.called[k] = true;
			count(&x, k + 1);
			tally(&x, JX_HANDLER, RAX);
			tail_op(&x, k, fn[k]);
			break;
		}
		if (fi.kind == FK_JCC) {
			jcc_op(&x, k, &fi);
		} else if (tmpl) {
			settle_for(&x, &b->op[k], &fi);
			template_op(&x, k, &fi);
		} else {
			call_op(&x, k, fn[k]);
			flags_unknown(&x);
			x.pd.lf = 0;
			notes.called[k] = true;
		}
	}
	if (k == n)                        /* the last ran here: on to the end marker's way */
		chain_to(&x, n, b->op[n].off, n, (uintptr_t)b->op[n].fn);
	if (x.peel)
		emit_peel(&x, notes.at);
	note_translation(j, b, entry, x.e.p, x.other, &notes, &x.rc);
	j->used = (size_t)(x.e.p - j->rw + 15) & ~(size_t)15;
	j->cold_used = (size_t)(x.other - j->rw);
	j->blocks++;
	for (k = 1; k < n; k++)
		b->op[k].fn = emu_fop_cont;
	b->op[0].fn = (fop_fn)rx_of(&x.e, entry);
	b->jit_link = (const uint8_t *)rx_of(&x.e, x.link);
	return true;
}

#else

struct emu_jit *emu_jit_create(uint32_t *after)
{
	*after = 0;
	return NULL;
}

void emu_jit_destroy(struct emu_jit *j)
{
	(void)j;
}

void emu_jit_reset(struct emu_jit *j)
{
	(void)j;
}

bool emu_jit_full(const struct emu_jit *j)
{
	(void)j;
	return false;
}

bool emu_jit_translate(struct emu_jit *j, struct emu_block *b)
{
	(void)j;
	(void)b;
	return false;
}

void emu_jit_counts(const struct emu_jit *j, uint64_t *blocks, uint64_t *insns)
{
	(void)j;
	*blocks = *insns = 0;
}

void emu_jit_report(const struct emu_jit *j, FILE *out)
{
	(void)j;
	(void)out;
}

#endif
