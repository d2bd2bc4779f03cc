"""From a schedule to the per-core programs of a :class:`~.layout.Plan` (plain Python).

:func:`plan` walks a :class:`~intar_hw.schedule.Schedule`'s placements in stage order with a
:class:`_Planner`, whose methods are the steps: where a part's ``A`` comes from (a graph input,
its own or a peer's result memory, gathered or by tiles, through a convolution window), its
matmul ``B``, its join's side tensor, and the words of each memory it takes. Every case it cannot
build raises :class:`ValueError` naming the task and tensor
(:func:`intar_hw.schedule.schedule` asks it before offering a schedule).

What the generator supports today (everything else raises :class:`ValueError` saying what is
not supported yet):

- tasks that are ``linear`` operators or single-head matmuls of two earlier results (``B``
  read as rows for ``A . B^T``, transposed for ``A . B``), with an epilogue on their result link
  of an optional ReLU, a GELU/SiLU table, a softmax (``N <= d2`` or a multiple of it; rows
  drained in several tiles pass a row reorder buffer) and an add/mul join with a tensor computed
  in the same tiles or a graph input, which the loader writes into the core's side memory in
  the task's result layout (:attr:`~intar_hw.hw.core.Source.SIDES`); a mul followed by an add
  of its first factor is one ``mul_add`` join (:func:`_epilogue`);
- tasks on one core, or dealt over a group of cores with equal PE arrays: the tiles of the
  dealt dimension go round-robin to the group's cores (``cost.deal``), one :class:`Task` (a
  *part*) per core that gets any, each with its own program, weight rows and bias (split N) or
  input rows (split M). What the parts share is read off-chip once and broadcast: a graph
  input to the parts of a split-N task, the weights and bias to the parts of a split-M task.
  Per task the loader reads all parts' inputs first, then their join sides, then biases and
  weights. A core group
  whose other cores get no tiles is that one core;
- stages of any pattern; a task's ``A`` (and a matmul's ``B``) is a graph input (streamed from
  off-chip into the core's ``activations`` memory) or the result of an earlier task, read where
  it was written: from the core's own result memory
  (:attr:`~intar_hw.hw.core.Source.RESULTS`) or, across cores, from the producer's through a
  read port of it (:attr:`~intar_hw.hw.core.Source.PEER`), each read waiting until the
  producer's ``results_level`` passes its word. A result of several rows is stored with the
  rows of its readers' tiles side by side in the slots of a word (:func:`_result_slots`). A
  result dealt over cores is gathered by its reader: word by word when dealt along N (all rows
  in one word row), tile by tile when dealt by rows (a transposed ``B``: block of stored rows by
  block), or read from one part by a reader dealt by the same rows; a reader dealt by rows
  reads its every-count-th tile of an undealt result. That is the task pipeline's ``fifo``
  edge and row-block buffer: the buffer is the producer's result memory. A ``KOUTER``
  consumer runs as ``ROWS`` over its operand (the same overlap for one row; rank-d updates into
  an accumulator buffer for several rows are not built, so such pipelines run longer than
  predicted);
- ``conv2d`` and ``conv_transpose2d`` tasks: ``A`` is read through a window
  (:class:`~intar_hw.hw.core.window.Window`): a graph input flat in the activations memory
  (the whole tensor, broadcast to every part of a dealt task: windows overlap) or the result
  of an earlier convolution where its parts wrote it, in this core's result memory and at most
  one peer's (the reader keeps a copy of the peer's, written alongside it). An upsampling or
  max-pooling on the producer's result link (with at most a ReLU, which commutes) is applied by
  the readers' windows, the result being stored before it; a part of a convolution dealt by
  pixels computes every count-th tile; a convolution's weights are broadcast to its parts;
- 8- or 16-bit operands, one width for the whole graph;
- results kept in the cores' result memories; graph outputs written back off-chip by the storer
  after the stage's compute (or read by the host, ``offchip=False``).
"""

from dataclasses import replace

from ..graph import Graph, OpKind
from ..hw.core import GemmProgram, Join, OperandRead, SoftmaxLink, Source
from ..hw.core.window import Window
from ..integers import cdiv
from ..schedule import Order, Schedule
from .layout import Plan, Task, is_conv


