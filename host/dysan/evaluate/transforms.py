"""Reference transforms: untrained, one-line ways of hiding an attribute, scored like any strategy.

A learned sanitizer is worth its cost only if it beats what a trivial transform of the raw window already
achieves, so every evaluation also scores these (``dysan evaluate``'s strategies ``mean-removal``,
``rotation``, ``magnitudes``), with the same attackers, on the same scored windows:

- **mean-removal** — each window's per-axis mean (all 6 channels, over its 125 samples) is subtracted:
  ``x − round(mean)``. Removes the gravity direction, i.e. the mount angle, a per-person fingerprint.
- **rotation** — each window is rotated by its own uniformly random 3-D rotation (Haar measure on SO(3),
  :meth:`scipy.spatial.transform.Rotation.random`), the same rotation applied to the accelerometer and the
  gyroscope (a physical turn of the device). Drawn from ``numpy.random.default_rng([seed, side])`` with side
  0 = train, 1 = test, window by window in the side's order: reproducible, and train and test draw
  different rotations.
- **magnitudes** — only the orientation-free norms are kept: channel 0 (acc x) holds the acceleration
  magnitude ``isqrt(ax² + ay² + az²)`` and channel 3 (gyro x) the angular-rate magnitude, the other four
  channels are 0. The norm is the integer square root of the window features (:func:`dysan.features.isqrt`),
  so the RF attackers' magnitude features of the transformed window equal those of the raw window exactly.

All work on int16 counts (the device's units) and round and saturate to int16. Their L1 distortion is
measured like a sanitizer's: mean ``|norm(T(x)) − norm(x)|`` in the run's normalized units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import contract
from ..features import isqrt, window_features
from ..preprocess import Normalization

VERSION = 1
SIDE_CODE = {"train": 0, "test": 1}


def _saturate(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)


def mean_removal(counts: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Each window minus its per-channel mean (rounded to counts)."""
    x = np.asarray(counts, dtype=np.float64)
    return _saturate(x - np.rint(x.mean(axis=1, keepdims=True)))


def rotation_matrices(n: int, rng: np.random.Generator) -> np.ndarray:
    """``(n, 3, 3)`` rotations drawn uniformly from SO(3)."""
    from scipy.spatial.transform import Rotation

    if n == 0:
        return np.zeros((0, 3, 3))
    return Rotation.random(n, random_state=rng).as_matrix().reshape(n, 3, 3)


def rotate(counts: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Window i's acc and gyro triples turned by ``matrices[i]`` (column vectors: ``R @ v``)."""
    x = np.asarray(counts, dtype=np.float64)
    acc = np.einsum("nij,ntj->nti", matrices, x[..., 0:3])
    gyro = np.einsum("nij,ntj->nti", matrices, x[..., 3:6])
    return _saturate(np.concatenate([acc, gyro], axis=-1))


def random_rotation(counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each window turned by its own uniformly random rotation (see the module doc)."""
    return rotate(counts, rotation_matrices(len(counts), rng))


def magnitudes(counts: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """``[|acc|, 0, 0, |gyro|, 0, 0]`` per sample (integer norms, saturated to int16)."""
    x = np.asarray(counts, dtype=np.int64)
    out = np.zeros(x.shape, dtype=np.int64)
    out[..., 0] = isqrt((x[..., 0:3] ** 2).sum(axis=-1))
    out[..., 3] = isqrt((x[..., 3:6] ** 2).sum(axis=-1))
    return np.clip(out, contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)


@dataclass(frozen=True)
class Transform:
    name: str
    label: str
    fn: Callable[[np.ndarray, np.random.Generator], np.ndarray]


TRANSFORMS: dict[str, Transform] = {t.name: t for t in (
    Transform("mean-removal", "mean removal", mean_removal),
    Transform("rotation", "random rotation", random_rotation),
    Transform("magnitudes", "magnitudes only", magnitudes),
)}


@dataclass
class SideOutputs:
    """A transform's windows on one side, in the shape :mod:`.attackers` reads (like a model's outputs)."""

    windows: np.ndarray
    features: np.ndarray
    distortion: np.ndarray


@dataclass
class TransformOutputs:
    transform: Transform
    train: SideOutputs
    test: SideOutputs
    cache_id: str

    def side(self, name: str) -> SideOutputs:
        return self.train if name == "train" else self.test


def apply(t: Transform, counts: np.ndarray, side: str, norm: Normalization, seed: int = 0) -> SideOutputs:
    rng = np.random.default_rng([seed, SIDE_CODE[side]])
    out = t.fn(counts, rng)
    dist = np.abs(norm.normalize(out) - norm.normalize(counts)).mean(axis=(1, 2)).astype(np.float32)
    return SideOutputs(windows=out, features=window_features(out), distortion=dist)


def outputs(t: Transform, train_counts: np.ndarray, test_counts: np.ndarray, norm: Normalization,
            seed: int = 0) -> TransformOutputs:
    from .sanitize import features_digest

    return TransformOutputs(t, apply(t, train_counts, "train", norm, seed), apply(t, test_counts, "test", norm, seed),
                            cache_id=f"transform-{t.name}-v{VERSION}-seed{seed}-features-{features_digest()}")
