from collections.abc import Iterable, Mapping, Sequence

from amaranth import *
from amaranth.hdl import ShapeCastable
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from ..integers import cdiv
from .memory_map import ecp5_brams


__all__ = ["ReadRequest", "ReadResponse", "WriteRequest", "ReadPortSignature", "Scratchpad",
           "scratchpad_brams"]


# ECP5 DP16KD in pseudo-dual-port mode (one read and one write port): (depth, width) aspect ratios.
_BRAM_18K_ASPECTS = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))


class ReadRequest(data.StructLayout):
    """Payload of a read request: ``addr``, a word address ``addr_width`` bits wide."""

    def __init__(self, addr_width):
        super().__init__({"addr": unsigned(addr_width)})


class ReadResponse(data.StructLayout):
    """Payload of a read response: ``data``, one word of ``shape``."""

    def __init__(self, shape):
        super().__init__({"data": shape})


class WriteRequest(data.StructLayout):
    """Payload of a write: ``addr`` (``addr_width`` bits) and ``data`` (one word of ``shape``).

    With ``slots > 1`` it also holds ``en``, one bit per slot (equal parts of the word, slot 0
    at the low end): only the enabled slots are written.
    """

    def __init__(self, addr_width, shape, slots=1):
        fields = {"addr": unsigned(addr_width), "data": shape}
        if slots > 1:
            fields["en"] = unsigned(slots)
        super().__init__(fields)


class ReadPortSignature(wiring.Signature):
    """One read port, seen from the requester: requests go out, responses come back.

    Members
    -------
    req : Out(stream.Signature(ReadRequest(addr_width)))
        Word addresses to read.
    resp : In(stream.Signature(ReadResponse(shape)))
        The words read, one per request, in request order.
    """

    def __init__(self, addr_width, shape):
        self._addr_width = addr_width
        self._shape = shape
        super().__init__({
            "req": Out(stream.Signature(ReadRequest(addr_width))),
            "resp": In(stream.Signature(ReadResponse(shape))),
        })

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def shape(self):
        return self._shape

    def __eq__(self, other):
        return type(other) is type(self) and other.members == self.members

    def __repr__(self):
        return f"ReadPortSignature({self._addr_width!r}, {self._shape!r})"


def _check_shape(owner, shape):
    try:
        width = Shape.cast(shape).width
    except TypeError:
        raise TypeError(f"{owner} shape must be a shape-castable object, not {shape!r}") from None
    if width < 1:
        raise ValueError(f"{owner} shape must be at least 1 bit wide, not {shape!r}")


def _check_positive(owner, name, value):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be a positive integer, not {value!r}")
    if value < 1:
        raise ValueError(f"{owner} {name} must be a positive integer, not {value!r}")


def _word_fits(shape, value):
    """Whether ``value`` is an exact constant of ``shape`` (no silent truncation or padding)."""
    if isinstance(shape, data.ArrayLayout):
        return (isinstance(value, Sequence) and not isinstance(value, str) and
                len(value) == shape.length and all(_word_fits(shape.elem_shape, v) for v in value))
    if isinstance(shape, (data.StructLayout, data.UnionLayout)):
        return (isinstance(value, Mapping) and
                all(k in shape.members and _word_fits(shape.members[k], v)
                    for k, v in value.items()))
    if isinstance(shape, ShapeCastable):
        try:
            Const.cast(shape.const(value))
        except Exception:
            return False
        return True
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    shape = Shape.cast(shape)
    if shape.signed:
        return -(1 << (shape.width - 1)) <= value < (1 << (shape.width - 1))
    return 0 <= value < (1 << shape.width)


def _check_init(owner, shape, depth, init):
    """Validate initial memory contents; return them as a tuple of at most ``depth`` words."""
    if not isinstance(init, Iterable) or isinstance(init, (str, Mapping)):
        raise TypeError(f"{owner} init must be an iterable of words, not {init!r}")
    init = tuple(init)
    if len(init) > depth:
        raise ValueError(f"{owner} init must hold at most depth {depth} words, not {len(init)}")
    for index, word in enumerate(init):
        if not _word_fits(shape, word):
            raise ValueError(f"{owner} init word {index} must be a constant of shape {shape!r}, "
                             f"not {word!r}")
    return init


