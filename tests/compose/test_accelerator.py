# amaranth: UnusedElaboratable=no
"""The accelerator holds only what its schedule uses."""

import re

import numpy as np
import pytest
from amaranth.hdl import Fragment

import intar_hw as ih
from intar_hw.compose import Accelerator, build
from intar_hw.hw.queue import Queue
from intar_hw.schedule import Resources, schedule


def tiny(graph, policy="sequential"):
    return schedule(graph, Resources.for_model("mlp", "tiny"), policy)


def one_layer(rows=1, bias=True):
    g = ih.Graph("one_layer")
    x = g.input("x", shape=(rows, 8), fmt="int8")
    g.output(g.linear(x, 12, shift=6, bias=bias, name="fc"))
    return g


def hierarchy(acc):
    """``{path: elaboratable}`` of every submodule of the elaborated design."""
    found = {}

    def walk(fragment, path):
        for sub, name, _ in fragment.subfragments:
            here = f"{path}/{name}"
            found[here] = sub.origins[0] if getattr(sub, "origins", None) else sub
            walk(sub, here)
    walk(Fragment.get(acc, None), "")
    return found


def test_mlp_sequential_builds_one_core_and_no_fifo():
    graph = ih.model_graph("mlp", "tiny")
    acc = build(tiny(graph), graph)
    found = hierarchy(acc)
    assert sorted(p for p in found if p.count("/") <= 2) == [
        "/controller", "/core0", "/core0/activations", "/core0/array", "/core0/biases",
        "/core0/fetch", "/core0/operands", "/core0/result", "/core0/results", "/core0/weights",
        "/loader", "/loader/ring", "/storer"]
    # The loader fills exactly the memories the programs read from off-chip.
    assert sorted(n for n in found["/loader"].signature.members
                  if n.startswith("core") and not n.endswith("_level")) == [
        "core0_activations", "core0_biases", "core0_weights"]
    # Core 1 gets no tiles in any stage: it is not built. No stage streams: no FIFO anywhere.
    assert not any(isinstance(e, Queue) or "fifo" in p.lower() for p, e in found.items())
    # Stages 1 and 2 chain from the result memory: it has a read port for the core as well.
    assert found["/core0/results"].read_ports == 2
    # The operand fetch has one port per source the programs use, the result memory included.
    assert [n for n in found["/core0/fetch"].signature.members
            if n in ("activations", "weights", "results")] == [
        "activations", "weights", "results"]


def test_one_layer_has_no_chaining_port_and_no_bias_memory():
    graph = one_layer(bias=False)
    acc = build(tiny(graph), graph, offchip=False)
    found = hierarchy(acc)
    assert found["/core0/results"].read_ports == 1
    assert "/core0/biases" not in found
    assert [n for n in found["/core0/fetch"].signature.members
            if n in ("activations", "weights", "results")] == ["activations", "weights"]
    assert sorted(acc.signature.members) == [
        "busy", "core0_activations_write", "core0_results_read", "core0_weights_write", "done",
        "start"]


def test_ports_and_attributes():
    graph = ih.model_graph("mlp", "tiny")
    s = tiny(graph)
    acc = build(s)                       # the graph is re-loaded from the schedule's model
    assert isinstance(acc, Accelerator) and acc.schedule is s
    assert acc.graph.to_dict() == graph.to_dict()
    assert set(acc.cores) == {0}
    assert sorted(acc.signature.members) == [
        "busy", "done", "offchip_read_data", "offchip_read_req", "offchip_write", "start"]
    assert (acc.predicted_cycles, acc.onchip_cycles) == (437, 64)
    # Two bytes a cycle: 16-bit off-chip words; 100 + 160 + 80 of them read by the three
    # stages, then 4 for the 8-byte output.
    assert (acc.bus_bytes, acc.offchip_words, acc.output_base) == (2, 344, 340)
    assert len(acc.offchip_read_data.payload.data) == 16
    Fragment.get(acc, None)              # built components are meant to be used


