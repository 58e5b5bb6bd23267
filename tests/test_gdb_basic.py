"""The gdb stub driven by Debian's real gdb, end to end: attach, registers,
breakpoints by name, continue/hit, stepi, register and memory writes that
the guest acts on, Ctrl-C, detach/re-attach, kill, monitor commands."""
import re
import socket

import pytest

from gdbclient import gdb_batch, GdbInteractive, reg_values, RspClient, start_gdb_vmdb, symbol



def test_attach_and_registers(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", port=free_port())
    out = gdb_batch(elf, target, ["break *gdb_regs_ready", "continue", "info registers",
                                  "info all-registers",
                                  # x87/SSE writes reach the vCPU and read back from it
                                  "set $xmm15.v2_int64[0] = 0x0123456789abcdef",
                                  "set $mxcsr = 0x1fc0", "maint flush register-cache",
                                  "p/x $xmm15.v2_int64", "p/x $mxcsr", "kill"])
    assert "Breakpoint 1, " in out, out
    regs = reg_values(out)
    expect = {"rax": 0x1111111111111111, "rbx": 0x2222222222222222, "rcx": 0x3333333333333333,
              "rdx": 0x4444444444444444, "rsi": 0x5555555555555555, "rdi": 0x6666666666666666,
              "r8": 0x0808080808080808, "r9": 0x0909090909090909, "r10": 0x1010101010101010,
              "r11": 0x1111111111111100, "r12": 0x1212121212121212, "r13": 0x1313131313131313,
              "r14": 0x1414141414141414, "r15": 0x1515151515151515,
              "rip": symbol(elf, "gdb_regs_ready"), "cs": 0x8, "ss": 0x10, "ds": 0x10,
              # the guest's wrmsr, and the entry state of machine/bootinfo.h
              "k_gs_base": 0xffff800012345678, "cr0": 0x80010033, "cr2": 0, "cr3": 0x14000,
              "cr4": 0x620, "cr8": 0, "efer": 0x500, "mxcsr": 0x1f80, "fs_base": 0}
    for name, value in expect.items():
        assert regs.get(name) == value, f"{name}: got {regs.get(name)}, expected {value:#x}\n{out}"
    for name in ("gs_base", "eflags", "st0", "fctrl", "xmm0", "xmm15"):
        assert re.search(rf"^{name}\s", out, re.M), f"{name} missing\n{out}"
    assert "$1 = {0x123456789abcdef, 0x0}" in out and "$2 = 0x1fc0" in out, out
    assert vm.wait(30) == 0


def test_break_by_name_continue_and_step(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, ["break demo_tick", "continue", "bt", "stepi", "p $pc",
                                  "continue", "p $pc", "x/1xb demo_tick", "kill"])
    assert out.count("Breakpoint 1, demo_tick") == 2, out
    assert "in demo_cpu" in out, out
    # memory reads through the debugger show the original byte, not int3
    orig = gdb_batch(elf, None, ["x/1xb demo_tick"], connect=False)
    assert re.search(r"<demo_tick>:\s+(0x[0-9a-f]+)", out).group(1) == \
        re.search(r"<demo_tick>:\s+(0x[0-9a-f]+)", orig).group(1), out
    vm.wait(30)


def test_stepi_1000(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=stepi", port=free_port())
    out = gdb_batch(elf, target, ["break *gdb_steps", "continue", "delete", "stepi 1000",
                                  "p/x $pc", "p $rax", "p/x (long)&gdb_steps + 3000", "kill"],
                    timeout=300)
    vals = re.findall(r"^\$\d+ = (\S+)", out, re.M)
    assert len(vals) == 3, out
    assert int(vals[0], 16) == int(vals[2], 16), f"pc after stepi 1000: {out}"
    assert vals[1] == "1000", out
    vm.wait(30)


def test_stepi_over_breakpoint_reinserts_it(start_vmdb, guest, free_port):
    """Stepping and continuing from a breakpoint run the original instruction
    and keep the breakpoint (hit again at the next pass)."""
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=memwrite", port=free_port())
    out = gdb_batch(elf, target, ["break gdb_mem_poll", "continue", "stepi", "continue",
                                  "continue", "info breakpoints", "kill"])
    assert out.count("Breakpoint 1, gdb_mem_poll") == 3, out
    assert "breakpoint already hit 3 times" in out, out
    vm.wait(30)


def test_register_write_reaches_guest(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regwrite", port=free_port())
    out = gdb_batch(elf, target, ["break *gdb_wait_reg", "continue", "set $rbx = 0x2a",
                                  "p/x $rbx", "delete", "continue"])
    assert "= 0x2a" in out, out
    # the guest exits with rbx & 0x7f: status (42 << 1) | 1 = 85
    assert "exited with code 0125" in out or "exited with code 85" in out, out
    assert vm.wait(30) == 85
    assert "rbx = 0x2a" in vm.serial_text()


def test_memory_write_reaches_guest(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=memwrite", port=free_port())
    out = gdb_batch(elf, target, ["break gdb_mem_poll", "continue", "set var gdb_flag = 21",
                                  "p gdb_flag", "delete", "continue"])
    assert "= 21" in out, out
    assert vm.wait(30) == 43, out
    assert "gdb_flag = 0x15" in vm.serial_text()


def test_ctrl_c_stops_running_guest(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    gdb = GdbInteractive(elf, target)
    try:
        gdb.expect(r"\(gdb\)")
        gdb.send("continue")
        gdb.expect(r"Continuing\.")
        vm.wait_for("serial", r"cpu0 tick", timeout=30)
        gdb.interrupt()
        gdb.expect(r"received signal SIGINT", timeout=30)
        gdb.send("p $pc")
        gdb.expect(r"\$1 = .*0x[0-9a-f]+")
        gdb.send("kill")
        assert vm.wait(30) == 0
    finally:
        gdb.close()


def test_detach_and_reattach(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    out = gdb_batch(elf, target, ["break demo_tick", "continue", "detach"])
    assert "Breakpoint 1, demo_tick" in out and "detached" in out.lower(), out
    vm.wait_for("serial", r"cpu0 tick", timeout=30)
    # the breakpoint went away with the first client; the guest runs on
    before = vm.serial_text().count("tick")
    vm.wait_for("serial", r"(?s)(cpu0 tick.*){%d}" % (before + 1), timeout=30)
    out = gdb_batch(elf, target, ["p demo_counter", "info breakpoints", "break demo_work",
                                  "continue", "kill"])
    assert "Breakpoint 1, demo_work" in out, out
    assert vm.wait(30) == 0


def test_disconnect_without_detach_is_detach(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    c = RspClient(target)
    c.request("qSupported")
    assert c.request("Z0,%x,1" % symbol(elf, "demo_tick")) == b"OK"
    c.close()
    vm.wait_for("serial", r"cpu0 tick", timeout=30)
    c = RspClient(target)
    assert c.request("?").startswith(b"T05")
    c.kill()
    assert vm.wait(30) == 0


def test_second_client_is_refused(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, port=free_port())
    first = RspClient(target)
    assert first.request("?").startswith(b"T05")
    second = RspClient(target)
    reply = second.read_packet()
    assert reply.startswith(b"E") and b"already attached" in reply
    with pytest.raises((ConnectionError, socket.timeout, OSError)):
        second.request("?")
    # the first client is undisturbed
    assert first.request("qC") == b"QC1"
    first.kill()
    assert vm.wait(30) == 0


def test_monitor_commands(start_vmdb, guest, free_port):
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, ["monitor help", "monitor info vcpus", "monitor info caps",
                                  "monitor phys on", "x/1xg 0x11000", "monitor phys off",
                                  "monitor bogus", "kill"])
    assert "info caps" in out and "phys on|off" in out, out
    assert "thread 1: vCPU 0, long mode" in out and "thread 2: vCPU 1" in out, out
    assert "single-step exits:" in out and "debugger mechanisms in use" in out, out
    assert "guest-physical" in out and "0x00000001564d4442" in out.lower(), out
    assert "unknown monitor command 'bogus'" in out, out
    vm.wait(30)


def test_guest_exit_reported_as_W(start_vmdb, guest, free_port):
    elf = guest("exit")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "exit=5", port=free_port())
    out = gdb_batch(elf, target, ["continue"])
    assert "exited with code 013" in out or "exited with code 11" in out, out
    assert vm.wait(30) == 11


def test_unix_socket(start_vmdb, guest, tmp_path):
    elf = guest("gdb_target")
    path = str(tmp_path / "gdb.sock")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs", addr="unix:" + path)
    c = RspClient(path)
    assert c.request("qC") == b"QC1"
    c.kill()
    assert vm.wait(30) == 0


def test_hardware_breakpoint(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=memwrite", port=free_port())
    out = gdb_batch(elf, target, ["hbreak gdb_mem_poll", "continue", "continue",
                                  "info breakpoints", "kill"])
    assert out.count("Breakpoint 1, gdb_mem_poll") == 2, out
    assert "hw breakpoint" in out and "already hit 2 times" in out, out
    vm.wait(30)


def test_raw_hwbreak_stop_reply(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=memwrite", port=free_port())
    c = RspClient(target)
    c.request("qSupported:swbreak+;hwbreak+")    # stop reasons are named to clients that ask
    addr = symbol(elf, "gdb_mem_poll")
    assert c.request("Z1,%x,1" % addr) == b"OK"
    assert re.fullmatch(rb"T05thread:1;core:0;(..:[0-9a-f]{16};)*hwbreak:;", c.request("vCont;c"))
    assert c.request("p10") == addr.to_bytes(8, "little").hex().encode()
    assert c.request("z1,%x,1" % addr) == b"OK"
    assert c.request("Z0,%x,1" % addr) == b"OK"
    assert re.fullmatch(rb"T05thread:1;core:0;(..:[0-9a-f]{16};)*swbreak:;", c.request("vCont;c"))
    c.kill()
    vm.wait(30)


def test_port_in_use_is_an_error_in_words(start_vmdb, guest, free_port):
    port = free_port()
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.bind(("127.0.0.1", port))
    holder.listen(1)
    try:
        vm = start_vmdb(guest("demo"), "--gdb", f"tcp:127.0.0.1:{port}")
        assert vm.wait(30) == 1
        assert "already in use" in vm.stderr_text(), vm.stderr_text()
    finally:
        holder.close()


@pytest.mark.parametrize("addr", ["tcp:127.0.0.1", "tcp:127.0.0.1:99999",
                                  "tcp:no.such.host.invalid:1234"])
def test_bad_gdb_address(start_vmdb, guest, addr):
    vm = start_vmdb(guest("demo"), "--gdb", addr)
    assert vm.wait(30) == 1
    assert "--gdb" in vm.stderr_text(), vm.stderr_text()


def test_non_loopback_bind_warns(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=regs",
                                addr=f"tcp:0.0.0.0:{free_port()}")
    assert "warning" in vm.stderr_text() and "other machines" in vm.stderr_text()
    c = RspClient("127.0.0.1:" + target.rsplit(":", 1)[1])
    c.kill()
    assert vm.wait(30) == 0


def test_monitor_msr(start_vmdb, guest, free_port):
    """monitor msr read/write reach any MSR of the selected vCPU; what the CPU
    lacks or refuses is a sentence, not a fault in the guest."""
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    out = gdb_batch(elf, target, [
        "p/x $fs_base", "monitor msr read 0xc0000080",
        "monitor msr write 0xc0000100 0x123456789000", "maintenance flush register-cache", "p/x $fs_base",
        "thread 2", "monitor msr write 0xc0000082 0xffffffff81000000",
        "monitor msr read 0xc0000082", "thread 1", "monitor msr read 0xc0000082",
        "monitor msr read 0x1b",
        "monitor msr read 0x12345", "monitor msr write 0x2ff 0x1006",
        "monitor msr write 0xc0000080 0x100000500", "monitor msr read 0xc0000080",
        "monitor msr read", "monitor msr write 0xc0000082", "monitor msr read 0x100000000",
        "kill"])
    efer = int(re.search(r"MSR 0xc0000080 = (0x[0-9a-f]+)", out).group(1), 16)
    assert efer & 0x500 == 0x500, out                        # LME and LMA: long mode
    assert "$2 = 0x123456789000" in out, out                 # the write reached fs_base
    lstars = re.findall(r"MSR 0xc0000082 = (0x[0-9a-f]+)", out)
    # written and read back on vCPU 1; vCPU 0's is its own
    assert lstars[1] == "0xffffffff81000000" and lstars[2] != lstars[1], out
    apic_base = int(re.search(r"MSR 0x1b = (0x[0-9a-f]+)", out).group(1), 16)
    assert apic_base & ~0xfff == 0xfee00000 and apic_base & 0x100, out   # BSP
    assert "vCPU 0 has no MSR 0x12345 (RDMSR would raise #GP)" in out, out
    assert "vCPU 0 refuses 0x1006 in MSR 0x2ff" in out, out   # MTRRdefType, bit 12
    assert "vCPU 0 refuses 0x100000500 in MSR 0xc0000080" in out, out   # EFER, bit 32
    assert out.count("MSR 0xc0000080 = 0x500") == 2, out     # ... and it stays as it was
    assert out.count("monitor msr: bad argument") == 3, out
    vm.wait(30)
