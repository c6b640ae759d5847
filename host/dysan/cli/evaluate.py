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
    p.add_argument("--strategies", metavar="LIST",
                   help="strategies to score (default: all): raw, mean-removal, rotation, magnitudes, fixed, "
                   "personalized, dynamic, dysan-o, dysan-o-device, a baseline's loss (gen, msda, ...) or model key; "
                   "raw is always scored. Fig. 7 needs dynamic, Table 1 / Fig. 8 dynamic and dysan-o")
    p.add_argument("--reidentification", default="auto", choices=("auto", "on", "off"),
                   help="subject re-identification attackers (which subject is this window from?): auto = for "
                   "within-subject evaluations (default: %(default)s)")
    p.add_argument("--test-data", metavar="SPEC",
                   help="transfer: judge the run's sanitizers on this other data set (mapped to the run's classes "
                   "and attribute); outputs go to RUN/eval-transfer-<name>/")
    p.add_argument("--test-protocol", choices=("within-subject", "new-users"),
                   help="transfer: the protocol splitting --test-data (default: the run's)")
    p.add_argument("--test-fold", type=int, metavar="K",
                   help="transfer: fold of --test-data scored (default: the run's under its protocol, else 0)")
    p.add_argument("--test-folds", type=int, metavar="N",
                   help="transfer: number of folds splitting --test-data (default: the run's under its protocol, "
                   "else the protocol's default)")
    p.add_argument("--test-activities", metavar="MAP",
                   help="transfer: activity map of --test-data (default: the run's map name resolved for its kind)")
    p.add_argument("--folds", metavar="N|RUNS",
                   help="mean ± spread over folds: N fold runs (RUN and RUN/folds/*), or the comma-separated run "
                   "directories of the other folds; each run is evaluated on its own split (docs/evaluation.md)")
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
    strategies = None
    if args.strategies:
        strategies = frozenset(s.strip() for s in args.strategies.split(",") if s.strip())
        if not strategies:
            raise DysanError("--strategies: empty list")
    if (args.test_protocol or args.test_activities or args.test_fold is not None or args.test_folds is not None) \
            and not args.test_data:
        raise DysanError("--test-protocol / --test-activities / --test-fold / --test-folds need --test-data")
    return EvalConfig(weights=Weights(args.x, args.y), segment=args.segment, candidates=args.candidates,
                      calibration_seconds=args.calibration_seconds, attack=attack, skip=skip,
                      dtw_windows=args.dtw_windows, seed=args.seed, strategies=strategies,
                      reidentify=args.reidentification)


def effective_command(args: argparse.Namespace, data: str | None) -> str:
    """The command as typed when run from the shell, otherwise every setting spelled out."""
    if Path(sys.argv[0]).name == "dysan" and sys.argv[1:2] == ["evaluate"]:
        return "dysan " + shlex.join(sys.argv[1:])
    words = ["dysan", "evaluate", args.run_dir, *(["--data", data] if data else []), "--x", f"{args.x:g}",
             "--y", f"{args.y:g}",
             "--segment", str(args.segment), "--candidates", str(args.candidates), "--calibration-seconds",
             f"{args.calibration_seconds:g}", "--attackers", args.attackers, "--cnn-epochs", str(args.cnn_epochs),
             "--rf-trees", str(args.rf_trees), "--dtw-windows", str(args.dtw_windows), "--seed", str(args.seed)]
    if args.reidentification != "auto":
        words += ["--reidentification", args.reidentification]
    for flag, value in (("--baselines", args.baselines), ("--skip", args.skip), ("--strategies", args.strategies),
                        ("--test-data", args.test_data), ("--test-protocol", args.test_protocol),
                        ("--test-activities", args.test_activities), ("--folds", args.folds), ("--out", args.out),
                        ("--test-fold", None if args.test_fold is None else str(args.test_fold)),
                        ("--test-folds", None if args.test_folds is None else str(args.test_folds)),
                        ("--json", args.json)):
        if value:
            words += [flag, value]
    return shlex.join(words)


