"""On hosts like ours KVM emulates guest ring-0 code and
gives up on INT n, INT3, CMPXCHG16B, XRSTOR, POPCNT, FWAIT, LDMXCSR ...;
the kvm engine then runs that one instruction on emu's core
(engine/kvm/kvm_fallback.c). kvm_fallback.elf checks every result from
inside; it runs on both engines. With gdb: a Z0 breakpoint on such an
instruction still stops (it is the debugger's, not emu's), stepping over
it and over INT n works, and `monitor info caps` counts what emu ran.
Also `--engine auto`, the default: which engine, and why, on stderr."""
import re
import subprocess

import pytest

from conftest import HAVE_KVM, run_vmdb, sanitizer_env
from gdbclient import gdb_batch, start_gdb_vmdb, symbol

CHECKS = ["int", "int3", "cmpxchg16b", "xsave", "xsave-avx", "popcnt", "mmio", "fwait", "ldmxcsr"]
FALLBACK_LINE = r"kvm \u2192 emu single-instruction fallback: (\d+)(?: \((.*)\))?"


def passed(vm, timeout=60):
    status = vm.wait(timeout)
    serial, err = vm.serial_text(), vm.stderr_text()
    assert status == 1, f"status {status}\nstderr: {err}\nserial: {serial[-3000:]}"
    assert "FAIL" not in serial, serial
    m = re.search(r"SUMMARY: (\d+) checks, 0 failed", serial)
    assert m and int(m.group(1)) >= 20, serial
    return serial


def probe_table(vmdb_bin, engine):
    r = run_vmdb(vmdb_bin, "--probe", "--engine", engine)
    assert r.returncode == 0, r.stderr
    return r.stdout


def host_fallback_names(vmdb_bin):
    """The instructions --probe found the host cannot emulate in ring 0."""
    m = re.search(r"^instructions the host cannot emulate in ring 0: (yes|no) \((.*)\)$",
                  probe_table(vmdb_bin, "kvm"), re.M)
    assert m, "probe line missing"
    if m.group(1) == "no":
        return []
    return m.group(2).split(":")[0].split(", ")


def test_guest_checks_every_instruction(start_vmdb, guest, engine):
    vm = start_vmdb(guest("kvm_fallback"))
    serial = passed(vm)
    for name in CHECKS:
        assert f"about to run {name}\n" in serial, serial


def test_one_check_alone(start_vmdb, guest, engine):
    vm = start_vmdb(guest("kvm_fallback"), "--cmdline", "only=cmpxchg16b")
    status = vm.wait(60)
    serial = vm.serial_text()
    assert status == 1 and "about to run int\n" not in serial, serial
    assert "SUMMARY: 7 checks, 0 failed" in serial, serial


def test_breakpoints_and_steps_over_fallback_instructions(start_vmdb, guest, free_port,
                                                          engine, vmdb_bin):
    """Z0 on POPCNT stops there (the debugger's int3 is not handed to emu);
    a stepi over INT 0x77 stops at the handler's first instruction; the
    step over the POPCNT breakpoint executes it once; monitor info caps
    counts per mnemonic what emu ran."""
    elf = guest("kvm_fallback")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, [
        "break *fb_int_insn", "break *fb_popcnt_insn", "break fb_all_done",
        "continue", "p/x $pc", "stepi", "p/x $pc",
        "continue", "p/x $pc", "continue", "monitor info caps", "continue"])
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)]
    assert pcs == [symbol(elf, "fb_int_insn"), symbol(elf, "isr_119"),
                   symbol(elf, "fb_popcnt_insn")], out
    assert len(re.findall(r"^Breakpoint \d, ", out, re.M)) == 3, out
    assert "exited with code 01" in out, out
    serial = passed(vm, 30)
    assert "PASS: POPCNT counts 32 bits" in serial
    line = re.search(FALLBACK_LINE, out)
    if engine == "emu":
        assert not line, out         # nothing to fall back from
        return
    assert line, out
    counts = dict((n, int(c)) for n, c in re.findall(r"([A-Z0-9]+) (\d+)", line.group(2) or ""))
    assert int(line.group(1)) == sum(counts.values()), out
    # at least once each (as often as the guest runs them) for what the
    # probe says this host cannot emulate
    times = {"INT3": 1, "POPCNT": 1, "CMPXCHG16B": 2, "FWAIT": 1, "LDMXCSR": 4}
    for name in host_fallback_names(vmdb_bin):
        assert counts.get(name, 0) >= times.get(name, 1), (name, out)


