/* engine/kvm/kvm_watch.c — the debugger's watched ranges on KVM
 * (engine_ops.set_watch) as page traps, for hosts whose data breakpoints
 * never fire. A page with only write-watched ranges becomes a read-only
 * memory slot (KVM_MEM_READONLY: reads run at full speed, writes exit as
 * MMIO with address and data); a page with a read or access range leaves
 * the memory map altogether (every access exits as MMIO). The engine
 * completes each such access against guest RAM itself and KVM_RUN goes
 * on; only an access that touches a watched range, in its direction, is
 * reported: KVM then finishes the instruction (KVM_RUN with
 * immediate_exit completes the pending MMIO and returns before the next
 * instruction) and run() returns VM_EXIT_DB with db.watch. KVM splits
 * accesses at page boundaries and string instructions into iterations,
 * so each exit is one piece of one access.
 *
 * Memory slots: map_memory's slots keep ids 0..KVM_ENGINE_MAX_SLOTS-1; a
 * slot holding trapped pages is deleted and its untrapped runs (and the
 * read-only pages) are registered as pieces with ids from
 * KVM_ENGINE_MAX_SLOTS up, within KVM_CAP_NR_MEMSLOTS. Ending the watch
 * deletes the pieces and registers the original slot again, exactly as
 * map_memory did.
 *
 * A memory map change is not atomic for vCPUs inside KVM_RUN: KVM
 * deletes a slot (invalid, then gone after an SRCU grace period) before
 * the pieces exist, and a vCPU touching those pages in between exits as
 * MMIO on a page no slot backs, which machine/ would take for a device;
 * the ranges vCPUs read at an MMIO exit change too. So set_watch closes
 * the map gate: vCPUs inside run() are kicked out (each leaves after its
 * current exit), those coming in wait, and the map changes with no vCPU
 * inside, at once, whatever the others are doing.
 *
 * Limits, said where they bite: an access KVM does not emulate itself
 * (the instructions kvm_fallback.c hands to emu, an instruction fetched
 * from an unmapped page) completes without being checked; a locked
 * read-modify-write on a trapped page is not atomic against other vCPUs
 * (KVM emulates it as a read and a write, as for any MMIO). */
#include "engine/kvm/kvm.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PAGE 4096ull

