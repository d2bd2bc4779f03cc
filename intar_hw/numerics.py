"""Integer formats, requantisation and the integer algorithms of the special-function units.

Everything here is plain Python and numpy: the golden model (:mod:`intar_hw.golden`) calls these
functions, and the SFU hardware must reproduce them bit for bit. Every algorithm is integer-only;
the lookup tables are numpy arrays computed once, at import, from the formulas documented next to
them.

Conventions
-----------
Fixed point
    An integer ``x`` of a tensor "with ``frac`` fractional bits" represents the real number
    ``x * 2**-frac``. Linear operators (linear, matmul, convolutions, add, mul, requant) do not need
    to know the scale: a shift ``s`` means "divide by ``2**s``". Only the nonlinear operators
    (GELU, SiLU, softmax, layer normalisation) depend on it, so they take ``frac`` as a parameter;
    its default is ``bits - 4`` (Q3.4 for int8, Q3.12 for int16: the range [-8, 8)).
Requantisation (:func:`requantize`)
    For a shift ``s > 0``: ``y = clamp((acc + (1 << (s - 1))) >> s, lo, hi)`` with an arithmetic
    shift (round half up); for ``s = 0``: ``y = clamp(acc, lo, hi)``. One rule everywhere.
Accumulators (:func:`accumulator_format`)
    Wide enough that no reduction, bias included, can overflow.
Bytes
    ``Format.nbytes(n) = ceil(n * bits / 8)``: int4 packs two values per byte, wider formats take
    ``bits / 8`` bytes per value.

Nonlinear operators (inputs int8 or int16)
    GELU, SiLU (:func:`gelu`, :func:`silu`)
        Input and output share format and ``frac``. A 257-entry table per (bits, frac) holds the
        rounded function at every 256th input; int8 looks up directly (the result is the
        correctly rounded function), int16 interpolates linearly with the low byte.
    Softmax (:func:`softmax`)
        Input with ``frac`` fractional bits; output probabilities in the same format with
        ``bits - 1`` fractional bits (int8: ``p * 128``, saturating at 127). Row max, two
        256-entry ``exp`` tables (high and low byte of ``max - x``), integer sum, one integer
        reciprocal per row, one multiply per element.
    LayerNorm (:func:`layernorm`)
        Exact integer mean and variance (``d * x - sum``, ``d * sum(x^2) - sum^2``), a 16-bit
        integer square root after an even normalising shift, one integer reciprocal per row,
        then gamma (``weight_frac`` fractional bits) and beta (accumulator units) and the
        requantisation rule into ``out_frac`` fractional bits.
    Table entries are rounded half to even (Python's :func:`round`, :func:`numpy.round`); the
    hardware takes the tables from these arrays, never recomputes them.
"""

import math
import re
from dataclasses import dataclass

import numpy as np


__all__ = [
    "Format", "INT4", "INT8", "INT16", "INT32", "as_format",
    "requantize", "round_shift", "accumulator_format", "default_frac",
    "isqrt", "reciprocal",
    "EXP_FRAC", "EXP_TABLES", "EXP_HI_TABLES", "exp_table", "exp_neg",
    "GELU_TABLES", "GELU_TANH_TABLES", "SILU_TABLES", "gelu_table", "silu_table", "lut_activation",
    "gelu", "silu", "softmax", "softmax_constants",
    "LN_FRAC", "layernorm", "layernorm_eps", "layernorm_max_length",
    "gelu_float", "silu_float",
]


