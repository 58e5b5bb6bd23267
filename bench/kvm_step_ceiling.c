/* bench/kvm_step_ceiling.c — the raw single-step ceiling of this host's KVM:
 * one VM, one vCPU in flat 32-bit protected mode (the state a multiboot
 * kernel is entered in) running "inc eax; jmp back", and nothing but
 * KVM_RUN with KVM_GUESTDBG_SINGLESTEP in a loop. No debugger, no socket,
 * no register reads: every step is one KVM_EXIT_DEBUG and straight back
 * in. Any debug stub's step rate is measured against this figure.
 *
 * Usage: kvm_step_ceiling [SECONDS]   (default 1; fractions allowed)
 * Prints "kvm_step_ceiling N steps/s", "kvm_step_ceiling_steps N steps"
 * and "kvm_step_ceiling_cpu X us/step": the CPU time this thread used per
 * step, which a loaded machine changes far less than the rate (a stub's
 * CPU per step compares with it).
 * Standalone on purpose: it links nothing of vmdb, so it measures the host. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define CEIL_MEM_SIZE   0x10000u        /* one 64 KiB slot at guest-physical 0 */
#define CEIL_CODE_ADDR  0x1000u
#define CEIL_CR0_PE     (1u << 0)
#define CEIL_SEG_CODE   0xb             /* execute/read, accessed */
#define CEIL_SEG_DATA   0x3             /* read/write, accessed */

/* inc eax; jmp short back to the inc (rel8 = -3) */
static const uint8_t ceil_guest_code[] = { 0x40, 0xeb, 0xfd };

struct ceil_vm {
	int kvm, vm, vcpu;
	void *mem;
	struct kvm_run *run;
	size_t run_size;
};

static void ceil_die(const char *what)
{
	fprintf(stderr, "kvm_step_ceiling: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* An ioctl that must succeed: names the request in the failure. */
static int ceil_ioctl(int fd, unsigned long req, void *arg, const char *name)
{
	int r = ioctl(fd, req, arg);

	if (r < 0)
		ceil_die(name);
	return r;
}

static void ceil_flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

static void ceil_setup_cpu(struct ceil_vm *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	ceil_ioctl(v->vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	ceil_flat_segment(&sregs.cs, 0x08, CEIL_SEG_CODE);
	ceil_flat_segment(&sregs.ds, 0x10, CEIL_SEG_DATA);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 |= CEIL_CR0_PE;
	ceil_ioctl(v->vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");

	memset(&regs, 0, sizeof(regs));
	regs.rip = CEIL_CODE_ADDR;
	regs.rsp = CEIL_MEM_SIZE - 16;
	regs.rflags = 0x2;              /* bit 1 is reserved, always 1 */
	ceil_ioctl(v->vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
}

static void ceil_create(struct ceil_vm *v)
{
	struct kvm_userspace_memory_region region;
	struct kvm_guest_debug dbg;

	v->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (v->kvm < 0)
		ceil_die("open /dev/kvm");
	v->vm = ceil_ioctl(v->kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	v->mem = mmap(NULL, CEIL_MEM_SIZE, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (v->mem == MAP_FAILED)
		ceil_die("mmap guest memory");
	memcpy((uint8_t *)v->mem + CEIL_CODE_ADDR, ceil_guest_code, sizeof(ceil_guest_code));

	memset(&region, 0, sizeof(region));
	region.guest_phys_addr = 0;
	region.memory_size = CEIL_MEM_SIZE;
	region.userspace_addr = (uintptr_t)v->mem;
	ceil_ioctl(v->vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

	v->vcpu = ceil_ioctl(v->vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	v->run_size = (size_t)ceil_ioctl(v->kvm, KVM_GET_VCPU_MMAP_SIZE, 0,
					 "KVM_GET_VCPU_MMAP_SIZE");
	v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->vcpu, 0);
	if (v->run == MAP_FAILED)
		ceil_die("mmap kvm_run");
	ceil_setup_cpu(v);

	memset(&dbg, 0, sizeof(dbg));
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP;
	ceil_ioctl(v->vcpu, KVM_SET_GUEST_DEBUG, &dbg, "KVM_SET_GUEST_DEBUG");
}

static double ceil_clock(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double ceil_now(void)
{
	return ceil_clock(CLOCK_MONOTONIC);
}

/* Steps for about `seconds`; the clock is read every 256 steps so that
 * reading it costs nothing measurable. Returns the steps and the time. */
static uint64_t ceil_step_loop(struct ceil_vm *v, double seconds, double *elapsed)
{
	double t0 = ceil_now(), t = t0;
	uint64_t steps = 0;

	while (t - t0 < seconds) {
		for (int i = 0; i < 256; i++) {
			ceil_ioctl(v->vcpu, KVM_RUN, NULL, "KVM_RUN");
			if (v->run->exit_reason != KVM_EXIT_DEBUG) {
				fprintf(stderr, "kvm_step_ceiling: unexpected exit reason %u "
					"after %llu steps (expected KVM_EXIT_DEBUG)\n",
					v->run->exit_reason, (unsigned long long)steps);
				exit(1);
			}
			steps++;
		}
		t = ceil_now();
	}
	*elapsed = t - t0;
	return steps;
}

int main(int argc, char **argv)
{
	struct ceil_vm v;
	double seconds = 1.0, elapsed;
	uint64_t steps;

	if (argc > 2 || (argc == 2 && (seconds = strtod(argv[1], NULL)) <= 0)) {
		fprintf(stderr, "usage: %s [SECONDS]\n", argv[0]);
		return 2;
	}
	memset(&v, 0, sizeof(v));
	ceil_create(&v);
	ceil_step_loop(&v, 0.05, &elapsed);     /* warm up: first exits are slower */
	double cpu0 = ceil_clock(CLOCK_THREAD_CPUTIME_ID);
	steps = ceil_step_loop(&v, seconds, &elapsed);
	double cpu = ceil_clock(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	printf("kvm_step_ceiling %.0f steps/s\n", (double)steps / elapsed);
	printf("kvm_step_ceiling_steps %llu steps\n", (unsigned long long)steps);
	printf("kvm_step_ceiling_cpu %.2f us/step\n", cpu * 1e6 / (double)steps);
	return 0;
}
