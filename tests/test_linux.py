"""Debian's Linux on vmdb: the bzImage and the PVH vmlinux boot to the test
init (tests/linux/init), which checks from inside (CPUs online, userspace
floating point, a dynamically linked program, timer and serial interrupts
counting) and powers off through
ACPI: vmdb's exit status is 0 only then.

The kernel comes from Debian's package, fetched by `make linux-assets` into
build/linux. On a host whose KVM emulates guest ring 0 (like our CI machines:
~1.5M instructions/s) a boot takes many minutes on the kvm engine: the kvm
column runs only where `--engine auto` would pick kvm; `make check-linux
ENGINE=kvm` is the long check for it."""
import os
import subprocess

import pytest

from conftest import ROOT, sanitizer_env, check_sanitizer_report

LINUX = os.path.join(ROOT, "build", "linux")
KERNELS = {"bzimage": "vmlinuz-cloud", "pvh": "vmlinux-cloud"}
INITRD = os.path.join(LINUX, "initramfs.gz")
CMDLINE = "console=ttyS0 nokaslr"
BOOT_TIMEOUT = 240


def linux_file(name):
    path = os.path.join(LINUX, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: run `make linux-assets`")
    return path


@pytest.fixture
def linux_engine(engine, vmdb_bin):
    if engine == "kvm":
        r = subprocess.run([vmdb_bin, "--probe"], capture_output=True, text=True, timeout=60)
        if "engine: kvm" not in r.stdout + r.stderr:
            pytest.skip("this host's KVM emulates guest ring 0 (auto picks emu): "
                        "a Linux boot is the long check `make check-linux ENGINE=kvm`")
    return engine


def init_report(serial):
    return [line for line in serial.splitlines() if line.startswith("VMDB-LINUX:")]


@pytest.mark.parametrize("kernel,smp", [("bzimage", 1), ("bzimage", 2), ("pvh", 1), ("pvh", 4)])
def test_linux_boots_checks_and_powers_off(start_vmdb, linux_engine, build_dir, kernel, smp):
    if "asan" in os.path.basename(build_dir) and (kernel, smp) != ("bzimage", 2):
        pytest.skip("the sanitizer build boots Linux once (bzImage, 2 vCPUs): ~3x slower")
    vm = start_vmdb(linux_file(KERNELS[kernel]), "--smp", str(smp), "--mem", "512M",
                    "--initrd", INITRD, "--cmdline", f"{CMDLINE} vmdb.cpus={smp}")
    status = vm.wait(BOOT_TIMEOUT)
    serial = vm.serial_text()
    report = init_report(serial)
    assert status == 0 and "VMDB-LINUX: PASS" in report, \
        f"status {status}\ninit: {report}\nserial tail:\n{serial[-4000:]}\n" \
        f"stderr:\n{vm.stderr_text()}"
    for check in ("cpus", "fpu", "dynamic", "dmi", "timer-irq", "serial-irq"):
        assert any(line.startswith(f"VMDB-LINUX: {check} ok") for line in report), report


def test_linux_from_a_qemu_command_line(vmdb_bin, linux_engine, build_dir):
    """A kernel developer's qemu-system-x86_64 line, vmdb in its place: the
    kernel boots to the test init's PASS with 2 vCPUs and powers off."""
    if "asan" in os.path.basename(build_dir):
        pytest.skip("the sanitizer build boots Linux once (test_linux_boots_...)")
    accel = ["-enable-kvm"] if linux_engine == "kvm" else ["-accel", "tcg"]
    r = subprocess.run([vmdb_bin, "-kernel", linux_file(KERNELS["bzimage"]), "-initrd", INITRD,
                        "-append", f"{CMDLINE} vmdb.cpus=2", "-m", "512M", "-smp", "2",
                        "-nographic", "-no-reboot", "-cpu", "max", *accel],
                       capture_output=True, text=True, timeout=BOOT_TIMEOUT, env=sanitizer_env(),
                       stdin=subprocess.DEVNULL)
    report = init_report(r.stdout)
    assert r.returncode == 0 and "VMDB-LINUX: PASS" in report, \
        f"status {r.returncode}\ninit: {report}\nstderr:\n{r.stderr}"
    assert "VMDB-LINUX: cpus ok have=2" in "\n".join(report), report


def test_linux_shell_on_serial_input(vmdb_bin, linux_engine, build_dir):
    """A line typed into vmdb's stdin reaches the guest's shell; its answer
    comes back on stdout; `poweroff -f` typed the same way ends vmdb with 0."""
    if "asan" in os.path.basename(build_dir):
        pytest.skip("the sanitizer build boots Linux once (test_linux_boots_...)")
    argv = [vmdb_bin, "--engine", linux_engine, "--mem", "512M", "--initrd", INITRD,
            "--cmdline", f"{CMDLINE} quiet vmdb.shell=1", linux_file(KERNELS["bzimage"])]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=sanitizer_env())
    out = b""
    try:
        out = read_until(p, out, b"VMDB-LINUX: shell")
        p.stdin.write(b"echo answer=$((6 * 7))\n")
        p.stdin.flush()
        out = read_until(p, out, b"answer=42")
        p.stdin.write(b"poweroff -f\n")
        p.stdin.flush()
        status = p.wait(BOOT_TIMEOUT)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    check_sanitizer_report(err)
    assert status == 0, f"status {status}\nstderr: {err}\nout tail: {out[-2000:]!r}"


def read_until(p, out, marker, timeout=BOOT_TIMEOUT):
    import select
    import time
    deadline = time.monotonic() + timeout
    while marker not in out:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            pytest.fail(f"no {marker!r} within {timeout}s; output tail:\n{out[-3000:]!r}")
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            pytest.fail(f"vmdb exited before {marker!r}; output tail:\n{out[-3000:]!r}")
        out += chunk
    return out