@dataclass(frozen=True)
class Format:
    """A two's complement signed integer format.

    Parameters
    ----------
    bits : int
        Width in bits, 2 to 64.

    Attributes
    ----------
    name : str
        ``"int<bits>"``.
    lo, hi : int
        The smallest and the largest representable value.
    dtype : numpy.dtype
        The smallest numpy integer type that holds the format (int4 is held in int8).
    """
    bits: int

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool):
            raise TypeError(f"Format width must be an integer, not {self.bits!r}")
        if not 2 <= self.bits <= 64:
            raise ValueError(f"Format width must be between 2 and 64 bits, not {self.bits!r}")

    @property
    def name(self):
        return f"int{self.bits}"

    @property
    def lo(self):
        return -(1 << (self.bits - 1))

    @property
    def hi(self):
        return (1 << (self.bits - 1)) - 1

    @property
    def dtype(self):
        for bits, dtype in ((8, np.int8), (16, np.int16), (32, np.int32)):
            if self.bits <= bits:
                return np.dtype(dtype)
        return np.dtype(np.int64)

    def nbytes(self, count):
        """Bytes taken by ``count`` values: ``ceil(count * bits / 8)`` (int4 packs two a byte)."""
        return (count * self.bits + 7) // 8

    def __repr__(self):
        return f"Format({self.name})"

    def __str__(self):
        return self.name


INT4 = Format(4)
INT8 = Format(8)
INT16 = Format(16)
INT32 = Format(32)


def as_format(value, what="Format"):
    """Turn ``"int8"``, ``8`` or a :class:`Format` into a :class:`Format`."""
    if isinstance(value, Format):
        return value
    if isinstance(value, str):
        match = re.fullmatch(r"int(\d+)", value)
        if match and 2 <= int(match.group(1)) <= 64:
            return Format(int(match.group(1)))
        raise ValueError(f"{what} must be a name like 'int8', not {value!r}")
    if isinstance(value, int) and not isinstance(value, bool):
        return Format(value)
    raise TypeError(f"{what} must be a Format or a name like 'int8', not {value!r}")


def default_frac(fmt):
    """The default number of fractional bits of a nonlinear operator's input: ``bits - 4``."""
    return fmt.bits - 4


# --- requantisation -------------------------------------------------------------------------------

def round_shift(value, shift):
    """``(value + (1 << (shift - 1))) >> shift`` for ``shift > 0``, ``value`` for ``shift = 0``.

    Arithmetic shift, round half up. Works on Python integers and on numpy integer arrays (use
    int64 arrays: the addition must not wrap).
    """
    if shift == 0:
        return value
    if isinstance(value, np.ndarray):
        return (value + np.int64(1 << (shift - 1))) >> np.int64(shift)
    return (value + (1 << (shift - 1))) >> shift


def requantize(acc, shift, fmt):
    """The one requantisation rule: ``clamp((acc + (1 << (s - 1))) >> s, lo, hi)``.

    Parameters
    ----------
    acc : int or numpy.ndarray
        Accumulator values (an int64 array, or a Python integer).
    shift : int
        ``s >= 0``; ``s = 0`` only clamps.
    fmt : Format
        The output format.

    Returns
    -------
    int or numpy.ndarray
        An integer, or an array of ``fmt.dtype``.
    """
    fmt = as_format(fmt)
    if isinstance(acc, np.ndarray):
        return np.clip(round_shift(acc.astype(np.int64), shift), fmt.lo, fmt.hi).astype(fmt.dtype)
    return min(max(round_shift(acc, shift), fmt.lo), fmt.hi)


def accumulator_format(a_fmt, b_fmt, reduction, bias_fmt=None):
    """The narrowest signed format that holds any sum of ``reduction`` products, plus a bias.

    The largest product magnitude is ``lo_a * lo_b = 2**(bits_a + bits_b - 2)`` (positive), so the
    bound is ``reduction * 2**(bits_a + bits_b - 2) + 2**(bits_bias - 1)``; the format is one bit
    wider than that bound's bit length.
    """
    bound = reduction * (1 << (a_fmt.bits + b_fmt.bits - 2))
    if bias_fmt is not None:
        bound += 1 << (bias_fmt.bits - 1)
    return Format(min(bound.bit_length() + 1, 64))


# --- integer square root and reciprocal -----------------------------------------------------------

def isqrt(value):
    """``floor(sqrt(value))`` of a non-negative int64 array below ``2**62``, exactly."""
    value = np.asarray(value, dtype=np.int64)
    root = np.floor(np.sqrt(value.astype(np.float64))).astype(np.int64)
    root -= (root * root > value)
    root += ((root + 1) * (root + 1) <= value)
    return root


