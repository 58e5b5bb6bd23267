/* machine/vm.c — building the machine and running its vCPUs: guest RAM,
 * engine, vCPUs, devices, loader; one host thread per vCPU; the exit
 * dispatch (one call per exit kind) and the machine-wide stop. */
#include "machine/vm.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "machine/device.h"
#include "machine/loader.h"
#include "x86/decode.h"
#include "x86/desc.h"
#include "x86/paging.h"

static void vm_ram_all_dirty(struct vm *vm);

static int vm_alloc_ram(struct vm *vm, struct err *e)
{
	void *ram = mmap(NULL, vm->cfg.mem_size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return err_set(e, errno, "cannot allocate %" PRIu64 " MiB of guest memory: %s",
			       vm->cfg.mem_size >> 20, strerror(errno));
	/* Huge pages where the host's THP allows them (as QEMU asks too): fewer
	 * host TLB misses for a guest or an emulator touching its RAM, and a
	 * debugger's read of RAM the guest never touched faults once per 2 MiB,
	 * not per 4 KiB. Only advice: without THP nothing changes. */
	madvise(ram, vm->cfg.mem_size, MADV_HUGEPAGE);
	vm->ram = ram;
	vm->ram_size = vm->cfg.mem_size;
	vm->low_ram_size = vm->ram_size < VM_LOW_RAM_MAX ? vm->ram_size : VM_LOW_RAM_MAX;
	vm->ram_frames = (vm->ram_size + X86_PAGE_SIZE - 1) / X86_PAGE_SIZE;
	vm->ram_dirty = malloc((vm->ram_frames + 63) / 64 * sizeof(uint64_t));
	if (!vm->ram_dirty)
		return err_set(e, ENOMEM, "out of memory for the guest RAM's dirty map");
	vm_ram_all_dirty(vm);
	return 0;
}

/* Power-on: every page counts as written until a snapshot has seen it. */
static void vm_ram_all_dirty(struct vm *vm)
{
	memset(vm->ram_dirty, 0xff, (vm->ram_frames + 63) / 64 * sizeof(uint64_t));
}

static int vm_map_ram(struct vm *vm, struct err *e)
{
	int r = vm->engine->vm->map_memory(vm, 0, vm->low_ram_size, vm->ram, false, e);
	if (r < 0 || vm->ram_size == vm->low_ram_size)
		return r;
	return vm->engine->vm->map_memory(vm, VM_HIGH_RAM_BASE, vm->ram_size - vm->low_ram_size,
				      vm->ram + vm->low_ram_size, false, e);
}

static int vm_create_vcpus(struct vm *vm, struct err *e)
{
	for (unsigned i = 0; i < vm->cfg.nr_vcpus; i++) {
		struct vcpu *vcpu = &vm->vcpus[i];
		vcpu->vm = vm;
		vcpu->id = i;
		int r = vm->engine->vcpu->create(vm, vcpu, e);
		if (r < 0)
			return err_wrap(e, "creating vCPU %u", i);
		vm->nr_vcpus = i + 1;
	}
	return 0;
}

static int vm_build(struct vm *vm, const struct kernel_image *image, struct err *e);

static int vm_init(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	memset(vm, 0, sizeof(*vm));
	vm->cfg = *cfg;
	vm->pio.name = "pio";
	vm->mmio.name = "mmio";
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	pthread_rwlock_init(&vm->engine_lock, NULL);
	output_watch_init(&vm->output_watch);
	vm->nr_boots = 1;

	if (cfg->nr_vcpus == 0 || cfg->nr_vcpus > VM_MAX_GUEST_VCPUS)
		return err_set(e, EINVAL, "--smp %u: vmdb supports 1 to %u vCPUs (APIC IDs 0 to "
			       "0xFE; 0xFF is the xAPIC broadcast ID)", cfg->nr_vcpus,
			       VM_MAX_GUEST_VCPUS);
	vm->engine = engine_find(cfg->engine);
	if (!vm->engine)
		return err_set(e, EINVAL, "unknown engine '%s'", cfg->engine);
	vm->engine_assist = engine_assist();
	return 0;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int r = vm_init(vm, cfg, e);
	if (r < 0)
		return r;
	struct kernel_image image;
	r = loader_open(cfg->kernel_path, &image, e);
	if (r < 0)
		return r;
	r = vm_build(vm, &image, e);
	loader_close(&image);
	return r;
}

/* The engine's VM with guest RAM mapped and every vCPU in its power-on
 * state (the BSP's registers are the loader's business). */
static int vm_engine_start(struct vm *vm, struct err *e)
{
	vm->nr_vcpus = vm->cfg.nr_vcpus;    /* engines check it against the host */
	int r = vm->engine->vm->create(vm, vm->engine_assist, e);
	vm->nr_vcpus = 0;
	if (r < 0)
		return r;
	if ((r = vm_map_ram(vm, e)) < 0)
		return r;
	return vm_create_vcpus(vm, e);
}

static void vm_engine_stop(struct vm *vm)
{
	if (!vm->engine)
		return;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->engine->vcpu->destroy(&vm->vcpus[i]);
	vm->nr_vcpus = 0;
	if (vm->engine_vm)
		vm->engine->vm->destroy(vm);
	vm->engine_vm = NULL;
}

/* RAM, engine, vCPUs and devices. */
static int vm_build_machine(struct vm *vm, struct err *e)
{
	int r = vm_alloc_ram(vm, e);
	if (r < 0)
		return r;
	if ((r = vm_engine_start(vm, e)) < 0)
		return r;
	return machine_devices_init(vm, e);
}

/* The machine, then the kernel into it. */
static int vm_build(struct vm *vm, const struct kernel_image *image, struct err *e)
{
	int r = vm_build_machine(vm, e);
	if (r < 0)
		return r;
	return loader_load(vm, image, e);
}

int vm_create_machine(struct vm *vm, const struct vm_config *cfg, struct err *e)
{
	int r = vm_init(vm, cfg, e);
	if (r < 0)
		return r;
	return vm_build_machine(vm, e);
}

/* Power-on again after a reset: a new engine VM (so every vCPU, LAPIC,
 * IOAPIC, PIC and PIT is as at power-on, APs waiting for SIPI), RAM
 * zeroed, devices reset, the kernel read and loaded again. No vCPU thread
 * runs; the engine lock keeps device threads away from the engine. */
static int vm_reboot(struct vm *vm, struct err *e)
{
	pthread_rwlock_wrlock(&vm->engine_lock);
	vm_engine_stop(vm);
	/* private anonymous memory reads as zeros again, page by page */
	madvise(vm->ram, vm->ram_size, MADV_DONTNEED);
	vm_ram_all_dirty(vm);
	int r = vm_engine_start(vm, e);
	pthread_rwlock_unlock(&vm->engine_lock);
	if (r < 0)
		return err_wrap(e, "rebooting");
	for (unsigned i = 0; i < vm->nr_resets; i++)
		vm->resets[i].fn(vm->resets[i].opaque);
	struct kernel_image image;
	if ((r = loader_open(vm->cfg.kernel_path, &image, e)) < 0)
		return err_wrap(e, "rebooting");
	r = loader_load(vm, &image, e);
	loader_close(&image);
	if (r < 0)
		return err_wrap(e, "rebooting");
	vm->nr_boots++;
	return 0;
}

int vm_on_reset(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_resets == VM_MAX_RESETS)
		return err_set(e, ENOSPC, "too many device resets");
	vm->resets[vm->nr_resets++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

void vm_irq_line(struct vm *vm, unsigned irq, int level)
{
	pthread_rwlock_rdlock(&vm->engine_lock);
	if (vm->engine && vm->engine_vm && vm->engine->vm->irq_line)
		vm->engine->vm->irq_line(vm, irq, level);
	pthread_rwlock_unlock(&vm->engine_lock);
}

uint64_t vm_guest_ns(struct vm *vm)
{
	if (vm->engine && vm->engine->vm->guest_ns)
		return vm->engine->vm->guest_ns(vm);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vm_realtime(struct vm *vm, struct timespec *ts)
{
	void (*engine_clock)(struct vm *, struct timespec *) =
		__atomic_load_n(&vm->rr.realtime, __ATOMIC_ACQUIRE);
	if (engine_clock)
		engine_clock(vm, ts);
	else if (clock_gettime(CLOCK_REALTIME, ts) < 0)
		*ts = (struct timespec){ 0 };
}

int vm_on_exit(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_exit_hooks == VM_MAX_EXIT_HOOKS)
		return err_set(e, ENOSPC, "too many device exit hooks");
	vm->exit_hooks[vm->nr_exit_hooks++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

int vm_on_destroy(struct vm *vm, void (*fn)(void *), void *opaque, struct err *e)
{
	if (vm->nr_teardowns == VM_MAX_TEARDOWNS)
		return err_set(e, ENOSPC, "too many device teardowns");
	vm->teardowns[vm->nr_teardowns++] = (struct vm_teardown){ fn, opaque };
	return 0;
}

int vm_on_snapshot(struct vm *vm, const char *name, size_t size,
		   void (*save)(void *opaque, void *buf),
		   void (*restore)(void *opaque, const void *buf), void *opaque, struct err *e)
{
	if (vm->nr_snapshot_hooks == VM_MAX_SNAPSHOT_HOOKS)
		return err_set(e, ENOSPC, "too many device snapshot hooks");
	vm->snapshot_hooks[vm->nr_snapshot_hooks++] =
		(struct vm_snapshot_hook){ name, size, save, restore, opaque };
	return 0;
}

void vm_destroy(struct vm *vm)
{
	while (vm->nr_teardowns > 0) {
		struct vm_teardown *t = &vm->teardowns[--vm->nr_teardowns];
		t->fn(t->opaque);
	}
	vm_engine_stop(vm);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	vm->ram = NULL;
	free(vm->ram_dirty);
	vm->ram_dirty = NULL;
	pthread_rwlock_destroy(&vm->engine_lock);
	output_watch_destroy(&vm->output_watch);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
}

void *vm_gpa_to_host(struct vm *vm, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	if (gpa < vm->low_ram_size) {
		if (len > vm->low_ram_size - gpa)
			return NULL;
		return vm->ram + gpa;
	}
	uint64_t high = vm->ram_size - vm->low_ram_size;
	if (gpa < VM_HIGH_RAM_BASE || gpa - VM_HIGH_RAM_BASE >= high ||
	    len > high - (gpa - VM_HIGH_RAM_BASE))
		return NULL;
	return vm->ram + vm->low_ram_size + (gpa - VM_HIGH_RAM_BASE);
}

unsigned vm_ram_ranges(const struct vm *vm, struct vm_ram_range out[2])
{
	out[0] = (struct vm_ram_range){ 0, vm->low_ram_size };
	if (vm->ram_size == vm->low_ram_size)
		return 1;
	out[1] = (struct vm_ram_range){ VM_HIGH_RAM_BASE,
					VM_HIGH_RAM_BASE + (vm->ram_size - vm->low_ram_size) };
	return 2;
}

int vm_read_phys(void *opaque, uint64_t gpa, void *buf, size_t len)
{
	void *host = vm_gpa_to_host(opaque, gpa, len);
	if (!host)
		return -EFAULT;
	memcpy(buf, host, len);
	return 0;
}

int vm_read_virt(struct vm *vm, const struct x86_sregs *sregs, uint64_t gva, void *buf,
		 size_t len)
{
	uint8_t *out = buf;
	while (len > 0) {
		uint64_t gpa;
		size_t chunk = 4096 - (gva & 4095);
		if (chunk > len)
			chunk = len;
		if (x86_translate(sregs, vm_read_phys, vm, gva, &gpa) < 0 ||
		    vm_read_phys(vm, gpa, out, chunk) < 0)
			return -EFAULT;
		gva += chunk;
		out += chunk;
		len -= chunk;
	}
	return 0;
}

void vm_request_exit(struct vm *vm, int status, const char *fmt, ...)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->stopping && !vm->reset_pending) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->reset_pending = false;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(vm->exit_message, sizeof(vm->exit_message), fmt, ap);
	va_end(ap);
	vm->exit_status = status;
	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	/* Threads started after this point see `stopping` before their first
	 * run; those running now are kicked out of it. A thread cannot finish
	 * (and be joined) while we hold the lock: vcpu_thread_exit takes it. */
	for (unsigned i = 0; i < vm->nr_threads; i++)
		if (!vm->vcpus[i].thread_done)
			vm->engine->vcpu->kick(&vm->vcpus[i]);
	pthread_mutex_unlock(&vm->lock);

	for (unsigned i = 0; i < vm->nr_exit_hooks; i++)
		vm->exit_hooks[i].fn(vm->exit_hooks[i].opaque);
	if (vm->debug_hooks && vm->debug_hooks->on_vm_stop)
		vm->debug_hooks->on_vm_stop(vm, status, vm->exit_message);
}

void vm_request_reset(struct vm *vm, const char *why)
{
	if (vm->cfg.no_reboot) {
		vm_request_exit(vm, 0, "the guest rebooted (%s); --no-reboot: vmdb ends", why);
		return;
	}
	pthread_mutex_lock(&vm->lock);
	if (!vm->stopping) {
		vm->reset_pending = true;
		__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < vm->nr_threads; i++)
			if (!vm->vcpus[i].thread_done)
				vm->engine->vcpu->kick(&vm->vcpus[i]);
	}
	pthread_mutex_unlock(&vm->lock);
	if (vm->debug_hooks && vm->debug_hooks->on_reset)
		vm->debug_hooks->on_reset(vm);
}

static void vcpu_thread_exit(struct vcpu *vcpu)
{
	pthread_mutex_lock(&vcpu->vm->lock);
	vcpu->thread_done = true;
	pthread_mutex_unlock(&vcpu->vm->lock);
}

/* "rip 0x... (mov eax, 1)" for messages about where a vCPU stopped. */
static void vcpu_describe_pc(struct vcpu *vcpu, uint64_t pc, const uint8_t *insn,
			     unsigned insn_len, char *out, size_t size)
{
	struct x86_sregs sregs;
	char text[96] = "instruction bytes unknown";
	enum x86_mode mode = X86_MODE_LONG64;

	if (engine_get_sregs(vcpu->vm->engine, vcpu, &sregs) == 0)
		mode = x86_mode_of(&sregs);
	if (insn_len > 0) {
		char bytes[3 * 16 + 1] = "";
		unsigned shown = x86_format_insn(mode, pc, insn, insn_len, text, sizeof(text));
		if (shown == 0 || shown > 16)
			shown = insn_len < 16 ? insn_len : 16;
		for (unsigned i = 0; i < shown; i++)
			snprintf(bytes + 3 * i, 4, "%02x ", insn[i]);
		bytes[3 * shown - 1] = '\0';
		snprintf(out, size, "RIP 0x%" PRIx64 ": %s [%s], %s", pc, text, bytes,
			 x86_mode_name(mode));
		return;
	}
	snprintf(out, size, "RIP 0x%" PRIx64 " (%s), %s", pc, text, x86_mode_name(mode));
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
	struct x86_regs regs;
	if (engine_get_regs(vcpu->vm->engine, vcpu, &regs) < 0)
		return 0;
	return regs.rip;
}

static void vcpu_handle_io(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct vm *vm = vcpu->vm;
	uint8_t *data = exit->io.data;
	for (uint32_t i = 0; i < exit->io.count; i++, data += exit->io.size) {
		int r = bus_access(&vm->pio, exit->io.port, data, exit->io.size,
				   exit->io.is_write);
		if (r < 0 && !exit->io.is_write)
			memset(data, 0xff, exit->io.size);
	}
	char line[OUTPUT_WATCH_LINE];
	if (exit->io.is_write && output_watch_take(&vm->output_watch, line, sizeof(line)) &&
	    vm->debug_hooks && vm->debug_hooks->on_output_match)
		vm->debug_hooks->on_output_match(vm, vcpu, line);
}

static void vcpu_handle_mmio(struct vcpu *vcpu, struct vm_exit *exit)
{
	int r = bus_access(&vcpu->vm->mmio, exit->mmio.gpa, exit->mmio.data, exit->mmio.len,
			   exit->mmio.is_write);
	if (r < 0 && !exit->mmio.is_write)
		memset(exit->mmio.data, 0xff, exit->mmio.len);
}

static void describe_shutdown(struct vcpu *vcpu, int vector, char *out, size_t size)
{
	char where[256];
	uint64_t rip = vcpu_rip(vcpu);
	uint8_t insn[16];
	unsigned len = 0;
	struct x86_sregs sregs;

	/* KVM does not say which exception escalated; the instruction at RIP
	 * usually does (ud2, a faulting load, ...). */
	if (engine_get_sregs(vcpu->vm->engine, vcpu, &sregs) == 0 &&
	    vm_read_virt(vcpu->vm, &sregs, sregs.cs.base + rip, insn, sizeof(insn)) == 0)
		len = sizeof(insn);
	vcpu_describe_pc(vcpu, rip, insn, len, where, sizeof(where));
	char first[48] = "an exception";
	if (vector >= 0 && x86_vector_name((unsigned)vector))
		snprintf(first, sizeof(first), "%s (vector %d)", x86_vector_name((unsigned)vector),
			 vector);
	snprintf(out, size, "vCPU %u: triple fault: %s could not be delivered, nor the double "
		 "fault after it; guest stopped at %s", vcpu->id, first, where);
}

bool vm_describe_fatal(struct vcpu *vcpu, const struct vm_exit *exit, char *out, size_t size)
{
	char where[256];
	switch (exit->reason) {
	case VM_EXIT_SHUTDOWN:
		describe_shutdown(vcpu, exit->shutdown.vector, out, size);
		return true;
	case VM_EXIT_EMULATION_FAILURE:
		vcpu_describe_pc(vcpu, exit->failure.pc, exit->failure.insn,
				 exit->failure.insn_len, where, sizeof(where));
		snprintf(out, size, "vCPU %u: the %s engine cannot execute the instruction at %s",
			 vcpu->id, vcpu->vm->engine->name, where);
		return true;
	case VM_EXIT_ENTRY_FAILURE:
		snprintf(out, size, "vCPU %u: the engine refused the guest state (reason 0x%"
			 PRIx64 ")", vcpu->id, exit->entry_failure.hw_reason);
		return true;
	default:
		return false;
	}
}

/* The guest's own INT3 with no debugger: deliver its #BP as hardware would. */
static void vcpu_reflect_bpt(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct vm *vm = vcpu->vm;
	struct x86_regs regs;

	if (!vm->engine->vcpu->inject_exception || engine_get_regs(vm->engine, vcpu, &regs) < 0) {
		vm_request_exit(vm, 1, "vCPU %u: guest INT3 at 0x%" PRIx64
				" and no way to deliver #BP on engine %s", vcpu->id,
				exit->bpt.pc, vm->engine->name);
		return;
	}
	regs.rip = exit->bpt.pc + 1;
	if (engine_set_regs(vm->engine, vcpu, &regs) < 0 ||
	    vm->engine->vcpu->inject_exception(vcpu, X86_BP, false, 0) < 0)
		vm_request_exit(vm, 1, "vCPU %u: cannot deliver #BP for the guest's INT3 at 0x%"
				PRIx64, vcpu->id, exit->bpt.pc);
}

/* Nested read locks are fine (vm_irq_line from a device): the engine lock
 * prefers readers, glibc's default. */
enum vm_device_exit vm_handle_device_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct vm *vm = vcpu->vm;
	if (exit->reason != VM_EXIT_IO && exit->reason != VM_EXIT_MMIO)
		return VM_DEVICE_EXIT_NOT;
	pthread_rwlock_rdlock(&vm->engine_lock);
	if (exit->reason == VM_EXIT_IO)
		vcpu_handle_io(vcpu, exit);
	else
		vcpu_handle_mmio(vcpu, exit);
	bool stopping = vm_stopping(vm);
	pthread_rwlock_unlock(&vm->engine_lock);
	return stopping ? VM_DEVICE_EXIT_STOPPING : VM_DEVICE_EXIT_DONE;
}

