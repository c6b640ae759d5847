"""``dysan codegen``: regenerate the C headers derived from the Python definitions."""

from __future__ import annotations

import argparse

from .. import codegen, ui


def add_parser(sub) -> None:
    p = sub.add_parser("codegen", help="regenerate C headers from the Python definitions",
                       description="Write every generated C file (contract, protocol, model image layout) "
                       "from its one Python definition. --check only lists stale files (exit 1 if any).")
    p.add_argument("--check", action="store_true", help="do not write; exit 1 if any generated file is stale")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.check:
        stale = codegen.stale()
        for rel in stale:
            ui.info(f"stale: {rel}")
        return 1 if stale else 0
    for path in codegen.write_all():
        ui.info(f"wrote {path}")
    return 0
