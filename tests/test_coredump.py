"""`monitor dump-guest-memory [-p] FILE [BEGIN LENGTH]`: the stopped
machine as an ELF core file in QEMU's layout. gdb opens the core offline
(threads, registers, memory by address with -p); the file's segments,
notes and bytes are checked against the live machine and the guest's own
ELF file, and bad requests are refused in words while the session goes
on."""
import os
import re
import struct

from gdbclient import gdb_batch, start_gdb_vmdb, symbol

MEM = 32 << 20
HH_VA = 0xffff800000000000          # guests/highhalf.c
MM_VA = 0xffff900000000000          # guests/many_maps.c


def parse_notes(blob):
    notes, at = [], 0
    while at < len(blob):
        namesz, descsz, kind = struct.unpack_from("<III", blob, at)
        at += 12
        name = blob[at:at + namesz].rstrip(b"\0").decode()
        at += (namesz + 3) & ~3
        notes.append((name, kind, blob[at:at + descsz]))
        at += (descsz + 3) & ~3
    return notes


def parse_core(path):
    """(file bytes, [(vaddr, paddr, offset, size)], [(name, type, desc)])"""
    data = open(path, "rb").read()
    assert data[:5] == b"\x7fELF\x02", data[:16]
    assert struct.unpack_from("<HH", data, 16) == (4, 62)      # ET_CORE, EM_X86_64
    phoff, shoff = struct.unpack_from("<QQ", data, 32)
    phnum, = struct.unpack_from("<H", data, 56)
    if phnum == 0xffff:           # PN_XNUM: the count is section header 0's sh_info
        phnum, = struct.unpack_from("<I", data, shoff + 44)
    loads, notes = [], []
    for i in range(phnum):
        kind, _, off, va, pa, size = struct.unpack_from("<IIQQQQ", data, phoff + 56 * i)
        if kind == 1:
            loads.append((va, pa, off, size))
        elif kind == 4:
            notes = parse_notes(data[off:off + size])
    return data, loads, notes


def core_bytes(core, addr, n, physical=True):
    data, loads, _ = core
    for va, pa, off, size in loads:
        base = pa if physical else va
        if base <= addr and addr + n <= base + size:
            return data[off + addr - base:off + addr - base + n]
    raise AssertionError(f"{addr:#x} is in no segment: {loads}")


def elf_bytes(elf, name, n):
    """The guest's own bytes at a symbol, from its file (gdb, no target)."""
    out = gdb_batch(elf, None, [f"x/{n}xb {name}"], connect=False)
    return bytes(int(b, 16) for b in re.findall(r"\b0x([0-9a-f]{2})\b", out.split(":", 1)[1]))


def values(out):
    return [int(v, 16) if v.startswith("0x") else int(v)
            for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+|\d+)$", out, re.M)]


def test_dump_reads_back_in_gdb_and_matches_the_machine(start_vmdb, guest, free_port,
                                                         tmp_path):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", "--mem", "32M",
                                port=free_port())
    paged, phys, part = tmp_path / "paged.core", tmp_path / "phys.core", tmp_path / "part"
    fifo = tmp_path / "fifo"          # nobody reads it: refused, not waited on
    os.mkfifo(fifo)
    out = gdb_batch(elf, target, [
        "set breakpoint always-inserted on", "break demo_tick", "continue",
        "break demo_work",                        # an int3 in guest memory during the dump
        "thread 1", "p/x $pc", "p/x $rsp", "p/x $cr3", "p demo_counter", "thread 2", "p/x $pc",
        "thread 1",
        f"monitor dump-guest-memory -p {paged}", f"monitor dump-guest-memory {phys}",
        f"monitor dump-guest-memory {part} 0x100000 0x3000",
        f"monitor dump-guest-memory -z {tmp_path}/z", f"monitor dump-guest-memory {tmp_path}/x/y",
        f"monitor dump-guest-memory {tmp_path}/r 0x80000000 0x1000",
        f"monitor dump-guest-memory {fifo}", "monitor dump-guest-memory /dev/null",
        "monitor dump-guest-memory -p", "p/x $pc", "kill"])
    pc, rsp, cr3, counter, pc2, pc_after = values(out)    # vCPU 0's, vCPU 1's pc
    assert symbol(elf, "demo_tick") in (pc, pc2) and pc_after == pc, out
    assert f"wrote {paged}: 32 MiB of guest memory in 1 segment, 2 vCPUs" in out, out
    assert f"wrote {phys}: 32 MiB of guest memory in 1 segment, 2 vCPUs" in out, out
    assert f"wrote {part}: 12 KiB of guest memory in 1 segment, 2 vCPUs" in out, out
    assert "-z asks for a kdump-compressed file; vmdb writes ELF" in out, out
    assert f"cannot create {tmp_path}/x/y: No such file or directory" in out, out
    assert "no guest RAM in that range" in out, out
    assert f"cannot create {fifo}: No such device or address" in out, out
    assert "/dev/null is not a regular file" in out, out
    assert "monitor dump-guest-memory: bad argument '-p'" in out, out

    core = parse_core(phys)
    assert [(va, pa, size) for va, pa, _, size in core[1]] == [(0, 0, MEM)]
    names = [(name, kind) for name, kind, _ in core[2]]
    assert names == [("CORE", 1), ("CORE", 2)] * 2 + [("QEMU", 0)] * 2, names
    prstatus = [desc for name, kind, desc in core[2] if kind == 1]
    regs = [struct.unpack_from("<27Q", d, 112) for d in prstatus]
    assert [struct.unpack_from("<I", d, 32)[0] for d in prstatus] == [1, 2]
    assert (regs[0][16], regs[0][19], regs[1][16]) == (pc, rsp, pc2)   # rip, rsp
    qemu = core[2][-2][2]
    assert struct.unpack_from("<II", qemu) == (1, 440)
    assert struct.unpack_from("<Q", qemu, 416)[0] == cr3              # cr[3]
    for name in ("demo_work", "demo_tick"):   # the guest's bytes, not our int3
        assert core_bytes(core, symbol(elf, name), 32) == elf_bytes(elf, name, 32), name
    assert struct.unpack("<Q", core_bytes(core, symbol(elf, "demo_counter"), 8)) == (counter,)
    part_core = parse_core(part)
    assert [(pa, size) for _, pa, _, size in part_core[1]] == [(0x100000, 0x3000)]
    assert core_bytes(part_core, 0x101000, 4096) == core_bytes(core, 0x101000, 4096)

    offline = gdb_batch(elf, None, [f"core-file {paged}", "p/x $pc", "p/x $rsp",
                                    "p demo_counter", "info threads", "bt", "thread 2",
                                    "p/x $pc", "bt"], connect=False)
    assert values(offline) == [pc, rsp, counter, pc2], offline
    assert re.search(r"^\* 1 +LWP 1 ", offline, re.M), offline
    assert re.search(r"^  2 +LWP 2 ", offline, re.M), offline
    # the vCPU at the breakpoint unwinds as it did live
    assert re.search(r"^#0  demo_tick \(cpu=[01]\) at guests/demo\.c:\d+\n"
                     r"#1  0x[0-9a-f]+ in demo_cpu \(", offline, re.M), offline


