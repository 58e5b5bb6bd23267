/* engine/kvm/kvm_xstate.c — the XSAVE family (XSAVE, XSAVEOPT, XSAVEC,
 * XSAVES, XRSTOR, XRSTORS) for the emu fallback when XCR0 enables state
 * components beyond x87 and SSE (AVX, AVX-512), which emu's own image
 * lacks. On a host whose emulator runs guest ring 0, leaves 1 and 7 of
 * the guest's CPUID are the host CPU's whatever KVM_SET_CPUID2 says, so
 * Linux enables every component the host has (x87 to AVX-512 here), and
 * its context switches run these.
 *
 * The instruction is done against KVM's XSAVE image of the vCPU
 * (KVM_GET/SET_XSAVE: the standard format, components at the offsets of
 * CPUID leaf 0xD, XSTATE_BV = the components in use) and guest memory.
 * 64-bit mode only. An access the CPU would fault (not present,
 * read-only, SMAP) raises #PF in the guest, as the CPU would (Linux
 * expects that for a signal frame, and fixes it up). Supervisor
 * components (IA32_XSS) are not in KVM's image: XSAVES/XRSTORS with one
 * of them selected stay the emulation failure they are. */
#include "engine/kvm/kvm.h"

#include <string.h>

#include "x86/desc.h"

#define XS_HEADER       512            /* XSTATE_BV, XCOMP_BV, reserved */
#define XS_EXT_START    576            /* first extended component, compacted */
#define XS_IMAGE_MAX    4096           /* struct kvm_xsave */
#define XS_COMPACTED    (1ull << 63)   /* XCOMP_BV: compacted format */
#define XS_X87          (1ull << 0)
#define XS_SSE          (1ull << 1)
#define XS_AVX          (1ull << 2)
#define XS_MXCSR_OFF    24
#define XS_XMM_OFF      160
#define XS_XMM_SIZE     256
#define XS_FCW_INIT     0x037f
#define XS_MXCSR_INIT   0x1f80u
#define XS_NR           64
#define XS_PAGE_FAULT   (1 << 30)      /* xs_translate: a #PF, with its error code */
#define PF_ERR_PRESENT  (1 << 0)
#define PF_ERR_WRITE    (1 << 1)
#define CR4_SMAP_BIT    (1ull << 21)   /* supervisor-mode access prevention */
#define MSR_IA32_XSS    0xda0

enum xs_op { XS_SAVE, XS_SAVEOPT, XS_SAVEC, XS_SAVES, XS_RSTOR, XS_RSTORS };

struct xs_insn {
	enum xs_op op;
	bool rex_w;                   /* the 64-bit forms (FIP/FDP as 64-bit offsets) */
	unsigned len;
	uint64_t addr;                /* linear address of the save area */
};

/* Where each component lives in the standard format (CPUID 0xD.i). */
struct xs_layout {
	uint32_t size[XS_NR], offset[XS_NR];
	uint64_t align64;             /* components aligned to 64 in compacted form */
};

/* --- decoding --------------------------------------------------------------------- */

static uint64_t xs_gpr(const struct x86_regs *r, unsigned n)
{
	const uint64_t v[16] = { r->rax, r->rcx, r->rdx, r->rbx, r->rsp, r->rbp, r->rsi, r->rdi,
				 r->r8, r->r9, r->r10, r->r11, r->r12, r->r13, r->r14, r->r15 };
	return v[n & 15];
}

static bool xs_opcode(uint8_t opc, unsigned reg, enum xs_op *op)
{
	static const int ae[8] = { -1, -1, -1, -1, XS_SAVE, XS_RSTOR, XS_SAVEOPT, -1 };
	static const int c7[8] = { -1, -1, -1, XS_RSTORS, XS_SAVEC, XS_SAVES, -1, -1 };
	int o = opc == 0xae ? ae[reg] : opc == 0xc7 ? c7[reg] : -1;
	if (o < 0)
		return false;
	*op = (enum xs_op)o;
	return true;
}

