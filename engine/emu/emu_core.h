/* engine/emu/emu_core.h — private to the execution core (emu_engine.c,
 * emu_cpu.c, emu_decode.c, emu_mem.c, emu_exc.c, emu_exec*.c, emu_fast*.c,
 * emu_single.c): the VM-wide
 * engine state (struct emu_vm), the core's per-vCPU state (cpu->core), the
 * decoded-instruction format and the calls between the core's files.
 * The platform and debug parts see only emu.h, emu_platform.h and
 * emu_debug.h.
 *
 * Faults: an instruction that faults calls emu_fault(), which records the
 * exception in cpu->pending, puts RIP back at the instruction and
 * longjmp()s to the run loop (emu_exec_run), which delivers it. Handlers
 * therefore commit architectural state only after their last memory access
 * that can fault or leave for the machine (see "replay" in emu_mem.c).
 * emu_raise() (emu.h, for the platform and debug parts) only records. */
#ifndef VMDB_EMU_CORE_H
#define VMDB_EMU_CORE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "engine/emu/emu.h"
#include "machine/vm.h"
#include "x86/desc.h"

/* --- decoded instructions ------------------------------------------------ */

enum emu_seg_idx { EMU_ES, EMU_CS, EMU_SS, EMU_DS, EMU_FS, EMU_GS, EMU_SEG_NONE = 7 };
enum emu_opkind { EMU_OP_NONE, EMU_OP_REG, EMU_OP_MEM, EMU_OP_IMM, EMU_OP_PTR };
/* Register classes of a register operand; reg is the number inside it. */
enum emu_rclass { EMU_RC_GPR, EMU_RC_GPR8H, EMU_RC_SEG, EMU_RC_CR, EMU_RC_DR, EMU_RC_XMM,
		  EMU_RC_MMX, EMU_RC_OTHER };
#define EMU_NOREG  0xff
#define EMU_RIPREL 0xfe             /* memory base register = RIP */

struct emu_operand {
	uint8_t kind;                  /* enum emu_opkind */
	uint8_t size;                  /* bytes; for far pointers in memory 4/6/10 */
	uint8_t reg;                   /* REG: register; MEM: base (EMU_NOREG / EMU_RIPREL) */
	uint8_t rclass;                /* REG: enum emu_rclass */
	uint8_t index, scale, seg;     /* MEM */
	uint8_t pad;
	uint16_t ptr_sel;              /* PTR: selector */
	int64_t val;                   /* IMM: value (sign-extended when signed); MEM: disp;
					* PTR: offset */
};

struct emu_insn;
typedef void (*emu_handler)(struct emu_cpu *cpu, const struct emu_insn *in);

#define EMU_I_REP   0x01            /* REP / REPE */
#define EMU_I_REPNE 0x02
#define EMU_I_LOCK  0x04
#define EMU_I_SEGOV 0x08            /* an explicit segment prefix */
#define EMU_I_FAR   0x10            /* far JMP/CALL/RET */

struct emu_insn {
	emu_handler fn;
	uint16_t mnemonic;             /* ZydisMnemonic */
	uint8_t len;
	uint8_t osize;                 /* operand size in bytes (2, 4, 8) */
	uint8_t asize;                 /* address size in bytes */
	uint8_t flags;                 /* EMU_I_* */
	uint8_t nops;                  /* visible operands */
	uint8_t seg;                   /* segment of the first memory operand */
	uint8_t opcode, opmap, modrm_reg;
	uint8_t modrm;                 /* the whole ModRM byte (x87 register forms) */
	struct emu_operand op[3];
};

/* The decode cache is VM-wide (one vCPU executes at a time) and keyed by
 * the physical address of the first byte and the mode. An entry is only
 * used when the guest bytes still equal the copy in it: that catches every
 * writer (the guest, DMA-like device models, the debugger's int3 bytes)
 * without any invalidation protocol, also for instructions that cross
 * into the next page. */
#define EMU_DCACHE_BITS 15
#define EMU_DCACHE_SIZE (1u << EMU_DCACHE_BITS)

struct emu_dcache_entry {
	uint64_t gpa;                  /* ~0 = empty */
	uint8_t mode;
	uint8_t bytes[15];
	struct emu_insn insn;
};

/* --- the VM ---------------------------------------------------------------- */

struct emu_sched;

struct emu_vm {
	struct vm *vm;
	struct emu_platform *plat;
	struct emu_cpu *cpus[VM_MAX_VCPUS];
	unsigned nr_cpus;
	/* Who runs when (emu_engine.c's own; NULL in emu_single.c's VM, which
	 * runs its one vCPU on the caller's thread). */
	struct emu_sched *sched;
	struct emu_rec *rec;          /* record and replay (emu_record.c), NULL until asked */

