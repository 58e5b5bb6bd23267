"""The monitor's views of a stopped machine (gva2gpa, info mem/tlb, xp,
info registers/idt/gdt/lapic/ioapic/pic), checked against what gdb itself
reads and against the guest's own symbols, in one guest run per engine."""
import fcntl
import os
import re
import shutil

import pytest

from gdbclient import RspClient, gdb_batch, start_gdb_vmdb


def symbols(elf, names):
    out = gdb_batch(elf, None, [f"info address {n}" for n in names], connect=False)
    found = re.findall(r'Symbol "(\w+)" is .*?(0x[0-9a-f]+)', out)
    table = {n: int(a, 16) for n, a in found}
    assert set(table) == set(names), out
    return table


def section(out, start, end):
    """The text gdb printed between two echo markers."""
    m = re.search(re.escape(start) + r"\n(.*?)" + re.escape(end), out, re.S)
    assert m, out
    return m.group(1)


def check_system_registers(out, monitor_regs):
    """gdb's view of the system registers against the monitor's."""
    gdb = {m.group(1): int(m.group(2), 16)
           for m in re.finditer(r"^(\w+)\s+(0x[0-9a-f]+)\s", out, re.M)}
    mon = {m.group(1): int(m.group(2), 16)
           for m in re.finditer(r"(?:^| )(\w+) *= *([0-9a-f]{4,16})\b", monitor_regs, re.M)}
    for name in ("cr0", "cr3", "cr4", "efer", "dr7", "xcr0", "pat", "tsc", "apic_base"):
        assert name in gdb, (name, out)
    for name in ("cr0", "cr3", "cr4", "efer", "dr7", "xcr0", "pat", "apic_base"):
        assert gdb[name] == mon[name.upper()], name
    for name, key in (("gdtr_base", "GDT"), ("idtr_base", "IDT")):
        assert gdb[name] == mon[key], name
    assert gdb["cs_attr"] == 0xa09b, out          # 64-bit ring-0 code, as the loader set it
    assert re.search(r"^cr0\s+0x[0-9a-f]+\s+\[ PE .*PG \]$", out, re.M), out
    assert re.search(r"^\$\d+ = \[ .*LMA.* \]$", out, re.M), out           # p $efer
    assert re.search(r"^\$\d+ = \[ type=11 S DPL=0 P L G \]$", out, re.M), out
    assert "MSR 0xc0000082 = 0xffffffff81234567" in out, out
    after = out.split("@@sys-after")[1]
    assert re.search(r"^DR0=\S+ DR1=0000000000002000", after, re.M), after
    assert re.search(r"^LDT=0000 .* unusable", after, re.M), after
    assert "selector 0x8 for LDTR names no LDT descriptor" in out, out
    assert re.search(r"^\$\d+ = \[ type=2 DPL=0 unusable \]$", out, re.M), out


