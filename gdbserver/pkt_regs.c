/* gdbserver/pkt_regs.c — register numbering and g/G/p/P. One table,
 * gdb_regs[], gives each register's gdb number (its index), size, type
 * and feature; target.xml is generated from it, so what is described is
 * exactly what g/p send. The g packet stops before the system state
 * (segment caches, TR/LDTR, GDTR/IDTR, the guest's DRs, MSRs, XCR0): gdb
 * reads those with p when shown, so a stop costs no MSR reads. Values
 * are little-endian, as x86 gdb expects.
 * Writing a segment register with a new selector loads its hidden part
 * as the CPU would (x86/seg_load.h), so `set $ds=0x1000` works in real
 * mode; an unchanged selector (a G resending it) leaves it alone.
 * A client told of gdb's i386 registers (target_xml.c: a vCPU in
 * protected or real mode when it connected) has its own numbering and
 * sizes: gdb_regs32[], each the low bits of a gdb_regs[] entry; a write
 * keeps the bits it cannot see. */
#include "gdbserver/gdbserver_int.h"

#include <string.h>

#include "x86/seg_load.h"

enum { F_CORE, F_SSE, F_SEGMENTS, F_SYS };

const char *const gdb_features[] = {
	[F_CORE] = "org.gnu.gdb.i386.core",
	[F_SSE] = "org.gnu.gdb.i386.sse",
	[F_SEGMENTS] = "org.gnu.gdb.i386.segments",
	[F_SYS] = "org.vmdb.x86.sys",
};
const unsigned gdb_nr_features = sizeof(gdb_features) / sizeof(gdb_features[0]);

/* gdb's amd64 numbering for 0-56 (core + sse), then ours. */
enum {
	R_RAX = 0, R_RIP = 16, R_EFLAGS = 17, R_CS = 18, R_GS = 23, R_ST0 = 24, R_FCTRL = 32,
	R_FSTAT, R_FTAG, R_FISEG, R_FIOFF, R_FOSEG, R_FOOFF, R_FOP, R_XMM0 = 40, R_MXCSR = 56,
	R_FS_BASE, R_GS_BASE, R_K_GS_BASE, R_CR0, R_CR2, R_CR3, R_CR4, R_CR8, R_EFER,
	R_G_COUNT,
	/* the g packet ends here: gdb reads the system state below with p,
	 * and only when asked for it (each costs engine calls) */
	R_TR = R_G_COUNT, R_LDTR,
	R_CS_BASE, R_SS_BASE, R_DS_BASE, R_ES_BASE, R_TR_BASE, R_LDTR_BASE,
	R_CS_LIMIT, R_LDTR_LIMIT = R_CS_LIMIT + 7, R_CS_ATTR, R_LDTR_ATTR = R_CS_ATTR + 7,
	R_GDTR_BASE, R_GDTR_LIMIT, R_IDTR_BASE, R_IDTR_LIMIT,
	R_DR0, R_DR7 = R_DR0 + 5,
	R_STAR, R_MISC_ENABLE = R_STAR + 10,
	R_XCR0,
	R_COUNT
};

/* R_STAR ... R_MISC_ENABLE in order */
static const uint32_t sys_msrs[] = {
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_FMASK, 0x174, 0x175, 0x176, MSR_IA32_APIC_BASE,
	0x10, 0x277, 0x1a0,
};
_Static_assert(sizeof(sys_msrs) / sizeof(sys_msrs[0]) == R_MISC_ENABLE - R_STAR + 1, "MSRs");

#define GPR(n, t) { n, 64, t, F_CORE }
#define SEG(n) { n, 32, "int32", F_CORE }
#define ST(n) { n, 80, "i387_ext", F_CORE }
#define FPC(n) { n, 32, "int", F_CORE }
#define XMM(n) { n, 128, "vec128", F_SSE }
#define SYS(n) { n, 64, "uint64", F_SYS }
#define SYS32(n) { n, 32, "uint32", F_SYS }
#define SEGSEL(n) { n, 32, "int32", F_SYS }
#define ATTR(n) { n, 32, "x86_seg_attr", F_SYS }

