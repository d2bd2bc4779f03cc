"""The board's side of the host link: a UART pair and an executor of :mod:`.frames` requests."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..hw.scratchpad import ReadPortSignature, WriteRequest
from ..hw.uart import UARTReceiver, UARTTransmitter, check_divisor
from . import frames
from .frames import Command, Status


__all__ = ["HostLink"]


def _crc8_next(crc, byte):
    """The CRC after ``byte`` as logic: CRC-8 without reflection or final XOR is linear in
    ``crc ^ byte``, so each output bit is the XOR of the input bits whose unit vector sets it."""
    x = crc ^ byte
    bits = []
    for j in range(8):
        taps = [i for i in range(8) if frames.crc8(bytes([1 << i])) >> j & 1]
        bits.append(Cat(*(x[i] for i in taps)).xor())
    return Cat(*bits)


def _check_int(name, value, low, high):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"HostLink {name} must be an integer from {low} to {high}, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"HostLink {name} must be an integer from {low} to {high}, not {value!r}")


class HostLink(wiring.Component):
    """Executes :mod:`.frames` requests arriving on a serial line and sends their responses.

    The protocol (framing, commands, status codes) is documented in :mod:`.frames`. The link
    parses one request at a time and executes it only once its CRC has matched: a ``WRITE``'s
    data are kept in a buffer of ``max_payload`` bytes inside the link and written out after the
    check. A request with a bad CRC, an unknown command or a bad length is answered with that
    status and changes nothing. Bytes before a sync byte are skipped; bytes that arrive while a
    request is executed or its response sent are dropped (the host waits for each response). A
    request in which the line stays idle for more than ``timeout_bits`` bit times is dropped and
    answered ``TRUNCATED``; a byte with a framing error is dropped by the UART, so its request
    ends as ``TRUNCATED`` or ``BAD_CRC``.

    Memory side (byte-wide; a board top adapts it to its memories):

    * ``mem_write`` carries one :class:`~intar_hw.hw.scratchpad.WriteRequest` per data byte, in
      address order, after the whole ``WRITE`` frame has been checked. ``valid`` and ``payload``
      are register outputs. The ``OK`` response starts after the last byte has been taken.
    * ``mem_read`` asks for one byte at a time: a request on ``mem_read.req`` (register outputs),
      then the byte from ``mem_read.resp`` (any latency, ``resp.ready`` is high once the link can
      send the byte), then the next request. A write taken before a ``READ`` begins is visible
      to it if the memory orders its ports so (a :class:`~intar_hw.hw.scratchpad.Scratchpad`
      does).
    * Addresses are byte addresses modulo ``2 ** addr_width`` and wrap within it.

    Accelerator side:

    * ``start`` is high for one cycle (a register output) while the ``START`` request is
      answered. The link does not look at ``busy`` before starting.
    * The link's 64-bit cycle counter is 0 in the cycle ``start`` is high and counts every cycle
      until ``done`` rises (is high after a low cycle): a ``done`` rising ``k`` cycles after the
      ``start`` cycle leaves ``k``, which ``CYCLES`` returns. ``CYCLES`` while running returns the
      count so far. ``done`` may be a pulse or a level that falls after ``start``.
    * ``STATUS`` reports ``busy`` as it is once the request has been checked, and ``done`` as a
      sticky flag set when ``done`` rises after a ``start`` and cleared by the next ``START``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit on the serial line, at least 4.
    addr_width : int
        Width of the byte addresses on ``mem_write`` and ``mem_read``, 1 to 32.
    max_payload : int
        Largest ``WRITE`` or ``READ`` in data bytes, 1 to 65531; the size of the write buffer.
    timeout_bits : int
        Idle bit times after which a partial request is dropped, at least 1.

    Members
    -------
    rx : In(1)
        Serial line from the host, idle high, asynchronous (synchronised inside).
    tx : Out(1)
        Serial line to the host, idle high.
    mem_write : Out(stream.Signature(WriteRequest(addr_width, 8)))
        Bytes to store in the board's memory (``addr``, ``data``).
    mem_read : Out(ReadPortSignature(addr_width, 8))
        Byte reads from the board's memory.
    start : Out(1)
        One-cycle pulse starting the accelerator.
    busy : In(1)
        The accelerator is running (reported by ``STATUS``).
    done : In(1)
        The accelerator has finished; its rising edge stops the cycle counter.

    Attributes
    ----------
    buffer_depth : int
        Bytes in the write buffer: ``max_payload`` rounded up to a power of two.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, divisor, addr_width, max_payload=frames.MAX_PAYLOAD, *,
                 timeout_bits=frames.TIMEOUT_BITS):
        check_divisor("HostLink", divisor)
        _check_int("addr_width", addr_width, 1, 32)
        frames.check_max_payload("HostLink", max_payload)
        if not isinstance(timeout_bits, int) or isinstance(timeout_bits, bool):
            raise TypeError(f"HostLink timeout_bits must be a positive integer, "
                            f"not {timeout_bits!r}")
        if timeout_bits < 1:
            raise ValueError(f"HostLink timeout_bits must be a positive integer, "
                             f"not {timeout_bits!r}")
        self._divisor = divisor
        self._addr_width = addr_width
        self._max_payload = max_payload
        self._timeout_bits = timeout_bits
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "mem_write": Out(stream.Signature(WriteRequest(addr_width, 8))),
            "mem_read": Out(ReadPortSignature(addr_width, 8)),
            "start": Out(1),
            "busy": In(1),
            "done": In(1),
        })

    @property
    def divisor(self):
        return self._divisor

    @property
    def addr_width(self):
        return self._addr_width

    @property
    def max_payload(self):
        return self._max_payload

    @property
    def timeout_bits(self):
        return self._timeout_bits

    @property
    def buffer_depth(self):
        return 1 << ceil_log2(self._max_payload)

    def elaborate(self, platform):
        m = Module()
        aw = self._addr_width
        max_payload = self._max_payload

        m.submodules.uart_rx = uart_rx = UARTReceiver(self._divisor,
                                                      idle_bits=self._timeout_bits)
        m.submodules.uart_tx = uart_tx = UARTTransmitter(self._divisor)
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx), uart_rx.o.ready.eq(1)]
        rx_valid = uart_rx.o.valid
        rx_byte = uart_rx.o.payload
        # Bytes to the transmitter: a one-byte register that the FSM fills when empty.
        tx_valid = Signal()
        tx_data = Signal(8)

        m.submodules.buffer = buffer = memory.Memory(shape=8, depth=self.buffer_depth, init=[])
        buf_write = buffer.write_port()
        buf_read = buffer.read_port()
        m.d.comb += [buf_write.en.eq(0), buf_read.en.eq(0)]

        command = Signal(8)
        status = Signal(3)
        remaining = Signal(16)      # frame length, then bytes left to receive, store or send
        pos = Signal(range(5))      # payload byte index, saturating at 4 (past the address)
        address = Signal(aw)
        count = Signal(16)          # READ count: the last two payload bytes
        wptr = Signal(ceil_log2(max_payload + 1))   # data bytes buffered, then the read pointer
        len_ok = Signal()
        wdata = Signal(8)
        snapshot = Signal(64)       # STATUS flags or CYCLES count, sent from the low byte

        # Every byte after a sync byte, received or sent, goes through the one CRC register: a
        # received byte as it arrives, a sent byte from the transmit register the cycle after it
        # was loaded (so that no path runs from the choice of the byte to the CRC).
        crc = Signal(8)
        crc_rx = Signal()
        crc_tx = Signal()
        m.d.sync += crc_tx.eq(0)
        with m.If(crc_rx | crc_tx):
            m.d.sync += crc.eq(_crc8_next(crc, Mux(crc_tx, tx_data, rx_byte)))

        m.d.comb += [uart_tx.i.valid.eq(tx_valid), uart_tx.i.payload.eq(tx_data)]
        with m.If(uart_tx.i.ready):
            m.d.sync += tx_valid.eq(0)

        # Accelerator control and the cycle counter.
        start_now = Signal()
        running = Signal()
        finished = Signal()
        cycles = Signal(64)
        done_prev = Signal()
        m.d.sync += [self.start.eq(start_now), done_prev.eq(self.done)]
        with m.If(start_now):
            m.d.sync += [running.eq(1), finished.eq(0), cycles.eq(0)]
        with m.Elif(running):
            with m.If(self.done & ~done_prev):
                m.d.sync += [running.eq(0), finished.eq(1)]
            with m.Else():
                m.d.sync += cycles.eq(cycles + 1)

        def receive(byte_to_next):
            """In a state inside a request: on a byte, update the CRC and call
            ``byte_to_next``; on a long silence, answer ``TRUNCATED``."""
            with m.If(rx_valid):
                m.d.comb += crc_rx.eq(1)
                byte_to_next()
            with m.Elif(uart_rx.idle):
                respond(Status.TRUNCATED, 0)

        def respond(code, length):
            m.d.sync += [status.eq(code), remaining.eq(length), crc.eq(0)]
            m.next = "SEND_SYNC"

        def send(byte, next_state, *, checked=True):
            """Load ``byte`` for the transmitter when its register is free, then go on."""
            with m.If(~tx_valid):
                m.d.sync += [tx_data.eq(byte), tx_valid.eq(1)]
                if checked:
                    m.d.sync += crc_tx.eq(1)
                if next_state is not None:
                    m.next = next_state

        def read_request():
            m.d.sync += self.mem_read.req.valid.eq(1)
            m.next = "READ_REQ"

        m.d.comb += [
            self.mem_write.payload.addr.eq(address),
            self.mem_write.payload.data.eq(wdata),
            self.mem_read.req.payload.addr.eq(address),
        ]

        with m.FSM():
            with m.State("SYNC"):
                with m.If(rx_valid & (rx_byte == frames.REQUEST_SYNC)):
                    m.d.sync += [crc.eq(0), pos.eq(0), wptr.eq(0)]
                    m.next = "COMMAND"

            with m.State("COMMAND"):
                def on_command():
                    m.d.sync += command.eq(rx_byte)
                    m.next = "LENGTH_LOW"
                receive(on_command)

            with m.State("LENGTH_LOW"):
                def on_length_low():
                    m.d.sync += remaining[:8].eq(rx_byte)
                    m.next = "LENGTH_HIGH"
                receive(on_length_low)

            with m.State("LENGTH_HIGH"):
                def on_length_high():
                    length = Cat(remaining[:8], rx_byte)
                    m.d.sync += remaining[8:].eq(rx_byte)
                    with m.Switch(command):
                        with m.Case(Command.WRITE):
                            m.d.sync += len_ok.eq((length >= 5) & (length <= max_payload + 4))
                        with m.Case(Command.READ):
                            m.d.sync += len_ok.eq(length == 6)
                        with m.Default():
                            m.d.sync += len_ok.eq(length == 0)
                    with m.If(length == 0):
                        m.next = "CRC"
                    with m.Else():
                        m.next = "PAYLOAD"
                receive(on_length_high)

            with m.State("PAYLOAD"):
                def on_payload():
                    with m.Switch(pos):
                        for k in range(4):
                            with m.Case(k):
                                if 8 * k < aw:
                                    m.d.sync += address[8 * k:8 * k + 8].eq(rx_byte)
                                m.d.sync += pos.eq(k + 1)
                        with m.Default():
                            # Buffered unchecked: only an OK WRITE reads the buffer, and then
                            # exactly its data bytes are in it.
                            m.d.comb += [
                                buf_write.en.eq(1),
                                buf_write.addr.eq(wptr),
                                buf_write.data.eq(rx_byte),
                            ]
                            m.d.sync += [wptr.eq(wptr + 1), count.eq(Cat(count[8:], rx_byte))]
                    m.d.sync += remaining.eq(remaining - 1)
                    with m.If(remaining == 1):
                        m.next = "CRC"
                receive(on_payload)

            with m.State("CRC"):
                def on_crc():
                    m.next = "CHECK"
                receive(on_crc)

            with m.State("CHECK"):
                # The CRC register has taken the CRC byte too: it is 0 exactly when it matched.
                with m.If(crc != 0):
                    respond(Status.BAD_CRC, 0)
                with m.Else():
                    with m.Switch(command):
                        with m.Case(Command.WRITE):
                            with m.If(~len_ok):
                                respond(Status.BAD_LENGTH, 0)
                            with m.Else():
                                m.d.sync += [remaining.eq(wptr), wptr.eq(0)]
                                m.next = "WRITE_FETCH"
                        with m.Case(Command.READ):
                            with m.If(~len_ok | (count == 0) | (count > max_payload)):
                                respond(Status.BAD_LENGTH, 0)
                            with m.Else():
                                respond(Status.OK, count)
                        with m.Case(Command.START):
                            with m.If(~len_ok):
                                respond(Status.BAD_LENGTH, 0)
                            with m.Else():
                                m.d.comb += start_now.eq(1)
                                respond(Status.OK, 0)
                        with m.Case(Command.STATUS):
                            with m.If(~len_ok):
                                respond(Status.BAD_LENGTH, 0)
                            with m.Else():
                                m.d.sync += snapshot.eq(Cat(self.busy, finished))
                                respond(Status.OK, 1)
                        with m.Case(Command.CYCLES):
                            with m.If(~len_ok):
                                respond(Status.BAD_LENGTH, 0)
                            with m.Else():
                                m.d.sync += snapshot.eq(cycles)
                                respond(Status.OK, 8)
                        with m.Default():
                            respond(Status.BAD_COMMAND, 0)

            with m.State("WRITE_FETCH"):
                m.d.comb += [buf_read.en.eq(1), buf_read.addr.eq(wptr)]
                m.next = "WRITE_PUT"

            with m.State("WRITE_PUT"):
                with m.If(~self.mem_write.valid):
                    m.d.sync += [wdata.eq(buf_read.data), self.mem_write.valid.eq(1)]
                with m.Elif(self.mem_write.ready):
                    m.d.sync += [
                        self.mem_write.valid.eq(0),
                        address.eq(address + 1),
                        wptr.eq(wptr + 1),
                        remaining.eq(remaining - 1),
                    ]
                    with m.If(remaining == 1):
                        respond(Status.OK, 0)
                    with m.Else():
                        m.next = "WRITE_FETCH"

            with m.State("SEND_SYNC"):
                send(frames.RESPONSE_SYNC, "SEND_STATUS", checked=False)

            with m.State("SEND_STATUS"):
                send(status, "SEND_LENGTH_LOW")

            with m.State("SEND_LENGTH_LOW"):
                send(remaining[:8], "SEND_LENGTH_HIGH")

            with m.State("SEND_LENGTH_HIGH"):
                send(remaining[8:], None)
                with m.If(~tx_valid):
                    with m.If(remaining == 0):
                        m.next = "SEND_CRC"
                    with m.Elif(command == Command.READ):
                        read_request()
                    with m.Else():
                        m.next = "SEND_SNAPSHOT"

            with m.State("SEND_SNAPSHOT"):
                send(snapshot[:8], None)
                with m.If(~tx_valid):
                    m.d.sync += [snapshot.eq(snapshot >> 8), remaining.eq(remaining - 1)]
                    with m.If(remaining == 1):
                        m.next = "SEND_CRC"

            with m.State("READ_REQ"):
                with m.If(self.mem_read.req.ready):
                    m.d.sync += [self.mem_read.req.valid.eq(0), address.eq(address + 1)]
                    m.next = "READ_RESP"

            with m.State("READ_RESP"):
                m.d.comb += self.mem_read.resp.ready.eq(~tx_valid)
                with m.If(self.mem_read.resp.valid):
                    send(self.mem_read.resp.payload.data, None)
                    with m.If(~tx_valid):
                        m.d.sync += remaining.eq(remaining - 1)
                        with m.If(remaining == 1):
                            m.next = "SEND_CRC"
                        with m.Else():
                            read_request()

            with m.State("SEND_CRC"):
                send(crc, "SYNC", checked=False)

        return m
