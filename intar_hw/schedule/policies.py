"""The scheduling policies: ``sequential``, ``dataflow`` and ``intar``.

All three share one budget and one cost model (:mod:`.cost`); they differ only in the space of
designs they may choose from.

``sequential``
    One SEQUENTIAL stage per task, in graph order, on all cores; per task the loop order and reuse
    buffers that minimise cycles (then off-chip bytes); tensors spill off-chip only as far as the
    live set exceeds the pooled scratchpads.
``dataflow``
    One TASK_PIPELINE stage holding every task, each on a PE array of its own: the budget's MACs
    are shared in proportion to each task's hardware work (largest-remainder rounding), and each
    task takes the fastest ``(d1, d2, d3)`` shape within its share. Everything streams; edges
    whose orders cannot match are buffered whole (spilled off-chip as far as they do not fit).
    Loop orders are chosen greedily in graph order, then improved by coordinate descent.
``intar``
    Dynamic programming over a topological task order (every topological order when there are
    at most :data:`MAX_ORDERS`) into consecutive groups. A group of one task is SEQUENTIAL; a
    group of up to ``ccs`` tasks is TASK_PARALLEL when no task reads another's result, else a
    TASK_PIPELINE; each is tried on every split of the cores (compositions of the CC count, or
    every assignment of unequal cores) and every combination of loop orders. Each DP state keeps
    a Pareto front of (cycles, off-chip bytes). Candidate schedules (the fronts' ends, and the
    two pure paradigms, which are the ends of InTAR's space: the sequential schedule and the
    dataflow pipeline of every task on PEs of its own) are then evaluated exactly (a grouping
    whose join would read its side tensor in other tiles than it was computed in is dropped:
    the generator joins where the side was written, :func:`_joins_in_place`), and the
    winner is chosen by :func:`pick`: the fewest off-chip bytes among the schedules within
    :data:`CLOSE` (1%) of the fewest cycles, the window capped at the better baseline's cycles
    (so the bytes never cost a loss to a baseline that the search can match).

Memory
    Between stages a tensor lives in the pooled scratchpads unless the stage live sets exceed
    capacity (total scratchpad plus FIFO budget, less each stage's mandatory buffers); then the
    greedy :func:`spill_plan` moves the least harmful bytes off-chip. Tensors produced and
    consumed inside one pipeline stage never touch the scratchpad.
"""

import dataclasses
import itertools
import math

from .cost import Member, evaluate_stage, mandatory_bytes, core_cycles, InfeasibleError, _kib
from .plan import (Pattern, Location, Order, Core, Operand, Result, Loop, Placement, Buffer,
                   Stage, Schedule)
from .resources import Resources
from .tasks import task_graph, TaskGraph


__all__ = ["POLICIES", "CLOSE", "MAX_ORDERS", "UnbuildableError", "schedule", "evaluate", "pick",
           "spill_plan", "dataflow_shapes"]


#: The policies :func:`schedule` accepts.
POLICIES = ("sequential", "dataflow", "intar")
#: Two schedules are "close" when the slower takes at most this fraction more cycles.
CLOSE = 0.01
#: Most topological orders the ``intar`` search tries.
MAX_ORDERS = 24
#: Pareto-front entries kept per DP state.
_FRONT = 6


