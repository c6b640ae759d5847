"""Hardened training (issue 15): options, resumability, the privacy terms, and — on real SisFall subjects — a
retrained RF attacker reads gender less well after dysan train's default than after the paper's objective."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dysan.train import grid
from dysan.train.loop import LEGACY, TrainConfig


def test_legacy_settings_are_omitted_and_restored():
    """Old runs' config.json (no issue-15 keys) must read back as the paper's objective whatever the defaults."""
    d = TrainConfig(epochs=3).to_dict()
    restored = TrainConfig.from_dict({k: v for k, v in d.items() if k not in LEGACY})
    assert all(getattr(restored, k) == v for k, v in LEGACY.items())
    assert not restored.hardened
    hard = TrainConfig(privacy_loss="entropy", jitter=True)
    assert hard.hardened and hard.to_dict()["privacy_loss"] == "entropy" and hard.to_dict()["jitter"] is True
    assert TrainConfig.from_dict(hard.to_dict()) == hard


def test_entropy_term_has_no_flip_loophole():
    """|0.5 − BER| is 0 for a discriminator right on half the windows and confidently wrong on the rest; the
    per-window entropy term is not — it is 0 only for an undecided adversary."""
    from dysan.tfutil import import_tf
    from dysan.train import privacy

    import_tf()
    labels = np.array([0, 0, 1, 1])
    flip = np.array([[9.0, -9.0], [-9.0, 9.0], [9.0, -9.0], [-9.0, 9.0]], dtype=np.float32)  # half right
    assert float(privacy.term("ber", flip, labels, 2)) == pytest.approx(0.0, abs=1e-6)
    assert float(privacy.term("entropy", flip, labels, 2)) > 0.99
    undecided = np.zeros((4, 2), dtype=np.float32)
    assert float(privacy.term("entropy", undecided, labels, 2)) == pytest.approx(0.0, abs=1e-6)
    # K classes: normalized to [0, 1]; chance BER is 1 − 1/K
    k = 7
    assert float(privacy.term("entropy", np.zeros((3, k), np.float32), np.arange(3), k)) == pytest.approx(0, abs=1e-6)
    sure = 30.0 * np.eye(k, dtype=np.float32)[:3]
    assert float(privacy.term("entropy", sure, np.arange(3), k)) == pytest.approx(1.0, abs=1e-4)
    assert float(privacy.term("ber", sure, np.arange(3), k)) == pytest.approx(1 - 1 / k, abs=1e-4)
    assert float(privacy.aggregate("max", [0.2, 0.5])) == pytest.approx(0.5)
    assert float(privacy.aggregate("mean", [0.2, 0.5])) == pytest.approx(0.35)


def test_moment_matching_sees_group_differences_within_activities():
    from dysan.tfutil import import_tf
    from dysan.train import privacy

    import_tf()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((400, 5)).astype(np.float32)
    act = np.repeat([0, 1], 200)
    sens = np.tile([0, 1], 200)
    same = float(privacy.moment_matching(z, act, sens, 3))
    z2 = z.copy()
    z2[sens == 1] += 1.0
    assert float(privacy.moment_matching(z2, act, sens, 3)) > same + 0.8
    # an activity difference alone (same in both groups) is not penalized
    z3 = z.copy()
    z3[act == 1] += 5.0
    assert float(privacy.moment_matching(z3, act, sens, 3)) == pytest.approx(same, rel=1e-4)


def test_window_stats_read_the_mount_angle():
    """The feature adversary's statistics: per-axis gravity means (mount angle) and band powers, differentiable."""
    from dysan import contract
    from dysan.nets import adversaries

    tf = adversaries.tf
    x = np.zeros((2, contract.WINDOW, 6), dtype=np.float32)
    x[0, :, 2] = 1.0  # gravity on z (normalized units: center 0, scale = counts per g below)
    x[1, :, 1] = 1.0  # gravity on y
    t = np.arange(contract.WINDOW) / contract.RATE_HZ
    x[:, :, 0] = 0.1 * np.sin(2 * math.pi * 2.0 * t)  # 2 Hz on acc x: band 2 (1.2–3.2 Hz)
    scale = np.array(contract.COUNTS_PER_UNIT, dtype=np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        st = adversaries.window_stats(xt, np.zeros(6, np.float32), scale)
        total = tf.reduce_sum(st)
    assert st.shape == (2, adversaries.N_STATS)
    grad = tape.gradient(total, xt)
    assert grad is not None and np.isfinite(grad.numpy()).all() and np.abs(grad.numpy()).sum() > 0
    st = st.numpy().reshape(2, len(adversaries.STATS), adversaries.SIGNALS)
    mean = st[:, adversaries.STATS.index("mean")]
    np.testing.assert_allclose(mean[0, :3], [0, 0, 1], atol=1e-3)
    np.testing.assert_allclose(mean[1, :3], [0, 1, 0], atol=1e-3)
    bands = st[0, adversaries.STATS.index("band1"):, 0]
    assert bands.argmax() == 1


HARD = {"privacy_loss": "entropy", "adversaries": 2, "reset_every": 2, "replay": 0.5, "feature_adversary": True,
        "identity_adversary": True, "moment_match": 1.0, "jitter": True}


def test_hardened_run_is_deterministic_and_resumes(tmp_path):
    """Every option on: a run stopped after its second epoch (checkpoint + replay buffer) and resumed ends
    with the same weights as one run straight through; the CLI options map onto the same settings."""
    import argparse

    import keras

    from dysan.cli import main as cli_main  # noqa: F401  (the parser must accept the options below)
    from dysan.cli.train import HARDENING_KEYS, add_parser, hardening_settings
    from dysan.train.loop import HARDENED, TRAIN_DEFAULT, train_point
    from dysan.train.runner import prepare_run, run_grid

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--out", "x", "--privacy-loss", "entropy", "--adversaries", "2",
                              "--reset-every", "2", "--replay", "0.5", "--feature-adversary", "--identity-adversary",
                              "--moment-match", "1", "--jitter", "--paper-objective"])
    assert {k: v for k, v in hardening_settings(args).items() if v != LEGACY[k]} == HARD
    # dysan train's own defaults: the paper's objective through the jitter; --hardened adds the rest
    def settings(*argv: str) -> dict:
        return hardening_settings(parser.parse_args(["train", "--out", "x", *argv]))

    def of(d: dict) -> dict:
        return {k: d[k] for k in HARDENING_KEYS}

    assert settings() == of({**LEGACY, **TRAIN_DEFAULT}) and TRAIN_DEFAULT == {"jitter": True}
    assert settings("--no-jitter") == settings("--paper-objective") == of(LEGACY)
    assert settings("--hardened") == of({**LEGACY, **HARDENED, "jitter": True})

    point = grid.GridPoint(0.4, 0.4)
    cfg = TrainConfig(epochs=3, batch_size=64, pretrain_epochs=1, width=8, monitor_windows=128, **HARD)
    runs = {}
    for name in ("ref", "resumed"):
        run_dir = tmp_path / name
        prepare_run(run_dir, "synthetic:subjects=6,seed=2", "default", "gender", "within-subject", 0, None, 0,
                    [point], cfg)
        runs[name] = run_dir
    run_grid(runs["ref"], [point], cfg, workers=1, log=lambda m: None)
    resumed = runs["resumed"]
    run_grid(resumed, [point], TrainConfig.from_dict({**cfg.to_dict(), "epochs": 2}), workers=1,
             log=lambda m: None)  # "killed" after epoch 2: drop what only a finished run has
    model_dir = resumed / "models" / point.name
    for f in ("done.json", "S.keras", "P.keras", "D.keras"):
        (model_dir / f).unlink()
    assert (model_dir / "ckpt" / "replay.npz").exists()
    train_point(resumed, point, 0, cfg)
    hist = json.loads((runs["ref"] / "models" / point.name / "history.json").read_text())
    assert [h["reset"] for h in hist] == [[], ["D1"], ["D"]]  # staggered: one member at a time
    assert {"F_monitor_acc", "I_monitor_acc", "D1_train_acc", "L_mm"} <= set(hist[-1])
    assert json.loads((resumed / "models" / point.name / "history.json").read_text()) != []
    for name in ("S", "P", "D"):
        a = keras.models.load_model(runs["ref"] / "models" / point.name / f"{name}.keras").get_weights()
        b = keras.models.load_model(model_dir / f"{name}.keras").get_weights()
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)


