/* engine/emu/emu_decode.c — instruction decoding (Zydis) into the core's
 * own compact form (struct emu_insn: a handler pointer, sizes, up to three
 * explicit operands), and the VM-wide decode cache.
 *
 * Hot path: translate RIP through the code TLB, look the physical address
 * up in the cache, compare the cached instruction bytes with the guest's,
 * call the handler. Zydis runs only on a miss. Comparing bytes instead of
 * tracking writes to code pages means the debugger (which writes int3
 * bytes straight into guest RAM), self-modifying code and device models
 * are all covered with no invalidation protocol, instructions that cross
 * into the next page included (whatever that page maps). This is the exact
 * (per-instruction) path; emu_fast.c keeps blocks of its own. */
#include "engine/emu/emu_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <Zydis/Zydis.h>

#include "x86/decode.h"

_Static_assert(ZYDIS_MNEMONIC_MAX_VALUE < 2048, "emu_vm.warned holds 2048 mnemonics");

int emu_dcache_create(struct emu_vm *evm)
{
	evm->dcache = malloc(sizeof(*evm->dcache) * EMU_DCACHE_SIZE);
	if (!evm->dcache)
		return -ENOMEM;
	for (unsigned i = 0; i < EMU_DCACHE_SIZE; i++)
		evm->dcache[i].gpa = ~0ull;
	return 0;
}

void emu_dcache_destroy(struct emu_vm *evm)
{
	free(evm->dcache);
	evm->dcache = NULL;
}

/* The EMU_HANDLER_TABLE() pointers, bounded by the linker (as
 * machine/device.c's devices): 8-byte aligned pointers, no holes. */
extern const struct emu_handler_entry *const __start_emu_handler_tables[];
extern const struct emu_handler_entry *const __stop_emu_handler_tables[];

int emu_handler_tables_check(struct err *e)
{
	uint8_t seen[2048 / 8] = { 0 };
	for (const struct emu_handler_entry *const *t = __start_emu_handler_tables;
	     t < __stop_emu_handler_tables; t++)
		for (const struct emu_handler_entry *x = *t; x->fn; x++) {
			unsigned m = x->mnemonic;
			if (m >= 2048 || (seen[m / 8] & (1u << (m % 8))))
				return err_set(e, EINVAL, "emu: two handlers for instruction '%s' "
					       "(a table in engine/emu/emu_exec_*.c repeats it)",
					       ZydisMnemonicGetString((ZydisMnemonic)m));
			seen[m / 8] |= (uint8_t)(1u << (m % 8));
		}
	return 0;
}

emu_handler emu_handler_for(unsigned mnemonic)
{
	for (const struct emu_handler_entry *const *t = __start_emu_handler_tables;
	     t < __stop_emu_handler_tables; t++)
		for (const struct emu_handler_entry *e = *t; e->fn; e++)
			if (e->mnemonic == mnemonic)
				return e->fn;
	return emu_unimplemented;
}

/* One line per mnemonic per VM, then #UD as on a CPU without it. */
void emu_unimplemented(struct emu_cpu *cpu, const struct emu_insn *in)
{
	struct emu_vm *evm = cpu->evm;
	unsigned m = in->mnemonic;
	bool first = false;
	pthread_mutex_lock(&evm->warn_lock);
	if (m < 2048 && !(evm->warned[m / 8] & (1u << (m % 8)))) {
		evm->warned[m / 8] |= (uint8_t)(1u << (m % 8));
		first = true;
	}
	pthread_mutex_unlock(&evm->warn_lock);
	if (first)
		fprintf(stderr, "vmdb: emu: vCPU %u: instruction '%s' at RIP 0x%llx is not "
			"implemented; the guest gets #UD\n", cpu->id,
			ZydisMnemonicGetString((ZydisMnemonic)m),
			(unsigned long long)cpu->insn_start_rip);
	emu_ud(cpu);
}

