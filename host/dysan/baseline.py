"""Raw-data baselines: how well an activity analyst and a sensitive-attribute attacker do *before* any
sanitization, for each protocol, each attribute and each classifier family.

This is the "raw" row every privacy/utility figure is compared with. For each protocol all folds are run
(``--max-folds`` trims them for quick runs), every window is tested exactly once, and accuracies are
reported pooled over all tested windows, per fold and per user.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from . import classifiers, ui
from .data import Dataset, make_split, prepare
from .data import attributes as attributes_mod
from .data.splits import PROTOCOLS
from .data.windows import WindowSet
from .errors import DysanError
from .features import window_features


@dataclass
class BaselineConfig:
    data: str
    protocols: tuple[str, ...] = PROTOCOLS
    attributes: tuple[str, ...] = ("gender", "age-group")
    families: tuple[str, ...] = classifiers.FAMILIES
    activities: str = "default"
    folds: dict[str, int] = field(default_factory=lambda: {"within-subject": 4, "new-users": 5})
    max_folds: int | None = None
    epochs: int = 10
    rf_trees: int = 200
    seed: int = 0


def with_attribute(ws: WindowSet, ds: Dataset, spec: str) -> WindowSet:
    """The same windows labelled with another sensitive attribute."""
    attr = attributes_mod.parse(spec)
    per_subject = np.array([attr.value(ds.subjects[s]) for s in ws.subjects], dtype=np.int64)
    out = ws.subset(np.arange(len(ws)))
    out.attribute = attr
    out.sensitive = per_subject[ws.subject]
    return out


@dataclass
class Plan:
    """What a baseline run will do, decided before any model is trained.

    Why up front: a data set where an attribute has one value (age group on data with no one over 60), or too
    few subjects of one value for the new-users folds, used to fail after half the work had run.
    """

    attributes: tuple[str, ...]
    protocols: tuple[str, ...]
    notes: list[str] = field(default_factory=list)
    #: attributes that can be evaluated under each protocol (new-users needs enough subjects of each value)
    by_protocol: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _subject_values(ws: WindowSet) -> np.ndarray:
    """The attribute value of every subject that has windows."""
    per = ws.subject_sensitive()
    return per[per >= 0]


def plan(cfg: BaselineConfig, labelled: dict[str, WindowSet]) -> Plan:
    """Check every (protocol, attribute) before training: skip what cannot be evaluated, with a one-line note
    that says why and which fold count would work."""
    notes: list[str] = []
    usable: list[str] = []
    for name, w in labelled.items():
        values = np.unique(_subject_values(w))
        if len(values) < 2:
            only = w.attribute.labels[int(values[0])] if len(values) else "none"
            notes.append(f"{name}: skipped — every subject has the same value ({only}), nothing to attack")
            continue
        usable.append(name)
    by_protocol: dict[str, tuple[str, ...]] = {}
    for protocol in cfg.protocols:
        if protocol != "new-users":
            by_protocol[protocol] = tuple(usable)
            continue
        folds = cfg.folds[protocol]
        ok = []
        for name in usable:
            vals = _subject_values(labelled[name])
            minority = int(min((vals == v).sum() for v in np.unique(vals)))
            if minority >= folds:
                ok.append(name)
            elif minority >= 2:
                notes.append(f"new-users / {name}: skipped — {folds} folds need {folds} subjects of each value, "
                             f"the data has {minority} of one; --folds-new-users {minority} works")
            else:
                notes.append(f"new-users / {name}: skipped — only {minority} subject of one value "
                             "(subject-grouped folds need at least 2)")
        if ok:
            by_protocol[protocol] = tuple(ok)
    protocols = tuple(p for p in cfg.protocols if by_protocol.get(p))
    for p in cfg.protocols:
        if p not in protocols and usable:
            notes.append(f"{p}: skipped — no attribute can be evaluated with these folds")
    if not protocols:
        raise DysanError("nothing to evaluate: " + "; ".join(notes))
    return Plan(attributes=tuple(usable), protocols=protocols, notes=notes, by_protocol=by_protocol)


def _features(ws: WindowSet) -> np.ndarray:
    """Window features, computed once per window set (every fold and task reuses them)."""
    if "features" not in ws.meta:
        ws.meta["features"] = window_features(ws.x)
    return ws.meta["features"]


def _run_task(ws: WindowSet, target: np.ndarray, role: str, n_classes: int, protocol: str, cfg: BaselineConfig,
              family: str, step) -> dict:
    n_folds = cfg.folds[protocol]
    use = n_folds if cfg.max_folds is None else min(n_folds, cfg.max_folds)
    pred = np.full(len(ws), -1, dtype=np.int64)
    fold_acc, splits = [], []
    for fold in range(use):
        split = make_split(ws, protocol, fold=fold, n_folds=n_folds, seed=cfg.seed)
        model = classifiers.make(family, role, n_classes, seed=cfg.seed + fold, epochs=cfg.epochs,
                                 rf_trees=cfg.rf_trees)
        if isinstance(model, classifiers.RFClassifier):
            feats = _features(ws)
            model.fit_features(feats[split.train], target[split.train])
            p = model.predict_features(feats[split.test])
        else:
            model.fit(ws.x[split.train], target[split.train])
            p = model.predict(ws.x[split.test])
        pred[split.test] = p
        fold_acc.append(float((p == target[split.test]).mean()))
        splits.append(split.info)
        step.advance(1, note=f"{protocol} {role} {family} fold {fold + 1}/{use}")
    tested = pred >= 0
    correct = pred[tested] == target[tested]
    majority = np.bincount(target[tested]).max() / tested.sum()
    return {
        "accuracy": float(correct.mean()),
        "fold_accuracies": fold_acc,
        "majority_class_rate": float(majority),
        "tested_windows": int(tested.sum()),
        "per_user": classifiers.per_user_accuracy(correct, ws.subject[tested], ws.subjects),
        "splits": splits,
    }


def run(cfg: BaselineConfig, ui_progress) -> dict:
    """Run every (protocol, task, family); ``ui_progress(label, total)`` is a progress context factory."""
    t0 = time.time()
    ds, ws = prepare(cfg.data, activities=cfg.activities, attribute=cfg.attributes[0])
    if "rf" in cfg.families:
        _features(ws)  # before the relabelled copies, so they share it
    labelled = {cfg.attributes[0]: ws}
    for a in cfg.attributes[1:]:
        labelled[a] = with_attribute(ws, ds, a)
    checked = plan(cfg, labelled)
    for note in checked.notes:
        ui.info(f"note: {note}")
    n_jobs = 0
    jobs: list[tuple[str, str, WindowSet]] = []
    for protocol in checked.protocols:
        attrs = checked.by_protocol[protocol]
        # Activity runs on the first evaluable attribute's windows: new-users folds are stratified by it.
        protocol_tasks = [("activity", labelled[attrs[0]]), *((a, labelled[a]) for a in attrs)]
        n = cfg.folds[protocol] if cfg.max_folds is None else min(cfg.folds[protocol], cfg.max_folds)
        n_jobs += n * len(protocol_tasks) * len(cfg.families)
        jobs += [(protocol, task, w) for task, w in protocol_tasks]
    results = []
    with ui_progress("baseline", n_jobs) as step:
        for protocol, task, w in jobs:
            if task == "activity":
                target, n_classes = w.activity, len(w.classes)
            else:
                target, n_classes = w.sensitive, 2
            for family in cfg.families:
                r = _run_task(w, target, task, n_classes, protocol, cfg, family, step)
                r.update({"protocol": protocol, "task": task, "model": family})
                results.append(r)
    return {
        "command": "baseline",
        "data": ds.summary(),
        "synthetic": ds.synthetic,
        "windows": ws.counts(),
        "activity_map": ws.meta.get("activity_map"),
        "attributes": {a: labelled[a].attribute.to_dict() for a in checked.attributes},
        "notes": checked.notes,
        "seed": cfg.seed,
        "epochs_cnn": cfg.epochs,
        "rf_trees": cfg.rf_trees,
        "folds": {p: cfg.folds[p] for p in checked.protocols},
        "max_folds": cfg.max_folds,
        "results": results,
        "seconds": round(time.time() - t0, 1),
    }


def table_rows(report: dict) -> tuple[list[str], list[list]]:
    """Rows (protocol, model) x columns (tasks) of pooled accuracies, with per-user spread."""
    tasks = list(dict.fromkeys(r["task"] for r in report["results"]))
    cols = ["protocol / model", *tasks]
    rows = []
    keys = list(dict.fromkeys((r["protocol"], r["model"]) for r in report["results"]))
    for protocol, model in keys:
        row: list = [f"{protocol} / {model}"]
        for t in tasks:
            key = (protocol, model, t)
            r = next((x for x in report["results"] if (x["protocol"], x["model"], x["task"]) == key), None)
            if r is None:
                row.append(None)
                continue
            users = np.array(list(r["per_user"].values()))
            row.append(f"{100 * r['accuracy']:.1f} %  (users {100 * users.min():.0f}-{100 * users.max():.0f})")
        rows.append(row)
    return cols, rows
