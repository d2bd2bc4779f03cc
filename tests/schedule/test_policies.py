import time
from types import SimpleNamespace

import pytest

from intar_hw.models import MODELS, SCALES, model_graph
from intar_hw.schedule import Resources, Pattern, Order, UnbuildableError, schedule, evaluate
from intar_hw.schedule.policies import pick, spill_plan, dataflow_shapes, _shares
from intar_hw.schedule.tasks import task_graph


PAPER_KERNELS = ("mlp", "self_attention", "cnn4l", "vae", "gating_net")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("scale", ("tiny", "small"))
def test_every_policy_schedules_every_model(model, scale):
    graph = model_graph(model, scale)
    resources = Resources.for_model(model, scale)
    tasks = [t.name for t in task_graph(graph).tasks]
    result = {p: schedule(graph, resources, p, buildable=model != "gpt2_medium")
              for p in ("sequential", "dataflow", "intar")}
    for policy, s in result.items():
        assert s.policy == policy
        assert sorted(s.tasks) == sorted(tasks)
        assert s.macs == graph.macs
        assert 0 < s.utilisation <= 1
    assert result["intar"].cycles <= result["sequential"].cycles
    assert result["intar"].cycles <= result["dataflow"].cycles
    sequential = result["sequential"]
    assert all(st.pattern is Pattern.SEQUENTIAL for st in sequential.stages)
    assert all(st.placements[0].cores == tuple(range(resources.ccs)) for st in sequential.stages)
    dataflow = result["dataflow"]
    assert len(dataflow.stages) == 1 and len(dataflow.cores) == len(tasks)
    assert sum(c.macs for c in dataflow.cores) <= resources.macs_per_cycle


@pytest.mark.parametrize("fmt", ("int8", "int16"))
@pytest.mark.parametrize("model", PAPER_KERNELS)
def test_intar_beats_both_baselines_on_the_paper_kernels(model, fmt):
    graph = model_graph(model, "paper", fmt=fmt)
    resources = Resources.for_model(model, "paper")
    cycles = {p: schedule(graph, resources, p, buildable=False).cycles
              for p in ("sequential", "dataflow", "intar")}
    assert cycles["intar"] <= cycles["sequential"]
    assert cycles["intar"] <= cycles["dataflow"]


def test_intar_never_loses_to_dataflow_on_a_user_budget():
    # The README's budget: an off-chip-bound MLP where one pipeline of all tasks is fastest.
    graph = model_graph("mlp", "paper")
    resources = Resources(ccs=2, pea=(1, 16), scratchpad_kib=64, offchip_bytes_per_cycle=8)
    dataflow, intar = (schedule(graph, resources, p, buildable=False)
                       for p in ("dataflow", "intar"))
    assert intar.cycles <= dataflow.cycles
    assert intar.policy == "intar"


def test_gpt2_layer():
    graph = model_graph("gpt2_medium", "paper")
    resources = Resources.for_model("gpt2_medium", "paper")
    s = {p: schedule(graph, resources, p, buildable=False)
         for p in ("sequential", "dataflow", "intar")}
    assert s["intar"].cycles <= min(s["sequential"].cycles, s["dataflow"].cycles)


def test_mlp_schedule_against_the_paper_structure():
    graph = model_graph("mlp", "paper", fmt="int16")
    resources = Resources.preset("paper_mlp")
    found = schedule(graph, resources, "intar", buildable=False)
    # The authors' structure: fc1 on both cores, then fc2 streamed into fc3 with rank-16
    # updates, one core each. Our one loader writes one weight word (16 int16 lanes) per cycle
    # and streams fc3's weights after fc2's, so fc3 waits for them: 180,910 cycles predicted;
    # the generated accelerator of the int8 graph, whose weight words are half as wide but also
    # written one a cycle, runs it in 180,925 (Verilator, bit-exact).
    paper = evaluate(graph, resources, [[("fc1", (0, 1), "rows")],
                                        [("fc2", (0,), "rows"), ("fc3", (1,), "kouter")]])
    assert paper.cycles == pytest.approx(180_925, rel=0.001)
    # The search finds a pipeline no slower (fc1 into fc2, then fc3 on both cores); both are
    # 24% slower than the paper's measured 0.582 ms at 250 MHz, where the two tasks' weights
    # stream side by side.
    assert found.cycles <= paper.cycles
    assert any(st.pattern is Pattern.TASK_PIPELINE for st in found.stages)
    assert paper.milliseconds() == pytest.approx(0.582 * 1.24, rel=0.01)


def test_cnn_pipelines_conv2_into_conv3():
    graph = model_graph("cnn4l", "paper", fmt="int16")
    resources = Resources.preset("paper_cnn4l")
    found = schedule(graph, resources, "intar", buildable=False)
    pipelines = [st for st in found.stages if st.pattern is Pattern.TASK_PIPELINE]
    assert any({"conv2", "conv3"} <= set(st.tasks) for st in pipelines)
    assert found.stages[-1].tasks == ("conv4",)
    assert found.stages[-1].pattern is Pattern.SEQUENTIAL
    # The paper's conv1 -> conv2 -> conv3 pipeline leaves conv3, 64% of the work, on one core.
    paper = evaluate(graph, resources, [
        [("conv1", (0,), "rows"), ("conv2", (1,), "rows"), ("conv3", (2,), "rows")],
        [("conv4", (0, 1, 2), "rows")]])
    assert paper.cycles > 1.15 * found.cycles


def test_intar_is_deterministic():
    graph = model_graph("self_attention", "small")
    resources = Resources.for_model("self_attention", "small")
    assert schedule(graph, resources, "intar") == schedule(graph, resources, "intar")


