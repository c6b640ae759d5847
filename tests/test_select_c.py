"""The firmware's selection (firmware/core/src/dysan_select.c) against THE definition, host/dysan/selection.py.

Random hit tables, random evaluated masks (the round-robin schedule and arbitrary ones), every segment
length the device accepts and more, extreme weights: the C code must choose the same model for every
window, and its running leader (what the pipeline uses to keep scoring outputs) must end each segment on
the winner.
"""

from __future__ import annotations

import numpy as np
import pytest

from dysan import selection
from dysan.testing.core_shim import CoreShim, build


@pytest.fixture(scope="module")
def core() -> CoreShim:
    return CoreShim(build())


@pytest.mark.parametrize("seed", range(6))
def test_selection_matches_python_on_random_tables(core: CoreShim, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n_models = int(rng.integers(1, 65))
        n_windows = int(rng.integers(1, 90))
        segment = int(rng.integers(1, 12))
        p_act, p_sens = rng.uniform(0.05, 0.95, size=2)
        act = rng.random((n_windows, n_models)) < p_act
        sens = rng.random((n_windows, n_models)) < p_sens
        if rng.random() < 0.5:
            evaluated = selection.schedule_mask(n_windows, n_models, int(rng.integers(1, n_models + 3)))
        else:
            evaluated = rng.random((n_windows, n_models)) < rng.uniform(0.0, 1.0)
        x, y = (int(v) for v in rng.choice([0, 1, 6554, 16384, 26214, 32767, 32768], size=2))
        default = int(rng.integers(0, n_models))
        rounds = int(rng.integers(1, 32 // segment + 1))  # the history spans up to 32 windows
        want = selection.select(act, sens, segment, x, y, evaluated=evaluated, default_model=default, rounds=rounds)
        got = core.select(act, sens, segment, x, y, evaluated, default, rounds=rounds)
        np.testing.assert_array_equal(got, want, err_msg=f"M={n_models} p={segment} R={rounds} x={x} y={y}")


def test_ties_go_to_the_lowest_index_and_default_when_nothing_ran(core: CoreShim) -> None:
    act = np.ones((5, 6), dtype=bool)
    sens = np.zeros((5, 6), dtype=bool)
    ev = np.zeros((5, 6), dtype=bool)
    ev[:, 3:] = True
    assert list(core.select(act, sens, 5, 6554, 26214, ev, 0)) == [3] * 5
    ev[:] = False
    assert list(core.select(act, sens, 5, 6554, 26214, ev, 4)) == [4] * 5


def test_score_formula_edges(core: CoreShim) -> None:
    """score_q = ((2*x*a + y*(2n - |n - 2s|)) << 16) // (2n), -1 when n == 0, up to the counter limits."""
    for n, a, s, x, y in [(0, 0, 0, 32768, 32768), (1, 1, 1, 32768, 32768), (255, 255, 0, 32768, 32768),
                          (65535, 65535, 32767, 32768, 32768), (7, 3, 5, 6554, 26214), (4, 0, 2, 0, 0)]:
        expect = -1 if n == 0 else ((2 * x * a + y * (2 * n - abs(n - 2 * s))) << 16) // (2 * n)
        assert core.select_score(n, a, s, x, y) == expect, (n, a, s, x, y)
        if 0 < n <= 300:  # and THE definition, on a one-model table with those counts
            act, sens = (np.arange(n) < a)[:, None], (np.arange(n) < s)[:, None]
            assert selection.segment_scores(act, sens, np.ones((n, 1), bool), x, y)[0] == expect


@pytest.mark.parametrize(("n_models", "candidates"), [(1, 1), (4, 2), (36, 24), (36, 36), (36, 50), (64, 7), (5, 0)])
def test_round_robin_schedule_matches(core: CoreShim, n_models: int, candidates: int) -> None:
    for first in (0, 1, 1_000_003):
        np.testing.assert_array_equal(core.schedule(97, n_models, candidates, first),
                                      selection.schedule_mask(97, n_models, candidates, first))


def test_score_horizon_matches(core: CoreShim) -> None:
    """R = max(1, min(ceil(3·M / (k·p)), 32 // p)) segments: 1 when every model runs on every window (the paper)."""
    for segment in range(0, 12):
        for n_models in (1, 2, 5, 36, 64):
            for candidates in (0, 1, 3, 8, 9, 36, 64, 255):
                assert core.schedule_rounds(segment, candidates, n_models) == \
                    selection.horizon_segments(segment, candidates, n_models), (segment, candidates, n_models)
    assert selection.horizon_segments(5, 36, 36) == 1 and selection.horizon_segments(5, 8, 36) == 3
    assert selection.horizon_segments(1, 36, 36) == 1  # k >= M: the paper's segment alone, whatever p
    assert selection.horizon_segments(8, 1, 36) == 4  # capped by the 32-window history


def test_the_horizon_reaches_back_whole_segments() -> None:
    """With R = 2 a segment's score is that of its windows and the previous segment's, not earlier ones."""
    act = np.zeros((15, 2), bool)
    sens = np.zeros((15, 2), bool)
    act[0:5, 1] = True  # model 1 is right on segment 0 only
    assert list(selection.select(act, sens, 5, 32768, 0, rounds=1)[::5]) == [1, 0, 0]
    assert list(selection.select(act, sens, 5, 32768, 0, rounds=2)[::5]) == [1, 1, 0]
