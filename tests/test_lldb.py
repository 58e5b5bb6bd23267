"""Debian's LLDB (14) drives vmdb's GDB stub in batch mode: it attaches to a
guest held by --wait-gdb at its ELF64 entry, reads the registers the loader
set (machine/bootinfo.h), single-steps through the entry code (each new rip
checked against objdump's disassembly of the file), writes a register the
next instruction stores to memory, reads that memory back, lists the
threads and kills the guest.

What LLDB 14 sends, and what vmdb must answer for it (probed with
`log enable gdb-remote packets`): QStartNoAckMode, qSupported,
qXfer:features:read:target.xml (LLDB's register map when qRegisterInfo is
not answered; a target.xml with i386:x86-64 is enough), vCont?, qC, ?,
Hg, p/P, m, qfThreadInfo/qsThreadInfo, vCont;s:TID (thread-step-inst),
k. It also asks QThreadSuffixSupported, QListThreadsInStopReply, qHostInfo,
qProcessInfo, qVAttachOrWaitSupported, QEnableErrorStrings,
qStructuredDataPlugins, qShlibInfoAddr, x (binary read), qMemoryRegionInfo,
jThreadsInfo, jThreadExtendedInfo; an empty reply (unsupported) to each is
fine and it falls back."""
import re
import shutil
import subprocess

import pytest

from gdbclient import lldb_batch

pytestmark = [
              pytest.mark.skipif(not shutil.which("lldb"), reason="skipped: no lldb"),
              pytest.mark.skipif(not shutil.which("objdump"), reason="skipped: no objdump")]

# machine/bootinfo.h: the ELF64 entry contract
BOOT_MAGIC = 0x564d4442
BOOT_INFO = 0x11000
BOOT_PML4 = 0x14000
BOOT_STACK_TOP = 0x80000
BOOT_CS = 0x08
RFLAGS_RESERVED = 0x2

# guests/rt/boot.h: where entry64.S records RAX and RBX
RT_ES_AX = 0
RT_ES_BX = 8

STEPS = 6                      # straight-line instructions at _start
RBX_PROBE = 0x1122334455667788
BRANCHES = re.compile(r"^(j|call|ret|iret|loop|int|syscall|sysret|hlt)")


def elf_symbols(elf):
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    return {m.group(2): int(m.group(1), 16)
            for m in re.finditer(r"^([0-9a-f]+) \w (\S+)$", out, re.M)}


def disassemble(elf, start, length=0x40):
    """[(address, mnemonic)] of the file's code from start, per objdump."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn",
                          f"--start-address={start:#x}", f"--stop-address={start + length:#x}",
                          elf], capture_output=True, text=True, check=True).stdout
    return [(int(m.group(1), 16), m.group(2))
            for m in re.finditer(r"^\s*([0-9a-f]+):\s+(\S+)", out, re.M)]


def split_commands(stdout):
    """lldb echoes every command as '(lldb) CMD': [(command, its output)]."""
    parts = re.split(r"^\(lldb\) (.*)$", stdout, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def registers(text):
    return {m.group(1): int(m.group(2), 16)
            for m in re.finditer(r"^\s*(\w+) = (0x[0-9a-f]+)", text, re.M)}


def test_lldb_attach_registers_step_memory_kill(start_vmdb, guest, free_port):
    elf = guest("demo")
    port = free_port()
    vm = start_vmdb(elf, "--gdb", f"tcp:127.0.0.1:{port}", "--wait-gdb")
    vm.wait_for("stderr", r"gdb server listening on", timeout=30)

    syms = elf_symbols(elf)
    entry = syms["_start"]
    code = disassemble(elf, entry)[:STEPS + 1]
    assert len(code) == STEPS + 1 and code[0][0] == entry, code
    assert not any(BRANCHES.match(mn) for _, mn in code[:STEPS]), \
        f"the entry code is no longer straight-line; adjust STEPS: {code}"
    es = syms["rt_entry_state"]

    cmds = ["register read rip rsp rax rbx rdi eflags cs cr3",
            "thread step-inst", "register read rip",          # mov %rax, ES(AX)
            f"register write rbx {RBX_PROBE:#x}",
            "thread step-inst", "register read rip rbx"]      # mov %rbx, ES(BX)
    for _ in range(STEPS - 2):
        cmds += ["thread step-inst", "register read rip"]
    cmds += [f"memory read --size 8 --format x --count 2 {es + RT_ES_AX:#x}",
             "thread list", "process kill"]
    stdout, everything = lldb_batch(elf, f"127.0.0.1:{port}", cmds, timeout=90)
    out = [(c, t) for c, t in split_commands(stdout) if not c.startswith("target create")]
    assert [c for c, _ in out] == [f"gdb-remote 127.0.0.1:{port}"] + cmds, everything

    # attached, stopped at the entry
    attach = out[0][1]
    assert "Process 1 stopped" in attach, everything
    assert re.search(rf"frame #0: {entry:#018x}", attach), everything

    # the registers the loader set
    regs = registers(out[1][1])
    want = {"rip": entry, "rsp": BOOT_STACK_TOP, "rax": BOOT_MAGIC, "rbx": 0,
            "rdi": BOOT_INFO, "eflags": RFLAGS_RESERVED, "cs": BOOT_CS, "cr3": BOOT_PML4}
    assert regs == want, f"registers read {regs}, expected {want}\n{everything}"

    # each step lands on the next instruction in the file
    rips = []
    for cmd, text in out[2:]:
        if cmd == "thread step-inst":
            assert "stop reason = instruction step into" in text, everything
        elif cmd.startswith("register read rip"):
            rips.append(registers(text)["rip"])
    assert rips == [a for a, _ in code[1:STEPS + 1]], \
        f"rip after each step {[hex(r) for r in rips]}, expected " \
        f"{[hex(a) for a, _ in code[1:STEPS + 1]]} ({code})\n{everything}"

    # the written rbx reached the vCPU: read back, and stored by the guest
    assert registers(out[6][1]).get("rbx") == RBX_PROBE, everything
    mem = next(t for c, t in out if c.startswith("memory read"))
    m = re.search(r"^0x[0-9a-f]+: (0x[0-9a-f]+) (0x[0-9a-f]+)", mem, re.M)
    assert m and [int(v, 16) for v in m.groups()] == [BOOT_MAGIC, RBX_PROBE], \
        f"guest memory at rt_entry_state: {mem!r}\n{everything}"

    # one vCPU, one thread; kill ends vmdb
    threads = next(t for c, t in out if c == "thread list")
    assert re.search(r"thread #1: tid = 0x0*1\b", threads), everything
    assert "exited with status" in out[-1][1], everything
    vm.wait(30)
