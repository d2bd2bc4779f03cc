"""The three policies side by side, and the paper's measured latencies next to ours.

:data:`PAPER_MS` is the one place that holds the InTAR paper's measured latencies (Alveo U280,
int16, batch 1; ``../shared/INTAR.md``). Its speedups are ``dataflow / intar`` and
``sequential / intar`` of those latencies; ours are the same ratios of predicted cycles on one
shared budget. This module imports no Amaranth.
"""

import math
from dataclasses import dataclass

from .policies import POLICIES, schedule
from ..table import Column, Table


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
        with_paper = paper and self.paper is not None
        columns = [Column("policy", "<"), Column("cycles"), Column("ms", spec=".4g"),
                   Column("off-chip bytes"), Column("utilisation", spec=".3f"),
                   Column("intar speedup")]
        if with_paper:
            columns += [Column("paper ms", spec=".4g"), Column("paper speedup")]
        rows = []
        for n, policy in enumerate(POLICIES):
            s = self.schedules[policy]
            row = [policy, s.cycles, s.milliseconds(), s.offchip_bytes, s.utilisation,
                   f"{s.cycles / first.cycles:.2f}x"]
            if with_paper:
                measured = self.paper[(2, 1, 0)[n]]
                row += [measured, f"{measured / self.paper[0]:.2f}x"]
            rows.append(row)
        return Table(*columns).text(rows, title=f"{self.model}: {first.resources.describe()}")


def compare(graph, resources, model=None, *, buildable=True):
    """Schedule ``graph`` on ``resources`` with every policy; ``model`` names it for the paper
    lookup (default: the graph's name); ``buildable`` as :func:`~.policies.schedule` takes it."""
    schedules = {policy: schedule(graph, resources, policy, buildable=buildable)
                 for policy in POLICIES}
    return Comparison(model=model or schedules["intar"].model, schedules=schedules)


def summary_table(comparisons):
    """One line per model with our and the paper's speedups, and the geomeans of both."""
    table = Table(Column("model", "<"), Column("intar cycles"), Column("dataflow/intar"),
                  Column("paper"), Column("sequential/intar"), Column("paper"))
    ratio = lambda x: None if x is None else f"{x:.2f}x"    # noqa: E731
    rows = []
    ours_df, ours_seq, paper_df, paper_seq = [], [], [], []
    for c in comparisons:
        p = c.paper_speedups
        rows.append((c.model, c.schedules["intar"].cycles, ratio(c.speedup_dataflow),
                     ratio(p and p[0]), ratio(c.speedup_sequential), ratio(p and p[1])))
        ours_df.append(c.speedup_dataflow)
        ours_seq.append(c.speedup_sequential)
        if p is not None:
            paper_df.append(p[0])
            paper_seq.append(p[1])
    rows += [None, ("geomean", "", ratio(geomean(ours_df)),
                    ratio(geomean(paper_df) if paper_df else None), ratio(geomean(ours_seq)),
                    ratio(geomean(paper_seq) if paper_seq else None))]
    return table.text(rows)
