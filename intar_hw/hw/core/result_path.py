"""Result path of a computing core: drain finished tiles row by row through the epilogue."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ..scratchpad import ReadPortSignature, WriteRequest
from ..sfu import softmax
from ..sfu.elementwise import Activation, Add, Mul, MulAdd, Requantize, activation_multipliers
from ..sfu.softmax import Softmax
from .operand_fetch import by_program
from ... import timing
from .program import BIAS_FORMAT, BIAS_LATENCY, result_bits
from .row_reorder import RowReorder
from ...integers import cdiv


__all__ = ["ResultPath", "result_multipliers"]


def _distinct(programs, key, used):
    """The distinct ``key`` of the ``programs`` that are ``used``, in first-use order: one unit
    of the path each."""
    return tuple(dict.fromkeys(getattr(p, key) for p in programs if used(p)))


def _units(programs):
    """``(activations, joins, softmaxes)``: the keys of the special-function units a
    :class:`ResultPath` of ``programs`` builds, one unit per key."""
    return (_distinct(programs, "activation_key", lambda p: p.activation is not None),
            _distinct(programs, "join_key", lambda p: p.join is not None),
            _distinct(programs, "softmax_key", lambda p: p.softmax is not None))


def result_multipliers(programs):
    """Multipliers (DSP blocks on an FPGA) the :class:`ResultPath` of ``programs`` builds in its
    special-function units: a lane each for a mul or mul_add join's product, a softmax's and an
    int16 activation's (each distinct unit once, as the path builds them)."""
    programs = tuple(programs)
    d2 = programs[0].pea[1]
    activations, joins, softmaxes = _units(programs)
    return (sum(d2 for kind, *_ in joins if kind in ("mul", "mul_add"))
            + sum(softmax.multipliers(lanes, fmt.bits) for _, lanes, fmt, *_ in softmaxes)
            + sum(activation_multipliers(d2, fmt.bits) for _, fmt, *_ in activations))


class _RowWalk:
    """Counters over the drained rows of a program: batch, P tile, Q tile, row in the tile.

    Only the valid rows of a tile are visited (``p_rem`` in the last P tile). With ``coeffs``
    (per program ``(per batch, per P row, per Q tile)`` or ``None``), :attr:`offset` is
    ``b * Sb + p * Sp + t * Sq`` for P row ``p`` and Q tile ``t``. With ``slotted``, the result
    layout of :mod:`.program` instead: :attr:`offset` is the word
    ``(b * ceil(P_rows / slots) + p // slots) * q_tiles + t`` and :attr:`slot` is ``p % slots``;
    and a program whose rows are reordered (:attr:`.GemmProgram.reorders_rows`) visits each P
    tile row by row, every row's Q tiles in turn.
    Everything rewinds to zero after the final row, ready for the next program.
    """

    def __init__(self, m, name, programs, sel, step, coeffs=None, slotted=False):
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

        # Rows inside Q tiles (the drain's order), or Q tiles inside rows (reordered programs).
        swapped = Signal(name=f"{name}_rows_outer")
        if slotted:
            self._slotted(m, name, programs, sel, step)

            def set_order(s):
                m.d.comb += swapped.eq(programs[s].reorders_rows)
            by_program(m, sel, count, set_order)

        with m.If(step):
            with m.If(self.final):
                m.d.sync += [self.b.eq(0), self.ti.eq(0), self.tj.eq(0), self.r.eq(0)]
            with m.Elif(swapped & ~self.tj_end):
                m.d.sync += self.tj.eq(self.tj + 1)
            with m.Elif(swapped & ~self.r_end):
                m.d.sync += [self.tj.eq(0), self.r.eq(self.r + 1)]
            with m.Elif(~swapped & ~self.r_end):
                m.d.sync += self.r.eq(self.r + 1)
            with m.Elif(~swapped & ~self.tj_end):
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


    def _slotted(self, m, name, programs, sel, step):
        # Row p = ti * d1 + r of batch b sits in slot p % S of local row b * ceil(P / S) + p // S;
        # ``row`` is that local row times q_tiles. Rows advance one by one within a tile; the next
        # Q tile starts again from the tile's first row (saved); the next P tile continues after
        # the last row of a full tile; the next batch starts on a fresh local row.
        count = len(programs)
        span = max(p.dest_words for p in programs) + 1
        slots = max(p.slots for p in programs)
        self.slot = Signal(range(slots), name=f"{name}_slot")
        row = Signal(range(span), name=f"{name}_row_offset")
        tile_slot = Signal(range(slots), name=f"{name}_tile_slot")
        tile_row = Signal(range(span), name=f"{name}_tile_row")
        batch_row = Signal(range(span), name=f"{name}_batch_row")
        self.offset = Signal(range(span), name=f"{name}_offset")
        self.row_offset = row
        m.d.comb += self.offset.eq(row + self.tj)
        with m.If(step):
            def advance(s):
                p = programs[s]
                S, q = p.slots, p.q_tiles
                per_batch = cdiv(p.p_rows, S) * q

                def next_row(slot_to, row_to):
                    if S == 1:
                        m.d.sync += [slot_to.eq(0), row_to.eq(row + q)]
                        return
                    with m.If(self.slot == S - 1):
                        m.d.sync += [slot_to.eq(0), row_to.eq(row + q)]
                    with m.Else():
                        m.d.sync += [slot_to.eq(self.slot + 1), row_to.eq(row)]
                with m.If(self.final):
                    m.d.sync += [self.slot.eq(0), row.eq(0), tile_slot.eq(0), tile_row.eq(0),
                                 batch_row.eq(0)]
                with m.Elif(~self.tj_end if p.reorders_rows else C(0, 1)):
                    pass                            # the next Q tile of the same row
                with m.Elif(~self.r_end):
                    next_row(self.slot, row)
                with m.Elif(~self.tj_end):
                    m.d.sync += [self.slot.eq(tile_slot), row.eq(tile_row)]
                with m.Elif(~self.ti_end):
                    next_row(self.slot, row)
                    next_row(tile_slot, tile_row)
                with m.Else():
                    m.d.sync += [self.slot.eq(0), row.eq(batch_row + per_batch),
                                 tile_slot.eq(0), tile_row.eq(batch_row + per_batch),
                                 batch_row.eq(batch_row + per_batch)]
            by_program(m, sel, count, advance)


