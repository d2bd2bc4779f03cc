"""The iCEBreaker (iCE40 UP5K, 12 MHz oscillator) as a board for :class:`.PlatformTop`."""

from amaranth_boards.icebreaker import ICEBreakerPlatform


__all__ = ["NAME", "platform", "BUILD_OPTIONS"]


#: Name of the board for :func:`boards.build.build`.
NAME = "icebreaker"
#: Extra arguments of ``platform.build``: amaranth-boards does not let Yosys map multipliers
#: onto the UP5K's SB_MAC16 DSPs unless asked.
BUILD_OPTIONS = {"synth_opts": "-dsp"}


def platform():
    """A fresh :class:`amaranth_boards.icebreaker.ICEBreakerPlatform`: FTDI UART ``uart`` 0,
    the red (busy) and green (done) LEDs, the user button (``button`` 0) as reset, 12 MHz."""
    return ICEBreakerPlatform()
