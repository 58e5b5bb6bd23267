/* engine/kvm/kvm_probe.c — `vmdb --probe` for KVM: what this host's KVM
 * really does for a debugger. Capability flags answer some questions; the
 * rest are found out by running a tiny guest (kvm_guest.c) and looking at
 * the exits. Every probe run is bounded by a watchdog, so a guest that
 * hangs cannot hang vmdb. */
#include "engine/kvm/kvm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define PROBE_TIMEOUT_MS 1000
#define PROBE_RO_GPA     KVM_TINY_RAM_SIZE      /* one read-only page after RAM */

/* Hand-assembled pieces of the probe scripts (64-bit). */
#define I_NOP          0x90
#define I_OUT_DONE     0xe6, KVM_TINY_PORT_DONE          /* out 0xe0, al */
#define I_HLT          0xf4
#define I_STORE_AL(a)  0x88, 0x04, 0x25, (uint8_t)(a), (uint8_t)((a) >> 8), \
		       (uint8_t)((a) >> 16), (uint8_t)((a) >> 24)   /* mov [a32], al */
#define I_MOV_EAX(v)   0xb8, (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), \
		       (uint8_t)((v) >> 24)                      /* mov eax, imm32 */
#define I_MOV_DR7_RAX  0x0f, 0x23, 0xf8                          /* mov dr7, rax */
#define I_MOV_RAX_DR0  0x0f, 0x21, 0xc0                          /* mov rax, dr0 */
#define I_ADDR32(a)    (uint8_t)(a), (uint8_t)((a) >> 8), (uint8_t)((a) >> 16), \
		       (uint8_t)((a) >> 24)
#define I_MOV_ECX(v)   0xb9, I_ADDR32(v)                         /* mov ecx, imm32 */
#define I_MOV_MEM32(a, v) 0xc7, 0x04, 0x25, I_ADDR32(a), I_ADDR32(v) /* mov dword [a32], imm32 */

struct probe_finding {
	bool present;
	char how[160];
};

static void probe_say(struct probe_finding *f, bool present, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void probe_say(struct probe_finding *f, bool present, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->how, sizeof(f->how), fmt, ap);
	va_end(ap);
	f->present = present;
}

/* "an IO exit on port 0xe0", "a debug exception exit (DR6 0x...)": for
 * findings that did not go as hoped. */
static void probe_describe_exit(const struct kvm_tiny_guest *g, const struct vm_exit *x,
				char *buf, size_t size)
{
	switch (x->reason) {
	case VM_EXIT_IO:
		if (x->io.port == KVM_TINY_PORT_DONE) {
			snprintf(buf, size, "the guest ran to its end");
			return;
		}
		if (x->io.port == KVM_TINY_PORT_VECTOR) {
			struct x86_regs regs;
			unsigned vector = kvm_op_get_regs(g->vcpu, &regs) == 0 ? (unsigned)regs.rbx : 99;
			snprintf(buf, size, "exception %u went to the guest", vector);
			return;
		}
		snprintf(buf, size, "port I/O on 0x%x", x->io.port);
		return;
	case VM_EXIT_KICKED:
		snprintf(buf, size, "the guest did not finish within %u ms", PROBE_TIMEOUT_MS);
		return;
	case VM_EXIT_DB:
		if (x->db.pc >= KVM_TINY_STUBS && x->db.pc < KVM_TINY_STUBS + 32 * 32) {
			snprintf(buf, size, "exception %u went to the guest",
				 (unsigned)((x->db.pc - KVM_TINY_STUBS) / 32));
			return;
		}
		snprintf(buf, size, "debug exit with DR6 0x%llx", (unsigned long long)x->db.dr6);
		return;
	case VM_EXIT_EMULATION_FAILURE:
		snprintf(buf, size, "the host's emulator failed at 0x%llx",
			 (unsigned long long)x->failure.pc);
		return;
	default:
		snprintf(buf, size, "%s exit", vm_exit_reason_name(x->reason));
		return;
	}
}

/* Fresh VM, load the script, apply the debug request, run once. */
static int probe_run_script(struct kvm_tiny_guest *g, const uint8_t *code, size_t len,
			    const struct engine_debug *dbg, struct vm_exit *x, struct err *e)
{
	int r = g->user ? kvm_tiny_load_user(g, code, len, e) : kvm_tiny_load(g, code, len, e);
	if (r < 0)
		return r;
	r = kvm_op_set_debug(g->vcpu, dbg);
	if (r < 0)
		return err_set(e, -r, "KVM_SET_GUEST_DEBUG: %s", strerror(-r));
	r = kvm_tiny_run(g, x, PROBE_TIMEOUT_MS);
	if (r < 0)
		return err_set(e, -r, "KVM_RUN: %s", strerror(-r));
	return 0;
}

