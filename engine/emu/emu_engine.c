/* engine/emu/emu_engine.c — the software engine's engine_ops: VM and vCPU
 * life cycle, register access, probe, and the scheduling of vCPUs.
 *
 * Scheduling (what makes the engine deterministic). machine/vm.c runs one
 * host thread per vCPU, each calling run(). Only the holder of the run
 * token (emu_vm.turn) executes guest instructions; the others wait inside
 * run() on a condition variable. The holder keeps the token for a quantum
 * of EMU_QUANTUM retired instructions, or until it halts (HLT, waiting for
 * SIPI), and then passes it to the next runnable vCPU in index order
 * (round robin; "runnable" = not waiting for SIPI, and not halted unless an
 * interrupt or NMI is deliverable). The holder also keeps the token while
 * its thread handles an exit (port I/O, MMIO) in machine/, so no other vCPU
 * runs in between. Guest time is the sum of retired instructions (1 ns
 * each, emu_time.c) and timers fire at instruction-count deadlines (a slice
 * ends exactly at the next deadline); when every vCPU is idle the clock
 * jumps to the next deadline, but never ahead of the host clock: an idle
 * guest waits (in host time) until the jump is due, so a guest that
 * mostly sleeps (demo.elf) sees its timers at their real rate, while a busy
 * one runs as fast as it can. Only the host moment of a jump depends on
 * the host clock, never what the guest executes. Interrupt delivery happens at instruction
 * boundaries of the receiving vCPU. Hence the same guest with the same
 * inputs executes the same instruction trace, whatever the host does.
 *
 * What is not deterministic: inputs from outside (serial input, the
 * debugger). A vCPU that returned VM_EXIT_KICKED (a debugger stop, the VM
 * stopping) is "parked" and skipped by the round robin until its thread
 * calls run() again, so a debugger can step one vCPU while the others stay
 * stopped; after such a stop the interleaving continues from there.
 * kick() sets a flag the executing vCPU checks before every instruction
 * (between blocks of at most 32 on the fast path, and at each pass of a
 * tight loop inside one, emu_fast.c) and wakes waiting threads, so run()
 * returns VM_EXIT_KICKED promptly.
 *
 * Lending (run_borrowed): nothing in a run depends on the thread it runs
 * on (the token, the kick flag and the parked state are per vCPU, the
 * core's jmp_buf is set afresh by every run), so a borrowed run is run()
 * itself on the debugger's thread: same token, same quantum, same trace,
 * and kick() ends it the same way. An exit the debugger's thread cannot
 * handle is handed by the debug core to the vCPU's own thread before its
 * next run(): the token stays where that exit left it, as it would had
 * the vCPU's own thread met the exit. */
#include "engine/emu/emu_core.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"

#define EMU_QUANTUM 50000ull

static struct emu_vm *evm_of(struct vm *vm)
{
	return (struct emu_vm *)vm->engine_vm;
}

static struct emu_cpu *cpu_of(struct vcpu *vcpu)
{
	return (struct emu_cpu *)vcpu->engine;
}

/* What this file keeps per vCPU beyond the core: cpu->core points into
 * one of these. */
struct emu_engine_cpu {
	struct emu_core core;
};

static struct emu_engine_cpu *ecpu_of(struct emu_cpu *cpu)
{
	return (struct emu_engine_cpu *)((char *)cpu->core - offsetof(struct emu_engine_cpu, core));
}

/* --- what the platform asks of the VM (emu_platform.h) ------------------------- */

struct emu_platform *emu_vm_platform(struct emu_vm *evm)
{
	return evm->plat;
}

void emu_vm_set_platform(struct emu_vm *evm, struct emu_platform *plat)
{
	evm->plat = plat;
}

unsigned emu_vm_nr_cpus(struct emu_vm *evm)
{
	return evm->nr_cpus;
}

struct emu_cpu *emu_vm_cpu(struct emu_vm *evm, unsigned index)
{
	return index < evm->nr_cpus ? evm->cpus[index] : NULL;
}

