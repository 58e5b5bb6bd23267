"""Loads, stores, read-modify-writes, pushes and pops that miss the TLB set
the accessed and dirty bits as the CPU does, and those that fault raise #PF
with the CPU's error code and CR2 and run once the entry is mended
(guests/tlb_fill.c). On emu they run in blocks, where a miss is filled by
the walk for the instruction's own handler; there also with every block
translated at once (VMDB_EMU_JIT=1)."""
import pytest

from conftest import guest_checks_passed


@pytest.mark.parametrize("jit", ["default", "1"])
def test_tlb_misses_as_the_cpu(start_vmdb, guest, engine, jit, monkeypatch):
    if jit != "default":
        if engine != "emu":
            pytest.skip("VMDB_EMU_JIT is emu's")
        monkeypatch.setenv("VMDB_EMU_JIT", jit)
    vm = start_vmdb(guest("tlb_fill"))
    guest_checks_passed(vm, 24)
