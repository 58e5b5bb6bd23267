/* debug/step.c — guest-invisible single stepping: a shadow of
 * the guest's own RFLAGS.TF kept apart from the trap flag the engine uses
 * to step, and the corrections that make a stepped guest see what an
 * unstepped one sees. Engine-independent: it works from the exit
 * vocabulary, register reads and writes, and guest memory. What an
 * engine that hides, leaks or loses the guest's TF needs on top (image
 * scrubs, IRETQ, fault guards, the guest's own #DB delivered at a step's
 * end) is in step_shadow.c.
 *
 * The rule vmdb follows (Intel SDM vol. 3 17.3.1.4): the guest's TF trap
 * comes after an instruction that BEGAN with the guest's TF set and that
 * did not deliver an exception or interrupt. So before each engine step
 * the instruction about to run is decoded (x86/insn.c) and the shadow TF
 * at its start is kept; after the step exit:
 *   PUSHF           the pushed image gets the shadow TF (where the engine
 *                   hid its own TF or leaked it, the image is fixed);
 *   POPF/IRET/SYSRET the shadow takes the TF they loaded (read from the
 *                   stack / R11 before the step: the engine masks TF);
 *   SYSCALL         R11 shows the shadow; the shadow is masked by FMASK;
 *   SYSCALL/SYSRET  trap by the TF they leave, not the one they began with
 *                   (none in the kernel when FMASK clears TF, one at once
 *                   when SYSRET loads TF from R11);
 *   exception, interrupt, INT n delivered during the step (found by its
 *                   frame on the stack) the frame's RFLAGS image gets the
 *                   shadow, and the shadow is cleared, as delivery does;
 *   a step that began with the shadow set and delivered nothing ends with
 *                   the guest's #DB (DR6.BS), delivered at once by the
 *                   engine (step_shadow.c) so the step stops at the first
 *                   instruction of the guest's #DB handler.
 * MOV SS / POP SS: vmdb delivers one trap per engine step. An engine whose
 * step covers MOV SS and the next instruction together (hardware with the
 * SDM's trap shadow, emu's --cpu kvm-step) gets one trap after both, as
 * the SDM says (a frame of an INT n there names the end of that next
 * instruction); the host
 * KVM here steps MOV SS alone and, with nobody debugging, traps after MOV
 * SS as well: the guest sees what its CPU does either way, and gdb's
 * stepi shows the same boundaries the engine stops at.
 * STI: no effect on TF traps (SDM); the interrupt shadow only matters with
 * interrupts held off while stepping, which is the default anyway.
 * REP string instructions: one trap per engine step; the host KVM here
 * runs a REP in at most two steps (its emulator groups the iterations),
 * with nobody debugging just the same, so the guest sees no difference.
 * HLT (interrupts held off while stepping): stepped as a run to the next
 * instruction with a debug-register breakpoint of this vCPU alone, so the
 * step completes when an interrupt wakes the vCPU (its handler runs
 * unseen, as every handler does with `sstep irq off`); Ctrl-C still
 * stops it. Without a free DR slot HLT is single-stepped by the engine.
 * Guest INT3 under a step: the guest gets its #BP, delivered with the
 * right frame; the step ends at the #BP handler's first instruction.
 *
 * Interrupts held off without the engine's help (no KVM_GUESTDBG_BLOCKIRQ,
 * or `monitor sstep irqblock mask-if`): the IF shadow. vmdb runs every
 * step with the engine's RFLAGS.IF clear and keeps the guest's own IF in
 * guest_if, exactly as for TF: PUSHF images, delivery frames, R11 after
 * SYSCALL and gdb's registers show guest_if; CLI clears it, STI sets it,
 * POPF/IRET load it where CPL <= IOPL, SYSRET always, delivery through an
 * interrupt gate clears it (a trap gate keeps it; the gate is found by the
 * handler address, so a stop one instruction into the handler counts as
 * an interrupt gate), SYSCALL masks it by FMASK. After STI the engine's IF
 * stays set for exactly the next step: STI's one-instruction blocking
 * keeps interrupts off during it (and VMX refuses STI blocking with IF
 * clear); that step's end clears it again. A HLT run gets the guest's IF
 * (it waits for the interrupt). Interrupts that became pending stay
 * pending and are taken when the guest continues with its own IF: none
 * lost. NMIs are not held off this way (they are not on hardware either).
 * On an engine that keeps the guest's TF itself (emu) only the IF shadow
 * runs: no IRETQ emulation, no scrub, no fault guards.
 *
 * A faulting instruction: see "fault guards" in step_shadow.c for when the
 * stop is exactly at the handler's first instruction and what happens
 * otherwise. */
#include "debug/debug_int.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "debug/step_int.h"
#include "x86/desc.h"
#include "x86/paging.h"

#define INSN_MAX 15
#define IDT_BYTES_MAX 4096      /* 256 gates of 16 bytes */

/* Steps hold interrupts off by masking IF (vmdb) rather than by the
 * engine's own block: where the engine has none, or when forced. */
