# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.back import rtlil

import intar_hw as ih
from intar_hw.hw.sfu.window import MaxPool, Upsample
from intar_hw.numerics import INT4, INT8, INT16
from intar_hw.testbench import flow, get, put, run, seeded


# --- golden references: one-operator graphs, NCHW in and out --------------------------------------

def reference_maxpool(x, kernel, stride, padding, fmt):
    g = ih.Graph("g")
    g.maxpool(g.input("x", x.shape, fmt=fmt.name), kernel, stride=stride, padding=padding,
              name="y")
    return ih.reference(g, {"x": x}, {})["y"]


def reference_upsample(x, factor, fmt):
    g = ih.Graph("g")
    g.upsample(g.input("x", x.shape, fmt=fmt.name), factor, name="y")
    return ih.reference(g, {"x": x}, {})["y"]


# --- stream harness: NCHW tensors as raster-order, channels-last beats ----------------------------

def to_beats(x, lanes):
    """Beats of an ``(N, C, H, W)`` tensor: images in raster order, channels last."""
    flat = np.asarray(x, dtype=np.int64).transpose(0, 2, 3, 1).reshape(-1, lanes).tolist()
    per_image = len(flat) // x.shape[0]
    return [{"data": row, "last": int((n + 1) % per_image == 0)} for n, row in enumerate(flat)]


def from_beats(payloads, shape, lanes):
    """The ``(N, C, H, W)`` tensor and ``last`` bits of received beats."""
    n, c, h, w = shape
    values = np.array([[p.data[k] for k in range(lanes)] for p in payloads], dtype=np.int64)
    return values.reshape(n, h, w, c).transpose(0, 3, 1, 2), [p.last for p in payloads]


def stream_rtl(dut, x, out_shape, *, seed, idle, backpressure):
    beats = to_beats(x, dut.lanes)
    count = int(np.prod(out_shape)) // dut.lanes
    received = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, count, rng=seeded(seed + 1),
                                  backpressure=backpressure))
        ctx.set(dut.o.ready, 1)
        for _ in range(8):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, source, sink, deadline=30 * (len(beats) + count) + 200,
        vcd=f"{type(dut).__name__}.vcd")
    out, lasts = from_beats(received, out_shape, dut.lanes)
    per_image = count // out_shape[0]
    assert lasts == [int((n + 1) % per_image == 0) for n in range(count)]
    return out


def random_images(fmt, shape, seed):
    x = np.random.default_rng(seed).integers(fmt.lo, fmt.hi + 1, shape)
    x[-1] = fmt.lo      # an image of minima: padding, also the minimum, must not leak in
    return x


# --- max pooling ----------------------------------------------------------------------------------

POOLS = [
    # (height, width, channels, kernel, stride, padding, lanes, format)
    (4, 4, 2, 2, None, 0, 1, INT8),           # cnn4l's 2x2
    (5, 5, 4, 2, None, 0, 2, INT8),           # odd sizes: the last row and column are dropped
    (5, 6, 1, 3, 2, 1, 1, INT8),              # ResNet's 3x3/2 with padding
    (5, 5, 4, 3, 1, 1, 2, INT16),             # overlapping windows in both directions
    (4, 5, 2, (2, 3), (1, 2), (1, 1), 1, INT4),
    (6, 5, 3, 5, 1, 2, 3, INT8),              # SPP's 5x5/1
    (3, 3, 1, 1, 2, 0, 1, INT8),              # stride above the kernel: rows are skipped
    (1, 1, 1, 1, None, 0, 1, INT8),
]


@pytest.mark.parametrize("height, width, channels, kernel, stride, padding, lanes, fmt", POOLS)
def test_maxpool_with_stalls(height, width, channels, kernel, stride, padding, lanes, fmt):
    seed = height * 100 + width * 10 + channels
    dut = MaxPool(height, width, channels, kernel, stride=stride, padding=padding, lanes=lanes,
                  format=fmt)
    x = random_images(fmt, (3, channels, height, width), seed)
    want = reference_maxpool(x, kernel, stride, padding, fmt)
    assert want.shape[2:] == (dut.out_height, dut.out_width)
    out = stream_rtl(dut, x, want.shape, seed=seed, idle=0.3, backpressure=0.5)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("height, width, channels, kernel, stride, padding, lanes, fmt", POOLS)