def test_host_loaded_ports():
    graph = ih.model_graph("mlp", "tiny")
    acc = build(tiny(graph), graph, offchip=False)
    assert sorted(acc.signature.members) == [
        "busy", "core0_activations_write", "core0_biases_write", "core0_results_read",
        "core0_weights_write", "done", "start"]
    assert "/loader" not in hierarchy(acc)


@pytest.mark.parametrize("offchip, ports", [
    (True, ("offchip_read_req__valid", "offchip_read_data__payload", "offchip_write__valid")),
    (False, ("core0_weights_write__valid", "core0_results_read__req__valid"))])
def test_verilog(offchip, ports):
    graph = one_layer()
    text = ih.to_verilog(build(tiny(graph), graph, offchip=offchip), name="acc")
    assert "module acc(" in text
    for port in ("start", "done") + ports:
        assert port in text


def test_errors():
    with pytest.raises(TypeError, match=r"^Schedule must be a Schedule, not 'mlp'$"):
        build("mlp")
    graph = one_layer()
    with pytest.raises(TypeError, match=r"^Graph must be a Graph, not 3$"):
        build(tiny(graph), 3)
    acc = Accelerator(tiny(graph), graph)
    Fragment.get(acc, None)
    with pytest.raises(TypeError, match=r"^Offchip must be a bool, not 1$"):
        Accelerator(tiny(graph), graph, offchip=1)


def test_loader_fills_only_what_is_read():
    graph = one_layer(bias=False)
    found = hierarchy(build(tiny(graph), graph))
    assert "/core0/biases" not in found
    assert sorted(n for n in found["/loader"].signature.members if n.startswith("core")) == [
        "core0_activations", "core0_activations_level", "core0_weights", "core0_weights_level"]


def test_mlp_pipeline_links_only_what_streams():
    graph = ih.model_graph("mlp", "tiny")
    acc = build(tiny(graph, "intar"), graph)
    found = hierarchy(acc)
    assert sorted(p for p in found if p.count("/") == 1) == [
        "/controller", "/core0", "/core1", "/core2", "/loader", "/storer"]
    # No FIFO: a one-row edge is read from the producer's result memory, one port per reader.
    assert not any(isinstance(e, Queue) or "fifo" in p.lower() for p, e in found.items())
    assert [found[f"/core{c}/results"].read_ports for c in range(3)] == [2, 2, 1]
    # Cores 1 and 2 take A from a peer: no activation memory, and a fetch port for the peer.
    assert "/core1/activations" not in found and "/core2/activations" not in found
    fetch = [n for n in found["/core1/fetch"].signature.members
             if n in ("activations", "weights", "results", "peer")]
    assert fetch == ["weights", "peer"]


# --- tasks dealt over several cores --------------------------------------------------------------

def dealt(pea, scale="tiny"):
    graph = ih.model_graph("mlp", scale)
    budget = Resources.for_model("mlp", scale).replace(pea=pea)
    return graph, schedule(graph, budget, "sequential")


def test_dealt_task_gets_a_result_replica_per_extra_reader():
    graph, s = dealt((1, 8, 1))
    found = hierarchy(build(s, graph))
    # Core 0 chains its own results and shares them with core 1: a replica for the peer, so a
    # word broadcast to both cores is read by both in one cycle.
    assert found["/core0/results"].read_ports == 2
    assert "/core0/results_replica0" in found and "/core0/results_replica1" not in found
    fetch = [n for n in found["/core0/fetch"].signature.members
             if n in ("activations", "weights", "results", "peer")]
    assert fetch == ["activations", "weights", "results", "peer"]


