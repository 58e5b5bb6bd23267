"""emu's native tier (engine/emu/emu_jit.c) is on in a normal build and runs
the hot code: the benchmark guests' loops retire in translations
(VMDB_EMU_STATS=1 counts them), going from one translation into the next
by their links, with the checksums of the Python models of
tests/test_bench_guests.py, as with the tier off (VMDB_EMU_JIT=0). And
self-modifying code is seen in translated blocks: guests/smc.c with
VMDB_EMU_JIT=1, which translates every block at its first entry, so each
patch hits code that runs translated (the next instruction of the running
block, a loop's own head, a CALL's target, across a page boundary). And
tests/diffgen.py's generated sequences end the same translated at once
(VMDB_EMU_JIT=1) as on the exact path (no blocks). And loops whose pages
a translation keeps (its page slots) see the page tables as the CPU does
(guests/page_slots.c)."""
import re

import pytest

import diffgen as dg
from conftest import VmdbProcess, guest_checks_passed, guest_path
from test_bench_guests import check_line
from test_differential import FLAGS_COMPARED, RESULT_RE

PASS = 1
STATS = re.compile(r"vmdb: emu: (\d+) instructions retired.* (\d+) blocks translated, "
                   r"(\d+) instructions run in translations")
WAYS_OUT = re.compile(r"vmdb: emu: ways out of translations: (.*)")


@pytest.fixture
def emu_only(engine):
    if engine != "emu":
        pytest.skip("the native tier is emu's")


def ways_out(err):
    """The ways out of translations by kind (VMDB_EMU_STATS=1's line)."""
    m = WAYS_OUT.search(err)
    assert m, f"no ways-out line in:\n{err}"
    return {name: int(n) for name, n in
            (part.strip().rsplit(" ", 1) for part in m.group(1).split(","))}


def run_stats(start_vmdb, monkeypatch, kernel, jit, *args):
    """(serial, (retired, blocks translated, instructions in translations), stderr)"""
    monkeypatch.setenv("VMDB_EMU_STATS", "1")
    monkeypatch.setenv("VMDB_EMU_JIT", jit)
    vm = start_vmdb(kernel, *args)
    status = vm.wait(120)
    serial, err = vm.serial_text(), vm.stderr_text()
    assert status == PASS and "FAIL" not in serial, \
        f"status {status}\nserial:\n{serial[-2000:]}\nstderr:\n{err}"
    m = STATS.search(err)
    assert m, f"no statistics line in:\n{err}"
    return serial, tuple(int(g) for g in m.groups()), err


@pytest.mark.parametrize("bench,iters", [("compute", 20000), ("memory", 2)])
def test_hot_loops_run_translated(emu_only, start_vmdb, monkeypatch, guest, bench, iters):
    args = ("--mem", "64M", "--cmdline", f"iters={iters}")
    kernel = guest(f"bench_{bench}")
    serial, (retired, blocks, in_jit), err = run_stats(start_vmdb, monkeypatch, kernel, "", *args)
    check_line(serial, bench, iters)
    assert blocks > 0 and in_jit > retired // 2, (retired, blocks, in_jit)
    # the loops' translations go into each other (links, back edges), not
    # back through the handlers
    ways = ways_out(err)
    fast = ways["loop"] + ways["linked near"] + ways["linked far"] + ways["ret linked"]
    slow = ways["loop slow"] + ways["link slow"] + ways["ret slow"] + ways["handler"]
    assert fast > 10 * slow, ways
    serial, (_, blocks, in_jit), _ = run_stats(start_vmdb, monkeypatch, kernel, "0", *args)
    check_line(serial, bench, iters)
    assert (blocks, in_jit) == (0, 0)


def test_self_modifying_code_in_translations(emu_only, start_vmdb, monkeypatch, guest):
    serial, (retired, blocks, in_jit), _ = run_stats(start_vmdb, monkeypatch, guest("smc"),
                                                     "1")
    assert "SUMMARY: 13 checks, 0 failed" in serial, serial[-3000:]
    assert blocks > 0 and in_jit > retired // 2, (retired, blocks, in_jit)


def run_sequences(vmdb_bin, blob_path, workdir, env):
    """The diff_runner's result lines, by sequence, with env set."""
    workdir.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        vm = VmdbProcess(vmdb_bin, guest_path("diff_runner"),
                         ("--engine", "emu", "--initrd", blob_path), workdir, serial=True)
    try:
        status = vm.wait(120)
        serial = vm.serial_text()
        assert status == PASS, f"runner exit {status}\n{vm.stderr_text()}\n{serial[-2000:]}"
    finally:
        vm.close()
    return {int(m.group(1)): m for m in RESULT_RE.finditer(serial)}


