/* engine/emu/emu_single.h — emu's execution core lent to another engine:
 * execute ONE instruction of a vCPU whose state lives elsewhere. The KVM
 * engine uses it when the host's instruction emulator gives up
 * (KVM_EXIT_INTERNAL_ERROR, emulation failure): it copies the vCPU's state
 * in, emu executes the instruction against the same guest RAM
 * (vm_gpa_to_host), and the caller writes back what changed.
 *
 * Exactly one instruction: an exception it raises (or the event INT n /
 * INT3 asks for) is delivered through the guest's IDT as the CPU would,
 * and the call returns at the first instruction of the handler, which it
 * does not execute. A trap the instruction leaves pending (the guest's own
 * TF) is delivered too.
 *
 * What it leaves alone: interrupts (the other engine delivers them), the
 * guest's debug-register breakpoints (the other engine's hardware checks
 * them; DR7 enables are ignored here, DR6.BS and DR7.GD follow a #DB
 * delivered here), and every device: emu's own LAPIC/IOAPIC/PIC/PIT do not
 * exist in this mode, so port I/O and MMIO leave as exits, and the
 * instruction is completed by calling again (emu's replay log answers the
 * accesses already done, so no device sees one twice).
 *
 * One struct emu_single per vCPU, used only by that vCPU's thread; it
 * knows nothing of GDB or of the calling engine. */
#ifndef VMDB_EMU_SINGLE_H
#define VMDB_EMU_SINGLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"
#include "util/err.h"
#include "x86/x86.h"

struct vcpu;
struct emu_single;

/* The state one instruction may read or change: the parts of struct
 * x86_state (engine.h), the same bits. `loaded` says which parts
 * the caller filled (EMU_SINGLE_PART_*); reading the others costs it
 * (KVM: an ioctl each), so it loads what emu_single_describe says the
 * instruction needs. Parts not loaded read as zero and are never reported
 * changed. */
struct emu_single_state {
	unsigned loaded;
	struct x86_state arch;
	bool delivered;        /* out: the step delivered an exception (its handler is next) */
	/* in: the state is what this core's last step left, nothing else
	 * changed it or the page tables since: the core keeps its TLB (a
	 * flush is ~160 KiB of stores) */
	bool continues;
};

/* Parts of struct emu_single_state: loaded, needed, changed. */
#define EMU_SINGLE_PART_REGS  X86_STATE_REGS   /* regs and sregs: always needed */
#define EMU_SINGLE_PART_SREGS X86_STATE_SREGS
#define EMU_SINGLE_PART_FPU   (X86_STATE_FPU | X86_STATE_XCR0)
#define EMU_SINGLE_PART_DR    X86_STATE_DR     /* needed when RFLAGS.TF may trap */
#define EMU_SINGLE_PART_MSRS  X86_STATE_MSRS
#define EMU_SINGLE_PART_ALL   X86_STATE_ALL

enum emu_single_result {
	EMU_SINGLE_DONE,       /* executed (or its exception delivered): state updated */
	EMU_SINGLE_ACCESS,     /* *exit is VM_EXIT_IO/MMIO for the machine; state untouched:
				* complete it, then call again with resume = true */
	EMU_SINGLE_STOP,       /* *exit says why the guest cannot go on (SHUTDOWN after a
				* triple fault, EMULATION_FAILURE) */
};

#define EMU_SINGLE_NAME_MAX 24

/* What the instruction bytes are, in the mode sregs describe: its mnemonic
 * in capitals ("CMPXCHG16B"; "?" when undecodable) into name, the parts
 * of the state it needs (EMU_SINGLE_PART_*, DR aside) into *needs, and
 * whether emu's core can execute it (false: not implemented, where
 * emu_single_step would raise #UD; the caller should report a failure
 * instead). */
bool emu_single_describe(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
			 char name[EMU_SINGLE_NAME_MAX], unsigned *needs);
/* Whether emu's core executes this instruction exactly as the CPU would,
 * touching nothing but the state emu_single moves and RAM (no port,
 * MSR, CPUID, TSC, control or debug register, no descriptor-table load,
 * no interrupt shadow, no event delivery of its own, no XSAVE state
 * beyond emu's image): then a debugger may step it on this core instead
 * of the other engine. IRET is exact where NMIs are not blocked (the
 * caller knows). *needs as for emu_single_describe. A memory
 * operand outside RAM still leaves as EMU_SINGLE_ACCESS. */
bool emu_single_exact(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
		      unsigned *needs);
/* XSAVE/XRSTOR are exact only for XCR0's x87 and SSE components: false
 * when the instruction is one of them and xcr0 enables more. */
bool emu_single_xcr0_ok(const uint8_t *insn, unsigned len, const struct x86_sregs *sregs,
			uint64_t xcr0);

struct emu_single *emu_single_create(struct vcpu *vcpu, struct err *e);
void emu_single_destroy(struct emu_single *s);

/* Execute the instruction at st->regs.rip: the len bytes at insn, those
 * emu_single_describe judged, not what guest memory holds by now (another
 * vCPU may have rewritten it). resume = true only right after
 * EMU_SINGLE_ACCESS for the same instruction, with the access completed
 * (a read's data stored where exit->io.data / mmio.data pointed). On DONE,
 * st holds the new state and *changed the EMU_SINGLE_PART_* that changed. */
enum emu_single_result emu_single_step(struct emu_single *s, struct emu_single_state *st,
				       const uint8_t *insn, unsigned len, bool resume,
				       struct vm_exit *exit, unsigned *changed);

/* Deliver exception `vector` through the guest's IDT now, as hardware
 * does at an instruction boundary (frame RIP = st->regs.rip). */
enum emu_single_result emu_single_deliver(struct emu_single *s, struct emu_single_state *st,
					  uint8_t vector, bool has_error_code,
					  uint32_t error_code, struct vm_exit *exit,
					  unsigned *changed);

/* The above as the assist another engine is given at VM creation
 * (engine.h: engine_ops.assist, engine_vm_ops.create). */
struct emu_single_ops {
	bool (*describe)(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
			 char name[EMU_SINGLE_NAME_MAX], unsigned *needs);
	bool (*xcr0_ok)(const uint8_t *insn, unsigned len, const struct x86_sregs *sregs,
			uint64_t xcr0);
	bool (*exact)(const struct x86_sregs *sregs, const uint8_t *insn, unsigned len,
		      unsigned *needs);
	struct emu_single *(*create)(struct vcpu *vcpu, struct err *e);
	void (*destroy)(struct emu_single *s);
	enum emu_single_result (*step)(struct emu_single *s, struct emu_single_state *st,
				       const uint8_t *insn, unsigned len, bool resume,
				       struct vm_exit *exit, unsigned *changed);
	enum emu_single_result (*deliver)(struct emu_single *s, struct emu_single_state *st,
					  uint8_t vector, bool has_error_code,
					  uint32_t error_code, struct vm_exit *exit,
					  unsigned *changed);
};

extern const struct emu_single_ops emu_single_ops;

#endif
