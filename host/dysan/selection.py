"""Model selection per segment — the one definition shared by the evaluation, the device reference pipeline
and (in C) the firmware (``firmware/core/src/dysan_select.c`` must compute the same integers).

A stream of windows is cut into segments of ``segment`` (p) consecutive windows. For each window, a set
of candidate models is *evaluated*: candidate m's own sanitizer, then its own predictor and discriminator,
give two hits — activity hit (P_m says the reference activity label) and sensitive hit (D_m says the
reference sensitive value). At the end of a segment each evaluated candidate gets the paper's score

    score = x · act_acc + y · (1 − |0.5 − sens_acc|)      over the windows where it was evaluated,

computed exactly in integers (Q15 weights, ``a`` activity hits and ``s`` sensitive hits out of ``n``):

    score_q = ((2·x·a + y·(2n − |n − 2s|)) << 16) // (2n)

and the highest score wins (ties: lowest model index).

**The stated sensitive value.** For a two-valued attribute the stated value v does not matter: D's hits for
1 − v are the misses for v, so s becomes n − s and ``|n − 2s|`` is unchanged -- every score, hence the
selection and the output, are the same. So for binary attributes the device is never told the user's value
(``dysan calibrate`` does not ask). For K > 2 values the privacy term generalises to
``1 − |1/K − s/n|`` (chance level 1/K; K = 2 gives the paper's term), in integers
``((K·x·a + y·(K·n − |n − K·s|)) << 16) // (K·n)`` (:func:`segment_scores`, C ``dysan_select_score_k``);
it is not symmetric in v, so there the device needs the value (SET_SENSITIVE).

The winner sanitizes *that* segment's windows (the device buffers a segment, so its output lags the input by
one segment).

Which candidates are evaluated on window ``w`` (counted from the start of the stream) is the round-robin
schedule: ``{(w·k + j) mod M : j < k}`` for ``k = min(candidates, M)`` — all models when ``k >= M``.

**Horizon.** The score of a segment counts each model's hits over that segment *and the R − 1 segments
before it* in the stream (fewer at the stream's start). With every model on every window (``k >= M``)
R = 1: the paper's per-segment DySan(o). With a rotating subset (``k < M``) a model is evaluated once every
``ceil(M / k)`` windows, so within one segment it would have one evaluation or none -- and with one
evaluation the privacy term ``1 − |0.5 − s|`` is 0.5 whatever D says, so the selection would ignore privacy.
Hence R is the fewest segments in which every model gets about :data:`HORIZON_EVALUATIONS` (3)
evaluations: ``R = ceil(3·M / (k·p))``, at most ``MAX_HORIZON // p`` (the device's 32-window hit history)
(:func:`horizon_segments`; the C twin is ``dysan_schedule_rounds``). Why 3 and not p: a longer horizon
estimates each model's hit rates from more windows but scores windows of earlier activities; measured on the
full SisFall grid (M = 36, k = 8, p = 5; RF attackers retrained on the sanitized stream, mean of attacker seeds
0 and 1), R = 5 (~5.6 evaluations) lost 1.25 pts of activity against all 36 every window, R = 3 (~3.3) 0.71,
at the same gender and re-identification figures; R = 2 (~2.2) gave back most of the privacy gain
(docs/firmware.md, "Duty"). A model is still chosen per segment of p windows.
"""

from __future__ import annotations

import numpy as np

Q15 = 32768
MAX_HORIZON = 32
"""Longest score horizon in windows: the device keeps each model's hits of the last 32 windows as bit masks
(``DYSAN_SELECT_MAX_HORIZON``, generated from this), so ``rounds · segment <= 32``."""
HORIZON_EVALUATIONS = 3
"""Evaluations per model a rotating schedule's score horizon is sized for (:func:`horizon_segments`; the
module doc says why 3; generated into C as ``DYSAN_SELECT_HORIZON_EVALUATIONS``)."""


def q15(v: float) -> int:
    if not 0.0 <= v <= 1.0:
        raise ValueError("score weights must lie in [0, 1]")
    return round(v * Q15)


def schedule_mask(n_windows: int, n_models: int, candidates: int, first_window: int = 0) -> np.ndarray:
    """``(n_windows, n_models)`` bool: which models are evaluated on each window (round robin)."""
    k = schedule_k(candidates, n_models)
    mask = np.zeros((n_windows, n_models), dtype=bool)
    w = np.arange(first_window, first_window + n_windows, dtype=np.int64)
    for j in range(k):
        mask[np.arange(n_windows), (w * k + j) % n_models] = True
    return mask


