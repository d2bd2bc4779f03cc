"""The ``intar schedule`` and ``intar compare`` subcommands (registered by :mod:`intar_hw.cli`).

``intar schedule MODEL [--scale S] [--policy P] [--json] [--plot FILE.png]`` prints the stage
table of one policy; ``intar compare MODEL [--scale S]`` prints the three policies side by side
and, at paper scale, the paper's measured latencies and speedups next to ours. Both take a budget
preset (``--resources``) and overrides for exploration (``--ccs``, ``--pea``,
``--scratchpad-kib``, ``--offchip-bpc``); errors reach the user as one line on stderr with exit
status 2 (through :func:`intar_hw.cli.main`).
"""

import re
import sys

from .resources import Resources
from .policies import POLICIES, UnbuildableError, schedule
from .compare import compare


__all__ = ["add_commands", "budget", "budget_options", "load_model", "parse_pea",
           "scale_option"]


def parse_pea(text):
    """``"4x4"`` or ``"1x16x9"`` as a tuple of ints."""
    if not isinstance(text, str) or not re.fullmatch(r"\d+x\d+(x\d+)?", text):
        raise ValueError(f"PE array shape must look like 4x4 or 1x16x9, not {text!r}")
    return tuple(int(d) for d in text.split("x"))


def load_model(args):
    """The graph, module and name of the model a command line names."""
    from intar_hw.models import MODELS, load, model_graph

    options = {} if args.fmt is None else {"fmt": args.fmt}
    graph = model_graph(args.model, args.scale, **options)
    module = load(args.model)
    name = args.model if args.model in MODELS else graph.name
    return graph, module, name


def budget(args, module, name):
    """The budget of a command: a preset, the model's own, or the default; then the overrides."""
    if args.resources is not None:
        resources = Resources.preset(args.resources)
    elif callable(getattr(module, "resources", None)):
        resources = module.resources(args.scale)
        if not isinstance(resources, Resources):
            raise TypeError(f"Model {name!r} resources({args.scale!r}) must return Resources, "
                            f"not {resources!r}")
    else:
        resources = Resources.for_model(name, args.scale)
    changes = {}
    if args.pea is not None:
        changes["pea"] = parse_pea(args.pea)
    if args.ccs is not None:
        changes["ccs"] = args.ccs
    if args.scratchpad_kib is not None:
        changes["scratchpad_kib"] = args.scratchpad_kib
    if args.offchip_bpc is not None:
        changes["offchip_bytes_per_cycle"] = args.offchip_bpc
    if changes:
        if "pea" not in changes and "ccs" in changes and not resources.homogeneous:
            raise ValueError("--ccs on a budget with unequal cores needs --pea as well")
        resources = resources.replace(**changes)
    return resources


def _explorable(function, *args, **kwargs):
    """``function(*args, **kwargs)``; a refusal to offer unbuildable schedules says how to
    explore them anyway."""
    try:
        return function(*args, **kwargs)
    except UnbuildableError as error:
        raise UnbuildableError(f"{error} (--explore schedules it in the cost model alone)") \
            from None


def _cmd_schedule(args):
    graph, module, name = load_model(args)
    resources = budget(args, module, name)
    result = _explorable(schedule, graph, resources, args.policy, buildable=not args.explore)
    if args.json:
        print(result.to_json(indent=2))
    else:
        print(result.table(scale=args.scale))
    if args.plot:
        from .timeline import plot_timeline
        plot_timeline(result, args.plot)
        print(f"timeline written to {args.plot}", file=sys.stderr if args.json else sys.stdout)


def _cmd_compare(args):
    graph, module, name = load_model(args)
    resources = budget(args, module, name)
    comparison = _explorable(compare, graph, resources, model=name, buildable=not args.explore)
    at_paper = args.scale == "paper"
    print(comparison.table(paper=at_paper))
    if at_paper and comparison.paper is not None:
        print("paper: measured on an Alveo U280 (int16); ours: predicted cycles, one budget for "
              "all three policies")


def budget_options(parser):
    """Add the budget flags that :func:`budget` reads."""
    group = parser.add_argument_group("budget")
    group.add_argument("--resources", metavar="PRESET",
                       help="a preset budget (default: the model's own, see Resources.for_model)")
    group.add_argument("--ccs", type=int, metavar="N", help="number of computing cores")
    group.add_argument("--pea", metavar="RxC[xD]", help="PE array shape of every core")
    group.add_argument("--scratchpad-kib", type=float, metavar="K", help="scratchpad per core")
    group.add_argument("--offchip-bpc", type=float, metavar="B",
                       help="off-chip bytes per cycle")


def scale_option(parser):
    """Add ``--scale``, with the one default all subcommands share."""
    from intar_hw.models import DEFAULT_SCALE, SCALES
    parser.add_argument("--scale", default=DEFAULT_SCALE, metavar="S",
                        help=f"{', '.join(SCALES[:-1])} or {SCALES[-1]} (default: "
                             f"{DEFAULT_SCALE}, as for every subcommand; paper is the InTAR "
                             f"paper's shapes)")


def _model_options(parser):
    parser.add_argument("model", metavar="MODEL",
                        help="a shipped model name or a path to a .py file defining graph(scale)")
    scale_option(parser)
    parser.add_argument("--fmt", metavar="F", default=None,
                        help="activation format passed to the model (e.g. int16, as the paper)")
    parser.add_argument("--explore", action="store_true",
                        help="search the cost model's whole design space, also designs the "
                             "generator cannot build yet (default: only buildable schedules)")


def add_commands(commands):
    """Add ``schedule`` and ``compare`` to an argparse subparsers object."""
    parser = commands.add_parser("schedule", help="schedule a model and print its stage table")
    _model_options(parser)
    parser.add_argument("--policy", default="intar", choices=POLICIES,
                        help="scheduling policy (default: intar)")
    parser.add_argument("--json", action="store_true", help="print the schedule as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw the timeline to a PNG file")
    budget_options(parser)
    parser.set_defaults(run=_cmd_schedule)

    parser = commands.add_parser("compare", help="the three policies side by side")
    _model_options(parser)
    budget_options(parser)
    parser.set_defaults(run=_cmd_compare)
