"""Guest-invisible single-stepping, judged by the guests themselves.

Each step guest (guests/step_*.c) prints a transcript of what it observed:
RFLAGS images (PUSHF, exception/interrupt frames, R11 after SYSCALL), its
own #DB traps under its own TF, its timer tick count. The rule: the
transcript with gdb stepping through the guest is IDENTICAL to the one with
nobody attached.

- test_unattached: every guest passes its own checks with nobody attached
  (must pass today).
- test_stepped_transcript_matches: under gdb, break at the guest's step
  function, `stepi N` (thousands), continue to the end, compare the serial
  transcripts line for line (the step engine, debug/step.c, keeps them
  identical).
- test_kvm_step_model_transcript_matches: the same on emu's `--cpu
  kvm-step`, which steps the way the host KVM does, so that the step
  shadow (debug/step_shadow.c) is checked without /dev/kvm.
- test_engine_core_transcript_matches: on kvm, the same with every step
  by KVM_RUN (`monitor sstep core engine`), not emu's exact core.
- test_stepi_timer_handler: gdb steps the tick guest one instruction at a
  time; with `monitor sstep irq off` (the default: interrupts held off
  while stepping) no stop may land in the timer interrupt path, with
  `sstep irq on` some must.

The stepped tests run once per way of holding interrupts off while
stepping (IRQBLOCK): `auto` (the engine's own block, KVM_GUESTDBG_BLOCKIRQ
on this host) and `mask-if`, the fallback for hosts without BLOCKIRQ,
forced here with `monitor sstep irqblock mask-if`: vmdb clears RFLAGS.IF
for each step and keeps the guest's IF as a shadow, and the transcripts
must stay identical all the same.
"""
import difflib
import os
import re

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb

# No module-wide kvm mark: every test takes the `engine` fixture (through
# start_vmdb), so `--engines kvm,emu` runs each on both engines; only the
# kvm column needs /dev/kvm. On an engine whose steps leave the guest's TF
# alone (engine_caps.step_keeps_guest_tf, the emu engine) the debug core
# skips the shadow, and the guests must see the same transcripts anyway.

# id, guest, command line, function to break on, stepi count, marks.
# step_ticks: steps hold interrupts off (KVM_GUESTDBG_BLOCKIRQ) and none is
# lost when the guest waits with one-instruction STI windows. Its `hlt`
# variant waits with `sti; hlt; cli` as an idle loop does: the step engine
# steps HLT as a run to the next instruction, so the step completes when
# the tick wakes the vCPU (a plain stepped HLT on this KVM completes at
# once and left the vCPU halted for good); short timeout all the same.
GUESTS = [
    ("step_pushf", "step_pushf", "", "step_pushf_run", 3000, []),
    ("step_tf", "step_tf", "", "step_tf_run", 3000, []),
    ("step_ticks", "step_ticks", "", "step_ticks_work", 10000, []),
    ("step_ticks_hlt", "step_ticks", "hlt", "step_ticks_work", 10000, []),
]
GUEST_PARAMS = [pytest.param(*g[1:5], id=g[0], marks=g[5]) for g in GUESTS]
# Cases an engine does not pass yet, by engine-independent id (none now:
# the emu runs of step_ticks, step_ticks_hlt and stepi_timer_off that were
# skipped here pass, built from d35dd51 (where the skip came in) as now).
EMU_PENDING = set()


def skip_pending(engine, case):
    if engine == "emu" and case in EMU_PENDING:
        pytest.skip(f"{case}: not passing on the emu engine yet")
UNATTACHED_PARAMS = [pytest.param(*g[1:5], id=g[0]) for g in GUESTS]
IRQBLOCK = ["auto", "mask-if"]


def irqblock_cmds(irqblock):
    """gdb commands that choose the mechanism, and check it is the one in use."""
    if irqblock == "auto":
        return []
    return [f"monitor sstep irqblock {irqblock}", "monitor info caps"]


def assert_irqblock(out, irqblock):
    if irqblock == "mask-if":
        assert "interrupts while stepping: held off by vmdb masking RFLAGS.IF" in out, out

GDB_TIMEOUT = {"hlt": 45}


def transcript(vm):
    """The guest's serial output, as lines (trailing whitespace ignored)."""
    return [line.rstrip() for line in vm.serial_text().splitlines()]


def cmdline_args(cmdline):
    return ("--cmdline", cmdline) if cmdline else ()


def run_unattached(start_vmdb, elf, cmdline=""):
    vm = start_vmdb(elf, *cmdline_args(cmdline))
    status = vm.wait(120)
    return status, transcript(vm)


