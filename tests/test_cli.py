"""Every bad command line gets one clear line and the right exit status."""
import os
import shutil
import struct
import subprocess
import tempfile

import pytest

from conftest import HAVE_KVM, run_vmdb, sanitizer_env

USAGE, RUNTIME = 2, 1


def one_line_error(r, status, *words):
    assert r.returncode == status, (r.returncode, r.stderr)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one line, got: {r.stderr!r}"
    assert lines[0].startswith("vmdb: ")
    for w in words:
        assert w in lines[0], f"{w!r} not in {lines[0]!r}"


@pytest.mark.parametrize("args,words", [
    ([], ["no KERNEL"]),
    (["--smp", "0", "k"], ["--smp 0"]),
    (["--smp", "9999", "k"], ["--smp 9999", "between 1 and"]),
    (["--smp", "two", "k"], ["--smp 'two'"]),
    (["--mem", "lots", "k"], ["--mem 'lots'"]),
    (["--mem", "1M", "k"], ["--mem 1M"]),
    (["--mem", "99999999999999999999G", "k"], ["--mem"]),
    (["--serial", "tty", "k"], ["--serial 'tty'"]),
    (["--gdb=localhost", "k"], ["--gdb 'localhost'"]),
    (["--engine", "bochs", "k"], ["--engine 'bochs'"]),
    (["--cpu", "arm", "k"], ["--cpu 'arm'"]),
    (["--engine", "kvm", "--cpu", "amd", "k"], ["--cpu", "engine kvm"]),
    (["--frobnicate", "k"], ["unknown option '--frobnicate'"]),
    (["--smp"], ["--smp needs a value"]),
    (["a", "b"], ["unexpected argument 'b'"]),
    # QEMU's spelling: what vmdb lacks is refused, never ignored
    (["-kernel", "k", "-drive", "file=disk.img"], ["QEMU's -drive", "no disks", "-initrd"]),
    (["-kernel", "k", "-device", "virtio-net"], ["QEMU's -device"]),
    (["-kernel", "k", "-netdev", "user,id=n"], ["QEMU's -netdev", "no network"]),
    (["-kernel", "k", "-bios", "OVMF.fd"], ["QEMU's -bios", "without firmware"]),
    (["-kernel", "k", "-monitor", "stdio"], ["-monitor stdio", "gdb's `monitor"]),
    (["-kernel", "k", "-accel", "hvf"], ["-accel 'hvf'"]),
    (["-kernel", "k", "-smp", "sockets=2"], ["-smp 'sockets=2'"]),
    (["-kernel", "k", "-m", "lots"], ["--mem 'lots'"]),
    (["-kernel", "k", "other"], ["two kernels: -kernel k and other"]),
    (["-kernel"], ["-kernel needs a value"]),
    (["-kernel", "k", "-no-acpi"], ["unknown option '-no-acpi'"]),
    (["-x", "k"], ["unknown option '-x'"]),
])
def test_usage_errors(vmdb_bin, args, words):
    one_line_error(run_vmdb(vmdb_bin, *args), USAGE, *words)


def test_help_and_version(vmdb_bin):
    r = run_vmdb(vmdb_bin, "--help")
    assert r.returncode == 0 and "usage: vmdb" in r.stdout and "--wait-gdb" in r.stdout
    r = run_vmdb(vmdb_bin, "--version")
    assert r.returncode == 0 and r.stdout.startswith("vmdb ")


def test_missing_kernel(vmdb_bin, tmp_path):
    one_line_error(run_vmdb(vmdb_bin, "--engine", "emu", str(tmp_path / "nope.elf")), RUNTIME,
                   "nope.elf", "does not exist")


def test_kernel_is_a_directory(vmdb_bin, tmp_path):
    one_line_error(run_vmdb(vmdb_bin, "--engine", "emu", str(tmp_path)), RUNTIME, str(tmp_path))


@pytest.mark.parametrize("content", [b"", b"hello, I am not a kernel\n" * 100,
                                     b"\x7fELF" + b"\x01" * 60])
def test_not_a_kernel(vmdb_bin, tmp_path, content):
    k = tmp_path / "junk.bin"
    k.write_bytes(content)
    one_line_error(run_vmdb(vmdb_bin, "--engine", "emu", str(k)), RUNTIME, "junk.bin")


def elf64_with_segment_at(paddr, size):
    """A minimal x86-64 ELF executable with one PT_LOAD at paddr."""
    ehdr = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                       2, 62, 1, paddr, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0x1000, paddr, paddr, 16, size, 0x1000)
    body = ehdr + phdr
    return body + b"\0" * (0x1000 - len(body)) + b"\xf4" * 16


@pytest.mark.kvm
def test_kernel_does_not_fit(vmdb_bin, tmp_path):
    k = tmp_path / "big.elf"
    k.write_bytes(elf64_with_segment_at(0x8000000, 0x1000))   # at 128 MiB
    one_line_error(run_vmdb(vmdb_bin, "--engine", "kvm", "--mem", "64M", str(k)), RUNTIME,
                   "does not fit")


