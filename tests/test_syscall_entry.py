"""Linux's system call entry, from a ring-3 task (guests/syscall_entry.c):
Linux's GDT and STAR, FMASK, SWAPGS and %gs, PTI's CR3 switch (with PCID
bits where CPUID has PCID), SYSRETQ and IRETQ back, a call made with TF
set; checked from inside. Also a SYSCALL that gdb single-steps: the step
ends at the entry's first instruction, in ring 0.

On kvm here the host leaves a ring-3 SYSCALL at CPL 3 (RIP at LSTAR,
RFLAGS masked, CS still 0x33): the entry's fetch faults and the host
delivers that #PF to the guest. The guest's #PF entry begins as Linux's
do, ENDBR64 then CLAC (with SMAP), where the host's emulator gives up:
vmdb undoes the #PF there and completes the SYSCALL
(engine/kvm/kvm_syscall_mend.c). Without that the run fails. Two more
ways this host differs, allowed on kvm only: it raises the #DB of a
SYSRETQ that restores TF after the first user instruction instead of
before it (tf_trap=any), and a ring-3 INT3 goes to the guest, never to
vmdb, so a debugger cannot stop in ring 3 (the gdb test is then an
expected failure that says so)."""
import re

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb, symbol

GUEST = "syscall_entry"
HOST_SIGNATURE = re.compile(r"^SYSCALL left CPL 3: (.*)$", re.M)
KCODE, UCODE = 0x10, 0x33


def host_leaves_ring3(engine, serial):
    """The host limitation above, as the guest reports it, where vmdb cannot
    meet it (kvm only): the guest's #PF entry has no CLAC (no SMAP)."""
    m = HOST_SIGNATURE.search(serial)
    if engine == "kvm" and m and "#PF entry plain" in serial and \
            "SUMMARY: 1 checks, 1 failed" in serial:
        pytest.xfail("this host's KVM runs a ring-3 SYSCALL's target still in ring 3 and "
                     "the guest's #PF entry gives vmdb no exit to mend it: " + m.group(1))


def assert_passed(status, serial, engine):
    host_leaves_ring3(engine, serial)
    assert status == 1, f"status {status}\n{serial[-3000:]}"
    assert "FAIL" not in serial, serial
    m = re.search(r"SUMMARY: (\d+) checks, 0 failed", serial)
    assert m and int(m.group(1)) >= 60, serial


def host_args(engine):
    return " tf_trap=any" if engine == "kvm" else ""


@pytest.mark.parametrize("pti", [0, 1])
def test_entry_from_ring3(start_vmdb, guest, engine, pti):
    vm = start_vmdb(guest(GUEST), "--mem", "64M", "--cmdline", f"pti={pti}{host_args(engine)}")
    status = vm.wait(60)
    serial = vm.serial_text()
    assert_passed(status, serial, engine)
    assert f"syscall_entry: pti {pti} " in serial, serial
    for line in ["call 1: CS in ring 0 = STAR[47:32]", "call 2: ring 3 got RAX back",
                 "call 3: FMASK cleared TF, IF, DF, AC, NT, IOPL in ring 0",
                 "TF: one #DB in ring 3"]:
        assert f"PASS: {line}\n" in serial, line
    if engine == "emu":
        assert "PASS: TF: the #DB comes after SYSRETQ, before the next user instruction\n" \
            in serial, serial


def test_syscall_stepped_by_gdb(start_vmdb, guest, free_port, engine):
    """A stepi over SYSCALL stops at LSTAR in ring 0 (CS from STAR), the next
    one after SWAPGS; the guest's own checks of that call still pass."""
    elf = guest(GUEST)
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--mem", "64M",
                                "--cmdline", host_args(engine).strip(), port=free_port())
    out = gdb_batch(elf, target, [
        "break *sc_user_step", "continue", "delete",
        "p/x $pc", "p/x $cs", "stepi", "p/x $pc", "p/x $cs", "stepi", "p/x $pc",
        "continue"])
    status = vm.wait(60)
    serial = vm.serial_text()
    host_leaves_ring3(engine, serial)
    step = symbol(elf, "sc_user_step")
    bp = re.search(r"^FAIL: #BP \(error 0x0\) at RIP (0x[0-9a-f]+) CS 0x33 ", serial, re.M)
    if engine == "kvm" and bp and int(bp.group(1), 16) == step + 1:
        pytest.xfail("this host delivers a ring-3 INT3 to the guest: a breakpoint in ring 3 "
                     "never stops")
    values = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)]
    entry = symbol(elf, "sc_entry")
    assert values == [step, UCODE, entry, KCODE, entry + 3], out
    assert_passed(status, serial, engine)
