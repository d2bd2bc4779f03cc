"""The window reader: a convolution's im2col operand served from the memory holding its input."""

import dataclasses

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In
from amaranth.utils import ceil_log2

from ..arith import divide_constant, multiply_constant
from ..logic import read_copies
from ..scratchpad import WriteRequest
from .operand_fetch import window_port
from .window import Window
from .window_banks import banks_pay, plan_banks


__all__ = ["WindowReader"]


def _keeper(m, prefix, kept):
    """A ``keep`` for :meth:`.window.Window.locate`: each value in a signal of its own, one
    signal for every equal expression (``kept``, shared by the elements of a word: what
    depends only on an element's row is computed once per row, only on its column once per
    column, instead of once per element)."""
    def keep(value, name, bound=None):
        if isinstance(value, (int, bool)):
            return value
        value = Value.cast(value)
        key = (repr(value), bound)
        if key not in kept:
            # A bounded value needs only its bits (the shapes of the arithmetic are wider).
            shape = value.shape() if bound is None else range(max(bound, 1))
            kept[key] = Signal(shape, name=f"{prefix}_{name}{len(kept)}")
            m.d.comb += kept[key].eq(value)
        return kept[key]
    return keep


def _divide(a, b):
    """``(a // b, a % b)`` for :meth:`.window.Window.locate`: without a divider when ``a`` is
    unsigned (every bounded value is), else the operators."""
    a = Value.cast(a)
    if a.shape().signed:
        return a // b, a % b
    return divide_constant(a, b)


def _bank(plan, word):
    """:meth:`.window_banks.BankPlan.bank` of an unsigned Amaranth value, with the skew's
    multiplication as shift-adds on the bits that count (no DSP block)."""
    low = plan.banks - 1
    if plan.skew == 0 or plan.shift == 0:
        return word & low
    row = (word >> plan.shift) & low
    return (word + multiply_constant(row, plan.skew)) & low


def _multiply(a, b):
    """``a * b`` for :meth:`.window.Window.locate`, ``b`` a constant: shift-adds, no DSP block."""
    if isinstance(a, int):
        return a * b
    return multiply_constant(a, b)


#: Most (bank, element) pairs a port picks from through a one-hot pick register (the small
#: CNN's ports pick from up to 36: one-hot took its cells from 50.4k to 40.3k); a port with more
#: keeps a binary code (the small VAE's first reader, up to 121 pairs a port, grew 2% one-hot).
ONE_HOT_PAIRS = 64


