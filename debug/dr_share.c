/* debug/dr_share.c — the debug-register arbiter (dr_share.h): placement,
 * the union and routing as pure functions, then the debug core's glue:
 * learning each vCPU's guest file, loading the union through
 * debug_apply_engine, routing debug exits and reflecting the guest's
 * hits, `monitor info dr`. */
#include "debug/debug_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define DR6_B_ALL (DR6_B(0) | DR6_B(1) | DR6_B(2) | DR6_B(3))
#define DR6_STICKY (DR6_BD | DR6_BS | DR6_BT)

void dr_share_init(struct dr_share *s)
{
	memset(s, 0, sizeof(*s));
	for (unsigned n = 0; n < DR_SLOTS; n++)
		s->place[n] = -1;
}

unsigned dr_share_enables(const struct x86_debugregs *guest)
{
	unsigned slots = 0;
	for (unsigned n = 0; n < DR_SLOTS; n++)
		if (guest->dr7 & (DR7_L(n) | DR7_G(n)))
			slots |= 1u << n;
	return slots;
}

unsigned dr_share_guest_slots(const struct dr_share *s, unsigned nr)
{
	unsigned slots = 0;
	for (unsigned v = 0; v < nr && v < DR_MAX_VCPUS; v++)
		if (s->vcpu[v].known)
			slots |= dr_share_enables(&s->vcpu[v].guest);
	return slots;
}

/* A free slot for entry n: its own number first (no move where nothing
 * competes), else the lowest free one. */
static int free_slot(unsigned taken, unsigned n)
{
	if (!(taken & (1u << n)))
		return (int)n;
	for (unsigned p = 0; p < DR_SLOTS; p++)
		if (!(taken & (1u << p)))
			return (int)p;
	return -1;
}

unsigned dr_share_place(struct dr_share *s, unsigned nr, unsigned wanted)
{
	unsigned guest = dr_share_guest_slots(s, nr), taken = guest, lost = 0;
	bool moved = false;

	/* entries that keep their slot first, so that none is pushed around */
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		int p = s->place[n];
		if (!(wanted & (1u << n))) {
			moved = moved || p >= 0;
			s->place[n] = -1;
		} else if (p >= 0 && !(taken & (1u << p))) {
			taken |= 1u << p;
		} else if (p >= 0) {
			s->place[n] = -1;      /* the guest took it */
			lost |= 1u << n;
		}
	}
	unsigned waiting = 0;
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		if (!(wanted & (1u << n)) || s->place[n] >= 0)
			continue;
		int p = free_slot(taken, n);
		if (p < 0) {
			waiting |= 1u << n;
			continue;
		}
		s->place[n] = (int8_t)p;
		taken |= 1u << p;
		moved = true;
		s->moves += (lost >> n) & 1;
		lost &= ~(1u << n);
	}
	unsigned newly = waiting & ~s->waiting;
	s->waits += (unsigned long)__builtin_popcount(newly);
	moved = moved || lost || waiting != s->waiting;
	s->waiting = waiting;
	if (moved)
		s->gen++;
	return newly | lost;
}

static uint64_t slot_ctl(uint64_t dr7, unsigned n)
{
	return (dr7 >> DR7_RW_SHIFT(n)) & 0xf;       /* RW and LEN of slot n */
}

void dr_share_union(const struct dr_share *s, unsigned vcpu, const uint64_t dbg_db[DR_SLOTS],
		    uint64_t dbg_dr7, uint64_t db[DR_SLOTS], uint64_t *dr7,
		    struct dr_slot hw[DR_SLOTS])
{
	const struct x86_debugregs *g = &s->vcpu[vcpu].guest;
	unsigned guest = s->vcpu[vcpu].known ? dr_share_enables(g) & ~s->vcpu[vcpu].rf_lift : 0;
	uint64_t out = 0;

