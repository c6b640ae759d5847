"""``dysan baseline``: raw-data accuracy of activity analysts and sensitive-attribute attackers."""

from __future__ import annotations

import argparse

from .. import baseline, classifiers, ui
from ..data.splits import PROTOCOLS
from ..errors import DysanError
from .common import add_data_options, add_json_option, write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "baseline",
        help="raw-data accuracy of activity analysts and attribute attackers",
        description="Train an activity analyst and sensitive-attribute attackers on RAW windows and report "
        "their test accuracy, overall, per fold and per user: the paper's predictor/discriminator CNNs "
        "and a feature random forest, for each protocol (all folds).",
    )
    add_data_options(p)
    p.add_argument("--protocol", default="both", choices=(*PROTOCOLS, "both"),
                   help="within-subject, new-users or both (default: %(default)s)")
    p.add_argument("--attribute", default="gender,age-group", metavar="ATTRS",
                   help="comma-separated sensitive attributes (gender, age-group, COLUMN:THRESHOLD; "
                   "default: %(default)s)")
    p.add_argument("--models", default="rf,cnn", metavar="LIST",
                   help="classifier families: rf, cnn (default: %(default)s)")
    p.add_argument("--folds-within", type=int, default=4, metavar="K",
                   help="within-subject folds (default: %(default)s)")
    p.add_argument("--folds-new-users", type=int, default=5, metavar="K",
                   help="new-users folds (default: %(default)s)")
    p.add_argument("--max-folds", type=int, metavar="K",
                   help="run only the first K folds of each protocol (quick runs)")
    p.add_argument("--epochs", type=int, default=10, help="CNN training epochs (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits and models (default: %(default)s)")
    add_json_option(p)
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> baseline.BaselineConfig:
    families = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [f for f in families if f not in classifiers.FAMILIES]
    if unknown or not families:
        raise DysanError(f"--models: unknown {unknown or 'empty'} (choose from {', '.join(classifiers.FAMILIES)})")
    attrs = tuple(a.strip() for a in args.attribute.split(",") if a.strip())
    if not attrs:
        raise DysanError("--attribute: give at least one attribute")
    protocols = PROTOCOLS if args.protocol == "both" else (args.protocol,)
    return baseline.BaselineConfig(
        data=args.data, protocols=protocols, attributes=attrs, families=families, activities=args.activities,
        folds={"within-subject": args.folds_within, "new-users": args.folds_new_users},
        max_folds=args.max_folds, epochs=args.epochs, seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    report = baseline.run(cfg, ui.progress)
    show(report)
    write_json(args.json, report)
    return 0


def show(report: dict) -> None:
    cols, rows = baseline.table_rows(report)
    label = " — SYNTHETIC data" if report["synthetic"] else ""
    ui.table(f"Raw-data baselines: {report['data']['name']}{label}", cols, rows,
             caption="pooled test accuracy over all folds (range of per-user accuracies)")
