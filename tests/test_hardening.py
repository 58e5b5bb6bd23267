"""Hostile hosts and clients never take the debugger away: port probes are
not debuggers, a stalled serial reader or socket reader never blocks the
server, and the unix socket is private. Real vmdb processes, real sockets."""
import os
import socket
import struct
import time

import pytest

from gdbclient import RspClient, frame, start_gdb_vmdb

REFUSED = b"another debugger"


def elf_entry(path):
    with open(path, "rb") as f:
        return struct.unpack_from("<Q", f.read(64), 0x18)[0]


def rip_of(client):
    regs = client.request("g")
    return struct.unpack("<Q", bytes.fromhex(regs[16 * 16:17 * 16].decode()))[0]


def attach(target, timeout=30):
    """A client that answered qSupported; retried while the server still
    holds an earlier connection (it turns others away until it is gone)."""
    deadline = time.monotonic() + timeout
    while True:
        c = RspClient(target)
        c.send_raw(b"+")
        reply = c.request("qSupported:swbreak+;hwbreak+")
        if REFUSED not in reply:
            return c
        c.close()
        assert time.monotonic() < deadline, "the server kept refusing"
        time.sleep(0.01)   # the earlier connection is being torn down


def probe_tcp(target, payload=b""):
    """Connect, send payload, hang up; return once the server closed its end
    (our FIN first, then its EOF: it has seen the whole connection)."""
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        if payload:
            s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass


@pytest.mark.parametrize("payload", [b"", b"+", b"GET / HTTP/1.0\r\n\r\n", b"\x03"],
                         ids=["silent", "ack", "http", "ctrl-c"])
def test_port_probe_is_not_an_attach(start_vmdb, guest, free_port, payload):
    """nc -z and friends: the held guest stays held for the real gdb."""
    kernel = guest("exit")
    vm, target = start_gdb_vmdb(start_vmdb, kernel, port=free_port())
    for _ in range(3):
        probe_tcp(target, payload)
    c = attach(target)
    try:
        assert c.request("?").startswith(b"T")
        assert rip_of(c) == elf_entry(kernel), "the guest ran before a debugger attached"
        assert vm.serial_text() == ""
        c.send_raw(frame("c"))
        assert c.read_packet().startswith(b"W")
    finally:
        c.close()
    assert vm.wait(timeout=60) == 1
