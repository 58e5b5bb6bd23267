"""Runs each libFuzzer target (fuzz/, built with clang by `make fuzz-build`)
for a few seconds over its regression inputs (fuzz/regress/<target>) and its
seeds: no crash, sanitizer report, leak or hang. `make fuzz` runs them at
length. fuzz_emu keeps one machine for every input and fuzz_gdbserver its vCPU
threads, so both are also checked to be deterministic: each input leaves the
same state (emu) or hears the same replies (gdbserver) whatever ran before it."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

TARGETS = ["gdbserver", "loader", "bus", "emu"]
SECONDS = 5


def fuzzer(target):
    binary = os.path.join(ROOT, "build-fuzz", f"fuzz_{target}")
    if not os.path.exists(binary):
        if shutil.which("clang") is None:
            pytest.skip("skipped: no clang (the fuzzers are built with Debian's clang; "
                        "scripts/deps.sh test installs it)")
        pytest.fail(f"{binary} is not built: run `make fuzz-build`")
    return binary


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target, tmp_path):
    binary = fuzzer(target)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    inputs = [os.path.join(ROOT, d, target) for d in ("fuzz/regress", "build-fuzz/seeds")]
    r = subprocess.run(
        [binary, f"-max_total_time={SECONDS}", "-timeout=10",
         f"-max_len={65536 if target == 'loader' else 4096}",
         "-print_final_stats=1", f"-artifact_prefix={tmp_path}/", str(corpus)]
        + [d for d in inputs if os.path.isdir(d)],
        capture_output=True, text=True, timeout=SECONDS + 120, cwd=tmp_path)
    log = r.stderr
    assert r.returncode == 0 and "ERROR:" not in log, \
        f"fuzz_{target} found something (reproduce: {binary} <input>):\n{log[-6000:]}"
    runs = [l for l in log.splitlines() if l.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split()[-1]) > 0, f"fuzz_{target} ran no input:\n{log[-3000:]}"


@pytest.mark.parametrize("target", ["emu", "gdbserver"])
def test_fuzz_deterministic(target, tmp_path):
    """The regression inputs and seeds, run forwards and backwards in one
    process each: every input's digest (VMDB_FUZZ_DIGEST=1) of the state it
    left (emu: registers, time, the exit, RAM) or of what the server sent it
    (gdbserver) is the same both times. (A gdbserver input may race a running
    vCPU on purpose, and then it need not: a reproducer that must, named
    *-races, is left out here; test_fuzz runs it.)"""
    binary = fuzzer(target)
    inputs = sorted(os.path.join(d, f)
                    for d in (os.path.join(ROOT, "fuzz/regress", target),
                              os.path.join(ROOT, "build-fuzz/seeds", target))
                    if os.path.isdir(d) for f in os.listdir(d) if not f.endswith("-races"))
    assert len(inputs) >= 2, "no inputs to compare"
    # input's hash -> the digests of its runs.  libFuzzer runs an input a
    # second time when it ended with more allocations than it began with
    # (its leak check); that run must leave the same digest.
    states = {}
    for order in (inputs, inputs[::-1]):
        r = subprocess.run([binary, "-timeout=10"] + order, capture_output=True, text=True,
                           timeout=120, cwd=tmp_path, env=dict(os.environ, VMDB_FUZZ_DIGEST="1"))
        assert r.returncode == 0, r.stderr[-3000:]
        for line in r.stderr.splitlines():
            if line.startswith("digest "):
                _, data, state = line.split()
                states.setdefault(data, set()).add(state)
    assert len(states) == len(set(open(f, "rb").read() for f in inputs)), \
        f"inputs reported: {len(states)} of {len(inputs)}"
    differ = sorted(f"{data}: {sorted(s)}" for data, s in states.items() if len(s) > 1)
    assert not differ, "inputs that did something else after other inputs:\n" + "\n".join(differ)
