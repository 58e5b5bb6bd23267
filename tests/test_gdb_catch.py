"""Exceptions the user asked to catch (`monitor catch`), end to end: the
stop comes at the handler the guest's IDT names, with the signal gdb
expects; the IDT is followed when the guest loads another one; the int3
fallback when DR0-3 are taken. Also reads through a 1 GiB page."""
import re

import pytest

from gdbclient import gdb_batch, RspClient, start_gdb_vmdb, symbol



def test_catch_ud_pf_de_and_idt_reload(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=catch", port=free_port())
    out = gdb_batch(elf, target, [
        "break main", "continue", "monitor catch ud pf 0", "continue", "p $pc", "continue",
        "continue", "break gdb_idt_reloaded", "continue", "continue", "p $pc", "monitor catch",
        "monitor catch off", "monitor catch", "continue"])
    stops = re.findall(r"Program received signal (\w+)", out)
    assert stops == ["SIGILL", "SIGSEGV", "SIGFPE", "SIGILL"], out
    pcs = re.findall(r"^\$\d+ = .*(0x[0-9a-f]+) <(\w+)>", out, re.M)
    assert [p[1] for p in pcs] == ["isr_6", "gdb_ud_alt"], out
    # what was caught, and from where, on gdb's console
    took = re.findall(r"vmdb: vCPU 0 took (#\w\w)(.*) at rip (0x[0-9a-f]+); stopped at its "
                      r"handler (0x[0-9a-f]+)", out)
    assert [t[0] for t in took] == ["#UD", "#PF", "#DE", "#UD"], out
    where = ["gdb_ud2", "gdb_pf", "gdb_de", "gdb_ud2_again"]
    assert [int(t[2], 16) for t in took] == [symbol(elf, w) for w in where], out
    assert "error code 0x0, cr2 0x7fff00000000" in took[1][1], out
    assert int(took[3][3], 16) == symbol(elf, "gdb_ud_alt"), out
    assert re.search(r"#UD \(6\): handler (0x[0-9a-f]+), debug register DR\d", out), out
    assert "no exceptions caught" in out, out
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1
    assert "catch: ud=1 pf=1 de=1 alt=1" in vm.serial_text()


def test_catch_falls_back_to_int3(start_vmdb, guest, free_port):
    """With DR0-3 all taken by the client, catching writes an int3 into the
    handler; memory reads do not show it; the raw stop reply carries the
    signal and the thread; a client hbreak takes a slot back from catch."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=catch", port=free_port())
    c = RspClient(target)
    c.request("qSupported:swbreak+")
    main, ud2 = symbol(elf, "main"), symbol(elf, "gdb_ud2")
    assert c.request("Z0,%x,1" % main) == b"OK"
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))
    assert c.request("z0,%x,1" % main) == b"OK"
    handler = symbol(elf, "isr_6")
    before = c.request("m%x,4" % handler)
    spare = [0x7000 + 16 * i for i in range(4)]     # never executed
    for a in spare:
        assert c.request("Z1,%x,1" % a) == b"OK"
    c.request("qRcmd," + b"catch ud".hex())
    listing = b""
    c.send_raw(b"$qRcmd," + b"catch".hex().encode() + b"#" +
               b"%02x" % (sum(b"qRcmd," + b"catch".hex().encode()) & 0xff))
    assert c.read_byte() == b"+"
    while True:
        reply = c.read_packet()
        if reply == b"OK":
            break
        listing += bytes.fromhex(reply[1:].decode())
    assert b"int3 in guest memory" in listing, listing
    assert c.request("m%x,4" % handler) == before          # the int3 is hidden
    stop = c.request("vCont;c")
    assert re.fullmatch(rb"T04thread:1;core:0;(..:[0-9a-f]{16};)*", stop), stop
    assert c.request("p10") == handler.to_bytes(8, "little").hex().encode()
    assert c.request("?").startswith(b"T04thread:1;")
    # the frame on the handler's stack holds the faulting rip
    rsp = int.from_bytes(bytes.fromhex(c.request("p7").decode()), "little")
    assert int.from_bytes(bytes.fromhex(c.request("m%x,8" % rsp).decode()), "little") == ud2
    c.request("qRcmd," + b"catch off".hex())
    assert c.request("m%x,4" % handler) == before
    for a in spare:
        assert c.request("z1,%x,1" % a) == b"OK"
    c.kill()
    vm.wait(30)


def test_catch_bad_vector_and_help(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    out = gdb_batch(elf, target, ["monitor help", "monitor catch 32", "monitor catch nope",
                                  "monitor catch", "monitor catch gp", "kill"])
    assert "catch VEC" in out, out
    assert "'32' is not an exception vector" in out and "'nope' is not" in out, out
    assert "no exceptions caught" in out, out
    # at the first instruction there is no IDT yet: said, not hidden
    assert "#GP (13): not armed on 1 of 1 vCPUs (first vCPU 0): vector beyond the IDT limit" \
        in out, out
    vm.wait(30)


def test_read_and_write_through_1gib_page(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=bigpage", port=free_port())
    big = 0x100000000           # PDPT entry 4: one 1 GiB page onto physical 0
    out = gdb_batch(elf, target, [
        "break gdb_mem_poll", "continue",
        f"x/1gx {big} + (long)&gdb_big_marker",
        f"set var *(long *)({big} + (long)&gdb_flag) = 21",
        f"x/1gx {big + 0x40000000}",       # beyond the page: not mapped
        "delete", "continue"])
    assert re.search(r":\s+0x1b16b16e0000cafe", out), out
    assert "Cannot access memory at address 0x140000000" in out, out
    assert vm.wait(30) == 43, out
    assert "gdb_flag = 0x15" in vm.serial_text()


@pytest.mark.parametrize("fault,insn,leave", [
    ("ud", r"ud2", "continue"), ("pf", r"mov +\(%rdx\),%rax", "continue"),
    ("de", r"div +%ecx", "detach")])
def test_triple_fault_stops_where_it_happened(start_vmdb, guest, free_port, fault, insn, leave):
    """With gdb attached a triple fault does not end the machine at once:
    the vCPU stops at the instruction whose exception could not be
    delivered (SIGSEGV), gdb's console says what happened, and the state
    is the fault's (CR2 of the #PF, the guest's IDT of limit 0). Continuing
    or detaching then ends the machine as it would have ended without gdb."""
    elf = guest("triple")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", f"fault={fault}",
                                port=free_port())
    out = gdb_batch(elf, target, ["continue", "x/i $pc", "p/x $cr2", "p $idtr_limit", leave])
    assert re.search(r"^vmdb: vCPU 0: triple fault: #\w\w \(vector \d+\) could not be delivered"
                     r".* guest stopped at RIP (0x[0-9a-f]+): .*; resuming it ends the machine$",
                     out, re.M), out
    assert "Program received signal SIGSEGV" in out, out
    assert re.search(rf"^=> 0x[0-9a-f]+ <main\+\d+>:\t{insn}$", out, re.M), out
    assert re.search(r"^\$1 = 0x100000000000$" if fault == "pf" else r"^\$1 = 0x0$", out,
                     re.M), out
    assert re.search(r"^\$2 = 0$", out, re.M), out
    if leave == "continue":
        assert "Program terminated with signal SIGSEGV" in out, out
    assert vm.wait(30) == 1
    assert re.search(r"vCPU 0: triple fault: .* could not be delivered", vm.stderr_text())


def test_triple_fault_without_a_client_ends_the_machine(start_vmdb, guest, free_port):
    """Listening for gdb but with nobody attached, a triple fault ends the
    machine as it always did: nothing waits for a debugger that never comes."""
    vm, _ = start_gdb_vmdb(start_vmdb, guest("triple"), port=free_port(), wait=False)
    assert vm.wait(30) == 1
    assert "triple fault: #UD (vector 6)" in vm.stderr_text()


def test_catch_output_stops_after_the_write(start_vmdb, guest, free_port):
    """`monitor catch output REGEX`: vCPU 1 of demo.elf prints "cpu1 tick N
    counter M"; the stop comes right after its port write of the byte with
    which the line so far matches (the last of "counter"), on that vCPU,
    inside the guest's printf; the console says so; the serial output ends
    there, as nothing ran after it. A bad pattern is refused in words."""
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, [
        "monitor catch output (", "monitor catch output cpu1 tick [0-9]+ counter",
        "continue", "bt", "kill"])
    assert "monitor catch output: '(' is not a regular expression" in out, out
    assert "serial output matching /cpu1 tick [0-9]+ counter/" in out, out
    m = re.search(r"^vmdb: vCPU 1's serial output matched /cpu1 tick \[0-9\]\+ counter/: "
                  r'"(cpu1 tick \d+ counter)"; stopped after the write$', out, re.M)
    assert m, out
    assert 'Thread 2 "vCPU 1" received signal SIGTRAP' in out, out
    assert re.search(r"^#\d+ .* in demo_tick \(cpu=", out, re.M), out
    vm.wait(30)
    assert vm.serial_text().endswith(m.group(1)), vm.serial_text()[-200:]
