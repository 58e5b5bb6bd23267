#include "x86/paging.h"

#include <errno.h>
#include <stdbool.h>

#include "x86/desc.h"

/* One paging layout: entry size, index width per level, and how many
 * levels a walk has; the level numbered 1 maps 4 KiB pages. */
struct paging_layout {
	unsigned levels;
	unsigned entry_bytes;      /* 4 or 8 */
	unsigned index_bits;       /* 10 or 9 */
	unsigned large_min_level;  /* lowest level where PS means a large page */
	unsigned large_max_level;
};

static int paging_read_entry(x86_read_phys_fn read_phys, void *opaque, uint64_t gpa,
			     unsigned bytes, uint64_t *entry)
{
	if (bytes == 4) {
		uint32_t v;
		int r = read_phys(opaque, gpa, &v, sizeof(v));
		*entry = v;
		return r;
	}
	return read_phys(opaque, gpa, entry, sizeof(*entry));
}

/* Bit position of the lowest linear-address bit the index at `level`
 * selects (level 1 = page table). */
static unsigned paging_shift(const struct paging_layout *l, unsigned level)
{
	return 12 + (level - 1) * l->index_bits;
}

/* The 32-bit (non-PAE) large page: PDE bits 20:13 hold physical bits
 * 39:32 (PSE-36/40), bits 31:22 the low part. */
static uint64_t paging_pse4m_base(uint64_t pde)
{
	return (pde & 0xffc00000ull) | ((pde & 0x001fe000ull) << 19);
}

static int paging_walk(const struct paging_layout *l, uint64_t table, bool pse,
		       x86_read_phys_fn read_phys, void *opaque, uint64_t gva, uint64_t *gpa)
{
	for (unsigned level = l->levels; level >= 1; level--) {
		unsigned shift = paging_shift(l, level);
		uint64_t index = (gva >> shift) & ((1ull << l->index_bits) - 1);
		uint64_t entry;
		if (paging_read_entry(read_phys, opaque, table + index * l->entry_bytes,
				      l->entry_bytes, &entry) < 0)
			return -EFAULT;
		if (!(entry & PTE_P))
			return -EFAULT;
		bool large = level >= l->large_min_level && level <= l->large_max_level &&
			     (entry & PTE_PS) && (l->entry_bytes == 8 || pse);
		if (large) {
			uint64_t offset_mask = (1ull << shift) - 1;
			uint64_t base = l->entry_bytes == 4 ? paging_pse4m_base(entry)
							    : entry & PTE_ADDR_MASK & ~offset_mask;
			*gpa = base | (gva & offset_mask);
			return 0;
		}
		table = l->entry_bytes == 4 ? (entry & PTE32_ADDR_MASK) : (entry & PTE_ADDR_MASK);
	}
	*gpa = table | (gva & ~X86_PAGE_MASK);
	return 0;
}

/* PAE (legacy, 3 levels): CR3 points at four 8-byte PDPTEs, 32-byte aligned. */
static int paging_walk_pae(const struct x86_sregs *s, x86_read_phys_fn read_phys, void *opaque,
			   uint64_t gva, uint64_t *gpa)
{
	static const struct paging_layout pd = { 2, 8, 9, 2, 2 };
	uint64_t pdpte;
	uint64_t at = (s->cr3 & 0xffffffe0ull) + ((gva >> 30) & 3) * 8;
	if (read_phys(opaque, at, &pdpte, sizeof(pdpte)) < 0 || !(pdpte & PTE_P))
		return -EFAULT;
	return paging_walk(&pd, pdpte & PTE_ADDR_MASK, true, read_phys, opaque, gva & 0x3fffffffull,
			   gpa);
}

static bool paging_canonical(uint64_t gva, unsigned bits)
{
	int64_t s = (int64_t)(gva << (64 - bits)) >> (64 - bits);
	return (uint64_t)s == gva;
}

int x86_translate(const struct x86_sregs *s, x86_read_phys_fn read_phys, void *opaque,
		  uint64_t gva, uint64_t *gpa)
{
	if (!(s->cr0 & CR0_PG) || !(s->cr0 & CR0_PE)) {
		*gpa = (s->efer & EFER_LMA) ? gva : (gva & 0xffffffffull);
		return 0;
	}
	if (s->efer & EFER_LMA) {
		static const struct paging_layout l4 = { 4, 8, 9, 2, 3 };
		static const struct paging_layout l5 = { 5, 8, 9, 2, 3 };
		bool la57 = s->cr4 & CR4_LA57;
		if (!paging_canonical(gva, la57 ? 57 : 48))
			return -EINVAL;
		return paging_walk(la57 ? &l5 : &l4, s->cr3 & PTE_ADDR_MASK, true, read_phys, opaque,
				   gva, gpa);
	}
	gva &= 0xffffffffull;
	if (s->cr4 & CR4_PAE)
		return paging_walk_pae(s, read_phys, opaque, gva, gpa);
	static const struct paging_layout l2 = { 2, 4, 10, 2, 2 };
	return paging_walk(&l2, s->cr3 & PTE32_ADDR_MASK, s->cr4 & CR4_PSE, read_phys, opaque, gva,
			   gpa);
}

