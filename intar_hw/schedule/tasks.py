"""From a :class:`~intar_hw.graph.Graph` to the scheduler's tasks.

Every MAC operator (linear, matmul, conv2d, conv_transpose2d) is a **task**, seen as ``batch``
GEMMs of ``M x N x K``:

- linear: ``M`` rows, ``N`` output features, ``K`` input features (``batch = 1``);
- matmul ``A.B`` or ``A.B^T``: per head ``M x K`` times ``K x N`` (``batch`` = heads);
- conv2d: ``M = images * Hout * Wout`` pixels, ``N = Cout``, ``K = Cin * kh * kw`` (windows come
  from address generators or line buffers);
- conv_transpose2d: the hardware runs a convolution over the zero-inserted input, so the same
  ``M``, ``N``, ``K`` of the *output*; its beats include the inserted zeros (``hw_macs``) while
  ``macs`` (useful work, for utilisation) comes from the graph.

Every other operator is an **SFU op** fused onto the result link of a task (an epilogue, at stream
rate). Its owner is the latest task (in graph order) that any of its inputs comes from, so a
two-operand join (add, mul) runs after the later of its producers and reads the other operand
(a "side" input) from wherever that lives. SFU ops that read only graph inputs (a LayerNorm of the
model input) are a prologue on the read path of the tasks that consume them; their outputs count
as off-chip inputs.

A task's **stored tensors** are the tensors of its epilogue chain that leave it: operands of other
tasks, side inputs of other tasks' epilogues, and graph outputs. This module imports no Amaranth.
"""

import math
from dataclasses import dataclass

from ..integers import cdiv


__all__ = ["MAC_KINDS", "ROW_WISE", "ConvGeometry", "Task", "TensorInfo", "TaskGraph",
           "task_graph"]


#: Operator kinds that are tasks.
MAC_KINDS = ("linear", "matmul", "conv2d", "conv_transpose2d")
#: SFU ops that need a whole row before they emit anything.
ROW_WISE = ("softmax", "layernorm")


def _sfu_latency(chain, bits):
    from .cost import sfu_latency
    kinds = [c.kind.value for c in chain]
    activation = next((k for k in kinds if k in ("gelu", "silu")), None)
    join = next((k for k in kinds if k in ("add", "mul")), None)
    if join == "mul" and "add" in kinds[kinds.index("mul"):]:
        join = "mul_add"            # a product added back to its first factor: one unit
    return sfu_latency(activation, join, bits)


def _view(chain):
    for c in chain:
        if c.kind.value == "upsample":
            return ("upsample", tuple(c.factor))
        if c.kind.value == "maxpool":
            return ("maxpool", tuple(c.kernel_size), tuple(c.stride), tuple(c.padding))
    return None


@dataclass(frozen=True)
class ConvGeometry:
    """Window geometry of a (transposed) convolution task.

    ``band_rows`` is how many input rows one output row's windows touch: ``(kh - 1) * dil + 1``,
    or for a transposed convolution the input rows behind that many rows of the zero-inserted
    input, ``ceil(((kh - 1) * dil + 1) / stride)``.
    """
    in_channels: int
    in_height: int
    in_width: int
    out_height: int
    out_width: int
    kernel: tuple
    stride: tuple
    padding: tuple
    dilation: tuple
    transposed: bool

    @property
    def span_rows(self):
        """Input rows one output row's windows span, before clipping to the image."""
        span = (self.kernel[0] - 1) * self.dilation[0] + 1
        if self.transposed:
            span = cdiv(span, self.stride[0])
        return span

    @property
    def band_rows(self):
        return min(self.span_rows, self.in_height)

    @property
    def first_rows(self):
        """Input rows needed before the first output row: the span less the top padding."""
        if self.transposed:
            return max(1, min(self.band_rows, self.in_height))
        return max(1, min(self.span_rows - self.padding[0], self.in_height))

    @property
    def line_rows(self):
        """Rows of the line buffer: the band, plus the ``stride`` rows the next output row needs
        streaming in while this one is computed (:class:`~intar_hw.hw.line_buffer.LineBuffer`).
        """
        step = 1 if self.transposed else self.stride[0]
        return min(self.band_rows + step, self.in_height)


