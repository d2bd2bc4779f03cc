"""Special-function units: stream in, stream out, bit-exact with :mod:`intar_hw.numerics`."""

from .elementwise import ACTIVATIONS, Activation, Add, Mul, MulAdd, Requantize
from .layernorm import LayerNorm
from .layouts import VectorLayout
from .softmax import Softmax
from .window import MaxPool, Upsample


__all__ = ["ACTIVATIONS", "Activation", "Add", "LayerNorm", "MaxPool", "Mul", "MulAdd",
           "Requantize", "Softmax", "Upsample", "VectorLayout"]