static bool mask_if_wanted(struct debug *d)
{
	const struct engine_caps *caps;
	if (d->sstep_irq || d->sstep_plain)
		return false;
	switch (d->irqblock) {
	case DEBUG_IRQBLOCK_MASK_IF:
		return true;
	case DEBUG_IRQBLOCK_ENGINE:
		return false;
	default:
		return !(debug_caps(d, &caps, NULL) == 0 && caps->step_block_irq);
	}
}

/* An engine that steps without touching the guest's TF (and traps the
 * guest's own TF exactly, MOV SS and REP included) needs no TF shadow. */
static bool tf_shadow_wanted(struct debug *d)
{
	const struct engine_caps *caps;
	return !d->sstep_plain && !(debug_caps(d, &caps, NULL) == 0 && caps->step_keeps_guest_tf);
}

/* The step engine runs for the TF shadow, the IF shadow, or both. */
static bool shadow_wanted(struct debug *d)
{
	return d->step_mask_if || tf_shadow_wanted(d);
}

/* ---- the guest's RFLAGS against the engine's ----
 * While the shadows are on, the engine's TF is clear (the engine sets its
 * own while it steps) and so is its IF unless if_live; the guest's values
 * are guest_tf and guest_if. */

static uint64_t shadow_mask(const struct debug_step_vcpu *st)
{
	return (st->tf_shadow ? RFLAGS_TF : 0) | (st->if_shadow ? RFLAGS_IF : 0);
}

static uint64_t with_bits(uint64_t v, uint64_t mask, uint64_t bits)
{
	return (v & ~mask) | (bits & mask);
}

static uint64_t shadow_bits(const struct debug_step_vcpu *st)
{
	return (st->guest_tf ? RFLAGS_TF : 0) | (st->guest_if ? RFLAGS_IF : 0);
}

/* What the guest would see in RFLAGS, from the engine's value. */
uint64_t step_guest_flags(const struct debug_step_vcpu *st, uint64_t engine)
{
	return with_bits(engine, shadow_mask(st), shadow_bits(st));
}

/* What the engine gets for the guest's RFLAGS. */
uint64_t step_engine_flags(const struct debug_step_vcpu *st, uint64_t guest)
{
	uint64_t clear = (st->tf_shadow ? RFLAGS_TF : 0) |
			 (st->if_shadow && !st->if_live ? RFLAGS_IF : 0);
	return guest & ~clear;
}

/* ---- guest memory through a snapshot of the system registers ---- */

static int phys_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	void *host = vm_gpa_to_host(opaque, gpa, len);
	if (!host)
		return -EFAULT;
	memcpy(buf, host, len);
	return 0;
}

static void tlb_flush(struct debug_step_vcpu *st)
{
	memset(st->tlb, 0, sizeof(st->tlb));
}

/* One page walk per page and CR3 while stepping, not one per access:
 * the code, stack and IDT pages stay the same for thousands of steps.
 * Everything that can change a walk's answer flushes: new system
 * registers (snapshot_sregs), an instruction that may change paging, the
 * guest running freely, and any debugger write to guest memory (M/X
 * packets, int3 in or out: d->mem_gen), which may rewrite page tables. */
int step_translate(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, uint64_t *gpa)
{
	uint64_t page = gva & ~(X86_PAGE_SIZE - 1);
	if (st->mem_gen != d->mem_gen) {
		tlb_flush(st);
		st->mem_gen = d->mem_gen;
	}
	for (unsigned i = 0; i < DEBUG_TLB_SIZE; i++) {
		const struct debug_tlb *t = &st->tlb[i];
		if (t->valid && t->page == page && t->cr3 == st->sregs.cr3) {
			*gpa = t->gpa_page | (gva & (X86_PAGE_SIZE - 1));
			return 0;
		}
	}
	int r = x86_translate(&st->sregs, phys_read, d->vm, gva, gpa);
	if (r < 0)
		return r;
	st->tlb[st->tlb_next] = (struct debug_tlb){ .valid = true, .cr3 = st->sregs.cr3,
						    .page = page,
						    .gpa_page = *gpa & ~(X86_PAGE_SIZE - 1) };
	st->tlb_next = (st->tlb_next + 1) % DEBUG_TLB_SIZE;
	return 0;
}

/* Between two steps of one vCPU alone the snapshot is current: the
 * instructions and deliveries that may change the system registers drop
 * it, and so do the client's writes (state.c, vcpu.c) and another vCPU
 * let go meanwhile (run_state.c). It saves the page walks of the client's
 * memory reads and of breakpoint look-ups a read of the registers (an
 * ioctl on kvm) per step. Parked only: a stepping vCPU's thread owns it. */
bool debug_step_paging_sregs(struct debug *d, unsigned vcpu, struct x86_sregs *sregs)
{
	const struct debug_step_vcpu *st = &d->vcpus[vcpu].st;
	enum debug_run run = debug_run_of(d, vcpu);
	if ((run != DEBUG_RUN_PARKED && run != DEBUG_RUN_STEP_SPIN) || !d->step_alone ||
	    !st->shadow || !st->sregs_valid)
		return false;
	*sregs = st->sregs;
	return true;
}

