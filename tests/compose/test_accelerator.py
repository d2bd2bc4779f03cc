# amaranth: UnusedElaboratable=no
"""The accelerator holds only what its schedule uses."""

import pytest
from amaranth.hdl import Fragment

import intar_hw as ih
from intar_hw.compose import Accelerator, build
from intar_hw.hw.queue import Queue
from intar_hw.hw.scratchpad import Scratchpad
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
        "/core0/fetch", "/core0/result", "/core0/results", "/core0/weights", "/loader",
        "/storer"]
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
    assert (acc.predicted_cycles, acc.onchip_cycles) == (426, 59)
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
