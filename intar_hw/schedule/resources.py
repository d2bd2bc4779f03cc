"""Resource budgets: computing cores, PE arrays, scratchpads, off-chip memory and FIFOs.

A :class:`Resources` is the one immutable, validated description of what an accelerator may use.
The scheduler never exceeds it, the cost model reads its rates from it, and the hardware generator
sizes its blocks from it. It imports no Amaranth.

Budgets of the paper's kernels
------------------------------
The ``paper_*`` presets follow the InTAR designs of the paper (int16, Alveo U280, batch 1): the
MAC count is the paper's, the PE-array shape is ours, chosen to suit the kernel's GEMM geometry.

``paper_mlp``: 2 x (1, 16, 1) = 32 MACs, 64 KiB each
    One input vector (M = 1): a one-row array wastes nothing, and 16 outputs per tile give the
    paper's rank-16 updates when fc2 streams into fc3.
``paper_self_attention``: 2 x (4, 4, 1) = 32 MACs, 512 KiB each
    M = 256 rows: a square tile; two of X, Q, K, V (512 KiB each at int16) fit at a time.
``paper_cnn4l``: 3 x (1, 16, 9) = 432 MACs, 256 KiB each
    One channel, 3x3 windows: 16 pixels on d2 (a tile drains as one row) by 9 taps. The 768 KiB
    hold conv3's pooled output (392 KiB at int16) but not conv2's upsampled output (1.53 MiB),
    like the paper's central memory.
``paper_vae``: (1, 1, 64) + (1, 1, 16) = 80 MACs, 64 KiB each
    The paper's 64-tap (8x8 kernel) and 16-tap (4x4 kernel) cores.
``paper_gating_net``: 3 x (1, 32, 1) = 96 MACs, 512 KiB each
    B = 32 rows on d2 and one output column on d1: a tile drains in one cycle, so down_proj can
    take rank-1 updates as up and gate emit columns.
``paper_gpt2_medium``: 2 x (8, 16, 4) = 1024 MACs, 1 MiB each
    Our choice: the paper gives no DSP count; W4A8 packs two int4 MACs per DSP.

Off-chip memory is HBM-like for all of them: 64 bytes per cycle (two 256-bit HBM pseudo-channels
at the fabric clock, a fraction of the U280's 32) with a 100-cycle read latency (~400 ns at
250 MHz), and the clock is taken as 250 MHz to convert cycles to milliseconds (the paper does not
give a clock per kernel). The same budget serves all three policies.

Small FPGAs
-----------
``ecp5_85k`` models a Lattice ECP5-85F: 156 18x18 multipliers make 2 cores of 64 MACs (one
multiplier per int8 or int16 MAC); 208 x 18-kbit block RAM (468 KiB) gives 2 x 192 KiB of
scratchpad and 48 KiB of FIFOs, leaving 36 KiB for weight and SFU buffers; a 16-bit SDRAM at the
fabric clock moves about 2 bytes per cycle, with a ~20-cycle read latency; 100 MHz. The
``ecp5_<model>`` presets are the same chip with PE shapes suited to each shipped model.
``ice40_up5k`` models a Lattice iCE40 UP5K: 8 SB_MAC16 make 2 cores of 4 MACs; 128 KiB of SPRAM
gives 2 x 56 KiB of scratchpad and the 15 KiB of EBR 8 KiB of FIFOs; a quad-SPI PSRAM moves half
a byte per cycle with a ~32-cycle latency; 24 MHz. These presets name their device
(:attr:`Resources.device`), so a budget changed past what the chip holds is refused.
"""

import importlib
import math
import numbers

from ..integers import is_int


__all__ = ["Resources", "PRESETS", "MAX_MACS"]


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


#: The most MACs a budget may have: an Alveo U280's 9,024 DSP slices at two int8 MACs each, the
#: largest device of the paper's class. A budget beyond it is a typo, not an FPGA.
MAX_MACS = 18_048


