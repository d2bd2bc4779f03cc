"""The cost model: cycles of the hardware the generator builds from a schedule.

This module is the contract between the scheduler and the RTL generator: the generator must build
exactly the machine described here, and the cost model predicts its cycles. It imports no Amaranth.

Execution model
---------------
PE array
    Each core's array is ``d1 x d2 x d3``: a beat feeds ``d1`` A-vectors and ``d2`` B-vectors of
    ``d3`` elements, output-stationary (:class:`~intar_hw.hw.mac_array.MACArray`). A task's GEMM
    (``M x N x K``, ``batch`` times) is mapped with M on ``d1`` and N on ``d2`` (orientation
    ``"MN"``) or swapped (``"NM"``), whichever is faster (on a tie, the one with more rows per
    tile, which passes over B fewer times). A tile is ``ceil(K / d3)`` beats deep;
    a finished tile drains through the result path one PE row (``d2`` values) per cycle while the
    next tiles accumulate (the array holds two finished tiles): tile ``t``'s sum is ready at
    ``max(finish[t-1] + kb, end[t-2] + 1)`` and its drain ends ``rows_t`` cycles after
    ``max(finish[t], end[t-1])`` (:func:`~intar_hw.timing.core_cycles`; with tiles of equal rows
    a tile costs ``max(kb, rows)``). The array's pipeline latency
    (:data:`ARRAY_LATENCY`, 4 cycles: the operand register between fetch and array, registered
    operands, products, accumulators) is paid once per stage.
Core groups
    A task on several cores deals tiles of one dimension (``split``, M or N) round-robin to them;
    with equal cores each gets ``floor`` or ``ceil`` of the tile count, with unequal cores (the
    VAE's 64-tap and 16-tap) work goes in proportion to rate (a binary search on the finishing
    time). The other operand is broadcast. Rows covered by one pass over B are the sum of the
    cores' tile rows when M is split (``rows_per_pass``), else one tile's rows; likewise columns.
Memory
    Parameters, graph inputs and graph outputs live off-chip. Other tensors live in the pooled
    scratchpads when the live set fits; what does not fit spills (the producer writes the spilled
    part off-chip, every reader reads it back). Per task the loop order that minimises off-chip
    traffic is chosen: ``ROWS`` holds a block of A rows (resident, or staged in an input buffer)
    and streams B once per block, ``COLS`` holds a block of B columns in a weight buffer and
    streams A once per block. Weight tiles are reused across row tiles only when buffered; blocks
    grow to what the free on-chip memory holds. An A operand read from off-chip (a graph input, or
    the spilled part of a tensor) goes through a staging buffer of one row tile (a convolution:
    the input rows under its windows), one broadcast copy when the cores split N, one per core
    when they split M. A graph input whose row tile does not fit one core's scratchpad makes the
    budget infeasible; a tensor whose row tile does not fit is never spilled (and if it cannot
    stay on chip either, the budget is infeasible, naming the task and the shortfall).
Bandwidth
    Off-chip transfers overlap compute (double buffering) and reads and writes share one bus:
    ``offchip = ceil(bytes / bytes_per_cycle)``, plus the read latency once per stage that reads,
    plus the rows the last tile of the stage's last off-chip reader drains after its last operand
    word arrives.
    Scratchpads have ``scratchpad_ports`` read ports and one write port per core: reading A and
    B both from the scratchpad takes two reads per beat; results and join operands take one access
    per drained row.
Stages
    ``cycles = max(pipeline, offchip, scratchpad) + fill + reconfig`` where ``pipeline`` is the span
    of the stage's tasks, ``fill = ARRAY_LATENCY`` (+ the result path's latency after the last
    task's end: the latest ``end + BIAS_LATENCY + sfu_latency`` over the tasks, less the latest end
    (a task ending earlier pays its latency within that margin), + the off-chip latency and
    :data:`LOADER_LATENCY` when the stage reads off-chip, + :data:`STORE_LATENCY` when it writes
    results off-chip) and ``reconfig = RECONFIG_CYCLES`` at every stage boundary (the mode
    controller steps its state and restarts the address generators), ``RUN_OVERHEAD`` on the first
    stage (a run's start and done, each through a register of the mode controller). ``bound`` is
    ``offchip`` also when the pipeline term wins because tasks waited for operand words or results
    left late. ``pipeline`` includes the results written off-chip, which follow the compute (the
    storer starts when the cores are done and moves at the bus rate, at most one result word, a
    drained row's tile of ``d2`` columns, per cycle), and each task ends no earlier than its last
    off-chip operand word arrives (reads arrive in task order, at the bus rate and at most one
    memory word per cycle) plus the tiles it computes after that word, nor before its first operand
    word arrives plus all its work.
    ``bound`` names the dominating term: ``compute``, ``pipeline-fill`` (the span exceeds the
    busiest task by more than 1%: tasks waited for producers), ``offchip`` (also when the
    results written off-chip take more than 1% of the span) or ``scratchpad``.
Task pipelines
    Tasks of a TASK_PIPELINE stream their results through FIFOs (depth :data:`FIFO_DEPTH`, SFUs in
    the link) into the buffer each edge needs. An edge is *streamable* when the consumer takes
    its operand in the order the producer emits it:

    - A rows of a linear/matmul (consumer ``ROWS``): a row-block buffer of ``rows_per_pass`` rows,
      double-buffered; the producer must emit rows (``ROWS``, or ``COLS`` in one pass);
    - A columns, i.e. reduction chunks (consumer ``KOUTER``, rank-d updates, at most
      :data:`KOUTER_MAX_ROWS` rows): an accumulator buffer
      of ``batch * M * N`` partial sums; the producer must emit columns (``COLS``, or ``ROWS`` in
      one pass, as a one-row GEMV does: the paper's "rank-16 updates, h2 never stored");
    - a convolution's input (consumer ``ROWS``): a line buffer of ``band_rows + stride`` input
      rows (``ConvGeometry.line_rows``, the :class:`~intar_hw.hw.line_buffer.LineBuffer` default);
    - B^T (``A.B^T``, consumer ``COLS``, the producer's rows are B's columns) or B (``A.B``,
      consumer ``COLS``, the producer's columns): a column-block buffer of ``cols_per_pass``,
      double-buffered;
    - a join's side operand: a FIFO when both producers emit in the same order.

    A row-wise SFU (softmax, LayerNorm) in the link needs whole rows, so only a row-emitting
    producer streams through it. Any other edge is *blocking*: the whole tensor is buffered
    (spilled off-chip when it does not fit, counting its write and read) and the consumer starts
    when the producer ends. Producers emit linearly over their run (a ``KOUTER`` task during its
    last chunk only). Timing: ``start_t = max_p(emit_start_p + f * (end_p - emit_start_p))`` with
    ``f`` the fraction of the operand the consumer's buffer needs first (1 for blocking edges),
    and ``end_t = max(start_t + busy_t, max_p(end_p + tail_t))`` with ``tail_t`` the consumer's
    time for its last block. Rate mismatch falls out of the max. A convolution streaming from a
    convolution is timed tile by tile: each of its row tiles starts once the tile before is done and
    the producer has emitted the passes its windows read (through an upsampling or pooling between
    them), at the producer's own tile times when the producer is such a convolution. Back-pressure
    on a producer does not change the span (its consumer ends later anyway).
"""

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..timing import (ARRAY_LATENCY, BIAS_LATENCY, FIFO_DEPTH, KOUTER_MAX_ROWS, LOADER_LATENCY,
                      RECONFIG_CYCLES, REORDER_LATENCY, RUN_OVERHEAD, STORE_LATENCY, _tiles,
                      bias_word_runs, core_cycles, drain_after, operand_word_runs, sfu_latency,
                      softmax_busy, softmax_timing)
