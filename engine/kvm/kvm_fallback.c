/* engine/kvm/kvm_fallback.c — when the host's KVM gives up on a guest
 * instruction (KVM_EXIT_INTERNAL_ERROR with suberror EMULATION: on hosts
 * like ours guest ring-0 code runs in the host's instruction emulator,
 * which lacks INT n, INT3, CMPXCHG16B, XRSTOR, POPCNT, ...), that ONE
 * instruction runs on emu's execution core (engine/emu/emu_single.h):
 * the vCPU's state is read out of KVM, emu executes the instruction
 * against the same guest RAM, what changed is written back, and KVM_RUN
 * goes on. emu executes the bytes KVM reported, those judged here, never
 * the memory read again: another vCPU may be rewriting it, and its new
 * instruction could need state that was not loaded. Exceptions the
 * instruction raises are delivered by emu through the guest's IDT.
 *
 * Port I/O and MMIO inside such an instruction leave as the same exits
 * KVM gives (machine/ completes them through its buses); the next run()
 * executes the instruction again, emu's replay log answering the accesses
 * already done. Accesses to KVM's in-kernel devices (LAPIC, IOAPIC, PIC,
 * PIT) cannot be completed from userspace: they are done as accesses to
 * nothing (writes dropped, reads all ones) and the guest runs on. A fetch
 * from what is not RAM, which KVM cannot do, reads all ones too: #UD.
 *
 * Each round trip through the host costs 0.2 to 0.5 ms here, so after a
 * failed instruction emu runs on through the next ones while they are of
 * kinds the host gave up on before (ring-0 SSE comes in runs), up to a
 * bound, unless a debugger or the guest's own TF or breakpoints are
 * about: those traps are KVM's.
 *
 * Counts per vCPU and mnemonic (vcpu->fallback_stats): written by the
 * vCPU's thread only; a reader on another thread sees whole names (an
 * entry is published by the release store of nr) and counts that may be
 * moving.
 *
 * emu's core comes as the assist the VM was created with (engine.h's
 * struct emu_single_ops); without one (the engine's unit tests link
 * engine/kvm/ alone) there is no fallback. */
#include "engine/kvm/kvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/emu/emu_single.h"
#include "machine/vm.h"
#include "x86/paging.h"

/* KVM's in-kernel devices, out of userspace's reach. */
#define KVM_FB_IOAPIC_PAGE 0xfec00000ull
#define KVM_FB_PAGE_MASK   (~0xfffull)
#define KVM_FB_PIC_MASTER  0x20          /* and +1 */
#define KVM_FB_PIC_SLAVE   0xa0          /* and +1 */
#define KVM_FB_PIC_ELCR    0x4d0         /* and +1 */
#define KVM_FB_PIT         0x40          /* to +3 */
#define KVM_FB_PIT_GATE    0x61          /* speaker / channel 2 gate, with the PIT */
#define KVM_FB_RUN_ON_MAX  64            /* instructions emu runs on after a failure */
#define KVM_FB_KNOWN_MAX   64            /* mnemonics the host gave up on, remembered */
#define KVM_FB_INSN_MAX    15
#define KVM_FB_DR7_ENABLES 0xffull       /* L0-3, G0-3 */

struct kvm_fallback {
	const struct emu_single_ops *assist;
	struct emu_single *emu;
	struct emu_single_state st;   /* scratch: the state of the current instruction */
	/* emu left for the machine in the middle of an instruction */
	bool access_pending;
	uint64_t pending_rip;
	unsigned pending_needs;       /* EMU_SINGLE_PART_* to load for it */
	char pending_name[EMU_SINGLE_NAME_MAX];
	struct vm_exit failure;       /* KVM's own exit for it, kept for a failure report */
	/* what the host gave up on so far: emu runs on through these */
	char known[KVM_FB_KNOWN_MAX][EMU_SINGLE_NAME_MAX];
	unsigned nr_known;
	/* vcpu->fallback_stats */
	uint64_t total;
	unsigned nr;
	struct {
		char name[ENGINE_FALLBACK_NAME];
		uint64_t count;
	} by[ENGINE_FALLBACK_KINDS];
};

