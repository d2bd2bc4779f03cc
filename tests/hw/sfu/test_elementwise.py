# amaranth: UnusedElaboratable=no
import numpy as np
import pytest
from amaranth import Shape, Signal, signed, unsigned

from intar_hw import numerics
from intar_hw.hw.sfu.elementwise import (ACTIVATIONS, Activation, Add, Mul, MulAdd, Requantize,
                                        _clamp)
from intar_hw.hw.sfu.layouts import VectorLayout
from intar_hw.numerics import INT8, INT16, INT32, Format
from intar_hw.testbench import beats_per_cycle, evaluate, flow, get, put, run, seeded


# --- stream harness -------------------------------------------------------------------------------

def to_beats(values, fmt, lanes, lasts):
    """Beats of ``lanes`` elements of ``fmt`` from a flat array, with the given ``last`` bits."""
    values = np.asarray(values, dtype=np.int64)
    assert values.size == lanes * len(lasts)
    assert fmt.lo <= values.min() and values.max() <= fmt.hi
    rows = values.reshape(-1, lanes).tolist()
    return [{"data": row, "last": int(last)} for row, last in zip(rows, lasts)]


def from_beats(payloads, lanes):
    """The flat data and the ``last`` bits of received beats."""
    values = np.array([[payload.data[n] for n in range(lanes)] for payload in payloads],
                      dtype=np.int64).reshape(-1)
    return values, [payload.last for payload in payloads]


def stream_rtl(dut, inputs, *, seed, idle, backpressure):
    """Send ``inputs`` (port name to beats, all the same length) through ``dut``; return ``o``.

    Every input has its own random idles and the sink random backpressure. After the expected
    beats, ``o`` must stay invalid: no beat is duplicated.
    """
    count = len(next(iter(inputs.values())))
    received = []
    sources = []
    for k, (name, beats) in enumerate(inputs.items()):
        async def source(ctx, port=getattr(dut, name), beats=beats, rng=seeded(seed + 10 * k)):
            await put(ctx, port, beats, rng=rng, idle=idle)
        sources.append(source)

    async def sink(ctx):
        received.extend(await get(ctx, dut.o, count, rng=seeded(seed + 1),
                                  backpressure=backpressure))
        ctx.set(dut.o.ready, 1)
        for _ in range(dut.latency + 2):
            _, _, valid = await ctx.tick().sample(dut.o.valid)
            assert not valid

    run(dut, *sources, sink, deadline=20 * count + 100, vcd=f"{type(dut).__name__}.vcd")
    return received


def joined_flow(dut, inputs):
    """``flow`` for units with several inputs: each offers a beat every cycle, ``o`` is ready.

    Returns the cycles at which a beat was taken on the first input and given on ``o``.
    """
    count = len(next(iter(inputs.values())))
    first = getattr(dut, next(iter(inputs)))
    taken, given = [], []

    def source(name, beats):
        async def drive(ctx):
            await put(ctx, getattr(dut, name), beats)
        return drive

    async def sink(ctx):
        await get(ctx, dut.o, count)

    async def monitor(ctx):
        cycle = 0
        async for _, _, i_valid, i_ready, o_valid, o_ready in ctx.tick().sample(
                first.valid, first.ready, dut.o.valid, dut.o.ready):
            if i_valid and i_ready:
                taken.append(cycle)
            if o_valid and o_ready:
                given.append(cycle)
            cycle += 1

    run(dut, *(source(name, beats) for name, beats in inputs.items()), sink,
        processes=[monitor], deadline=10 * count + 100)
    return taken, given


def random_lasts(rng, count):
    return rng.integers(0, 2, count).tolist()


def random_values(rng, fmt, size, extremes=()):
    """Random values of ``fmt``, then the extremes of the format and any ``extremes`` given."""
    values = rng.integers(fmt.lo, fmt.hi + 1, size, dtype=np.int64)
    return np.concatenate([values, [fmt.lo, fmt.hi, 0, -1, 1, *extremes]]).astype(np.int64)


