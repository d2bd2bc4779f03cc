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

from ..table import Column, Table
from .synth import SynthError, synthesize


__all__ = ["KERNELS", "POLICIES", "synth_rows", "synth_table"]

#: The paper's kernels, in the paper's order.
KERNELS = ("self_attention", "mlp", "cnn4l", "vae", "gating_net")
POLICIES = ("sequential", "dataflow", "intar")

_TABLE = Table(Column("model", "<", width=14), Column("policy", "<", width=10), Column("DSP"),
               Column("multipliers"), Column("BRAM"), Column("logic cells", width=7),
               Column("logic %", spec=".0f"), Column("FF", width=7),
               Column("Fmax MHz", spec=".1f"), Column("cycles", width=7),
               Column("latency us", spec=",.1f"), Column("MACs/DSP/cycle", spec=".3f"),
               Column("tools s", spec=".0f"))


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
    report = row.get("report")
    if report is None:
        return _TABLE.row(row["model"], row["policy"], note=row["error"])
    used = report.resources
    dsp = used["dsp"].used
    cells = (row["model"], row["policy"], dsp, row["multipliers"], used["bram"].used,
             used["logic"].used, used["logic"].percent, used["ff"].used)
    if not report.fits:
        return _TABLE.row(*cells, note=f"does not fit: {report.error}")
    fmax = report.fmax_mhz
    per_dsp = row["macs"] / (dsp * row["cycles"]) if dsp else 0.0
    return _TABLE.row(*cells, fmax, row["cycles"], row["cycles"] / fmax, per_dsp,
                      sum(report.seconds.values()))


def synth_table(scale="small", models=KERNELS, policies=POLICIES, device="ecp5-85k", *,
                seed=1, timeout=900, out=None):
    """Print :func:`synth_rows` as a table, a row as each design finishes; return the rows."""
    out = sys.stdout if out is None else out
    print(f"Generated accelerators at {scale} scale through Yosys + nextpnr on {device} "
          f"(seed {seed}, {timeout} s per tool):", file=out)
    print(_TABLE.header(), file=out, flush=True)
    rows = []
    for row in synth_rows(scale, models, policies, device, seed=seed, timeout=timeout):
        rows.append(row)
        print(_line(row), file=out, flush=True)
    return rows
