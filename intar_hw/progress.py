"""Status of long work on a terminal: ``intar sim: 1,200 / 7,677 cycles (16%), 12 s``.

A :class:`Progress` rewrites one line on its stream (standard error by default) at most every
``interval`` seconds, and clears it when the work ends. It writes nothing unless the stream is a
terminal, so pipes, files, ``--json`` runs and test captures stay clean; callers that must stay
quiet (``--json``) pass ``enabled=False``.
"""

import sys
import threading
import time
from contextlib import contextmanager


__all__ = ["Progress"]


class Progress:
    """One status line for work of ``total`` units (``None``: unknown, only the time shows).

    Use as a context manager; call :meth:`update` with the units done so far (cheap when
    nothing is due).
    """

    def __init__(self, label, total=None, unit="", *, stream=None, interval=0.5, enabled=True):
        if not isinstance(label, str):
            raise TypeError(f"Progress label must be a string, not {label!r}")
        self.label, self.total, self.unit = label, total, unit
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled) and callable(isatty) and isatty()
        self.interval = interval
        self.began = time.monotonic()
        self._due = self.began + interval
        self._width = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def update(self, done=None):
        """Show ``done`` units (or only the elapsed time) if ``interval`` has passed."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now < self._due:
            return
        self._due = now + self.interval
        self._write(self.text(done, now - self.began))

    def text(self, done, seconds):
        """The status line for ``done`` units after ``seconds``."""
        parts = [f"{self.label}:"]
        if done is not None:
            unit = f" {self.unit}" if self.unit else ""
            if self.total:
                parts.append(f"{done:,} / {self.total:,}{unit} ({100 * done / self.total:.0f}%),")
            else:
                parts.append(f"{done:,}{unit},")
        parts.append(f"{seconds:.0f} s")
        return " ".join(parts)

    def _write(self, line):
        pad = max(0, self._width - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._width = len(line)

    @contextmanager
    def phase(self, what):
        """While the ``with`` body runs (a build, a tool), show ``what`` and its elapsed time,
        refreshed from a background thread every ``interval`` seconds."""
        if not self.enabled:
            yield self
            return
        began, stop = time.monotonic(), threading.Event()
        lock = threading.Lock()

        def tick():
            while not stop.wait(self.interval):
                with lock:
                    self._write(f"{self.label}: {what}, {time.monotonic() - began:.0f} s")

        thread = threading.Thread(target=tick, daemon=True)
        with lock:
            self._write(f"{self.label}: {what}")
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()

    def close(self):
        """Clear the status line (if one was written)."""
        if self.enabled and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0