static int32_t xs_disp(const uint8_t *b, unsigned *i, unsigned bytes)
{
	int32_t d = 0;
	if (bytes == 1)
		d = (int8_t)b[*i];
	else if (bytes == 4)
		memcpy(&d, b + *i, 4);
	*i += bytes;
	return d;
}

/* ModRM (and SIB) memory operand in 64-bit mode; false for a register. */
static bool xs_modrm_addr(const uint8_t *b, unsigned n, unsigned *i, uint8_t rex,
			  const struct x86_regs *r, uint64_t *ea, bool *rip_rel)
{
	uint8_t modrm = b[*i - 1];
	unsigned mod = modrm >> 6, rm = modrm & 7;
	*ea = 0;
	*rip_rel = false;
	if (mod == 3)
		return false;
	unsigned base = rm;
	if (rm == 4) {
		if (*i >= n)
			return false;
		uint8_t sib = b[(*i)++];
		unsigned index = ((sib >> 3) & 7) | ((rex & 2u) << 2);
		base = sib & 7;
		if (index != 4)
			*ea += xs_gpr(r, index) << (sib >> 6);
	} else if (rm == 5 && mod == 0) {
		*rip_rel = true;
	}
	bool no_base = mod == 0 && base == 5;
	if (!no_base)
		*ea += xs_gpr(r, base | ((rex & 1u) << 3));
	unsigned disp = mod == 1 ? 1 : (mod == 2 || no_base) ? 4 : 0;
	if (*i + disp > n)
		return false;
	*ea += (uint64_t)(int64_t)xs_disp(b, i, disp);
	return true;
}

static bool xs_decode(const uint8_t *b, unsigned n, const struct x86_regs *r,
		      const struct x86_sregs *s, struct xs_insn *x)
{
	unsigned i = 0;
	uint64_t seg = 0;
	bool addr32 = false;
	for (; i < n; i++) {
		if (b[i] == 0x64)
			seg = s->fs.base;
		else if (b[i] == 0x65)
			seg = s->gs.base;
		else if (b[i] == 0x67)
			addr32 = true;
		else if (b[i] != 0x26 && b[i] != 0x2e && b[i] != 0x36 && b[i] != 0x3e)
			break;
	}
	uint8_t rex = 0;
	if (i < n && (b[i] & 0xf0) == 0x40)
		rex = b[i++];
	if (i + 3 > n || b[i] != 0x0f || !xs_opcode(b[i + 1], (b[i + 2] >> 3) & 7, &x->op))
		return false;
	i += 3;
	uint64_t ea;
	bool rip_rel;
	if (!xs_modrm_addr(b, n, &i, rex, r, &ea, &rip_rel))
		return false;
	x->len = i;
	x->rex_w = rex & 8;
	if (rip_rel)
		ea += r->rip + i;
	if (addr32)
		ea &= 0xffffffffull;
	x->addr = ea + seg;
	return true;
}

/* --- layout and guest memory ------------------------------------------------------ */

static void xs_layout_of(const struct kvm_cpuid2 *c, struct xs_layout *l)
{
	memset(l, 0, sizeof(*l));
	l->size[0] = 160;
	l->size[1] = XS_XMM_SIZE;
	l->offset[1] = XS_XMM_OFF;
	for (uint32_t i = 0; i < c->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 0xd || e->index < 2 || e->index >= XS_NR)
			continue;
		l->size[e->index] = e->eax;
		l->offset[e->index] = e->ebx;
		if (e->ecx & 2)
			l->align64 |= 1ull << e->index;
	}
}

/* Compacted offsets for the components in xcomp (bits 2 and up). */
static void xs_compact(const struct xs_layout *l, uint64_t xcomp, uint32_t off[XS_NR])
{
	uint32_t at = XS_EXT_START;
	off[0] = 0;
	off[1] = XS_XMM_OFF;
	for (unsigned i = 2; i < XS_NR; i++) {
		if (!(xcomp & (1ull << i)))
			continue;
		if (l->align64 & (1ull << i))
			at = (at + 63) & ~63u;
		off[i] = at;
		at += l->size[i];
	}
}

