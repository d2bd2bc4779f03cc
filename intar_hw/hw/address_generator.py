from itertools import product

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..integers import cdiv, is_int


__all__ = ["AddressLayout", "AddressGenerator"]


#: Most loops a nest may have (a 2D convolution window over channels needs 5).
MAX_LOOPS = 6
#: Most tensor dimensions a walk may index.
MAX_DIMS = 4


def _is_sequence(value):
    return isinstance(value, (tuple, list))


class AddressLayout(data.StructLayout):
    """Payload of an address stream.

    Parameters
    ----------
    addr_width : int
        Width of the ``addr`` field, at least 1.

    Fields
    ------
    addr : unsigned(addr_width)
        Element address; 0 when ``valid`` is 0.
    valid : 1
        1 when the position lies inside the tensor; 0 for padding and inserted zeros, whose
        operand the consumer must replace by zero.
    last : 1
        1 on the final position of the walk.
    """

    def __init__(self, addr_width):
        if not isinstance(addr_width, int) or isinstance(addr_width, bool):
            raise TypeError(f"Address width must be an integer, not {addr_width!r}")
        if addr_width < 1:
            raise ValueError(f"Address width must be at least 1, not {addr_width!r}")
        super().__init__({"addr": unsigned(addr_width), "valid": 1, "last": 1})


