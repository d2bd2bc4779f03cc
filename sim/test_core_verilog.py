# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`ComputingCore`: memories loaded through its host write ports,
programs run by ``start``/``stage``, results read through ``results_read``, compared with
``requantize(A @ B^T + bias)``; each run takes exactly :attr:`GemmProgram.cycles`."""

import numpy as np
import pytest

from intar_hw import numerics
from intar_hw.flow.cocotb_runner import run_cocotb
from intar_hw.hw.core import ComputingCore, GemmProgram, OperandRead, Source, memory_images
from vectors import SIM_DIR, bits, input_ports


def reference_gemm(program, A, B, bias):
    """``(batch, M, N)``: ``requantize(A @ B^T + bias, shift, fmt)``, then ReLU if asked."""
    acc = np.einsum("bmk,bnk->bmn", A.astype(np.int64), B.astype(np.int64))
    if bias is not None:
        acc = acc + np.asarray(bias, dtype=np.int64)
    y = numerics.requantize(acc, program.shift, program.out_format).astype(np.int64)
    return np.maximum(y, 0) if program.relu else y


def random_operands(rng, program, width):
    """Random ``A``, ``B`` (extremes in the first rows) and an int32-range bias or ``None``."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    A = rng.integers(lo, hi + 1, (program.batch, program.M, program.K))
    B = rng.integers(lo, hi + 1, (program.batch, program.N, program.K))
    A[:, 0, :] = lo
    B[:, 0, :] = lo
    if program.N > 1:
        B[:, -1, :] = hi
    bias = None
    if program.bias_base is not None:
        bias = rng.integers(-(1 << 14), 1 << 14, program.N)
        bias[0] = numerics.INT32.lo
    return A, B, bias


def with_garbage(rng, programs, images, width):
    """``images`` with every position no program reads as data replaced by random values."""
    lo, hi = -(1 << (width - 1)), 1 << (width - 1)
    used = {name: np.zeros(np.shape(words), dtype=bool) for name, words in images.items()}
    for p in programs:
        d3 = p.pea[2]
        for read, rows, block in ((p.a, p.M, p.dm), (p.b, p.N, p.dn)):
            source, base, blocks = read.source, read.base, -(-rows // block)
            for b in range(p.batch):
                for i in range(blocks):
                    for kk in range(p.kb):
                        word = base + (b * blocks + i) * p.kb + kk
                        used[source.value][word, :min(block, rows - i * block),
                                           :min(d3, p.K - kk * d3)] = True
        if p.bias_base is not None:
            for n in range(p.N):
                word, lane = (n // p.pea[1], n % p.pea[1]) if p.orientation == "MN" else (n, 0)
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


def result_words(program, C):
    """The ``dest_words`` words of the result ``C`` (``(batch, M, N)``), padding lanes 0."""
    d2 = program.pea[1]
    R = C if program.orientation == "MN" else C.transpose(0, 2, 1)
    rows = np.zeros((program.batch, program.p_rows, program.q_tiles * d2), dtype=np.int64)
    rows[:, :, :program.q_rows] = R
    words = rows.reshape(-1, d2)
    np.testing.assert_array_equal(program.result_from_words(words), C)
    return words


def check(tmp_path, programs, stages, *, seed, width=8, poke=None):
    rng = np.random.default_rng(seed)
    operands = [random_operands(rng, p, width) for p in programs]
    images = with_garbage(rng, programs, memory_images(programs, operands), width)
    core = ComputingCore(programs, operand_width=width)
    loads = {}
    for name, words in images.items():
        layout = getattr(core, f"{name}_write").payload.shape()
        order = rng.permutation(len(words)).tolist()          # any order: the host's choice
        loads[name] = [bits(layout, {"addr": a, "data": words[a]}) for a in order]
    results = np.zeros((core.depths["results"], core.pea[1]), dtype=np.int64)
    for s in stages:
        p = programs[s]
        results[p.dest_base:p.dest_base + p.dest_words] = result_words(
            p, reference_gemm(p, *operands[s]))
    word = core.shapes["results"]
    expected_words = [bits(word, w) for w in results.tolist()]
    run_cocotb(core, toplevel="computing_core", test_module="core_cocotb", test_dir=SIM_DIR,
               build_dir=tmp_path, parameters={
                   "drive": {port: 0 for port in input_ports(core)},
                   "loads": loads, "stages": stages,
                   "expected_cycles": [programs[s].cycles for s in stages],
                   "expected_words": expected_words, "poke": poke,
                   "seed": seed, "idle": 0.3, "backpressure": 0.4})


SHAPES = {
    # name: (pea, orientation, batch, M, N, K, epilogue)
    "square-bias-relu": ((2, 2, 1), "MN", 1, 4, 4, 4, dict(bias_base=0, shift=4, relu=True)),
    "ragged-mnk": ((2, 3, 2), "MN", 1, 5, 4, 5, dict(shift=6)),
    "nm-ragged": ((3, 2, 1), "NM", 1, 5, 4, 3, dict(bias_base=1, shift=5)),
    "depth-4": ((2, 2, 4), "MN", 1, 3, 4, 10, dict(shift=7, relu=True)),
    "batch-3-nm": ((2, 3, 2), "NM", 3, 2, 3, 3, dict(shift=4, out_format="int16")),
    "larger-4x4x2": ((4, 4, 2), "MN", 1, 9, 10, 13, dict(bias_base=0, shift=9, relu=True)),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_gemm(tmp_path, name):
    pea, orientation, batch, M, N, K, epilogue = SHAPES[name]
    program = GemmProgram(pea, M, N, K, batch=batch, orientation=orientation,
                          a=OperandRead(Source.ACTIVATIONS, 1), b=OperandRead(Source.WEIGHTS, 2),
                          dest_base=3, **epilogue)
    check(tmp_path, (program,), [0], seed=sum(map(ord, name)))


@pytest.mark.parametrize("width", [4, 16])
def test_operand_widths(tmp_path, width):
    program = GemmProgram((2, 3, 2), 3, 4, 5, bias_base=0, shift=width,
                          out_format=f"int{width}")
    check(tmp_path, (program,), [0], seed=width, width=width)


def test_two_programs_back_to_back(tmp_path):
    # Different shapes, orientations, sources, bases and epilogues on one core.
    p0 = GemmProgram((2, 3, 2), 5, 4, 5, dest_base=0, bias_base=0, shift=6, relu=True)
    p1 = GemmProgram((2, 3, 2), 3, 7, 3, orientation="NM", a=OperandRead(Source.WEIGHTS, 8),
                     b=OperandRead(Source.ACTIVATIONS, 12), dest_base=10, shift=3,
                     out_format="int16")
    check(tmp_path, (p0, p1), [1, 0, 1], seed=7)


def test_start_ignored_while_busy(tmp_path):
    # A start of the other program during a run changes nothing: its results stay unwritten.
    p0 = GemmProgram((2, 2, 1), 3, 2, 3, shift=3)
    p1 = GemmProgram((2, 2, 1), 2, 2, 2, dest_base=6)
    check(tmp_path, (p0, p1), [0], seed=11, poke=1)
