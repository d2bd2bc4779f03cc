"""Reading an operand of a GEMM from result memories (the result layout of :mod:`.program`).

A later program reads an earlier result where it was written instead of having it copied into
an operand memory. The result layout keeps rows side by side in the slots of a word, so one read
per beat gives what the PE array needs, in one of two ways:

- **rows**: the operand's rows are the stored rows (``A``, or ``B`` of ``A . B^T``): a beat takes
  lane group ``g`` (``d3`` lanes) of the slots holding its tile's rows, ``first + r`` for row
  ``r``;
- **transposed**: the operand's rows are the stored columns (``B`` of ``A . B`` is the stored
  ``X`` with ``B[n, k] = X[k, n]``, ``d3 == 1``): a beat takes stored row ``k``, in slot ``k %
  slots``, and lanes ``first + r`` of it for row ``r``.

Both walk the same loop nest as the operand fetch (batch, P tile, Q tile, beat) with the same
two counters: ``pos``, where the tile's rows start within a word (a slot, or a lane), and
``sub``, what the beat takes within a word (a lane group, or a slot).
"""

from dataclasses import dataclass

from amaranth import *

from ...integers import cdiv


__all__ = ["ReadSpec", "read_spec", "ResultReader"]


@dataclass(frozen=True)
class ReadSpec:
    """How one program reads one operand in result layout.

    ``side`` is ``"p"`` or ``"q"`` (the array's rows or columns), ``block`` the operand's rows per
    tile, ``parts`` the ``(Source, base)`` pairs (several: a row gathered word by word),
    ``transposed`` the mode. ``pos_limit`` / ``pos_row`` are what ``pos`` counts up to and the
    words a wrap of it moves on (slots and words per stored row, or lanes and 1); ``sub_limit``
    / ``sub_row`` likewise for ``sub`` (lane groups and 1, or slots and words per stored row);
    ``batch_words`` the words of one batch's operand, ``words`` of all batches; ``wraps``
    whether ``pos`` returns to 0 on the next word (else the rows all fit one word).
    ``by_tiles``: several parts hold whole tiles round-robin (a result dealt by rows), not
    words of a row (or, read transposed, a word row of stored rows each, in turn). ``stride``:
    the operand's tiles are every ``stride``-th stored tile.
    """
    side: str
    block: int
    lanes: int
    slots: int
    parts: tuple
    transposed: bool
    pos_limit: int
    pos_row: int
    sub_limit: int
    sub_row: int
    batch_words: int
    wraps: bool
    words: int
    by_tiles: bool = False
    stride: int = 1


def read_spec(program, which):
    """The :class:`ReadSpec` of ``program``'s operand ``which`` (``"a"`` or ``"b"``), or
    ``None`` if it is not read from a result memory."""
    d3 = program.pea[2]
    read = program.a if which == "a" else program.b
    if not read.laid_out:
        return None
    L, S, parts, transposed = read.lanes, read.slots, read.parts, read.transposed
    if which == "a":
        side = "p" if program.orientation == "MN" else "q"
        block, rows, by_tiles = program.a_block, program.M, read.gather_tiles
    else:
        side = "q" if program.orientation == "MN" else "p"
        block, rows = program.b_block, program.N
        by_tiles = len(parts) > 1 and not transposed
    if transposed:
        row_words = cdiv(rows, L)
        return ReadSpec(side, block, L, S, parts, True, pos_limit=L, pos_row=1, sub_limit=S,
                        sub_row=row_words, batch_words=cdiv(program.K, S) * row_words,
                        wraps=L % block == 0,
                        words=program.batch * cdiv(program.K, S) * row_words)
    row_words = cdiv(program.K, L)
    stride = read.tile_stride
    return ReadSpec(side, block, L, S, parts, False, pos_limit=S, pos_row=row_words,
                    sub_limit=L // d3, sub_row=1, batch_words=cdiv(rows, S) * row_words,
                    wraps=S % block == 0,
                    words=program.batch * cdiv(rows, S) * row_words * stride,
                    by_tiles=by_tiles, stride=stride)