void emu_vm_wake(struct emu_vm *evm, struct emu_cpu *cpu)
{
	(void)cpu;
	pthread_mutex_lock(&evm->lock);
	evm->wake_seq++;
	pthread_cond_broadcast(&evm->cond);
	pthread_mutex_unlock(&evm->lock);
}

/* --- the run token -------------------------------------------------------------- */

static bool kick_pending(struct emu_core *c)
{
	return __atomic_load_n(&c->kick, __ATOMIC_ACQUIRE);
}

/* Stopped by the debugger (or the VM stopping): not coming back soon.
 * Caller holds evm->lock. */
static bool cpu_absent(struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	return c->parked || (!c->in_run && kick_pending(c));
}

static bool cpu_runnable(struct emu_cpu *cpu)
{
	if (cpu->wait_sipi || emu_core_of(cpu)->shutdown)
		return false;
	return !cpu->halted || emu_cpu_wakeable(cpu);
}

/* The next vCPU after `from` (itself last) that may run; -1 if none.
 * *absent_runnable: one was runnable but parked. Under evm->lock. */
static int sched_pick(struct emu_vm *evm, unsigned from, bool *absent_runnable)
{
	unsigned n = evm->nr_cpus;
	*absent_runnable = false;
	for (unsigned i = 1; i <= n; i++) {
		struct emu_cpu *cpu = evm->cpus[(from + i) % n];
		if (!cpu || !cpu_runnable(cpu))
			continue;
		if (cpu_absent(cpu)) {
			*absent_runnable = true;
			continue;
		}
		return (int)((from + i) % n);
	}
	return -1;
}

static uint64_t host_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every vCPU is idle until guest time `deadline`: wait until the host clock
 * says it is due (relative to the last jump). False when a wake-up or kick
 * came first: then nothing jumps. */