/* The 4- or 5-level walk of a ring-0 access, as the CPU makes it: every
 * level present, writable for a write (CR0.WP), a user page only with
 * RFLAGS.AC under SMAP; accessed (and dirty) bits set on the way.
 * 0, XS_PAGE_FAULT | the #PF error code, or -errno (a table outside RAM, a
 * non-canonical address: the failure stands). */
static int xs_translate(struct kvm_vcpu_state *v, const struct x86_sregs *s, uint64_t rflags,
			uint64_t gva, bool write, uint64_t *gpa)
{
	unsigned levels = (s->cr4 & CR4_LA57) ? 5 : 4, bits = 12 + 9 * levels;
	int64_t canon = (int64_t)(gva << (64 - bits)) >> (64 - bits);
	int fault = XS_PAGE_FAULT | (write ? PF_ERR_WRITE : 0);
	if ((uint64_t)canon != gva)
		return -EFAULT;
	uint64_t table = s->cr3 & PTE_ADDR_MASK, all = PTE_W | PTE_U;
	for (unsigned level = levels; level >= 1; level--) {
		unsigned shift = 12 + 9 * (level - 1);
		uint64_t at = table + ((gva >> shift) & 511) * 8, e;
		if (kvm_read_phys(v->kvm, at, &e, sizeof(e)) < 0)
			return -EFAULT;
		if (!(e & PTE_P))
			return fault;
		all &= e;
		bool leaf = level == 1 || (level <= 3 && (e & PTE_PS));
		if (leaf && ((write && (s->cr0 & CR0_WP) && !(all & PTE_W)) ||
			     ((all & PTE_U) && (s->cr4 & CR4_SMAP_BIT) && !(rflags & RFLAGS_AC))))
			return fault | PF_ERR_PRESENT;
		uint64_t set = PTE_A | ((leaf && write) ? PTE_D : 0);
		if ((e & set) != set) {
			e |= set;
			if (kvm_write_phys(v->kvm, at, &e, sizeof(e)) < 0)
				return -EFAULT;
		}
		table = e & PTE_ADDR_MASK;
		if (leaf) {
			uint64_t offset = (1ull << shift) - 1;
			*gpa = (table & ~offset) | (gva & offset);
			return 0;
		}
	}
	return -EFAULT;                         /* not reached: level 1 is a leaf */
}

enum xs_access { XS_READ, XS_READ_TO_WRITE, XS_WRITE };

/* Copy between guest linear memory and buf, page by page; what
 * xs_translate says, with CR2 set for a page fault. XS_READ_TO_WRITE
 * reads what a write is about to change (faulting as the write would). */
static int xs_guest(struct kvm_vcpu_state *v, struct x86_state *st, uint64_t addr,
		    uint8_t *buf, size_t len, enum xs_access how)
{
	bool write = how == XS_WRITE;
	for (size_t done = 0; done < len;) {
		uint64_t gva = addr + done, gpa;
		int r = (st->sregs.cr0 & CR0_PG)
			? xs_translate(v, &st->sregs, st->regs.rflags, gva, how != XS_READ, &gpa)
			: (gpa = gva, 0);
		if (r > 0)
			st->sregs.cr2 = gva;
		if (r != 0)
			return r;
		size_t chunk = 4096 - (gva & 4095);
		if (chunk > len - done)
			chunk = len - done;
		r = write ? kvm_write_phys(v->kvm, gpa, buf + done, chunk)
			  : kvm_read_phys(v->kvm, gpa, buf + done, chunk);
		if (r < 0)
			return r;
		done += chunk;
	}
	return 0;
}

