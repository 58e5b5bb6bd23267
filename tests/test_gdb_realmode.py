"""gdb 13 in real mode (--gdb-arch i8086) on guests/realmode.elf, which
drops from its multiboot entry to real mode and runs rm_work at linear
0x7c00 twice: as 0000:7c00, then as 07c0:0000. Breakpoints are linear
addresses; gdb's $pc is IP, so with CS = 0 the two agree and gdb breaks,
disassembles 16-bit code, steps and writes registers as anywhere; with
CS != 0 it steps (the far call in) and reads code at $cs*16+$eip. The
guest checks from the inside what it computed, and the AX gdb wrote."""
import re

from conftest import guest_checks_passed
from gdbclient import gdb_batch, start_gdb_vmdb

RM_BASE = 0x7000        # where realmode_switch.S copies rm_blob
WORK = 0x7c00           # rm_work there


def test_real_mode_break_step_write(start_vmdb, engine, guest, free_port):
    elf = guest("realmode")
    # This host's KVM (PVM) emulates real mode itself and delivers an int3
    # there through the guest's IVT, never to vmdb: hardware breakpoints.
    brk = "break" if engine == "emu" else "hbreak"
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--gdb-arch", "i8086", "--cmdline",
                                "rm_ax=0x1234", port=free_port())
    # the far call into 07c0:0000, by its linear (= CS:IP with CS = 0) address
    sym = dict(re.findall(r'Symbol "(\w+)" is .*?(0x[0-9a-f]+)',
                          gdb_batch(elf, None, ["info address rm_blob",
                                                "info address rm_far_call"], connect=False)))
    far_call = RM_BASE + int(sym["rm_far_call"], 16) - int(sym["rm_blob"], 16)
    # int3s in the copy must wait until the guest copied it (rm_copied);
    # the 0x7c10 breakpoint stays in for the CS = 0x7c0 call: vmdb stops
    # there, gdb (no breakpoint at IP 0x10) resumes it, the guest finishes
    out = gdb_batch(None, target, [
        "break *rm_copied", "continue", "set architecture i8086",
        f"{brk} *{WORK + 0x10:#x}", f"{brk} *{far_call:#x}", "continue",
        "info registers eip cs eflags", "x/3i $pc", "set $ax = 0x1234", "p/x $eax",
        "stepi", "info registers eip", "stepi", "info registers eip",
        "continue", "info registers eip", "stepi", "info registers eip cs",
        "p/x $cs*16+$eip", "x/i $cs*16+$eip", "stepi", "info registers eip", "continue"])
    eips = [int(v, 16) for v in re.findall(r"^eip +(0x[0-9a-f]+)", out, re.M)]
    assert eips == [WORK + 0x10, WORK + 0x12, WORK + 0x16, far_call, 0, 3], out
    assert re.search(r"^cs +0x0 +0\n", out, re.M), out
    assert re.search(r"^cs +0x7c0 +1984\n", out, re.M), out
    assert re.search(r"^eflags +0x[0-9a-f]+ +\[ [^]]*\]", out, re.M), out
    assert "IF" not in re.search(r"^eflags.*", out, re.M).group(0), out    # cli'd
    # 16-bit decoding: a 4-byte add with an imm16, not i386's imm32
    assert re.search(r"=> 0x7c10:\s+mov +%ax,%si\n +0x7c12:\s+add +\$0x100,%si\n"
                     r" +0x7c16:\s+mov +%si,0x6\(%di\)", out), out
    assert re.search(r"^\$1 = 0x1234$", out, re.M), out
    assert re.search(r"^\$2 = 0x7c00$", out, re.M), out
    assert re.search(r"^ +0x7c00:\s+mov +\$0xa,%cx$", out, re.M), out
    assert "exited with code 01" in out, out
    serial = guest_checks_passed(vm, 9)
    assert "PASS: 0000:7c00: ax at rm_work+0x10, + 0x100" in serial, serial
