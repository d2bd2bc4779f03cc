# amaranth: UnusedElaboratable=no
from pathlib import Path

from intar_hw.flow.cocotb_runner import run_cocotb
from intar_hw.hw.queue import Queue
from intar_hw.testbench import seeded


def test_queue_verilog_under_icarus(tmp_path):
    rng = seeded(3)
    beats = [rng.randrange(256) for _ in range(100)]
    run_cocotb(Queue(8, 4), toplevel="queue", test_module="stream_cocotb",
               test_dir=Path(__file__).parent, build_dir=tmp_path,
               parameters={"beats": beats, "expected": list(beats), "seed": 3})
