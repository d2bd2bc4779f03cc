"""The ``intar demo`` command: what intar-hw does today, on built-in defaults.

1. Schedules the paper's five kernels at paper scale (int16, the paper's numerics) on their paper
   budgets under the three policies, prints our predicted speedups next to the paper's measured
   ones, and draws each InTAR schedule's timeline into ``report/``.
2. Runs a tiled GEMM on a :class:`~intar_hw.hw.mac_array.MACArray` in Amaranth's Python simulator
   (pysim) and checks it bit for bit against numpy's int64 result.
"""

import os
import sys

import numpy as np

from intar_hw.array_gemm import gemm
from intar_hw.table import Column, Table


__all__ = ["main"]


def paper_comparison(report_dir="report"):
    """Schedule the paper's kernels under every policy; print the speedups; draw timelines.

    Returns the list of :class:`~intar_hw.schedule.compare.Comparison`.
    """
    from intar_hw.models import model_graph
    from intar_hw.schedule import Resources
    from intar_hw.schedule.compare import PAPER_MS, compare, summary_table
    from intar_hw.schedule.timeline import plot_timeline

    os.makedirs(report_dir, exist_ok=True)
    comparisons = []
    for model in PAPER_MS:
        graph = model_graph(model, "paper", fmt="int16")
        comparison = compare(graph, Resources.for_model(model, "paper"), model=model,
                             buildable=False)
        plot_timeline(comparison.schedules["intar"], os.path.join(report_dir, f"{model}.png"))
        comparisons.append(comparison)
    print("The paper's kernels at paper scale (int16), predicted cycles on the paper's budgets:")
    print(summary_table(comparisons))
    print(f"InTAR schedule timelines: {report_dir}/<model>.png")
    print()
    return comparisons


#: The paper's kernels the generator table runs, in the paper's order.
KERNELS = ("self_attention", "mlp", "cnn4l", "vae", "gating_net")
POLICIES = ("sequential", "dataflow", "intar")


def generator_table(scale="small", models=KERNELS, seed=0, out=None):
    """Generate, simulate (Amaranth) and check every model under every policy at ``scale``.

    Prints one row per model and policy: simulated and predicted cycles, MAC utilisation and
    whether the outputs equal the golden model's; a model the generator cannot build yet gets
    the reason instead. Returns the rows as dicts (``error`` set for those).
    """
    import time

    import intar_hw as ih
    from intar_hw.schedule import Resources, schedule

    out = sys.stdout if out is None else out
    rows = []
    print(f"Generated accelerators at {scale} scale, simulated in Amaranth (ECP5 budgets):",
          file=out)
    table = Table(Column("model", "<", width=14), Column("policy", "<", width=10),
                  Column("cycles", width=7), Column("predicted"),
                  Column("diff", spec="+.2%", width=7),
                  Column("utilisation", spec=".3f"), Column("match"),
                  Column("sim s", spec=".1f", width=6))
    print(table.header(), file=out)
    for model in models:
        graph = ih.model_graph(model, scale)
        inputs, params = graph.random_inputs(seed), graph.random_parameters(seed)
        golden = ih.reference(graph, inputs, params)
        for policy in POLICIES:
            s = schedule(graph, Resources.for_model(model, scale), policy)
            began = time.perf_counter()
            try:
                acc = ih.build(s, graph)
            except ValueError as error:
                rows.append(dict(model=model, policy=policy, error=str(error)))
                print(table.row(model, policy, note=f"not generated: {error}"), file=out)
                continue
            r = ih.simulate(acc, inputs, params, progress=True)
            match = all(np.array_equal(r.outputs[k], golden[k]) for k in r.outputs)
            seconds = time.perf_counter() - began
            diff = (r.cycles - r.predicted_cycles) / r.predicted_cycles
            rows.append(dict(model=model, policy=policy, cycles=r.cycles,
                             predicted=r.predicted_cycles, utilisation=r.utilisation,
                             match=match, seconds=seconds))
            print(table.row(model, policy, r.cycles, r.predicted_cycles, diff, r.utilisation,
                            "yes" if match else "NO", seconds), file=out, flush=True)
    print(file=out)
    return rows


def synthesis_report(model="gating_net", scale="tiny", policy="intar", device="ecp5-85k"):
    """Put one generated accelerator through Yosys and nextpnr and print the report (about
    three minutes the first time; the report is cached)."""
    import intar_hw as ih
    from intar_hw.schedule import Resources, schedule

    graph = ih.model_graph(model, scale)
    s = schedule(graph, Resources.for_model(model, scale), policy)
    acc = ih.build(s)
    print(f"From model to placed design: {model} ({scale}, {policy}) through Yosys and nextpnr "
          f"on the {device} (`intar synth {model} --scale {scale}`):", flush=True)
    report = ih.synthesize(acc, device, log=lambda line: print(f"  ... {line}", flush=True))
    print("\n".join(report.lines()))
    if report.fits:
        print(f"  {s.cycles:,} predicted cycles: {s.cycles / report.fmax_mhz:,.2f} us at "
              f"{report.fmax_mhz:.1f} MHz; {acc.multipliers} multipliers "
              f"({acc.array_multipliers} in the MAC arrays)")
    print()
    return report


def main(scale="small", synthesis=True, models=KERNELS):
    """Print the paper comparison, the generator table of ``models`` at ``scale``
    (:func:`generator_table`) and, with ``synthesis``, one accelerator's synthesis report
    (:func:`synthesis_report`).

    Returns 0 if every generated accelerator matches the golden model, else 1.
    """
    import time

    began = time.perf_counter()
    paper_comparison()
    rows = generator_table(scale, models)
    if synthesis:
        synthesis_report()
    bad = [f"{r['model']}/{r['policy']}" for r in rows if "error" not in r and not r["match"]]
    generated = sum("error" not in r for r in rows)
    print(f"{generated} of {len(rows)} model x policy accelerators generated; "
          f"{generated - len(bad)} bit-exact; {time.perf_counter() - began:.0f} s in all")
    if bad:
        print(f"intar demo: error: outputs differ from the golden model: {', '.join(bad)}",
              file=sys.stderr)
    return 1 if bad else 0


def gemm_demo():
    """Run C = A (16x32) . B (32x16), int8, on a 4x4 MACArray; print cycles and utilisation.

    Returns 0 if the simulated GEMM matches numpy, else 1.
    """
    rows = cols = 4
    rng = np.random.default_rng(2024)
    a = rng.integers(-128, 128, (16, 32), dtype=np.int8)
    b = rng.integers(-128, 128, (32, 16), dtype=np.int8)
    result = gemm(a, b, rows=rows, cols=cols, operand_width=8)
    match = np.array_equal(result.c, a.astype(np.int64) @ b.astype(np.int64))
    print(f"GEMM C = A ({a.shape[0]}x{a.shape[1]}) . B ({b.shape[0]}x{b.shape[1]}), int8, "
          f"on a {rows}x{cols} MACArray in Amaranth simulation")
    print(f"  cycles simulated: {result.cycles}")
    print(f"  MACs:             {result.macs}")
    print(f"  MAC utilisation:  {result.utilisation:.1%} "
          f"(MACs / ({result.mac_units} PEs * {result.cycles} cycles))")
    print(f"  pysim speed:      {result.cycles_per_second:,.0f} cycles/s")
    print(f"  match: {match}")
    if not match:
        print("intar demo: error: the simulated array disagrees with numpy", file=sys.stderr)
    return 0 if match else 1


if __name__ == "__main__":
    sys.exit(main())
