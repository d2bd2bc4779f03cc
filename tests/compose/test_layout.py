import numpy as np
import pytest

import intar_hw as ih
from intar_hw.compose import onchip_cycles, plan
from intar_hw.hw.core import Source
from intar_hw.schedule import Resources, Schedule, schedule


def mlp(scale="tiny", policy="sequential"):
    graph = ih.model_graph("mlp", scale)
    return graph, schedule(graph, Resources.for_model("mlp", scale), policy)


def test_mlp_programs_chain_on_one_core():
    graph, s = mlp()
    p = plan(s, graph)
    assert p.cores == (0,)                       # core 1 gets no tiles: it is not planned
    assert p.stages == (((0, 0),), ((0, 1),), ((0, 2),))
    first, second, third = p.programs[0]
    assert (first.M, first.N, first.K, first.a.source) == (1, 16, 8, Source.ACTIVATIONS)
    assert (second.a.source, second.a.base) == (Source.RESULTS, first.dest_base)
    assert (third.a.source, third.a.base) == (Source.RESULTS, second.dest_base)
    assert [g.relu for g in p.programs[0]] == [True] * 3
    assert [g.shift for g in p.programs[0]] == [8] * 3
    # Every memory region is its own: weights, biases and results one after the other.
    assert second.b.base == first.b_words and third.b.base == first.b_words + second.b_words
    assert second.dest_base == first.dest_words
    assert p.output_locations() == {"relu3": (p.task("fc3"),)}


def test_mlp_pipeline_reads_peers():
    graph, s = mlp("tiny", "intar")
    p = plan(s, graph)
    assert p.cores == (0, 1, 2) and p.stages == (((0, 0), (1, 0), (2, 0)),)
    assert p.peers == {1: 0, 2: 1}
    fc1, fc2, fc3 = (p.programs[c][0] for c in (0, 1, 2))
    assert fc1.a.source is Source.ACTIVATIONS
    # fc2 reads relu1 where fc1 wrote it: core 0's 32-lane result words.
    assert (fc2.a.source, fc2.a.base, fc2.a.lanes) == (Source.PEER, fc1.dest_base, 32)
    assert (fc3.a.source, fc3.a.base, fc3.a.lanes) == (Source.PEER, fc2.dest_base, 21)
    # Only core 0 loads an activation; every core loads its weights and biases.
    assert p.targets() == ((0, "activations"), (0, "weights"), (0, "biases"), (1, "weights"),
                           (1, "biases"), (2, "weights"), (2, "biases"))
    assert p.result_sources() == (2,)


def test_images_and_outputs_round_trip():
    graph, s = mlp()
    p = plan(s, graph)
    inputs, params = graph.random_inputs(3), graph.random_parameters(3)
    images = p.images(inputs, params)
    assert set(images) == {0} and set(images[0]) == {"activations", "weights", "biases"}
    first = p.programs[0][0]
    assert images[0]["activations"] == first.a_image(inputs["x"].reshape(1, 1, 8))
    # Unpacking reads the output task's words back into the tensor's shape and dtype.
    relu3 = np.arange(8, dtype=np.int8).reshape(1, 8)
    third = p.programs[0][2]
    words = [[0] * 64 for _ in range(third.dest_base)] + [list(range(8)) + [0] * 56]
    out = p.outputs({0: words})
    np.testing.assert_array_equal(out["relu3"], relu3)
    assert out["relu3"].dtype == np.int8


def test_onchip_cycles_drop_the_offchip_terms():
    graph, s = mlp()
    # Per stage: busy + ARRAY_LATENCY + BIAS_LATENCY (+ 2 for the run's start and done, + 2 to
    # reconfigure after each stage).
    assert onchip_cycles(plan(s, graph)) == (2 + 9 + 5) + (17 + 5 + 2) + (17 + 5 + 2) == 64
    assert s.cycles == 437


def test_a_schedule_carries_its_graph():
    for scale in ("tiny", "small"):
        graph, s = mlp(scale)
        assert s.graph is graph
        again = Schedule.from_json(s.to_json())
        assert again == s and again.graph.to_dict() == graph.to_dict()


def test_a_schedule_without_its_graph_needs_one():
    graph, s = mlp()
    bare = Schedule.from_dict({**s.to_dict(), "graph": None})
    assert bare.graph is None
    with pytest.raises(ValueError, match=r"^Schedule of model 'mlp' carries no graph \(it was not "
                                         r"made by intar_hw.schedule from a Graph\); pass graph=$"):
        ih.build(bare)
    ih.to_verilog(ih.build(bare, graph))    # elaborated: no unused-elaboratable warning


