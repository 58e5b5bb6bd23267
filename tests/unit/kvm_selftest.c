/* tests/unit/kvm_selftest.c — the KVM engine on this host's real /dev/kvm,
 * without machine/: a one-vCPU tiny guest (engine/kvm/kvm_guest.c) runs
 * scripts of hand-assembled 64-bit code and each test checks the exits.
 * A host without /dev/kvm skips (exit 77), it does not fail. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "engine/kvm/kvm.h"
#include "x86/paging.h"

static int failures;

#define CHECK_EQ(got, want)                                                           \
	do {                                                                          \
		uint64_t g_ = (uint64_t)(got), w_ = (uint64_t)(want);                 \
		if (g_ != w_) {                                                       \
			printf("  %s:%d: %s: got 0x%" PRIx64 ", expected 0x%" PRIx64 "\n", \
			       __FILE__, __LINE__, #got, g_, w_);                     \
			failures++;                                                   \
			return;                                                       \
		}                                                                     \
	} while (0)

#define CHECK_OK(expr)                                                                \
	do {                                                                          \
		int r_ = (expr);                                                      \
		if (r_ < 0) {                                                         \
			printf("  %s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,   \
			       strerror(-r_));                                        \
			failures++;                                                   \
			return;                                                       \
		}                                                                     \
	} while (0)

#define OUT_DONE 0xe6, KVM_TINY_PORT_DONE   /* out 0xe0, al */
#define HLT 0xf4

static const struct engine_ops *ops = &kvm_engine_ops;

static void load(struct kvm_tiny_guest *g, const uint8_t *code, size_t len)
{
	struct err e = { 0 };
	if (kvm_tiny_load(g, code, len, &e) < 0) {
		printf("  loading guest code: %s\n", e.msg);
		failures++;
	}
}

static void test_out_then_hlt(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0xb0, 0x42, OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct vm_exit x;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_EQ(x.io.port, KVM_TINY_PORT_DONE);
	CHECK_EQ(x.io.size, 1);
	CHECK_EQ(x.io.is_write, 1);
	CHECK_EQ(x.io.count, 1);
	CHECK_EQ(x.io.data[0], 0x42);
	/* HLT waits in the kernel (in-kernel LAPIC): only the watchdog ends it. */
	CHECK_OK(kvm_tiny_run(g, &x, 200));
	CHECK_EQ(x.reason, VM_EXIT_KICKED);
	bool halted = false, sipi = true;
	CHECK_OK(ops->vcpu->get_run_state(g->vcpu, &halted, &sipi));
	CHECK_EQ(halted, true);
	CHECK_EQ(sipi, false);
	struct x86_regs regs;
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	CHECK_EQ(regs.rip, KVM_TINY_CODE + sizeof(code));
}

static void test_in_completes(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0xe4, 0x70, /* in al, 0x70 */ OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct vm_exit x;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_EQ(x.io.is_write, 0);
	x.io.data[0] = 0x5a;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_EQ(x.io.data[0], 0x5a);
}

static void test_kick_before_run(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { OUT_DONE, HLT };
	load(g, code, sizeof(code));
	ops->vcpu->kick(g->vcpu);
	struct vm_exit x;
	CHECK_OK(ops->vcpu->run(g->vcpu, &x));
	CHECK_EQ(x.reason, VM_EXIT_KICKED);
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
}

static void *kick_later(void *arg)
{
	usleep(50 * 1000);
	ops->vcpu->kick(arg);
	return NULL;
}

static void test_kick_from_thread(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0xeb, 0xfe };   /* jmp $ */
	load(g, code, sizeof(code));
	struct vm_exit x;
	/* adopt this thread first so the kick is a signal, not only the flag */
	ops->vcpu->kick(g->vcpu);
	CHECK_OK(ops->vcpu->run(g->vcpu, &x));
	pthread_t t;
	pthread_create(&t, NULL, kick_later, g->vcpu);
	CHECK_OK(ops->vcpu->run(g->vcpu, &x));
	pthread_join(t, NULL);
	CHECK_EQ(x.reason, VM_EXIT_KICKED);
}

struct kick_storm {
	struct vcpu *vcpu;
	unsigned delay_us;
};

