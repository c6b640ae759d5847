"""Per-epoch training time of one or more runs: what an objective costs, apart from what the machine was doing.

A grid's wall time mixes the objective's cost with everything else the machine ran (pauses for `make test`, a
second job on the same cores, resumes), so two grids' totals do not compare. Every epoch records its own
``seconds`` in the model's history.json; the 10th percentile over a run's epochs is the time of an epoch that
had its cores to itself, and that is the figure to compare between objectives:

    python tools/epoch_times.py runs/sisfall-device-within runs/sisfall-jitter

Prints, per run: its training options that change the step (jitter, hardened, epochs, batch size), the number
of epochs recorded and their 10th percentile, median and 90th percentile in seconds.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def epoch_seconds(run: Path) -> list[float]:
    """Every recorded epoch's seconds over the run's grid points (each point's history.json: a list of epochs)."""
    from dysan.rundir import RunDir

    rd = RunDir(run)
    out: list[float] = []
    for point in sorted(p.name for p in rd.models.glob("*") if p.is_dir()):
        history = rd.model(point).history
        if history.exists():
            out += [float(e["seconds"]) for e in json.loads(history.read_text()) if "seconds" in e]
    return out


def options(run: Path) -> str:
    """The training options of the run's config.json that change what one step computes."""
    from dysan.rundir import RunDir

    config = RunDir(run).config
    if not config.exists():
        return "no config.json"
    train = json.loads(config.read_text()).get("train", {})
    keys = ("jitter", "jitter_angle", "jitter_gain", "hardened", "epochs", "batch_size")
    return ", ".join(f"{k}={train[k]}" for k in keys if k in train)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    for run in args.runs:
        secs = epoch_seconds(run)
        if not secs:
            print(f"{run}: no recorded epochs")
            continue
        p10, p50, p90 = np.percentile(secs, [10, 50, 90])
        print(f"{run}: {len(secs)} epochs, p10 {p10:.2f} s, median {p50:.2f} s, p90 {p90:.2f} s ({options(run)})")


if __name__ == "__main__":
    main()
