"""Analysts and attackers on sanitized streams: adaptive (retrained on sanitized data) and raw-trained.

The threat model (BRIEF §6): the analytics service receives only sanitized windows and may train any
classifier on sanitized data of users whose labels it knows. So for each strategy the **adaptive** attacker
(and the activity analyst) is trained on the *training* windows sanitized by that same strategy — where a
strategy mixes models, on the mixed stream it produces on the training users — and tested on the sanitized
test windows. The **raw-trained** (non-adaptive) ones are trained once on raw training windows and applied
to each strategy's sanitized test windows. Families are :mod:`dysan.classifiers`' ``rf`` (feature random
forest) and ``cnn`` (the paper's predictor / discriminator CNNs), both on count-unit windows.

A mixed stream is never materialized per model: :func:`gather` picks, for each window, the row of the
model that sanitizes it (the per-model arrays are memory-mapped caches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import classifiers
from .sanitize import ModelOutputs
from .strategies import RAW


@dataclass
class AttackConfig:
    families: tuple[str, ...] = classifiers.FAMILIES
    cnn_epochs: int = 10
    rf_trees: int = 200
    seed: int = 0


def gather(choice: np.ndarray, idx: np.ndarray, raw: np.ndarray, per_model: list[np.ndarray]) -> np.ndarray:
    """Rows ``idx`` of the stream where window i comes from ``per_model[choice[i]]`` (``raw`` for RAW)."""
    out = np.empty((len(idx), *raw.shape[1:]), dtype=raw.dtype)
    picked = choice[idx]
    for m in np.unique(picked):
        rows = np.flatnonzero(picked == m)
        rows = rows[np.argsort(idx[rows])]  # ascending reads: memory-mapped sources are read in order
        src = raw if m == RAW else per_model[int(m)]
        out[rows] = src[idx[rows]]
    return out


@dataclass
class Inputs:
    """What a classifier family reads for a set of windows: features (rf) or count windows (cnn)."""

    features: np.ndarray | None
    windows: np.ndarray | None

    def for_family(self, family: str) -> np.ndarray:
        data = self.features if family == "rf" else self.windows
        assert data is not None, family
        return data


def inputs(choice: np.ndarray, idx: np.ndarray, side: str, raw_counts: np.ndarray, raw_features: np.ndarray,
           outputs: list[ModelOutputs], families: tuple[str, ...]) -> Inputs:
    feats = wins = None
    if "rf" in families:
        feats = gather(choice, idx, raw_features, [o.side(side).features for o in outputs])
    if "cnn" in families:
        wins = gather(choice, idx, raw_counts, [o.side(side).windows for o in outputs])
    return Inputs(feats, wins)


def fit(family: str, role: str, n_classes: int, data: np.ndarray, y: np.ndarray, cfg: AttackConfig):
    model = classifiers.make(family, role, n_classes, seed=cfg.seed, epochs=cfg.cnn_epochs, rf_trees=cfg.rf_trees)
    if isinstance(model, classifiers.RFClassifier):
        return model.fit_features(data, y)
    return model.fit(data, y)


def predict(model, data: np.ndarray) -> np.ndarray:
    if isinstance(model, classifiers.RFClassifier):
        return model.predict_features(data)
    return model.predict(data)
