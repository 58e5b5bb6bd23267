/* tests/unit/fake_engine.h — a scripted fake engine for exercising the
 * debug core (tests/unit/debug_test.c) and the gdbserver above it
 * (fuzz/fuzz_gdbserver.c) without a CPU. It runs a one-byte instruction
 * set over vm->ram (FAKE_RAM_SIZE bytes): 0xcc is INT3 (a BPT exit with pc
 * = its address), 0xe6 a one-byte OUT (an IO exit to port 0x80, completed
 * on the next run), anything else a one-byte no-op; with single_step it
 * exits with DR6_BS after one instruction, at an enabled DR0-3 address with
 * a DB exit; a kick makes run() return KICKED. Two MSRs: EFER (reserved
 * bits refused) and FS_BASE. */
#ifndef VMDB_TEST_FAKE_ENGINE_H
#define VMDB_TEST_FAKE_ENGINE_H

#include <stdbool.h>

#include "engine/engine.h"
#include "machine/vm.h"

#define FAKE_RAM_SIZE (1u << 20)

/* vcpu->engine of each vCPU; the harness owns it (zeroed, then RIP set). */
struct fake_cpu {
	struct x86_regs regs;
	struct x86_sregs sregs;     /* zero: CR0.PG clear, virtual = physical */
	struct engine_debug dbg;
	int kicked;                 /* atomic */
	unsigned steps;
	unsigned gets[5], sets[5];  /* state op calls per X86_STATE_* part (bit n) */
	int fail_sets;              /* set_state fails with this (negative errno) */
	bool out_pending;           /* 0xe6 (a one-byte OUT) left for the machine */
	unsigned outs_handled;      /* the vCPU loop's port I/O handling, counted */
	unsigned lent_runs;         /* runs on the debugger's thread */
};
struct fake_cpu *fake_cpu_of(struct vcpu *v);

/* The fake, and the same lending vCPUs to the debugger's thread
 * (run_borrowed). */
extern const struct engine_ops fake_engine, fake_lending_engine;

/* A vCPU thread's loop as machine/vm.c runs it, through vm->debug_hooks
 * (which must be installed): pthread_create(..., fake_vcpu_thread, vcpu);
 * returns once vm_stopping(). */
void *fake_vcpu_thread(void *arg);

#endif