SUBJECTS_PER_GENDER = 4
EPOCHS = 4


@pytest.mark.sisfall
@pytest.mark.slow
def test_the_default_beats_the_paper_against_a_retrained_rf(sisfall_windows, tmp_path):
    """A few real SisFall subjects, within-subject gender, one α-heavy point, equal epochs: an RF attacker
    retrained on the sanitized training windows (as the device sends them: through the jitter for the
    default) reads gender (balanced accuracy) less well after a sanitizer trained with ``dysan train``'s
    default objective (TRAIN_DEFAULT) than after one trained with the paper's."""
    from dysan.data import make_split
    from dysan.train.ablation import score_run
    from dysan.train.loop import TRAIN_DEFAULT
    from dysan.train.runner import run_grid, write_arrays

    _, ws = sisfall_windows
    young = [i for i, s in enumerate(ws.subjects) if s.startswith("SA")]
    by_gender = {g: [i for i in young if ws.subject_sensitive()[i] == g][:SUBJECTS_PER_GENDER] for g in (0, 1)}
    chosen = by_gender[0] + by_gender[1]
    assert len(chosen) == 2 * SUBJECTS_PER_GENDER
    sub = ws.subset(np.flatnonzero(np.isin(ws.subject, chosen)))
    split = make_split(sub, "within-subject", 0)
    point = grid.GridPoint(0.6, 0.3)
    small = {"epochs": EPOCHS, "pretrain_epochs": 3, "batch_size": 64}  # 64: enough steps on ~3.8 k windows
    paper = TrainConfig.from_dict(small)
    default = TrainConfig.from_dict({**small, **TRAIN_DEFAULT})
    assert default.hardened and not paper.hardened
    scores = {}
    for name, cfg in (("paper", paper), ("default", default)):
        run_dir = tmp_path / name
        norm = write_arrays(run_dir, sub, split)
        (run_dir / "config.json").write_text(json.dumps({"normalization": norm.to_dict(),
                                                         "protocol": "within-subject"}))
        run_grid(run_dir, [point], cfg, workers=1, log=lambda m: None)
        scores[name] = score_run(run_dir, [point], cfg, trees=100, log=lambda m: None)["points"][point.name]
    p, d = scores["paper"], scores["default"]
    # measured (2026-12-03): gender balanced paper 94.1 %, default (jitter) 90.3 % (--hardened without the
    # jitter: 92.0 %); re-identification 91.9 / 82.3 %; activity 96.4 / 94.3 % (raw 95.3 / 96.1 %)
    assert d["attribute"]["balanced"] < p["attribute"]["balanced"] - 0.01, (p, d)
    assert d["activity"]["accuracy"] > 0.6, d  # still a sanitizer, not a scrambler


