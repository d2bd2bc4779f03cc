"""The Schedule: plain, frozen, validated data that fixes what the generated accelerator does.

A :class:`Schedule` is a list of :class:`Stage` records run one after the other. Each stage has a
:class:`Pattern` and one :class:`Placement` per task: which cores run it, its GEMM geometry, loop
order and bounds per core, where every operand comes from and every result goes (scratchpad, peer
FIFO, off-chip), the SFU ops fused onto its result link, and its predicted start, end and busy
cycles. Stages also list their pipeline buffers (line buffers, row blocks, accumulators, whole
tensors) and their predicted cycles with the bound that dominated.

Cores are the schedule's own list of PE arrays: for the ``sequential`` and ``intar`` policies they
are the budget's computing cores; for ``dataflow`` every task has a PE array of its own, carved
from the same total of MACs.

Every record is a frozen dataclass whose constructor validates its fields (``TypeError`` for a
wrong kind of value, ``ValueError`` for one out of range or inconsistent), and the whole schedule
round-trips through JSON: ``Schedule.from_json(s.to_json()) == s``. The module imports no Amaranth.
"""

import enum
import json
import math
from dataclasses import dataclass, field, fields, replace

from ..graph import Graph
from .resources import Resources
from ..table import Column, Table
from ..integers import is_int


__all__ = ["Pattern", "Location", "Order", "BOUNDS", "Core", "Operand", "Result", "Loop",
           "Placement", "Buffer", "Stage", "Schedule"]


class Pattern(str, enum.Enum):
    """How a stage's tasks share the cores."""
    #: One task on all cores.
    SEQUENTIAL = "sequential"
    #: Independent tasks on disjoint core groups.
    TASK_PARALLEL = "task_parallel"
    #: Dependent tasks on disjoint core groups, streaming through FIFOs and buffers.
    TASK_PIPELINE = "task_pipeline"

    def __str__(self):
        return self.value


class Location(str, enum.Enum):
    """Where an operand comes from or a result goes."""
    SCRATCHPAD = "scratchpad"
    OFFCHIP = "offchip"
    #: A stream from (or to) a peer core, through the SFUs of the link and a pipeline buffer.
    FIFO = "fifo"

    def __str__(self):
        return self.value


class Order(str, enum.Enum):
    """Loop order of a task.

    ``ROWS`` walks blocks of output rows outermost (A-stationary; results leave in row order),
    ``COLS`` blocks of output columns (B-stationary; results leave in column order), ``KOUTER``
    the reduction outermost in chunks (rank-d updates of accumulators held in a buffer; results
    leave during the last chunk).
    """
    ROWS = "rows"
    COLS = "cols"
    KOUTER = "kouter"

    def __str__(self):
        return self.value


#: What can limit a stage's cycles.
BOUNDS = ("compute", "pipeline-fill", "offchip", "scratchpad")

_OPERAND_ROLES = ("A", "B", "BT", "window", "weight", "side")
_BUFFER_KINDS = ("line", "row_block", "col_block", "accumulator", "whole", "a_block", "b_block",
                 "fifo")


# --- validation helpers -------------------------------------------------------------------------


def _int(owner, name, value, minimum=0):
    if not is_int(value):
        raise TypeError(f"{owner} {name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{owner} {name} must be at least {minimum}, not {value!r}")


def _str(owner, name, value, optional=False):
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise TypeError(f"{owner} {name} must be a non-empty string, not {value!r}")


def _enum(owner, name, value, cls):
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise TypeError(f"{owner} {name} must be {article} {cls.__name__}, not {value!r}")


def _tuple(owner, name, value, cls=None, nonempty=False):
    if not isinstance(value, tuple):
        raise TypeError(f"{owner} {name} must be a tuple, not {value!r}")
    if cls is not None and not all(isinstance(v, cls) for v in value):
        raise TypeError(f"{owner} {name} must hold only {cls.__name__} values, not {value!r}")
    if nonempty and not value:
        raise ValueError(f"{owner} {name} must not be empty")


