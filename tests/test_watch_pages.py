"""gdb's watch, rwatch and awatch on every engine, of any size and number:
on kvm here (whose data breakpoints never fire) as page traps, on emu in
DR0-3 and then in the engine's exact access check. The guest is
watch_pages.elf (guests/watch_pages.c): one labelled access after another,
and a check from inside that every access got its value while its page was
trapped. One guest run per engine covers the shapes, ten watchpoints at
once, a string instruction, and writes from several vCPUs; a raw client checks what `monitor
info watchpoints` says and the stop replies gdb does not show."""
import re

import pytest

from gdbclient import RspClient, gdb_batch, start_gdb_vmdb
from test_debug_hardening import monitor
from test_gdb_nonstop import gdb_nonstop
from test_gdb_watch import changes, pcs, symbol

SHAPES = [
    ("watch", "wp.b1"), ("watch", "wp.w2"), ("watch", "wp.d4"), ("watch", "wp.q8"),
    ("watch", "wp.s16"), ("watch", "*(unsigned char (*)[3])&wp.buf[1]"),
    ("watch", "wp.cross"), ("rwatch", "wp.r8"), ("awatch", "wp.a4"),
    ("watch", "wp.pad0[11]"),
]
# (label after the access, what gdb prints for it)
STOPS = [
    ("b1", "Hardware watchpoint 2: wp.b1\n\nOld value = 0 '\\000'\nNew value = 34 '\"'\n"),
    ("w2", ("Hardware watchpoint", "wp.w2", "0", "13124")),
    ("d4", ("Hardware watchpoint", "wp.d4", "0", "1432778632")),
    ("q8", ("Hardware watchpoint", "wp.q8", "0", "9833440827789222417")),
    ("s16a", "Old value = {a = 0, b = 0}\nNew value = {a = 1, b = 0}"),
    ("s16b", "Old value = {a = 1, b = 0}\nNew value = {a = 1, b = 2}"),
    ("buf", 'Old value = "\\000\\000"\nNew value = "\\000\\000\\n"'),
    ("cross", 'Old value = "\\000\\000\\000\\000\\000\\000\\000"\n'
              'New value = "\\001\\002\\003\\004\\005\\006\\a\\b"'),
    ("cross2", 'Old value = "\\001\\002\\003\\004\\005\\006\\a\\b"\n'
               'New value = "\\001\\002\\003\\004\\005\\006\\a\\200"'),
    ("r8", "Hardware read watchpoint 9: wp.r8\n\nValue = 119\n"),
    ("a4r", "Hardware access (read/write) watchpoint 10: wp.a4\n\nValue = 4660\n"),
    ("a4w", "Hardware access (read/write) watchpoint 10: wp.a4\n\nOld value = 4660\n"
            "New value = 153\n"),
    # the last of four REP STOSB iterations writes it: the stop is after
    # the whole instruction
    ("rep", "Hardware watchpoint 11: wp.pad0[11]\n\nOld value = 0 '\\000'\n"
            "New value = 5 '\\005'\n"),
]


