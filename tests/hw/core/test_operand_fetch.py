# amaranth: UnusedElaboratable=no
from dataclasses import replace

import numpy as np
import pytest
from amaranth import *
from amaranth.lib import data, wiring
from amaranth.utils import ceil_log2

from intar_hw.hw.core.operand_fetch import OperandFetch, nest_deltas, operand_word
from intar_hw.hw.core.program import (GemmProgram, OperandRead, Source, memory_lanes,
                                      memory_words)
from intar_hw.hw.scratchpad import Scratchpad
from intar_hw.testbench import run, seeded


class FetchBench(Elaboratable):
    """An :class:`OperandFetch` reading ROMs filled with ``images``."""

    def __init__(self, programs, images, width=8):
        self.programs = programs
        self.images = images
        self.lanes = memory_lanes(programs)
        self.depths = {name: max(2, len(images[name])) for name in self.lanes}
        self.width = width
        self.fetch = OperandFetch(programs, operand_width=width, lanes=self.lanes,
                                  addr_widths={n: ceil_log2(d) for n, d in self.depths.items()})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch = self.fetch
        d3 = self.programs[0].pea[2]
        for name, lanes in self.lanes.items():
            rom = Scratchpad(operand_word(self.width, lanes, d3), self.depths[name],
                             write_ports=0, init=self.images[name])
            m.submodules[name] = rom
            wiring.connect(m, getattr(self.fetch, name), rom.read[0])
        return m


def random_images(rng, programs):
    """Every word random: padding lanes and elements hold garbage too."""
    lanes, words = memory_lanes(programs), memory_words(programs)
    d3 = programs[0].pea[2]
    return {name: rng.integers(-128, 128, (words[name], lanes[name], d3)).tolist()
            for name in lanes}


def reference_beats(program, images):
    """The beats of ``program``: batch, P tile, Q tile, reduction beat; padding of K zeroed."""
    d1, d2, d3 = program.pea
    P, Q = images[program.p_source.value], images[program.q_source.value]
    kb = program.kb
    beats = []
    for b in range(program.batch):
        for ti in range(program.p_tiles):
            for tj in range(program.q_tiles):
                for kk in range(kb):
                    pw = P[program.p_base + (b * program.p_tiles + ti) * kb + kk]
                    qw = Q[program.q_base + (b * program.q_tiles + tj) * kb + kk]
                    keep = d3 if kk < kb - 1 else program.k_rem
                    beats.append({
                        "a": [[pw[r][k] if k < keep else 0 for k in range(d3)]
                              for r in range(d1)],
                        "b": [qw[c] for c in range(d2)],
                        "last": int(kk == kb - 1),
                    })
    return beats


def as_beat(payload, pea):
    d1, d2, d3 = pea
    return {"a": [[payload.a[r][k] for k in range(d3)] for r in range(d1)],
            "b": [[payload.b[c][k] for k in range(d3)] for c in range(d2)],
            "last": payload.last}


