"""The calibration forest on real SisFall windows (skipped without ../shared).

A few new users of the new-users split, calibrated as the evaluation's DySan(o) does (5 s per activity code):
the default forest (population + calibration, 92 features) labels their scored windows better than the
forest before issue 12 (their calibration windows alone, 64 features); its C features + forest give the same
labels as the host, natively and on the Cortex-M4F in QEMU, within 100 k instructions per window.
"""

from __future__ import annotations

import numpy as np
import pytest

from dysan.calibration import bench, cost, rf
from dysan.data import make_split
from dysan.evaluate import calib, streams
from dysan.features import N_BASIC, calibration_features

USERS = 3


@pytest.fixture(scope="module")
def case(sisfall_windows):
    _, ws = sisfall_windows
    split = make_split(ws, "new-users")
    users = np.unique(ws.subject[split.test])[:USERS]
    test = bench.side_of(ws, split.test[np.isin(ws.subject[split.test], users)], "test")
    population = bench.side_of(ws, split.train[::3], "train")  # a third of the population: a faster test
    st = streams.build(test, streams.windows_for(5.0))
    with np.errstate(**np.geterr()):
        labels, summary = calib.rf_labels(test, st, len(ws.classes), population=population)
    return ws, test, population, st, labels, summary


def test_population_forest_beats_the_calibration_only_forest(case):
    _, test, _, st, labels, summary = case
    scored = st.scored_index()
    feats = calibration_features(test.counts)
    old = bench.per_user_labels(test, st, feats[:, :N_BASIC], bench.user_only(0))
    acc_new = float((labels[scored] == test.activity[scored]).mean())
    acc_old = float((old[scored] == test.activity[scored]).mean())
    assert summary["fallback_users"] == 0 and summary["table_bytes_max"] <= rf.REGION_BYTES
    assert acc_new >= 0.85 and acc_new >= acc_old + 0.05, (acc_new, acc_old)


@pytest.fixture(scope="module")
def forest(case):
    ws, test, population, st, _, _ = case
    u = st.users[0]
    pop = rf.Population.from_windows(population.counts[::3], population.activity[::3], len(ws.classes))
    with np.errstate(**np.geterr()):
        return rf.train(test.counts[st.calibration[u]], test.activity[st.calibration[u]], len(ws.classes),
                        population=pop)


def test_c_features_and_forest_give_the_host_labels(case, forest):
    _, test, _, st, _, _ = case
    windows = test.counts[st.scored_index()[::4]]
    want = forest.predict(calibration_features(windows))
    np.testing.assert_array_equal(rf.predict_table(forest.table, calibration_features(windows)), want)
    np.testing.assert_array_equal(cost.labels_native(forest.table, windows), want)


def test_features_and_forest_within_budget_on_the_m4(case, forest):
    why = cost.available()
    if why:
        pytest.skip(why)
    _, test, _, st, _, _ = case
    windows = test.counts[st.scored_index()[::25]]
    c = cost.measure(forest.table, windows)
    np.testing.assert_array_equal(c.labels, forest.predict(calibration_features(windows)))
    assert c.max_window <= cost.BUDGET_INSTRUCTIONS, c.to_dict()


def test_export_ships_the_population_and_calibration_uses_it(tiny_run, tiny_export):
    """``dysan export`` writes the population; a forest from it and a few windows fits the RF region."""
    import json

    from dysan.export.exporter import load_run
    from dysan.preprocess import Normalization

    manifest = json.loads((tiny_export / "manifest.json").read_text())
    info = manifest["calibration_population"]
    pop = rf.Population.load(tiny_export / info["path"])
    config, arrays, _ = load_run(tiny_run)
    assert len(pop) == info["windows"] == len(arrays["x_train"]) and pop.features.shape[1] == info["features"]
    norm = Normalization.from_dict(config["normalization"])
    counts = np.rint(norm.denormalize(arrays["x_train"])).astype(np.int16)
    np.testing.assert_array_equal(pop.features, calibration_features(counts))
    pick = np.concatenate([np.flatnonzero(arrays["ya_train"] == c)[:6] for c in range(pop.n_classes)])
    with np.errstate(**np.geterr()):
        forest = rf.train(counts[pick], arrays["ya_train"][pick], pop.n_classes, population=pop)
    assert forest.population_windows == len(pop) and len(forest.table) <= rf.REGION_BYTES
