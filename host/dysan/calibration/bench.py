"""``dysan bench --steps calibration``: how well the calibration forest labels the scored windows, its table
size and its cost per window on the Cortex-M4F — the figures of docs/evaluation.md, rerunnable.

On a real data set (SisFall by default), for both protocols' splits exactly as ``dysan train`` / ``dysan
evaluate`` define them (fold 0, default folds, split seed 0, gender), each test user is calibrated as the
evaluation's DySan(o) does (:mod:`dysan.evaluate.streams`: the first ``seconds`` of every activity code), and
the forest labels the user's scored windows. Options, one row each:

- ``v1``: the forest before issue 12 — the user's windows alone, 20 fully grown trees, the 64 basic features;
- ``calibration only``: the same on the 92 features of :func:`dysan.features.calibration_features`;
- ``population only``: one forest on the run's training windows, no calibration at all;
- ``population + calibration``: the default (:func:`dysan.calibration.rf.train` with the training side as
  population, through :func:`dysan.evaluate.calib.rf_labels`, the evaluation's own code path).

For the default, the table of the first test user's forest is run in QEMU (:mod:`.cost`) over a sample of the
test windows: instructions per window of features + forest, and its labels checked against the host's.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from .. import ui
from ..data import make_split, prepare
from ..evaluate import calib, streams
from ..evaluate.runs import Side
from ..features import N_BASIC, calibration_features
from . import cost, rf

PROTOCOLS = ("within-subject", "new-users")
OPTIONS = ("v1", "calibration only", "population only", "population + calibration")
COST_WINDOWS = 400


def side_of(ws, idx: np.ndarray, name: str) -> Side:
    codes = np.array([ws.recordings[r].code for r in ws.recording[idx]])
    counts = ws.x[idx]
    return Side(name=name, x=counts, counts=counts, activity=ws.activity[idx], sensitive=ws.sensitive[idx],
                subject=ws.subject[idx], recording=ws.recording[idx], start=ws.start[idx], code=codes)


def per_user_labels(test: Side, st: streams.Streams, feats: np.ndarray, fit: Callable,
                    sizes: list[int] | None = None) -> np.ndarray:
    """Labels of the scored test windows from ``fit(cal_features, cal_labels)`` per user (-1 elsewhere); the
    device table size of each forest is appended to ``sizes`` when given."""
    out = np.full(len(test), -1, dtype=np.int64)
    for u in st.users:
        cal, idx = st.calibration[u], st.order[u]
        if len(idx):
            model = fit(feats[cal], test.activity[cal])
            out[idx] = rf.predict(model, feats[idx])
            if sizes is not None:
                with np.errstate(**np.geterr()):
                    sizes.append(len(rf.table_from_sklearn(model)[0]))
    return out


def user_only(seed: int) -> Callable:
    """The forest before issue 12: the user's calibration windows alone, fully grown trees."""
    from sklearn.ensemble import RandomForestClassifier

    def fit(x: np.ndarray, y: np.ndarray):
        return RandomForestClassifier(rf.USER_ONLY_TREES, random_state=seed, n_jobs=1).fit(x, y)
    return fit


