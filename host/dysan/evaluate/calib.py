"""DySan(o)'s activity reference: a calibration random forest per user, as the device would get it.

For every user of a side, :func:`dysan.calibration.rf.train` fits the forest on the user's *raw* calibration
windows (:mod:`.streams`) and, with ``population`` (the run's training side: what ``dysan export`` ships as
the bundle's calibration population), on the population's windows too; the forest then labels the user's
scored raw windows with the device's hard vote (:func:`dysan.calibration.rf.predict`, the table's labels).

The population never holds the windows it labels: for the test side it is the training side (within-subject:
the same users' training windows, as the models saw them; new users: other people); for the training side's
users (whose mixed streams train the adaptive attackers) each user's own windows are left out of it.

``rf.train`` needs every activity in the calibration; a user whose stream lacks one (who could not be
calibrated on the device either) gets the same forest fitted on what there is, and is counted in
``fallback_users``. (``emlearn``, which packs the table, calls ``numpy.seterr(all="raise")`` when imported; the
numpy error state is restored around each call so later float code is not turned into exceptions.)
"""

from __future__ import annotations

import numpy as np

from ..calibration import rf
from ..errors import DysanError
from ..features import calibration_features
from .runs import Side
from .streams import Streams


def _fallback(side: Side, cal: np.ndarray, y: np.ndarray, n_classes: int, seed: int,
              population: rf.Population | None):
    """A forest for a calibration missing an activity (not deployable; counted apart), or None."""
    from sklearn.ensemble import RandomForestClassifier

    feats = calibration_features(side.counts[cal])
    if population is None:
        if len(np.unique(y)) < 2:
            return None
        model = RandomForestClassifier(rf.USER_ONLY_TREES, random_state=seed, n_jobs=1)
        return model.fit(feats, y)
    model = RandomForestClassifier(rf.DEFAULT_TREES, max_leaf_nodes=rf.DEFAULT_MAX_LEAVES, criterion="entropy",
                                   random_state=seed, n_jobs=1)
    weight = np.concatenate([np.ones(len(population)), np.full(len(y), rf.CALIBRATION_WEIGHT)])
    return model.fit(np.concatenate([population.features, feats]), np.concatenate([population.labels, y]),
                     sample_weight=weight)


def rf_labels(side: Side, streams: Streams, n_classes: int, seed: int = 0,
              population: Side | None = None) -> tuple[np.ndarray, dict]:
    """Activity label per scored window from each user's calibration forest (-1 elsewhere), and a summary."""
    labels = np.full(len(side), -1, dtype=np.int64)
    per_user, fallback, impure, sizes = {}, 0, 0, []
    feats = calibration_features(side.counts)
    pop_all = None
    if population is not None:
        pop_feats = feats if population is side else calibration_features(population.counts)
        pop_all = rf.Population(pop_feats, population.activity, n_classes)
    for u in streams.users:
        cal, idx = streams.calibration[u], streams.order[u]
        if not len(idx):
            continue
        y = side.activity[cal]
        if len(cal) == 0:
            raise DysanError(f"user {u} has no calibration windows")
        pop = pop_all
        if pop_all is not None and population is side:
            pop = pop_all.subset(side.subject != u)  # never the windows being labelled
        try:
            with np.errstate(**np.geterr()):  # importing emlearn switches numpy to raise on underflow: undo it
                forest = rf.train(side.counts[cal], y, n_classes, seed=seed, population=pop)
            labels[idx] = forest.predict(feats[idx])
            impure += int(not forest.pure_leaves)
            sizes.append(len(forest.table))
        except DysanError:
            fallback += 1
            model = _fallback(side, cal, y, n_classes, seed, pop)
            labels[idx] = rf.predict(model, feats[idx]) if model is not None else int(y[0])
        per_user[int(u)] = {
            "calibration_windows": len(cal),
            "scored_windows": len(idx),
            "rf_accuracy": float((labels[idx] == side.activity[idx]).mean()),
        }
    acc = [v["rf_accuracy"] for v in per_user.values()]
    scored = np.concatenate([streams.order[u] for u in streams.users])
    summary = {
        "forest": "population + calibration" if population is not None else "calibration only",
        "population_windows": None if pop_all is None else len(pop_all),
        "population_leaves_user_out": population is side,
        "users": len(per_user),
        "fallback_users": fallback,
        "impure_forests": impure,
        "table_bytes_max": max(sizes) if sizes else None,
        "rf_accuracy_pooled": float((labels[scored] == side.activity[scored]).mean()) if len(scored) else None,
        "rf_accuracy_user_mean": float(np.mean(acc)) if acc else None,
        "per_user": per_user,
    }
    return labels, summary