def test_paged_dump_is_by_virtual_address(start_vmdb, guest, free_port, tmp_path):
    """-p: a page mapped at a virtual address that is not its physical one
    (highhalf.elf's code at HH_VA) is a segment at that address, and gdb
    reads the core there."""
    elf = guest("highhalf")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--mem", "32M", port=free_port())
    core_path = tmp_path / "hh.core"
    out = gdb_batch(elf, target, [f"hbreak *{HH_VA:#x}", "continue", "p/x $pc",
                                  f"monitor dump-guest-memory -p {core_path}", "kill"])
    assert values(out) == [HH_VA], out
    core = parse_core(core_path)
    code = symbol(elf, "hh_code")
    high = [(va, pa, size) for va, pa, _, size in core[1] if va >= HH_VA]
    assert high == [(HH_VA, code, 4096)], core[1]
    assert core_bytes(core, HH_VA, 16, physical=False) == elf_bytes(elf, "hh_code", 16)
    # both mappings of the page share its one copy: the file holds RAM once
    holders = [off + code - pa for va, pa, off, size in core[1] if pa <= code < pa + size]
    assert len(holders) == 2 and len(set(holders)) == 1, core[1]
    assert len(core[0]) - MEM < 0x10000, len(core[0])
    offline = gdb_batch(elf, None, [f"core-file {core_path}", "p/x $pc", "x/2i $pc"],
                        connect=False)
    assert values(offline) == [HH_VA], offline
    assert re.search(rf"=> {HH_VA:#x}:\s+movabs \$0x[0-9a-f]+,%rax", offline), offline


def test_paged_dump_past_65535_segments(start_vmdb, guest, free_port, tmp_path):
    """More segments than e_phnum can count (many_maps.elf: 70000 pages that
    map two frames in turn): e_phnum is PN_XNUM, section header 0 holds the
    count, and gdb reads every one of them from the core."""
    elf = guest("many_maps")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--mem", "32M", port=free_port())
    core_path = tmp_path / "many.core"
    out = gdb_batch(elf, target, ["break mm_ready", "continue", "p/x $pc",
                                  f"monitor dump-guest-memory -p {core_path}", "continue"])
    assert values(out) == [symbol(elf, "mm_ready")], out
    m = re.search(r"wrote \S+: 32 MiB of guest memory in (\d+) segments", out)
    assert m and int(m.group(1)) > 70000, out
    data = open(core_path, "rb").read(64)
    assert struct.unpack_from("<H", data, 56) == (0xffff,)
    core = parse_core(core_path)
    assert len(core[1]) == int(m.group(1))
    last = MM_VA + 69999 * 4096
    offline = gdb_batch(elf, None, [f"core-file {core_path}", "p/x $pc",
                                    f"x/gx {MM_VA:#x}", f"x/gx {MM_VA + 4096:#x}",
                                    f"x/gx {last:#x}"], connect=False)
    assert values(offline) == [symbol(elf, "mm_ready")], offline
    words = re.findall(r"^0x[0-9a-f]+:\s+(0x[0-9a-f]+)$", offline, re.M)
    assert words == ["0x1111111111111111", "0x2222222222222222", "0x2222222222222222"], offline
    assert vm.wait(30) == 1