def pad(values, lanes, fill=0):
    """Pad a flat array to a whole number of beats."""
    return np.concatenate([values, np.full(-len(values) % lanes, fill, dtype=np.int64)])


# --- Requantize -----------------------------------------------------------------------------------

def reference_requantize(acc, bias, shift, fmt, relu):
    total = acc if bias is None else acc + bias
    y = numerics.requantize(total.astype(np.int64), shift, fmt).astype(np.int64)
    return np.maximum(y, 0) if relu else y


def requantize_rtl(dut, acc, bias, lasts, *, seed, idle=0.3, backpressure=0.5):
    inputs = {"i": to_beats(acc, dut.in_format, dut.lanes, lasts)}
    if bias is not None:
        # The bias stream's own last bits are ignored: make them disagree with i's.
        inputs["bias"] = to_beats(bias, dut.bias_format, dut.lanes, [1 - x for x in lasts])
    received = stream_rtl(dut, inputs, seed=seed, idle=idle, backpressure=backpressure)
    return from_beats(received, dut.lanes)


def requantize_inputs(rng, in_fmt, bias_fmt, shift, lanes, count):
    """Accumulators over the full range, near the rounding points and near the clamp edges."""
    near = []
    if shift:
        steps = rng.integers(-300, 300, count)
        # k * 2**s + 2**(s-1) rounds up; one less rounds down.
        near = (steps << shift) + (1 << (shift - 1)) - rng.integers(0, 2, count)
    acc = np.concatenate([random_values(rng, in_fmt, count), near])
    acc = np.clip(pad(acc, lanes), in_fmt.lo, in_fmt.hi)
    if bias_fmt is None:
        return acc, None
    small = rng.integers(-(1 << (shift + 8)), 1 << (shift + 8), len(acc))
    wide = rng.integers(bias_fmt.lo, bias_fmt.hi + 1, len(acc))
    bias = np.where(rng.random(len(acc)) < 0.8, small, wide)
    bias[:4] = [bias_fmt.lo, bias_fmt.hi, bias_fmt.lo, bias_fmt.hi]
    return acc, np.clip(bias, bias_fmt.lo, bias_fmt.hi)


