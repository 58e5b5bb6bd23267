/* engine/emu/emu_record.h — record and replay of the software engine
 * (emu_record.c): the log of every input the engine cannot reproduce, the
 * snapshots it takes while it records, and the replay that puts the
 * stopped machine at any instruction count of that history
 * (engine_rr_ops).
 *
 * Positions are global counts: the sum of the instructions every vCPU
 * retired. The scheduler (emu_engine.c) makes the same inputs at the same
 * counts give the same execution; what it cannot decide alone is logged
 * at the count it happened: which vCPU holds the run token from there
 * (turns end at kicks and debugger steps too), idle jumps of the clock
 * (they follow the host clock), serial input bytes (queued from the
 * reader thread, delivered by the token holder at a slice boundary), the
 * debugger's register, MSR and memory writes and injected exceptions, and
 * its steps that held interrupts off. Events at a count apply before the
 * next instruction retires past it.
 *
 * Calls from the scheduler happen on the token holder (or with every
 * vCPU out of run()); each is cheap when nothing is recorded. */
#ifndef VMDB_EMU_RECORD_H
#define VMDB_EMU_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/engine.h"

struct emu_vm;
struct emu_cpu;

extern const struct engine_rr_ops emu_rr_ops;

/* From vm->cfg (--record): start recording at the first slice. */
int emu_rr_create(struct emu_vm *evm);
void emu_rr_destroy(struct emu_vm *evm);

/* Sum of retired instructions of every vCPU. */
uint64_t emu_rr_icount(struct emu_vm *evm);

/* The token holder at a slice boundary: starts a pending recording,
 * takes the periodic snapshot, delivers queued serial input. Also called
 * by the scheduler with nobody runnable (input may wake someone). */
void emu_rr_slice(struct emu_vm *evm);
/* The scheduler gave the token to `turn` (EMU_TURN_NONE: nobody). Called
 * under the scheduler's lock. */
void emu_rr_turn(struct emu_vm *evm, unsigned turn);
/* Every vCPU idle: the clock jumped to to_ns. */
void emu_rr_idle_jump(struct emu_vm *evm, uint64_t to_ns);
/* A vCPU thread enters run(): a machine left inside its history is live
 * again from where it is (the history after it is dropped unless it is
 * at the end). Not under the scheduler's lock. */
void emu_rr_leave_history(struct emu_vm *evm);
/* cpu runs its next instruction with interrupts held by the debugger's
 * step: logged when an interrupt is waiting (replay holds it too). */
void emu_rr_noirq_step(struct emu_cpu *cpu);

/* The debugger changes guest state (every vCPU out of run()): true when
 * it must be logged; inside the history, the history after here is
 * dropped first. */
bool emu_rr_debugger_write(struct emu_vm *evm);
void emu_rr_log_state(struct emu_cpu *cpu, unsigned mask, const void *state, unsigned size);
void emu_rr_log_exception(struct emu_cpu *cpu, bool deliver, uint8_t vector,
			  bool has_error_code, uint32_t error_code, uint64_t rflags);
void emu_rr_log_msr(struct emu_cpu *cpu, uint32_t msr, uint64_t value);


/* --- from the scheduler and the engine's ops (emu_engine.c) --- */
#define EMU_RR_NOBODY 0xffffffffu     /* no vCPU holds the token */
unsigned emu_sched_turn(struct emu_vm *evm);
/* Live again from here with `turn` holding the token (fresh: a new
 * quantum, no yields due; else only the token moves). */
void emu_sched_resume_at(struct emu_vm *evm, unsigned turn, bool fresh);
bool emu_sched_runnable(struct emu_cpu *cpu);
struct x86_state;
void emu_state_apply(struct emu_cpu *cpu, unsigned mask, const struct x86_state *st);
int emu_msr_apply(struct emu_cpu *cpu, uint32_t msr, uint64_t value);
void emu_exception_apply(struct emu_cpu *cpu, bool deliver, uint8_t vector, bool has_error_code,
			 uint32_t error_code, uint64_t rflags);

#endif
