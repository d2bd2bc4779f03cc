# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`LineBuffer`, bit-exact with a numpy im2col."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from intar_hw.hw.line_buffer import LineBuffer
from vectors import run_stream_phase, vector_beats


def reference_windows(x, kernel, stride, padding, dilation):
    """im2col of channels-last images ``(N, H, W, C)``: ``(N, out_y, out_x, ky * kx * C)``."""
    (kh, kw), (sy, sx), (py, px), (dy, dx) = kernel, stride, padding, dilation
    padded = np.pad(x, ((0, 0), (py, py), (px, px), (0, 0)))
    span = (dy * (kh - 1) + 1, dx * (kw - 1) + 1)
    windows = sliding_window_view(padded, span, axis=(1, 2))   # (N, Y, X, C, span_y, span_x)
    windows = windows[:, ::sy, ::sx, :, ::dy, ::dx]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(*windows.shape[:3], -1)


@pytest.mark.parametrize("height,width,channels,kernel,stride,padding,dilation,lanes,"
                         "buffer_rows", [
    (5, 6, 4, 3, 1, 1, 1, 2, None),             # 3x3 "same"
    (6, 5, 2, 3, 2, 1, 1, 1, 3),                # stride 2 with only the band: output waits
    (7, 7, 1, 3, 1, 2, 2, 1, None),             # dilation 2
    (5, 4, 2, (2, 3), (1, 2), (0, 1), (2, 1), 1, None),
    (3, 4, 1, 3, 1, 3, 1, 1, None),             # padding wider than the band: all-zero windows
    (4, 4, 1, 1, 2, 0, 1, 1, None),             # 1x1 stride 2: rows that no window needs
    (6, 6, 4, 5, 1, 2, 1, 2, 6),                # the whole image
])
def test_windows(tmp_path, height, width, channels, kernel, stride, padding, dilation, lanes,
                 buffer_rows):
    seed = height * 100 + width * 10 + channels
    dut = LineBuffer(height, width, channels, kernel, stride=stride, padding=padding,
                     dilation=dilation, lanes=lanes, buffer_rows=buffer_rows)
    x = np.random.default_rng(seed).integers(-128, 128, (2, height, width, channels))
    want = reference_windows(x, dut.kernel, dut.stride, dut.padding, dut.dilation)
    layout = dut.o.payload.shape()
    beats = vector_beats(layout, x.reshape(-1), [0] * (x.size // lanes))
    count = want.size // lanes
    lasts = [int((n + 1) % dut.window_beats == 0) for n in range(count)]
    run_stream_phase(dut, "line_buffer", tmp_path, {"i": beats},
                     {"o": vector_beats(layout, want.reshape(-1), lasts)}, seed=seed)
