"""The computing core: PE array, scratchpads, operand fetch and result path, per-stage programs."""

from .program import (Source, Destination, GemmProgram, Join, SoftmaxLink, OperandRead,
                      result_bits, memory_lanes, memory_words, memory_images)
from .operand_fetch import OperandFetch
from .result_path import ResultPath
from .core import ComputingCore, result_word


__all__ = ["Source", "Destination", "GemmProgram", "Join", "SoftmaxLink", "OperandRead",
           "result_bits", "memory_lanes", "memory_words", "memory_images", "OperandFetch",
           "ResultPath", "ComputingCore", "result_word"]
