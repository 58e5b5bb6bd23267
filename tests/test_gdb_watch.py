"""gdb watchpoints (Z2 write, Z3 read, Z4 access), end to end with real gdb
and a raw RSP client, on every engine: in the debugger's own DR0-3 where
the engine's data breakpoints fire (emu always; kvm when its probe saw one
fire), else, and beyond four registers, on the engine's watched ranges
(emu: exact access check; kvm here: page traps). Either way gdb gets
hardware watchpoints and the stop comes right after the accessing
instruction. tests/test_watch_pages.py covers sizes, shapes and counts.

The guest is gdb_target.elf test=watch (see guests/gdb_target.c)."""
import re

import pytest

from conftest import run_vmdb
from gdbclient import gdb_batch, RspClient, start_gdb_vmdb, symbol

_HW_DATA = {}


def hw_watch(vmdb_bin, engine):
    """Does this engine have working data breakpoints here (its probe)?
    Only the guest's own DR0-3 depend on it now."""
    if engine == "emu":
        return True
    if engine not in _HW_DATA:
        out = run_vmdb(vmdb_bin, "--engine", engine, "--probe").stdout
        m = re.search(r"^hardware data breakpoints: (yes|no)", out, re.M)
        assert m, out
        _HW_DATA[engine] = m.group(1) == "yes"
    return _HW_DATA[engine]


def pcs(out):
    """Every `p/x $pc` value, in order."""
    return [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]


def changes(out):
    """(watchpoint kind word, expression, old, new) of every value-change stop."""
    return re.findall(r"(Hardware watchpoint|Watchpoint) \d+: (\S+)\n\nOld value = (\S+)\n"
                      r"New value = (\S+)", out)


def start(start_vmdb, guest, free_port, *args):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=watch", *args,
                                port=free_port())
    return elf, vm, target


def test_watch_write_stops_after_the_store(start_vmdb, guest, free_port, engine):
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break test_watch", "continue", "watch gdb_watch_var",
        "continue", "p/x $pc", "continue", "p/x $pc", "delete", "continue"])
    word = "Hardware watchpoint"
    assert f"{word} 2: gdb_watch_var" in out, out
    assert changes(out) == [(word, "gdb_watch_var", "0", "1"),
                            (word, "gdb_watch_var", "1", "2")], out
    after = symbol(elf, "gdb_watch_after")
    assert pcs(out) == [after, after], out
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1
    assert "sum 21, field 0x303" in vm.serial_text()


def test_caps_names_the_watch_mechanism(start_vmdb, guest, free_port, vmdb_bin, engine):
    """`monitor info caps` says where watchpoints live on this engine."""
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, ["monitor info caps", "continue"])
    line = re.search(r"^watchpoints: (.*)$", out, re.M)
    assert line, out
    if engine == "emu":
        assert line.group(1).startswith("write and access: the debugger's DR0-3"), out
        assert "exact access check" in line.group(1), out
    elif hw_watch(vmdb_bin, engine):
        assert "then page traps" in line.group(1), out
    else:
        assert line.group(1).startswith("page traps: "), out
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1


def test_awatch_and_rwatch_stop_after_the_read(start_vmdb, guest, free_port, engine):
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break test_watch", "continue", "awatch gdb_read_var", "continue", "p/x $pc",
        "delete", "rwatch gdb_read_var", "continue", "p/x $pc", "delete", "continue"])
    assert re.search(r"Hardware access \(read/write\) watchpoint 2: gdb_read_var\n\n"
                     r"Value = 7\n", out), out
    assert re.search(r"Hardware read watchpoint 3: gdb_read_var\n\nValue = 7\n", out), out
    after = symbol(elf, "gdb_read_after")
    assert pcs(out) == [after, after], out
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1


