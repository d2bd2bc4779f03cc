"""Per-stage configuration of a computing core: plain, frozen, validated data (no Amaranth).

A :class:`GemmProgram` is what one stage asks of one core: a GEMM ``C = A @ B^T`` (``batch``
times ``M x N x K``) on the core's PE array, where its operands live, where its result goes and
the epilogue (bias, requantisation, ReLU, an activation table, a softmax, a join). The hardware
(:class:`~.core.ComputingCore`) unrolls a tuple of programs into constants; this module also
holds the memory layouts the composer must use, as code (:meth:`GemmProgram.a_words` and
friends, :func:`memory_images`), so the layout is written once.

Execution (the contract of :mod:`intar_hw.schedule.cost`)
    With ``pea = (d1, d2, d3)`` and orientation ``"MN"``, M lies on the array's ``d1`` rows and N
    on its ``d2`` columns; ``"NM"`` swaps them. Call *P* the operand on the rows (``A`` for
    ``"MN"``, ``B`` for ``"NM"``) and *Q* the one on the columns; ``P_rows``/``Q_rows`` are their
    row counts. Tiles of ``d1`` P-rows by ``d2`` Q-rows are visited batch by batch, P-tile
    outer, Q-tile inner, each ``kb = ceil(K / d3)`` beats deep; a finished tile drains one PE
    row (``d2`` lanes) per cycle, only its valid rows, while the next accumulates.

Memory layouts (word addresses, all relative to the program's base address)
    Operands (``activations`` and ``weights`` memories). A word is ``lanes`` vectors of ``d3``
    elements (``lanes`` from :func:`memory_lanes`). An operand ``X`` of ``rows`` rows (``A``:
    ``M`` rows, ``B``: ``N`` rows, each ``K`` long, i.e. ``B`` in PyTorch ``Linear`` layout) is
    stored in blocks of ``block`` rows, ``block = d1`` if it is P, ``d2`` if it is Q: word
    ``(b * ceil(rows / block) + i) * kb + kk``, lane ``r``, element ``k`` holds
    ``X[b, i * block + r, kk * d3 + k]``. Lanes and elements past the tensor are don't-care:
    the core zeroes the reduction padding itself, and results of padded rows are never written.
    So one read per operand and beat gives the whole tile slice.
    Biases (``biases`` memory; int32 words of ``d2`` lanes). ``"MN"``: word ``n // d2``, lane
    ``n % d2`` holds ``bias[n]``; ``"NM"``: word ``n``, lane 0 holds ``bias[n]`` (broadcast by
    the core). Lanes past ``N`` are don't-care.
    Results (``results`` memory; words of ``slots`` slots of ``d2`` lanes of the widest result
    format). Row ``p`` of ``R[b]`` is in slot ``p % slots`` of the words
    ``(b * ceil(P_rows / slots) + p // slots) * ceil(Q_rows / d2) + t``, lane ``c`` of the slot
    holding ``R[b, p, t * d2 + c]``, where ``R = C`` for ``"MN"`` and ``R = C^T`` (``N x M``) for
    ``"NM"``: a drained PE row is a row of ``C`` in one orientation and a column in the other.
    Lanes past the last column are written as 0. With one slot a word is one row's tile; with
    ``slots`` rows side by side, one read gives a tile of rows: that is how a later program reads a
    result of several rows as its ``A`` with one read per beat.
    ``A`` read from :attr:`Source.RESULTS` or :attr:`Source.PEER` is in that result layout (the
    result of a program with ``N == K`` and orientation ``"MN"``, written at ``a.base`` in a memory
    of ``S = a.slots`` slots of ``L = a.lanes`` lanes): ``A[b, m, k]`` in slot ``m % S``, lane
    ``k % L`` of word ``(b * ceil(M / S) + m // S) * ceil(K / L) + k // L``. A beat takes ``d3``
    adjacent lanes (``d3`` divides ``L``) of the slots of its tile's rows, all in one word:
    ``M <= S``, or ``S`` a multiple of the rows per tile of ``A`` (``d1`` for ``"MN"``, ``d2`` for
    ``"NM"``).
"""

import enum
from dataclasses import dataclass, replace

import numpy as np

from ... import numerics
from ... import timing
from ..checks import check_bool, check_count
from ...integers import cdiv, is_int
from .window import Window


__all__ = ["Source", "Destination", "MEMORIES", "MAX_SHIFT", "BIAS_FORMAT", "BIAS_LATENCY",
           "ACTIVATIONS", "JOINS", "Join", "SoftmaxLink", "OperandRead", "GemmProgram",
           "result_bits", "memory_lanes", "memory_words", "memory_images"]


class Source(enum.Enum):
    """Where an operand is read from. FIFO and off-chip sources will join these."""
    #: The core's activation scratchpad.
    ACTIVATIONS = "activations"
    #: The core's weight buffer.
    WEIGHTS = "weights"
    #: The core's own result memory, in result layout: an operand (or a join's second tensor)
    #: that an earlier program of the core computed, read where it was written.
    RESULTS = "results"
    #: Another core's result memory, in its result layout, through one of the core's peer read
    #: ports (``peer_read`` for A, ``b_peer_read`` for B, ``join_read`` for joins).
    PEER = "peer"
    #: The core's side memory: a join's second tensor loaded from off-chip (a graph input), in
    #: the result layout of the program that joins it (:meth:`GemmProgram.side_image`).
    SIDES = "sides"

    def __repr__(self):
        return f"Source.{self.name}"


class Destination(enum.Enum):
    """Where a result is written. FIFO, SFU and off-chip destinations will join these."""
    #: The core's result scratchpad.
    RESULTS = "results"

    def __repr__(self):
        return f"Destination.{self.name}"


