"""The debug core under pressure: no event lost (a burst of Ctrl-C, the
longest monitor texts), no guest byte corrupted by a breakpoint, parked
state changed behind the debugger's back seen, and a step of an idle
(halted) vCPU that completes on every engine."""
import contextlib
import re
import subprocess

import pytest

from gdbclient import RspClient, frame, gdb_batch, rsp_session, start_gdb_vmdb
from test_gdb_nonstop import read_notification


def symbol(elf, name):
    out = subprocess.run(["nm", elf], capture_output=True, text=True, check=True).stdout
    m = re.search(rf"^([0-9a-f]+) \w {re.escape(name)}$", out, re.M)
    assert m, f"{name} not in {elf}"
    return int(m.group(1), 16)


def monitor(c, command):
    """qRcmd: the console text of its O packets, then its final reply."""
    c.send_raw(frame("qRcmd," + command.encode().hex()))
    assert c.read_byte() == b"+"
    text = b""
    while True:
        p = c.read_packet()
        if p.startswith(b"O") and p != b"OK":
            text += bytes.fromhex(p[1:].decode())
            continue
        return text.decode(), p


@pytest.fixture
def regs_stub(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    with rsp_session(vm, target) as c:
        yield elf, c


def test_ctrl_c_burst_is_one_stop_and_later_hits_arrive(regs_stub):
    elf, c = regs_stub
    spin = symbol(elf, "gdb_regs_ready")
    c.send_raw(frame("vCont;c"))
    assert c.read_byte() == b"+"
    c.send_raw(b"\x03" * 2000)
    reply = c.read_packet()
    assert reply.startswith(b"T02thread:1;"), reply
    # one stop for the burst: the next answer is the answer to the next request
    assert c.request("qC") == b"QC1"
    # a breakpoint hit after the burst is still reported
    assert c.request("Z0,%x,1" % spin) == b"OK"
    reply = c.request("vCont;c")
    assert reply.startswith(b"T05thread:1;"), reply
    assert c.request("p10") == spin.to_bytes(8, "little").hex().encode()


def test_info_caps_whole_with_every_vector_caught(regs_stub):
    _, c = regs_stub
    text, reply = monitor(c, "catch " + " ".join(str(v) for v in range(32)))
    assert reply == b"OK", (text, reply)
    text, reply = monitor(c, "info caps")
    assert reply == b"OK"
    caught = re.search(r"catching now:([^\n]*)\n", text)
    assert caught, text
    assert len(caught.group(1).split()) == 32, caught.group(1)
    # the mechanisms text whole: its last line, then the line after it
    assert re.search(r"\nstop-all: [^\n]*stop reply\ninterrupts while stepping: \S[^\n]*\n$",
                     text), text[-400:]


# ---- a step of a halted vCPU ----

def read_u64(c, addr):
    return int.from_bytes(bytes.fromhex(c.request("m%x,8" % addr).decode()), "little")


def rip(c):
    return read_u64_reg(c, 0x10)


def read_u64_reg(c, n):
    return int.from_bytes(bytes.fromhex(c.request("p%x" % n).decode()), "little")


def halted_at(c, where):
    extra = bytes.fromhex(c.request("qThreadExtraInfo,1").decode()).decode()
    return "halted" in extra and rip(c) == where


def run_until_halted(c):
    """The attach caught the vCPU between two HLTs: let it run in non-stop
    mode, where the client may look at it while it runs, until it sleeps
    in its HLT, then stop it there. (In all-stop mode a Ctrl-C right after
    the continue can stop it again before its thread ever ran.)"""
    assert c.request("QNonStop:1") == b"OK"
    assert c.request("?").startswith(b"T")
    assert c.request("vStopped") == b"OK"
    assert c.request("vCont;c:1") == b"OK"
    for _ in range(100000):    # each look pauses it a moment; it runs between looks
        if "halted" in bytes.fromhex(c.request("qThreadExtraInfo,1").decode()).decode():
            break
    assert c.request("vCont;t:1") == b"OK"
    assert read_notification(c).startswith(b"T")
    assert c.request("vStopped") == b"OK"
    assert c.request("QNonStop:0") == b"OK"


@pytest.fixture
def idle_guest(start_vmdb, guest, free_port):
    """The idle guest attached while it sleeps in its HLT; hz as the test says."""
    sessions = contextlib.ExitStack()

    def attach(hz):
        elf = guest("idle")
        vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", f"hz={hz}",
                                    port=free_port(), wait=False)
        vm.wait_for("serial", r"idle: waiting", timeout=60)
        c = sessions.enter_context(rsp_session(vm, target))
        assert c.request("?").startswith(b"T"), "attach stops the machine"
        after = symbol(elf, "idle_after_hlt")
        # (with a timer, it may wake between the look and the stop: again)
        for _ in range(20):
            if halted_at(c, after):
                break
            run_until_halted(c)
        assert halted_at(c, after)
        return elf, c, after

    with sessions:
        yield attach