int kvm_fallback_create(struct vcpu *vcpu, struct kvm_vcpu_state *v, struct err *e)
{
	v->fb = NULL;
	if (!v->kvm->assist)
		return 0;
	struct kvm_fallback *fb = calloc(1, sizeof(*fb));
	if (!fb)
		return err_set(e, ENOMEM, "out of memory for vCPU %u's emu fallback", vcpu->id);
	fb->assist = v->kvm->assist;
	fb->emu = fb->assist->create(vcpu, e);
	if (!fb->emu) {
		free(fb);
		return -(e && e->code ? e->code : ENOMEM);
	}
	v->fb = fb;
	return 0;
}

void kvm_fallback_destroy(struct kvm_vcpu_state *v)
{
	if (!v->fb)
		return;
	v->fb->assist->destroy(v->fb->emu);
	free(v->fb);
	v->fb = NULL;
}

/* --- counting ------------------------------------------------------------------ */

static void fb_count(struct kvm_fallback *fb, const char *name)
{
	unsigned nr = fb->nr, i;
	for (i = 0; i < nr && strcmp(fb->by[i].name, name) != 0; i++)
		;
	if (i == nr && nr == ENGINE_FALLBACK_KINDS) {
		i = nr - 1;                  /* full: the last slot counts the rest */
		snprintf(fb->by[i].name, sizeof(fb->by[i].name), "other");
	} else if (i == nr) {
		snprintf(fb->by[i].name, sizeof(fb->by[i].name), "%s", name);
		__atomic_store_n(&fb->nr, nr + 1, __ATOMIC_RELEASE);
	}
	__atomic_add_fetch(&fb->by[i].count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&fb->total, 1, __ATOMIC_RELAXED);
}

int kvm_op_fallback_stats(struct vcpu *vcpu, struct engine_fallback_stats *stats)
{
	struct kvm_fallback *fb = kvm_vcpu_of(vcpu)->fb;
	memset(stats, 0, sizeof(*stats));
	if (!fb)
		return -ENOTSUP;
	unsigned nr = __atomic_load_n(&fb->nr, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < nr && i < ENGINE_FALLBACK_KINDS; i++) {
		memcpy(stats->insn[i].name, fb->by[i].name, sizeof(stats->insn[i].name));
		stats->insn[i].name[ENGINE_FALLBACK_NAME - 1] = '\0';
		stats->insn[i].count = __atomic_load_n(&fb->by[i].count, __ATOMIC_RELAXED);
	}
	stats->nr = nr;
	stats->total = __atomic_load_n(&fb->total, __ATOMIC_RELAXED);
	return 0;
}

/* --- the vCPU's state out of KVM and back ------------------------------------------ */

/* Only the parts the instruction needs: each is an ioctl, and on a nested
 * host like ours each ioctl costs about 10 us. The general registers come
 * from the run page (KVM_CAP_SYNC_REGS) when KVM left them there. */
static int fb_load(struct vcpu *vcpu, struct emu_single_state *st, const struct x86_sregs *sregs,
		   unsigned needs)
{
	memset(st, 0, sizeof(*st));
	int r;
	if (sregs)
		st->arch.sregs = *sregs;
	unsigned first = X86_STATE_REGS | (sregs ? 0 : X86_STATE_SREGS);
	if ((r = kvm_op_get_state(vcpu, first, &st->arch)) < 0)
		return r;
	st->loaded = EMU_SINGLE_PART_REGS | EMU_SINGLE_PART_SREGS;
	/* the guest's TF traps after the instruction: #DB sets DR6.BS */
	if (st->arch.regs.rflags & RFLAGS_TF)
		needs |= EMU_SINGLE_PART_DR;
	needs &= EMU_SINGLE_PART_ALL & ~st->loaded;
	if ((r = kvm_op_get_state(vcpu, needs, &st->arch)) < 0)
		return r;
	st->loaded |= needs;
	return 0;
}

static int fb_store(struct vcpu *vcpu, const struct emu_single_state *st, unsigned changed)
{
	return kvm_op_set_state(vcpu, changed, &st->arch);
}

/* --- one instruction ---------------------------------------------------------------- */