def test_generated_sequences_translated(emu_only, vmdb_bin, tmp_path):
    """Flags, carries and conditions across templates, handler calls and
    TLB look-ups (the host's flags standing in for the guest's): every
    generated sequence's registers, defined flags, scratch memory and
    exception as the exact path leaves them."""
    seqs = dg.generate(20261207, 12, 200)
    dg.assemble(seqs, str(tmp_path))
    blob_path = str(tmp_path / "diff.blob")
    with open(blob_path, "wb") as f:
        f.write(dg.blob(seqs))
    jit = run_sequences(vmdb_bin, blob_path, tmp_path / "jit", {"VMDB_EMU_JIT": "1"})
    exact = run_sequences(vmdb_bin, blob_path, tmp_path / "exact", {"VMDB_EMU_NO_BLOCKS": "1"})
    for k, seq in enumerate(seqs):
        a, b = jit.get(k), exact.get(k)
        assert a and b, f"{seq.name}: no result line (translated {bool(a)}, exact {bool(b)})"
        mask = FLAGS_COMPARED & ~seq.final_undef
        assert a.group(2) == b.group(2) and int(a.group(3), 16) & mask == \
            int(b.group(3), 16) & mask and a.group(4) == b.group(4) and \
            a.group(5) == b.group(5), f"{seq.name}:\n  translated {a.group(0)}\n  exact      {b.group(0)}"


# Accesses through one base register that a translation serves from the
# page of the one before (emu_jit.c's page memo): in the same page, across
# the page boundary RBP points at (the look-up done again), straddling it
# (the exact way, then the memo looked up again), reads then writes, and
# the stack's pushes and pops as RSP moves.
PAGE_MEMO = [
    "movq -8(%rbp), %rax", "movq -16(%rbp), %rcx", "movq (%rbp), %rdx",
    "movl -2(%rbp), %esi", "movq -24(%rbp), %rdi", "movzbl 7(%rbp), %r8d",
    ("addq %rax, -24(%rbp)", dg.flags_arith()), "movq %rcx, -32(%rbp)",
    "movq %rdx, 8(%rbp)", "movw %si, -1(%rbp)", "movq %rsi, -40(%rbp)",
    "pushq %rax", "pushq %rcx", "popq %r9", "pushq %rdx", "popq %r10", "popq %r11",
    "movq -40(%rbp), %r12", "movq 16(%rbp), %r13", "movq -4000(%rbp), %r14",
    # an access the memo does not serve (an index) misses in the TLB slot
    # of the memo's page (8 MiB on): after it the memo's page is gone, and
    # the block is left after the access
    "movq -8(%rbp), %rax", "movl $0x11ff008, %ebx", ("xorl %esi, %esi", dg.flags_logic()),
    "movq (%rbx,%rsi,1), %rcx", "movq -16(%rbp), %rdx", "movq %rcx, -48(%rbp)",
    # the base moved by a constant: the memo follows it
    "leaq -64(%rbp), %rbx", "movq (%rbx), %rax", ("addq $8, %rbx", dg.flags_arith()),
    "movq (%rbx), %rcx", ("subq $24, %rbx", dg.flags_arith()), "movq 8(%rbx), %rdx",
    "leaq 72(%rbx), %rbx", "movq (%rbx), %rsi", "movq -8(%rbx), %rdi", "movl 4(%rbx), %r8d",
    ("addq %rsi, %rdi", dg.flags_arith()),
]


def test_page_memo_translated(emu_only, vmdb_bin, tmp_path):
    seq = dg.handpicked("page_memo", PAGE_MEMO * 3)
    dg.assemble([seq], str(tmp_path))
    blob_path = str(tmp_path / "diff.blob")
    with open(blob_path, "wb") as f:
        f.write(dg.blob([seq]))
    jit = run_sequences(vmdb_bin, blob_path, tmp_path / "jit", {"VMDB_EMU_JIT": "1"})
    exact = run_sequences(vmdb_bin, blob_path, tmp_path / "exact", {"VMDB_EMU_NO_BLOCKS": "1"})
    a, b = jit.get(0), exact.get(0)
    assert a and b, f"no result line (translated {bool(a)}, exact {bool(b)})"
    mask = FLAGS_COMPARED & ~seq.final_undef
    assert a.group(2) == b.group(2) and int(a.group(3), 16) & mask == \
        int(b.group(3), 16) & mask and a.group(4) == b.group(4) and \
        a.group(5) == b.group(5), f"translated {a.group(0)}\nexact      {b.group(0)}"


def test_page_slots_see_the_page_tables(start_vmdb, guest, engine, emu_jit, monkeypatch):
    """Indexed, FS-based and unaligned accesses of tight loops after the
    page is remapped (INVLPG, CR3), made read-only or its D bit cleared
    between two runs; a store after a load of a read-only page; a qword on
    into a page not present: the values, faults, error codes and CR2 of
    the CPU (on kvm too)."""
    monkeypatch.setenv("VMDB_EMU_STATS", "1")
    vm = start_vmdb(guest("page_slots"))
    guest_checks_passed(vm, 78)
    if engine == "emu":
        err = vm.stderr_text()
        ways = ways_out(err)
        assert ways["loop"] > 1000, ways
        m = re.search(r"page slots: (\d+) hits, (\d+) misses", err)
        assert m and int(m.group(1)) > max(50000, 3 * int(m.group(2))), err
