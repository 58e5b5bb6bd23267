/* engine/emu/emu_fast.c — the core's fast path: blocks of decoded
 * instructions run back to back, with lazy flags and handlers specialised
 * by operand form.
 *
 * A block is a straight run of "plain" instructions (data movement,
 * arithmetic, stack, near branches: what only touches GPRs, arithmetic
 * flags, memory and RIP) inside one page, ending after a branch, before
 * the first instruction that is not plain, or at 32 instructions. The
 * cache is VM-wide, keyed by the physical address of the first byte (64-bit
 * mode only), and keeps a copy of the block's bytes: one memcmp when the
 * block is entered catches every writer (the guest, devices, the
 * debugger's int3 bytes, other vCPUs). A store from inside a block into
 * the page of that block ends the block after the storing instruction, so
 * code that modifies its own next instructions is seen, as on hardware.
 *
 * emu_exec.c enters a block only where the exact per-instruction path
 * (step()) would do nothing but run the instructions: no replay pending,
 * no interrupt shadow, no HLT step, emu_dbg_armed() false (no DR7 enable,
 * TF, RF or debugger request), and after the interrupt check. Inside a
 * block nothing can change that, because every instruction that could
 * (POPF, STI, MOV to CR/DR/Sreg, INT, IRET, I/O, string ...) is not plain
 * and goes through step(). Device accesses made by plain instructions
 * (MMIO) end the block after the instruction (emu_mem.c after_platform),
 * the budget (quantum, timer deadline) is counted per instruction, kicks
 * and interrupts from other threads are looked at between blocks.
 *
 * Faults: handlers read all operands and do every access that can fault
 * before they change state (lazy flags are recorded last), so emu_fault's
 * unwinding leaves the state as before the instruction; emu_fault and
 * emu_leave make the flags exact first.
 *
 * Instructions with no specialised handler here run their exact handler
 * from emu_exec_*.c after the flags are made exact. */
#include "engine/emu/emu_core.h"

#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_platform.h"

#define BLOCK_INSNS 32
#define BLOCK_BYTES 256
#define BLOCK_BITS 12
#define BLOCK_COUNT (1u << BLOCK_BITS)

struct fop;
typedef void (*fop_fn)(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f);

/* One instruction of a block: the specialised handler and the operand
 * fields it needs, and the general form for the exact handler. */
struct fop {
	fop_fn fn;
	uint8_t len;
	uint8_t r0, r1;                /* register operands (dst, src) */
	uint8_t base, index, shift;    /* memory operand: EMU_NOREG / EMU_RIPREL base */
	uint8_t seg;
	bool mem_write;                /* the exact handler may write memory */
	int64_t disp;
	uint64_t imm;
	struct emu_insn in;
};

struct emu_block {
	uint64_t gpa;
	bool valid;
	uint8_t mode;
	uint8_t n;                     /* instructions; 0 = the first is not plain */
	uint8_t words;                 /* bytes to compare as words (0: memcmp nbytes) */
	uint16_t nbytes;
	uint8_t bytes[BLOCK_BYTES];
	struct fop op[BLOCK_INSNS];
};

int emu_blocks_create(struct emu_vm *evm)
{
	/* calloc: pages of the table cost memory only once used */
	evm->blocks = calloc(BLOCK_COUNT, sizeof(struct emu_block));
	return evm->blocks ? 0 : -ENOMEM;
}

void emu_blocks_destroy(struct emu_vm *evm)
{
	free(evm->blocks);
	evm->blocks = NULL;
}

/* --- lazy flags ---------------------------------------------------------------- */

/* LF_LOGIC_CO: as LF_LOGIC but CF = lf_b bit 0, OF = lf_b bit 1 (shifts,
 * IMUL). */
enum { LF_NONE, LF_ADD, LF_SUB, LF_LOGIC, LF_INC, LF_DEC, LF_LOGIC_CO };

static inline void lazy(struct emu_core *c, uint8_t op, uint64_t a, uint64_t b, uint64_t r,
			unsigned size)
{
	c->lf_op = op;
	c->lf_size = (uint8_t)size;
	c->lf_a = a;
	c->lf_b = b;
	c->lf_r = r;
}

/* Exactly what the instruction handlers compute (emu_flags). */
void emu_flags_sync_slow(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	unsigned s = c->lf_size;
	switch (c->lf_op) {
	case LF_ADD: emu_flags(cpu, EMU_FL_ADD, c->lf_a, c->lf_b, c->lf_r, s, 0); break;
	case LF_SUB: emu_flags(cpu, EMU_FL_SUB, c->lf_a, c->lf_b, c->lf_r, s, 0); break;
	case LF_LOGIC: emu_flags(cpu, EMU_FL_LOGIC, c->lf_r, 0, c->lf_r, s, 0); break;
	case LF_LOGIC_CO:
		emu_flags(cpu, EMU_FL_LOGIC, c->lf_r, 0, c->lf_r, s, 0);
		cpu->rflags &= ~(RFLAGS_CF | RFLAGS_OF);
		cpu->rflags |= ((c->lf_b & 1) ? RFLAGS_CF : 0) | ((c->lf_b & 2) ? RFLAGS_OF : 0);
		break;
	case LF_INC:
	case LF_DEC:
		emu_flags(cpu, c->lf_op == LF_INC ? EMU_FL_ADD : EMU_FL_SUB, c->lf_a, 1, c->lf_r, s,
			  0);
		cpu->rflags = (cpu->rflags & ~RFLAGS_CF) | (c->lf_cf ? RFLAGS_CF : 0);
		break;
	default:
		break;
	}
	c->lf_op = LF_NONE;
}

