import json
import re

import numpy as np
import pytest

import intar_hw as ih
from intar_hw.graph import OpKind, Linear


def mlp3():
    g = ih.Graph("mlp3")
    x = g.input("x", shape=(1, 256))
    h1 = g.relu(g.linear(x, 1024, shift=8, name="fc1"))
    h2 = g.relu(g.linear(h1, 2048, shift=8, name="fc2"))
    y = g.linear(h2, 256, shift=8, name="fc3")
    g.output(y)
    return g


def test_issue_example_runs():
    g = mlp3()
    params = g.random_parameters(seed=0)
    inputs = g.random_inputs(seed=1)
    assert set(params) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight",
                           "fc3.bias"}
    assert params["fc1.weight"].shape == (1024, 256) and params["fc1.weight"].dtype == np.int8
    assert params["fc1.bias"].shape == (1024,) and params["fc1.bias"].dtype == np.int32
    assert inputs["x"].shape == (1, 256) and inputs["x"].dtype == np.int8
    ref = ih.reference(g, inputs, params)
    flt = ih.reference_float(g, inputs, params)
    assert set(ref) == set(flt) == {"x", "fc1", "relu1", "fc2", "relu2", "fc3"}
    assert ref["fc3"].shape == (1, 256) and ref["fc3"].dtype == np.int8
    assert flt["fc3"].dtype == np.float64
    assert ih.sqnr_db(flt["fc3"], ref["fc3"]) > 30


def test_graph_structure():
    g = mlp3()
    assert [op.name for op in g.ops] == ["fc1", "relu1", "fc2", "relu2", "fc3"]
    assert [op.kind for op in g.ops] == ["linear", "relu", "linear", "relu", "linear"]
    assert g.ops[0].kind is OpKind.LINEAR and str(OpKind.LINEAR) == "linear"
    assert [t.name for t in g.inputs] == ["x"] and [t.name for t in g.outputs] == ["fc3"]
    assert list(g.tensors) == ["x", "fc1", "relu1", "fc2", "relu2", "fc3"]
    x, fc1 = g.tensors["x"], g.op("fc1")
    assert x.producer is None and x.fmt == ih.INT8 and x.shape == (1, 256)
    assert fc1.output is g.tensors["fc1"] and fc1.output.producer is fc1
    assert fc1.inputs == (x,)
    assert g.consumers(x) == (fc1,) and g.consumers("fc1") == (g.op("relu1"),)
    assert g.consumers("fc3") == ()
    assert isinstance(fc1, Linear) and fc1.in_features == 256 and fc1.out_features == 1024
    assert fc1.shift == 8 and fc1.reduction == 256 and fc1.gemm == (1, 1, 256, 1024)
    assert fc1.acc_fmt.bits == 33  # 256 * 2^14 plus an int32 bias
    assert {k: (p.name, p.shape, p.fmt.name) for k, p in fc1.params.items()} == {
        "weight": ("fc1.weight", (1024, 256), "int8"), "bias": ("fc1.bias", (1024,), "int32")}
    assert list(g.params) == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "fc3.weight",
                              "fc3.bias"]
    assert fc1.macs == 256 * 1024 and fc1.output_bytes == 1024 and fc1.input_bytes == 256
    assert fc1.param_bytes == 1024 * 256 + 4 * 1024
    assert g.macs == 256 * 1024 + 1024 * 2048 + 2048 * 256
    assert g.op("relu1").macs == 0 and g.op("relu1").acc_fmt is None


def test_auto_names_skip_taken_ones():
    g = ih.Graph("g")
    x = g.input("relu1", (2, 2))
    assert g.relu(x).name == "relu2"
    assert g.relu(x).name == "relu3"
    assert g.relu(x, name="mine").name == "mine"
    assert g.gelu(x).name == "gelu1"


def test_int4_packs_two_per_byte():
    g = ih.Graph("g")
    x = g.input("x", (3, 5), fmt="int4")
    y = g.linear(x, 7, weight_format="int4", bias=False, name="fc")
    assert x.nbytes == 8 and y.nbytes == 11  # ceil(15 / 2), ceil(21 / 2)
    assert g.op("fc").param_bytes == 18  # ceil(35 / 2)
    assert g.op("fc").params["weight"].fmt == ih.INT4


