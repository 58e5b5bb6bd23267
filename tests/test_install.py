"""vmdb as an installed tool: the man page says what --help says, `make install`
puts a working vmdb and its page under DESTDIR/PREFIX, and the Debian package
builds, holds both and runs."""
import os
import re
import subprocess

import pytest

from conftest import guest_path, run_vmdb, sanitizer_env

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def help_options(vmdb_bin):
    r = run_vmdb(vmdb_bin, "--help")
    assert r.returncode == 0
    return re.findall(r"^  (--[a-z-]+)", r.stdout, re.M)


def test_help_lists_every_option(vmdb_bin):
    with open(os.path.join(ROOT, "cli/options.c")) as f:
        table = re.search(r"long_options\[\] = \{(.*?)\n\};", f.read(), re.S).group(1)
    accepted = ["--" + n for n in re.findall(r'\{ "([a-z-]+)",', table)]
    assert accepted and sorted(accepted) == sorted(help_options(vmdb_bin))


def test_man_page_is_help(vmdb_bin, build_dir):
    page = os.path.join(build_dir, "vmdb.1")
    with open(page) as f:
        built = f.read()
    fresh = subprocess.run([os.path.join(ROOT, "scripts/mkman.sh"), vmdb_bin], check=True,
                           capture_output=True, text=True, env=sanitizer_env()).stdout
    assert built == fresh, "build/vmdb.1 is older than vmdb --help: run make"
    r = subprocess.run(["groff", "-man", "-Tascii", "-ww", page], capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    text = re.sub(r".\x08", "", r.stdout)     # overstruck bold and underline
    for opt in help_options(vmdb_bin):
        assert re.search(r"^\s+" + opt + r"\b", text, re.M), f"{opt} not in the man page"
    version = run_vmdb(vmdb_bin, "--version").stdout.split()[1]
    assert "vmdb " + version in text


def make_vars(build_dir):
    # SAN=1 is what names the ASan build directory
    rel = os.path.relpath(os.path.abspath(build_dir), ROOT)
    return ["SAN=1"] if rel == "build-asan" else ["BUILD=" + rel]


def test_make_install(build_dir, tmp_path):
    dest = tmp_path / "root"
    subprocess.run(["make", "-s", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/opt/vmdb",
                    *make_vars(build_dir)], check=True, capture_output=True)
    binary = dest / "opt/vmdb/bin/vmdb"
    assert os.access(binary, os.X_OK)
    assert (dest / "opt/vmdb/share/man/man1/vmdb.1").read_text().startswith(".\\\"")
    r = run_vmdb(str(binary), "--engine", "emu", "--serial", "none", "--cmdline", "exit=5",
                 guest_path("exit"))
    assert r.returncode == (5 << 1) | 1, r.stderr


def test_debian_package(tmp_path):
    """`make check-deb` builds the .deb (skipped without dpkg-dev and debhelper);
    unpacked, its vmdb boots a guest and every package it depends on exists."""
    out = tmp_path / "deb"
    r = subprocess.run(["make", "-s", "-C", ROOT, "check-deb", f"DEB_OUT={out}"],
                       capture_output=True, text=True, timeout=900)
    skipped = [l for l in r.stdout.splitlines() if "skipped:" in l]
    if r.returncode != 0 and skipped:
        pytest.skip(skipped[0].split("skipped: ", 1)[1])
    assert r.returncode == 0, r.stdout + r.stderr
    deb, = out.glob("vmdb_*_amd64.deb")
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    r = run_vmdb(str(root / "usr/bin/vmdb"), "--engine", "emu", "--serial", "none",
                 "--cmdline", "exit=3", guest_path("exit"))
    assert r.returncode == (3 << 1) | 1, r.stderr
    depends = subprocess.run(["dpkg-deb", "-f", str(deb), "Depends"], check=True,
                             capture_output=True, text=True).stdout
    for dep in depends.split(","):
        name = dep.split()[0]
        r = subprocess.run(["apt-cache", "show", name], capture_output=True)
        assert r.returncode == 0, f"Depends names {name}, which Debian does not have"