def test_watch_two_byte_field_at_odd_address(start_vmdb, guest, free_port, engine):
    """gdb_odd.field sits at offset 1: two 1-byte pieces. The write to its
    neighbour gdb_odd.lead just before must not stop."""
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break test_watch", "continue", "watch gdb_odd.field",
        "continue", "p/x $pc", "continue", "p/x $pc", "delete", "continue"])
    word = "Hardware watchpoint"
    assert changes(out) == [(word, "gdb_odd.field", "0", "257"),
                            (word, "gdb_odd.field", "257", "514")], out
    after = symbol(elf, "gdb_odd_after")
    assert pcs(out) == [after, after], out
    assert vm.wait(30) == 1


def test_five_watchpoints(start_vmdb, guest, free_port, engine):
    """gdb_wv[0..4]: four fill DR0-3 where they work, the fifth goes to the
    engine's watched ranges; all five stop, in the order of the stores."""
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break test_watch", "continue",
        *[f"watch gdb_wv[{k}]" for k in range(5)], *["continue"] * 6, "delete",
        "continue"])
    assert changes(out) == [("Hardware watchpoint", f"gdb_wv[{k}]", "0", "1")
                            for k in range(5)] + \
        [("Hardware watchpoint", "gdb_wv[0]", "1", "2")], out
    assert vm.wait(30) == 1


def test_stepi_onto_a_write_reports_the_watchpoint(start_vmdb, guest, free_port, engine):
    """A step whose instruction writes the watched variable stops as a
    watchpoint (DR6.BS and the hit together), so gdb shows the change."""
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break *gdb_write_watch", "continue", "watch gdb_watch_var", "stepi", "p/x $pc",
        "delete", "continue"])
    assert changes(out) == [("Hardware watchpoint", "gdb_watch_var", "0", "1")], out
    assert pcs(out) == [symbol(elf, "gdb_watch_after")], out
    assert vm.wait(30) == 1


def test_guest_own_data_breakpoint_is_separate(start_vmdb, guest, free_port, vmdb_bin,
                                               engine):
    """The guest's own DR0 watches gdb_own_var while gdb watches the same
    variable: gdb sees its three hits, the guest's handler its three #DBs
    and nothing else."""
    if not hw_watch(vmdb_bin, engine):
        pytest.skip(f"{engine}: the guest's own data breakpoints never fire here")
    elf, vm, target = start(start_vmdb, guest, free_port)
    out = gdb_batch(elf, target, [
        "break test_watch", "continue", "watch gdb_own_var", "continue", "continue",
        "continue", "delete", "continue"])
    assert [c[2:] for c in changes(out)] == [("0", "1"), ("1", "2"), ("2", "3")], out
    assert vm.wait(30) == 1
    assert "watch: own #DB 3 (other #DB 0)" in vm.serial_text()


# ---- raw RSP ----

def raw_client(start_vmdb, guest, free_port, *args):
    elf, vm, target = start(start_vmdb, guest, free_port, *args)
    c = RspClient(target)
    c.request("qSupported:swbreak+;hwbreak+")    # as gdb does: stop reasons named
    return elf, vm, c


def test_raw_stop_reply_and_step_over(start_vmdb, guest, free_port, engine):
    """T05watch:ADDR;thread:N; with ADDR the watchpoint's start; continuing
    from a breakpoint on the writing instruction (vmdb steps over it) still
    reports the watchpoint; removal; a watchpoint on 3 bytes is split."""
    elf, vm, c = raw_client(start_vmdb, guest, free_port)
    var, store, after = (symbol(elf, n) for n in
                         ("gdb_watch_var", "gdb_write_watch", "gdb_watch_after"))
    assert c.request("Z0,%x,1" % store) == b"OK"
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))
    assert c.request("Z2,%x,8" % var) == b"OK"
    assert c.request("Z2,%x,8" % var) == b"OK"          # twice is harmless
    stop = c.request("vCont;c")                           # steps over the int3 first
    assert stop.startswith(b"T05watch:%x;thread:1;" % var), stop
    assert c.request("p10") == after.to_bytes(8, "little").hex().encode()
    assert c.request("z2,%x,8" % var) == b"OK"
    # 3 bytes from var+5: pieces var+5 (1) and var+6 (2); the 8-byte store hits
    assert c.request("Z2,%x,3" % (var + 5)) == b"OK"
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05watch:%x;thread:1;" % (var + 5)), stop
    assert c.request("z2,%x,3" % (var + 5)) == b"OK"
    assert c.request("z0,%x,1" % store) == b"OK"
    # access watchpoint: awatch: in the reply
    read = symbol(elf, "gdb_read_var")
    assert c.request("Z4,%x,8" % read) == b"OK"
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05awatch:%x;thread:1;" % read), stop
    assert c.request("p10") == symbol(elf, "gdb_read_after").to_bytes(8, "little").hex().encode()
    c.kill()
    vm.wait(30)


