/* engine/kvm/kvm_vm.c — VM-wide KVM state: opening /dev/kvm, the VM file
 * descriptor, in-kernel irqchip and PIT, memory slots, interrupt lines,
 * and the kick signal's handler. */
#include "engine/kvm/kvm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "machine/vm.h"

/* Just below 4 GiB, where PC firmware keeps them; KVM needs three pages
 * for the TSS and one for the identity map on Intel without unrestricted
 * guest. */
#define KVM_TSS_ADDR          0xfffbd000ul
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

int kvm_ioctl(int fd, unsigned long request, void *arg)
{
	int r;
	do
		r = ioctl(fd, request, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

static int kvm_check(int fd, long cap)
{
	int r = ioctl(fd, KVM_CHECK_EXTENSION, cap);
	return r < 0 ? 0 : r;
}

/* The handler exists only so the signal interrupts KVM_RUN instead of
 * killing the process; immediate_exit carries the actual request. */
static void kvm_kick_handler(int sig)
{
	(void)sig;
}

static int kvm_install_kick_signal(struct kvm_vm_state *kvm, struct err *e)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kvm_kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;            /* no SA_RESTART: KVM_RUN must return EINTR */
	kvm->kick_signal = SIGRTMIN + 3;
	if (sigaction(kvm->kick_signal, &sa, NULL) < 0)
		return err_set(e, errno, "cannot install the vCPU kick signal handler: %s",
			       strerror(errno));
	return 0;
}

static int kvm_open_dev(struct kvm_vm_state *kvm, struct err *e)
{
	kvm->sys_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm->sys_fd < 0) {
		int code = errno;
		if (code == ENOENT || code == ENODEV || code == ENXIO)
			return err_set(e, code, "no /dev/kvm: KVM is not available on this host "
				       "(is the kvm module loaded?)");
		if (code == EACCES || code == EPERM)
			return err_set(e, code, "no permission to open /dev/kvm (add yourself to "
				       "the kvm group or run as root)");
		return err_set(e, code, "cannot open /dev/kvm: %s", strerror(code));
	}
	int version = ioctl(kvm->sys_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION)
		return err_set(e, ENOTSUP, "/dev/kvm speaks KVM API version %d, vmdb needs %d",
			       version, KVM_API_VERSION);
	return 0;
}

static void kvm_read_caps(struct kvm_vm_state *kvm)
{
	struct kvm_host_caps *c = &kvm->caps;
	int fd = kvm->vm_fd >= 0 ? kvm->vm_fd : kvm->sys_fd;
	c->irqchip = kvm_check(fd, KVM_CAP_IRQCHIP) > 0;
	c->pit2 = kvm_check(fd, KVM_CAP_PIT2) > 0;
	c->readonly_mem = kvm_check(fd, KVM_CAP_READONLY_MEM) > 0;
	c->vcpu_events = kvm_check(fd, KVM_CAP_VCPU_EVENTS) > 0;
	c->debugregs = kvm_check(fd, KVM_CAP_DEBUGREGS) > 0;
	c->xsave = kvm_check(fd, KVM_CAP_XSAVE) > 0;
	int sync = kvm_check(fd, KVM_CAP_SYNC_REGS);   /* a mask of KVM_SYNC_X86_* */
	c->sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
	c->guest_debug2 = (uint32_t)kvm_check(fd, KVM_CAP_SET_GUEST_DEBUG2);
	c->msr_filter = kvm_check(fd, KVM_CAP_X86_MSR_FILTER) > 0 &&
			(kvm_check(fd, KVM_CAP_X86_USER_SPACE_MSR) & KVM_MSR_EXIT_REASON_FILTER);
	c->kvmclock_ctrl = kvm_check(fd, KVM_CAP_KVMCLOCK_CTRL) > 0;
	int max = kvm_check(fd, KVM_CAP_MAX_VCPUS);
	if (max <= 0)
		max = kvm_check(fd, KVM_CAP_NR_VCPUS);   /* older kernels: the recommended limit */
	c->max_vcpus = max > 0 ? (unsigned)max : 4;  /* KVM's documented floor */
	int slots = kvm_check(fd, KVM_CAP_NR_MEMSLOTS);
	c->nr_memslots = slots > 0 ? (unsigned)slots : 32;
}