__all__ = ["plan"]


def plan(schedule, graph):
    """The :class:`~.layout.Plan` of ``schedule`` on ``graph``.

    Raises
    ------
    TypeError
        If ``schedule`` is not a Schedule or ``graph`` not a Graph.
    ValueError
        If the graph does not match the schedule, or the schedule uses something the generator
        does not support yet (the message says what).
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"Schedule must be a Schedule, not {schedule!r}")
    if not isinstance(graph, Graph):
        raise TypeError(f"Graph must be a Graph, not {graph!r}")
    _check_gemms(schedule, graph)
    return _Planner(schedule, graph).run()


def _moved(read, base):
    """``read`` (an :class:`OperandRead`) at word ``base``, a window's stored input with it."""
    window = None if read.window is None else replace(read.window, base=base)
    return replace(read, base=base, window=window)


def _unsupported(what):
    return ValueError(f"The generator does not support {what} yet")


def _op(graph, name):
    try:
        return graph.op(name)
    except ValueError:
        return None


def _check_gemms(schedule, graph):
    for stage in schedule.stages:
        for p in stage.placements:
            op = _op(graph, p.task)
            if op is None:
                raise ValueError(f"Graph {graph.name!r} has no operator {p.task!r}")
            if op.kind in (OpKind.LINEAR, OpKind.MATMUL, OpKind.CONV2D,
                           OpKind.CONV_TRANSPOSE2D):
                heads, M, K, N = op.gemm
                if (heads, M, N, K) != p.gemm:
                    raise ValueError(f"Task {p.task!r} GEMM {p.gemm!r} does not match the "
                                     f"graph's operator {(heads, M, N, K)!r}")
                weight = next((o for o in p.operands if o.role == "weight"), None)
                if weight is not None and weight.bytes != op.param_bytes:
                    raise ValueError(f"Task {p.task!r} reads {weight.bytes} parameter bytes but "
                                     f"the graph's operator has {op.param_bytes}")


def _deal(schedule, p):
    """``[(core, picks)]``: the cores of placement ``p`` that get tiles, in the group's order,
    with the indices along ``p.split`` each computes (``None`` when one core does it all).

    Tiles of the dealt dimension go round-robin to the group's cores (``cost.deal``): tile
    ``u`` to core ``p.cores[u % len(p.cores)]``.
    """
    working = [loop for loop in p.loops if loop.cycles > 0]
    if len(working) == 1:
        return [(working[0].core, None)]
    peas = {schedule.cores[c].pea for c in p.cores}
    orientations = {loop.orientation for loop in working}
    if len(peas) != 1 or len(orientations) != 1:
        raise _unsupported(f"tasks dealt over cores of different PE arrays (task {p.task!r} on "
                           f"cores {', '.join(str(loop.core) for loop in working)})")
    (d1, d2, _), = peas
    orientation, = orientations
    batch, M, N, K = p.gemm
    size = M if p.split == "M" else N
    unit = (d1 if orientation == "MN" else d2) if p.split == "M" else (
        d2 if orientation == "MN" else d1)
    units = cdiv(size, unit)
    count = len(p.cores)
    shares = []
    for r, core in enumerate(p.cores):
        picks = tuple(i for u in range(r, units, count)
                      for i in range(u * unit, min((u + 1) * unit, size)))
        if picks:
            shares.append((core, picks))
    if [c for c, _ in shares] != [loop.core for loop in working]:
        raise ValueError(f"Task {p.task!r} deals tiles to cores "
                         f"{', '.join(str(c) for c, _ in shares)}, not to the schedule's "
                         f"{', '.join(str(loop.core) for loop in working)}")
    return shares


