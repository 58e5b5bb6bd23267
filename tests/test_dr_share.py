"""The guest's own debug registers while gdb holds hardware breakpoints
(debug/dr_share.c), judged by guests/dr_share.c itself.

gdb puts an hbreak on dr_share_mark; then the guest arms DR0 and DR1 on
two functions of its own (and DR2 for a 4-byte write where data
breakpoints fire: emu), calls them in three rounds with dr_share_mark in
between, and checks each of its own #DBs (RIP, DR6 with its own bit only),
then DR7.GD where the engine traps it. On an engine with one DR set per
vCPU (kvm; emu with `--cpu intel,shared-dr`) the hbreak sat in DR0, which
the guest takes: it must move and still stop, and `monitor info dr` must
show the guest's slots and where the hbreak went. Both sets of hits reach
their owners: gdb stops at every call of dr_share_mark (5), the guest
passes its checks, and the DR values it reads back (its "dr:" line: DR0-7,
DR4/DR5 as aliases) are the same with gdb attached as without.
"""
import re

import pytest

from gdbclient import gdb_batch, start_gdb_vmdb

MARK_CALLS = 5          # before arming, one per round (3), after disarming


def run_args(engine, dr_set):
    """vmdb arguments and the guest's command line for one configuration."""
    args = ["--cpu", "intel,shared-dr"] if engine == "emu" and dr_set == "shared" else []
    # this host's KVM fires no data breakpoints and traps no MOV DR under GD
    cmdline = "gd kvm_host" if engine == "kvm" else "data gd"
    return args + ["--cmdline", cmdline]


def serial_lines(vm):
    return [line.rstrip() for line in vm.serial_text().splitlines()]


def assert_passed(status, lines, what):
    text = "\n".join(lines)
    assert status == 1, f"{what}: exit status {status} (1 = pass)\n{text}"
    assert any(l.startswith("SUMMARY:") for l in lines), f"{what}: no SUMMARY\n{text}"
    assert not any(l.startswith("FAIL") for l in lines), f"{what}:\n{text}"


def dr_line(lines):
    found = [l for l in lines if l.startswith("dr: ")]
    assert len(found) == 1, "\n".join(lines)
    return found[0]


@pytest.mark.parametrize("dr_set", ["own", "shared"])
def test_guest_and_gdb_hbreak(start_vmdb, engine, guest, free_port, dr_set):
    if engine == "kvm" and dr_set == "own":
        pytest.skip("kvm has one DR set per vCPU: the shared case covers it")
    elf = guest("dr_share")
    args = run_args(engine, dr_set)

    plain = start_vmdb(elf, *args)
    status = plain.wait(60)
    plain_lines = serial_lines(plain)
    assert_passed(status, plain_lines, "nobody attached")

    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    out = gdb_batch(elf, target, ["hbreak dr_share_mark", "continue", "continue",
                                  "monitor info dr"] + ["continue"] * (MARK_CALLS - 1),
                    timeout=120)
    status = vm.wait(60)
    lines = serial_lines(vm)
    assert_passed(status, lines, f"gdb attached\n{out[-3000:]}")
    stops = len(re.findall(r"Breakpoint 1, 0x[0-9a-f]+ in dr_share_mark", out))
    assert stops == MARK_CALLS, f"{stops} hbreak stops, expected {MARK_CALLS}\n{out[-3000:]}"
    assert dr_line(lines) == dr_line(plain_lines)

    if engine == "kvm" or dr_set == "shared":
        assert "one set per vCPU shared with the guest" in out, out
        assert re.search(r"DR0: guest, 0x[0-9a-f]+ exec", out), out
        assert re.search(r"DR1: guest, 0x[0-9a-f]+ exec", out), out
        # the hbreak left DR0 for a slot the guest does not use
        assert re.search(r"DR[23]: gdb hbreak, 0x[0-9a-f]+ exec", out), out
        assert "moved 1," in out, out
    else:
        assert "the debugger has its own set per vCPU" in out, out


