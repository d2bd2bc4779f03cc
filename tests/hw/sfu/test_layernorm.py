# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.back import rtlil

from intar_hw import numerics
from intar_hw.hw.sfu.layernorm import LayerNorm, LayerNormParamsLayout
from intar_hw.numerics import INT4, INT8, INT16
from intar_hw.testbench import flow, get, put, run, seeded


def reference_layernorm(dut, x, weight=None, bias=None):
    weight = dut.weight if weight is None else weight
    bias = dut.bias if bias is None else bias
    return numerics.layernorm(x, np.array(weight), np.array(bias), dut.format, frac=dut.frac,
                              out_frac=dut.out_frac, weight_frac=dut.weight_frac, eps=dut.eps)


def to_beats(dut, x):
    x = np.asarray(x, dtype=np.int64)
    assert x.shape[1] == dut.row_length
    assert dut.format.lo <= x.min() and x.max() <= dut.format.hi
    lanes, beats = dut.lanes, dut.beats
    return [{"data": row[b * lanes:(b + 1) * lanes].tolist(), "last": int(b == beats - 1)}
            for row in x for b in range(beats)]


def layernorm_rtl(dut, x, *, seed, idle, backpressure, params=()):
    """Stream the rows of ``x`` through ``dut`` (after the ``params`` beats, if any)."""
    beats = to_beats(dut, x)
    received = []

    async def source(ctx):
        if params:
            await put(ctx, dut.params, params, rng=seeded(seed + 2), idle=idle)
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, len(beats), rng=seeded(seed + 1),
                                  backpressure=backpressure))
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, source, sink, deadline=50 * len(beats) + 20 * dut.latency + 200,
        vcd=f"layernorm_{dut.row_length}_{dut.lanes}.vcd")
    out = np.array([[p.data[n] for n in range(dut.lanes)] for p in received],
                   dtype=np.int64).reshape(x.shape)
    return out, [p.last for p in received]


def hard_rows(fmt, d, rng, count=7):
    """Random rows and the hard cases of numerics' own tests."""
    x = rng.integers(fmt.lo, fmt.hi + 1, (count, d))
    x[1] = 17                                           # constant: V = eps_int
    x[2] = np.where(np.arange(d) % 2, fmt.hi, fmt.lo)   # the largest variance
    x[3, :] = 0
    x[3, 0] = 1                                         # one outlier: |n| near sqrt(d - 1)
    x[4] = fmt.lo
    return x


def random_params(rng, d, weight_fmt):
    return (rng.integers(weight_fmt.lo, weight_fmt.hi + 1, d).tolist(),
            rng.integers(-2**20, 2**20, d).tolist())


@pytest.mark.parametrize("d, lanes, fmt, weight_fmt, eps, out_frac, weight_frac", [
    (8, 2, INT8, INT8, 1e-5, None, None),
    (7, 1, INT8, INT8, 0.0, None, None),         # constant rows give V = 0
    (6, 3, INT8, INT4, 0.0, 7, 2),
    (12, 4, INT16, INT8, 0.0, None, None),
    (16, 4, INT16, INT16, 1e-5, 15, 14),
    (64, 8, INT16, INT8, 1e-5, None, None),      # V above 2**32: the right-shift normalisation
])
def test_random_with_stalls(d, lanes, fmt, weight_fmt, eps, out_frac, weight_frac):
    seed = d * 10 + lanes + fmt.bits
    rng = np.random.default_rng(seed)
    weight, bias = random_params(rng, d, weight_fmt)
    dut = LayerNorm(d, lanes, weight=weight, bias=bias, format=fmt, eps=eps,
                    weight_format=weight_fmt, out_frac=out_frac, weight_frac=weight_frac)
    x = hard_rows(fmt, d, rng)
    out, lasts = layernorm_rtl(dut, x, seed=seed, idle=0.3, backpressure=0.5)
    np.testing.assert_array_equal(out, reference_layernorm(dut, x))
    assert lasts == [int(b == dut.beats - 1) for _ in range(len(x)) for b in range(dut.beats)]


@pytest.mark.parametrize("idle, backpressure", [(0.1, 0.7), (0.7, 0.1)])
def test_many_rows_through_the_ring(idle, backpressure):
    rng = np.random.default_rng(5)
    weight, bias = random_params(rng, 32, INT8)
    dut = LayerNorm(32, 4, weight=weight, bias=bias)
    x = rng.integers(-128, 128, (20, 32))
    out, _ = layernorm_rtl(dut, x, seed=5, idle=idle, backpressure=backpressure)
    np.testing.assert_array_equal(out, reference_layernorm(dut, x))


