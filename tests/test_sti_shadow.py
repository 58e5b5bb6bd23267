"""An interrupt pending when STI sets IF comes after the instruction in
STI's shadow, never before it nor later (guests/sti_shadow.c): a self-IPI
pending at STI followed by an ALU instruction, a NOP, a store, a RET and a
JMP, then a timer that lands on every instruction of a loop with a CLI ...
STI stretch (all=1 on emu, where timer deadlines are instruction counts and
a block cut short by one must not end between STI and its shadow). On emu
with the handler chain and with every block translated at once
(VMDB_EMU_JIT=1)."""
from conftest import guest_checks_passed


def test_interrupt_after_sti_shadow(start_vmdb, guest, engine, emu_jit):
    # on kvm vmdb injects an interrupt at its next exit, not when STI opens
    # the window: the timer part only, with fewer passes
    args = ("--cmdline", "all=1" if engine == "emu" else "pending=0 loops=5000")
    vm = start_vmdb(guest("sti_shadow"), *args)
    guest_checks_passed(vm, 17 if engine == "emu" else 1)