def schedule_k(candidates: int, n_models: int) -> int:
    """Candidates evaluated per window: ``min(max(1, candidates), n_models)``."""
    return min(max(1, candidates), n_models)


def horizon_segments(segment: int, candidates: int, n_models: int) -> int:
    """Segments R a segment's score looks back over, itself included: 1 when every model runs on every
    window (the paper's per-segment score), else ``max(1, min(ceil(3·M / (k·p)), 32 // p))`` -- the fewest
    segments that give every model about :data:`HORIZON_EVALUATIONS` evaluations (see the module doc)."""
    k = schedule_k(candidates, n_models)
    if segment < 1 or k >= n_models:
        return 1
    need = -(-HORIZON_EVALUATIONS * n_models // (k * segment))
    return max(1, min(need, MAX_HORIZON // segment))


def segment_scores(act_hits: np.ndarray, sens_hits: np.ndarray, evaluated: np.ndarray, x_q15: int,
                   y_q15: int, classes: int = 2) -> np.ndarray:
    """Integer scores ``(n_models,)`` over one segment; -1 for models not evaluated in it.

    ``classes``: K, the sensitive attribute's number of values. The privacy term is ``1 − |1/K − s/n|``
    (chance level 1/K; for K = 2 the paper's ``1 − |0.5 − s/n|``), in integers
    ``((K·x·a + y·(K·n − |n − K·s|)) << 16) // (K·n)`` -- for K = 2 exactly the formula in the module doc.
    """
    if not 2 <= int(classes) <= 16:
        raise ValueError("a sensitive attribute has 2..16 values")
    k = int(classes)
    ev = np.asarray(evaluated, dtype=bool)
    n = ev.sum(axis=0).astype(np.int64)
    a = (np.asarray(act_hits, dtype=bool) & ev).sum(axis=0).astype(np.int64)
    s = (np.asarray(sens_hits, dtype=bool) & ev).sum(axis=0).astype(np.int64)
    num = k * x_q15 * a + y_q15 * (k * n - np.abs(n - k * s))
    out = np.full(len(n), -1, dtype=np.int64)
    ok = n > 0
    out[ok] = (num[ok] << 16) // (k * n[ok])
    return out


def select(act_hits: np.ndarray, sens_hits: np.ndarray, segment: int, x_q15: int, y_q15: int,
           evaluated: np.ndarray | None = None, default_model: int = 0, rounds: int = 1,
           classes: int = 2) -> np.ndarray:
    """The model chosen for each window of one user's stream (same model across each segment).

    ``act_hits`` / ``sens_hits``: ``(n_windows, n_models)`` bool; ``evaluated`` defaults to all models on
    every window (the paper's dynamic selection). ``rounds``: a segment's score counts its windows and those
    of the ``rounds - 1`` segments before it (1: the segment alone). ``classes``: values of the sensitive
    attribute (:func:`segment_scores`).
    """
    act_hits = np.asarray(act_hits, dtype=bool)
    n_windows = len(act_hits)
    if evaluated is None:
        evaluated = np.ones_like(act_hits)
    back = (max(1, int(rounds)) - 1) * segment
    chosen = np.empty(n_windows, dtype=np.int64)
    for start in range(0, n_windows, segment):
        end = min(start + segment, n_windows)
        sl = slice(max(0, start - back), end)
        scores = segment_scores(act_hits[sl], sens_hits[sl], evaluated[sl], x_q15, y_q15, classes)
        chosen[start:end] = int(np.argmax(scores)) if scores.max() >= 0 else default_model
    return chosen


def device_select(act_hits: np.ndarray, sens_hits: np.ndarray, segment: int, candidates: int, x_q15: int,
                  y_q15: int, default_model: int = 0, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """What the device chooses on one stream with this schedule: its round-robin ``evaluated`` mask and the
    model per window, each segment scored over :func:`horizon_segments` segments. Returns ``(chosen,
    evaluated)``."""
    act_hits = np.asarray(act_hits, dtype=bool)
    n_windows, n_models = act_hits.shape
    evaluated = schedule_mask(n_windows, n_models, candidates)
    chosen = select(act_hits, sens_hits, segment, x_q15, y_q15, evaluated=evaluated, default_model=default_model,
                    rounds=horizon_segments(segment, candidates, n_models), classes=classes)
    return chosen, evaluated
