# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth.back import rtlil
from numpy.lib.stride_tricks import sliding_window_view

from intar_hw.hw.address_generator import AddressGenerator, AddressLayout
from intar_hw.testbench import get, run, seeded


# numpy references: an address tensor with -1 marking masked positions ------------------------

def tensor(height, width, channels, base=0):
    """Addresses of a channels-last tensor."""
    return base + np.arange(height * width * channels).reshape(height, width, channels)


def pairs(addresses):
    """Expected ``(addr, valid)`` beats from an address array with -1 for masked positions."""
    flat = np.asarray(addresses).ravel()
    return np.stack([np.where(flat >= 0, flat, 0), flat >= 0], axis=1).astype(np.int64)


def im2col(padded, kernel, stride, dilation):
    """Rows ``(out_y, out_x)`` of windows ``(ky, kx, c)`` of an ``(H, W, C)`` array."""
    (kh, kw), (sy, sx), (dy, dx) = kernel, stride, dilation
    span = (dy * (kh - 1) + 1, dx * (kw - 1) + 1)
    windows = sliding_window_view(padded, span, axis=(0, 1))   # (Y, X, C, span_y, span_x)
    windows = windows[::sy, ::sx, :, ::dy, ::dx]
    return windows.transpose(0, 1, 3, 4, 2)


def reference_matmul_tiles(rows, cols, tile_rows, tile_cols, transpose, row_stride, base):
    stored = tensor(cols if transpose else rows, row_stride, 1, base)[:, :, 0]
    matrix = (stored[:, :rows].T if transpose else stored[:, :cols])
    padded = np.pad(matrix, ((0, -rows % tile_rows), (0, -cols % tile_cols)), constant_values=-1)
    tiles = padded.reshape(padded.shape[0] // tile_rows, tile_rows,
                           padded.shape[1] // tile_cols, tile_cols)
    return pairs(tiles.transpose(0, 2, 1, 3))


def reference_conv2d(shape, kernel, stride, padding, dilation, upsample, base):
    x = tensor(*shape, base)
    x = x.repeat(upsample[0], axis=0).repeat(upsample[1], axis=1)
    padded = np.pad(x, ((padding[0],) * 2, (padding[1],) * 2, (0, 0)), constant_values=-1)
    return pairs(im2col(padded, kernel, stride, dilation))


def reference_conv_transpose2d(shape, kernel, stride, padding, output_padding, dilation, base):
    height, width, channels = shape
    x = tensor(*shape, base)
    inserted = np.full(((height - 1) * stride[0] + 1, (width - 1) * stride[1] + 1, channels), -1)
    inserted[::stride[0], ::stride[1]] = x
    pad = [d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding)]
    padded = np.pad(inserted, ((pad[0], pad[0] + output_padding[0]),
                               (pad[1], pad[1] + output_padding[1]), (0, 0)),
                    constant_values=-1)
    return pairs(im2col(padded, kernel, (1, 1), dilation))


def reference_upsample(shape, factor, base):
    return pairs(tensor(*shape, base).repeat(factor[0], axis=0).repeat(factor[1], axis=1))


def reference_nest(bounds, coeffs, extents, strides, offsets, divisors, exact, base):
    """The general definition, vectorised over every position of the nest."""
    index = np.indices(bounds).reshape(len(bounds), -1)
    coords = np.asarray(offsets)[:, None] + np.asarray(coeffs).T @ index
    divisors = np.asarray(divisors)[:, None]
    q, r = np.floor_divide(coords, divisors), np.mod(coords, divisors)
    valid = ((q >= 0) & (q < np.asarray(extents)[:, None]) &
             ((r == 0) | ~np.asarray(exact)[:, None])).all(axis=0)
    addr = np.where(valid, base + np.asarray(strides) @ q, 0)
    return np.stack([addr, valid], axis=1).astype(np.int64), coords


# RTL ------------------------------------------------------------------------------------------

def generator_rtl(dut, *, walks=1, seed=0, backpressure=0.3, idle=0.3):
    """Beats ``(addr, valid, last)`` of ``walks`` walks; each start waits for the previous walk
    to finish plus random idle cycles."""
    beats = []
    rng = seeded(seed + 1)

    async def control(ctx):
        for _ in range(walks):
            while rng.random() < idle:
                await ctx.tick()
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            await ctx.tick().until(~dut.busy)

    async def sink(ctx):
        for beat in await get(ctx, dut.o, walks * dut.length, rng=seeded(seed),
                              backpressure=backpressure):
            beats.append((beat.addr, beat.valid, beat.last))

    run(dut, control, sink, deadline=(walks + 1) * 10 * dut.length + 100,
        vcd="address_generator.vcd")
    return np.array(beats, dtype=np.int64).reshape(-1, 3)


