"""Paper-scale golden models: time the bit-exact integer reference of all six models.

Run with ``make bench`` (or ``pytest -m slow -s tests/test_bench_golden.py``).
"""

import time

import pytest

import intar_hw as ih


@pytest.mark.slow
def test_paper_scale_golden_time():
    times = {}
    for name in ih.MODELS:
        g = ih.model_graph(name, "paper")
        params, inputs = g.random_parameters(0), g.random_inputs(1)
        start = time.perf_counter()
        ref = ih.reference(g, inputs, params)
        times[name] = time.perf_counter() - start
        assert set(ref) == set(g.tensors)
        start = time.perf_counter()
        flt = ih.reference_float(g, inputs, params)
        float_time = time.perf_counter() - start
        out = g.outputs[0].name
        print(f"golden {name:15} {g.macs:>14,} MACs  integer {times[name]:6.2f} s  "
              f"float {float_time:6.2f} s  output SQNR {ih.sqnr_db(flt[out], ref[out]):5.1f} dB")
        del ref, flt, params, inputs
    total = sum(times.values())
    print(f"golden total (integer) {total:.2f} s (target: under 60 s)")
    assert total < 60
