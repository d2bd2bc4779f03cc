"""The FPGAs the synthesis flow targets: how to drive the tools for each, and what each holds.

Plain data, no Amaranth: the scheduler may read the capacities too. The capacities are the
devices' datasheet figures; the synthesis smoke test checks them against what nextpnr reports.
"""

from dataclasses import dataclass


__all__ = ["Device", "DEVICES", "device"]


@dataclass(frozen=True)
class Device:
    """One FPGA, as the open flow sees it.

    Attributes
    ----------
    name : str
        The name users type (``"ecp5-85k"``).
    family : str
        ``"ecp5"`` or ``"ice40"``: picks ``synth_<family>`` and ``yowasp-nextpnr-<family>``.
    nextpnr_args : tuple of str
        Device and package options of nextpnr.
    capacity : dict of str to int
        How many of each resource kind the device has: ``logic`` (LUT4 slots), ``ff``, ``dsp``
        (18x18 or 16x16 multipliers), ``bram`` (block RAMs), ``lutram`` (LUT RAM write ports,
        ECP5 only), ``spram`` (iCE40 UP single-port RAMs).
    bels : dict of str to str
        The nextpnr bel type counted for each resource kind of ``capacity`` (a kind without
        one, such as flip-flops on iCE40, which share the logic cells, is counted by Yosys).
    cells : dict of str to tuple of str
        The Yosys cell types counted for each resource kind in the netlist's statistics (a
        flip-flop has several types on iCE40); ``lut4`` and ``carry`` are reported from here.
    out_of_context : bool
        Whether nextpnr can place a design whose ports are not pins (``--out-of-context``).
        Without it the flow wraps the design in a shell (:mod:`.synth`) that serialises its
        ports onto three pins.
    block_bits : dict of str to int
        Bits of one block of each memory kind of ``capacity`` (``bram``, ``spram``).
    """
    name: str
    family: str
    nextpnr_args: tuple
    capacity: dict
    bels: dict
    cells: dict
    out_of_context: bool
    block_bits: dict

    @property
    def memory_bytes(self):
        """Bytes of the device's memory blocks (block RAM and single-port RAM, not LUT RAM)."""
        return sum(self.capacity[kind] * bits for kind, bits in self.block_bits.items()) // 8


_ECP5_BELS = {"logic": "TRELLIS_COMB", "ff": "TRELLIS_FF", "dsp": "MULT18X18D",
              "bram": "DP16KD", "lutram": "TRELLIS_RAMW"}
_ECP5_CELLS = {"lut4": ("LUT4",), "carry": ("CCU2C",), "ff": ("TRELLIS_FF",),
               "dsp": ("MULT18X18D",), "bram": ("DP16KD",), "lutram": ("TRELLIS_DPR16X4",)}
_ECP5_BLOCKS = {"bram": 18_432}
_ICE40_FFS = tuple(f"SB_DFF{suffix}" for suffix in (
    "", "E", "SR", "R", "SS", "S", "ESR", "ER", "ESS", "ES", "N", "NE", "NSR", "NR", "NSS", "NS",
    "NESR", "NER", "NESS", "NES"))

DEVICES = {
    "ecp5-85k": Device(
        "ecp5-85k", "ecp5", ("--85k", "--package", "CABGA381", "--speed", "6"),
        {"logic": 83_640, "ff": 83_640, "dsp": 156, "bram": 208, "lutram": 10_455},
        _ECP5_BELS, _ECP5_CELLS, True, _ECP5_BLOCKS),
    "ecp5-45k": Device(
        "ecp5-45k", "ecp5", ("--45k", "--package", "CABGA381", "--speed", "6"),
        {"logic": 43_848, "ff": 43_848, "dsp": 72, "bram": 108, "lutram": 5_481},
        _ECP5_BELS, _ECP5_CELLS, True, _ECP5_BLOCKS),
    "ecp5-25k": Device(
        "ecp5-25k", "ecp5", ("--25k", "--package", "CABGA256", "--speed", "6"),
        {"logic": 24_288, "ff": 24_288, "dsp": 28, "bram": 56, "lutram": 3_036},
        _ECP5_BELS, _ECP5_CELLS, True, _ECP5_BLOCKS),
    "ice40-up5k": Device(
        "ice40-up5k", "ice40", ("--up5k", "--package", "sg48"),
        {"logic": 5_280, "ff": 5_280, "dsp": 8, "bram": 30, "spram": 4},
        {"logic": "ICESTORM_LC", "dsp": "ICESTORM_DSP",
         "bram": "ICESTORM_RAM", "spram": "ICESTORM_SPRAM"},
        {"lut4": ("SB_LUT4",), "carry": ("SB_CARRY",), "ff": _ICE40_FFS, "dsp": ("SB_MAC16",),
         "bram": ("SB_RAM40_4K",), "spram": ("SB_SPRAM256KA",)},
        False, {"bram": 4_096, "spram": 262_144}),
}


def device(name):
    """The :class:`Device` called ``name``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no device has that name.
    """
    if isinstance(name, Device):
        return name
    if not isinstance(name, str):
        raise TypeError(f"Device must be a device name, not {name!r}")
    if name not in DEVICES:
        raise ValueError(f"Device must be one of {', '.join(DEVICES)}, not {name!r}")
    return DEVICES[name]
