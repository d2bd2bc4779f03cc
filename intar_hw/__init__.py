"""intar-hw: generate inter-task auto-reconfigurable (InTAR) DNN accelerators in Amaranth."""

from .graph import Graph, Tensor, Op, OpKind, Param
from .numerics import Format, INT4, INT8, INT16, INT32
from .golden import (reference, reference_float, sqnr_db, cosine_similarity, max_abs_error,
                     error_report)
from .models import MODELS, SCALES, load, model_graph


__all__ = [
    "Graph", "Tensor", "Op", "OpKind", "Param",
    "Format", "INT4", "INT8", "INT16", "INT32",
    "reference", "reference_float", "sqnr_db", "cosine_similarity", "max_abs_error",
    "error_report",
    "MODELS", "SCALES", "load", "model_graph",
]
from .schedule import Resources, Schedule, Stage, Pattern, schedule


# The hardware side, imported on first use so that `import intar_hw` stays free of Amaranth.

def build(schedule, graph=None, *, offchip=True):
    """The accelerator of ``schedule``: see :func:`intar_hw.compose.build`."""
    from .compose import build as build_
    return build_(schedule, graph, offchip=offchip)


def simulate(acc, inputs, params, backend="amaranth", vcd=None, progress=False):
    """Run a built accelerator on data: see :func:`intar_hw.sim.simulate`."""
    from .sim import simulate as simulate_
    return simulate_(acc, inputs, params, backend=backend, vcd=vcd, progress=progress)


def to_verilog(component, name="top", platform=None):
    """The Verilog text of a component: see :func:`intar_hw.flow.verilog.to_verilog`."""
    from .flow.verilog import to_verilog as to_verilog_
    return to_verilog_(component, name, platform)


def synthesize(design, device="ecp5-85k", **options):
    """Yosys and nextpnr on a component: see :func:`intar_hw.flow.synth.synthesize`."""
    from .flow.synth import synthesize as synthesize_
    return synthesize_(design, device, **options)


__all__ += ["synthesize", "Resources", "Schedule", "Stage", "Pattern", "schedule", "build",
            "simulate", "to_verilog"]
