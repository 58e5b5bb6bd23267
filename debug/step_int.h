/* debug/step_int.h — between the step engine's two files: step.c (what a
 * step means for the guest: the shadows of TF and IF, images, frames,
 * HLT) and step_shadow.c (what an engine that hides, leaks or loses the
 * guest's TF needs on top). Nobody else includes it. */
#ifndef VMDB_DEBUG_STEP_INT_H
#define VMDB_DEBUG_STEP_INT_H

#include "debug/debug_int.h"

/* step.c: the guest's RFLAGS from the engine's and back, under the
 * shadows; guest memory through the step's snapshot of the system
 * registers (one page walk per page while stepping). */
uint64_t step_guest_flags(const struct debug_step_vcpu *st, uint64_t engine);
uint64_t step_engine_flags(const struct debug_step_vcpu *st, uint64_t guest);
int step_translate(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, uint64_t *gpa);
int step_read_virt(struct debug *d, struct debug_step_vcpu *st, uint64_t gva, void *buf,
		   size_t len);
int step_write_virt(struct debug *d, struct debug_step_vcpu *st, uint64_t gva,
		    const void *buf, size_t len);

/* step_shadow.c, only while st->tf_shadow (or its guards are armed). */
/* Before the step, with st->insn decoded: the fault guards, and IRETQ
 * or the image scrub for the stepped instruction. 1: the step is done
 * already (vmdb did the IRETQ), 0: the engine steps. */
int step_tf_before(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st, bool halted);
/* Give back the TF a scrubbed image lost for the step (nothing if none). */
void step_tf_unscrub(struct debug *d, unsigned vcpu, struct debug_step_vcpu *st);
/* The guest's own single-step trap at this boundary: regs are the
 * engine's after the step; *pc becomes the handler's when it was
 * delivered now. */
void step_tf_guest_db(struct debug *d, struct vcpu *vcpu, struct debug_step_vcpu *st,
		      struct x86_regs *regs, uint64_t *pc);

#endif
