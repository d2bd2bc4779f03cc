"""Cycle facts the hardware and the cost model share: the latencies of the generated blocks and
the cycle formulas of a core, in one place that imports neither Amaranth nor the scheduler.

The hardware blocks (:mod:`intar_hw.hw`, :mod:`intar_hw.compose`) state their latencies from
here and the cost model (:mod:`intar_hw.schedule.cost`, whose docs describe the execution model)
adds them up; a block that changes its pipeline changes the number here, and both sides move
together.
"""


from .integers import cdiv


__all__ = ["ARRAY_LATENCY", "BIAS_LATENCY", "LOADER_LATENCY", "STORE_LATENCY", "RECONFIG_CYCLES",
           "RUN_OVERHEAD", "FIFO_DEPTH", "KOUTER_MAX_ROWS", "REORDER_LATENCY", "sfu_latency",
           "softmax_timing", "softmax_busy", "core_cycles", "drain_after", "operand_word_runs",
           "bias_word_runs"]


#: Pipeline latency of a PE array: the operand register after the fetch
#: (:class:`~intar_hw.hw.pipe.RegisterSlice`), registered operands, products, accumulators.
ARRAY_LATENCY = 4
#: Extra result-path cycle of a task with a bias: ``acc + bias`` is registered before rounding.
BIAS_LATENCY = 1
#: Result-path cycles of the elementwise SFUs a result link applies after requantisation (ReLU is
#: fused into the requantiser): a table activation, 1 cycle on int8 (its ROM read) and 3 on int16
#: (plus interpolation); a join, 1 for an add, 3 for a mul (operands, product, then rounding)
#: and 4 for a mul whose product is added back to its first factor (``"mul_add"``).
_ACTIVATION_LATENCY = {8: 1, 16: 3}
_JOIN_LATENCY = {"add": 1, "mul": 3, "mul_add": 4}


def sfu_latency(activation, join, bits):
    """Cycles an ``activation`` (``"gelu"``/``"silu"`` or ``None``) of ``bits``-bit values and a
    ``join`` (``"add"``/``"mul"``/``"mul_add"`` or ``None``) add to a task's result path; paid after
    the task's end, like :data:`BIAS_LATENCY` (on an edge to a reader in the stage, or in the
    stage's fill)."""
    cycles = 0
    if activation is not None:
        cycles += _ACTIVATION_LATENCY.get(bits, 3)
    if join is not None:
        cycles += _JOIN_LATENCY[join]
    return cycles


def softmax_timing(N, lanes, bits):
    """``(beats, row_period, latency)`` of the row-wise softmax unit
    (:class:`~intar_hw.hw.sfu.softmax.Softmax`) on rows of ``N`` elements taken ``lanes`` at a
    time: beats per row, cycles per row in steady state (the reciprocal's divider takes 17
    cycles for int8 and 25 for int16) and cycles from a row's last beat in to its
    first beat out."""
    beats = cdiv(N, lanes)
    quotient_bits = 16 if bits == 8 else 24
    exp_latency = 2 if bits == 8 else 3
    return beats, max(beats, quotient_bits + 1), beats + 2 * exp_latency + quotient_bits + 5


#: Cycles from a P tile's last row piece entering a row reorder buffer to its first row piece
#: leaving (:class:`~intar_hw.hw.core.row_reorder.RowReorder`): bank handover, registered read.
REORDER_LATENCY = 2


def softmax_busy(pea, batch, M, N, K, bits, busy):
    """Busy cycles of a core computing ``batch`` GEMMs ``M x N x K`` in orientation ``"MN"``
    (taking ``busy`` without it) whose rows pass a softmax of ``bits``-bit values on their way to
    memory.

    Either the last rows arrive late (``busy`` plus the unit's latency) or the unit's row period
    sets the pace from the first row on; the first row's last tile ends
    ``kb + (q_tiles - 1) * max(kb, rows)`` beats in and the row leaves the array a cycle later.
    Rows drained in several Q tiles from P tiles of several rows pass a row reorder buffer first
    (:data:`REORDER_LATENCY`): a P tile's rows leave it once the whole tile is in."""
    d1, d2, d3 = pea
    kb = cdiv(K, d3)
    q_tiles = cdiv(N, d2)
    rows = min(d1, M)
    first = kb + 1 + (q_tiles - 1) * max(kb, rows)
    beats, period, latency = softmax_timing(N, min(N, d2), bits)
    last = busy
    if q_tiles > 1 and rows > 1:
        first += rows - 1 + REORDER_LATENCY + q_tiles - 1
        last_rows = M - (cdiv(M, d1) - 1) * d1
        last = busy + REORDER_LATENCY + q_tiles - 1 + (last_rows - 1) * period
    return max(last, first + (batch * M - 1) * period) + latency + beats - 1


