/* debug/catch.c — stopping when the guest takes an exception the user
 * asked to catch, on any engine. No engine here can hand an arbitrary
 * guest exception to userspace (KVM has no API for it), but every engine
 * can stop at an instruction: so each caught vector's gate is read from
 * each vCPU's IDT and a breakpoint goes on the handler's first instruction
 * — a DR0-3 slot while one is free (invisible to the guest), else an int3
 * in guest memory. Both are entries of the breakpoint tables of break.c,
 * owned by "catch" instead of (or besides) the client, so step-over,
 * hiding the int3 from memory reads and removal on detach come for free.
 *
 * The IDT can change under us (LIDT, a rewritten gate): debug_catch_sync()
 * re-reads IDTR and the caught gates of every vCPU at every resume and
 * re-arms when anything moved. Cost: one sregs read per vCPU plus 16 bytes
 * per caught vector, and nothing at all while nothing is caught.
 *
 * An engine that intercepts exceptions itself (the software engine) can
 * take over behind the same debug_catch_set() later. */
#include "debug/debug_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "x86/desc.h"

int debug_vector_parse(const char *word)
{
	char *end;
	if (isdigit((unsigned char)word[0])) {
		unsigned long v = strtoul(word, &end, 0);
		return *end || v >= DEBUG_NR_VECTORS ? -1 : (int)v;
	}
	const char *w = word[0] == '#' ? word + 1 : word;
	for (unsigned v = 0; v < DEBUG_NR_VECTORS; v++) {
		const char *name = x86_vector_name(v);
		const char *n = name[0] == '#' ? name + 1 : name;
		if (!isdigit((unsigned char)n[0]) && strcasecmp(w, n) == 0)
			return (int)v;
	}
	return -1;
}

/* The exceptions that push an error code (in protected and long mode). */
static bool vector_has_error_code(unsigned v)
{
	return v == X86_DF || (v >= X86_TS && v <= X86_PF) || v == X86_AC || v == 21 ||
	       v == 29 || v == 30;
}

uint32_t debug_catch_mask(const struct debug *d)
{
	return d->catch_mask;
}

/* ---- reading the IDT ---- */

/* Base of the code segment a 32-bit gate names (GDT or LDT descriptor). */
static enum debug_catch_status segment_base(struct debug *d, unsigned vcpu,
					    const struct x86_sregs *s, uint16_t sel,
					    uint64_t *base)
{
	const struct x86_dtable *t = &s->gdt;
	struct x86_dtable ldt = { s->ldt.base, (uint16_t)s->ldt.limit };
	uint8_t desc[8];
	if (sel & SEL_TI_LDT)
		t = &ldt;
	uint32_t off = sel & ~7u;
	if (off + 7u > t->limit)
		return DEBUG_CATCH_BAD_GATE;
	if (debug_mem_read(d, vcpu, t->base + off, desc, sizeof(desc), false) < 0)
		return DEBUG_CATCH_UNREADABLE;
	*base = desc[2] | (uint32_t)desc[3] << 8 | (uint32_t)desc[4] << 16 |
		(uint32_t)desc[7] << 24;
	return DEBUG_CATCH_ARMED;
}

/* The linear address of vector's handler on this vCPU, from its gate. */
static enum debug_catch_status gate_handler(struct debug *d, unsigned vcpu,
					    const struct x86_sregs *s, unsigned v,
					    uint64_t *handler)
{
	bool lm = s->efer & EFER_LMA;
	enum x86_mode mode = lm ? X86_MODE_LONG64 : X86_MODE_PROT32;
	unsigned size = x86_gate_size(mode);
	uint8_t raw[16];

	if (!(s->cr0 & CR0_PE))
		return DEBUG_CATCH_REAL_MODE;
	if ((uint32_t)v * size + size - 1 > s->idt.limit)
		return DEBUG_CATCH_OUTSIDE_IDT;
	if (debug_mem_read(d, vcpu, s->idt.base + (uint64_t)v * size, raw, size, false) < 0)
		return DEBUG_CATCH_UNREADABLE;
	struct x86_gate g = x86_gate_decode(raw, mode);
	if (!g.present)
		return DEBUG_CATCH_NOT_PRESENT;
	if (!x86_gate_is_handler(&g, mode))
		return DEBUG_CATCH_BAD_GATE;     /* task gates: no single handler */
	if (lm) {
		*handler = g.offset;             /* 64-bit code segments have base 0 */
		return DEBUG_CATCH_ARMED;
	}
	uint64_t base;
	enum debug_catch_status st = segment_base(d, vcpu, s, g.selector, &base);
	if (st == DEBUG_CATCH_ARMED)
		*handler = (base + g.offset) & 0xffffffffull;
	return st;
}

