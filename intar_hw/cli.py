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