@pytest.mark.kvm
def test_lying_elf_header(vmdb_bin, tmp_path):
    data = bytearray(elf64_with_segment_at(0x200000, 0x1000))
    struct.pack_into("<Q", data, 0x20, 0x7fffffff)          # e_phoff far past the end
    k = tmp_path / "liar.elf"
    k.write_bytes(bytes(data))
    one_line_error(run_vmdb(vmdb_bin, "--engine", "kvm", str(k)), RUNTIME, "liar.elf")


@pytest.mark.kvm
def test_no_dev_kvm(vmdb_bin, guest):
    """/dev/kvm hidden in a private mount namespace."""
    script = 'mount -t tmpfs tmpfs /dev && exec "$0" "$@"'
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                        vmdb_bin, "--engine", "kvm", guest("exit")], capture_output=True,
                       text=True, timeout=60, env=sanitizer_env())
    if "unshare failed" in r.stderr or "mount:" in r.stderr:
        pytest.skip("cannot make a mount namespace here")
    one_line_error(r, RUNTIME, "/dev/kvm")


@pytest.fixture
def world_readable_copies():
    """Copies of files an unprivileged user can run or read wherever the
    checkout is (a clone under /root or in a 0700 `mktemp -d` is not)."""
    top = tempfile.mkdtemp(prefix="vmdb-test-", dir="/tmp")
    os.chmod(top, 0o755)

    def copy(path):
        dest = os.path.join(top, os.path.basename(path))
        shutil.copy(path, dest)
        os.chmod(dest, 0o755)
        return dest

    yield copy
    shutil.rmtree(top)


@pytest.mark.kvm
def test_no_permission_for_dev_kvm(vmdb_bin, guest, world_readable_copies):
    if os.getuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible here")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        world_readable_copies(vmdb_bin), "--engine", "kvm",
                        world_readable_copies(guest("exit"))], capture_output=True,
                       text=True, timeout=60, env=sanitizer_env(), cwd="/")
    one_line_error(r, RUNTIME, "permission", "/dev/kvm")


def test_qemu_style_s_and_S(start_vmdb, guest, tmp_path_factory):
    """-s and -S mean what they mean to QEMU's gdb users: the GDB server on
    tcp::1234 (loopback here) and the vCPUs held for the debugger. The
    fixed port is taken by one test process at a time (a lock file)."""
    import fcntl
    import socket
    from gdbclient import RspClient
    lock = open(os.path.join(tempfile.gettempdir(), "vmdb-test-port-1234.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    with lock, socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)    # as vmdb's own
        try:
            probe.bind(("127.0.0.1", 1234))
        except OSError:
            pytest.skip("port 1234 is taken on this machine")
        probe.close()
        vm = start_vmdb(guest("exit"), "-s", "-S", "--cmdline", "exit=0")
        vm.wait_for("stderr", r"gdb server listening on tcp:127\.0\.0\.1:1234", timeout=30)
        c = RspClient("127.0.0.1:1234")
        assert c.request("?").startswith(b"T05")      # held before its first instruction
        c.request("vKill;1")
        vm.wait(30)
    assert "killed by the debugger" in vm.stderr_text()


def test_qemu_command_line_runs_as_is(vmdb_bin, guest):
    """A kernel developer's qemu-system-x86_64 line, with vmdb in its place:
    -kernel/-append/-m/-smp/-accel are taken, the display and model options
    change nothing, and the guest runs with that command line."""
    r = run_vmdb(vmdb_bin, "-kernel", guest("exit"), "-append", "exit=5", "-m", "size=64M",
                 "-smp", "cpus=2,sockets=1", "-nographic", "-no-reboot", "-display", "none",
                 "-cpu", "max", "-M", "microvm", "-accel", "tcg")
    assert r.returncode == (5 << 1) | 1, r.stderr
    assert "engine emu" not in r.stderr       # chosen by -accel tcg, not by auto
    # a value of vmdb's own option is never read as a QEMU option
    r = run_vmdb(vmdb_bin, "--engine", "emu", "--cmdline", "-drive", guest("exit"))
    assert r.returncode == 1, r.stderr


def test_qemu_style_gdb_option(start_vmdb, guest, free_port):
    """-gdb tcp::PORT serves gdb on PORT, on loopback as vmdb's own default
    (QEMU would listen on every interface)."""
    from gdbclient import RspClient
    port = free_port()
    vm = start_vmdb(guest("exit"), "-gdb", f"tcp::{port}", "-S", "-append", "exit=0")
    vm.wait_for("stderr", rf"gdb server listening on tcp:127\.0\.0\.1:{port}\b", timeout=30)
    c = RspClient(f"127.0.0.1:{port}")
    assert c.request("?").startswith(b"T05")      # -S: held before its first instruction
    c.request("vKill;1")
    vm.wait(30)
    assert "killed by the debugger" in vm.stderr_text()