@pytest.mark.parametrize("pea, offchip, measured", [
    ((1, 8, 1), True, 437),          # fc1 and fc2 dealt along N over both cores
    ((1, 8, 1), False, 64),
    ((1, 4, 1), True, 437),          # fc3 too: the output is gathered from both cores
    ((1, 4, 1), False, 88),
])
def test_dealt_tiny_mlp_bit_exact(pea, offchip, measured):
    """A graph input broadcast to both cores, a result gathered from two result memories as the
    next task's operand and as the output; cycles as the schedule predicts (exactly, on chip)."""
    import numpy as np
    graph, s = dealt(pea)
    assert [p.cores for st in s.stages for p in st.placements] == [(0, 1)] * 3
    acc = build(s, graph, offchip=offchip)
    inputs, params = graph.random_inputs(11), graph.random_parameters(11)
    result = ih.simulate(acc, inputs, params)
    np.testing.assert_array_equal(result.outputs["relu3"],
                                  ih.reference(graph, inputs, params)["relu3"])
    assert result.cycles == measured
    if offchip:
        # Exact: the cost model counts the last row's drain after the last weight word.
        assert result.predicted_cycles == 437
        assert abs(result.cycles - result.predicted_cycles) <= 0.01 * result.predicted_cycles
    else:
        assert result.cycles == acc.onchip_cycles


@pytest.mark.slow      # 30 s of pysim: in make bench (make test: the small MLP on one core)
def test_mlp_small_sequential_deals_fc2():
    """The target: the small MLP under the sequential policy, fc2 dealt over cores 0 and 1."""
    import numpy as np
    graph = ih.model_graph("mlp", "small")
    s = schedule(graph, Resources.for_model("mlp", "small"), "sequential")
    assert s.stages[1].placements[0].split == "N"
    inputs, params = graph.random_inputs(5), graph.random_parameters(5)
    result = ih.simulate(ih.build(s), inputs, params)
    np.testing.assert_array_equal(result.outputs["relu3"],
                                  ih.reference(graph, inputs, params)["relu3"])
    assert (result.predicted_cycles, result.cycles) == (7741, 7741)


@pytest.mark.parametrize("offchip", [True, False])
@pytest.mark.parametrize("rows, K, N, pea, split", [
    (9, 4, 2, (2, 2, 1), "M"),        # row tiles dealt round-robin, "MN"
    (10, 4, 3, (8, 1, 1), "M"),       # "NM": the dealt rows are the result words' columns
    (3, 7, 70, (1, 64, 1), "N"),      # several rows, columns dealt; the output gathered per row
])
def test_dealt_layer_of_several_rows(rows, K, N, pea, split, offchip):
    """Input rows (split M) or weight rows (split N) go to the core that computes them; the
    storer (or the host) gathers the output from both result memories in order."""
    import numpy as np
    g = ih.Graph("rows")
    x = g.input("x", shape=(rows, K), fmt="int8")
    g.output(g.linear(x, N, shift=6, name="fc"))
    budget = Resources(ccs=2, pea=pea, scratchpad_kib=64, offchip_bytes_per_cycle=3,
                       offchip_latency=5)
    s = schedule(g, budget, "sequential")
    assert s.stages[0].placements[0].split == split
    assert all(loop.cycles for loop in s.stages[0].placements[0].loops)
    acc = build(s, g, offchip=offchip)
    inputs, params = g.random_inputs(2), g.random_parameters(2)
    result = ih.simulate(acc, inputs, params)
    np.testing.assert_array_equal(result.outputs["fc"], ih.reference(g, inputs, params)["fc"])
    if not offchip:
        assert result.cycles == acc.onchip_cycles


def _products(design):
    """Multiplications of two signals (no constant factor) in ``design``'s netlist."""
    from amaranth.back import rtlil
    count = 0
    for cell in re.findall(r"cell \$mul .*?\n  end", rtlil.convert(design), re.S):
        operands = dict(re.findall(r"connect \\([AB]) (.+)", cell))
        if not any(re.fullmatch(r"\d+'[01x]+", operands[k].strip()) for k in "AB"):
            count += 1
    return count


