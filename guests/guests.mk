# guests/guests.mk — freestanding test guests.
# Always built into build/guests/, whatever BUILD/SAN say: the guests do not
# change with the host sanitizer build.
#
#   build/guests/<name>.elf      ELF64, vmdb's direct entry (machine/bootinfo.h),
#                                linked at 1 MiB
#   build/guests/multiboot.elf   Multiboot v1 (ELF32 from objcopy), at 4 MiB;
#                                multiboot.elf64 is the same link with symbols
#                                gdb reads as x86-64
#   build/guests/mb/<name>.elf   every ELF64 test also as multiboot, so it can
#                                be run under QEMU -kernel (mb/<name>.elf64 for gdb)

GUEST_OUT    := build/guests
GUEST_CC     := gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wshadow \
	-ffreestanding -fno-pic -fno-pie -mno-red-zone -mcmodel=kernel \
	-mgeneral-regs-only -fno-stack-protector -fno-omit-frame-pointer \
	-fno-asynchronous-unwind-tables -fno-delete-null-pointer-checks \
	-fcf-protection=none -I. -MMD -MP
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
	-Wl,-T,guests/rt/link.ld

GUEST_RT_SRCS := $(filter-out guests/rt/entry64.S guests/rt/entry_mb.S, \
	$(wildcard guests/rt/*.c guests/rt/*.S))
GUEST_RT_OBJS := $(patsubst guests/%,$(GUEST_OUT)/%.o,$(basename $(GUEST_RT_SRCS)))
GUEST_E64_OBJ := $(GUEST_OUT)/rt/entry64.o
GUEST_MB_OBJ  := $(GUEST_OUT)/rt/entry_mb.o

# Tests for the direct ELF64 entry; all but entry64 are also built for multiboot.
GUEST_E64 := demo entry64 exit triple emufail smp timer smc platform nonstop snap_work
GUEST_MB  := $(filter-out entry64,$(GUEST_E64))

GUEST_ELFS := $(GUEST_E64:%=$(GUEST_OUT)/%.elf) \
	$(GUEST_OUT)/multiboot.elf $(GUEST_OUT)/multiboot.elf64 \
	$(GUEST_MB:%=$(GUEST_OUT)/mb/%.elf) $(GUEST_MB:%=$(GUEST_OUT)/mb/%.elf64)

guests: $(GUEST_ELFS)

$(GUEST_OUT)/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/%.o: guests/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_OUT)/%.elf: $(GUEST_E64_OBJ) $(GUEST_RT_OBJS) $(GUEST_OUT)/%.o guests/rt/link.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -Wl,--defsym=RT_LOAD_ADDR=0x100000 -Wl,-e,_start \
		-o $@ $(filter %.o,$^)

# Multiboot: link as ELF64 at 4 MiB, then objcopy to ELF32 for the loader.
$(GUEST_OUT)/multiboot.elf64: $(GUEST_MB_OBJ) $(GUEST_RT_OBJS) $(GUEST_OUT)/multiboot.o guests/rt/link.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -Wl,--defsym=RT_LOAD_ADDR=0x400000 -Wl,-e,rt_mb_entry \
		-o $@ $(filter %.o,$^)

$(GUEST_OUT)/mb/%.elf64: $(GUEST_MB_OBJ) $(GUEST_RT_OBJS) $(GUEST_OUT)/%.o guests/rt/link.ld
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_LDFLAGS) -Wl,--defsym=RT_LOAD_ADDR=0x400000 -Wl,-e,rt_mb_entry \
		-o $@ $(filter %.o,$^)

$(GUEST_OUT)/multiboot.elf: $(GUEST_OUT)/multiboot.elf64
	objcopy -O elf32-i386 $< $@

$(GUEST_OUT)/mb/%.elf: $(GUEST_OUT)/mb/%.elf64
	objcopy -O elf32-i386 $< $@

.SECONDARY: $(GUEST_RT_OBJS) $(GUEST_E64_OBJ) $(GUEST_MB_OBJ) \
	$(GUEST_E64:%=$(GUEST_OUT)/%.o) $(GUEST_OUT)/multiboot.o

-include $(wildcard $(GUEST_OUT)/*.d $(GUEST_OUT)/rt/*.d)

# gdb stub tests (tests/test_gdb_*.py): scenarios with labels gdb can name.
guests: $(GUEST_OUT)/gdb_target.elf
.SECONDARY: $(GUEST_OUT)/gdb_target.o

# watchpoints of every size and shape, page traps on kvm (tests/test_watch_pages.py)
# and bench/watch's blocks of work between stops
guests: $(GUEST_OUT)/watch_pages.elf $(GUEST_OUT)/watch_bench.elf
.SECONDARY: $(GUEST_OUT)/watch_pages.o $(GUEST_OUT)/watch_bench.o
# one physical page under several linear addresses, for physical
# watchpoints (tests/test_phys_watch.py)
guests: $(GUEST_OUT)/phys_watch.elf
.SECONDARY: $(GUEST_OUT)/phys_watch.o

# more mappings than an ELF header counts, for core dumps by virtual
# address (tests/test_coredump.py)
guests: $(GUEST_OUT)/many_maps.elf
.SECONDARY: $(GUEST_OUT)/many_maps.o

# the debug core under pressure (tests/test_debug_hardening.py): steps of a
# halted vCPU, breakpoints where virtual != physical, an INIT sent to a
# parked vCPU
guests: $(GUEST_OUT)/idle.elf $(GUEST_OUT)/highhalf.elf $(GUEST_OUT)/initipi.elf
.SECONDARY: $(GUEST_OUT)/idle.o $(GUEST_OUT)/highhalf.o $(GUEST_OUT)/initipi.o

# a sleeping guest under a timer faster than the host (tests/test_hardening.py)
# and timers at the ends of their arithmetic
guests: $(GUEST_OUT)/timer_storm.elf $(GUEST_OUT)/timer_edge.elf
.SECONDARY: $(GUEST_OUT)/timer_storm.o $(GUEST_OUT)/timer_edge.o
# interrupts between instructions of a block see exact flags (tests/test_emu_budget.py)
guests: $(GUEST_OUT)/timer_flags.elf
.SECONDARY: $(GUEST_OUT)/timer_flags.o
# interrupts at a translated loop's head see the flags of its CMP, whose
# record the translation writes only on its ways out (tests/test_emu_jit.py)
guests: $(GUEST_OUT)/jit_flags.elf
.SECONDARY: $(GUEST_OUT)/jit_flags.o
# interrupts pending at STI come after the instruction in its shadow
# (tests/test_sti_shadow.py)
guests: $(GUEST_OUT)/sti_shadow.elf
.SECONDARY: $(GUEST_OUT)/sti_shadow.o
# TLB misses of loads and stores: accessed/dirty bits and page faults
# (tests/test_tlb_fill.py)
guests: $(GUEST_OUT)/tlb_fill.elf
.SECONDARY: $(GUEST_OUT)/tlb_fill.o
# loops whose pages a translation keeps see the page tables as they are
# (tests/test_emu_jit.py)
guests: $(GUEST_OUT)/page_slots.elf
.SECONDARY: $(GUEST_OUT)/page_slots.o

# Guest-invisible stepping: guests that
# record what they observe; tests/test_step.py compares their transcripts
# with and without gdb stepping through them.
STEP_GUESTS := step_pushf step_tf step_ticks step_remap step_exact
guests: $(STEP_GUESTS:%=$(GUEST_OUT)/%.elf)
.SECONDARY: $(STEP_GUESTS:%=$(GUEST_OUT)/%.o)

# debug architecture from inside the guest (what engine/emu/emu_debug.c
# implements): tests/test_emu_debug.py runs them on emu, and the subset this
# host's KVM can do on kvm.
guests: $(GUEST_OUT)/dbg_regs.elf $(GUEST_OUT)/dbg_step.elf
.SECONDARY: $(GUEST_OUT)/dbg_regs.o $(GUEST_OUT)/dbg_step.o
# The SDM's debug rules around MOV SS and SYSCALL/SYSRET, plain and
# stepped by gdb (tests/test_sdm_debug.py).
guests: $(GUEST_OUT)/sdm_debug.elf
.SECONDARY: $(GUEST_OUT)/sdm_debug.o
# The guest's own DR0-3 while gdb holds hardware breakpoints too
# (tests/test_dr_share.py).
guests: $(GUEST_OUT)/dr_share.elf
.SECONDARY: $(GUEST_OUT)/dr_share.o

# Ring-0 instructions this
# host's KVM cannot emulate, checked from inside (tests/test_kvm_fallback.py).
guests: $(GUEST_OUT)/kvm_fallback.elf
.SECONDARY: $(GUEST_OUT)/kvm_fallback.o
# KVM's paravirtual clock told of a debugger's pause (tests/test_kvmclock.py)
guests: $(GUEST_OUT)/kvmclock.elf
.SECONDARY: $(GUEST_OUT)/kvmclock.o
# Linux's system call entry from a ring-3 task: SWAPGS, %gs, PTI's CR3
# switch, SYSRETQ and IRETQ (tests/test_syscall_entry.py).
guests: $(GUEST_OUT)/syscall_entry.elf
.SECONDARY: $(GUEST_OUT)/syscall_entry.o
# two CPUs meet as stop_machine() and smp_call_function() make them, each
# interrupt entry with Linux's CLAC (tests/test_smp_rendezvous.py)
guests: $(GUEST_OUT)/smp_rendezvous.elf
.SECONDARY: $(GUEST_OUT)/smp_rendezvous.o
# an instruction rewritten while the fallback runs it (tests/test_hostile_guest.py)
guests: $(GUEST_OUT)/code_race.elf
.SECONDARY: $(GUEST_OUT)/code_race.o
# accesses to nothing, as hardware does them (tests/test_hostile_guest.py)
guests: $(GUEST_OUT)/hw_like.elf
.SECONDARY: $(GUEST_OUT)/hw_like.o

# differential tests emu vs kvm (tests/test_differential.py): runs the
# instruction sequences of tests/diffgen.py from its --initrd blob.
guests: $(GUEST_OUT)/diff_runner.elf
.SECONDARY: $(GUEST_OUT)/diff_runner.o

# The emu benchmark:
# bench_compute / bench_memory run the loops of guests/bench_loops.S an
# exact number of times (bench/emu, tests/test_bench_guests.py).
BENCH_GUESTS := bench_compute bench_memory
guests: $(BENCH_GUESTS:%=$(GUEST_OUT)/%.elf) $(BENCH_GUESTS:%=$(GUEST_OUT)/mb/%.elf) \
	$(BENCH_GUESTS:%=$(GUEST_OUT)/mb/%.elf64)
$(BENCH_GUESTS:%=$(GUEST_OUT)/%.elf) $(BENCH_GUESTS:%=$(GUEST_OUT)/mb/%.elf64): \
	$(GUEST_OUT)/bench_loops.o
.SECONDARY: $(BENCH_GUESTS:%=$(GUEST_OUT)/%.o) $(GUEST_OUT)/bench_loops.o

# The same loops as a raw disk image for Bochs (no ELF/multiboot loader
# there): boot_bench.S boot sector + long-mode switch, boot_main.c, flat
# binary padded to a whole number of 16-head, 63-sector cylinders.
BOOT_BENCH_OBJS := $(GUEST_OUT)/boot_bench.o $(GUEST_OUT)/boot_main.o $(GUEST_OUT)/bench_loops.o
BOOT_BENCH_CYL_BYTES := 516096
guests: $(GUEST_OUT)/boot_bench.img
$(GUEST_OUT)/boot_bench.elf64: $(BOOT_BENCH_OBJS) guests/boot_bench.ld
	$(GUEST_CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
		-Wl,--no-warn-rwx-segments -Wl,-T,guests/boot_bench.ld -o $@ $(filter %.o,$^)
$(GUEST_OUT)/boot_bench.img: $(GUEST_OUT)/boot_bench.elf64
	objcopy -O binary $< $@.tmp
	truncate -s $(BOOT_BENCH_CYL_BYTES) $@.tmp
	mv $@.tmp $@
.SECONDARY: $(BOOT_BENCH_OBJS)

# The CPU model from the inside (emu_cpuid.c and what it advertises): every
# advertised CPUID bit exercised, SYSCALL/SYSRET, PCID/global pages,
# NX/SMEP/SMAP/UMIP, MSRs, x2APIC TSC deadline (tests/test_emu_linux_cpu.py).
guests: $(GUEST_OUT)/cpu_model.elf
.SECONDARY: $(GUEST_OUT)/cpu_model.o

# Linux's direct boot protocols (machine/load_*.c; tests/
# test_linux_loader.py): linux_bzimage.bin is a bzImage (setup header +
# 64-bit payload, guests/linux.ld; linux_bzimage.elf64 has its symbols),
# linux_pvh.elf an ELF64 with the PVH note. Both at 16 MiB.
LINUX_GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,--build-id=none \
	-Wl,-z,max-page-size=0x1000 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments \
	-Wl,-T,guests/linux.ld -Wl,--defsym=RT_LOAD_ADDR=0x1000000
guests: $(GUEST_OUT)/linux_bzimage.bin $(GUEST_OUT)/linux_pvh.elf
$(GUEST_OUT)/linux_bzimage.elf64: $(GUEST_OUT)/linux_bzimage_hdr.o $(GUEST_E64_OBJ) \
		$(GUEST_RT_OBJS) $(GUEST_OUT)/linux_guest.o $(GUEST_OUT)/linux_bzimage.o guests/linux.ld
	$(GUEST_CC) $(LINUX_GUEST_LDFLAGS) -Wl,-e,linux_entry64 -o $@ $(filter %.o,$^)
$(GUEST_OUT)/linux_bzimage.bin: $(GUEST_OUT)/linux_bzimage.elf64
	objcopy -O binary $< $@
$(GUEST_OUT)/linux_pvh.elf: $(GUEST_MB_OBJ) $(GUEST_RT_OBJS) $(GUEST_OUT)/linux_guest.o \
		$(GUEST_OUT)/linux_pvh.o guests/linux.ld
	$(GUEST_CC) $(LINUX_GUEST_LDFLAGS) -Wl,-e,rt_mb_entry -o $@ $(filter %.o,$^)
.SECONDARY: $(GUEST_OUT)/linux_bzimage_hdr.o $(GUEST_OUT)/linux_guest.o \
	$(GUEST_OUT)/linux_bzimage.o $(GUEST_OUT)/linux_pvh.o

# x87 arithmetic checked from inside (tests/test_x87.py): ring 0, on emu, and
# on kvm through its emu fallback.
guests: $(GUEST_OUT)/x87_calc.elf
.SECONDARY: $(GUEST_OUT)/x87_calc.o

# The MMX registers' aliasing of the x87 state, checked from inside
# (tests/test_mmx.py).
guests: $(GUEST_OUT)/mmx_alias.elf
.SECONDARY: $(GUEST_OUT)/mmx_alias.o

# reverse execution: timers, port I/O, serial input, a stray write
# (tests/test_reverse.py, bench/reverse)
guests: $(GUEST_OUT)/rr.elf $(GUEST_OUT)/mb/rr.elf $(GUEST_OUT)/mb/rr.elf64
.SECONDARY: $(GUEST_OUT)/rr.o

# real mode from a multiboot entry (realmode_switch.S) with gdb's i8086 view
# (tests/test_gdb_realmode.py); realmode.elf64 has the same symbols for gdb
guests: $(GUEST_OUT)/realmode.elf
$(GUEST_OUT)/realmode.elf64: $(GUEST_MB_OBJ) $(GUEST_RT_OBJS) $(GUEST_OUT)/realmode_switch.o \
		$(GUEST_OUT)/realmode.o guests/rt/link.ld
	$(GUEST_CC) $(GUEST_LDFLAGS) -Wl,--defsym=RT_LOAD_ADDR=0x400000 -Wl,-e,rm_mb_entry \
		-o $@ $(filter %.o,$^)
$(GUEST_OUT)/realmode.elf: $(GUEST_OUT)/realmode.elf64
	objcopy -O elf32-i386 $< $@
.SECONDARY: $(GUEST_OUT)/realmode_switch.o $(GUEST_OUT)/realmode.o
