#!/usr/bin/env python3
"""Writes tests/data/protocol_golden.json and the generated sections of docs/protocol.md.

Both are produced by the protocol code itself (host/dysan/protocol/golden.py), so the examples in the doc
and the vectors the C and Python tests replay are real frames. ``--check`` writes nothing and exits 1 when
either file differs from what the code produces now (tests/test_protocol.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dysan.testing import golden


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report stale files (exit 1 if any)")
    args = ap.parse_args(argv)
    targets: list[tuple[Path, str]] = [(golden.GOLDEN_PATH, golden.render_golden())]
    if golden.DOC_PATH.exists():
        targets.append((golden.DOC_PATH, golden.render_doc(golden.DOC_PATH.read_text())))
    stale = [p for p, text in targets if not p.exists() or p.read_text() != text]
    if args.check:
        for p in stale:
            print(f"stale: {p}")
        return 1 if stale else 0
    for p, text in targets:
        if p in stale:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
            print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