def test_raw_bad_watchpoints(start_vmdb, guest, free_port, engine):
    elf, vm, c = raw_client(start_vmdb, guest, free_port)
    var = symbol(elf, "gdb_watch_var")
    assert c.request("Z2,%x,0" % var) == b"E22"                  # empty range
    assert c.request("Z4,ffffffffffffffff,2") == b"E22"          # wraps
    assert c.request("Z2,%x,8x" % var) == b"E22"                 # not hex
    assert c.request("Z2,%x" % var) == b"E22"                    # no kind
    assert c.request("Z2,%x,8;X1,0" % var) == b"OK"              # conditions ignored
    assert c.request("z2,%x,8" % var) == b"OK"
    assert c.request("Z2,%x,100000" % var) == b"OK"              # any length: a MiB
    assert c.request("Z4,%x,21" % (var + 1)) == b"OK"            # 33 unaligned bytes
    assert c.request("Z3,%x,8" % var) == b"OK"                   # reads only
    assert c.request("z2,%x,100000" % var) == b"OK"
    assert c.request("z4,%x,21" % (var + 1)) == b"OK"
    assert c.request("z3,%x,8" % var) == b"OK"
    assert c.request("z2,%x,8" % var) in (b"OK", b"")            # removing nothing is fine
    # DEBUG_MAX_WATCH (64) of them, then one more: refused with words
    for k in range(64):
        assert c.request("Z2,%x,1" % (var + k)) == b"OK", k
    assert c.request("QEnableErrorStrings") == b"OK"
    reply = c.request("Z3,%x,1" % (var + 64))
    code, text = reply.split(b";")
    assert code == b"E28", reply
    assert "all 64 watchpoints are in use" in bytes.fromhex(text.decode()).decode(), reply
    for k in range(64):
        assert c.request("z2,%x,1" % (var + k)) == b"OK", k
    c.kill()
    vm.wait(30)


def test_raw_watch_reports_the_writing_vcpu(start_vmdb, guest, free_port, engine):
    """Every vCPU gets the watchpoint; the stop names the vCPU that wrote."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "4", "--cmdline", "test=smp",
                                port=free_port())
    c = RspClient(target)
    hits = symbol(elf, "gdb_hits")
    assert c.request("Z2,%x,8" % (hits + 8 * 2)) == b"OK"
    stop = c.request("vCont;c")
    m = re.match(rb"T05watch:%x;thread:(\d+);" % (hits + 16), stop)
    assert m, stop
    thread = int(m.group(1), 16)
    assert c.request("qC") == b"QC%x" % thread
    # the writer is the CPU the guest numbered 2 (APs number themselves in
    # the order they check in): its r12 holds 0x100 + its APIC id
    apic = int.from_bytes(bytes.fromhex(c.request("p0c").decode()), "little") - 0x100
    assert apic == thread - 1, (apic, thread)
    size = int(re.search(r"= (\d+)", gdb_batch(elf, None, ["p sizeof(struct rt_cpu)"],
                                                connect=False)).group(1))
    cpus = symbol(elf, "rt_cpus")
    ids = {}
    for k in range(4):
        raw = bytes.fromhex(c.request("m%x,8" % (cpus + k * size + 8)).decode())
        ids[int.from_bytes(raw[4:], "little")] = int.from_bytes(raw[:4], "little")
    assert ids[apic] == 2, ids
    c.kill()
    vm.wait(30)
