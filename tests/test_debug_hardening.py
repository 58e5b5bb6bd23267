"""The debug core under pressure: no event lost (a burst of Ctrl-C, the
longest monitor texts), no guest byte corrupted by a breakpoint, parked
state changed behind the debugger's back seen, and a step of an idle
(halted) vCPU that completes on every engine."""
import re
import subprocess

import pytest

from gdbclient import RspClient, frame, gdb_batch, start_gdb_vmdb


def symbol(elf, name):
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^([0-9a-f]+) \w {re.escape(name)}$", out, re.M)
    assert m, f"{name} not in {elf}"
    return int(m.group(1), 16)


def monitor(c, command):
    """qRcmd: the console text of its O packets, then its final reply."""
    c.send_raw(frame("qRcmd," + command.encode().hex()))
    assert c.read_byte() == b"+"
    text = b""
    while True:
        p = c.read_packet()
        if p.startswith(b"O") and p != b"OK":
            text += bytes.fromhex(p[1:].decode())
            continue
        return text.decode(), p


@pytest.fixture
def regs_stub(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    c = RspClient(target)
    yield elf, c
    try:
        c.kill()
    except OSError:
        pass
    vm.wait(30)
    c.close()


def test_ctrl_c_burst_is_one_stop_and_later_hits_arrive(regs_stub):
    elf, c = regs_stub
    spin = symbol(elf, "gdb_regs_ready")
    c.send_raw(frame("vCont;c"))
    assert c.read_byte() == b"+"
    c.send_raw(b"\x03" * 2000)
    reply = c.read_packet()
    assert reply.startswith(b"T02thread:1;"), reply
    # one stop for the burst: the next answer is the answer to the next request
    assert c.request("qC") == b"QC1"
    # a breakpoint hit after the burst is still reported
    assert c.request("Z0,%x,1" % spin) == b"OK"
    reply = c.request("vCont;c")
    assert reply.startswith(b"T05thread:1;"), reply
    assert c.request("p10") == spin.to_bytes(8, "little").hex().encode()


def test_info_caps_whole_with_every_vector_caught(regs_stub):
    _, c = regs_stub
    text, reply = monitor(c, "catch " + " ".join(str(v) for v in range(32)))
    assert reply == b"OK", (text, reply)
    text, reply = monitor(c, "info caps")
    assert reply == b"OK"
    caught = re.search(r"catching now:([^\n]*)\n", text)
    assert caught, text
    assert len(caught.group(1).split()) == 32, caught.group(1)
    # the mechanisms text whole: its last line, then the line after it
    assert re.search(r"\nstop-all: [^\n]*stop reply\ninterrupts while stepping: \S[^\n]*\n$",
                     text), text[-400:]