# --- records ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Core:
    """A PE array: ``index`` and ``pea = (d1, d2, d3)``; ``macs`` per cycle is their product."""
    index: int
    pea: tuple

    def __post_init__(self):
        _int("Core", "index", self.index)
        if (not isinstance(self.pea, tuple) or len(self.pea) != 3
                or not all(is_int(d) for d in self.pea)):
            raise TypeError(f"Core {self.index} PE array must be a tuple of 3 integers, "
                            f"not {self.pea!r}")
        if min(self.pea) < 1:
            raise ValueError(f"Core {self.index} PE array dimensions must be at least 1, "
                             f"not {self.pea!r}")

    @property
    def macs(self):
        return math.prod(self.pea)


@dataclass(frozen=True)
class Operand:
    """One operand of a task.

    ``role``: ``"A"`` (rows of the GEMM's left operand), ``"B"`` / ``"BT"`` (an activation used as
    the right operand, as is or transposed), ``"window"`` (a convolution input read through window
    address generators), ``"weight"`` (parameters, always off-chip) or ``"side"`` (the second
    operand of a join fused into the task's result link). ``spilled_bytes`` of its ``bytes`` live
    off-chip and are read ``passes`` times.
    """
    tensor: str
    role: str
    source: Location
    producer: object
    bytes: int
    spilled_bytes: int
    passes: int

    def __post_init__(self):
        _str("Operand", "tensor", self.tensor)
        if self.role not in _OPERAND_ROLES:
            raise ValueError(f"Operand {self.tensor!r} role must be one of "
                             f"{', '.join(_OPERAND_ROLES)}, not {self.role!r}")
        _enum(f"Operand {self.tensor!r}", "source", self.source, Location)
        _str(f"Operand {self.tensor!r}", "producer", self.producer, optional=True)
        for name in ("bytes", "spilled_bytes", "passes"):
            _int(f"Operand {self.tensor!r}", name, getattr(self, name))
        if self.spilled_bytes > self.bytes:
            raise ValueError(f"Operand {self.tensor!r} spills {self.spilled_bytes} of only "
                             f"{self.bytes} bytes")

    @property
    def offchip_bytes(self):
        return self.spilled_bytes * self.passes


@dataclass(frozen=True)
class Result:
    """One tensor a task produces: through the SFU ops ``sfu`` (in order) to ``dest``.

    ``spilled_bytes`` of it are written off-chip (all of it for a graph output); ``consumers``
    names the tasks reading it (``"output"`` for a graph output).
    """
    tensor: str
    dest: Location
    sfu: tuple
    consumers: tuple
    bytes: int
    spilled_bytes: int

    def __post_init__(self):
        _str("Result", "tensor", self.tensor)
        owner = f"Result {self.tensor!r}"
        _enum(owner, "dest", self.dest, Location)
        _tuple(owner, "sfu", self.sfu, str)
        _tuple(owner, "consumers", self.consumers, str)
        _int(owner, "bytes", self.bytes)
        _int(owner, "spilled_bytes", self.spilled_bytes)
        if self.spilled_bytes > self.bytes:
            raise ValueError(f"{owner} spills {self.spilled_bytes} of only {self.bytes} bytes")

    @property
    def offchip_bytes(self):
        return self.spilled_bytes


@dataclass(frozen=True)
class Loop:
    """Loop bounds of one core for one task.

    The core computes ``batch`` GEMMs of ``i`` x ``j`` output tiles (M on the array's rows when
    ``orientation`` is ``"MN"``, N when ``"NM"``), each tile ``k`` beats deep; ``cycles`` is its
    busy time.
    """
    core: int
    orientation: str
    batch: int
    i: int
    j: int
    k: int
    cycles: int

    def __post_init__(self):
        for name in ("core", "batch", "i", "j", "k", "cycles"):
            _int("Loop", name, getattr(self, name))
        if self.orientation not in ("MN", "NM"):
            raise ValueError(f"Loop orientation must be 'MN' or 'NM', not {self.orientation!r}")


