# amaranth: UnusedElaboratable=no
import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.flow.verilog import to_verilog
from intar_hw.hw.core import (ComputingCore, GemmProgram, Join, OperandRead, SoftmaxLink, Source,
                              memory_images)
from intar_hw.hw.core.program import BIAS_LATENCY
from intar_hw.schedule import cost
from intar_hw.testbench import get, put, run, seeded


# --- reference and harness ------------------------------------------------------------------------

def reference_gemm(program, A, B, bias):
    """``(batch, M, N)``: ``requantize(A @ B^T + bias, shift, fmt)``, then ReLU if asked."""
    acc = np.einsum("bmk,bnk->bmn", A.astype(np.int64), B.astype(np.int64))
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    y = numerics.requantize(acc, program.shift, program.out_format).astype(np.int64)
    return np.maximum(y, 0) if program.relu else y


def random_operands(rng, program, width=8):
    """Random ``A``, ``B`` (extremes in the first rows) and an int32-range bias or ``None``."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    A = rng.integers(lo, hi + 1, (program.batch, program.M, program.K))
    B = rng.integers(lo, hi + 1, (program.batch, program.N, program.K))
    A[:, 0, :] = lo                   # the largest products
    B[:, 0, :] = lo
    if program.N > 1:
        B[:, -1, :] = hi              # the most negative ones against A's first row
    bias = None
    if program.bias_base is not None:
        bias = rng.integers(-(1 << 14), 1 << 14, program.N)
        bias[0] = numerics.INT32.lo    # saturates after any shift below 20
    return A, B, bias


def with_garbage(rng, programs, images, width=8):
    """``images`` with every position no program reads as data replaced by random values.

    The layouts of .program make padding lanes and elements don't-care; this proves it.
    """
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    used = {name: np.zeros(np.shape(words), dtype=bool) for name, words in images.items()}
    for p in programs:
        d1, d2, d3 = p.pea
        for read, rows, block in ((p.a, p.M, p.dm), (p.b, p.N, p.dn)):
            source, base, blocks = read.source, read.base, -(-rows // block)
            for b in range(p.batch):
                for i in range(blocks):
                    for kk in range(p.kb):
                        word = base + (b * blocks + i) * p.kb + kk
                        r = min(block, rows - i * block)
                        k = min(d3, p.K - kk * d3)
                        used[source.value][word, :r, :k] = True
        if p.bias_base is not None:
            for n in range(p.N):
                word, lane = ((n // d2, n % d2) if p.orientation == "MN" else (n, 0))
                used["biases"][p.bias_base + word, lane] = True
    result = {}
    for name, words in images.items():
        words = np.array(words, dtype=np.int64)
        if name == "biases":
            noise = rng.integers(numerics.INT32.lo, numerics.INT32.hi + 1, words.shape)
        else:
            noise = rng.integers(lo, hi, words.shape)
        result[name] = np.where(used[name], words, noise).tolist()
    return result


def read_results(core, program, words):
    return program.result_from_words([words[a] for a in program.host_addresses()])


def core_rtl(core, stages, *, seed, loads=None, extra=None):
    """Run ``stages`` back to back (each started the cycle after the previous ``done``).

    ``loads`` maps a memory name to words written through its host port first (random idles).
    ``extra`` is one more testbench, run alongside. Returns the cycles
    of each program, from its start cycle (0) to its ``done`` cycle, and the result memory,
    read through ``results_read`` with random idles and backpressure.
    """
    cycles = []
    # Every host address: each word's slots.
    depth = core.depths["results"] << (core.programs[0].slots - 1).bit_length()
    words = []
    phase = {"loaded": not loads, "ran": False}

    loaders = []
    for k, (name, image) in enumerate((loads or {}).items()):
        port = getattr(core, f"{name}_write")
        writes = [{"addr": a, "data": w} for a, w in enumerate(image)]

        async def load(ctx, port=port, writes=writes, rng=seeded(seed + 10 + k)):
            await put(ctx, port, writes, rng=rng, idle=0.3)
        loaders.append(load)

    async def loaded(ctx):
        for load in loaders:
            await load(ctx)
        phase["loaded"] = True

    async def control(ctx):
        while not phase["loaded"]:
            await ctx.tick()
        for stage in stages:
            ctx.set(core.stage, stage)          # sampled the cycle before the start
            await ctx.tick()
            ctx.set(core.start, 1)
            await ctx.tick()
            ctx.set(core.start, 0)
            count = 1
            while not ctx.get(core.done):
                assert ctx.get(core.busy)
                await ctx.tick()
                count += 1
            cycles.append(count)
            await ctx.tick()
            assert not ctx.get(core.busy) and not ctx.get(core.done)
        phase["ran"] = True

    async def request(ctx):
        while not phase["ran"]:
            await ctx.tick()
        await put(ctx, core.results_read.req, [{"addr": a} for a in range(depth)],
                  rng=seeded(seed + 1), idle=0.3)

    async def respond(ctx):
        while not phase["ran"]:
            await ctx.tick()
        responses = await get(ctx, core.results_read.resp, depth, rng=seeded(seed + 2),
                              backpressure=0.4)
        lanes = core.pea[1]
        words.extend([int(r.data[c]) for c in range(lanes)] for r in responses)

    total = sum(p.cycles for p in core.programs) * (len(stages) + 1)
    run(core, control, request, respond, *([loaded] if loads else []),
        *([extra] if extra else []),
        deadline=total + 12 * depth + 60 * sum(len(i) for i in (loads or {}).values()) + 200,
        vcd="computing_core.vcd")
    return cycles, words


def check(programs, stages, *, seed, width=8, loads_through_ports=False):
    """Golden check of ``programs`` run as ``stages``; returns the measured cycles."""
    rng = np.random.default_rng(seed)
    operands = [random_operands(rng, p, width) for p in programs]
    images = with_garbage(rng, programs, memory_images(programs, operands), width)
    if loads_through_ports:
        core = ComputingCore(programs, operand_width=width)
        cycles, words = core_rtl(core, stages, seed=seed, loads=images)
    else:
        core = ComputingCore(programs, operand_width=width, init=images)
        cycles, words = core_rtl(core, stages, seed=seed)
    for s in dict.fromkeys(stages):
        program = programs[s]
        np.testing.assert_array_equal(read_results(core, program, words),
                                      reference_gemm(program, *operands[s]))
    return cycles


def check_chain(first, second, *, seed):
    """Run ``first`` then ``second``, which reads its ``A`` from ``first``'s result: both
    results bit-exact, both programs as many cycles as predicted."""
    rng = np.random.default_rng(seed)
    A0, B0, bias0 = random_operands(rng, first)
    _, B1, bias1 = random_operands(rng, second)
    images = memory_images((first, second), [(A0, B0, bias0), (None, B1, bias1)])
    core = ComputingCore((first, second), init=images)
    cycles, words = core_rtl(core, [0, 1], seed=seed % 13)
    hidden = reference_gemm(first, A0, B0, bias0)
    np.testing.assert_array_equal(read_results(core, first, words), hidden)
    np.testing.assert_array_equal(read_results(core, second, words),
                                  reference_gemm(second, hidden, B1, bias1))
    assert cycles == [predicted(first), predicted(second)]


def predicted(program):
    """The cost model's cycles for the program, plus the cycle a bias adds (see below)."""
    busy, _ = cost.core_cycles(program.pea, program.orientation, program.batch, program.M,
                               program.N, program.K)
    return busy + cost.ARRAY_LATENCY + (BIAS_LATENCY if program.bias_base is not None else 0)


