"""Loads, stores, read-modify-writes, pushes and pops that miss the TLB set
the accessed and dirty bits as the CPU does, and those that fault raise #PF
with the CPU's error code and CR2 and run once the entry is mended
(guests/tlb_fill.c). On emu they run in blocks, where a miss is filled by
the walk for the instruction's own handler; there also with every block
translated at once (VMDB_EMU_JIT=1)."""
from conftest import guest_checks_passed


def test_tlb_misses_as_the_cpu(start_vmdb, guest, engine, emu_jit):
    vm = start_vmdb(guest("tlb_fill"))
    guest_checks_passed(vm, 24)
