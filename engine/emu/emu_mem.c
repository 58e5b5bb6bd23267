/* engine/emu/emu_mem.c — guest memory as the executing vCPU sees it:
 * segmentation (bases only; guests run flat), paging in every mode (32-bit
 * with PSE, PAE, 4- and 5-level) with accessed/dirty bits and #PF (CR2 and
 * error code), a per-vCPU TLB, RAM through vm_gpa_to_host and everything
 * else through the platform's devices or the machine (VM_EXIT_MMIO /
 * VM_EXIT_IO).
 *
 * TLB: direct-mapped, EMU_TLB_SIZE entries per privilege (supervisor, user;
 * 2048: 8 MiB of 4 KiB pages, so a copy between two 2 MiB buffers and a
 * third one walked meanwhile do not evict each other), one tag per kind of
 * access. A tag is set only when that access needs no
 * page-table update: the write tag only once the dirty bit is set (and the
 * machine's dirty map has the page as written since the last snapshot). The
 * guest must INVLPG after changing a PTE, as on hardware. The write tag of
 * a frame that may hold fast-path blocks carries EMU_TAG_CODE (emu_core.h),
 * masked off here. Invalidation, as the SDM allows (a TLB may always drop
 * more than it must):
 *   - CR3 writes drop every entry but global pages (G with CR4.PGE); with
 *     CR4.PCIDE the TLB holds the current PCID only, so a write keeps the
 *     entries when bit 63 is set and the PCID stays, else drops non-global
 *     ones (another PCID's entries are never kept);
 *   - INVLPG drops the page, and the entries of a large page holding it
 *     (large pages are cached 4 KiB at a time, tlb_attr says which);
 *   - CR0.PG/PE/WP, CR4.PAE/PGE/PSE/PCIDE/SMEP/SMAP/LA57, EFER and INIT
 *     drop everything.
 * Protection: NX with EFER.NXE; CR0.WP; SMEP (supervisor fetch from a user
 * page) and SMAP (supervisor data access to a user page, allowed at CPL<3
 * with RFLAGS.AC set; implicit accesses at CPL 3 never): both #PF with P=1.
 * A supervisor entry of a user page that only AC allowed is dropped as soon
 * as AC is clear again or the CPU is in ring 3 (emu_tlb_ac_changed, called
 * by everything that can clear AC or enter ring 3 with it set: CLAC, POPF
 * and IRET via emu_set_rflags, SYSCALL, SYSRET).
 *
 * Replay: an access the machine must complete (a device in machine/) ends
 * the instruction with the exit filled and RIP at the instruction. When the
 * vCPU runs again the instruction executes again from the start; its
 * earlier machine accesses are answered from cpu's replay log instead of
 * leaving again, so no device sees an access twice. */
#include "engine/emu/emu_core.h"

#include <string.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_fast.h"
#include "engine/emu/emu_platform.h"
#include "x86/desc.h"

#define PF_P    (1u << 0)        /* protection violation (else not present) */
#define PF_W    (1u << 1)
#define PF_U    (1u << 2)
#define PF_I    (1u << 4)        /* instruction fetch */

enum emu_acc { ACC_R, ACC_W, ACC_X };

#define TAG_NONE (~0ull)

/* emu_core.tlb_attr bits */
#define EMU_TLBA_GLOBAL    1u      /* global page: CR3 writes keep it */
#define EMU_TLBA_LARGE     2u      /* part of a 2 MiB page */
#define EMU_TLBA_HUGE      4u      /* part of a 1 GiB (or 4 MiB) page */
#define EMU_TLBA_SMAP_USER 8u      /* supervisor entry of a user page, allowed by AC */
#define EMU_TLBA_LISTED    16u     /* the slot is in tlb_filled (kept when dropped) */

void emu_tlb_flush(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	memset(c->tlb, 0xff, sizeof(c->tlb));
	memset(c->tlb_attr, 0, sizeof(c->tlb_attr));
	c->tlb_any_large = c->tlb_any_smap_user = false;
	c->tlb_nr_large = 0;
	c->tlb_nr_filled = 0;
	emu_slots_empty(c, 0);
}

/* A large page (2^shift bytes) at lin got an entry: a range of
 * tlb_large holds it, one that was near it (within 1 GiB) grown when
 * needed, or a new one; when all are taken the nearest grows. */
static void tlb_note_large(struct emu_core *c, uint64_t lin, unsigned shift)
{
	uint64_t lo = lin >> shift << shift, hi = lo + ((1ull << shift) - 1);
	unsigned best = 0;
	uint64_t best_gap = ~0ull;
	for (unsigned i = 0; i < c->tlb_nr_large; i++) {
		uint64_t rlo = c->tlb_large[i].lo, rhi = c->tlb_large[i].hi;
		uint64_t gap = lo > rhi ? lo - rhi : rlo > hi ? rlo - hi : 0;
		if (lo >= rlo && hi <= rhi)
			return;
		if (gap < best_gap) {
			best = i;
			best_gap = gap;
		}
	}
	unsigned max = sizeof(c->tlb_large) / sizeof(c->tlb_large[0]);
	if (c->tlb_nr_large < max && best_gap > (1ull << 30)) {
		best = c->tlb_nr_large++;
		c->tlb_large[best].lo = lo;
		c->tlb_large[best].hi = hi;
		return;
	}
	if (lo < c->tlb_large[best].lo)
		c->tlb_large[best].lo = lo;
	if (hi > c->tlb_large[best].hi)
		c->tlb_large[best].hi = hi;
}

