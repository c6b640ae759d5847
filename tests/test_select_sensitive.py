"""The stated sensitive value: irrelevant for a two-valued attribute, decisive for more values.

* For K = 2 the score's privacy term ``1 − |0.5 − s|`` is the same for the value v and 1 − v, so the selection
  and the sanitized bytes are the same whatever the user states: the device is never told (``dysan calibrate``
  does not ask, and the firmware produces output without it).
* For K > 2 values (e.g. three age groups) the term generalises to ``1 − |1/K − s|``
  (``selection.segment_scores``); it is not symmetric, the stated value changes the selection and the output,
  and SET_SENSITIVE is needed.
* The C score (``dysan_select_score_k``) equals the Python one bit for bit, for every K the bundle allows.
"""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from dysan import selection
from dysan.device import reference as ref_mod
from dysan.testing.core_shim import CoreShim, build
from test_device_support import cached_random_bundle, subject_stream, synthetic, synthetic_bundle, synthetic_rf  # noqa: F401


@pytest.fixture(scope="module")
def core() -> CoreShim:
    return CoreShim(build())


def _hits(pred: np.ndarray, value: int) -> np.ndarray:
    return pred == value


def test_binary_value_never_changes_the_selection():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n_win, n_mod = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        act = rng.random((n_win, n_mod)) < rng.random()
        d_pred = rng.integers(0, 2, (n_win, n_mod))  # what each D says on each window
        seg, k = int(rng.integers(1, 9)), int(rng.integers(1, n_mod + 1))
        x, y = int(rng.integers(0, 32769)), int(rng.integers(0, 32769))
        chosen = [selection.device_select(act, _hits(d_pred, v), seg, k, x, y)[0] for v in (0, 1)]
        assert np.array_equal(*chosen), trial
        ev = selection.schedule_mask(n_win, n_mod, k)
        s0, s1 = (selection.segment_scores(act, _hits(d_pred, v), ev, x, y) for v in (0, 1))
        assert np.array_equal(s0, s1)


def test_k2_is_the_papers_integer_score():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n_win, n_mod = int(rng.integers(1, 30)), int(rng.integers(1, 10))
        act, sens, ev = (rng.random((n_win, n_mod)) < 0.5 for _ in range(3))
        x, y = int(rng.integers(0, 32769)), int(rng.integers(0, 32769))
        n, a, s = ev.sum(0), (act & ev).sum(0), (sens & ev).sum(0)
        want = np.where(n > 0, ((2 * x * a + y * (2 * n - np.abs(n - 2 * s))) << 16) // np.maximum(2 * n, 1), -1)
        assert np.array_equal(selection.segment_scores(act, sens, ev, x, y, classes=2), want)


def test_three_values_change_the_selection():
    rng = np.random.default_rng(2)
    differs = 0
    for _ in range(100):
        n_win, n_mod = 20, 6
        act = rng.random((n_win, n_mod)) < 0.7
        # each D leans towards its own value: the one the user states decides which D hides it best
        lean = rng.integers(0, 3, n_mod)
        d_pred = np.where(rng.random((n_win, n_mod)) < 0.6, lean, rng.integers(0, 3, (n_win, n_mod)))
        chosen = [selection.select(act, _hits(d_pred, v), 5, 6554, 26214, classes=3) for v in range(3)]
        differs += not (np.array_equal(chosen[0], chosen[1]) and np.array_equal(chosen[1], chosen[2]))
    assert differs > 50


def test_c_score_is_bit_exact_for_every_k(core):
    lib = ctypes.CDLL(str(build()))
    f = lib.dysan_select_score_k
    f.restype = ctypes.c_int64
    f.argtypes = [ctypes.c_uint32] * 3 + [ctypes.c_uint16] * 3
    rng = np.random.default_rng(3)
    for k in range(2, 17):
        for _ in range(300):
            n = int(rng.integers(1, 65))
            a, s = int(rng.integers(0, n + 1)), int(rng.integers(0, n + 1))
            x, y = (int(v) for v in rng.choice([0, 1, 16384, 32767, 32768, int(rng.integers(0, 32769))], 2))
            ev = np.ones((n, 1), dtype=bool)
            act = (np.arange(n) < a)[:, None]
            sens = (np.arange(n) < s)[:, None]
            want = int(selection.segment_scores(act, sens, ev, x, y, classes=k)[0])
            assert f(n, a, s, x, y, k) == want, (n, a, s, x, y, k)
    assert f(0, 0, 0, 1, 1, 3) == -1 and f(5, 1, 1, 1, 1, 1) == -1 and f(5, 1, 1, 1, 1, 17) == -1
    with pytest.raises(ValueError):
        selection.segment_scores(np.ones((1, 1), bool), np.ones((1, 1), bool), np.ones((1, 1), bool), 1, 1, 17)


SCHED = ref_mod.Schedule(3, 4, 0, 32768)  # privacy only: the stated value has the most say


def _run(core, bundle, rf, sensitive, samples):
    want = ref_mod.ReferencePipeline(bundle, rf, sensitive, SCHED).run(samples)
    got, _ = core.pipeline(bundle.image, rf, sensitive, SCHED.segment, SCHED.candidates, SCHED.x_q15, SCHED.y_q15,
                           samples)
    assert [(m, lab, d) for m, lab, d in got] == [(w.model_id, w.rf_label, w.data) for w in want]
    return [(w.model_id, w.data) for w in want]


def test_binary_bundle_output_is_the_same_for_either_value(core, synthetic, synthetic_bundle,  # noqa: F811
                                                           synthetic_rf) -> None:  # noqa: F811
    ds, _ = synthetic
    samples = subject_stream(ds, ds.recordings[0].subject, 125 + 62 * 29)
    assert synthetic_bundle.header["sensitive_classes"] == 2
    assert _run(core, synthetic_bundle, synthetic_rf, 0, samples) == _run(core, synthetic_bundle, synthetic_rf, 1,
                                                                          samples)


def test_three_age_groups_stated_value_changes_selection_and_output(core, synthetic, synthetic_rf) -> None:  # noqa: F811
    """A bundle whose discriminators tell three age groups apart: C == Python for each stated value, and the
    value changes which models are chosen and the bytes sent."""
    ds, ws = synthetic
    bundle = cached_random_bundle(ws.x[::3], "synthetic4-age3", n_models=4, n_classes=len(ws.classes), seed=1,
                                  sensitive_classes=3)
    assert bundle.header["sensitive_classes"] == 3
    samples = subject_stream(ds, ds.recordings[0].subject, 125 + 62 * 29)
    runs = [_run(core, bundle, synthetic_rf, v, samples) for v in range(3)]
    models = [[m for m, _ in r] for r in runs]
    assert len({tuple(m) for m in models}) > 1, models
    assert len({tuple(d for _, d in r) for r in runs}) > 1
