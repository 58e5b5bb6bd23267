/* engine/emu/emu_exec_x87.c — the x87 FPU: every D8-DF instruction and
 * FWAIT. State and its encodings: emu_x87.h.
 *
 * How it is exact: the host is x86-64 and has the same x87, so each
 * arithmetic, load, store, compare, stack or transcendental instruction
 * runs as the guest's own instruction on the host's FPU holding the
 * guest's whole x87 state. host_exec() loads the guest's registers, tags,
 * TOP, condition codes and control word (precision, rounding, exception
 * masks) with FXRSTOR64 - exception flags cleared, so nothing can fault on
 * the host - and executes the guest's opcode and ModRM byte out of a
 * table of every D8-DF instruction (register forms as they are; memory
 * forms with the operand at [RDX], a buffer that holds the guest's
 * operand); FXSAVE64 brings the state back, FNINIT drops whatever the
 * instruction left pending, and the host's control word is restored. So
 * stack overflow and underflow, masked responses (QNaN indefinite),
 * unmasked exceptions (the destination and the stack left as the CPU
 * leaves them), condition codes, precision control and the transcendental
 * functions' bits are the silicon's own, in one asm statement: no floating
 * point of vmdb's own runs under the guest's control word. (The XMM
 * registers FXRSTOR64 loads are clobbered; MXCSR is the host's own.)
 *
 * What the handlers add: the guest's memory (read before, written after
 * when the host stored: an unmasked exception other than precision
 * suppresses a store), the sticky exception flags (the host's new ones are
 * ORed into the guest's; ES and B are set with an unmasked one), EFLAGS of
 * FCOMI/FUCOMI(P), the instruction pointers, and what the host must not
 * run: the control instructions (FLDCW, FNSTCW, FNSTSW, FNCLEX, FNINIT,
 * FNSTENV/FLDENV, FNSAVE/FRSTOR, FWAIT), done here as the SDM says.
 *
 * Exceptions to the guest: #NM when CR0.EM or CR0.TS is set (FWAIT: MP and
 * TS); #MF at the next waiting x87 instruction after an unmasked exception
 * when CR0.NE is set (with NE clear the legacy FERR# interrupt is not
 * modelled: nothing is raised). The instruction pointers follow this
 * host's CPU (FOP and FDP only saved with an unmasked exception, FCS/FDS
 * zero): FIP is the RIP of the last non-control instruction.
 * Environment images use the protected-mode layouts (also in real mode). */
#include "engine/emu/emu_x87.h"

#include <string.h>
#include <Zydis/Zydis.h>

#include "engine/emu/emu_core.h"

#define ENV32_SIZE 28
#define ENV16_SIZE 14
#define REGS_SIZE  80
#define HOST_IMG   512                /* FXSAVE64 image */
#define FX_FSW     2                  /* offsets in it */
#define FX_FTW     4
#define FX_MXCSR   24
#define FX_ST0     32
#define TABLE_MEM  512                /* host table: register forms, then memory forms */

/* --- state helpers -------------------------------------------------------------------- */

static bool reg_empty(const struct x86_fpu *f, unsigned phys)
{
	return !(f->ftw & (1u << phys));
}

/* Tag of a non-empty register from its value (SDM vol. 1, 8.1.7). */
static unsigned value_tag(const uint8_t *v)
{
	uint64_t sig;
	uint16_t se;
	memcpy(&sig, v, 8);
	memcpy(&se, v + 8, 2);
	unsigned exp = se & 0x7fff;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return sig ? 2 : 1;
	return (sig >> 63) ? 0 : 2;        /* an unnormal is special */
}

uint16_t emu_x87_full_tags(const struct x86_fpu *f)
{
	unsigned top = emu_x87_top(f);
	uint16_t tw = 0;
	for (unsigned p = 0; p < 8; p++) {
		unsigned t = reg_empty(f, p) ? 3 : value_tag(f->st[(p - top) & 7]);
		tw |= (uint16_t)(t << (2 * p));
	}
	return tw;
}

/* ES and B: set while an exception flag is set whose mask bit is clear. */
static uint16_t with_summary(uint16_t sw, uint16_t cw)
{
	if (sw & ~cw & X87_SW_EXC)
		return sw | X87_SW_ES | X87_SW_B;
	return sw & ~(X87_SW_ES | X87_SW_B);
}