static int set_region(struct kvm_vm_state *kvm, unsigned id, uint64_t gpa, uint64_t size,
		      uint8_t *host, bool readonly)
{
	struct kvm_userspace_memory_region region = {
		.slot = id,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = size ? (uintptr_t)host : 0,
	};
	return kvm_ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

/* How a page is trapped: not at all, writes only, or every access. */
enum trap { TRAP_NONE, TRAP_WRITE, TRAP_ALL };

static enum trap page_trap(const struct kvm_watch_state *ws, uint64_t page)
{
	enum trap t = TRAP_NONE;
	for (unsigned i = 0; i < ws->nr; i++) {
		const struct engine_watch *w = &ws->ranges[i];
		if ((w->gpa & ~(PAGE - 1)) != page)
			continue;
		if (w->read)
			return TRAP_ALL;
		t = TRAP_WRITE;
	}
	return t;
}

/* Slot s holds a trapped page. */
static bool slot_trapped(const struct kvm_watch_state *ws, const struct kvm_mem_slot *s)
{
	for (unsigned i = 0; i < ws->nr; i++)
		if (ws->ranges[i].gpa >= s->gpa && ws->ranges[i].gpa - s->gpa < s->size)
			return true;
	return false;
}

static enum trap slot_page_trap(const struct kvm_vm_state *kvm, const struct kvm_mem_slot *s,
				uint64_t off)
{
	enum trap t = page_trap(&kvm->watch, s->gpa + off);
	return t == TRAP_WRITE && !kvm->caps.readonly_mem ? TRAP_ALL : t;  /* no read-only slots */
}

/* Slot s as runs of pages mapped alike: each run that stays mapped is one
 * piece (read-only for write-trapped pages). Registers them with ids from
 * *next_id when apply; returns how many there are, or -errno. */
static int slot_pieces(struct kvm_vm_state *kvm, const struct kvm_mem_slot *s,
		       unsigned *next_id, bool apply)
{
	int pieces = 0;
	uint64_t start = 0;
	enum trap run = slot_page_trap(kvm, s, 0);
	for (uint64_t off = PAGE; ; off += PAGE) {
		bool end = off >= s->size;
		if (!end && slot_page_trap(kvm, s, off) == run)
			continue;
		if (run != TRAP_ALL) {
			if (apply) {
				int r = set_region(kvm, (*next_id)++, s->gpa + start, off - start,
						   s->host + start, s->readonly || run == TRAP_WRITE);
				if (r < 0)
					return r;
			}
			pieces++;
		}
		if (end)
			return pieces;
		start = off;
		run = slot_page_trap(kvm, s, off);
	}
}

/* Take every piece out and every original slot back. */
static int unsplit(struct kvm_vm_state *kvm)
{
	struct kvm_watch_state *ws = &kvm->watch;
	int r = 0;
	for (unsigned i = 0; i < ws->nr_pieces; i++) {
		int rr = set_region(kvm, KVM_ENGINE_MAX_SLOTS + i, 0, 0, NULL, false);
		r = r < 0 ? r : rr;
	}
	ws->nr_pieces = 0;
	for (unsigned i = 0; i < kvm->nr_slots; i++) {
		if (!ws->split[i])
			continue;
		const struct kvm_mem_slot *s = &kvm->slots[i];
		int rr = set_region(kvm, i, s->gpa, s->size, s->host, s->readonly);
		r = r < 0 ? r : rr;
		ws->split[i] = false;
	}
	return r;
}

static int split(struct kvm_vm_state *kvm, struct err *e)
{
	struct kvm_watch_state *ws = &kvm->watch;
	unsigned need = 0;
	for (unsigned i = 0; i < kvm->nr_slots; i++)
		if (slot_trapped(ws, &kvm->slots[i]))
			need += (unsigned)slot_pieces(kvm, &kvm->slots[i], NULL, false);
	if (KVM_ENGINE_MAX_SLOTS + need > kvm->caps.nr_memslots)
		return err_set(e, ENOSPC, "the watched pages need %u more KVM memory slots; this "
			       "host's KVM has %u in all (KVM_CAP_NR_MEMSLOTS)", need,
			       kvm->caps.nr_memslots);
	unsigned next = KVM_ENGINE_MAX_SLOTS;
	for (unsigned i = 0; i < kvm->nr_slots; i++) {
		const struct kvm_mem_slot *s = &kvm->slots[i];
		if (!slot_trapped(ws, s))
			continue;
		int r = set_region(kvm, i, s->gpa, 0, NULL, false);
		if (r == 0) {
			ws->split[i] = true;
			r = slot_pieces(kvm, s, &next, true);
		}
		ws->nr_pieces = next - KVM_ENGINE_MAX_SLOTS;
		if (r < 0)
			return err_set(e, -r, "cannot split KVM memory slot %u (0x%llx) around the "
				       "watched pages: %s", i, (unsigned long long)s->gpa,
				       strerror(-r));
	}
	return 0;
}

/* ---- the map gate ---- */

void kvm_watch_init(struct kvm_vm_state *kvm)
{
	pthread_mutex_init(&kvm->watch.gate_lock, NULL);
	pthread_cond_init(&kvm->watch.gate_cond, NULL);
}

void kvm_watch_gate_enter(struct kvm_vcpu_state *v)
{
	struct kvm_watch_state *ws = &v->kvm->watch;
	pthread_mutex_lock(&ws->gate_lock);
	while (ws->closed)
		pthread_cond_wait(&ws->gate_cond, &ws->gate_lock);
	ws->inside++;
	v->in_gate = true;
	pthread_mutex_unlock(&ws->gate_lock);
}

void kvm_watch_gate_leave(struct kvm_vcpu_state *v)
{
	struct kvm_watch_state *ws = &v->kvm->watch;
	pthread_mutex_lock(&ws->gate_lock);
	ws->inside--;
	v->in_gate = false;
	if (ws->closed && ws->inside == 0)
		pthread_cond_broadcast(&ws->gate_cond);
	pthread_mutex_unlock(&ws->gate_lock);
}

/* Close the gate and wait until no vCPU is inside run(): one kick each
 * suffices (immediate_exit covers a vCPU about to enter KVM_RUN), again
 * now and then against a signal some other code consumed. Never called
 * from inside run(). */
void kvm_watch_gate_close(struct vm *vm)
{
	struct kvm_watch_state *ws = &kvm_vm_of(vm)->watch;
	pthread_mutex_lock(&ws->gate_lock);
	while (ws->closed)      /* another set_watch changing the map */
		pthread_cond_wait(&ws->gate_cond, &ws->gate_lock);
	ws->closed = true;
	while (ws->inside > 0) {
		for (unsigned i = 0; i < vm->nr_vcpus; i++) {
			struct kvm_vcpu_state *v = kvm_vcpu_of(&vm->vcpus[i]);
			if (v && v->in_gate)
				kvm_op_kick(&vm->vcpus[i]);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000 * 1000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&ws->gate_cond, &ws->gate_lock, &ts);
	}
	pthread_mutex_unlock(&ws->gate_lock);
}

void kvm_watch_gate_open(struct kvm_vm_state *kvm)
{
	struct kvm_watch_state *ws = &kvm->watch;
	pthread_mutex_lock(&ws->gate_lock);
	ws->closed = false;
	pthread_cond_broadcast(&ws->gate_cond);
	pthread_mutex_unlock(&ws->gate_lock);
}

/* ---- set_watch ---- */

static int set_watch_closed(struct vm *vm, struct engine_watch *copy, unsigned n,
			    struct err *e);

int kvm_op_set_watch(struct vm *vm, const struct engine_watch *w, unsigned n, struct err *e)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	struct engine_watch *copy = NULL;
	if (n && !(copy = malloc(n * sizeof(*copy))))
		return err_set(e, ENOMEM, "out of memory for %u watched ranges", n);
	if (n)
		memcpy(copy, w, n * sizeof(*copy));
	kvm_watch_gate_close(vm);
	int r = set_watch_closed(vm, copy, n, e);
	kvm_watch_gate_open(kvm);
	return r;
}

