"""Integer window features: exact against a slow per-window Python definition."""

from __future__ import annotations

import math

import numpy as np

from dysan import contract
from dysan.features import (
    FEATURE_NAMES,
    LAG_MAX,
    LAG_MIN,
    N_BASIC,
    N_FEATURES,
    calibration_features,
    window_features,
)


def _stats(x: list[int]) -> list[int]:
    n = len(x)
    s = sum(x)
    var = (n * sum(v * v for v in x) - s * s) // (n * n)
    d = [abs(x[t] - x[t - 1]) for t in range(1, n)]
    c = [n * v - s >= 0 for v in x]
    blocks = [sum(abs(x[t] - x[t - 1]) for t in range(b * 25 + 1, b * 25 + 25)) // 24 for b in range(5)]
    return [s // n, math.isqrt(var), min(x), max(x), sum(d) // (n - 1),
            sum(c[t] != c[t - 1] for t in range(1, n)), min(blocks), max(blocks)]


def _cadence(x: list[int]) -> list[int]:
    d = [x[2 * k] + x[2 * k + 1] for k in range(62)]
    m = sum(d) // 62
    c = [v - m for v in d]
    r0 = sum(v * v for v in c)
    best, lag = None, 0
    for L in range(LAG_MIN, LAG_MAX + 1):
        r = sum(c[k] * c[k + L] for k in range(62 - L))
        if best is None or r > best:
            best, lag = r, L
    return [1000 * best // r0, lag] if r0 > 0 else [0, 0]


def reference(w: np.ndarray) -> list[int]:
    """The module doc of dysan.features, written out per window with Python integers."""
    rows = [[int(v) for v in row] for row in w]
    sig = [[r[c] for r in rows] for c in range(6)]
    sig.append([math.isqrt(r[0] ** 2 + r[1] ** 2 + r[2] ** 2) for r in rows])
    sig.append([math.isqrt(r[3] ** 2 + r[4] ** 2 + r[5] ** 2) for r in rows])
    s = [sum(r[k] for r in rows) for k in range(3)]
    g = math.isqrt(sum(v * v for v in s))
    u = [v * 16384 // g if g > 0 else 0 for v in s]
    vert = [(r[0] * u[0] + r[1] * u[1] + r[2] * u[2]) >> 14 for r in rows]
    sig.append(vert)
    sig.append([math.isqrt(max(0, r[0] ** 2 + r[1] ** 2 + r[2] ** 2 - v * v)) for r, v in zip(rows, vert, strict=True)])
    sig.append([(r[3] * u[0] + r[4] * u[1] + r[5] * u[2]) >> 14 for r in rows])
    out = [v for x in sig for v in _stats(x)] + _cadence(sig[6]) + _cadence(sig[8])
    return [max(-32768, min(32767, v)) for v in out]


def test_features_exact():
    rng = np.random.default_rng(7)
    windows = rng.integers(-9000, 9000, size=(12, contract.WINDOW, contract.N_CHANNELS)).astype(np.int16)
    windows[0] = 0
    windows[1, :, :3] = 32767  # magnitude over int16: saturates
    windows[2] = -7  # negative mean: floor, not truncation
    windows[3, :, :3] = 1  # tiny gravity: isqrt(3) = 1, a unit vector longer than 2^14
    t = np.arange(contract.WINDOW)
    windows[4, :, :3] = 0
    windows[4, :, 2] = (2048 + 600 * np.sin(2 * np.pi * t / 20)).astype(np.int16)  # a 20-sample cadence
    f = calibration_features(windows)
    assert f.shape == (12, N_FEATURES) and len(FEATURE_NAMES) == N_FEATURES and f.dtype == np.int16
    for i in range(len(windows)):
        assert f[i].tolist() == reference(windows[i]), i
    np.testing.assert_array_equal(window_features(windows), f[:, :N_BASIC])
    peak, lag = f[4, FEATURE_NAMES.index("acc_vert.ac_peak")], f[4, FEATURE_NAMES.index("acc_vert.ac_lag")]
    assert lag == 10 and peak > 700, (lag, peak)  # one period = 10 pairs of samples
