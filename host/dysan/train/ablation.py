"""Ablation of the hardened-training techniques (issue 15): each alone and the combination, scored by
random-forest attackers *retrained on the sanitized windows* (the adaptive attacker of BRIEF §6).

A row is one training configuration on one setting (protocol × attribute): a small grid trained with
:func:`dysan.train.runner.run_grid`, then, per grid point, the light scorer :func:`score_run`:

- sanitize the run's train and test windows with the point's S (float), map them back to int16 counts as
  the device sends them, through the on-device jitter (:mod:`dysan.jitter`, integer, window counter =
  window index) when the row trains with it;
- fit the evaluation's RF attacker (:mod:`dysan.evaluate.attackers`, window features, 200 trees) on the
  sanitized *training* windows for the activity, the attribute and (within-subject) the subject, and test
  on the sanitized test windows: activity accuracy, attribute accuracy plain and balanced,
  re-identification accuracy;
- L1 distortion |S(x) − x| in normalized units (before the jitter).

Each point is one fixed sanitizer (no selection strategy): the ablation ranks training objectives, the
full evaluation (``dysan evaluate``) then measures DySan(o) on the chosen one. A row's headline is its best
frontier point: the lowest attribute accuracy among points whose activity is within ``ACTIVITY_SLACK`` of
raw, or — when no point is — the point with the best activity (marked). ``raw`` rows give the reference.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from .. import ui
from ..errors import DysanError
from ..rundir import ModelDir, RunDir
from .grid import GridPoint
from .loop import HARDENED, TrainConfig

ACTIVITY_SLACK = 0.03
JITTER_EVAL_SEED = 0x5EED
"""Device seed of the jitter applied to scored windows (any value: attackers never see it)."""

ROWS: dict[str, dict] = {
    "paper": {},
    "ensemble": {"adversaries": 3, "reset_every": 3, "replay": 0.5},
    "feature": {"feature_adversary": True},
    "identity": {"identity_adversary": True},
    "entropy": {"privacy_loss": "entropy"},
    "moments": {"moment_match": 1.0},
    "jitter": {"jitter": True},
    "jitter-wide": {"jitter": True, "jitter_angle": 25.0, "jitter_gain": 0.25},
    "jitter-wide-gain": {"jitter": True, "jitter_angle": 25.0, "jitter_gain": 0.5},
    "combined": {**HARDENED, "jitter": True},
    "hardened": dict(HARDENED),
}
"""Training options of each ablation row (on top of the base settings). ``identity`` applies to
within-subject settings only (the combined and hardened rows drop it for new users)."""

SETTINGS: dict[str, tuple[str, str]] = {
    "within-gender": ("within-subject", "gender"),
    "newusers-gender": ("new-users", "gender"),
    "newusers-age": ("new-users", "age-group"),
}


def row_config(row: str, setting: str, base: TrainConfig) -> TrainConfig | None:
    """The row's TrainConfig, or None when the row does not apply to the setting."""
    if row not in ROWS:
        raise DysanError(f"unknown ablation row {row!r} (choose from {', '.join(ROWS)})")
    opts = dict(ROWS[row])
    if SETTINGS[setting][0] != "within-subject" and opts.get("identity_adversary"):
        if row == "identity":
            return None
        opts["identity_adversary"] = False
    return replace(base, **opts)


def _balanced(pred: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([(pred[y == c] == c).mean() for c in classes]))


def _attack(train_feats: np.ndarray, y_train: np.ndarray, test_feats: np.ndarray, y_test: np.ndarray,
            role: str, trees: int) -> dict:
    from ..evaluate.attackers import AttackConfig, fit, predict

    n_classes = int(max(y_train.max(), y_test.max())) + 1
    model = fit("rf", role, n_classes, train_feats, y_train, AttackConfig(families=("rf",), rf_trees=trees))
    pred = predict(model, test_feats)
    return {"accuracy": float((pred == y_test).mean()), "balanced": _balanced(pred, y_test)}


def _features(counts: np.ndarray) -> np.ndarray:
    from ..classifiers import to_int16
    from ..features import window_features

    return np.concatenate([window_features(to_int16(counts[i:i + 4096])) for i in range(0, len(counts), 4096)])


