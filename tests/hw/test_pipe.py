# amaranth: UnusedElaboratable=no
"""The stream registers pass every beat in order, one cycle late, at full rate; the register slice
also registers ready and gives the sink the same beats in the same cycles."""

import random

import pytest
from amaranth import *

from intar_hw.hw.pipe import ForwardRegister, RegisterSlice
from intar_hw.testbench import beats_per_cycle, flow, get, put, run, seeded


@pytest.mark.parametrize("kind", [ForwardRegister, RegisterSlice])
@pytest.mark.parametrize("idle, backpressure", [(0.0, 0.0), (0.4, 0.0), (0.0, 0.5), (0.3, 0.3)])
def test_passes_every_beat_in_order(kind, idle, backpressure):
    beats = [random.Random(idle + backpressure).randrange(1 << 12) for _ in range(200)]
    dut = kind(unsigned(12))
    received = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(1), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(beats), rng=seeded(2),
                                  backpressure=backpressure))

    run(dut, source, sink, deadline=20 * len(beats))
    assert [int(b) for b in received] == beats


@pytest.mark.parametrize("kind", [ForwardRegister, RegisterSlice])
def test_one_beat_a_cycle_one_cycle_late(kind):
    dut = kind(unsigned(8))
    taken, given = flow(dut, list(range(50)), 50)
    assert beats_per_cycle(taken) == beats_per_cycle(given) == 1
    assert given[0] - taken[0] == dut.latency == 1


def _arrivals(kind, backpressure, count=300):
    """The cycle each beat reaches a sink stalling at random, from a source always ready."""
    dut = kind(unsigned(10))
    arrivals = []

    async def source(ctx):
        await put(ctx, dut.i, list(range(count)))

    async def sink(ctx):
        rng = seeded(7)
        cycle = 0
        while len(arrivals) < count:
            ready = rng.random() >= backpressure
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if ready and valid:
                assert payload == len(arrivals)
                arrivals.append(cycle)
            cycle += 1

    run(dut, source, sink, deadline=10 * count)
    return arrivals


@pytest.mark.parametrize("backpressure", [0.2, 0.5, 0.8])
def test_slice_gives_the_sink_what_the_forward_register_does(backpressure):
    assert _arrivals(RegisterSlice, backpressure) == _arrivals(ForwardRegister, backpressure)


def test_slice_ready_is_a_register():
    # A sink that stops taking beats does not move i.ready in the same cycle.
    dut = RegisterSlice(unsigned(8))
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 1)
        for cycle in range(6):
            ctx.set(dut.o.ready, cycle < 2)
            seen.append((ctx.get(dut.i.ready), cycle))
            await ctx.tick()

    run(dut, bench, deadline=20)
    # Beat 0 passes in cycle 1; from cycle 2 the sink refuses beat 1, and beat 2, offered in that
    # cycle, is still taken (into the spare): ready falls only the cycle after.
    assert [ready for ready, _ in seen] == [1, 1, 1, 0, 0, 0]
