"""The SDM's debug rules around MOV SS and SYSCALL/SYSRET on the emu engine,
judged by guests/sdm_debug.c from inside (SDM vol. 3 6.8.3, 17.3.1):
ICEBP, a general-detect fault, a data breakpoint on MOV SS's operand followed
by ICEBP or INT n, an instruction breakpoint after MOV SS, SYSCALL from ring 3
with TF masked by FMASK (no #DB in the kernel) and SYSRET restoring TF
(a trap before the first user instruction).

Each runs with `--cpu intel`, `--cpu amd` and `--cpu kvm-step` (the ways
the engine steps for gdb: MTF-like; owning RFLAGS.TF with a shadow of the
guest's; and TF the way the host KVM steps, where vmdb's own step shadow,
debug/step_shadow.c, keeps the guest's TF), once
with nobody attached and once with gdb single-stepping through every
instruction of sdm_run; the guest's transcript must be the same, and pass.
The rules are the software engine's: on kvm the CPU is the host's.
"""
import difflib

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb

CPUS = ["intel", "amd", "kvm-step"]
GUEST = "sdm_debug"
# more single steps than sdm_run takes (handlers included: 2000-3000)
STEPS = 10000


def only_emu(engine):
    if engine != "emu":
        pytest.skip("--cpu models the software engine; on kvm the CPU is the host's")


def transcript(vm):
    return [line.rstrip() for line in vm.serial_text().splitlines()]


def assert_passed(status, lines, what):
    text = "\n".join(lines)
    assert status == 1, f"{what}: exit status {status} (1 = pass)\n{text}"
    assert any(l.startswith("SUMMARY:") for l in lines), f"{what}: no SUMMARY\n{text}"
    assert not any(l.startswith("FAIL") for l in lines), f"{what}:\n{text}"


@pytest.mark.parametrize("cpu", CPUS)
def test_plain(start_vmdb, engine, guest, cpu):
    only_emu(engine)
    vm = start_vmdb(guest(GUEST), "--cpu", cpu)
    assert_passed(vm.wait(120), transcript(vm), f"sdm_debug --cpu {cpu}")


@pytest.mark.parametrize("cpu", CPUS)
def test_stepped_by_gdb(start_vmdb, engine, guest, free_port, cpu):
    only_emu(engine)
    elf = guest(GUEST)
    plain_vm = start_vmdb(elf, "--cpu", cpu)
    plain_vm.wait(120)
    plain = transcript(plain_vm)

    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cpu", cpu, port=free_port())
    # the steps stop at print_events, right after sdm_run returned: every
    # instruction of the sequences and their handlers was stepped
    out = gdb_batch(elf, target, ["break sdm_run", "continue", "delete", "break print_events",
                                  f"stepi {STEPS}", "continue"], timeout=300)
    status = vm.wait(120)
    stepped = transcript(vm)
    assert "Breakpoint 1, " in out, out
    assert "Breakpoint 2, print_events" in out, f"stepping did not reach print_events:\n{out}"
    diff = "\n".join(difflib.unified_diff(plain, stepped, "nobody attached", "gdb stepping",
                                          lineterm=""))
    assert stepped == plain, f"transcripts differ:\n{diff}\n--- gdb:\n{out[-3000:]}"
    assert_passed(status, stepped, f"sdm_debug --cpu {cpu} under gdb")
