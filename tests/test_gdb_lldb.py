"""LLDB (Debian's lldb) attaches to the same stub: registers, a breakpoint
by name, a single step, kill."""
import re
import shutil

import pytest

from gdbclient import lldb_batch, start_gdb_vmdb

pytestmark = [
              pytest.mark.skipif(not shutil.which("lldb"), reason="skipped: no lldb")]


def test_lldb_registers_break_step(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=stepi", port=free_port())
    _, out = lldb_batch(elf, target, ["breakpoint set -n gdb_steps", "continue",
                                   "register read rax rip", "thread step-inst",
                                   "thread step-inst", "register read rax rip", "process kill"])
    rax = [int(v, 16) for v in re.findall(r"rax = (0x[0-9a-f]+)", out)]
    rip = [int(v, 16) for v in re.findall(r"rip = (0x[0-9a-f]+)", out)]
    assert len(rax) == 2 and len(rip) == 2, out
    assert rax[1] - rax[0] == 2 and rip[1] - rip[0] == 6, out   # two 3-byte "inc %rax"
    assert "stop reason = breakpoint" in out, out
    assert vm.wait(30) == 0
