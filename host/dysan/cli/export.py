"""``dysan export``: int8 TFLite + model images + the bundle the wearable runs, with checks and sizes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .. import ui
from ..export import bundle_format
from ..export.exporter import INPUT_RANGE_PERCENTILE
from ..rundir import BundleDir
from .common import add_json_option, write_json

CALIBRATION_WINDOWS_PER_ACTIVITY = 24
"""The default calibration session: ~30 s of each activity (24 windows at hop 62)."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "export", help="export a device-family run to int8 TFLite and a model bundle",
        description="For every grid point of RUN: full-int8 TFLite of S, P, D (batch 1), model images for the "
        "firmware's C kernels, one bundle image (bundle.bin), a manifest with quantization, contract constants "
        "and file hashes, and the bundle as C source (dysan_bundle.c).")
    p.add_argument("run_dir", metavar="RUN", help="a run directory made by `dysan train --family device`")
    p.add_argument("--out", required=True, help="output folder, e.g. models/sisfall")
    p.add_argument("--c-out", metavar="DIR", help="also write dysan_bundle.c into DIR "
                   "(firmware/build/generated to link it into the firmware)")
    p.add_argument("--candidates", type=int, default=bundle_format.ScheduleDefaults.candidates,
                   help="candidates the device scores per window (default: %(default)s)")
    p.add_argument("--segment", type=int, default=bundle_format.ScheduleDefaults.segment,
                   help="windows per selection segment p (default: %(default)s)")
    p.add_argument("--x", type=float, default=0.2, help="score weight of activity accuracy (default: %(default)s)")
    p.add_argument("--y", type=float, default=0.8, help="score weight of sensitive privacy (default: %(default)s)")
    p.add_argument("--input-range-percentile", type=float, default=INPUT_RANGE_PERCENTILE, metavar="P",
                   help="int8 ranges from calibration windows clipped to their [100-P, P] percentiles; 100 = "
                   "min/max (default: %(default)s; docs/export.md)")
    p.add_argument("--verify", action="store_true", help="check TFLM, TF Lite and float agreement (slower)")
    p.add_argument("--verify-windows", type=int, default=None,
                   help="evaluation windows for --verify (default: every window of the run's evaluation split)")
    p.add_argument("--size-report", action="store_true", help="print flash / RAM / MACs per model and totals")
    add_json_option(p)
    p.set_defaults(run=run)


def default_rf_bytes(run_dir: Path) -> tuple[int, dict]:
    """Table size of the default calibration RF: the run's training windows as population plus ~30 s of each
    activity (24 windows) as one user's calibration, as ``dysan calibrate --bundle`` trains it."""
    from ..calibration import rf
    from ..export.exporter import load_run
    from ..preprocess import Normalization

    config, arrays, _ = load_run(run_dir)
    norm = Normalization.from_dict(config["normalization"])
    n_classes = len(config["classes"])
    counts = np.rint(norm.denormalize(arrays["x_train"])).clip(-32768, 32767).astype(np.int16)
    idx = np.concatenate([np.flatnonzero(arrays["ya_train"] == c)[:CALIBRATION_WINDOWS_PER_ACTIVITY]
                          for c in range(n_classes)])
    pop = rf.Population.from_windows(counts, arrays["ya_train"], n_classes)
    with np.errstate(**np.geterr()):  # importing emlearn switches numpy to raise on underflow: undo it
        forest = rf.train(counts[idx], arrays["ya_train"][idx], n_classes, population=pop)
    return len(forest.table), forest.to_dict()


def run(args: argparse.Namespace) -> int:
    from ..export.exporter import export_run
    from ..selection import q15

    schedule = bundle_format.ScheduleDefaults(segment=args.segment, candidates=args.candidates,
                                              score_x_q15=q15(args.x), score_y_q15=q15(args.y))
    manifest = export_run(args.run_dir, args.out, schedule=schedule, c_out=args.c_out,
                          input_percentile=args.input_range_percentile)
    result: dict = {"manifest": str(BundleDir(args.out).manifest), "bundle": manifest["bundle"],
                    "default_model": manifest["default_model"]}
    tag = " (SYNTHETIC data)" if manifest["synthetic"] else ""
    ui.info(f"wrote {args.out}: {len(manifest['models'])} models{tag}, bundle {manifest['bundle']['bytes']:,} bytes")
    if args.verify:
        from ..export.verify import verify_export

        with ui.progress("verifying int8 models (TFLM, TF Lite, float)", len(manifest["models"])) as step:
            report = verify_export(args.run_dir, args.out, n_windows=args.verify_windows,
                                   progress=lambda name: step.advance(1, note=name))
        result["verify"] = report
        rows = []
        for name, c in report["checks"].items():
            if c is True:
                rows.append([name, "yes", "-", "pass"])
            else:
                rows.append([name, c["value"], c["limit"], "pass" if c["passed"] else "FAIL"])
        ui.table(f"Verification on {report['windows']} evaluation windows", ["check", "worst", "limit", ""], rows)
    if args.size_report:
        from ..export.size_report import size_report

        rf_bytes, rf_info = default_rf_bytes(Path(args.run_dir))
        rep = size_report(args.out, rf_table_bytes=rf_bytes)
        rep["default_rf"] = rf_info
        result["size_report"] = rep
        rows = [[f"{r['model']} {r['net']}", f"{r['flash_bytes']:,}", f"{r['arena_bytes']:,}", f"{r['macs']:,}"]
                for r in rep["per_model"]]
        t = rep["totals"]
        rows.append(["bundle total", f"{t['bundle_bytes']:,}", f"{t['max_arena_bytes']:,} (max)",
                     f"S {t['sanitize_macs_per_window']:,} / candidate {t['score_macs_per_candidate']:,}"])
        rows.append(["default calibration RF", f"{rf_bytes:,}", "-", f"{rf_info['n_trees']} trees"])
        if "flash_total_bytes" in t:
            rows.append(["firmware + bundle + RF", f"{t['flash_total_bytes']:,}", "-",
                         f"budget {t['flash_budget_bytes']:,}: {'ok' if t['flash_within_budget'] else 'OVER'}"])
        ui.table("Size report", ["model", "flash bytes", "scratch RAM bytes", "MAC / window"], rows)
    write_json(args.json, result)
    failed = args.verify and not result["verify"]["passed"]
    return 1 if failed else 0