def _sanitized_counts(model_dir: ModelDir, x: np.ndarray, norm, cfg: TrainConfig,
                      offset: int) -> tuple[np.ndarray, float]:
    import keras

    from ..classifiers import to_int16

    S = keras.models.load_model(model_dir.keras("S"))
    s = np.concatenate([S(x[i:i + 2048], training=False).numpy() for i in range(0, len(x), 2048)])
    l1 = float(np.abs(s - x).mean())
    counts = to_int16(norm.denormalize(s))
    if cfg.jitter:
        from .. import jitter

        counters = np.arange(offset, offset + len(counts), dtype=np.uint64)
        counts = jitter.apply(counts, JITTER_EVAL_SEED, counters, cfg.jitter_params())
    return counts, l1


def score_run(run_dir: Path, points: list[GridPoint], cfg: TrainConfig, trees: int = 200,
              log: Callable[[str], None] = ui.info, jitter_reference: bool = False) -> dict:
    """RF attackers retrained on each point's sanitized windows (and on raw windows), see the module doc.
    ``jitter_reference``: also on raw windows through the on-device jitter alone (what the transform costs
    without any sanitizer)."""
    from ..preprocess import Normalization
    from .loop import load_arrays

    rd = RunDir(run_dir)
    config = json.loads(rd.config.read_text())
    norm = Normalization.from_dict(config["normalization"])
    arr = load_arrays(run_dir)
    within = config["protocol"] == "within-subject"
    tasks = [("activity", "activity", "ya"), ("attribute", "sensitive", "ys")]
    if within and "subj_train" in arr:
        tasks.append(("reid", "subject", "subj"))

    def attack_all(f_train, f_test) -> dict:
        return {name: _attack(f_train, arr[f"{key}_train"], f_test, arr[f"{key}_test"], role, trees)
                for name, role, key in tasks}

    cache = rd.ablation_raw
    if cache.exists():
        raw = json.loads(cache.read_text())
    else:
        from ..classifiers import to_int16

        raw = attack_all(_features(to_int16(norm.denormalize(arr["x_train"]))),
                         _features(to_int16(norm.denormalize(arr["x_test"]))))
        cache.write_text(json.dumps(raw, indent=1))
    jit = rd.ablation_raw_jitter
    if jitter_reference and not jit.exists():
        from .. import jitter
        from ..classifiers import to_int16

        def jittered(x: np.ndarray, offset: int) -> np.ndarray:
            counters = np.arange(offset, offset + len(x), dtype=np.uint64)
            return jitter.apply(to_int16(norm.denormalize(x)), JITTER_EVAL_SEED, counters, cfg.jitter_params())

        jit.write_text(json.dumps(attack_all(_features(jittered(arr["x_train"], 0)),
                                             _features(jittered(arr["x_test"], len(arr["x_train"])))), indent=1))
    rows = {}
    for p in points:
        model_dir = rd.model(p.name)
        target = model_dir.ablation
        if target.exists():
            rows[p.name] = json.loads(target.read_text())
            continue
        t0 = time.time()
        c_train, _ = _sanitized_counts(model_dir, arr["x_train"], norm, cfg, 0)
        c_test, l1 = _sanitized_counts(model_dir, arr["x_test"], norm, cfg, len(arr["x_train"]))
        rec = {"point": p.to_dict(), "l1": l1, **attack_all(_features(c_train), _features(c_test)),
               "train_seconds": json.loads(model_dir.done.read_text())["train_seconds"],
               "score_seconds": round(time.time() - t0, 1)}
        target.write_text(json.dumps(rec, indent=1))
        rows[p.name] = rec
        log(f"  {run_dir.name} {p.name}: activity {100 * rec['activity']['accuracy']:.1f} %, attribute "
            f"{100 * rec['attribute']['accuracy']:.1f} % (balanced {100 * rec['attribute']['balanced']:.1f} %)")
    out = {"raw": raw, "points": rows, "best": best_point(raw, rows)}
    if jit.exists():
        out["raw_jitter"] = json.loads(jit.read_text())
    return out