static int probe_single_step(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = { I_NOP, I_NOP, I_NOP, I_OUT_DONE, I_HLT };
	struct engine_debug dbg = { .single_step = true };
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	for (unsigned step = 1; r == 0; step++) {
		if (x.reason != VM_EXIT_DB || !(x.db.dr6 & DR6_BS) || x.db.pc != KVM_TINY_CODE + step) {
			char what[96];
			probe_describe_exit(g, &x, what, sizeof(what));
			probe_say(f, false, "SINGLESTEP, instruction %u: %s", step, what);
			return 0;
		}
		if (step == 3) {
			probe_say(f, true, "3 guest instructions, 3 debug exits with DR6.BS");
			return 0;
		}
		r = kvm_tiny_run(g, &x, PROBE_TIMEOUT_MS);
		if (r < 0)
			r = err_set(e, -r, "KVM_RUN: %s", strerror(-r));
	}
	return r;
}

static void probe_block_irq(const struct kvm_host_caps *c, struct probe_finding *f)
{
	if (c->guest_debug2 == 0)
		probe_say(f, false, "no KVM_CAP_SET_GUEST_DEBUG2");
	else if (c->guest_debug2 & KVM_GUESTDBG_BLOCKIRQ)
		probe_say(f, true, "KVM_CAP_SET_GUEST_DEBUG2 lists KVM_GUESTDBG_BLOCKIRQ");
	else
		probe_say(f, false, "KVM_CAP_SET_GUEST_DEBUG2 does not list KVM_GUESTDBG_BLOCKIRQ");
}

static int probe_hw_exec(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = { I_NOP, I_NOP, I_OUT_DONE, I_HLT };
	struct engine_debug dbg = {
		.use_hw_bp = true,
		.db = { KVM_TINY_CODE + 1 },
		.dr7 = DR7_FIXED1 | DR7_L(0) | DR7_RW(0, DR7_RW_EXEC) | DR7_LEN(0, DR7_LEN_1),
	};
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (r < 0)
		return r;
	if (x.reason == VM_EXIT_DB && (x.db.dr6 & DR6_B(0)) && x.db.pc == KVM_TINY_CODE + 1) {
		probe_say(f, true, "execution breakpoint in DR0: debug exit with DR6.B0 at it");
		return 0;
	}
	char what[96];
	probe_describe_exit(g, &x, what, sizeof(what));
	probe_say(f, false, "execution breakpoint in DR0: %s", what);
	return 0;
}

/* USE_SW_BP: does a guest INT3 exit to userspace as #BP? (In ring 0 on
 * hosts like ours the emulator fails on INT3 instead, which run() reports
 * as VM_EXIT_BPT too; this probe is about the interception itself.) */
static int probe_int3(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = { I_NOP, 0xcc, I_NOP, I_OUT_DONE, I_HLT };
	struct engine_debug dbg = { .intercept_bpt = true };
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (r < 0)
		return r;
	if (x.reason == VM_EXIT_BPT && x.bpt.pc == KVM_TINY_CODE + 1 &&
	    kvm_vcpu_of(g->vcpu)->run->exit_reason == KVM_EXIT_DEBUG) {
		probe_say(f, true, "USE_SW_BP: guest INT3 gave a #BP debug exit");
		return 0;
	}
	char what[96];
	probe_describe_exit(g, &x, what, sizeof(what));
	probe_say(f, false, "USE_SW_BP, guest INT3: %s", what);
	return 0;
}

static int probe_hw_data(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = { I_STORE_AL(KVM_TINY_DATA), I_NOP, I_OUT_DONE, I_HLT };
	struct engine_debug dbg = {
		.use_hw_bp = true,
		.db = { KVM_TINY_DATA },
		.dr7 = DR7_FIXED1 | DR7_L(0) | DR7_RW(0, DR7_RW_WRITE) | DR7_LEN(0, DR7_LEN_1),
	};
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (r < 0)
		return r;
	if (x.reason == VM_EXIT_DB && (x.db.dr6 & DR6_B(0))) {
		probe_say(f, true, "guest wrote a watched address: debug exit with DR6.B0");
		return 0;
	}
	if (x.reason == VM_EXIT_IO && x.io.port == KVM_TINY_PORT_DONE) {
		probe_say(f, false, "guest wrote a watched address, no exit");
		return 0;
	}
	char what[96];
	probe_describe_exit(g, &x, what, sizeof(what));
	probe_say(f, false, "guest wrote a watched address: %s", what);
	return 0;
}

