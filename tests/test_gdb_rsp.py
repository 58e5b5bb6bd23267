"""The gdb stub at the protocol level, with a raw socket client: malformed
input of every kind, no-ack mode, the largest packets, Ctrl-C, and the
answers gdb relies on. Nothing may crash or wedge the stub: each test ends
by checking that a normal request still gets its normal answer."""
import re

import pytest

from gdbclient import frame, rsp_session, start_gdb_vmdb


SCRATCH = 0x300000          # identity-mapped RAM the regs scenario never touches


@pytest.fixture
def stub(start_vmdb, guest, free_port):
    vm, target = start_gdb_vmdb(start_vmdb, guest("gdb_target"), "--cmdline", "test=regs",
                                port=free_port())
    with rsp_session(vm, target) as c:
        yield c


def alive(c):
    assert c.request("qC") == b"QC1"


def test_qsupported_and_target_xml(stub):
    sup = stub.request("qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386")
    for feature in (b"PacketSize=20000", b"qXfer:features:read+", b"vContSupported+",
                    b"swbreak+", b"hwbreak+", b"QStartNoAckMode+"):
        assert feature in sup
    xml, off = b"", 0
    while True:
        part = stub.request("qXfer:features:read:target.xml:%x,200" % off)
        assert part[:1] in (b"m", b"l"), part
        xml += part[1:]
        off += len(part) - 1
        if part[:1] == b"l":
            break
    for needle in (b"i386:x86-64", b"org.gnu.gdb.i386.core", b"org.gnu.gdb.i386.sse",
                   b'name="k_gs_base"', b'name="efer"', b'name="xmm15"', b'name="mxcsr"'):
        assert needle in xml
    assert stub.request("qXfer:features:read:nosuch.xml:0,100").startswith(b"E")
    assert stub.request("vCont?") == b"vCont;c;C;s;S;t;r"
    assert stub.request("qAttached") == b"1"


def test_bad_checksum_gets_nak_then_retransmit_works(stub):
    stub.send_raw(b"$qC#00")
    assert stub.read_byte() == b"-"
    assert stub.request("qC") == b"QC1"


def test_garbage_truncated_and_unknown(stub):
    stub.send_raw(b"garbage\x00\xff+-")
    alive(stub)
    stub.send_raw(b"$m0,4")                 # truncated: the next '$' restarts
    alive(stub)
    assert stub.request("qNoSuchThing") == b""
    assert stub.request("vMustReplyEmpty") == b""
    assert stub.request("Z9,0,1") == b""
    alive(stub)


def test_oversized_packet_is_dropped(stub):
    stub.send_raw(b"$" + b"M" * 0x30000 + b"#00")
    assert stub.read_byte() == b"-"
    alive(stub)


@pytest.mark.parametrize("packet", [
    "mzz,4", "m10", "m,", "m0,4x", "M0,2:zz", "M0,4:00", "X0,4:ab", "pzz", "p999",
    "P0=12", "Gzz", "G00", "Hgzz", "Hx1", "Tzz", "T99", "Z0,zz,1", "z1", "vCont;x",
    "vCont;c:zz", "vCont", "qRcmd,zz", "qRcmd,6", "qThreadExtraInfo,99",
    "m0,ffffffffffffffffff", "qXfer:features:read:target.xml:zz,10",
])
def test_malformed_arguments_get_errors(stub, packet):
    reply = stub.request(packet)
    assert reply == b"" or reply.startswith(b"E"), (packet, reply)
    alive(stub)


def test_unmapped_memory_is_E14(stub):
    assert stub.request("m7fff00000000,10") == b"E14"
    assert stub.request("M7fff00000000,1:00") == b"E14"
    assert stub.request("m800000000000,1") == b"E14"    # not canonical
    alive(stub)


def test_absurd_length_is_capped(stub):
    reply = stub.request("m%x,ffffffffffff" % SCRATCH)
    assert re.fullmatch(rb"[0-9a-f]+", reply) and len(reply) <= 0x20000


def test_noack_and_large_packets(stub):
    stub.start_noack()
    data = bytes((i * 7 + (i >> 8)) & 0xff for i in range(0x8000))
    # binary write: '$', '#', '}' and '*' inside must be escaped on the wire
    esc = bytearray()
    for b in data:
        if b in b"$#}*":
            esc += bytes([0x7d, b ^ 0x20])
        else:
            esc.append(b)
    assert stub.request(b"X%x,%x:" % (SCRATCH, len(data)) + bytes(esc)) == b"OK"
    # read 64 KiB back in one packet
    reply = stub.request("m%x,10000" % SCRATCH)
    assert len(reply) == 0x20000
    assert bytes.fromhex(reply[:0x10000].decode()) == data
    assert stub.request("X%x,0:" % SCRATCH) == b"OK"
    alive(stub)


def test_registers_g_p_P(stub):
    assert stub.request("Z0,%x,1" % 0) in (b"OK", b"E14")
    stub.request("z0,0,1")
    g = stub.request("g")
    assert len(g) >= 16 * 16 + 16, g
    rip = stub.request("p10")
    assert len(rip) == 16
    rax = stub.request("p0")
    assert stub.request("P0=efbeadde00000000") == b"OK"
    assert stub.request("p0") == b"efbeadde00000000"
    assert stub.request("P0=" + rax.decode()) == b"OK"
    assert stub.request("G" + g.decode()) == b"OK"
    assert stub.request("g") == g


def test_sw_breakpoint_hidden_from_memory_reads(stub):
    addr = SCRATCH + 0x100
    assert stub.request("M%x,4:90909090" % addr) == b"OK"
    assert stub.request("Z0,%x,1" % addr) == b"OK"
    assert stub.request("m%x,4" % addr) == b"90909090"
    stub.request("qRcmd," + b"phys on".hex())
    assert stub.request("m%x,4" % addr) == b"90909090"
    stub.request("qRcmd," + b"phys off".hex())
    # writing over the breakpoint updates the saved byte, the int3 stays
    assert stub.request("M%x,1:c3" % addr) == b"OK"
    assert stub.request("m%x,2" % addr) == b"c390"
    assert stub.request("z0,%x,1" % addr) == b"OK"
    assert stub.request("m%x,2" % addr) == b"c390"


def test_ctrl_c_while_running(stub):
    stub.send_raw(frame("vCont;c"))
    assert stub.read_byte() == b"+"
    stub.send_raw(b"\x03")
    reply = stub.read_packet()
    assert reply.startswith(b"T02thread:1;"), reply
    alive(stub)


def test_thread_extra_info_text(stub):
    assert bytes.fromhex(stub.request("qThreadExtraInfo,1").decode()) == b"vCPU 0, long mode"
    assert stub.request("qThreadExtraInfo,2").startswith(b"E")
    assert stub.request("qfThreadInfo") == b"m1" and stub.request("qsThreadInfo") == b"l"


def test_step_reports_thread(stub):
    stub.request("Hc1")
    reply = stub.request("s")
    assert reply.startswith(b"T05thread:1;"), reply
    reply = stub.request("vCont;s:1")
    assert reply.startswith(b"T05thread:1;"), reply
    assert stub.request("vCont;t:1") == b"OK"
