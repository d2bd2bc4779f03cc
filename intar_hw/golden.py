"""Golden models of a :class:`~intar_hw.graph.Graph`: bit-exact integers and float64.

:func:`reference` executes the graph with the hardware's integer semantics (the rules of
:mod:`intar_hw.numerics`); the generated accelerators must match it bit for bit.
:func:`reference_float` executes the same graph, with the same integer inputs and parameters, in
float64 without any rounding or saturation, so that :func:`error_report` can state the
quantisation error (SQNR, cosine similarity) of every tensor.

Both results are in the same units: a shift ``s`` divides by ``2**s`` in both models, and the
nonlinear operators interpret their input with the operator's ``frac`` (see the operator classes
in :mod:`intar_hw.graph`).

Speed: products are summed by BLAS in float64, which is exact whenever every partial sum stays
below ``2**53``. The bound ``reduction * 2**(bits_a - 1) * 2**(bits_b - 1)`` (plus the bias)
guarantees that for every operator of every shipped model; beyond it the sums fall back to int64
``numpy.matmul``.
"""

import math

import numpy as np

from . import numerics
from .graph import Graph, OpKind


__all__ = ["reference", "reference_float", "sqnr_db", "cosine_similarity", "max_abs_error",
           "error_report"]

_EXACT = 1 << 53
# Convolutions build im2col patches in chunks of output rows of at most this many elements.
_PATCH_ELEMENTS = 1 << 24


def reference(graph, inputs, params):
    """Execute ``graph`` with bit-exact integer semantics.

    Parameters
    ----------
    graph : Graph
    inputs : dict of str to array
        Every graph input by name, integers in range of its format.
    params : dict of str to array
        Every parameter by full name (``"fc1.weight"``), integers in range of its format.

    Returns
    -------
    dict of str to numpy.ndarray
        Every tensor (graph inputs included) by name, as integer arrays of the tensor format's
        dtype (int4 values in int8).

    Raises
    ------
    TypeError
        If ``graph`` is not a Graph, or an array does not hold integers.
    ValueError
        If an input or parameter is missing, unknown, of the wrong shape or out of range.
    """
    return _Executor(graph, inputs, params, exact=True).run()


def reference_float(graph, inputs, params):
    """Execute ``graph`` in float64, with no rounding and no saturation.

    Takes the same integer ``inputs`` and ``params`` as :func:`reference` and returns every tensor
    by name as a float64 array in the same units as the integer model.
    """
    return _Executor(graph, inputs, params, exact=False).run()


# --- metrics --------------------------------------------------------------------------------------