def assert_guest_passed(status, lines, what):
    text = "\n".join(lines)
    assert status == 1, f"{what}: exit status {status} (1 = pass)\n{text}"
    assert any(l.startswith("SUMMARY:") for l in lines), f"{what}: no SUMMARY\n{text}"
    assert not any(l.startswith("FAIL") for l in lines), f"{what}:\n{text}"


def diff(a, b):
    return "\n".join(difflib.unified_diff(a, b, "nobody attached", "gdb stepping", lineterm=""))


@pytest.mark.parametrize("name,cmdline,func,steps", UNATTACHED_PARAMS)
def test_unattached(start_vmdb, guest, name, cmdline, func, steps):
    status, lines = run_unattached(start_vmdb, guest(name), cmdline)
    assert_guest_passed(status, lines, name)


def stepped_run(start_vmdb, elf, cmdline, func, steps, free_port, irqblock="auto", extra=(),
                after=()):
    vm, target = start_gdb_vmdb(start_vmdb, elf, *cmdline_args(cmdline), *extra,
                                port=free_port())
    out = gdb_batch(elf, target, irqblock_cmds(irqblock) +
                    [f"break {func}", "continue", "delete", f"stepi {steps}", "p/x $pc"] +
                    list(after) + ["continue"], timeout=GDB_TIMEOUT.get(cmdline, 240))
    status = vm.wait(120)
    return status, transcript(vm), out


@pytest.mark.parametrize("irqblock", IRQBLOCK)
@pytest.mark.parametrize("name,cmdline,func,steps", GUEST_PARAMS)
def test_stepped_transcript_matches(start_vmdb, engine, guest, free_port, name, cmdline, func,
                                    steps, irqblock):
    skip_pending(engine, name + ("_" + cmdline if cmdline else ""))
    elf = guest(name)
    _, plain = run_unattached(start_vmdb, elf, cmdline)
    status, stepped, out = stepped_run(start_vmdb, elf, cmdline, func, steps, free_port,
                                       irqblock)
    assert_irqblock(out, irqblock)
    assert f"Breakpoint 1, " in out, out
    assert stepped == plain, f"transcripts differ:\n{diff(plain, stepped)}\n--- gdb:\n{out[-3000:]}"
    assert_guest_passed(status, stepped, name + " under gdb")


# emu's --cpu kvm-step steps the way the host KVM does (its TF hidden and
# leaked into images, the guest's own TF lost, a fault's handler entered
# in the same step), so the step shadow (debug/step_shadow.c) runs without
# /dev/kvm: the guests whose transcripts need it most, with the shadow's
# own counters showing that it did the work.
KVM_STEP_GUESTS = [g for g in GUEST_PARAMS if g.id in ("step_pushf", "step_tf")]
SSTEP_COUNTS = re.compile(r"(\d+) own #DB delivered .*?(\d+) PUSHF images, (\d+) frames")


@pytest.mark.parametrize("irqblock", IRQBLOCK)
@pytest.mark.parametrize("name,cmdline,func,steps", KVM_STEP_GUESTS)
def test_kvm_step_model_transcript_matches(start_vmdb, engine, guest, free_port, name, cmdline,
                                           func, steps, irqblock):
    if engine != "emu":
        pytest.skip("--cpu kvm-step is a model of the emu engine")
    elf = guest(name)
    _, plain = run_unattached(start_vmdb, elf, cmdline)
    status, stepped, out = stepped_run(start_vmdb, elf, cmdline, func, steps, free_port,
                                       irqblock, extra=("--cpu", "kvm-step"),
                                       after=["monitor info sstep"])
    assert_irqblock(out, irqblock)
    assert "kept by vmdb as a shadow" in out, out
    counts = SSTEP_COUNTS.search(out)
    assert counts and sum(int(n) for n in counts.groups()) > 0, out
    assert stepped == plain, f"transcripts differ:\n{diff(plain, stepped)}\n--- gdb:\n{out[-3000:]}"
    assert_guest_passed(status, stepped, name + " under gdb, --cpu kvm-step")


# On kvm most steps run on emu's exact core (debug/step_exact.c); the
# step shadow over KVM_RUN alone (`monitor sstep core engine`) on the
# guests that need it most, so that path stays tested too.
@pytest.mark.parametrize("name,cmdline,func,steps", KVM_STEP_GUESTS)
def test_engine_core_transcript_matches(start_vmdb, engine, guest, free_port, name, cmdline,
                                        func, steps):
    if engine != "kvm":
        pytest.skip("the exact core is kvm's: emu's own steps are the exact ones")
    elf = guest(name)
    _, plain = run_unattached(start_vmdb, elf, cmdline)
    vm, target = start_gdb_vmdb(start_vmdb, elf, *cmdline_args(cmdline), port=free_port())
    out = gdb_batch(elf, target, ["monitor sstep core engine", f"break {func}", "continue",
                                  "delete", f"stepi {steps}", "monitor info sstep", "continue"],
                    timeout=240)
    status = vm.wait(120)
    stepped = transcript(vm)
    assert re.search(r"steps on the exact core: 0; by the engine: [1-9]", out), out[-3000:]
    assert stepped == plain, f"transcripts differ:\n{diff(plain, stepped)}\n--- gdb:\n{out[-3000:]}"
    assert_guest_passed(status, stepped, name + " under gdb, KVM_RUN steps")