static bool fb_in_kernel_device(const struct kvm_vcpu_state *v, const struct emu_single_state *st,
				const struct vm_exit *x)
{
	if (!v->kvm->caps.irqchip)
		return false;
	if (x->reason == VM_EXIT_MMIO) {
		uint64_t page = x->mmio.gpa & KVM_FB_PAGE_MASK;
		return page == (st->arch.sregs.apic_base & KVM_FB_PAGE_MASK) || page == KVM_FB_IOAPIC_PAGE;
	}
	uint16_t p = x->io.port;
	return (p & ~1u) == KVM_FB_PIC_MASTER || (p & ~1u) == KVM_FB_PIC_SLAVE ||
	       (p & ~1u) == KVM_FB_PIC_ELCR || (p & ~3u) == KVM_FB_PIT ||
	       (p == KVM_FB_PIT_GATE && v->kvm->caps.pit2);
}

static uint64_t fb_linear_pc(const struct x86_sregs *s, uint64_t rip)
{
	if ((s->efer & EFER_LMA) && s->cs.l)
		return rip;
	return (s->cs.base + rip) & 0xffffffffull;
}

/* The debugger single-steps: the instruction emu executed is the step.
 * Report it as KVM would and re-arm KVM's step at the new RIP (KVM's
 * trap flag was tied to the old one). */
static void fb_step_exit(struct vcpu *vcpu, struct kvm_vcpu_state *v,
			 const struct emu_single_state *st, struct vm_exit *exit)
{
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_DB;
	exit->db.pc = fb_linear_pc(&st->arch.sregs, st->arch.regs.rip);
	exit->db.dr6 = DR6_BS;
	exit->db.dr7 = v->debug.dr7;
	kvm_op_set_debug(vcpu, &v->debug);
}

/* An access to KVM's in-kernel devices, which userspace cannot reach: as
 * an access to nothing on hardware, the write is dropped and the read
 * returns all ones. */
static void fb_access_nothing(struct vm_exit *x)
{
	if (x->reason == VM_EXIT_MMIO && !x->mmio.is_write)
		memset(x->mmio.data, 0xff, x->mmio.len);
	else if (x->reason == VM_EXIT_IO && !x->io.is_write)
		memset(x->io.data, 0xff, (size_t)x->io.size * (x->io.count ? x->io.count : 1));
}

/* --- running on ------------------------------------------------------------------- */

static int fb_read_phys(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return kvm_read_phys(opaque, gpa, buf, len);
}

static void fb_remember(struct kvm_fallback *fb, const char *name)
{
	for (unsigned i = 0; i < fb->nr_known; i++)
		if (strcmp(fb->known[i], name) == 0)
			return;
	if (fb->nr_known < KVM_FB_KNOWN_MAX)
		snprintf(fb->known[fb->nr_known++], EMU_SINGLE_NAME_MAX, "%s", name);
}

static bool fb_known(const struct kvm_fallback *fb, const char *name)
{
	for (unsigned i = 0; i < fb->nr_known; i++)
		if (strcmp(fb->known[i], name) == 0)
			return true;
	return false;
}

/* The bytes at the vCPU's RIP, as its fetch would see them (up to the
 * first page that does not translate); 0 when none. */
static unsigned fb_fetch(struct kvm_vcpu_state *v, const struct x86_sregs *sregs, uint64_t rip,
			 uint8_t insn[KVM_FB_INSN_MAX])
{
	uint64_t pc = fb_linear_pc(sregs, rip), gpa;
	unsigned len = 0;
	while (len < KVM_FB_INSN_MAX) {
		unsigned chunk = 4096 - (unsigned)((pc + len) & 0xfff);
		if (chunk > KVM_FB_INSN_MAX - len)
			chunk = KVM_FB_INSN_MAX - len;
		if (x86_translate(sregs, fb_read_phys, v->kvm, pc + len, &gpa) < 0 ||
		    kvm_read_phys(v->kvm, gpa, insn + len, chunk) < 0)
			break;
		len += chunk;
	}
	return len;
}

/* Nothing emu would skip: no debugger stepping, breaking, catching or
 * watching (those traps are KVM's), no TF. */
