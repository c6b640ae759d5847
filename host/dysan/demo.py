"""The main job on the embedded synthetic default: every stage of the chain, small, without ``../shared``.

Stages (each writes under ``OUT``; each prints what it did):

1. data — summary of the synthetic dataset (labelled SYNTHETIC everywhere);
2. baseline — raw-data activity analyst / gender and age-group attackers (RF and CNN, both protocols);
3. train — a small device grid (4 sanitizers) with Algorithm 1;
4. export — int8 TFLite + bundle + C source, verified against TFLM and the float models;
5. and the later stages registered in :data:`STAGES` as the firmware, device tools and evaluation land.

The summary table at the end gathers one line per stage.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import ui

DEMO_DATA = "synthetic:subjects=12,seed=0"


@dataclass
class DemoContext:
    out: Path
    data: str = DEMO_DATA
    summary: list[tuple[str, str, float]] = field(default_factory=list)
    state: dict = field(default_factory=dict)

    def record(self, stage: str, result: str, seconds: float) -> None:
        self.summary.append((stage, result, seconds))


def stage_data(ctx: DemoContext) -> str:
    from .data import prepare

    ds, ws = prepare(ctx.data)
    c = ws.counts()
    (ctx.out / "data.json").write_text(json.dumps({"data": ds.summary(), "windows": c}, indent=2))
    return f"{c['windows']} windows, {c['subjects']} subjects (SYNTHETIC)"


def stage_baseline(ctx: DemoContext) -> str:
    from . import baseline

    cfg = baseline.BaselineConfig(data=ctx.data, epochs=3, folds={"within-subject": 4, "new-users": 4},
                                  max_folds=2, rf_trees=100)
    report = baseline.run(cfg, ui.progress)
    (ctx.out / "baseline.json").write_text(json.dumps(report, indent=2))
    acc = {(r["protocol"], r["task"], r["model"]): r["accuracy"] for r in report["results"]}
    ctx.state["baseline"] = acc
    return (f"RF: activity {ui.pct(acc[('new-users', 'activity', 'rf')])} (new users), "
            f"gender {ui.pct(acc[('within-subject', 'gender', 'rf')])} (within-subject)")


def stage_train(ctx: DemoContext) -> str:
    from .train import grid
    from .train.loop import TrainConfig
    from .train.runner import prepare_run, run_grid

    run_dir = ctx.out / "run"
    points = grid.parse("small")
    cfg = TrainConfig(epochs=6, pretrain_epochs=3)
    prepare_run(run_dir, ctx.data, "default", "gender", "within-subject", 0, None, 0, points, cfg)
    summary = run_grid(run_dir, points, cfg, workers=2)
    ctx.state["run"] = run_dir
    best = max(summary["models"], key=lambda m: m["final"]["P_monitor_acc"] - abs(0.5 - m["final"]["D_monitor_acc"]))
    f = best["final"]
    return (f"{len(points)} device sanitizers; e.g. {best['point']['name']}: own P {ui.pct(f['P_monitor_acc'])}, "
            f"own D {ui.pct(f['D_monitor_acc'])}")


def stage_export(ctx: DemoContext) -> str:
    from .export.exporter import export_run
    from .export.verify import verify_export

    models = ctx.out / "models"
    manifest = export_run(ctx.state["run"], models)
    report = verify_export(ctx.state["run"], models, n_windows=300)
    (ctx.out / "verify.json").write_text(json.dumps(report, indent=2))
    ctx.state["models"] = models
    lsb = report["checks"]["tflm_vs_tflite_max_lsb"]["value"]
    pts = report["checks"]["p_d_int8_vs_float_points"]["value"]
    return (f"bundle {manifest['bundle']['bytes']:,} bytes; TFLM vs TF Lite ≤ {lsb} LSB; "
            f"int8 vs float P/D ≤ {pts:.1f} pts")


STAGES: list[tuple[str, Callable[[DemoContext], str]]] = [
    ("data", stage_data),
    ("baseline", stage_baseline),
    ("train", stage_train),
    ("export", stage_export),
]


def run(out: Path, data: str = DEMO_DATA) -> DemoContext:
    out.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(out=out, data=data)
    t_all = time.time()
    for name, fn in STAGES:
        ui.info(f"== {name}")
        t0 = time.time()
        result = fn(ctx)
        ctx.record(name, result, time.time() - t0)
        ui.info(f"   {result}")
    ctx.record("total", f"outputs in {out}", time.time() - t_all)
    return ctx
