"""Convolution windows as address patterns: plain, frozen, validated data (no Amaranth).

A convolution task is a GEMM whose ``A`` is the im2col matrix of its input: row ``m`` is output
pixel ``m`` (``n``, ``oy``, ``ox`` in raster order), column ``t`` is tap ``t`` of the reduction in
``(channel, ty, tx)`` order, the order of a PyTorch weight ``reshape(Cout, -1)``. That matrix is
never stored. A :class:`Window` says where each of its elements lives in the memory holding the
convolution's input (a graph input, or an earlier task's result), and :meth:`Window.locate`
computes it: the address pattern of the
:class:`~intar_hw.hw.core.window_read.WindowReader` that serves ``A`` to the operand fetch.

The arithmetic is written once, with operators that mean the same on Python integers and on
Amaranth values (``+ - * // % >>``, comparisons, ``&``; a division by a power of two is a
shift): :meth:`Window.locate` on integers (or numpy arrays) is the reference the hardware is
tested against, and on signals it *is* the hardware, with the hardware's own division and
multiplication by constants passed in (no dividers, no DSP blocks) and each lane's output pixel
stepped rather than divided out of the row.

Patterns (each a constant of the program):

- ``conv2d``: tap ``(ty, tx)`` of output ``(oy, ox)`` reads input
  ``(oy * sy - py + ty * dy, ox * sx - px + tx * dx)``; outside the input it is a zero.
- ``conv_transpose2d`` runs as a convolution over the input with ``stride - 1`` zeros inserted
  between its elements, padded by ``dilation * (k - 1) - padding``, with the kernel flipped
  (:meth:`Window.weights` flips a ``(Cin, Cout, kh, kw)`` weight into the ``B`` it needs):
  position ``z = oy + ty * dy - (dy * (kh - 1) - py)`` of the inserted input is input row
  ``z // sy`` when ``z % sy == 0``, and a zero otherwise.
- ``upsample`` (nearest, factor ``u``) between the stored tensor and the convolution: row ``y``
  of the convolution's input is stored row ``y // u``.
- ``maxpool`` (kernel, stride, padding) between them: an input element is the largest of the
  stored elements under its pooling window, padding taps reading the format's minimum; each is
  a separate read (:attr:`Window.reads`).

Layouts of the stored tensor ``S`` (``n x C x Hs x Ws``):

- ``"flat"``: ``S`` flattened (NCHW) from word ``base``, ``word_elements`` elements a word
  (a graph input, written by the loader as it comes from off-chip).
- ``"result"``: the result layout of the task that computed it (:mod:`.program`): its GEMM has
  ``m = (n * Hs + y) * Ws + x`` and ``c`` as row and column in orientation ``"MN"``, column and
  row in ``"NM"``; words of ``slots`` slots of ``lanes`` lanes, ``q_tiles`` words a row block.
  A result dealt over cores (:attr:`Window.parts`) is the whole task's layout cut round-robin
  into its parts' layouts: by Q tiles (``deal="Q"``: tile ``q`` is tile ``q // count`` of part
  ``q % count``) or by blocks of ``unit`` word rows (``deal=("P", unit)``); each part sits at
  its own base, in the reader's copy of this core's result memory or, from
  :attr:`Window.peer_offset` on, in its copy of the peer's.

A convolution dealt over cores by output pixels (``rows=(block, count, position)``) computes
the im2col row tiles ``position, position + count, ...`` of ``block`` rows: :attr:`Window.M`
counts those rows, :attr:`Window.pixels` all of them.
"""

from dataclasses import dataclass

import numpy as np

from ..checks import check_bool, check_count, check_pair
from ...integers import cdiv


__all__ = ["Window"]


def _div(a, b):
    """``a // b`` (floor) for an integer or an Amaranth value and a positive constant ``b``: a
    shift when ``b`` is a power of two (a divider otherwise)."""
    return a >> (b.bit_length() - 1) if b & (b - 1) == 0 else a // b


def _mod(a, b):
    """``a % b`` (floor), as :func:`_div`: a mask when ``b`` is a power of two."""
    return a & (b - 1) if b & (b - 1) == 0 else a % b


