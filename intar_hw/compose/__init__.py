"""The composer: a schedule and its graph into the top-level accelerator component.

:func:`build` makes an :class:`Accelerator` (cores, mode controller, off-chip loader, ports);
:mod:`.layout` holds the plain-Python side (programs, memory images, output unpacking),
:mod:`.controller` the mode controller generated from the schedule's stages and :mod:`.loader`
the unit streaming each stage's off-chip operands into the cores' memories.
"""

from .layout import Plan, onchip_cycles
from .planner import plan
from .controller import ModeController
from .loader import Segment, LoaderStage, Loader
from .accelerator import Accelerator, build


__all__ = ["Plan", "plan", "onchip_cycles", "ModeController", "Segment",
           "LoaderStage", "Loader", "Accelerator", "build"]