/* May an entry of a large page map lin? */
static bool tlb_in_large(const struct emu_core *c, uint64_t lin)
{
	for (unsigned i = 0; i < c->tlb_nr_large; i++)
		if (lin >= c->tlb_large[i].lo && lin <= c->tlb_large[i].hi)
			return true;
	return false;
}

static void tlb_drop(struct emu_core *c, unsigned user, unsigned i)
{
	struct emu_tlb_entry *t = &c->tlb[user][i];
	t->tag_r = t->tag_w = t->tag_x = TAG_NONE;
	c->tlb_attr[user][i] &= EMU_TLBA_LISTED;
}

/* Entries that are not global are only ever in slots of tlb_filled:
 * those are dropped, the global ones kept (and no longer listed). */
void emu_tlb_flush_nonglobal(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	for (unsigned k = 0; k < c->tlb_nr_filled; k++) {
		unsigned u = c->tlb_filled[k] / EMU_TLB_SIZE, i = c->tlb_filled[k] % EMU_TLB_SIZE;
		if (!(c->tlb_attr[u][i] & EMU_TLBA_GLOBAL))
			tlb_drop(c, u, i);
		c->tlb_attr[u][i] &= (uint8_t)~EMU_TLBA_LISTED;
	}
	c->tlb_nr_filled = 0;
	emu_slots_empty(c, 0);         /* a slot may hold an entry replaced since */
}

/* The linear page an entry maps (TAG_NONE: none). */
static uint64_t tlb_page(const struct emu_tlb_entry *t)
{
	if (t->tag_r != TAG_NONE)
		return t->tag_r & ~EMU_TAG_BITS;
	if (t->tag_x != TAG_NONE)
		return t->tag_x;
	return t->tag_w & ~EMU_TAG_BITS;
}

void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t lin)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t page = lin & X86_PAGE_MASK;
	unsigned slot = (unsigned)(lin >> 12) & (EMU_TLB_SIZE - 1);
	emu_slots_empty(c, 0);         /* a slot may hold an entry replaced since */
	for (unsigned u = 0; u < 2; u++) {
		if (tlb_page(&c->tlb[u][slot]) == page)
			tlb_drop(c, u, slot);
	}
	if (!c->tlb_any_large || !tlb_in_large(c, lin))
		return;
	for (unsigned u = 0; u < 2; u++)
		for (unsigned i = 0; i < EMU_TLB_SIZE; i++) {
			uint8_t a = c->tlb_attr[u][i];
			unsigned shift = (a & EMU_TLBA_HUGE) ? 30 : (a & EMU_TLBA_LARGE) ? 21 : 0;
			if (shift && ((tlb_page(&c->tlb[u][i]) ^ lin) >> shift) == 0)
				tlb_drop(c, u, i);
		}
}

void emu_tlb_ac_changed(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	if (!c->tlb_any_smap_user || ((cpu->rflags & RFLAGS_AC) && c->cpl < 3))
		return;
	for (unsigned i = 0; i < EMU_TLB_SIZE; i++)
		if (c->tlb_attr[0][i] & EMU_TLBA_SMAP_USER)
			tlb_drop(c, 0, i);
	c->tlb_any_smap_user = false;
	emu_slots_empty(c, 0);
}

void emu_tlb_mark_code(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	struct emu_tlb_entry *t = &c->tlb[0][0];
	for (unsigned k = 0; k < 2 * EMU_TLB_SIZE; k++, t++)
		if (t->tag_w != TAG_NONE && t->host && emu_code_frame(cpu->evm, t->host))
			t->tag_w |= EMU_TAG_CODE;
	c->code_marks = cpu->evm->code_marks;
	emu_slots_empty(c, EMU_SLOT_WAYS);     /* stores into code frames count */
}

void emu_tlb_mark_frame(struct emu_cpu *cpu, const uint8_t *page)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->code_marks + 1 != cpu->evm->code_marks) {
		emu_tlb_mark_code(cpu);
		return;
	}
	struct emu_tlb_entry *t = &c->tlb[0][0];
	for (unsigned k = 0; k < 2 * EMU_TLB_SIZE; k++, t++)
		if (t->host == page && t->tag_w != TAG_NONE)
			t->tag_w |= EMU_TAG_CODE;
	c->code_marks = cpu->evm->code_marks;
	emu_slots_empty(c, EMU_SLOT_WAYS);     /* a write slot may have been of page */
}

uint64_t emu_linear(struct emu_cpu *cpu, unsigned seg, uint64_t ea)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->mode == X86_MODE_LONG64) {
		if (seg == EMU_FS)
			return cpu->sregs.fs.base + ea;
		if (seg == EMU_GS)
			return cpu->sregs.gs.base + ea;
		return ea;
	}
	if (seg == EMU_SEG_NONE)
		return (uint32_t)ea;
	return (uint32_t)(emu_segreg(cpu, seg)->base + ea);
}

/* --- page walk ------------------------------------------------------------ */

struct walk_layout {
	unsigned levels, entry_bytes, index_bits, large_min, large_max;
};

