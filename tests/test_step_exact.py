"""Steps on the exact core (debug/step_exact.c): on kvm a parked vCPU's
plain step runs on emu's one-instruction core over the state vmdb holds,
and KVM_RUN steps the rest (CPUID, port I/O, IRETQ into ring 3, ...).

step_exact.elf runs one sequence in ring 0 and in ring 3 (memory, stack,
call/ret, SSE, CPUID, a port write, a #DE its own handler skips) with
nobody stepping, then again where gdb steps it, and checks from inside
that the stepped run left what the unstepped one did; the serial
transcript must also equal an unattached run's. Once per step core: the
exact one (the default) and the engine's (`monitor sstep core engine`),
so KVM_RUN's step path stays tested; `monitor info sstep` says which path
the steps took. On emu the engine's own steps are the exact ones: the
exact core is off there and the guest must pass all the same."""
import re

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb

STEPS = 300       # exact_stepped's ~290 instructions, into compare()
CORES = ["exact", "engine"]


def transcript(vm):
    return [line.rstrip() for line in vm.serial_text().splitlines()]


def core_counts(out):
    m = re.search(r"steps on the exact core: (\d+); by the engine: (\d+) \(core off (\d+), "
                  r"not a plain step (\d+), instruction (\d+)", out)
    assert m, out[-3000:]
    return {k: int(v) for k, v in zip(["exact", "engine", "off", "mode", "insn"], m.groups())}


@pytest.mark.parametrize("core", CORES)
def test_stepped_run_matches_unstepped(start_vmdb, engine, guest, free_port, core):
    elf = guest("step_exact")
    vm = start_vmdb(elf)
    assert vm.wait(120) == 1, "\n".join(transcript(vm))
    plain = transcript(vm)

    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, [f"monitor sstep core {core}", "break exact_stepped",
                                  "continue", "delete", f"stepi {STEPS}", "p/x $pc",
                                  "monitor info sstep", "continue"], timeout=240)
    status = vm.wait(120)
    stepped = transcript(vm)
    text = "\n".join(stepped)
    assert "Breakpoint 1, " in out, out
    assert status == 1, f"exit status {status}\n{text}\n--- gdb:\n{out[-3000:]}"
    assert not any(l.startswith("FAIL") for l in stepped), text
    assert stepped == plain, f"{text}\n--- gdb:\n{out[-3000:]}"
    counts = core_counts(out)
    assert counts["exact"] + counts["engine"] >= STEPS - 5, out[-3000:]
    if engine == "kvm" and core == "exact":
        # most steps on the core (IRETQ into ring 3 too); CPUID twice and
        # the port write on KVM_RUN
        assert counts["exact"] > STEPS * 2 // 3, out[-3000:]
        assert counts["insn"] >= 3, out[-3000:]
    else:
        assert counts["exact"] == 0, out[-3000:]
