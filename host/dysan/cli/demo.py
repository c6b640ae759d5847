"""``dysan demo``: the main job on the embedded synthetic default, end to end, without ../shared."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import baseline, ui
from .baseline import show
from .common import write_json


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole chain on the embedded SYNTHETIC default",
                       description="Run the main job on the embedded synthetic data (no ../shared needed) "
                       "and write every output under --out.")
    p.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    p.add_argument("--data", default="synthetic", help="data source (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ui.info(f"demo on {args.data} (SYNTHETIC data, generated on the fly) -> {out}")
    cfg = baseline.BaselineConfig(data=args.data, epochs=5, folds={"within-subject": 4, "new-users": 4})
    report = baseline.run(cfg, ui.progress)
    show(report)
    write_json(out / "baseline.json", report)
    ui.info(f"wrote {out / 'baseline.json'}")
    return 0
