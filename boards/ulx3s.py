"""The ULX3S 85F (ECP5 LFE5U-85F, 25 MHz oscillator) as a board for :class:`.PlatformTop`."""

from amaranth_boards.ulx3s import ULX3S_85F_Platform


__all__ = ["NAME", "platform", "BUILD_OPTIONS"]


#: Name of the board for :func:`boards.build.build`.
NAME = "ulx3s-85f"
#: Extra arguments of ``platform.build`` (none: amaranth-boards' defaults, ``--compress``).
BUILD_OPTIONS = {}


def platform():
    """A fresh :class:`amaranth_boards.ulx3s.ULX3S_85F_Platform`: FTDI UART ``uart`` 0, LEDs
    D0 (busy) and D1 (done), button FIRE1 (``button`` 0) as reset, clocked at 25 MHz."""
    return ULX3S_85F_Platform()
