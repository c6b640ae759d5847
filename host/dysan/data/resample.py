"""Resampling to the contract rate.

Integer-ratio sources (SisFall at 200 Hz) go through a polyphase FIR low-pass (``scipy.signal.resample_poly``,
Kaiser window), which is a proper anti-alias decimation: energy above the new Nyquist frequency (25 Hz) is
removed before samples are dropped. Sources with irregular timestamps (MobiAct, whose accelerometer and
gyroscope are sampled independently at 100-200 Hz) are first interpolated linearly onto one uniform grid
at an intermediate rate that both sensors cover, then decimated the same way.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from .. import contract

INTERMEDIATE_HZ = 200
"""Uniform grid for irregular sources, before the anti-alias decimation to 50 Hz."""


def to_contract_rate(signal: np.ndarray, rate_hz: float) -> np.ndarray:
    """Resample a uniformly sampled ``(n, c)`` signal from ``rate_hz`` to ``contract.RATE_HZ``.

    The output has ``ceil(n * 50 / rate_hz)`` samples (``resample_poly``'s length).
    """
    signal = np.asarray(signal, dtype=np.float64)
    if rate_hz == contract.RATE_HZ:
        return signal.astype(np.float32)
    ratio = Fraction(contract.RATE_HZ) / Fraction(rate_hz).limit_denominator(1000)
    if len(signal) == 0:
        return np.zeros((0, signal.shape[1]), dtype=np.float32)
    out = resample_poly(signal, ratio.numerator, ratio.denominator, axis=0, padtype="line")
    return out.astype(np.float32)


def irregular_to_contract_rate(
    streams: list[tuple[np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Merge independently timestamped sensors onto one grid and resample to the contract rate.

    ``streams`` is a list of ``(timestamps_s, values (n, k))``; the result has the columns of all streams
    side by side, over the time span every stream covers.
    """
    starts = [float(t[0]) for t, _ in streams if len(t)]
    ends = [float(t[-1]) for t, _ in streams if len(t)]
    if len(starts) != len(streams):
        return np.zeros((0, sum(v.shape[1] for _, v in streams)), dtype=np.float32)
    t0, t1 = max(starts), min(ends)
    if t1 <= t0:
        return np.zeros((0, sum(v.shape[1] for _, v in streams)), dtype=np.float32)
    grid = np.arange(t0, t1, 1.0 / INTERMEDIATE_HZ)
    cols = []
    for t, v in streams:
        order = np.argsort(t, kind="stable")
        t_sorted, v_sorted = t[order], v[order]
        keep = np.concatenate([[True], np.diff(t_sorted) > 0])
        t_sorted, v_sorted = t_sorted[keep], v_sorted[keep]
        cols.append(np.stack([np.interp(grid, t_sorted, v_sorted[:, k]) for k in range(v.shape[1])], axis=1))
    return to_contract_rate(np.concatenate(cols, axis=1), INTERMEDIATE_HZ)