def _epilogue(graph, op, kinds):
    """``(GemmProgram keyword arguments, side tensor or None, view or None)`` of the SFU chain
    ``kinds`` after ``op`` (a join's ``kind``, ``shift`` and ``fmt`` as a dict under ``"join"``,
    made a :class:`Join` once its side's memory is known): an optional ReLU first (fused into
    the requantiser), an optional table activation, an optional softmax, an optional join with
    a side tensor, in that order.
    An upsampling or max-pooling (the ``view``) may come before or after the ReLU (they
    commute) and nothing else: the result is stored before it, and its readers' windows apply
    it. A ``mul`` followed by an ``add`` of its first factor is one ``"mul_add"`` join
    (``r + r * side``, the two in one format)."""
    kwargs, side, view, current, stage = {"relu": False}, None, None, op.name, 0
    factor = None           # the value a mul join multiplied, which an add may take back
    order = {"relu": 0, "upsample": 0, "maxpool": 0, "gelu": 1, "silu": 1, "softmax": 2,
             "add": 3, "mul": 3}
    for kind in kinds:
        follower = next((c for c in graph.consumers(current) if c.kind.value == kind), None)
        spatial = kind in ("upsample", "maxpool")
        join = kwargs.get("join")
        if (kind == "add" and join is not None and join["kind"] == "mul"
                and follower is not None
                and {t.name for t in follower.inputs} == {current, factor}):
            if follower.output.fmt != join["fmt"]:
                raise _unsupported(f"a mul and an add of its factor in different formats "
                                   f"(task {op.name!r})")
            join["kind"] = "mul_add"
            current = follower.name
            continue
        if (follower is None or order.get(kind, -1) < stage
                or (spatial and (view is not None or len(set(kinds) - {kind, "relu"})))):
            raise _unsupported(f"SFUs {', '.join(kinds)} on a result link (task {op.name!r})")
        stage = order[kind] + (0 if kind in ("relu", "upsample", "maxpool") else 1)
        if spatial:
            view = follower
        elif kind == "relu":
            if kwargs["relu"]:
                raise _unsupported(f"SFUs {', '.join(kinds)} on a result link "
                                   f"(task {op.name!r})")
            kwargs["relu"] = True
        elif kind in ("gelu", "silu"):
            kwargs.update(activation=kind, activation_frac=follower.frac,
                          approximate=getattr(follower, "approximate", "none"))
        elif kind == "softmax":
            kwargs.update(softmax=SoftmaxLink(follower.frac, follower.causal))
        else:
            side = next((t.name for t in follower.inputs if t.name != current), None)
            if side is None:
                raise _unsupported(f"a join of a result with itself (task {op.name!r})")
            kwargs.update(join=dict(kind=kind, shift=getattr(follower, "shift", 0),
                                    fmt=follower.output.fmt))
            factor = current
        current = follower.name
    return kwargs, side, view


def _working_cores(p):
    return [loop.core for loop in p.loops if loop.cycles > 0]


def _result_slots(schedule):
    """``{core: slots}`` of every core's result memory.

    A result read as the ``A`` of a later task of ``M > 1`` rows is stored with the rows of the
    consumer's tiles side by side (``min(rows per tile, M)`` slots); a join reads its side tensor
    in its own result layout, so the cores of both agree (the larger count wins).
    """
    cores = {p.task: _working_cores(p) for st in schedule.stages for p in st.placements}
    slots = {c: 1 for task in cores.values() for c in task}
    links = []
    for stage in schedule.stages:
        for p in stage.placements:
            M = p.gemm[1]
            for o in p.operands:
                if o.producer not in cores:
                    continue
                loop = next(loop for loop in p.loops if loop.cycles > 0)
                d1, d2, _ = schedule.cores[loop.core].pea
                # Rows per tile of A and of B^T (the stored rows of a B read transposed are its
                # columns: one per beat, no slots needed).
                rows = {"A": (d1, d2, M), "BT": (d2, d1, p.gemm[2])}.get(o.role)
                if rows is not None and rows[2] > 1:
                    mn, nm, count = rows
                    need = min(mn if loop.orientation == "MN" else nm, count)
                    for c in cores[o.producer]:
                        slots[c] = max(slots[c], need)
                elif o.role == "side":
                    links += [(a, b) for a in cores[o.producer] for b in cores[p.task]]
    changed = True
    while changed:
        changed = False
        for a, b in links:
            if slots[a] != slots[b]:
                slots[a] = slots[b] = max(slots[a], slots[b])
                changed = True
    return slots