static inline uint64_t msk(unsigned s)
{
	return s >= 8 ? ~0ull : (1ull << (s * 8)) - 1;
}

static inline bool lazy_cf(const struct emu_cpu *cpu, const struct emu_core *c)
{
	uint64_t m = msk(c->lf_size);
	switch (c->lf_op) {
	case LF_ADD: return (c->lf_r & m) < (c->lf_a & m);
	case LF_SUB: return (c->lf_a & m) < (c->lf_b & m);
	case LF_LOGIC: return false;
	case LF_LOGIC_CO: return c->lf_b & 1;
	case LF_INC: case LF_DEC: return c->lf_cf;
	default: return cpu->rflags & RFLAGS_CF;
	}
}

static inline bool lazy_of(const struct emu_core *c)
{
	uint64_t sb = 1ull << (c->lf_size * 8 - 1);
	uint64_t a = c->lf_a, b = c->lf_b, r = c->lf_r;
	switch (c->lf_op) {
	case LF_ADD: case LF_INC: return (a ^ r) & (b ^ r) & sb;
	case LF_SUB: case LF_DEC: return (a ^ b) & (a ^ r) & sb;
	case LF_LOGIC_CO: return b & 2;
	default: return false;
	}
}

/* Condition cc (the low nibble of Jcc/SETcc/CMOVcc) from the lazy state;
 * each flag as emu_flags would set it. */
static inline bool lazy_cond(struct emu_cpu *cpu, struct emu_core *c, unsigned cc)
{
	if (c->lf_op == LF_NONE)
		return emu_cond(cpu, cc);
	unsigned s = c->lf_size;
	uint64_t m = msk(s);
	uint64_t r = c->lf_r & m;
	bool v;
	switch (cc >> 1) {
	case 0: v = lazy_of(c); break;
	case 1: v = lazy_cf(cpu, c); break;
	case 2: v = r == 0; break;
	case 3: v = r == 0 || lazy_cf(cpu, c); break;
	case 4: v = (r >> (s * 8 - 1)) & 1; break;
	case 5: v = !__builtin_parity((unsigned)(r & 0xff)); break;
	case 6: v = ((r >> (s * 8 - 1)) & 1) != lazy_of(c); break;
	default: v = r == 0 || ((r >> (s * 8 - 1)) & 1) != lazy_of(c); break;
	}
	return (cc & 1) ? !v : v;
}

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
static inline uint64_t f_lin(const struct emu_cpu *cpu, const struct fop *f)
{
	uint64_t ea = (uint64_t)f->disp;
	if (f->base < 16)
		ea += cpu->gpr[f->base];
	else if (f->base == EMU_RIPREL)
		ea += cpu->rip;
	if (f->index < 16)
		ea += cpu->gpr[f->index] << f->shift;
	if (__builtin_expect(f->seg >= EMU_FS, 0))
		ea += f->seg == EMU_FS ? cpu->sregs.fs.base : cpu->sregs.gs.base;
	return ea;
}

static inline struct emu_tlb_entry *tlb_of(struct emu_core *c, uint64_t lin)
{
	return &c->tlb[c->cpl == 3][(lin >> 12) & (EMU_TLB_SIZE - 1)];
}

static inline uint64_t load(const uint8_t *p, unsigned s)
{
	uint64_t v = 0;
	memcpy(&v, p, s);                      /* little-endian host */
	return v;
}

static inline uint64_t mread(struct emu_cpu *cpu, struct emu_core *c, uint64_t lin, unsigned s)
{
	struct emu_tlb_entry *t = tlb_of(c, lin);
	uint64_t off = lin & (EMU_PAGE_SIZE - 1);
	if (__builtin_expect(t->tag_r == (lin & EMU_PAGE_MASK) && off <= EMU_PAGE_SIZE - s, 1))
		return load(t->host + off, s);
	return emu_read(cpu, lin, s);
}

static inline void mwrite(struct emu_cpu *cpu, struct emu_core *c, uint64_t lin, unsigned s,
			  uint64_t v)
{
	struct emu_tlb_entry *t = tlb_of(c, lin);
	uint64_t off = lin & (EMU_PAGE_SIZE - 1);
	if (__builtin_expect(t->tag_w == (lin & EMU_PAGE_MASK) && off <= EMU_PAGE_SIZE - s, 1)) {
		uint64_t gpa = t->gpa + off;
		if (__builtin_expect(gpa < c->blk_end && gpa + s > c->blk_gpa, 0))
			c->blk_break = true;       /* writes its own block: look again */
		memcpy(t->host + off, &v, s);  /* little-endian host */
		return;
	}
	emu_write(cpu, lin, s, v);
	c->blk_break = true;               /* not checked against the block: look again */
}