/* Guest-virtual [gva, gva+len) page by page; write or read. */
static int access_virt(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, void *buf,
		       size_t len, bool write)
{
	uint8_t *p = buf;
	while (len > 0) {
		uint64_t gpa;
		size_t chunk = X86_PAGE_SIZE - (gva & (X86_PAGE_SIZE - 1));
		if (chunk > len)
			chunk = len;
		if (step_translate(d, st, gva, &gpa) < 0)
			return -EFAULT;
		void *host = vm_gpa_to_host(d->vm, gpa, chunk);
		if (!host)
			return -EFAULT;
		if (write) {
			vm_ram_dirty(d->vm, host, chunk);
			memcpy(host, p, chunk);
		}
		else
			memcpy(p, host, chunk);
		p += chunk;
		gva += chunk;
		len -= chunk;
	}
	return 0;
}

int step_read_virt(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, void *buf,
		   size_t len)
{
	return access_virt(d, st, gva, buf, len, false);
}

int step_write_virt(struct debug *d, struct debug_step_vcpu *st, uint64_t gva,
		    const void *buf, size_t len)
{
	return access_virt(d, st, gva, (void *)buf, len, true);
}

static int read_u64(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, unsigned size,
		    uint64_t *v)
{
	*v = 0;
	return step_read_virt(d, st, gva, v, size);
}

/* Put the guest's own bits (`bits` under `mask`: TF, IF) into the RFLAGS
 * image of `size` bytes at gva; true if it had to change. */
static bool fix_image(struct debug *d, struct debug_step_vcpu *st, uint64_t gva,
		      unsigned size, uint64_t mask, uint64_t bits)
{
	uint64_t image;
	if (size < 2 || !mask || read_u64(d, st, gva, size, &image) < 0)
		return false;
	if (with_bits(image, mask, bits) == image)
		return false;
	image = with_bits(image, mask, bits);
	return step_write_virt(d, st, gva, &image, size) == 0;
}

/* ---- before a step (client thread, vCPU parked) ---- */

/* The step's own copy of the system registers outlives the vCPU's park
 * (debug/vcpu.c forgets its cache at every step): they change only with
 * the instructions that set sregs_valid false. */
static int snapshot_sregs(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	if (st->sregs_valid)
		return 0;
	int r = debug_vcpu_sregs(d, vcpu, &st->sregs);
	st->sregs_valid = r == 0;
	tlb_flush(st);     /* whatever made them stale may have changed paging */
	return r;
}

static void decode_at(struct debug *d, struct debug_step_vcpu *st)
{
	uint8_t bytes[INSN_MAX];
	uint64_t lin = st->sregs.cs.base + st->regs.rip;
	size_t len = sizeof(bytes);
	size_t in_page = X86_PAGE_SIZE - (lin & (X86_PAGE_SIZE - 1));
	enum x86_mode mode = x86_mode_of(&st->sregs);
	/* an instruction near the end of the mapped range: read what is there */
	while (len > 0 && step_read_virt(d, st, lin, bytes, len) < 0)
		len = len > in_page ? in_page : 0;
	struct debug_decoded *c = &st->decoded[lin % DEBUG_DECODED_SIZE];
	if (len > 0 && c->valid && c->mode == mode && c->nbytes == len &&
	    memcmp(c->bytes, bytes, len) == 0) {
		st->insn = c->insn;
		return;
	}
	if (len == 0 || x86_insn_classify(mode, bytes, len, &st->insn) < 0) {
		memset(&st->insn, 0, sizeof(st->insn));
		return;
	}
	d->step_stats.full_decodes += st->insn.full;
	*c = (struct debug_decoded){ .valid = true, .mode = (uint8_t)mode, .nbytes = (uint8_t)len,
				     .insn = st->insn };
	memcpy(c->bytes, bytes, len);
}

/* The RFLAGS image POPF / IRET / SYSRET will load. */
static void read_image(struct debug *d, struct debug_step_vcpu *st)
{
	unsigned size = st->insn.opsize;
	uint64_t sp = st->sregs.ss.base + st->regs.rsp;
	st->have_image = false;
	switch (st->insn.kind) {
	case X86_INSN_POPF:
		st->image_at = sp;
		st->have_image = read_u64(d, st, sp, size, &st->image) == 0;
		break;
	case X86_INSN_IRET:
		st->image_at = sp + 2ull * size;
		st->have_image = read_u64(d, st, st->image_at, size, &st->image) == 0;
		break;
	case X86_INSN_SYSRET:
		st->image = st->regs.r11;
		st->have_image = true;
		break;
	default:
		break;
	}
}

/* A free DR slot for a HLT run: the debugger's hardware breakpoints keep
 * theirs, and where the guest shares DR0-3 one must be free of its own
 * too (dr_share.c: a run without its slot would not stop). */