def schedule(graph, resources, policy="intar", *, buildable=True):
    """Schedule ``graph`` on ``resources`` with ``policy``.

    Parameters
    ----------
    graph : Graph or TaskGraph
    resources : Resources
    policy : str
        ``"sequential"``, ``"dataflow"`` or ``"intar"``.
    buildable : bool
        Offer only a schedule the generator can build (:func:`intar_hw.build`; checked by its
        layout planner, which takes milliseconds): ``intar`` picks the best of its candidates
        that builds, ``sequential`` and ``dataflow`` refuse when theirs does not. ``False``
        searches the cost model's whole design space, also designs the generator cannot build
        yet (the paper-scale comparisons). Needs a :class:`~intar_hw.graph.Graph`.

    Returns
    -------
    Schedule
        Carrying ``graph`` (when a :class:`~intar_hw.graph.Graph`), so that
        :func:`intar_hw.build` needs nothing else.

    Raises
    ------
    TypeError
        If an argument has the wrong type.
    ValueError
        For an unknown policy, a budget that cannot hold the model (the message names the
        task or tensor that does not fit, and by how much), or (``buildable``) a policy whose
        schedules the generator cannot build (the message says what it lacks, naming the task
        and tensor).
    """
    if not isinstance(resources, Resources):
        raise TypeError(f"Resources must be a Resources, not {resources!r}")
    if not isinstance(policy, str):
        raise TypeError(f"Policy must be a string, not {policy!r}")
    if policy not in POLICIES:
        raise ValueError(f"Policy must be one of {', '.join(POLICIES)}, not {policy!r}")
    if not isinstance(buildable, bool):
        raise TypeError(f"Buildable must be a bool, not {buildable!r}")
    tg = _as_task_graph(graph)
    if buildable and isinstance(graph, TaskGraph):
        raise TypeError("Buildable schedules need the Graph, not its TaskGraph (or pass "
                        "buildable=False)")
    unbuildable = _generator_check(graph) if buildable else (lambda s: None)
    if policy == "intar":
        result = _intar(tg, resources, unbuildable)
    else:
        result = _sequential(tg, resources) if policy == "sequential" else _dataflow(tg, resources)
        reason = unbuildable(result)
        if reason is not None:
            raise UnbuildableError(f"The {policy} schedule of {tg.name!r} cannot be "
                                   f"generated: {reason}")
    return _carrying(result, graph)


class UnbuildableError(ValueError):
    """A policy's schedules are all beyond what the generator builds (``schedule(...,
    buildable=True)``); the message says what it lacks. ``buildable=False`` schedules the graph
    in the cost model alone."""


def _generator_check(graph):
    """A function of a schedule of ``graph``: ``None`` if the generator can build it, else
    the reason it cannot (the layout planner's message)."""
    from ..compose.planner import plan       # the generator sits above the scheduler

    def unbuildable(result):
        try:
            plan(result, graph)
        except ValueError as error:
            return str(error)
        return None
    return unbuildable


def _carrying(result, graph):
    """``result`` carrying ``graph`` when it is a :class:`~intar_hw.graph.Graph`."""
    return result if isinstance(graph, TaskGraph) else result.with_graph(graph)


def _as_task_graph(graph):
    if isinstance(graph, TaskGraph):
        return graph
    if hasattr(graph, "ops") and hasattr(graph, "tensors"):
        return task_graph(graph)
    raise TypeError(f"Graph must be a Graph, not {graph!r}")


def evaluate(graph, resources, stages, policy="custom"):
    """Cost a hand-written grouping on the budget's cores with the same model the policies use.

    ``stages`` is a list of stages, each a list of ``(task, cores, order)``: a task name, a tuple
    of core indices and ``"rows"``, ``"cols"`` or ``"kouter"``. A stage of one task is
    SEQUENTIAL (give it every core), several tasks are a TASK_PIPELINE when one reads another's
    result, else TASK_PARALLEL. Every task must appear once, in an order that respects the
    graph's dependencies. Raises :class:`ValueError` for an impossible grouping.
    """
    if not isinstance(resources, Resources):
        raise TypeError(f"Resources must be a Resources, not {resources!r}")
    tg = _as_task_graph(graph)
    configs, seen = [], set()
    for group in stages:
        members = []
        for name, cores, order in group:
            task = tg.task(name)
            if name in seen:
                raise ValueError(f"Task {name!r} appears twice")
            for p in tg.producers(task.index):
                if tg.tasks[p].name not in seen and p not in [m.task for m in members]:
                    raise ValueError(f"Task {name!r} comes before its producer "
                                     f"{tg.tasks[p].name!r}")
            if not cores or any(not 0 <= c < resources.ccs for c in cores):
                raise ValueError(f"Task {name!r} cores must be indices below {resources.ccs}, "
                                 f"not {cores!r}")
            members.append(Member(task.index, tuple(cores), Order(order)))
        seen.update(tg.tasks[m.task].name for m in members)
        members.sort(key=lambda m: m.task)
        names = {tg.tasks[m.task].name for m in members}
        internal = any(tg.tensors[x].source in names - {tg.tasks[m.task].name}
                       for m in members for x, _ in _inputs(tg.tasks[m.task]))
        pattern = (Pattern.SEQUENTIAL if len(members) == 1 else
                   Pattern.TASK_PIPELINE if internal else Pattern.TASK_PARALLEL)
        configs.append(_StageConfig(pattern, members))
    missing = [t.name for t in tg.tasks if t.name not in seen]
    if missing:
        raise ValueError(f"Tasks {', '.join(map(repr, missing))} are not scheduled")
    return _carrying(_realise(tg, resources, resources.pea, configs, policy), graph)


