# amaranth: UnusedElaboratable=no
from dataclasses import replace

import numpy as np
import pytest
from amaranth import *
from amaranth.lib import data

from intar_hw.hw.core.window import Window
from intar_hw.hw.core import window_read
from intar_hw.hw.core.window_read import WindowReader
from intar_hw.testbench import get, put, run, seeded


def direct_conv(x, w, stride, padding, dilation):
    """Convolution by its definition (no im2col): ``x`` NCHW, ``w`` (Co, Ci, kh, kw)."""
    n, c, h, wd = x.shape
    co, _, kh, kw = w.shape
    (sy, sx), (py, px), (dy, dx) = stride, padding, dilation
    ho = (h + 2 * py - dy * (kh - 1) - 1) // sy + 1
    wo = (wd + 2 * px - dx * (kw - 1) - 1) // sx + 1
    out = np.zeros((n, co, ho, wo), dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            for ty in range(kh):
                for tx in range(kw):
                    y, xx = oy * sy - py + ty * dy, ox * sx - px + tx * dx
                    if 0 <= y < h and 0 <= xx < wd:
                        out[:, :, oy, ox] += x[:, :, y, xx] @ w[:, :, ty, tx].T
    return out


def direct_conv_transpose(x, w, stride, padding, dilation):
    """Transposed convolution by scattering each input element: ``w`` (Ci, Co, kh, kw)."""
    n, c, h, wd = x.shape
    _, co, kh, kw = w.shape
    (sy, sx), (py, px), (dy, dx) = stride, padding, dilation
    ho, wo = (h - 1) * sy - 2 * py + dy * (kh - 1) + 1, (wd - 1) * sx - 2 * px + dx * (kw - 1) + 1
    out = np.zeros((n, co, ho, wo), dtype=np.int64)
    for iy in range(h):
        for ix in range(wd):
            for i in range(kh):
                for j in range(kw):
                    y, xx = iy * sy - py + i * dy, ix * sx - px + j * dx
                    if 0 <= y < ho and 0 <= xx < wo:
                        out[:, :, y, xx] += x[:, :, iy, ix] @ w[:, :, i, j]
    return out


def maxpool(x, kernel, stride, padding, fill):
    (kh, kw), (sy, sx), (py, px) = kernel, stride, padding
    n, c, h, w = x.shape
    ho, wo = (h + 2 * py - kh) // sy + 1, (w + 2 * px - kw) // sx + 1
    xp = np.full((n, c, h + 2 * py, w + 2 * px), fill, dtype=np.int64)
    xp[:, :, py:py + h, px:px + w] = x
    out = np.empty((n, c, ho, wo), dtype=np.int64)
    for oy in range(ho):
        for ox in range(wo):
            out[:, :, oy, ox] = xp[:, :, oy * sy:oy * sy + kh, ox * sx:ox * sx + kw].max(axis=(2, 3))
    return out


def result_words(S, orientation, slots, lanes):
    """The result layout (.program) of ``S`` as its producer's GEMM result would store it."""
    n, c, h, w = S.shape
    C = S.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    R = C if orientation == "MN" else C.T
    rows, cols = R.shape
    q_tiles = -(-cols // lanes)
    words = []
    for block in range(-(-rows // slots)):
        for t in range(q_tiles):
            word = [0] * (slots * lanes)
            for s in range(slots):
                p = block * slots + s
                for c_ in range(lanes):
                    if p < rows and t * lanes + c_ < cols:
                        word[s * lanes + c_] = int(R[p, t * lanes + c_])
            words.append(word)
    return words, q_tiles


CASES = {
    # name: (Window keyword arguments without layout, transform)
    "square_4x4": dict(images=2, channels=1, height=4, width=4, out_height=4, out_width=4,
                       kernel=3, padding=1),
    "same_3x3": dict(images=1, channels=2, height=5, width=6, out_height=5, out_width=6,
                     kernel=3, padding=1),
    "strided_dilated": dict(images=2, channels=1, height=7, width=6, out_height=3,
                            out_width=2, kernel=(2, 3), stride=(2, 2), padding=(0, 1),
                            dilation=2),
    "transposed": dict(images=1, channels=2, height=3, width=4, out_height=6, out_width=7,
                       kernel=4, transposed=True),
    "transposed_strided": dict(images=1, channels=1, height=3, width=3, out_height=5,
                               out_width=5, kernel=3, stride=2, padding=1, transposed=True),
    "upsampled": dict(images=1, channels=1, height=8, width=6, out_height=8, out_width=6,
                      kernel=3, padding=1, upsample=2),
    "pooled": dict(images=1, channels=2, height=3, width=2, out_height=3, out_width=2,
                   kernel=3, padding=1, pool=(2, 2, 0), source_size=(7, 5), pool_fill=-128),
}


def stored_and_expected(rng, kwargs):
    """A random stored tensor, the window, and the convolution it feeds, computed directly."""
    window = Window(**kwargs)
    S = rng.integers(-128, 128, window.stored)
    x = S
    if window.upsample is not None:
        x = np.repeat(np.repeat(S, window.upsample[0], axis=2), window.upsample[1], axis=3)
    if window.pool is not None:
        x = maxpool(S, *window.pool, window.pool_fill)
    assert x.shape == (window.images, window.channels, window.height, window.width)
    cout = 3
    if window.transposed:
        w = rng.integers(-128, 128, (window.channels, cout) + window.kernel)
        y = direct_conv_transpose(x, w, window.stride, window.padding, window.dilation)
    else:
        w = rng.integers(-128, 128, (cout, window.channels) + window.kernel)
        y = direct_conv(x, w, window.stride, window.padding, window.dilation)
    assert y.shape[2:] == (window.out_height, window.out_width)
    return window, S, w, y


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layout", ["flat", "MN", "NM"])
def test_locate_computes_the_convolution(case, layout):
    rng = np.random.default_rng(7)
    window, S, w, y = stored_and_expected(rng, CASES[case])
    window, words = laid_out(window, S, layout)
    A = window.matrix(words)
    got = A @ window.weights(w).T            # (M, Cout)
    n, co, ho, wo = y.shape
    np.testing.assert_array_equal(got.reshape(n, ho, wo, co).transpose(0, 3, 1, 2), y)


def laid_out(window, S, layout, base=3):
    """``window`` reading ``S`` in ``layout`` from word ``base``, and the memory's words."""
    kwargs = {f: getattr(window, f) for f in window.__dataclass_fields__}
    if layout == "flat":
        window = Window(**{**kwargs, "layout": "flat", "base": base, "word_elements": 5})
        words = window.image(S)
    else:
        slots, lanes = (2, 3) if layout == "MN" else (1, 4)
        body, q_tiles = result_words(S, layout, slots, lanes)
        window = Window(**{**kwargs, "layout": "result", "base": base, "orientation": layout,
                           "slots": slots, "lanes": lanes, "q_tiles": q_tiles})
        words = body
    width = len(words[0])
    return window, [[0] * width for _ in range(base)] + words


def operand_words(A, block, kb, d3):
    """The operand layout of ``A`` (tile * kb + beat; lane r, element k)."""
    M, K = A.shape
    tiles = -(-M // block)
    padded = np.zeros((tiles * block, kb * d3), dtype=np.int64)
    padded[:M, :K] = A
    return padded.reshape(tiles, block, kb, d3).transpose(0, 2, 1, 3).reshape(-1, block, d3)


def pack(words, width):
    """Raw integers of memory words (flat element lists)."""
    out = []
    for word in words:
        raw = 0
        for i, v in enumerate(word):
            raw |= (int(v) & ((1 << width) - 1)) << (i * width)
        out.append(raw)
    return out


def reader_rtl(reader, addresses, *, seed, idle=0.0, backpressure=0.0, writes=(), level=None):
    got = []

    async def start(ctx):
        ctx.set(reader.start, 1)
        ctx.set(reader.stage, len(reader._windows) - 1)
        await ctx.tick()
        ctx.set(reader.start, 0)

    async def source(ctx):
        await ctx.tick()
        await put(ctx, reader.read.req, [{"addr": a} for a in addresses],
                  rng=seeded(seed), idle=idle)

    async def sink(ctx):
        beats = await get(ctx, reader.read.resp, len(addresses), rng=seeded(seed + 1),
                          backpressure=backpressure)
        for beat in beats:
            got.append([[beat.data[r][k] for k in range(len(beat.data[r]))]
                        for r in range(len(beat.data))])

    async def writer(ctx):
        # Word by word, then the level passes it, with gaps.
        rng = seeded(seed + 2)
        for addr, word in writes:
            ctx.set(reader.write.valid, 1)
            ctx.set(reader.write.payload.addr, addr)
            ctx.set(reader.write.payload.data, word)
            await ctx.tick()
            ctx.set(reader.write.valid, 0)
            ctx.set(reader.level, addr + 1)
            for _ in range(rng.randrange(3)):
                await ctx.tick()

    benches = [start, source, sink] + ([writer] if writes else [])
    run(reader, *benches, deadline=40 * len(addresses) + 20 * len(writes) + 100)
    return got


@pytest.mark.parametrize("case", ["same_3x3", "transposed_strided", "upsampled", "pooled"])
@pytest.mark.parametrize("layout,pea", [("flat", (2, 3, 4)), ("NM", (1, 3, 9)),
                                        ("MN", (2, 1, 5))])
def test_reader_serves_the_im2col_words_under_stalls(case, layout, pea):
    rng = np.random.default_rng(3)
    window, S, _, _ = stored_and_expected(rng, CASES[case])
    window, words = laid_out(window, S, layout)
    d1, d2, d3 = pea
    block = d2 if layout == "NM" else d1
    kb = -(-window.K // d3)
    expected = operand_words(window.matrix(words), block, kb, d3)
    elements = len(words[0])
    shape = data.ArrayLayout(signed(8), elements)
    # A program without a window first: the reader serves the one it is started with.
    reader = WindowReader((None, (window, block, kb)), pea=pea, operand_width=8, shape=shape,
                          depth=len(words), init=pack(words, 8))
    addresses = list(range(len(expected)))
    got = reader_rtl(reader, addresses, seed=5, idle=0.3, backpressure=0.3)
    assert got == expected.tolist()


@pytest.mark.parametrize("case", ["same_3x3", "strided_dilated", "pooled", "square_4x4"])
def test_reader_follows_the_fetch_loop_order(case):
    # Each tile's beats once per Q tile, then the next tile (what the operand fetch requests).
    rng = np.random.default_rng(2)
    window, S, _, _ = stored_and_expected(rng, CASES[case])
    window, words = laid_out(window, S, "flat")
    pea, block, d3, q_tiles = (3, 2, 4), 3, 4, 3
    kb = -(-window.K // d3)
    expected = operand_words(window.matrix(words), block, kb, d3)
    tiles = len(expected) // kb
    addresses = [t * kb + b for t in range(tiles) for _ in range(q_tiles) for b in range(kb)]
    shape = data.ArrayLayout(signed(8), len(words[0]))
    reader = WindowReader(((window, block, kb),), pea=pea, operand_width=8, shape=shape,
                          depth=len(words), init=pack(words, 8))
    got = reader_rtl(reader, addresses, seed=4, idle=0.2, backpressure=0.2)
    assert got == [expected[a].tolist() for a in addresses]


def nm_reader(case, seed, **options):
    """A reader of ``CASES[case]`` over a result in ``"NM"`` layout on a (1, 3, 9) array, and the
    operand words it must serve."""
    window, S, _, _ = stored_and_expected(np.random.default_rng(seed), CASES[case])
    window, words = laid_out(window, S, "NM")
    kb = -(-window.K // 9)
    expected = operand_words(window.matrix(words), 3, kb, 9)
    shape = data.ArrayLayout(signed(8), len(words[0]))
    reader = WindowReader(((window, 3, kb),), pea=(1, 3, 9), operand_width=8, shape=shape,
                          depth=len(words), init=pack(words, 8), **options)
    return reader, expected.tolist()


@pytest.mark.parametrize("case", ["same_3x3", "pooled"])
def test_binary_picks_serve_the_same_words(case, monkeypatch):
    # Ports picking among more pairs than window_read.ONE_HOT_PAIRS keep a binary pick code.
    monkeypatch.setattr(window_read, "ONE_HOT_PAIRS", 1)
    reader, expected = nm_reader(case, 7)
    assert reader.plan is not None and max(len(p) for p in reader.plan.pairs) > 1
    got = reader_rtl(reader, list(range(len(expected))), seed=9, idle=0.2, backpressure=0.2)
    assert got == expected


@pytest.mark.parametrize("case", ["same_3x3", "pooled"])
def test_unbanked_reader_serves_the_same_words(case):
    # The copy-per-two-ports storage (what a reader falls back to without a bank layout).
    reader, expected = nm_reader(case, 6, banking=False)
    assert reader.plan is None
    got = reader_rtl(reader, list(range(len(expected))), seed=8, idle=0.2, backpressure=0.2)
    assert got == expected


def test_gated_reader_waits_for_the_words_it_reads():
    rng = np.random.default_rng(4)
    window, S, _, _ = stored_and_expected(rng, CASES["same_3x3"])
    window, words = laid_out(window, S, "flat", base=0)
    pea = (1, 4, 9)
    kb = -(-window.K // 9)
    expected = operand_words(window.matrix(words), 4, kb, 9)
    shape = data.ArrayLayout(signed(8), len(words[0]))
    reader = WindowReader(((window, 4, kb),), pea=pea, operand_width=8, shape=shape,
                          depth=len(words), gated=True)
    got = reader_rtl(reader, list(range(len(expected))), seed=9,
                     writes=list(enumerate(words)))
    assert got == expected.tolist()


def test_window_checks_its_parameters():
    base = CASES["same_3x3"]
    with pytest.raises(TypeError, match="kernel"):
        Window(**{**base, "kernel": 2.5})
    with pytest.raises(ValueError, match="stride"):
        Window(**{**base, "stride": 0})
    with pytest.raises(ValueError, match="source_size"):
        Window(**{**base, "pool": (2, 2, 0)})
    with pytest.raises(ValueError, match="layout"):
        Window(**{**base, "layout": "tiled"})
    with pytest.raises(ValueError, match="images"):
        Window(**{**base, "images": 0})


# --- convolutions on a computing core ------------------------------------------------------------

from intar_hw import numerics                                       # noqa: E402
from intar_hw.hw.core import (ComputingCore, GemmProgram, OperandRead, Source,  # noqa: E402
                              memory_images)
from intar_hw.schedule import cost                                  # noqa: E402

from test_core import core_rtl, read_results                        # noqa: E402


def conv_program(pea, orientation, window, cout, *, source, base, dest_base, bias_base,
                 shift):
    return GemmProgram(pea, window.M, cout, window.K, orientation=orientation,
                       a=OperandRead(source, window.base, window=window),
                       b=OperandRead(Source.WEIGHTS, base), bias_base=bias_base, shift=shift,
                       relu=True, dest_base=dest_base)


def requant_relu(acc, shift):
    return np.maximum(numerics.requantize(acc, shift, numerics.INT8), 0).astype(np.int64)


@pytest.mark.parametrize("pea,orientation", [((1, 3, 9), "NM"), ((2, 2, 4), "MN")])
def test_core_runs_a_convolution_chain(pea, orientation):
    """conv -> (upsample) conv -> (max-pool) conv on one core: the first reads the input from
    its activations memory, the others the previous result from the result memory; all
    bit-exact, each program exactly its predicted cycles."""
    rng = np.random.default_rng(11)
    d1, d2, d3 = pea
    block = d1 if orientation == "MN" else d2
    cin, c1, c2, c3, side = 2, 2, 1, 2, 3
    flat = Window(images=1, channels=cin, height=side, width=side, out_height=side,
                  out_width=side, kernel=3, padding=1, word_elements=block * d3)
    p1 = conv_program(pea, orientation, flat, c1, source=Source.ACTIVATIONS, base=0,
                      dest_base=0, bias_base=0, shift=7)
    up = Window(images=1, channels=c1, height=2 * side, width=2 * side, out_height=2 * side,
                out_width=2 * side, kernel=3, padding=1, upsample=2, layout="result",
                base=0, orientation=orientation, lanes=d2, q_tiles=p1.q_tiles)
    p2 = conv_program(pea, orientation, up, c2, source=Source.RESULTS, base=p1.b_words,
                      dest_base=p1.dest_words, bias_base=p1.bias_words, shift=6)
    pooled = Window(images=1, channels=c2, height=side, width=side, out_height=side - 1,
                    out_width=side - 1, kernel=2, pool=(2, 2, 0), source_size=(2 * side,
                                                                                2 * side),
                    pool_fill=-128, layout="result", base=p2.dest_base,
                    orientation=orientation, lanes=d2, q_tiles=p2.q_tiles)
    p3 = conv_program(pea, orientation, pooled, c3, source=Source.RESULTS,
                      base=p2.b.base + p2.b_words, dest_base=p2.dest_base + p2.dest_words,
                      bias_base=None, shift=5)
    programs = (p1, p2, p3)

    x = rng.integers(-128, 128, (1, cin, side, side))
    weights = [rng.integers(-128, 128, shape) for shape in
               ((c1, cin, 3, 3), (c2, c1, 3, 3), (c3, c2, 2, 2))]
    biases = [rng.integers(-2000, 2000, c1), rng.integers(-2000, 2000, c2), None]
    operands = [(x, flat.weights(weights[0]), biases[0]),
                (None, up.weights(weights[1]), biases[1]),
                (None, pooled.weights(weights[2]), None)]
    images = memory_images(programs, operands)
    core = ComputingCore(programs, init=images)
    cycles, words = core_rtl(core, [0, 1, 2], seed=3)

    def out(program, acc, bias):
        acc = acc.transpose(0, 2, 3, 1).reshape(program.M, -1)
        if bias is not None:
            acc = acc + bias
        return requant_relu(acc, program.shift)

    h1 = out(p1, direct_conv(x, weights[0], (1, 1), (1, 1), (1, 1)), biases[0])
    s1 = h1.reshape(1, side, side, c1).transpose(0, 3, 1, 2)
    u1 = np.repeat(np.repeat(s1, 2, axis=2), 2, axis=3)
    h2 = out(p2, direct_conv(u1, weights[1], (1, 1), (1, 1), (1, 1)), biases[1])
    s2 = h2.reshape(1, 2 * side, 2 * side, c2).transpose(0, 3, 1, 2)
    q2 = maxpool(s2, (2, 2), (2, 2), (0, 0), -128)
    h3 = out(p3, direct_conv(q2, weights[2], (1, 1), (0, 0), (1, 1)), None)
    for program, expected in zip(programs, (h1, h2, h3)):
        np.testing.assert_array_equal(read_results(core, program, words)[0], expected)
    assert cycles == [p.cycles for p in programs]
    assert cycles[2] == (cost.core_cycles(pea, orientation, 1, p3.M, p3.N, p3.K)[0]
                         + cost.ARRAY_LATENCY)


def test_conv_core_exports_verilog():
    from intar_hw.flow.verilog import to_verilog
    pea = (1, 3, 9)
    window = Window(images=1, channels=1, height=3, width=3, out_height=3, out_width=3,
                    kernel=3, padding=1, word_elements=27)
    program = conv_program(pea, "NM", window, 1, source=Source.ACTIVATIONS, base=0,
                           dest_base=0, bias_base=None, shift=7)
    text = to_verilog(ComputingCore((program,)))
    assert "activations_window" in text and "activations_write__valid" in text


def test_program_checks_its_window():
    window = Window(images=1, channels=1, height=3, width=3, out_height=3, out_width=3,
                    kernel=3, padding=1, word_elements=27)
    read = OperandRead(Source.ACTIVATIONS, window=window)
    with pytest.raises(ValueError, match=r"^GemmProgram a.window reads a 9 x 9 im2col matrix, "
                                         r"not A of 1 x 8 x 9$"):
        GemmProgram((1, 3, 9), M=8, N=1, K=9, orientation="NM", a=read)
    with pytest.raises(ValueError, match=r"^GemmProgram a.window in 'flat' layout needs words "
                                         r"of 9 elements"):
        GemmProgram((1, 3, 9), M=9, N=1, K=9, a=read)
    with pytest.raises(ValueError, match=r"^GemmProgram a.window reads the core's own result "
                                         r"memory: 1 slots of 3 lanes, not 1 of 4$"):
        GemmProgram((1, 3, 9), M=9, N=1, K=9, orientation="NM",
                    a=OperandRead(Source.RESULTS, window=replace(window, layout="result",
                                                                 lanes=4)))
    with pytest.raises(ValueError, match=r"^GemmProgram b.window, b.gather_tiles and "
                                         r"b.tile_stride must be None, False and 1"):
        GemmProgram((1, 3, 9), M=9, N=1, K=9, orientation="NM", a=OperandRead(Source.WEIGHTS),
                    b=read)


@pytest.mark.parametrize("orientation, deal", [("NM", "Q"), ("MN", "P"), ("MN", "Q")])
@pytest.mark.parametrize("position", [0, 1])
def test_window_over_a_dealt_result(orientation, deal, position):
    """A convolution dealt by pixel tiles over two cores reads an input dealt over the same two
    cores: its parts sit in the reader's copy of its own result memory and, past peer_offset, of
    its peer's. The rows it computes equal those of the direct convolution."""
    rng = np.random.default_rng(3)
    S = rng.integers(-128, 128, (1, 4, 5, 5))
    W = rng.integers(-128, 128, (3, 4, 3, 3))
    lanes, unit = 2, 1
    whole, q_tiles = result_words(S, orientation, 1, lanes)
    # Deal the whole layout round-robin: by Q tiles, or by word rows (unit of one).
    p_rows = len(whole) // q_tiles
    own, peer = [], []
    for r in range(p_rows):
        for q in range(q_tiles):
            part = q % 2 if deal == "Q" else (r // unit) % 2
            [own, peer][part].append(whole[r * q_tiles + q])
    part_q = (-(-q_tiles // 2), q_tiles // 2) if deal == "Q" else (q_tiles, q_tiles)
    offset = 40
    memory = own + [[0] * lanes] * (offset - len(own)) + peer
    block = 3
    window = Window(images=1, channels=4, height=5, width=5, out_height=5, out_width=5,
                    kernel=3, padding=1, layout="result", orientation=orientation, lanes=lanes,
                    q_tiles=q_tiles, parts=((False, 0, part_q[0]), (True, 0, part_q[1])),
                    deal="Q" if deal == "Q" else ("P", unit), peer_offset=offset,
                    rows=(block, 2, position))
    expected = direct_conv(S, W, (1, 1), (1, 1), (1, 1)).transpose(0, 2, 3, 1).reshape(25, 3)
    mine = [m for u in range(position, -(-25 // block), 2)
            for m in range(u * block, min(25, (u + 1) * block))]
    assert window.M == len(mine)
    np.testing.assert_array_equal(window.matrix(memory) @ window.weights(W).T, expected[mine])


def test_window_parts_are_checked():
    geometry = dict(images=1, channels=1, height=3, width=3, out_height=3, out_width=3, kernel=3)
    with pytest.raises(ValueError, match="parts need the 'result' layout"):
        Window(**geometry, parts=((False, 0, 1),))
    with pytest.raises(TypeError, match="parts must be a tuple of"):
        Window(**geometry, layout="result", parts=((0, 0, 1),))
    with pytest.raises(ValueError, match="deal of several parts"):
        Window(**geometry, layout="result", parts=((False, 0, 1), (True, 0, 1)))
    with pytest.raises(ValueError, match="rows must be"):
        Window(**geometry, rows=(4, 2, 3))