def test_matmul_shapes():
    g = ih.Graph("g")
    q = g.input("q", (6, 32))
    k = g.input("k", (6, 32))
    v = g.input("v", (6, 32))
    s = g.matmul(q, k, transpose_b=True, name="s")
    assert s.shape == (6, 6) and g.op("s").gemm == (1, 6, 32, 6)
    sh = g.matmul(q, k, transpose_b=True, heads=4, name="sh")
    assert sh.shape == (4, 6, 6) and g.op("sh").gemm == (4, 6, 8, 6)
    assert g.op("sh").macs == 4 * 6 * 8 * 6
    o = g.matmul(sh, v, merge_heads=True, name="o")
    assert o.shape == (6, 32) and g.op("o").heads == 4 and g.op("o").gemm == (4, 6, 6, 8)
    o3 = g.matmul(sh, v, name="o3")
    assert o3.shape == (4, 6, 8)
    w = g.input("w", (32, 5))
    assert g.matmul(q, w, name="qw").shape == (6, 5)
    assert g.op("qw").acc_fmt.bits == 21  # 32 * 2^14 < 2^20


def test_conv_shapes_and_macs():
    g = ih.Graph("g")
    x = g.input("x", (2, 3, 17, 20))
    c = g.conv2d(x, 5, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 3), name="c")
    # H: (17 + 2 - 2 - 1) // 2 + 1 = 9; W: (20 - 3 - 1) // 1 + 1 = 17
    assert c.shape == (2, 5, 9, 17)
    op = g.op("c")
    assert op.params["weight"].shape == (5, 3, 3, 2) and op.params["bias"].shape == (5,)
    assert op.macs == 2 * 5 * 9 * 17 * 3 * 3 * 2 and op.reduction == 18
    assert op.stride == (2, 1) and op.padding == (1, 0) and op.dilation == (1, 3)
    t = g.conv_transpose2d(x, 4, 3, stride=2, padding=1, output_padding=1, name="t")
    # (17 - 1) * 2 - 2 + 2 + 1 + 1 = 34; (20 - 1) * 2 - 2 + 2 + 1 + 1 = 40
    assert t.shape == (2, 4, 34, 40)
    assert g.op("t").params["weight"].shape == (3, 4, 3, 3)
    assert g.op("t").macs == 2 * 3 * 17 * 20 * 4 * 9 and g.op("t").output_padding == (1, 1)
    p = g.maxpool(x, 3, stride=2, padding=1, name="p")
    assert p.shape == (2, 3, 9, 10)
    assert g.maxpool(x, 2, name="p2").shape == (2, 3, 8, 10)
    u = g.upsample(x, (2, 3), name="u")
    assert u.shape == (2, 3, 34, 60) and g.op("u").output_bytes == 2 * 3 * 34 * 60


def test_elementwise_and_nonlinear_attributes():
    g = ih.Graph("g")
    a = g.input("a", (4, 16))
    b = g.input("b", (4, 16), fmt="int16")
    assert g.gelu(a, name="g1").fmt == ih.INT8 and g.op("g1").frac == 4
    assert g.op("g1").approximate == "none"
    assert g.silu(b, frac=10, name="s1").fmt == ih.INT16 and g.op("s1").frac == 10
    sm = g.softmax(b, causal=True, name="sm")
    assert sm.fmt == ih.INT16 and g.op("sm").out_frac == 15 and g.op("sm").frac == 12
    ln = g.layernorm(a, name="ln")
    op = g.op("ln")
    assert ln.shape == (4, 16) and (op.frac, op.out_frac, op.weight_frac) == (4, 4, 6)
    assert op.params["weight"].shape == (16,) and op.params["weight"].frac == 6
    assert op.params["bias"].fmt == ih.INT32 and op.params["bias"].frac == 18
    assert g.add(a, ln, out_format="int16", name="r").fmt == ih.INT16
    assert g.mul(a, a, shift=3, name="m").fmt == ih.INT8 and g.op("m").shift == 3
    assert g.requant(b, 8, out_format="int8", name="q").fmt == ih.INT8
    assert all(op.macs == 0 for op in g.ops)