def _check_result_read(task, tensor, producer, pea, orientation=None, rows=0):
    """Raise what the generator lacks, in the user's terms, when a part of ``task`` on a core of
    PE array ``pea`` cannot read ``tensor`` the way ``producer`` (a :class:`Task`) stored it: a
    beat takes ``d3`` elements of a stored word, so the producer's words (``d2`` lanes) must
    hold whole beats; and (with ``orientation``, for an ``A`` of ``rows`` rows) a tile's rows
    must sit in one word row or in whole tiles of them."""
    lanes, slots = producer.gemm.pea[1], producer.gemm.slots
    where = f"task {task!r} reads {tensor!r} from core {producer.core}"
    if lanes % pea[2]:
        raise _unsupported(f"reading a result written {lanes} element{'s' * (lanes != 1)} a "
                           f"word in beats of {pea[2]} ({where}: the cores' PE arrays "
                           f"{_shape(producer.gemm.pea)} and {_shape(pea)} would need d3 "
                           f"dividing the producer's d2)")
    block = pea[0] if orientation == "MN" else pea[1]
    if orientation is not None and rows > slots and slots % block:
        raise _unsupported(f"reading a result stored {slots} rows a word in tiles of {block} "
                           f"rows ({where}: the cores' PE arrays {_shape(producer.gemm.pea)} "
                           f"and {_shape(pea)})")


def _shape(pea):
    return "x".join(map(str, pea))


