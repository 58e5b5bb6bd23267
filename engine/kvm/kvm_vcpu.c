/* engine/kvm/kvm_vcpu.c — one KVM vCPU: creation (run area, CPUID from
 * kvm_cpuid.c), the KVM_RUN call, kicking a vCPU out of it, and turning
 * struct kvm_run into the engine-neutral struct vm_exit. */
#include "engine/kvm/kvm.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "machine/vm.h"
#include "x86/paging.h"

static void kvm_vcpu_free(struct kvm_vcpu_state *v)
{
	kvm_fallback_destroy(v);
	if (v->run && v->run != MAP_FAILED)
		munmap(v->run, v->run_size);
	if (v->fd >= 0)
		close(v->fd);
	free(v);
}

int kvm_op_vcpu_create(struct vm *vm, struct vcpu *vcpu, struct err *e)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	struct kvm_vcpu_state *v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(e, ENOMEM, "out of memory for vCPU %u", vcpu->id);
	v->kvm = kvm;
	v->kick_signal = kvm->kick_signal;
	v->run_size = kvm->run_size;
	atomic_init(&v->thread_known, false);
	atomic_init(&v->borrowed, false);

	int r = ioctl(kvm->vm_fd, KVM_CREATE_VCPU, (unsigned long)vcpu->id);
	if (r < 0) {
		r = err_set(e, errno, "cannot create vCPU %u (KVM_CREATE_VCPU): %s", vcpu->id,
			    strerror(errno));
		v->fd = -1;
		goto fail;
	}
	v->fd = r;
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = err_set(e, errno, "cannot map the run area of vCPU %u: %s", vcpu->id,
			    strerror(errno));
		goto fail;
	}
	r = kvm_vcpu_set_cpuid(kvm, v, vcpu->id, e);
	if (r < 0)
		goto fail;
	/* the registers come back with every exit: a debugger reads them
	 * after nearly every single-step, and this saves it an ioctl. Writes
	 * still go through KVM_SET_REGS (kvm_dirty_regs stays 0). */
	if (kvm->caps.sync_regs)
		v->run->kvm_valid_regs = KVM_SYNC_X86_REGS;
	r = kvm_fallback_create(vcpu, v, e);
	if (r < 0)
		goto fail;
	vcpu->engine = v;
	return 0;
fail:
	kvm_vcpu_free(v);
	return r;
}

void kvm_op_vcpu_destroy(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (!v)
		return;
	kvm_vcpu_free(v);
	vcpu->engine = NULL;
}

/* Async-signal-safe: one store into the shared run page and pthread_kill.
 * immediate_exit covers a kick that lands before the thread enters
 * KVM_RUN (KVM then returns -EINTR at once); the signal covers a thread
 * already inside KVM_RUN. Only run() clears immediate_exit, and only when
 * it reports VM_EXIT_KICKED, so no kick is lost. */
void kvm_op_kick(struct vcpu *vcpu)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	if (!v)
		return;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (atomic_load_explicit(&v->thread_known, memory_order_acquire))
		pthread_kill(v->thread, v->kick_signal);
	/* After the immediate_exit store (both sequentially consistent):
	 * either a borrower is seen here, or its KVM_RUN sees immediate_exit
	 * and returns at once. */
	if (atomic_load(&v->borrowed))
		pthread_kill(v->borrower, v->kick_signal);
}

/* First run on this thread: remember it for kick() and make sure the kick
 * signal is not blocked here (threads inherit their creator's mask). */
static void kvm_vcpu_adopt_thread(struct kvm_vcpu_state *v)
{
	if (v->signal_unblocked && pthread_equal(v->thread, pthread_self()))
		return;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, v->kick_signal);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	v->thread = pthread_self();
	atomic_store_explicit(&v->thread_known, true, memory_order_release);
	v->signal_unblocked = true;
}

static int kvm_paging_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	return kvm_read_phys(opaque, gpa, buf, len);
}

/* Linear address of the current instruction: what KVM reports as pc. */
static uint64_t kvm_linear_pc(const struct kvm_sregs *s, uint64_t rip)
{
	if ((s->efer & EFER_LMA) && s->cs.l)
		return rip;
	return (s->cs.base + rip) & 0xffffffffull;
}