	struct emu_dcache_entry *dcache;
	struct emu_blocks *blocks;    /* emu_fast.c's block cache (NULL: step only) */
	/* The outside generation (emu_fast.c): a new one begins whenever the
	 * vCPU threads were away in the machine, where the debugger and devices
	 * may write guest memory; blocks compare their bytes again then. */
	uint64_t code_gen;
	/* emu_fast.c's code map (NULL: none), one entry per 4 KiB frame of
	 * guest RAM, indexed by the frame's offset in vm->ram (emu_frame_of):
	 * code_bits says which frames hold blocks; code_ver counts the
	 * writes into such frames, each of which invalidates that frame's
	 * blocks only. The TLB marks writable entries of frames with blocks
	 * (EMU_TAG_CODE) so that stores check for code only there. */
	const uint8_t *ram;
	uint64_t ram_frames;
	uint64_t *code_bits;
	uint32_t *code_ver;
	/* per frame with blocks: stores into it since one of its blocks was
	 * last compared; at EMU_CODE_STALE_MAX the frame is taken for data
	 * again (its code freed, the page reused) and leaves code_bits
	 * (emu_mem.c), so that its stores stop taking the slow way */
	uint8_t *code_stale;
	uint64_t code_marks;          /* bits set in code_bits so far: a vCPU re-marks its
				       * TLB when this moved (emu_core.code_marks) */
	uint64_t retired_gone;        /* instructions of vCPUs destroyed (emu_stats_report) */
	uint64_t *insn_stats;         /* VMDB_EMU_STATS=1: counts per mnemonic (emu_stats.h) */
	/* The debugger's watched ranges (engine_ops.set_watch); every vCPU's
	 * emu_dbg points here. Changed only with every vCPU out of run(). */
	struct engine_watch *watch;
	unsigned nr_watch;
	/* VMDB_SNAP_CHECK's state (emu_snap_check.c), NULL without it */
	struct emu_snap_check *snap_check;
	uint8_t warned[2048 / 8];     /* mnemonics already reported as unimplemented */
	pthread_mutex_t warn_lock;
};

/* --- per-vCPU core state (cpu->core) ------------------------------------ */

struct emu_tlb_entry {
	uint64_t tag_r, tag_w, tag_x;  /* linear page address when allowed, else ~0 */
	uint8_t *host;                 /* host address of the page, NULL = not RAM */
	uint64_t gpa;                  /* physical page address */
};

/* Bit 0 of tag_w: the frame holds blocks of the fast path (see
 * emu_vm.code_bits), whose stores compare the tag whole and so take
 * their slow path there; every other user masks the bit off. */
#define EMU_TAG_CODE 1ull
/* Bit 1 of tag_r and tag_w: the debug part watches the page for such
 * accesses (emu_dbg_page_watch), so the fast path's compares miss and the
 * exact way, which calls emu_dbg_mem, does them. Masked off like
 * EMU_TAG_CODE (EMU_TAG_BITS) everywhere else. */
#define EMU_TAG_WATCH 2ull
#define EMU_TAG_BITS (EMU_TAG_CODE | EMU_TAG_WATCH)

/* The frame of guest RAM at host address p (a pointer into vm->ram). */
static inline uint64_t emu_frame_of(const struct emu_vm *evm, const void *p)
{
	return (uint64_t)((const uint8_t *)p - evm->ram) >> 12;
}

/* Does the RAM frame holding host address p hold blocks? */
static inline bool emu_code_frame(const struct emu_vm *evm, const void *p)
{
	if (!evm->code_bits)
		return false;
	uint64_t i = emu_frame_of(evm, p);
	return i < evm->ram_frames && ((evm->code_bits[i / 64] >> (i % 64)) & 1);
}

/* Guest RAM at host address p was (or is about to be) written by the
 * guest: the blocks of its frame, if it has any, compare again. */
static inline void emu_code_written(struct emu_vm *evm, const void *p)
{
	if (emu_code_frame(evm, p))
		evm->code_ver[emu_frame_of(evm, p)]++;
}

#define EMU_CODE_STALE_MAX 32

#define EMU_TLB_SIZE 2048

/* One I/O or MMIO access that left for the machine while executing the
 * current instruction; re-executing it consumes these in order. */
struct emu_replay {
	uint64_t addr;
	uint8_t kind;                  /* 1 = port I/O, 2 = MMIO */
	uint8_t len;
	bool write;
	uint8_t data[8];
};

#define EMU_REPLAY_MAX 8

