"""Reverse execution on emu with real gdb 13 (rr.elf): going back N and
forward N gives the same registers and memory on 1 and 4 vCPUs, with
timer interrupts, port I/O and serial input in the window; `watch` +
`reverse-continue` finds the stray write; reverse-step/next/finish and
reverse-stepi with symbols; the start of the history is gdb's "No more
reverse-execution history"; kvm refuses --record in words."""
import os
import re
import subprocess
import time

import pytest

from gdbclient import GDB, frame, rsp_session, start_gdb_vmdb, symbol
from test_linux_gdb import linux_gdb  # noqa: F401  (the fixture)

MEM_START, MEM_END = 0x100000, 0x210000     # rr.elf's image, stacks and data


def emu_only(engine):
    if engine != "emu":
        pytest.skip("reverse execution is the emu engine's")


class RrVm:
    """vmdb --record on rr.elf, serial console on stdio, stdin a FIFO that
    gdb's `shell` writes to (serial input while the machine runs)."""

    def __init__(self, vmdb_bin, elf, tmp_path, port, *args):
        self.fifo = str(tmp_path / "input")
        os.mkfifo(self.fifo)
        fd = os.open(self.fifo, os.O_RDWR)
        self.serial_path = str(tmp_path / "serial.txt")
        self.stderr_path = str(tmp_path / "stderr.txt")
        self.target = f"127.0.0.1:{port}"
        with open(self.serial_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                [vmdb_bin, "--engine", "emu", "--gdb", "tcp:" + self.target, "--wait-gdb",
                 *args, elf], stdin=fd, stdout=out, stderr=err)
        os.close(fd)
        while "gdb server listening" not in self.stderr():
            assert self.proc.poll() is None, self.stderr()

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def serial(self):
        with open(self.serial_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def gdb(self, elf, commands, timeout=180):
        argv = [GDB, "-nx", "-batch", "-ex", "set pagination off", "-ex", "set confirm off",
                "-ex", "set width 0", "-ex", f"target remote {self.target}"]
        for c in commands:
            argv += ["-ex", c]
        r = subprocess.run(argv + [elf], capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        return r.stdout + r.stderr

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def rr_vm(vmdb_bin, tmp_path, free_port):
    started = []

    def start(elf, *args):
        vm = RrVm(vmdb_bin, elf, tmp_path, free_port(), *args)
        started.append(vm)
        return vm

    yield start
    for vm in started:
        vm.close()
        assert "runtime error:" not in vm.stderr() and "Sanitizer" not in vm.stderr(), \
            vm.stderr()


def snapshot_cmds(tag, tmp_path):
    """gdb commands that print every vCPU's registers under a tag and dump
    the guest's memory to a file."""
    return [f"echo =={tag}==\\n", "thread apply all info registers",
            f"dump binary memory {tmp_path}/{tag}.bin {MEM_START:#x} {MEM_END:#x}",
            f"echo =={tag}-end==\\n"]


def registers(out, tag):
    block = out.split(f"=={tag}==\n", 1)[1].split(f"=={tag}-end==", 1)[0]
    lines = [l for l in block.splitlines()
             if re.match(r"^\w+\s+0x", l) or re.match(r"^Thread \d+ \(", l)]
    assert len(lines) > 20, block
    return lines


@pytest.mark.parametrize("smp", [1, 4])
def test_back_n_forward_n_same_state(engine, rr_vm, guest, tmp_path, smp):
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record", "--smp", str(smp))
    out = vm.gdb(elf, [
        "break rr_mark", "continue 3", *snapshot_cmds("a", tmp_path),
        'printf "ticks %d\\n", rt_cpus[0].ticks',
        # input arrives while the window runs: logged, delivered again on replay
        f"shell printf 'hello' > {vm.fifo}",
        # and all of it inside the window, however late the host delivers it
        "continue 50", "python extra = 0",
        "python while int(gdb.parse_and_eval('rr_input_bytes')) < 5: "
        "gdb.execute('continue'); extra += 1",
        *snapshot_cmds("b", tmp_path),
        'printf "ticks %d\\n", rt_cpus[0].ticks', 'printf "input %d\\n", rr_input_bytes',
        "monitor info record",
        "python gdb.execute('reverse-continue %d' % (50 + extra))", *snapshot_cmds("a2", tmp_path),
        "python gdb.execute('continue %d' % (50 + extra))", *snapshot_cmds("b2", tmp_path),
        'printf "input %d\\n", rr_input_bytes', "monitor info record"])
    assert "Breakpoint 1, rr_mark" in out, out
    assert re.findall(r"^input (\d+)$", out, re.M) == ["5", "5"], out
    ticks = [int(t) for t in re.findall(r"^ticks (\d+)$", out, re.M)]
    assert len(ticks) == 2 and ticks[1] > ticks[0], out   # timer interrupts in the window
    assert "(replaying the history)" in out, out
    for a, b in (("a", "a2"), ("b", "b2")):
        assert registers(out, a) == registers(out, b), out
        with open(tmp_path / f"{a}.bin", "rb") as fa, open(tmp_path / f"{b}.bin", "rb") as fb:
            assert fa.read() == fb.read(), f"memory at {a} and {b} differs"
    # the guest saw the input once; replaying it printed nothing again
    seen = [int(m) for m in re.findall(r"^rr: input (\d+)\r?$", vm.serial(), re.M)]
    assert seen == [1, 2, 3, 4, 5], vm.serial()


def test_watch_reverse_continue_finds_stray_write(engine, rr_vm, guest):
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record", "--smp", "2")
    out = vm.gdb(elf, ["break rr_detected", "continue", "p/x rr_victim",
                       "watch rr_victim", "reverse-continue", "bt 1", "p/x rr_victim",
                       "reverse-continue", "bt 1", "p/x rr_victim",
                       # a write inside the history: live from here, the stray
                       # pointer fixed, so the variable keeps its good value
                       "set var rr_stride = 0", "monitor info record", "delete",
                       "break rr_mark", "continue 3", "p/x rr_victim"])
    assert "hit Breakpoint 1, rr_detected" in out, out
    values = re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)
    # now 0xbad; before the stray write: round 39's value; before that: round 38's
    assert values == ["0xbad", "0x6034", "0x6033", "0x6034"], out
    assert "now at instruction" in out and "(live)" in out, out
    assert re.search(r"^#0 +rr_corrupt \(", out, re.M), out
    assert re.search(r"^#0 .* in bsp_round \(", out, re.M), out


def test_reverse_step_next_finish_stepi(engine, rr_vm, guest):
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record")
    out = vm.gdb(elf, [
        "break rr_leaf", "continue 5", "delete",
        "reverse-finish", "bt 1",                       # back to the call in rr_middle
        "reverse-step", "bt 1",                         # the line before: rr_middle's caller
        "reverse-next", "bt 1",
        "stepi", "p/x $pc", "stepi", "p/x $pc", "stepi", "p/x $pc",
        "reverse-stepi", "reverse-stepi", "p/x $pc",
        "stepi", "stepi", "p/x $pc"])
    frames = re.findall(r"^#0 +(?:0x[0-9a-f]+ in )?(\w+) \(", out, re.M)
    assert frames == ["rr_middle", "rounds", "rounds"], out
    pcs = re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)
    assert len(pcs) == 5 and pcs[3] == pcs[0] and pcs[4] == pcs[2], out


