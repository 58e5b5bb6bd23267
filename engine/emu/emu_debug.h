/* engine/emu/emu_debug.h — the debug architecture of the software engine
 * (Intel SDM vol. 3 ch. 17), implemented in emu_debug.c and called by the
 * execution core at fixed points. The core never touches DR0-7 itself.
 *
 * Call points (all on the vCPU's own thread):
 *   emu_dbg_before_insn  before each instruction (after interrupt delivery):
 *                        instruction breakpoints (faults; RF suppresses one)
 *   emu_dbg_mem          for each guest memory access, linear address
 *   emu_dbg_io           for each IN/OUT/INS/OUTS port access
 *   emu_dbg_mov_dr       MOV to/from DRn (with GD, DR4/5 aliasing, #UD)
 *   emu_dbg_end_insn     after an instruction retired: data/IO breakpoint
 *                        traps, TF single-step trap (BS) with POPF/IRET and
 *                        MOV SS/STI timing, RF clearing, debugger stepping
 *   emu_dbg_icebp        INT1 / ICEBP
 * Each returns true when the core must stop the instruction / the run:
 * an exception was raised (emu_raise) or an exit was filled (cpu->exit).
 *
 * The fast path: emu_dbg_armed() is false when no DR7 enable, no TF, no
 * debugger request is active, so the core can skip every call. */
#ifndef VMDB_EMU_DEBUG_H
#define VMDB_EMU_DEBUG_H

#include <stdbool.h>
#include <stdint.h>

struct emu_cpu;
struct engine_debug;
struct x86_debugregs;

bool emu_dbg_armed(const struct emu_cpu *cpu);
bool emu_dbg_before_insn(struct emu_cpu *cpu, uint64_t linear_rip);
void emu_dbg_mem(struct emu_cpu *cpu, uint64_t linear, unsigned len, bool is_write);
void emu_dbg_io(struct emu_cpu *cpu, uint16_t port, unsigned len);
/* Returns true when it raised #UD or #DB (the MOV did not happen). */
bool emu_dbg_mov_dr(struct emu_cpu *cpu, unsigned dr, unsigned gpr, bool to_dr);
/* rflags_before: RFLAGS at the start of the instruction (TF timing). */
bool emu_dbg_end_insn(struct emu_cpu *cpu, uint64_t rflags_before);
bool emu_dbg_icebp(struct emu_cpu *cpu);

/* engine_ops plumbing */
int emu_dbg_set_debug(struct emu_cpu *cpu, const struct engine_debug *dbg);
void emu_dbg_get_regs(const struct emu_cpu *cpu, struct x86_debugregs *dr);
void emu_dbg_set_regs(struct emu_cpu *cpu, const struct x86_debugregs *dr);
void emu_dbg_reset(struct emu_cpu *cpu);   /* power-on / INIT values */

#endif