	memset(hw, 0, sizeof(*hw) * DR_SLOTS);
	memset(db, 0, sizeof(*db) * DR_SLOTS);
	for (unsigned p = 0; p < DR_SLOTS; p++) {
		if (!(guest & (1u << p)))
			continue;
		db[p] = g->db[p];
		out |= (g->dr7 & (DR7_L(p) | DR7_G(p))) | (slot_ctl(g->dr7, p) << DR7_RW_SHIFT(p));
		hw[p].holder = DR_HOLD_GUEST;
	}
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		int p = s->place[n];
		if (!(dbg_dr7 & (DR7_L(n) | DR7_G(n))) || p < 0 || hw[p].holder != DR_HOLD_NONE)
			continue;
		db[p] = dbg_db[n];
		out |= DR7_G(p) | (slot_ctl(dbg_dr7, n) << DR7_RW_SHIFT(p));
		hw[p].holder = DR_HOLD_DEBUGGER;
		hw[p].entry = (uint8_t)n;
	}
	/* the guest's GD too: a host that traps MOV DR under it exits with
	 * BD, which goes to the guest as its own #DB */
	if (out)
		out |= DR7_FIXED1 | DR7_GE | (g->dr7 & (DR7_LE | DR7_GD));
	*dr7 = out;
}

struct dr_route dr_share_route(const struct dr_share_vcpu *v, uint64_t dr6, bool debugger_steps)
{
	struct dr_route r = { 0, 0 };
	unsigned guest = v->known ? dr_share_enables(&v->guest) : 0;

	for (unsigned p = 0; p < DR_SLOTS; p++) {
		if (!(dr6 & DR6_B(p)))
			continue;
		if (v->hw[p].holder == DR_HOLD_DEBUGGER)
			r.debugger |= DR6_B(v->hw[p].entry);
		else if (v->hw[p].holder == DR_HOLD_GUEST && (guest & (1u << p)))
			r.guest |= DR6_B(p);
	}
	if (dr6 & DR6_BS)
		*(debugger_steps ? &r.debugger : &r.guest) |= DR6_BS;
	r.guest |= dr6 & (DR6_BD | DR6_BT);
	return r;
}

uint64_t dr_share_guest_dr6(uint64_t dr6, uint64_t hit)
{
	return (dr6 & DR6_STICKY) | (hit & (DR6_B_ALL | DR6_STICKY)) | DR6_FIXED1 | DR6_RTM;
}

void dr_share_slot_kind(uint64_t dr7, unsigned n, char *out, size_t size)
{
	static const char *const rw[4] = { "exec", "write", "io", "rw" };
	static const unsigned len[4] = { 1, 2, 8, 4 };
	unsigned ctl = (unsigned)slot_ctl(dr7, n);
	if ((ctl & 3) == DR7_RW_EXEC)
		snprintf(out, size, "exec");
	else
		snprintf(out, size, "%s %u", rw[ctl & 3], len[ctl >> 2]);
}

/* ---- the debug core's glue ---- */

/* Entries that lose their slot: the client's hbreaks and catching's get
 * an int3 stand-in (stand_ins), watchpoint pieces a page trap (watch.c).
 * The step engine's one entry, a HLT run's stop after the HLT, starts only
 * where the arbiter has room (step.c hlt_slot: else the HLT is stepped);
 * a guest that takes that slot while the vCPU waits in the HLT (its wake-up
 * handler writing DR7) leaves the run to end at the next stop. */

/* Who an entry of d->hw[] serves (dr_slot.what). */
enum { ENTRY_HBREAK, ENTRY_WATCH, ENTRY_CATCH, ENTRY_STEP };

static unsigned entry_kind(const struct debug_hw_bp *bp)
{
	if (bp->used && bp->client)
		return bp->rw == DR7_RW_EXEC ? ENTRY_HBREAK : ENTRY_WATCH;
	return bp->used && bp->catch_vectors ? ENTRY_CATCH : ENTRY_STEP;
}

/* Without a probe (unit tests' fake engine) the debugger's registers are
 * taken to be its own, as they were before the arbiter. */
void debug_dr_share_setup(struct debug *d)
{
	const struct engine_caps *caps;
	struct dr_share *s = &d->share;
	if (s->on || debug_caps(d, &caps, NULL) < 0)
		return;
	pthread_mutex_lock(&d->lock);
	s->on = caps->shared_dr || d->vm->cfg.shared_dr;
	s->precise = s->on && caps->gd_trap;
	pthread_mutex_unlock(&d->lock);
}

