"""Special-function units: stream in, stream out, bit-exact with :mod:`intar_hw.numerics`."""

from .elementwise import ACTIVATIONS, Activation, Add, Mul, Requantize
from .layouts import VectorLayout


__all__ = ["ACTIVATIONS", "Activation", "Add", "Mul", "Requantize", "VectorLayout"]
