"""The ``intar`` command: a thin layer over the public Python API.

Every subcommand turns :class:`TypeError`/:class:`ValueError` raised by the API into one line on
stderr and exit status 2.
"""

import argparse
import re
import sys


__all__ = ["main"]


def _cmd_demo(args):
    from intar_hw import demo
    return demo.main()


def _cmd_bench(args):
    from intar_hw import bench
    return bench.main(args.suites or None)


def _cmd_info(args):
    import json
    from intar_hw.models import model_graph

    graph = model_graph(args.model, args.scale)
    rows = graph.table()
    if args.json:
        print(json.dumps({"model": graph.name, "scale": args.scale, "macs": graph.macs,
                          "param_bytes": sum(p.nbytes for p in graph.params.values()),
                          "inputs": {t.name: list(t.shape) for t in graph.inputs},
                          "outputs": [t.name for t in graph.outputs], "ops": rows}, indent=2))
        return
    from intar_hw.table import Column, Table
    shape = lambda s: "x".join(map(str, s))  # noqa: E731
    table = Table(Column("op", "<"), Column("kind", "<"), Column("inputs", "<"),
                  Column("output", "<"), Column("format", "<"), Column("MACs"),
                  Column("output bytes"), Column("live bytes"))
    params = sum(p.nbytes for p in graph.params.values())
    print(table.text([(r["op"], r["kind"], ", ".join(shape(s) for s in r["inputs"]),
                       shape(r["output"]), r["format"], r["macs"], r["output_bytes"],
                       r["live_bytes"]) for r in rows],
                     title=f"{graph.name} ({args.scale}): {len(rows)} ops, {graph.macs:,} MACs, "
                           f"{params:,} parameter bytes"))


def _scheduled(args):
    """The graph and schedule of a ``sim`` / ``verilog`` / ``synth`` command line."""
    from intar_hw.schedule.commands import budget, load_model
    from intar_hw.schedule import schedule

    graph, module, name = load_model(args)
    return graph, schedule(graph, budget(args, module, name), args.policy)


def _writable(path, what):
    """Raise :class:`ValueError` unless ``path`` can be written, before any long work."""
    import os

    folder = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path) or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise ValueError(f"{what} must be a file path in a writable folder, not {path!r}")


def _cmd_sim(args):
    import json
    import numpy as np
    import intar_hw as ih

    if args.vcd is not None:
        _writable(args.vcd, "VCD output")
    if not 0 <= args.seed < 2 ** 32:
        raise ValueError(f"Seed must be in [0, 2**32), not {args.seed!r}")
    graph, schedule = _scheduled(args)
    acc = ih.build(schedule, graph)
    inputs, params = graph.random_inputs(args.seed), graph.random_parameters(args.seed)
    result = ih.simulate(acc, inputs, params, vcd=args.vcd, progress=not args.json)
    golden = ih.reference(graph, inputs, params)
    match = all(np.array_equal(value, golden[name]) for name, value in result.outputs.items())
    report = {
        "model": graph.name, "scale": args.scale, "policy": args.policy,
        "backend": result.backend, "cycles": result.cycles,
        "predicted_cycles": result.predicted_cycles, "onchip_cycles": result.onchip_cycles,
        "macs": result.macs, "pes": result.pes, "utilisation": round(result.utilisation, 6),
        "match": match, "seconds": round(result.seconds, 3)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{graph.name} ({args.scale}, {args.policy}) on {result.backend}: "
              f"{result.cycles:,} cycles; predicted {result.predicted_cycles:,} "
              f"({result.onchip_cycles:,} on chip); outputs "
              f"{'match' if match else 'DO NOT match'} the golden model; "
              f"utilisation {result.utilisation:.3f}; {result.seconds:.2f} s")
    return 0 if match else 1


def _cmd_verilog(args):
    import intar_hw as ih

    _writable(args.output, "Verilog output")
    graph, schedule = _scheduled(args)
    text = ih.to_verilog(ih.build(schedule, graph))
    with open(args.output, "w") as file:
        file.write(text)
    print(f"{args.output}: {len(text.splitlines())} lines of Verilog")


def _parse_seeds(text):
    """``"1"`` as 1, ``"1,2,3"`` as ``(1, 2, 3)``."""
    if not re.fullmatch(r"\d+(,\d+)*", text):
        raise ValueError(f"Seed must be an integer or integers joined by commas, not {text!r}")
    seeds = tuple(int(part) for part in text.split(","))
    return seeds[0] if len(seeds) == 1 else seeds


