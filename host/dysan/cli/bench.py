"""``dysan bench``: the heavy, rerunnable benchmarks on real data — what notes and README figures come from.

Steps (``--steps`` picks a subset; each writes JSON under ``--out`` and is skipped when its output exists,
unless ``--force``):

- ``baseline``  raw-data baselines, RF + CNN, both protocols, gender and age group (all folds);
- ``train``     the full 36-point device grid (within-subject, gender), timed against the 60 min budget;
- ``baselines`` GEN, Olympus and MSDA trained with the grid's settings into ``RUN/baselines/`` (timed apart);
- ``export``    int8 export of that grid, verification and size report (flash/RAM/MACs per model, totals);
- ``firmware``  ``bench-firmware`` on the exported bundle (instructions per stage, duty cycle, flash, RAM);
- ``evaluate``  ``dysan evaluate`` + ``dysan report`` of the grid (strategies, attackers, figures);
- ``calibration`` the calibration forest: activity accuracy on the scored windows of both protocols per
  option, table size, instructions per window in QEMU (:mod:`dysan.calibration.bench`) -> ``calibration.json``;
- ``ablation``  (not in the default set) the hardened-training ablation of issue 15: each technique alone and
  combined, on SisFall within-subject gender and new users gender / age group, scored by RF attackers
  retrained on the sanitized windows (:mod:`dysan.train.ablation`) -> ``ablation.json`` + ``ablation.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import ui
from ..errors import DysanError
from .common import write_json

STEPS = ("baseline", "train", "baselines", "export", "firmware", "evaluate", "calibration", "ablation")
DEFAULT_STEPS = STEPS[:-1]
DEFAULT_DATA = "sisfall:../shared/data/sisfall/SisFall_dataset.tar.xz"
TRAIN_BUDGET_S = 3600


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="heavy benchmarks on real data (baselines, full grid, export, firmware)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=DEFAULT_DATA, help="data source (default: %(default)s)")
    p.add_argument("--out", default="out/bench", help="output folder (default: %(default)s)")
    p.add_argument("--steps", default=",".join(DEFAULT_STEPS),
                   help="comma-separated subset of: " + ", ".join(STEPS) + " (default: all but ablation)")
    p.add_argument("--ablation-rows", default="paper,combined,jitter,entropy,ensemble,feature,identity,moments",
                   help="ablation rows (dysan.train.ablation.ROWS; default: %(default)s)")
    p.add_argument("--ablation-settings", default="within-gender,newusers-gender,newusers-age",
                   help="ablation settings (default: %(default)s)")
    p.add_argument("--ablation-grid", default="0.8/0.1,0.6/0.3,0.4/0.5",
                   help="grid of every ablation row (default: %(default)s)")
    p.add_argument("--ablation-epochs", type=int, default=10, help="epochs per ablation model (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="training worker processes (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="redo steps whose output already exists")
    p.set_defaults(run=run)


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _done(path: Path, force: bool) -> bool:
    if path.exists() and not force:
        ui.info(f"  {path} exists: skipped (--force to redo)")
        return True
    return False


def run(args: argparse.Namespace) -> int:
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise DysanError(f"--steps: unknown {unknown} (choose from {', '.join(STEPS)})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir, models = out / "runs" / "device-within-gender", out / "models" / "device-within-gender"
    if "baseline" in steps and not _done(out / "baseline.json", args.force):
        from .. import baseline

        report = baseline.run(baseline.BaselineConfig(data=args.data), ui.progress)
        write_json(out / "baseline.json", report)
    if "train" in steps and not _done(out / "train.json", args.force):
        from ..train import grid
        from ..train.loop import TRAIN_DEFAULT, TrainConfig
        from ..train.runner import prepare_run, run_grid

        cfg, points = TrainConfig(**TRAIN_DEFAULT), grid.full_grid()
        prepare_run(run_dir, args.data, "default", "gender", "within-subject", 0, None, 0, points, cfg)
        t0 = time.time()
        summary = run_grid(run_dir, points, cfg, workers=args.workers)
        wall = time.time() - t0
        write_json(out / "train.json", {"command": "dysan train --grid full (defaults) --workers "
                                        f"{args.workers}", "wall_seconds": round(wall, 1),
                                        "budget_seconds": TRAIN_BUDGET_S, "within_budget": wall <= TRAIN_BUDGET_S,
                                        "resumed": summary["wall_seconds_total"] > wall + 1, "summary": summary})
        ui.info(f"full grid: {wall / 60:.1f} min (budget {TRAIN_BUDGET_S // 60} min)")
    if "baselines" in steps and not _done(out / "baselines.json", args.force):
        from ..rundir import RunDir
        from ..train import variants
        from ..train.loop import TrainConfig
        from ..train.runner import prepare_run, run_grid

        if not RunDir(run_dir).is_run():
            raise DysanError(f"--steps baselines needs the grid of the train step in {run_dir}")
        timing = {}
        for name in ("gen", "olympus", "msda"):
            cfg, point = TrainConfig(loss=name), [variants.get(name).default_point]
            t0 = time.time()
            target = RunDir(run_dir).baseline(name).path
            prepare_run(target, args.data, "default", "gender", "within-subject", 0, None, 0, point, cfg)
            run_grid(target, point, cfg, workers=1)
            timing[name] = round(time.time() - t0, 1)
        write_json(out / "baselines.json", {"wall_seconds": timing})
    if "export" in steps and not _done(models / "verify.json", args.force):
        from ..export.exporter import export_run
        from ..export.size_report import size_report
        from ..export.verify import verify_export
        from .export import default_rf_bytes

        export_run(run_dir, models)
        rf_bytes, rf_info = default_rf_bytes(run_dir)
        write_json(models / "size_report.json",
                   {**size_report(models, rf_table_bytes=rf_bytes), "default_rf": rf_info})
        write_json(models / "verify.json", verify_export(run_dir, models))
    if "firmware" in steps and not _done(out / "firmware.json", args.force):
        from .bench_firmware import measure

        write_json(out / "firmware.json", measure(models, candidates=[8, 16, 24, 32, 36], n_windows=60))
    if "evaluate" in steps and not _done(out / "evaluate.json", args.force):
        from .. import cli

        rc = cli.main(["evaluate", str(run_dir), "--data", args.data, "--protocol", "within-subject",
                       "--attribute", "gender", "--json", str(out / "evaluate.json")])
        if rc == 0:
            cli.main(["report", str(run_dir)])
    if "ablation" in steps and not _done(out / "ablation.md", args.force):
        from ..train import ablation
        from ..train import grid as grid_mod
        from ..train.loop import TrainConfig

        base = TrainConfig(epochs=args.ablation_epochs, pretrain_epochs=3)
        res = ablation.run_ablation(out / "ablation", args.data, _split(args.ablation_rows),
                                    _split(args.ablation_settings), grid_mod.parse(args.ablation_grid), base,
                                    workers=args.workers)
        res["command"] = (f"dysan bench --steps ablation --ablation-rows {args.ablation_rows} --ablation-settings "
                          f"{args.ablation_settings} --ablation-grid {args.ablation_grid} --ablation-epochs "
                          f"{args.ablation_epochs}")
        write_json(out / "ablation.json", res)
        (out / "ablation.md").write_text("\n".join(ablation.table(res)) + "\n")
        ui.info("\n".join(ablation.table(res)))
    if "calibration" in steps and not _done(out / "calibration.json", args.force):
        _calibration_step(args.data, out)
    ui.info(f"bench outputs in {out}: {sorted(p.name for p in out.iterdir())}")
    return 0


def _calibration_step(data: str, out: Path) -> None:
    """The calibration forest's accuracy / size / cost table (issue 12; docs/evaluation.md)."""
    from ..calibration import bench as calib_bench

    res = calib_bench.run(data)
    res["command"] = f"dysan bench --steps calibration --data {data}"
    write_json(out / "calibration.json", res)
    ui.table("Calibration forest: activity accuracy on the scored test windows "
             f"({res['seconds_per_activity_code']:g} s per activity code)",
             ["option", *calib_bench.PROTOCOLS, "table bytes (max)"], calib_bench.table_rows(res))
    for p, r in res["protocols"].items():
        q = r["qemu"]
        if "skipped" in q:
            ui.info(f"{p}: QEMU cost skipped ({q['skipped']})")
        else:
            ui.info(f"{p}: features + forest {q['instructions_per_window']:,} instructions per window (max "
                    f"{q['max_window_instructions']:,}, budget {q['budget']:,}); table {q['table_bytes']:,} B; "
                    f"QEMU labels = host labels: {q['labels_equal_host'] and q['labels_equal_predict']}")
