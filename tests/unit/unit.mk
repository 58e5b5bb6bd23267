# tests/unit/unit.mk — the C unit tests. Each is $(BUILD)/tests/NAME, linked by
# the one rule below from tests/unit/NAME.c and the objects under test listed
# for it (a name ending in "test": tests/test_unit.py runs every such binary;
# exit 77 means skipped). `make unit` builds them all, `make unit-NAME` builds
# and runs one (`make unit-debug_test`).
UNIT_TESTS := rsp_test kvm_selftest kvm_msr_test machine_test debug_test emu_debug_test \
	emu_platform_test x86_desc_test x86_seg_load_test x86_paging_test emu_cpuid_test \
	agent_test snapshot_test emu_single_exact_test

.PHONY: unit
unit: $(UNIT_TESTS:%=$(BUILD)/tests/%)

$(BUILD)/tests/%test: $(BUILD)/tests/unit/%test.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit-%: $(BUILD)/tests/%
	$<

-include $(UNIT_TESTS:%=$(BUILD)/tests/unit/%.d) $(BUILD)/tests/unit/fake_engine.d

# The objects under test, by owner.
# rsp/: framing and argument parsing.
$(BUILD)/tests/rsp_test: $(addprefix $(BUILD)/,rsp/rsp.o rsp/rsp_args.o util/err.o)

# engine/kvm/: runs on the host's /dev/kvm (skipped without one).
$(BUILD)/tests/kvm_selftest: $(patsubst %.c,$(BUILD)/%.o,engine/engine.c \
	$(wildcard engine/kvm/*.c) x86/paging.c x86/x86.c util/err.c)

# engine/kvm/'s MSR catch filter, without /dev/kvm (the same objects).
$(BUILD)/tests/kvm_msr_test: $(patsubst %.c,$(BUILD)/%.o,engine/engine.c \
	$(wildcard engine/kvm/*.c) x86/paging.c x86/x86.c util/err.c)

# machine/: buses, devices, ACPI and loaders; the test provides a fake machine
# (machine/vm.c is not linked).
$(BUILD)/tests/machine_test: $(patsubst %.c,$(BUILD)/%.o,util/err.c machine/bus.c \
	machine/device.c machine/acpi.c machine/loader.c machine/serial_out.c machine/linux_cmdline.c \
	machine/output_watch.c \
	$(wildcard machine/load_*.c) $(wildcard machine/dev_*.c))

# debug/: with a scripted fake engine; the test provides vm_gpa_to_host.
$(BUILD)/tests/debug_test: $(patsubst %.c,$(BUILD)/%.o,tests/unit/fake_engine.c \
	$(wildcard debug/*.c) engine/engine.c x86/paging.c machine/output_watch.c \
	x86/x86.c x86/insn.c x86/decode.c x86/desc.c util/err.c)

# machine/snapshot.c's store on a fake machine and engine.
$(BUILD)/tests/snapshot_test: $(addprefix $(BUILD)/,machine/snapshot.o util/err.o)

# debug/agent.c alone: agent expressions on hand-assembled bytecode.
$(BUILD)/tests/agent_test: $(addprefix $(BUILD)/,debug/agent.o debug/agent_printf.o util/err.o)

# engine/emu/emu_debug.c alone, with a fake emu_raise().
$(BUILD)/tests/emu_debug_test: $(BUILD)/engine/emu/emu_debug.o

# engine/emu/'s LAPIC, IOAPIC, PIC, PIT and time against a fake CPU.
$(BUILD)/tests/emu_platform_test: $(patsubst %.c,$(BUILD)/%.o,engine/emu/emu_platform.c \
	engine/emu/emu_lapic.c engine/emu/emu_ioapic.c engine/emu/emu_pic.c \
	engine/emu/emu_pit.c engine/emu/emu_time.c)

# x86/: IDT gate decoding; segment loads for a debugger's selector writes.
$(BUILD)/tests/x86_desc_test: $(BUILD)/x86/desc.o
$(BUILD)/tests/x86_seg_load_test: $(addprefix $(BUILD)/,x86/seg_load.o x86/desc.o util/err.o)
# x86/: page-table enumeration over hand-built tables.
$(BUILD)/tests/x86_paging_test: $(BUILD)/x86/paging.o

# engine/emu/emu_single.c's judgment of exact instructions: vmdb's objects
# but its main (emu's core needs the machine for its memory).
$(BUILD)/tests/emu_single_exact_test: $(filter-out $(BUILD)/cli/%,$(OBJS))

# engine/emu/'s CPUID model alone, with a fake vCPU count.
$(BUILD)/tests/emu_cpuid_test: $(BUILD)/engine/emu/emu_cpuid.o

# libFuzzer target, never part of `unit`: `make fuzz-rsp [FUZZ_SECONDS=60]` (needs clang).
FUZZ_SECONDS ?= 60
.PHONY: fuzz-rsp
fuzz-rsp:
	@mkdir -p $(BUILD)/tests/rsp_fuzz_corpus
	clang -I. -D_GNU_SOURCE $(WARN) -O1 -g -fsanitize=fuzzer,address,undefined \
		-o $(BUILD)/tests/rsp_fuzz tests/unit/rsp_fuzz.c rsp/rsp.c rsp/rsp_args.c util/err.c
	$(BUILD)/tests/rsp_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=8192 $(BUILD)/tests/rsp_fuzz_corpus
