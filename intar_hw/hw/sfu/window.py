"""Windowed special-function units over raster-order image streams: max pooling and upsampling.

Stream order
------------
Both units take and give images in raster order, channels last (HWC), as the address generator
(:meth:`~intar_hw.hw.address_generator.AddressGenerator.conv2d_window`) and the convolution line
buffer (:class:`~intar_hw.hw.line_buffer.LineBuffer`) do: one beat carries ``lanes``
consecutive channels of one pixel, a pixel is ``channels / lanes`` beats, a row is ``width``
pixels, an image ``height`` rows. An ``(N, C, H, W)`` tensor of the graph
(:mod:`intar_hw.golden`) is streamed as ``x.transpose(0, 2, 3, 1)`` flattened. ``last`` is set on
the final beat of every output image; on the input it is ignored (images are counted).
"""

from amaranth import *
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .layouts import VectorLayout
from ..checks import check_count, check_format, check_pair
from ..logic import wrap_increment
from ...integers import cdiv


__all__ = ["MaxPool", "Upsample"]


# --- parameter checks -----------------------------------------------------------------------------

def _check_image(owner, height, width, channels, lanes):
    check_count(owner, "height", height)
    check_count(owner, "width", width)
    check_count(owner, "lanes", lanes)
    if not isinstance(channels, int) or isinstance(channels, bool):
        raise TypeError(f"{owner} channels must be an integer, not {channels!r}")
    if channels < 1 or channels % lanes:
        raise ValueError(f"{owner} channels must be a positive multiple of lanes ({lanes}), "
                         f"not {channels!r}")


# --- hardware helpers -----------------------------------------------------------------------------

def _maximum(a, b):
    return Mux(a > b, a, b)


def _update_slots(m, name, vector, lanes, reads, writes, addr, value, first, move, inside):
    """Fold ``value`` into the partial-maximum slot ``addr`` of every memory in ``writes``.

    Slot ``k`` starts afresh from ``value`` when ``first[k]`` is set and otherwise keeps the
    lane-wise maximum of its old contents (``reads[k]``) and ``value``; it is written when
    ``move`` is high and the position lies inside its window (``inside[k]``). Returns the new
    contents of every slot.
    """
    updated = []
    for k, (read, write) in enumerate(zip(reads, writes)):
        old = data.View(vector, read.data)
        new = Signal(vector, name=f"{name}_{k}")
        for n in range(lanes):
            m.d.comb += new[n].eq(Mux(first[k], value[n], _maximum(old[n], value[n])))
        m.d.comb += [
            write.addr.eq(addr),
            write.data.eq(new),
            write.en.eq(move & inside[k]),
        ]
        updated.append(new)
    return updated