/* R_TR ... R_XCR0, in both numberings */
#define SYSTEM_STATE                                                                           \
	SEGSEL("tr"), SEGSEL("ldtr"),                                                          \
	SYS("cs_base"), SYS("ss_base"), SYS("ds_base"), SYS("es_base"), SYS("tr_base"),        \
	SYS("ldtr_base"),                                                                      \
	SYS32("cs_limit"), SYS32("ss_limit"), SYS32("ds_limit"), SYS32("es_limit"),            \
	SYS32("fs_limit"), SYS32("gs_limit"), SYS32("tr_limit"), SYS32("ldtr_limit"),          \
	ATTR("cs_attr"), ATTR("ss_attr"), ATTR("ds_attr"), ATTR("es_attr"), ATTR("fs_attr"),   \
	ATTR("gs_attr"), ATTR("tr_attr"), ATTR("ldtr_attr"),                                   \
	SYS("gdtr_base"), SYS32("gdtr_limit"), SYS("idtr_base"), SYS32("idtr_limit"),          \
	SYS("dr0"), SYS("dr1"), SYS("dr2"), SYS("dr3"), SYS("dr6"), SYS("dr7"),                \
	SYS("star"), SYS("lstar"), SYS("cstar"), SYS("sfmask"), SYS("sysenter_cs"),            \
	SYS("sysenter_esp"), SYS("sysenter_eip"), SYS("apic_base"), SYS("tsc"), SYS("pat"),    \
	SYS("misc_enable"), SYS("xcr0")

const struct gdb_reg gdb_regs[] = {
	GPR("rax", "int64"), GPR("rbx", "int64"), GPR("rcx", "int64"), GPR("rdx", "int64"),
	GPR("rsi", "int64"), GPR("rdi", "int64"), GPR("rbp", "data_ptr"), GPR("rsp", "data_ptr"),
	GPR("r8", "int64"), GPR("r9", "int64"), GPR("r10", "int64"), GPR("r11", "int64"),
	GPR("r12", "int64"), GPR("r13", "int64"), GPR("r14", "int64"), GPR("r15", "int64"),
	GPR("rip", "code_ptr"), { "eflags", 32, "i386_eflags", F_CORE },
	SEG("cs"), SEG("ss"), SEG("ds"), SEG("es"), SEG("fs"), SEG("gs"),
	ST("st0"), ST("st1"), ST("st2"), ST("st3"), ST("st4"), ST("st5"), ST("st6"), ST("st7"),
	FPC("fctrl"), FPC("fstat"), FPC("ftag"), FPC("fiseg"), FPC("fioff"), FPC("foseg"),
	FPC("fooff"), FPC("fop"),
	XMM("xmm0"), XMM("xmm1"), XMM("xmm2"), XMM("xmm3"), XMM("xmm4"), XMM("xmm5"),
	XMM("xmm6"), XMM("xmm7"), XMM("xmm8"), XMM("xmm9"), XMM("xmm10"), XMM("xmm11"),
	XMM("xmm12"), XMM("xmm13"), XMM("xmm14"), XMM("xmm15"),
	{ "mxcsr", 32, "i386_mxcsr", F_SSE },
	{ "fs_base", 64, "int64", F_SEGMENTS }, { "gs_base", 64, "int64", F_SEGMENTS },
	SYS("k_gs_base"), { "cr0", 64, "x86_cr0", F_SYS }, SYS("cr2"), SYS("cr3"),
	{ "cr4", 64, "x86_cr4", F_SYS }, SYS("cr8"), { "efer", 64, "x86_efer", F_SYS },
	SYSTEM_STATE,
};
const unsigned gdb_nr_regs = sizeof(gdb_regs) / sizeof(gdb_regs[0]);
const unsigned gdb_nr_g_regs = R_G_COUNT;

