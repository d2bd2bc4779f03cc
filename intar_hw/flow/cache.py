"""Where the flow keeps what it builds (Verilator models, synthesis reports) between runs."""

import os
from pathlib import Path


__all__ = ["cache_root"]


def cache_root():
    """``$INTAR_HW_CACHE``, else ``$XDG_CACHE_HOME`` (default ``~/.cache``) ``/intar-hw``."""
    root = os.environ.get("INTAR_HW_CACHE")
    if not root:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "intar-hw"
    return Path(root)
