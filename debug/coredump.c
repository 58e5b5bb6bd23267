/* debug/coredump.c — the machine as an ELF core file (coredump.h).
 *
 * The file: the ELF header, the program headers (one PT_NOTE, then the
 * PT_LOADs; past 65534 of them e_phnum is PN_XNUM and section header 0
 * holds the count, as gdb and crash expect), the notes, then from a page
 * boundary on the image: guest RAM (within the asked range) once, in
 * physical order. Every PT_LOAD's data is its part of the image, so a
 * page mapped at many virtual addresses is in the file once, whatever
 * the page tables say. The segments are gathered first (from the RAM
 * ranges or the page tables), so every offset is known before the first
 * byte is written. RAM is read through debug_mem_read: our int3s are not
 * in the dump. */
#include "debug/coredump.h"

#include <elf.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "debug/debug_int.h"
#include "x86/desc.h"
#include "x86/paging.h"

/* The note layouts, as x86-64 Linux and QEMU define them (host-independent
 * copies: vmdb's emu runs on other hosts too). */
struct core_prstatus {                  /* struct elf_prstatus */
	uint8_t pad0[32];               /* siginfo, cursig, sigpend, sighold */
	uint32_t pid;
	uint8_t pad1[76];               /* ppid, pgrp, sid, four timevals */
	uint64_t regs[27];              /* struct user_regs_struct */
	uint32_t fpvalid;
	uint8_t pad2[4];
};
_Static_assert(sizeof(struct core_prstatus) == 336, "elf_prstatus is 336 bytes");
_Static_assert(offsetof(struct core_prstatus, regs) == 112, "pr_reg at 112");

enum {  /* user_regs_struct's order */
	UR_R15, UR_R14, UR_R13, UR_R12, UR_RBP, UR_RBX, UR_R11, UR_R10, UR_R9, UR_R8,
	UR_RAX, UR_RCX, UR_RDX, UR_RSI, UR_RDI, UR_ORIG_RAX, UR_RIP, UR_CS, UR_EFLAGS,
	UR_RSP, UR_SS, UR_FS_BASE, UR_GS_BASE, UR_DS, UR_ES, UR_FS, UR_GS,
};

struct qemu_segment {
	uint32_t selector, limit, flags, pad;   /* flags: the descriptor's high dword */
	uint64_t base;
};

struct qemu_cpu_state {                 /* QEMU's QEMUCPUState, version 1 */
	uint32_t version, size;
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
	struct qemu_segment cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt;
	uint64_t cr[5];
	uint64_t kernel_gs_base;
};

#define FXSAVE_SIZE 512
#define DATA_ALIGN  4096
#define MAX_SEGMENTS (1u << 20)

struct segment {
	uint64_t va, pa, size;
};

struct dump {
	struct debug *d;
	const struct debug_dump_request *rq;
	struct segment *seg;
	unsigned n, cap;
	bool overflow;
	struct vm_ram_range img[2];     /* guest RAM in the asked range: the image */
	unsigned nimg;
	int fd;
	uint64_t done, total;           /* bytes of the image */
	struct timespec last_report;
};

/* ---- the segments ---- */

static void seg_add(struct dump *w, uint64_t va, uint64_t pa, uint64_t size)
{
	struct segment *last = w->n ? &w->seg[w->n - 1] : NULL;
	if (last && last->va + last->size == va && last->pa + last->size == pa) {
		last->size += size;
		return;
	}
	if (w->n == w->cap) {
		unsigned cap = w->cap ? 2 * w->cap : 64;
		struct segment *seg = cap <= MAX_SEGMENTS ? realloc(w->seg, cap * sizeof(*seg)) : NULL;
		if (!seg) {
			w->overflow = true;
			return;
		}
		w->seg = seg;
		w->cap = cap;
	}
	w->seg[w->n++] = (struct segment){ va, pa, size };
}

/* The image: guest RAM within the asked range. */
static void image_plan(struct dump *w)
{
	struct vm_ram_range ram[2];
	unsigned n = vm_ram_ranges(w->d->vm, ram);
	uint64_t lo_limit = 0, hi_limit = UINT64_MAX;
	if (w->rq->have_range) {
		lo_limit = w->rq->begin;
		hi_limit = w->rq->begin + w->rq->length;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t lo = ram[i].first > lo_limit ? ram[i].first : lo_limit;
		uint64_t hi = ram[i].end < hi_limit ? ram[i].end : hi_limit;
		if (lo < hi) {
			w->img[w->nimg++] = (struct vm_ram_range){ lo, hi };
			w->total += hi - lo;
		}
	}
}

