"""Verilog export of any intar-hw component."""

from amaranth.back import verilog


__all__ = ["to_verilog"]


def to_verilog(component, name="top", platform=None):
    """Return the Verilog text of ``component`` as a module called ``name``.

    Source locations are left out so the output is stable from run to run. Port names join
    member paths with ``__`` (``i__payload``, ``o__valid``). With a ``platform`` (a board's, or
    :class:`~intar_hw.hw.tech.Target`), blocks may instantiate that device's primitives
    (:mod:`intar_hw.hw.tech`); without one the Verilog is portable.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"Verilog module name must be an identifier, not {name!r}")
    return verilog.convert(component, name=name, platform=platform, emit_src=False)
