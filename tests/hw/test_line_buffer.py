# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.back import rtlil
from numpy.lib.stride_tricks import sliding_window_view

from intar_hw.hw.address_generator import AddressGenerator
from intar_hw.hw.line_buffer import LineBuffer
from intar_hw.testbench import flow, get, put, run, seeded


def reference_windows(x, kernel, stride, padding, dilation):
    """im2col of channels-last images ``(N, H, W, C)``: ``(N, out_y, out_x, ky * kx * C)``."""
    (kh, kw), (sy, sx), (py, px), (dy, dx) = kernel, stride, padding, dilation
    padded = np.pad(x, ((0, 0), (py, py), (px, px), (0, 0)))
    span = (dy * (kh - 1) + 1, dx * (kw - 1) + 1)
    windows = sliding_window_view(padded, span, axis=(1, 2))   # (N, Y, X, C, span_y, span_x)
    windows = windows[:, ::sy, ::sx, :, ::dy, ::dx]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(*windows.shape[:3], -1)


def to_beats(x, lanes):
    return [{"data": row, "last": 0} for row in
            np.asarray(x, dtype=np.int64).reshape(-1, lanes).tolist()]


def line_buffer_rtl(dut, x, *, seed, idle, backpressure):
    """Stream images ``(N, H, W, C)`` through ``dut``; return the windows and ``last`` bits."""
    beats = to_beats(x, dut.lanes)
    count = x.shape[0] * dut.image_beats
    received = []

    async def source(ctx):
        await put(ctx, dut.i, beats, rng=seeded(seed), idle=idle)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, count, rng=seeded(seed + 1),
                                  backpressure=backpressure))
        ctx.set(dut.o.ready, 1)
        for _ in range(4):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, source, sink, deadline=30 * (len(beats) + count) + 200, vcd="line_buffer.vcd")
    values = np.array([[p.data[n] for n in range(dut.lanes)] for p in received], dtype=np.int64)
    windows = values.reshape(x.shape[0], dut.out_height, dut.out_width, -1)
    return windows, [p.last for p in received]


CASES = [
    # (height, width, channels, kernel, stride, padding, dilation, lanes, buffer_rows)
    (4, 4, 2, 3, 1, 1, 1, 1, None),             # 3x3 "same"
    (5, 6, 4, 3, 1, 1, 1, 2, None),
    (6, 5, 2, 3, 2, 1, 1, 1, None),             # stride 2: band + 2 rows by default
    (6, 5, 2, 3, 2, 1, 1, 1, 3),                # stride 2 with only the band: slower, exact
    (7, 7, 1, 3, 1, 2, 2, 1, None),             # dilation 2
    (5, 4, 2, (2, 3), (1, 2), (0, 1), (2, 1), 1, None),
    (3, 4, 1, 3, 1, 3, 1, 1, None),             # padding wider than the band: all-zero windows
    (4, 4, 1, 1, 2, 0, 1, 1, None),             # 1x1 stride 2: rows that no window needs
    (6, 6, 4, 5, 1, 2, 1, 2, 6),                # the whole image
    (1, 1, 1, 1, 1, 0, 1, 1, None),
]


@pytest.mark.parametrize("height, width, channels, kernel, stride, padding, dilation, lanes, "
                         "buffer_rows", CASES)
def test_windows_with_stalls(height, width, channels, kernel, stride, padding, dilation, lanes,
                             buffer_rows):
    seed = height * 100 + width * 10 + channels
    dut = LineBuffer(height, width, channels, kernel, stride=stride, padding=padding,
                     dilation=dilation, lanes=lanes, buffer_rows=buffer_rows)
    x = np.random.default_rng(seed).integers(-128, 128, (3, height, width, channels))
    want = reference_windows(x, dut.kernel, dut.stride, dut.padding, dut.dilation)
    assert want.shape[1:] == (dut.out_height, dut.out_width, dut.window_beats * lanes)
    windows, lasts = line_buffer_rtl(dut, x, seed=seed, idle=0.3, backpressure=0.5)
    np.testing.assert_array_equal(windows, want)
    assert lasts == [int((n + 1) % dut.window_beats == 0) for n in range(len(lasts))]


def test_order_is_the_address_generators():
    # The windows are what a core would read with AddressGenerator.conv2d_window.
    shape, kernel, stride, padding, dilation = (5, 6, 2), 3, 2, 1, (1, 2)
    walk = AddressGenerator.conv2d_window(*shape, kernel, stride=stride, padding=padding,
                                          dilation=dilation).sequence()
    x = np.random.default_rng(1).integers(-128, 128, (1, *shape))
    want = np.array([x.flat[addr] if valid else 0 for addr, valid in walk])
    dut = LineBuffer(*shape, kernel, stride=stride, padding=padding, dilation=dilation)
    windows, _ = line_buffer_rtl(dut, x, seed=1, idle=0.2, backpressure=0.2)
    np.testing.assert_array_equal(windows.reshape(-1), want)