#: Cycles the loader adds between a bus word arriving and a core reading the memory word it
#: completes (:class:`~intar_hw.compose.loader.Loader`): the bus word is registered, the memory
#: word written the cycle after, and the loader's level register follows; paid once by a stage
#: that reads off-chip.
LOADER_LATENCY = 2
#: Cycles a stage writing results off-chip adds beyond their bus time: the storer
#: (:class:`~intar_hw.compose.storer.Storer`) starts after the cores are done, reads the first
#: result word (memory latency 1) and is seen idle the cycle after its last write.
STORE_LATENCY = 3
#: Rows a ``KOUTER`` (rank-d update) task may have: the generator keeps the partial sums in the
#: PE array, so one row; more need an accumulator buffer it does not build yet.
KOUTER_MAX_ROWS = 1
#: Cycles to switch stages: the mode controller steps its state and restarts address generators.
RECONFIG_CYCLES = 2
#: Cycles a run spends beyond its stages: its first stage starts the cycle after ``start`` (the
#: mode controller launches every stage from a register, so its FSM's decode stays off the cores)
#: and the run's ``done`` comes a cycle after its last core's (the controller registers the cores'
#: ``done``, so no core's logic reaches its FSM); the cost model charges both to the first stage.
RUN_OVERHEAD = 2
#: Depth of the FIFO on every stream link (>= 3 keeps a stream at one beat per cycle).
FIFO_DEPTH = 4


# --- the loader's words -------------------------------------------------------------------------

def _append(runs, words, elements, limit):
    """Add a run of ``words`` words of ``elements`` elements to ``runs`` (merged with the last
    run when equal); ``False`` once ``runs`` would exceed ``limit``."""
    if words <= 0:
        return True
    if runs and runs[-1][1] == elements:
        runs[-1][0] += words
        return True
    if limit is not None and len(runs) == limit:
        return False
    runs.append([words, elements])
    return True


def operand_word_runs(batch, rows, block, K, d3, limit=None):
    """The loader's words of an operand streamed from off-chip, in order, as ``[(words,
    elements)]`` runs of equally long words: per batch, per block of ``block`` rows (the last
    block may be shorter), ``ceil(K / d3)`` words, each a beat of its block's rows: all ``d3``
    elements per row (the reduction's short last beat padded), or for a block of one row only
    the valid elements. With ``limit``, ``None`` when that takes more runs (the caller then
    treats the words as one run)."""
    kb = cdiv(K, d3)
    full_k, short_k = divmod(K, d3)
    full_blocks, last = divmod(rows, block)

    def add_block(runs, n, times):
        if n > 1:
            return _append(runs, times * kb, n * d3, limit)
        if not short_k:
            return _append(runs, times * full_k, d3, limit)
        for _ in range(times):
            if not (_append(runs, full_k, d3, limit) and _append(runs, 1, short_k, limit)):
                return False
        return True

    runs = []
    for _ in range(batch):
        if not (add_block(runs, block, full_blocks) and add_block(runs, last, 1 if last else 0)):
            return None
        if limit is not None and len(runs) == 1 and batch > 1:
            runs[0][0] *= batch         # every batch the same single run
            break
    return [(words, elements) for words, elements in runs]


def bias_word_runs(orientation, N, d2):
    """The loader's bias words of ``N`` columns as ``[(words, accumulators)]`` runs: in
    orientation ``"MN"`` a word of ``d2`` columns (the last may be narrower), in ``"NM"`` one
    column a word."""
    if orientation != "MN":
        return [(N, 1)]
    full, short = divmod(N, d2)
    return [(words, n) for words, n in ((full, d2), (1 if short else 0, short)) if words]