def test_load_parameters():
    rng = np.random.default_rng(11)
    d, lanes = 8, 2
    weight, bias = random_params(rng, d, INT8)
    dut = LayerNorm(d, lanes, weight=[0] * d, bias=[0] * d, loadable=True)
    assert dut.params.payload.shape() == LayerNormParamsLayout(4, 2, 8)
    params = [{"addr": b, "weight": weight[b * lanes:(b + 1) * lanes],
               "bias": bias[b * lanes:(b + 1) * lanes]} for b in range(d // lanes)]
    x = hard_rows(INT8, d, rng, count=5)
    out, _ = layernorm_rtl(dut, x, seed=11, idle=0.3, backpressure=0.3, params=params)
    np.testing.assert_array_equal(out, reference_layernorm(dut, x, weight, bias))


@pytest.mark.parametrize("d, lanes", [(8, 2), (40, 1), (72, 2), (36, 1)])
def test_throughput_formula(d, lanes):
    dut = LayerNorm(d, lanes, weight=[64] * d, bias=[0] * d)
    rows = 5
    x = np.random.default_rng(d).integers(-128, 128, (rows, d))
    taken, given = flow(dut, to_beats(dut, x), rows * dut.beats)
    assert given[-1] - taken[0] == dut.cycles(rows)
    assert given[0] - taken[dut.beats - 1] == dut.latency
    assert set(np.diff(given[::dut.beats]).tolist()) == {dut.row_period}


def test_converts_without_dividers():
    # isqrt and the reciprocal are sequential, not division operators.
    rtl = rtlil.convert(LayerNorm(8, 2, weight=[1] * 8, bias=[0] * 8, loadable=True))
    for cell in ("$div", "$mod", "$divfloor", "$modfloor"):
        assert cell not in rtl


def test_derived_values():
    dut = LayerNorm(768, 8, weight=[1] * 768, bias=[0] * 768, format="int16", eps=1e-5)
    assert (dut.beats, dut.row_period, dut.banks) == (96, 96, 3)
    assert dut.storage_bytes == 3 * 768 * 2
    assert dut.params_bytes == 768 * 5
    assert dut.shift == numerics.LN_FRAC + 6 - 12
    assert dut.eps_int == numerics.layernorm_eps(1e-5, 768, 12)
    short = LayerNorm(8, 2, weight=[1] * 8, bias=[0] * 8)
    assert (short.row_period, short.banks) == (36, 2)


# --- errors ---------------------------------------------------------------------------------------

def make(d=8, lanes=2, **kwargs):
    kwargs.setdefault("weight", [1] * d)
    kwargs.setdefault("bias", [0] * d)
    return LayerNorm(d, lanes, **kwargs)


def test_row_length_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm row_length must be an integer, not '8'$"):
        LayerNorm("8", 2, weight=[1] * 8, bias=[0] * 8)


def test_row_length_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm row_length must be a positive multiple of "
                                         r"lanes \(2\), not 7$"):
        make(7)


def test_row_length_limit_error():
    with pytest.raises(ValueError, match=r"^LayerNorm row_length must be at most 65536 for "
                                         r"int16, not 131072$"):
        LayerNorm(2**17, 2**17, weight=[0], bias=[0], format="int16")


def test_lanes_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm lanes must be an integer, not 2\.0$"):
        make(lanes=2.0)


def test_lanes_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm lanes must be a positive integer, not 0$"):
        make(lanes=0)


def test_weight_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm weight must be a sequence of integers, "
                                        r"not 3$"):
        make(weight=3)
    with pytest.raises(TypeError, match=r"^LayerNorm weight must be a sequence of integers, "
                                        r"not \[1\.5\]$"):
        make(weight=[1.5])


def test_weight_length_error():
    with pytest.raises(ValueError, match=r"^LayerNorm weight must hold 8 values, not 7$"):
        make(weight=[1] * 7)


def test_weight_range_error():
    with pytest.raises(ValueError, match=r"^LayerNorm weight value 3 must fit int8, not 128$"):
        make(weight=[0, 0, 0, 128, 0, 0, 0, 0])


def test_bias_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm bias must be a sequence of integers, "
                                        r"not 'abc'$"):
        make(bias="abc")


def test_bias_length_error():
    with pytest.raises(ValueError, match=r"^LayerNorm bias must hold 8 values, not 9$"):
        make(bias=[0] * 9)


def test_bias_range_error():
    with pytest.raises(ValueError, match=r"^LayerNorm bias value 0 must fit int32, "
                                         r"not 2147483648$"):
        make(bias=np.array([2**31] + [0] * 7))


def test_format_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm format must be a Format, a name like "
                                        r"'int8' or a width, not None$"):
        make(format=None)


def test_format_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm format must be int8 or int16, not 32$"):
        make(format=32)


def test_frac_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm frac must be an integer, not '4'$"):
        make(frac="4")


def test_frac_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm frac must be between 0 and 7, not -1$"):
        make(frac=-1)


def test_out_frac_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm out_frac must be an integer, not 4\.0$"):
        make(out_frac=4.0)


def test_out_frac_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm out_frac must be between 0 and 15, "
                                         r"not 16$"):
        make(format="int16", out_frac=16)


def test_eps_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm eps must be a number, not '1e-5'$"):
        make(eps="1e-5")


def test_eps_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm eps must be at least 0 and less than 1, "
                                         r"not 1$"):
        make(eps=1)


def test_weight_format_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm weight_format must be a Format, a name "
                                        r"like 'int8' or a width, not \[8\]$"):
        make(weight_format=[8])


def test_weight_format_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm weight_format must be int4, int8 or int16, "
                                         r"not 'int32'$"):
        make(weight_format="int32")


def test_weight_frac_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm weight_frac must be an integer, not True$"):
        make(weight_frac=True)


def test_weight_frac_value_error():
    with pytest.raises(ValueError, match=r"^LayerNorm weight_frac must be between 0 and 3, "
                                         r"not 4$"):
        make(weight_format=INT4, weight=[1] * 8, weight_frac=4)


def test_negative_shift_error():
    with pytest.raises(ValueError, match=r"^LayerNorm out_frac must be at most LN_FRAC \+ "
                                         r"weight_frac \(12\), not 15$"):
        make(format=INT16, weight_frac=0, out_frac=15)


def test_loadable_type_error():
    with pytest.raises(TypeError, match=r"^LayerNorm loadable must be a bool, not 'yes'$"):
        make(loadable="yes")
