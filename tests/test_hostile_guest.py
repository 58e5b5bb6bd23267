"""A hostile guest never takes the debugger away, and where vmdb cannot do
what the guest asks it behaves as hardware does: timer storms while every
CPU sleeps, accesses to nothing, too many device accesses in one
instruction. Real vmdb processes, real gdb."""
import os

import pytest

from conftest import GUESTS, run_vmdb
from gdbclient import GdbInteractive, start_gdb_vmdb
from test_hardening import attach

STORMS = {"lapic-1": "timer=lapic count=1", "lapic-10": "timer=lapic count=10",
          "lapic-1-unmasked": "timer=lapic count=1 masked=0", "pit-1": "timer=pit count=1"}


@pytest.mark.parametrize("storm", STORMS.values(), ids=STORMS.keys())
def test_timer_storm_leaves_the_debugger_heard(start_vmdb, guest, free_port, storm):
    """A timer faster than the host (masked, or unmasked with interrupts
    off), every CPU in `cli; hlt`: gdb's Ctrl-C gets its stop, and a client
    that comes later its answers."""
    kernel = guest("timer_storm")
    vm, target = start_gdb_vmdb(start_vmdb, kernel, "--cmdline", storm, port=free_port())
    gdb = GdbInteractive(kernel, target)
    try:
        gdb.expect(r"\(gdb\) ")
        gdb.send("continue")
        vm.wait_for("serial", r"storm: sleeping")
        gdb.interrupt()
        gdb.expect(r"SIGINT", timeout=30)
        gdb.send("detach")
        gdb.expect(r"Detaching", timeout=30)
    finally:
        gdb.close()
    late = attach(target, timeout=30)
    try:
        assert late.request("?").startswith(b"T")
        late.kill()
        assert vm.wait(timeout=30) == 0
    finally:
        late.close()


def test_tsc_deadline_past_the_end_of_time(start_vmdb, guest):
    """A TSC deadline that lies beyond 2^64 ns of guest time (the guest set
    its TSC back) is armed but never fires; a near one still does."""
    vm = start_vmdb(guest("timer_edge"))
    assert vm.wait(timeout=60) == 1, vm.serial_text()
    assert "FAIL" not in vm.serial_text()


def test_code_rewritten_under_the_fallback(start_vmdb, guest):
    """One vCPU swaps POPCNT and MOVQ in a slot another executes: every
    result is one of the two instructions' (on kvm here POPCNT runs on
    emu's core, which must execute the bytes KVM fetched and judged)."""
    vm = start_vmdb(guest("code_race"), "--smp", "2")
    assert vm.wait(timeout=120) == 1, vm.serial_text()
    assert "FAIL" not in vm.serial_text()
    assert "race: " in vm.serial_text()


HW_LIKE = ["fxsave", "xsave", "sse", "fxrstor", "fetch", "ioapic"]


def test_accesses_to_nothing_as_hardware(start_vmdb, guest):
    """FXSAVE/XSAVE into an MMIO hole (more device accesses than emu logs
    for one instruction), a 16-byte load there, FXRSTOR of all ones, a call
    into the hole, a fallback instruction reading KVM's in-kernel I/O APIC:
    writes go nowhere, reads are all ones, the guest runs on."""
    vm = start_vmdb(guest("hw_like"))
    assert vm.wait(timeout=60) == 1, vm.stderr_text() + vm.serial_text()
    serial = vm.serial_text()
    assert "FAIL" not in serial, serial
    for name in HW_LIKE:
        assert f"about to run {name}\n" in serial, serial


def test_most_cpus_leave_the_broadcast_apic_id(vmdb_bin, start_vmdb, guest):
    """255 vCPUs boot, each with its own APIC ID; a 256th would need the
    xAPIC broadcast ID 0xFF, so --smp 256 is refused with the reason."""
    r = run_vmdb(vmdb_bin, "--smp", "256", guest("smp"))
    assert r.returncode == 2
    assert "--smp 256" in r.stderr and "broadcast" in r.stderr, r.stderr
    vm = start_vmdb(guest("smp"), "--smp", "255", "--cmdline", "expect_cpus=255")
    assert vm.wait(timeout=120) == 1, vm.serial_text()
    assert "cpus up: 255" in vm.serial_text() and "FAIL" not in vm.serial_text()


def sparse_file(path, size):
    try:
        with open(path, "wb") as f:
            f.truncate(size)
    except OSError as e:
        pytest.skip(f"no sparse file of {size} bytes here: {e}")
    return str(path)


@pytest.mark.parametrize("kernel", ["exit.elf", "multiboot.elf", "linux_pvh.elf",
                                    "linux_bzimage.bin"])
def test_huge_initrd_is_judged_by_its_size(vmdb_bin, engine, tmp_path, kernel):
    """A 1 TiB (sparse) initrd gets the one-line 'does not fit' error of
    every boot protocol, from its size, without being read."""
    huge = sparse_file(tmp_path / "initrd", 1 << 40)
    path = os.path.join(GUESTS, kernel)
    assert os.path.exists(path), f"guest {path} is not built (run make)"
    r = run_vmdb(vmdb_bin, "--engine", engine, "--initrd", huge, path, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not fit" in lines[0] and str(1 << 40) in lines[0], r.stderr
    assert "in memory" not in lines[0]


def test_huge_kernel_is_judged_by_its_size(vmdb_bin, engine, tmp_path):
    huge = sparse_file(tmp_path / "kernel", 1 << 40)
    r = run_vmdb(vmdb_bin, "--engine", engine, huge, timeout=60)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "larger than the 4 GiB" in r.stderr, r.stderr
