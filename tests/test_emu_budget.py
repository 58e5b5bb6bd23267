"""Interrupts that land between two instructions of a straight run of
arithmetic see the flags the first one left (guests/timer_flags.c). On emu
a timer deadline is an instruction count that ends the run inside a block
of the fast path, whose first instructions then run as a block of their own
with the flags a later instruction sets again computed all the same; there
every point of the loop is interrupted at (all=1), with the handler chain
and with every block translated at once (VMDB_EMU_JIT=1)."""
from conftest import guest_checks_passed


def test_interrupts_inside_blocks_see_exact_flags(start_vmdb, guest, engine, emu_jit):
    # on kvm each of the timer's interrupts is an exit of the host: fewer passes
    args = ("--cmdline", "all=1" if engine == "emu" else "loops=10000")
    vm = start_vmdb(guest("timer_flags"), *args)
    guest_checks_passed(vm, 10 if engine == "emu" else 5)