def check_walk(dut, expected, *, seed):
    beats = generator_rtl(dut, seed=seed)
    np.testing.assert_array_equal(beats[:, :2], expected)
    np.testing.assert_array_equal(beats[:, 2], np.arange(len(expected)) == len(expected) - 1)
    assert beats[:, 0].max() < 2 ** dut.addr_width


# Patterns vs numpy ----------------------------------------------------------------------------

@pytest.mark.parametrize("rows,cols,tile_rows,tile_cols,transpose,row_stride,base", [
    (4, 6, 2, 3, False, None, 0),       # tiles divide the matrix
    (5, 7, 2, 4, False, 9, 100),        # ragged edges padded with masked positions; wider rows
    (5, 3, 4, 2, True, None, 7),        # transposed (the B^T of A @ B^T), ragged
])
def test_matmul_tiles(rows, cols, tile_rows, tile_cols, transpose, row_stride, base):
    dut = AddressGenerator.matmul_tiles(rows, cols, tile_rows, tile_cols, transpose=transpose,
                                        row_stride=row_stride, base=base)
    stride = row_stride or (rows if transpose else cols)
    expected = reference_matmul_tiles(rows, cols, tile_rows, tile_cols, transpose, stride, base)
    check_walk(dut, expected, seed=rows * cols)


@pytest.mark.parametrize("shape,kernel,stride,padding,dilation,upsample", [
    ((5, 5, 2), 3, 1, 1, 1, 1),                     # same-size convolution
    ((6, 7, 1), (3, 2), (2, 1), (1, 2), 1, 1),      # strided, rectangular, asymmetric padding
    ((7, 7, 1), 3, 2, 2, 2, 1),                     # dilated and strided
    ((3, 3, 2), 3, 1, 1, 1, 2),                     # convolution over the 2x-upsampled input
])
def test_conv2d_window(shape, kernel, stride, padding, dilation, upsample):
    dut = AddressGenerator.conv2d_window(*shape, kernel, stride=stride, padding=padding,
                                         dilation=dilation, upsample=upsample, base=3)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    expected = reference_conv2d(shape, pair(kernel), pair(stride), pair(padding), pair(dilation),
                                pair(upsample), 3)
    check_walk(dut, expected, seed=sum(shape))


@pytest.mark.parametrize("shape,kernel,stride,padding,output_padding,dilation", [
    ((3, 3, 2), 3, 2, 1, 1, 1),
    ((3, 4, 1), (2, 3), (3, 2), (0, 1), (2, 0), 1),   # stride 3: a divisor that is not 2^n
    ((3, 3, 1), 2, 2, 0, 0, 2),
])
def test_conv_transpose2d(shape, kernel, stride, padding, output_padding, dilation):
    dut = AddressGenerator.conv_transpose2d(*shape, kernel, stride=stride, padding=padding,
                                            output_padding=output_padding, dilation=dilation,
                                            base=5)
    pair = lambda v: v if isinstance(v, tuple) else (v, v)
    expected = reference_conv_transpose2d(shape, pair(kernel), pair(stride), pair(padding),
                                          pair(output_padding), pair(dilation), 5)
    check_walk(dut, expected, seed=sum(shape) + 1)


def test_conv_transpose2d_computes_the_transposed_convolution():
    """Gathering through the walk with the flipped kernel equals the scatter definition."""
    rng = np.random.default_rng(0)
    (height, width, cin, cout), k, s, p, op = (3, 4, 2, 3), 3, 2, 1, 1
    x = rng.integers(-8, 8, (height, width, cin))
    w = rng.integers(-8, 8, (k, k, cin, cout))
    out = ((height - 1) * s - 2 * p + k + op, (width - 1) * s - 2 * p + k + op)
    scatter = np.zeros((out[0] + 2 * p + k, out[1] + 2 * p + k, cout), dtype=np.int64)
    for iy, ix, ky, kx in np.ndindex(height, width, k, k):
        scatter[iy * s + ky, ix * s + kx] += x[iy, ix] @ w[ky, kx]
    scatter = scatter[p:p + out[0], p:p + out[1]]

    dut = AddressGenerator.conv_transpose2d(height, width, cin, k, stride=s, padding=p,
                                            output_padding=op)
    walk = np.array(dut.sequence(), dtype=np.int64)
    operands = np.where(walk[:, 1], x.ravel()[walk[:, 0]], 0).reshape(*out, k * k * cin)
    gather = operands @ w[::-1, ::-1].reshape(k * k * cin, cout)
    np.testing.assert_array_equal(gather, scatter)


