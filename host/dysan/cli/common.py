"""Options and helpers shared by several verbs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .. import jsonio
from ..data.splits import PROTOCOLS
from ..errors import DysanError

DATA_HELP = (
    "data source: KIND:PATH with KIND one of sisfall, weda-fall, motionsense, mobiact, generic "
    "(e.g. sisfall:../shared/data/sisfall/SisFall_dataset.tar.xz), or 'synthetic' "
    "(the embedded SYNTHETIC default; synthetic:subjects=N,seed=S)"
)


def add_data_options(p: argparse.ArgumentParser, default: str | None = "synthetic") -> None:
    p.add_argument("--data", default=default, required=default is None, metavar="SPEC", help=DATA_HELP)
    p.add_argument("--activities", default="default", metavar="MAP",
                   help="activity map: a built-in name (default, with-falls for SisFall and WEDA-FALL) or a JSON file "
                   "{class: [codes]} (default: %(default)s)")


def add_protocol_option(p: argparse.ArgumentParser, default: str = "within-subject") -> None:
    p.add_argument("--protocol", default=default, choices=PROTOCOLS, help="evaluation protocol (default: %(default)s)")


def add_attribute_option(p: argparse.ArgumentParser, default: str = "gender") -> None:
    p.add_argument("--attribute", default=default, metavar="ATTR",
                   help="sensitive attribute: gender, age-group, age-group:T or COLUMN:THRESHOLD "
                   "(default: %(default)s)")


def add_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="also write the result as JSON to FILE ('-' for stdout)")


def write_json(target: str | Path | None, obj: Any) -> None:
    if not target:
        return
    text = jsonio.dumps(obj)
    if str(target) == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    except OSError as exc:
        raise DysanError(f"cannot write {path}: {exc.strerror}") from None