static bool hlt_slot(struct debug *d, unsigned *slot)
{
	pthread_mutex_lock(&d->lock);
	bool room = debug_dr_share_room_locked(d) > 0;
	pthread_mutex_unlock(&d->lock);
	if (!room)
		return false;
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++)
		if (!d->hw[n].used) {
			*slot = n;
			return true;
		}
	return false;
}

/* The engine's RFLAGS from the guest's view in st->regs and the shadows. */
static int put_engine_flags(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	struct x86_regs real = st->regs;
	real.rflags = step_engine_flags(st, st->regs.rflags);
	return debug_vcpu_put_regs(d, vcpu, &real, "the step's shadow TF and IF");
}

/* Enter the shadows (the engine's TF, and IF when masking, are the
 * debugger's from now on), or switch the IF shadow when the interrupt
 * mechanism changed between two steps. st->regs is the guest's view. */
static int shadows_enter(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	bool want_if = d->step_mask_if, want_tf = tf_shadow_wanted(d);
	if (st->shadow && st->if_shadow == want_if && st->tf_shadow == want_tf)
		return 0;
	uint64_t before = st->shadow ? step_engine_flags(st, st->regs.rflags) : st->regs.rflags;
	if (!st->shadow) {
		st->shadow = true;
		st->sregs_valid = false;
	}
	if (want_tf && !st->tf_shadow)
		st->guest_tf = st->regs.rflags & RFLAGS_TF;
	if (!want_tf)
		st->guest_tf = false;
	st->tf_shadow = want_tf;
	if (want_if && !st->if_shadow)
		st->guest_if = st->regs.rflags & RFLAGS_IF;
	st->if_shadow = want_if;
	st->if_live = false;
	if (step_engine_flags(st, st->regs.rflags) == before)
		return 0;
	return put_engine_flags(d, vcpu, st);
}

/* A HLT run waits for an interrupt: the engine gets the guest's IF. */
static int hlt_run_if(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	if (!st->if_shadow || !st->guest_if || st->if_live)
		return 0;
	st->if_live = true;
	return put_engine_flags(d, vcpu, st);
}

/* A vCPU halted already (attached to an idle guest: sti; hlt) is in the
 * middle of its HLT: a user step finishes that HLT, as stepping the HLT
 * itself does: it waits for the wake-up the guest asked for and ends at
 * RIP. A step-over is not one: it must execute the instruction at RIP. */
static bool halted_for_user_step(struct debug *d, unsigned vcpu)
{
	bool halted, waiting_sipi;
	if (d->vcpus[vcpu].step != DEBUG_STEP_USER || d->vcpus[vcpu].st.known_running)
		return false;
	debug_vcpu_run_state(d, vcpu, &halted, &waiting_sipi);
	return halted && !waiting_sipi;
}

/* The step becomes a run to hlt_addr (a DR slot of this vCPU), with the
 * guest's IF live; false when no slot is free (it is then stepped). */
static int hlt_run_to(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st,
		      uint64_t addr)
{
	if (d->sstep_irq || !hlt_slot(d, &st->hlt_slot))
		return 0;
	/* the vCPU runs freely until it is past the HLT: its own TF is its own */
	st->hlt_run = true;
	st->hlt_addr = addr;
	d->step_stats.hlt_runs++;
	return hlt_run_if(d, vcpu, st);
}

/* A halted vCPU stepped without the shadows (an engine that keeps the
 * guest's TF and blocks interrupts itself): the engine would hold the
 * wake-up off for ever. */
static int halted_step_plain(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st)
{
	struct x86_regs regs;
	struct x86_sregs sregs;
	if (!halted_for_user_step(d, vcpu) || debug_vcpu_regs(d, vcpu, &regs) < 0 ||
	    debug_vcpu_sregs(d, vcpu, &sregs) < 0)
		return 0;
	return hlt_run_to(d, vcpu, st, sregs.cs.base + regs.rip);
}

int debug_step_begin(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct debug_step_vcpu *st = &dv->st;

	step_tf_unscrub(d, vcpu, st);
	st->armed = false;
	st->hlt_run = false;
	d->step_mask_if = mask_if_wanted(d);
	if (!shadow_wanted(d)) {
		if (st->shadow)     /* the mode changed between two steps */
			debug_step_leave(d, vcpu);
		return halted_step_plain(d, vcpu, st);
	}
	int r = debug_read_regs(d, vcpu, &st->regs);   /* guest view: TF, IF are the guest's */
	if (r < 0 || (r = shadows_enter(d, vcpu, st)) < 0)
		return r;
	if ((r = snapshot_sregs(d, vcpu, st)) < 0)
		return r;
	/* halted: nothing at RIP runs before the wake-up, and then only the
	 * interrupt's handler, which no fault guard may stop */
	bool halted = halted_for_user_step(d, vcpu) && !d->sstep_irq;
	st->ran_on = st->known_running;
	st->known_running = false;
	if (halted)
		memset(&st->insn, 0, sizeof(st->insn));
	else
		decode_at(d, st);
	read_image(d, st);
	if (step_tf_before(d, vcpu, st, halted))
		return 1;      /* done without the engine (an IRETQ) */
	st->armed = true;
	d->step_stats.steps++;
	uint64_t pc = st->sregs.cs.base + st->regs.rip;
	if (halted)
		return hlt_run_to(d, vcpu, st, pc);
	if (st->insn.kind == X86_INSN_HLT && st->insn.len)
		return hlt_run_to(d, vcpu, st, pc + st->insn.len);
	return 0;
}

