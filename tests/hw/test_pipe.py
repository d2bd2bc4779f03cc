# amaranth: UnusedElaboratable=no
"""The forward register passes every beat in order, one cycle late, at full rate."""

import random

import pytest
from amaranth import *

from intar_hw.hw.pipe import ForwardRegister
from intar_hw.testbench import beats_per_cycle, flow, get, put, run, seeded


@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
def test_passes_every_beat_in_order(idle, backpressure):
    beats = [random.Random(idle + backpressure).randrange(1 << 12) for _ in range(200)]
    dut = ForwardRegister(unsigned(12))
    received = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(1), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(beats), rng=seeded(2),
                                  backpressure=backpressure))

    run(dut, source, sink, deadline=20 * len(beats))
    assert [int(b) for b in received] == beats


def test_one_beat_a_cycle_one_cycle_late():
    dut = ForwardRegister(unsigned(8))
    taken, given = flow(dut, list(range(50)), 50)
    assert beats_per_cycle(taken) == beats_per_cycle(given) == 1
    assert given[0] - taken[0] == dut.latency == 1
