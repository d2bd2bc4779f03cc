"""Board tops: an accelerator, its off-chip memory and a host link on a real board.

:class:`.BoardTop` is the technology-independent design; :mod:`.ulx3s` and :mod:`.icebreaker`
wrap it for amaranth-boards platforms and build bitstreams; :class:`.SimSerial` runs it in
simulation behind a serial-port-like object, so that :class:`intar_hw.link.host.Host` drives a
simulated board with the same code as a real one.
"""

from .byte_bridge import ByteBridge
from .sim_serial import SimSerial
from .top import BoardTop


__all__ = ["BoardTop", "ByteBridge", "SimSerial"]