/* --- handlers ---------------------------------------------------------------------- */

/* Anything without a specialised form: the exact handler. */
static void f_exact(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	emu_flags_sync(cpu);
	f->in.fn(cpu, &f->in);
	if (f->mem_write)
		c->blk_break = true;
}

enum { A_ADD, A_SUB, A_CMP, A_AND, A_OR, A_XOR, A_TEST };

#define A_WRITES(op) ((op) != A_CMP && (op) != A_TEST)

static inline __attribute__((always_inline)) void alu(struct emu_core *c, unsigned op,
						      uint64_t a, uint64_t b, uint64_t *r,
						      unsigned s, bool set_flags)
{
	uint8_t lf;
	switch (op) {
	case A_ADD: *r = a + b; lf = LF_ADD; break;
	case A_SUB: case A_CMP: *r = a - b; lf = LF_SUB; break;
	case A_AND: case A_TEST: *r = a & b; lf = LF_LOGIC; break;
	case A_OR: *r = a | b; lf = LF_LOGIC; break;
	default: *r = a ^ b; lf = LF_LOGIC; break;
	}
	if (set_flags)
		lazy(c, lf, a, b, *r, s);
}

#define LF_OF(op) ((op) == A_ADD ? LF_ADD : ((op) == A_SUB || (op) == A_CMP) ? LF_SUB : LF_LOGIC)

#define DEF_ALU(NAME, OP, S)                                                                  \
static void NAME##_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)       \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = gpr_get(cpu, f->r1, S), r;                   \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
}                                                                                             \
static void NAME##_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)       \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), b = f->imm & msk(S), r;                          \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
}                                                                                             \
static void NAME##_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)       \
{                                                                                             \
	uint64_t b = mread(cpu, c, f_lin(cpu, f), S);                                         \
	uint64_t a = gpr_get(cpu, f->r0, S), r;                                               \
	alu(c, OP, a, b, &r, S, true);                                                        \
	if (A_WRITES(OP))                                                                     \
		gpr_put(cpu, f->r0, S, r);                                                    \
}                                                                                             \
static void NAME##_mr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)       \
{                                                                                             \
	uint64_t lin = f_lin(cpu, f);                                                         \
	uint64_t a = mread(cpu, c, lin, S), b = gpr_get(cpu, f->r1, S), r;                    \
	alu(c, OP, a, b, &r, S, false);                                                       \
	if (A_WRITES(OP))                                                                     \
		mwrite(cpu, c, lin, S, r);                                                    \
	lazy(c, LF_OF(OP), a, b, r, S);                                                       \
}                                                                                             \
static void NAME##_mi##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)       \
{                                                                                             \
	uint64_t lin = f_lin(cpu, f);                                                         \
	uint64_t a = mread(cpu, c, lin, S), b = f->imm & msk(S), r;                           \
	alu(c, OP, a, b, &r, S, false);                                                       \
	if (A_WRITES(OP))                                                                     \
		mwrite(cpu, c, lin, S, r);                                                    \
	lazy(c, LF_OF(OP), a, b, r, S);                                                       \
}

#define DEF_ALU2(NAME, OP) DEF_ALU(NAME, OP, 8) DEF_ALU(NAME, OP, 4) DEF_ALU(NAME, OP, 2) \
			   DEF_ALU(NAME, OP, 1)
DEF_ALU2(add, A_ADD)
DEF_ALU2(sub, A_SUB)
DEF_ALU2(cmp, A_CMP)
DEF_ALU2(and, A_AND)
DEF_ALU2(or, A_OR)
DEF_ALU2(xor, A_XOR)
DEF_ALU2(test, A_TEST)

/* [form][size 8 / 4 / 2 / 1] per ALU mnemonic */
struct alu_forms {
	uint16_t mnemonic;
	fop_fn fn[5][4];               /* rr, ri, rm, mr, mi */
};

#define FORM(NAME, F) { NAME##_##F##8, NAME##_##F##4, NAME##_##F##2, NAME##_##F##1 }
#define FORMS(NAME) { FORM(NAME, rr), FORM(NAME, ri), FORM(NAME, rm), FORM(NAME, mr),          \
		      FORM(NAME, mi) }

static const unsigned form_size[4] = { 8, 4, 2, 1 };

static const struct alu_forms alu_table[] = {
	{ ZYDIS_MNEMONIC_ADD, FORMS(add) }, { ZYDIS_MNEMONIC_SUB, FORMS(sub) },
	{ ZYDIS_MNEMONIC_CMP, FORMS(cmp) }, { ZYDIS_MNEMONIC_AND, FORMS(and) },
	{ ZYDIS_MNEMONIC_OR, FORMS(or) }, { ZYDIS_MNEMONIC_XOR, FORMS(xor) },
	{ ZYDIS_MNEMONIC_TEST, FORMS(test) },
};

