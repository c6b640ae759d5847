"""Each user's windows as a stream in time order, and the calibration subset of DySan(o).

**Time order.** A user's stream is their windows sorted by (recording, start sample): the recordings in the
order the loader lists them (by activity code, then trial, for SisFall), each one's windows in time. This is
the order a wearable would see if the user performed the recordings one after the other; segments of p
windows are cut along it.

**Calibration.** DySan(o) labels activities with a random forest trained on a short calibration during which
the user performs each activity. We take, for every user and every *activity the user was asked to perform*
(the source's activity code: SisFall's D01 "walking slowly" and D02 "walking quickly" are two activities of
the class walk), the windows that fit in its first ``seconds``: ``per_code = floor((seconds·rate − window) /
hop) + 1`` consecutive windows (5 s → 3 windows), but never more than half of the user's windows of that code
in the stream, so every activity is also scored (a code with a single window is not calibrated). Per code
rather than per class because a class merges different ways of moving: calibrating "walk" on its first
seconds alone would show the forest slow walking only. Calibration windows — and every window that overlaps
one of them in time (same recording, starts less than a window apart), which would share raw samples with the
forest's training data — are **excluded from scoring for every strategy**, so all strategies are compared on
the same windows. The same rule is applied to the training side, so the streams the adaptive attackers are
trained on are built the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import contract
from .runs import Side


def windows_for(seconds: float) -> int:
    """Calibration windows per activity code: the hop-spaced windows inside its first ``seconds`` (at least 1)."""
    return max(1, math.floor((seconds * contract.RATE_HZ - contract.WINDOW) / contract.HOP) + 1)


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


def build(side: Side, per_code: int) -> Streams:
    """Streams of ``side`` with ``per_code`` calibration windows per activity code and user (0: none)."""
    order = time_order(side)
    excluded = np.zeros(len(side), dtype=bool)
    calibration: dict[int, np.ndarray] = {}
    for user in np.unique(side.subject):
        mine = order[side.subject[order] == user]
        cal = []
        if per_code > 0:
            for code in np.unique(side.code[mine]):
                of_code = mine[side.code[mine] == code]
                cal.extend(of_code[:min(per_code, len(of_code) // 2)].tolist())
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