/* ---- after a step (vCPU thread) ---- */

/* Is there a 64-bit delivery frame below `top` for the stepped
 * instruction: naming the old RIP (fault) or the next one (trap,
 * interrupt, INT n), the old CS, SS and RSP? */
/* The RIP a frame of the step's delivery may name: the old one (a fault)
 * or the next (a trap, an interrupt, INT n); after MOV SS, whose step may
 * cover the next instruction too (its trap shadow), also the end of that
 * one (INT n there). */
static bool frame_rip_fits(const struct debug_step_vcpu *st, uint64_t rip)
{
	uint64_t next = st->regs.rip + st->insn.len;
	if (rip == st->regs.rip || rip == next)
		return true;
	return st->insn.kind == X86_INSN_MOV_SS && rip > next && rip - next <= INSN_MAX;
}

static bool frame_at(struct debug *d, struct debug_step_vcpu *st, uint64_t top,
		     uint64_t *rflags_at)
{
	struct x86_int_frame64 f;
	top &= ~15ull;
	if (step_read_virt(d, st, top - sizeof(f), &f, sizeof(f)) < 0)
		return false;
	if (f.rsp != st->regs.rsp || (f.cs & 0xffff) != st->sregs.cs.selector ||
	    (f.ss & 0xffff) != st->sregs.ss.selector || !frame_rip_fits(st, f.rip))
		return false;
	*rflags_at = top - sizeof(f) + offsetof(struct x86_int_frame64, rflags);
	return true;
}

/* An exception, interrupt or INT n delivered during the step leaves its
 * frame where 64-bit delivery puts it (SDM vol. 3 6.14.2-6.14.5): below
 * the 16-byte aligned old RSP when the privilege level stays and the gate
 * names no IST; else at the top of the stack the 64-bit TSS names (ISTn
 * for a gate with an IST index, RSP0-2 for a ring change to that ring).
 * The vector is not known after the fact (the handler runs in another
 * context), so every place is tried: the old stack first, then the IST
 * stacks, then the ring stacks. A candidate must name the old RIP, CS, SS
 * and RSP, which a stale frame of an earlier delivery rarely does. */
static bool find_frame(struct debug *d, struct debug_step_vcpu *st, uint64_t *rflags_at)
{
	if (x86_mode_of(&st->sregs) != X86_MODE_LONG64 && x86_mode_of(&st->sregs) != X86_MODE_COMPAT)
		return false;
	if (frame_at(d, st, st->regs.rsp, rflags_at))
		return true;
	uint64_t tss = st->sregs.tr.base, top;
	for (unsigned n = 1; n <= 7; n++)
		if (read_u64(d, st, tss + TSS64_IST(n), 8, &top) == 0 && top &&
		    frame_at(d, st, top, rflags_at))
			return true;
	for (unsigned ring = 0; ring < st->sregs.cs.dpl; ring++)
		if (read_u64(d, st, tss + TSS64_RSP(ring), 8, &top) == 0 && top &&
		    frame_at(d, st, top, rflags_at))
			return true;
	return false;
}

/* Did the step end somewhere the instruction alone cannot take it? */
static bool unexpected_end(const struct debug_step_vcpu *st, uint64_t pc)
{
	switch (st->insn.kind) {
	case X86_INSN_BRANCH:
	case X86_INSN_IRET:
	case X86_INSN_SYSCALL:
	case X86_INSN_SYSRET:
		return false;    /* anywhere is possible */
	case X86_INSN_REP_STRING:
		return pc != st->regs.rip && pc != st->regs.rip + st->insn.len;
	default:
		return st->insn.len && pc != st->regs.rip + st->insn.len;
	}
}

/* SYSCALL: R11 holds the engine's RFLAGS image; it must hold the guest's
 * (`before`: its TF and IF at the SYSCALL). FMASK masks the shadows as
 * it masks a CPU's flags. */
static void end_syscall(struct debug *d, struct vcpu *vcpu, struct debug_step_vcpu *st,
			struct x86_regs *regs, uint64_t before, bool *dirty)
{
	struct x86_state msrs;
	uint64_t r11 = with_bits(regs->r11, shadow_mask(st), before);
	if (r11 != regs->r11) {
		regs->r11 = r11;
		*dirty = true;
		d->step_stats.r11_fixed++;
	}
	if (debug_vcpu_get(d, vcpu->id, X86_STATE_MSRS, &msrs) == 0) {
		if (msrs.fmask & RFLAGS_TF)
			st->guest_tf = false;
		if (msrs.fmask & RFLAGS_IF)
			st->guest_if = false;
	}
}

