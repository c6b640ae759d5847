"""Model selection per segment — the one definition shared by the evaluation, the device reference pipeline
and (in C) the firmware (``firmware/core/src/dysan_select.c`` must compute the same integers).

A stream of windows is cut into segments of ``segment`` (p) consecutive windows. For each window, a set
of candidate models is *evaluated*: candidate m's own sanitizer, then its own predictor and discriminator,
give two hits — activity hit (P_m says the reference activity label) and sensitive hit (D_m says the
reference sensitive value). At the end of a segment each evaluated candidate gets the paper's score

    score = x · act_acc + y · (1 − |0.5 − sens_acc|)      over the windows where it was evaluated,

computed exactly in integers (Q15 weights, ``a`` activity hits and ``s`` sensitive hits out of ``n``):

    score_q = ((2·x·a + y·(2n − |n − 2s|)) << 16) // (2n)

and the highest score wins (ties: lowest model index). The winner sanitizes *that* segment's windows
(the device buffers a segment, so its output lags the input by one segment).

Which candidates are evaluated on window ``w`` (counted from the start of the stream) is the round-robin
schedule: ``{(w·k + j) mod M : j < k}`` for ``k = min(candidates, M)`` — all models when ``k >= M``.
"""

from __future__ import annotations

import numpy as np

Q15 = 32768


def q15(v: float) -> int:
    if not 0.0 <= v <= 1.0:
        raise ValueError("score weights must lie in [0, 1]")
    return round(v * Q15)


def schedule_mask(n_windows: int, n_models: int, candidates: int, first_window: int = 0) -> np.ndarray:
    """``(n_windows, n_models)`` bool: which models are evaluated on each window (round robin)."""
    k = min(max(1, candidates), n_models)
    mask = np.zeros((n_windows, n_models), dtype=bool)
    w = np.arange(first_window, first_window + n_windows, dtype=np.int64)
    for j in range(k):
        mask[np.arange(n_windows), (w * k + j) % n_models] = True
    return mask


def segment_scores(act_hits: np.ndarray, sens_hits: np.ndarray, evaluated: np.ndarray, x_q15: int,
                   y_q15: int) -> np.ndarray:
    """Integer scores ``(n_models,)`` over one segment; -1 for models not evaluated in it."""
    ev = np.asarray(evaluated, dtype=bool)
    n = ev.sum(axis=0).astype(np.int64)
    a = (np.asarray(act_hits, dtype=bool) & ev).sum(axis=0).astype(np.int64)
    s = (np.asarray(sens_hits, dtype=bool) & ev).sum(axis=0).astype(np.int64)
    num = 2 * x_q15 * a + y_q15 * (2 * n - np.abs(n - 2 * s))
    out = np.full(len(n), -1, dtype=np.int64)
    ok = n > 0
    out[ok] = (num[ok] << 16) // (2 * n[ok])
    return out


def select(act_hits: np.ndarray, sens_hits: np.ndarray, segment: int, x_q15: int, y_q15: int,
           evaluated: np.ndarray | None = None, default_model: int = 0) -> np.ndarray:
    """The model chosen for each window of one user's stream (same model across each segment).

    ``act_hits`` / ``sens_hits``: ``(n_windows, n_models)`` bool; ``evaluated`` defaults to all models on
    every window (the paper's dynamic selection).
    """
    act_hits = np.asarray(act_hits, dtype=bool)
    n_windows = len(act_hits)
    if evaluated is None:
        evaluated = np.ones_like(act_hits)
    chosen = np.empty(n_windows, dtype=np.int64)
    for start in range(0, n_windows, segment):
        sl = slice(start, min(start + segment, n_windows))
        scores = segment_scores(act_hits[sl], sens_hits[sl], evaluated[sl], x_q15, y_q15)
        chosen[sl] = int(np.argmax(scores)) if scores.max() >= 0 else default_model
    return chosen