static bool fb_may_run_on(const struct kvm_vcpu_state *v, const struct emu_single_state *st)
{
	const struct engine_debug *d = &v->debug;
	return !d->single_step && !d->intercept_bpt && !d->intercept_db && !d->intercept_mov_dr &&
	       !(d->use_hw_bp && (d->dr7 & KVM_FB_DR7_ENABLES)) && d->access.nr == 0 &&
	       v->kvm->watch.nr == 0 && !(st->arch.regs.rflags & RFLAGS_TF);
}

/* No breakpoint of the guest's own armed (emu would skip it): asked of
 * KVM only once an instruction is there to run on, as most often after a
 * failure none is and the ioctl would be for nothing. */
static bool fb_guest_dr_quiet(struct vcpu *vcpu, struct emu_single_state *st)
{
	if (!(st->loaded & EMU_SINGLE_PART_DR)) {
		if (kvm_op_get_state(vcpu, EMU_SINGLE_PART_DR, &st->arch) < 0)
			return false;
		st->loaded |= EMU_SINGLE_PART_DR;
	}
	return !(st->arch.dr.dr7 & KVM_FB_DR7_ENABLES);
}

/* One more instruction on emu, if it is of a kind the host gave up on:
 * true when done (its changes added to *changed); false, with fb->st as
 * before, when it is for KVM to run. */
static bool fb_run_one_more(struct vcpu *vcpu, struct kvm_vcpu_state *v, unsigned *changed)
{
	struct kvm_fallback *fb = v->fb;
	struct emu_single_state *st = &fb->st;
	uint8_t insn[KVM_FB_INSN_MAX];
	char name[EMU_SINGLE_NAME_MAX];
	unsigned needs, len = fb_fetch(v, &st->arch.sregs, st->arch.regs.rip, insn);
	if (len == 0 || !fb->assist->describe(&st->arch.sregs, insn, len, name, &needs) ||
	    !fb_known(fb, name) || kvm_xstate_match(&st->arch.sregs, insn, len) ||
	    !fb_guest_dr_quiet(vcpu, st))
		return false;
	needs &= EMU_SINGLE_PART_ALL & ~st->loaded;
	if (needs && kvm_op_get_state(vcpu, needs, &st->arch) < 0)
		return false;
	st->loaded |= needs;
	if ((st->loaded & EMU_SINGLE_PART_FPU) &&
	    !fb->assist->xcr0_ok(insn, len, &st->arch.sregs, st->arch.xcr0))
		return false;
	struct emu_single_state before = *st;
	struct vm_exit x;
	unsigned ch = 0;
	if (fb->assist->step(fb->emu, st, insn, len, false, &x, &ch) != EMU_SINGLE_DONE) {
		*st = before;               /* an access or a stop: KVM's to meet */
		return false;
	}
	*changed |= ch;
	fb_count(fb, name);
	return true;
}

/* After an instruction the host gave up on, the next ones of the kinds it
 * gave up on before run on emu too, up to KVM_FB_RUN_ON_MAX: each would
 * cost a round trip through the host (0.2 to 0.5 ms here) where emu takes
 * microseconds, and ring-0 SSE (BLAKE2s, ChaCha) comes in runs of them.
 * Pending interrupts wait that long at most. */
static void fb_run_on(struct vcpu *vcpu, struct kvm_vcpu_state *v, unsigned *changed)
{
	struct emu_single_state *st = &v->fb->st;
	for (unsigned n = 0; n < KVM_FB_RUN_ON_MAX && fb_may_run_on(v, st); n++)
		if (!fb_run_one_more(vcpu, v, changed))
			return;
}