_Static_assert(sizeof(gdb_regs) / sizeof(gdb_regs[0]) == R_COUNT, "register table and enum");

/* gdb's i386 numbering: its core and sse sets (the g packet), the
 * control registers, then the system state as in gdb_regs[]; each shows
 * the low bits of a gdb_regs[] entry (src32[], then R_TR on). */
#define GPR32(n, t) { n, 32, t, F_CORE }
static const struct gdb_reg gdb_regs32[] = {
	GPR32("eax", "int32"), GPR32("ecx", "int32"), GPR32("edx", "int32"),
	GPR32("ebx", "int32"), GPR32("esp", "data_ptr"), GPR32("ebp", "data_ptr"),
	GPR32("esi", "int32"), GPR32("edi", "int32"), GPR32("eip", "code_ptr"),
	{ "eflags", 32, "i386_eflags", F_CORE },
	SEG("cs"), SEG("ss"), SEG("ds"), SEG("es"), SEG("fs"), SEG("gs"),
	ST("st0"), ST("st1"), ST("st2"), ST("st3"), ST("st4"), ST("st5"), ST("st6"), ST("st7"),
	FPC("fctrl"), FPC("fstat"), FPC("ftag"), FPC("fiseg"), FPC("fioff"), FPC("foseg"),
	FPC("fooff"), FPC("fop"),
	XMM("xmm0"), XMM("xmm1"), XMM("xmm2"), XMM("xmm3"), XMM("xmm4"), XMM("xmm5"),
	XMM("xmm6"), XMM("xmm7"), { "mxcsr", 32, "i386_mxcsr", F_SSE },
	{ "cr0", 64, "x86_cr0", F_SYS }, SYS("cr2"), SYS("cr3"), { "cr4", 64, "x86_cr4", F_SYS },
	{ "efer", 64, "x86_efer", F_SYS },
	SYSTEM_STATE,
};
static const uint8_t src32[] = {
	0, 2, 3, 1, 7, 6, 4, 5, R_RIP, R_EFLAGS, 18, 19, 20, 21, 22, 23,
	24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
	40, 41, 42, 43, 44, 45, 46, 47, R_MXCSR,
	R_CR0, R_CR2, R_CR3, R_CR4, R_EFER,
};
#define NR_SRC32 (sizeof(src32) / sizeof(src32[0]))
#define NR_REGS32 (sizeof(gdb_regs32) / sizeof(gdb_regs32[0]))
_Static_assert(NR_REGS32 == NR_SRC32 + R_COUNT - R_TR, "i386 table and its sources");

const struct gdb_reg_view gdb_view_amd64 = {
	"i386:x86-64", gdb_regs, NULL, 0, R_COUNT, R_G_COUNT,
};
/* the g packet: the core and sse sets, without the control registers */
const struct gdb_reg_view gdb_view_i386 = {
	"i386", gdb_regs32, src32, NR_SRC32, NR_REGS32, NR_SRC32 - 5,
};
const struct gdb_reg_view gdb_view_i8086 = {
	"i8086", gdb_regs32, src32, NR_SRC32, NR_REGS32, NR_SRC32 - 5,
};

const struct gdb_reg_view *gdb_view(const struct gdb_server *s)
{
	return s->view ? s->view : &gdb_view_amd64;
}

/* The gdb_regs[] entry behind the client's register n. */
static unsigned view_src(const struct gdb_reg_view *v, unsigned n)
{
	if (!v->src)
		return n;
	return n < v->nr_src ? v->src[n] : R_TR + (n - v->nr_src);
}

static uint64_t *gpr_slot(struct x86_regs *r, unsigned n)
{
	uint64_t *const slots[16] = {
		&r->rax, &r->rbx, &r->rcx, &r->rdx, &r->rsi, &r->rdi, &r->rbp, &r->rsp,
		&r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15,
	};
	return slots[n];
}