def pick(candidates, limit=None):
    """The winner among ``(cycles, offchip_bytes, item)`` candidates.

    Close candidates are those within :data:`CLOSE` (1%) of the fewest cycles; when ``limit`` (the
    best baseline's cycles) is at least the fewest cycles, the window also stops at ``limit``, so
    trading cycles for bytes never makes the result slower than a baseline it can match. Among
    the close candidates the fewest off-chip bytes win; ties go to fewer cycles, then to the
    earlier candidate.
    """
    fastest = min(c[0] for c in candidates)
    window = fastest * (1 + CLOSE)
    if limit is not None and fastest <= limit:
        window = min(window, limit)
    close = [c for c in candidates if c[0] <= window]
    return min(close, key=lambda c: (c[1], c[0]))


# --- memory plan --------------------------------------------------------------------------------

def _capacity(resources):
    return resources.total_scratchpad_bytes + resources.fifo_bytes


def _lifetimes(tg, stage_of):
    """``{tensor: (first_stage, last_stage)}`` of tensors that must be stored on or off chip,
    and the set of graph outputs (always off-chip)."""
    spans = {}
    for name, info in tg.tensors.items():
        if info.source is None or info.output:
            continue
        produced = stage_of[tg.task(info.source).index]
        stages = [stage_of[tg.task(r).index] for r, _ in info.readers]
        if not stages or all(s == produced for s in stages):
            continue
        spans[name] = (produced, max(stages))
    return spans


def spill_plan(tg, spans, limits, pinned=None, labels=None):
    """Fractions of stored tensors to spill so every stage's live set fits its limit.

    ``spans`` maps tensors to their (first, last) stage; ``limits[s]`` is the on-chip bytes stage
    ``s`` leaves for them; ``pinned`` maps tensors that must stay on chip to the reason, which
    becomes the error if they cannot; ``labels`` names the stages in messages. Greedy: at the
    most overfull stage, spill from the live tensor whose span covers the most overfull stages
    per byte of traffic it costs (one write plus one read per reader), as much as that stage
    needs. Raises :class:`InfeasibleError` if a stage cannot fit.
    """
    pinned = pinned or {}
    labels = labels or [f"Stage {s}" for s in range(len(limits))]
    resident = {name: tg.tensors[name].bytes for name in spans}
    for s, limit in enumerate(limits):
        if limit < 0:
            raise InfeasibleError(f"{labels[s]} needs {_kib(-limit)} more on-chip memory for "
                                  f"its buffers than the budget has")

    def over(s):
        return sum(resident[n] for n, (a, b) in spans.items() if a <= s <= b) - limits[s]

    while True:
        overs = [over(s) for s in range(len(limits))]
        worst = max(range(len(limits)), key=lambda s: overs[s]) if limits else 0
        if not limits or overs[worst] <= 0:
            break
        live = [n for n, (a, b) in spans.items()
                if a <= worst <= b and resident[n] > 0 and n not in pinned]
        if not live:
            held = sorted(n for n, (a, b) in spans.items() if a <= worst <= b and n in pinned)
            if held:
                raise InfeasibleError(pinned[held[0]])
            raise InfeasibleError(f"{labels[worst]} needs {_kib(overs[worst])} more on-chip "
                                  f"memory than the budget has")

        def score(n):
            a, b = spans[n]
            helped = sum(1 for s in range(a, b + 1) if overs[s] > 0)
            cost = 1 + len(tg.tensors[n].readers)
            return (helped / cost, resident[n])

        name = max(live, key=score)
        amount = min(resident[name], overs[worst])
        resident[name] -= amount
    return {n: 1.0 - resident[n] / tg.tensors[n].bytes for n in spans
            if resident[n] < tg.tensors[n].bytes}