@pytest.mark.parametrize("dr_set", ["own", "shared"])
def test_sdm_rules_with_hbreak_held(start_vmdb, engine, guest, free_port, dr_set):
    """dbg_regs.elf (every DR rule it checks: reserved bits, DR4/DR5,
    instruction breakpoints with RF and L/G, data, I/O, GD) with gdb's
    hbreak on report_summary loaded all along: on a shared set the hbreak
    moves and waits as the guest takes DR0-3, the guest's hits go through
    vmdb, and the guest still sees exactly what the SDM says; gdb stops at
    report_summary once, after all of it."""
    if engine == "kvm" and dr_set == "own":
        pytest.skip("kvm has one DR set per vCPU: the shared case covers it")
    elf = guest("dbg_regs")
    args = ["--cpu", "intel,shared-dr"] if engine == "emu" and dr_set == "shared" else []
    args += ["--cmdline", "kvm_host" if engine == "kvm" else ""]
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    out = gdb_batch(elf, target, ["hbreak report_summary", "continue", "monitor info dr",
                                  "continue"], timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    assert len(re.findall(r"Breakpoint 1, report_summary", out)) == 1, out[-3000:]
    if engine == "emu" and dr_set == "shared":
        # the exec group fills DR0-3: the hbreak had to wait, and came back
        moved = re.search(r"moved (\d+), waited (\d+), guest hits reflected (\d+)", out)
        assert moved and int(moved[2]) >= 1 and int(moved[3]) >= 1, out[-3000:]


@pytest.mark.parametrize("dr_set", ["own", "shared"])
def test_guest_and_gdb_watchpoint(start_vmdb, engine, guest, free_port, dr_set):
    """gdb holds an hbreak and a write watchpoint on `watched`, the guest
    DR0 and DR1: on a shared set both of gdb's move out of the guest's way
    and every hit of each side reaches its owner (5 hbreak stops, 3 value
    changes, the guest's own #DBs checked by the guest)."""
    if engine == "kvm":
        pytest.skip("this host's KVM fires no data breakpoints: gdb's watch is declined")
    elf = guest("dr_share")
    args = ["--cpu", "intel,shared-dr"] if dr_set == "shared" else []
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, "--cmdline", "store", port=free_port())
    out = gdb_batch(elf, target, ["hbreak dr_share_mark", "watch watched", "continue",
                                  "continue", "continue", "monitor info dr"] +
                    ["continue"] * (MARK_CALLS + 3 - 2), timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    stops = len(re.findall(r"Breakpoint 1, 0x[0-9a-f]+ in dr_share_mark", out))
    assert stops == MARK_CALLS, f"{stops} hbreak stops\n{out[-3000:]}"
    assert re.findall(r"New value = (\d+)", out) == ["1", "2", "3"], out[-3000:]
    if dr_set == "shared":
        assert re.search(r"DR0: guest, 0x[0-9a-f]+ exec", out), out
        assert re.search(r"DR[23]: gdb watchpoint piece, 0x[0-9a-f]+ write 4", out), out
        assert re.search(r"DR[23]: gdb hbreak, 0x[0-9a-f]+ exec", out), out


@pytest.mark.parametrize("dr_set", ["own", "shared"])
def test_guest_and_gdb_on_one_instruction(start_vmdb, engine, guest, free_port, dr_set):
    """gdb's hbreak and the guest's DR0 on the same instruction
    (dr_share_f0): both honoured. gdb stops there at every call (its stop
    first; the guest's breakpoint faults again when the instruction is
    retried and its #DB reaches it, checked by the guest). Where the
    engine raises gdb's breakpoint again after the guest's handler
    returned with RF set (emu's own set, this host's KVM emulator) gdb sees
    that arrival too, so up to two stops per guest hit."""
    if engine == "kvm" and dr_set == "own":
        pytest.skip("kvm has one DR set per vCPU: the shared case covers it")
    elf = guest("dr_share")
    args = ["--cpu", "intel,shared-dr"] if engine == "emu" and dr_set == "shared" else []
    args += ["--cmdline", "kvm_host" if engine == "kvm" else ""]
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    out = gdb_batch(elf, target, ["hbreak dr_share_mark", "hbreak dr_share_f0"] +
                    ["continue"] * 13, timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    marks = len(re.findall(r"Breakpoint 1, 0x[0-9a-f]+ in dr_share_mark", out))
    f0 = len(re.findall(r"Breakpoint 2, 0x[0-9a-f]+ in dr_share_f0", out))
    assert marks == MARK_CALLS, out[-3000:]
    # 3 calls with the guest's breakpoint armed, 1 after it let go
    assert 4 <= f0 <= 7, f"{f0} stops at dr_share_f0\n{out[-3000:]}"
    if engine == "emu" and dr_set == "shared":
        assert f0 == 4, out[-3000:]       # RF honoured as on hardware


def test_ap_takes_the_hbreaks_slot(start_vmdb, engine, guest, free_port):
    """Two vCPUs, one shared set each (kvm; emu shared-dr): after the BSP
    gave back DR0/DR1, gdb's hbreak sits in DR2; the AP takes DR2 for its
    own breakpoint (hit once, DR6.B2 only, checked by the guest). The
    hbreak moves on every vCPU to the same free slot and still stops the
    BSP (6 stops)."""
    elf = guest("dr_share")
    args = ["--smp", "2"] + (["--cpu", "intel,shared-dr"] if engine == "emu" else [])
    args += ["--cmdline", "smp kvm_host" if engine == "kvm" else "smp"]
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    out = gdb_batch(elf, target, ["hbreak dr_share_mark"] + ["continue"] * 5 +
                    ["monitor info dr", "continue", "continue"], timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    assert len(re.findall(r"hit Breakpoint 1, 0x[0-9a-f]+ in dr_share_mark", out)) == 6, \
        out[-3000:]
    ap = out[out.index("vCPU 1 guest:"):]
    assert re.search(r"DR2: guest, 0x[0-9a-f]+ exec", ap), out
    slots = re.findall(r"DR(\d): gdb hbreak", out[out.index("vCPU 0 guest:"):])
    assert len(slots) == 2 and slots[0] == slots[1] and slots[0] != "2", out


ALL4_MARKS = 2          # dr_share_mark calls while the guest holds DR0-3


@pytest.mark.parametrize("inserted", ["always", "at_resume"])
def test_hbreak_with_no_slot_left(start_vmdb, engine, guest, free_port, inserted):
    """The guest takes all four DRs (`all4`) while gdb holds an hbreak on
    dr_share_mark, called between the guest's own hits: with no slot left,
    an int3 stands in for the hbreak at once, so it still stops there every
    time, and gives way to a slot again once the guest lets go; the guest
    checks each of its own #DBs. A second hbreak on the local APIC's page
    (MMIO: no int3 can go there) waits, and `monitor info dr` says which is
    which. gdb keeps its breakpoints inserted while stopped, or (as by
    default) takes them out at each stop and puts them back to resume: a
    Z1 inserted with no free slot."""
    elf = guest("dr_share")
    args = ["--cpu", "intel,shared-dr"] if engine == "emu" else []
    args += ["--cmdline", "all4 kvm_host" if engine == "kvm" else "all4"]
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    mode = "on" if inserted == "always" else "off"
    calls = MARK_CALLS + ALL4_MARKS
    out = gdb_batch(elf, target, [f"set breakpoint always-inserted {mode}",
                                  "hbreak dr_share_mark", "hbreak *0xfee00000"] +
                    ["continue"] * 5 + ["monitor info dr"] + ["continue"] * (calls - 4),
                    timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    stops = len(re.findall(r"Breakpoint 1, 0x[0-9a-f]+ in dr_share_mark", out))
    assert stops == calls, f"{stops} hbreak stops, expected {calls}\n{out[-3000:]}"
    if inserted == "always":
        info = out[out.index("vCPU 0 guest:"):]
        dr7 = int(re.search(r"vCPU 0 guest: .* DR7 0x([0-9a-f]+)", info)[1], 16)
        assert all(dr7 & (3 << 2 * p) for p in range(4)), info
        assert re.search(r"waiting for a free slot: gdb hbreak, 0x[0-9a-f]+; an int3 stands "
                         r"in for it meanwhile", info), info
        assert re.search(r"waiting for a free slot: gdb hbreak, 0xfee00000; .*no int3 can "
                         r"stand in", info), info


def test_watchpoint_pushed_out_watches_at_once(start_vmdb, engine, guest, free_port):
    """gdb watches `watched` (emu shared-dr: in a DR slot; kvm here: a page
    trap) and nothing else; the guest writes it 1, 2, 3 while holding DR0
    and DR1, then takes all four DRs and writes 10 before anything stops
    the machine, and 11: the watchpoint the guest pushed out of DR0-3 is
    watched by the engine from that exit on, so gdb sees every value."""
    elf = guest("dr_share")
    args = ["--cpu", "intel,shared-dr"] if engine == "emu" else []
    args += ["--cmdline", "all4 store kvm_host" if engine == "kvm" else "all4 store"]
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port())
    out = gdb_batch(elf, target, ["watch watched"] + ["continue"] * 6, timeout=120)
    status = vm.wait(60)
    assert_passed(status, serial_lines(vm), f"gdb attached\n{out[-3000:]}")
    assert re.findall(r"New value = (\d+)", out) == ["1", "2", "3", "10", "11"], out[-3000:]
