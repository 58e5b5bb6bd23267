"""The park's stop: the first kick takes. A Ctrl-C stops every vCPU
without the park having to kick again (monitor info park counts the
repeated kicks), over many continue/Ctrl-C cycles of an SMP guest whose
vCPUs sleep between timer ticks (the emu scheduler then paces the guest
clock, a wait a kick must end) and of one whose vCPUs all run."""
import re

import pytest

from gdbclient import RspClient, frame, rsp_session, start_gdb_vmdb
from test_debug_hardening import monitor, symbol

CYCLES = 200


GUESTS = {
    "idle": ("idle", ["--smp", "2", "--cmdline", "hz=250"], r"idle: waiting"),
    "busy": ("gdb_target", ["--smp", "4", "--cmdline", "test=smp"], r"gdb smp: 4 of 4"),
}


@pytest.fixture(params=sorted(GUESTS))
def smp_stub(request, engine, start_vmdb, guest, free_port, monkeypatch):
    if engine != "emu":
        pytest.skip("the emu scheduler's kick; KVM's is the kernel's signal")
    # a kick repeated after 20 ms may only mean a loaded host was slow to
    # run the vCPU threads; one repeated after 2 s means the first was lost
    monkeypatch.setenv("VMDB_KICK_RETRY_MS", "2000")
    name, args, ready = GUESTS[request.param]
    elf = guest(name)
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port(), wait=False)
    vm.wait_for("serial", ready, timeout=120)
    with rsp_session(vm, target) as c:
        yield c


def park_counts(c):
    text, reply = monitor(c, "info park")
    assert reply == b"OK", reply
    stops = re.search(r"stops that waited for a vCPU: (\d+)", text)
    retries = re.search(r"kicks repeated after \d+ ms without a park: (\d+)", text)
    assert stops and retries, text
    return int(stops.group(1)), int(retries.group(1)), text


def test_ctrl_c_first_kick_takes(smp_stub):
    c = smp_stub
    assert c.request("?").startswith(b"T")
    stops0, retries0, _ = park_counts(c)
    for i in range(CYCLES):
        c.send_raw(frame("vCont;c"))
        assert c.read_byte() == b"+"
        c.send_raw(b"\x03")
        reply = c.read_packet()
        assert reply.startswith(b"T"), f"cycle {i}: {reply!r}"
    stops, retries, text = park_counts(c)
    # how many stops met running vCPUs depends on the host (a Ctrl-C read
    # with its vCont finds them still parked): the message says
    assert retries - retries0 == 0, f"{stops - stops0} stops waited\n{text}"


# 1: in $0x92,%al (system control port A reads 0x02); out %al,$0x80; jmp 1b
IO_LOOP = bytes.fromhex("e492e680ebfa")


def test_stepi_over_port_io_runs_on_the_clients_thread(engine, start_vmdb, guest, free_port):
    """Steps of IN and OUT are lent steps to the end: the device exits are
    handled on the client's thread (monitor info park counts them), the
    IN's value reaches RAX and every step ends at the next instruction
    (on kvm too, where this host's KVM would trap one instruction late:
    the kvm engine completes the access alone and ends the step there)."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    with rsp_session(vm, target) as c:
        loop = symbol(elf, "gdb_regs_ready")
        assert c.request("Z0,%x,1" % loop) == b"OK"
        assert c.request("vCont;c").startswith(b"T05")
        assert c.request("z0,%x,1" % loop) == b"OK"
        assert c.request("M%x,%x:%s" % (loop, len(IO_LOOP), IO_LOOP.hex())) == b"OK"
        assert c.request("P0=" + (0x5555).to_bytes(8, "little").hex()) == b"OK"
        text0, _ = monitor(c, "info park")
        before = int(re.search(r"client's thread: (\d+)", text0).group(1))
        nexts = {loop: loop + 2, loop + 2: loop + 4, loop + 4: loop}
        rip = loop
        for i in range(30):
            reply = c.request("vCont;s:1")
            assert reply.startswith(b"T05"), f"step {i}: {reply!r}"
            got = int.from_bytes(bytes.fromhex(c.request("p10").decode()), "little")
            assert got == nexts[rip], \
                f"step {i}: rip {got:#x} after {rip:#x}"
            if i == 0:
                rax = int.from_bytes(bytes.fromhex(c.request("p0").decode()), "little")
                assert rax == 0x5502, f"IN gave rax {rax:#x}"
            rip = got
        text, _ = monitor(c, "info park")
        handled = int(re.search(r"client's thread: (\d+)", text).group(1)) - before
        assert handled == 20 if engine == "emu" else handled >= 10, text


@pytest.mark.parametrize("code, want", [
    ("b005e6f4ebfe", b"W0b"),      # mov $5,%al; out %al,$0xf4: the debug-exit port ends it
    ("b0fee664ebfe", b"T05"),      # mov $0xfe,%al; out %al,$0x64: the i8042 resets it
])
def test_stepi_into_a_device_that_ends_or_resets_the_machine(start_vmdb, guest, free_port,
                                                              code, want):
    """A lent step whose OUT stops or resets the machine: the exit status,
    or a step that ends at the new boot's first instruction."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    c = RspClient(target)
    try:
        loop = symbol(elf, "gdb_regs_ready")
        assert c.request("Z0,%x,1" % loop) == b"OK"
        assert c.request("vCont;c").startswith(b"T05")
        assert c.request("z0,%x,1" % loop) == b"OK"
        raw = bytes.fromhex(code)
        assert c.request("M%x,%x:%s" % (loop, len(raw), raw.hex())) == b"OK"
        assert c.request("vCont;s:1").startswith(b"T05")
        assert c.request("vCont;s:1").startswith(want)
        if want == b"T05":
            rip = int.from_bytes(bytes.fromhex(c.request("p10").decode()), "little")
            assert rip != loop + 4, "the reset did not happen"
            assert c.request("vCont;s:1").startswith(b"T05"), "steps go on after the reset"
    finally:
        if want != b"W0b":
            c.kill()
        assert vm.wait(30) == (11 if want == b"W0b" else 0)
        c.close()
