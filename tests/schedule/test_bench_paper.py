"""Paper-scale comparison of the three policies on the paper's five kernels (``make bench``).

Prints each kernel's table and the geomean speedups next to the paper's, for int16 (the paper's
numerics) and int8 (the models' default), and checks that ``intar`` is never slower than either
baseline.
"""

import pytest

from intar_hw.models import model_graph
from intar_hw.schedule import Resources
from intar_hw.schedule.compare import PAPER_MS, compare, summary_table
from intar_hw.schedule.policies import _dataflow
from intar_hw.schedule.tasks import task_graph


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ("int16", "int8"))
def test_paper_kernels(fmt):
    comparisons = []
    for model in PAPER_MS:
        graph = model_graph(model, "paper", fmt=fmt)
        comparison = compare(graph, Resources.for_model(model, "paper"), model=model,
                             buildable=False)
        print()
        print(comparison.table())
        s = comparison.schedules
        assert s["intar"].cycles <= s["sequential"].cycles
        assert s["intar"].cycles <= s["dataflow"].cycles
        comparisons.append(comparison)
    print()
    print(f"predicted speedups at {fmt}, and the paper's (measured, int16):")
    print(summary_table(comparisons))


@pytest.mark.slow
def test_dataflow_with_free_dot_product_depth():
    # Sensitivity: a dataflow design free to pick d3 per task (not only the budget's template).
    print()
    for model in PAPER_MS:
        graph = model_graph(model, "paper", fmt="int16")
        resources = Resources.for_model(model, "paper")
        free = _dataflow(task_graph(graph), resources, free_depth=True)
        ours = compare(graph, resources, model=model).schedules
        print(f"{model:<16} dataflow {ours['dataflow'].cycles:>12,}  free-d3 dataflow "
              f"{free.cycles:>12,}  intar {ours['intar'].cycles:>12,}")