def test_conditional_breakpoint_in_reverse(engine, rr_vm, guest):
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record")
    out = vm.gdb(elf, ["break rr_mark", "ignore 1 11", "continue", "p rr_round", "delete",
                       # the hits of rounds 11 to 8 on the way back do not stop
                       "break rr_mark if round == 7", "reverse-continue", "p rr_round"])
    assert re.findall(r"^\$\d+ = (\d+)$", out, re.M) == ["11", "6"], out


def test_history_start_and_record_monitor(engine, rr_vm, guest):
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf)
    out = vm.gdb(elf, [
        "monitor info record", "break rr_mark", "continue",
        "monitor record on", "continue 2", "monitor info record",
        "reverse-continue", "p rr_round", "reverse-continue", "p rr_round",
        "reverse-continue", "reverse-stepi", "monitor record off", "monitor info record"])
    assert out.count("not recording (") == 2, out
    assert re.search(r"recording: history from instruction \d+ to \d+", out), out
    # back to round 2's hit, then round 1's, where the recording began
    assert re.findall(r"^\$\d+ = (\d+)$", out, re.M) == ["1", "0"], out
    assert out.count("No more reverse-execution history.") == 2, out


def test_record_needs_emu(vmdb_bin, guest):
    r = subprocess.run([vmdb_bin, "--engine", "kvm", "--record", guest("rr")],
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode != 0
    assert "reverse execution needs the emu engine" in r.stderr, r.stderr


def test_linux_reverse_continue_to_last_jiffies_write(linux_gdb, engine, build_dir):  # noqa: F811
    """Linux (Debian's cloud kernel, build/linux) boots to init with
    --record; a watch on jiffies_64 (its address from __ksymtab: the
    vmlinux has no symbols) and reverse-continue stop before the last
    write, in the kernel, with the value before it; continue replays that
    write forward."""
    from test_linux import CMDLINE, KERNELS, linux_file
    from test_linux_gdb import exported_symbol
    emu_only(engine)
    if "asan" in os.path.basename(build_dir):
        pytest.skip("the sanitizer build boots Linux once, in test_linux.py")
    with open(linux_file(KERNELS["pvh"]), "rb") as f:
        jiffies = exported_symbol(f.read(), "jiffies_64")
    vm, gdb = linux_gdb(engine, KERNELS["bzimage"], f"{CMDLINE} vmdb.gdb=1", "--record")
    gdb.start("continue")
    vm.wait_for(r"VMDB-LINUX: spinning 1")
    gdb.interrupt()
    assert "received signal SIGINT" in gdb.finish()
    now = gdb.value(f"*(long *){jiffies:#x}")
    info = gdb.run("monitor info record")
    assert "recording: history from" in info, info
    print(info)
    assert "Hardware watchpoint 1" in gdb.run(f"watch *(long *){jiffies:#x}")
    began = time.monotonic()
    out = gdb.run("reverse-continue", timeout=240)
    print(f"reverse-continue to the last jiffies_64 write: {time.monotonic() - began:.2f} s")
    m = re.search(r"Hardware watchpoint 1: .*\n+Old value = (\d+)\nNew value = (\d+)", out)
    # (a tick after an idle stretch may add several jiffies at once)
    assert m and int(m.group(1)) == now and int(m.group(2)) < now, out
    before = int(m.group(2))
    assert gdb.value("$cs") & 3 == 0 and gdb.value("$pc") >= 0xffffffff80000000
    assert gdb.value(f"*(long *){jiffies:#x}") == before
    out = gdb.run("continue", timeout=240)
    m = re.search(r"Hardware watchpoint 1: .*\n+Old value = (\d+)\nNew value = (\d+)", out)
    assert m and int(m.group(1)) == before and int(m.group(2)) == now, out


def test_event_log_counts_in_record_mem(engine, rr_vm, guest):
    """The event log is history memory too: 2 MiB of the debugger's writes
    (zeros into unused RAM: the log holds them, the snapshots do not) are
    over a 1 MiB --record-mem, so the next snapshots cut the history at the
    newest one and snapshots plus log fit the budget again."""
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record-mem", "1M", "--cmdline", "corrupt=200")
    out = vm.gdb(elf, [
        "break rr_mark", "continue",
        "python gdb.selected_inferior().write_memory(0x4000000, bytes(2 << 20))",
        "monitor info record", "delete", "break rr_detected", "continue",
        "monitor info record", "reverse-stepi", "p rr_round"])
    logs = [int(k) for k in re.findall(r"logged events, (\d+) KiB", out)]
    snaps = re.findall(r"snapshots, (\d+) KiB of (\d+) KiB", out)
    assert len(logs) == 2 and len(snaps) == 2, out
    assert logs[0] >= 2048, out                      # the writes are in the log
    assert int(snaps[1][0]) + logs[1] <= int(snaps[1][1]) == 1024, out
    assert re.search(r"^\$\d+ = 200$", out, re.M), out   # history still reaches back


def test_non_stop_refuses_reverse_in_words(engine, start_vmdb, guest, free_port):
    """The history is the whole machine's: in non-stop mode bs and bc get
    an E reply that says why (gdb prints it); in all-stop mode bs works."""
    emu_only(engine)
    vm, target = start_gdb_vmdb(start_vmdb, guest("rr"), "--record", port=free_port())
    with rsp_session(vm, target) as c:
        c.start_noack()
        assert b"ReverseStep+" in c.request("qSupported:swbreak+")
        assert c.request("QNonStop:1") == b"OK"
        for packet in ("bs", "bc"):
            assert c.request(packet) == \
                b"E.reverse execution needs all-stop mode (set non-stop off)"
        c.send_raw(frame("qRcmd," + b"record goto 0".hex()))      # no acks: by hand
        text, reply = b"", c.read_packet()
        while reply.startswith(b"O") and reply != b"OK":
            text, reply = text + bytes.fromhex(reply[1:].decode()), c.read_packet()
        assert reply == b"OK" and b"needs all-stop mode (set non-stop off)" in text, text
        assert c.request("QNonStop:0") == b"OK"
        for _ in range(3):
            assert c.request("vCont;s:1").startswith(b"T05")
        assert c.request("bs").startswith(b"T05")


def test_read_and_access_watch_in_reverse(engine, rr_vm, guest):
    """rwatch and awatch in reverse stop at the last read of the corrupted
    variable (the round after the stray write compares it with 0xbad), not
    at the start of the history: every kind of watchpoint rides the same
    replay."""
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record")
    out = vm.gdb(elf, ["break rr_detected", "continue", "delete",
                       "rwatch rr_victim", "reverse-continue", "bt 1", "delete",
                       "awatch rr_victim", "reverse-continue", "bt 1"])
    assert "Hardware read watchpoint 2: rr_victim\n\nValue = 2989" in out, out
    assert "Hardware access (read/write) watchpoint 3: rr_victim" in out, out
    assert len(re.findall(r"^#0 .*bsp_round \(", out, re.M)) == 2, out
    assert "No more reverse-execution history" not in out, out


@pytest.mark.parametrize("phys", [False, True])
def test_reverse_watch_after_rep_and_right_after_the_write(engine, rr_vm, guest, phys):
    """phys_watch.elf recorded with no watchpoint, then, from right after
    its last labelled store (no step in between), reverse-continue with a
    watch on the frame finds every write before it, newest first: the
    REP MOVSB's last iteration included. The REP retires as one instruction
    whether its iterations run a batch at a time (no watchpoint, as
    recorded) or one per step (replayed with one), so positions agree; and
    a watchpoint's hit just before the starting position counts. Linear
    (on the identity address, which the ident store writes through) or
    physical (every alias's stores)."""
    emu_only(engine)
    elf = guest("phys_watch")
    frame = symbol(elf, "pw_frame")
    vm = rr_vm(elf, "--record")
    cmds = ["break pw_after_ident", "continue", "delete"]
    cmds += ["monitor phys on"] if phys else []
    cmds += [f"watch *(long *){frame:#x}"]
    for _ in range(6 if phys else 1):
        cmds += ["reverse-continue", "p/x $pc"]
    out = vm.gdb(elf, cmds + ["kill"])
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    # the store instruction of each write: right before its pw_after_ label
    want = ["ident", "rep", "cross", "b", "a"] if phys else ["ident"]
    store_len = {"ident": 7, "rep": 2, "cross": 3, "b": 7, "a": 7}
    assert pcs[:len(want)] == [symbol(elf, f"pw_after_{w}") - store_len[w] for w in want], out
    if phys:      # then the last of the thousand stores before pw_start
        assert pcs[5] == symbol(elf, "pw_after_hot") - 3, out


def test_record_goto_back_and_forth(engine, rr_vm, guest, tmp_path):
    """`monitor record goto N` puts the machine at instruction N of the
    history, back or forward: the registers and memory there are what they
    were when the machine first passed N (2 vCPUs, timer interrupts in
    between), and a continue from there replays on to the next hit."""
    emu_only(engine)
    elf = guest("rr")
    vm = rr_vm(elf, "--record", "--smp", "2")
    where = ("python pos = re.search(r'now at instruction (\\d+)', "
             "gdb.execute('monitor info record', to_string=True)).group(1)")
    out = vm.gdb(elf, [
        "python import re", "break rr_mark", "continue 3", "thread 1",
        where, "python pos_a = pos", *snapshot_cmds("a", tmp_path),
        "continue 5", "thread 1", where, "python pos_b = pos", *snapshot_cmds("b", tmp_path),
        "python gdb.execute('monitor record goto ' + pos_a)",
        "maintenance flush register-cache", *snapshot_cmds("a2", tmp_path),
        "python gdb.execute('monitor record goto ' + pos_b)",
        "maintenance flush register-cache", *snapshot_cmds("b2", tmp_path),
        "python gdb.execute('monitor record goto ' + pos_a)",
        "continue", "p rr_round", "monitor info record",
        "monitor record goto 99999999999"])
    for a, b in (("a", "a2"), ("b", "b2")):
        assert registers(out, a) == registers(out, b), out
        with open(tmp_path / f"{a}.bin", "rb") as fa, open(tmp_path / f"{b}.bin", "rb") as fb:
            assert fa.read() == fb.read(), f"memory at {a} and {b} differs"
    assert registers(out, "a") != registers(out, "b"), out
    assert out.count("gdb shows the old registers until `maintenance flush") == 3, out
    assert "(replaying the history)" in out, out
    assert re.search(r"monitor record goto: instruction 99999999999 is outside the history "
                     r"\(\d+ to \d+\)", out), out