def test_graph_must_match():
    graph, s = mlp("tiny")
    with pytest.raises(ValueError, match=r"^Task 'fc1' GEMM \(1, 1, 16, 8\) does not match the "
                                         r"graph's operator \(1, 1, 64, 32\)$"):
        plan(s, ih.model_graph("mlp", "small"))


def test_plan_type_errors():
    graph, s = mlp()
    with pytest.raises(TypeError, match=r"^Schedule must be a Schedule, not 1$"):
        plan(1, graph)
    with pytest.raises(TypeError, match=r"^Graph must be a Graph, not 1$"):
        plan(s, 1)


@pytest.mark.parametrize("model, scale, policy, message", [
    ("gpt2_medium", "tiny", "intar", r"matmuls of several heads \(task 'scores'\)"),
])
def test_unsupported(model, scale, policy, message):
    graph = ih.model_graph(model, scale)
    s = schedule(graph, Resources.for_model(model, scale), policy, buildable=False)
    with pytest.raises(ValueError, match=rf"^The generator does not support {message} yet$"):
        plan(s, graph)


def test_dealt_tasks_are_parts_on_each_core():
    """The tiny MLP on two 8-lane cores: fc1 and fc2 are dealt along N, tile by tile."""
    graph = ih.model_graph("mlp", "tiny")
    s = schedule(graph, Resources.for_model("mlp", "tiny").replace(pea=(1, 8, 1)), "sequential",
                 buildable=False)
    p = plan(s, graph)
    fc1, fc2 = p.parts("fc1"), p.parts("fc2")
    assert [(t.core, t.split, t.picks) for t in fc1] == [
        (0, "N", tuple(range(8))), (1, "N", tuple(range(8, 16)))]
    # The graph input is read off-chip once and broadcast to both cores, at one address.
    assert [(t.a_also, t.a_shared) for t in fc1] == [((1,), False), ((), True)]
    assert fc1[0].gemm.a.base == fc1[1].gemm.a.base
    # fc2 gathers relu1 from both result memories, its own first on each core.
    assert fc2[0].gemm.a.gather == ((Source.RESULTS, 0), (Source.PEER, 0))
    assert fc2[1].gemm.a.gather == ((Source.PEER, 0), (Source.RESULTS, 0))
    assert p.peers == {0: 1, 1: 0}
    fc3, = p.parts("fc3")
    assert fc3.core == 0 and fc3.gemm.a.gather == ((Source.RESULTS, 1), (Source.PEER, 1))
    stage0 = p.loader_stages(2)[0]
    assert stage0.words == (8 + 192) // 2
    assert stage0.segments[0].also == (p.targets().index((1, "activations")),)


def test_dealt_output_is_gathered():
    """With 4-lane cores fc3 is dealt too: its two tiles come from the two result memories."""
    graph = ih.model_graph("mlp", "tiny")
    s = schedule(graph, Resources.for_model("mlp", "tiny").replace(pea=(1, 4, 1)), "sequential")
    p = plan(s, graph)
    whole, words = p.result_words("fc3")
    fc3 = p.parts("fc3")
    assert (whole.M, whole.N) == (1, 8)
    assert words == [(0, fc3[0].gemm.dest_base, 4), (1, fc3[1].gemm.dest_base, 4)]
    assert p.result_sources() == (0, 1)
    segments = p.storer_stages(2, 0)[2].segments
    assert [(seg.target, seg.count, seg.nbytes) for seg in segments] == [(0, 1, 4), (1, 1, 4)]
    inputs, params = graph.random_inputs(1), graph.random_parameters(1)
    images = p.images(inputs, params)
    assert set(images) == {0, 1}


def test_missing_parameter():
    graph, s = mlp()
    params = graph.random_parameters()
    del params["fc2.weight"]
    with pytest.raises(ValueError, match=r"^Parameter 'fc2.weight' is missing$"):
        plan(s, graph).images(graph.random_inputs(), params)


def test_graph_must_have_the_formats():
    graph = ih.model_graph("mlp", "tiny", fmt="int16")
    s = schedule(graph, Resources.for_model("mlp", "tiny"), "sequential")
    with pytest.raises(ValueError, match=r"^Task 'fc1' reads 320 parameter bytes but the "
                                         r"graph's operator has 192$"):
        plan(s, ih.model_graph("mlp", "tiny"))


