/* engine/kvm/kvm_cpuid.c — the CPUID table each vCPU gets: what this
 * host's KVM supports (KVM_GET_SUPPORTED_CPUID, which keeps its paravirt
 * leaves 0x40000000/1, so Linux uses kvmclock, PV EOI, steal time and
 * async page faults, all served inside KVM), with the vCPU's APIC ids,
 * x2APIC (the in-kernel LAPIC emulates it), the TSC and LAPIC timer
 * frequencies in leaf 0x40000010, and without AMX, whose tile data does
 * not fit the 4 KiB XSAVE image vmdb reads and writes (KVM_GET_XSAVE).
 * With several vCPUs on a host where a ring-0 VMCALL never returns, the
 * paravirt features that rest on hypercalls are left out too.
 *
 * On a host whose emulator runs guest ring 0 (ours), leaves 1, 7 and 0xD
 * answer with the host CPU's own bits whatever this table says, and XSETBV
 * takes any XCR0 the host has (measured; the 0x4000xxxx leaves do follow
 * the table): there the fallback copes with what the guest enables
 * (kvm_xstate.c), and Linux is told noxsave (kvm_op_linux_params), since
 * AVX in ring 0 runs neither in the host's emulator nor in emu. A probe
 * guest whose table lacks AVX finds such hosts out. */
#include "engine/kvm/kvm.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_1_ECX_X2APIC        (1u << 21)
#define CPUID_1_EBX_APIC_ID_SHIFT 24
#define CPUID_1_EBX_APIC_ID_MASK  (0xffu << CPUID_1_EBX_APIC_ID_SHIFT)
#define CPUID_7_EDX_AMX           ((1u << 22) | (1u << 24) | (1u << 25))
#define CPUID_D_EAX_AMX           ((1u << 17) | (1u << 18))
#define KVM_CPUID_SIGNATURE_LEAF  0x40000000u
#define KVM_CPUID_TIMING_LEAF     0x40000010u   /* EAX: TSC kHz, EBX: LAPIC timer kHz */
#define KVM_LAPIC_TIMER_KHZ       1000000u      /* KVM's APIC bus: 1 ns a tick */
#define KVM_CPUID_FEATURES_LEAF   0x40000001u
/* Paravirt features whose guest side is a VMCALL: spinlock kicks, IPIs,
 * yielding to a preempted vCPU. Linux uses them only with several CPUs. */
#define KVM_FEATURE_HYPERCALLS    ((1u << 7) | (1u << 11) | (1u << 13))
#define KVM_HC_VAPIC_POLL_IRQ     1                  /* a hypercall that does nothing */
#define KVM_HYPERCALL_WAIT_MS     200

/* A ring-0 VMCALL comes back on native hosts; on ours (the host emulates
 * guest ring 0) it never does: measured still at the VMCALL after 2 s. */
bool kvm_hypercall_returns(const struct emu_single_ops *assist)
{
	static const uint8_t code[] = {
		0xb8, KVM_HC_VAPIC_POLL_IRQ, 0, 0, 0,     /* mov eax, KVM_HC_VAPIC_POLL_IRQ */
		0x0f, 0x01, 0xc1,                         /* vmcall */
		0xe6, KVM_TINY_PORT_DONE,                 /* out KVM_TINY_PORT_DONE, al */
		0xf4,
	};
	struct kvm_tiny_guest g;
	struct err e = { 0 };
	struct vm_exit x;
	if (kvm_tiny_create(&g, assist, &e) < 0)
		return true;                              /* cannot tell: trust KVM */
	bool back = kvm_tiny_load(&g, code, sizeof(code), &e) == 0 &&
		    kvm_tiny_run(&g, &x, KVM_HYPERCALL_WAIT_MS) == 0 &&
		    x.reason == VM_EXIT_IO && x.io.port == KVM_TINY_PORT_DONE;
	kvm_tiny_destroy(&g);
	return back;
}

