"""Shared fixtures. Real data is read from ../shared (never copied into the repository)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DYSAN_SHARED", REPO.parent / "shared"))
SISFALL_ARCHIVE = SHARED / "data" / "sisfall" / "SisFall_dataset.tar.xz"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def sisfall_spec() -> str:
    """The real SisFall archive as a data spec; skips (with the reason) where ../shared is absent."""
    if not SISFALL_ARCHIVE.is_file():
        pytest.skip(f"real data not found at {SISFALL_ARCHIVE} (CI has ../shared beside the clone)")
    return f"sisfall:{SISFALL_ARCHIVE}"


@pytest.fixture(scope="session")
def sisfall_windows(sisfall_spec):
    """SisFall, default 4-class map, gender, hop 62 (loaded once per session; cached on disk)."""
    from dysan.data import prepare

    return prepare(sisfall_spec)


@pytest.fixture(scope="session")
def synthetic_windows():
    from dysan.data import prepare

    return prepare("synthetic")
