# amaranth: UnusedElaboratable=no
"""The exported Verilog of the elementwise SFUs, bit-exact with :mod:`intar_hw.numerics`."""

import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.hw.sfu.elementwise import Activation, Add, Mul, Requantize
from intar_hw.numerics import INT8, INT16, Format
from vectors import run_stream_phase, vector_beats


def random_values(rng, fmt, size):
    """Random values of ``fmt``, then its extremes, 0 and -1."""
    values = rng.integers(fmt.lo, fmt.hi + 1, size, dtype=np.int64)
    return np.concatenate([values, [fmt.lo, fmt.hi, 0, -1]]).astype(np.int64)


def pad(values, lanes):
    return np.concatenate([values, np.zeros(-len(values) % lanes, dtype=np.int64)])


def lasts_for(rng, values, lanes):
    return rng.integers(0, 2, len(values) // lanes).tolist()


# --- Requantize -----------------------------------------------------------------------------------

@pytest.mark.parametrize("in_bits,shift,out_bits,bias_bits,relu,lanes", [
    (20, 8, 8, None, False, 4),
    (20, 0, 8, None, False, 2),      # shift 0 only clamps
    (19, 7, 8, 32, True, 3),
    (34, 12, 16, 32, False, 2),      # wider than 32 bits on both sides of the sum
    (32, 40, 8, 32, False, 2),       # a shift beyond the accumulator
    (16, 4, 4, 12, True, 1),
])
def test_requantize(tmp_path, in_bits, shift, out_bits, bias_bits, relu, lanes):
    seed = in_bits * 100 + shift
    rng = np.random.default_rng(seed)
    in_fmt, out_fmt = Format(in_bits), Format(out_bits)
    dut = Requantize(lanes, in_format=in_fmt, shift=shift, out_format=out_fmt,
                     bias_format=bias_bits, relu=relu)
    # Random accumulators, then the rounding points k * 2**s + 2**(s-1) and one less.
    near = []
    if shift:
        steps = rng.integers(-300, 300, 20)
        near = (steps << shift) + (1 << (shift - 1)) - rng.integers(0, 2, 20)
    acc = pad(np.clip(np.concatenate([random_values(rng, in_fmt, 60), near]),
                      in_fmt.lo, in_fmt.hi), lanes)
    lasts = lasts_for(rng, acc, lanes)
    inputs = {"i": vector_beats(dut.i.payload.shape(), acc, lasts)}
    total = acc
    if bias_bits is not None:
        bias_fmt = Format(bias_bits)
        bias = rng.integers(-(1 << (shift + 8)), 1 << (shift + 8), len(acc))
        bias[:4] = [bias_fmt.lo, bias_fmt.hi, bias_fmt.lo, bias_fmt.hi]
        bias = np.clip(bias, bias_fmt.lo, bias_fmt.hi)
        # The bias stream's last bits are ignored: make them disagree with i's.
        inputs["bias"] = vector_beats(dut.bias.payload.shape(), bias, [1 - x for x in lasts])
        total = acc + bias
    want = numerics.requantize(total, shift, out_fmt).astype(np.int64)
    if relu:
        want = np.maximum(want, 0)
    run_stream_phase(dut, "requantize", tmp_path, inputs,
                     {"o": vector_beats(dut.o.payload.shape(), want, lasts)}, seed=seed)


# --- Activation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("function,frac,approximate", [
    ("gelu", None, "none"), ("gelu", 0, "none"), ("gelu", 4, "tanh"), ("silu", None, "none"),
    ("silu", 2, "none"), ("relu", None, "none"),
])
def test_activation_int8_all_inputs(tmp_path, function, frac, approximate):
    seed = len(function) * 10 + (frac or 0) + (approximate == "tanh")
    rng = np.random.default_rng(seed)
    lanes = 4
    x = rng.permutation(np.arange(-128, 128, dtype=np.int64))
    lasts = lasts_for(rng, x, lanes)
    dut = Activation(lanes, function, frac=frac, approximate=approximate)
    if function == "relu":
        want = np.maximum(x, 0)
    elif function == "gelu":
        want = numerics.gelu(x, INT8, dut.frac, approximate)
    else:
        want = numerics.silu(x, INT8, dut.frac)
    layout = dut.o.payload.shape()
    run_stream_phase(dut, "activation", tmp_path, {"i": vector_beats(layout, x, lasts)},
                     {"o": vector_beats(layout, np.asarray(want, dtype=np.int64), lasts)},
                     seed=seed)