def test_maxpool_cycles(height, width, channels, kernel, stride, padding, lanes, fmt):
    dut = MaxPool(height, width, channels, kernel, stride=stride, padding=padding, lanes=lanes,
                  format=fmt)
    images = 2
    x = random_images(fmt, (images, channels, height, width), 0)
    count = images * dut.out_height * dut.out_width * channels // lanes
    taken, given = flow(dut, to_beats(x, lanes), count)
    assert given[-1] - taken[0] == dut.cycles(images)
    # The second image follows the first after exactly image_cycles.
    assert given[count // 2] - given[0] == dut.image_cycles


def test_maxpool_derived_values():
    dut = MaxPool(8, 8, 16, 2, lanes=4)
    assert (dut.out_height, dut.out_width, dut.virtual_height, dut.virtual_width) == (4, 4, 8, 8)
    assert dut.image_cycles == 8 * 8 * 4               # one beat per cycle: no virtual pixels
    assert dut.storage_bytes == (1 + 1 * 4) * 16
    padded = MaxPool(5, 5, 1, 3, stride=2, padding=1)
    assert (padded.out_height, padded.virtual_height) == (3, 6)   # one row of bottom padding
    assert padded.image_cycles == 6 * 6
    assert padded.storage_bytes == 2 + 2 * 3


# --- upsampling -----------------------------------------------------------------------------------

UPSAMPLES = [
    # (height, width, channels, factor, lanes, format)
    (3, 4, 2, 2, 1, INT8),
    (3, 4, 4, (2, 3), 2, INT16),
    (2, 3, 1, 1, 1, INT8),
    (2, 3, 2, (1, 2), 1, INT4),
    (2, 3, 2, (3, 1), 2, INT8),
    (1, 1, 1, 2, 1, INT8),
]


@pytest.mark.parametrize("height, width, channels, factor, lanes, fmt", UPSAMPLES)
def test_upsample_with_stalls(height, width, channels, factor, lanes, fmt):
    seed = height * 100 + width * 10 + channels
    dut = Upsample(height, width, channels, factor, lanes=lanes, format=fmt)
    x = random_images(fmt, (3, channels, height, width), seed)
    want = reference_upsample(x, factor, fmt)
    assert want.shape[2:] == (dut.out_height, dut.out_width)
    out = stream_rtl(dut, x, want.shape, seed=seed, idle=0.3, backpressure=0.5)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("height, width, channels, factor, lanes, fmt", UPSAMPLES)
def test_upsample_cycles(height, width, channels, factor, lanes, fmt):
    dut = Upsample(height, width, channels, factor, lanes=lanes, format=fmt)
    images = 2
    x = random_images(fmt, (images, channels, height, width), 0)
    count = images * dut.image_cycles
    taken, given = flow(dut, to_beats(x, lanes), count)
    assert given[-1] - taken[0] == dut.cycles(images)
    assert given[0] - taken[0] == dut.latency
    assert given[-1] - given[0] == count - 1         # one beat per cycle throughout


def test_upsample_derived_values():
    dut = Upsample(224, 224, 64, 2, lanes=8)
    assert (dut.out_height, dut.out_width, dut.image_cycles) == (448, 448, 448 * 448 * 8)
    assert dut.storage_bytes == 2 * 224 * 64


@pytest.mark.parametrize("dut", [
    lambda: MaxPool(5, 5, 4, 3, stride=2, padding=1, lanes=2),
    lambda: Upsample(3, 4, 4, (2, 3), lanes=2),
])
def test_converts_without_arithmetic_units(dut):
    # Counters and compares only: no multiplier or divider.
    rtl = rtlil.convert(dut())
    for cell in ("$mul", "$div", "$mod", "$divfloor", "$modfloor"):
        assert cell not in rtl


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, args, kwargs, error, message", [
    ("height", ("4", 4, 1, 2), {}, TypeError, r"^MaxPool height must be an integer, not '4'$"),
    ("height", (0, 4, 1, 2), {}, ValueError, r"^MaxPool height must be a positive integer, "
                                             r"not 0$"),
    ("width", (4, 4.0, 1, 2), {}, TypeError, r"^MaxPool width must be an integer, not 4\.0$"),
    ("width", (4, -1, 1, 2), {}, ValueError, r"^MaxPool width must be a positive integer, "
                                             r"not -1$"),
    ("channels", (4, 4, None, 2), {}, TypeError, r"^MaxPool channels must be an integer, "
                                                 r"not None$"),
    ("channels", (4, 4, 6, 2), {"lanes": 4}, ValueError,
     r"^MaxPool channels must be a positive multiple of lanes \(4\), not 6$"),
    ("lanes", (4, 4, 4, 2), {"lanes": "2"}, TypeError, r"^MaxPool lanes must be an integer, "
                                                       r"not '2'$"),
    ("lanes", (4, 4, 4, 2), {"lanes": 0}, ValueError, r"^MaxPool lanes must be a positive "
                                                      r"integer, not 0$"),
    ("kernel", (4, 4, 1, (2, 2, 2)), {}, TypeError,
     r"^MaxPool kernel must be an integer or a pair of integers, not \(2, 2, 2\)$"),
    ("kernel", (4, 4, 1, (0, 2)), {}, ValueError, r"^MaxPool kernel must be positive, "
                                                  r"not \(0, 2\)$"),
    ("kernel", (2, 4, 1, 3), {}, ValueError,
     r"^MaxPool kernel \(3, 3\) must fit the 2x4 image padded by \(0, 0\)$"),
    ("stride", (4, 4, 1, 2), {"stride": 1.0}, TypeError,
     r"^MaxPool stride must be an integer or a pair of integers, not 1\.0$"),
    ("stride", (4, 4, 1, 2), {"stride": 0}, ValueError, r"^MaxPool stride must be positive, "
                                                        r"not 0$"),
    ("padding", (4, 4, 1, 2), {"padding": "1"}, TypeError,
     r"^MaxPool padding must be an integer or a pair of integers, not '1'$"),
    ("padding", (4, 4, 1, 2), {"padding": -1}, ValueError,
     r"^MaxPool padding must be non-negative, not -1$"),
    ("padding", (4, 4, 1, 3), {"padding": (1, 2)}, ValueError,
     r"^MaxPool padding must be at most half the kernel \(3, 3\), not \(1, 2\)$"),
    ("format", (4, 4, 1, 2), {"format": 8.5}, TypeError,
     r"^MaxPool format must be a Format, a name like 'int8' or a width, not 8\.5$"),
    ("format", (4, 4, 1, 2), {"format": "int1"}, ValueError,
     r"^MaxPool format must be a format of 2 to 64 bits, not 'int1'$"),
])
def test_maxpool_errors(name, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        MaxPool(*args, **kwargs)


@pytest.mark.parametrize("name, args, kwargs, error, message", [
    ("height", (4.5, 4, 1, 2), {}, TypeError, r"^Upsample height must be an integer, not 4\.5$"),
    ("height", (0, 4, 1, 2), {}, ValueError, r"^Upsample height must be a positive integer, "
                                             r"not 0$"),
    ("width", (4, True, 1, 2), {}, TypeError, r"^Upsample width must be an integer, not True$"),
    ("width", (4, 0, 1, 2), {}, ValueError, r"^Upsample width must be a positive integer, "
                                            r"not 0$"),
    ("channels", (4, 4, "1", 2), {}, TypeError, r"^Upsample channels must be an integer, "
                                                r"not '1'$"),
    ("channels", (4, 4, 3, 2), {"lanes": 2}, ValueError,
     r"^Upsample channels must be a positive multiple of lanes \(2\), not 3$"),
    ("lanes", (4, 4, 4, 2), {"lanes": None}, TypeError, r"^Upsample lanes must be an integer, "
                                                        r"not None$"),
    ("lanes", (4, 4, 4, 2), {"lanes": -2}, ValueError, r"^Upsample lanes must be a positive "
                                                       r"integer, not -2$"),
    ("factor", (4, 4, 1, 2.0), {}, TypeError,
     r"^Upsample factor must be an integer or a pair of integers, not 2\.0$"),
    ("factor", (4, 4, 1, (2, 0)), {}, ValueError, r"^Upsample factor must be positive, "
                                                  r"not \(2, 0\)$"),
    ("format", (4, 4, 1, 2), {"format": None}, TypeError,
     r"^Upsample format must be a Format, a name like 'int8' or a width, not None$"),
    ("format", (4, 4, 1, 2), {"format": 65}, ValueError,
     r"^Upsample format must be a format of 2 to 64 bits, not 65$"),
])
def test_upsample_errors(name, args, kwargs, error, message):
    with pytest.raises(error, match=message):
        Upsample(*args, **kwargs)
