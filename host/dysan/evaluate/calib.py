"""DySan(o)'s activity reference: a calibration random forest per user, as the device would train it.

For every user of a side, the forest of :func:`dysan.calibration.rf.train` (20 trees, fully grown, the
device's table) is trained on the user's *raw* calibration windows (:mod:`.streams`) and labels the user's
scored raw windows. ``rf.train`` needs every activity in the calibration; a user whose stream lacks one (it
cannot be calibrated on the device either) gets the same forest settings fitted on the classes present, and
is counted in ``fallback_users``. Leaves are checked pure, so the device's hard vote gives the same labels
as scikit-learn's ``predict`` used here (see :mod:`dysan.calibration.rf`).

(``emlearn``, which packs the table, calls ``numpy.seterr(all="raise")`` when imported; the numpy error state
is restored around each call so later float code in the process is not turned into exceptions.)
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier

from ..calibration import rf
from ..errors import DysanError
from .runs import Side
from .streams import Streams


def rf_labels(side: Side, streams: Streams, raw_features: np.ndarray, n_classes: int,
              seed: int = 0) -> tuple[np.ndarray, dict]:
    """Activity label per scored window from each user's calibration forest (-1 elsewhere), and a summary."""
    labels = np.full(len(side), -1, dtype=np.int64)
    per_user, fallback, impure = {}, 0, 0
    for u in streams.users:
        cal, idx = streams.calibration[u], streams.order[u]
        if not len(idx):
            continue
        y = side.activity[cal]
        if len(cal) == 0:
            raise DysanError(f"user {u} has no calibration windows")
        try:
            with np.errstate(**np.geterr()):  # importing emlearn switches numpy to raise on underflow: undo it
                forest = rf.train(side.counts[cal], y, n_classes, seed=seed)
            model = forest.model
            impure += int(not forest.pure_leaves)
        except DysanError:
            fallback += 1
            model = None
            if len(np.unique(y)) > 1:
                model = RandomForestClassifier(rf.DEFAULT_TREES, random_state=seed, min_samples_leaf=1, n_jobs=1)
                model.fit(raw_features[cal], y)
        labels[idx] = model.predict(raw_features[idx]) if model is not None else int(y[0])
        per_user[int(u)] = {
            "calibration_windows": len(cal),
            "scored_windows": len(idx),
            "rf_accuracy": float((labels[idx] == side.activity[idx]).mean()),
        }
    acc = [v["rf_accuracy"] for v in per_user.values()]
    scored = np.concatenate([streams.order[u] for u in streams.users])
    summary = {
        "users": len(per_user),
        "fallback_users": fallback,
        "impure_forests": impure,
        "rf_accuracy_pooled": float((labels[scored] == side.activity[scored]).mean()) if len(scored) else None,
        "rf_accuracy_user_mean": float(np.mean(acc)) if acc else None,
        "per_user": per_user,
    }
    return labels, summary