#: Names of the memories a core may have, in port order.
MEMORIES = ("activations", "weights", "biases", "sides", "results")
#: Largest requantisation shift (as :class:`~intar_hw.hw.sfu.elementwise.Requantize`).
MAX_SHIFT = 62
#: Format of the bias words.
BIAS_FORMAT = numerics.INT32
#: Table activations a result path applies after requantisation (ReLU is fused into it).
ACTIVATIONS = ("gelu", "silu")
#: Elementwise joins of a result with a second tensor read in result layout: ``"add"``,
#: ``"mul"`` and ``"mul_add"`` (the result plus its product with the tensor).
JOINS = ("add", "mul", "mul_add")
#: Cycles a bias adds to a stage, owned by the cost model (the contract this core meets):
#: :class:`~intar_hw.hw.sfu.elementwise.Requantize` registers the biased sum before rounding.
BIAS_LATENCY = timing.BIAS_LATENCY
#: Memories holding earlier programs' results, read where they were written.
_RESULT_SOURCES = (Source.RESULTS, Source.PEER)


def _check_base(name, value, owner="GemmProgram"):
    if not is_int(value):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if value < 0:
        raise ValueError(f"{owner} {name} must be a non-negative integer, not {value!r}")


def _check_optional_count(owner, name, value):
    """``value`` is ``None`` or a positive integer."""
    if value is not None and not is_int(value):
        raise TypeError(f"{owner} {name} must be an integer or None, not {value!r}")
    if value is not None and value < 1:
        raise ValueError(f"{owner} {name} must be a positive integer or None, not {value!r}")


@dataclass(frozen=True)
class Join:
    """A join on a program's result link: the result ``r`` (after the activation) is added to
    (``"add"``) or multiplied with (``"mul"``) a tensor ``s`` of its shape, or becomes
    ``r + requantize(r * s, shift)`` (``"mul_add"``), each step clamped to ``fmt``.

    ``s`` is stored in result layout (the program's result geometry, ``slots`` included) at word
    ``base`` of ``source``: :attr:`Source.RESULTS`, :attr:`Source.PEER` or :attr:`Source.SIDES`
    (loaded from off-chip). ``shift`` requantises the product (0 for ``"add"``); ``fmt`` is the
    join's output format, the program's result (``None``: the program's ``out_format``).
    """

    kind: str
    source: Source
    base: int = 0
    shift: int = 0
    fmt: object = None

    def __post_init__(self):
        if self.kind not in JOINS:
            raise ValueError(f"Join kind must be one of {', '.join(map(repr, JOINS))}, "
                             f"not {self.kind!r}")
        if self.source not in (Source.RESULTS, Source.PEER, Source.SIDES):
            raise ValueError(f"Join source must be Source.RESULTS, Source.PEER or "
                             f"Source.SIDES, not {self.source!r}")
        _check_base("base", self.base, "Join")
        if not is_int(self.shift):
            raise TypeError(f"Join shift must be an integer, not {self.shift!r}")
        if not 0 <= self.shift <= MAX_SHIFT or (self.kind == "add" and self.shift):
            raise ValueError(f"Join shift must be between 0 and {MAX_SHIFT} (0 for 'add'), "
                             f"not {self.shift!r}")
        if self.fmt is not None:
            try:
                object.__setattr__(self, "fmt", numerics.as_format(self.fmt))
            except (TypeError, ValueError):
                raise ValueError(f"Join fmt must be a format like 'int8' or None, "
                                 f"not {self.fmt!r}") from None


@dataclass(frozen=True)
class SoftmaxLink:
    """A row-wise :func:`intar_hw.numerics.softmax` on a program's result link, after the
    activation and before the join: ``frac`` fractional bits of its input (``None``: the
    default), ``causal`` masking (rows counted modulo the program's ``M``)."""

    frac: object = None
    causal: bool = False

    def __post_init__(self):
        if self.frac is not None and not is_int(self.frac):
            raise TypeError(f"Softmax frac must be an integer or None, not {self.frac!r}")
        if not isinstance(self.causal, bool):
            raise TypeError(f"Softmax causal must be a bool, not {self.causal!r}")


