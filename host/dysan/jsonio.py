"""JSON of results that hold numpy scalars and arrays or paths: one encoder for every writer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def default(o: Any) -> Any:
    """``json.dumps(default=...)``: numpy integers/floats/arrays and paths as plain JSON values."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def dumps(obj: Any, indent: int = 2) -> str:
    """``obj`` as JSON text ending in a newline."""
    return json.dumps(obj, indent=indent, default=default) + "\n"
