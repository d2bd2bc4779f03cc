# amaranth: UnusedElaboratable=no
"""The loader unpacks an off-chip byte stream into memory words, whatever the stalls."""

import random

import pytest
from amaranth import *
from amaranth.lib import data, stream, wiring

from intar_hw.compose.loader import Loader, LoaderStage, Segment, Staging, staging
from intar_hw.hw.offchip import OffchipPort
from intar_hw.hw.scratchpad import WriteRequest
from intar_hw.testbench import get, run, seeded


TARGETS = {
    "narrow": stream.Signature(WriteRequest(4, data.ArrayLayout(signed(8), 3))),
    "wide": stream.Signature(WriteRequest(5, data.ArrayLayout(signed(32), 2))),
}


class Board(Elaboratable):
    def __init__(self, loader, memory):
        self.loader, self.memory = loader, memory

    def elaborate(self, platform):
        m = Module()
        m.submodules.loader, m.submodules.memory = self.loader, self.memory
        wiring.connect(m, self.loader.read_req, self.memory.read_req)
        wiring.connect(m, self.memory.read_data, self.loader.read_data)
        return m


def expected_words(stages, data_bytes, bus_bytes):
    """``{target: [(addr, bytes)]}`` of every write, from a plain walk of the byte stream."""
    names = list(TARGETS)
    out = {name: [] for name in names}
    for st in stages:
        pos = st.start * bus_bytes
        for seg in st.segments:
            for i in range(seg.count):
                out[names[seg.target]].append((seg.base + i, data_bytes[pos:pos + seg.nbytes]))
                pos += seg.nbytes
    return out


@pytest.mark.parametrize("bus_bytes, bandwidth, backpressure", [
    (2, 2, 0.0), (2, 1.5, 0.3), (4, 4, 0.5), (1, 1, 0.2)])
def test_unpack(bus_bytes, bandwidth, backpressure):
    # A stage reading nothing, a stage filling both memories in turns, a stage of one word
    # spanning two bus words.
    words = -(-(3 * 2 + 5 + 8 + 2 * 3 + 2) // bus_bytes)
    stages = (
        LoaderStage(0, 0, ()),
        LoaderStage(0, words, (
            Segment(0, 0, 3, 2), Segment(1, 0, 1, 5), Segment(1, 1, 1, 8), Segment(0, 3, 2, 3),
            Segment(0, 5, 1, 2))),
        LoaderStage(words, 2, (Segment(1, 2, 1, 2 * bus_bytes - 1),)),
    )
    total = sum(st.words for st in stages)
    rng = random.Random(bus_bytes)
    data_bytes = bytes(rng.randrange(256) for _ in range(total * bus_bytes))
    image = [int.from_bytes(data_bytes[i:i + bus_bytes], "little")
             for i in range(0, len(data_bytes), bus_bytes)]
    memory = OffchipPort(unsigned(8 * bus_bytes), total, bandwidth=bandwidth, latency=3,
                         max_burst=4, init=image)
    loader = Loader(TARGETS, stages, bus_bytes=bus_bytes, addr_width=memory.addr_width,
                    count_width=memory.count_width, max_burst=4)
    expected = expected_words(stages, data_bytes, bus_bytes)
    got, levels = {}, []

    async def control(ctx):
        for s in range(len(stages)):
            ctx.set(loader.stage, s)
            ctx.set(loader.start, 1)
            await ctx.tick()
            ctx.set(loader.start, 0)
            await ctx.tick().until(~loader.busy)
            levels.append((ctx.get(loader.narrow_level), ctx.get(loader.wide_level)))

    def drain(name, seed):
        async def bench(ctx):
            port = getattr(loader, name)
            beats = await get(ctx, port, len(expected[name]), rng=seeded(seed),
                              backpressure=backpressure)
            got[name] = beats
        return bench

    run(Board(loader, memory), control, drain("narrow", 1), drain("wide", 2), deadline=2000)
    # Levels: one past the highest address written, after each stage.
    assert levels == [(0, 0), (6, 2), (6, 3)]
    for name, shape in (("narrow", 24), ("wide", 64)):
        writes = [(int(b.addr), int(b.data.as_value().value).to_bytes(shape // 8, "little"))
                  for b in got[name]]
        assert [a for a, _ in writes] == [a for a, _ in expected[name]]
        for (_, word), (_, want) in zip(writes, expected[name]):
            assert word[:len(want)] == want and not any(word[len(want):])


def test_staging_covers_the_backlog():
    # One-byte words behind a four-byte bus pile up three a cycle: the ring keeps the bus
    # words from the oldest unwritten one (16 words written in cycles 1-16, 4 bus words).
    stage = LoaderStage(0, 4, (Segment(0, 0, 16, 1),))
    assert staging((stage,), 4) == Staging(slots=0, groups=0, ring=4)
    # Two words of four bus words each: the second begins in the cycle the first is written
    # (the count of free slots is a register), so two slots.
    assert staging((LoaderStage(0, 8, (Segment(0, 0, 2, 16),)),), 4) == Staging(2, 4, 0)
    # A 5-byte word straddling bus words 0-2 of 2 bytes, then one starting in bus word 2.
    assert staging((LoaderStage(0, 5, (Segment(0, 0, 2, 5),)),), 2).groups == 3


@pytest.mark.parametrize("backpressure", [0.0, 0.5])
def test_broadcast(backpressure):
    """A segment with ``also`` writes every word to each of its targets, once, at one address,
    whatever the targets' stalls; the bytes are read off-chip once."""
    bus_bytes = 2
    stages = (LoaderStage(0, 4, (Segment(0, 1, 3, 2, also=(1,)), Segment(1, 4, 1, 2))),)
    rng = random.Random(7)
    data_bytes = bytes(rng.randrange(256) for _ in range(4 * bus_bytes))
    image = [int.from_bytes(data_bytes[i:i + bus_bytes], "little")
             for i in range(0, len(data_bytes), bus_bytes)]
    memory = OffchipPort(unsigned(8 * bus_bytes), 4, bandwidth=2, latency=3, max_burst=4,
                         init=image)
    loader = Loader(TARGETS, stages, bus_bytes=bus_bytes, addr_width=memory.addr_width,
                    count_width=memory.count_width, max_burst=4)
    words = [data_bytes[i:i + 2] for i in range(0, 8, 2)]
    expected = {"narrow": list(zip((1, 2, 3), words[:3])),
                "wide": list(zip((1, 2, 3, 4), words))}
    got, levels = {}, []

    async def control(ctx):
        ctx.set(loader.start, 1)
        await ctx.tick()
        ctx.set(loader.start, 0)
        await ctx.tick().until(~loader.busy)
        levels.append((ctx.get(loader.narrow_level), ctx.get(loader.wide_level)))

    def drain(name, seed):
        async def bench(ctx):
            got[name] = await get(ctx, getattr(loader, name), len(expected[name]),
                                  rng=seeded(seed), backpressure=backpressure)
        return bench

    run(Board(loader, memory), control, drain("narrow", 3), drain("wide", 4), deadline=500)
    assert levels == [(4, 5)]
    for name, width in (("narrow", 3), ("wide", 8)):
        writes = [(int(b.addr), int(b.data.as_value().value).to_bytes(width, "little"))
                  for b in got[name]]
        assert [(a, w[:2]) for a, w in writes] == expected[name]
        assert not any(any(w[2:]) for _, w in writes)