class AddressGenerator(wiring.Component):
    """An affine loop nest that streams tensor addresses, with a mask for padding.

    The nest runs ``len(bounds)`` loops, outermost first; loop ``l`` takes the indices
    ``0 .. bounds[l] - 1``. Every position of the nest names, for each tensor dimension ``d``, a
    *virtual coordinate*::

        coord[d] = offsets[d] + sum(coeffs[l][d] * index[l] for each loop l)
        q[d], r[d] = divmod(coord[d], divisors[d])          # floor division

    The position is *valid* when, for every ``d``, ``0 <= q[d] < extents[d]`` and, if
    ``exact[d]``, ``r[d] == 0``. Its address is ``base + sum(q[d] * strides[d])``, or 0 when the
    position is not valid. All parameters are constants of the hardware.

    One mechanism expresses every pattern a computing core needs:

    * tile walks and ragged edges: coefficients pick the tile and the element; positions past the
      edge of the tensor are masked (:meth:`matmul_tiles`);
    * convolution windows: coefficients ``stride`` (output position) and ``dilation`` (kernel
      tap), a negative offset for padding, masked outside ``0 .. extent - 1``
      (:meth:`conv2d_window`);
    * zero insertion (transposed convolution with stride ``s``): divisor ``s`` with ``exact``, so
      only every ``s``-th virtual coordinate reads an element (:meth:`conv_transpose2d`);
    * nearest upsampling by ``f``: divisor ``f`` without ``exact``, so ``f`` consecutive virtual
      coordinates read the same element (:meth:`upsample`, or ``upsample=`` of
      :meth:`conv2d_window` to fuse it with the convolution that follows).

    The hardware holds, per dimension, the quotient ``q[d]`` and remainder ``r[d]`` instead of the
    coordinate, and the address itself. Each step of the nest advances one loop and rewinds the
    loops inside it, which changes every coordinate by a constant known at construction; its
    ``divmod`` by the divisor is added to ``(q[d], r[d])`` with one carry from the remainder
    (a compare with a constant), and the address moves by a constant plus ``strides[d]`` per carry.
    So the generator has no multiplier or divider and any positive integer divisor is as cheap as a
    power of two: upsampling by 3 or a stride-3 transposed convolution need no special case.

    Parameters
    ----------
    bounds : sequence of int
        Trip count of each loop, outermost first; 1 to 6 loops, each at least 1.
    coeffs : sequence of sequences of int
        ``coeffs[l][d]``: what one step of loop ``l`` adds to coordinate ``d``. One row per loop,
        one entry per dimension; any sign.
    extents : sequence of int
        Size of each tensor dimension, in elements; 1 to 4 dimensions, each at least 1.
    strides : sequence of int
        Address distance between neighbours along each dimension; non-negative.
    offsets : sequence of int, optional
        Virtual coordinate of the first position, per dimension (negative for padding). Zeros by
        default.
    divisors : sequence of int, optional
        Virtual coordinates per tensor element, per dimension; at least 1. Ones by default.
    exact : sequence of bool, optional
        Per dimension, whether a coordinate that is not a multiple of its divisor is masked (zero
        insertion) rather than rounded down (upsampling). All ``False`` by default.
    base : int
        Address of the tensor's element 0; non-negative. Defaults to 0.

    Members
    -------
    start : In(1)
        Starts a walk from its first position. Honoured when ``busy`` is low, or in the cycle the
        final beat (``last``) is transferred on ``o``, so a start held high repeats the walk back to
        back with no idle cycle. Ignored at any other time: a walk is never cut short, as that
        would change a beat already offered on ``o``.
    busy : Out(1)
        High from the cycle after an honoured start until the final beat is transferred; equal to
        ``o.valid``.
    o : Out(stream.Signature(AddressLayout(addr_width)))
        One beat per position of the nest, in loop order (innermost fastest). A beat is offered
        on every cycle the generator is busy; it advances on each cycle ``o.ready`` is high, so it
        sustains one address per cycle, and backpressure simply holds the current beat.

    Attributes
    ----------
    latency : int
        Cycles from an honoured ``start`` to the first beat being valid on ``o``: 1.
    length : int
        Number of beats per walk, the product of ``bounds``.
    coord_ranges : tuple of (int, int)
        Smallest and largest virtual coordinate of each dimension over the nest; the quotient
        registers are sized exactly for ``divmod`` of this range by the divisor.
    addr_width : int
        Width of ``o.payload.addr``: ``ceil_log2`` of one more than the largest address a valid
        position can have (bounded per dimension), at least 1.

    Raises
    ------
    TypeError
        If ``bounds``, ``extents``, ``strides``, ``offsets`` or ``divisors`` is not a sequence of
        integers, ``coeffs`` is not a sequence of integer sequences, ``exact`` is not a sequence
        of booleans, or ``base`` is not an integer.
    ValueError
        If there are not 1 to 6 loops or 1 to 4 dimensions, a bound, extent or divisor is less
        than 1, a stride or ``base`` is negative, or the lengths of the parameters disagree (one
        error names every parameter that disagrees).
    """

    latency = 1

    def __init__(self, bounds, coeffs, extents, strides, *, offsets=None, divisors=None,
                 exact=None, base=0):
        bounds = self._integers("bounds", bounds)
        if not 1 <= len(bounds) <= MAX_LOOPS:
            raise ValueError(f"AddressGenerator bounds must list 1 to {MAX_LOOPS} loops, "
                             f"not {bounds!r}")
        if any(bound < 1 for bound in bounds):
            raise ValueError(f"AddressGenerator bounds must be positive integers, not {bounds!r}")
        if not (_is_sequence(coeffs) and
                all(_is_sequence(row) and all(is_int(c) for c in row) for row in coeffs)):
            raise TypeError(f"AddressGenerator coeffs must be a sequence of integer sequences, "
                            f"not {coeffs!r}")
        extents = self._integers("extents", extents)
        if not 1 <= len(extents) <= MAX_DIMS:
            raise ValueError(f"AddressGenerator extents must list 1 to {MAX_DIMS} dimensions, "
                             f"not {extents!r}")
        if any(extent < 1 for extent in extents):
            raise ValueError(f"AddressGenerator extents must be positive integers, not {extents!r}")
        strides = self._integers("strides", strides)
        if any(stride < 0 for stride in strides):
            raise ValueError(f"AddressGenerator strides must be non-negative integers, "
                             f"not {strides!r}")
        dims = len(extents)
        offsets = (0,) * dims if offsets is None else self._integers("offsets", offsets)
        divisors = (1,) * dims if divisors is None else self._integers("divisors", divisors)
        if any(divisor < 1 for divisor in divisors):
            raise ValueError(f"AddressGenerator divisors must be positive integers, "
                             f"not {divisors!r}")
        if exact is None:
            exact = (False,) * dims
        elif not (_is_sequence(exact) and all(isinstance(e, bool) for e in exact)):
            raise TypeError(f"AddressGenerator exact must be a sequence of booleans, "
                            f"not {exact!r}")
        if not is_int(base):
            raise TypeError(f"AddressGenerator base must be an integer, not {base!r}")
        if base < 0:
            raise ValueError(f"AddressGenerator base must be non-negative, not {base!r}")

        loops = len(bounds)
        problems = []
        if len(coeffs) != loops:
            problems.append(f"coeffs has {len(coeffs)} rows")
        row_lengths = tuple(len(row) for row in coeffs)
        if any(n != dims for n in row_lengths):
            problems.append(f"coeffs rows have lengths {row_lengths!r}")
        for name, value in (("strides", strides), ("offsets", offsets),
                            ("divisors", divisors), ("exact", exact)):
            if len(value) != dims:
                problems.append(f"{name} has {len(value)} entries")
        if problems:
            raise ValueError(f"AddressGenerator has {loops} loops (bounds) and {dims} dimensions "
                             f"(extents), but " + ", ".join(problems))

        self._bounds = bounds
        self._coeffs = tuple(tuple(int(c) for c in row) for row in coeffs)
        self._extents = extents
        self._strides = strides
        self._offsets = offsets
        self._divisors = divisors
        self._exact = tuple(exact)
        self._base = int(base)
        self._derive()
        super().__init__({
            "start": In(1),
            "busy": Out(1),
            "o": Out(stream.Signature(AddressLayout(self._addr_width))),
        })

    @staticmethod
    def _integers(name, value):
        if not (_is_sequence(value) and all(is_int(v) for v in value)):
            raise TypeError(f"AddressGenerator {name} must be a sequence of integers, "
                            f"not {value!r}")
        return tuple(int(v) for v in value)

    def _derive(self):
        """Coordinate and address ranges and per-step increments, all in plain Python."""
        loops, dims = len(self._bounds), len(self._extents)
        self._coord_ranges = tuple(
            (self._offsets[d] + sum(min(0, self._coeffs[l][d] * (b - 1))
                                    for l, b in enumerate(self._bounds)),
             self._offsets[d] + sum(max(0, self._coeffs[l][d] * (b - 1))
                                    for l, b in enumerate(self._bounds)))
            for d in range(dims))
        # floor division is monotonic, so the quotient range is exact too.
        self._quot_ranges = tuple((lo // k, hi // k)
                                  for (lo, hi), k in zip(self._coord_ranges, self._divisors))
        self._raw_range = (
            self._base + sum(s * lo for s, (lo, _) in zip(self._strides, self._quot_ranges)),
            self._base + sum(s * hi for s, (_, hi) in zip(self._strides, self._quot_ranges)))
        valid_hi = [min(extent - 1, hi)
                    for extent, (_, hi) in zip(self._extents, self._quot_ranges)]
        if any(hi < max(0, lo) for hi, (lo, _) in zip(valid_hi, self._quot_ranges)):
            max_addr = 0    # no position is valid: every beat carries address 0
        else:
            max_addr = self._base + sum(s * hi for s, hi in zip(self._strides, valid_hi))
        self._addr_width = max(1, ceil_log2(max_addr + 1))
        # Advancing loop l rewinds every loop inside it: a constant change of each coordinate.
        self._deltas = tuple(
            tuple(self._coeffs[l][d] - sum((self._bounds[i] - 1) * self._coeffs[i][d]
                                           for i in range(l + 1, loops))
                  for d in range(dims))
            for l in range(loops))

    @property
    def bounds(self):
        return self._bounds

    @property
    def coeffs(self):
        return self._coeffs

    @property
    def extents(self):
        return self._extents

    @property
    def strides(self):
        return self._strides

    @property
    def offsets(self):
        return self._offsets

    @property
    def divisors(self):
        return self._divisors

    @property
    def exact(self):
        return self._exact

    @property
    def base(self):
        return self._base

    @property
    def length(self):
        length = 1
        for bound in self._bounds:
            length *= bound
        return length

    @property
    def coord_ranges(self):
        return self._coord_ranges

    @property
    def addr_width(self):
        return self._addr_width

    def sequence(self):
        """The ``(addr, valid)`` pairs of one walk, in order, computed directly in Python.

        This is the contract the hardware meets beat for beat (``last`` is set on the final
        pair); the cost model and the golden model reuse it.
        """
        pairs = []
        dims = range(len(self._extents))
        for index in product(*(range(bound) for bound in self._bounds)):
            addr, valid = self._base, True
            for d in dims:
                coord = self._offsets[d] + sum(row[d] * i for row, i in zip(self._coeffs, index))
                q, r = divmod(coord, self._divisors[d])
                if not 0 <= q < self._extents[d] or (self._exact[d] and r):
                    valid = False
                addr += q * self._strides[d]
            pairs.append((addr if valid else 0, valid))
        return pairs

    # Helpers for the common patterns -----------------------------------------------------------

    @classmethod
    def _build(cls, src_loc_at, **params):
        # An unused-elaboratable warning should name the caller of the helper, not this file.
        self = cls.__new__(cls, src_loc_at=2 + src_loc_at)
        self.__init__(**params)
        return self

    @staticmethod
    def _int(method, name, value, minimum):
        if not is_int(value):
            raise TypeError(f"AddressGenerator.{method} {name} must be an integer, not {value!r}")
        if value < minimum:
            raise ValueError(f"AddressGenerator.{method} {name} must be at least {minimum}, "
                             f"not {value!r}")
        return int(value)

    @staticmethod
    def _pair(method, name, value, minimum):
        if is_int(value):
            pair = (int(value), int(value))
        elif _is_sequence(value) and len(value) == 2 and all(is_int(v) for v in value):
            pair = (int(value[0]), int(value[1]))
        else:
            raise TypeError(f"AddressGenerator.{method} {name} must be an integer or a pair of "
                            f"integers, not {value!r}")
        if min(pair) < minimum:
            raise ValueError(f"AddressGenerator.{method} {name} must be at least {minimum}, "
                             f"not {value!r}")
        return pair

    @classmethod
    def matmul_tiles(cls, rows, cols, tile_rows, tile_cols, *, transpose=False, row_stride=None,
                     base=0):
        """Walk a ``rows`` x ``cols`` matrix tile by tile.

        Tiles of ``tile_rows`` x ``tile_cols`` are visited in row-major order, and the elements
        of each tile in row-major order. Element ``(r, c)`` is at ``base + r * row_stride + c``,
        or, with ``transpose``, at ``base + c * row_stride + r`` (the walked matrix is the
        transpose of the stored one, as the ``B^T`` of ``A @ B^T``). ``row_stride`` defaults to
        the stored row length. Edge tiles are padded to full size with masked positions.
        """
        method = "matmul_tiles"
        rows = cls._int(method, "rows", rows, 1)
        cols = cls._int(method, "cols", cols, 1)
        tile_rows = cls._int(method, "tile_rows", tile_rows, 1)
        tile_cols = cls._int(method, "tile_cols", tile_cols, 1)
        if not isinstance(transpose, bool):
            raise TypeError(f"AddressGenerator.{method} transpose must be a boolean, "
                            f"not {transpose!r}")
        stored_row = rows if transpose else cols
        row_stride = stored_row if row_stride is None else row_stride
        row_stride = cls._int(method, "row_stride", row_stride, stored_row)
        return cls._build(
            0,
            bounds=(cdiv(rows, tile_rows), cdiv(cols, tile_cols), tile_rows, tile_cols),
            coeffs=((tile_rows, 0), (0, tile_cols), (1, 0), (0, 1)),
            extents=(rows, cols),
            strides=(1, row_stride) if transpose else (row_stride, 1),
            base=base)

    @classmethod
    def _window(cls, method, shape, kernel, stride, dilation, low, virtual, high, divisors,
                exact, base):
        """Convolution window over a virtual input ``low + virtual + high`` per spatial axis."""
        height, width, channels = shape
        out = tuple((lo + v + hi - d * (k - 1) - 1) // s + 1
                    for lo, v, hi, d, k, s in zip(low, virtual, high, dilation, kernel, stride))
        if min(out) < 1:
            raise ValueError(f"AddressGenerator.{method} output size must be positive, "
                             f"not {out!r}")
        (sy, sx), (dy, dx) = stride, dilation
        return cls._build(
            1,
            bounds=(out[0], out[1], kernel[0], kernel[1], channels),
            coeffs=((sy, 0, 0), (0, sx, 0), (dy, 0, 0), (0, dx, 0), (0, 0, 1)),
            extents=(height, width, channels),
            strides=(width * channels, channels, 1),
            offsets=(-low[0], -low[1], 0),
            divisors=(divisors[0], divisors[1], 1),
            exact=(exact, exact, False),
            base=base)

    @classmethod
    def conv2d_window(cls, height, width, channels, kernel, *, stride=1, padding=0, dilation=1,
                      upsample=1, base=0):
        """Walk the im2col rows of a 2D convolution over a channels-last ``(H, W, C)`` tensor.

        Loops ``(out_y, out_x, ky, kx, c)``, so each group of ``kh * kw * channels`` beats is
        one output position's receptive field in ``(ky, kx, c)`` order. Element ``(y, x, c)`` is at
        ``base + (y * width + x) * channels + c``. ``kernel``, ``stride``, ``padding`` (zeros on
        both sides), ``dilation`` and ``upsample`` take an integer or a ``(y, x)`` pair.
        ``upsample`` convolves over the nearest-neighbour upsampled input without storing it.
        The output is ``(H * upsample + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1``
        positions along each axis.
        """
        method = "conv2d_window"
        shape = tuple(cls._int(method, name, value, 1) for name, value in
                      (("height", height), ("width", width), ("channels", channels)))
        kernel = cls._pair(method, "kernel", kernel, 1)
        stride = cls._pair(method, "stride", stride, 1)
        padding = cls._pair(method, "padding", padding, 0)
        dilation = cls._pair(method, "dilation", dilation, 1)
        upsample = cls._pair(method, "upsample", upsample, 1)
        virtual = (shape[0] * upsample[0], shape[1] * upsample[1])
        return cls._window(method, shape, kernel, stride, dilation, padding, virtual, padding,
                           upsample, False, base)

    @classmethod
    def conv_transpose2d(cls, height, width, channels, kernel, *, stride=1, padding=0,
                         output_padding=0, dilation=1, base=0):
        """Walk the input windows of a 2D transposed convolution, as a stride-1 convolution.

        The input (channels-last, as in :meth:`conv2d_window`) is read as if ``stride - 1`` zeros
        were inserted between neighbours and ``dilation * (kernel - 1) - padding`` zeros padded on
        each side (plus ``output_padding`` after), then convolved with stride 1 and the spatially
        flipped kernel: the window tap ``(ky, kx)`` pairs with weight
        ``(kernel_y - 1 - ky, kernel_x - 1 - kx)``. The output is
        ``(H - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1`` positions
        per axis, as in PyTorch's ``ConvTranspose2d``. Parameters take an integer or a ``(y, x)``
        pair; ``output_padding`` must be less than ``stride``.
        """
        method = "conv_transpose2d"
        shape = tuple(cls._int(method, name, value, 1) for name, value in
                      (("height", height), ("width", width), ("channels", channels)))
        kernel = cls._pair(method, "kernel", kernel, 1)
        stride = cls._pair(method, "stride", stride, 1)
        padding = cls._pair(method, "padding", padding, 0)
        output_padding_arg = output_padding
        output_padding = cls._pair(method, "output_padding", output_padding, 0)
        dilation = cls._pair(method, "dilation", dilation, 1)
        if any(op >= s for op, s in zip(output_padding, stride)):
            raise ValueError(f"AddressGenerator.{method} output_padding must be less than stride "
                             f"{stride!r}, not {output_padding_arg!r}")
        # A negative pad (padding > dilation * (kernel - 1)) crops, which the offsets express too.
        low = tuple(d * (k - 1) - p for d, k, p in zip(dilation, kernel, padding))
        high = tuple(lo + op for lo, op in zip(low, output_padding))
        virtual = tuple((n - 1) * s + 1 for n, s in zip(shape, stride))
        return cls._window(method, shape, kernel, (1, 1), dilation, low, virtual, high, stride,
                           True, base)

    @classmethod
    def upsample(cls, height, width, channels, factor, *, base=0):
        """Walk a channels-last ``(H, W, C)`` tensor as its nearest-neighbour upsampling.

        The walk has ``(H * factor_y, W * factor_x, C)`` positions in row-major order, all valid;
        output ``(y, x, c)`` reads input ``(y // factor_y, x // factor_x, c)``. ``factor`` is an
        integer or a ``(y, x)`` pair of positive integers (not only powers of two).
        """
        method = "upsample"
        height = cls._int(method, "height", height, 1)
        width = cls._int(method, "width", width, 1)
        channels = cls._int(method, "channels", channels, 1)
        fy, fx = cls._pair(method, "factor", factor, 1)
        return cls._build(
            0,
            bounds=(height * fy, width * fx, channels),
            coeffs=((1, 0, 0), (0, 1, 0), (0, 0, 1)),
            extents=(height, width, channels),
            strides=(width * channels, channels, 1),
            divisors=(fy, fx, 1),
            base=base)

    # Hardware ----------------------------------------------------------------------------------

    def elaborate(self, platform):
        m = Module()
        loops, dims = len(self._bounds), len(self._extents)

        index = [Signal(range(bound), name=f"index_{l}") for l, bound in enumerate(self._bounds)]
        quot = [Signal(range(lo, hi + 1), name=f"quot_{d}")
                for d, (lo, hi) in enumerate(self._quot_ranges)]
        rem = [Signal(range(k), name=f"rem_{d}") if k > 1 else None
               for d, k in enumerate(self._divisors)]
        raw = Signal(range(self._raw_range[0], self._raw_range[1] + 1), name="raw_addr")
        active = Signal()

        at_end = [index[l] == bound - 1 for l, bound in enumerate(self._bounds)]
        last = Cat(*at_end).all()
        inside = []
        for d in range(dims):
            (lo, hi), extent = self._quot_ranges[d], self._extents[d]
            # Tests that the ranges computed at construction make constant are left out.
            if lo < 0:
                inside.append(quot[d] >= 0)
            if hi >= extent:
                inside.append(quot[d] < extent)
            if self._exact[d] and rem[d] is not None:
                inside.append(rem[d] == 0)
        valid = Cat(*inside).all() if inside else C(1, 1)

        m.d.comb += [
            self.o.valid.eq(active),
            self.busy.eq(active),
            self.o.payload.addr.eq(Mux(valid, raw, 0)),
            self.o.payload.valid.eq(valid),
            self.o.payload.last.eq(last),
        ]

        def restart():
            first = [divmod(offset, k) for offset, k in zip(self._offsets, self._divisors)]
            m.d.sync += [i.eq(0) for i in index]
            m.d.sync += [quot[d].eq(q) for d, (q, _) in enumerate(first)]
            m.d.sync += [rem[d].eq(r) for d, (_, r) in enumerate(first) if rem[d] is not None]
            m.d.sync += raw.eq(self._base + sum(s * q for s, (q, _) in zip(self._strides, first)))

        def advance(l):
            m.d.sync += index[l].eq(index[l] + 1)
            m.d.sync += [index[i].eq(0) for i in range(l + 1, loops)]
            step = 0
            carries = []
            for d, delta in enumerate(self._deltas[l]):
                dq, dr = divmod(delta, self._divisors[d])
                step += dq * self._strides[d]
                if dr == 0:
                    m.d.sync += quot[d].eq(quot[d] + dq)
                else:
                    total = rem[d] + dr
                    carry = total >= self._divisors[d]
                    m.d.sync += [
                        rem[d].eq(Mux(carry, total - self._divisors[d], total)),
                        quot[d].eq(quot[d] + dq + carry),
                    ]
                    if self._strides[d]:
                        carries.append(Mux(carry, self._strides[d], 0))
            m.d.sync += raw.eq(sum(carries, raw + step))

        transfer = self.o.valid & self.o.ready
        with m.If(self.start & (~active | (transfer & last))):
            restart()
            m.d.sync += active.eq(1)
        with m.Elif(transfer & last):
            m.d.sync += active.eq(0)
        with m.Elif(transfer):
            # The innermost loop not at its end advances; the outermost needs no test.
            for n, l in enumerate(reversed(range(1, loops))):
                with (m.If if n == 0 else m.Elif)(~at_end[l]):
                    advance(l)
            if loops == 1:
                advance(0)
            else:
                with m.Else():
                    advance(0)
        return m