def test_watch_every_shape_and_vcpu(start_vmdb, guest, free_port, engine):
    elf = guest("watch_pages")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "4", port=free_port())
    cmds = ["break wp_start", "continue"] + [f"{k} {e}" for k, e in SHAPES]
    cmds += ["continue", "p/x $pc", "monitor info watchpoints"]
    cmds += ["continue", "p/x $pc"] * (len(STOPS) - 1)
    cmds += ["delete", "break wp_smp_phase", "continue", "watch wp.percpu",
             "continue", "continue", "continue", "delete", "continue"]
    out = gdb_batch(elf, target, cmds)
    assert pcs(out) == [symbol(elf, f"wp_after_{label}") for label, _ in STOPS], out
    for label, seen in STOPS:
        if isinstance(seen, tuple):
            assert seen in changes(out), (label, out)
        else:
            assert seen in out, (label, out)
    # gdb took them out at the stop: vmdb lists them as they were placed
    listing = out[out.index("none inserted now"):].split("\n")[1:11]
    wp = symbol(elf, "wp")
    homes = {}
    for ln in listing:
        m = re.match(r"(write|read|access) +(\d+) bytes? at linear 0x([0-9a-f]+): (.*)$", ln)
        assert m, out
        homes[(m.group(1), int(m.group(2)), int(m.group(3), 16) - wp)] = m.group(4)
    want = [("write", 1, 1), ("write", 2, 2), ("write", 4, 4), ("write", 8, 8),
            ("write", 16, 0x10), ("write", 3, 0x21), ("write", 8, 0xffc), ("read", 8, 0x28),
            ("access", 4, 0x30), ("write", 1, 0x3f)]
    assert sorted(homes) == sorted(want), out
    exact = "engine access check (exact, by linear address)"
    if engine == "emu":     # four fit DR0-3, the rest go to the access check
        assert sorted(h for h in homes.values() if h != exact) == [
            f"DR{k} on all vCPUs" for k in range(4)], out
    else:                   # each shares page 0 with the read watchpoint: unmapped
        assert set(homes.values()) == {"page trap (page unmapped)"}, out
    # three APs wrote their slot in turn: three stops, each by its own vCPU
    percpu = re.findall(r"Thread (\d+)(?: \"[^\"]*\")? hit Hardware watchpoint \d+: wp.percpu\n\n"
                        r"Old value = \{.*\}\nNew value = \{(.*)\}", out)
    assert [v for _, v in percpu] == ["0, 257, 0, 0", "0, 257, 258, 0",
                                      "0, 257, 258, 259"], out
    assert sorted(t for t, _ in percpu) == ["2", "3", "4"], out
    assert "exited with code 01" in out, out
    assert vm.wait(30) == 1
    text = vm.serial_text()
    assert "SUMMARY: 36 checks, 0 failed" in text, text


def test_raw_where_watchpoints_live(start_vmdb, guest, free_port, engine):
    """rwatch: in the stop reply; `monitor info watchpoints` names each
    one's home; a hit outside the range on the same page does not stop;
    removing every watchpoint leaves the guest running right to its end."""
    elf = guest("watch_pages")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    c = RspClient(target)
    c.request("qSupported:swbreak+;hwbreak+")
    wp = symbol(elf, "wp")
    assert c.request("Z0,%x,1" % symbol(elf, "wp_start")) == b"OK"
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))
    for z in ("Z2,%x,1" % (wp + 1), "Z2,%x,2" % (wp + 2), "Z2,%x,4" % (wp + 4),
              "Z2,%x,8" % (wp + 8), "Z2,%x,10" % (wp + 0x10), "Z3,%x,8" % (wp + 0x28),
              "Z2,%x,8" % (wp + 0xffc)):
        assert c.request(z) == b"OK", z
    text, reply = monitor(c, "info watchpoints")
    assert reply == b"OK", text
    lines = text.splitlines()
    assert len(lines) == 7, text
    assert lines[0] == "write  1 byte at linear 0x%x: " % (wp + 1) + (
        "DR0 on all vCPUs" if engine == "emu" else "page trap (page unmapped)"), text
    if engine == "emu":
        assert lines[3].endswith("DR3 on all vCPUs"), text
        assert lines[4].endswith("engine access check (exact, by linear address)"), text
    else:
        # the read watchpoint unmaps page 0; page 1 holds only writes
        assert all(ln.endswith("page trap (page unmapped)") for ln in lines[:6]), text
        assert lines[6] == "write  8 bytes at linear 0x%x: page trap (page unmapped)" % (
            wp + 0xffc), text
    assert lines[5] == "read   8 bytes at linear 0x%x: %s" % (
        wp + 0x28, "engine access check (exact, by linear address)" if engine == "emu"
        else "page trap (page unmapped)"), text
    # the debugger's own writes to trapped pages are not reported and land
    assert c.request("M%x,1:5a" % (wp + 0x38)) == b"OK"          # page 0, no watchpoint
    assert c.request("M%x,1:11" % (wp + 1)) == b"OK"             # b1 itself
    assert c.request("m%x,1" % (wp + 0x38)) == b"5a"
    # the write to wp.lead (same page, no watchpoint) runs on; b1 stops
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05watch:%x;thread:1;" % (wp + 1)), stop
    assert c.request("p10") == symbol(elf, "wp_after_b1").to_bytes(8, "little").hex().encode()
    for z in ("z2,%x,1" % (wp + 1), "z2,%x,2" % (wp + 2), "z2,%x,4" % (wp + 4),
              "z2,%x,8" % (wp + 8), "z2,%x,10" % (wp + 0x10), "z2,%x,8" % (wp + 0xffc)):
        assert c.request(z) == b"OK", z
    # only the read watchpoint is left: the write to r8 runs on, the read stops
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05rwatch:%x;thread:1;" % (wp + 0x28)), stop
    assert c.request("p10") == symbol(elf, "wp_after_r8").to_bytes(8, "little").hex().encode()
    assert c.request("z3,%x,8" % (wp + 0x28)) == b"OK"
    text, reply = monitor(c, "info watchpoints")
    assert text.startswith("none inserted now"), text
    assert c.request("z0,%x,1" % symbol(elf, "wp_start")) == b"OK"
    # a watchpoint left in while the guest remaps its page follows the
    # virtual address from the next resume on (kvm: translated again)
    va = 0x8000000000
    ready, remapped = symbol(elf, "wp_remap_ready"), symbol(elf, "wp_remapped")
    assert c.request("Z0,%x,1" % ready) == b"OK"
    assert c.request("Z0,%x,1" % remapped) == b"OK"
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))
    assert c.request("Z2,%x,8" % va) == b"OK"
    stop = c.request("vCont;c")
    assert stop.startswith(b"T05watch:%x;thread:1;" % va), stop
    assert c.request("p10") == symbol(elf, "wp_after_va_a").to_bytes(8, "little").hex().encode()
    assert re.match(rb"T05thread:1;.*swbreak:;", c.request("vCont;c"))     # wp_remapped
    stop = c.request("vCont;c")        # the store to page A's own address does not stop
    assert stop.startswith(b"T05watch:%x;thread:1;" % va), stop
    assert c.request("p10") == symbol(elf, "wp_after_va_b").to_bytes(8, "little").hex().encode()
    for z in ("z2,%x,8" % va, "z0,%x,1" % ready, "z0,%x,1" % remapped):
        assert c.request(z) == b"OK", z
    assert c.request("vCont;c") == b"W01", vm.serial_text()
    vm.wait(30)
    assert "SUMMARY: 33 checks, 0 failed" in vm.serial_text()
    assert "byte 0x38 0x5a" in vm.serial_text()


