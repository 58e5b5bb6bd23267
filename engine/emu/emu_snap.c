/* engine/emu/emu_snap.c — the software engine's part of whole-machine
 * snapshots (engine_snap_ops, for machine/snapshot.c): every vCPU's
 * architectural and execution state, the platform (emu_platform.c) and
 * the scheduler's position (emu_engine.c), as one buffer.
 *
 * A vCPU is saved whole (struct emu_cpu, and struct emu_core from `mode`
 * on: everything but the jump buffer and the TLB), so a field added to
 * either is in snapshots without anyone remembering to add it. Restoring
 * keeps what is not the guest's: the links between the engine's objects,
 * the kick flag other threads set, the run loop's own flags, and the
 * debugger's requests (set_debug, set_watch, a HLT step in progress),
 * which stay as the debugger last asked. The caches of guest memory are
 * dropped: every TLB, and the blocks compare their bytes again.
 *
 * Guest RAM is machine/'s; the write tags of the TLBs are how the engine
 * keeps vm->ram_dirty exact (emu_mem.c grants one only on a page marked
 * written): ram_clean takes them all back. */
#include "engine/emu/emu_core.h"

#include <stddef.h>
#include <string.h>

#include "engine/emu/emu_debug.h"
#include "engine/emu/emu_platform.h"

#define EMU_SNAP_MAGIC 0x50414e53756d65ull   /* "emuSNAP" */

/* The part of struct emu_core a snapshot holds: from `mode` to the end. */
#define CORE_FROM offsetof(struct emu_core, mode)
#define CORE_BYTES (sizeof(struct emu_core) - CORE_FROM)
_Static_assert(offsetof(struct emu_core, jmp) < CORE_FROM &&
	       offsetof(struct emu_core, tlb) < CORE_FROM,
	       "the jump buffer and the TLB stay out of snapshots");

struct snap_header {
	uint64_t magic;
	uint32_t nr_cpus;
	uint32_t cpu_bytes, core_bytes, plat_bytes;
};

static struct emu_vm *evm_of(struct vm *vm)
{
	return (struct emu_vm *)vm->engine_vm;
}

static size_t cpu_slot_bytes(void)
{
	return sizeof(struct emu_cpu) + CORE_BYTES;
}

static size_t snap_size(struct vm *vm)
{
	struct emu_vm *evm = evm_of(vm);
	return sizeof(struct snap_header) + evm->nr_cpus * cpu_slot_bytes() +
	       sizeof(struct emu_sched_image) + evm->nr_cpus * sizeof(struct emu_sched_cpu_image) +
	       emu_platform_snap_size(evm);
}

static void cpu_save(struct emu_cpu *cpu, uint8_t *slot)
{
	memcpy(slot, cpu, sizeof(*cpu));
	memcpy(slot + sizeof(*cpu), (const uint8_t *)cpu->core + CORE_FROM, CORE_BYTES);
}

/* The vCPU as saved, with the live links and the debugger's requests. */
static void cpu_restore(struct emu_cpu *cpu, const uint8_t *slot)
{
	struct emu_core *c = cpu->core;
	struct emu_vm *evm = cpu->evm;
	struct vcpu *vcpu = cpu->vcpu;
	struct emu_lapic *lapic = cpu->lapic;
	unsigned id = cpu->id;
	struct engine_debug debugger = cpu->debugger;
	const struct engine_watch *watch = cpu->dbg.watch;
	unsigned nr_watch = cpu->dbg.nr_watch;

	memcpy(cpu, slot, sizeof(*cpu));
	cpu->evm = evm;
	cpu->vcpu = vcpu;
	cpu->lapic = lapic;
	cpu->core = c;
	cpu->id = id;
	cpu->dbg.watch = watch;
	cpu->dbg.nr_watch = nr_watch;

	bool kick = __atomic_load_n(&c->kick, __ATOMIC_ACQUIRE);
	bool in_loop = c->in_loop, hlt_step = c->hlt_step;
	uint64_t hlt_next = c->hlt_next, hlt_rsp = c->hlt_rsp, code_marks = c->code_marks;
	struct engine_debug hlt_saved = c->hlt_saved;
	struct emu_blocks *blocks = c->blocks;

	memcpy((uint8_t *)c + CORE_FROM, slot + sizeof(*cpu), CORE_BYTES);
	__atomic_store_n(&c->kick, kick, __ATOMIC_RELEASE);
	c->in_loop = in_loop;
	c->hlt_step = hlt_step;
	c->hlt_next = hlt_next;
	c->hlt_rsp = hlt_rsp;
	c->hlt_saved = hlt_saved;
	c->blocks = blocks;
	c->ftlb = c->tlb[c->cpl == 3];
	c->code_marks = code_marks;
	c->lk_on = c->lk_written = false;
	c->lk_p = NULL;
	emu_tlb_flush(cpu);
	emu_dbg_set_debug(cpu, &debugger);
}