# gdb steps one instruction at a time and writes each stop's pc; the test
# then looks for pcs in the timer interrupt path.
STEP_SCRIPT = """
import gdb
out = open({path!r}, "w")
for i in range({count}):
    gdb.execute("stepi", to_string=True)
    out.write("%x\\n" % int(gdb.parse_and_eval("$pc")))
out.close()
"""


def symbol_ranges(elf, names):
    """[(name, lo, hi)] from `info symbol`-free nm output."""
    import subprocess
    r = subprocess.run(["nm", "-S", "--defined-only", elf], capture_output=True, text=True)
    ranges = []
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and any(re.fullmatch(n, parts[3]) for n in names):
            lo, size = int(parts[0], 16), int(parts[1], 16)
            ranges.append((parts[3], lo, lo + size))
    return ranges


@pytest.mark.parametrize("irq,irqblock", [("off", "auto"), ("off", "mask-if"), ("on", "auto")])
def test_stepi_timer_handler(start_vmdb, engine, guest, free_port, tmp_path, irq, irqblock):
    """irq off (default): stepi never lands in the timer path; on: it does."""
    skip_pending(engine, "stepi_timer_" + irq)
    elf = guest("step_ticks")
    # the handler, the runtime's dispatcher and the vector's ISR stub area
    handler = symbol_ranges(elf, [r"tick_handler", r"rt_isr_dispatch", r"isr_common"])
    assert handler, "no handler symbols in step_ticks.elf"
    script = tmp_path / "steps.py"
    pcs_path = tmp_path / "pcs.txt"
    count = 2000
    script.write_text(STEP_SCRIPT.format(path=str(pcs_path), count=count))
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, irqblock_cmds(irqblock) +
                    ["break step_ticks_work", "continue", "delete", f"monitor sstep irq {irq}",
                     "monitor info sstep", f"source {script}", "continue"], timeout=240)
    assert_irqblock(out, irqblock)
    status = vm.wait(120)
    pcs = [int(x, 16) for x in pcs_path.read_text().split()] if pcs_path.exists() else []
    assert len(pcs) == count, f"only {len(pcs)} steps recorded\n{out[-3000:]}"
    inside = [(hex(pc), n) for pc in pcs for n, lo, hi in handler if lo <= pc < hi]
    if irq == "off":
        assert not inside, f"stepi landed in the timer path: {inside[:10]}"
    else:
        assert inside, f"with `sstep irq on` no stepi entered the timer path\n{out[-2000:]}"
    assert status == 1, f"exit status {status}\n{vm.serial_text()}"


def test_remap_between_steps(start_vmdb, engine, guest, free_port):
    """gdb remaps the page of the next instruction between two stepi (a PTE
    write): the step engine must decode what the new mapping holds (a
    PUSHFQ where the old page had PUSH RAX) and give it the guest's IF,
    which vmdb masks while stepping (`sstep irqblock mask-if`). A stale
    translation decodes PUSH RAX and the image loses IF (0xc7)."""
    elf = guest("step_remap")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, ["monitor sstep irqblock mask-if", "break step_remap_call",
                                  "continue", "stepi", "stepi", "p/x $pc",
                                  "set *step_remap_pte = step_remap_pte_b", "x/i $pc",
                                  "stepi", "stepi", "continue"])
    status = vm.wait(60)
    lines = transcript(vm)
    assert "=> 0x8000000001:\tpushf" in out, out
    m = [re.match(r"remap: rax (0x[0-9a-f]+)", l) for l in lines]
    rax = [int(x.group(1), 16) for x in m if x]
    assert rax, "\n".join(lines)
    known_if = 0x2c7   # KNOWN | IF in guests/step_remap.c
    # emu may keep the old translation in its TLB (no INVLPG, as a CPU may):
    # then page A ran and the sentinel came back, never a wrong image
    allowed = {known_if} if engine == "kvm" else {known_if, 0x5e5e5e5e5e5e5e5e}
    assert rax[0] in allowed, f"rax {rax[0]:#x}, want {known_if:#x}\n{out[-2000:]}"
    assert_guest_passed(status, lines, "step_remap under gdb")