def test_live_bytes_and_table():
    g = ih.Graph("g")
    x = g.input("x", (1, 100))
    a = g.relu(x, name="a")            # x (100) + a (100)
    b = g.relu(a, name="b")            # x, a, b: x is read again by c
    c = g.add(x, b, name="c")          # x, b, c
    g.output(c)
    assert g.live_bytes() == [200, 300, 300]
    rows = g.table()
    assert [r["op"] for r in rows] == ["a", "b", "c"]
    assert rows[2] == {"op": "c", "kind": "add", "inputs": [[1, 100], [1, 100]],
                       "output": [1, 100], "format": "int8", "macs": 0, "input_bytes": 200,
                       "output_bytes": 100, "param_bytes": 0, "live_bytes": 300}


def test_random_data_is_deterministic_and_in_range():
    g = ih.Graph("g")
    x = g.input("x", (3, 40), fmt="int16")
    g.output(g.layernorm(g.linear(x, 8, weight_format="int4", shift=3, name="fc"), name="ln"))
    p0, p1 = g.random_parameters(seed=5), g.random_parameters(seed=5)
    for name, param in g.params.items():
        np.testing.assert_array_equal(p0[name], p1[name])
        assert p0[name].shape == param.shape
        assert param.fmt.lo <= p0[name].min() and p0[name].max() <= param.fmt.hi
    assert p0["fc.weight"].dtype == np.int8 and p0["ln.weight"].min() >= 32
    i0 = g.random_inputs(seed=2)
    np.testing.assert_array_equal(i0["x"], g.random_inputs(seed=2)["x"])
    assert i0["x"].dtype == np.int16
    assert not np.array_equal(i0["x"], g.random_inputs(seed=3)["x"])


def test_dict_round_trip_and_any_order():
    g = ih.model_graph("gpt2_medium", "tiny")
    data = g.to_dict()
    json.dumps(data)
    again = ih.Graph.from_dict(json.loads(json.dumps(data)))
    assert again.to_dict() == data
    shuffled = ih.Graph.from_dict(dict(data, ops=list(reversed(data["ops"])))).to_dict()
    by_name = lambda ops: sorted(ops, key=lambda op: op["name"])  # noqa: E731
    assert by_name(shuffled["ops"]) == by_name(data["ops"])
    order = [op["name"] for op in shuffled["ops"]]
    for op in shuffled["ops"]:  # topological: every operand exists before its reader
        assert all(name == "x" or order.index(name) < order.index(op["name"])
                   for name in op["inputs"])


def test_from_dict_errors():
    data = {"name": "g", "inputs": [{"name": "x", "shape": [2, 2]}],
            "ops": [{"kind": "relu", "name": "a", "inputs": ["b"]},
                    {"kind": "relu", "name": "b", "inputs": ["a"]}], "outputs": ["b"]}
    with pytest.raises(ValueError, match=r"^Graph 'g' has a cycle through ops 'a', 'b'$"):
        ih.Graph.from_dict(data)
    data["ops"][0]["inputs"] = ["nope"]
    with pytest.raises(ValueError, match=r"^Op 'a' input 'nope' is not an input or an op of "
                                         r"graph 'g'$"):
        ih.Graph.from_dict(data)
    data["ops"][0]["kind"] = "conv3d"
    with pytest.raises(ValueError, match=r"^Op 'a' kind must be one of linear, matmul, conv2d, "
                                         r"conv_transpose2d, relu, gelu, silu, softmax, "
                                         r"layernorm, add, mul, upsample, maxpool, requant, "
                                         r"not 'conv3d'$"):
        ih.Graph.from_dict(data)
    with pytest.raises(TypeError, match=r"^Graph description must be a dict, not \[\]$"):
        ih.Graph.from_dict([])


# --- construction errors --------------------------------------------------------------------------

def error_graph():
    g = ih.Graph("g")
    g.input("x", (1, 2, 3))
    g.input("v", (4, 8))
    g.input("w", (4, 6))
    g.input("img", (1, 2, 8, 8))
    g.input("i4", (4, 8), fmt="int4")
    return g


