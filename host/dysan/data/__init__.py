"""Data layer: loaders, resampling, windowing, activity maps, sensitive attributes, splits, cache."""

from __future__ import annotations

from collections.abc import Callable

from .. import contract
from . import activities as _activities
from . import attributes as _attributes
from .model import Dataset, Recording, Subject
from .sources import KINDS, load, parse_spec
from .splits import PROTOCOLS, Split, make_split
from .windows import WindowSet, make_windows

__all__ = [
    "KINDS",
    "PROTOCOLS",
    "Dataset",
    "Recording",
    "Split",
    "Subject",
    "WindowSet",
    "load",
    "make_split",
    "make_windows",
    "parse_spec",
    "prepare",
]


def prepare(
    source: str,
    activities: str = "default",
    attribute: str = "gender",
    hop: int = contract.HOP,
    progress: Callable[[int, str], None] | None = None,
) -> tuple[Dataset, WindowSet]:
    """Load a source and cut it into labelled windows (the usual first step of every command)."""
    ds = load(source, progress=progress)
    amap = _activities.resolve(activities, ds.kind, {r.activity for r in ds.recordings})
    attr = _attributes.parse(attribute)
    ws = make_windows(ds, amap, attr, hop=hop)
    ws.meta["activity_map"] = amap.to_dict()
    ws.meta["skipped"] = dict(ds.skipped)
    return ds, ws
