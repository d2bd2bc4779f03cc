"""Asynchronous serial (UART) transmitter and receiver, 8 data bits, no parity, 1 stop bit (8N1),
least significant bit first, line idle high."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


__all__ = ["UARTTransmitter", "UARTReceiver"]


def _check_int(owner, name, value, low, description):
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{owner} {name} must be {description}, not {value!r}")
    if value < low:
        raise ValueError(f"{owner} {name} must be {description}, not {value!r}")


def check_divisor(owner, divisor):
    """Raise :class:`TypeError`/:class:`ValueError` unless ``divisor`` is an int >= 4."""
    _check_int(owner, "divisor", divisor, 4, "an integer of at least 4")


class UARTTransmitter(wiring.Component):
    """Sends the bytes of a stream on an 8N1 serial line.

    Each byte taken from ``i`` is sent as a start bit (0), its 8 bits LSB first and a stop bit
    (1), each held for ``divisor`` cycles; ``tx`` is a register output, high while idle.
    ``i.ready`` is a register output, high while nothing is being sent: a byte taken in cycle
    ``t`` starts its start bit in cycle ``t + 1``, and ``i.ready`` rises again in the last cycle
    of the stop bit, so back-to-back bytes take exactly ``10 * divisor`` cycles each.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4 (e.g. 217 for 115200 baud from 25 MHz).

    Members
    -------
    i : In(stream.Signature(8))
        Bytes to send.
    tx : Out(1)
        The serial line, idle high.

    Raises
    ------
    TypeError
        If ``divisor`` is not an integer.
    ValueError
        If ``divisor`` is less than 4.
    """

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        check_divisor("UARTTransmitter", divisor)
        self._divisor = divisor
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        timer = Signal(range(divisor))
        shift = Signal(9)                 # data bits then the stop bit, next bit at the bottom
        left = Signal(range(10))          # bits still to send after the current one
        ready = Signal(init=1)
        m.d.comb += self.i.ready.eq(ready)

        with m.If(self.i.valid & ready):
            m.d.sync += [
                self.tx.eq(0),
                shift.eq(Cat(self.i.payload, 1)),
                left.eq(9),
                timer.eq(divisor - 1),
                ready.eq(0),
            ]
        with m.Elif(~ready):
            m.d.sync += timer.eq(timer - 1)
            with m.If(timer == 0):
                m.d.sync += [
                    self.tx.eq(shift[0]),
                    shift.eq(shift >> 1),
                    left.eq(left - 1),
                    timer.eq(divisor - 1),
                ]
            with m.If((left == 0) & (timer == 1)):
                # The stop bit's last cycle: a byte taken now starts right after it.
                m.d.sync += ready.eq(1)
        return m


class UARTReceiver(wiring.Component):
    """Receives bytes from an 8N1 serial line into a stream.

    ``rx`` passes through a two-flip-flop synchroniser. A falling edge starts a character; the
    start bit is checked again half a bit time later (a glitch shorter than that is ignored),
    then each data bit and the stop bit are sampled once, ``divisor`` cycles apart, near the
    middle of the bit.

    Contract:

    * **Output.** A byte whose stop bit is high is put on ``o`` in the cycle after the middle of
      its stop bit; ``o.valid`` and ``o.payload`` are register outputs, held until the sink
      takes the byte. The receiver holds one byte, so the sink has a whole character time
      (``10 * divisor`` cycles) to take it.
    * **Overrun.** A byte completed while the previous one still waits on ``o`` (``o.valid``
      high and ``o.ready`` low in that cycle) is dropped, and ``overrun`` pulses for one cycle;
      the byte waiting on ``o`` is kept.
    * **Framing error.** A byte whose stop bit is low is dropped and ``error`` pulses for one
      cycle; the receiver then waits for the line to be high before looking for the next start
      bit (so a line held low, a break, gives one error, not one per character time).
    * **Idle.** ``idle`` rises once the receiver has seen no start bit for ``idle_bits`` bit
      times, counted from the middle of the last stop bit (or from reset, or from the line
      returning high after a framing error or a glitch), and falls in the cycle after the next
      start bit is seen. It is a register output.
    * Tolerance: characters sent back to back on a line whose bit time is off the nominal
      ``divisor`` cycles are received while the drift over a character stays under half a bit;
      in simulation at ``divisor`` 16, from 4% shorter to 5% longer bit times.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 4.
    idle_bits : int
        Bit times of silence after which ``idle`` rises, at least 1.

    Members
    -------
    rx : In(1)
        The serial line, idle high; asynchronous to the clock.
    o : Out(stream.Signature(8))
        Bytes received.
    error : Out(1)
        One-cycle pulse: a byte was dropped for a low stop bit.
    overrun : Out(1)
        One-cycle pulse: a byte was dropped because ``o`` still held the previous one.
    idle : Out(1)
        The line has been idle for at least ``idle_bits`` bit times.

    Attributes
    ----------
    latency : int
        Cycles from the ``rx`` edge that starts a character (as set by a testbench before a
        clock edge) to the byte being valid on ``o``: ``divisor // 2 + 9 * divisor + 3``.

    Raises
    ------
    TypeError
        If ``divisor`` or ``idle_bits`` is not an integer.
    ValueError
        If ``divisor`` is less than 4 or ``idle_bits`` less than 1.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    error: Out(1)
    overrun: Out(1)
    idle: Out(1)

    def __init__(self, divisor, *, idle_bits=10):
        check_divisor("UARTReceiver", divisor)
        _check_int("UARTReceiver", "idle_bits", idle_bits, 1, "a positive integer")
        self._divisor = divisor
        self._idle_bits = idle_bits
        super().__init__()

    @property
    def divisor(self):
        return self._divisor

    @property
    def idle_bits(self):
        return self._idle_bits

    @property
    def latency(self):
        return self._divisor // 2 + 9 * self._divisor + 3

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        meta = Signal(init=1)
        line = Signal(init=1)
        m.d.sync += [meta.eq(self.rx), line.eq(meta)]

        timer = Signal(range(divisor), init=divisor - 1)
        shift = Signal(8)
        quiet = Signal(range(self._idle_bits))    # whole bit times of silence counted
        tick = Signal()
        m.d.comb += tick.eq(timer == 0)
        m.d.sync += [self.error.eq(0), self.overrun.eq(0)]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        # Each state reloads the bit timer when it runs out; a transition to a new bit sets it.
        m.d.sync += timer.eq(Mux(tick, divisor - 1, timer - 1))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += [timer.eq(divisor // 2 - 1), self.idle.eq(0), quiet.eq(0)]
                    m.next = "START"
                with m.Elif(tick & ~self.idle):
                    m.d.sync += quiet.eq(quiet + 1)
                    with m.If(quiet == self._idle_bits - 1):
                        m.d.sync += [quiet.eq(quiet), self.idle.eq(1)]
            with m.State("START"):
                with m.If(tick):
                    with m.If(line):
                        m.next = "IDLE"             # a glitch, not a start bit
                    with m.Else():
                        # A marker bit: when it leaves the bottom, eight bits have come in.
                        m.d.sync += shift.eq(0x80)
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(tick):
                    m.d.sync += shift.eq(Cat(shift[1:], line))
                    with m.If(shift[0]):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(tick):
                    with m.If(~line):
                        m.d.sync += self.error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(self.o.valid & ~self.o.ready):
                        m.d.sync += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                m.d.sync += timer.eq(divisor - 1)
                with m.If(line):
                    m.next = "IDLE"
        return m