# --- exact evaluation of a grouping -------------------------------------------------------------

class _StageConfig:
    """A stage to evaluate: its pattern, members, and alternative order tuples to pick from."""

    def __init__(self, pattern, members, alternatives=None):
        self.pattern = pattern
        self.members = tuple(members)
        self.alternatives = alternatives or [tuple(m.order for m in self.members)]


def _with_orders(members, orders):
    return tuple(Member(m.task, m.cores, o) for m, o in zip(members, orders))


def _realise(tg, resources, peas, configs, policy, cores=None):
    """Evaluate a grouping exactly and build its :class:`Schedule`."""
    stage_of = {}
    for s, config in enumerate(configs):
        for m in config.members:
            stage_of[m.task] = s
    capacity = _capacity(resources)
    mandatory, optional, pins = [], [], {}
    labels = [f"Stage of {', '.join(repr(tg.tasks[m.task].name) for m in c.members)}"
              for c in configs]
    for s, config in enumerate(configs):
        inside = {m.task: m for m in config.members}
        needs = mandatory_bytes(tg, resources, peas, config.members, inside)
        if needs is None:
            raise ValueError(f"Invalid loop orders in stage {s}")
        need, maybe, pinned = needs
        if need > capacity:
            names = ", ".join(repr(tg.tasks[m.task].name) for m in config.members)
            raise InfeasibleError(
                f"Stage of {names} needs {_kib(need)} of on-chip buffers but the budget has "
                f"{_kib(capacity)} ({_kib(need - capacity)} short)")
        mandatory.append(need)
        optional.append(maybe)
        for tensor, task, per_core in pinned:
            short = per_core - resources.scratchpad_bytes
            pins.setdefault(tensor, f"Task {task!r} needs {_kib(per_core)} of scratchpad for its "
                                    f"input row tile of {tensor!r} but each CC has "
                                    f"{_kib(resources.scratchpad_bytes)} ({_kib(short)} short)")
    spans = _lifetimes(tg, stage_of)
    extra = [0] * len(configs)
    while True:
        spill = spill_plan(tg, spans, [capacity - m - e for m, e in zip(mandatory, extra)],
                           pins, labels)
        evals, failed = [], None
        for s, config in enumerate(configs):
            resident = sum(int(round(tg.tensors[n].bytes * (1 - spill.get(n, 0.0))))
                           for n, (a, b) in spans.items() if a <= s <= b)
            room = capacity - resident
            best = None
            for orders in config.alternatives:
                ev = evaluate_stage(tg, resources, peas, _with_orders(config.members, orders),
                                    spill, room, first=(s == 0),
                                    readers_inside=_readers_inside(tg, stage_of, s))
                if ev is not None and (best is None or ev.key < best.key):
                    best = ev
            if best is None:
                failed = s
                break
            evals.append((config, best, resident, spans))
        if failed is None:
            break
        if extra[failed] >= optional[failed]:
            raise InfeasibleError(f"{labels[failed]} does not fit the on-chip memory left "
                                  f"({_kib(room)})")
        # Reserve the staging buffers of its spilled operands, and plan the spills again.
        extra[failed] = optional[failed]
    return _build(tg, resources, peas, evals, spill, policy, cores)


def _readers_inside(tg, stage_of, s):
    def inside(tensor):
        info = tg.tensors[tensor]
        if info.output or not info.readers:
            return False
        return all(stage_of[tg.task(r).index] == s for r, _ in info.readers)
    return inside


def _location(streamed, spilled, size):
    if streamed:
        return Location.FIFO
    return Location.OFFCHIP if spilled >= size else Location.SCRATCHPAD