static void kvm_cpuid_entry_patch(struct kvm_cpuid_entry2 *ent, unsigned id, bool hypercalls)
{
	switch (ent->function) {
	case KVM_CPUID_FEATURES_LEAF:
		if (!hypercalls)
			ent->eax &= ~KVM_FEATURE_HYPERCALLS;
		break;
	case 1:
		ent->ebx = (ent->ebx & ~CPUID_1_EBX_APIC_ID_MASK) |
			   ((id & 0xffu) << CPUID_1_EBX_APIC_ID_SHIFT);
		ent->ecx |= CPUID_1_ECX_X2APIC;
		break;
	case 7:
		if (ent->index == 0)
			ent->edx &= ~CPUID_7_EDX_AMX;
		break;
	case 0xb:
	case 0x1f:
		ent->edx = id;
		break;
	case 0xd:
		if (ent->index == 0)
			ent->eax &= ~CPUID_D_EAX_AMX;
		else if (ent->index == 17 || ent->index == 18)
			ent->eax = ent->ebx = ent->ecx = ent->edx = 0;
		break;
	case 0x1d:
	case 0x1e:
		ent->eax = ent->ebx = ent->ecx = ent->edx = 0;   /* AMX tile geometry */
		break;
	}
}

/* Leaf 0x40000010 when KVM says its TSC frequency and has not its own
 * leaf there; the signature leaf's maximum follows. */
static void kvm_cpuid_add_timing(struct kvm_cpuid2 *c, uint32_t tsc_khz)
{
	struct kvm_cpuid_entry2 *sig = NULL;
	for (uint32_t i = 0; i < c->nent; i++) {
		if (c->entries[i].function == KVM_CPUID_TIMING_LEAF)
			return;
		if (c->entries[i].function == KVM_CPUID_SIGNATURE_LEAF)
			sig = &c->entries[i];
	}
	if (!sig || tsc_khz == 0)
		return;
	if (sig->eax < KVM_CPUID_TIMING_LEAF)
		sig->eax = KVM_CPUID_TIMING_LEAF;
	c->entries[c->nent++] = (struct kvm_cpuid_entry2){
		.function = KVM_CPUID_TIMING_LEAF, .eax = tsc_khz, .ebx = KVM_LAPIC_TIMER_KHZ,
	};
}

