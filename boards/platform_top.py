"""BoardTop on an amaranth-boards platform: its UART, two LEDs and a reset button."""

from amaranth import *
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from intar_hw.link import frames

from .top import BoardTop


__all__ = ["MAX_BAUD_ERROR", "baud_divisor", "PlatformTop"]


#: Largest relative error of the baud rate that ``round(clock / baud)`` may leave (8N1 receivers
#: tolerate about 4% between both ends; each end gets half).
MAX_BAUD_ERROR = 0.02


def baud_divisor(clock_hz, baud):
    """``round(clock_hz / baud)``, the :class:`.BoardTop` divisor for a serial line at ``baud``.

    Raises :class:`TypeError` if ``baud`` is not a positive number and :class:`ValueError` if it
    is not, or if the divisor is below 4 or misses ``baud`` by more than :data:`MAX_BAUD_ERROR`.
    """
    if isinstance(baud, bool) or not isinstance(baud, (int, float)):
        raise TypeError(f"Baud rate must be a positive number, not {baud!r}")
    if not baud > 0:
        raise ValueError(f"Baud rate must be a positive number, not {baud!r}")
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"Baud rate must be at most a quarter of the {clock_hz / 1e6:g} MHz "
                         f"clock, not {baud!r}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > MAX_BAUD_ERROR:
        raise ValueError(f"Baud rate must be within {MAX_BAUD_ERROR:.0%} of "
                         f"{clock_hz / 1e6:g} MHz / an integer, not {baud!r} "
                         f"({error:.1%} off at divisor {divisor})")
    return divisor


class PlatformTop(Elaboratable):
    """:class:`.BoardTop` with its pins on a platform, in the platform's default clock domain.

    Resources used: ``uart`` 0 (``rx``, ``tx``), ``led`` 0 (the accelerator is busy), ``led`` 1
    (it has finished since the last start) and ``button`` 0, which resets the design while
    pressed (synchronised to the clock; the design is also reset for two cycles after
    configuration). The design runs in a ``board`` domain clocked by the platform's ``sync``
    domain, i.e. the default oscillator with no PLL: the accelerator runs at that frequency, and
    the divisor is :func:`baud_divisor` of it.

    Parameters
    ----------
    acc : Accelerator
        Built with ``offchip=True``.
    baud : int or float
        Serial line speed.
    max_payload : int
        The link's largest ``WRITE`` or ``READ``.
    """

    def __init__(self, acc, *, baud=115200, max_payload=frames.MAX_PAYLOAD):
        self._acc = acc
        self._baud = baud
        self._max_payload = max_payload

    def elaborate(self, platform):
        m = Module()
        divisor = baud_divisor(platform.default_clk_frequency, self._baud)
        uart = platform.request("uart", 0, dir="-")
        m.submodules.rx = rx = io.Buffer("i", uart.rx)
        m.submodules.tx = tx = io.Buffer("o", uart.tx)
        m.submodules.busy_led = busy_led = io.Buffer("o", platform.request("led", 0, dir="-"))
        m.submodules.done_led = done_led = io.Buffer("o", platform.request("led", 1, dir="-"))
        m.submodules.button = button = io.Buffer("i", platform.request("button", 0, dir="-"))
        top = BoardTop(self._acc, divisor, max_payload=self._max_payload)

        # The design runs in its own domain on the platform's clock, reset by the button: the
        # platform's own sync domain may be reset-less (ECP5), and the DSP primitives of the
        # technology layer use the reset. The synchroniser's initial 1 is a power-on reset.
        m.domains.board = ClockDomain()
        reset = Signal()
        m.submodules.reset_sync = FFSynchronizer(button.i, reset, init=1)
        m.d.comb += [ClockSignal("board").eq(ClockSignal("sync")), ResetSignal("board").eq(reset)]
        m.submodules.top = DomainRenamer("board")(top)
        m.d.comb += [
            top.rx.eq(rx.i),
            tx.o.eq(top.tx),
            busy_led.o.eq(top.busy),
            done_led.o.eq(top.done),
        ]
        return m
