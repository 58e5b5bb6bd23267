#!/usr/bin/env python3
"""The long Linux check, outside `make test`: Debian's kernel (build/linux,
from `make linux-assets`) boots on one engine, as the bzImage and as the
PVH vmlinux, with 1, 2 and 4 vCPUs, to the test init (tests/linux/init),
whose checks must pass before it powers off (vmdb exit status 0).

Each boot reports how long it took (and when the kernel's banner, the
secondary CPUs, the first clocksource switch (from jiffies), the TSC
clocksource, the init and the init's verdict showed), how much CPU vmdb
had meanwhile (where ring 0 is emulated, a starved vCPU spends all it gets
in timer interrupts, 250 a second of guest time, and the guest reports soft
lockups), and how far it got: the last
VMDB-LINUX line of the init, else the last kernel line; when a boot
fails or runs out of time, where the vCPUs were (`monitor info vcpus`,
and `monitor info caps` for what the kvm engine handed to emu, through
gdb). On a host whose KVM emulates guest ring 0 a kvm boot takes many
minutes: the timeout per boot is generous and settable.

    scripts/check-linux.py --engine kvm [--timeout SECONDS] [--jobs N]
                           [--boots bzimage-1,pvh-2,...] [--vmdb build/vmdb]
                           [--cmdline "more kernel arguments"] [--plain]

Exit status 0 only when every boot passed."""
import argparse
import gzip
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINUX = os.path.join(ROOT, "build", "linux")
KERNELS = {"bzimage": "vmlinuz-cloud", "pvh": "vmlinux-cloud"}
BOOTS = ["bzimage-1", "bzimage-2", "bzimage-4", "pvh-1", "pvh-2", "pvh-4"]
CMDLINE = "console=ttyS0 nokaslr"
TAIL_LINES = 3
# Where ring 0 is emulated (a few million instructions/s) boot steps that
# are instants natively take minutes each: unpacking the gzip'd initramfs
# in the kernel, the crypto self-tests (much of it SSE, which the host's
# emulator hands to emu), ftrace's check of every traced function's symbol,
# the trace events' enum names replaced in every event format, parsing
# and verifying the built-in X.509 certificates. Unless --plain, the kvm
# boots there get the initramfs uncompressed and skip those (which matter
# only to someone tracing, loading signed modules or doubting the kernel's
# crypto). Measured on emu with initcall_debug: the crypto tests are more
# than half of the kernel's own boot. SMAP stays on although CLAC and
# STAC, around every access to user memory, go to emu: the CLAC at the
# start of the #PF entry is where vmdb completes the ring-3 SYSCALLs this
# host leaves at CPL 3 (engine/kvm/kvm_syscall_mend.c).
#
# lapic=notscdeadline: until the clocksource switch at fs_initcall time the
# kernel keeps time by jiffies and ticks in periodic mode. With the
# TSC-deadline timer (one-shot only) that periodic tick is emulated by
# tick_handle_periodic(), which re-arms next = last + 4 ms and, while next
# is already past and the clocksource is good for high resolution, runs
# one more whole tick and tries again. Once kvm-clock is in, a vCPU whose
# tick costs more than 4 ms of wall time (a few thousand emulated ring-0
# instructions; a vCPU of four sharing a busy host gets ~15% of a core,
# its steal time says) never leaves that loop: the boot stopped there with
# every vCPU in tick code for 2000 s (PID 1 just back from the switch's
# stop_machine, its RIP unchanged in every soft-lockup report). The LAPIC
# timer in periodic mode has no catch-up loop (a late tick is just late);
# after the switch the high-resolution hrtimer_interrupt, which guards
# itself against hangs, takes over either way.
SLOW_HOST_INITCALLS = ["ftrace_check_for_weak_functions", "trace_eval_init", "blake2s_mod_init",
                       "crypto_kdf108_init", "load_system_certificate_list"]
SLOW_HOST_CMDLINE = (f"initcall_blacklist={','.join(SLOW_HOST_INITCALLS)} cryptomgr.notests "
                     "lapic=notscdeadline")
