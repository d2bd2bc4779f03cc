"""Row-wise integer layer normalisation (:func:`intar_hw.numerics.layernorm`) over a stream.

A layer normalisation needs the mean and variance of a row before it can emit any element, so
each row is read twice: once from the input (buffering it and summing ``x`` and ``x * x``), once
to emit. Between the two, a sequential datapath turns the sums into a reciprocal square root.
The unit overlaps the rows of a stream in a ring of row buffers: see :class:`LayerNorm`.
"""

from numbers import Integral

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import numerics
from .layouts import VectorLayout
from ..checks import check_count, check_format
from ..logic import bank_ring, stage, wrap_increment
from ...integers import cdiv


__all__ = ["LayerNormParamsLayout", "LayerNorm"]


#: Weight formats a :class:`LayerNorm` takes, as the graph does.
_WEIGHT_BITS = (4, 8, 16)
#: Bits of the integer square root and of the reciprocal of :func:`numerics.layernorm`.
_ROOT_BITS = 16
_RECIP_BITS = 17


# --- parameter checks -----------------------------------------------------------------------------

def _check_frac(owner, name, value, fmt, default):
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if not 0 <= value < fmt.bits:
        raise ValueError(f"{owner} {name} must be between 0 and {fmt.bits - 1}, not {value!r}")
    return value