#define DEF_INCDEC(S)                                                                         \
static void inc_r##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)           \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a + 1;                                       \
	bool cf = lazy_cf(cpu, c);                                                            \
	gpr_put(cpu, f->r0, S, r);                                                            \
	lazy(c, LF_INC, a, 1, r, S);                                                          \
	c->lf_cf = cf;                                                                        \
}                                                                                             \
static void dec_r##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)           \
{                                                                                             \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a - 1;                                       \
	bool cf = lazy_cf(cpu, c);                                                            \
	gpr_put(cpu, f->r0, S, r);                                                            \
	lazy(c, LF_DEC, a, 1, r, S);                                                          \
	c->lf_cf = cf;                                                                        \
}
DEF_INCDEC(8)
DEF_INCDEC(4)

#define DEF_MOV(S)                                                                            \
static void mov_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, gpr_get(cpu, f->r1, S));                                       \
}                                                                                             \
static void mov_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, f->imm);                                                       \
}                                                                                             \
static void mov_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	gpr_put(cpu, f->r0, S, mread(cpu, c, f_lin(cpu, f), S));                              \
}                                                                                             \
static void mov_mr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	mwrite(cpu, c, f_lin(cpu, f), S, gpr_get(cpu, f->r1, S));                             \
}                                                                                             \
static void mov_mi##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	mwrite(cpu, c, f_lin(cpu, f), S, f->imm);                                             \
}
DEF_MOV(8)
DEF_MOV(4)
DEF_MOV(2)
DEF_MOV(1)

#define DEF_LEA(S)                                                                            \
static void lea_r##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)           \
{                                                                                             \
	(void)c;                                                                              \
	gpr_put(cpu, f->r0, S, f_lin(cpu, f));                                                \
}
DEF_LEA(8)
DEF_LEA(4)

/* CMOVcc reads its source whatever the condition (a fault is a fault);
 * a 32-bit destination is zero-extended even when nothing moves. */
#define DEF_CMOV(S)                                                                           \
static void cmov_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)         \
{                                                                                             \
	uint64_t v = gpr_get(cpu, f->r1, S);                                                  \
	gpr_put(cpu, f->r0, S, lazy_cond(cpu, c, (unsigned)f->imm) ? v : cpu->gpr[f->r0]);    \
}                                                                                             \
static void cmov_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)         \
{                                                                                             \
	uint64_t v = mread(cpu, c, f_lin(cpu, f), S);                                         \
	gpr_put(cpu, f->r0, S, lazy_cond(cpu, c, (unsigned)f->imm) ? v : cpu->gpr[f->r0]);    \
}
DEF_CMOV(8)
DEF_CMOV(4)

/* SETcc r8 (not AH-DH). */
static void setcc_r(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	cpu->gpr[f->r0] = (cpu->gpr[f->r0] & ~0xffull) | lazy_cond(cpu, c, (unsigned)f->imm);
}

/* The source of MOVZX / MOVSX / MOVSXD: a register or memory of f->imm
 * (1, 2 or 4) bytes, zero-extended. */
static inline uint64_t ext_src(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f,
			       bool mem)
{
	unsigned ss = (unsigned)f->imm;
	if (!mem)
		return cpu->gpr[f->r1] & msk(ss);
	uint64_t lin = f_lin(cpu, f);
	struct emu_tlb_entry *t = tlb_of(c, lin);
	uint64_t off = lin & (EMU_PAGE_SIZE - 1);
	if (__builtin_expect(t->tag_r == (lin & EMU_PAGE_MASK) && off <= EMU_PAGE_SIZE - ss, 1)) {
		uint64_t v = 0;
		memcpy(&v, t->host + off, ss);     /* little-endian host */
		return v;
	}
	return emu_read(cpu, lin, ss);
}

#define DEF_EXT(S)                                                                            \
static void movzx_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)        \
{                                                                                             \
	gpr_put(cpu, f->r0, S, ext_src(cpu, c, f, false));                                    \
}                                                                                             \
static void movzx_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)        \
{                                                                                             \
	gpr_put(cpu, f->r0, S, ext_src(cpu, c, f, true));                                     \
}                                                                                             \
static void movsx_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)        \
{                                                                                             \
	gpr_put(cpu, f->r0, S, emu_sext(ext_src(cpu, c, f, false), (unsigned)f->imm));        \
}                                                                                             \
static void movsx_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)        \
{                                                                                             \
	gpr_put(cpu, f->r0, S, emu_sext(ext_src(cpu, c, f, true), (unsigned)f->imm));         \
}
DEF_EXT(8)
DEF_EXT(4)

/* Shifts and rotates of a register by an immediate count n != 0 (f->imm,
 * already masked), as h_shift / h_rotate compute them. */