static bool pace_idle(struct emu_vm *evm, uint64_t deadline, uint64_t wake_seq)
{
	uint64_t now = host_now_ns();
	uint64_t due = evm->pace_host_ns + (deadline - evm->pace_guest_ns);
	if (deadline < evm->pace_guest_ns || now >= due || evm->pace_host_ns == 0) {
		evm->pace_host_ns = now;        /* behind the host clock: forget the lag */
		evm->pace_guest_ns = deadline;
		return true;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t abs = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec + (due - now);
	ts.tv_sec = (time_t)(abs / 1000000000ull);
	ts.tv_nsec = (long)(abs % 1000000000ull);
	pthread_mutex_lock(&evm->lock);
	uint64_t kicks = evm->kick_seq;
	int r = 0;
	while (r == 0 && evm->wake_seq == wake_seq && evm->kick_seq == kicks &&
	       !vm_stopping(evm->vm))
		r = pthread_cond_timedwait(&evm->cond, &evm->lock, &ts);
	bool timed_out = r != 0;
	pthread_mutex_unlock(&evm->lock);
	if (!timed_out)
		return false;
	evm->pace_host_ns = due;
	evm->pace_guest_ns = deadline;
	return true;
}

/* Hand the token on; called by its holder without evm->lock. When every
 * vCPU is idle, guest time jumps to the next timer deadline; with no
 * deadline either the token is left free until emu_vm_wake(). Returns
 * evm->wake_seq as it was when the token was left free. */
/* true when something woke the machine since `seq`; otherwise the turn is
 * given up so no vCPU holds the token while all sleep. */
static bool release_turn_unless_woken(struct emu_vm *evm, uint64_t seq)
{
	pthread_mutex_lock(&evm->lock);
	bool woken = evm->wake_seq != seq;
	if (!woken) {
		evm->turn = EMU_TURN_NONE;
		pthread_cond_broadcast(&evm->cond);
	}
	pthread_mutex_unlock(&evm->lock);
	return woken;
}

static uint64_t sched_pass(struct emu_vm *evm, unsigned from)
{
	for (;;) {
		bool absent;
		pthread_mutex_lock(&evm->lock);
		uint64_t seq = evm->wake_seq;
		int next = sched_pick(evm, from, &absent);
		if (next >= 0) {
			struct emu_cpu *n = evm->cpus[next];
			emu_core_of(n)->quantum_end = n->retired + evm->quantum;
		}
		if (next >= 0 || absent) {
			evm->turn = next >= 0 ? (unsigned)next : EMU_TURN_NONE;
			pthread_cond_broadcast(&evm->cond);
			pthread_mutex_unlock(&evm->lock);
			return seq;
		}
		pthread_mutex_unlock(&evm->lock);
		uint64_t deadline = emu_next_deadline_ns(evm);
		/* no timer to wait for, or woken/kicked while pacing: look again
		 * when woken, else free the token (any waiter picks again) */
		if (deadline == EMU_NO_DEADLINE || !pace_idle(evm, deadline, seq)) {
			if (!release_turn_unless_woken(evm, seq))
				return seq;
			continue;
		}
		uint64_t now = emu_guest_ns(evm);
		emu_platform_advance(evm, deadline > now ? deadline : now);
	}
}

/* One turn: slices that end at the quantum or the next timer deadline. */
static enum emu_stop run_turn(struct emu_cpu *cpu)
{
	struct emu_vm *evm = cpu->evm;
	/* the turn's quantum survives exits: a vCPU that does port I/O all
	 * the time must not keep the token for ever */
	uint64_t quantum_end = emu_core_of(cpu)->quantum_end;
	for (;;) {
		uint64_t now = emu_guest_ns(evm);
		uint64_t deadline = emu_next_deadline_ns(evm);
		if (deadline <= now) {
			emu_platform_advance(evm, now);
			deadline = emu_next_deadline_ns(evm);
		}
		uint64_t budget = quantum_end > cpu->retired ? quantum_end - cpu->retired : 1;
		if (deadline != EMU_NO_DEADLINE && deadline > now && deadline - now < budget)
			budget = deadline - now;
		enum emu_stop stop = emu_exec_run(cpu, budget);
		if (stop != EMU_STOP_QUANTUM)
			return stop;
		if (cpu->retired >= quantum_end)
			return EMU_STOP_QUANTUM;
	}
}

static int run_kicked(struct emu_vm *evm, struct emu_cpu *cpu, struct vm_exit *exit)
{
	struct emu_core *c = emu_core_of(cpu);
	/* under evm->lock */
	__atomic_store_n(&c->kick, false, __ATOMIC_RELEASE);
	c->in_run = false;
	c->parked = true;
	/* a debugger stop ends the turn: after it the others run first, as
	 * they would on hardware where every vCPU resumes at once */
	if (evm->turn == cpu->id)
		c->yield_turn = true;
	pthread_cond_broadcast(&evm->cond);
	pthread_mutex_unlock(&evm->lock);
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_KICKED;
	return 0;
}

#define EMU_YIELD_GRACE_NS 2000000ull

/* Before a vCPU that stopped for the debugger hands the token on: give the
 * others that the debugger is resuming with it (their threads are still on
 * their way back into run()) a moment, so the token goes to them and not
 * back to this one. Bounded: the debugger may be stepping this one alone. */
static void yield_grace(struct emu_vm *evm, struct emu_cpu *cpu)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t abs = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec +
		       EMU_YIELD_GRACE_NS;
	ts.tv_sec = (time_t)(abs / 1000000000ull);
	ts.tv_nsec = (long)(abs % 1000000000ull);
	pthread_mutex_lock(&evm->lock);
	for (;;) {
		bool absent;
		int next = sched_pick(evm, cpu->id, &absent);
		if ((next >= 0 && (unsigned)next != cpu->id) || !absent ||
		    kick_pending(emu_core_of(cpu)) || vm_stopping(evm->vm))
			break;
		if (pthread_cond_timedwait(&evm->cond, &evm->lock, &ts) != 0)
			break;
	}
	pthread_mutex_unlock(&evm->lock);
}