enum emu_jmp { EMU_JMP_FAULT = 1, EMU_JMP_EXIT = 2 };

/* The JIT's page slots (emu_jit.c): a linear page ftlb allowed, its host
 * address, and the bound an access's offset in it stays under (0: empty).
 * EMU_SLOT_WAYS for reads, then as many for writes (filled through tag_w
 * alone). They outlive the translations, so whatever changes what a TLB
 * entry of ftlb allowed, or could have allowed, empties them: every
 * flush, INVLPG, a mark added to tags, a CPL change. */
#define EMU_SLOT_WAYS 4
struct emu_page_slot {
	uint64_t page, host, bound;
};

struct emu_core {
	struct emu_page_slot pslot[2 * EMU_SLOT_WAYS];   /* first: short displacements */
	jmp_buf jmp;
	struct emu_tlb_entry tlb[2][EMU_TLB_SIZE];   /* [0] supervisor, [1] user */
	uint8_t mode;                  /* enum x86_mode, cached */
	uint8_t cpl;
	bool dbg_armed;                /* emu_dbg_armed() at this instruction */
	bool nmi_blocked;              /* from NMI delivery to the next IRET */
	bool delivering;               /* inside event delivery (for #DF) */
	uint8_t deliver_vector;
	uint8_t deliver_kind;          /* enum emu_event */
	bool shutdown;                 /* triple fault: stays stopped */
	int16_t df_first;              /* the exception an escalation began with */
	bool event_in_insn;            /* this instruction delivered an event itself */
	bool rep_pending;              /* RIP is at a REP with iterations left */
	/* Iterations of the REP at RIP done since its batch began. A REP
	 * retires once per EMU_REP_BATCH iterations and at its end, whether
	 * they run a batch per step or one per step (the debug part armed):
	 * guest time, and every position the record/replay log holds, must
	 * not depend on the debugger (emu_exec_str.c) */
	uint32_t rep_batch;
	bool in_loop;                  /* emu_exec_run is on the stack (jmp valid) */

	struct emu_replay replay[EMU_REPLAY_MAX];
	unsigned replay_n, replay_pos;

	/* Instruction bytes decided on elsewhere (emu_single.c: what KVM
	 * fetched): the instruction at linear address pin_lin is decoded from
	 * these, never fetched again, so a writer racing with the caller
	 * cannot swap it. pin_len 0: none. */
	uint8_t pin_bytes[15];
	uint8_t pin_len;
	uint64_t pin_lin;

	uint64_t budget_end;           /* stop when cpu->retired reaches it */
	bool kick;                     /* atomic: leave emu_exec_run() soon (EMU_STOP_KICKED) */
	/* A HLT stepped with interrupts held off (emu_exec_sys.c): the vCPU runs
	 * unstepped, interrupts allowed, until it is back after the HLT with
	 * the same RSP; then the step ends there (as debug/step.c does on kvm). */
	bool hlt_step;
	uint64_t hlt_next, hlt_rsp;
	struct engine_debug hlt_saved;

	/* The fast path (emu_fast.c). Lazy flags (emu_flags.h): while lf_op
	 * is not EMU_LF_NONE the arithmetic bits of cpu->rflags are stale and
	 * these say how to compute them; emu_flags_sync() makes them exact.
	 * Only emu_fast.c sets them, and every way out of it syncs (the end of a
	 * block, emu_fault, emu_leave), so outside the fast path cpu->rflags
	 * is always exact. */
	uint8_t lf_op, lf_size;        /* enum emu_lf; operand size in bytes */
	bool lf_cf;                    /* INC/DEC: CF kept from before */
	uint64_t lf_a, lf_b, lf_r;
	bool blk_break;                /* leave the block after this instruction */
	const struct emu_block *blk;   /* the running block (its gpa, nbytes, n) */
	uint64_t blk_rip, blk_ret;     /* its RIP, and cpu->retired when it began */
	const struct emu_fop *blk_stop;        /* the instruction that left it */
	unsigned chain_left;           /* blocks that may still be chained (emu_fast.c) */
	/* copied when the blocks start running (emu_block_run): emu_vm's
	 * code_gen (which moves only while the vCPUs are away) and code_ver,
	 * and the LAPIC's emu_lapic_attention() */
	uint64_t code_gen;
	const uint32_t *code_ver;
	const int *irq_attn;
	uint32_t watch_gen;            /* emu_dbg_watch_gen the TLB's EMU_TAG_WATCH follow */
	struct emu_blocks *blocks;     /* evm->blocks */
	struct emu_tlb_entry *ftlb;    /* tlb[] of the CPL the blocks run at */
	uint64_t code_marks;           /* emu_vm.code_marks when the TLB was marked */

