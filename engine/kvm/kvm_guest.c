/* engine/kvm/kvm_guest.c — the tiny long-mode guest that probe() and the
 * engine's unit test run. Everything is built through the engine's own
 * ops, so the probe also exercises them. */
#include "engine/kvm/kvm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "x86/desc.h"

/* present, DPL 3 (INT3 from ring 3), 64-bit interrupt gate */
#define IDT_GATE_INTR64 ((uint64_t)(DESC_PRESENT | DESC_DPL(3) | X86_GATE_INT))

/* Flat 64-bit GDT: 0x08 code (L=1), 0x10 data, 0x18 user code, 0x20
 * user data, 0x28 the 64-bit TSS (two slots, filled in at create). */
#define TINY_SEL_CODE  0x08
#define TINY_SEL_DATA  0x10
#define TINY_SEL_UCODE 0x1b
#define TINY_SEL_UDATA 0x23
#define TINY_SEL_TSS   0x28
#define TINY_TSS       0x9000ull
static const uint64_t tiny_gdt[] = {
	0,
	0x00af9a000000ffffull,
	0x00cf92000000ffffull,
	0x00affa000000ffffull,
	0x00cff2000000ffffull,
	(uint64_t)(DESC_PRESENT | SYS_TYPE_TSS_BUSY) << DESC_ACCESS_SHIFT | TSS_MIN_LIMIT |
		((TINY_TSS & 0xffffff) << 16),
	TINY_TSS >> 32,
};

static void tiny_write64(uint8_t *ram, uint64_t gpa, uint64_t v)
{
	memcpy(ram + gpa, &v, sizeof(v));
}

/* PML4 -> PDPT -> one PD of 2 MiB pages: identity map of the first GiB. */
static void tiny_build_page_tables(uint8_t *ram)
{
	uint64_t pdpt = KVM_TINY_PML4 + 0x1000, pd = KVM_TINY_PML4 + 0x2000;
	/* user-accessible too, for kvm_tiny_load_user (no SMEP/SMAP here) */
	tiny_write64(ram, KVM_TINY_PML4, pdpt | PTE_P | PTE_W | PTE_U);
	tiny_write64(ram, pdpt, pd | PTE_P | PTE_W | PTE_U);
	for (uint64_t i = 0; i < 512; i++)
		tiny_write64(ram, pd + i * 8, (i << 21) | PTE_P | PTE_W | PTE_U | PTE_PS);
}

/* 64-bit interrupt gates to one stub per vector. */
static void tiny_build_idt(uint8_t *ram)
{
	static const uint8_t stub[] = {
		0xbb, 0, 0, 0, 0,               /* mov ebx, vector (patched) */
		0x48, 0x8b, 0x04, 0x24,         /* mov rax, [rsp] */
		0x48, 0x8b, 0x4c, 0x24, 0x08,   /* mov rcx, [rsp+8] */
		0xe6, KVM_TINY_PORT_VECTOR,     /* out port, al */
		0xf4,                           /* hlt */
		0xeb, 0xfd,                     /* jmp hlt */
	};
	for (uint64_t v = 0; v < 32; v++) {
		uint64_t at = KVM_TINY_STUBS + v * 32;
		memcpy(ram + at, stub, sizeof(stub));
		ram[at + 1] = (uint8_t)v;
		uint64_t lo = (at & 0xffff) | ((uint64_t)TINY_SEL_CODE << 16) |
			      (IDT_GATE_INTR64 << DESC_ACCESS_SHIFT) | ((at >> 16 & 0xffff) << 48);
		tiny_write64(ram, KVM_TINY_IDT + v * 16, lo);
		tiny_write64(ram, KVM_TINY_IDT + v * 16 + 8, at >> 32);
	}
}

static void tiny_long_mode_sregs(struct x86_sregs *s)
{
	struct x86_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = TINY_SEL_CODE,
		.type = SEG_TYPE_CODE_XR_ACCESSED, .present = 1, .s = 1, .l = 1, .g = 1,
	};
	struct x86_segment data = {
		.base = 0, .limit = 0xffffffff, .selector = TINY_SEL_DATA,
		.type = SEG_TYPE_DATA_RW_ACCESSED, .present = 1, .s = 1, .db = 1, .g = 1,
	};
	s->cs = code;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct x86_segment){ .base = TINY_TSS, .limit = TSS_MIN_LIMIT,
				      .selector = TINY_SEL_TSS, .type = SYS_TYPE_TSS_BUSY,
				      .present = 1 };
	s->ldt = (struct x86_segment){ .type = SYS_TYPE_LDT, .present = 1, .unusable = 1 };
	s->gdt = (struct x86_dtable){ .base = KVM_TINY_GDT, .limit = sizeof(tiny_gdt) - 1 };
	s->idt = (struct x86_dtable){ .base = KVM_TINY_IDT, .limit = 32 * 16 - 1 };
	s->cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_PG;
	s->cr3 = KVM_TINY_PML4;
	s->cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
	s->efer = EFER_LME | EFER_LMA;
}

