# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import *
from amaranth.lib import data, wiring

from intar_hw import numerics
from intar_hw.hw.core.program import GemmProgram
from intar_hw.hw.core.result_path import ResultPath
from intar_hw.hw.scratchpad import Scratchpad
from intar_hw.testbench import put, run, seeded


ACC = 20          # accumulator width of the tests


class ResultBench(Elaboratable):
    """A :class:`ResultPath` reading its biases from a ROM holding ``biases``."""

    def __init__(self, programs, biases):
        self.programs = programs
        self.biases = biases
        self.path = ResultPath(programs, accumulator_width=ACC, bias_addr_width=4,
                               result_addr_width=6)

    def elaborate(self, platform):
        m = Module()
        m.submodules.path = self.path
        if "biases" in self.path.signature.members:
            rom = Scratchpad(data.ArrayLayout(signed(32), self.programs[0].pea[1]), 16,
                             write_ports=0, init=self.biases)
            m.submodules.biases = rom
            wiring.connect(m, self.path.biases, rom.read[0])
        return m


def random_case(rng, program, biases):
    """Tiles of random accumulators (garbage past the edges) and the bias vector (in ``biases``,
    whose unused lanes hold garbage)."""
    d1, d2, _ = program.pea
    lo, hi = -(1 << (ACC - 1)), (1 << (ACC - 1))
    acc = rng.integers(lo, hi, (program.batch, program.M, program.N))
    R = acc if program.orientation == "MN" else acc.transpose(0, 2, 1)
    tiles = []
    for b in range(program.batch):
        for ti in range(program.p_tiles):
            for tj in range(program.q_tiles):
                tile = rng.integers(lo, hi, (d1, d2))
                block = R[b, ti * d1:(ti + 1) * d1, tj * d2:(tj + 1) * d2]
                tile[:block.shape[0], :block.shape[1]] = block
                tiles.append(tile.tolist())
    bias = None
    if program.bias_base is not None:
        bias = rng.integers(-(1 << 21), 1 << 21, program.N)
        for n, word in enumerate(program.bias_image(bias)):
            for c in range(d2):
                # Lanes the core must ignore keep the garbage already in the ROM.
                used = (n * d2 + c < program.N) if program.orientation == "MN" else c == 0
                if used:
                    biases[program.bias_base + n][c] = word[c]
    return acc, tiles, bias


def reference_writes(program, acc, bias):
    """``(addr, word)`` in drain order: the valid rows of each tile, padding lanes 0."""
    d1, d2, _ = program.pea
    y = acc.astype(np.int64) + (0 if bias is None else np.asarray(bias, dtype=np.int64))
    y = numerics.requantize(y, program.shift, program.out_format).astype(np.int64)
    if program.relu:
        y = np.maximum(y, 0)
    R = y if program.orientation == "MN" else y.transpose(0, 2, 1)
    writes = []
    for b in range(program.batch):
        for ti in range(program.p_tiles):
            for tj in range(program.q_tiles):
                rows = d1 if ti < program.p_tiles - 1 else program.p_rem
                for r in range(rows):
                    p = ti * d1 + r
                    word = [int(R[b, p, tj * d2 + c]) if tj * d2 + c < program.q_rows else 0
                            for c in range(d2)]
                    addr = program.dest_base + (b * program.p_rows + p) * program.q_tiles + tj
                    writes.append((addr, word))
    return writes


def result_rtl(bench, stages, tiles, *, seed, idle, backpressure):
    path = bench.path
    writes, done_at, written_at = [], [], []
    d2 = bench.programs[0].pea[1]
    total = sum(len(reference) for reference in tiles.values())

    async def source(ctx):
        for n, stage in enumerate(stages):
            ctx.set(path.stage, stage)
            ctx.set(path.start, 1)
            await ctx.tick()
            ctx.set(path.start, 0)
            await put(ctx, path.i, tiles[n], rng=seeded(seed + n), idle=idle)
            while ctx.get(path.busy):
                await ctx.tick()

    async def sink(ctx):
        rng = seeded(seed + 100)
        cycle = 0
        while len(done_at) < len(stages):
            ready = not (backpressure and rng.random() < backpressure)
            ctx.set(path.results.ready, ready)
            _, _, valid, payload, done = await ctx.tick().sample(
                path.results.valid, path.results.payload, path.done)
            if valid and ready:
                writes.append((payload.addr, [payload.data[c] for c in range(d2)]))
                written_at.append(cycle)
            if done:
                done_at.append(cycle)
            cycle += 1

    run(bench, source, sink, deadline=30 * total + 200)
    return writes, done_at, written_at


CASES = {
    "mn-bias-relu": ((2, 3, 1), "MN", 1, 3, 5, dict(bias_base=1, shift=8, relu=True)),
    "nm-bias": ((3, 2, 1), "NM", 2, 3, 4, dict(bias_base=2, shift=6, out_format="int16")),
    "mn-plain": ((2, 2, 1), "MN", 2, 3, 3, dict(shift=12, dest_base=5)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_drain_with_stalls(name):
    pea, orientation, batch, M, N, epilogue = CASES[name]
    program = GemmProgram(pea, M, N, 1, batch=batch, orientation=orientation, **epilogue)
    rng = np.random.default_rng(len(name))
    biases = rng.integers(-(1 << 31), 1 << 31, (16, pea[1])).tolist()
    acc, tiles, bias = random_case(rng, program, biases)
    bench = ResultBench((program,), biases)
    writes, done_at, written_at = result_rtl(bench, [0], {0: tiles}, seed=len(name), idle=0.4,
                                             backpressure=0.4)
    assert writes == reference_writes(program, acc, bias)
    assert done_at == written_at[-1:]


def test_two_programs_full_rate():
    # With tiles offered back to back and results always taken, a tile of `rows` valid rows
    # occupies the path `rows` cycles, and rows are written every cycle.
    p0 = GemmProgram((3, 2, 1), 4, 3, 1, bias_base=0, shift=7)
    p1 = GemmProgram((3, 2, 1), 5, 2, 1, orientation="NM", dest_base=20, shift=5, relu=True)
    rng = np.random.default_rng(5)
    biases = rng.integers(-(1 << 31), 1 << 31, (16, 2)).tolist()
    acc0, tiles0, bias0 = random_case(rng, p0, biases)
    acc1, tiles1, _ = random_case(rng, p1, biases)
    bench = ResultBench((p0, p1), biases)
    writes, done_at, written_at = result_rtl(bench, [0, 1], {0: tiles0, 1: tiles1}, seed=5,
                                             idle=0, backpressure=0)
    expected = reference_writes(p0, acc0, bias0) + reference_writes(p1, acc1, None)
    assert writes == expected
    first = len(reference_writes(p0, acc0, bias0))
    for span in (written_at[:first], written_at[first:]):
        assert span == list(range(span[0], span[0] + len(span)))
    assert done_at == [written_at[first - 1], written_at[-1]]