static void vcpu_handle_exit(struct vcpu *vcpu, struct vm_exit *exit)
{
	struct vm *vm = vcpu->vm;

	switch (exit->reason) {
	case VM_EXIT_IO:
		vcpu_handle_io(vcpu, exit);
		break;
	case VM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu, exit);
		break;
	case VM_EXIT_SHUTDOWN:
	case VM_EXIT_EMULATION_FAILURE:
	case VM_EXIT_ENTRY_FAILURE: {
		char why[512];
		vm_describe_fatal(vcpu, exit, why, sizeof(why));
		vm_request_exit(vm, 1, "%s", why);
		break;
	}
	case VM_EXIT_RESET:
		vm_request_reset(vm, "the engine reported a reset");
		break;
	case VM_EXIT_BPT:
		vcpu_reflect_bpt(vcpu, exit);
		break;
	case VM_EXIT_KICKED:
	case VM_EXIT_DB:          /* a leftover debug exit with no debugger to take it */
	case VM_EXIT_MOV_DR:
	case VM_EXIT_ACCESS:      /* the same, for a catch the debugger dropped */
	case VM_EXIT_NONE:
		break;
	case VM_EXIT_HLT:
		vm_request_exit(vm, 1, "vCPU %u: halted, and engine %s has no interrupt "
				"controller to wake it", vcpu->id, vm->engine->name);
		break;
	case VM_EXIT_UNKNOWN:
	default:
		vm_request_exit(vm, 1, "vCPU %u: unexpected exit from engine %s (code %u) at RIP 0x%"
				PRIx64, vcpu->id, vm->engine->name, exit->unknown.code,
				vcpu_rip(vcpu));
		break;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	const struct vm_debug_hooks *hooks = vm->debug_hooks;
	struct vm_exit exit;

	while (!vm_stopping(vm)) {
		memset(&exit, 0, sizeof(exit));
		bool handed = hooks && hooks->before_run && hooks->before_run(vm, vcpu, &exit);
		if (vm_stopping(vm))
			break;
		int r = handed ? 0 : vm->engine->vcpu->run(vcpu, &exit);
		if (r < 0) {
			vm_request_exit(vm, 1, "vCPU %u: engine %s failed to run: %s", vcpu->id,
					vm->engine->name, strerror(-r));
			break;
		}
		if (hooks && hooks->on_exit && hooks->on_exit(vm, vcpu, &exit))
			continue;
		vcpu_handle_exit(vcpu, &exit);
	}
	vcpu_thread_exit(vcpu);
	return NULL;
}