/* Run (or resume) the instruction whose state is in fb->st. */
static bool fb_execute(struct vcpu *vcpu, struct kvm_vcpu_state *v, bool resume,
		       struct vm_exit *exit)
{
	struct kvm_fallback *fb = v->fb;
	unsigned changed = 0;
	uint64_t rip = fb->st.arch.regs.rip;
	const struct vm_exit *f = &fb->failure;
	enum emu_single_result r;
	for (;;) {
		r = fb->assist->step(fb->emu, &fb->st, f->failure.insn, f->failure.insn_len, resume,
				    exit, &changed);
		if (r != EMU_SINGLE_ACCESS || !fb_in_kernel_device(v, &fb->st, exit))
			break;
		fb_access_nothing(exit);
		resume = true;
	}
	switch (r) {
	case EMU_SINGLE_DONE:
		if (!v->debug.single_step)
			fb_run_on(vcpu, v, &changed);
		if (fb_store(vcpu, &fb->st, changed) < 0) {
			*exit = fb->failure;
			return false;
		}
		fb_count(fb, fb->pending_name);
		if (v->debug.single_step) {
			fb_step_exit(vcpu, v, &fb->st, exit);
			return false;
		}
		return true;
	case EMU_SINGLE_ACCESS:
		fb->access_pending = true;
		fb->pending_rip = rip;
		return false;
	case EMU_SINGLE_STOP:
	default:
		/* a triple fault stays one; emu's own failures are reported with
		 * KVM's exit, which has the instruction's bytes */
		if (exit->reason != VM_EXIT_SHUTDOWN)
			*exit = fb->failure;
		return false;
	}
}

/* An XSAVE-family instruction with more state than emu's image holds:
 * done on KVM's own image (kvm_xstate.c). */
static bool fb_xstate(struct vcpu *vcpu, struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	struct kvm_fallback *fb = v->fb;
	unsigned changed = 0, cr2 = 0;
	uint32_t pf_code = 0;
	uint8_t vector = X86_GP;
	switch (kvm_xstate_execute(vcpu, &fb->st.arch, exit->failure.insn, exit->failure.insn_len,
				   &pf_code)) {
	case KVM_XSTATE_DONE:
		changed = EMU_SINGLE_PART_REGS;
		break;
	case KVM_XSTATE_PF:
		vector = X86_PF;
		cr2 = EMU_SINGLE_PART_SREGS;              /* set by kvm_xstate_execute */
		/* fall through */
	case KVM_XSTATE_GP:
		if (fb->assist->deliver(fb->emu, &fb->st, vector, true, pf_code, exit, &changed) !=
		    EMU_SINGLE_DONE) {
			*exit = fb->failure;
			return false;
		}
		changed |= cr2;
		break;
	default:
		return false;
	}
	if (fb_store(vcpu, &fb->st, changed) < 0) {
		*exit = fb->failure;
		return false;
	}
	fb_count(fb, fb->pending_name);
	if (v->debug.single_step) {
		fb_step_exit(vcpu, v, &fb->st, exit);
		return false;
	}
	return true;
}

/* KVM cannot fetch from what is not RAM (an MMIO hole); hardware reads all
 * ones there, FF FF, which is no instruction: #UD. */
static bool fb_fetch_from_nothing(struct vcpu *vcpu, struct kvm_vcpu_state *v,
				  const struct x86_sregs *sregs, uint64_t pc)
{
	uint64_t gpa;
	uint8_t byte;
	if (x86_translate(sregs, fb_read_phys, v->kvm, pc, &gpa) < 0 ||
	    kvm_read_phys(v->kvm, gpa, &byte, 1) == 0)
		return false;
	return kvm_fallback_deliver(vcpu, X86_UD) == 0;
}

/* A ring-3 SYSCALL the host left at CPL 3 (kvm_syscall_mend.c): done now,
 * and counted as SYSCALL; a debugger's step ends at LSTAR. */
bool kvm_fallback_syscall_mended(struct vcpu *vcpu, const struct x86_sregs *sregs, uint64_t pc,
				 struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (!kvm_syscall_mend(vcpu, sregs, pc))
		return false;
	if (v->fb)
		fb_count(v->fb, "SYSCALL");
	if (v->debug.single_step) {
		struct x86_regs regs;
		if (kvm_op_get_regs(vcpu, &regs) == 0) {
			memset(exit, 0, sizeof(*exit));
			exit->reason = VM_EXIT_DB;
			exit->db.pc = regs.rip;
			exit->db.dr6 = DR6_BS;
			exit->db.dr7 = v->debug.dr7;
		}
		kvm_op_set_debug(vcpu, &v->debug);
	}
	return true;
}