/* FLDCW and the environment loads: reserved bits read as the CPU has them. */
static uint16_t cw_value(uint16_t v)
{
	return (uint16_t)((v & 0x1f3fu) | 0x40u);
}

void emu_x87_set_top(struct x86_fpu *f, unsigned top)
{
	uint8_t old[8][16];
	unsigned shift = (top - emu_x87_top(f)) & 7;
	memcpy(old, f->st, sizeof(old));
	for (unsigned i = 0; i < 8; i++)
		memcpy(f->st[i], old[(i + shift) & 7], 16);
	f->fsw = (uint16_t)((f->fsw & ~X87_SW_TOP) | top << 11);
}

/* FNINIT (and FNSAVE after storing): the registers keep their contents. */
static void x87_init(struct x86_fpu *f)
{
	emu_x87_set_top(f, 0);
	f->fcw = cw_value(X87_CW_INIT);
	f->fsw = 0;
	f->ftw = 0;
	f->fop = 0;
	f->fip = f->fdp = 0;
}

/* #NM, then (waiting instructions) a pending unmasked exception: #MF. */
static void x87_check(struct emu_cpu *cpu, bool waiting)
{
	if (cpu->sregs.cr0 & (CR0_EM | CR0_TS))
		emu_fault(cpu, X86_NM, false, 0);
	if (waiting && (cpu->fpu.fsw & X87_SW_ES) && (cpu->sregs.cr0 & CR0_NE))
		emu_fault(cpu, X86_MF, false, 0);
}

/* --- the host's FPU ------------------------------------------------------------------- */

struct host_run {
	uint8_t img[HOST_IMG] __attribute__((aligned(16)));   /* FXRSTOR64 in, FXSAVE64 out */
	uint8_t mem[16];              /* the memory operand, at [RDX] */
	uint8_t ah;                   /* SAHF before: the guest's CF PF ZF (FCMOVcc) */
	uint8_t cf, pf, zf;           /* after: FCOMI/FUCOMI results */
};

/* Run table entry idx: register forms (opcode - 0xd8) * 64 + (modrm & 63),
 * memory forms TABLE_MEM + (opcode - 0xd8) * 8 + reg, each 8 bytes: the
 * instruction, a jmp rel32 to the end, a pad. */
