"""Integer window features of the calibration random forest — the same arithmetic on host and device.

The device labels raw windows with a random forest trained during calibration, so the features must be
computed *identically* in C (``firmware/core/src/dysan_features.c``) and here. Everything is integer
arithmetic on int16 counts, with floor division and exact integer square roots, and the results are
saturated to int16 (the forest compares int16 features with int16 thresholds).

**Signals.** The 6 contract channels, then five derived per-sample signals:

``acc_mag``, ``gyro_mag``  ``isqrt(x^2 + y^2 + z^2)`` (orientation-free);
``acc_vert``   acceleration along the window's gravity direction: with ``S`` the window's sum of the
               acceleration vector and ``u = floor(S * 2^14 / isqrt(|S|^2))`` (per axis; 0 when ``S = 0``),
               ``floor((a . u) / 2^14)``: the vertical bounce of gait, whatever way the sensor is worn;
``acc_horiz``  ``isqrt(max(0, |a|^2 - acc_vert^2))``: the acceleration across gravity (sway, push-off);
``gyro_vert``  ``floor((w . u) / 2^14)``: the turn rate about the vertical (turns on stair landings).

**Per-signal statistics** (``STATS``, 8 per signal, in this order):

``mean``   floor(sum / n)
``std``    isqrt(floor((n * sum(x^2) - sum(x)^2) / n^2))
``min``, ``max``
``jerk``   floor(sum |x[t] - x[t-1]| / (n - 1))   (mean absolute first difference)
``cross``  number of sign changes of ``n*x[t] - sum`` (crossings of the mean, a cadence proxy;
           a value of exactly 0 counts as positive)
``bjmin``, ``bjmax``  min and max over the 5 blocks of 25 samples of floor(sum |x[t] - x[t-1]| / 24),
           differences taken inside each block: "still for part of the window" (sitting down,
           a landing on the stairs) versus moving throughout.

**Cadence** (``CADENCE_SIGNALS`` x ``CADENCE_STATS``): the signal summed over pairs of samples (25 Hz,
``d[k] = x[2k] + x[2k+1]``, k < 62), centred on ``floor(sum d / 62)``, and its autocorrelation
``r(L) = sum_k c[k] c[k+L]``; over the lags ``LAG_MIN..LAG_MAX`` (0.2–1.4 s: a step or a stride of walking,
jogging or climbing) ``ac_peak = floor(1000 r(L*) / r(0))`` at the first maximising lag ``L*``, and
``ac_lag = L*`` (both 0 when ``r(0) = 0``): how periodic the movement is, and its period.

The first ``N_BASIC`` features (the 8 statistics of the first 8 signals) are :func:`window_features`, also
the analysts' and attackers' feature set (:mod:`dysan.classifiers`); the device's forest uses all
``N_FEATURES`` (:func:`calibration_features`). The derived signals and the cadence lift the calibration
forest's activity accuracy on SisFall's scored windows (``dysan bench --steps calibration``,
docs/evaluation.md).
"""

from __future__ import annotations

import numpy as np

from . import contract

BASIC_SIGNALS: tuple[str, ...] = (*contract.CHANNELS, "acc_mag", "gyro_mag")
DERIVED_SIGNALS: tuple[str, ...] = ("acc_vert", "acc_horiz", "gyro_vert")
SIGNALS: tuple[str, ...] = (*BASIC_SIGNALS, *DERIVED_SIGNALS)
STATS: tuple[str, ...] = ("mean", "std", "min", "max", "jerk", "cross", "bjmin", "bjmax")
BLOCKS = 5
assert len(STATS) == contract.FEATURE_COUNT_PER_CHANNEL
UNIT_SHIFT = 14
"""Fixed-point shift of the gravity unit vector (Q14)."""
CADENCE_SIGNALS: tuple[str, ...] = ("acc_mag", "acc_vert")
CADENCE_STATS: tuple[str, ...] = ("ac_peak", "ac_lag")
LAG_MIN, LAG_MAX = 5, 35
"""Autocorrelation lags searched, in pairs of samples (25 Hz)."""
PAIRS = contract.WINDOW // 2
N_BASIC = len(BASIC_SIGNALS) * len(STATS)
N_FEATURES = len(SIGNALS) * len(STATS) + len(CADENCE_SIGNALS) * len(CADENCE_STATS)
FEATURE_NAMES: tuple[str, ...] = (
    *(f"{sig}.{st}" for sig in SIGNALS for st in STATS),
    *(f"{sig}.{st}" for sig in CADENCE_SIGNALS for st in CADENCE_STATS),
)
assert len(FEATURE_NAMES) == N_FEATURES and LAG_MAX < PAIRS


def isqrt(v: np.ndarray) -> np.ndarray:
    """Exact floor square root of non-negative int64 values (vectorized ``math.isqrt``)."""
    v = np.asarray(v, dtype=np.int64)
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r -= (r * r > v).astype(np.int64)
    r += ((r + 1) * (r + 1) <= v).astype(np.int64)
    return r