def open_context(args: argparse.Namespace, run_dir: Path, main: bool = True):
    """The run (own split, or a transfer onto --test-data) with its baselines attached."""
    from ..evaluate import runs, transfer

    with ui.progress(f"{'loading ' + args.test_data + ' for' if args.test_data else 'rebuilding the split of'} "
                     f"{run_dir}") as step:
        if args.test_data:
            if args.data:
                raise DysanError("--data names the run's own data; a transfer needs only --test-data")
            ctx = transfer.open_transfer(run_dir, args.test_data, test_protocol=args.test_protocol,
                                         test_activities=args.test_activities, attribute=args.attribute,
                                         test_fold=args.test_fold, test_folds=args.test_folds)
        else:
            ctx = runs.open_run(run_dir, data=args.data, protocol=args.protocol, attribute=args.attribute)
        step.advance()
    extra = [Path(b.strip()) for b in (args.baselines or "").split(",") if b.strip()] if main else []
    for b in dict.fromkeys([*runs.discover_baselines(run_dir), *extra]):
        runs.add_baseline(ctx, b)
        if ctx.baseline_runs[-1]["differences"]:
            ui.warn(f"baseline {b} was trained differently from the grid: "
                    + "; ".join(ctx.baseline_runs[-1]["differences"]))
    tag = " (SYNTHETIC data)" if ctx.synthetic else ""
    where = (f"judged on {ctx.data_spec} ({ctx.protocol}, trained on {ctx.config['data']})" if ctx.transfer
             else f"{ctx.protocol}")
    ui.info(f"{run_dir}{tag}: {len(ctx.grid)} models + {len(ctx.baselines)} baseline(s), {where}, "
            f"{ctx.attribute}; {len(ctx.train)} train / {len(ctx.test)} test windows"
            f"{'' if ctx.transfer else ' (split verified)'}")
    return ctx


def run(args: argparse.Namespace) -> int:
    from ..evaluate import folds as folds_mod
    from ..evaluate import pipeline
    from ..evaluate.report import train_command

    cfg = config_from_args(args)
    run_dir = Path(args.run_dir)
    fold_dirs = folds_mod.fold_runs(run_dir, args.folds)
    if len(fold_dirs) > 1:
        folds_mod.check_compatible(fold_dirs)
    all_results = []
    for k, rd in enumerate(fold_dirs):
        if len(fold_dirs) > 1:
            ui.info(f"fold run {k + 1} of {len(fold_dirs)}: {rd}")
        ctx = open_context(args, rd, main=k == 0)
        commands = {
            "evaluate": effective_command(args, None if ctx.transfer else ctx.data_spec),
            "train": train_command(ctx.config, str(rd)),
            "baselines": [train_command(b["config"], b["path"]) for b in ctx.baseline_runs],
        }
        out = Path(args.out) if args.out and k == 0 else rd / ctx.eval_name
        all_results.append((out, pipeline.evaluate(ctx, cfg, out, commands=commands)))
    out, results = all_results[0]
    if len(all_results) > 1:
        results = pipeline.write_folds(out, [r for _, r in all_results])
    show(results)
    write_json(args.json, results)
    return 0


def show(results: dict) -> None:
    from ..evaluate.pipeline import IDENTITY, TASKS, attacker_keys

    table = results["strategies"]
    present = {k for r in table.values() for k in r["attackers"]}
    keys = [k for k in attacker_keys(tuple(results["config"]["attackers"])) if k in present]
    tasks = (*TASKS, IDENTITY) if results.get("reidentification") else TASKS
    short = {"activity": "act", "sensitive": "sen", IDENTITY: "re-id"}
    cols = ["strategy"] + [f"{k} {short[t]}" for k in keys for t in tasks if k != "own" or t != IDENTITY] + ["L1"]
    rows = []
    for r in table.values():
        row = [r["label"]]
        for k in keys:
            for t in tasks:
                if k == "own" and t == IDENTITY:
                    continue
                v = r["attackers"].get(k, {}).get(t)
                row.append(ui.pct(v["accuracy"]) if v else "-")
        row.append(f"{r['distortion']['l1_normalized']:.3f}")
        rows.append(row)
    label = " — SYNTHETIC data" if results["synthetic"] else ""
    t = results.get("transfer")
    where = f" (trained on {t['trained_on']}, judged on {t['data']})" if t else ""
    ui.table(f"{results['run']}{where}: {results['protocol']}, activity / {results['attribute']} accuracy{label}",
             cols, rows,
             caption=f"scored test windows: {results['windows']['test']['scored']}; adaptive = retrained on the "
             "strategy's sanitized training stream; raw = trained on raw windows; own = the chosen models' P/D; "
             "re-id = subject re-identification")
    f = results.get("folds_summary")
    if f:
        ui.info(f"mean ± std over {f['n']} folds {f['folds']}: {f['json']} beside results.json")
