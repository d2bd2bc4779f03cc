# amaranth: UnusedElaboratable=no
import pytest
from amaranth import *
from amaranth.lib import data

from intar_hw.hw.queue import Queue
from intar_hw.testbench import beats_per_cycle, flow, get, put, run, seeded


class Beat(data.Struct):
    value: signed(12)
    flags: 3
    last: 1


def reference_queue(beats):
    return list(beats)


def queue_rtl(shape, depth, beats, *, seed, idle, backpressure):
    dut = Queue(shape, depth)
    received = []
    max_level = 0

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(beats), rng=seeded(seed + 1),
                                  backpressure=backpressure))

    async def monitor(ctx):
        nonlocal max_level
        async for _, _, level in ctx.tick().sample(dut.level):
            max_level = max(max_level, level)

    run(dut, source, sink, processes=[monitor], deadline=50 * len(beats) + 100,
        vcd=f"queue_{depth}.vcd")
    return received, max_level


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 16])
def test_plain_shape_with_stalls(depth):
    rng = seeded(depth)
    beats = [rng.randrange(-128, 128) for _ in range(200)]
    received, max_level = queue_rtl(signed(8), depth, beats, seed=depth, idle=0.3,
                                    backpressure=0.5)
    assert received == reference_queue(beats)
    assert 1 <= max_level <= depth


def test_layout_shape_with_stalls():
    rng = seeded(7)
    beats = [{"value": rng.randrange(-2048, 2048), "flags": rng.randrange(8),
              "last": rng.randrange(2)} for _ in range(150)]
    received, _ = queue_rtl(Beat, 4, beats, seed=7, idle=0.4, backpressure=0.4)
    assert [{"value": b.value, "flags": b.flags, "last": b.last} for b in received] == beats


def test_fills_to_depth_under_full_backpressure():
    dut = Queue(8, 5)
    levels = []

    async def testbench(ctx):
        for n in range(7):
            ctx.set(dut.i.payload, n)
            ctx.set(dut.i.valid, 1)
            await ctx.tick()
            levels.append(ctx.get(dut.level))
        assert ctx.get(dut.i.ready) == 0

    run(dut, testbench, deadline=20)
    assert levels[-1] == 5


def throughput(depth, beats=64):
    taken, given = flow(Queue(8, depth), [n % 256 for n in range(beats)], beats)
    return beats_per_cycle(given)


@pytest.mark.parametrize("depth,expected", [(1, 0.5), (2, 0.5), (3, 1.0), (4, 1.0)])
def test_throughput(depth, expected):
    assert throughput(depth) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_latency(depth):
    dut = Queue(8, depth)
    taken, given = flow(dut, [5], 1)
    assert given[0] - taken[0] == dut.latency


def test_shape_type_error():
    with pytest.raises(TypeError, match=r"^Queue shape must be a shape-castable object, not 'x'$"):
        Queue("x", 4)


def test_depth_type_error():
    with pytest.raises(TypeError, match=r"^Queue depth must be an integer, not 2\.5$"):
        Queue(8, 2.5)


def test_depth_value_error():
    with pytest.raises(ValueError, match=r"^Queue depth must be at least 1, not 0$"):
        Queue(8, 0)