# --- one program: bit-exact results and exact cycles ----------------------------------------------

# Cycles are counted from the cycle `start` is high in (0) to the cycle `done` is high in: the
# first operand reads go out in cycle 0, `done` marks the cycle the last result word is written.
# That equals cost.core_cycles(...) + ARRAY_LATENCY exactly without a bias; the bias adds one
# cycle per stage (Requantize registers acc + bias before rounding), which cost.py leaves out.
SHAPES = {
    # name: (pea, orientation, batch, M, N, K, epilogue)
    "square": ((2, 2, 1), "MN", 1, 4, 4, 4, dict(shift=4)),
    "square-bias-relu": ((2, 2, 1), "MN", 1, 4, 4, 4, dict(bias_base=0, shift=4, relu=True)),
    "ragged-mnk": ((2, 3, 2), "MN", 1, 5, 4, 5, dict(shift=6)),
    "gemv-mn": ((2, 4, 1), "MN", 1, 1, 6, 5, dict(bias_base=0, shift=5, relu=True)),
    "gemv-nm": ((4, 2, 1), "NM", 1, 1, 6, 3, dict(bias_base=2, shift=3)),
    "nm-ragged": ((3, 2, 1), "NM", 1, 5, 4, 3, dict(bias_base=1, shift=5)),
    "depth-4": ((2, 2, 4), "MN", 1, 3, 4, 10, dict(shift=7, relu=True)),
    "batch-2": ((2, 2, 2), "MN", 2, 3, 3, 4, dict(bias_base=0, shift=5)),
    "batch-3-nm": ((2, 3, 2), "NM", 3, 2, 3, 3, dict(shift=4, out_format="int16")),
    "drain-bound": ((4, 2, 1), "MN", 1, 6, 3, 1, dict(shift=2)),
    "one-mac": ((1, 1, 1), "MN", 1, 2, 3, 2, dict(shift=1)),
    "single-beat": ((1, 1, 1), "MN", 1, 1, 1, 1, dict()),
    "larger-4x4x2": ((4, 4, 2), "MN", 1, 9, 10, 13, dict(bias_base=0, shift=9, relu=True)),
    "larger-8x8-nm": ((8, 8, 1), "NM", 1, 12, 17, 6, dict(bias_base=0, shift=8)),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_gemm(name):
    pea, orientation, batch, M, N, K, epilogue = SHAPES[name]
    program = GemmProgram(pea, M, N, K, batch=batch, orientation=orientation,
                          a=OperandRead(Source.ACTIVATIONS, 1), b=OperandRead(Source.WEIGHTS, 2),
                          dest_base=3, **epilogue)
    cycles = check((program,), [0], seed=sum(map(ord, name)))
    assert cycles == [predicted(program)] == [program.cycles]


@pytest.mark.parametrize("width", [4, 16])
def test_operand_widths(width):
    program = GemmProgram((2, 3, 2), 3, 4, 5, bias_base=0, shift=width,
                          out_format=f"int{width}")
    cycles = check((program,), [0], seed=width, width=width)
    assert cycles == [predicted(program)]


def test_two_programs_back_to_back():
    # Different shapes, orientations, sources, bases and epilogues on one core.
    p0 = GemmProgram((2, 3, 2), 5, 4, 5, dest_base=0, bias_base=0, shift=6, relu=True)
    p1 = GemmProgram((2, 3, 2), 3, 7, 3, orientation="NM", a=OperandRead(Source.WEIGHTS, 8),
                     b=OperandRead(Source.ACTIVATIONS, 12), dest_base=10, shift=3,
                     out_format="int16")
    cycles = check((p0, p1), [1, 0], seed=7)
    assert cycles == [predicted(p1), predicted(p0)]


def test_same_program_twice():
    p0 = GemmProgram((2, 2, 1), 3, 3, 2, shift=2)
    p1 = GemmProgram((2, 2, 1), 2, 2, 3, a=OperandRead(Source.ACTIVATIONS, 4),
                     b=OperandRead(Source.WEIGHTS, 4), dest_base=6, bias_base=0)
    assert check((p0, p1), [0, 0, 1, 0], seed=8) == [predicted(p) for p in (p0, p0, p1, p0)]


def test_loads_through_host_ports():
    program = GemmProgram((2, 2, 2), 3, 3, 3, orientation="NM", bias_base=1, shift=4)
    cycles = check((program,), [0], seed=9, loads_through_ports=True)
    assert cycles == [predicted(program)]


# --- control --------------------------------------------------------------------------------------

def test_start_ignored_while_busy():
    p0 = GemmProgram((2, 2, 1), 3, 2, 3, shift=3)
    p1 = GemmProgram((2, 2, 1), 2, 2, 2, dest_base=6)
    rng = np.random.default_rng(11)
    operands = [random_operands(rng, p) for p in (p0, p1)]
    core = ComputingCore((p0, p1), init=memory_images((p0, p1), operands))

    async def poke(ctx):
        # A start of the other program while busy changes nothing.
        await ctx.tick().until(core.busy)
        await ctx.tick()
        ctx.set(core.stage, 1)
        ctx.set(core.start, 1)
        await ctx.tick()
        ctx.set(core.start, 0)

    cycles, words = core_rtl(core, [0], seed=11, extra=poke)
    assert cycles == [predicted(p0)]
    np.testing.assert_array_equal(read_results(core, p0, words), reference_gemm(p0, *operands[0]))
    assert not any(any(w) for w in words[6:])


def test_unknown_stage_ignored():
    programs = tuple(GemmProgram((1, 1, 1), 1, 1, 1, dest_base=d) for d in range(3))
    core = ComputingCore(programs)
    assert len(core.stage) == 2

    async def tb(ctx):
        ctx.set(core.stage, 3)
        await ctx.tick()
        ctx.set(core.start, 1)
        for _ in range(8):
            await ctx.tick()
            assert not ctx.get(core.busy) and not ctx.get(core.done)

    run(core, tb, deadline=20)


# --- parameters -----------------------------------------------------------------------------------

PROGRAM = GemmProgram((2, 2, 1), 4, 4, 4, bias_base=0)


def test_attributes():
    p1 = GemmProgram((2, 2, 1), 2, 6, 3, orientation="NM", a=OperandRead(Source.WEIGHTS),
                     b=OperandRead(Source.ACTIVATIONS, 8), out_format="int16")
    core = ComputingCore((PROGRAM, p1), depths={"results": 64})
    assert core.pea == (2, 2, 1) and core.operand_width == 8
    assert core.programs == (PROGRAM, p1)
    assert core.lanes == {"activations": 2, "weights": 2}
    assert core.depths == {"activations": 8 + 3 * 3, "weights": 8, "biases": 2, "results": 64}
    assert core.cycles == (predicted(PROGRAM), predicted(p1))
    assert core.accumulator_width == 2 * 8 - 1 + 3   # K = 4
    assert core.shapes["results"].elem_shape.width == 16
    assert set(core.signature.members) == {
        "start", "stage", "clear", "busy", "done", "activations_write", "weights_write",
        "biases_write", "results_read", "results_level"}
    # Memories no program uses are not built.
    core = ComputingCore((GemmProgram((2, 2, 1), 2, 2, 2),))
    assert set(core.shapes) == {"activations", "weights", "results"}
    assert "biases_write" not in core.signature.members


def test_programs():
    with pytest.raises(TypeError, match=r"^ComputingCore programs must be a tuple of "
                                        r"GemmProgram, not \[GemmProgram\(.*\)\]$"):
        ComputingCore([PROGRAM])
    with pytest.raises(TypeError, match=r"^ComputingCore programs must be a tuple of "
                                        r"GemmProgram, not \(1,\)$"):
        ComputingCore((1,))
    with pytest.raises(ValueError, match=r"^ComputingCore programs must not be empty$"):
        ComputingCore(())
    with pytest.raises(ValueError, match=r"^ComputingCore programs must share one PE array, "
                                         r"not \(2, 2, 1\), \(2, 2, 2\)$"):
        ComputingCore((PROGRAM, GemmProgram((2, 2, 2), 4, 4, 4)))


def test_operand_width():
    with pytest.raises(TypeError, match=r"^ComputingCore operand_width must be an integer, "
                                        r"not '8'$"):
        ComputingCore((PROGRAM,), operand_width="8")
    with pytest.raises(ValueError, match=r"^ComputingCore operand_width must be 4, 8 or 16, "
                                         r"not 12$"):
        ComputingCore((PROGRAM,), operand_width=12)


def test_depths():
    with pytest.raises(TypeError, match=r"^ComputingCore depths must be a mapping of memory "
                                        r"names to integers, not 16$"):
        ComputingCore((PROGRAM,), depths=16)
    with pytest.raises(ValueError, match=r"^ComputingCore depths names a memory the programs "
                                         r"do not use: 'fifo'$"):
        ComputingCore((PROGRAM,), depths={"fifo": 16})
    with pytest.raises(TypeError, match=r"^ComputingCore depth of 'results' must be an "
                                        r"integer, not 16\.0$"):
        ComputingCore((PROGRAM,), depths={"results": 16.0})
    with pytest.raises(ValueError, match=r"^ComputingCore depth of 'activations' must be at "
                                         r"least 8 words for the programs, not 7$"):
        ComputingCore((PROGRAM,), depths={"activations": 7})


def test_init():
    with pytest.raises(TypeError, match=r"^ComputingCore init must be a mapping of memory names "
                                        r"to words, not \[\]$"):
        ComputingCore((PROGRAM,), init=[])
    with pytest.raises(ValueError, match=r"^ComputingCore init names a memory the programs do "
                                         r"not use: 'weight'$"):
        ComputingCore((PROGRAM,), init={"weight": []})
    with pytest.raises(TypeError, match=r"^ComputingCore init of 'biases' must be an iterable "
                                        r"of words, not 5$"):
        ComputingCore((PROGRAM,), init={"biases": 5})
    with pytest.raises(ValueError, match=r"^ComputingCore init of 'biases' must hold at most 2 "
                                         r"words, not 3$"):
        ComputingCore((PROGRAM,), init={"biases": [[0, 0]] * 3})
    with pytest.raises(ValueError, match=r"^ComputingCore init of 'activations' word 1 does not "
                                         r"fit .*: \[\[128\], \[0\]\]$"):
        ComputingCore((PROGRAM,), init={"activations": [[[0], [0]], [[128], [0]]]})


def test_verilog():
    p1 = GemmProgram((2, 3, 2), 3, 7, 3, orientation="NM", a=OperandRead(Source.WEIGHTS),
                     b=OperandRead(Source.ACTIVATIONS), relu=True, out_format="int16")
    text = to_verilog(ComputingCore((GemmProgram((2, 3, 2), 5, 4, 5, bias_base=0), p1)))
    for port in ("start", "stage", "busy", "done", "results_read__req__valid",
                 "activations_write__valid", "biases_write__payload"):
        assert port in text
    to_verilog(ComputingCore((GemmProgram((1, 1, 1), 1, 1, 1),)))


# --- A read from the core's own result memory (Source.RESULTS) ------------------------------
CHAINS = {
    # name: (pea, batch, (K0, N0, N1), second program's shift)
    "d3-1": ((1, 8, 1), 1, (5, 6, 4), 4),
    "d3-2-two-words": ((1, 4, 2), 1, (3, 10, 3), 5),
    "batch-2-q-tiles": ((1, 2, 1), 2, (3, 5, 3), 3),
}


@pytest.mark.parametrize("name", list(CHAINS))
def test_chained_gemv(name):
    pea, batch, (K0, N0, N1), shift = CHAINS[name]
    first = GemmProgram(pea, 1, N0, K0, batch=batch, bias_base=0, shift=4, relu=True,
                        a=OperandRead(Source.ACTIVATIONS, 0), b=OperandRead(Source.WEIGHTS, 0),
                        dest_base=1)
    second = GemmProgram(pea, 1, N1, N0, batch=batch, a=OperandRead(Source.RESULTS, 1),
                         b=OperandRead(Source.WEIGHTS, first.b_words), bias_base=first.bias_words,
                         shift=shift, dest_base=1 + first.dest_words)
    check_chain(first, second, seed=sum(map(ord, name)))


def test_results_source_needs_a_tile_of_rows_in_one_word():
    with pytest.raises(ValueError, match=r"^GemmProgram reading A from Source.RESULTS needs d3 "
                                         r"dividing its 4 lanes and M <= a.slots or a.slots a "
                                         r"multiple of A's 2 rows per tile, not M=3, a.slots=1, "
                                         r"pea \(2, 4, 1\)$"):
        GemmProgram((2, 4, 1), 3, 4, 4, a=OperandRead(Source.RESULTS))
    with pytest.raises(ValueError, match=r"needs d3 dividing its 4 lanes .* not M=1, "
                                         r"a.slots=1, pea \(1, 4, 3\)$"):
        GemmProgram((1, 4, 3), 1, 4, 4, a=OperandRead(Source.RESULTS))


MATMULS = {
    # name: (pea, slots, M, N, K, orientation, B transposed)
    "a-bt-one-word": ((4, 4, 1), 4, 3, 4, 5, "MN", False),
    "a-bt-nm": ((2, 4, 1), 4, 3, 4, 6, "NM", False),
    "a-b-transposed": ((4, 4, 1), 4, 4, 6, 3, "MN", True),
    "a-b-transposed-nm-one-lane": ((1, 4, 1), 4, 5, 3, 4, "NM", True),
    "a-b-two-row-tiles": ((2, 2, 1), 4, 4, 3, 5, "MN", False),
}


@pytest.mark.parametrize("name", list(MATMULS))
def test_matmul_of_two_results(name):
    # Programs 0 and 1 compute X and Y from operand memories; program 2 computes X @ Y^T, or
    # X @ Y with Y read transposed, both read where they were written.
    pea, slots, M, N, K, orientation, transposed = MATMULS[name]
    x = GemmProgram(pea, M, K, 3, shift=4, slots=slots)
    y_rows, y_cols = (K, N) if transposed else (N, K)
    y = GemmProgram(pea, y_rows, y_cols, 2, a=OperandRead(Source.ACTIVATIONS, x.a_words),
                    b=OperandRead(Source.WEIGHTS, x.b_words), shift=3, slots=slots,
                    dest_base=x.dest_words)
    z = GemmProgram(pea, M, N, K, orientation=orientation, a=OperandRead(Source.RESULTS, 0),
                    b=OperandRead(Source.RESULTS, x.dest_words, transposed=transposed), shift=5,
                    slots=slots, dest_base=x.dest_words + y.dest_words)
    rng = np.random.default_rng(sum(map(ord, name)))
    ops_x, ops_y = random_operands(rng, x), random_operands(rng, y)
    images = memory_images((x, y, z), [ops_x, ops_y, None])
    core = ComputingCore((x, y, z), init=images)
    cycles, words = core_rtl(core, [0, 1, 2], seed=3)
    X, Y = reference_gemm(x, *ops_x), reference_gemm(y, *ops_y)
    B = Y.transpose(0, 2, 1) if transposed else Y
    np.testing.assert_array_equal(read_results(core, z, words),
                                  reference_gemm(z, X, B, None))
    assert cycles == [predicted(x), predicted(y), predicted(z)]


def test_chained_results_must_match_operand_width():
    first = GemmProgram((1, 4, 1), 1, 4, 4, out_format="int16")
    second = GemmProgram((1, 4, 1), 1, 4, 4, a=OperandRead(Source.RESULTS), dest_base=1)
    with pytest.raises(ValueError, match=r"^ComputingCore programs reading operands from "
                                         r"Source.RESULTS need 8-bit results, not 16-bit$"):
        ComputingCore((first, second))


# --- gated reads: memories filled while the core runs ---------------------------------------------

@pytest.mark.parametrize("hold", [0, 5, 17])
def test_gated_core_waits_for_levels(hold):
    program = GemmProgram((1, 4, 1), 1, 6, 5, bias_base=0, shift=4, relu=True, dest_base=0)
    rng = np.random.default_rng(hold)
    operands = random_operands(rng, program)
    images = memory_images((program,), [operands])
    core = ComputingCore((program,), init=images, gated=True)
    timing, words = {}, []

    async def bench(ctx):
        ctx.set(core.start, 1)
        await ctx.tick()
        ctx.set(core.start, 0)
        cycle = 1
        while not ctx.get(core.done):
            # Levels rise one word a cycle after `hold` cycles: the core reads only below them.
            for name in ("activations", "weights", "biases"):
                level = max(0, min(cycle - hold, core.depths[name]))
                ctx.set(getattr(core, f"{name}_level"), level)
            await ctx.tick()
            cycle += 1
        timing["done"] = cycle
        await ctx.tick()
        port = core.results_read
        ctx.set(port.resp.ready, 1)
        for addr in range(program.dest_words):
            ctx.set(port.req.valid, 1)
            ctx.set(port.req.payload.addr, addr)
            await ctx.tick().until(port.req.ready)
            ctx.set(port.req.valid, 0)
            response, = await ctx.tick().sample(port.resp.payload).until(port.resp.valid)
            words.append([int(v) for v in response.data])

    run(core, bench, deadline=300)
    np.testing.assert_array_equal(program.result_from_words(words),
                                  reference_gemm(program, *operands))
    # Word a is readable from cycle hold + a + 1, where the ungated core reads it in cycle a:
    # every read, and so done, slips by hold + 1 cycles.
    assert timing["done"] == program.cycles + hold + 1


def test_gated_must_be_a_bool():
    program = GemmProgram((1, 4, 1), 1, 4, 4)
    with pytest.raises(TypeError, match=r"^ComputingCore gated must be a bool, not 1$"):
        ComputingCore((program,), gated=1)


def test_peer_source_errors():
    with pytest.raises(ValueError, match=r"^GemmProgram reading A from Source.PEER needs d3 "
                                         r"dividing its 5 lanes and M <= a.slots or a.slots a "
                                         r"multiple of A's 1 rows per tile, not M=1, a.slots=1, "
                                         r"pea \(1, 4, 2\)$"):
        GemmProgram((1, 4, 2), 1, 4, 4, a=OperandRead(Source.PEER, lanes=5))
    with pytest.raises(ValueError, match=r"^OperandRead lanes must be a positive integer or "
                                         r"None, not 0$"):
        OperandRead(Source.PEER, lanes=0)
    with pytest.raises(ValueError, match=r"^ComputingCore programs reading A from Source.PEER "
                                         r"need peer$"):
        ComputingCore((GemmProgram((1, 4, 1), 1, 4, 4, a=OperandRead(Source.PEER, lanes=8)),))


# --- results of several rows as A, in slots of the result memory ---------------------------------

ROW_CHAINS = {
    # name: (pea, slots, batch, M, (K0, N0, N1), orientations of the two programs)
    "rows-in-one-word": ((4, 4, 1), 4, 1, 3, (5, 6, 3), ("MN", "MN")),
    "two-row-tiles-per-word": ((2, 3, 1), 4, 1, 7, (3, 5, 4), ("MN", "MN")),
    "one-slot-one-row-tiles": ((1, 4, 1), 1, 1, 3, (3, 6, 5), ("MN", "MN")),
    "consumer-nm": ((3, 2, 2), 2, 2, 2, (4, 6, 5), ("MN", "NM")),
    "depth-2-batches": ((2, 4, 2), 2, 2, 3, (3, 7, 5), ("MN", "MN")),
}


@pytest.mark.parametrize("name", list(ROW_CHAINS))
def test_chained_rows(name):
    pea, slots, batch, M, (K0, N0, N1), (o0, o1) = ROW_CHAINS[name]
    first = GemmProgram(pea, M, N0, K0, batch=batch, orientation=o0, bias_base=0, shift=4,
                        relu=True, slots=slots, dest_base=1)
    second = GemmProgram(pea, M, N1, N0, batch=batch, orientation=o1,
                         a=OperandRead(Source.RESULTS, 1),
                         b=OperandRead(Source.WEIGHTS, first.b_words), bias_base=first.bias_words,
                         shift=5, slots=slots, dest_base=1 + first.dest_words)
    check_chain(first, second, seed=sum(map(ord, name)))


def test_programs_share_slots():
    with pytest.raises(ValueError, match=r"^ComputingCore programs must share one number of "
                                         r"result slots, not 1, 2$"):
        ComputingCore((GemmProgram((1, 4, 1), 1, 4, 4),
                       GemmProgram((1, 4, 1), 1, 4, 4, slots=2)))


# --- epilogue SFUs: table activations and joins --------------------------------------------------

EPILOGUES = {
    # name: (pea, orientation, M, N, K, slots, second program's epilogue)
    "silu-mul": ((2, 4, 1), "MN", 3, 6, 4, 2,
                 dict(activation="silu", join=dict(kind="mul", shift=6))),
    "gelu": ((2, 3, 1), "NM", 2, 5, 3, 1, dict(activation="gelu")),
    "add-relu": ((4, 2, 2), "MN", 3, 4, 5, 4, dict(relu=True, join=dict(kind="add"))),
    "silu-int16": ((2, 2, 1), "MN", 2, 3, 4, 2,
                   dict(activation="silu", out_format="int16", shift=2)),
}


def reference_epilogue(program, y, side):
    fmt = program.out_format
    frac = program.activation_frac
    if frac is None:
        frac = numerics.default_frac(fmt)
    if program.activation == "silu":
        y = numerics.silu(y, fmt, frac)
    elif program.activation == "gelu":
        y = numerics.gelu(y, fmt, frac, program.approximate)
    join = program.join
    if join is not None and join.kind == "mul":
        y = numerics.requantize(y.astype(np.int64) * side, join.shift, join.fmt)
    elif join is not None and join.kind == "add":
        y = numerics.requantize(y.astype(np.int64) + side, 0, join.fmt)
    elif join is not None and join.kind == "mul_add":
        product = numerics.requantize(y.astype(np.int64) * side, join.shift, join.fmt)
        y = numerics.requantize(y.astype(np.int64) + product, 0, join.fmt)
    return np.asarray(y, dtype=np.int64)


@pytest.mark.parametrize("name", list(EPILOGUES))
def test_epilogue_sfus(name):
    # Program 0 writes the side tensor; program 1 (same geometry) applies the epilogue to its
    # own GEMM, joining program 0's result read from the same memory.
    pea, orientation, M, N, K, slots, epilogue = EPILOGUES[name]
    epilogue = {"shift": 6, **epilogue}
    first = GemmProgram(pea, M, N, K, orientation=orientation, shift=5, slots=slots,
                        out_format=epilogue.get("out_format", "int8"))
    if "join" in epilogue:
        epilogue["join"] = Join(source=Source.RESULTS, base=0, **epilogue["join"])
    second = GemmProgram(pea, M, N, K, orientation=orientation,
                         a=OperandRead(Source.ACTIVATIONS, first.a_words),
                         b=OperandRead(Source.WEIGHTS, first.b_words), dest_base=first.dest_words,
                         slots=slots, **epilogue)
    rng = np.random.default_rng(sum(map(ord, name)))
    width = 8
    ops0 = random_operands(rng, first, width)
    ops1 = random_operands(rng, second, width)
    images = memory_images((first, second), [ops0, ops1])
    core = ComputingCore((first, second), init=images)
    cycles, words = core_rtl(core, [0, 1], seed=5)
    side = reference_gemm(first, *ops0)
    np.testing.assert_array_equal(read_results(core, first, words), side)
    expected = reference_epilogue(second, reference_gemm(second, *ops1), side)
    np.testing.assert_array_equal(read_results(core, second, words), expected)
    assert cycles == [predicted(first), predicted(second) + second.sfu_latency]
    assert second.sfu_latency == cost.sfu_latency(
        second.activation, second.join and second.join.kind, second.out_format.bits) > 0


@pytest.mark.parametrize("pea,orientation,M,N,K,slots,join", [
    ((2, 4, 1), "MN", 3, 6, 4, 2, "mul_add"),
    ((2, 3, 1), "NM", 4, 5, 3, 1, "mul_add"),
    ((1, 2, 2), "MN", 5, 3, 4, 1, "add"),
])
def test_side_join(pea, orientation, M, N, K, slots, join):
    # A join's second tensor loaded into the side memory (a graph input, in this program's
    # result layout): ReLU, then the result plus its product with the side (or their sum).
    program = GemmProgram(pea, M, N, K, orientation=orientation, shift=5, slots=slots,
                          relu=True, join=Join(join, Source.SIDES, base=1,
                                               shift=6 if join == "mul_add" else 0))
    rng = np.random.default_rng(M * N * K)
    ops = random_operands(rng, program, 8)
    side = rng.integers(-128, 128, (M, N))
    images = memory_images((program,), [ops + (side,)])
    assert len(images["sides"]) == 1 + program.dest_words
    core = ComputingCore((program,), init=images)
    assert core.shapes["sides"] == core.shapes["results"]
    cycles, words = core_rtl(core, [0], seed=3)
    y = np.maximum(reference_gemm(program, *ops), 0)
    np.testing.assert_array_equal(read_results(core, program, words),
                                  reference_epilogue(program, y, side))
    assert cycles == [predicted(program) + program.sfu_latency]
    assert program.sfu_latency == {"mul_add": 4, "add": 1}[join]


def test_side_image_layout():
    program = GemmProgram((2, 2, 1), 3, 3, 2, slots=2)
    words = program.side_image(np.arange(9).reshape(3, 3) + 1)
    # Rows 0 and 1 side by side in the slots of word row 0, row 2 alone in word row 1; lanes
    # past the last column 0.
    assert words == [[1, 2, 4, 5], [3, 0, 6, 0], [7, 8, 0, 0], [9, 0, 0, 0]]
    with pytest.raises(ValueError, match=r"^GemmProgram side tensor must have shape "
                                         r"\(1, 3, 3\), not \(3, 2\)$"):
        program.side_image(np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^memory_images needs a side tensor for program 0, "
                                         r"which joins Source.SIDES$"):
        memory_images((GemmProgram((2, 2, 1), 3, 3, 2, join=Join("add", Source.SIDES)),),
                      [(np.zeros((3, 2)), np.zeros((3, 2)), None)])


def test_join_needs_a_source():
    with pytest.raises(ValueError, match=r"^Join source must be Source.RESULTS, "
                                         r"Source.PEER or Source.SIDES, not None$"):
        Join("mul", None)
    with pytest.raises(ValueError, match=r"^Join kind must be one of 'add', 'mul', 'mul_add', "
                                         r"not 'sub'$"):
        Join("sub", Source.RESULTS)
    with pytest.raises(ValueError, match=r"^Join shift must be between 0 and 62 \(0 for 'add'\), "
                                         r"not 3$"):
        Join("add", Source.RESULTS, shift=3)
    with pytest.raises(TypeError, match=r"^GemmProgram join must be a Join or None, not 'mul'$"):
        GemmProgram((1, 4, 1), 1, 4, 4, join="mul")
    with pytest.raises(TypeError, match=r"^GemmProgram softmax must be a SoftmaxLink or None, "
                                        r"not True$"):
        GemmProgram((1, 4, 1), 1, 4, 4, softmax=True)
    with pytest.raises(TypeError, match=r"^Softmax causal must be a bool, not 1$"):
        SoftmaxLink(causal=1)
    with pytest.raises(ValueError, match=r"^GemmProgram activation must be one of 'gelu', "
                                         r"'silu' or None, not 'tanh'$"):
        GemmProgram((1, 4, 1), 1, 4, 4, activation="tanh")


SOFTMAXES = {
    # name: (pea, M, N, K, causal)
    "short-rows": ((4, 8, 1), 3, 4, 5, False),
    "causal": ((4, 4, 1), 4, 4, 3, True),
    "one-row-tiles": ((1, 4, 1), 3, 8, 4, False),
    "long-reduction": ((4, 8, 1), 2, 4, 40, False),
    "rows-arrive-late": ((1, 8, 1), 3, 4, 30, False),
    "reordered-rows": ((4, 4, 1), 3, 8, 5, False),
    "reordered-two-p-tiles": ((4, 4, 1), 7, 12, 3, True),
    "reordered-long-reduction": ((2, 4, 1), 4, 8, 40, False),
}


@pytest.mark.parametrize("name", list(SOFTMAXES))
def test_softmax_on_the_result_link(name):
    pea, M, N, K, causal = SOFTMAXES[name]
    program = GemmProgram(pea, M, N, K, shift=6, softmax=SoftmaxLink(causal=causal))
    rng = np.random.default_rng(sum(map(ord, name)))
    ops = random_operands(rng, program)
    core = ComputingCore((program,), init=memory_images((program,), [ops]))
    cycles, words = core_rtl(core, [0], seed=2)
    scores = reference_gemm(program, *ops)
    expected = numerics.softmax(scores, program.out_format, numerics.default_frac(
        program.out_format), causal=causal)
    np.testing.assert_array_equal(read_results(core, program, words), expected)
    assert cycles == [program.cycles]