struct walk_result {
	uint64_t gpa;               /* of the byte asked for */
	bool user_ok, write_ok, exec_ok, dirty;
	bool global;                /* the leaf's G bit */
	unsigned page_shift;        /* 12, 21, 22 or 30 */
};

static uint64_t walk_entry_load(void *p, unsigned bytes)
{
	if (bytes == 4)
		return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
}

static void walk_entry_or(void *p, unsigned bytes, uint64_t bits)
{
	if (bytes == 4)
		__atomic_fetch_or((uint32_t *)p, (uint32_t)bits, __ATOMIC_RELAXED);
	else
		__atomic_fetch_or((uint64_t *)p, bits, __ATOMIC_RELAXED);
}

_Noreturn static void walk_fault(struct emu_cpu *cpu, uint64_t lin, uint32_t code)
{
	cpu->sregs.cr2 = lin;
	emu_fault(cpu, X86_PF, true, code);
}

/* Walk from `table`; sets A bits on the way and D on the leaf for writes.
 * Returns 0, or a #PF error code's P bit (0/1) + 2 for "fault". */
static int walk_tables(struct emu_cpu *cpu, const struct walk_layout *l, uint64_t table,
		       bool pse, uint64_t lin, enum emu_acc acc, struct walk_result *w,
		       bool nxe)
{
	for (unsigned level = l->levels; level >= 1; level--) {
		unsigned shift = 12 + (level - 1) * l->index_bits;
		uint64_t index = (lin >> shift) & ((1ull << l->index_bits) - 1);
		void *p = vm_gpa_to_host(cpu->vcpu->vm, table + index * l->entry_bytes,
					 l->entry_bytes);
		if (!p)
			return 2;
		uint64_t e = walk_entry_load(p, l->entry_bytes);
		if (!(e & PTE_P))
			return 2;
		w->user_ok &= !!(e & PTE_U);
		w->write_ok &= !!(e & PTE_W);
		if (nxe && (e & PTE_NX))
			w->exec_ok = false;
		if (!(e & PTE_A)) {
			emu_code_written(cpu->evm, p);     /* a table in a frame with code */
			vm_ram_dirty(cpu->vcpu->vm, p, l->entry_bytes);
			walk_entry_or(p, l->entry_bytes, PTE_A);
		}
		bool large = level >= l->large_min && level <= l->large_max && (e & PTE_PS) &&
			     (l->entry_bytes == 8 || pse);
		if (large || level == 1) {
			if (acc == ACC_W && !(e & PTE_D)) {
				emu_code_written(cpu->evm, p);
				vm_ram_dirty(cpu->vcpu->vm, p, l->entry_bytes);
				walk_entry_or(p, l->entry_bytes, PTE_D);
			}
			w->dirty = (e & PTE_D) || acc == ACC_W;
			w->global = e & PTE_G;
			w->page_shift = l->entry_bytes == 4 && level == 2 ? 22 : shift;
			uint64_t base;
			if (level == 1)
				base = l->entry_bytes == 4 ? (e & PTE32_ADDR_MASK)
							   : (e & PTE_ADDR_MASK);
			else if (l->entry_bytes == 4)   /* PSE-36 4 MiB page */
				base = (e & 0xffc00000ull) | ((e & 0x001fe000ull) << 19);
			else
				base = e & PTE_ADDR_MASK & ~((1ull << shift) - 1);
			w->gpa = base + (lin & ((1ull << shift) - 1));
			return 0;
		}
		table = l->entry_bytes == 4 ? (e & PTE32_ADDR_MASK) : (e & PTE_ADDR_MASK);
	}
	return 2;
}

static int walk(struct emu_cpu *cpu, uint64_t lin, enum emu_acc acc, struct walk_result *w)
{
	const struct x86_sregs *s = &cpu->sregs;
	bool nxe = s->efer & EFER_NXE;
	w->user_ok = w->write_ok = w->exec_ok = true;
	if (s->efer & EFER_LMA) {
		static const struct walk_layout l4 = { 4, 8, 9, 2, 3 }, l5 = { 5, 8, 9, 2, 3 };
		return walk_tables(cpu, (s->cr4 & CR4_LA57) ? &l5 : &l4, s->cr3 & PTE_ADDR_MASK,
				   true, lin, acc, w, nxe);
	}
	if (s->cr4 & CR4_PAE) {
		static const struct walk_layout pd = { 2, 8, 9, 2, 2 };
		uint64_t at = (s->cr3 & 0xffffffe0ull) + ((lin >> 30) & 3) * 8;
		uint64_t *p = vm_gpa_to_host(cpu->vcpu->vm, at, 8);
		if (!p || !(*p & PTE_P))
			return 2;
		return walk_tables(cpu, &pd, *p & PTE_ADDR_MASK, true, lin, acc, w, nxe);
	}
	static const struct walk_layout l2 = { 2, 4, 10, 2, 2 };
	return walk_tables(cpu, &l2, s->cr3 & PTE32_ADDR_MASK, s->cr4 & CR4_PSE, lin, acc, w,
			   false);
}

static bool canonical(struct emu_cpu *cpu, uint64_t lin)
{
	unsigned bits = (cpu->sregs.cr4 & CR4_LA57) ? 57 : 48;
	return (uint64_t)((int64_t)(lin << (64 - bits)) >> (64 - bits)) == lin;
}

/* Supervisor access to a user page: SMEP and SMAP (see the top). Returns
 * the TLB attribute to note, clears what the entry may not allow later;
 * -1 where the access faults (#PF, done here unless probe). */
