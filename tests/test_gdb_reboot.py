"""The guest resets the machine under gdb: vmdb boots it again, the session
stays attached, and breakpoints of both kinds hit on the second boot too
(software ones are put back into the reloaded RAM, hardware ones into the
new vCPUs); a stepi over the resetting instruction ends at the new boot's
first instruction."""
import re

from conftest import guest_path
from gdbclient import gdb_batch, start_gdb_vmdb, symbol

SECOND_BOOT = (0x21 << 1) | 1


def test_breakpoints_hit_on_both_boots(start_vmdb, free_port):
    elf = guest_path("platform")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=reset via=cf9",
                                "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, ["break test_reset", "hbreak smp_start_aps",
                                  "continue", "continue", "continue", "continue", "continue"])
    assert out.count("Breakpoint 1, test_reset") == 2, out
    assert out.count("Breakpoint 2, smp_start_aps") == 2, out
    assert f"exited with code 0{SECOND_BOOT:o}" in out, out
    assert vm.wait(30) == SECOND_BOOT
    serial = vm.serial_text()
    assert serial.count("boot 1") == 1 and serial.count("boot 2") == 1, serial
    assert "FAIL" not in serial, serial


def reset_instruction(elf):
    """The `out` that writes 6 to port 0xcf9 in test_reset: the second `out
    %al,(%dx)` after the port number is loaded."""
    dis = gdb_batch(elf, None, ["disassemble test_reset"], connect=False)
    after = dis[dis.index("$0xcf9,%edx"):]
    outs = re.findall(r"(0x[0-9a-f]+) <\+\d+>:\s+out\s+%al,\(%dx\)", after)
    return int(outs[1], 16)


def test_stepi_over_the_reset_ends_at_power_on(start_vmdb, free_port):
    elf = guest_path("platform")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=reset via=cf9",
                                "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, [f"break *{reset_instruction(elf):#x}", "break test_reset",
                                  "continue", "continue", "stepi", "p $pc",
                                  "continue", "continue"])
    assert "<_start>" in out.split("$1 =", 1)[1].splitlines()[0], out
    assert out.count("Breakpoint 2, test_reset") == 2, out
    assert f"exited with code 0{SECOND_BOOT:o}" in out, out
    assert vm.wait(30) == SECOND_BOOT


def test_monitor_system_reset(start_vmdb, free_port):
    """`monitor system_reset` boots the machine again from power-on and
    returns with every vCPU held at its first instruction: RAM is the
    reloaded kernel's (a variable gdb set is 0 again), vCPU 1 waits for its
    SIPI again, and the breakpoint gdb left in place hits in the new boot."""
    elf = guest_path("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, [
        "break demo_tick", "continue", "set var demo_counter = 12345",
        "monitor system_reset", "maintenance flush register-cache", "thread 1",
        "p/x $pc", "p demo_counter", "info threads", "continue", "p $pc", "kill"])
    assert "vmdb: the machine was reset: boot 2 holds every vCPU at its first instruction" \
        in out, out
    assert f"$1 = {symbol(elf, '_start'):#x}\n$2 = 0\n" in out, out
    assert re.search(r"^  2 +Thread 2 \"vCPU 1\" \(vCPU 1, waiting for SIPI\)", out, re.M), out
    assert out.count("hit Breakpoint 1, demo_tick") == 2, out
    assert "<demo_tick>" in out.split("$3 =", 1)[1].splitlines()[0], out
    vm.wait(30)       # killed: its last serial output is written as it ends
    assert vm.serial_text().count("vmdb demo guest: 2 CPUs announced") == 2, vm.serial_text()


def test_monitor_system_reset_refused_with_no_reboot(start_vmdb, free_port):
    elf = guest_path("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--no-reboot", port=free_port())
    out = gdb_batch(elf, target, ["monitor system_reset", "p/x $pc", "kill"])
    assert "monitor system_reset: vmdb runs with --no-reboot: a reset would end it" in out, out
    assert f"$1 = {symbol(elf, '_start'):#x}" in out, out