from .plan import Order
from ..integers import cdiv


__all__ = ["ARRAY_LATENCY", "BIAS_LATENCY", "LOADER_LATENCY", "STORE_LATENCY", "RECONFIG_CYCLES",
           "RUN_OVERHEAD", "FIFO_DEPTH", "KOUTER_MAX_ROWS", "REORDER_LATENCY", "sfu_latency",
           "softmax_timing", "softmax_busy", "core_cycles", "edge_latency", "Deal", "deal",
           "Member", "StageEval", "evaluate_stage", "mandatory_bytes", "InfeasibleError"]


class InfeasibleError(ValueError):
    """A budget cannot hold a task or tensor; the message names it and the shortfall."""


def _kib(n):
    return f"{n / 1024:.3g} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.3g} MiB"


def _loader_runs(task, d, peas, cores, inputs):
    """``[(memory words, bytes)]`` the loader writes for a dealt task, in its order: the
    off-chip A of every core (blocks of a tile's rows; a convolution's input flat), a join's
    side tensor from off-chip (in the result layout, a word per drained row and tile), then per
    core its bias and weights; what the group shares (A when it splits N or is a convolution's
    input, the weights and bias when it splits M) is written to all its cores at once.

    Where a tensor is read whole and once, its words are timed run by run
    (:func:`intar_hw.timing.operand_word_runs`, the generator's own word sizes): a run of short
    words (a narrow last tile, a one-row block's short last beat, a bias word of several
    accumulators) is word-rate or byte-rate bound on its own. Otherwise (re-reads, part
    spills, reduction chunks, convolutions) each operand is one run of its words and bytes."""
    def read(roles):
        return sum(i.spilled * i.passes for i in inputs if i.role in roles)

    def whole(role):
        return any(i.role == role and i.spilled == i.bytes and i.passes == 1 for i in inputs)

    shared_a = d.split == "N" or task.conv is not None
    shared_b = d.split == "M" and sum(1 for c in d.cores if c[3]) > 1
    # Word by word only what is read whole and once (the search calls this for every member).
    by_words_a, by_words_b = whole("A"), whole("weight") and task.b is None
    a_words, a_runs, b_words, b_runs = [], [], [], []
    for core, (orientation, Mc, Nc, cycles, (i, j, k)) in zip(cores, d.cores):
        if cycles == 0:
            continue
        d1, d2, d3 = peas[core]
        dm, dn = (d1, d2) if orientation == "MN" else (d2, d1)
        exact = k == cdiv(task.K, d3) and task.conv is None
        if task.conv is not None:
            c = task.conv
            a_words.append(cdiv(c.in_channels * c.in_height * c.in_width, dm * d3))
        else:
            a_words.append(task.batch * i * k)
        runs = (operand_word_runs(task.batch, Mc, dm, task.K, d3, _MAX_RUNS)
                if exact and by_words_a else None)
        a_runs.append(None if runs is None else
                      [(n, math.ceil(n * e * task.a_bytes_per_elem)) for n, e in runs])
        bias = bias_word_runs(orientation, Nc, d2) if task.has_bias else []
        b_words.append(task.batch * j * k + sum(n for n, _ in bias))
        runs = (operand_word_runs(task.batch, Nc, dn, task.K, d3, _MAX_RUNS)
                if exact and by_words_b else None)
        b_runs.append(None if runs is None else
                      [(n, n * w * 4) for n, w in bias]
                      + [(n, math.ceil(n * e * task.b_bytes_per_elem)) for n, e in runs])
    runs = []
    if read(("A", "window")):
        a_runs = a_runs[:1] if shared_a else a_runs
        if by_words_a and None not in a_runs:
            runs += [run for r in a_runs for run in r]
        else:
            runs.append((max(a_words) if shared_a else sum(a_words), read(("A", "window"))))
    if read(("side",)):
        sides = sum(1 for i in inputs if i.role == "side" and i.spilled and i.passes)
        runs.append((sides * _result_words(task, d, peas, cores), read(("side",))))
    rest = read(("weight", "B", "BT"))       # B from off-chip: weights (or a spilled B)
    if rest:
        b_runs = b_runs[:1] if shared_b else b_runs
        if by_words_b and None not in b_runs:
            runs += [run for r in b_runs for run in r]
        else:
            runs.append((max(b_words) if shared_b else sum(b_words), rest))
    return runs


#: Most runs of one operand's words :func:`_loader_runs` times one by one.
_MAX_RUNS = 16