def _build(tg, resources, peas, evals, spill, policy, cores):
    if cores is None:
        cores = tuple(Core(i, p) for i, p in enumerate(peas))
    stages = []
    start = 0
    for s, (config, ev, resident, spans) in enumerate(evals):
        placements = []
        for te in ev.tasks:
            task = tg.tasks[te.member.task]
            loops = tuple(
                Loop(core=c, orientation=o, batch=task.batch, i=i, j=j, k=k, cycles=cycles)
                for c, (o, Mc, Nc, cycles, (i, j, k)) in zip(te.member.cores, te.deal.cores))
            operands = tuple(
                Operand(tensor=i.tensor, role=i.role,
                        source=_location(i.streamed, i.spilled, i.bytes),
                        producer=i.producer, bytes=int(i.bytes), spilled_bytes=int(i.spilled),
                        passes=int(i.passes if i.spilled else 0))
                for i in te.inputs)
            results = []
            for tensor, dest, spilled, size, consumers in te.results:
                if tensor in task.epilogue:
                    sfu = task.sfu[:task.epilogue.index(tensor) + 1]
                else:
                    sfu = ()
                results.append(Result(tensor=tensor, dest=Location(dest), sfu=tuple(sfu),
                                      consumers=tuple(consumers), bytes=int(size),
                                      spilled_bytes=int(spilled)))
            placements.append(Placement(
                task=task.name, kind=task.kind, cores=tuple(te.member.cores),
                gemm=(task.batch, task.M, task.N, task.K), split=te.deal.split,
                order=te.member.order, block=int(te.block), loops=loops, operands=operands,
                results=tuple(results), macs=task.macs, hw_macs=task.hw_macs,
                start=int(te.start), end=int(te.end), busy=int(te.busy)))
        buffers = tuple(Buffer(kind=k, tensor=t, owner=o, producer=p, bytes=int(b),
                               depth=int(d), spilled_bytes=int(sp))
                        for k, t, o, p, b, d, sp in ev.buffers)
        names = tuple(sorted(n for n, (a, b) in spans.items()
                             if a <= s <= b and spill.get(n, 0.0) < 1.0))
        stages.append(Stage(
            index=s, pattern=config.pattern, placements=tuple(placements), buffers=buffers,
            start=start, cycles=int(ev.cycles), bound=ev.bound, compute=int(ev.compute),
            pipeline=int(ev.pipeline), offchip=int(ev.offchip), scratchpad=int(ev.scratchpad),
            fill=int(ev.fill), reconfig=int(ev.reconfig), offchip_bytes=int(ev.offchip_bytes),
            scratchpad_bytes=int(resident + ev.buffer_bytes), resident=names,
            onchip=int(ev.onchip)))
        start += ev.cycles
    return Schedule(model=tg.name, policy=policy, resources=resources, cores=tuple(cores),
                    stages=tuple(stages))


# --- sequential -----------------------------------------------------------------------------------

def _sequential_configs(tg, resources):
    everything = tuple(range(resources.ccs))
    return [_StageConfig(Pattern.SEQUENTIAL, [Member(t.index, everything, Order.ROWS)],
                         [(Order.ROWS,), (Order.COLS,)])
            for t in tg.tasks]


def _sequential(tg, resources):
    return _realise(tg, resources, resources.pea, _sequential_configs(tg, resources),
                    "sequential")


# --- dataflow -------------------------------------------------------------------------------------

def _shares(total, works):
    """Integer shares of ``total`` in proportion to ``works`` (largest remainder, each >= 1)."""
    weight = sum(works)
    exact = [total * w / weight for w in works]
    shares = [max(1, int(math.floor(e))) for e in exact]
    order = sorted(range(len(works)), key=lambda i: exact[i] - math.floor(exact[i]),
                   reverse=True)
    left = total - sum(shares)
    for i in itertools.cycle(order):
        if left <= 0:
            break
        shares[i] += 1
        left -= 1
    while sum(shares) > total:
        i = max(range(len(shares)), key=lambda j: shares[j])
        shares[i] -= 1
    return shares