static void *kick_after(void *arg)
{
	struct kick_storm *k = arg;
	usleep(k->delay_us);
	ops->vcpu->kick(k->vcpu);
	return NULL;
}

/* Kicks landing anywhere in the run loop (inside KVM_RUN, or between two
 * runs while the guest hammers a port) must each end the loop. */
static void test_kick_never_lost(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { OUT_DONE, 0xeb, 0xfc };   /* out; jmp out */
	load(g, code, sizeof(code));
	for (unsigned i = 0; i < 200; i++) {
		struct kick_storm k = { g->vcpu, (i * 37) % 500 };
		pthread_t t;
		pthread_create(&t, NULL, kick_after, &k);
		struct timespec t0, now;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		struct vm_exit x;
		do {
			CHECK_OK(ops->vcpu->run(g->vcpu, &x));
			clock_gettime(CLOCK_MONOTONIC, &now);
		} while (x.reason == VM_EXIT_IO && now.tv_sec - t0.tv_sec < 3);
		pthread_join(t, NULL);
		CHECK_EQ(x.reason, VM_EXIT_KICKED);
	}
}

static void test_register_roundtrip(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0x48, 0x01, 0xd8, /* add rax, rbx */ OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct x86_regs regs;
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	regs.rax = 0x1111111122222222ull;
	regs.rbx = 0x0101010101010101ull;
	regs.r15 = 0xfeedull;
	CHECK_OK(engine_set_regs(ops, g->vcpu, &regs));
	struct vm_exit x;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	CHECK_EQ(regs.rax, 0x1212121223232323ull);
	CHECK_EQ(regs.r15, 0xfeed);

	struct x86_sregs s;
	CHECK_OK(engine_get_sregs(ops, g->vcpu, &s));
	CHECK_EQ(s.cs.l, 1);
	CHECK_EQ(s.cr3, KVM_TINY_PML4);
	CHECK_EQ(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
	CHECK_EQ(x86_mode_of(&s), X86_MODE_LONG64);

	/* the other parts, one call each way */
	struct x86_state st;
	memset(&st, 0, sizeof(st));
	CHECK_OK(ops->vcpu->get_state(g->vcpu, X86_STATE_SREGS | X86_STATE_MSRS | X86_STATE_FPU |
				X86_STATE_DR, &st));
	CHECK_EQ(st.sregs.efer & EFER_LMA, EFER_LMA);
	st.star = 0x0023001000000000ull;
	st.fpu.xmm[3][0] = 0xab;
	st.fpu.mxcsr = 0x1f80;
	st.dr = (struct x86_debugregs){ .db = { 0x1000, 0x2000, 0, 0 }, .dr6 = DR6_INIT,
					.dr7 = DR7_INIT | DR7_G(1) };
	CHECK_OK(ops->vcpu->set_state(g->vcpu, X86_STATE_MSRS | X86_STATE_FPU | X86_STATE_DR, &st));
	memset(&st, 0, sizeof(st));
	CHECK_OK(ops->vcpu->get_state(g->vcpu, X86_STATE_MSRS | X86_STATE_FPU | X86_STATE_DR, &st));
	CHECK_EQ(st.star, 0x0023001000000000ull);
	CHECK_EQ(st.fpu.xmm[3][0], 0xab);
	CHECK_EQ(st.fpu.mxcsr, 0x1f80);
	CHECK_EQ(st.dr.db[1], 0x2000);
	CHECK_EQ(st.dr.dr7 & DR7_G(1), DR7_G(1));
}

/* MXCSR set through the engine is what the guest's STMXCSR stores. */
static void test_mxcsr_reaches_guest(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = {
		0x0f, 0xae, 0x1c, 0x25, 0x00, 0x80, 0x00, 0x00,   /* stmxcsr [0x8000] */
		OUT_DONE, HLT,
	};
	load(g, code, sizeof(code));
	struct x86_state st;
	CHECK_OK(ops->vcpu->get_state(g->vcpu, X86_STATE_FPU, &st));
	CHECK_EQ(st.fpu.mxcsr, 0x1f80);                   /* reset value */
	st.fpu.mxcsr = 0x9fc0;                             /* FTZ|DAZ|masks */
	CHECK_OK(ops->vcpu->set_state(g->vcpu, X86_STATE_FPU, &st));
	struct vm_exit x;
	CHECK_OK(ops->vcpu->get_state(g->vcpu, X86_STATE_FPU, &st));
	CHECK_EQ(st.fpu.mxcsr, 0x9fc0);
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	if (x.reason == VM_EXIT_EMULATION_FAILURE) {
		printf("  guest check skipped: the host's ring-0 emulator fails on STMXCSR\n");
		return;
	}
	CHECK_EQ(x.reason, VM_EXIT_IO);
	uint32_t seen;
	memcpy(&seen, g->ram + KVM_TINY_DATA, sizeof(seen));
	CHECK_EQ(seen, 0x9fc0);
}

/* x86_translate over hand-built page tables in a fake physical memory. */
struct fake_phys {
	uint8_t mem[0x10000];
};

static int fake_read(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	struct fake_phys *p = opaque;
	if (gpa >= sizeof(p->mem) || len > sizeof(p->mem) - gpa)
		return -EFAULT;
	memcpy(buf, p->mem + gpa, len);
	return 0;
}

static void put64(struct fake_phys *p, uint64_t at, uint64_t v)
{
	memcpy(p->mem + at, &v, 8);
}

static void put32(struct fake_phys *p, uint64_t at, uint32_t v)
{
	memcpy(p->mem + at, &v, 4);
}

#define P 1ull
#define PS 0x80ull
#define IDX(gva, shift) ((((gva) >> (shift)) & 511) * 8)

static void test_paging(struct kvm_tiny_guest *unused)
{
	(void)unused;
	static struct fake_phys p;
	memset(&p, 0, sizeof(p));
	struct x86_sregs s = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PAE, .efer = EFER_LME | EFER_LMA,
			       .cr3 = 0x1000 };
	uint64_t gpa = 0;

	/* 4-level, 4 KiB page */
	uint64_t va = 0x00007fffffe01234ull;
	put64(&p, 0x1000 + IDX(va, 39), 0x2000 | P);
	put64(&p, 0x2000 + IDX(va, 30), 0x3000 | P);
	put64(&p, 0x3000 + IDX(va, 21), 0x4000 | P);
	put64(&p, 0x4000 + IDX(va, 12), 0x8000000000abc000ull | P);   /* NX set */
	CHECK_OK(x86_translate(&s, fake_read, &p, va, &gpa));
	CHECK_EQ(gpa, 0xabc234);
	/* 2 MiB page in the same PD */
	uint64_t va2 = va - 0x200000;
	put64(&p, 0x3000 + IDX(va2, 21), 0x40000000ull | PS | P);
	CHECK_OK(x86_translate(&s, fake_read, &p, va2, &gpa));
	CHECK_EQ(gpa, 0x40000000ull + (va2 & 0x1fffff));
	/* 1 GiB page */
	uint64_t va3 = 0xffff800040123456ull;
	put64(&p, 0x1000 + IDX(va3, 39), 0x5000 | P);
	put64(&p, 0x5000 + IDX(va3, 30), 0x180000000ull | PS | P);
	CHECK_OK(x86_translate(&s, fake_read, &p, va3, &gpa));
	CHECK_EQ(gpa, 0x180000000ull + (va3 & 0x3fffffff));
	/* not present, non-canonical */
	CHECK_EQ(x86_translate(&s, fake_read, &p, va + 0x1000, &gpa), -EFAULT);
	CHECK_EQ(x86_translate(&s, fake_read, &p, 0x0000800000000000ull, &gpa), -EINVAL);

	/* 5-level: PML5 at 0x6000 -> the same PML4 */
	s.cr4 |= CR4_LA57;
	s.cr3 = 0x6000;
	uint64_t va5 = 0x00ff7fffffe01234ull;   /* canonical for 57 bits, PML5 index 1 */
	put64(&p, 0x6000 + (((va5 >> 48) & 511) * 8), 0x1000 | P);
	CHECK_OK(x86_translate(&s, fake_read, &p, va5, &gpa));
	CHECK_EQ(gpa, 0xabc234);

	/* 32-bit paging: 4 KiB page, then a 4 MiB page with CR4.PSE */
	struct x86_sregs s32 = { .cr0 = CR0_PE | CR0_PG, .cr3 = 0x7000 };
	uint32_t v32 = 0xc0801abcu;
	put32(&p, 0x7000 + (v32 >> 22) * 4, 0x9000 | P);
	put32(&p, 0x9000 + ((v32 >> 12) & 1023) * 4, 0x00345000u | P);
	CHECK_OK(x86_translate(&s32, fake_read, &p, v32, &gpa));
	CHECK_EQ(gpa, 0x345abc);
	s32.cr4 = CR4_PSE;
	put32(&p, 0x7000 + (0x40000000u >> 22) * 4, 0x00c00000u | PS | P);
	CHECK_OK(x86_translate(&s32, fake_read, &p, 0x40012345u, &gpa));
	CHECK_EQ(gpa, 0xc12345);

	/* PAE: PDPTEs at CR3, 2 MiB page and 4 KiB page */
	struct x86_sregs pae = { .cr0 = CR0_PE | CR0_PG, .cr4 = CR4_PAE, .cr3 = 0xa000 };
	put64(&p, 0xa000 + 3 * 8, 0xb000 | P);
	put64(&p, 0xb000 + 1 * 8, 0x7fe00000ull | PS | P);
	CHECK_OK(x86_translate(&pae, fake_read, &p, 0xc0212345u, &gpa));
	CHECK_EQ(gpa, 0x7fe12345ull);
	put64(&p, 0xb000 + 2 * 8, 0xc000 | P);
	put64(&p, 0xc000 + 5 * 8, 0x123456000ull | P);
	CHECK_OK(x86_translate(&pae, fake_read, &p, 0xc0405678u, &gpa));
	CHECK_EQ(gpa, 0x123456678ull);

	/* paging off: linear = physical (32 bits outside long mode) */
	struct x86_sregs real = { 0 };
	CHECK_OK(x86_translate(&real, fake_read, &p, 0x1234abcdull, &gpa));
	CHECK_EQ(gpa, 0x1234abcd);
}