/* Where physical pa (in the image) is, from the image's start. */
static uint64_t image_offset(const struct dump *w, uint64_t pa)
{
	uint64_t off = 0;
	for (unsigned i = 0; i < w->nimg; i++) {
		if (pa >= w->img[i].first && pa < w->img[i].end)
			return off + (pa - w->img[i].first);
		off += w->img[i].end - w->img[i].first;
	}
	return off;     /* not reached: segments are parts of the image */
}

/* Physical [pa, pa + size) at virtual va: its parts in the image, with
 * their virtual addresses. */
static void add_ram_parts(struct dump *w, uint64_t va, uint64_t pa, uint64_t size)
{
	for (unsigned i = 0; i < w->nimg; i++) {
		uint64_t lo = w->img[i].first > pa ? w->img[i].first : pa;
		uint64_t hi = w->img[i].end < pa + size ? w->img[i].end : pa + size;
		if (lo < hi)
			seg_add(w, va + (lo - pa), lo, hi - lo);
	}
}

static int leaf_add(void *opaque, const struct x86_mapping *m)
{
	add_ram_parts(opaque, m->va, m->pa, m->size);
	return 0;
}

static int gather_segments(struct dump *w, struct debug_dump_result *res, struct err *e)
{
	struct x86_sregs s;
	int r = -ENOENT;
	image_plan(w);
	if (w->rq->paging) {
		if (debug_vcpu_sregs(w->d, w->rq->vcpu, &s) < 0)
			return err_set(e, EIO, "cannot read vCPU %u's system registers", w->rq->vcpu);
		r = x86_paging_enum(&s, vm_read_phys, w->d->vm, leaf_add, w);
		if (r == -E2BIG)
			return err_set(e, E2BIG, "vCPU %u's page tables have more than 16M entries "
				       "(tables that map themselves?); dump without -p",
				       w->rq->vcpu);
		res->physical = r == -ENOENT;
	}
	if (r == -ENOENT)                      /* p_vaddr = p_paddr, as QEMU */
		for (unsigned i = 0; i < w->nimg; i++)
			seg_add(w, w->img[i].first, w->img[i].first,
				w->img[i].end - w->img[i].first);
	if (w->overflow)
		return err_set(e, ENOMEM, "more than %u pieces of memory to describe", MAX_SEGMENTS);
	if (w->n == 0)
		return err_set(e, ENOENT, w->rq->have_range ? "no guest RAM in that range"
							   : "no guest RAM mapped");
	return 0;
}

/* ---- the notes ---- */

static struct qemu_segment qemu_seg(const struct x86_segment *g)
{
	return (struct qemu_segment){ .selector = g->selector, .limit = g->limit,
				      .flags = x86_seg_attr_bits(g), .base = g->base };
}

static void fill_prstatus(struct core_prstatus *p, unsigned vcpu, const struct debug_cpu_state *st)
{
	const struct x86_regs *r = &st->regs;
	const struct x86_sregs *s = &st->sregs;
	memset(p, 0, sizeof(*p));
	p->pid = vcpu + 1;          /* gdb's threads are LWP 1..n, as vmdb's thread ids */
	uint64_t *g = p->regs;
	g[UR_R15] = r->r15, g[UR_R14] = r->r14, g[UR_R13] = r->r13, g[UR_R12] = r->r12;
	g[UR_RBP] = r->rbp, g[UR_RBX] = r->rbx, g[UR_R11] = r->r11, g[UR_R10] = r->r10;
	g[UR_R9] = r->r9, g[UR_R8] = r->r8, g[UR_RAX] = r->rax, g[UR_RCX] = r->rcx;
	g[UR_RDX] = r->rdx, g[UR_RSI] = r->rsi, g[UR_RDI] = r->rdi, g[UR_ORIG_RAX] = r->rax;
	g[UR_RIP] = r->rip, g[UR_CS] = s->cs.selector, g[UR_EFLAGS] = r->rflags;
	g[UR_RSP] = r->rsp, g[UR_SS] = s->ss.selector, g[UR_FS_BASE] = s->fs.base;
	g[UR_GS_BASE] = s->gs.base, g[UR_DS] = s->ds.selector, g[UR_ES] = s->es.selector;
	g[UR_FS] = s->fs.selector, g[UR_GS] = s->gs.selector;
	p->fpvalid = st->have_fpu;
}

/* The FXSAVE image (user_fpregs_struct). */
static void fill_fxsave(uint8_t img[FXSAVE_SIZE], const struct x86_fpu *f)
{
	uint32_t mxcsr_mask = 0xffff;
	memset(img, 0, FXSAVE_SIZE);
	memcpy(img + 0, &f->fcw, 2);
	memcpy(img + 2, &f->fsw, 2);
	img[4] = f->ftw;
	memcpy(img + 6, &f->fop, 2);
	memcpy(img + 8, &f->fip, 8);
	memcpy(img + 16, &f->fdp, 8);
	memcpy(img + 24, &f->mxcsr, 4);
	memcpy(img + 28, &mxcsr_mask, 4);
	memcpy(img + 32, f->st, sizeof(f->st));
	memcpy(img + 160, f->xmm, sizeof(f->xmm));
}

