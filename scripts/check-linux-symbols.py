#!/usr/bin/env python3
"""The README's "Debugging a Linux kernel" session, checked as a kernel
developer runs it, outside `make test` (it needs ~420 MB of Debian packages:
`make check-linux-symbols` fetches them into build/linux). gdb holds the
vmlinux of Debian's -dbg package, with symbols and DWARF, and the kernel's
own gdb scripts (vmlinux-gdb.py, made from the same version's linux-source):

  1. from the first instruction (--wait-gdb): `hbreak start_kernel`, a
     breakpoint on do_sys_openat2 that stops when init opens "/init",
     `finish` with its return value, a watchpoint on jiffies_64 that sees
     one tick, MSR_LSTAR naming entry_SYSCALL_64;
  2. attached to the idle kernel of a 2-vCPU boot: lx-version, lx-cmdline,
     lx-ps (init is there), lx-dmesg, lx-cpus, $lx_current();
     `monitor dump-guest-memory` writes the kernel as an ELF core, which
     gdb (-p: bt, lx-ps) and crash(8) (sys, log) read offline;
     `monitor catch output` stops the kernel as it writes init's next
     line to the UART (bt: serial8250_...); then the init's "poweroff"
     typed on the console ends vmdb with status 0;
  3. a module: the guest's shell loads binfmt_misc.ko; lx-symbols finds
     its -dbg copy, lx-lsmod lists it, and a breakpoint on its
     bm_fill_super stops when the shell mounts a binfmt_misc filesystem;
  4. a panic (no init to run): `monitor catch output` stops the kernel at
     its last panic line, `monitor dump-guest-memory` writes it, and crash
     shows the PANIC line and the backtrace through panic().

    scripts/check-linux-symbols.py [--engine emu|kvm] [--vmdb build/vmdb]
                                   [--timeout SECONDS]

Prints one line per check; exit status 0 only when every check passed."""
import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUX = os.path.join(ROOT, "build", "linux")
CMDLINE = "console=ttyS0 nokaslr quiet vmdb.gdb=1"
GDB_TIMEOUT = 900      # a session's default: gdb reads 590 MB of DWARF, and on
                       # kvm where the host emulates ring 0 a boot takes many minutes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_id(path):
    out = subprocess.run(["readelf", "-n", path], capture_output=True, text=True).stdout
    m = re.search(r"Build ID: ([0-9a-f]+)", out)
    return m.group(1) if m else None


class Vmdb:
    """vmdb in the background; its console collected by a thread."""
    def __init__(self, args, port, *extra):
        argv = [args.vmdb, "--engine", args.engine, "--gdb", f"tcp:127.0.0.1:{port}",
                "--mem", "512M", "--initrd", os.path.join(LINUX, "initramfs.gz"), *extra,
                os.path.join(LINUX, "vmlinuz-cloud")]
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.text, self.cond = "", threading.Condition()
        threading.Thread(target=self.collect, daemon=True).start()

    def collect(self):
        for chunk in iter(lambda: self.p.stdout.read1(4096), b""):
            with self.cond:
                self.text += chunk.decode(errors="replace")
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def serial(self):
        with self.cond:
            return self.text

    def wait_for(self, text, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: text in self.text or self.p.poll() is not None,
                                      timeout) and text in self.text

    def type_line(self, line):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def end(self, timeout=120):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None


def run(argv, timeout, what):
    """(what argv printed, seconds it took)"""
    start = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
    except subprocess.TimeoutExpired as t:
        out = (t.stdout or b"").decode(errors="replace") + f"\n({what} stopped after {timeout} s)"
    return out, time.monotonic() - start