static int kvm_cpuid_set(struct kvm_vm_state *kvm, struct kvm_vcpu_state *v, unsigned id,
			 uint32_t leaf1_ecx_clear, struct err *e)
{
	uint32_t n = kvm->cpuid->nent;
	struct kvm_cpuid2 *c = malloc(sizeof(*c) + (n + 1) * sizeof(c->entries[0]));
	if (!c)
		return err_set(e, ENOMEM, "out of memory for the CPUID table");
	memcpy(c, kvm->cpuid, sizeof(*c) + n * sizeof(c->entries[0]));
	for (uint32_t i = 0; i < n; i++)
		kvm_cpuid_entry_patch(&c->entries[i], id, kvm->hypercalls);
	for (uint32_t i = 0; i < n; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx &= ~leaf1_ecx_clear;
	int khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	kvm_cpuid_add_timing(c, khz > 0 ? (uint32_t)khz : 0);
	int r = kvm_ioctl(v->fd, KVM_SET_CPUID2, c);
	free(c);
	if (r < 0)
		return err_set(e, -r, "KVM_SET_CPUID2 failed for vCPU %u: %s", id, strerror(-r));
	return 0;
}

int kvm_vcpu_set_cpuid(struct kvm_vm_state *kvm, struct kvm_vcpu_state *v, unsigned id,
		       struct err *e)
{
	return kvm_cpuid_set(kvm, v, id, 0, e);
}

/* --- does the guest's CPUID follow the table? --------------------------------- */

#define CPUID_1_ECX_AVX        (1u << 28)
#define CPUID_PROBE_TIMEOUT_MS 1000

/* The tiny guest's table loses AVX; CPUID leaf 1 runs in the ring asked
 * and stores ECX where the host can read it (in ring 3 the OUT that ends
 * the script is a #GP, which ends it as well). */
static int kvm_cpuid_ask_avx(struct kvm_tiny_guest *g, bool user, enum kvm_cpuid_avx *out,
			     struct err *e)
{
	static const uint8_t code[] = {
		0xb8, 1, 0, 0, 0,                              /* mov eax, 1 */
		0x31, 0xc9,                                    /* xor ecx, ecx */
		0x0f, 0xa2,                                    /* cpuid */
		0x89, 0x0c, 0x25, (uint8_t)KVM_TINY_DATA, (uint8_t)(KVM_TINY_DATA >> 8),
		(uint8_t)(KVM_TINY_DATA >> 16), (uint8_t)(KVM_TINY_DATA >> 24), /* mov [DATA], ecx */
		0xe6, KVM_TINY_PORT_DONE,                      /* out KVM_TINY_PORT_DONE, al */
		0xf4,
	};
	struct kvm_vm_state *kvm = kvm_vm_of(g->vm);
	struct kvm_vcpu_state *v = kvm_vcpu_of(g->vcpu);
	int r = kvm_cpuid_set(kvm, v, 0, CPUID_1_ECX_AVX, e);
	if (r < 0)
		return r;
	r = (user ? kvm_tiny_load_user : kvm_tiny_load)(g, code, sizeof(code), e);
	if (r < 0)
		return r;
	const uint32_t marker = 0xffffffffu;      /* no CPUID answers all ones in leaf 1 ECX */
	memcpy(g->ram + KVM_TINY_DATA, &marker, sizeof(marker));
	struct vm_exit x;
	r = kvm_tiny_run(g, &x, CPUID_PROBE_TIMEOUT_MS);
	if (r < 0)
		return err_set(e, -r, "KVM_RUN: %s", strerror(-r));
	uint32_t ecx;
	memcpy(&ecx, g->ram + KVM_TINY_DATA, sizeof(ecx));
	if (ecx == marker)
		return err_set(e, EIO, "the CPUID probe guest did not get past CPUID (%s exit)",
			       vm_exit_reason_name(x.reason));
	*out = ecx & CPUID_1_ECX_AVX ? KVM_CPUID_HOST_AVX : KVM_CPUID_FOLLOWS;
	return 0;
}

int kvm_cpuid_probe_avx(const struct emu_single_ops *assist, bool user, enum kvm_cpuid_avx *out,
			struct err *e)
{
	struct kvm_tiny_guest g;
	int r = kvm_tiny_create(&g, assist, e);
	if (r < 0)
		return r;
	r = kvm_cpuid_ask_avx(&g, user, out, e);
	kvm_tiny_destroy(&g);
	return r;
}

/* On a host whose CPU answers the guest's ring-0 CPUID, Linux sees AVX
 * (and AVX-512) whatever the table says, and uses them in ring 0 (the
 * RNG's BLAKE2s, crypto, RAID): the host's emulator cannot run them and
 * neither can emu. noxsave keeps XSAVE off, and with it every AVX
 * feature; userspace then sees OSXSAVE clear (measured: that bit follows
 * the guest's CR4 even here) and keeps to SSE as on such a CPU. */
const char *kvm_op_linux_params(struct vm *vm, const char **why)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	if (kvm->ring0_cpuid == KVM_CPUID_UNKNOWN) {
		struct err e = { 0 };
		if (kvm_cpuid_probe_avx(kvm->assist, false, &kvm->ring0_cpuid, &e) < 0)
			kvm->ring0_cpuid = KVM_CPUID_FOLLOWS;   /* cannot tell: trust the table */
	}
	if (kvm->ring0_cpuid != KVM_CPUID_HOST_AVX)
		return NULL;
	*why = "this host answers the guest's CPUID with its own CPU's AVX, which neither "
	       "its ring-0 emulator nor emu runs";
	return "noxsave";
}
