"""Reusable Amaranth blocks. They know nothing of any model or schedule."""

from .address_generator import AddressGenerator, AddressLayout
from .core import ComputingCore, GemmProgram
from .line_buffer import LineBuffer
from .mac_array import MACArray, MACBeatLayout
from .offchip import OffchipPort
from .queue import Queue
from .scratchpad import Scratchpad


__all__ = ["AddressGenerator", "AddressLayout", "ComputingCore", "GemmProgram", "LineBuffer",
           "MACArray", "MACBeatLayout", "OffchipPort", "Queue", "Scratchpad"]
