"""The PC platform a Linux kernel expects, checked from inside platform.elf:
ACPI tables, poweroff through PM1a_CNT, the four reset paths (the machine
boots again; a CMOS NVRAM byte counts the boots), --no-reboot, the i8042
without a keyboard, serial RX/THRE interrupts with input piped from the
test, the RTC against the host's clock, the PM timer against the PIT.
The terminal tests run vmdb on a pty: raw mode while it runs, the settings
restored on every way out, Ctrl-A x and Ctrl-A Ctrl-A."""
import datetime
import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time

import pytest

from conftest import check_sanitizer_report, guest_path, run_vmdb, sanitizer_env

PASS = 1
SECOND_BOOT = (0x21 << 1) | 1


def passed(vm, timeout=60):
    status = vm.wait(timeout)
    serial = vm.serial_text()
    assert status == PASS and "PASS" in serial and "FAIL" not in serial, \
        f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
    return serial


def platform(start_vmdb, cmdline, *args):
    return start_vmdb(guest_path("platform"), "--cmdline", cmdline, *args)


@pytest.mark.parametrize("cpus", [1, 3])
def test_acpi_tables(start_vmdb, cpus):
    serial = passed(platform(start_vmdb, "test=acpi", "--smp", str(cpus)))
    assert "slp_typ_s5=5" in serial


def test_poweroff_ends_vmdb_with_status_0(start_vmdb):
    vm = platform(start_vmdb, "test=poweroff")
    assert vm.wait(60) == 0, vm.serial_text() + vm.stderr_text()
    assert "powering off" in vm.serial_text()
    assert "powered off" in vm.stderr_text()


@pytest.mark.parametrize("via", ["cf9", "kbd", "port92", "acpi"])
def test_reset_boots_again(start_vmdb, via):
    vm = platform(start_vmdb, f"test=reset via={via}", "--smp", "2")
    status = vm.wait(60)
    serial = vm.serial_text()
    assert status == SECOND_BOOT, f"status {status}\n{serial}\n{vm.stderr_text()}"
    assert serial.count("boot 1") == 1 and serial.count("boot 2") == 1, serial
    assert f"resetting via {via}" in serial and "FAIL" not in serial, serial


def test_no_reboot_ends_with_status_0(start_vmdb):
    vm = platform(start_vmdb, "test=reset via=cf9", "--no-reboot")
    assert vm.wait(60) == 0, vm.serial_text() + vm.stderr_text()
    assert "boot 1" in vm.serial_text() and "boot 2" not in vm.serial_text()
    assert re.search(r"the guest rebooted .*--no-reboot", vm.stderr_text()), vm.stderr_text()


def test_reset_with_a_debugger_configured_boots_again(start_vmdb, tmp_path):
    """No client attached: the machine boots again all the same."""
    vm = platform(start_vmdb, "test=reset via=kbd", "--gdb", f"unix:{tmp_path}/gdb.sock")
    assert vm.wait(60) == SECOND_BOOT, vm.serial_text() + vm.stderr_text()
    assert "boot 2" in vm.serial_text()


def test_i8042_without_keyboard(start_vmdb):
    passed(platform(start_vmdb, "test=i8042"))


def test_rtc_shows_host_time(start_vmdb):
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0, tzinfo=None)
    serial = passed(platform(start_vmdb, "test=rtc"))
    after = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    m = re.search(r"rtc: (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", serial)
    assert m, serial
    rtc = datetime.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S")
    assert before <= rtc <= after, (before, rtc, after)


def test_pm_timer_rate(start_vmdb):
    passed(platform(start_vmdb, "test=pmtimer"))


# --- serial input ------------------------------------------------------------

def read_until(fd, pattern, proc, timeout=60):
    """Read fd until pattern shows up; return everything read."""
    out = b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, out):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no {pattern!r} within {timeout}s: {out[-2000:]!r}")
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:         # pty: the other side is gone
            chunk = b""
        if not chunk:
            pytest.fail(f"output ended (status {proc.poll()}) before {pattern!r}: "
                        f"{out[-2000:]!r}")
        out += chunk
    return out


