/* engine/emu/emu_x87.h — the x87 FPU of the execution core (emu_exec_x87.c):
 * the bits of its status and control words, and the views of its state
 * that other parts share (the tag word in its two encodings).
 *
 * Where the state lives: cpu->fpu (struct x86_fpu, the FXSAVE view):
 * st[i] is ST(i) (relative to TOP, the low 10 bytes), fsw holds TOP in
 * bits 11-13, ftw is the abridged tag word (bit p set = physical register
 * p holds a value), fop/fip/fdp the last instruction's opcode and
 * pointers. FCS/FDS are not kept: they read as 0, as on CPUs that
 * deprecate them (CPUID.7.0:EBX[13]). */
#ifndef VMDB_EMU_X87_H
#define VMDB_EMU_X87_H

#include <stdint.h>

#include "x86/x86.h"

#define X87_SW_IE  0x0001u
#define X87_SW_PE  0x0020u            /* precision */
#define X87_SW_SF  0x0040u            /* stack fault (with IE) */
#define X87_SW_ES  0x0080u            /* an unmasked exception is pending */
#define X87_SW_EXC 0x003fu            /* IE DE ZE OE UE PE */
#define X87_SW_C0  0x0100u
#define X87_SW_C1  0x0200u
#define X87_SW_C2  0x0400u
#define X87_SW_C3  0x4000u
#define X87_SW_TOP 0x3800u
#define X87_SW_B   0x8000u            /* busy: mirrors ES */
#define X87_CW_MASKS 0x003fu          /* IM DM ZM OM UM PM */
#define X87_CW_INIT 0x037fu           /* FNINIT: all masked, extended precision, nearest */

static inline unsigned emu_x87_top(const struct x86_fpu *f)
{
	return (f->fsw >> 11) & 7;
}

/* Make top the TOP field; the physical registers keep their contents
 * (st[], in ST order, turns with it). */
void emu_x87_set_top(struct x86_fpu *f, unsigned top);

/* The full tag word (2 bits per physical register: 0 valid, 1 zero,
 * 2 special, 3 empty), from the abridged one and the register contents. */
uint16_t emu_x87_full_tags(const struct x86_fpu *f);

/* The abridged form of a full tag word: a register is empty iff its tag is 3. */
static inline uint8_t emu_x87_abridged_tags(uint16_t full)
{
	uint8_t t = 0;
	for (unsigned p = 0; p < 8; p++)
		if (((full >> (2 * p)) & 3) != 3)
			t |= (uint8_t)(1u << p);
	return t;
}

#endif
