"""Adversaries that see what attackers see (issue 15): a feature adversary and an identity adversary.

- **Window statistics** (:func:`window_stats`): differentiable versions of what the random-forest attacker
  reads (:mod:`dysan.features`): per signal (the 6 channels in physical units and the two magnitudes) the
  mean, spread, min, max, mean absolute first difference (jerk), min / max over 5 blocks of the block
  jerk, and the log power in four spectral bands (0.4–1.2, 1.2–3.2, 3.2–6.4, 6.4–25 Hz). The per-axis
  gravity means carry the mount angle, a per-person fingerprint that a convolutional discriminator on
  normalized windows can ignore but the RF cannot. The zero-crossing count of the RF has no gradient and
  is replaced by the band powers. 8 signals × 11 = 88 values, standardized with constants measured on the
  raw training windows.
- **Feature adversary**: a small MLP (88 → 64 → 32 → classes) on those statistics.
- **Identity adversary**: the device classifier (:func:`dysan.nets.device.classifier`) predicting which
  training subject recorded the window: whatever lets an attacker recognise the person gives away that
  person's attribute within-subject.
"""

from __future__ import annotations

import itertools

import numpy as np

from .. import contract
from ..tfutil import import_tf

tf = import_tf()

import keras  # noqa: E402
from keras import layers  # noqa: E402

SIGNALS = 8
STATS = ("mean", "std", "min", "max", "jerk", "bjmin", "bjmax", "band1", "band2", "band3", "band4")
N_STATS = SIGNALS * len(STATS)
BLOCKS = 5
BAND_EDGES = (1, 3, 8, 16, contract.WINDOW // 2 + 1)
"""rfft bin edges of the bands (bin width 50 / 125 = 0.4 Hz; bin 0, the mean, is left out)."""


def window_stats(x_norm, center, scale):
    """``(b, W, 6)`` normalized windows -> ``(b, N_STATS)`` statistics (unstandardized)."""
    counts = x_norm * scale + center
    u = counts / tf.constant(contract.COUNTS_PER_UNIT, dtype=counts.dtype)
    acc = tf.sqrt(tf.reduce_sum(tf.square(u[..., 0:3]), axis=-1, keepdims=True) + 1e-6)
    gyro = tf.sqrt(tf.reduce_sum(tf.square(u[..., 3:6]), axis=-1, keepdims=True) + 1e-6)
    sig = tf.concat([u, acc, gyro], axis=-1)
    mean = tf.reduce_mean(sig, axis=1)
    cen = sig - mean[:, None, :]
    std = tf.sqrt(tf.reduce_mean(tf.square(cen), axis=1) + 1e-6)
    lo, hi = tf.reduce_min(sig, axis=1), tf.reduce_max(sig, axis=1)
    jerk = tf.reduce_mean(tf.abs(sig[:, 1:] - sig[:, :-1]), axis=1)
    n = contract.WINDOW // BLOCKS
    blk = tf.reshape(sig, (-1, BLOCKS, n, SIGNALS))
    bj = tf.reduce_mean(tf.abs(blk[:, :, 1:] - blk[:, :, :-1]), axis=2)
    spec = tf.signal.rfft(tf.transpose(cen, (0, 2, 1)))
    power = tf.square(tf.abs(spec)) / float(contract.WINDOW ** 2)
    bands = [tf.math.log(tf.reduce_sum(power[..., a:b], axis=-1) + 1e-6)
             for a, b in itertools.pairwise(BAND_EDGES)]
    return tf.concat([mean, std, lo, hi, jerk, tf.reduce_min(bj, axis=1), tf.reduce_max(bj, axis=1), *bands],
                     axis=-1)


class StatsStandardizer:
    """:func:`window_stats` standardized with constants measured once on raw training windows."""

    def __init__(self, center, scale, x_raw: np.ndarray, batch: int = 1024) -> None:
        self.center = tf.constant(np.asarray(center, dtype=np.float32))
        self.scale = tf.constant(np.asarray(scale, dtype=np.float32))
        raw = np.concatenate([window_stats(tf.constant(x_raw[i:i + batch]), self.center, self.scale).numpy()
                              for i in range(0, len(x_raw), batch)])
        self.mu = tf.constant(raw.mean(axis=0).astype(np.float32))
        self.sigma = tf.constant(np.maximum(raw.std(axis=0), 1e-3).astype(np.float32))

    def __call__(self, x_norm):
        return (window_stats(x_norm, self.center, self.scale) - self.mu) / self.sigma


def feature_adversary(n_classes: int, name: str = "F") -> keras.Model:
    inp = keras.Input((N_STATS,), name="stats")
    h = layers.Dense(64, activation="relu", name="fc1")(inp)
    h = layers.Dense(32, activation="relu", name="fc2")(h)
    return keras.Model(inp, layers.Dense(n_classes, name="logits")(h), name=name)


def identity_adversary(n_subjects: int, name: str = "I") -> keras.Model:
    from .device import classifier

    return classifier(n_subjects, name=name)
