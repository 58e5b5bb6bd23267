"""The benchmark guests (bench/emu) stay correct: bench_compute and
bench_memory run a few iterations on every engine and must print the
instruction count of guests/bench_loops.h and the checksum a Python model of
guests/bench_loops.S computes here. Where QEMU and Bochs are installed, the
multiboot variants and the Bochs disk image (guests/boot_bench.S) are held to
the same model, so the images bench/emu compares cannot rot either."""
import os
import re
import shutil
import struct
import subprocess

import pytest

from conftest import GUESTS

PASS = 1
M64 = (1 << 64) - 1
LINE = re.compile(r"bench (\w+) iters=(\d+) insns=(\d+) checksum=(0x[0-9a-f]+)")

# guests/bench_loops.h
COMPUTE_FIXED, COMPUTE_PER_ITER = 5, 21
COPY_QWORDS, CHASE_NODES, CHASE_MUL = (2 << 20) // 8, (2 << 20) // 64, 40503
MEMORY_FIXED = 14
MEMORY_PER_ROUND = (COPY_QWORDS // 4) * 13 + CHASE_NODES * 5 + 7


def rol(x, n):
    return ((x << n) | (x >> (64 - n))) & M64


def model_compute(iters):
    """bench_compute_loop + bench_compute_init/checksum, step by step."""
    arr = [(0x0123456789abcdef * (i + 1)) & M64 for i in range(8)]
    x, acc = 0x9e3779b97f4a7c15, 1
    for i in range(iters, 0, -1):
        x ^= (x << 13) & M64
        x ^= x >> 7
        x ^= (x << 17) & M64
        acc = (acc * x + i) & M64
        acc = (acc + arr[i & 7]) & M64
        arr[i & 7] = acc
        acc = (acc + x) & M64 if (acc & 0xff) >= 0x80 else rol((acc - x) & M64, 5)
    s = x ^ acc
    for a in arr:
        s = ((s ^ a) * 0x100000001b3) & M64
    return s


def model_memory(rounds):
    """bench_memory_loop: the copy adds the first qword of every 32-byte
    chunk; the chase adds the value k+1 (mod N) of the k-th node it reaches
    and rotates by one."""
    x, src = 0x2545f4914f6cdd1d, []
    for _ in range(COPY_QWORDS):
        x = (x * 6364136223846793005 + 1442695040888963407) & M64
        src.append(x)
    copy_sum = sum(src[0::4]) & M64
    values = [(k + 1) % CHASE_NODES for k in range(CHASE_NODES)]
    rax = 0
    for _ in range(rounds):
        rax = (rax + copy_sum) & M64
        for v in values:
            rax = rol((rax + v) & M64, 1)
    return rax


def expected(bench, iters):
    if bench == "compute":
        return COMPUTE_FIXED + iters * COMPUTE_PER_ITER, model_compute(iters)
    return MEMORY_FIXED + iters * MEMORY_PER_ROUND, model_memory(iters)


def check_line(text, bench, iters):
    m = LINE.search(text)
    assert m, f"no result line in:\n{text[-2000:]}"
    assert (m.group(1), int(m.group(2))) == (bench, iters), m.group(0)
    insns, checksum = expected(bench, iters)
    assert (int(m.group(3)), int(m.group(4), 16)) == (insns, checksum), \
        f"{m.group(0)}; expected insns={insns} checksum={checksum:#x}"


CASES = [("compute", 1), ("compute", 1000), ("memory", 1), ("memory", 2)]


def test_models_differ_with_the_count():
    """The checksum proves the work: another count gives another value."""
    assert model_compute(1000) != model_compute(1001)
    assert model_memory(1) != model_memory(2)


@pytest.mark.parametrize("bench,iters", CASES)
def test_bench_guest_on_vmdb(start_vmdb, guest, bench, iters):
    vm = start_vmdb(guest(f"bench_{bench}"), "--mem", "64M", "--cmdline", f"iters={iters}")
    status = vm.wait(120)
    serial = vm.serial_text()
    assert status == PASS and "FAIL" not in serial, \
        f"status {status}\nserial:\n{serial[-2000:]}\nstderr:\n{vm.stderr_text()}"
    check_line(serial, bench, iters)


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64"), reason="qemu-system-x86_64 missing")
@pytest.mark.parametrize("bench,iters", [("compute", 1000), ("memory", 2)])
def test_bench_guest_multiboot_on_qemu_tcg(bench, iters):
    r = subprocess.run(["qemu-system-x86_64", "-accel", "tcg", "-m", "64M", "-nographic",
                        "-net", "none", "-no-reboot", "-monitor", "none",
                        "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
                        "-kernel", os.path.join(GUESTS, "mb", f"bench_{bench}.elf"),
                        "-append", f"iters={iters}"],
                       capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == PASS, f"status {r.returncode}\n{out[-2000:]}"
    check_line(out, bench, iters)


BOCHSRC = """megs: 64
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
cpu: model=corei7_sandy_bridge_2600k, count=1, reset_on_triple_fault=0
display_library: rfb, options="timeout=0"
ata0-master: type=disk, path={disk}, mode=flat, cylinders={cylinders}, heads=16, spt=63
boot: disk
log: {log}
panic: action=fatal
info: action=ignore
port_e9_hack: enabled=1
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
"""


def run_bochs(tmp_path, bench, iters):
    """Run boot_bench.img for bench/iters; return (output, Bochs' tick count
    at the end: one tick an instruction, as the machine never halts)."""
    img = bytearray(open(os.path.join(GUESTS, "boot_bench.img"), "rb").read())
    at = img.find(b"VMDBBNCH")
    assert at >= 0, "boot_bench.img has no parameter block"
    struct.pack_into("<IIQ", img, at + 8, 0 if bench == "compute" else 1, 0, iters)
    disk = tmp_path / "disk.img"
    disk.write_bytes(img)
    rc = tmp_path / "bochsrc"
    rc.write_text(BOCHSRC.format(disk=disk, cylinders=len(img) // (16 * 63 * 512),
                                 log=tmp_path / "bochsout.txt"))
    # Debian's bochs has its debugger built in: "c" starts the machine; the
    # image ends Bochs through its shutdown port
    r = subprocess.run(["bochs", "-q", "-f", str(rc)], input=b"c\nquit\n", cwd=tmp_path,
                       capture_output=True, timeout=120)
    out = r.stdout.decode("utf-8", "replace")
    assert "FAIL" not in out and "bench end" in out, out[-2000:]
    ticks = re.search(r"^\(0\)\.\[(\d+)\]", out, re.M)
    return out, int(ticks.group(1)) if ticks else None


needs_bochs = pytest.mark.skipif(not shutil.which("bochs"),
                                 reason="bochs missing (scripts/deps.sh bench)")


@needs_bochs
@pytest.mark.parametrize("bench,iters", [("compute", 1000), ("memory", 2)])
def test_bench_image_on_bochs(tmp_path, bench, iters):
    check_line(run_bochs(tmp_path, bench, iters)[0], bench, iters)


@needs_bochs
@pytest.mark.parametrize("bench,per_iter", [("compute", COMPUTE_PER_ITER),
                                            ("memory", MEMORY_PER_ROUND)])
def test_instructions_per_iteration_exact(tmp_path, bench, per_iter):
    """Bochs counts what it executes: one more iteration costs exactly the
    documented number of instructions (bench/emu's rates rely on it)."""
    _, t1 = run_bochs(tmp_path, bench, 1)
    _, t2 = run_bochs(tmp_path, bench, 2)
    assert t1 and t2, "no tick count in the output of Bochs' debugger"
    assert t2 - t1 == per_iter
