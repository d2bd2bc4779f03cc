# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import *

from intar_hw.hw.mac_array import MACArray, MACBeatLayout
from intar_hw.testbench import beats_per_cycle, flow, get, put, run, seeded


def reference_mac_array(reductions):
    """One ``(rows, cols)`` tile per reduction ``(a, b)``: ``a @ b.T`` in int64."""
    return [a.astype(np.int64) @ b.astype(np.int64).T for a, b in reductions]


def to_beats(dut, reductions):
    """Input payloads for reductions of `a` (rows, K) and `b` (cols, K), K in whole beats."""
    lo, hi = -(1 << (dut.operand_width - 1)), (1 << (dut.operand_width - 1)) - 1
    beats = []
    for a, b in reductions:
        assert a.shape[0] == dut.rows and b.shape[0] == dut.cols
        assert a.shape[1] == b.shape[1] and a.shape[1] % dut.depth == 0 and a.shape[1] > 0
        assert lo <= min(a.min(), b.min()) and max(a.max(), b.max()) <= hi
        count = a.shape[1] // dut.depth
        for n in range(count):
            window = slice(n * dut.depth, (n + 1) * dut.depth)
            beats.append({"a": a[:, window].tolist(), "b": b[:, window].tolist(),
                          "last": int(n == count - 1)})
    return beats


def to_tile(dut, payload):
    return np.array([[payload[r][c] for c in range(dut.cols)] for r in range(dut.rows)],
                    dtype=np.int64)


def mac_array_rtl(dut, reductions, *, seed, idle, backpressure):
    beats = to_beats(dut, reductions)
    tiles = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        payloads = await get(ctx, dut.o, len(reductions), rng=seeded(seed + 1),
                             backpressure=backpressure)
        tiles.extend(to_tile(dut, payload) for payload in payloads)
        # Nothing more may come out: no duplicated tiles.
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, source, sink, deadline=20 * len(beats) + 100,
        vcd=f"mac_array_{dut.rows}x{dut.cols}x{dut.depth}_w{dut.operand_width}.vcd")
    return tiles


