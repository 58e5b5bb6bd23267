"""Runs the C unit tests (rsp/, debug/, machine/ ...) of each build."""
import glob
import os
import subprocess

import pytest

from conftest import ROOT, builds, check_sanitizer_report, sanitizer_env


def unit_binaries(config):
    out = []
    for b in builds(config):
        for path in sorted(glob.glob(os.path.join(ROOT, b, "tests", "*test"))):
            out.append(pytest.param(path, id=f"{b}/{os.path.basename(path)}"))
    return out


def pytest_generate_tests(metafunc):
    if "unit_binary" in metafunc.fixturenames:
        metafunc.parametrize("unit_binary", unit_binaries(metafunc.config))


def test_unit(unit_binary):
    r = subprocess.run([unit_binary], capture_output=True, text=True, timeout=300,
                       env=sanitizer_env())
    check_sanitizer_report(r.stderr)
    if r.returncode == 77:      # the automake convention for "skipped"
        pytest.skip(r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "skipped")
    assert r.returncode == 0, f"{unit_binary} failed:\n{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