def best_point(raw: dict, rows: dict) -> dict:
    """The frontier point: lowest attribute accuracy with activity ≥ raw − slack (else the best activity)."""
    floor = raw["activity"]["accuracy"] - ACTIVITY_SLACK
    ok = [r for r in rows.values() if r["activity"]["accuracy"] >= floor]
    if ok:
        best = min(ok, key=lambda r: (r["attribute"]["balanced"], r["attribute"]["accuracy"]))
        return {**best, "meets_activity": True}
    best = max(rows.values(), key=lambda r: r["activity"]["accuracy"])
    return {**best, "meets_activity": False}


def run_ablation(out: Path, data: str, rows: list[str], settings: list[str], points: list[GridPoint],
                 base: TrainConfig, workers: int = 1, trees: int = 200,
                 log: Callable[[str], None] = ui.info) -> dict:
    """Train and score every (setting, row); resumable (finished runs and scores are reused)."""
    from .runner import prepare_run, run_grid

    results: dict = {"grid": [p.to_dict() for p in points], "base": base.to_dict(), "rf_trees": trees,
                     "activity_slack": ACTIVITY_SLACK, "settings": {}}
    target = out / "ablation.json"
    for setting in settings:
        if setting not in SETTINGS:
            raise DysanError(f"unknown ablation setting {setting!r} (choose from {', '.join(SETTINGS)})")
        protocol, attribute = SETTINGS[setting]
        res = results["settings"].setdefault(setting, {"protocol": protocol, "attribute": attribute, "rows": {}})
        for row in rows:
            cfg = row_config(row, setting, base)
            if cfg is None:
                continue
            run_dir = out / setting / row
            log(f"ablation {setting} / {row}: {cfg.to_dict()}")
            prepare_run(run_dir, data, "default", attribute, protocol, 0, None, 0, points, cfg)
            t0 = time.time()
            summary = run_grid(run_dir, points, cfg, workers=workers, log=log)
            scored = score_run(run_dir, points, cfg, trees=trees, log=log, jitter_reference=cfg.jitter)
            res["raw"] = scored["raw"]
            res["rows"][row] = {"config": cfg.to_dict(), "train_seconds_sum": summary["train_seconds_sum"],
                                "wall_seconds": round(time.time() - t0, 1), **scored}
            target.write_text(json.dumps(results, indent=1))
    return results


def table(results: dict) -> list[str]:
    """Markdown table of the rows' best frontier points (what docs/evaluation.md shows)."""
    lines = ["| setting | row | point | activity | attribute | attribute bal. | re-id | L1 | train s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for setting, res in results["settings"].items():
        raw = res.get("raw")
        if raw:
            reid = f"{100 * raw['reid']['accuracy']:.1f}" if "reid" in raw else "–"
            lines.append(f"| {setting} | raw | – | {100 * raw['activity']['accuracy']:.1f} | "
                         f"{100 * raw['attribute']['accuracy']:.1f} | {100 * raw['attribute']['balanced']:.1f} | "
                         f"{reid} | 0 | – |")
        # raw windows through the jitter alone, once per amplitude the rows used (each jitter row carries its own)
        jitters = {}
        for r in res["rows"].values():
            c = TrainConfig.from_dict(r.get("config", {}))
            if c.jitter and "raw_jitter" in r:
                jitters.setdefault(f"±{c.jitter_angle:g}°, ±{100 * c.jitter_gain:g} %", r["raw_jitter"])
        for amplitude, rj in jitters.items():
            reid = f"{100 * rj['reid']['accuracy']:.1f}" if "reid" in rj else "–"
            lines.append(f"| {setting} | raw + jitter only ({amplitude}) | – | "
                         f"{100 * rj['activity']['accuracy']:.1f} | "
                         f"{100 * rj['attribute']['accuracy']:.1f} | {100 * rj['attribute']['balanced']:.1f} | "
                         f"{reid} | – | – |")
        for row, r in res["rows"].items():
            b = r["best"]
            reid = f"{100 * b['reid']['accuracy']:.1f}" if "reid" in b else "–"
            mark = "" if b["meets_activity"] else " (activity < raw − 3)"
            lines.append(f"| {setting} | {row} | {b['point']['name']}{mark} | {100 * b['activity']['accuracy']:.1f} | "
                         f"{100 * b['attribute']['accuracy']:.1f} | {100 * b['attribute']['balanced']:.1f} | {reid} | "
                         f"{b['l1']:.3f} | {r['train_seconds_sum']:.0f} |")
    return lines
