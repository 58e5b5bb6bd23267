"""Whole-machine snapshots on emu (machine/snapshot.c, engine/emu/emu_snap.c).

VMDB_SNAP_CHECK=N:W makes vmdb take a snapshot at the first quantum boundary
after N instructions, run W more, note every vCPU's registers, run state and
interrupt controllers, guest time, the devices' state and a hash of RAM,
restore the snapshot, run to the same boundary again and compare
(engine/emu/emu_snap_check.c). snap_work.elf keeps every CPU busy writing
memory under a 2 kHz APIC timer while the BSP prints and keeps a counter in
the UART's scratch register, and checks all of it from the inside: a vCPU,
device or page put back wrong shows as "differs" or as a failed check. The
same on Linux, in a window after its boot read the host's clock."""
import os
import re

import pytest

from conftest import ROOT, VmdbProcess, guest_checks_passed

CHECK = re.compile(r"snapshot check: took at (\d+), ran to (\d+), restored in [\d.]+ ms, "
                   r"ran to (\d+) again: identical \((\d+) bytes of snapshot\)")


@pytest.mark.parametrize("smp,window", [
    (1, "300000:3000000"),        # boot: serial set up, APIC timer calibrated
    (1, "5000000:8000000"),       # memory, timer interrupts, serial output
    (4, "300000:3000000"),        # INIT/SIPI, the APs coming up
    (4, "5000000:8000000"),
], ids=["1cpu-boot", "1cpu-work", "4cpu-boot", "4cpu-work"])
def test_restore_runs_again_identically(vmdb_bin, guest, tmp_path, monkeypatch, smp, window):
    monkeypatch.setenv("VMDB_SNAP_CHECK", window)
    vm = VmdbProcess(vmdb_bin, guest("snap_work"),
                     ("--engine", "emu", "--smp", str(smp), "--mem", "64M"), tmp_path, True)
    try:
        guest_checks_passed(vm, 1 + 2 * smp)
        err = vm.stderr_text()
        m = CHECK.search(err)
        assert m, err
        took, ran, again, size = (int(g) for g in m.groups())
        first, width = (int(x) for x in window.split(":"))
        assert took >= first and ran >= took + width and again == ran, err
        # zero pages are left out and the rest is stored once
        assert size < (64 << 20) // 8, err
    finally:
        vm.close()


def test_linux_window_runs_again_identically(vmdb_bin, build_dir, tmp_path, monkeypatch):
    """Debian's Linux on 2 vCPUs, from the end of its boot into init (after
    the kernel read the host's clock through the RTC, an input no snapshot
    can replay): a kernel uses far more of the CPU than test guests do."""
    if build_dir.endswith("build-asan"):
        pytest.skip("the sanitizer build boots Linux in test_linux only: ~3x slower")
    linux = os.path.join(ROOT, "build", "linux")
    kernel, initrd = os.path.join(linux, "vmlinuz-cloud"), os.path.join(linux, "initramfs.gz")
    if not (os.path.exists(kernel) and os.path.exists(initrd)):
        pytest.fail(f"{kernel} or {initrd} is missing: run `make linux-assets`")
    monkeypatch.setenv("VMDB_SNAP_CHECK", "900000000:400000000")
    vm = VmdbProcess(vmdb_bin, kernel,
                     ("--engine", "emu", "--smp", "2", "--mem", "512M", "--initrd", initrd,
                      "--cmdline", "console=ttyS0 nokaslr quiet vmdb.cpus=2"), tmp_path, True)
    try:
        status = vm.wait(240)
        err = vm.stderr_text()
        assert status == 0 and "VMDB-LINUX: PASS" in vm.serial_text(), err
        m = CHECK.search(err)
        assert m, err
    finally:
        vm.close()
