"""The model description: tensors, operators and the builder DSL.

A :class:`Graph` is the single source of truth for the scheduler (MAC counts, data volumes), the
RTL generator and the golden model (:mod:`intar_hw.golden`). It imports no Amaranth.

Example
-------
>>> import intar_hw as ih
>>> g = ih.Graph("mlp3")
>>> x = g.input("x", shape=(1, 256))
>>> h = g.relu(g.linear(x, 1024, shift=8, name="fc1"))
>>> g.output(g.linear(h, 256, shift=8, name="fc2"))
>>> [op.name for op in g.ops]
['fc1', 'relu1', 'fc2']

Conventions
-----------
- Every operator's output tensor carries the operator's name; graph inputs and operators share
  one namespace. Anywhere a tensor is expected, its name works too.
- Parameters use PyTorch layouts and names: ``<op>.weight``, ``<op>.bias``; Linear ``(out, in)``,
  Conv2d ``(out, in, kh, kw)``, ConvTranspose2d ``(in, out, kh, kw)``. Biases are int32 in
  accumulator units, added before requantisation.
- Linear operators requantise with :func:`intar_hw.numerics.requantize` (round half up, clamp);
  nonlinear ones follow the integer algorithms of :mod:`intar_hw.numerics`, whose docstrings state
  the fixed-point conventions.
- Bytes: ``ceil(elements * bits / 8)``; int4 packs two values per byte.
- ``macs`` counts every multiply-accumulate the dense loop nest executes (convolution taps that
  fall in the padding included); elementwise and nonlinear operators have 0 MACs.
- Errors are raised when an operator is added: :class:`TypeError` for a value of the wrong kind,
  :class:`ValueError` for a value out of range; messages name the operator and echo the values.
"""

import enum
import inspect
import math
import re
import types
from dataclasses import dataclass

import numpy as np

from . import numerics
from .numerics import Format, as_format
from .integers import is_int


__all__ = [
    "Graph", "Tensor", "Param", "OpKind", "Op",
    "Linear", "Matmul", "Conv2d", "ConvTranspose2d", "ReLU", "GELU", "SiLU", "Softmax",
    "LayerNorm", "Add", "Mul", "Upsample", "MaxPool", "Requant",
    "ACTIVATION_FORMATS",
]


#: Formats allowed for activations and weights.
ACTIVATION_FORMATS = (numerics.INT4, numerics.INT8, numerics.INT16)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")


class OpKind(str, enum.Enum):
    """The kind of an operator; its value is also the name of the :class:`Graph` builder method."""
    LINEAR = "linear"
    MATMUL = "matmul"
    CONV2D = "conv2d"
    CONV_TRANSPOSE2D = "conv_transpose2d"
    RELU = "relu"
    GELU = "gelu"
    SILU = "silu"
    SOFTMAX = "softmax"
    LAYERNORM = "layernorm"
    ADD = "add"
    MUL = "mul"
    UPSAMPLE = "upsample"
    MAXPOOL = "maxpool"
    REQUANT = "requant"

    def __str__(self):
        return self.value


class Tensor:
    """A named tensor of a :class:`Graph`. Created by the graph, never directly.

    Attributes
    ----------
    name : str
    shape : tuple of int
    fmt : Format
        Its integer format (int4, int8 or int16).
    producer : Op or None
        The operator computing it; ``None`` for a graph input.
    graph : Graph
    size : int
        Number of elements.
    nbytes : int
        ``fmt.nbytes(size)``.
    """

    def __init__(self, graph, name, shape, fmt, producer):
        self._graph = graph
        self._name = name
        self._shape = tuple(shape)
        self._fmt = fmt
        self._producer = producer

    graph = property(lambda self: self._graph)
    name = property(lambda self: self._name)
    shape = property(lambda self: self._shape)
    fmt = property(lambda self: self._fmt)
    producer = property(lambda self: self._producer)

    @property
    def ndim(self):
        return len(self._shape)

    @property
    def size(self):
        return math.prod(self._shape)

    @property
    def nbytes(self):
        return self._fmt.nbytes(self.size)

    def __repr__(self):
        return f"Tensor({self._name!r}, {self._shape!r}, {self._fmt.name})"


@dataclass(frozen=True)
class Param:
    """A parameter (weight or bias) of an operator.

    Attributes
    ----------
    name : str
        Full name, ``"<op>.weight"`` or ``"<op>.bias"``.
    shape : tuple of int
    fmt : Format
    frac : int
        Fractional bits (only LayerNorm's weight has any; 0 elsewhere).
    """
    name: str
    shape: tuple
    fmt: Format
    frac: int = 0

    @property
    def size(self):
        return math.prod(self.shape)

    @property
    def nbytes(self):
        return self.fmt.nbytes(self.size)


# --- validation helpers ---------------------------------------------------------------------------


def _shape_text(shape):
    return repr(tuple(shape))