/* Zydis register -> (class, number). */
static void map_reg(ZydisRegister r, uint8_t *rclass, uint8_t *num)
{
	if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_R15B) {
		unsigned id = r - ZYDIS_REGISTER_AL;
		if (id >= 4 && id < 8) {
			*rclass = EMU_RC_GPR8H;
			*num = (uint8_t)(id - 4);
		} else {
			*rclass = EMU_RC_GPR;
			*num = (uint8_t)(id >= 8 ? id - 4 : id);
		}
	} else if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W) {
		*rclass = EMU_RC_GPR; *num = (uint8_t)(r - ZYDIS_REGISTER_AX);
	} else if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D) {
		*rclass = EMU_RC_GPR; *num = (uint8_t)(r - ZYDIS_REGISTER_EAX);
	} else if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15) {
		*rclass = EMU_RC_GPR; *num = (uint8_t)(r - ZYDIS_REGISTER_RAX);
	} else if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS) {
		*rclass = EMU_RC_SEG; *num = (uint8_t)(r - ZYDIS_REGISTER_ES);
	} else if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15) {
		*rclass = EMU_RC_CR; *num = (uint8_t)(r - ZYDIS_REGISTER_CR0);
	} else if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15) {
		*rclass = EMU_RC_DR; *num = (uint8_t)(r - ZYDIS_REGISTER_DR0);
	} else if (r >= ZYDIS_REGISTER_XMM0 && r <= ZYDIS_REGISTER_XMM31) {
		*rclass = EMU_RC_XMM; *num = (uint8_t)(r - ZYDIS_REGISTER_XMM0);
	} else if (r >= ZYDIS_REGISTER_MM0 && r <= ZYDIS_REGISTER_MM7) {
		*rclass = EMU_RC_MMX; *num = (uint8_t)(r - ZYDIS_REGISTER_MM0);
	} else {
		*rclass = EMU_RC_OTHER; *num = 0;
	}
}

static uint8_t map_gpr(ZydisRegister r)
{
	if (r == ZYDIS_REGISTER_NONE)
		return EMU_NOREG;
	if (r == ZYDIS_REGISTER_RIP || r == ZYDIS_REGISTER_EIP)
		return EMU_RIPREL;
	uint8_t rc, n;
	map_reg(r, &rc, &n);
	return rc == EMU_RC_GPR ? n : EMU_NOREG;
}

static bool is_si(ZydisRegister r)
{
	return r == ZYDIS_REGISTER_SI || r == ZYDIS_REGISTER_ESI || r == ZYDIS_REGISTER_RSI;
}

static void convert_operand(const ZydisDecodedOperand *z, struct emu_operand *o)
{
	memset(o, 0, sizeof(*o));
	o->size = (uint8_t)(z->size / 8);
	switch (z->type) {
	case ZYDIS_OPERAND_TYPE_REGISTER:
		o->kind = EMU_OP_REG;
		map_reg(z->reg.value, &o->rclass, &o->reg);
		break;
	case ZYDIS_OPERAND_TYPE_MEMORY:
		o->kind = EMU_OP_MEM;
		o->reg = map_gpr(z->mem.base);
		o->index = map_gpr(z->mem.index);
		o->scale = z->mem.scale ? z->mem.scale : 1;
		o->val = z->mem.disp.has_displacement ? z->mem.disp.value : 0;
		if (z->mem.segment >= ZYDIS_REGISTER_ES && z->mem.segment <= ZYDIS_REGISTER_GS)
			o->seg = (uint8_t)(z->mem.segment - ZYDIS_REGISTER_ES);
		else
			o->seg = EMU_SEG_NONE;
		break;
	case ZYDIS_OPERAND_TYPE_IMMEDIATE:
		o->kind = EMU_OP_IMM;
		o->val = z->imm.is_signed ? z->imm.value.s : (int64_t)z->imm.value.u;
		break;
	case ZYDIS_OPERAND_TYPE_POINTER:
		o->kind = EMU_OP_PTR;
		o->ptr_sel = z->ptr.segment;
		o->val = z->ptr.offset;
		break;
	default:
		o->kind = EMU_OP_NONE;
		break;
	}
}