static int supervisor_on_user_page(struct emu_cpu *cpu, uint64_t lin, enum emu_acc acc,
				   uint32_t code, struct walk_result *w, bool *data_ok,
				   bool probe)
{
	uint64_t cr4 = cpu->sregs.cr4;
	if (cr4 & EMU_CR4_SMEP) {
		if (acc == ACC_X) {
			if (probe)
				return -1;
			walk_fault(cpu, lin, code | PF_P);
		}
		w->exec_ok = false;
	}
	if (!(cr4 & EMU_CR4_SMAP))
		return 0;
	bool allowed = emu_core_of(cpu)->cpl < 3 && (cpu->rflags & RFLAGS_AC);
	if (acc != ACC_X && !allowed) {
		if (probe)
			return -1;
		walk_fault(cpu, lin, code | PF_P);
	}
	*data_ok = allowed;
	return allowed ? EMU_TLBA_SMAP_USER : 0;
}

static uint8_t tlb_attr_of(const struct emu_cpu *cpu, const struct walk_result *w)
{
	uint8_t a = 0;
	if (w->global && (cpu->sregs.cr4 & CR4_PGE))
		a |= EMU_TLBA_GLOBAL;
	if (w->page_shift == 21)
		a |= EMU_TLBA_LARGE;
	else if (w->page_shift > 21)
		a |= EMU_TLBA_HUGE;
	return a;
}

/* The write tag is granted only on a page the machine's dirty map has as
 * written (a write access marks it first), so every first write to a page
 * after a snapshot comes through here; the snapshot store takes the tags
 * back when it clears the map (emu_snap.c). */
static bool ram_marked(struct emu_cpu *cpu, const uint8_t *host)
{
	struct vm *vm = cpu->vcpu->vm;
	return vm_ram_frame_dirty(vm, (uint64_t)(host - vm->ram) >> 12);
}

/* Linear page -> TLB entry for an access (user: at CPL 3 rules), filling it
 * by a walk when needed; faults #PF / #GP, or with probe returns NULL
 * where it would (after the same walk: its accessed bits set). */
static struct emu_tlb_entry *translate_as(struct emu_cpu *cpu, uint64_t lin, enum emu_acc acc,
					  bool user, bool probe)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t page = lin & X86_PAGE_MASK;
	unsigned slot = (unsigned)(lin >> 12) & (EMU_TLB_SIZE - 1);
	struct emu_tlb_entry *t = &c->tlb[user][slot];
	uint64_t tag = acc == ACC_R ? t->tag_r : acc == ACC_W ? t->tag_w : t->tag_x;
	if ((tag & ~EMU_TAG_BITS) == page)
		return t;

	struct walk_result w = { .gpa = lin, .user_ok = true, .write_ok = true, .exec_ok = true,
				 .dirty = true, .page_shift = 12 };
	bool paging = (cpu->sregs.cr0 & CR0_PG) && (cpu->sregs.cr0 & CR0_PE);
	bool data_ok = true;
	uint8_t attr = 0;
	if (c->mode == X86_MODE_LONG64 && !canonical(cpu, lin)) {
		if (probe)
			return NULL;
		emu_gp(cpu, 0);
	}
	if (paging) {
		int r = walk(cpu, lin, acc, &w);
		bool fetch_flag = cpu->sregs.efer & EFER_NXE || cpu->sregs.cr4 & EMU_CR4_SMEP;
		uint32_t code = (acc == ACC_W ? PF_W : 0) | (user ? PF_U : 0) |
				(acc == ACC_X && fetch_flag ? PF_I : 0);
		if (r && probe)
			return NULL;
		if (r)
			walk_fault(cpu, lin, code);
		bool wp = cpu->sregs.cr0 & CR0_WP;
		if ((user && !w.user_ok) || (acc == ACC_W && !w.write_ok && (user || wp)) ||
		    (acc == ACC_X && !w.exec_ok)) {
			if (probe)
				return NULL;
			walk_fault(cpu, lin, code | PF_P);
		}
		if (!user && w.user_ok) {
			int a = supervisor_on_user_page(cpu, lin, acc, code, &w, &data_ok, probe);
			if (a < 0)
				return NULL;
			attr = (uint8_t)a;
		}
		if (!user && !wp)
			w.write_ok = true;        /* supervisor writes ignore R/W without WP */
		attr |= tlb_attr_of(cpu, &w);
	}
	uint64_t gpa_page = w.gpa & X86_PAGE_MASK;
	if (tlb_page(t) == page)
		emu_slots_empty(c, 0);     /* the page's entry again: a slot may be the old one */
	t->gpa = gpa_page;
	t->host = vm_gpa_to_host(cpu->vcpu->vm, gpa_page, X86_PAGE_SIZE);
	t->tag_r = t->tag_w = t->tag_x = TAG_NONE;
	uint8_t listed = c->tlb_attr[user][slot] & EMU_TLBA_LISTED;
	if (!listed && !(attr & EMU_TLBA_GLOBAL)) {
		c->tlb_filled[c->tlb_nr_filled++] = (uint16_t)(user * EMU_TLB_SIZE + slot);
		listed = EMU_TLBA_LISTED;
	}
	c->tlb_attr[user][slot] = attr | listed;
	c->tlb_any_large |= attr & (EMU_TLBA_LARGE | EMU_TLBA_HUGE);
	if (attr & (EMU_TLBA_LARGE | EMU_TLBA_HUGE))
		tlb_note_large(c, lin, (attr & EMU_TLBA_HUGE) ? 30 : 21);
	c->tlb_any_smap_user |= attr & EMU_TLBA_SMAP_USER;
	if (t->host) {
		if (acc == ACC_W)
			vm_ram_dirty(cpu->vcpu->vm, t->host, X86_PAGE_SIZE);
		unsigned watch = emu_dbg_armed(cpu) ? emu_dbg_page_watch(cpu, page, gpa_page) : 0;
		if (data_ok)
			t->tag_r = page | (watch & EMU_DBG_WATCH_R ? EMU_TAG_WATCH : 0);
		if (data_ok && w.write_ok && w.dirty && ram_marked(cpu, t->host))
			t->tag_w = page | (emu_code_frame(cpu->evm, t->host) ? EMU_TAG_CODE : 0) |
				   (watch & EMU_DBG_WATCH_W ? EMU_TAG_WATCH : 0);
		if (w.exec_ok)
			t->tag_x = page;
	}
	return t;
}