#define DEF_SHIFT(S)                                                                          \
static void shl_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = (a << n) & msk(S);                           \
	unsigned cf = (a >> (bits - n)) & 1, of = ((r >> (bits - 1)) & 1) != cf;              \
	gpr_put(cpu, f->r0, S, r);                                                            \
	lazy(c, LF_LOGIC_CO, r, cf | of << 1, r, S);                                          \
}                                                                                             \
static void shr_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = a >> n;                                      \
	unsigned cf = (a >> (n - 1)) & 1, of = (a >> (bits - 1)) & 1;                         \
	gpr_put(cpu, f->r0, S, r);                                                            \
	lazy(c, LF_LOGIC_CO, r, cf | of << 1, r, S);                                          \
}                                                                                             \
static void sar_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	unsigned n = (unsigned)f->imm;                                                        \
	int64_t sa = (int64_t)emu_sext(gpr_get(cpu, f->r0, S), S);                            \
	uint64_t r = (uint64_t)(sa >> n) & msk(S);                                            \
	unsigned cf = (sa >> (n - 1)) & 1;                                                    \
	gpr_put(cpu, f->r0, S, r);                                                            \
	lazy(c, LF_LOGIC_CO, r, cf, r, S);                                                    \
}                                                                                             \
static void rol_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	(void)c;                                                                              \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = ((a << n) | (a >> (bits - n))) & msk(S);     \
	bool cf = r & 1, of = ((r >> (bits - 1)) & 1) != cf;                                  \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_flags_sync(cpu);                                                                  \
	cpu->rflags = (cpu->rflags & ~(RFLAGS_CF | RFLAGS_OF)) | (cf ? RFLAGS_CF : 0) |       \
		      (of ? RFLAGS_OF : 0);                                                   \
}                                                                                             \
static void ror_ri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)          \
{                                                                                             \
	(void)c;                                                                              \
	unsigned n = (unsigned)f->imm, bits = S * 8;                                          \
	uint64_t a = gpr_get(cpu, f->r0, S), r = ((a >> n) | (a << (bits - n))) & msk(S);     \
	bool cf = (r >> (bits - 1)) & 1, of = cf != ((r >> (bits - 2)) & 1);                  \
	gpr_put(cpu, f->r0, S, r);                                                            \
	emu_flags_sync(cpu);                                                                  \
	cpu->rflags = (cpu->rflags & ~(RFLAGS_CF | RFLAGS_OF)) | (cf ? RFLAGS_CF : 0) |       \
		      (of ? RFLAGS_OF : 0);                                                   \
}
DEF_SHIFT(8)
DEF_SHIFT(4)

/* IMUL r, r/m (f->imm = 0) and IMUL r, r/m, imm: the low half, CF = OF =
 * the signed product does not fit. */
static inline void imul_common(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f,
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
	lazy(c, LF_LOGIC_CO, r, ovf ? 3 : 0, r, s);
}

#define DEF_IMUL(S)                                                                           \
static void imul_rr##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)         \
{                                                                                             \
	imul_common(cpu, c, f, cpu->gpr[f->r0], cpu->gpr[f->r1], S);                          \
}                                                                                             \
static void imul_rri##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)        \
{                                                                                             \
	imul_common(cpu, c, f, cpu->gpr[f->r1], f->imm, S);                                   \
}                                                                                             \
static void imul_rm##S(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)         \
{                                                                                             \
	uint64_t b = mread(cpu, c, f_lin(cpu, f), S);                                         \
	imul_common(cpu, c, f, cpu->gpr[f->r0], b, S);                                        \
}
DEF_IMUL(8)
DEF_IMUL(4)

static void push_r(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	mwrite(cpu, c, sp, 8, cpu->gpr[f->r0]);
	cpu->gpr[EMU_RSP] = sp;
}

static void push_i(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	mwrite(cpu, c, sp, 8, f->imm);
	cpu->gpr[EMU_RSP] = sp;
}

static void pop_r(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t v = mread(cpu, c, sp, 8);
	cpu->gpr[EMU_RSP] = sp + 8;
	cpu->gpr[f->r0] = v;
}

static void jmp_rel(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	(void)c;
	cpu->rip += f->imm;
}

/* One handler per condition, so the condition folds into it. */
#define DEF_JCC(CC)                                                                           \
static void jcc_##CC(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)           \
{                                                                                             \
	if (lazy_cond(cpu, c, CC))                                                            \
		cpu->rip += f->imm;                                                           \
}
DEF_JCC(0) DEF_JCC(1) DEF_JCC(2) DEF_JCC(3) DEF_JCC(4) DEF_JCC(5) DEF_JCC(6) DEF_JCC(7)
DEF_JCC(8) DEF_JCC(9) DEF_JCC(10) DEF_JCC(11) DEF_JCC(12) DEF_JCC(13) DEF_JCC(14) DEF_JCC(15)

static const fop_fn jcc_fn[16] = {
	jcc_0, jcc_1, jcc_2, jcc_3, jcc_4, jcc_5, jcc_6, jcc_7,
	jcc_8, jcc_9, jcc_10, jcc_11, jcc_12, jcc_13, jcc_14, jcc_15,
};