static struct x86_segment *seg_slot(struct x86_sregs *s, unsigned n)
{
	struct x86_segment *const slots[8] = { &s->cs, &s->ss, &s->ds, &s->es, &s->fs, &s->gs,
					       &s->tr, &s->ldt };
	return slots[n];
}

static uint64_t *sys_slot(struct debug_cpu_state *st, unsigned reg)
{
	switch (reg) {
	case R_FS_BASE: return &st->sregs.fs.base;
	case R_GS_BASE: return &st->sregs.gs.base;
	case R_K_GS_BASE: return &st->kernel_gs_base;
	case R_CR0: return &st->sregs.cr0;
	case R_CR2: return &st->sregs.cr2;
	case R_CR3: return &st->sregs.cr3;
	case R_CR4: return &st->sregs.cr4;
	case R_CR8: return &st->sregs.cr8;
	default: return &st->sregs.efer;
	}
}

/* FXSAVE keeps an abridged tag (1 bit per register: not empty); gdb wants
 * the full x87 tag word (2 bits: valid, zero, special, empty). ST(i) is
 * physical register (TOP + i) mod 8. */
static unsigned x87_tag_of(const uint8_t *v)
{
	unsigned exp = (v[9] & 0x7fu) << 8 | v[8];
	bool integer = v[7] & 0x80;
	bool mant_zero = true;
	for (int i = 0; i < 8; i++)
		mant_zero = mant_zero && v[i] == 0;
	if (exp == 0x7fff)
		return 2;
	if (exp == 0)
		return mant_zero ? 1 : 2;
	return integer ? 0 : 2;
}

static uint32_t x87_full_tag(const struct x86_fpu *f)
{
	unsigned top = (f->fsw >> 11) & 7;
	uint32_t tag = 0;
	for (unsigned phys = 0; phys < 8; phys++) {
		unsigned t = 3;
		if (f->ftw & (1u << phys))
			t = x87_tag_of(f->st[(phys - top) & 7]);
		tag |= t << (2 * phys);
	}
	return tag;
}

static uint8_t x87_abridged_tag(uint32_t full)
{
	uint8_t ftw = 0;
	for (unsigned phys = 0; phys < 8; phys++)
		if (((full >> (2 * phys)) & 3) != 3)
			ftw |= 1u << phys;
	return ftw;
}

static uint32_t fpu_ctl_get(const struct x86_fpu *f, unsigned reg)
{
	switch (reg) {
	case R_FCTRL: return f->fcw;
	case R_FSTAT: return f->fsw;
	case R_FTAG: return x87_full_tag(f);
	case R_FISEG: return (uint32_t)(f->fip >> 32) & 0xffff;
	case R_FIOFF: return (uint32_t)f->fip;
	case R_FOSEG: return (uint32_t)(f->fdp >> 32) & 0xffff;
	case R_FOOFF: return (uint32_t)f->fdp;
	default: return f->fop & 0x7ff;
	}
}

static void fpu_ctl_set(struct x86_fpu *f, unsigned reg, uint32_t v)
{
	switch (reg) {
	case R_FCTRL: f->fcw = (uint16_t)v; break;
	case R_FSTAT: f->fsw = (uint16_t)v; break;
	case R_FTAG: f->ftw = x87_abridged_tag(v); break;
	case R_FISEG: f->fip = (f->fip & 0xffffffffull) | (uint64_t)(v & 0xffff) << 32; break;
	case R_FIOFF: f->fip = (f->fip & ~0xffffffffull) | v; break;
	case R_FOSEG: f->fdp = (f->fdp & 0xffffffffull) | (uint64_t)(v & 0xffff) << 32; break;
	case R_FOOFF: f->fdp = (f->fdp & ~0xffffffffull) | v; break;
	default: f->fop = (uint16_t)(v & 0x7ff); break;
	}
}

static void put_le(uint8_t *out, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *in, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes && i < 8; i++)
		v |= (uint64_t)in[i] << (8 * i);
	return v;
}

