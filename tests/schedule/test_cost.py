import math

import pytest

import intar_hw as ih
from intar_hw.schedule import Resources, Pattern, Location, evaluate, schedule
from intar_hw.schedule.cost import (ARRAY_LATENCY, BIAS_LATENCY, LOADER_LATENCY, STORE_LATENCY,
                                    RECONFIG_CYCLES, RUN_OVERHEAD, FIFO_DEPTH, core_cycles,
                                    deal, InfeasibleError)


# --- compute ---------------------------------------------------------------------------------

def tiles_by_recurrence(kb, rows):
    """Reference: tile t accumulates kb beats, then drains rows[t] rows while t + 1 accumulates."""
    load = kb
    for r in rows[:-1]:
        load = max(load + kb, load + r)
    return load + rows[-1]


@pytest.mark.parametrize("pea, orientation, gemm, expected, loops", [
    # 2 row tiles of 4 rows, 16 beats each: 16 + 16 + 4.
    ((4, 4, 1), "MN", (1, 8, 4, 16), 36, (2, 1, 16)),
    # 9 taps in one beat but 16 rows to drain per tile: drain-bound.
    ((16, 1, 9), "MN", (1, 32, 1, 9), 33, (2, 1, 1)),
    # The same convolution with pixels on d2: one row per tile drains in a cycle.
    ((1, 16, 9), "NM", (1, 32, 1, 9), 3, (2, 1, 1)),
    # A remainder tile of 2 rows comes last.
    ((4, 4, 1), "MN", (1, 6, 4, 8), 18, (2, 1, 8)),
    # Heads multiply the tiles.
    ((4, 4, 1), "MN", (3, 4, 4, 8), 8 * 3 + 4, (1, 1, 8)),
])
def test_core_cycles(pea, orientation, gemm, expected, loops):
    assert core_cycles(pea, orientation, *gemm) == (expected, loops)


def test_core_cycles_match_the_tile_recurrence():
    for pea, M, N, K in [((4, 4, 1), 13, 9, 5), ((2, 8, 4), 7, 30, 3), ((8, 2, 2), 9, 9, 40)]:
        d1, d2, d3 = pea
        tm, tn = math.ceil(M / d1), math.ceil(N / d2)
        rows = [min(d1, M - i * d1) for i in range(tm) for _ in range(tn)]
        expected = tiles_by_recurrence(math.ceil(K / d3), rows)
        assert core_cycles(pea, "MN", 1, M, N, K)[0] == expected


def test_reduction_chunks_cost_the_same_when_beats_dominate():
    # Rank-16 updates of 32 accumulators on a 1x16 array: 4 chunks of 16 beats per tile.
    assert core_cycles((1, 16, 1), "MN", 1, 1, 32, 64, 16) == (129, (1, 2, 16))
    assert core_cycles((1, 16, 1), "MN", 1, 1, 32, 64)[0] == 129


def test_deal_even():
    d = deal(((1, 16, 1),) * 2, 1, 1, 1024, 256)
    assert d.split == "N"
    assert d.cycles == 32 * 256 + 1
    assert [c[2] for c in d.cores] == [512, 512]
    assert (d.rows_per_pass, d.cols_per_pass) == (1, 32)


def test_deal_gives_the_partial_tile_to_the_busiest_core():
    # 10 rows in tiles of 4 over two cores: 4 + 2 rows on one, 4 on the other (not 4 + 4 and 2).
    d = deal(((4, 4, 1),) * 2, 1, 10, 4, 2)
    assert d.split == "M"
    assert [c[1] for c in d.cores] == [6, 4]
    assert d.cycles == 8


def test_deal_unequal_cores_in_proportion_to_rate():
    # The VAE's first convolution on a 64-tap and a 16-tap core: 4 to 1.
    d = deal(((1, 1, 64), (1, 1, 16)), 1, 441, 2, 128)
    assert [c[1] for c in d.cores] == [353, 88]
    assert d.cycles <= math.ceil(441 * 2 * 128 / 80) + 2


# --- stages ----------------------------------------------------------------------------------