def _check(windows: np.ndarray) -> np.ndarray:
    windows = np.asarray(windows)
    if windows.ndim == 2:
        windows = windows[None]
    if windows.shape[1:] != (contract.WINDOW, contract.N_CHANNELS):
        raise ValueError(f"windows must be (n, {contract.WINDOW}, {contract.N_CHANNELS}), got {windows.shape}")
    return np.asarray(windows, dtype=np.int64)


def _basic_signals(x: np.ndarray) -> np.ndarray:
    """``(n, W, 6)`` int64 counts -> ``(n, W, 8)`` int64 (channels + two magnitudes)."""
    acc = isqrt((x[..., 0:3] ** 2).sum(axis=-1))
    gyro = isqrt((x[..., 3:6] ** 2).sum(axis=-1))
    return np.concatenate([x, acc[..., None], gyro[..., None]], axis=-1)


def _derived_signals(x: np.ndarray) -> np.ndarray:
    """``(n, W, 6)`` int64 counts -> ``(n, W, 3)``: acc_vert, acc_horiz, gyro_vert (see the module doc)."""
    acc, gyro = x[..., 0:3], x[..., 3:6]
    s = acc.sum(axis=1)  # (n, 3)
    g = isqrt((s * s).sum(axis=-1))[:, None]
    u = np.where(g > 0, np.floor_divide(s << UNIT_SHIFT, np.maximum(g, 1)), 0)[:, None, :]
    vert = (acc * u).sum(axis=-1) >> UNIT_SHIFT  # arithmetic shift: floor
    horiz = isqrt(np.maximum((acc * acc).sum(axis=-1) - vert * vert, 0))
    yaw = (gyro * u).sum(axis=-1) >> UNIT_SHIFT
    return np.stack([vert, horiz, yaw], axis=-1)


def _stats(s: np.ndarray) -> np.ndarray:
    """``(n, W, k)`` int64 signals -> ``(n, k, 8)`` int64 statistics, ``STATS`` order."""
    n = s.shape[1]
    total = s.sum(axis=1)
    mean = np.floor_divide(total, n)
    var = np.floor_divide(n * (s * s).sum(axis=1) - total * total, n * n)
    std = isqrt(np.maximum(var, 0))
    lo, hi = s.min(axis=1), s.max(axis=1)
    jerk = np.floor_divide(np.abs(np.diff(s, axis=1)).sum(axis=1), n - 1)
    centered = n * s - total[:, None, :]
    positive = centered >= 0
    cross = (positive[:, 1:] != positive[:, :-1]).sum(axis=1)
    blk = s.reshape(len(s), BLOCKS, n // BLOCKS, s.shape[2])
    bj = np.floor_divide(np.abs(np.diff(blk, axis=2)).sum(axis=2), n // BLOCKS - 1)  # (n, blocks, signals)
    return np.stack([mean, std, lo, hi, jerk, cross, bj.min(axis=1), bj.max(axis=1)], axis=-1)


def _cadence(sig: np.ndarray) -> np.ndarray:
    """``(n, W)`` int64 signal -> ``(n, 2)``: ac_peak, ac_lag (see the module doc)."""
    d = sig[:, 0:2 * PAIRS:2] + sig[:, 1:2 * PAIRS:2]
    c = d - np.floor_divide(d.sum(axis=1), PAIRS)[:, None]
    r0 = (c * c).sum(axis=1)
    r = np.stack([(c[:, :PAIRS - lag] * c[:, lag:]).sum(axis=1) for lag in range(LAG_MIN, LAG_MAX + 1)], axis=1)
    best = r.argmax(axis=1)  # the first maximum, as the C loop's strict comparison
    peak = r[np.arange(len(r)), best]
    ok = r0 > 0
    ratio = np.where(ok, np.floor_divide(1000 * peak, np.maximum(r0, 1)), 0)
    return np.stack([ratio, np.where(ok, best + LAG_MIN, 0)], axis=1)


def _sat16(f: np.ndarray) -> np.ndarray:
    return np.clip(f, contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)


def window_features(windows: np.ndarray) -> np.ndarray:
    """The ``N_BASIC`` statistics of the 8 basic signals, ``(n, N_BASIC)`` int16 (also the attackers' set)."""
    x = _check(windows)
    return _sat16(_stats(_basic_signals(x)).reshape(len(x), N_BASIC))


def calibration_features(windows: np.ndarray) -> np.ndarray:
    """What the device computes for its forest: ``(n, W, 6)`` int16 windows -> ``(n, N_FEATURES)`` int16."""
    x = _check(windows)
    basic = _basic_signals(x)
    derived = _derived_signals(x)
    stats = _stats(np.concatenate([basic, derived], axis=-1)).reshape(len(x), -1)
    mag, vert = basic[..., 6], derived[..., 0]
    cad = np.concatenate([_cadence(mag), _cadence(vert)], axis=1)
    return _sat16(np.concatenate([stats, cad], axis=1))