/* Is frame that of the block the fast path runs (or ran last)? Its
 * stores into its own bytes must keep ending it (EMU_TAG_CODE). */
static bool block_frame(struct emu_cpu *cpu, uint64_t frame)
{
	const struct emu_block *b = emu_core_of(cpu)->blk;
	if (!b)
		return false;
	uint64_t gpa = b->gpa & X86_PAGE_MASK;
	const uint8_t *h = vm_gpa_to_host(cpu->vcpu->vm, gpa, X86_PAGE_SIZE);
	return h && emu_frame_of(cpu->evm, h) == frame;
}

/* A store of the guest through t (tag_w with EMU_TAG_CODE): the frame's
 * blocks compare again (emu_code_written). After EMU_CODE_STALE_MAX such
 * stores with none of them run meanwhile none is current (each store
 * counted), and the frame leaves the code map: later stores take the fast
 * way until a block there is compared again (emu_fast.c's block_check
 * puts it back). Entries still marked for a frame that left lose the mark
 * at their next store. */
static void code_store(struct emu_cpu *cpu, struct emu_tlb_entry *t)
{
	struct emu_vm *evm = cpu->evm;
	if (!emu_code_frame(evm, t->host)) {
		t->tag_w &= ~EMU_TAG_CODE;
		return;
	}
	uint64_t i = emu_frame_of(evm, t->host);
	evm->code_ver[i]++;
	if (++evm->code_stale[i] < EMU_CODE_STALE_MAX || block_frame(cpu, i))
		return;
	evm->code_bits[i / 64] &= ~(1ull << (i % 64));
	evm->code_stale[i] = 0;
	t->tag_w &= ~EMU_TAG_CODE;
}

static struct emu_tlb_entry *translate(struct emu_cpu *cpu, uint64_t lin, enum emu_acc acc,
				       bool user)
{
	return translate_as(cpu, lin, acc, user, false);
}

bool emu_data_gpa(struct emu_cpu *cpu, uint64_t lin, bool write, uint64_t *gpa)
{
	struct emu_tlb_entry *t = translate_as(cpu, lin, write ? ACC_W : ACC_R,
					       emu_core_of(cpu)->cpl == 3, true);
	if (!t)
		return false;
	*gpa = t->gpa + (lin & (X86_PAGE_SIZE - 1));
	return true;
}

bool emu_tlb_fill_data(struct emu_cpu *cpu, uint64_t lin, bool write)
{
	struct emu_core *c = emu_core_of(cpu);
	bool user = c->cpl == 3;
	struct emu_tlb_entry *t = &c->tlb[user][(lin >> 12) & (EMU_TLB_SIZE - 1)];
	uint64_t page = lin & X86_PAGE_MASK;
	if ((write ? t->tag_w : t->tag_r) == page)
		return false;              /* the fast compare allowed it already */
	t = translate_as(cpu, lin, write ? ACC_W : ACC_R, user, true);
	return t && (write ? t->tag_w : t->tag_r) == page;
}

/* --- the machine's side: MMIO and port I/O with replay -------------------- */

void emu_replay_reset(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	c->replay_n = c->replay_pos = 0;
}

/* The platform may have raised #GP (emu_raise): turn it into the fault. */
static void after_platform(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	/* a device may have moved a timer deadline or raised an interrupt:
	 * let the scheduler look after this instruction */
	c->budget_end = cpu->retired + 1;
	c->blk_break = true;
	if (cpu->pending.exception) {
		cpu->pending.exception = false;
		emu_fault(cpu, cpu->pending.vector, cpu->pending.has_error_code,
			  cpu->pending.error_code);
	}
}

/* A completed access from the log, or NULL when this one is new. */
static struct emu_replay *replay_next(struct emu_core *c, uint8_t kind, uint64_t addr,
				      unsigned len, bool write)
{
	if (c->replay_pos >= c->replay_n)
		return NULL;
	struct emu_replay *r = &c->replay[c->replay_pos];
	if (r->kind != kind || r->addr != addr || r->len != len || r->write != write) {
		/* the instruction took another path: forget the rest */
		c->replay_n = c->replay_pos;
		return NULL;
	}
	c->replay_pos++;
	return r;
}