@pytest.mark.parametrize("shape,factor", [((3, 4, 2), 2), ((2, 3, 1), (3, 2))])
def test_upsample(shape, factor):
    dut = AddressGenerator.upsample(*shape, factor, base=11)
    factor = factor if isinstance(factor, tuple) else (factor, factor)
    expected = reference_upsample(shape, factor, 11)
    assert expected[:, 1].all()
    check_walk(dut, expected, seed=shape[0])


# The general mechanism ------------------------------------------------------------------------

def random_nest(rng):
    loops, dims = rng.integers(1, 7), rng.integers(1, 5)
    bounds = rng.integers(1, 4, loops).tolist()
    return dict(
        bounds=bounds,
        coeffs=rng.integers(-3, 4, (loops, dims)).tolist(),
        extents=rng.integers(1, 5, dims).tolist(),
        strides=rng.integers(0, 20, dims).tolist(),
        offsets=rng.integers(-4, 4, dims).tolist(),
        divisors=rng.integers(1, 5, dims).tolist(),
        exact=[bool(e) for e in rng.integers(0, 2, dims)],
        base=int(rng.integers(0, 50)))


def test_sequence_and_ranges_match_numpy():
    rng = np.random.default_rng(1)
    for _ in range(200):
        params = random_nest(rng)
        dut = AddressGenerator(**params)
        expected, coords = reference_nest(**params)
        np.testing.assert_array_equal(np.array(dut.sequence(), dtype=np.int64), expected)
        assert dut.coord_ranges == tuple(zip(coords.min(axis=1).tolist(),
                                             coords.max(axis=1).tolist()))
        assert expected[:, 0].max() < 2 ** dut.addr_width


@pytest.mark.parametrize("seed", [2, 3, 4, 5])
def test_random_nests(seed):
    """Negative coefficients, offsets past both ends, divisors 1 to 4, zero strides."""
    rng = np.random.default_rng(seed)
    params = random_nest(rng)
    while AddressGenerator(**params).length < 20:
        params = random_nest(rng)
    expected, _ = reference_nest(**params)
    check_walk(AddressGenerator(**params), expected, seed=seed)


def test_no_multiplier_or_divider():
    rtl = rtlil.convert(AddressGenerator.conv_transpose2d(5, 5, 3, 3, stride=3, padding=1))
    for cell in ("$mul", "$div", "$mod", "$divfloor", "$modfloor"):
        assert cell not in rtl


def test_payload_layout():
    dut = AddressGenerator.upsample(4, 4, 4, 2, base=1)   # largest address 1 + 63
    assert dut.addr_width == 7
    assert dut.o.payload.shape() == AddressLayout(7)


# Start protocol and throughput ----------------------------------------------------------------

def test_restart_after_idle():
    dut = AddressGenerator.conv2d_window(4, 4, 1, 3, stride=2, padding=1)
    expected = reference_conv2d((4, 4, 1), (3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 0)
    beats = generator_rtl(dut, walks=3, seed=9)
    for walk in beats.reshape(3, -1, 3):
        np.testing.assert_array_equal(walk[:, :2], expected)
        assert walk[:, 2].tolist() == [0] * (len(expected) - 1) + [1]


def test_start_during_a_walk_is_ignored():
    dut = AddressGenerator.matmul_tiles(3, 3, 2, 2)
    expected = reference_matmul_tiles(3, 3, 2, 2, False, 3, 0)
    beats = []

    async def control(ctx):
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await ctx.tick().repeat(5)
        ctx.set(dut.start, 1)      # mid-walk, with the sink stalled for some of these cycles
        await ctx.tick().repeat(3)
        ctx.set(dut.start, 0)

    async def sink(ctx):
        for beat in await get(ctx, dut.o, dut.length, rng=seeded(4), backpressure=0.5):
            beats.append((beat.addr, beat.valid))
        await ctx.tick().repeat(4)
        assert not ctx.get(dut.busy)

    run(dut, control, sink, deadline=200)
    np.testing.assert_array_equal(np.array(beats), expected)


def test_throughput_and_back_to_back_walks():
    """One beat per cycle, also across walks when start is held high; first beat after 1 cycle."""
    dut = AddressGenerator.conv2d_window(3, 3, 2, 2, padding=1)
    expected = reference_conv2d((3, 3, 2), (2, 2), (1, 1), (1, 1), (1, 1), (1, 1), 0)
    walks = 3
    stamps, beats = [], []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.start, 1)
        cycle = 0
        while len(beats) < walks * dut.length:
            if len(beats) == (walks - 1) * dut.length:
                ctx.set(dut.start, 0)      # the last walk has been started
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid:
                stamps.append(cycle)
                beats.append((payload.addr, payload.valid))
            cycle += 1
        await ctx.tick().repeat(2)
        assert not ctx.get(dut.busy)

    run(dut, testbench, deadline=walks * dut.length + 20)
    np.testing.assert_array_equal(np.array(beats), np.tile(expected, (walks, 1)))
    assert stamps[0] == AddressGenerator.latency
    assert (len(stamps) - 1) / (stamps[-1] - stamps[0]) == 1.0


