"""Integer window features: exact against a slow per-window Python definition."""

from __future__ import annotations

import math

import numpy as np

from dysan import contract
from dysan.features import FEATURE_NAMES, N_FEATURES, window_features


def reference(w: np.ndarray) -> list[int]:
    n = len(w)
    sig = [[int(v) for v in w[:, c]] for c in range(6)]
    sig.append([math.isqrt(int(a) ** 2 + int(b) ** 2 + int(c) ** 2) for a, b, c in w[:, 0:3]])
    sig.append([math.isqrt(int(a) ** 2 + int(b) ** 2 + int(c) ** 2) for a, b, c in w[:, 3:6]])
    out = []
    for x in sig:
        s = sum(x)
        var = (n * sum(v * v for v in x) - s * s) // (n * n)
        d = [abs(x[t] - x[t - 1]) for t in range(1, n)]
        c = [n * v - s >= 0 for v in x]
        blocks = [sum(abs(x[t] - x[t - 1]) for t in range(b * 25 + 1, b * 25 + 25)) // 24 for b in range(5)]
        vals = [s // n, math.isqrt(var), min(x), max(x), sum(d) // (n - 1),
                sum(c[t] != c[t - 1] for t in range(1, n)), min(blocks), max(blocks)]
        out += [max(-32768, min(32767, v)) for v in vals]
    return out


def test_features_exact():
    rng = np.random.default_rng(7)
    windows = rng.integers(-9000, 9000, size=(12, contract.WINDOW, contract.N_CHANNELS)).astype(np.int16)
    windows[0] = 0
    windows[1, :, :3] = 32767  # magnitude over int16: saturates
    windows[2] = -7  # negative mean: floor, not truncation
    f = window_features(windows)
    assert f.shape == (12, N_FEATURES) and len(FEATURE_NAMES) == N_FEATURES and f.dtype == np.int16
    for i in range(len(windows)):
        assert f[i].tolist() == reference(windows[i]), i
