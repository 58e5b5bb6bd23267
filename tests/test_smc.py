"""Self-modifying code is seen on every engine (guests/smc.c): stores into
code that already ran, by plain instructions that on emu stay on its fast
path (another block of the page, the next instruction of the running block,
the loop's own head, instructions across a page boundary, a page taken
for data between) and by
exact-path instructions (XCHG, REP MOVSB). The
guest checks what the patched code returns; on emu both the ELF64 entry
(64-bit blocks) and the multiboot one run it."""
import pytest

PASS = 1


@pytest.mark.parametrize("variant", ["smc", "mb/smc"])
def test_self_modifying_code(start_vmdb, guest, variant):
    vm = start_vmdb(guest(variant))
    status = vm.wait(60)
    serial = vm.serial_text()
    assert status == PASS and "SUMMARY: 15 checks, 0 failed" in serial, \
        f"status {status}\nserial:\n{serial[-3000:]}\nstderr:\n{vm.stderr_text()}"