class Op:
    """An operator of a :class:`Graph`. Created by the graph's builder methods, never directly.

    Attributes
    ----------
    name : str
        Also the name of its output tensor.
    kind : OpKind
    inputs : tuple of Tensor
        Activation operands (parameters are in ``params``).
    output : Tensor
    params : dict of str to Param
        Local name (``"weight"``, ``"bias"``) to parameter.
    attrs : dict
        The builder keyword arguments that recreate the operator (JSON-compatible).
    macs : int
        Multiply-accumulates.
    input_bytes, output_bytes, param_bytes : int
        Bytes of the activation operands, the result and the parameters.
    acc_fmt : Format or None
        The accumulator format of reducing operators (linear, matmul, convolutions).
    """
    kind = None
    label = "Op"

    def __init__(self, graph, name):
        self._graph = graph
        self._name = name
        self._inputs = ()
        self._output = None
        self._params = {}
        self._attrs = {}
        self._acc_fmt = None

    # The graph calls this once the operator is validated.
    def _finish(self, inputs, shape, fmt, params, attrs):
        self._inputs = tuple(inputs)
        self._params = {key: Param(f"{self._name}.{key}", tuple(shape_), fmt_, frac)
                        for key, (shape_, fmt_, frac) in params.items()}
        self._attrs = attrs
        self._output = Tensor(self._graph, self._name, shape, fmt, self)

    name = property(lambda self: self._name)
    graph = property(lambda self: self._graph)
    inputs = property(lambda self: self._inputs)
    output = property(lambda self: self._output)
    acc_fmt = property(lambda self: self._acc_fmt)

    @property
    def params(self):
        return dict(self._params)

    @property
    def attrs(self):
        return dict(self._attrs)

    @property
    def macs(self):
        return 0

    @property
    def input_bytes(self):
        return sum(t.nbytes for t in self._inputs)

    @property
    def output_bytes(self):
        return self._output.nbytes

    @property
    def param_bytes(self):
        return sum(p.nbytes for p in self._params.values())

    def __repr__(self):
        return f"{type(self).__name__}({self._name!r})"

    # --- helpers for subclasses ---

    def _error(self, text):
        return f"{self.label} {self._name!r} {text}"

    def _int(self, value, what, minimum=None, maximum=None):
        if not is_int(value):
            raise TypeError(self._error(f"{what} must be an integer, not {value!r}"))
        value = int(value)
        if minimum is not None and maximum is not None and not minimum <= value <= maximum:
            raise ValueError(self._error(
                f"{what} must be between {minimum} and {maximum}, not {value!r}"))
        if minimum is not None and value < minimum:
            word = "positive" if minimum == 1 else "non-negative" if minimum == 0 else \
                f"at least {minimum}"
            if word.startswith("at"):
                raise ValueError(self._error(f"{what} must be {word}, not {value!r}"))
            raise ValueError(self._error(f"{what} must be a {word} integer, not {value!r}"))
        return value

    def _bool(self, value, what):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(self._error(f"{what} must be a bool, not {value!r}"))
        return bool(value)

    def _pair(self, value, what, minimum):
        if is_int(value):
            pair = (value, value)
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
            pair = tuple(value)
        else:
            raise TypeError(self._error(
                f"{what} must be an integer or a pair of integers, not {value!r}"))
        pair = tuple(int(v) for v in pair)
        if any(v < minimum for v in pair):
            word = "positive" if minimum == 1 else "non-negative"
            raise ValueError(self._error(f"{what} must be {word}, not {value!r}"))
        return pair

    def _format(self, value, what, allowed=ACTIVATION_FORMATS):
        try:
            fmt = as_format(value, what)
        except TypeError:
            raise TypeError(self._error(
                f"{what} must be a Format or a name like 'int8', not {value!r}")) from None
        except ValueError:
            raise ValueError(self._error(
                f"{what} must be one of {', '.join(f.name for f in allowed)}, "
                f"not {value!r}")) from None
        if fmt not in allowed:
            raise ValueError(self._error(
                f"{what} must be one of {', '.join(f.name for f in allowed)}, not {fmt.name!r}"))
        return fmt

    def _ndim(self, tensor, ndims, what="input"):
        if tensor.ndim not in ndims:
            count = " or ".join(str(n) for n in ndims)
            raise ValueError(self._error(
                f"{what} must have {count} dimensions, not {_shape_text(tensor.shape)}"))

    def _accumulator(self, a_fmt, b_fmt, reduction, bias):
        bias_fmt = numerics.INT32 if bias else None
        acc = numerics.accumulator_format(a_fmt, b_fmt, reduction, bias_fmt)
        if acc.bits > 63:
            raise ValueError(self._error(
                f"accumulator would need more than 63 bits (reduction length {reduction!r})"))
        return acc

    def _shift(self, value):
        return self._int(value, "shift", 0, 62)

    def _frac(self, value, fmt, what="frac"):
        if value is None:
            return numerics.default_frac(fmt)
        return self._int(value, what, 0, fmt.bits - 1)


class _Reducing(Op):
    """A linear, matmul or convolution: products summed in ``acc_fmt``, requantised by ``shift``."""

    shift = property(lambda self: self._shift_)
    reduction = property(lambda self: self._reduction)
    has_bias = property(lambda self: self._bias)
    weight_fmt = property(lambda self: self._weight_fmt)


class Linear(_Reducing):
    """``y = requantize(x @ weight.T + bias, shift)``; ``x`` is ``(M, in)``, ``y`` ``(M, out)``.

    Attributes
    ----------
    in_features, out_features, shift, reduction (= in_features), has_bias, weight_fmt, acc_fmt
    gemm : tuple
        ``(heads, M, K, N) = (1, M, in, out)``.
    """
    kind = OpKind.LINEAR
    label = "Linear"

    def __init__(self, graph, name, x, out_features, shift, bias, weight_format, out_format):
        super().__init__(graph, name)
        x = graph._resolve(x, self, "input")
        self._ndim(x, (2,))
        self.out_features = self._int(out_features, "output features", 1)
        self.in_features = x.shape[1]
        self._shift_ = self._shift(shift)
        self._bias = self._bool(bias, "bias")
        self._weight_fmt = self._format(weight_format, "weight format")
        out_fmt = x.fmt if out_format is None else self._format(out_format, "output format")
        self._reduction = self.in_features
        self._acc_fmt = self._accumulator(x.fmt, self._weight_fmt, self._reduction, self._bias)
        params = {"weight": ((self.out_features, self.in_features), self._weight_fmt, 0)}
        if self._bias:
            params["bias"] = ((self.out_features,), numerics.INT32, 0)
        self._finish([x], (x.shape[0], self.out_features), out_fmt, params, {
            "out_features": self.out_features, "shift": self._shift_, "bias": self._bias,
            "weight_format": self._weight_fmt.name, "out_format": out_fmt.name})

    @property
    def gemm(self):
        return (1, self._inputs[0].shape[0], self.in_features, self.out_features)

    @property
    def macs(self):
        return math.prod(self.gemm)