/* The debugger sets DR7.GD (that is what the debug core would do to
 * intercept the guest's debug-register accesses), the guest sets it too,
 * then reads DR0. On bare-metal Intel KVM the first MOV DR exits with
 * DR6.BD. */
static int probe_gd(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = {
		I_MOV_EAX(DR7_GD | DR7_FIXED1), I_MOV_DR7_RAX, I_MOV_RAX_DR0, I_OUT_DONE, I_HLT,
	};
	struct engine_debug dbg = { .use_hw_bp = true, .dr7 = DR7_FIXED1 | DR7_GD };
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (r < 0)
		return r;
	if (x.reason == VM_EXIT_DB && (x.db.dr6 & DR6_BD)) {
		probe_say(f, true, "guest MOV DR with DR7.GD set: debug exit with DR6.BD");
		return 0;
	}
	char what[96];
	probe_describe_exit(g, &x, what, sizeof(what));
	probe_say(f, false, "guest MOV DR with DR7.GD set, no exit: %s", what);
	return 0;
}

static void probe_readonly_run(struct kvm_tiny_guest *g, void *page, struct probe_finding *f,
			       struct err *e, int *r)
{
	static const uint8_t code[] = { 0xb0, 0x5a, I_STORE_AL(PROBE_RO_GPA), I_OUT_DONE, I_HLT };
	struct engine_debug dbg = { 0 };
	struct vm_exit x;
	*r = kvm_op_map_memory(g->vm, PROBE_RO_GPA, 4096, page, true, e);
	if (*r == 0)
		*r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (*r < 0)
		return;
	if (x.reason == VM_EXIT_MMIO && x.mmio.is_write && x.mmio.gpa == PROBE_RO_GPA &&
	    x.mmio.len == 1 && x.mmio.data[0] == 0x5a) {
		probe_say(f, true, "guest write to a read-only slot: MMIO exit with its address "
			  "and data");
		return;
	}
	char what[96];
	probe_describe_exit(g, &x, what, sizeof(what));
	probe_say(f, false, "guest write to a read-only slot: %s", what);
}

/* Its own VM: the read-only page must outlive the slot that maps it. */
static int probe_readonly(const struct emu_single_ops *assist, const struct kvm_host_caps *c,
			  struct probe_finding *f, struct err *e)
{
	if (!c->readonly_mem) {
		probe_say(f, false, "no KVM_CAP_READONLY_MEM");
		return 0;
	}
	void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return err_set(e, errno, "cannot allocate the read-only probe page");
	struct kvm_tiny_guest g;
	struct err ge = { 0 };
	int r = 0;
	if (kvm_tiny_create(&g, assist, &ge) < 0) {
		probe_say(f, false, "could not start a probe guest: %s", ge.msg);
	} else {
		probe_readonly_run(&g, page, f, e, &r);
		kvm_tiny_destroy(&g);
	}
	munmap(page, 4096);
	return r;
}

/* --- ring 0 on this host: natively, or in the host's instruction emulator --- */

#define RATE_LOOPS 5000u                  /* dec ecx; jnz: 2 instructions each */
#define RATE_INSNS (2u * RATE_LOOPS + 2u) /* + the mov and the out */

