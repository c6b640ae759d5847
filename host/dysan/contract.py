"""The data contract: the one place that defines rate, window, channel order, units and sample scales.

Everything else imports these names. The firmware gets them through the generated header
``firmware/core/include/dysan_contract.h`` (``dysan codegen`` writes it; a test fails when it is stale), so
the host and the device can never disagree on a window length or a channel order.

Samples travel and live on the device as ``int16`` *counts* with a fixed LSB per channel kind, so the host
side can reproduce the device's integer arithmetic exactly: every host pipeline quantizes physical units to
counts with :func:`to_counts` before it computes anything a device would compute.
"""

from __future__ import annotations

import numpy as np

RATE_HZ: int = 50
"""Sampling rate of every signal after loading (Hz)."""

WINDOW: int = 125
"""Samples per window (2.5 s at 50 Hz)."""

HOP: int = 62
"""Samples between the starts of two consecutive windows (the paper's overlap)."""

CHANNELS: tuple[str, ...] = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
"""Channel order of every signal, window and model input/output."""

N_CHANNELS: int = len(CHANNELS)

UNITS: tuple[str, ...] = ("g", "g", "g", "rad/s", "rad/s", "rad/s")
"""Physical unit of each channel. Acceleration includes gravity (raw IMU convention)."""

ACC_COUNTS_PER_G: int = 2048
"""int16 counts per g for the accelerometer channels (range +-16 g)."""

GYRO_COUNTS_PER_RAD_S: int = 512
"""int16 counts per rad/s for the gyroscope channels (range +-64 rad/s, above a 2000 deg/s gyro)."""

COUNTS_PER_UNIT: tuple[int, ...] = (ACC_COUNTS_PER_G,) * 3 + (GYRO_COUNTS_PER_RAD_S,) * 3

GRAVITY_M_S2: float = 9.80665
"""Standard gravity, for sources that record acceleration in m/s^2."""

INT16_MIN, INT16_MAX = -32768, 32767

NORM_SHIFT: int = 20
"""Fixed-point shift of the per-channel normalization multiplier (see :mod:`dysan.preprocess`)."""

FEATURE_COUNT_PER_CHANNEL: int = 8
"""Integer window features per signal (8 signals: 6 channels + 2 magnitudes) of the calibration RF."""


def to_counts(signal: np.ndarray) -> np.ndarray:
    """Quantize a float signal in contract units (``(..., 6)``) to int16 counts, rounding half away from 0.

    Saturates at the int16 range, as an IMU driver on the device would.
    """
    scale = np.asarray(COUNTS_PER_UNIT, dtype=np.float64)
    scaled = np.asarray(signal, dtype=np.float64) * scale
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(rounded, INT16_MIN, INT16_MAX).astype(np.int16)


def from_counts(counts: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_counts` (up to its rounding): int16 counts to float32 contract units."""
    return (np.asarray(counts, dtype=np.float32) / np.asarray(COUNTS_PER_UNIT, dtype=np.float32)).astype(
        np.float32
    )


def as_dict() -> dict[str, object]:
    """The contract as plain data, for bundle manifests and JSON outputs."""
    return {
        "rate_hz": RATE_HZ,
        "window": WINDOW,
        "hop": HOP,
        "channels": list(CHANNELS),
        "units": list(UNITS),
        "counts_per_unit": list(COUNTS_PER_UNIT),
        "norm_shift": NORM_SHIFT,
        "gravity": "kept in the signal; the per-channel normalization center removes its training mean",
    }
