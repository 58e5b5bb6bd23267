/* tests/unit/fake_engine.h — a scripted fake engine for exercising the
 * debug core (tests/unit/debug_test.c) and the gdbserver above it
 * (fuzz/fuzz_gdbserver.c) without a CPU. It runs a one-byte instruction
 * set over vm->ram (vm->ram_size bytes, the program wraps around to 0x100):
 * 0xcc is INT3 (a BPT exit with pc = its address), 0xe6 a one-byte OUT (an
 * IO exit to port 0x80, completed on the next run), 0xf4 HLT (sleeps until
 * a kick; a no-op when stepped), anything else a one-byte no-op; with single_step it
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
	int kicked;                 /* atomic; a futex HLT sleeps on */
	int halted;                 /* atomic: asleep on an HLT; a futex woken as it sleeps */
	int halt_fd;                /* nonzero: an eventfd written as it sleeps on an HLT */
	unsigned steps;             /* instructions retired (atomic) */
	unsigned gets[5], sets[5];  /* state op calls per X86_STATE_* part (bit n) */
	int fail_sets;              /* set_state fails with this (negative errno) */
	bool out_pending;           /* 0xe6 (a one-byte OUT) left for the machine */
	uint8_t out_data[8];        /* its byte, where machine/ reads it (io.data) */
	unsigned outs_handled;      /* the vCPU loop's port I/O handling, counted */
	unsigned lent_runs;         /* runs on the debugger's thread */
	/* the shared-DR engine: the guest's own file, the hardware is dbg's
	 * while the debugger loads any, else the guest's; 0xd7 is the guest's
	 * "MOV DR" loading DR0-3/DR7 from dr_next; a #DB the guest takes (natively or
	 * injected) returns with RF set (its handler's frame) */
	bool shared;
	struct x86_debugregs dr, dr_next;
	bool rf;
	unsigned guest_dbs;         /* #DBs that reached the guest */
};
struct fake_cpu *fake_cpu_of(struct vcpu *v);

/* The fake; the same lending vCPUs to the debugger's thread (lend.run);
 * one with a single DR0-3 set shared by guest and debugger, as KVM
 * (shared_dr; 0xd7 is the guest's "MOV DR" loading DR0-3/DR7 from dr_next,
 * a #DB the guest takes returns with RF set); one that keeps the watched
 * ranges set_watch was given last (in fake_watched). */
extern const struct engine_ops fake_engine, fake_lending_engine, fake_shared_engine,
	fake_watch_engine;

#define FAKE_MAX_WATCH 64
extern struct engine_watch fake_watched[FAKE_MAX_WATCH];
extern unsigned fake_nr_watched, fake_set_watch_calls;

/* A vCPU thread's loop as machine/vm.c runs it, through vm->debug_hooks
 * (which must be installed): pthread_create(..., fake_vcpu_thread, vcpu);
 * returns once vm_stopping(). */
void *fake_vcpu_thread(void *arg);

#endif