int kvm_tiny_create(struct kvm_tiny_guest *g, const struct emu_single_ops *assist, struct err *e)
{
	memset(g, 0, sizeof(*g));
	g->vm = calloc(1, sizeof(*g->vm));
	if (!g->vm)
		return err_set(e, ENOMEM, "out of memory for the probe VM");
	g->vm->engine = &kvm_engine_ops;
	g->vm->nr_vcpus = g->vm->cfg.nr_vcpus = 1;
	g->ram = mmap(NULL, KVM_TINY_RAM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->ram == MAP_FAILED) {
		g->ram = NULL;
		free(g->vm);
		g->vm = NULL;
		return err_set(e, errno, "cannot allocate probe guest memory");
	}
	g->vm->ram = g->ram;
	g->vm->ram_size = g->vm->low_ram_size = KVM_TINY_RAM_SIZE;
	int r = kvm_op_vm_create(g->vm, assist, e);
	if (r < 0)
		goto fail;
	r = kvm_op_map_memory(g->vm, 0, KVM_TINY_RAM_SIZE, g->ram, false, e);
	if (r < 0)
		goto fail;
	g->vcpu = &g->vm->vcpus[0];
	g->vcpu->vm = g->vm;
	g->vcpu->id = 0;
	r = kvm_op_vcpu_create(g->vm, g->vcpu, e);
	if (r < 0)
		goto fail;
	memcpy(g->ram + KVM_TINY_GDT, tiny_gdt, sizeof(tiny_gdt));
	tiny_write64(g->ram, TINY_TSS + TSS64_RSP(0), KVM_TINY_STACK_TOP);
	tiny_build_page_tables(g->ram);
	tiny_build_idt(g->ram);
	return 0;
fail:
	kvm_tiny_destroy(g);
	return r;
}

void kvm_tiny_destroy(struct kvm_tiny_guest *g)
{
	if (g->vcpu)
		kvm_op_vcpu_destroy(g->vcpu);
	if (g->vm)
		kvm_op_vm_destroy(g->vm);
	if (g->ram)
		munmap(g->ram, KVM_TINY_RAM_SIZE);
	free(g->vm);
	memset(g, 0, sizeof(*g));
}

static int tiny_load(struct kvm_tiny_guest *g, const uint8_t *code, size_t len, bool user,
		     struct err *e)
{
	if (len > KVM_TINY_USER_STACK_TOP - KVM_TINY_CODE)
		return err_set(e, EINVAL, "probe guest code too large");
	memcpy(g->ram + KVM_TINY_CODE, code, len);
	struct x86_sregs s;
	struct engine_debug nodebug = { 0 };
	struct x86_debugregs dr = { .dr6 = DR6_INIT, .dr7 = DR7_INIT };
	struct x86_regs regs = { .rip = KVM_TINY_CODE, .rsp = KVM_TINY_STACK_TOP,
				 .rflags = RFLAGS_FIXED1 };
	int r = kvm_op_get_sregs(g->vcpu, &s);
	if (r < 0)
		return err_set(e, -r, "reading the probe vCPU's system registers: %s", strerror(-r));
	tiny_long_mode_sregs(&s);
	if (user) {
		s.cs.selector = TINY_SEL_UCODE;
		s.cs.dpl = 3;
		s.ss.selector = s.ds.selector = s.es.selector = TINY_SEL_UDATA;
		s.ss.dpl = s.ds.dpl = s.es.dpl = 3;
		regs.rsp = KVM_TINY_USER_STACK_TOP;
	}
	if ((r = kvm_op_set_sregs(g->vcpu, &s)) < 0 ||
	    (r = kvm_op_set_regs(g->vcpu, &regs)) < 0 ||
	    (r = kvm_op_set_debug(g->vcpu, &nodebug)) < 0 ||
	    (r = kvm_op_set_debugregs(g->vcpu, &dr)) < 0)
		return err_set(e, -r, "setting up the probe vCPU: %s", strerror(-r));
	return 0;
}

int kvm_tiny_load(struct kvm_tiny_guest *g, const uint8_t *code, size_t len, struct err *e)
{
	return tiny_load(g, code, len, false, e);
}

int kvm_tiny_load_user(struct kvm_tiny_guest *g, const uint8_t *code, size_t len,
		       struct err *e)
{
	return tiny_load(g, code, len, true, e);
}

struct tiny_watchdog {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	unsigned timeout_ms;
	struct vcpu *vcpu;
};

static void *tiny_watchdog_main(void *arg)
{
	struct tiny_watchdog *w = arg;
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += w->timeout_ms / 1000;
	deadline.tv_nsec += (long)(w->timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	int r = 0;
	while (!w->done && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
	/* Kicked under the lock: run() has not returned, so the vCPU exists. */
	if (!w->done)
		kvm_op_kick(w->vcpu);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int kvm_tiny_run(struct kvm_tiny_guest *g, struct vm_exit *exit, unsigned timeout_ms)
{
	struct tiny_watchdog w = { .timeout_ms = timeout_ms, .vcpu = g->vcpu };
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cond, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&w.lock, NULL);
	pthread_t t;
	int r = -pthread_create(&t, NULL, tiny_watchdog_main, &w);
	if (r == 0) {
		r = kvm_op_run(g->vcpu, exit);
		pthread_mutex_lock(&w.lock);
		w.done = true;
		pthread_cond_signal(&w.cond);
		pthread_mutex_unlock(&w.lock);
		pthread_join(t, NULL);
		/* A kick that raced with a normal exit must not leak into the
		 * next run. */
		__atomic_store_n(&kvm_vcpu_of(g->vcpu)->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	return r;
}