/* Wait until this vCPU holds the token (0) or is kicked (1). Takes over a
 * free token, or one whose holder is parked, to pass it on. Returns with
 * evm->lock held. */
static int wait_token(struct emu_vm *evm, struct emu_cpu *cpu)
{
	struct emu_core *c = emu_core_of(cpu);
	for (;;) {
		if (kick_pending(c) || vm_stopping(evm->vm))
			return 1;
		if (evm->turn == cpu->id)
			return 0;
		bool free = evm->turn == EMU_TURN_NONE ||
			    (evm->turn < evm->nr_cpus && evm->cpus[evm->turn] &&
			     cpu_absent(evm->cpus[evm->turn]));
		if (free) {
			unsigned from = evm->turn == EMU_TURN_NONE ? cpu->id : evm->turn;
			evm->turn = cpu->id;
			pthread_mutex_unlock(&evm->lock);
			uint64_t seq = sched_pass(evm, from);
			pthread_mutex_lock(&evm->lock);
			/* a wake-up between sched_pass and here must not be lost */
			if (evm->turn == cpu->id ||
			    (evm->turn == EMU_TURN_NONE && evm->wake_seq != seq))
				continue;
		}
		pthread_cond_wait(&evm->cond, &evm->lock);
	}
}

/* run() on whichever thread runs the vCPU (its own, or a borrower). */
static int run_vcpu(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	struct emu_vm *evm = cpu->evm;
	struct emu_core *c = emu_core_of(cpu);

	bool yielded = false, back = true;
	pthread_mutex_lock(&evm->lock);
	c->in_run = true;
	c->parked = false;
	pthread_cond_broadcast(&evm->cond);     /* for yield_grace() */
	for (;;) {
		if (wait_token(evm, cpu))
			return run_kicked(evm, cpu, exit);
		if (back) {
			/* back from the machine or the debugger, which may have
			 * written guest memory; no vCPU runs while we hold the token */
			emu_blocks_outside(evm);
			back = false;
		}
		pthread_mutex_unlock(&evm->lock);
		if (c->yield_turn && !yielded) {
			/* once per run(): while the others are still parked (the
			 * debugger steps this vCPU alone) the token comes straight
			 * back, and the yield stays due for the next run() */
			yielded = true;
			yield_grace(evm, cpu);
			sched_pass(evm, cpu->id);
			pthread_mutex_lock(&evm->lock);
			if (evm->turn != cpu->id)
				c->yield_turn = false;
			continue;
		}

		enum emu_stop stop = cpu_runnable(cpu) ? run_turn(cpu) : EMU_STOP_HLT;
		if (stop == EMU_STOP_EXIT) {
			*exit = cpu->exit;
			/* a breakpoint or watchpoint stop ends the turn (not a step:
			 * stepping one vCPU must stay cheap) */
			bool step = exit->reason == VM_EXIT_DB && (exit->db.dr6 & DR6_BS);
			if ((exit->reason == VM_EXIT_DB && !step) || exit->reason == VM_EXIT_BPT)
				c->yield_turn = true;
			pthread_mutex_lock(&evm->lock);
			c->in_run = false;      /* keeps the token: back after the machine */
			pthread_mutex_unlock(&evm->lock);
			return 0;
		}
		if (stop != EMU_STOP_KICKED) {
			c->yield_turn = false;
			sched_pass(evm, cpu->id);
		}
		pthread_mutex_lock(&evm->lock);
	}
}

static int emu_op_run(struct vcpu *vcpu, struct vm_exit *exit)
{
	return run_vcpu(vcpu, exit);
}

/* The vCPU's own thread is parked outside run() (debug/park.c) and every
 * other vCPU is parked too: this thread runs it exactly as that thread
 * would. */
static int emu_op_run_borrowed(struct vcpu *vcpu, struct vm_exit *exit)
{
	return run_vcpu(vcpu, exit);
}