class MaxPool(wiring.Component):
    """2-D max pooling of a raster-order HWC image stream, bit-exact with the golden model.

    Output pixel ``(oy, ox)`` is the maximum over input rows ``oy * sy - py .. + ky - 1`` and
    columns ``ox * sx - px .. + kx - 1``; positions in the padding never win (the golden model
    pads with the format's minimum). The output is ``floor((H + 2 * py - ky) / sy) + 1`` by
    ``floor((W + 2 * px - kx) / sx) + 1`` pixels of ``channels`` channels, in raster order.

    Separable partial maxima, no window buffer. A horizontal stage keeps, for each of the
    ``ceil(kx / sx)`` output columns whose windows may overlap, the running maximum of each
    channel (``ceil(kx / sx)`` memories of ``channels / lanes`` words); a window that ends emits
    its row maximum ``h``. A vertical stage keeps, for each of the ``ceil(ky / sy)`` output rows
    whose windows may overlap, a line of running maxima of ``h`` (``ceil(ky / sy)`` memories of
    ``out_width * channels / lanes`` words); a window that ends emits the output. Every memory is
    read and written once per cycle (read-modify-write, the read port transparent to the write
    port).

    The unit walks a *virtual raster* of :attr:`virtual_height` x :attr:`virtual_width` pixels,
    one beat per cycle: positions inside the image take an input beat; positions beyond its
    bottom or right edge (windows that hang over the bottom/right padding) take none and count
    as padding. So with a source that always offers a beat and a sink that is always ready, an
    image takes :attr:`image_cycles` ``= virtual_height * virtual_width * channels / lanes``
    cycles, exactly the input's beats when there is no bottom or right padding. Backpressure
    stalls the whole pipeline (one clock enable, ``advance = ~o.valid | o.ready``); ``o.valid``
    and ``o.payload`` are registers, ``i.ready`` depends combinationally on ``o.ready``.

    Parameters
    ----------
    height, width, channels : int
        Input image size; ``channels`` is a positive multiple of ``lanes``.
    kernel : int or (int, int)
        Window ``(ky, kx)``, positive.
    stride : int, (int, int) or None
        Step ``(sy, sx)``, positive; ``None`` (the default) means ``kernel``.
    padding : int or (int, int)
        Padding ``(py, px)`` on both sides, at most half the kernel.
    lanes : int
        Channels per beat, at least 1.
    format : Format, str or int
        Format of the elements, 2 to 64 bits.

    Members
    -------
    i : In(stream.Signature(VectorLayout(bits, lanes)))
        Input images, raster order, channels last.
    o : Out(stream.Signature(VectorLayout(bits, lanes)))
        Output images, raster order, channels last; ``last`` on each image's final beat.

    Attributes
    ----------
    out_height, out_width : int
        Output image size.
    virtual_height, virtual_width : int
        The raster walked: ``max(H, (out_height - 1) * sy - py + ky)`` rows of
        ``max(W, (out_width - 1) * sx - px + kx)`` pixels.
    image_cycles : int
        Cycles per image at full rate: ``virtual_height * virtual_width * channels / lanes``.
    latency : int
        Cycles from the beat that completes an output pixel's window being taken (or walked) to
        that output being valid: 3 (horizontal read, vertical read, output register).
    storage_bytes : int
        Bytes of the partial maxima: ``(ceil(kx / sx) + ceil(ky / sy) * out_width) * channels``
        elements.

    Raises
    ------
    TypeError
        If a size is not an integer, ``kernel``, ``stride`` or ``padding`` is not an integer or
        a pair of integers, or ``format`` is not a Format, a name or a width.
    ValueError
        If a size, ``kernel`` or ``stride`` is not positive, ``channels`` is not a multiple of
        ``lanes``, ``padding`` is negative or more than half the kernel, the kernel does not fit
        the padded image, or ``format`` is not 2 to 64 bits.
    """

    latency = 3

    def __init__(self, height, width, channels, kernel, *, stride=None, padding=0, lanes=1,
                 format="int8"):
        _check_image("MaxPool", height, width, channels, lanes)
        kernel = check_pair("MaxPool", "kernel", kernel, 1)
        stride = kernel if stride is None else check_pair("MaxPool", "stride", stride, 1)
        padding = check_pair("MaxPool", "padding", padding, 0)
        if any(2 * p > k for p, k in zip(padding, kernel)):
            raise ValueError(f"MaxPool padding must be at most half the kernel {kernel!r}, "
                             f"not {padding!r}")
        if any(size + 2 * p < k for size, p, k in zip((height, width), padding, kernel)):
            raise ValueError(f"MaxPool kernel {kernel!r} must fit the {height}x{width} image "
                             f"padded by {padding!r}")
        fmt = check_format("MaxPool", "format", format)
        self._height, self._width, self._channels = height, width, channels
        self._kernel, self._stride, self._padding = kernel, stride, padding
        self._lanes = lanes
        self._format = fmt
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
    lanes = property(lambda self: self._lanes)
    format = property(lambda self: self._format)

    def _out(self, axis, size):
        return (size + 2 * self._padding[axis] - self._kernel[axis]) // self._stride[axis] + 1

    def _last_end(self, axis, out):
        # The coordinate at which the last output's window ends.
        return (out - 1) * self._stride[axis] - self._padding[axis] + self._kernel[axis] - 1

    @property
    def out_height(self):
        return self._out(0, self._height)

    @property
    def out_width(self):
        return self._out(1, self._width)

    @property
    def virtual_height(self):
        return max(self._height, self._last_end(0, self.out_height) + 1)

    @property
    def virtual_width(self):
        return max(self._width, self._last_end(1, self.out_width) + 1)

    @property
    def groups(self):
        """Beats per pixel, ``channels / lanes``."""
        return self._channels // self._lanes

    @property
    def image_cycles(self):
        return self.virtual_height * self.virtual_width * self.groups

    @property
    def _slots(self):
        # Output rows / columns whose windows can cover one input row / column.
        return tuple(cdiv(k, s) for k, s in zip(self._kernel, self._stride))

    @property
    def storage_bytes(self):
        rows, cols = self._slots
        return self._format.nbytes((cols + rows * self.out_width) * self._channels)

    def cycles(self, images):
        """Cycles from the first beat taken on ``i`` to the last beat given on ``o``, for
        ``images`` images sent back to back with ``o`` always ready:
        ``(images - 1) * image_cycles + (yl * virtual_width + xl + 1) * channels / lanes - 1
        + latency``, where ``(yl, xl)`` is where the last output window ends.
        """
        yl = self._last_end(0, self.out_height)
        xl = self._last_end(1, self.out_width)
        final = (yl * self.virtual_width + xl + 1) * self.groups - 1
        return (images - 1) * self.image_cycles + final + self.latency

    def elaborate(self, platform):
        m = Module()
        bits, lanes, groups = self._format.bits, self._lanes, self.groups
        height, width = self._height, self._width
        vheight, vwidth = self.virtual_height, self.virtual_width
        (ky, kx), (sy, sx), (py, px) = self._kernel, self._stride, self._padding
        rows, cols = self._slots
        out_width = self.out_width
        vector = data.ArrayLayout(signed(bits), lanes)

        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        # --- stage 0: the virtual raster position ---
        y = Signal(range(vheight), name="y")
        x = Signal(range(vwidth), name="x")
        g = Signal(range(groups), name="group")
        # Slot q serves outputs q, q + slots, ...; its offset is the coordinate less the start of
        # its current output's window (negative before it starts).
        off_x = [Signal(range(-cols * sx, vwidth + kx), name=f"offset_x_{q}",
                        init=px - q * sx) for q in range(cols)]
        off_y = [Signal(range(-rows * sy, vheight + ky), name=f"offset_y_{p}",
                        init=py - p * sy) for p in range(rows)]
        real = Signal()
        move = Signal()
        m.d.comb += [
            real.eq((y < height) & (x < width)),
            self.i.ready.eq(advance & real),
            move.eq(advance & (~real | self.i.valid)),
        ]
        value = Signal(vector, name="value")
        with m.If(real):
            m.d.comb += value.eq(self.i.payload.data)
        with m.Else():
            m.d.comb += [value[n].eq(self._format.lo) for n in range(lanes)]

        def flags(offsets, coord, k):
            inside = [(o >= 0) & (o <= k - 1) for o in offsets]
            first = [i & ((o == 0) | (coord == 0)) for i, o in zip(inside, offsets)]
            end = [o == k - 1 for o in offsets]
            return Cat(inside), Cat(first), Cat(end)

        def step(offsets, k, s):
            # One pixel (row) on: a slot whose window ended moves on to its next output.
            for o in offsets:
                m.d.sync += o.eq(Mux(o == k - 1, o + 1 - len(offsets) * s, o + 1))

        def restart(offsets, pad, s):
            for q, o in enumerate(offsets):
                m.d.sync += o.eq(pad - q * s)

        with m.If(move):
            m.d.sync += g.eq(wrap_increment(g, groups))
            with m.If(g == groups - 1):
                m.d.sync += x.eq(wrap_increment(x, vwidth))
                step(off_x, kx, sx)
                with m.If(x == vwidth - 1):
                    restart(off_x, px, sx)
                    m.d.sync += y.eq(wrap_increment(y, vheight))
                    step(off_y, ky, sy)
                    with m.If(y == vheight - 1):
                        restart(off_y, py, sy)

        h_inside, h_first, h_end = flags(off_x, x, kx)
        v_inside, v_first, v_end = flags(off_y, y, ky)
        final = ((y == self._last_end(0, self.out_height)) &
                 (x == self._last_end(1, out_width)) & (g == groups - 1))

        # Horizontal partial maxima: one memory per column slot, addressed by channel group.
        h_reads, h_writes = [], []
        for q in range(cols):
            mem = memory.Memory(shape=vector, depth=groups, init=[])
            m.submodules[f"row_max_{q}"] = mem
            write = mem.write_port()
            read = mem.read_port(transparent_for=(write,))
            m.d.comb += [read.addr.eq(g), read.en.eq(advance)]
            h_reads.append(read)
            h_writes.append(write)

        s1_valid = Signal(name="h_valid")
        s1_value = Signal(vector, name="h_value")
        s1_group = Signal(range(groups), name="h_group")
        s1_inside, s1_first, s1_end = (Signal(cols, name=f"h_{n}") for n in
                                       ("inside", "first", "end"))
        s1_v = [Signal(rows, name=f"h_v_{n}") for n in ("inside", "first", "end")]
        s1_final = Signal(name="h_final")
        with m.If(advance):
            m.d.sync += [
                s1_valid.eq(move), s1_value.eq(value), s1_group.eq(g),
                s1_inside.eq(h_inside), s1_first.eq(h_first), s1_end.eq(h_end),
                s1_v[0].eq(v_inside), s1_v[1].eq(v_first), s1_v[2].eq(v_end),
                s1_final.eq(final),
            ]

        # --- stage 1: update the column slots; a window that ends gives its row maximum ---
        h_new = _update_slots(m, "h_new", vector, lanes, h_reads, h_writes, s1_group,
                              s1_value, s1_first, advance & s1_valid, s1_inside)
        h_value = Signal(vector, name="h_max")
        for q in range(cols):
            with m.If(s1_end[q]):
                m.d.comb += h_value.eq(h_new[q])
        emit_h = Signal()
        m.d.comb += emit_h.eq(s1_valid & s1_end.any())
        # h beats come in (ox, group) order, out_width * groups per row: a wrapping counter.
        h_addr = Signal(range(out_width * groups), name="h_addr")
        with m.If(advance & emit_h):
            m.d.sync += h_addr.eq(wrap_increment(h_addr, out_width * groups))

        # Vertical partial maxima: one line memory per row slot, addressed by (ox, group).
        v_reads, v_writes = [], []
        for p in range(rows):
            mem = memory.Memory(shape=vector, depth=out_width * groups, init=[])
            m.submodules[f"column_max_{p}"] = mem
            write = mem.write_port()
            read = mem.read_port(transparent_for=(write,))
            m.d.comb += [read.addr.eq(h_addr), read.en.eq(advance)]
            v_reads.append(read)
            v_writes.append(write)

        s2_valid = Signal(name="v_valid")
        s2_value = Signal(vector, name="v_value")
        s2_addr = Signal(range(out_width * groups), name="v_addr")
        s2_inside, s2_first, s2_end = (Signal(rows, name=f"v_{n}") for n in
                                       ("inside", "first", "end"))
        s2_final = Signal(name="v_final")
        with m.If(advance):
            m.d.sync += [
                s2_valid.eq(emit_h), s2_value.eq(h_value), s2_addr.eq(h_addr),
                s2_inside.eq(s1_v[0]), s2_first.eq(s1_v[1]), s2_end.eq(s1_v[2]),
                s2_final.eq(s1_final),
            ]

        # --- stage 2: update the row slots; a window that ends gives an output ---
        v_new = _update_slots(m, "v_new", vector, lanes, v_reads, v_writes, s2_addr,
                              s2_value, s2_first, advance & s2_valid, s2_inside)
        with m.If(advance):
            m.d.sync += [
                self.o.valid.eq(s2_valid & s2_end.any()),
                self.o.payload.last.eq(s2_final),
            ]
            for p in range(rows):
                with m.If(s2_end[p]):
                    m.d.sync += self.o.payload.data.eq(v_new[p])
        return m