def test_scheduling_is_fast():
    for model in MODELS:
        for scale in SCALES:
            graph = model_graph(model, scale)
            resources = Resources.for_model(model, scale)
            for policy in ("sequential", "dataflow", "intar"):
                start = time.perf_counter()
                schedule(graph, resources, policy, buildable=False)
                assert time.perf_counter() - start < 5, (model, scale, policy)


def test_dataflow_shares_follow_the_work():
    assert _shares(10, [1, 1, 2]) == [3, 2, 5] or _shares(10, [1, 1, 2]) == [2, 3, 5]
    assert _shares(4, [1, 1000, 1000, 1000]) == [1, 1, 1, 1]
    tg = task_graph(model_graph("cnn4l", "paper"))
    resources = Resources.preset("paper_cnn4l")
    shares = _shares(432, [t.hw_macs for t in tg.tasks])
    assert shares == [17, 69, 277, 69]
    for task, share, pea in zip(tg.tasks, shares, dataflow_shapes(tg, resources)):
        assert pea[0] * pea[1] * pea[2] <= share
        assert pea[2] == 9                                  # the budget's PE template depth
    free = dataflow_shapes(tg, resources, free_depth=True)
    assert free[0] == (1, 17, 1)                            # 17 pixels, taps over 9 beats


def test_pick_prefers_fewer_bytes_when_close():
    assert pick([(100, 50, "a"), (100.9, 10, "b")])[2] == "b"
    assert pick([(100, 50, "a"), (101.1, 10, "b")])[2] == "a"
    assert pick([(100, 50, "a"), (100, 50, "b")])[2] == "a"
    assert pick([(100, 50, "a"), (90, 1000, "c")])[2] == "c"


def test_spill_plan():
    tensor = lambda size, readers: SimpleNamespace(bytes=size, readers=readers)  # noqa: E731
    tg = SimpleNamespace(tensors={"a": tensor(100, ("x", "y")), "b": tensor(100, ("z",))})
    spans = {"a": (0, 1), "b": (1, 2)}
    assert spill_plan(tg, spans, [150, 150, 150]) == {"b": 0.5}
    assert spill_plan(tg, spans, [300, 300, 300]) == {}
    assert spill_plan(tg, spans, [0, 0, 0]) == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match=r"^Stage 1 needs 1 KiB more on-chip memory for its "
                                         r"buffers than the budget has$"):
        spill_plan(tg, spans, [0, -1024, 0])
    with pytest.raises(ValueError, match=r"^a must stay$"):
        spill_plan(tg, spans, [0, 0, 0], {"a": "a must stay", "b": "b must stay"}, ["x"] * 3)


@pytest.mark.parametrize("policy", ("sequential", "dataflow", "intar"))
def test_infeasible_budget(policy):
    graph = model_graph("cnn4l", "paper")
    resources = Resources.preset("paper_cnn4l").replace(scratchpad_kib=0.5)
    with pytest.raises(ValueError, match=r"^Task 'conv1' needs 0.875 KiB of scratchpad for its "
                                         r"input row tile of 'x' but each CC has 0.5 KiB "
                                         r"\(0.375 KiB short\)$"):
        schedule(graph, resources, policy)


def test_argument_errors():
    graph = model_graph("mlp", "tiny")
    with pytest.raises(ValueError, match=r"^Policy must be one of sequential, dataflow, intar, "
                                         r"not 'greedy'$"):
        schedule(graph, Resources(), "greedy")
    with pytest.raises(TypeError, match=r"^Resources must be a Resources, not 'ecp5_85k'$"):
        schedule(graph, "ecp5_85k", "intar")
    with pytest.raises(TypeError, match=r"^Graph must be a Graph, not 'mlp'$"):
        schedule("mlp", Resources(), "intar")


def test_evaluate_errors():
    graph = model_graph("mlp", "tiny")
    r = Resources()
    with pytest.raises(ValueError, match=r"^Task 'fc2' comes before its producer 'fc1'$"):
        evaluate(graph, r, [[("fc2", (0, 1), "rows")], [("fc1", (0, 1), "rows")]])
    with pytest.raises(ValueError, match=r"^Tasks 'fc3' are not scheduled$"):
        evaluate(graph, r, [[("fc1", (0, 1), "rows")], [("fc2", (0, 1), "rows")]])
    with pytest.raises(ValueError, match=r"^Task 'fc1' cores must be indices below 2, "
                                         r"not \(2,\)$"):
        evaluate(graph, r, [[("fc1", (2,), "rows")]])
    s = evaluate(graph, r, [[("fc1", (0, 1), "rows")], [("fc2", (0,), "rows"),
                                                          ("fc3", (1,), "kouter")]])
    assert s.placement("fc3").order is Order.KOUTER


def test_only_buildable_schedules_are_offered():
    graph = model_graph("gpt2_medium", "tiny")
    resources = Resources.for_model("gpt2_medium", "tiny")
    for policy in ("sequential", "dataflow", "intar"):
        with pytest.raises(UnbuildableError, match=r"generated: The generator does not support "
                                                   r"matmuls of several heads \(task 'scores'\) "
                                                   r"yet$"):
            schedule(graph, resources, policy)
        assert schedule(graph, resources, policy, buildable=False).policy == policy
    with pytest.raises(TypeError, match=r"^Buildable must be a bool, not 'yes'$"):
        schedule(graph, resources, "intar", buildable="yes")
    with pytest.raises(TypeError, match=r"^Buildable schedules need the Graph, not its "
                                        r"TaskGraph \(or pass buildable=False\)$"):
        schedule(task_graph(graph), resources, "intar")
