"""Hostile hosts and clients never take the debugger away: port probes are
not debuggers, a stalled serial reader or socket reader never blocks the
server, and the unix socket is private. Real vmdb processes, real sockets."""
import fcntl
import os
import re
import select
import socket
import struct
import subprocess
import termios
import time

import pytest

from conftest import check_sanitizer_report, run_vmdb, sanitizer_env
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
            c.send_raw(b"+" + frame("qSupported:swbreak+;hwbreak+"))
            reply = c.read_packet()     # a refusal comes without an ack
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



def test_silent_connection_yields_to_a_debugger(start_vmdb, guest, free_port):
    """A connection held open without a word (a port watcher) does not keep
    the real debugger out; a debugger that spoke does."""
    kernel = guest("exit")
    vm, target = start_gdb_vmdb(start_vmdb, kernel, port=free_port())
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as silent:
        c = attach(target)
        assert rip_of(c) == elf_entry(kernel)
        assert silent.recv(64) == b""          # closed for the newcomer
        other = RspClient(target)
        other.noack = True                      # no ack back: it may be closed by then
        try:
            other.send_raw(b"+" + frame("qSupported"))
            assert REFUSED in other.read_packet()
        except ConnectionResetError:
            pass                                # turned away before it read us
        other.close()
        c.send_raw(frame("c"))
        assert c.read_packet().startswith(b"W")
        c.close()
    assert vm.wait(timeout=60) == 1

# xor ecx, ecx; mov dx, 0x3f8; mov al, 'x'; 1: out dx, al; inc rcx; jmp 1b
# -- serial output forever, rcx counting the bytes
FLOOD = bytes.fromhex("31c9" "66baf803" "b078" "ee" "48ffc1" "ebfa")


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

    def pipe_bytes(self):
        return struct.unpack("i", fcntl.ioctl(self.pipe_r, termios.FIONREAD, b"\0" * 4))[0]

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
    deadline = time.monotonic() + 60
    while True:
        c.send_raw(b"\x03")
        assert c.read_packet().startswith(b"T02"), "no stop reply to Ctrl-C"
        written = struct.unpack("<Q", bytes.fromhex(c.request("g")[32:48].decode()))[0]
        if written > vm.pipe_bytes():       # some output is lost for sure
            break
        assert time.monotonic() < deadline, "the guest wrote no more than the pipe holds"
        c.send_raw(frame("c"))
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
    vm, target = start_gdb_vmdb(start_vmdb, guest("demo"), port=free_port())   # never ends
    greedy = attach(target)
    greedy.start_noack()
    monitor(greedy, "phys on")
    noise = os.urandom(0x8000)       # incompressible: no run-length encoding
    assert greedy.request(f"M4000000,{len(noise):x}:{noise.hex()}") == b"OK"   # at 64 MiB
    greedy.send_raw(frame("m4000000,8000") * 400)      # and never read a reply
    late = attach(target, timeout=45)
    try:
        assert late.request("?").startswith(b"T")
        late.kill()
        assert vm.wait(timeout=30) == 0
    finally:
        late.close()
        greedy.close()
    assert "read nothing" in vm.stderr_text()


@pytest.mark.parametrize("umask", [0o000, 0o002, 0o022])
def test_unix_socket_is_private(vmdb_bin, engine, guest, tmp_path, umask):
    path = tmp_path / "gdb.sock"
    old = os.umask(umask)
    try:
        proc = subprocess.Popen([vmdb_bin, "--engine", engine, "--serial", "none", "--gdb",
                                 f"unix:{path}", "--wait-gdb", guest("exit")],
                                stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=sanitizer_env())
    finally:
        os.umask(old)
    try:
        assert b"listening" in proc.stderr.readline()
        assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()


def test_unix_socket_path_left_to_its_new_owner(start_vmdb, guest, tmp_path):
    """The path was taken over while vmdb ran: at exit vmdb leaves it be."""
    path = str(tmp_path / "gdb.sock")
    vm, target = start_gdb_vmdb(start_vmdb, guest("exit"), addr="unix:" + path)
    c = attach(target)
    os.unlink(path)
    newcomer = socket.socket(socket.AF_UNIX)
    newcomer.bind(path)
    ino = os.stat(path).st_ino
    try:
        c.kill()
        assert vm.wait(timeout=30) == 0
        assert os.path.exists(path) and os.stat(path).st_ino == ino
    finally:
        newcomer.close()
        c.close()


