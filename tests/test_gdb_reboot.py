"""The guest resets the machine under gdb: vmdb boots it again, the session
stays attached, and breakpoints of both kinds hit on the second boot too
(software ones are put back into the reloaded RAM, hardware ones into the
new vCPUs); a stepi over the resetting instruction ends at the new boot's
first instruction."""
import re

from conftest import guest_path
from gdbclient import gdb_batch, start_gdb_vmdb

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
