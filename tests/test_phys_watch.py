"""Physical watchpoints: with `monitor phys on`, gdb's watch, rwatch and
awatch (Z2/Z3/Z4) are on guest-physical addresses and stop whichever
linear alias touches those bytes, right after the instruction (emu: its
exact access check compares each access's physical bytes; kvm: page traps,
which are by physical page anyway). The guest is phys_watch.elf
(guests/phys_watch.c): one physical page under four linear addresses, one
labelled access after another, and its own check of every value."""
import re

from gdbclient import RspClient, gdb_batch, start_gdb_vmdb, symbol
from test_debug_hardening import monitor

WRITES = ["a", "b", "cross", "rep", "ident", "hot"]   # pw_after_X of every store into the frame


def pcs(out):
    return [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]


def stops(out, frame):
    """(kind, old, new) or (kind, value) of every watchpoint stop gdb printed."""
    expr = re.escape(f"*(long *){frame:#x}")
    found = re.findall(rf"Hardware (watchpoint|read watchpoint) \d+: {expr}\n\n"
                       r"(?:Old value = (\d+)\nNew value = (\d+)|Value = (\d+))", out)
    return [(k, o, n) if o else (k, v) for k, o, n, v in found]


def finished(vm, checks=8):
    vm.wait(30)
    assert f"SUMMARY: {checks} checks, 0 failed" in vm.serial_text(), vm.serial_text()


def test_gdb_physical_watch_through_every_alias(start_vmdb, guest, free_port, engine):
    elf = guest("phys_watch")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    frame = symbol(elf, "pw_frame")
    w = f"*(long *){frame:#x}"
    cmds = ["break pw_start", "continue", "monitor phys on", f"watch {w}",
            "continue", "p/x $pc", "continue", "p/x $pc", "delete",
            f"rwatch {w}", "continue", "p/x $pc", "delete",
            f"watch {w}", "continue", "p/x $pc", "continue", "p/x $pc",
            "continue", "p/x $pc", "continue", "p/x $pc",
            "monitor info watchpoints", "delete", "continue"]
    out = gdb_batch(elf, target, cmds)
    labels = ["a", "b", "read", "cross", "rep", "ident", "hot"]
    assert pcs(out) == [symbol(elf, f"pw_after_{x}") for x in labels], out
    assert stops(out, frame) == [
        ("watchpoint", str(0x7000 + 999), str(0x1111)),   # alias A
        ("watchpoint", str(0x1111), str(0x2222)),  # alias B
        ("read watchpoint", str(0x2222)),          # the load through alias B
        ("watchpoint", str(0x2222), str(0x44332211)),   # the second piece of the store
        ("watchpoint", str(0x44332211), str(0x44332299)),   # REP MOVSB's last byte
        ("watchpoint", str(0x44332299), str(0x5555)),  # the identity address
        ("watchpoint", str(0x5555), str(0x7000)),  # translated code, its page slot filled
    ], out
    how = ("engine access check (exact, by physical address)" if engine == "emu"
           else "page trap (page write-protected)")
    assert f"while it last ran:\nwrite  8 bytes at physical {frame:#x}: {how}\n" in out, out
    assert "exited with code 01" in out, out
    finished(vm)


def test_raw_physical_watch_stop_reply_and_removal(start_vmdb, guest, free_port, engine):
    """The stop reply names the physical address the client inserted;
    z2 with phys on removes it; linear and physical ones coexist and
    `monitor info watchpoints` tells them apart, also after phys off."""
    elf = guest("phys_watch")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    c = RspClient(target)
    frame = symbol(elf, "pw_frame")
    assert c.request("Z0,%x,1" % symbol(elf, "pw_start")) == b"OK"
    assert re.match(rb"T05thread:1;", c.request("vCont;c"))
    text, reply = monitor(c, "phys on")
    assert reply == b"OK", text
    assert c.request("Z2,%x,8" % frame) == b"OK"
    c.request("QEnableErrorStrings")
    reply = c.request("Z2,fee00000,4")               # the local APIC: not RAM
    assert reply.startswith(b"E"), reply
    assert b"not all guest RAM" in bytes.fromhex(reply.split(b";", 1)[1].decode()), reply
    text, reply = monitor(c, "phys off")
    assert reply == b"OK", text
    other = symbol(elf, "pw_read")       # a linear one beside it
    assert c.request("Z2,%x,8" % other) == b"OK"
    text, reply = monitor(c, "info watchpoints")
    assert reply == b"OK", text
    lines = text.splitlines()
    assert len(lines) == 3, text
    assert lines[0].startswith("write  8 bytes at physical %#x: " % frame), text
    assert lines[1].startswith("write  8 bytes at linear %#x: " % other), text
    assert lines[2] == "(phys is off: the physical ones stay until removed with phys on)", text
    assert c.request("z2,%x,8" % other) == b"OK"
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05watch:%x;thread:1;" % frame), stop
    assert c.request("p10") == symbol(elf, "pw_after_a").to_bytes(8, "little").hex().encode()
    # phys off: z2 names a linear one, and there is none; the physical one stays
    assert c.request("z2,%x,8" % frame) == b"OK"
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05watch:%x;thread:1;" % frame), stop
    assert c.request("p10") == symbol(elf, "pw_after_b").to_bytes(8, "little").hex().encode()
    # left in, as gdb never does: the rest of the stores, the last one by
    # code emu translated before the watchpoint was there
    for label in WRITES[2:]:
        stop = c.request("vCont;c")
        assert stop.startswith(b"T05watch:%x;thread:1;" % frame), (label, stop)
        pc = symbol(elf, f"pw_after_{label}")
        assert c.request("p10") == pc.to_bytes(8, "little").hex().encode(), label
    text, reply = monitor(c, "phys on")
    assert c.request("z2,%x,8" % frame) == b"OK"
    text, reply = monitor(c, "info watchpoints")
    assert text.startswith("none inserted now"), text     # removed: the last run's only
    assert c.request("z2,%x,8" % frame) == b"OK"         # removing twice is no error
    assert c.request("z0,%x,1" % symbol(elf, "pw_start")) == b"OK"
    assert c.request("vCont;c") == b"W01", vm.serial_text()
    finished(vm)


def test_linear_watch_unchanged_with_phys_off(start_vmdb, guest, free_port, engine):
    """The same watch with phys off is a linear one on the identity
    address: on emu (exact, by linear address) only the store through that
    address stops; kvm's page trap is on the physical page the address
    maps to, so there every store into the frame stops, as before."""
    elf = guest("phys_watch")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    frame = symbol(elf, "pw_frame")
    n = 1 if engine == "emu" else len(WRITES)
    cmds = ["break pw_start", "continue", f"watch *(long *){frame:#x}"]
    cmds += ["continue", "p/x $pc"] * n + ["monitor info watchpoints", "delete", "continue"]
    out = gdb_batch(elf, target, cmds)
    want = ["ident"] if engine == "emu" else WRITES
    assert pcs(out) == [symbol(elf, f"pw_after_{x}") for x in want], out
    assert re.search(rf"while it last ran:\nwrite  8 bytes at linear {frame:#x}: ", out), out
    assert "exited with code 01" in out, out
    finished(vm)