def gdb(port, commands, timeout, core=None):
    """gdb on the -dbg vmlinux with the kernel's scripts, attached to vmdb
    on port, or reading the core file core."""
    argv = ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set width 0",
            "-ex", "set confirm off",
            "-ex", f"source {os.path.join(LINUX, 'src', 'vmlinux-gdb.py')}",
            "-ex", f"core-file {core}" if core else f"target remote 127.0.0.1:{port}"]
    for c in commands:
        argv += ["-ex", c]
    argv.append(os.path.join(LINUX, "vmlinux-cloud-dbg"))
    return run(argv, timeout, "gdb")


def crash(core, commands, timeout):
    with tempfile.NamedTemporaryFile("w", suffix=".crash") as f:
        f.write("\n".join(commands + ["quit"]) + "\n")
        f.flush()
        return run(["crash", "-s", os.path.join(LINUX, "vmlinux-cloud-dbg"), core, "-i", f.name],
                   timeout, "crash")


def report(results, name, ok, detail=""):
    results.append(ok)
    print(f"check-linux-symbols: {name} {'ok' if ok else 'FAIL'} {detail}".rstrip(), flush=True)


def from_first_instruction(args, results):
    port = free_port()
    vm = Vmdb(args, port, "--wait-gdb", "--cmdline", CMDLINE)
    out, took = gdb(port, [
        "hbreak start_kernel", "continue", "bt 1", "delete",
        "break do_sys_openat2", "continue", "p filename", "finish", "delete",
        "watch jiffies_64", "continue", "delete",
        "info symbol $lstar", "kill"], args.timeout)
    vm.end(30)
    report(results, "start_kernel", bool(re.search(
        r"^#0 +start_kernel \(\) at init/main\.c:\d+", out, re.M)), f"(session {took:.1f} s)")
    report(results, "openat", bool(re.search(r'do_sys_openat2 \(dfd=-100, filename=0x[0-9a-f]+ '
                                             r'"/init"', out)))
    report(results, "finish", bool(re.search(r"^Value returned is \$\d+ = \d+$", out, re.M)))
    old = re.search(r"^Old value = (\d+)\nNew value = (\d+)$", out, re.M)
    report(results, "watch jiffies_64", bool(old) and int(old.group(2)) == int(old.group(1)) + 1,
           old.group(0).replace("\n", ", ") if old else "")
    report(results, "lstar", bool(re.search(r"^entry_SYSCALL_64 in section \.text$", out, re.M)))
    return out


def backtrace(out):
    """The functions of the frames gdb printed between <bt> and </bt>."""
    m = re.search(r"^<bt>\n(.*?)^</bt>$", out, re.M | re.S)
    return re.findall(r"^#\d+ +(?:0x[0-9a-f]+ in )?(\w+) ", m.group(1), re.M) if m else []


