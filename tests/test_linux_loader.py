"""Linux's direct boot protocols end to end: the bzImage loader (x86 boot
protocol, 64-bit entry) and the PVH loader (hvm_start_info, 32-bit entry).

linux_bzimage.bin and linux_pvh.elf check from the inside what they were
given (entry state, boot_params / start_info, E820, command line, initrd
bytes, RSDP) and report through serial and the debug-exit port (pass:
status 1, fail: status 3). The error cases patch the test bzImage's setup
header and assert vmdb's one-line error."""
import os
import re
import struct

import pytest

from conftest import guest_path, run_vmdb

PASS, FAIL = 1, 3
BZIMAGE = "linux_bzimage.bin"
PVH = "linux_pvh.elf"
CMDLINE_SIZE = 255          # what linux_bzimage.bin's header announces

# setup header offsets (Documentation/arch/x86/boot.rst)
VERSION, RELOCATABLE, XLOADFLAGS, PREF_ADDRESS = 0x206, 0x234, 0x236, 0x258


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def make_initrd(tmp_path, size):
    data = os.urandom(size)
    path = tmp_path / f"initrd-{size}.img"
    path.write_bytes(data)
    return str(path), f"initrd_size={size} initrd_fnv={fnv1a(data):#x}"


def finish(vm, want=PASS, timeout=60):
    status = vm.wait(timeout)
    serial = vm.serial_text()
    assert status == want, f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
    if want == PASS:
        assert "PASS" in serial and "FAIL" not in serial and ", 0 failed" in serial, serial
    return serial


def given(vm, cmdline):
    """The command line the kernel gets: --cmdline and what vmdb said it
    added for this engine and host (see test_linux_params_follow_probe)."""
    m = re.search(r'kernel command line: added "([^"]*)"', vm.stderr_text())
    return f"{cmdline} {m.group(1)}" if m else cmdline


def guest_binary(name):
    path = os.path.join(os.path.dirname(guest_path("entry64")), name)
    assert os.path.exists(path), f"guest {path} is not built (run make)"
    return path


@pytest.mark.parametrize("name", [BZIMAGE, PVH])
def test_linux_protocol_entry(start_vmdb, tmp_path, name):
    initrd, keys = make_initrd(tmp_path, 70001)
    cmdline = f"console=ttyS0 expect_mem=96M {keys} quote='a b' x=\u00e9 end"
    vm = start_vmdb(guest_binary(name), "--mem", "96M", "--initrd", initrd, "--cmdline", cmdline)
    serial = finish(vm)
    assert f"cmdline: [{given(vm, cmdline)}]" in serial
    assert "initrd bytes = the file's" in serial


@pytest.mark.parametrize("name", [BZIMAGE, PVH])
def test_linux_protocol_without_initrd(start_vmdb, name):
    vm = start_vmdb(guest_binary(name), "--mem", "48M", "--cmdline", "expect_mem=48M")
    serial = finish(vm)
    assert f"cmdline: [{given(vm, 'expect_mem=48M')}]" in serial


def test_bzimage_cmdline_at_cmdline_size(start_vmdb):
    cmdline = "expect_mem=64M " + "x" * (CMDLINE_SIZE - len("expect_mem=64M "))
    vm = start_vmdb(guest_binary(BZIMAGE), "--mem", "64M", "--cmdline", cmdline)
    serial = finish(vm)
    assert f"cmdline: [{cmdline}]" in serial, "a full line leaves no room for more"
    assert "kernel command line: added" not in vm.stderr_text()


@pytest.mark.parametrize("name", [BZIMAGE, PVH])
def test_guest_notices_wrong_initrd(start_vmdb, tmp_path, name):
    """The guests' checks can fail: a hash that is not the file's."""
    initrd, _ = make_initrd(tmp_path, 4096)
    vm = start_vmdb(guest_binary(name), "--mem", "64M", "--initrd", initrd,
                    "--cmdline", "initrd_size=4096 initrd_fnv=0x1234")
    assert "FAIL: initrd bytes = the file's" in finish(vm, want=FAIL)


# --- errors ------------------------------------------------------------------

def patched(tmp_path, name, patches=(), truncate=None):
    data = bytearray(open(guest_binary(name), "rb").read())
    for off, fmt, value in patches:
        struct.pack_into(fmt, data, off, value)
    if truncate is not None:
        data = data[:truncate]
    path = tmp_path / f"patched-{len(list(tmp_path.iterdir()))}-{name}"
    path.write_bytes(bytes(data))
    return str(path)


def refused(vmdb_bin, engine, kernel, *args):
    r = run_vmdb(vmdb_bin, "--engine", engine, "--serial", "none", *args, kernel, timeout=30)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"vmdb: kernel {kernel}"), \
        (r.returncode, r.stderr)
    return lines[0]