def _check_shape(value, what):
    if (not isinstance(value, (tuple, list)) or len(value) not in (2, 3)
            or not all(is_int(d) for d in value)):
        raise TypeError(f"{what} must be a tuple of 2 or 3 integers (d1, d2[, d3]), "
                        f"not {value!r}")
    if not all(d >= 1 for d in value):
        raise ValueError(f"{what} must have dimensions of at least 1, not {tuple(value)!r}")
    return tuple(int(d) for d in value) + ((1,) if len(value) == 2 else ())


class Resources:
    """An accelerator's resource budget.

    Parameters
    ----------
    ccs : int
        Number of computing cores (CCs), at least 1.
    pea : tuple of int, or sequence of tuples
        PE-array shape ``(d1, d2)`` or ``(d1, d2, d3)`` of every CC (``d3`` defaults to 1), or one
        shape per CC (heterogeneous cores, e.g. ``((1, 1, 64), (1, 1, 16))``). Each beat feeds
        ``d1`` A-vectors and ``d2`` B-vectors of ``d3`` elements: ``d1 * d2 * d3`` MACs per cycle.
    scratchpad_kib : int or float
        Scratchpad per CC in KiB (rounded to whole bytes), more than 0.
    scratchpad_ports : int
        Read ports of each CC's scratchpad, 1 to 4 (each also has one write port; reads and writes
        never conflict).
    offchip_bytes_per_cycle : int or float
        Off-chip bandwidth shared by reads and writes, more than 0.
    offchip_latency : int
        Cycles from an off-chip read request to its first data, at least 0.
    fifo_kib : int or float or None
        Memory reserved for pipeline FIFOs and buffers (line buffers, row blocks, accumulators),
        in KiB; ``None`` (the default) draws them from the scratchpads.
    clock_mhz : int or float or None
        Clock used only to print milliseconds next to cycles.
    device : str or None
        The FPGA the accelerator is for (a name of :data:`intar_hw.flow.devices.DEVICES`, such
        as ``"ecp5-85k"``), or ``None``. The budget must fit it: one multiplier per MAC, the
        scratchpads and FIFOs in its memory blocks. ``intar synth`` targets it by default.
    name : str or None
        A label (presets set it).

    Attributes
    ----------
    pea : tuple of (int, int, int)
        Shape of each CC's PE array, one entry per CC.
    cc_macs : tuple of int
        MACs per cycle of each CC.
    macs_per_cycle : int
        Sum of ``cc_macs``.
    scratchpad_bytes : int
        Scratchpad per CC.
    total_scratchpad_bytes : int
        ``ccs * scratchpad_bytes``: results are redistributed between the CCs' scratchpads, so the
        scheduler pools them.
    fifo_bytes : int
        FIFO budget in bytes (0 when none was given).
    homogeneous : bool
        Whether every CC has the same shape.

    Raises
    ------
    TypeError
        For a parameter of the wrong type.
    ValueError
        For a parameter out of range, one shape per CC whose count is not ``ccs``, or a budget
        larger than its ``device``.
    """

    __slots__ = ("_ccs", "_pea", "_scratchpad_bytes", "_scratchpad_ports", "_offchip_bpc",
                 "_offchip_latency", "_fifo_bytes", "_clock_mhz", "_device", "_name")

    def __init__(self, *, ccs=2, pea=(4, 4), scratchpad_kib=64, scratchpad_ports=2,
                 offchip_bytes_per_cycle=8, offchip_latency=100, fifo_kib=None, clock_mhz=None,
                 device=None, name=None):
        if not is_int(ccs):
            raise TypeError(f"Number of CCs must be an integer, not {ccs!r}")
        if ccs < 1:
            raise ValueError(f"Number of CCs must be at least 1, not {ccs!r}")
        if (isinstance(pea, (tuple, list)) and len(pea) > 0
                and all(isinstance(p, (tuple, list)) for p in pea)):
            shapes = tuple(_check_shape(p, "PE array shape") for p in pea)
            if len(shapes) != ccs:
                raise ValueError(f"PE array shapes must be one per CC ({ccs}), not {len(shapes)}")
        else:
            shapes = (_check_shape(pea, "PE array shape"),) * ccs
        if not _is_number(scratchpad_kib):
            raise TypeError(f"Scratchpad size must be a number of KiB, not {scratchpad_kib!r}")
        if not (scratchpad_kib > 0 and math.isfinite(scratchpad_kib)) \
                or round(scratchpad_kib * 1024) < 1:
            raise ValueError(f"Scratchpad size must be a positive number of KiB, "
                             f"not {scratchpad_kib!r}")
        if not is_int(scratchpad_ports):
            raise TypeError(f"Scratchpad ports must be an integer, not {scratchpad_ports!r}")
        if not 1 <= scratchpad_ports <= 4:
            raise ValueError(f"Scratchpad ports must be between 1 and 4, not {scratchpad_ports!r}")
        if not _is_number(offchip_bytes_per_cycle):
            raise TypeError(f"Off-chip bandwidth must be a number of bytes per cycle, "
                            f"not {offchip_bytes_per_cycle!r}")
        if not (offchip_bytes_per_cycle > 0 and math.isfinite(offchip_bytes_per_cycle)):
            raise ValueError(f"Off-chip bandwidth must be positive, "
                             f"not {offchip_bytes_per_cycle!r}")
        if not is_int(offchip_latency):
            raise TypeError(f"Off-chip latency must be an integer number of cycles, "
                            f"not {offchip_latency!r}")
        if offchip_latency < 0:
            raise ValueError(f"Off-chip latency must be at least 0, not {offchip_latency!r}")
        if fifo_kib is not None:
            if not _is_number(fifo_kib):
                raise TypeError(f"FIFO budget must be a number of KiB or None, not {fifo_kib!r}")
            if not (fifo_kib >= 0 and math.isfinite(fifo_kib)):
                raise ValueError(f"FIFO budget must be at least 0 KiB, not {fifo_kib!r}")
        if clock_mhz is not None:
            if not _is_number(clock_mhz):
                raise TypeError(f"Clock must be a number of MHz or None, not {clock_mhz!r}")
            if not (clock_mhz > 0 and math.isfinite(clock_mhz)):
                raise ValueError(f"Clock must be positive, not {clock_mhz!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"Budget name must be a string or None, not {name!r}")
        macs = sum(d1 * d2 * d3 for d1, d2, d3 in shapes)
        if macs > MAX_MACS:
            raise ValueError(f"PE arrays (pea) of {macs:,} MACs in all exceed any FPGA this tool "
                             f"targets (at most {MAX_MACS:,}: an Alveo U280's DSPs at two int8 "
                             f"MACs each)")
        self._ccs = int(ccs)
        self._pea = shapes
        self._scratchpad_bytes = int(round(scratchpad_kib * 1024))
        self._scratchpad_ports = int(scratchpad_ports)
        self._offchip_bpc = offchip_bytes_per_cycle
        self._offchip_latency = int(offchip_latency)
        self._fifo_bytes = None if fifo_kib is None else int(round(fifo_kib * 1024))
        self._clock_mhz = clock_mhz
        self._device = device
        self._name = name
        if device is not None:
            self._check_device()

    def _check_device(self):
        from ..flow.devices import DEVICES
        device = self._device
        if not isinstance(device, str):
            raise TypeError(f"Budget device must be a device name or None, not {device!r}")
        if device not in DEVICES:
            raise ValueError(f"Budget device must be one of {', '.join(DEVICES)}, "
                             f"not {device!r}")
        chip = DEVICES[device]
        if self.macs_per_cycle > chip.capacity["dsp"]:
            raise ValueError(f"PE arrays of {self.macs_per_cycle} MACs do not fit {device}: it "
                             f"has {chip.capacity['dsp']} multipliers (one per MAC)")
        memory = self.total_scratchpad_bytes + self.fifo_bytes
        if memory > chip.memory_bytes:
            raise ValueError(f"Scratchpads and FIFOs of {memory / 1024:g} KiB do not fit "
                             f"{device}: its memory blocks hold {chip.memory_bytes / 1024:g} KiB")

    # --- parameters ---------------------------------------------------------------------------

    @property
    def ccs(self):
        return self._ccs

    @property
    def pea(self):
        return self._pea

    @property
    def scratchpad_bytes(self):
        return self._scratchpad_bytes

    @property
    def scratchpad_kib(self):
        return self._scratchpad_bytes / 1024

    @property
    def scratchpad_ports(self):
        return self._scratchpad_ports

    @property
    def offchip_bytes_per_cycle(self):
        return self._offchip_bpc

    @property
    def offchip_latency(self):
        return self._offchip_latency

    @property
    def fifo_bytes(self):
        return self._fifo_bytes or 0

    @property
    def clock_mhz(self):
        return self._clock_mhz

    @property
    def device(self):
        return self._device

    @property
    def name(self):
        return self._name

    # --- derived ------------------------------------------------------------------------------

    @property
    def cc_macs(self):
        return tuple(d1 * d2 * d3 for d1, d2, d3 in self._pea)

    @property
    def macs_per_cycle(self):
        return sum(self.cc_macs)

    @property
    def total_scratchpad_bytes(self):
        return self._ccs * self._scratchpad_bytes

    @property
    def homogeneous(self):
        return len(set(self._pea)) == 1

    # --- construction helpers -----------------------------------------------------------------

    def _kwargs(self):
        homogeneous = self.homogeneous
        return {
            "ccs": self._ccs,
            "pea": self._pea[0] if homogeneous else self._pea,
            "scratchpad_kib": self._scratchpad_bytes / 1024,
            "scratchpad_ports": self._scratchpad_ports,
            "offchip_bytes_per_cycle": self._offchip_bpc,
            "offchip_latency": self._offchip_latency,
            "fifo_kib": None if self._fifo_bytes is None else self._fifo_bytes / 1024,
            "clock_mhz": self._clock_mhz,
            "device": self._device,
            "name": self._name,
        }

    def replace(self, **changes):
        """A copy with some parameters changed (keywords as for the constructor).

        Changing ``ccs`` of a homogeneous budget keeps the shape; the name is dropped unless given.
        """
        kwargs = self._kwargs()
        kwargs["name"] = None
        if "ccs" in changes and "pea" not in changes and not self.homogeneous:
            raise ValueError("Changing the CC count of a heterogeneous budget needs one PE array "
                             "shape per CC")
        kwargs.update(changes)
        return Resources(**kwargs)

    def to_dict(self):
        """Plain data for JSON: the constructor's keywords (shapes as lists)."""
        kwargs = self._kwargs()
        pea = kwargs["pea"]
        kwargs["pea"] = ([list(p) for p in pea] if isinstance(pea[0], tuple) else list(pea))
        return kwargs

    @classmethod
    def from_dict(cls, data):
        """The inverse of :meth:`to_dict`."""
        if not isinstance(data, dict):
            raise TypeError(f"Resources data must be a dict, not {data!r}")
        kwargs = dict(data)
        pea = kwargs.get("pea")
        if isinstance(pea, list):
            kwargs["pea"] = (tuple(tuple(p) for p in pea) if pea and isinstance(pea[0], list)
                             else tuple(pea))
        return cls(**kwargs)

    # --- presets ------------------------------------------------------------------------------

    @classmethod
    def preset(cls, name):
        """The named preset budget (see :data:`PRESETS` and the module documentation).

        Raises
        ------
        ValueError
            If no preset has that name.
        """
        if not isinstance(name, str):
            raise TypeError(f"Preset name must be a string, not {name!r}")
        if name not in PRESETS:
            raise ValueError(f"Unknown resource preset {name!r}; known: "
                             f"{', '.join(sorted(PRESETS))}")
        return cls(name=name, **PRESETS[name])

    @staticmethod
    def presets():
        """Names of all presets, sorted."""
        return sorted(PRESETS)

    @classmethod
    def for_model(cls, model, scale="paper"):
        """The default budget of a shipped model at a scale.

        A model file ``schedules/<model>.py`` that defines ``resources(scale)`` decides; otherwise
        ``paper`` scale takes ``paper_<model>`` and smaller scales take ``ecp5_<model>`` (the
        ECP5-85F with PE shapes suited to the model), falling back to ``ecp5_85k``.
        """
        if not isinstance(model, str):
            raise TypeError(f"Model name must be a string, not {model!r}")
        try:
            module = importlib.import_module(f"schedules.{model}")
        except ImportError:
            module = None
        function = getattr(module, "resources", None)
        if callable(function):
            budget = function(scale)
            if not isinstance(budget, Resources):
                raise TypeError(f"schedules.{model}.resources({scale!r}) must return Resources, "
                                f"not {budget!r}")
            return budget
        if scale == "paper" and f"paper_{model}" in PRESETS:
            return cls.preset(f"paper_{model}")
        if f"ecp5_{model}" in PRESETS:
            return cls.preset(f"ecp5_{model}")
        return cls.preset("ecp5_85k")

    # --- comparison and display ---------------------------------------------------------------

    def _key(self):
        return (self._ccs, self._pea, self._scratchpad_bytes, self._scratchpad_ports,
                self._offchip_bpc, self._offchip_latency, self._fifo_bytes, self._clock_mhz,
                self._device)

    def __eq__(self, other):
        if not isinstance(other, Resources):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        kwargs = self._kwargs()
        text = ", ".join(f"{k}={v!r}" for k, v in kwargs.items()
                         if v is not None or k in ("ccs", "pea"))
        return f"Resources({text})"

    def describe(self):
        """One line for tables: cores, MACs, memory and off-chip rate."""
        if self.homogeneous:
            cores = f"{self._ccs} x {'x'.join(map(str, self._pea[0]))}"
        else:
            cores = " + ".join("x".join(map(str, p)) for p in self._pea)
        text = (f"{cores} PEs ({self.macs_per_cycle} MACs/cycle), "
                f"{self.scratchpad_kib:g} KiB scratchpad per CC, "
                f"off-chip {self._offchip_bpc:g} B/cycle + {self._offchip_latency} cycles")
        if self._fifo_bytes:
            text += f", {self._fifo_bytes / 1024:g} KiB FIFOs"
        if self._device:
            text += f", on {self._device}"
        return text


_HBM = {"offchip_bytes_per_cycle": 64, "offchip_latency": 100, "clock_mhz": 250}
_ECP5 = {"ccs": 2, "scratchpad_kib": 192, "fifo_kib": 48, "offchip_bytes_per_cycle": 2,
         "offchip_latency": 20, "clock_mhz": 100, "device": "ecp5-85k"}

#: Keyword arguments of every named budget; :meth:`Resources.preset` builds them.
PRESETS = {
    "paper_mlp": dict(ccs=2, pea=(1, 16, 1), scratchpad_kib=64, **_HBM),
    "paper_self_attention": dict(ccs=2, pea=(4, 4, 1), scratchpad_kib=512, **_HBM),
    "paper_cnn4l": dict(ccs=3, pea=(1, 16, 9), scratchpad_kib=256, **_HBM),
    "paper_vae": dict(ccs=2, pea=((1, 1, 64), (1, 1, 16)), scratchpad_kib=64, **_HBM),
    "paper_gating_net": dict(ccs=3, pea=(1, 32, 1), scratchpad_kib=512, **_HBM),
    "paper_gpt2_medium": dict(ccs=2, pea=(8, 16, 4), scratchpad_kib=1024, **_HBM),
    "ecp5_85k": dict(pea=(4, 4, 4), **_ECP5),
    "ecp5_mlp": dict(pea=(1, 64, 1), **_ECP5),
    "ecp5_self_attention": dict(pea=(8, 8, 1), **_ECP5),
    "ecp5_cnn4l": dict(pea=(1, 7, 9), **_ECP5),
    "ecp5_vae": dict(pea=((1, 1, 64), (1, 1, 64)), **_ECP5),
    "ecp5_gating_net": dict(pea=(8, 8, 1), **_ECP5),
    "ecp5_gpt2_medium": dict(pea=(4, 4, 4), **_ECP5),
    "ice40_up5k": dict(ccs=2, pea=(2, 2, 1), scratchpad_kib=56, fifo_kib=8,
                       offchip_bytes_per_cycle=0.5, offchip_latency=32, clock_mhz=24,
                       device="ice40-up5k"),
}
