"""Which window statistics still carry the attribute: the evaluation's RF attacker retrained on feature subsets.

The RF attacker of `dysan evaluate` reads 64 statistics (mean, std, min, max, jerk, mean crossings, block jerk
min / max of the 6 axes and the two magnitudes). A sanitizer or on-device transform hides the attribute only
if no subset of them still reads it, and the subset that does points at the next lever: per-axis statistics
are what a rotation scrambles, the magnitudes' are rotation-free (only a gain or a change of the movement
itself reaches them). Per subset, the attacker (the evaluation's forest, `dysan.classifiers.RFClassifier`) is
retrained on the subset's columns of the training windows and scored on the test windows (balanced accuracy);
with all 64 also the activity analyst, so a transform's cost shows beside what it hides; then the features the
full forest leans on most.

    python tools/leak_features.py runs/sisfall-jitter a0.40_l0.10      # one grid point, as `dysan evaluate` sends it
    python tools/leak_features.py runs/sisfall-jitter raw              # the raw windows of the same split
    python tools/leak_features.py runs/sisfall-jitter raw --jitter 25,0.25 --warp 0.2 --subsets all

A grid point's windows and features are the evaluation's (`dysan.evaluate.sanitize.outputs`: read from
`RUN/eval/cache`, computed there when missing; through the on-device jitter, one secret seed per user, where
the run trains with it). ``raw`` takes the split's raw windows; on those, ``--jitter ANGLE,GAIN`` applies the
on-device jitter the evaluation's way and ``--warp W`` then resamples each window in time at a random rate in
[1 − W, 1 + W] about its centre (linear interpolation, edges held): a probe of cadence, not a device transform.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dysan import contract
from dysan.features import BASIC_SIGNALS, FEATURE_NAMES, STATS

ACC, GYRO = contract.CHANNELS[0:3], contract.CHANNELS[3:6]
MAGS = tuple(s for s in BASIC_SIGNALS if s not in contract.CHANNELS)

SUBSETS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # key: (description, signals, statistics)
    "all": ("all 64", BASIC_SIGNALS, STATS),
    "acc-axes": ("accelerometer axes", ACC, STATS),
    "gyro-axes": ("gyroscope axes", GYRO, STATS),
    "magnitudes": ("magnitudes (rotation-free)", MAGS, STATS),
    "acc-mag": ("acc magnitude", MAGS[:1], STATS),
    "gyro-mag": ("gyro magnitude", MAGS[1:], STATS),
    "axis-means": ("axis means only (the mount angle)", contract.CHANNELS, ("mean",)),
    "levels": ("levels (mean, min, max)", BASIC_SIGNALS, ("mean", "min", "max")),
    "dynamics": ("dynamics (std, jerk, crossings, block jerk)", BASIC_SIGNALS,
                 ("std", "jerk", "cross", "bjmin", "bjmax")),
    "crossings": ("mean crossings only (cadence: no gain reaches it)", BASIC_SIGNALS, ("cross",)),
}


def columns(signals: tuple[str, ...], stats: tuple[str, ...]) -> np.ndarray:
    """Column indices of :func:`dysan.features.window_features` for these signals and statistics."""
    return np.array([FEATURE_NAMES.index(f"{sig}.{st}") for sig in signals for st in stats])


def time_warp(windows: np.ndarray, width: float, seed: int) -> np.ndarray:
    """Each window resampled about its centre at a rate drawn uniformly in [1 − width, 1 + width] (linear
    interpolation, samples past either end held at the end's value), rounded back to int16 counts."""
    from dysan.classifiers import to_int16

    n, length, _ = windows.shape
    rate = np.random.default_rng(seed).uniform(1 - width, 1 + width, size=n)
    mid = (length - 1) / 2
    t = np.clip((np.arange(length)[None, :] - mid) * rate[:, None] + mid, 0, length - 1)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, length - 1)
    f = (t - i0)[..., None]
    rows = np.arange(n)[:, None]
    x = windows.astype(np.float64)
    return to_int16(x[rows, i0] * (1 - f) + x[rows, i1] * f)