def _load_tail(d, peas, cores, weights):
    """Cycles a dealt task computes after its last off-chip operand word arrives (the most on
    any core): a weight word (``weights``) is last consumed in the first pass over the tiles of
    B, an input word in the last tile of A; the tiles after it and their drains remain
    (:func:`~intar_hw.timing.drain_after`)."""
    tail = 0
    for core, (orientation, Mc, Nc, cycles, (i, j, k)) in zip(cores, d.cores):
        if cycles == 0:
            continue
        _, _, _, _, rows, rem, _ = _tiles(peas[core], orientation, Mc, Nc)
        p_tiles, q_tiles = (i, j) if orientation == "MN" else (j, i)
        # B lies on the array's columns ("MN") or rows ("NM"); A on the other side.
        b_on_columns = orientation == "MN"
        if b_on_columns if weights else not b_on_columns:
            # The last tile of the first P tile, then the other P tiles.
            runs = [(rows, (p_tiles - 2) * q_tiles), (rem, q_tiles)] if p_tiles > 1 else []
            tail = max(tail, drain_after(k, rows if p_tiles > 1 else rem, runs))
        else:
            # The first tile of the last P tile, then the rest of it.
            tail = max(tail, drain_after(k, rem, [(rem, q_tiles - 1)]))
    return tail


def _result_words(task, d, peas, cores):
    """Result-memory words of a dealt task's result, over its cores: one per drained row and
    tile of ``d2`` columns (the storer reads them one at a time; a join's side tensor from
    off-chip is loaded as that many words)."""
    words = 0
    for core, (orientation, Mc, Nc, cycles, _) in zip(cores, d.cores):
        if cycles > 0:
            rows, cols = (Mc, Nc) if orientation == "MN" else (Nc, Mc)
            words += task.batch * rows * cdiv(cols, peas[core][1])
    return words


def _drain_tail(d, peas, cores):
    """Rows the last tile of a dealt task drains after its last beat (the most on any core)."""
    rows = 0
    for core, (orientation, Mc, Nc, cycles, _) in zip(cores, d.cores):
        if cycles > 0:
            rows = max(rows, _tiles(peas[core], orientation, Mc, Nc)[5])
    return rows


@dataclass(frozen=True)
class Deal:
    """How a task's tiles are dealt to a core group, and the resulting busy time.

    ``cores`` holds ``(orientation, M_c, N_c, cycles, (i, j, k))`` per core; ``cycles`` is the
    slowest; ``rows_per_pass`` / ``cols_per_pass`` are the rows / columns the group covers in one
    pass over the other operand; ``dm`` / ``dn`` the largest tile extents.
    """
    split: str
    cycles: int
    cores: tuple
    rows_per_pass: int
    cols_per_pass: int


def _cycles(pea, orientation, batch, M, N, K, chunk, softmax_bits):
    """``core_cycles``, stretched by a softmax on the result link (``softmax_bits``)."""
    cycles, loops = core_cycles(pea, orientation, batch, M, N, K, chunk)
    if softmax_bits and cycles:
        cycles = softmax_busy(pea, batch, M, N, K, softmax_bits, cycles)
    return cycles, loops


def _best_orientation(pea, batch, M, N, K, chunk, softmax_bits=0):
    """The faster orientation; on a tie, the one with more rows per tile (fewer B passes).

    A task whose result link has a row-wise SFU (``softmax_bits``) drains whole rows: ``"MN"``.
    """
    best, best_key = None, None
    for orientation in ("MN",) if softmax_bits else ("MN", "NM"):
        cycles, loops = _cycles(pea, orientation, batch, M, N, K, chunk, softmax_bits)
        rows = pea[0] if orientation == "MN" else pea[1]
        key = (cycles, -min(rows, M))
        if best is None or key < best_key:
            best, best_key = (orientation, cycles, loops), key
    return best


@lru_cache(maxsize=65536)
def deal(peas, batch, M, N, K, chunk=None, split=None, softmax_bits=0):
    """Deal a GEMM over cores of shapes ``peas`` (a tuple), minimising the slowest core.

    ``split`` forces the dealt dimension (``"M"`` or ``"N"``); by default the faster wins, and of
    equally fast deals the one covering more rows per pass (fewer passes over B).
    ``softmax_bits`` (the format of a softmax on the result link, 0 for none) forces orientation
    ``"MN"`` and stretches each core's time by :func:`softmax_busy`.
    """
    best = None
    for dim in ((split,) if split else ("M", "N")):
        result = _deal_dim(peas, batch, M, N, K, chunk, dim, softmax_bits)
        if best is None or (result.cycles, -result.rows_per_pass) < (best.cycles,
                                                                     -best.rows_per_pass):
            best = result
    return best


def _deal_dim(peas, batch, M, N, K, chunk, dim, softmax_bits=0):
    size = M if dim == "M" else N
    g = len(peas)
    if g == 1 or size == 1:
        cores = [(peas[0], size)] + [(p, 0) for p in peas[1:]]
        sizes = [s for _, s in cores]
        return _make_deal(peas, batch, M, N, K, chunk, dim, sizes, softmax_bits=softmax_bits)
    if len(set(peas)) == 1:
        best = None
        for orientation in ("MN",) if softmax_bits else ("MN", "NM"):
            dm, dn, *_ = _tiles(peas[0], orientation, M, N)
            unit = dm if dim == "M" else dn
            units = cdiv(size, unit)
            base, extra = divmod(units, g)
            counts = [base + (1 if c < extra else 0) for c in range(g)]
            sizes = [n * unit for n in counts]
            # The partial last tile goes to a core with the most tiles: it shortens the slowest.
            sizes[counts.index(max(counts))] -= units * unit - size
            d = _make_deal(peas, batch, M, N, K, chunk, dim, sizes, orientation, softmax_bits)
            if best is None or (d.cycles, -d.rows_per_pass) < (best.cycles, -best.rows_per_pass):
                best = d
        return best

    def time(c, n):
        if n == 0:
            return 0
        Mc, Nc = (n, N) if dim == "M" else (M, n)
        return _best_orientation(peas[c], batch, Mc, Nc, K, chunk, softmax_bits)[1]

    def capacity(c, limit):
        lo, hi = 0, size
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if time(c, mid) <= limit:
                lo = mid
            else:
                hi = mid - 1
        return lo

    lo, hi = 0, min(time(c, size) for c in range(g))
    while lo < hi:
        mid = (lo + hi) // 2
        if sum(capacity(c, mid) for c in range(g)) >= size:
            hi = mid
        else:
            lo = mid + 1
    sizes, left = [], size
    for c in range(g):
        n = min(capacity(c, lo), left)
        sizes.append(n)
        left -= n
    return _make_deal(peas, batch, M, N, K, chunk, dim, sizes, softmax_bits=softmax_bits)


