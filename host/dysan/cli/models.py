"""``dysan models summary``: size and cost of the networks of both families."""

from __future__ import annotations

import argparse

from .. import ui
from ..nets import FAMILIES
from ..nets.device import DEFAULT_WIDTH
from .common import add_json_option, write_json

BUDGET_MACS = 1_000_000
BUDGET_GRID_BYTES = 700 * 1024


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="sizes and costs of the networks (models summary)",
                       description="Inspect the network families.")
    verbs = p.add_subparsers(dest="models_verb", metavar="ACTION")
    verbs.required = True
    s = verbs.add_parser("summary", help="parameters, MACs per window and int8 bytes of S, P, D",
                         description="Parameters, MACs per window and measured int8 bytes (weights + biases "
                         "after full-int8 conversion) of S, P and D for the device and paper families, and "
                         "the totals for a full 36-point grid.")
    s.add_argument("--family", choices=(*FAMILIES, "both"), default="both")
    s.add_argument("--classes", type=int, default=4, help="activity classes of P (default: %(default)s)")
    s.add_argument("--width", type=int, default=DEFAULT_WIDTH, help="device sanitizer width (default: %(default)s)")
    add_json_option(s)
    s.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..export.size_report import int8_sizes
    from ..nets.summary import summarize
    from ..train.grid import full_grid

    families = FAMILIES if args.family == "both" else (args.family,)
    with ui.progress("converting to int8 to measure sizes", len(families)) as step:
        report = summarize(len(full_grid()), families, n_act=args.classes, width=args.width, int8_sizes=int8_sizes)
        step.advance(len(families))
    rows = []
    for family, data in report["families"].items():
        for name, r in data["models"].items():
            rows.append([f"{family} {name}", r["parameters"], f"{r['macs_per_window']:,}", f"{r['int8_bytes']:,}"])
        g = data["full_grid"]
        rows.append([f"{family} full grid ({report['grid_points']} x S+P+D)", g["parameters"],
                     f"{g['macs_per_window']:,}", f"{g['int8_bytes']:,}"])
    ui.table("Networks", ["model", "parameters", "MAC / window", "int8 bytes"], rows)
    if "device" in report["families"]:
        d = report["families"]["device"]
        s_macs = d["models"]["S"]["macs_per_window"]
        grid_bytes = d["full_grid"]["int8_bytes"]
        report["budgets"] = {
            "device_sanitizer_macs": s_macs, "device_sanitizer_macs_budget": BUDGET_MACS,
            "device_grid_int8_bytes": grid_bytes, "device_grid_int8_bytes_budget": BUDGET_GRID_BYTES,
            "within_budget": s_macs <= BUDGET_MACS and grid_bytes <= BUDGET_GRID_BYTES,
        }
        ui.info(f"device sanitizer: {s_macs:,} MAC/window (budget {BUDGET_MACS:,}); full device grid: "
                f"{grid_bytes / 1024:.0f} KB int8 (budget {BUDGET_GRID_BYTES // 1024} KB)")
    write_json(args.json, report)
    return 0