def sqnr_db(reference, test):
    """Signal-to-quantisation-noise ratio of ``test`` against ``reference``, in dB.

    ``10 * log10(sum(reference**2) / sum((reference - test)**2))``; ``inf`` when they are equal.
    """
    reference = np.asarray(reference, dtype=np.float64)
    test = np.asarray(test, dtype=np.float64)
    noise = float(np.sum((reference - test) ** 2))
    signal = float(np.sum(reference ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def cosine_similarity(a, b):
    """Cosine of the angle between ``a`` and ``b`` flattened; 1.0 when both are zero."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 and nb == 0.0:
        return 1.0
    if na == 0.0 or nb == 0.0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def max_abs_error(reference, test):
    """The largest absolute difference between ``reference`` and ``test``."""
    diff = np.asarray(reference, dtype=np.float64) - np.asarray(test, dtype=np.float64)
    return float(np.max(np.abs(diff))) if diff.size else 0.0


def error_report(graph, integers, floats):
    """Quantisation error of every operator output.

    Parameters
    ----------
    graph : Graph
    integers, floats : dict
        Results of :func:`reference` and :func:`reference_float`.

    Returns
    -------
    dict of str to dict
        Per operator name: ``sqnr_db``, ``cosine`` and ``max_abs_error`` of the integer result
        against the float result.
    """
    report = {}
    for op in graph.ops:
        exact, approx = floats[op.name], integers[op.name]
        report[op.name] = {"sqnr_db": sqnr_db(exact, approx),
                           "cosine": cosine_similarity(exact, approx),
                           "max_abs_error": max_abs_error(exact, approx)}
    return report


# --- execution ------------------------------------------------------------------------------------

def _heads_a(a, h):
    # (H, M, K) from a 3-D operand or a 2-D (M, H * K) one.
    return a if a.ndim == 3 else a.reshape(a.shape[0], h, -1).transpose(1, 0, 2)


class _Executor:
    def __init__(self, graph, inputs, params, exact):
        if not isinstance(graph, Graph):
            raise TypeError(f"Graph must be a Graph, not {graph!r}")
        self.graph = graph
        self.exact = exact
        self.inputs = graph.checked_inputs(inputs)
        self.params = graph.checked_parameters(params)

    def run(self):
        values = {}
        for name, array in self.inputs.items():
            fmt = self.graph.tensors[name].fmt
            values[name] = array.astype(fmt.dtype) if self.exact else array.astype(np.float64)
        for op in self.graph.ops:
            args = [values[t.name] for t in op.inputs]
            result = getattr(self, f"_{op.kind.value}")(op, *args)
            if self.exact:
                result = np.asarray(result, dtype=op.output.fmt.dtype)
            values[op.name] = result
        return values

    # --- helpers ---

    def _param(self, op, key, dtype=np.float64):
        return self.params[f"{op.name}.{key}"].astype(dtype)

    def _finish(self, op, acc):
        """Add the bias (accumulator units) and requantise (integers) or scale (floats)."""
        if op.has_bias:
            bias = self._param(op, "bias")
            acc = acc + bias.reshape((-1,) + (1,) * (acc.ndim - 2 if op.kind in (
                OpKind.CONV2D, OpKind.CONV_TRANSPOSE2D) else 0))
        return self._scale(op, acc, op.shift)

    def _scale(self, op, acc, shift):
        if self.exact:
            return numerics.requantize(np.asarray(acc).astype(np.int64), shift, op.output.fmt)
        return acc * 2.0 ** -shift

    def _matmul_exact(self, a, b, bound):
        """``a @ b`` of integer-valued arrays; float64 BLAS when exact, int64 otherwise."""
        if not self.exact or bound < _EXACT:
            return np.matmul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        return np.matmul(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))

    def _check_float_exact(self, op):
        # Convolutions always sum in float64; no shipped format comes near the limit.
        if self.exact and self._bound(op) >= _EXACT:
            raise ValueError(f"{op.label} {op.name!r} accumulator {op.acc_fmt.name} is too wide "
                             f"for the golden model's float64 sums (at most int53)")

    @staticmethod
    def _bound(op):
        # Every partial sum of products (and the bias) is below 2**(acc_bits - 1).
        return 1 << (op.acc_fmt.bits - 1)

    # --- reducing operators ---

    def _linear(self, op, x):
        w = self._param(op, "weight")
        return self._finish(op, self._matmul_exact(x, w.T, self._bound(op)))

    def _matmul(self, op, a, b):
        h, m, k, n = op.gemm
        a3 = _heads_a(a, h)
        if op.transpose_b:
            b3 = _heads_a(b, h).transpose(0, 2, 1)
        else:
            b3 = b if b.ndim == 3 else b.reshape(b.shape[0], h, -1).transpose(1, 0, 2)
        out = self._matmul_exact(a3, b3, self._bound(op))
        if op.merge_heads:
            out = out.transpose(1, 0, 2).reshape(m, h * n)
        elif op.output.ndim == 2:
            out = out[0]
        return self._scale(op, out, op.shift)

    def _conv2d(self, op, x):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (op.kernel_size, op.stride, op.padding,
                                                  op.dilation)
        n, c, ho, wo = op.output.shape[0], op.in_channels, *op.output.shape[2:]
        w = self._param(op, "weight").reshape(op.out_channels, -1)  # (Co, C * kh * kw)
        xp = np.pad(np.asarray(x, dtype=np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        windows = np.lib.stride_tricks.sliding_window_view(
            xp, (dh * (kh - 1) + 1, dw * (kw - 1) + 1), axis=(2, 3))[..., ::dh, ::dw]
        self._check_float_exact(op)
        out = np.empty((n, op.out_channels, ho, wo), dtype=np.float64)
        rows = max(1, _PATCH_ELEMENTS // max(1, n * c * kh * kw * wo))
        bound = self._bound(op)
        for start in range(0, ho, rows):
            stop = min(ho, start + rows)
            patch = windows[:, :, start * sh:(stop - 1) * sh + 1:sh, :(wo - 1) * sw + 1:sw]
            # (N, C, r, Wo, kh, kw) -> (N, r, Wo, C * kh * kw)
            cols = patch.transpose(0, 2, 3, 1, 4, 5).reshape(n, stop - start, wo, -1)
            out[:, :, start:stop] = self._matmul_exact(cols, w.T, bound).transpose(0, 3, 1, 2)
        return self._finish(op, out)

    def _conv_transpose2d(self, op, x):
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (op.kernel_size, op.stride, op.padding,
                                                  op.dilation)
        n, ci, h, w_ = x.shape
        co, ho, wo = op.out_channels, *op.output.shape[2:]
        weight = self._param(op, "weight").reshape(ci, -1)  # (Ci, Co * kh * kw)
        cols = np.matmul(np.asarray(x, dtype=np.float64).transpose(0, 2, 3, 1), weight)
        cols = cols.reshape(n, h, w_, co, kh, kw)
        full_h = max((h - 1) * sh + dh * (kh - 1) + 1, ph + ho)
        full_w = max((w_ - 1) * sw + dw * (kw - 1) + 1, pw + wo)
        # Each tap adds one product per output, so every partial sum is a sum of at most
        # ``reduction`` products, exact in float64 under the accumulator bound.
        self._check_float_exact(op)
        buf = np.zeros((n, co, full_h, full_w), dtype=np.float64)
        for i in range(kh):
            for j in range(kw):
                buf[:, :, i * dh:i * dh + (h - 1) * sh + 1:sh,
                    j * dw:j * dw + (w_ - 1) * sw + 1:sw] += cols[..., i, j].transpose(0, 3, 1, 2)
        return self._finish(op, buf[:, :, ph:ph + ho, pw:pw + wo])

    # --- elementwise and nonlinear operators ---

    def _relu(self, op, x):
        return np.maximum(x, 0).astype(x.dtype)

    def _gelu(self, op, x):
        if self.exact:
            return numerics.gelu(x, op.output.fmt, op.frac, op.approximate)
        return numerics.gelu_float(x * 2.0 ** -op.frac, op.approximate) * 2.0 ** op.frac

    def _silu(self, op, x):
        if self.exact:
            return numerics.silu(x, op.output.fmt, op.frac)
        return numerics.silu_float(x * 2.0 ** -op.frac) * 2.0 ** op.frac

    def _softmax(self, op, x):
        if self.exact:
            return numerics.softmax(x, op.output.fmt, op.frac, op.causal)
        z = x * 2.0 ** -op.frac
        if op.causal:
            rows, cols = z.shape[-2:]
            z = np.where(np.arange(cols)[None, :] > np.arange(rows)[:, None], -np.inf, z)
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True) * 2.0 ** op.out_frac

    def _layernorm(self, op, x):
        if self.exact:
            return numerics.layernorm(x, self._param(op, "weight", np.int64),
                                      self._param(op, "bias", np.int64), op.output.fmt,
                                      frac=op.frac, out_frac=op.out_frac,
                                      weight_frac=op.weight_frac, eps=op.eps)
        z = x * 2.0 ** -op.frac
        mean = z.mean(axis=-1, keepdims=True)
        var = ((z - mean) ** 2).mean(axis=-1, keepdims=True)
        gamma = self._param(op, "weight") * 2.0 ** -op.weight_frac
        beta = self._param(op, "bias") * 2.0 ** -(numerics.LN_FRAC + op.weight_frac)
        return ((z - mean) / np.sqrt(var + op.eps) * gamma + beta) * 2.0 ** op.out_frac

    def _add(self, op, a, b):
        if self.exact:
            return numerics.requantize(a.astype(np.int64) + b, 0, op.output.fmt)
        return a + b

    def _mul(self, op, a, b):
        if self.exact:
            return numerics.requantize(a.astype(np.int64) * b, op.shift, op.output.fmt)
        return a * b * 2.0 ** -op.shift

    def _upsample(self, op, x):
        fh, fw = op.factor
        return np.repeat(np.repeat(x, fh, axis=2), fw, axis=3)

    def _maxpool(self, op, x):
        (kh, kw), (sh, sw), (ph, pw) = op.kernel_size, op.stride, op.padding
        fill = op.output.fmt.lo if self.exact else -np.inf
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
        windows = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))
        ho, wo = op.output.shape[2:]
        windows = windows[:, :, :(ho - 1) * sh + 1:sh, :(wo - 1) * sw + 1:sw]
        return windows.max(axis=(4, 5))

    def _requant(self, op, x):
        return self._scale(op, x, op.shift)
