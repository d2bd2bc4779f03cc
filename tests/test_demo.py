from intar_hw import demo


def test_main_reports_a_match(capsys, tmp_path, monkeypatch):
    # `make demo` runs every kernel at small scale; two at tiny scale keep this test quick
    # (tests/test_sim.py simulates every kernel under every policy).
    monkeypatch.chdir(tmp_path)
    assert demo.main("tiny", synthesis=False, models=("mlp", "gating_net")) == 0
    out = capsys.readouterr().out
    assert "geomean" in out
    lines = out.splitlines()
    for model in ("mlp", "gating_net"):
        for policy in ("sequential", "dataflow", "intar"):
            row = next(line for line in lines if line.split()[:2] == [model, policy])
            assert row.split()[-2] == "yes"         # match
    assert "not generated" not in out
    assert "bit-exact" in lines[-1]
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == [
        "cnn4l.png", "gating_net.png", "mlp.png", "self_attention.png", "vae.png"]


def test_gemm_demo_reports_a_match(capsys):
    assert demo.gemm_demo() == 0
    out = capsys.readouterr().out
    assert "match: True" in out
    assert "cycles simulated:" in out and "cycles/s" in out
