"""Row reorder of a computing core's drain: tiles of rows in, whole rows out, for a row-wise SFU.

A core drains a P tile as its Q tiles one after the other, each as ``rows`` row pieces, so a row
of ``N = tiles * lanes`` elements leaves in ``tiles`` pieces far apart. A softmax needs each row
whole and in order: :class:`RowReorder` collects a P tile's pieces in one of two banks and, once
the tile is complete, emits its rows piece by piece while the next tile fills the other bank.
"""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ... import timing
from ..checks import check_count
from ..logic import wrap_increment
from ..sfu.layouts import VectorLayout


__all__ = ["RowReorder"]


class RowReorder(wiring.Component):
    """Turn pieces in tile order into pieces in row order, P tile by P tile.

    The input is ``groups`` groups (P tiles) per run, repeated: group ``g`` holds ``rows`` rows
    (``last_rows`` for the last group of a run), arriving as ``tiles`` passes of one piece per
    row (piece ``t`` of every row, then piece ``t + 1``). The output is each group's rows in
    order, every row's ``tiles`` pieces one after the other, ``last`` on a row's final piece.

    Two banks of ``rows * tiles`` pieces: a group is written into a free bank and read out once
    complete, so reading one group overlaps writing the next. A group's first piece leaves two
    cycles after its last piece arrived (bank handover, then the registered read); with ``o``
    always ready the pieces then leave one per cycle. ``o`` is registered; backpressure stalls
    only the read side.

    Parameters
    ----------
    lanes : int
        Elements per piece.
    width : int
        Bits per element.
    rows, tiles, groups, last_rows : int
        As above (``1 <= last_rows <= rows``).

    Members
    -------
    i : In(stream.Signature(VectorLayout(width, lanes)))
    o : Out(stream.Signature(VectorLayout(width, lanes)))

    Attributes
    ----------
    latency : int
        Cycles from a group's last piece in to its first piece valid on ``o``: 2.
    """

    #: The cost model's (:data:`intar_hw.timing.REORDER_LATENCY`).
    latency = timing.REORDER_LATENCY

    def __init__(self, lanes, width, *, rows, tiles, groups, last_rows):
        for name, value in (("lanes", lanes), ("width", width), ("rows", rows),
                            ("tiles", tiles), ("groups", groups), ("last_rows", last_rows)):
            check_count("RowReorder", name, value)
        if last_rows > rows:
            raise ValueError(f"RowReorder last_rows must be at most rows ({rows}), "
                             f"not {last_rows!r}")
        self._lanes, self._width = lanes, width
        self._rows, self._tiles, self._groups, self._last_rows = rows, tiles, groups, last_rows
        super().__init__({
            "i": In(stream.Signature(VectorLayout(width, lanes))),
            "o": Out(stream.Signature(VectorLayout(width, lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        rows, tiles = self._rows, self._tiles
        size = rows * tiles
        m.submodules.buffer = buffer = memory.Memory(
            shape=self.i.payload.data.shape(), depth=2 * size, init=[])
        write = buffer.write_port()
        read = buffer.read_port()

        full = Signal(2)                       # per bank: a complete group waits to be read
        count = [Signal(range(rows + 1), name=f"bank{b}_rows") for b in range(2)]

        # Write side: piece t of row r goes to r * tiles + t of bank wb.
        wb = Signal()
        w_row = Signal(range(rows))
        w_tile = Signal(range(tiles))
        w_group = Signal(range(self._groups))
        w_rows = Signal(range(rows + 1))
        m.d.comb += w_rows.eq(Mux(w_group == self._groups - 1, self._last_rows, rows))
        w_addr = Signal(range(2 * size))
        w_row_base = Signal(range(size))      # r * tiles
        m.d.comb += [
            w_addr.eq(Mux(wb, size, 0) + w_row_base + w_tile),
            self.i.ready.eq(~full.bit_select(wb, 1)),
            write.addr.eq(w_addr),
            write.data.eq(self.i.payload.data),
            write.en.eq(self.i.valid & self.i.ready),
        ]
        w_end = Signal()
        m.d.comb += w_end.eq((w_row == w_rows - 1) & (w_tile == tiles - 1))
        set_full = Signal(2)
        with m.If(self.i.valid & self.i.ready):
            with m.If(w_row == w_rows - 1):
                m.d.sync += [w_row.eq(0), w_row_base.eq(0),
                             w_tile.eq(wrap_increment(w_tile, tiles))]
            with m.Else():
                m.d.sync += [w_row.eq(w_row + 1), w_row_base.eq(w_row_base + tiles)]
            with m.If(w_end):
                m.d.comb += set_full.bit_select(wb, 1).eq(1)
                m.d.sync += [wb.eq(~wb), w_group.eq(wrap_increment(w_group, self._groups))]
                for b in range(2):
                    with m.If(wb == b):
                        m.d.sync += count[b].eq(w_rows)

        # Read side: rows in order, each row's pieces in order, from bank rb.
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        rb = Signal()
        r_row = Signal(range(rows))
        r_tile = Signal(range(tiles))
        r_row_base = Signal(range(size))
        r_rows = Signal(range(rows + 1))
        m.d.comb += r_rows.eq(Mux(rb, count[1], count[0]))
        issue = Signal()
        clear_full = Signal(2)
        m.d.comb += [
            issue.eq(advance & full.bit_select(rb, 1)),
            read.addr.eq(Mux(rb, size, 0) + r_row_base + r_tile),
            read.en.eq(advance),
        ]
        with m.If(issue):
            with m.If(r_tile == tiles - 1):
                m.d.sync += r_tile.eq(0)
                with m.If(r_row == r_rows - 1):
                    m.d.sync += [r_row.eq(0), r_row_base.eq(0), rb.eq(~rb)]
                    m.d.comb += clear_full.bit_select(rb, 1).eq(1)
                with m.Else():
                    m.d.sync += [r_row.eq(r_row + 1), r_row_base.eq(r_row_base + tiles)]
            with m.Else():
                m.d.sync += r_tile.eq(r_tile + 1)
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), self.o.payload.last.eq(r_tile == tiles - 1)]
        m.d.comb += self.o.payload.data.eq(read.data)
        m.d.sync += full.eq((full | set_full) & ~clear_full)
        return m