# Errors ---------------------------------------------------------------------------------------

GOOD = dict(bounds=(3, 2), coeffs=((1, 0), (0, 1)), extents=(3, 2), strides=(2, 1))


def make(**changes):
    return AddressGenerator(**{**GOOD, **changes})


def test_bounds_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator bounds must be a sequence of "
                                        r"integers, not \(3, 2\.0\)$"):
        make(bounds=(3, 2.0))


def test_bounds_count_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator bounds must list 1 to 6 loops, "
                                         r"not \(1, 1, 1, 1, 1, 1, 1\)$"):
        make(bounds=(1,) * 7, coeffs=((0, 0),) * 7)
    with pytest.raises(ValueError, match=r"^AddressGenerator bounds must list 1 to 6 loops, "
                                         r"not \(\)$"):
        make(bounds=(), coeffs=())


def test_bounds_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator bounds must be positive integers, "
                                         r"not \(3, 0\)$"):
        make(bounds=(3, 0))


def test_coeffs_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator coeffs must be a sequence of integer "
                                        r"sequences, not \(1, 0\)$"):
        make(coeffs=(1, 0))


def test_extents_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator extents must be a sequence of "
                                        r"integers, not 6$"):
        make(extents=6)


def test_extents_count_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator extents must list 1 to 4 "
                                         r"dimensions, not \(1, 1, 1, 1, 1\)$"):
        make(extents=(1,) * 5)


def test_extents_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator extents must be positive integers, "
                                         r"not \(3, -2\)$"):
        make(extents=(3, -2))


def test_strides_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator strides must be a sequence of "
                                        r"integers, not \(2, True\)$"):
        make(strides=(2, True))


def test_strides_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator strides must be non-negative "
                                         r"integers, not \(-2, 1\)$"):
        make(strides=(-2, 1))


def test_offsets_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator offsets must be a sequence of "
                                        r"integers, not \(0\.5, 0\)$"):
        make(offsets=(0.5, 0))


def test_divisors_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator divisors must be a sequence of "
                                        r"integers, not '22'$"):
        make(divisors="22")


def test_divisors_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator divisors must be positive integers, "
                                         r"not \(2, 0\)$"):
        make(divisors=(2, 0))


def test_exact_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator exact must be a sequence of "
                                        r"booleans, not \(1, 0\)$"):
        make(exact=(1, 0))


def test_base_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator base must be an integer, not '0'$"):
        make(base="0")


def test_base_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator base must be non-negative, not -1$"):
        make(base=-1)


def test_lengths_disagree_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator has 2 loops \(bounds\) and 2 "
                                         r"dimensions \(extents\), but coeffs has 3 rows, coeffs "
                                         r"rows have lengths \(2, 3, 2\), strides has 3 entries, "
                                         r"exact has 1 entries$"):
        make(coeffs=((1, 0), (0, 1, 0), (0, 0)), strides=(1, 1, 1), exact=(True,))


def test_helper_type_error():
    with pytest.raises(TypeError, match=r"^AddressGenerator\.conv2d_window stride must be an "
                                        r"integer or a pair of integers, not 2\.5$"):
        AddressGenerator.conv2d_window(4, 4, 1, 3, stride=2.5)
    with pytest.raises(TypeError, match=r"^AddressGenerator\.matmul_tiles rows must be an "
                                        r"integer, not '4'$"):
        AddressGenerator.matmul_tiles("4", 4, 2, 2)


def test_helper_value_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator\.upsample factor must be at least 1, "
                                         r"not \(2, 0\)$"):
        AddressGenerator.upsample(4, 4, 1, (2, 0))
    with pytest.raises(ValueError, match=r"^AddressGenerator\.matmul_tiles row_stride must be at "
                                         r"least 6, not 5$"):
        AddressGenerator.matmul_tiles(4, 6, 2, 2, row_stride=5)


def test_helper_empty_output_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator\.conv2d_window output size must be "
                                         r"positive, not \(0, 1\)$"):
        AddressGenerator.conv2d_window(2, 3, 1, 3)


def test_output_padding_error():
    with pytest.raises(ValueError, match=r"^AddressGenerator\.conv_transpose2d output_padding "
                                         r"must be less than stride \(2, 2\), not 2$"):
        AddressGenerator.conv_transpose2d(3, 3, 1, 3, stride=2, output_padding=2)
