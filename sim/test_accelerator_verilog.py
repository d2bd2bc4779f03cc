# amaranth: UnusedElaboratable=no
"""The exported Verilog of whole accelerators, one per stage pattern, under cocotb and Icarus:
the graph outputs written back to the off-chip memory model equal the golden model's, and the
run takes exactly as many cycles as the Amaranth simulation of the same design."""

import json

import numpy as np
import pytest

import intar_hw as ih
from intar_hw.flow.cocotb_runner import run_cocotb
from intar_hw.flow.verilator import _Top
from intar_hw.hw.tech import Target
from intar_hw.schedule import Pattern, Resources, schedule
from intar_hw.sim import offchip_memory
from vectors import SIM_DIR


def two_heads():
    """Two independent layers on one input: the intar policy runs them side by side."""
    g = ih.Graph("two_heads")
    x = g.input("x", shape=(4, 8), fmt="int8")
    a = g.linear(x, 8, name="a", shift=8, bias=False, weight_format="int8")
    b = g.linear(x, 8, name="b", shift=8, bias=False, weight_format="int8")
    g.output(g.relu(a, name="ra"))
    g.output(b)
    budget = Resources.for_model("mlp", "tiny")
    return g, budget.replace(pea=(8, 8, 1), offchip_bytes_per_cycle=4)


def shipped(model, scale="tiny"):
    return ih.model_graph(model, scale), Resources.for_model(model, scale)


CASES = {
    # name: (graph and budget, policy, the pattern it must exercise)
    "sequential-mlp": (lambda: shipped("mlp"), "sequential", Pattern.SEQUENTIAL),
    # Elaborated for an ECP5: the MAC arrays' multipliers are MULT18X18D primitives (simulated
    # by sim/models/MULT18X18D.v), same outputs and cycles as the portable design.
    "sequential-mlp-ecp5": (lambda: shipped("mlp"), "sequential", Pattern.SEQUENTIAL, "ecp5"),
    "task-parallel-two-heads": (two_heads, "intar", Pattern.TASK_PARALLEL),
    "task-pipeline-gating-net": (lambda: shipped("gating_net"), "dataflow",
                                 Pattern.TASK_PIPELINE),
    # Softmax on a result link, matmuls reading K as rows and V transposed, five cores.
    "task-pipeline-self-attention": (lambda: shipped("self_attention"), "dataflow",
                                     Pattern.TASK_PIPELINE),
    # Dealt projections gathered tile by tile, a row reorder buffer before the softmax.
    "task-parallel-self-attention-small": (lambda: shipped("self_attention", "small"), "intar",
                                           Pattern.TASK_PARALLEL),
    # Convolutions through window readers, dealt over two cores (peer windows), the noise join
    # reading a graph input from the side memory.
    "sequential-vae": (lambda: shipped("vae"), "sequential", Pattern.SEQUENTIAL),
    # Convolutions streaming tile by tile from their producers' result memories.
    "task-pipeline-vae": (lambda: shipped("vae"), "dataflow", Pattern.TASK_PIPELINE),
}


#: Slow cases (the window readers' Verilog takes Icarus minutes; the small self-attention half a
#: minute, its features also in ``make test``'s Amaranth runs): run by ``pytest -m slow``.
SLOW = ("sequential-vae", "task-pipeline-vae", "task-parallel-self-attention-small")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW
                                  else name for name in CASES])
def test_accelerator_verilog(name, tmp_path):
    make, policy, pattern, *target = CASES[name]
    graph, budget = make()
    s = schedule(graph, budget, policy)
    assert pattern in {st.pattern for st in s.stages}
    inputs, params = graph.random_inputs(9), graph.random_parameters(9)
    golden = ih.reference(graph, inputs, params)
    pysim = ih.simulate(ih.build(s, graph), inputs, params)
    acc = ih.build(s, graph)
    top = _Top(acc, offchip_memory(acc, inputs, params))
    run_cocotb(top, toplevel="accelerator", test_module="accelerator_cocotb", test_dir=SIM_DIR,
               build_dir=tmp_path, parameters={"words": acc.offchip_words,
                                               "limit": 4 * pysim.cycles + 100},
               platform=target and Target(target[0]),
               sources=[SIM_DIR / "models" / "MULT18X18D.v"] if target else [])
    if target:
        assert "MULT18X18D" in (tmp_path / "accelerator.v").read_text()
    result = json.loads((tmp_path / "result.json").read_text())
    outputs = acc.plan.outputs_from_offchip(result["words"], acc.bus_bytes, acc.output_base)
    assert set(outputs) == set(t.name for t in graph.outputs)
    for out, value in outputs.items():
        np.testing.assert_array_equal(value, golden[out])
    assert result["cycles"] == pysim.cycles
