import math

import numpy as np
import pytest

from intar_hw import numerics as nm
from intar_hw.numerics import INT4, INT8, INT16, INT32, Format


# --- formats --------------------------------------------------------------------------------------

def test_format_ranges_and_bytes():
    assert (INT4.lo, INT4.hi, INT8.lo, INT8.hi) == (-8, 7, -128, 127)
    assert (INT16.lo, INT16.hi, INT32.hi) == (-32768, 32767, 2**31 - 1)
    assert [f.name for f in (INT4, INT8, INT16, INT32)] == ["int4", "int8", "int16", "int32"]
    assert INT4.nbytes(5) == 3 and INT8.nbytes(5) == 5 and INT16.nbytes(5) == 10
    assert INT4.dtype == np.int8 and INT16.dtype == np.int16 and Format(33).dtype == np.int64
    assert nm.as_format("int16") is not None and nm.as_format("int16") == INT16
    assert nm.as_format(8) == INT8 and nm.as_format(INT4) is INT4


def test_format_errors():
    with pytest.raises(ValueError, match=r"^Format width must be between 2 and 64 bits, not 1$"):
        Format(1)
    with pytest.raises(TypeError, match=r"^Format width must be an integer, not 8\.0$"):
        Format(8.0)
    with pytest.raises(ValueError, match=r"^Format must be a name like 'int8', not 'uint8'$"):
        nm.as_format("uint8")
    with pytest.raises(TypeError, match=r"^Format must be a Format or a name like 'int8', "
                                        r"not None$"):
        nm.as_format(None)


# --- requantisation -------------------------------------------------------------------------------

def requantize_scalar(acc, shift, lo, hi):
    # The rule, written out with exact rational arithmetic: floor(acc / 2^s + 1/2), clamped.
    value = math.floor(acc / 2**shift + 0.5) if shift else acc
    return min(max(value, lo), hi)


@pytest.mark.parametrize("shift", [0, 1, 2, 7, 8, 13])
def test_requantize_matches_rule(shift):
    rng = np.random.default_rng(shift)
    acc = rng.integers(-2**20, 2**20, 2000)
    acc = np.concatenate([acc, np.arange(-600, 600)])
    got = nm.requantize(acc, shift, INT8)
    assert got.dtype == np.int8
    want = [requantize_scalar(int(a), shift, -128, 127) for a in acc]
    np.testing.assert_array_equal(got, want)
    assert [nm.requantize(int(a), shift, INT8) for a in acc[:50]] == want[:50]


def test_requantize_rounds_half_up_arithmetically():
    acc = np.array([-3, -2, -1, 1, 2, 3, 5, -5, 382, -386])
    np.testing.assert_array_equal(nm.requantize(acc, 1, INT8), [-1, -1, 0, 1, 1, 2, 3, -2, 127,
                                                                -128])
    np.testing.assert_array_equal(nm.requantize(np.array([300, -300, 5]), 0, INT8),
                                  [127, -128, 5])


@pytest.mark.parametrize("a, b, k, bias", [(INT8, INT8, 256, False), (INT8, INT8, 256, True),
                                           (INT16, INT16, 1024, True), (INT4, INT8, 3, False)])
def test_accumulator_holds_extremes(a, b, k, bias):
    acc = nm.accumulator_format(a, b, k, INT32 if bias else None)
    largest = k * a.lo * b.lo + (INT32.hi if bias else 0)
    smallest = k * a.lo * b.hi + (INT32.lo if bias else 0)
    assert acc.lo <= smallest and largest <= acc.hi
    narrower = Format(acc.bits - 1)
    assert largest > narrower.hi  # and one bit less would not do


# --- integer helpers ------------------------------------------------------------------------------