/* Log a new access; NULL when the log is full. An instruction with more
 * device accesses than the log holds (FXSAVE into an MMIO hole: 64) does
 * the rest as accesses to nothing do on hardware: writes dropped, reads
 * all ones. Again on every re-execution, so it stays one instruction. */
static struct emu_replay *replay_add(struct emu_cpu *cpu, uint8_t kind, uint64_t addr,
				     unsigned len, bool write, const void *data)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->replay_n >= EMU_REPLAY_MAX)
		return NULL;
	struct emu_replay *r = &c->replay[c->replay_n++];
	*r = (struct emu_replay){ .addr = addr, .kind = kind, .len = (uint8_t)len, .write = write };
	if (write)
		memcpy(r->data, data, len);
	c->replay_pos = c->replay_n;
	return r;
}

static void mmio_access(struct emu_cpu *cpu, uint64_t gpa, uint8_t *data, unsigned len,
			bool write)
{
	while (len > 0) {
		unsigned n = len > 8 ? 8 : len;
		struct emu_core *c = emu_core_of(cpu);
		if (emu_platform_mmio(cpu, gpa, data, n, write)) {
			after_platform(cpu);
		} else {
			struct emu_replay *r = replay_next(c, 2, gpa, n, write);
			if (r) {
				if (!write)
					memcpy(data, r->data, n);
			} else if (!(r = replay_add(cpu, 2, gpa, n, write, data))) {
				if (!write)
					memset(data, 0xff, n);
			} else {
				memset(&cpu->exit, 0, sizeof(cpu->exit));
				cpu->exit.reason = VM_EXIT_MMIO;
				cpu->exit.mmio.gpa = gpa;
				cpu->exit.mmio.data = r->data;
				cpu->exit.mmio.len = n;
				cpu->exit.mmio.is_write = write;
				emu_leave(cpu);
			}
		}
		gpa += n;
		data += n;
		len -= n;
	}
}

/* A port access completed: the debugger may want to hear of it. */
static void pio_done(struct emu_cpu *cpu, uint16_t port, unsigned size, bool is_write,
		     uint64_t value)
{
	if (emu_core_of(cpu)->dbg_armed)
		emu_dbg_access(cpu, ENGINE_ACCESS_IO, port, size, is_write,
			       value & (~0ull >> (64 - 8 * size)));
}

uint64_t emu_pio_in(struct emu_cpu *cpu, uint16_t port, unsigned size)
{
	struct emu_core *c = emu_core_of(cpu);
	uint8_t data[8] = { 0 };
	uint64_t v = 0;
	if (emu_platform_pio(cpu, port, data, size, false)) {
		after_platform(cpu);
		memcpy(&v, data, size);
		pio_done(cpu, port, size, false, v);
		return v;
	}
	struct emu_replay *r = replay_next(c, 1, port, size, false);
	if (r) {
		memcpy(&v, r->data, size);
		pio_done(cpu, port, size, false, v);
		return v;
	}
	r = replay_add(cpu, 1, port, size, false, NULL);
	if (!r)
		return ~0ull >> (64 - 8 * size);
	memset(r->data, 0xff, sizeof(r->data));
	memset(&cpu->exit, 0, sizeof(cpu->exit));
	cpu->exit.reason = VM_EXIT_IO;
	cpu->exit.io.port = port;
	cpu->exit.io.size = (uint8_t)size;
	cpu->exit.io.is_write = false;
	cpu->exit.io.count = 1;
	cpu->exit.io.data = r->data;
	emu_leave(cpu);
}

void emu_pio_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t value)
{
	struct emu_core *c = emu_core_of(cpu);
	uint8_t data[8];
	memcpy(data, &value, sizeof(data));
	if (emu_platform_pio(cpu, port, data, size, true)) {
		after_platform(cpu);
		pio_done(cpu, port, size, true, value);
		return;
	}
	if (replay_next(c, 1, port, size, true)) {
		pio_done(cpu, port, size, true, value);
		return;
	}
	struct emu_replay *r = replay_add(cpu, 1, port, size, true, data);
	if (!r)
		return;
	memset(&cpu->exit, 0, sizeof(cpu->exit));
	cpu->exit.reason = VM_EXIT_IO;
	cpu->exit.io.port = port;
	cpu->exit.io.size = (uint8_t)size;
	cpu->exit.io.is_write = true;
	cpu->exit.io.count = 1;
	cpu->exit.io.data = r->data;
	emu_leave(cpu);
}

/* --- accesses ---------------------------------------------------------------- */

static bool at_user(struct emu_cpu *cpu, bool sys)
{
	return !sys && emu_core_of(cpu)->cpl == 3;
}

/* Any-length access split at page boundaries. Writes translate every page
 * first so a fault leaves memory untouched. */