def test_stepi_on_halted_vcpu_waits_for_its_wakeup(idle_guest):
    elf, c, after = idle_guest(20)
    ticks = symbol(elf, "idle_ticks")
    before = read_u64(c, ticks)
    reply = c.request("vCont;s:1")
    assert reply.startswith(b"T05thread:1;"), reply
    # the HLT ended as the guest asked (its timer interrupt ran, held off
    # from the step itself) and the step stops at the next instruction
    assert read_u64(c, ticks) > before
    assert rip(c) == after
    assert not halted_at(c, after)
    # the next step executes that instruction (nop)
    assert c.request("vCont;s:1").startswith(b"T05thread:1;")
    assert rip(c) == after + 1


def test_stepi_on_halted_vcpu_enters_handler_with_sstep_irq(idle_guest):
    elf, c, after = idle_guest(20)
    text, reply = monitor(c, "sstep irq on")
    assert reply == b"OK", text
    reply = c.request("vCont;s:1")
    assert reply.startswith(b"T05thread:1;"), reply
    # the wake-up's interrupt (the timer's, RT_VEC_TIMER 0xec) was
    # delivered: the step ends in its entry stub, at or one instruction
    # (push $0) into it, over a frame whose RIP is after the HLT
    pc, stub = rip(c), symbol(elf, "isr_236")
    assert stub <= pc <= stub + 2, (hex(pc), hex(stub))
    sp = read_u64_reg(c, 7) + (pc - stub) * 4
    assert read_u64(c, sp) == after, (hex(pc), hex(read_u64(c, sp)))


def test_ctrl_c_ends_a_step_waiting_for_a_wakeup_that_never_comes(idle_guest):
    _, c, after = idle_guest(0)
    c.send_raw(frame("vCont;s:1"))
    assert c.read_byte() == b"+"
    c.send_raw(b"\x03")
    reply = c.read_packet()
    assert reply.startswith(b"T02thread:1;"), reply
    assert halted_at(c, after)


# ---- breakpoints where virtual != physical ----

HH_VA = 0xffff800000000000


@pytest.fixture
def highhalf(start_vmdb, guest, free_port):
    elf = guest("highhalf")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    c = RspClient(target)
    c.request("QEnableErrorStrings")
    yield elf, vm, c
    c.close()
    vm.wait(30)


def test_physical_breakpoint_hit_through_higher_half_alias(highhalf):
    elf, vm, c = highhalf
    code = symbol(elf, "hh_code")
    text, reply = monitor(c, "phys on")
    assert reply == b"OK", text
    assert c.request("Z0,%x,1" % code) == b"OK"
    # each of the three calls at HH_VA stops at the physical breakpoint,
    # none reaches the guest as #BP
    for _ in range(3):
        reply = c.request("vCont;c")
        assert reply.startswith(b"T05thread:1;"), reply
        assert rip(c) == HH_VA
        assert c.request("m%x,1" % code) == b"48"     # the original byte shows
    assert c.request("z0,%x,1" % code) == b"OK"
    assert c.request("m%x,1" % code) == b"48"
    reply = c.request("vCont;c")
    assert reply == b"W01", (reply, vm.serial_text())     # 3 calls: the guest passed
    assert "highhalf: 3 calls" in vm.serial_text()