/* May POPF / IRET load IF here (SDM: only when CPL <= IOPL)? SYSRET
 * always loads it from R11. */
static bool if_loadable(const struct debug_step_vcpu *st)
{
	unsigned iopl = (unsigned)((st->regs.rflags & RFLAGS_IOPL_MASK) >>
				   __builtin_ctzll(RFLAGS_IOPL_MASK));
	return st->insn.kind == X86_INSN_SYSRET || x86_mode_of(&st->sregs) == X86_MODE_REAL ||
	       st->sregs.cs.dpl <= iopl;
}

/* The engine's IF after a step that may have set it (POPF, IRET, SYSRET,
 * or any step begun with if_live): set means the guest's IF is set, and
 * the engine's is cleared for the next step; clear after an image that
 * clears it means the guest cleared its IF. */
static void end_if(struct debug_step_vcpu *st, struct x86_regs *regs, bool delivered,
		   bool *dirty)
{
	bool loads = !delivered && (st->insn.kind == X86_INSN_POPF ||
				    st->insn.kind == X86_INSN_IRET ||
				    st->insn.kind == X86_INSN_SYSRET);
	if (regs->rflags & RFLAGS_IF) {
		st->guest_if = true;
		regs->rflags &= ~RFLAGS_IF;
		*dirty = true;
	} else if (loads && st->have_image && !(st->image & RFLAGS_IF) && if_loadable(st)) {
		st->guest_if = false;
	}
	st->if_live = false;
}

/* Did the exception or interrupt that entered `handler` come through a
 * trap gate (IF kept) rather than an interrupt gate (IF cleared)? Found
 * by the handler's offset in the IDT. A stop one instruction into the
 * handler (no fault guard) finds no gate and counts as an interrupt
 * gate, the kind every test guest and Linux use. */
static bool gate_keeps_if(struct debug *d, struct debug_step_vcpu *st, uint64_t handler)
{
	enum x86_mode mode = x86_mode_of(&st->sregs);
	unsigned size = x86_gate_size(mode);
	uint8_t raw[IDT_BYTES_MAX];
	unsigned len = st->sregs.idt.limit + 1u < sizeof(raw) ? st->sregs.idt.limit + 1u
							      : sizeof(raw);
	len -= len % size;
	if (mode == X86_MODE_REAL || len == 0 || step_read_virt(d, st, st->sregs.idt.base, raw, len) < 0)
		return false;
	for (unsigned off = 0; off < len; off += size) {
		struct x86_gate g = x86_gate_decode(raw + off, mode);
		if (g.present && g.offset == handler)
			return g.type == X86_GATE_TRAP || g.type == X86_GATE_TRAP16;
	}
	return false;
}

void debug_step_end(struct debug *d, struct vcpu *vcpu, uint64_t *pc, bool at_handler)
{
	struct debug_step_vcpu *st = &d->vcpus[vcpu->id].st;
	bool tf_before = st->guest_tf, if_before = st->guest_if, live_before = st->if_live;
	uint64_t before = shadow_bits(st);
	bool delivered = false;
	uint64_t at;

	st->known_running = d->step_alone && !st->hlt_run && st->armed && st->insn.len &&
			    st->insn.kind != X86_INSN_HLT;
	st->hlt_run = false;
	if (!st->armed)
		return;
	step_tf_unscrub(d, vcpu->id, st);
	st->armed = false;
	if (st->insn.kind == X86_INSN_INT || at_handler || unexpected_end(st, *pc)) {
		bool found = find_frame(d, st, &at);
		if (found && fix_image(d, st, at, 8, shadow_mask(st), before))
			d->step_stats.frames_fixed++;
		if (found || at_handler) {
			st->guest_tf = false;
			if (st->if_shadow)
				st->guest_if = if_before && gate_keeps_if(d, st, *pc);
			delivered = true;
		}
		st->sregs_valid = false;   /* the handler may run in another context */
	}
	switch (delivered ? X86_INSN_OTHER : st->insn.kind) {
	case X86_INSN_PUSHF:
		if (*pc == st->regs.rip + st->insn.len &&
		    fix_image(d, st, st->sregs.ss.base + st->regs.rsp - st->insn.opsize,
			      st->insn.opsize, shadow_mask(st), before))
			d->step_stats.images_fixed++;
		break;
	case X86_INSN_POPF:
	case X86_INSN_IRET:
	case X86_INSN_SYSRET:
		if (st->have_image)
			st->guest_tf = st->tf_shadow && (st->image & RFLAGS_TF);
		st->sregs_valid = st->insn.kind == X86_INSN_POPF;
		break;
	case X86_INSN_STI:
		/* the engine's IF stays set for the one instruction STI holds
		 * interrupts off for (clearing it under STI's blocking is an
		 * invalid guest state on VMX); that step's end clears it */
		if (st->if_shadow)
			st->guest_if = st->if_live = true;
		break;
	case X86_INSN_CLI:
		if (st->if_shadow)
			st->guest_if = false;
		break;
	default:
		break;
	}
	if (st->insn.changes_system)
		st->sregs_valid = false;
	bool is_syscall = !delivered && st->insn.kind == X86_INSN_SYSCALL;
	bool is_sti = !delivered && st->insn.kind == X86_INSN_STI;
	bool if_check = st->if_shadow && !is_sti &&
			(live_before || (!delivered && (st->insn.kind == X86_INSN_POPF ||
							st->insn.kind == X86_INSN_IRET ||
							st->insn.kind == X86_INSN_SYSRET)));
	/* SYSCALL and SYSRET trap by the TF they leave (SDM): none after a
	 * SYSCALL whose FMASK clears TF, one at once after a SYSRET that
	 * loads TF from R11 */
	bool tf_from_result = !delivered && (st->insn.kind == X86_INSN_SYSCALL ||
					     st->insn.kind == X86_INSN_SYSRET);
	bool own_db = tf_from_result ? st->guest_tf : tf_before && !delivered;
	if (!own_db && !if_check && !is_syscall)
		return;
	struct x86_regs regs;
	bool dirty = false;
	if (debug_vcpu_regs(d, vcpu->id, &regs) < 0)
		return;
	if (is_syscall)
		end_syscall(d, vcpu, st, &regs, before, &dirty);
	if (if_check)
		end_if(st, &regs, delivered, &dirty);
	if (dirty)
		debug_vcpu_put_regs(d, vcpu->id, &regs, "the guest's RFLAGS image after a step");
	if (is_syscall)
		own_db = st->guest_tf;      /* after FMASK */
	if (!own_db)
		return;
	if (st->insn.kind == X86_INSN_SYSCALL || st->insn.kind == X86_INSN_SYSRET) {
		st->sregs_valid = false;
		tlb_flush(st);
		if (debug_vcpu_sregs(d, vcpu->id, &st->sregs) < 0)
			return;
		st->sregs_valid = true;
	}
	step_tf_guest_db(d, vcpu, st, &regs, pc);
}