@dataclass(frozen=True)
class OperandRead:
    """Where and how a program reads one GEMM operand, ``A`` or ``B`` (:class:`GemmProgram`'s
    ``a`` and ``b``); ``gather_tiles``, ``tile_stride`` and ``window`` apply to ``A`` alone,
    ``transposed`` to ``B`` alone.

    ``lanes`` and ``slots`` describe a result memory read in result layout; their defaults
    depend on the program (its ``d2`` and ``slots``), so a :class:`GemmProgram` stores its reads
    with them filled in.

    Parameters
    ----------
    source : Source
        Memory holding the operand. ``A`` and ``B`` must be read from different operand memories
        (one read port each); result memories (:attr:`Source.RESULTS`, :attr:`Source.PEER`)
        have a port per reader.
    base : int
        Word address of the operand in ``source`` (with ``window``: the window's ``base``).
    lanes : int or None
        Lanes of the result-layout words the operand is read from (:attr:`Source.RESULTS`:
        ``d2``, the default; :attr:`Source.PEER`: the peer's ``d2``).
    slots : int or None
        Slots of the result memory the operand is read from (:attr:`Source.RESULTS`: the
        program's ``slots``, the default; :attr:`Source.PEER`: the peer's, default 1).
    gather : tuple of (Source, int) or None
        The operand in result layout gathered from several result memories, ``(source, base)``
        a part, the first ``(source, base)``; the sources are :attr:`Source.RESULTS` or
        :attr:`Source.PEER`, each at most once, and the program's ``batch`` is 1. ``A`` (a
        result whose columns were dealt round-robin over cores, one ``lanes``-wide tile a word,
        all of ``A``'s rows in one word row): word ``w`` of the row is word ``w // len(gather)``
        from the base of part ``w % len(gather)``. ``B`` read as rows: as ``A`` with
        ``gather_tiles``; read transposed, the parts hold the stored rows (``K``) dealt
        round-robin in blocks of ``slots`` (one word row each). ``None`` (the default): the
        operand is read from ``source`` alone.
    gather_tiles : bool
        ``A`` only: the parts of ``gather`` (which it needs) hold whole tiles of ``A``'s rows
        round-robin instead (a result dealt over cores by rows): tile ``t`` is tile
        ``t // len(gather)`` of part ``t % len(gather)``; each part's words hold one tile's rows
        (``slots`` equal to ``A``'s rows per tile).
    tile_stride : int
        ``A`` only: tile ``t`` of ``A`` is tile ``t * tile_stride`` of the stored result from
        ``base`` (a task dealt by rows reading its rows of an undealt result: ``base`` points at
        its first tile); needs ``A`` read in result layout from one result memory, ``slots``
        equal to ``A``'s rows per tile and ``batch`` 1.
    transposed : bool
        ``B`` only: ``B`` read from a result memory holds ``X`` with ``B[n, k] = X[k, n]`` (the
        ``B`` of ``A . B``): ``X`` has ``K`` rows of ``N`` elements in result layout; ``d3``
        must be 1.
    window : Window or None
        ``A`` only: ``A`` is a convolution's im2col matrix, read through the core's
        :class:`~.window_read.WindowReader` of ``source`` (:attr:`Source.ACTIVATIONS` holding
        the input in the window's ``"flat"`` layout, ``block * d3`` elements a word, or
        :attr:`Source.RESULTS` or :attr:`Source.PEER`, the latter exactly when some of the
        window's parts are the peer's, holding it in an earlier program's result layout): see
        :mod:`.window`. It takes no ``gather`` or ``tile_stride``; ``batch`` is 1 and the
        window's ``M`` and ``K`` are the program's.

    Attributes
    ----------
    computed : bool
        Whether the operand is an earlier program's result, read from a result memory.
    laid_out : bool
        Whether it is read in result layout (from a result memory, not through a window).
    parts : tuple of (Source, int)
        Where it is read from: ``gather``, or ``((source, base),)``.

    Raises
    ------
    TypeError
        If a field is of the wrong kind.
    ValueError
        If a field is out of range or the fields contradict each other (as documented above).
    """

    source: Source
    base: int = 0
    lanes: object = None
    slots: object = None
    gather: object = None
    gather_tiles: bool = False
    tile_stride: int = 1
    transposed: bool = False
    window: object = None

    def __post_init__(self):
        if not isinstance(self.source, Source):
            raise TypeError(f"OperandRead source must be a Source, not {self.source!r}")
        _check_base("base", self.base, "OperandRead")
        _check_optional_count("OperandRead", "lanes", self.lanes)
        _check_optional_count("OperandRead", "slots", self.slots)
        check_bool("OperandRead", "gather_tiles", self.gather_tiles)
        check_count("OperandRead", "tile_stride", self.tile_stride)
        check_bool("OperandRead", "transposed", self.transposed)
        if self.gather is not None:
            self._check_gather()
        if self.window is not None:
            self._check_window()
        if self.gather_tiles and self.gather is None:
            raise ValueError("OperandRead gather_tiles needs gather")
        if self.tile_stride > 1 and (not self.laid_out or self.gather is not None):
            raise ValueError(f"OperandRead tile_stride needs a read in result layout from one "
                             f"result memory, not from {self.source!r} with gather "
                             f"{self.gather!r}")
        if self.transposed and not self.computed:
            raise ValueError(f"OperandRead transposed needs a read from a result memory, "
                             f"not from {self.source!r}")

    def _check_gather(self):
        """``gather``: at least two ``(Source, base)`` pairs, ``(source, base)`` first, each
        result memory at most once."""
        parts = self.gather
        if (not isinstance(parts, tuple) or len(parts) < 2
                or not all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], Source)
                           and is_int(p[1]) and p[1] >= 0 for p in parts)):
            raise TypeError(f"OperandRead gather must be a tuple of at least two "
                            f"(Source, base) pairs or None, not {parts!r}")
        sources = [source for source, _ in parts]
        if (parts[0] != (self.source, self.base) or len(set(sources)) != len(sources)
                or not set(sources) <= set(_RESULT_SOURCES)):
            raise ValueError(f"OperandRead gather must start with (source, base) and name "
                             f"Source.RESULTS and Source.PEER at most once each, "
                             f"not {parts!r}")

    def _check_window(self):
        """``window``: a :class:`Window` in the layout of ``source``, at ``base``."""
        w = self.window
        if not isinstance(w, Window):
            raise TypeError(f"OperandRead window must be a Window or None, not {w!r}")
        layout = {Source.ACTIVATIONS: "flat", Source.RESULTS: "result",
                  Source.PEER: "result"}.get(self.source)
        if layout is None or w.layout != layout:
            raise ValueError(f"OperandRead window reads Source.ACTIVATIONS in 'flat' layout or "
                             f"Source.RESULTS or Source.PEER in 'result' layout, not "
                             f"{self.source!r} in {w.layout!r}")
        if (self.source is Source.PEER) != (
                w.parts is not None and any(peer for peer, _, _ in w.parts)):
            raise ValueError("OperandRead window reads Source.PEER exactly when some of its "
                             "parts are the peer's")
        if self.gather is not None or self.tile_stride != 1:
            raise ValueError("OperandRead window takes no gather or tile_stride")
        if self.base != w.base:
            raise ValueError(f"OperandRead base must be the window's base {w.base}, "
                             f"not {self.base}")

    @property
    def computed(self):
        """Whether the operand is an earlier program's result, read from a result memory
        (directly or through a window), rather than loaded into an operand memory."""
        return self.source in _RESULT_SOURCES

    @property
    def laid_out(self):
        """Whether the operand is read from a result memory in result layout (not through a
        window)."""
        return self.computed and self.window is None

    @property
    def parts(self):
        """``((source, base), ...)``: where the operand is read from (see ``gather``)."""
        if self.gather is not None:
            return self.gather
        return ((self.source, self.base),)