def attached_to_idle_kernel(args, results, tmp):
    port = free_port()
    paged, phys = os.path.join(tmp, "vmcore-p"), os.path.join(tmp, "vmcore")
    vm = Vmdb(args, port, "--smp", "2", "--cmdline", CMDLINE + " vmdb.cpus=2")
    if not vm.wait_for("VMDB-LINUX: sleeping 2", args.timeout):
        report(results, "boot to init", False, vm.serial()[-400:])
        vm.end(1)
        return ""
    out, took = gdb(port, ["lx-version", "lx-cmdline", "lx-ps", "lx-dmesg", "lx-cpus",
                           "p $lx_current().comm",
                           "thread 1", "echo <bt>\\n", "bt 3", "echo </bt>\\n",
                           f"monitor dump-guest-memory -p {paged}",
                           f"monitor dump-guest-memory {phys}",
                           "monitor catch output ^VMDB-LINUX: sleeping [0-9]+$", "continue",
                           "bt", "detach"], args.timeout)
    report(results, "lx-version", "Linux version 6." in out, f"(session {took:.1f} s)")
    report(results, "lx-cmdline", CMDLINE + " vmdb.cpus=2" in out)
    report(results, "lx-ps", bool(re.search(r"^0x[0-9a-f]+ +1 +init$", out, re.M)))
    report(results, "lx-dmesg", bool(re.search(r"^\[ *[0-9.]+\] smp: Brought up 1 node, 2 CPUs",
                                               out, re.M)))
    report(results, "lx-cpus", "Online CPUs   : [0, 1]" in out)
    report(results, "lx_current", bool(re.search(r'^\$1 = "[\w/:-]+', out, re.M)))
    report(results, "catch output", "serial output matched" in out and
           bool(re.search(r"^#\d+ .*serial8250\w* \(", out, re.M)))
    vm.type_line("poweroff")
    status = vm.end()
    report(results, "poweroff", status == 0, f"(vmdb exit status {status})")
    live_bt = backtrace(out)
    core_out, took = gdb(None, ["echo <bt>\\n", "bt 3", "echo </bt>\\n", "lx-ps"], args.timeout,
                         core=paged)
    report(results, "dump -p in gdb", bool(live_bt) and backtrace(core_out) == live_bt and
           bool(re.search(r"^0x[0-9a-f]+ +1 +init$", core_out, re.M)),
           f"(bt {' < '.join(live_bt)}; {took:.1f} s)")
    crash_out, took = crash(phys, ["sys", "log"], args.timeout)
    report(results, "dump in crash", bool(re.search(r"^ +CPUS: 2$", crash_out, re.M)) and
           bool(re.search(r"^ +RELEASE: 6\.", crash_out, re.M)) and
           bool(re.search(r"smp: Brought up 1 node, 2 CPUs", crash_out)), f"({took:.1f} s)")
    return out + core_out + crash_out


def gdb_typing(vmlinux, port, commands, timeout, vm, when, line):
    """gdb on vmlinux as gdb() does, typing line on vm's console once gdb
    has printed when (a line of its own: an echo before a continue; the
    line waits in the console's input while the guest is stopped)."""
    argv = ["gdb", "-nx", "-batch", "-ex", "set pagination off", "-ex", "set width 0",
            "-ex", "set confirm off",
            "-ex", f"source {os.path.join(LINUX, 'src', 'vmlinux-gdb.py')}",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        argv += ["-ex", c]
    argv.append(vmlinux)
    start, out = time.monotonic(), []
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True)
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    for text in p.stdout:
        out.append(text)
        if text.strip() == when:
            vm.type_line(line)
    p.wait()
    timer.cancel()
    return "".join(out), time.monotonic() - start


def module_debugging(args, results, tmp):
    """A module's symbols through lx-symbols (the -dbg package's copy of
    binfmt_misc.ko) and a breakpoint in it, hit when the guest mounts it."""
    initrd = os.path.join(tmp, "initramfs-module.gz")
    subprocess.run([sys.executable, os.path.join(ROOT, "tests", "linux", "mkinitramfs.py"),
                    os.path.join(LINUX, "busybox"), os.path.join(ROOT, "tests", "linux", "init"),
                    initrd, f"lib/modules/binfmt_misc.ko={os.path.join(LINUX, 'binfmt_misc.ko')}"],
                   check=True)
    port = free_port()
    vm = Vmdb(args, port, "--initrd", initrd, "--cmdline",
              CMDLINE.replace("vmdb.gdb=1", "vmdb.shell=1"))
    loaded = vm.wait_for("VMDB-LINUX: shell", args.timeout)
    if loaded:
        vm.type_line("insmod /lib/modules/binfmt_misc.ko && echo VMDB-LINUX: module in")
        loaded = vm.wait_for("VMDB-LINUX: module in", 60)
    if not loaded:
        report(results, "module loaded", False, vm.serial()[-400:])
        vm.end(1)
        return ""
    # lx-symbols loads the kernel's symbols again from a file whose name
    # ends in "vmlinux" (else it looks for ./vmlinux and loses them all);
    # gdb names a file by its real path, so a symbolic link would not do
    vmlinux = os.path.join(LINUX, "lx-symbols", "vmlinux")
    dbg = os.path.join(LINUX, "vmlinux-cloud-dbg")
    if not os.path.exists(vmlinux) or not os.path.samefile(vmlinux, dbg):
        os.makedirs(os.path.dirname(vmlinux), exist_ok=True)
        if os.path.exists(vmlinux):
            os.unlink(vmlinux)      # a kernel fetched since
        os.link(dbg, vmlinux)
    out, took = gdb_typing(vmlinux, port, [
        f"lx-symbols {os.path.join(LINUX, 'modules-dbg')}", "lx-lsmod",
        "break bm_fill_super", "echo <continue>\\n", "continue", "bt 2", "delete", "detach"],
        args.timeout, vm, "<continue>", "mkdir -p /mnt && mount -t binfmt_misc none /mnt "
        "&& echo VMDB-LINUX: mounted")
    report(results, "lx-symbols", bool(re.search(r"^loading @0xffffffff[0-9a-f]+: \S*"
                                                  r"modules-dbg/binfmt_misc\.ko$", out, re.M)),
           f"(session {took:.1f} s)")
    report(results, "lx-lsmod", bool(re.search(r"^0xffffffff[0-9a-f]+ +binfmt_misc +\d+", out,
                                               re.M)))
    report(results, "module breakpoint", bool(re.search(
        r"^#0 +bm_fill_super \(sb=0x[0-9a-f]+, fc=0x[0-9a-f]+\) at fs/binfmt_misc\.c:\d+", out,
        re.M)) and vm.wait_for("VMDB-LINUX: mounted", 60))
    vm.type_line("poweroff -f")
    status = vm.end()
    report(results, "module poweroff", status == 0, f"(vmdb exit status {status})")
    return out


