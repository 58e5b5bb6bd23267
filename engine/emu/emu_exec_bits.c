/* engine/emu/emu_exec_bits.c — general-register instructions of the SSE4.2
 * era that work on bits and bytes: CRC32 (the CRC-32C polynomial of
 * SSE4.2, bit-reflected, as the SDM's CRC32 pseudo-code) and MOVBE (a
 * load or store with the bytes reversed). Neither touches the flags.
 * POPCNT, LZCNT and TZCNT live with the other bit instructions in
 * emu_exec_alu.c. */
#include "engine/emu/emu_core.h"

#include <Zydis/Zydis.h>

#define OP0 (in->op[0])
#define OP1 (in->op[1])
#define CRC32C_REFLECTED 0x82f63b78u

static uint32_t crc32c_bytes(uint32_t crc, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++, v >>= 8) {
		crc ^= (uint8_t)v;
		for (unsigned b = 0; b < 8; b++)
			crc = (crc >> 1) ^ (CRC32C_REFLECTED & -(crc & 1u));
	}
	return crc;
}

/* CRC32 r32/r64, r/m8/16/32/64: the 64-bit destination is zero-extended. */
static void h_crc32(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (OP0.kind != EMU_OP_REG || OP0.rclass != EMU_RC_GPR || OP1.size == 0 || OP1.size > 8) {
		emu_unimplemented(cpu, in);
		return;
	}
	uint64_t src = emu_op_read(cpu, in, 1);
	uint32_t crc = crc32c_bytes((uint32_t)cpu->gpr[OP0.reg], src, OP1.size);
	emu_gpr_set(cpu, OP0.reg, OP0.size == 8 ? 8 : 4, crc);
}

static uint64_t bswap_n(uint64_t v, unsigned n)
{
	uint64_t r = 0;
	for (unsigned i = 0; i < n; i++, v >>= 8)
		r = (r << 8) | (v & 0xff);
	return r;
}

/* MOVBE r, m / MOVBE m, r (16, 32, 64 bits). */
static void h_movbe(struct emu_cpu *cpu, const struct emu_insn *in)
{
	unsigned n = OP0.size;
	if ((OP0.kind == EMU_OP_MEM) == (OP1.kind == EMU_OP_MEM) || (n != 2 && n != 4 && n != 8)) {
		emu_unimplemented(cpu, in);
		return;
	}
	emu_op_write(cpu, in, 0, bswap_n(emu_op_read(cpu, in, 1), n));
}

static const struct emu_handler_entry emu_exec_bits_table[] = {
	{ ZYDIS_MNEMONIC_CRC32, h_crc32 },
	{ ZYDIS_MNEMONIC_MOVBE, h_movbe },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_bits_table);
