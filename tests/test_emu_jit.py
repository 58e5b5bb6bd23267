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
    serial, (retired, blocks, in_jit), err = run_stats(start_vmdb, monkeypatch, guest("smc"),
                                                       "1", "--cmdline", "restamp=4000000")
    assert "SUMMARY: 15 checks, 0 failed" in serial, serial[-3000:]
    assert blocks > 0 and in_jit > retired // 2, (retired, blocks, in_jit)
    # smc_restamp's 4M calls into a page that took a store (its blocks
    # compared again, the same bytes) go on through the links: the linked
    # entry finds the block current again once it is compared
    assert ways_out(err)["link slow"] < 4000000, ways_out(err)


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


def translated_vs_exact(vmdb_bin, tmp_path, seqs):
    """seqs run with every block translated at once (VMDB_EMU_JIT=1) and on
    the exact path: each one's registers, defined flags, scratch memory
    and exception must agree. The exact path's result lines, by sequence."""
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
    return exact


def test_generated_sequences_translated(emu_only, vmdb_bin, tmp_path):
    """Flags, carries and conditions across templates, handler calls and
    TLB look-ups (the host's flags standing in for the guest's): every
    generated sequence's registers, defined flags, scratch memory and
    exception as the exact path leaves them."""
    translated_vs_exact(vmdb_bin, tmp_path, dg.generate(20261207, 12, 200))


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
    translated_vs_exact(vmdb_bin, tmp_path, [dg.handpicked("page_memo", PAGE_MEMO * 3)])


FLAG_RECORDS = re.compile(r"vmdb: emu: flag records translated: (\d+) left pending, (\d+) dead "
                          r"with a memory operand, (\d+) loop heads peeled")


@pytest.mark.parametrize("jit", ["", "1"])
def test_interrupted_loop_sees_its_flags(emu_only, start_vmdb, monkeypatch, guest, jit):
    """guests/jit_flags.c: a timer (a budget cut on emu) and another CPU's
    IPIs interrupt a translated CRC-like loop whose shift's and CMP's
    records are left pending (the CMP's past the back edge: the loop's
    head is peeled) and whose XOR with memory records nothing (the CMP
    sets the flags again): at its head the pushed RFLAGS are its CMP's."""
    serial, _, err = run_stats(start_vmdb, monkeypatch, guest("jit_flags"), jit, "--smp", "2")
    assert "SUMMARY: 6 checks, 0 failed" in serial, serial[-3000:]
    m = FLAG_RECORDS.search(err)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) > 0 and int(m.group(3)) > 0, err


# Flag records a translation leaves pending (engine/emu/emu_jit.c, struct
# pend) or drops as dead, where a later instruction's fault must see them:
# each sequence ends in a #PF (4 GiB on is not mapped) whose pushed RFLAGS
# are the last flag setter's. A shift whose record waits for the load after
# it (a keyed one, one with an index), an ADD with an immediate, a SUB of
# another register, a CMP, a TEST of an immediate, IMUL, and a CRC-like loop
# whose CMP's record stays pending past the back edge, into the peeled copy
# of its head, whose loads write it when they miss.
FAULTS_AFTER = {
    "shr_then_xor_mem": [
        "movabsq $0x100000000, %rbx", "movl $0x80000003, %ecx",
        ("cmpl %ecx, %ecx", dg.flags_arith()), ("shrl $1, %ecx", dg.flags_shift("shr", 32, 1)),
        "movzbl %cl, %eax", ("xorl (%rbx,%rax,4), %ecx", dg.flags_logic())],
    "shl_then_load": [
        "movabsq $0x100000000, %rbx", "movabsq $0xc000000000000001, %rdx",
        ("testq %rdx, %rdx", dg.flags_logic()), ("shlq $1, %rdx", dg.flags_shift("shl", 64, 1)),
        "movq %rdx, %rsi", "movq 8(%rbx), %rsi"],
    "add_imm_then_load": [
        "movabsq $0x100000000, %rbx", "movl $0x7fffffff, %edx", "movl %edx, %edi",
        ("xorl %esi, %esi", dg.flags_logic()), ("addl $1, %edx", dg.flags_arith()),
        "movq (%rbx), %rax"],
    "sub_reg_then_load": [
        "movabsq $0x100000000, %rbx", "movq $5, %rdx", "movq $7, %rsi",
        ("cmpq %rdx, %rdx", dg.flags_arith()), ("subq %rsi, %rdx", dg.flags_arith()),
        "movq %rsi, %r9", "movq %rdx, %r10", "movq (%rbx), %rax"],
    "cmp_then_store": [
        "movabsq $0x100000000, %rbx", "movq $3, %rdi", "movq $9, %r8",
        ("cmpq %rdi, %rdi", dg.flags_arith()), ("cmpq %r8, %rdi", dg.flags_arith()),
        "movq %r8, %r9", "movl %edi, (%rbx)"],
    "test_imm_then_load": [
        "movabsq $0x100000000, %rbx", "movq $-1, %rdi",
        ("cmpq %rdi, %rdi", dg.flags_arith()), ("testl $0x80000000, %edi", dg.flags_logic()),
        "movq %rdi, %r9", "movq (%rbx,%rdi,1), %rax"],
    # IMUL's own record (CF = OF = overflow), 32 and 64 bits
    "imul_then_load": [
        "movabsq $0x100000000, %rbx", "movl $0x10000, %ecx", "movl %ecx, %edx",
        ("cmpl %ecx, %ecx", dg.flags_arith()), ("imull %edx, %ecx", dg.flags_mul()),
        "movl %ecx, %esi", "movl (%rbx), %eax"],
    "imul_imm_then_load": [
        "movabsq $0x100000000, %rbx", "movabsq $0x4000000000000000, %rdx", "movq %rdx, %rdi",
        ("testq %rdx, %rdx", dg.flags_logic()), ("imulq $3, %rdx, %rsi", dg.flags_mul()),
        "movq %rsi, %r9", "movq 16(%rbx), %rax"],
    # the address of the load after the head comes from a table: the
    # scratch area for 3 passes, 4 GiB in the 4th (whose CMP 3, 8 leaves
    # PF clear, where the first pass's CMP 1, 8 set it)
    "crc_loop_head": [
        "movabsq $0xff600000, %rax", "movq %rax, -0x1e8(%rbp)",
        ("xorl %edx, %edx", dg.flags_logic())] +
        [f"movq %rdx, -{0x200 - 8 * i:#x}(%rbp)" for i in range(8) if i != 3] + [
        "movq $0, %rdi", "movq $8, %r8", ("xorl %ecx, %ecx", dg.flags_logic()), "1:",
        "movq -0x200(%rbp,%rdi,8), %rsi", "movzbl (%rbp,%rsi,1), %eax",
        ("addq $1, %rdi", dg.flags_arith()), ("xorl %eax, %ecx", dg.flags_logic()),
        ("shrl $1, %ecx", dg.flags_shift("shr", 32, 1)), "movzbl %cl, %eax",
        ("xorl -0x300(%rbp,%rax,4), %ecx", dg.flags_logic()),
        ("cmpq %r8, %rdi", dg.flags_arith()), "jne 1b"],
}