/* Where every caught vector's handler is on one vCPU now. */
static void resolve_vcpu(struct debug *d, unsigned vcpu, struct debug_catch_vcpu *out)
{
	struct x86_sregs s;
	bool halted, sipi;

	memset(out, 0, sizeof(*out));
	debug_vcpu_run_state(d, vcpu, &halted, &sipi);
	bool have = debug_vcpu_sregs(d, vcpu, &s) == 0;
	for (unsigned v = 0; v < DEBUG_NR_VECTORS; v++) {
		if (!(d->catch_mask & (1u << v)))
			continue;
		if (sipi)
			out->status[v] = DEBUG_CATCH_WAIT_SIPI;
		else if (!have)
			out->status[v] = DEBUG_CATCH_NO_STATE;
		else
			out->status[v] = gate_handler(d, vcpu, &s, v, &out->handler[v]);
	}
}

/* ---- arming ---- */

void debug_catch_clear(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	for (unsigned i = d->nr_sw; i-- > 0;) {
		struct debug_sw_bp *bp = &d->sw[i];
		bp->catch_vectors = 0;
		if (!debug_sw_owned(bp))
			debug_sw_drop_locked(d, bp);
	}
	for (unsigned n = 0; n < DEBUG_NR_HW_BP; n++) {
		d->hw[n].catch_vectors = 0;
		d->hw[n].used = d->hw[n].client;
	}
	pthread_mutex_unlock(&d->lock);
}

/* Join a breakpoint already at handler, else take a free DR slot. */
static bool place_shared_or_hw_locked(struct debug *d, uint64_t handler, uint32_t bit)
{
	int n = debug_hw_find_locked(d, handler);
	struct debug_sw_bp *sw = debug_sw_find_locked(d, handler);
	if (n >= 0) {
		d->hw[n].catch_vectors |= bit;
		return true;
	}
	if (sw) {
		sw->catch_vectors |= bit;
		return true;
	}
	if (!debug_hw_supported(d))
		return false;
	for (n = 0; n < DEBUG_NR_HW_BP; n++) {
		if (!d->hw[n].used) {
			d->hw[n] = (struct debug_hw_bp){ .addr = handler, .used = true,
							 .catch_vectors = bit };
			return true;
		}
	}
	return false;
}

static bool place(struct debug *d, unsigned vcpu, unsigned v, uint64_t handler)
{
	uint32_t bit = 1u << v;
	pthread_mutex_lock(&d->lock);
	bool done = place_shared_or_hw_locked(d, handler, bit);
	pthread_mutex_unlock(&d->lock);
	if (done)
		return true;
	/* an int3 needs the handler's physical byte (translated unlocked:
	 * reading state takes the lock) */
	uint64_t gpa;
	if (debug_translate(d, vcpu, handler, &gpa) < 0)
		return false;
	struct debug_sw_bp *bp;
	pthread_mutex_lock(&d->lock);
	done = debug_sw_add_locked(d, handler, gpa, &bp, NULL) == 0;
	if (done)
		bp->catch_vectors = bit;
	pthread_mutex_unlock(&d->lock);
	return done;
}

static void arm_all(struct debug *d)
{
	debug_catch_clear(d);
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		struct debug_catch_vcpu *c = &d->catch_at[i];
		for (unsigned v = 0; v < DEBUG_NR_VECTORS; v++)
			if ((d->catch_mask & (1u << v)) && c->status[v] == DEBUG_CATCH_ARMED &&
			    !place(d, i, v, c->handler[v]))
				c->status[v] = DEBUG_CATCH_NO_BREAKPOINT;
	}
}

/* Called with every vCPU parked, before they run. A vector whose
 * breakpoint could not be placed differs from its fresh resolution, so it
 * is retried at every resume (its handler may be mapped by then). */
