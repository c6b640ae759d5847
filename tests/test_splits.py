"""Splits: no recorded moment on both sides (within-subject), no subject on both sides (new-users)."""

from __future__ import annotations

import numpy as np
import pytest

from dysan import contract
from dysan.data import make_split


def _intervals_overlap(ws, a, b) -> bool:
    for r in np.unique(ws.recording[a]):
        sa = ws.start[a][ws.recording[a] == r]
        sb = ws.start[b][ws.recording[b] == r]
        if len(sb) == 0:
            continue
        # any train window [s, s+W) intersecting a test window [t, t+W)
        if (np.abs(sa[:, None] - sb[None, :]) < contract.WINDOW).any():
            return True
    return False


@pytest.mark.parametrize("fold", [0, 3])
def test_within_subject_keeps_time_apart(synthetic_windows, fold):
    _, ws = synthetic_windows
    s = make_split(ws, "within-subject", fold=fold, seed=1)
    assert len(np.intersect1d(s.train, s.test)) == 0
    assert not _intervals_overlap(ws, s.train, s.test)
    assert set(np.unique(ws.subject[s.train])) == set(np.unique(ws.subject[s.test]))
    assert s.info["seed"] == 1 and s.info["protocol"] == "within-subject"
    assert 0.15 < len(s.test) / (len(s.train) + len(s.test)) < 0.35


def test_within_subject_folds_partition_and_are_deterministic(synthetic_windows):
    _, ws = synthetic_windows
    tests = [make_split(ws, "within-subject", fold=k).test for k in range(4)]
    allt = np.concatenate(tests)
    assert len(allt) == len(np.unique(allt))
    np.testing.assert_array_equal(tests[2], make_split(ws, "within-subject", fold=2).test)


def test_new_users_disjoint_and_stratified(synthetic_windows):
    _, ws = synthetic_windows
    seen = []
    for k in range(4):
        s = make_split(ws, "new-users", fold=k, n_folds=4, seed=3)
        tr, te = set(np.unique(ws.subject[s.train])), set(np.unique(ws.subject[s.test]))
        assert not tr & te
        sens = ws.subject_sensitive()[sorted(te)]
        assert set(sens) == {0, 1}  # both genders in every test fold
        seen += sorted(te)
    assert sorted(seen) == sorted(np.unique(ws.subject))


def test_sisfall_within_subject_uses_trials_and_blocks(sisfall_windows):
    _, ws = sisfall_windows
    s = make_split(ws, "within-subject")
    assert s.info["groups_split_by_trial"] > 0 and s.info["groups_split_by_time_block"] > 0
    assert not _intervals_overlap(ws, s.train, s.test)