@pytest.mark.parametrize("model, budget", [("gating_net", None), ("self_attention", None),
                                           ("mlp", "ice40_up5k")])
def test_multipliers_are_the_products_the_design_builds(model, budget):
    graph = ih.model_graph(model, "tiny")
    resources = (Resources.for_model(model, "tiny") if budget is None
                 else Resources.preset(budget))
    acc = build(schedule(graph, resources, "intar"))
    assert acc.multipliers == _products(acc)
    # The gating network's mul join and the attention's softmax have multipliers of their own.
    assert (acc.multipliers > acc.array_multipliers) == (model != "mlp")


def test_a_design_needing_more_multipliers_than_its_device_is_refused():
    # Two 2x2 cores fill the iCE40 UP5K's 8 multipliers; the gating network's mul joins need more.
    s = schedule(ih.model_graph("gating_net", "tiny"), Resources.preset("ice40_up5k"), "intar")
    with pytest.raises(ValueError, match=r"^The accelerator needs 11 multipliers \(8 in its PE "
                                         r"arrays, 3 in its special-function units\) but "
                                         r"ice40-up5k has 8$"):
        build(s)
    # Without a device the same budget builds.
    Fragment.get(build(schedule(s.graph, Resources.preset("ice40_up5k").replace(device=None),
                                "intar")), None)


@pytest.mark.parametrize("policy", ["sequential", "intar"])
def test_a_second_run_reads_only_its_own_data(policy):
    # Two runs back to back on one accelerator, new inputs loaded off-chip in between: the second
    # run's reads wait for the second run's words (the memories' levels start again from 0), so
    # both outputs are the golden model's and both runs take the same cycles.
    from amaranth.sim import Simulator
    from intar_hw.hw.offchip import load, read_back
    from intar_hw.sim import CLOCK_PERIOD, _Board, offchip_memory
    graph = ih.model_graph("mlp", "tiny")
    acc = build(tiny(graph, policy), graph)
    params = graph.random_parameters(4)
    runs = [graph.random_inputs(4), graph.random_inputs(5)]
    memory = offchip_memory(acc, runs[0], params)
    seen = []

    async def bench(ctx):
        for inputs in runs:
            load(ctx, memory, acc.plan.offchip_image(inputs, params, acc.bus_bytes))
            ctx.set(acc.start, 1)
            await ctx.tick()
            ctx.set(acc.start, 0)
            cycles = 1
            while not ctx.get(acc.done):
                await ctx.tick()
                cycles += 1
            await ctx.tick()
            words = [int(w) for w in read_back(ctx, memory)]
            seen.append((cycles, acc.plan.outputs_from_offchip(words, acc.bus_bytes,
                                                               acc.output_base)))
    sim = Simulator(_Board(acc, memory))
    sim.add_clock(CLOCK_PERIOD)
    sim.add_testbench(bench)
    sim.run()
    assert seen[0][0] == seen[1][0] == acc.predicted_cycles
    for (_, outputs), inputs in zip(seen, runs):
        np.testing.assert_array_equal(outputs["relu3"],
                                      ih.reference(graph, inputs, params)["relu3"])


def test_brams_count_the_memories_yosys_puts_in_block_ram():
    # Tiny designs keep every memory in LUT RAM; the small gating network's operand memories
    # are block RAM (8 DP16KD, as synth_ecp5 maps it: tests/flow/test_memory_map.py).
    graph = ih.model_graph("gating_net", "tiny")
    tiny = build(schedule(graph, Resources.for_model("gating_net", "tiny"), "intar"))
    assert tiny.brams == sum(core.brams for core in tiny.cores.values()) == 0
    graph = ih.model_graph("gating_net", "small")
    small = build(schedule(graph, Resources.for_model("gating_net", "small"), "intar"))
    assert small.brams == sum(core.brams for core in small.cores.values()) == 8