void debug_catch_sync(struct debug *d)
{
	bool changed = d->catch_dirty;
	if (!d->catch_mask && !changed)
		return;
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		struct debug_catch_vcpu now;
		resolve_vcpu(d, i, &now);
		if (memcmp(&now, &d->catch_at[i], sizeof(now)) != 0) {
			d->catch_at[i] = now;
			changed = true;
		}
	}
	d->catch_dirty = false;
	if (changed)
		arm_all(d);
}

int debug_catch_set(struct debug *d, uint32_t vector_mask, struct err *e)
{
	(void)e;    /* nothing can fail yet: vectors that cannot be armed say why */
	d->catch_mask = vector_mask;
	d->catch_dirty = true;
	debug_catch_sync(d);
	return 0;
}

/* ---- describing ---- */

static const char *status_text(enum debug_catch_status st)
{
	switch (st) {
	case DEBUG_CATCH_ARMED: return "armed";
	case DEBUG_CATCH_NO_STATE: return "registers unreadable";
	case DEBUG_CATCH_REAL_MODE: return "real mode (no IDT gates to follow)";
	case DEBUG_CATCH_WAIT_SIPI: return "not started yet (waiting for SIPI)";
	case DEBUG_CATCH_OUTSIDE_IDT: return "vector beyond the IDT limit";
	case DEBUG_CATCH_UNREADABLE: return "IDT gate or code descriptor not mapped";
	case DEBUG_CATCH_NOT_PRESENT: return "gate not present";
	case DEBUG_CATCH_BAD_GATE: return "task gate or invalid gate";
	case DEBUG_CATCH_NO_BREAKPOINT: return "handler not mapped, or no breakpoint left";
	}
	return "?";
}

/* "DR2" or "int3" for the breakpoint that catches v at handler. */
static const char *mechanism_of(struct debug *d, unsigned v, uint64_t handler, char *buf,
				size_t size)
{
	pthread_mutex_lock(&d->lock);
	int n = debug_hw_find_locked(d, handler);
	const struct debug_sw_bp *sw = debug_sw_find_locked(d, handler);
	if (n >= 0 && (d->hw[n].catch_vectors & (1u << v)))
		snprintf(buf, size, "debug register DR%d", n);
	else if (sw && (sw->catch_vectors & (1u << v)))
		snprintf(buf, size, "int3 in guest memory");
	else
		snprintf(buf, size, "no breakpoint");
	pthread_mutex_unlock(&d->lock);
	return buf;
}

/* Appends "vCPU a-b" style lists of the vCPUs matching (status, handler). */
static void describe_group(struct debug *d, unsigned v, unsigned first, char *out,
			   size_t size)
{
	const struct debug_catch_vcpu *ref = &d->catch_at[first];
	unsigned count = 0;
	for (unsigned i = first; i < d->nr_vcpus; i++)
		count += d->catch_at[i].status[v] == ref->status[v] &&
			 d->catch_at[i].handler[v] == ref->handler[v];
	size_t len = strlen(out);
	char how[64];
	if (ref->status[v] == DEBUG_CATCH_ARMED)
		snprintf(out + len, size - len, "%s (%u): handler 0x%" PRIx64 ", %s, %u of %u vCPUs "
			 "(first vCPU %u)\n", x86_vector_name(v), v, ref->handler[v],
			 mechanism_of(d, v, ref->handler[v], how, sizeof(how)), count, d->nr_vcpus,
			 first);
	else
		snprintf(out + len, size - len, "%s (%u): not armed on %u of %u vCPUs (first vCPU "
			 "%u): %s\n", x86_vector_name(v), v, count, d->nr_vcpus, first,
			 status_text(ref->status[v]));
}

void debug_catch_describe(struct debug *d, unsigned vector, char *out, size_t size)
{
	out[0] = '\0';
	if (vector >= DEBUG_NR_VECTORS || !(d->catch_mask & (1u << vector)))
		return;
	for (unsigned i = 0; i < d->nr_vcpus; i++) {
		bool seen = false;
		for (unsigned j = 0; j < i && !seen; j++)
			seen = d->catch_at[j].status[vector] == d->catch_at[i].status[vector] &&
			       d->catch_at[j].handler[vector] == d->catch_at[i].handler[vector];
		if (!seen)
			describe_group(d, vector, i, out, size);
	}
}