def _best_shape(task, share, depths=None):
    """The fastest ``(d1, d2, d3)`` with ``d1 * d2 * d3 <= share`` for ``task`` alone; among equally
    fast shapes the one with the most rows per tile (the fewest passes over B).

    ``depths`` restricts ``d3`` to the budget's PE template depths (a share smaller than every
    template takes ``d3 = share``); ``None`` lets ``d3`` range freely.
    """
    if depths is None:
        candidates = range(1, min(share, task.K) + 1)
    else:
        candidates = [d for d in depths if d <= share] or [share]
    best = None
    for d3 in candidates:
        for d1 in range(1, share // d3 + 1):
            d2 = share // (d1 * d3)
            if d2 < 1:
                break
            pea = (d1, d2, d3)
            for o, rows in (("MN", d1), ("NM", d2)):
                cycles = core_cycles(pea, o, task.batch, task.M, task.N, task.K)[0]
                # Ties go to more rows per tile (fewer passes over the weights), then fewer MACs.
                key = (cycles, -min(rows, task.M), d1 * d2 * d3)
                if best is None or key < best[0]:
                    best = (key, pea)
    return best[1]


def dataflow_shapes(tg, resources, free_depth=False):
    """The dataflow baseline's PE array per task.

    Shares of the budget's MACs in proportion to each task's hardware work; within its share a
    task takes the fastest ``(d1, d2)`` on the budget's PE template depth ``d3`` (any of them for
    unequal cores). ``free_depth=True`` also lets ``d3`` vary (a sensitivity check, not the
    baseline).
    """
    shares = _shares(resources.macs_per_cycle, [t.hw_macs for t in tg.tasks])
    depths = None if free_depth else sorted({p[2] for p in resources.pea})
    return tuple(_best_shape(t, s, depths) for t, s in zip(tg.tasks, shares))


def _dataflow(tg, resources, free_depth=False):
    if resources.macs_per_cycle < len(tg.tasks):
        raise InfeasibleError(
            f"Dataflow needs a PE for each of the {len(tg.tasks)} tasks but the budget has "
            f"{resources.macs_per_cycle} MACs ({len(tg.tasks) - resources.macs_per_cycle} short)")
    peas = dataflow_shapes(tg, resources, free_depth)
    members = [Member(t.index, (t.index,), Order.ROWS) for t in tg.tasks]
    capacity = _capacity(resources)
    stage_of = {t.index: 0 for t in tg.tasks}
    inside = _readers_inside(tg, stage_of, 0)
    options = (Order.ROWS, Order.COLS, Order.KOUTER)

    def run(orders):
        ms = _with_orders(members[:len(orders)], orders)
        return evaluate_stage(tg, resources, peas, ms, {}, capacity, first=True,
                              readers_inside=inside)

    orders = []
    for t in tg.tasks:
        best = None
        for o in options:
            ev = run(tuple(orders) + (o,))
            if ev is not None:
                key = (ev.tasks[-1].end, ev.offchip_bytes, ev.cycles)
                if best is None or key < best[0]:
                    best = (key, o)
        if best is None:
            raise InfeasibleError(f"Dataflow cannot fit the buffers of task {t.name!r} in "
                                  f"{_kib(capacity)} of on-chip memory")
        orders.append(best[1])
    current = run(tuple(orders))
    for _ in range(2):
        improved = False
        for i in range(len(orders)):
            for o in options:
                if o is orders[i]:
                    continue
                trial = orders[:i] + [o] + orders[i + 1:]
                ev = run(tuple(trial))
                if ev is not None and ev.key < current.key:
                    orders, current, improved = trial, ev, True
        if not improved:
            break
    config = _StageConfig(Pattern.TASK_PIPELINE, _with_orders(members, orders))
    cores = tuple(Core(i, p) for i, p in enumerate(peas))
    return _realise(tg, resources, peas, [config], "dataflow", cores)


# --- intar ----------------------------------------------------------------------------------------

def _topological_orders(tg, limit):
    n = len(tg.tasks)
    deps = [set(tg.producers(i)) for i in range(n)]
    orders = []

    def extend(order, placed):
        if len(orders) >= limit:
            return
        if len(order) == n:
            orders.append(tuple(order))
            return
        for i in range(n):
            if i not in placed and deps[i] <= placed:
                order.append(i)
                placed.add(i)
                extend(order, placed)
                placed.remove(i)
                order.pop()

    extend([], set())
    natural = tuple(range(n))
    if natural in orders:
        orders.remove(natural)
    return [natural] + orders


def _assignments(resources, k):
    """Ways to give ``k`` tasks disjoint, non-empty core groups covering all cores."""
    ccs = resources.ccs
    if k > ccs:
        return []
    if resources.homogeneous or ccs > 6:
        result = []
        for cut in itertools.combinations(range(1, ccs), k - 1):
            bounds = (0,) + cut + (ccs,)
            result.append(tuple(tuple(range(bounds[i], bounds[i + 1])) for i in range(k)))
        return result
    seen, result = set(), []
    for owner in itertools.product(range(k), repeat=ccs):
        if len(set(owner)) != k:
            continue
        groups = tuple(tuple(c for c in range(ccs) if owner[c] == t) for t in range(k))
        key = tuple(tuple(sorted(resources.pea[c] for c in g)) for g in groups)
        if key in seen:
            continue
        seen.add(key)
        result.append(groups)
    return result


def _group_configs(tg, resources, group):
    """Every (pattern, members) configuration of a group of task indices."""
    names = {tg.tasks[i].name for i in group}
    internal = any(tg.tensors[x].source in names and tg.tensors[x].source != tg.tasks[i].name
                   for i in group for x, _ in _inputs(tg.tasks[i]))
    if len(group) == 1:
        everything = tuple(range(resources.ccs))
        return [(Pattern.SEQUENTIAL, (Member(group[0], everything, o),))
                for o in (Order.ROWS, Order.COLS)]
    pattern = Pattern.TASK_PIPELINE if internal else Pattern.TASK_PARALLEL
    configs = []
    for groups in _assignments(resources, len(group)):
        choices = []
        for i in group:
            task = tg.tasks[i]
            streamed = tg.tensors[task.a].source in names
            choices.append((Order.ROWS, Order.COLS, Order.KOUTER) if streamed
                           else (Order.ROWS, Order.COLS))
        for orders in itertools.product(*choices):
            configs.append((pattern, tuple(Member(i, g, o)
                                           for i, g, o in zip(group, groups, orders))))
    return configs


def _inputs(task):
    return [(task.a, task.a_role)] + ([(task.b, task.b_role)] if task.b else []) + \
        [(s, "side") for s in task.side]


def _intar(tg, resources, unbuildable):
    n = len(tg.tasks)
    capacity = _capacity(resources)
    peas = resources.pea
    sequential = _sequential(tg, resources)
    spill_seq = _spill_of(sequential)
    candidates = [(sequential.cycles, sequential.offchip_bytes, sequential)]
    cache = {}
    orders = _topological_orders(tg, MAX_ORDERS if n <= 10 else 1)
    max_group = min(resources.ccs, n)
    fronts = []
    for order in orders:
        fronts.extend(_dp(tg, resources, peas, order, max_group, spill_seq, capacity, cache))
    # Exact evaluation of the most promising groupings.
    fronts.sort(key=lambda f: (f[0], f[1]))
    tried = set()
    for cycles, nbytes, configs in fronts[:8]:
        key = tuple((c.pattern, c.members) for c in configs)
        if key in tried:
            continue
        tried.add(key)
        try:
            result = _realise(tg, resources, peas, configs, "intar")
        except InfeasibleError:
            continue
        if _joins_in_place(result):
            candidates.append((result.cycles, result.offchip_bytes, result))
    # The sequential end of the space under the intar name (the same stages: the policy is only
    # the schedule's label).
    candidates[0] = (sequential.cycles, sequential.offchip_bytes,
                     dataclasses.replace(sequential, policy="intar"))
    limit = sequential.cycles
    try:
        # One pipeline of every task is the dataflow end of InTAR's space (the paper's gating
        # design is exactly that), so it competes too: intar is never slower than a baseline.
        dataflow = _dataflow(tg, resources)
    except InfeasibleError:
        dataflow = None
    else:
        limit = min(limit, dataflow.cycles)
        candidates.append((dataflow.cycles, dataflow.offchip_bytes,
                           dataclasses.replace(dataflow, policy="intar")))
    reasons = [unbuildable(c[2]) for c in candidates]
    buildable = [c for c, reason in zip(candidates, reasons) if reason is None]
    if not buildable:
        raise UnbuildableError(f"No intar schedule of {tg.name!r} can be generated: "
                               f"{reasons[0]}")
    return pick(buildable, limit)[2]


def _joins_in_place(schedule):
    """Whether every join of ``schedule`` reads a stored side tensor in the tiles its producer
    computed it in: both on one core each, or dealt alike (same split, block and core count,
    the same orientation per position), each joining core reading at most one other core."""
    placements = {p.task: p for st in schedule.stages for p in st.placements}
    for st in schedule.stages:
        for p in st.placements:
            for o in p.operands:
                q = placements.get(o.producer) if o.role == "side" else None
                if q is None:
                    continue
                mine = [loop for loop in p.loops if loop.cycles > 0]
                theirs = [loop for loop in q.loops if loop.cycles > 0]
                if len(mine) == len(theirs) == 1:
                    continue
                if (len(mine) != len(theirs) or (p.split, p.block) != (q.split, q.block)
                        or [a.orientation for a in mine] != [b.orientation for b in theirs]):
                    return False
                if any(a.core != b.core for a, b in zip(mine, theirs)) and len(
                        {b.core for b in theirs} - {a.core for a in mine}) > 1:
                    return False
    return True


def _spill_of(schedule):
    spill = {}
    for stage in schedule.stages:
        for p in stage.placements:
            for r in p.results:
                if r.spilled_bytes and r.dest is not Location.FIFO:
                    spill[r.tensor] = r.spilled_bytes / r.bytes
    return spill


def _dp(tg, resources, peas, order, max_group, spill, capacity, cache):
    """DP over ``order``; returns ``(cycles, bytes, configs)`` for the ends of the final front."""
    n = len(order)
    position = {t: k for k, t in enumerate(order)}
    # Approximate live bytes between positions, from the sequential spill plan.
    spans = {}
    for name, info in tg.tensors.items():
        if info.source is None or info.output:
            continue
        a = position[tg.task(info.source).index]
        readers = [position[tg.task(r).index] for r, _ in info.readers]
        if readers:
            spans[name] = (a, max(readers))
    fronts = [[] for _ in range(n + 1)]
    fronts[0] = [(0, 0, ())]
    for j in range(1, n + 1):
        entries = []
        for i in range(max(0, j - max_group), j):
            if not fronts[i]:
                continue
            group = tuple(sorted(order[i:j]))
            best = _best_group(tg, resources, peas, group, i, j, spans, spill, capacity, cache)
            if best is None:
                continue
            for cycles, nbytes, configs in fronts[i]:
                for ev, config in best:
                    entries.append((cycles + ev.cycles, nbytes + ev.offchip_bytes,
                                    configs + (config,)))
        fronts[j] = _prune(entries)
    return fronts[n]


def _prune(entries):
    entries.sort(key=lambda e: (e[0], e[1]))
    front, least = [], None
    for e in entries:
        if least is None or e[1] < least:
            front.append(e)
            least = e[1]
    if len(front) > _FRONT:
        front = front[:_FRONT - 1] + [front[-1]]
    return front


def _best_group(tg, resources, peas, group, i, j, spans, spill, capacity, cache):
    """The fastest and the most frugal configuration of a group, as ``[(StageEval, config)]``."""
    internal = {name for name, (a, b) in spans.items() if i <= a and b < j}
    resident = 0
    for p in range(i, j):
        live = sum(int(round(tg.tensors[name].bytes * (1 - spill.get(name, 0.0))))
                   for name, (a, b) in spans.items()
                   if a <= p <= b and name not in internal)
        resident = max(resident, live)
    room = capacity - resident
    key = (group, room, i == 0)
    if key in cache:
        return cache[key]
    names = {tg.tasks[t].name for t in group}

    def inside(tensor):
        info = tg.tensors[tensor]
        if info.output or not info.readers:
            return False
        return all(r in names for r, _ in info.readers)

    found = []
    for pattern, members in _group_configs(tg, resources, group):
        try:
            ev = evaluate_stage(tg, resources, peas, members, spill, room, first=(i == 0),
                                readers_inside=inside)
        except InfeasibleError:
            ev = None
        if ev is None:
            continue
        alternatives = None
        if pattern is Pattern.SEQUENTIAL:
            alternatives = [(Order.ROWS,), (Order.COLS,)]
        found.append((ev, _StageConfig(pattern, members, alternatives)))
    if not found:
        cache[key] = None
        return None
    fastest = min(found, key=lambda f: f[0].key)
    frugal = min(found, key=lambda f: (f[0].offchip_bytes, f[0].cycles))
    result = [fastest] if frugal is fastest else [fastest, frugal]
    cache[key] = result
    return result