def test_gather_from_three_cores_unsupported():
    # Four 4-lane cores deal fc1 along N: each fc2 part would read three other result memories.
    graph = ih.model_graph("mlp", "tiny")
    budget = Resources.for_model("mlp", "tiny").replace(ccs=4, pea=(1, 4, 1), device=None)
    with pytest.raises(ValueError, match=r"^The generator does not support a core reading "
                                         r"results of two other cores \(core 0 in task 'fc2'\) "
                                         r"yet$"):
        plan(schedule(graph, budget, "sequential", buildable=False), graph)


def test_unsupported_output_after_a_view():
    """A result stored before its upsampling (its readers' windows apply it) cannot be a graph
    output as such."""
    g = ih.Graph("upsampled")
    x = g.input("x", shape=(1, 1, 4, 4), fmt="int8")
    g.output(g.upsample(g.conv2d(x, 1, 3, padding=1, shift=6, name="conv"), 2, name="up"))
    s = schedule(g, Resources.for_model("cnn4l", "tiny"), "sequential", buildable=False)
    with pytest.raises(ValueError, match=r"^The generator does not support a graph output "
                                         r"after an upsampling or pooling \('up'\) yet$"):
        plan(s, g)


def test_vae_noise_is_one_side_join():
    """relu -> mul(h, eps) -> add(h, noise) on enc2's result link is one mul_add join whose
    second tensor, the graph input eps, the loader writes into each part's side memory, in
    the part's result layout, after the part's inputs and before its weights."""
    graph = ih.model_graph("vae", "tiny")
    p = plan(schedule(graph, Resources.for_model("vae", "tiny"), "sequential"), graph)
    parts = p.parts("enc2")
    assert [t.split for t in parts] == ["N", "N"] and [t.side for t in parts] == ["eps"] * 2
    for t in parts:
        g = t.gemm
        assert (g.join.kind, g.join.source, g.join.base, g.join.shift) == (
            "mul_add", Source.SIDES, 0, 7)
        assert g.relu and (t.core, "sides") in p.targets()
    runs = [(t.core, run[0]) for t, run in p._stage_words(1)]
    assert runs == [(0, "sides"), (1, "sides"), (0, "biases"), (0, "weights"),
                    (1, "biases"), (1, "weights")]
    inputs = graph.random_inputs(0)
    # Channel c of eps (pixels in raster order) is part c's side, a word per pixel.
    images = p.images(inputs, graph.random_parameters(0))
    for c, t in enumerate(parts):
        eps = inputs["eps"][0, c].reshape(-1)
        assert [w[0] for w in images[t.core]["sides"]] == eps.tolist()


def test_mul_add_in_two_formats_unsupported():
    g = ih.Graph("noisy")
    x = g.input("x", shape=(4, 8), fmt="int8")
    eps = g.input("eps", shape=(4, 8), fmt="int8")
    h = g.relu(g.linear(x, 8, shift=7, name="fc"), name="h")
    g.output(g.add(h, g.mul(h, eps, shift=7, name="noise"), out_format="int16", name="z"))
    s = schedule(g, Resources.for_model("mlp", "tiny"), "sequential", buildable=False)
    with pytest.raises(ValueError, match=r"^The generator does not support a mul and an add of "
                                         r"its factor in different formats \(task 'fc'\) yet$"):
        plan(s, g)


@pytest.mark.parametrize("scale", ["tiny", "small"])
@pytest.mark.parametrize("model", ["mlp", "self_attention", "cnn4l", "vae", "gating_net"])
def test_intar_offers_only_buildable_schedules(model, scale):
    """The search drops groupings the generator cannot build, e.g. the small gating network's
    up_proj dealt by columns over both cores with gate_proj, on one core, joining its result
    (a join reads its side where it was written, in the same tiles)."""
    graph = ih.model_graph(model, scale)
    plan(schedule(graph, Resources.for_model(model, scale), "intar"), graph)


def test_side_in_another_format_unsupported():
    """The join's second operand is as wide as the result it joins: a wider graph input would
    be truncated, so it is refused."""
    g = ih.Graph("wide_side")
    x = g.input("x", shape=(4, 8), fmt="int8")
    eps = g.input("eps", shape=(4, 8), fmt="int16")
    h = g.relu(g.linear(x, 8, shift=7, name="fc"), name="h")
    g.output(g.add(h, eps, out_format="int16", name="z"))
    s = schedule(g, Resources.for_model("mlp", "tiny"), "sequential", buildable=False)
    with pytest.raises(ValueError, match=r"^The generator does not support a join with a graph "
                                         r"input in another format than the result it joins "
                                         r"\(task 'fc' joins 'eps'\) yet$"):
        plan(s, g)
