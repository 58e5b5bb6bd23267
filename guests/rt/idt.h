/* guests/rt/idt.h — interrupts and exceptions: one IDT for every CPU with
 * a stub per vector (isr.S) that saves the registers into a struct rt_frame
 * and calls the handler installed for that vector. Without one, an
 * exception prints vector, error code, RIP (and CR2 for #PF) and fails the
 * test; any other vector is reported and ignored. */
#ifndef RT_IDT_H
#define RT_IDT_H

#include <stdint.h>

#define RT_VEC_TIMER    0xec    /* local APIC timer */
#define RT_VEC_IPI      0xf0    /* runtime wake-up / work IPI */
#define RT_VEC_SPURIOUS 0xff    /* APIC spurious-interrupt vector */

struct rt_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;            /* error_code 0 when none */
	uint64_t rip, cs, rflags, rsp, ss;      /* pushed by the CPU */
};

typedef void (*rt_handler)(struct rt_frame *f);

/* Build the IDT (BSP, once) and load it (every CPU). */
void idt_init(void);
void idt_load(void);

/* Install h for vector (NULL restores the default). Returns the old one. */
rt_handler idt_set_handler(uint8_t vector, rt_handler h);

/* Name of an exception vector ("#PF"), or "irq" above 31. */
const char *idt_vector_name(unsigned vector);

#endif