/* ---- leaving step mode and gdb's view ---- */

void debug_step_leave(struct debug *d, unsigned vcpu)
{
	struct debug_vcpu *dv = &d->vcpus[vcpu];
	struct debug_step_vcpu *st = &dv->st;
	struct x86_regs regs;

	step_tf_unscrub(d, vcpu, st);
	st->armed = false;
	st->hlt_run = false;
	st->known_running = false;
	tlb_flush(st);    /* the guest runs freely: its page tables may change */
	if (d->guard.armed || d->guard.lifted)
		debug_step_guards_drop(d);
	if (!st->shadow)
		return;
	uint64_t mask = shadow_mask(st), bits = shadow_bits(st);
	st->shadow = st->tf_shadow = st->if_shadow = st->if_live = false;
	st->sregs_valid = false;
	/* the engine's TF and IF are never set where the guest's are clear
	 * (an if_live IF is the guest's own): only set bits go back */
	if (!(bits & mask))
		return;
	/* after set_debug: the engine may rewrite RFLAGS when stepping stops.
	 * No write when nothing changes: a write may end STI's blocking. */
	if (debug_vcpu_regs(d, vcpu, &regs) == 0 &&
	    with_bits(regs.rflags, mask, bits) != regs.rflags) {
		regs.rflags = with_bits(regs.rflags, mask, bits);
		debug_vcpu_put_regs(d, vcpu, &regs, "the guest's own TF and IF back");
	}
}

void debug_step_view_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs)
{
	const struct debug_step_vcpu *st = &d->vcpus[vcpu].st;
	if (st->shadow)
		regs->rflags = step_guest_flags(st, regs->rflags);
}

void debug_step_write_regs(struct debug *d, unsigned vcpu, struct x86_regs *regs)
{
	struct debug_step_vcpu *st = &d->vcpus[vcpu].st;
	if (!st->shadow)
		return;
	st->guest_tf = st->tf_shadow && (regs->rflags & RFLAGS_TF);
	if (st->if_shadow)
		st->guest_if = regs->rflags & RFLAGS_IF;
	regs->rflags = step_engine_flags(st, regs->rflags);
}

/* ---- modes and reports ---- */

int debug_sstep_set_irq(struct debug *d, bool on)
{
	d->sstep_irq = on;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].applied_valid = false;
	return 0;
}

void debug_sstep_set_shadow(struct debug *d, bool on)
{
	d->sstep_plain = !on;
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].applied_valid = false;
}

static bool engine_blocks_irq(struct debug *d)
{
	const struct engine_caps *caps;
	return debug_caps(d, &caps, NULL) == 0 && caps->step_block_irq;
}

int debug_sstep_set_irqblock(struct debug *d, enum debug_irqblock how, struct err *e)
{
	if (how == DEBUG_IRQBLOCK_ENGINE && !engine_blocks_irq(d))
		return err_set(e, ENOTSUP, "the %s engine cannot hold interrupts off while "
			       "stepping here (no BLOCKIRQ): use auto or mask-if",
			       d->vm->engine->name);
	d->irqblock = how;
	/* taken at the next step; the engine's request is re-sent then */
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		d->vcpus[i].applied_valid = false;
	return 0;
}