def test_unix_socket_in_use_is_not_stolen(start_vmdb, vmdb_bin, guest, tmp_path):
    """A second vmdb on the same path is refused while the first listens."""
    path = str(tmp_path / "gdb.sock")
    vm, target = start_gdb_vmdb(start_vmdb, guest("exit"), addr="unix:" + path)
    r = run_vmdb(vmdb_bin, "--gdb", "unix:" + path, guest("exit"))
    assert r.returncode == 1 and "another program is listening" in r.stderr, r.stderr
    c = attach(target)          # the first one still serves its path
    c.kill()
    c.close()
    assert vm.wait(timeout=30) == 0


def hosts_namespace_run(vmdb_bin, engine, hosts, *args):
    """vmdb with /etc/hosts replaced in a private mount namespace."""
    script = 'mount --bind "$0" /etc/hosts && exec "$@"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script, hosts,
                        vmdb_bin, "--engine", engine, *args], capture_output=True, text=True,
                       timeout=60, env=sanitizer_env(), stdin=subprocess.DEVNULL)
    if "unshare failed" in r.stderr or "mount:" in r.stderr:
        pytest.skip("cannot make a mount namespace here")
    return r


@pytest.mark.parametrize("host,exposed", [
    ("127.vmdb-test.invalid", True),       # a name that looks local, bound to 0.0.0.0
    ("localhost", True),                   # a hosts file that says otherwise
    ("0x7f000001", False),                 # 127.0.0.1 spelt in hex
    ("::ffff:127.0.0.1", False),
    ("127.0.0.1", False),
])
def test_loopback_judged_by_address(vmdb_bin, engine, guest, tmp_path, free_port, host, exposed):
    hosts = tmp_path / "hosts"
    hosts.write_text("0.0.0.0 127.vmdb-test.invalid localhost\n")
    spec = f"[{host}]" if ":" in host else host
    r = hosts_namespace_run(vmdb_bin, engine, str(hosts), "--serial", "none", "--gdb",
                            f"tcp:{spec}:{free_port()}", guest("exit"))
    assert r.returncode == 1, r.stderr
    assert ("reachable from other machines" in r.stderr) == exposed, r.stderr


# entry: cli; 1: hlt; jmp 1b -- halted for good once past the hlt
HALT_FOREVER = bytes.fromhex("fa" "f4" "ebfd")
STEP_OVER_LIMIT = 0.5      # debug/park.c: how long a step-over may take


def ctrl_c_waits(c, hlt, rounds):
    """Put the vCPU on the hlt, continue, Ctrl-C once the server has the
    packet; the time to each stop reply, sorted."""
    waits = []
    for _ in range(rounds):
        assert c.request("P10=" + struct.pack("<Q", hlt).hex()) == b"OK"
        start = time.monotonic()
        c.send_raw(frame("c"))
        assert c.read_byte() == b"+"      # the server has the packet: the machine resumes
        c.send_raw(b"\x03")
        assert c.read_packet().startswith(b"T02")
        waits.append(time.monotonic() - start)
    return sorted(waits)


def test_ctrl_c_during_step_over_of_hlt(start_vmdb, guest, free_port):
    """Continuing from a breakpoint on a HLT steps over it alone first, a
    step that waits for an interrupt: a Ctrl-C meanwhile is heard then,
    not when the step-over gives up. Compared with the same Ctrl-C without
    a breakpoint (an engine may take its time to stop a halted vCPU)."""
    vm, target = start_gdb_vmdb(start_vmdb, guest("exit"), port=free_port())
    c = attach(target)
    entry = rip_of(c)
    hlt = entry + 1
    assert c.request(f"M{entry:x},{len(HALT_FOREVER):x}:{HALT_FOREVER.hex()}") == b"OK"
    plain = ctrl_c_waits(c, hlt, 5)
    assert c.request(f"Z0,{hlt:x},1") == b"OK"
    over = ctrl_c_waits(c, hlt, 5)
    # without the client heard, the median would be past the limit itself
    assert over[2] < plain[2] + 0.8 * STEP_OVER_LIMIT, (plain, over)
    c.kill()
    assert vm.wait(timeout=30) == 0
