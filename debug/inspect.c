/* debug/inspect.c — the monitor's views of a stopped vCPU (inspect.h):
 * page tables through x86_paging_enum, descriptor tables through the
 * decoders of x86/desc.h, registers through vcpu.c, the interrupt
 * controllers through engine_ops.irqchip_get. */
#include "debug/inspect.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug/debug_int.h"
#include "x86/desc.h"
#include "x86/paging.h"

static void say(const struct debug_text *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(const struct debug_text *out, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	out->emit(out->opaque, line);
}

static int sregs_of(struct debug *d, unsigned vcpu, struct x86_sregs *s, struct err *e)
{
	int r = debug_vcpu_sregs(d, vcpu, s);
	if (r < 0)
		return err_set(e, -r, "cannot read vCPU %u's system registers", vcpu);
	return 0;
}

/* ---- address translation ---- */

int debug_inspect_gva2gpa(struct debug *d, unsigned vcpu, uint64_t gva,
			  const struct debug_text *out, struct err *e)
{
	struct x86_sregs s;
	uint64_t gpa;
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	int r = x86_translate(&s, vm_read_phys, d->vm, gva, &gpa);
	if (r == -EINVAL)
		return err_set(e, EINVAL, "0x%" PRIx64 " is not canonical", gva);
	if (r < 0)
		return err_set(e, EFAULT, "0x%" PRIx64 " is not mapped", gva);
	say(out, "gpa: 0x%" PRIx64 "\n", gpa);
	return 0;
}

static int too_big(int r, struct err *e)
{
	if (r == -E2BIG)
		return err_set(e, E2BIG, "the page tables go on past 16M entries (tables that "
			       "map themselves?); the listing stops there");
	return 0;
}

/* info mem: QEMU merges virtually contiguous leaves with the same user /
 * write rights into one range, whatever their physical addresses. */
struct mem_range {
	const struct debug_text *out;
	bool open;
	uint64_t start, end;
	bool user, write;
	unsigned width;            /* hex digits of an address */
};

static void mem_range_flush(struct mem_range *mr)
{
	if (!mr->open)
		return;
	say(mr->out, "%0*" PRIx64 "-%0*" PRIx64 " %0*" PRIx64 " %cr%c\n", mr->width, mr->start,
	    mr->width, mr->end, mr->width, mr->end - mr->start, mr->user ? 'u' : '-',
	    mr->write ? 'w' : '-');
	mr->open = false;
}

static int mem_range_add(void *opaque, const struct x86_mapping *m)
{
	struct mem_range *mr = opaque;
	if (mr->open && m->va == mr->end && m->user == mr->user && m->write == mr->write) {
		mr->end += m->size;
		return 0;
	}
	mem_range_flush(mr);
	*mr = (struct mem_range){ mr->out, true, m->va, m->va + m->size, m->user, m->write,
				  mr->width };
	return 0;
}

static unsigned addr_width(const struct x86_sregs *s)
{
	return (s->efer & EFER_LMA) || (s->cr4 & CR4_PAE) ? 16 : 8;
}

int debug_inspect_mem(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e)
{
	struct x86_sregs s;
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	struct mem_range mr = { .out = out, .width = addr_width(&s) };
	int r = x86_paging_enum(&s, vm_read_phys, d->vm, mem_range_add, &mr);
	if (r == -ENOENT) {
		say(out, "PG disabled\n");
		return 0;
	}
	mem_range_flush(&mr);
	return too_big(r, e);
}

struct tlb_walk {
	const struct debug_text *out;
	unsigned width;
};

/* One line per leaf, QEMU's letters: X(no-execute) G P(large) D A
 * C(PCD) T(PWT) U W, '-' where clear. */
static int tlb_line(void *opaque, const struct x86_mapping *m)
{
	struct tlb_walk *w = opaque;
	say(w->out, "%0*" PRIx64 ": %0*" PRIx64 " %c%c%c%c%c%c%c%c%c\n", w->width, m->va, w->width,
	    m->pa, m->nx ? 'X' : '-', m->global ? 'G' : '-', m->size > X86_PAGE_SIZE ? 'P' : '-',
	    m->dirty ? 'D' : '-', m->accessed ? 'A' : '-', m->pcd ? 'C' : '-', m->pwt ? 'T' : '-',
	    m->user ? 'U' : '-', m->write ? 'W' : '-');
	return 0;
}

int debug_inspect_tlb(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e)
{
	struct x86_sregs s;
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	struct tlb_walk w = { out, addr_width(&s) };
	int r = x86_paging_enum(&s, vm_read_phys, d->vm, tlb_line, &w);
	if (r == -ENOENT)
		say(out, "PG disabled\n");
	return r == -ENOENT ? 0 : too_big(r, e);
}

/* ---- xp ---- */

struct xp_format {
	unsigned count;
	char fmt;                  /* x d u o c */
	unsigned size;             /* 1 2 4 8 */
};

static int xp_parse(const char *spec, struct xp_format *f, uint64_t *addr, struct err *e)
{
	*f = (struct xp_format){ 1, 'x', 4 };
	const char *p = spec;
	if (*p == '/') {
		char *end;
		p++;
		if (isdigit((unsigned char)*p)) {
			unsigned long n = strtoul(p, &end, 10);
			if (n == 0 || n > 65536)
				return err_set(e, EINVAL, "count must be 1..65536");
			f->count = (unsigned)n;
			p = end;
		}
		for (; *p && *p != ' '; p++) {
			if (strchr("xduoc", *p)) {
				f->fmt = *p;
				if (*p == 'c')
					f->size = 1;
			} else if (strchr("bhwg", *p)) {
				f->size = *p == 'b' ? 1 : *p == 'h' ? 2 : *p == 'w' ? 4 : 8;
			} else {
				return err_set(e, EINVAL, "unknown format letter '%c' (x d u o c, "
					       "b h w g)", *p);
			}
		}
	}
	while (*p == ' ')
		p++;
	char *end;
	errno = 0;
	*addr = strtoull(p, &end, 0);
	if (!*p || *end || errno || *p == '-')
		return err_set(e, EINVAL, "xp needs a guest-physical address ('%s')", p);
	return 0;
}

static void xp_value(char *buf, size_t size, const struct xp_format *f, uint64_t v)
{
	int width = (int)f->size * 2;
	int64_t sv = f->size == 8 ? (int64_t)v : (int64_t)(v << (64 - 8 * f->size)) >>
						   (64 - 8 * f->size);
	switch (f->fmt) {
	case 'd': snprintf(buf, size, " %*" PRId64, width + 1, sv); break;
	case 'u': snprintf(buf, size, " %*" PRIu64, width + 1, v); break;
	case 'o': snprintf(buf, size, " %#*" PRIo64, width + 2, v); break;
	case 'c': snprintf(buf, size, isprint((int)v) ? " '%c'" : " \\x%02x", (int)v); break;
	default: snprintf(buf, size, " 0x%0*" PRIx64, width, v); break;
	}
}

int debug_inspect_xp(struct debug *d, const char *spec, const struct debug_text *out,
		     struct err *e)
{
	struct xp_format f;
	uint64_t addr = 0;
	if (xp_parse(spec, &f, &addr, e) < 0)
		return -e->code;
	unsigned per_line = 16 / f.size;
	for (unsigned i = 0; i < f.count; i += per_line) {
		char line[256];
		size_t len = (size_t)snprintf(line, sizeof(line), "%016" PRIx64 ":", addr);
		for (unsigned j = 0; j < per_line && i + j < f.count; j++, addr += f.size) {
			uint8_t b[8];
			uint64_t v = 0;
			if (debug_mem_read(d, 0, addr, b, f.size, true) < 0) {
				if (j)
					say(out, "%s\n", line);
				return err_set(e, EFAULT, "0x%" PRIx64 " is not guest RAM", addr);
			}
			for (unsigned k = 0; k < f.size; k++)
				v |= (uint64_t)b[k] << (8 * k);
			xp_value(line + len, sizeof(line) - len, &f, v);
			len = strlen(line);
		}
		say(out, "%s\n", line);
	}
	return 0;
}

/* ---- registers ---- */

/* "[PG WP PE]": the names of the set bits, highest first. */
static void bit_names(char *buf, size_t size, uint64_t v, const char *const names[64])
{
	size_t len = (size_t)snprintf(buf, size, "[");
	for (int b = 63; b >= 0 && len < size; b--)
		if ((v >> b) & 1 && names[b])
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len > 1 ? " " : "",
						names[b]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

static const char *const cr0_names[64] = {
	[0] = "PE", [1] = "MP", [2] = "EM", [3] = "TS", [4] = "ET", [5] = "NE", [16] = "WP",
	[18] = "AM", [29] = "NW", [30] = "CD", [31] = "PG",
};
static const char *const cr4_names[64] = {
	[0] = "VME", [1] = "PVI", [2] = "TSD", [3] = "DE", [4] = "PSE", [5] = "PAE", [6] = "MCE",
	[7] = "PGE", [8] = "PCE", [9] = "OSFXSR", [10] = "OSXMMEXCPT", [11] = "UMIP",
	[12] = "LA57", [13] = "VMXE", [14] = "SMXE", [16] = "FSGSBASE", [17] = "PCIDE",
	[18] = "OSXSAVE", [20] = "SMEP", [21] = "SMAP", [22] = "PKE", [23] = "CET", [24] = "PKS",
};
static const char *const efer_names[64] = {
	[0] = "SCE", [8] = "LME", [10] = "LMA", [11] = "NXE", [12] = "SVME", [13] = "LMSLE",
	[14] = "FFXSR", [15] = "TCE",
};
static const char *const rflags_names[64] = {
	[0] = "CF", [2] = "PF", [4] = "AF", [6] = "ZF", [7] = "SF", [8] = "TF", [9] = "IF",
	[10] = "DF", [11] = "OF", [14] = "NT", [16] = "RF", [17] = "VM", [18] = "AC",
	[19] = "VIF", [20] = "VIP", [21] = "ID",
};

/* QEMU's segment line: selector base limit flags (x86_seg_attr_bits),
 * then what the cache says. */
static void seg_line(const struct debug_text *out, const char *name, const struct x86_segment *g)
{
	uint32_t flags = x86_seg_attr_bits(g);
	const char *kind;
	if (g->unusable)
		kind = "unusable";
	else if (!g->s)
		kind = g->type == SYS_TYPE_LDT ? "LDT" : (g->type & 7) == 3 ? "TSS busy" :
			(g->type & 7) == 1 ? "TSS avail" : "system";
	else if (g->type & SEG_TYPE_EXECUTABLE)
		kind = g->l ? "CS64" : g->db ? "CS32" : "CS16";
	else
		kind = g->db ? "DS" : "DS16";
	say(out, "%-3s=%04x %016" PRIx64 " %08x %08x DPL=%u %s%s\n", name, g->selector, g->base,
	    g->limit, flags, g->dpl, kind, g->present ? "" : " not-present");
}

static void regs_general(const struct debug_text *out, const struct x86_regs *r)
{
	say(out, "RAX=%016" PRIx64 " RBX=%016" PRIx64 " RCX=%016" PRIx64 " RDX=%016" PRIx64 "\n",
	    r->rax, r->rbx, r->rcx, r->rdx);
	say(out, "RSI=%016" PRIx64 " RDI=%016" PRIx64 " RBP=%016" PRIx64 " RSP=%016" PRIx64 "\n",
	    r->rsi, r->rdi, r->rbp, r->rsp);
	say(out, "R8 =%016" PRIx64 " R9 =%016" PRIx64 " R10=%016" PRIx64 " R11=%016" PRIx64 "\n",
	    r->r8, r->r9, r->r10, r->r11);
	say(out, "R12=%016" PRIx64 " R13=%016" PRIx64 " R14=%016" PRIx64 " R15=%016" PRIx64 "\n",
	    r->r12, r->r13, r->r14, r->r15);
}

static void regs_system(const struct debug_text *out, const struct x86_sregs *s)
{
	char bits[160];
	seg_line(out, "ES", &s->es);
	seg_line(out, "CS", &s->cs);
	seg_line(out, "SS", &s->ss);
	seg_line(out, "DS", &s->ds);
	seg_line(out, "FS", &s->fs);
	seg_line(out, "GS", &s->gs);
	seg_line(out, "LDT", &s->ldt);
	seg_line(out, "TR", &s->tr);
	say(out, "GDT=     %016" PRIx64 " %08x\n", s->gdt.base, s->gdt.limit);
	say(out, "IDT=     %016" PRIx64 " %08x\n", s->idt.base, s->idt.limit);
	bit_names(bits, sizeof(bits), s->cr0, cr0_names);
	say(out, "CR0=%016" PRIx64 " %s\n", s->cr0, bits);
	say(out, "CR2=%016" PRIx64 " CR3=%016" PRIx64 " CR8=%016" PRIx64 "\n", s->cr2, s->cr3,
	    s->cr8);
	bit_names(bits, sizeof(bits), s->cr4, cr4_names);
	say(out, "CR4=%016" PRIx64 " %s\n", s->cr4, bits);
	bit_names(bits, sizeof(bits), s->efer, efer_names);
	say(out, "EFER=%016" PRIx64 " %s\n", s->efer, bits);
	say(out, "APIC_BASE=%016" PRIx64 "\n", s->apic_base);
}

/* The MSRs a kernel developer looks at beyond the cached parts, read one
 * by one; an MSR the CPU lacks is left out. */
static void regs_msrs(struct debug *d, unsigned vcpu, const struct debug_text *out)
{
	static const struct { uint32_t n; const char *name; } msrs[] = {
		{ 0x174, "SYSENTER_CS" }, { 0x175, "SYSENTER_ESP" }, { 0x176, "SYSENTER_EIP" },
		{ 0x10, "TSC" }, { 0x277, "PAT" }, { 0x1a0, "MISC_ENABLE" },
		{ MSR_FS_BASE, "FS_BASE" }, { MSR_GS_BASE, "GS_BASE" },
	};
	for (size_t i = 0; i < sizeof(msrs) / sizeof(msrs[0]); i++) {
		uint64_t v;
		struct err e = { 0 };
		if (debug_msr_read(d, vcpu, msrs[i].n, &v, &e) == 0)
			say(out, "%s=%016" PRIx64 "\n", msrs[i].name, v);
	}
}

int debug_inspect_registers(struct debug *d, unsigned vcpu, const struct debug_text *out,
			    struct err *e)
{
	struct debug_cpu_state cs;
	struct x86_state st;
	char bits[160];
	if (debug_read_state(d, vcpu, &cs) < 0)
		return err_set(e, EIO, "cannot read vCPU %u's registers", vcpu);
	regs_general(out, &cs.regs);
	bit_names(bits, sizeof(bits), cs.regs.rflags, rflags_names);
	say(out, "RIP=%016" PRIx64 " RFL=%08" PRIx64 " %s CPL=%u IOPL=%u %s\n", cs.regs.rip,
	    cs.regs.rflags, bits, cs.sregs.cs.dpl, (unsigned)(cs.regs.rflags >> 12) & 3,
	    x86_mode_name(x86_mode_of(&cs.sregs)));
	regs_system(out, &cs.sregs);
	if (debug_vcpu_get(d, vcpu, X86_STATE_DR, &st) == 0) {
		say(out, "DR0=%016" PRIx64 " DR1=%016" PRIx64 " DR2=%016" PRIx64 " DR3=%016" PRIx64
		    "\n", st.dr.db[0], st.dr.db[1], st.dr.db[2], st.dr.db[3]);
		say(out, "DR6=%016" PRIx64 " DR7=%016" PRIx64 "\n", st.dr.dr6, st.dr.dr7);
	}
	if (debug_vcpu_get(d, vcpu, X86_STATE_MSRS, &st) == 0) {
		say(out, "STAR=%016" PRIx64 " LSTAR=%016" PRIx64 " CSTAR=%016" PRIx64 "\n", st.star,
		    st.lstar, st.cstar);
		say(out, "SFMASK=%016" PRIx64 " KERNEL_GS_BASE=%016" PRIx64 "\n", st.fmask,
		    st.kernel_gs_base);
	}
	if (debug_vcpu_get(d, vcpu, X86_STATE_XCR0, &st) == 0)
		say(out, "XCR0=%016" PRIx64 "\n", st.xcr0);
	regs_msrs(d, vcpu, out);
	return 0;
}

/* ---- descriptor tables ---- */

static const char *gate_type_name(uint8_t type)
{
	switch (type) {
	case X86_GATE_TASK: return "task";
	case X86_GATE_INT16: return "int16";
	case X86_GATE_TRAP16: return "trap16";
	case X86_GATE_CALL: return "call";
	case X86_GATE_INT: return "int";
	case X86_GATE_TRAP: return "trap";
	default: return "invalid";
	}
}

/* A code segment's base from its descriptor (32-bit gates name one). */
static bool code_base(struct debug *d, unsigned vcpu, const struct x86_sregs *s, uint16_t sel,
		      uint64_t *base)
{
	uint64_t desc;
	uint64_t table = (sel & SEL_TI_LDT) ? s->ldt.base : s->gdt.base;
	uint32_t limit = (sel & SEL_TI_LDT) ? s->ldt.limit : s->gdt.limit;
	if ((sel & ~7u) + 7u > limit ||
	    debug_mem_read(d, vcpu, table + (sel & ~7u), &desc, sizeof(desc), false) < 0)
		return false;
	struct x86_segment seg;
	x86_seg_decode(desc, sel, &seg);
	*base = seg.base;
	return true;
}

static void idt_line(struct debug *d, unsigned vcpu, const struct x86_sregs *s, unsigned v,
		     const struct x86_gate *g, bool lm, const struct debug_text *out)
{
	const char *name = x86_vector_name(v);
	char where[64] = "", ist[8] = "";
	uint64_t base = 0;
	if (lm && g->ist)
		snprintf(ist, sizeof(ist), " ist%u", g->ist);
	if (g->type == X86_GATE_TASK)
		snprintf(where, sizeof(where), "task TSS %04x", g->selector);
	else if (lm || code_base(d, vcpu, s, g->selector, &base))
		snprintf(where, sizeof(where), "handler 0x%" PRIx64,
			 lm ? g->offset : (uint64_t)((base + g->offset) & 0xffffffffu));
	else
		snprintf(where, sizeof(where), "handler unknown (selector %04x unreadable)",
			 g->selector);
	say(out, "%3u %-4s %-6s %04x:%0*" PRIx64 " dpl %u%s %s\n", v, name ? name : "",
	    gate_type_name(g->type), g->selector, lm ? 16 : 8, g->offset, g->dpl, ist, where);
}

int debug_inspect_idt(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e)
{
	struct x86_sregs s;
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	if (!(s.cr0 & CR0_PE)) {
		say(out, "real mode: IVT at 0x%" PRIx64 ", limit 0x%x\n", s.idt.base, s.idt.limit);
		return 0;
	}
	bool lm = s.efer & EFER_LMA;
	enum x86_mode mode = lm ? X86_MODE_LONG64 : X86_MODE_PROT32;
	unsigned size = x86_gate_size(mode), absent = 0;
	say(out, "IDT base 0x%" PRIx64 " limit 0x%x (%s gates)\n", s.idt.base, s.idt.limit,
	    lm ? "16-byte" : "8-byte");
	for (unsigned v = 0; v < 256 && (uint32_t)v * size + size - 1 <= s.idt.limit; v++) {
		uint8_t raw[16];
		if (debug_mem_read(d, vcpu, s.idt.base + (uint64_t)v * size, raw, size, false) < 0) {
			say(out, "%3u: not mapped\n", v);
			continue;
		}
		struct x86_gate g = x86_gate_decode(raw, mode);
		if (!g.present) {
			absent++;
			continue;
		}
		idt_line(d, vcpu, &s, v, &g, lm, out);
	}
	if (absent)
		say(out, "(%u gates not present)\n", absent);
	return 0;
}

static const char *system_type_name(uint8_t type, bool lm)
{
	switch (type) {
	case 0x1: return "TSS16 avail";
	case 0x2: return "LDT";
	case 0x3: return "TSS16 busy";
	case 0x9: return lm ? "TSS64 avail" : "TSS32 avail";
	case 0xb: return lm ? "TSS64 busy" : "TSS32 busy";
	default: return gate_type_name(type);
	}
}

/* One GDT entry; returns how many 8-byte slots it took (2 for a long-mode
 * system descriptor). */
static unsigned gdt_entry(struct debug *d, unsigned vcpu, const struct x86_sregs *s, uint32_t off,
			  bool lm, const struct debug_text *out)
{
	uint64_t desc, high = 0;
	if (debug_mem_read(d, vcpu, s->gdt.base + off, &desc, sizeof(desc), false) < 0) {
		say(out, "%04x: not mapped\n", off);
		return 1;
	}
	if (!(desc & ((uint64_t)DESC_PRESENT << DESC_ACCESS_SHIFT))) {
		if (desc)
			say(out, "%04x: %016" PRIx64 " not present\n", off, desc);
		return 1;
	}
	struct x86_segment g;
	x86_seg_decode(desc, (uint16_t)off, &g);
	bool wide = lm && !g.s && (g.type == 0x2 || g.type == 0x9 || g.type == 0xb);
	if (wide && off + 15 <= s->gdt.limit &&
	    debug_mem_read(d, vcpu, s->gdt.base + off + 8, &high, sizeof(high), false) == 0)
		g.base |= (high & 0xffffffffull) << 32;
	char kind[32];
	if (!g.s)
		snprintf(kind, sizeof(kind), "%s", system_type_name(g.type, lm));
	else if (g.type & SEG_TYPE_EXECUTABLE)
		snprintf(kind, sizeof(kind), "code%s%s%s", g.l ? "64" : g.db ? "32" : "16",
			 g.type & SEG_TYPE_READABLE ? " r" : "",
			 g.type & SEG_TYPE_CONFORMING ? " conforming" : "");
	else
		snprintf(kind, sizeof(kind), "data%s%s%s", g.db ? "32" : "16",
			 g.type & SEG_TYPE_WRITABLE ? " w" : "",
			 g.type & SEG_TYPE_EXPAND_DOWN ? " down" : "");
	say(out, "%04x: %-14s base 0x%0*" PRIx64 " limit 0x%08x dpl %u%s%s\n", off, kind,
	    wide ? 16 : 8, g.base, g.limit, g.dpl,
	    g.s && (g.type & SEG_TYPE_ACCESSED) ? " accessed" : "", g.g ? " 4k-granular" : "");
	return wide ? 2 : 1;
}

int debug_inspect_gdt(struct debug *d, unsigned vcpu, const struct debug_text *out,
		      struct err *e)
{
	struct x86_sregs s;
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	bool lm = s.efer & EFER_LMA;
	say(out, "GDT base 0x%" PRIx64 " limit 0x%x\n", s.gdt.base, s.gdt.limit);
	for (uint32_t off = 0; off + 7 <= s.gdt.limit && off < 0x10000;)
		off += 8 * gdt_entry(d, vcpu, &s, off, lm, out);
	return 0;
}

/* ---- interrupt controllers ---- */

/* "0x30 0x31" for the set bits of a 256-bit vector register. */
static void vector_list(char *buf, size_t size, const uint32_t *words)
{
	size_t len = 0;
	buf[0] = '\0';
	for (unsigned v = 0; v < 256 && len + 6 < size; v++)
		if (words[v / 32] & (1u << (v % 32)))
			len += (size_t)snprintf(buf + len, size - len, " 0x%02x", v);
	if (!len)
		snprintf(buf, size, " none");
}

static const char *const delivery_names[8] = {
	"fixed", "lowest", "SMI", "reserved", "NMI", "INIT", "reserved", "ExtINT",
};

static void lvt_line(const struct debug_text *out, const char *name, uint32_t v, bool timer)
{
	static const char *const timer_modes[4] = { "one-shot", "periodic", "tsc-deadline", "?" };
	say(out, "LVT %-8s %08x: vector 0x%02x %s%s%s%s\n", name, v, v & 0xff,
	    timer ? timer_modes[(v >> 17) & 3] : delivery_names[(v >> 8) & 7],
	    v & (1u << 16) ? " masked" : "", !timer && (v & (1u << 15)) ? " level" : "",
	    v & (1u << 12) ? " pending" : "");
}

static void show_lapic(const struct x86_sregs *s, const uint32_t *r, const struct debug_text *out)
{
	static const unsigned divides[8] = { 2, 4, 8, 16, 32, 64, 128, 1 };
	char list[256];
	bool x2 = s->apic_base & (1ull << 10);
	bool on = s->apic_base & (1ull << 11);
	say(out, "APIC_BASE %016" PRIx64 ": %s, base 0x%" PRIx64 "%s\n", s->apic_base,
	    !on ? "disabled" : x2 ? "x2APIC" : "xAPIC", (uint64_t)(s->apic_base & 0xfffffff000u),
	    s->apic_base & (1ull << 8) ? ", BSP" : "");
	say(out, "ID %08x  version %08x  SVR %08x (%s, spurious vector 0x%02x)\n", r[0x2],
	    r[0x3], r[0xf], r[0xf] & 0x100 ? "software enabled" : "software disabled",
	    r[0xf] & 0xff);
	say(out, "TPR %02x  PPR %02x  LDR %08x  DFR %08x  ESR %08x\n", r[0x8] & 0xff,
	    r[0xa] & 0xff, r[0xd], r[0xe], r[0x28]);
	say(out, "ICR %08x %08x: vector 0x%02x %s\n", r[0x31], r[0x30], r[0x30] & 0xff,
	    delivery_names[(r[0x30] >> 8) & 7]);
	lvt_line(out, "timer", r[0x32], true);
	lvt_line(out, "thermal", r[0x33], false);
	lvt_line(out, "perf", r[0x34], false);
	lvt_line(out, "LINT0", r[0x35], false);
	lvt_line(out, "LINT1", r[0x36], false);
	lvt_line(out, "error", r[0x37], false);
	uint32_t dcr = r[0x3e];
	say(out, "timer: initial count %u, current count %u, divide by %u\n", r[0x38], r[0x39],
	    divides[(dcr & 3) | ((dcr >> 1) & 4)]);
	vector_list(list, sizeof(list), &r[0x10]);
	say(out, "ISR:%s\n", list);
	vector_list(list, sizeof(list), &r[0x18]);
	say(out, "TMR:%s\n", list);
	vector_list(list, sizeof(list), &r[0x20]);
	say(out, "IRR:%s\n", list);
}

static void show_ioapic(const struct engine_irqchip *c, const struct debug_text *out)
{
	say(out, "IOAPIC id %u, %u pins\n", c->ioapic_id >> 24 & 0xf, ENGINE_IOAPIC_PINS);
	for (unsigned i = 0; i < ENGINE_IOAPIC_PINS; i++) {
		uint64_t e = c->ioapic_redir[i];
		say(out, "pin %2u: %016" PRIx64 " vector 0x%02" PRIx64 " %s %s dest 0x%02" PRIx64
		    " %s %s%s%s\n", i, e, e & 0xff, delivery_names[(e >> 8) & 7],
		    e & (1u << 11) ? "logical" : "physical", e >> 56,
		    e & (1u << 15) ? "level" : "edge", e & (1u << 13) ? "active-low" : "active-high",
		    e & (1u << 16) ? " masked" : "", e & (1u << 14) ? " remote-irr" : "");
	}
}

static void show_pic(const struct engine_irqchip *c, const struct debug_text *out)
{
	for (unsigned i = 0; i < 2; i++) {
		const struct engine_pic *p = &c->pic[i];
		say(out, "%s PIC: vector base 0x%02x irr %02x isr %02x imr %02x elcr %02x%s%s\n",
		    i ? "slave " : "master", p->vector_base, p->irr, p->isr, p->imr, p->elcr,
		    p->auto_eoi ? " auto-eoi" : "", p->initialised ? "" : " (initialisation pending)");
	}
}

int debug_inspect_irqchip(struct debug *d, unsigned vcpu, enum debug_irqchip_part part,
			  const struct debug_text *out, struct err *e)
{
	const struct engine_vcpu_ops *eng = d->vm->engine->vcpu;
	struct engine_irqchip chip;
	struct x86_sregs s;
	if (!eng->irqchip_get)
		return err_set(e, ENOTSUP, "the %s engine cannot show its interrupt controllers",
			       d->vm->engine->name);
	if (sregs_of(d, vcpu, &s, e) < 0)
		return -e->code;
	int r = eng->irqchip_get(&d->vm->vcpus[vcpu], &chip);
	if (r < 0)
		return err_set(e, -r, "cannot read the interrupt controllers");
	bool have = part == DEBUG_IRQCHIP_LAPIC ? chip.have_lapic :
		    part == DEBUG_IRQCHIP_IOAPIC ? chip.have_ioapic : chip.have_pic;
	if (!have)
		return err_set(e, ENOTSUP, "the %s engine has no such interrupt controller here",
			       d->vm->engine->name);
	if (part == DEBUG_IRQCHIP_LAPIC)
		show_lapic(&s, chip.lapic, out);
	else if (part == DEBUG_IRQCHIP_IOAPIC)
		show_ioapic(&chip, out);
	else
		show_pic(&chip, out);
	return 0;
}

/* ---- memory holes ---- */

struct holes {
	debug_range_fn fn;
	void *opaque;
	bool open;
	uint64_t first, last;
	struct vm *vm;
};

static void hole_add(struct holes *h, uint64_t first, uint64_t last)
{
	if (h->open && first == h->last + 1) {
		h->last = last;
		return;
	}
	if (h->open)
		h->fn(h->opaque, h->first, h->last);
	h->open = true;
	h->first = first;
	h->last = last;
}

/* The parts of physical [pa, pa + size) outside RAM, as holes at the
 * same offsets from base. */
static void phys_holes(struct holes *h, uint64_t base, uint64_t pa, uint64_t size)
{
	struct vm_ram_range ram[2];
	unsigned n = vm_ram_ranges(h->vm, ram);
	uint64_t at = pa, end = pa + size;      /* end 0: the top of the space */
	for (unsigned i = 0; i < n && (at < end || end == 0); i++) {
		uint64_t lo = ram[i].first, hi = ram[i].end;
		if (hi <= lo || hi <= at || (end && lo >= end))
			continue;
		if (lo > at)
			hole_add(h, base + (at - pa), base + (lo - pa) - 1);
		at = hi;
	}
	if (at < end || (end == 0 && at != 0))
		hole_add(h, base + (at - pa), end ? base + (end - pa) - 1 : UINT64_MAX);
}

static int leaf_holes(void *opaque, const struct x86_mapping *m)
{
	phys_holes(opaque, m->va, m->pa, m->size);
	return 0;
}

int debug_memory_holes(struct debug *d, unsigned vcpu, bool phys, debug_range_fn fn,
		       void *opaque)
{
	struct holes h = { .fn = fn, .opaque = opaque, .vm = d->vm };
	struct x86_sregs s;
	if (!phys) {
		int r = debug_vcpu_sregs(d, vcpu, &s);
		if (r < 0)
			return r;
		r = x86_paging_enum(&s, vm_read_phys, d->vm, leaf_holes, &h);
		if (r == -E2BIG)
			return r;      /* no map beats a wrong one */
		phys = r == -ENOENT;
	}
	if (phys)
		phys_holes(&h, 0, 0, 0);    /* also paging off: linear is physical */
	if (h.open)
		fn(opaque, h.first, h.last);
	return 0;
}