class Upsample(wiring.Component):
    """Nearest-neighbour upsampling of a raster-order HWC image stream by integer factors.

    Output pixel ``(y, x)`` is input pixel ``(y // fy, x // fx)``, as ``numpy.repeat`` along both
    axes (the golden model). Each input row is written to one of two row buffers (one memory of
    ``2 * width * channels / lanes`` words) and read back ``fy`` times, each pixel ``fx`` times
    in a row. The first reading of a row chases its writing (an element is read from the cycle
    after it was written), and the next row is written while the current one is read, so the
    unit gives one beat per cycle: with a source that always offers a beat and a sink that is
    always ready, an image takes :attr:`image_cycles` ``= H * fy * W * fx * channels / lanes``
    cycles (the output beats), back to back across images.

    Backpressure on ``o`` stalls the reads (one clock enable, ``advance = ~o.valid | o.ready``);
    the input continues while a row buffer is free. ``o.valid``, ``o.payload`` and ``i.ready``
    are register outputs (the payload is the memory's read register).

    Parameters
    ----------
    height, width, channels : int
        Input image size; ``channels`` is a positive multiple of ``lanes``.
    factor : int or (int, int)
        ``(fy, fx)``, positive.
    lanes : int
        Channels per beat, at least 1.
    format : Format, str or int
        Format of the elements, 2 to 64 bits.

    Members
    -------
    i : In(stream.Signature(VectorLayout(bits, lanes)))
        Input images, raster order, channels last.
    o : Out(stream.Signature(VectorLayout(bits, lanes)))
        Output images of ``(H * fy, W * fx, channels)``, raster order, channels last; ``last``
        on each image's final beat.

    Attributes
    ----------
    image_cycles : int
        Output beats per image, ``H * fy * W * fx * channels / lanes``: the cycles an image
        takes at full rate.
    latency : int
        Cycles from an input beat being taken to its first copy being valid on ``o``, the
        unit being idle: 2 (write, then read).
    storage_bytes : int
        Bytes of the two row buffers, ``2 * width * channels`` elements.

    Raises
    ------
    TypeError
        If a size is not an integer, ``factor`` is not an integer or a pair of integers, or
        ``format`` is not a Format, a name or a width.
    ValueError
        If a size or ``factor`` is not positive, ``channels`` is not a multiple of ``lanes``, or
        ``format`` is not 2 to 64 bits.
    """

    latency = 2

    def __init__(self, height, width, channels, factor, *, lanes=1, format="int8"):
        _check_image("Upsample", height, width, channels, lanes)
        factor = check_pair("Upsample", "factor", factor, 1)
        fmt = check_format("Upsample", "format", format)
        self._height, self._width, self._channels = height, width, channels
        self._factor = factor
        self._lanes = lanes
        self._format = fmt
        super().__init__({
            "i": In(stream.Signature(VectorLayout(fmt.bits, lanes))),
            "o": Out(stream.Signature(VectorLayout(fmt.bits, lanes))),
        })

    height = property(lambda self: self._height)
    width = property(lambda self: self._width)
    channels = property(lambda self: self._channels)
    factor = property(lambda self: self._factor)
    lanes = property(lambda self: self._lanes)
    format = property(lambda self: self._format)

    @property
    def groups(self):
        """Beats per pixel, ``channels / lanes``."""
        return self._channels // self._lanes

    @property
    def out_height(self):
        return self._height * self._factor[0]

    @property
    def out_width(self):
        return self._width * self._factor[1]

    @property
    def image_cycles(self):
        return self.out_height * self.out_width * self.groups

    @property
    def storage_bytes(self):
        return self._format.nbytes(2 * self._width * self._channels)

    def cycles(self, images):
        """Cycles from the first beat taken on ``i`` to the last beat given on ``o``, for
        ``images`` images sent back to back with ``o`` always ready:
        ``images * image_cycles - 1 + latency``.
        """
        return images * self.image_cycles - 1 + self.latency

    def elaborate(self, platform):
        m = Module()
        bits, lanes, groups = self._format.bits, self._lanes, self.groups
        height, width = self._height, self._width
        fy, fx = self._factor
        row_beats = width * groups
        vector = data.ArrayLayout(signed(bits), lanes)
        m.submodules.rows = mem = memory.Memory(shape=vector, depth=2 * row_beats, init=[])
        write = mem.write_port()
        read = mem.read_port()

        # Rows in the buffers: being written or written (occupied), and fully written (complete).
        occupied = Signal(range(3), name="occupied")
        complete = Signal(range(3), name="complete")
        row_start, row_end, row_free = Signal(), Signal(), Signal()
        m.d.sync += [
            occupied.eq(occupied + row_start - row_free),
            complete.eq(complete + row_end - row_free),
        ]

        # --- input: write rows into the two buffers in turn ---
        w_slot = Signal(name="write_slot")
        w_count = Signal(range(row_beats), name="write_count")
        taken = Signal()
        m.d.comb += [
            self.i.ready.eq((w_count != 0) | (occupied != 2)),
            taken.eq(self.i.valid & self.i.ready),
            write.addr.eq(Mux(w_slot, row_beats, 0) + w_count),
            write.data.eq(self.i.payload.data),
            write.en.eq(taken),
        ]
        with m.If(taken):
            m.d.sync += w_count.eq(wrap_increment(w_count, row_beats))
            m.d.comb += row_start.eq(w_count == 0)
            with m.If(w_count == row_beats - 1):
                m.d.comb += row_end.eq(1)
                m.d.sync += w_slot.eq(~w_slot)

        # --- output: read each row fy times, each pixel fx times ---
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)
        r_slot = Signal(name="read_slot")
        r_row = Signal(range(height), name="read_row")
        r_copy = Signal(range(fy), name="read_copy")
        r_pixel = Signal(range(row_beats), name="read_pixel")      # x * groups
        r_repeat = Signal(range(fx), name="read_repeat")
        r_group = Signal(range(groups), name="read_group")
        r_addr = Signal(range(row_beats), name="read_addr")
        issue = Signal()
        m.d.comb += [
            r_addr.eq(r_pixel + r_group),
            # A complete row may be read anywhere; a row being written only where written.
            issue.eq((complete != 0) | ((occupied != 0) & (r_addr < w_count))),
            read.addr.eq(Mux(r_slot, row_beats, 0) + r_addr),
            read.en.eq(advance),
        ]
        end_pixel = r_group == groups - 1
        end_repeat = end_pixel & (r_repeat == fx - 1)
        end_row = end_repeat & (r_pixel == row_beats - groups)
        end_copy = end_row & (r_copy == fy - 1)
        final = end_copy & (r_row == height - 1)
        with m.If(advance & issue):
            m.d.sync += r_group.eq(wrap_increment(r_group, groups))
            with m.If(end_pixel):
                m.d.sync += r_repeat.eq(wrap_increment(r_repeat, fx))
                with m.If(end_repeat):
                    m.d.sync += r_pixel.eq(Mux(end_row, 0, r_pixel + groups))
                    with m.If(end_row):
                        m.d.sync += r_copy.eq(wrap_increment(r_copy, fy))
                        with m.If(end_copy):
                            m.d.comb += row_free.eq(1)
                            m.d.sync += [
                                r_slot.eq(~r_slot),
                                r_row.eq(wrap_increment(r_row, height)),
                            ]
        with m.If(advance):
            m.d.sync += [self.o.valid.eq(issue), self.o.payload.last.eq(final)]
        m.d.comb += self.o.payload.data.eq(read.data)
        return m