static uint64_t le_value(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

void debug_catch_explain(struct debug *d, const struct debug_event *ev, char *out, size_t size)
{
	struct debug_cpu_state st;
	unsigned v = ev->vector;
	const char *name = x86_vector_name(v) ? x86_vector_name(v) : "?";

	if (debug_read_state(d, ev->vcpu, &st) < 0) {
		snprintf(out, size, "vCPU %u took %s; stopped at its handler 0x%" PRIx64 "\n",
			 ev->vcpu, name, ev->addr);
		return;
	}
	/* the frame the CPU pushed: [error code], rip, cs, rflags (8-byte
	 * slots in long mode, 4-byte ones in 32-bit protected mode) */
	unsigned slot = (st.sregs.efer & EFER_LMA) ? 8 : 4;
	bool has_err = vector_has_error_code(v);
	uint8_t frame[16];
	char detail[96] = "";
	uint64_t sp = slot == 8 ? st.regs.rsp : st.sregs.ss.base + (uint32_t)st.regs.rsp;
	if (debug_mem_read(d, ev->vcpu, sp, frame, slot * (has_err ? 2 : 1), false) < 0) {
		snprintf(out, size, "vCPU %u took %s (its frame on the stack is not readable); "
			 "stopped at its handler 0x%" PRIx64 "\n", ev->vcpu, name, ev->addr);
		return;
	}
	if (has_err)
		snprintf(detail, sizeof(detail), ", error code 0x%" PRIx64, le_value(frame, slot));
	if (v == X86_PF) {
		size_t l = strlen(detail);
		snprintf(detail + l, sizeof(detail) - l, ", cr2 0x%" PRIx64, st.sregs.cr2);
	}
	uint64_t rip = le_value(frame + (has_err ? slot : 0), slot);
	snprintf(out, size, "vCPU %u took %s%s at rip 0x%" PRIx64 "; stopped at its handler 0x%"
		 PRIx64 "\n", ev->vcpu, name, detail, rip, ev->addr);
}

/* ---- accesses: ports, MSRs, control registers ---- */

static const char *const access_kind_names[ENGINE_ACCESS_KINDS] = {
	[ENGINE_ACCESS_IO] = "port", [ENGINE_ACCESS_MSR] = "MSR", [ENGINE_ACCESS_CR] = "CR",
};

/* The engine's word on the catches with this rule added: its own check
 * where it has one (a host without the means, a range it cannot watch:
 * why, in words), else the kinds its caps name. */
static int access_allowed(struct debug *d, const struct engine_access_rule *rule, struct err *e)
{
	const struct engine_caps *caps;
	const struct engine_debug_ops *eng = d->vm->engine->debug;
	struct engine_access_filter f;
	if (debug_caps(d, &caps, e) < 0)
		return -e->code;
	pthread_mutex_lock(&d->lock);
	f = d->access;
	pthread_mutex_unlock(&d->lock);
	if (f.nr >= ENGINE_ACCESS_RULES)
		return err_set(e, ENOSPC, "%u access catches at most", ENGINE_ACCESS_RULES);
	f.rule[f.nr++] = *rule;
	if (eng && eng->check_access)
		return eng->check_access(d->vm, &f, e);
	if (!(caps->catch_access & (1u << rule->kind)))
		return err_set(e, ENOTSUP, "the %s engine cannot catch %s accesses here "
			       "(monitor info caps says what it can)", d->vm->engine->name,
			       access_kind_names[rule->kind]);
	return 0;
}

int debug_catch_access_add(struct debug *d, enum engine_access_kind kind, uint32_t first,
			   uint32_t last, bool read, bool write, struct err *e)
{
	struct engine_access_rule rule;
	if (kind >= ENGINE_ACCESS_KINDS || first > last || (!read && !write))
		return err_set(e, EINVAL, "an empty access catch");
	/* field by field on zeroed memory: engine_debug is compared bytewise */
	memset(&rule, 0, sizeof(rule));
	rule.kind = (uint8_t)kind;
	rule.first = first;
	rule.last = last;
	rule.read = read;
	rule.write = write;
	int r = access_allowed(d, &rule, e);
	if (r < 0)
		return r;
	pthread_mutex_lock(&d->lock);
	if (d->access.nr >= ENGINE_ACCESS_RULES)
		r = err_set(e, ENOSPC, "%u access catches at most", ENGINE_ACCESS_RULES);
	else
		d->access.rule[d->access.nr++] = rule;
	pthread_mutex_unlock(&d->lock);
	return r;
}

void debug_catch_access_clear(struct debug *d)
{
	pthread_mutex_lock(&d->lock);
	memset(&d->access, 0, sizeof(d->access));
	pthread_mutex_unlock(&d->lock);
}

unsigned debug_catch_access_count(const struct debug *d)
{
	return d->access.nr;
}

void debug_catch_access_describe(struct debug *d, char *out, size_t size)
{
	size_t len = 0;
	out[0] = '\0';
	pthread_mutex_lock(&d->lock);
	for (unsigned i = 0; i < d->access.nr && len < size; i++) {
		const struct engine_access_rule *r = &d->access.rule[i];
		char range[32];
		if (r->first == r->last)
			snprintf(range, sizeof(range), r->kind == ENGINE_ACCESS_CR ? "%u" : "0x%x",
				 r->first);
		else
			snprintf(range, sizeof(range), "0x%x-0x%x", r->first, r->last);
		len += (size_t)snprintf(out + len, size - len, "%s %s: %s\n",
					access_kind_names[r->kind], range,
					r->read && r->write ? "reads and writes" :
					r->read ? "reads" : "writes");
	}
	pthread_mutex_unlock(&d->lock);
}

void debug_catch_access_explain(const struct debug_event *ev, char *out, size_t size)
{
	const struct debug_access *a = &ev->access;
	const char *verb = a->is_write ? "wrote" : "read";
	const char *dir = a->is_write ? "to" : "from";
	switch (a->kind) {
	case ENGINE_ACCESS_IO:
		snprintf(out, size, "vCPU %u %s 0x%" PRIx64 " %s port 0x%x (%u byte%s) at 0x%"
			 PRIx64 "; stopped after it\n", ev->vcpu, verb, a->value, dir, a->index,
			 a->size, a->size == 1 ? "" : "s", ev->addr);
		break;
	case ENGINE_ACCESS_MSR:
		snprintf(out, size, "vCPU %u %s 0x%" PRIx64 " %s MSR 0x%x at 0x%" PRIx64
			 "; stopped after it\n", ev->vcpu, verb, a->value, dir, a->index, ev->addr);
		break;
	default:
		snprintf(out, size, "vCPU %u wrote 0x%" PRIx64 " to CR%u at 0x%" PRIx64
			 "; stopped after it\n", ev->vcpu, a->value, a->index, ev->addr);
		break;
	}
}

void debug_catch_access_caps(struct debug *d, char *out, size_t size)
{
	const struct engine_caps *caps;
	struct err e = { 0 };
	if (debug_caps(d, &caps, &e) < 0) {
		snprintf(out, size, "unknown (%s)", e.msg);
		return;
	}
	snprintf(out, size, "io %s, msr %s, cr %s",
		 caps->catch_access & (1u << ENGINE_ACCESS_IO) ? "yes" : "no",
		 caps->catch_access & (1u << ENGINE_ACCESS_MSR) ? "yes" : "no",
		 caps->catch_access & (1u << ENGINE_ACCESS_CR) ? "yes" : "no");
}

/* ---- output catching ---- */

int debug_catch_output_set(struct debug *d, const char *pattern, struct err *e)
{
	return output_watch_set(&d->vm->output_watch, pattern, e);
}

void debug_catch_output_clear(struct debug *d)
{
	output_watch_clear(&d->vm->output_watch);
}

bool debug_catch_output_pattern(struct debug *d, char *out, size_t size)
{
	return output_watch_pattern(&d->vm->output_watch, out, size);
}

void debug_catch_output_explain(struct debug *d, const struct debug_event *ev, char *out,
				size_t size)
{
	char pattern[sizeof(d->vm->output_watch.pattern)];
	output_watch_pattern(&d->vm->output_watch, pattern, sizeof(pattern));
	pthread_mutex_lock(&d->lock);
	snprintf(out, size, "vCPU %u's serial output matched /%s/: \"%s\"; stopped after the "
		 "write\n", ev->vcpu, pattern, d->vcpus[ev->vcpu].output_line);
	pthread_mutex_unlock(&d->lock);
}