def test_monitor_views(start_vmdb, guest, free_port):
    elf = guest("gdb_target")
    sym = symbols(elf, ["gdb_kd_marker", "isr_6"])
    marker = sym["gdb_kd_marker"]
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=kdtools", port=free_port())
    # the runtime maps its image 1:1, so the marker's physical address is
    # its virtual one (gva2gpa must say so, info tlb must agree)
    views = ["gva2gpa %#x" % marker, "xp/2xg %#x" % marker, "xp/5xb %#x" % marker,
             "xp/1dw %#x" % marker, "xp %#x" % (marker + 4), "info mem", "info tlb",
             "info registers", "info idt", "info gdt", "info lapic", "info ioapic", "info pic",
             "help"]
    cmds = ["break gdb_kd_ready", "continue", "p/x $rax", "p/x $rsp"]
    # markers on stderr, the stream monitor output goes to, keep the order
    mark = lambda text: f'python import sys; print("@@{text}", file=sys.stderr)'
    for v in views:
        cmds += [mark(v), f"monitor {v}"]
    cmds += [mark("end")]
    # the system state in the target description, read and written by gdb
    sysregs = ["info registers", "info registers system", "p $cr0", "p $efer", "p $cs_attr",
               "set $lstar = 0xffffffff81234567", "monitor msr read 0xc0000082",
               "set $dr1 = 0x2000", "set $gdtr_limit = 0x1f", "set $ldtr = 0",
               "set $ldtr = 8", "p $ldtr_attr", mark("sys-after"), "monitor info registers"]
    out = gdb_batch(elf, target, cmds + sysregs + ["monitor xp/9z 0", "monitor gva2gpa zz",
                                                   "monitor xp/1xg 0xfffffffff000", "continue"])
    got = {}
    for i, v in enumerate(views):
        got[v] = section(out, f"@@{v}", "@@" + (views[i + 1] if i + 1 < len(views) else "end"))

    m = re.fullmatch(r"gpa: (0x[0-9a-f]+)\n", got[views[0]])
    assert m, out
    gpa = int(m.group(1), 16)
    assert gpa == marker
    # xp reads what the guest wrote there, in each size and format
    assert got[views[1]] == "%016x: 0x1122334455667788 0x0000000000000000\n" % gpa
    assert got[views[2]] == "%016x: 0x88 0x77 0x66 0x55 0x44\n" % gpa
    assert got[views[3]] == "%016x: 1432778632\n" % gpa
    assert got[views[4]] == "%016x: 0x11223344\n" % (gpa + 4)
    ranges = [tuple(int(x, 16) for x in m[:3]) + (m[3],) for m in
              re.findall(r"^([0-9a-f]{16})-([0-9a-f]{16}) ([0-9a-f]{16}) ([-u]r[-w])$",
                         got["info mem"], re.M)]
    assert ranges, got["info mem"]
    assert all(e - s == size for s, e, size, _ in ranges)
    assert [r for r in ranges if r[0] <= marker < r[1] and r[3].endswith("w")], ranges
    pages = re.findall(r"^([0-9a-f]{16}): ([0-9a-f]{16}) ([-X][-G][-P][-D][-A][-C][-T][-U][-W])$",
                       got["info tlb"], re.M)
    size = lambda flags: 0x200000 if flags[2] == "P" else 0x1000
    hit = [(int(v, 16), int(p, 16), f) for v, p, f in pages
           if int(v, 16) <= marker < int(v, 16) + size(f)]
    assert len(hit) == 1, got["info tlb"][:2000]
    v, p, f = hit[0]
    assert p + (marker - v) == gpa and f.endswith("W")

    regs = got["info registers"]
    rax = int(re.search(r"^\$1 = (0x[0-9a-f]+)", out, re.M).group(1), 16)
    assert rax == 0x1122334455667788
    assert int(re.search(r"RAX=([0-9a-f]{16})", regs).group(1), 16) == rax, regs
    rsp = int(re.search(r"^\$2 = (0x[0-9a-f]+)", out, re.M).group(1), 16)
    assert int(re.search(r"RSP=([0-9a-f]{16})", regs).group(1), 16) == rsp, regs
    assert re.search(r"^CR0=[0-9a-f]{16} \[PG .*PE\]$", regs, re.M), regs
    assert re.search(r"^EFER=[0-9a-f]{16} \[.*LMA.*\]$", regs, re.M), regs
    assert re.search(r"^CS =0008 0{16} [0-9a-f]{8} [0-9a-f]{8} DPL=0 CS64$", regs, re.M), regs
    for name in ("TR ", "LDT", "GDT", "IDT", "DR7", "LSTAR", "XCR0", "PAT"):
        assert re.search(rf"(^| ){name}=", regs, re.M), (name, regs)
    gdt_base = int(re.search(r"^GDT=\s+([0-9a-f]{16})", regs, re.M).group(1), 16)

    assert re.search(r"^  6 #UD  int\s+0008:0*%x dpl 0 handler %#x$" % (sym["isr_6"], sym["isr_6"]),
                     got["info idt"], re.M), got["info idt"]
    assert re.search(r"^GDT base %#x limit " % gdt_base, got["info gdt"], re.M), got["info gdt"]
    assert re.search(r"^0008: code64 ", got["info gdt"], re.M), got["info gdt"]
    assert re.search(r"^APIC_BASE [0-9a-f]{16}: xAPIC, base 0xfee00000, BSP$", got["info lapic"],
                     re.M), got["info lapic"]
    assert "software enabled" in got["info lapic"] and "LVT timer" in got["info lapic"]
    assert len(re.findall(r"^pin +\d+: [0-9a-f]{16} vector", got["info ioapic"], re.M)) == 24
    assert re.search(r"^master PIC: vector base 0x[0-9a-f]{2} irr [0-9a-f]{2} isr [0-9a-f]{2} "
                     r"imr [0-9a-f]{2}", got["info pic"], re.M), got["info pic"]
    for v in views[:-1]:
        if not v.startswith("xp"):
            assert re.search(r"^  " + re.escape(v.split(" 0x")[0]), got["help"], re.M), v
    assert re.search(r"^  xp/FMT PADDR", got["help"], re.M)
    check_system_registers(out, got["info registers"])
    assert "monitor xp: unknown format letter 'z'" in out, out
    assert "monitor gva2gpa: bad argument 'zz'" in out, out
    assert "monitor xp: 0xfffffffff000 is not guest RAM" in out, out
    assert vm.wait(60) == 1, out
    assert "kdtools: in 0x" in vm.serial_text()