/* An instruction the host cannot execute comes back with its address and
 * bytes; POPCNT is one on this host (elsewhere the test passes trivially). */
static void test_emulation_failure(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0x90, 0xf3, 0x48, 0x0f, 0xb8, 0xc3, /* popcnt rax, rbx */
					OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct vm_exit x;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	if (x.reason == VM_EXIT_IO) {
		printf("  POPCNT ran: nothing to check on this host\n");
		return;
	}
	CHECK_EQ(x.reason, VM_EXIT_EMULATION_FAILURE);
	CHECK_EQ(x.failure.pc, KVM_TINY_CODE + 1);
	CHECK_EQ(x.failure.insn_len >= 5, 1);
	CHECK_EQ(memcmp(x.failure.insn, code + 1, 5), 0);
}

/* The page-walk fallback for instruction bytes (this host's KVM always
 * hands them over, so call it directly), across a 4 KiB boundary. */
static void test_fetch_insn(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { OUT_DONE, HLT };
	load(g, code, sizeof(code));
	for (unsigned i = 0; i < 15; i++)
		g->ram[0x20ff8 + i] = (uint8_t)(0xa0 + i);
	struct kvm_sregs ks;
	CHECK_OK(kvm_ioctl(kvm_vcpu_of(g->vcpu)->fd, KVM_GET_SREGS, &ks));
	uint8_t buf[15];
	CHECK_EQ(kvm_fetch_insn(kvm_vcpu_of(g->vcpu), &ks, 0x20ff8, buf, 15), 15);
	CHECK_EQ(buf[0], 0xa0);
	CHECK_EQ(buf[14], 0xae);
	/* the end of RAM: only what is there */
	CHECK_EQ(kvm_fetch_insn(kvm_vcpu_of(g->vcpu), &ks, KVM_TINY_RAM_SIZE - 4, buf, 15), 4);
}