def mlp(features=(256, 1024, 2048, 256), fmt="int16"):
    g = ih.Graph("mlp")
    h = g.input("x", (1, features[0]), fmt)
    for n, width in enumerate(features[1:], 1):
        h = g.relu(g.linear(h, width, shift=8, weight_format=fmt, name=f"fc{n}"),
                   name=f"relu{n}")
    g.output(h)
    return g


PAPER_MLP = Resources(ccs=2, pea=(1, 16), scratchpad_kib=64, offchip_bytes_per_cycle=64,
                      offchip_latency=100)


def test_constants():
    from intar_hw.hw.mac_array import MACArray
    from intar_hw.hw.pipe import RegisterSlice
    assert ARRAY_LATENCY == RegisterSlice.latency + MACArray.latency == 4
    assert RECONFIG_CYCLES == 2
    assert FIFO_DEPTH >= 3


#: Cycles from a biased producer's busy time covering a result to a reader in the same stage.
EDGE = ARRAY_LATENCY + BIAS_LATENCY + 1


def test_edge_latency():
    from intar_hw.schedule.cost import edge_latency
    from intar_hw.schedule.tasks import task_graph
    tasks = {t.name: t for t in task_graph(ih.model_graph("gating_net", "tiny")).tasks}
    # No bias; up_proj's SiLU (1 cycle); the gating mul on gate_proj's result link (3 cycles:
    # operands, product, rounding).
    assert edge_latency(tasks["up_proj"]) == ARRAY_LATENCY + 1 + 1
    assert edge_latency(tasks["gate_proj"]) == ARRAY_LATENCY + 3 + 1


def test_sequential_stage_is_explained():
    s = schedule(mlp(), PAPER_MLP, "sequential")
    first = s.stages[0]
    # fc1: 1024 outputs x 256 inputs on 32 MACs; 256 KiB of int16 weights + int32 bias + x.
    assert first.compute == 32 * 256 + 1
    assert first.offchip_bytes == 256 * 1024 * 2 + 1024 * 4 + 256 * 2
    # The bus time, then the last tile's one row drains after the last weight word.
    assert first.offchip == math.ceil(first.offchip_bytes / 64) + 1
    # The array's latency, the bias stage of the result path, the off-chip read latency and the
    # loader's level register (nothing is written off-chip: no store latency).
    assert first.fill == ARRAY_LATENCY + BIAS_LATENCY + 100 + LOADER_LATENCY
    assert first.reconfig == RUN_OVERHEAD == 2
    # The loader writes one memory word per cycle: x (256 one-element words, broadcast to both
    # cores), then per core 32 tiles x 256 beats of 16-lane weight words and 32 bias words; the
    # last tile drains one row after the last word. That, not the bus, bounds the stage.
    assert first.pipeline == 256 + 2 * (32 * 256 + 32) + 1
    assert first.bound == "offchip"
    assert first.cycles == first.pipeline + first.fill + RUN_OVERHEAD
    assert [st.reconfig for st in s.stages] == [RUN_OVERHEAD, RECONFIG_CYCLES, RECONFIG_CYCLES]
    assert s.placement("fc1").operands[0].source is Location.OFFCHIP
    assert s.placement("fc2").operands[0].source is Location.SCRATCHPAD
    assert s.placement("fc3").results[0].dest is Location.OFFCHIP