static uint64_t probe_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A warm-up run first (the host maps the probe's pages on first touch),
 * then the loop, timed around KVM_RUN. */
static int rate_run(struct kvm_tiny_guest *g, double *per_second, struct err *e)
{
	static const uint8_t warm[] = { I_OUT_DONE, I_HLT };
	static const uint8_t loop[] = {
		I_MOV_ECX(RATE_LOOPS),
		0xff, 0xc9,                       /* 1: dec ecx */
		0x75, 0xfc,                       /* jnz 1b */
		I_OUT_DONE, I_HLT,
	};
	struct engine_debug dbg = { 0 };
	struct vm_exit x;
	int r = probe_run_script(g, warm, sizeof(warm), &dbg, &x, e);
	if (r < 0)
		return r;
	if ((r = kvm_tiny_load(g, loop, sizeof(loop), e)) < 0)
		return r;
	uint64_t t0 = probe_now_ns();
	r = kvm_tiny_run(g, &x, PROBE_TIMEOUT_MS);
	uint64_t ns = probe_now_ns() - t0;
	if (r < 0)
		return err_set(e, -r, "KVM_RUN: %s", strerror(-r));
	if (x.reason != VM_EXIT_IO || x.io.port != KVM_TINY_PORT_DONE) {
		char what[96];
		probe_describe_exit(g, &x, what, sizeof(what));
		return err_set(e, EIO, "the ring-0 loop did not finish: %s", what);
	}
	*per_second = (double)RATE_INSNS * 1e9 / (double)(ns ? ns : 1);
	return 0;
}

/* At or above this, ring 0 runs natively (--engine auto picks kvm): far
 * above any host emulator, far below native speed even counting the exit
 * that ends the loop. */
#define NATIVE_RING0_RATE 20e6

/* Guest ring-0 instructions per second on this host, timed in a probe
 * guest (a 10k-instruction loop, ~7 ms here): native hosts give hundreds
 * of millions even counting the exit, hosts whose KVM emulates ring 0
 * (nested, like ours) about 1.5 million. caps->ring0_rate stays 0 where
 * the loop could not be timed. */
static void probe_ring0_native(struct kvm_tiny_guest *g, struct engine_caps *caps,
			       struct probe_finding *f)
{
	double rate = 0;
	struct err e = { 0 };
	if (rate_run(g, &rate, &e) < 0) {
		probe_say(f, false, "could not time a ring-0 loop: %s", e.msg);
		return;
	}
	bool native = rate >= NATIVE_RING0_RATE;
	caps->ring0_rate = rate;
	caps->ring0_native = native;
	probe_say(f, native, "a %u-instruction ring-0 loop ran at %.1fM instructions/s: %s",
		  RATE_INSNS, rate / 1e6,
		  native ? "natively" : "the host emulates guest ring-0 code");
}

/* Ring-0 instructions the host's emulator is known to lack, ending with an
 * INT3 whose #BP reaches the tiny guest's stub (it reports the vector and
 * the frame's RIP on KVM_TINY_PORT_VECTOR). With the fallback, those the
 * host gave up on were counted by kvm_fallback.c. */
static int probe_fallback(struct kvm_tiny_guest *g, struct probe_finding *f, struct err *e)
{
	static const uint8_t code[] = {
		I_MOV_MEM32(KVM_TINY_DATA + 16, 0x1f80),      /* a valid MXCSR image */
		0xf3, 0x48, 0x0f, 0xb8, 0xc3,                 /* popcnt rax, rbx */
		0xf0, 0x48, 0x0f, 0xc7, 0x0c, 0x25, I_ADDR32(KVM_TINY_DATA), /* lock cmpxchg16b */
		0x0f, 0xae, 0x14, 0x25, I_ADDR32(KVM_TINY_DATA + 16),      /* ldmxcsr */
		0x9b,                                         /* fwait */
		0xcc,                                         /* int3 */
		I_OUT_DONE, I_HLT,
	};
	const uint64_t after_int3 = KVM_TINY_CODE + sizeof(code) - 3;
	struct engine_debug dbg = { 0 };
	struct vm_exit x;
	int r = probe_run_script(g, code, sizeof(code), &dbg, &x, e);
	if (r < 0)
		return r;
	struct x86_regs regs = { 0 };
	kvm_op_get_regs(g->vcpu, &regs);
	struct engine_fallback_stats st;
	if (kvm_op_fallback_stats(g->vcpu, &st) < 0) {
		char what[96];
		probe_describe_exit(g, &x, what, sizeof(what));
		probe_say(f, x.reason == VM_EXIT_EMULATION_FAILURE,
			  "POPCNT, CMPXCHG16B, LDMXCSR, FWAIT, INT3: %s; no emu to hand them to",
			  what);
		return 0;
	}
	bool bp_ok = x.reason == VM_EXIT_IO && x.io.port == KVM_TINY_PORT_VECTOR &&
		     regs.rbx == X86_BP && regs.rax == after_int3;
	char names[128] = "";
	size_t n = 0;
	for (unsigned i = 0; i < st.nr && n < sizeof(names); i++)
		n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "",
				      st.insn[i].name);
	if (!bp_ok) {
		char what[96];
		probe_describe_exit(g, &x, what, sizeof(what));
		probe_say(f, st.total > 0, "%s%sthe probe did not end in its #BP handler: %s",
			  names, n ? "; " : "", what);
	} else if (st.total == 0) {
		probe_say(f, false, "none of POPCNT, CMPXCHG16B, LDMXCSR, FWAIT, INT3");
	} else {
		probe_say(f, true, "%s: run by emu, one instruction at a time", names);
	}
	return 0;
}

