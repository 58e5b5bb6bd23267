"""The MMX registers from inside a guest (guests/mmx_alias.c) on every
engine: MMi as the mantissa of physical x87 register Ri with sign and
exponent set to ones by a write, TOP 0 and every tag valid after any MMX
instruction (FNSAVE's full tag word and FXSAVE's abridged one), EMMS, an
x87 load of an MMX value, #NM (CR0.TS), #UD (CR0.EM) and #MF (a pending
unmasked x87 exception). On emu the MMX forms are emu_exec_mmx.c; on kvm
here the host's ring-0 emulator hands what it cannot run to emu's core.
The values of every MMX instruction against the CPU are
tests/test_differential.py's MMX runs."""
from conftest import guest_checks_passed


def test_mmx_alias(start_vmdb, guest):
    vm = start_vmdb(guest("mmx_alias"))
    guest_checks_passed(vm, 20)
    assert "not implemented" not in vm.stderr_text(), vm.stderr_text()