	/* A locked read-modify-write being executed atomically (emu_exec.c
	 * exec_locked, emu_mem.c): the first read of the instruction from an
	 * aligned RAM operand is taken atomically, its write is held back
	 * and committed by a compare-and-swap. */
	bool lk_on, lk_written;
	uint8_t lk_size;
	uint8_t *lk_p;                 /* host address of the operand, NULL: none yet */
	uint64_t lk_lin, lk_old, lk_new;

	/* What each TLB entry came from (EMU_TLBA_*, emu_mem.c), and whether
	 * any entry of a kind was filled since the last full flush. */
	uint8_t tlb_attr[2][EMU_TLB_SIZE];
	bool tlb_any_large, tlb_any_smap_user;
	/* Linear ranges [lo, hi] that hold every 2 MiB / 1 GiB page an entry
	 * came from since the last full flush, so that INVLPG outside them
	 * looks at one slot only (emu_mem.c). */
	struct { uint64_t lo, hi; } tlb_large[8];
	unsigned tlb_nr_large;
	/* The slots (user * EMU_TLB_SIZE + slot) filled with entries that are
	 * not global since the last flush of those, each once, so that a CR3
	 * write looks at them only (emu_mem.c). */
	uint16_t tlb_filled[2 * EMU_TLB_SIZE];
	unsigned tlb_nr_filled;

	uint64_t xcr0;
	uint64_t msr_pat, msr_sysenter_cs, msr_sysenter_esp, msr_sysenter_eip;
	uint64_t msr_misc_enable, msr_mtrr_def;
	uint64_t msr_mtrr_var[16];     /* PHYSBASE0, PHYSMASK0, ... PHYSMASK7 */
	uint64_t msr_mtrr_fixed[11];   /* 0x250, 0x258, 0x259, 0x268-0x26f */
};

static inline struct emu_core *emu_core_of(struct emu_cpu *cpu)
{
	return cpu->core;
}

/* The page slots emptied (from: 0 all, EMU_SLOT_WAYS the writes' only). */
static inline void emu_slots_empty(struct emu_core *c, unsigned from)
{
	for (unsigned i = from; i < 2 * EMU_SLOT_WAYS; i++)
		c->pslot[i].bound = 0;
}

/* --- emu_cpuid.c: the CPUID model (what the guest is told; see there) --- */
#define EMU_CPUID_SIGNATURE 0x000f06f1u   /* family 6, model 0xff, stepping 1 */
#define EMU_PHYS_ADDR_BITS 40u
#define EMU_XCR0_SUPPORTED 3u             /* x87, SSE */
void emu_cpuid(struct emu_cpu *cpu, uint32_t leaf, uint32_t sub, uint32_t out[4]);

/* CR4 bits beyond x86/x86.h's, all advertised by the model */
#define EMU_CR4_TSD        (1ull << 2)
#define EMU_CR4_MCE        (1ull << 6)
#define EMU_CR4_PCE        (1ull << 8)
#define EMU_CR4_UMIP       (1ull << 11)
#define EMU_CR4_PCIDE      (1ull << 17)
#define EMU_CR4_OSXSAVE    (1ull << 18)
#define EMU_CR4_SMEP       (1ull << 20)
#define EMU_CR4_SMAP       (1ull << 21)

/* --- emu_cpu.c --- */
/* A zeroed emu_vm for nr_cpus vCPUs of vm: its lock; emu_vm_fini
 * destroys it. The engine adds its scheduler, caches and platform. */
void emu_vm_init(struct emu_vm *evm, struct vm *vm, unsigned nr_cpus);
void emu_vm_fini(struct emu_vm *evm);
/* A zeroed cpu and core for vcpu in evm, at power-on state. */
void emu_core_init(struct emu_cpu *cpu, struct emu_core *core, struct emu_vm *evm,
		   struct vcpu *vcpu);
void emu_cpu_reset(struct emu_cpu *cpu);       /* power-on state (AP: wait for SIPI) */
/* Between instructions with nothing in flight, from the registers as they
 * are: not halted, no shadow, no pending or half-delivered event, out of
 * shutdown (INIT does that), no REP half done; CPL, mode, TLB and the
 * debug part rebuilt. RESET, INIT and emu_single.c's loads share it. */
void emu_core_restart(struct emu_cpu *cpu);
/* The same, its TLB kept: the state continues where this core left it
 * (emu_single's consecutive steps of one vCPU). */
