"""What a debugger client may rely on, beyond what gdb itself checks:
segment register writes load the hidden descriptor cache as the CPU would
(x86/seg_load.c; real and virtual-8086 mode are in the unit test
x86_seg_load_test), stop reasons named only to clients that announced them
in qSupported, and E00 for a qXfer annex we do not have."""
import re

from gdbclient import gdb_batch, RspClient, start_gdb_vmdb, symbol


def test_segment_write_loads_descriptor(start_vmdb, guest, free_port):
    """In 64-bit mode MOV FS loads FS's base from the GDT (0x10: base 0):
    `set $fs` must too, or the guest runs on with a base gdb never shows.
    A selector beyond the GDT is refused in words, and nothing changes."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    out = gdb_batch(elf, target, ["break *gdb_regs_ready", "continue",
                                  "set $fs_base = 0x1234000", "maint flush register-cache",
                                  "p/x $fs_base",
                                  "set $fs = 0", "maint flush register-cache", "p/x $fs_base",
                                  "set $fs = 0x10", "maint flush register-cache",
                                  "p/x $fs_base", "p/x $fs",
                                  "set $ds = 0x1238", "maint flush register-cache",
                                  "p/x $ds", "kill"])
    assert "Breakpoint 1, " in out, out
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)", out, re.M)
    # a null selector keeps the base set through the MSR; 0x10 loads its own
    assert values[:4] == ["0x1234000", "0x1234000", "0x0", "0x10"], out
    assert "beyond the GDT limit" in out, out
    assert values[4] != "0x1238", out
    vm.wait(30)


def stop_reply(c):
    return c.request("vCont;c")


def test_stop_reasons_only_when_announced(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=memwrite", port=free_port())
    c = RspClient(target)
    addr = symbol(elf, "gdb_mem_poll")

    assert c.request("Z0,%x,1" % addr) == b"OK"
    reply = stop_reply(c)
    assert reply.startswith(b"T05thread:1;") and b"break" not in reply, reply
    assert c.request("z0,%x,1" % addr) == b"OK"
    assert c.request("Z1,%x,1" % addr) == b"OK"
    reply = stop_reply(c)
    assert reply.startswith(b"T05thread:1;") and b"break" not in reply, reply

    c.request("qSupported:multiprocess+;swbreak+;xmlRegisters=i386")
    reply = stop_reply(c)
    assert b"hwbreak" not in reply, reply           # announced swbreak only
    assert c.request("z1,%x,1" % addr) == b"OK"
    assert c.request("Z0,%x,1" % addr) == b"OK"
    assert re.fullmatch(rb"T05thread:1;core:0;(..:[0-9a-f]{16};)*swbreak:;", stop_reply(c))
    assert c.request("z0,%x,1" % addr) == b"OK"

    c.request("qSupported:hwbreak+")
    assert c.request("Z1,%x,1" % addr) == b"OK"
    assert re.fullmatch(rb"T05thread:1;core:0;(..:[0-9a-f]{16};)*hwbreak:;", stop_reply(c))
    c.kill()
    vm.wait(30)


def test_unknown_qxfer_annex_is_E00(start_vmdb, guest, free_port):
    vm, target = start_gdb_vmdb(start_vmdb, guest("gdb_target"), "--cmdline", "test=regs",
                                port=free_port())
    c = RspClient(target)
    assert c.request("qXfer:features:read:nosuch.xml:0,100") == b"E00"
    assert c.request("qXfer:features:read:target.xml:0,10").startswith(b"m")
    assert c.request("qXfer:osdata:read::0,100") == b""    # an object we do not have
    c.kill()
    vm.wait(30)