/* Read one vCPU's guest file from the engine (d->lock NOT held): true
 * when its enables or addresses changed since last known. */
bool debug_dr_share_learn(struct debug *d, unsigned vcpu)
{
	struct x86_state st;
	if (debug_vcpu_get(d, vcpu, X86_STATE_DR, &st) < 0)
		return false;
	pthread_mutex_lock(&d->lock);
	struct dr_share_vcpu *v = &d->share.vcpu[vcpu];
	bool changed = !v->known || dr_share_enables(&v->guest) != dr_share_enables(&st.dr) ||
		       memcmp(v->guest.db, st.dr.db, sizeof(st.dr.db)) != 0 ||
		       ((v->guest.dr7 ^ st.dr.dr7) & ~(DR7_GD | DR7_FIXED1)) != 0;
	d->share.learned_changes += changed && v->known;
	v->guest = st.dr;
	v->known = true;
	pthread_mutex_unlock(&d->lock);
	return changed;
}

/* Place every entry in use (and those in wanted) machine-wide; watchpoint
 * pieces left without a slot go to the engine's watched ranges (watch.c).
 * True when anything moved. */
static bool place_locked(struct debug *d, unsigned wanted)
{
	struct dr_share *s = &d->share;
	unsigned gen = s->gen;
	for (unsigned n = 0; n < DR_SLOTS; n++)
		wanted |= d->hw[n].used ? 1u << n : 0;
	unsigned lost = dr_share_place(s, d->nr_vcpus, wanted);
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		const struct debug_hw_bp *bp = &d->hw[n];
		if ((lost & (1u << n)) && bp->used && bp->rw != DR7_RW_EXEC)
			debug_watch_evicted_locked(d, bp->rw, bp->watch_addr, bp->watch_len);
	}
	return s->gen != gen;
}

unsigned debug_dr_share_room_locked(struct debug *d)
{
	const struct dr_share *s = &d->share;
	if (!s->on)
		return DR_SLOTS;
	unsigned taken = dr_share_guest_slots(s, d->nr_vcpus);
	for (unsigned n = 0; n < DR_SLOTS; n++)
		if (d->hw[n].used && s->place[n] >= 0)
			taken |= 1u << s->place[n];
	return DR_SLOTS - (unsigned)__builtin_popcount(taken);
}

/* addr through vCPU via's page tables, or (via < 0) the first parked
 * vCPU's that maps it (non-stop: the others may be running). */
static bool translate_via(struct debug *d, int via, uint64_t addr, uint64_t *gpa)
{
	if (via >= 0)
		return debug_translate(d, (unsigned)via, addr, gpa) == 0;
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		enum debug_run run = debug_run_of(d, i);
		if ((run == DEBUG_RUN_PARKED || run == DEBUG_RUN_STEP_SPIN) &&
		    debug_translate(d, i, addr, gpa) == 0)
			return true;
	}
	return false;
}

/* No vCPU in the engine: each loads the placement before it enters. */
static bool none_in_engine(struct debug *d)
{
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (!debug_run_parked(debug_run_of(d, i)))
			return false;
	return true;
}

static bool wants_stand_in_locked(struct debug *d, unsigned n)
{
	const struct debug_hw_bp *hw = &d->hw[n];
	return d->share.on && hw->used && (hw->client || hw->catch_vectors) &&
	       hw->rw == DR7_RW_EXEC && d->share.place[n] < 0;
}

/* Execution breakpoints left without a slot (the client's, and exception
 * catching's on a handler) get an int3 in their place at once (d->lock NOT held; addresses translated through
 * vCPU via, see translate_via), so that no hit is missed while they wait.
 * One that has a slot again gives its int3 up only with release (every
 * vCPU parked): a vCPU that has not loaded the new placement yet would
 * otherwise have neither. */