static void kvm_sregs_to_x86(const struct kvm_sregs *k, struct x86_sregs *x);

unsigned kvm_fetch_insn(struct kvm_vcpu_state *v, const struct kvm_sregs *ks, uint64_t pc,
			uint8_t *buf, unsigned max)
{
	struct x86_sregs xs;
	kvm_sregs_to_x86(ks, &xs);
	unsigned got = 0;
	while (got < max) {
		uint64_t gva = pc + got, gpa;
		if (x86_translate(&xs, kvm_paging_read, v->kvm, gva, &gpa) < 0)
			break;
		unsigned chunk = 4096 - (unsigned)(gva & 4095);
		if (chunk > max - got)
			chunk = max - got;
		if (kvm_read_phys(v->kvm, gpa, buf + got, chunk) < 0)
			break;
		got += chunk;
	}
	return got;
}

static void kvm_sregs_to_x86(const struct kvm_sregs *k, struct x86_sregs *x)
{
	memset(x, 0, sizeof(*x));
	x->cs.base = k->cs.base;
	x->cs.l = k->cs.l;
	x->cs.db = k->cs.db;
	x->cr0 = k->cr0;
	x->cr3 = k->cr3;
	x->cr4 = k->cr4;
	x->efer = k->efer;
}

/* KVM_EXIT_INTERNAL_ERROR. On this kind of host guest ring-0 code runs in
 * the host's instruction emulator, which gives up on INT3 instead of
 * raising #BP: while the debugger intercepts INT3, report that as the
 * breakpoint it is (the debug core decides whose it is); otherwise it is
 * an emulation failure like the others and emu delivers the guest's #BP
 * (kvm_fallback.c). Without emu it is reported as a breakpoint too, and
 * machine/ reflects #BP. */
