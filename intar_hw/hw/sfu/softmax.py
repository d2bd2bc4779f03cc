"""Row-wise integer softmax (:func:`intar_hw.numerics.softmax`) over a stream of vectors.

A softmax needs the maximum of a row before it can exponentiate any element, and the sum of the
exponentials before it can emit any probability, so each row is read three times: once from the
input (buffering it and tracking the maximum), once to sum the exponentials, once to emit. The
unit overlaps the rows of a stream in a ring of row buffers so that, in steady state, it takes
one beat per cycle: see :class:`Softmax`.
"""

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import numerics
from .layouts import VectorLayout
from ..checks import check_count, check_format
from ..logic import bank_ring, read_copies, stage, wrap_increment
from ...integers import cdiv


__all__ = ["Softmax", "multipliers"]


def multipliers(lanes, bits):
    """Multipliers (DSP blocks on an FPGA) a :class:`Softmax` of ``lanes`` lanes of ``bits``-bit
    values builds: a lane's scaling by the reciprocal, and on int16 the product of the two
    exp-table entries in each of the two exp pipelines."""
    return lanes * (1 if bits == 8 else 3)


class Softmax(wiring.Component):
    """Integer softmax of every row of a stream, bit-exact with :func:`numerics.softmax`.

    A row of ``row_length`` elements arrives as ``row_length / lanes`` beats and leaves, as
    probabilities with ``bits - 1`` fractional bits in the same format, as the same number of
    beats with ``last`` set on the final one. Rows are counted; ``i.payload.last`` is ignored.

    Algorithm (:func:`numerics.softmax`, step by step). Each row passes four stages, each
    working on a different row at the same time:

    1. **Input.** Beats are written to a row buffer while the row maximum ``m`` of the unmasked
       elements is tracked.
    2. **Exponentials.** The buffer is read back, one beat per cycle; per lane ``k = m - x``
       addresses two 256-entry ROMs holding :data:`numerics.EXP_TABLES` ``[frac]`` (low byte of
       ``k``) and :data:`numerics.EXP_HI_TABLES` ``[frac]`` (high byte, int16 only), and
       ``e = (hi * lo + 2**14) >> 15`` (int8: ``e = lo``); masked elements give 0. The ``e``
       are summed exactly.
    3. **Reciprocal.** ``r = floor(2**R / sum)`` (``R`` from :func:`numerics.softmax_constants`)
       by a restoring divider, one quotient bit per cycle. The row maximum contributes
       ``e = 2**15``, so ``sum >= 2**15`` and ``r`` has ``R - 14`` bits (16 for int8, 24 for
       int16): the divider runs ``R - 14`` cycles after a load cycle.
    4. **Output.** The buffer is read a second time, ``e`` recomputed from the same ROMs (the
       exponentials are not stored), and ``p = min((e * r + 2**22) >> 23, hi)`` emitted.

    The buffer is a ring of :attr:`banks` row buffers (one :class:`~amaranth.lib.memory.Memory`
    of ``banks * row_length / lanes`` words of ``lanes`` elements, one write and two read
    ports); a bank is taken by the input stage and handed from stage to stage until the output
    stage has read it. :attr:`banks` is the fewest for which no stage ever waits for a bank, so
    with a source that always offers a beat and a sink that is always ready the unit takes a row
    every :attr:`row_period` cycles: one beat per cycle when ``row_length / lanes >= R - 13``,
    otherwise the divider sets the pace.

    Causal mask: with ``causal``, element ``j`` of the ``i``-th row of a ``rows``-row matrix is
    masked when ``j > i`` (PyTorch's ``is_causal``); the row index counts rows modulo ``rows``,
    so consecutive matrices (heads, batches) stream back to back.

    Backpressure on ``o`` stalls only the output stage (one clock enable,
    ``advance = ~o.valid | o.ready``, on its pipeline registers and read ports); the other stages
    continue until they need a bank the output stage has not released. ``o.valid`` and
    ``o.payload`` come from registers; ``i.ready`` is a register output too.

    Parameters
    ----------
    row_length : int
        Elements per row (the softmax axis), a positive multiple of ``lanes``.
    lanes : int
        Elements per beat, at least 1.
    format : Format, str or int
        Format of the elements in and out: int8 or int16.
    frac : int or None
        Fractional bits of the input, 0 to ``bits - 1``; ``None`` means
        :func:`numerics.default_frac` (``bits - 4``).
    causal : bool
        Mask the future (see above).
    rows : int or None
        Rows per matrix for the causal mask; required when ``causal``, else ``None``.

    Members
    -------
    i : In(stream.Signature(VectorLayout(bits, lanes)))
        Rows of inputs, lane 0 first.
    o : Out(stream.Signature(VectorLayout(bits, lanes)))
        Rows of probabilities (``p * 2**(bits - 1)``), ``last`` on each row's final beat.

    Attributes
    ----------
    beats : int
        Beats per row, ``N = row_length / lanes``.
    divider_cycles : int
        Cycles the reciprocal stage spends per row: ``R - 13`` (17 for int8, 25 for int16).
    exp_latency : int
        ``L``: pipeline stages from a buffer read to its exponential: 2 for int8 (buffer read,
        ROM read), 3 for int16 (plus the registered ``hi * lo`` product).
    row_period : int
        Cycles per row in steady state: ``max(N, divider_cycles)``.
    banks : int
        Row buffers in the ring: ``ceil(T / row_period)`` for ``T = 3 * N + L + R - 12``, the
        cycles a bank is held by one row.
    latency : int
        Cycles from the transfer of a row's last beat on ``i`` to its first beat being valid on
        ``o``, the unit being idle: ``N + 2 * L + R - 9``.
    storage_bytes : int
        Bytes of the row buffer ring, ``banks * row_length * bits / 8``. The exponential ROMs
        (256 x 16 bits, one or two tables, replicated per read port by synthesis) are extra.

    Raises
    ------
    TypeError
        If ``row_length``, ``lanes``, ``frac`` or ``rows`` is not an integer, ``format`` is not a
        Format, a name or a width, or ``causal`` is not a bool.
    ValueError
        If ``lanes`` or ``rows`` is less than 1, ``row_length`` is not a positive multiple of
        ``lanes``, ``format`` is not int8 or int16, ``frac`` is out of range, or ``rows`` is
        missing for a causal softmax or given for a non-causal one.
    """

    def __init__(self, row_length, lanes=1, *, format="int8", frac=None, causal=False,
                 rows=None):
        check_count("Softmax", "lanes", lanes)
        if not isinstance(row_length, int) or isinstance(row_length, bool):
            raise TypeError(f"Softmax row_length must be an integer, not {row_length!r}")
        if row_length < 1 or row_length % lanes:
            raise ValueError(f"Softmax row_length must be a positive multiple of lanes "
                             f"({lanes}), not {row_length!r}")
        fmt = check_format("Softmax", "format", format)
        if fmt.bits not in (8, 16):
            raise ValueError(f"Softmax format must be int8 or int16, not {format!r}")
        if frac is None:
            frac = numerics.default_frac(fmt)
        elif not isinstance(frac, int) or isinstance(frac, bool):
            raise TypeError(f"Softmax frac must be an integer, not {frac!r}")
        elif not 0 <= frac < fmt.bits:
            raise ValueError(f"Softmax frac must be between 0 and {fmt.bits - 1}, not {frac!r}")
        if not isinstance(causal, bool):
            raise TypeError(f"Softmax causal must be a bool, not {causal!r}")
        if causal:
            if rows is None:
                raise ValueError("Softmax rows must be given for a causal softmax")
            check_count("Softmax", "rows", rows)
        elif rows is not None:
            raise ValueError(f"Softmax rows must be None unless causal, not {rows!r}")
        self._row_length = row_length
        self._lanes = lanes
        self._format = fmt
        self._frac = frac
        self._causal = causal
        self._rows = rows
        constants = numerics.softmax_constants(fmt)
        self._recip_bits = constants["recip_bits"]
        self._out_shift = constants["out_shift"]
        super().__init__({
            "i": In(stream.Signature(VectorLayout(fmt.bits, lanes))),
            "o": Out(stream.Signature(VectorLayout(fmt.bits, lanes))),
        })

    row_length = property(lambda self: self._row_length)
    lanes = property(lambda self: self._lanes)
    format = property(lambda self: self._format)
    frac = property(lambda self: self._frac)
    causal = property(lambda self: self._causal)
    rows = property(lambda self: self._rows)

    @property
    def beats(self):
        return self._row_length // self._lanes

    @property
    def multipliers(self):
        """Multipliers the unit builds: :func:`multipliers` of its lanes and format."""
        return multipliers(self._lanes, self._format.bits)

    @property
    def _quotient_bits(self):
        # sum >= 2**15, so floor(2**R / sum) <= 2**(R - 15): R - 14 bits.
        return self._recip_bits - 14

    @property
    def divider_cycles(self):
        return self._quotient_bits + 1

    @property
    def exp_latency(self):
        return 2 if self._format.bits == 8 else 3

    @property
    def row_period(self):
        return max(self.beats, self.divider_cycles)

    @property
    def _bank_hold(self):
        # Input N + 1 (the pipelined maximum), exponentials N + L, handover 1, divider R - 13,
        # output N (see elaborate).
        return 3 * self.beats + self.exp_latency + self._quotient_bits + 2

    @property
    def banks(self):
        return cdiv(self._bank_hold, self.row_period)

    @property
    def latency(self):
        return self.beats + 2 * self.exp_latency + self._quotient_bits + 5

    @property
    def storage_bytes(self):
        return self._format.nbytes(self.banks * self._row_length)

    def cycles(self, rows):
        """Cycles from the first beat taken on ``i`` to the last beat given on ``o``.

        For ``rows`` rows sent back to back with ``o`` always ready:
        ``(N - 1) + latency + (N - 1) + (rows - 1) * row_period``.
        """
        return 2 * (self.beats - 1) + self.latency + (rows - 1) * self.row_period

    # --- hardware ---------------------------------------------------------------------------------

    def _exp_pipeline(self, m, name, buffer, lo_roms, hi_roms, enable, issue):
        """Read the row buffer at ``issue["addr"]`` and look up ``e`` for every lane.

        ``issue`` holds ``valid``, ``addr``, ``max``, ``mask`` (one bit per lane) and any other
        values to carry along. Every register and read port advances when ``enable`` is high.
        Returns the registers of the final stage and the masked ``e`` of each lane, valid
        together :attr:`exp_latency` enabled cycles after the issue.
        """
        bits, lanes = self._format.bits, self._lanes
        port = buffer.read_port()
        m.d.comb += [port.addr.eq(issue["addr"]), port.en.eq(enable)]
        carried = {key: value for key, value in issue.items() if key != "addr"}

        # Stage 1: the buffered beat; k = m - x addresses the ROMs.
        s1 = stage(m, enable, f"{name}_read", carried)
        x = data.View(data.ArrayLayout(signed(bits), lanes), port.data)
        lo_ports, hi_ports = [], []
        for n in range(lanes):
            k = Signal(bits, name=f"{name}_k_{n}")
            # m >= x for unmasked lanes; masked lanes give garbage, zeroed below.
            m.d.comb += k.eq(s1["max"] - x[n])
            lo = lo_roms[n]
            m.d.comb += [lo.addr.eq(k[:8]), lo.en.eq(enable)]
            lo_ports.append(lo)
            if hi_roms is not None:
                hi = hi_roms[n]
                m.d.comb += [hi.addr.eq(k[8:16]), hi.en.eq(enable)]
                hi_ports.append(hi)

        # Stage 2: the table entries.
        del s1["max"]
        s2 = stage(m, enable, f"{name}_table", s1)
        if hi_roms is None:
            final, exps = s2, [port.data for port in lo_ports]
        else:
            # Stage 3 (int16): the product of the two entries, then its rounding.
            products = {f"product_{n}": hi.data * lo.data
                        for n, (hi, lo) in enumerate(zip(hi_ports, lo_ports))}
            final = stage(m, enable, f"{name}_product", {**s2, **products})
            exps = [(final.pop(f"product_{n}") + (1 << 14)) >> 15 for n in range(lanes)]
        exps = [Mux(final["mask"][n], 0, e) for n, e in enumerate(exps)]
        return final, exps

    def _mask(self, col, row):
        """Per lane, whether element ``col + lane`` of row ``row`` is masked."""
        if not self._causal:
            return C(0, self._lanes)
        return Cat(col + n > row for n in range(self._lanes))

    def elaborate(self, platform):
        m = Module()
        bits, lanes, beats, banks = self._format.bits, self._lanes, self.beats, self.banks
        depth = banks * beats
        qbits = self._quotient_bits
        sum_width = (self._row_length << numerics.EXP_FRAC).bit_length()
        row_count = self._rows if self._causal else 1

        m.submodules.buffer = buffer = memory.Memory(
            shape=data.ArrayLayout(signed(bits), lanes), depth=depth, init=[])
        # Both exponential pipelines read the tables on every lane: lane n's two reads share
        # the n-th copy of each table (read_copies pairs ports 2n and 2n + 1).
        _, lo_roms = read_copies(m, "exp_lo", 2 * lanes, shape=unsigned(16), depth=256,
                                 init=numerics.exp_table(self._frac).tolist())
        hi_roms = None if bits != 16 else read_copies(
            m, "exp_hi", 2 * lanes, shape=unsigned(16), depth=256,
            init=numerics.EXP_HI_TABLES[self._frac].tolist())[1]

        # Bank tokens: how many banks each stage may start on. A bank goes input -> exp -> div ->
        # output -> input; each stage takes a token when it starts (or finishes) with a bank and
        # gives one to the next stage when the bank is ready for it.
        names = ("input", "exp", "div", "output")
        tokens, take, give, ptr, step = bank_ring(m, names, banks)

        # Per-bank results handed from stage to stage.
        row_max = Array(Signal(signed(bits), name=f"row_max_{b}") for b in range(banks))
        row_sum = Array(Signal(sum_width, name=f"row_sum_{b}") for b in range(banks))
        row_recip = Array(Signal(qbits, name=f"row_recip_{b}") for b in range(banks))

        # --- input: buffer the row, track its maximum ---
        write = buffer.write_port()
        in_addr = Signal(range(depth), name="input_addr")
        in_beat = Signal(range(beats), name="input_beat")
        in_row = Signal(range(row_count), name="input_row")
        in_max = Signal(signed(bits), name="input_max")
        taken = Signal()
        m.d.comb += [
            self.i.ready.eq(tokens["input"] != 0),
            taken.eq(self.i.valid & self.i.ready),
            write.addr.eq(in_addr),
            write.data.eq(self.i.payload.data),
            write.en.eq(taken),
        ]
        # The maximum is pipelined: a beat's lanes meet in a tree of comparisons into a
        # register, which joins the row's running maximum in the next cycle; the bank goes to
        # the exponentials a cycle after the row's last beat, with its maximum.
        mask = self._mask(in_beat * lanes, in_row)
        level = [Mux(mask[n], self._format.lo, self.i.payload.data[n]) for n in range(lanes)]
        while len(level) > 1:
            level = [Mux(a > b, a, b) for a, b in zip(level[0::2], level[1::2])] + (
                [level[-1]] if len(level) % 2 else [])
        beat = stage(m, C(1), "input_beat", {
            "valid": taken, "max": level[0], "first": in_beat == 0,
            "last": in_beat == beats - 1, "bank": ptr["input"]})
        with m.If(taken):
            m.d.sync += [
                in_addr.eq(wrap_increment(in_addr, depth)),
                in_beat.eq(wrap_increment(in_beat, beats)),
            ]
            with m.If(in_beat == beats - 1):
                m.d.comb += [take["input"].eq(1), step["input"].eq(1)]
                m.d.sync += in_row.eq(wrap_increment(in_row, row_count))
        new_max = Signal(signed(bits), name="input_new_max")
        m.d.comb += new_max.eq(Mux(beat["first"] | (beat["max"] > in_max), beat["max"], in_max))
        with m.If(beat["valid"]):
            m.d.sync += in_max.eq(new_max)
            with m.If(beat["last"]):
                m.d.comb += give["input"].eq(1)
                m.d.sync += row_max[beat["bank"]].eq(new_max)

        # --- exponentials: read the bank back, sum e ---
        exp_addr = Signal(range(depth), name="exp_addr")
        exp_beat = Signal(range(beats), name="exp_beat")
        exp_row = Signal(range(row_count), name="exp_row")
        exp_go = Signal()
        m.d.comb += exp_go.eq(tokens["exp"] != 0)
        with m.If(exp_go):
            m.d.sync += [
                exp_addr.eq(wrap_increment(exp_addr, depth)),
                exp_beat.eq(wrap_increment(exp_beat, beats)),
            ]
            with m.If(exp_beat == beats - 1):
                m.d.comb += [take["exp"].eq(1), step["exp"].eq(1)]
                m.d.sync += exp_row.eq(wrap_increment(exp_row, row_count))
        final, exps = self._exp_pipeline(m, "exp", buffer, lo_roms[0::2],
                                         hi_roms and hi_roms[0::2], C(1), {
            "valid": exp_go, "addr": exp_addr, "max": row_max[ptr["exp"]],
            "mask": self._mask(exp_beat * lanes, exp_row), "first": exp_beat == 0,
            "last": exp_beat == beats - 1, "bank": ptr["exp"]})
        exp_sum = Signal(sum_width, name="exp_sum")
        exp_total = Signal(sum_width, name="exp_total")
        m.d.comb += exp_total.eq(Mux(final["first"], 0, exp_sum) + sum(exps))
        with m.If(final["valid"]):
            m.d.sync += exp_sum.eq(exp_total)
            with m.If(final["last"]):
                m.d.sync += row_sum[final["bank"]].eq(exp_total)
        # The exp stage hands a bank on when its sum is stored, not when its reads are issued.
        m.d.comb += give["exp"].eq(final["valid"] & final["last"])

        # --- reciprocal: restoring division of 2**R by the sum, one bit per cycle ---
        busy = Signal(name="div_busy")
        count = Signal(range(qbits), name="div_count")
        divisor = Signal(sum_width, name="div_divisor")
        remainder = Signal(sum_width + 1, name="div_remainder")
        quotient = Signal(qbits, name="div_quotient")
        shifted = Signal(sum_width + 1, name="div_shifted")
        subtract = Signal(name="div_subtract")
        m.d.comb += [
            shifted.eq(remainder << 1),
            subtract.eq(shifted >= divisor),
        ]
        load = Signal(name="div_load")
        m.d.comb += [load.eq(~busy & (tokens["div"] != 0)), take["div"].eq(load)]
        with m.If(load):
            # The bits of 2**R above 2**(R - 14) leave 2**14 < sum as the partial remainder.
            m.d.sync += [
                divisor.eq(row_sum[ptr["div"]]),
                remainder.eq(1 << 14),
                count.eq(0),
                busy.eq(1),
            ]
        with m.If(busy):
            m.d.sync += [
                remainder.eq(Mux(subtract, shifted - divisor, shifted)),
                quotient.eq(Cat(subtract, quotient)),
                count.eq(count + 1),
            ]
            with m.If(count == qbits - 1):
                m.d.comb += [give["div"].eq(1), step["div"].eq(1)]
                m.d.sync += [
                    busy.eq(0),
                    row_recip[ptr["div"]].eq(Cat(subtract, quotient)),
                ]

        # --- output: read the bank again, recompute e, multiply by the reciprocal ---
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        out_addr = Signal(range(depth), name="output_addr")
        out_beat = Signal(range(beats), name="output_beat")
        out_row = Signal(range(row_count), name="output_row")
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
                m.d.sync += out_row.eq(wrap_increment(out_row, row_count))
        final, exps = self._exp_pipeline(m, "out", buffer, lo_roms[1::2],
                                         hi_roms and hi_roms[1::2], advance, {
            "valid": out_go, "addr": out_addr, "max": row_max[ptr["output"]],
            "mask": self._mask(out_beat * lanes, out_row), "last": out_beat == beats - 1,
            "recip": row_recip[ptr["output"]]})
        products = {f"product_{n}": e * final["recip"] for n, e in enumerate(exps)}
        scaled = stage(m, advance, "out_scaled", {
            "valid": final["valid"], "last": final["last"], **products})
        shift, hi = self._out_shift, self._format.hi
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(scaled["valid"]),
                self.o.payload.last.eq(scaled["last"]),
            ]
            for n in range(lanes):
                p = (scaled[f"product_{n}"] + (1 << (shift - 1))) >> shift
                m.d.sync += self.o.payload.data[n].eq(Mux(p > hi, hi, p))
        return m
