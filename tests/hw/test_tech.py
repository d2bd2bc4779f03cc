# amaranth: UnusedElaboratable=no
"""The technology layer: targets, and the primitives blocks instantiate for them (their
behaviour is checked in simulation by sim/test_mac_array_verilog.py and
sim/test_accelerator_verilog.py, against sim/models/)."""

import re

import pytest
from amaranth import Module, Signal, signed

import intar_hw as ih
from intar_hw.hw.mac_array import MACArray
from intar_hw.hw.tech import Target, ecp5_multiplier, family_of


def test_family_of_a_platform():
    assert family_of(None) is None
    assert family_of(Target("ecp5")) == "ecp5"
    assert family_of(Target("ice40")) == "ice40"

    class Other:
        family = "xc7"
    assert family_of(Other()) is None


def test_target_names_a_known_family():
    with pytest.raises(ValueError, match=r"^Device family must be one of ecp5, ice40, not 'xc7'$"):
        Target("xc7")


def test_ecp5_multiplier_takes_signed_operands_of_18_bits_at_most():
    m = Module()
    with pytest.raises(ValueError, match=r"^MULT18X18D operand a must be signed and at most 18 "
                                         r"bits, not unsigned\(8\)$"):
        ecp5_multiplier(m, "x", Signal(8), Signal(signed(8)), Signal(signed(16)), Signal())
    with pytest.raises(ValueError, match=r"^MULT18X18D operand b must be signed and at most 18 "
                                         r"bits, not signed\(19\)$"):
        ecp5_multiplier(m, "x", Signal(signed(8)), Signal(signed(19)), Signal(signed(16)),
                        Signal())


def test_mac_array_uses_one_registered_dsp_per_product_on_ecp5_only():
    portable = ih.to_verilog(MACArray(2, 3, depth=2, max_reduction=8))
    assert "MULT18X18D" not in portable
    ecp5 = ih.to_verilog(MACArray(2, 3, depth=2, max_reduction=8), platform=Target("ecp5"))
    instances = re.findall(r"^  MULT18X18D #\((.*?)\) (\w+) \(", ecp5, re.M | re.S)
    assert len(instances) == 2 * 3 * 2
    params = instances[0][0]
    for register, clock in (("INPUTA", "CLK0"), ("INPUTB", "CLK0"), ("PIPELINE", "NONE"),
                            ("OUTPUT", "CLK0")):
        assert f'.REG_{register}_CLK("{clock}")' in params