@dataclass(frozen=True)
class Task:
    """One MAC operator and the SFU ops fused onto it.

    Attributes
    ----------
    name, kind : str
    index : int
        Position in graph order.
    batch, M, N, K : int
        The hardware GEMM (``batch`` independent ``M x K . K x N`` products).
    macs, hw_macs : int
        Useful MACs (from the graph) and hardware beats' worth ``batch * M * N * K``.
    a : str
        The tensor read as the A operand (rows of the GEMM; a convolution's input).
    a_role : str
        ``"A"`` or ``"window"`` (convolutions).
    b : str or None
        The activation read as the B operand of a matmul (``None`` for weights).
    b_role : str or None
        ``"B"`` (``A.B``) or ``"BT"`` (``A.B^T``).
    weight_bytes : int
        Parameter bytes, streamed from off-chip.
    out : str
        The MAC operator's own output tensor (before the epilogue).
    epilogue : tuple of str
        Names of the SFU ops fused after it, in graph order; ``sfu`` gives their kinds.
    prologue : tuple of str
        SFU ops on graph inputs applied on its operand read path.
    stored : tuple of str
        Tensors leaving the task (see the module documentation).
    side : tuple of str
        Tensors its epilogue joins read from other tasks or graph inputs.
    acc_bytes : int
        Bytes of one accumulator (partial sums kept in buffers).
    a_bytes_per_elem, b_bytes_per_elem : float
        Bytes per element of the A operand and of the B operand (weights or activation).
    conv : ConvGeometry or None
    has_bias : bool
        Whether a bias is added to the accumulators before requantisation.
    sfu_latency : int
        Result-path cycles of its epilogue's first table activation and first join, a mul
        followed by an add being one ``"mul_add"`` unit
        (:func:`~intar_hw.schedule.cost.sfu_latency`).
    softmax_bits : int
        Bits of the values a softmax in its epilogue takes, 0 without one.
    view : tuple or None
        A spatial SFU in its epilogue, which its readers apply on reading:
        ``("upsample", (fh, fw))`` or ``("maxpool", kernel, stride, padding)`` (pairs).
    """
    name: str
    kind: str
    index: int
    batch: int
    M: int
    N: int
    K: int
    macs: int
    hw_macs: int
    a: str
    a_role: str
    b: object
    b_role: object
    weight_bytes: int
    out: str
    epilogue: tuple
    sfu: tuple
    prologue: tuple
    stored: tuple
    side: tuple
    acc_bytes: int
    a_bytes_per_elem: float
    b_bytes_per_elem: float
    conv: object
    has_bias: bool = False
    bias_bytes: int = 0
    sfu_latency: int = 0
    softmax_bits: int = 0
    view: object = None

    @property
    def b_bytes(self):
        """Bytes of the B operand: the weights, or the activation B."""
        return self.weight_bytes if self.b is None else int(
            round(self.batch * self.K * self.N * self.b_bytes_per_elem))


@dataclass(frozen=True)
class TensorInfo:
    """A tensor the scheduler must place: an operand, a side input or a graph output.

    ``source`` is the task whose epilogue produces it (``None`` for graph inputs and prologue
    outputs); ``readers`` lists ``(task, role)`` pairs, role ``"A"``, ``"window"``, ``"B"``,
    ``"BT"`` or ``"side"``; ``rowwise`` says a row-wise SFU (softmax, LayerNorm) lies between
    its source's PE array and it, so it is complete only row by row.
    """
    name: str
    bytes: int
    shape: tuple
    rows: int
    source: object
    output: bool
    rowwise: bool
    readers: tuple


@dataclass(frozen=True)
class TaskGraph:
    """The tasks of a graph in graph order, and the tensors between them."""
    name: str
    tasks: tuple
    tensors: dict

    def task(self, name):
        for task in self.tasks:
            if task.name == name:
                return task
        raise ValueError(f"Graph {self.name!r} has no task {name!r}")

    @property
    def macs(self):
        return sum(t.macs for t in self.tasks)

    def producers(self, task):
        """Indices of the tasks whose stored tensors ``task`` (an index) reads."""
        t = self.tasks[task]
        names = [t.a] + ([t.b] if t.b is not None else []) + list(t.side)
        index = {x.name: x.index for x in self.tasks}
        return sorted({index[self.tensors[n].source] for n in names
                       if self.tensors[n].source is not None})


def _rows(shape):
    """Rows of a tensor in the order a producer emits them: raster rows of an image."""
    if len(shape) == 4:
        return shape[0] * shape[2]
    if len(shape) >= 2:
        return shape[-2]
    return 1


def _bytes_per_elem(fmt):
    return fmt.bits / 8