@pytest.mark.parametrize("height, width, channels, kernel, stride, padding, dilation, lanes", [
    (4, 4, 2, 3, 1, 1, 1, 1),
    (5, 6, 4, 3, 1, 1, 1, 2),
    (9, 8, 2, 3, 2, 1, 1, 1),
    (9, 8, 2, 3, 2, 0, 1, 1),
    (8, 8, 1, 3, 3, 1, 1, 1),
    (7, 7, 1, 3, 1, 2, 2, 1),
    (8, 8, 1, (3, 1), 1, (1, 0), 1, 1),
    (6, 6, 4, 5, 1, 2, 1, 2),
    (3, 4, 1, 3, 1, 3, 1, 1),
])
def test_cycles_formula(height, width, channels, kernel, stride, padding, dilation, lanes):
    dut = LineBuffer(height, width, channels, kernel, stride=stride, padding=padding,
                     dilation=dilation, lanes=lanes)
    x = np.random.default_rng(0).integers(-128, 128, (1, height, width, channels))
    taken, given = flow(dut, to_beats(x, lanes), dut.image_beats)
    assert given[-1] - taken[0] == dut.cycles()
    assert given[-1] - given[0] == dut.image_beats - 1      # no gap once the first row is in


def test_converts_without_arithmetic_units():
    # Ring addresses move by constants: no multiplier, divider or modulo.
    rtl = rtlil.convert(LineBuffer(5, 6, 2, 3, stride=2, padding=1, dilation=(1, 2), lanes=2))
    for cell in ("$mul", "$div", "$mod", "$divfloor", "$modfloor"):
        assert cell not in rtl


def test_derived_values():
    dut = LineBuffer(224, 224, 64, 3, padding=1, lanes=8)
    assert (dut.out_height, dut.out_width, dut.band_rows, dut.first_rows) == (224, 224, 3, 2)
    assert dut.buffer_rows == 4
    assert dut.storage_bytes == 4 * 224 * 64
    assert dut.window_beats == 9 * 8
    strided = LineBuffer(9, 8, 2, 3, stride=2, dilation=1)
    assert (strided.band_rows, strided.buffer_rows, strided.first_rows) == (3, 5, 3)
    dilated = LineBuffer(7, 7, 1, 3, padding=2, dilation=2, format="int4")
    assert (dilated.band_rows, dilated.first_rows, dilated.buffer_rows) == (5, 3, 6)
    assert dilated.storage_bytes == (6 * 7 + 1) // 2                    # int4: two per byte
    small = LineBuffer(2, 3, 1, 3, padding=1)
    assert (small.band_rows, small.buffer_rows) == (2, 2)               # at most the image


# --- errors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, kwargs, error, message", [
    (("4", 4, 1, 3), {}, TypeError, r"^LineBuffer height must be an integer, not '4'$"),
    ((0, 4, 1, 3), {}, ValueError, r"^LineBuffer height must be a positive integer, not 0$"),
    ((4, None, 1, 3), {}, TypeError, r"^LineBuffer width must be an integer, not None$"),
    ((4, -4, 1, 3), {}, ValueError, r"^LineBuffer width must be a positive integer, not -4$"),
    ((4, 4, 1.0, 3), {}, TypeError, r"^LineBuffer channels must be an integer, not 1\.0$"),
    ((4, 4, 6, 3), {"lanes": 4}, ValueError,
     r"^LineBuffer channels must be a positive multiple of lanes \(4\), not 6$"),
    ((4, 4, 4, 3), {"lanes": [2]}, TypeError, r"^LineBuffer lanes must be an integer, "
                                              r"not \[2\]$"),
    ((4, 4, 4, 3), {"lanes": 0}, ValueError, r"^LineBuffer lanes must be a positive integer, "
                                             r"not 0$"),
    ((4, 4, 1, "3"), {}, TypeError,
     r"^LineBuffer kernel must be an integer or a pair of integers, not '3'$"),
    ((4, 4, 1, (3, 0)), {}, ValueError, r"^LineBuffer kernel must be positive, not \(3, 0\)$"),
    ((4, 4, 1, 3), {"stride": (1, 2, 3)}, TypeError,
     r"^LineBuffer stride must be an integer or a pair of integers, not \(1, 2, 3\)$"),
    ((4, 4, 1, 3), {"stride": 0}, ValueError, r"^LineBuffer stride must be positive, not 0$"),
    ((4, 4, 1, 3), {"padding": 1.5}, TypeError,
     r"^LineBuffer padding must be an integer or a pair of integers, not 1\.5$"),
    ((4, 4, 1, 3), {"padding": (0, -1)}, ValueError,
     r"^LineBuffer padding must be non-negative, not \(0, -1\)$"),
    ((4, 4, 1, 3), {"dilation": None}, TypeError,
     r"^LineBuffer dilation must be an integer or a pair of integers, not None$"),
    ((4, 4, 1, 3), {"dilation": 0}, ValueError, r"^LineBuffer dilation must be positive, "
                                                r"not 0$"),
    ((4, 4, 1, 3), {"dilation": 2}, ValueError,
     r"^LineBuffer kernel \(3, 3\) with dilation \(2, 2\) must fit the 4x4 image padded by "
     r"\(0, 0\)$"),
    ((4, 4, 1, 3), {"format": "int"}, ValueError,
     r"^LineBuffer format must be a format of 2 to 64 bits, not 'int'$"),
    ((4, 4, 1, 3), {"format": 1.0}, TypeError,
     r"^LineBuffer format must be a Format, a name like 'int8' or a width, not 1\.0$"),
    ((4, 4, 1, 3), {"buffer_rows": 3.0}, TypeError,
     r"^LineBuffer buffer_rows must be an integer, not 3\.0$"),
    ((4, 4, 1, 3), {"buffer_rows": 2}, ValueError,
     r"^LineBuffer buffer_rows must be at least the band of 3 rows, not 2$"),
])
def test_errors(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        LineBuffer(*args, **kwargs)