bool debug_sstep_irq(const struct debug *d)
{
	return d->sstep_irq;
}

/* How interrupts are held off while stepping, and why that way, in words. */
const char *debug_sstep_irq_mechanism(struct debug *d)
{
	if (d->sstep_irq)
		return "interrupts are taken during steps: a step may enter a handler";
	if (mask_if_wanted(d))
		return d->irqblock == DEBUG_IRQBLOCK_MASK_IF
		       ? "held off by vmdb masking RFLAGS.IF for each step, the guest's own IF "
			 "kept as a shadow (images, frames, R11 and gdb show it; CLI, STI, POPF, "
			 "IRET, SYSRET change it), delivered when the guest continues; forced by "
			 "monitor sstep irqblock mask-if although the engine could block them"
		       : "held off by vmdb masking RFLAGS.IF for each step, the guest's own IF "
			 "kept as a shadow (images, frames, R11 and gdb show it; CLI, STI, POPF, "
			 "IRET, SYSRET change it), delivered when the guest continues; the engine "
			 "cannot block interrupts while stepping here (no BLOCKIRQ)";
	if (engine_blocks_irq(d))
		return d->irqblock == DEBUG_IRQBLOCK_ENGINE
		       ? "held off by the engine while stepping (KVM_GUESTDBG_BLOCKIRQ or the "
			 "engine's own), delivered when the guest continues; chosen by monitor "
			 "sstep irqblock blockirq"
		       : "held off by the engine while stepping (KVM_GUESTDBG_BLOCKIRQ or the "
			 "engine's own), delivered when the guest continues; the engine has it "
			 "(monitor sstep irqblock auto)";
	return "NOT held off: plain stepping (monitor sstep shadow off) on an engine that "
	       "cannot block interrupts while stepping, so a step may enter a handler";
}

void debug_sstep_describe(struct debug *d, char *out, size_t size)
{
	const struct engine_caps *caps;
	bool exact = debug_caps(d, &caps, NULL) == 0 && caps->step_keeps_guest_tf &&
		     !mask_if_wanted(d);
	const struct debug_step_stats *s = &d->step_stats;
	char counts[320];
	debug_sstep_core_counts(d, counts, sizeof(counts));
	snprintf(out, size,
		 "interrupts while stepping: %s (monitor sstep irq %s)\n"
		 "guest's own trap flag: %s\n"
		 "HLT: %s\n"
		 "faulting instruction: %s\n"
		 "step core: %s\n"
		 "so far: %lu steps prepared, %lu own #DB delivered (%lu by engine injection), "
		 "%lu PUSHF images, %lu frames, %lu R11 fixed, %lu HLT runs, %lu IRETQ done by vmdb, "
		 "%lu stops at a fault guard (guards armed %lu times), %lu full decodes\n"
		 "%s",
		 debug_sstep_irq_mechanism(d), d->sstep_irq ? "on" : "off",
		 d->sstep_plain ? "NOT kept (monitor sstep shadow off: plain engine stepping)"
		 : exact ? "kept by the engine itself (its steps leave the guest's TF alone)"
			 : "kept by vmdb as a shadow: images, frames, R11 and gdb show it, "
			   "POPF/IRET/SYSRET change it, its #DB traps are delivered",
		 d->sstep_irq ? "single-stepped by the engine"
			      : "stepped as a run to the next instruction (completes when the "
				"vCPU wakes)",
		 d->sstep_plain || exact ? "as the engine steps it"
		 : "the step stops at the first instruction of the guest's handler (an int3 "
		   "guard on each 64-bit IDT handler while one vCPU is stepped alone; "
		   "otherwise one instruction into the handler), its frame shows the guest's TF "
		   "and IF",
		 debug_sstep_core(d), s->steps, s->own_db, s->injected_fallback, s->images_fixed, s->frames_fixed,
		 s->r11_fixed, s->hlt_runs, s->iret_emulated, s->guard_stops, s->guard_arms,
		 s->full_decodes, counts);
}

void debug_sstep_core_counts(struct debug *d, char *out, size_t size)
{
	const struct debug_step_stats *s = &d->step_stats;
	const unsigned long *e = s->engine_steps;
	snprintf(out, size,
		 "steps on the exact core: %lu; by the engine: %lu (core off %lu, not a plain step "
		 "%lu, instruction %lu, engine event %lu, watch/breakpoint/catch %lu, I/O or MMIO "
		 "%lu); state written back %lu times\n",
		 s->exact_steps, e[0] + e[1] + e[2] + e[3] + e[4] + e[5], e[DEBUG_EXACT_OFF],
		 e[DEBUG_EXACT_MODE], e[DEBUG_EXACT_INSN], e[DEBUG_EXACT_EVENT], e[DEBUG_EXACT_DEBUG],
		 e[DEBUG_EXACT_ACCESS], s->exact_flushes);
}
