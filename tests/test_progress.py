import io
import time

from intar_hw.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_quiet_unless_a_terminal():
    stream = io.StringIO()
    with Progress("simulate", 100, "cycles", stream=stream, interval=0) as status:
        status.update(50)
        with status.phase("building"):
            pass
    assert stream.getvalue() == ""


def test_quiet_when_disabled():
    stream = Terminal()
    with Progress("simulate", 100, stream=stream, interval=0, enabled=False) as status:
        status.update(50)
    assert stream.getvalue() == ""


def test_a_line_rewritten_then_cleared():
    stream = Terminal()
    with Progress("simulate", 7681, "cycles", stream=stream, interval=0) as status:
        status.update(1200)
        status.update(7680)
    text = stream.getvalue()
    first, second, cleared, end = text.split("\r")[1:]
    assert first.startswith("simulate: 1,200 / 7,681 cycles (16%), ")
    assert second.startswith("simulate: 7,680 / 7,681 cycles (100%), ")
    assert cleared.strip() == "" and end == ""


def test_updates_are_rate_limited():
    stream = Terminal()
    status = Progress("x", 10, stream=stream, interval=3600)
    for done in range(10):
        status.update(done)
    assert stream.getvalue() == ""


def test_a_phase_ticks_while_it_lasts():
    stream = Terminal()
    with Progress("verilator", stream=stream, interval=0.01) as status:
        with status.phase("building the model"):
            time.sleep(0.1)
    lines = stream.getvalue().split("\r")
    assert lines[1].strip() == "verilator: building the model"
    assert any(line.startswith("verilator: building the model, ") and line.rstrip().endswith(" s")
               for line in lines[2:])
