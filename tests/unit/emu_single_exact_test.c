/* tests/unit/emu_single_exact_test.c — which instructions emu's core calls
 * exact for a debugger stepping another engine's vCPU on it
 * (emu_single_exact, engine/emu/emu_single.h; debug/step_exact.c): the
 * ones that touch only registers, flags, x87/SSE and RAM, with the state
 * parts they need; never one that reaches ports, MSRs, CPUID, the TSC,
 * control or debug registers, descriptor tables, the interrupt shadow or
 * XSAVE state. Prints "emu_single_exact: N passed, M failed". */
#include <string.h>

#include "engine/emu/emu_single.h"
#include "tests/unit/check.h"

struct probe {
	const char *what;
	uint8_t bytes[15];
	unsigned len;
	bool exact;
	bool fpu;        /* needs the x87/SSE part */
};

static const struct probe probes[] = {
	{ "mov rax, [rdi]", { 0x48, 0x8b, 0x07 }, 3, true, false },
	{ "add [rsi], rbx", { 0x48, 0x01, 0x1e }, 3, true, false },
	{ "push rax", { 0x50 }, 1, true, false },
	{ "pop rcx", { 0x59 }, 1, true, false },
	{ "call rel32", { 0xe8, 0, 0, 0, 0 }, 5, true, false },
	{ "ret", { 0xc3 }, 1, true, false },
	{ "jnz rel8", { 0x75, 0x10 }, 2, true, false },
	{ "pushfq", { 0x9c }, 1, true, false },
	{ "popfq", { 0x9d }, 1, true, false },
	{ "cli", { 0xfa }, 1, true, false },
	{ "iretq", { 0x48, 0xcf }, 2, true, false },
	{ "ud2", { 0x0f, 0x0b }, 2, true, false },
	{ "div rcx", { 0x48, 0xf7, 0xf1 }, 3, true, false },
	{ "movdqa xmm0, [rdi]", { 0x66, 0x0f, 0x6f, 0x07 }, 4, true, true },
	{ "paddq xmm0, xmm1", { 0x66, 0x0f, 0xd4, 0xc1 }, 4, true, true },
	{ "cpuid", { 0x0f, 0xa2 }, 2, false, false },
	{ "rdtsc", { 0x0f, 0x31 }, 2, false, false },
	{ "rdmsr", { 0x0f, 0x32 }, 2, false, false },
	{ "wrmsr", { 0x0f, 0x30 }, 2, false, false },
	{ "out 0x80, al", { 0xe6, 0x80 }, 2, false, false },
	{ "in al, dx", { 0xec }, 1, false, false },
	{ "rep outsb", { 0xf3, 0x6e }, 2, false, false },
	{ "hlt", { 0xf4 }, 1, false, false },
	{ "sti", { 0xfb }, 1, false, false },
	{ "mov ss, ax", { 0x8e, 0xd0 }, 2, false, false },
	{ "pop ss (32-bit: invalid in 64)", { 0x17 }, 1, false, false },
	{ "mov cr3, rax", { 0x0f, 0x22, 0xd8 }, 3, false, false },
	{ "mov rax, dr7", { 0x0f, 0x21, 0xf8 }, 3, false, false },
	{ "lgdt [rax]", { 0x0f, 0x01, 0x10 }, 3, false, false },
	{ "invlpg [rax]", { 0x0f, 0x01, 0x38 }, 3, false, false },
	{ "int3", { 0xcc }, 1, false, false },
	{ "int 0x80", { 0xcd, 0x80 }, 2, false, false },
	{ "syscall", { 0x0f, 0x05 }, 2, false, false },
	{ "swapgs", { 0x0f, 0x01, 0xf8 }, 3, false, false },
	{ "xsave [rax]", { 0x0f, 0xae, 0x20 }, 3, false, false },
	{ "xsetbv", { 0x0f, 0x01, 0xd1 }, 3, false, false },
	{ "vmcall", { 0x0f, 0x01, 0xc1 }, 3, false, false },
	{ "rdfsbase rax", { 0xf3, 0x48, 0x0f, 0xae, 0xc0 }, 5, false, false },
	{ "wbinvd", { 0x0f, 0x09 }, 2, false, false },
	{ "monitor", { 0x0f, 0x01, 0xc8 }, 3, false, false },
};

int main(void)
{
	struct x86_sregs sregs;
	memset(&sregs, 0, sizeof(sregs));
	sregs.cr0 = CR0_PE | CR0_PG;
	sregs.cr4 = CR4_PAE;
	sregs.efer = EFER_LME | EFER_LMA;
	sregs.cs.l = true;
	sregs.cs.present = true;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		const struct probe *p = &probes[i];
		unsigned needs = 0;
		bool exact = emu_single_exact(&sregs, p->bytes, p->len, &needs);
		CHECK(exact == p->exact, "%s: exact %d, expected %d", p->what, exact, p->exact);
		if (exact)
			CHECK(((needs & EMU_SINGLE_PART_FPU) != 0) == p->fpu,
			      "%s: needs 0x%x, x87/SSE %s", p->what, needs, p->fpu ? "yes" : "no");
	}
	return check_summary("emu_single_exact");
}