static void kvm_exit_internal(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	struct kvm_run *run = v->run;
	exit->reason = VM_EXIT_EMULATION_FAILURE;
	exit->failure.suberror = run->internal.suberror;
	exit->failure.insn_len = 0;

	struct kvm_regs regs;
	struct kvm_sregs sregs;
	/* the run page has the registers when KVM stored them with the exit */
	if (__atomic_load_n(&v->regs_synced, __ATOMIC_ACQUIRE))
		regs = run->s.regs.regs;
	else if (kvm_ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return;
	if (kvm_ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return;
	v->fail_sregs = sregs;
	v->fail_sregs_valid = true;
	exit->failure.pc = kvm_linear_pc(&sregs, regs.rip);
	if (run->internal.suberror != KVM_INTERNAL_ERROR_EMULATION)
		return;

	if ((run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
	    run->emulation_failure.insn_size > 0) {
		unsigned n = run->emulation_failure.insn_size;
		if (n > sizeof(run->emulation_failure.insn_bytes))
			n = sizeof(run->emulation_failure.insn_bytes);
		memcpy(exit->failure.insn, run->emulation_failure.insn_bytes, n);
		exit->failure.insn_len = (uint8_t)n;
	} else {
		exit->failure.insn_len = (uint8_t)kvm_fetch_insn(v, &sregs, exit->failure.pc,
								 exit->failure.insn, 15);
	}
	if (exit->failure.insn_len >= 1 && exit->failure.insn[0] == 0xcc &&
	    (v->debug.intercept_bpt || !v->fb)) {
		uint64_t pc = exit->failure.pc;
		exit->reason = VM_EXIT_BPT;
		exit->bpt.pc = pc;
	}
}

/* A port access to catch: remember where it came from; it completes at
 * the next run(). Not while stepping: the step stops right after it. */
static void kvm_access_note(struct kvm_vcpu_state *v, const struct vm_exit *exit)
{
	struct kvm_regs regs;
	if (!v->debug.access.nr || v->debug.single_step ||
	    !engine_access_match(&v->debug.access, ENGINE_ACCESS_IO, exit->io.port,
				 exit->io.is_write) ||
	    ioctl(v->fd, KVM_GET_REGS, &regs) < 0)
		return;
	struct vm_exit *x = &v->access_exit;
	memset(x, 0, sizeof(*x));
	x->reason = VM_EXIT_ACCESS;
	x->access.kind = ENGINE_ACCESS_IO;
	x->access.is_write = exit->io.is_write;
	x->access.size = exit->io.size;
	x->access.index = exit->io.port;
	x->access.pc = regs.rip;    /* made linear once the completion shows where it was */
	if (exit->io.is_write)
		memcpy(&x->access.value, exit->io.data, exit->io.size);
	v->access_in_data = exit->io.is_write ? NULL : exit->io.data;
	v->access_pending = true;
}

/* The length of the IN/OUT/INS/OUTS of this operand size that b starts
 * with, prefixes included; 0 when it is none. */
static unsigned port_insn_len(const uint8_t *b, unsigned n, unsigned size)
{
	unsigned i = 0;
	bool opsize = false;
	for (; i < n && i < 4; i++) {
		if (b[i] == 0x66)
			opsize = true;
		else if (!(b[i] == 0x67 || b[i] == 0xf2 || b[i] == 0xf3 || (b[i] & 0xf0) == 0x40 ||
			   b[i] == 0x26 || b[i] == 0x2e || b[i] == 0x36 || b[i] == 0x3e ||
			   b[i] == 0x64 || b[i] == 0x65))
			break;
	}
	if (i >= n)
		return 0;
	uint8_t op = b[i];
	bool imm = op >= 0xe4 && op <= 0xe7;
	if (!imm && !(op >= 0xec && op <= 0xef) && !(op >= 0x6c && op <= 0x6f))
		return 0;
	unsigned op_size = !(op & 1) ? 1 : opsize ? 2 : 4;
	return op_size == size ? i + 1 + imm : 0;
}

/* KVM leaves RIP at the instruction for some port exits and past it for
 * others (a fast OUT): when completing did not move RIP, the instruction
 * is the one that ends at RIP. */
static uint64_t access_insn_start(struct kvm_vcpu_state *v, uint64_t rip_at_exit,
				  const struct kvm_sregs *sregs, unsigned size)
{
	struct kvm_regs regs;
	uint8_t b[8];
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || regs.rip != rip_at_exit || rip_at_exit < 8 ||
	    kvm_fetch_insn(v, sregs, sregs->cs.base + rip_at_exit - 8, b, 8) != 8)
		return sregs->cs.base + rip_at_exit;
	for (unsigned k = 1; k <= 6; k++)
		if (port_insn_len(b + 8 - k, k, size) == k)
			return sregs->cs.base + rip_at_exit - k;
	return sregs->cs.base + rip_at_exit;
}

/* Finish the caught access: KVM completes a pending port read or write
 * at the start of KVM_RUN, before it looks at immediate_exit. */
static int kvm_access_complete(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	v->access_pending = false;
	if (v->access_in_data)
		memcpy(&v->access_exit.access.value, v->access_in_data, v->access_exit.access.size);
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int r = ioctl(v->fd, KVM_RUN, 0);
	int err = errno;
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&v->regs_synced, false, __ATOMIC_RELEASE);
	if (r < 0 && err != EINTR && err != EAGAIN)
		return -err;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) == 0)
		v->access_exit.access.pc = access_insn_start(v, v->access_exit.access.pc, &sregs,
							     v->access_exit.access.size);
	*exit = v->access_exit;
	return 0;
}

static void kvm_exit_io(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	struct kvm_run *run = v->run;
	uint64_t bytes = (uint64_t)run->io.size * run->io.count;
	if (run->io.data_offset > v->run_size || bytes > v->run_size - run->io.data_offset) {
		exit->reason = VM_EXIT_UNKNOWN;
		exit->unknown.code = KVM_EXIT_IO;
		return;
	}
	exit->reason = VM_EXIT_IO;
	exit->io.port = run->io.port;
	exit->io.size = run->io.size;
	exit->io.is_write = run->io.direction == KVM_EXIT_IO_OUT;
	exit->io.count = run->io.count;
	exit->io.data = (uint8_t *)run + run->io.data_offset;
	kvm_access_note(v, exit);
}

