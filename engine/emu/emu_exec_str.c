/* engine/emu/emu_exec_str.c — string instructions (MOVS, STOS, LODS,
 * CMPS, SCAS, INS, OUTS) with REP/REPE/REPNE.
 *
 * Each iteration commits RSI/RDI/RCX before the next one starts, so a
 * fault or a device exit in iteration k leaves the first k-1 done and RIP
 * at the instruction, as on hardware, and the replay log only ever holds
 * the current iteration's device accesses. With the debug part armed a REP
 * instruction runs one iteration per step (each iteration then traps, as
 * the SDM says); otherwise up to EMU_REP_BATCH iterations per step, and
 * interrupts are taken between batches. Either way it retires once per
 * batch and at its end (emu_core.rep_batch counts the iterations of the
 * batch so far; no interrupt comes inside one), so the retired count,
 * guest time, is the same with or without a debugger. Inside a batch, MOVS and STOS copy
 * or fill RAM a page at a time (str_bulk), with the state the iterations
 * one by one would leave. */
#include "engine/emu/emu_core.h"

#include <string.h>
#include <Zydis/Zydis.h>


enum str_kind { STR_MOVS, STR_STOS, STR_LODS, STR_CMPS, STR_SCAS, STR_INS, STR_OUTS };

static void str_advance(struct emu_cpu *cpu, unsigned reg, unsigned asize, int64_t delta)
{
	emu_gpr_set(cpu, reg, asize, cpu->gpr[reg] + (uint64_t)delta);
}

/* One iteration; returns the ZF-relevant "equal" for CMPS/SCAS. */
static bool str_once(struct emu_cpu *cpu, const struct emu_insn *in, enum str_kind k,
		     unsigned size, int64_t delta)
{
	unsigned as = in->asize;
	uint64_t am = emu_mask(as);
	uint64_t src = emu_linear(cpu, in->seg, cpu->gpr[EMU_RSI] & am);
	uint64_t dst = emu_linear(cpu, EMU_ES, cpu->gpr[EMU_RDI] & am);
	uint16_t port = (uint16_t)cpu->gpr[EMU_RDX];
	bool eq = false;
	switch (k) {
	case STR_MOVS:
		emu_write(cpu, dst, size, emu_read(cpu, src, size));
		str_advance(cpu, EMU_RSI, as, delta);
		str_advance(cpu, EMU_RDI, as, delta);
		break;
	case STR_STOS:
		emu_write(cpu, dst, size, cpu->gpr[EMU_RAX]);
		str_advance(cpu, EMU_RDI, as, delta);
		break;
	case STR_LODS:
		emu_gpr_set(cpu, EMU_RAX, size, emu_read(cpu, src, size));
		str_advance(cpu, EMU_RSI, as, delta);
		break;
	case STR_CMPS: {
		uint64_t a = emu_read(cpu, src, size), b = emu_read(cpu, dst, size);
		emu_flags(cpu, EMU_FL_SUB, a, b, a - b, size, 0);
		eq = (a & emu_mask(size)) == (b & emu_mask(size));
		str_advance(cpu, EMU_RSI, as, delta);
		str_advance(cpu, EMU_RDI, as, delta);
		break;
	}
	case STR_SCAS: {
		uint64_t a = cpu->gpr[EMU_RAX] & emu_mask(size), b = emu_read(cpu, dst, size);
		emu_flags(cpu, EMU_FL_SUB, a, b, a - b, size, 0);
		eq = a == (b & emu_mask(size));
		str_advance(cpu, EMU_RDI, as, delta);
		break;
	}
	case STR_INS:
		emu_probe_write(cpu, dst, size);
		emu_write(cpu, dst, size, emu_pio_in(cpu, port, size));
		str_advance(cpu, EMU_RDI, as, delta);
		break;
	case STR_OUTS:
		emu_pio_out(cpu, port, size, emu_read(cpu, src, size));
		str_advance(cpu, EMU_RSI, as, delta);
		break;
	}
	return eq;
}

/* len bytes at d (a multiple of size, 2, 4 or 8) filled as STOS of that
 * size with v fills them (a little-endian host): one byte repeated by
 * memset, else the element repeated into 8 bytes stored word by word. */
static void fill(uint8_t *d, uint64_t v, unsigned size, unsigned len)
{
	uint64_t m = emu_mask(size), p = v & m;
	if (p == (v & 0xff) * (m / 0xff)) {
		memset(d, (int)(v & 0xff), len);
		return;
	}
	for (unsigned w = size; w < 8; w *= 2)
		p |= p << (w * 8);
	unsigned i = 0;
	for (; i + 8 <= len; i += 8)
		memcpy(d + i, &p, 8);
	for (; i < len; i++)
		d[i] = (uint8_t)(p >> (i % 8 * 8));
}

