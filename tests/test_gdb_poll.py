"""The server's look for a client's next packet (gdbserver/server.c): after
answering, vmdb polls its socket for a moment before it sleeps, the moment
adapted to how quickly this client's packets come. Whatever the client's
pace (back to back, pipelined, pausing), every answer is the right one;
`monitor poll` turns the look off and on; and a client that goes quiet
costs vmdb no CPU once the look has ended."""
import os
import time

import pytest

from gdbclient import frame, rsp_session, start_gdb_vmdb

SCRATCH = 0x300000          # identity-mapped RAM the regs scenario never touches
PATTERN = bytes((i * 37 + 11) & 0xff for i in range(256))
# gaps before requests: none, inside the look, past it, a human's
PAUSES = (0, 0.0002, 0.0005, 0.003, 0.03)


@pytest.fixture
def stub(start_vmdb, guest, free_port):
    vm, target = start_gdb_vmdb(start_vmdb, guest("gdb_target"), "--cmdline", "test=regs",
                                port=free_port())
    with rsp_session(vm, target) as c:
        c.vm = vm
        c.start_noack()
        assert c.request(f"M{SCRATCH:x},{len(PATTERN):x}:{PATTERN.hex()}") == b"OK"
        yield c


def read_request(i):
    """The i-th memory read of the pattern and the reply it must get."""
    off, n = (i * 13) % 128, 1 + (i * 7) % 128
    return f"m{SCRATCH + off:x},{n:x}", PATTERN[off:off + n].hex().encode()


def rip(c):
    return int.from_bytes(bytes.fromhex(c.request("p10").decode()), "little")


def exchange(c, count, pause=lambda i: 0):
    """count requests, alternating steps and memory reads, each answer
    checked; pause(i) seconds of silence before request i."""
    start = rip(c)
    for i in range(count):
        if pause(i):
            time.sleep(pause(i))
        if i % 2:
            req, want = read_request(i)
            assert c.request(req) == want, (i, req)
        else:
            reply = c.request("vCont;s:1")
            assert reply.startswith(b"T05thread:1;"), (i, reply)
    assert rip(c) != start


def monitor(c, cmd):
    c.send_raw(frame("qRcmd," + cmd.encode().hex()))
    text = b""
    while True:
        reply = c.read_packet()
        if reply == b"OK" or not reply.startswith(b"O"):
            return reply, text.decode()
        text += bytes.fromhex(reply[1:].decode())


def cpu_seconds(pid):
    """CPU time of every thread of the process so far."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def test_back_to_back_and_pipelined(stub):
    exchange(stub, 400)
    # several requests in one write, as a pipelining client sends them:
    # answered in order, none lost while the server was looking
    reqs = [read_request(i) for i in range(24)]
    stub.send_raw(b"".join(frame(r) for r, _ in reqs))
    for i, (req, want) in enumerate(reqs):
        assert stub.read_packet() == want, (i, req)


def test_pausing_client(stub):
    exchange(stub, 40, pause=lambda i: PAUSES[i % len(PAUSES)])


def test_monitor_poll_knob(stub):
    reply, text = monitor(stub, "poll off")
    assert reply == b"OK" and "sleeps as soon as it has answered" in text, text
    exchange(stub, 40, pause=lambda i: PAUSES[i % 3])
    reply, text = monitor(stub, "poll 300")
    assert reply == b"OK" and "up to 300 us" in text, text
    exchange(stub, 40, pause=lambda i: PAUSES[i % 3])
    reply, text = monitor(stub, "poll")
    assert reply == b"OK" and "up to 300 us" in text, text
    reply, text = monitor(stub, "poll sometimes")
    assert reply == b"OK" and "bad argument" in text, text
    assert monitor(stub, "poll on")[0] == b"OK"


def test_idle_client_costs_no_cpu(stub):
    # a pace just past the first look widens it to its widest ...
    exchange(stub, 30, pause=lambda i: 0.0004)
    pid = stub.vm.proc.pid
    before = cpu_seconds(pid)
    time.sleep(1.0)
    idle = cpu_seconds(pid) - before
    # ... and still a quiet client costs at most that one look (1 ms), not
    # a second of polling; the bound is generous for a loaded machine
    assert idle < 0.1, f"vmdb used {idle:.3f} s of CPU while its client was quiet for 1 s"
    exchange(stub, 4)