static void call_rel(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	uint64_t sp = cpu->gpr[EMU_RSP] - 8;
	mwrite(cpu, c, sp, 8, cpu->rip);
	cpu->gpr[EMU_RSP] = sp;
	cpu->rip += f->imm;
}

static void ret_near(struct emu_cpu *cpu, struct emu_core *c, const struct fop *f)
{
	(void)f;
	uint64_t sp = cpu->gpr[EMU_RSP];
	uint64_t v = mread(cpu, c, sp, 8);
	cpu->gpr[EMU_RSP] = sp + 8;
	cpu->rip = v;
}

/* --- building blocks ---------------------------------------------------------------- */

/* Plain: handled by emu_exec_alu.c and touching nothing but GPRs, the
 * arithmetic flags and DF, memory and RIP (see the top of the file). */
static bool is_plain(const struct emu_insn *in)
{
	if (in->fn == emu_unimplemented || in->fn == emu_mov_special || (in->flags & EMU_I_FAR))
		return false;
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PUSHF: case ZYDIS_MNEMONIC_PUSHFD: case ZYDIS_MNEMONIC_PUSHFQ:
	case ZYDIS_MNEMONIC_POPF: case ZYDIS_MNEMONIC_POPFD: case ZYDIS_MNEMONIC_POPFQ:
		return false;
	default:
		break;
	}
	bool alu = false;
	for (const struct emu_handler_entry *e = emu_exec_alu_table; e->fn; e++)
		if (e->mnemonic == in->mnemonic && e->fn == in->fn)
			alu = true;
	if (!alu)
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

/* Conditional branches do not end a block: when taken, RIP is not where
 * the next instruction of the block begins and the block is left there. */
static bool is_cond_branch(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_JCXZ: case ZYDIS_MNEMONIC_JECXZ: case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_LOOP: case ZYDIS_MNEMONIC_LOOPE: case ZYDIS_MNEMONIC_LOOPNE:
		return true;
	default:
		/* Jcc: opcode 0x70-0x7f (map 0) or 0x80-0x8f (0F map) */
		return in->fn != NULL && (in->opcode & 0xf0) == (in->opmap ? 0x80 : 0x70) &&
		       in->nops == 1 && in->op[0].kind == EMU_OP_IMM;
	}
}

static bool is_jcc(const struct emu_insn *in)
{
	return is_cond_branch(in) && in->mnemonic != ZYDIS_MNEMONIC_JCXZ &&
	       in->mnemonic != ZYDIS_MNEMONIC_JECXZ && in->mnemonic != ZYDIS_MNEMONIC_JRCXZ &&
	       in->mnemonic != ZYDIS_MNEMONIC_LOOP && in->mnemonic != ZYDIS_MNEMONIC_LOOPE &&
	       in->mnemonic != ZYDIS_MNEMONIC_LOOPNE;
}

/* Unconditional transfers end a block (their target is known only at
 * run time, or is elsewhere). */
static bool ends_block(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_JMP: case ZYDIS_MNEMONIC_CALL: case ZYDIS_MNEMONIC_RET:
		return true;
	default:
		return false;
	}
}

static bool writes_memory(const struct emu_insn *in)
{
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_PUSH: case ZYDIS_MNEMONIC_CALL: case ZYDIS_MNEMONIC_ENTER:
		return true;
	default:
		break;
	}
	for (unsigned i = 0; i < in->nops; i++)
		if (in->op[i].kind == EMU_OP_MEM)
			return true;
	return false;
}

static bool gpr_op(const struct emu_operand *o, unsigned s)
{
	return o->kind == EMU_OP_REG && o->rclass == EMU_RC_GPR && o->size == s;
}

static bool mem_op(const struct emu_insn *in, const struct emu_operand *o, struct fop *f,
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
	f->disp = o->val;
	return true;
}

/* The form of a two-operand instruction of size s: 0 rr, 1 ri, 2 rm,
 * 3 mr, 4 mi, -1 none of them. Fills f's operand fields. */
static int form_of(const struct emu_insn *in, struct fop *f, unsigned s)
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

static fop_fn pick_alu(const struct emu_insn *in, struct fop *f)
{
	for (unsigned i = 0; i < sizeof(alu_table) / sizeof(alu_table[0]); i++) {
		if (alu_table[i].mnemonic != in->mnemonic)
			continue;
		for (unsigned k = 0; k < 4; k++) {
			int form = form_of(in, f, form_size[k]);
			if (form >= 0)
				return alu_table[i].fn[form][k];
		}
	}
	return NULL;
}

static fop_fn pick_mov(const struct emu_insn *in, struct fop *f)
{
	static const fop_fn mov[4][5] = {
		{ mov_rr8, mov_ri8, mov_rm8, mov_mr8, mov_mi8 },
		{ mov_rr4, mov_ri4, mov_rm4, mov_mr4, mov_mi4 },
		{ mov_rr2, mov_ri2, mov_rm2, mov_mr2, mov_mi2 },
		{ mov_rr1, mov_ri1, mov_rm1, mov_mr1, mov_mi1 },
	};
	for (unsigned k = 0; k < 4; k++) {
		int form = form_of(in, f, form_size[k]);
		if (form >= 0)
			return mov[k][form];
	}
	return NULL;
}