def task_graph(graph):
    """The :class:`TaskGraph` of ``graph``.

    Raises
    ------
    ValueError
        If the graph has no MAC operator.
    """
    ops = graph.ops
    mac_ops = [op for op in ops if op.kind.value in MAC_KINDS]
    if not mac_ops:
        raise ValueError(f"Graph {graph.name!r} has no MAC operator to schedule")
    index = {op.name: i for i, op in enumerate(mac_ops)}
    source = {t.name: None for t in graph.inputs}
    owner_ops = {op.name: [] for op in mac_ops}
    prologue_of = {}       # tensor -> prologue op names leading to it
    rowwise = {t.name: False for t in graph.inputs}
    for op in ops:
        name = op.name
        if op.kind.value in MAC_KINDS:
            source[name] = name
            rowwise[name] = False
            continue
        owners = [source[t.name] for t in op.inputs if source[t.name] is not None]
        if not owners:
            source[name] = None
            prologue_of[name] = tuple(n for t in op.inputs
                                      for n in prologue_of.get(t.name, ())) + (name,)
            rowwise[name] = False
            continue
        owner = max(owners, key=lambda n: index[n])
        source[name] = owner
        owner_ops[owner].append(op)
        rowwise[name] = op.kind.value in ROW_WISE or any(
            rowwise[t.name] for t in op.inputs if source[t.name] == owner)

    outputs = {t.name for t in graph.outputs}
    readers = {}

    def read(tensor, task, role):
        readers.setdefault(tensor, []).append((task, role))

    for op in mac_ops:
        if op.kind.value == "matmul":
            read(op.inputs[0].name, op.name, "A")
            read(op.inputs[1].name, op.name, "BT" if op.transpose_b else "B")
        elif op.kind.value == "linear":
            read(op.inputs[0].name, op.name, "A")
        else:
            read(op.inputs[0].name, op.name, "window")
    side_of = {op.name: [] for op in mac_ops}
    for owner, chain in owner_ops.items():
        for op in chain:
            for t in op.inputs:
                if source[t.name] != owner and t.name not in side_of[owner]:
                    side_of[owner].append(t.name)
                    read(t.name, owner, "side")

    tasks = []
    for op in mac_ops:
        kind = op.kind.value
        x = op.inputs[0]
        conv = None
        batch, M, K, N = op.gemm
        if kind not in ("linear", "matmul"):
            _, c_in, h_in, w_in = x.shape
            _, _, h_out, w_out = op.output.shape
            conv = ConvGeometry(c_in, h_in, w_in, h_out, w_out, tuple(op.kernel_size),
                                tuple(op.stride), tuple(op.padding), tuple(op.dilation),
                                kind == "conv_transpose2d")
        b = op.inputs[1].name if kind == "matmul" else None
        b_role = ("BT" if op.transpose_b else "B") if kind == "matmul" else None
        b_fmt = op.inputs[1].fmt if kind == "matmul" else op.weight_fmt
        chain = owner_ops[op.name]
        chain_names = {op.name} | {c.name for c in chain}
        stored = []
        for name in [op.name] + [c.name for c in chain]:
            consumers = graph.consumers(name)
            leaves = name in outputs or any(
                c.kind.value in MAC_KINDS or c.name not in chain_names for c in consumers)
            if leaves:
                stored.append(name)
        prologue = tuple(p for t in op.inputs for p in prologue_of.get(t.name, ()))
        tasks.append(Task(
            name=op.name, kind=kind, index=index[op.name], batch=batch, M=M, N=N, K=K,
            macs=op.macs, hw_macs=batch * M * N * K, a=x.name,
            a_role="window" if conv else "A", b=b, b_role=b_role,
            weight_bytes=op.param_bytes, out=op.name,
            epilogue=tuple(c.name for c in chain), sfu=tuple(c.kind.value for c in chain),
            prologue=prologue, stored=tuple(stored), side=tuple(side_of[op.name]),
            acc_bytes=max(1, math.ceil(op.acc_fmt.bits / 8)),
            a_bytes_per_elem=_bytes_per_elem(x.fmt), b_bytes_per_elem=_bytes_per_elem(b_fmt),
            conv=conv, has_bias=bool(getattr(op, "has_bias", False)), view=_view(chain),
            bias_bytes=op.params["bias"].nbytes if "bias" in op.params else 0,
            sfu_latency=_sfu_latency(chain, op.output.fmt.bits),
            softmax_bits=next((c.inputs[0].fmt.bits for c in chain
                               if c.kind.value == "softmax"), 0)))

    infos = {}
    wanted = set(readers) | outputs | {n for t in tasks for n in t.stored}
    # Graph order, so that every later tie-break is the same in every process.
    for name in (n for n in graph.tensors if n in wanted):
        tensor = graph.tensors[name]
        infos[name] = TensorInfo(
            name=name, bytes=tensor.nbytes, shape=tuple(tensor.shape), rows=_rows(tensor.shape),
            source=source[name], output=name in outputs, rowwise=rowwise[name],
            readers=tuple(readers.get(name, ())))
    return TaskGraph(name=graph.name, tasks=tuple(tasks), tensors=infos)
