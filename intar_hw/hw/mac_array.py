from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2
from .checks import check_count
from .pipe import RegisterSlice
from .tech import ecp5_multiplier, family_of
from ..integers import cdiv


__all__ = ["accumulator_width", "OPERAND_WIDTHS", "MACBeatLayout", "MACArray"]


#: Operand widths the array supports, in bits (signed two's complement).
OPERAND_WIDTHS = (4, 8, 16)


def _check_operand_width(owner, name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if value not in OPERAND_WIDTHS:
        raise ValueError(f"{owner} {name} must be 4, 8 or 16, not {value!r}")


def accumulator_width(operand_width, max_reduction, depth=1):
    """Bits of a :class:`MACArray` accumulator: the narrowest that cannot overflow.

    ``2 * operand_width - 1 + ceil_log2(K + 1)`` for ``K`` = ``max_reduction`` rounded up to whole
    beats of ``depth`` products (derived in the Notes of :class:`MACArray`).
    """
    products = cdiv(max_reduction, depth) * depth
    return 2 * operand_width - 1 + ceil_log2(products + 1)


class MACBeatLayout(data.StructLayout):
    """Payload of one input beat of a :class:`MACArray`: one operand vector per row and column.

    Parameters
    ----------
    rows : int
        Number of rows (``d1``) of the array, at least 1.
    cols : int
        Number of columns (``d2``) of the array, at least 1.
    depth : int
        Dot-product depth (``d3``): operand pairs each processing element multiplies per beat.
    width : int
        Operand width in bits: 4, 8 or 16.

    Members
    -------
    a : ArrayLayout(ArrayLayout(signed(width), depth), rows)
        ``a[r][k]``: the ``k``-th operand of row ``r``, shared along the row.
    b : ArrayLayout(ArrayLayout(signed(width), depth), cols)
        ``b[c][k]``: the ``k``-th operand of column ``c``, shared along the column.
    last : unsigned(1)
        Set on the final beat of a reduction; the finished tile is emitted after it.

    Raises
    ------
    TypeError
        If any parameter is not an integer.
    ValueError
        If ``rows``, ``cols`` or ``depth`` is less than 1, or ``width`` is not 4, 8 or 16.
    """

    def __init__(self, rows, cols, depth, width):
        for name, value in (("rows", rows), ("cols", cols), ("depth", depth)):
            check_count("MACBeatLayout", name, value)
        _check_operand_width("MACBeatLayout", "width", width)
        self._rows, self._cols, self._depth, self._width = rows, cols, depth, width
        operands = data.ArrayLayout(signed(width), depth)
        super().__init__({
            "a": data.ArrayLayout(operands, rows),
            "b": data.ArrayLayout(operands, cols),
            "last": 1,
        })

    @property
    def rows(self):
        return self._rows

    @property
    def cols(self):
        return self._cols

    @property
    def depth(self):
        return self._depth

    @property
    def width(self):
        return self._width

    def __repr__(self):
        return f"MACBeatLayout({self._rows}, {self._cols}, {self._depth}, {self._width})"


class MACArray(wiring.Component):
    """A ``rows`` x ``cols`` output-stationary tile of signed multiply-accumulate elements.

    Each input beat carries ``depth`` operands per row (``a``) and per column (``b``). Processing
    element ``(r, c)`` adds ``sum(a[r][k] * b[c][k] for k in range(depth))`` to its accumulator;
    the beat with ``last`` set ends the reduction, and the finished ``rows`` x ``cols`` tile of
    sums leaves on ``o`` as one beat while the accumulators start the next reduction from zero.
    A reduction of ``n`` beats thus computes ``A @ B.T`` for ``A`` of shape ``(rows, n * depth)``
    and ``B`` of shape ``(cols, n * depth)``.

    The datapath is a three-stage pipeline shaped for FPGA DSP blocks: registered multiplier inputs,
    registered products (elaborated for an ECP5, see :mod:`.tech`: the input and output registers of
    one ``MULT18X18D`` per product), then the accumulators, whose sum on a ``last`` beat goes to
    one of two result registers taken in turn (a :class:`~.pipe.RegisterSlice`). Finished tiles
    wait there on ``o`` while the next reductions accumulate, so with ``o`` always ready the array
    takes one beat per cycle, even when every beat ends a reduction. The pipeline stalls (and
    ``i.ready`` falls) only when a ``last`` beat reaches the accumulators while both result
    registers hold tiles; no tile is ever dropped or repeated. ``o.valid`` and ``i.ready`` are
    functions of registers alone: the sink's ``o.ready`` does not reach the pipeline's enable (the
    clock enable of every DSP block and accumulator).

    Parameters
    ----------
    rows : int
        Number of rows (``d1``), at least 1.
    cols : int
        Number of columns (``d2``), at least 1.
    depth : int
        Dot-product depth (``d3``): operand pairs each element multiplies and sums per beat.
    operand_width : int
        Width of the signed two's complement operands: 4, 8 or 16 bits.
    max_reduction : int
        Longest reduction to support, in products summed into one output (``beats * depth``).
        It is rounded up to a whole number of beats. Longer reductions wrap modulo
        ``2**accumulator_width``.
    live : tuple of 3 int, optional
        ``(rows, cols, depth)`` of the elements and operand pairs anyone uses (default: all).
        Only those are built: an element outside sums to zero, as do the operand pairs past
        ``depth``, so a core whose programs never fill its array spends no multiplier on lanes
        that only ever see padding.

    Members
    -------
    i : In(stream.Signature(MACBeatLayout(rows, cols, depth, operand_width)))
        Operand beats; see :class:`MACBeatLayout`.
    o : Out(stream.Signature(ArrayLayout(ArrayLayout(signed(accumulator_width), cols), rows)))
        One beat per reduction: ``o.payload[r][c]`` is the sum of element ``(r, c)``.

    Attributes
    ----------
    latency : int
        Cycles from the transfer of a ``last`` beat on ``i`` to its tile being valid on ``o``,
        when the result register is free: 3 (multiplier inputs, products, result register).
    accumulator_width : int
        Width of each signed sum: ``2 * operand_width - 1 + ceil_log2(K + 1)`` for
        ``K = ceil(max_reduction / depth) * depth``, the narrowest that no reduction of up to ``K``
        products can overflow (see Notes).

    Raises
    ------
    TypeError
        If any parameter is not an integer.
    ValueError
        If ``rows``, ``cols``, ``depth`` or ``max_reduction`` is less than 1, or
        ``operand_width`` is not 4, 8 or 16.

    Notes
    -----
    Accumulator width. A signed ``w``-bit operand lies in ``[-2**(w-1), 2**(w-1) - 1]``, so one
    product lies in ``[-2**(2w-2) + 2**(w-1), 2**(2w-2)]``: the positive extreme, reached only by
    ``(-2**(w-1))**2``, outweighs the negative one. A sum of ``K`` products lies in
    ``[-K * (2**(2w-2) - 2**(w-1)), K * 2**(2w-2)]``, and a signed ``W``-bit register holds it iff
    ``K * 2**(2w-2) < 2**(W-1)``, i.e. ``K < 2**(W-2w+1)``, i.e. ``W >= 2w - 1 + ceil_log2(K + 1)``.
    That is never wider than the rule of thumb ``2w + ceil_log2(K)`` and one bit narrower unless
    ``K`` is a power of two (``K = 1`` gives ``2w``, ``K = 3`` gives ``2w + 1``, ``K = 4`` gives
    ``2w + 2``). Partial sums are sums of fewer products and fit as well.
    """

    latency = 3

    def __init__(self, rows, cols, *, depth=1, operand_width=8, max_reduction, live=None):
        for name, value in (("rows", rows), ("cols", cols), ("depth", depth)):
            check_count("MACArray", name, value)
        _check_operand_width("MACArray", "operand_width", operand_width)
        check_count("MACArray", "max_reduction", max_reduction)
        if live is None:
            live = (rows, cols, depth)
        if (not isinstance(live, tuple) or len(live) != 3
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in live)):
            raise TypeError(f"MACArray live must be a tuple of 3 integers, not {live!r}")
        if not all(1 <= n <= full for n, full in zip(live, (rows, cols, depth))):
            raise ValueError(f"MACArray live must lie within (1, 1, 1) and "
                             f"{(rows, cols, depth)!r}, not {live!r}")
        self._live = live
        self._rows = rows
        self._cols = cols
        self._depth = depth
        self._operand_width = operand_width
        self._max_reduction = max_reduction
        self._accumulator_width = accumulator_width(operand_width, max_reduction, depth)
        tile = data.ArrayLayout(data.ArrayLayout(signed(self._accumulator_width), cols), rows)
        super().__init__({
            "i": In(stream.Signature(MACBeatLayout(rows, cols, depth, operand_width))),
            "o": Out(stream.Signature(tile)),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def cols(self):
        return self._cols

    @property
    def depth(self):
        return self._depth

    @property
    def operand_width(self):
        return self._operand_width

    @property
    def max_reduction(self):
        return self._max_reduction

    @property
    def accumulator_width(self):
        return self._accumulator_width

    @property
    def live(self):
        return self._live

    @property
    def multipliers(self):
        """Multipliers built: the live rows x columns x depth."""
        return self._live[0] * self._live[1] * self._live[2]

    def elaborate(self, platform):
        m = Module()
        rows, cols, depth = self._rows, self._cols, self._depth
        beat = self.i.payload.shape()

        # One enable for the whole pipeline (DSP blocks have clock enables on every register).
        advance = Signal()

        # Stage 1: multiplier inputs.
        operands = Signal(beat)
        operands_valid = Signal()
        # Stage 2: products.
        products = [[[Signal(signed(2 * self._operand_width), name=f"product_{r}_{c}_{k}")
                      for k in range(depth)] for c in range(cols)] for r in range(rows)]
        products_valid = Signal()
        products_last = Signal()
        # Stage 3: accumulators, then the result registers (which drive o).
        accumulators = [[Signal(signed(self._accumulator_width), name=f"accumulator_{r}_{c}")
                         for c in range(cols)] for r in range(rows)]

        # On an ECP5 the multiplier inputs and products are the DSP blocks' own registers
        # (same enable, same latency); the fabric copies above are then left unused.
        dsp_blocks = family_of(platform) == "ecp5"
        live_rows, live_cols, live_depth = self._live
        if dsp_blocks:
            for r in range(live_rows):
                for c in range(live_cols):
                    for k in range(live_depth):
                        ecp5_multiplier(m, f"mult_{r}_{c}_{k}", self.i.payload.a[r][k],
                                        self.i.payload.b[c][k], products[r][c][k], advance)
        # Finished tiles go to two result registers taken in turn; a last beat needs one free.
        m.submodules.results = results = RegisterSlice(self.o.payload.shape())
        wiring.connect(m, results.o, wiring.flipped(self.o))
        finishing = products_valid & products_last
        m.d.comb += [
            advance.eq(~finishing | results.i.ready),
            self.i.ready.eq(advance),
            results.i.valid.eq(finishing),
        ]
        with m.If(advance):
            m.d.sync += [
                operands.eq(self.i.payload),
                operands_valid.eq(self.i.valid),
                products_valid.eq(operands_valid),
                products_last.eq(operands.last),
            ]
            if not dsp_blocks:
                for r in range(live_rows):
                    for c in range(live_cols):
                        for k in range(live_depth):
                            m.d.sync += products[r][c][k].eq(operands.a[r][k] *
                                                             operands.b[c][k])
        for r in range(live_rows):
            for c in range(live_cols):
                # Exact: the sum of at most max_reduction products fits (see Notes).
                total = sum(products[r][c][:live_depth], accumulators[r][c])
                m.d.comb += results.i.payload[r][c].eq(total)
                with m.If(advance & products_valid):
                    m.d.sync += accumulators[r][c].eq(Mux(products_last, 0, total))
        return m