def _make_deal(peas, batch, M, N, K, chunk, dim, sizes, orientation=None, softmax_bits=0):
    cores = []
    for pea, n in zip(peas, sizes):
        Mc, Nc = (n, N) if dim == "M" else (M, n)
        if n == 0:
            cores.append(("MN", Mc, Nc, 0, (0, 0, 0)))
            continue
        if orientation is None:
            o, cycles, loops = _best_orientation(pea, batch, Mc, Nc, K, chunk, softmax_bits)
        else:
            o = orientation
            cycles, loops = _cycles(pea, o, batch, Mc, Nc, K, chunk, softmax_bits)
        cores.append((o, Mc, Nc, cycles, loops))
    extents = []
    for pea, (o, Mc, Nc, _, _) in zip(peas, cores):
        d1, d2, _ = pea
        extents.append((d1, d2) if o == "MN" else (d2, d1))
    active = [e for e, n in zip(extents, sizes) if n > 0] or extents[:1]
    if dim == "M":
        rows = min(M, sum(e[0] for e in active))
        cols = min(N, max(e[1] for e in active))
    else:
        rows = min(M, max(e[0] for e in active))
        cols = min(N, sum(e[1] for e in active))
    return Deal(dim, max(c[3] for c in cores), tuple(cores), max(rows, 1), max(cols, 1))


# --- stage evaluation ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Member:
    """A task in a stage: its index, the cores it runs on and its loop order."""
    task: int
    cores: tuple
    order: Order


@dataclass
class _Input:
    tensor: str
    role: str          # A, window, B, BT, weight, side
    bytes: int
    spilled: int = 0   # bytes living off-chip
    passes: int = 1
    producer: object = None
    streamed: bool = False
    edge: str = ""     # rows / cols / line / blocking / fifo


@dataclass
class TaskEval:
    member: Member
    deal: Deal
    busy: int
    start: int = 0
    end: int = 0
    emit_start: int = 0
    block: int = 1
    emitted: object = None      # per row tile, the cycle it is done (convolution pipelines)
    inputs: list = field(default_factory=list)
    results: list = field(default_factory=list)   # (tensor, dest, spilled, bytes, consumers)
    offchip_bytes: int = 0
    scratchpad_cycles: int = 0


@dataclass
class StageEval:
    """Everything :mod:`.policies` needs to make a :class:`~.plan.Stage` record."""
    members: tuple
    tasks: list
    buffers: list       # (kind, tensor, owner, producer, bytes, depth, spilled)
    cycles: int
    bound: str
    compute: int
    pipeline: int
    offchip: int
    scratchpad: int
    fill: int
    reconfig: int
    offchip_bytes: int
    buffer_bytes: int
    onchip: int = 0

    @property
    def key(self):
        return (self.cycles, self.offchip_bytes)


def _row_bytes(info):
    return info.bytes / max(info.rows, 1)


def _emits(task, member, d):
    """What order a task's results leave in: a set of 'rows' / 'cols'."""
    if member.order is Order.KOUTER:
        return {"rows", "cols"}
    if member.order is Order.ROWS:
        return {"rows", "cols"} if d.rows_per_pass >= task.M else {"rows"}
    return {"rows", "cols"} if d.cols_per_pass >= task.N else {"cols"}


def _staging(task, d, peas):
    """``(total, per_core)`` bytes of the input buffers staging one A row tile per core.

    A convolution stages the input rows under its windows. Cores that split N work on the same
    rows, so they share one broadcast copy; cores that split M each stage their own rows.
    """
    per_core = []
    for pea, (o, Mc, Nc, cycles, loops) in zip(peas, d.cores):
        if cycles == 0:
            continue
        dm = pea[0] if o == "MN" else pea[1]
        if task.conv is not None:
            c = task.conv
            rows = cdiv(min(dm, Mc), c.out_width) + c.band_rows
            rows = min(rows, c.in_height)
            per_core.append(int(math.ceil(rows * c.in_width * c.in_channels
                                          * task.a_bytes_per_elem)))
        else:
            per_core.append(int(math.ceil(min(dm, Mc) * task.K * task.batch
                                          * task.a_bytes_per_elem)))
    if not per_core:
        return 0, 0
    return (sum(per_core) if d.split == "M" else max(per_core)), max(per_core)


def _chunk_of(producer_task, producer_deal):
    return max(1, min(producer_deal.cols_per_pass, producer_task.N))


@dataclass
class _Plan:
    tasks: dict         # task index -> (Deal, edges, chunk, staging)
    mandatory: int      # bytes of buffers the stage cannot do without
    buffers: list
    optional: int       # staging bytes needed only if resident A operands get spilled
    pins: list          # (tensor, task, per-core bytes): A operands too big to stage on a core


def mandatory_bytes(tg, resources, peas, members, inside):
    """``(bytes, optional, pins)`` of a stage's on-chip needs.

    ``bytes``: pipeline buffers, and staging buffers of A operands that are always off-chip
    (graph inputs). ``optional``: staging the stage would need if its scratchpad operands were
    spilled. ``pins``: tensors that must not spill because no core could stage a row tile of
    them. Raises :class:`InfeasibleError` when a core cannot hold the staging of a graph input.
    """
    plan = _plan_edges(tg, resources, peas, members, inside, check=True)
    if plan is None:
        return None
    return plan.mandatory, plan.optional, plan.pins


def _always_offchip(info):
    return info.source is None or info.output


