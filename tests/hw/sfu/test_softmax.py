# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.back import rtlil

from intar_hw import numerics
from intar_hw.hw.sfu.softmax import Softmax
from intar_hw.numerics import INT8, INT16
from intar_hw.testbench import flow, get, put, run, seeded


def reference_softmax(x, fmt, frac, causal=False, rows=None):
    """numerics.softmax of ``(count, row_length)`` rows; causal rows form ``rows``-row matrices."""
    if causal:
        return numerics.softmax(x.reshape(-1, rows, x.shape[-1]), fmt, frac, True) \
            .reshape(x.shape)
    return numerics.softmax(x, fmt, frac)


def to_beats(dut, x):
    x = np.asarray(x, dtype=np.int64)
    assert x.shape[1] == dut.row_length
    assert dut.format.lo <= x.min() and x.max() <= dut.format.hi
    lanes, beats = dut.lanes, dut.beats
    return [{"data": row[b * lanes:(b + 1) * lanes].tolist(), "last": int(b == beats - 1)}
            for row in x for b in range(beats)]


def softmax_rtl(dut, x, *, seed, idle, backpressure):
    """Stream the rows of ``x`` through ``dut``; return the output rows and ``last`` bits."""
    beats = to_beats(dut, x)
    received = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(beats), rng=seeded(seed + 1),
                                  backpressure=backpressure))
        # Nothing more may come out.
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, source, sink, deadline=50 * len(beats) + 20 * dut.latency + 200,
        vcd=f"softmax_{dut.row_length}_{dut.lanes}.vcd")
    out = np.array([[p.data[n] for n in range(dut.lanes)] for p in received],
                   dtype=np.int64).reshape(x.shape)
    return out, [p.last for p in received]


def hard_rows(fmt, row_length, rng):
    """Random rows and the hard cases: equal maxima, all equal, extremes."""
    x = rng.integers(fmt.lo, fmt.hi + 1, (7, row_length))
    x[1] = fmt.lo                                               # all equal, at the minimum
    x[2] = 3                                                    # all equal
    x[3, ::2] = fmt.hi                                          # several maxima
    x[4] = np.where(np.arange(row_length) % 3, fmt.lo, fmt.hi)  # extremes: k = 2**bits - 1
    x[5, :] = fmt.lo
    x[5, -1] = fmt.hi                                           # one certain event
    return x



@pytest.mark.parametrize("row_length, lanes, fmt, frac", [
    (8, 2, INT8, 4), (12, 3, INT8, 7), (5, 1, INT8, 0), (6, 2, INT16, 12), (4, 4, INT16, 3),
])
def test_random_with_stalls(row_length, lanes, fmt, frac):
    seed = row_length * 10 + lanes + fmt.bits
    dut = Softmax(row_length, lanes, format=fmt, frac=frac)
    x = hard_rows(fmt, row_length, np.random.default_rng(seed))
    out, lasts = softmax_rtl(dut, x, seed=seed, idle=0.3, backpressure=0.5)
    np.testing.assert_array_equal(out, reference_softmax(x, fmt, frac))
    assert lasts == [int(b == dut.beats - 1) for _ in range(len(x)) for b in range(dut.beats)]


@pytest.mark.parametrize("fmt, idle, backpressure", [(INT8, 0.1, 0.7), (INT16, 0.7, 0.1)])
def test_many_rows_through_the_ring(fmt, idle, backpressure):
    # Heavy backpressure fills every bank; a slow source starves the stages in turn.
    dut = Softmax(32, 4, format=fmt)
    x = np.random.default_rng(fmt.bits).integers(fmt.lo, fmt.hi + 1, (24, 32))
    out, _ = softmax_rtl(dut, x, seed=fmt.bits, idle=idle, backpressure=backpressure)
    np.testing.assert_array_equal(out, reference_softmax(x, fmt, dut.frac))


@pytest.mark.parametrize("row_length, lanes, rows", [(4, 2, 4), (6, 3, 3), (3, 1, 5)])
def test_causal(row_length, lanes, rows):
    seed = row_length + 7 * rows
    dut = Softmax(row_length, lanes, format="int8", causal=True, rows=rows)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2 * rows, row_length))  # two matrices back to back
    x[1] = 127                                            # masked entries above the maximum
    out, _ = softmax_rtl(dut, x, seed=seed, idle=0.2, backpressure=0.3)
    want = reference_softmax(x, INT8, dut.frac, True, rows)
    np.testing.assert_array_equal(out, want)
    assert out[0, 0] == 127 and (out[0, 1:] == 0).all()