def serial_rx_piped(vmdb_bin, engine, cmdline, data):
    """Run the serial_rx guest with stdin a pipe; send data once it is ready."""
    proc = subprocess.Popen(
        [vmdb_bin, "--engine", engine, "--cmdline", "test=serial_rx " + cmdline,
         guest_path("platform")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=sanitizer_env())
    try:
        out = read_until(proc.stdout.fileno(), rb"ready for input", proc)
        proc.stdin.write(data)
        proc.stdin.flush()
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_sanitizer_report(err.decode("utf-8", "replace"))
    return proc.returncode, (out + rest).decode("utf-8", "replace")


@pytest.mark.parametrize("irq", ["ioapic", "pic"])
def test_serial_rx_from_a_pipe(vmdb_bin, engine, irq):
    line = "hello-vmdb-4242"
    status, text = serial_rx_piped(vmdb_bin, engine, f"irq={irq} line={line}",
                                   line.encode() + b"\n")
    assert status == PASS and "FAIL" not in text, text
    assert f"got line: {line}" in text, text


def test_serial_pipe_input_is_never_dropped(vmdb_bin, engine):
    """Far more than the RX FIFO holds, with Ctrl-A in it: a pipe is data,
    not a terminal, so every byte arrives and vmdb does not end."""
    data = b"a\x01xb" + b"0123456789" * 300 + b"\n"
    status, text = serial_rx_piped(vmdb_bin, engine, f"irq=ioapic bytes={len(data)}", data)
    assert status == PASS and "FAIL" not in text, text
    assert "got line: a\x01xb0123" in text, text


# --- the terminal ------------------------------------------------------------

class PtyVmdb:
    """vmdb with a pty as its controlling terminal, stdin and stdout."""

    def __init__(self, vmdb_bin, engine, args, tmp_path):
        self.master, self.slave = os.openpty()
        self.stderr_path = tmp_path / "stderr.txt"
        self.saved = termios.tcgetattr(self.slave)

        def own_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([vmdb_bin, "--engine", engine, *args],
                                         stdin=self.slave, stdout=self.slave, stderr=err,
                                         preexec_fn=own_terminal, env=sanitizer_env())

    def lflag(self):
        return termios.tcgetattr(self.slave)[3]

    def read_until(self, pattern):
        return read_until(self.master, pattern, self.proc)

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"vmdb did not end: {self.stderr()}")

    def stderr(self):
        return self.stderr_path.read_text(errors="replace")

    def restored(self):
        return termios.tcgetattr(self.slave) == self.saved

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)
        check_sanitizer_report(self.stderr())


@pytest.fixture
def pty_vmdb(vmdb_bin, engine, tmp_path):
    started = []

    def start(*args):
        p = PtyVmdb(vmdb_bin, engine, args, tmp_path)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def serial_rx_args():
    return ["--cmdline", "test=serial_rx irq=ioapic", guest_path("platform")]


def test_pty_raw_mode_and_ctrl_a_x(pty_vmdb):
    vm = pty_vmdb(*serial_rx_args())
    assert vm.saved[3] & termios.ICANON and vm.saved[3] & termios.ECHO
    vm.read_until(rb"ready for input")
    lflag = vm.lflag()
    assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG), "not in raw mode"
    os.write(vm.master, b"\x01x")
    assert vm.wait() == 0, vm.stderr()
    assert "Ctrl-A x" in vm.stderr()
    assert vm.restored(), "terminal settings not restored"


def test_pty_ctrl_a_ctrl_a_sends_ctrl_a(pty_vmdb):
    vm = pty_vmdb(*serial_rx_args())
    vm.read_until(rb"ready for input")
    os.write(vm.master, b"ab\x01\x01cd\x01zef\r")
    out = vm.read_until(rb"SUMMARY")
    assert b"got line: ab\x01cdef" in out, out
    assert vm.wait() == PASS and vm.restored()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_pty_restored_on_signal(pty_vmdb, sig):
    vm = pty_vmdb(*serial_rx_args())
    vm.read_until(rb"ready for input")
    assert not vm.lflag() & termios.ICANON
    vm.proc.send_signal(sig)
    assert vm.wait() == -sig
    assert vm.restored(), "terminal settings not restored"


@pytest.mark.parametrize("how", ["poweroff", "triple", "error"])
def test_pty_restored_on_exit(pty_vmdb, how):
    if how == "poweroff":
        vm, want = pty_vmdb("--cmdline", "test=poweroff", guest_path("platform")), 0
    elif how == "triple":
        vm, want = pty_vmdb(guest_path("triple")), 1
    else:
        vm, want = pty_vmdb("--initrd", "/nonexistent/initrd", guest_path("exit")), 1
    assert vm.wait() == want, vm.stderr()
    assert vm.restored(), "terminal settings not restored"
