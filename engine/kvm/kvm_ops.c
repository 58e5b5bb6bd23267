/* engine/kvm/kvm_ops.c — the KVM engine's ops table, the only symbol the
 * rest of vmdb sees (through engine_find("kvm")). */
#include "engine/kvm/kvm.h"

const struct engine_ops kvm_engine_ops = {
	.name = "kvm",
	.vm_create = kvm_op_vm_create,
	.vm_destroy = kvm_op_vm_destroy,
	.map_memory = kvm_op_map_memory,
	.irq_line = kvm_op_irq_line,
	.probe = kvm_op_probe,
	.vcpu_create = kvm_op_vcpu_create,
	.vcpu_destroy = kvm_op_vcpu_destroy,
	.run = kvm_op_run,
	.kick = kvm_op_kick,
	.run_borrowed = kvm_op_run_borrowed,
	.get_state = kvm_op_get_state,
	.set_state = kvm_op_set_state,
	.get_run_state = kvm_op_get_run_state,
	.set_debug = kvm_op_set_debug,
	.set_watch = kvm_op_set_watch,
	.msr_get = kvm_op_get_msr,
	.msr_set = kvm_op_set_msr,
	.inject_exception = kvm_op_inject_exception,
	.fallback_stats = kvm_op_fallback_stats,
};