def reciprocal(value, bits):
    """``floor(2**bits / value)`` of a positive int64 array (a restoring divider in hardware)."""
    return np.int64(1 << bits) // np.asarray(value, dtype=np.int64)


# --- lookup tables --------------------------------------------------------------------------------

#: Fractional bits of the exponential table: ``exp(0)`` is ``1 << EXP_FRAC``.
EXP_FRAC = 15

#: ``EXP_TABLES[f][j] = round(2**15 * exp(-j * 2**-f))`` for ``f`` in 0..15 and ``j`` in 0..255:
#: ``exp`` of the low byte of a difference with ``f`` fractional bits. Unsigned 16-bit values
#: (``EXP_TABLES[f][0] = 32768``).
EXP_TABLES = np.array([[round((1 << EXP_FRAC) * math.exp(-j / (1 << f))) for j in range(256)]
                       for f in range(16)], dtype=np.int64)
#: ``EXP_HI_TABLES[f][i] = round(2**15 * exp(-256 * i * 2**-f))``: ``exp`` of the high byte.
EXP_HI_TABLES = np.array([[round((1 << EXP_FRAC) * math.exp(-256 * i / (1 << f)))
                           for i in range(256)] for f in range(16)], dtype=np.int64)
EXP_TABLES.flags.writeable = False
EXP_HI_TABLES.flags.writeable = False


def exp_table(frac):
    """The 256-entry table of ``exp`` over a low byte with ``frac`` fractional bits (0..15)."""
    return EXP_TABLES[frac]


def exp_neg(k, frac):
    """``round(2**15 * exp(-k * 2**-frac))`` for integers ``0 <= k < 2**16``, from two tables.

    ``e = (EXP_HI_TABLES[frac][k >> 8] * EXP_TABLES[frac][k & 255] + (1 << 14)) >> 15``: one
    multiplier, two 256-entry ROMs. For ``k < 256`` the high table gives ``2**15`` and ``e`` is
    ``EXP_TABLES[frac][k]`` exactly (int8 softmax needs only the low table).
    """
    k = np.asarray(k, dtype=np.int64)
    return round_shift(EXP_HI_TABLES[frac][k >> 8] * EXP_TABLES[frac][k & 255], EXP_FRAC)


def gelu_float(x, approximate="none"):
    """GELU in float64, as PyTorch defines it (``approximate`` is ``"none"`` or ``"tanh"``)."""
    x = np.asarray(x, dtype=np.float64)
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def silu_float(x):
    """SiLU ``x * sigmoid(x)`` in float64."""
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(-np.abs(x))  # never overflows
    return x * np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


_erf_object = np.frompyfunc(math.erf, 1, 1)


def _erf(x):
    # numpy has no erf; math.erf element by element is exact and fast enough for float models.
    return np.asarray(_erf_object(x), dtype=np.float64)


def _activation_table(function, bits, frac):
    # Entry i (i = 0..256) holds the output at index i - 128 of the top 8 bits of the input.
    fmt = Format(bits)
    step = 1 << (bits - 8)
    x = (np.arange(257, dtype=np.float64) - 128) * step * 2.0 ** -frac
    y = np.round(function(x) * 2.0 ** frac)
    return np.clip(y, fmt.lo, fmt.hi).astype(np.int64)


#: ``GELU_TABLES[(bits, f)][i] = clamp(round(gelu((i - 128) * 2**(bits - 8) * 2**-f) * 2**f))``
#: for ``bits`` in (8, 16), ``f`` in 0..bits-1 and ``i`` in 0..256 (exact erf GELU);
#: ``GELU_TANH_TABLES`` the same with PyTorch's tanh approximation;
#: ``SILU_TABLES`` the same with ``silu(x) = x * sigmoid(x)``.
GELU_TABLES = {(b, f): _activation_table(gelu_float, b, f) for b in (8, 16) for f in range(b)}
GELU_TANH_TABLES = {(b, f): _activation_table(lambda x: gelu_float(x, "tanh"), b, f)
                    for b in (8, 16) for f in range(b)}