static void fill_qemu(struct qemu_cpu_state *q, const struct debug_cpu_state *st)
{
	const struct x86_regs *r = &st->regs;
	const struct x86_sregs *s = &st->sregs;
	*q = (struct qemu_cpu_state){
		.version = 1, .size = sizeof(*q),
		.rax = r->rax, .rbx = r->rbx, .rcx = r->rcx, .rdx = r->rdx,
		.rsi = r->rsi, .rdi = r->rdi, .rsp = r->rsp, .rbp = r->rbp,
		.r8 = r->r8, .r9 = r->r9, .r10 = r->r10, .r11 = r->r11,
		.r12 = r->r12, .r13 = r->r13, .r14 = r->r14, .r15 = r->r15,
		.rip = r->rip, .rflags = r->rflags,
		.cs = qemu_seg(&s->cs), .ds = qemu_seg(&s->ds), .es = qemu_seg(&s->es),
		.fs = qemu_seg(&s->fs), .gs = qemu_seg(&s->gs), .ss = qemu_seg(&s->ss),
		.ldt = qemu_seg(&s->ldt), .tr = qemu_seg(&s->tr),
		.gdt = { .limit = s->gdt.limit, .base = s->gdt.base },
		.idt = { .limit = s->idt.limit, .base = s->idt.base },
		.cr = { s->cr0, 0, s->cr2, s->cr3, s->cr4 },
		.kernel_gs_base = st->have_kgs ? st->kernel_gs_base : 0,
	};
}

static size_t note_size(size_t desc)
{
	return sizeof(Elf64_Nhdr) + 8 + ((desc + 3) & ~(size_t)3);   /* "CORE"/"QEMU" + NUL, padded */
}

static uint8_t *note_put(uint8_t *p, const char *name, uint32_t type, const void *desc,
			 size_t len)
{
	Elf64_Nhdr h = { .n_namesz = 5, .n_descsz = (Elf64_Word)len, .n_type = type };
	memcpy(p, &h, sizeof(h));
	memset(p + sizeof(h), 0, note_size(len) - sizeof(h));
	memcpy(p + sizeof(h), name, 4);
	memcpy(p + sizeof(h) + 8, desc, len);
	return p + note_size(len);
}

static size_t notes_size(unsigned nr_vcpus)
{
	return nr_vcpus * (note_size(sizeof(struct core_prstatus)) + note_size(FXSAVE_SIZE) +
			   note_size(sizeof(struct qemu_cpu_state)));
}

/* Every vCPU's PRSTATUS and PRFPREG (gdb takes a PRFPREG for the thread
 * of the PRSTATUS before it), then every vCPU's QEMU note, as QEMU. */
static int build_notes(struct debug *d, uint8_t *buf, struct err *e)
{
	unsigned nr = debug_nr_vcpus(d);
	uint8_t *qemu = buf + nr * (note_size(sizeof(struct core_prstatus)) +
				    note_size(FXSAVE_SIZE));
	for (unsigned i = 0; i < nr; i++) {
		struct debug_cpu_state st;
		struct core_prstatus pr;
		struct qemu_cpu_state q;
		uint8_t fx[FXSAVE_SIZE];
		if (debug_read_state(d, i, &st) < 0)
			return err_set(e, EIO, "cannot read vCPU %u's registers", i);
		fill_prstatus(&pr, i, &st);
		fill_fxsave(fx, &st.fpu);
		fill_qemu(&q, &st);
		buf = note_put(buf, "CORE", NT_PRSTATUS, &pr, sizeof(pr));
		buf = note_put(buf, "CORE", NT_PRFPREG, fx, sizeof(fx));
		qemu = note_put(qemu, "QEMU", 0, &q, sizeof(q));
	}
	return 0;
}

/* ---- the file ---- */

