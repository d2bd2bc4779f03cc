import re

import numpy as np
import pytest

import intar_hw as ih
from intar_hw import models


def shapes(g):
    return {op.name: op.output.shape for op in g.ops}


@pytest.mark.parametrize("name", ih.MODELS)
@pytest.mark.parametrize("scale", ["tiny", "small"])
def test_models_run_in_range(name, scale):
    g = ih.model_graph(name, scale)
    assert g.outputs and g.ops
    inputs, params = g.random_inputs(1), g.random_parameters(0)
    ref = ih.reference(g, inputs, params)
    flt = ih.reference_float(g, inputs, params)
    for tensor in g.tensors.values():
        assert ref[tensor.name].shape == tensor.shape
        assert ref[tensor.name].dtype == tensor.fmt.dtype
        assert tensor.fmt.lo <= ref[tensor.name].min() <= ref[tensor.name].max() <= tensor.fmt.hi
    out = g.outputs[0].name
    assert ih.cosine_similarity(flt[out], ref[out]) > 0.95
    assert np.count_nonzero(ref[out]) > 0


@pytest.mark.parametrize("name", ih.MODELS)
def test_tiny_tasks_are_a_few_hundred_macs(name):
    g = ih.model_graph(name, "tiny")
    assert 0 < max(op.macs for op in g.ops) <= 600


@pytest.mark.parametrize("name", ih.MODELS)
def test_int16_variants(name):
    g = ih.model_graph(name, "tiny", fmt="int16")
    assert g.inputs[0].fmt == ih.INT16
    ref = ih.reference(g, g.random_inputs(1), g.random_parameters(0))
    assert ref[g.outputs[0].name].dtype == np.int16


def test_paper_mlp():
    g = ih.model_graph("mlp", "paper")
    assert g.inputs[0].shape == (1, 256)
    assert shapes(g) == {"fc1": (1, 1024), "relu1": (1, 1024), "fc2": (1, 2048),
                         "relu2": (1, 2048), "fc3": (1, 256), "relu3": (1, 256)}
    assert g.op("fc2").params["weight"].shape == (2048, 1024)


def test_paper_self_attention():
    g = ih.model_graph("self_attention", "paper")
    assert g.inputs[0].shape == (256, 1024)
    assert shapes(g) == {"q_proj": (256, 1024), "k_proj": (256, 1024), "v_proj": (256, 1024),
                         "scores": (256, 256), "softmax": (256, 256), "attn": (256, 1024)}
    assert g.op("scores").transpose_b and g.op("scores").gemm == (1, 256, 1024, 256)
    assert g.op("q_proj").params["weight"].shape == (1024, 1024)


def test_paper_cnn():
    g = ih.model_graph("cnn4l", "paper")
    assert g.inputs[0].shape == (1, 1, 224, 224)
    sides = {name: shape[2:] for name, shape in shapes(g).items()}
    assert sides == {"conv1": (224, 224), "relu1": (224, 224), "up1": (448, 448),
                     "conv2": (448, 448), "relu2": (448, 448), "up2": (896, 896),
                     "conv3": (896, 896), "pool": (448, 448), "relu3": (448, 448),
                     "conv4": (448, 448)}
    for conv in ("conv1", "conv2", "conv3", "conv4"):
        op = g.op(conv)
        assert op.kernel_size == (3, 3) and op.padding == (1, 1)
        assert op.in_channels == op.out_channels == 1


def test_paper_vae():
    g = ih.model_graph("vae", "paper")
    assert [t.shape for t in g.inputs] == [(1, 2, 28, 28), (1, 2, 18, 18)]
    assert shapes(g) == {"enc1": (1, 2, 21, 21), "enc1_relu": (1, 2, 21, 21),
                         "enc2": (1, 2, 18, 18), "enc2_relu": (1, 2, 18, 18),
                         "noise": (1, 2, 18, 18), "z": (1, 2, 18, 18),
                         "dec1": (1, 2, 25, 25), "dec1_relu": (1, 2, 25, 25),
                         "dec2": (1, 2, 28, 28), "dec2_relu": (1, 2, 28, 28)}
    assert g.op("enc1").kernel_size == (8, 8) and g.op("enc2").kernel_size == (4, 4)
    assert g.op("dec1").params["weight"].shape == (2, 2, 8, 8)
    assert g.op("dec2").params["weight"].shape == (2, 2, 4, 4)


