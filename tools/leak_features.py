"""Which window statistics still carry the attribute: the evaluation's RF attacker retrained on feature subsets.

The RF attacker of `dysan evaluate` reads 64 statistics (mean, std, min, max, jerk, mean crossings, block jerk
min / max of the 6 axes and the two magnitudes). A sanitizer or on-device transform hides the attribute only
if no subset of them still reads it, and the subset that does points at the next lever: per-axis statistics
are what a rotation scrambles, the magnitudes' are rotation-free (only a gain or a change of the movement
itself reaches them). Per subset, the attacker (same forest as the evaluation's) is retrained on the
subset's columns of the training windows and scored on the test windows, balanced accuracy; then the
features the full forest leans on most.

    python tools/leak_features.py runs/sisfall-jitter a0.40_l0.10      # one grid point, as `dysan evaluate` cached it
    python tools/leak_features.py runs/sisfall-jitter raw              # the raw windows of the same split

A grid point's windows come from `RUN/eval/cache/<point>-*/` (S's output as the device sends it, through the
jitter where the run trains with it), so `dysan evaluate RUN` must have run; `--cache DIR` picks one when
several are cached. Labels and the split are the run's (data.npz: ``ys`` for the attribute).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SUBSETS: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    # name: (signals, statistics or None for all 8)
    "all 64": (("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "acc_mag", "gyro_mag"), None),
    "accelerometer axes": (("acc_x", "acc_y", "acc_z"), None),
    "gyroscope axes": (("gyro_x", "gyro_y", "gyro_z"), None),
    "magnitudes (rotation-free)": (("acc_mag", "gyro_mag"), None),
    "acc magnitude": (("acc_mag",), None),
    "gyro magnitude": (("gyro_mag",), None),
    "axis means only": (("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"), ("mean",)),
    "levels (mean, min, max), all signals": (
        ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "acc_mag", "gyro_mag"), ("mean", "min", "max")),
    "dynamics (std, jerk, cross, block jerk), all signals": (
        ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "acc_mag", "gyro_mag"),
        ("std", "jerk", "cross", "bjmin", "bjmax")),
    "mean crossings only (cadence: no gain reaches it)": (
        ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "acc_mag", "gyro_mag"), ("cross",)),
}


def columns(signals: tuple[str, ...], stats: tuple[str, ...] | None) -> np.ndarray:
    """Column indices of :func:`dysan.features.window_features` for these signals and statistics."""
    from dysan.features import BASIC_SIGNALS, STATS

    want = STATS if stats is None else stats
    return np.array([BASIC_SIGNALS.index(sig) * len(STATS) + STATS.index(st) for sig in signals for st in want])


def feature_names() -> list[str]:
    from dysan.features import BASIC_SIGNALS, STATS

    return [f"{sig}.{st}" for sig in BASIC_SIGNALS for st in STATS]


def cached_windows(run: Path, point: str, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) int16 count windows of one grid point as the evaluation cached them."""
    if cache is None:
        found = sorted((run / "eval" / "cache").glob(f"{point}-*"))
        if not found:
            raise SystemExit(f"no cached windows of {point} under {run}/eval/cache: run `dysan evaluate {run}` first")
        if len(found) > 1:
            raise SystemExit("several caches of " + point + ": pick one with --cache\n  " +
                             "\n  ".join(str(f) for f in found))
        cache = found[0]
    return np.load(cache / "train_windows.npy"), np.load(cache / "test_windows.npy")


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([np.mean(pred[y == c] == c) for c in classes]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("point", help="grid point name (e.g. a0.40_l0.10), or raw")
    ap.add_argument("--cache", type=Path, help="the eval cache directory of the point, when several exist")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="forest jobs (default 1: leaves cores to other work)")
    ap.add_argument("--top", type=int, default=12, help="features listed by importance")
    args = ap.parse_args()

    from sklearn.ensemble import RandomForestClassifier

    from dysan.features import window_features

    with np.load(args.run / "data.npz") as z:
        ys_train, ys_test = z["ys_train"], z["ys_test"]
        raw = None
        if args.point == "raw":  # data.npz holds normalized floats: back to the int16 counts the device sends
            from dysan.classifiers import to_int16
            from dysan.preprocess import Normalization

            norm = Normalization.from_dict(json.loads((args.run / "config.json").read_text())["normalization"])
            raw = (to_int16(norm.denormalize(z["x_train"])), to_int16(norm.denormalize(z["x_test"])))
    train, test = raw if raw is not None else cached_windows(args.run, args.point, args.cache)
    if len(train) != len(ys_train) or len(test) != len(ys_test):
        raise SystemExit(f"window counts {len(train)}/{len(test)} do not match data.npz's labels "
                         f"{len(ys_train)}/{len(ys_test)}")
    f_train, f_test = window_features(np.asarray(train)), window_features(np.asarray(test))
    names = feature_names()
    print(f"{args.run} {args.point}: {len(f_train)} training / {len(f_test)} test windows, attribute balanced "
          f"accuracy of the RF attacker ({args.trees} trees) retrained on each subset")
    full = None
    for subset, (signals, stats) in SUBSETS.items():
        cols = columns(signals, stats)
        rf = RandomForestClassifier(args.trees, n_jobs=args.jobs, random_state=args.seed)
        rf.fit(f_train[:, cols], ys_train)
        acc = balanced_accuracy(ys_test, rf.predict(f_test[:, cols]))
        print(f"  {subset:<55} {len(cols):>3} features  {100 * acc:6.2f} %", flush=True)
        if full is None:
            full = rf
    order = np.argsort(full.feature_importances_)[::-1][:args.top]
    print("  importance in the full forest: " + ", ".join(
        f"{names[i]} {full.feature_importances_[i]:.3f}" for i in order))


if __name__ == "__main__":
    main()
