import sys
import types

import pytest

from intar_hw.schedule import Resources, PRESETS


def test_defaults_and_derived():
    r = Resources()
    assert r.ccs == 2
    assert r.pea == ((4, 4, 1), (4, 4, 1))
    assert r.cc_macs == (16, 16)
    assert r.macs_per_cycle == 32
    assert r.scratchpad_bytes == 64 * 1024
    assert r.total_scratchpad_bytes == 128 * 1024
    assert r.scratchpad_ports == 2
    assert r.offchip_bytes_per_cycle == 8
    assert r.offchip_latency == 100
    assert r.fifo_bytes == 0
    assert r.homogeneous


def test_keyword_constructor_reads_like_the_issue():
    r = Resources(ccs=2, pea=(4, 4), scratchpad_kib=64, offchip_bytes_per_cycle=8)
    assert r == Resources()
    assert hash(r) == hash(Resources())


def test_heterogeneous_cores():
    r = Resources(ccs=2, pea=((1, 1, 64), (1, 1, 16)))
    assert r.pea == ((1, 1, 64), (1, 1, 16))
    assert r.cc_macs == (64, 16)
    assert not r.homogeneous


def test_fractional_kib_and_fifo():
    r = Resources(scratchpad_kib=0.5, fifo_kib=8)
    assert r.scratchpad_bytes == 512
    assert r.fifo_bytes == 8192


@pytest.mark.parametrize("kwargs, error, message", [
    ({"ccs": 2.5}, TypeError, r"Number of CCs must be an integer, not 2\.5"),
    ({"ccs": True}, TypeError, r"Number of CCs must be an integer, not True"),
    ({"ccs": 0}, ValueError, r"Number of CCs must be at least 1, not 0"),
    ({"pea": 4}, TypeError,
     r"PE array shape must be a tuple of 2 or 3 integers \(d1, d2\[, d3\]\), not 4"),
    ({"pea": (4, 4, 4, 4)}, TypeError,
     r"PE array shape must be a tuple of 2 or 3 integers \(d1, d2\[, d3\]\), "
     r"not \(4, 4, 4, 4\)"),
    ({"pea": (4, 0)}, ValueError,
     r"PE array shape must have dimensions of at least 1, not \(4, 0\)"),
    ({"pea": ((4, 4), (4, 4), (4, 4))}, ValueError,
     r"PE array shapes must be one per CC \(2\), not 3"),
    ({"scratchpad_kib": "64"}, TypeError, r"Scratchpad size must be a number of KiB, not '64'"),
    ({"scratchpad_kib": 0}, ValueError,
     r"Scratchpad size must be a positive number of KiB, not 0"),
    ({"scratchpad_kib": float("inf")}, ValueError,
     r"Scratchpad size must be a positive number of KiB, not inf"),
    ({"scratchpad_ports": 1.0}, TypeError, r"Scratchpad ports must be an integer, not 1\.0"),
    ({"scratchpad_ports": 5}, ValueError, r"Scratchpad ports must be between 1 and 4, not 5"),
    ({"offchip_bytes_per_cycle": None}, TypeError,
     r"Off-chip bandwidth must be a number of bytes per cycle, not None"),
    ({"offchip_bytes_per_cycle": -2}, ValueError, r"Off-chip bandwidth must be positive, not -2"),
    ({"offchip_latency": 1.5}, TypeError,
     r"Off-chip latency must be an integer number of cycles, not 1\.5"),
    ({"offchip_latency": -1}, ValueError, r"Off-chip latency must be at least 0, not -1"),
    ({"fifo_kib": "8"}, TypeError, r"FIFO budget must be a number of KiB or None, not '8'"),
    ({"fifo_kib": -1}, ValueError, r"FIFO budget must be at least 0 KiB, not -1"),
    ({"clock_mhz": "fast"}, TypeError, r"Clock must be a number of MHz or None, not 'fast'"),
    ({"clock_mhz": 0}, ValueError, r"Clock must be positive, not 0"),
    ({"name": 3}, TypeError, r"Budget name must be a string or None, not 3"),
])
def test_validation(kwargs, error, message):
    with pytest.raises(error, match=f"^{message}$"):
        Resources(**kwargs)


def test_positional_arguments_are_refused():
    with pytest.raises(TypeError):
        Resources(2)


def test_immutable():
    r = Resources()
    with pytest.raises(AttributeError):
        r.ccs = 3
    with pytest.raises(AttributeError):
        r.extra = 1


def test_replace():
    r = Resources.preset("paper_cnn4l")
    s = r.replace(ccs=4)
    assert s.ccs == 4 and s.pea == ((1, 16, 9),) * 4 and s.name is None
    assert s.scratchpad_bytes == r.scratchpad_bytes
    with pytest.raises(ValueError, match=r"^Changing the CC count of a heterogeneous budget "
                                         r"needs one PE array shape per CC$"):
        Resources.preset("paper_vae").replace(ccs=3)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip(name):
    r = Resources.preset(name)
    assert r.name == name
    assert Resources.from_dict(r.to_dict()) == r


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"^Unknown resource preset 'u280'; known: "):
        Resources.preset("u280")
    with pytest.raises(TypeError, match=r"^Preset name must be a string, not 3$"):
        Resources.preset(3)