def test_paper_gating_net():
    g = ih.model_graph("gating_net", "paper")
    assert g.inputs[0].shape == (32, 4096)
    assert shapes(g) == {"up_proj": (32, 11008), "gate_proj": (32, 11008), "silu": (32, 11008),
                         "gating": (32, 11008), "down_proj": (32, 4096)}
    assert g.op("down_proj").params["weight"].shape == (4096, 11008)


def test_paper_gpt2_medium():
    g = ih.model_graph("gpt2_medium", "paper")
    assert g.inputs[0].shape == (64, 1024) and g.inputs[0].fmt == ih.INT8
    s = shapes(g)
    assert s["scores"] == s["softmax"] == (16, 64, 64)
    assert s["attn"] == s["residual1"] == s["residual2"] == (64, 1024)
    assert s["fc1"] == s["gelu"] == (64, 4096)
    assert g.op("scores").gemm == (16, 64, 64, 64) and g.op("softmax").causal
    assert g.op("attn").merge_heads and g.op("gelu").approximate == "tanh"
    for name in ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"):
        op = g.op(name)
        assert op.weight_fmt == ih.INT4 and op.shift == 8 and op.output.fmt == ih.INT8
    assert ih.model_graph("gpt2_medium", "paper", prompt=1024).inputs[0].shape == (1024, 1024)


# --- lookup ---------------------------------------------------------------------------------------

def test_load_by_name_and_path(tmp_path):
    assert ih.load("mlp").graph is not None
    path = tmp_path / "my_model.py"
    path.write_text(
        "import intar_hw as ih\n"
        "def graph(scale):\n"
        "    g = ih.Graph('mine_' + scale)\n"
        "    g.output(g.relu(g.input('x', (2, 2))))\n"
        "    return g\n")
    assert ih.model_graph(str(path), "small").name == "mine_small"
    assert ih.model_graph(path, "tiny").name == "mine_tiny"
    assert ih.load(str(path)).__file__ == str(path)


LOOKUP_ERRORS = [
    (lambda p: ih.load("resnet"), ValueError,
     "Unknown model 'resnet'; expected one of mlp, self_attention, cnn4l, vae, gating_net, "
     "gpt2_medium, or a path to a .py file defining graph(scale)"),
    (lambda p: ih.load(3), TypeError,
     "Model must be a model name or a path to a .py file, not 3"),
    (lambda p: ih.load(str(p / "missing.py")), ValueError,
     "Model file {missing!r} does not exist"),
    (lambda p: ih.load(str(p / "empty.py")), ValueError,
     "Model {empty!r} does not define graph(scale)"),
    (lambda p: ih.model_graph("mlp", "huge"), ValueError,
     "Scale must be one of tiny, small, paper, not 'huge'"),
    (lambda p: ih.model_graph("mlp", None), TypeError, "Scale must be a string, not None"),
    (lambda p: ih.model_graph(str(p / "wrong.py"), "tiny"), TypeError,
     "Model {wrong!r} graph('tiny') must return a Graph, not 42"),
]


@pytest.mark.parametrize("call, error, message", LOOKUP_ERRORS)
def test_lookup_errors(tmp_path, call, error, message):
    (tmp_path / "empty.py").write_text("x = 1\n")
    (tmp_path / "wrong.py").write_text("def graph(scale):\n    return 42\n")
    message = message.format(missing=str(tmp_path / "missing.py"),
                             empty=str(tmp_path / "empty.py"), wrong=str(tmp_path / "wrong.py"))
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call(tmp_path)


def test_models_check_their_scale():
    with pytest.raises(ValueError, match=r"^Scale must be one of tiny, small, paper, "
                                         r"not 'medium'$"):
        ih.load("vae").graph("medium")


def test_matmul_shift():
    assert models.matmul_shift(1024, ih.INT8) == 10  # sqrt(1024) * 127 / 4 ~ 2**10
    assert models.matmul_shift(64, ih.INT8) == 8
    assert models.matmul_shift(1024, ih.INT16) == 18
