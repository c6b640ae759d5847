"""``dysan report``: the evaluation of a run as one self-contained HTML page."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .. import ui


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="HTML page with every table and figure of dysan evaluate",
                       description="Render the results of dysan evaluate as one HTML page: tables inline, figures "
                       "as PNG files beside it, the exact commands that produced them, a SYNTHETIC banner when the "
                       "data is synthetic.")
    p.add_argument("run_dir", metavar="RUN", help="run directory (its evaluation is read from RUN/eval unless --eval)")
    p.add_argument("--eval", metavar="DIR", help="where dysan evaluate wrote (its --out; default: RUN/eval)")
    p.add_argument("--out", metavar="DIR", help="folder of report.html (default: the evaluation folder)")
    p.add_argument("--test-data", metavar="SPEC",
                   help="the transfer evaluation of RUN on SPEC (dysan evaluate --test-data): reads "
                   "RUN/eval-transfer-<name>/ unless --eval")
    p.add_argument("--test-protocol", choices=("within-subject", "new-users"),
                   help="with --test-data: the transfer's protocol (default: the run's)")
    p.set_defaults(run=run)


def _eval_folder(args: argparse.Namespace) -> str:
    """``eval``, or ``eval-transfer-<name>`` for --test-data (the folder dysan evaluate --test-data wrote)."""
    from ..rundir import eval_name

    if not args.test_data:
        return eval_name()
    from ..evaluate.runs import read_config
    from ..evaluate.transfer import transfer_name

    protocol = args.test_protocol or read_config(Path(args.run_dir))["protocol"]
    return eval_name(transfer_name(args.test_data, protocol))


def run(args: argparse.Namespace) -> int:
    from ..evaluate.report import render

    eval_dir = Path(args.eval) if args.eval else Path(args.run_dir) / _eval_folder(args)
    out = Path(args.out) if args.out else eval_dir
    if Path(sys.argv[0]).name == "dysan" and sys.argv[1:2] == ["report"]:
        command = "dysan " + shlex.join(sys.argv[1:])
    else:
        command = shlex.join(["dysan", "report", args.run_dir, *(["--eval", args.eval] if args.eval else []),
                              *(["--test-data", args.test_data] if args.test_data else []),
                              *(["--test-protocol", args.test_protocol] if args.test_protocol else []),
                              *(["--out", args.out] if args.out else [])])
    target = render(eval_dir, out, report_command=command)
    ui.info(f"wrote {target}")
    return 0
