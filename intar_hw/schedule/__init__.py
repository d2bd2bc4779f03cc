"""Scheduling: resource budgets, the cost model and the sequential / dataflow / InTAR policies.

``schedule(graph, resources, policy)`` turns a :class:`~intar_hw.graph.Graph` and a
:class:`Resources` budget into a :class:`Schedule` (plain, frozen, JSON round-trip data) whose
predicted cycles come from :mod:`.cost`. Nothing here imports Amaranth: the hardware reads the
schedule, never the other way round.
"""

from .resources import Resources, PRESETS
from .plan import Pattern, Location, Order, Core, Operand, Result, Loop, Placement, Buffer, \
    Stage, Schedule
from .cost import InfeasibleError
from .policies import POLICIES, UnbuildableError, schedule, evaluate


__all__ = ["Resources", "PRESETS", "Pattern", "Location", "Order", "Core", "Operand", "Result",
           "Loop", "Placement", "Buffer", "Stage", "Schedule", "InfeasibleError", "POLICIES",
           "UnbuildableError", "schedule", "evaluate"]
