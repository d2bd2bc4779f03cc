"""Result path of a computing core: drain finished tiles row by row through the epilogue."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..scratchpad import ReadPortSignature, WriteRequest
from ..sfu.elementwise import Requantize
from .operand_fetch import by_program
from .program import BIAS_FORMAT, BIAS_LATENCY


__all__ = ["ResultPath"]


class _RowWalk:
    """Counters over the drained rows of a program: batch, P tile, Q tile, row in the tile.

    Only the valid rows of a tile are visited (``p_rem`` in the last P tile). With ``coeffs``
    (per program ``(per batch, per P row, per Q tile)`` or ``None``), :attr:`offset` is
    ``b * Sb + p * Sp + t * Sq`` for P row ``p`` and Q tile ``t``. Everything rewinds to zero
    after the final row, ready for the next program.
    """

    def __init__(self, m, name, programs, sel, step, coeffs=None):
        count = len(programs)
        d1 = programs[0].pea[0]
        self.b = Signal(range(max(p.batch for p in programs)), name=f"{name}_batch")
        self.ti = Signal(range(max(p.p_tiles for p in programs)), name=f"{name}_p_tile")
        self.tj = Signal(range(max(p.q_tiles for p in programs)), name=f"{name}_q_tile")
        self.r = Signal(range(d1), name=f"{name}_row")
        ends = [Signal(name=f"{name}_{what}_end") for what in ("batch", "p_tile", "q_tile", "row")]
        self.b_end, self.ti_end, self.tj_end, self.r_end = ends

        def set_ends(s):
            p = programs[s]
            m.d.comb += [
                self.b_end.eq(self.b == p.batch - 1),
                self.ti_end.eq(self.ti == p.p_tiles - 1),
                self.tj_end.eq(self.tj == p.q_tiles - 1),
                self.r_end.eq(self.r == Mux(self.ti_end, p.p_rem - 1, d1 - 1)),
            ]
        by_program(m, sel, count, set_ends)
        self.final = Cat(*ends).all()

        self.offset = None
        if coeffs is not None:
            coeffs = [c or (0, 0, 0) for c in coeffs]
            span = max(p.batch * Sb + p.p_rows * Sp + p.q_tiles * Sq
                       for p, (Sb, Sp, Sq) in zip(programs, coeffs))
            self.offset = Signal(range(span), name=f"{name}_offset")
            tile = Signal(range(span), name=f"{name}_tile_offset")

        with m.If(step):
            with m.If(self.final):
                m.d.sync += [self.b.eq(0), self.ti.eq(0), self.tj.eq(0), self.r.eq(0)]
            with m.Elif(~self.r_end):
                m.d.sync += self.r.eq(self.r + 1)
            with m.Elif(~self.tj_end):
                m.d.sync += [self.r.eq(0), self.tj.eq(self.tj + 1)]
            with m.Elif(~self.ti_end):
                m.d.sync += [self.r.eq(0), self.tj.eq(0), self.ti.eq(self.ti + 1)]
            with m.Else():
                m.d.sync += [self.r.eq(0), self.tj.eq(0), self.ti.eq(0), self.b.eq(self.b + 1)]

            if coeffs is not None:
                def advance(s):
                    p = programs[s]
                    Sb, Sp, Sq = coeffs[s]
                    # Tile to tile: the next Q tile, the next P tile or the next batch.
                    next_q = Sq
                    next_p = d1 * Sp - (p.q_tiles - 1) * Sq
                    next_b = Sb - (p.p_tiles - 1) * d1 * Sp - (p.q_tiles - 1) * Sq
                    with m.If(self.final):
                        m.d.sync += [self.offset.eq(0), tile.eq(0)]
                    with m.Elif(~self.r_end):
                        if Sp:
                            m.d.sync += self.offset.eq(self.offset + Sp)
                    for end, delta in ((self.tj_end, next_q), (self.ti_end, next_p),
                                       (self.b_end, next_b)):
                        with m.Elif(~end):
                            m.d.sync += [tile.eq(tile + delta), self.offset.eq(tile + delta)]
                by_program(m, sel, count, advance)


class ResultPath(wiring.Component):
    """Drain finished tiles one PE row per cycle through bias, requantisation and ReLU.

    Each tile of accumulators on ``i`` is held there (``i.ready`` low) while its valid rows
    leave one per cycle; ``i.ready`` rises with the last one, so the array may finish the next
    tile meanwhile and a tile of ``rows`` valid rows occupies the path for exactly ``rows``
    cycles. A row goes through the program's :class:`~intar_hw.hw.sfu.elementwise.Requantize`
    (one per distinct epilogue ``(shift, out_format, relu, bias)``), whose bias stream is read
    ahead from the ``biases`` memory, and is written to the result memory at its row-major
    address (see :mod:`.program`), lanes past the last column written as 0.

    Parameters
    ----------
    programs : tuple of GemmProgram
        The programs, selected by ``stage``.
    accumulator_width : int
        Width of the accumulators on ``i``.
    bias_addr_width, result_addr_width : int
        Address widths of the ``biases`` and ``results`` memories.

    Members
    -------
    start : In(1)
        Starts program ``stage``; honoured when ``busy`` is low.
    stage : In(range(len(programs)))
        The program to start.
    busy : Out(1)
        High from the cycle after an honoured ``start`` to the cycle of ``done``, included.
    done : Out(1)
        High for one cycle, the cycle the program's last result word is written (it is readable
        from the next cycle).
    i : In(stream.Signature(ArrayLayout(ArrayLayout(signed(accumulator_width), d2), d1)))
        Finished tiles from the PE array.
    biases : Out(ReadPortSignature(bias_addr_width, ArrayLayout(signed(32), d2)))
        Bias reads; present only if some program has a bias.
    results : Out(stream.Signature(WriteRequest(result_addr_width, ArrayLayout(signed(w), d2))))
        Result words, ``w`` the widest ``out_format`` of the programs.

    Attributes
    ----------
    latencies : tuple of int
        Per program, cycles from a row leaving ``i`` to its word being written: 1, or 2 with a
        bias (the latency of its ``Requantize``).
    """

    def __init__(self, programs, *, accumulator_width, bias_addr_width, result_addr_width):
        self._programs = tuple(programs)
        self._accumulator_width = accumulator_width
        d1, d2, _ = self._programs[0].pea
        self._epilogues = tuple(dict.fromkeys(p.epilogue for p in self._programs))
        self._result_width = max(p.out_format.bits for p in self._programs)
        tile = data.ArrayLayout(data.ArrayLayout(signed(accumulator_width), d2), d1)
        members = {
            "start": In(1),
            "stage": In(range(len(self._programs))),
            "busy": Out(1),
            "done": Out(1),
            "i": In(stream.Signature(tile)),
        }
        if any(p.bias_base is not None for p in self._programs):
            members["biases"] = Out(ReadPortSignature(
                bias_addr_width, data.ArrayLayout(signed(BIAS_FORMAT.bits), d2)))
        members["results"] = Out(stream.Signature(WriteRequest(
            result_addr_width, data.ArrayLayout(signed(self._result_width), d2))))
        super().__init__(members)

    @property
    def programs(self):
        return self._programs

    @property
    def latencies(self):
        return tuple(1 + (BIAS_LATENCY if p.bias_base is not None else 0)
                     for p in self._programs)

    def elaborate(self, platform):
        m = Module()
        programs = self._programs
        count = len(programs)
        d1, d2, _ = programs[0].pea

        accept = Signal()
        sel = Signal(range(count), name="sel")
        m.d.comb += accept.eq(self.start & ~self.busy)
        with m.If(accept):
            m.d.sync += [sel.eq(self.stage), self.busy.eq(1)]
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)

        requantizers = []
        for e, (shift, fmt, relu, has_bias) in enumerate(self._epilogues):
            unit = Requantize(d2, in_format=self._accumulator_width, shift=shift,
                              out_format=fmt, bias_format=BIAS_FORMAT if has_bias else None,
                              relu=relu)
            # The cycle counts of .program assume these latencies.
            assert unit.latency == 1 + (BIAS_LATENCY if has_bias else 0)
            m.submodules[f"requantize_{e}"] = unit
            requantizers.append(unit)
        unit_of = [self._epilogues.index(p.epilogue) for p in programs]
        for unit in requantizers:
            m.d.comb += [unit.i.valid.eq(0), unit.o.ready.eq(0)]
            if "bias" in unit.signature.members:
                m.d.comb += unit.bias.valid.eq(0)

        # Bias reads run ahead of the drain: one word per drained row, in drain order.
        if "biases" in self.signature.members:
            bias_on = Signal()
            request = Signal()
            m.d.comb += request.eq(self.biases.req.valid & self.biases.req.ready)
            coeffs = [None if p.bias_base is None else
                      ((0, 0, 1) if p.orientation == "MN" else (0, 1, 0)) for p in programs]
            walk = _RowWalk(m, "bias", programs, sel, request, coeffs)
            with m.If(accept):
                def start_bias(s):
                    m.d.sync += bias_on.eq(programs[s].bias_base is not None)
                by_program(m, self.stage, count, start_bias)
            with m.Elif(request & walk.final):
                m.d.sync += bias_on.eq(0)
            m.d.comb += self.biases.req.valid.eq(bias_on)

            def route_bias(s):
                p = programs[s]
                if p.bias_base is None:
                    return
                unit = requantizers[unit_of[s]]
                m.d.comb += [
                    self.biases.req.payload.addr.eq(p.bias_base + walk.offset),
                    unit.bias.valid.eq(self.biases.resp.valid),
                    self.biases.resp.ready.eq(unit.bias.ready),
                ]
                word = self.biases.resp.payload.data
                for c in range(d2):
                    # "NM": the drained row is one output column, its bias broadcast.
                    m.d.comb += unit.bias.payload.data[c].eq(
                        word[c] if p.orientation == "MN" else word[0])
            by_program(m, sel, count, route_bias)

        # The drain: the valid rows of the tile on i, one per cycle.
        drained = Signal()
        drain_ready = Signal()
        drain = _RowWalk(m, "drain", programs, sel, drained)
        row = Signal(data.ArrayLayout(signed(self._accumulator_width), d2))
        with m.Switch(drain.r):
            for r in range(d1):
                with m.Case(r):
                    m.d.comb += row.eq(self.i.payload[r])
        m.d.comb += [
            drained.eq(self.i.valid & drain_ready),
            self.i.ready.eq(drained & drain.r_end),
        ]

        def route_drain(s):
            unit = requantizers[unit_of[s]]
            m.d.comb += [
                unit.i.valid.eq(self.i.valid),
                unit.i.payload.data.eq(row),
                unit.i.payload.last.eq(drain.final),
                drain_ready.eq(unit.i.ready),
            ]
        by_program(m, sel, count, route_drain)

        # The writer: the requantised rows, at their row-major addresses.
        written = Signal()
        m.d.comb += written.eq(self.results.valid & self.results.ready)
        writer = _RowWalk(m, "write", programs, sel, written,
                          [(p.p_rows * p.q_tiles, p.q_tiles, 1) for p in programs])
        masked = sorted({c for p in programs for c in range(p.q_rem, d2)})
        keep = Signal(d2, init=(1 << d2) - 1)

        def route_write(s):
            p = programs[s]
            unit = requantizers[unit_of[s]]
            m.d.comb += [
                self.results.valid.eq(unit.o.valid),
                unit.o.ready.eq(self.results.ready),
                self.results.payload.addr.eq(p.dest_base + writer.offset),
            ]
            for c in range(d2):
                m.d.comb += self.results.payload.data[c].eq(unit.o.payload.data[c])
            if masked:
                m.d.comb += keep.eq(Mux(writer.tj_end, (1 << p.q_rem) - 1, (1 << d2) - 1))
        by_program(m, sel, count, route_write)
        for c in masked:
            # Columns past the edge of the last Q tile are written as 0.
            with m.If(~keep[c]):
                m.d.comb += self.results.payload.data[c].eq(0)

        m.d.comb += self.done.eq(self.busy & written & writer.final)
        return m
