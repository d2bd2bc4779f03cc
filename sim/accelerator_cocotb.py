"""A cocotb run of a whole accelerator's Verilog with its off-chip memory model.

The design (``intar_hw.flow.verilator``'s top: the accelerator wired to an
:class:`~intar_hw.hw.offchip.OffchipPort` holding the inputs and parameters) has only ``start``,
``busy`` and ``done``. The pytest side (``sim/test_accelerator_verilog.py``) passes, as JSON,
``words`` (the off-chip memory's depth) and ``limit`` (a cycle bound). This test resets the
design, raises ``start`` for one cycle, counts cycles until ``done`` (the start cycle is cycle
0), clocks once more so the last write-back lands, and writes ``result.json``: the cycles and
every off-chip word, read from the memory model's ``storage`` array.
"""

import json

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from cocotb_streams import parameters, reset, sample


@cocotb.test()
async def run_accelerator(dut):
    params = parameters()
    dut.start.value = 0
    await reset(dut)
    dut.start.value = 1
    await RisingEdge(dut.clk)
    dut.start.value = 0
    cycles = 1
    while True:
        await ReadOnly()
        if sample(dut.done):
            break
        assert sample(dut.busy) == 1, f"busy low in cycle {cycles}"
        assert cycles < params["limit"], f"not done after {cycles} cycles"
        await RisingEdge(dut.clk)
        cycles += 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    await ReadOnly()
    storage = dut.board.offchip.storage
    words = [int(storage[a].value) for a in range(params["words"])]
    with open("result.json", "w") as f:
        json.dump({"cycles": cycles, "words": words}, f)
