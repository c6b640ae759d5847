"""The real SisFall archive from ../shared: subject table and window counts of its README (±1 %)."""

from __future__ import annotations

import numpy as np
import pytest

from dysan import contract
from dysan.data import load, make_windows
from dysan.data.activities import ActivityMap
from dysan.data.attributes import parse

pytestmark = pytest.mark.sisfall

# ../shared/data/sisfall/README.md, "Figures measured on this copy".
README_NON_OVERLAPPING = {"all": 30061, "adl": 19278, "falls": 10783, "four_classes": 12205}
README_HALF_OVERLAP = 57696


def within_one_percent(got: int, want: int) -> bool:
    return abs(got - want) <= 0.01 * want


@pytest.fixture(scope="module")
def dataset(sisfall_spec):
    return load(sisfall_spec)


def test_subjects(dataset):
    assert len(dataset.subjects) == 38
    genders = [s.gender for s in dataset.subjects.values()]
    assert genders.count("F") == 19 and genders.count("M") == 19
    assert sum(s.extra["age_group"] == "SE" for s in dataset.subjects.values()) == 15
    assert len(dataset.recordings) == 4505
    # five D17_SE15 files are stored in SA15 (besides SE15's own five): they belong to SE15
    d17 = [r.source for r in dataset.recordings if r.activity == "D17" and r.subject == "SE15"]
    assert len(d17) == 10 and sum("SA15/" in s for s in d17) == 5


def test_window_counts_match_readme(dataset):
    codes = sorted({r.activity for r in dataset.recordings})
    maps = {
        "all": codes,
        "adl": [c for c in codes if c.startswith("D")],
        "falls": [c for c in codes if c.startswith("F")],
        "four_classes": [f"D{i:02d}" for i in range(1, 11)],
    }
    gender = parse("gender")
    for name, want in README_NON_OVERLAPPING.items():
        amap = ActivityMap.from_mapping(name, {"x": maps[name]})
        got = len(make_windows(dataset, amap, gender, hop=contract.WINDOW))
        assert within_one_percent(got, want), (name, got, want)
    amap = ActivityMap.from_mapping("all", {"x": maps["all"]})
    assert within_one_percent(len(make_windows(dataset, amap, gender, hop=contract.HOP)), README_HALF_OVERLAP)


def test_signals_are_in_contract_units(dataset):
    walk = next(r for r in dataset.recordings if r.activity == "D01")
    magnitude = np.linalg.norm(walk.signal[:, :3], axis=1)
    assert 0.9 < np.median(magnitude) < 1.1  # gravity in g
    assert np.abs(walk.signal[:, 3:]).max() < 35  # rad/s, under 2000 deg/s