static void test_single_step(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { 0x90, 0x90, 0x90, OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct engine_debug dbg = { .single_step = true, .block_irq = true };
	CHECK_OK(ops->debug->set_debug(g->vcpu, &dbg));
	struct vm_exit x;
	for (uint64_t pc = KVM_TINY_CODE + 1; pc <= KVM_TINY_CODE + 3; pc++) {
		CHECK_OK(kvm_tiny_run(g, &x, 2000));
		CHECK_EQ(x.reason, VM_EXIT_DB);
		CHECK_EQ(x.db.dr6 & DR6_BS, DR6_BS);
		CHECK_EQ(x.db.pc, pc);
	}
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
}

/* Guest INT3 must come back as VM_EXIT_BPT at the INT3's address, whether
 * the host intercepts #BP or its emulator gives up on the instruction. */
static void run_to_int3(struct kvm_tiny_guest *g, bool intercept, struct vm_exit *x)
{
	static const uint8_t code[] = { 0x90, 0xcc, 0x90, OUT_DONE, HLT };
	load(g, code, sizeof(code));
	struct engine_debug dbg = { .intercept_bpt = intercept };
	if (ops->debug->set_debug(g->vcpu, &dbg) < 0)
		failures++;
	if (kvm_tiny_run(g, x, 2000) < 0)
		failures++;
}

static void test_int3_is_bpt(struct kvm_tiny_guest *g)
{
	struct vm_exit x;
	for (int intercept = 0; intercept < 2; intercept++) {
		run_to_int3(g, intercept, &x);
		printf("  INT3 with%s USE_SW_BP: %s\n", intercept ? "" : "out",
		       vm_exit_reason_name(x.reason));
		CHECK_EQ(x.reason, VM_EXIT_BPT);
		CHECK_EQ(x.bpt.pc, KVM_TINY_CODE + 1);
	}
}

/* The debug core reflects a guest INT3 by setting RIP past it and injecting
 * #BP: the guest's handler must see the frame RIP after the INT3. */
static void test_inject_bp_after_int3(struct kvm_tiny_guest *g)
{
	for (int intercept = 0; intercept < 2; intercept++) {
		struct vm_exit x;
		run_to_int3(g, intercept, &x);
		CHECK_EQ(x.reason, VM_EXIT_BPT);
		struct engine_debug none = { 0 };
		CHECK_OK(ops->debug->set_debug(g->vcpu, &none));
		struct x86_regs regs;
		CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
		regs.rip = x.bpt.pc + 1;
		CHECK_OK(engine_set_regs(ops, g->vcpu, &regs));
		CHECK_OK(ops->vcpu->inject_exception(g->vcpu, X86_BP, false, 0));
		CHECK_OK(kvm_tiny_run(g, &x, 2000));
		CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
		printf("  #BP injected after INT3 (with%s USE_SW_BP): %s port 0x%x, vector %" PRIu64
		       ", frame RIP 0x%" PRIx64 "\n", intercept ? "" : "out",
		       vm_exit_reason_name(x.reason), x.reason == VM_EXIT_IO ? x.io.port : 0,
		       regs.rbx, regs.rax);
		CHECK_EQ(x.reason, VM_EXIT_IO);
		CHECK_EQ(x.io.port, KVM_TINY_PORT_VECTOR);
		CHECK_EQ(regs.rbx, X86_BP);
		CHECK_EQ(regs.rax, KVM_TINY_CODE + 2);
	}
}

static void test_inject_gp(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = { OUT_DONE, HLT };
	load(g, code, sizeof(code));
	CHECK_OK(ops->vcpu->inject_exception(g->vcpu, X86_GP, true, 0x18));
	struct vm_exit x;
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_EQ(x.io.port, KVM_TINY_PORT_VECTOR);
	struct x86_regs regs;
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	CHECK_EQ(regs.rbx, X86_GP);
	CHECK_EQ(regs.rax, 0x18);              /* error code */
	CHECK_EQ(regs.rcx, KVM_TINY_CODE);     /* RIP of the faulting context */
}

/* Caught MSRs exit through KVM's MSR filter: each access is reported
 * after its instruction with the value, and done as the CPU would (the
 * guest reads back what it wrote). Where the host has no filter, skipped. */
static void test_msr_catch(struct kvm_tiny_guest *g)
{
	static const uint8_t code[] = {
		0xb9, 0x81, 0x00, 0x00, 0xc0,      /* mov ecx, 0xc0000081 (STAR) */
		0xb8, 0x00, 0x00, 0x00, 0x00,      /* mov eax, 0 */
		0xba, 0x08, 0x00, 0x13, 0x00,      /* mov edx, 0x130008 */
		0x0f, 0x30,                        /* wrmsr */
		0x31, 0xd2,                        /* xor edx, edx */
		0x0f, 0x32,                        /* rdmsr */
		OUT_DONE, HLT,
	};
	if (!kvm_vm_of(g->vm)->msr.exits) {
		printf("  skipped: host KVM has no MSR filter\n");
		return;
	}
	load(g, code, sizeof(code));
	struct engine_debug dbg = { 0 };
	dbg.access.nr = 1;
	dbg.access.rule[0] = (struct engine_access_rule){ .kind = ENGINE_ACCESS_MSR, .read = true,
							  .write = true, .first = 0xc0000081,
							  .last = 0xc0000081 };
	CHECK_OK(ops->debug->set_debug(g->vcpu, &dbg));
	CHECK_EQ(kvm_vm_of(g->vm)->msr.installed.nr, 1);
	struct vm_exit x;
	struct x86_regs regs;
	for (int write = 1; write >= 0; write--) {
		uint64_t at = KVM_TINY_CODE + (write ? 15 : 19);
		CHECK_OK(kvm_tiny_run(g, &x, 2000));
		CHECK_EQ(x.reason, VM_EXIT_ACCESS);
		CHECK_EQ(x.access.kind, ENGINE_ACCESS_MSR);
		CHECK_EQ(x.access.is_write, write);
		CHECK_EQ(x.access.index, 0xc0000081);
		CHECK_EQ(x.access.value, 0x0013000800000000ull);
		CHECK_EQ(x.access.pc, at);
		CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
		CHECK_EQ(regs.rip, at + 2);
		CHECK_EQ(regs.rdx, 0x130008);
	}
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	struct engine_debug none = { 0 };
	CHECK_OK(ops->debug->set_debug(g->vcpu, &none));
	CHECK_EQ(kvm_vm_of(g->vm)->msr.installed.nr, 0);
}

static void test_probe(struct kvm_tiny_guest *g)
{
	(void)g;
	struct engine_caps caps;
	struct engine_report report;
	struct err e = { 0 };
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int r = ops->vm->probe(NULL, &caps, &report, &e);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (r < 0) {
		printf("  probe failed: %s\n", e.msg);
		failures++;
		return;
	}
	for (unsigned i = 0; i < report.nr; i++)
		printf("  %s: %s (%s)\n", report.features[i].name,
		       report.features[i].present ? "yes" : "no", report.features[i].how);
	printf("  probe took %.0f ms\n",
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	CHECK_EQ(report.nr, 16);    /* + native ring 0, the emu fallback, access catching, CPUID,
				     * KVMCLOCK_CTRL */
	CHECK_EQ(report.features[0].present, true);    /* single-step exits */
	CHECK_EQ(report.features[6].present, true);    /* in-kernel irqchip */
}

/* Leaf 0x40000010: EAX the TSC frequency KVM runs the vCPU at, EBX the
 * LAPIC timer's (1 GHz); the signature leaf's maximum reaches it. */
static void test_cpuid_timing_leaf(struct kvm_tiny_guest *g)
{
	static const uint8_t timing[] = { 0xb8, 0x10, 0, 0, 0x40, 0x0f, 0xa2, OUT_DONE, HLT };
	static const uint8_t signature[] = { 0xb8, 0, 0, 0, 0x40, 0x0f, 0xa2, OUT_DONE, HLT };
	struct vm_exit x;
	struct x86_regs regs;
	int khz = ioctl(kvm_vcpu_of(g->vcpu)->fd, KVM_GET_TSC_KHZ, 0);
	if (khz <= 0) {
		printf("  (KVM_GET_TSC_KHZ unknown here: nothing to compare)\n");
		return;
	}
	load(g, signature, sizeof(signature));
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	CHECK_EQ(regs.rax >= 0x40000010, 1);
	load(g, timing, sizeof(timing));
	CHECK_OK(kvm_tiny_run(g, &x, 2000));
	CHECK_EQ(x.reason, VM_EXIT_IO);
	CHECK_OK(engine_get_regs(ops, g->vcpu, &regs));
	CHECK_EQ(regs.rax, (uint32_t)khz);
	CHECK_EQ(regs.rbx, 1000000);
}

/* The guest MOV DR that a host trapping DR7.GD stops (kvm_mov_dr_exit):
 * 0F 21 reads, 0F 23 writes, REX.R names DR8+, REX.B r8+, REX only in
 * 64-bit mode, prefixes skipped, anything else refused. */
static void test_mov_dr_decode(struct kvm_tiny_guest *unused)
{
	(void)unused;
	struct kvm_mov_dr m;
	static const uint8_t rd7_rax[] = { 0x0f, 0x21, 0xf8 };
	static const uint8_t wr0_r9[] = { 0x41, 0x0f, 0x23, 0xc1 };
	static const uint8_t wr8_rax[] = { 0x44, 0x0f, 0x23, 0xc0 };
	static const uint8_t rd6_rsi_prefixed[] = { 0x66, 0x0f, 0x21, 0xf6 };
	static const uint8_t not_mov[] = { 0x0f, 0x20, 0xc0 };

	CHECK_EQ(kvm_mov_dr_decode(rd7_rax, sizeof(rd7_rax), true, &m), 3);
	CHECK_EQ(m.dr, 7);
	CHECK_EQ(m.gpr, 0);
	CHECK_EQ(m.to_dr, false);
	CHECK_EQ(kvm_mov_dr_decode(wr0_r9, sizeof(wr0_r9), true, &m), 4);
	CHECK_EQ(m.dr, 0);
	CHECK_EQ(m.gpr, 9);
	CHECK_EQ(m.to_dr, true);
	CHECK_EQ(kvm_mov_dr_decode(wr8_rax, sizeof(wr8_rax), true, &m), 4);
	CHECK_EQ(m.dr, 8);
	CHECK_EQ(kvm_mov_dr_decode(wr0_r9, sizeof(wr0_r9), false, &m), 0);
	CHECK_EQ(kvm_mov_dr_decode(rd6_rsi_prefixed, sizeof(rd6_rsi_prefixed), false, &m), 4);
	CHECK_EQ(m.dr, 6);
	CHECK_EQ(m.gpr, 6);
	CHECK_EQ(kvm_mov_dr_decode(not_mov, sizeof(not_mov), true, &m), 0);
	CHECK_EQ(kvm_mov_dr_decode(rd7_rax, 2, true, &m), 0);
}

static const struct {
	const char *name;
	void (*fn)(struct kvm_tiny_guest *g);
} tests[] = {
	{ "CPUID 0x40000010: TSC and LAPIC timer kHz", test_cpuid_timing_leaf },
	{ "OUT then HLT", test_out_then_hlt },
	{ "IN completes with the data given", test_in_completes },
	{ "kick before run is not lost", test_kick_before_run },
	{ "kick from another thread", test_kick_from_thread },
	{ "a kick is never lost", test_kick_never_lost },
	{ "register round trips", test_register_roundtrip },
	{ "MXCSR reaches the guest", test_mxcsr_reaches_guest },
	{ "single step", test_single_step },
	{ "emulation failure names the instruction", test_emulation_failure },
	{ "page-table walks", test_paging },
	{ "instruction bytes through the page tables", test_fetch_insn },
	{ "INT3 is reported as BPT", test_int3_is_bpt },
	{ "#BP injected after INT3", test_inject_bp_after_int3 },
	{ "#GP injected with error code", test_inject_gp },
	{ "MSR catches through KVM's MSR filter", test_msr_catch },
	{ "probe", test_probe },
	{ "MOV DR decoded for the GD trap", test_mov_dr_decode },
};

int main(void)
{
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("skipped: no /dev/kvm\n");
		return 77;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		struct kvm_tiny_guest g;
		struct err e = { 0 };
		if (kvm_tiny_create(&g, NULL, &e) < 0) {
			printf("FAIL %s: %s\n", tests[i].name, e.msg);
			failures++;
			continue;
		}
		int before = failures;
		tests[i].fn(&g);
		printf("%s %s\n", failures == before ? "ok  " : "FAIL", tests[i].name);
		kvm_tiny_destroy(&g);
	}
	printf("%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