static void stand_ins(struct debug *d, int via, bool release)
{
	uint64_t addr[DR_SLOTS], gpa[DR_SLOTS];
	bool mapped[DR_SLOTS];
	unsigned need = 0;
	pthread_mutex_lock(&d->lock);
	for (unsigned n = 0; n < DR_SLOTS; n++) {
		struct debug_hw_bp *hw = &d->hw[n];
		if (wants_stand_in_locked(d, n) && hw->stand_in == DEBUG_STAND_IN_NONE) {
			need |= 1u << n;
			addr[n] = hw->addr;
		} else if (wants_stand_in_locked(d, n)) {
			debug_hw_stand_in_catch_locked(d, n);
		} else if (!wants_stand_in_locked(d, n) && hw->stand_in != DEBUG_STAND_IN_NONE &&
			   (release || hw->stand_in != DEBUG_STAND_IN_INT3)) {
			debug_hw_stand_in_drop_locked(d, n);
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (!need)
		return;
	for (unsigned n = 0; n < DR_SLOTS; n++)
		if (need & (1u << n))
			mapped[n] = translate_via(d, via, addr[n], &gpa[n]);
	pthread_mutex_lock(&d->lock);
	for (unsigned n = 0; n < DR_SLOTS; n++)
		if ((need & (1u << n)) && wants_stand_in_locked(d, n) &&
		    d->hw[n].stand_in == DEBUG_STAND_IN_NONE && d->hw[n].addr == addr[n])
			debug_hw_stand_in_locked(d, n, gpa[n], mapped[n]);
	pthread_mutex_unlock(&d->lock);
}

/* At every resume: the placement for new entries, their
 * int3s where they have no slot, and (no vCPU in the engine, as outside
 * non-stop) the int3s of those that have one again taken out. */
void debug_dr_share_settle(struct debug *d)
{
	if (!d->share.on)
		return;
	pthread_mutex_lock(&d->lock);
	place_locked(d, 0);
	pthread_mutex_unlock(&d->lock);
	stand_ins(d, -1, none_in_engine(d));
}

/* This vCPU's union into dbg, and what each slot holds. */
static void union_locked(struct debug *d, unsigned vcpu, struct engine_debug *dbg)
{
	struct dr_share *s = &d->share;
	struct dr_share_vcpu *v = &s->vcpu[vcpu];
	uint64_t db[DR_SLOTS] = { 0 }, dr7 = 0;
	memset(v->hw, 0, sizeof(v->hw));
	if (dbg->dr7)
		dr_share_union(s, vcpu, dbg->db, dbg->dr7, db, &dr7, v->hw);
	bool ours = false;
	for (unsigned p = 0; p < DR_SLOTS; p++) {
		ours = ours || v->hw[p].holder == DR_HOLD_DEBUGGER;
		v->hw[p].what = (uint8_t)entry_kind(&d->hw[v->hw[p].entry]);
		v->hw[p].addr = db[p];
	}
	/* nothing of ours: the guest's own file runs natively, unless an
	 * entry waits where MOV DR exits only under our DR7.GD */
	if (!ours && !(s->precise && s->waiting)) {
		dr7 = 0;
		memset(v->hw, 0, sizeof(v->hw));
	}
	memcpy(dbg->db, db, sizeof(db));
	dbg->dr7 = v->hw_dr7 = dr7;
	/* an entry waiting for a slot needs to hear when the guest frees one */
	dbg->intercept_mov_dr = s->precise && (ours || s->waiting);
}

/* In debug_apply_engine (d->lock NOT held): dbg holds the debugger's
 * file by entry; make it this vCPU's union. While the debugger loads
 * nothing the engine runs the guest's own file and nothing is learned. */
void debug_dr_share_load(struct debug *d, unsigned vcpu, struct engine_debug *dbg)
{
	struct dr_share *s = &d->share;
	if (!s->on)
		return;
	if (dbg->dr7)
		debug_dr_share_learn(d, vcpu);
	pthread_mutex_lock(&d->lock);
	unsigned wanted = 0;
	for (unsigned n = 0; n < DR_SLOTS; n++)
		wanted |= (dbg->dr7 & DR7_G(n)) ? 1u << n : 0;
	place_locked(d, wanted);
	union_locked(d, vcpu, dbg);
	s->vcpu[vcpu].gen = s->gen;
	if (s->vcpu[vcpu].rf_lift) {
		dbg->single_step = true;
		dbg->block_irq = true;
	}
	pthread_mutex_unlock(&d->lock);
	stand_ins(d, (int)vcpu, false);
}

/* The guest's slots among bits that are instruction breakpoints. */
static uint64_t exec_bits(struct debug *d, unsigned vcpu, uint64_t bits)
{
	pthread_mutex_lock(&d->lock);
	uint64_t dr7 = d->share.vcpu[vcpu].guest.dr7;
	pthread_mutex_unlock(&d->lock);
	uint64_t exec = 0;
	for (unsigned p = 0; p < DR_SLOTS; p++)
		if ((bits & DR6_B(p)) && (slot_ctl(dr7, p) & 3) == DR7_RW_EXEC)
			exec |= DR6_B(p);
	return exec;
}

/* RF set: hardware would not have raised the guest's instruction
 * breakpoints at this instruction. An engine that did (KVM's instruction
 * emulator checks the debugger's registers without RF) gets them left out
 * for one single-stepped instruction instead. */
static uint64_t suppressed_by_rf(struct debug *d, struct vcpu *vcpu, uint64_t exec)
{
	struct x86_regs regs;
	if (!exec || !d->share.vcpu[vcpu->id].hw_dr7 || debug_vcpu_regs(d, vcpu->id, &regs) < 0 ||
	    !(regs.rflags & RFLAGS_RF))
		return 0;
	pthread_mutex_lock(&d->lock);
	d->share.vcpu[vcpu->id].rf_lift |= (unsigned)exec;
	pthread_mutex_unlock(&d->lock);
	return exec;
}

/* Deliver the guest's own #DB with the DR6 it would see alone. */
static void reflect(struct debug *d, struct vcpu *vcpu, uint64_t hit)
{
	struct x86_state st;
	if (debug_vcpu_get(d, vcpu->id, X86_STATE_DR, &st) < 0)
		return;
	st.dr.dr6 = dr_share_guest_dr6(st.dr.dr6, hit);
	st.dr.dr7 &= ~DR7_GD;          /* as every #DB delivery does */
	debug_vcpu_put(d, vcpu->id, X86_STATE_DR, &st, "the guest's DR6 for its #DB");
	debug_vcpu_inject(d, vcpu->id, X86_DB, "the guest's own #DB");
	pthread_mutex_lock(&d->lock);
	d->share.vcpu[vcpu->id].guest = st.dr;
	d->share.reflected++;
	pthread_mutex_unlock(&d->lock);
}

/* At the start of debug_on_db: the guest's part of the exit goes to the
 * guest; *exit keeps the debugger's (its DR6 by entry). True when
 * nothing is left for the debugger. */
bool debug_dr_share_route_db(struct debug *d, struct vcpu *vcpu, struct vm_exit *exit)
{
	/* no condition at all (INT1): as before, a trap nobody explains */
	if (!d->share.on || !(exit->db.dr6 & (DR6_B_ALL | DR6_STICKY)))
		return false;
	struct dr_share_vcpu *v = &d->share.vcpu[vcpu->id];
	unsigned unexplained = 0;
	for (unsigned p = 0; p < DR_SLOTS; p++)
		if ((exit->db.dr6 & DR6_B(p)) && v->hw[p].holder == DR_HOLD_NONE)
			unexplained |= 1u << p;
	/* while we load nothing the hardware runs the guest's own file */
	if (unexplained)
		debug_dr_share_learn(d, vcpu->id);
	pthread_mutex_lock(&d->lock);
	for (unsigned p = 0; p < DR_SLOTS; p++)
		if (unexplained & (1u << p))
			v->hw[p].holder = DR_HOLD_GUEST;
	bool steps = d->vcpus[vcpu->id].step != DEBUG_STEP_NONE;
	uint64_t dr6 = exit->db.dr6;
	/* the instruction stepped with the guest's slots out is done */
	bool relift = v->rf_lift && (dr6 & DR6_BS);
	if (relift) {
		v->rf_lift = 0;
		if (!steps)
			dr6 &= ~DR6_BS;
	}
	struct dr_route r = dr_share_route(v, dr6, steps);
	pthread_mutex_unlock(&d->lock);
	uint64_t exec = exec_bits(d, vcpu->id, r.guest);
	uint64_t held = suppressed_by_rf(d, vcpu, exec);
	r.guest &= ~held;
	/* an instruction breakpoint of both: the debugger's stop first; the
	 * guest's faults again when the instruction is retried */
	bool fault_both = (r.debugger & DR6_B_ALL) && !(dr6 & DR6_BS) && (r.guest & DR6_B_ALL) &&
			  exec == (r.guest & DR6_B_ALL);
	if (r.guest && !fault_both)
		reflect(d, vcpu, r.guest);
	/* its GD went with the #DB; slots lifted for RF come back or go out */
	if ((r.guest & DR6_BD) || relift || held)
		debug_apply_engine(d, vcpu->id);
	exit->db.dr6 = r.debugger;
	return r.debugger == 0;
}

/* Placement moved: this vCPU loads the new union now, the others at
 * their next entry (kicked out of the engine to get there soon). */
static void placement_moved(struct debug *d, struct vcpu *vcpu)
{
	debug_apply_engine(d, vcpu->id);
	for (unsigned i = 0; i < d->nr_vcpus; i++)
		if (i != vcpu->id && !vm_stopping(d->vm))
			d->vm->engine->vcpu->kick(&d->vm->vcpus[i]);
}

/* Every exit of a vCPU (its own thread): where the engine reports guest
 * MOV DR (precise), learn at that exit; otherwise at every exit while the
 * debugger's slots or steps are loaded (the window: a guest write to its
 * DRs takes effect in the union only at the vCPU's next exit). True when
 * the exit was the arbiter's alone (VM_EXIT_MOV_DR). */
bool debug_dr_share_on_exit(struct debug *d, struct vcpu *vcpu, const struct vm_exit *exit)
{
	struct dr_share *s = &d->share;
	bool mov_dr = exit->reason == VM_EXIT_MOV_DR;
	if (!s->on)
		return mov_dr;
	const struct debug_vcpu *dv = &d->vcpus[vcpu->id];
	bool loaded = dv->applied_valid && (dv->applied.use_hw_bp || dv->applied.single_step ||
					    s->waiting);
	if (!mov_dr && (s->precise || !loaded || exit->reason == VM_EXIT_DB))
		return false;
	if (debug_dr_share_learn(d, vcpu->id)) {
		pthread_mutex_lock(&d->lock);
		bool moved = place_locked(d, s->waiting);
		pthread_mutex_unlock(&d->lock);
		if (moved) {
			stand_ins(d, (int)vcpu->id, false);
			debug_watch_evicted_now(d, vcpu->id);
			placement_moved(d, vcpu);
		} else {
			debug_apply_engine(d, vcpu->id);   /* its own slots changed */
		}
	}
	return mov_dr;
}

/* Before a vCPU enters the engine: load a placement that moved since. */
void debug_dr_share_refresh(struct debug *d, unsigned vcpu)
{
	struct dr_share *s = &d->share;
	if (s->on && __atomic_load_n(&s->vcpu[vcpu].gen, __ATOMIC_RELAXED) !=
		     __atomic_load_n(&s->gen, __ATOMIC_RELAXED))
		debug_apply_engine(d, vcpu);
}

/* ---- monitor info dr ---- */

static const char *entry_owner(unsigned what)
{
	static const char *const names[] = {
		[ENTRY_HBREAK] = "gdb hbreak", [ENTRY_WATCH] = "gdb watchpoint piece",
		[ENTRY_CATCH] = "exception catching", [ENTRY_STEP] = "the step engine",
	};
	return names[what < ENTRY_STEP ? what : ENTRY_STEP];
}

static size_t say(char *out, size_t size, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t say(char *out, size_t size, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *at = out ? out + (n < size ? n : size) : NULL;   /* NULL: the caller measures */
	int k = vsnprintf(at, n < size ? size - n : 0, fmt, ap);
	va_end(ap);
	return n + (k > 0 ? (size_t)k : 0);
}

static size_t describe_vcpu(struct debug *d, unsigned vcpu, char *out, size_t size, size_t n)
{
	const struct dr_share_vcpu *v = &d->share.vcpu[vcpu];
	const struct x86_debugregs *g = &v->guest;
	n = say(out, size, n, "vCPU %u guest: DR0 0x%" PRIx64 " DR1 0x%" PRIx64 " DR2 0x%"
		PRIx64 " DR3 0x%" PRIx64 " DR6 0x%" PRIx64 " DR7 0x%" PRIx64 "\n", vcpu, g->db[0],
		g->db[1], g->db[2], g->db[3], g->dr6, g->dr7);
	for (unsigned p = 0; p < DR_SLOTS; p++) {
		char kind[16];
		const struct dr_slot *slot = &v->hw[p];
		if (!d->share.on) {
			break;
		} else if (slot->holder == DR_HOLD_GUEST) {
			dr_share_slot_kind(g->dr7, p, kind, sizeof(kind));
			n = say(out, size, n, "  DR%u: guest, 0x%" PRIx64 " %s\n", p, g->db[p], kind);
		} else if (slot->holder == DR_HOLD_DEBUGGER) {
			/* gdb takes its breakpoints out at every stop and puts them
			 * back at the resume: this is the last load */
			dr_share_slot_kind(v->hw_dr7, p, kind, sizeof(kind));
			n = say(out, size, n, "  DR%u: %s, 0x%" PRIx64 " %s\n", p,
				entry_owner(slot->what), slot->addr, kind);
		} else {
			n = say(out, size, n, "  DR%u: free\n", p);
		}
	}
	return n;
}

static const char *stand_in_words(uint8_t stand_in)
{
	switch (stand_in) {
	case DEBUG_STAND_IN_INT3:
		return "; an int3 stands in for it meanwhile";
	case DEBUG_STAND_IN_UNMAPPED:
		return "; not mapped, so no int3 can stand in: it stops nothing until a slot frees";
	case DEBUG_STAND_IN_NOT_RAM:
		return "; not in RAM (ROM or MMIO), so no int3 can stand in: it stops nothing "
		       "until a slot frees";
	default:
		return "";
	}
}

/* `monitor info dr`: called stopped; reads every vCPU's guest file. */
size_t debug_dr_describe(struct debug *d, char *out, size_t size)
{
	struct dr_share *s = &d->share;
	size_t n = 0;
	if (s->on)
		n = say(out, size, n, "debug registers: one set per vCPU shared with the guest; the "
			"guest's own use is learned %s\n", s->precise ?
			"at each MOV DR (the engine reports it)" :
			"at every exit and stop (its writes reach the union at the vCPU's next exit)");
	else
		n = say(out, size, n, "debug registers: the debugger has its own set per vCPU; the "
			"guest's DR0-3 are all its own\n");
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		debug_dr_share_learn(d, i);
		pthread_mutex_lock(&d->lock);
		n = describe_vcpu(d, i, out, size, n);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_lock(&d->lock);
	for (unsigned e = 0; e < DR_SLOTS; e++) {
		const struct debug_hw_bp *bp = &d->hw[e];
		if (!bp->used)
			continue;
		if (!s->on)
			n = say(out, size, n, "DR%u (debugger's own): %s, 0x%" PRIx64 "\n", e,
				entry_owner(entry_kind(bp)), bp->addr);
		else if (s->place[e] < 0)
			n = say(out, size, n, "waiting for a free slot: %s, 0x%" PRIx64 "%s\n",
				entry_owner(entry_kind(bp)), bp->addr, stand_in_words(bp->stand_in));
	}
	if (s->on)
		n = say(out, size, n, "moved %lu, waited %lu, guest hits reflected %lu, guest "
			"changes learned %lu\n", s->moves, s->waits, s->reflected, s->learned_changes);
	pthread_mutex_unlock(&d->lock);
	return n;
}