void emu_core_restart_keep_tlb(struct emu_cpu *cpu);
void emu_update_mode(struct emu_cpu *cpu);     /* after CR0/EFER/CS changes */
struct x86_segment *emu_segreg(struct emu_cpu *cpu, unsigned seg);
/* RDMSR/WRMSR of the core's own MSRs: false = #GP. */
bool emu_msr_get(struct emu_cpu *cpu, uint32_t msr, uint64_t *value);
bool emu_msr_set(struct emu_cpu *cpu, uint32_t msr, uint64_t value);
/* Guest writes to CR0/CR3/CR4/EFER with their checks (#GP via emu_fault). */
void emu_write_cr(struct emu_cpu *cpu, unsigned cr, uint64_t value);
void emu_write_efer(struct emu_cpu *cpu, uint64_t value);
/* What emu_write_efer takes without #GP (reserved bits, LME under paging). */
bool emu_efer_ok(const struct emu_cpu *cpu, uint64_t value);

/* --- emu_mem.c --- */
void emu_tlb_flush(struct emu_cpu *cpu);       /* everything, global pages too */
void emu_tlb_flush_nonglobal(struct emu_cpu *cpu);
void emu_tlb_flush_page(struct emu_cpu *cpu, uint64_t lin);   /* INVLPG */
/* After RFLAGS.AC may have been cleared or CPL become 3: drop what SMAP
 * allowed only with AC set in ring 0-2. */
void emu_tlb_ac_changed(struct emu_cpu *cpu);
/* Mark this vCPU's writable TLB entries of frames that hold blocks
 * (EMU_TAG_CODE): after the code map grew (emu_vm.code_marks). */
void emu_tlb_mark_code(struct emu_cpu *cpu);
/* The same after one frame (at host address page) joined the code map
 * (code_marks counted it): only its entries when the TLB was up to date
 * before. */
void emu_tlb_mark_frame(struct emu_cpu *cpu, const uint8_t *page);
/* Linear address of seg:ea (64-bit: only FS/GS bases count). */
uint64_t emu_linear(struct emu_cpu *cpu, unsigned seg, uint64_t ea);
/* Guest accesses at CPL (sys: a supervisor access whatever the CPL, e.g.
 * descriptor tables and the interrupt stack). size 1, 2, 4 or 8. */
uint64_t emu_read(struct emu_cpu *cpu, uint64_t lin, unsigned size);
void emu_write(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t value);
uint64_t emu_read_sys(struct emu_cpu *cpu, uint64_t lin, unsigned size);
void emu_write_sys(struct emu_cpu *cpu, uint64_t lin, unsigned size, uint64_t value);
/* Any length; a write checks every page before it writes any byte. */
void emu_read_bytes(struct emu_cpu *cpu, uint64_t lin, void *buf, unsigned len, bool sys);
void emu_write_bytes(struct emu_cpu *cpu, uint64_t lin, const void *buf, unsigned len,
		     bool sys);
/* Host address of a naturally aligned RAM operand of size bytes (1-16)
 * for a locked access, translated for reading and then writing as the
 * instruction would (faults alike); NULL when not RAM or not aligned. */
uint8_t *emu_lock_ptr(struct emu_cpu *cpu, uint64_t lin, unsigned size);
/* 16-byte host compare-and-swap at p (16-aligned): *lo and *hi the
 * expected value, replaced by what memory held when it differs (emu_exec.c). */
bool emu_cas16(uint8_t *p, uint64_t *lo, uint64_t *hi, uint64_t nlo, uint64_t nhi);
/* Host address of len bytes at lin when they are RAM inside one page,
 * translated for reading or writing at CPL as an access would (faults
 * alike; a write counts for the code map: the caller must write them);
 * NULL when not RAM or across pages. No watchpoint checks: callers run
 * with the debug part disarmed. */
uint8_t *emu_ram_span(struct emu_cpu *cpu, uint64_t lin, unsigned len, bool write);
/* Iterations of a REP string instruction run in one step, at most (then
 * interrupts and kicks are looked at: emu_exec_str.c). */
#define EMU_REP_BATCH 4096u
/* Up to n iterations of REP MOVS/STOS (forward, 64-bit addresses) at once,
 * as far as source and destination each stay RAM inside one page: what
 * those iterations one by one do, their faults and RSI/RDI/RCX included
 * (emu_ram_span: the debug part must be disarmed). How many ran; 0: none
 * can run this way (another instruction or form, DF set, not RAM ...). */
unsigned emu_rep_bulk(struct emu_cpu *cpu, const struct emu_insn *in, unsigned n);
/* Check that a write of len bytes at lin would not fault (then do it). */
void emu_probe_write(struct emu_cpu *cpu, uint64_t lin, unsigned len);
/* The TLB's execute entry for lin's page filled, as a fetch from lin
 * would (a walk; faults #PF, #GP as it would). */
