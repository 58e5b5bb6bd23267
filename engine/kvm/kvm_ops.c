/* engine/kvm/kvm_ops.c — the KVM engine's ops, by group, and its
 * registration: the only symbols the rest of vmdb sees (through
 * engine_find("kvm")). */
#include "engine/kvm/kvm.h"

static const struct engine_vm_ops kvm_vm_ops = {
	.create = kvm_op_vm_create,
	.destroy = kvm_op_vm_destroy,
	.map_memory = kvm_op_map_memory,
	.irq_line = kvm_op_irq_line,
	.probe = kvm_op_probe,
	.linux_params = kvm_op_linux_params,
};

static const struct engine_vcpu_ops kvm_vcpu_ops = {
	.create = kvm_op_vcpu_create,
	.destroy = kvm_op_vcpu_destroy,
	.run = kvm_op_run,
	.kick = kvm_op_kick,
	.get_state = kvm_op_get_state,
	.set_state = kvm_op_set_state,
	.get_run_state = kvm_op_get_run_state,
	.msr_get = kvm_op_get_msr,
	.msr_set = kvm_op_set_msr,
	.irqchip_get = kvm_op_irqchip_get,
	.inject_exception = kvm_op_inject_exception,
	.fallback_stats = kvm_op_fallback_stats,
	.note_paused = kvm_op_note_paused,
};

static const struct engine_debug_ops kvm_debug_ops = {
	.set_debug = kvm_op_set_debug,
	.set_watch = kvm_op_set_watch,
	.check_access = kvm_op_check_access,
	.deliver_exception = kvm_op_deliver_exception,
};

static const struct engine_lend_ops kvm_lend_ops = {
	.run = kvm_op_run_borrowed,
	.events_pending = kvm_op_events_pending,
};

const struct engine_ops kvm_engine_ops = {
	.name = "kvm",
	.vm = &kvm_vm_ops,
	.vcpu = &kvm_vcpu_ops,
	.debug = &kvm_debug_ops,
	.lend = &kvm_lend_ops,
};

ENGINE_REGISTER(kvm_engine_ops);