int kvm_query_host_caps(struct kvm_host_caps *caps, struct err *e)
{
	struct kvm_vm_state kvm = { .sys_fd = -1, .vm_fd = -1 };
	int r = kvm_open_dev(&kvm, e);
	if (r == 0) {
		kvm_read_caps(&kvm);
		*caps = kvm.caps;
	}
	if (kvm.sys_fd >= 0)
		close(kvm.sys_fd);
	return r;
}

static int kvm_get_supported_cpuid(struct kvm_vm_state *kvm, struct err *e)
{
	for (unsigned nent = 64; nent <= 4096; nent *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + nent * sizeof(c->entries[0]));
		if (!c)
			return err_set(e, ENOMEM, "out of memory for the CPUID table");
		c->nent = nent;
		int r = kvm_ioctl(kvm->sys_fd, KVM_GET_SUPPORTED_CPUID, c);
		if (r == 0) {
			kvm->cpuid = c;
			return 0;
		}
		free(c);
		if (r != -E2BIG)
			return err_set(e, -r, "KVM_GET_SUPPORTED_CPUID failed: %s", strerror(-r));
	}
	return err_set(e, E2BIG, "KVM_GET_SUPPORTED_CPUID: the table does not fit 4096 entries");
}

static int kvm_check_vcpu_count(struct vm *vm, struct kvm_vm_state *kvm, struct err *e)
{
	unsigned want = vm->nr_vcpus ? vm->nr_vcpus : vm->cfg.nr_vcpus;
	if (want > kvm->caps.max_vcpus)
		return err_set(e, EINVAL, "%u vCPUs asked for, but this host's KVM allows at most "
			       "%u (KVM_CAP_MAX_VCPUS)", want, kvm->caps.max_vcpus);
	return 0;
}

/* TSS and identity map first (KVM wants them before any vCPU), then the
 * in-kernel interrupt controllers. */
static int kvm_setup_platform(struct kvm_vm_state *kvm, struct err *e)
{
	uint64_t ident = KVM_IDENTITY_MAP_ADDR;
	int r = kvm_ioctl(kvm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &ident);
	if (r < 0)
		return err_set(e, -r, "KVM_SET_IDENTITY_MAP_ADDR failed: %s", strerror(-r));
	r = ioctl(kvm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR);
	if (r < 0)
		return err_set(e, errno, "KVM_SET_TSS_ADDR failed: %s", strerror(errno));
	if (!kvm->caps.irqchip)
		return err_set(e, ENOTSUP, "this host's KVM has no in-kernel interrupt controller "
			       "(KVM_CAP_IRQCHIP), and vmdb has no userspace APIC yet");
	r = kvm_ioctl(kvm->vm_fd, KVM_CREATE_IRQCHIP, NULL);
	if (r < 0)
		return err_set(e, -r, "cannot create the in-kernel interrupt controller "
			       "(KVM_CREATE_IRQCHIP): %s", strerror(-r));
	if (kvm->caps.pit2) {
		struct kvm_pit_config pit;
		memset(&pit, 0, sizeof(pit));
		/* KVM then also serves port 0x61 (PIT channel 2 gate and output),
		 * which guests use to calibrate their timers against the PIT. */
		pit.flags = KVM_PIT_SPEAKER_DUMMY;
		r = kvm_ioctl(kvm->vm_fd, KVM_CREATE_PIT2, &pit);
		if (r < 0)
			return err_set(e, -r, "cannot create the in-kernel PIT (KVM_CREATE_PIT2): %s",
				       strerror(-r));
	}
	return 0;
}

static void kvm_vm_free(struct kvm_vm_state *kvm)
{
	if (kvm->vm_fd >= 0)
		close(kvm->vm_fd);
	if (kvm->sys_fd >= 0)
		close(kvm->sys_fd);
	free(kvm->cpuid);
	kvm_watch_free(kvm);
	kvm_msr_catch_free(kvm);
	free(kvm);
}