@dataclass(frozen=True)
class Placement:
    """One task of a stage on its cores.

    ``gemm = (batch, M, N, K)`` is the hardware GEMM (a transposed convolution counts its inserted
    zeros); ``macs`` are the useful multiply-accumulates and ``hw_macs`` the beats' worth. The
    core group deals the ``split`` dimension (``"M"`` or ``"N"``) in tiles; ``block`` is the
    number of rows (``ROWS``), columns (``COLS``) or reduction elements (``KOUTER``) handled per
    pass over the other operand. ``start``/``end`` are cycles from the stage's start; ``busy`` is
    the slowest core's compute time.
    """
    task: str
    kind: str
    cores: tuple
    gemm: tuple
    split: str
    order: Order
    block: int
    loops: tuple
    operands: tuple
    results: tuple
    macs: int
    hw_macs: int
    start: int
    end: int
    busy: int

    def __post_init__(self):
        owner = f"Placement {self.task!r}"
        _str("Placement", "task", self.task)
        _str(owner, "kind", self.kind)
        _tuple(owner, "cores", self.cores, int, nonempty=True)
        if len(set(self.cores)) != len(self.cores) or min(self.cores) < 0:
            raise ValueError(f"{owner} cores must be distinct non-negative indices, "
                             f"not {self.cores!r}")
        _tuple(owner, "gemm", self.gemm, int)
        if len(self.gemm) != 4 or min(self.gemm) < 1:
            raise ValueError(f"{owner} gemm must be 4 positive integers (batch, M, N, K), "
                             f"not {self.gemm!r}")
        if self.split not in ("M", "N"):
            raise ValueError(f"{owner} split must be 'M' or 'N', not {self.split!r}")
        _enum(owner, "order", self.order, Order)
        _int(owner, "block", self.block, 1)
        _tuple(owner, "loops", self.loops, Loop)
        if tuple(loop.core for loop in self.loops) != self.cores:
            raise ValueError(f"{owner} needs one loop record per core, in core order")
        _tuple(owner, "operands", self.operands, Operand)
        _tuple(owner, "results", self.results, Result)
        for name in ("macs", "hw_macs", "start", "end", "busy"):
            _int(owner, name, getattr(self, name))
        if self.end < self.start:
            raise ValueError(f"{owner} ends ({self.end}) before it starts ({self.start})")

    @property
    def offchip_bytes(self):
        return (sum(o.offchip_bytes for o in self.operands)
                + sum(r.offchip_bytes for r in self.results))


@dataclass(frozen=True)
class Buffer:
    """An on-chip buffer a stage needs beyond the scratchpad-resident tensors.

    ``kind``: ``"line"`` (convolution line buffer), ``"row_block"`` / ``"col_block"`` (a block of
    a streamed operand), ``"accumulator"`` (partial sums of rank-d updates), ``"whole"`` (a whole
    tensor, for a blocking edge), ``"a_block"`` / ``"b_block"`` (operand staging and reuse
    buffers of a task) or ``"fifo"`` (a join operand streamed from a peer). ``depth`` is its
    number of entries (rows, columns or elements); ``spilled_bytes`` of a whole-tensor buffer that
    did not fit went off-chip.
    """
    kind: str
    tensor: str
    owner: str
    producer: object
    bytes: int
    depth: int
    spilled_bytes: int = 0

    def __post_init__(self):
        if self.kind not in _BUFFER_KINDS:
            raise ValueError(f"Buffer kind must be one of {', '.join(_BUFFER_KINDS)}, "
                             f"not {self.kind!r}")
        _str("Buffer", "tensor", self.tensor)
        _str("Buffer", "owner", self.owner)
        _str("Buffer", "producer", self.producer, optional=True)
        for name in ("bytes", "depth", "spilled_bytes"):
            _int(f"Buffer {self.tensor!r}", name, getattr(self, name))


