#!/usr/bin/env python3
"""Compares device candidate schedules on a trained grid: the sweep behind the default score horizon.

    .venv/bin/python tools/schedule_sweep.py runs/sisfall-device-within --seed 0 \\
        --schedules all36,rot8r5,rot8r4,rot8r3,rot8r2,inc8r5,inc8r3

For each schedule it builds DySan(o)-device's choice on the run's training and test streams (the calibration
forest's labels as the activity reference, as ``dysan evaluate`` does) and scores it with ``dysan evaluate``'s
RF attackers retrained on the sanitized training stream (activity, attribute, re-identification), plus the
chosen models' own P / D and how often the choice agrees with every-candidate-every-window. Schedules:

- ``all36`` -- every model on every window, score over the segment alone (the paper's DySan(o));
- ``rot<k>r<R>`` -- the firmware's round robin of k candidates per window, score over R segments
  (``selection.schedule_mask`` + ``selection.select(..., rounds=R)``; the default is ``rot8r3``);
- ``inc<k>r<R>`` -- k - 1 rotating candidates plus the previous segment's winner on every window (tried, not
  adopted: docs/firmware.md "Duty").

Attacker predictions are cached with the evaluation's cache (the run's eval cache), so a rerun is quick.
Writes one JSON line per schedule to stdout (and ``--json`` if given). This is a research tool for the
default in ``selection.HORIZON_EVALUATIONS``; ``dysan evaluate --candidates k`` scores the shipped rule.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from dysan import selection
from dysan.evaluate.attackers import AttackConfig
from dysan.evaluate.pipeline import EvalConfig, Evaluation
from dysan.evaluate.runs import open_run
from dysan.evaluate.strategies import RAW, Strategy, Weights
from dysan.rundir import RunDir


def incumbent_select(act: np.ndarray, sens: np.ndarray, segment: int, k: int, rounds: int, xq: int,
                     yq: int) -> np.ndarray:
    """k - 1 round-robin candidates and the previous segment's winner on every window; R-segment score."""
    n, m = act.shape
    evaluated = np.zeros((n, m), dtype=bool)
    chosen = np.empty(n, dtype=np.int64)
    pointer, leader = 0, 0
    back = (rounds - 1) * segment
    for start in range(0, n, segment):
        end = min(start + segment, n)
        for w in range(start, end):
            evaluated[w, [(pointer + j) % m for j in range(k - 1)]] = True
            pointer = (pointer + k - 1) % m
            evaluated[w, leader] = True
        sl = slice(max(0, start - back), end)
        scores = selection.segment_scores(act[sl], sens[sl], evaluated[sl], xq, yq)
        leader = int(np.argmax(scores)) if scores.max() >= 0 else 0
        chosen[start:end] = leader
    return chosen


def choose(name: str, act: np.ndarray, sens: np.ndarray, segment: int, xq: int, yq: int) -> np.ndarray:
    if name == "all36":
        return selection.select(act, sens, segment, xq, yq)
    match = re.fullmatch(r"(rot|inc)(\d+)r(\d+)", name)
    if not match:
        raise SystemExit(f"unknown schedule {name!r} (all36, rot<k>r<R>, inc<k>r<R>)")
    kind, k, rounds = match.group(1), int(match.group(2)), int(match.group(3))
    if kind == "inc":
        return incumbent_select(act, sens, segment, k, rounds, xq, yq)
    mask = selection.schedule_mask(len(act), act.shape[1], k)
    return selection.select(act, sens, segment, xq, yq, evaluated=mask, rounds=rounds)


def strategy(ev: Evaluation, name: str, segment: int) -> Strategy:
    xq, yq = Weights().q15
    out = {}
    for side in ("train", "test"):
        hits = ev.hits[side]
        choice = np.full(len(hits["act"]), RAW, dtype=np.int64)
        for user in ev.streams[side].users:
            idx = ev.streams[side].order[user]
            if len(idx):
                choice[idx] = choose(name, hits["act_o"][idx], hits["sens"][idx], segment, xq, yq)
        out[side] = choice
    return Strategy(name, name, out["train"], out["test"], {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a trained grid run directory (dysan train --out)")
    ap.add_argument("--schedules", default="all36,rot8r5,rot8r3", help="comma-separated (see the module doc)")
    ap.add_argument("--seed", type=int, default=0, help="the RF attackers' seed")
    ap.add_argument("--segment", type=int, default=EvalConfig().segment)
    ap.add_argument("--json", type=Path, help="also write all rows here")
    args = ap.parse_args(argv)
    ctx = open_run(args.run)
    cfg = EvalConfig(attack=AttackConfig(families=("rf",), seed=args.seed), segment=args.segment)
    ev = Evaluation(ctx, cfg, RunDir(ctx.path).eval_cache(ctx.transfer_name))
    test_idx = ev.idx["test"]
    reference = strategy(ev, "all36", args.segment).test[test_idx]
    rows = {}
    for name in args.schedules.split(","):
        t0 = time.time()
        strat = strategy(ev, name, args.segment)
        result = ev.attack(strat, ("rf",), reid=True)
        row = {task: round(100 * v["accuracy"], 2) for task, v in result["rf-adaptive"].items()}
        row.update({f"own_{task}": round(100 * v["accuracy"], 2) for task, v in result.get("own", {}).items()})
        row["agrees_with_all36"] = round(100 * float((strat.test[test_idx] == reference).mean()), 1)
        row["seconds"] = round(time.time() - t0, 1)
        rows[name] = row
        print(json.dumps({"schedule": name, "seed": args.seed, **row}), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"run": str(args.run), "seed": args.seed, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
