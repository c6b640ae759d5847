"""ORF baseline: the release is the stated linear map, the forests drop what carries the attribute, and
``dysan train --loss orf`` writes a run the evaluator consumes like any baseline (synthetic, small)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dysan import contract
from dysan.train import orf
from dysan.train.grid import GridPoint

N_COMP = contract.N_CHANNELS * (1 + len(orf.BANDS))


def _windows(n: int, seed: int = 0):
    """Activity = a 2 Hz swing on acc_x (amplitude by class); attribute = a 10 Hz tremor on gyro_z."""
    rng = np.random.default_rng(seed)
    t = np.arange(contract.WINDOW) / contract.RATE_HZ
    act = rng.integers(0, 3, n)
    sens = rng.integers(0, 2, n)
    x = rng.normal(0, 0.05, (n, contract.WINDOW, contract.N_CHANNELS))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x[:, :, 0] += (0.5 + act[:, None]) * np.sin(2 * np.pi * 2.0 * t[None] + phase)
    x[:, :, 5] += 0.8 * sens[:, None] * np.sin(2 * np.pi * 10.0 * t[None] + phase)
    return x.astype(np.float32), act, sens


def test_release_is_a_projection_and_the_keras_model_computes_it():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, contract.WINDOW, contract.N_CHANNELS)).astype(np.float32)
    everything = np.ones((contract.N_CHANNELS, 1 + len(orf.BANDS)), dtype=bool)
    np.testing.assert_allclose(orf.apply(everything, x), x, atol=1e-5)  # components sum to the window
    keep = rng.random(everything.shape) < 0.5
    y = orf.apply(keep, x)
    np.testing.assert_allclose(orf.apply(keep, y), y, atol=1e-5)  # idempotent: a projection
    np.testing.assert_allclose(y + orf.apply(~keep, x), x, atol=1e-5)  # kept + dropped = the window
    levels = ~keep[:, 0]
    np.testing.assert_allclose(y.mean(axis=1)[:, levels], 0, atol=1e-5)  # dropped level -> population mean
    S = orf.sanitizer_model(keep)
    np.testing.assert_allclose(S.predict(x, verbose=0), y, atol=1e-4)


def test_forests_keep_the_activity_band_and_drop_the_attribute_band():
    from sklearn.ensemble import RandomForestClassifier

    x, act, sens = _windows(600)
    sel = orf.select(x, act, sens, GridPoint(0.5, 0.5), seed=0, trees=60)
    names = orf.component_names()
    kept = set(sel.to_dict()["kept"])
    assert "acc_x.2.0-2.8Hz" in kept  # the activity's 2 Hz swing
    assert "gyro_z.8.4-12.8Hz" not in kept  # the attribute's 10 Hz tremor
    assert sel.keep.sum() < N_COMP and len(names) == N_COMP
    np.testing.assert_allclose([sel.utility.sum(), sel.privacy.sum()], 1.0, atol=1e-6)
    # an attacker retrained on the release: activity kept, attribute at chance
    xt, at, st = _windows(400, seed=1)
    rel, rel_t = orf.apply(sel.keep, x), orf.apply(sel.keep, xt)
    f, ft = orf.component_features(rel), orf.component_features(rel_t)
    act_acc = (RandomForestClassifier(60, random_state=0).fit(f, act).predict(ft) == at).mean()
    sens_acc = (RandomForestClassifier(60, random_state=0).fit(f, sens).predict(ft) == st).mean()
    raw_sens = (RandomForestClassifier(60, random_state=0).fit(orf.component_features(x), sens)
                .predict(orf.component_features(xt)) == st).mean()
    assert act_acc > 0.9 and raw_sens > 0.9 and sens_acc < 0.62
    # the privacy weight decides: all-privacy keeps fewer components than all-utility
    assert orf.select(x, act, sens, GridPoint(0.9, 0.1), trees=60).keep.sum() < \
        orf.select(x, act, sens, GridPoint(0.1, 0.9), trees=60).keep.sum()


def test_train_loss_orf_run_is_consumed_by_the_evaluator(tiny_run, tmp_path):
    """``dysan train --loss orf`` beside a trained grid; the evaluator attaches it and sanitizes with it."""
    from dysan.cli import main
    from dysan.evaluate import runs, sanitize

    cfg = json.loads((tiny_run / "config.json").read_text())
    out = tmp_path / "orf"
    rc = main(["train", "--data", cfg["data"], "--protocol", cfg["protocol"], "--loss", "orf", "--epochs", "1",
               "--out", str(out)])
    assert rc == 0
    done = json.loads((out / "models" / "a0.50_l0.50" / "done.json").read_text())
    assert 1 <= done["final"]["components_kept"] <= N_COMP
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and len(summary["models"]) == 1
    ctx = runs.open_run(tiny_run)
    (ref,) = runs.add_baseline(ctx, out)
    assert (ref.key, ref.label, ref.loss) == ("orf-a0.50_l0.50", "ORF", "orf")
    result, _ = sanitize.outputs(ref, ctx, tmp_path / "cache")
    sel = json.loads((ref.path / "selection.json").read_text())
    names = orf.component_names()
    keep = np.array([n in sel["kept"] for n in names]).reshape(contract.N_CHANNELS, -1)
    expected = ctx.norm.denormalize(orf.apply(keep, ctx.test.x))
    got = result.test.windows.astype(np.float64)
    assert np.abs(got - np.clip(np.rint(expected), -32768, 32767)).max() <= 1  # float32 Dense vs float64 FFT


def test_orf_has_no_adversarial_objective():
    from dysan.errors import DysanError
    from dysan.train import variants

    with pytest.raises(DysanError, match="no adversarial objective"):
        variants.get("orf").terms(None, None, None, None, None, None, 4, 2)