bool kvm_fallback_handled(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_fallback *fb = v->fb;
	if (exit->reason != VM_EXIT_EMULATION_FAILURE ||
	    exit->failure.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return false;
	struct x86_sregs sregs;
	unsigned needs;
	if (v->fail_sregs_valid)
		kvm_sregs_from(&sregs, &v->fail_sregs);   /* read with the exit */
	else if (kvm_op_get_sregs(vcpu, &sregs) < 0)
		return false;
	if (kvm_fallback_syscall_mended(vcpu, &sregs, exit->failure.pc, exit))
		return !v->debug.single_step;
	if (!fb)
		return false;
	if (exit->failure.insn_len == 0)
		return fb_fetch_from_nothing(vcpu, v, &sregs, exit->failure.pc);
	const uint8_t *insn = exit->failure.insn;
	unsigned len = exit->failure.insn_len;
	bool emu_can = fb->assist->describe(&sregs, insn, len, fb->pending_name, &needs);
	bool xstate = kvm_xstate_match(&sregs, insn, len);
	if (!emu_can && !xstate)
		return false;             /* emu cannot either: the failure stands */
	if (emu_can && !xstate)
		fb_remember(fb, fb->pending_name);
	if (xstate)
		needs |= EMU_SINGLE_PART_FPU;
	if (fb_load(vcpu, &fb->st, &sregs, needs) < 0)
		return false;
	fb->pending_needs = needs;
	fb->failure = *exit;
	bool xcr0_ok = !(needs & EMU_SINGLE_PART_FPU) ||
		       fb->assist->xcr0_ok(insn, len, &sregs, fb->st.arch.xcr0);
	if (xstate && (!emu_can || !xcr0_ok))
		return fb_xstate(vcpu, v, exit);
	return xcr0_ok && fb_execute(vcpu, v, false, exit);
}

bool kvm_fallback_ready_to_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_fallback *fb = v->fb;
	if (!fb || !fb->access_pending)
		return true;
	fb->access_pending = false;
	if (fb_load(vcpu, &fb->st, NULL, fb->pending_needs) < 0) {
		*exit = fb->failure;
		return false;
	}
	/* the debugger moved the vCPU meanwhile: that instruction is off */
	if (fb->st.arch.regs.rip != fb->pending_rip)
		return true;
	return fb_execute(vcpu, v, true, exit);
}

/* Deliver with emu's core, RFLAGS first set to *rflags when given. */
static int fb_deliver(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
		      uint32_t error_code, const uint64_t *rflags)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	struct kvm_fallback *fb = v->fb;
	if (!fb)
		return -ENOTSUP;
	fb->access_pending = false;
	/* a #DB's delivery clears DR7.GD */
	unsigned needs = EMU_SINGLE_PART_REGS | EMU_SINGLE_PART_SREGS |
			 (vector == X86_DB ? EMU_SINGLE_PART_DR : 0);
	int r = fb_load(vcpu, &fb->st, NULL, needs);
	if (r < 0)
		return r;
	if (rflags)
		fb->st.arch.regs.rflags = *rflags;
	struct vm_exit x;
	unsigned changed = 0;
	if (fb->assist->deliver(fb->emu, &fb->st, vector, has_error_code, error_code, &x,
				&changed) != EMU_SINGLE_DONE)
		return -EFAULT;           /* would escalate: let KVM deliver it */
	r = fb_store(vcpu, &fb->st, changed | (rflags ? EMU_SINGLE_PART_REGS : 0));
	if (r < 0)
		return r;
	fb_count(fb, vector == X86_BP ? "INT3" : "exception");
	/* KVM's step is tied to the RIP it was armed at: re-arm it here */
	if (v->debug.single_step)
		kvm_op_set_debug(vcpu, &v->debug);
	return 0;
}

int kvm_fallback_deliver(struct vcpu *vcpu, uint8_t vector)
{
	return fb_deliver(vcpu, vector, false, 0, NULL);
}

int kvm_op_deliver_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
			     uint32_t error_code, uint64_t rflags)
{
	return fb_deliver(vcpu, vector, has_error_code, error_code, &rflags);
}