def test_default_frac():
    assert Softmax(4).frac == 4 and Softmax(4, format="int16").frac == 12


@pytest.mark.parametrize("row_length, lanes, fmt", [
    (8, 2, INT8),      # divider-bound: a row every 17 cycles
    (40, 1, INT8),     # input-bound: one beat per cycle
    (34, 2, INT8),
    (26, 1, INT16),    # divider-bound at 25 cycles
    (60, 2, INT16),
])
def test_throughput_formula(row_length, lanes, fmt):
    dut = Softmax(row_length, lanes, format=fmt)
    rows = 6
    x = np.random.default_rng(row_length).integers(fmt.lo, fmt.hi + 1, (rows, row_length))
    taken, given = flow(dut, to_beats(dut, x), rows * dut.beats)
    assert given[-1] - taken[0] == dut.cycles(rows)
    assert given[0] - taken[dut.beats - 1] == dut.latency
    starts = given[::dut.beats]
    assert set(np.diff(starts).tolist()) == {dut.row_period}
    # Each row's beats leave back to back.
    assert all(given[r * dut.beats + dut.beats - 1] - given[r * dut.beats] == dut.beats - 1
               for r in range(rows))


def test_converts_without_dividers():
    # The reciprocal is a sequential restoring divider, not a division operator.
    rtl = rtlil.convert(Softmax(6, 3, format="int16", causal=True, rows=6))
    for cell in ("$div", "$mod", "$divfloor", "$modfloor"):
        assert cell not in rtl


def test_derived_sizes():
    dut = Softmax(64, 4)
    assert (dut.beats, dut.divider_cycles, dut.exp_latency) == (16, 17, 2)
    assert dut.row_period == 17
    assert dut.banks == -(-(3 * 16 + 2 + 16 + 2) // 17) == 4
    assert dut.storage_bytes == 4 * 64
    wide = Softmax(1024, 8, format="int16")
    assert (wide.divider_cycles, wide.exp_latency, wide.row_period, wide.banks) == (25, 3, 128, 4)
    assert wide.storage_bytes == 4 * 1024 * 2
    assert dut.latency == 16 + 2 * 2 + 16 + 5


# --- errors ---------------------------------------------------------------------------------------

def test_row_length_type_error():
    with pytest.raises(TypeError, match=r"^Softmax row_length must be an integer, not 8\.0$"):
        Softmax(8.0)


def test_row_length_value_error():
    with pytest.raises(ValueError, match=r"^Softmax row_length must be a positive multiple of "
                                         r"lanes \(4\), not 6$"):
        Softmax(6, 4)


def test_lanes_type_error():
    with pytest.raises(TypeError, match=r"^Softmax lanes must be an integer, not '2'$"):
        Softmax(8, "2")


def test_lanes_value_error():
    with pytest.raises(ValueError, match=r"^Softmax lanes must be a positive integer, not 0$"):
        Softmax(8, 0)


def test_format_type_error():
    with pytest.raises(TypeError, match=r"^Softmax format must be a Format, a name like 'int8' "
                                        r"or a width, not 8\.0$"):
        Softmax(8, format=8.0)


def test_format_value_error():
    with pytest.raises(ValueError, match=r"^Softmax format must be int8 or int16, not 'int4'$"):
        Softmax(8, format="int4")
    with pytest.raises(ValueError, match=r"^Softmax format must be a format of 2 to 64 bits, "
                                         r"not 'uint8'$"):
        Softmax(8, format="uint8")


def test_frac_type_error():
    with pytest.raises(TypeError, match=r"^Softmax frac must be an integer, not 4\.0$"):
        Softmax(8, frac=4.0)


def test_frac_value_error():
    with pytest.raises(ValueError, match=r"^Softmax frac must be between 0 and 7, not 8$"):
        Softmax(8, frac=8)


def test_causal_type_error():
    with pytest.raises(TypeError, match=r"^Softmax causal must be a bool, not 1$"):
        Softmax(8, causal=1)


def test_rows_missing_error():
    with pytest.raises(ValueError, match=r"^Softmax rows must be given for a causal softmax$"):
        Softmax(8, causal=True)


def test_rows_not_causal_error():
    with pytest.raises(ValueError, match=r"^Softmax rows must be None unless causal, not 8$"):
        Softmax(8, rows=8)


def test_rows_type_error():
    with pytest.raises(TypeError, match=r"^Softmax rows must be an integer, not '8'$"):
        Softmax(8, causal=True, rows="8")


def test_rows_value_error():
    with pytest.raises(ValueError, match=r"^Softmax rows must be a positive integer, not 0$"):
        Softmax(8, causal=True, rows=0)
