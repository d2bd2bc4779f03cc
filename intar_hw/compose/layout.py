"""From a schedule to per-core programs and memory images, in plain Python (no Amaranth).

:func:`plan` turns a :class:`~intar_hw.schedule.Schedule` and its
:class:`~intar_hw.graph.Graph` into a :class:`Plan`: for every core that does work, one
:class:`~intar_hw.hw.core.GemmProgram` per stage it takes part in, with the word addresses of its
operands, bias and result allocated in the core's memories. :meth:`Plan.loader_stages` and
:meth:`Plan.offchip_image` describe what each stage reads from off-chip (graph inputs, join sides,
biases, weights: per task in that order, only the bytes the tensors hold, each memory word's valid
lanes at its bottom) and :meth:`Plan.images` what a host would preload instead; :meth:`Plan.outputs`
unpacks the graph outputs from the result memories. The layouts themselves are those of
:mod:`intar_hw.hw.core.program` (written once, there).

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
  reads its every-count-th tile of an undealt result. That is the task pipeline's ``fifo`` edge and row-block buffer: the buffer is
  the producer's result memory. A ``KOUTER`` consumer runs as ``ROWS`` over its operand (the
  same overlap for one row; rank-d updates into an accumulator buffer for several rows are not
  built, so such pipelines run longer than predicted);
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

from dataclasses import dataclass, replace

import numpy as np

from ..graph import Graph, OpKind
from ..hw.core import GemmProgram, Source, memory_images, result_bits
from ..hw.core.window import Window
from ..schedule import Location, Order, Schedule
from ..schedule import cost
from ..integers import cdiv
from ..timing import bias_word_runs, operand_word_runs


__all__ = ["Task", "Plan", "plan", "onchip_cycles"]


@dataclass(frozen=True)
class Task:
    """One scheduled task on its core.

    ``stage`` is the schedule's stage index, ``program`` the core's program index (its position
    in :attr:`Plan.programs` of the core), ``a`` / ``result`` the tensor names of its ``A``
    operand and its (fused) result, ``op`` the name of its linear or matmul operator.

    A task the schedule deals over several cores is one ``Task`` per core that gets tiles (its
    *part*), in the group's order: ``split`` is the dealt dimension (``"M"`` or ``"N"``) and
    ``picks`` the indices along it this core computes (its tiles, dealt round-robin), ``None``
    for an undealt task. ``a_also`` names the other cores a graph-input ``A`` is broadcast to
    with this part's words; ``a_shared`` marks a part whose ``A`` arrives that way. ``b_also`` and
    ``b_shared`` likewise for the weights and bias of a task dealt by rows (split M). ``view``
    is the upsampling or max-pooling operator between the stored result and ``result`` (the
    readers' windows apply it), else ``None``. ``side`` names the graph input a join reads from
    the core's side memory (loaded with the task, this part's tiles of it), else ``None``.
    """
    name: str
    op: str
    stage: int
    core: int
    program: int
    gemm: GemmProgram
    a: str
    result: str
    split: object = None
    picks: object = None
    a_also: tuple = ()
    a_shared: bool = False
    b_also: tuple = ()
    b_shared: bool = False
    view: object = None
    side: object = None


class Plan:
    """Per-core programs of a schedule and the layout of its tensors in the cores' memories.

    Attributes
    ----------
    schedule : Schedule
    graph : Graph
    cores : tuple of int
        Schedule core indices that do work, in order.
    programs : dict of int to tuple of GemmProgram
        Per working core, its programs in stage order.
    tasks : tuple of Task
        Every task, in stage order.
    stages : tuple of tuple of (int, int)
        Per schedule stage, ``(core, program index)`` of every core working in it.
    """

    def __init__(self, schedule, graph, tasks, operand_bits=8, peers=None, join_peers=None,
                 b_peers=None, window_peers=None):
        self._operand_bits = operand_bits
        self._window_peers = dict(window_peers or {})
        self._peers = dict(peers or {})
        self._b_peers = dict(b_peers or {})
        self._join_peers = dict(join_peers or {})
        self._schedule = schedule
        self._graph = graph
        self._tasks = tuple(tasks)
        self._cores = tuple(sorted({t.core for t in self._tasks}))
        self._programs = {c: tuple(t.gemm for t in self._tasks if t.core == c)
                          for c in self._cores}
        self._stages = tuple(tuple((t.core, t.program) for t in self._tasks if t.stage == s)
                             for s in range(len(schedule.stages)))

    schedule = property(lambda self: self._schedule)
    graph = property(lambda self: self._graph)
    operand_bits = property(lambda self: self._operand_bits)
    cores = property(lambda self: self._cores)
    tasks = property(lambda self: self._tasks)
    stages = property(lambda self: self._stages)

    @property
    def programs(self):
        return dict(self._programs)

    @property
    def peers(self):
        """``{core: producer core}``: cores reading their ``A`` from another core's result
        memory."""
        return dict(self._peers)

    @property
    def b_peers(self):
        """``{core: producer core}``: cores reading their ``B`` from another core's result
        memory."""
        return dict(self._b_peers)

    @property
    def window_peers(self):
        """``{core: producer core}``: cores reading convolution windows from another core's
        result memory (through a copy of it, written alongside)."""
        return dict(self._window_peers)

    @property
    def join_peers(self):
        """``{core: producer core}``: cores whose joins read another core's result memory."""
        return dict(self._join_peers)

    def task(self, name):
        for t in self._tasks:
            if t.name == name:
                return t
        raise ValueError(f"Plan has no task {name!r}")

    def images(self, inputs, params):
        """``{core: {memory name: words}}``: what the host loads before ``start``.

        ``inputs`` and ``params`` are the arrays :func:`intar_hw.golden.reference` takes.
        """
        operands = {c: [] for c in self._cores}
        for t in self._tasks:
            g = t.gemm
            op = self._graph.op(t.op)
            A = B = None
            if not g.a_computed:
                A = self._part_a(t, _array("Input", inputs, t.a))
            if not g.b_laid_out:
                B = self._part_b(t, _array("Parameter", params, f"{t.op}.weight"))
            bias = side = None
            if op.has_bias:
                bias = self._part_bias(t, _array("Parameter", params, f"{t.op}.bias"))
            if t.side is not None:
                side = self._part_side(t, _array("Input", inputs, t.side))
            operands[t.core].append((A, B, bias, side))
        return {c: memory_images(self._programs[c], operands[c]) for c in self._cores}

    def parts(self, name):
        """The parts of task ``name`` (one :class:`Task` per core it runs on), in deal order."""
        found = tuple(t for t in self._tasks if t.name == name)
        if not found:
            raise ValueError(f"Plan has no task {name!r}")
        return found

    def _part_a(self, t, A):
        """Task ``t``'s rows of the graph input ``A``, as ``(batch, M, K)`` (a convolution's:
        the whole input tensor, which its window reads)."""
        g = t.gemm
        if g.a_window is not None:
            return np.asarray(A)
        if t.split == "M":
            return np.asarray(A).reshape(g.batch, -1, g.K)[:, list(t.picks), :]
        return np.asarray(A).reshape(g.batch, g.M, g.K)

    def _part_b(self, t, B):
        g = t.gemm
        if g.a_window is not None:
            B = g.a_window.weights(B)
        if t.split == "N":
            return np.asarray(B).reshape(g.batch, -1, g.K)[:, list(t.picks), :]
        return np.asarray(B).reshape(g.batch, g.N, g.K)

    def _part_side(self, t, S):
        """Task ``t``'s tiles of the graph input ``S`` its join reads, as ``(batch, M, N)``."""
        S = _as_gemm(self._graph.op(t.op), S)
        if t.split == "M":
            return S[:, list(t.picks), :]
        return S[:, :, list(t.picks)] if t.split == "N" else S

    def _part_bias(self, t, bias):
        bias = np.asarray(bias).reshape(-1)
        return bias[list(t.picks)] if t.split == "N" else bias

    # --- off-chip --------------------------------------------------------------------------

    def targets(self):
        """``(core, memory)`` of every memory the loader fills, in a fixed order."""
        found = []
        for t in self._tasks:
            g = t.gemm
            wanted = ([] if g.b_laid_out else [g.b_source.value]) + (
                ["biases"] if g.bias_base is not None else []) + (
                ["sides"] if t.side is not None else [])
            if not g.a_computed:
                wanted.insert(0, g.a_source.value)
            for memory in wanted:
                if (t.core, memory) not in found:
                    found.append((t.core, memory))
        return tuple(found)

    def _result_bytes(self, core):
        """Bytes of a result (or side) memory element of ``core``."""
        return (result_bits(self._programs[core]) + 7) // 8

    def _task_words(self, t, inputs=None, params=None):
        """``[(memory, base, [(nbytes, bytes or None) per word])]``: what task ``t`` reads from
        off-chip, in order: its A (a graph input), its join's side tensor (a graph input, each
        word's valid lanes), its bias, its weights."""
        g = t.gemm
        _, d2, d3 = g.pea
        eb = (self._operand_bits + 7) // 8
        lanes = _lanes(self._programs[t.core])
        parts = []

        def operand(source, base, rows, block, array, image_of):
            # A word holds a beat of a block of rows (the cost model times the same words).
            sizes = [elements * eb for words, elements in
                     operand_word_runs(g.batch, rows, block, g.K, d3) for _ in range(words)]
            words = None
            if array is not None:
                image = image_of(array, lanes[source.value])
                words = [_bytes(np.asarray(w).reshape(-1)[:n // eb], eb)
                         for w, n in zip(image, sizes)]
            parts.append((source.value, base, sizes, words))

        if g.a_window is not None and g.a_window.layout == "flat" and not t.a_shared:
            # A convolution's input, flat: word_elements elements a word.
            window = g.a_window
            total = int(np.prod(window.stored))
            per = window.word_elements
            sizes = [min(per, total - i * per) * eb for i in range(window.words)]
            words = None
            if inputs is not None:
                flat = window.image(inputs[t.a])
                words = [_bytes(w[:n // eb], eb) for w, n in zip(flat, sizes)]
            parts.append((g.a_source.value, g.a_base, sizes, words))
        elif not g.a_computed and not t.a_shared:
            A = None if inputs is None else self._part_a(t, inputs[t.a])
            operand(g.a_source, g.a_base, g.M, g.dm, A, g.a_image)
        if t.side is not None:
            # One slot per word (the composer checks): a word's valid lanes are its low bytes.
            rb = self._result_bytes(t.core)
            sizes = [min(d2, g.q_rows - q * d2) * rb
                     for _ in range(g.batch * g.p_rows) for q in range(g.q_tiles)]
            words = None
            if inputs is not None:
                image = g.side_image(self._part_side(t, inputs[t.side]))
                words = [_bytes(w[:n // rb], rb) for w, n in zip(image, sizes)]
            parts.append(("sides", g.join_base, sizes, words))
        if g.bias_base is not None and not t.b_shared:
            sizes = [n * 4 for words, n in bias_word_runs(g.orientation, g.N, d2)
                     for _ in range(words)]
            words = None
            if params is not None:
                image = g.bias_image(self._part_bias(t, params[f"{t.op}.bias"]))
                words = [_bytes(np.asarray(w)[:n // 4], 4) for w, n in zip(image, sizes)]
            parts.append(("biases", g.bias_base, sizes, words))
        if not g.b_laid_out and not t.b_shared:
            B = None if params is None else self._part_b(t, params[f"{t.op}.weight"])
            operand(g.b_source, g.b_base, g.N, g.dn, B, g.b_image)
        return parts

    def _stage_words(self, stage, inputs=None, params=None):
        """``[(task part, (memory, base, sizes, words))]`` of a stage in the loader's order: task
        by task, the inputs of all its parts first, then their join sides, then their biases
        and weights, so that the weights a task streams through come last."""
        order = []
        for name in dict.fromkeys(t.name for t in self._tasks if t.stage == stage):
            runs = [(t, run) for t in self.parts(name)
                    for run in self._task_words(t, inputs, params)]
            rank = {t.gemm.a_source.value: 0 for t, _ in runs} | {"sides": 1}
            order += sorted(runs, key=lambda item: rank.get(item[1][0], 2))
        return order

    def loader_stages(self, bus_bytes):
        """Per stage, a :class:`~.loader.LoaderStage`: the bus words it reads and how they
        unpack into the memories of :meth:`targets`."""
        from .loader import LoaderStage, Segment

        targets = self.targets()
        stages, start = [], 0
        for s in range(len(self._schedule.stages)):
            segments, total = [], 0
            for t, (memory, base, sizes, _) in self._stage_words(s):
                target = targets.index((t.core, memory))
                also = ()
                if memory == t.gemm.a_source.value:
                    also = tuple(targets.index((c, memory)) for c in t.a_also)
                elif memory in (t.gemm.b_source.value, "biases"):
                    also = tuple(targets.index((c, memory)) for c in t.b_also)
                run_start = 0
                for i in range(1, len(sizes) + 1):
                    if i == len(sizes) or sizes[i] != sizes[run_start]:
                        segments.append(Segment(target, base + run_start, i - run_start,
                                                sizes[run_start], also))
                        run_start = i
                total += sum(sizes)
            words = cdiv(total, bus_bytes)
            stages.append(LoaderStage(start, words, tuple(segments)))
            start += words
        return tuple(stages)

    def offchip_image(self, inputs, params, bus_bytes):
        """The off-chip memory's words (``8 * bus_bytes``-bit integers) for these data: per
        stage, the bytes its loader reads, in order, each stage from a word boundary."""
        image = []
        for s in range(len(self._schedule.stages)):
            data = bytearray()
            for _, (_, _, _, words) in self._stage_words(s, inputs, params):
                for w in words:
                    data += w
            data += bytes(-len(data) % bus_bytes)
            image += [int.from_bytes(data[i:i + bus_bytes], "little")
                      for i in range(0, len(data), bus_bytes)]
        return image

    def result_sources(self):
        """Cores whose result memories hold graph outputs, in order (the storer's sources)."""
        return tuple(sorted({t.core for parts in self.output_locations().values()
                             for t in parts}))

    def result_words(self, name):
        """``(program, [(core, address, nbytes)])`` of the result of task ``name``.

        ``program`` is the task's whole GEMM on one of its cores (for
        :meth:`~intar_hw.hw.core.GemmProgram.result_from_words`); the list holds every word of
        its result layout, in order, with the core and address where a part wrote it and the
        bytes of its valid lanes. A result dealt over cores is gathered here: the parts' tiles
        interleave round-robin along the dealt dimension.
        """
        parts = self.parts(name)
        first = parts[0].gemm
        eb = self._result_bytes(parts[0].core)
        M = sum(t.gemm.M for t in parts) if parts[0].split == "M" else first.M
        N = sum(t.gemm.N for t in parts) if parts[0].split == "N" else first.N
        whole = GemmProgram(pea=first.pea, M=M, N=N, K=first.K, batch=first.batch,
                            orientation=first.orientation, out_format=first.result_format)
        d1, d2, _ = first.pea
        count = len(parts)
        # The dealt dimension lies along the result layout's rows (P) or its words (Q).
        axis = None
        if count > 1:
            axis = "P" if (parts[0].split == "M") == (first.orientation == "MN") else "Q"
        words = []
        for b in range(whole.batch):
            for p in range(whole.p_rows):
                for q in range(whole.q_tiles):
                    nbytes = min(d2, whole.q_rows - q * d2) * eb
                    part, row, tile = parts[0], p, q
                    if axis == "P":
                        unit = p // d1
                        part, row = parts[unit % count], (unit // count) * d1 + p % d1
                    elif axis == "Q":
                        part, tile = parts[q % count], q // count
                    words.append((part.core, part.gemm.host_address(b, row, tile), nbytes))
        return whole, words

    def _stored(self, stage):
        """``[(output name, whole program, element bytes, [(core, address, nbytes)])]``."""
        found = []
        for name, parts in self.output_locations().items():
            if parts[0].stage != stage:
                continue
            eb = self._result_bytes(parts[0].core)
            whole, words = self.result_words(parts[0].name)
            found.append((name, whole, eb, words))
        return found

    def storer_stages(self, bus_bytes, base):
        """Per stage, a :class:`~.storer.StorerStage`: the graph outputs it writes off-chip,
        as the low bytes of their result words (valid lanes only), from bus word ``base`` on;
        a result dealt over cores is gathered from their result memories in order."""
        from .loader import Segment
        from .storer import StorerStage

        sources = self.result_sources()
        stages, start = [], base
        for s in range(len(self._schedule.stages)):
            segments, total = [], 0
            for _, _, _, located in self._stored(s):
                for core, addr, nbytes in located:
                    target = sources.index(core)
                    last = segments[-1] if segments else None
                    if (last is not None and (last.target, last.nbytes) == (target, nbytes)
                            and last.base + last.count == addr):
                        segments[-1] = Segment(target, last.base, last.count + 1, nbytes)
                    else:
                        segments.append(Segment(target, addr, 1, nbytes))
                    total += nbytes
            words = cdiv(total, bus_bytes)
            stages.append(StorerStage(start, words, tuple(segments)))
            start += words
        return tuple(stages)

    def outputs_from_offchip(self, words, bus_bytes, base):
        """Graph outputs by name from the off-chip memory's ``words`` (all of it, from 0)."""
        out = {}
        for s, stage in enumerate(self.storer_stages(bus_bytes, base)):
            data = b"".join(int(w).to_bytes(bus_bytes, "little")
                            for w in words[stage.start:stage.start + stage.words])
            pos = 0
            for name, whole, eb, located in self._stored(s):
                d2 = whole.pea[1]
                lanes = []
                for _, _, n in located:
                    chunk = data[pos:pos + n]
                    pos += n
                    values = [int.from_bytes(chunk[i:i + eb], "little", signed=True)
                              for i in range(0, n, eb)]
                    lanes.append(values + [0] * (d2 - len(values)))
                out[name] = self._output(name, whole.result_from_words(lanes))
        return out

    def output_locations(self):
        """``{output tensor name: parts}``: the task parts whose result memories hold each
        output (one :class:`Task` for a task on one core)."""
        found = {}
        for tensor in self._graph.outputs:
            for t in self._tasks:
                if t.result == tensor.name:
                    found[tensor.name] = self.parts(t.name)
                    break
        return found

    def outputs(self, results):
        """Graph outputs by name from ``results`` (``{core: {address: result word}}`` or
        ``{core: list of result words}``)."""
        out = {}
        for name, parts in self.output_locations().items():
            whole, located = self.result_words(parts[0].name)
            words = [results[core][addr] for core, addr, _ in located]
            out[name] = self._output(name, whole.result_from_words(words))
        return out

    def _output(self, name, R):
        """Graph output ``name`` from the ``(batch, M, N)`` result of its task."""
        tensor = self._graph.tensor(name)
        op = self._graph.op(self.output_locations()[name][0].op)
        return _from_gemm(op, R, tensor.shape).astype(tensor.fmt.dtype)


def _lanes(programs):
    from ..hw.core import memory_lanes
    return memory_lanes(programs)


def _bytes(values, width):
    """Little-endian two's-complement bytes of integer ``values``, ``width`` bytes each."""
    out = bytearray()
    for v in values:
        out += int(v).to_bytes(width, "little", signed=True)
    return bytes(out)


def _is_conv(op):
    return op.kind in (OpKind.CONV2D, OpKind.CONV_TRANSPOSE2D)


def _as_gemm(op, X):
    """``X``, shaped like ``op``'s output, as the ``(batch, M, N)`` result of its GEMM: a
    convolution's ``(n, c, h, w)`` output is ``(1, n * h * w, c)``, one row per pixel."""
    X = np.asarray(X)
    if X.shape != tuple(op.output.shape):
        raise ValueError(f"Tensor for {op.name!r} must have shape {tuple(op.output.shape)!r}, "
                         f"not {X.shape!r}")
    if _is_conv(op):
        n, c, h, w = X.shape
        return X.transpose(0, 2, 3, 1).reshape(1, n * h * w, c)
    heads, M, _, N = op.gemm
    return X.reshape(heads, M, N)


def _from_gemm(op, R, shape):
    """The inverse of :func:`_as_gemm`: the ``(batch, M, N)`` result ``R`` of ``op`` as a
    tensor of ``shape``."""
    if _is_conv(op):
        n, c, h, w = shape
        return np.asarray(R).reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return np.asarray(R).reshape(shape)


def _array(kind, mapping, name):
    if name not in mapping:
        raise ValueError(f"{kind} {name!r} is missing")
    return np.asarray(mapping[name])


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
    ``kinds`` after ``op``: an optional ReLU first (fused into the requantiser), an optional
    table activation, an optional softmax, an optional join with a side tensor, in that order.
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
        if (kind == "add" and kwargs.get("join") == "mul" and follower is not None
                and {t.name for t in follower.inputs} == {current, factor}):
            if follower.output.fmt != kwargs["join_format"]:
                raise _unsupported(f"a mul and an add of its factor in different formats "
                                   f"(task {op.name!r})")
            kwargs["join"] = "mul_add"
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
            kwargs.update(softmax=True, softmax_frac=follower.frac, causal=follower.causal)
        else:
            side = next((t.name for t in follower.inputs if t.name != current), None)
            if side is None:
                raise _unsupported(f"a join of a result with itself (task {op.name!r})")
            kwargs.update(join=kind, join_shift=getattr(follower, "shift", 0),
                          join_format=follower.output.fmt)
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


def plan(schedule, graph):
    """The :class:`Plan` of ``schedule`` on ``graph``.

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
    words = {}          # (core, memory) -> next free word
    counts = {}         # core -> programs so far
    made = {}           # task name -> its parts
    peers = {}          # core -> the core whose result memory it reads A from
    join_peers = {}     # core -> the core whose result memory its joins read
    b_peers = {}        # core -> the core whose result memory it reads B from
    window_peers = {}   # core -> the core whose result memory its convolutions read
    slots = _result_slots(schedule)
    tasks = []

    def take(core, memory, size):
        base = words.get((core, memory), 0)
        words[(core, memory)] = base + size
        return base

    def self_join(p, core, position, side):
        """Join arguments of part ``position`` of ``p``: the side tensor's part with the same
        tiles, in this core's result memory or a peer's, or (a graph input) loaded into this
        core's side memory (its base is taken once the part's size is known)."""
        if side in {t.name for t in graph.inputs}:
            if graph.tensor(side).fmt != graph.op(p.task).output.fmt:
                raise _unsupported(f"a join with a graph input in another format than the "
                                   f"result it joins (task {p.task!r} joins {side!r})")
            if slots[core] != 1:
                raise _unsupported(f"a join with a graph input in a result memory of "
                                   f"{slots[core]} slots (task {p.task!r} joins {side!r})")
            return dict(join_source=Source.SIDES, join_base=0)
        owner = next((name for name, parts in made.items()
                      if name == side or any(t.result == side for t in parts)), None)
        if owner is None:
            raise _unsupported(f"a join with a tensor not produced by a planned task "
                               f"(task {p.task!r} joins {side!r})")
        parts = made[owner]
        shares = _deal(schedule, p)
        if (len(parts) != len(shares) or parts[position].picks != shares[position][1]
                or parts[position].gemm.orientation != loops_of(p)[shares[position][0]]):
            raise _unsupported(f"a join with a tensor computed in other tiles "
                               f"(task {p.task!r} joins {side!r})")
        part = parts[position]
        if part.gemm.pea != schedule.cores[core].pea:
            raise _unsupported(f"a join with a tensor computed on another PE array "
                               f"(task {p.task!r} joins {side!r})")
        if part.core == core:
            return dict(join_source=Source.RESULTS, join_base=part.gemm.dest_base)
        if join_peers.setdefault(core, part.core) != part.core:
            raise _unsupported(f"a core joining results of two other cores (core {core} in "
                               f"task {p.task!r})")
        return dict(join_source=Source.PEER, join_base=part.gemm.dest_base)

    def loops_of(p):
        return {loop.core: loop.orientation for loop in p.loops}

    def by_rows(p, producers, position, picks, tensor, block):
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
            return producers, False, len(_deal(schedule, p)), position
        if len(producers) < 2 or producers[0].split != "M":
            return producers, False, 1, 0
        if picks is not None and p.split == "M":
            if len(producers) == len(_deal(schedule, p)) and producers[position].picks == picks:
                return (producers[position],), False, 1, 0
            raise _unsupported(f"a result of several rows as the A of a task dealt by other "
                               f"rows (task {p.task!r} reads {tensor!r})")
        unit = producers[0].gemm.dm
        if unit != block or producers[0].gemm.slots != block:
            raise _unsupported(f"gathering a result dealt by rows in tiles of {unit} rows as "
                               f"tiles of {block} (task {p.task!r} reads {tensor!r})")
        return producers, True, 1, 0

    def sources_of(producers, core, readers, task):
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

    def matmul_b(p, op, core, position, picks, pea, orientation):
        """The B arguments of a matmul part: its second input read where it was written, as
        rows (``A . B^T``) or transposed (``A . B``)."""
        tensor = op.inputs[1].name
        producer = next((o.producer for o in p.operands if o.role in ("B", "BT")), None)
        parts = made.get(producer)
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
                if parts[position].picks != picks or len(parts) != len(_deal(schedule, p)):
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
        sources = sources_of(parts, core, b_peers, p.task)
        (source, base), = sources[:1]
        return dict(b_source=source, b_base=base, b_lanes=parts[0].gemm.pea[1],
                    b_slots=parts[0].gemm.slots, b_transposed=not op.transpose_b,
                    b_gather=tuple(sources) if tiles else None)

    def conv_a(p, op, a_operand, core, position, picks, pea, orientation):
        """``(a_source, window)`` of a convolution part: its input read through a window, from
        the graph input (flat in the activations memory, the whole tensor: windows overlap)
        or from its producer's result layout, wherever the producer's parts wrote it."""
        n, c, h, w = op.inputs[0].shape
        _, _, oh, ow = op.output.shape
        block = pea[0] if orientation == "MN" else pea[1]
        geometry = dict(images=n, channels=c, height=h, width=w, out_height=oh, out_width=ow,
                        kernel=op.kernel_size, stride=op.stride, padding=op.padding,
                        dilation=op.dilation, transposed=op.kind is OpKind.CONV_TRANSPOSE2D)
        if picks is not None and p.split == "M":
            geometry["rows"] = (block, len(_deal(schedule, p)), position)
        if a_operand.producer is None:
            return Source.ACTIVATIONS, Window(**geometry, layout="flat",
                                              word_elements=block * pea[2])
        parts = made.get(a_operand.producer)
        tensor = op.inputs[0].name
        if parts is None or not _is_conv(graph.op(parts[0].op)):
            raise _unsupported(f"a convolution input not computed by a planned convolution "
                               f"(task {p.task!r} reads {tensor!r})")
        view = parts[0].view
        if view is not None and view.kind is OpKind.UPSAMPLE:
            geometry["upsample"] = tuple(view.factor)
        elif view is not None:
            geometry.update(pool=(tuple(view.kernel_size), tuple(view.stride),
                                  tuple(view.padding)), pool_fill=view.output.fmt.lo)
        geometry["source_size"] = tuple(graph.op(parts[0].op).output.shape[2:])
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
        if len(others) > 1 or (others and window_peers.setdefault(core, min(others))
                               not in others):
            raise _unsupported(f"a core reading convolution inputs from two other cores "
                               f"(core {core} in task {p.task!r})")
        window = Window(**geometry, layout="result", base=first.dest_base,
                        orientation=first.orientation, slots=first.slots, lanes=first.pea[1],
                        q_tiles=first.q_tiles, parts=found, deal=deal)
        return (Source.PEER if others else Source.RESULTS), window

    for stage in schedule.stages:
        for p in stage.placements:
            op = graph.op(p.task)
            conv = _is_conv(op)
            if op.kind not in (OpKind.LINEAR, OpKind.MATMUL) and not conv:
                raise _unsupported(f"{op.kind.value} tasks (task {p.task!r})")
            if op.kind is OpKind.MATMUL and op.heads != 1:
                raise _unsupported(f"matmuls of several heads (task {p.task!r})")
            if len(p.results) != 1:
                raise _unsupported(f"tasks with {len(p.results)} results (task {p.task!r})")
            result = p.results[0]
            epilogue, side, view = _epilogue(graph, op, result.sfu)
            if view is not None and result.tensor in {t.name for t in graph.outputs}:
                raise _unsupported(f"a graph output after an upsampling or pooling "
                                   f"({result.tensor!r})")
            a_operand = next(o for o in p.operands if o.role in ("A", "window"))
            a_tensor = op.inputs[0].name
            batch, M, N, K = p.gemm
            shares = _deal(schedule, p)
            loops = {loop.core: loop for loop in p.loops}
            # A graph input broadcast to the parts of a task dealt along N shares one base.
            a_shared_base = None
            broadcast = (a_operand.producer is None and len(shares) > 1
                         and (p.split == "N" or conv))
            # Weights and bias of a linear task dealt by rows: read once, written to every part.
            b_broadcast = ((op.kind is OpKind.LINEAR or conv) and len(shares) > 1
                           and p.split == "M"
                           and len({loops[c].orientation for c, _ in shares}) == 1)
            b_shared = {}
            parts = []
            for position, (core, picks) in enumerate(shares):
                loop = loops[core]
                Mc, Nc = M, N
                if picks is not None:
                    Mc, Nc = (len(picks), N) if p.split == "M" else (M, len(picks))
                pea = schedule.cores[core].pea
                a_lanes, a_slots, a_gather, a_tiles, a_stride = None, None, None, False, 1
                a_window = None
                if conv:
                    a_source, a_window = conv_a(p, op, a_operand, core, position, picks, pea,
                                                loop.orientation)
                    a_base = None if a_source is Source.ACTIVATIONS else a_window.base
                elif a_operand.producer is None:
                    a_source, a_base = Source.ACTIVATIONS, None
                else:
                    producers = made.get(a_operand.producer)
                    if producers is None:
                        raise _unsupported(f"an A operand produced outside the planned tasks "
                                           f"(task {p.task!r} reads {a_tensor!r})")
                    if producers[0].gemm.orientation != "MN" and producers[0].gemm.M > 1:
                        raise _unsupported(f"a result of several rows computed in orientation "
                                           f"'NM' as an A operand (task {p.task!r} reads "
                                           f"{a_tensor!r})")
                    producers, a_tiles, a_stride, a_first = by_rows(
                        p, producers, position, picks, a_tensor,
                        pea[0] if loop.orientation == "MN" else pea[1])
                    sources = sources_of(producers, core, peers, p.task)
                    if a_first:
                        # Skip the tiles of the parts before this one: one word row each.
                        (source, base), = sources
                        sources = [(source, base + a_first * cdiv(K, producers[0].gemm.pea[1]))]
                    a_lanes = producers[0].gemm.pea[1]
                    a_slots = producers[0].gemm.slots
                    if len(producers) > 1 and not a_tiles and (
                            batch != 1 or producers[0].split != "N" or M > a_slots):
                        raise _unsupported(f"gathering a result dealt over cores by rows, in "
                                           f"batches or over several slot rows (task "
                                           f"{p.task!r} reads {a_tensor!r})")
                    (a_source, a_base), = sources[:1]
                    a_gather = tuple(sources) if len(sources) > 1 else None
                join = {}
                if side is not None:
                    join = self_join(p, core, position, side)
                b = {}
                if op.kind is OpKind.MATMUL:
                    b = matmul_b(p, op, core, position, picks, pea, loop.orientation)
                if epilogue.get("softmax") and Nc > pea[1] and Nc % pea[1]:
                    raise _unsupported(f"a softmax over rows of {Nc} drained in tiles of "
                                       f"{pea[1]} columns (task {p.task!r})")
                shape = dict(pea=pea, M=Mc, N=Nc, K=K, batch=batch,
                             orientation=loop.orientation, a_source=a_source, a_lanes=a_lanes,
                             a_slots=a_slots, a_gather=a_gather, a_gather_tiles=a_tiles,
                             a_tile_stride=a_stride, a_window=a_window,
                             shift=op.shift,
                             out_format=op.output.fmt, slots=slots[core], **epilogue, **join,
                             **{k: v for k, v in b.items() if k != "b_base"})
                try:
                    probe = GemmProgram(**{**shape, "a_base": a_base or 0},
                                        b_base=b.get("b_base", 0),
                                        bias_base=0 if op.has_bias else None)
                except ValueError as error:
                    raise _unsupported(f"this layout (task {p.task!r}: {error})") from None
                if a_base is None and broadcast:
                    if a_shared_base is None:
                        a_shared_base = max(words.get((c, "activations"), 0) for c, _ in shares)
                        for c, _ in shares:
                            words[(c, "activations")] = a_shared_base + probe.a_words
                    a_base = a_shared_base
                elif a_base is None:
                    a_base = take(core, "activations", probe.a_words)
                if a_window is not None and a_window.layout == "flat":
                    shape["a_window"] = replace(a_window, base=a_base)
                def weights_base(memory, size):
                    if not b_broadcast:
                        return take(core, memory, size)
                    if memory not in b_shared:
                        b_shared[memory] = max(words.get((c, memory), 0) for c, _ in shares)
                        for c, _ in shares:
                            words[(c, memory)] = b_shared[memory] + size
                    return b_shared[memory]
                gemm = GemmProgram(
                    **shape, a_base=a_base,
                    b_base=b["b_base"] if b else weights_base("weights", probe.b_words),
                    bias_base=(weights_base("biases", probe.bias_words) if op.has_bias
                               else None),
                    dest_base=take(core, "results", probe.dest_words))
                if gemm.join_source is Source.SIDES:
                    gemm = replace(gemm, join_base=take(core, "sides", gemm.dest_words))
                # The program must walk the loop nest the schedule costed.
                tiles = gemm.tiles
                expected = ((loop.i, loop.j) if p.order is Order.KOUTER
                            else (loop.i, loop.j, loop.k))
                if tiles[:len(expected)] != expected:
                    raise ValueError(f"Task {p.task!r} program tiles {tiles!r} differ from the "
                                     f"schedule's loop bounds {(loop.i, loop.j, loop.k)!r}")
                index = counts.get(core, 0)
                counts[core] = index + 1
                others = tuple(c for c, _ in shares[1:]) if position == 0 else ()
                parts.append(Task(p.task, op.name, stage.index, core, index, gemm, a_tensor,
                                  result.tensor, p.split if picks is not None else None,
                                  picks, others if broadcast else (), broadcast and position > 0,
                                  others if b_broadcast else (), b_broadcast and position > 0,
                                  view, side if gemm.join_source is Source.SIDES else None))
            made[p.task] = tuple(parts)
            tasks.extend(parts)
    widths = {tensor.fmt.bits for task in tasks for tensor in graph.op(task.op).inputs[:2]}
    widths |= {graph.op(t.op).weight_fmt.bits for t in tasks
               if graph.op(t.op).kind is OpKind.LINEAR}
    if len(widths) != 1:
        raise _unsupported(f"mixed operand widths ({', '.join(map(str, sorted(widths)))} bits)")
    bits = widths.pop()
    if bits % 8:
        raise _unsupported(f"{bits}-bit operands")
    return Plan(schedule, graph, tasks, bits, peers=peers, join_peers=join_peers,
                b_peers=b_peers, window_peers=window_peers)


def onchip_cycles(plan):
    """Cycles the schedule predicts for its on-chip work alone.

    Per stage ``onchip + ARRAY_LATENCY + reconfig`` (``onchip`` ends after the last task's
    result path): the
    schedule's stage cycles without the off-chip terms (bandwidth, latency, loader and store
    latencies, operands arriving late), which an accelerator built with ``offchip=False``
    (host-loaded memories) does not spend.
    """
    return sum(stage.onchip + cost.ARRAY_LATENCY + stage.reconfig
               for stage in plan.schedule.stages)
