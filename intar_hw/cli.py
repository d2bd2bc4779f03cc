"""The ``intar`` command: a thin layer over the public Python API.

Every subcommand turns :class:`TypeError`/:class:`ValueError` raised by the API into one line on
stderr and exit status 2.
"""

import argparse
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
    shape = lambda s: "x".join(map(str, s))  # noqa: E731
    header = ("op", "kind", "inputs", "output", "fmt", "MACs", "out bytes", "live bytes")
    table = [header] + [
        (r["op"], r["kind"], ", ".join(shape(s) for s in r["inputs"]), shape(r["output"]),
         r["format"], f"{r['macs']:,}", f"{r['output_bytes']:,}", f"{r['live_bytes']:,}")
        for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"{graph.name} ({args.scale}): {len(rows)} ops, {graph.macs:,} MACs, "
          f"{sum(p.nbytes for p in graph.params.values()):,} parameter bytes")
    for row in table:
        print("  ".join(cell.ljust(w) if i < 5 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(row, widths))).rstrip())


def _scheduled(args):
    """The graph and schedule of a ``sim`` / ``verilog`` command line."""
    from intar_hw.schedule.commands import _load, budget
    from intar_hw.schedule import schedule

    graph, module, name = _load(args)
    return graph, schedule(graph, budget(args, module, name), args.policy)


def _cmd_sim(args):
    import json
    import numpy as np
    import intar_hw as ih

    graph, schedule = _scheduled(args)
    acc = ih.build(schedule, graph)
    inputs, params = graph.random_inputs(args.seed), graph.random_parameters(args.seed)
    result = ih.simulate(acc, inputs, params, vcd=args.vcd)
    golden = ih.reference(graph, inputs, params)
    match = all(np.array_equal(value, golden[name]) for name, value in result.outputs.items())
    report = {
        "model": graph.name, "scale": args.scale, "policy": args.policy,
        "backend": result.backend, "cycles": result.cycles,
        "predicted_cycles": result.predicted_cycles, "onchip_cycles": result.onchip_cycles,
        "macs": result.macs, "pes": result.pes, "utilization": round(result.utilization, 6),
        "match": match, "seconds": round(result.seconds, 3)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{graph.name} ({args.scale}, {args.policy}) on {result.backend}: "
              f"{result.cycles} cycles; predicted {result.predicted_cycles} "
              f"({result.onchip_cycles} on chip); outputs "
              f"{'match' if match else 'DO NOT match'} the golden model; "
              f"utilization {result.utilization:.3f}; {result.seconds:.2f} s")
    return 0 if match else 1


def _cmd_verilog(args):
    import intar_hw as ih

    graph, schedule = _scheduled(args)
    text = ih.to_verilog(ih.build(schedule, graph))
    with open(args.output, "w") as file:
        file.write(text)
    print(f"{args.output}: {len(text.splitlines())} lines of Verilog")


def _generator_options(parser):
    from intar_hw.schedule import POLICIES

    parser.add_argument("model", metavar="MODEL",
                        help="a shipped model name or a path to a .py file defining graph(scale)")
    parser.add_argument("--scale", default="tiny", metavar="S",
                        help="tiny, small or paper (default: tiny)")
    parser.add_argument("--policy", default="intar", choices=POLICIES,
                        help="scheduling policy (default: intar)")
    parser.set_defaults(fmt=None, resources=None, ccs=None, pea=None, scratchpad_kib=None,
                        offchip_bpc=None)


def _parser():
    parser = argparse.ArgumentParser(
        prog="intar", description="Schedule, generate and check InTAR accelerators for DNN models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the built-in demonstration")
    demo.set_defaults(run=_cmd_demo)

    bench = commands.add_parser("bench", help="measure and print the figures the README quotes")
    bench.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    bench.set_defaults(run=_cmd_bench)

    info = commands.add_parser("info", help="print the task table of a model")
    info.add_argument("model", metavar="MODEL",
                      help="a shipped model name or a path to a .py file defining graph(scale)")
    info.add_argument("--scale", default="paper", metavar="S",
                      help="tiny, small or paper (default: paper)")
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
    return 0 if status is None else status


if __name__ == "__main__":
    sys.exit(main())
