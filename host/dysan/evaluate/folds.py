"""Mean ± spread over folds: what ``dysan evaluate RUN --folds ...`` means, and the table it writes.

A run's sanitizers (and their own P and D) are trained on *one* fold's training part (``dysan train
--fold k``): every other fold's test windows are in that training part (within-subject: other trials or
time blocks of the same people; new users: the other folds' people). So a run cannot honestly be scored on
another fold, and a fold-averaged figure needs **one run per fold**, each evaluated on its own split. That
is what ``--folds`` does:

- ``--folds DIR[,DIR...]`` — the runs of the other folds;
- ``--folds N`` — N folds from RUN and the runs under ``RUN/folds/*/`` (the documented place:
  ``dysan train ... --fold k --out RUN/folds/k``); fewer than N found is an error that prints the command.

The runs must share data, activity map, attribute, protocol, number of folds, split seed, grid points and
training settings, and have distinct folds. Each is evaluated into its own folder (the main run's into the
usual one; another run's into ``<its dir>/<eval folder>``, reusing its cache), with the same options (and, in a
transfer, on the same test data). Then, per strategy × attacker × task present in every fold: the values
per fold, their mean, sample standard deviation (ddof 1), min and max; likewise the balanced accuracy, the
L1 distortion and the calibration forests' accuracy. Written as ``folds.json`` / ``folds.png`` beside the
main run's results and summarized in its ``results.json`` (``folds``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DysanError
from ..rundir import RunDir
from .runs import SPLIT_KEYS, TRAIN_KEYS, read_config

JSON, PNG, HEADING = "folds.json", "folds.png", "Mean ± spread over folds"
SAME = tuple(k for k in (*SPLIT_KEYS, "data", "grid") if k != "fold")


def fold_runs(run_dir: Path, spec: str | None) -> list[Path]:
    """The main run followed by the other folds' runs (see the module doc); ``[run_dir]`` without ``spec``."""
    if not spec:
        return [run_dir]
    if spec.strip().isdigit():
        n = int(spec)
        if n < 2:
            raise DysanError("--folds N needs N >= 2 (mean and spread of at least two folds)")
        folder = RunDir(run_dir).folds
        found = RunDir(run_dir).fold_runs()
        runs = [run_dir, *found]
        folds = {read_config(r)["fold"]: r for r in reversed(runs)}  # the main run wins a duplicate fold
        ordered = [run_dir] + [r for f, r in sorted(folds.items()) if r != run_dir]
        if len(ordered) < n:
            config = read_config(run_dir)
            have = sorted(folds)
            todo = [k for k in range(config["split"]["folds"]) if k not in have][: n - len(ordered)]
            raise DysanError(f"--folds {n}: {len(ordered)} fold run(s) found (folds {have}) in {run_dir} and "
                             f"{folder}/*; train the others with the run's command plus --fold K --out "
                             f"{folder}/K (K = {', '.join(map(str, todo)) or 'none left'})")
        return ordered[:n]
    runs = [run_dir, *(Path(p.strip()) for p in spec.split(",") if p.strip())]
    return list(dict.fromkeys(runs))


def check_compatible(runs: list[Path]) -> list[dict]:
    """The runs' configs, after checking they are folds of one experiment (see the module doc)."""
    configs = [read_config(r) for r in runs]
    first = configs[0]
    for r, c in zip(runs[1:], configs[1:], strict=True):
        diff = [k for k in SAME if c.get(k) != first.get(k)]
        diff += [f"train.{k}" for k in TRAIN_KEYS if c["train"].get(k) != first["train"].get(k)]
        if diff:
            raise DysanError(f"--folds: {r} differs from {runs[0]} in {', '.join(diff)} (not another fold of it)")
    folds = [c["fold"] for c in configs]
    if len(set(folds)) != len(folds):
        raise DysanError(f"--folds: the runs {', '.join(map(str, runs))} have folds {folds}: each must be distinct")
    return configs


def _stats(values: list[float | None]) -> dict:
    v = np.array([x for x in values if x is not None], dtype=np.float64)
    if len(v) == 0:
        return {"per_fold": values, "mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {"per_fold": values, "mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else None,
            "min": float(v.min()), "max": float(v.max()), "n": len(v)}


def aggregate(results: list[dict]) -> dict:
    """Mean ± spread over the folds' ``results.json`` (strategies × attackers × tasks present in all)."""
    names = [n for n in results[0]["strategies"] if all(n in r["strategies"] for r in results)]
    rows = []
    for name in names:
        per = [r["strategies"][name] for r in results]
        attackers = [a for a in per[0]["attackers"] if all(a in p["attackers"] for p in per)]
        acc, bal = {}, {}
        for a in attackers:
            tasks = [t for t in per[0]["attackers"][a] if all(t in p["attackers"][a] for p in per)]
            acc[a] = {t: _stats([p["attackers"][a][t]["accuracy"] for p in per]) for t in tasks}
            bal[a] = {t: _stats([p["attackers"][a][t].get("balanced_accuracy") for p in per]) for t in tasks}
        rows.append({"name": name, "label": per[0]["label"], "accuracy": acc, "balanced_accuracy": bal,
                     "distortion_l1": _stats([p["distortion"]["l1_normalized"] for p in per])})
    return {
        "runs": [r["run"] for r in results], "folds": [r["fold"] for r in results], "n": len(results),
        "protocol": results[0]["protocol"], "attribute": results[0]["attribute"],
        "spread": "sample standard deviation over folds (ddof 1)",
        "calibration_rf_accuracy": _stats([r["calibration"]["test"]["rf_accuracy_pooled"] for r in results]),
        "rows": rows,
    }
