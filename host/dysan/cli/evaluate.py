"""``dysan evaluate``: strategies × attackers and the paper's analyses for a trained run."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .. import classifiers, ui
from ..errors import DysanError
from ..export.bundle_format import ScheduleDefaults
from .common import DATA_HELP, add_json_option, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="strategies (fixed, personalized, dynamic, DySan(o)) against adaptive attackers",
        description="Evaluate a trained run on its own split: every model's sanitized windows; the strategies "
        "raw, fixed, personalized, dynamic (DySan), DySan(o), DySan(o)-device and the baseline runs; activity "
        "analysts and attribute attackers retrained on sanitized data (adaptive) and trained on raw data; and "
        "the paper's analyses (Fig. 3, 6, 7, 8, Tables 1 and 4, Appendix F). See docs/evaluation.md.")
    p.add_argument("run_dir", metavar="RUN", help="run directory made by dysan train")
    p.add_argument("--data", metavar="SPEC", help=DATA_HELP + " (default: the run's own; it must be the same data)")
    p.add_argument("--protocol", help="must be the run's protocol (default: the run's)")
    p.add_argument("--attribute", help="must be the run's attribute (default: the run's)")
    p.add_argument("--x", type=float, default=0.2, help="utility weight of the selection score (default: %(default)s)")
    p.add_argument("--y", type=float, default=0.8, help="privacy weight of the selection score (default: %(default)s)")
    p.add_argument("--segment", type=int, default=5, help="windows per selection segment p (default: %(default)s)")
    p.add_argument("--candidates", type=int, default=ScheduleDefaults().candidates,
                   help="candidates per window of DySan(o)-device (default: the bundle's, %(default)s)")
    p.add_argument("--calibration-seconds", type=float, default=5.0,
                   help="DySan(o) calibration: seconds of each activity (source activity code) per user, taken "
                   "from the start of the user's stream and excluded from scoring (default: %(default)s)")
    p.add_argument("--attackers", default="rf,cnn", metavar="LIST",
                   help="attacker families: rf, cnn (default: %(default)s)")
    p.add_argument("--cnn-epochs", type=int, default=10, help="epochs of the CNN attackers (default: %(default)s)")
    p.add_argument("--rf-trees", type=int, default=200, help="trees of the RF attackers (default: %(default)s)")
    p.add_argument("--baselines", metavar="RUNS",
                   help="comma-separated baseline run directories (dysan train --loss gen|olympus|msda) on the "
                   "same data and split; RUN/baselines/* are added automatically")
    p.add_argument("--skip", default="", metavar="LIST",
                   help="analyses to leave out: tradeoff, candidates, dtw (default: none)")
    p.add_argument("--dtw-windows", type=int, default=64, help="test windows sampled for DTW (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of attackers and samples (default: %(default)s)")
    p.add_argument("--out", help="output folder (default: RUN/eval)")
    add_json_option(p)
    p.set_defaults(run=run)


def _families(text: str) -> tuple[str, ...]:
    fams = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    unknown = [f for f in fams if f not in classifiers.FAMILIES]
    if unknown or not fams:
        raise DysanError(f"--attackers: unknown {unknown or 'empty'} (choose from {', '.join(classifiers.FAMILIES)})")
    return fams


def config_from_args(args: argparse.Namespace):
    from ..evaluate.attackers import AttackConfig
    from ..evaluate.pipeline import SKIPPABLE, EvalConfig
    from ..evaluate.strategies import Weights

    for name, v in (("--x", args.x), ("--y", args.y)):
        if not 0 <= v <= 1:
            raise DysanError(f"{name} must lie in [0, 1]")
    if args.segment < 1 or args.candidates < 1:
        raise DysanError("--segment and --candidates must be at least 1")
    if args.calibration_seconds <= 0:
        raise DysanError("--calibration-seconds must be positive")
    skip = frozenset(s.strip() for s in args.skip.split(",") if s.strip())
    if skip - set(SKIPPABLE):
        raise DysanError(f"--skip: unknown {sorted(skip - set(SKIPPABLE))} (choose from {', '.join(SKIPPABLE)})")
    attack = AttackConfig(families=_families(args.attackers), cnn_epochs=args.cnn_epochs, rf_trees=args.rf_trees,
                          seed=args.seed)
    return EvalConfig(weights=Weights(args.x, args.y), segment=args.segment, candidates=args.candidates,
                      calibration_seconds=args.calibration_seconds, attack=attack, skip=skip,
                      dtw_windows=args.dtw_windows, seed=args.seed)


def effective_command(args: argparse.Namespace, data: str) -> str:
    """The command as typed when run from the shell, otherwise every setting spelled out."""
    if Path(sys.argv[0]).name == "dysan" and sys.argv[1:2] == ["evaluate"]:
        return "dysan " + shlex.join(sys.argv[1:])
    words = ["dysan", "evaluate", args.run_dir, "--data", data, "--x", f"{args.x:g}", "--y", f"{args.y:g}",
             "--segment", str(args.segment), "--candidates", str(args.candidates), "--calibration-seconds",
             f"{args.calibration_seconds:g}", "--attackers", args.attackers, "--cnn-epochs", str(args.cnn_epochs),
             "--rf-trees", str(args.rf_trees), "--dtw-windows", str(args.dtw_windows), "--seed", str(args.seed)]
    for flag, value in (("--baselines", args.baselines), ("--skip", args.skip), ("--out", args.out),
                        ("--json", args.json)):
        if value:
            words += [flag, value]
    return shlex.join(words)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import pipeline, runs
    from ..evaluate.report import train_command

    cfg = config_from_args(args)
    run_dir = Path(args.run_dir)
    with ui.progress(f"rebuilding the split of {run_dir}") as step:
        ctx = runs.open_run(run_dir, data=args.data, protocol=args.protocol, attribute=args.attribute)
        step.advance()
    extra = [Path(b.strip()) for b in (args.baselines or "").split(",") if b.strip()]
    for b in dict.fromkeys([*runs.discover_baselines(run_dir), *extra]):
        runs.add_baseline(ctx, b)
        if ctx.baseline_runs[-1]["differences"]:
            ui.warn(f"baseline {b} was trained differently from the grid: "
                    + "; ".join(ctx.baseline_runs[-1]["differences"]))
    tag = " (SYNTHETIC data)" if ctx.synthetic else ""
    ui.info(f"{run_dir}{tag}: {len(ctx.grid)} models + {len(ctx.baselines)} baseline(s), {ctx.config['protocol']}, "
            f"{ctx.attribute}; {len(ctx.train)} train / {len(ctx.test)} test windows (split verified)")
    commands = {
        "evaluate": effective_command(args, ctx.data_spec),
        "train": train_command(ctx.config, str(run_dir)),
        "baselines": [train_command(b["config"], b["path"]) for b in ctx.baseline_runs],
    }
    out = Path(args.out) if args.out else run_dir / "eval"
    results = pipeline.evaluate(ctx, cfg, out, commands=commands)
    show(results)
    write_json(args.json, results)
    return 0


def show(results: dict) -> None:
    from ..evaluate.pipeline import TASKS, attacker_keys

    table = results["strategies"]
    present = {k for r in table.values() for k in r["attackers"]}
    keys = [k for k in attacker_keys(tuple(results["config"]["attackers"])) if k in present]
    cols = ["strategy"] + [f"{k} {t[:3]}" for k in keys for t in TASKS] + ["L1"]
    rows = []
    for r in table.values():
        row = [r["label"]]
        for k in keys:
            for t in TASKS:
                v = r["attackers"].get(k, {}).get(t)
                row.append(ui.pct(v["accuracy"]) if v else "-")
        row.append(f"{r['distortion']['l1_normalized']:.3f}")
        rows.append(row)
    label = " — SYNTHETIC data" if results["synthetic"] else ""
    ui.table(f"{results['run']}: {results['protocol']}, activity / {results['attribute']} accuracy{label}", cols, rows,
             caption=f"scored test windows: {results['windows']['test']['scored']}; adaptive = retrained on the "
             "strategy's sanitized training stream; raw = trained on raw windows; own = the chosen models' P/D")