/* Bytes of the save area the instruction touches: header included. */
static size_t xs_extent(const struct xs_layout *l, uint64_t comps, bool compacted)
{
	uint32_t off[XS_NR];
	size_t end = XS_EXT_START;
	if (compacted)
		xs_compact(l, comps, off);
	for (unsigned i = 2; i < XS_NR; i++) {
		size_t o = compacted ? off[i] : l->offset[i];
		if ((comps & (1ull << i)) && o + l->size[i] > end)
			end = o + l->size[i];
	}
	return end;
}

/* --- the instructions on the image ------------------------------------------------- */

static uint64_t xs_get64(const uint8_t *p, size_t off)
{
	uint64_t v;
	memcpy(&v, p + off, sizeof(v));
	return v;
}

static void xs_put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

/* Component i from src (at src_off) to dst (at dst_off); x87 leaves
 * MXCSR (bytes 24-31) alone: it belongs to SSE and AVX. */
static void xs_copy(uint8_t *dst, uint32_t dst_off, const uint8_t *src, uint32_t src_off,
		    unsigned i, const struct xs_layout *l)
{
	if (i == 0) {
		memcpy(dst, src, XS_MXCSR_OFF);
		memcpy(dst + 32, src + 32, 128);
		return;
	}
	memcpy(dst + dst_off, src + src_off, l->size[i]);
}

static void xs_init(uint8_t *img, unsigned i, const struct xs_layout *l)
{
	if (i == 0) {
		uint16_t fcw = XS_FCW_INIT;
		memset(img, 0, XS_MXCSR_OFF);
		memset(img + 32, 0, 128);
		memcpy(img, &fcw, sizeof(fcw));
		return;
	}
	memset(img + l->offset[i], 0, l->size[i]);
}

/* The 32-bit forms keep FIP/FDP as 32-bit offsets with selectors, which
 * this CPU model stores as zero (CPUID 7 EBX bit 13). */
static void xs_fip32(uint8_t *area)
{
	memset(area + 12, 0, 4);
	memset(area + 20, 0, 4);
}

static void xs_save(const struct xs_insn *x, const uint8_t *img, uint8_t *mem, uint64_t rfbm,
		    const struct xs_layout *l)
{
	uint64_t inuse = xs_get64(img, XS_HEADER);
	bool compacted = x->op == XS_SAVEC || x->op == XS_SAVES;
	uint32_t off[XS_NR];
	if (compacted)
		xs_compact(l, rfbm, off);
	else
		memcpy(off, l->offset, sizeof(off));
	for (unsigned i = 0; i < XS_NR; i++) {
		uint64_t bit = 1ull << i;
		if (!(rfbm & bit) || (compacted && !(inuse & bit)) || (i >= 2 && !l->size[i]))
			continue;
		xs_copy(mem, off[i], img, l->offset[i], i, l);
	}
	if (compacted ? (rfbm & inuse & XS_SSE) : (rfbm & (XS_SSE | XS_AVX)))
		memcpy(mem + XS_MXCSR_OFF, img + XS_MXCSR_OFF, 8);   /* MXCSR, MXCSR_MASK */
	if ((rfbm & XS_X87) && !x->rex_w)
		xs_fip32(mem);
	if (compacted) {
		xs_put64(mem, XS_HEADER, inuse & rfbm);
		xs_put64(mem, XS_HEADER + 8, rfbm | XS_COMPACTED);
	} else {
		uint64_t bv = xs_get64(mem, XS_HEADER);
		xs_put64(mem, XS_HEADER, (bv & ~rfbm) | (inuse & rfbm));
	}
}

/* The header checks of XRSTOR/XRSTORS: false means #GP. */
static bool xs_header_ok(const struct xs_insn *x, const uint8_t *mem, uint64_t allowed)
{
	uint64_t bv = xs_get64(mem, XS_HEADER), xcomp = xs_get64(mem, XS_HEADER + 8);
	static const uint8_t zero[48];
	if (!(xcomp & XS_COMPACTED))
		return x->op != XS_RSTORS && !(bv & ~allowed) && xcomp == 0 &&
		       xs_get64(mem, XS_HEADER + 16) == 0;
	return !((xcomp & ~XS_COMPACTED) & ~allowed) && !(bv & ~xcomp) &&
	       memcmp(mem + XS_HEADER + 16, zero, sizeof(zero)) == 0;
}