SILU_TABLES = {(b, f): _activation_table(silu_float, b, f) for b in (8, 16) for f in range(b)}
for _table in (*GELU_TABLES.values(), *GELU_TANH_TABLES.values(), *SILU_TABLES.values()):
    _table.flags.writeable = False


def gelu_table(bits, frac, approximate="none"):
    """The 257-entry GELU table of an int8 or int16 input with ``frac`` fractional bits."""
    return (GELU_TANH_TABLES if approximate == "tanh" else GELU_TABLES)[(bits, frac)]


def silu_table(bits, frac):
    """The 257-entry SiLU table of an int8 or int16 input with ``frac`` fractional bits."""
    return SILU_TABLES[(bits, frac)]


def lut_activation(x, table, fmt):
    """Apply a 257-entry activation table to int8 or int16 values.

    int8: ``y = table[x + 128]`` (a plain lookup; entry 256 is unused).
    int16: ``i = x >> 8`` (arithmetic), ``r = x & 255``,
    ``y = t[i] + (((t[i + 1] - t[i]) * r + 128) >> 8)`` with ``t[i] = table[i + 128]``: linear
    interpolation between 257 breakpoints, one multiplier. The result stays within ``fmt``.
    """
    x = np.asarray(x, dtype=np.int64)
    if fmt.bits == 8:
        return table[x + 128].astype(fmt.dtype)
    index = (x >> 8) + 128
    low = x & 255
    base = table[index]
    return (base + round_shift((table[index + 1] - base) * low, 8)).astype(fmt.dtype)


def gelu(x, fmt, frac, approximate="none"):
    """Integer GELU of int8/int16 ``x`` with ``frac`` fractional bits; output in the same format."""
    return lut_activation(x, gelu_table(fmt.bits, frac, approximate), fmt)


def silu(x, fmt, frac):
    """Integer SiLU of int8/int16 ``x`` with ``frac`` fractional bits; output in the same format."""
    return lut_activation(x, silu_table(fmt.bits, frac), fmt)


# --- softmax --------------------------------------------------------------------------------------

def softmax_constants(fmt):
    """The constants of :func:`softmax` for an input format.

    Returns
    -------
    dict
        ``out_frac`` (``bits - 1``), ``recip_bits`` ``R`` (the reciprocal is
        ``floor(2**R / sum)``) and ``out_shift`` (``R - out_frac``).
    """
    out_frac = fmt.bits - 1
    recip_bits = EXP_FRAC + out_frac + 8
    return {"out_frac": out_frac, "recip_bits": recip_bits, "out_shift": recip_bits - out_frac}


def softmax(x, fmt, frac, causal=False):
    """Integer softmax over the last axis.

    Input: int8/int16 ``x`` with ``frac`` fractional bits. Output: the same format, probabilities
    with ``bits - 1`` fractional bits (int8: ``p * 128``, int16: ``p * 32768``), saturated at
    ``hi`` (a probability of exactly 1 reads 127 / 32767).

    Per row:

    1. ``m = max(x)`` over the unmasked entries.
    2. ``k = m - x`` (0..255 for int8, 0..65535 for int16).
    3. ``e = exp_neg(k, frac)``: ``(EXP_HI_TABLES[frac][k >> 8] * EXP_TABLES[frac][k & 255] +
       (1 << 14)) >> 15``, about ``2**15 * exp(-k * 2**-frac)``, 16 bits unsigned; masked
       entries give ``e = 0``.
    4. ``sum = sum(e)`` (``16 + ceil(log2(n))`` bits), ``r = floor(2**R / sum)`` with
       ``R = 15 + (bits - 1) + 8`` (int8: 30, so ``r <= 2**15``; int16: 38, ``r <= 2**23``).
    5. ``p = clamp((e * r + (1 << (R - bits))) >> (R - bits + 1), 0, hi)``.

    With ``causal``, entry ``(.., i, j)`` is masked when ``j > i`` (PyTorch's ``is_causal``).
    """
    const = softmax_constants(fmt)
    x = np.asarray(x, dtype=np.int64)
    mask = None
    if causal:
        rows, cols = x.shape[-2:]
        mask = np.arange(cols)[None, :] > np.arange(rows)[:, None]
        x = np.where(mask, np.int64(fmt.lo), x)
    m = x.max(axis=-1, keepdims=True)
    e = exp_neg(m - x, frac)
    if mask is not None:
        e = np.where(mask, np.int64(0), e)
    total = e.sum(axis=-1, keepdims=True)
    r = reciprocal(total, const["recip_bits"])
    p = round_shift(e * r, const["out_shift"])
    return np.clip(p, 0, fmt.hi).astype(fmt.dtype)