/* Up to n iterations of REP MOVS/STOS (forward, 64-bit addresses) at
 * once, as far as source and destination each stay RAM inside one page:
 * what those iterations one by one do, with the same faults (the first
 * iteration's read, then its write). Returns how many ran; 0: run the
 * next one alone. */
static unsigned str_bulk(struct emu_cpu *cpu, const struct emu_insn *in, enum str_kind k,
			 unsigned size, int64_t delta, unsigned n)
{
	if ((k != STR_MOVS && k != STR_STOS) || delta < 0 || in->asize != 8)
		return 0;
	if (cpu->gpr[EMU_RCX] < n)
		n = (unsigned)cpu->gpr[EMU_RCX];
	uint64_t src = emu_linear(cpu, in->seg, cpu->gpr[EMU_RSI]);
	uint64_t dst = emu_linear(cpu, EMU_ES, cpu->gpr[EMU_RDI]);
	unsigned room = (unsigned)(X86_PAGE_SIZE - (dst & (X86_PAGE_SIZE - 1))) / size;
	if (room < n)
		n = room;
	if (k == STR_MOVS) {
		room = (unsigned)(X86_PAGE_SIZE - (src & (X86_PAGE_SIZE - 1))) / size;
		if (room < n)
			n = room;
	}
	if (n == 0)
		return 0;
	unsigned len = n * size;
	const uint8_t *s = k == STR_MOVS ? emu_ram_span(cpu, src, len, false) : NULL;
	if (k == STR_MOVS && !s)
		return 0;
	uint8_t *d = emu_ram_span(cpu, dst, len, true);
	if (!d)
		return 0;
	if (k == STR_MOVS) {
		if (d > s && d < s + len)
			return 0;          /* one by one repeats what it already copied */
		memmove(d, s, len);
		cpu->gpr[EMU_RSI] += len;
	} else if (size == 1) {
		memset(d, (int)(cpu->gpr[EMU_RAX] & 0xff), len);
	} else {
		fill(d, cpu->gpr[EMU_RAX], size, len);
	}
	cpu->gpr[EMU_RDI] += len;
	cpu->gpr[EMU_RCX] -= n;
	return n;
}

unsigned emu_rep_bulk(struct emu_cpu *cpu, const struct emu_insn *in, unsigned n)
{
	unsigned size = in->osize ? in->osize : 1;
	enum str_kind k;
	switch (in->mnemonic) {
	case ZYDIS_MNEMONIC_MOVSB: case ZYDIS_MNEMONIC_MOVSW: case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_MOVSQ:
		k = STR_MOVS;
		break;
	case ZYDIS_MNEMONIC_STOSB: case ZYDIS_MNEMONIC_STOSW: case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_STOSQ:
		k = STR_STOS;
		break;
	default:
		return 0;
	}
	if (!(in->flags & EMU_I_REP) || in->opmap != ZYDIS_OPCODE_MAP_DEFAULT ||
	    (cpu->rflags & RFLAGS_DF))
		return 0;
	return str_bulk(cpu, in, k, size, (int64_t)size, n);
}