static void convert(const ZydisDecodedInstruction *zi, const ZydisDecodedOperand *zo,
		    struct emu_insn *in)
{
	memset(in, 0, sizeof(*in));
	in->mnemonic = (uint16_t)zi->mnemonic;
	in->len = zi->length;
	in->osize = (uint8_t)(zi->operand_width / 8);
	in->asize = (uint8_t)(zi->address_width / 8);
	in->opcode = zi->opcode;
	in->opmap = (uint8_t)zi->opcode_map;
	in->modrm_reg = zi->raw.modrm.reg;
	in->modrm = (uint8_t)(zi->raw.modrm.mod << 6 | zi->raw.modrm.reg << 3 | zi->raw.modrm.rm);
	if (zi->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		in->flags |= EMU_I_REP;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_REPNE)
		in->flags |= EMU_I_REPNE;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_LOCK)
		in->flags |= EMU_I_LOCK;
	if (zi->attributes & ZYDIS_ATTRIB_HAS_SEGMENT)
		in->flags |= EMU_I_SEGOV;
	if (zi->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
		in->flags |= EMU_I_FAR;
	in->seg = EMU_DS;
	bool seg_set = false;
	for (unsigned i = 0; i < zi->operand_count; i++) {
		if (zo[i].type != ZYDIS_OPERAND_TYPE_MEMORY || zo[i].mem.type != ZYDIS_MEMOP_TYPE_MEM)
			continue;
		ZydisRegister s = zo[i].mem.segment;
		if (s < ZYDIS_REGISTER_ES || s > ZYDIS_REGISTER_GS)
			continue;
		if (!seg_set || is_si(zo[i].mem.base)) {
			in->seg = (uint8_t)(s - ZYDIS_REGISTER_ES);
			seg_set = true;
		}
	}
	unsigned n = zi->operand_count_visible;
	if (n > 3) {
		in->fn = emu_unimplemented;
		return;
	}
	in->nops = (uint8_t)n;
	for (unsigned i = 0; i < n; i++)
		convert_operand(&zo[i], &in->op[i]);
	in->fn = emu_handler_for(in->mnemonic);
	for (unsigned i = 0; i < n; i++)
		if (in->op[i].kind == EMU_OP_REG && in->op[i].rclass == EMU_RC_MMX)
			in->fn = emu_mmx_handler_for(in->mnemonic);
	if (in->mnemonic == ZYDIS_MNEMONIC_MOV)
		for (unsigned i = 0; i < n; i++)
			if (in->op[i].kind == EMU_OP_REG && in->op[i].rclass >= EMU_RC_SEG)
				in->fn = emu_mov_special;
}

static ZyanStatus decode_bytes(unsigned mode, const uint8_t *p, unsigned len,
			       ZydisDecodedInstruction *zi, ZydisDecodedOperand *zo)
{
	ZydisDecoder dec;
	if (!x86_zydis_decoder_init(&dec, (enum x86_mode)mode))
		return ZYAN_STATUS_INVALID_ARGUMENT;
	return ZydisDecoderDecodeFull(&dec, p, len, zi, zo);
}

int emu_decode_insn(unsigned mode, const uint8_t *p, unsigned len, struct emu_insn *in)
{
	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	ZyanStatus st = decode_bytes(mode, p, len, &zi, zo);
	if (st == ZYDIS_STATUS_NO_MORE_DATA)
		return -EAGAIN;
	if (!ZYAN_SUCCESS(st))
		return -EINVAL;
	convert(&zi, zo, in);
	return 0;
}

static unsigned dcache_index(uint64_t gpa)
{
	return (unsigned)((gpa ^ (gpa >> EMU_DCACHE_BITS)) & (EMU_DCACHE_SIZE - 1));
}

/* The entry of the instruction that most likely comes next (the block
 * builder decodes in a row): its look-up was a cache miss each time. */
static inline void dcache_prefetch(const struct emu_vm *evm, uint64_t gpa)
{
	const char *e = (const char *)&evm->dcache[dcache_index(gpa)];
	__builtin_prefetch(e);
	__builtin_prefetch(e + sizeof(struct emu_dcache_entry) - 1);
}

