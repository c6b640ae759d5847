"""``dysan demo``: the main job on the embedded SYNTHETIC default, end to end, without ../shared (or, with
``--data``, the same chain on a real data set such as SisFall)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import demo, ui


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the whole chain on the embedded SYNTHETIC default (or --data)",
                       description="Run every stage of the chain on the embedded synthetic data (no ../shared "
                       "needed; --data runs the same chain on another source, e.g. sisfall:../shared/data/sisfall/"
                       "SisFall_dataset.tar.xz) and write every output under --out: " +
                       ", ".join(name for name, _ in demo.STAGES) + ".")
    p.add_argument("--out", default="out/demo", help="output folder (default: %(default)s)")
    p.add_argument("--data", default=demo.DEMO_DATA, help="data source (default: %(default)s)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    synthetic = args.data.split(":", 1)[0] == "synthetic"
    ui.info(f"demo on {args.data}: {'SYNTHETIC data generated on the fly' if synthetic else 'real data'}, "
            f"outputs in {args.out}")
    ctx = demo.run(Path(args.out), data=args.data)
    ui.table(f"DySan demo{ctx.tag}", ["stage", "result", "seconds"],
             [[s, r, f"{t:.0f}"] for s, r, t in ctx.summary])
    if "evaluation" in ctx.state:
        ui.table(f"evaluation of the demo grid{ctx.tag}: accuracy of adaptive attackers, "
                 f"{ctx.state['evaluation']['attribute']} attribute",
                 ["strategy", "RF activity", "RF attribute", "CNN activity", "CNN attribute"],
                 demo.evaluation_rows(ctx.state["evaluation"]))
    if "report" in ctx.state:
        ui.info(f"report: {ctx.state['report']}")
    return 0
