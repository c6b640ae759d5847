"""Normalization of windows, defined once for the host and the device.

Gravity is kept in the acceleration channels (the contract's raw-IMU convention); the per-channel
*center* — the training population's mean, in counts — removes its average. Each channel is then divided
by its *scale* (the training population's standard deviation, in counts), which is what the Keras
models see as input.

On the device the normalized value never exists as a float: the int8 model input is computed straight
from int16 counts with one integer multiply, a rounding shift and a clamp,

    q = clamp(zp + ((x - center_c) * M_c + 2**(S-1)) >> S, -128, 127),   M_c = round(2**S / (scale_c * s_in))

with ``S = contract.NORM_SHIFT`` and ``(s_in, zp)`` the int8 model's input quantization. The same formula
runs here in numpy (:func:`quantize_input`) and in ``firmware/core/src/dysan_preprocess.c``; it is
the device's definition, so the two agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import contract

MIN_SCALE_COUNTS = 1.0
"""Floor for a channel's scale, so a constant channel cannot divide by zero."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel center (int16 counts) and scale (counts per normalized unit)."""

    center: tuple[int, ...]
    scale: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.center) != contract.N_CHANNELS or len(self.scale) != contract.N_CHANNELS:
            raise ValueError(f"normalization needs {contract.N_CHANNELS} centers and scales")
        if min(self.scale) <= 0:
            raise ValueError("normalization scales must be positive")

    @classmethod
    def fit(cls, windows: np.ndarray) -> Normalization:
        """Fit from int16 count windows ``(n, WINDOW, 6)`` (training data only)."""
        flat = np.asarray(windows, dtype=np.float64).reshape(-1, contract.N_CHANNELS)
        center = tuple(int(v) for v in np.round(flat.mean(axis=0)))
        scale = tuple(float(max(MIN_SCALE_COUNTS, v)) for v in flat.std(axis=0))
        return cls(center=center, scale=scale)

    @classmethod
    def identity(cls) -> Normalization:
        """Center 0, one count per unit: used by tests that want raw counts through."""
        return cls(center=(0,) * contract.N_CHANNELS, scale=(1.0,) * contract.N_CHANNELS)

    def normalize(self, counts: np.ndarray) -> np.ndarray:
        """Float32 model input from int16 counts (host training and float evaluation)."""
        c = np.asarray(self.center, dtype=np.float32)
        s = np.asarray(self.scale, dtype=np.float32)
        return ((np.asarray(counts, dtype=np.float32) - c) / s).astype(np.float32)

    def denormalize(self, normalized: np.ndarray) -> np.ndarray:
        """Counts (float) from normalized values: how a sanitized window maps back to sensor units."""
        c = np.asarray(self.center, dtype=np.float32)
        s = np.asarray(self.scale, dtype=np.float32)
        return (np.asarray(normalized, dtype=np.float32) * s + c).astype(np.float32)

    def multipliers(self, input_scale: float) -> tuple[int, ...]:
        """Integer multipliers ``M_c`` for an int8 input of scale ``input_scale`` (see module doc)."""
        if input_scale <= 0:
            raise ValueError("input scale must be positive")
        out = []
        for s in self.scale:
            m = round((1 << contract.NORM_SHIFT) / (s * input_scale))
            if not 0 < m < (1 << 31):
                raise ValueError(f"normalization multiplier {m} out of int32 range (scale {s}, s_in {input_scale})")
            out.append(int(m))
        return tuple(out)

    def to_dict(self) -> dict[str, list]:
        return {"center": list(self.center), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict) -> Normalization:
        return cls(center=tuple(int(v) for v in d["center"]), scale=tuple(float(v) for v in d["scale"]))


def quantize_input(
    counts: np.ndarray, center: tuple[int, ...], multipliers: tuple[int, ...], zero_point: int
) -> np.ndarray:
    """The device's int8 model input from int16 counts (``(..., 6)``); bit-exact with the C version."""
    x = np.asarray(counts, dtype=np.int64) - np.asarray(center, dtype=np.int64)
    acc = x * np.asarray(multipliers, dtype=np.int64) + (1 << (contract.NORM_SHIFT - 1))
    q = (acc >> contract.NORM_SHIFT) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)