int emu_decode_cached(struct emu_vm *evm, unsigned mode, uint64_t gpa, const uint8_t *p,
		      unsigned len, struct emu_insn *in)
{
	struct emu_dcache_entry *e = evm->dcache ? &evm->dcache[dcache_index(gpa)] : NULL;
	if (e && e->gpa == gpa && e->mode == mode && e->insn.len <= len &&
	    memcmp(p, e->bytes, e->insn.len) == 0) {
		*in = e->insn;
		dcache_prefetch(evm, gpa + in->len);
		return 0;
	}
	int r = emu_decode_insn(mode, p, len, in);
	if (r == 0 && e) {
		e->insn = *in;
		memcpy(e->bytes, p, in->len);
		e->mode = (uint8_t)mode;
		e->gpa = gpa;
		dcache_prefetch(evm, gpa + in->len);
	}
	return r;
}

/* Is the instruction cached in e the one at lin (p: the len bytes
 * fetched there, buf: room for them)? When it goes on past them into the
 * next page and the bytes in this page agree, the instruction at lin goes
 * on there too (one instruction is never the start of another): the next
 * page is fetched, faulting as the CPU would, and compared too. */
static bool cached_bytes_agree(struct emu_cpu *cpu, const struct emu_dcache_entry *e,
			       uint64_t lin, uint8_t *buf, const uint8_t **p, unsigned *len)
{
	unsigned n = e->insn.len;
	if (n > *len) {
		if (memcmp(*p, e->bytes, *len) != 0)
			return false;
		uint64_t gpa;
		*len = 16;
		*p = emu_fetch(cpu, lin, buf, len, &gpa);
		if (n > *len)
			return false;
	}
	return memcmp(*p, e->bytes, n) == 0;
}

static uint64_t pc_linear(struct emu_cpu *cpu)
{
	return emu_core_of(cpu)->mode == X86_MODE_LONG64 ? cpu->rip
							 : (uint32_t)(cpu->sregs.cs.base + cpu->rip);
}

void emu_pin_insn(struct emu_cpu *cpu, const uint8_t *bytes, unsigned len)
{
	struct emu_core *c = emu_core_of(cpu);
	if (len > sizeof(c->pin_bytes))
		len = sizeof(c->pin_bytes);
	if (len)
		memcpy(c->pin_bytes, bytes, len);
	c->pin_len = (uint8_t)len;
	c->pin_lin = pc_linear(cpu);
}

const struct emu_insn *emu_decode_at(struct emu_cpu *cpu, struct emu_insn *scratch)
{
	struct emu_core *c = emu_core_of(cpu);
	uint64_t lin = pc_linear(cpu);
	uint8_t buf[16];
	unsigned len = 0;
	uint64_t gpa = ~0ull;
	const uint8_t *p;
	if (c->pin_len && lin == c->pin_lin) {
		p = c->pin_bytes;          /* not cached: the memory may differ */
		len = c->pin_len;
	} else {
		p = emu_fetch(cpu, lin, buf, &len, &gpa);
	}
	if (!p || len == 0) {
		/* fetched from nothing: all ones, as on hardware (FF FF is no
		 * instruction: #UD) */
		memset(buf, 0xff, 15);
		p = buf;
		len = 15;
	}

	struct emu_dcache_entry *e = NULL;
	if (gpa != ~0ull && cpu->evm->dcache) {
		e = &cpu->evm->dcache[dcache_index(gpa)];
		if (e->gpa == gpa && e->mode == c->mode &&
		    cached_bytes_agree(cpu, e, lin, buf, &p, &len))
			return &e->insn;
	}

	ZydisDecodedInstruction zi;
	ZydisDecodedOperand zo[ZYDIS_MAX_OPERAND_COUNT];
	ZyanStatus st = decode_bytes(c->mode, p, len, &zi, zo);
	if (st == ZYDIS_STATUS_NO_MORE_DATA && len < 15 && p != c->pin_bytes) {
		len = 16;                  /* now the second page must be there (#PF) */
		p = emu_fetch(cpu, lin, buf, &len, &gpa);
		st = decode_bytes(c->mode, p, len, &zi, zo);
	}
	if (!ZYAN_SUCCESS(st))
		emu_ud(cpu);

	struct emu_insn *in = scratch;
	if (e) {
		e->gpa = ~0ull;            /* half-written entries never match */
		in = &e->insn;
	}
	convert(&zi, zo, in);
	if (e) {
		memcpy(e->bytes, p, in->len);
		e->mode = c->mode;
		e->gpa = gpa;
	}
	return in;
}
