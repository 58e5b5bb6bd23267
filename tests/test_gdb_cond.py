"""Breakpoint conditions evaluated inside vmdb (ConditionalBreakpoints+):
gdb sends its agent expressions with the Z0 packet, a false condition
costs no stop reply and the guest does not stop, a true one stops as any
hit; several conditions on one address stop when any is true; one that
cannot be evaluated stops and says why. The guest checks from the inside
that every call on the hot path ran whole (the skipped hits stepped over
the breakpoint invisibly)."""
import re

from gdbclient import gdb_batch, RspClient, start_gdb_vmdb, symbol

TARGET_EVAL = ["set breakpoint condition-evaluation target", "set debug remote 1"]


def run_cond(start_vmdb, guest, free_port, commands, n=1000):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", f"test=cond n={n}",
                                port=free_port())
    out = gdb_batch(elf, target, TARGET_EVAL + commands)
    return vm, out


def breakpoint_stops(out):
    """Stop replies for a breakpoint hit (gdb's own steps over a breakpoint
    also get T05, without swbreak)."""
    return len(re.findall(r"Packet received: T05[^\n]*swbreak", out))


def values(out):
    return [int(v) for v in re.findall(r"^\$\d+ = (\d+)$", out, re.M)]


def guest_passed(vm, out, n=1000):
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1
    assert f"cond: {n} calls, sum {n * (n + 1) // 2}" in vm.serial_text()


def test_condition_on_hot_path_stops_once(start_vmdb, guest, free_port):
    vm, out = run_cond(start_vmdb, guest, free_port, [
        "break gdb_cond_f if i == 500", "continue", "p i", "p gdb_cond_last", "continue"])
    assert re.search(r"Sending packet: \$Z0,[0-9a-f]+,1;X[0-9a-f]+,[0-9a-f]+#", out), out
    # one stop reply: the 999 false hits never left vmdb
    assert breakpoint_stops(out) == 1, out
    assert out.count("Breakpoint 1, ") == 1, out
    assert values(out) == [500, 499], out
    guest_passed(vm, out)


