"""``dysan data``: load a source and show what it holds (subjects, recordings, windows, skips, quirks handled)."""

from __future__ import annotations

import argparse

from .. import contract, ui
from ..data import make_windows, prepare
from .common import add_attribute_option, add_data_options, add_json_option, write_json


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="load a data source and summarize it",
                       description="Load a data source (cached outside the repository) and summarize "
                       "subjects, recordings, windows per class and per sensitive value, skipped input, and the "
                       "input quirks the loader handled (counted per rule).")
    add_data_options(p)
    add_attribute_option(p)
    add_json_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with ui.progress(f"loading {args.data}") as step:
        ds, ws = prepare(args.data, args.activities, args.attribute, progress=lambda n, note: step.update(n, note))
    amap = ws.meta["activity_map"]
    from ..data import activities as activities_mod

    flat = make_windows(ds, activities_mod.ActivityMap.from_mapping(amap["name"], amap["classes"]), ws.attribute,
                        hop=contract.WINDOW)
    summary = ds.summary()
    result = {
        "data": summary,
        "synthetic": ds.synthetic,
        "activity_map": amap,
        "attribute": ws.attribute.to_dict(),
        "windows_hop": {"hop": contract.HOP, **ws.counts()},
        "windows_non_overlapping": {"hop": contract.WINDOW, **flat.counts()},
        "notes": ds.notes,
    }
    label = " (SYNTHETIC)" if ds.synthetic else ""
    ui.table(
        f"{args.data}{label}",
        ["", "value"],
        [
            ["subjects (F / M)", f"{summary['subjects']} ({summary['female']} / {summary['male']})"],
            ["recordings", summary["recordings"]],
            ["hours at 50 Hz", f"{summary['samples_50hz'] / contract.RATE_HZ / 3600:.2f}"],
            [f"windows, hop {contract.HOP}", len(ws)],
            ["windows, non-overlapping", len(flat)],
            *[[f"  class {c}", n] for c, n in ws.counts()["per_class"].items()],
            *[[f"  {ws.attribute.name} = {v}", n] for v, n in ws.counts()["per_sensitive"].items()],
            *[[f"skipped: {k}", v] for k, v in summary["skipped"].items()],
            *[[f"handled: {k}", v] for k, v in summary["quirks"].items()],
        ],
    )
    write_json(args.json, result)
    return 0