int kvm_op_vm_create(struct vm *vm, const struct emu_single_ops *assist, struct err *e)
{
	struct kvm_vm_state *kvm = calloc(1, sizeof(*kvm));
	if (!kvm)
		return err_set(e, ENOMEM, "out of memory for the KVM state");
	kvm->sys_fd = kvm->vm_fd = -1;
	kvm->assist = assist;
	kvm_watch_init(kvm);
	pthread_mutex_init(&kvm->msr.lock, NULL);

	int r = kvm_open_dev(kvm, e);
	if (r < 0)
		goto fail;
	kvm_read_caps(kvm);     /* /dev/kvm answers first, refined per VM below */
	r = kvm_check_vcpu_count(vm, kvm, e);
	if (r < 0)
		goto fail;
	r = ioctl(kvm->sys_fd, KVM_CREATE_VM, 0);
	if (r < 0) {
		r = err_set(e, errno, "cannot create a KVM virtual machine (KVM_CREATE_VM): %s",
			    strerror(errno));
		goto fail;
	}
	kvm->vm_fd = r;
	kvm_read_caps(kvm);
	kvm_msr_catch_init(kvm);
	r = ioctl(kvm->sys_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r <= 0) {
		r = err_set(e, errno, "KVM_GET_VCPU_MMAP_SIZE failed: %s", strerror(errno));
		goto fail;
	}
	kvm->run_size = (size_t)r;
	if ((r = kvm_setup_platform(kvm, e)) < 0 ||
	    (r = kvm_get_supported_cpuid(kvm, e)) < 0 ||
	    (r = kvm_install_kick_signal(kvm, e)) < 0)
		goto fail;
	/* only a guest with several CPUs makes hypercalls (kvm_cpuid.c) */
	kvm->hypercalls = (vm->nr_vcpus ? vm->nr_vcpus : vm->cfg.nr_vcpus) <= 1 ||
			  kvm_hypercall_returns(assist);
	vm->engine_vm = kvm;
	return 0;
fail:
	kvm_vm_free(kvm);
	return r;
}

void kvm_op_vm_destroy(struct vm *vm)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	if (!kvm)
		return;
	kvm_vm_free(kvm);
	vm->engine_vm = NULL;
}

int kvm_op_map_memory(struct vm *vm, uint64_t gpa, uint64_t size, void *host,
		      bool readonly, struct err *e)
{
	struct kvm_vm_state *kvm = kvm_vm_of(vm);
	const uint64_t page = 4096;
	if ((gpa | size | (uintptr_t)host) & (page - 1))
		return err_set(e, EINVAL, "guest memory at 0x%llx (size 0x%llx) is not "
			       "page-aligned", (unsigned long long)gpa, (unsigned long long)size);
	if (readonly && !kvm->caps.readonly_mem)
		return err_set(e, ENOTSUP, "this host's KVM cannot map read-only guest memory "
			       "(no KVM_CAP_READONLY_MEM)");
	if (kvm->nr_slots >= KVM_ENGINE_MAX_SLOTS || kvm->nr_slots >= kvm->caps.nr_memslots)
		return err_set(e, ENOSPC, "out of KVM memory slots (%u in use)", kvm->nr_slots);

	struct kvm_userspace_memory_region region = {
		.slot = kvm->nr_slots,
		.flags = readonly ? KVM_MEM_READONLY : 0,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)host,
	};
	int r = kvm_ioctl(kvm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
	if (r < 0)
		return err_set(e, -r, "cannot map guest memory 0x%llx-0x%llx: %s",
			       (unsigned long long)gpa, (unsigned long long)(gpa + size - 1),
			       strerror(-r));
	kvm->slots[kvm->nr_slots++] = (struct kvm_mem_slot){
		.gpa = gpa, .size = size, .host = host, .readonly = readonly,
	};
	return 0;
}

int kvm_op_irq_line(struct vm *vm, unsigned irq, int level)
{
	struct kvm_irq_level line = { .irq = irq, .level = level ? 1 : 0 };
	return kvm_ioctl(kvm_vm_of(vm)->vm_fd, KVM_IRQ_LINE, &line);
}

int kvm_read_phys(struct kvm_vm_state *kvm, uint64_t gpa, void *buf, size_t len)
{
	for (unsigned i = 0; i < kvm->nr_slots; i++) {
		const struct kvm_mem_slot *s = &kvm->slots[i];
		if (gpa < s->gpa || gpa - s->gpa > s->size || len > s->size - (gpa - s->gpa))
			continue;
		memcpy(buf, s->host + (gpa - s->gpa), len);
		return 0;
	}
	return -EFAULT;
}

int kvm_write_phys(struct kvm_vm_state *kvm, uint64_t gpa, const void *buf, size_t len)
{
	for (unsigned i = 0; i < kvm->nr_slots; i++) {
		const struct kvm_mem_slot *s = &kvm->slots[i];
		if (gpa < s->gpa || gpa - s->gpa > s->size || len > s->size - (gpa - s->gpa))
			continue;
		if (s->readonly)
			return -EFAULT;
		memcpy(s->host + (gpa - s->gpa), buf, len);
		return 0;
	}
	return -EFAULT;
}
