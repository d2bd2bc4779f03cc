"""Elementwise special-function units: requantisation, activations, residual add, gating mul
and the scaled residual (a product added back to its first factor).

Every unit is a :class:`~amaranth.lib.wiring.Component` whose streams carry
:class:`~intar_hw.hw.sfu.layouts.VectorLayout` beats: ``lanes`` elements computed side by side,
and ``last``, which passes through unchanged. Each is bit-exact with the function of
:mod:`intar_hw.numerics` named in its docstring.

All units share one pipeline discipline. Every stage register, block RAM read port included, has
one clock enable, ``advance = ~o.valid | o.ready``: the pipeline moves when the output register
is empty or being emptied this cycle, and stands still otherwise, so no beat is ever lost or
repeated. With ``o`` always ready a unit takes and gives one beat per cycle. ``o.valid`` and
``o.payload`` come from registers; the input ``ready`` signals depend combinationally on
``o.ready`` (and, for two-input units, on the other input's ``valid``).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import numerics
from .layouts import VectorLayout
from ..checks import check_bool, check_format
from ..logic import read_copies
from ..tech import ecp5_multiplier, family_of


__all__ = ["ACTIVATIONS", "Requantize", "Activation", "Add", "Mul", "MulAdd",
           "activation_multipliers"]


#: Functions an :class:`Activation` computes.
ACTIVATIONS = ("relu", "gelu", "silu")

#: Largest shift a unit accepts, as the graph (:mod:`intar_hw.graph`) does.
_MAX_SHIFT = 62


# --- parameter checks -----------------------------------------------------------------------------

def _check_lanes(owner, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} lanes must be an integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{owner} lanes must be a positive integer, not {value!r}")


def _check_shift(owner, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} shift must be an integer, not {value!r}")
    if not 0 <= value <= _MAX_SHIFT:
        raise ValueError(f"{owner} shift must be between 0 and {_MAX_SHIFT}, not {value!r}")


# --- arithmetic shared by the units ---------------------------------------------------------------

def _round_shift(value, shift):
    # numerics.round_shift; Amaranth widens the sum, so the rounding constant never overflows.
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def _clamp(value, lo, hi):
    """``value`` limited to ``[lo, hi]``. Where ``hi`` is ``2**k - 1`` and ``lo`` is ``-2**k`` or
    0 (a format's range, with or without ReLU), the overflow tests read the bits above ``k`` and
    the sign instead of comparing (no carry chain after the arithmetic that made ``value``)."""
    k = (hi + 1).bit_length() - 1
    if hi < 0 or hi + 1 != 1 << k or lo not in (0, -(1 << k)):
        return Mux(value < lo, lo, Mux(value > hi, hi, value))
    if not value.shape().signed:
        value = Cat(value, C(0, 1)).as_signed()
    width = len(value)
    sign = value[-1]
    # The magnitude bits ``hi`` cannot hold (none: every value fits but for its sign).
    above = value[k:width - 1] if k < width - 1 else C(0, 0)
    high = ~sign & above.any()
    low = sign if lo == 0 else sign & ~above.all()
    return Mux(low, lo, Mux(high, hi, value))


def _vector_stream(fmt, lanes):
    return stream.Signature(VectorLayout(fmt.bits, lanes))


def _advance(m, o):
    """The enable of every pipeline register: the output register is empty or being emptied."""
    advance = Signal()
    m.d.comb += advance.eq(~o.valid | o.ready)
    return advance


def _join(m, advance, a, b):
    """Take a beat from ``a`` and ``b`` together: only when both are valid and the pipe moves."""
    m.d.comb += [
        a.ready.eq(advance & b.valid),
        b.ready.eq(advance & a.valid),
    ]
    return a.valid & b.valid


def _multiply(m, platform, advance, a, b, lanes):
    """Per lane, the product of ``a`` and ``b``'s payloads of two advancing cycles ago: their
    registered operands, then the registered product (on an ECP5, when both fit, the
    ``MULT18X18D``'s own input and output registers, so the multiplier sits between registers
    inside its DSP block). Returns the product signals."""
    a_shape, b_shape = a.payload.data[0].shape(), b.payload.data[0].shape()
    products = [Signal(signed(a_shape.width + b_shape.width), name=f"product_{n}")
                for n in range(lanes)]
    if family_of(platform) == "ecp5" and max(a_shape.width, b_shape.width) <= 18:
        for n in range(lanes):
            ecp5_multiplier(m, f"mult_{n}", a.payload.data[n], b.payload.data[n], products[n],
                            advance)
        return products
    with m.If(advance):
        for n in range(lanes):
            x = Signal(a_shape, name=f"operand_a_{n}")
            y = Signal(b_shape, name=f"operand_b_{n}")
            m.d.sync += [x.eq(a.payload.data[n]), y.eq(b.payload.data[n]),
                         products[n].eq(x * y)]
    return products


# --- requantisation -------------------------------------------------------------------------------

class Requantize(wiring.Component):
    """Add an optional bias to wide accumulators, requantise, and optionally apply ReLU.

    Per lane, ``y = clamp(round_shift(acc + bias, shift), lo, hi)``, exactly
    :func:`intar_hw.numerics.requantize` of ``acc + bias`` (round half up, arithmetic shift;
    ``shift = 0`` only clamps), with ``lo = 0`` instead of the format's minimum when ``relu`` is
    set: the fused linear/convolution + ReLU epilogue, equal to ``max(requantize(...), 0)``.
    The sum ``acc + bias`` is computed one bit wider than its widest operand and never wraps.

    The bias enters as a second stream, ``bias``, beat-aligned with ``i``: the ``n``-th bias beat
    is added to the ``n``-th accumulator beat, lane by lane. A computing core feeds it from the
    per-output-channel bias vector of the tile it emits (for a tile of ``lanes`` output
    channels, the same bias beat for every position), so the unit needs no knowledge of the
    channel order. A beat is taken only when both streams are valid; the bias ``last`` is
    ignored, ``o.last`` is ``i.last``.

    Parameters
    ----------
    lanes : int
        Elements per beat, at least 1.
    in_format : Format, str or int
        Format of the accumulators on ``i``, e.g. ``MACArray.accumulator_width``.
    shift : int
        Right shift ``s``, 0 to 62.
    out_format : Format, str or int
        Format of the results on ``o``; ``"int8"`` by default.
    bias_format : Format, str, int or None
        Format of the bias stream; ``None`` (the default) builds no ``bias`` port.
    relu : bool
        Clamp at 0 instead of the format's minimum (fused ReLU).

    Members
    -------
    i : In(stream.Signature(VectorLayout(in_format.bits, lanes)))
        Accumulators.
    bias : In(stream.Signature(VectorLayout(bias_format.bits, lanes)))
        Biases, one beat per ``i`` beat; present only if ``bias_format`` is given.
    o : Out(stream.Signature(VectorLayout(out_format.bits, lanes)))
        Requantised results, in input order.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result being valid on ``o``, the pipeline being
        free: 1 (output register), 2 with a bias (the sum is registered first).

    Raises
    ------
    TypeError
        If ``lanes`` or ``shift`` is not an integer, a format is not a Format, a name or a
        width, or ``relu`` is not a bool.
    ValueError
        If ``lanes`` is less than 1, ``shift`` is outside 0 to 62, or a format is not one of 2
        to 64 bits.
    """

    def __init__(self, lanes, *, in_format, shift, out_format="int8", bias_format=None,
                 relu=False):
        _check_lanes("Requantize", lanes)
        in_format = check_format("Requantize", "in_format", in_format)
        _check_shift("Requantize", shift)
        out_format = check_format("Requantize", "out_format", out_format)
        if bias_format is not None:
            bias_format = check_format("Requantize", "bias_format", bias_format)
        check_bool("Requantize", "relu", relu)
        self._lanes = lanes
        self._in_format = in_format
        self._shift = shift
        self._out_format = out_format
        self._bias_format = bias_format
        self._relu = relu
        members = {"i": In(_vector_stream(in_format, lanes))}
        if bias_format is not None:
            members["bias"] = In(_vector_stream(bias_format, lanes))
        members["o"] = Out(_vector_stream(out_format, lanes))
        super().__init__(members)

    lanes = property(lambda self: self._lanes)
    in_format = property(lambda self: self._in_format)
    shift = property(lambda self: self._shift)
    out_format = property(lambda self: self._out_format)
    bias_format = property(lambda self: self._bias_format)
    relu = property(lambda self: self._relu)

    @property
    def latency(self):
        return 1 if self._bias_format is None else 2

    def elaborate(self, platform):
        m = Module()
        advance = _advance(m, self.o)
        lo = 0 if self._relu else self._out_format.lo
        hi = self._out_format.hi

        if self._bias_format is None:
            valid = self.i.valid
            m.d.comb += self.i.ready.eq(advance)
            values = list(self.i.payload.data)
            last = self.i.payload.last
        else:
            # Stage 1: the biased sum, one bit wider than the wider operand.
            width = max(self._in_format.bits, self._bias_format.bits) + 1
            values = [Signal(signed(width), name=f"sum_{n}") for n in range(self._lanes)]
            valid, last = Signal(name="sum_valid"), Signal(name="sum_last")
            taken = _join(m, advance, self.i, self.bias)
            with m.If(advance):
                m.d.sync += [valid.eq(taken), last.eq(self.i.payload.last)]
                for n in range(self._lanes):
                    m.d.sync += values[n].eq(self.i.payload.data[n] + self.bias.payload.data[n])

        # Output register: round, shift, clamp.
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(valid), self.o.payload.last.eq(last)]
            for n in range(self._lanes):
                m.d.sync += self.o.payload.data[n].eq(
                    _clamp(_round_shift(values[n], self._shift), lo, hi))
        return m


# --- activations ----------------------------------------------------------------------------------

def activation_multipliers(lanes, bits):
    """Multipliers (DSP blocks on an FPGA) an :class:`Activation` builds: on int16 a lane's
    interpolation between table entries, on int8 none (the table holds every value)."""
    return lanes if bits == 16 else 0


class Activation(wiring.Component):
    """ReLU, GELU or SiLU of every element, same format in and out.

    ``"relu"`` is ``max(x, 0)`` of any format. ``"gelu"`` and ``"silu"`` of int8 or int16 inputs
    with ``frac`` fractional bits are :func:`intar_hw.numerics.gelu` and
    :func:`~intar_hw.numerics.silu` exactly, from the 257-entry tables of
    :func:`~intar_hw.numerics.gelu_table` / :func:`~intar_hw.numerics.silu_table`
    (:func:`~intar_hw.numerics.lut_activation`):

    - int8: ``y = t[x]``, one read of a 256-entry ROM addressed by ``x + 128``.
    - int16: the ROM holds, at address ``i + 128``, ``t[i]`` and the slope
      ``t[i + 1] - t[i]``, so one read per element gives both breakpoints; then
      ``y = t[i] + ((slope * (x & 255) + 128) >> 8)`` for ``i = x >> 8``.

    The ROM has one synchronous, non-transparent read port per lane (the table is shared, the
    reads are not), built as ``ceil(lanes / 2)`` copies read on both ports
    (:func:`~intar_hw.hw.logic.read_copies`): e.g. as many ECP5 DP16KD block RAMs, or LUTs
    if synthesis decides the 256-entry ROM is small enough. Serving several lanes from one port
    would cost throughput.

    Parameters
    ----------
    lanes : int
        Elements per beat, at least 1.
    function : str
        One of :data:`ACTIVATIONS`: ``"relu"``, ``"gelu"`` or ``"silu"``.
    format : Format, str or int
        Format of the elements in and out; ``"int8"`` by default. GELU and SiLU take int8 or
        int16.
    frac : int or None
        Fractional bits of the GELU/SiLU input, 0 to ``bits - 1``; ``None`` means
        :func:`~intar_hw.numerics.default_frac` (``bits - 4``). Must be ``None`` for ReLU.
    approximate : str
        GELU's approximation as in PyTorch: ``"none"`` (erf) or ``"tanh"``. Must be ``"none"``
        for the other functions.

    Members
    -------
    i : In(stream.Signature(VectorLayout(format.bits, lanes)))
        Inputs.
    o : Out(stream.Signature(VectorLayout(format.bits, lanes)))
        Results, in input order.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result being valid on ``o``, the pipeline being
        free: 1 for ReLU (output register) and int8 tables (the ROM's read register is the output
        register); 3 for int16 tables (ROM read, registered product, output register).
    table : tuple of int or None
        The 257 table entries (GELU/SiLU), taken from :mod:`intar_hw.numerics`; ``None`` for ReLU.

    Raises
    ------
    TypeError
        If ``lanes`` or ``frac`` is not an integer, ``function`` or ``approximate`` is not a
        string, or ``format`` is not a Format, a name or a width.
    ValueError
        If ``lanes`` is less than 1, ``function`` or ``approximate`` is not a known name or does
        not fit the function, ``format`` is not one of 2 to 64 bits (int8 or int16 for a table),
        or ``frac`` is out of range or given for ReLU.
    """

    def __init__(self, lanes, function, *, format="int8", frac=None, approximate="none"):
        _check_lanes("Activation", lanes)
        if not isinstance(function, str):
            raise TypeError(f"Activation function must be a string, not {function!r}")
        if function not in ACTIVATIONS:
            raise ValueError(
                f"Activation function must be 'relu', 'gelu' or 'silu', not {function!r}")
        fmt = check_format("Activation", "format", format)
        if function != "relu" and fmt.bits not in (8, 16):
            raise ValueError(f"Activation format of {function!r} must be int8 or int16, "
                             f"not {format!r}")
        if frac is not None:
            if not isinstance(frac, int) or isinstance(frac, bool):
                raise TypeError(f"Activation frac must be an integer, not {frac!r}")
            if function == "relu":
                raise ValueError(f"Activation frac must be None for 'relu', not {frac!r}")
            if not 0 <= frac < fmt.bits:
                raise ValueError(
                    f"Activation frac must be between 0 and {fmt.bits - 1}, not {frac!r}")
        if not isinstance(approximate, str):
            raise TypeError(f"Activation approximate must be a string, not {approximate!r}")
        if approximate not in ("none", "tanh"):
            raise ValueError(
                f"Activation approximate must be 'none' or 'tanh', not {approximate!r}")
        if approximate != "none" and function != "gelu":
            raise ValueError(
                f"Activation approximate must be 'none' for {function!r}, not {approximate!r}")
        self._lanes = lanes
        self._function = function
        self._format = fmt
        self._approximate = approximate
        if function == "relu":
            self._frac = None
            self._table = None
        else:
            self._frac = numerics.default_frac(fmt) if frac is None else frac
            if function == "gelu":
                table = numerics.gelu_table(fmt.bits, self._frac, approximate)
            else:
                table = numerics.silu_table(fmt.bits, self._frac)
            self._table = tuple(int(entry) for entry in table)
        super().__init__({
            "i": In(_vector_stream(fmt, lanes)),
            "o": Out(_vector_stream(fmt, lanes)),
        })

    lanes = property(lambda self: self._lanes)
    multipliers = property(lambda self: activation_multipliers(self._lanes, self._format.bits))
    function = property(lambda self: self._function)
    format = property(lambda self: self._format)
    frac = property(lambda self: self._frac)
    approximate = property(lambda self: self._approximate)
    table = property(lambda self: self._table)

    @property
    def latency(self):
        return 3 if self._table is not None and self._format.bits == 16 else 1

    def elaborate(self, platform):
        m = Module()
        advance = _advance(m, self.o)
        m.d.comb += self.i.ready.eq(advance)
        lanes, bits = self._lanes, self._format.bits

        if self._table is None:
            with m.If(advance):
                m.d.sync += [
                    self.o.valid.eq(self.i.valid),
                    self.o.payload.last.eq(self.i.payload.last),
                ]
                for n in range(lanes):
                    x = self.i.payload.data[n]
                    m.d.sync += self.o.payload.data[n].eq(Mux(x < 0, 0, x))
            return m

        # The ROM address is the top byte plus 128: the top byte with its sign bit inverted.
        def address(x):
            return Cat(x[bits - 8:bits - 1], ~x[bits - 1])

        table = self._table
        if bits == 8:
            entry = signed(8)
            init = table[:256]
        else:
            slopes = [table[k + 1] - table[k] for k in range(256)]
            # The multiplier is as wide as this table's steepest slope needs (at most 10 bits).
            slope_bits = max(max(s.bit_length() for s in slopes), 1) + 1
            entry = data.StructLayout({"base": signed(16), "slope": signed(slope_bits)})
            init = [{"base": table[k], "slope": slopes[k]} for k in range(256)]
        _, ports = read_copies(m, "rom", lanes, shape=entry, depth=256, init=init)
        for n, port in enumerate(ports):
            m.d.comb += [port.addr.eq(address(self.i.payload.data[n])), port.en.eq(advance)]

        # Stage 1: the ROM's read register.
        valid_1, last_1 = Signal(name="read_valid"), Signal(name="read_last")
        with m.If(advance):
            m.d.sync += [valid_1.eq(self.i.valid), last_1.eq(self.i.payload.last)]
        if bits == 8:
            m.d.comb += [
                self.o.valid.eq(valid_1),
                self.o.payload.last.eq(last_1),
            ]
            for n, port in enumerate(ports):
                m.d.comb += self.o.payload.data[n].eq(port.data)
            return m

        # int16: the low byte travels beside the ROM read; then the product; then the sum.
        lows = [Signal(8, name=f"low_{n}") for n in range(lanes)]
        products = [Signal(signed(entry["slope"].shape.width + 8), name=f"product_{n}")
                    for n in range(lanes)]
        bases = [Signal(signed(16), name=f"base_{n}") for n in range(lanes)]
        valid_2, last_2 = Signal(name="product_valid"), Signal(name="product_last")
        with m.If(advance):
            m.d.sync += [
                valid_2.eq(valid_1), last_2.eq(last_1),
                self.o.valid.eq(valid_2), self.o.payload.last.eq(last_2),
            ]
            for n, port in enumerate(ports):
                m.d.sync += [
                    lows[n].eq(self.i.payload.data[n][:8]),
                    products[n].eq(port.data.slope * lows[n]),
                    bases[n].eq(port.data.base),
                    # Interpolating between two int16 breakpoints stays within int16.
                    self.o.payload.data[n].eq(bases[n] + _round_shift(products[n], 8)),
                ]
        return m


# --- binary units ---------------------------------------------------------------------------------

class _Binary(wiring.Component):
    # Two input streams joined beat by beat, one output; formats default to a's.

    def __init__(self, lanes, a_format, b_format, out_format):
        self._lanes = lanes
        self._a_format = a_format
        self._b_format = b_format
        self._out_format = out_format
        super().__init__({
            "a": In(_vector_stream(a_format, lanes)),
            "b": In(_vector_stream(b_format, lanes)),
            "o": Out(_vector_stream(out_format, lanes)),
        })

    @staticmethod
    def _check(owner, lanes, a_format, b_format, out_format):
        _check_lanes(owner, lanes)
        a_format = check_format(owner, "a_format", a_format)
        b_format = a_format if b_format is None else check_format(owner, "b_format", b_format)
        out_format = (a_format if out_format is None
                      else check_format(owner, "out_format", out_format))
        return a_format, b_format, out_format

    lanes = property(lambda self: self._lanes)
    #: Multipliers the unit builds (DSP blocks on an FPGA): none for a sum.
    multipliers = property(lambda self: 0)
    a_format = property(lambda self: self._a_format)
    b_format = property(lambda self: self._b_format)
    out_format = property(lambda self: self._out_format)


class Add(_Binary):
    """Saturating elementwise sum, the residual add: ``y = clamp(a + b, lo, hi)``.

    Exactly the graph's ``add`` (:func:`intar_hw.numerics.requantize` of ``a + b`` with shift 0):
    the inputs are added as integers in their own units (the graph gives both operands the same
    scale) in a sum one bit wider than the wider input, then clamped to ``out_format``.

    A beat is taken from ``a`` and ``b`` together, only when both are valid; ``o.last`` is
    ``a.last`` (``b.last`` is ignored).

    Parameters
    ----------
    lanes : int
        Elements per beat, at least 1.
    a_format : Format, str or int
        Format of ``a``; ``"int8"`` by default.
    b_format : Format, str, int or None
        Format of ``b``; ``None`` means ``a_format``.
    out_format : Format, str, int or None
        Format of ``o``; ``None`` means ``a_format``.

    Members
    -------
    a : In(stream.Signature(VectorLayout(a_format.bits, lanes)))
        First operand, e.g. the residual branch.
    b : In(stream.Signature(VectorLayout(b_format.bits, lanes)))
        Second operand, beat-aligned with ``a``.
    o : Out(stream.Signature(VectorLayout(out_format.bits, lanes)))
        Saturated sums, in input order.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result being valid on ``o``, the pipeline being
        free: 1 (output register).

    Raises
    ------
    TypeError
        If ``lanes`` is not an integer or a format is not a Format, a name or a width.
    ValueError
        If ``lanes`` is less than 1 or a format is not one of 2 to 64 bits.
    """

    latency = 1

    def __init__(self, lanes, *, a_format="int8", b_format=None, out_format=None):
        super().__init__(lanes, *self._check("Add", lanes, a_format, b_format, out_format))

    def elaborate(self, platform):
        m = Module()
        advance = _advance(m, self.o)
        taken = _join(m, advance, self.a, self.b)
        fmt = self._out_format
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(taken), self.o.payload.last.eq(self.a.payload.last)]
            for n in range(self._lanes):
                total = self.a.payload.data[n] + self.b.payload.data[n]
                m.d.sync += self.o.payload.data[n].eq(_clamp(total, fmt.lo, fmt.hi))
        return m


class Mul(_Binary):
    """Elementwise product with requantisation, the gating mul: ``y = requantize(a * b, shift)``.

    Exactly the graph's ``mul`` (:func:`intar_hw.numerics.requantize` of the exact product:
    round half up, arithmetic shift, clamp to ``out_format``), e.g. SwiGLU's
    ``SiLU(gate) * up``. The product is registered first (one DSP multiplier per lane).

    A beat is taken from ``a`` and ``b`` together, only when both are valid; ``o.last`` is
    ``a.last`` (``b.last`` is ignored).

    Parameters
    ----------
    lanes : int
        Elements per beat, at least 1.
    a_format : Format, str or int
        Format of ``a``; ``"int8"`` by default.
    b_format : Format, str, int or None
        Format of ``b``; ``None`` means ``a_format``.
    shift : int
        Right shift of the product, 0 to 62.
    out_format : Format, str, int or None
        Format of ``o``; ``None`` means ``a_format``.

    Members
    -------
    a : In(stream.Signature(VectorLayout(a_format.bits, lanes)))
        First factor.
    b : In(stream.Signature(VectorLayout(b_format.bits, lanes)))
        Second factor, beat-aligned with ``a``.
    o : Out(stream.Signature(VectorLayout(out_format.bits, lanes)))
        Requantised products, in input order.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result being valid on ``o``, the pipeline being
        free: 3 (operand registers, product register, output register).

    Raises
    ------
    TypeError
        If ``lanes`` or ``shift`` is not an integer or a format is not a Format, a name or a
        width.
    ValueError
        If ``lanes`` is less than 1, ``shift`` is outside 0 to 62 or a format is not one of 2 to
        64 bits.
    """

    latency = 3

    #: One multiplier (a DSP block on an FPGA) a lane.
    multipliers = property(lambda self: self._lanes)

    def __init__(self, lanes, *, a_format="int8", b_format=None, shift=0, out_format=None):
        owner = type(self).__name__
        formats = self._check(owner, lanes, a_format, b_format, out_format)
        _check_shift(owner, shift)
        self._shift = shift
        super().__init__(lanes, *formats)

    shift = property(lambda self: self._shift)

    def elaborate(self, platform):
        m = Module()
        advance = _advance(m, self.o)
        taken = _join(m, advance, self.a, self.b)
        fmt = self._out_format
        products = _multiply(m, platform, advance, self.a, self.b, self._lanes)
        valid = [Signal(name=f"{stage}_valid") for stage in ("operand", "product")]
        last = [Signal(name=f"{stage}_last") for stage in ("operand", "product")]
        with m.If(advance):
            m.d.sync += [
                valid[0].eq(taken), last[0].eq(self.a.payload.last),
                valid[1].eq(valid[0]), last[1].eq(last[0]),
                self.o.valid.eq(valid[1]), self.o.payload.last.eq(last[1]),
            ]
            for n in range(self._lanes):
                m.d.sync += self.o.payload.data[n].eq(
                    _clamp(_round_shift(products[n], self._shift), fmt.lo, fmt.hi))
        return m


class MulAdd(Mul):
    """Elementwise product added back to its first factor:
    ``y = clamp(a + requantize(a * b, shift, product_format), out_format)``.

    Exactly the graph's ``mul`` of ``a`` and ``b`` followed by its ``add`` of ``a`` and that
    product (:func:`intar_hw.numerics.requantize` twice), e.g. the reparameterisation
    ``z = h + h * eps`` of a variational autoencoder, in one unit: ``a`` travels beside the
    product in the pipeline, so no second stream of it is needed.

    Streams, parameters, members and errors are those of :class:`Mul` (``o`` carries the
    saturated sums), plus:

    Parameters
    ----------
    product_format : Format, str, int or None
        Format the product is clamped to before the sum; ``None`` means ``out_format``.

    Attributes
    ----------
    latency : int
        Cycles from an input transfer to its result being valid on ``o``, the pipeline being
        free: 4 (operand registers, product register, requantised product register, output
        register).
    """

    latency = 4

    def __init__(self, lanes, *, a_format="int8", b_format=None, shift=0, product_format=None,
                 out_format=None):
        super().__init__(lanes, a_format=a_format, b_format=b_format, shift=shift,
                         out_format=out_format)
        self._product_format = (self._out_format if product_format is None else
                                check_format("MulAdd", "product_format", product_format))

    product_format = property(lambda self: self._product_format)

    def elaborate(self, platform):
        m = Module()
        advance = _advance(m, self.o)
        taken = _join(m, advance, self.a, self.b)
        mid, fmt = self._product_format, self._out_format
        a_bits = self._a_format.bits
        stages = []
        for name in ("operand", "product", "term"):
            stages.append((Signal(name=f"{name}_valid"), Signal(name=f"{name}_last"),
                           [Signal(signed(a_bits), name=f"{name}_a_{n}")
                            for n in range(self._lanes)]))
        products = _multiply(m, platform, advance, self.a, self.b, self._lanes)
        terms = [Signal(signed(mid.bits), name=f"term_{n}") for n in range(self._lanes)]
        (o_valid, o_last, o_a), (p_valid, p_last, p_a), (t_valid, t_last, t_a) = stages
        with m.If(advance):
            m.d.sync += [
                o_valid.eq(taken), o_last.eq(self.a.payload.last),
                p_valid.eq(o_valid), p_last.eq(o_last),
                t_valid.eq(p_valid), t_last.eq(p_last),
                self.o.valid.eq(t_valid), self.o.payload.last.eq(t_last),
            ]
            for n in range(self._lanes):
                total = t_a[n] + terms[n]
                m.d.sync += [
                    o_a[n].eq(self.a.payload.data[n]),
                    p_a[n].eq(o_a[n]),
                    terms[n].eq(_clamp(_round_shift(products[n], self._shift), mid.lo, mid.hi)),
                    t_a[n].eq(p_a[n]),
                    self.o.payload.data[n].eq(_clamp(total, fmt.lo, fmt.hi)),
                ]
        return m
