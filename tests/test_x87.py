"""x87 arithmetic from inside a guest (guests/x87_calc.c) on every engine:
exact results, rounding and precision control, compares, FXAM, FPREM,
FSCALE, FXTRACT, FBSTP, transcendental identities, the stack overflow's
masked response, #MF at the next waiting instruction after an unmasked
divide by zero (CR0.NE), #NM under CR0.TS, and the state through
FNSTENV/FLDENV, FNSAVE/FRSTOR and FXSAVE/FXRSTOR. On emu the x87 is
emu_exec_x87.c; on kvm here the host's ring-0 emulator hands the x87
instructions to emu's core one at a time (engine/kvm/kvm_fallback.c)."""
import re

PASS = 1


def test_x87_calc(start_vmdb, guest):
    vm = start_vmdb(guest("x87_calc"))
    status = vm.wait(60)
    serial = vm.serial_text()
    m = re.search(r"SUMMARY: (\d+) checks, (\d+) failed", serial)
    assert status == PASS and m and m.group(2) == "0" and int(m.group(1)) >= 50, \
        f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
    assert "not implemented" not in vm.stderr_text(), vm.stderr_text()
