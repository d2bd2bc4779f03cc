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