def scratchpad_brams(shape, depth, *, write_ports=1, banks=1, slots=1):
    """ECP5 block RAMs (DP16KD) Yosys 0.70's ``synth_ecp5`` maps a :class:`Scratchpad` of these
    parameters to (its other parameters do not matter): ``banks`` times
    :func:`.memory_map.ecp5_brams` of one bank, ``depth // banks`` words with one synchronous
    read port and, if ``write_ports``, one write port of ``slots`` write enables.

    Exact when every bit of the words can change (Yosys drops bits that are constant in the
    initial contents and all writes); raises :class:`TypeError`/:class:`ValueError` as
    :func:`.memory_map.ecp5_memory` does for bad counts.
    """
    _check_shape("Scratchpad", shape)
    width = Shape.cast(shape).width
    return banks * ecp5_brams(width, depth // banks, read_ports=1,
                              write_ports=min(1, write_ports), granules=slots)


class Scratchpad(wiring.Component):
    """Banked synchronous on-chip memory with several read and write stream ports.

    Words are interleaved over ``banks`` block-RAM banks by their low address bits: word ``addr``
    lives in bank ``addr % banks`` at row ``addr // banks``. Each bank has one read and one write
    port per cycle, so reads to different banks, and writes to different banks, proceed in
    parallel; a read and a write never conflict with each other.

    Contract:

    * **Bank conflicts.** Fixed priority by port index: among the read ports that request the
      same bank in a cycle (and can accept it, see below), the lowest-indexed one is served and the
      others see ``req.ready`` low, keeping their request for a later cycle; likewise for write
      ports. No request is dropped or reordered within a port.
    * **Read latency.** A response is valid on ``read[i].resp`` the cycle after its request was
      transferred (:attr:`latency` = 1). Each read port has room for one response: while a response
      waits on a sink that is not ready, the port accepts no new request (the word is held, never
      dropped: by the bank's read port itself when the scratchpad has one read port, else in a
      hold register, since another port may read the bank meanwhile). A response transferred in
      the same cycle as a new request keeps the port at one access per cycle.
    * **Throughput.** One access per port per cycle when the read ports address distinct banks,
      the write ports address distinct banks and the response sinks are ready.
    * **Ordering.** A write takes effect at the end of the cycle in which it is transferred. A
      read transferred in the *same* cycle as a write to the same address returns the *old* word
      (non-transparent block RAM); a read transferred in any later cycle returns the new word.
    * Addresses at or beyond ``depth`` (possible when ``depth`` is not a power of two) are not
      checked; what they read or write is unspecified.

    Parameters
    ----------
    shape : shape-like
        Shape of one word: a plain shape or a :mod:`~amaranth.lib.data` layout, e.g.
        ``data.ArrayLayout(signed(8), 4)`` for a vector of four int8 lanes.
    depth : int
        Number of words.
    read_ports : int
        Number of read ports, at least 1.
    write_ports : int
        Number of write ports, at least 0 (0 makes a ROM holding ``init``).
    banks : int
        Number of banks, a power of two dividing ``depth``.
    slots : int
        Independently written parts of a word, at least 1: with more than one, ``shape`` is an
        :class:`~amaranth.lib.data.ArrayLayout` whose length ``slots`` divides, and each write
        carries an ``en`` bit per slot (:class:`WriteRequest`); a read returns the whole word.
    init : iterable of words
        Initial contents from address 0, at most ``depth`` words; the rest are zero. Words are
        ``int`` for plain shapes, nested lists or dicts for layouts (as :meth:`Layout.const`
        takes them), each fitting ``shape`` exactly.

    Members
    -------
    read : In(ReadPortSignature(addr_width, shape)).array(read_ports)
        ``read[i].req`` takes :class:`ReadRequest` (``addr``); ``read[i].resp`` gives
        :class:`ReadResponse` (``data``), in request order.
    write : In(stream.Signature(WriteRequest(addr_width, shape, slots))).array(write_ports)
        Words to store (``addr``, ``data``, and ``en`` with several slots).

    Attributes
    ----------
    latency : int
        Cycles from a read request's transfer to its response being valid: 1.
    addr_width : int
        Width of the ``addr`` fields, ``ceil_log2(depth)``.
    bytes_per_word : int
        ``ceil(width / 8)`` for the word width.
    size_bytes : int
        ``depth * bytes_per_word``.
    brams_18k : int
        ECP5 18-kbit block RAMs (DP16KD) needed if every bank is mapped to block RAM: per bank, the
        cheapest aspect ratio of 16384x1 .. 512x36 covering its ``depth // banks`` words. Yosys
        may put very small banks into LUT RAM instead, so this is an upper bound.
    brams : int
        ECP5 block RAMs (DP16KD) Yosys 0.70's ``synth_ecp5`` maps the banks to
        (:func:`scratchpad_brams`): small banks go to LUT RAM (0 here).

    Raises
    ------
    TypeError
        If ``shape`` is not shape-castable, a count is not an integer or ``init`` is not iterable.
    ValueError
        If ``shape`` is 0 bits wide, a count is out of range, ``banks`` is not a power of two
        dividing ``depth``, ``slots`` does not divide an array layout's length, ``init`` holds
        more than ``depth`` words or a word does not fit.
    """

    latency = 1

    def __init__(self, shape, depth, *, read_ports=1, write_ports=1, banks=1, slots=1, init=()):
        _check_shape("Scratchpad", shape)
        _check_positive("Scratchpad", "depth", depth)
        _check_positive("Scratchpad", "read_ports", read_ports)
        if not isinstance(write_ports, int) or isinstance(write_ports, bool):
            raise TypeError(f"Scratchpad write_ports must be a non-negative integer, "
                            f"not {write_ports!r}")
        if write_ports < 0:
            raise ValueError(f"Scratchpad write_ports must be a non-negative integer, "
                             f"not {write_ports!r}")
        _check_positive("Scratchpad", "banks", banks)
        if banks & (banks - 1) or depth % banks:
            raise ValueError(f"Scratchpad banks must be a power of two dividing depth {depth}, "
                             f"not {banks!r}")
        _check_positive("Scratchpad", "slots", slots)
        if slots > 1 and (not isinstance(shape, data.ArrayLayout) or shape.length % slots):
            raise ValueError(f"Scratchpad slots must divide the length of an array layout shape, "
                             f"not {slots!r} for {shape!r}")
        self._slots = slots
        self._init = _check_init("Scratchpad", shape, depth, init)
        self._shape = shape
        self._depth = depth
        self._read_ports = read_ports
        self._write_ports = write_ports
        self._banks = banks
        addr_width = ceil_log2(depth)
        super().__init__({
            "read": In(ReadPortSignature(addr_width, shape)).array(read_ports),
            "write": In(stream.Signature(WriteRequest(addr_width, shape, slots)))
            .array(write_ports),
        })

    @property
    def shape(self):
        return self._shape

    @property
    def depth(self):
        return self._depth

    @property
    def read_ports(self):
        return self._read_ports

    @property
    def write_ports(self):
        return self._write_ports

    @property
    def banks(self):
        return self._banks

    @property
    def slots(self):
        return self._slots

    @property
    def init(self):
        return self._init

    @property
    def addr_width(self):
        return ceil_log2(self._depth)

    @property
    def bytes_per_word(self):
        return (Shape.cast(self._shape).width + 7) // 8

    @property
    def size_bytes(self):
        return self._depth * self.bytes_per_word

    @property
    def brams_18k(self):
        width = Shape.cast(self._shape).width
        rows = self._depth // self._banks
        per_bank = min(cdiv(width, w) * cdiv(rows, d) for d, w in _BRAM_18K_ASPECTS)
        return self._banks * per_bank

    @property
    def brams(self):
        return scratchpad_brams(self._shape, self._depth, write_ports=self._write_ports,
                                banks=self._banks, slots=self._slots)

    def elaborate(self, platform):
        m = Module()
        banks = self._banks
        bank_bits = exact_log2(banks)
        rows = self._depth // banks

        def bank_of(addr):
            return addr[:bank_bits]

        def row_of(addr):
            return (addr >> bank_bits)[:ceil_log2(rows)]

        bank_reads, bank_writes = [], []
        for b in range(banks):
            bank = memory.Memory(shape=self._shape, depth=rows, init=self._init[b::banks])
            m.submodules[f"bank_{b}"] = bank
            bank_reads.append(bank.read_port())
            if self._write_ports:
                granularity = None
                if self._slots > 1:
                    granularity = self._shape.length // self._slots
                bank_writes.append(bank.write_port(granularity=granularity))

        # Read ports: a port is free when it holds no response or its response leaves this cycle;
        # only free ports take part in arbitration, so a stalled port never blocks a bank.
        free, accept, req_bank = [], [], []
        for p, port in enumerate(self.read):
            pending = Signal(name=f"read_{p}_pending")    # response is on the bank's read data
            held = Signal(name=f"read_{p}_held")          # response is in the hold register
            held_data = Signal(self._shape, name=f"read_{p}_held_data")
            sel = Signal(range(banks), name=f"read_{p}_bank")
            p_free = Signal(name=f"read_{p}_free")
            p_accept = Signal(name=f"read_{p}_accept")
            p_bank = bank_of(port.req.payload.addr)
            conflict = Const(0)
            for q in range(p):
                conflict = conflict | (self.read[q].req.valid & free[q] & (req_bank[q] == p_bank))
            m.d.comb += [
                port.resp.valid.eq(pending | held),
                p_free.eq(~port.resp.valid | port.resp.ready),
                port.req.ready.eq(p_free & ~conflict),
                p_accept.eq(port.req.valid & port.req.ready),
            ]
            with m.If(held):
                m.d.comb += port.resp.payload.data.eq(held_data)
            with m.Else():
                with m.Switch(sel):
                    for b in range(banks):
                        with m.Case(b):
                            m.d.comb += port.resp.payload.data.eq(bank_reads[b].data)
            with m.If(p_accept):
                m.d.sync += sel.eq(p_bank)
            if self._read_ports == 1:
                # Nothing else reads the bank while this port's response waits (the port takes
                # no request until then), so the bank's read data holds by itself.
                m.d.sync += pending.eq(p_accept | (pending & ~port.resp.ready))
            else:
                m.d.sync += pending.eq(p_accept)
                with m.If(pending & ~port.resp.ready):
                    # The bank's read data changes once another port's request uses the bank:
                    # keep a copy.
                    m.d.sync += [held.eq(1), held_data.eq(port.resp.payload.data)]
                with m.Elif(port.resp.ready):
                    m.d.sync += held.eq(0)
            free.append(p_free)
            accept.append(p_accept)
            req_bank.append(p_bank)

        for b, bank_read in enumerate(bank_reads):
            m.d.comb += bank_read.en.eq(0)
            with m.If(Cat(a & (req_bank[p] == b) for p, a in enumerate(accept)).any()):
                m.d.comb += bank_read.en.eq(1)
            for p in reversed(range(self._read_ports)):
                # At most one accepted port targets a bank, so the order here is immaterial.
                with m.If(accept[p] & (req_bank[p] == b)):
                    m.d.comb += bank_read.addr.eq(row_of(self.read[p].req.payload.addr))

        # Write ports: the lowest-indexed valid port wins each bank.
        write_bank = []
        for q, port in enumerate(self.write):
            q_bank = bank_of(port.payload.addr)
            conflict = Const(0)
            for r in range(q):
                conflict = conflict | (self.write[r].valid & (write_bank[r] == q_bank))
            m.d.comb += port.ready.eq(~conflict)
            write_bank.append(q_bank)

        for b, bank_write in enumerate(bank_writes):
            m.d.comb += bank_write.en.eq(0)
            for q in reversed(range(self._write_ports)):
                port = self.write[q]
                with m.If(port.valid & (write_bank[q] == b)):
                    m.d.comb += [
                        bank_write.en.eq(port.payload.en if self._slots > 1 else 1),
                        bank_write.addr.eq(row_of(port.payload.addr)),
                        bank_write.data.eq(port.payload.data),
                    ]

        return m