static const char *probe_cpuid_words(enum kvm_cpuid_avx a)
{
	return a == KVM_CPUID_HOST_AVX ? "AVX all the same (the host CPU's bits)"
				       : "no AVX, as the table says";
}

/* The guest's CPUID leaf 1 with AVX taken out of the vCPU's table, in
 * ring 0 and in ring 3. Where ring 0 answers with the host CPU's bits,
 * Linux runs AVX in ring 0 (linux_params adds noxsave). */
static void probe_cpuid(const struct emu_single_ops *assist, struct probe_finding *f)
{
	enum kvm_cpuid_avx ring0, ring3;
	struct err e = { 0 };
	if (kvm_cpuid_probe_avx(assist, false, &ring0, &e) < 0 ||
	    kvm_cpuid_probe_avx(assist, true, &ring3, &e) < 0) {
		probe_say(f, false, "could not ask: %s", e.msg);
		return;
	}
	probe_say(f, ring0 != KVM_CPUID_HOST_AVX && ring3 != KVM_CPUID_HOST_AVX,
		  "leaf 1 without AVX in the table: ring 0 says %s; ring 3 says %s",
		  probe_cpuid_words(ring0), probe_cpuid_words(ring3));
}

static void probe_record(struct engine_report *report, const char *name,
			 const struct probe_finding *f)
{
	if (report->nr >= ENGINE_MAX_FEATURES)
		return;
	struct engine_feature *out = &report->features[report->nr++];
	out->name = name;
	out->present = f->present;
	snprintf(out->how, sizeof(out->how), "%s", f->how);
}

typedef int (*probe_guest_fn)(struct kvm_tiny_guest *g, struct probe_finding *f,
			      struct err *e);

/* Each guest probe gets a fresh VM, so no state leaks from one to the
 * next. A probe that cannot even start its VM reports "no" with why. */
static int probe_with_guest(probe_guest_fn fn, bool user, const struct emu_single_ops *assist,
			    struct probe_finding *f, struct err *e)
{
	struct kvm_tiny_guest g;
	struct err ge = { 0 };
	if (kvm_tiny_create(&g, assist, &ge) < 0) {
		probe_say(f, false, "could not start a probe guest: %s", ge.msg);
		return 0;
	}
	g.user = user;
	int r = fn(&g, f, e);
	kvm_tiny_destroy(&g);
	return r;
}

/* Port I/O that KVM does not serve itself exits to vmdb, which catches
 * it; in-kernel devices' ports (PIC, PIT) never leave the kernel. MSRs
 * through KVM's MSR filter where the host has it (kvm_msr_catch.c). */
static void probe_access(const struct kvm_host_caps *c, struct engine_caps *caps,
			 struct probe_finding *f)
{
	caps->catch_access = 1u << ENGINE_ACCESS_IO;
	if (c->msr_filter)
		caps->catch_access |= 1u << ENGINE_ACCESS_MSR;
	probe_say(f, true, "io: ports served by vmdb's devices (not the in-kernel PIC/PIT); "
		  "msr: %s; cr: no (KVM has no CR-write exit)",
		  c->msr_filter ? "yes (KVM's MSR filter sends the caught MSRs to vmdb)"
				: "no (host KVM has no MSR filter)");
}

static const char *const probe_names[] = {
	"single-step exits", "BLOCKIRQ", "hardware execution breakpoints",
	"hardware data breakpoints", "DR7.GD trapping of guest MOV DR",
	"read-only memory slots", "in-kernel irqchip", "max vCPUs",
	/* guest ring 3 runs natively on hosts
	 * where ring 0 is emulated, and debug behaves differently there */
	"single-step exits in ring 3", "hardware execution breakpoints in ring 3",
	"INT3 interception in ring 3",
	/* what --engine auto and the emu fallback rest on */
	"native ring-0 execution", "instructions the host cannot emulate in ring 0",
	"access catching (io, msr, cr)",
	"guest CPUID follows vmdb's table",
	"kvmclock told of debugger pauses",
};
#define PROBE_NR      (sizeof(probe_names) / sizeof(probe_names[0]))
#define PROBE_ACCESS  13
#define PROBE_CPUID   14
#define PROBE_KVMCLOCK 15