def _plan_edges(tg, resources, peas, members, inside, check=False):
    """Deals, edge kinds and pipeline buffers of a stage (no timing, no traffic)."""
    tasks = {}
    buffers = []
    mandatory = optional = 0
    pins = []
    for m in members:
        task = tg.tasks[m.task]
        core_peas = tuple(peas[c] for c in m.cores)
        chunk = None
        if m.order is Order.KOUTER:
            source = tg.tensors[task.a].source
            p = _index(tg, source)
            if p is None or p not in inside or task.a_role != "A":
                return None
            if task.batch * task.M > KOUTER_MAX_ROWS:
                return None
            chunk = _chunk_of(tg.tasks[p], tasks[p][0])
        split = "N" if m.order is Order.KOUTER else None
        d = deal(core_peas, task.batch, task.M, task.N, task.K, chunk, split,
                 task.softmax_bits)
        edges = []
        staging = None
        for tensor, role in _operands(task):
            info = tg.tensors[tensor]
            p = _index(tg, info.source)
            if p is None or p not in inside or p == m.task:
                if role in ("A", "window"):
                    total, per_core = _staging(task, d, core_peas)
                    always = _always_offchip(info)
                    staging = (tensor, total, per_core, always)
                    if always:
                        if check and per_core > resources.scratchpad_bytes:
                            raise InfeasibleError(
                                f"Task {task.name!r} needs {_kib(per_core)} of scratchpad for "
                                f"its input row tile of {tensor!r} but each CC has "
                                f"{_kib(resources.scratchpad_bytes)} "
                                f"({_kib(per_core - resources.scratchpad_bytes)} short)")
                        mandatory += total
                        buffers.append(("a_block", tensor, task.name, None, total, 1, 0))
                    else:
                        optional += total
                        if per_core > resources.scratchpad_bytes:
                            pins.append((tensor, task.name, per_core))
                continue
            ptask, pdeal, pmember = tg.tasks[p], tasks[p][0], inside[p]
            kind, need, tail, buf, depth = _edge(ptask, pmember, pdeal, task, m, d, role, info)
            steps = None
            if kind == "line":
                steps = _window_steps(ptask, pdeal, task, d)
                if steps is not None:
                    need = float(steps[0][0] + 1) / steps[1]
            edges.append((p, tensor, role, kind, need, tail, buf, depth, steps))
            if kind != "blocking":
                mandatory += buf
                buffers.append(({"rows": "row_block", "cols": "col_block", "line": "line",
                                 "acc": "accumulator", "fifo": "fifo",
                                 "bcols": "col_block"}[kind],
                                tensor, task.name, ptask.name, buf, depth, 0))
        tasks[m.task] = (d, edges, chunk, staging)
    return _Plan(tasks, mandatory, buffers, optional, pins)


def _index(tg, name):
    if name is None:
        return None
    for t in tg.tasks:
        if t.name == name:
            return t.index
    return None


def _operands(task):
    ops = [(task.a, task.a_role)]
    if task.b is not None:
        ops.append((task.b, task.b_role))
    ops.extend((s, "side") for s in task.side)
    return ops


def _edge(ptask, pmember, pdeal, task, member, d, role, info):
    """Kind of a stream edge: (kind, fraction needed first, tail fraction, buffer bytes, depth)."""
    emits = _emits(ptask, pmember, pdeal)
    if info.rowwise and "rows" not in emits:
        emits = set()
    row_bytes = _row_bytes(info)
    order = member.order
    blocking = ("blocking", 1.0, 1.0, info.bytes, info.rows)
    # The producer completes rows (columns) one pass at a time.
    row_grain = min(1.0, pdeal.rows_per_pass / ptask.M)
    col_grain = min(1.0, pdeal.cols_per_pass / ptask.N)

    def grain(fraction, unit):
        return min(1.0, math.ceil(fraction / unit - 1e-9) * unit)

    if role == "A":
        if order is Order.ROWS and "rows" in emits:
            rows = min(d.rows_per_pass, task.M)
            buf = int(math.ceil(min(info.bytes, 2 * rows * row_bytes)))
            return ("rows", grain(rows / task.M, row_grain), rows / task.M, buf, 2 * rows)
        if order is Order.KOUTER and "cols" in emits and not info.rowwise:
            chunk = _chunk_of(ptask, pdeal)
            acc = task.batch * task.M * task.N * task.acc_bytes
            return ("acc", chunk / task.K, chunk / task.K, acc, task.batch * task.M * task.N)
        return blocking
    if role == "window":
        c = task.conv
        if order is Order.ROWS and "rows" in emits:
            in_rows = info.rows
            first = grain(min(1.0, c.first_rows / c.in_height), row_grain)
            rows = min(c.line_rows, in_rows)
            buf = int(math.ceil(rows * row_bytes))
            tail = max(min(d.rows_per_pass, task.M) / task.M, 1 / max(c.out_height, 1))
            return ("line", first, tail, buf, rows)
        return blocking
    if role == "BT":
        # B's columns are the producer's rows.
        if order is Order.COLS and "rows" in emits:
            cols = min(d.cols_per_pass, task.N)
            buf = int(math.ceil(min(info.bytes, 2 * cols * row_bytes)))
            return ("bcols", grain(cols / task.N, row_grain), cols / task.N, buf, 2 * cols)
        return blocking
    if role == "B":
        if order is Order.COLS and "cols" in emits:
            cols = min(d.cols_per_pass, task.N)
            buf = int(math.ceil(min(info.bytes, 2 * cols * info.bytes / (task.N * task.batch))))
            return ("cols", grain(cols / task.N, col_grain), cols / task.N, buf, 2 * cols)
        return blocking
    # A join's side operand must arrive in the order the task emits its results.
    own = _emits(task, member, d)
    if emits & own:
        word = int(math.ceil(row_bytes))
        if member.order is Order.KOUTER:
            return ("fifo", 1.0, 1 / max(task.K, 1), FIFO_DEPTH * word, FIFO_DEPTH)
        fraction = (grain(min(d.rows_per_pass, task.M) / task.M, row_grain)
                    if "rows" in own & emits
                    else grain(min(d.cols_per_pass, task.N) / task.N, col_grain))
        return ("fifo", fraction, fraction, FIFO_DEPTH * word, FIFO_DEPTH)
    return blocking


