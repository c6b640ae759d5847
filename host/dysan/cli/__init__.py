"""The ``dysan`` command: one entry point, one module per verb.

Every verb registers itself with ``add_parser(subparsers)`` and runs through ``run(args) -> int``. User
errors (:class:`dysan.errors.DysanError`) become one line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .. import __version__
from ..errors import DysanError

VERBS = ("data", "baseline", "models", "train", "evaluate", "report", "export", "devices", "flash", "calibrate",
         "stream", "monitor", "demo", "bench", "bench-firmware", "codegen")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dysan",
        description="DySan on the wearable: train, evaluate and export motion-data sanitizers; "
        "drive the wearable over serial/BLE.",
    )
    parser.add_argument("--version", action="version", version=f"dysan {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb in VERBS:
        importlib.import_module(f".{verb.replace('-', '_')}", __name__).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args = parser.parse_args(argv)
    from .. import ui

    try:
        return int(args.run(args) or 0)
    except DysanError as exc:
        ui.error(str(exc))
        return 2
    except KeyboardInterrupt:
        ui.error("interrupted")
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
