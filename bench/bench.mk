# bench/bench.mk — benchmark tools, included from
# the root Makefile. bench/rsp runs build/bench/kvm_step_ceiling (always
# built into build/, like the guests: a sanitizer build would only slow the
# ceiling it exists to measure).
#
#   make bench-tools   builds build/bench/kvm_step_ceiling and
#                      build/bench/rsp_pump (bench/rsp's round-trip loop in C)
#   make bench-rsp     builds vmdb, the guests and the tools, runs bench/rsp

BENCH_OUT     := build/bench
BENCH_CEILING := $(BENCH_OUT)/kvm_step_ceiling
BENCH_PUMP    := $(BENCH_OUT)/rsp_pump
BENCH_TOOLS   := $(BENCH_CEILING) $(BENCH_PUMP)

.PHONY: bench-tools bench-rsp
bench-tools: $(BENCH_TOOLS)

$(BENCH_OUT)/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -Wshadow -O2 -g -D_GNU_SOURCE -o $@ $<

bench-rsp: $(BENCH_TOOLS)
	@$(MAKE) --no-print-directory SAN=0 all
	bench/rsp

# bench/watch: what watchpoints cost (page traps on kvm, emu's access check)
.PHONY: bench-watch
bench-watch:
	@$(MAKE) --no-print-directory SAN=0 all
	bench/watch

# bench/snapshot: whole-machine snapshots during a Linux boot on emu (size,
# take and restore times, what they cost the boot). Needs linux-assets.
.PHONY: bench-snapshot
bench-snapshot:
	@$(MAKE) --no-print-directory SAN=0 all
	bench/snapshot

# bench/emu runs the bench
# guests on emu, kvm, QEMU TCG and Bochs (build/guests/boot_bench.img, built
# from guests/boot_bench.S + guests/boot_main.c by guests.mk) and checks their
# checksums against build/bench/emu_ref (the same loops run natively).
BENCH_EMU_REF := $(BENCH_OUT)/emu_ref
bench-tools: $(BENCH_EMU_REF)

$(BENCH_EMU_REF): bench/emu_ref.c guests/bench_loops.S guests/bench_loops.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Wall -Wextra -Werror -Wshadow -O2 -g -D_GNU_SOURCE -I. -o $@ \
		bench/emu_ref.c guests/bench_loops.S

.PHONY: bench-emu
bench-emu: $(BENCH_EMU_REF)
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory SAN=0 all
	bench/emu

# bench/kvm_step_leak: what leaks into a guest (PUSHF images, exception
# frames, interrupts, ...) while this host's KVM single-steps it in ring 0,
# the things debug/step.c must correct. A measurement, not a test; it links
# the KVM engine, so it is built with the unit tests (an engine change that
# breaks it shows at once). `make step-leak` builds and runs it.
STEP_LEAK := $(BUILD)/bench/kvm_step_leak
$(STEP_LEAK): $(patsubst %.c,$(BUILD)/%.o,bench/kvm_step_leak.c engine/engine.c \
	$(wildcard engine/kvm/*.c) x86/paging.c x86/x86.c util/err.c)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
unit: $(STEP_LEAK)
.PHONY: step-leak
step-leak: $(STEP_LEAK)
	$(STEP_LEAK)
-include $(BUILD)/bench/kvm_step_leak.d

# bench/cond: a breakpoint with a false condition on a hot path, evaluated
# by vmdb (target) or by gdb (host), and QEMU's gdbstub (host only)
.PHONY: bench-cond
bench-cond:
	@$(MAKE) --no-print-directory SAN=0 all build/guests/mb/gdb_target.elf \
		build/guests/mb/gdb_target.elf64
	bench/cond

# bench/reverse: record and replay on emu against QEMU's record/replay
# (recording overhead, reverse-stepi at 10^6..10^9 instructions of history,
# reverse-continue 10^8 back; QEMU=0 skips QEMU)
.PHONY: bench-reverse
bench-reverse:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory SAN=0 all
	bench/reverse