/* ---- enumerating every mapping ---- */

/* Tables that point back at themselves are legal (recursive mappings)
 * and can make a walk of every entry endless: a guest's tables are read
 * at most this many entries per enumeration. */
#define PAGING_ENUM_MAX_ENTRIES (1u << 24)

struct paging_enum {
	unsigned long budget;          /* entries left to read */
	const struct paging_layout *l;
	bool pse, la57, long_mode;
	x86_read_phys_fn read_phys;
	void *read_opaque;
	x86_mapping_fn fn;
	void *opaque;
};

static uint64_t paging_sign_extend(const struct paging_enum *pe, uint64_t va)
{
	if (!pe->long_mode)
		return va;
	unsigned bits = pe->la57 ? 57 : 48;
	return (uint64_t)((int64_t)(va << (64 - bits)) >> (64 - bits));
}

/* The rights a walk accumulates: write and user only if every level
 * grants them, no-execute if any level sets it. */
static void paging_rights(struct x86_mapping *m, uint64_t entry, bool wide)
{
	m->write = m->write && (entry & PTE_W);
	m->user = m->user && (entry & PTE_U);
	m->nx = m->nx || (wide && (entry & PTE_NX));
}

static int paging_enum_table(struct paging_enum *pe, uint64_t table, unsigned level,
			     uint64_t va_base, struct x86_mapping rights)
{
	const struct paging_layout *l = pe->l;
	unsigned shift = paging_shift(l, level);
	unsigned entries = 1u << l->index_bits;
	for (unsigned i = 0; i < entries; i++) {
		uint64_t entry;
		if (pe->budget-- == 0)
			return -E2BIG;
		if (paging_read_entry(pe->read_phys, pe->read_opaque, table + i * l->entry_bytes,
				      l->entry_bytes, &entry) < 0)
			return 0;      /* a table outside RAM maps nothing we can show */
		if (!(entry & PTE_P))
			continue;
		uint64_t va = va_base | ((uint64_t)i << shift);
		struct x86_mapping m = rights;
		paging_rights(&m, entry, l->entry_bytes == 8);
		bool large = level >= l->large_min_level && level <= l->large_max_level &&
			     (entry & PTE_PS) && (l->entry_bytes == 8 || pe->pse);
		if (level > 1 && !large) {
			uint64_t next = l->entry_bytes == 4 ? (entry & PTE32_ADDR_MASK)
							    : (entry & PTE_ADDR_MASK);
			int r = paging_enum_table(pe, next, level - 1, va, m);
			if (r)
				return r;
			continue;
		}
		m.size = 1ull << shift;
		m.va = paging_sign_extend(pe, va);
		m.pa = l->entry_bytes == 4 ? (large ? paging_pse4m_base(entry)
						    : entry & PTE32_ADDR_MASK)
					   : entry & PTE_ADDR_MASK & ~(m.size - 1);
		m.global = entry & PTE_G;
		m.accessed = entry & PTE_A;
		m.dirty = entry & PTE_D;
		m.pwt = entry & PTE_PWT;
		m.pcd = entry & PTE_PCD;
		int r = pe->fn(pe->opaque, &m);
		if (r)
			return r;
	}
	return 0;
}

int x86_paging_enum(const struct x86_sregs *s, x86_read_phys_fn read_phys, void *read_opaque,
		    x86_mapping_fn fn, void *opaque)
{
	static const struct paging_layout l2 = { 2, 4, 10, 2, 2 };
	static const struct paging_layout l4 = { 4, 8, 9, 2, 3 };
	static const struct paging_layout l5 = { 5, 8, 9, 2, 3 };
	static const struct paging_layout pae_pd = { 2, 8, 9, 2, 2 };
	struct x86_mapping all = { .write = true, .user = true };
	struct paging_enum pe = { .read_phys = read_phys, .read_opaque = read_opaque, .fn = fn,
				  .opaque = opaque, .pse = true,
				  .budget = PAGING_ENUM_MAX_ENTRIES };

	if (!(s->cr0 & CR0_PG) || !(s->cr0 & CR0_PE))
		return -ENOENT;
	if (s->efer & EFER_LMA) {
		pe.long_mode = true;
		pe.la57 = s->cr4 & CR4_LA57;
		pe.l = pe.la57 ? &l5 : &l4;
		return paging_enum_table(&pe, s->cr3 & PTE_ADDR_MASK, pe.l->levels, 0, all);
	}
	if (!(s->cr4 & CR4_PAE)) {
		pe.l = &l2;
		pe.pse = s->cr4 & CR4_PSE;
		return paging_enum_table(&pe, s->cr3 & PTE32_ADDR_MASK, 2, 0, all);
	}
	pe.l = &pae_pd;
	for (unsigned i = 0; i < 4; i++) {
		uint64_t pdpte;
		if (read_phys(read_opaque, (s->cr3 & 0xffffffe0ull) + i * 8, &pdpte,
			      sizeof(pdpte)) < 0 || !(pdpte & PTE_P))
			continue;
		int r = paging_enum_table(&pe, pdpte & PTE_ADDR_MASK, 2, (uint64_t)i << 30, all);
		if (r)
			return r;
	}
	return 0;
}