def test_isqrt_and_reciprocal_exact():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(0, 2**62, 3000), np.arange(0, 300),
                             np.array([2**62 - 1, (2**31 - 1)**2, (2**31 - 1)**2 - 1])])
    np.testing.assert_array_equal(nm.isqrt(values), [math.isqrt(int(v)) for v in values])
    q = rng.integers(1, 2**16, 500)
    np.testing.assert_array_equal(nm.reciprocal(q, 31), [(1 << 31) // int(v) for v in q])


def test_bit_length_exact():
    values = np.array([0, 1, 2, 3, 4, 2**31 - 1, 2**31, 2**40 + 1, 2**61, 2**62 - 1])
    np.testing.assert_array_equal(nm._bit_length(values), [int(v).bit_length() for v in values])


# --- tables ---------------------------------------------------------------------------------------

def test_exp_tables_follow_formula():
    assert nm.EXP_TABLES.shape == nm.EXP_HI_TABLES.shape == (16, 256)
    assert not nm.EXP_TABLES.flags.writeable and not nm.EXP_HI_TABLES.flags.writeable
    assert (nm.EXP_TABLES[:, 0] == 32768).all() and (nm.EXP_HI_TABLES[:, 0] == 32768).all()
    for f in range(16):
        for k in (0, 1, 17, 255):
            assert nm.exp_table(f)[k] == round(32768 * math.exp(-k / 2**f))
            assert nm.EXP_HI_TABLES[f][k] == round(32768 * math.exp(-256 * k / 2**f))
        assert (np.diff(nm.exp_table(f)) <= 0).all()


def test_exp_neg_two_tables():
    k = np.arange(0, 65536)
    for f in (0, 4, 7, 12, 15):
        e = nm.exp_neg(k, f)
        np.testing.assert_array_equal(e[:256], nm.exp_table(f))  # int8 range: low table only
        exact = 32768 * np.exp(-k / 2**f)
        assert np.abs(e - exact).max() < 1.5  # two rounded 16-bit factors, one rounded product


@pytest.mark.parametrize("name", ["gelu", "silu"])
@pytest.mark.parametrize("frac", [0, 4, 7])
def test_int8_activation_is_the_rounded_function(name, frac):
    x = np.arange(-128, 128)
    exact = {"gelu": nm.gelu_float, "silu": nm.silu_float}[name](x / 2**frac) * 2**frac
    got = getattr(nm, name)(x, INT8, frac)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, np.clip(np.round(exact), -128, 127))


@pytest.mark.parametrize("frac, bound", [(8, 20.0), (12, 2.5), (15, 1.5)])
def test_int16_activation_interpolates(frac, bound):
    table = nm.gelu_table(16, frac)
    x = np.array([-32768, -32767, -300, -256, -1, 0, 1, 255, 256, 1000, 32767])
    got = nm.gelu(x, INT16, frac)
    want = []
    for v in x.tolist():
        i, r = (v >> 8) + 128, v & 255
        t0, t1 = int(table[i]), int(table[i + 1])
        want.append(t0 + (((t1 - t0) * r + 128) >> 8))
    np.testing.assert_array_equal(got, want)
    # Interpolation error against the exact function over every int16 input, in LSBs: 256
    # segments over the whole range, so coarse scales (frac 8: segments 1.0 wide) bend most.
    xs = np.arange(-32768, 32768)
    for fn, exact in ((nm.gelu, nm.gelu_float), (nm.silu, nm.silu_float)):
        err = np.abs(fn(xs, INT16, frac) - np.clip(exact(xs / 2**frac) * 2**frac, -32768, 32767))
        assert err.max() < bound


# --- softmax --------------------------------------------------------------------------------------

def softmax_row_python(row, bits, frac, masked=()):
    """The documented algorithm, one row, Python integers only."""
    hi = (1 << (bits - 1)) - 1
    m = max(v for j, v in enumerate(row) if j not in masked)
    exps = []
    for j, v in enumerate(row):
        k = m - v
        e_hi = round(32768 * math.exp(-256 * (k >> 8) / 2**frac))
        e_lo = round(32768 * math.exp(-(k & 255) / 2**frac))
        exps.append(0 if j in masked else (e_hi * e_lo + (1 << 14)) >> 15)
    total = sum(exps)
    r_bits = 15 + (bits - 1) + 8
    r = (1 << r_bits) // total
    shift = r_bits - (bits - 1)
    return [min(max((e * r + (1 << (shift - 1))) >> shift, 0), hi) for e in exps]


@pytest.mark.parametrize("fmt, frac", [(INT8, 4), (INT8, 7), (INT8, 0), (INT16, 12),
                                       (INT16, 3)])
def test_softmax_matches_documented_algorithm(fmt, frac):
    rng = np.random.default_rng(frac)
    x = rng.integers(fmt.lo, fmt.hi + 1, (6, 37))
    x[0] = fmt.lo
    x[1, :] = 3
    got = nm.softmax(x, fmt, frac)
    assert got.dtype == fmt.dtype
    for row, out in zip(x.tolist(), got.tolist()):
        assert out == softmax_row_python(row, fmt.bits, frac)
    scale = 1 << (fmt.bits - 1)
    assert (np.abs(got.sum(axis=-1) - scale) <= 37).all()


def test_softmax_causal_masks_the_future():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (2, 5, 5))
    got = nm.softmax(x, INT8, 4, causal=True)
    for h in range(2):
        for i in range(5):
            assert (got[h, i, i + 1:] == 0).all()
            assert got[h, i].tolist() == softmax_row_python(x[h, i].tolist(), 8, 4,
                                                            masked=range(i + 1, 5))
    assert got[0, 0, 0] == 127  # a certain event saturates at hi


