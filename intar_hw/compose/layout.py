"""From a schedule to per-core programs and memory images, in plain Python (no Amaranth).

:func:`~.planner.plan` turns a :class:`~intar_hw.schedule.Schedule` and its
:class:`~intar_hw.graph.Graph` into a :class:`Plan`: for every core that does work, one
:class:`~intar_hw.hw.core.GemmProgram` per stage it takes part in, with the word addresses of its
operands, bias and result allocated in the core's memories. :meth:`Plan.loader_stages` and
:meth:`Plan.offchip_image` describe what each stage reads from off-chip (graph inputs, join sides,
biases, weights: per task in that order, only the bytes the tensors hold, each memory word's valid
lanes at its bottom) and :meth:`Plan.images` what a host would preload instead; :meth:`Plan.outputs`
unpacks the graph outputs from the result memories. The layouts themselves are those of
:mod:`intar_hw.hw.core.program` (written once, there).

The planning itself (which memories, bases, peers and programs a schedule needs, and what the
generator does not support yet) is :mod:`.planner`'s; this module holds its result, the
:class:`Plan`, and packs the words it describes.
"""

from dataclasses import dataclass

import numpy as np

from ..graph import OpKind
from ..hw.core import GemmProgram, memory_images, result_bits
from ..schedule import cost
from ..integers import cdiv
from ..timing import bias_word_runs, operand_word_runs


__all__ = ["Task", "Plan", "onchip_cycles"]


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
            if not g.a.computed:
                A = self._part_a(t, _array("Input", inputs, t.a))
            if not g.b.computed:
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
        if g.a.window is not None:
            return np.asarray(A)
        if t.split == "M":
            return np.asarray(A).reshape(g.batch, -1, g.K)[:, list(t.picks), :]
        return np.asarray(A).reshape(g.batch, g.M, g.K)

    def _part_b(self, t, B):
        g = t.gemm
        if g.a.window is not None:
            B = g.a.window.weights(B)
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
            wanted = ([] if g.b.computed else [g.b.source.value]) + (
                ["biases"] if g.bias_base is not None else []) + (
                ["sides"] if t.side is not None else [])
            if not g.a.computed:
                wanted.insert(0, g.a.source.value)
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

        def operand(read, rows, block, array, image_of):
            # A word holds a beat of a block of rows (the cost model times the same words).
            sizes = [elements * eb for words, elements in
                     operand_word_runs(g.batch, rows, block, g.K, d3) for _ in range(words)]
            words = None
            if array is not None:
                image = image_of(array, lanes[read.source.value])
                words = [_bytes(np.asarray(w).reshape(-1)[:n // eb], eb)
                         for w, n in zip(image, sizes)]
            parts.append((read.source.value, read.base, sizes, words))

        if g.a.window is not None and g.a.window.layout == "flat" and not t.a_shared:
            # A convolution's input, flat: word_elements elements a word.
            window = g.a.window
            total = int(np.prod(window.stored))
            per = window.word_elements
            sizes = [min(per, total - i * per) * eb for i in range(window.words)]
            words = None
            if inputs is not None:
                flat = window.image(inputs[t.a])
                words = [_bytes(w[:n // eb], eb) for w, n in zip(flat, sizes)]
            parts.append((g.a.source.value, g.a.base, sizes, words))
        elif not g.a.computed and not t.a_shared:
            A = None if inputs is None else self._part_a(t, inputs[t.a])
            operand(g.a, g.M, g.dm, A, g.a_image)
        if t.side is not None:
            # One slot per word (the composer checks): a word's valid lanes are its low bytes.
            rb = self._result_bytes(t.core)
            sizes = [min(d2, g.q_rows - q * d2) * rb
                     for _ in range(g.batch * g.p_rows) for q in range(g.q_tiles)]
            words = None
            if inputs is not None:
                image = g.side_image(self._part_side(t, inputs[t.side]))
                words = [_bytes(w[:n // rb], rb) for w, n in zip(image, sizes)]
            parts.append(("sides", g.join.base, sizes, words))
        if g.bias_base is not None and not t.b_shared:
            sizes = [n * 4 for words, n in bias_word_runs(g.orientation, g.N, d2)
                     for _ in range(words)]
            words = None
            if params is not None:
                image = g.bias_image(self._part_bias(t, params[f"{t.op}.bias"]))
                words = [_bytes(np.asarray(w)[:n // 4], 4) for w, n in zip(image, sizes)]
            parts.append(("biases", g.bias_base, sizes, words))
        if not g.b.computed and not t.b_shared:
            B = None if params is None else self._part_b(t, params[f"{t.op}.weight"])
            operand(g.b, g.N, g.dn, B, g.b_image)
        return parts

    def _stage_words(self, stage, inputs=None, params=None):
        """``[(task part, (memory, base, sizes, words))]`` of a stage in the loader's order: task
        by task, the inputs of all its parts first, then their join sides, then their biases
        and weights, so that the weights a task streams through come last."""
        order = []
        for name in dict.fromkeys(t.name for t in self._tasks if t.stage == stage):
            runs = [(t, run) for t in self.parts(name)
                    for run in self._task_words(t, inputs, params)]
            rank = {t.gemm.a.source.value: 0 for t, _ in runs} | {"sides": 1}
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
                if memory == t.gemm.a.source.value:
                    also = tuple(targets.index((c, memory)) for c in t.a_also)
                elif memory in (t.gemm.b.source.value, "biases"):
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


def is_conv(op):
    return op.kind in (OpKind.CONV2D, OpKind.CONV_TRANSPOSE2D)


def _as_gemm(op, X):
    """``X``, shaped like ``op``'s output, as the ``(batch, M, N)`` result of its GEMM: a
    convolution's ``(n, c, h, w)`` output is ``(1, n * h * w, c)``, one row per pixel."""
    X = np.asarray(X)
    if X.shape != tuple(op.output.shape):
        raise ValueError(f"Tensor for {op.name!r} must have shape {tuple(op.output.shape)!r}, "
                         f"not {X.shape!r}")
    if is_conv(op):
        n, c, h, w = X.shape
        return X.transpose(0, 2, 3, 1).reshape(1, n * h * w, c)
    heads, M, _, N = op.gemm
    return X.reshape(heads, M, N)


def _from_gemm(op, R, shape):
    """The inverse of :func:`_as_gemm`: the ``(batch, M, N)`` result ``R`` of ``op`` as a
    tensor of ``shape``."""
    if is_conv(op):
        n, c, h, w = shape
        return np.asarray(R).reshape(n, h, w, c).transpose(0, 3, 1, 2)
    return np.asarray(R).reshape(shape)


def _array(kind, mapping, name):
    if name not in mapping:
        raise ValueError(f"{kind} {name!r} is missing")
    return np.asarray(mapping[name])


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