/* Encode register reg into out (gdb_regs[reg].bits / 8 bytes). */
static void reg_get(struct debug_cpu_state *st, unsigned reg, uint8_t *out)
{
	unsigned bytes = gdb_regs[reg].bits / 8;
	if (reg < R_RIP)
		put_le(out, *gpr_slot(&st->regs, reg), bytes);
	else if (reg == R_RIP)
		put_le(out, st->regs.rip, bytes);
	else if (reg == R_EFLAGS)
		put_le(out, st->regs.rflags, bytes);
	else if (reg <= R_GS)
		put_le(out, seg_slot(&st->sregs, reg - R_CS)->selector, bytes);
	else if (reg < R_FCTRL)
		memcpy(out, st->fpu.st[reg - R_ST0], bytes);
	else if (reg < R_XMM0)
		put_le(out, fpu_ctl_get(&st->fpu, reg), bytes);
	else if (reg < R_MXCSR)
		memcpy(out, st->fpu.xmm[reg - R_XMM0], bytes);
	else if (reg == R_MXCSR)
		put_le(out, st->fpu.mxcsr, bytes);
	else
		put_le(out, *sys_slot(st, reg), bytes);
}

static int read_desc(void *opaque, uint64_t linear, uint64_t *desc)
{
	struct gdb_server *s = opaque;
	uint8_t b[8];
	int r = debug_mem_read(s->dbg, s->cur_g, linear, b, sizeof(b), false);
	if (r == 0)
		*desc = get_le(b, sizeof(b));
	return r;
}

/* A new selector in segment register n (gdb order cs..gs): load it. */
static int seg_set(struct gdb_server *s, struct debug_cpu_state *st, unsigned n, uint16_t sel,
		   struct err *e)
{
	static const enum x86_seg_reg arch[6] = {
		X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_ES, X86_SEG_FS, X86_SEG_GS,
	};
	struct x86_segment *seg = seg_slot(&st->sregs, n);

	if (seg->selector == sel)
		return 0;
	return x86_seg_load(&st->sregs, st->regs.rflags, arch[n], sel, read_desc, s, seg, e);
}

/* ---- the system state beyond the g packet ---- */

/* A segment's attributes as VMX packs them (the x86_seg_attr flags of
 * target.xml): type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15,
 * unusable 16. */
static uint32_t seg_attr(const struct x86_segment *g)
{
	return (uint32_t)g->type | (uint32_t)g->s << 4 | (uint32_t)g->dpl << 5 |
	       (uint32_t)g->present << 7 | (uint32_t)g->avl << 12 | (uint32_t)g->l << 13 |
	       (uint32_t)g->db << 14 | (uint32_t)g->g << 15 | (uint32_t)g->unusable << 16;
}

static void seg_set_attr(struct x86_segment *g, uint32_t v)
{
	g->type = v & 0xf;
	g->s = (v >> 4) & 1;
	g->dpl = (v >> 5) & 3;
	g->present = (v >> 7) & 1;
	g->avl = (v >> 12) & 1;
	g->l = (v >> 13) & 1;
	g->db = (v >> 14) & 1;
	g->g = (v >> 15) & 1;
	g->unusable = (v >> 16) & 1;
}

static const enum debug_sysreg sys_dr[6] = {
	DEBUG_SYSREG_DR0, DEBUG_SYSREG_DR1, DEBUG_SYSREG_DR2, DEBUG_SYSREG_DR3,
	DEBUG_SYSREG_DR6, DEBUG_SYSREG_DR7,
};