def test_conditions_on_registers_memory_and_merged(start_vmdb, guest, free_port):
    # memory (the sum so far) and a register ($rdi is i at the entry);
    # two breakpoints at one address: gdb merges their conditions into
    # one Z0, and a hit stops when either holds
    vm, out = run_cond(start_vmdb, guest, free_port, [
        "break gdb_cond_f if gdb_cond_sum > 5000 && $rdi % 7 == 0",
        "continue", "p i", "delete",
        "break gdb_cond_f if i == 300", "break gdb_cond_f if i == 600",
        "continue", "p i", "continue", "p i", "delete", "continue"])
    first = next(i for i in range(1, 1001) if i * (i - 1) // 2 > 5000 and i % 7 == 0)
    assert re.search(r"\$Z0,[0-9a-f]+,1;X[0-9a-f]+,[0-9a-f]+X[0-9a-f]+,[0-9a-f]+#", out), out
    assert breakpoint_stops(out) == 3, out
    assert values(out) == [first, 300, 600], out
    guest_passed(vm, out)


def test_condition_that_fails_stops_and_says_why(start_vmdb, guest, free_port):
    vm, out = run_cond(start_vmdb, guest, free_port, [
        "break gdb_cond_f if *(long *)0x7fff00000000 == 1", "continue", "p i", "delete",
        "continue"], n=10)
    assert re.search(r"vmdb: the breakpoint at 0x[0-9a-f]+ stopped the vCPU: its condition "
                     r"could not be evaluated: agent expression: cannot read 8 bytes at "
                     r"0x7fff00000000", out), out
    assert values(out) == [1], out
    guest_passed(vm, out, n=10)


DPRINTF = ["set dprintf-style agent",
           r'dprintf gdb_cond_f,"dp %d %lu\n", i, gdb_cond_last']


def printed(out):
    return [(int(a), int(b)) for a, b in re.findall(r"^dp (\d+) (\d+)$", out, re.M)]


def test_dprintf_agent_runs_in_vmdb_without_stops(start_vmdb, guest, free_port):
    """dprintf-style agent: the printf runs inside vmdb at every hit and its
    text reaches gdb as O packets while the guest runs on: a line per call,
    in order, with the values of that moment, and not one stop reply."""
    vm, out = run_cond(start_vmdb, guest, free_port, DPRINTF + ["continue"], n=300)
    assert re.search(r"\$Z0,[0-9a-f]+,1;cmds:[01],X[0-9a-f]+,[0-9a-f]+#", out), out
    assert printed(out) == [(i, i - 1) for i in range(1, 301)], out
    assert "Packet received: T" not in out, out
    guest_passed(vm, out, n=300)


def test_dprintf_with_a_condition(start_vmdb, guest, free_port):
    """Conditions and commands together: the commands run at the hits whose
    condition holds, and still nothing stops."""
    vm, out = run_cond(start_vmdb, guest, free_port, DPRINTF + [
        "condition 1 i % 7 == 0", "continue"], n=300)
    assert re.search(r"\$Z0,[0-9a-f]+,1;X[0-9a-f]+,[0-9a-f]+;cmds:[01],X[0-9a-f]+,[0-9a-f]+#",
                     out), out
    assert printed(out) == [(i, i - 1) for i in range(7, 301, 7)], out
    assert "Packet received: T" not in out, out
    guest_passed(vm, out, n=300)


def test_dprintf_persists_after_detach(start_vmdb, guest, free_port):
    """gdb keeps a dprintf inserted when it detaches (persist, with
    always-inserted breakpoints): vmdb goes on printing it, on its
    stderr, while the guest runs to its end."""
    vm, out = run_cond(start_vmdb, guest, free_port, [
        "set breakpoint always-inserted on"] + DPRINTF + [
        "break guests/gdb_target.c:378 if i == 100", "continue", "p i", "detach"], n=300)
    assert re.search(r"\$Z0,[0-9a-f]+,1;cmds:1,", out), out
    assert printed(out) == [(i, i - 1) for i in range(1, 101)], out
    assert values(out) == [100], out
    assert vm.wait(30) == 1
    assert printed(vm.stderr_text()) == [(i, i - 1) for i in range(101, 301)], vm.stderr_text()
    assert "cond: 300 calls, sum 45150" in vm.serial_text()


def test_dprintf_that_fails_stops_and_says_why(start_vmdb, guest, free_port):
    """Each hit whose command fails stops with a line saying why (gdb then
    goes on by itself, as after any dprintf)."""
    vm, out = run_cond(start_vmdb, guest, free_port, [
        "set dprintf-style agent", r'dprintf gdb_cond_f,"bad %d\n", *(int *)0x7fff00000000',
        "continue"], n=10)
    why = re.findall(r"^vmdb: the breakpoint at 0x[0-9a-f]+ stopped the vCPU: its command "
                     r"could not be run: agent expression: cannot read 4 bytes at "
                     r"0x7fff00000000$", out, re.M)
    assert len(why) == 10 == breakpoint_stops(out), out
    assert "bad " not in out.replace("Packet", ""), out
    guest_passed(vm, out, n=10)


def test_malformed_conditions_get_errors(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=cond n=10",
                                port=free_port())
    c = RspClient(target)
    try:
        features = c.request("qSupported:swbreak+")
        assert b"ConditionalBreakpoints+" in features and b"BreakpointCommands+" in features
        addr = f"{symbol(elf, 'gdb_cond_f'):x}"
        for bad in (";X", ";X2", ";X2,22", ";X0,", ";X401,00", ";Xz,00", ";Q1,00",
                    ";X1,27" * 9, ";cmds:persist,X1,27", ";cmds:1,", ";cmds:2,X1,27",
                    ";cmds:1,X1,2", ";cmds:0," + "X1,27" * 9, ";cmds:1,Q"):
            r = c.request(f"Z0,{addr},1{bad}")
            assert r.startswith(b"E"), (bad, r)
        # conditions, and commands after them (BreakpointCommands+)
        assert c.request(f"Z0,{addr},1;X1,27;X3,220027;cmds:1,X1,27X1,27") == b"OK"
        assert c.request(f"z0,{addr},1") == b"OK"
        assert c.request("c").startswith(b"W01")
    finally:
        c.close()
    assert vm.wait(30) == 1
