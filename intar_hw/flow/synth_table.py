"""``intar bench synth``: every kernel under every policy through synthesis, one table.

Each row is one generated accelerator through :func:`.synth.synthesize`: its DSPs (beside the
multipliers its MAC arrays and special-function units build: they should be equal, one DSP per
multiplier), block RAMs,
logic and flip-flops of the device, post-route Fmax, the schedule's predicted cycles, the
latency those cycles take at that Fmax, and MACs per DSP per cycle (the graph's MACs over the
DSPs used and the cycles). A design that cannot be generated, crashes a tool, runs past the
time limit or does not fit gets the reason in its row.
"""

import sys
import time

from .synth import SynthError, synthesize


__all__ = ["KERNELS", "POLICIES", "synth_rows", "synth_table"]

#: The paper's kernels, in the paper's order.
KERNELS = ("self_attention", "mlp", "cnn4l", "vae", "gating_net")
POLICIES = ("sequential", "dataflow", "intar")

_HEADER = (f"{'model':15s} {'policy':10s} {'DSP':>5s} {'MACs':>5s} {'BRAM':>5s} {'logic':>7s} "
           f"{'%':>4s} {'FF':>7s} {'Fmax MHz':>8s} {'cycles':>9s} {'latency us':>10s} "
           f"{'MAC/DSP/cyc':>11s} {'tools s':>7s}")


def synth_rows(scale="small", models=KERNELS, policies=POLICIES, device="ecp5-85k", *,
               seed=1, timeout=900, log=None):
    """Yield one dict per model and policy: the report's figures, or ``error``."""
    import intar_hw as ih
    from intar_hw.schedule import Resources, schedule

    for model in models:
        graph = ih.model_graph(model, scale)
        for policy in policies:
            s = schedule(graph, Resources.for_model(model, scale), policy)
            row = dict(model=model, policy=policy, cycles=s.cycles, macs=graph.macs)
            began = time.perf_counter()
            try:
                acc = ih.build(s, graph)
                row["multipliers"] = acc.multipliers
                report = synthesize(acc, device, seed=seed, timeout=timeout, log=log)
            except (ValueError, SynthError) as error:
                row["error"] = str(error).splitlines()[0]
            else:
                row["report"] = report
            row["seconds"] = time.perf_counter() - began
            yield row


def _line(row):
    head = f"{row['model']:15s} {row['policy']:10s}"
    report = row.get("report")
    if report is None:
        return f"{head} {row['error']}"
    used = report.resources
    dsp = used["dsp"].used
    fmax = report.fmax_mhz
    text = (f"{head} {dsp:5d} {row['multipliers']:5d} {used['bram'].used:5d} "
            f"{used['logic'].used:7,d} {used['logic'].percent:4.0f} {used['ff'].used:7,d} ")
    if not report.fits:
        return text + f"does not fit: {report.error}"
    per_dsp = row["macs"] / (dsp * row["cycles"]) if dsp else 0.0
    return text + (f"{fmax:8.1f} {row['cycles']:9,d} {row['cycles'] / fmax:10,.1f} "
                   f"{per_dsp:11.3f} {sum(report.seconds.values()):7.0f}")


def synth_table(scale="small", models=KERNELS, policies=POLICIES, device="ecp5-85k", *,
                seed=1, timeout=900, out=None):
    """Print :func:`synth_rows` as a table, a row as each design finishes; return the rows."""
    out = sys.stdout if out is None else out
    print(f"Generated accelerators at {scale} scale through Yosys + nextpnr on {device} "
          f"(seed {seed}, {timeout} s per tool):", file=out)
    print(_HEADER, file=out)
    print("-" * len(_HEADER), file=out, flush=True)
    rows = []
    for row in synth_rows(scale, models, policies, device, seed=seed, timeout=timeout):
        rows.append(row)
        print(_line(row), file=out, flush=True)
    return rows