def random_reductions(rng, rows, cols, depth, width, max_beats, count):
    """``count`` random reductions of 1 to ``max_beats`` beats, the last two of extreme values."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    reductions = []
    for _ in range(count):
        k = depth * int(rng.integers(1, max_beats + 1))
        reductions.append((rng.integers(lo, hi + 1, (rows, k)),
                           rng.integers(lo, hi + 1, (cols, k))))
    k = depth * max_beats
    reductions.append((np.full((rows, k), lo), np.full((cols, k), lo)))  # largest sum
    reductions.append((np.full((rows, k), lo), np.full((cols, k), hi)))  # smallest sum
    return reductions


@pytest.mark.parametrize("width", [4, 8, 16])
@pytest.mark.parametrize("rows,cols,depth", [(1, 1, 1), (2, 3, 1), (4, 4, 2), (3, 5, 3)])
def test_random_with_stalls(rows, cols, depth, width):
    seed = 1000 * rows + 100 * cols + 10 * depth + width
    max_beats = 6
    dut = MACArray(rows, cols, depth=depth, operand_width=width, max_reduction=depth * max_beats)
    reductions = random_reductions(np.random.default_rng(seed), rows, cols, depth, width,
                                   max_beats, count=40)
    tiles = mac_array_rtl(dut, reductions, seed=seed, idle=0.3, backpressure=0.5)
    expected = reference_mac_array(reductions)
    assert len(tiles) == len(expected)
    for tile, reference in zip(tiles, expected):
        np.testing.assert_array_equal(tile, reference)


@pytest.mark.parametrize("width", [4, 8, 16])
@pytest.mark.parametrize("max_reduction", [1, 3, 4, 7])
def test_extremes_at_max_reduction(width, max_reduction):
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    dut = MACArray(2, 2, operand_width=width, max_reduction=max_reduction)
    # The width is exactly enough: the largest sum needs every bit, one fewer would overflow.
    largest = max_reduction * lo * lo
    assert largest < 1 << (dut.accumulator_width - 1)
    assert largest >= 1 << (dut.accumulator_width - 2)
    k = max_reduction
    reductions = [
        (np.full((2, k), lo), np.full((2, k), lo)),
        (np.full((2, k), lo), np.full((2, k), hi)),
        (np.array([[lo] * k, [hi] * k]), np.array([[lo] * k, [hi] * k])),
    ]
    tiles = mac_array_rtl(dut, reductions, seed=width + k, idle=0.2, backpressure=0.3)
    for tile, reference in zip(tiles, reference_mac_array(reductions)):
        np.testing.assert_array_equal(tile, reference)


def test_max_reduction_rounds_up_to_whole_beats():
    dut = MACArray(1, 1, depth=4, operand_width=8, max_reduction=5)
    assert dut.accumulator_width == MACArray(1, 1, operand_width=8, max_reduction=8)\
        .accumulator_width
    lo = -128
    reductions = [(np.full((1, 8), lo), np.full((1, 8), lo))]
    tiles = mac_array_rtl(dut, reductions, seed=5, idle=0.0, backpressure=0.0)
    np.testing.assert_array_equal(tiles[0], [[8 * lo * lo]])


def test_accumulator_width():
    assert MACArray(1, 1, operand_width=8, max_reduction=1).accumulator_width == 16
    assert MACArray(1, 1, operand_width=8, max_reduction=3).accumulator_width == 17
    assert MACArray(1, 1, operand_width=8, max_reduction=4).accumulator_width == 18
    assert MACArray(1, 1, operand_width=16, max_reduction=1024).accumulator_width == 42
    assert MACArray(1, 1, operand_width=4, depth=2, max_reduction=7).accumulator_width == 11


def test_layouts():
    dut = MACArray(2, 3, depth=4, operand_width=16, max_reduction=64)
    beat = dut.i.payload.shape()
    assert isinstance(beat, MACBeatLayout)
    assert beat == MACBeatLayout(2, 3, 4, 16)
    assert (beat.rows, beat.cols, beat.depth, beat.width) == (2, 3, 4, 16)
    assert repr(beat) == "MACBeatLayout(2, 3, 4, 16)"
    assert beat["a"].shape.length == 2 and beat["a"].shape.elem_shape.length == 4
    assert beat["b"].shape.length == 3
    assert beat["a"].shape.elem_shape.elem_shape == signed(16)
    assert Shape.cast(beat["last"].shape) == unsigned(1)
    tile = dut.o.payload.shape()
    assert tile.length == 2 and tile.elem_shape.length == 3
    assert tile.elem_shape.elem_shape == signed(dut.accumulator_width)


@pytest.mark.parametrize("length", [1, 16])
def test_throughput(length):
    dut = MACArray(4, 4, max_reduction=length)
    beat = {"a": [[1]] * 4, "b": [[1]] * 4}
    beats = [dict(beat, last=int(n % length == length - 1)) for n in range(64)]
    taken, given = flow(dut, beats, 64 // length)
    assert len(taken) == 64 and beats_per_cycle(taken) == 1.0
    assert len(given) == 64 // length
    if length == 1:
        assert beats_per_cycle(given) == 1.0


def test_latency():
    dut = MACArray(1, 1, max_reduction=1)
    taken, given = flow(dut, [{"a": [[3]], "b": [[-5]], "last": 1}], 1)
    assert given[0] - taken[0] == MACArray.latency == dut.latency == 3


@pytest.mark.parametrize("length", [1, 16])
def test_backpressure_stalls_input_only_at_last(length):
    dut = MACArray(1, 1, max_reduction=length)
    values = list(range(1, 4 * length + 1))
    beats = [{"a": [[value]], "b": [[1]], "last": int(n % length == length - 1)}
             for n, value in enumerate(values)]

    async def source(ctx):
        await put(ctx, dut.i, beats)

    async def sink(ctx):
        ctx.set(dut.o.ready, 0)
        taken = 0
        for _ in range(4 * length + 20):
            _, _, valid, ready = await ctx.tick().sample(dut.i.valid, dut.i.ready)
            taken += valid and ready
        # Two tiles wait in the result registers while the next reduction accumulates; its last
        # beat stalls in the pipeline, with one more beat behind it.
        assert taken == 3 * length + 1 and not ready
        received = await get(ctx, dut.o, 4)
        assert [payload[0][0] for payload in received] == \
            [sum(values[n * length:(n + 1) * length]) for n in range(4)]

    run(dut, source, sink, deadline=10 * length + 100)


def test_ready_is_a_function_of_registers():
    """The sink's ready does not reach the pipeline: with both result registers full, the input
    stalls whatever ``o.ready`` says in that cycle (the tile taken frees a register for the next
    cycle)."""
    dut = MACArray(1, 1, max_reduction=1)
    beats = [{"a": [[n + 1]], "b": [[1]], "last": 1} for n in range(6)]

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        for beat in beats[:4]:
            ctx.set(dut.i.payload, beat)
            await ctx.tick()
        # Tiles 1 and 2 wait; tile 3 is at the accumulators, tile 4 on the input.
        assert not ctx.get(dut.i.ready)
        ctx.set(dut.o.ready, 1)
        assert not ctx.get(dut.i.ready)
        assert ctx.get(dut.o.payload)[0][0] == 1

    run(dut, bench, deadline=50)


def test_parameters_are_read_only():
    dut = MACArray(2, 3, depth=2, operand_width=4, max_reduction=10)
    assert (dut.rows, dut.cols, dut.depth, dut.operand_width, dut.max_reduction) == \
        (2, 3, 2, 4, 10)
    with pytest.raises(AttributeError):
        dut.accumulator_width = 32


VALID = {"rows": 2, "cols": 2, "depth": 1, "operand_width": 8, "max_reduction": 4}


def make(**changes):
    kwargs = dict(VALID, **changes)
    return MACArray(kwargs.pop("rows"), kwargs.pop("cols"), **kwargs)


@pytest.mark.parametrize("name,value,message", [
    ("rows", 2.0, r"^MACArray rows must be an integer, not 2\.0$"),
    ("cols", "3", r"^MACArray cols must be an integer, not '3'$"),
    ("depth", True, r"^MACArray depth must be an integer, not True$"),
    ("operand_width", 8.0, r"^MACArray operand_width must be an integer, not 8\.0$"),
    ("max_reduction", None, r"^MACArray max_reduction must be an integer, not None$"),
])
def test_type_error(name, value, message):
    with pytest.raises(TypeError, match=message):
        make(**{name: value})


@pytest.mark.parametrize("name,value,message", [
    ("rows", 0, r"^MACArray rows must be a positive integer, not 0$"),
    ("cols", -1, r"^MACArray cols must be a positive integer, not -1$"),
    ("depth", 0, r"^MACArray depth must be a positive integer, not 0$"),
    ("operand_width", 12, r"^MACArray operand_width must be 4, 8 or 16, not 12$"),
    ("max_reduction", 0, r"^MACArray max_reduction must be a positive integer, not 0$"),
])
def test_value_error(name, value, message):
    with pytest.raises(ValueError, match=message):
        make(**{name: value})


def test_max_reduction_is_required():
    with pytest.raises(TypeError, match=r"max_reduction"):
        MACArray(2, 2)


@pytest.mark.parametrize("args,error,message", [
    ((1.5, 2, 1, 8), TypeError, r"^MACBeatLayout rows must be an integer, not 1\.5$"),
    ((1, 0, 1, 8), ValueError, r"^MACBeatLayout cols must be a positive integer, not 0$"),
    ((1, 2, -2, 8), ValueError, r"^MACBeatLayout depth must be a positive integer, not -2$"),
    ((1, 2, 1, "8"), TypeError, r"^MACBeatLayout width must be an integer, not '8'$"),
    ((1, 2, 1, 32), ValueError, r"^MACBeatLayout width must be 4, 8 or 16, not 32$"),
])
def test_beat_layout_errors(args, error, message):
    with pytest.raises(error, match=message):
        MACBeatLayout(*args)


@pytest.mark.parametrize("live", [(2, 3, 2), (1, 5, 1), (3, 2, 3)])
def test_live_elements_only(live):
    """Elements and operand pairs outside ``live`` are not built: their sums are zero, the
    others exact, under stalls."""
    rows, cols, depth = 3, 5, 3
    seed = sum(live)
    dut = MACArray(rows, cols, depth=depth, max_reduction=4 * depth, live=live)
    assert dut.multipliers == live[0] * live[1] * live[2]
    reductions = random_reductions(np.random.default_rng(seed), rows, cols, depth, 8, 4, 12)
    tiles = mac_array_rtl(dut, reductions, seed=seed, idle=0.3, backpressure=0.5)
    for tile, (a, b) in zip(tiles, reductions):
        keep = np.arange(a.shape[1]) % depth < live[2]
        expected = np.zeros((rows, cols), dtype=np.int64)
        expected[:live[0], :live[1]] = (a[:live[0], keep].astype(np.int64)
                                        @ b[:live[1], keep].astype(np.int64).T)
        np.testing.assert_array_equal(tile, expected)


@pytest.mark.parametrize("live,error,message", [
    ([1, 1, 1], TypeError, r"^MACArray live must be a tuple of 3 integers, not \[1, 1, 1\]$"),
    ((1, 1), TypeError, r"^MACArray live must be a tuple of 3 integers, not \(1, 1\)$"),
    ((3, 1, 1), ValueError, r"^MACArray live must lie within \(1, 1, 1\) and \(2, 2, 1\), "
                            r"not \(3, 1, 1\)$"),
    ((0, 1, 1), ValueError, r"^MACArray live must lie within \(1, 1, 1\) and \(2, 2, 1\), "
                            r"not \(0, 1, 1\)$"),
])
def test_live_errors(live, error, message):
    with pytest.raises(error, match=message):
        MACArray(2, 2, max_reduction=4, live=live)