def test_rank_d_updates_stream_a_gemv_into_the_next():
    # The paper's MLP schedule: fc1 on both cores, then fc2 streamed into fc3 through ReLU.
    s = evaluate(mlp(), PAPER_MLP, [[("fc1", (0, 1), "rows")],
                                    [("fc2", (0,), "rows"), ("fc3", (1,), "kouter")]])
    stage = s.stages[1]
    assert stage.pattern is Pattern.TASK_PIPELINE
    fc2, fc3 = stage.placements
    assert fc2.busy == 2048 // 16 * 1024 + 1
    # fc3 starts once fc2 has emitted its first 16 columns (one chunk of its reduction) and they
    # have passed fc2's array, bias stage and the level register (EDGE).
    assert fc3.start == math.ceil(fc2.end * 16 / 2048) + EDGE
    # Its weights follow fc2's in the loader's one stream (a word of 16 int16 lanes a cycle),
    # so it works only once they come: it ends its busy cycles after fc2's 131,072 weight words.
    assert fc3.end == pytest.approx(2048 * 1024 * 2 // 32 + fc3.busy, rel=1e-3)
    acc = next(b for b in stage.buffers if b.kind == "accumulator")
    assert acc.tensor == "relu2" and acc.depth == 256
    assert fc3.operands[0].source is Location.FIFO
    assert fc2.results[0].dest is Location.FIFO
    # h2 never touches the scratchpad.
    assert "relu2" not in stage.resident


def convs():
    g = ih.Graph("convs")
    x = g.input("x", (1, 1, 16, 16), "int8")
    a = g.conv2d(x, 1, 3, padding=1, name="a")
    g.output(g.conv2d(a, 1, 3, padding=1, name="b"))
    return g


def test_line_buffer_pipeline():
    r = Resources(ccs=2, pea=(1, 4, 9), scratchpad_kib=4, offchip_bytes_per_cycle=64,
                  offchip_latency=10)
    s = evaluate(convs(), r, [[("a", (0,), "rows"), ("b", (1,), "rows")]])
    stage = s.stages[0]
    a, b = stage.placements
    assert a.busy == b.busy == 256 // 4 + 1
    # b's first tile (output pixels (0, 0) to (0, 3)) reads a up to pixel (1, 4): 6 of the 64
    # tiles of 4 pixels a emits.
    assert b.start == math.ceil(a.end * 6 / 64) + EDGE
    # ... and its tiles from 57 on (output pixels (14, 4) on) read a's 63rd tile (pixels
    # (15, 8) to (15, 11)), which a, having waited for its input, emits one cycle before its end:
    # 7 of b's 64 tiles remain then.
    assert b.end == a.end - 1 + EDGE + math.ceil(b.busy * 7 / 64)
    assert b.end > b.start + b.busy
    line = next(buf for buf in stage.buffers if buf.kind == "line")
    assert (line.tensor, line.depth, line.bytes) == ("a", 4, 4 * 16)
    # The storer writes b's 256 output bytes after the cores are done, one result word a cycle:
    # b runs in orientation "NM", its one channel drained as 64 words of d2 = 4 pixels (the bus
    # alone would take 4 cycles).
    assert b.loops[0].orientation == "NM"
    assert stage.pipeline == b.end + max(math.ceil(256 / 64), 256 // 4)
    assert stage.bound == "offchip"
    # Reads the input and writes the output off-chip: the loader's and the storer's latencies;
    # the first stage's launch.
    assert stage.cycles == (stage.pipeline + ARRAY_LATENCY + BIAS_LATENCY + 10 + LOADER_LATENCY
                            + STORE_LATENCY + RUN_OVERHEAD)


def attention():
    g = ih.Graph("attention")
    x = g.input("x", (16, 32), "int8")
    q = g.linear(x, 32, name="q")
    k = g.linear(x, 32, name="k")
    g.output(g.matmul(q, k, transpose_b=True, name="s"))
    return g


def test_blocking_edge_waits_for_the_whole_producer():
    r = Resources(ccs=3, pea=(4, 4), scratchpad_kib=16)
    # Scores in row order need all of K (its B^T) first.
    s = evaluate(attention(), r, [[("q", (0,), "rows")], [("k", (0,), "rows"),
                                                           ("s", (1, 2), "rows")]])
    k, scores = s.stages[1].placements
    assert scores.start == k.end + EDGE
    whole = next(b for b in s.stages[1].buffers if b.kind == "whole")
    assert whole.tensor == "k" and whole.bytes == 16 * 32
    # In column order, scores consume K's rows as they come: B^T streams.
    t = evaluate(attention(), r, [[("q", (0,), "rows")], [("k", (0,), "rows"),
                                                           ("s", (1, 2), "cols")]])
    k, scores = t.stages[1].placements
    assert scores.start < k.end
    assert any(b.kind == "col_block" for b in t.stages[1].buffers)
    assert t.stages[1].pipeline < s.stages[1].pipeline


def test_scratchpad_port_bound():
    # Q and K both come from the scratchpad: two reads per beat through one port.
    r = Resources(ccs=1, pea=(4, 4), scratchpad_kib=16, scratchpad_ports=1,
                  offchip_bytes_per_cycle=64)
    s = schedule(attention(), r, "sequential")
    scores = s.stages[2]
    assert scores.bound == "scratchpad"
    # Two reads per beat (4 x 4 tiles of 32 beats) through one port.
    assert scores.scratchpad == 2 * (16 // 4) * (16 // 4) * 32
    r2 = r.replace(scratchpad_ports=2)
    # With two ports the compute wins, and then the storer's 64 result words (16 rows of 4
    # tiles) leave one a cycle.
    scores = schedule(attention(), r2, "sequential").stages[2]
    assert scores.pipeline == scores.compute + 16 * 4 > scores.scratchpad
    assert scores.bound == "offchip"


def test_offchip_bound_and_latency():
    slow = PAPER_MLP.replace(offchip_bytes_per_cycle=0.5, offchip_latency=7)
    s = schedule(mlp(), slow, "sequential")
    for stage in s.stages:
        assert stage.bound == "offchip"
        assert stage.offchip == math.ceil(stage.offchip_bytes / 0.5) + 1    # + the drain
        writes = any(r.spilled_bytes for p in stage.placements for r in p.results)
        assert stage.fill == (ARRAY_LATENCY + BIAS_LATENCY + 7 + LOADER_LATENCY
                              + (STORE_LATENCY if writes else 0))
    assert [st.fill for st in s.stages][-1] == (ARRAY_LATENCY + BIAS_LATENCY + 7 + LOADER_LATENCY
                                                + STORE_LATENCY)


def test_spill_counts_what_does_not_fit():
    # conv2's upsampled output (896^2 int16 = 1.53 MiB) cannot stay in 768 KiB.
    g = ih.model_graph("cnn4l", "paper", fmt="int16")
    s = schedule(g, Resources.preset("paper_cnn4l"), "sequential", buildable=False)
    up2 = s.placement("conv2").results[0]
    assert up2.tensor == "up2"
    assert 0 < up2.spilled_bytes < up2.bytes
    read = s.placement("conv3").operands[0]
    assert read.spilled_bytes == up2.spilled_bytes and read.passes == 1
    assert all(st.scratchpad_bytes <= 768 * 1024 for st in s.stages)


def test_reuse_buffers_grow_into_free_memory():
    g = ih.Graph("wide")
    x = g.input("x", (64, 256), "int8")
    g.output(g.linear(x, 256, name="fc"))
    once = 64 * 256 + (256 * 256 + 256 * 4) + 64 * 256     # x, weights and bias, y
    roomy = schedule(g, Resources(ccs=1, pea=(4, 4), scratchpad_kib=64), "sequential")
    assert roomy.offchip_bytes == once
    # 8 KiB holds neither x nor the weights: one of them is read more than once, as little as
    # the blocks that fit allow.
    tight = schedule(g, Resources(ccs=1, pea=(4, 4), scratchpad_kib=8), "sequential")
    fc = tight.stages[0].placements[0]
    assert tight.offchip_bytes > once
    assert max(o.passes for o in fc.operands) > 1
    assert any(b.kind in ("a_block", "b_block") and b.depth > 8 for b in tight.stages[0].buffers)
    assert tight.stages[0].scratchpad_bytes <= 8 * 1024


def test_infeasible_budget_names_the_task_and_the_shortfall():
    with pytest.raises(InfeasibleError,
                       match=r"^Task 'fc2' needs 2 KiB of scratchpad for its input row tile of "
                             r"'relu1' but each CC has 1 KiB \(1 KiB short\)$"):
        schedule(mlp(), PAPER_MLP.replace(scratchpad_kib=1), "sequential")
    assert issubclass(InfeasibleError, ValueError)