def _window_steps(ptask, pdeal, task, d):
    """``(passes, count)`` of a convolution streaming its input from a convolution producing
    pixels in raster order, or ``None``: per row tile of the consumer (``rows_per_pass``
    pixels), the last of the producer's ``count`` passes (``pdeal.rows_per_pass`` pixels,
    every channel) any tile up to it reads. The producer's result is stored before its
    ``view`` (an upsampling or max-pooling the consumer's window reads through)."""
    c, pc = task.conv, ptask.conv
    if c is None or pc is None or task.batch != 1 or d.rows_per_pass < 1:
        return None
    hs, ws = pc.out_height, pc.out_width
    images = ptask.M // (hs * ws)
    oy, ox = np.divmod(np.arange(task.M) % (c.out_height * c.out_width), c.out_width)
    image = np.arange(task.M) // (c.out_height * c.out_width)

    def last(o, axis, size):
        """The last input row (column) under each output row's (column's) windows."""
        k, s, p, dil = c.kernel[axis], c.stride[axis], c.padding[axis], c.dilation[axis]
        if c.transposed:
            return np.minimum(size - 1, (o + p) // s)
        return np.minimum(size - 1, o * s - p + (k - 1) * dil)
    y, x = last(oy, 0, c.in_height), last(ox, 1, c.in_width)
    view = ptask.view
    if view is not None and view[0] == "upsample":
        y, x = y // view[1][0], x // view[1][1]
    elif view is not None:
        (kh, kw), (sh, sw), (ph, pw) = view[1:]
        y, x = y * sh - ph + kh - 1, x * sw - pw + kw - 1
    y, x = np.clip(y, 0, hs - 1), np.clip(x, 0, ws - 1)
    pixel = np.maximum.accumulate(image * hs * ws + y * ws + x)
    rows = d.rows_per_pass
    tiles = cdiv(task.M, rows)
    ends = np.minimum(np.arange(1, tiles + 1) * rows, task.M) - 1
    return pixel[ends] // pdeal.rows_per_pass, cdiv(images * hs * ws, pdeal.rows_per_pass)


def _passes_done(pe, passes, count):
    """Cycles producer ``pe`` has emitted its passes ``passes`` (of ``count``) by: its own tile
    times when known, else linearly from its emission start but at most at its compute rate
    before its end (a producer that waited emits its last passes back to back)."""
    if pe.emitted is not None and len(pe.emitted) == count:
        return pe.emitted[passes]
    f = (passes + 1) / count
    return np.maximum(pe.emit_start + np.ceil(f * (pe.end - pe.emit_start) - 1e-9),
                      pe.end - np.floor((1 - f) * pe.busy + 1e-9))


def _tile_times(te, start, windows):
    """Per row tile of a convolution streaming its inputs (``windows``: producer, lag, steps),
    the cycle it is done: tiles in order, ``busy // tiles`` cycles each, a tile starting once
    the one before is done and the producers' passes under its windows have arrived."""
    tiles = len(windows[0][2][0])
    pace = te.busy // tiles
    ready = np.full(tiles, float(start))
    for pe, lag, (passes, count) in windows:
        ready = np.maximum(ready, _passes_done(pe, passes, count) + lag)
    index = np.arange(tiles)
    # done[t] = max(done[t - 1], ready[t]) + pace, as a running maximum.
    return pace * (index + 1) + np.maximum.accumulate(ready - pace * index)


def _result_latency(task):
    """Cycles a task's result path (bias, SFUs) adds after its array."""
    return (BIAS_LATENCY if task.has_bias else 0) + task.sfu_latency


def edge_latency(task):
    """Cycles from a task's busy time covering a result to a consumer in the same stage being
    able to read it: the array's and the result path's latencies (bias, SFUs) and the one-cycle
    level register of the result memory."""
    return ARRAY_LATENCY + _result_latency(task) + 1


def _timing(tg, members, evals, plan, arrival):
    """Set every task's start, end and emission start from its producers (in graph order) and
    the ``arrival`` bound on its end."""
    for m in members:
        te = evals[m.task]
        task = tg.tasks[m.task]
        _, edges, chunk, _ = plan[m.task]
        start, late = 0, 0
        windows = []
        for p, tensor, role, kind, need, tail, buf, depth, steps in edges:
            pe = evals[p]
            span = pe.end - pe.emit_start
            # A result reaches its reader after the producer's array and result path and the
            # level register that releases it (paid once per stage by the last task, in fill).
            lag = edge_latency(tg.tasks[p])
            if kind == "blocking":
                start = max(start, pe.end + lag)
            else:
                start = max(start, pe.emit_start + int(math.ceil(need * span)) + lag)
                late = max(late, pe.end + lag + int(math.ceil(tail * te.busy)))
                if steps is not None:
                    windows.append((pe, lag, steps))
        te.start = start
        te.end = max(start + te.busy, late, arrival.get(m.task, 0))
        te.emitted = None
        if windows:
            # Each tile's result is out after its last beat and the drain of its rows.
            done = _tile_times(te, start, windows)
            tiles = len(done)
            pace, drain = te.busy // tiles, te.busy % tiles
            te.emitted = done + drain
            te.end = max(start + te.busy, int(te.emitted[-1]), arrival.get(m.task, 0))
            if te.end > te.emitted[-1]:
                # Operands arriving late push its last tiles back to back before its end.
                back = te.end - pace * np.arange(tiles - 1, -1, -1)
                te.emitted = np.maximum(te.emitted, back)
        if m.order is Order.KOUTER and chunk:
            passes = cdiv(task.K, chunk)
            te.emit_start = te.end - int(math.ceil(te.busy / passes))
        else:
            te.emit_start = te.start

def evaluate_stage(tg, resources, peas, members, spill, room, first, readers_inside=None):
    """Predict one stage.

    Parameters
    ----------
    tg : TaskGraph
    resources : Resources
    peas : tuple of (d1, d2, d3)
        Shapes of the schedule's cores, by index.
    members : tuple of Member
        The stage's tasks in graph order, on disjoint cores.
    spill : mapping of str to float
        Fraction of each stored tensor that lives off-chip (missing: all on-chip).
    room : int
        On-chip bytes free for this stage's buffers (capacity less resident tensors).
    first : bool
        Whether this is the first stage (launched from the run's start, not reconfigured).
    readers_inside : callable or None
        ``readers_inside(tensor)`` is true when every reader of a tensor produced here is in this
        stage (so it is not stored); by default judged from ``members``.

    Returns
    -------
    StageEval or None
        ``None`` when the members' orders cannot work together (e.g. ``KOUTER`` without a
        streamed A) or the mandatory buffers exceed ``room``.
    """
    inside = {m.task: m for m in members}
    planned = _plan_edges(tg, resources, peas, members, inside)
    if planned is None:
        return None
    plan, mandatory, buffers = planned.tasks, planned.mandatory, planned.buffers
    if mandatory > room:
        return None
    free = room - mandatory
    names = {tg.tasks[i].name for i in inside}

    def internal(tensor):
        info = tg.tensors[tensor]
        if readers_inside is not None:
            return readers_inside(tensor)
        return not info.output and info.readers and all(r in names for r, _ in info.readers)

    evals = {}
    total_bytes = 0
    reads_offchip = False
    for m in members:
        task = tg.tasks[m.task]
        d, edges, chunk, staging = plan[m.task]
        te = TaskEval(member=m, deal=d, busy=d.cycles)
        by_tensor = {e[1]: e for e in edges}
        inputs = []
        for tensor, role in _operands(task):
            info = tg.tensors[tensor]
            e = by_tensor.get(tensor)
            if e is not None:
                p, _, _, kind, need, tail, buf, depth, _ = e
                item = _Input(tensor, role, info.bytes, producer=tg.tasks[p].name, streamed=True,
                              edge=kind)
                if kind == "blocking":
                    held = min(buf, free)
                    free -= held
                    item.spilled = buf - held
                    item.passes = 2 if item.spilled else 0   # written once, read once
                    buffers.append(("whole", tensor, task.name, tg.tasks[p].name, buf,
                                    info.rows, buf - held))
                else:
                    item.passes = 0
                inputs.append(item)
                continue
            if _always_offchip(info):
                spilled = info.bytes
            else:
                spilled = int(round(spill.get(tensor, 0.0) * info.bytes))
            inputs.append(_Input(tensor, role, info.bytes, spilled=spilled, producer=info.source))
        a = inputs[0]
        if staging is not None and not staging[3] and a.spilled:
            # A spilled scratchpad operand comes back through a staging buffer.
            tensor, total, per_core, _ = staging
            if per_core > resources.scratchpad_bytes or total > free:
                return None
            free -= total
            buffers.append(("a_block", tensor, task.name, None, total, 1, 0))
        if task.b is None and task.weight_bytes:
            inputs.append(_Input(f"{task.name}.weight", "weight", task.weight_bytes,
                                 spilled=task.weight_bytes))
        free = _choose_reuse(task, m, d, inputs, free, buffers)
        te.inputs = inputs
        te.block = _block_of(task, m, d)
        # Results.
        results = []
        for tensor in task.stored:
            info = tg.tensors[tensor]
            consumers = tuple(r for r, _ in info.readers) + (("output",) if info.output else ())
            if internal(tensor):
                results.append((tensor, "fifo", 0, info.bytes, consumers))
            elif info.output:
                results.append((tensor, "offchip", info.bytes, info.bytes, consumers))
            else:
                spilled = int(round(spill.get(tensor, 0.0) * info.bytes))
                dest = "offchip" if spilled >= info.bytes else "scratchpad"
                results.append((tensor, dest, spilled, info.bytes, consumers))
        te.results = results
        te.offchip_bytes = (sum(i.spilled * i.passes for i in inputs)
                            + sum(r[2] for r in results))
        reads_offchip = reads_offchip or any(i.spilled and i.passes for i in inputs)
        total_bytes += te.offchip_bytes
        te.scratchpad_cycles = _port_cycles(task, d, inputs, results, resources)
        evals[m.task] = te

    # Off-chip reads arrive in task order (the loader's): a task cannot end before its last
    # operand word is in and the work after that word is done.
    # The loader writes at most one memory word per cycle, each once its bytes are in: a run of
    # words ends a word per cycle after its first bytes (or the run before it), or with its
    # last bytes, whichever is later.
    bus = resources.offchip_bytes_per_cycle
    arrived = written = 0
    arrival = {}
    # Nor can it end before its first operand word is in and all its work done after it (a
    # task whose words come after another task's starts late; both bounds are exact when words
    # arrive and are consumed at steady rates).
    for m in members:
        te = evals[m.task]
        if sum(i.spilled * i.passes for i in te.inputs):
            first_word = max(written, int(math.ceil(arrived / bus))) + 1
            for words, nbytes in _loader_runs(tg.tasks[m.task], te.deal, peas, m.cores,
                                              te.inputs):
                written = max(max(written, int(math.ceil(arrived / bus))) + words,
                              int(math.ceil((arrived + nbytes) / bus)))
                arrived += nbytes
            weights = any(i.role == "weight" and i.spilled for i in te.inputs)
            arrival[m.task] = max(written + _load_tail(te.deal, peas, m.cores, weights),
                                  first_word + te.busy)

    def result_tail():
        # Result-path cycles (bias, SFUs) after the last task's end: the latest end + latency.
        last = max(te.end for te in evals.values())
        return max(te.end + _result_latency(tg.tasks[t]) for t, te in evals.items()) - last

    # Timing, in graph order: on chip alone (the host-loaded machine), then with the reads.
    _timing(tg, members, evals, plan, {})
    onchip = max(te.end for te in evals.values())
    onchip_tail = result_tail()
    _timing(tg, members, evals, plan, arrival)

    # Results written off-chip follow the compute: the storer starts when the cores are done
    # and reads one result word a cycle at most.
    stored = max(int(math.ceil(sum(r[2] for te in evals.values() for r in te.results)
                               / resources.offchip_bytes_per_cycle)),
                 sum(_result_words(tg.tasks[te.member.task], te.deal, peas, te.member.cores)
                     for te in evals.values() for r in te.results if r[2] and r[2] >= r[3]))
    pipeline = max(te.end for te in evals.values()) + stored
    compute = max(te.busy for te in evals.values())
    offchip = int(math.ceil(total_bytes / resources.offchip_bytes_per_cycle))
    if reads_offchip:
        # After the last operand word arrives, the last tile still drains its rows.
        last = [m for m in members if evals[m.task].offchip_bytes][-1]
        offchip += _drain_tail(evals[last.task].deal, peas, last.cores)
    scratchpad = max(te.scratchpad_cycles for te in evals.values())
    writes_offchip = any(r[2] for te in evals.values() for r in te.results)
    fill = (ARRAY_LATENCY + result_tail()
            + (resources.offchip_latency + LOADER_LATENCY if reads_offchip else 0)
            + (STORE_LATENCY if writes_offchip else 0))
    reconfig = RUN_OVERHEAD if first else RECONFIG_CYCLES
    top = max(pipeline, offchip, scratchpad)
    if top == pipeline and (pipeline > (onchip + stored) * 1.01 + 1
                            or stored > pipeline * 0.01 + 1):
        bound = "offchip"           # the tasks waited for operands, or results left late
    elif top == pipeline:
        bound = "compute" if pipeline <= compute * 1.01 + 1 else "pipeline-fill"
    elif top == offchip:
        bound = "offchip"
    else:
        bound = "scratchpad"
    buffer_bytes = sum(b[4] - b[6] for b in buffers)
    return StageEval(
        members=tuple(members), tasks=[evals[m.task] for m in members], buffers=buffers,
        cycles=top + fill + reconfig, bound=bound, compute=compute, pipeline=pipeline,
        offchip=offchip, scratchpad=scratchpad, fill=fill, reconfig=reconfig,
        offchip_bytes=total_bytes, buffer_bytes=buffer_bytes, onchip=onchip + onchip_tail)


def _block_of(task, member, d):
    if member.order is Order.ROWS:
        return max(1, min(task.M, d.rows_per_pass))
    if member.order is Order.COLS:
        return max(1, min(task.N, d.cols_per_pass))
    return max(1, min(task.K, d.cols_per_pass))


def _grow(unit, limit, budget, per_unit_bytes):
    """Largest multiple of ``unit`` (at least ``unit``, at most ``limit``) whose bytes fit."""
    if per_unit_bytes <= 0:
        return limit
    fits = int(budget // per_unit_bytes) if budget > 0 else 0
    return max(unit, min(limit, fits // unit * unit))


def _choose_reuse(task, member, d, inputs, free, buffers):
    """Set the off-chip passes of A and B for the task's order; grow reuse buffers into ``free``.

    ``ROWS``: A rows are on chip R at a time (all of them when A is resident or buffered whole,
    a row-block when streamed, a staged block when spilled); a B column tile is reused across
    those R rows if a double-buffered tile buffer fits, else B streams once per row pass.
    ``COLS`` is the mirror image. Returns the free bytes left.
    """
    a = next(i for i in inputs if i.role in ("A", "window"))
    b = next((i for i in inputs if i.role in ("B", "BT", "weight")), None)
    M, N = task.M, task.N
    P_M, P_N = d.rows_per_pass, d.cols_per_pass
    a_off = 0 if a.streamed else a.spilled
    b_off = 0 if (b is None or b.streamed) else b.spilled
    a_row = a.bytes / M
    b_col = (b.bytes / N) if b is not None else 0.0
    a_tile = int(math.ceil(2 * P_M * a_row))
    b_tile = int(math.ceil(2 * P_N * b_col))
    if not a.streamed:
        a.passes = 1
    if b is not None and not b.streamed:
        b.passes = 1
    order = member.order
    if order is Order.KOUTER:
        # A arrives in reduction chunks; the chunk's B rows serve every row tile if buffered.
        if b_off and M > P_M:
            if b_tile <= free:
                free -= b_tile
                buffers.append(("b_block", b.tensor, task.name, None, b_tile, 2 * P_N, 0))
            else:
                b.passes = cdiv(M, P_M)
        return free
    if order is Order.ROWS:
        if a.streamed:
            rows = P_M if a.edge == "rows" else M
        elif not a_off:
            rows = M
        else:
            rows = P_M
            if b_off and M > P_M:
                # The staging buffer already holds P_M rows; more rows cost a_off / M each.
                rows = _grow(P_M, M, free - b_tile + a_off / M * P_M, a_off / M)
            if rows > P_M:
                a_buf = int(math.ceil(a_off / M * (rows - P_M)))
                free -= a_buf
                buffers.append(("a_block", a.tensor, task.name, None, a_buf, rows, 0))
        if b_off and M > P_M:
            if rows > P_M and b_tile <= free:
                free -= b_tile
                buffers.append(("b_block", b.tensor, task.name, None, b_tile, 2 * P_N, 0))
                b.passes = cdiv(M, rows)
            else:
                b.passes = cdiv(M, P_M)
        return free
    # COLS
    if b is None:
        cols = N
    elif b.streamed:
        cols = P_N if b.edge in ("cols", "bcols") else N
    elif not b_off:
        cols = N
    else:
        cols = P_N
        if a_off and N > P_N:
            cols = _grow(P_N, N, free - a_tile, b_off / N)
        if cols > P_N:
            b_buf = int(math.ceil(b_off / N * cols))
            free -= b_buf
            buffers.append(("b_block", b.tensor, task.name, None, b_buf, cols, 0))
    if b_off and M > P_M and cols <= P_N:
        # The B column tile serves every row tile only if buffered.
        if b_tile <= free:
            free -= b_tile
            buffers.append(("b_block", b.tensor, task.name, None, b_tile, 2 * P_N, 0))
        else:
            b.passes = cdiv(M, P_M)
    if a_off and N > P_N:
        if cols > P_N and a_tile <= free:
            free -= a_tile
            buffers.append(("a_block", a.tensor, task.name, None, a_tile, 2 * P_M, 0))
            a.passes = cdiv(N, cols)
        else:
            a.passes = cdiv(N, P_N)
    return free


def _port_cycles(task, d, inputs, results, resources):
    """Busiest scratchpad port of the task's cores (see the module documentation)."""
    a = next(i for i in inputs if i.role in ("A", "window"))
    b = next((i for i in inputs if i.role in ("B", "BT")), None)
    a_sp = int(not a.streamed and a.spilled < a.bytes)
    b_sp = int(b is not None and not b.streamed and b.spilled < b.bytes)
    sides = sum(1 for i in inputs if i.role == "side" and not i.streamed and i.spilled < i.bytes)
    to_sp = sum(1 for r in results if r[1] == "scratchpad")
    worst = 0
    for o, Mc, Nc, cycles, (i, j, k) in d.cores:
        if cycles == 0:
            continue
        beats = task.batch * i * j * k
        rows = task.batch * (j * Mc if o == "MN" else i * Nc)
        reads = (a_sp + b_sp) * beats + sides * rows
        writes = to_sp * rows
        worst = max(worst, cdiv(reads, resources.scratchpad_ports), writes)
    return worst
