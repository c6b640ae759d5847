"""Which model sanitizes each window: the strategies the paper compares, on top of :mod:`dysan.selection`.

All scores are the selection module's integer score (the firmware's definition)
``x·act_acc + y·(1 − |0.5 − sens_acc|)`` with each model's *own* P and D, where a hit is "own-P says the
reference activity" and "own-D says the reference sensitive value":

- **fixed** — one model for everyone: the grid model with the highest mean over *training* users of its
  score on each user's training windows (true labels). Chosen before any test user is seen.
- **personalized** — one model per user: the model with the highest score over *all* of that user's scored
  windows of the side being sanitized, true labels — an oracle at user granularity, the paper's
  "personalized" (best model for a specific user over the whole model set). It uses the same information as
  the dynamic oracle, so fixed → personalized → dynamic isolates the granularity of the choice.
- **dynamic** (the paper's DySan) — per segment of p windows of the user's stream, the model with the highest
  score over that segment, true activity labels and true sensitive value (oracle).
- **DySan(o)** — the same per segment, but the activity reference is the label the user's calibration RF
  gives the raw window; the sensitive value is the one the user states (the true one).
- **DySan(o)-device** — DySan(o) where each window scores only the round-robin candidate subset of
  :func:`dysan.selection.schedule_mask` (the bundle's default number of candidates) and each segment's score
  looks back over :func:`dysan.selection.horizon_segments` segments, as the firmware does
  (:func:`dysan.selection.device_select`).

A choice array holds, per window of a side, the index of the model (into the evaluation's model list) that
sanitizes it, or :data:`RAW` for the unsanitized window; windows outside the scored streams keep :data:`RAW`
and are never used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import selection
from .streams import Streams

RAW = -1
SCORE_ONE = selection.Q15 << 16
"""The integer score of a perfect segment with x + y = 1 (scores are reported divided by it)."""


@dataclass
class Weights:
    x: float = 0.2
    y: float = 0.8

    @property
    def q15(self) -> tuple[int, int]:
        return selection.q15(self.x), selection.q15(self.y)


@dataclass
class Strategy:
    name: str
    label: str
    train: np.ndarray
    test: np.ndarray
    info: dict = field(default_factory=dict)


def hits(pred: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``(n, M)`` bool: model m's prediction equals the reference of window i."""
    return np.asarray(pred) == np.asarray(reference)[:, None]


def whole_stream_scores(act_hits: np.ndarray, sens_hits: np.ndarray, idx: np.ndarray, w: Weights) -> np.ndarray:
    """Integer scores ``(M,)`` of every model over the windows ``idx`` taken as one segment."""
    xq, yq = w.q15
    return selection.segment_scores(act_hits[idx], sens_hits[idx], np.ones((len(idx), act_hits.shape[1]), bool),
                                    xq, yq)


def fixed_model(act_hits: np.ndarray, sens_hits: np.ndarray, streams: Streams, w: Weights) -> tuple[int, dict]:
    """Index of the model best on average over the users of ``streams`` (training side); ties: lowest."""
    per_user = np.array([whole_stream_scores(act_hits, sens_hits, streams.order[u], w)
                         for u in streams.users if len(streams.order[u])], dtype=np.float64)
    mean = per_user.mean(axis=0)
    best = int(np.argmax(mean))
    return best, {"mean_train_score": (mean / SCORE_ONE).tolist(), "users": len(per_user)}


def personalized_models(act_hits: np.ndarray, sens_hits: np.ndarray, streams: Streams, w: Weights) -> dict[int, int]:
    """User -> index of the model with the best score over the user's whole scored stream."""
    out = {}
    for u in streams.users:
        idx = streams.order[u]
        if len(idx):
            out[u] = int(np.argmax(whole_stream_scores(act_hits, sens_hits, idx, w)))
    return out


def dynamic_models(act_hits: np.ndarray, sens_hits: np.ndarray, streams: Streams, w: Weights, segment: int,
                   candidates: int | None = None) -> np.ndarray:
    """Model per window (RAW outside the scored streams): per-segment argmax of the score in each stream.

    ``candidates``: evaluate only the device's round-robin subset per window (None: every model).
    """
    xq, yq = w.q15
    out = np.full(len(act_hits), RAW, dtype=np.int64)
    for u in streams.users:
        idx = streams.order[u]
        if not len(idx):
            continue
        if candidates is None:
            out[idx] = selection.select(act_hits[idx], sens_hits[idx], segment, xq, yq)
        else:  # the device's schedule: round-robin subset, score over selection.horizon_segments segments
            out[idx] = selection.device_select(act_hits[idx], sens_hits[idx], segment, candidates, xq, yq)[0]
    return out


def per_user_choice(models: dict[int, int], streams: Streams, n: int) -> np.ndarray:
    out = np.full(n, RAW, dtype=np.int64)
    for u, m in models.items():
        out[streams.order[u]] = m
    return out


def constant_choice(model: int, streams: Streams, n: int) -> np.ndarray:
    out = np.full(n, RAW, dtype=np.int64)
    out[streams.scored] = model
    return out


def segment_trace(choice: np.ndarray, streams: Streams, segment: int) -> dict[int, np.ndarray]:
    """User -> the model chosen for each of the user's segments (the 'trace' of Fig. 6 and Fig. 8)."""
    return {u: choice[streams.order[u]][::segment] for u in streams.users if len(streams.order[u])}