@pytest.mark.kvm
def test_probe_names_what_the_host_cannot_emulate(vmdb_bin):
    """--probe times ring 0 and lists what emu ran for the host; where ring 0
    is emulated (as here) that list is not empty."""
    table = probe_table(vmdb_bin, "kvm")
    native = re.search(r"^native ring-0 execution: (yes|no) ", table, re.M)
    assert native, table
    names = host_fallback_names(vmdb_bin)
    if native.group(1) == "no":
        assert "POPCNT" in names or "CMPXCHG16B" in names, table
    m = re.search(r"ring-0 loop ran at ([\d.]+)M instructions/s", table)
    assert m, table


# --- --engine auto ------------------------------------------------------------------------


def auto_line(stderr):
    m = re.search(r"^vmdb: engine (kvm|emu): (.*)$", stderr, re.M)
    assert m, stderr
    return m.group(1), m.group(2)


def test_auto_says_which_and_why(vmdb_bin, guest):
    r = run_vmdb(vmdb_bin, "--serial", "none", guest("exit"))
    assert r.returncode == 1, r.stderr
    picked, why = auto_line(r.stderr)
    if not HAVE_KVM:
        assert picked == "emu" and "no usable /dev/kvm" in why, why
        return
    table = probe_table(vmdb_bin, "kvm")
    native = re.search(r"^native ring-0 execution: (yes|no) ", table, re.M)
    assert native, table
    assert picked == ("kvm" if native.group(1) == "yes" else "emu"), (why, table)
    assert re.search(r"measured [\d.]+M instructions/s", why), why
    assert "--engine " + ("emu" if picked == "kvm" else "kvm") + " to override" in why, why


@pytest.mark.kvm
def test_auto_without_dev_kvm_picks_emu(vmdb_bin, guest):
    """/dev/kvm hidden in a private mount namespace: emu, and it says why."""
    script = 'mount -t tmpfs tmpfs /dev && exec "$0" "$@"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                        vmdb_bin, "--serial", "none", guest("exit")], capture_output=True,
                       text=True, timeout=60, env=sanitizer_env())
    if "unshare failed" in r.stderr or "mount:" in r.stderr:
        pytest.skip("cannot make a mount namespace here")
    picked, why = auto_line(r.stderr)
    assert picked == "emu" and "no usable /dev/kvm" in why, r.stderr
    assert r.returncode == 1, r.stderr


def test_auto_is_the_default_and_documented(vmdb_bin):
    r = run_vmdb(vmdb_bin, "--help")
    assert re.search(r"--engine NAME +execution engine: auto, kvm or emu \(default auto",
                     r.stdout), r.stdout
    r = run_vmdb(vmdb_bin, "--engine", "bogus", "x.elf")
    assert r.returncode == 2 and "available: auto, kvm, emu" in r.stderr, r.stderr


def test_cpu_follows_the_engine_auto_picks(vmdb_bin, guest):
    r = run_vmdb(vmdb_bin, "--cpu", "amd", "--serial", "none", guest("exit"))
    picked, _ = auto_line(r.stderr)
    if picked == "emu":
        assert r.returncode == 1, r.stderr
    else:
        assert r.returncode == 2, r.stderr
        assert "--cpu chooses the software engine's CPU model; engine kvm" in r.stderr


def test_probe_follows_auto(vmdb_bin):
    r = run_vmdb(vmdb_bin, "--probe")
    assert r.returncode == 0, r.stderr
    picked, _ = auto_line(r.stderr)
    assert r.stdout.startswith(f"engine: {picked}\n"), r.stdout


def test_suite_passes_engine_explicitly(start_vmdb, guest, engine):
    """The end-to-end tests must not depend on what auto picks here."""
    vm = start_vmdb(guest("exit"))
    assert vm.argv[1:3] == ["--serial", "file:" + vm.serial_path] and \
        vm.argv[3:5] == ["--engine", engine], vm.argv
    assert vm.wait(30) == 1
    assert not re.search(r"^vmdb: engine (kvm|emu): ", vm.stderr_text(), re.M)
