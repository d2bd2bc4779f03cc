"""A line buffer: the convolution windows of a raster-order image stream, without the image.

A convolution in a task pipeline consumes its producer's output as it is produced. The producer
emits the image in raster order; the convolution needs, for each output position, the
``ky x kx x C`` window under its kernel (an im2col row). :class:`LineBuffer` keeps only the band
of input rows the current output row's windows cover (plus spare rows, so the next rows can
stream in while windows are emitted) and streams the windows out.
"""

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .sfu.layouts import VectorLayout
from .checks import check_count, check_format, check_pair
from .logic import wrap_increment


__all__ = ["LineBuffer"]


def _add_mod(value, constant, modulus):
    """``(value + constant) % modulus`` for ``0 <= value < modulus`` and a constant in range."""
    constant %= modulus
    if constant == 0:
        return value
    return Mux(value >= modulus - constant, value + constant - modulus, value + constant)


class LineBuffer(wiring.Component):
    """Convolution windows of a raster-order, channels-last image stream.

    Input: images of ``height x width x channels`` in raster order, channels last (HWC), one
    beat per ``lanes`` channels of a pixel (:mod:`intar_hw.hw.sfu.window` describes the order);
    ``i.payload.last`` is ignored (images are counted). Output: for each output position
    ``(oy, ox)`` in raster order, its window as ``ky * kx * channels / lanes`` beats in
    ``(tap_y, tap_x, channel)`` order, which is the order of
    :meth:`~intar_hw.hw.address_generator.AddressGenerator.conv2d_window` and of a numpy
    im2col (``np.pad`` then ``sliding_window_view``). Tap ``(ty, tx)`` of output ``(oy, ox)``
    is input pixel ``(oy * sy - py + ty * dy, ox * sx - px + tx * dx)``; taps outside the image
    are zeros (zero padding). ``last`` is set on the final beat of every window (the end of an
    im2col row, i.e. of one output position's reduction). The output has
    ``(H + 2 * py - dy * (ky - 1) - 1) // sy + 1`` by the same along ``x`` positions.

    Storage: :attr:`buffer_rows` input rows in one :class:`~amaranth.lib.memory.Memory` of
    ``buffer_rows * width * channels / lanes`` words (one write port, one read port, read
    latency 1), used as a ring of rows. An output row's windows cover at most
    :attr:`band_rows` ``= min((ky - 1) * dy + 1, H)`` input rows; the default
    ``buffer_rows = min(band_rows + sy, H)`` lets the ``sy`` input rows the next output row
    needs stream in while an output row is emitted (at stride 1, ``band_rows + 1``: the cost
    model's line buffer). Flow control is per row: an output row starts once the input rows it
    covers are complete; the input writes a row once a slot of the ring is free, a slot being
    freed when the last window that needs its row has been read.

    Throughput: one output beat per cycle whenever the rows it needs are present. With
    ``buffer_rows >= min(band_rows + sy, H)`` (the default) and output rows no shorter than the
    input they consume (``out_width * ky * kx >= sy * width``), that is always the case once the
    first output row's rows have arrived, so with a source that always offers a beat and a sink
    that is always ready an image takes :meth:`cycles` ``= first_rows * width * channels / lanes
    + out_height * out_width * ky * kx * channels / lanes`` cycles from its first input beat to
    its last output beat. With fewer rows, or shorter output rows, the output waits for input
    rows at each output row. Consecutive images may also wait at the boundary, for the first
    rows of the next image, when the ring is full of the current image's last rows.

    Backpressure on ``o`` stalls the reads (one clock enable, ``advance = ~o.valid | o.ready``,
    on the read port and its companion registers); the input continues while a slot is free.
    ``o.valid``, ``o.payload.last`` and ``i.ready`` are register outputs; ``o.payload.data`` is
    the memory's read register, zeroed for padding taps.

    Parameters
    ----------
    height, width, channels : int
        Input image size; ``channels`` is a positive multiple of ``lanes``.
    kernel : int or (int, int)
        ``(ky, kx)``, positive.
    stride : int or (int, int)
        ``(sy, sx)``, positive; 1 by default.
    padding : int or (int, int)
        Zero padding ``(py, px)`` on both sides, non-negative; 0 by default.
    dilation : int or (int, int)
        Tap spacing ``(dy, dx)``, positive; 1 by default.
    lanes : int
        Channels per beat, at least 1.
    format : Format, str or int
        Format of the elements, 2 to 64 bits.
    buffer_rows : int or None
        Input rows held, at least :attr:`band_rows`; ``None`` means ``min(band_rows + sy, H)``.

    Members
    -------
    i : In(stream.Signature(VectorLayout(bits, lanes)))
        Input images, raster order, channels last.
    o : Out(stream.Signature(VectorLayout(bits, lanes)))
        Windows, one after another; ``last`` on each window's final beat.

    Attributes
    ----------
    out_height, out_width : int
        Output positions along each axis.
    band_rows : int
        Input rows one output row's windows cover, ``min((ky - 1) * dy + 1, H)``.
    first_rows : int
        Input rows the first output row waits for: ``min(band_rows - py, H)``, at least 1.
    window_beats : int
        Beats per window, ``ky * kx * channels / lanes``.
    image_beats : int
        Output beats per image, ``out_height * out_width * window_beats``.
    latency : int
        Cycles from a window beat's read being issued to it being valid on ``o``: 1.
    storage_bytes : int
        Bytes of the row ring, ``buffer_rows * width * channels * bits / 8`` (rounded up): what
        the scheduler budgets for the line buffer.

    Raises
    ------
    TypeError
        If a size or ``buffer_rows`` is not an integer, a geometry parameter is not an integer or
        a pair of integers, or ``format`` is not a Format, a name or a width.
    ValueError
        If a size, ``kernel``, ``stride`` or ``dilation`` is not positive, ``padding`` is
        negative, ``channels`` is not a multiple of ``lanes``, the dilated kernel does not fit
        the padded image, ``buffer_rows`` is less than :attr:`band_rows`, or ``format`` is not 2
        to 64 bits.
    """

    latency = 1

    def __init__(self, height, width, channels, kernel, *, stride=1, padding=0, dilation=1,
                 lanes=1, format="int8", buffer_rows=None):
        check_count("LineBuffer", "height", height)
        check_count("LineBuffer", "width", width)
        check_count("LineBuffer", "lanes", lanes)
        if not isinstance(channels, int) or isinstance(channels, bool):
            raise TypeError(f"LineBuffer channels must be an integer, not {channels!r}")
        if channels < 1 or channels % lanes:
            raise ValueError(f"LineBuffer channels must be a positive multiple of lanes "
                             f"({lanes}), not {channels!r}")
        kernel = check_pair("LineBuffer", "kernel", kernel, 1)
        stride = check_pair("LineBuffer", "stride", stride, 1)
        padding = check_pair("LineBuffer", "padding", padding, 0)
        dilation = check_pair("LineBuffer", "dilation", dilation, 1)
        spans = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
        if any(size + 2 * p < span for size, p, span in zip((height, width), padding, spans)):
            raise ValueError(f"LineBuffer kernel {kernel!r} with dilation {dilation!r} must fit "
                             f"the {height}x{width} image padded by {padding!r}")
        fmt = check_format("LineBuffer", "format", format)
        band = min(spans[0], height)
        if buffer_rows is None:
            buffer_rows = min(band + stride[0], height)
        elif not isinstance(buffer_rows, int) or isinstance(buffer_rows, bool):
            raise TypeError(f"LineBuffer buffer_rows must be an integer, not {buffer_rows!r}")
        elif buffer_rows < band:
            raise ValueError(f"LineBuffer buffer_rows must be at least the band of {band} rows, "
                             f"not {buffer_rows!r}")
        self._height, self._width, self._channels = height, width, channels
        self._kernel, self._stride = kernel, stride
        self._padding, self._dilation = padding, dilation
        self._lanes = lanes
        self._format = fmt
        self._buffer_rows = buffer_rows
        super().__init__({
            "i": In(stream.Signature(VectorLayout(fmt.bits, lanes))),
            "o": Out(stream.Signature(VectorLayout(fmt.bits, lanes))),
        })

    height = property(lambda self: self._height)
    width = property(lambda self: self._width)
    channels = property(lambda self: self._channels)
    kernel = property(lambda self: self._kernel)
    stride = property(lambda self: self._stride)
    padding = property(lambda self: self._padding)
    dilation = property(lambda self: self._dilation)
    lanes = property(lambda self: self._lanes)
    format = property(lambda self: self._format)
    buffer_rows = property(lambda self: self._buffer_rows)

    def _span(self, axis):
        return self._dilation[axis] * (self._kernel[axis] - 1) + 1

    def _out(self, axis, size):
        return (size + 2 * self._padding[axis] - self._span(axis)) // self._stride[axis] + 1

    @property
    def out_height(self):
        return self._out(0, self._height)

    @property
    def out_width(self):
        return self._out(1, self._width)

    @property
    def band_rows(self):
        return min(self._span(0), self._height)

    @property
    def first_rows(self):
        return max(1, min(self._span(0) - self._padding[0], self._height))

    @property
    def groups(self):
        """Beats per pixel, ``channels / lanes``."""
        return self._channels // self._lanes

    @property
    def window_beats(self):
        return self._kernel[0] * self._kernel[1] * self.groups

    @property
    def image_beats(self):
        return self.out_height * self.out_width * self.window_beats

    @property
    def storage_bytes(self):
        return self._format.nbytes(self._buffer_rows * self._width * self._channels)

    def cycles(self):
        """Cycles from an image's first input beat to its last window beat, at full rate.

        ``first_rows * width * channels / lanes + image_beats``, under the conditions stated in
        the class description (stride 1 or enough ``buffer_rows``, ``o`` always ready).
        """
        return self.first_rows * self._width * self.groups + self.image_beats

    def elaborate(self, platform):
        m = Module()
        bits, lanes, groups = self._format.bits, self._lanes, self.groups
        height, width = self._height, self._width
        (ky, kx), (sy, sx) = self._kernel, self._stride
        (py, px), (dy, dx) = self._padding, self._dilation
        rows = self._buffer_rows
        row_beats = width * groups
        depth = rows * row_beats
        span = self._span(0)
        out_height, out_width = self.out_height, self.out_width
        vector = data.ArrayLayout(signed(bits), lanes)

        m.submodules.rows = mem = memory.Memory(shape=vector, depth=depth, init=[])
        write = mem.write_port()
        read = mem.read_port()

        # Complete rows held minus rows released; negative when the output has released rows
        # (never needed) that are still to arrive.
        held = Signal(range(-height, rows + 1), name="held")
        row_done, release = Signal(), Signal(range(height + 1), name="release")
        m.d.sync += held.eq(held + row_done - release)

        # --- input: write rows around the ring ---
        w_addr = Signal(range(depth), name="write_addr")
        w_count = Signal(range(row_beats), name="write_count")
        taken = Signal()
        m.d.comb += [
            self.i.ready.eq(held < rows),
            taken.eq(self.i.valid & self.i.ready),
            write.addr.eq(w_addr),
            write.data.eq(self.i.payload.data),
            write.en.eq(taken),
        ]
        with m.If(taken):
            m.d.sync += [
                w_addr.eq(wrap_increment(w_addr, depth)),
                w_count.eq(wrap_increment(w_count, row_beats)),
            ]
            m.d.comb += row_done.eq(w_count == row_beats - 1)

        # --- output: walk (oy, ox, ty, tx, group), tracking coordinates and ring addresses ---
        oy = Signal(range(out_height), name="out_y")
        ox = Signal(range(out_width), name="out_x")
        ty = Signal(range(ky), name="tap_y")
        tx = Signal(range(kx), name="tap_x")
        g = Signal(range(groups), name="group")
        # Input row of the window's top (oy * sy - py) and of the tap; columns in beats (x * G).
        top = Signal(range(-py, (out_height - 1) * sy - py + 1), name="top", init=-py)
        iy = Signal(range(-py, (out_height - 1) * sy - py + span), name="tap_row", init=-py)
        left = Signal(range(-px * groups, ((out_width - 1) * sx - px) * groups + 1),
                      name="left", init=-px * groups)
        col = Signal(range(-px * groups, ((out_width - 1) * sx - px + self._span(1)) * groups),
                     name="tap_col", init=-px * groups)
        # Ring addresses of image row 0, of the window's top row and of the tap's row.
        top_init = (-py % rows) * row_beats
        image_addr = Signal(range(depth), name="image_addr")
        top_addr = Signal(range(depth), name="top_addr", init=top_init)
        row_addr = Signal(range(depth), name="tap_row_addr", init=top_init)

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        first = Signal(range(height + 1), name="first_row")
        need = Signal(range(span + 1), name="need")
        m.d.comb += [
            first.eq(Mux(top < 0, 0, Mux(top > height, height, top))),
            # Windows wholly in the top padding still wait for the image's first row: the output
            # never runs ahead of the images that arrive. Those wholly below need nothing more.
            need.eq(Mux(top + span <= 0, 1,
                        Mux(top + span > height, height, top + span) - first)),
        ]
        issue = Signal()
        m.d.comb += issue.eq(held >= need)
        fire = Signal()
        m.d.comb += fire.eq(advance & issue)

        inside = Signal()
        m.d.comb += inside.eq((iy >= 0) & (iy < height) & (col >= 0) & (col < row_beats))
        m.d.comb += [
            read.addr.eq(Mux(inside, row_addr + col + g, 0)),
            read.en.eq(advance),
        ]
        end_tap = g == groups - 1
        end_row_of_taps = end_tap & (tx == kx - 1)
        end_window = end_row_of_taps & (ty == ky - 1)
        end_out_row = end_window & (ox == out_width - 1)
        end_image = end_out_row & (oy == out_height - 1)

        with m.If(fire):
            m.d.sync += g.eq(wrap_increment(g, groups))
            with m.If(end_tap):
                m.d.sync += [tx.eq(wrap_increment(tx, kx)), col.eq(col + dx * groups)]
                with m.If(end_row_of_taps):
                    m.d.sync += [
                        ty.eq(wrap_increment(ty, ky)),
                        iy.eq(iy + dy),
                        row_addr.eq(_add_mod(row_addr, dy * row_beats, depth)),
                        col.eq(left),
                    ]
                    with m.If(end_window):
                        m.d.sync += [
                            ox.eq(wrap_increment(ox, out_width)),
                            iy.eq(top),
                            row_addr.eq(top_addr),
                            left.eq(left + sx * groups),
                            col.eq(left + sx * groups),
                        ]
                        with m.If(end_out_row):
                            # Release the rows no later output row of this image needs.
                            below = top + sy
                            next_first = Mux(below < 0, 0, Mux(below > height, height, below))
                            m.d.comb += release.eq(Mux(end_image, height, next_first) - first)
                            next_top_addr = _add_mod(top_addr, sy * row_beats, depth)
                            m.d.sync += [
                                oy.eq(wrap_increment(oy, out_height)),
                                top.eq(top + sy),
                                iy.eq(top + sy),
                                top_addr.eq(next_top_addr),
                                row_addr.eq(next_top_addr),
                                left.eq(-px * groups),
                                col.eq(-px * groups),
                            ]
                            with m.If(end_image):
                                next_image = _add_mod(image_addr, height * row_beats, depth)
                                image_top = _add_mod(next_image, -py * row_beats, depth)
                                m.d.sync += [
                                    image_addr.eq(next_image),
                                    top.eq(-py),
                                    iy.eq(-py),
                                    top_addr.eq(image_top),
                                    row_addr.eq(image_top),
                                ]

        # Stage 1: the read register and what goes with it.
        valid_1, inside_1, last_1 = Signal(name="read_valid"), Signal(name="read_inside"), \
            Signal(name="read_last")
        with m.If(advance):
            m.d.sync += [valid_1.eq(issue), inside_1.eq(inside), last_1.eq(end_window)]
        m.d.comb += [
            self.o.valid.eq(valid_1),
            self.o.payload.last.eq(last_1),
        ]
        with m.If(inside_1):
            m.d.comb += self.o.payload.data.eq(read.data)
        return m