def test_hardware_breakpoints_refused_in_phys_mode(highhalf):
    elf, vm, c = highhalf
    code = symbol(elf, "hh_code")
    text, reply = monitor(c, "phys on")
    assert reply == b"OK", text
    # hardware breakpoints (DR0-3) match linear addresses; watchpoints
    # become physical ones (tests/test_phys_watch.py)
    reply = c.request("Z1,%x,1" % code)
    assert reply.startswith(b"E"), reply
    assert b"linear" in bytes.fromhex(reply.split(b";", 1)[1].decode()), reply
    for z in ("Z2,%x,8", "Z4,%x,8"):
        assert c.request(z % code) == b"OK", z
        assert c.request("z" + z[1:] % code) == b"OK", z
    text, reply = monitor(c, "phys off")
    assert c.request("Z1,%x,1" % code) == b"OK"
    assert c.request("z1,%x,1" % code) == b"OK"
    c.kill()


# ---- state changed behind the park's back ----

def test_init_sent_by_stepped_vcpu_is_seen_on_the_parked_one(start_vmdb, guest, free_port):
    elf = guest("initipi")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    c = RspClient(target)
    icr = symbol(elf, "initipi_icr")
    assert c.request("Z0,%x,1" % icr) == b"OK"
    reply = c.request("vCont;c")
    assert reply.startswith(b"T05thread:1;"), reply
    assert c.request("z0,%x,1" % icr) == b"OK"
    # the AP's registers, read (and kept by the debug core) while it sleeps
    assert c.request("Hg2") == b"OK"
    assert len(c.request("g")) > 100
    ap_rip = rip(c)
    assert ap_rip != 0xfff0
    # the BSP's step writes the ICR: INIT for the parked AP
    assert c.request("Hg1") == b"OK"
    reply = c.request("vCont;s:1")
    assert reply.startswith(b"T05thread:1;"), reply
    extra = bytes.fromhex(c.request("qThreadExtraInfo,2").decode()).decode()
    assert "SIPI" in extra, extra
    assert c.request("Hg2") == b"OK"
    assert rip(c) == 0xfff0, (hex(rip(c)), hex(ap_rip))
    assert read_u64_reg(c, 0x12) & 0xffff == 0xf000      # cs after INIT
    # writing the registers back (what a G does) keeps the INIT's state
    regs = c.request("g")
    assert c.request(b"G" + regs) == b"OK"
    assert rip(c) == 0xfff0
    reply = c.request("vCont;c")
    assert reply == b"W01", (reply, vm.serial_text())
    c.close()
    vm.wait(30)


def test_stepi_over_sti_hlt_waits_for_the_wakeup(idle_guest):
    elf, c, after = idle_guest(20)
    wait = symbol(elf, "idle_wait")
    ticks = symbol(elf, "idle_ticks")
    assert c.request("Z0,%x,1" % wait) == b"OK"
    assert c.request("vCont;c").startswith(b"T05thread:1;")
    assert c.request("z0,%x,1" % wait) == b"OK"
    # to the HLT (sti is one byte before it), then over it
    for _ in range(8):
        if rip(c) == after - 1:
            break
        assert c.request("vCont;s:1").startswith(b"T05thread:1;")
    assert rip(c) == after - 1
    before = read_u64(c, ticks)
    assert c.request("vCont;s:1").startswith(b"T05thread:1;")
    assert rip(c) == after
    assert read_u64(c, ticks) > before
