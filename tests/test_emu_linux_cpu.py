"""The CPU a Linux kernel and its userspace meet (guests/cpu_model.c): on
emu, every feature bit of CPUID is exercised from inside and nothing else
is advertised, the topology leaves follow --smp, the TSC frequency of
CPUID 0x15 matches the PIT, and the system features Linux relies on work:
SYSCALL/SYSRET with SWAPGS, global pages and PCID against CR3 writes,
INVLPG and INVPCID, NX, WP, SMEP, SMAP with STAC/CLAC/POPF, UMIP, RDPID,
the MSRs Linux reads (an unknown one #GP), the x2APIC TSC-deadline timer.
On kvm the guest checks the host's model the same way, without the
instruction checks (ring 0 is emulated by the host here) and the ring-3
ones (this host's emulator gets SYSRET's selectors wrong)."""
import re

import pytest

PASS = 1

# Lines that must be there on emu: each names a feature the model advertises.
EMU_MUST_PASS = [
    "emu advertises only exercised bits: leaf 1 ecx",
    "emu advertises only exercised bits: leaf 7 ebx",
    "TSC frequency of leaf 0x15 matches the PIT within 2%",
    "SYSCALL: RCX = the next instruction",
    "SYSRET to a non-canonical RIP: #GP in ring 0",
    "SWAPGS: ring 3 sees its GS base",
    "PGE: a CR3 write keeps a global page",
    "SERIALIZE runs",
    "PCID: CR3 bit 63 keeps the PCID's entries",
    "INVPCID 2 drops global pages",
    "INVLPG anywhere in a 2 MiB page drops it",
    "NX: fetch from an NX page: #PF P|I",
    "SMEP: ring-0 fetch from a user page: #PF P|I",
    "SMAP: #PF again after POPF clears AC",
    "UMIP: SGDT in ring 3: #GP",
    "RDPID in ring 3 = TSC_AUX",
    "unknown MSR: #GP",
    "TSC-deadline timer fires",
]


def run_model(start_vmdb, guest, cpus, cmdline=""):
    vm = start_vmdb(guest("cpu_model"), "--smp", str(cpus), "--mem", "64M",
                    "--cmdline", f"expect_cpus={cpus} {cmdline}".strip())
    status = vm.wait(120)
    serial, err = vm.serial_text(), vm.stderr_text()
    assert status == PASS, f"status {status}\nstderr: {err}\nserial: {serial[-4000:]}"
    assert "FAIL" not in serial, serial
    assert "not implemented" not in err, err
    m = re.search(r"SUMMARY: (\d+) checks, 0 failed", serial)
    assert m, serial
    return serial, int(m.group(1))


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_cpu_model_on_emu(start_vmdb, guest, engine, cpus):
    if engine != "emu":
        pytest.skip("emu's own CPU model")
    serial, checks = run_model(start_vmdb, guest, cpus)
    assert 'hypervisor "vmdbvmdbvmdb"' in serial, serial
    assert checks >= 140, serial
    for name in EMU_MUST_PASS:
        assert f"PASS: {name}\n" in serial, name


def test_cpu_model_on_kvm(start_vmdb, guest, engine):
    if engine != "kvm":
        pytest.skip("the host's CPU model through KVM")
    serial, checks = run_model(start_vmdb, guest, 2, "insns=0 ring3=0")
    assert checks >= 40, serial
    for name in ["CR3 write drops a non-global page",
                 "INVLPG anywhere in a 2 MiB page drops it", "unknown MSR: #GP"]:
        assert f"PASS: {name}\n" in serial, name
