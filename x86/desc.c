#include "x86/desc.h"

#include <string.h>

struct x86_gate x86_gate_decode(const void *raw, enum x86_mode mode)
{
	uint8_t b[16] = { 0 };
	memcpy(b, raw, x86_gate_size(mode));
	struct x86_gate g = {
		.offset = b[0] | (uint64_t)b[1] << 8,
		.selector = (uint16_t)(b[2] | b[3] << 8),
		.type = b[5] & 0xf,
		.dpl = (b[5] >> 5) & 3,
		.present = b[5] & DESC_PRESENT,
	};
	if (x86_gate_size(mode) == 16) {
		g.ist = b[4] & 7;
		for (unsigned i = 6; i < 12; i++)     /* offset bits 63:16 */
			g.offset |= (uint64_t)b[i] << (8 * i - 32);
	} else if (g.type != X86_GATE_INT16 && g.type != X86_GATE_TRAP16 &&
		   g.type != X86_GATE_TASK) {
		g.offset |= (uint64_t)b[6] << 16 | (uint64_t)b[7] << 24;
	}
	if (g.type == X86_GATE_TASK)
		g.offset = 0;        /* a task gate has no offset: the TSS holds EIP */
	return g;
}

bool x86_gate_is_handler(const struct x86_gate *g, enum x86_mode mode)
{
	if (g->type == X86_GATE_INT || g->type == X86_GATE_TRAP)
		return true;
	return x86_gate_size(mode) == 8 &&
	       (g->type == X86_GATE_INT16 || g->type == X86_GATE_TRAP16);
}

uint32_t x86_seg_attr_bits(const struct x86_segment *s)
{
	return (uint32_t)(s->type & 15) << 8 | (uint32_t)(s->s & 1) << 12 |
	       (uint32_t)(s->dpl & 3) << 13 | (uint32_t)(s->present & 1) << 15 |
	       (uint32_t)(s->avl & 1) << 20 | (uint32_t)(s->l & 1) << 21 |
	       (uint32_t)(s->db & 1) << 22 | (uint32_t)(s->g & 1) << 23;
}

void x86_seg_decode(uint64_t d, uint16_t sel, struct x86_segment *s)
{
	uint32_t limit = (uint32_t)((d & 0xffff) | ((d >> 32) & 0xf0000));

	s->selector = sel;
	s->base = ((d >> 16) & 0xffffff) | ((d >> 56) << 24);
	s->g = (d >> 55) & 1;
	s->limit = s->g ? (limit << 12) | 0xfff : limit;
	s->type = (d >> 40) & 0xf;
	s->s = (d >> 44) & 1;
	s->dpl = (d >> 45) & 3;
	s->present = (d >> 47) & 1;
	s->avl = (d >> 52) & 1;
	s->l = (d >> 53) & 1;
	s->db = (d >> 54) & 1;
	s->unusable = 0;
}
