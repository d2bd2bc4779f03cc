"""The three policies side by side, and the paper's measured latencies next to ours.

:data:`PAPER_MS` is the one place that holds the InTAR paper's measured latencies (Alveo U280,
int16, batch 1; ``../shared/INTAR.md``). Its speedups are ``dataflow / intar`` and
``sequential / intar`` of those latencies; ours are the same ratios of predicted cycles on one
shared budget. This module imports no Amaranth.
"""

import math
from dataclasses import dataclass

from .policies import POLICIES, schedule


__all__ = ["PAPER_MS", "PAPER_GEOMEAN", "Comparison", "compare", "geomean", "summary_table"]


#: Measured latency in ms of the paper's designs: (intar, dataflow, sequential) per kernel.
PAPER_MS = {
    "self_attention": (139.0, 252.0, 1267.0),
    "mlp": (0.582, 0.742, 4.77),
    "cnn4l": (0.546, 2.53, 7.63),
    "vae": (0.145, 0.232, 1.6),
    "gating_net": (211.0, 211.0, 446.0),
}

#: The paper's headline geomean speedups of InTAR over dataflow and sequential (from the table).
PAPER_GEOMEAN = (1.77, 7.54)


def geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


@dataclass(frozen=True)
class Comparison:
    """The three schedules of one model on one budget.

    Attributes
    ----------
    schedules : dict of str to Schedule
        By policy.
    speedup_dataflow, speedup_sequential : float
        Predicted cycles of that baseline over ``intar``'s.
    paper : tuple of float or None
        The paper's (intar, dataflow, sequential) ms for this model, if it has them.
    """
    model: str
    schedules: dict

    @property
    def speedup_dataflow(self):
        return self.schedules["dataflow"].cycles / self.schedules["intar"].cycles

    @property
    def speedup_sequential(self):
        return self.schedules["sequential"].cycles / self.schedules["intar"].cycles

    @property
    def paper(self):
        return PAPER_MS.get(self.model)

    @property
    def paper_speedups(self):
        paper = self.paper
        if paper is None:
            return None
        return paper[1] / paper[0], paper[2] / paper[0]

    def table(self, paper=True):
        """The comparison as text; ``paper`` adds the paper's latencies and speedups."""
        first = self.schedules["intar"]
        lines = [f"{self.model}: {first.resources.describe()}"]
        with_paper = paper and self.paper is not None
        header = (f"{'policy':<11} {'cycles':>12} {'ms':>9} {'off-chip bytes':>15} "
                  f"{'util':>6} {'intar speedup':>13}")
        if with_paper:
            header += f" {'paper ms':>9} {'paper speedup':>13}"
        lines += [header, "-" * len(header)]
        for n, policy in enumerate(POLICIES):
            s = self.schedules[policy]
            ms = s.milliseconds()
            ratio = s.cycles / first.cycles
            line = (f"{policy:<11} {s.cycles:>12,} {'-' if ms is None else f'{ms:.4g}':>9} "
                    f"{s.offchip_bytes:>15,} {s.utilisation:>6.3f} {ratio:>12.2f}x")
            if with_paper:
                measured = self.paper[(2, 1, 0)[n]]
                line += f" {measured:>9.4g} {measured / self.paper[0]:>12.2f}x"
            lines.append(line)
        return "\n".join(lines)


def compare(graph, resources, model=None):
    """Schedule ``graph`` on ``resources`` with every policy; ``model`` names it for the paper
    lookup (default: the graph's name)."""
    schedules = {policy: schedule(graph, resources, policy) for policy in POLICIES}
    return Comparison(model=model or schedules["intar"].model, schedules=schedules)


def summary_table(comparisons):
    """One line per model with our and the paper's speedups, and the geomeans of both."""
    header = (f"{'model':<16} {'intar cycles':>13} {'DF/intar':>9} {'paper':>7} "
              f"{'SEQ/intar':>10} {'paper':>7}")
    lines = [header, "-" * len(header)]
    ours_df, ours_seq, paper_df, paper_seq = [], [], [], []
    for c in comparisons:
        p = c.paper_speedups
        lines.append(f"{c.model:<16} {c.schedules['intar'].cycles:>13,} "
                     f"{c.speedup_dataflow:>8.2f}x {'-' if p is None else f'{p[0]:.2f}x':>7} "
                     f"{c.speedup_sequential:>9.2f}x {'-' if p is None else f'{p[1]:.2f}x':>7}")
        ours_df.append(c.speedup_dataflow)
        ours_seq.append(c.speedup_sequential)
        if p is not None:
            paper_df.append(p[0])
            paper_seq.append(p[1])
    lines.append("-" * len(header))
    pdf = f"{geomean(paper_df):.2f}x" if paper_df else "-"
    pseq = f"{geomean(paper_seq):.2f}x" if paper_seq else "-"
    lines.append(f"{'geomean':<16} {'':>13} {geomean(ours_df):>8.2f}x {pdf:>7} "
                 f"{geomean(ours_seq):>9.2f}x {pseq:>7}")
    return "\n".join(lines)