class ResultReader:
    """Address counters and response routing of one operand read in result layout.

    Built inside the operand fetch's ``elaborate``: ``specs`` holds a :class:`ReadSpec` (or
    ``None``) per program, ``cur`` selects the program of the requests, ``step``, ``at_end`` and
    ``final`` are the loop nest's, ``by_program`` the fetch's per-program switch. After
    construction, :attr:`word` is the word to read (relative to the part's base; with several
    parts gathered by words, :attr:`local` within part :attr:`part`), and :meth:`capture` must
    be called with the request's transfer so that :meth:`route` places the response's lanes.
    """

    def __init__(self, m, name, specs, *, cur, step, at_end, final, by_program):
        used = [s for s in specs if s is not None]
        # Counters run one word past the operand's last before they rewind.
        span = max(s.words for s in used) + 1
        self.word = Signal(range(span), name=f"{name}_word")
        self.local = Signal(range(span), name=f"{name}_local")
        self.part = Signal(range(max(len(s.parts) for s in used)), name=f"{name}_part")
        self.pos = Signal(range(max(s.pos_limit for s in used)), name=f"{name}_pos")
        self.sub = Signal(range(max(s.sub_limit for s in used)), name=f"{name}_sub")
        # Captured with the request, for its response.
        self.got_pos = Signal.like(self.pos, name=f"{name}_got_pos")
        self.got_sub = Signal.like(self.sub, name=f"{name}_got_sub")
        self.got_part = Signal.like(self.part, name=f"{name}_got_part")
        self._m = m
        self._name = name
        batch = Signal(range(span), name=f"{name}_batch")     # first word of the batch
        row = Signal(range(span), name=f"{name}_row")         # first word of the tile
        self._row = row

        with m.If(step):
            def advance(s):
                spec = specs[s]
                if spec is None:
                    return

                def rewind(to):
                    m.d.sync += [self.sub.eq(0), self.local.eq(0), row.eq(to), self.word.eq(to)]
                    if not spec.by_tiles:
                        m.d.sync += self.part.eq(0)

                def next_tile():
                    # The next block of rows: further along the word, or the next word(s).
                    if spec.by_tiles:
                        # Tiles go round the parts; a round moves on one word row (one tile).
                        with m.If(self.part == len(spec.parts) - 1):
                            m.d.sync += self.part.eq(0)
                            rewind(row + spec.pos_row)
                        with m.Else():
                            m.d.sync += self.part.eq(self.part + 1)
                            rewind(row)
                    elif spec.wraps and spec.pos_limit > spec.block:
                        with m.If(self.pos + spec.block < spec.pos_limit):
                            m.d.sync += self.pos.eq(self.pos + spec.block)
                            rewind(row)
                        with m.Else():
                            m.d.sync += self.pos.eq(0)
                            rewind(row + spec.pos_row)
                    elif spec.wraps:
                        rewind(row + spec.pos_row * spec.stride)
                    else:
                        m.d.sync += self.pos.eq(self.pos + spec.block)
                        rewind(row)

                def first_tile():
                    m.d.sync += [self.pos.eq(0), self.part.eq(0)]
                    rewind(batch)
                with m.If(final):
                    m.d.sync += [batch.eq(0), self.pos.eq(0), self.part.eq(0)]
                    rewind(0)
                with m.Elif(at_end[3]):
                    # Loop order: batch, P tile, Q tile, beat.
                    with m.If(at_end[2] & at_end[1]):
                        m.d.sync += [batch.eq(batch + spec.batch_words), self.pos.eq(0),
                                     self.part.eq(0)]
                        rewind(batch + spec.batch_words)
                    with m.Elif(at_end[2]):
                        next_tile() if spec.side == "p" else first_tile()
                    with m.Else():
                        rewind(row) if spec.side == "p" else next_tile()
                with m.Elif(self.sub == spec.sub_limit - 1):
                    m.d.sync += [self.sub.eq(0), self.word.eq(self.word + spec.sub_row)]
                    if len(spec.parts) > 1 and not spec.by_tiles:
                        with m.If(self.part == len(spec.parts) - 1):
                            m.d.sync += [self.part.eq(0),
                                         self.local.eq(self.local + spec.sub_row)]
                        with m.Else():
                            m.d.sync += self.part.eq(self.part + 1)
                with m.Else():
                    m.d.sync += self.sub.eq(self.sub + 1)
            by_program(m, cur, len(specs), advance)

    def address(self, spec):
        """The request's word offset from its part's base."""
        if len(spec.parts) > 1 and not spec.by_tiles:
            # Gathered word by word (rows), or stored row by stored row (transposed): the
            # tile's first word plus the rows done in this part.
            return self.local if not spec.transposed else self._row + self.local
        return self.word

    def capture(self, request):
        """Keep the request's position for its response (one request in flight per port)."""
        with self._m.If(request):
            self._m.d.sync += [self.got_pos.eq(self.pos), self.got_sub.eq(self.sub),
                               self.got_part.eq(self.part)]

    def route(self, spec, data, beat, lanes, width, d3):
        """Drive ``beat`` (``lanes`` rows of ``d3`` elements) from a response word ``data``."""
        m = self._m
        whole = data.as_value()
        L, S = spec.lanes, spec.slots
        slots = [whole[n * L * width:(n + 1) * L * width] for n in range(S)]
        firsts = range(0, spec.pos_limit, spec.block)
        if spec.transposed:
            # Row r of the tile is lane got_pos + r of slot got_sub.
            picked = Signal(L * width, name=f"{self._name}_slot_{L}")
            m.d.comb += picked.eq(Cat(*slots).word_select(self.got_sub, L * width))
            with m.Switch(self.got_pos):
                for first in firsts:
                    with m.Case(first):
                        for r in range(min(lanes, L - first)):
                            m.d.comb += beat[r].as_value().eq(
                                picked[(first + r) * width:(first + r + 1) * width])
            return
        # Row r of the tile is slot got_pos + r; the beat takes lane group got_sub of it.
        with m.Switch(self.got_pos):
            for first in firsts:
                with m.Case(first):
                    for r in range(min(lanes, S - first)):
                        m.d.comb += beat[r].as_value().eq(
                            slots[first + r].word_select(self.got_sub, d3 * width))
