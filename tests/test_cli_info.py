import json

import pytest

from intar_hw.cli import main


def test_info_table(capsys):
    assert main(["info", "mlp", "--scale", "paper"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "mlp (paper): 6 ops, 2,883,584 MACs, 2,896,896 parameter bytes"
    assert out[1].split() == ["op", "kind", "inputs", "output", "format", "MACs", "output",
                              "bytes", "live", "bytes"]
    assert set(out[2]) == {"-"}
    assert out[3].split() == ["fc1", "linear", "1x256", "1x1024", "int8", "262,144", "1,024",
                              "1,280"]
    assert [line.split()[0] for line in out[3:]] == ["fc1", "relu1", "fc2", "relu2", "fc3",
                                                     "relu3"]


def test_info_json(capsys):
    assert main(["info", "gpt2_medium", "--scale", "tiny", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "gpt2_medium" and data["scale"] == "tiny"
    assert data["inputs"] == {"x": [4, 8]} and data["outputs"] == ["residual2"]
    assert data["macs"] == sum(row["macs"] for row in data["ops"])
    scores = next(row for row in data["ops"] if row["op"] == "scores")
    assert scores == {"op": "scores", "kind": "matmul", "inputs": [[4, 8], [4, 8]],
                      "output": [2, 4, 4], "format": "int8", "macs": 128, "input_bytes": 64,
                      "output_bytes": 32, "param_bytes": 0, "live_bytes": 160}


def test_info_path(tmp_path, capsys):
    path = tmp_path / "tiny_model.py"
    path.write_text("import intar_hw as ih\n"
                    "def graph(scale):\n"
                    "    g = ih.Graph('one')\n"
                    "    g.output(g.relu(g.input('x', (3, 4)), name='r'))\n"
                    "    return g\n")
    assert main(["info", str(path), "--scale", "small"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "one (small): 1 ops, 0 MACs, 0 parameter bytes"
    assert out[3].split() == ["r", "relu", "3x4", "3x4", "int8", "0", "12", "24"]


@pytest.mark.parametrize("argv, message", [
    (["info", "resnet"], "intar info: error: Unknown model 'resnet'; expected one of mlp, "
     "self_attention, cnn4l, vae, gating_net, gpt2_medium, or a path to a .py file defining "
     "graph(scale)"),
    (["info", "mlp", "--scale", "huge"],
     "intar info: error: Scale must be one of tiny, small, paper, not 'huge'"),
    (["info", "nowhere/model.py"], "intar info: error: Model file 'nowhere/model.py' does not "
     "exist"),
])
def test_info_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == message + "\n"


@pytest.mark.parametrize("body, message", [
    ("raise RuntimeError('boom')\n", "failed to load: RuntimeError: boom"),
    ("def graph(:\n", "failed to load: SyntaxError: invalid syntax"),
    ("import no_such_module_here\n",
     "failed to load: ModuleNotFoundError: No module named 'no_such_module_here'"),
    ("def graph(scale):\n    return {}['x']\n", "graph('small') raised KeyError: 'x'"),
])
def test_a_model_file_that_raises_is_one_line(tmp_path, capsys, body, message):
    path = tmp_path / "bad_model.py"
    path.write_text(body)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("intar info: error: ")
    assert message in err and "bad_model.py" in err


def test_broken_pipe_is_one_line(capsys, monkeypatch):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self):
            pass
    monkeypatch.setattr("sys.stdout", Closed())
    assert main(["info", "mlp", "--json"]) == 2
    assert capsys.readouterr().err == (
        "intar info: error: output closed before it was all written\n")