/* false: #GP (a reserved MXCSR bit). The header is checked already. */
static bool xs_restore(const struct xs_insn *x, uint8_t *img, const uint8_t *mem, uint64_t rfbm,
		       const struct xs_layout *l)
{
	uint64_t bv = xs_get64(mem, XS_HEADER), xcomp = xs_get64(mem, XS_HEADER + 8);
	bool compacted = xcomp & XS_COMPACTED;
	uint32_t off[XS_NR], mxcsr, mask;
	memcpy(&mask, img + XS_MXCSR_OFF + 4, sizeof(mask));
	memcpy(&mxcsr, mem + XS_MXCSR_OFF, sizeof(mxcsr));
	bool load_mxcsr = compacted ? (rfbm & bv & XS_SSE) : (rfbm & (XS_SSE | XS_AVX));
	if (load_mxcsr && (mxcsr & ~(mask ? mask : 0xffbfu)))
		return false;
	if (compacted)
		xs_compact(l, xcomp & ~XS_COMPACTED, off);
	else
		memcpy(off, l->offset, sizeof(off));
	for (unsigned i = 0; i < XS_NR; i++) {
		uint64_t bit = 1ull << i;
		if (!(rfbm & bit) || (i >= 2 && !l->size[i]))
			continue;
		if (bv & bit)
			xs_copy(img, l->offset[i], mem, off[i], i, l);
		else
			xs_init(img, i, l);
	}
	if (load_mxcsr)
		memcpy(img + XS_MXCSR_OFF, &mxcsr, sizeof(mxcsr));
	else if (compacted && (rfbm & XS_SSE))
		memcpy(img + XS_MXCSR_OFF, &(uint32_t){ XS_MXCSR_INIT }, sizeof(mxcsr));
	if ((rfbm & bv & XS_X87) && !x->rex_w)
		xs_fip32(img);
	uint64_t inuse = xs_get64(img, XS_HEADER);
	xs_put64(img, XS_HEADER, (inuse & ~rfbm) | (bv & rfbm));
	xs_put64(img, XS_HEADER + 8, 0);
	return true;
}

/* --- one instruction ---------------------------------------------------------------- */

static int xs_read_xss(struct kvm_vcpu_state *v, uint64_t *xss)
{
	struct {
		struct kvm_msrs head;
		struct kvm_msr_entry entry;
	} m;
	memset(&m, 0, sizeof(m));
	m.head.nmsrs = 1;
	m.entry.index = MSR_IA32_XSS;
	int r = kvm_ioctl(v->fd, KVM_GET_MSRS, &m);
	if (r < 0)
		return r;
	*xss = r == 1 ? m.entry.data : 0;   /* a host without XSAVES support: none */
	return 0;
}

/* The save area of a restore: its header says which format, hence how
 * much of it there is. */
static int xs_read_restore_area(struct kvm_vcpu_state *v, struct x86_state *s,
				const struct xs_insn *x, const struct xs_layout *l, uint64_t rfbm,
				uint8_t *mem)
{
	int r = xs_guest(v, s, x->addr, mem, XS_EXT_START, XS_READ);
	if (r != 0)
		return r;
	uint64_t xcomp = xs_get64(mem, XS_HEADER + 8);
	bool compacted = xcomp & XS_COMPACTED;
	size_t extent = xs_extent(l, compacted ? xcomp & ~XS_COMPACTED : rfbm, compacted);
	if (extent > XS_IMAGE_MAX)
		return -EINVAL;
	return xs_guest(v, s, x->addr + XS_EXT_START, mem + XS_EXT_START, extent - XS_EXT_START,
			XS_READ);
}

