# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`MaxPool` and :class:`Upsample`, bit-exact with the golden
model of a one-operator graph."""

import numpy as np
import pytest

import intar_hw as ih
from intar_hw.hw.sfu.window import MaxPool, Upsample
from intar_hw.numerics import INT4, INT8, INT16
from vectors import run_stream_phase, vector_beats


def image_beats(layout, x, last_each_image):
    """Beats of an ``(N, C, H, W)`` tensor: raster order, channels last."""
    flat = np.asarray(x, dtype=np.int64).transpose(0, 2, 3, 1).reshape(-1)
    count = flat.size // layout.lanes
    per_image = count // x.shape[0]
    lasts = [int(last_each_image and (n + 1) % per_image == 0) for n in range(count)]
    return vector_beats(layout, flat, lasts)


def check(tmp_path, dut, name, x, want, seed):
    assert want.shape[2:] == (dut.out_height, dut.out_width)
    layout = dut.o.payload.shape()
    # The input's last bits are ignored (images are counted): send them all clear.
    run_stream_phase(dut, name, tmp_path, {"i": image_beats(layout, x, False)},
                     {"o": image_beats(layout, want, True)}, seed=seed)


def random_images(fmt, shape, seed):
    x = np.random.default_rng(seed).integers(fmt.lo, fmt.hi + 1, shape)
    x[-1] = fmt.lo      # an image of minima: padding, also the minimum, must not leak in
    return x


@pytest.mark.parametrize("height,width,channels,kernel,stride,padding,lanes,fmt", [
    (5, 6, 1, 3, 2, 1, 1, INT8),              # ResNet's 3x3/2 with padding
    (5, 5, 4, 3, 1, 1, 2, INT16),             # overlapping windows in both directions
    (4, 5, 2, (2, 3), (1, 2), (1, 1), 1, INT4),
    (6, 5, 3, 5, 1, 2, 3, INT8),              # SPP's 5x5/1
    (3, 3, 1, 1, 2, 0, 1, INT8),              # stride above the kernel: rows are skipped
    (5, 5, 4, 2, None, 0, 2, INT8),           # odd sizes: the last row and column are dropped
])
def test_maxpool(tmp_path, height, width, channels, kernel, stride, padding, lanes, fmt):
    seed = height * 100 + width * 10 + channels
    dut = MaxPool(height, width, channels, kernel, stride=stride, padding=padding, lanes=lanes,
                  format=fmt)
    x = random_images(fmt, (2, channels, height, width), seed)
    g = ih.Graph("g")
    g.maxpool(g.input("x", x.shape, fmt=fmt.name), kernel, stride=stride, padding=padding,
              name="y")
    check(tmp_path, dut, "maxpool", x, ih.reference(g, {"x": x}, {})["y"], seed)


@pytest.mark.parametrize("height,width,channels,factor,lanes,fmt", [
    (3, 4, 4, (2, 3), 2, INT16),
    (2, 3, 2, 2, 1, INT8),
    (2, 3, 2, (1, 2), 1, INT4),
    (2, 3, 2, (3, 1), 2, INT8),
])
def test_upsample(tmp_path, height, width, channels, factor, lanes, fmt):
    seed = height * 100 + width * 10 + channels
    dut = Upsample(height, width, channels, factor, lanes=lanes, format=fmt)
    x = random_images(fmt, (2, channels, height, width), seed)
    g = ih.Graph("g")
    g.upsample(g.input("x", x.shape, fmt=fmt.name), factor, name="y")
    check(tmp_path, dut, "upsample", x, ih.reference(g, {"x": x}, {})["y"], seed)
