"""Model lookup: the shipped models of ``schedules/`` by name, or any ``.py`` file by path.

A model is a Python module defining ``graph(scale) -> Graph`` for the scales ``"tiny"`` (a few
hundred MACs per task, for unit tests), ``"small"`` (seconds of Amaranth simulation) and
``"paper"`` (the shapes of the InTAR paper).
"""

import importlib
import importlib.util
import math
import os
import sys


__all__ = ["MODELS", "SCALES", "DEFAULT_SCALE", "load", "model_graph", "check_scale",
           "matmul_shift"]


#: The shipped models, by name (modules of the ``schedules`` package).
MODELS = ("mlp", "self_attention", "cnn4l", "vae", "gating_net", "gpt2_medium")

#: The scales every model accepts.
SCALES = ("tiny", "small", "paper")

#: The scale every ``intar`` subcommand uses unless ``--scale`` says otherwise: the one the
#: device budgets are made for (a small model fits the ECP5-85F and simulates in a minute).
DEFAULT_SCALE = "small"


def load(name_or_path):
    """The module of a shipped model (by name) or of a ``.py`` file (by path).

    Raises
    ------
    TypeError
        If ``name_or_path`` is not a string or a path.
    ValueError
        If the name is unknown, the file does not exist, or it does not define ``graph``.
    """
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str):
        raise TypeError(f"Model must be a model name or a path to a .py file, "
                        f"not {name_or_path!r}")
    if name_or_path in MODELS:
        module = importlib.import_module(f"schedules.{name_or_path}")
    elif name_or_path.endswith(".py") or os.sep in name_or_path or "/" in name_or_path:
        module = _load_file(name_or_path)
    else:
        raise ValueError(f"Unknown model {name_or_path!r}; expected one of "
                         f"{', '.join(MODELS)}, or a path to a .py file defining graph(scale)")
    if not callable(getattr(module, "graph", None)):
        raise ValueError(f"Model {name_or_path!r} does not define graph(scale)")
    return module


def _load_file(path):
    if not os.path.isfile(path):
        raise ValueError(f"Model file {path!r} does not exist")
    absolute = os.path.abspath(path)
    name = "_intar_model_" + "".join(c if c.isalnum() else "_" for c in absolute)
    spec = importlib.util.spec_from_file_location(name, absolute)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ValueError(f"Model file {path!r} failed to load: {type(error).__name__}: "
                         f"{error}") from error
    except BaseException:
        del sys.modules[name]
        raise
    return module


def model_graph(name_or_path, scale="paper", **options):
    """The graph of a model (by name or path) at ``scale``; ``options`` go to its ``graph``."""
    from .graph import Graph

    module = load(name_or_path)
    check_scale(scale)
    try:
        graph = module.graph(scale, **options)
    except (TypeError, ValueError):
        raise
    except Exception as error:
        # A user's model file may raise anything; name the model and the exception.
        raise ValueError(f"Model {name_or_path!r} graph({scale!r}) raised "
                         f"{type(error).__name__}: {error}") from error
    if not isinstance(graph, Graph):
        raise TypeError(f"Model {name_or_path!r} graph({scale!r}) must return a Graph, "
                        f"not {graph!r}")
    return graph


def check_scale(scale):
    """Raise unless ``scale`` is one of :data:`SCALES`."""
    if not isinstance(scale, str):
        raise TypeError(f"Scale must be a string, not {scale!r}")
    if scale not in SCALES:
        raise ValueError(f"Scale must be one of {', '.join(SCALES)}, not {scale!r}")
    return scale


def matmul_shift(reduction, fmt):
    """A requantisation shift for a product of two activations of ``fmt`` summed ``reduction``
    times: ``round(log2(sqrt(reduction) * hi / 4))``, which maps operands with an RMS of
    ``hi / 4`` to a result with about the same RMS."""
    return max(0, round(math.log2(math.sqrt(reduction) * fmt.hi / 4)))
