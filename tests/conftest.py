"""Fixtures shared by every end-to-end test.

pytest runs once over several builds (``--builds build,build-asan``); every
test that uses ``vmdb_bin`` (directly or through ``start_vmdb``) runs once
per build, so the whole suite is exercised under ASan+UBSan too.
"""
import os
import re
import signal
import socket
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(ROOT, "build", "guests")
HAVE_KVM = os.path.exists("/dev/kvm")


def pytest_addoption(parser):
    parser.addoption("--builds", default="build",
                     help="comma-separated build directories to test (build,build-asan)")
    parser.addoption("--engines", default="kvm",
                     help="comma-separated engines every end-to-end test runs on (kvm,emu)")


def pytest_configure(config):
    config.addinivalue_line("markers", "kvm: needs /dev/kvm")


def builds(config):
    return [b for b in config.getoption("--builds").split(",") if b]


def engines(config):
    return [e for e in config.getoption("--engines").split(",") if e]


def pytest_generate_tests(metafunc):
    if "build_dir" in metafunc.fixturenames:
        names = builds(metafunc.config)
        metafunc.parametrize("build_dir", [os.path.join(ROOT, b) for b in names], ids=names)
    # One matrix over engines: a test that starts a guest runs on each; only
    # the kvm column needs /dev/kvm.
    if "engine" in metafunc.fixturenames:
        params = [pytest.param(e, marks=[pytest.mark.kvm] if e == "kvm" else [], id=e)
                  for e in engines(metafunc.config)]
        metafunc.parametrize("engine", params)


def pytest_collection_modifyitems(config, items):
    if HAVE_KVM:
        return
    skip = pytest.mark.skip(reason="skipped: no /dev/kvm")
    for item in items:
        if "kvm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def vmdb_bin(build_dir):
    path = os.path.join(build_dir, "vmdb")
    assert os.access(path, os.X_OK), f"{path} is not built (run make)"
    return path


def guest_path(name):
    path = os.path.join(GUESTS, name if name.endswith(".elf") else name + ".elf")
    assert os.path.exists(path), f"guest {path} is not built (run make)"
    return path


@pytest.fixture
def guest():
    return guest_path


@pytest.fixture(params=["default", "1"])
def emu_jit(request, engine, monkeypatch):
    """Each engine as it runs by default, and emu once more with every
    block translated at its first entry (VMDB_EMU_JIT=1)."""
    if request.param != "default":
        if engine != "emu":
            pytest.skip("VMDB_EMU_JIT is emu's")
        monkeypatch.setenv("VMDB_EMU_JIT", request.param)
    return request.param


def free_port_number():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def free_port():
    return free_port_number


def sanitizer_env():
    env = dict(os.environ)
    # a sanitizer report must fail the run, and be readable in the log
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:exitcode=99:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=98")
    return env


class VmdbProcess:
    """A running vmdb: serial output and stderr go to files in tmp_path."""

    def __init__(self, binary, kernel, args, tmp_path, serial):
        self.serial_path = str(tmp_path / "serial.txt")
        self.stderr_path = str(tmp_path / "stderr.txt")
        self.stdout_path = str(tmp_path / "stdout.txt")
        argv = [binary]
        if serial:
            argv += ["--serial", "file:" + self.serial_path]
        argv += list(args)
        if kernel is not None:
            argv.append(kernel)
        self.argv = argv
        self._err = open(self.stderr_path, "wb")
        self._out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, env=sanitizer_env())

    def wait(self, timeout=60):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"vmdb did not exit within {timeout}s: {' '.join(self.argv)}\n"
                        f"stderr: {self.stderr_text()}\nserial: {self.serial_text()[-2000:]}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def _read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def serial_text(self):
        return self._read(self.serial_path)

    def stderr_text(self):
        return self._read(self.stderr_path)

    def stdout_text(self):
        return self._read(self.stdout_path)

    def wait_for(self, what, pattern, timeout=30):
        """Poll serial or stderr until the regex matches; return the match."""
        reader = self.serial_text if what == "serial" else self.stderr_text
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, reader())
            if m:
                return m
            if self.proc.poll() is not None:
                m = re.search(pattern, reader())
                if m:
                    return m
                pytest.fail(f"vmdb exited ({self.proc.returncode}) before {what} showed "
                            f"{pattern!r}\nstderr: {self.stderr_text()}\n"
                            f"serial: {self.serial_text()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} did not show {pattern!r} within {timeout}s\n"
                            f"stderr: {self.stderr_text()}\nserial: {self.serial_text()[-2000:]}")
            time.sleep(0.02)

    def close(self):
        self.kill()
        self._err.close()
        self._out.close()
        check_sanitizer_report(self.stderr_text())


def check_sanitizer_report(text):
    for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"):
        assert marker not in text, f"sanitizer report from vmdb:\n{text}"


@pytest.fixture
def start_vmdb(vmdb_bin, engine, tmp_path):
    started = []

    def start(kernel, *args, serial=True):
        sub = tmp_path / f"run{len(started)}"
        sub.mkdir()
        p = VmdbProcess(vmdb_bin, kernel, ("--engine", engine) + tuple(args), sub, serial)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()


def run_vmdb(vmdb_bin, *args, timeout=60):
    """Run vmdb to completion (no serial redirection); return CompletedProcess."""
    r = subprocess.run([vmdb_bin, *args], capture_output=True, text=True, timeout=timeout,
                       env=sanitizer_env(), stdin=subprocess.DEVNULL)
    check_sanitizer_report(r.stderr)
    return r


def guest_checks_passed(vm, min_checks, timeout=60):
    """A self-checking guest (guests/rt's check()) ended with status 1 and
    'SUMMARY: N checks, 0 failed', N >= min_checks; its serial text."""
    status = vm.wait(timeout)
    serial = vm.serial_text()
    m = re.search(r"SUMMARY: (\d+) checks, (\d+) failed", serial)
    assert status == 1 and m and m.group(2) == "0" and int(m.group(1)) >= min_checks, \
        f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
    return serial
