/* guests/rt/io.h — the CPU's privileged instructions as inline functions:
 * port I/O, MSRs, CPUID, control registers, interrupt flag, pause/halt.
 * Nothing here has state; every other rt module builds on it. */
#ifndef RT_IO_H
#define RT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x86/x86.h"

/* Bits x86/x86.h does not name (yet); guests need them. */
#ifndef CR4_OSXSAVE
#define CR4_OSXSAVE (1ull << 18)
#endif
#define CPUID1_ECX_X2APIC  (1u << 21)
#define CPUID1_ECX_XSAVE   (1u << 26)
#define CPUID1_ECX_POPCNT  (1u << 23)
#define CPUID1_ECX_CX16    (1u << 13)

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" :: "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

#define RT_READ_CR(n) \
	static inline uint64_t read_cr##n(void) { uint64_t v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; }
RT_READ_CR(0)
RT_READ_CR(2)
RT_READ_CR(3)
RT_READ_CR(4)
#undef RT_READ_CR

static inline void write_cr4(uint64_t v) { __asm__ volatile("mov %0, %%cr4" :: "r"(v) : "memory"); }

static inline uint64_t read_rflags(void)
{
	uint64_t v;
	__asm__ volatile("pushfq; popq %0" : "=r"(v));
	return v;
}

static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
/* STI's one-instruction shadow makes "check, then sti; hlt" race-free:
 * an interrupt that became pending after the check wakes the HLT. */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }

/* Disable interrupts and return whether they were enabled. */
static inline bool irq_save(void)
{
	bool on = read_rflags() & RFLAGS_IF;
	cli();
	return on;
}

static inline void irq_restore(bool on)
{
	if (on)
		sti();
}

#endif
