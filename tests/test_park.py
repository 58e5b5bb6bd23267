"""The park's stop: the first kick takes. A Ctrl-C stops every vCPU
without the park having to kick again (monitor info park counts the
repeated kicks), over many continue/Ctrl-C cycles of an SMP guest whose
vCPUs sleep between timer ticks (the emu scheduler then paces the guest
clock, a wait a kick must end) and of one whose vCPUs all run."""
import re

import pytest

from gdbclient import RspClient, frame, start_gdb_vmdb
from test_debug_hardening import monitor

CYCLES = 200


GUESTS = {
    "idle": ("idle", ["--smp", "2", "--cmdline", "hz=250"], r"idle: waiting"),
    "busy": ("gdb_target", ["--smp", "4", "--cmdline", "test=smp"], r"gdb smp: 4 of 4"),
}


@pytest.fixture(params=sorted(GUESTS))
def smp_stub(request, engine, start_vmdb, guest, free_port):
    if engine != "emu":
        pytest.skip("the emu scheduler's kick; KVM's is the kernel's signal")
    name, args, ready = GUESTS[request.param]
    elf = guest(name)
    vm, target = start_gdb_vmdb(start_vmdb, elf, *args, port=free_port(), wait=False)
    vm.wait_for("serial", ready, timeout=120)
    c = RspClient(target)
    yield c
    try:
        c.kill()
    except OSError:
        pass
    vm.wait(30)
    c.close()


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
    # many stops did wait for running vCPUs (others came before they ran)
    assert stops - stops0 >= CYCLES // 10, text     # the stops did wait for running vCPUs
    assert retries - retries0 == 0, text