static bool is_cmov(unsigned m)
{
	return m >= ZYDIS_MNEMONIC_CMOVB && m <= ZYDIS_MNEMONIC_CMOVZ;
}

static bool is_setcc(unsigned m)
{
	return m >= ZYDIS_MNEMONIC_SETB && m <= ZYDIS_MNEMONIC_SETZ &&
	       m != ZYDIS_MNEMONIC_SETSSBSY;
}

static fop_fn pick_cmov(const struct emu_insn *in, struct fop *f)
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
static fop_fn pick_ext(const struct emu_insn *in, struct fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (in->nops != 2 || !(gpr_op(a, 8) || gpr_op(a, 4)) || b->size == 0 || b->size > 4)
		return NULL;
	bool zx = in->mnemonic == ZYDIS_MNEMONIC_MOVZX;
	bool s8 = a->size == 8;
	f->r0 = a->reg;
	f->imm = b->size;
	if (b->kind == EMU_OP_REG && b->rclass == EMU_RC_GPR) {
		f->r1 = b->reg;
		return zx ? (s8 ? movzx_rr8 : movzx_rr4) : (s8 ? movsx_rr8 : movsx_rr4);
	}
	if (mem_op(in, b, f, b->size))
		return zx ? (s8 ? movzx_rm8 : movzx_rm4) : (s8 ? movsx_rm8 : movsx_rm4);
	return NULL;
}

/* SHL/SHR/SAR/ROL/ROR r, imm with a count that is not 0 once masked. */
static fop_fn pick_shift(const struct emu_insn *in, struct fop *f)
{
	const struct emu_operand *a = &in->op[0], *b = &in->op[1];
	if (in->nops != 2 || !(gpr_op(a, 8) || gpr_op(a, 4)) || b->kind != EMU_OP_IMM)
		return NULL;
	unsigned n = (unsigned)((uint64_t)b->val & (a->size == 8 ? 63 : 31));
	if (n == 0)
		return NULL;
	bool s8 = a->size == 8;
	f->r0 = a->reg;
	f->imm = n;
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_SHL: return s8 ? shl_ri8 : shl_ri4;
	case ZYDIS_MNEMONIC_SHR: return s8 ? shr_ri8 : shr_ri4;
	case ZYDIS_MNEMONIC_SAR: return s8 ? sar_ri8 : sar_ri4;
	case ZYDIS_MNEMONIC_ROL: return s8 ? rol_ri8 : rol_ri4;
	case ZYDIS_MNEMONIC_ROR: return s8 ? ror_ri8 : ror_ri4;
	default: return NULL;
	}
}

/* IMUL r64/r32, r/m [, imm]. */
static fop_fn pick_imul(const struct emu_insn *in, struct fop *f)
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