void emu_tlb_fill_exec(struct emu_cpu *cpu, uint64_t lin);
/* For a specialised handler of the fast path whose one data access at lin
 * (a store when write; in one page) the TLB did not allow: the entry the
 * exact way's access would make, by the same walk, without faulting. True
 * when the fast compare allows the access now (RAM, not watched, a store
 * not into a frame with blocks) and did not before; false where the walk
 * faults (the exact way faults then, after the same walk) and anywhere
 * the exact way is needed. */
bool emu_tlb_fill_data(struct emu_cpu *cpu, uint64_t lin, bool write);
/* The guest-physical address a data access at lin (a store when write)
 * reaches, by the TLB or the walk the access would make (its accessed
 * and dirty bits set), without faulting: false where the access would
 * fault. For the debug part's physical watched ranges. */
bool emu_data_gpa(struct emu_cpu *cpu, uint64_t lin, bool write, uint64_t *gpa);
/* Instruction bytes at the linear address: host pointer when the whole
 * range is in one RAM page, else copies into buf (a second page that
 * is not RAM reads all ones); *gpa is the first byte's physical address;
 * faults #PF. NULL, *len 0: the first page is not RAM. */
const uint8_t *emu_fetch(struct emu_cpu *cpu, uint64_t lin, uint8_t *buf, unsigned *len,
			 uint64_t *gpa);
/* Port I/O that the platform does not claim leaves as VM_EXIT_IO. */
uint64_t emu_pio_in(struct emu_cpu *cpu, uint16_t port, unsigned size);
void emu_pio_out(struct emu_cpu *cpu, uint16_t port, unsigned size, uint64_t value);
void emu_replay_reset(struct emu_cpu *cpu);

/* --- emu_exc.c --- */
enum emu_event { EMU_EV_EXT, EMU_EV_NMI, EMU_EV_EXC, EMU_EV_SOFT };
_Noreturn void emu_fault(struct emu_cpu *cpu, uint8_t vector, bool has_error_code,
			 uint32_t error_code);
#define emu_gp(cpu, code) emu_fault(cpu, X86_GP, true, code)
#define emu_ud(cpu) emu_fault(cpu, X86_UD, false, 0)
/* The instruction left for the machine (cpu->exit filled). */
_Noreturn void emu_leave(struct emu_cpu *cpu);
/* Deliver an event through the IDT now (RIP is the address to return to). */
void emu_deliver(struct emu_cpu *cpu, uint8_t vector, enum emu_event kind, bool has_error_code,
		 uint32_t error_code);
/* Deliver cpu->pending's exception, combined with one being delivered
 * when it arose (#DF); false = triple fault (cpu->exit is SHUTDOWN). */
bool emu_deliver_pending(struct emu_cpu *cpu);
/* Protected-mode segment loads (#GP/#NP/#SS on bad selectors). */
void emu_load_seg(struct emu_cpu *cpu, unsigned seg, uint16_t sel);
/* CS from a code descriptor at privilege new_cpl (RIP is the caller's). */
void emu_load_cs(struct emu_cpu *cpu, uint16_t sel, unsigned new_cpl);
/* Read a GDT/LDT descriptor (8 bytes; 16 for system descriptors in long mode). */
uint64_t emu_read_desc(struct emu_cpu *cpu, uint16_t sel, uint64_t *high);
void emu_iret(struct emu_cpu *cpu, unsigned osize);
void emu_far_return(struct emu_cpu *cpu, unsigned osize, unsigned pop);
void emu_far_jump(struct emu_cpu *cpu, uint16_t sel, uint64_t off, bool call, unsigned osize);

/* --- emu_decode.c --- */
int emu_dcache_create(struct emu_vm *evm);
void emu_dcache_destroy(struct emu_vm *evm);
/* The instruction at RIP, decoded (from the cache when the bytes agree). */
const struct emu_insn *emu_decode_at(struct emu_cpu *cpu, struct emu_insn *scratch);
/* From now on the instruction at the current RIP is these bytes (up to 15),
 * whatever memory holds (emu_core.pin_bytes); len 0 unpins. */
void emu_pin_insn(struct emu_cpu *cpu, const uint8_t *bytes, unsigned len);
/* Mnemonic -> handler (from the EMU_HANDLER_TABLE()s), else emu_unimplemented. */
emu_handler emu_handler_for(unsigned mnemonic);
/* Which handler runs a mnemonic must not depend on link order: an error
 * naming a mnemonic that two EMU_HANDLER_TABLE()s both list. */