static void emu_op_kick(struct vcpu *vcpu)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (!cpu)
		return;
	struct emu_vm *evm = cpu->evm;
	__atomic_store_n(&emu_core_of(cpu)->kick, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&evm->lock);
	evm->kick_seq++;
	pthread_cond_broadcast(&evm->cond);
	pthread_mutex_unlock(&evm->lock);
}

/* --- VM and vCPUs ------------------------------------------------------------------ */

static void emu_vm_free(struct emu_vm *evm)
{
	if (evm->plat)
		emu_platform_destroy(evm);
	emu_dcache_destroy(evm);
	emu_blocks_destroy(evm);
	emu_vm_fini(evm);
	free(evm);
}

/* VMDB_EMU_NO_BLOCKS=1 in the environment runs every instruction on the
 * exact path (no block cache, no fast path): for tests only, so that
 * tests/test_differential.py compares both paths with KVM (README). */
static bool blocks_wanted(void)
{
	const char *v = getenv("VMDB_EMU_NO_BLOCKS");
	return !v || strcmp(v, "1") != 0;
}

static int emu_op_vm_create(struct vm *vm, struct err *e)
{
	unsigned n = vm->nr_vcpus ? vm->nr_vcpus : vm->cfg.nr_vcpus;
	if (n == 0 || n > VM_MAX_VCPUS)
		return err_set(e, EINVAL, "the emu engine runs 1 to %u vCPUs, not %u", VM_MAX_VCPUS, n);
	int r = emu_handler_tables_check(e);
	if (r < 0)
		return r;
	struct emu_vm *evm = calloc(1, sizeof(*evm));
	if (!evm)
		return err_set(e, ENOMEM, "out of memory for the emu engine");
	emu_vm_init(evm, vm, n);
	evm->quantum = EMU_QUANTUM;
	r = emu_dcache_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu decode cache");
	}
	r = blocks_wanted() ? emu_blocks_create(evm) : 0;
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "out of memory for the emu block cache");
	}
	r = emu_platform_create(evm);
	if (r < 0) {
		emu_vm_free(evm);
		return err_set(e, -r, "cannot create the emu engine's interrupt controllers and "
			       "timers: %s", strerror(-r));
	}
	vm->engine_vm = evm;
	return 0;
}

static void emu_op_vm_destroy(struct vm *vm)
{
	struct emu_vm *evm = evm_of(vm);
	if (!evm)
		return;
	emu_stats_report(evm);
	emu_vm_free(evm);
	vm->engine_vm = NULL;
}

/* Guest RAM is machine/'s (vm_gpa_to_host); the engine only checks that
 * what it is given is that RAM. Read-only slots are not offered. */
static int emu_op_map_memory(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
			     bool readonly, struct err *e)
{
	if (readonly)
		return err_set(e, ENOTSUP, "the emu engine has no read-only memory slots");
	if (vm_gpa_to_host(vm, gpa, size) != host)
		return err_set(e, EINVAL, "the emu engine maps only the machine's RAM "
			       "(0x%llx, 0x%llx bytes)", (unsigned long long)gpa,
			       (unsigned long long)size);
	/* Guest memory is touched through host loads and stores: huge pages
	 * spare the host's TLB (the guest's pointer chasing misses it on every
	 * 4 KiB page otherwise). Only advice: without THP nothing changes. */
	madvise(host, size, MADV_HUGEPAGE);
	return 0;
}

static int emu_op_vcpu_create(struct vm *vm, struct vcpu *vcpu, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	if (vcpu->id >= evm->nr_cpus)
		return err_set(e, EINVAL, "vCPU %u is beyond the %u the emu engine was made for",
			       vcpu->id, evm->nr_cpus);
	struct emu_cpu *cpu = calloc(1, sizeof(*cpu));
	struct emu_engine_cpu *c = calloc(1, sizeof(*c));
	if (!cpu || !c) {
		free(cpu);
		free(c);
		return err_set(e, ENOMEM, "out of memory for vCPU %u", vcpu->id);
	}
	emu_core_init(cpu, &c->core, evm, vcpu);
	int r = emu_lapic_create(cpu);
	if (r < 0) {
		free(c);
		free(cpu);
		return err_set(e, -r, "cannot create the local APIC of vCPU %u", vcpu->id);
	}
	vcpu->engine = cpu;
	pthread_mutex_lock(&evm->lock);
	evm->cpus[vcpu->id] = cpu;
	pthread_mutex_unlock(&evm->lock);
	return 0;
}

