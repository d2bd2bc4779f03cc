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


def _parser():
    parser = argparse.ArgumentParser(prog="intar", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the built-in demonstration")
    demo.set_defaults(run=_cmd_demo)

    bench = commands.add_parser("bench", help="measure and print the figures the README quotes")
    bench.add_argument("suites", nargs="*", metavar="SUITE", help="suites to run (default: all)")
    bench.set_defaults(run=_cmd_bench)
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
