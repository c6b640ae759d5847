"""Measures used by the analyses: accuracies per user, distortion statistics, DTW, uniqueness.

**Distortion statistics (the paper's Table 4).** On the orientation-free magnitude of the acceleration
(in g) and of the angular rate (in rad/s), per window: mean, standard deviation, skewness, excess kurtosis
(Fisher: 0 for a normal distribution) and energy (sum of squares over the window's samples); each averaged
over windows. A window with zero spread has skewness and kurtosis 0 by convention. Relative error of a
strategy: ``(value − raw value) / |raw value|``.

**DTW (Appendix F).** Dynamic time warping between a raw window and its sanitized version, multichannel,
Euclidean local cost on the normalized channels (so g and rad/s weigh alike), classic step pattern
(match, insertion, deletion, all of weight 1), no window constraint; computed for a batch of pairs at once
along anti-diagonals in numpy.

**Uniqueness (Fig. 8, the methodology of de Montjoye et al. 2013).** A user's trace is the sequence of
models selected for their segments. For p points: draw p of the user's segments at random, take the set of
models they used, and call the draw unique when no *other* user's trace contains every model of that set.
A user's uniqueness is the share of unique draws among ``draws`` (100); users with fewer than p segments
have none (reported as missing).
"""

from __future__ import annotations

import numpy as np

from .. import contract


def accuracy_summary(correct: np.ndarray, subject: np.ndarray, names: tuple[str, ...],
                     labels: np.ndarray | None = None) -> dict:
    """Pooled accuracy over windows, per-user accuracies, and their spread.

    With the true ``labels``, also the balanced accuracy (mean per-class recall) and the majority-class rate:
    on an imbalanced attribute (SisFall's age groups: about two thirds young) plain accuracy has a chance
    level well above 50 %, so "attacker at chance" must be read against these.
    """
    correct = np.asarray(correct, dtype=bool)
    per_user = {names[int(u)]: float(correct[subject == u].mean()) for u in np.unique(subject)}
    users = np.array(list(per_user.values())) if per_user else np.zeros(0)
    extra = {}
    if labels is not None and len(correct):
        labels = np.asarray(labels)
        classes = np.unique(labels)
        extra = {"balanced_accuracy": float(np.mean([correct[labels == c].mean() for c in classes])),
                 "majority_rate": float(max((labels == c).mean() for c in classes))}
    return {
        "accuracy": float(correct.mean()) if len(correct) else None,
        "windows": len(correct),
        "per_user": per_user,
        "user_mean": float(users.mean()) if len(users) else None,
        "user_min": float(users.min()) if len(users) else None,
        "user_max": float(users.max()) if len(users) else None,
        **extra,
    }


def magnitudes(counts: np.ndarray) -> dict[str, np.ndarray]:
    """``{"acc_mag_g": (n, T), "gyro_mag_rad_s": (n, T)}`` from count windows ``(n, T, 6)``."""
    phys = contract.from_counts(np.asarray(counts)).astype(np.float64)
    return {"acc_mag_g": np.sqrt((phys[..., 0:3] ** 2).sum(-1)),
            "gyro_mag_rad_s": np.sqrt((phys[..., 3:6] ** 2).sum(-1))}


STATS = ("mean", "std", "skewness", "kurtosis", "energy")


def window_stats(signal: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window statistics of ``(n, T)`` signals (see the module doc)."""
    x = np.asarray(signal, dtype=np.float64)
    mean = x.mean(axis=1)
    centered = x - mean[:, None]
    var = (centered ** 2).mean(axis=1)
    std = np.sqrt(var)
    flat = var <= 1e-24
    safe = np.where(flat, 1.0, var)
    skew = np.where(flat, 0.0, (centered ** 3).mean(axis=1) / safe ** 1.5)
    kurt = np.where(flat, 0.0, (centered ** 4).mean(axis=1) / safe ** 2 - 3.0)
    return {"mean": mean, "std": std, "skewness": skew, "kurtosis": kurt, "energy": (x ** 2).sum(axis=1)}


def distortion_table(counts: np.ndarray) -> dict[str, dict[str, float]]:
    """Signal -> statistic -> mean over windows."""
    return {name: {k: float(v.mean()) for k, v in window_stats(sig).items()}
            for name, sig in magnitudes(counts).items()}


def relative_error(value: float, raw: float) -> float | None:
    return None if raw == 0 else (value - raw) / abs(raw)


DTW_CHUNK = 256


def dtw_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """DTW distance of each pair ``(a[k], b[k])``; ``a``: ``(N, T, C)``, ``b``: ``(N, U, C)`` (or 2-D: C = 1)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    if len(a) > DTW_CHUNK:  # bounds the (N, T, U) cost matrix's memory
        return np.concatenate([dtw_batch(a[k:k + DTW_CHUNK], b[k:k + DTW_CHUNK]) for k in range(0, len(a), DTW_CHUNK)])
    n, t, u = a.shape[0], a.shape[1], b.shape[1]
    cost = np.zeros((n, t, u))
    for c in range(a.shape[2]):
        cost += (a[:, :, None, c] - b[:, None, :, c]) ** 2
    cost = np.sqrt(cost)
    acc = np.full((n, t + 1, u + 1), np.inf)
    acc[:, 0, 0] = 0.0
    for k in range(2, t + u + 1):  # cells with i + j == k (1-based) depend only on diagonals k-1 and k-2
        i = np.arange(max(1, k - u), min(t, k - 1) + 1)
        j = k - i
        best = np.minimum(np.minimum(acc[:, i - 1, j - 1], acc[:, i - 1, j]), acc[:, i, j - 1])
        acc[:, i, j] = cost[:, i - 1, j - 1] + best
    return acc[:, t, u]


def uniqueness(traces: dict[str, np.ndarray], p: int, draws: int = 100, seed: int = 0) -> dict[str, float | None]:
    """Share of ``draws`` random p-point draws of each user's trace that identify the user (see module doc)."""
    rng = np.random.default_rng(seed + p)
    sets = {u: set(np.asarray(t).tolist()) for u, t in traces.items()}
    out: dict[str, float | None] = {}
    for u, trace in traces.items():
        trace = np.asarray(trace)
        if len(trace) < p:
            out[u] = None
            continue
        others = [s for v, s in sets.items() if v != u]
        unique = 0
        for _ in range(draws):
            drawn = set(trace[rng.choice(len(trace), size=p, replace=False)].tolist())
            unique += not any(drawn <= s for s in others)
        out[u] = unique / draws
    return out


def models_used_share(traces: dict[str, np.ndarray], n_models: int) -> dict[str, float]:
    """Share of the available models each user's trace uses (Fig. 6)."""
    return {u: len(set(np.asarray(t).tolist())) / n_models for u, t in traces.items()}
