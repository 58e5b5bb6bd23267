"""gdb on a real Linux kernel: Debian's cloud kernel (build/linux, `make
linux-assets`) under vmdb's GDB server, driven by the real gdb.

One boot of the bzImage walks through what a kernel developer does: attach
at the kernel's first instruction (--wait-gdb), let it boot to init, stop it
(Ctrl-C), read MSR_LSTAR through `monitor msr`, break on the system call
entry with a hardware breakpoint and step into it, watch a kernel variable a
timer tick writes, catch a line of its console output as the kernel writes
it, stop it while it idles in HLT and while it runs user space, reading
kernel memory each time, and continue to the guest's poweroff, which ends
the gdb session with the exit status. The PVH vmlinux and the bzImage are also checked at their first instruction alone (no boot,
so on every engine).

init's vmdb.gdb=1 mode (tests/linux/init) alternates a spell in user space
with a spell asleep, announcing each on the console, until it reads the line
"poweroff" there (vmdb's stdin). Kernel bytes are checked against the
vmlinux file: its program headers map virtual addresses to file offsets
(nokaslr: the kernel runs where it was linked)."""
import os
import re
import struct
import subprocess
import time

import pytest

from conftest import check_sanitizer_report, free_port_number, sanitizer_env
from gdbclient import GdbInteractive
from test_coredump import core_bytes, parse_core
from test_linux import CMDLINE, INITRD, KERNELS, linux_engine, linux_file  # noqa: F401

STEP_TIMEOUT = 240          # a boot to init, or one spell of the loop, on a busy host
MSR_LSTAR = 0xc0000082


# --- the vmlinux file: where kernel virtual addresses are in it ---