def test_pending_flag_records_at_faults(emu_only, vmdb_bin, tmp_path):
    seqs = [dg.handpicked(name, lines, seed=k) for k, (name, lines) in
            enumerate(FAULTS_AFTER.items())]
    exact = translated_vs_exact(vmdb_bin, tmp_path, seqs)
    for k, seq in enumerate(seqs):
        assert "exc=14" in exact[k].group(5), f"{seq.name}: no #PF: {exact[k].group(0)}"


# LEA as one host LEA on the cached registers (emu_jit.c, lea_direct):
# bases and indexes cached or not, the SIB forms without a base or whose
# base wants a displacement (host rbp, the most used guest register's),
# 32-bit results, displacements of 0, 8 and 32 bits.
LEA_FORMS = [
    "leaq (%rsi,%rdi,4), %rax", "leaq (%rsi), %rcx", "leal 8(%rdi,%rsi,2), %edx",
    "leaq (,%rsi,8), %r8", "leal -5(,%rdi,2), %r9d", "leaq 0x12345, %r10",
    "leaq 3(%r13), %r11", "leaq (%r12,%r13,1), %rbx", "leal -0x1234(%rsi,%r12,8), %r12d",
    "leaq 0x7fff0000(%rsi), %rsi", "leaq (%rdi,%rsi,1), %rdi", "leal (%rsi), %esi",
    "leaq 16(%rsp), %r14", "leaq (%rsp,%rsi,2), %r15", "leaq -1(%rsi,%rsi,8), %r13",
]


def test_lea_translated(emu_only, vmdb_bin, tmp_path):
    translated_vs_exact(vmdb_bin, tmp_path, [dg.handpicked("lea", LEA_FORMS * 3)])


def test_page_slots_see_the_page_tables(start_vmdb, guest, engine, emu_jit, monkeypatch):
    """Indexed, FS-based and unaligned accesses of tight loops after the
    page is remapped (INVLPG, CR3), made read-only or its D bit cleared
    between two runs; a store after a load of a read-only page; a qword on
    into a page not present: the values, faults, error codes and CR2 of
    the CPU (on kvm too). The same with nothing but the page table write
    and INVLPG or CR3 between two loops of one routine (emu's slots
    outlive translations and their entries from C: what changes the TLB
    empties them), and code stored by a loop into the page it wrote
    before the code ran (the frame gained blocks: its write slot goes).
    And a loop that read a supervisor page at CPL 0 faults on it at CPL 3
    (the slots of the other CPL's TLB go)."""
    monkeypatch.setenv("VMDB_EMU_STATS", "1")
    vm = start_vmdb(guest("page_slots"))
    guest_checks_passed(vm, 123)
    if engine == "emu":
        err = vm.stderr_text()
        ways = ways_out(err)
        assert ways["loop"] > 1000, ways
        m = re.search(r"page slots: (\d+) hits, (\d+) misses", err)
        assert m and int(m.group(1)) > max(50000, 3 * int(m.group(2))), err