static void emu_op_vcpu_destroy(struct vcpu *vcpu)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (!cpu)
		return;
	struct emu_vm *evm = cpu->evm;
	pthread_mutex_lock(&evm->lock);
	evm->cpus[cpu->id] = NULL;
	evm->retired_gone += cpu->retired;
	pthread_mutex_unlock(&evm->lock);
	emu_lapic_destroy(cpu);
	free(ecpu_of(cpu));
	free(cpu);
	vcpu->engine = NULL;
}

/* --- registers -------------------------------------------------------------------- */

static void emu_op_get_regs(struct vcpu *vcpu, struct x86_regs *r)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	const uint64_t *g = cpu->gpr;
	*r = (struct x86_regs){
		.rax = g[EMU_RAX], .rbx = g[EMU_RBX], .rcx = g[EMU_RCX], .rdx = g[EMU_RDX],
		.rsi = g[EMU_RSI], .rdi = g[EMU_RDI], .rbp = g[EMU_RBP], .rsp = g[EMU_RSP],
		.r8 = g[EMU_R8], .r9 = g[EMU_R9], .r10 = g[EMU_R10], .r11 = g[EMU_R11],
		.r12 = g[EMU_R12], .r13 = g[EMU_R13], .r14 = g[EMU_R14], .r15 = g[EMU_R15],
		.rip = cpu->rip, .rflags = emu_dbg_rflags_image(cpu),
	};
}

static void emu_op_set_regs(struct vcpu *vcpu, const struct x86_regs *r)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	uint64_t *g = cpu->gpr;
	g[EMU_RAX] = r->rax; g[EMU_RBX] = r->rbx; g[EMU_RCX] = r->rcx; g[EMU_RDX] = r->rdx;
	g[EMU_RSI] = r->rsi; g[EMU_RDI] = r->rdi; g[EMU_RBP] = r->rbp; g[EMU_RSP] = r->rsp;
	g[EMU_R8] = r->r8; g[EMU_R9] = r->r9; g[EMU_R10] = r->r10; g[EMU_R11] = r->r11;
	g[EMU_R12] = r->r12; g[EMU_R13] = r->r13; g[EMU_R14] = r->r14; g[EMU_R15] = r->r15;
	if (r->rip != cpu->rip) {
		emu_replay_reset(cpu);     /* the debugger moved it: nothing to complete */
		/* the last stop moves with it: the next step must not take the
		 * move for an event delivered before any instruction */
		cpu->dbg.step_rip += r->rip - cpu->rip;
	}
	cpu->rip = r->rip;
	cpu->rflags = (r->rflags & ~(RFLAGS_VM)) | RFLAGS_FIXED1;
	emu_dbg_rflags_loaded(cpu);
}

static void emu_op_get_sregs(struct vcpu *vcpu, struct x86_sregs *s)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	*s = cpu->sregs;
	s->cr8 = emu_lapic_get_cr8(cpu);
}

static void emu_op_set_sregs(struct vcpu *vcpu, const struct x86_sregs *s)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	struct emu_core *c = emu_core_of(cpu);
	uint64_t cr8 = emu_lapic_get_cr8(cpu);
	cpu->sregs = *s;
	if (s->cr8 != cr8)
		emu_lapic_set_cr8(cpu, s->cr8 & 0xf);
	c->cpl = (s->cr0 & CR0_PE) ? s->cs.dpl : 0;
	emu_tlb_flush(cpu);
	emu_update_mode(cpu);
	emu_replay_reset(cpu);
}

static void emu_get_msrs(struct emu_cpu *cpu, struct x86_state *st)
{
	st->star = cpu->msr_star;
	st->lstar = cpu->msr_lstar;
	st->cstar = cpu->msr_cstar;
	st->fmask = cpu->msr_fmask;
	st->kernel_gs_base = cpu->msr_kernel_gs_base;
}