/* The map gate closed: the ranges become copy (ours now). */
static int set_watch_closed(struct vm *vm, struct engine_watch *copy, unsigned n,
			    struct err *e)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	struct kvm_watch_state *ws = &kvm->watch;
	int r = unsplit(kvm);
	free(ws->ranges);
	ws->ranges = copy;
	ws->nr = n;
	if (r < 0)
		return err_set(e, -r, "cannot restore KVM's memory slots: %s", strerror(-r));
	if (n == 0)
		return 0;
	r = split(kvm, e);
	if (r < 0) {
		unsplit(kvm);          /* back to the plain map: nothing watched */
		free(ws->ranges);
		ws->ranges = NULL;
		ws->nr = 0;
	}
	return r;
}

void kvm_watch_free(struct kvm_vm_state *kvm)
{
	free(kvm->watch.ranges);
	kvm->watch.ranges = NULL;
	kvm->watch.nr = 0;
	pthread_cond_destroy(&kvm->watch.gate_cond);
	pthread_mutex_destroy(&kvm->watch.gate_lock);
}

/* The memory behind a trapped page's gpa, or NULL: not a page of ours, or
 * a write to read-only memory (the machine's, as without the trap). */
static uint8_t *trapped_host(struct kvm_vm_state *kvm, uint64_t gpa, uint32_t len, bool write)
{
	const struct kvm_watch_state *ws = &kvm->watch;
	uint64_t page = gpa & ~(PAGE - 1);
	if (page_trap(ws, page) == TRAP_NONE || (gpa + len - 1) / PAGE != gpa / PAGE)
		return NULL;
	for (unsigned i = 0; i < kvm->nr_slots; i++) {
		const struct kvm_mem_slot *s = &kvm->slots[i];
		if (ws->split[i] && gpa >= s->gpa && gpa - s->gpa < s->size)
			return write && s->readonly ? NULL : s->host + (gpa - s->gpa);
	}
	return NULL;
}