class _TileWalk:
    """The output pixels of the requested tile's lanes, stepped from tile to tile instead of
    divided out of the address.

    The operand fetch requests a program's words in its loop order (:mod:`.operand_fetch`):
    the beats of a tile in turn, the tile again from its first beat (one pass per Q tile), then
    the next tile; a program starts at word 0. So a request is in the first tile, the current
    one (the last request's) or the next, and which one is an address comparison. Registers
    hold the current tile's first word and, per lane, its pixel ``(n, oy, ox)``; the next tile's
    pixels are these plus the constant tile step, a digit at a time with one carry each; the
    first tile's are constants of the program. Requests in another order are not served
    correctly (nothing else makes them). Only programs whose divisors are not all powers of two
    step (:meth:`steps`): shifts divide the others' addresses for less logic than a walk.
    """

    def __init__(self, m, windows, block, addr):
        self._m = m
        self._addr = addr
        self._windows = windows
        self.base = None
        used = [w for i, w in enumerate(windows) if w is not None and self.steps(i)]
        if not used:
            return
        steps = [_tile_step(window, rows) for window, rows, _ in used]
        n_top = max(window.images + step // (window.out_height * window.out_width) + 2
                    for (window, _, _), step in zip(used, steps))
        self.base = Signal.like(addr, name="tile_base")
        self.pixels = [(Signal(range(n_top), name=f"tile_n_{r}"),
                        Signal(range(max(w.out_height for w, _, _ in used)), name=f"tile_oy_{r}"),
                        Signal(range(max(w.out_width for w, _, _ in used)), name=f"tile_ox_{r}"))
                       for r in range(block)]
        self._next_base = Signal.like(addr, name="next_tile_base")
        self._chosen = [tuple(Signal.like(v, name=f"chosen_{v.name}") for v in lane)
                        for lane in self.pixels]

    def steps(self, s):
        """Whether program ``s``'s pixels are stepped: unless its divisors (beats a tile,
        pixels an image, pixels a row) are all powers of two, which shifts divide by."""
        window, _, kb = self._windows[s]
        return any(v & (v - 1) for v in (kb, window.out_height * window.out_width,
                                          window.out_width))

    def locate(self, s):
        """Per lane, the pixel ``(n, oy, ox)`` of the requested tile of program ``s``, and the
        requested beat (call inside program ``s``'s case)."""
        m, addr = self._m, self._addr
        window, rows, kb = self._windows[s]
        plane = window.out_height * window.out_width
        step = _tile_step(window, rows)
        carry = [step % window.out_width, step // window.out_width % window.out_height,
                 step // plane]
        first = Signal(name=f"first_tile{s}")
        here = Signal(name=f"this_tile{s}")
        offset = Signal(len(addr) + 1, name=f"tile_offset{s}")
        m.d.comb += [
            first.eq(addr < kb),
            offset.eq(addr - self.base),
            here.eq((addr >= self.base) & (offset[:len(addr)] < kb)),
        ]
        base = Mux(first, 0, Mux(here, self.base, self.base + kb))
        m.d.comb += self._next_base.eq(base)
        beat = C(0, 1) if kb == 1 else Signal(range(kb), name=f"beat{s}")
        if kb > 1:
            m.d.comb += beat.eq(addr - base)
        pixels = []
        for r, (lane, chosen) in enumerate(zip(self.pixels, self._chosen)):
            start = window.pixel(r if window.rows is None else window.tile_row(0, r))
            stepped = _step_pixel(m, lane, carry, window, f"{s}_{r}")
            for value, initial, following, out in zip(lane, start, stepped, chosen):
                m.d.comb += out.eq(Mux(first, initial, Mux(here, value, following)))
            pixels.append(chosen)
        return pixels, beat

    def advance(self):
        """Make the requested tile the current one (call when a request is taken)."""
        if self.base is None:
            return
        self._m.d.sync += self.base.eq(self._next_base)
        self._m.d.sync += [v.eq(n) for lane, chosen in zip(self.pixels, self._chosen)
                           for v, n in zip(lane, chosen)]


def _tile_step(window, rows):
    """Rows of the whole convolution from one of the program's tiles to the next."""
    return rows * (1 if window.rows is None else window.rows[1])


def _step_pixel(m, pixel, carry, window, name):
    """``pixel`` (``(n, oy, ox)`` signals) advanced by a constant number of pixels, given as
    its digits ``carry`` (``ox``, ``oy``, ``n``): one add and one wrap per digit."""
    n, oy, ox = pixel
    wide_x = ox + carry[0]
    wrap_x = Signal(name=f"wrap_x{name}")
    m.d.comb += wrap_x.eq(wide_x >= window.out_width)
    wide_y = oy + carry[1] + wrap_x
    wrap_y = Signal(name=f"wrap_y{name}")
    m.d.comb += wrap_y.eq(wide_y >= window.out_height)
    return (n + carry[2] + wrap_y,
            Mux(wrap_y, wide_y - window.out_height, wide_y),
            Mux(wrap_x, wide_x - window.out_width, wide_x))


class WindowReader(wiring.Component):
    """A read port whose words are tile slices of a convolution's im2col matrix.

    The operand fetch reads ``A`` of a convolution program as it reads any operand memory
    (:mod:`.program`'s operand layout: word ``tile * kb + beat``, lane ``r``, element ``k``
    holding ``A[tile * block + r, beat * d3 + k]``), from address 0. The reader computes, for
    each of the ``block * d3`` elements of the requested word, where it lives in the memory that
    holds the convolution's input (:meth:`.window.Window.locate`, the program's constants), reads
    them all in the same cycle and returns the word the next cycle (latency 1, as a
    :class:`~intar_hw.hw.scratchpad.Scratchpad` read port): taps outside the input are zeros,
    pooled elements the largest of their reads, lanes past ``M`` and elements past ``K`` zeros.

    Storage: a copy of the input's memory kept current by mirroring that memory's writes
    (``write``, always ready). The copy is dealt over banks (:mod:`.window_banks`: a layout,
    proved before the hardware is built, in which no request reads two words of one bank), each
    bank read once a request and each element picking its value from the bank holding its word;
    where no such layout is found, where it would cost more logic than copies
    (:func:`.window_banks.banks_pay`: wide, shallow words of many elements) or with ``banking``
    off, the copy is built once per two element reads (:attr:`ports`; a block RAM reads on two
    ports at most). With ``gated``, a word is served once every word it
    reads is below ``level`` (the words written so far), so a convolution can follow its input as it
    is loaded or computed. With ``peer``, the copy also holds a peer core's result memory (from word
    :attr:`peer_offset`, mirroring ``peer_write``): windows whose parts live there read it, each
    such word waiting until it is below ``peer_level``; the core's own region is left out when no
    window reads it.

    Parameters
    ----------
    windows : tuple of (Window, int, int) or None
        Per program of the core: ``(window, block, kb)`` (the program's ``A`` rows per tile and
        beats per tile) for a convolution reading through this memory, else ``None``.
    pea : (int, int, int)
        The core's PE array; ``d3`` elements a beat.
    operand_width : int
        Bits of the elements, in memory and out.
    shape : data.ArrayLayout
        Word shape of the mirrored memory (any layout of ``operand_width``-bit elements).
    depth : int
        Words of the mirrored memory.
    slots : int
        Write slots of the mirrored memory (its writes carry an ``en`` bit per slot).
    init : sequence of int
        Initial words, as raw integers (what the mirrored memory starts with).
    gated : bool
        Wait on ``level`` (see above).
    banking : bool
        Bank the copy when a layout is found (else a copy per two element reads).
    peer : (data.ArrayLayout, int, int) or None
        ``(shape, depth, slots)`` of the peer's result memory.

    Members
    -------
    start : In(1), stage : In(range(len(windows)))
        The core starting program ``stage``: its requests may come in the same cycle.
    write : In(stream.Signature(WriteRequest(addr_width, shape, slots)))
        The mirrored memory's writes.
    level : In(range(depth + 1))
        With ``gated``: words below it are valid.
    peer_write : In(stream.Signature(WriteRequest(...)))
        With ``peer``: the peer's result writes.
    peer_level : In(range(peer depth + 1))
        With ``peer``: the peer's words below it are valid.
    read : In(:func:`.operand_fetch.window_port`)
        The operand fetch's reads; ``block`` the largest of the programs'. They come in the
        fetch's loop order (a program from word 0; a tile's beats in turn, the tile again from
        its first beat, then the next tile): the reader steps each lane's output pixel from tile
        to tile rather than dividing it out of the address.
    """

    def __init__(self, windows, *, pea, operand_width, shape, depth, slots=1, init=(),
                 gated=False, peer=None, banking=True):
        windows = tuple(windows)
        if not any(windows):
            raise ValueError("WindowReader needs at least one program with a window")
        for w in windows:
            if w is not None and not isinstance(w[0], Window):
                raise TypeError(f"WindowReader windows must hold Window specs, not {w[0]!r}")
        # The own region exists when some window reads it (every window without peer).
        self._own = peer is None or any(
            w is not None and (w[0].parts is None or not all(p[0] for p in w[0].parts))
            for w in windows)
        self._peer = peer
        self._peer_offset = depth if self._own and peer is not None else 0
        self._windows = tuple(
            w if w is None else (dataclasses.replace(w[0], peer_offset=self._peer_offset),
                                 *w[1:])
            for w in windows)
        self._pea = pea
        self._width = operand_width
        self._shape = shape
        self._depth = depth
        self._slots = slots
        self._init = tuple(init)
        self._gated = gated
        d3 = pea[2]
        used = [w for w in self._windows if w is not None]
        self._block = max(block for _, block, _ in used)
        self._reads = max(window.reads for window, _, _ in used)
        self._ports = self._block * d3 * self._reads
        widths = ([Shape.cast(shape).width] if self._own else []) + (
            [Shape.cast(peer[0]).width] if peer is not None else [])
        self._elements = max(widths) // operand_width
        plan = plan_banks(self._windows, d3=d3, block=self._block,
                          elements_per_word=self._elements) if banking else None
        copy_depth = (depth if self._own else 0) + (peer[1] if peer is not None else 0)
        if plan is not None and not banks_pay(plan, ports=self._ports, elements=self._elements,
                                              width=operand_width, depth=copy_depth):
            plan = None
        self._plan = plan
        addr_width = ceil_log2(depth)
        members = {
            "start": In(1),
            "stage": In(range(len(self._windows))),
            "write": In(stream.Signature(WriteRequest(addr_width, shape, slots))),
            "read": In(window_port(self._windows, pea, operand_width)),
        }
        if gated:
            members["level"] = In(range(depth + 1))
        if peer is not None:
            peer_shape, peer_depth, peer_slots = peer
            members["peer_write"] = In(stream.Signature(
                WriteRequest(ceil_log2(peer_depth), peer_shape, peer_slots)))
            members["peer_level"] = In(range(peer_depth + 1))
        super().__init__(members)

    @property
    def gated(self):
        return self._gated

    @property
    def peer_offset(self):
        """First word of the peer's region in the copy."""
        return self._peer_offset

    @property
    def ports(self):
        """Element reads a word (elements a word times pooled reads)."""
        return self._ports

    @property
    def plan(self):
        """The :class:`.window_banks.BankPlan` of the copy, or ``None`` (a copy per two
        element reads)."""
        return self._plan

    def elaborate(self, platform):
        m = Module()
        d3 = self._pea[2]
        width = self._width
        # Regions of the copy: (write stream, word shape, slots, offset, depth).
        regions = []
        if self._own:
            regions.append((self.write, self._shape, self._slots, 0, self._depth))
        else:
            m.d.comb += self.write.ready.eq(1)
        if self._peer is not None:
            peer_shape, peer_depth, peer_slots = self._peer
            regions.append((self.peer_write, peer_shape, peer_slots, self._peer_offset,
                            peer_depth))
        elements = self._elements
        total = elements * width
        depth = sum(region[4] for region in regions)
        init = self._init if self._own else ()
        plan = self._plan
        lanes = [(r, k) for r in range(self._block) for k in range(d3)]
        reads = self._reads
        ports = len(lanes) * reads

        # The copy: banks of the plan, each read once a request, or else a copy per two ports.
        if plan is not None:
            contents = plan.deal(init, depth)
            memories = []
            for b in range(plan.banks):
                memories.append(memory.Memory(shape=unsigned(total), depth=plan.rows(depth),
                                              init=contents[b]))
                m.submodules[f"bank_{b}"] = memories[-1]
            bank_reads = [mem.read_port() for mem in memories]
            copy_reads = None
        else:
            memories, copy_reads = read_copies(m, "mirror", ports, shape=unsigned(total),
                                               depth=depth, init=init)
            bank_reads = None

        # Writes enable whole elements (a slotted region's slots are runs of elements).
        sliced = any(slots > 1 for _, _, slots, _, _ in regions) or len(regions) > 1
        for write, shape, slots, offset, _ in regions:
            count = Shape.cast(shape).width // width
            if slots > 1:
                en = Cat(*(write.payload.en[e // (count // slots)] for e in range(count)))
            else:
                en = Const(2 ** count - 1, count)
            m.d.comb += write.ready.eq(1)
            word = write.payload.addr + offset
            for b, mem in enumerate(memories):
                writer = mem.write_port(granularity=width if sliced else None)
                here = write.valid if plan is None else write.valid & (_bank(plan, word) == b)
                m.d.comb += [
                    writer.addr.eq(word if plan is None else plan.row(word)),
                    writer.data.eq(write.payload.data.as_value()),
                    writer.en.eq(Mux(here, en if sliced else 1, 0)),
                ]

        # The program: latched on start, the input's in the cycle of start.
        count = len(self._windows)
        sel = Signal(range(count), name="sel")
        cur = Signal(range(count), name="cur")
        m.d.comb += cur.eq(Mux(self.start, self.stage, sel))
        with m.If(self.start):
            m.d.sync += sel.eq(self.stage)

        # Per element: is it a zero; per read port: is it used, its word and element, and (the
        # response's) which bank and element it picks.
        addr_shape = unsigned(max(1, ceil_log2(depth)))
        zero = [Signal(name=f"zero_{r}_{k}") for r, k in lanes]
        next_zero = [Signal(name=f"next_zero_{r}_{k}") for r, k in lanes]
        names = [f"{r}_{k}_{j}" for r, k in lanes for j in range(reads)]
        # A pick is an element of the port's copy; or, banked, one-hot over the port's (bank,
        # element) pairs (no decoding between the register and the multiplexer it drives) where
        # they are few, else the bank and the element (the element in the low bits), whose
        # decoding is shared by the element's bits.
        use = [Signal(name=f"use_{n}") for n in names]
        element_bits = ceil_log2(elements)
        one_hot = [plan is not None and len(plan.pairs[p]) <= ONE_HOT_PAIRS
                   for p in range(ports)]
        # One-hot with one read an element, the pick also says whether the read is used.
        folded = [reads == 1 and hot for hot in one_hot]
        pick = [Signal(range(elements), name=f"pick_{n}") if plan is None
                else Signal(len(plan.pairs[p]), name=f"pick_{n}") if one_hot[p]
                else Signal(range(plan.banks << element_bits), name=f"pick_{n}")
                for p, n in enumerate(names)]
        next_use = [Signal(name=f"next_use_{n}") for n in names]
        word = [Signal(addr_shape, name=f"word_{n}") for n in names]
        element = [Signal(range(elements), name=f"element_{n}") for n in names]
        fill = Signal(signed(width), name="fill")
        next_fill = Signal(signed(width), name="next_fill")
        blocked = Signal()
        addr = self.read.req.payload.addr
        walk = _TileWalk(m, self._windows, self._block, addr)
        with m.Switch(cur):
            for s, entry in enumerate(self._windows):
                if entry is None:
                    continue
                window, block, kb = entry
                with m.Case(s):
                    levels = []     # this program's reads of words not written yet
                    m.d.comb += next_fill.eq(window.pool_fill)
                    if walk.steps(s):
                        pixels, beat = walk.locate(s)
                    else:
                        # Tile and pixel by shifts: the divisors are powers of two.
                        tile, beat = _divide(addr, kb)
                        pixels = [None] * block
                    kept = {}
                    for e, (r, k) in enumerate(lanes):
                        if r >= block:
                            m.d.comb += next_zero[e].eq(1)
                            continue
                        col = _multiply(beat, d3) + k
                        if pixels[r] is None:
                            row = (_multiply(tile, block) + r if window.rows is None
                                   else window.tile_row(tile, r))
                            real = row < window.pixels
                        else:
                            row = None
                            real = pixels[r][0] < window.images
                        inside, located = window.locate(
                            row, col, keep=_keeper(m, f"p{s}", kept), divide=_divide,
                            multiply=_multiply, pixel=pixels[r])
                        real = real & (col < window.K)
                        m.d.comb += next_zero[e].eq(~(real & inside))
                        for j, (valid, address, at) in enumerate(located):
                            valid = real & valid
                            p = e * reads + j
                            m.d.comb += [
                                next_use[p].eq(valid),
                                word[p].eq(Mux(valid, address, 0)),
                                element[p].eq(Mux(valid, at, 0)),
                            ]
                            if self._gated:
                                levels.append(valid & (address >= self.level))
                            if self._peer is not None and window.parts is not None and any(
                                    p[0] for p in window.parts):
                                # Words of the peer's region wait for the peer's writes.
                                levels.append(valid & (address >= self._peer_offset)
                                              & (address - self._peer_offset
                                                 >= self.peer_level))
                    if levels:
                        m.d.comb += blocked.eq(Cat(*levels).any())

        # One request at a time on the read ports' output registers (held while not taken).
        pending = Signal()
        accept = Signal()
        m.d.comb += [
            self.read.req.ready.eq((~pending | self.read.resp.ready) & ~blocked),
            accept.eq(self.read.req.valid & self.read.req.ready),
            self.read.resp.valid.eq(pending),
        ]
        if plan is None:
            m.d.comb += [port.en.eq(accept) for port in copy_reads]
            m.d.comb += [port.addr.eq(w) for port, w in zip(copy_reads, word)]
            next_pick = element
        else:
            # Each bank reads the row of the one word the request reads from it.
            m.d.comb += [port.en.eq(accept) for port in bank_reads]
            bank = [_bank(plan, w) for w in word]
            for b, port in enumerate(bank_reads):
                rows = [Mux(next_use[p] & (bank[p] == b), plan.row(word[p]), 0)
                        for p in plan.feeders[b]]
                row = Signal.like(port.addr, name=f"bank_row_{b}")
                m.d.comb += [row.eq(_or(rows)), port.addr.eq(row)]
            next_pick = [Cat(*((next_use[p] if folded[p] else 1) & (bank[p] == b)
                               & (element[p] == at) for b, at in plan.pairs[p]))
                         if one_hot[p] else Cat(element[p], bank[p]) if element_bits else bank[p]
                         for p in range(ports)]
        with m.If(accept):
            walk.advance()
            m.d.sync += [pending.eq(1), fill.eq(next_fill)]
            m.d.sync += [z.eq(n) for z, n in zip(zero, next_zero)]
            m.d.sync += [u.eq(n) for u, n in zip(use, next_use)]
            m.d.sync += [p.eq(n) for p, n in zip(pick, next_pick)]
        with m.Elif(self.read.resp.ready):
            m.d.sync += pending.eq(0)

        out = self.read.resp.payload.data
        for e, (r, k) in enumerate(lanes):
            # The largest of the reads, an unused read counting as the pooling fill: a tree of
            # comparisons (a pooling window's reads in log2(reads) levels, not a chain).
            values = []
            for j in range(reads):
                p = e * reads + j
                got = Signal(signed(width), name=f"got_{names[p]}")
                if plan is None:
                    m.d.comb += got.eq(copy_reads[p].data.word_select(pick[p], width))
                elif len(plan.pairs[p]) == 1 and not folded[p]:
                    b, at = plan.pairs[p][0]
                    m.d.comb += got.eq(bank_reads[b].data.word_select(at, width))
                elif one_hot[p]:
                    m.d.comb += got.eq(_or(
                        Mux(pick[p][i], bank_reads[b].data.word_select(at, width), 0)
                        for i, (b, at) in enumerate(plan.pairs[p])))
                else:
                    with m.Switch(pick[p]):
                        for b, at in plan.pairs[p]:
                            with m.Case((b << element_bits) | at):
                                m.d.comb += got.eq(bank_reads[b].data.word_select(at, width))
                values.append(got if folded[p] else Mux(use[p], got, fill))
            if folded[e * reads]:
                # One read an element, used exactly when the element is not a zero (a tap
                # inside the input, of a real row and column): its pick is empty otherwise.
                m.d.comb += out[r][k].eq(values[0])
            else:
                m.d.comb += out[r][k].eq(Mux(zero[e], 0, _largest(values)))
        return m


def _largest(values):
    """The largest of signed ``values``, as a balanced tree of comparisons."""
    while len(values) > 1:
        pairs = [Mux(a > b, a, b) for a, b in zip(values[::2], values[1::2])]
        values = pairs + values[len(pairs) * 2:]
    return values[0]


def _or(values):
    """The bitwise OR of ``values`` (zero when there are none)."""
    result = Const(0, 1)
    for value in values:
        result = result | value
    return result
