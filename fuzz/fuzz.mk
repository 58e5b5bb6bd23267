# fuzz/fuzz.mk — libFuzzer targets, built with Debian's clang into
# build-fuzz/ (every object with ASan+UBSan and libFuzzer's coverage):
#   fuzz_gdbserver  packets and disconnects against the gdbserver over the
#                   scripted fake engine (tests/unit/fake_engine.h)
#   fuzz_loader     the kernel loaders on any bytes
#   fuzz_bus        port and MMIO sequences against every device, emu's
#                   LAPIC/IOAPIC/PIC/PIT included
#   fuzz_emu        emu on random instruction bytes, page tables and
#                   descriptors, ring 0 and ring 3
# `make fuzz` runs each for FUZZ_SECONDS or FUZZ_RUNS inputs, whichever
# ends first (corpora kept in FUZZ_CORPUS, findings in build-fuzz/findings,
# each run's log with libFuzzer's final stats in build-fuzz/logs);
# `make fuzz-emu` (fuzz-<target>) runs one. To fuzz another checkout's
# code (a branch's emu) with the corpus grown here:
#   make -C <checkout> fuzz-emu FUZZ_CORPUS=$PWD/build-fuzz/corpus FUZZ_RUNS=1000000
# `make fuzz-build` only builds (a message and nothing else where clang is
# missing); tests/test_fuzz.py runs each for a few seconds, with its
# regression inputs (fuzz/regress/<target>/).
# VMDB_FUZZ_DIGEST=1 makes fuzz_emu and fuzz_gdbserver print a digest of
# what each input did ("digest <input> <state>"), to check that an input
# does the same whatever ran before it (tests/test_fuzz.py checks both).
FUZZ_BUILD   := build-fuzz
FUZZ_CC      := clang
FUZZ_SECONDS ?= 600
FUZZ_RUNS    ?= -1
FUZZ_CORPUS  ?= $(FUZZ_BUILD)/corpus
FUZZ_NICE    ?= nice -n 19
FUZZ_TARGETS := gdbserver loader bus emu
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# kvm_regs.c's MSR buffers put a flexible struct first, a GNU extension clang names
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) -fsanitize=fuzzer-no-link \
	-Wno-gnu-variable-sized-type-not-at-end
FUZZ_HAVE_CC := $(shell command -v $(FUZZ_CC) 2>/dev/null)
# emu's core without comparison tracing: a third of fuzz_emu's time went to
# it, and random bytes find opcodes without its hints
$(FUZZ_BUILD)/engine/emu/%.o: FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp
# nor the fake engine's: it is the harness's machine, not code under test
# (its instruction loop was a tenth of fuzz_gdbserver's comparison tracing)
$(FUZZ_BUILD)/tests/unit/fake_engine.o: FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp
# nor the agent expressions' interpreter: a condition that loops runs its
# 100000 bytecodes at every hit, a tenth of fuzz_gdbserver's time, and the
# opcodes it compares against are bytes mutation finds unaided
$(FUZZ_BUILD)/debug/agent.o: FUZZ_CFLAGS += -fno-sanitize-coverage=trace-cmp

FUZZ_LIB_OBJS := $(patsubst %.c,$(FUZZ_BUILD)/%.o,$(filter-out cli/%,$(SRCS)) \
	fuzz/fuzz_machine.c)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_OBJS_gdbserver := $(FUZZ_BUILD)/tests/unit/fake_engine.o
.SECONDARY: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/fuzz_%.o)   # kept: no rebuild next time

$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(WARN) $(FUZZ_CFLAGS) -c -o $@ $<