CHANGES = 16     # watchpoint insertions while the AP runs


def test_memory_map_changes_under_a_running_vcpu(start_vmdb, guest, free_port, engine):
    """gdb non-stop on nonstop.elf: the BSP stopped in ns_ready, the AP
    running its loop (code, stack and counters in the pages that move),
    gdb puts in a watchpoint on ns_exit, then one on ns_go_ticks, over and
    over: on kvm each insertion rebuilds KVM's memory map with the AP in
    the middle of its writes, which trap on that page. The engine holds
    the AP out of KVM_RUN for each change, so the AP never meets a page
    without memory: it keeps counting, answers ns_go while the BSP is
    stopped, and the guest checks the rest from inside."""
    if engine != "kvm":
        pytest.skip("emu checks accesses by linear address: no memory map changes")
    elf = guest("nonstop")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    # each watchpoint stays in until the AP has counted under the new map:
    # right after a change the AP may still be on its way back into KVM_RUN
    insert = "python exec(%r)" % (
        "count = lambda: int(gdb.parse_and_eval('ns_count'))\n"
        f"for i in range({CHANGES // 2}):\n"
        "  for v in ('ns_exit', 'ns_go_ticks'):\n"
        "    w, c = gdb.Breakpoint(v, gdb.BP_WATCHPOINT, gdb.WP_WRITE), count()\n"
        "    while count() == c: pass\n"
        "    w.delete()\n")
    cmds = ["break ns_ready", "continue -a", "delete", "p ns_count", insert,
            "watch ns_exit", "monitor info watchpoints", "p ns_count", "delete",
            "set var ns_go = 1",
            "python while int(gdb.parse_and_eval('ns_done')) == 0: pass",
            "p ns_done", "interrupt -a", "set var ns_exit = 1", "continue -a", "continue -a"]
    out = gdb_nonstop(elf, target, cmds, timeout=180)
    counts = [int(c) for c in re.findall(r"^\$[12] = (\d+)$", out, re.M)]
    assert len(counts) == 2 and counts[1] > counts[0], out
    assert out.count("Hardware watchpoint") == CHANGES + 1, out
    assert re.search(r"^\$3 = 1$", out, re.M), out
    assert re.search(r"write +8 bytes at linear 0x[0-9a-f]+: (page trap|engine access check)",
                     out), out
    status = vm.wait(60)
    serial = vm.serial_text()
    assert status == 1 and "SUMMARY: 4 checks, 0 failed" in serial, serial + out