class Matmul(_Reducing):
    """``y = requantize(A @ B, shift)`` or ``A @ B.T`` of two activations, optionally per head.

    Operands are 2-D ``(rows, features)`` or 3-D ``(heads, rows, features)``. With ``heads = H``
    a 2-D operand is split along its last axis into ``H`` equal column blocks (head ``h`` takes
    columns ``h * w`` to ``(h + 1) * w``), which is how multi-head attention reads Q, K and V
    without a reshape. Per head, ``A`` is ``(M, K)`` and ``B`` is ``(K, N)``, or ``(N, K)`` with
    ``transpose_b``. The result is ``(M, N)`` for one head of 2-D operands, ``(H, M, N)``
    otherwise, or ``(M, H * N)`` (heads side by side) with ``merge_heads``.

    Attributes
    ----------
    transpose_b, heads, merge_heads, shift, reduction (= K), acc_fmt
    gemm : tuple
        ``(H, M, K, N)``.
    """
    kind = OpKind.MATMUL
    label = "Matmul"

    def __init__(self, graph, name, a, b, transpose_b, heads, merge_heads, shift, out_format):
        super().__init__(graph, name)
        a = graph._resolve(a, self, "first input")
        b = graph._resolve(b, self, "second input")
        self._ndim(a, (2, 3), "first input")
        self._ndim(b, (2, 3), "second input")
        self.transpose_b = self._bool(transpose_b, "transpose_b")
        self.merge_heads = self._bool(merge_heads, "merge_heads")
        self._shift_ = self._shift(shift)
        self._bias = False
        self._weight_fmt = None
        out_fmt = a.fmt if out_format is None else self._format(out_format, "output format")
        if heads is None:
            heads = a.shape[0] if a.ndim == 3 else b.shape[0] if b.ndim == 3 else 1
        self.heads = h = self._int(heads, "heads", 1)
        for what, t in (("first input", a), ("second input", b)):
            if t.ndim == 3 and t.shape[0] != h:
                raise ValueError(self._error(
                    f"{what} {_shape_text(t.shape)} must have {h} heads in its first "
                    f"dimension, not {t.shape[0]}"))
            if t.ndim == 2 and t.shape[1] % h:
                raise ValueError(self._error(
                    f"{what} columns must split into {h} heads, not {t.shape[1]} "
                    f"(shape {_shape_text(t.shape)})"))
        m, k = (a.shape[1:] if a.ndim == 3 else (a.shape[0], a.shape[1] // h))
        b_rows, b_cols = (b.shape[1:] if b.ndim == 3 else (b.shape[0], b.shape[1] // h))
        k2, n = (b_cols, b_rows) if self.transpose_b else (b_rows, b_cols)
        if k != k2:
            raise ValueError(self._error(
                f"reduction lengths differ: {k} from first input {_shape_text(a.shape)} and "
                f"{k2} from second input {_shape_text(b.shape)} (heads {h}, "
                f"transpose_b {self.transpose_b})"))
        self._gemm = (h, m, k, n)
        self._reduction = k
        self._acc_fmt = self._accumulator(a.fmt, b.fmt, k, False)
        if self.merge_heads:
            shape = (m, h * n)
        elif h == 1 and a.ndim == 2 and b.ndim == 2:
            shape = (m, n)
        else:
            shape = (h, m, n)
        self._finish([a, b], shape, out_fmt, {}, {
            "transpose_b": self.transpose_b, "heads": h, "merge_heads": self.merge_heads,
            "shift": self._shift_, "out_format": out_fmt.name})

    @property
    def gemm(self):
        return self._gemm

    @property
    def macs(self):
        return math.prod(self._gemm)


class _Conv(_Reducing):
    kernel_size = property(lambda self: self._kernel)
    stride = property(lambda self: self._stride)
    padding = property(lambda self: self._padding)
    dilation = property(lambda self: self._dilation)

    def _common(self, graph, x, out_channels, kernel_size, stride, padding, dilation, shift, bias,
                weight_format, out_format):
        x = graph._resolve(x, self, "input")
        self._ndim(x, (4,))
        self.in_channels = x.shape[1]
        self.out_channels = self._int(out_channels, "output channels", 1)
        self._kernel = self._pair(kernel_size, "kernel size", 1)
        self._stride = self._pair(stride, "stride", 1)
        self._padding = self._pair(padding, "padding", 0)
        self._dilation = self._pair(dilation, "dilation", 1)
        self._shift_ = self._shift(shift)
        self._bias = self._bool(bias, "bias")
        self._weight_fmt = self._format(weight_format, "weight format")
        out_fmt = x.fmt if out_format is None else self._format(out_format, "output format")
        self._reduction = self.in_channels * self._kernel[0] * self._kernel[1]
        self._acc_fmt = self._accumulator(x.fmt, self._weight_fmt, self._reduction, self._bias)
        return x, out_fmt

    @property
    def gemm(self):
        """``(1, M, K, N)`` of the GEMM the hardware runs: ``M`` output pixels (all images),
        ``K = in_channels * kh * kw`` taps (a transposed convolution runs as a convolution over
        its zero-inserted input), ``N = out_channels``."""
        n, _, ho, wo = self._output.shape
        return (1, n * ho * wo, self._reduction, self.out_channels)


class Conv2d(_Conv):
    """2-D convolution (cross-correlation, as PyTorch) of an ``(N, C, H, W)`` input.

    ``y = requantize(conv(x, weight) + bias, shift)``, weight ``(out, in, kh, kw)``; zero padding.
    Output size per axis: ``floor((size + 2 * padding - dilation * (k - 1) - 1) / stride) + 1``.

    Attributes
    ----------
    in_channels, out_channels, kernel_size, stride, padding, dilation (pairs), shift, reduction
    (``in * kh * kw``), has_bias, weight_fmt, acc_fmt
    """
    kind = OpKind.CONV2D
    label = "Conv2d"

    def __init__(self, graph, name, x, out_channels, kernel_size, stride, padding, dilation,
                 shift, bias, weight_format, out_format):
        super().__init__(graph, name)
        x, out_fmt = self._common(graph, x, out_channels, kernel_size, stride, padding, dilation,
                                  shift, bias, weight_format, out_format)
        size = []
        for axis in range(2):
            extent = x.shape[2 + axis] + 2 * self._padding[axis] \
                - self._dilation[axis] * (self._kernel[axis] - 1) - 1
            if extent < 0:
                raise ValueError(self._error(
                    f"kernel {self._kernel!r} with dilation {self._dilation!r} does not fit "
                    f"input {_shape_text(x.shape)} with padding {self._padding!r}"))
            size.append(extent // self._stride[axis] + 1)
        params = {"weight": ((self.out_channels, self.in_channels, *self._kernel),
                             self._weight_fmt, 0)}
        if self._bias:
            params["bias"] = ((self.out_channels,), numerics.INT32, 0)
        self._finish([x], (x.shape[0], self.out_channels, *size), out_fmt, params, {
            "out_channels": self.out_channels, "kernel_size": list(self._kernel),
            "stride": list(self._stride), "padding": list(self._padding),
            "dilation": list(self._dilation), "shift": self._shift_, "bias": self._bias,
            "weight_format": self._weight_fmt.name, "out_format": out_fmt.name})

    @property
    def macs(self):
        n, co, ho, wo = self._output.shape
        return n * co * ho * wo * self._reduction


class ConvTranspose2d(_Conv):
    """2-D transposed convolution of an ``(N, C, H, W)`` input, as PyTorch's ConvTranspose2d.

    Weight ``(in, out, kh, kw)``. Output size per axis: ``(size - 1) * stride - 2 * padding +
    dilation * (k - 1) + output_padding + 1``; ``output_padding`` must be smaller than ``stride``
    or ``dilation``. ``macs`` counts every input pixel times every kernel tap; ``reduction``
    (``in * kh * kw``) bounds the number of products summed into one output.

    Attributes
    ----------
    in_channels, out_channels, kernel_size, stride, padding, output_padding, dilation (pairs),
    shift, reduction, has_bias, weight_fmt, acc_fmt
    """
    kind = OpKind.CONV_TRANSPOSE2D
    label = "ConvTranspose2d"
    output_padding = property(lambda self: self._output_padding)

    def __init__(self, graph, name, x, out_channels, kernel_size, stride, padding,
                 output_padding, dilation, shift, bias, weight_format, out_format):
        super().__init__(graph, name)
        x, out_fmt = self._common(graph, x, out_channels, kernel_size, stride, padding, dilation,
                                  shift, bias, weight_format, out_format)
        self._output_padding = self._pair(output_padding, "output padding", 0)
        size = []
        for axis in range(2):
            if self._output_padding[axis] >= max(self._stride[axis], self._dilation[axis]):
                raise ValueError(self._error(
                    f"output padding {self._output_padding!r} must be smaller than stride "
                    f"{self._stride!r} or dilation {self._dilation!r}"))
            extent = (x.shape[2 + axis] - 1) * self._stride[axis] - 2 * self._padding[axis] \
                + self._dilation[axis] * (self._kernel[axis] - 1) \
                + self._output_padding[axis] + 1
            if extent < 1:
                raise ValueError(self._error(
                    f"padding {self._padding!r} leaves no output for input "
                    f"{_shape_text(x.shape)} and kernel {self._kernel!r}"))
            size.append(extent)
        params = {"weight": ((self.in_channels, self.out_channels, *self._kernel),
                             self._weight_fmt, 0)}
        if self._bias:
            params["bias"] = ((self.out_channels,), numerics.INT32, 0)
        self._finish([x], (x.shape[0], self.out_channels, *size), out_fmt, params, {
            "out_channels": self.out_channels, "kernel_size": list(self._kernel),
            "stride": list(self._stride), "padding": list(self._padding),
            "output_padding": list(self._output_padding), "dilation": list(self._dilation),
            "shift": self._shift_, "bias": self._bias,
            "weight_format": self._weight_fmt.name, "out_format": out_fmt.name})

    @property
    def macs(self):
        n, ci, h, w = self._inputs[0].shape
        return n * ci * h * w * self.out_channels * self._kernel[0] * self._kernel[1]


class _Elementwise(Op):
    def _unary(self, graph, x, ndims=None):
        x = graph._resolve(x, self, "input")
        if ndims is not None:
            self._ndim(x, ndims)
        return x

    def _lut_input(self, x):
        if x.fmt.bits not in (8, 16):
            raise ValueError(self._error(f"input must be int8 or int16, not {x.fmt.name!r}"))


class ReLU(_Elementwise):
    """``y = max(x, 0)``, same shape and format."""
    kind = OpKind.RELU
    label = "ReLU"

    def __init__(self, graph, name, x):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self._finish([x], x.shape, x.fmt, {}, {})


class GELU(_Elementwise):
    """Table GELU (:func:`intar_hw.numerics.gelu`) of an int8/int16 input with ``frac``
    fractional bits (default ``bits - 4``); the output has the same format and scale.

    Attributes
    ----------
    frac : int
    approximate : str
        ``"none"`` (erf) or ``"tanh"``, as PyTorch.
    """
    kind = OpKind.GELU
    label = "GELU"

    def __init__(self, graph, name, x, frac, approximate):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self._lut_input(x)
        self.frac = self._frac(frac, x.fmt)
        if approximate not in ("none", "tanh"):
            raise ValueError(self._error(
                f"approximation must be 'none' or 'tanh', not {approximate!r}"))
        self.approximate = approximate
        self._finish([x], x.shape, x.fmt, {}, {"frac": self.frac, "approximate": approximate})


class SiLU(_Elementwise):
    """Table SiLU (:func:`intar_hw.numerics.silu`) of an int8/int16 input with ``frac``
    fractional bits (default ``bits - 4``); the output has the same format and scale."""
    kind = OpKind.SILU
    label = "SiLU"

    def __init__(self, graph, name, x, frac):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self._lut_input(x)
        self.frac = self._frac(frac, x.fmt)
        self._finish([x], x.shape, x.fmt, {}, {"frac": self.frac})


class Softmax(_Elementwise):
    """Integer softmax over the last axis (:func:`intar_hw.numerics.softmax`).

    Input int8/int16 with ``frac`` fractional bits (default ``bits - 4``); output the same format,
    probabilities with ``out_frac = bits - 1`` fractional bits. ``causal`` masks entry
    ``(.., i, j)`` when ``j > i``.
    """
    kind = OpKind.SOFTMAX
    label = "Softmax"

    def __init__(self, graph, name, x, frac, causal):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self._lut_input(x)
        self.frac = self._frac(frac, x.fmt)
        self.causal = self._bool(causal, "causal")
        if self.causal and x.ndim < 2:
            raise ValueError(self._error(
                f"causal input must have at least 2 dimensions, not {_shape_text(x.shape)}"))
        self.out_frac = x.fmt.bits - 1
        self._finish([x], x.shape, x.fmt, {}, {"frac": self.frac, "causal": self.causal})


class LayerNorm(_Elementwise):
    """Integer layer normalisation over the last axis (:func:`intar_hw.numerics.layernorm`).

    Input int8/int16 with ``frac`` fractional bits (default ``bits - 4``; it only scales
    ``eps``). Parameters: ``weight`` (gamma, ``(d,)``, ``weight_format`` with ``weight_frac``
    fractional bits, default ``bits - 2``) and ``bias`` (beta, ``(d,)`` int32 in accumulator units
    ``2**-(LN_FRAC + weight_frac)``). Output: the input format with ``out_frac`` fractional bits
    (default ``bits - 4``).
    """
    kind = OpKind.LAYERNORM
    label = "LayerNorm"

    def __init__(self, graph, name, x, frac, out_frac, eps, weight_format, weight_frac):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self._lut_input(x)
        self.frac = self._frac(frac, x.fmt)
        self.out_frac = self._frac(out_frac, x.fmt, "output frac")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool):
            raise TypeError(self._error(f"eps must be a number, not {eps!r}"))
        if not 0 <= eps < 1:
            raise ValueError(self._error(f"eps must be between 0 and 1, not {eps!r}"))
        self.eps = float(eps)
        self.weight_fmt = self._format(weight_format, "weight format")
        self.weight_frac = self._frac(
            self.weight_fmt.bits - 2 if weight_frac is None else weight_frac, self.weight_fmt,
            "weight frac")
        d = x.shape[-1]
        limit = numerics.layernorm_max_length(x.fmt)
        if d > limit:
            raise ValueError(self._error(
                f"normalised length must be at most {limit} for {x.fmt.name}, not {d!r}"))
        self.shift = numerics.LN_FRAC + self.weight_frac - self.out_frac
        self._finish([x], x.shape, x.fmt, {
            "weight": ((d,), self.weight_fmt, self.weight_frac),
            "bias": ((d,), numerics.INT32, numerics.LN_FRAC + self.weight_frac)},
            {"frac": self.frac, "out_frac": self.out_frac, "eps": self.eps,
             "weight_format": self.weight_fmt.name, "weight_frac": self.weight_frac})


class _Binary(_Elementwise):
    def _binary(self, graph, a, b):
        a = graph._resolve(a, self, "first input")
        b = graph._resolve(b, self, "second input")
        if a.shape != b.shape:
            raise ValueError(self._error(
                f"input shapes differ: {_shape_text(a.shape)} and {_shape_text(b.shape)}"))
        return a, b


class Add(_Binary):
    """Saturating elementwise sum ``y = clamp(a + b)`` in ``out_format`` (default ``a``'s)."""
    kind = OpKind.ADD
    label = "Add"

    def __init__(self, graph, name, a, b, out_format):
        super().__init__(graph, name)
        a, b = self._binary(graph, a, b)
        out_fmt = a.fmt if out_format is None else self._format(out_format, "output format")
        self._finish([a, b], a.shape, out_fmt, {}, {"out_format": out_fmt.name})


class Mul(_Binary):
    """Elementwise product ``y = requantize(a * b, shift)`` in ``out_format`` (default ``a``'s)."""
    kind = OpKind.MUL
    label = "Mul"

    def __init__(self, graph, name, a, b, shift, out_format):
        super().__init__(graph, name)
        a, b = self._binary(graph, a, b)
        self.shift = self._shift(shift)
        out_fmt = a.fmt if out_format is None else self._format(out_format, "output format")
        self._finish([a, b], a.shape, out_fmt, {},
                     {"shift": self.shift, "out_format": out_fmt.name})


class Upsample(_Elementwise):
    """Nearest-neighbour upsampling of an ``(N, C, H, W)`` input by integer ``factor``
    (an integer or a ``(fh, fw)`` pair)."""
    kind = OpKind.UPSAMPLE
    label = "Upsample"

    def __init__(self, graph, name, x, factor):
        super().__init__(graph, name)
        x = self._unary(graph, x, (4,))
        self.factor = self._pair(factor, "factor", 1)
        n, c, h, w = x.shape
        self._finish([x], (n, c, h * self.factor[0], w * self.factor[1]), x.fmt, {},
                     {"factor": list(self.factor)})


class MaxPool(_Elementwise):
    """2-D max pooling of an ``(N, C, H, W)`` input; ``stride`` defaults to ``kernel_size``;
    padding (at most half the kernel) never wins. Output size per axis:
    ``floor((size + 2 * padding - k) / stride) + 1``."""
    kind = OpKind.MAXPOOL
    label = "MaxPool"

    def __init__(self, graph, name, x, kernel_size, stride, padding):
        super().__init__(graph, name)
        x = self._unary(graph, x, (4,))
        self.kernel_size = self._pair(kernel_size, "kernel size", 1)
        self.stride = self.kernel_size if stride is None else self._pair(stride, "stride", 1)
        self.padding = self._pair(padding, "padding", 0)
        size = []
        for axis in range(2):
            if 2 * self.padding[axis] > self.kernel_size[axis]:
                raise ValueError(self._error(
                    f"padding {self.padding!r} must be at most half the kernel size "
                    f"{self.kernel_size!r}"))
            extent = x.shape[2 + axis] + 2 * self.padding[axis] - self.kernel_size[axis]
            if extent < 0:
                raise ValueError(self._error(
                    f"kernel size {self.kernel_size!r} does not fit input "
                    f"{_shape_text(x.shape)} with padding {self.padding!r}"))
            size.append(extent // self.stride[axis] + 1)
        self._finish([x], (*x.shape[:2], *size), x.fmt, {}, {
            "kernel_size": list(self.kernel_size), "stride": list(self.stride),
            "padding": list(self.padding)})


class Requant(_Elementwise):
    """Explicit requantisation ``y = requantize(x, shift)`` into ``out_format``."""
    kind = OpKind.REQUANT
    label = "Requant"

    def __init__(self, graph, name, x, shift, out_format):
        super().__init__(graph, name)
        x = self._unary(graph, x)
        self.shift = self._shift(shift)
        out_fmt = x.fmt if out_format is None else self._format(out_format, "output format")
        self._finish([x], x.shape, out_fmt, {}, {"shift": self.shift, "out_format": out_fmt.name})


_OP_CLASSES = {cls.kind: cls for cls in (Linear, Matmul, Conv2d, ConvTranspose2d, ReLU, GELU,
                                         SiLU, Softmax, LayerNorm, Add, Mul, Upsample, MaxPool,
                                         Requant)}


def _checked_arrays(kind, given, expected):
    """``given`` checked against ``expected``, ``{name: (shape, fmt)}``: exactly those names,
    integer arrays of those shapes with values in those formats."""
    if not isinstance(given, dict):
        raise TypeError(f"{kind.capitalize()}s must be a dict of arrays by name, not {given!r}")
    unknown = sorted(set(given) - set(expected), key=str)
    if unknown:
        raise ValueError(f"Unknown {kind} {unknown[0]!r}; expected one of "
                         f"{', '.join(map(repr, expected)) or 'none'}")
    result = {}
    for name, (shape, fmt) in expected.items():
        if name not in given:
            raise ValueError(f"Missing {kind} {name!r}")
        array = np.asarray(given[name])
        if array.dtype.kind not in "iu":
            raise TypeError(f"{kind.capitalize()} {name!r} must hold integers, "
                            f"not {array.dtype.name}")
        if array.shape != tuple(shape):
            raise ValueError(f"{kind.capitalize()} {name!r} must have shape {tuple(shape)!r}, "
                             f"not {array.shape!r}")
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if lo < fmt.lo or hi > fmt.hi:
            raise ValueError(f"{kind.capitalize()} {name!r} values must be within {fmt.name} "
                             f"[{fmt.lo}, {fmt.hi}], not [{lo}, {hi}]")
        result[name] = array
    return result


class Graph:
    """A DNN model as a graph of integer operators, built one operator at a time.

    Parameters
    ----------
    name : str

    Attributes
    ----------
    ops : tuple of Op
        In topological order (the order they were added).
    tensors : mapping of str to Tensor
        Graph inputs and operator outputs by name.
    inputs, outputs : tuple of Tensor
    params : mapping of str to Param
        Every parameter by full name (``"fc1.weight"``), in operator order.
    macs : int
        Total multiply-accumulates.
    """

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"Graph name must be a string, not {name!r}")
        if not name:
            raise ValueError(f"Graph name must not be empty, not {name!r}")
        self._name = name
        self._ops = []
        self._tensors = {}
        self._inputs = []
        self._outputs = []
        self._consumers = {}
        self._counts = {}

    name = property(lambda self: self._name)

    @property
    def ops(self):
        return tuple(self._ops)

    @property
    def tensors(self):
        return types.MappingProxyType(self._tensors)

    @property
    def inputs(self):
        return tuple(self._inputs)

    @property
    def outputs(self):
        return tuple(self._outputs)

    @property
    def params(self):
        return types.MappingProxyType(
            {p.name: p for op in self._ops for p in op._params.values()})

    @property
    def macs(self):
        return sum(op.macs for op in self._ops)

    def __repr__(self):
        return f"Graph({self._name!r})"

    # --- lookup ---

    def tensor(self, name):
        """The tensor called ``name``."""
        if not isinstance(name, str):
            raise TypeError(f"Tensor name must be a string, not {name!r}")
        if name not in self._tensors:
            raise ValueError(f"Graph {self._name!r} has no tensor {name!r}")
        return self._tensors[name]

    def op(self, name):
        """The operator called ``name``."""
        tensor = self.tensor(name)
        if tensor.producer is None:
            raise ValueError(f"Graph {self._name!r} tensor {name!r} is an input, not an op")
        return tensor.producer

    def consumers(self, tensor):
        """The operators reading ``tensor`` (a :class:`Tensor` or a name), in order."""
        tensor = self._resolve_plain(tensor, "Consumers")
        return tuple(self._consumers[tensor.name])

    def _resolve_plain(self, value, what):
        if isinstance(value, str):
            return self.tensor(value)
        if isinstance(value, Tensor):
            if value.graph is not self:
                raise ValueError(f"{what} tensor {value.name!r} belongs to graph "
                                 f"{value.graph.name!r}, not {self._name!r}")
            return value
        raise TypeError(f"{what} tensor must be a Tensor or a tensor name, not {value!r}")

    def _resolve(self, value, op, what):
        if isinstance(value, str):
            if value not in self._tensors:
                raise ValueError(op._error(
                    f"{what} {value!r} is not a tensor of graph {self._name!r}"))
            return self._tensors[value]
        if isinstance(value, Tensor):
            if value.graph is not self:
                raise ValueError(op._error(
                    f"{what} {value.name!r} belongs to graph {value.graph.name!r}, "
                    f"not {self._name!r}"))
            return value
        raise TypeError(op._error(f"{what} must be a Tensor or a tensor name, not {value!r}"))

    def _new_name(self, name, kind):
        if name is None:
            count = self._counts.get(kind, 0)
            while True:
                count += 1
                name = f"{kind.value}{count}"
                if name not in self._tensors:
                    break
            self._counts[kind] = count
            return name
        if not isinstance(name, str):
            raise TypeError(f"{_OP_CLASSES[kind].label} name must be a string, not {name!r}")
        self._check_name(name, _OP_CLASSES[kind].label)
        return name

    def _check_name(self, name, what):
        if not _NAME.fullmatch(name):
            raise ValueError(f"{what} name must be an identifier (dots allowed), not {name!r}")
        if name in self._tensors:
            raise ValueError(f"Graph {self._name!r} already has a tensor named {name!r}")

    def _add(self, kind, name, *args):
        op = _OP_CLASSES[kind](self, self._new_name(name, kind), *args)
        self._ops.append(op)
        self._tensors[op.name] = op.output
        self._consumers[op.name] = []
        for tensor in op.inputs:
            if op not in self._consumers[tensor.name]:
                self._consumers[tensor.name].append(op)
        return op.output

    # --- building ---

    def input(self, name, shape, fmt="int8"):
        """Add a graph input of ``shape`` and format ``fmt`` (int4, int8 or int16)."""
        if not isinstance(name, str):
            raise TypeError(f"Input name must be a string, not {name!r}")
        self._check_name(name, "Input")
        if not isinstance(shape, (tuple, list)) or not all(map(is_int, shape)):
            raise TypeError(f"Input {name!r} shape must be a tuple of integers, not {shape!r}")
        if not shape or any(n < 1 for n in shape):
            raise ValueError(f"Input {name!r} shape must be non-empty with positive sizes, "
                             f"not {tuple(shape)!r}")
        try:
            fmt_ = as_format(fmt)
        except TypeError:
            raise TypeError(f"Input {name!r} format must be a Format or a name like 'int8', "
                            f"not {fmt!r}") from None
        except ValueError:
            fmt_ = None
        if fmt_ not in ACTIVATION_FORMATS:
            shown = fmt_.name if fmt_ is not None else fmt
            raise ValueError(f"Input {name!r} format must be one of int4, int8, int16, "
                             f"not {shown!r}")
        fmt = fmt_
        tensor = Tensor(self, name, tuple(int(n) for n in shape), fmt, None)
        self._tensors[name] = tensor
        self._inputs.append(tensor)
        self._consumers[name] = []
        return tensor

    def output(self, *tensors):
        """Mark ``tensors`` (tensors or names) as graph outputs."""
        for value in tensors:
            tensor = self._resolve_plain(value, "Output")
            if tensor.producer is None:
                raise ValueError(f"Graph {self._name!r} output {tensor.name!r} is a graph input; "
                                 f"an output must be computed by an op")
            if tensor in self._outputs:
                raise ValueError(f"Graph {self._name!r} tensor {tensor.name!r} is already "
                                 f"an output")
            self._outputs.append(tensor)

    def linear(self, x, out_features, *, shift=0, bias=True, weight_format="int8",
               out_format=None, name=None):
        """Fully connected: ``requantize(x @ weight.T + bias, shift)``; see :class:`Linear`."""
        return self._add(OpKind.LINEAR, name, x, out_features, shift, bias, weight_format,
                         out_format)

    def matmul(self, a, b, *, transpose_b=False, heads=None, merge_heads=False, shift=0,
               out_format=None, name=None):
        """Product of two activations, ``A @ B`` or ``A @ B.T``, per head; see :class:`Matmul`."""
        return self._add(OpKind.MATMUL, name, a, b, transpose_b, heads, merge_heads, shift,
                         out_format)

    def conv2d(self, x, out_channels, kernel_size, *, stride=1, padding=0, dilation=1, shift=0,
               bias=True, weight_format="int8", out_format=None, name=None):
        """2-D convolution of ``(N, C, H, W)``; see :class:`Conv2d`."""
        return self._add(OpKind.CONV2D, name, x, out_channels, kernel_size, stride, padding,
                         dilation, shift, bias, weight_format, out_format)

    def conv_transpose2d(self, x, out_channels, kernel_size, *, stride=1, padding=0,
                         output_padding=0, dilation=1, shift=0, bias=True, weight_format="int8",
                         out_format=None, name=None):
        """2-D transposed convolution of ``(N, C, H, W)``; see :class:`ConvTranspose2d`."""
        return self._add(OpKind.CONV_TRANSPOSE2D, name, x, out_channels, kernel_size, stride,
                         padding, output_padding, dilation, shift, bias, weight_format,
                         out_format)

    def relu(self, x, *, name=None):
        """``max(x, 0)``; see :class:`ReLU`."""
        return self._add(OpKind.RELU, name, x)

    def gelu(self, x, *, frac=None, approximate="none", name=None):
        """Table GELU; see :class:`GELU`."""
        return self._add(OpKind.GELU, name, x, frac, approximate)

    def silu(self, x, *, frac=None, name=None):
        """Table SiLU; see :class:`SiLU`."""
        return self._add(OpKind.SILU, name, x, frac)

    def softmax(self, x, *, frac=None, causal=False, name=None):
        """Integer softmax over the last axis; see :class:`Softmax`."""
        return self._add(OpKind.SOFTMAX, name, x, frac, causal)

    def layernorm(self, x, *, frac=None, out_frac=None, eps=1e-5, weight_format="int8",
                  weight_frac=None, name=None):
        """Integer layer normalisation over the last axis; see :class:`LayerNorm`."""
        return self._add(OpKind.LAYERNORM, name, x, frac, out_frac, eps, weight_format,
                         weight_frac)

    def add(self, a, b, *, out_format=None, name=None):
        """Saturating sum (residual); see :class:`Add`."""
        return self._add(OpKind.ADD, name, a, b, out_format)

    def mul(self, a, b, *, shift=0, out_format=None, name=None):
        """Elementwise product with requantisation (gating); see :class:`Mul`."""
        return self._add(OpKind.MUL, name, a, b, shift, out_format)

    def upsample(self, x, factor, *, name=None):
        """Nearest-neighbour upsampling; see :class:`Upsample`."""
        return self._add(OpKind.UPSAMPLE, name, x, factor)

    def maxpool(self, x, kernel_size, *, stride=None, padding=0, name=None):
        """2-D max pooling; see :class:`MaxPool`."""
        return self._add(OpKind.MAXPOOL, name, x, kernel_size, stride, padding)

    def requant(self, x, shift, *, out_format=None, name=None):
        """Explicit requantisation; see :class:`Requant`."""
        return self._add(OpKind.REQUANT, name, x, shift, out_format)

    # --- data volumes ---

    def live_bytes(self):
        """Bytes of the tensors alive while each operator runs, one figure per op.

        A tensor is alive from its production (graph inputs: from the start) to its last reader;
        graph outputs stay alive to the end. The figure for an op includes its own inputs and
        output.
        """
        index = {op.name: i for i, op in enumerate(self._ops)}
        outputs = {t.name for t in self._outputs}
        spans = []
        for name, tensor in self._tensors.items():
            start = -1 if tensor.producer is None else index[name]
            readers = [index[op.name] for op in self._consumers[name]]
            end = len(self._ops) if name in outputs else max(readers, default=start)
            spans.append((start, end, tensor.nbytes))
        return [sum(b for s, e, b in spans if s <= i <= e) for i in range(len(self._ops))]

    def table(self):
        """The task table: one dict per operator with its shapes, MACs and bytes.

        Keys: ``op``, ``kind``, ``inputs`` (list of shapes), ``output`` (shape), ``format``,
        ``macs``, ``input_bytes``, ``output_bytes``, ``param_bytes``, ``live_bytes``.
        """
        rows = []
        for op, live in zip(self._ops, self.live_bytes()):
            rows.append({
                "op": op.name, "kind": op.kind.value,
                "inputs": [list(t.shape) for t in op.inputs], "output": list(op.output.shape),
                "format": op.output.fmt.name, "macs": op.macs, "input_bytes": op.input_bytes,
                "output_bytes": op.output_bytes, "param_bytes": op.param_bytes,
                "live_bytes": live})
        return rows

    # --- random data ---

    def random_parameters(self, seed=0):
        """Random integer parameters, by full name, in each parameter's format.

        Weights of reducing operators are uniform in ``[-a, a]`` with
        ``a = sqrt(3) * 2**shift * out_hi / (sqrt(fan_in) * in_hi)`` (at least 1, at most the
        weight format's ``hi``): inputs with an RMS of ``in_hi / 4`` then give outputs with an RMS
        near ``out_hi / 4``, so little saturates. Biases are uniform in
        ``+-2**shift * out_hi / 8``. LayerNorm gammas are uniform in [0.5, 1.5], betas in
        [-0.25, 0.25].
        """
        rng = np.random.default_rng(seed)
        result = {}
        for op in self._ops:
            for key, param in op._params.items():
                result[param.name] = self._random_param(rng, op, key, param)
        return result

    def _random_param(self, rng, op, key, param):
        fmt = param.fmt
        if op.kind is OpKind.LAYERNORM:
            if key == "weight":
                values = rng.uniform(0.5, 1.5, param.shape) * 2.0 ** param.frac
            else:
                values = rng.uniform(-0.25, 0.25, param.shape) * 2.0 ** param.frac
            return np.clip(np.round(values), fmt.lo, fmt.hi).astype(fmt.dtype)
        x, out = op.inputs[0], op.output
        fan_in = op.reduction
        if op.kind is OpKind.CONV_TRANSPOSE2D:
            fan_in = max(1, fan_in // (op.stride[0] * op.stride[1]))
        scale = 2.0 ** op.shift * out.fmt.hi
        if key == "weight":
            a = math.sqrt(3.0) * scale / (math.sqrt(fan_in) * x.fmt.hi)
            a = int(min(max(round(a), 1), fmt.hi))
            return rng.integers(-a, a, param.shape, endpoint=True).astype(fmt.dtype)
        b = int(min(round(scale / 8), fmt.hi))
        return rng.integers(-b, b, param.shape, endpoint=True).astype(fmt.dtype)

    def random_inputs(self, seed=0):
        """Random graph inputs by name: ``round(normal(0, hi / 4))``, clipped to the format."""
        rng = np.random.default_rng(seed)
        result = {}
        for tensor in self._inputs:
            fmt = tensor.fmt
            values = np.round(rng.normal(0.0, fmt.hi / 4, tensor.shape))
            result[tensor.name] = np.clip(values, fmt.lo, fmt.hi).astype(fmt.dtype)
        return result

    # --- data ---

    def checked_inputs(self, inputs):
        """``inputs`` (every graph input by name) as integer arrays, checked.

        Raises
        ------
        TypeError
            If ``inputs`` is not a dict, or an array does not hold integers.
        ValueError
            For a missing or unknown input, a wrong shape, or values outside the input's format.
        """
        return _checked_arrays("input", inputs, {t.name: (t.shape, t.fmt) for t in self._inputs})

    def checked_parameters(self, params):
        """``params`` (every parameter by name) as integer arrays, checked as
        :meth:`checked_inputs` checks inputs."""
        return _checked_arrays("parameter", params,
                               {p.name: (p.shape, p.fmt) for p in self.params.values()})

    # --- plain data ---

    def to_dict(self):
        """The graph as plain data (JSON-compatible); :meth:`from_dict` rebuilds it."""
        return {
            "name": self._name,
            "inputs": [{"name": t.name, "shape": list(t.shape), "format": t.fmt.name}
                       for t in self._inputs],
            "ops": [{"kind": op.kind.value, "name": op.name,
                     "inputs": [t.name for t in op.inputs], **op.attrs} for op in self._ops],
            "outputs": [t.name for t in self._outputs],
        }

    @classmethod
    def from_dict(cls, data):
        """Build a graph from :meth:`to_dict` data; ops may come in any order.

        Raises
        ------
        ValueError
            For malformed data (an input without a shape, an op without a name, attributes
            its kind does not take), an unknown operator kind, a reference to an unknown
            tensor, or a cycle; the message names the tensor or op.
        """
        if not isinstance(data, dict):
            raise TypeError(f"Graph description must be a dict, not {data!r}")
        graph = cls(data.get("name"))
        for field in ("inputs", "ops", "outputs"):
            if not isinstance(data.get(field, []), list):
                raise ValueError(f"Graph {graph.name!r} {field} must be a list, "
                                 f"not {data[field]!r}")
        for spec in data.get("inputs", []):
            if not isinstance(spec, dict) or "name" not in spec or "shape" not in spec:
                raise ValueError(f"Graph {graph.name!r} input {spec!r} must be a dict with a "
                                 f"name and a shape")
            graph.input(spec["name"], spec["shape"], spec.get("format", "int8"))
        specs = data.get("ops", [])
        for spec in specs:
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise ValueError(f"Graph {graph.name!r} op {spec!r} must be a dict with a "
                                 f"name, a kind and inputs")
            if not isinstance(spec.get("inputs", []), list):
                raise ValueError(f"Op {spec['name']!r} inputs must be a list of tensor names, "
                                 f"not {spec['inputs']!r}")
        known = {spec["name"] for spec in data.get("inputs", [])}
        names = {spec["name"] for spec in specs}
        for spec in specs:
            kind = spec.get("kind")
            if kind not in {k.value for k in OpKind}:
                raise ValueError(f"Op {spec['name']!r} kind must be one of "
                                 f"{', '.join(k.value for k in OpKind)}, not {kind!r}")
            for ref in spec.get("inputs", []):
                if ref not in known and ref not in names:
                    raise ValueError(f"Op {spec['name']!r} input {ref!r} is not an input "
                                     f"or an op of graph {graph.name!r}")
        pending = specs
        while pending:
            ready = [s for s in pending if all(r in graph._tensors for r in s.get("inputs", []))]
            if not ready:
                cycle = ", ".join(repr(s["name"]) for s in pending)
                raise ValueError(f"Graph {graph.name!r} has a cycle through ops {cycle}")
            for spec in ready:
                attrs = {k: v for k, v in spec.items() if k not in ("kind", "name", "inputs")}
                method = getattr(graph, spec["kind"])
                try:
                    inspect.signature(method).bind(*spec.get("inputs", []), name=spec["name"],
                                                   **attrs)
                except TypeError as error:
                    raise ValueError(f"Op {spec['name']!r} ({spec['kind']}) attributes "
                                     f"{sorted(attrs)} do not fit: {error}") from None
                method(*spec.get("inputs", []), name=spec["name"], **attrs)
            pending = [s for s in pending if s not in ready]
        graph.output(*data.get("outputs", []))
        return graph