def panic_post_mortem(args, results, tmp):
    """A kernel that panics (no init to run), caught on its console's last
    panic line, dumped, and read by crash: its PANIC line and the panicking
    task's backtrace through panic()."""
    port = free_port()
    vm = Vmdb(args, port, "--wait-gdb", "--cmdline", "console=ttyS0 nokaslr rdinit=/no/such/init")
    core = os.path.join(tmp, "vmcore-panic")
    out, took = gdb(port, ["monitor catch output end Kernel panic", "continue",
                           f"monitor dump-guest-memory {core}", "kill"], args.timeout)
    vm.end(30)
    report(results, "panic caught", "serial output matched /end Kernel panic/" in out,
           f"(session {took:.1f} s)")
    crash_out, took = crash(core, ["sys", "bt"], args.timeout) if os.path.exists(core) \
        else ("no dump", 0.0)
    report(results, "panic in crash",
           bool(re.search(r"^ +PANIC: \"Kernel panic - not syncing: ", crash_out, re.M)) and
           bool(re.search(r"^ #\d+ \[[0-9a-f]+\] panic at ", crash_out, re.M)),
           f"({took:.1f} s)")
    return out + crash_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", default="emu")
    ap.add_argument("--vmdb", default=os.path.join(ROOT, "build", "vmdb"))
    ap.add_argument("--timeout", type=float, default=GDB_TIMEOUT,
                    help="seconds for each gdb session and for the boot before the second")
    args = ap.parse_args()
    dbg = os.path.join(LINUX, "vmlinux-cloud-dbg")
    want, have = build_id(os.path.join(LINUX, "vmlinux-cloud")), build_id(dbg)
    if not want or want != have:
        print(f"check-linux-symbols: {dbg} (build ID {have}) is not the kernel that boots "
              f"(build ID {want})", file=sys.stderr)
        return 1
    results = []
    with tempfile.TemporaryDirectory(prefix="vmdb-symbols-") as tmp:
        logs = [from_first_instruction(args, results),
                attached_to_idle_kernel(args, results, tmp),
                module_debugging(args, results, tmp),
                panic_post_mortem(args, results, tmp)]
    if not all(results):
        for log in logs:
            print(log[-3000:])
    print(f"check-linux-symbols: {sum(results)} of {len(results)} checks passed on "
          f"{args.engine}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
