"""gdb 13's non-stop mode on a two-vCPU guest (nonstop.elf): the BSP stops
at a breakpoint and is stepped while the AP keeps running and taking its
timer; the guest checks from the inside that the AP answered while the
BSP was stopped. Then `interrupt -a` stops the AP (a T00 notification)
and `continue -a` lets both go; the BSP ends the machine."""
import re
import subprocess

import pytest

from gdbclient import GDB, RspClient, checksum, frame, start_gdb_vmdb


def gdb_nonstop(elf, target, commands, timeout=120):
    argv = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
            "-ex", "set width 0", "-ex", "set non-stop on", "-ex", f"target remote {target}"]
    for c in commands:
        argv += ["-ex", c]
    argv.append(elf)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    return r.stdout + r.stderr


def test_one_vcpu_stopped_and_stepped_while_the_other_runs(start_vmdb, guest, free_port):
    elf = guest("nonstop")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    cmds = ["break ns_ready", "continue -a", "info threads",
            # gdb steps over its own breakpoint by stopping every thread:
            # without it the step is the BSP's alone
            "delete", "stepi", "p $pc", "info threads",
            "set var ns_go = 1",
            # the AP answers only while it runs: reads until it has
            "python while int(gdb.parse_and_eval('ns_done')) == 0: pass",
            "p ns_done", "interrupt -a", "info threads",
            "set var ns_exit = 1",
            # the first may meet the AP's stop (interrupt -a) before the exit
            "continue -a", "continue -a"]
    out = gdb_nonstop(elf, target, cmds)
    assert 'Thread 1 "vCPU 0" hit Breakpoint 1, ns_ready' in out, out
    # while the BSP is stopped, gdb lists the AP as running
    assert re.search(r'^\* 1 +Thread 1 "vCPU 0" .* ns_ready \(\)', out, re.M), out
    assert re.search(r'^  2 +Thread 2 "vCPU 1" .*\(running\)$', out, re.M), out
    assert re.search(r"^\$1 = .*<split\+\d+>", out, re.M), out     # stepped out of ns_ready
    assert re.search(r"^\$2 = 1$", out, re.M), out
    assert 'Thread 2 "vCPU 1" stopped.' in out, out                  # interrupt -a
    # the machine's end reaches gdb as a notification it takes with vStopped
    # before vmdb closes the connection
    end = re.search(r"^\[Inferior 1 \(Remote target\) exited with code (\d+)\]$", out, re.M)
    assert end, out
    assert "Remote connection closed" not in out, out
    assert int(end.group(1), 8) == vm.wait(60), out
    serial = vm.serial_text()
    assert "PASS: the AP answered while the BSP was stopped" in serial, serial + out
    assert "PASS: the AP took its timer while the BSP was stopped" in serial, serial + out
    assert "SUMMARY: 4 checks, 0 failed" in serial, serial + out


def read_notification(c):
    """The next %Stop notification's payload (checksum checked)."""
    while b"%" not in c.buf or b"#" not in c.buf[c.buf.index(b"%"):] or \
            len(c.buf) < c.buf.index(b"#", c.buf.index(b"%")) + 3:
        c._fill()
    start = c.buf.index(b"%")
    end = c.buf.index(b"#", start)
    raw, cs = c.buf[start + 1:end], c.buf[end + 1:end + 3]
    c.buf = c.buf[:start] + c.buf[end + 3:]
    assert checksum(raw) == cs, raw
    assert raw.startswith(b"Stop:"), raw
    return raw[5:]