int kvm_watch_mmio(struct kvm_vcpu_state *v)
{
	struct kvm_vm_state *kvm = v->kvm;
	const struct kvm_watch_state *ws = &kvm->watch;
	struct kvm_run *run = v->run;
	uint64_t gpa = run->mmio.phys_addr;
	uint32_t len = run->mmio.len;
	bool write = run->mmio.is_write;
	uint8_t *host = len <= 8 ? trapped_host(kvm, gpa, len, write) : NULL;
	if (!host)
		return -1;
	if (write)
		memcpy(host, run->mmio.data, len);
	else
		memcpy(run->mmio.data, host, len);
	for (unsigned i = 0; i < ws->nr; i++) {
		const struct engine_watch *w = &ws->ranges[i];
		if ((write ? w->write : w->read) && gpa < w->gpa + w->len && w->gpa < gpa + len)
			return (int)w->id + 1;
	}
	return 0;
}

/* A REP string instruction (INS/OUTS/MOVS/CMPS/STOS/LODS/SCAS)? Its
 * length and address size (16/32/64) into *len and *asize. */
static bool rep_string(const uint8_t *b, unsigned n, bool long64, bool db, unsigned *len,
		       unsigned *asize)
{
	bool rep = false, addr_override = false;
	unsigned i = 0;
	for (; i < n; i++) {
		uint8_t p = b[i];
		if (p == 0xf2 || p == 0xf3)
			rep = true;
		else if (p == 0x67)
			addr_override = true;
		else if (p == 0x66 || p == 0xf0 || p == 0x26 || p == 0x2e || p == 0x36 ||
			 p == 0x3e || p == 0x64 || p == 0x65 || (long64 && (p & 0xf0) == 0x40))
			continue;
		else
			break;
	}
	if (i >= n || !rep)
		return false;
	uint8_t op = b[i];
	if (!((op >= 0x6c && op <= 0x6f) || (op >= 0xa4 && op <= 0xa7) || (op >= 0xaa && op <= 0xaf)))
		return false;
	*len = i + 1;
	*asize = long64 ? (addr_override ? 32 : 64) : ((db != addr_override) ? 32 : 16);
	return true;
}

/* KVM's emulator leaves a REP string instruction whose last iteration it
 * just did with the count at 0 and RIP still on it (it ends it when it
 * runs it again); a CPU's data breakpoint would trap after it. Do that
 * last step here, so the stop is after the instruction. */
static int finish_rep(struct kvm_vcpu_state *v, struct kvm_regs *regs)
{
	struct kvm_sregs s;
	int r = kvm_ioctl(v->fd, KVM_GET_SREGS, &s);
	if (r < 0)
		return r;
	bool long64 = (s.efer & EFER_LMA) && s.cs.l;
	uint64_t pc = long64 ? regs->rip : (uint32_t)(s.cs.base + regs->rip);
	uint8_t insn[15];
	unsigned n = kvm_fetch_insn(v, &s, pc, insn, sizeof(insn)), len, asize;
	if (!rep_string(insn, n, long64, s.cs.db, &len, &asize))
		return 0;
	uint64_t count = asize == 64 ? regs->rcx : regs->rcx & ((1ull << asize) - 1);
	if (count != 0)
		return 0;      /* between iterations: a CPU traps there too */
	regs->rip += len;
	return kvm_ioctl(v->fd, KVM_SET_REGS, regs);
}

/* The instruction touched a watched range: let KVM finish it (and only
 * it), then report. Further pieces of the same access may exit first. */
int kvm_watch_report(struct kvm_vcpu_state *v, struct vm_exit *exit, uint32_t hit)
{
	for (;;) {
		__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		int r = kvm_run_once(v, exit);
		if (r < 0)
			return r;
		if (exit->reason == VM_EXIT_MMIO && kvm_watch_mmio(v) >= 0)
			continue;
		break;
	}
	/* a kick that came meanwhile is answered by this stop */
	__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	if (exit->reason == VM_EXIT_DB) {
		exit->db.watch = hit;        /* the step trap of the same instruction */
		return 0;
	}
	if (exit->reason != VM_EXIT_KICKED)
		return 0;                    /* some other exit first: it wins, the hit is lost */
	struct kvm_regs regs;
	int r = kvm_ioctl(v->fd, KVM_GET_REGS, &regs);
	if (r < 0 || (r = finish_rep(v, &regs)) < 0)
		return r;
	memset(exit, 0, sizeof(*exit));
	exit->reason = VM_EXIT_DB;
	exit->db.pc = regs.rip;
	exit->db.watch = hit;
	return 0;
}