def _features(args: argparse.Namespace, ctx) -> tuple[np.ndarray, np.ndarray, str]:
    """(train, test) window features of the point (or of the raw windows through the requested transforms)."""
    from dysan.evaluate import sanitize
    from dysan.features import window_features
    from dysan.rundir import RunDir

    if args.point != "raw":
        if args.jitter or args.warp:
            raise SystemExit("--jitter and --warp apply to raw windows only (a grid point is scored as sent)")
        ref = next((r for r in ctx.grid if r.key == args.point), None)
        if ref is None:
            raise SystemExit(f"{args.point}: not a grid point of {args.run} ({', '.join(r.key for r in ctx.grid)})")
        out, _ = sanitize.outputs(ref, ctx, RunDir(args.run).eval_cache())
        return out.train.features, out.test.features, args.point
    what, sides = "raw", []
    for side in (ctx.train, ctx.test):
        counts = side.counts
        if args.jitter:
            from dysan.jitter import JitterParams

            angle, gain = (float(v) for v in args.jitter.split(","))
            counts = sanitize.device_jitter(counts, side, ctx, JitterParams(angle, gain))
        if args.warp:
            counts = time_warp(counts, args.warp, seed=args.seed + (side.name == "test"))
        sides.append(window_features(counts))
    if args.jitter:
        what += f" + jitter ±{args.jitter.split(',')[0]}°, ±{float(args.jitter.split(',')[1]) * 100:g} %"
    if args.warp:
        what += f" + time warp ±{args.warp * 100:g} %"
    return sides[0], sides[1], what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("point", help="grid point name (e.g. a0.40_l0.10), or raw")
    ap.add_argument("--jitter", metavar="ANGLE,GAIN", help="raw only: through the on-device jitter (e.g. 25,0.25)")
    ap.add_argument("--warp", type=float, default=0.0, metavar="W", help="raw only: random time warp ±W (e.g. 0.2)")
    ap.add_argument("--subsets", default=",".join(SUBSETS), help=f"comma list of {', '.join(SUBSETS)}")
    ap.add_argument("--trees", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="forest jobs (default 1: leaves cores to other work)")
    ap.add_argument("--top", type=int, default=12, help="features listed by importance")
    args = ap.parse_args()
    keys = [k for k in args.subsets.split(",") if k]
    unknown = [k for k in keys if k not in SUBSETS]
    if unknown or not keys:
        raise SystemExit(f"unknown subsets {unknown}: choose from {', '.join(SUBSETS)}")

    from dysan.classifiers import RFClassifier
    from dysan.evaluate.metrics import accuracy_summary
    from dysan.evaluate.runs import open_run

    ctx = open_run(args.run)
    f_train, f_test, what = _features(args, ctx)

    def attack(cols: np.ndarray, labels_train: np.ndarray, labels_test: np.ndarray) -> tuple[dict, RFClassifier]:
        rf = RFClassifier(seed=args.seed, n_estimators=args.trees, n_jobs=args.jobs)
        rf.fit_features(f_train[:, cols], labels_train)
        correct = rf.predict_features(f_test[:, cols]) == labels_test
        return accuracy_summary(correct, ctx.test.subject, ctx.subjects, labels_test), rf

    print(f"{args.run} {what}: {len(f_train)} training / {len(f_test)} test windows; RF attacker ({args.trees} "
          f"trees) retrained on each subset, {ctx.attribute} balanced accuracy")
    for key in keys:
        desc, signals, stats = SUBSETS[key]
        cols = columns(signals, stats)
        sens, rf = attack(cols, ctx.train.sensitive, ctx.test.sensitive)
        line = f"  {desc:<55} {len(cols):>3} features  {100 * sens['balanced_accuracy']:6.2f} %"
        if key == "all":
            act, _ = attack(cols, ctx.train.activity, ctx.test.activity)
            line += f"   (activity analyst: {100 * act['accuracy']:.2f} %)"
            imp = rf.model.feature_importances_
            top = ", ".join(f"{FEATURE_NAMES[cols[i]]} {imp[i]:.3f}" for i in np.argsort(imp)[::-1][:args.top])
        print(line, flush=True)
    if "all" in keys:
        print(f"  importance in the full forest: {top}")


if __name__ == "__main__":
    main()