@pytest.mark.parametrize("in_bits,shift,out_bits,bias_bits,relu,lanes", [
    (20, 8, 8, None, False, 4),
    (20, 8, 8, None, True, 3),
    (20, 0, 8, None, False, 2),
    (20, 1, 8, 32, False, 4),
    (19, 7, 8, 32, True, 4),
    (34, 12, 16, 32, False, 2),
    (32, 40, 8, 32, False, 2),
    (16, 4, 4, 12, True, 1),
])
def test_requantize_random_with_stalls(in_bits, shift, out_bits, bias_bits, relu, lanes):
    seed = in_bits * 1000 + shift * 10 + out_bits + relu
    rng = np.random.default_rng(seed)
    in_fmt, out_fmt = Format(in_bits), Format(out_bits)
    bias_fmt = None if bias_bits is None else Format(bias_bits)
    dut = Requantize(lanes, in_format=in_fmt, shift=shift, out_format=out_fmt,
                     bias_format=bias_fmt, relu=relu)
    acc, bias = requantize_inputs(rng, in_fmt, bias_fmt, shift, lanes, 200)
    lasts = random_lasts(rng, len(acc) // lanes)
    values, last = requantize_rtl(dut, acc, bias, lasts, seed=seed)
    np.testing.assert_array_equal(values, reference_requantize(acc, bias, shift, out_fmt, relu))
    assert last == lasts


def test_requantize_rounds_half_up():
    # acc = k * 2**s + 2**(s-1) rounds up, also for negative k; one less rounds down.
    shift, lanes = 4, 4
    dut = Requantize(lanes, in_format="int16", shift=shift)
    acc = np.array([8, 7, -8, -9, 24, 23, -24, -25], dtype=np.int64)
    values, _ = requantize_rtl(dut, acc, None, [0, 1], seed=3)
    np.testing.assert_array_equal(values, [1, 0, 0, -1, 2, 1, -1, -2])
    np.testing.assert_array_equal(values, numerics.requantize(acc, shift, INT8))


def test_requantize_ports():
    dut = Requantize(4, in_format=20, shift=8)
    assert not hasattr(dut, "bias")
    assert dut.i.payload.shape() == VectorLayout(20, 4)
    assert dut.o.payload.shape() == VectorLayout(8, 4)
    dut = Requantize(2, in_format="int20", shift=8, out_format=INT16, bias_format="int32",
                     relu=True)
    assert dut.bias.payload.shape() == VectorLayout(32, 2)
    assert dut.o.payload.shape() == VectorLayout(16, 2)
    assert (dut.lanes, dut.in_format, dut.shift, dut.out_format, dut.bias_format, dut.relu) == \
        (2, Format(20), 8, INT16, INT32, True)
    with pytest.raises(AttributeError):
        dut.shift = 3


# --- Activation -----------------------------------------------------------------------------------

def reference_activation(function, x, fmt, frac, approximate):
    x = np.asarray(x, dtype=np.int64)
    if function == "relu":
        return np.maximum(x, 0)
    if function == "gelu":
        return numerics.gelu(x, fmt, frac, approximate).astype(np.int64)
    return numerics.silu(x, fmt, frac).astype(np.int64)


def activation_rtl(dut, x, lasts, *, seed, idle=0.3, backpressure=0.5):
    received = stream_rtl(dut, {"i": to_beats(x, dut.format, dut.lanes, lasts)}, seed=seed,
                          idle=idle, backpressure=backpressure)
    return from_beats(received, dut.lanes)


@pytest.mark.parametrize("function,frac,approximate", [
    ("relu", None, "none"),
    ("gelu", None, "none"),
    ("gelu", 0, "none"),
    ("gelu", 7, "none"),
    ("gelu", 4, "tanh"),
    ("silu", None, "none"),
    ("silu", 2, "none"),
])
def test_activation_int8_exhaustive_with_stalls(function, frac, approximate):
    seed = ACTIVATIONS.index(function) * 100 + (frac or 0) * 10 + (approximate == "tanh")
    rng = np.random.default_rng(seed)
    lanes = 4
    x = rng.permutation(np.arange(-128, 128, dtype=np.int64))  # all 256 inputs
    lasts = random_lasts(rng, 256 // lanes)
    dut = Activation(lanes, function, frac=frac, approximate=approximate)
    values, last = activation_rtl(dut, x, lasts, seed=seed)
    np.testing.assert_array_equal(
        values, reference_activation(function, x, INT8, dut.frac, approximate))
    assert last == lasts


@pytest.mark.parametrize("function,frac,approximate", [
    ("gelu", None, "none"),
    ("gelu", 8, "tanh"),
    ("silu", None, "none"),
    ("silu", 15, "none"),
])
def test_activation_int16_with_stalls(function, frac, approximate):
    seed = 16000 + ACTIVATIONS.index(function) * 100 + (frac or 0)
    rng = np.random.default_rng(seed)
    lanes = 8
    # Every breakpoint, its neighbours and the middle of each interval, then random inputs.
    top = np.arange(-128, 128, dtype=np.int64) << 8
    edges = np.concatenate([top, top + 1, top + 128, top + 255, top - 1])
    x = np.clip(np.concatenate([edges, random_values(rng, INT16, 400)]), INT16.lo, INT16.hi)
    x = pad(rng.permutation(x), lanes)
    lasts = random_lasts(rng, len(x) // lanes)
    dut = Activation(lanes, function, format="int16", frac=frac, approximate=approximate)
    values, last = activation_rtl(dut, x, lasts, seed=seed, idle=0.2, backpressure=0.3)
    np.testing.assert_array_equal(
        values, reference_activation(function, x, INT16, dut.frac, approximate))
    assert last == lasts


@pytest.mark.parametrize("function", ["gelu", "silu"])
def test_activation_int16_exhaustive(function):
    # All 65536 inputs at full rate (stalls are covered above); 16 lanes keep it to 4096 beats.
    lanes = 16
    x = np.arange(INT16.lo, INT16.hi + 1, dtype=np.int64)
    dut = Activation(lanes, function, format="int16")
    values, _ = activation_rtl(dut, x, [0] * (len(x) // lanes), seed=0, idle=0.0,
                               backpressure=0.0)
    np.testing.assert_array_equal(
        values, reference_activation(function, x, INT16, dut.frac, "none"))


@pytest.mark.parametrize("bits", [4, 16, 32])
def test_relu_any_width(bits):
    fmt = Format(bits)
    rng = np.random.default_rng(bits)
    x = pad(random_values(rng, fmt, 60), 3)
    lasts = random_lasts(rng, len(x) // 3)
    values, last = activation_rtl(Activation(3, "relu", format=fmt), x, lasts, seed=bits)
    np.testing.assert_array_equal(values, np.maximum(x, 0))
    assert last == lasts


def test_activation_table_from_numerics():
    dut = Activation(2, "gelu", format="int16", approximate="tanh")
    assert dut.frac == 12 == numerics.default_frac(INT16)
    assert dut.table == tuple(numerics.gelu_table(16, 12, "tanh").tolist())
    assert Activation(1, "silu", frac=3).table == tuple(numerics.silu_table(8, 3).tolist())
    relu = Activation(1, "relu", format=INT16)
    assert (relu.table, relu.frac, relu.function, relu.format) == (None, None, "relu", INT16)
    with pytest.raises(AttributeError):
        relu.format = INT8


# --- Add and Mul ----------------------------------------------------------------------------------

def reference_add(a, b, fmt):
    return numerics.requantize(a.astype(np.int64) + b, 0, fmt).astype(np.int64)


def reference_mul(a, b, shift, fmt):
    return numerics.requantize(a.astype(np.int64) * b, shift, fmt).astype(np.int64)


def binary_rtl(dut, a, b, lasts, *, seed, idle=0.3, backpressure=0.5):
    inputs = {"a": to_beats(a, dut.a_format, dut.lanes, lasts),
              "b": to_beats(b, dut.b_format, dut.lanes, [1 - x for x in lasts])}
    received = stream_rtl(dut, inputs, seed=seed, idle=idle, backpressure=backpressure)
    return from_beats(received, dut.lanes)


def binary_inputs(rng, a_fmt, b_fmt, lanes, count):
    a = random_values(rng, a_fmt, count, extremes=(a_fmt.lo, a_fmt.hi, a_fmt.lo, a_fmt.hi))
    b = random_values(rng, b_fmt, count, extremes=(b_fmt.hi, b_fmt.lo, b_fmt.lo, b_fmt.hi))
    return pad(a, lanes), pad(b, lanes)


@pytest.mark.parametrize("a_bits,b_bits,out_bits,lanes", [
    (8, 8, 8, 4),
    (8, 8, 16, 2),
    (16, 8, 8, 3),
    (4, 16, 4, 1),
])
def test_add_random_with_stalls(a_bits, b_bits, out_bits, lanes):
    seed = a_bits * 100 + b_bits * 10 + out_bits
    rng = np.random.default_rng(seed)
    a_fmt, b_fmt, out_fmt = Format(a_bits), Format(b_bits), Format(out_bits)
    dut = Add(lanes, a_format=a_fmt, b_format=b_fmt, out_format=out_fmt)
    a, b = binary_inputs(rng, a_fmt, b_fmt, lanes, 240)
    lasts = random_lasts(rng, len(a) // lanes)
    values, last = binary_rtl(dut, a, b, lasts, seed=seed)
    np.testing.assert_array_equal(values, reference_add(a, b, out_fmt))
    assert last == lasts


@pytest.mark.parametrize("a_bits,b_bits,shift,out_bits,lanes", [
    (8, 8, 7, 8, 4),
    (8, 8, 0, 8, 2),
    (8, 8, 4, 16, 2),
    (16, 8, 12, 16, 3),
    (16, 16, 30, 8, 1),
])
def test_mul_random_with_stalls(a_bits, b_bits, shift, out_bits, lanes):
    seed = a_bits * 1000 + b_bits * 100 + shift * 10 + out_bits
    rng = np.random.default_rng(seed)
    a_fmt, b_fmt, out_fmt = Format(a_bits), Format(b_bits), Format(out_bits)
    dut = Mul(lanes, a_format=a_fmt, b_format=b_fmt, shift=shift, out_format=out_fmt)
    a, b = binary_inputs(rng, a_fmt, b_fmt, lanes, 240)
    lasts = random_lasts(rng, len(a) // lanes)
    values, last = binary_rtl(dut, a, b, lasts, seed=seed)
    np.testing.assert_array_equal(values, reference_mul(a, b, shift, out_fmt))
    assert last == lasts


@pytest.mark.parametrize("a_bits,b_bits,shift,product_bits,out_bits,lanes", [
    (8, 8, 7, 8, 8, 2),
    (8, 8, 0, 8, 8, 1),
    (8, 8, 3, 16, 16, 3),
    (16, 8, 10, 8, 16, 2),
    (8, 16, 12, 4, 8, 1),
])
def test_mul_add_random_with_stalls(a_bits, b_bits, shift, product_bits, out_bits, lanes):
    # The graph's mul, then its add of the first factor: two requantisations, bit for bit.
    seed = a_bits * 1000 + b_bits * 100 + shift * 10 + product_bits + out_bits
    rng = np.random.default_rng(seed)
    a_fmt, b_fmt = Format(a_bits), Format(b_bits)
    product_fmt, out_fmt = Format(product_bits), Format(out_bits)
    dut = MulAdd(lanes, a_format=a_fmt, b_format=b_fmt, shift=shift,
                 product_format=product_fmt, out_format=out_fmt)
    a, b = binary_inputs(rng, a_fmt, b_fmt, lanes, 240)
    lasts = random_lasts(rng, len(a) // lanes)
    values, last = binary_rtl(dut, a, b, lasts, seed=seed)
    expected = reference_add(a, reference_mul(a, b, shift, product_fmt), out_fmt)
    np.testing.assert_array_equal(values, expected)
    assert last == lasts


def test_binary_format_defaults():
    add = Add(2, a_format="int16")
    assert (add.a_format, add.b_format, add.out_format, add.lanes) == (INT16, INT16, INT16, 2)
    mul = Mul(3, b_format=INT16, shift=5)
    assert (mul.a_format, mul.b_format, mul.out_format, mul.shift) == (INT8, INT16, INT8, 5)
    assert mul.b.payload.shape() == VectorLayout(16, 3)
    with pytest.raises(AttributeError):
        mul.shift = 1


# --- pipeline behaviour, shared by every unit -----------------------------------------------------

UNITS = {
    "requantize": (lambda: Requantize(2, in_format="int20", shift=8), ("i",), 1),
    "requantize_bias": (lambda: Requantize(2, in_format=20, shift=8, bias_format=32,
                                           relu=True), ("i", "bias"), 2),
    "relu": (lambda: Activation(2, "relu"), ("i",), 1),
    "gelu_int8": (lambda: Activation(2, "gelu"), ("i",), 1),
    "silu_int16": (lambda: Activation(2, "silu", format="int16"), ("i",), 3),
    "add": (lambda: Add(2), ("a", "b"), 1),
    "mul": (lambda: Mul(2, shift=3), ("a", "b"), 3),
    "mul_add": (lambda: MulAdd(2, shift=3), ("a", "b"), 4),
}


def unit_beats(dut, ports, count, rng):
    """Random beats for every input port of ``dut``."""
    inputs = {}
    for name in ports:
        fmt = Format(getattr(dut, name).payload.shape().width)
        values = rng.integers(fmt.lo, fmt.hi + 1, count * dut.lanes)
        inputs[name] = to_beats(values, fmt, dut.lanes, random_lasts(rng, count))
    return inputs


@pytest.mark.parametrize("unit", UNITS)
def test_throughput_and_latency(unit):
    make, ports, latency = UNITS[unit]
    dut = make()
    assert dut.latency == latency
    inputs = unit_beats(dut, ports, 64, np.random.default_rng(1))
    if ports == ("i",):
        taken, given = flow(dut, inputs["i"], 64)
    else:
        taken, given = joined_flow(dut, inputs)
    assert len(taken) == len(given) == 64
    assert beats_per_cycle(taken) == beats_per_cycle(given) == 1.0
    assert given[0] - taken[0] == latency


@pytest.mark.parametrize("unit", UNITS)
def test_stalled_sink_holds_every_beat(unit):
    # With o stalled the unit fills its `latency` registers, then takes nothing more; releasing
    # o gives every beat once, in order.
    make, ports, latency = UNITS[unit]
    dut = make()
    inputs = unit_beats(dut, ports, 8, np.random.default_rng(2))
    first = getattr(dut, ports[0])
    reference = stream_rtl(make(), inputs, seed=2, idle=0.0, backpressure=0.0)

    def source(name):
        async def drive(ctx):
            await put(ctx, getattr(dut, name), inputs[name])
        return drive

    async def sink(ctx):
        ctx.set(dut.o.ready, 0)
        taken = 0
        for _ in range(10):
            _, _, valid, ready = await ctx.tick().sample(first.valid, first.ready)
            taken += valid and ready
        assert taken == latency
        assert ctx.get(dut.o.valid) and not ctx.get(first.ready)
        received = await get(ctx, dut.o, 8)
        assert [(list(p.data), p.last) for p in received] == \
            [(list(p.data), p.last) for p in reference]

    run(dut, *(source(name) for name in ports), sink, deadline=100)


# --- parameter errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("changes,error,message", [
    ({"lanes": 2.0}, TypeError, r"^Requantize lanes must be an integer, not 2\.0$"),
    ({"lanes": 0}, ValueError, r"^Requantize lanes must be a positive integer, not 0$"),
    ({"in_format": 2.5}, TypeError,
     r"^Requantize in_format must be a Format, a name like 'int8' or a width, not 2\.5$"),
    ({"in_format": "int99"}, ValueError,
     r"^Requantize in_format must be a format of 2 to 64 bits, not 'int99'$"),
    ({"shift": "8"}, TypeError, r"^Requantize shift must be an integer, not '8'$"),
    ({"shift": 63}, ValueError, r"^Requantize shift must be between 0 and 62, not 63$"),
    ({"out_format": None}, TypeError,
     r"^Requantize out_format must be a Format, a name like 'int8' or a width, not None$"),
    ({"out_format": 1}, ValueError,
     r"^Requantize out_format must be a format of 2 to 64 bits, not 1$"),
    ({"bias_format": True}, TypeError,
     r"^Requantize bias_format must be a Format, a name like 'int8' or a width, not True$"),
    ({"bias_format": "uint32"}, ValueError,
     r"^Requantize bias_format must be a format of 2 to 64 bits, not 'uint32'$"),
    ({"relu": 1}, TypeError, r"^Requantize relu must be a bool, not 1$"),
])
def test_requantize_errors(changes, error, message):
    kwargs = dict({"lanes": 2, "in_format": "int20", "shift": 8}, **changes)
    with pytest.raises(error, match=message):
        Requantize(kwargs.pop("lanes"), **kwargs)


@pytest.mark.parametrize("changes,error,message", [
    ({"lanes": "4"}, TypeError, r"^Activation lanes must be an integer, not '4'$"),
    ({"lanes": -1}, ValueError, r"^Activation lanes must be a positive integer, not -1$"),
    ({"function": None}, TypeError, r"^Activation function must be a string, not None$"),
    ({"function": "tanh"}, ValueError,
     r"^Activation function must be 'relu', 'gelu' or 'silu', not 'tanh'$"),
    ({"format": [8]}, TypeError,
     r"^Activation format must be a Format, a name like 'int8' or a width, not \[8\]$"),
    ({"format": "int"}, ValueError,
     r"^Activation format must be a format of 2 to 64 bits, not 'int'$"),
    ({"format": "int4"}, ValueError,
     r"^Activation format of 'gelu' must be int8 or int16, not 'int4'$"),
    ({"frac": 4.0}, TypeError, r"^Activation frac must be an integer, not 4\.0$"),
    ({"frac": 8}, ValueError, r"^Activation frac must be between 0 and 7, not 8$"),
    ({"function": "relu", "frac": 4}, ValueError,
     r"^Activation frac must be None for 'relu', not 4$"),
    ({"approximate": False}, TypeError,
     r"^Activation approximate must be a string, not False$"),
    ({"approximate": "erf"}, ValueError,
     r"^Activation approximate must be 'none' or 'tanh', not 'erf'$"),
    ({"function": "silu", "approximate": "tanh"}, ValueError,
     r"^Activation approximate must be 'none' for 'silu', not 'tanh'$"),
])
def test_activation_errors(changes, error, message):
    kwargs = dict({"lanes": 2, "function": "gelu"}, **changes)
    with pytest.raises(error, match=message):
        Activation(kwargs.pop("lanes"), kwargs.pop("function"), **kwargs)


@pytest.mark.parametrize("cls", [Add, Mul, MulAdd])
@pytest.mark.parametrize("changes,error,message", [
    ({"lanes": None}, TypeError, r"^{} lanes must be an integer, not None$"),
    ({"lanes": 0}, ValueError, r"^{} lanes must be a positive integer, not 0$"),
    ({"a_format": 8.0}, TypeError,
     r"^{} a_format must be a Format, a name like 'int8' or a width, not 8\.0$"),
    ({"a_format": 65}, ValueError, r"^{} a_format must be a format of 2 to 64 bits, not 65$"),
    ({"b_format": b"int8"}, TypeError,
     r"^{} b_format must be a Format, a name like 'int8' or a width, not b'int8'$"),
    ({"b_format": "INT8"}, ValueError,
     r"^{} b_format must be a format of 2 to 64 bits, not 'INT8'$"),
    ({"out_format": False}, TypeError,
     r"^{} out_format must be a Format, a name like 'int8' or a width, not False$"),
    ({"out_format": "int1"}, ValueError,
     r"^{} out_format must be a format of 2 to 64 bits, not 'int1'$"),
])
def test_binary_errors(cls, changes, error, message):
    kwargs = dict({"lanes": 2}, **changes)
    with pytest.raises(error, match=message.format(cls.__name__)):
        cls(kwargs.pop("lanes"), **kwargs)


@pytest.mark.parametrize("shift,error,message", [
    (2.0, TypeError, r"^Mul shift must be an integer, not 2\.0$"),
    (-1, ValueError, r"^Mul shift must be between 0 and 62, not -1$"),
])
@pytest.mark.parametrize("cls", [Mul, MulAdd])
def test_mul_shift_errors(cls, shift, error, message):
    with pytest.raises(error, match=message.replace("Mul", cls.__name__)):
        cls(2, shift=shift)


def test_mul_add_formats():
    unit = MulAdd(2, a_format="int16", shift=4)
    assert (unit.product_format, unit.out_format) == (INT16, INT16)
    assert MulAdd(2, product_format=4).product_format == Format(4)
    with pytest.raises(ValueError, match=r"^MulAdd product_format must be a format of 2 to 64 "
                                         r"bits, not 1$"):
        MulAdd(2, product_format=1)


# --- saturation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("lo, hi", [(-8, 7), (0, 7), (-4, 3), (0, 1), (-1, 0), (0, 255),
                                    (-128, 127), (-5, 9)])
@pytest.mark.parametrize("shape", [signed(5), signed(7), unsigned(4)])
def test_clamp_limits_every_value_exactly(shape, lo, hi):
    # The bit tests (a format's range, with or without ReLU) and the comparison fallback (other
    # bounds) against numpy's clip, over every value of the input shape.
    value = Signal(shape)
    width = Shape.cast(shape).width
    values = (range(-(1 << (width - 1)), 1 << (width - 1)) if Shape.cast(shape).signed
              else range(1 << width))
    seen = evaluate(_clamp(value, lo, hi), value, values)
    assert seen == np.clip(np.array(list(values)), lo, hi).tolist()