static void str_run(struct emu_cpu *cpu, const struct emu_insn *in, enum str_kind k)
{
	struct emu_core *c = emu_core_of(cpu);
	unsigned size = in->osize ? in->osize : 1;
	int64_t delta = (cpu->rflags & RFLAGS_DF) ? -(int64_t)size : (int64_t)size;
	bool rep = in->flags & (EMU_I_REP | EMU_I_REPNE);
	bool cond = k == STR_CMPS || k == STR_SCAS;
	c->rep_pending = false;            /* in a block, step() did not clear it */
	if ((k == STR_INS || k == STR_OUTS) && (cpu->sregs.cr0 & CR0_PE) &&
	    c->cpl > ((cpu->rflags & RFLAGS_IOPL_MASK) >> 12))
		emu_gp(cpu, 0);
	if (!rep) {
		str_once(cpu, in, k, size, delta);
		return;
	}
	uint64_t am = emu_mask(in->asize);
	unsigned batch = c->dbg_armed ? 1 : EMU_REP_BATCH - c->rep_batch, i = 0;
	bool finished = false;             /* RCX ran out, or the condition ended it */
	for (; i < batch && !finished; i++) {
		if ((cpu->gpr[EMU_RCX] & am) == 0) {
			finished = true;
			break;
		}
		unsigned done = batch > 1 ? str_bulk(cpu, in, k, size, delta, batch - i) : 0;
		if (done) {
			emu_replay_reset(cpu);
			i += done - 1;
			continue;
		}
		bool eq = str_once(cpu, in, k, size, delta);
		emu_gpr_set(cpu, EMU_RCX, in->asize, cpu->gpr[EMU_RCX] - 1);
		/* this iteration is committed: its device accesses are done */
		emu_replay_reset(cpu);
		finished = cond && ((in->flags & EMU_I_REPNE) ? eq : !eq);
	}
	if (finished || (cpu->gpr[EMU_RCX] & am) == 0) {
		c->rep_batch = 0;
		return;
	}
	cpu->rip = cpu->insn_start_rip;    /* more to do: run it again */
	c->rep_pending = true;
	if (c->rep_batch + i < EMU_REP_BATCH) {
		/* inside its batch: this step does not retire. step() counts it
		 * after this, a block from blk_ret when it leaves (emu_fast.c,
		 * emu_jit.c): take it back from both */
		c->rep_batch += i;
		cpu->retired--;
		c->blk_ret--;
	} else {
		c->rep_batch = 0;
	}
}

static void h_movs(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->opmap != ZYDIS_OPCODE_MAP_DEFAULT) {      /* SSE2 MOVSD xmm */
		emu_sse_movsd(cpu, in);
		return;
	}
	str_run(cpu, in, STR_MOVS);
}

static void h_cmps(struct emu_cpu *cpu, const struct emu_insn *in)
{
	if (in->opmap != ZYDIS_OPCODE_MAP_DEFAULT) {      /* SSE2 CMPSD xmm */
		emu_sse_cmpsd(cpu, in);
		return;
	}
	str_run(cpu, in, STR_CMPS);
}

static void h_stos(struct emu_cpu *cpu, const struct emu_insn *in) { str_run(cpu, in, STR_STOS); }
static void h_lods(struct emu_cpu *cpu, const struct emu_insn *in) { str_run(cpu, in, STR_LODS); }
static void h_scas(struct emu_cpu *cpu, const struct emu_insn *in) { str_run(cpu, in, STR_SCAS); }
static void h_ins(struct emu_cpu *cpu, const struct emu_insn *in) { str_run(cpu, in, STR_INS); }
static void h_outs(struct emu_cpu *cpu, const struct emu_insn *in) { str_run(cpu, in, STR_OUTS); }

static const struct emu_handler_entry emu_exec_str_table[] = {
	{ ZYDIS_MNEMONIC_MOVSB, h_movs }, { ZYDIS_MNEMONIC_MOVSW, h_movs },
	{ ZYDIS_MNEMONIC_MOVSD, h_movs }, { ZYDIS_MNEMONIC_MOVSQ, h_movs },
	{ ZYDIS_MNEMONIC_CMPSB, h_cmps }, { ZYDIS_MNEMONIC_CMPSW, h_cmps },
	{ ZYDIS_MNEMONIC_CMPSD, h_cmps }, { ZYDIS_MNEMONIC_CMPSQ, h_cmps },
	{ ZYDIS_MNEMONIC_STOSB, h_stos }, { ZYDIS_MNEMONIC_STOSW, h_stos },
	{ ZYDIS_MNEMONIC_STOSD, h_stos }, { ZYDIS_MNEMONIC_STOSQ, h_stos },
	{ ZYDIS_MNEMONIC_LODSB, h_lods }, { ZYDIS_MNEMONIC_LODSW, h_lods },
	{ ZYDIS_MNEMONIC_LODSD, h_lods }, { ZYDIS_MNEMONIC_LODSQ, h_lods },
	{ ZYDIS_MNEMONIC_SCASB, h_scas }, { ZYDIS_MNEMONIC_SCASW, h_scas },
	{ ZYDIS_MNEMONIC_SCASD, h_scas }, { ZYDIS_MNEMONIC_SCASQ, h_scas },
	{ ZYDIS_MNEMONIC_INSB, h_ins }, { ZYDIS_MNEMONIC_INSW, h_ins },
	{ ZYDIS_MNEMONIC_INSD, h_ins },
	{ ZYDIS_MNEMONIC_OUTSB, h_outs }, { ZYDIS_MNEMONIC_OUTSW, h_outs },
	{ ZYDIS_MNEMONIC_OUTSD, h_outs },
	{ 0, NULL },
};
EMU_HANDLER_TABLE(emu_exec_str_table);