def measure_protocol(ws, protocol: str, feats_all: np.ndarray, seconds: float, seed: int, fold: int = 0) -> dict:
    """Every option on one split (``fold``: the other folds of the protocol, a robustness check)."""
    from sklearn.ensemble import RandomForestClassifier

    split = make_split(ws, protocol, fold=fold)
    train, test = side_of(ws, split.train, "train"), side_of(ws, split.test, "test")
    st = streams.build(test, streams.windows_for(seconds))
    scored = st.scored_index()
    f_train, f_test = feats_all[split.train], feats_all[split.test]
    rows: dict[str, dict] = {}

    def row(name: str, labels: np.ndarray, **extra) -> None:
        per_user = [float((labels[st.order[u]] == test.activity[st.order[u]]).mean()) for u in st.users
                    if len(st.order[u])]
        hit = labels[scored] == test.activity[scored]
        codes = test.code[scored]
        rows[name] = {"accuracy": float(hit.mean()), "user_mean": float(np.mean(per_user)),
                      "user_min": float(np.min(per_user)),
                      "per_code": {str(c): float(hit[codes == c].mean()) for c in np.unique(codes)}, **extra}

    t0 = time.time()
    sizes_v1: list[int] = []
    sizes_user: list[int] = []
    row("v1", per_user_labels(test, st, f_test[:, :N_BASIC], user_only(seed), sizes_v1), features=N_BASIC,
        trees=rf.USER_ONLY_TREES, table_bytes_max=max(sizes_v1))
    row("calibration only", per_user_labels(test, st, f_test, user_only(seed), sizes_user),
        features=f_test.shape[1], trees=rf.USER_ONLY_TREES, table_bytes_max=max(sizes_user))
    pop_model = RandomForestClassifier(rf.DEFAULT_TREES, max_leaf_nodes=rf.DEFAULT_MAX_LEAVES, criterion="entropy",
                                       random_state=seed, n_jobs=1).fit(f_train, train.activity)
    pop_labels = np.full(len(test), -1)
    pop_labels[scored] = rf.predict(pop_model, f_test[scored])
    with np.errstate(**np.geterr()):
        table_pop = rf.table_from_sklearn(pop_model)[0]
    row("population only", pop_labels, table_bytes=len(table_pop), trees=rf.DEFAULT_TREES)
    labels, summary = calib.rf_labels(test, st, len(ws.classes), seed=seed, population=train)
    row("population + calibration", labels, table_bytes_max=summary["table_bytes_max"], trees=rf.DEFAULT_TREES,
        max_leaves=rf.DEFAULT_MAX_LEAVES, calibration_weight=rf.CALIBRATION_WEIGHT,
        fallback_users=summary["fallback_users"])
    first = st.users[0]
    with np.errstate(**np.geterr()):
        forest = rf.train(test.counts[st.calibration[first]], test.activity[st.calibration[first]],
                          len(ws.classes), seed=seed, population=rf.Population(f_train, train.activity,
                                                                               len(ws.classes)))
    return {"protocol": protocol, "split": split.info, "test_users": len(st.users), "scored_windows": len(scored),
            "calibration_windows": int(sum(len(c) for c in st.calibration.values())), "rows": rows,
            "seconds": round(time.time() - t0, 1), "_forest": forest, "_test": test, "_scored": scored}


def run(spec: str, seconds: float = 5.0, seed: int = 0, qemu: bool = True) -> dict:
    """Every option on both protocols, plus the QEMU cost of the default forest (see the module doc)."""
    with ui.progress("loading the data set", 1) as step:
        _, ws = prepare(spec)
        step.advance(1)
    with ui.progress(f"calibration features of {len(ws)} windows", 1) as step:
        feats_all = calibration_features(ws.x)
        step.advance(1)
    result: dict = {"data": spec, "seconds_per_activity_code": seconds,
                    "calibration_windows_per_code": streams.windows_for(seconds), "options": list(OPTIONS),
                    "region_bytes": rf.REGION_BYTES, "protocols": {}}
    with ui.progress("calibration forests per protocol", len(PROTOCOLS)) as step:
        for p in PROTOCOLS:
            res = measure_protocol(ws, p, feats_all, seconds, seed)
            forest, test, scored = res.pop("_forest"), res.pop("_test"), res.pop("_scored")
            if qemu and cost.available() is None:
                pick = scored[np.linspace(0, len(scored) - 1, min(COST_WINDOWS, len(scored))).astype(int)]
                c = cost.measure(forest.table, test.counts[pick])
                host = rf.predict_table(forest.table, calibration_features(test.counts[pick]))
                res["qemu"] = {**c.to_dict(), "table_bytes": len(forest.table),
                               "labels_equal_host": bool(np.array_equal(c.labels, host)),
                               "labels_equal_predict": bool(np.array_equal(
                                   host, forest.predict(calibration_features(test.counts[pick]))))}
            else:
                res["qemu"] = {"skipped": cost.available() or "--no-qemu"}
            result["protocols"][p] = res
            step.advance(1, note=p)
    return result


def table_rows(result: dict) -> list[list]:
    rows = []
    for name in result["options"]:
        cells = [name]
        for p in PROTOCOLS:
            r = result["protocols"][p]["rows"][name]
            cells.append(f"{100 * r['accuracy']:.1f} %")
        r = result["protocols"]["new-users"]["rows"][name]
        cells.append(str(r.get("table_bytes_max", r.get("table_bytes", "-"))))
        rows.append(cells)
    return rows


def folds(spec: str, protocol: str = "new-users", n_folds: int = 5, seconds: float = 5.0, seed: int = 0) -> dict:
    """Every option on every fold of a protocol (a robustness check of the fold-0 table)::

        .venv/bin/python -c "from dysan.calibration import bench; print(bench.folds('sisfall:PATH'))"
    """
    _, ws = prepare(spec)
    feats_all = calibration_features(ws.x)
    out = {}
    for fold in range(n_folds):
        r = measure_protocol(ws, protocol, feats_all, seconds, seed, fold=fold)
        out[fold] = {"test_users": r["test_users"], "scored_windows": r["scored_windows"],
                     **{k: round(v["accuracy"], 4) for k, v in r["rows"].items()}}
    return out
