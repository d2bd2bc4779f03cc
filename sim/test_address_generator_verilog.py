# amaranth: UnusedElaboratable=no
"""The exported Verilog of :class:`AddressGenerator`, against numpy references of its walks."""

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from intar_hw.hw.address_generator import AddressGenerator
from vectors import bits, run_streams


def pairs(addresses):
    """Expected ``(addr, valid)`` of an address array with -1 marking masked positions."""
    flat = np.asarray(addresses).ravel()
    return np.stack([np.where(flat >= 0, flat, 0), flat >= 0], axis=1).astype(np.int64)


def reference_matmul_tiles(rows, cols, tile_rows, tile_cols, transpose, base):
    stored = base + np.arange(rows * cols).reshape((cols, rows) if transpose else (rows, cols))
    matrix = stored.T if transpose else stored
    padded = np.pad(matrix, ((0, -rows % tile_rows), (0, -cols % tile_cols)), constant_values=-1)
    tiles = padded.reshape(padded.shape[0] // tile_rows, tile_rows,
                           padded.shape[1] // tile_cols, tile_cols)
    return pairs(tiles.transpose(0, 2, 1, 3))


def reference_conv2d(shape, kernel, stride, padding, dilation, upsample, base):
    (kh, kw), (sy, sx), (py, px), (dy, dx) = kernel, stride, padding, dilation
    x = base + np.arange(np.prod(shape)).reshape(shape)
    x = x.repeat(upsample[0], axis=0).repeat(upsample[1], axis=1)
    padded = np.pad(x, ((py, py), (px, px), (0, 0)), constant_values=-1)
    span = (dy * (kh - 1) + 1, dx * (kw - 1) + 1)
    windows = sliding_window_view(padded, span, axis=(0, 1))[::sy, ::sx, :, ::dy, ::dx]
    return pairs(windows.transpose(0, 1, 3, 4, 2))


def reference_nest(bounds, coeffs, extents, strides, offsets, divisors, exact, base):
    """The general definition, vectorised over every position of the nest."""
    index = np.indices(bounds).reshape(len(bounds), -1)
    coords = np.asarray(offsets)[:, None] + np.asarray(coeffs).T @ index
    divisors = np.asarray(divisors)[:, None]
    q, r = np.floor_divide(coords, divisors), np.mod(coords, divisors)
    valid = ((q >= 0) & (q < np.asarray(extents)[:, None]) &
             ((r == 0) | ~np.asarray(exact)[:, None])).all(axis=0)
    return np.stack([np.where(valid, base + np.asarray(strides) @ q, 0), valid], axis=1)


def walk_beats(dut, expected):
    """Raw ``o`` beats of one walk: ``(addr, valid)`` rows, ``last`` on the final one."""
    layout = dut.o.payload.shape()
    return [bits(layout, {"addr": int(a), "valid": int(v), "last": int(n == len(expected) - 1)})
            for n, (a, v) in enumerate(expected.tolist())]


def check_walks(tmp_path, dut, expected, seed, walks=2):
    """``walks`` walks, each started by a pulse on ``start`` after the previous one ended."""
    assert len(expected) == dut.length
    beats = walk_beats(dut, expected)
    run_streams(dut, "address_generator", tmp_path,
                [{"pulse": {"start": 1}, "outputs": {"o": beats}, "quiet": 3}] * walks,
                seed=seed)


@pytest.mark.parametrize("rows,cols,tile_rows,tile_cols,transpose,base", [
    (5, 7, 2, 4, False, 100),       # ragged edges padded with masked positions
    (5, 3, 4, 2, True, 7),          # transposed (the B^T of A @ B^T), ragged
])
def test_matmul_tiles(tmp_path, rows, cols, tile_rows, tile_cols, transpose, base):
    dut = AddressGenerator.matmul_tiles(rows, cols, tile_rows, tile_cols, transpose=transpose,
                                        base=base)
    expected = reference_matmul_tiles(rows, cols, tile_rows, tile_cols, transpose, base)
    check_walks(tmp_path, dut, expected, seed=rows * cols)


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,upsample", [
    ((6, 7, 1), (3, 2), (2, 1), (1, 2), (1, 1), (1, 1)),   # strided, asymmetric padding
    ((7, 7, 1), (3, 3), (2, 2), (2, 2), (2, 2), (1, 1)),   # dilated and strided
    ((3, 3, 2), (3, 3), (1, 1), (1, 1), (1, 1), (2, 2)),   # over the 2x-upsampled input
])
def test_conv2d_window(tmp_path, shape, kernel, stride, padding, dilation, upsample):
    dut = AddressGenerator.conv2d_window(*shape, kernel, stride=stride, padding=padding,
                                         dilation=dilation, upsample=upsample, base=3)
    expected = reference_conv2d(shape, kernel, stride, padding, dilation, upsample, 3)
    check_walks(tmp_path, dut, expected, seed=sum(shape))


@pytest.mark.parametrize("seed", [2, 5])
def test_random_nest(tmp_path, seed):
    """Negative coefficients, offsets past both ends, divisors 1 to 4 (zero insertion and
    upsampling by 3), zero strides."""
    rng = np.random.default_rng(seed)
    while True:
        loops, dims = rng.integers(1, 7), rng.integers(1, 5)
        params = dict(
            bounds=rng.integers(1, 4, loops).tolist(),
            coeffs=rng.integers(-3, 4, (loops, dims)).tolist(),
            extents=rng.integers(1, 5, dims).tolist(),
            strides=rng.integers(0, 20, dims).tolist(),
            offsets=rng.integers(-4, 4, dims).tolist(),
            divisors=rng.integers(1, 5, dims).tolist(),
            exact=[bool(e) for e in rng.integers(0, 2, dims)],
            base=int(rng.integers(0, 50)))
        if 20 <= AddressGenerator(**params).length <= 200:
            break
    check_walks(tmp_path, AddressGenerator(**params), reference_nest(**params), seed=seed)


def test_start_held_repeats_back_to_back(tmp_path):
    # Held high, start is honoured again in the cycle the final beat is transferred; after it
    # falls, the walk under way completes and no other starts.
    dut = AddressGenerator.conv_transpose2d(3, 3, 1, 2, stride=3, padding=0)
    expected = reference_nest(dut.bounds, dut.coeffs, dut.extents, dut.strides, dut.offsets,
                              dut.divisors, dut.exact, dut.base)
    beats = walk_beats(dut, expected)
    run_streams(dut, "address_generator", tmp_path,
                [{"set": {"start": 1}, "outputs": {"o": beats * 2}},
                 {"set": {"start": 0}, "outputs": {"o": beats}, "quiet": 3}],
                seed=8)