int emu_handler_tables_check(struct err *e) must_check;
void emu_unimplemented(struct emu_cpu *cpu, const struct emu_insn *in);

/* One instruction from p (len bytes there) in `mode`: 0, -EAGAIN when the
 * bytes end inside it, -EINVAL when it is not an instruction. */
int emu_decode_insn(unsigned mode, const uint8_t *p, unsigned len, struct emu_insn *in);
/* The same for the instruction at gpa, whose bytes p are all in its page:
 * from the decode cache when it holds those bytes there (the block
 * builder meets the same instructions again, in blocks that start inside
 * others), else decoded into it. */
int emu_decode_cached(struct emu_vm *evm, unsigned mode, uint64_t gpa, const uint8_t *p,
		      unsigned len, struct emu_insn *in);

/* --- emu_fast.c: blocks of decoded instructions, run without the
 * per-instruction checks while nothing needs them (see there) --- */
struct emu_blocks;
struct emu_block;
struct emu_fop;
int emu_blocks_create(struct emu_vm *evm);
void emu_blocks_destroy(struct emu_vm *evm);
/* The vCPUs were away (in the machine, stopped for the debugger), where
 * guest memory may have been written: every block compares its bytes again. */
void emu_blocks_outside(struct emu_vm *evm);
/* With VMDB_EMU_STATS=1 in the environment, one line on stderr: the
 * instructions the vCPUs retired, the process's CPU time and their
 * ratio (MIPS), and how often the block cache was emptied (bench/linux). */
void emu_stats_report(struct emu_vm *evm);
/* Run the block at RIP: false when it has no instruction the fast path
 * runs (then the caller steps the instruction the exact way). */
bool emu_block_run(struct emu_cpu *cpu);
/* Make the arithmetic flags in cpu->rflags exact (see emu_core.lf_op). */
void emu_flags_sync_slow(struct emu_cpu *cpu);
static inline void emu_flags_sync(struct emu_cpu *cpu)
{
	if (cpu->core->lf_op)
		emu_flags_sync_slow(cpu);
}

/* --- emu_exec_sys.c --- */
void emu_mov_special(struct emu_cpu *cpu, const struct emu_insn *in);   /* CR, DR, Sreg */

/* --- emu_exec.c: the run loop of the core --- */
/* Execute until the budget is used up, a halt, an exit or a kick. */
enum emu_stop emu_exec_run(struct emu_cpu *cpu, uint64_t budget);
/* Is an interrupt deliverable now (used by the scheduler for halted CPUs). */
bool emu_cpu_wakeable(struct emu_cpu *cpu);
/* Interrupts held off by the debugger's stepping (not during a HLT step). */
bool emu_irq_blocked(struct emu_cpu *cpu);

/* --- emu_snap.c: the engine's part of whole-machine snapshots --- */
extern const struct engine_snap_ops emu_snap_ops;
/* The scheduler's position (emu_engine.c's): whose turn it is and, per
 * vCPU, where its turn ends and whether it owes the others one. Restoring
 * leaves the run token with its holder (the thread restoring, or nobody
 * while every vCPU is parked): the holder hands it on as the vCPU in
 * img.turn would have at the snapshot (sched_pass from that one). */
struct emu_sched_image {
	uint32_t turn;
	bool idle_quiet;
};
struct emu_sched_cpu_image {
	uint64_t quantum_end;
	bool yield_turn;
};
void emu_sched_save(struct emu_vm *evm, struct emu_sched_image *img,
		    struct emu_sched_cpu_image *cpus /* [evm->nr_cpus] */);
void emu_sched_restore(struct emu_vm *evm, const struct emu_sched_image *img,
		       const struct emu_sched_cpu_image *cpus);
/* emu_snap_check.c, for tests: VMDB_SNAP_CHECK=N:W in the environment
 * takes a snapshot, restores it and compares two runs (see there). create
 * leaves evm->snap_check NULL without it. The point is called by the
 * token's holder when its quantum ended, before it hands the token on;
 * it returns the vCPU to hand it on from (after a restore: the one whose
 * quantum ended at the snapshot). */
void emu_snap_check_create(struct emu_vm *evm);
void emu_snap_check_destroy(struct emu_vm *evm);
unsigned emu_snap_check_point(struct emu_cpu *cpu);

/* --- register helpers ---------------------------------------------------- */

static inline uint64_t emu_mask(unsigned size)
{
	return size >= 8 ? ~0ull : (1ull << (size * 8)) - 1;
}