def elf_segments(data):
    """PT_LOAD program headers: [(vaddr, file offset, file size)]."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    out = []
    for i in range(phnum):
        p_type, _, offset, vaddr, _, filesz = struct.unpack_from("<IIQQQQ", data,
                                                                 phoff + i * phentsize)
        if p_type == 1:
            out.append((vaddr, offset, filesz))
    return out


def file_bytes(data, vaddr, size):
    for seg_vaddr, offset, filesz in elf_segments(data):
        if seg_vaddr <= vaddr and vaddr + size <= seg_vaddr + filesz:
            start = offset + vaddr - seg_vaddr
            return data[start:start + size]
    raise AssertionError(f"{vaddr:#x} is in no loaded segment of the vmlinux")


def elf_sections(data):
    """{name: (addr, size)}"""
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)
    raw = [struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = raw[shstrndx][4]
    return {data[names + s[0]:data.index(b"\0", names + s[0])].decode(): (s[3], s[5])
            for s in raw}


def exported_symbol(data, name):
    """The address of an EXPORT_SYMBOL'd kernel symbol, from __ksymtab (the
    vmlinux has no symbol table): entries of three 32-bit offsets, relative
    to themselves, to the symbol, its name and its namespace."""
    addr, size = elf_sections(data)["__ksymtab"]
    table = file_bytes(data, addr, size)
    want = name.encode() + b"\0"
    for i in range(0, size, 12):
        value_off, name_off = struct.unpack_from("<ii", table, i)
        if file_bytes(data, addr + i + 4 + name_off, len(want)) == want:
            return addr + i + value_off
    raise AssertionError(f"{name} is not exported by this kernel")


def pvh_entry(data):
    """XEN_ELFNOTE_PHYS32_ENTRY (18) from the "Xen" notes."""
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", data,
                                                             phoff + i * phentsize)
        pos = offset
        while p_type == 4 and pos < offset + filesz:
            namesz, descsz, n_type = struct.unpack_from("<III", data, pos)
            name = data[pos + 12:pos + 12 + namesz].rstrip(b"\0")
            desc = pos + 12 + (namesz + 3) // 4 * 4
            if name == b"Xen" and n_type == 18:
                return struct.unpack_from("<I", data, desc)[0]
            pos = desc + (descsz + 3) // 4 * 4
    raise AssertionError("no PVH entry note in the vmlinux")


def bzimage_entry(path):
    """Where vmdb loads a relocatable bzImage (pref_address aligned up to
    kernel_alignment, with 512M of RAM it fits) + 0x200, the 64-bit entry."""
    with open(path, "rb") as f:
        head = f.read(0x268)
    align, = struct.unpack_from("<I", head, 0x230)
    pref, = struct.unpack_from("<Q", head, 0x258)
    return (pref + align - 1) // align * align + 0x200


# --- vmdb with its console on stdin/stdout, and gdb ---

class LinuxVm:
    """vmdb booting Linux with --gdb: console output to a file, console
    input from a pipe (what init reads)."""

    def __init__(self, vmdb_bin, engine, kernel, tmp_path, *args):
        self.port = free_port_number()
        self.out_path = tmp_path / "console.txt"
        self.err_path = tmp_path / "stderr.txt"
        self.argv = [vmdb_bin, "--engine", engine, "--gdb", f"tcp:127.0.0.1:{self.port}",
                     "--wait-gdb", "--mem", "512M", "--initrd", INITRD, *args, kernel]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=out,
                                         stderr=err, env=sanitizer_env())
        self.wait_for(r"gdb server listening on", what="stderr", timeout=30)

    def text(self, what="console"):
        path = self.out_path if what == "console" else self.err_path
        return path.read_bytes().decode("utf-8", "replace")

    def wait_for(self, pattern, what="console", timeout=STEP_TIMEOUT):
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.text(what)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not show {pattern!r} (vmdb "
                            f"{'exited ' + str(self.proc.returncode) if self.proc.poll() is not None else 'runs'})"
                            f"\nstderr: {self.text('stderr')}\nconsole: {self.text()[-3000:]}")
            time.sleep(0.02)

    def count(self, pattern):
        return len(re.findall(pattern, self.text()))

    def type_line(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        check_sanitizer_report(self.text("stderr"))


class Gdb(GdbInteractive):
    """gdb with one command at a time: run() returns what the command printed."""

    def __init__(self, elf, target):
        super().__init__(elf, target)
        self.marks = 0
        self.expect(r"\(gdb\)")

    def start(self, command):
        """Send a command (and the end marker after it) without waiting."""
        self.marks += 1
        self.mark = f"@@end-{self.marks}@@"
        self.begin = len(self.out)
        self.send(command)
        self.send(f"echo {self.mark}\\n")

    def finish(self, timeout=STEP_TIMEOUT):
        self.expect(re.escape(self.mark), timeout)
        return self.out[self.begin:self.out.index(self.mark, self.begin)]

    def run(self, command, timeout=60):
        self.start(command)
        return self.finish(timeout)

    def value(self, expression):
        out = self.run(f"p/x {expression}")
        m = re.search(r"\$\d+ = (0x[0-9a-f]+)", out)
        assert m, f"p/x {expression}: {out}"
        return int(m.group(1), 16)

    def read(self, addr, size):
        out = self.run(f"x/{size}xb {addr:#x}")
        got = bytes(int(b, 16) for b in re.findall(r"\t0x([0-9a-f]{2})", out))
        assert len(got) == size, f"x/{size}xb {addr:#x}: {out}"
        return got


@pytest.fixture
def linux_gdb(vmdb_bin, tmp_path):
    """start(engine, kernel, cmdline, *vmdb_args) -> (LinuxVm, Gdb) attached at the first
    instruction."""
    started = []

    def start(engine, kernel, cmdline, *args):
        vm = LinuxVm(vmdb_bin, engine, linux_file(kernel), tmp_path, "--cmdline", cmdline,
                     *args)
        started.append(vm)
        gdb = Gdb(linux_file(KERNELS["pvh"]), f"127.0.0.1:{vm.port}")
        started.append(gdb)
        return vm, gdb

    yield start
    for thing in reversed(started):
        thing.close()


def check_bzimage_entry(gdb):
    """At the 64-bit entry in long mode, RSI = boot_params (its header says "HdrS")."""
    assert gdb.value("$pc") == bzimage_entry(linux_file(KERNELS["bzimage"]))
    assert gdb.value("$cs") == 0x10 and "long mode" in gdb.run("monitor info vcpus")
    assert gdb.value("*(unsigned int *)($rsi + 0x202)") == 0x53726448


def stop_when(vm, gdb, line, good, what):
    """Continue, and Ctrl-C once the console shows a new `line`, until the
    stop satisfies good() (a stop can land in an interrupt handler by
    chance; the next spell is then tried)."""
    for _ in range(5):
        seen = vm.count(line)
        gdb.start("continue")
        vm.wait_for(f"(?s)({line}.*){{{seen + 1}}}")
        gdb.interrupt()
        out = gdb.finish()
        assert "received signal SIGINT" in out, out
        if good():
            return
    pytest.fail(f"five Ctrl-Cs after {line!r}, none stopped {what}:\n{gdb.out[-3000:]}")


def test_linux_gdb_session(linux_gdb, linux_engine, build_dir, tmp_path):  # noqa: F811
    if "asan" in os.path.basename(build_dir):
        pytest.skip("the sanitizer build boots Linux once, in test_linux.py")
    with open(linux_file(KERNELS["pvh"]), "rb") as f:
        vmlinux = f.read()
    vm, gdb = linux_gdb(linux_engine, KERNELS["bzimage"], f"{CMDLINE} vmdb.gdb=1")

    check_bzimage_entry(gdb)

    # boot to init's loop; Ctrl-C stops it
    gdb.start("continue")
    vm.wait_for(r"VMDB-LINUX: spinning 1")
    gdb.interrupt()
    assert "received signal SIGINT" in gdb.finish()

    # the system call entry, from MSR_LSTAR, in the kernel's text
    out = gdb.run(f"monitor msr read {MSR_LSTAR:#x}")
    m = re.search(r"MSR 0xc0000082 = (0x[0-9a-f]+)", out)
    assert m, out
    lstar = int(m.group(1), 16)
    text_addr, text_size = elf_sections(vmlinux)[".text"]
    assert text_addr <= lstar < text_addr + text_size, hex(lstar)
    entry_bytes = file_bytes(vmlinux, lstar, 16)

    # the monitor's address-space views walk the kernel's own page tables:
    # the entry's physical copy holds its bytes, in a supervisor mapping
    m = re.search(r"gpa: (0x[0-9a-f]+)", gdb.run(f"monitor gva2gpa {lstar:#x}"))
    assert m, gdb.out[-2000:]
    out = gdb.run(f"monitor xp/16xb {m.group(1)}")
    assert bytes(int(b, 16) for b in re.findall(r" 0x([0-9a-f]{2})", out)) == entry_bytes, out
    ranges = re.findall(r"^([0-9a-f]{16})-([0-9a-f]{16}) [0-9a-f]{16} ([-u])r[-w]$",
                        gdb.run("monitor info mem"), re.M)
    assert [u for s, e, u in ranges if int(s, 16) <= lstar < int(e, 16)] == ["-"], ranges
    # the entry's page as a core file laid out by the kernel's mappings: the
    # bytes at LSTAR's virtual address are the entry's (the direct map's
    # alias of the page is in it too)
    page, core = int(m.group(1), 16) & ~0xfff, tmp_path / "entry.core"
    out = gdb.run(f"monitor dump-guest-memory -p {core} {page:#x} 0x1000")
    assert re.search(rf"wrote {core}: \d+ KiB of guest memory in \d+ segments", out), out
    entry_core = parse_core(core)
    assert core_bytes(entry_core, lstar, 16, physical=False) == entry_bytes
    assert all(pa == page and size == 0x1000 for _, pa, _, size in entry_core[1]), entry_core[1]

    # a hardware breakpoint there stops at init's next system call, in ring 0
    assert "Hardware assisted breakpoint 1" in gdb.run(f"hbreak *{lstar:#x}")
    out = gdb.run("continue", timeout=STEP_TIMEOUT)
    assert "Breakpoint 1," in out, out
    assert gdb.value("$pc") == lstar and gdb.value("$cs") & 3 == 0
    assert gdb.read(lstar, 16) == entry_bytes
    # stepi walks to the entry's next instruction
    insns = re.findall(r"^\s*(?:=> )?(0x[0-9a-f]+)", gdb.run("x/2i $pc"), re.M)
    assert len(insns) == 2 and int(insns[0], 16) == lstar, insns
    gdb.run("stepi")
    assert gdb.value("$pc") == int(insns[1], 16)
    gdb.run("delete")

    # a watchpoint on kernel data: the timer tick writes jiffies_64, wherever
    # the engine watches memory (DR0-3, emu's access check, or kvm's page
    # traps where data breakpoints never fire: `monitor info caps` says)
    m = re.search(r"^watchpoints: (.*)$", gdb.run("monitor info caps"), re.M)
    assert m and not m.group(1).startswith("not available"), gdb.out[-2000:]
    jiffies = exported_symbol(vmlinux, "jiffies_64")
    assert "Hardware watchpoint 2" in gdb.run(f"watch *(long *){jiffies:#x}")
    out = gdb.run("continue", timeout=STEP_TIMEOUT)
    m = re.search(r"Hardware watchpoint 2: .*\n+Old value = (\d+)\nNew value = (\d+)", out)
    assert m and int(m.group(2)) > int(m.group(1)), out
    # where it lived while the kernel ran (gdb takes it out at the stop)
    out = gdb.run("monitor info watchpoints")
    assert re.search(rf"while it last ran:\nwrite +8 bytes at linear {jiffies:#x}: \S", out), out
    gdb.run("delete")

    # the console caught: init's next "spinning N" stops the vCPU right
    # after the port write that sends the line's last digit, in the kernel
    gdb.run("monitor catch output ^VMDB-LINUX: spinning [0-9]+$")
    out = gdb.run("continue", timeout=STEP_TIMEOUT)
    assert re.search(r"vmdb: vCPU \d+'s serial output matched /\^VMDB-LINUX: spinning \[0-9\]\+\$/: "
                     r'"VMDB-LINUX: spinning \d+"; stopped after the write', out), out
    assert "received signal SIGTRAP" in out, out
    assert gdb.value("$cs") & 3 == 0 and text_addr <= gdb.value("$pc") < text_addr + text_size
    assert "no exceptions caught" in gdb.run("monitor catch output off")

    # Ctrl-C while init sleeps: the vCPU idles in HLT, in the kernel
    def halted():
        cpl, before = gdb.value("$cs") & 3, gdb.read(gdb.value("$pc") - 1, 1)
        return cpl == 0 and before == b"\xf4" and "halted" in gdb.run("monitor info vcpus")
    stop_when(vm, gdb, r"VMDB-LINUX: sleeping \d+", halted, "in HLT")
    assert gdb.read(lstar, 16) == entry_bytes

    # Ctrl-C while init spins in user space: CPL 3, the kernel still readable
    stop_when(vm, gdb, r"VMDB-LINUX: spinning \d+", lambda: gdb.value("$cs") & 3 == 3,
              "in user space")
    m = re.search(r"^cs\s+(0x[0-9a-f]+)", gdb.run("info registers"), re.M)
    assert m and int(m.group(1), 16) & 3 == 3, gdb.out[-2000:]
    assert gdb.read(lstar, 16) == entry_bytes

    # init reads "poweroff" and powers off: the session ends with the status
    gdb.start("continue")
    vm.type_line("poweroff")
    out = gdb.finish()
    assert re.search(r"\[Inferior 1 \(Remote target\) exited normally\]", out), out
    assert vm.proc.wait(60) == 0


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_linux_first_instruction(linux_gdb, engine, kernel):
    """--wait-gdb stops at the kernel's first instruction. No boot: every
    engine and build."""
    vm, gdb = linux_gdb(engine, KERNELS[kernel], CMDLINE)
    if kernel == "bzimage":
        check_bzimage_entry(gdb)
    else:
        # the note's entry, 32-bit protected mode, paging off, EBX = hvm_start_info
        with open(linux_file(KERNELS["pvh"]), "rb") as f:
            assert gdb.value("$pc") == pvh_entry(f.read())
        assert gdb.value("$cr0") & 0x80000001 == 1                 # PE, not PG
        assert "32-bit protected mode" in gdb.run("monitor info vcpus")
        assert gdb.value("*(unsigned int *)$rbx") == 0x336ec578    # XEN_HVM_START_MAGIC_VALUE
    gdb.run("kill")
    assert vm.proc.wait(30) == 0


def test_linux_vcpus_are_threads(linux_gdb, engine):
    """Each vCPU is a gdb thread: with --smp 4, at the kernel's first
    instruction (no boot), vCPU 0 at the PVH entry, the others waiting for
    the kernel's SIPI."""
    vm, gdb = linux_gdb(engine, KERNELS["pvh"], CMDLINE, "--smp", "4")
    threads = re.findall(r'Thread (\d+) "vCPU (\d+)" \(vCPU \d+, ([^)]*)\)',
                         gdb.run("info threads"))
    assert [(t, v) for t, v, _ in threads] == [("1", "0"), ("2", "1"), ("3", "2"), ("4", "3")]
    assert threads[0][2] == "32-bit protected mode"
    assert all(state == "waiting for SIPI" for _, _, state in threads[1:]), threads
    gdb.run("kill")
    assert vm.proc.wait(30) == 0