static void kvm_exit_debug(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	const struct kvm_debug_exit_arch *d = &v->run->debug.arch;
	if (d->exception == X86_BP) {
		exit->reason = VM_EXIT_BPT;
		exit->bpt.pc = d->pc;
		return;
	}
	exit->reason = VM_EXIT_DB;
	exit->db.pc = d->pc;
	exit->db.dr6 = d->dr6;
	exit->db.dr7 = d->dr7;
}

static void kvm_exit_system_event(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	switch (v->run->system_event.type) {
	case KVM_SYSTEM_EVENT_RESET:
		exit->reason = VM_EXIT_RESET;
		break;
	case KVM_SYSTEM_EVENT_SHUTDOWN:
		exit->reason = VM_EXIT_SHUTDOWN;
		break;
	default:
		exit->reason = VM_EXIT_UNKNOWN;
		exit->unknown.code = KVM_EXIT_SYSTEM_EVENT;
		break;
	}
}

/* After a triple fault KVM's event state still names the exception it was
 * delivering when the escalation began (measured: #UD, #PF and #DE all come
 * back as their own vector), though neither injected nor pending is set. */
static int16_t kvm_shutdown_vector(struct kvm_vcpu_state *v)
{
	struct kvm_vcpu_events ev;
	if (!v->kvm->caps.vcpu_events || ioctl(v->fd, KVM_GET_VCPU_EVENTS, &ev) < 0)
		return -1;
	return ev.exception.nr < 32 ? ev.exception.nr : -1;
}

void kvm_exit_translate(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	struct kvm_run *run = v->run;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		kvm_exit_io(v, exit);
		break;
	case KVM_EXIT_MMIO:
		exit->reason = VM_EXIT_MMIO;
		exit->mmio.gpa = run->mmio.phys_addr;
		exit->mmio.data = run->mmio.data;
		exit->mmio.len = run->mmio.len > 8 ? 8 : run->mmio.len;
		exit->mmio.is_write = run->mmio.is_write;
		break;
	case KVM_EXIT_HLT:
		exit->reason = VM_EXIT_HLT;
		break;
	case KVM_EXIT_SHUTDOWN:
		exit->reason = VM_EXIT_SHUTDOWN;
		exit->shutdown.vector = kvm_shutdown_vector(v);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		kvm_exit_system_event(v, exit);
		break;
	case KVM_EXIT_DEBUG:
		kvm_exit_debug(v, exit);
		break;
	case KVM_EXIT_INTR:
		exit->reason = VM_EXIT_KICKED;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		exit->reason = VM_EXIT_ENTRY_FAILURE;
		exit->entry_failure.hw_reason = run->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		kvm_exit_internal(v, exit);
		break;
	case KVM_EXIT_X86_RDMSR:
	case KVM_EXIT_X86_WRMSR:
		kvm_msr_exit(v, exit);       /* a caught MSR (kvm_msr_catch.c) */
		break;
	default:
		exit->reason = VM_EXIT_UNKNOWN;
		exit->unknown.code = run->exit_reason;
		break;
	}
}

int kvm_run_once(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	memset(exit, 0, sizeof(*exit));
	v->fail_sregs_valid = false;
	__atomic_store_n(&v->regs_synced, false, __ATOMIC_RELEASE);
	int r = ioctl(v->fd, KVM_RUN, 0);
	/* only a completed run is sure to have stored them (-EINTR may not) */
	if (r == 0 && (v->run->kvm_valid_regs & KVM_SYNC_X86_REGS))
		__atomic_store_n(&v->regs_synced, true, __ATOMIC_RELEASE);
	/* EAGAIN: an AP woken from wait-for-SIPI (KVM_MP_STATE change); just
	 * run again, like a kick. */
	if (r < 0 && errno == EAGAIN) {
		exit->reason = VM_EXIT_KICKED;
		return 0;
	}
	if (r < 0 && errno != EINTR)
		return -errno;
	if (r < 0 || v->run->exit_reason == KVM_EXIT_INTR) {
		/* A kick (or a stray signal): consume the request. Any kick that
		 * arrives after this store is seen by the next KVM_RUN. */
		__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
		exit->reason = VM_EXIT_KICKED;
		return 0;
	}
	kvm_exit_translate(v, exit);
	return 0;
}

