"""x87 arithmetic from inside a guest (guests/x87_calc.c) on every engine:
exact results, rounding and precision control, compares, FXAM, FPREM,
FSCALE, FXTRACT, FBSTP, transcendental identities, the stack overflow's
masked response, #MF at the next waiting instruction after an unmasked
divide by zero (CR0.NE), #NM under CR0.TS, and the state through
FNSTENV/FLDENV, FNSAVE/FRSTOR and FXSAVE/FXRSTOR. On emu the x87 is
emu_exec_x87.c; on kvm here the host's ring-0 emulator hands the x87
instructions to emu's core one at a time (engine/kvm/kvm_fallback.c)."""
from conftest import guest_checks_passed


def test_x87_calc(start_vmdb, guest):
    vm = start_vmdb(guest("x87_calc"))
    guest_checks_passed(vm, 50)
    assert "not implemented" not in vm.stderr_text(), vm.stderr_text()