# --- layer normalisation --------------------------------------------------------------------------

#: Fractional bits of the normalised value ``(x - mean) / std`` inside :func:`layernorm`.
LN_FRAC = 12


def layernorm_max_length(fmt):
    """The longest row :func:`layernorm` can normalise without overflowing 63 bits."""
    # d * sum(x^2) <= d^2 * 2^(2 bits - 2) must stay below 2^62.
    return 1 << ((62 - 2 * (fmt.bits - 1)) // 2)


def layernorm_eps(eps, length, frac):
    """``eps`` in the units of the integer variance ``V``: ``round(eps * d**2 * 2**(2 * frac))``."""
    return int(round(eps * length * length * 2.0 ** (2 * frac)))


def layernorm(x, weight, bias, fmt, *, frac, out_frac, weight_frac, eps=1e-5):
    """Integer layer normalisation over the last axis (length ``d``).

    Input ``x``: int8/int16 with ``frac`` fractional bits (used only to scale ``eps``). ``weight``
    (gamma): integers with ``weight_frac`` fractional bits. ``bias`` (beta): int32 in accumulator
    units, ``2**-(LN_FRAC + weight_frac)``. Output: ``fmt`` with ``out_frac`` fractional bits.

    Per row:

    1. ``S = sum(x)``, ``c = d * x - S`` (``d`` times the centred value, exact).
    2. ``V = d * sum(x * x) - S * S + eps_int`` (``d**3`` times the variance, exact), with
       ``eps_int = round(eps * d**2 * 2**(2 * frac))``.
    3. Normalise: ``e`` is the even shift that puts ``W = V << e`` (or ``V >> -e``, floor) in
       ``[2**30, 2**32)``; ``q = isqrt(W)``, 16 bits: ``sqrt(V) ~ q * 2**(-e / 2)``.
    4. ``r = floor(2**31 / q)`` (17 bits).
    5. ``n = (c * r + half) >> (31 - LN_FRAC - e / 2)``: ``(x - mean) / std`` with 12 fractional
       bits.
    6. ``y = requantize(n * weight + bias, LN_FRAC + weight_frac - out_frac, fmt)``.

    A row with ``V = 0`` normalises to 0 (``y`` is the requantised bias).
    """
    x = np.asarray(x, dtype=np.int64)
    d = x.shape[-1]
    s = x.sum(axis=-1, keepdims=True)
    c = d * x - s
    v = d * (x * x).sum(axis=-1, keepdims=True) - s * s + layernorm_eps(eps, d, frac)
    length = _bit_length(v)
    e = 2 * ((32 - length) // 2)
    w = np.where(e >= 0, v << np.maximum(e, 0), v >> np.maximum(-e, 0))
    w = np.where(v == 0, np.int64(1 << 30), w)
    q = isqrt(w)
    r = reciprocal(q, 31)
    shift = 31 - LN_FRAC - e // 2
    n = (c * r + (np.int64(1) << (shift - 1))) >> shift
    acc = n * np.asarray(weight, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    return requantize(acc, LN_FRAC + weight_frac - out_frac, fmt)


def _bit_length(v):
    # Exact bit length of non-negative int64 values below 2**62.
    v = np.asarray(v, dtype=np.int64)
    length = np.zeros(v.shape, dtype=np.int64)
    length[v > 0] = np.floor(np.log2(v[v > 0].astype(np.float64))).astype(np.int64) + 1
    # log2 of a float64 can be off by one next to a power of two: correct against the integers.
    length -= (length > 0) & ((np.int64(1) << np.maximum(length - 1, 0)) > v)
    length += (np.int64(1) << np.minimum(length, 62)) <= v
    return length
