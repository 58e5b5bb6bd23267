"""A guest gdb held finds PVCLOCK_GUEST_STOPPED in its kvmclock page when
it runs again (vmdb tells KVM with KVM_KVMCLOCK_CTRL as the debug core
resumes it), so Linux forgives the pause instead of reporting soft lockups;
it finds none without a stop. kvmclock.elf checks the flag from inside.
emu has no kvmclock: the guest skips its checks there."""
import re

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb

CAPS_LINE = r"kvmclock told of debugger pauses: (yes|no) \((.*)\)"


def checks(vm, count):
    status = vm.wait(60)
    serial = vm.serial_text()
    assert status == 1 and "FAIL" not in serial, f"status {status}\n{serial}"
    assert f"SUMMARY: {count} checks, 0 failed" in serial, serial
    return serial


def test_pause_reaches_the_guest_clock(start_vmdb, guest, free_port, engine):
    elf = guest("kvmclock")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, ["monitor info caps", "break kc_stop", "continue", "continue"])
    if engine == "emu":
        assert "kvmclock told" not in out, out
        assert "SKIP: kvmclock" in checks(vm, 0)
        return
    m = re.search(CAPS_LINE, out)
    assert m, out
    if m.group(1) == "no":
        pytest.skip(f"skipped: {m.group(2)}")
    assert re.search(r"Breakpoint 1, kc_stop", out), out
    serial = checks(vm, 3)
    assert "PASS: PVCLOCK_GUEST_STOPPED after gdb held the vCPU" in serial


def test_no_pause_no_flag(start_vmdb, guest, engine):
    if engine != "kvm":
        pytest.skip("emu has no kvmclock")
    serial = checks(start_vmdb(guest("kvmclock"), "--cmdline", "stopped=0"), 3)
    assert "PASS: no PVCLOCK_GUEST_STOPPED without a stop" in serial