@dataclass(frozen=True)
class Stage:
    """One stage: a pattern, its task placements and buffers, and its predicted cycles.

    ``cycles = max(pipeline, offchip, scratchpad) + fill + reconfig``, where ``pipeline`` is the
    span from the first task's start to the last task's end (``compute`` is the busiest task's
    own time; a larger ``pipeline`` means stalls on producers), ``offchip`` the stage's off-chip
    bytes over the bandwidth, ``scratchpad`` the busiest scratchpad port, ``fill`` the array and
    off-chip latencies and ``reconfig`` the switch from the previous stage. ``bound`` names the
    term that dominated. ``scratchpad_bytes`` is the on-chip occupancy: ``resident`` tensors plus
    buffers. ``onchip`` is the pipeline span of the tasks alone, as if every operand were already
    on chip (the machine a host loads before it starts), up to the last task's result path
    (bias and SFU latencies of the tasks ending last).
    """
    index: int
    pattern: Pattern
    placements: tuple
    buffers: tuple
    start: int
    cycles: int
    bound: str
    compute: int
    pipeline: int
    offchip: int
    scratchpad: int
    fill: int
    reconfig: int
    offchip_bytes: int
    scratchpad_bytes: int
    resident: tuple
    onchip: int = 0

    def __post_init__(self):
        _int("Stage", "index", self.index)
        owner = f"Stage {self.index}"
        _enum(owner, "pattern", self.pattern, Pattern)
        _tuple(owner, "placements", self.placements, Placement, nonempty=True)
        _tuple(owner, "buffers", self.buffers, Buffer)
        _tuple(owner, "resident", self.resident, str)
        for name in ("start", "cycles", "compute", "pipeline", "offchip", "scratchpad", "fill",
                     "reconfig", "offchip_bytes", "scratchpad_bytes", "onchip"):
            _int(owner, name, getattr(self, name))
        if self.bound not in BOUNDS:
            raise ValueError(f"{owner} bound must be one of {', '.join(BOUNDS)}, "
                             f"not {self.bound!r}")
        if self.pattern is Pattern.SEQUENTIAL and len(self.placements) != 1:
            raise ValueError(f"{owner} is sequential but has {len(self.placements)} tasks")
        used = [c for p in self.placements for c in p.cores]
        if len(set(used)) != len(used):
            raise ValueError(f"{owner} gives a core to more than one task: {sorted(used)!r}")
        expected = max(self.pipeline, self.offchip, self.scratchpad) + self.fill + self.reconfig
        if self.cycles != expected:
            raise ValueError(f"{owner} cycles ({self.cycles}) must be max(pipeline, offchip, "
                             f"scratchpad) + fill + reconfig ({expected})")
        if any(p.end > self.pipeline for p in self.placements):
            raise ValueError(f"{owner} has a task ending after its pipeline span "
                             f"({self.pipeline})")

    @property
    def tasks(self):
        return tuple(p.task for p in self.placements)

    @property
    def end(self):
        return self.start + self.cycles

    @property
    def macs(self):
        return sum(p.macs for p in self.placements)