.SECONDEXPANSION:
$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/fuzz/fuzz_%.o $(FUZZ_LIB_OBJS) $$(FUZZ_OBJS_$$*)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Seeds made from our own guests by the build (never committed binaries):
# the loader gets the kernels (stripped), emu the first 4 KiB of guests'
# code behind a header (fuzz_emu.c) for long mode in ring 0 and ring 3.
FUZZ_SEEDS := $(FUZZ_BUILD)/seeds
FUZZ_EMU_SEED_GUESTS := cpu_model dbg_step x87_calc smp
# A debugging session for fuzz_gdbserver (its encoding): an int3 and an OUT
# in the program; qSupported, ?, Z0, c, a wait, g, vCont;s, c, Ctrl-C, a
# hang-up, ?, k. Setup 6: --wait-gdb, two vCPUs; setup 3: one, lent.
FUZZ_GDB_SESSION := \002\040\101\000\042\000\000\000\025\050\000\010\010\000\001\000\020\002\010\000\010\007\010\011\000\000\000\060
.PHONY: fuzz-build fuzz fuzz-seeds $(FUZZ_TARGETS:%=fuzz-%)
fuzz-seeds: guests
	@mkdir -p $(FUZZ_SEEDS)/loader $(FUZZ_SEEDS)/emu $(FUZZ_SEEDS)/gdbserver
	@printf '\006$(FUZZ_GDB_SESSION)' > $(FUZZ_SEEDS)/gdbserver/session-smp
	@printf '\003$(FUZZ_GDB_SESSION)' > $(FUZZ_SEEDS)/gdbserver/session-lent
	@for g in exit.elf multiboot.elf linux_bzimage.bin linux_pvh.elf; do \
		strip -o $(FUZZ_SEEDS)/loader/$$g build/guests/$$g 2>/dev/null || \
		cp build/guests/$$g $(FUZZ_SEEDS)/loader/$$g; done
	@for g in $(FUZZ_EMU_SEED_GUESTS); do \
		objcopy -O binary -j .text build/guests/$$g.elf $(FUZZ_SEEDS)/emu/$$g.text && \
		for m in 4 5; do { printf "\\$$m\\020\\005\\000\\000"; head -c 233 /dev/zero; \
			head -c 4096 $(FUZZ_SEEDS)/emu/$$g.text; } > $(FUZZ_SEEDS)/emu/$$g-$$m; \
		done; rm -f $(FUZZ_SEEDS)/emu/$$g.text; done

ifeq ($(FUZZ_HAVE_CC),)
fuzz-build fuzz $(FUZZ_TARGETS:%=fuzz-%):
	@echo "vmdb: no $(FUZZ_CC): the fuzzers are not built (scripts/deps.sh test installs it)"
else
fuzz-build: $(FUZZ_BINS) fuzz-seeds

# One target at a time: each is given the machine's cores' worth of time.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-$$t || exit 1; done

$(FUZZ_TARGETS:%=fuzz-%): fuzz-%: fuzz-build
	@mkdir -p $(FUZZ_CORPUS)/$* $(FUZZ_BUILD)/findings/$* $(FUZZ_BUILD)/logs
	@echo "vmdb: fuzz_$* for $(FUZZ_SECONDS) s or $(FUZZ_RUNS) inputs (log: $(FUZZ_BUILD)/logs/$*.log)"
	@$(FUZZ_NICE) $(FUZZ_BUILD)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) \
		-timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
		-max_len=$$(test $* = loader && echo 65536 || echo 4096) \
		-artifact_prefix=$(FUZZ_BUILD)/findings/$*/ \
		$(FUZZ_CORPUS)/$* $$(ls -d fuzz/regress/$* $(FUZZ_SEEDS)/$* 2>/dev/null) \
		> $(FUZZ_BUILD)/logs/$*.log 2>&1 || { tail -n 60 $(FUZZ_BUILD)/logs/$*.log; exit 1; }
	@grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
		$(FUZZ_BUILD)/logs/$*.log
endif

# the harnesses' own objects too: one built against an older emu.h reads
# struct emu_cpu at the old offsets
-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz/fuzz_%.d) \
	$(FUZZ_OBJS_gdbserver:.o=.d)
