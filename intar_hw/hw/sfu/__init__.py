"""Special-function units: stream in, stream out, bit-exact with :mod:`intar_hw.numerics`."""
