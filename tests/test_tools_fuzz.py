"""A short atheris run of the Python frame parser (`make fuzz` runs 1,000,000 inputs of it and of the C one).

tests/test_protocol_c.py already runs libFuzzer on the C decoder briefly; this is its Python counterpart, through
the same driver and summary line `make fuzz` uses, so a broken driver or a crash found in a few thousand inputs
fails the suite instead of surfacing only in the long run.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("atheris", reason="atheris is not installed")


def test_short_atheris_run_finds_nothing() -> None:
    r = subprocess.run([sys.executable, str(REPO / "tools" / "fuzz_protocol.py"), "--runs", "5000"],
                       capture_output=True, text=True, timeout=300, check=False)
    m = re.search(r"fuzz_protocol: runs=(\d+) crashes=(\d+) hangs=(\d+)", r.stdout + r.stderr)
    assert m, r.stdout[-2000:] + r.stderr[-2000:]
    runs, crashes, hangs = map(int, m.groups())
    assert r.returncode == 0 and crashes == 0 and hangs == 0, r.stdout[-3000:]
    assert runs >= 5000