class ResultPath(wiring.Component):
    """Drain finished tiles one PE row per cycle through the epilogue into the result memory.

    Each tile of accumulators on ``i`` is held there (``i.ready`` low) while its valid rows
    leave one per cycle; ``i.ready`` rises with the last one, so the array may finish the next
    tile meanwhile and a tile of ``rows`` valid rows occupies the path for exactly ``rows``
    cycles. A row goes through the program's epilogue, one unit per distinct configuration:

    1. :class:`~intar_hw.hw.sfu.elementwise.Requantize` (bias, shift, fused ReLU), whose bias
       stream is read ahead from the ``biases`` memory;
    2. with ``activation``, an :class:`~intar_hw.hw.sfu.elementwise.Activation` table;
    3. with ``softmax``, a :class:`~intar_hw.hw.sfu.softmax.Softmax` over the drained rows;
    4. with ``join``, an :class:`~intar_hw.hw.sfu.elementwise.Add`,
       :class:`~intar_hw.hw.sfu.elementwise.Mul` or
       :class:`~intar_hw.hw.sfu.elementwise.MulAdd` whose second operand is read ahead, row by row
       in drain order, from the slot of the same result-layout word at ``join.base`` through
       ``join``;

    and is written to the result memory at its result-layout word and slot (see
    :mod:`.program`), lanes past the last column written as 0.

    Parameters
    ----------
    programs : tuple of GemmProgram
        The programs, selected by ``stage``; all with the same ``slots``.
    accumulator_width : int
        Width of the accumulators on ``i``.
    bias_addr_width, result_addr_width : int
        Address widths of the ``biases`` and ``results`` memories.
    join_shape : (int, shape) or None
        ``(addr_width, word shape)`` of the memory the joins read, when some program joins.

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
    join : Out(ReadPortSignature(*join_shape))
        Reads of the joins' second operands; present only if some program joins.
    results : Out(stream.Signature(WriteRequest(addr_width, ArrayLayout(signed(w), slots * d2))))
        Result words (``addr_width = result_addr_width``, with an ``en`` bit per slot), ``w``
        the widest result format of the programs; the row is repeated in every slot and ``en``
        enables its own.
    settled : Out(1)
        High with a write after which the words below ``settled_level`` hold their final
        values: every word of a one-row result; for several rows, the write completing a P tile
        (every word row whose slots are all written) and the program's last write.
    settled_level : Out(range(2 ** result_addr_width + 1))
        One past the last settled word, valid with ``settled``.

    Attributes
    ----------
    latencies : tuple of int
        Per program, cycles from a row leaving ``i`` to its word being written: 1, plus
        :data:`BIAS_LATENCY` with a bias, plus :attr:`.GemmProgram.sfu_latency` (a softmax
        paces rows instead: see :func:`intar_hw.timing.softmax_busy`).
    """

    def __init__(self, programs, *, accumulator_width, bias_addr_width, result_addr_width,
                 join_shape=None):
        self._programs = tuple(programs)
        self._accumulator_width = accumulator_width
        d1, d2, _ = self._programs[0].pea
        self._slots = self._programs[0].slots
        self._epilogues = _distinct(self._programs, "epilogue", lambda p: True)
        self._activations, self._joins, self._softmaxes = _units(self._programs)
        self._reorders = _distinct(self._programs, "reorder_key", lambda p: p.reorders_rows)
        self._result_width = result_bits(self._programs)
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
        if self._joins:
            members["join"] = Out(ReadPortSignature(*join_shape))
        members["results"] = Out(stream.Signature(WriteRequest(
            result_addr_width, data.ArrayLayout(signed(self._result_width), self._slots * d2),
            self._slots)))
        members["settled"] = Out(1)
        members["settled_level"] = Out(range(2 ** result_addr_width + 1))
        super().__init__(members)

    @property
    def programs(self):
        return self._programs

    @property
    def latencies(self):
        return tuple(1 + (BIAS_LATENCY if p.bias_base is not None else 0) + p.sfu_latency
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
        activations = []
        for a, (function, fmt, frac, approximate) in enumerate(self._activations):
            unit = Activation(d2, function, format=fmt, frac=frac, approximate=approximate)
            m.submodules[f"activation_{a}"] = unit
            activations.append(unit)
        softmaxes = []
        for n, (N, lanes, fmt, frac, causal, rows) in enumerate(self._softmaxes):
            unit = Softmax(N, lanes, format=fmt, frac=frac, causal=causal, rows=rows)
            # The cycle counts of the cost model assume this unit's timing.
            assert timing.softmax_timing(N, lanes, fmt.bits) == (unit.beats, unit.row_period,
                                                               unit.latency)
            m.submodules[f"softmax_{n}"] = unit
            softmaxes.append(unit)
        reorders = []
        for n, (lanes, width, rows, tiles, groups, last_rows) in enumerate(self._reorders):
            unit = RowReorder(lanes, width, rows=rows, tiles=tiles, groups=groups,
                              last_rows=last_rows)
            m.submodules[f"reorder_{n}"] = unit
            reorders.append(unit)
        joins = []
        for j, (kind, fmt, shift, out_format) in enumerate(self._joins):
            if kind == "mul":
                unit = Mul(d2, a_format=fmt, shift=shift, out_format=out_format)
            elif kind == "mul_add":
                unit = MulAdd(d2, a_format=fmt, shift=shift, product_format=out_format,
                              out_format=out_format)
            else:
                unit = Add(d2, a_format=fmt, out_format=out_format)
            m.submodules[f"join_{j}"] = unit
            joins.append(unit)
        # What result_multipliers counts is what is built.
        assert sum(unit.multipliers for unit in (*activations, *softmaxes, *joins)) == \
            result_multipliers(self._programs)
        def activation_of(p):
            return activations[self._activations.index(p.activation_key)]

        def join_of(p):
            return joins[self._joins.index(p.join_key)]
        for p in programs:
            # The cycle counts of .program (and the cost model) assume these latencies.
            units = ([activation_of(p)] if p.activation is not None else []) + (
                [join_of(p)] if p.join is not None else [])
            assert p.sfu_latency == sum(unit.latency for unit in units)
        unit_of = [self._epilogues.index(p.epilogue) for p in programs]
        for unit in requantizers + activations + reorders + softmaxes:
            m.d.comb += [unit.i.valid.eq(0), unit.o.ready.eq(0)]
        for unit in requantizers:
            if "bias" in unit.signature.members:
                m.d.comb += unit.bias.valid.eq(0)
        for unit in joins:
            m.d.comb += [unit.a.valid.eq(0), unit.b.valid.eq(0), unit.o.ready.eq(0)]

        def read_ahead(name, port, used, **walk_args):
            # Requests on ``port``, one per drained row of a program that ``used``, from its
            # start until the walk's final row; returns the walk and the request strobe.
            on = Signal(name=f"{name}_on")
            request = Signal(name=f"{name}_request")
            m.d.comb += request.eq(port.req.valid & port.req.ready)
            walk = _RowWalk(m, name, programs, sel, request, **walk_args)
            with m.If(accept):
                def start(s):
                    m.d.sync += on.eq(used(programs[s]))
                by_program(m, self.stage, count, start)
            with m.Elif(request & walk.final):
                m.d.sync += on.eq(0)
            m.d.comb += port.req.valid.eq(on)
            return walk, request

        # Bias reads run ahead of the drain: one word per drained row, in drain order.
        if "biases" in self.signature.members:
            coeffs = [None if p.bias_base is None else
                      ((0, 0, 1) if p.orientation == "MN" else (0, 1, 0)) for p in programs]
            walk, _ = read_ahead("bias", self.biases, lambda p: p.bias_base is not None,
                                 coeffs=coeffs)

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

        # Join operands are read ahead too: the slot of the same word, one per drained row.
        if joins:
            walk, request = read_ahead("join", self.join, lambda p: p.join is not None,
                                       slotted=True)
            join_slot = Signal.like(walk.slot)
            with m.If(request):
                m.d.sync += join_slot.eq(walk.slot)
            width = self.join.resp.payload.data.shape().elem_shape.width

            def route_join(s):
                p = programs[s]
                if p.join is None:
                    return
                unit = join_of(p)
                m.d.comb += [
                    self.join.req.payload.addr.eq(p.join.base + walk.offset),
                    unit.b.valid.eq(self.join.resp.valid),
                    self.join.resp.ready.eq(unit.b.ready),
                ]
                picked = self.join.resp.payload.data.as_value().word_select(join_slot,
                                                                          width * d2)
                for c in range(d2):
                    m.d.comb += unit.b.payload.data[c].eq(
                        picked[c * width:(c + 1) * width].as_signed())
            by_program(m, sel, count, route_join)

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

        # The writer: the epilogue's rows, at their result-layout words and slots.
        written = Signal()
        m.d.comb += written.eq(self.results.valid & self.results.ready)
        writer = _RowWalk(m, "write", programs, sel, written, slotted=True)
        masked = sorted({c for p in programs for c in range(p.q_rem, d2)})
        keep = Signal(d2, init=(1 << d2) - 1)
        out = Signal(data.ArrayLayout(signed(self._result_width), d2))

        def feed(tail, unit, sink="i"):
            # One stream into the next unit, the lanes both have (a softmax of rows shorter than
            # d2 takes the first N); returns the unit's output.
            sink = getattr(unit, sink)
            lanes = min(tail.payload.data.shape().length, sink.payload.data.shape().length)
            m.d.comb += [sink.valid.eq(tail.valid), tail.ready.eq(sink.ready),
                         sink.payload.last.eq(tail.payload.last)]
            m.d.comb += [sink.payload.data[c].eq(tail.payload.data[c]) for c in range(lanes)]
            return unit.o

        def route(s):
            p = programs[s]
            unit = requantizers[unit_of[s]]
            m.d.comb += [
                unit.i.valid.eq(self.i.valid),
                unit.i.payload.data.eq(row),
                unit.i.payload.last.eq(drain.final),
                drain_ready.eq(unit.i.ready),
            ]
            # Requantiser -> activation -> softmax -> join -> writer, each a stream.
            tail = unit.o
            if p.activation is not None:
                tail = feed(tail, activation_of(p))
            if p.reorders_rows:
                tail = feed(tail, reorders[self._reorders.index(p.reorder_key)])
            if p.softmax is not None:
                tail = feed(tail, softmaxes[self._softmaxes.index(p.softmax_key)])
            if p.join is not None:
                tail = feed(tail, join_of(p), "a")
            m.d.comb += [
                self.results.valid.eq(tail.valid),
                tail.ready.eq(self.results.ready),
                self.results.payload.addr.eq(p.dest_base + writer.offset),
            ]
            for c in range(min(d2, tail.payload.data.shape().length)):
                m.d.comb += out[c].eq(tail.payload.data[c])
            if masked:
                m.d.comb += keep.eq(Mux(writer.tj_end, (1 << p.q_rem) - 1, (1 << d2) - 1))
        by_program(m, sel, count, route)
        for c in masked:
            # Columns past the edge of the last Q tile are written as 0.
            with m.If(~keep[c]):
                m.d.comb += out[c].eq(0)
        # The row goes into every slot; only its own is enabled.
        for slot in range(self._slots):
            for c in range(d2):
                m.d.comb += self.results.payload.data[slot * d2 + c].eq(out[c])
        if self._slots > 1:
            m.d.comb += self.results.payload.en.eq(1 << writer.slot)

        m.d.comb += self.done.eq(self.busy & written & writer.final)

        # Which words a write settles: readers of this memory wait for them (results_level).
        def settle(s):
            p = programs[s]
            if p.p_rows == 1:
                m.d.comb += [self.settled.eq(written),
                             self.settled_level.eq(self.results.payload.addr + 1)]
                return
            with m.If(written & writer.final):
                m.d.comb += [self.settled.eq(1),
                             self.settled_level.eq(p.dest_base + p.dest_words)]
            with m.Elif(written & writer.r_end & writer.tj_end):
                # The word rows up to this row's are complete if its slot is the last one (or it
                # is a batch's last row).
                full = writer.row_offset + p.q_tiles
                if p.slots > 1:
                    full = Mux((writer.slot == p.slots - 1) | writer.ti_end, full,
                               writer.row_offset)
                m.d.comb += [self.settled.eq(1), self.settled_level.eq(p.dest_base + full)]
        by_program(m, sel, count, settle)
        return m
