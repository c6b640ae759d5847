"""The analysts and attackers: classifiers trained on windows (raw or sanitized) to predict a label.

Two families, used by ``dysan baseline`` and by the adaptive attackers of ``dysan evaluate``:

- ``rf``: a random forest (200 trees) on the integer window features of :mod:`dysan.features`;
- ``cnn``: the paper's predictor CNN (activity) or discriminator CNN (sensitive attribute), trained with
  the authors' optimizer settings (Adam, lr 5e-4, batch 256).

Both take windows in count units, ``(n, 125, 6)``, int16 or float (sanitized windows mapped back to
counts are float); the RF rounds and saturates them to int16 first, as the device would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from . import contract
from .features import window_features
from .preprocess import Normalization
from .tfutil import import_tf

FAMILIES = ("rf", "cnn")


def to_int16(windows: np.ndarray) -> np.ndarray:
    """Round and saturate count-unit windows to int16 (no-op for int16 input)."""
    w = np.asarray(windows)
    if w.dtype == np.int16:
        return w
    return np.clip(np.rint(w), contract.INT16_MIN, contract.INT16_MAX).astype(np.int16)


@dataclass
class RFClassifier:
    seed: int = 0
    n_estimators: int = 200
    n_jobs: int = 2

    def fit(self, windows: np.ndarray, y: np.ndarray) -> RFClassifier:
        return self.fit_features(window_features(to_int16(windows)), y)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.predict_features(window_features(to_int16(windows)))

    def fit_features(self, features: np.ndarray, y: np.ndarray) -> RFClassifier:
        """Fit on precomputed :func:`window_features` (callers reusing them across folds)."""
        self.model = RandomForestClassifier(self.n_estimators, n_jobs=self.n_jobs, random_state=self.seed)
        self.model.fit(features, y)
        return self

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict(features)


@dataclass
class CNNClassifier:
    """``role`` picks the architecture: ``"activity"`` -> predictor, anything else -> discriminator."""

    role: str
    n_classes: int
    seed: int = 0
    epochs: int = 10
    batch_size: int = 256
    learning_rate: float = 5e-4
    verbose: int = 0

    def fit(self, windows: np.ndarray, y: np.ndarray) -> CNNClassifier:
        import_tf()
        import keras

        from .nets import builders

        keras.utils.set_random_seed(self.seed)
        self.norm = Normalization.fit(to_int16(windows))
        nets = builders("paper", n_act=self.n_classes, n_sens=self.n_classes)
        self.model = nets["P" if self.role == "activity" else "D"]()
        self.model.compile(
            optimizer=keras.optimizers.Adam(self.learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        self.model.fit(
            self.norm.normalize(windows), np.asarray(y), batch_size=self.batch_size, epochs=self.epochs,
            verbose=self.verbose, shuffle=True,
        )
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        from .tfutil import infer

        logits = infer(self.model, self.norm.normalize(windows).astype(np.float32))
        return np.argmax(logits, axis=1)


def make(family: str, role: str, n_classes: int, seed: int = 0, epochs: int = 10, rf_trees: int = 200):
    if family == "rf":
        return RFClassifier(seed=seed, n_estimators=rf_trees)
    if family == "cnn":
        return CNNClassifier(role=role, n_classes=n_classes, seed=seed, epochs=epochs)
    raise ValueError(f"unknown classifier family {family!r} (choose from {FAMILIES})")


def per_user_accuracy(correct: np.ndarray, subject: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    """Accuracy per subject name, for the subjects present."""
    out = {}
    for s in np.unique(subject):
        m = subject == s
        out[names[int(s)]] = float(correct[m].mean())
    return out
