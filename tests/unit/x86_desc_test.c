/* tests/unit/x86_desc_test.c — x86/desc.c: IDT gates decoded from the
 * bytes the SDM lays out (vol. 3 figures 6-2 and 6-8), in 32-bit and
 * IA-32e mode, of every gate type, present or not. Each gate sits in a
 * buffer exactly as long as the mode's gate, so an over-read shows under
 * the ASan build. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"
#include "x86/desc.h"

/* A copy of `bytes` in a heap block of exactly `len` bytes, decoded. */
static struct x86_gate decode(const uint8_t *bytes, size_t len, enum x86_mode mode)
{
	uint8_t *raw = malloc(len);
	memcpy(raw, bytes, len);
	struct x86_gate g = x86_gate_decode(raw, mode);
	free(raw);
	return g;
}

static void test_gate_sizes(void)
{
	CHECK_EQ(x86_gate_size(X86_MODE_LONG64), 16);
	CHECK_EQ(x86_gate_size(X86_MODE_COMPAT), 16);
	CHECK_EQ(x86_gate_size(X86_MODE_PROT32), 8);
	CHECK_EQ(x86_gate_size(X86_MODE_PROT16), 8);
}

static void test_64bit_interrupt_gate(void)
{
	/* offset 0xffffffff81234567, selector 0x10, IST 3, P, DPL 0, type 0xe */
	static const uint8_t b[16] = { 0x67, 0x45, 0x10, 0x00, 0x03, 0x8e, 0x23, 0x81,
				       0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	for (int m = 0; m < 2; m++) {
		enum x86_mode mode = m ? X86_MODE_COMPAT : X86_MODE_LONG64;
		struct x86_gate g = decode(b, sizeof(b), mode);
		CHECK_EQ(g.offset, 0xffffffff81234567ull);
		CHECK_EQ(g.selector, 0x10);
		CHECK_EQ(g.ist, 3);
		CHECK_EQ(g.dpl, 0);
		CHECK_EQ(g.type, X86_GATE_INT);
		CHECK(g.present, "64-bit interrupt gate: present");
		CHECK(x86_gate_is_handler(&g, mode), "64-bit interrupt gate names a handler");
	}
}

static void test_64bit_trap_gate(void)
{
	/* offset 0x00007fff_deadbeef, selector 0x33, no IST, P, DPL 3, type 0xf;
	 * the upper reserved dword is set and must not show anywhere */
	static const uint8_t b[16] = { 0xef, 0xbe, 0x33, 0x00, 0x00, 0xef, 0xad, 0xde,
				       0xff, 0x7f, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_LONG64);
	CHECK_EQ(g.offset, 0x00007fffdeadbeefull);
	CHECK_EQ(g.selector, 0x33);
	CHECK_EQ(g.ist, 0);
	CHECK_EQ(g.dpl, 3);
	CHECK_EQ(g.type, X86_GATE_TRAP);
	CHECK(g.present, "64-bit trap gate: present");
	CHECK(x86_gate_is_handler(&g, X86_MODE_LONG64), "64-bit trap gate names a handler");
}

static void test_64bit_invalid_types(void)
{
	/* a task gate and a 16-bit interrupt gate are not handlers in IA-32e mode */
	uint8_t b[16] = { 0x00, 0x10, 0x08, 0x00, 0x00, 0x85, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_LONG64);
	CHECK_EQ(g.type, X86_GATE_TASK);
	CHECK(!x86_gate_is_handler(&g, X86_MODE_LONG64), "long mode: task gate is no handler");
	b[5] = 0x86;
	g = decode(b, sizeof(b), X86_MODE_LONG64);
	CHECK_EQ(g.type, X86_GATE_INT16);
	CHECK(!x86_gate_is_handler(&g, X86_MODE_LONG64), "long mode: 16-bit gate is no handler");
}

static void test_64bit_not_present(void)
{
	static const uint8_t b[16] = { 0x00, 0x20, 0x08, 0x00, 0x01, 0x0e, 0x00, 0x00,
				       0x01, 0x00, 0x00, 0x00, 0, 0, 0, 0 };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_LONG64);
	CHECK(!g.present, "64-bit gate with P clear: not present");
	CHECK_EQ(g.type, X86_GATE_INT);
	CHECK_EQ(g.offset, 0x100002000ull);
	CHECK_EQ(g.ist, 1);
}