def host_msr_filter():
    """Whether this host's KVM has what MSR catches on the kvm engine rest on:
    the MSR filter, and exits to user space for the accesses it denies
    (KVM_CHECK_EXTENSION of KVM_CAP_X86_MSR_FILTER, KVM_CAP_X86_USER_SPACE_MSR)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    try:
        check = lambda cap: fcntl.ioctl(fd, KVM_CHECK_EXTENSION, cap)
        return check(KVM_CAP_X86_MSR_FILTER) > 0 and \
            bool(check(KVM_CAP_X86_USER_SPACE_MSR) & KVM_MSR_EXIT_REASON_FILTER)
    finally:
        os.close(fd)


KVM_CHECK_EXTENSION = 0xae03
KVM_CAP_X86_USER_SPACE_MSR, KVM_CAP_X86_MSR_FILTER = 188, 189
KVM_MSR_EXIT_REASON_FILTER = 1 << 2


def caught_lines(out, expect, sym, pcs):
    """Each 'stopped after it' line against (verb, value, what, label): the
    accessing instruction's address is the label's, the pc at the stop
    (pcs[i]) after it; the values the regex groups took, by label."""
    lines = re.findall(r"^vmdb: vCPU 0 (.*); stopped after it$", out, re.M)
    assert len(lines) == len(expect), out
    values = {}
    for i, (verb, value, what, label) in enumerate(expect):
        m = re.fullmatch(rf"{verb} {value} {what} at (0x[0-9a-f]+)", lines[i])
        assert m, (lines[i], expect[i])
        assert int(m.groups()[-1], 16) == sym[label], (lines[i], label)
        assert sym[label] < pcs[i] <= sym[label] + 3, (hex(pcs[i]), label)  # after it
        values[label] = m.group(1)
    return values


def test_catch_io_cr(start_vmdb, guest, free_port, engine):
    """catch io/cr stop right after the accessing instruction with a line
    naming it and the value; what the engine cannot catch here (monitor
    info caps) is refused in words, and nothing else stops."""
    elf = guest("gdb_target")
    sym = symbols(elf, ["gdb_kd_out", "gdb_kd_in", "gdb_kd_movcr"])
    msr_refused = engine == "kvm" and not host_msr_filter()
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=kdtools", port=free_port())
    cmds = ["break gdb_kd_ready", "continue", "monitor info caps",
            "monitor catch io 0x7f-0x80 w", "monitor catch io 0x71 r", "monitor catch io 0x70 r",
            "monitor catch cr 4", "monitor catch io 0x10000", "monitor catch cr 4 r",
            "monitor catch"]
    if msr_refused:
        cmds.append("monitor catch msr 0xc0000081")
    # emu sees every access; kvm the port exits that reach vmdb (checked below
    # against what monitor info caps says)
    stops = 3 if engine == "emu" else 2
    for _ in range(stops):
        cmds += ["continue", "p/x $pc", "monitor info registers"]
    # catch off empties the list; a detach takes the catches away too (the
    # guest's serial writes would stop it with nobody to tell)
    out = gdb_batch(elf, target, cmds + ["monitor catch off", "monitor catch",
                                         "monitor catch io 0x3f8 w", "detach"])
    caps = re.search(r"monitor catch of accesses here: io (\w+), msr (\w+), cr (\w+)", out)
    assert caps, out
    can = {k: v == "yes" for k, v in zip(("io", "msr", "cr"), caps.groups())}
    assert can == {"io": True, "msr": not msr_refused, "cr": engine == "emu"}, out
    why = {"CR": "KVM has no CR-write exit", "MSR": "host KVM has no MSR filter"}
    for word, refused in (("CR", not can["cr"]), ("MSR", msr_refused)):
        line = f"monitor catch: the {engine} engine cannot catch {word} accesses here: {why[word]}"
        assert (line in out) == refused, out
    assert "monitor catch: bad argument 'io 0x10000'" in out, out
    assert "monitor catch: bad argument 'cr 4 r'" in out, out
    assert re.search(r"^port 0x7f-0x80: writes$", out, re.M), out
    assert re.search(r"^port 0x71: reads$", out, re.M), out

    expect = [("wrote", "(0x5a)", "to port 0x80 \\(1 byte\\)", "gdb_kd_out"),
              ("read", r"(0x[0-9a-f]+)", "from port 0x71 \\(1 byte\\)", "gdb_kd_in")]
    if can["cr"]:
        expect += [("wrote", r"(0x[0-9a-f]+)", "to CR4", "gdb_kd_movcr")]
    pcs = [int(p, 16) for p in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    values = caught_lines(out, expect, sym, pcs)
    if can["cr"]:
        cr4s = re.findall(r"^CR4=([0-9a-f]{16})", out, re.M)
        assert int(values["gdb_kd_movcr"], 16) == int(cr4s[2], 16)
    assert "Trace/breakpoint trap" in out and "Inferior 1 (Remote target) detached" in out, out
    assert re.search(r"^no exceptions caught\nport 0x3f8: writes\nno exceptions caught$", out,
                     re.M), out
    assert vm.wait(60) == 1
    assert f"kdtools: in {values['gdb_kd_in']} star 0x13000800000000" in vm.serial_text()


def test_catch_msr(start_vmdb, guest, free_port, engine):
    """catch msr, one rule per direction: RDMSR and WRMSR stop right after
    the instruction with a line naming the MSR and the value, and the guest
    reads back what it wrote (on kvm through KVM's MSR filter, the access
    completed by vmdb); on kvm the x2APIC MSRs, which KVM never filters, are
    refused in words."""
    if engine == "kvm" and not host_msr_filter():
        pytest.skip("skipped: host KVM has no MSR filter")
    elf = guest("gdb_target")
    sym = symbols(elf, ["gdb_kd_wrmsr", "gdb_kd_rdmsr"])
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=kdtools", port=free_port())
    cmds = ["break gdb_kd_ready", "continue", "monitor catch msr 0xc0000081 w",
            "monitor catch msr 0xc0000081 r", "monitor catch msr 0x800-0x8ff w",
            "monitor catch off", "monitor catch msr 0xc0000081 w",
            "monitor catch msr 0xc0000081 r"]
    for _ in range(2):
        cmds += ["continue", "p/x $pc", "p/x $rdx"]
    out = gdb_batch(elf, target, cmds + ["monitor catch off", "detach"])
    assert re.search(r"^MSR 0xc0000081: writes\nMSR 0xc0000081: reads$", out, re.M), out
    x2apic = "the kvm engine cannot catch MSRs 0x800-0x8ff: KVM's MSR filter never covers"
    assert (x2apic in out) == (engine == "kvm"), out
    assert bool(re.search(r"^MSR 0x800-0x8ff: writes$", out, re.M)) == (engine == "emu"), out
    printed = [int(p, 16) for p in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    caught_lines(out, [("wrote", "(0x13000800000000)", "to MSR 0xc0000081", "gdb_kd_wrmsr"),
                       ("read", "(0x13000800000000)", "from MSR 0xc0000081", "gdb_kd_rdmsr")],
                 sym, printed[0::2])
    assert printed[1::2] == [0x130008, 0x130008], out    # RDMSR's EDX holds it at the stop
    assert "Inferior 1 (Remote target) detached" in out, out
    assert vm.wait(60) == 1
    assert "kdtools: in 0x" in vm.serial_text() and "star 0x13000800000000" in vm.serial_text()


def test_protocol_objects_and_range_step(start_vmdb, guest, free_port):
    """gdb learns the kernel from qXfer:exec-file (no file given), names the
    threads from qXfer:threads, takes the memory map (RAM, holes where no
    guest memory is); range stepping answers once for a whole range; stop
    replies carry core:; x reads binary memory in LLDB's and GDB's forms."""
    elf = guest("gdb_target")
    sym = symbols(elf, ["gdb_steps"])
    steps = sym["gdb_steps"]
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "test=stepi", port=free_port())
    c = RspClient(target)
    assert b"binary-upload" not in c.request("qSupported:swbreak+")
    assert c.request("vCont?").split(b";")[1:] == [b"c", b"C", b"s", b"S", b"t", b"r"]
    assert re.match(rb"T05thread:1;core:0;", c.request("?"))
    assert c.request("Z0,%x,1" % steps) == b"OK"
    stop = c.request("vCont;c")
    assert re.match(rb"T05thread:1;core:0;", stop), stop
    assert c.request("z0,%x,1" % steps) == b"OK"
    pc = int.from_bytes(bytes.fromhex(c.request("p10").decode()), "little")
    assert pc == steps, hex(pc)
    rax0 = int.from_bytes(bytes.fromhex(c.request("p0").decode()), "little")
    # "inc %rax" of 3 bytes each: a range is one stop reply, at its end or at
    # a breakpoint of the client inside it
    reg = lambda n: int.from_bytes(bytes.fromhex(c.request("p%x" % n).decode()), "little")
    assert c.request("Z0,%x,1" % (steps + 150)) == b"OK"
    stop = c.request("vCont;r%x,%x:1" % (steps, steps + 300))
    assert re.match(rb"T05thread:1;core:0;", stop), stop
    assert (reg(0x10), reg(0) - rax0) == (steps + 150, 50)
    assert c.request("z0,%x,1" % (steps + 150)) == b"OK"
    stop = c.request("vCont;r%x,%x:1" % (steps, steps + 300))
    assert re.match(rb"T05thread:1;core:0;", stop), stop
    assert (reg(0x10), reg(0) - rax0) == (steps + 300, 100)
    # binary reads: LLDB's probe and raw bytes, then GDB's 'b' form
    assert c.request("x0,0") == b"OK"
    want = bytes.fromhex(c.request("m%x,40" % steps).decode())
    assert c.request("x%x,40" % steps) == want
    assert c.request("qSupported:swbreak+;binary-upload+").find(b"binary-upload+") > 0
    assert c.request("x%x,40" % steps) == b"b" + want
    assert c.request("x0,0") == b"b"
    assert c.request("x%x,1" % 0xfee00000).startswith(b"E")
    assert c.request("D") == b"OK"
    c.close()

    out = gdb_batch(None, target, ["info threads", "info mem", "x/x 0xfee00000", "kill"])
    assert re.search(r"Reading symbols from .*gdb_target\.elf", out), out
    assert re.search(r'^\* 1 +Thread 1 "vCPU 0" \(vCPU 0, long mode', out, re.M), out
    assert "Using memory regions provided by the target." in out, out
    regions = [(int(lo, 16), int(hi, 16)) for lo, hi in
               re.findall(r"^\d+\s+y\s+(0x[0-9a-f]+) (0x[0-9a-f]+) rw", out, re.M)]
    assert any(lo <= steps < hi for lo, hi in regions), out
    assert not any(lo <= 0xfee00000 < hi for lo, hi in regions), out    # the LAPIC page
    assert "Cannot access memory at address 0xfee00000" in out, out
    vm.wait(30)


@pytest.mark.skipif(not shutil.which("lldb"), reason="skipped: no lldb")
def test_lldb_binary_read_system_registers_monitor(start_vmdb, guest, free_port, tmp_path):
    """LLDB reads memory with x packets (after its x0,0 probe), reads the
    system registers of the target description, and runs monitor commands."""
    from test_lldb import lldb_batch, registers, split_commands
    elf = guest("gdb_target")
    marker = symbols(elf, ["gdb_kd_marker"])["gdb_kd_marker"]
    port = free_port()
    vm = start_vmdb(elf, "--gdb", f"tcp:127.0.0.1:{port}", "--wait-gdb", "--cmdline",
                    "test=kdtools")
    vm.wait_for("stderr", r"gdb server listening on", timeout=30)
    log = tmp_path / "packets.log"
    cmds = [f"log enable -f {log} gdb-remote packets", "breakpoint set -n gdb_kd_ready",
            "process continue", f"memory read --size 8 --format x --count 1 {marker:#x}",
            "register read cr0 efer lstar cs_attr gdtr_limit",
            "process plugin packet monitor gva2gpa %#x" % marker, "process kill"]
    stdout, everything = lldb_batch(elf, port, cmds)
    out = dict(split_commands(stdout))
    assert re.search(rf"0x0*{marker:x}: 0x1122334455667788", out[cmds[3]]), everything
    packets = log.read_text()
    # (its x0,0 probe comes at connect, before the log is on)
    assert re.search(rf"send packet: \$x{marker:x},[0-9a-f]+#", packets), packets[-3000:]
    assert not re.search(rf"send packet: \$m{marker:x},", packets), packets[-3000:]
    regs = registers(out[cmds[4]])
    assert regs["cr0"] & 0x80000001 == 0x80000001 and regs["efer"] & 0x500 == 0x500, everything
    assert regs["cs_attr"] == 0xa09b and regs["gdtr_limit"] > 0, everything
    assert f"gpa: {marker:#x}" in everything, everything
    vm.wait(30)


def test_i386_description_at_a_multiboot_entry(start_vmdb, guest, free_port):
    """A vCPU in 32-bit protected mode when gdb connects (a multiboot
    kernel's entry, held by --wait-gdb): gdb is told of i386 registers and
    reads, steps, breaks and writes as on any 32-bit target; the guest's
    later switch to long mode does not disturb the session (it runs to its
    exit). --gdb-arch x86-64 gives the 64-bit set at the same place."""
    elf = guest("mb/exit")
    names = symbols(elf, ["rt_mb_entry", "mb_copy_gdt"])
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "exit=3", port=free_port())
    # the dprintf runs in vmdb with gdb's i386 register numbers (ebx is 3)
    out = gdb_batch(elf, target, [
        "show architecture", "info registers eip", "x/2i $eip", "p/x $eax", "stepi",
        "info registers eip ebx", "p $cr0", "break *mb_copy_gdt", "set dprintf-style agent",
        r'dprintf *rt_mb_entry+6,"mb eax=%x ebx=%x\n",$eax,$ebx', "continue",
        "info registers eip", "p/x $ecx = 0x12345678", "p/x $ecx", "p $cs_attr", "delete",
        "continue"])
    assert 'currently "i386"' in out, out
    entry, copy_gdt = names["rt_mb_entry"], names["mb_copy_gdt"]
    eips = [int(v, 16) for v in re.findall(r"^eip +(0x[0-9a-f]+)", out, re.M)]
    assert eips == [entry, entry + 1, copy_gdt], out
    assert re.search(rf"=> 0x{entry:x} <rt_mb_entry>:\s+cli\n.*<rt_mb_entry\+1>:\s+mov +%eax,",
                     out), out
    assert re.search(r"^\$1 = 0x2badb002$", out, re.M), out            # the multiboot magic
    assert re.search(r"^\$2 = \[ PE ET \]$", out, re.M), out            # no paging yet
    assert re.search(r"^\$4 = 0x12345678$", out, re.M), out
    assert re.search(r"^\$5 = \[ type=11 S DPL=0 P DB G \]$", out, re.M), out
    ebx = int(re.search(r"^ebx +(0x[0-9a-f]+)", out, re.M).group(1), 16)
    assert re.search(rf"^mb eax=2badb002 ebx={ebx:x}$", out, re.M), out
    assert "exited with code 07" in out, out
    assert vm.wait(30) == 7

    vm, target = start_gdb_vmdb(start_vmdb, elf, "--cmdline", "exit=3", "--gdb-arch", "x86-64",
                                port=free_port())
    out = gdb_batch(None, target, ["show architecture", "p/x $rip", "kill"])
    assert 'currently "i386:x86-64"' in out, out
    assert f"$1 = 0x{entry:x}" in out, out


def test_info_registers_of_every_vcpu(start_vmdb, guest, free_port):
    """`monitor info registers -a` (QEMU's -a): every vCPU's state under
    CPU#n, each RIP the one gdb reads for that thread; `info cpus` is
    QEMU's name for `info vcpus`."""
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    # markers on stderr, the stream monitor output goes to, keep the order
    mark = lambda text: f'python import sys; print("{text}", file=sys.stderr)'
    out = gdb_batch(elf, target, ["break demo_tick", "continue", "thread 1", "p/x $pc",
                                  "thread 2", "p/x $pc", mark("<all>"),
                                  "monitor info registers -a", mark("<cpus>"),
                                  "monitor info cpus", mark("<vcpus>"), "monitor info vcpus",
                                  mark("<end>"), "kill"])
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    every = section(out, "<all>", "<cpus>")
    blocks = re.split(r"^CPU#(\d+)\n", every, flags=re.M)[1:]
    assert [int(n) for n in blocks[0::2]] == [0, 1], every
    rips = [int(re.search(r"RIP=([0-9a-f]{16})", b).group(1), 16) for b in blocks[1::2]]
    assert rips == pcs, (pcs, every)
    assert section(out, "<cpus>", "<vcpus>") == section(out, "<vcpus>", "<end>"), out


def test_monitor_cpu_chooses_the_current_vcpu(start_vmdb, guest, free_port):
    """gdb names a thread to the stub only when it reads registers it has
    not cached: after `info threads`, `thread 1` sends nothing and the
    monitor's "current vCPU" is still the last thread gdb read. QEMU's
    `monitor cpu N` chooses it whatever gdb did; `cpu gdb` follows gdb."""
    elf = guest("demo")
    vm, target = start_gdb_vmdb(start_vmdb, elf, "--smp", "2", port=free_port())
    mark = lambda text: f'python import sys; print("{text}", file=sys.stderr)'
    out = gdb_batch(elf, target, [
        "break demo_tick", "continue", "thread 1", "p/x $pc", "thread 2", "p/x $pc",
        "info threads", "thread 1",
        "monitor cpu 0", mark("<cpu0>"), "monitor info registers", mark("<cpu1>"),
        "monitor cpu 1", "monitor info registers", mark("<follow>"), "monitor cpu gdb",
        "monitor cpu 7", mark("<end>"), "kill"])
    pcs = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)$", out, re.M)]
    rip = lambda text: int(re.search(r"RIP=([0-9a-f]{16})", text).group(1), 16)
    assert rip(section(out, "<cpu0>", "<cpu1>")) == pcs[0], out
    assert rip(section(out, "<cpu1>", "<follow>")) == pcs[1], out
    assert "monitor commands act on vCPU 1 (thread 2); `monitor cpu gdb` follows" in out, out
    tail = section(out, "<follow>", "<end>")
    assert re.search(r"act on vCPU \d \(thread \d\), the thread gdb last named", tail), tail
    assert "monitor cpu: there is no vCPU 7 (vCPUs 0 to 1)" in tail, tail