# --- a core's cycles ------------------------------------------------------------------------------

def _tiles(pea, orientation, M, N):
    d1, d2, _ = pea
    dm, dn = (d1, d2) if orientation == "MN" else (d2, d1)
    tm, tn = cdiv(M, dm), cdiv(N, dn)
    on_rows = M if orientation == "MN" else N
    full_rows = d1
    rem_rows = on_rows - ((tm if orientation == "MN" else tn) - 1) * d1
    n_rem = tn if orientation == "MN" else tm
    return dm, dn, tm, tn, full_rows, rem_rows, n_rem


#: Before the first tile: no drain has ended.
_NEVER = -(1 << 62)


def _tile(state, kb, rows):
    """The array and the drain after one more tile of ``kb`` beats and ``rows`` rows.

    ``state`` is ``(finish, end, end_before)``: the cycle the last tile's sum reached the
    array's result registers, and the cycles the last two drains ended (``None``: no tile
    yet). A tile's sum needs one of the two result registers: the one the drain before last
    frees, usable the cycle after; its drain starts once the previous drain has ended.
    """
    if state is None:
        finish, end, before = kb, _NEVER, _NEVER
    else:
        finish, end, before = state
        finish = max(finish + kb, before + 1)
    return finish, max(finish, end) + rows, end


def _repeat(state, step, times):
    """``step`` applied ``times`` times to ``state``. Once one application shifts every time
    in the state by the same amount, each further one does (the recurrence only adds constants
    and takes maxima), so the rest is that shift times the count."""
    for done in range(times):
        after = step(state)
        if state is not None:
            shifts = {new - old for new, old in zip(after, state)}
            if len(shifts) == 1:
                (shift,) = shifts
                left = times - done - 1
                return tuple(t + left * shift for t in after)
        state = after
    return state


def drain_after(kb, rows, runs):
    """Cycles from a tile of ``rows`` rows reaching the array's result registers to the end of
    the last drain, when the tiles after it (``runs``: ``(rows, count)`` of them in order, ``kb``
    beats each) can start at once: the tail a core computes after its last operand arrives."""
    state = (0, rows, _NEVER)
    for tile_rows, count in runs:
        state = _repeat(state, lambda s, r=tile_rows: _tile(s, kb, r), count)
    return state[1]


def core_cycles(pea, orientation, batch, M, N, K, chunk=None):
    """Busy cycles of one core computing ``batch`` GEMMs ``M x N x K`` (see
    :mod:`intar_hw.schedule.cost`): from the first beat to the end of the last tile's drain.

    Tiles are visited chunk by chunk (with ``chunk``, the reduction runs outermost in chunks of
    ``chunk``: ``KOUTER``), GEMM by GEMM, P tile by P tile, then Q tile; a tile takes ``kb``
    beats in the array and its rows drain one per cycle. The array holds two finished tiles
    (:class:`~intar_hw.hw.mac_array.MACArray`'s result registers), so it runs up to a tile
    ahead of the drain (:func:`_tile`). Returns ``(cycles, (i, j, k))`` with the loop bounds:
    tiles along M and N, beats per tile.
    """
    if M <= 0 or N <= 0:
        return 0, (0, 0, 0)
    d3 = pea[2]
    dm, dn, tm, tn, r_full, r_rem, n_rem = _tiles(pea, orientation, M, N)
    p_tiles, q_tiles = (tm, tn) if orientation == "MN" else (tn, tm)
    if chunk is None or chunk >= K:
        chunks = [(K, 1)]
    else:
        count = cdiv(K, chunk)
        last = K - (count - 1) * chunk
        chunks = [(chunk, count - 1), (last, 1)] if last != chunk else [(chunk, count)]
    state = None
    for size, count in chunks:
        kb = cdiv(size, d3)

        def run(state, rows, kb=kb):
            # A P tile: its Q tiles, all of the same rows.
            return _repeat(state, lambda s: _tile(s, kb, rows), q_tiles)

        def gemm(state):
            state = _repeat(state, lambda s: run(s, r_full), p_tiles - 1)
            return run(state, r_rem)

        state = _repeat(state, gemm, count * batch)
    return state[1], (tm, tn, cdiv(min(K, chunk or K), d3))