/* The findings engine_caps is made of (BLOCKIRQ, data breakpoints,
 * DR7.GD, native ring 0): two probe guests and a timed one. Every probe
 * guest has the assist a VM of this engine would have. */
static int probe_caps(const struct emu_single_ops *assist, const struct kvm_host_caps *c,
		      struct engine_caps *caps, struct probe_finding *f, struct err *e)
{
	int r;
	probe_block_irq(c, &f[1]);
	if ((r = probe_with_guest(probe_hw_data, false, assist, &f[3], e)) < 0)
		return err_wrap(e, "probing hardware data breakpoints");
	/* DR7.GD's guest times the loop first, before any debug state: a VM
	 * costs this host several times the loop (~35 ms against ~7) */
	struct kvm_tiny_guest g;
	struct err ge = { 0 };
	if (kvm_tiny_create(&g, assist, &ge) < 0) {
		probe_say(&f[4], false, "could not start a probe guest: %s", ge.msg);
		probe_say(&f[11], false, "could not start a probe guest: %s", ge.msg);
		return 0;
	}
	probe_ring0_native(&g, caps, &f[11]);
	r = probe_gd(&g, &f[4], e);
	kvm_tiny_destroy(&g);
	return r < 0 ? err_wrap(e, "probing DR7.GD") : 0;
}

/* The findings only the user reads: seven more probe guests. */
static int probe_more(const struct emu_single_ops *assist, const struct kvm_host_caps *c,
		      struct probe_finding *f, struct err *e)
{
	int r;
	if ((r = probe_with_guest(probe_single_step, false, assist, &f[0], e)) < 0)
		return err_wrap(e, "probing single-step");
	if ((r = probe_with_guest(probe_hw_exec, false, assist, &f[2], e)) < 0)
		return err_wrap(e, "probing hardware execution breakpoints");
	if ((r = probe_readonly(assist, c, &f[5], e)) < 0)
		return err_wrap(e, "probing read-only memory");
	probe_say(&f[6], c->irqchip, c->irqchip ? "KVM_CAP_IRQCHIP" : "no KVM_CAP_IRQCHIP");
	probe_say(&f[7], true, "%u (KVM_CAP_MAX_VCPUS)", c->max_vcpus);
	if ((r = probe_with_guest(probe_single_step, true, assist, &f[8], e)) < 0 ||
	    (r = probe_with_guest(probe_hw_exec, true, assist, &f[9], e)) < 0 ||
	    (r = probe_with_guest(probe_int3, true, assist, &f[10], e)) < 0)
		return err_wrap(e, "probing ring 3");
	if ((r = probe_with_guest(probe_fallback, false, assist, &f[12], e)) < 0)
		return err_wrap(e, "probing the emu fallback");
	probe_cpuid(assist, &f[PROBE_CPUID]);
	probe_say(&f[PROBE_KVMCLOCK], c->kvmclock_ctrl, c->kvmclock_ctrl
		  ? "KVM_CAP_KVMCLOCK_CTRL: a vCPU gdb held finds PVCLOCK_GUEST_STOPPED in its "
		    "pvclock page, and Linux forgives the gap"
		  : "no KVM_CAP_KVMCLOCK_CTRL: a Linux guest held by gdb reports soft lockups");
	return 0;
}

int kvm_op_probe(const struct emu_single_ops *assist, struct engine_caps *caps,
		 struct engine_report *report, struct err *e)
{
	memset(caps, 0, sizeof(*caps));
	struct kvm_host_caps c;
	int r = kvm_query_host_caps(&c, e);
	if (r < 0)
		return r;

	struct probe_finding f[PROBE_NR];
	memset(f, 0, sizeof(f));
	if ((r = probe_caps(assist, &c, caps, f, e)) < 0)
		return r;
	probe_access(&c, caps, &f[PROBE_ACCESS]);
	caps->step_block_irq = f[1].present;
	caps->hw_data_bp = f[3].present;
	caps->gd_trap = f[4].present;
	caps->shared_dr = true;      /* KVM_SET_GUEST_DEBUG loads the guest's DR0-3 slots */
	if (!report)
		return 0;
	if ((r = probe_more(assist, &c, f, e)) < 0)
		return r;
	memset(report, 0, sizeof(*report));
	for (unsigned i = 0; i < PROBE_NR; i++)
		probe_record(report, probe_names[i], &f[i]);
	return 0;
}