/* The specialised handler, or NULL (then f_exact). */
static fop_fn pick(const struct emu_insn *in, struct fop *f)
{
	const struct emu_operand *a = &in->op[0];
	if (is_cmov(in->mnemonic))
		return pick_cmov(in, f);
	if (is_setcc(in->mnemonic)) {
		if (in->nops != 1 || !gpr_op(a, 1))
			return NULL;
		f->r0 = a->reg;
		f->imm = in->opcode & 0xf;
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
		return pick_mov(in, f);
	case ZYDIS_MNEMONIC_LEA:
		if (in->nops == 2 && (gpr_op(a, 8) || gpr_op(a, 4)) && in->asize == 8 &&
		    in->op[1].kind == EMU_OP_MEM) {
			f->r0 = a->reg;
			f->base = in->op[1].reg;
			f->index = in->op[1].index;
			f->shift = (uint8_t)__builtin_ctz(in->op[1].scale ? in->op[1].scale : 1);
			f->seg = EMU_DS;           /* LEA: no segment */
			f->disp = in->op[1].val;
			return a->size == 8 ? lea_r8 : lea_r4;
		}
		return NULL;
	case ZYDIS_MNEMONIC_INC: case ZYDIS_MNEMONIC_DEC:
		if (in->nops == 1 && (gpr_op(a, 8) || gpr_op(a, 4))) {
			f->r0 = a->reg;
			bool inc = in->mnemonic == ZYDIS_MNEMONIC_INC;
			return a->size == 8 ? (inc ? inc_r8 : dec_r8) : (inc ? inc_r4 : dec_r4);
		}
		return NULL;
	case ZYDIS_MNEMONIC_PUSH:
		if (in->osize != 8 || in->nops != 1)
			return NULL;
		if (gpr_op(a, 8)) {
			f->r0 = a->reg;
			return push_r;
		}
		if (a->kind == EMU_OP_IMM) {
			f->imm = emu_sext((uint64_t)a->val, a->size ? a->size : 8);
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
		if (in->osize != 8 || in->nops != 1 || a->kind != EMU_OP_IMM)
			return NULL;
		f->imm = (uint64_t)a->val;
		return in->mnemonic == ZYDIS_MNEMONIC_JMP ? jmp_rel : call_rel;
	case ZYDIS_MNEMONIC_RET:
		return in->osize == 8 && in->nops == 0 ? ret_near : NULL;
	default:
		if (is_jcc(in)) {
			if (in->osize != 8)
				return NULL;
			f->imm = (uint64_t)a->val;
			return jcc_fn[in->opcode & 0xf];
		}
		return pick_alu(in, f);
	}
}

static unsigned block_index(uint64_t gpa)
{
	return (unsigned)((gpa ^ (gpa >> BLOCK_BITS) ^ (gpa >> (2 * BLOCK_BITS))) &
			  (BLOCK_COUNT - 1));
}

/* Decode the block at gpa (host bytes p, avail bytes to the page end). */
static __attribute__((noinline, cold)) void block_build(struct emu_block *b, uint64_t gpa, unsigned mode, const uint8_t *p,
			unsigned avail)
{
	b->valid = false;
	b->n = 0;
	unsigned pos = 0;
	while (b->n < BLOCK_INSNS) {
		struct fop *f = &b->op[b->n];
		unsigned len = avail - pos < 15 ? avail - pos : 15;
		if (len == 0 || emu_decode_insn(mode, p + pos, len, &f->in) < 0)
			break;
		if (pos + f->in.len > BLOCK_BYTES)
			break;
		if (!is_plain(&f->in)) {
			if (b->n == 0)
				pos += f->in.len;  /* the copy covers it: rebuilt when it changes */
			break;
		}
		f->len = f->in.len;
		f->mem_write = writes_memory(&f->in);
		f->fn = pick(&f->in, f);
		if (!f->fn)
			f->fn = f_exact;
		pos += f->in.len;
		b->n++;
		if (ends_block(&f->in))
			break;
	}
	if (pos == 0)
		return;                        /* not decodable here: step() says why */
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

/* The block at RIP, or NULL when the fast path cannot run it. */
static inline struct emu_block *block_at(struct emu_cpu *cpu, struct emu_core *c)
{
	uint64_t lin = cpu->rip;
	struct emu_tlb_entry *t = tlb_of(c, lin);
	if (__builtin_expect(t->tag_x != (lin & EMU_PAGE_MASK), 0))
		return NULL;                   /* step() fills the TLB (or faults) */
	unsigned off = (unsigned)(lin & (EMU_PAGE_SIZE - 1));
	const uint8_t *p = t->host + off;
	uint64_t gpa = t->gpa + off;
	struct emu_block *b = &cpu->evm->blocks[block_index(gpa)];
	if (!b->valid || b->gpa != gpa || b->mode != c->mode || !same_bytes(b, p))
		block_build(b, gpa, c->mode, p, (unsigned)EMU_PAGE_SIZE - off);
	if (!b->valid || b->n == 0)
		return NULL;
	c->blk_gpa = gpa;
	c->blk_end = gpa + b->nbytes;
	return b;
}

/* Run one block; false when something asks for the way back to the
 * run loop (a device access, the budget, a store into the block). */
static bool block_exec(struct emu_cpu *cpu, struct emu_core *c, const struct emu_block *b)
{
	uint64_t left = c->budget_end - cpu->retired;
	unsigned n = b->n < left ? b->n : (unsigned)left;
	for (unsigned i = 0; i < n; i++) {
		const struct fop *f = &b->op[i];
		uint64_t rip = cpu->rip;
		cpu->insn_start_rip = rip;
		cpu->rip = rip + f->len;
		f->fn(cpu, c, f);
		cpu->retired++;
		if (__builtin_expect(c->blk_break, 0))
			return false;
		if (cpu->rip != rip + f->len)
			break;                 /* a branch taken */
	}
	return cpu->retired < c->budget_end;
}

/* Between blocks: what the run loop would look at before the next
 * instruction and plain instructions cannot change themselves (other
 * threads: kicks, interrupts and NMIs sent to this vCPU). */
static bool may_go_on(struct emu_cpu *cpu, struct emu_core *c)
{
	if (__atomic_load_n(&c->kick, __ATOMIC_RELAXED) || cpu->pending.nmi)
		return false;
	return !((cpu->rflags & RFLAGS_IF) && emu_lapic_has_interrupt(cpu));
}

/* Blocks back to back from RIP. The flags stay lazy on return: the run
 * loop makes them exact before anything looks at them (emu_exec.c). */
bool emu_block_run(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->mode != X86_MODE_LONG64)
		return false;
	struct emu_block *b = block_at(cpu, c);
	if (!b)
		return false;
	c->blk_break = false;
	c->event_in_insn = false;
	c->rep_pending = false;
	c->dbg_armed = false;
	while (block_exec(cpu, c, b) && may_go_on(cpu, c)) {
		b = block_at(cpu, c);
		if (!b)
			break;
	}
	return true;
}