@pytest.mark.parametrize("patches, message", [
    ([(VERSION, "<H", 0x0209)], "Linux boot protocol 2.09 is too old: vmdb needs 2.10 or later"),
    ([(XLOADFLAGS, "<H", 0)], "without a 64-bit entry point (xloadflags XLF_KERNEL_64 clear)"),
    ([(RELOCATABLE, "<B", 0), (PREF_ADDRESS, "<Q", 0x40000000)],
     "kernel is not relocatable and wants 0x40000000-"),
    ([(RELOCATABLE, "<B", 0), (PREF_ADDRESS, "<Q", 0x10000)],
     "kernel is not relocatable and wants 0x10000, below 1 MiB"),
], ids=["protocol-2.09", "no-64-bit-entry", "fixed-address-outside-ram", "fixed-address-low"])
def test_bzimage_header_refused(vmdb_bin, engine, tmp_path, patches, message):
    kernel = patched(tmp_path, BZIMAGE, patches)
    assert message in refused(vmdb_bin, engine, kernel, "--mem", "64M")


@pytest.mark.parametrize("keep, message", [
    (0x300, "bzImage truncated: the setup header announces 1024 bytes of setup and"),
    (0x250, "bzImage truncated: its setup header ends at 0x26c, the file is 592 bytes"),
], ids=["payload", "header"])
def test_bzimage_truncated_refused(vmdb_bin, engine, tmp_path, keep, message):
    kernel = patched(tmp_path, BZIMAGE, truncate=keep)
    assert message in refused(vmdb_bin, engine, kernel)


def pvh_note_end(path):
    """File offset just past the PT_NOTE that holds the PVH note."""
    data = open(path, "rb").read()
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data,
                                                                 phoff + i * phentsize)
        if p_type == 4:
            return p_offset + p_filesz
    raise AssertionError(f"{path} has no PT_NOTE")


def test_pvh_truncated_refused(vmdb_bin, engine, tmp_path):
    """Cut inside the loadable segment, after the note: still PVH, and short."""
    kernel = patched(tmp_path, PVH, truncate=pvh_note_end(guest_binary(PVH)))
    line = refused(vmdb_bin, engine, kernel)
    assert "segment" in line and "lies past the end of the" in line


def test_bzimage_cmdline_too_long_refused(vmdb_bin, engine):
    kernel = guest_binary(BZIMAGE)
    line = refused(vmdb_bin, engine, kernel, "--cmdline", "y" * (CMDLINE_SIZE + 1))
    assert f"--cmdline is {CMDLINE_SIZE + 1} bytes; this kernel takes at most " \
           f"{CMDLINE_SIZE} (cmdline_size)" in line


@pytest.mark.parametrize("name, limit", [(BZIMAGE, "the kernel's initrd_addr_max"),
                                          (PVH, "the 2 GiB PVH initrd limit")])
def test_initrd_too_large_refused(vmdb_bin, engine, tmp_path, name, limit):
    initrd = tmp_path / "big.img"
    initrd.write_bytes(bytes(20 << 20))
    kernel = guest_binary(name)
    line = refused(vmdb_bin, engine, kernel, "--mem", "32M", "--initrd", str(initrd))
    assert f"initrd {initrd} ({20 << 20} bytes) does not fit below {limit}" in line
    assert "with --mem 32M" in line


# --- what vmdb adds for the engine -------------------------------------------

def test_linux_params_follow_probe(vmdb_bin, engine, start_vmdb):
    """noxsave is added exactly where the probe found that the guest's
    CPUID shows the host CPU's AVX whatever vmdb's table says (kvm on a
    host that emulates ring 0), and never over the user's own word."""
    probe = run_vmdb(vmdb_bin, "--engine", engine, "--probe").stdout
    host_cpuid = "guest CPUID follows vmdb's table: no" in probe
    vm = start_vmdb(guest_binary(BZIMAGE), "--mem", "48M", "--cmdline", "expect_mem=48M")
    serial = finish(vm)
    added = re.findall(r"vmdb: kernel command line: added .*", vm.stderr_text())
    if host_cpuid:
        assert len(added) == 1 and '"noxsave"' in added[0], vm.stderr_text()
        assert "cmdline: [expect_mem=48M noxsave]" in serial
    else:
        assert added == [] and "cmdline: [expect_mem=48M]" in serial, vm.stderr_text()
    vm = start_vmdb(guest_binary(PVH), "--mem", "48M", "--cmdline", "noxsave expect_mem=48M")
    assert "cmdline: [noxsave expect_mem=48M]" in finish(vm)
    assert "kernel command line: added" not in vm.stderr_text()