ERRORS = [
    # (builder call, exception, message)
    (lambda g: g.linear("x", 4, name="fc1"), ValueError,
     "Linear 'fc1' input must have 2 dimensions, not (1, 2, 3)"),
    (lambda g: g.linear("v", 0, name="fc1"), ValueError,
     "Linear 'fc1' output features must be a positive integer, not 0"),
    (lambda g: g.linear("v", 4.0, name="fc1"), TypeError,
     "Linear 'fc1' output features must be an integer, not 4.0"),
    (lambda g: g.linear("v", 4, shift=-1, name="fc1"), ValueError,
     "Linear 'fc1' shift must be between 0 and 62, not -1"),
    (lambda g: g.linear("v", 4, shift=True, name="fc1"), TypeError,
     "Linear 'fc1' shift must be an integer, not True"),
    (lambda g: g.linear("v", 4, weight_format="int32", name="fc1"), ValueError,
     "Linear 'fc1' weight format must be one of int4, int8, int16, not 'int32'"),
    (lambda g: g.linear("v", 4, weight_format="float", name="fc1"), ValueError,
     "Linear 'fc1' weight format must be one of int4, int8, int16, not 'float'"),
    (lambda g: g.linear("v", 4, out_format=8.5, name="fc1"), TypeError,
     "Linear 'fc1' output format must be a Format or a name like 'int8', not 8.5"),
    (lambda g: g.linear("v", 4, bias=1, name="fc1"), TypeError,
     "Linear 'fc1' bias must be a bool, not 1"),
    (lambda g: g.linear("nope", 4, name="fc1"), ValueError,
     "Linear 'fc1' input 'nope' is not a tensor of graph 'g'"),
    (lambda g: g.linear(3, 4, name="fc1"), TypeError,
     "Linear 'fc1' input must be a Tensor or a tensor name, not 3"),
    (lambda g: g.linear(ih.Graph("other").input("z", (1, 2)), 4, name="fc1"), ValueError,
     "Linear 'fc1' input 'z' belongs to graph 'other', not 'g'"),
    (lambda g: g.linear("v", 4, name="v"), ValueError,
     "Graph 'g' already has a tensor named 'v'"),
    (lambda g: g.linear("v", 4, name="1fc"), ValueError,
     "Linear name must be an identifier (dots allowed), not '1fc'"),
    (lambda g: g.linear("v", 4, name=5), TypeError,
     "Linear name must be a string, not 5"),
    (lambda g: g.matmul("v", "w", name="mm"), ValueError,
     "Matmul 'mm' reduction lengths differ: 8 from first input (4, 8) and 4 from second input "
     "(4, 6) (heads 1, transpose_b False)"),
    (lambda g: g.matmul("v", "w", heads=3, transpose_b=True, name="mm"), ValueError,
     "Matmul 'mm' first input columns must split into 3 heads, not 8 (shape (4, 8))"),
    (lambda g: g.matmul("v", "x", heads=4, name="mm"), ValueError,
     "Matmul 'mm' second input (1, 2, 3) must have 4 heads in its first dimension, not 1"),
    (lambda g: g.matmul("v", "x", name="mm"), ValueError,
     "Matmul 'mm' reduction lengths differ: 8 from first input (4, 8) and 2 from second input "
     "(1, 2, 3) (heads 1, transpose_b False)"),
    (lambda g: g.matmul("v", "img", name="mm"), ValueError,
     "Matmul 'mm' second input must have 2 or 3 dimensions, not (1, 2, 8, 8)"),
    (lambda g: g.matmul("v", "v", heads=0, name="mm"), ValueError,
     "Matmul 'mm' heads must be a positive integer, not 0"),
    (lambda g: g.conv2d("v", 2, 3, name="c"), ValueError,
     "Conv2d 'c' input must have 4 dimensions, not (4, 8)"),
    (lambda g: g.conv2d("img", 2, 3, stride=0, name="c"), ValueError,
     "Conv2d 'c' stride must be positive, not 0"),
    (lambda g: g.conv2d("img", 2, 3, stride=(1, 2, 3), name="c"), TypeError,
     "Conv2d 'c' stride must be an integer or a pair of integers, not (1, 2, 3)"),
    (lambda g: g.conv2d("img", 2, 3, padding=-1, name="c"), ValueError,
     "Conv2d 'c' padding must be non-negative, not -1"),
    (lambda g: g.conv2d("img", 2, 5, dilation=2, name="c"), ValueError,
     "Conv2d 'c' kernel (5, 5) with dilation (2, 2) does not fit input (1, 2, 8, 8) with "
     "padding (0, 0)"),
    (lambda g: g.conv_transpose2d("img", 2, 3, stride=2, output_padding=2, name="t"),
     ValueError, "ConvTranspose2d 't' output padding (2, 2) must be smaller than stride (2, 2) "
     "or dilation (1, 1)"),
    (lambda g: g.conv_transpose2d("img", 2, 1, padding=4, name="t"), ValueError,
     "ConvTranspose2d 't' padding (4, 4) leaves no output for input (1, 2, 8, 8) and kernel "
     "(1, 1)"),
    (lambda g: g.maxpool("img", 2, padding=2, name="p"), ValueError,
     "MaxPool 'p' padding (2, 2) must be at most half the kernel size (2, 2)"),
    (lambda g: g.maxpool("img", 9, name="p"), ValueError,
     "MaxPool 'p' kernel size (9, 9) does not fit input (1, 2, 8, 8) with padding (0, 0)"),
    (lambda g: g.upsample("img", 0, name="u"), ValueError,
     "Upsample 'u' factor must be positive, not 0"),
    (lambda g: g.upsample("v", 2, name="u"), ValueError,
     "Upsample 'u' input must have 4 dimensions, not (4, 8)"),
    (lambda g: g.add("v", "w", name="r"), ValueError,
     "Add 'r' input shapes differ: (4, 8) and (4, 6)"),
    (lambda g: g.mul("v", "w", name="m"), ValueError,
     "Mul 'm' input shapes differ: (4, 8) and (4, 6)"),
    (lambda g: g.gelu("i4", name="ge"), ValueError,
     "GELU 'ge' input must be int8 or int16, not 'int4'"),
    (lambda g: g.gelu("v", frac=8, name="ge"), ValueError,
     "GELU 'ge' frac must be between 0 and 7, not 8"),
    (lambda g: g.gelu("v", approximate="sigmoid", name="ge"), ValueError,
     "GELU 'ge' approximation must be 'none' or 'tanh', not 'sigmoid'"),
    (lambda g: g.silu("v", frac=-1, name="si"), ValueError,
     "SiLU 'si' frac must be between 0 and 7, not -1"),
    (lambda g: g.softmax("v", causal="yes", name="sm"), TypeError,
     "Softmax 'sm' causal must be a bool, not 'yes'"),
    (lambda g: g.softmax(g.input("row", (8,)), causal=True, name="sm"), ValueError,
     "Softmax 'sm' causal input must have at least 2 dimensions, not (8,)"),
    (lambda g: g.layernorm("v", eps=-1.0, name="ln"), ValueError,
     "LayerNorm 'ln' eps must be between 0 and 1, not -1.0"),
    (lambda g: g.layernorm("v", eps="small", name="ln"), TypeError,
     "LayerNorm 'ln' eps must be a number, not 'small'"),
    (lambda g: g.layernorm("v", out_frac=9, name="ln"), ValueError,
     "LayerNorm 'ln' output frac must be between 0 and 7, not 9"),
    (lambda g: g.layernorm(g.input("wide", (1, 70000), fmt="int16"), name="ln"), ValueError,
     "LayerNorm 'ln' normalised length must be at most 65536 for int16, not 70000"),
    (lambda g: g.requant("v", 63, name="q"), ValueError,
     "Requant 'q' shift must be between 0 and 62, not 63"),
    (lambda g: g.input("y", (2, 0)), ValueError,
     "Input 'y' shape must be non-empty with positive sizes, not (2, 0)"),
    (lambda g: g.input("y", "2x2"), TypeError,
     "Input 'y' shape must be a tuple of integers, not '2x2'"),
    (lambda g: g.input("y", (2,), fmt="int32"), ValueError,
     "Input 'y' format must be one of int4, int8, int16, not 'int32'"),
    (lambda g: g.input("y", (2,), fmt="float16"), ValueError,
     "Input 'y' format must be one of int4, int8, int16, not 'float16'"),
    (lambda g: g.input("y", (2,), fmt=None), TypeError,
     "Input 'y' format must be a Format or a name like 'int8', not None"),
    (lambda g: g.input("x", (2,)), ValueError,
     "Graph 'g' already has a tensor named 'x'"),
    (lambda g: g.output("nope"), ValueError, "Graph 'g' has no tensor 'nope'"),
    (lambda g: g.output(None), TypeError,
     "Output tensor must be a Tensor or a tensor name, not None"),
    (lambda g: g.consumers(ih.Graph("h").input("q", (1,))), ValueError,
     "Consumers tensor 'q' belongs to graph 'h', not 'g'"),
    (lambda g: g.op("x"), ValueError, "Graph 'g' tensor 'x' is an input, not an op"),
    (lambda g: ih.Graph(3), TypeError, "Graph name must be a string, not 3"),
    (lambda g: ih.Graph(""), ValueError, "Graph name must not be empty, not ''"),
]