def test_softmax_constants():
    assert nm.softmax_constants(INT8) == {"out_frac": 7, "recip_bits": 30, "out_shift": 23}
    assert nm.softmax_constants(INT16) == {"out_frac": 15, "recip_bits": 38, "out_shift": 23}


# --- layer normalisation --------------------------------------------------------------------------

def layernorm_row_python(row, weight, bias, *, frac, out_frac, weight_frac, eps, lo, hi):
    """The documented algorithm, one row, Python integers only."""
    d = len(row)
    s = sum(row)
    c = [d * v - s for v in row]
    v = d * sum(x * x for x in row) - s * s + round(eps * d * d * 2 ** (2 * frac))
    if v == 0:
        n = [0] * d
    else:
        e = 2 * ((32 - v.bit_length()) // 2)
        w = v << e if e >= 0 else v >> -e
        q = math.isqrt(w)
        r = (1 << 31) // q
        shift = 31 - 12 - e // 2
        n = [(cj * r + (1 << (shift - 1))) >> shift for cj in c]
    shift = 12 + weight_frac - out_frac
    return [min(max((nj * wj + bj + (1 << (shift - 1))) >> shift, lo), hi)
            for nj, wj, bj in zip(n, weight, bias)]


@pytest.mark.parametrize("fmt, d, eps", [(INT8, 64, 1e-5), (INT8, 7, 0.0), (INT16, 1024, 1e-5),
                                         (INT16, 33, 0.0)])
def test_layernorm_matches_documented_algorithm(fmt, d, eps):
    rng = np.random.default_rng(d)
    x = rng.integers(fmt.lo, fmt.hi + 1, (5, d))
    x[1] = 17  # a constant row
    x[2] = np.where(np.arange(d) % 2, fmt.hi, fmt.lo)
    x[3, :] = 0
    x[3, 0] = 1
    weight = rng.integers(32, 96, d)
    bias = rng.integers(-2**16, 2**16, d)
    frac, out_frac = fmt.bits - 4, fmt.bits - 4
    got = nm.layernorm(x, weight, bias, fmt, frac=frac, out_frac=out_frac, weight_frac=6,
                       eps=eps)
    assert got.dtype == fmt.dtype
    for row, out in zip(x.tolist(), got.tolist()):
        assert out == layernorm_row_python(row, weight.tolist(), bias.tolist(), frac=frac,
                                           out_frac=out_frac, weight_frac=6, eps=eps,
                                           lo=fmt.lo, hi=fmt.hi)


def test_layernorm_limits():
    assert nm.layernorm_max_length(INT8) == 2**24
    assert nm.layernorm_max_length(INT16) == 2**16
    assert nm.layernorm_eps(1e-5, 1024, 4) == round(1e-5 * 2**20 * 2**8)