# When each boot got where (seconds from vmdb's start, first line seen).
MILESTONES = [("Linux version", "Linux version"), ("CPUs up", "smp: Brought up"),
              ("clocksource switch", "Switched to clocksource"),
              ("TSC clocksource", "Switched to clocksource tsc"),
              ("init", "VMDB-LINUX: init started"), ("init's end", "VMDB-LINUX: PASS")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def monitor(port, commands):
    """What the gdb server answers to `monitor CMD` (the vCPUs stop)."""
    if not shutil.which("gdb"):
        return "(no gdb to ask where the vCPUs are)"
    argv = ["gdb", "-nx", "-batch", "-ex", "set pagination off",
            "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        argv += ["-ex", f"monitor {c}"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "(gdb did not answer within 120 s)"
    # the vCPU lines of `info vcpus` and the fallback count of `info caps`
    keep = [l for l in (r.stdout + r.stderr).splitlines()
            if " thread " in l or "single-instruction fallback" in l]
    return "\n".join(keep) or (r.stdout + r.stderr).strip()


def ring0_emulated(vmdb):
    """What `vmdb --probe` found: the host's KVM emulates guest ring 0."""
    r = subprocess.run([vmdb, "--engine", "kvm", "--probe"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    return "native ring-0 execution: no" in r.stdout


def progress(serial, passed):
    """The init's last VMDB-LINUX line, else the last kernel line; and,
    unless the boot passed, vmdb's own last complaint, if any."""
    lines = [l.rstrip("\r") for l in serial.splitlines() if l.strip()]
    init = [l for l in lines if l.startswith("VMDB-LINUX:")]
    kernel = [l for l in lines if not l.startswith("vmdb:")]
    vmdb = [l for l in lines if l.startswith("vmdb:") and "gdb server listening" not in l
            and "kernel command line:" not in l]
    far = init[-1] if init else kernel[-1] if kernel else "(no output on the serial console)"
    return far + (f"\n    {vmdb[-1]}" if vmdb and not passed else "")


class Boot:
    def __init__(self, name, args, logdir):
        self.name = name
        kernel, smp = name.split("-")
        self.kernel = os.path.join(LINUX, KERNELS[kernel])
        self.smp = int(smp)
        self.args = args
        self.log = os.path.join(logdir, f"{args.engine}-{name}.log")
        self.port = free_port()
        self.status = None
        self.seconds = 0.0
        self.where = ""
        self.reached = {}          # milestone -> seconds
        self.exit_status = None
        self.cpu_seconds = 0.0     # vmdb's user + system time: how much CPU it got

    def argv(self):
        return [self.args.vmdb, "--engine", self.args.engine, "--smp", str(self.smp),
                "--mem", "512M", "--gdb", f"tcp:127.0.0.1:{self.port}",
                "--initrd", self.args.initrd,
                "--cmdline", " ".join(w for w in (CMDLINE, self.args.cmdline,
                                                  f"vmdb.cpus={self.smp}") if w),
                self.kernel]

    def copy_serial(self, pipe, out, start):
        """Into the log, noting when each milestone first shows."""
        for raw in pipe:
            out.write(raw)
            out.flush()
            line = raw.decode("utf-8", "replace")
            for name, text in MILESTONES:
                if name not in self.reached and text in line:
                    self.reached[name] = time.monotonic() - start

    def reap(self, p):
        """Wait for vmdb, keeping its exit status and the CPU time it used."""
        _, status, usage = os.wait4(p.pid, 0)
        self.exit_status = os.waitstatus_to_exitcode(status)
        self.cpu_seconds = usage.ru_utime + usage.ru_stime

    def run(self):
        start = time.monotonic()
        with open(self.log, "wb") as out:
            p = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
            reader = threading.Thread(target=self.copy_serial, args=(p.stdout, out, start))
            reader.start()
            reaper = threading.Thread(target=self.reap, args=(p,))
            reaper.start()
            reaper.join(self.args.timeout)
            if reaper.is_alive():
                self.where = monitor(self.port, ["info vcpus", "info caps"])
                p.kill()
                reaper.join()
            else:
                self.status = self.exit_status
            reader.join()
        self.seconds = time.monotonic() - start
        with open(self.log, errors="replace") as f:
            self.serial = f.read()

    def passed(self):
        return self.status == 0 and "VMDB-LINUX: PASS" in self.serial

    def report(self):
        state = ("passed" if self.passed() else
                 f"TIMEOUT after {self.args.timeout:.0f} s" if self.status is None else
                 f"FAILED (exit status {self.status})")
        times = ", ".join(f"{name} at {self.reached[name]:.0f} s"
                          for name, _ in MILESTONES if name in self.reached)
        share = self.cpu_seconds / self.seconds if self.seconds else 0.0
        lines = [f"{self.args.engine} {self.name}: {state} in {self.seconds:.0f} s"
                 f"{' (' + times + ')' if times else ''}; vmdb had {self.cpu_seconds:.0f} s "
                 f"of CPU ({share:.2f} cores); "
                 f"got to: {progress(self.serial, self.passed())}"]
        if not self.passed():
            tail = [l for l in self.serial.splitlines() if l.strip()][-TAIL_LINES:]
            lines += ["    " + l for l in tail]
            lines += ["    " + l for l in self.where.splitlines()]
            lines.append(f"    log: {self.log}")
        return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--engine", default="kvm", choices=["kvm", "emu"])
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per boot")
    ap.add_argument("--jobs", type=int, default=1, help="boots at once")
    ap.add_argument("--boots", default=",".join(BOOTS), help="of " + ",".join(BOOTS))
    ap.add_argument("--vmdb", default=os.path.join(ROOT, "build", "vmdb"))
    ap.add_argument("--cmdline", default="", help="more kernel command line (e.g. noxsave)")
    ap.add_argument("--logdir", default=None, help="serial logs (default: a new temp dir)")
    ap.add_argument("--plain", action="store_true",
                    help="no shortcuts on a host that emulates guest ring 0")
    args = ap.parse_args()
    names = [b for b in args.boots.split(",") if b]
    unknown = [b for b in names if b not in BOOTS]
    if unknown:
        ap.error(f"unknown boot {unknown[0]!r}: choose from {', '.join(BOOTS)}")
    for f in [args.vmdb, os.path.join(LINUX, "initramfs.gz")] + \
             [os.path.join(LINUX, KERNELS[b.split('-')[0]]) for b in names]:
        if not os.path.exists(f):
            sys.exit(f"check-linux: {f} is missing (make all linux-assets)")
    logdir = args.logdir or tempfile.mkdtemp(prefix="vmdb-check-linux-")
    os.makedirs(logdir, exist_ok=True)
    args.initrd = os.path.join(LINUX, "initramfs.gz")
    if args.engine == "kvm" and not args.plain and ring0_emulated(args.vmdb):
        args.initrd = os.path.join(logdir, "initramfs.cpio")
        with gzip.open(os.path.join(LINUX, "initramfs.gz")) as src, \
             open(args.initrd, "wb") as dst:
            shutil.copyfileobj(src, dst)
        args.cmdline = " ".join(w for w in (args.cmdline, SLOW_HOST_CMDLINE) if w)
        print("check-linux: this host emulates guest ring 0: the initramfs goes uncompressed "
              f"and the kernel gets {SLOW_HOST_CMDLINE} (--plain: neither)", flush=True)
    boots = [Boot(n, args, logdir) for n in names]
    print(f"check-linux: {len(boots)} boots on {args.engine}, {args.jobs} at a time, "
          f"{args.timeout:.0f} s each at most; serial logs in {logdir}", flush=True)
    pending = list(boots)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                b = pending.pop(0)
            b.run()
            with lock:
                print(b.report(), flush=True)

    threads = [threading.Thread(target=worker) for _ in range(max(1, args.jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bad = [b.name for b in boots if not b.passed()]
    print(f"check-linux: {len(boots) - len(bad)}/{len(boots)} boots passed on {args.engine}"
          + (f"; failed: {', '.join(bad)}" if bad else ""))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