def _cmd_synth(args):
    import json
    import intar_hw as ih
    from intar_hw.flow.synth import check_options

    args.seed = _parse_seeds(args.seed)
    check_options(args.device or "ecp5-85k", args.freq, args.seed, keep=args.keep)   # first
    graph, schedule = _scheduled(args)
    device = args.device or schedule.resources.device or "ecp5-85k"
    log = None if args.json or not sys.stderr.isatty() else (
        lambda line: print(f"intar synth: {line}", file=sys.stderr, flush=True))
    acc = ih.build(schedule, graph)
    report = ih.synthesize(acc, device, freq_mhz=args.freq, seed=args.seed,
                           hierarchy=args.modules, router=args.router, cache=not args.no_cache,
                           log=log, keep=args.keep)
    cycles = schedule.cycles
    latency_us = cycles / report.fmax_mhz if report.fits and report.fmax_mhz else None
    if args.json:
        print(json.dumps({"model": graph.name, "scale": args.scale, "policy": args.policy,
                          "predicted_cycles": cycles, "latency_us": latency_us,
                          "multipliers": acc.multipliers, **report.to_dict()}, indent=2))
    else:
        print(f"{graph.name} ({args.scale}, {args.policy}): {cycles:,} predicted cycles" +
              (f", {latency_us:,.1f} us at {report.fmax_mhz:.1f} MHz" if latency_us else "") +
              f"; {acc.multipliers} multipliers ({acc.array_multipliers} in the MAC arrays)")
        print("\n".join(report.lines()))
    return 0 if report.fits else 1


def _generator_options(parser):
    from intar_hw.schedule import POLICIES
    from intar_hw.models import MODELS
    from intar_hw.schedule.commands import budget_options, scale_option

    parser.add_argument("model", metavar="MODEL",
                        help=f"a shipped model ({', '.join(MODELS)}) or a path to a .py file "
                             f"defining graph(scale)")
    scale_option(parser)
    parser.add_argument("--policy", default="intar", choices=POLICIES,
                        help="scheduling policy (default: intar)")
    parser.set_defaults(fmt=None)
    budget_options(parser)


def _parser():
    parser = argparse.ArgumentParser(
        prog="intar", description="Schedule, generate and check InTAR accelerators for DNN models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the built-in demonstration")
    demo.set_defaults(run=_cmd_demo)

    bench = commands.add_parser("bench", help="measure and print the figures the README quotes")
    bench.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    bench.set_defaults(run=_cmd_bench)

    from intar_hw.models import MODELS
    from intar_hw.schedule.commands import scale_option
    info = commands.add_parser("info", help="print the task table of a model")
    info.add_argument("model", metavar="MODEL",
                      help=f"a shipped model ({', '.join(MODELS)}) or a path to a .py file "
                           f"defining graph(scale)")
    scale_option(info)
    info.add_argument("--json", action="store_true", help="print the table as JSON")
    info.set_defaults(run=_cmd_info)

    from intar_hw.schedule.commands import add_commands
    add_commands(commands)       # schedule, compare

    sim = commands.add_parser("sim", help="build the accelerator, simulate it on random data "
                                          "and check it against the golden model")
    _generator_options(sim)
    sim.add_argument("--seed", type=int, default=0, help="seed of the random data (default: 0)")
    sim.add_argument("--json", action="store_true", help="print the result as one JSON object")
    sim.add_argument("--vcd", metavar="FILE", help="write the waveforms to FILE")
    sim.set_defaults(run=_cmd_sim)

    verilog = commands.add_parser("verilog", help="write the accelerator's Verilog")
    _generator_options(verilog)
    verilog.add_argument("-o", "--output", required=True, metavar="FILE.v",
                         help="the Verilog file to write")
    verilog.set_defaults(run=_cmd_verilog)

    from intar_hw.flow.devices import DEVICES
    synth = commands.add_parser(
        "synth", help="build the accelerator and put it through Yosys and nextpnr: resources, "
                      "Fmax, critical path (exit status 1 if it does not fit)")
    _generator_options(synth)
    synth.add_argument("--device", metavar="D",
                       help=f"one of {', '.join(DEVICES)} (default: the budget's device, else "
                            f"ecp5-85k)")
    synth.add_argument("--freq", type=float, default=100, metavar="MHZ",
                       help="nextpnr's target frequency (default: 100)")
    synth.add_argument("--seed", default="1", metavar="N[,N...]",
                       help="nextpnr's placer seed (default: 1); several: nextpnr once per seed "
                            "and the median Fmax reported")
    synth.add_argument("--modules", action="store_true",
                       help="also report the cells of each block (a second, hierarchical "
                            "synthesis)")
    synth.add_argument("--router", default="router1", choices=("router1", "router2"),
                       help="nextpnr's router (default: router1; router2 converges on congested "
                            "designs)")
    synth.add_argument("--no-cache", action="store_true",
                       help="run the tools even if this design's report is cached")
    synth.add_argument("--keep", metavar="DIR",
                       help="run the tools in DIR and keep their files there (netlist, logs, "
                            "nextpnr's report.json with the critical paths cell by cell)")
    synth.add_argument("--json", action="store_true", help="print the report as JSON")
    synth.set_defaults(run=_cmd_synth)
    return parser


def main(argv=None):
    """Entry point of the ``intar`` console script; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        status = args.run(args)
    except (TypeError, ValueError) as error:
        print(f"intar {args.command}: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`intar info mlp --json | head`): stop quietly, no traceback.
        import io
        import os
        try:    # what is still buffered must not fail again at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
            pass
        print(f"intar {args.command}: error: output closed before it was all written",
              file=sys.stderr)
        return 2
    except RuntimeError as error:
        from intar_hw.flow.synth import SynthError
        if not isinstance(error, SynthError):
            raise
        print(f"intar {args.command}: error: {error}", file=sys.stderr)
        return 1
    return 0 if status is None else status


if __name__ == "__main__":
    sys.exit(main())
