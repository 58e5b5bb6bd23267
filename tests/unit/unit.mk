# tests/unit/unit.mk — C unit tests of rsp/ and debug/ (owned by their modules).
.PHONY: unit
unit:

# rsp (owned by rsp/): $(BUILD)/tests/rsp_test; `make unit-rsp` builds and runs it.
RSP_TEST_OBJS := $(BUILD)/tests/unit/rsp_test.o $(BUILD)/rsp/rsp.o $(BUILD)/rsp/rsp_args.o \
	$(BUILD)/util/err.o
unit: $(BUILD)/tests/rsp_test
$(BUILD)/tests/rsp_test: $(RSP_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: unit-rsp
unit-rsp: $(BUILD)/tests/rsp_test
	$(BUILD)/tests/rsp_test
-include $(RSP_TEST_OBJS:.o=.d)
# libFuzzer target, never part of `unit`: `make fuzz-rsp [FUZZ_SECONDS=60]` (needs clang).
FUZZ_SECONDS ?= 60
.PHONY: fuzz-rsp
fuzz-rsp:
	@mkdir -p $(BUILD)/tests/rsp_fuzz_corpus
	clang -I. -D_GNU_SOURCE $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
		-o $(BUILD)/tests/rsp_fuzz tests/unit/rsp_fuzz.c rsp/rsp.c rsp/rsp_args.c util/err.c
	$(BUILD)/tests/rsp_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(BUILD)/tests/rsp_fuzz_corpus

# kvm engine (owned by engine/kvm/): $(BUILD)/tests/kvm_selftest runs on the
# host's /dev/kvm (exit 77 = skipped); `make unit-kvm` builds and runs it.
KVM_TEST_OBJS := $(BUILD)/tests/unit/kvm_selftest.o $(BUILD)/engine/engine.o \
	$(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/kvm/*.c)) $(BUILD)/x86/paging.o \
	$(BUILD)/x86/x86.o $(BUILD)/util/err.o
unit: $(BUILD)/tests/kvm_selftest
$(BUILD)/tests/kvm_selftest: $(KVM_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
.PHONY: unit-kvm
unit-kvm: $(BUILD)/tests/kvm_selftest
	$(BUILD)/tests/kvm_selftest
-include $(KVM_TEST_OBJS:.o=.d)

# machine (owned by machine/): $(BUILD)/tests/machine_test; `make unit-machine` runs it.
# machine/vm.c is not linked: the test provides a fake machine.
MACHINE_TEST_OBJS := $(BUILD)/tests/unit/machine_test.o $(BUILD)/util/err.o \
	$(patsubst %.c,$(BUILD)/%.o,machine/bus.c machine/device.c machine/acpi.c \
	machine/loader.c machine/serial_out.c $(wildcard machine/load_*.c) \
	$(wildcard machine/dev_*.c))
unit: $(BUILD)/tests/machine_test
$(BUILD)/tests/machine_test: $(MACHINE_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
.PHONY: unit-machine
unit-machine: $(BUILD)/tests/machine_test
	$(BUILD)/tests/machine_test
-include $(MACHINE_TEST_OBJS:.o=.d)

# debug core (owned by debug/): $(BUILD)/tests/debug_test with a scripted fake
# engine; machine/vm.c is not linked (the test provides vm_gpa_to_host).
DEBUG_TEST_OBJS := $(BUILD)/tests/unit/debug_test.o $(BUILD)/tests/unit/fake_engine.o \
	$(patsubst %.c,$(BUILD)/%.o,$(wildcard debug/*.c)) $(BUILD)/x86/paging.o \
	$(BUILD)/x86/x86.o $(BUILD)/x86/insn.o $(BUILD)/x86/decode.o $(BUILD)/x86/desc.o \
	$(BUILD)/util/err.o
unit: $(BUILD)/tests/debug_test
$(BUILD)/tests/debug_test: $(DEBUG_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lZydis -lpthread
.PHONY: unit-debug
unit-debug: $(BUILD)/tests/debug_test
	$(BUILD)/tests/debug_test
-include $(DEBUG_TEST_OBJS:.o=.d)

# $(BUILD)/tests/kvm_step_leak
# measures what leaks into a guest while the host single-steps it on this
# host's /dev/kvm; not a pass/fail test (its name does not end in "test",
# so tests/test_unit.py does not run it). `make step-leak` builds and runs it.
STEP_LEAK_OBJS := $(BUILD)/tests/unit/kvm_step_leak.o $(BUILD)/engine/engine.o \
	$(patsubst %.c,$(BUILD)/%.o,$(wildcard engine/kvm/*.c)) $(BUILD)/x86/paging.o \
	$(BUILD)/x86/x86.o $(BUILD)/util/err.o
unit: $(BUILD)/tests/kvm_step_leak
$(BUILD)/tests/kvm_step_leak: $(STEP_LEAK_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
.PHONY: step-leak
step-leak: $(BUILD)/tests/kvm_step_leak
	$(BUILD)/tests/kvm_step_leak
-include $(STEP_LEAK_OBJS:.o=.d)

# emu debug architecture (owned by engine/emu/emu_debug.c): $(BUILD)/tests/emu_debug_test,
# emu_debug.c alone with a fake emu_raise(); `make unit-emu-debug` runs it.
EMU_DEBUG_TEST_OBJS := $(BUILD)/tests/unit/emu_debug_test.o $(BUILD)/engine/emu/emu_debug.o
unit: $(BUILD)/tests/emu_debug_test
$(BUILD)/tests/emu_debug_test: $(EMU_DEBUG_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: unit-emu-debug
unit-emu-debug: $(BUILD)/tests/emu_debug_test
	$(BUILD)/tests/emu_debug_test
-include $(EMU_DEBUG_TEST_OBJS:.o=.d)

# emu engine devices (owned by emu-platform): $(BUILD)/tests/emu_platform_test runs the
# LAPIC/IOAPIC/PIC/PIT/time code against a fake CPU; `make unit-emu-platform` runs it.
EMU_PLATFORM_TEST_OBJS := $(BUILD)/tests/unit/emu_platform_test.o \
	$(patsubst %.c,$(BUILD)/%.o,engine/emu/emu_platform.c engine/emu/emu_lapic.c \
	engine/emu/emu_ioapic.c engine/emu/emu_pic.c engine/emu/emu_pit.c engine/emu/emu_time.c)
unit: $(BUILD)/tests/emu_platform_test
$(BUILD)/tests/emu_platform_test: $(EMU_PLATFORM_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
.PHONY: unit-emu-platform
unit-emu-platform: $(BUILD)/tests/emu_platform_test
	$(BUILD)/tests/emu_platform_test
-include $(EMU_PLATFORM_TEST_OBJS:.o=.d)

# x86 descriptors (owned by x86/): $(BUILD)/tests/x86_desc_test decodes IDT gates;
# `make unit-x86-desc` runs it.
X86_DESC_TEST_OBJS := $(BUILD)/tests/unit/x86_desc_test.o $(BUILD)/x86/desc.o
unit: $(BUILD)/tests/x86_desc_test
$(BUILD)/tests/x86_desc_test: $(X86_DESC_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: unit-x86-desc
unit-x86-desc: $(BUILD)/tests/x86_desc_test
	$(BUILD)/tests/x86_desc_test
-include $(X86_DESC_TEST_OBJS:.o=.d)

# segment loads for a debugger's selector writes (x86/seg_load.c):
# $(BUILD)/tests/x86_seg_load_test; `make unit-x86-seg-load` runs it.
X86_SEG_LOAD_TEST_OBJS := $(BUILD)/tests/unit/x86_seg_load_test.o $(BUILD)/x86/seg_load.o \
	$(BUILD)/x86/desc.o $(BUILD)/util/err.o
unit: $(BUILD)/tests/x86_seg_load_test
$(BUILD)/tests/x86_seg_load_test: $(X86_SEG_LOAD_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: unit-x86-seg-load
unit-x86-seg-load: $(BUILD)/tests/x86_seg_load_test
	$(BUILD)/tests/x86_seg_load_test
-include $(X86_SEG_LOAD_TEST_OBJS:.o=.d)

# emu's CPUID model (owned by the emu CPU-model work): emu_cpuid.c alone with a
# fake vCPU count; `make unit-emu-cpuid` runs it.
EMU_CPUID_TEST_OBJS := $(BUILD)/tests/unit/emu_cpuid_test.o $(BUILD)/engine/emu/emu_cpuid.o
unit: $(BUILD)/tests/emu_cpuid_test
$(BUILD)/tests/emu_cpuid_test: $(EMU_CPUID_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^
.PHONY: unit-emu-cpuid
unit-emu-cpuid: $(BUILD)/tests/emu_cpuid_test
	$(BUILD)/tests/emu_cpuid_test
-include $(EMU_CPUID_TEST_OBJS:.o=.d)