static void access_bytes(struct emu_cpu *cpu, uint64_t lin, uint8_t *buf, unsigned len,
			 bool write, bool sys)
{
	bool user = at_user(cpu, sys);
	enum emu_acc acc = write ? ACC_W : ACC_R;
	if (write) {
		uint64_t a = lin;
		for (unsigned left = len; left > 0;) {
			unsigned n = (unsigned)(X86_PAGE_SIZE - (a & (X86_PAGE_SIZE - 1)));
			if (n > left)
				n = left;
			translate(cpu, a, acc, user);
			a += n;
			left -= n;
		}
	}
	while (len > 0) {
		unsigned off = (unsigned)(lin & (X86_PAGE_SIZE - 1));
		unsigned n = (unsigned)X86_PAGE_SIZE - off;
		if (n > len)
			n = len;
		struct emu_tlb_entry *t = translate(cpu, lin, acc, user);
		if (t->host) {
			if (write && (t->tag_w & EMU_TAG_CODE))
				code_store(cpu, t);
			if (write)
				memcpy(t->host + off, buf, n);
			else
				memcpy(buf, t->host + off, n);
		} else {
			mmio_access(cpu, t->gpa + off, buf, n, write);
		}
		lin += n;
		buf += n;
		len -= n;
	}
}

static inline uint64_t load_n(const uint8_t *p, unsigned size)
{
	switch (size) {
	case 1: return *p;
	case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}

static inline void store_n(uint8_t *p, unsigned size, uint64_t v)
{
	switch (size) {
	case 1: *p = (uint8_t)v; break;
	case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
	case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
	default: memcpy(p, &v, 8); break;
	}
}

uint8_t *emu_lock_ptr(struct emu_cpu *cpu, uint64_t lin, unsigned size)
{
	if (size == 0 || size > 16 || (size & (size - 1)) || (lin & (size - 1)))
		return NULL;                   /* aligned: inside one page */
	bool user = at_user(cpu, false);
	translate(cpu, lin, ACC_R, user);
	struct emu_tlb_entry *t = translate(cpu, lin, ACC_W, user);
	if (!t->host)
		return NULL;
	if (t->tag_w & EMU_TAG_CODE)
		code_store(cpu, t);                   /* the caller writes it */
	return t->host + (lin & (X86_PAGE_SIZE - 1));
}

uint8_t *emu_ram_span(struct emu_cpu *cpu, uint64_t lin, unsigned len, bool write)
{
	if (len == 0 || (lin & (X86_PAGE_SIZE - 1)) > X86_PAGE_SIZE - len)
		return NULL;
	struct emu_tlb_entry *t = translate(cpu, lin, write ? ACC_W : ACC_R, at_user(cpu, false));
	if (!t->host)
		return NULL;
	if (write && (t->tag_w & EMU_TAG_CODE))
		code_store(cpu, t);                   /* the caller writes it */
	return t->host + (lin & (X86_PAGE_SIZE - 1));
}

/* The first read of a locked instruction (emu_core.lk_on): atomic when the
 * operand is aligned RAM; false when it is not (an ordinary access). */
static bool lock_read(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t *v)
{
	struct emu_core *c = emu_core_of(cpu);
	if (c->lk_p)
		return false;
	uint8_t *p = emu_lock_ptr(cpu, lin, size);
	if (!p)
		return false;
	switch (size) {
	case 1: *v = __atomic_load_n(p, __ATOMIC_SEQ_CST); break;
	case 2: *v = __atomic_load_n((uint16_t *)p, __ATOMIC_SEQ_CST); break;
	case 4: *v = __atomic_load_n((uint32_t *)p, __ATOMIC_SEQ_CST); break;
	default: *v = __atomic_load_n((uint64_t *)p, __ATOMIC_SEQ_CST); break;
	}
	c->lk_p = p;
	c->lk_lin = lin;
	c->lk_size = (uint8_t)size;
	c->lk_old = *v;
	return true;
}

static inline uint64_t read_common(struct emu_cpu *cpu, uint64_t lin, unsigned size, bool sys)
{
	struct emu_core *c = emu_core_of(cpu);
	bool user = at_user(cpu, sys);
	if (c->dbg_armed && !sys)
		emu_dbg_mem(cpu, lin, size, false);
	uint64_t lv;
	if (__builtin_expect(c->lk_on, 0) && !sys && lock_read(cpu, lin, size, &lv))
		return lv;
	if ((lin & (X86_PAGE_SIZE - 1)) <= X86_PAGE_SIZE - size) {
		struct emu_tlb_entry *t = &c->tlb[user][(lin >> 12) & (EMU_TLB_SIZE - 1)];
		if ((t->tag_r & ~EMU_TAG_BITS) != (lin & X86_PAGE_MASK))
			t = translate(cpu, lin, ACC_R, user);
		if (t->host)
			return load_n(t->host + (lin & (X86_PAGE_SIZE - 1)), size);
	}
	uint8_t buf[8] = { 0 };
	access_bytes(cpu, lin, buf, size, false, sys);
	return load_n(buf, size);
}

static inline void write_common(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t v,
				bool sys)
{
	struct emu_core *c = emu_core_of(cpu);
	bool user = at_user(cpu, sys);
	if (c->dbg_armed && !sys)
		emu_dbg_mem(cpu, lin, size, true);
	if (__builtin_expect(c->lk_on, 0) && !sys && c->lk_p && lin == c->lk_lin &&
	    size == c->lk_size) {
		c->lk_new = v;                 /* committed by exec_locked's CAS */
		c->lk_written = true;
		return;
	}
	if ((lin & (X86_PAGE_SIZE - 1)) <= X86_PAGE_SIZE - size) {
		struct emu_tlb_entry *t = &c->tlb[user][(lin >> 12) & (EMU_TLB_SIZE - 1)];
		if ((t->tag_w & ~EMU_TAG_BITS) != (lin & X86_PAGE_MASK))
			t = translate(cpu, lin, ACC_W, user);
		if (t->host) {
			if (__builtin_expect(t->tag_w & EMU_TAG_CODE, 0))
				code_store(cpu, t);
			store_n(t->host + (lin & (X86_PAGE_SIZE - 1)), size, v);
			return;
		}
	}
	uint8_t buf[8];
	store_n(buf, size, v);
	access_bytes(cpu, lin, buf, size, true, sys);
}

uint64_t emu_read(struct emu_cpu *cpu, uint64_t lin, unsigned size)
{
	return read_common(cpu, lin, size, false);
}

void emu_write(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t value)
{
	write_common(cpu, lin, size, value, false);
}

uint64_t emu_read_sys(struct emu_cpu *cpu, uint64_t lin, unsigned size)
{
	return read_common(cpu, lin, size, true);
}

void emu_write_sys(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t value)
{
	write_common(cpu, lin, size, value, true);
}

/* The host address of len bytes at lin when they are in one RAM page the
 * TLB allows (tag_r or tag_w as tag), else NULL (access_bytes then). */
static inline uint8_t *tlb_span(struct emu_cpu *cpu, uint64_t lin, unsigned len, bool write,
				bool sys)
{
	struct emu_core *c = emu_core_of(cpu);
	if (len == 0 || (lin & (X86_PAGE_SIZE - 1)) > X86_PAGE_SIZE - len)
		return NULL;
	struct emu_tlb_entry *t = &c->tlb[at_user(cpu, sys)][(lin >> 12) & (EMU_TLB_SIZE - 1)];
	if (((write ? t->tag_w : t->tag_r) & ~EMU_TAG_BITS) != (lin & X86_PAGE_MASK))
		return NULL;
	if (write && (t->tag_w & EMU_TAG_CODE))
		code_store(cpu, t);
	return t->host + (lin & (X86_PAGE_SIZE - 1));
}

void emu_read_bytes(struct emu_cpu *cpu, uint64_t lin, void *buf, unsigned len, bool sys)
{
	if (emu_core_of(cpu)->dbg_armed && !sys)
		emu_dbg_mem(cpu, lin, len, false);
	const uint8_t *p = tlb_span(cpu, lin, len, false, sys);
	if (p)
		memcpy(buf, p, len);
	else
		access_bytes(cpu, lin, buf, len, false, sys);
}

void emu_write_bytes(struct emu_cpu *cpu, uint64_t lin, const void *buf, unsigned len, bool sys)
{
	if (emu_core_of(cpu)->dbg_armed && !sys)
		emu_dbg_mem(cpu, lin, len, true);
	uint8_t *p = tlb_span(cpu, lin, len, true, sys);
	if (p)
		memcpy(p, buf, len);
	else
		access_bytes(cpu, lin, (uint8_t *)buf, len, true, sys);
}

void emu_probe_write(struct emu_cpu *cpu, uint64_t lin, unsigned len)
{
	bool user = at_user(cpu, false);
	translate(cpu, lin, ACC_W, user);
	if (len > 1)
		translate(cpu, lin + len - 1, ACC_W, user);
}

void emu_tlb_fill_exec(struct emu_cpu *cpu, uint64_t lin)
{
	translate(cpu, lin, ACC_X, emu_core_of(cpu)->cpl == 3);
}

/* Instruction bytes: a pointer into RAM when all 15 possible bytes are in
 * one page; otherwise as many bytes as can be read, copied into buf (the
 * second page is only required, and faults, when the decoder needs it:
 * emu_decode.c calls again with *len = 16 to force that). */
const uint8_t *emu_fetch(struct emu_cpu *cpu, uint64_t lin, uint8_t *buf, unsigned *len,
			 uint64_t *gpa)
{
	bool user = emu_core_of(cpu)->cpl == 3;
	bool need_all = *len > 15;
	struct emu_tlb_entry *t = translate(cpu, lin, ACC_X, user);
	unsigned off = (unsigned)(lin & (X86_PAGE_SIZE - 1));
	if (!t->host) {
		*len = 0;
		return NULL;
	}
	*gpa = t->gpa + off;
	if (off <= X86_PAGE_SIZE - 15) {
		*len = 15;
		return t->host + off;
	}
	unsigned first = (unsigned)X86_PAGE_SIZE - off;
	memcpy(buf, t->host + off, first);
	*len = first;
	uint64_t next = (lin & X86_PAGE_MASK) + X86_PAGE_SIZE;
	if (emu_core_of(cpu)->mode != X86_MODE_LONG64)
		next = (uint32_t)next;
	if (!need_all) {
		/* peek without faulting: only a present, executable RAM page counts */
		struct emu_core *c = emu_core_of(cpu);
		struct emu_tlb_entry *t2 = &c->tlb[user][(next >> 12) & (EMU_TLB_SIZE - 1)];
		if (t2->tag_x != next || !t2->host)
			return buf;
		memcpy(buf + first, t2->host, 15 - first);
		*len = 15;
		return buf;
	}
	struct emu_tlb_entry *t2 = translate(cpu, next, ACC_X, user);
	if (!t2->host)
		memset(buf + first, 0xff, 15 - first);  /* nothing there reads all ones */
	else
		memcpy(buf + first, t2->host, 15 - first);
	*len = 15;
	return buf;
}