def test_protocol(start_vmdb, guest, free_port):
    """QNonStop, ?, vCont;t, vStopped and vCtrlC on the wire; bad input is refused."""
    vm, target = start_gdb_vmdb(start_vmdb, guest("nonstop"), "--smp", "2", port=free_port())
    c = RspClient(target)
    c.start_noack()
    assert b"QNonStop+" in c.request("qSupported:swbreak+")
    assert c.request("QNonStop:2").startswith(b"E")
    assert c.request("vStopped").startswith(b"E")          # not in non-stop mode
    assert c.request("vCtrlC").startswith(b"E")
    assert c.request("QNonStop:1") == b"OK"
    # the current vCPU is reported stopped; the other one runs
    assert c.request("?").startswith(b"T00thread:1;")
    assert c.request("vStopped") == b"OK"
    assert c.request("vCont;t:2") == b"OK"
    assert read_notification(c).startswith(b"T00thread:2;")
    assert c.request("vStopped") == b"OK"
    assert c.request("c").startswith(b"E")                 # vCont only
    assert c.request("vCont;c") == b"OK"
    assert c.request("vCtrlC") == b"OK"
    stop = read_notification(c)
    assert re.match(rb"T02thread:[12];", stop), stop
    assert c.request("vStopped") == b"OK"
    assert c.request("QNonStop:0") == b"OK"
    assert c.request("?").startswith(b"T")
    c.kill()
    vm.wait(30)
    c.close()


def test_the_machine_end_waits_for_vstopped(start_vmdb, guest, free_port):
    """The guest's exit goes out as a %Stop notification; the connection
    stays open (other packets answered) until the client takes it with
    vStopped. A client that never does is dropped after a short deadline
    and vmdb exits all the same."""
    for acks in (True, False):
        vm, target = start_gdb_vmdb(start_vmdb, guest("exit"), "--cmdline", "exit=5",
                                    port=free_port())
        c = RspClient(target)
        c.start_noack()
        assert c.request("QNonStop:1") == b"OK"
        assert c.request("?").startswith(b"T00thread:1;")
        assert c.request("vStopped") == b"OK"
        assert c.request("vCont;c") == b"OK"
        assert read_notification(c) == b"W0b"
        if acks:
            assert c.request("qfThreadInfo").startswith(b"m")
            assert c.request("vStopped") == b"OK"
            with pytest.raises(ConnectionError):
                c.read_packet()
        assert vm.wait(30) == 11
        c.close()


def test_breakpoint_commands_print_on_stderr(start_vmdb, guest, free_port):
    """In non-stop mode gdb takes no output it did not ask for: a
    breakpoint command's printf goes to vmdb's stderr, never as O packets."""
    from test_gdb_cond import symbol
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=cond n=10",
                                port=free_port())
    c = RspClient(target)
    c.start_noack()
    assert b"BreakpointCommands+" in c.request("qSupported:swbreak+")
    assert c.request("QNonStop:1") == b"OK"
    assert c.request("?").startswith(b"T00thread:1;")
    assert c.request("vStopped") == b"OK"
    # printf("ns %d\n", rdi) with gdb's function and channel 0
    fmt = b"ns %d\\n\0"
    code = bytes([0x26, 0, 5, 0x22, 0, 0x22, 0, 0x34, 1, 0, len(fmt)]) + fmt + bytes([0x27])
    addr = symbol(elf, "gdb_cond_f")
    assert c.request(f"Z0,{addr:x},1;cmds:0,X{len(code):x},{code.hex()}") == b"OK"
    assert c.request("vCont;c") == b"OK"
    assert read_notification(c) == b"W01"
    assert b"$O" not in c.buf, c.buf
    assert c.request("vStopped") == b"OK"
    assert vm.wait(30) == 1
    c.close()
    lines = [l for l in vm.stderr_text().splitlines() if l.startswith("ns ")]
    assert lines == [f"ns {i}" for i in range(1, 11)], vm.stderr_text()


def test_qnonstop_ends_a_range_step(start_vmdb, guest, free_port):
    """QNonStop stops every vCPU, a range step under way included: the next
    stepi is one step (its stop comes back), not the old range going on."""
    vm, target = start_gdb_vmdb(start_vmdb, guest("gdb_target"), "--cmdline", "test=regwrite",
                                port=free_port())
    c = RspClient(target, timeout=20)
    c.start_noack()
    c.send_raw(frame("vCont;r0,ffffffffffffffff:1"))    # a range nothing leaves
    assert c.request("QNonStop:0") == b"OK"
    assert c.request("s").startswith(b"T05")
    c.kill()
    vm.wait(30)
    c.close()
