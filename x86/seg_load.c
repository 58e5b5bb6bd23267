/* x86/seg_load.c — the hidden part of a segment register after a load
 * (SDM vol. 3 3.4.3, 20.1.1 for real mode, 20.2 for virtual-8086 mode). */
#include "x86/seg_load.h"

#include <stdbool.h>
#include <stddef.h>

#include "x86/desc.h"

static const char *const seg_names[] = { "cs", "ss", "ds", "es", "fs", "gs" };

/* Real mode changes base and selector only (limit and attributes stay,
 * as "unreal mode" relies on); virtual-8086 mode fixes them all. */
static void load_real(struct x86_segment *seg, uint16_t sel, enum x86_seg_reg reg, bool v86)
{
	seg->selector = sel;
	seg->base = (uint64_t)sel << 4;
	seg->present = 1;
	seg->unusable = 0;
	if (!v86)
		return;
	seg->limit = 0xffff;
	seg->type = reg == X86_SEG_CS ? SEG_TYPE_CODE_XR_ACCESSED : SEG_TYPE_DATA_RW_ACCESSED;
	seg->s = 1;
	seg->dpl = 3;
	seg->db = seg->l = seg->g = seg->avl = 0;
}

/* The kind of segment each register takes (#GP otherwise). */
static const char *wrong_kind(const struct x86_segment *s, enum x86_seg_reg reg)
{
	bool code = s->type & SEG_TYPE_EXECUTABLE;

	if (!s->s)
		return "a system descriptor, not a code or data segment";
	if (reg == X86_SEG_CS && !code)
		return "a data segment (cs needs code)";
	if (reg == X86_SEG_SS && (code || !(s->type & SEG_TYPE_WRITABLE)))
		return "not a writable data segment (ss needs one)";
	if (reg != X86_SEG_CS && code && !(s->type & SEG_TYPE_READABLE))
		return "an execute-only code segment";
	return NULL;
}

static int load_null(const struct x86_sregs *sregs, enum x86_seg_reg reg, uint16_t sel,
		     struct x86_segment *seg, struct err *e)
{
	bool long64 = x86_mode_of(sregs) == X86_MODE_LONG64;

	if (reg == X86_SEG_CS || (reg == X86_SEG_SS && !long64))
		return err_set(e, EINVAL, "%s cannot hold a null selector%s", seg_names[reg],
			       reg == X86_SEG_SS ? " outside 64-bit mode" : "");
	uint64_t base = reg == X86_SEG_FS || reg == X86_SEG_GS ? seg->base : 0;
	*seg = (struct x86_segment){ .selector = sel, .base = base, .unusable = 1 };
	return 0;
}

int x86_seg_load(const struct x86_sregs *sregs, uint64_t rflags, enum x86_seg_reg reg,
		 uint16_t sel, x86_desc_reader read, void *ctx, struct x86_segment *seg,
		 struct err *e)
{
	if (!(sregs->cr0 & CR0_PE) || (rflags & RFLAGS_VM)) {
		load_real(seg, sel, reg, (sregs->cr0 & CR0_PE) != 0);
		return 0;
	}
	if (!(sel & ~3u))
		return load_null(sregs, reg, sel, seg, e);

	bool ldt = sel & SEL_TI_LDT;
	if (ldt && (sregs->ldt.unusable || !sregs->ldt.present))
		return err_set(e, EINVAL, "selector 0x%x is in the LDT and no LDT is loaded", sel);
	uint64_t base = ldt ? sregs->ldt.base : sregs->gdt.base;
	uint32_t limit = ldt ? sregs->ldt.limit : sregs->gdt.limit;
	uint32_t off = sel & ~7u;
	if (off + 7 > limit)
		return err_set(e, EINVAL, "selector 0x%x is beyond the %s limit 0x%x", sel,
			       ldt ? "LDT" : "GDT", limit);
	if (x86_mode_of(sregs) != X86_MODE_LONG64 && x86_mode_of(sregs) != X86_MODE_COMPAT)
		base = (uint32_t)base;
	uint64_t raw;
	if (read(ctx, base + off, &raw) < 0)
		return err_set(e, EFAULT, "cannot read the descriptor of selector 0x%x at 0x%llx",
			       sel, (unsigned long long)(base + off));

	struct x86_segment n;
	x86_seg_decode(raw, sel, &n);
	const char *why = wrong_kind(&n, reg);
	if (why)
		return err_set(e, EINVAL, "selector 0x%x for %s names %s", sel, seg_names[reg], why);
	if (!n.present)
		return err_set(e, EINVAL, "selector 0x%x names a segment that is not present", sel);
	*seg = n;
	return 0;
}

int x86_sys_seg_load(const struct x86_sregs *sregs, bool ldtr, uint16_t sel,
		     x86_desc_reader read, void *ctx, struct x86_segment *seg, struct err *e)
{
	const char *name = ldtr ? "LDTR" : "TR";
	if (!(sregs->cr0 & CR0_PE))
		return err_set(e, EINVAL, "%s cannot be loaded in real mode", name);
	if (!(sel & ~3u)) {
		if (!ldtr)
			return err_set(e, EINVAL, "TR cannot hold a null selector");
		*seg = (struct x86_segment){ .selector = sel, .unusable = 1 };
		return 0;
	}
	if (sel & SEL_TI_LDT)
		return err_set(e, EINVAL, "selector 0x%x for %s is in the LDT, not the GDT", sel,
			       name);
	bool wide = sregs->efer & EFER_LMA;      /* 16-byte system descriptors */
	uint32_t off = sel & ~7u;
	if (off + (wide ? 15u : 7u) > sregs->gdt.limit)
		return err_set(e, EINVAL, "selector 0x%x is beyond the GDT limit 0x%x", sel,
			       sregs->gdt.limit);
	uint64_t raw, high = 0;
	if (read(ctx, sregs->gdt.base + off, &raw) < 0 ||
	    (wide && read(ctx, sregs->gdt.base + off + 8, &high) < 0))
		return err_set(e, EFAULT, "cannot read the descriptor of selector 0x%x", sel);
	struct x86_segment n;
	x86_seg_decode(raw, sel, &n);
	bool tss = n.type == SYS_TYPE_TSS_AVAIL || n.type == SYS_TYPE_TSS_BUSY ||
		   (!wide && (n.type == 0x1 || n.type == 0x3));
	if (n.s || (ldtr ? n.type != SYS_TYPE_LDT : !tss))
		return err_set(e, EINVAL, "selector 0x%x for %s names no %s descriptor", sel, name,
			       ldtr ? "LDT" : "TSS");
	if (!n.present)
		return err_set(e, EINVAL, "selector 0x%x names a descriptor that is not present", sel);
	if (wide)
		n.base |= (high & 0xffffffffull) << 32;
	*seg = n;
	return 0;
}
