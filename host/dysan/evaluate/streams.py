"""Each user's windows as a stream in time order, and the calibration subset of DySan(o).

**Time order.** A user's stream is their windows sorted by (recording, start sample): the recordings in the
order the loader lists them (by activity code, then trial, for SisFall), each one's windows in time. This is
the order a wearable would see if the user performed the recordings one after the other; segments of p
windows are cut along it.

**Calibration.** DySan(o) labels activities with a random forest trained on a short calibration during which
the user performs each activity. We take, for every user and every activity class, the first
``per_class = ceil(seconds · rate / hop)`` windows of that class in the user's stream (≈ ``seconds`` of that
activity; 10 s → 9 windows), but never more than half of the user's windows of that class in the stream, so
every activity is also scored (a class with a single window is not calibrated). Calibration windows — and
every window that overlaps one of them in time (same recording, starts less than a window apart), which would
share raw samples with the forest's training data — are **excluded from scoring for every strategy**, so all
strategies are compared on the same windows. The same rule is applied to the training side, so the streams
the adaptive attackers are trained on are built the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import contract
from .runs import Side


def windows_for(seconds: float) -> int:
    """Calibration windows per activity for ``seconds`` of it (hop-spaced windows)."""
    return max(1, math.ceil(seconds * contract.RATE_HZ / contract.HOP))


@dataclass
class Streams:
    """One side's users: scored windows in time order, calibration windows, the exclusion mask."""

    order: dict[int, np.ndarray]
    """User index -> indices (into the side) of the user's *scored* windows, in time order."""
    calibration: dict[int, np.ndarray]
    """User index -> indices of the user's calibration windows (time order)."""
    scored: np.ndarray
    """``(n,)`` bool: windows every strategy is scored on (not calibration, not overlapping it)."""

    @property
    def users(self) -> list[int]:
        return sorted(self.order)

    def scored_index(self) -> np.ndarray:
        return np.flatnonzero(self.scored)


def time_order(side: Side) -> np.ndarray:
    return np.lexsort((side.start, side.recording))


def build(side: Side, per_class: int) -> Streams:
    """Streams of ``side`` with ``per_class`` calibration windows per activity and user (0: none)."""
    order = time_order(side)
    excluded = np.zeros(len(side), dtype=bool)
    calibration: dict[int, np.ndarray] = {}
    for user in np.unique(side.subject):
        mine = order[side.subject[order] == user]
        cal = []
        if per_class > 0:
            for klass in np.unique(side.activity[mine]):
                of_class = mine[side.activity[mine] == klass]
                cal.extend(of_class[:min(per_class, len(of_class) // 2)].tolist())
        position = {int(i): k for k, i in enumerate(mine)}
        cal_idx = np.array(sorted(cal, key=position.__getitem__), dtype=np.int64)
        calibration[int(user)] = cal_idx
        if len(cal_idx):
            rec, st = side.recording[mine], side.start[mine]
            for c in cal_idx:
                near = (rec == side.recording[c]) & (np.abs(st - side.start[c]) < contract.WINDOW)
                excluded[mine[near]] = True
    scored = ~excluded
    streams = {int(u): order[(side.subject[order] == u) & scored[order]] for u in np.unique(side.subject)}
    return Streams(order=streams, calibration=calibration, scored=scored)