/* The field of st a segment / descriptor-table register names. */
static void *sregs_field(struct x86_sregs *sr, unsigned reg, unsigned *bytes)
{
	static const unsigned base_seg[6] = { 0, 1, 2, 3, 6, 7 };   /* cs ss ds es tr ldtr */
	*bytes = 8;
	if (reg >= R_CS_BASE && reg < R_CS_LIMIT)
		return &seg_slot(sr, base_seg[reg - R_CS_BASE])->base;
	*bytes = 4;
	if (reg >= R_CS_LIMIT && reg <= R_LDTR_LIMIT)
		return &seg_slot(sr, reg - R_CS_LIMIT)->limit;
	if (reg == R_GDTR_BASE || reg == R_IDTR_BASE) {
		*bytes = 8;
		return reg == R_GDTR_BASE ? &sr->gdt.base : &sr->idt.base;
	}
	*bytes = 2;
	return reg == R_GDTR_LIMIT ? &sr->gdt.limit : &sr->idt.limit;
}

static int sys_get(struct gdb_server *s, unsigned reg, uint64_t *v)
{
	struct debug_cpu_state st;
	struct err e = { 0 };
	if (reg >= R_DR0 && reg <= R_DR7)
		return debug_sysreg_read(s->dbg, s->cur_g, sys_dr[reg - R_DR0], v, &e);
	if (reg == R_XCR0)
		return debug_sysreg_read(s->dbg, s->cur_g, DEBUG_SYSREG_XCR0, v, &e);
	if (reg >= R_STAR && reg <= R_MISC_ENABLE)
		return debug_msr_read(s->dbg, s->cur_g, sys_msrs[reg - R_STAR], v, &e);
	if (debug_read_state(s->dbg, s->cur_g, &st) < 0)
		return -EIO;
	if (reg == R_TR || reg == R_LDTR) {
		*v = seg_slot(&st.sregs, 6 + (reg - R_TR))->selector;
	} else if (reg >= R_CS_ATTR && reg <= R_LDTR_ATTR) {
		*v = seg_attr(seg_slot(&st.sregs, reg - R_CS_ATTR));
	} else {
		unsigned bytes;
		void *f = sregs_field(&st.sregs, reg, &bytes);
		*v = 0;
		memcpy(v, f, bytes);
	}
	return 0;
}

static int sys_set(struct gdb_server *s, unsigned reg, uint64_t v, struct err *e)
{
	struct debug_cpu_state st;
	if (reg >= R_DR0 && reg <= R_DR7)
		return debug_sysreg_write(s->dbg, s->cur_g, sys_dr[reg - R_DR0], v, e);
	if (reg == R_XCR0)
		return debug_sysreg_write(s->dbg, s->cur_g, DEBUG_SYSREG_XCR0, v, e);
	if (reg >= R_STAR && reg <= R_MISC_ENABLE)
		return debug_msr_write(s->dbg, s->cur_g, sys_msrs[reg - R_STAR], v, e);
	if (debug_read_state(s->dbg, s->cur_g, &st) < 0)
		return err_set(e, EIO, "cannot read vCPU %u's registers", s->cur_g);
	if (reg == R_TR || reg == R_LDTR) {
		/* a new selector loads the descriptor, as LTR / LLDT would */
		struct x86_segment *seg = seg_slot(&st.sregs, 6 + (reg - R_TR));
		if (seg->selector != (uint16_t)v) {
			int r = x86_sys_seg_load(&st.sregs, reg == R_LDTR, (uint16_t)v, read_desc, s,
						 seg, e);
			if (r < 0)
				return r;
		}
	} else if (reg >= R_CS_ATTR && reg <= R_LDTR_ATTR) {
		seg_set_attr(seg_slot(&st.sregs, reg - R_CS_ATTR), (uint32_t)v);
	} else {
		unsigned bytes;
		void *f = sregs_field(&st.sregs, reg, &bytes);
		memcpy(f, &v, bytes);
	}
	return debug_write_state(s->dbg, s->cur_g, &st, DEBUG_STATE_SREGS, e);
}