def _check_vector(owner, name, value, length, fmt):
    """A tuple of ``length`` Python integers that fit ``fmt``."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{owner} {name} must be a sequence of integers, not {value!r}")
    values = list(value)
    if not all(isinstance(v, Integral) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{owner} {name} must be a sequence of integers, not {value!r}")
    if len(values) != length:
        raise ValueError(f"{owner} {name} must hold {length} values, not {len(values)}")
    for index, v in enumerate(values):
        if not fmt.lo <= v <= fmt.hi:
            raise ValueError(f"{owner} {name} value {index} must fit {fmt.name}, not {int(v)!r}")
    return tuple(int(v) for v in values)


class LayerNormParamsLayout(data.StructLayout):
    """Payload of a :class:`LayerNorm` parameter write: one beat of gamma and beta.

    Parameters
    ----------
    beats : int
        Beats per row; ``addr`` counts them.
    lanes : int
        Elements per beat.
    weight_bits : int
        Width of gamma.

    Fields
    ------
    addr : range(beats)
        Which beat of the row: elements ``addr * lanes`` to ``addr * lanes + lanes - 1``.
    weight : ArrayLayout(signed(weight_bits), lanes)
        Gamma of those elements.
    bias : ArrayLayout(signed(32), lanes)
        Beta of those elements.
    """

    def __init__(self, beats, lanes, weight_bits):
        super().__init__({
            "addr": range(beats),
            "weight": data.ArrayLayout(signed(weight_bits), lanes),
            "bias": data.ArrayLayout(signed(32), lanes),
        })


class LayerNorm(wiring.Component):
    """Integer layer normalisation of every row of a stream, bit-exact with
    :func:`numerics.layernorm`.

    A row of ``row_length`` elements arrives as ``row_length / lanes`` beats and leaves, in the
    same format with ``out_frac`` fractional bits, as the same number of beats with ``last`` set
    on the final one. Rows are counted; ``i.payload.last`` is ignored.

    Algorithm (:func:`numerics.layernorm`, ``d = row_length``). Each row passes three stages,
    each working on a different row at the same time:

    1. **Input.** Beats are written to a row buffer while ``S = sum(x)`` and ``Q = sum(x * x)``
       are accumulated (one squarer per lane).
    2. **Statistics**, sequential, :attr:`stats_cycles` = 36 cycles per row: load ``S`` and
       ``Q`` (1 cycle); ``V = d * Q - S * S + eps_int`` (1); the even normalising shift ``e``
       and ``W`` in ``[2**30, 2**32)`` (1, a priority encoder and a mux of constant shifts);
       ``q = isqrt(W)`` by a restoring square root, one root bit per cycle (16);
       ``r = floor(2**31 / q)`` by a restoring divider, one quotient bit per cycle (17).
    3. **Output.** The buffer is read back: ``c = d * x - S``, ``n = round_shift(c * r,
       31 - LN_FRAC - e / 2)`` (a variable shift, 3 to 34), ``acc = n * gamma + beta``,
       ``y = requantize(acc, LN_FRAC + weight_frac - out_frac)``; five registered stages and the
       output register.

    Gamma and beta live in two memories of ``row_length / lanes`` words each (gamma:
    ``lanes x weight_format``, beta: ``lanes x int32``), initialised from ``weight`` and
    ``bias``. They are model parameters: with ``loadable``, the ``params`` stream writes them at
    run time, one beat (``addr``, ``lanes`` gammas, ``lanes`` betas) per cycle, always ready. A
    computing core loads them by streaming the parameter vectors from its scratchpad or the
    off-chip port before the first row of the layer; a write takes effect from the next cycle,
    so it must not overlap the output of a row that uses the old values (load between layers).

    The row buffer is a ring of :attr:`banks` row buffers (one memory of
    ``banks * row_length / lanes`` words of ``lanes`` elements, one write and one read port),
    the fewest for which no stage ever waits for a bank: with a source that always offers a beat
    and a sink that is always ready the unit takes a row every :attr:`row_period` cycles, one
    beat per cycle when ``row_length / lanes >= 36``.

    Backpressure on ``o`` stalls only the output stage (one clock enable,
    ``advance = ~o.valid | o.ready``); the other stages continue until they need a bank the
    output stage has not released. ``o.valid``, ``o.payload`` and ``i.ready`` are register
    outputs.

    Parameters
    ----------
    row_length : int
        Elements per row (the normalised axis), a positive multiple of ``lanes``, at most
        :func:`numerics.layernorm_max_length` of the format.
    lanes : int
        Elements per beat, at least 1.
    weight : sequence of int
        Gamma, ``row_length`` integers of ``weight_format`` with ``weight_frac`` fractional bits.
    bias : sequence of int
        Beta, ``row_length`` int32 integers in accumulator units ``2**-(LN_FRAC + weight_frac)``.
    format : Format, str or int
        Format of the elements in and out: int8 or int16.
    frac : int or None
        Fractional bits of the input (it scales ``eps``), 0 to ``bits - 1``; ``None`` means
        ``bits - 4``.
    out_frac : int or None
        Fractional bits of the output, 0 to ``bits - 1``; ``None`` means ``bits - 4``.
    eps : float
        Added to the variance, 0 <= eps < 1 (:func:`numerics.layernorm_eps`).
    weight_format : Format, str or int
        Format of gamma: int4, int8 or int16.
    weight_frac : int or None
        Fractional bits of gamma, 0 to ``weight_bits - 1``; ``None`` means ``weight_bits - 2``.
    loadable : bool
        Add the ``params`` stream that rewrites gamma and beta.

    Members
    -------
    i : In(stream.Signature(VectorLayout(bits, lanes)))
        Rows of inputs, lane 0 first.
    o : Out(stream.Signature(VectorLayout(bits, lanes)))
        Rows of normalised outputs, ``last`` on each row's final beat.
    params : In(stream.Signature(LayerNormParamsLayout(row_length / lanes, lanes, weight_bits)))
        Parameter writes; present only if ``loadable``.

    Attributes
    ----------
    beats : int
        Beats per row, ``N = row_length / lanes``.
    shift : int
        The final requantisation shift, ``LN_FRAC + weight_frac - out_frac``.
    eps_int : int
        ``eps`` in the units of ``V``, :func:`numerics.layernorm_eps`.
    stats_cycles : int
        Cycles of the statistics stage per row: 36.
    row_period : int
        Cycles per row in steady state: ``max(N, 36)``.
    banks : int
        Row buffers in the ring: ``ceil((2 * N + 36) / row_period)`` (2 or 3).
    latency : int
        Cycles from the transfer of a row's last beat on ``i`` to its first beat being valid on
        ``o``, the unit being idle: 43.
    storage_bytes : int
        Bytes of the row buffer ring, ``banks * row_length * bits / 8``.
    params_bytes : int
        Bytes of the gamma and beta memories, ``row_length * (weight_bits / 8 + 4)``.

    Raises
    ------
    TypeError
        If a count or fractional-bit number is not an integer, a format is not a Format, a name
        or a width, ``eps`` is not a number, ``weight`` or ``bias`` is not a sequence of
        integers, or ``loadable`` is not a bool.
    ValueError
        If ``lanes`` is less than 1, ``row_length`` is not a positive multiple of ``lanes`` or is
        too long for the format, ``format`` is not int8 or int16, ``weight_format`` is not int4,
        int8 or int16, a fractional-bit number or ``eps`` is out of range, the final shift is
        negative, or ``weight`` or ``bias`` has the wrong length or a value that does not fit.
    """

    def __init__(self, row_length, lanes=1, *, weight, bias, format="int8", frac=None,
                 out_frac=None, eps=1e-5, weight_format="int8", weight_frac=None,
                 loadable=False):
        check_count("LayerNorm", "lanes", lanes)
        if not isinstance(row_length, int) or isinstance(row_length, bool):
            raise TypeError(f"LayerNorm row_length must be an integer, not {row_length!r}")
        if row_length < 1 or row_length % lanes:
            raise ValueError(f"LayerNorm row_length must be a positive multiple of lanes "
                             f"({lanes}), not {row_length!r}")
        fmt = check_format("LayerNorm", "format", format)
        if fmt.bits not in (8, 16):
            raise ValueError(f"LayerNorm format must be int8 or int16, not {format!r}")
        limit = numerics.layernorm_max_length(fmt)
        if row_length > limit:
            raise ValueError(f"LayerNorm row_length must be at most {limit} for {fmt.name}, "
                             f"not {row_length!r}")
        frac = _check_frac("LayerNorm", "frac", frac, fmt, numerics.default_frac(fmt))
        out_frac = _check_frac("LayerNorm", "out_frac", out_frac, fmt,
                               numerics.default_frac(fmt))
        if not isinstance(eps, (int, float)) or isinstance(eps, bool):
            raise TypeError(f"LayerNorm eps must be a number, not {eps!r}")
        if not 0 <= eps < 1:
            raise ValueError(f"LayerNorm eps must be at least 0 and less than 1, not {eps!r}")
        weight_fmt = check_format("LayerNorm", "weight_format", weight_format)
        if weight_fmt.bits not in _WEIGHT_BITS:
            raise ValueError(f"LayerNorm weight_format must be int4, int8 or int16, "
                             f"not {weight_format!r}")
        weight_frac = _check_frac("LayerNorm", "weight_frac", weight_frac, weight_fmt,
                                  weight_fmt.bits - 2)
        shift = numerics.LN_FRAC + weight_frac - out_frac
        if shift < 0:
            raise ValueError(f"LayerNorm out_frac must be at most LN_FRAC + weight_frac "
                             f"({numerics.LN_FRAC + weight_frac}), not {out_frac!r}")
        weight = _check_vector("LayerNorm", "weight", weight, row_length, weight_fmt)
        bias = _check_vector("LayerNorm", "bias", bias, row_length, numerics.INT32)
        if not isinstance(loadable, bool):
            raise TypeError(f"LayerNorm loadable must be a bool, not {loadable!r}")
        self._row_length = row_length
        self._lanes = lanes
        self._weight = weight
        self._bias = bias
        self._format = fmt
        self._frac = frac
        self._out_frac = out_frac
        self._eps = float(eps)
        self._weight_format = weight_fmt
        self._weight_frac = weight_frac
        self._loadable = loadable
        members = {
            "i": In(stream.Signature(VectorLayout(fmt.bits, lanes))),
            "o": Out(stream.Signature(VectorLayout(fmt.bits, lanes))),
        }
        if loadable:
            members["params"] = In(stream.Signature(
                LayerNormParamsLayout(self.beats, lanes, weight_fmt.bits)))
        super().__init__(members)

    row_length = property(lambda self: self._row_length)
    lanes = property(lambda self: self._lanes)
    weight = property(lambda self: self._weight)
    bias = property(lambda self: self._bias)
    format = property(lambda self: self._format)
    frac = property(lambda self: self._frac)
    out_frac = property(lambda self: self._out_frac)
    eps = property(lambda self: self._eps)
    weight_format = property(lambda self: self._weight_format)
    weight_frac = property(lambda self: self._weight_frac)
    loadable = property(lambda self: self._loadable)

    stats_cycles = 36
    latency = 43

    @property
    def beats(self):
        return self._row_length // self._lanes

    @property
    def shift(self):
        return numerics.LN_FRAC + self._weight_frac - self._out_frac

    @property
    def eps_int(self):
        return numerics.layernorm_eps(self._eps, self._row_length, self._frac)

    @property
    def row_period(self):
        return max(self.beats, self.stats_cycles)

    @property
    def banks(self):
        return cdiv(2 * self.beats + self.stats_cycles, self.row_period)

    @property
    def storage_bytes(self):
        return self._format.nbytes(self.banks * self._row_length)

    @property
    def params_bytes(self):
        return self._weight_format.nbytes(self._row_length) + 4 * self._row_length

    def cycles(self, rows):
        """Cycles from the first beat taken on ``i`` to the last beat given on ``o``.

        For ``rows`` rows sent back to back with ``o`` always ready:
        ``(N - 1) + latency + (N - 1) + (rows - 1) * row_period``.
        """
        return 2 * (self.beats - 1) + self.latency + (rows - 1) * self.row_period

    # --- hardware ---------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        bits, lanes, beats, banks = self._format.bits, self._lanes, self.beats, self.banks
        d = self._row_length
        depth = banks * beats
        wbits = self._weight_format.bits
        s_width = (d << (bits - 1)).bit_length() + 1                  # signed |S| <= d * 2**(b-1)
        q_max = d << (2 * bits - 2)
        q_width = q_max.bit_length()
        v_width = (d * q_max + self.eps_int).bit_length()
        c_width = (d * ((1 << bits) - 1)).bit_length() + 1
        # |n| <= sqrt(d - 1) * 2**LN_FRAC, plus the rounding of q and r (see numerics.layernorm).
        n_width = ((numerics.isqrt(d - 1).item() + 2) << numerics.LN_FRAC).bit_length() + 1

        vector = data.ArrayLayout(signed(bits), lanes)
        m.submodules.buffer = buffer = memory.Memory(shape=vector, depth=depth, init=[])
        gammas = [list(self._weight[b * lanes:(b + 1) * lanes]) for b in range(beats)]
        betas = [list(self._bias[b * lanes:(b + 1) * lanes]) for b in range(beats)]
        m.submodules.gamma = gamma_mem = memory.Memory(
            shape=data.ArrayLayout(signed(wbits), lanes), depth=beats, init=gammas)
        m.submodules.beta = beta_mem = memory.Memory(
            shape=data.ArrayLayout(signed(32), lanes), depth=beats, init=betas)
        if self._loadable:
            for mem, field in ((gamma_mem, "weight"), (beta_mem, "bias")):
                port = mem.write_port()
                m.d.comb += [
                    port.addr.eq(self.params.payload.addr),
                    port.data.eq(self.params.payload[field]),
                    port.en.eq(self.params.valid),
                ]
            m.d.comb += self.params.ready.eq(1)

        # Bank tokens, as in Softmax: input -> stats -> output -> input.
        names = ("input", "stats", "output")
        tokens, take, give, ptr, step = bank_ring(m, names, banks)

        row_s = Array(Signal(signed(s_width), name=f"row_sum_{b}") for b in range(banks))
        row_q = Array(Signal(q_width, name=f"row_squares_{b}") for b in range(banks))
        row_r = Array(Signal(_RECIP_BITS, name=f"row_recip_{b}") for b in range(banks))
        row_shift = Array(Signal(range(64), name=f"row_shift_{b}") for b in range(banks))

        # --- input: buffer the row, sum x and x * x ---
        write = buffer.write_port()
        in_addr = Signal(range(depth), name="input_addr")
        in_beat = Signal(range(beats), name="input_beat")
        in_s = Signal(signed(s_width), name="input_sum")
        in_q = Signal(q_width, name="input_squares")
        taken = Signal()
        m.d.comb += [
            self.i.ready.eq(tokens["input"] != 0),
            taken.eq(self.i.valid & self.i.ready),
            write.addr.eq(in_addr),
            write.data.eq(self.i.payload.data),
            write.en.eq(taken),
        ]
        xs = list(self.i.payload.data)
        new_s = Signal(signed(s_width), name="input_new_sum")
        new_q = Signal(q_width, name="input_new_squares")
        m.d.comb += [
            new_s.eq(Mux(in_beat == 0, 0, in_s) + sum(xs)),
            new_q.eq(Mux(in_beat == 0, 0, in_q) + sum(x * x for x in xs)),
        ]
        with m.If(taken):
            m.d.sync += [
                in_addr.eq(wrap_increment(in_addr, depth)),
                in_beat.eq(wrap_increment(in_beat, beats)),
                in_s.eq(new_s),
                in_q.eq(new_q),
            ]
            with m.If(in_beat == beats - 1):
                m.d.comb += [take["input"].eq(1), give["input"].eq(1), step["input"].eq(1)]
                m.d.sync += [row_s[ptr["input"]].eq(new_s), row_q[ptr["input"]].eq(new_q)]

        # --- statistics: V, normalisation, isqrt, reciprocal ---
        st_s = Signal(signed(s_width), name="stats_sum")
        st_q = Signal(q_width, name="stats_squares")
        st_v = Signal(v_width, name="stats_variance")
        st_w = Signal(32, name="stats_normalised")
        st_shift = Signal(range(64), name="stats_shift")
        count = Signal(range(_RECIP_BITS), name="stats_count")
        root = Signal(_ROOT_BITS, name="stats_root")
        root_rem = Signal(_ROOT_BITS + 3, name="stats_root_remainder")
        quotient = Signal(_RECIP_BITS, name="stats_quotient")
        div_rem = Signal(_ROOT_BITS + 2, name="stats_div_remainder")

        length = Signal(range(v_width + 1), name="stats_length")
        for k in range(v_width):
            with m.If(st_v[k]):
                m.d.comb += length.eq(k + 1)

        # One step of the restoring square root: two bits of W in, one root bit out.
        root_in = Signal(_ROOT_BITS + 3, name="stats_root_in")
        root_trial = Signal(_ROOT_BITS + 2, name="stats_root_trial")
        root_take = Signal(name="stats_root_take")
        m.d.comb += [
            root_in.eq(Cat(st_w[30:32], root_rem)),
            root_trial.eq(Cat(C(1, 2), root)),
            root_take.eq(root_in >= root_trial),
        ]
        # One step of the restoring divider of 2**31 by the root (>= 2**15).
        div_in = Signal(_ROOT_BITS + 2, name="stats_div_in")
        div_take = Signal(name="stats_div_take")
        m.d.comb += [div_in.eq(div_rem << 1), div_take.eq(div_in >= root)]

        with m.FSM(name="stats"):
            with m.State("IDLE"):
                with m.If(tokens["stats"] != 0):
                    m.d.comb += take["stats"].eq(1)
                    m.d.sync += [st_s.eq(row_s[ptr["stats"]]), st_q.eq(row_q[ptr["stats"]])]
                    m.next = "VARIANCE"
            with m.State("VARIANCE"):
                # d * Q >= S * S (Cauchy-Schwarz), so V is never negative.
                m.d.sync += st_v.eq(d * st_q - st_s * st_s + self.eps_int)
                m.next = "NORMALISE"
            with m.State("NORMALISE"):
                with m.Switch(length):
                    for k in range(v_width + 1):
                        e = 2 * ((32 - k) // 2)
                        with m.Case(k):
                            if k == 0:
                                w = C(1 << 30, 32)      # V = 0: numerics takes W = 2**30
                            elif e >= 0:
                                w = (st_v << e)[:32]
                            else:
                                w = (st_v >> -e)[:32]
                            m.d.sync += [
                                st_w.eq(w),
                                # The normalising shift less one (see the output stage).
                                st_shift.eq(30 - numerics.LN_FRAC - e // 2),
                            ]
                m.d.sync += [root.eq(0), root_rem.eq(0), count.eq(0)]
                m.next = "ROOT"
            with m.State("ROOT"):
                m.d.sync += [
                    st_w.eq(st_w << 2),
                    root_rem.eq(Mux(root_take, root_in - root_trial, root_in)),
                    root.eq(Cat(root_take, root)),
                    count.eq(count + 1),
                ]
                with m.If(count == _ROOT_BITS - 1):
                    # Bits of 2**31 above 2**16 leave 2**14 < root as the partial remainder.
                    m.d.sync += [div_rem.eq(1 << 14), count.eq(0)]
                    m.next = "RECIPROCAL"
            with m.State("RECIPROCAL"):
                m.d.sync += [
                    div_rem.eq(Mux(div_take, div_in - root, div_in)),
                    quotient.eq(Cat(div_take, quotient)),
                    count.eq(count + 1),
                ]
                with m.If(count == _RECIP_BITS - 1):
                    m.d.comb += [give["stats"].eq(1), step["stats"].eq(1)]
                    m.d.sync += [
                        row_r[ptr["stats"]].eq(Cat(div_take, quotient)),
                        row_shift[ptr["stats"]].eq(st_shift),
                    ]
                    m.next = "IDLE"

        # --- output: read the bank back and normalise ---
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        out_addr = Signal(range(depth), name="output_addr")
        out_beat = Signal(range(beats), name="output_beat")
        out_go = Signal()
        m.d.comb += out_go.eq(tokens["output"] != 0)
        with m.If(advance & out_go):
            m.d.sync += [
                out_addr.eq(wrap_increment(out_addr, depth)),
                out_beat.eq(wrap_increment(out_beat, beats)),
            ]
            with m.If(out_beat == beats - 1):
                # The last read is issued: the bank is free (later stages carry what they need).
                m.d.comb += [take["output"].eq(1), give["output"].eq(1), step["output"].eq(1)]
        read = buffer.read_port()
        gamma_read = gamma_mem.read_port()
        beta_read = beta_mem.read_port()
        for port, addr in ((read, out_addr), (gamma_read, out_beat), (beta_read, out_beat)):
            m.d.comb += [port.addr.eq(addr), port.en.eq(advance)]
        s1 = stage(m, advance, "out_read", {
            "valid": out_go, "last": out_beat == beats - 1, "sum": row_s[ptr["output"]],
            "recip": row_r[ptr["output"]], "shift": row_shift[ptr["output"]]})
        xs = data.View(vector, read.data)
        keep = {"valid": s1["valid"], "last": s1["last"]}
        s2 = stage(m, advance, "out_centred", {
            **keep, "shift": s1["shift"], "recip": s1["recip"],
            **{f"c_{n}": (d * xs[n] - s1["sum"])[:c_width].as_signed() for n in range(lanes)},
            **{f"gamma_{n}": gamma_read.data[n] for n in range(lanes)},
            **{f"beta_{n}": beta_read.data[n] for n in range(lanes)}})
        params = {key: s2[key] for key in s2 if key.startswith(("gamma", "beta"))}
        keep = {"valid": s2["valid"], "last": s2["last"]}
        s3 = stage(m, advance, "out_scaled", {
            **keep, **params, "shift": s2["shift"],
            **{f"cr_{n}": s2[f"c_{n}"] * s2["recip"] for n in range(lanes)}})
        # round_shift by s >= 3, with "shift" holding s - 1: ((v >> (s - 1)) + 1) >> 1 equals
        # (v + 2**(s - 1)) >> s, and needs no variable rounding constant.
        params = {key: s3[key] for key in s3 if key.startswith(("gamma", "beta"))}
        keep = {"valid": s3["valid"], "last": s3["last"]}
        s4 = stage(m, advance, "out_normalised", {
            **keep, **params,
            **{f"n_{n}": (((s3[f"cr_{n}"] >> s3["shift"]) + 1) >> 1)[:n_width].as_signed()
               for n in range(lanes)}})
        keep = {"valid": s4["valid"], "last": s4["last"]}
        s5 = stage(m, advance, "out_affine", {
            **keep, **{f"acc_{n}": s4[f"n_{n}"] * s4[f"gamma_{n}"] + s4[f"beta_{n}"]
                       for n in range(lanes)}})
        shift, lo, hi = self.shift, self._format.lo, self._format.hi
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(s5["valid"]), self.o.payload.last.eq(s5["last"])]
            for n in range(lanes):
                acc = s5[f"acc_{n}"]
                y = (acc + (1 << (shift - 1))) >> shift if shift else acc
                m.d.sync += self.o.payload.data[n].eq(Mux(y < lo, lo, Mux(y > hi, hi, y)))
        return m