def _divmod(a, b, divide):
    """``(a // b, a % b)``: shifts and masks for a power of two, else ``divide(a, b)`` when
    given (hardware's divider by a constant), else the operators."""
    if b & (b - 1) == 0:
        return _div(a, b), _mod(a, b)
    if divide is not None:
        return divide(a, b)
    return a // b, a % b


@dataclass(frozen=True)
class Window:
    """The address pattern of a convolution's ``A`` (im2col) operand.

    Parameters
    ----------
    images, channels, height, width : int
        The convolution's input, ``images x channels x height x width`` (after any upsampling or
        pooling of the stored tensor).
    out_height, out_width : int
        The convolution's output size.
    kernel, stride, padding, dilation : int or (int, int)
        As the graph's convolution operator.
    transposed : bool
        A ``conv_transpose2d`` (see the module docs).
    upsample : (int, int) or None
        Nearest upsampling factors from the stored tensor to the convolution's input.
    pool : ((kh, kw), (sh, sw), (ph, pw)) or None
        Max pooling from the stored tensor to the convolution's input.
    pool_fill : int
        What a pooling padding tap reads (the stored format's minimum).
    source_size : (int, int) or None
        ``(Hs, Ws)`` of the stored tensor; needed with ``pool`` (pooling may drop edge rows),
        by default ``(height, width)`` divided by ``upsample``.
    layout : str
        ``"flat"`` or ``"result"``.
    base : int
        Word address of the stored tensor.
    word_elements : int
        ``"flat"``: elements per memory word.
    orientation, slots, lanes, q_tiles : str, int, int, int
        ``"result"``: the producer's orientation, slots, ``d2`` and Q tiles (of the whole
        layout).
    parts : tuple of (bool, int, int) or None
        ``"result"`` dealt over cores: per part ``(peer, base, q_tiles)``, in deal order.
    deal : ``"Q"``, ``("P", unit)`` or None
        How the whole layout is cut into ``parts`` (see the module docs).
    peer_offset : int
        Word address, in the reader's copy, of the peer's result memory.
    rows : (int, int, int) or None
        ``(block, count, position)``: the im2col row tiles this program computes.

    Attributes
    ----------
    M, K : int
        Rows (the program's output pixels) and columns (taps) of the im2col matrix.
    pixels : int
        Output pixels of the whole convolution.
    stored : (int, int, int, int)
        Shape of the stored tensor.
    reads : int
        Memory reads per element: the pooling window's taps, else 1.
    """
    images: int
    channels: int
    height: int
    width: int
    out_height: int
    out_width: int
    kernel: object
    stride: object = 1
    padding: object = 0
    dilation: object = 1
    transposed: bool = False
    upsample: object = None
    pool: object = None
    pool_fill: int = 0
    source_size: object = None
    layout: str = "flat"
    base: int = 0
    word_elements: int = 1
    orientation: str = "MN"
    slots: int = 1
    lanes: int = 1
    q_tiles: int = 1
    parts: object = None
    deal: object = None
    peer_offset: int = 0
    rows: object = None

    def __post_init__(self):
        owner = "Window"
        for name in ("images", "channels", "height", "width", "out_height", "out_width",
                     "word_elements", "slots", "lanes", "q_tiles"):
            check_count(owner, name, getattr(self, name))
        if not isinstance(self.base, int) or isinstance(self.base, bool) or self.base < 0:
            raise ValueError(f"{owner} base must be a non-negative integer, not {self.base!r}")
        set_ = object.__setattr__
        set_(self, "kernel", check_pair(owner, "kernel", self.kernel, 1))
        set_(self, "stride", check_pair(owner, "stride", self.stride, 1))
        set_(self, "padding", check_pair(owner, "padding", self.padding, 0))
        set_(self, "dilation", check_pair(owner, "dilation", self.dilation, 1))
        check_bool(owner, "transposed", self.transposed)
        if self.upsample is not None:
            set_(self, "upsample", check_pair(owner, "upsample", self.upsample, 1))
        if self.pool is not None:
            if self.upsample is not None:
                raise ValueError(f"{owner} takes upsample or pool, not both")
            if not isinstance(self.pool, tuple) or len(self.pool) != 3:
                raise TypeError(f"{owner} pool must be (kernel, stride, padding), "
                                f"not {self.pool!r}")
            pk, ps, pp = self.pool
            set_(self, "pool", (check_pair(owner, "pool kernel", pk, 1),
                                check_pair(owner, "pool stride", ps, 1),
                                check_pair(owner, "pool padding", pp, 0)))
            if self.source_size is None:
                raise ValueError(f"{owner} with pool needs source_size")
        if self.source_size is not None:
            set_(self, "source_size", check_pair(owner, "source_size", self.source_size, 1))
        if not isinstance(self.peer_offset, int) or isinstance(self.peer_offset, bool) \
                or self.peer_offset < 0:
            raise ValueError(f"{owner} peer_offset must be a non-negative integer, "
                             f"not {self.peer_offset!r}")
        if self.rows is not None:
            if (not isinstance(self.rows, tuple) or len(self.rows) != 3
                    or not all(isinstance(v, int) and not isinstance(v, bool)
                               for v in self.rows)):
                raise TypeError(f"{owner} rows must be (block, count, position), "
                                f"not {self.rows!r}")
            block, count, position = self.rows
            if block < 1 or count < 1 or not 0 <= position < count \
                    or position * block >= self.pixels:
                raise ValueError(f"{owner} rows must be (block, count, position) with a first "
                                 f"tile inside the {self.pixels} pixels, not {self.rows!r}")
        if self.layout not in ("flat", "result"):
            raise ValueError(f"{owner} layout must be 'flat' or 'result', not {self.layout!r}")
        if self.orientation not in ("MN", "NM"):
            raise ValueError(f"{owner} orientation must be 'MN' or 'NM', "
                             f"not {self.orientation!r}")
        self._check_parts(owner)

    def _check_parts(self, owner):
        if self.parts is None:
            if self.deal is not None:
                raise ValueError(f"{owner} deal needs parts")
            return
        if self.layout != "result":
            raise ValueError(f"{owner} parts need the 'result' layout")
        if (not isinstance(self.parts, tuple) or not self.parts
                or not all(isinstance(p, tuple) and len(p) == 3 and isinstance(p[0], bool)
                           and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                                   for v in p[1:]) for p in self.parts)):
            raise TypeError(f"{owner} parts must be a tuple of (peer, base, q_tiles), "
                            f"not {self.parts!r}")
        deal = self.deal
        if len(self.parts) == 1:
            if deal is not None:
                raise ValueError(f"{owner} deal needs several parts, not {deal!r}")
        elif not (deal == "Q" or (isinstance(deal, tuple) and len(deal) == 2 and deal[0] == "P"
                                  and isinstance(deal[1], int) and deal[1] >= 1)):
            raise ValueError(f"{owner} deal of several parts must be 'Q' or ('P', unit), "
                             f"not {deal!r}")

    # --- shapes -----------------------------------------------------------------------------

    @property
    def pixels(self):
        return self.images * self.out_height * self.out_width

    @property
    def M(self):
        if self.rows is None:
            return self.pixels
        block, count, position = self.rows
        tiles = cdiv(self.pixels, block)
        return sum(min(block, self.pixels - u * block) for u in range(position, tiles, count))

    def row(self, m):
        """The whole convolution's im2col row of the program's row ``m``."""
        if self.rows is None:
            return m
        return self.tile_row(m // self.rows[0], m % self.rows[0])

    def tile_row(self, tile, lane):
        """The whole convolution's im2col row of lane ``lane`` of the program's row tile
        ``tile`` of ``block`` rows (:attr:`rows`; integers or Amaranth values)."""
        if self.rows is None:
            raise ValueError("Window tile_row needs rows")
        block, count, position = self.rows
        return (tile * count + position) * block + lane

    @property
    def K(self):
        return self.channels * self.kernel[0] * self.kernel[1]

    @property
    def stored(self):
        """``(images, channels, Hs, Ws)`` of the tensor in memory."""
        if self.source_size is not None:
            h, w = self.source_size
        elif self.upsample is not None:
            h, w = cdiv(self.height, self.upsample[0]), cdiv(self.width, self.upsample[1])
        else:
            h, w = self.height, self.width
        return (self.images, self.channels, h, w)

    @property
    def reads(self):
        return 1 if self.pool is None else self.pool[0][0] * self.pool[0][1]

    @property
    def words(self):
        """Words of the stored tensor from ``base`` (``"flat"``; ``"result"``: its producer's)."""
        n, c, h, w = self.stored
        if self.layout == "flat":
            return cdiv(n * c * h * w, self.word_elements)
        rows, cols = (n * h * w, c) if self.orientation == "MN" else (c, n * h * w)
        return cdiv(rows, self.slots) * cdiv(cols, self.lanes)

    # --- the address pattern ----------------------------------------------------------------

    def pixel(self, m):
        """``(n, oy, ox)`` of output pixel ``m`` (an integer) of the whole convolution."""
        n, rem = divmod(m, self.out_height * self.out_width)
        return (n, *divmod(rem, self.out_width))

    def locate(self, m, t, keep=None, divide=None, pixel=None, multiply=None):
        """Where element ``(m, t)`` of the whole convolution's im2col matrix lives.

        ``m`` and ``t`` are integers or Amaranth values (``0 <= m < pixels``, ``0 <= t < K``;
        :meth:`row` maps a program's row to ``m``).
        Returns ``(tap, reads)``: ``tap`` is true when the element is inside the (inserted)
        input, else it is a zero; ``reads`` holds :attr:`reads` triples ``(valid, word,
        element)``, the element being the largest of the valid reads, an invalid read counting
        as :attr:`pool_fill` (without pooling, the one read is valid with the tap).

        ``keep(value, name, bound)``, if given, is applied to every intermediate value and its
        result used in its place: hardware passes one that stores a value in a named signal, so
        each is computed once rather than inlined into every use. A ``bound`` (else ``None``)
        says that the value lies in ``range(bound)`` whenever the element is read at all
        (inside its input, in a real row and column), so hardware may keep it in that many
        bits: a value used outside those elements is masked. ``divide(a, b)``, if given,
        returns ``(a // b, a % b)`` for a constant ``b`` that is not a power of two (hardware
        passes one without a divider), and ``multiply(a, b)`` ``a * b`` for a constant ``b``
        (hardware passes one without a DSP block). ``pixel``, if given, is :meth:`pixel` of ``m``
        (``m`` is then not used: hardware steps it from tile to tile instead of dividing).
        """
        keep = keep or (lambda value, name, bound=None: value)
        dm = lambda a, b: _divmod(a, b, divide)                           # noqa: E731
        mul = multiply or (lambda a, b: a * b)
        (kh, kw), (sy, sx), (py, px), (dy, dx) = (self.kernel, self.stride, self.padding,
                                                  self.dilation)
        if pixel is None:
            plane = self.out_height * self.out_width
            n, rem = dm(m, plane)
            n, rem = keep(n, "n", self.images), keep(rem, "rem", plane)
            oy, ox = dm(rem, self.out_width)
            oy, ox = keep(oy, "oy", self.out_height), keep(ox, "ox", self.out_width)
        else:
            n, oy, ox = pixel
        c, tap = dm(t, kh * kw)
        c, tap = keep(c, "c", self.channels), keep(tap, "tap", kh * kw)
        ty, tx = dm(tap, kw)
        ty, tx = keep(ty, "ty", kh), keep(tx, "tx", kw)
        if self.transposed:
            zy = oy + mul(ty, dy) - (dy * (kh - 1) - py)
            zx = ox + mul(tx, dx) - (dx * (kw - 1) - px)
            y, x = _div(zy, sy), _div(zx, sx)
            inside = ((zy >= 0) & (zx >= 0) & (_mod(zy, sy) == 0) & (_mod(zx, sx) == 0)
                      & (y < self.height) & (x < self.width))
        else:
            y, x = mul(oy, sy) - py + mul(ty, dy), mul(ox, sx) - px + mul(tx, dx)
            inside = (y >= 0) & (x >= 0) & (y < self.height) & (x < self.width)
        y, x, inside = keep(y, "y"), keep(x, "x"), keep(inside, "inside")
        if self.upsample is not None:
            y, x = keep(_div(y, self.upsample[0]), "uy"), keep(_div(x, self.upsample[1]), "ux")
        if self.pool is None:
            return inside, [(inside, *self._address(n, c, y, x, keep, dm, mul))]
        (pkh, pkw), (psy, psx), (ppy, ppx) = self.pool
        _, _, hs, ws = self.stored
        reads = []
        for a in range(pkh):
            for b in range(pkw):
                ys, xs = keep(mul(y, psy) - ppy + a, "ys"), keep(mul(x, psx) - ppx + b, "xs")
                valid = inside & (ys >= 0) & (xs >= 0) & (ys < hs) & (xs < ws)
                reads.append((valid, *self._address(n, c, ys, xs, keep, dm, mul)))
        return inside, reads

    def _address(self, n, c, y, x, keep, dm, mul):
        """``(word, element)`` of stored element ``(n, c, y, x)`` (in range)."""
        images, channels, hs, ws = self.stored
        if self.layout == "flat":
            e = keep(mul(mul(mul(n, channels) + c, hs) + y, ws) + x, "flat",
                     images * channels * hs * ws)
            word, element = dm(e, self.word_elements)
            return self.base + word, element
        pixel = keep(mul(mul(n, hs) + y, ws) + x, "pixel", images * hs * ws)
        row, col = (pixel, c) if self.orientation == "MN" else (c, pixel)
        prow, slot = dm(row, self.slots)
        q, lane = dm(col, self.lanes)
        element = mul(slot, self.lanes) + lane
        prow, q = keep(prow, "prow"), keep(q, "q")
        if self.parts is None:
            return self.base + mul(prow, self.q_tiles) + q, element
        count = len(self.parts)
        if count == 1:
            part = 0
        elif self.deal == "Q":
            q, part = dm(q, count)
            part, q = keep(part, "part"), keep(q, "part_q")
        else:
            unit = self.deal[1]
            block, within = dm(prow, unit)
            block = keep(block, "block")
            turn, part = dm(block, count)
            part = keep(part, "part")
            prow = keep(mul(turn, unit) + within, "part_row")
        bases = [base + (self.peer_offset if peer else 0) for peer, base, _ in self.parts]
        tiles = [q_tiles for _, _, q_tiles in self.parts]
        if isinstance(part, int):
            return bases[part] + mul(prow, tiles[part]) + q, element
        # One arithmetic for integers and Amaranth values: a select as a sum of products.
        base = sum(b * (part == i) for i, b in enumerate(bases))
        if len(set(tiles)) > 1:
            return base + sum(mul(prow, t) * (part == i) for i, t in enumerate(tiles)) + q, element
        return base + mul(prow, tiles[0]) + q, element

    # --- references ---------------------------------------------------------------------------

    def matrix(self, words):
        """The program's ``M x K`` im2col matrix read from ``words`` (a list of memory words,
        each a flat list of elements) through :meth:`locate`: the reference of the hardware."""
        A = np.zeros((self.M, self.K), dtype=np.int64)
        for m in range(self.M):
            for t in range(self.K):
                inside, reads = self.locate(self.row(m), t)
                if not inside:
                    continue
                values = [words[w][e] if v else self.pool_fill for v, w, e in reads]
                A[m, t] = max(values)
        return A

    def image(self, S):
        """``"flat"`` words (``word_elements`` elements each, zero-padded) of the stored tensor
        ``S`` (shape :attr:`stored`), from ``base``."""
        flat = np.asarray(S, dtype=np.int64).reshape(-1)
        if flat.size != int(np.prod(self.stored)):
            raise ValueError(f"Window stored tensor must have shape {self.stored!r}, "
                             f"not {np.shape(S)!r}")
        padded = np.zeros(self.words * self.word_elements, dtype=np.int64)
        padded[:flat.size] = flat
        return padded.reshape(-1, self.word_elements).tolist()

    def weights(self, weight):
        """The ``Cout x K`` ``B`` operand of a convolution weight: ``(Cout, Cin, kh, kw)`` as is,
        a transposed convolution's ``(Cin, Cout, kh, kw)`` swapped and flipped."""
        weight = np.asarray(weight)
        if self.transposed:
            weight = weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
        return np.ascontiguousarray(weight).reshape(weight.shape[0], -1)