@pytest.mark.parametrize("build, error, message", ERRORS,
                         ids=[f"{i}-{e[2][:40]}" for i, e in enumerate(ERRORS)])
def test_construction_errors(build, error, message):
    g = error_graph()
    ops_before = len(g.ops)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        build(g)
    assert len(g.ops) == ops_before  # a failed op is never added
    assert all(name in g.tensors for name in ("x", "v", "w", "img", "i4"))


def test_from_dict_input_without_a_shape():
    with pytest.raises(ValueError, match=r"^Graph 'g' input \{'name': 'x'\} must be a dict with a "
                                         r"name and a shape$"):
        ih.Graph.from_dict({"name": "g", "inputs": [{"name": "x"}]})


MALFORMED = [
    ({"ops": {"a": 1}}, r"^Graph 'g' ops must be a list, not \{'a': 1\}$"),
    ({"outputs": "y"}, r"^Graph 'g' outputs must be a list, not 'y'$"),
    ({"ops": [{"kind": "relu", "inputs": ["x"]}]},
     r"^Graph 'g' op \{'kind': 'relu', 'inputs': \['x'\]\} must be a dict with a name, a kind "
     r"and inputs$"),
    ({"ops": ["relu"]}, r"^Graph 'g' op 'relu' must be a dict with a name, a kind and inputs$"),
    ({"ops": [{"kind": "relu", "name": "r", "inputs": "x"}]},
     r"^Op 'r' inputs must be a list of tensor names, not 'x'$"),
    ({"ops": [{"kind": "relu", "name": "r", "inputs": ["x"], "slope": 2}]},
     r"^Op 'r' \(relu\) attributes \['slope'\] do not fit: .*'slope'$"),
    ({"ops": [{"kind": "relu", "name": "r", "inputs": ["x"]}], "outputs": ["x"]},
     r"^Graph 'g' output 'x' is a graph input; an output must be computed by an op$"),
]