/* The step whose instruction exited for port I/O or MMIO ends when KVM
 * completes the access, at the start of the next KVM_RUN: there a host
 * raises the single-step trap itself (KVM_EXIT_DEBUG), while some nested
 * hosts (this one) run one more instruction before trapping. So complete
 * the access alone (immediate_exit) and, without a trap from the host,
 * end the step at the instruction after it. */
static int kvm_step_io_complete(struct kvm_vcpu_state *v, struct vm_exit *exit)
{
	v->step_io_pending = false;
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	int r = kvm_run_once(v, exit);      /* clears immediate_exit when interrupted */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (r < 0 || exit->reason != VM_EXIT_KICKED)
		return r;                   /* the host's own trap, or more of the access */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_DB;
	exit->db.dr6 = DR6_INIT | DR6_BS;   /* as KVM reports a step */
	exit->db.pc = sregs.cs.base + regs.rip;
	return 0;
}

/* KVM_RUN until an exit for the caller: instructions the host cannot
 * emulate are completed by emu in between (kvm_fallback.c). A kick during
 * that is seen by the next KVM_RUN (immediate_exit). */
static int kvm_run_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	memset(exit, 0, sizeof(*exit));
	if (v->access_pending)
		return kvm_access_complete(v, exit);
	if (v->step_io_pending && v->debug.single_step) {
		int r = kvm_step_io_complete(v, exit);
		if (r < 0 || (exit->reason != VM_EXIT_IO && exit->reason != VM_EXIT_MMIO))
			return r;
		v->step_io_pending = true;  /* a string access goes on exiting */
		return 0;
	}
	v->step_io_pending = false;
	if (!kvm_fallback_ready_to_run(vcpu, exit))
		return 0;
	for (;;) {
		int r = kvm_run_once(v, exit);
		if (r < 0)
			return r;
		if (exit->reason == VM_EXIT_DB && (exit->db.dr6 & DR6_BD))
			kvm_mov_dr_exit(vcpu, exit);      /* a MOV DR under our DR7.GD */
		kvm_syscall_mend_watch(vcpu);
		if (kvm_syscall_mend_exit(vcpu, exit))
			continue;
		if (exit->reason == VM_EXIT_MMIO && v->kvm->watch.nr) {
			int hit = kvm_watch_mmio(v);     /* a page trap's access? */
			if (hit > 0)
				return kvm_watch_report(v, exit, (uint32_t)hit);
			if (hit == 0)
				continue;
		}
		if (!kvm_fallback_handled(vcpu, exit)) {
			v->step_io_pending = v->debug.single_step &&
					     (exit->reason == VM_EXIT_IO || exit->reason == VM_EXIT_MMIO);
			return 0;
		}
	}
}

/* KVM_RUN and its page-trap accesses inside the map gate (kvm_watch.c). */
static int kvm_run_gated(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	kvm_watch_gate_enter(v);
	int r = kvm_run_exit(vcpu, exit);
	kvm_watch_gate_leave(v);
	return r;
}

int kvm_op_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	kvm_vcpu_adopt_thread(v);
	return kvm_run_gated(vcpu, exit);
}

/* KVM lets any thread issue KVM_RUN (it serialises a vCPU's ioctls
 * itself; measured here, the first KVM_RUN after a change of thread costs
 * about 10 us more, no RCU grace period). The vCPU's
 * own thread stays the one kick() always signals; the borrower gets the
 * signal too while it runs (nothing in vmdb blocks the kick signal, whose
 * handler is process-wide). */
int kvm_op_run_borrowed(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct kvm_vcpu_state *v = kvm_vcpu_of(vcpu);
	v->borrower = pthread_self();
	atomic_store(&v->borrowed, true);
	int r = kvm_run_gated(vcpu, exit);
	atomic_store(&v->borrowed, false);
	return r;
}
