"""The host link: a framed request/response protocol over a UART between a host and a board.

:mod:`.frames` is the protocol (plain Python, used by hosts and tests); :class:`.host.Host`
drives a board through it (any object with pyserial's ``write``/``read``); :class:`.HostLink`
is the board's side in Amaranth, imported on first use so that a host needs no Amaranth.
"""

from . import frames
from .host import Host, LinkError


__all__ = ["frames", "Host", "LinkError", "HostLink"]


def __getattr__(name):
    if name == "HostLink":
        from .host_link import HostLink
        return HostLink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