def test_paper_budgets_follow_the_paper():
    macs = {"paper_mlp": 32, "paper_self_attention": 32, "paper_cnn4l": 432, "paper_vae": 80,
            "paper_gating_net": 96}
    for name, count in macs.items():
        r = Resources.preset(name)
        assert r.macs_per_cycle == count, name
        assert r.offchip_bytes_per_cycle == 64 and r.offchip_latency == 100
    assert Resources.preset("paper_mlp").ccs == 2
    assert Resources.preset("paper_cnn4l").pea == ((1, 16, 9),) * 3
    assert Resources.preset("paper_vae").cc_macs == (64, 16)


def test_small_fpga_budgets_fit_their_chips():
    for name in [n for n in PRESETS if n.startswith("ecp5")]:
        r = Resources.preset(name)
        assert r.device == "ecp5-85k", name
        assert r.macs_per_cycle <= 156, name                        # 18x18 multipliers
        assert r.total_scratchpad_bytes + r.fifo_bytes <= 208 * 18 * 1024 // 8, name
    ice = Resources.preset("ice40_up5k")
    assert ice.device == "ice40-up5k"
    assert ice.macs_per_cycle <= 8
    assert ice.total_scratchpad_bytes <= 128 * 1024
    assert all(Resources.preset(n).device is None for n in PRESETS if n.startswith("paper"))


def test_a_budget_larger_than_its_device_is_refused():
    with pytest.raises(ValueError, match=r"^PE arrays of 192 MACs do not fit ecp5-85k: it has "
                                         r"156 multipliers \(one per MAC\)$"):
        Resources(ccs=3, pea=(8, 8, 1), device="ecp5-85k")
    with pytest.raises(ValueError, match=r"^PE arrays of 160 MACs do not fit ecp5-85k"):
        Resources.preset("ecp5_mlp").replace(pea=(1, 80, 1))
    with pytest.raises(ValueError, match=r"^Scratchpads and FIFOs of 208 KiB do not fit "
                                         r"ice40-up5k: its memory blocks hold 143 KiB$"):
        Resources(ccs=2, pea=(2, 2, 1), scratchpad_kib=100, fifo_kib=8, device="ice40-up5k")
    with pytest.raises(ValueError, match=r"^Budget device must be one of ecp5-85k, .*not 'u280'$"):
        Resources(device="u280")
    with pytest.raises(TypeError, match=r"^Budget device must be a device name or None, not 85$"):
        Resources(device=85)
    # The same arrays without a device, or on one large enough, are a budget.
    assert Resources(ccs=3, pea=(8, 8, 1)).device is None
    assert Resources(ccs=1, pea=(8, 8, 1), device="ecp5-85k").macs_per_cycle == 64


def test_for_model():
    assert Resources.for_model("mlp", "paper").name == "paper_mlp"
    assert Resources.for_model("cnn4l", "tiny").name == "ecp5_cnn4l"
    assert Resources.for_model("unknown_model", "small").name == "ecp5_85k"
    assert Resources.for_model("gpt2_medium", "paper").name == "paper_gpt2_medium"


def test_for_model_prefers_the_model_file(monkeypatch):
    module = types.ModuleType("schedules.custom_model")
    module.resources = lambda scale: Resources(ccs=1, pea=(2, 2), name=f"custom_{scale}")
    monkeypatch.setitem(sys.modules, "schedules.custom_model", module)
    assert Resources.for_model("custom_model", "small").name == "custom_small"
    module.resources = lambda scale: "nope"
    with pytest.raises(TypeError, match=r"^schedules\.custom_model\.resources\('paper'\) must "
                                        r"return Resources, not 'nope'$"):
        Resources.for_model("custom_model", "paper")


def test_describe():
    assert Resources.preset("paper_vae").describe() == (
        "1x1x64 + 1x1x16 PEs (80 MACs/cycle), 64 KiB scratchpad per CC, "
        "off-chip 64 B/cycle + 100 cycles")


@pytest.mark.parametrize("kwargs", [dict(pea=(1000, 1000, 1000)), dict(ccs=8, pea=(16, 16, 9))])
def test_a_budget_beyond_any_fpga_is_refused(kwargs):
    with pytest.raises(ValueError, match=r"^PE arrays \(pea\) of [\d,]+ MACs in all exceed any "
                                         r"FPGA this tool targets \(at most 18,048: "):
        Resources(**kwargs)
    Resources(ccs=2, pea=(8, 16, 4))           # the paper's GPT-2 budget stays