/* Decode into st; adds to *what the parts of the state that changed. */
static int reg_set(struct gdb_server *s, struct debug_cpu_state *st, unsigned reg,
		   const uint8_t *in, unsigned *what, struct err *e)
{
	unsigned bytes = gdb_regs[reg].bits / 8;
	uint64_t v = get_le(in, bytes);
	unsigned part = DEBUG_STATE_REGS;
	if (reg < R_RIP) {
		*gpr_slot(&st->regs, reg) = v;
	} else if (reg == R_RIP) {
		st->regs.rip = v;
	} else if (reg == R_EFLAGS) {
		st->regs.rflags = (st->regs.rflags & ~0xffffffffull) | v;
	} else if (reg <= R_GS) {
		int r = seg_set(s, st, reg - R_CS, (uint16_t)v, e);
		if (r < 0)
			return r;
		part = DEBUG_STATE_SREGS;
	} else if (reg < R_FCTRL) {
		memcpy(st->fpu.st[reg - R_ST0], in, bytes);
		part = DEBUG_STATE_FPU;
	} else if (reg < R_XMM0) {
		fpu_ctl_set(&st->fpu, reg, (uint32_t)v);
		part = DEBUG_STATE_FPU;
	} else if (reg < R_MXCSR) {
		memcpy(st->fpu.xmm[reg - R_XMM0], in, bytes);
		part = DEBUG_STATE_FPU;
	} else if (reg == R_MXCSR) {
		st->fpu.mxcsr = (uint32_t)v;
		part = DEBUG_STATE_FPU;
	} else if (reg == R_K_GS_BASE) {
		st->kernel_gs_base = v;
		part = DEBUG_STATE_KGS;
	} else {
		*sys_slot(st, reg) = v;
		part = DEBUG_STATE_SREGS;
	}
	*what |= part;
	return 0;
}

static int read_state(struct gdb_server *s, struct debug_cpu_state *st)
{
	int r = debug_read_state(s->dbg, s->cur_g, st);
	return r < 0 ? -EIO : 0;
}

static int pkt_g(struct gdb_server *s, struct rsp_cur *args)
{
	struct debug_cpu_state st;
	uint8_t val[16];
	(void)args;
	int r = read_state(s, &st);
	if (r < 0)
		return r;
	const struct gdb_reg_view *v = gdb_view(s);
	for (unsigned n = 0; n < v->nr_g; n++) {
		reg_get(&st, view_src(v, n), val);
		rsp_buf_hex(&s->reply, val, v->regs[n].bits / 8);
	}
	return 0;
}

static int write_state(struct gdb_server *s, struct debug_cpu_state *st, unsigned what)
{
	if ((what & DEBUG_STATE_FPU) && !st->have_fpu)
		return -ENOTSUP;
	if ((what & DEBUG_STATE_KGS) && !st->have_kgs)
		return -ENOTSUP;
	struct err e = { 0 };
	int r = debug_write_state(s->dbg, s->cur_g, st, what, &e);
	if (r < 0)
		return gdb_error_words(s, -EIO, &e);
	rsp_buf_printf(&s->reply, "OK");
	return 0;
}

/* G: the whole block, in g order; a shorter block sets the leading
 * registers only (gdb may send fewer than we describe). */
static int pkt_bigg(struct gdb_server *s, struct rsp_cur *args)
{
	struct debug_cpu_state st;
	uint8_t val[16];
	unsigned what = 0;
	int r = read_state(s, &st);
	if (r < 0)
		return r;
	struct err e = { 0 };
	const struct gdb_reg_view *v = gdb_view(s);
	for (unsigned n = 0; n < v->nr_g && !rsp_at_end(args); n++) {
		unsigned reg = view_src(v, n);
		size_t hex = v->regs[n].bits / 4;
		reg_get(&st, reg, val);      /* bits the client's view lacks stay */
		if (rsp_left(args) < hex || rsp_hex_decode(args->p, hex, val) < 0)
			return -EINVAL;
		args->p += hex;
		r = reg_set(s, &st, reg, val, &what, &e);
		if (r < 0)
			return gdb_error_words(s, r, &e);
	}
	if (!rsp_at_end(args))
		return -EINVAL;
	/* registers gdb could not know (no FPU from the engine) are not written */
	if (!st.have_fpu)
		what &= ~(unsigned)DEBUG_STATE_FPU;
	if (!st.have_kgs)
		what &= ~(unsigned)DEBUG_STATE_KGS;
	return write_state(s, &st, what);
}

