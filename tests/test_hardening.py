"""Hostile hosts and clients never take the debugger away: port probes are
not debuggers, a stalled serial reader or socket reader never blocks the
server, and the unix socket is private. Real vmdb processes, real sockets."""
import os
import re
import select
import socket
import struct
import subprocess
import time

import pytest

from conftest import check_sanitizer_report, sanitizer_env
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
        try:
            c.send_raw(b"+")
            reply = c.request("qSupported:swbreak+;hwbreak+")
        except ConnectionError:
            reply = REFUSED    # turned away before it read our packet: a reset
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


# mov dx, 0x3f8; mov al, 'x'; 1: out dx, al; jmp 1b -- serial output forever
FLOOD = bytes.fromhex("66baf803" "b078" "ee" "ebfd")


class VmdbRaw:
    """vmdb with stdout (the serial console) on a pipe nobody reads."""

    def __init__(self, vmdb_bin, engine, port, kernel, tmp_path):
        self.stderr_path = tmp_path / "stderr.txt"
        # the write end stays open here too, only to see when the pipe is full
        self.pipe_r, self.pipe_w = os.pipe()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [vmdb_bin, "--engine", engine, "--gdb", f"tcp:127.0.0.1:{port}", "--wait-gdb",
                 kernel], stdin=subprocess.DEVNULL, stdout=self.pipe_w, stderr=err,
                env=sanitizer_env())
        self.target = f"127.0.0.1:{port}"
        self.wait_until(lambda: b"gdb server listening" in self.stderr(), "no gdb server")

    def stderr(self):
        return self.stderr_path.read_bytes()

    def pipe_full(self):
        return not select.select([], [self.pipe_w], [], 0)[1]

    def wait_until(self, cond, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not cond():
            assert self.proc.poll() is None, f"vmdb ended: {self.stderr()!r}"
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.pipe_r)
        os.close(self.pipe_w)
        check_sanitizer_report(self.stderr().decode(errors="replace"))


@pytest.fixture
def vmdb_raw(vmdb_bin, engine, free_port, tmp_path):
    started = []

    def start(kernel):
        v = VmdbRaw(vmdb_bin, engine, free_port(), kernel, tmp_path / f"raw{len(started)}")
        started.append(v)
        return v

    (tmp_path / "raw0").mkdir()
    (tmp_path / "raw1").mkdir()
    yield start
    for v in started:
        v.close()


def test_serial_reader_that_stops_reading(vmdb_raw, guest):
    """The serial pipe is full: Ctrl-C, detach and a late client still work,
    vmdb still exits, and says how much output it dropped."""
    vm = vmdb_raw(guest("exit"))
    c = attach(vm.target)
    entry = rip_of(c)
    assert c.request(f"M{entry:x},{len(FLOOD):x}:{FLOOD.hex()}") == b"OK"
    c.send_raw(frame("c"))
    vm.wait_until(vm.pipe_full, "the guest did not fill the pipe")
    c.sock.settimeout(20)
    c.send_raw(b"\x03")
    assert c.read_packet().startswith(b"T02"), "no stop reply to Ctrl-C"
    assert c.request("D") == b"OK"
    c.close()
    late = attach(vm.target, timeout=20)
    assert late.request("?").startswith(b"T")
    late.kill()
    assert vm.proc.wait(timeout=30) is not None
    assert re.search(rb"serial output: \d+ bytes dropped", vm.stderr()), vm.stderr()


def monitor(client, command):
    return client.request("qRcmd," + command.encode().hex())


def test_client_that_stops_reading(start_vmdb, guest, free_port):
    """400 memory reads left unread: the server drops that client instead of
    blocking in send(), and the next client is answered."""
    vm, target = start_gdb_vmdb(start_vmdb, guest("exit"), port=free_port())
    greedy = attach(target)
    greedy.start_noack()
    monitor(greedy, "phys on")
    noise = os.urandom(0x8000)       # incompressible: no run-length encoding
    assert greedy.request(f"M800000,{len(noise):x}:{noise.hex()}") == b"OK"
    greedy.send_raw(frame("m800000,8000") * 400)      # and never read a reply
    late = attach(target, timeout=45)
    try:
        assert late.request("?").startswith(b"T")
        late.kill()
        assert vm.wait(timeout=30) == 0
    finally:
        late.close()
        greedy.close()
    assert "read nothing" in vm.stderr_text()
