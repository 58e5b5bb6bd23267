"""Runs each libFuzzer target (fuzz/, built with clang by `make fuzz-build`)
for a few seconds over its regression inputs (fuzz/regress/<target>) and its
seeds: no crash, sanitizer report, leak or hang. `make fuzz` runs them at
length."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT

TARGETS = ["gdbserver", "loader", "bus", "emu"]
SECONDS = 5


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(target, tmp_path):
    binary = os.path.join(ROOT, "build-fuzz", f"fuzz_{target}")
    if not os.path.exists(binary):
        if shutil.which("clang") is None:
            pytest.skip("skipped: no clang (the fuzzers are built with Debian's clang; "
                        "scripts/deps.sh test installs it)")
        pytest.fail(f"{binary} is not built: run `make fuzz-build`")
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
