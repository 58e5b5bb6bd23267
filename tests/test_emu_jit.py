"""emu's native tier (engine/emu/emu_jit.c) is on in a normal build and runs
the hot code: the benchmark guests' loops retire in translations
(VMDB_EMU_STATS=1 counts them) with the checksums of the Python models of
tests/test_bench_guests.py, as with the tier off (VMDB_EMU_JIT=0). And
self-modifying code is seen in translated blocks: guests/smc.c with
VMDB_EMU_JIT=1, which translates every block at its first entry, so each
patch hits code that runs translated (the next instruction of the running
block, a loop's own head, a CALL's target, across a page boundary)."""
import re

import pytest

from test_bench_guests import check_line

PASS = 1
STATS = re.compile(r"vmdb: emu: (\d+) instructions retired.* (\d+) blocks translated, "
                   r"(\d+) instructions run in translations")


@pytest.fixture
def emu_only(engine):
    if engine != "emu":
        pytest.skip("the native tier is emu's")


def run_stats(start_vmdb, monkeypatch, kernel, jit, *args):
    """(serial, (retired, blocks translated, instructions in translations))"""
    monkeypatch.setenv("VMDB_EMU_STATS", "1")
    monkeypatch.setenv("VMDB_EMU_JIT", jit)
    vm = start_vmdb(kernel, *args)
    status = vm.wait(120)
    serial, err = vm.serial_text(), vm.stderr_text()
    assert status == PASS and "FAIL" not in serial, \
        f"status {status}\nserial:\n{serial[-2000:]}\nstderr:\n{err}"
    m = STATS.search(err)
    assert m, f"no statistics line in:\n{err}"
    return serial, tuple(int(g) for g in m.groups())


@pytest.mark.parametrize("bench,iters", [("compute", 20000), ("memory", 2)])
def test_hot_loops_run_translated(emu_only, start_vmdb, monkeypatch, guest, bench, iters):
    args = ("--mem", "64M", "--cmdline", f"iters={iters}")
    kernel = guest(f"bench_{bench}")
    serial, (retired, blocks, in_jit) = run_stats(start_vmdb, monkeypatch, kernel, "", *args)
    check_line(serial, bench, iters)
    assert blocks > 0 and in_jit > retired // 2, (retired, blocks, in_jit)
    serial, (_, blocks, in_jit) = run_stats(start_vmdb, monkeypatch, kernel, "0", *args)
    check_line(serial, bench, iters)
    assert (blocks, in_jit) == (0, 0)


def test_self_modifying_code_in_translations(emu_only, start_vmdb, monkeypatch, guest):
    serial, (retired, blocks, in_jit) = run_stats(start_vmdb, monkeypatch, guest("smc"), "1")
    assert "SUMMARY: 9 checks, 0 failed" in serial, serial[-3000:]
    assert blocks > 0 and in_jit > retired // 2, (retired, blocks, in_jit)