@pytest.mark.parametrize("change, message", MALFORMED)
def test_from_dict_names_what_is_malformed(change, message):
    data = {"name": "g", "inputs": [{"name": "x", "shape": [2, 2]}], "ops": [], "outputs": [],
            **change}
    with pytest.raises(ValueError, match=message):
        ih.Graph.from_dict(data)


def test_a_graph_input_is_not_an_output():
    g = ih.Graph("g")
    x = g.input("x", (2, 2))
    with pytest.raises(ValueError, match=r"^Graph 'g' output 'x' is a graph input; an output "
                                         r"must be computed by an op$"):
        g.output(x)
    assert g.outputs == ()
    g.output(g.relu(x, name="r"))
    with pytest.raises(ValueError, match=r"^Graph 'g' tensor 'r' is already an output$"):
        g.output("r")


def test_checked_data_names_the_unknown_tensor():
    g = ih.Graph("g")
    g.output(g.relu(g.input("x", (2, 2))))
    with pytest.raises(ValueError, match=r"^Unknown input 'z'; expected one of 'x'$"):
        g.checked_inputs({"x": np.zeros((2, 2), np.int8), "z": np.zeros(1, np.int8)})
    with pytest.raises(ValueError, match=r"^Unknown parameter 'w'; expected one of none$"):
        g.checked_parameters({"w": np.zeros(1, np.int8)})
