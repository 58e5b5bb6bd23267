"""Clients for the gdb stub tests: real gdb (batch mode, or interactive for
Ctrl-C), real lldb (batch mode) and a raw RSP socket client for the cases
gdb never sends."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import time

import pytest

GDB = "gdb"


def start_gdb_vmdb(start_vmdb, kernel, *args, port=None, addr=None, wait=True):
    """vmdb with --gdb on a free port (or addr) and --wait-gdb; returns (vm, target)."""
    if addr is None:
        addr = f"tcp:127.0.0.1:{port}"
    argv = ["--gdb", addr] + (["--wait-gdb"] if wait else []) + list(args)
    vm = start_vmdb(kernel, *argv)
    vm.wait_for("stderr", r"gdb server listening on", timeout=30)
    target = addr[4:] if addr.startswith("tcp:") else addr[5:]
    return vm, target


def gdb_batch(elf, target, commands, timeout=120, connect=True):
    """Run gdb -batch with one -ex per command; return its stdout+stderr."""
    argv = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set width 0"]
    if connect:
        argv += ["-ex", f"target remote {target}"]
    for c in commands:
        argv += ["-ex", c]
    if elf:
        argv.append(elf)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.stdout + r.stderr


def lldb_batch(elf, target, commands, timeout=120):
    """Run lldb --batch on elf, attached to target (host:port), with one -o
    per command; returns (stdout, stdout+stderr). A hang fails the test
    with what lldb printed so far."""
    argv = ["lldb", "--batch", "--no-lldbinit", elf, "-o", f"gdb-remote {target}"]
    for c in commands:
        argv += ["-o", c]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"lldb did not finish within {timeout}s; output so far:\n"
                    f"{(e.stdout or b'').decode(errors='replace')}")
    return r.stdout, r.stdout + r.stderr


def reg_values(text):
    """`info registers` lines -> {name: int}."""
    out = {}
    for m in re.finditer(r"^(\w+)\s+(0x[0-9a-f]+)", text, re.M):
        out.setdefault(m.group(1), int(m.group(2), 16))
    return out


class GdbInteractive:
    """gdb reading commands from a pipe, so a test can interrupt it (SIGINT
    to gdb makes it send 0x03 to the stub, as Ctrl-C at a terminal does)."""

    def __init__(self, elf, target):
        argv = [GDB, "-nx", "-q", "-ex", "set pagination off", "-ex", "set confirm off",
                "-ex", f"target remote {target}", elf]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.out = ""

    def send(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()

    def expect(self, pattern, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                self.out += chunk.decode("utf-8", "replace")
            m = re.search(pattern, self.out)
            if m:
                return m
            if self.proc.poll() is not None and not chunk:
                break
            time.sleep(0.02)
        raise AssertionError(f"gdb output lacks {pattern!r}:\n{self.out[-3000:]}")

    def interrupt(self):
        self.proc.send_signal(signal.SIGINT)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait()


def checksum(payload: bytes) -> bytes:
    return b"%02x" % (sum(payload) & 0xff)


def frame(payload) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    return b"$" + payload + b"#" + checksum(payload)


def symbol(elf, name):
    """The address of `name` in elf, as gdb reads it."""
    out = gdb_batch(elf, None, [f"info address {name}"], connect=False)
    m = re.search(r"(0x[0-9a-f]+)", out)
    assert m, out
    return int(m.group(1), 16)


@contextlib.contextmanager
def rsp_session(vm, target):
    """A raw RSP client of the vmdb at `target`; at the end the guest is
    killed (a vmdb already gone is fine) and vmdb waited for."""
    c = RspClient(target)
    try:
        yield c
    finally:
        try:
            c.kill()
        except OSError:
            pass
        vm.wait(30)
        c.close()


class RspClient:
    """A minimal, strict RSP client over a socket (tcp 'host:port' or a path)."""

    def __init__(self, target, timeout=30):
        if ":" in target and not target.startswith("/"):
            host, port = target.rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
            # as gdb does: an ack and the next packet must not wait for
            # each other (Nagle against delayed ACK costs 40 ms a packet)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        else:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.settimeout(timeout)
            self.sock.connect(target)
        self.buf = b""
        self.noack = False

    def close(self):
        self.sock.close()

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("stub closed the connection")
        self.buf += chunk

    def read_byte(self):
        while not self.buf:
            self._fill()
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def read_packet(self):
        """Next packet payload (acks skipped, RLE expanded, checksum checked)."""
        while True:
            while b"$" not in self.buf:
                self._fill()
            start = self.buf.index(b"$")
            while b"#" not in self.buf[start:] or len(self.buf) < self.buf.index(b"#", start) + 3:
                self._fill()
            end = self.buf.index(b"#", start)
            raw, cs = self.buf[start + 1:end], self.buf[end + 1:end + 3]
            self.buf = self.buf[end + 3:]
            assert checksum(raw) == cs, f"bad checksum from stub: {raw!r} {cs!r}"
            if not self.noack:
                self.send_raw(b"+")
            return self.decode(raw)

    @staticmethod
    def decode(raw: bytes) -> bytes:
        """Undo escapes and run-length encoding, copying plain runs whole
        (a memory reply after every step is tens of KiB)."""
        out = bytearray()
        i, n = 0, len(raw)
        while i < n:
            esc, rle = raw.find(b"}", i), raw.find(b"*", i)
            j = min(k for k in (esc, rle, n) if k >= 0)
            out += raw[i:j]
            if j == n:
                break
            if raw[j] == ord("}"):
                out.append(raw[j + 1] ^ 0x20)
            else:
                out += out[-1:] * (raw[j + 1] - 29)
            i = j + 2
        return bytes(out)

    def request(self, payload, expect_ack=True):
        """Send one packet, return the reply payload (skipping O packets)."""
        self.send_raw(frame(payload))
        if expect_ack and not self.noack:
            ack = self.read_byte()
            assert ack == b"+", f"expected +, got {ack!r}"
        while True:
            reply = self.read_packet()
            if not (reply.startswith(b"O") and reply != b"OK"):
                return reply

    def kill(self):
        """k has no reply: the stub stops the machine and vmdb exits."""
        self.send_raw(frame("k"))

    def start_noack(self):
        assert self.request("QStartNoAckMode") == b"OK"
        self.noack = True