@dataclass(frozen=True)
class GemmProgram:
    """One stage of a core: ``R = epilogue(A @ B^T + bias)``, ``batch`` times.

    Parameters
    ----------
    pea : tuple of 3 int
        The core's PE array ``(d1, d2, d3)``.
    M, N, K : int
        GEMM dimensions: ``A`` is ``M x K``, ``B`` is ``N x K``, the result ``M x N``.
    batch : int
        Independent GEMMs, each with its own ``A``, ``B`` and result, stored one after the other;
        the bias is shared. (A layer applied to a batch of rows is one GEMM with a larger M.)
    orientation : str
        ``"MN"`` (M on the array's rows) or ``"NM"`` (N on the rows).
    a : OperandRead
        How ``A`` is read (:class:`OperandRead`; default ``OperandRead(Source.ACTIVATIONS)``):
        its memory and base and, from a result memory, that memory's geometry (in result layout
        it must fit the module's memory layouts; :attr:`Source.RESULTS` has the program's ``d2``
        lanes and ``slots``), a gather, a tile stride or a convolution's window;
        ``a.transposed`` is False.
    b : OperandRead
        How ``B`` is read (default ``OperandRead(Source.WEIGHTS)``): its memory and base, and
        from a result memory that memory's geometry, a gather, or ``transposed``; ``b.window``,
        ``b.gather_tiles`` and ``b.tile_stride`` keep their defaults. ``a.source`` and
        ``b.source`` must differ unless they are result memories.
    dest : Destination
        Where the result goes.
    dest_base : int
        Word address of the result.
    bias_base : int or None
        Word address of the int32 bias vector (``N`` values) in the ``biases`` memory, or
        ``None`` for no bias.
    shift : int
        Requantisation shift, 0 to 62 (:func:`intar_hw.numerics.requantize`).
    out_format : Format or str
        Format of the requantised GEMM result, e.g. ``"int8"`` (the default); the written result
        has :attr:`result_format`.
    relu : bool
        Fused ReLU: clamp the requantised result at 0.
    slots : int
        Slots of the core's result memory words (see the result layout): 1 (the default) or
        more, the same for every program of a core.
    activation : str or None
        ``"gelu"`` or ``"silu"`` (:data:`ACTIVATIONS`) applied to the requantised result, or
        ``None``.
    activation_frac : int or None
        Fractional bits of the activation's input (``None``: the default of
        :func:`intar_hw.numerics.default_frac`).
    approximate : str
        GELU's approximation, ``"none"`` or ``"tanh"``.
    join : Join or None
        A join with a second tensor on the result link (:class:`Join`), or ``None``.
    softmax : SoftmaxLink or None
        A row-wise softmax on the result link (:class:`SoftmaxLink`), in orientation ``"MN"``
        with ``N <= d2`` or a multiple of ``d2`` (rows drained in several tiles are reordered
        first: :attr:`reorders_rows`), or ``None``.

    Attributes
    ----------
    a, b : OperandRead
        The reads as given, with the ``lanes`` and ``slots`` of a read in result layout filled
        in: ``d2`` lanes, and the program's ``slots`` in :attr:`Source.RESULTS`, 1 in
        :attr:`Source.PEER`.
    dm, dn : int
        Tile extents along M and N.
    tiles : (int, int, int)
        ``(i, j, k)``: tiles along M and N, beats per tile; as :class:`~.plan.Loop`.
    busy_cycles : int
        :func:`intar_hw.timing.core_cycles` of the program.
    cycles : int
        Cycles the core takes from ``start`` to ``done``: ``busy_cycles + ARRAY_LATENCY``, plus
        :data:`BIAS_LATENCY` with a bias, plus the epilogue's SFU latency
        (:func:`intar_hw.timing.sfu_latency`); with a softmax, ``busy_cycles`` stretched
        by :func:`intar_hw.timing.softmax_busy`.
    result_format : Format
        Format of the written result: the join's ``fmt`` with a join, else ``out_format``.

    Raises
    ------
    TypeError
        If a parameter is of the wrong kind.
    ValueError
        If a parameter is out of range, ``a.source`` and ``b.source`` are the same operand
        memory, or an operand read does not fit the program (its layout, a gather, a tile
        stride or a window).
    """
    pea: tuple
    M: int
    N: int
    K: int
    batch: int = 1
    orientation: str = "MN"
    a: OperandRead = OperandRead(Source.ACTIVATIONS)
    b: OperandRead = OperandRead(Source.WEIGHTS)
    dest: Destination = Destination.RESULTS
    dest_base: int = 0
    bias_base: object = None
    shift: int = 0
    out_format: numerics.Format = numerics.INT8
    relu: bool = False
    slots: int = 1
    activation: object = None
    activation_frac: object = None
    approximate: str = "none"
    join: object = None
    softmax: object = None

    def __post_init__(self):
        if (not isinstance(self.pea, tuple) or len(self.pea) != 3
                or not all(is_int(d) for d in self.pea)):
            raise TypeError(f"GemmProgram pea must be a tuple of 3 integers, not {self.pea!r}")
        if min(self.pea) < 1:
            raise ValueError(f"GemmProgram pea dimensions must be positive integers, "
                             f"not {self.pea!r}")
        for name in ("M", "N", "K", "batch"):
            check_count("GemmProgram", name, getattr(self, name))
        if not isinstance(self.orientation, str):
            raise TypeError(f"GemmProgram orientation must be a string, not {self.orientation!r}")
        if self.orientation not in ("MN", "NM"):
            raise ValueError(f"GemmProgram orientation must be 'MN' or 'NM', "
                             f"not {self.orientation!r}")
        for name in ("a", "b"):
            if not isinstance(getattr(self, name), OperandRead):
                raise TypeError(f"GemmProgram {name} must be an OperandRead, "
                                f"not {getattr(self, name)!r}")
        if self.a.source is self.b.source and not self.a.computed:
            raise ValueError(f"GemmProgram a.source and b.source must be different memories, "
                             f"not {self.a.source!r} for both")
        if not isinstance(self.dest, Destination):
            raise TypeError(f"GemmProgram dest must be a Destination, not {self.dest!r}")
        _check_base("dest_base", self.dest_base)
        if self.bias_base is not None:
            if not is_int(self.bias_base):
                raise TypeError(f"GemmProgram bias_base must be an integer or None, "
                                f"not {self.bias_base!r}")
            if self.bias_base < 0:
                raise ValueError(f"GemmProgram bias_base must be a non-negative integer, "
                                 f"not {self.bias_base!r}")
        if not is_int(self.shift):
            raise TypeError(f"GemmProgram shift must be an integer, not {self.shift!r}")
        if not 0 <= self.shift <= MAX_SHIFT:
            raise ValueError(f"GemmProgram shift must be between 0 and {MAX_SHIFT}, "
                             f"not {self.shift!r}")
        if not isinstance(self.out_format, (numerics.Format, str)):
            raise TypeError(f"GemmProgram out_format must be a Format or a name like 'int8', "
                            f"not {self.out_format!r}")
        if isinstance(self.out_format, str):
            try:
                fmt = numerics.as_format(self.out_format)
            except ValueError:
                raise ValueError(f"GemmProgram out_format must be a name like 'int8', "
                                 f"not {self.out_format!r}") from None
            object.__setattr__(self, "out_format", fmt)
        if not isinstance(self.relu, bool):
            raise TypeError(f"GemmProgram relu must be a bool, not {self.relu!r}")
        check_count("GemmProgram", "slots", self.slots)
        self._resolve_reads()
        self._check_a()
        self._check_b()
        self._check_epilogue()
        self._check_result_reads()

    def _resolve_reads(self):
        """Store ``a`` and ``b`` with the lanes and slots a read in result layout defaults to:
        ``d2`` lanes; the program's ``slots`` in its own result memory, 1 in a peer's."""
        for name in ("a", "b"):
            read = getattr(self, name)
            if not read.laid_out:
                continue
            slots = self.slots if read.source is Source.RESULTS else 1
            object.__setattr__(self, name, replace(
                read, lanes=self.pea[1] if read.lanes is None else read.lanes,
                slots=slots if read.slots is None else read.slots))

    def _check_a(self):
        """The checks of ``a`` that need the program's geometry (``a`` checked itself)."""
        a, block = self.a, self.a_block
        if a.transposed:
            raise ValueError("GemmProgram a.transposed must be False (B alone is read "
                             "transposed)")
        if a.window is not None:
            self._check_window()
        elif a.laid_out and (a.lanes % self.pea[2] or (self.M > a.slots and a.slots % block)):
            raise ValueError(f"GemmProgram reading A from {a.source!r} needs d3 dividing its "
                             f"{a.lanes} lanes and M <= a.slots or a.slots a multiple of A's "
                             f"{block} rows per tile, not M={self.M!r}, a.slots={a.slots!r}, "
                             f"pea {self.pea!r}")
        if a.gather is not None and not a.gather_tiles and self.M > a.slots:
            raise ValueError(f"GemmProgram a.gather by words needs A's {self.M} rows in one "
                             f"word row of {a.slots} slots")
        if a.gather_tiles and a.slots != block:
            raise ValueError(f"GemmProgram a.gather_tiles needs a.slots equal to A's {block} "
                             f"rows per tile, not {a.slots!r}")
        if a.tile_stride > 1 and (a.slots != block or self.batch != 1):
            raise ValueError(f"GemmProgram a.tile_stride needs a.slots equal to A's {block} "
                             f"rows per tile and batch 1, not {a.slots!r} and {self.batch!r}")

    def _check_window(self):
        """The checks of ``a.window`` that need the program's geometry."""
        w = self.a.window
        if (w.M, w.K) != (self.M, self.K) or self.batch != 1:
            raise ValueError(f"GemmProgram a.window reads a {w.M} x {w.K} im2col matrix, not "
                             f"A of {self.batch} x {self.M} x {self.K}")
        if w.rows is not None and w.rows[0] != self.a_block:
            raise ValueError(f"GemmProgram a.window rows must come in tiles of A's "
                             f"{self.a_block} rows, not {w.rows[0]}")
        if w.layout == "flat" and w.word_elements != self.a_block * self.pea[2]:
            raise ValueError(f"GemmProgram a.window in 'flat' layout needs words of "
                             f"{self.a_block * self.pea[2]} elements (A's rows per tile times "
                             f"d3), not {w.word_elements}")
        if w.layout == "result" and w.parts is None and (w.slots, w.lanes) != (
                self.slots, self.pea[1]):
            raise ValueError(f"GemmProgram a.window reads the core's own result memory: "
                             f"{self.slots} slots of {self.pea[1]} lanes, not {w.slots} of "
                             f"{w.lanes}")

    def _check_b(self):
        """The checks of ``b`` that need the program's geometry (``b`` checked itself)."""
        b, block = self.b, self.b_block
        if b.window is not None or b.gather_tiles or b.tile_stride != 1:
            raise ValueError(f"GemmProgram b.window, b.gather_tiles and b.tile_stride must be "
                             f"None, False and 1 (A's alone), not {b.window!r}, "
                             f"{b.gather_tiles!r} and {b.tile_stride!r}")
        if not b.laid_out:
            return
        L, S = b.lanes, b.slots
        if b.transposed:
            # B[n, k] = X[k, n]: a beat reads row k of X, the tile's B rows as adjacent lanes.
            if self.pea[2] != 1 or (L % block and self.N > L):
                raise ValueError(f"GemmProgram reading B transposed from {b.source!r} needs "
                                 f"d3 == 1 and its {block} rows per tile within one word of "
                                 f"{L} lanes, not pea {self.pea!r}, N={self.N!r}")
        elif L % self.pea[2] or (self.N > S and S % block):
            raise ValueError(f"GemmProgram reading B from {b.source!r} needs d3 dividing its "
                             f"{L} lanes and N <= b.slots or b.slots a multiple of B's {block} "
                             f"rows per tile, not N={self.N!r}, b.slots={S!r}, pea {self.pea!r}")
        if b.gather is not None and not b.transposed and S != block:
            raise ValueError(f"GemmProgram b.gather needs B read transposed, or as rows with "
                             f"b.slots equal to B's {block} rows per tile, not {S!r}")

    def _check_result_reads(self):
        """The checks ``a`` and ``b`` share: a gather needs batch 1, and the program's own result
        memory has the program's geometry."""
        for name, read in (("a", self.a), ("b", self.b)):
            if read.gather is not None and self.batch != 1:
                raise ValueError(f"GemmProgram {name}.gather needs batch 1, "
                                 f"not {self.batch!r}")
            if read.laid_out and read.source is Source.RESULTS and (
                    (read.lanes, read.slots) != (self.pea[1], self.slots)):
                raise ValueError(f"GemmProgram reading {name.upper()} from Source.RESULTS "
                                 f"needs {name}.lanes d2 ({self.pea[1]}) and {name}.slots "
                                 f"slots ({self.slots}), not {read.lanes!r} and "
                                 f"{read.slots!r}")

    def _check_epilogue(self):
        if self.softmax is not None and not isinstance(self.softmax, SoftmaxLink):
            raise TypeError(f"GemmProgram softmax must be a SoftmaxLink or None, "
                            f"not {self.softmax!r}")
        d1, d2, _ = self.pea
        if self.softmax is not None and (self.orientation != "MN" or not (
                self.N <= d2 or self.N % d2 == 0)):
            raise ValueError(f"GemmProgram softmax needs rows drained in orientation 'MN', "
                             f"N <= d2 or a multiple of d2, not {self.orientation!r}, "
                             f"N={self.N!r}, pea {self.pea!r}")
        if self.activation is not None and not isinstance(self.activation, str):
            raise TypeError(f"GemmProgram activation must be a string or None, "
                            f"not {self.activation!r}")
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise ValueError(f"GemmProgram activation must be one of "
                             f"{', '.join(map(repr, ACTIVATIONS))} or None, "
                             f"not {self.activation!r}")
        if self.activation_frac is not None and not is_int(self.activation_frac):
            raise TypeError(f"GemmProgram activation_frac must be an integer or None, "
                            f"not {self.activation_frac!r}")
        if self.approximate not in ("none", "tanh"):
            raise ValueError(f"GemmProgram approximate must be 'none' or 'tanh', "
                             f"not {self.approximate!r}")
        if self.join is not None and not isinstance(self.join, Join):
            raise TypeError(f"GemmProgram join must be a Join or None, not {self.join!r}")
        if self.join is not None and self.join.fmt is None:
            object.__setattr__(self, "join", replace(self.join, fmt=self.out_format))

    @property
    def result_format(self):
        return self.out_format if self.join is None else self.join.fmt

    @property
    def a_block(self):
        """Rows of ``A`` per tile: ``d1`` (``"MN"``, A on the array's rows) or ``d2``."""
        return self.pea[0] if self.orientation == "MN" else self.pea[1]

    @property
    def b_block(self):
        """Rows of ``B`` per tile: ``d2`` (``"MN"``) or ``d1``."""
        return self.pea[1] if self.orientation == "MN" else self.pea[0]

    @property
    def sfu_latency(self):
        """Cycles the activation and the join add to the result path."""
        return timing.sfu_latency(self.activation, self.join and self.join.kind,
                                  self.out_format.bits)

    @property
    def softmax_lanes(self):
        """Elements per beat into the softmax: a whole row (``N <= d2``) or ``d2``."""
        return min(self.N, self.pea[1])

    @property
    def reorders_rows(self):
        """Whether a softmax needs the drained row pieces reordered: its rows leave in several
        Q tiles, and a P tile holds several rows (see :class:`.row_reorder.RowReorder`)."""
        return (self.softmax is not None and self.q_tiles > 1
                and min(self.pea[0], self.p_rows) > 1)

    @property
    def reorder_key(self):
        """What a row reorder unit is built from, or ``None``."""
        if not self.reorders_rows:
            return None
        return (self.pea[1], self.out_format.bits, min(self.pea[0], self.p_rows), self.q_tiles,
                self.p_tiles, self.p_rem)

    @property
    def softmax_key(self):
        """What a softmax unit is built from (``None`` without one): programs with equal keys
        share it."""
        if self.softmax is None:
            return None
        causal = self.softmax.causal
        return (self.N, self.softmax_lanes, self.out_format, self.softmax.frac, causal,
                self.M if causal else None)

    # --- geometry -----------------------------------------------------------------------------

    @property
    def dm(self):
        return self.pea[0] if self.orientation == "MN" else self.pea[1]

    @property
    def dn(self):
        return self.pea[1] if self.orientation == "MN" else self.pea[0]

    @property
    def kb(self):
        """Beats per tile, ``ceil(K / d3)``."""
        return cdiv(self.K, self.pea[2])

    @property
    def tiles(self):
        return (cdiv(self.M, self.dm), cdiv(self.N, self.dn), self.kb)

    @property
    def p_rows(self):
        """Rows of the operand on the array's rows: M (``"MN"``) or N (``"NM"``)."""
        return self.M if self.orientation == "MN" else self.N

    @property
    def q_rows(self):
        """Rows of the operand on the array's columns: N (``"MN"``) or M (``"NM"``)."""
        return self.N if self.orientation == "MN" else self.M

    @property
    def p_tiles(self):
        return cdiv(self.p_rows, self.pea[0])

    @property
    def q_tiles(self):
        return cdiv(self.q_rows, self.pea[1])

    @property
    def p_rem(self):
        """Valid rows of the last tile along the array's rows (1 to ``d1``)."""
        return self.p_rows - (self.p_tiles - 1) * self.pea[0]

    @property
    def q_rem(self):
        """Valid columns of the last tile along the array's columns (1 to ``d2``)."""
        return self.q_rows - (self.q_tiles - 1) * self.pea[1]

    @property
    def k_rem(self):
        """Valid elements of the last beat of a reduction (1 to ``d3``)."""
        return self.K - (self.kb - 1) * self.pea[2]

    @property
    def p_source(self):
        return self.a.source if self.orientation == "MN" else self.b.source

    @property
    def q_source(self):
        return self.b.source if self.orientation == "MN" else self.a.source

    @property
    def p_base(self):
        """Word address of P on the port the operand fetch reads it from."""
        return self._a_port_base if self.orientation == "MN" else self.b.base

    @property
    def q_base(self):
        """Word address of Q on the port the operand fetch reads it from."""
        return self.b.base if self.orientation == "MN" else self._a_port_base

    @property
    def _a_port_base(self):
        # A window reader's port addresses the im2col tiles from 0 (the input is at a.base).
        return 0 if self.a.window is not None else self.a.base

    @property
    def epilogue(self):
        """``(shift, out_format, relu, has_bias)``: programs with equal epilogues share one
        requantiser."""
        return (self.shift, self.out_format, self.relu, self.bias_base is not None)

    @property
    def activation_key(self):
        """``(function, format, frac, approximate)`` or ``None``: programs with equal keys share
        one activation unit."""
        if self.activation is None:
            return None
        return (self.activation, self.out_format, self.activation_frac, self.approximate)

    @property
    def join_key(self):
        """``(join, in format, shift, format)`` or ``None``: equal keys share one join unit."""
        if self.join is None:
            return None
        join = self.join
        return (join.kind, self.out_format, join.shift, join.fmt)

    # --- cycles -------------------------------------------------------------------------------

    @property
    def busy_cycles(self):
        return timing.core_cycles(self.pea, self.orientation, self.batch, self.M, self.N,
                                self.K)[0]

    @property
    def cycles(self):
        busy = self.busy_cycles
        if self.softmax is not None:
            busy = timing.softmax_busy(self.pea, self.batch, self.M, self.N, self.K,
                                     self.out_format.bits, busy)
        return (busy + timing.ARRAY_LATENCY + (BIAS_LATENCY if self.bias_base is not None else 0)
                + self.sfu_latency)

    # --- memory layouts -----------------------------------------------------------------------

    @property
    def a_words(self):
        """Words ``A`` takes in its memory (a window's input in ``"flat"`` layout; none when it
        is an earlier program's result)."""
        a = self.a
        if a.window is not None:
            return a.window.words if a.window.layout == "flat" else 0
        if a.laid_out:
            return self.batch * cdiv(self.M, a.slots) * cdiv(self.K, a.lanes)
        return self.batch * cdiv(self.M, self.dm) * self.kb

    @property
    def b_words(self):
        """Words ``B`` takes in its memory."""
        b = self.b
        if b.laid_out and b.transposed:
            return self.batch * cdiv(self.K, b.slots) * cdiv(self.N, b.lanes)
        if b.laid_out:
            return self.batch * cdiv(self.N, b.slots) * cdiv(self.K, b.lanes)
        return self.batch * cdiv(self.N, self.dn) * self.kb

    @property
    def bias_words(self):
        """Words the bias takes in the ``biases`` memory (0 without a bias)."""
        if self.bias_base is None:
            return 0
        return cdiv(self.N, self.pea[1]) if self.orientation == "MN" else self.N

    @property
    def dest_words(self):
        """Words the result takes in its memory."""
        return self.batch * cdiv(self.p_rows, self.slots) * self.q_tiles

    def extents(self):
        """``{memory name: words used from address 0}`` of every memory the program touches."""
        used = {}

        def use(name, end):
            used[name] = max(used.get(name, 0), end)
        parts = self.a.parts
        for i, (source, base) in enumerate(parts):
            # Part i holds words i, i + len(parts), ... of the row.
            use(source.value, base + len(range(i, self.a_words, len(parts))))
        use(self.b.source.value, self.b.base + self.b_words)
        use(self.dest.value, self.dest_base + self.dest_words)
        if self.join is not None:
            use(self.join.source.value, self.join.base + self.dest_words)
        if self.bias_base is not None:
            use("biases", self.bias_base + self.bias_words)
        return used

    def _operand_image(self, name, X, rows, block, lanes):
        d3, kb = self.pea[2], self.kb
        X = np.asarray(X)
        window = self.a.window
        if name == "A" and window is not None:
            # The stored input, in the window's flat layout, its words at the bottom of ours.
            flat = window.image(X)
            words = np.zeros((len(flat), lanes * d3), dtype=np.int64)
            words[:, :window.word_elements] = flat
            return words.reshape(-1, lanes, d3).tolist()
        if X.shape != (self.batch, rows, self.K) and not (self.batch == 1
                                                          and X.shape == (rows, self.K)):
            raise ValueError(f"GemmProgram operand {name} must have shape "
                             f"{(self.batch, rows, self.K)!r}, not {X.shape!r}")
        X = X.reshape(self.batch, rows, self.K).astype(np.int64)
        blocks = cdiv(rows, block)
        padded = np.zeros((self.batch, blocks * block, kb * d3), dtype=np.int64)
        padded[:, :rows, :self.K] = X
        # (batch, block index, lane, beat, element) -> (batch, block index, beat, lane, element)
        words = padded.reshape(self.batch, blocks, block, kb, d3).transpose(0, 1, 3, 2, 4)
        words = np.concatenate(
            [words, np.zeros(words.shape[:3] + (lanes - block, d3), dtype=np.int64)], axis=3)
        return words.reshape(-1, lanes, d3).tolist()

    def a_image(self, A, lanes=None):
        """Words of ``A`` (``(batch, M, K)`` or ``(M, K)``; with ``a.window`` in ``"flat"``
        layout, the convolution's stored input) for its memory, from ``a.base``.

        ``lanes`` is the memory's word width in ``d3``-vectors (:func:`memory_lanes`); by default
        the block height of ``A``. Padding is written as zeros.
        """
        block = self.pea[0] if self.orientation == "MN" else self.pea[1]
        return self._operand_image("A", A, self.M, block, block if lanes is None else lanes)

    def b_image(self, B, lanes=None):
        """Words of ``B`` (``(batch, N, K)`` or ``(N, K)``) for its memory, from ``b.base``."""
        block = self.pea[1] if self.orientation == "MN" else self.pea[0]
        return self._operand_image("B", B, self.N, block, block if lanes is None else lanes)

    def bias_image(self, bias):
        """Words of the int32 ``bias`` (``N`` values) for the ``biases`` memory."""
        bias = np.asarray(bias, dtype=np.int64).reshape(-1)
        if bias.shape != (self.N,):
            raise ValueError(f"GemmProgram bias must have {self.N} values, not {bias.size}")
        d2 = self.pea[1]
        if self.orientation == "NM":
            return [[int(v)] + [0] * (d2 - 1) for v in bias]
        padded = np.zeros(self.bias_words * d2, dtype=np.int64)
        padded[:self.N] = bias
        return padded.reshape(-1, d2).tolist()

    def side_image(self, S):
        """Words of a join's second tensor ``S`` (``(batch, M, N)`` or ``(M, N)``, like ``C``)
        in this program's result layout, for :attr:`Source.SIDES` from ``join.base``: per word,
        ``slots * d2`` elements (slot by slot), padding 0."""
        S = np.asarray(S, dtype=np.int64)
        if S.shape != (self.batch, self.M, self.N) and not (self.batch == 1
                                                            and S.shape == (self.M, self.N)):
            raise ValueError(f"GemmProgram side tensor must have shape "
                             f"{(self.batch, self.M, self.N)!r}, not {S.shape!r}")
        R = S.reshape(self.batch, self.M, self.N)
        if self.orientation == "NM":
            R = R.transpose(0, 2, 1)
        d2, slots = self.pea[1], self.slots
        rows = cdiv(self.p_rows, slots) * slots
        padded = np.zeros((self.batch, rows, self.q_tiles * d2), dtype=np.int64)
        padded[:, :self.p_rows, :self.q_rows] = R
        # (batch, word row, slot, tile, lane) -> (batch, word row, tile, slot, lane)
        words = padded.reshape(self.batch, rows // slots, slots, self.q_tiles, d2)
        return words.transpose(0, 1, 3, 2, 4).reshape(-1, slots * d2).tolist()

    def host_address(self, b, p, t):
        """Address of row ``p``, Q tile ``t`` of ``R[b]`` on the core's ``results_read`` port:
        ``word << ceil_log2(slots) | slot`` (with one slot, the word)."""
        S = self.slots
        word = self.dest_base + (b * cdiv(self.p_rows, S) + p // S) * self.q_tiles + t
        return (word << (S - 1).bit_length()) | (p % S)

    def host_addresses(self):
        """Every :meth:`host_address` of the result, batch, P row, Q tile order."""
        return [self.host_address(b, p, t) for b in range(self.batch)
                for p in range(self.p_rows) for t in range(self.q_tiles)]

    def result_from_words(self, words):
        """The ``(batch, M, N)`` result from the ``d2``-lane words read at
        :meth:`host_addresses`, in that order.

        Raises :class:`ValueError` if a padding lane (past the last column) is not 0.
        """
        d2 = self.pea[1]
        words = np.asarray(words, dtype=np.int64)
        count = self.batch * self.p_rows * self.q_tiles
        if words.shape != (count, d2):
            raise ValueError(f"GemmProgram result must be {count} words of {d2} "
                             f"lanes, not an array of shape {words.shape!r}")
        rows = words.reshape(self.batch, self.p_rows, self.q_tiles * d2)
        if np.any(rows[:, :, self.q_rows:]):
            raise ValueError("GemmProgram result has non-zero padding lanes")
        rows = rows[:, :, :self.q_rows]
        return rows if self.orientation == "MN" else rows.transpose(0, 2, 1)


def result_bits(programs):
    """Bits of a result-memory element of a core running ``programs``: the widest result
    format (its side memory has the same words)."""
    return max(p.result_format.bits for p in programs)


def memory_lanes(programs):
    """``{memory name: lanes}``: the word width, in ``d3``-vectors, of each operand memory.

    A memory that feeds the array's rows in some program needs ``d1`` lanes, its columns ``d2``.
    """
    lanes = {}
    for p in programs:
        for source, extent in ((p.p_source, p.pea[0]), (p.q_source, p.pea[1])):
            if source in _RESULT_SOURCES:
                continue        # result memories have their own word shape
            lanes[source.value] = max(lanes.get(source.value, 0), extent)
    return lanes


def memory_words(programs):
    """``{memory name: words}``: the smallest depth of each memory the programs use."""
    words = {}
    for p in programs:
        for name, used in p.extents().items():
            words[name] = max(words.get(name, 0), used)
    return words


def _place_operand(images, lanes, name, read, X, image_of):
    """Write operand ``name`` (``X``, laid out by ``image_of``) where ``read`` reads it, unless
    it is an earlier program's result (then ``X`` must be ``None``)."""
    if read.computed:
        if X is not None:
            raise ValueError(f"memory_images takes no {name} for a program reading "
                             f"{read.source!r}")
        return
    words = image_of(X, lanes[read.source.value])
    images[read.source.value][read.base:read.base + len(words)] = words


def memory_images(programs, operands, depths=None):
    """Initial contents of the memories for running ``programs`` on ``operands``.

    ``operands[s]`` is ``(A, B, bias)`` or ``(A, B, bias, side)`` for program ``s`` (``bias``
    ``None`` when the program has none, ``side`` the second tensor of a join from
    :attr:`Source.SIDES`), or ``None`` to leave the program's inputs out; an ``A`` or ``B`` read
    from a result memory is produced by a core and must be ``None``. Returns ``{memory name:
    words}`` for the operand, bias and side memories, each as long as its ``depths`` entry
    (default :func:`memory_words`), unused words zero. Programs whose inputs overlap must agree
    on them.
    """
    words = memory_words(programs)
    if depths is not None:
        words.update(depths)
    lanes = memory_lanes(programs)
    d3 = programs[0].pea[2]
    images = {}
    for name in lanes:
        images[name] = [[[0] * d3 for _ in range(lanes[name])] for _ in range(words[name])]
    if any(p.bias_base is not None for p in programs):
        images["biases"] = [[0] * programs[0].pea[1] for _ in range(words["biases"])]
    if "sides" in words:
        elements = programs[0].slots * programs[0].pea[1]
        images["sides"] = [[0] * elements for _ in range(words["sides"])]
    for index, (program, inputs) in enumerate(zip(programs, operands)):
        if inputs is None:
            continue
        if len(inputs) not in (3, 4):
            raise ValueError(f"memory_images operands of program {index} must be (A, B, bias) "
                             f"or (A, B, bias, side), not {len(inputs)} items")
        A, B, bias, side = tuple(inputs) + (None,) * (4 - len(inputs))
        if program.join is not None and program.join.source is Source.SIDES:
            if side is None:
                raise ValueError(f"memory_images needs a side tensor for program {index}, "
                                 f"which joins Source.SIDES")
            s = program.side_image(side)
            base = program.join.base
            images["sides"][base:base + len(s)] = s
        _place_operand(images, lanes, "A", program.a, A, program.a_image)
        _place_operand(images, lanes, "B", program.b, B, program.b_image)
        if program.bias_base is not None:
            if bias is None:
                raise ValueError("memory_images needs a bias for a program with bias_base")
            c = program.bias_image(bias)
            images["biases"][program.bias_base:program.bias_base + len(c)] = c
    return images