def fetch_rtl(bench, stages, *, seed, backpressure, counts=None):
    """Start each stage when the fetch is idle; return the beats and the cycles they moved in.

    ``counts``: beats per stage, by default those of :func:`reference_beats`."""
    fetch = bench.fetch
    received, moved = [], []
    expected = counts or [len(reference_beats(bench.programs[s], bench.images)) for s in stages]

    async def control(ctx):
        for n, stage in enumerate(stages):
            while ctx.get(fetch.busy):
                await ctx.tick()
            ctx.set(fetch.stage, stage)
            ctx.set(fetch.start, 1)
            await ctx.tick()
            ctx.set(fetch.start, 0)
            while len(received) < sum(expected[:n + 1]):
                await ctx.tick()

    async def sink(ctx):
        rng = seeded(seed)
        cycle = 0
        while len(received) < sum(expected):
            ready = not (backpressure and rng.random() < backpressure)
            ctx.set(fetch.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(fetch.o.valid, fetch.o.payload)
            if valid and ready:
                received.append(as_beat(payload, bench.programs[0].pea))
                moved.append(cycle)
            cycle += 1
        ctx.set(fetch.o.ready, 1)
        for _ in range(4):
            _, _, valid, busy = await ctx.tick().sample(fetch.o.valid, fetch.busy)
            assert not valid and not busy

    run(bench, control, sink, deadline=10 * sum(expected) + 100)
    return received, moved


@pytest.mark.parametrize("pea,orientation,batch,M,N,K", [
    ((2, 3, 2), "MN", 1, 5, 4, 5),
    ((3, 2, 3), "NM", 2, 4, 5, 7),
    ((1, 1, 1), "MN", 1, 2, 2, 3),
])
def test_beats_with_backpressure(pea, orientation, batch, M, N, K):
    rng = np.random.default_rng(M * N * K)
    program = GemmProgram(pea, M, N, K, batch=batch, orientation=orientation,
                          a=OperandRead(Source.ACTIVATIONS, 2), b=OperandRead(Source.WEIGHTS, 1))
    images = random_images(rng, (program,))
    beats, _ = fetch_rtl(FetchBench((program,), images), [0], seed=K, backpressure=0.5)
    assert beats == reference_beats(program, images)


def test_one_beat_per_cycle_from_start():
    # Reads go out in the start cycle (0), so beats move in cycles 1, 2, ... with no gap.
    rng = np.random.default_rng(3)
    p0 = GemmProgram((2, 2, 2), 3, 3, 5)
    p1 = GemmProgram((2, 2, 2), 3, 2, 2, orientation="NM", a=OperandRead(Source.WEIGHTS, 6),
                     b=OperandRead(Source.ACTIVATIONS, 6))
    images = random_images(rng, (p0, p1))
    bench = FetchBench((p0, p1), images)
    beats, moved = fetch_rtl(bench, [1], seed=0, backpressure=0)
    assert beats == reference_beats(p1, images)
    assert moved == list(range(1, len(beats) + 1))
    beats, _ = fetch_rtl(bench, [0, 1, 0], seed=1, backpressure=0.3)
    assert beats == sum((reference_beats(p, images) for p in (p0, p1, p0)), [])


def test_nest_deltas():
    # (b, i, j, k) over (2, 3, 4, 5) with coefficients (60, 5, 0, 1): j rewinds k.
    assert nest_deltas((2, 3, 4, 5), (60, 5, 0, 1)) == (60 - 5 * 2 - 4, 5 - 4, -4, 1)


class GatherBench(Elaboratable):
    """An :class:`OperandFetch` gathering a one-row ``A`` from ``results`` and ``peer`` ROMs
    (result layout, ``lanes`` elements a word) and reading ``B`` from a weights ROM."""

    def __init__(self, program, rows, weights, lanes):
        self.program, self.rows, self.weights, self.lanes = program, rows, weights, lanes
        self.fetch = OperandFetch((program,), operand_width=8, lanes={"weights": program.pea[1]},
                                  addr_widths={"weights": 4, "results": 3, "peer": 3},
                                  peer_lanes={"peer": lanes})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fetch = self.fetch
        d3 = self.program.pea[2]
        rom = Scratchpad(operand_word(8, self.program.pea[1], d3), 16, write_ports=0,
                         init=self.weights)
        m.submodules.weights = rom
        wiring.connect(m, self.fetch.weights, rom.read[0])
        for name, words in self.rows.items():
            rom = Scratchpad(data.ArrayLayout(signed(8), self.lanes), 8, write_ports=0,
                             init=words)
            m.submodules[name] = rom
            wiring.connect(m, getattr(self.fetch, name), rom.read[0])
        return m


@pytest.mark.parametrize("backpressure", [0, 0.5])
def test_gathered_row_with_backpressure(backpressure):
    """Word w of A from part w % 2 (results at 1, peer at 3), whatever the stalls on ``o``."""
    rng = np.random.default_rng(5)
    lanes, K, N = 4, 13, 6
    gather = ((Source.RESULTS, 1), (Source.PEER, 3))
    program = GemmProgram((1, 4, 2), 1, N, K,
                          a=OperandRead(Source.RESULTS, 1, lanes=lanes, gather=gather))
    row = rng.integers(-128, 128, 16).tolist()      # 4 words of A; past K is garbage
    rows = {"results": [[0] * lanes] * 8, "peer": [[0] * lanes] * 8}
    for w in range(4):
        part, base = (("results", 1), ("peer", 3))[w % 2]
        rows[part][base + w // 2] = row[w * lanes:(w + 1) * lanes]
    weights = rng.integers(-128, 128, (16, 4, 2)).tolist()
    bench = GatherBench(program, rows, weights, lanes)
    kb, expected = program.kb, []
    for tj in range(program.q_tiles):
        for kk in range(kb):
            expected.append({
                "a": [[row[kk * 2 + k] if kk * 2 + k < K else 0 for k in range(2)]],
                "b": weights[tj * kb + kk],
                "last": int(kk == kb - 1),
            })
    bench.programs = (program,)
    beats, moved = fetch_rtl(bench, [0], seed=9, backpressure=backpressure,
                             counts=[len(expected)])
    assert beats == expected
    if not backpressure:
        assert moved == list(range(1, len(beats) + 1))      # one beat a cycle


def test_gather_errors():
    # The gather's own checks are OperandRead's (test_program.py); these need the program.
    gather = OperandRead(Source.RESULTS, gather=((Source.RESULTS, 0), (Source.PEER, 0)))
    with pytest.raises(ValueError, match=r"^GemmProgram a.gather needs batch 1, not 2$"):
        GemmProgram((1, 4, 1), 1, 4, 8, batch=2, a=gather)
    with pytest.raises(ValueError, match=r"^GemmProgram b.gather needs batch 1, not 2$"):
        GemmProgram((1, 4, 1), 1, 4, 8, batch=2, slots=4, b=replace(gather, slots=4))
    with pytest.raises(ValueError, match=r"^GemmProgram a.gather by words needs A's 2 rows in "
                                         r"one word row of 1 slots$"):
        GemmProgram((1, 4, 1), 2, 4, 8, a=gather)
    p = GemmProgram((1, 4, 1), 1, 4, 12,
                    a=OperandRead(Source.RESULTS, 2,
                                  gather=((Source.RESULTS, 2), (Source.PEER, 5))))
    # Words 0 and 2 of the row are in results, word 1 in the peer's memory.
    assert p.a.parts == ((Source.RESULTS, 2), (Source.PEER, 5))
    assert p.extents()["results"] == 2 + 2 and p.extents()["peer"] == 5 + 1


@pytest.mark.parametrize("backpressure", [0, 0.5])
def test_rows_gathered_by_tiles(backpressure):
    """A result of 4 rows dealt by rows over two cores (tile t of 2 rows in part t % 2, one tile
    a word row: 2 slots of 4 lanes) read as A, tile by tile."""
    rng = np.random.default_rng(8)
    slots, lanes, M, K, N = 2, 4, 4, 6, 4
    gather = ((Source.RESULTS, 1), (Source.PEER, 3))
    program = GemmProgram((2, 4, 1), M, N, K, slots=slots,
                          a=OperandRead(Source.RESULTS, 1, lanes=lanes, gather=gather,
                                        gather_tiles=True))
    A = rng.integers(-128, 128, (M, 2 * lanes))     # columns past K are garbage
    rows = {"results": [[0] * slots * lanes] * 8, "peer": [[0] * slots * lanes] * 8}
    for t in range(2):
        part, base = (("results", 1), ("peer", 3))[t]
        for w in range(2):
            rows[part][base + w] = [int(A[t * 2 + r, w * lanes + c])
                                    for r in range(slots) for c in range(lanes)]
    weights = rng.integers(-128, 128, (16, 4, 1)).tolist()
    bench = GatherBench(program, rows, weights, slots * lanes)
    expected = []
    for i in range(2):
        for kk in range(K):
            expected.append({"a": [[int(A[i * 2 + r, kk])] for r in range(2)],
                             "b": weights[kk], "last": int(kk == K - 1)})
    bench.programs = (program,)
    beats, moved = fetch_rtl(bench, [0], seed=4, backpressure=backpressure,
                             counts=[len(expected)])
    assert beats == expected
    if not backpressure:
        assert moved == list(range(1, len(beats) + 1))


def test_gather_by_tiles_needs_a_tile_per_word_row():
    with pytest.raises(ValueError, match=r"^GemmProgram a.gather_tiles needs a.slots equal to "
                                         r"A's 2 rows per tile, not 4$"):
        GemmProgram((2, 4, 1), 4, 4, 4, slots=4,
                    a=OperandRead(Source.RESULTS, gather=((Source.RESULTS, 0), (Source.PEER, 0)),
                                  gather_tiles=True))
