/* guests/rt/idt.c — the IDT and the C side of interrupt dispatch. */
#include "guests/rt/idt.h"

#include "guests/rt/apic.h"
#include "guests/rt/io.h"
#include "guests/rt/report.h"
#include "guests/rt/serial.h"
#include "guests/rt/smp.h"
#include "x86/desc.h"

#define IDT_ENTRIES 256
#define IDT_GATE_INTR64 (DESC_PRESENT | DESC_DPL(0) | X86_GATE_INT)
#define NR_EXCEPTIONS 32

struct idt_gate {
	uint16_t off0, sel;
	uint8_t ist, type;
	uint16_t off1;
	uint32_t off2, zero;
};

struct __attribute__((packed)) idt_ptr {
	uint16_t limit;
	uint64_t base;
};

extern const uint64_t rt_isr_table[IDT_ENTRIES];

static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16)));
static rt_handler handlers[IDT_ENTRIES];

static const char *const exc_names[NR_EXCEPTIONS] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
	"#SS", "#GP", "#PF", "(15)", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "(22)", "(23)",
	"(24)", "(25)", "(26)", "(27)", "#HV", "#VC", "#SX", "(31)",
};

const char *idt_vector_name(unsigned vector)
{
	return vector < NR_EXCEPTIONS ? exc_names[vector] : "irq";
}

void idt_init(void)
{
	for (int v = 0; v < IDT_ENTRIES; v++) {
		uint64_t a = rt_isr_table[v];
		idt[v] = (struct idt_gate){
			.off0 = (uint16_t)a, .sel = 0x08, .type = IDT_GATE_INTR64,
			.off1 = (uint16_t)(a >> 16), .off2 = (uint32_t)(a >> 32),
		};
	}
	idt_load();
}

void idt_load(void)
{
	struct idt_ptr p = { sizeof(idt) - 1, (uintptr_t)idt };

	__asm__ volatile("lidt %0" :: "m"(p));
}

rt_handler idt_set_handler(uint8_t vector, rt_handler h)
{
	rt_handler old = handlers[vector];

	__atomic_store_n(&handlers[vector], h, __ATOMIC_RELEASE);
	return old;
}

static void unexpected_exception(struct rt_frame *f)
{
	printf("cpu%u: unexpected exception %lu %s, error code 0x%lx, RIP 0x%lx",
	       rt_cpu_id(), f->vector, idt_vector_name(f->vector), f->error_code, f->rip);
	if (f->vector == X86_PF)
		printf(", CR2 0x%lx", read_cr2());
	printf("\n");
	rt_fail_now("unexpected exception %s at RIP 0x%lx", idt_vector_name(f->vector), f->rip);
}

void rt_isr_dispatch(struct rt_frame *f);
void rt_isr_dispatch(struct rt_frame *f)
{
	rt_handler h = __atomic_load_n(&handlers[f->vector & 0xff], __ATOMIC_ACQUIRE);

	if (h) {
		h(f);
		return;
	}
	if (f->vector < NR_EXCEPTIONS) {
		unexpected_exception(f);
		return;
	}
	/* the spurious vector needs no EOI; other stray interrupts do */
	if (f->vector != RT_VEC_SPURIOUS) {
		printf("cpu%u: unexpected interrupt vector 0x%lx\n", rt_cpu_id(), f->vector);
		apic_eoi();
	}
}