/* Start one thread per vCPU and wait for all of them to leave. */
static void vm_run_threads(struct vm *vm)
{
	unsigned started = 0;

	pthread_mutex_lock(&vm->lock);
	vm->nr_threads = 0;
	for (unsigned i = 0; i < vm->nr_vcpus; i++)
		vm->vcpus[i].thread_done = false;
	pthread_mutex_unlock(&vm->lock);
	for (; started < vm->nr_vcpus; started++) {
		struct vcpu *vcpu = &vm->vcpus[started];
		pthread_mutex_lock(&vm->lock);
		int r = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);
		if (r == 0)
			vm->nr_threads = started + 1;
		pthread_mutex_unlock(&vm->lock);
		if (r != 0) {
			vm_request_exit(vm, 1, "cannot start a thread for vCPU %u: %s", started,
					strerror(r));
			break;
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(vm->vcpus[i].thread, NULL);
}

/* True when the machine stopped only to boot again. */
static bool vm_reset_requested(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	bool reset = vm->reset_pending;
	pthread_mutex_unlock(&vm->lock);
	return reset;
}

static void vm_resume_after_reset(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->reset_pending) {
		vm->reset_pending = false;
		__atomic_store_n(&vm->stopping, false, __ATOMIC_RELEASE);
	}
	pthread_mutex_unlock(&vm->lock);
}

int vm_run(struct vm *vm)
{
	for (;;) {
		vm_run_threads(vm);
		if (!vm_reset_requested(vm))
			break;
		struct err e = { 0 };
		if (vm_reboot(vm, &e) < 0) {
			vm_request_exit(vm, 1, "%s", e.msg);
			break;
		}
		vm_resume_after_reset(vm);
		/* after `stopping` is cleared: the debugger sees a machine that runs */
		if (vm->debug_hooks && vm->debug_hooks->on_reboot)
			vm->debug_hooks->on_reboot(vm);
	}
	return vm->exit_status;
}