@dataclass(frozen=True)
class Schedule:
    """A complete schedule of a model on a budget, and its predicted totals.

    Attributes
    ----------
    cycles : int
        Sum of the stages' cycles.
    macs, hw_macs : int
        Useful multiply-accumulates, and the hardware's beats' worth.
    offchip_bytes : int
        Bytes moved off-chip (reads and writes).
    utilisation : float
        ``macs / (cycles * resources.macs_per_cycle)``.
    peak_scratchpad_bytes : int
        Largest on-chip occupancy of any stage.
    graph : Graph or None
        The graph the schedule was made for (set by :func:`.policies.schedule`), so that the
        schedule alone builds its accelerator; carried through JSON, left out of equality.
    """
    model: str
    policy: str
    resources: Resources
    cores: tuple
    stages: tuple
    graph: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        _str("Schedule", "model", self.model)
        _str("Schedule", "policy", self.policy)
        if not isinstance(self.resources, Resources):
            raise TypeError(f"Schedule resources must be Resources, not {self.resources!r}")
        _tuple("Schedule", "cores", self.cores, Core, nonempty=True)
        _tuple("Schedule", "stages", self.stages, Stage, nonempty=True)
        if self.graph is not None and not isinstance(self.graph, Graph):
            raise TypeError(f"Schedule graph must be a Graph, not {self.graph!r}")
        if tuple(c.index for c in self.cores) != tuple(range(len(self.cores))):
            raise ValueError("Schedule cores must be numbered 0, 1, ... in order")
        macs = sum(c.macs for c in self.cores)
        if macs > self.resources.macs_per_cycle:
            raise ValueError(f"Schedule cores have {macs} MACs but the budget has "
                             f"{self.resources.macs_per_cycle}")
        start = 0
        seen = set()
        for position, stage in enumerate(self.stages):
            if stage.index != position:
                raise ValueError(f"Schedule stage {position} is numbered {stage.index}")
            if stage.start != start:
                raise ValueError(f"Stage {position} starts at {stage.start}, not {start}")
            start += stage.cycles
            for placement in stage.placements:
                if placement.task in seen:
                    raise ValueError(f"Task {placement.task!r} is scheduled twice")
                seen.add(placement.task)
                for core in placement.cores:
                    if core >= len(self.cores):
                        raise ValueError(f"Task {placement.task!r} uses core {core} but the "
                                         f"schedule has {len(self.cores)}")

    # --- totals ---

    @property
    def cycles(self):
        return sum(s.cycles for s in self.stages)

    @property
    def macs(self):
        return sum(s.macs for s in self.stages)

    @property
    def hw_macs(self):
        return sum(p.hw_macs for s in self.stages for p in s.placements)

    @property
    def offchip_bytes(self):
        return sum(s.offchip_bytes for s in self.stages)

    @property
    def utilisation(self):
        return self.macs / (max(self.cycles, 1) * self.resources.macs_per_cycle)

    @property
    def peak_scratchpad_bytes(self):
        return max(s.scratchpad_bytes for s in self.stages)

    @property
    def tasks(self):
        return tuple(t for s in self.stages for t in s.tasks)

    def placement(self, task):
        """The :class:`Placement` of ``task`` (a task name)."""
        for stage in self.stages:
            for placement in stage.placements:
                if placement.task == task:
                    return placement
        raise ValueError(f"Schedule has no task {task!r}")

    def milliseconds(self):
        """Predicted latency in ms at the budget's clock, or ``None`` if it has none."""
        clock = self.resources.clock_mhz
        return None if clock is None else self.cycles / (clock * 1e3)

    # --- display ---

    def table(self, scale=None):
        """The stage table as text: a header naming the graph's activation format, ``scale``
        (when given), the cores the stages use and the budget; one line per task, grouped by
        stage; the totals."""
        fmts = sorted({t.fmt.name for t in self.graph.inputs}) if self.graph is not None else []
        what = ", ".join(([scale] if scale else []) + fmts)
        title = (f"{self.model}{f' ({what})' if what else ''}: {self.policy} schedule on "
                 f"{_cores_used_text(self.cores_used)}\nbudget: {self.resources.describe()}")
        rows = []
        for stage in self.stages:
            for n, p in enumerate(stage.placements):
                a = next((o for o in p.operands if o.role in ("A", "window")), None)
                source = "-" if a is None else _where(a.source, a.spilled_bytes, a.bytes)
                result = p.results[0] if p.results else None
                dest = "-" if result is None else _where(result.dest, result.spilled_bytes,
                                                         result.bytes)
                sfu = "-" if result is None or not result.sfu else ",".join(result.sfu)
                first = n == 0
                rows.append((stage.index if first else "", stage.pattern.value if first else "",
                             p.task, _cores_text(p.cores), p.order.value, source, dest, sfu,
                             stage.cycles if first else "", stage.bound if first else "",
                             stage.offchip_bytes if first else ""))
        ms = self.milliseconds()
        total = (f"total {self.cycles:,} cycles" + (f" ({ms:.4g} ms)" if ms else "")
                 + f", {self.macs:,} MACs, {self.offchip_bytes:,} off-chip bytes, "
                 f"utilisation {self.utilisation:.3f}, "
                 f"peak on-chip {self.peak_scratchpad_bytes / 1024:,.1f} KiB")
        return _STAGE_TABLE.text(rows, title=title, footer=[total])

    # --- JSON ---

    def with_graph(self, graph):
        """This schedule carrying ``graph`` (see :attr:`graph`)."""
        return replace(self, graph=graph)

    @property
    def cores_used(self):
        """The cores some stage gives work to, in index order."""
        used = {c for s in self.stages for p in s.placements for c in p.cores}
        return tuple(c for c in self.cores if c.index in used)

    def totals(self):
        """The predicted totals as plain data: cycles, MACs, off-chip bytes, utilisation
        (useful MACs over the cycles times the budget's MACs per cycle), peak on-chip bytes and
        the cores used (index and PE shape)."""
        return {"cycles": self.cycles, "macs": self.macs, "offchip_bytes": self.offchip_bytes,
                "utilisation": round(self.utilisation, 6),
                "peak_onchip_bytes": self.peak_scratchpad_bytes,
                "cores_used": [{"index": c.index, "pea": list(c.pea)} for c in self.cores_used]}

    def to_dict(self):
        """Plain data (JSON-compatible); :meth:`from_dict` rebuilds an equal schedule, its
        graph included. ``totals`` (:meth:`totals`) is derived, for readers of the JSON."""
        return {
            "model": self.model, "policy": self.policy,
            "resources": self.resources.to_dict(),
            "cores": [_plain(c) for c in self.cores],
            "stages": [_plain(s) for s in self.stages],
            "totals": self.totals(),
            "graph": None if self.graph is None else self.graph.to_dict(),
        }

    def to_json(self, indent=None):
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise TypeError(f"Schedule data must be a dict, not {data!r}")
        missing = {"model", "policy", "resources", "cores", "stages"} - set(data)
        if missing:
            raise ValueError(f"Schedule data lacks {', '.join(sorted(missing))}")
        return cls(
            model=data["model"], policy=data["policy"],
            resources=Resources.from_dict(data["resources"]),
            cores=tuple(_build(Core, c) for c in data["cores"]),
            stages=tuple(_build(Stage, s) for s in data["stages"]),
            graph=None if data.get("graph") is None else Graph.from_dict(data["graph"]))

    @classmethod
    def from_json(cls, text):
        return cls.from_dict(json.loads(text))


