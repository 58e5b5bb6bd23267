"""The MMX registers from inside a guest (guests/mmx_alias.c) on every
engine: MMi as the mantissa of physical x87 register Ri with sign and
exponent set to ones by a write, TOP 0 and every tag valid after any MMX
instruction (FNSAVE's full tag word and FXSAVE's abridged one), EMMS, an
x87 load of an MMX value, #NM (CR0.TS), #UD (CR0.EM) and #MF (a pending
unmasked x87 exception). On emu the MMX forms are emu_exec_mmx.c; on kvm
here the host's ring-0 emulator hands what it cannot run to emu's core.
The values of every MMX instruction against the CPU are
tests/test_differential.py's MMX runs."""
import re

PASS = 1


def test_mmx_alias(start_vmdb, guest):
    vm = start_vmdb(guest("mmx_alias"))
    status = vm.wait(60)
    serial = vm.serial_text()
    m = re.search(r"SUMMARY: (\d+) checks, (\d+) failed", serial)
    assert status == PASS and m and m.group(2) == "0" and int(m.group(1)) >= 20, \
        f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
    assert "not implemented" not in vm.stderr_text(), vm.stderr_text()