void gdb_expedite_registers(struct gdb_server *s, unsigned vcpu)
{
	const struct gdb_reg_view *v = gdb_view(s);
	struct x86_regs regs;
	if (debug_read_regs(s->dbg, vcpu, &regs) < 0)
		return;
	const uint64_t values[3] = { regs.rbp, regs.rsp, regs.rip };
	const unsigned amd64[3] = { 6, 7, R_RIP }, i386[3] = { 5, 4, 8 };
	for (unsigned i = 0; i < 3; i++) {
		unsigned n = v->src ? i386[i] : amd64[i];
		uint8_t le[8];
		put_le(le, values[i], v->regs[n].bits / 8);
		rsp_buf_hexnum(&s->reply, n, 2);     /* "%02x:", once per step: no format */
		rsp_buf_putc(&s->reply, ':');
		rsp_buf_hex(&s->reply, le, v->regs[n].bits / 8);
		rsp_buf_putc(&s->reply, ';');
	}
}

static int pkt_p(struct gdb_server *s, struct rsp_cur *args)
{
	struct debug_cpu_state st;
	const struct gdb_reg_view *v = gdb_view(s);
	uint64_t n;
	uint8_t val[16];
	if (rsp_take_hex(args, '\0', &n) < 0 || n >= v->nr)
		return -EINVAL;
	unsigned reg = view_src(v, (unsigned)n), bytes = v->regs[n].bits / 8;
	if (reg >= R_G_COUNT) {
		uint64_t value;
		if (sys_get(s, reg, &value) < 0) {
			for (unsigned i = 0; i < 2 * bytes; i++)
				rsp_buf_putc(&s->reply, 'x');     /* unavailable here */
			return 0;
		}
		put_le(val, value, bytes);
	} else {
		int r = read_state(s, &st);
		if (r < 0)
			return r;
		reg_get(&st, reg, val);
	}
	rsp_buf_hex(&s->reply, val, bytes);
	return 0;
}

static int pkt_bigp(struct gdb_server *s, struct rsp_cur *args)
{
	struct debug_cpu_state st;
	const struct gdb_reg_view *v = gdb_view(s);
	uint64_t n;
	uint8_t val[16];
	if (rsp_take_hex(args, '=', &n) < 0 || n >= v->nr)
		return -EINVAL;
	unsigned reg = view_src(v, (unsigned)n);
	size_t hex = v->regs[n].bits / 4;
	if (rsp_left(args) != hex)
		return -EINVAL;
	struct err e = { 0 };
	int r;
	if (reg >= R_G_COUNT) {
		if (rsp_hex_decode(args->p, hex, val) < 0)
			return -EINVAL;
		r = sys_set(s, reg, get_le(val, hex / 2), &e);
		if (r < 0)
			return gdb_error_words(s, r, &e);
		rsp_buf_printf(&s->reply, "OK");
		return 0;
	}
	if ((r = read_state(s, &st)) < 0)
		return r;
	reg_get(&st, reg, val);          /* bits the client's view lacks stay */
	if (rsp_hex_decode(args->p, hex, val) < 0)
		return -EINVAL;
	unsigned what = 0;
	r = reg_set(s, &st, reg, val, &what, &e);
	if (r < 0)
		return gdb_error_words(s, r, &e);
	return write_state(s, &st, what);
}

const struct gdb_packet gdb_pkt_regs[] = {
	{ "g", pkt_g, true, false, true },
	{ "G", pkt_bigg, true, false, true },
	{ "p", pkt_p, true, false, true },
	{ "P", pkt_bigp, true, false, true },
	{ NULL, NULL, false },
};