static void emu_set_msrs(struct emu_cpu *cpu, const struct x86_state *st)
{
	cpu->msr_star = st->star;
	cpu->msr_lstar = st->lstar;
	cpu->msr_cstar = st->cstar;
	cpu->msr_fmask = st->fmask;
	cpu->msr_kernel_gs_base = st->kernel_gs_base;
}

static int emu_op_get_state(struct vcpu *vcpu, unsigned mask, struct x86_state *st)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (mask & X86_STATE_REGS)
		emu_op_get_regs(vcpu, &st->regs);
	if (mask & X86_STATE_SREGS)
		emu_op_get_sregs(vcpu, &st->sregs);
	if (mask & X86_STATE_FPU)
		st->fpu = cpu->fpu;
	if (mask & X86_STATE_XCR0)
		st->xcr0 = emu_core_of(cpu)->xcr0;
	if (mask & X86_STATE_DR)
		emu_dbg_get_regs(cpu, &st->dr);
	if (mask & X86_STATE_MSRS)
		emu_get_msrs(cpu, st);
	return 0;
}

static int emu_op_set_state(struct vcpu *vcpu, unsigned mask, const struct x86_state *st)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (mask & X86_STATE_SREGS)
		emu_op_set_sregs(vcpu, &st->sregs);
	if (mask & X86_STATE_REGS)
		emu_op_set_regs(vcpu, &st->regs);
	if (mask & X86_STATE_XCR0)
		emu_core_of(cpu)->xcr0 = st->xcr0;
	if (mask & X86_STATE_FPU)
		cpu->fpu = st->fpu;
	if (mask & X86_STATE_DR)
		emu_dbg_set_regs(cpu, &st->dr);
	if (mask & X86_STATE_MSRS)
		emu_set_msrs(cpu, st);
	return 0;
}

/* The platform's MSRs (the LAPIC's) first, as RDMSR/WRMSR take them. */
static int emu_op_msr_get(struct vcpu *vcpu, uint32_t msr, uint64_t *value)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	int r = emu_platform_msr_debug(cpu, msr, value, false);
	if (r != -ENOENT)
		return r == -EINVAL ? -ENOENT : r;   /* x2APIC registers in xAPIC mode */
	return emu_msr_get(cpu, msr, value) ? 0 : -ENOENT;
}

static int emu_op_msr_set(struct vcpu *vcpu, uint32_t msr, uint64_t value)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	uint64_t old;
	int r = emu_platform_msr_debug(cpu, msr, &value, true);
	if (r != -ENOENT)
		return r;
	if (!emu_msr_get(cpu, msr, &old))
		return -ENOENT;
	if (msr == MSR_EFER && !emu_efer_ok(cpu, value))
		return -EINVAL;      /* emu_write_efer would fault, outside the core's loop */
	return emu_msr_set(cpu, msr, value) ? 0 : -EINVAL;
}

static int emu_op_get_run_state(struct vcpu *vcpu, bool *halted, bool *waiting_sipi)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	*halted = cpu->halted;
	*waiting_sipi = cpu->wait_sipi;
	return 0;
}

static int emu_op_set_debug(struct vcpu *vcpu, const struct engine_debug *dbg)
{
	emu_core_of(cpu_of(vcpu))->hlt_step = false;     /* the debugger's new wish wins */
	return emu_dbg_set_debug(cpu_of(vcpu), dbg);
}

static int emu_op_inject_exception(struct vcpu *vcpu, uint8_t vector, bool has_error_code,
				   uint32_t error_code)
{
	struct emu_cpu *cpu = cpu_of(vcpu);
	if (vector >= 32)
		return -EINVAL;
	cpu->pending.exception = false;
	emu_raise(cpu, vector, has_error_code, error_code);
	emu_replay_reset(cpu);
	return 0;
}

/* --- probe ----------------------------------------------------------------------- */