def test_ablation_table_has_a_raw_jitter_line_per_amplitude():
    """Two jitter rows of different amplitudes each bring their own 'raw + jitter only' line (one line per
    setting used to show only the last row's)."""
    from dysan.train.ablation import table

    def scores(act, attr):
        return {"activity": {"accuracy": act}, "attribute": {"accuracy": attr, "balanced": attr}}

    def row(cfg, raw_jitter=None):
        best = {**scores(0.9, 0.8), "point": {"name": "a0.60_l0.30"}, "meets_activity": True, "l1": 0.3}
        out = {"config": cfg, "best": best, "train_seconds_sum": 10}
        return out if raw_jitter is None else {**out, "raw_jitter": raw_jitter}

    res = {"settings": {"newusers-age": {"raw": scores(0.88, 0.55), "rows": {
        "paper": row({}),
        "jitter": row({"jitter": True}, scores(0.884, 0.596)),
        "jitter-wide": row({"jitter": True, "jitter_angle": 25.0, "jitter_gain": 0.25}, scores(0.880, 0.606)),
    }}}}
    lines = [line for line in table(res) if "raw + jitter only" in line]
    assert lines == ["| newusers-age | raw + jitter only (±10°, ±10 %) | – | 88.4 | 59.6 | 59.6 | – | – | – |",
                     "| newusers-age | raw + jitter only (±25°, ±25 %) | – | 88.0 | 60.6 | 60.6 | – | – | – |"]
