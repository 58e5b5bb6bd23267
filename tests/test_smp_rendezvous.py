"""Two vCPUs meet as Linux makes them meet (guests/smp_rendezvous.c):
stop_machine()'s rendezvous, each CPU acking every state while it spins
with PAUSE and interrupts off, woken by an IPI as a stopper thread is;
then a function called on the other CPU and waited for, as
smp_call_function_single() does; both CPUs taking a 250 Hz APIC timer.
Every interrupt entry starts with Linux's ENDBR64 and CLAC (where CPUID has
SMAP): on kvm here each is a trip through vmdb's fallback while the other
vCPU spins in ring 0, the pattern of Linux's 2-vCPU boot around its
clocksource switch. Checked from inside: every wait ends in time, the
work ran once a round, every call was answered."""
import re


def test_stop_machine_and_calls(start_vmdb, guest):
    vm = start_vmdb(guest("smp_rendezvous"), "--smp", "2", "--mem", "64M",
                    "--cmdline", "rounds=100")
    status = vm.wait(timeout=120)
    serial = vm.serial_text()
    assert status == 1, f"status {status}\n{serial[-2000:]}"
    assert "FAIL" not in serial, serial
    assert re.search(r"^SUMMARY: 4 checks, 0 failed", serial, re.M), serial
