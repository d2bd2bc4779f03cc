# amaranth: UnusedElaboratable=no
"""The storer packs the low bytes of result words into off-chip words."""

import random

import pytest
from amaranth import *
from amaranth.lib import data, wiring

from intar_hw.compose.loader import Segment
from intar_hw.compose.storer import Storer, StorerStage
from intar_hw.hw.offchip import OffchipPort, read_back
from intar_hw.hw.scratchpad import ReadPortSignature, Scratchpad
from intar_hw.testbench import run


SHAPES = {"left": data.ArrayLayout(signed(8), 4), "right": data.ArrayLayout(signed(16), 2)}


class Board(Elaboratable):
    def __init__(self, storer, memories, offchip):
        self.storer, self.memories, self.offchip = storer, memories, offchip

    def elaborate(self, platform):
        m = Module()
        m.submodules.storer, m.submodules.offchip = self.storer, self.offchip
        for name, memory in self.memories.items():
            m.submodules[name] = memory
            wiring.connect(m, getattr(self.storer, name), memory.read[0])
        wiring.connect(m, self.storer.write, self.offchip.write)
        return m


@pytest.mark.parametrize("bus_bytes, bandwidth", [(2, 2), (2, 1), (4, 4), (1, 1)])
def test_pack(bus_bytes, bandwidth):
    rng = random.Random(bus_bytes * 10 + bandwidth)
    words = {name: [[rng.randrange(-100, 100) for _ in range(shape.length)] for _ in range(6)]
             for name, shape in SHAPES.items()}
    raw = {name: [int(Const.cast(SHAPES[name].const(w)).value).to_bytes(4, "little")
                  for w in ws] for name, ws in words.items()}
    segments = (Segment(0, 1, 2, 3), Segment(1, 0, 1, 4), Segment(0, 5, 1, 4),
                Segment(1, 3, 2, 2))
    expected = b"".join(raw["left" if s.target == 0 else "right"][s.base + i][:s.nbytes]
                        for s in segments for i in range(s.count))
    total = -(-len(expected) // bus_bytes)
    stages = (StorerStage(1, 0, ()), StorerStage(1, total, segments))
    memories = {name: Scratchpad(shape, 8, init=words[name]) for name, shape in SHAPES.items()}
    offchip = OffchipPort(unsigned(8 * bus_bytes), total + 2, bandwidth=bandwidth, latency=2)
    sources = {name: ReadPortSignature(3, shape) for name, shape in SHAPES.items()}
    storer = Storer(sources, stages, bus_bytes=bus_bytes, addr_width=offchip.addr_width)
    result = {}

    async def bench(ctx):
        for stage in range(2):
            ctx.set(storer.stage, stage)
            ctx.set(storer.start, 1)
            await ctx.tick()
            ctx.set(storer.start, 0)
            cycles = 1
            while ctx.get(storer.busy):
                await ctx.tick()
                cycles += 1
            result[stage] = cycles
        result["words"] = read_back(ctx, offchip)

    run(Board(storer, memories, offchip), bench, deadline=500)
    got = b"".join(int(w).to_bytes(bus_bytes, "little") for w in result["words"])
    assert got[:bus_bytes] == bytes(bus_bytes)                   # before the stage's start
    assert got[bus_bytes:bus_bytes + len(expected)] == expected
    assert not any(got[bus_bytes + len(expected):])              # padding and beyond
    assert result[0] == 1                                        # nothing to write
    # At full bandwidth: one word per cycle after the first read, plus the idle cycle.
    if bandwidth == bus_bytes:
        assert result[1] <= total + 2 + len(segments) + 4