static int write_all(struct dump *w, const void *buf, size_t len, uint64_t off, struct err *e)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(e, n < 0 ? errno : ENOSPC, "cannot write %s: %s", w->rq->path,
				       strerror(n < 0 ? errno : ENOSPC));
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* The headers and notes: everything before the first segment's data. */
static int write_head(struct dump *w, uint64_t data_off, struct err *e)
{
	unsigned nr = debug_nr_vcpus(w->d);
	uint64_t phnum = (uint64_t)w->n + 1;
	bool xnum = phnum >= PN_XNUM;
	uint64_t ph_off = sizeof(Elf64_Ehdr), sh_off = ph_off + phnum * sizeof(Elf64_Phdr);
	uint64_t note_off = sh_off + (xnum ? sizeof(Elf64_Shdr) : 0);
	size_t head = (size_t)data_off;
	uint8_t *buf = calloc(1, head);
	if (!buf)
		return err_set(e, ENOMEM, "no memory for the dump's headers (%zu bytes)", head);
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
			     EV_CURRENT, ELFOSABI_NONE },
		.e_type = ET_CORE, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
		.e_phoff = ph_off, .e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr), .e_phnum = xnum ? PN_XNUM : (Elf64_Half)phnum,
		.e_shoff = xnum ? sh_off : 0, .e_shentsize = xnum ? sizeof(Elf64_Shdr) : 0,
		.e_shnum = xnum ? 1 : 0,
	};
	memcpy(buf, &eh, sizeof(eh));
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + ph_off);
	ph[0] = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = note_off,
			      .p_filesz = notes_size(nr), .p_align = 4 };
	for (unsigned i = 0; i < w->n; i++) {
		const struct segment *g = &w->seg[i];
		ph[i + 1] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = PF_R | PF_W | PF_X,
					  .p_offset = data_off + image_offset(w, g->pa),
					  .p_vaddr = g->va, .p_paddr = g->pa,
					  .p_filesz = g->size, .p_memsz = g->size };
	}
	if (xnum) {
		Elf64_Shdr sh = { .sh_info = (Elf64_Word)phnum };
		memcpy(buf + sh_off, &sh, sizeof(sh));
	}
	int r = build_notes(w->d, buf + note_off, e);
	if (r == 0)
		r = write_all(w, buf, head, 0, e);
	free(buf);
	return r;
}

static void maybe_report(struct dump *w)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec - w->last_report.tv_sec < 1 || !w->rq->progress)
		return;
	w->last_report = now;
	w->rq->progress(w->rq->opaque, w->done, w->total);
}

static int write_ram(struct dump *w, uint64_t data_off, struct err *e)
{
	enum { CHUNK = 1 << 20 };
	uint8_t *buf = malloc(CHUNK);
	if (!buf)
		return err_set(e, ENOMEM, "no memory for the dump's buffer");
	uint64_t off = data_off;
	int r = 0;
	for (unsigned i = 0; i < w->nimg && r == 0; i++) {
		uint64_t first = w->img[i].first, size = w->img[i].end - first;
		for (uint64_t at = 0; at < size && r == 0; at += CHUNK) {
			size_t len = size - at < CHUNK ? (size_t)(size - at) : CHUNK;
			if (debug_mem_read(w->d, 0, first + at, buf, len, true) < 0)
				r = err_set(e, EFAULT, "guest-physical 0x%" PRIx64 " is not RAM",
					    first + at);
			else
				r = write_all(w, buf, len, off, e);
			off += len;
			w->done += len;
			maybe_report(w);
		}
	}
	free(buf);
	return r;
}

/* A regular file only: a FIFO without a reader would hold the server (and
 * the stopped machine) for as long as nobody reads it. */
static int create_file(struct dump *w, struct err *e)
{
	struct stat st;
	w->fd = open(w->rq->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0600);
	if (w->fd < 0)
		return err_set(e, errno, "cannot create %s: %s", w->rq->path, strerror(errno));
	if (fstat(w->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(w->fd);
		w->fd = -1;
		return err_set(e, EINVAL, "%s is not a regular file", w->rq->path);
	}
	return 0;
}

int debug_dump_core(struct debug *d, const struct debug_dump_request *rq,
		    struct debug_dump_result *res, struct err *e)
{
	struct dump w = { .d = d, .rq = rq, .fd = -1 };
	*res = (struct debug_dump_result){ .vcpus = debug_nr_vcpus(d) };
	if (rq->have_range && (rq->length == 0 || rq->begin + rq->length < rq->begin))
		return err_set(e, EINVAL, "the range must be non-empty and below 2^64");
	int r = gather_segments(&w, res, e);
	if (r < 0)
		goto out;
	uint64_t phnum = (uint64_t)w.n + 1;
	uint64_t head = sizeof(Elf64_Ehdr) + phnum * sizeof(Elf64_Phdr) +
			(phnum >= PN_XNUM ? sizeof(Elf64_Shdr) : 0) + notes_size(res->vcpus);
	uint64_t data_off = (head + DATA_ALIGN - 1) & ~(uint64_t)(DATA_ALIGN - 1);
	r = create_file(&w, e);
	if (r < 0)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &w.last_report);
	r = write_head(&w, data_off, e);
	if (r == 0)
		r = write_ram(&w, data_off, e);
	if (close(w.fd) < 0 && r == 0)
		r = err_set(e, errno, "cannot write %s: %s", rq->path, strerror(errno));
	if (r < 0)
		unlink(rq->path);
	res->ram_bytes = w.total;
	res->segments = w.n;
out:
	free(w.seg);
	return r;
}