@pytest.mark.parametrize("function", ["gelu", "silu"])
def test_activation_int16(tmp_path, function):
    # Breakpoints and their neighbours (the interpolation's ends), then random inputs.
    seed = 16 + len(function)
    rng = np.random.default_rng(seed)
    lanes = 4
    top = rng.choice(np.arange(-128, 128, dtype=np.int64), 24, replace=False) << 8
    x = np.concatenate([top, top + 1, top + 128, top + 255, top - 1,
                        random_values(rng, INT16, 40)])
    x = pad(rng.permutation(np.clip(x, INT16.lo, INT16.hi)), lanes)
    lasts = lasts_for(rng, x, lanes)
    dut = Activation(lanes, function, format="int16")
    fn = numerics.gelu if function == "gelu" else numerics.silu
    want = np.asarray(fn(x, INT16, dut.frac), dtype=np.int64)
    layout = dut.o.payload.shape()
    run_stream_phase(dut, "activation", tmp_path, {"i": vector_beats(layout, x, lasts)},
                     {"o": vector_beats(layout, want, lasts)}, seed=seed)


# --- Add and Mul ----------------------------------------------------------------------------------

def binary_inputs(rng, dut, count):
    a_fmt, b_fmt = dut.a_format, dut.b_format
    a = pad(np.concatenate([random_values(rng, a_fmt, count), [a_fmt.lo, a_fmt.hi] * 2]),
            dut.lanes)
    b = pad(np.concatenate([random_values(rng, b_fmt, count),
                            [b_fmt.hi, b_fmt.lo, b_fmt.lo, b_fmt.hi]]), dut.lanes)
    return a, b


@pytest.mark.parametrize("a_bits,b_bits,out_bits,lanes", [(8, 8, 8, 4), (16, 8, 8, 3)])
def test_add(tmp_path, a_bits, b_bits, out_bits, lanes):
    seed = a_bits * 10 + b_bits
    rng = np.random.default_rng(seed)
    dut = Add(lanes, a_format=a_bits, b_format=b_bits, out_format=out_bits)
    a, b = binary_inputs(rng, dut, 80)
    lasts = lasts_for(rng, a, lanes)
    want = numerics.requantize(a + b, 0, Format(out_bits)).astype(np.int64)
    run_stream_phase(dut, "add", tmp_path,
                     {"a": vector_beats(dut.a.payload.shape(), a, lasts),
                      "b": vector_beats(dut.b.payload.shape(), b, [1 - x for x in lasts])},
                     {"o": vector_beats(dut.o.payload.shape(), want, lasts)}, seed=seed)


@pytest.mark.parametrize("a_bits,b_bits,shift,out_bits,lanes", [
    (8, 8, 7, 8, 4),
    (16, 16, 30, 8, 1),
    (16, 8, 12, 16, 3),
])
def test_mul(tmp_path, a_bits, b_bits, shift, out_bits, lanes):
    seed = a_bits * 100 + b_bits + shift
    rng = np.random.default_rng(seed)
    dut = Mul(lanes, a_format=a_bits, b_format=b_bits, shift=shift, out_format=out_bits)
    a, b = binary_inputs(rng, dut, 80)
    lasts = lasts_for(rng, a, lanes)
    want = numerics.requantize(a * b, shift, Format(out_bits)).astype(np.int64)
    run_stream_phase(dut, "mul", tmp_path,
                     {"a": vector_beats(dut.a.payload.shape(), a, lasts),
                      "b": vector_beats(dut.b.payload.shape(), b, [1 - x for x in lasts])},
                     {"o": vector_beats(dut.o.payload.shape(), want, lasts)}, seed=seed)