def _where(location, spilled, total):
    if location is Location.SCRATCHPAD and spilled:
        return f"sp+off{100 * spilled // max(total, 1)}%"
    return {"scratchpad": "scratchpad", "offchip": "off-chip", "fifo": "fifo"}[location.value]


_STAGE_TABLE = Table(
    Column("stage"), Column("pattern", "<"), Column("task", "<"), Column("cores", "<"),
    Column("order", "<"), Column("A from", "<"), Column("result to", "<"), Column("SFUs", "<"),
    Column("cycles"), Column("bound", "<"), Column("off-chip bytes"))


def _cores_used_text(cores):
    """``cores`` grouped by PE shape: "3 cores: 0-1 of 1x16x4 PEs, 2 of 1x1x4 PEs"."""
    shapes = {}
    for core in cores:
        shapes.setdefault(tuple(core.pea), []).append(core.index)
    groups = ", ".join(f"{_cores_text(indices)} of {'x'.join(map(str, pea))} PEs"
                       for pea, indices in shapes.items())
    return f"{len(cores)} core{'s' if len(cores) != 1 else ''}: {groups}"


def _cores_text(cores):
    cores = sorted(cores)
    if len(cores) > 1 and cores == list(range(cores[0], cores[-1] + 1)):
        return f"{cores[0]}-{cores[-1]}"
    return ",".join(map(str, cores))


# --- generic (de)serialisation of the records -----------------------------------------------------

_NESTED = {
    "placements": "Placement", "buffers": "Buffer", "loops": "Loop", "operands": "Operand",
    "results": "Result",
}
_ENUMS = {"pattern": Pattern, "order": Order, "source": Location, "dest": Location}


def _plain(record):
    out = {}
    for f in fields(record):
        out[f.name] = _plain_value(getattr(record, f.name))
    return out


def _plain_value(value):
    # Records accept numpy integers (integers.is_int); JSON gets Python ints.
    if isinstance(value, enum.Enum):
        return value.value
    if hasattr(value, "__dataclass_fields__"):
        return _plain(value)
    if isinstance(value, (tuple, list)):
        return [_plain_value(v) for v in value]
    if is_int(value):
        return int(value)
    return value


def _build(cls, data):
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__} data must be a dict, not {data!r}")
    kwargs = {}
    names = {f.name for f in fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{cls.__name__} data has unknown fields {', '.join(sorted(unknown))}")
    for name, value in data.items():
        if name in _ENUMS:
            value = _ENUMS[name](value)
        elif name in _NESTED:
            nested = globals()[_NESTED[name]]
            value = tuple(_build(nested, v) for v in value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[name] = value
    return cls(**kwargs)