__attribute__((noinline)) static void host_exec(struct host_run *h, unsigned idx)
{
	uint16_t saved_cw;
	__asm__ volatile(
		"fnstcw %[sv]\n\t"
		"fxrstor64 %[img]\n\t"
		"movzbl %[ah], %%eax\n\t"   /* not movb to %ah: the operand may need a REX prefix */
		"shll $8, %%eax\n\t"
		"sahf\n\t"
		"leaq 3f(%%rip), %%r8\n\t"
		"leaq (%%r8,%%rcx,8), %%r8\n\t"
		"jmp *%%r8\n"
		"3:\n\t"
		".set x87_ix, 0\n\t"
		".rept 512\n\t"
		".byte 0xd8 + (x87_ix >> 6), 0xc0 + (x87_ix & 63), 0xe9\n\t"
		".long 9f - . - 4\n\t"
		".byte 0x90\n\t"
		".set x87_ix, x87_ix + 1\n\t"
		".endr\n\t"
		".set x87_ix, 0\n\t"
		".rept 64\n\t"
		".byte 0xd8 + (x87_ix >> 3), 0x02 + ((x87_ix & 7) << 3), 0xe9\n\t"
		".long 9f - . - 4\n\t"
		".byte 0x90\n\t"
		".set x87_ix, x87_ix + 1\n\t"
		".endr\n"
		"9:\n\t"
		"setc %[cf]\n\t"
		"setp %[pf]\n\t"
		"setz %[zf]\n\t"
		"fxsave64 %[img]\n\t"
		"fninit\n\t"
		"fldcw %[sv]"
		: [img] "+m"(h->img), [sv] "=m"(saved_cw), [cf] "=m"(h->cf), [pf] "=m"(h->pf),
		  [zf] "=m"(h->zf)
		: "c"((uint64_t)idx), "d"(h->mem), [ah] "m"(h->ah)
		: "rax", "r8", "cc", "memory", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
		  "st(6)", "st(7)", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7",
		  "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* The host image of the guest's x87 state: no exception flags, no
 * pointers; MXCSR is the host's own (FXRSTOR loads it too). */
static void host_image(const struct x86_fpu *f, uint8_t *img)
{
	memset(img, 0, FX_ST0 + 8 * 16);
	put16(img + 0, f->fcw);
	put16(img + FX_FSW, f->fsw & (X87_SW_C0 | X87_SW_C1 | X87_SW_C2 | X87_SW_C3 | X87_SW_TOP));
	img[FX_FTW] = f->ftw;
	put32(img + FX_MXCSR, __builtin_ia32_stmxcsr());
	for (unsigned i = 0; i < 8; i++)
		memcpy(img + FX_ST0 + 16 * i, f->st[i], 10);
}

/* --- instruction classes ---------------------------------------------------------------- */

enum x87_mem { MEM_NONE, MEM_LOAD, MEM_STORE, MEM_CONTROL };

/* Memory forms: operand size (bytes) and direction by opcode and ModRM.reg. */
static const struct { uint8_t size, dir; } mem_forms[8][8] = {
	/* D8 */ { {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD},
		   {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD} },
	/* D9 */ { {4, MEM_LOAD}, {0, MEM_NONE}, {4, MEM_STORE}, {4, MEM_STORE}, {0, MEM_CONTROL},
		   {0, MEM_CONTROL}, {0, MEM_CONTROL}, {0, MEM_CONTROL} },
	/* DA */ { {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD},
		   {4, MEM_LOAD}, {4, MEM_LOAD}, {4, MEM_LOAD} },
	/* DB */ { {4, MEM_LOAD}, {4, MEM_STORE}, {4, MEM_STORE}, {4, MEM_STORE}, {0, MEM_NONE},
		   {10, MEM_LOAD}, {0, MEM_NONE}, {10, MEM_STORE} },
	/* DC */ { {8, MEM_LOAD}, {8, MEM_LOAD}, {8, MEM_LOAD}, {8, MEM_LOAD}, {8, MEM_LOAD},
		   {8, MEM_LOAD}, {8, MEM_LOAD}, {8, MEM_LOAD} },
	/* DD */ { {8, MEM_LOAD}, {8, MEM_STORE}, {8, MEM_STORE}, {8, MEM_STORE}, {0, MEM_CONTROL},
		   {0, MEM_NONE}, {0, MEM_CONTROL}, {0, MEM_CONTROL} },
	/* DE */ { {2, MEM_LOAD}, {2, MEM_LOAD}, {2, MEM_LOAD}, {2, MEM_LOAD}, {2, MEM_LOAD},
		   {2, MEM_LOAD}, {2, MEM_LOAD}, {2, MEM_LOAD} },
	/* DF */ { {2, MEM_LOAD}, {2, MEM_STORE}, {2, MEM_STORE}, {2, MEM_STORE}, {10, MEM_LOAD},
		   {8, MEM_LOAD}, {10, MEM_STORE}, {8, MEM_STORE} },
};

/* Register forms the host runs: every one the SDM defines (and the
 * aliases every x87 has) except the control instructions. */
static bool host_reg_form(unsigned op, unsigned modrm)
{
	unsigned r = (modrm >> 3) & 7;
	switch (op) {
	case 0xd8: case 0xdc:
		return true;
	case 0xd9:
		switch (r) {
		case 2: return modrm == 0xd0;                     /* FNOP */
		case 4: return (modrm & 7) <= 1 || (modrm & 7) == 4 || (modrm & 7) == 5;
		case 5: return (modrm & 7) != 7;                  /* the constants */
		default: return true;
		}
	case 0xdd:
		return r < 6;
	case 0xda:
		return r < 4 || modrm == 0xe9;
	case 0xdb:
		return r < 4 || r == 5 || r == 6;
	case 0xde:
		return r != 3 || modrm == 0xd9;
	case 0xdf:
		return r != 4 && r != 7;
	default:
		return false;
	}
}

static bool is_fcomi(unsigned op, unsigned modrm)
{
	return (op == 0xdb || op == 0xdf) && modrm >= 0xe8 && modrm <= 0xf7;
}

static const struct emu_operand *mem_operand(const struct emu_insn *in)
{
	for (unsigned i = 0; i < in->nops; i++)
		if (in->op[i].kind == EMU_OP_MEM)
			return &in->op[i];
	return NULL;
}

/* --- the host-run instructions --------------------------------------------------------- */

/* Take the host's result: registers, tags, TOP, condition codes, and the
 * exception flags it raised on top of the guest's. */
static void take_state(struct emu_cpu *cpu, const uint8_t *img, uint16_t raised)
{
	struct x86_fpu *f = &cpu->fpu;
	uint16_t sw = get16(img + FX_FSW);
	uint16_t keep = f->fsw & (X87_SW_EXC | X87_SW_SF | X87_SW_ES | X87_SW_B);
	f->fsw = (uint16_t)(keep | raised |
			    (sw & (X87_SW_C0 | X87_SW_C1 | X87_SW_C2 | X87_SW_C3 | X87_SW_TOP)));
	if (raised & ~f->fcw & X87_SW_EXC)
		f->fsw |= X87_SW_ES | X87_SW_B;
	f->ftw = img[FX_FTW];
	for (unsigned i = 0; i < 8; i++) {
		memset(f->st[i], 0, 16);
		memcpy(f->st[i], img + FX_ST0 + 16 * i, 10);
	}
}

/* The table entry of a host-run instruction and its memory operand
 * (size, direction); false: not one the host runs. */
static bool host_form(const struct emu_insn *in, unsigned *idx, unsigned *size, unsigned *dir,
		      const struct emu_operand **mo)
{
	unsigned op = in->opcode, modrm = in->modrm, reg = (modrm >> 3) & 7;
	*mo = NULL;
	*size = 0;
	*dir = MEM_NONE;
	if (modrm >= 0xc0) {
		*idx = (op & 7) * 64 + (modrm & 63);
		return host_reg_form(op, modrm);
	}
	*mo = mem_operand(in);
	*size = mem_forms[op & 7][reg].size;
	*dir = mem_forms[op & 7][reg].dir;
	*idx = TABLE_MEM + (op & 7) * 8 + reg;
	return *mo && (*dir == MEM_LOAD || *dir == MEM_STORE);
}

static void host_insn(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode, modrm = in->modrm;
	const struct emu_operand *mo;
	uint64_t lin = 0;
	unsigned size, dir, idx;
	struct host_run h;

	if (!host_form(in, &idx, &size, &dir, &mo)) {
		emu_unimplemented(cpu, in);
		return;
	}
	x87_check(cpu, true);
	memset(h.mem, 0, sizeof(h.mem));
	if (mo) {
		lin = emu_op_lin(cpu, in, mo);
		if (dir == MEM_STORE)
			emu_probe_write(cpu, lin, size);
		emu_read_bytes(cpu, lin, h.mem, size, false);
	}
	host_image(&cpu->fpu, h.img);
	uint64_t fl = cpu->rflags;
	h.ah = (uint8_t)((fl & (RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF)) | 2);
	host_exec(&h, idx);

	uint16_t cw = cpu->fpu.fcw;
	uint16_t raised = get16(h.img + FX_FSW) & (X87_SW_EXC | X87_SW_SF);
	bool unmasked = raised & ~cw & X87_SW_EXC;
	/* a store happens unless an unmasked exception other than precision stopped it */
	if (dir == MEM_STORE && !(raised & ~cw & (X87_SW_EXC & ~X87_SW_PE)))
		emu_write_bytes(cpu, lin, h.mem, size, false);
	take_state(cpu, h.img, raised);
	if (is_fcomi(op, modrm) && !(raised & ~cw & X87_SW_IE)) {
		fl &= ~(RFLAGS_CF | RFLAGS_PF | RFLAGS_ZF | RFLAGS_OF | RFLAGS_SF | RFLAGS_AF);
		fl |= (h.cf ? RFLAGS_CF : 0) | (h.pf ? RFLAGS_PF : 0) | (h.zf ? RFLAGS_ZF : 0);
		cpu->rflags = fl;
	}
	cpu->fpu.fip = cpu->insn_start_rip;
	if (unmasked) {
		cpu->fpu.fop = (uint16_t)(((op & 7) << 8) | modrm);
		cpu->fpu.fdp = mo ? emu_op_ea(cpu, in, mo) : 0;
	} else {
		cpu->fpu.fop = 0;
		cpu->fpu.fdp = 0;
	}
}

/* --- control instructions ---------------------------------------------------------------- */

static void do_fldcw(struct emu_cpu *cpu, uint64_t lin)
{
	struct x86_fpu *f = &cpu->fpu;
	f->fcw = cw_value((uint16_t)emu_read(cpu, lin, 2));
	f->fsw = with_summary(f->fsw, f->fcw);
}

/* The environment image: 28 bytes (32-bit operand size) or 14 (16-bit). */
static unsigned env_size(const struct emu_insn *in)
{
	return in->osize == 2 ? ENV16_SIZE : ENV32_SIZE;
}

static void env_store(const struct x86_fpu *f, uint8_t *p, unsigned size)
{
	uint16_t tw = emu_x87_full_tags(f);
	if (size == ENV16_SIZE) {
		put16(p + 0, f->fcw);
		put16(p + 2, f->fsw);
		put16(p + 4, tw);
		put16(p + 6, (uint16_t)f->fip);
		put16(p + 8, 0);
		put16(p + 10, (uint16_t)f->fdp);
		put16(p + 12, 0);
		return;
	}
	put32(p + 0, 0xffff0000u | f->fcw);
	put32(p + 4, 0xffff0000u | f->fsw);
	put32(p + 8, 0xffff0000u | tw);
	put32(p + 12, (uint32_t)f->fip);
	put32(p + 16, (uint32_t)(f->fop & 0x7ff) << 16);
	put32(p + 20, (uint32_t)f->fdp);
	put32(p + 24, 0xffff0000u);
}

static void env_load(struct x86_fpu *f, const uint8_t *p, unsigned size)
{
	bool small = size == ENV16_SIZE;
	uint16_t sw = get16(p + (small ? 2 : 4));
	emu_x87_set_top(f, (sw >> 11) & 7);
	f->fcw = cw_value(get16(p));
	f->fsw = sw;
	f->ftw = emu_x87_abridged_tags(get16(p + (small ? 4 : 8)));
	f->fip = small ? get16(p + 6) : get32(p + 12);
	f->fop = small ? 0 : (uint16_t)((get32(p + 16) >> 16) & 0x7ff);
	f->fdp = small ? get16(p + 10) : get32(p + 20);
	f->fsw = with_summary(f->fsw, f->fcw);
}

/* FNSTENV (save: FNSAVE, the registers too, then FNINIT's state). */
static void do_fnstenv(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t lin, bool save)
{
	struct x86_fpu *f = &cpu->fpu;
	uint8_t buf[ENV32_SIZE + REGS_SIZE];
	unsigned es = env_size(in), n = es + (save ? REGS_SIZE : 0);
	env_store(f, buf, es);
	if (save)
		for (unsigned i = 0; i < 8; i++)
			memcpy(buf + es + 10 * i, f->st[i], 10);
	emu_write_bytes(cpu, lin, buf, n, false);
	if (save) {
		x87_init(f);
	} else {
		f->fcw |= X87_CW_MASKS;   /* FNSTENV masks every exception after storing */
	}
}

/* FLDENV (restore: FRSTOR, the registers too). */
static void do_fldenv(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t lin, bool restore)
{
	struct x86_fpu *f = &cpu->fpu;
	uint8_t buf[ENV32_SIZE + REGS_SIZE];
	unsigned es = env_size(in), n = es + (restore ? REGS_SIZE : 0);
	emu_read_bytes(cpu, lin, buf, n, false);
	env_load(f, buf, es);
	if (restore)
		for (unsigned i = 0; i < 8; i++) {
			memset(f->st[i], 0, 16);
			memcpy(f->st[i], buf + es + 10 * i, 10);
		}
}

/* D9 /4-/7 and DD /4, /6, /7, by opcode and ModRM.reg. */
#define CTL(op, reg) (((op) & 7) << 3 | (reg))
enum {
	FLDENV = CTL(0xd9, 4), FLDCW = CTL(0xd9, 5), FNSTENV = CTL(0xd9, 6), FNSTCW = CTL(0xd9, 7),
	FRSTOR = CTL(0xdd, 4), FNSAVE = CTL(0xdd, 6), FNSTSW_M = CTL(0xdd, 7),
};

static void control_mem(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned key = CTL(in->opcode, (in->modrm >> 3) & 7);
	const struct emu_operand *mo = mem_operand(in);
	if (!mo) {
		emu_unimplemented(cpu, in);
		return;
	}
	x87_check(cpu, key == FLDENV || key == FLDCW || key == FRSTOR);   /* the waiting ones */
	uint64_t lin = emu_op_lin(cpu, in, mo);
	switch (key) {
	case FLDENV: do_fldenv(cpu, in, lin, false); break;
	case FLDCW: do_fldcw(cpu, lin); break;
	case FNSTENV: do_fnstenv(cpu, in, lin, false); break;
	case FNSTCW: emu_write(cpu, lin, 2, cpu->fpu.fcw); break;
	case FRSTOR: do_fldenv(cpu, in, lin, true); break;
	case FNSAVE: do_fnstenv(cpu, in, lin, true); break;
	default: emu_write(cpu, lin, 2, cpu->fpu.fsw); break;            /* FNSTSW_M */
	}
}

/* DB E0-E4 (FENI, FDISI, FNCLEX, FNINIT, FSETPM) and DF E0 (FNSTSW AX). */
static bool control_reg(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode, modrm = in->modrm;
	if (op == 0xdf && modrm == 0xe0) {
		x87_check(cpu, false);
		emu_gpr_set(cpu, EMU_RAX, 2, cpu->fpu.fsw);
		return true;
	}
	if (op != 0xdb || modrm < 0xe0 || modrm > 0xe4)
		return false;
	x87_check(cpu, modrm != 0xe2 && modrm != 0xe3);
	if (modrm == 0xe2)
		cpu->fpu.fsw &= (uint16_t)~(X87_SW_EXC | X87_SW_SF | X87_SW_ES | X87_SW_B);
	else if (modrm == 0xe3)
		x87_init(&cpu->fpu);
	return true;                       /* FENI, FDISI, FSETPM: no-ops since the 387 */
}

static void h_x87(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned op = in->opcode, modrm = in->modrm;
	if (in->opmap != 0 || op < 0xd8 || op > 0xdf) {
		emu_unimplemented(cpu, in);
		return;
	}
	if (modrm < 0xc0 && mem_forms[op & 7][(modrm >> 3) & 7].dir == MEM_CONTROL) {
		control_mem(cpu, in);
		return;
	}
	if (modrm >= 0xc0 && control_reg(cpu, in))
		return;
	host_insn(cpu, in);
}

static void h_fwait(struct emu_cpu *cpu, const struct emu_insn *in)
{
	(void)in;
	if ((cpu->sregs.cr0 & (CR0_MP | CR0_TS)) == (CR0_MP | CR0_TS))
		emu_fault(cpu, X86_NM, false, 0);
	if ((cpu->fpu.fsw & X87_SW_ES) && (cpu->sregs.cr0 & CR0_NE))
		emu_fault(cpu, X86_MF, false, 0);
}

#define E(m) { ZYDIS_MNEMONIC_##m, h_x87 }

static const struct emu_handler_entry emu_exec_x87_table[] = {
	E(F2XM1), E(FABS), E(FADD), E(FADDP), E(FBLD), E(FBSTP), E(FCHS), E(FCMOVB),
	E(FCMOVBE), E(FCMOVE), E(FCMOVNB), E(FCMOVNBE), E(FCMOVNE), E(FCMOVNU), E(FCMOVU),
	E(FCOM), E(FCOMI), E(FCOMIP), E(FCOMP), E(FCOMPP), E(FCOS), E(FDECSTP),
	E(FDISI8087_NOP), E(FDIV), E(FDIVP), E(FDIVR), E(FDIVRP), E(FENI8087_NOP), E(FFREE),
	E(FFREEP), E(FIADD), E(FICOM), E(FICOMP), E(FIDIV), E(FIDIVR), E(FILD), E(FIMUL),
	E(FINCSTP), E(FIST), E(FISTP), E(FISTTP), E(FISUB), E(FISUBR), E(FLD), E(FLD1),
	E(FLDCW), E(FLDENV), E(FLDL2E), E(FLDL2T), E(FLDLG2), E(FLDLN2), E(FLDPI), E(FLDZ),
	E(FMUL), E(FMULP), E(FNCLEX), E(FNINIT), E(FNOP), E(FNSAVE), E(FNSTCW), E(FNSTENV),
	E(FNSTSW), E(FPATAN), E(FPREM), E(FPREM1), E(FPTAN), E(FRNDINT), E(FRSTOR), E(FSCALE),
	E(FSETPM287_NOP), E(FSIN), E(FSINCOS), E(FSQRT), E(FST), E(FSTP), E(FSTPNCE), E(FSUB),
	E(FSUBP), E(FSUBR), E(FSUBRP), E(FTST), E(FUCOM), E(FUCOMI), E(FUCOMIP), E(FUCOMP),
	E(FUCOMPP), E(FXAM), E(FXCH), E(FXTRACT), E(FYL2X), E(FYL2XP1),
	{ ZYDIS_MNEMONIC_FWAIT, h_fwait },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_x87_table);