class _Planner:
    """The state of one :func:`plan`: the memory words allocated so far, the parts made, which
    peer each core reads; a method per step (joins, B operands, convolution windows, A operands,
    one placement)."""

    def __init__(self, schedule, graph):
        self.schedule, self.graph = schedule, graph
        self.words = {}          # (core, memory) -> next free word
        self.counts = {}         # core -> programs so far
        self.made = {}           # task name -> its parts
        self.peers = {}          # core -> the core whose result memory it reads A from
        self.join_peers = {}     # core -> the core whose result memory its joins read
        self.b_peers = {}        # core -> the core whose result memory it reads B from
        self.window_peers = {}   # core -> the core whose result memory its convolutions read
        self.slots = _result_slots(schedule)
        self.tasks = []

    def run(self):
        """The :class:`Plan`: every placement in stage order, then the operand width check."""
        for stage in self.schedule.stages:
            for p in stage.placements:
                self.place(stage, p)
        graph = self.graph
        widths = {tensor.fmt.bits for task in self.tasks for tensor in graph.op(task.op).inputs[:2]}
        widths |= {graph.op(t.op).weight_fmt.bits for t in self.tasks
                   if graph.op(t.op).kind is OpKind.LINEAR}
        if len(widths) != 1:
            raise _unsupported(f"mixed operand widths ({', '.join(map(str, sorted(widths)))} bits)")
        bits = widths.pop()
        if bits % 8:
            raise _unsupported(f"{bits}-bit operands")
        return Plan(self.schedule, graph, self.tasks, bits, peers=self.peers,
                    join_peers=self.join_peers, b_peers=self.b_peers,
                    window_peers=self.window_peers)

    def take(self, core, memory, size, broadcast=None):
        """The base of ``size`` new words in ``memory`` of ``core``. With ``broadcast``,
        ``(shares, shared)``: one base for every core of ``shares`` (the first part takes it
        past all of theirs and records it in the dict ``shared``), the loader writing the words
        to all of them at once."""
        if broadcast is None:
            base = self.words.get((core, memory), 0)
            self.words[(core, memory)] = base + size
            return base
        shares, shared = broadcast
        if memory not in shared:
            shared[memory] = max(self.words.get((c, memory), 0) for c, _ in shares)
            for c, _ in shares:
                self.words[(c, memory)] = shared[memory] + size
        return shared[memory]

    def join_of(self, p, core, position, side):
        """``(source, base)`` of the join's side tensor for part ``position`` of ``p``: its part
        with the same tiles, in this core's result memory or a peer's, or (a graph input) loaded
        into this core's side memory (base 0 until the part's size is known)."""
        if side in {t.name for t in self.graph.inputs}:
            if self.graph.tensor(side).fmt != self.graph.op(p.task).output.fmt:
                raise _unsupported(f"a join with a graph input in another format than the "
                                   f"result it joins (task {p.task!r} joins {side!r})")
            if self.slots[core] != 1:
                raise _unsupported(f"a join with a graph input in a result memory of "
                                   f"{self.slots[core]} slots (task {p.task!r} joins {side!r})")
            return Source.SIDES, 0
        owner = next((name for name, parts in self.made.items()
                      if name == side or any(t.result == side for t in parts)), None)
        if owner is None:
            raise _unsupported(f"a join with a tensor not produced by a planned task "
                               f"(task {p.task!r} joins {side!r})")
        parts = self.made[owner]
        shares = _deal(self.schedule, p)
        if (len(parts) != len(shares) or parts[position].picks != shares[position][1]
                or parts[position].gemm.orientation != self.loops_of(p)[shares[position][0]]):
            raise _unsupported(f"a join with a tensor computed in other tiles "
                               f"(task {p.task!r} joins {side!r})")
        part = parts[position]
        if part.gemm.pea != self.schedule.cores[core].pea:
            raise _unsupported(f"a join with a tensor computed on another PE array "
                               f"(task {p.task!r} joins {side!r})")
        if part.core == core:
            return Source.RESULTS, part.gemm.dest_base
        if self.join_peers.setdefault(core, part.core) != part.core:
            raise _unsupported(f"a core joining results of two other cores (core {core} in "
                               f"task {p.task!r})")
        return Source.PEER, part.gemm.dest_base

    def loops_of(self, p):
        return {loop.core: loop.orientation for loop in p.loops}

    def by_rows(self, p, producers, position, picks, tensor, block):
        """``(producer parts to read, whether by tiles, tile stride, first tile)`` for a result
        of several rows: a part of a task dealt by the same rows as its producer reads its own
        rows, a part of a task dealt by rows reading one producer every count-th tile from its
        position, and any other reader of a result dealt by rows gathers tile by tile,
        round-robin over the parts."""
        if picks is not None and p.split == "M" and (
                len(producers) < 2 or producers[0].split != "M"):
            # Its tiles are every count-th stored tile, from its position on.
            producer, = producers if len(producers) == 1 else (None,)
            if producer is None or producer.gemm.M == 1:
                if sum(t.gemm.M for t in producers) > 1:
                    raise _unsupported(f"a result of several rows as the A of a task dealt by "
                                       f"rows (task {p.task!r} reads {tensor!r})")
                return producers, False, 1, 0
            if producer.gemm.slots != block or producer.gemm.batch != 1:
                raise _unsupported(f"a result of several rows as the A of a task dealt by rows "
                                   f"in tiles of other sizes (task {p.task!r} reads {tensor!r})")
            return producers, False, len(_deal(self.schedule, p)), position
        if len(producers) < 2 or producers[0].split != "M":
            return producers, False, 1, 0
        if picks is not None and p.split == "M":
            if (len(producers) == len(_deal(self.schedule, p))
                    and producers[position].picks == picks):
                return (producers[position],), False, 1, 0
            raise _unsupported(f"a result of several rows as the A of a task dealt by other "
                               f"rows (task {p.task!r} reads {tensor!r})")
        unit = producers[0].gemm.dm
        if unit != block or producers[0].gemm.slots != block:
            raise _unsupported(f"gathering a result dealt by rows in tiles of {unit} rows as "
                               f"tiles of {block} (task {p.task!r} reads {tensor!r})")
        return producers, True, 1, 0

    def sources_of(self, producers, core, readers, task):
        """``(Source, base)`` of each producer part: this core's result memory or a peer's (at
        most one peer per port, recorded in ``readers``)."""
        sources = []
        for producer in producers:
            if producer.core == core:
                sources.append((Source.RESULTS, producer.gemm.dest_base))
                continue
            # A result is read where it was written, in the producer's memory.
            if readers.setdefault(core, producer.core) != producer.core:
                raise _unsupported(f"a core reading results of two other cores (core {core} "
                                   f"in task {task!r})")
            sources.append((Source.PEER, producer.gemm.dest_base))
        return sources

    def matmul_b(self, p, op, core, position, picks, pea, orientation):
        """The :class:`OperandRead` of a matmul part's B: its second input read where it was
        written, as rows (``A . B^T``) or transposed (``A . B``)."""
        tensor = op.inputs[1].name
        producer = next((o.producer for o in p.operands if o.role in ("B", "BT")), None)
        parts = self.made.get(producer)
        if parts is None:
            raise _unsupported(f"a matmul operand B not produced by a planned task "
                               f"(task {p.task!r} reads {tensor!r})")
        if parts[0].gemm.orientation != "MN" and parts[0].gemm.M > 1:
            raise _unsupported(f"a result of several rows computed in orientation 'NM' as a "
                               f"matmul operand (task {p.task!r} reads {tensor!r})")
        tiles = False
        if len(parts) > 1 and not op.transpose_b:
            # Stored rows (B's K) dealt by rows in blocks of one word row each: read in turn.
            if (parts[0].split != "M" or parts[0].gemm.dm != parts[0].gemm.slots
                    or (picks is not None and p.split == "N")):
                raise _unsupported(f"a matmul operand B read transposed from a result dealt "
                                   f"over cores (task {p.task!r} reads {tensor!r})")
            tiles = True
        elif len(parts) > 1 or (picks is not None and p.split == "N"):
            # B's rows are the producer's rows: dealt the same way as a split N, or gathered.
            p_split = p.split if picks is not None else None
            if p_split == "N" and len(parts) == 1:
                raise _unsupported(f"a matmul operand B of one core read by a task dealt by "
                                   f"its rows (task {p.task!r} reads {tensor!r})")
            view = p if p_split == "N" else None
            if view is not None:
                if parts[position].picks != picks or len(parts) != len(_deal(self.schedule, p)):
                    raise _unsupported(f"a matmul operand B dealt by other rows (task "
                                       f"{p.task!r} reads {tensor!r})")
                parts = (parts[position],)
            else:
                block = pea[1] if orientation == "MN" else pea[0]
                if parts[0].split != "M" or parts[0].gemm.dm != block \
                        or parts[0].gemm.slots != block:
                    raise _unsupported(f"gathering a matmul operand B dealt over cores (task "
                                       f"{p.task!r} reads {tensor!r})")
                tiles = True
        if not op.transpose_b:
            _check_result_read(p.task, tensor, parts[0], pea)
        sources = self.sources_of(parts, core, self.b_peers, p.task)
        (source, base), = sources[:1]
        return OperandRead(source, base, lanes=parts[0].gemm.pea[1], slots=parts[0].gemm.slots,
                           gather=tuple(sources) if tiles else None,
                           transposed=not op.transpose_b)

    def conv_a(self, p, op, a_operand, core, position, picks, pea, orientation):
        """``(source, window)`` of a convolution part: its input read through a window, from
        the graph input (flat in the activations memory, the whole tensor: windows overlap)
        or from its producer's result layout, wherever the producer's parts wrote it."""
        n, c, h, w = op.inputs[0].shape
        _, _, oh, ow = op.output.shape
        block = pea[0] if orientation == "MN" else pea[1]
        geometry = dict(images=n, channels=c, height=h, width=w, out_height=oh, out_width=ow,
                        kernel=op.kernel_size, stride=op.stride, padding=op.padding,
                        dilation=op.dilation, transposed=op.kind is OpKind.CONV_TRANSPOSE2D)
        if picks is not None and p.split == "M":
            geometry["rows"] = (block, len(_deal(self.schedule, p)), position)
        if a_operand.producer is None:
            return Source.ACTIVATIONS, Window(**geometry, layout="flat",
                                              word_elements=block * pea[2])
        parts = self.made.get(a_operand.producer)
        tensor = op.inputs[0].name
        if parts is None or not is_conv(self.graph.op(parts[0].op)):
            raise _unsupported(f"a convolution input not computed by a planned convolution "
                               f"(task {p.task!r} reads {tensor!r})")
        view = parts[0].view
        if view is not None and view.kind is OpKind.UPSAMPLE:
            geometry["upsample"] = tuple(view.factor)
        elif view is not None:
            geometry.update(pool=(tuple(view.kernel_size), tuple(view.stride),
                                  tuple(view.padding)), pool_fill=view.output.fmt.lo)
        geometry["source_size"] = tuple(self.graph.op(parts[0].op).output.shape[2:])
        first = parts[0].gemm
        deal = None
        if len(parts) > 1:
            # The dealt dimension lies along the result layout's rows (P) or its words (Q).
            if (parts[0].split == "M") == (first.orientation == "MN"):
                if first.slots != 1:
                    raise _unsupported(f"a convolution input dealt by rows over cores in "
                                       f"words of several slots (task {p.task!r} reads "
                                       f"{tensor!r})")
                deal = ("P", first.pea[0])
            else:
                deal = "Q"
        found = tuple((t.core != core, t.gemm.dest_base, t.gemm.q_tiles) for t in parts)
        others = {t.core for t in parts if t.core != core}
        if len(others) > 1 or (others and self.window_peers.setdefault(core, min(others))
                               not in others):
            raise _unsupported(f"a core reading convolution inputs from two other cores "
                               f"(core {core} in task {p.task!r})")
        window = Window(**geometry, layout="result", base=first.dest_base,
                        orientation=first.orientation, slots=first.slots, lanes=first.pea[1],
                        q_tiles=first.q_tiles, parts=found, deal=deal)
        return (Source.PEER if others else Source.RESULTS), window


    def a_of(self, p, op, a_operand, core, position, picks, pea, orientation):
        """The :class:`OperandRead` of a part's A (at base 0 when it is loaded into the
        activations memory: the loader allocates it): a graph input in the activations memory,
        a convolution's window, or an earlier result read where it was written (own memory or
        one peer's, gathered over the producer's parts or one part's tiles)."""
        a_tensor = op.inputs[0].name
        batch, M, _, K = p.gemm
        if is_conv(op):
            source, window = self.conv_a(p, op, a_operand, core, position, picks, pea,
                                         orientation)
            return OperandRead(source, window.base, window=window)
        if a_operand.producer is None:
            return OperandRead(Source.ACTIVATIONS)
        producers = self.made.get(a_operand.producer)
        if producers is None:
            raise _unsupported(f"an A operand produced outside the planned tasks "
                               f"(task {p.task!r} reads {a_tensor!r})")
        if producers[0].gemm.orientation != "MN" and producers[0].gemm.M > 1:
            raise _unsupported(f"a result of several rows computed in orientation "
                               f"'NM' as an A operand (task {p.task!r} reads "
                               f"{a_tensor!r})")
        producers, tiles, stride, first = self.by_rows(
            p, producers, position, picks, a_tensor, pea[0] if orientation == "MN" else pea[1])
        sources = self.sources_of(producers, core, self.peers, p.task)
        if first:
            # Skip the tiles of the parts before this one: one word row each.
            (source, base), = sources
            sources = [(source, base + first * cdiv(K, producers[0].gemm.pea[1]))]
        slots = producers[0].gemm.slots
        rows = len(picks) if picks is not None and p.split == "M" else M
        _check_result_read(p.task, a_tensor, producers[0], pea, orientation, rows)
        if len(producers) > 1 and not tiles and (
                batch != 1 or producers[0].split != "N" or M > slots):
            raise _unsupported(f"gathering a result dealt over cores by rows, in "
                               f"batches or over several slot rows (task "
                               f"{p.task!r} reads {a_tensor!r})")
        (source, base), = sources[:1]
        return OperandRead(source, base, lanes=producers[0].gemm.pea[1], slots=slots,
                           gather=tuple(sources) if len(sources) > 1 else None,
                           gather_tiles=tiles, tile_stride=stride)

    def place(self, stage, p):
        """Plan placement ``p`` of ``stage``: one part (a :class:`Task` with its program) per
        core it is dealt to."""
        op = self.graph.op(p.task)
        conv = is_conv(op)
        if op.kind not in (OpKind.LINEAR, OpKind.MATMUL) and not conv:
            raise _unsupported(f"{op.kind.value} tasks (task {p.task!r})")
        if op.kind is OpKind.MATMUL and op.heads != 1:
            raise _unsupported(f"matmuls of several heads (task {p.task!r})")
        if len(p.results) != 1:
            raise _unsupported(f"tasks with {len(p.results)} results (task {p.task!r})")
        result = p.results[0]
        epilogue, side, view = _epilogue(self.graph, op, result.sfu)
        if view is not None and result.tensor in {t.name for t in self.graph.outputs}:
            raise _unsupported(f"a graph output after an upsampling or pooling "
                               f"({result.tensor!r})")
        a_operand = next(o for o in p.operands if o.role in ("A", "window"))
        a_tensor = op.inputs[0].name
        batch, M, N, K = p.gemm
        shares = _deal(self.schedule, p)
        loops = {loop.core: loop for loop in p.loops}
        # A graph input broadcast to the parts of a task dealt along N shares one base.
        broadcast = (a_operand.producer is None and len(shares) > 1
                     and (p.split == "N" or conv))
        # Weights and bias of a linear task dealt by rows: read once, written to every part.
        b_broadcast = ((op.kind is OpKind.LINEAR or conv) and len(shares) > 1
                       and p.split == "M"
                       and len({loops[c].orientation for c, _ in shares}) == 1)
        shared = {}         # memory -> the base its broadcast parts share
        parts = []
        for position, (core, picks) in enumerate(shares):
            loop = loops[core]
            Mc, Nc = M, N
            if picks is not None:
                Mc, Nc = (len(picks), N) if p.split == "M" else (M, len(picks))
            pea = self.schedule.cores[core].pea
            a = self.a_of(p, op, a_operand, core, position, picks, pea, loop.orientation)
            link = dict(epilogue)
            if side is not None:
                source, base = self.join_of(p, core, position, side)
                link["join"] = Join(source=source, base=base, **epilogue["join"])
            b = OperandRead(Source.WEIGHTS)
            if op.kind is OpKind.MATMUL:
                b = self.matmul_b(p, op, core, position, picks, pea, loop.orientation)
            if epilogue.get("softmax") and Nc > pea[1] and Nc % pea[1]:
                raise _unsupported(f"a softmax over rows of {Nc} drained in tiles of "
                                   f"{pea[1]} columns (task {p.task!r})")
            shape = dict(pea=pea, M=Mc, N=Nc, K=K, batch=batch,
                         orientation=loop.orientation, shift=op.shift,
                         out_format=op.output.fmt, slots=self.slots[core], **link)
            try:
                probe = GemmProgram(**shape, a=a, b=b, bias_base=0 if op.has_bias else None)
            except ValueError as error:
                raise _unsupported(f"this layout (task {p.task!r}: {error})") from None
            if not a.computed:
                a = _moved(a, self.take(core, "activations", probe.a_words,
                                        (shares, shared) if broadcast else None))
            weights = (shares, shared) if b_broadcast else None
            if not b.computed:
                b = _moved(b, self.take(core, "weights", probe.b_words, weights))
            gemm = GemmProgram(
                **shape, a=a, b=b,
                bias_base=(self.take(core, "biases", probe.bias_words, weights) if op.has_bias
                           else None),
                dest_base=self.take(core, "results", probe.dest_words))
            sides = gemm.join is not None and gemm.join.source is Source.SIDES
            if sides:
                gemm = replace(gemm, join=replace(gemm.join, base=self.take(
                    core, "sides", gemm.dest_words)))
            # The program must walk the loop nest the schedule costed.
            tiles = gemm.tiles
            expected = ((loop.i, loop.j) if p.order is Order.KOUTER
                        else (loop.i, loop.j, loop.k))
            if tiles[:len(expected)] != expected:
                raise ValueError(f"Task {p.task!r} program tiles {tiles!r} differ from the "
                                 f"schedule's loop bounds {(loop.i, loop.j, loop.k)!r}")
            index = self.counts.get(core, 0)
            self.counts[core] = index + 1
            others = tuple(c for c, _ in shares[1:]) if position == 0 else ()
            parts.append(Task(p.task, op.name, stage.index, core, index, gemm, a_tensor,
                              result.tensor, p.split if picks is not None else None,
                              picks, others if broadcast else (), broadcast and position > 0,
                              others if b_broadcast else (), b_broadcast and position > 0,
                              view, side if sides else None))
        self.made[p.task] = tuple(parts)
        self.tasks.extend(parts)