static int snap_save(struct vm *vm, void *buf, size_t size, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	if (size < snap_size(vm))
		return err_set(e, EINVAL, "the emu engine's snapshot needs %zu bytes, not %zu",
			       snap_size(vm), size);
	uint8_t *p = buf;
	struct snap_header h = { .magic = EMU_SNAP_MAGIC, .nr_cpus = evm->nr_cpus,
				 .cpu_bytes = sizeof(struct emu_cpu), .core_bytes = CORE_BYTES,
				 .plat_bytes = (uint32_t)emu_platform_snap_size(evm) };
	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	for (unsigned i = 0; i < evm->nr_cpus; i++, p += cpu_slot_bytes()) {
		if (evm->cpus[i])
			cpu_save(evm->cpus[i], p);
		else
			memset(p, 0, cpu_slot_bytes());
	}
	struct emu_sched_image sched;
	struct emu_sched_cpu_image *sched_cpus = (struct emu_sched_cpu_image *)(p + sizeof(sched));
	emu_sched_save(evm, &sched, sched_cpus);
	memcpy(p, &sched, sizeof(sched));
	p += sizeof(sched) + evm->nr_cpus * sizeof(*sched_cpus);
	emu_platform_save(evm, p);
	return 0;
}

static int snap_restore(struct vm *vm, const void *buf, size_t size, struct err *e)
{
	struct emu_vm *evm = evm_of(vm);
	const uint8_t *p = buf;
	struct snap_header h;
	if (size != snap_size(vm))
		return err_set(e, EINVAL, "an emu engine snapshot of %zu bytes does not fit this "
			       "machine (%zu)", size, snap_size(vm));
	memcpy(&h, p, sizeof(h));
	if (h.magic != EMU_SNAP_MAGIC || h.nr_cpus != evm->nr_cpus ||
	    h.cpu_bytes != sizeof(struct emu_cpu) || h.core_bytes != CORE_BYTES ||
	    h.plat_bytes != emu_platform_snap_size(evm))
		return err_set(e, EINVAL, "not an emu engine snapshot of this machine");
	p += sizeof(h);
	for (unsigned i = 0; i < evm->nr_cpus; i++, p += cpu_slot_bytes())
		if (evm->cpus[i])
			cpu_restore(evm->cpus[i], p);
	struct emu_sched_image sched;
	memcpy(&sched, p, sizeof(sched));
	struct emu_sched_cpu_image cpus[VM_MAX_VCPUS];
	memcpy(cpus, p + sizeof(sched), evm->nr_cpus * sizeof(cpus[0]));
	p += sizeof(sched) + evm->nr_cpus * sizeof(cpus[0]);
	emu_platform_restore(evm, p);
	emu_sched_restore(evm, &sched, cpus);
	emu_blocks_outside(evm);
	return 0;
}

/* Every write tag goes: the next write to each page marks it again. */
static void snap_ram_clean(struct vm *vm)
{
	struct emu_vm *evm = evm_of(vm);
	for (unsigned i = 0; i < evm->nr_cpus; i++) {
		if (!evm->cpus[i])
			continue;
		struct emu_tlb_entry *t = &evm->cpus[i]->core->tlb[0][0];
		for (unsigned k = 0; k < 2 * EMU_TLB_SIZE; k++, t++)
			t->tag_w = ~0ull;
		emu_slots_empty(evm->cpus[i]->core, EMU_SLOT_WAYS);
	}
}

const struct engine_snap_ops emu_snap_ops = {
	.size = snap_size,
	.save = snap_save,
	.restore = snap_restore,
	.ram_clean = snap_ram_clean,
};