static void probe_feature(struct engine_caps *caps, const char *name, bool present,
			  const char *how)
{
	if (caps->nr_features >= ENGINE_MAX_FEATURES)
		return;
	struct engine_feature *f = &caps->features[caps->nr_features++];
	f->name = name;
	f->present = present;
	snprintf(f->how, sizeof(f->how), "%s", how);
}

/* The engine implements these itself, so the answers are what the code
 * does (the debug architecture is tested from inside guests by
 * tests/test_emu_debug.py). Names follow engine/kvm/kvm_probe.c. */
static int emu_op_probe(struct engine_caps *caps, struct err *e)
{
	(void)e;
	memset(caps, 0, sizeof(*caps));
	caps->single_step = caps->step_block_irq = caps->hw_exec_bp = caps->hw_data_bp = true;
	caps->gd_trap = caps->irqchip = true;
	/* MTF-like stepping never touches RFLAGS.TF; --cpu amd stepping owns
	 * TF but emu_debug.c fixes every image itself */
	caps->step_keeps_guest_tf = true;
	caps->readonly_mem = false;
	caps->max_vcpus = VM_MAX_VCPUS;
	probe_feature(caps, "single-step exits", true,
		      "MTF-like: an exit after every instruction and REP iteration, guest TF "
		      "untouched (--cpu amd: TF with PUSHF/POPF images fixed up)");
	probe_feature(caps, "BLOCKIRQ", true, "no interrupt or NMI delivered while stepping");
	probe_feature(caps, "hardware execution breakpoints", true,
		      "DR0-3 matched before every instruction (fault, RF honoured)");
	probe_feature(caps, "hardware data breakpoints", true,
		      "every guest data access checked against DR0-3 (trap after the "
		      "instruction)");
	probe_feature(caps, "DR7.GD trapping of guest MOV DR", true,
		      "#DB with DR6.BD before the MOV executes");
	probe_feature(caps, "read-only memory slots", false, "not implemented in the emu engine");
	probe_feature(caps, "in-kernel irqchip", true,
		      "the engine's own LAPIC, I/O APIC, PIC and PIT (emu_platform)");
	char how[64];
	snprintf(how, sizeof(how), "%u (VM_MAX_VCPUS)", VM_MAX_VCPUS);
	probe_feature(caps, "max vCPUs", true, how);
	probe_feature(caps, "single-step exits in ring 3", true, "same as ring 0");
	probe_feature(caps, "hardware execution breakpoints in ring 3", true, "same as ring 0");
	probe_feature(caps, "INT3 interception in ring 3", true,
		      "guest INT3 exits as a breakpoint when intercepted, any ring");
	probe_feature(caps, "MOV DR exits", true,
		      "guest MOV DR is emulated, then exits with register, direction, GPR");
	probe_feature(caps, "guest #DB exits", true,
		      "the guest's own #DB exits with its DR6 bits instead of being delivered");
	probe_feature(caps, "deterministic execution", true,
		      "one vCPU at a time, round robin every 50000 instructions; "
		      "guest time = retired instructions");
	return 0;
}

const struct engine_ops emu_engine_ops = {
	.name = "emu",
	.vm_create = emu_op_vm_create,
	.vm_destroy = emu_op_vm_destroy,
	.map_memory = emu_op_map_memory,
	.irq_line = emu_platform_irq_line,
	.guest_ns = emu_platform_guest_ns,
	.probe = emu_op_probe,
	.vcpu_create = emu_op_vcpu_create,
	.vcpu_destroy = emu_op_vcpu_destroy,
	.run = emu_op_run,
	.kick = emu_op_kick,
	.run_borrowed = emu_op_run_borrowed,
	.get_state = emu_op_get_state,
	.set_state = emu_op_set_state,
	.get_run_state = emu_op_get_run_state,
	.msr_get = emu_op_msr_get,
	.msr_set = emu_op_msr_set,
	.set_debug = emu_op_set_debug,
	.inject_exception = emu_op_inject_exception,
};