static inline uint64_t emu_sext(uint64_t v, unsigned size)
{
	unsigned s = 64 - size * 8;
	return size >= 8 ? v : (uint64_t)((int64_t)(v << s) >> s);
}

static inline uint64_t emu_gpr_get(struct emu_cpu *cpu, unsigned reg, unsigned size)
{
	return cpu->gpr[reg] & emu_mask(size);
}

/* 32-bit writes zero the upper half; 8/16-bit writes merge. */
static inline void emu_gpr_set(struct emu_cpu *cpu, unsigned reg, unsigned size, uint64_t v)
{
	if (size == 8)
		cpu->gpr[reg] = v;
	else if (size == 4)
		cpu->gpr[reg] = (uint32_t)v;
	else
		cpu->gpr[reg] = (cpu->gpr[reg] & ~emu_mask(size)) | (v & emu_mask(size));
}

static inline bool emu_long64(const struct emu_cpu *cpu)
{
	return cpu->core->mode == X86_MODE_LONG64;
}

/* Operand access (emu_exec.c). */
uint64_t emu_op_ea(struct emu_cpu *cpu, const struct emu_insn *in, const struct emu_operand *o);
uint64_t emu_op_lin(struct emu_cpu *cpu, const struct emu_insn *in, const struct emu_operand *o);
uint64_t emu_op_read(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i);
void emu_op_write(struct emu_cpu *cpu, const struct emu_insn *in, unsigned i, uint64_t v);
/* Stack (SS, stack-address size from SS.B / 64-bit mode). */
void emu_push(struct emu_cpu *cpu, unsigned size, uint64_t v);
uint64_t emu_pop(struct emu_cpu *cpu, unsigned size);
uint64_t emu_stack_mask(struct emu_cpu *cpu);
/* Write below *sp without committing RSP (for frames that must be whole). */
void emu_stack_put(struct emu_cpu *cpu, uint64_t *sp, unsigned size, uint64_t v, bool sys);
uint64_t emu_stack_get(struct emu_cpu *cpu, uint64_t *sp, unsigned size);
void emu_set_sp(struct emu_cpu *cpu, uint64_t sp);
/* Flags (emu_exec.c). */
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)
enum emu_flag_op { EMU_FL_ADD, EMU_FL_SUB, EMU_FL_LOGIC };
void emu_flags(struct emu_cpu *cpu, enum emu_flag_op op, uint64_t a, uint64_t b, uint64_t r,
	       unsigned size, unsigned carry_in);
void emu_flags_szp(struct emu_cpu *cpu, uint64_t r, unsigned size);
/* Condition cc (low nibble of Jcc/SETcc/CMOVcc) of the exact flags. */
bool emu_cond(const struct emu_cpu *cpu, unsigned cc);
/* Next RIP after a branch to target, truncated to the operand size. */
void emu_branch(struct emu_cpu *cpu, const struct emu_insn *in, uint64_t target);
/* Write RFLAGS as POPF/IRET do at the current CPL/IOPL (mask of bits that may change). */
void emu_set_rflags(struct emu_cpu *cpu, uint64_t value, uint64_t may_change);

/* How a mnemonic executes. Each emu_exec*.c file keeps the handlers of
 * its part in a table ending with { 0, NULL } and registers it with one
 * line, EMU_HANDLER_TABLE(its_table), which puts a pointer to it in a
 * linker section that emu_handler_for() searches: no central list to
 * edit. Only the handler is here: what else there is to know about a
 * mnemonic (plain for the fast path, the state it needs, its step kind)
 * is an architectural fact kept once in x86/insn.c's table
 * (x86_mnemonic()), which the fast path, emu_single and the step engine
 * read alike. A mnemonic has one handler in all tables. */
struct emu_handler_entry {
	uint16_t mnemonic;
	emu_handler fn;
};

#define EMU_HANDLER_TABLE(table)                                                 \
	static const struct emu_handler_entry *const table##_registered          \
		__attribute__((used, section("emu_handler_tables"), aligned(8))) = table

/* The handler of a mnemonic's MMX-register form (emu_exec_mmx.c): the
 * decoder picks it over emu_handler_for()'s when an operand is an MMX
 * register, so mnemonics shared with SSE (PADDB mm / PADDB xmm) keep one
 * handler each in the tables. emu_unimplemented when there is none. */
emu_handler emu_mmx_handler_for(unsigned mnemonic);

/* The SSE2 forms of the string mnemonics MOVSD/CMPSD (emu_exec_sse*.c). */
void emu_sse_movsd(struct emu_cpu *cpu, const struct emu_insn *in);
void emu_sse_cmpsd(struct emu_cpu *cpu, const struct emu_insn *in);

#endif