/* A result of xs_guest / xs_read_restore_area as the instruction's. */
static enum kvm_xstate_result xs_access_result(int r, uint32_t *pf_code)
{
	if (r > 0)
		*pf_code = (uint32_t)r & ~XS_PAGE_FAULT;
	return r > 0 ? KVM_XSTATE_PF : r < 0 ? KVM_XSTATE_REFUSED : KVM_XSTATE_DONE;
}

static enum kvm_xstate_result xs_run(struct kvm_vcpu_state *v, struct x86_state *st,
				     const struct xs_insn *x, uint64_t rfbm, uint64_t allowed,
				     uint32_t *pf_code)
{
	struct kvm_xsave img;
	_Static_assert(sizeof(img) == XS_IMAGE_MAX, "KVM's XSAVE image is 4 KiB");
	uint8_t *im = (uint8_t *)img.region, mem[XS_IMAGE_MAX];
	struct xs_layout l;
	xs_layout_of(v->kvm->cpuid, &l);
	if (kvm_ioctl(v->fd, KVM_GET_XSAVE, &img) < 0)
		return KVM_XSTATE_REFUSED;
	memset(mem, 0, sizeof(mem));
	enum kvm_xstate_result r;
	if (x->op >= XS_RSTOR) {
		r = xs_access_result(xs_read_restore_area(v, st, x, &l, rfbm, mem), pf_code);
		if (r != KVM_XSTATE_DONE)
			return r;
		if (!xs_header_ok(x, mem, allowed) || !xs_restore(x, im, mem, rfbm, &l))
			return KVM_XSTATE_GP;
		return kvm_ioctl(v->fd, KVM_SET_XSAVE, &img) < 0 ? KVM_XSTATE_REFUSED
								 : KVM_XSTATE_DONE;
	}
	size_t extent = xs_extent(&l, rfbm, x->op == XS_SAVEC || x->op == XS_SAVES);
	if (extent > XS_IMAGE_MAX)
		return KVM_XSTATE_REFUSED;
	r = xs_access_result(xs_guest(v, st, x->addr, mem, extent, XS_READ_TO_WRITE), pf_code);
	if (r != KVM_XSTATE_DONE)
		return r;
	xs_save(x, im, mem, rfbm, &l);
	return xs_access_result(xs_guest(v, st, x->addr, mem, extent, XS_WRITE), pf_code);
}

bool kvm_xstate_match(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len)
{
	struct x86_regs none;
	struct xs_insn x;
	memset(&none, 0, sizeof(none));
	return x86_mode_of(sregs) == X86_MODE_LONG64 && xs_decode(insn, len, &none, sregs, &x);
}

enum kvm_xstate_result kvm_xstate_execute(struct vcpu *vcpu, struct x86_state *st,
					  const uint8_t *insn, unsigned len, uint32_t *pf_code)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct xs_insn x;
	if (!v->kvm->caps.xsave || x86_mode_of(&st->sregs) != X86_MODE_LONG64 ||
	    !xs_decode(insn, len, &st->regs, &st->sregs, &x))
		return KVM_XSTATE_NOT_MINE;
	bool supervisor = x.op == XS_SAVES || x.op == XS_RSTORS;
	if ((x.addr & 63) || (supervisor && (st->sregs.cs.selector & 3)))
		return KVM_XSTATE_GP;
	uint64_t xss = 0;
	if (supervisor && xs_read_xss(v, &xss) < 0)
		return KVM_XSTATE_REFUSED;
	uint64_t rfbm = (st->xcr0 | xss) & ((st->regs.rdx << 32) | (uint32_t)st->regs.rax);
	if (rfbm & xss)
		return KVM_XSTATE_REFUSED;     /* not in KVM's image */
	enum kvm_xstate_result r = xs_run(v, st, &x, rfbm, st->xcr0 | xss, pf_code);
	if (r == KVM_XSTATE_DONE)
		st->regs.rip += x.len;
	return r;
}