static void test_32bit_interrupt_and_trap_gates(void)
{
	/* offset 0x12345678, selector 0x08, P, DPL 0, type 0xe; byte 4's low
	 * bits are reserved in a 32-bit gate (no IST) */
	uint8_t b[8] = { 0x78, 0x56, 0x08, 0x00, 0x07, 0x8e, 0x34, 0x12 };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_PROT32);
	CHECK_EQ(g.offset, 0x12345678);
	CHECK_EQ(g.selector, 0x08);
	CHECK_EQ(g.ist, 0);
	CHECK_EQ(g.dpl, 0);
	CHECK_EQ(g.type, X86_GATE_INT);
	CHECK(g.present, "32-bit interrupt gate: present");
	CHECK(x86_gate_is_handler(&g, X86_MODE_PROT32), "32-bit interrupt gate names a handler");

	b[5] = 0xef;                           /* P, DPL 3, trap gate */
	g = decode(b, sizeof(b), X86_MODE_PROT16);
	CHECK_EQ(g.type, X86_GATE_TRAP);
	CHECK_EQ(g.dpl, 3);
	CHECK_EQ(g.offset, 0x12345678);
	CHECK(x86_gate_is_handler(&g, X86_MODE_PROT16), "32-bit trap gate names a handler");
}

static void test_16bit_gates(void)
{
	/* bytes 6-7 are reserved in a 16-bit gate: the offset is 16 bits */
	uint8_t b[8] = { 0x34, 0x12, 0x18, 0x00, 0x00, 0xa6, 0xff, 0xff };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_PROT32);
	CHECK_EQ(g.type, X86_GATE_INT16);
	CHECK_EQ(g.offset, 0x1234);
	CHECK_EQ(g.selector, 0x18);
	CHECK_EQ(g.dpl, 1);
	CHECK(x86_gate_is_handler(&g, X86_MODE_PROT32), "16-bit interrupt gate names a handler");
	b[5] = 0x87;
	g = decode(b, sizeof(b), X86_MODE_PROT32);
	CHECK_EQ(g.type, X86_GATE_TRAP16);
	CHECK_EQ(g.offset, 0x1234);
	CHECK(x86_gate_is_handler(&g, X86_MODE_PROT32), "16-bit trap gate names a handler");
}

static void test_32bit_task_and_call_gates(void)
{
	/* task gate: the selector names a TSS, the offset fields are reserved */
	uint8_t b[8] = { 0xff, 0xff, 0x28, 0x00, 0x00, 0x85, 0xff, 0xff };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_PROT32);
	CHECK_EQ(g.type, X86_GATE_TASK);
	CHECK_EQ(g.selector, 0x28);
	CHECK_EQ(g.offset, 0);
	CHECK(g.present, "task gate: present");
	CHECK(!x86_gate_is_handler(&g, X86_MODE_PROT32), "task gate is no handler");

	/* call gate, DPL 3, offset 0xcafe1000 */
	uint8_t c[8] = { 0x00, 0x10, 0x08, 0x00, 0x02, 0xec, 0xfe, 0xca };
	g = decode(c, sizeof(c), X86_MODE_PROT32);
	CHECK_EQ(g.type, X86_GATE_CALL);
	CHECK_EQ(g.offset, 0xcafe1000);
	CHECK_EQ(g.dpl, 3);
	CHECK(!x86_gate_is_handler(&g, X86_MODE_PROT32), "call gate is no IDT handler");
}

static void test_32bit_not_present(void)
{
	static const uint8_t b[8] = { 0x00, 0x30, 0x08, 0x00, 0x00, 0x6f, 0x00, 0x00 };
	struct x86_gate g = decode(b, sizeof(b), X86_MODE_PROT32);
	CHECK(!g.present, "32-bit gate with P clear: not present");
	CHECK_EQ(g.type, X86_GATE_TRAP);
	CHECK_EQ(g.dpl, 3);
	CHECK_EQ(g.offset, 0x3000);
}

static void test_layouts(void)
{
	CHECK_EQ(TSS64_RSP(0), 0x04);
	CHECK_EQ(TSS64_RSP(2), 0x14);
	CHECK_EQ(TSS64_IST(1), 0x24);
	CHECK_EQ(TSS64_IST(7), 0x54);
	CHECK_EQ(TSS32_ESP(1), 0x0c);
	CHECK_EQ(TSS32_SS(1), 0x10);
	CHECK_EQ(sizeof(struct x86_int_frame64), 40);
	CHECK_EQ(offsetof(struct x86_int_frame64, rflags), 16);
	CHECK_EQ(offsetof(struct x86_int_frame64, ss), 32);
	CHECK_EQ(SEG_TYPE_CODE_XR_ACCESSED, 0xb);
	CHECK_EQ(SEG_TYPE_DATA_RW_ACCESSED, 0x3);
}

int main(void)
{
	test_gate_sizes();
	test_64bit_interrupt_gate();
	test_64bit_trap_gate();
	test_64bit_invalid_types();
	test_64bit_not_present();
	test_32bit_interrupt_and_trap_gates();
	test_16bit_gates();
	test_32bit_task_and_call_gates();
	test_32bit_not_present();
	test_layouts();
	return check_summary("x86_desc_test");
}
